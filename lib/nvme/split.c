/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transfers above MDTS, split into commands of at most the controller's
 * limit (NVMe Base spec 5.15.2.1, Identify Controller MDTS). Built on
 * upcie_nvme_submit_raw(): each part is an ordinary Read or Write whose
 * completion is counted in the caller's struct upcie_nvme_split; the
 * caller's callback runs once, after the last part, with the first error.
 *
 * All parts enter the SQ or none does: the free slots are counted first,
 * and nothing between that count and the last submit can take a slot (a
 * queue pair belongs to one thread).
 */
#include <errno.h>
#include <string.h>

#include <upcie/engine.h>

#include "core/log.h"
#include "nvme/nvme.h"

uint32_t upcie_nvme_split_parts(const struct upcie_nvme_ns *ns, uint32_t nlb)
{
	if (!nlb || !ns->max_xfer_blocks)
		return 0;
	return (nlb + ns->max_xfer_blocks - 1) / ns->max_xfer_blocks;
}

static void part_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_split *s = arg;

	if (upcie_nvme_cqe_status(cqe) && !s->failed) {
		s->failed = true;
		s->cqe = *cqe;
	}
	if (--s->pending)
		return;
	if (!s->failed)
		s->cqe = *cqe;
	if (s->cb)
		s->cb(s->arg, &s->cqe);
}

static int split_rw(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
		    uint64_t slba, uint32_t nlb, const void *buf, struct upcie_nvme_split *s,
		    upcie_nvme_cb cb, void *arg, unsigned flags)
{
	uint32_t parts = upcie_nvme_split_parts(ns, nlb);
	uint32_t room = upcie_nvme_qpair_depth(qp) - 1 - upcie_nvme_qpair_outstanding(qp);
	size_t len = (size_t)nlb << ns->lba_shift;
	uint32_t done = 0, queued = 0;

	if (unlikely(!s || !buf))
		return upcie_err(-EINVAL, "split transfer: no buffer or no split state");
	if (unlikely(upcie_nvme_ns_stale(ns)))
		return upcie_nvme_ns_stale_err(ns);
	if (unlikely(!ns->max_xfer_blocks))
		return upcie_err(-ENOTSUP,
				 "nsid %u has %u metadata bytes per block; this library does no "
				 "metadata I/O",
				 ns->nsid, ns->ms);
	if (unlikely(!nlb || slba >= ns->nsze || nlb > ns->nsze - slba))
		return upcie_err(-EINVAL,
				 "nsid %u: %u blocks at LBA %llu are outside the namespace (%llu "
				 "blocks)",
				 ns->nsid, nlb, (unsigned long long)slba,
				 (unsigned long long)ns->nsze);
	if (unlikely(parts > upcie_nvme_qpair_depth(qp) - 1))
		return upcie_err(-EINVAL,
				 "a %zu-byte transfer takes %u commands of at most %u blocks; the "
				 "queue holds %u: use a deeper queue",
				 len, parts, ns->max_xfer_blocks, upcie_nvme_qpair_depth(qp) - 1);
	if (unlikely(!upcie_dma_contains(qp->heap, buf, len)))
		return upcie_err(-EINVAL,
				 "split transfer: the %zu-byte buffer at %p is neither in the DMA "
				 "heap nor registered; allocate I/O buffers with "
				 "upcie_dma_alloc_pages() or register them (upcie_dma_register)",
				 len, buf);
	if (parts > room)
		return -EAGAIN; /* not an error: poll and retry */

	memset(s, 0, sizeof(*s));
	s->cb = cb;
	s->arg = arg;
	s->parts = parts;
	s->pending = parts;
	while (done < nlb) {
		uint32_t n = nlb - done < ns->max_xfer_blocks ? nlb - done : ns->max_xfer_blocks;
		uint64_t lba = slba + done;
		struct upcie_nvme_sqe sqe = {
		    .opc = opc,
		    .nsid = ns->nsid,
		    .cdw10 = (uint32_t)lba,
		    .cdw11 = (uint32_t)(lba >> 32),
		    .cdw12 = n - 1, /* NLB is 0's based */
		};
		int rc =
		    upcie_nvme_submit_raw(qp, &sqe, (char *)buf + ((size_t)done << ns->lba_shift),
					  (size_t)n << ns->lba_shift, part_done, s, 0);
		/* Checked above: room, heap, sizes; a refusal here is unexpected. The
		 * parts already queued still complete: the callback then reports an
		 * internal error, once, and the call returns 0 so it is awaited. */
		if (unlikely(rc)) {
			upcie_err(rc,
				  "split transfer: part at LBA %llu refused after %u of %u "
				  "parts were queued",
				  (unsigned long long)lba, queued, parts);
			if (!queued)
				return rc;
			s->parts = s->pending = queued;
			s->failed = true;
			s->cqe.status = upcie_nvme_status_field(UPCIE_NVME_SC_INTERNAL, 1, 0);
			break;
		}
		done += n;
		queued++;
	}
	if (flags & UPCIE_NVME_SUBMIT_RING)
		upcie_nvme_ring(qp);
	return 0;
}

int upcie_nvme_read_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			  uint64_t slba, uint32_t nlb, void *buf, struct upcie_nvme_split *split,
			  upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return split_rw(qp, UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, split, cb, arg, flags);
}

int upcie_nvme_write_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			   uint64_t slba, uint32_t nlb, const void *buf,
			   struct upcie_nvme_split *split, upcie_nvme_cb cb, void *arg,
			   unsigned flags)
{
	return split_rw(qp, UPCIE_NVME_CMD_WRITE, ns, slba, nlb, buf, split, cb, arg, flags);
}
