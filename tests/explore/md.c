/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Metadata in pieces (metadata SGLs, PSDT 10b): on seeds whose namespace 2
 * keeps its PI apart (separate metadata) and whose controller offers SGLS
 * bit 19, some reads and writes carry the PI across the bus from a
 * metadata buffer of their slot instead of PRACT. The buffers lie in
 * memory whose bus addresses jump at every 4 KiB page: a memfd mapped
 * three times, the host's view contiguous and registered, its bus table
 * (white box) pointing every page at one of two other views in turn, so
 * that a buffer crossing a page boundary takes a metadata SGL of two Data
 * Blocks, and one within a page goes through MPTR as one address. Faults,
 * resets and aborts combine with them as with any other command.
 *
 * Checked: (b) for metadata buffers too, through the two views; (m) as
 * before (the device checks the PI a write brought); and (n) a read that
 * brought its PI back succeeded only with PI that matches the data it
 * brought (upcie_nvme_pi_verify).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upcie/pi.h>

#include "dma/heap.h" /* white box: the region's bus table */
#include "explore.h"

#define MD_PG	  4096u
#define MD_PAGES  (X_SLOTS + 1) /* odd: registration describes it in 4 KiB pages */
#define MD_BYTES  ((size_t)MD_PAGES * MD_PG)
#define MD_BEFORE 40 /* a slot's buffer starts this far before its page's end */

static struct {
	uint8_t *host;	  /* the host's view, registered */
	uint8_t *view[2]; /* the device's views: even pages, odd pages */
} M;

/* The metadata buffer of a slot (1-based): across the end of its page. */
uint8_t *x_md_buf(uint32_t slot)
{
	return M.host + (size_t)slot * MD_PG - MD_BEFORE;
}

void x_md_setup(void)
{
	struct upcie_dma_region *r = NULL;
	struct upcie_dma_reg_table *t;
	int fd;

	if (!X.md_sgl)
		return;
	fd = memfd_create("explore-md", 0);
	if (fd < 0 || ftruncate(fd, (off_t)MD_BYTES)) {
		perror("explore: memfd for metadata");
		exit(2);
	}
	M.host = mmap(NULL, MD_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	for (int v = 0; v < 2; v++)
		M.view[v] = mmap(NULL, MD_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd); /* the mappings keep the memory; (k) counts fds */
	if (M.host == MAP_FAILED || M.view[0] == MAP_FAILED || M.view[1] == MAP_FAILED ||
	    upcie_dma_register(X.heap, M.host, MD_BYTES) ||
	    upcie_dma_register(X.heap, M.view[0], MD_BYTES) ||
	    upcie_dma_register(X.heap, M.view[1], MD_BYTES)) {
		fprintf(stderr, "explore: cannot set up metadata memory: %s\n", upcie_errmsg());
		exit(2);
	}
	t = X.heap->regs;
	for (size_t i = 0; t && i < t->n; i++)
		if (t->r[i]->va == (uintptr_t)M.host)
			r = t->r[i];
	if (!r || r->page_size != MD_PG) {
		fprintf(stderr, "explore: the metadata region is not in 4 KiB pages\n");
		exit(2);
	}
	for (size_t p = 0; p < MD_PAGES; p++)
		r->bus[p] = (uintptr_t)(M.view[p & 1] + p * MD_PG);
}

/* Before the heap goes (its destroy releases the regions). */
void x_md_teardown(void)
{
	if (!M.host)
		return;
	munmap(M.host, MD_BYTES);
	munmap(M.view[0], MD_BYTES);
	munmap(M.view[1], MD_BYTES);
	M.host = M.view[0] = M.view[1] = NULL;
}

/* (b) for a device transfer at bus: in a metadata buffer, of the command
 * that owns its slot, in the command's direction. */
void x_md_hook(uint64_t bus, size_t len, bool to_host)
{
	for (int v = 0; M.host && v < 2; v++) {
		uintptr_t base = (uintptr_t)M.view[v], a = (uintptr_t)bus;
		uint32_t slot;
		struct xslot *s;
		struct xcmd *c;
		size_t off;

		if (a < base || a - base >= MD_BYTES)
			continue;
		off = a - base;
		slot = (uint32_t)((off + MD_BEFORE) / MD_PG);
		s = slot && slot <= X.nslots ? &X.slots[slot - 1] : NULL;
		c = s && s->owner ? x_cmd(s->owner) : NULL;
		if (!c || !c->md)
			x_fail("(b) device %s %zu bytes of the metadata buffer of slot %u, whose "
			       "command (%u) is not live or moves no metadata",
			       to_host ? "wrote" : "read", len, slot, s ? s->last : 0);
		else if ((c->kind == X_READ) != to_host)
			x_fail("(b) device %s the metadata buffer of %s %u",
			       to_host ? "wrote" : "read", c->kind == X_READ ? "read" : "write",
			       s->owner);
		else if (off + len > (size_t)slot * MD_PG - MD_BEFORE + (size_t)c->nlb * c->md_ms)
			x_fail("(b) device transfer of %zu bytes past the metadata of command %u",
			       len, s->owner);
		return;
	}
}

/* (n) A read that brought its PI back: the PI matches the data. */
void x_md_read_done(const struct xcmd *c, uint32_t id)
{
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_get(X.ctrl, c->nsid);
	struct upcie_nvme_io_opts o = {
	    .opts_size = sizeof(o), .reftag = c->md_ref, .flags = ns ? upcie_nvme_ns_prchk(ns) : 0};
	uint32_t bad = 0;
	int rc;

	if (!ns || c->status || !c->md)
		return;
	rc =
	    upcie_nvme_pi_verify(ns, X.slots[c->slot - 1].buf, x_md_buf(c->slot), c->nlb, &o, &bad);
	if (rc > 0)
		x_fail("(n) read %u (ns %u lba %" PRIu64 "+%u) succeeded, but the PI it brought "
		       "fails for block %u: %#x",
		       id, c->nsid, c->slba, c->nlb, bad, rc);
}
