/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVM command submission (NVM Command Set spec 3) and the synchronous
 * helpers built on submit + poll.
 */
#include <errno.h>
#include <string.h>

#include <upcie/pci.h>

#include "log.h"
#include "nvme/nvme.h"

static inline __attribute__((always_inline)) int rw(struct upcie_nvme_qpair *qp, uint8_t opc,
						    const struct upcie_nvme_ns *ns, uint64_t slba,
						    uint32_t nlb, const void *buf, upcie_nvme_cb cb,
						    void *arg, unsigned flags)
{
	if (unlikely(!nlb || nlb > ns->max_xfer_blocks || !buf))
		return -EINVAL;
	return upcie_nvme_qpair_rw(qp, opc, ns->nsid, slba, nlb, buf, (size_t)nlb << ns->lba_shift,
				   cb, arg, flags);
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

	return upcie_nvme_qpair_submit_sqe(qp, &sqe, NULL, 0, cb, arg, flags, NULL);
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

	if (!nlb || nlb > 65536)
		return -EINVAL;
	return upcie_nvme_qpair_submit_sqe(qp, &sqe, NULL, 0, cb, arg, flags, NULL);
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
		return -EINVAL;
	return upcie_nvme_qpair_submit_sqe(qp, &sqe, ranges, nr * sizeof(*ranges), cb, arg, flags,
					   NULL);
}

int upcie_nvme_submit_raw(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe, void *buf,
			  size_t len, upcie_nvme_cb cb, void *arg, unsigned flags)
{
	struct upcie_nvme_sqe copy;

	if (!sqe || (buf && !len))
		return -EINVAL;
	copy = *sqe;
	return upcie_nvme_qpair_submit_sqe(qp, &copy, buf, len, cb, arg, flags, NULL);
}

/* ---- synchronous helpers ---- */

struct sync_wait {
	volatile int done;
	struct upcie_nvme_cqe cqe;
};

static void sync_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct sync_wait *w = arg;

	w->cqe = *cqe;
	w->done = 1;
}

static int sync_submit_wait(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
			    const void *buf, size_t len, struct upcie_nvme_cqe *cqe,
			    uint32_t timeout_ms)
{
	struct sync_wait w = {0};
	uint64_t deadline;
	uint16_t cid;
	int rc;

	rc = upcie_nvme_qpair_submit_sqe(qp, sqe, buf, len, sync_cb, &w, UPCIE_NVME_SUBMIT_RING,
					 &cid);
	if (rc)
		return rc;
	deadline = upcie_now_ms() + (timeout_ms ? timeout_ms : 30000);
	for (unsigned spin = 0; !w.done; spin++) {
		upcie_nvme_poll(qp, 0);
		if (w.done)
			break;
		upcie_pci_idle(qp->ctrl->dev);
		if ((spin & 255) == 0 && upcie_now_ms() > deadline) {
			/* Give the slot up: a late completion is dropped, never
			 * delivered to this stack frame. */
			qp->reqs[cid].abandoned = 1;
			return upcie_err(-ETIMEDOUT,
					 "qpair %u: command %#x (cid %u) did not complete within "
					 "%u ms",
					 qp->qid, sqe->opc, cid, timeout_ms ? timeout_ms : 30000);
		}
	}
	if (cqe)
		*cqe = w.cqe;
	return upcie_nvme_cqe_status(&w.cqe) ? -EIO : 0;
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

	if (!ns->max_xfer_blocks)
		return upcie_err(-ENOTSUP,
				 "nsid %u has %u metadata bytes per block; this library does no "
				 "metadata I/O (reformat without metadata)",
				 ns->nsid, ns->ms);
	if (!nlb || nlb > ns->max_xfer_blocks || !buf)
		return upcie_err(-EINVAL,
				 "nsid %u: %u blocks is not a valid transfer (1..%u blocks, from "
				 "MDTS)",
				 ns->nsid, nlb, ns->max_xfer_blocks);
	rc = sync_submit_wait(qp, &sqe, buf, (size_t)nlb << ns->lba_shift, &cqe, timeout_ms);
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

	return sync_submit_wait(qp, &copy, buf, len, cqe, timeout_ms);
}
