/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The explorer's interrupts: the wait and arm actions, the system calls a
 * wait makes, and the invariants (i)-(l) (explore.c lists them).
 *
 * Time and determinism. upcie_nvme_qpair_wait() takes its deadline from
 * CLOCK_MONOTONIC and sleeps in epoll_wait(2), the hybrid spin reads the
 * same clock, and the model's coalescing timer too: left real, a seed
 * would replay differently on a loaded machine (one more loop of the wait,
 * one more slow-path look at the library's clock, a coalesced interrupt
 * signalled earlier or later), and every sleep would cost wall time. So
 * the explorer links with --wrap for clock_gettime, epoll_wait and read
 * (meson.build) and, while a seed runs, answers them itself:
 *
 *   clock_gettime(CLOCK_MONOTONIC)  the virtual clock the library's own
 *       clock follows (X.vnow, in ms) plus a microsecond per read, so that
 *       a spin that reads it ends; other clocks are real.
 *   epoll_wait(timeout > 0)  a sleep: nothing can run in this one thread
 *       while the caller sleeps, so the device and the other threads do
 *       here what they would meanwhile (meanwhile() below), then the real
 *       epoll_wait looks (timeout 0): readable, the sleep ends after part
 *       of its time; not, it lasted its whole time. (i) is checked then.
 *   read(2) of the interrupt or wake eventfd of the queue an explorer
 *       wait or arm runs on (the acknowledgement and the drain inside
 *       arm): the device may post and signal, or another thread reset the
 *       controller, just before it, which is where an arm that looked at
 *       the CQ before acknowledging would lose a wake-up.
 *
 * Every choice made there comes from the seed's PRNG, at points the
 * library's (deterministic) calls decide, so a seed replays exactly and
 * waits of any length cost no wall time. What this cannot show is a race
 * between two CPUs inside one call; tests/unit/test_irq.c races the
 * threaded model against waiters for that.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "nvme/nvme.h"
#include "sim/sim_priv.h" /* white box: the model's CQs and vectors */
#include "explore.h"

/* ---- looks at a queue, its fd and the model ---- */

/* Open fds of this process; -1 without /proc (fds are not judged then). */
int x_fd_count(void)
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

/* The slot at the queue's CQ head holds an entry the host has not taken. */
static bool cq_posted(const struct upcie_nvme_qpair *qp)
{
	const volatile uint16_t *status = &qp->cq[qp->cq_head].status;

	return !((*status ^ qp->phase) & 1);
}

static bool fd_readable(const struct upcie_nvme_qpair *qp)
{
	struct pollfd p = {.fd = upcie_nvme_qpair_fd(qp), .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* The queue said "armed" (an arm or a sleeping wait found nothing): what
 * must turn its fd readable from now on is measured from here. */
static void mark_armed(unsigned qi)
{
	struct xq *q = &X.q[qi];

	q->armed = true;
	q->arm_raised = upcie_sim_irqs(X.sim, q->qp->irq_vec);
	q->arm_gen = X.ctrl->gen;
	q->arm_removed = X.removed;
	q->arm_lost = X.sim->irq_lost_left > 0;
}

void x_irq_lost_injected(void)
{
	for (unsigned i = 0; i < X_QPAIRS; i++)
		X.q[i].arm_lost = true; /* armed or not: mark_armed() sets it anew */
}

/*
 * (i) An armed queue's fd is readable if there is something for it: an
 * interrupt signalled, a state change or a removal since it was armed, a
 * state change it has not handled (out of step with a LIVE controller:
 * one that came during the arm, after its look), or a posted completion.
 * A completion whose interrupt the model has not signalled is excused
 * when an IRQ_LOST fault may have dropped it, or when the model coalesces
 * it (it signals once the aggregation time passed).
 */
static void check_armed(unsigned qi, const char *when)
{
	struct xq *q = &X.q[qi];
	struct upcie_nvme_qpair *qp = q->qp;
	const char *why = NULL;
	const struct sim_vec *v;

	if (!qp || !q->irq || !q->armed || X.failed || fd_readable(qp))
		return;
	v = &X.sim->vecs[qp->irq_vec];
	if (upcie_sim_irqs(X.sim, qp->irq_vec) != q->arm_raised)
		why = "the model signalled its vector since";
	else if (X.ctrl->gen != q->arm_gen)
		why = "the controller changed state since (a reset or a fence)";
	else if (X.removed && !q->arm_removed)
		why = "the device was removed since";
	else if (X.ctrl->state == UPCIE_NVME_LIVE && !upcie_nvme_queue_in_step(qp))
		why = "out of step with the LIVE controller (a state change it has not "
		      "handled)";
	else if (!cq_posted(qp) || q->arm_lost)
		return;
	else if (v->pending && !X.sim->aggr_time)
		why = "a completion is posted, held back by the model's coalescing, whose "
		      "aggregation time is 0 (no delay)";
	else if (!v->pending)
		why = "a completion is posted (no IRQ_LOST fault pending, nothing coalesced)";
	if (why)
		x_fail("(i) q%u (qid %u, vector %u) is armed and %s, but its fd is not readable "
		       "(%s)",
		       qi, qp->qid, qp->irq_vec, why, when);
}

/* ---- what the device and other threads do while the explorer's wait or
 * arm runs (see the top of this file) ---- */

enum { MW_ACK, MW_DRAIN, MW_SLEEP };

static void meanwhile(unsigned qi, int where)
{
	static const char *const wname[] = {"before the ack", "before the drain", "in its sleep"};
	unsigned other = (qi + 1 + x_below(X_QPAIRS - 1)) % X_QPAIRS;
	uint32_t r;
	int rc;

	if ((X.off & XF_MEANWHILE) || X.in_meanwhile || !X.meanwhile_left || X.failed ||
	    !x_chance(where == MW_SLEEP ? 800 : 150))
		return;
	X.in_meanwhile = true;
	X.meanwhile_left--;
	X.n_meanwhile++;
	r = x_below(1000);
	if (where == MW_SLEEP && X.sim->nr_held && r < 400) {
		/* What the device held is what a sleeper waits for: the rest ran
		 * in the wait's idle hook before it armed. */
		rc = upcie_sim_release_held(X.sim);
		x_trace("  ~ %s: the device runs what it held: %d", wname[where], rc);
	} else if (r < 800 || X.removed) {
		uint32_t k = 1 + x_below(4);

		rc = upcie_sim_step_n(X.sim, k);
		x_trace("  ~ %s: the device runs %u: %d", wname[where], k, rc);
	} else if (r < 920) {
		rc = upcie_sim_fault(X.sim, UPCIE_SIM_FAULT_IRQ_SPURIOUS, X.q[qi].qp->irq_vec, 0);
		x_trace("  ~ %s: a spurious interrupt on vector %u: %d", wname[where],
			X.q[qi].qp->irq_vec, rc);
	} else if (r < 960 && !(X.off & XF_RESET) && X.cb_resets < 2) {
		/* Counted with the callbacks' resets: the explorer's own (h). */
		X.cb_resets++;
		X.n_cb_resets++;
		x_call_begin("upcie_nvme_ctrl_reset (another thread)");
		rc = upcie_nvme_ctrl_reset(X.ctrl);
		x_call_end();
		x_trace("  ~ %s: another thread resets: %d", wname[where], rc);
	} else if (!(X.off & XF_DESTROY) && where == MW_SLEEP) {
		x_trace("  ~ %s: another thread %s q%u", wname[where],
			X.q[other].qp ? "destroys" : "creates", other);
		if (X.q[other].qp)
			x_qpair_destroy(other);
		else
			x_qpair_create(other);
	}
	X.in_meanwhile = false;
}

/* The queue an explorer wait or arm runs on, if fd is one of its own. */
static int sleeper(int fd, bool ep)
{
	struct upcie_nvme_qpair *qp;

	if (!X.vtime || !X.irq_qi || !(qp = X.q[X.irq_qi - 1].qp) || !qp->irq)
		return -1;
	if (ep ? fd == upcie_nvme_qpair_fd(qp) : fd == qp->irq_fd || fd == qp->wake_fd)
		return (int)X.irq_qi - 1;
	return -1;
}

/* ---- the system calls a wait makes (linked with --wrap) ---- */

int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
int __real_epoll_wait(int ep, struct epoll_event *ev, int max, int timeout);
int __wrap_epoll_wait(int ep, struct epoll_event *ev, int max, int timeout);
ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len);

/* May be called by the model with its lock held: only moves time. */
int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	if (!X.vtime || id != CLOCK_MONOTONIC)
		return __real_clock_gettime(id, ts);
	X.vsub_ns += 1000;
	if (X.vsub_ns >= 1000000) {
		X.vnow++;
		X.vsub_ns -= 1000000;
	}
	ts->tv_sec = (time_t)(X.vnow / 1000);
	ts->tv_nsec = (long)((X.vnow % 1000) * 1000000 + X.vsub_ns);
	return 0;
}

int __wrap_epoll_wait(int ep, struct epoll_event *ev, int max, int timeout)
{
	int r, qi;

	if (!X.vtime)
		return __real_epoll_wait(ep, ev, max, timeout);
	r = __real_epoll_wait(ep, ev, max, 0);
	if (r || !timeout)
		return r;
	if (timeout < 0) {
		x_fail("(d) %s sleeps with no deadline, and nothing in this thread can wake it",
		       X.call_name);
		x_time_passes(X.hang_ms + 1); /* does not return */
	}
	X.n_sleeps++;
	qi = sleeper(ep, true);
	if (qi >= 0) {
		/* The wait's arm returned 0 and its fd is quiet: armed. */
		mark_armed((unsigned)qi);
		meanwhile((unsigned)qi, MW_SLEEP);
		r = __real_epoll_wait(ep, ev, max, 0);
		if (!r)
			check_armed((unsigned)qi, "while its wait slept");
		X.q[qi].armed = false; /* the wait acknowledges what it finds */
	}
	if (r) {
		X.n_woken++;
		x_time_passes(x_below((uint32_t)timeout));
		return r;
	}
	x_time_passes((uint64_t)timeout);
	return 0;
}

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	int qi = sleeper(fd, false);

	if (qi >= 0)
		meanwhile((unsigned)qi, fd == X.q[qi].qp->irq_fd ? MW_ACK : MW_DRAIN);
	return __real_read(fd, buf, len);
}

/* ---- actions ---- */

static void irq_call_end(void)
{
	X.irq_qi = 0;
	x_window_close();
	X.expiring = 0;
}

/* Wait on a queue, with or without interrupts. Timeouts: 0 (a look),
 * shorter than the health interval, or longer (sleeps cut into slices). */
void x_irq_wait(unsigned qi)
{
	static const uint32_t tmo[] = {0, 0, 1, 2, 5, 50};
	struct xq *q = &X.q[qi];
	struct upcie_nvme_qpair *qp = q->qp;
	uint32_t t = tmo[x_below(6)], gen = X.ctrl->gen;
	bool posted = !qp->poke && cq_posted(qp);
	uint64_t t0 = X.vnow;
	int rc;

	X.n_waits++;
	X.irq_qi = qi + 1;
	X.meanwhile_left = 4;
	x_call_begin("upcie_nvme_qpair_wait");
	rc = upcie_nvme_qpair_wait(qp, t);
	x_call_end();
	irq_call_end();
	x_trace("wait q%u %u ms: %d (%" PRIu64 " ms)", qi, t, rc, X.vnow - t0);
	if (!rc && posted && X.ctrl->gen == gen)
		x_fail("(j) wait on q%u (qid %u) returned 0 with a completion posted when it was "
		       "called",
		       qi, qp->qid);
	if (!q->irq || !t)
		return; /* a look (timeout 0) acknowledges nothing: armed as before */
	q->armed = false;
	if (!rc) {
		/* It timed out: its last arm found nothing. */
		mark_armed(qi);
		check_armed(qi, "when its wait returned");
	}
}

/* As an event loop: arm; 0: look at the fd (poll(2), timeout 0) and, when
 * it is readable, poll the queue; > 0: completions reaped, arm again. */
void x_irq_arm(unsigned qi)
{
	struct xq *q = &X.q[qi];
	struct upcie_nvme_qpair *qp = q->qp;

	for (int round = 0; round < 3; round++) {
		uint32_t gen = X.ctrl->gen;
		bool posted = !qp->poke && cq_posted(qp), readable;
		int rc;

		X.n_arms++;
		X.irq_qi = qi + 1;
		X.meanwhile_left = 2;
		x_call_begin("upcie_nvme_qpair_arm");
		rc = upcie_nvme_qpair_arm(qp);
		x_call_end();
		irq_call_end();
		if (!q->irq) {
			x_trace("arm q%u (no interrupts): %d", qi, rc);
			if (rc != -EINVAL)
				x_fail(
				    "(j) arm on q%u, a queue without interrupts, returned %d, not "
				    "-EINVAL",
				    qi, rc);
			return;
		}
		if (!rc && posted && X.ctrl->gen == gen)
			x_fail(
			    "(j) arm on q%u (qid %u) returned 0 with a completion posted when it "
			    "was called",
			    qi, qp->qid);
		q->armed = false;
		if (rc) {
			x_trace("arm q%u: %d", qi, rc);
			if (rc < 0 || !x_chance(500))
				return;
			continue;
		}
		mark_armed(qi);
		readable = fd_readable(qp);
		x_trace("arm q%u: 0, fd %s", qi, readable ? "readable" : "quiet");
		check_armed(qi, "when arm returned");
		if (readable && x_chance(700))
			x_poll(qi, 1);
		return;
	}
}

/* ---- invariants after every step ---- */

/* (k) Vectors: one per queue with interrupts, live or zombie, each its
 * own, and the controller's map marks exactly those. */
static void check_vector(const struct upcie_nvme_qpair *qp, bool zombie, uint8_t *seen,
			 uint32_t *held)
{
	uint16_t v = qp->irq_vec;

	if (!qp->irq)
		return;
	(*held)++;
	if (!v || v >= X.ctrl->irq_nvec || v >= X_VECTORS)
		x_fail("(k) qid %u%s holds vector %u, out of range (1..%u)", qp->qid,
		       zombie ? " (a zombie)" : "", v, X.ctrl->irq_nvec - 1);
	else if (seen[v]++)
		x_fail("(k) qid %u%s holds vector %u, and another queue holds it too", qp->qid,
		       zombie ? " (a zombie)" : "", v);
	else if (!X.ctrl->vec_used[v])
		x_fail("(k) qid %u%s holds vector %u, which the controller counts free", qp->qid,
		       zombie ? " (a zombie)" : "", v);
}

static void check_vectors(void)
{
	uint8_t seen[X_VECTORS] = {0};
	uint32_t held = 0, used = 0;

	for (unsigned i = 0; i < X_QPAIRS; i++)
		if (X.q[i].qp)
			check_vector(X.q[i].qp, false, seen, &held);
	for (const struct upcie_nvme_qpair *z = X.ctrl->zombies; z; z = z->next)
		check_vector(z, true, seen, &held);
	for (unsigned v = 1; v < X.ctrl->irq_nvec; v++)
		used += X.ctrl->vec_used[v] != 0;
	if (used != held)
		x_fail("(k) the controller counts %u vectors taken; its queues hold %u", used,
		       held);
}

/* (k) fds: the controller's after open, the vectors the backend opened,
 * three per queue with interrupts (its vector's listener, wake eventfd
 * and epoll fd), zombies included. */
void x_irq_check_fds(const char *after)
{
	int want = X.fd_after_open, n;

	if (!X.ctrl || X.failed || X.fd_start < 0)
		return;
	want += (int)X.ctrl->irq_nvec + x_peer_fds();
	for (unsigned i = 0; i < X_QPAIRS; i++)
		want += X.q[i].qp && X.q[i].qp->irq ? 3 : 0;
	for (struct upcie_nvme_qpair *z = X.ctrl->zombies; z; z = z->next)
		want += z->irq ? 3 : 0;
	n = x_fd_count();
	if (n != want)
		x_fail("(k) %d fds open after %s, %d expected (%d after open, %u vectors, the "
		       "queues' own)",
		       n, after, want, X.fd_after_open, X.ctrl->irq_nvec);
	/* the peer's (peer.c) are counted in want */
}

/* (l) A queue LIVE and in step with a LIVE controller is on the device:
 * its CQ has interrupts, on its own vector, exactly when it asked. */
static void check_device_cqs(void)
{
	if (X.removed || X.ctrl->state != UPCIE_NVME_LIVE)
		return;
	for (unsigned i = 0; i < X_QPAIRS; i++) {
		const struct upcie_nvme_qpair *qp = X.q[i].qp;
		const struct sim_cq *cq;

		if (!qp || qp->qstate != UPCIE_NVME_Q_LIVE || !upcie_nvme_queue_in_step(qp))
			continue;
		cq = &X.sim->cqs[qp->qid];
		if (!cq->live)
			x_fail("(l) q%u (qid %u) is LIVE, in step with the controller, and the "
			       "device has no CQ %u",
			       i, qp->qid, qp->qid);
		else if (cq->ien != (qp->irq != 0) || (qp->irq && cq->iv != qp->irq_vec))
			x_fail("(l) q%u (qid %u, %s, vector %u): the device's CQ has interrupts "
			       "%s, vector %u",
			       i, qp->qid, qp->irq ? "interrupts" : "polled", qp->irq_vec,
			       cq->ien ? "on" : "off", cq->iv);
	}
}

void x_irq_check_all(void)
{
	if (X.failed || !X.ctrl)
		return;
	for (unsigned i = 0; i < X_QPAIRS; i++)
		check_armed(i, "after the step");
	check_vectors();
	check_device_cqs();
}
