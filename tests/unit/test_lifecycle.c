/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lifecycle: faults in combination, one test per way the controller's and
 * the queues' states used to go wrong together (lib/nvme/state.c). Each is
 * deterministic on the stepped sim; the explorer (tests/explore) finds
 * these and their neighbours by search, these pin them down.
 */
#include "fixture.h"
#include "nvme/nvme.h" /* white box: queue states, the table */

#define NREADS 4

struct rd {
	struct fx *f;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	void *buf;
	unsigned done;	  /* callbacks */
	unsigned ok;	  /* successful ones */
	unsigned aborted; /* HOST_ABORTED ones */
	bool retry;	  /* resubmit on HOST_ABORTED */
	bool reset_in_cb; /* reset once from the first HOST_ABORTED callback */
	bool *reset_flag;
	int resubmit_rc;
};

static int rd_submit(struct rd *r);

static void rd_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct rd *r = arg;
	uint16_t st = upcie_nvme_cqe_status(cqe);

	r->done++;
	if (!st) {
		r->ok++;
		return;
	}
	if (st != UPCIE_NVME_SC_HOST_ABORTED)
		return;
	r->aborted++;
	if (r->reset_in_cb && r->reset_flag && !*r->reset_flag) {
		*r->reset_flag = true;
		CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(r->f->ctrl), 0);
	}
	if (r->retry)
		r->resubmit_rc = rd_submit(r);
}

static int rd_submit(struct rd *r)
{
	return upcie_nvme_read(r->qp, r->ns, 0, 1, r->buf, rd_cb, r, UPCIE_NVME_SUBMIT_RING);
}

static void rd_init(struct rd *r, struct fx *f, struct upcie_nvme_qpair *qp)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->qp = qp;
	r->ns = upcie_nvme_ns_first(f->ctrl);
	r->buf = upcie_dma_alloc(f->heap, r->ns->lba_size, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r->buf);
}

/* Poll until every read has ok, or 5 s; counts poll errors. */
static unsigned drain(struct fx *f, struct upcie_nvme_qpair *qp, struct rd *r, unsigned n,
		      unsigned *poll_errors)
{
	double deadline = fx_now() + 5.0;

	for (;;) {
		unsigned ok = 0;

		for (unsigned i = 0; i < n; i++)
			ok += r[i].ok ? 1 : 0;
		if (ok == n || fx_now() > deadline)
			return ok;
		fx_step(f);
		if (upcie_nvme_poll(qp, 0) < 0)
			(*poll_errors)++;
	}
}

/* Defect 1: a reset from a HOST_ABORTED callback that the recovery itself
 * runs. The queue must end in step with the controller that has it: the
 * retried reads complete, no poll fails, the device saw no bad command. */
static void test_reset_from_recovery_callback(void)
{
	struct fx f;
	struct rd r[NREADS];
	struct upcie_sim_stats st;
	bool reset_done = false;
	unsigned poll_errors = 0;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	struct upcie_nvme_qpair_opts o = {.depth = 16};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, NREADS, 0);
	for (unsigned i = 0; i < NREADS; i++) {
		rd_init(&r[i], &f, qp);
		r[i].retry = true;
		r[i].reset_in_cb = true;
		r[i].reset_flag = &reset_done;
		CU_ASSERT_EQUAL(rd_submit(&r[i]), 0);
	}
	fx_step(&f); /* fetched and held */
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	upcie_sim_stats_reset(f.sim);
	CU_ASSERT_EQUAL(drain(&f, qp, r, NREADS, &poll_errors), NREADS);
	CU_ASSERT_TRUE(reset_done);
	CU_ASSERT_EQUAL(poll_errors, 0);
	upcie_sim_stats(f.sim, &st);
	CU_ASSERT_EQUAL(st.errors, 0); /* no Invalid Queue Identifier, nothing refused */
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	CU_ASSERT_EQUAL(qp->qstate, UPCIE_NVME_Q_LIVE);
	CU_ASSERT_EQUAL(qp->gen, f.ctrl->gen);
	for (unsigned i = 0; i < NREADS; i++)
		upcie_dma_free(f.heap, r[i].buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Admin commands the sim ran during one requested reset of f. */
static uint64_t reset_admin_cmds(struct fx *f)
{
	struct upcie_sim_stats st;

	upcie_sim_stats_reset(f->sim);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f->ctrl), 0);
	upcie_sim_stats(f->sim, &st);
	return st.admin_cmds;
}

/* A requested reset of a working controller deletes the live I/O SQs
 * before CC.EN = 0 (some controllers mishandle a disable with I/O in
 * flight): one Delete I/O SQ per live queue; the device ends the held
 * commands itself (ABORT_SQ_DELETED), and they reach their callbacks as
 * HOST_ABORTED, as the reset promises; retried, they complete. */
static void test_reset_quiesces_io(void)
{
	struct fx f;
	struct rd r[2];
	struct upcie_nvme_qpair *qp[2];
	unsigned poll_errors = 0;
	uint64_t with_io, without_io;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	for (unsigned i = 0; i < 2; i++) {
		qp[i] = upcie_nvme_qpair_create(f.ctrl, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(qp[i]);
	}
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, 2, 0);
	for (unsigned i = 0; i < 2; i++) {
		rd_init(&r[i], &f, qp[i]);
		r[i].retry = true;
		CU_ASSERT_EQUAL(rd_submit(&r[i]), 0);
	}
	fx_step(&f); /* fetched and held */
	with_io = reset_admin_cmds(&f);
	CU_ASSERT_EQUAL(upcie_sim_release_held(f.sim), 0); /* the deletes ended them */
	for (unsigned i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(drain(&f, qp[i], &r[i], 1, &poll_errors), 1);
		CU_ASSERT_EQUAL(r[i].aborted, 1);
		CU_ASSERT_EQUAL(r[i].done, 2); /* HOST_ABORTED, then the retry's success */
	}
	CU_ASSERT_EQUAL(poll_errors, 0);
	/* The same reset with no I/O queue: two admin commands fewer. */
	for (unsigned i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp[i]), 0);
		upcie_dma_free(f.heap, r[i].buf);
	}
	without_io = reset_admin_cmds(&f);
	CU_ASSERT_EQUAL(with_io, without_io + 2);
	fx_close(&f);
}

/* The quiesce is best effort and bounded: a Delete I/O SQ the controller
 * never answers leaves the commands to the disable, and the reset still
 * completes (no failed controller, no lost command). */
static void test_reset_quiesce_lost(void)
{
	struct fx f;
	struct rd r;
	unsigned poll_errors = 0;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, 1, 0);
	rd_init(&r, &f, qp);
	r.retry = true;
	CU_ASSERT_EQUAL(rd_submit(&r), 0);
	fx_step(&f);
	CU_ASSERT_EQUAL(
	    upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_ADMIN_OPC, UPCIE_NVME_ADM_DELETE_SQ, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT_EQUAL(f.ctrl->state, UPCIE_NVME_LIVE);
	CU_ASSERT_EQUAL(drain(&f, qp, &r, 1, &poll_errors), 1);
	CU_ASSERT_EQUAL(r.aborted, 1);
	CU_ASSERT_EQUAL(poll_errors, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	upcie_dma_free(f.heap, r.buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Defect 3: commands a callback resubmits during recovery survive into
 * the re-created queue and complete. */
static void test_resubmit_during_recovery(void)
{
	struct fx f;
	struct rd r[2];
	unsigned poll_errors = 0;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, 2, 0);
	for (unsigned i = 0; i < 2; i++) {
		rd_init(&r[i], &f, qp);
		r[i].retry = true;
		CU_ASSERT_EQUAL(rd_submit(&r[i]), 0);
	}
	fx_step(&f);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT_EQUAL(drain(&f, qp, r, 2, &poll_errors), 2);
	for (unsigned i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(r[i].aborted, 1);
		CU_ASSERT_EQUAL(r[i].ok, 1);
		CU_ASSERT_EQUAL(r[i].done, 2); /* exactly once each */
		CU_ASSERT_EQUAL(r[i].resubmit_rc, 0);
		upcie_dma_free(f.heap, r[i].buf);
	}
	CU_ASSERT_EQUAL(poll_errors, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Defect 2: a reset whose Doorbell Buffer Config fails keeps the shadow
 * pages (queues not yet re-created still point into them): the heap must
 * not hand them out while a doorbell store can land there. */
static void test_dbbuf_fails_in_reset(void)
{
	struct fx f;
	struct upcie_nvme_ctrl_info info;
	struct rd r;
	uint8_t *pages[6];
	unsigned poll_errors = 0;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_TRUE_FATAL(info.dbbuf);
	/* A requested reset: Delete I/O SQ of the live qpair (the quiesce),
	 * then the bring-up: Identify, Set Features (queues), Doorbell Buffer
	 * Config: the fourth command from now fails. */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 4, UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_FALSE(info.dbbuf);
	for (unsigned i = 0; i < 6; i++) {
		pages[i] = upcie_dma_alloc(f.heap, 4096, 4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pages[i]);
		memset(pages[i], 0x5a, 4096);
	}
	/* Submit and ring before the queue's owner polled: the doorbell store
	 * goes where the queue still points. */
	rd_init(&r, &f, qp);
	r.retry = true;
	CU_ASSERT_EQUAL(rd_submit(&r), 0);
	CU_ASSERT_EQUAL(drain(&f, qp, &r, 1, &poll_errors), 1);
	for (unsigned i = 0; i < 6; i++) {
		bool intact = true;

		for (unsigned b = 0; b < 4096; b++)
			intact = intact && pages[i][b] == 0x5a;
		CU_ASSERT_TRUE(intact);
		upcie_dma_free(f.heap, pages[i]);
	}
	upcie_dma_free(f.heap, r.buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Defect 4: a qpair whose deletion was refused is ended by the next reset
 * (its commands with HOST_ABORTED) and its qid is free again. */
static void test_zombie_ended_by_reset(void)
{
	struct fx f;
	struct upcie_nvme_ctrl_opts co = {.io_queues = 2};

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	for (unsigned cycle = 0; cycle < 5; cycle++) {
		struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
		struct rd r;

		CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
		rd_init(&r, &f, qp);
		upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, 1, 0);
		CU_ASSERT_EQUAL(rd_submit(&r), 0);
		fx_step(&f);
		upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DELETE_SQ_REFUSED, 0, 0);
		CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), -EBUSY);
		upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
		CU_ASSERT_EQUAL(r.done, 0); /* the device may still run it */
		CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
		CU_ASSERT_EQUAL(r.done, 1);
		CU_ASSERT_EQUAL(r.aborted, 1);
		CU_ASSERT_PTR_NULL(f.ctrl->zombies);
		upcie_dma_free(f.heap, r.buf);
	}
	struct upcie_nvme_qpair *a = upcie_nvme_qpair_create(f.ctrl, NULL);
	struct upcie_nvme_qpair *b = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(b);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(a), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(b), 0);
	fx_close(&f);
}

/* A re-creation after a reset whose Create I/O SQ is refused and whose
 * clean-up Delete I/O CQ fails too leaves the CQ on the device: every later
 * Create I/O CQ for that id would fail (Invalid Queue Identifier) and the
 * queue would never come back. A reset must follow, and the queue return. */
static void test_recreate_cq_left_behind(void)
{
	struct upcie_nvme_ctrl_info before, after;
	struct upcie_nvme_qpair *qp;
	struct fx f;
	struct rd r;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	rd_init(&r, &f, qp);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	upcie_nvme_ctrl_info(f.ctrl, &before);
	/* The recovery's commands: Create I/O CQ, Create I/O SQ (refused),
	 * Delete I/O CQ (fails: the 2nd counted, the refused one is not). */
	CU_ASSERT_EQUAL(upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_ADMIN_OPC, UPCIE_NVME_ADM_CREATE_SQ,
					UPCIE_NVME_SC_INVALID_FIELD),
			0);
	CU_ASSERT_EQUAL(
	    upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 2, UPCIE_NVME_SC_INTERNAL), 0);
	for (int i = 0; i < 5; i++)
		(void)upcie_nvme_poll(qp, 0);
	upcie_nvme_ctrl_info(f.ctrl, &after);
	CU_ASSERT(after.resets > before.resets); /* the CQ left behind asked for one */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	/* The queue is back: a read completes. */
	CU_ASSERT_EQUAL(rd_submit(&r), 0);
	{
		unsigned errors = 0;

		CU_ASSERT_EQUAL(drain(&f, qp, &r, 1, &errors), 1);
	}
	CU_ASSERT_EQUAL(r.ok, 1);
	upcie_dma_free(f.heap, r.buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

static bool bus_master(struct fx *f)
{
	uint16_t cmd = 0;

	CU_ASSERT_EQUAL(upcie_pci_cfg_read(f->dev, 4, &cmd, sizeof(cmd)), 0);
	return cmd & 4;
}

/* Defect 5: a reset that succeeds after a fence turned bus mastering off
 * turns it on again (once CSTS.RDY = 0), and I/O flows. */
static void test_bus_master_after_fence(void)
{
	struct fx f;
	uint8_t *buf;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	buf = upcie_dma_alloc(f.heap, ns->lba_size, 4096);
	CU_ASSERT_TRUE(bus_master(&f));
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_RDY_NEVER, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), -ENOTRECOVERABLE);
	CU_ASSERT_FALSE(bus_master(&f)); /* fenced */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT_TRUE(bus_master(&f));
	CU_ASSERT_TRUE(upcie_sim_bus_master(f.sim));
	/* The first call recovers the queue (and may report that it did). */
	int rc = upcie_nvme_read_sync(qp, ns, 0, 1, buf, NULL, 2000);
	if (rc)
		rc = upcie_nvme_read_sync(qp, ns, 0, 1, buf, NULL, 2000);
	CU_ASSERT_EQUAL(rc, 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Defect 6: the timeout path follows the command. X times out, Abort
 * ends it, its callback resubmits into the same slot: the wait ends with
 * X, no reset, the embedder's policy asked once. */
struct t6 {
	struct rd r;
	unsigned tcb_calls;
};

static enum upcie_nvme_timeout_action t6_tcb(void *arg, struct upcie_nvme_qpair *qp, uint16_t cid)
{
	struct t6 *t = arg;

	(void)qp;
	(void)cid;
	t->tcb_calls++;
	return UPCIE_NVME_TIMEOUT_ABORT;
}

static void t6_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct t6 *t = arg;

	t->r.done++;
	if (t->r.done == 1) /* X ended (aborted): put Y into its slot, held too */
		t->r.resubmit_rc = upcie_nvme_read(t->r.qp, t->r.ns, 0, 1, t->r.buf, t6_cb, t,
						   UPCIE_NVME_SUBMIT_RING);
	else if (!upcie_nvme_cqe_status(cqe))
		t->r.ok++;
}

static void test_timeout_follows_command(void)
{
	struct fx f;
	struct t6 t;
	struct upcie_nvme_ctrl_info info;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	struct upcie_nvme_qpair_opts o = {.depth = 4, .timeout_ms = 30, .timeout_cb = t6_tcb};
	o.timeout_arg = &t;
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	rd_init(&t.r, &f, qp);
	t.tcb_calls = 0;
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, 2, 0);
	CU_ASSERT_EQUAL(
	    upcie_nvme_read(qp, t.r.ns, 0, 1, t.r.buf, t6_cb, &t, UPCIE_NVME_SUBMIT_RING), 0);
	double deadline = fx_now() + 3.0;
	while (t.r.done < 1 && fx_now() < deadline) {
		fx_step(&f);
		upcie_nvme_poll(qp, 0);
	}
	CU_ASSERT_EQUAL(t.r.done, 1);
	CU_ASSERT_EQUAL(t.r.resubmit_rc, 0);
	CU_ASSERT_EQUAL(t.tcb_calls, 1);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 0); /* the Abort ended X: nothing to reset */
	/* Y: let it run; its own timeout may abort it first: either way it ends. */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	upcie_sim_release_held(f.sim);
	deadline = fx_now() + 5.0;
	while (t.r.done < 2 && fx_now() < deadline) {
		fx_step(&f);
		upcie_nvme_poll(qp, 0);
	}
	CU_ASSERT_EQUAL(t.r.done, 2);
	upcie_dma_free(f.heap, t.r.buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Defect 7: the event callback runs after the namespace list was read
 * again (as nvme.h says). */
struct t7 {
	struct upcie_nvme_ctrl *ctrl;
	unsigned calls;
	bool ns2_listed;
};

static void t7_event(void *arg, const struct upcie_nvme_event *ev)
{
	struct t7 *t = arg;

	(void)ev;
	t->calls++;
	t->ns2_listed = upcie_nvme_ns_get(t->ctrl, 2) != NULL;
}

static void test_event_after_rescan(void)
{
	struct fx f;
	struct t7 t = {0};

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	t.ctrl = f.ctrl;
	CU_ASSERT_PTR_NOT_NULL(upcie_nvme_ns_get(f.ctrl, 2));
	upcie_nvme_ctrl_set_event_cb(f.ctrl, t7_event, &t);
	CU_ASSERT_EQUAL(upcie_sim_set_active_ns(f.sim, 1), 0);
	double deadline = fx_now() + 3.0;
	while (!t.calls && fx_now() < deadline) {
		fx_step(&f);
		upcie_nvme_admin_poll(f.ctrl);
	}
	CU_ASSERT_EQUAL(t.calls, 1);
	CU_ASSERT_FALSE(t.ns2_listed);
	fx_close(&f);
}

/* Defect 8: destroy and close from a completion callback are refused
 * (-EBUSY, saying so); after the poll returned they work. */
struct t8 {
	struct fx *f;
	struct upcie_nvme_qpair *qp;
	int destroy_rc, close_rc;
	unsigned calls;
};

static void t8_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct t8 *t = arg;

	(void)cqe;
	t->calls++;
	t->destroy_rc = upcie_nvme_qpair_destroy(t->qp);
	t->close_rc = upcie_nvme_ctrl_close(t->f->ctrl);
}

static void test_destroy_from_callback(void)
{
	struct fx f;
	struct t8 t = {0};
	uint8_t *buf;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	t.f = &f;
	t.qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t.qp);
	buf = upcie_dma_alloc(f.heap, ns->lba_size, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_read(t.qp, ns, 0, 1, buf, t8_cb, &t, UPCIE_NVME_SUBMIT_RING), 0);
	double deadline = fx_now() + 3.0;
	while (!t.calls && fx_now() < deadline) {
		fx_step(&f);
		upcie_nvme_poll(t.qp, 0);
	}
	CU_ASSERT_EQUAL(t.calls, 1);
	CU_ASSERT_EQUAL(t.destroy_rc, -EBUSY);
	CU_ASSERT_EQUAL(t.close_rc, -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "callback"));
	/* Still usable, and destroyed normally afterwards. */
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(t.qp, ns, 0, 1, buf, NULL, 2000), 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(t.qp), 0);
	fx_close(&f);
}

/* Defect 9: completions are checked: a duplicate of an earlier completion
 * (same CID, now reused by a newer command) and one naming another SQ id
 * are dropped and counted, never matched. */
static void test_completions_checked(void)
{
	struct fx f;
	struct upcie_nvme_qpair_stats qs;
	struct rd r;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	struct upcie_nvme_qpair_opts o = {.depth = 4};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	rd_init(&r, &f, qp);

	/* Duplicate: A completes (posted twice); B reuses A's slot, held. */
	CU_ASSERT_EQUAL(upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DUP_CQE, 1, 0), 0);
	CU_ASSERT_EQUAL(rd_submit(&r), 0);
	fx_step(&f);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_HOLD, 1, 0);
	while (r.done < 1)
		upcie_nvme_poll(qp, 1);	   /* one entry: A, the duplicate stays */
	CU_ASSERT_EQUAL(rd_submit(&r), 0); /* B */
	fx_step(&f);			   /* B fetched and held */
	upcie_nvme_poll(qp, 0);		   /* the duplicate of A */
	CU_ASSERT_EQUAL(r.done, 1);	   /* B did not "complete" */
	upcie_nvme_qpair_stats(qp, &qs);
	CU_ASSERT_EQUAL(qs.stray, 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 1);

	/* Foreign: B's completion names another SQ id. */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_FOREIGN_CQE, 1, 0);
	upcie_sim_release_held(f.sim);
	upcie_nvme_poll(qp, 0);
	CU_ASSERT_EQUAL(r.done, 1);
	upcie_nvme_qpair_stats(qp, &qs);
	CU_ASSERT_EQUAL(qs.stray, 2);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 1);
	/* B never completes for real: a reset ends it (HOST_ABORTED). */
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	upcie_nvme_poll(qp, 0);
	CU_ASSERT_EQUAL(r.done, 2);
	CU_ASSERT_EQUAL(r.aborted, 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	upcie_dma_free(f.heap, r.buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Identify data (and CAP) a buggy device might return: refused or
 * bounded with a clear error, never trusted. */
static void test_bad_identify(void)
{
	static const enum upcie_sim_bad_id bad[] = {
	    UPCIE_SIM_BAD_ID_MDTS0, UPCIE_SIM_BAD_ID_NN_HUGE, UPCIE_SIM_BAD_ID_FLBAS,
	    UPCIE_SIM_BAD_ID_NSZE0, UPCIE_SIM_BAD_ID_MQES0,
	};

	FX_SIM_ONLY();
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct upcie_nvme_ctrl_info info;
		struct upcie_nvme_qpair *qp;
		struct fx f;

		CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, true, NULL), 0);
		CU_ASSERT_EQUAL(upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_BAD_ID, bad[i], 0), 0);
		f.ctrl = upcie_nvme_ctrl_open(f.dev, f.heap, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(f.ctrl);
		upcie_nvme_ctrl_info(f.ctrl, &info);
		CU_ASSERT(info.max_xfer_bytes <= (8u << 20));
		CU_ASSERT(info.nr_ns <= 2);
		qp = upcie_nvme_qpair_create(f.ctrl, NULL);
		switch (bad[i]) {
		case UPCIE_SIM_BAD_ID_MDTS0:
			CU_ASSERT_EQUAL(info.max_xfer_bytes, 1u << 20);
			break;
		case UPCIE_SIM_BAD_ID_FLBAS:
		case UPCIE_SIM_BAD_ID_NSZE0:
			/* Namespace 1 is skipped, 2 is used. */
			CU_ASSERT_PTR_NULL(upcie_nvme_ns_get(f.ctrl, 1));
			CU_ASSERT_PTR_NOT_NULL(upcie_nvme_ns_get(f.ctrl, 2));
			break;
		case UPCIE_SIM_BAD_ID_MQES0:
			CU_ASSERT_PTR_NULL(qp);
			CU_ASSERT_EQUAL(errno, ENOTSUP);
			CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "MQES"));
			break;
		default:
			break;
		}
		if (bad[i] != UPCIE_SIM_BAD_ID_MQES0) {
			CU_ASSERT_PTR_NOT_NULL(qp);
		}
		if (qp)
			CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
		fx_close(&f);
	}
}

/* An asynchronous admin command whose completion is lost times out like
 * a synchronous one: the controller is reset and its callback gets
 * HOST_ABORTED (it waited forever). */
static void test_async_admin_lost(void)
{
	struct upcie_nvme_ctrl_opts co = {.admin_timeout_ms = 200};
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_GET_FEATURES,
				     .cdw10 = UPCIE_NVME_FEAT_NUM_QUEUES};
	struct upcie_nvme_ctrl_info info;
	struct fx_counter cnt = {0};
	struct fx f;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_admin_submit(f.ctrl, &sqe, NULL, 0, fx_count_cb, &cnt), 0);
	double deadline = fx_now() + 5.0;
	while (!cnt.done && fx_now() < deadline) {
		fx_step(&f);
		upcie_nvme_admin_poll(f.ctrl);
	}
	CU_ASSERT_EQUAL(cnt.done, 1);
	CU_ASSERT_EQUAL(cnt.last_status, UPCIE_NVME_SC_HOST_ABORTED);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 1);
	/* The event requests stay armed and are not taken for lost ones. */
	cnt.done = 0;
	deadline = fx_now() + 0.5;
	while (fx_now() < deadline) {
		fx_step(&f);
		upcie_nvme_admin_poll(f.ctrl);
	}
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 1);
	fx_close(&f);
}

/* The transition tables are what docs/design.md shows. */
static void test_tables(void)
{
	CU_ASSERT_TRUE(upcie_nvme_state_allowed(UPCIE_NVME_LIVE, UPCIE_NVME_RESETTING));
	CU_ASSERT_TRUE(upcie_nvme_state_allowed(UPCIE_NVME_RESETTING, UPCIE_NVME_LIVE));
	CU_ASSERT_TRUE(upcie_nvme_state_allowed(UPCIE_NVME_DEAD, UPCIE_NVME_RESETTING));
	CU_ASSERT_FALSE(upcie_nvme_state_allowed(UPCIE_NVME_FAILED, UPCIE_NVME_LIVE));
	CU_ASSERT_FALSE(upcie_nvme_state_allowed(UPCIE_NVME_DEAD, UPCIE_NVME_LIVE));
	for (int to = 0; to < UPCIE_NVME_NR_STATES; to++)
		CU_ASSERT_FALSE(upcie_nvme_state_allowed(UPCIE_NVME_GONE, to));
	for (int to = 0; to < UPCIE_NVME_NR_QSTATES; to++)
		CU_ASSERT_FALSE(upcie_nvme_qstate_allowed(UPCIE_NVME_Q_ZOMBIE, to));
	CU_ASSERT_FALSE(upcie_nvme_qstate_allowed(UPCIE_NVME_Q_LIVE, UPCIE_NVME_Q_LIVE));
	CU_ASSERT_TRUE(upcie_nvme_qstate_allowed(UPCIE_NVME_Q_OFF, UPCIE_NVME_Q_LIVE));
}

static CU_TestInfo tests[] = {
    {"state tables", test_tables},
    {"1: reset from a callback the recovery runs", test_reset_from_recovery_callback},
    {"2: Doorbell Buffer Config fails in a reset", test_dbbuf_fails_in_reset},
    {"a requested reset deletes the I/O SQs first", test_reset_quiesces_io},
    {"a Delete I/O SQ lost in the quiesce: the reset completes", test_reset_quiesce_lost},
    {"3: resubmits during recovery survive", test_resubmit_during_recovery},
    {"4: a zombie is ended by the next reset", test_zombie_ended_by_reset},
    {"a CQ left behind by a failed re-creation: a reset follows", test_recreate_cq_left_behind},
    {"5: bus mastering on again after a fence", test_bus_master_after_fence},
    {"6: the timeout path follows the command", test_timeout_follows_command},
    {"7: the event callback after the rescan", test_event_after_rescan},
    {"8: destroy and close from a callback", test_destroy_from_callback},
    {"9: stale, duplicate and foreign completions", test_completions_checked},
    {"buggy Identify data refused or bounded", test_bad_identify},
    {"a lost asynchronous admin command times out", test_async_admin_lost},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("lifecycle", NULL, NULL, tests)
