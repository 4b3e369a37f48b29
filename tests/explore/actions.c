/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The explorer's actions (one per step, chosen by the seeded PRNG) and the
 * callbacks the library calls: completions (which sometimes resubmit or
 * reset the controller) and the timeout policy.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "nvme/nvme.h"
#include "explore.h"

static const char *kind_name(uint8_t k)
{
	return k == X_READ ? "read" : k == X_WRITE ? "write" : "admin";
}

/* ---- callbacks ---- */

/* A guard, application or reference tag check failed (PI namespaces). */
static bool pi_error(const struct xcmd *c)
{
	return c->status >= UPCIE_NVME_SC_GUARD_CHECK && c->status <= UPCIE_NVME_SC_REFTAG_CHECK;
}

/* Common to every completion: exactly once (a), by its own CID. */
static struct xcmd *completed(uint32_t id, const struct upcie_nvme_cqe *cqe)
{
	struct xcmd *c = x_cmd(id);
	uint16_t st = upcie_nvme_cqe_status(cqe);

	if (!c || c->state == X_FREE) {
		x_fail("(a) completion (cid %u, status %#x) for unknown command %u", cqe->cid, st,
		       id);
		return NULL;
	}
	x_trace("  cb %s %u q%u cid %u: %#x%s", kind_name(c->kind), id, c->q, c->cid, st,
		c->state == X_DONE ? " AGAIN" : "");
	if (c->state == X_DONE) {
		x_fail("(a) %s %u (q%u cid %u) completed twice: first at step %" PRIu64
		       " with %#x, now with %#x",
		       kind_name(c->kind), id, c->q, c->cid, c->done_step, c->status, st);
		return NULL;
	}
	if (cqe->cid != c->cid)
		x_fail("(a) %s %u (cid %u) completed by an entry for cid %u", kind_name(c->kind),
		       id, c->cid, cqe->cid);
	c->state = X_DONE;
	c->status = st;
	c->done_step = X.step;
	X.live_total--;
	if (id == X.expiring && X.ctrl) {
		/* Ended by the device while its timeout is handled, with no reset
		 * since: the library must not reset for it any more (h). */
		if (st != UPCIE_NVME_SC_HOST_ABORTED && st != UPCIE_NVME_SC_HOST_PATH_ERROR &&
		    X.ctrl->gen == X.exp_gen) {
			X.win_cmd = id;
			X.win_gen = X.ctrl->gen;
			X.win_cbresets = X.n_cb_resets;
		}
		X.expiring = 0;
	}
	return c;
}

static bool retryable(uint16_t st)
{
	if (st == UPCIE_NVME_SC_HOST_ABORTED)
		return !(X.off & XF_RETRY);
	return st == UPCIE_NVME_SC_ABORT_REQ && !(X.off & XF_RETRYABORT);
}

void x_io_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;
	struct xcmd *c = completed(id, cqe);
	uint16_t st;
	unsigned qi;

	if (!c)
		return;
	qi = c->q;
	st = c->status;
	if (!c->zombie)
		X.q[qi].live--;
	if (pi_error(c))
		x_fail("(m) %s %u (ns %u lba %" PRIu64 "+%u) failed an end-to-end check: %#x",
		       kind_name(c->kind), id, c->nsid, c->slba, c->nlb, st);
	if (c->kind == X_WRITE && !x_write_intact(c, id))
		x_fail("(b) the buffer of write %u changed while it was in flight", id);
	if (c->kind == X_READ && c->md)
		x_md_read_done(c, id);
	x_oracle_complete(c, id);
	x_slot_put(c->slot);
	if (X.closing || c->zombie || X.q[qi].busy_destroy || X.cb_depth || X.failed)
		return;
	/* From inside the callback, as an application would: retry what a
	 * reset or an Abort ended (the README says retry is safe), sometimes
	 * start something new, sometimes reset the controller. */
	X.cb_depth++;
	if (retryable(st) && x_chance(600)) {
		uint8_t kind = c->kind;
		uint32_t nsid = c->nsid, nlb = c->nlb;
		uint64_t slba = c->slba;

		X.n_cb_resubmits++;
		x_submit_io(qi, kind, nsid, slba, nlb, id, true);
	} else if (!(X.off & XF_RETRY) && x_chance(40)) {
		x_submit_io(qi, x_chance(500) ? X_READ : X_WRITE, 1 + x_below(X_NS), x_below(8),
			    1 + x_below(4), id, true);
	}
	/* Destroy or close from inside a callback: refused, nothing changes. */
	if (x_chance(10)) {
		bool close = x_chance(500);
		int rc;

		x_call_begin(close ? "upcie_nvme_ctrl_close (callback)"
				   : "upcie_nvme_qpair_destroy (callback)");
		rc = close ? upcie_nvme_ctrl_close(X.ctrl) : upcie_nvme_qpair_destroy(X.q[qi].qp);
		x_call_end();
		x_trace("  %s from the callback of %u: %d", close ? "close" : "destroy", id, rc);
		if (rc != -EBUSY)
			x_fail("(a) %s from a completion callback returned %d, not -EBUSY",
			       close ? "close" : "destroy", rc);
	}
	if (X.cb_resets < 2 && !X.removed && !(X.off & XF_CBRESET) &&
	    x_chance(st == UPCIE_NVME_SC_HOST_ABORTED ? 60 : 4)) {
		int rc;

		X.cb_resets++;
		X.n_cb_resets++;
		x_trace("  reset from the callback of %u", id);
		x_call_begin("upcie_nvme_ctrl_reset (callback)");
		rc = upcie_nvme_ctrl_reset(X.ctrl);
		x_call_end();
		x_trace("  reset (callback): %d", rc);
	}
	X.cb_depth--;
}

static void admin_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	uint32_t id = (uint32_t)(uintptr_t)arg;

	completed(id, cqe);
}

static enum upcie_nvme_timeout_action timeout_cb(void *arg, struct upcie_nvme_qpair *qp,
						 uint16_t cid)
{
	unsigned qi = (unsigned)(uintptr_t)arg;
	enum upcie_nvme_timeout_action act;
	uint32_t found = 0;

	for (uint32_t id = 1; id <= X.ncmds && !found; id++) {
		struct xcmd *c = x_cmd(id);

		if (c->state == X_LIVE && c->kind != X_ADMIN && !c->zombie && c->q == qi &&
		    c->cid == cid)
			found = id;
	}
	if (!found || X.q[qi].qp != qp)
		x_fail("(a) timeout callback for q%u cid %u, which no live command holds", qi, cid);
	x_window_close();
	X.n_timeouts++;
	act = x_chance(200)   ? UPCIE_NVME_TIMEOUT_WAIT
	      : x_chance(150) ? UPCIE_NVME_TIMEOUT_RESET
			      : UPCIE_NVME_TIMEOUT_ABORT;
	X.expiring = act == UPCIE_NVME_TIMEOUT_ABORT ? found : 0;
	X.exp_gen = X.ctrl->gen;
	x_trace("  timeout q%u cid %u (cmd %u): %s", qi, cid, found,
		act == UPCIE_NVME_TIMEOUT_WAIT	  ? "wait"
		: act == UPCIE_NVME_TIMEOUT_RESET ? "reset"
						  : "abort");
	return act;
}

/*
 * (h) The window after a timed-out command ended by the device (Command
 * Abort Requested, or its own completion) inside the timeout path: the
 * library may not reset the controller for it (nvme.h: "if the command
 * does not complete within the admin timeout, reset"). Nothing else in
 * that window resets, but a callback of ours.
 */
void x_window_close(void)
{
	if (X.win_cmd && X.ctrl && X.ctrl->gen != X.win_gen && X.n_cb_resets == X.win_cbresets)
		x_fail("(h) the controller was reset after command %u, whose timeout was being "
		       "handled, had completed (status %#x)",
		       X.win_cmd, x_cmd(X.win_cmd)->status);
	X.win_cmd = 0;
}

/* ---- I/O ---- */

/* On a PI namespace (8 bytes, PI only): the device inserts the PI on
 * writes, checks and strips it on reads; the host buffer is data only. */
static uint32_t pi_flags(const struct upcie_nvme_ns *ns, uint8_t kind)
{
	return UPCIE_NVME_RW_PRACT | (kind == X_READ ? upcie_nvme_ns_prchk(ns) : 0);
}

/* The first reference tag: the LBA (types 1 and 2 count it up per block);
 * type 3 has one tag for every block of every command. */
static uint32_t pi_ref(const struct upcie_nvme_ns *ns, uint64_t slba)
{
	return ns->pi_type == 3 ? 0x7e57u : (uint32_t)slba;
}

int x_submit_io(unsigned qi, uint8_t kind, uint32_t nsid, uint64_t slba, uint32_t nlb,
		uint32_t parent, bool from_cb)
{
	struct xq *q = &X.q[qi];
	const struct upcie_nvme_ns *ns;
	unsigned flags = x_chance(850) ? UPCIE_NVME_SUBMIT_RING : 0;
	unsigned way = x_below(3);
	struct xcmd *c;
	uint32_t id, size;
	void *buf;
	int slot, rc;
	uint8_t reg;

	if (!q->qp || q->busy_destroy)
		return -1;
	ns = upcie_nvme_ns_get(X.ctrl, nsid);
	if (!ns || !ns->nsze || slba + nlb > X_BLOCKS)
		return -1;
	if (kind == X_WRITE && !x_oracle_room(nsid, slba, nlb))
		return -1;
	size = nlb * ns->lba_size;
	slot = x_slot_get(size);
	if (slot < 0)
		return -1;
	id = x_cmd_new(kind);
	c = x_cmd(id);
	c->q = (uint8_t)qi;
	c->nsid = nsid;
	c->slba = slba;
	c->nlb = nlb;
	c->lba_size = ns->lba_size;
	c->slot = (uint32_t)slot;
	c->parent = parent;
	buf = X.slots[slot - 1].buf;
	if (kind == X_WRITE)
		x_fill_write(c, id);
	else
		memset(buf, 0xee, size);
	X.slots[slot - 1].owner = id;
	x_call_begin("submit");
	if (way == 2) {
		struct upcie_nvme_sqe sqe = {
		    .opc = kind == X_WRITE ? UPCIE_NVME_CMD_WRITE : UPCIE_NVME_CMD_READ,
		    .nsid = nsid,
		    .cdw10 = (uint32_t)slba,
		    .cdw11 = (uint32_t)(slba >> 32),
		    .cdw12 = (nlb - 1) | (ns->pi_type ? pi_flags(ns, kind) : 0),
		    .cdw14 = pi_ref(ns, slba),
		};
		rc = upcie_nvme_submit_raw(q->qp, &sqe, buf, size, x_io_cb, (void *)(uintptr_t)id,
					   flags);
	} else if (ns->pi_type) {
		struct upcie_nvme_io_opts o = {.opts_size = sizeof(o),
					       .flags = pi_flags(ns, kind),
					       .reftag = pi_ref(ns, slba)};

		/* Sometimes the PI crosses the bus instead: made here for a
		 * write, checked by the device both ways, from a metadata
		 * buffer that may be in pieces (md.c). */
		if (X.md_sgl && !ns->md_extended && x_chance(500)) {
			o.flags = kind == X_READ ? upcie_nvme_ns_prchk(ns) : 0;
			o.md = x_md_buf((uint32_t)slot);
			c->md = true;
			c->md_ms = ns->ms;
			c->md_ref = o.reftag;
			if (kind == X_WRITE && upcie_nvme_pi_generate(ns, buf, o.md, nlb, &o))
				x_fail("(n) PI for write %u not made: %s", id, upcie_errmsg());
		}

		rc = kind == X_WRITE ? upcie_nvme_write_ext(q->qp, ns, slba, nlb, buf, &o, x_io_cb,
							    (void *)(uintptr_t)id, flags)
				     : upcie_nvme_read_ext(q->qp, ns, slba, nlb, buf, &o, x_io_cb,
							   (void *)(uintptr_t)id, flags);
	} else if (kind == X_WRITE) {
		rc = upcie_nvme_write(q->qp, ns, slba, nlb, buf, x_io_cb, (void *)(uintptr_t)id,
				      flags);
	} else {
		rc = upcie_nvme_read(q->qp, ns, slba, nlb, buf, x_io_cb, (void *)(uintptr_t)id,
				     flags);
	}
	x_call_end();
	c = x_cmd(id);
	reg = X.slots[slot - 1].reg;
	if (rc) {
		x_trace("%s%s q%u ns%u lba %" PRIu64 "+%u%s: refused %d", from_cb ? "  " : "",
			kind_name(kind), qi, nsid, slba, nlb,
			reg ? (X.reg[reg - 1].on ? " (registered)" : " (unregistered)") : "", rc);
		c->kind = 0; /* never accepted */
		X.slots[slot - 1].owner = 0;
		return rc;
	}
	if (reg && !X.reg[reg - 1].on)
		x_fail("(r) %s %u on buffer %d, in region %u which is not registered, was "
		       "accepted",
		       kind_name(kind), id, slot, reg - 1);
	X.n_reg_io += reg != 0;
	X.n_md_io += c->md;
	c->cid = upcie_nvme_qpair_last_cid(q->qp);
	c->state = X_LIVE;
	q->live++;
	X.live_total++;
	X.n_io++;
	x_oracle_submit(c, id);
	x_trace("%s%s %u q%u cid %u ns%u lba %" PRIu64 "+%u buf %d%s%s%s", from_cb ? "  " : "",
		kind_name(kind), id, qi, c->cid, nsid, slba, nlb, slot,
		way == 2 ? " raw"
		: c->md	 ? " md"
			 : "",
		flags ? " ring" : "", parent ? " (retry)" : "");
	return 0;
}

void x_poll(unsigned qi, uint32_t times)
{
	int total = 0, last = 0;
	uint32_t t;

	for (t = 0; t < times && X.q[qi].qp && !X.failed; t++) {
		int rc;

		x_call_begin("upcie_nvme_poll");
		rc = upcie_nvme_poll(X.q[qi].qp, x_chance(200) ? 1 + x_below(4) : 0);
		x_call_end();
		x_window_close();
		X.expiring = 0;
		if (rc > 0)
			total += rc;
		else if (rc < 0)
			last = rc;
		if (rc && x_chance(300)) {
			t++;
			break;
		}
	}
	if (total || last || !X.closing)
		x_trace("poll q%u x%u: %d reaped%s%.0d (tick %u)", qi, t, total,
			last ? ", error " : "", last, X.q[qi].qp ? X.q[qi].qp->tick : 0);
}

/* ---- qpairs ---- */

void x_qpair_create(unsigned qi)
{
	struct upcie_nvme_qpair_opts o = {
	    .depth = 6 + x_below(40),
	    .lazy_cq = x_chance(250),
	};
	struct xq *q = &X.q[qi];

	/* Interrupts on half of them; hybrid waiting on some of those. */
	if (!(X.off & XF_IRQ) && x_chance(500)) {
		o.irq = 1;
		o.spin_us = x_chance(300) ? 20 + x_below(500) : 0;
	}

	q->tcb = x_chance(600);
	if (q->tcb) {
		o.timeout_cb = timeout_cb;
		o.timeout_arg = (void *)(uintptr_t)qi;
	}
	x_call_begin("upcie_nvme_qpair_create");
	q->qp = upcie_nvme_qpair_create(X.ctrl, &o);
	x_call_end();
	if (!q->qp) {
		x_trace("create q%u: errno %d", qi, errno);
		x_irq_check_fds("a failed create");
		return;
	}
	q->depth = upcie_nvme_qpair_depth(q->qp);
	q->live = 0;
	q->irq = o.irq;
	q->armed = false;
	x_trace("create q%u: qid %u depth %u%s%s%s", qi, upcie_nvme_qpair_id(q->qp), q->depth,
		o.lazy_cq ? " lazy" : "", q->tcb ? " tcb" : "", o.irq ? " irq" : "");
	if (o.spin_us)
		x_trace("  spin_us %u", o.spin_us);
	x_irq_check_fds("a create");
}

void x_qpair_destroy(unsigned qi)
{
	struct xq *q = &X.q[qi];
	int rc;

	q->busy_destroy = true;
	x_call_begin("upcie_nvme_qpair_destroy");
	rc = upcie_nvme_qpair_destroy(q->qp);
	x_call_end();
	x_trace("destroy q%u: %d (%u left)", qi, rc, q->live);
	if (rc == 0 && q->live)
		x_fail("(a) destroy of q%u returned 0 with %u commands never completed", qi,
		       q->live);
	for (uint32_t id = 1; id <= X.ncmds; id++) {
		struct xcmd *c = x_cmd(id);

		if (c->state == X_LIVE && c->kind != X_ADMIN && c->q == qi)
			c->zombie = true;
	}
	q->qp = NULL;
	q->live = 0;
	q->busy_destroy = false;
	q->irq = false;
	q->armed = false;
	x_irq_check_fds("a destroy");
}

/* ---- faults ---- */

static void fault(void)
{
	static const uint8_t opcs[] = {
	    UPCIE_NVME_ADM_CREATE_CQ,	 UPCIE_NVME_ADM_CREATE_SQ,    UPCIE_NVME_ADM_DBBUF_CONFIG,
	    UPCIE_NVME_ADM_IDENTIFY,	 UPCIE_NVME_ADM_SET_FEATURES, UPCIE_NVME_ADM_ABORT,
	    UPCIE_NVME_ADM_DELETE_SQ,	 UPCIE_NVME_ADM_DELETE_CQ,    UPCIE_NVME_ADM_GET_FEATURES,
	    UPCIE_NVME_ADM_GET_LOG_PAGE, UPCIE_NVME_ADM_ASYNC_EVENT,
	};
	static const uint16_t errs[] = {UPCIE_NVME_SC_INTERNAL, UPCIE_NVME_SC_DATA_XFER_ERROR,
					UPCIE_NVME_SC_INVALID_FIELD};
	uint32_t r = x_below(96), arg = 0;
	uint16_t st = 0;
	enum upcie_sim_fault f;
	const char *name;
	uint32_t need;

	if (r < 14) {
		f = UPCIE_SIM_FAULT_DROP_CQE, name = "drop-cqe", arg = 1 + x_below(2);
		need = XF_DROP;
	} else if (r < 26) {
		f = UPCIE_SIM_FAULT_STATUS_NTH, name = "status-nth", arg = 1 + x_below(4);
		st = errs[x_below(3)];
		need = XF_NTH;
	} else if (r < 40) {
		f = UPCIE_SIM_FAULT_HOLD, name = "hold", arg = 1 + x_below(4);
		need = XF_HOLD;
	} else if (r < 44) {
		f = UPCIE_SIM_FAULT_ABORT_LOST, name = "abort-lost";
		need = XF_ABORTLOST;
	} else if (r < 48) {
		f = UPCIE_SIM_FAULT_DELETE_SQ_REFUSED, name = "delete-sq-refused";
		need = XF_DELREFUSED;
	} else if (r < 52) {
		f = UPCIE_SIM_FAULT_CFS, name = "cfs";
		need = XF_CFS;
	} else if (r < 60) {
		f = UPCIE_SIM_FAULT_DUP_CQE, name = "dup-cqe", arg = 1 + x_below(2);
		need = XF_DUP;
	} else if (r < 66) {
		f = UPCIE_SIM_FAULT_STALE_CQE, name = "stale-cqe", arg = 1 + x_below(8);
		need = XF_STALE;
	} else if (r < 72) {
		f = UPCIE_SIM_FAULT_FOREIGN_CQE, name = "foreign-cqe";
		need = XF_FOREIGN;
	} else if (r < 80) {
		f = UPCIE_SIM_FAULT_ADMIN_OPC, name = "admin-opc";
		arg = opcs[x_below(sizeof(opcs))];
		st = x_chance(500) ? 0 : errs[x_below(3)];
		need =
		    arg == UPCIE_NVME_ADM_DBBUF_CONFIG ? XF_ADMINOPC | XF_DBBUFFAIL : XF_ADMINOPC;
	} else if (r < 86) {
		f = UPCIE_SIM_FAULT_IRQ_LOST, name = "irq-lost", arg = 1 + x_below(3);
		need = XF_IRQLOST;
	} else if (r < 92) {
		/* Any vector: the admin queue's, a queue's, or one nobody holds. */
		f = UPCIE_SIM_FAULT_IRQ_SPURIOUS, name = "irq-spurious";
		arg = x_below(X_VECTORS);
		need = XF_IRQSPUR;
	} else {
		f = UPCIE_SIM_FAULT_NONE, name = "none";
		need = 0;
	}
	if (X.off & need)
		return;
	X.n_faults++;
	if (f == UPCIE_SIM_FAULT_IRQ_LOST)
		x_irq_lost_injected();
	int rc = upcie_sim_fault(X.sim, f, arg, st);
	x_trace("fault %s %#x %#x%s", name, arg, st, rc ? " (unknown to the sim)" : "");
}

/* ---- one step ---- */

/*
 * Register or unregister region r (r): unregister must be refused (-EBUSY)
 * exactly while a command the explorer counts outstanding has its buffer
 * there (on a zombie queue too: the device may still use it), and accepted
 * otherwise; register of memory that is off must work (the sim takes any).
 */
static void reg_toggle(unsigned r)
{
	struct xreg *g = &X.reg[r];
	uint32_t users = 0;
	int rc;

	for (uint32_t id = 1; id <= X.ncmds; id++) {
		struct xcmd *c = x_cmd(id);

		users += c->state == X_LIVE && c->kind != X_ADMIN && c->slot &&
			 X.slots[c->slot - 1].reg == r + 1;
	}
	x_call_begin(g->on ? "upcie_dma_unregister" : "upcie_dma_register");
	rc = g->on ? upcie_dma_unregister(X.heap, g->mem, X_REG_BYTES)
		   : upcie_dma_register(X.heap, g->mem, X_REG_BYTES);
	x_call_end();
	x_trace("%sregister region %u (%u commands on it): %d", g->on ? "un" : "", r, users, rc);
	X.n_reg_toggles++;
	if (!g->on) {
		if (rc)
			x_fail("(r) register of region %u returned %d (%s)", r, rc, upcie_errmsg());
		g->on = !rc;
	} else if (users && rc != -EBUSY) {
		x_fail("(r) unregister of region %u with %u commands on it returned %d, not -EBUSY",
		       r, users, rc);
	} else if (!users && rc) {
		x_fail("(r) unregister of region %u with no command on it returned %d (%s)", r, rc,
		       upcie_errmsg());
	} else {
		X.n_unreg_busy += rc == -EBUSY;
		g->on = rc != 0;
	}
}

static unsigned pick_q(void)
{
	return x_below(X_QPAIRS);
}

void x_step(void)
{
	uint32_t r = x_below(1000);
	unsigned qi = pick_q();
	struct xq *q = &X.q[qi];
	int rc;

	X.vnow += x_below(4);
	if (X.removed && r >= 500 && r < 970)
		r = 300; /* a removed device: only polls and time */
	if (r < 300) {
		uint32_t nlb = 1 + x_below(x_chance(700) ? 4 : X_MAX_NLB);
		uint32_t nsid = 1 + x_below(X_NS);

		x_submit_io(qi, x_chance(550) ? X_WRITE : X_READ, nsid, x_below(X_BLOCKS - nlb + 1),
			    nlb, 0, false);
	} else if (r < 500) {
		static const uint32_t times[] = {1, 1, 1, 8, 64, 600, 2048, 4096};

		/* An interrupt queue is mostly waited on or armed, as an
		 * application would; any queue is sometimes waited on. */
		if (!q->qp)
			;
		else if (!(X.off & XF_IRQ) && x_chance(q->irq ? 600 : 60) && x_chance(550))
			x_irq_wait(qi);
		else if (!(X.off & XF_IRQ) && q->irq && x_chance(600))
			x_irq_arm(qi);
		else
			x_poll(qi, times[x_below(8)]);
	} else if (r < 680) {
		uint32_t k = 1 + x_below(4);

		rc = upcie_sim_step_n(X.sim, k);
		x_trace("sim step %u: %d", k, rc);
	} else if (r < 710) {
		if (q->qp) {
			upcie_nvme_ring(q->qp);
			x_trace("ring q%u", qi);
		}
	} else if (r < 728) {
		if (X.off & XF_RESET)
			return;
		x_call_begin("upcie_nvme_ctrl_reset");
		rc = upcie_nvme_ctrl_reset(X.ctrl);
		x_call_end();
		x_trace("reset: %d%s%s", rc, rc ? " " : "", rc ? upcie_errmsg() : "");
		x_irq_check_fds("a reset");
	} else if (r < 743) {
		x_call_begin("upcie_nvme_ctrl_check");
		rc = upcie_nvme_ctrl_check(X.ctrl);
		x_call_end();
		x_trace("check: %d", rc);
	} else if (r < 758) {
		if (X.off & XF_DESTROY)
			return;
		if (q->qp)
			x_qpair_destroy(qi);
		else
			x_qpair_create(qi);
	} else if (r < 770) {
		if (X.off & XF_NS)
			return;
		X.nr_active_ns = X.nr_active_ns == 2 ? 1 : 2;
		upcie_sim_set_active_ns(X.sim, X.nr_active_ns);
		x_trace("namespaces: %u active", X.nr_active_ns);
		for (int i = 0; i < 3; i++) {
			upcie_sim_step(X.sim);
			x_call_begin("upcie_nvme_admin_poll");
			rc = upcie_nvme_admin_poll(X.ctrl);
			x_call_end();
		}
	} else if (r < 790) {
		uint16_t st = 0;

		x_call_begin("upcie_nvme_identify");
		rc = upcie_nvme_identify(X.ctrl, 1, 0, X.admin_buf, &st);
		x_call_end();
		x_trace("identify: %d %#x", rc, st);
	} else if (r < 805) {
		struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_GET_FEATURES, .cdw10 = 0x07};
		uint32_t id = x_cmd_new(X_ADMIN);

		x_call_begin("upcie_nvme_admin_submit");
		rc =
		    upcie_nvme_admin_submit(X.ctrl, &sqe, NULL, 0, admin_cb, (void *)(uintptr_t)id);
		x_call_end();
		if (rc) {
			x_cmd(id)->kind = 0;
		} else {
			x_cmd(id)->state = X_LIVE;
			x_cmd(id)->cid = upcie_nvme_qpair_last_cid(X.ctrl->admin);
			x_cmd(id)->sub_seq = ++X.seq;
			X.live_total++;
		}
		x_trace("admin %u: get features: %d", id, rc);
	} else if (r < 820) {
		x_call_begin("upcie_nvme_admin_poll");
		rc = upcie_nvme_admin_poll(X.ctrl);
		x_call_end();
		x_trace("admin poll: %d", rc);
	} else if (r < 835) {
		/* Abort a live command of this qpair ourselves. */
		for (uint32_t id = X.ncmds; id >= 1 && q->qp; id--) {
			struct xcmd *c = x_cmd(id);

			if (c->state != X_LIVE || c->kind == X_ADMIN || c->zombie || c->q != qi)
				continue;
			x_call_begin("upcie_nvme_abort");
			rc = upcie_nvme_abort(q->qp, c->cid);
			x_call_end();
			x_trace("abort %u (q%u cid %u): %d", id, qi, c->cid, rc);
			break;
		}
	} else if (r < 850) {
		rc = upcie_sim_release_held(X.sim);
		x_trace("release held: %d", rc);
	} else if (r < 915) {
		fault();
	} else if (r < 935 && !(X.off & XF_REG)) {
		reg_toggle(x_below(X_REGS));
	} else if (r < 965 && X.ctx) {
		x_peer_step();
	} else {
		uint32_t ms = 10 + x_below(60);

		X.vnow += ms;
		x_trace("time +%u ms", ms);
	}
	if (!X.removed && !(X.off & XF_REMOVED) && X.step == X.steps - X.steps / 4 &&
	    X.seed % 29 == 7) {
		/* Rarely, and late: the device goes away for good, while the
		 * queues with interrupts are armed (their sleepers must wake). */
		for (unsigned i = 0; i < X_QPAIRS && !(X.off & XF_IRQ); i++)
			if (X.q[i].qp && X.q[i].irq)
				x_irq_arm(i);
		upcie_sim_fault(X.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
		X.removed = true;
		x_trace("fault removed");
	}
}
