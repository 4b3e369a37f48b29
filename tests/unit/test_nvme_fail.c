/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Failure handling on the sim, fault by fault and phase by phase: what the
 * caller sees when the device fails right now.
 *
 * Every test checks the buffer-lifetime rule the same way: an I/O command
 * is held inside the model (fault HOLD: fetched, not run) and its buffer
 * filled with a pattern; once the library reports the command finished,
 * the model is told to run whatever it still holds (a late device). If the
 * library reported too early, that late read overwrites the buffer, and
 * the callback itself checks it did not run while the controller was
 * enabled and ready.
 */
#include "fixture.h"
#include "nvme/queue.h"	  /* white box: a sync wait's abandoned mark */
#include "sim/sim_priv.h" /* white box: a completion for no command */
#include <upcie/engine.h>

#define PATTERN 0xa5

struct probe {
	struct fx *f;
	volatile unsigned done;
	uint16_t status;
	int dnr;
	bool ran_while_live; /* the callback ran with CC.EN = 1 and CSTS.RDY = 1 */
	bool check_live;     /* that is wrong for this command */
	bool after_reset;    /* it must run only after a controller reset */
	bool ran_before_reset;
};

static uint32_t reg(struct fx *f, uint32_t off)
{
	void *regs;

	if (upcie_pci_bar_map(f->dev, 0, &regs, NULL))
		return 0;
	return upcie_mmio_read32(regs, off);
}

static void probe_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct probe *p = arg;
	uint32_t cc = reg(p->f, UPCIE_NVME_REG_CC), csts = reg(p->f, UPCIE_NVME_REG_CSTS);

	p->status = upcie_nvme_cqe_status(cqe);
	p->dnr = upcie_nvme_cqe_dnr(cqe);
	if (p->check_live && cc != UINT32_MAX && (cc & UPCIE_NVME_CC_EN) &&
	    (csts & UPCIE_NVME_CSTS_RDY))
		p->ran_while_live = true;
	if (p->after_reset && p->f->ctrl) {
		struct upcie_nvme_ctrl_info info;

		upcie_nvme_ctrl_info(p->f->ctrl, &info);
		p->ran_before_reset = info.resets == 0;
	}
	p->done++;
}

static void fail_cfg(struct upcie_sim_config *cfg)
{
	upcie_sim_config_default(cfg);
	cfg->to = 1; /* 500 ms */
}

static int open_ctrl(struct fx *f, bool auto_reset)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_ctrl_opts o = {
	    .admin_timeout_ms = 200, .no_auto_reset = !auto_reset, .health_ms = 20};

	fail_cfg(&cfg);
	return fx_open_opts(f, &cfg, 0, false, &o);
}

/* A read of one 4 KiB block into a pattern-filled buffer, held in the model. */
static uint8_t *held_read(struct fx *f, struct upcie_nvme_qpair *qp, struct probe *p)
{
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(f, 4096);
	uint8_t *buf = upcie_dma_alloc(f->heap, 4096, 4096);

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memset(buf, PATTERN, 4096);
	/* The namespace holds something else, so a late read would show. */
	memset(upcie_sim_ns_data(f->sim, ns->nsid, NULL), 0x11, 4096);
	upcie_sim_fault(f->sim, UPCIE_SIM_FAULT_HOLD, 1, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 1, buf, probe_cb, p, UPCIE_NVME_SUBMIT_RING), 0);
	fx_step(f);
	return buf;
}

/* A controller, one qpair (opts may be NULL) and one held read on it. */
static struct upcie_nvme_qpair *start(struct fx *f, bool auto_reset,
				      const struct upcie_nvme_qpair_opts *o, struct probe *p,
				      uint8_t **buf)
{
	struct upcie_nvme_qpair *qp;

	CU_ASSERT_FATAL(open_ctrl(f, auto_reset) == 0);
	qp = upcie_nvme_qpair_create(f->ctrl, o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	*buf = held_read(f, qp, p);
	return qp;
}

/* Close, and the held command ends then, with the controller disabled. */
static void close_ends_it(struct fx *f, struct probe *p)
{
	CU_ASSERT_EQUAL(p->done, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f->ctrl), 0);
	f->ctrl = NULL;
	CU_ASSERT_EQUAL(p->done, 1);
	CU_ASSERT_EQUAL(p->status, UPCIE_NVME_SC_HOST_ABORTED);
	CU_ASSERT(!p->ran_while_live);
}

/* After the command was reported finished, a late device must not touch it. */
static void assert_untouched(struct fx *f, uint8_t *buf)
{
	upcie_sim_release_held(f->sim);
	for (unsigned i = 0; i < 4096; i++)
		if (buf[i] != PATTERN) {
			CU_FAIL(
			    "the device wrote a buffer after its command was reported finished");
			break;
		}
	upcie_dma_free(f->heap, buf);
}

/* Poll (stepping the model) until p->done or an error; bounded. */
static int poll_until(struct fx *f, struct upcie_nvme_qpair *qp, struct probe *p)
{
	double deadline = fx_now() + 10.0;
	int rc = 0;

	while (!p->done && fx_now() < deadline) {
		fx_step(f);
		rc = upcie_nvme_poll(qp, 0);
		if (rc < 0)
			return rc;
	}
	return p->done ? 0 : -ETIMEDOUT;
}

/* Full depth of verified writes and reads on qp: the queue is whole. */
static void assert_full_depth_io(struct fx *f, struct upcie_nvme_qpair *qp)
{
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(f, 4096);
	uint32_t n = upcie_nvme_qpair_depth(qp) - 1;
	uint8_t *buf = upcie_dma_alloc(f->heap, (size_t)n * 4096, 4096);
	struct fx_counter cnt = {0};
	uint16_t st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (uint32_t i = 0; i < n; i++) {
		memset(buf + (size_t)i * 4096, (int)(i + 1), 4096);
		CU_ASSERT_EQUAL(upcie_nvme_write(qp, ns, 100 + i, 1, buf + (size_t)i * 4096,
						 fx_count_cb, &cnt, 0),
				0);
	}
	upcie_nvme_ring(qp);
	CU_ASSERT_EQUAL(fx_wait(f, qp, &cnt.done, n), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	memset(buf, 0, (size_t)n * 4096);
	for (uint32_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 100 + i, 1, buf, &st, 0), 0);
		CU_ASSERT_EQUAL(buf[0], (uint8_t)(i + 1));
		CU_ASSERT_EQUAL(buf[4095], (uint8_t)(i + 1));
	}
	upcie_dma_free(f->heap, buf);
}

/*
 * The issue's own case: an admin completion is lost, a read is in flight,
 * close. The read must end only after the controller was disabled, and the
 * device must not write its buffer afterwards.
 */
static void test_close_after_lost_admin(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f, .check_live = true};
	uint32_t res;

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, false, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, NULL),
			-ETIMEDOUT);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, NULL),
			-ENOTRECOVERABLE);
	CU_ASSERT(strstr(upcie_errmsg(), "needs a reset") != NULL);
	/* The queue cannot be deleted on a failed controller: nothing ends yet. */
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), -EBUSY);
	close_ends_it(&f, &p);
	assert_untouched(&f, buf);
	fx_close(&f);
}

/* A lost I/O completion: timeout, Abort ends it, the CID comes back. */
static void test_timeout_abort(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};
	struct upcie_nvme_qpair_stats qs;
	struct upcie_sim_stats ss;

	struct upcie_nvme_qpair_opts o = {.depth = 8, .timeout_ms = 50};
	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, &o, &p, &buf);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), 0);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_ABORT_REQ);
	upcie_nvme_qpair_stats(qp, &qs);
	upcie_sim_stats(f.sim, &ss);
	CU_ASSERT_EQUAL(qs.timeouts, 1);
	CU_ASSERT_EQUAL(qs.aborts, 1);
	CU_ASSERT_EQUAL(ss.aborts, 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	assert_untouched(&f, buf);
	assert_full_depth_io(&f, qp);
	fx_close(&f);
}

/* The Abort itself is lost: the controller is reset, the command ends
 * with HOST_ABORTED once the controller is disabled, the queue comes back. */
static void test_timeout_abort_lost(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f, .after_reset = true};
	struct upcie_nvme_ctrl_info info;

	struct upcie_nvme_qpair_opts o = {.depth = 8, .timeout_ms = 50};
	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, &o, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_ABORT_LOST, 0, 0);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), 0);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_ABORTED);
	CU_ASSERT_EQUAL(p.dnr, 0);
	CU_ASSERT(!p.ran_before_reset);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 1);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	assert_untouched(&f, buf);
	assert_full_depth_io(&f, qp);
	fx_close(&f);
}

static unsigned policy_calls;
static enum upcie_nvme_timeout_action wait_then_reset(void *arg, struct upcie_nvme_qpair *qp,
						      uint16_t cid)
{
	(void)arg;
	(void)qp;
	(void)cid;
	return policy_calls++ ? UPCIE_NVME_TIMEOUT_RESET : UPCIE_NVME_TIMEOUT_WAIT;
}

/* The embedder's policy decides: wait once, then reset (no Abort sent). */
static void test_timeout_policy(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f, .after_reset = true};
	struct upcie_nvme_qpair_stats qs;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	policy_calls = 0;
	struct upcie_nvme_qpair_opts o = {
	    .depth = 8, .timeout_ms = 30, .timeout_cb = wait_then_reset};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	uint8_t *buf = held_read(&f, qp, &p);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), 0);
	CU_ASSERT_EQUAL(policy_calls, 2);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_ABORTED);
	CU_ASSERT(!p.ran_before_reset);
	upcie_nvme_qpair_stats(qp, &qs);
	CU_ASSERT_EQUAL(qs.aborts, 0);
	CU_ASSERT_EQUAL(qs.timeouts, 2);
	assert_untouched(&f, buf);
	fx_close(&f);
}

/* CFS with four busy qpairs: one reset; every command ends exactly once;
 * the same handles do verified I/O; a command queued but not rung before
 * the reset survives it and completes normally. */
static void test_reset_keeps_qpairs(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p[4];
	struct upcie_nvme_qpair *qp[4];
	uint8_t *buf[4];
	struct fx_counter unrung = {0};
	struct upcie_nvme_ctrl_info info;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(&f, 4096);
	for (int i = 0; i < 4; i++) {
		struct upcie_nvme_qpair_opts o = {.depth = 16};

		p[i] = (struct probe){.f = &f, .after_reset = true};
		qp[i] = upcie_nvme_qpair_create(f.ctrl, &o);
		CU_ASSERT_PTR_NOT_NULL_FATAL(qp[i]);
		buf[i] = held_read(&f, qp[i], &p[i]);
	}
	uint8_t *extra = upcie_dma_alloc(f.heap, 4096, 4096);
	memset(extra, 0x77, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_write(qp[2], ns, 500, 1, extra, fx_count_cb, &unrung, 0), 0);

	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_CFS, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_check(f.ctrl), 0); /* auto reset */
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 1);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(poll_until(&f, qp[i], &p[i]), 0);
		CU_ASSERT_EQUAL(p[i].done, 1);
		CU_ASSERT_EQUAL(p[i].status, UPCIE_NVME_SC_HOST_ABORTED);
		CU_ASSERT(!p[i].ran_before_reset);
	}
	CU_ASSERT_EQUAL(fx_wait(&f, qp[2], &unrung.done, 1), 0);
	CU_ASSERT_EQUAL(unrung.errors, 0);
	uint8_t *ns_data = upcie_sim_ns_data(f.sim, ns->nsid, NULL);
	CU_ASSERT_EQUAL(ns_data[500 * 4096], 0x77);
	for (int i = 0; i < 4; i++) {
		assert_untouched(&f, buf[i]);
		assert_full_depth_io(&f, qp[i]);
		CU_ASSERT_EQUAL(p[i].done, 1); /* exactly once */
	}
	upcie_dma_free(f.heap, extra);
	fx_close(&f);
}

/* Surprise removal while commands are outstanding: a thread that only
 * polls sees -ENODEV, and the commands end with HOST_PATH_ERROR. */
static void test_removed_while_polling(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};
	uint16_t st;

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), -ENODEV);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_PATH_ERROR);
	CU_ASSERT_EQUAL(p.dnr, 1);
	CU_ASSERT(strstr(upcie_errmsg(), "gone") != NULL);
	/* Every later call says so at once. */
	CU_ASSERT_EQUAL(upcie_nvme_poll(qp, 0), -ENODEV);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, fx_ns_with_lba(&f, 4096), 0, 1, buf, &st, 0),
			-ENODEV);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_check(f.ctrl), -ENODEV);
	upcie_dma_free(f.heap, buf);
	upcie_nvme_ctrl_close(f.ctrl); /* reports the loss; frees everything */
	f.ctrl = NULL;
	fx_close(&f);
}

/*
 * Faults during open: CSTS.CFS already set, the first admin completion
 * lost, the device gone. Open fails within its bounds (CAP.TO, the admin
 * timeout), says why, and gives back every byte of the heap; once the
 * fault clears, the same device and heap open.
 */
static void test_faults_during_open(void)
{
	FX_SIM_ONLY();
	static const struct {
		enum upcie_sim_fault fault;
		uint32_t arg;
		int err;
		const char *says;
	} cases[] = {
	    {UPCIE_SIM_FAULT_CFS, 0, ENOTRECOVERABLE, "Controller Fatal Status"},
	    {UPCIE_SIM_FAULT_DROP_CQE, 1, ETIMEDOUT, "got no completion"},
	    {UPCIE_SIM_FAULT_REMOVED, 0, ENODEV, "gone"},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct upcie_nvme_ctrl_opts o = {.admin_timeout_ms = 200, .health_ms = 20};
		struct upcie_sim_config cfg;
		struct upcie_dma_heap_info hi;
		struct fx f;

		fail_cfg(&cfg);
		CU_ASSERT_FATAL(fx_open_opts(&f, &cfg, 0, true, NULL) == 0);
		upcie_sim_fault(f.sim, cases[i].fault, cases[i].arg, 0);
		double t0 = fx_now();
		errno = 0;
		f.ctrl = upcie_nvme_ctrl_open(f.dev, f.heap, &o);
		double took = fx_now() - t0;
		CU_ASSERT_PTR_NULL(f.ctrl);
		CU_ASSERT_EQUAL(errno, cases[i].err);
		if (!strstr(upcie_errmsg(), cases[i].says) || errno != cases[i].err)
			printf("\n  fault %d: errno %d: %s", cases[i].fault, errno, upcie_errmsg());
		CU_ASSERT(strstr(upcie_errmsg(), cases[i].says) != NULL);
		/* A bound against waiting for ever (or for a default 30 s timeout),
		 * not a speed target: CAP.TO is 500 ms here, the admin timeout 200. */
		CU_ASSERT(took < 10.0);
		upcie_dma_heap_info(f.heap, &hi);
		CU_ASSERT_EQUAL(hi.used, 0);
		CU_ASSERT_EQUAL(hi.allocations, 0);
		upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
		f.ctrl = upcie_nvme_ctrl_open(f.dev, f.heap, &o);
		CU_ASSERT_PTR_NOT_NULL(f.ctrl);
		fx_close(&f);
	}
}

/* After the device vanished: give the buffer back, close (which finds the
 * device gone) and check that nothing is left. */
static void close_gone(struct fx *f, uint8_t *buf)
{
	upcie_dma_free(f->heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f->ctrl), -ENODEV);
	f->ctrl = NULL;
	fx_close(f);
}

/* The device vanishes, then the embedder resets: the reset says -ENODEV,
 * the held command ends as a path error, the qpair reports the loss,
 * destroy and close free everything. */
static void test_removed_then_reset(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, false, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), -ENODEV);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), -ENODEV);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_PATH_ERROR);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_check(f.ctrl), -ENODEV);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	close_gone(&f, buf);
}

/* The device vanishes, then the embedder destroys the qpair holding a
 * command (before any poll noticed): the deletion finds the device gone,
 * the command ends as a path error, the qpair is freed (0); close frees
 * the rest. */
static void test_removed_then_destroy(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_PATH_ERROR);
	close_gone(&f, buf);
}

/* Reap's cold cases. A command a sync wait gave up on (abandoned) ends
 * when the device completes it: its CID comes back, no callback, counted
 * once. A completion for a CID that is not outstanding is a stray: counted
 * as such, nothing else. */
static void test_abandoned_and_stray(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};
	struct upcie_nvme_qpair_stats s0, s1;

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, NULL, &p, &buf);
	uint16_t cid = upcie_nvme_qpair_last_cid(qp);
	CU_ASSERT_PTR_NOT_NULL(upcie_nvme_queue_req(qp, cid));
	upcie_nvme_queue_abandon(qp, cid); /* what a sync wait that gave up leaves */
	upcie_nvme_qpair_stats(qp, &s0);
	upcie_sim_release_held(f.sim);
	for (int i = 0; i < 100 && upcie_nvme_qpair_outstanding(qp); i++) {
		fx_step(&f);
		CU_ASSERT(upcie_nvme_poll(qp, 0) >= 0);
	}
	upcie_nvme_qpair_stats(qp, &s1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	CU_ASSERT_EQUAL(p.done, 0);
	CU_ASSERT_EQUAL(s1.completed - s0.completed, 1);
	CU_ASSERT_EQUAL(s1.stray, s0.stray);

	upcie_sim_post(f.sim, upcie_nvme_qpair_id(qp), cid, 0, 0);
	CU_ASSERT(upcie_nvme_poll(qp, 0) >= 0);
	upcie_nvme_qpair_stats(qp, &s0);
	CU_ASSERT_EQUAL(s0.stray, s1.stray + 1);
	CU_ASSERT_EQUAL(s0.completed, s1.completed);
	CU_ASSERT_EQUAL(p.done, 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* The Delete SQ of a destroy gets no completion: the admin timeout resets
 * the controller, which takes the queue off the device. The held read ends
 * once (the device aborted it with the SQ it deleted), the qpair is freed
 * (0, not a zombie kept until close) and the late device does not touch
 * the buffer. */
static void test_delete_lost_then_destroy(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};
	struct upcie_nvme_ctrl_info info;

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_ABORT_SQ_DELETED);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 1);
	assert_untouched(&f, buf);
	fx_close(&f);
}

/* CFS without auto reset: poll says so, nothing ends while the controller
 * may still DMA; the embedder's reset ends it. */
static void test_cfs_embedder_resets(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f, .after_reset = true};

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, false, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_CFS, 0, 0);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), -ENOTRECOVERABLE);
	CU_ASSERT_EQUAL(p.done, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_check(f.ctrl), -ENOTRECOVERABLE);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), 0);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_ABORTED);
	CU_ASSERT(!p.ran_before_reset);
	assert_untouched(&f, buf);
	assert_full_depth_io(&f, qp);
	fx_close(&f);
}

/* The device refuses Delete SQ: destroy says -EBUSY and ends nothing;
 * close ends the command once the controller is disabled. */
static void test_delete_sq_refused(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f, .check_live = true};

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DELETE_SQ_REFUSED, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), -EBUSY);
	CU_ASSERT(strstr(upcie_errmsg(), "Invalid Queue Deletion") != NULL);
	close_ends_it(&f, &p);
	assert_untouched(&f, buf);
	fx_close(&f);
}

/* A held command ends through the device when its SQ is deleted. */
static void test_destroy_with_held(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f};

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, true, NULL, &p, &buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_ABORT_SQ_DELETED);
	assert_untouched(&f, buf);
	fx_close(&f);
}

/* The reset itself fails (RDY never comes back): the controller is left
 * disabled (fenced), its commands end, every call says so. */
static void test_reset_fails(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct probe p = {.f = &f, .check_live = true};

	uint8_t *buf;
	struct upcie_nvme_qpair *qp = start(&f, false, NULL, &p, &buf);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_RDY_NEVER, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), -ENOTRECOVERABLE);
	CU_ASSERT(strstr(upcie_errmsg(), "reset failed") != NULL);
	CU_ASSERT_EQUAL(poll_until(&f, qp, &p), -ENOTRECOVERABLE);
	CU_ASSERT_EQUAL(p.done, 1);
	CU_ASSERT_EQUAL(p.status, UPCIE_NVME_SC_HOST_PATH_ERROR);
	CU_ASSERT(!p.ran_while_live);
	assert_untouched(&f, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	upcie_nvme_ctrl_close(f.ctrl);
	f.ctrl = NULL;
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	fx_close(&f);
}

/* An error status on an I/O command: DNR and the status reach the caller;
 * the synchronous call names it in upcie_errmsg(). */
static void test_io_error_status(void)
{
	FX_SIM_ONLY();
	struct fx f;
	uint16_t st = 0;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(&f, 4096);
	uint8_t *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 1, UPCIE_NVME_SC_UNRECOVERED_READ);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 0, 1, buf, &st, 0), -EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_UNRECOVERED_READ);
	CU_ASSERT(strstr(upcie_errmsg(), "Unrecovered Read Error") != NULL);
	CU_ASSERT(strstr(upcie_errmsg(), "do not retry") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 0, 1, buf, &st, 0), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* Shutdown never completes: close reports it within CAP.TO and still
 * disables the controller and frees everything. */
static void test_shutdown_never(void)
{
	FX_SIM_ONLY();
	struct fx f;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	CU_ASSERT_PTR_NOT_NULL(upcie_nvme_qpair_create(f.ctrl, NULL));
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_SHN_NEVER, 0, 0);
	double t0 = fx_now();
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f.ctrl), -ETIMEDOUT);
	CU_ASSERT(fx_now() - t0 < 5.0);
	f.ctrl = NULL;
	CU_ASSERT_EQUAL(reg(&f, UPCIE_NVME_REG_CC) & UPCIE_NVME_CC_EN, 0);
	fx_close(&f);
}

static unsigned events;
static uint8_t last_type;
static void event_cb(void *arg, const struct upcie_nvme_event *ev)
{
	(void)arg;
	events++;
	last_type = ev->type;
}

/* A namespace goes away: the event reaches the callback, the list changes. */
static void test_event_ns_change(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct upcie_nvme_ctrl_info info;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	uint8_t *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	const struct upcie_nvme_ns *old1 = upcie_nvme_ns_get(f.ctrl, 1);
	const struct upcie_nvme_ns *old2 = upcie_nvme_ns_get(f.ctrl, 2), *ns;
	struct upcie_sim_stats s0, s1;
	uint16_t st;
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old2);
	events = 0;
	upcie_nvme_ctrl_set_event_cb(f.ctrl, event_cb, NULL);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.nr_ns, 2);
	CU_ASSERT_EQUAL(upcie_sim_set_active_ns(f.sim, 1), 0);
	for (int i = 0; i < 100 && !events; i++) {
		fx_step(&f);
		CU_ASSERT(upcie_nvme_admin_poll(f.ctrl) >= 0);
	}
	CU_ASSERT_EQUAL(events, 1);
	CU_ASSERT_EQUAL(last_type, 2);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.nr_ns, 1);
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_ns_get(f.ctrl, 2));
	CU_ASSERT_EQUAL(errno, ENOENT);
	/* The handle of the namespace that went away is fenced: refused
	 * before anything reaches the device; the other one keeps working. */
	upcie_sim_stats(f.sim, &s0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, old2, 0, 1, buf, &st, 0), -ESTALE);
	CU_ASSERT(strstr(upcie_errmsg(), "stale") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, old2, 0, 1, buf, NULL, NULL, UPCIE_NVME_SUBMIT_RING),
			-ESTALE);
	CU_ASSERT_EQUAL(upcie_nvme_write(qp, old2, 0, 1, buf, NULL, NULL, UPCIE_NVME_SUBMIT_RING),
			-ESTALE);
	CU_ASSERT_EQUAL(upcie_nvme_write_zeroes(qp, old2, 0, 8, NULL, NULL, UPCIE_NVME_SUBMIT_RING),
			-ESTALE);
	struct upcie_nvme_split split;
	CU_ASSERT_EQUAL(
	    upcie_nvme_read_split(qp, old2, 0, 1, buf, &split, NULL, NULL, UPCIE_NVME_SUBMIT_RING),
	    -ESTALE);
	CU_ASSERT_EQUAL(old2->nsze, 0);
	upcie_sim_stats(f.sim, &s1);
	CU_ASSERT_EQUAL(s1.io_cmds, s0.io_cmds);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, old1, 0, 1, buf, &st, 0), 0);
	/* Iteration from a handle of the old table goes on in the new one. */
	CU_ASSERT_PTR_NULL(upcie_nvme_ns_next(f.ctrl, old1));
	/* Events stay armed: a second change arrives too. */
	CU_ASSERT_EQUAL(upcie_sim_set_active_ns(f.sim, 2), 0);
	for (int i = 0; i < 100 && events < 2; i++) {
		fx_step(&f);
		upcie_nvme_admin_poll(f.ctrl);
	}
	CU_ASSERT_EQUAL(events, 2);
	ns = upcie_nvme_ns_get(f.ctrl, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
	CU_ASSERT(ns != old2);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_next(f.ctrl, old1), ns);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 0, 1, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, old2, 0, 1, buf, &st, 0), -ESTALE);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, old1, 0, 1, buf, &st, 0), 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	/* The library owns event requests. */
	struct upcie_nvme_sqe aer = {.opc = UPCIE_NVME_ADM_ASYNC_EVENT};
	CU_ASSERT_EQUAL(upcie_nvme_admin(f.ctrl, &aer, NULL, 0, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "event") != NULL);
	fx_close(&f);
}

/* A namespace goes away while nobody reaps the admin queue, and the
 * controller is reset: the event is lost with the old admin queue, the
 * reset reads the namespaces again and fences the old handle. A reset
 * that finds nothing changed keeps the table (no memory per reset). */
static void test_reset_rescans_namespaces(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct upcie_nvme_ctrl_info info;
	uint16_t st;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	uint8_t *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	const struct upcie_nvme_ns *ns1 = upcie_nvme_ns_get(f.ctrl, 1);
	const struct upcie_nvme_ns *ns2 = upcie_nvme_ns_get(f.ctrl, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns2);

	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_get(f.ctrl, 1), ns1);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_get(f.ctrl, 2), ns2);

	/* The controller answers but fails to describe a listed namespace
	 * (Identify Namespace for nsid 2, the 6th admin command of the reset:
	 * Identify, Set Features, Doorbell Buffer Config, the active list,
	 * nsid 1, nsid 2): the reset succeeds and the handle stays good. */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 6, UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT(strstr(upcie_errmsg(), "0x6") != NULL);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_get(f.ctrl, 2), ns2);
	CU_ASSERT_NOT_EQUAL(ns2->nsze, 0);
	/* The active namespace list fails: the scan falls back to nsid 1..NN
	 * (as for a controller before NVMe 1.1) and finds the same table. */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 4, UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_get(f.ctrl, 2), ns2);
	CU_ASSERT_NOT_EQUAL(ns2->nsze, 0);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_NONE, 0, 0);

	CU_ASSERT_EQUAL(upcie_sim_set_active_ns(f.sim, 1), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.nr_ns, 1);
	CU_ASSERT_PTR_NULL(upcie_nvme_ns_get(f.ctrl, 2));
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns2, 0, 1, buf, &st, 0), -ESTALE);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_first(f.ctrl), upcie_nvme_ns_get(f.ctrl, 1));
	/* The owner's poll re-creates the queue after the reset (nvme.h). */
	CU_ASSERT(upcie_nvme_poll(qp, 0) >= 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns1, 0, 1, buf, &st, 0), 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* One controller object per device handle; NULL arguments are refused. */
static void test_second_open_and_null(void)
{
	FX_SIM_ONLY();
	struct fx f;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_open(f.dev, f.heap, NULL));
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(strstr(upcie_errmsg(), "already") != NULL);
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_qpair_create(NULL, NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	fx_close(&f);
}

/* The I/O path reads no register: 20000 I/Os with progress, no health check. */
static void test_no_mmio_read_per_io(void)
{
	FX_SIM_ONLY();
	struct fx f;
	struct fx_counter cnt = {0};
	struct upcie_nvme_ctrl_info info;

	CU_ASSERT_FATAL(open_ctrl(&f, true) == 0);
	struct upcie_nvme_qpair_opts o = {.depth = 32};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(&f, 4096);
	uint8_t *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	unsigned sent = 0;

	while (cnt.done < 20000) {
		while (sent < 20000 && sent - cnt.done < 31 &&
		       upcie_nvme_read(qp, ns, sent % 64, 1, buf, fx_count_cb, &cnt, 0) == 0)
			sent++;
		upcie_nvme_ring(qp);
		fx_step(&f);
		CU_ASSERT_FATAL(upcie_nvme_poll(qp, 0) >= 0);
	}
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.health_checks, 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static CU_TestInfo tests[] = {
    {"close after a lost admin completion", test_close_after_lost_admin},
    {"timeout: Abort ends the command", test_timeout_abort},
    {"timeout: Abort lost, reset", test_timeout_abort_lost},
    {"timeout: the embedder's policy", test_timeout_policy},
    {"reset keeps four busy qpairs", test_reset_keeps_qpairs},
    {"removal seen while only polling", test_removed_while_polling},
    {"CFS, the embedder resets", test_cfs_embedder_resets},
    {"faults during open: CFS, a lost admin completion, removal", test_faults_during_open},
    {"removed, then the embedder resets", test_removed_then_reset},
    {"removed, then the qpair is destroyed", test_removed_then_destroy},
    {"Delete SQ refused", test_delete_sq_refused},
    {"destroy with a held command", test_destroy_with_held},
    {"reset fails: fenced", test_reset_fails},
    {"I/O error status with DNR", test_io_error_status},
    {"shutdown never completes", test_shutdown_never},
    {"destroy: Delete SQ lost, reset, the qpair is freed", test_delete_lost_then_destroy},
    {"reap: an abandoned command, a stray completion", test_abandoned_and_stray},
    {"event: namespace attribute changed", test_event_ns_change},
    {"reset: namespaces read again, stale handles fenced", test_reset_rescans_namespaces},
    {"second open, NULL controller", test_second_open_and_null},
    {"no MMIO read per I/O", test_no_mmio_read_per_io},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("nvme_fail", NULL, NULL, tests)
