/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVM command submission (NVM Command Set spec 3) and the synchronous
 * helpers built on submit + poll.
 */
#include <errno.h>
#include <string.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

/* Cold: say which of the read/write arguments is wrong. */
__attribute__((cold, noinline)) static int rw_invalid(const struct upcie_nvme_ns *ns, uint32_t nlb,
						      const void *buf)
{
	if (upcie_nvme_ns_stale(ns))
		return upcie_nvme_ns_stale_err(ns);
	if (!ns->max_xfer_blocks)
		return upcie_err(-ENOTSUP,
				 "nsid %u has %u metadata bytes per block: use upcie_nvme_read_ext/"
				 "_write_ext, which take its metadata",
				 ns->nsid, ns->ms);
	if (!buf)
		return upcie_err(-EINVAL, "nsid %u: no buffer", ns->nsid);
	return upcie_err(-EINVAL,
			 "nsid %u: %u blocks is not a valid transfer (1..%u blocks, from MDTS)",
			 ns->nsid, nlb, ns->max_xfer_blocks);
}

/* The opcode rides in flags' top byte on the way to rw_slow: submit flags
 * must stay below it. */
#define RW_OPC_SHIFT 24
_Static_assert(UPCIE_NVME_SUBMIT_RING < (1u << RW_OPC_SHIFT),
	       "submit flags overlap the opcode rw_slow carries in flags");

/* Everything the fast path does not take: the argument checks' errors, a
 * full queue, a buffer it cannot translate, a PRP list. The opcode rides in
 * the top byte of flags so that both paths take the same eight arguments
 * (the fast path reaches this one with a jump). */
__attribute__((noinline)) static int rw_slow(struct upcie_nvme_qpair *qp,
					     const struct upcie_nvme_ns *ns, uint64_t slba,
					     uint32_t nlb, const void *buf, upcie_nvme_cb cb,
					     void *arg, unsigned flags)
{
	if (!nlb || nlb > ns->max_xfer_blocks || !buf)
		return rw_invalid(ns, nlb, buf);
	return upcie_nvme_queue_rw_general(qp, (uint8_t)(flags >> RW_OPC_SHIFT), ns->nsid, slba,
					   nlb, buf, (size_t)nlb * ns->lba_size, cb, arg,
					   flags & ((1u << RW_OPC_SHIFT) - 1));
}

static inline __attribute__((always_inline)) int rw(struct upcie_nvme_qpair *qp, uint8_t opc,
						    const struct upcie_nvme_ns *ns, uint64_t slba,
						    uint32_t nlb, const void *buf, upcie_nvme_cb cb,
						    void *arg, unsigned flags)
{
	/* One compare for nlb 0, nlb above the limit, and a namespace with
	 * metadata (limit 0); a NULL buffer fails the fast path's heap check. */
	if (likely(nlb - 1u < ns->max_xfer_blocks) &&
	    likely(!upcie_nvme_queue_rw(qp, opc, ns->nsid, slba, nlb, buf,
					(size_t)nlb * ns->lba_size, cb, arg, flags)))
		return 0;
	return rw_slow(qp, ns, slba, nlb, buf, cb, arg,
		       (flags & ((1u << RW_OPC_SHIFT) - 1)) | (unsigned)opc << RW_OPC_SHIFT);
}

int upcie_nvme_read(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		    uint32_t nlb, void *buf, upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return rw(qp, UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, cb, arg, flags);
}

int upcie_nvme_write(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		     uint32_t nlb, const void *buf, upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return rw(qp, UPCIE_NVME_CMD_WRITE, ns, slba, nlb, buf, cb, arg, flags);
}

int upcie_nvme_flush(struct upcie_nvme_qpair *qp, uint32_t nsid, upcie_nvme_cb cb, void *arg,
		     unsigned flags)
{
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_FLUSH, .nsid = nsid};

	return upcie_nvme_queue_submit(qp, &sqe, NULL, 0, cb, arg, flags, NULL);
}

int upcie_nvme_write_zeroes(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			    uint64_t slba, uint32_t nlb, upcie_nvme_cb cb, void *arg,
			    unsigned flags)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_CMD_WRITE_ZEROES,
	    .nsid = ns->nsid,
	    .cdw10 = (uint32_t)slba,
	    .cdw11 = (uint32_t)(slba >> 32),
	    .cdw12 = nlb - 1,
	};

	if (upcie_nvme_ns_stale(ns))
		return upcie_nvme_ns_stale_err(ns);
	if (!nlb || nlb > 65536)
		return upcie_err(-EINVAL, "write zeroes: %u blocks is not valid (1..65536)", nlb);
	return upcie_nvme_queue_submit(qp, &sqe, NULL, 0, cb, arg, flags, NULL);
}

int upcie_nvme_deallocate(struct upcie_nvme_qpair *qp, uint32_t nsid,
			  const struct upcie_nvme_dsm_range *ranges, uint32_t nr, upcie_nvme_cb cb,
			  void *arg, unsigned flags)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_CMD_DSM,
	    .nsid = nsid,
	    .cdw10 = nr - 1, /* NR is 0's based */
	    .cdw11 = UPCIE_NVME_DSM_AD,
	};

	if (!nr || nr > 256 || !ranges)
		return upcie_err(-EINVAL, "deallocate: %u ranges %s (1..256 ranges in heap memory)",
				 nr, ranges ? "is not valid" : "without a range table");
	return upcie_nvme_queue_submit(qp, &sqe, ranges, nr * sizeof(*ranges), cb, arg, flags,
				       NULL);
}

int upcie_nvme_submit_raw(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe, void *buf,
			  size_t len, upcie_nvme_cb cb, void *arg, unsigned flags)
{
	struct upcie_nvme_sqe copy;

	if (!sqe || (buf && !len))
		return upcie_err(-EINVAL, "upcie_nvme_submit_raw: %s",
				 sqe ? "a buffer needs a length" : "no command");
	copy = *sqe;
	return upcie_nvme_queue_submit(qp, &copy, buf, len, cb, arg, flags, NULL);
}

/* ---- synchronous helpers ---- */

/* What a finished synchronous command returns. */
static int sync_result(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe,
		       const struct upcie_nvme_cqe *cqe)
{
	uint16_t st = upcie_nvme_cqe_status(cqe);

	if (!st)
		return 0;
	if (st == UPCIE_NVME_SC_HOST_PATH_ERROR)
		return upcie_err(-ENODEV, "qpair %u: command %#x: the controller is gone", qp->qid,
				 sqe->opc);
	if (st == UPCIE_NVME_SC_HOST_ABORTED)
		return upcie_err(
		    -ECANCELED, "qpair %u: command %#x ended by a controller reset (retry is safe)",
		    qp->qid, sqe->opc);
	return upcie_err(-EIO, "qpair %u: command %#x failed: %s%s", qp->qid, sqe->opc,
			 upcie_nvme_status_str(st),
			 upcie_nvme_cqe_dnr(cqe) ? " (do not retry)" : "");
}

/*
 * The wait of the two below, for the command at cid (w its waiter, on the
 * caller's stack), through the library's one wait loop. At the deadline
 * the command goes through the timeout path (Abort, then reset) here and
 * now, so that when this returns the device no longer holds its buffer;
 * only if even that fails does the command stay outstanding (abandoned:
 * its completion will not reach this stack frame).
 */
static int sync_wait(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe,
		     struct upcie_nvme_waiter *w, uint16_t cid, struct upcie_nvme_cqe *cqe,
		     uint32_t timeout_ms)
{
	struct upcie_nvme_req *req;
	int rc;

	if (!timeout_ms)
		timeout_ms = 30000;
	rc = upcie_nvme_queue_wait(qp, &w->done, upcie_now_ms() + timeout_ms, qp->ctrl->dev);
	/* Follow the command, not its slot: NULL once it ended. */
	req = upcie_nvme_queue_req(qp, cid);
	if (rc == -ETIMEDOUT && req && !(req->expect & UPCIE_NVME_REQ_EXPIRED)) {
		bool was = qp->in_slow;

		qp->in_slow = true; /* the recovery's polls only reap */
		upcie_nvme_expire(qp, cid & qp->cid_mask);
		qp->in_slow = was;
	}
	if (!w->done) {
		upcie_nvme_queue_abandon(qp, cid);
		if (rc == -ETIMEDOUT)
			return upcie_err(
			    -ETIMEDOUT,
			    "qpair %u: command %#x (cid %u) did not complete within %u "
			    "ms, and neither Abort nor a reset could end it: the device "
			    "may still write its buffer; keep it until close",
			    qp->qid, sqe->opc, cid, timeout_ms);
		return rc;
	}
	if (cqe)
		*cqe = w->cqe;
	if (rc == -ETIMEDOUT)
		return upcie_err(-ETIMEDOUT,
				 "qpair %u: command %#x (cid %u) did not complete within %u ms; it "
				 "was ended (%s)",
				 qp->qid, sqe->opc, cid, timeout_ms,
				 upcie_nvme_status_str(upcie_nvme_cqe_status(&w->cqe)));
	return sync_result(qp, sqe, &w->cqe);
}

/* Submit, ring, and wait. */
int upcie_nvme_sync_submit_wait(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				const void *buf, size_t len, struct upcie_nvme_cqe *cqe,
				uint32_t timeout_ms)
{
	struct upcie_nvme_waiter w = {0};
	uint16_t cid;
	int rc = upcie_nvme_queue_submit(qp, sqe, buf, len, upcie_nvme_waiter_cb, &w,
					 UPCIE_NVME_SUBMIT_RING, &cid);

	return rc ? rc : sync_wait(qp, sqe, &w, cid, cqe, timeout_ms);
}

/* The same for a command of upcie_nvme_blocks_prepare (its metadata SGL). */
int upcie_nvme_sync_submit_wait_md(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				   const void *buf, size_t len, const struct upcie_nvme_md_buf *md,
				   struct upcie_nvme_cqe *cqe, uint32_t timeout_ms)
{
	struct upcie_nvme_waiter w = {0};
	uint16_t cid;
	int rc = upcie_nvme_blocks_submit(qp, sqe, buf, len, md, upcie_nvme_waiter_cb, &w,
					  UPCIE_NVME_SUBMIT_RING, &cid);

	return rc ? rc : sync_wait(qp, sqe, &w, cid, cqe, timeout_ms);
}

static int rw_sync(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
		   uint64_t slba, uint32_t nlb, const void *buf, uint16_t *status,
		   uint32_t timeout_ms)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = opc,
	    .nsid = ns->nsid,
	    .cdw10 = (uint32_t)slba,
	    .cdw11 = (uint32_t)(slba >> 32),
	    .cdw12 = nlb - 1,
	};
	struct upcie_nvme_cqe cqe = {0};
	int rc;

	if (!ns->max_xfer_blocks || !nlb || nlb > ns->max_xfer_blocks || !buf)
		return rw_invalid(ns, nlb, buf);
	rc = upcie_nvme_sync_submit_wait(qp, &sqe, buf, (size_t)nlb << ns->lba_shift, &cqe,
					 timeout_ms);
	if (status)
		*status = upcie_nvme_cqe_status(&cqe);
	return rc;
}

int upcie_nvme_read_sync(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
			 uint32_t nlb, void *buf, uint16_t *status, uint32_t timeout_ms)
{
	return rw_sync(qp, UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, status, timeout_ms);
}

int upcie_nvme_write_sync(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			  uint64_t slba, uint32_t nlb, const void *buf, uint16_t *status,
			  uint32_t timeout_ms)
{
	return rw_sync(qp, UPCIE_NVME_CMD_WRITE, ns, slba, nlb, buf, status, timeout_ms);
}

int upcie_nvme_raw_sync(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe, void *buf,
			size_t len, struct upcie_nvme_cqe *cqe, uint32_t timeout_ms)
{
	struct upcie_nvme_sqe copy = *sqe;

	return upcie_nvme_sync_submit_wait(qp, &copy, buf, len, cqe, timeout_ms);
}
