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
 *
 * PSDT 10b (with upcie_sim_set_md_sgl, SGLS bit 19): the data as for 01b,
 * and MPTR the address of one qword-aligned descriptor for the separate
 * metadata, walked by the same rules: its Data Blocks dword aligned (no
 * SGLS bit 17) and exactly the metadata length (else Metadata SGL Length
 * Invalid). The metadata SGL is checked whole before anything moves.
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

/* One walk: where the bytes go, and what a metadata SGL changes. */
struct sgl_walk {
	uint8_t *buf;
	size_t len, avail, off;
	bool to_host;
	bool move;	     /* false: check the descriptors only */
	bool md;	     /* the metadata SGL: dword-aligned blocks */
	uint16_t len_status; /* Data or Metadata SGL Length Invalid */
};

static uint16_t sgl_error(struct upcie_sim *sim, uint16_t status)
{
	sim->st.xfer_errors++;
	return status;
}

static uint16_t data_block(struct upcie_sim *sim, const struct sim_sgl_desc *d, struct sgl_walk *w)
{
	if (d->type & 0xf)
		return sgl_error(sim, UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
	if (d->len > w->len - w->off)
		return sgl_error(sim, w->len_status);
	if (w->md && (d->addr & 3))
		return sgl_error(sim, UPCIE_NVME_SC_INVALID_FIELD);
	if (d->len && w->move) {
		uint16_t rc =
		    upcie_sim_mem_xfer(sim, d->addr, w->buf, w->off, d->len, w->avail, w->to_host);
		if (rc)
			return rc;
	} else if (d->len && !upcie_sim_dma_ok(sim, d->addr, d->len)) {
		return sgl_error(sim, UPCIE_NVME_SC_DATA_XFER_ERROR);
	}
	w->off += d->len;
	return 0;
}

/* Walk the SGL whose first descriptor is d. */
static uint16_t sgl_walk(struct upcie_sim *sim, struct sim_sgl_desc d, struct sgl_walk *w)
{
	uint16_t rc;

	w->off = 0;
	for (unsigned lists = 0;; lists++) {
		unsigned type = d.type >> 4;
		size_t n;

		if (type == SGL_DATA_BLOCK) {
			rc = data_block(sim, &d, w);
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
			rc = data_block(sim, &e, w);
			if (rc)
				return rc;
		}
		if (!last)
			return sgl_error(sim, UPCIE_NVME_SC_SGL_SEG_DESC_INVALID);
		break;
	next_list:;
	}
	if (w->off != w->len)
		return sgl_error(sim, w->len_status);
	return 0;
}

static bool sgl_psdt_ok(const struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	switch (sqe->flags >> 6) {
	case 1:
		return sim->cfg.sgl;
	case 2:
		return sim->cfg.sgl && sim->md_sgl;
	default:
		return false;
	}
}

uint16_t upcie_sim_data_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, uint8_t *buf,
			     size_t len, size_t avail, bool to_host)
{
	struct sgl_walk w = {.buf = buf,
			     .len = len,
			     .avail = avail,
			     .to_host = to_host,
			     .move = true,
			     .len_status = UPCIE_NVME_SC_SGL_DATA_LEN_INVALID};
	struct sim_sgl_desc d;

	if (!(sqe->flags >> 6))
		return upcie_sim_prp_xfer(sim, sqe->prp1, sqe->prp2, buf, len, avail, to_host);
	/* 01b: SGLs for data; 10b: the same, MPTR an SGL for metadata (SGLS
	 * bit 19); 11b is reserved. */
	if (!sgl_psdt_ok(sim, sqe))
		return UPCIE_NVME_SC_INVALID_FIELD;
	memcpy(&d, &sqe->prp1, sizeof(d));
	return sgl_walk(sim, d, &w);
}

uint16_t upcie_sim_md_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, uint8_t *buf,
			   size_t len, bool to_host, bool move)
{
	struct sgl_walk w = {.buf = buf,
			     .len = len,
			     .avail = len,
			     .to_host = to_host,
			     .move = move,
			     .md = true,
			     .len_status = UPCIE_NVME_SC_SGL_MD_LEN_INVALID};
	struct sim_sgl_desc d;

	if (sqe->flags >> 6 != 2)
		return move ? upcie_sim_mem_xfer(sim, sqe->mptr, buf, 0, len, len, to_host) : 0;
	if (!sgl_psdt_ok(sim, sqe))
		return UPCIE_NVME_SC_INVALID_FIELD;
	/* MPTR: the address of one qword-aligned descriptor in host memory. */
	if (sqe->mptr & 7)
		return sgl_error(sim, UPCIE_NVME_SC_INVALID_FIELD);
	if (!upcie_sim_dma_ok(sim, sqe->mptr, sizeof(d)))
		return sgl_error(sim, UPCIE_NVME_SC_DATA_XFER_ERROR);
	memcpy(&d, (const void *)(uintptr_t)sqe->mptr, sizeof(d));
	return sgl_walk(sim, d, &w);
}
