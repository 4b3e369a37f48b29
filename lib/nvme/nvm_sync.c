/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The synchronous side of the NVM commands with options: a call that
 * waits and says which block failed (the Error Information log, Base spec
 * 5.16.1.2, or the host's own buffer), and Format NVM (Base spec 5.23),
 * which changes a namespace's metadata format.
 */
#include <errno.h>
#include <string.h>

#include <upcie/dma.h>
#include <upcie/pi.h>

#include "core/log.h"
#include "nvme/nvme.h"

#define ERRLOG_MAX 64 /* entries read: one 4 KiB page */

int upcie_nvme_error_lba(struct upcie_nvme_ctrl *ctrl, uint16_t qid,
			 const struct upcie_nvme_cqe *cqe, uint64_t *lba)
{
	uint32_t n = (uint32_t)ctrl->id->elpe + 1;
	struct upcie_nvme_error_log *log;
	uint16_t st = 0;
	int rc;

	if (n > ERRLOG_MAX)
		n = ERRLOG_MAX;
	log = upcie_dma_alloc(ctrl->heap, n * sizeof(*log), 4096);
	if (!log)
		return upcie_err(-ENOMEM, "error log: no heap memory for %u entries", n);
	rc = upcie_nvme_get_log_page(ctrl, UPCIE_NVME_LOG_ERROR, 0, log, n * sizeof(*log), &st);
	if (!rc)
		rc = -ENOENT;
	/* Newest first: the first entry for this command is its error. */
	for (uint32_t i = 0; rc == -ENOENT && i < n; i++) {
		if (!log[i].error_count || log[i].sqid != qid || log[i].cid != cqe->cid)
			continue;
		*lba = log[i].lba;
		rc = 0;
		break;
	}
	upcie_dma_free(ctrl->heap, log);
	if (rc == -ENOENT)
		upcie_err(-ENOENT, "error log: no entry for command %u of queue %u", cqe->cid, qid);
	return rc;
}

/* Statuses about one block, whose LBA is worth finding. */
static bool block_status(uint16_t st)
{
	return st >= UPCIE_NVME_SC_UNRECOVERED_READ && st <= UPCIE_NVME_SC_COMPARE_FAILURE;
}

/* A read that failed a check, read again without checks into the caller's
 * buffers (undefined after the failure anyway), so that the host can find
 * the block: only when the PI reaches the host (not stripped by PRACT). */
static bool reread(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		   uint32_t nlb, void *buf, const struct upcie_nvme_io_opts *o, uint32_t timeout_ms)
{
	struct upcie_nvme_io_opts plain;
	struct upcie_nvme_cqe cqe = {0};
	struct upcie_nvme_md_buf md;
	struct upcie_nvme_sqe sqe;
	size_t len;

	upcie_nvme_opts_copy(&plain, o);
	plain.flags &= ~UPCIE_NVME_RW_PRCHK_ALL;
	if (!buf ||
	    upcie_nvme_ns_data_len(ns, 1, plain.flags) + upcie_nvme_ns_md_len(ns, 1, plain.flags) ==
		ns->lba_size)
		return false;
	return !upcie_nvme_blocks_prepare(qp, UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, &plain, &sqe,
					  &len, &md) &&
	       !upcie_nvme_sync_submit_wait_md(qp, &sqe, buf, len, &md, &cqe, timeout_ms);
}

/* The LBA of a failed command: the error log first; for a PI check error
 * the host's buffer says it too: the data it sent (a write), or what it
 * reads without the checks (a read). */
static void find_lba(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
		     uint64_t slba, uint32_t nlb, void *buf, const struct upcie_nvme_io_opts *o,
		     const struct upcie_nvme_cqe *cqe, struct upcie_nvme_io_result *res,
		     uint32_t timeout_ms)
{
	uint16_t st = upcie_nvme_cqe_status(cqe);
	uint32_t bad = 0;
	char msg[256];

	upcie_errmsg_save(msg, sizeof(msg)); /* the command's error stays the message */
	if (!upcie_nvme_error_lba(qp->ctrl, qp->qid, cqe, &res->lba) && res->lba >= slba &&
	    res->lba - slba < nlb) {
		res->lba_valid = 1;
	} else if (st >= UPCIE_NVME_SC_GUARD_CHECK && st <= UPCIE_NVME_SC_REFTAG_CHECK && o &&
		   (opc == UPCIE_NVME_CMD_WRITE || reread(qp, ns, slba, nlb, buf, o, timeout_ms)) &&
		   upcie_nvme_pi_verify(ns, buf, o->md, nlb, o, &bad) > 0) {
		res->lba = slba + bad;
		res->lba_valid = 1;
	}
	upcie_errmsg_restore(msg);
}

int upcie_nvme_io_sync(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
		       uint64_t slba, uint32_t nlb, void *buf, const struct upcie_nvme_io_opts *o,
		       struct upcie_nvme_io_result *res, uint32_t timeout_ms)
{
	struct upcie_nvme_io_result dummy;
	struct upcie_nvme_cqe cqe = {0};
	struct upcie_nvme_md_buf md;
	struct upcie_nvme_sqe sqe;
	size_t len;
	int rc;

	if (!res)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	switch (opc) {
	case UPCIE_NVME_CMD_COMPARE:
		if (!(qp->ctrl->id->oncs & UPCIE_NVME_ONCS_COMPARE))
			return upcie_nvme_compare(qp, ns, slba, nlb, buf, o, NULL, NULL, 0);
		break;
	case UPCIE_NVME_CMD_VERIFY:
		if (!(qp->ctrl->id->oncs & UPCIE_NVME_ONCS_VERIFY))
			return upcie_nvme_verify(qp, ns, slba, nlb, o, NULL, NULL, 0);
		break;
	case UPCIE_NVME_CMD_READ:
	case UPCIE_NVME_CMD_WRITE:
		break;
	default:
		return upcie_err(-EINVAL,
				 "upcie_nvme_io_sync: opcode %#x is not Read, Write, Compare or "
				 "Verify",
				 opc);
	}
	rc = upcie_nvme_blocks_prepare(qp, opc, ns, slba, nlb, buf, o, &sqe, &len, &md);
	if (rc)
		return rc;
	rc = upcie_nvme_sync_submit_wait_md(qp, &sqe, len ? buf : NULL, len, &md, &cqe, timeout_ms);
	res->status = upcie_nvme_cqe_status(&cqe);
	if (rc == -EIO && block_status(res->status))
		find_lba(qp, opc, ns, slba, nlb, buf, o, &cqe, res, timeout_ms);
	return rc;
}

int upcie_nvme_format(struct upcie_nvme_ctrl *ctrl, uint32_t nsid, uint32_t lbaf, int extended,
		      uint32_t pi, int pi_first, uint16_t *status)
{
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_FORMAT_NVM, .nsid = nsid};
	struct upcie_nvme_cqe cqe = {0};
	int rc;

	if (!(ctrl->id->oacs & UPCIE_NVME_OACS_FORMAT))
		return upcie_err(-EOPNOTSUPP,
				 "format: the controller does not offer Format NVM (OACS bit 1)");
	if (lbaf > 63 || pi > 3 || !nsid)
		return upcie_err(-EINVAL,
				 "format: %s %u is not valid (LBA format 0..63, PI type 0..3, "
				 "nsid not 0)",
				 lbaf > 63 ? "LBA format"
				 : pi > 3  ? "PI type"
					   : "nsid",
				 lbaf > 63 ? lbaf
				 : pi > 3  ? pi
					   : nsid);
	sqe.cdw10 = (lbaf & 0xf) | ((lbaf >> 4) & 0x3) << 12 | pi << 5 |
		    (extended ? UPCIE_NVME_FORMAT_MSET : 0) |
		    (pi_first ? UPCIE_NVME_FORMAT_PIL : 0);
	pthread_mutex_lock(&ctrl->admin_lock);
	rc = upcie_nvme_admin_locked(ctrl, &sqe, NULL, 0, &cqe, 0);
	/* The namespaces' formats changed: read them again, fence old handles. */
	if (!rc)
		rc = upcie_nvme_scan_namespaces(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (status)
		*status = upcie_nvme_cqe_status(&cqe);
	return rc;
}
