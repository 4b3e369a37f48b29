/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupt-driven queue pairs (lib/nvme/irq.c): sleeping until an
 * interrupt, no lost wake-up, hybrid spinning, the fd for an event loop,
 * coalescing, vectors, and the failure rules while a thread sleeps (a
 * reset, a removal, a lost interrupt). On the sim unless UPCIE_TEST_DEVICE
 * names a device (the guest harness runs the device-neutral tests through
 * uio, INTx, and vfio, MSI-X).
 */
#include <dirent.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "fixture.h"
#include "nvme/nvme.h" /* white box: the queue's vector */

/* Long enough that a sleep cut short by the health slice is not mistaken
 * for a wake-up: a lost wake-up then shows as a wait that returns 0. */
#define SLOW_HEALTH_MS 20000

static struct upcie_nvme_ctrl_opts slow_health(void)
{
	struct upcie_nvme_ctrl_opts o = {.health_ms = SLOW_HEALTH_MS};
	return o;
}

static struct upcie_nvme_qpair *irq_qpair(struct fx *f, uint32_t depth, uint32_t spin_us)
{
	struct upcie_nvme_qpair_opts qo = {.depth = depth, .irq = 1, .spin_us = spin_us};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f->ctrl, &qo);

	if (!qp)
		printf("\n  irq qpair: %s\n", upcie_errmsg());
	return qp;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Reads complete through wait() alone; each wait returns what it reaped.
 * Threaded: the model posts while the waiter arms and sleeps, so an arm
 * that looked at the CQ before acknowledging would lose wake-ups (a wait
 * returning 0 here). */
static void wait_reads(bool threaded)
{
	struct upcie_nvme_ctrl_opts co = slow_health();
	struct upcie_sim_config cfg;
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair_wait_stats ws;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	struct fx f;
	void *buf;

	upcie_sim_config_default(&cfg);
	cfg.threaded = threaded;
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, &cfg, 0, false, &co), 0);
	qp = irq_qpair(&f, 32, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	ns = upcie_nvme_ns_first(f.ctrl);
	buf = upcie_dma_alloc(f.heap, 16 * ns->lba_size, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (unsigned round = 0; round < (threaded ? 3000u : 200u); round++) {
		unsigned want = cnt.done + 1 + round % 16;

		for (unsigned i = cnt.done; i < want; i++)
			CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, i, 1,
							(char *)buf + (i % 16) * ns->lba_size,
							fx_count_cb, &cnt, 0),
					0);
		upcie_nvme_ring(qp);
		while (cnt.done < want) {
			int n = upcie_nvme_qpair_wait(qp, 5000);

			CU_ASSERT(n > 0); /* 0: a wake-up was lost */
			if (n <= 0)
				break;
		}
	}
	CU_ASSERT_EQUAL(cnt.errors, 0);
	upcie_nvme_qpair_wait_stats(qp, &ws);
	CU_ASSERT(ws.waits >= 200);
	if (getenv("IRQ_DEBUG"))
		printf("\n  waits %lu sleeps %lu wakeups %lu empty %lu\n", (unsigned long)ws.waits,
		       (unsigned long)ws.sleeps, (unsigned long)ws.wakeups,
		       (unsigned long)ws.empty);
	if (f.sim)
		CU_ASSERT(upcie_sim_irqs(f.sim, UINT32_MAX) > 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

static void test_wait_reads(void)
{
	wait_reads(false);
}

static void test_wait_reads_racing(void)
{
	if (!fx_is_sim())
		return; /* a device races by itself: the test above */
	wait_reads(true);
}

struct later {
	struct fx *f;
	unsigned delay_ms;
	enum { RELEASE, RESET, REMOVE, SPURIOUS } what;
	uint16_t vec;
	int rc;
	int fired; /* set (atomically) once 'what' was done */
};

static void *later_fn(void *arg)
{
	struct later *l = arg;

	usleep(l->delay_ms * 1000);
	switch (l->what) {
	case RELEASE:
		l->rc = upcie_sim_release_held(l->f->sim);
		break;
	case RESET:
		l->rc = upcie_nvme_ctrl_reset(l->f->ctrl);
		break;
	case REMOVE:
		l->rc = upcie_sim_fault(l->f->sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
		break;
	case SPURIOUS:
		l->rc = upcie_sim_fault(l->f->sim, UPCIE_SIM_FAULT_IRQ_SPURIOUS, l->vec, 0);
		break;
	}
	__atomic_store_n(&l->fired, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* One held read, something done from another thread after delay_ms while
 * this one sleeps in wait; returns the wait's result and its duration. */
static int held_wait(struct fx *f, struct upcie_nvme_qpair *qp, struct later *l,
		     struct fx_counter *cnt, double *secs)
{
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f->ctrl);
	void *buf = upcie_dma_alloc(f->heap, ns->lba_size, 4096);
	pthread_t t;
	double t0;
	int n;

	CU_ASSERT_EQUAL(upcie_sim_fault(f->sim, UPCIE_SIM_FAULT_HOLD, 1, 0), 0);
	CU_ASSERT_EQUAL(
	    upcie_nvme_read(qp, ns, 0, 1, buf, fx_count_cb, cnt, UPCIE_NVME_SUBMIT_RING), 0);
	upcie_sim_step(f->sim); /* fetched and held */
	t0 = fx_now();
	l->f = f;
	pthread_create(&t, NULL, later_fn, l);
	n = upcie_nvme_qpair_wait(qp, 10000);
	while (n == 0 && !cnt->done && fx_now() - t0 < 10)
		n = upcie_nvme_qpair_wait(qp, 10000);
	*secs = fx_now() - t0;
	pthread_join(t, NULL);
	if (cnt->done)
		upcie_dma_free(f->heap, buf);
	return n;
}

/* The completion comes while the waiter sleeps: the interrupt wakes it. */
static void test_sleep_wakes_on_interrupt(void)
{
	struct upcie_nvme_ctrl_opts co = slow_health();
	struct later l = {.delay_ms = 100, .what = RELEASE};
	struct upcie_nvme_qpair_wait_stats ws;
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	struct fx f;
	double secs;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(held_wait(&f, qp, &l, &cnt, &secs), 1);
	CU_ASSERT_EQUAL(cnt.done, 1);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT(secs >= 0.09 && secs < 5);
	upcie_nvme_qpair_wait_stats(qp, &ws);
	CU_ASSERT(ws.sleeps >= 1);
	CU_ASSERT(ws.wakeups >= 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* A reset from another thread wakes the sleeper: its command ends
 * HOST_ABORTED long before the health interval. */
static void test_reset_wakes_sleeper(void)
{
	struct upcie_nvme_ctrl_opts co = slow_health();
	struct later l = {.delay_ms = 100, .what = RESET};
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	struct fx f;
	double secs;
	int n;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	n = held_wait(&f, qp, &l, &cnt, &secs);
	CU_ASSERT_EQUAL(l.rc, 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(cnt.done, 1);
	CU_ASSERT_EQUAL(cnt.last_status, UPCIE_NVME_SC_HOST_ABORTED);
	CU_ASSERT(secs < 5);
	/* The queue came back with its interrupt: the next read wakes it too. */
	{
		struct later l2 = {.delay_ms = 50, .what = RELEASE};
		struct fx_counter c2 = {0};
		uint64_t before = upcie_sim_irqs(f.sim, UINT32_MAX);

		CU_ASSERT_EQUAL(held_wait(&f, qp, &l2, &c2, &secs), 1);
		CU_ASSERT_EQUAL(c2.done, 1);
		CU_ASSERT_EQUAL(c2.errors, 0);
		CU_ASSERT(secs < 5);
		CU_ASSERT(upcie_sim_irqs(f.sim, UINT32_MAX) > before);
	}
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Resets (on the sim from another thread, at any time) while this one reads
 * through wait() alone:
 * each reset wakes the sleeper, the queue comes back with its interrupt
 * (a reset re-arms it: a CQ re-created without IEN would leave every later
 * wait to time out), commands ended HOST_ABORTED are retried, none is lost. */
struct resetter {
	struct fx *f;
	volatile int stop;
	unsigned resets;
	int rc;
};

static void *reset_loop(void *arg)
{
	struct resetter *r = arg;

	while (!r->stop && r->resets < 5) {
		usleep(30000);
		r->rc = upcie_nvme_ctrl_reset(r->f->ctrl);
		if (r->rc)
			break;
		r->resets++;
	}
	return NULL;
}

struct rread {
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	void *buf;
	unsigned ok, aborted, other;
	bool busy;
};

static void rread_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct rread *r = arg;
	uint16_t st = upcie_nvme_cqe_status(cqe);

	r->busy = false;
	if (!st)
		r->ok++;
	else if (st == UPCIE_NVME_SC_HOST_ABORTED)
		r->aborted++;
	else
		r->other++;
}

static void test_reset_rearms(void)
{
	struct upcie_nvme_ctrl_opts co = slow_health();
	struct resetter rs = {0};
	struct rread rd[4];
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	unsigned zero_waits = 0, total_ok = 0;
	struct upcie_sim_config cfg;
	pthread_t t;
	struct fx f;
	double t0;

	/* Threaded: completions come by themselves, only an interrupt wakes. */
	upcie_sim_config_default(&cfg);
	cfg.threaded = true;
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, &cfg, 0, false, &co), 0);
	qp = irq_qpair(&f, 16, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	ns = upcie_nvme_ns_first(f.ctrl);
	for (unsigned i = 0; i < 4; i++) {
		rd[i] = (struct rread){.qp = qp, .ns = ns};
		rd[i].buf = upcie_dma_alloc(f.heap, ns->lba_size, 4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(rd[i].buf);
	}
	rs.f = &f;
	/* On a device the resets come between reads, from this thread: QEMU 7.2's
	 * controller can crash when a reset meets its in-flight I/O (see
	 * tests/qemu/guest-reset.sh), which is not what this test is about. */
	if (f.sim)
		pthread_create(&t, NULL, reset_loop, &rs);
	t0 = fx_now();
	while ((rs.resets < 5 && !rs.rc) && fx_now() - t0 < 30) {
		int n;

		bool quiesce = !f.sim && rd[0].ok > 10 * (rs.resets + 1);

		if (quiesce && !rd[0].busy && !rd[1].busy && !rd[2].busy && !rd[3].busy) {
			rs.rc = upcie_nvme_ctrl_reset(f.ctrl);
			if (!rs.rc)
				rs.resets++;
			continue;
		}
		for (unsigned i = 0; i < 4 && !quiesce; i++)
			if (!rd[i].busy &&
			    !upcie_nvme_read(qp, ns, i, 1, rd[i].buf, rread_cb, &rd[i], 0))
				rd[i].busy = true;
		upcie_nvme_ring(qp);
		n = upcie_nvme_qpair_wait(qp, 5000);
		CU_ASSERT(n >= 0);
		if (n == 0)
			zero_waits++; /* 5 s without a wake-up: lost */
		if (n < 0)
			break;
	}
	rs.stop = 1;
	if (f.sim)
		pthread_join(t, NULL);
	CU_ASSERT_EQUAL(rs.rc, 0);
	CU_ASSERT_EQUAL(rs.resets, 5);
	CU_ASSERT_EQUAL(zero_waits, 0);
	/* What is still out completes, through wait. */
	for (double d = fx_now() + 10; fx_now() < d;) {
		bool busy = false;

		for (unsigned i = 0; i < 4; i++)
			busy |= rd[i].busy;
		if (!busy)
			break;
		CU_ASSERT(upcie_nvme_qpair_wait(qp, 5000) > 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		CU_ASSERT_FALSE(rd[i].busy);
		CU_ASSERT_EQUAL(rd[i].other, 0);
		total_ok += rd[i].ok;
		upcie_dma_free(f.heap, rd[i].buf);
	}
	CU_ASSERT(total_ok > 0);
	if (f.sim)
		CU_ASSERT(upcie_sim_irqs(f.sim, qp->irq_vec) > 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* The device goes away while the waiter sleeps: it wakes at once (the
 * removal fd), its command ends HOST_PATH_ERROR, later waits say -ENODEV. */
static void test_removal_wakes_sleeper(void)
{
	struct upcie_nvme_ctrl_opts co = slow_health();
	struct later l = {.delay_ms = 100, .what = REMOVE};
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	struct fx f;
	double secs;
	int n;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	n = held_wait(&f, qp, &l, &cnt, &secs);
	CU_ASSERT(n == 1 || n == -ENODEV);
	CU_ASSERT_EQUAL(cnt.done, 1);
	CU_ASSERT_EQUAL(cnt.last_status, UPCIE_NVME_SC_HOST_PATH_ERROR);
	CU_ASSERT(secs < 5);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(qp, 100), -ENODEV);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	upcie_nvme_ctrl_close(f.ctrl); /* gone: its error is expected */
	f.ctrl = NULL;
	fx_close(&f);
}

/* A lost interrupt costs at most the health interval, never a hang. */
static void test_lost_interrupt(void)
{
	struct upcie_nvme_ctrl_opts co = {.health_ms = 100};
	struct later l = {.delay_ms = 50, .what = RELEASE};
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	struct fx f;
	double secs;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_IRQ_LOST, 1, 0), 0);
	CU_ASSERT_EQUAL(held_wait(&f, qp, &l, &cnt, &secs), 1);
	CU_ASSERT_EQUAL(cnt.done, 1);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT(secs >= 0.09 && secs < 5);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* A spurious interrupt wakes the sleeper, which finds nothing and sleeps on. */
static void test_spurious_interrupt(void)
{
	struct upcie_nvme_ctrl_opts co = slow_health();
	struct upcie_nvme_qpair_wait_stats ws;
	struct upcie_nvme_qpair *qp;
	struct later l = {.delay_ms = 50, .what = SPURIOUS};
	pthread_t t;
	struct fx f;
	double t0;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	l.f = &f;
	l.vec = qp->irq_vec;
	t0 = fx_now();
	pthread_create(&t, NULL, later_fn, &l);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(qp, 300), 0);
	/* Nothing to reap: the wait slept its whole timeout, the interrupt
	 * notwithstanding. */
	CU_ASSERT(fx_now() - t0 >= 0.29);
	/* On a loaded machine the thread may fire after that first wait: the
	 * interrupt then wakes a later one (its eventfd stays readable). */
	while (!__atomic_load_n(&l.fired, __ATOMIC_ACQUIRE) && fx_now() - t0 < 30)
		CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(qp, 300), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(qp, 100), 0);
	pthread_join(t, NULL);
	upcie_nvme_qpair_wait_stats(qp, &ws);
	CU_ASSERT(ws.wakeups >= 1);
	CU_ASSERT(ws.empty >= 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Nothing outstanding: wait sleeps for its whole timeout and returns 0;
 * timeout 0 does not sleep. */
static void test_timeout(void)
{
	struct upcie_nvme_qpair_wait_stats ws;
	struct upcie_nvme_qpair *qp;
	struct fx f;
	double t0;

	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	t0 = fx_now();
	CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(qp, 0), 0);
	CU_ASSERT(fx_now() - t0 < 0.05);
	t0 = fx_now();
	CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(qp, 120), 0);
	CU_ASSERT(fx_now() - t0 >= 0.119);
	upcie_nvme_qpair_wait_stats(qp, &ws);
	CU_ASSERT(ws.sleeps >= 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Hybrid: within spin_us of the last completion, wait polls instead of
 * sleeping, and the next completion is caught spinning. */
static void test_hybrid_spins(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_qpair_wait_stats ws;
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	struct fx f;
	void *buf;

	FX_SIM_ONLY();
	upcie_sim_config_default(&cfg);
	cfg.threaded = true; /* completions come by themselves, as from a device */
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, &cfg, 0, false, NULL), 0);
	qp = irq_qpair(&f, 8, 2000000); /* 2 s: every wait below spins */
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	ns = upcie_nvme_ns_first(f.ctrl);
	buf = upcie_dma_alloc(f.heap, ns->lba_size, 4096);
	for (unsigned i = 0; i < 50; i++) {
		CU_ASSERT_EQUAL(
		    upcie_nvme_read(qp, ns, i, 1, buf, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING),
		    0);
		while (cnt.done < i + 1)
			CU_ASSERT_FATAL(upcie_nvme_qpair_wait(qp, 5000) >= 0);
	}
	upcie_nvme_qpair_wait_stats(qp, &ws);
	CU_ASSERT(ws.spin_hits > 0);
	CU_ASSERT(ws.sleeps <= 2); /* only before the first completion */
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* The fd in the embedder's own epoll: arm, sleep, poll. */
static void test_fd_event_loop(void)
{
	struct fx_counter cnt = {0};
	struct upcie_sim_config cfg;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	struct epoll_event ev = {.events = EPOLLIN};
	struct fx f;
	void *buf;
	int ep;

	upcie_sim_config_default(&cfg);
	cfg.threaded = true;
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, &cfg, 0, false, NULL), 0);
	qp = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	ep = epoll_create1(0);
	CU_ASSERT_FATAL(upcie_nvme_qpair_fd(qp) >= 0);
	CU_ASSERT_EQUAL(epoll_ctl(ep, EPOLL_CTL_ADD, upcie_nvme_qpair_fd(qp), &ev), 0);
	ns = upcie_nvme_ns_first(f.ctrl);
	buf = upcie_dma_alloc(f.heap, ns->lba_size, 4096);
	for (unsigned i = 0; i < 100; i++) {
		double deadline = fx_now() + 5;

		CU_ASSERT_EQUAL(
		    upcie_nvme_read(qp, ns, i, 1, buf, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING),
		    0);
		while (cnt.done < i + 1 && fx_now() < deadline) {
			int n = upcie_nvme_qpair_arm(qp);

			CU_ASSERT(n >= 0);
			if (n == 0)
				CU_ASSERT(epoll_wait(ep, &ev, 1, 5000) >= 0);
		}
		CU_ASSERT_EQUAL(cnt.done, i + 1);
	}
	close(ep);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Coalescing: with 4 completions per interrupt, 8 completions on the
 * vector signal it twice; feature 08h reads back what was set. */
static void test_coalescing(void)
{
	struct upcie_nvme_ctrl_opts co = {.irq_aggr = 4, .irq_aggr_us = 250};
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint32_t dw0 = 0;
	uint16_t st;
	struct fx f;
	void *buf;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_IRQ_COALESCE, 0, &dw0, &st),
			0);
	CU_ASSERT_EQUAL(dw0, 3u | 3u << 8); /* THR 0's based, 250 us -> 3 x 100 us */
	qp = irq_qpair(&f, 16, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	ns = upcie_nvme_ns_first(f.ctrl);
	buf = upcie_dma_alloc(f.heap, 8 * ns->lba_size, 4096);
	for (unsigned i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, i, 1, (char *)buf + i * ns->lba_size,
						fx_count_cb, &cnt, 0),
				0);
	upcie_nvme_ring(qp);
	upcie_sim_step(f.sim);
	CU_ASSERT_EQUAL(upcie_sim_irqs(f.sim, qp->irq_vec), 2);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 8), 0);
	/* Three more: below the threshold, the time limit signals them. */
	for (unsigned i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, i, 1, (char *)buf + i * ns->lba_size,
						fx_count_cb, &cnt, 0),
				0);
	upcie_nvme_ring(qp);
	upcie_sim_step(f.sim);
	CU_ASSERT_EQUAL(upcie_sim_irqs(f.sim, qp->irq_vec), 2);
	usleep(1000);
	upcie_sim_step(f.sim);
	CU_ASSERT_EQUAL(upcie_sim_irqs(f.sim, qp->irq_vec), 3);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 11), 0);
	/* A reset returns the feature to its default; the library sets it again. */
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(f.ctrl), 0);
	dw0 = 0;
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_IRQ_COALESCE, 0, &dw0, &st),
			0);
	CU_ASSERT_EQUAL(dw0, 3u | 3u << 8);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Coalescing by count with no time (irq_aggr_us 0): TIME 0 is "no delay"
 * (Base spec 5.27.1.9; nvme.h: whichever comes first), so every completion
 * signals at once, as without coalescing; none waits for more to come. */
static void test_coalescing_no_time(void)
{
	struct upcie_nvme_ctrl_opts co = {.irq_aggr = 4};
	struct fx_counter cnt = {0};
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint32_t dw0 = 0;
	uint16_t st;
	struct fx f;
	void *buf;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, false, &co), 0);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_IRQ_COALESCE, 0, &dw0, &st),
			0);
	CU_ASSERT_EQUAL(dw0, 3u); /* THR 3 (0's based), TIME 0 */
	qp = irq_qpair(&f, 16, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	ns = upcie_nvme_ns_first(f.ctrl);
	buf = upcie_dma_alloc(f.heap, 4 * ns->lba_size, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* One completion, fewer than the threshold: signalled all the same. */
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 1, buf, fx_count_cb, &cnt, 0), 0);
	upcie_nvme_ring(qp);
	upcie_sim_step(f.sim);
	CU_ASSERT_EQUAL(upcie_sim_irqs(f.sim, qp->irq_vec), 1);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 1), 0);
	/* Three more in one step: three interrupts. */
	for (unsigned i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, i, 1, (char *)buf + i * ns->lba_size,
						fx_count_cb, &cnt, 0),
				0);
	upcie_nvme_ring(qp);
	upcie_sim_step(f.sim);
	CU_ASSERT_EQUAL(upcie_sim_irqs(f.sim, qp->irq_vec), 4);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 4), 0);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	fx_close(&f);
}

/* Vectors: one per queue; when the embedder enabled fewer, the queue that
 * finds none left gets -ENOSPC saying so; destroy gives it back; no fd is
 * leaked by creating and destroying many. Polled queues have no fd. */
static void test_vectors(void)
{
	struct upcie_nvme_qpair *a, *b, *p;
	struct upcie_nvme_qpair_opts po = {.depth = 8};
	struct fx f;
	int fds;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	CU_ASSERT_EQUAL(upcie_pci_irq_enable(f.dev, 2), 0); /* admin + one */
	a = irq_qpair(&f, 8, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(a->irq_vec, 1);
	b = upcie_nvme_qpair_create(f.ctrl, &(struct upcie_nvme_qpair_opts){.depth = 8, .irq = 1});
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_EQUAL(errno, ENOSPC);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "interrupt vectors are taken"));
	p = upcie_nvme_qpair_create(f.ctrl, &po);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_fd(p), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_arm(p), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_wait(p, 10), 0); /* polls, times out */
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(p), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(a), 0);
	fds = open_fds();
	for (unsigned i = 0; i < 20; i++) {
		a = irq_qpair(&f, 8, 0);
		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(a), 0);
	}
	CU_ASSERT_EQUAL(open_fds(), fds);
	fx_close(&f);
}

/* What the device offers, as the PCI layer and the controller info say it;
 * no listener before interrupts are enabled. */
static void test_info(void)
{
	struct upcie_nvme_ctrl_info ci;
	struct upcie_pci_irq_info ii;
	struct fx f;

	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	CU_ASSERT_EQUAL(upcie_pci_irq_info(f.dev, &ii), 0);
	CU_ASSERT(ii.kind == UPCIE_PCI_IRQ_MSIX || ii.kind == UPCIE_PCI_IRQ_INTX);
	CU_ASSERT(ii.nvec >= 1);
	upcie_nvme_ctrl_info(f.ctrl, &ci);
	CU_ASSERT_EQUAL(ci.irq_kind, ii.kind);
	CU_ASSERT_EQUAL(ci.irq_vectors, ii.nvec);
	CU_ASSERT_EQUAL(upcie_pci_irq_open(f.dev, 0), -EINVAL); /* not enabled yet */
	fx_close(&f);
}

static CU_TestInfo tests[] = {
    {"info", test_info},
    {"wait_reads", test_wait_reads},
    {"wait_reads_racing", test_wait_reads_racing},
    {"sleep_wakes_on_interrupt", test_sleep_wakes_on_interrupt},
    {"reset_wakes_sleeper", test_reset_wakes_sleeper},
    {"reset_rearms", test_reset_rearms},
    {"removal_wakes_sleeper", test_removal_wakes_sleeper},
    {"lost_interrupt", test_lost_interrupt},
    {"spurious_interrupt", test_spurious_interrupt},
    {"timeout", test_timeout},
    {"hybrid_spins", test_hybrid_spins},
    {"fd_event_loop", test_fd_event_loop},
    {"coalescing", test_coalescing},
    {"coalescing_no_time", test_coalescing_no_time},
    {"vectors", test_vectors},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("irq", NULL, NULL, tests)
