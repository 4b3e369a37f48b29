/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * When things go wrong: health checks, command timeouts (Abort, then a
 * reset), controller reset with every handle kept, and each queue's
 * recovery on the thread that owns it.
 *
 * The rule everything here keeps (docs/design.md, "buffer lifetime"): a
 * command is reported finished only once the controller can no longer
 * touch its buffer: it posted the completion, deleted the SQ, was disabled
 * (CSTS.RDY = 0), or lost bus mastering. Otherwise it stays outstanding.
 *
 * Threads: the controller's state changes under the admin lock; every
 * queue notices the change on its next poll (ctrl->gen) and recovers
 * itself on its owner's thread, so no queue is ever touched by two threads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "log.h"
#include "nvme/nvme.h"

/* A consistent (generation, state) pair: the state as of that generation. */
static int read_state(const struct upcie_nvme_ctrl *c, uint32_t *gen)
{
	for (;;) {
		uint32_t g1 = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);
		int st = __atomic_load_n(&c->state, __ATOMIC_ACQUIRE);
		uint32_t g2 = __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE);

		if (g1 == g2) {
			*gen = g1;
			return st;
		}
	}
}

/*
 * The device is gone or failed beyond recovery: make sure it cannot DMA
 * (bus mastering off, a disable tried when it still answers), then publish
 * the state so every queue ends its commands. Admin lock held.
 */
void upcie_nvme_fence(struct upcie_nvme_ctrl *c, int state, const char *why)
{
	uint32_t csts = upcie_mmio_read32(c->regs, UPCIE_NVME_REG_CSTS);

	if (c->state == UPCIE_NVME_GONE)
		return;
	if (csts != UINT32_MAX) {
		/* Still answering (the kernel asked for it back, or a reset failed):
		 * stop its DMA before anything is reported finished. */
		upcie_pci_bus_master(c->dev, false);
		upcie_mmio_write32(c->regs, UPCIE_NVME_REG_CC, 0);
	}
	upcie_warn("%s: %s; outstanding commands end with %s", upcie_pci_name(c->dev), why,
		   upcie_nvme_status_str(UPCIE_NVME_SC_HOST_PATH_ERROR));
	c->enabled = false;
	upcie_nvme_ctrl_set_state(c, state);
	if (c->admin) {
		upcie_nvme_queue_complete_all(c->admin, UPCIE_NVME_SC_HOST_PATH_ERROR, 1);
		c->admin->gen = c->gen;
	}
}

/* One look at the device: CSTS, and whether the kernel wants it back. */
static int health(struct upcie_nvme_ctrl *c)
{
	uint32_t csts;
	int rc;

	if (c->state == UPCIE_NVME_GONE)
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
	if (!upcie_nvme_csts_cfs(csts) && c->state != UPCIE_NVME_FAILED)
		return 0;
	if (c->opts.no_auto_reset) {
		pthread_mutex_lock(&c->admin_lock);
		if (c->state == UPCIE_NVME_LIVE)
			upcie_nvme_ctrl_set_state(c, UPCIE_NVME_FAILED);
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
	if (!rc && c->state == UPCIE_NVME_DEAD)
		rc = upcie_err(-ENOTRECOVERABLE, "%s: a reset failed; the controller is disabled",
			       upcie_pci_name(c->dev));
	return rc;
}

/*
 * Reset, admin lock held. Disable first: once CSTS.RDY = 0 the controller
 * has let go of every queue and buffer. Then bring it up again; each I/O
 * queue re-creates itself on its owner's next poll.
 */
int upcie_nvme_reset_locked(struct upcie_nvme_ctrl *c, const char *why)
{
	char msg[512];
	int rc;

	if (c->state == UPCIE_NVME_GONE)
		return upcie_err(-ENODEV, "%s: cannot reset: the device is gone",
				 upcie_pci_name(c->dev));
	upcie_warn("%s: resetting the controller: %s", upcie_pci_name(c->dev), why);
	upcie_nvme_ctrl_set_state(c, UPCIE_NVME_RESETTING);
	rc = upcie_nvme_ctrl_disable(c, false);
	if (rc) {
		upcie_errmsg_save(msg, sizeof(msg));
		upcie_nvme_fence(c, rc == -ENODEV ? UPCIE_NVME_GONE : UPCIE_NVME_DEAD,
				 "the controller could not be disabled for a reset");
		upcie_errmsg_restore(msg);
		return rc == -ENODEV ? rc : -ENOTRECOVERABLE;
	}
	/* Disabled: the admin queue's commands (event requests, a timed-out
	 * command) end here; the device no longer holds them. */
	upcie_nvme_queue_complete_all(c->admin, UPCIE_NVME_SC_HOST_ABORTED, 0);
	for (unsigned i = 0; i < UPCIE_NVME_AER_MAX; i++)
		c->aer[i].armed = false;
	rc = upcie_nvme_ctrl_bringup(c, true);
	if (rc) {
		upcie_errmsg_save(msg, sizeof(msg));
		upcie_nvme_ctrl_disable(c, false);
		upcie_nvme_fence(c, UPCIE_NVME_DEAD,
				 "the controller did not come back from a reset");
		upcie_errmsg_restore(msg);
		return upcie_err(-ENOTRECOVERABLE, "%s: reset failed: %s", upcie_pci_name(c->dev),
				 upcie_errmsg());
	}
	c->resets++;
	upcie_nvme_ctrl_set_state(c, UPCIE_NVME_LIVE);
	c->admin->gen = c->gen;
	upcie_info("%s: controller reset done (%llu so far)", upcie_pci_name(c->dev),
		   (unsigned long long)c->resets);
	return 0;
}

/* An admin command was lost: reset, or (no_auto_reset, or inside a reset,
 * which then fails and says so) mark the controller failed. */
void upcie_nvme_admin_lost(struct upcie_nvme_ctrl *c, const char *why)
{
	if (!c->opts.no_auto_reset && c->state != UPCIE_NVME_RESETTING) {
		upcie_nvme_reset_locked(c, why);
		return;
	}
	if (c->state == UPCIE_NVME_LIVE)
		upcie_nvme_ctrl_set_state(c, UPCIE_NVME_FAILED);
	c->admin->gen = c->gen; /* the admin queue stays usable for a reset */
}

int upcie_nvme_ctrl_reset(struct upcie_nvme_ctrl *c)
{
	int rc;

	if (!c)
		return upcie_err(-EINVAL, "upcie_nvme_ctrl_reset needs a controller");
	pthread_mutex_lock(&c->admin_lock);
	rc = upcie_nvme_reset_locked(c, "requested");
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

/*
 * A queue whose controller changed state recovers here, on its owner's
 * thread. Returns the completions it delivered, or a negative errno.
 */
static int recover(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	uint32_t gen;
	int st = read_state(c, &gen), rc;

	switch (st) {
	case UPCIE_NVME_RESETTING:
		return 0; /* the resetting thread publishes LIVE when done */
	case UPCIE_NVME_FAILED:
		/* The controller may still DMA: nothing may end yet. */
		return upcie_err(-ENOTRECOVERABLE,
				 "%s: the controller failed and needs a reset "
				 "(upcie_nvme_ctrl_reset); queue %u keeps its %u commands",
				 upcie_pci_name(c->dev), qp->qid, upcie_nvme_qpair_outstanding(qp));
	case UPCIE_NVME_DEAD:
	case UPCIE_NVME_GONE:
		upcie_nvme_queue_fenced(qp);
		return upcie_err(st == UPCIE_NVME_GONE ? -ENODEV : -ENOTRECOVERABLE,
				 "%s: queue %u: %s", upcie_pci_name(c->dev), qp->qid,
				 st == UPCIE_NVME_GONE
				     ? "the device is gone"
				     : "a reset failed; the controller is disabled");
	default:
		break;
	}
	/* LIVE in a new generation: the controller was reset under us. In
	 * step from here (so the re-created queue may ring), unless that fails:
	 * then the next poll tries again. */
	qp->gen = gen;
	rc = upcie_nvme_qpair_on_device(qp);
	if (rc < 0) {
		qp->gen = gen - 1;
		return rc;
	}
	qp->stats.recoveries++;
	return rc;
}

/*
 * A command outlived its timeout. The embedder's policy (default: Abort)
 * runs; an Abort that does not end the command within the admin timeout is
 * followed by a reset. Returns completions delivered or a negative errno.
 */
int upcie_nvme_expire(struct upcie_nvme_qpair *qp, uint16_t cid)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	struct upcie_nvme_req *req = &qp->reqs[cid];
	enum upcie_nvme_timeout_action act = UPCIE_NVME_TIMEOUT_ABORT;
	uint64_t deadline;
	int rc;

	qp->stats.timeouts++;
	req->expired = 1;
	if (qp->tcb)
		act = qp->tcb(qp->tcb_arg, qp, cid);
	if (act == UPCIE_NVME_TIMEOUT_WAIT) {
		req->expired = 0;
		req->stamp = 0;
		return 0;
	}
	upcie_warn("%s: queue %u: command (cid %u) timed out; %s", upcie_pci_name(c->dev), qp->qid,
		   cid, act == UPCIE_NVME_TIMEOUT_ABORT ? "aborting it" : "resetting");
	uint64_t resets = c->resets;
	if (act == UPCIE_NVME_TIMEOUT_ABORT && upcie_nvme_abort(qp, cid) == 0) {
		/* Aborted: its completion (Command Abort Requested) follows. */
		deadline = upcie_now_ms() + c->opts.admin_timeout_ms;
		while (req->busy && upcie_now_ms() <= deadline) {
			upcie_nvme_queue_reap(qp, 0);
			upcie_pci_idle(c->dev);
		}
		if (!req->busy)
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
	return recover(qp);
}

int upcie_nvme_abort(struct upcie_nvme_qpair *qp, uint16_t cid)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_ADM_ABORT,
	    .cdw10 = ((uint32_t)cid << 16) | qp->qid,
	};
	struct upcie_nvme_cqe cqe = {0};
	int rc;

	if (!qp || cid >= qp->depth || !qp->reqs[cid].busy)
		return upcie_err(-EINVAL, "upcie_nvme_abort: cid %u is not outstanding", cid);
	qp->stats.aborts++;
	rc = upcie_nvme_admin(qp->ctrl, &sqe, NULL, 0, &cqe, 0);
	if (rc)
		return rc;
	/* Abort's dword 0 bit 0: 0 = the command was aborted (Base spec 5.1). */
	return (cqe.dw0 & 1) ? 1 : 0;
}

/* Timeouts of a queue, on its tick: any command past its time is expired. */
static int check_timeouts(struct upcie_nvme_qpair *qp)
{
	int n = 0;

	for (uint16_t cid = 0; cid < qp->depth; cid++) {
		struct upcie_nvme_req *req = &qp->reqs[cid];
		int rc;

		if (!req->busy || req->expired || ++req->stamp < qp->timeout_ticks)
			continue;
		rc = upcie_nvme_expire(qp, cid);
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

	if (qp->gen != *qp->gen_src)
		return recover(qp);
	if (!tick)
		return 0;
	if (!outstanding || qp->stats.completed != qp->seen_completed) {
		qp->seen_completed = qp->stats.completed;
		qp->progress_ms = qp->tick_ms;
	} else if (qp->tick_ms - qp->progress_ms >= qp->health_ms) {
		qp->progress_ms = qp->tick_ms;
		rc = health(qp->ctrl);
		if (rc < 0 || qp->gen != *qp->gen_src)
			return rc < 0 && qp->gen == *qp->gen_src ? rc : recover(qp);
	}
	if (!outstanding || !qp->timeout_ticks)
		return 0;
	return check_timeouts(qp);
}

/* The admin queue's slow hook: health while a command waits; fenced states. */
int upcie_nvme_admin_slow(struct upcie_nvme_qpair *qp, bool tick)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	uint32_t gen;
	int st = read_state(c, &gen);

	if (qp->gen != gen) {
		if (st == UPCIE_NVME_GONE || st == UPCIE_NVME_DEAD) {
			upcie_nvme_queue_complete_all(qp, UPCIE_NVME_SC_HOST_PATH_ERROR, 1);
			return st == UPCIE_NVME_GONE ? -ENODEV : -ENOTRECOVERABLE;
		}
		return 0;
	}
	if (!tick || !upcie_nvme_qpair_outstanding(qp))
		return 0;
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
