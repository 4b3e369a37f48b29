/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Noticing that things went wrong: health checks (device gone, CFS),
 * command timeouts (the embedder's policy, Abort, then a reset), and the
 * slow hooks the queue layer calls. What to do about it (fence, reset, a
 * queue's recovery) is the lifecycle's, in state.c: this file only asks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

/* One look at the device: CSTS, and whether the kernel wants it back. */
static int health(struct upcie_nvme_ctrl *c)
{
	uint32_t csts;
	int rc;

	if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == UPCIE_NVME_GONE)
		return upcie_err(-ENODEV, "%s: the device is gone", upcie_pci_name(c->dev));
	__atomic_add_fetch(&c->health_checks, 1, __ATOMIC_RELAXED);
	csts = upcie_mmio_read32(c->regs, UPCIE_NVME_REG_CSTS);
	rc = csts == UINT32_MAX ? -ENODEV : upcie_pci_check(c->dev);
	if (rc == -ENODEV) {
		pthread_mutex_lock(&c->admin_lock);
		upcie_nvme_fence(c, UPCIE_NVME_GONE,
				 csts == UINT32_MAX ? "registers read all-ones: the device is gone"
						    : "the kernel asked for the device back");
		pthread_mutex_unlock(&c->admin_lock);
		return upcie_err(-ENODEV, "%s: the device is gone (%s)", upcie_pci_name(c->dev),
				 csts == UINT32_MAX
				     ? "registers read all-ones"
				     : "hot-unplug or unbind requested by the kernel");
	}
	if (!upcie_nvme_csts_cfs(csts) &&
	    __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != UPCIE_NVME_FAILED)
		return 0;
	if (c->opts.no_auto_reset) {
		pthread_mutex_lock(&c->admin_lock);
		upcie_nvme_state_failed(c);
		pthread_mutex_unlock(&c->admin_lock);
		return upcie_err(-ENOTRECOVERABLE,
				 "%s: Controller Fatal Status; the controller needs a reset "
				 "(upcie_nvme_ctrl_reset)",
				 upcie_pci_name(c->dev));
	}
	return upcie_nvme_ctrl_reset(c);
}

int upcie_nvme_ctrl_check(struct upcie_nvme_ctrl *c)
{
	int rc;

	if (!c)
		return upcie_err(-EINVAL, "upcie_nvme_ctrl_check needs a controller");
	rc = health(c);
	if (!rc && __atomic_load_n(&c->state, __ATOMIC_ACQUIRE) == UPCIE_NVME_DEAD)
		rc = upcie_err(-ENOTRECOVERABLE, "%s: a reset failed; the controller is disabled",
			       upcie_pci_name(c->dev));
	return rc;
}

/*
 * A command outlived its timeout. The embedder's policy (default: Abort)
 * runs; an Abort that does not end the command within the admin timeout is
 * followed by a reset. Everything follows the command, not its slot: the
 * wait ends when this command completed, even if its callback put a new
 * one into the same slot. Returns completions delivered or a negative errno.
 */
int upcie_nvme_expire(struct upcie_nvme_qpair *qp, uint32_t slot)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	struct upcie_nvme_req *req = &qp->reqs[slot];
	const uint16_t cid = upcie_nvme_req_cid(req);
	enum upcie_nvme_timeout_action act = UPCIE_NVME_TIMEOUT_ABORT;
	uint64_t deadline;
	int rc;

	qp->stats.timeouts++;
	req->expect |= UPCIE_NVME_REQ_EXPIRED;
	if (qp->tcb)
		act = qp->tcb(qp->tcb_arg, qp, cid);
	if (act == UPCIE_NVME_TIMEOUT_WAIT) {
		/* Young again (if it is still this command): flags and age 0,
		 * but an abandoned mark stays. */
		if (upcie_nvme_queue_req(qp, cid))
			req->expect &= UPCIE_NVME_REQ_KEY | UPCIE_NVME_REQ_ABANDONED;
		return 0;
	}
	upcie_warn("%s: queue %u: command (cid %u) timed out; %s", upcie_pci_name(c->dev), qp->qid,
		   cid, act == UPCIE_NVME_TIMEOUT_ABORT ? "aborting it" : "resetting");
	uint64_t resets = c->resets;
	if (act == UPCIE_NVME_TIMEOUT_ABORT && upcie_nvme_abort(qp, cid) == 0) {
		/* Aborted: its completion (Command Abort Requested) follows. */
		deadline = upcie_now_ms() + c->opts.admin_timeout_ms;
		while (upcie_nvme_queue_req(qp, cid) && upcie_now_ms() <= deadline) {
			upcie_nvme_queue_reap(qp, 0);
			upcie_pci_idle(c->dev);
		}
		if (!upcie_nvme_queue_req(qp, cid))
			return 1;
	}
	/* A lost Abort has already reset the controller (admin timeout). */
	pthread_mutex_lock(&c->admin_lock);
	rc = c->resets != resets ? 0
				 : upcie_nvme_reset_locked(c, "a command timed out and Abort did "
							      "not end it");
	pthread_mutex_unlock(&c->admin_lock);
	if (rc)
		return rc;
	return upcie_nvme_state_recover(qp);
}

int upcie_nvme_abort(struct upcie_nvme_qpair *qp, uint16_t cid)
{
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_ABORT};
	struct upcie_nvme_cqe cqe = {0};
	int rc;

	if (!qp || !upcie_nvme_queue_req(qp, cid))
		return upcie_err(-EINVAL, "upcie_nvme_abort: cid %u is not outstanding", cid);
	sqe.cdw10 = ((uint32_t)cid << 16) | qp->qid;
	qp->stats.aborts++;
	rc = upcie_nvme_admin(qp->ctrl, &sqe, NULL, 0, &cqe, 0);
	if (rc)
		return rc;
	/* Abort's dword 0 bit 0: 0 = the command was aborted (Base spec 5.1). */
	return (cqe.dw0 & 1) ? 1 : 0;
}

/* Timeouts of a queue, on its tick: any command past its time is expired. */
/* A command grows older by the ticks the queue's clock moved (saturating). */
static void age_by(struct upcie_nvme_req *req, uint32_t ticks)
{
	uint32_t age = upcie_nvme_req_age(req);
	uint32_t add = UPCIE_NVME_REQ_AGE_MAX - age < ticks ? UPCIE_NVME_REQ_AGE_MAX - age : ticks;

	req->expect += (uint64_t)add << UPCIE_NVME_REQ_AGE_SHIFT;
}

static int check_timeouts(struct upcie_nvme_qpair *qp)
{
	int n = 0;

	for (uint32_t slot = 0; slot <= qp->cid_mask; slot++) {
		struct upcie_nvme_req *req = &qp->reqs[slot];
		int rc;

		if (!upcie_nvme_req_busy(req) || (req->expect & UPCIE_NVME_REQ_EXPIRED))
			continue;
		age_by(req, qp->tick_step);
		if (upcie_nvme_req_age(req) < qp->timeout_ticks)
			continue;
		rc = upcie_nvme_expire(qp, slot);
		if (rc < 0)
			return rc;
		n += rc;
	}
	return n;
}

/*
 * The slow hook of I/O queues (queue.c calls it every few hundred polls
 * once the coarse clock moved, and on a state change). Health is checked
 * only when commands are outstanding and none completed for health_ms.
 */
int upcie_nvme_queue_owner_slow(struct upcie_nvme_qpair *qp, bool tick)
{
	uint32_t outstanding = upcie_nvme_qpair_outstanding(qp);
	int rc;

	if (!upcie_nvme_queue_in_step(qp))
		return upcie_nvme_state_recover(qp);
	if (!tick)
		return 0;
	if (!outstanding || qp->stats.completed != qp->seen_completed) {
		qp->seen_completed = qp->stats.completed;
		qp->progress_ms = qp->tick_ms;
	} else if (qp->tick_ms - qp->progress_ms >= qp->health_ms) {
		qp->progress_ms = qp->tick_ms;
		rc = health(qp->ctrl);
		if (!upcie_nvme_queue_in_step(qp))
			return upcie_nvme_state_recover(qp); /* fenced or reset by it */
		if (rc < 0)
			return rc;
	}
	if (!outstanding || !qp->timeout_ticks)
		return 0;
	return check_timeouts(qp);
}

/* Asynchronous admin commands (upcie_nvme_admin_submit) get the admin
 * timeout too, counted in ticks of the admin queue: event requests wait
 * for an event by design, and a synchronous command's wait has its own
 * deadline. true: one is past it. */
static bool admin_async_expired(struct upcie_nvme_qpair *qp)
{
	uint32_t limit = qp->ctrl->opts.admin_timeout_ms / 10 + 1;
	bool expired = false;

	if (limit > UPCIE_NVME_REQ_AGE_MAX)
		limit = UPCIE_NVME_REQ_AGE_MAX;
	for (uint32_t slot = 0; slot <= qp->cid_mask; slot++) {
		struct upcie_nvme_req *req = &qp->reqs[slot];

		if (!upcie_nvme_req_busy(req) ||
		    upcie_nvme_req_user_cb(req) == upcie_nvme_waiter_cb ||
		    upcie_nvme_admin_is_event(req))
			continue;
		age_by(req, qp->tick_step);
		expired |= upcie_nvme_req_age(req) >= limit;
	}
	return expired;
}

/* The admin queue's slow hook: health while a command waits; fenced
 * states; asynchronous commands past the admin timeout (the admin lock is
 * held: the admin queue is polled only under it). */
int upcie_nvme_admin_slow(struct upcie_nvme_qpair *qp, bool tick)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	uint32_t gen;
	int st = upcie_nvme_state_read(c, &gen);

	if (qp->gen != gen) {
		if (st == UPCIE_NVME_GONE || st == UPCIE_NVME_DEAD) {
			upcie_nvme_state_q_end(qp, UPCIE_NVME_SC_HOST_PATH_ERROR, 1);
			return st == UPCIE_NVME_GONE ? -ENODEV : -ENOTRECOVERABLE;
		}
		return 0;
	}
	if (!tick || !upcie_nvme_qpair_outstanding(qp))
		return 0;
	if (admin_async_expired(qp)) {
		/* Lost: as for a synchronous command, a reset ends it (its
		 * callback gets HOST_ABORTED), or the controller is failed. */
		upcie_warn("%s: an asynchronous admin command got no completion within %u ms",
			   upcie_pci_name(c->dev), c->opts.admin_timeout_ms);
		c->admin_lost(c, "an asynchronous admin command timed out");
		return 0;
	}
	if (qp->stats.completed != qp->seen_completed) {
		qp->seen_completed = qp->stats.completed;
		qp->progress_ms = qp->tick_ms;
		return 0;
	}
	if (qp->tick_ms - qp->progress_ms < qp->health_ms)
		return 0;
	qp->progress_ms = qp->tick_ms;
	/* Only the cheap half of health(): a reset from inside an admin wait
	 * is left to the wait's own timeout. */
	__atomic_add_fetch(&c->health_checks, 1, __ATOMIC_RELAXED);
	uint32_t csts = upcie_mmio_read32(c->regs, UPCIE_NVME_REG_CSTS);
	if (csts == UINT32_MAX || upcie_pci_check(c->dev) == -ENODEV) {
		upcie_nvme_fence(c, UPCIE_NVME_GONE, "the device is gone");
		return upcie_err(-ENODEV, "%s: the device is gone", upcie_pci_name(c->dev));
	}
	if (upcie_nvme_csts_cfs(csts))
		return upcie_err(-ENOTRECOVERABLE, "%s: Controller Fatal Status (CSTS.CFS)",
				 upcie_pci_name(c->dev));
	return 0;
}
