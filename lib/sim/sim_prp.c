/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Registered DMA memory and the PRP walker of the emulated controller.
 *
 * The sim backend's bus address is the virtual address; the model may touch
 * host memory only inside ranges registered through the backend's DMA map.
 * Anything else is a Data Transfer Error, counted in xfer_errors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sim_priv.h"

/* Is [addr, addr + len) covered by registered ranges (possibly adjacent ones)? */
bool upcie_sim_dma_ok(struct upcie_sim *sim, uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len;

	if (end < addr || !len)
		return len == 0 && end == addr;
	while (addr < end) {
		const struct sim_range *r = NULL;

		if (sim->last_hit < sim->nr_ranges) {
			const struct sim_range *c = &sim->ranges[sim->last_hit];
			if (c->start <= addr && addr < c->end)
				r = c;
		}
		for (size_t i = 0; !r && i < sim->nr_ranges; i++) {
			if (sim->ranges[i].start <= addr && addr < sim->ranges[i].end) {
				r = &sim->ranges[i];
				sim->last_hit = i;
			}
		}
		if (!r)
			return false;
		addr = r->end;
	}
	return true;
}

int upcie_sim_dma_add(struct upcie_sim *sim, uint64_t addr, uint64_t len)
{
	if (!len || addr + len < addr)
		return upcie_err(-EINVAL, "sim: DMA range %#llx+%#llx is empty or wraps",
				 (unsigned long long)addr, (unsigned long long)len);
	if (sim->nr_ranges == sim->cap_ranges) {
		size_t n = sim->cap_ranges ? sim->cap_ranges * 2 : 16;
		struct sim_range *r = realloc(sim->ranges, n * sizeof(*r));
		if (!r)
			return upcie_err(-ENOMEM, "sim: out of memory registering DMA memory");
		sim->ranges = r;
		sim->cap_ranges = n;
	}
	sim->ranges[sim->nr_ranges++] = (struct sim_range){addr, addr + len};
	return 0;
}

int upcie_sim_dma_del(struct upcie_sim *sim, uint64_t addr, uint64_t len)
{
	for (size_t i = 0; i < sim->nr_ranges; i++) {
		if (sim->ranges[i].start == addr && sim->ranges[i].end == addr + len) {
			sim->ranges[i] = sim->ranges[--sim->nr_ranges];
			sim->last_hit = 0;
			/* A live queue may have lost its memory: the model must not touch it. */
			upcie_sim_check_dead(sim);
			return 0;
		}
	}
	return upcie_err(-EINVAL,
			 "sim: DMA unmap of %#llx+%#llx does not match a mapping; "
			 "unmap with the va and len given to the map call",
			 (unsigned long long)addr, (unsigned long long)len);
}

static uint16_t xfer_error(struct upcie_sim *sim, uint16_t status)
{
	sim->st.xfer_errors++;
	return status;
}

/*
 * One contiguous piece of host memory: every data transfer of a command
 * (PRP pages, PRP list entries' pages, SGL data blocks) comes through here,
 * so this is where the DMA hook sees it, once it passed the checks and just
 * before the bytes move. PRP lists and SGL descriptor lists are read
 * elsewhere and not reported.
 */
static uint16_t seg(struct upcie_sim *sim, uint64_t addr, uint8_t *buf, size_t off, size_t n,
		    size_t avail, bool to_host)
{
	uint8_t *host = (uint8_t *)(uintptr_t)addr;

	if (!upcie_sim_dma_ok(sim, addr, n))
		return xfer_error(sim, UPCIE_NVME_SC_DATA_XFER_ERROR);
	if (sim->dma_hook)
		sim->dma_hook(sim->dma_hook_arg, addr, n, to_host);
	if (!to_host) {
		memcpy(buf + off, host, n);
		return 0;
	}
	if (off + n <= avail) {
		memcpy(host, buf + off, n);
	} else {
		size_t k = off < avail ? avail - off : 0;
		memcpy(host, buf + off, k);
		memset(host + k, 0, n - k);
	}
	return 0;
}

/*
 * Walk the PRPs of a command (Base spec 4.1.1):
 *  - PRP1 may carry an offset into its page, dword aligned;
 *  - if the rest fits in one page, PRP2 is that page, with no offset;
 *  - else PRP2 points to a PRP list (qword aligned, may have an offset);
 *    list entries have no offset, and the last slot of a list page chains
 *    to the next list page when more entries remain.
 * Every page and every list page must be registered memory.
 */
uint16_t upcie_sim_prp_xfer(struct upcie_sim *sim, uint64_t prp1, uint64_t prp2, uint8_t *buf,
			    size_t len, size_t avail, bool to_host)
{
	const size_t ps = sim->page_size;
	const uint64_t pmask = ps - 1;
	size_t off, n;
	uint64_t list;
	uint16_t rc;

	if (!len)
		return 0;
	if (prp1 & 3)
		return xfer_error(sim, UPCIE_NVME_SC_INVALID_FIELD);
	n = ps - (size_t)(prp1 & pmask);
	if (n > len)
		n = len;
	rc = seg(sim, prp1, buf, 0, n, avail, to_host);
	if (rc)
		return rc;
	off = n;
	if (off == len)
		return 0;
	if (len - off <= ps) {
		if (prp2 & pmask)
			return xfer_error(sim, UPCIE_NVME_SC_INVALID_PRP_OFFSET);
		return seg(sim, prp2, buf, off, len - off, avail, to_host);
	}
	if (prp2 & 7)
		return xfer_error(sim, UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	list = prp2;
	while (off < len) {
		size_t slots = (size_t)(ps - (list & pmask)) / 8;
		size_t pages = (len - off + ps - 1) / ps;
		size_t use = pages > slots ? slots - 1 : pages;
		size_t span = pages > slots ? slots : use;
		const uint64_t *e = (const uint64_t *)(uintptr_t)list;

		if (!upcie_sim_dma_ok(sim, list, span * 8))
			return xfer_error(sim, UPCIE_NVME_SC_DATA_XFER_ERROR);
		for (size_t i = 0; i < use; i++) {
			uint64_t a = e[i];

			if (a & pmask)
				return xfer_error(sim, UPCIE_NVME_SC_INVALID_PRP_OFFSET);
			n = len - off < ps ? len - off : ps;
			rc = seg(sim, a, buf, off, n, avail, to_host);
			if (rc)
				return rc;
			off += n;
		}
		if (off < len) {
			list = e[slots - 1];
			if (list & pmask)
				return xfer_error(sim, UPCIE_NVME_SC_INVALID_PRP_OFFSET);
		}
	}
	return 0;
}

/* One contiguous piece of host memory, for other walkers (SGLs). */
uint16_t upcie_sim_mem_xfer(struct upcie_sim *sim, uint64_t addr, uint8_t *buf, size_t off,
			    size_t n, size_t avail, bool to_host)
{
	return seg(sim, addr, buf, off, n, avail, to_host);
}
