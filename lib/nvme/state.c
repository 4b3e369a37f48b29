/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lifecycle: the controller's and the queue pairs' states, the only code
 * that changes them, and the transitions that take more than a store:
 * fence, reset, a queue's recovery, zombies. See state.h for the states
 * and docs/design.md ("Lifecycle") for the tables.
 *
 * The rule everything here keeps (docs/design.md, "Buffer lifetime"): a
 * command is reported finished only once the controller can no longer
 * touch its buffer: it posted the completion, deleted the SQ, was disabled
 * (CSTS.RDY = 0), or lost bus mastering. Otherwise it stays outstanding.
 *
 * Locking: every state change happens under the admin lock (recursive: a
 * reset's bring-up runs admin commands, and a callback run by a recovery
 * may reset). A queue's recovery holds the lock from reading the state to
 * publishing the generation its queue was re-created for, so no reset can
 * land in between; it delivers host completions only after that, with the
 * lock dropped and the queue's host side already fresh, so whatever the
 * callbacks submit goes into the new queue and survives.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

/* ---- the tables ---- */

static const char *const state_names[UPCIE_NVME_NR_STATES] = {
    "LIVE", "RESETTING", "FAILED", "DEAD", "GONE",
};

static const char *const qstate_names[UPCIE_NVME_NR_QSTATES] = {
    "NEW", "LIVE", "OFF", "FENCED", "ZOMBIE",
};

/* Controller: allowed[from][to]. A reset may start from anything but GONE
 * (a DEAD controller may come back); only a reset's end makes it LIVE;
 * GONE is final. */
static const bool ctrl_allowed[UPCIE_NVME_NR_STATES][UPCIE_NVME_NR_STATES] = {
    /*                        LIVE   RESETTING FAILED DEAD   GONE */
    [UPCIE_NVME_LIVE] = {false, true, true, true, true},
    [UPCIE_NVME_RESETTING] = {true, false, true, true, true},
    [UPCIE_NVME_FAILED] = {false, true, false, true, true},
    [UPCIE_NVME_DEAD] = {false, true, false, false, true},
    [UPCIE_NVME_GONE] = {false, false, false, false, false},
};

/* Queue pair: allowed[from][to]. A queue leaves ZOMBIE only by being
 * freed; FENCED -> LIVE is a reset bringing a DEAD controller back. */
static const bool q_allowed[UPCIE_NVME_NR_QSTATES][UPCIE_NVME_NR_QSTATES] = {
    /*                      NEW    LIVE   OFF    FENCED ZOMBIE */
    [UPCIE_NVME_Q_NEW] = {false, true, true, true, true},
    [UPCIE_NVME_Q_LIVE] = {false, false, true, true, true},
    [UPCIE_NVME_Q_OFF] = {false, true, true, true, true},
    [UPCIE_NVME_Q_FENCED] = {false, true, true, true, true},
    [UPCIE_NVME_Q_ZOMBIE] = {false, false, false, false, false},
};

const char *upcie_nvme_state_name(int s)
{
	return s >= 0 && s < UPCIE_NVME_NR_STATES ? state_names[s] : "?";
}

const char *upcie_nvme_qstate_name(int s)
{
	return s >= 0 && s < UPCIE_NVME_NR_QSTATES ? qstate_names[s] : "?";
}

bool upcie_nvme_state_allowed(int from, int to)
{
	return from >= 0 && from < UPCIE_NVME_NR_STATES && to >= 0 && to < UPCIE_NVME_NR_STATES &&
	       ctrl_allowed[from][to];
}

bool upcie_nvme_qstate_allowed(int from, int to)
{
	return from >= 0 && from < UPCIE_NVME_NR_QSTATES && to >= 0 && to < UPCIE_NVME_NR_QSTATES &&
	       q_allowed[from][to];
}

int upcie_nvme_state_read(const struct upcie_nvme_ctrl *c, uint32_t *gen)
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

void upcie_nvme_state_set(struct upcie_nvme_ctrl *c, int to)
{
	int from = c->state;

	if (!upcie_nvme_state_allowed(from, to)) {
		/* A bug of this file: caught in debug builds, logged in others. */
		upcie_log(UPCIE_LOG_ERROR, "%s: controller state %s -> %s is not in the table",
			  upcie_pci_name(c->dev), upcie_nvme_state_name(from),
			  upcie_nvme_state_name(to));
		assert(!"controller state transition not in the table");
	}
	/* State first, then the generation queues compare: a queue that sees
	 * the new generation reads the new state (state_read re-checks). */
	__atomic_store_n(&c->state, to, __ATOMIC_RELEASE);
	__atomic_add_fetch(&c->gen, 1, __ATOMIC_ACQ_REL);
	/* Then each queue's poke, which its owner's poll tests for free. */
	for (struct upcie_nvme_qpair *qp = c->qpairs; qp; qp = qp->next) {
		__atomic_store_n(&qp->poke, 1, __ATOMIC_RELEASE);
		upcie_nvme_irq_wake(qp); /* a sleeper in wait: after the poke */
	}
	if (c->admin)
		__atomic_store_n(&c->admin->poke, 1, __ATOMIC_RELEASE);
}

static void q_set(struct upcie_nvme_qpair *qp, int to)
{
	if (!upcie_nvme_qstate_allowed(qp->qstate, to)) {
		upcie_log(UPCIE_LOG_ERROR, "queue %u: state %s -> %s is not in the table", qp->qid,
			  upcie_nvme_qstate_name(qp->qstate), upcie_nvme_qstate_name(to));
		assert(!"queue state transition not in the table");
	}
	qp->qstate = (uint8_t)to;
}

bool upcie_nvme_state_admin_ok(const struct upcie_nvme_ctrl *c)
{
	return c->state == UPCIE_NVME_LIVE || (c->state == UPCIE_NVME_RESETTING && c->in_bringup);
}

/* The admin queue is in step with the controller (it is the controller's
 * own: it never recovers, it is reset with it). */
void upcie_nvme_state_admin_in_step(struct upcie_nvme_ctrl *c)
{
	if (c->admin) {
		c->admin->gen_src = &c->gen;
		c->admin->gen = c->gen;
	}
}

/* ---- host completions, collected first, delivered last ---- */

/* Take slot's command off the queue: the slot is free again (its next CID
 * one generation on) and *h holds the completion to deliver, the device's
 * cqe or, without one, a host status. false: nothing to deliver (the
 * command was abandoned or had no callback). */
static bool take(struct upcie_nvme_qpair *qp, uint32_t slot, const struct upcie_nvme_cqe *cqe,
		 uint16_t status, int dnr, struct upcie_nvme_hcpl *h)
{
	struct upcie_nvme_req *req = &qp->reqs[slot];
	bool live = !(req->expect & UPCIE_NVME_REQ_ABANDONED) && req->cb;

	qp->stats.completed++;
	h->cb = req->cb;
	h->arg = req->arg;
	if (cqe) {
		h->cqe = *cqe;
	} else {
		h->cqe = (struct upcie_nvme_cqe){0};
		h->cqe.cid = upcie_nvme_req_cid(req);
		h->cqe.sqid = qp->qid;
		h->cqe.status = upcie_nvme_status_field(status, dnr, 0);
	}
	if (!live)
		upcie_nvme_reg_drop(req);
	qp->free_cids[qp->nfree++] = (uint16_t)(upcie_nvme_req_cid(req) + qp->cid_gen);
	req->expect = UPCIE_NVME_REQ_IDLE;
	return live;
}

/* What the device posted before it let go of the queue: real completions
 * (no doorbell: the queue is gone), collected. Strays are counted, dropped.
 * A command the device ended because a reset deleted its SQ (quiesce_io)
 * ends as the reset ends commands: with 'status' (and dnr). */
static void take_posted(struct upcie_nvme_qpair *qp, uint32_t *nh, uint16_t status, int dnr)
{
	struct upcie_nvme_cqe cqe;

	while (upcie_nvme_cqe_take(qp, &cqe)) {
		uint32_t slot = cqe.cid & qp->cid_mask;
		bool deleted = upcie_nvme_cqe_status(&cqe) == UPCIE_NVME_SC_ABORT_SQ_DELETED;

		if (!upcie_nvme_req_holds(&qp->reqs[slot], upcie_nvme_cqe_key(&cqe)))
			upcie_nvme_queue_stray(qp, &cqe);
		else if (take(qp, slot, deleted ? NULL : &cqe, status, dnr, &qp->harvest[*nh]))
			(*nh)++;
	}
}

/* Collect every outstanding command but those marked kept (skip[slot]). */
static void take_all(struct upcie_nvme_qpair *qp, const uint8_t *skip, uint16_t status, int dnr,
		     uint32_t *nh)
{
	for (uint32_t slot = 0; slot <= qp->cid_mask; slot++)
		if (upcie_nvme_req_busy(&qp->reqs[slot]) && !(skip && skip[slot]) &&
		    take(qp, slot, NULL, status, dnr, &qp->harvest[*nh]))
			(*nh)++;
}

/* Run the collected callbacks. The harvest stays in use until the last
 * one returned: a recovery a callback's poll would start waits for the
 * next poll (harvesting), destroy and close refuse (in_cb). */
static void deliver(struct upcie_nvme_qpair *qp, uint32_t nh)
{
	uint8_t was = qp->in_cb;
	bool busy = qp->harvesting;

	qp->in_cb = 1;
	qp->harvesting = true;
	for (uint32_t i = 0; i < nh; i++)
		qp->harvest[i].cb(qp->harvest[i].arg, &qp->harvest[i].cqe);
	qp->harvesting = busy;
	qp->in_cb = was;
}

/* End everything outstanding now (the device can no longer touch it), one
 * command at a time: this needs no harvest, so it may run inside another
 * delivery. A command a callback submits meanwhile ends too if the scan
 * has not passed its slot (the queue is not going to the device). */
static uint32_t end_all(struct upcie_nvme_qpair *qp, uint16_t status, int dnr)
{
	uint8_t was = qp->in_cb;
	uint32_t n = 0;

	qp->in_cb = 1;
	for (uint32_t slot = 0; slot <= qp->cid_mask; slot++) {
		struct upcie_nvme_hcpl h;

		if (upcie_nvme_req_busy(&qp->reqs[slot]) && take(qp, slot, NULL, status, dnr, &h)) {
			h.cb(h.arg, &h.cqe);
			n++;
		}
	}
	qp->in_cb = was;
	return n;
}

/* ---- fence and reset ---- */

void upcie_nvme_fence(struct upcie_nvme_ctrl *c, int state, const char *why)
{
	uint32_t csts = upcie_mmio_read32(c->regs, UPCIE_NVME_REG_CSTS);

	if (c->state == UPCIE_NVME_GONE || c->state == state)
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
	upcie_nvme_state_set(c, state);
	if (c->admin) {
		end_all(c->admin, UPCIE_NVME_SC_HOST_PATH_ERROR, 1);
		upcie_nvme_state_admin_in_step(c);
	}
}

void upcie_nvme_state_failed(struct upcie_nvme_ctrl *c)
{
	if (c->state == UPCIE_NVME_LIVE)
		upcie_nvme_state_set(c, UPCIE_NVME_FAILED);
	upcie_nvme_state_admin_in_step(c); /* the admin queue stays usable for a reset */
}

/*
 * A requested reset of a working controller first deletes the I/O SQs
 * that are in step (was_gen): the controller ends their commands itself
 * (status ABORT_SQ_DELETED, which the queue's recovery turns into
 * HOST_ABORTED: take_posted()) and fetches nothing more from them, so the
 * disable that follows finds no I/O in flight. A disable with I/O in
 * flight is legal, but some controllers handle it badly (QEMU 7.2's
 * crashes in its own drain). Best effort and bounded: a delete that
 * fails or does not complete within the bound leaves the rest to the
 * disable, which ends everything anyway. Admin lock held, state
 * RESETTING (every queue is poked: its owner waits for the lock).
 */
#define QUIESCE_MAX_MS 1000u

/* The controller answers and reports no fatal status. */
static bool ctrl_working(struct upcie_nvme_ctrl *c)
{
	uint32_t csts = upcie_mmio_read32(c->regs, UPCIE_NVME_REG_CSTS);

	return csts != UINT32_MAX && upcie_nvme_csts_rdy(csts) && !upcie_nvme_csts_cfs(csts);
}

static void quiesce_io(struct upcie_nvme_ctrl *c, uint32_t was_gen)
{
	uint32_t tmo =
	    c->opts.admin_timeout_ms < QUIESCE_MAX_MS ? c->opts.admin_timeout_ms : QUIESCE_MAX_MS;
	uint64_t deadline = upcie_now_ms() + tmo;

	for (struct upcie_nvme_qpair *qp = c->qpairs; qp; qp = qp->next) {
		struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_DELETE_SQ, .cdw10 = qp->qid};
		struct upcie_nvme_waiter w = {0};
		uint16_t cid;
		bool sent;
		int rc;

		if (qp->qstate != UPCIE_NVME_Q_LIVE || qp->gen != was_gen)
			continue;
		/* Again before each queue: the device may have gone or failed
		 * during the last one. */
		if (!ctrl_working(c))
			return;
		rc = upcie_nvme_queue_submit(c->admin, &sqe, NULL, 0, upcie_nvme_waiter_cb, &w,
					     UPCIE_NVME_SUBMIT_RING, &cid);
		sent = !rc;
		if (sent)
			rc = upcie_nvme_queue_wait(c->admin, &w.done, deadline, c->dev);
		if (rc) {
			if (sent)
				upcie_nvme_queue_abandon(c->admin, cid);
			upcie_info("%s: reset: Delete I/O SQ %u: %s; the disable ends its commands",
				   upcie_pci_name(c->dev), qp->qid,
				   rc == -ETIMEDOUT ? "no completion in time" : strerror(-rc));
			return;
		}
		if (upcie_nvme_cqe_status(&w.cqe))
			upcie_info("%s: reset: Delete I/O SQ %u failed (%s); the disable ends its "
				   "commands",
				   upcie_pci_name(c->dev), qp->qid,
				   upcie_nvme_status_str(upcie_nvme_cqe_status(&w.cqe)));
	}
}

/*
 * Disable first: once CSTS.RDY = 0 the controller has let go of every
 * queue and buffer. Then bus mastering on again (a fence may have turned
 * it off), the admin queue's and the zombies' commands end, and the
 * controller comes up again; each I/O queue re-creates itself on its
 * owner's next poll.
 */
static int reset(struct upcie_nvme_ctrl *c, const char *why, bool quiesce)
{
	uint32_t was_gen = c->gen;
	bool was_live = c->state == UPCIE_NVME_LIVE;
	char msg[512];
	uint32_t nh = 0;
	int rc;

	if (c->state == UPCIE_NVME_GONE)
		return upcie_err(-ENODEV, "%s: cannot reset: the device is gone",
				 upcie_pci_name(c->dev));
	if (c->state == UPCIE_NVME_RESETTING) {
		/* Asked from a callback this reset runs (same thread: the lock
		 * is ours): the reset in progress is what was asked for. */
		upcie_info("%s: reset requested (%s) while one is in progress",
			   upcie_pci_name(c->dev), why);
		return 0;
	}
	upcie_warn("%s: resetting the controller: %s", upcie_pci_name(c->dev), why);
	upcie_nvme_state_set(c, UPCIE_NVME_RESETTING);
	if (quiesce && was_live)
		quiesce_io(c, was_gen);
	rc = upcie_nvme_ctrl_disable(c, false);
	if (!rc && upcie_pci_bus_master(c->dev, true))
		rc = upcie_err(-ENOTRECOVERABLE,
			       "%s: bus mastering could not be turned on again: %s",
			       upcie_pci_name(c->dev), upcie_errmsg());
	if (rc) {
		upcie_errmsg_save(msg, sizeof(msg));
		upcie_nvme_fence(c, rc == -ENODEV ? UPCIE_NVME_GONE : UPCIE_NVME_DEAD,
				 "the controller could not be disabled for a reset");
		upcie_errmsg_restore(msg);
		return rc == -ENODEV ? rc : -ENOTRECOVERABLE;
	}
	/* Disabled: the admin queue's commands (event requests, a timed-out
	 * command) end here, the host side fresh first; zombies end and free
	 * their qids. Callbacks run with the state RESETTING: admin commands
	 * they issue are refused, a reset they ask for is this one. */
	take_all(c->admin, NULL, UPCIE_NVME_SC_HOST_ABORTED, 0, &nh);
	upcie_nvme_queue_reset(c->admin);
	for (unsigned i = 0; i < UPCIE_NVME_AER_MAX; i++)
		c->aer[i].armed = false;
	upcie_nvme_state_end_zombies(c, true);
	deliver(c->admin, nh);

	c->in_bringup = true;
	rc = upcie_nvme_ctrl_bringup(c, true);
	c->in_bringup = false;
	if (!rc && c->state != UPCIE_NVME_RESETTING)
		/* An admin command of the bring-up was lost (even an optional
		 * step's): the controller cannot be trusted to be LIVE. */
		rc = upcie_err(-ETIMEDOUT, "%s: an admin command of the reset got no completion",
			       upcie_pci_name(c->dev));
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
	upcie_nvme_state_set(c, UPCIE_NVME_LIVE);
	upcie_nvme_state_admin_in_step(c);
	upcie_info("%s: controller reset done (%llu so far)", upcie_pci_name(c->dev),
		   (unsigned long long)c->resets);
	return 0;
}

int upcie_nvme_reset_locked(struct upcie_nvme_ctrl *c, const char *why)
{
	return reset(c, why, false);
}

/* An admin command was lost: reset, or (no_auto_reset, or inside a reset,
 * which then fails and says so) mark the controller failed. */
void upcie_nvme_admin_lost(struct upcie_nvme_ctrl *c, const char *why)
{
	if (!c->opts.no_auto_reset && c->state != UPCIE_NVME_RESETTING) {
		upcie_nvme_reset_locked(c, why);
		return;
	}
	if (c->state == UPCIE_NVME_LIVE || c->state == UPCIE_NVME_RESETTING)
		upcie_nvme_state_set(c, UPCIE_NVME_FAILED);
	upcie_nvme_state_admin_in_step(c);
}

int upcie_nvme_ctrl_reset(struct upcie_nvme_ctrl *c)
{
	int rc;

	if (!c)
		return upcie_err(-EINVAL, "upcie_nvme_ctrl_reset needs a controller");
	pthread_mutex_lock(&c->admin_lock);
	rc = reset(c, "requested", true);
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

/* ---- a queue's recovery, on its owner's thread ---- */

/* The controller was disabled since this queue was last in step: end what
 * it held, keep what was queued but never rung (same CIDs, same slots:
 * their PRP lists and any sync waiter stay valid), reset the host side
 * and create the queue again. Lock held. Returns 0 or a negative errno;
 * *nh: host completions collected for delivery. */
static int recreate(struct upcie_nvme_qpair *qp, uint32_t gen, uint32_t *nh)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	uint16_t unrung = (uint16_t)((qp->sq_tail + qp->depth - qp->sq_rung) % qp->depth);
	struct upcie_nvme_sqe *keep = NULL;
	struct upcie_nvme_req *kreq = NULL;
	uint8_t *skip = NULL;
	int rc;

	if (qp->qstate == UPCIE_NVME_Q_LIVE)
		q_set(qp, UPCIE_NVME_Q_OFF);
	take_posted(qp, nh, UPCIE_NVME_SC_HOST_ABORTED, 0);
	if (unrung) {
		keep = malloc((size_t)unrung * sizeof(*keep));
		kreq = malloc((size_t)unrung * sizeof(*kreq));
		skip = calloc((size_t)qp->cid_mask + 1, 1);
	}
	if (!keep || !kreq || !skip)
		unrung = 0; /* none, or no memory: then they end as aborted (retry is safe) */
	{
		uint16_t n = 0;

		/* Only entries whose command is still outstanding under that CID
		 * (a fence may have ended queued commands already). */
		for (uint16_t i = 0; i < unrung; i++) {
			struct upcie_nvme_sqe *e = &qp->sq[(qp->sq_rung + i) % qp->depth];
			struct upcie_nvme_req *req = &qp->reqs[e->cid & qp->cid_mask];

			if (!upcie_nvme_req_busy(req) || upcie_nvme_req_cid(req) != e->cid)
				continue;
			keep[n] = *e;
			kreq[n] = *req;
			skip[e->cid & qp->cid_mask] = 1;
			n++;
		}
		unrung = n;
	}
	take_all(qp, unrung ? skip : NULL, UPCIE_NVME_SC_HOST_ABORTED, 0, nh);
	upcie_nvme_queue_reset(qp);
	for (uint16_t i = 0; i < unrung; i++) {
		uint32_t slot = keep[i].cid & qp->cid_mask;

		for (uint16_t j = 0; j < qp->nfree; j++)
			if ((qp->free_cids[j] & qp->cid_mask) == slot) {
				qp->free_cids[j] = qp->free_cids[--qp->nfree];
				break;
			}
		qp->reqs[slot] = kreq[i];
		qp->reqs[slot].expect &= UPCIE_NVME_REQ_KEY | UPCIE_NVME_REQ_ABANDONED;
		qp->sq[i] = keep[i];
	}
	qp->sq_tail = unrung;
	free(keep);
	free(kreq);
	free(skip);

	rc = upcie_nvme_qpair_create_on_device(qp);
	if (rc) {
		rc = upcie_err(rc, "%s: queue %u could not be created again after the reset: %s",
			       upcie_pci_name(c->dev), qp->qid, upcie_errmsg());
		/* -EBUSY: the SQ was refused and its CQ could not be deleted. The
		 * device keeps that CQ, and every later Create I/O CQ for this id
		 * fails (Invalid Queue Identifier) until a reset takes it off:
		 * ask for one now (with no_auto_reset: failed), else the queue
		 * and what it keeps would wait for ever. */
		if (rc == -EBUSY)
			upcie_nvme_admin_lost(c, "a queue's CQ was left on the device by a failed "
						 "re-creation");
		return rc;
	}
	if (c->gen != gen) {
		/* A reset ran during the creation (asked by a callback the
		 * creation's admin wait ran): it took the new queue off the
		 * device again. Out of step: the next poll starts over. */
		q_set(qp, UPCIE_NVME_Q_OFF);
		return 0;
	}
	q_set(qp, UPCIE_NVME_Q_LIVE);
	qp->gen = gen;
	return 0;
}

int upcie_nvme_state_recover(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	uint32_t nh = 0, gen;
	int st, rc = 0;

	if (qp->harvesting)
		return 0; /* a callback being delivered polls: the next poll recovers */
	pthread_mutex_lock(&c->admin_lock);
	st = c->state;
	gen = c->gen;
	if (qp->gen == gen || st == UPCIE_NVME_RESETTING) {
		/* In step, or a reset is running on this thread (we are inside
		 * one of its callbacks): its end pokes us again. */
		pthread_mutex_unlock(&c->admin_lock);
		return 0;
	}
	qp->harvesting = true;
	switch (st) {
	case UPCIE_NVME_FAILED:
		/* The controller may still DMA: nothing may end yet. */
		rc = upcie_err(-ENOTRECOVERABLE,
			       "%s: the controller failed and needs a reset "
			       "(upcie_nvme_ctrl_reset); queue %u keeps its %u commands",
			       upcie_pci_name(c->dev), qp->qid, upcie_nvme_qpair_outstanding(qp));
		break;
	case UPCIE_NVME_DEAD:
	case UPCIE_NVME_GONE:
		/* Fenced: what the device posted is real, the rest ends with a
		 * path error. Left out of step, so that every poll ends what
		 * was submitted since. */
		if (qp->qstate != UPCIE_NVME_Q_FENCED)
			q_set(qp, UPCIE_NVME_Q_FENCED);
		take_posted(qp, &nh, UPCIE_NVME_SC_HOST_PATH_ERROR, 1);
		take_all(qp, NULL, UPCIE_NVME_SC_HOST_PATH_ERROR, 1, &nh);
		qp->sq_rung = qp->sq_tail; /* what was queued has ended: never ring it */
		rc =
		    upcie_err(st == UPCIE_NVME_GONE ? -ENODEV : -ENOTRECOVERABLE,
			      "%s: queue %u: %s", upcie_pci_name(c->dev), qp->qid,
			      st == UPCIE_NVME_GONE ? "the device is gone"
						    : "a reset failed; the controller is disabled");
		break;
	default:
		rc = recreate(qp, gen, &nh);
		if (!rc)
			qp->stats.recoveries++;
		break;
	}
	pthread_mutex_unlock(&c->admin_lock);
	if (qp->qstate == UPCIE_NVME_Q_LIVE)
		upcie_nvme_queue_ring(qp); /* the commands kept */
	deliver(qp, nh);
	qp->harvesting = false;
	return rc < 0 ? rc : (int)nh;
}

/* ---- queue pair life ---- */

int upcie_nvme_state_qids_init(struct upcie_nvme_ctrl *c)
{
	uint16_t n = c->io_sq_granted > c->io_cq_granted ? c->io_sq_granted : c->io_cq_granted;

	c->qid_used = calloc((size_t)n + 1, 1);
	if (!c->qid_used)
		return upcie_err(-ENOMEM, "out of memory for the map of %u queue ids", n);
	return 0;
}

int upcie_nvme_state_qid_alloc(struct upcie_nvme_ctrl *c)
{
	uint16_t max = c->io_sq_granted < c->io_cq_granted ? c->io_sq_granted : c->io_cq_granted;
	int qid = -1;

	pthread_mutex_lock(&c->admin_lock);
	for (uint32_t q = 1; q <= max && qid < 0; q++) {
		if (!c->qid_used[q]) {
			c->qid_used[q] = 1;
			qid = (int)q;
		}
	}
	pthread_mutex_unlock(&c->admin_lock);
	if (qid < 0)
		return upcie_err(-ENOSPC,
				 "all %u I/O queue pairs the controller granted are in use; "
				 "destroy one first",
				 max);
	return qid;
}

void upcie_nvme_state_qid_free(struct upcie_nvme_ctrl *c, uint16_t qid)
{
	pthread_mutex_lock(&c->admin_lock);
	c->qid_used[qid] = 0;
	pthread_mutex_unlock(&c->admin_lock);
}

void upcie_nvme_state_q_created(struct upcie_nvme_qpair *qp, uint32_t gen)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;

	q_set(qp, UPCIE_NVME_Q_LIVE);
	qp->gen_src = &c->gen;
	qp->gen = gen;
	qp->next = c->qpairs;
	c->qpairs = qp;
	if (qp->gen != c->gen) /* a reset ran during the creation (a callback asked) */
		__atomic_store_n(&qp->poke, 1, __ATOMIC_RELAXED);
}

void upcie_nvme_state_q_unlink(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;

	pthread_mutex_lock(&c->admin_lock);
	for (struct upcie_nvme_qpair **pp = &c->qpairs; *pp; pp = &(*pp)->next) {
		if (*pp == qp) {
			*pp = qp->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->admin_lock);
}

void upcie_nvme_state_q_gone(struct upcie_nvme_qpair *qp)
{
	if (qp->qstate == UPCIE_NVME_Q_LIVE)
		q_set(qp, UPCIE_NVME_Q_OFF);
}

void upcie_nvme_state_q_zombie(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;

	pthread_mutex_lock(&c->admin_lock);
	q_set(qp, UPCIE_NVME_Q_ZOMBIE);
	qp->next = c->zombies;
	c->zombies = qp;
	pthread_mutex_unlock(&c->admin_lock);
}

uint32_t upcie_nvme_state_q_end(struct upcie_nvme_qpair *qp, uint16_t status, int dnr)
{
	return end_all(qp, status, dnr);
}

void upcie_nvme_state_q_fenced(struct upcie_nvme_qpair *qp)
{
	if (qp->qstate != UPCIE_NVME_Q_FENCED)
		q_set(qp, UPCIE_NVME_Q_FENCED);
	qp->sq_rung = qp->sq_tail; /* what was queued ends here: never ring it */
	end_all(qp, UPCIE_NVME_SC_HOST_PATH_ERROR, 1);
}

void upcie_nvme_state_end_zombies(struct upcie_nvme_ctrl *c, bool quiet)
{
	while (c->zombies) {
		struct upcie_nvme_qpair *qp = c->zombies;

		c->zombies = qp->next;
		/* The device can no longer touch them: their commands end here. */
		if (quiet)
			end_all(qp, UPCIE_NVME_SC_HOST_ABORTED, 0);
		if (quiet && c->qid_used && qp->qid)
			c->qid_used[qp->qid] = 0;
		upcie_nvme_irq_free(qp);
		upcie_nvme_queue_free(qp, !quiet);
	}
}
