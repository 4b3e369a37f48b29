/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The explorer's runner: seeds, the virtual clock, the DMA hook, the data
 * oracle, buffers, the per-step and final invariants, and the report.
 *
 *   explore --seed S [--steps N] [-v]   one seed (replays exactly)
 *   explore --seeds A-B [--steps N]      a range; every failure is reported
 *
 * Invariants (DESIGN.md, "Faults come in combinations"):
 *   (a) every accepted command completes exactly once, by its own id
 *   (b) no device transfer touches a buffer whose command completed (or
 *       a buffer of no live command), or moves data the wrong way
 *   (c) data written successfully reads back (per-block candidate sets)
 *   (d) no library call takes longer than its bound, in virtual ms
 *   (e) the library's outstanding counts match the explorer's
 *   (f) at the end every command ended, every CID and qid is free, and
 *       the DMA heap holds only the explorer's own buffers
 *   (g) a qpair's queue and shadow doorbell memory is allocated while
 *       the qpair points at it
 * and, for queues with interrupts (irq.c says how each is checked):
 *   (i) no lost wake-up: once an arm (or a wait that went to sleep) said
 *       "armed", the queue's fd turns readable when there is something
 *       for it: a completion posted (unless an IRQ_LOST fault or the
 *       model's coalescing holds its interrupt), an interrupt signalled,
 *       a controller state change (reset, fence), one the arm did not
 *       handle, or the device's removal; and a wait never sleeps through
 *       one of those
 *   (j) a wait or an arm never returns 0 while a completion for its queue
 *       is already posted when it is called; an arm on a queue without
 *       interrupts is refused
 *   (k) no fd is left behind by a qpair, a reset or a close; each queue
 *       with interrupts has a vector of its own, and the controller marks
 *       as taken exactly the vectors its queues hold
 *   (l) a queue on the device is there with interrupts on its own vector
 *       when it has them (after every reset too), without when not
 * and, on namespace 2 formatted with PI (I/O with PRACT, reads checked):
 *   (m) no end-to-end check ever fails (PI types 1-3, 16- and 64-bit
 *       guards): the PI the device made for each
 *       write matches the data it keeps
 *   (n) on seeds with metadata SGLs (md.c): a read whose PI crossed the
 *       bus succeeded only with PI that matches the data it brought
 *   (r) registered memory: I/O on a region that is not registered is
 *       refused; unregister is refused (-EBUSY) exactly while a command
 *       counted outstanding has its buffer in the region, accepted when
 *       none has; register of a region that is off works
 *
 * Time: the library's clock (upcie_test_clock_ms), CLOCK_MONOTONIC (the
 * wait's deadline, hybrid spinning, the model's coalescing) and sleeps in
 * epoll_wait are all virtual (irq.c), so a seed replays exactly and a
 * sleep costs no wall time.
 */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dma/heap.h"
#include "nvme/nvme.h"
#include "explore.h"
#include "xrng.h"
#include "xrun.h"

struct xstate_s X;

/* ---- PRNG (xrng.h) ---- */

static uint64_t splitmix(uint64_t *s)
{
	return xrng_splitmix(s);
}

uint64_t x_rnd(void)
{
	return xrng_next(&X.rng);
}

uint32_t x_below(uint32_t n)
{
	return xrng_below(&X.rng, n);
}

bool x_chance(uint32_t per_mille)
{
	return x_below(1000) < per_mille;
}

/* ---- trace and failures ---- */

void x_trace(const char *fmt, ...)
{
	char *line = X.trace[X.ntrace++ % X_TRACE];
	va_list ap;
	int n = snprintf(line, 160, "%5" PRIu64 " t=%-6" PRIu64 " ", X.step, X.vnow);

	va_start(ap, fmt);
	vsnprintf(line + n, 160 - (size_t)n, fmt, ap);
	va_end(ap);
	if (X.verbose)
		printf("  %s\n", line);
}

void x_fail(const char *fmt, ...)
{
	va_list ap;

	if (X.failed)
		return; /* the first failure is the one to read */
	X.failed = true;
	X.fail_step = X.step;
	va_start(ap, fmt);
	vsnprintf(X.why, sizeof(X.why), fmt, ap);
	va_end(ap);
	x_trace("FAIL: %s", X.why);
}

static void report(void)
{
	char replay[96];

	snprintf(replay, sizeof(replay), "explore --seed %" PRIu64 " --steps %" PRIu64 " -v",
		 X.seed, X.steps);
	xreport(X.seed, X.fail_step, X.steps, X.why, X.trace[0], sizeof(X.trace[0]), X_TRACE,
		X.ntrace, X_TRACE_SHOWN, " (step, virtual ms, action or event)", replay);
}

/* ---- the virtual clock and call bounds (d) ---- */

static uint64_t vclock(void)
{
	X.vnow += X.per_call;
	if (X.call_depth && X.hang_armed && X.vnow - X.call_start > X.hang_ms) {
		x_fail("(d) %s did not return within %" PRIu64 " virtual ms (a livelock?)",
		       X.call_name, X.hang_ms);
		X.hang_armed = false;
		longjmp(X.hang, 1);
	}
	return X.vnow;
}

void x_call_begin(const char *name)
{
	if (X.call_depth++)
		return;
	X.call_start = X.vnow;
	X.call_name = name;
}

/* Virtual time passes inside a call (a sleep): the same bound as vclock. */
void x_time_passes(uint64_t ms)
{
	X.vnow += ms;
	if (X.call_depth && X.hang_armed && X.vnow - X.call_start > X.hang_ms) {
		x_fail("(d) %s did not return within %" PRIu64 " virtual ms (it sleeps on)",
		       X.call_name, X.hang_ms);
		X.hang_armed = false;
		longjmp(X.hang, 1);
	}
}

void x_call_end(void)
{
	uint64_t took;

	if (--X.call_depth)
		return;
	took = X.vnow - X.call_start;
	if (took > X.max_call_ms)
		X.max_call_ms = took;
	if (took > X.bound_ms)
		x_fail("(d) %s took %" PRIu64 " virtual ms, bound %" PRIu64, X.call_name, took,
		       X.bound_ms);
}

/* An assert() inside the library (it should not have any on input it
 * did not create): a failure of this seed; the range goes on. */
static sigjmp_buf abort_jmp;
static volatile sig_atomic_t abort_armed;

static void on_abort(int sig)
{
	(void)sig;
	if (!abort_armed)
		return;
	abort_armed = 0;
	siglongjmp(abort_jmp, 1);
}

/* ---- commands ---- */

struct xcmd *x_cmd(uint32_t id)
{
	return id && id <= X.ncmds ? &X.cmds[id - 1] : NULL;
}

uint32_t x_cmd_new(uint8_t kind)
{
	if (X.ncmds == X.cap_cmds) {
		uint32_t cap = X.cap_cmds ? 2 * X.cap_cmds : 1024;
		struct xcmd *c = realloc(X.cmds, cap * sizeof(*c));

		if (!c) {
			fprintf(stderr, "explore: out of memory\n");
			exit(2);
		}
		X.cmds = c;
		X.cap_cmds = cap;
	}
	memset(&X.cmds[X.ncmds], 0, sizeof(X.cmds[0]));
	X.cmds[X.ncmds].kind = kind;
	return ++X.ncmds;
}

/* ---- (g) and (e) ---- */

static bool heap_used(const void *p, size_t len)
{
	const struct upcie_dma_heap *h = X.heap;
	uintptr_t off = (uintptr_t)p - (uintptr_t)h->va;

	if ((uintptr_t)p < (uintptr_t)h->va || off + len > h->len)
		return true; /* another segment: not judged */
	for (size_t i = 0; i < h->nblocks; i++) {
		const struct upcie_dma_block *b = &h->blocks[i];

		if (off >= b->off && off + len <= b->off + b->len)
			return b->used;
	}
	return false;
}

static void check_queue_memory(void)
{
	for (unsigned i = 0; i < X_QPAIRS; i++) {
		struct upcie_nvme_qpair *qp = X.q[i].qp;

		if (!qp)
			continue;
		if (!heap_used(qp->sq, 64) || !heap_used(qp->cq, 16))
			x_fail("(g) q%u (qid %u): its SQ or CQ memory is free in the heap", i,
			       qp->qid);
		if (qp->shadow_sq && (!heap_used((const void *)qp->shadow_sq, 4) ||
				      !heap_used((const void *)qp->shadow_cq, 4) ||
				      !heap_used((const void *)qp->eventidx_sq, 4) ||
				      !heap_used((const void *)qp->eventidx_cq, 4)))
			x_fail("(g) q%u (qid %u) writes shadow doorbells into memory the heap has "
			       "free (the controller's are %p/%p)",
			       i, qp->qid, X.ctrl->dbbuf_shadow, X.ctrl->dbbuf_eventidx);
	}
}

void x_check_counts(void)
{
	for (unsigned i = 0; i < X_QPAIRS; i++) {
		struct xq *q = &X.q[i];
		uint32_t lib;

		if (!q->qp)
			continue;
		lib = upcie_nvme_qpair_outstanding(q->qp);
		if (lib != q->live)
			x_fail("(e) q%u (qid %u): the library counts %u outstanding, the explorer "
			       "%u",
			       i, q->qp->qid, lib, q->live);
	}
}

/* ---- one seed ---- */

static void setup(void)
{
	struct upcie_sim_config cfg;
	struct upcie_pci_opts po = {0};

	upcie_sim_config_default(&cfg);
	cfg.to = 1; /* CAP.TO 500 ms */
	/* The model has a vector per queue id: X_VECTORS. */
	cfg.max_ioqpairs = X_VECTORS - 1;
	cfg.mqes = 255;
	cfg.dbbuf = x_chance(800);
	cfg.ns[0].nlbas = 1024;
	cfg.ns[1].nlbas = 256;
	/* Namespace 2 with 8 bytes of PI (type from the seed, not from the
	 * PRNG, so other seeds' streams stay as they were), separate or
	 * extended: its I/O goes through read/write_ext with PRACT. */
	X.pi = (X.off & XF_PI) ? 0 : (uint8_t)(X.seed % 4);
	if (X.pi) {
		cfg.ns[1].ms = 8;
		cfg.ns[1].pi = X.pi;
		cfg.ns[1].md_flags = X.seed % 8 >= 4 ? UPCIE_SIM_MD_EXTENDED : 0;
		/* Every other such seed: the 64-bit guard format (16 bytes of
		 * PI, 48-bit reference tags). */
		if (X.seed / 8 % 2) {
			cfg.ns[1].ms = 16;
			cfg.ns[1].md_flags |= UPCIE_SIM_MD_GUARD64;
		}
	}
	/* Half of the seeds with separate PI (from the seed again): the model
	 * offers metadata SGLs, and some of namespace 2's I/O brings its PI
	 * from metadata buffers in pieces (md.c). */
	X.md_sgl = X.pi && !(cfg.ns[1].md_flags & UPCIE_SIM_MD_EXTENDED) && X.seed / 16 % 2 &&
		   !(X.off & XF_MDSGL);
	X.dbbuf = cfg.dbbuf;
	X.sim = upcie_sim_create(&cfg);
	if (X.sim && X.md_sgl && upcie_sim_set_md_sgl(X.sim, true)) {
		fprintf(stderr, "explore: %s\n", upcie_errmsg());
		exit(2);
	}
	po.sim = X.sim;
	/* In a DMA context, with a peer controller on the same heap (peer.c). */
	if (!(X.off & XF_PEER)) {
		X.ctx = upcie_dma_ctx_create(0);
		po.dma_ctx = X.ctx;
	}
	X.dev = X.sim ? upcie_pci_open("sim", &po) : NULL;
	X.heap = X.dev ? upcie_dma_heap_create(X.dev, 4u << 20, UPCIE_DMA_NO_HUGEPAGES) : NULL;
	if (!X.heap) {
		fprintf(stderr, "explore: cannot set up the sim: %s\n", upcie_errmsg());
		exit(2);
	}
	upcie_sim_set_dma_hook(X.sim, x_dma_hook, NULL);
	X.copts = (struct upcie_nvme_ctrl_opts){
	    .admin_timeout_ms = 40,
	    .io_timeout_ms = 60 + 20 * x_below(4),
	    .health_ms = 20 + 10 * x_below(3),
	    .no_dbbuf = x_chance(100),
	};
	/* Coalescing: by count, by time, both (or neither). */
	if (!(X.off & XF_COALESCE) && x_chance(300)) {
		X.copts.irq_aggr = (uint16_t)(x_chance(700) ? 2 + x_below(6) : 0);
		X.copts.irq_aggr_us = (uint16_t)(x_chance(700) ? 50 + x_below(400) : 0);
	}
	X.cap_to_ms = 500;
	X.per_call = 5;
	/* A poll may expire commands (Abort, wait, reset), and each lost admin
	 * command inside may cost an admin timeout and a reset. */
	X.bound_ms = 2 * X.cap_to_ms + 24 * X.copts.admin_timeout_ms;
	X.hang_ms = 50 * X.bound_ms;
	X.nr_active_ns = 2;
	for (uint32_t n = 0; n < X_NS; n++)
		for (uint32_t b = 0; b < X_BLOCKS; b++)
			X.blk[n][b] = (struct xblock){
			    .n = 1, .e[0] = {.token = 0, .sub = 0, .cpl = 0, .ok = true}};
	x_md_setup();
	X.fd_before_open = x_fd_count();
	x_call_begin("upcie_nvme_ctrl_open");
	X.ctrl = upcie_nvme_ctrl_open(X.dev, X.heap, &X.copts);
	x_call_end();
	X.fd_after_open = x_fd_count();
	if (!X.ctrl) {
		fprintf(stderr, "explore: seed %" PRIu64 ": open failed: %s\n", X.seed,
			upcie_errmsg());
		exit(2);
	}
	X.admin_buf = upcie_dma_alloc(X.heap, 4096, 4096);
	/* The explorer's own memory, registered: some buffers come from it. */
	for (unsigned r = 0; r < X_REGS && !(X.off & XF_REG); r++) {
		X.reg[r].mem = mmap(NULL, X_REG_BYTES, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (X.reg[r].mem == MAP_FAILED ||
		    upcie_dma_register(X.heap, X.reg[r].mem, X_REG_BYTES)) {
			fprintf(stderr, "explore: cannot register memory: %s\n", upcie_errmsg());
			exit(2);
		}
		X.reg[r].on = true;
	}
	for (unsigned i = 0; i < X_QPAIRS; i++)
		if (i < 2 || x_chance(500))
			x_qpair_create(i);
	x_peer_setup();
}

/* Commands outstanding on queues that are not zombies (a zombie's wait for
 * the next reset or close, by design). */
static uint32_t live_not_zombie(void)
{
	uint32_t n = 0;

	for (uint32_t id = 1; id <= X.ncmds; id++)
		n += x_cmd(id)->state == X_LIVE && !x_cmd(id)->zombie;
	return n;
}

/* Let everything finish: faults off, held commands run, polls until the
 * explorer counts nothing outstanding (timeouts and resets included). What
 * is still outstanding then, but on a zombie, is a command the library
 * lost track of. */
static void drain(void)
{
	X.closing = true;
	x_trace("drain");
	if (!X.removed)
		upcie_sim_fault(X.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	upcie_sim_release_held(X.sim);
	for (unsigned it = 0; it < 4000 && live_not_zombie() && !X.failed; it++) {
		X.vnow += 3;
		upcie_sim_step(X.sim);
		for (unsigned i = 0; i < X_QPAIRS; i++)
			if (X.q[i].qp)
				x_poll(i, 64);
		x_call_begin("upcie_nvme_admin_poll");
		upcie_nvme_admin_poll(X.ctrl);
		x_call_end();
		x_check_counts();
	}
	if (!X.failed && live_not_zombie())
		x_fail("(a) %u commands still outstanding after the drain (faults off, every "
		       "timeout long past)",
		       live_not_zombie());
}

/* (f) */
static void finish(void)
{
	struct upcie_dma_heap_info hi;
	uint32_t zombies = 0, used = 0;
	int rc;

	drain();
	if (X.failed)
		return;
	x_peer_finish();
	if (X.failed)
		return;
	for (unsigned i = 0; i < X_QPAIRS; i++) {
		struct upcie_nvme_qpair *qp = X.q[i].qp;

		if (!qp)
			continue;
		if (qp->nfree != (uint32_t)qp->depth - 1 &&
		    upcie_nvme_qpair_outstanding(qp) == X.q[i].live && !X.q[i].live)
			x_fail("(f) q%u: %u CIDs not free with nothing outstanding", i,
			       qp->depth - 1 - qp->nfree);
		x_qpair_destroy(i);
	}
	for (struct upcie_nvme_qpair *z = X.ctrl->zombies; z; z = z->next)
		zombies++;
	for (uint32_t q = 1; q <= X.ctrl->io_sq_granted && q <= X.ctrl->io_cq_granted; q++)
		used += X.ctrl->qid_used[q];
	if (used != zombies)
		x_fail("(f) %u qids in use after every qpair was destroyed (%u zombies)", used,
		       zombies);
	x_call_begin("upcie_nvme_ctrl_close");
	rc = upcie_nvme_ctrl_close(X.ctrl);
	x_call_end();
	X.ctrl = NULL;
	x_trace("close: %d", rc);
	if (rc && !X.removed)
		x_fail("(f) close returned %d (%s) for a device that is still there", rc,
		       upcie_errmsg());
	if (X.fd_start >= 0 && x_fd_count() != X.fd_before_open)
		x_fail("(k) %d fds open after close, %d before the controller was opened",
		       x_fd_count(), X.fd_before_open);
	for (uint32_t id = 1; id <= X.ncmds; id++) {
		struct xcmd *c = x_cmd(id);

		if (c->state == X_LIVE) {
			x_fail("(a) command %u (%s, q%u cid %u, submitted seq %" PRIu64
			       ") never completed, not even at close",
			       id,
			       c->kind == X_READ    ? "read"
			       : c->kind == X_WRITE ? "write"
						    : "admin",
			       c->q, c->cid, c->sub_seq);
			break;
		}
	}
	upcie_dma_heap_info(X.heap, &hi);
	if (hi.allocations != X.nheap_slots + 1 + x_peer_allocs())
		x_fail("(f) the heap holds %zu allocations after close; the explorer holds %u",
		       hi.allocations, X.nheap_slots + 1 + x_peer_allocs());
	/* Every command ended: each region that is on can go. */
	for (unsigned r = 0; r < X_REGS; r++)
		if (X.reg[r].on && (rc = upcie_dma_unregister(X.heap, X.reg[r].mem, X_REG_BYTES)))
			x_fail("(f) unregister of region %u after close: %d (%s)", r, rc,
			       upcie_errmsg());
		else
			X.reg[r].on = false;
}

static void teardown(void)
{
	if (X.sim)
		upcie_sim_set_dma_hook(X.sim, NULL, NULL);
	x_peer_teardown();
	if (!X.failed && !X.ctrl) {
		for (uint32_t i = 0; i < X.nslots; i++)
			if (!X.slots[i].reg)
				upcie_dma_free(X.heap, X.slots[i].buf);
		upcie_dma_free(X.heap, X.admin_buf);
	}
	/* After a failure the controller is left as it is (the library may be
	 * inconsistent); the heap, device and model go. */
	/* Regions still on (a failed run) are released by the destroy. */
	upcie_dma_heap_destroy(X.heap);
	x_md_teardown();
	for (unsigned r = 0; r < X_REGS; r++)
		if (X.reg[r].mem)
			munmap(X.reg[r].mem, X_REG_BYTES);
	upcie_pci_close(X.dev);
	upcie_sim_destroy(X.sim);
	/* The context goes with the heap and the device (after a failure the
	 * heap, refused with controllers open, keeps it). */
	upcie_dma_ctx_destroy(X.ctx);
	free(X.cmds);
}

static uint64_t steps_for(uint64_t seed)
{
	uint64_t s = seed ^ 0x5eed5eed5eedull;

	return 300 + splitmix(&s) % 700;
}

static bool run_seed(uint64_t seed, uint64_t steps, bool verbose, bool show, uint32_t off)
{
	uint64_t s = seed;

	memset(&X, 0, sizeof(X));
	X.seed = seed;
	X.verbose = verbose;
	X.off = off;
	for (int i = 0; i < 4; i++)
		X.rng.s[i] = splitmix(&s);
	X.steps = steps ? steps : steps_for(seed);
	X.vnow = 1000;
	X.fd_start = x_fd_count();
	upcie_test_clock_ms = vclock;
	X.vtime = true;
	if (setjmp(X.hang)) {
		X.call_depth = 0;
		goto out;
	}
	if (sigsetjmp(abort_jmp, 1)) {
		x_fail("the library aborted (an assert; see stderr) inside %s",
		       X.call_depth ? X.call_name : "a call");
		X.call_depth = 0;
		goto out;
	}
	abort_armed = 1;
	X.hang_armed = true;
	setup();
	for (X.step = 1; X.step <= X.steps && !X.failed; X.step++) {
		X.cb_resets = 0;
		x_step();
		x_check_counts();
		check_queue_memory();
		x_irq_check_all();
		x_peer_check();
	}
	if (!X.failed) {
		X.step = X.steps;
		finish();
	}
out:
	X.hang_armed = false;
	abort_armed = 0;
	teardown();
	X.vtime = false;
	upcie_test_clock_ms = NULL;
	if (!X.failed && X.fd_start >= 0 && x_fd_count() != X.fd_start)
		x_fail("(k) %d fds open after the seed, %d before it", x_fd_count(), X.fd_start);
	if (X.failed && show)
		report();
	else if (X.failed)
		printf("FAIL seed %" PRIu64 " step %" PRIu64 ": %s\n", X.seed, X.fail_step, X.why);
	return !X.failed;
}

static const char *const feature_names[] = {
    "retry",	"cbreset",   "drop",	  "nth",	"hold",	    "abortlost", "delrefused",
    "cfs",	"dup",	     "stale",	  "foreign",	"adminopc", "removed",	 "reset",
    "ns",	"destroy",   "dbbuffail", "retryabort", "irq",	    "irqlost",	 "irqspurious",
    "coalesce", "meanwhile", "pi",	  "reg",	"peer",	    "mdsgl",
};

static uint32_t parse_features(char *list)
{
	uint32_t off = 0;

	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		unsigned i;

		for (i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
			if (!strcmp(t, feature_names[i]))
				break;
		if (i == sizeof(feature_names) / sizeof(feature_names[0])) {
			fprintf(stderr, "explore: unknown feature '%s'\n", t);
			exit(2);
		}
		off |= 1u << i;
	}
	return off;
}

static void usage(void)
{
	fprintf(stderr, "usage: explore --seed S [--steps N] [-v]\n"
			"       explore --seeds A-B [--steps N] [--show K]\n"
			"  --no f1,f2  leave features out: retry cbreset drop nth hold abortlost\n"
			"              delrefused cfs dup stale foreign adminopc removed reset ns\n"
			"              destroy dbbuffail retryabort irq irqlost irqspurious\n"
			"              coalesce meanwhile pi reg peer\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct xopts o = XOPTS_DEFAULT;
	uint64_t fails = 0, total_steps = 0, max_call = 0;
	uint64_t waits = 0, arms = 0, sleeps = 0, woken = 0, meanwhile = 0;
	uint64_t reg_io = 0, reg_toggles = 0, unreg_busy = 0, md_io = 0;
	uint32_t off = 0;

	for (int i = 1; i < argc; i++) {
		if (xopts_arg(&o, argc, argv, &i))
			continue;
		if (!strcmp(argv[i], "--no") && i + 1 < argc)
			off |= parse_features(argv[++i]);
		else
			usage();
	}
	if (o.b < o.a)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGABRT, on_abort);
	for (uint64_t seed = o.a; seed <= o.b; seed++) {
		bool ok = run_seed(seed, o.steps, o.verbose, !o.range || fails < o.show, off);

		fails += !ok;
		total_steps += X.failed ? X.fail_step : X.steps;
		if (X.max_call_ms > max_call)
			max_call = X.max_call_ms;
		waits += X.n_waits;
		arms += X.n_arms;
		sleeps += X.n_sleeps;
		woken += X.n_woken;
		meanwhile += X.n_meanwhile;
		reg_io += X.n_reg_io;
		md_io += X.n_md_io;
		reg_toggles += X.n_reg_toggles;
		unreg_busy += X.n_unreg_busy;
	}
	printf("explore: seeds %" PRIu64 "-%" PRIu64 ": %" PRIu64 " seeds, %" PRIu64
	       " steps, %" PRIu64 " failed; longest call %" PRIu64 " virtual ms\n",
	       o.a, o.b, o.b - o.a + 1, total_steps, fails, max_call);
	printf("explore: interrupts: %" PRIu64 " waits, %" PRIu64 " arms, %" PRIu64
	       " sleeps (%" PRIu64 " woken), %" PRIu64 " actions of the device or another "
	       "thread inside them\n",
	       waits, arms, sleeps, woken, meanwhile);
	printf("explore: registered memory: %" PRIu64 " commands on it, %" PRIu64
	       " registers and unregisters (%" PRIu64 " unregisters refused: in use)\n",
	       reg_io, reg_toggles, unreg_busy);
	printf("explore: metadata from buffers in pieces (metadata SGLs): %" PRIu64 " commands\n",
	       md_io);
	x_peer_report();
	return fails ? 1 : 0;
}
