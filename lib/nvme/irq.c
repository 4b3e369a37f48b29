/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupt-driven queue pairs: vectors, the fds a sleeper waits on, and
 * the wait itself (upcie_nvme_qpair_wait/_arm/_fd in nvme.h).
 *
 * Nothing here is on the I/O path: a queue with interrupts submits, rings
 * and reaps exactly as a polled one (its CQ only has IEN set). Waiting is
 * arm-then-sleep:
 *
 *   1. acknowledge the vector (eventfd read; INTx: also unmask the line)
 *      and drain the wake eventfd;
 *   2. publish the CQ head (a level-triggered line stays up while the
 *      device sees entries we consumed but did not release; under INTx
 *      through the MMIO doorbell even with shadow doorbells) and reap;
 *   3. only when 2 found nothing, sleep in epoll_wait on the queue's epoll
 *      fd: the vector's listener, the wake eventfd (a reset from any
 *      thread writes it after poking the queue) and the device's "gone"
 *      fd (vfio's request interrupt; the sim's removal).
 *
 * A completion posted after the look in 2 signals after the ack in 1
 * (the device writes the entry, then signals), so 3 returns at once: no
 * lost wake-up. Sleeps last at most health_ms while commands are
 * outstanding: the slow path then runs as for a polled queue (timeouts,
 * health), so a lost interrupt costs latency, never a hang.
 *
 * Vectors (MSI-X): 0 is the admin queue's; each interrupt queue takes one
 * of 1..n-1 for itself, so no two sleepers share an eventfd (a shared one
 * could be drained by the wrong sleeper). INTx has one line: each queue
 * opens a listener of its own on it (pci.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

enum { EV_IRQ = 1, EV_WAKE, EV_GONE };

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Interrupts on, vectors counted: once per controller, on the first
 * interrupt queue. irq_lock held. */
static int vectors_on(struct upcie_nvme_ctrl *c)
{
	struct upcie_pci_irq_info info;
	unsigned want;
	int rc;

	if (c->irq_nvec)
		return 0;
	rc = upcie_pci_irq_info(c->dev, &info);
	if (rc)
		return rc;
	if (info.kind == UPCIE_PCI_IRQ_NONE || !info.nvec)
		return upcie_pci_irq_enable(c->dev, 1); /* fails, saying why */
	/* MSI-X: the admin vector and one per I/O queue the controller granted. */
	want = info.kind == UPCIE_PCI_IRQ_INTX ? 1 : info.nvec;
	if (info.kind == UPCIE_PCI_IRQ_MSIX) {
		unsigned qmax =
		    c->io_sq_granted < c->io_cq_granted ? c->io_sq_granted : c->io_cq_granted;
		if (want > qmax + 1u)
			want = qmax + 1u;
	}
	if (info.enabled && info.enabled != want)
		want = info.enabled; /* enabled by the embedder: take what is there */
	rc = upcie_pci_irq_enable(c->dev, want);
	if (rc)
		return rc;
	c->vec_used = calloc(want, 1);
	if (!c->vec_used)
		return upcie_err(-ENOMEM, "out of memory for %u interrupt vectors", want);
	c->irq_kind = (int)info.kind;
	c->irq_nvec = want;
	c->irq_enabled_here = !info.enabled;
	return 0;
}

static int vector_take(struct upcie_nvme_ctrl *c, uint16_t *vec)
{
	int rc;

	pthread_mutex_lock(&c->irq_lock);
	rc = vectors_on(c);
	if (!rc && c->irq_kind == UPCIE_PCI_IRQ_INTX) {
		*vec = 0; /* one line, shared: each queue listens on its own file */
	} else if (!rc) {
		unsigned v = 1;

		while (v < c->irq_nvec && c->vec_used[v])
			v++;
		if (v < c->irq_nvec) {
			c->vec_used[v] = 1;
			*vec = (uint16_t)v;
		} else {
			rc = upcie_err(-ENOSPC,
				       "%s: all %u interrupt vectors are taken (vector 0 is the "
				       "admin queue's, one per interrupt queue): destroy one, or "
				       "create this queue without interrupts",
				       upcie_pci_name(c->dev), c->irq_nvec);
		}
	}
	pthread_mutex_unlock(&c->irq_lock);
	return rc;
}

static void vector_give(struct upcie_nvme_ctrl *c, uint16_t vec)
{
	pthread_mutex_lock(&c->irq_lock);
	if (vec && c->vec_used && vec < c->irq_nvec)
		c->vec_used[vec] = 0;
	pthread_mutex_unlock(&c->irq_lock);
}

static int ep_add(int ep, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int upcie_nvme_irq_setup(struct upcie_nvme_qpair *qp, const struct upcie_nvme_qpair_opts *opts)
{
	struct upcie_nvme_ctrl *c = qp->ctrl;
	int gone, rc;

	if (!opts || !opts->irq)
		return 0;
	rc = vector_take(c, &qp->irq_vec);
	if (rc)
		return rc;
	qp->irq = 1;
	qp->spin_us = opts->spin_us;
	qp->irq_fd = upcie_pci_irq_open(c->dev, qp->irq_vec);
	if (qp->irq_fd < 0) {
		rc = qp->irq_fd;
		qp->irq_fd = -1;
		goto err;
	}
	qp->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	qp->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (qp->wake_fd < 0 || qp->ep_fd < 0) {
		rc = upcie_err(-errno, "queue %u: eventfd or epoll for its interrupts: %s", qp->qid,
			       strerror(errno));
		goto err;
	}
	rc = ep_add(qp->ep_fd, qp->irq_fd, EV_IRQ);
	if (!rc)
		rc = ep_add(qp->ep_fd, qp->wake_fd, EV_WAKE);
	gone = upcie_pci_gone_fd(c->dev);
	if (!rc && gone >= 0) {
		rc = ep_add(qp->ep_fd, gone, EV_GONE);
		qp->gone_watched = !rc;
	}
	if (rc) {
		rc = upcie_err(rc, "queue %u: epoll_ctl for its interrupts: %s", qp->qid,
			       strerror(-rc));
		goto err;
	}
	return 0;
err:
	upcie_nvme_irq_free(qp);
	return rc;
}

void upcie_nvme_irq_free(struct upcie_nvme_qpair *qp)
{
	if (!qp->irq)
		return;
	if (qp->ep_fd >= 0)
		close(qp->ep_fd);
	if (qp->wake_fd >= 0)
		close(qp->wake_fd);
	upcie_pci_irq_close(qp->ctrl->dev, qp->irq_vec, qp->irq_fd);
	vector_give(qp->ctrl, qp->irq_vec);
	qp->ep_fd = qp->wake_fd = qp->irq_fd = -1;
	qp->irq = 0;
}

void upcie_nvme_irq_wake(struct upcie_nvme_qpair *qp)
{
	uint64_t one = 1;

	if (qp->wake_fd < 0)
		return;
	/* Fails only when the counter is full: a wake-up is pending then. */
	if (write(qp->wake_fd, &one, sizeof(one)) != sizeof(one))
		return;
	/* Then the flag: arm reads the eventfd only when the flag is set (one
	 * syscall less per sleep). Set after the write, a flag arm takes
	 * always finds the count there to drain; a write whose flag is not
	 * set yet makes at most one extra pass through arm. */
	__atomic_store_n(&qp->woken, 1, __ATOMIC_SEQ_CST);
}

int upcie_nvme_irq_coalescing(struct upcie_nvme_ctrl *c)
{
	uint32_t thr = c->opts.irq_aggr > 1 ? c->opts.irq_aggr - 1u : 0;
	uint32_t time = (c->opts.irq_aggr_us + 99u) / 100u;
	uint16_t status = 0;
	int rc;

	if (!thr && !time)
		return 0;
	if (thr > 255)
		thr = 255;
	if (time > 255)
		time = 255;
	rc = upcie_nvme_set_features(c, UPCIE_NVME_FEAT_IRQ_COALESCE, thr | time << 8, NULL,
				     &status);
	if (rc == -EIO)
		upcie_warn("%s: the controller refused interrupt coalescing (%u completions, "
			   "%u us): %s; every completion interrupts",
			   upcie_pci_name(c->dev), thr + 1, time * 100,
			   upcie_nvme_status_str(status));
	return rc == -EIO ? 0 : rc;
}

void upcie_nvme_irq_ctrl_free(struct upcie_nvme_ctrl *c)
{
	if (c->irq_enabled_here)
		upcie_pci_irq_disable(c->dev);
	free(c->vec_used);
	c->vec_used = NULL;
	c->irq_nvec = 0;
	pthread_mutex_destroy(&c->irq_lock);
}

/* ---- public ---- */

int upcie_nvme_qpair_fd(const struct upcie_nvme_qpair *qp)
{
	if (!qp || !qp->irq)
		return upcie_err(-EINVAL,
				 "queue %u has no interrupts: create it with "
				 "upcie_nvme_qpair_opts.irq = 1",
				 qp ? qp->qid : 0);
	return qp->ep_fd;
}

static void drain(int fd)
{
	uint64_t n;

	while (read(fd, &n, sizeof(n)) == sizeof(n))
		;
}

int upcie_nvme_qpair_arm(struct upcie_nvme_qpair *qp)
{
	int rc;

	if (!qp || !qp->irq)
		return upcie_nvme_qpair_fd(qp);
	rc = upcie_pci_irq_ack(qp->ctrl->dev, qp->irq_vec, qp->irq_fd);
	if (rc == -ENODEV) {
		/* The interrupt source went with the device (uio: unbound): the
		 * controller is gone; what is outstanding ends here. */
		char why[256];

		snprintf(why, sizeof(why), "%s", upcie_errmsg());
		(void)upcie_nvme_ctrl_check(qp->ctrl);
		rc = upcie_nvme_queue_poll(qp, 0);
		return rc ? rc
			  : upcie_err(-ENODEV, "%s: queue %u: the device is gone (%s)",
				      upcie_pci_name(qp->ctrl->dev), qp->qid, why);
	}
	if (rc < 0)
		return rc;
	if (__atomic_exchange_n(&qp->woken, 0, __ATOMIC_SEQ_CST))
		drain(qp->wake_fd);
	/* The device must know what we consumed (lazy_cq may hold it back). */
	if (qp->cq_head != qp->cq_rung)
		upcie_nvme_queue_cq_db(qp);
	/* A level-triggered line (INTx) drops when the device sees the CQ
	 * empty. With shadow doorbells the head above may have gone to the
	 * shadow only, and a device that drops its line on an MMIO head write
	 * alone (QEMU's does) keeps it up: every unmask would fire again with
	 * nothing new. So the head goes to the MMIO doorbell too (the shadow
	 * already holds the same value). */
	if (qp->shadow_cq && qp->ctrl->irq_kind == UPCIE_PCI_IRQ_INTX &&
	    qp->qstate == UPCIE_NVME_Q_LIVE && upcie_nvme_queue_in_step(qp))
		upcie_mmio_write32(qp->cq_db, 0, qp->cq_head);
	return upcie_nvme_queue_poll(qp, 0);
}

/* The device's gone fd fired: find out now (a fence ends what is
 * outstanding), and stop watching it (it stays readable). */
static void gone_seen(struct upcie_nvme_qpair *qp)
{
	int gone = upcie_pci_gone_fd(qp->ctrl->dev);

	if (qp->gone_watched && gone >= 0)
		(void)epoll_ctl(qp->ep_fd, EPOLL_CTL_DEL, gone, NULL);
	qp->gone_watched = 0;
	(void)upcie_nvme_ctrl_check(qp->ctrl);
}

/* Poll until something came, the spin window closed or the deadline. */
static int spin(struct upcie_nvme_qpair *qp, uint64_t until_ns)
{
	for (unsigned i = 1;; i++) {
		int n = upcie_nvme_queue_poll(qp, 0);

		if (n)
			return n;
		upcie_pci_idle(qp->ctrl->dev);
		if ((i & 63) == 0 && until_ns != UINT64_MAX && now_ns() >= until_ns)
			return 0;
	}
}

int upcie_nvme_qpair_wait(struct upcie_nvme_qpair *qp, uint32_t timeout_ms)
{
	uint64_t start, deadline;
	int n;

	if (!qp)
		return upcie_err(-EINVAL, "upcie_nvme_qpair_wait: no queue pair");
	qp->wst.waits++;
	n = upcie_nvme_queue_poll(qp, 0);
	if (n || !timeout_ms)
		goto out;
	/* No clock without a deadline: on some machines (a guest whose clock
	 * source is an emulated HPET) each read is a system call and an MMIO. */
	start = timeout_ms == UINT32_MAX && !qp->spin_us ? 0 : now_ns();
	deadline = timeout_ms == UINT32_MAX ? UINT64_MAX : start + timeout_ms * 1000000ull;
	if (!qp->irq) {
		n = spin(qp, deadline);
		goto out;
	}
	if (qp->spin_us && qp->last_done_ns) {
		uint64_t until = qp->last_done_ns + qp->spin_us * 1000ull;

		n = spin(qp, until < deadline ? until : deadline);
		if (n) {
			qp->wst.spin_hits++;
			goto out;
		}
	}
	for (;;) {
		struct epoll_event ev[3];
		uint64_t now;
		int slice, r;

		upcie_pci_idle(qp->ctrl->dev); /* a stepped model runs here */
		/* A look before the ack: what came meanwhile costs no syscall. */
		n = upcie_nvme_queue_poll(qp, 0);
		if (!n)
			n = upcie_nvme_qpair_arm(qp);
		if (n)
			goto out;
		now = deadline == UINT64_MAX ? 0 : now_ns();
		if (now >= deadline)
			goto out;
		/* Whole milliseconds, rounded up: never wake before the deadline. */
		slice = deadline == UINT64_MAX ? -1 : (int)((deadline - now + 999999) / 1000000);
		if (upcie_nvme_qpair_outstanding(qp) &&
		    (slice < 0 || (uint32_t)slice > qp->health_ms))
			slice = (int)qp->health_ms;
		qp->wst.sleeps++;
		r = epoll_wait(qp->ep_fd, ev, 3, slice);
		if (r < 0 && errno != EINTR)
			return upcie_err(-errno, "queue %u: epoll_wait: %s", qp->qid,
					 strerror(errno));
		if (r > 0)
			qp->wst.wakeups++;
		for (int i = 0; i < r; i++)
			if (ev[i].data.u32 == EV_GONE)
				gone_seen(qp);
		if (r == 0) {
			/* The slice ran out: timeouts and health, as a poll would. */
			n = upcie_nvme_queue_poll_slow(qp, 0);
		} else {
			n = upcie_nvme_queue_poll(qp, 0);
			if (!n && r > 0)
				qp->wst.empty++;
		}
		if (n)
			goto out;
	}
out:
	if (n > 0 && qp->spin_us)
		qp->last_done_ns = now_ns();
	return n;
}

void upcie_nvme_qpair_wait_stats(const struct upcie_nvme_qpair *qp,
				 struct upcie_nvme_qpair_wait_stats *st)
{
	*st = qp->wst;
}
