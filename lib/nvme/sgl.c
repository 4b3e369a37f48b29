/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Scatter lists: a list of heap buffers described to the controller as
 * PRPs (Base spec 2.0, 4.1.1) when they are laid out on memory-page
 * boundaries, else as an SGL (4.1.2): one Data Block descriptor in SGL1
 * for a single bus-contiguous run, or a Last Segment descriptor in SGL1
 * pointing at a list of Data Block descriptors. PSDT = 01b: SGLs for data,
 * MPTR (unused here) would be a plain address.
 *
 * Metadata SGLs (PSDT = 10b, Identify SGLS bit 19): MPTR holds the address
 * of one qword-aligned SGL descriptor, a Data Block for metadata in one
 * bus-contiguous run, else a Last Segment pointing at a list of Data
 * Blocks; the data pointer is an SGL then too. Read, Write and Compare
 * with a separate metadata buffer that is not bus-contiguous take this way
 * (nvm.c decides); the descriptors go into the command's slot of the
 * queue pair's list memory (the PRP-list slot, sized for them when the
 * queue pair is created), so nothing is allocated per command:
 *
 *   slot[0]            the descriptor MPTR points at
 *   slot[1..m]         the metadata's Data Blocks, when m > 1
 *   slot[m+1..m+d]     the data's Data Blocks, when d > 1 (SGL1 a Last
 *                      Segment pointing here; else SGL1 the one Data Block)
 *
 * A buffer is split into bus-contiguous runs: on a uio heap bus addresses
 * are contiguous only within a hugepage, so a buffer that crosses one
 * becomes two descriptors.
 */
#include <errno.h>
#include <string.h>

#include <upcie/engine.h>
#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

/* SGL descriptor (Base spec 4.1.2, Figure 113). */
struct sgl_desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type; /* descriptor type (7:4), sub type (3:0) */
};
_Static_assert(sizeof(struct sgl_desc) == 16, "SGL descriptor is 16 bytes");

#define SGL_DATA_BLOCK	 0x00
#define SGL_LAST_SEGMENT 0x30
#define PSDT_SGL	 0x40 /* CDW0 bits 15:14 = 01b */
#define PSDT_MD_SGL	 0x80 /* 10b: SGLs for data and metadata */
#define PSDT_MASK	 0xc0

bool upcie_nvme_ctrl_sgl(const struct upcie_nvme_ctrl *ctrl)
{
	/* SGLS bits 1:0: 01b or 10b (dword-aligned data blocks) mean supported. */
	return (upcie_nvme_ctrl_id(ctrl)->sgls & 3) != 0;
}

bool upcie_nvme_ctrl_md_sgl(const struct upcie_nvme_ctrl *ctrl)
{
	return upcie_nvme_ctrl_sgl(ctrl) &&
	       (upcie_nvme_ctrl_id(ctrl)->sgls & UPCIE_NVME_SGLS_MPTR_SGL);
}

size_t upcie_nvme_iov_list_bytes(unsigned iovcnt, size_t len, uint32_t page_size)
{
	size_t pages = len / page_size + 2 * (size_t)iovcnt;
	size_t prp = (pages + pages / (page_size / 8) + 1) * 8;
	size_t sgl = pages * sizeof(struct sgl_desc);

	return prp > sgl ? prp : sgl;
}

/* Length of the bus-contiguous run at va (at most len). */
static size_t run_len(const struct upcie_dma_heap *h, const char *va, size_t len, uint64_t *bus)
{
	size_t n;

	*bus = upcie_dma_bus(h, va);
	n = 4096 - ((uintptr_t)va & 4095);
	while (n < len && upcie_dma_bus(h, va + n) == *bus + n)
		n += n + 4096 <= len ? 4096 : len - n;
	return n < len ? n : len;
}

static long sgl_setup(struct upcie_nvme_ctrl *c, const struct iovec *iov, unsigned iovcnt,
		      struct upcie_nvme_sqe *sqe, void *list, size_t list_bytes)
{
	struct sgl_desc *d = list, first = {0}, seg;
	size_t max = list ? list_bytes / sizeof(*d) : 0, n = 0;
	long total = 0;

	if (!upcie_nvme_ctrl_sgl(c))
		return upcie_err(-ENOTSUP,
				 "%s: the controller does not support SGLs (Identify SGLS = %#x); "
				 "describe the data with PRPs",
				 upcie_pci_name(c->dev), upcie_nvme_ctrl_id(c)->sgls);
	for (unsigned i = 0; i < iovcnt; i++) {
		const char *va = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left) {
			uint64_t bus;
			size_t k =
			    run_len(c->heap, va, left > UINT32_MAX ? UINT32_MAX : left, &bus);
			struct sgl_desc cur = {
			    .addr = bus, .len = (uint32_t)k, .type = SGL_DATA_BLOCK};

			if (!n)
				first = cur;
			if (n < max)
				d[n] = cur;
			n++;
			va += k;
			left -= k;
			total += (long)k;
		}
	}
	if (n == 1) {
		memcpy(&sqe->prp1, &first, sizeof(first)); /* SGL1 spans PRP1 and PRP2 */
	} else {
		uint64_t lb = list ? upcie_dma_bus(c->heap, list) : UPCIE_DMA_BAD_ADDR;

		if (n > max)
			return upcie_err(-ENOSPC,
					 "the list memory (%zu bytes) is too small for %zu SGL "
					 "descriptors; size it with upcie_nvme_iov_list_bytes()",
					 list_bytes, n);
		if (lb == UPCIE_DMA_BAD_ADDR || (lb & 15))
			return upcie_err(-EINVAL,
					 "the SGL list at %p must be 16-byte aligned heap memory",
					 list);
		seg = (struct sgl_desc){
		    .addr = lb, .len = (uint32_t)(n * sizeof(*d)), .type = SGL_LAST_SEGMENT};
		memcpy(&sqe->prp1, &seg, sizeof(seg));
	}
	sqe->flags = (uint8_t)((sqe->flags & ~PSDT_MASK) | PSDT_SGL);
	return total;
}

/* ---- metadata SGLs ---- */

/* Runs of at most len bytes: one per 4 KiB page it touches, at worst
 * (registered memory, a uio heap's hugepage boundary). */
static uint32_t runs_max(uint32_t len)
{
	return len / 4096 + 2;
}

uint32_t upcie_nvme_md_sgl_descs(uint32_t max_xfer)
{
	/* The MPTR descriptor, the data's runs and the metadata's (at most
	 * max_xfer bytes too: ns.c fits data and metadata in MDTS). */
	return 1 + 2 * runs_max(max_xfer);
}

/* Data Blocks for [va, va + len) into d (room entries); the count, or
 * room + 1 when they do not fit. */
static size_t runs_put(const struct upcie_dma_heap *h, const char *va, size_t len,
		       struct sgl_desc *d, size_t room)
{
	size_t n = 0;

	while (len) {
		uint64_t bus;
		size_t k = run_len(h, va, len, &bus);

		if (n == room)
			return room + 1;
		d[n++] = (struct sgl_desc){.addr = bus, .len = (uint32_t)k, .type = SGL_DATA_BLOCK};
		va += k;
		len -= k;
	}
	return n;
}

/* The descriptor for n Data Blocks at list[0..n): the one, or a Last
 * Segment pointing at the list (which must be bus-contiguous). */
static int list_desc(const struct upcie_dma_heap *h, struct sgl_desc *list, size_t n,
		     struct sgl_desc *out)
{
	uint64_t bus;
	size_t bytes = n * sizeof(*list);

	if (n == 1) {
		*out = list[0];
		return 0;
	}
	if (run_len(h, (const char *)list, bytes, &bus) != bytes)
		return -EINVAL;
	*out = (struct sgl_desc){.addr = bus, .len = (uint32_t)bytes, .type = SGL_LAST_SEGMENT};
	return 0;
}

/* Fill sqe's SGL1 and MPTR for data buf and metadata md, in slot. */
static int md_sgl_build(struct upcie_nvme_qpair *qp, struct sgl_desc *slot,
			struct upcie_nvme_sqe *sqe, const void *buf, size_t len,
			const struct upcie_nvme_md_buf *md)
{
	const struct upcie_dma_heap *h = qp->heap;
	size_t room = qp->md_sgl_descs, m, d = 0;
	struct sgl_desc sgl1;

	m = runs_put(h, md->va, md->len, slot + 1, room - 1);
	if (m < room)
		d = runs_put(h, buf, len, slot + 1 + m, room - 1 - m);
	if (m >= room || d > room - 1 - m)
		return upcie_err(-ENOSPC,
				 "qpair %u: a %zu-byte transfer with %zu bytes of metadata takes "
				 "more SGL descriptors than a command's list memory holds (%zu)",
				 qp->qid, len, md->len, room);
	if (list_desc(h, slot + 1, m, &slot[0]) || list_desc(h, slot + 1 + m, d, &sgl1))
		return upcie_err(-EINVAL,
				 "qpair %u: the SGL list memory of a command is not contiguous "
				 "for the device; create the queue pair on a heap of larger pages",
				 qp->qid);
	memcpy(&sqe->prp1, &sgl1, sizeof(sgl1)); /* SGL1 spans PRP1 and PRP2 */
	sqe->mptr = upcie_dma_bus(h, slot);
	sqe->flags = (uint8_t)((sqe->flags & ~PSDT_MASK) | PSDT_MD_SGL);
	return 0;
}

/* upcie_nvme_queue_submit() for a command whose data and metadata go by
 * SGLs: the same steps, the CID's slot holding descriptors. */
int upcie_nvme_queue_submit_md_sgl(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				   const void *buf, size_t len, const struct upcie_nvme_md_buf *md,
				   upcie_nvme_cb cb, void *arg, unsigned flags, uint16_t *cidp)
{
	struct sgl_desc *slot;
	uint16_t cid;
	int rc;

	if (!qp->nfree)
		return upcie_nvme_queue_submit_err(qp, -EAGAIN, len);
	if (!buf || len > qp->max_xfer || ((uintptr_t)buf & 3) ||
	    !upcie_dma_contains(qp->heap, buf, len))
		return upcie_nvme_queue_submit_err(qp, -EINVAL, len);
	cid = qp->free_cids[qp->nfree - 1];
	slot = (struct sgl_desc *)(qp->prp_lists +
				   (size_t)(cid & qp->cid_mask) * qp->prp_slot_entries);
	/* Registered data is held before it is translated, as in
	 * upcie_nvme_queue_submit() (the metadata buffer is the caller's to
	 * keep, as with MPTR). */
	if ((uintptr_t)buf - qp->seg_va >= qp->heap->len) {
		rc = upcie_nvme_reg_hold(qp, buf, len, &cb, &arg);
		if (rc)
			return rc;
	}
	rc = md_sgl_build(qp, slot, sqe, buf, len, md);
	if (rc) {
		upcie_nvme_reg_unhold(cb, arg);
		return rc;
	}
	upcie_nvme_queue_post(qp, sqe, cid, cb, arg, flags, cidp);
	return 0;
}

/* Memory pages [bus, bus + len) touches. */
static size_t pages_of(uint64_t bus, size_t len, uint64_t ps)
{
	return (size_t)(((bus & (ps - 1)) + len + ps - 1) / ps);
}

/* PRPs: every buffer but the first starts on a memory page, every buffer
 * but the last ends on one. */
static long prp_setup(struct upcie_nvme_ctrl *c, const struct iovec *iov, unsigned iovcnt,
		      struct upcie_nvme_sqe *sqe, void *list, size_t list_bytes, bool quiet)
{
	const uint64_t ps = c->page_size, pmask = ps - 1;
	uint64_t *e = list, first = UPCIE_DMA_BAD_ADDR;
	size_t slots = list ? list_bytes / 8 : 0, n = 0, pages = 0, left;
	long total = 0;

	for (unsigned i = 0; i < iovcnt; i++) {
		uint64_t bus = upcie_dma_bus(c->heap, iov[i].iov_base);
		const char *why = NULL;

		if (bus & 3)
			why = "start dword aligned";
		else if (i > 0 && (bus & pmask))
			why = "start";
		else if (i + 1 < iovcnt && ((bus + iov[i].iov_len) & pmask))
			why = "end";
		if (why) {
			if (quiet)
				return -EINVAL;
			return upcie_err(-EINVAL,
					 "buffer %u of the list (%p, %zu bytes) does not %s on a "
					 "%llu-byte memory page: PRPs cannot describe it (use an "
					 "SGL)",
					 i, iov[i].iov_base, iov[i].iov_len, why,
					 (unsigned long long)ps);
		}
		pages += pages_of(bus, iov[i].iov_len, ps);
		total += (long)iov[i].iov_len;
	}
	left = pages; /* entries still to place, PRP1's included */
	for (unsigned i = 0; i < iovcnt; i++) {
		const char *va = iov[i].iov_base, *end = va + iov[i].iov_len;

		while (va < end) {
			uint64_t bus = upcie_dma_bus(c->heap, va);

			left--;
			va += ps - (bus & pmask);
			if (first == UPCIE_DMA_BAD_ADDR) {
				first = bus;
				continue;
			}
			if (pages == 2) {
				sqe->prp2 = bus;
				continue;
			}
			/* Last slot of a list page with more than this entry to come: chain. */
			if (n < slots && ((uintptr_t)&e[n] & pmask) == ps - 8 && left > 0) {
				e[n] = upcie_dma_bus(c->heap, &e[n + 1]);
				n++;
			}
			if (n >= slots)
				return upcie_err(-ENOSPC,
						 "the PRP list (%zu bytes) is too small for %zu "
						 "pages; size it with upcie_nvme_iov_list_bytes()",
						 list_bytes, pages);
			e[n++] = bus;
		}
	}
	sqe->flags &= (uint8_t)~PSDT_MASK;
	sqe->prp1 = first;
	if (pages == 1)
		sqe->prp2 = 0;
	else if (pages > 2) {
		sqe->prp2 = upcie_dma_bus(c->heap, list);
		if (sqe->prp2 & 7)
			return upcie_err(-EINVAL, "the PRP list at %p is not heap memory", list);
	}
	return total;
}

long upcie_nvme_iov_setup(struct upcie_nvme_ctrl *ctrl, enum upcie_nvme_iov_mode mode,
			  const struct iovec *iov, unsigned iovcnt, struct upcie_nvme_sqe *sqe,
			  void *list, size_t list_bytes)
{
	if (!ctrl || !iov || !iovcnt || !sqe)
		return upcie_err(-EINVAL, "upcie_nvme_iov_setup: no controller, buffers or SQE");
	for (unsigned i = 0; i < iovcnt; i++)
		if (!iov[i].iov_len ||
		    !upcie_dma_contains(ctrl->heap, iov[i].iov_base, iov[i].iov_len))
			return upcie_err(
			    -EINVAL,
			    "buffer %u of the list (%p, %zu bytes) is empty or neither "
			    "in the DMA heap nor registered (upcie_dma_register)",
			    i, iov[i].iov_base, iov[i].iov_len);
	if (list && (uintptr_t)list & 15)
		return upcie_err(-EINVAL, "the list memory at %p is not 16-byte aligned", list);
	switch (mode) {
	case UPCIE_NVME_IOV_PRP:
		return prp_setup(ctrl, iov, iovcnt, sqe, list, list_bytes, false);
	case UPCIE_NVME_IOV_SGL:
		return sgl_setup(ctrl, iov, iovcnt, sqe, list, list_bytes);
	case UPCIE_NVME_IOV_AUTO: {
		long rc = prp_setup(ctrl, iov, iovcnt, sqe, list, list_bytes, true);
		if (rc != -EINVAL || !upcie_nvme_ctrl_sgl(ctrl))
			return rc == -EINVAL
				   ? prp_setup(ctrl, iov, iovcnt, sqe, list, list_bytes, false)
				   : rc;
		return sgl_setup(ctrl, iov, iovcnt, sqe, list, list_bytes);
	}
	}
	return upcie_err(-EINVAL, "upcie_nvme_iov_setup: unknown mode %d", (int)mode);
}

int upcie_nvme_submit_iov(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_qpair *qp,
			  enum upcie_nvme_iov_mode mode, const struct upcie_nvme_sqe *sqe,
			  const struct iovec *iov, unsigned iovcnt, void *list, size_t list_bytes,
			  upcie_nvme_cb cb, void *arg, unsigned flags)
{
	struct upcie_nvme_sqe copy;
	long rc;

	if (!sqe || !qp || !iov || !iovcnt)
		return upcie_err(-EINVAL, "upcie_nvme_submit_iov: no SQE, queue pair or buffers");
	copy = *sqe;
	/* Registered buffers are held before they are translated (a held
	 * region cannot be unmapped), until the command completes. */
	rc = upcie_nvme_reg_hold_iov(qp, iov, iovcnt, &cb, &arg);
	if (rc < 0)
		return (int)rc;
	rc = upcie_nvme_iov_setup(ctrl, mode, iov, iovcnt, &copy, list, list_bytes);
	if (rc >= 0)
		rc = upcie_nvme_submit_raw(qp, &copy, NULL, 0, cb, arg, flags);
	if (rc < 0)
		upcie_nvme_reg_unhold(cb, arg);
	return rc < 0 ? (int)rc : 0;
}
