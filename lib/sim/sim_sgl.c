/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SGLs in the emulated controller (NVMe Base spec 2.0, 4.1.2 "Scatter
 * Gather List"), for NVM Read and Write when the model offers them
 * (config.sgl, Identify SGLS = 1).
 *
 * PSDT (CDW0 bits 15:14) 01b: SGL1 (the 16 bytes of PRP1 and PRP2) is a
 * Data Block descriptor, or a Segment / Last Segment descriptor pointing at
 * a list of descriptors in host memory. A Segment list's last descriptor
 * may point to the next list; a Last Segment list holds Data Blocks only.
 * The descriptors must describe exactly the transfer length (this model
 * does not offer SGLS bit 16, longer SGLs). Every list and every data
 * block must be registered memory.
 */
#include <string.h>

#include "sim_priv.h"

struct sim_sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type; /* type (7:4), sub type (3:0) */
};

#define SGL_DATA_BLOCK	 0x0
#define SGL_SEGMENT	 0x2
#define SGL_LAST_SEGMENT 0x3
#define SGL_MAX_LISTS	 64 /* a bound on chained lists, against loops */

static uint16_t sgl_error(struct upcie_sim *sim, uint16_t status)
{
	sim->st.xfer_errors++;
	return status;
}

static uint16_t data_block(struct upcie_sim *sim, const struct sim_sgl_desc *d, uint8_t *buf,
			   size_t *off, size_t len, size_t avail, bool to_host)
{
	if (d->type & 0xf)
		return sgl_error(sim, UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
	if (d->len > len - *off)
		return sgl_error(sim, UPCIE_NVME_SC_SGL_DATA_LEN_INVALID);
	if (d->len) {
		uint16_t rc = upcie_sim_mem_xfer(sim, d->addr, buf, *off, d->len, avail, to_host);
		if (rc)
			return rc;
	}
	*off += d->len;
	return 0;
}

static uint16_t sgl_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, uint8_t *buf,
			 size_t len, size_t avail, bool to_host)
{
	struct sim_sgl_desc d;
	size_t off = 0;
	uint16_t rc;

	memcpy(&d, &sqe->prp1, sizeof(d));
	for (unsigned lists = 0;; lists++) {
		unsigned type = d.type >> 4;
		size_t n;

		if (type == SGL_DATA_BLOCK) {
			rc = data_block(sim, &d, buf, &off, len, avail, to_host);
			if (rc)
				return rc;
			break;
		}
		if (type != SGL_SEGMENT && type != SGL_LAST_SEGMENT)
			return sgl_error(sim, UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
		if (!d.len || d.len % sizeof(d) || (d.addr & 3) || lists == SGL_MAX_LISTS)
			return sgl_error(sim, UPCIE_NVME_SC_SGL_SEG_DESC_INVALID);
		if (!upcie_sim_dma_ok(sim, d.addr, d.len))
			return sgl_error(sim, UPCIE_NVME_SC_DATA_XFER_ERROR);
		n = d.len / sizeof(d);
		const struct sim_sgl_desc *list = (const struct sim_sgl_desc *)(uintptr_t)d.addr;
		bool last = type == SGL_LAST_SEGMENT;

		for (size_t i = 0; i < n; i++) {
			struct sim_sgl_desc e = list[i];
			unsigned et = e.type >> 4;

			if (et == SGL_SEGMENT || et == SGL_LAST_SEGMENT) {
				/* Only the last descriptor of a Segment list chains. */
				if (last || i + 1 != n)
					return sgl_error(sim, UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
				d = e;
				goto next_list;
			}
			if (et != SGL_DATA_BLOCK)
				return sgl_error(sim, UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
			rc = data_block(sim, &e, buf, &off, len, avail, to_host);
			if (rc)
				return rc;
		}
		if (!last)
			return sgl_error(sim, UPCIE_NVME_SC_SGL_SEG_DESC_INVALID);
		break;
	next_list:;
	}
	if (off != len)
		return sgl_error(sim, UPCIE_NVME_SC_SGL_DATA_LEN_INVALID);
	return 0;
}

uint16_t upcie_sim_data_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, uint8_t *buf,
			     size_t len, size_t avail, bool to_host)
{
	switch (sqe->flags >> 6) {
	case 0:
		return upcie_sim_prp_xfer(sim, sqe->prp1, sqe->prp2, buf, len, avail, to_host);
	case 1:
		if (sim->cfg.sgl)
			return sgl_xfer(sim, sqe, buf, len, avail, to_host);
		return UPCIE_NVME_SC_INVALID_FIELD;
	default: /* 10b: SGL with an SGL for metadata; no metadata here */
		return UPCIE_NVME_SC_INVALID_FIELD;
	}
}
