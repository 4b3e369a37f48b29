/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O queue pairs, the controller's side: queue ids, Create / Delete I/O
 * CQ and SQ (Base spec 5.4-5.7), re-creation after a reset, and the public
 * submit / ring / poll entry points over the queue layer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/engine.h>
#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

void upcie_nvme_ring(struct upcie_nvme_qpair *qp)
{
	upcie_nvme_queue_ring(qp);
}

int upcie_nvme_poll(struct upcie_nvme_qpair *qp, uint32_t max)
{
	return upcie_nvme_queue_poll(qp, max);
}

static int delete_queue(struct upcie_nvme_ctrl *ctrl, uint8_t opc, uint16_t qid)
{
	struct upcie_nvme_sqe sqe = {.opc = opc, .cdw10 = qid};

	return upcie_nvme_admin(ctrl, &sqe, NULL, 0, NULL, 0);
}

/* Doorbells, shadow slots, timeouts and the slow hook of a new qpair. */
static void setup_queue(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_qpair *qp,
			const struct upcie_nvme_qpair_opts *opts)
{
	uint32_t tmo = opts && opts->timeout_ms ? opts->timeout_ms : ctrl->opts.io_timeout_ms;

	qp->ctrl = ctrl;
	qp->sq_db = (volatile uint32_t *)((volatile char *)ctrl->regs +
					  upcie_nvme_sq_db_off(qp->qid, ctrl->dstrd));
	qp->cq_db = (volatile uint32_t *)((volatile char *)ctrl->regs +
					  upcie_nvme_cq_db_off(qp->qid, ctrl->dstrd));
	/* Ticks are 10 ms: round up, so a timeout never fires early. */
	qp->timeout_ticks = tmo == UINT32_MAX ? 0 : (tmo + 9) / 10 + 1;
	if (qp->timeout_ticks > UPCIE_NVME_REQ_AGE_MAX)
		qp->timeout_ticks = UPCIE_NVME_REQ_AGE_MAX; /* about 46 hours */
	qp->health_ms = ctrl->opts.health_ms;
	if (opts) {
		qp->tcb = opts->timeout_cb;
		qp->tcb_arg = opts->timeout_arg;
		qp->lazy_cq = opts->lazy_cq ? 1 : 0;
	}
	qp->slow = upcie_nvme_queue_owner_slow;
}

/* Shadow slots sit at the doorbells' offsets within one page; a queue whose
 * slots fall beyond it (wide stride) keeps MMIO doorbells. */
static void attach_shadow(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_qpair *qp)
{
	uint32_t sq_off = (upcie_nvme_sq_db_off(qp->qid, ctrl->dstrd) - 0x1000) / 4;
	uint32_t cq_off = (upcie_nvme_cq_db_off(qp->qid, ctrl->dstrd) - 0x1000) / 4;

	if (ctrl->dbbuf_on && (cq_off + 1) * 4 <= ctrl->page_size) {
		qp->shadow_sq = (volatile uint32_t *)ctrl->dbbuf_shadow + sq_off;
		qp->shadow_cq = (volatile uint32_t *)ctrl->dbbuf_shadow + cq_off;
		qp->eventidx_sq = (volatile uint32_t *)ctrl->dbbuf_eventidx + sq_off;
		qp->eventidx_cq = (volatile uint32_t *)ctrl->dbbuf_eventidx + cq_off;
		*qp->shadow_sq = 0;
		*qp->shadow_cq = 0;
		*qp->eventidx_sq = 0;
		*qp->eventidx_cq = 0;
	} else {
		qp->shadow_sq = qp->shadow_cq = qp->eventidx_sq = qp->eventidx_cq = NULL;
	}
}

static const char *cmd_error(int rc, const struct upcie_nvme_cqe *cqe)
{
	return rc == -EIO ? upcie_nvme_status_str(upcie_nvme_cqe_status(cqe)) : upcie_errmsg();
}

/*
 * Create CQ then SQ for a queue whose host side is fresh (Base spec 5.4 /
 * 5.5; the SQ names its CQ). PC=1; interrupts when the qpair has them. -EIO: the device refused
 * and holds nothing; -EBUSY: a CQ was left behind; other errors: unknown.
 */
int upcie_nvme_qpair_create_on_device(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *ctrl = qp->ctrl;
	uint32_t depth = qp->depth, cq_depth = qp->cq_depth, qid = qp->qid;
	struct upcie_nvme_cqe cqe = {0};
	struct upcie_nvme_sqe sqe;
	int rc;

	attach_shadow(ctrl, qp);
	sqe = (struct upcie_nvme_sqe){
	    .opc = UPCIE_NVME_ADM_CREATE_CQ,
	    .prp1 = upcie_dma_bus(ctrl->heap, qp->cq),
	    .cdw10 = ((cq_depth - 1) << 16) | qid,
	    /* With interrupts: IEN and the queue's vector (irq.c). */
	    .cdw11 = UPCIE_NVME_QUEUE_PC |
		     (qp->irq ? UPCIE_NVME_QUEUE_IEN | (uint32_t)qp->irq_vec << 16 : 0),
	};
	rc = upcie_nvme_admin(ctrl, &sqe, NULL, 0, &cqe, 0);
	if (rc)
		return upcie_err(rc, "Create I/O CQ %u (depth %u) failed: %s", qid, cq_depth,
				 cmd_error(rc, &cqe));
	sqe = (struct upcie_nvme_sqe){
	    .opc = UPCIE_NVME_ADM_CREATE_SQ,
	    .prp1 = upcie_dma_bus(ctrl->heap, qp->sq),
	    .cdw10 = ((depth - 1) << 16) | qid,
	    .cdw11 = (qid << 16) | UPCIE_NVME_QUEUE_PC,
	};
	rc = upcie_nvme_admin(ctrl, &sqe, NULL, 0, &cqe, 0);
	if (rc) {
		rc = upcie_err(rc, "Create I/O SQ %u (depth %u) failed: %s", qid, depth,
			       cmd_error(rc, &cqe));
		/* The CQ exists on the device: only a successful delete frees it. */
		if (rc == -EIO && delete_queue(ctrl, UPCIE_NVME_ADM_DELETE_CQ, (uint16_t)qid))
			rc = -EBUSY;
		return rc;
	}
	return 0;
}

struct upcie_nvme_qpair *upcie_nvme_qpair_create(struct upcie_nvme_ctrl *ctrl,
						 const struct upcie_nvme_qpair_opts *opts)
{
	uint32_t depth = opts && opts->depth ? opts->depth : 128;
	struct upcie_nvme_qpair *qp;
	uint32_t mqes, cq_depth, gen;
	bool zombie = false;
	int qid, rc;

	if (!ctrl)
		return upcie_err_null(-EINVAL, "upcie_nvme_qpair_create: no controller");
	mqes = upcie_nvme_cap_mqes(ctrl->cap) + 1;
	if (mqes < 2)
		return upcie_err_null(-ENOTSUP,
				      "%s: the controller reports CAP.MQES = 0 (one-entry queues, "
				      "which hold no command): it cannot run I/O queues",
				      upcie_pci_name(ctrl->dev));
	if (depth < 2)
		return upcie_err_null(-EINVAL, "queue depth %u is too small (at least 2)", depth);
	if (depth > mqes) {
		upcie_info("queue depth %u clamped to the controller's MQES + 1 = %u", depth, mqes);
		depth = mqes;
	}
	if (depth > 65536 - 1)
		depth = 65535;
	/* The CQ: see upcie_nvme_qpair_opts.cq_depth. */
	cq_depth = opts && opts->cq_depth ? opts->cq_depth
					  : ctrl->page_size / sizeof(struct upcie_nvme_cqe);
	if (opts && opts->cq_depth && opts->cq_depth < depth)
		return upcie_err_null(
		    -EINVAL,
		    "completion queue of %u entries for a queue of %u: it needs at "
		    "least as many (or 0 for the default)",
		    opts->cq_depth, depth);
	if (cq_depth < depth)
		cq_depth = depth;
	if (cq_depth > mqes)
		cq_depth = mqes;
	if (cq_depth > 65535)
		cq_depth = 65535;

	qid = upcie_nvme_state_qid_alloc(ctrl);
	if (qid < 0) {
		errno = -qid;
		return NULL;
	}
	/* A doorbell beyond the mapped BAR would fault instead of failing. */
	if (upcie_nvme_cq_db_off((uint32_t)qid, ctrl->dstrd) + 4 > ctrl->regs_len) {
		rc = upcie_err(-ENODEV, "queue %d's doorbells lie beyond BAR0 (%zu bytes)", qid,
			       ctrl->regs_len);
		goto err_qid;
	}
	qp = upcie_nvme_queue_alloc(
	    ctrl->heap, (uint16_t)qid, depth, cq_depth, ctrl->page_size, ctrl->max_xfer,
	    upcie_nvme_ctrl_md_sgl(ctrl) ? upcie_nvme_md_sgl_descs(ctrl->max_xfer) : 0);
	if (!qp) {
		rc = -errno;
		goto err_qid;
	}
	setup_queue(ctrl, qp, opts);
	rc = upcie_nvme_irq_setup(qp, opts);
	if (rc) {
		upcie_nvme_queue_free(qp, false);
		goto err_qid;
	}
	/* The generation is read under the lock held across the creation, so
	 * no reset lands between the two: the queue is in step with the
	 * controller instance that has it. */
	pthread_mutex_lock(&ctrl->admin_lock);
	gen = ctrl->gen;
	if (ctrl->state != UPCIE_NVME_LIVE) {
		rc = upcie_err(ctrl->state == UPCIE_NVME_GONE ? -ENODEV : -ENOTRECOVERABLE,
			       "%s: no queue pair can be created: the controller is %s",
			       upcie_pci_name(ctrl->dev), upcie_nvme_state_name(ctrl->state));
	} else {
		rc = upcie_nvme_qpair_create_on_device(qp);
		if (!rc)
			upcie_nvme_state_q_created(qp, gen);
		else if ((zombie = rc != -EIO))
			/* Not refused (a timeout, the controller failing meanwhile,
			 * a CQ left behind): the device may own a queue in this
			 * memory. Out of reuse until a reset or close, which free
			 * it (so not touched after the unlock). */
			upcie_nvme_state_q_zombie(qp);
	}
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (!rc)
		return qp;
	if (zombie) {
		errno = -rc;
		return NULL;
	}
	upcie_nvme_irq_free(qp);
	upcie_nvme_queue_free(qp, false);
err_qid:
	upcie_nvme_state_qid_free(ctrl, (uint16_t)qid);
	errno = -rc;
	return NULL;
}

/* Delete SQ then CQ (Base spec 5.6 / 5.7), lock held. Completions the
 * device posted before the deletion are delivered; once the device deleted
 * the SQ, it holds none of the rest. 0, or the error of the deletion. */
static int delete_on_device(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_qpair *qp, uint32_t gen)
{
	int rc = delete_queue(ctrl, UPCIE_NVME_ADM_DELETE_SQ, qp->qid);

	upcie_nvme_queue_reap(qp, 0);
	if (!rc) {
		upcie_nvme_state_q_end(qp, UPCIE_NVME_SC_ABORT_SQ_DELETED, 0);
		rc = delete_queue(ctrl, UPCIE_NVME_ADM_DELETE_CQ, qp->qid);
	}
	if (!rc)
		return 0;
	if (ctrl->state == UPCIE_NVME_GONE || ctrl->state == UPCIE_NVME_DEAD) {
		/* The deletion found the device gone (or the controller was
		 * fenced meanwhile): nothing can reach the buffers any more. */
		upcie_nvme_state_q_fenced(qp);
		return 0;
	}
	if (ctrl->state == UPCIE_NVME_LIVE && ctrl->gen != gen) {
		/* The deletion got no answer and the admin timeout reset the
		 * controller: the reset (CC.EN = 0) took the queue off the
		 * device. What is left ends as after any reset. */
		upcie_nvme_state_q_gone(qp);
		upcie_nvme_state_q_end(qp, UPCIE_NVME_SC_HOST_ABORTED, 0);
		return 0;
	}
	return rc;
}

int upcie_nvme_qpair_destroy(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *ctrl;
	bool on_device;
	int rc = 0, st;

	if (!qp)
		return 0;
	if (qp->in_cb || qp->harvesting)
		return upcie_err(-EBUSY,
				 "queue %u cannot be destroyed from its own completion callback; "
				 "destroy it after upcie_nvme_poll() returned",
				 qp->qid);
	ctrl = qp->ctrl;
	upcie_nvme_state_q_unlink(qp);

	/* Recovered or fenced first: a queue the controller lost in a reset is
	 * not on the device, and one of a gone controller has ended its
	 * commands. Then, under the lock (no reset in between), delete it. */
	if (!upcie_nvme_queue_in_step(qp))
		upcie_nvme_queue_poll_slow(qp, 0);
	pthread_mutex_lock(&ctrl->admin_lock);
	st = ctrl->state;
	/* On the device: created and not taken off by a reset since. Out of
	 * step under FAILED is not proof of a reset (LIVE -> FAILED moves the
	 * generation too): counted as on the device. */
	on_device = qp->qstate == UPCIE_NVME_Q_LIVE &&
		    (qp->gen == ctrl->gen || st == UPCIE_NVME_FAILED || st == UPCIE_NVME_RESETTING);
	if (st == UPCIE_NVME_GONE || st == UPCIE_NVME_DEAD) {
		upcie_nvme_state_q_fenced(qp); /* nothing can reach the buffers */
	} else if (!on_device) {
		upcie_nvme_state_q_gone(qp);
		upcie_nvme_state_q_end(qp, UPCIE_NVME_SC_HOST_ABORTED, 0);
	} else if (st != UPCIE_NVME_LIVE) {
		rc = upcie_err(-EBUSY,
			       "%s: queue %u cannot be deleted while the controller is %s; its "
			       "memory is kept and its %u commands end when the controller is "
			       "reset or closed",
			       upcie_pci_name(ctrl->dev), qp->qid, upcie_nvme_state_name(st),
			       upcie_nvme_qpair_outstanding(qp));
	} else if (delete_on_device(ctrl, qp, qp->gen)) {
		rc = upcie_err(-EBUSY,
			       "%s: queue %u could not be deleted (%s); its memory is kept and "
			       "its %u commands end when the controller is reset or closed",
			       upcie_pci_name(ctrl->dev), qp->qid, upcie_errmsg(),
			       upcie_nvme_qpair_outstanding(qp));
	}
	/* The device may still own a queue that could not be deleted: its
	 * memory (and qid) stay out of reuse until a reset or close, and the
	 * zombie is listed before any reset can run. */
	if (rc)
		upcie_nvme_state_q_zombie(qp);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (rc)
		return rc;
	upcie_nvme_state_qid_free(ctrl, qp->qid);
	upcie_nvme_irq_free(qp);
	upcie_nvme_queue_free(qp, false);
	return 0;
}

uint16_t upcie_nvme_qpair_id(const struct upcie_nvme_qpair *qp)
{
	return qp->qid;
}

uint32_t upcie_nvme_qpair_depth(const struct upcie_nvme_qpair *qp)
{
	return qp->depth;
}

uint32_t upcie_nvme_qpair_cq_depth(const struct upcie_nvme_qpair *qp)
{
	return qp->cq_depth;
}

uint32_t upcie_nvme_qpair_outstanding(const struct upcie_nvme_qpair *qp)
{
	return (uint32_t)(qp->depth - 1 - qp->nfree);
}

size_t upcie_nvme_qpair_mem(const struct upcie_nvme_qpair *qp)
{
	return qp->mem_bytes;
}

void upcie_nvme_qpair_stats(const struct upcie_nvme_qpair *qp, struct upcie_nvme_qpair_stats *st)
{
	*st = qp->stats;
	/* Not counted on the hot path: every command placed in the SQ holds a
	 * CID until it is counted completed (an abandoned one too). */
	st->submitted = st->completed + upcie_nvme_qpair_outstanding(qp);
}

uint16_t upcie_nvme_qpair_last_cid(const struct upcie_nvme_qpair *qp)
{
	/* A claim pops the CID and leaves it just above the free stack's top. */
	return qp->free_cids[qp->nfree];
}
