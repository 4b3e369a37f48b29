/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A second controller in the explorer's DMA context (upcie_dma_ctx_*): the
 * peer, on a stepped model of its own, opened into the same context as the
 * controller under test and on the same heap. Its buffers are heap
 * buffers beside the explorer's. Actions (peer_step): I/O on the peer
 * (a write of a pattern, then a read that checks it), polls, a reset of
 * the peer, the peer's device removed (hot-unplug: its check fails, its
 * commands end), the peer closed (controller, device) and opened again
 * (a new device joins the context and must reach the heap made before),
 * and an attempt to destroy the heap while controllers are open on it.
 *
 * Invariants, after every step (x_peer_check):
 *   (p1) the controller under test's model reaches every heap buffer and
 *        every registered region that is on, whatever the peer did: a
 *        peer closed, reset or gone never unmaps the context's memory;
 *   (p2) a closed peer's model reaches none of it (its device left the
 *        context: nothing it does can land in memory handed out again);
 *   (p3) an open peer's model reaches its buffers while a command of its
 *        is in flight; a peer buffer is not reused before its command
 *        ended, and a read returns what the last successful write wrote;
 *   (p4) heap destroy while controllers are open on it is refused
 *        (EBUSY) and leaves the heap as it was.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dma/heap.h"
#include "explore.h"
#include "sim/sim_priv.h"

#define P_BUFS	 4
#define P_BLOCKS 8
#define P_LBA	 512u

struct xpeer {
	struct upcie_sim *sim; /* kept while closed: (p2) looks at it */
	struct upcie_pci_dev *dev;
	struct upcie_nvme_ctrl *ctrl;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint8_t *buf[P_BUFS];
	bool busy[P_BUFS];   /* a command of the peer uses it */
	bool isread[P_BUFS]; /* and it is a read */
	uint32_t lba[P_BUFS];
	uint8_t token[P_BUFS];
	uint8_t known[P_BLOCKS]; /* the token each block holds (0: unknown) */
	uint8_t next_token;
	unsigned live;
	bool gone; /* its device was removed: close it, then open another */
	int fds;   /* fds its device, controller and queue pair hold (k) */
	uint64_t opens, closes, resets, ios, refused_destroys;
};

static struct xpeer P;
/* Over every seed of the run, for the summary. */
static uint64_t t_opens, t_closes, t_resets, t_ios, t_refused;

static void peer_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	unsigned i = (unsigned)(uintptr_t)arg;
	uint16_t st = upcie_nvme_cqe_status(cqe);

	if (!P.busy[i]) {
		x_fail("(p3) peer buffer %u: a completion for a command it does not have", i);
		return;
	}
	if (P.isread[i] && !st && P.known[P.lba[i]]) {
		uint8_t want = P.known[P.lba[i]];

		for (unsigned k = 0; k < P_LBA; k++)
			if (P.buf[i][k] != want) {
				x_fail(
				    "(p3) peer read of block %u returned %#x at byte %u, the last "
				    "write put %#x there",
				    P.lba[i], P.buf[i][k], k, want);
				break;
			}
	}
	if (!P.isread[i])
		/* A write that failed may have reached the block or not. */
		P.known[P.lba[i]] = st ? 0 : P.token[i];
	P.busy[i] = false;
	P.live--;
}

static void peer_open(void)
{
	struct upcie_pci_opts po = {.dma_ctx = X.ctx};
	struct upcie_sim_config cfg;
	int before = x_fd_count();

	upcie_sim_config_default(&cfg);
	cfg.to = 1;
	cfg.max_ioqpairs = 1;
	cfg.nr_ns = 1;
	cfg.ns[0].nlbas = 64;
	upcie_sim_destroy(P.sim);
	P.sim = upcie_sim_create(&cfg);
	po.sim = P.sim;
	P.dev = P.sim ? upcie_pci_open("sim1", &po) : NULL;
	if (!P.dev) {
		x_fail("peer: open into the context: %s", upcie_errmsg());
		return;
	}
	x_call_begin("upcie_nvme_ctrl_open (peer)");
	P.ctrl = upcie_nvme_ctrl_open(P.dev, X.heap, NULL);
	x_call_end();
	if (!P.ctrl) {
		x_fail("peer: a controller on the context's heap: %s", upcie_errmsg());
		return;
	}
	P.qp = upcie_nvme_qpair_create(P.ctrl, NULL);
	P.ns = upcie_nvme_ns_first(P.ctrl);
	if (!P.qp || !P.ns) {
		x_fail("peer: qpair or namespace: %s", upcie_errmsg());
		return;
	}
	memset(P.known, 0, sizeof(P.known));
	P.fds = x_fd_count() - before;
	P.gone = false;
	P.opens++;
	x_trace("peer: opened into the context");
}

static void peer_close(void)
{
	int rc = 0;

	if (P.qp) {
		x_call_begin("upcie_nvme_qpair_destroy (peer)");
		rc = upcie_nvme_qpair_destroy(P.qp);
		x_call_end();
	}
	P.qp = NULL;
	x_call_begin("upcie_nvme_ctrl_close (peer)");
	if (P.ctrl && upcie_nvme_ctrl_close(P.ctrl) && !P.gone)
		rc = rc ? rc : -EIO;
	x_call_end();
	P.ctrl = NULL;
	if (P.live)
		x_fail("(p3) peer closed with %u commands that never ended", P.live);
	upcie_pci_close(P.dev);
	P.dev = NULL;
	P.fds = 0;
	P.closes++;
	x_trace("peer: closed%s (%d)", P.gone ? " (device gone)" : "", rc);
	if (rc && !P.gone)
		x_fail("peer: close of a device that is still there: %d (%s)", rc, upcie_errmsg());
}

void x_peer_setup(void)
{
	memset(&P, 0, sizeof(P));
	if (!X.ctx)
		return;
	for (unsigned i = 0; i < P_BUFS; i++) {
		P.buf[i] = upcie_dma_alloc(X.heap, P_LBA, 4096);
		if (!P.buf[i]) {
			x_fail("peer: no heap buffer: %s", upcie_errmsg());
			return;
		}
	}
	peer_open();
}

static void peer_io(void)
{
	unsigned i = x_below(P_BUFS);
	bool rd = x_chance(500);
	uint32_t lba = x_below(P_BLOCKS);
	int rc;

	if (P.busy[i])
		return;
	for (unsigned j = 0; j < P_BUFS; j++)
		if (P.busy[j] && P.lba[j] == lba)
			return; /* one command per block: the data is then known */
	P.lba[i] = lba;
	P.isread[i] = rd;
	if (!rd) {
		P.token[i] = (uint8_t)(++P.next_token ? P.next_token : ++P.next_token);
		memset(P.buf[i], P.token[i], P_LBA);
	} else {
		memset(P.buf[i], 0xee, P_LBA);
	}
	x_call_begin("peer submit");
	rc = rd ? upcie_nvme_read(P.qp, P.ns, lba, 1, P.buf[i], peer_cb, (void *)(uintptr_t)i,
				  UPCIE_NVME_SUBMIT_RING)
		: upcie_nvme_write(P.qp, P.ns, lba, 1, P.buf[i], peer_cb, (void *)(uintptr_t)i,
				   UPCIE_NVME_SUBMIT_RING);
	x_call_end();
	if (!rc) {
		P.busy[i] = true;
		P.live++;
		P.ios++;
	}
	x_trace("peer: %s block %u buf %u: %d", rd ? "read" : "write", lba, i, rc);
}

static void peer_poll(void)
{
	int rc;

	upcie_sim_step_n(P.sim, 1 + x_below(4));
	x_call_begin("upcie_nvme_poll (peer)");
	rc = upcie_nvme_poll(P.qp, 0);
	x_call_end();
	if (rc)
		x_trace("peer: poll %d", rc);
}

/* The heap outlives a device, never a controller open on it. */
static void destroy_refused(void)
{
	struct upcie_dma_heap_info a, b;

	upcie_dma_heap_info(X.heap, &a);
	errno = 0;
	upcie_dma_heap_destroy(X.heap);
	upcie_dma_heap_info(X.heap, &b);
	if (errno != EBUSY || a.allocations != b.allocations || a.size != b.size)
		x_fail("(p4) heap destroy with controllers open on it: errno %d, %zu -> %zu "
		       "allocations (want EBUSY, unchanged)",
		       errno, a.allocations, b.allocations);
	P.refused_destroys++;
	x_trace("peer: heap destroy refused");
}

void x_peer_step(void)
{
	uint32_t r = x_below(100);
	int rc;

	if (!X.ctx || X.failed)
		return;
	if (!P.ctrl) {
		if (r < 40)
			peer_open();
		return;
	}
	if (P.gone) {
		if (r < 30)
			peer_poll();
		else if (r < 60)
			peer_close();
		return;
	}
	if (r < 40) {
		peer_io();
	} else if (r < 75) {
		peer_poll();
	} else if (r < 82) {
		x_call_begin("upcie_nvme_ctrl_reset (peer)");
		rc = upcie_nvme_ctrl_reset(P.ctrl);
		x_call_end();
		P.resets++;
		x_trace("peer: reset %d", rc);
	} else if (r < 85) {
		/* Hot-unplug of the peer while the controller under test runs. */
		upcie_sim_fault(P.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
		x_call_begin("upcie_nvme_ctrl_check (peer)");
		rc = upcie_nvme_ctrl_check(P.ctrl);
		x_call_end();
		P.gone = true;
		x_trace("peer: device removed, check %d", rc);
	} else if (r < 92) {
		/* Closed with commands in flight: they end at close. */
		peer_close();
	} else {
		destroy_refused();
	}
}

static bool reach(struct upcie_sim *sim, const void *p, size_t len)
{
	return upcie_sim_dma_ok(sim, (uintptr_t)p, len);
}

void x_peer_check(void)
{
	if (!X.ctx || X.failed)
		return;
	/* (p1) */
	for (uint32_t i = 0; i < X.nslots; i++)
		if (!reach(X.sim, X.slots[i].buf, X.slots[i].size) &&
		    (!X.slots[i].reg || X.reg[X.slots[i].reg - 1].on)) {
			x_fail("(p1) buffer slot %u (%p+%zu) is out of the reach of the controller "
			       "under test (peer opened %" PRIu64 ", closed %" PRIu64 " times)",
			       i, (void *)X.slots[i].buf, X.slots[i].size, P.opens, P.closes);
			return;
		}
	if (!reach(X.sim, X.heap->va, X.heap->len))
		x_fail("(p1) the heap's first segment is out of the reach of the controller under "
		       "test");
	for (unsigned i = 0; i < P_BUFS; i++) {
		bool r = P.sim && reach(P.sim, P.buf[i], P_LBA);

		/* (p2) and (p3) */
		if (!P.dev && r)
			x_fail("(p2) the closed peer's model still reaches peer buffer %u", i);
		else if (P.dev && P.busy[i] && !r)
			x_fail(
			    "(p3) peer buffer %u is out of the peer's reach while its command is "
			    "in flight",
			    i);
	}
}

/* End of a seed: the peer's commands end, it closes; its buffers go back. */
void x_peer_finish(void)
{
	if (!X.ctx)
		return;
	if (P.ctrl && !X.failed) {
		upcie_sim_fault(P.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
		for (unsigned it = 0; it < 200 && P.live && !P.gone; it++)
			peer_poll();
		peer_close();
	}
	x_peer_check();
}

unsigned x_peer_allocs(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < P_BUFS; i++)
		n += P.buf[i] != NULL;
	return n;
}

int x_peer_fds(void)
{
	return P.fds;
}

void x_peer_teardown(void)
{
	if (P.ctrl && !X.failed) {
		peer_close();
	} else if (P.dev) {
		/* After a failure: let go of everything, judging nothing. */
		upcie_nvme_ctrl_close(P.ctrl);
		upcie_pci_close(P.dev);
	}
	for (unsigned i = 0; i < P_BUFS && !X.failed; i++)
		if (P.buf[i])
			upcie_dma_free(X.heap, P.buf[i]);
	upcie_sim_destroy(P.sim);
	t_opens += P.opens;
	t_closes += P.closes;
	t_resets += P.resets;
	t_ios += P.ios;
	t_refused += P.refused_destroys;
	memset(&P, 0, sizeof(P));
}

void x_peer_report(void)
{
	printf("explore: DMA context: the peer opened %" PRIu64 " times, closed %" PRIu64
	       ", reset %" PRIu64 ", %" PRIu64 " I/Os on the shared heap, %" PRIu64
	       " heap destroys refused\n",
	       t_opens, t_closes, t_resets, t_ios, t_refused);
}
