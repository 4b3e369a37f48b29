/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The preload's explorer: one seeded PRNG drives the I/O layer of
 * libupcie-preload (io.c, reg.c, aio.c, linked in; map.c's part is played
 * here by a one-device, three-file table) against the stepped sim, with
 * faults at random steps, and checks invariants after every step.
 *
 *   explore-preload --seed S [--steps N] [-v]   one seed (replays exactly)
 *   explore-preload --seeds A-B [--steps N]      a range
 *
 * Actions: pread / pwrite / preadv / pwritev (pl_rw, pl_rwv) of aligned and
 * misaligned sizes, offsets and buffers on an O_DIRECT, a buffered and an
 * O_SYNC file; fsync, discard and zero-out; io_setup / io_submit /
 * io_getevents (partial reaping) / io_destroy with requests in flight;
 * free() or munmap of a buffer (pl_reg_invalidate), also under an aio
 * request; faults: a controller reset, a dropped completion (the library's
 * timeout and Abort recover it), an error status on the nth command.
 * Buffers: P_BUFS mappings of their own (more than PL_MAX_REGS, so the
 * registration cache evicts), addressed aligned or not (those bounce).
 *
 * Invariants:
 *   (a) every aio request ends exactly once: one event, with its length or
 *       a negative errno, or none after io_destroy took its context
 *   (b) no device transfer touches a buffer that no request uses (an aio
 *       request in flight, or the synchronous call running)
 *   (c) data: every byte read is what one of the block's candidates holds
 *       (the last completed write, or writes in flight or failed over it)
 *   (d) no call hangs: a call that polls more than P_POLL_LIMIT times
 *       fails the seed (its trace is printed and the run stops)
 *   (e) no I/O error (nor a short count) without a fault in the call's
 *       lifetime: an armed fault, a reset (asked for, or the library's
 *       recovery of a lost completion), or a controller a reset under a
 *       fault left failed (the explorer resets it, as an administrator
 *       would, once the faults are off)
 *   (r) the heap's registered regions are the cache's, every step; no
 *       region is pinned beyond the requests in flight; a released buffer
 *       has no live region (one under a request is doomed); none is left
 *       when the device closes
 *
 * A failure prints the seed, the step and the last trace lines. Time is
 * virtual (the library's clock, CLOCK_MONOTONIC), and every poll steps the
 * model, so a seed replays exactly.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "nvme/queue.h"
#include "preload.h"
#include "xrng.h"
#include "xrun.h"

typedef struct io_context *io_context_t;
int io_setup(int maxevents, io_context_t *ctxp);
int io_submit(io_context_t ctx, long nr, struct iocb **iocbs);
int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
		 struct timespec *timeout);
int io_destroy(io_context_t ctx);

#define P_LBS	     512u
#define P_BLOCKS     64u /* the namespace: small, so I/O overlaps */
#define P_CANDS	     16u /* candidates per block */
#define P_BUFS	     80u /* > PL_MAX_REGS */
#define P_MAP	     (16u << 10)
#define P_MAX_IO     (8u * P_LBS)
#define P_CTXS	     2u
#define P_IOCBS	     48u
#define P_POLL_LIMIT 200000u
#define P_TRACE	     64u
#define P_SHOWN	     30u
#define P_INF	     UINT64_MAX
#define P_FD0	     100 /* fds of the three files */

enum { F_DIRECT, F_BUFFERED, F_SYNC, P_FILES };

struct pcand {
	uint64_t sub, cpl; /* sequence numbers; cpl P_INF while in flight */
	bool ok;
	uint8_t img[P_LBS];
};

struct pblk {
	uint32_t n, pending;
	uint64_t last_wsub;
	uint64_t any_after; /* nonzero: unknown content (a failed partial write
			       completed at this seq); a later whole write clears it */
	struct pcand c[P_CANDS];
};

struct pbuf {
	uint8_t *map;	/* its own mapping, P_MAP bytes */
	uint32_t users; /* aio requests using it */
	bool released;	/* freed under a request: unmapped once it ends */
};

struct preq {
	bool live;
	unsigned ctx, buf, file;
	bool write, vec, expect_einval;
	uint8_t *data;
	size_t len;
	uint64_t off, sub, sub_step, seq_w, resets;
	struct iovec iov[3];
	struct iocb cb;
	uint32_t pend[P_MAX_IO / P_LBS + 2]; /* writes in flight per block at submission */
};

static struct {
	uint64_t seed, step, steps, seq;
	struct xrng rng;
	bool verbose, failed, no_faults;
	uint64_t fail_step;
	char why[512];
	char trace[P_TRACE][200];
	uint64_t ntrace;

	/* time and the hang bound */
	uint64_t vns;
	uint64_t polls;

	/* faults: an I/O error is allowed while one is armed, or for an
	 * operation in flight when the last one ended */
	bool fault_armed;
	unsigned sync_buf[2]; /* the buffers of the synchronous call running */
	bool dead;	      /* the controller is failed (a reset under a fault did not work) */
	uint64_t fault_end_step;
	uint64_t fault_off_at; /* step the armed fault is cleared */

	struct upcie_sim *sim;
	struct upcie_pci_dev *pdev;
	struct upcie_dma_heap *heap;
	struct pl_dev dev;
	struct pl_map map;
	struct pl_file files[P_FILES];

	struct pblk blk[P_BLOCKS];
	struct pbuf bufs[P_BUFS];
	uint8_t scratch[P_MAX_IO + 8 * P_LBS];

	/* the kernel's rings as aio.c reads them (id, nr, head, tail, magic):
	 * new ones every seed, and those of a failed seed are never given
	 * back, so that no context of an earlier seed is found again */
	unsigned *rings[P_CTXS];
	io_context_t ctx[P_CTXS];
	bool ctx_on[P_CTXS];
	struct preq req[P_IOCBS];

	/* report */
	uint64_t n_rw, n_aio, n_events, n_destroy_inflight, n_released_busy, n_faults, n_errors,
	    n_evicting;
} P;

/* ---- trace, failure, report ---- */

static void ptrace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ptrace(const char *fmt, ...)
{
	char *line = P.trace[P.ntrace++ % P_TRACE];
	va_list ap;
	int n = snprintf(line, 200, "%5" PRIu64 " ", P.step);

	va_start(ap, fmt);
	vsnprintf(line + n, 200 - (size_t)n, fmt, ap);
	va_end(ap);
	if (P.verbose)
		printf("  %s\n", line);
}

static void report(void)
{
	char replay[64];

	snprintf(replay, sizeof(replay), "explore-preload --seed %" PRIu64 " -v", P.seed);
	xreport(P.seed, P.fail_step, P.steps, P.why, P.trace[0], sizeof(P.trace[0]), P_TRACE,
		P.ntrace, P_SHOWN, "", replay);
}

static void pfail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pfail(const char *fmt, ...)
{
	va_list ap;

	if (P.failed)
		return;
	P.failed = true;
	P.fail_step = P.step;
	va_start(ap, fmt);
	vsnprintf(P.why, sizeof(P.why), fmt, ap);
	va_end(ap);
	ptrace("FAIL: %s", P.why);
}

static uint32_t below(uint32_t n)
{
	return xrng_below(&P.rng, n);
}

static bool chance(uint32_t per_mille)
{
	return below(1000) < per_mille;
}

/* ---- the virtual clock, and the sim stepped by every poll (d) ---- */

static uint64_t vclock_ms(void)
{
	P.vns += 10000;
	return P.vns / 1000000;
}

int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
	if (id != CLOCK_MONOTONIC || !P.sim)
		return __real_clock_gettime(id, ts);
	P.vns += 10000;
	ts->tv_sec = (time_t)(P.vns / 1000000000);
	ts->tv_nsec = (long)(P.vns % 1000000000);
	return 0;
}

int __real_upcie_nvme_poll(struct upcie_nvme_qpair *qp, uint32_t max);
int __wrap_upcie_nvme_poll(struct upcie_nvme_qpair *qp, uint32_t max);
int __wrap_upcie_nvme_poll(struct upcie_nvme_qpair *qp, uint32_t max)
{
	int rc;

	if (++P.polls > P_POLL_LIMIT) {
		/* a call that does not end: nothing can be unwound from inside
		 * the library (its locks are held), so the run stops here */
		pfail("(d) a call polled %u times without ending (a hang)", P_POLL_LIMIT);
		report();
		exit(1);
	}
	P.vns += 100000; /* 0.1 ms a poll */
	upcie_sim_step(P.sim);
	rc = __real_upcie_nvme_poll(qp, max);
	if (rc < 0)
		ptrace("  poll: %d (%s)", rc, upcie_errmsg());
	if (rc == -ENOTRECOVERABLE)
		P.dead = true; /* a reset under a fault failed: errors until one works */
	return rc;
}

/* ---- what map.c does in the library: one device, three files ---- */

pid_t pl_pid;
pthread_mutex_t pl_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void pl_msg(const char *fmt, ...)
{
	char line[180];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ptrace("  msg: %s", line);
}

struct pl_file *pl_get(int fd)
{
	return fd >= P_FD0 && fd < P_FD0 + P_FILES ? &P.files[fd - P_FD0] : NULL;
}

int pl_check_owner(struct pl_file *f, const char *what)
{
	(void)f;
	(void)what;
	return 0;
}

void pl_dev_unuse(struct pl_dev *d)
{
	d->opens--;
}

struct pl_dev *pl_devs_for_reg(unsigned *n)
{
	*n = P.sim ? 1 : 0;
	return &P.dev;
}

/* libaio's own functions, as aio.c finds them: a ring with no events. */
static int fake_setup(int nr, io_context_t *ctxp)
{
	(void)nr;
	(void)ctxp;
	return 0; /* the explorer hands out the ring itself */
}

static int fake_getevents(io_context_t c, long min_nr, long nr, struct io_event *e,
			  struct timespec *t)
{
	(void)c, (void)min_nr, (void)nr, (void)e, (void)t;
	return 0;
}

static int fake_destroy(io_context_t c)
{
	(void)c;
	return 0;
}

void *pl_next(const char *name)
{
	if (!strcmp(name, "io_setup"))
		return (void *)fake_setup;
	if (!strcmp(name, "io_getevents"))
		return (void *)fake_getevents;
	if (!strcmp(name, "io_destroy"))
		return (void *)fake_destroy;
	return NULL;
}

/* ---- the data oracle (c) ---- */

static uint8_t data_byte(uint64_t w, uint64_t pos)
{
	uint64_t s = w * 0x9e3779b97f4a7c15ull ^ (pos + 1) * 0xbf58476d1ce4e5b9ull;

	return (uint8_t)(s >> 56 ^ s >> 23);
}

static void prune(struct pblk *b)
{
	uint64_t newest = 0;

	for (uint32_t i = 0; i < b->n; i++)
		if (b->c[i].ok && b->c[i].cpl != P_INF && b->c[i].sub > newest)
			newest = b->c[i].sub;
	for (uint32_t i = 0; i < b->n;)
		if (b->c[i].cpl != P_INF && b->c[i].cpl < newest)
			b->c[i] = b->c[--b->n];
		else
			i++;
	if (b->any_after && newest > b->any_after)
		b->any_after = 0;
}

/* Room for one more candidate in every block of [off, off + len). */
static bool room(uint64_t off, size_t len)
{
	for (uint64_t k = off / P_LBS; k < (off + len + P_LBS - 1) / P_LBS; k++)
		if (P.blk[k].n >= P_CANDS - 1)
			return false;
	return true;
}

/* A write of data over [off, off + len) begins: each block gets a candidate
 * (a partial block: the one it had, patched, or unknown if it had more). */
static uint64_t w_begin(uint64_t off, size_t len, const uint8_t *data)
{
	uint64_t sub = ++P.seq;

	for (uint64_t k = off / P_LBS; k < (off + len + P_LBS - 1) / P_LBS; k++) {
		struct pblk *b = &P.blk[k];
		uint64_t b0 = k * P_LBS, u0 = off > b0 ? off : b0;
		uint64_t u1 = off + len < b0 + P_LBS ? off + len : b0 + P_LBS;
		struct pcand *c = &b->c[b->n];

		if (u1 - u0 < P_LBS) {
			if (b->n != 1 || b->pending || b->any_after) {
				b->any_after = P_INF; /* until this write completes */
				continue;
			}
			memcpy(c->img, b->c[0].img, P_LBS);
		}
		memcpy(c->img + (u0 - b0), data + (u0 - off), u1 - u0);
		c->sub = sub;
		c->cpl = P_INF;
		c->ok = false;
		b->n++;
		b->pending++;
		b->last_wsub = sub;
	}
	return sub;
}

/* torn: a failed write may have left a block half old, half new (the
 * pieces of a misaligned vector, each read-modify-written on its own). */
static void w_end_torn(uint64_t off, size_t len, uint64_t sub, bool ok, bool torn)
{
	uint64_t cpl = ++P.seq;

	for (uint64_t k = off / P_LBS; k < (off + len + P_LBS - 1) / P_LBS; k++) {
		struct pblk *b = &P.blk[k];
		bool found = false;

		for (uint32_t i = 0; i < b->n; i++)
			if (b->c[i].sub == sub) {
				b->c[i].cpl = cpl;
				b->c[i].ok = ok;
				found = true;
			}
		if (found)
			b->pending--;
		if (b->any_after == P_INF || (!ok && !found))
			b->any_after = cpl; /* unknown until a later whole write */
		else if (!ok && (torn || off > k * P_LBS || off + len < (k + 1) * P_LBS))
			b->any_after = cpl; /* a failed partial write: anything in between */
		prune(b);
	}
}

static void w_end(uint64_t off, size_t len, uint64_t sub, bool ok)
{
	w_end_torn(off, len, sub, ok, false);
}

/* A read of [off, off + len) submitted at sequence rsub returned data: each
 * block without a write in flight then or since is checked. */
static void r_check(uint64_t off, size_t len, const uint8_t *data, uint64_t rsub,
		    const uint32_t *pending_at_sub, const char *what)
{
	for (uint64_t k = off / P_LBS; k < (off + len + P_LBS - 1) / P_LBS; k++) {
		struct pblk *b = &P.blk[k];
		uint64_t b0 = k * P_LBS, u0 = off > b0 ? off : b0;
		uint64_t u1 = off + len < b0 + P_LBS ? off + len : b0 + P_LBS;
		bool found = false;

		if (pending_at_sub[k - off / P_LBS] || b->pending || b->last_wsub > rsub ||
		    b->any_after)
			continue;
		for (uint32_t i = 0; i < b->n && !found; i++)
			found = !memcmp(b->c[i].img + (u0 - b0), data + (u0 - off), u1 - u0);
		if (!found)
			pfail("(c) %s of %zu bytes at %" PRIu64 ": block %" PRIu64 " bytes %" PRIu64
			      "-%" PRIu64 " match none of its %u candidates",
			      what, len, off, k, u0 - b0, u1 - b0, b->n);
	}
}

static void pending_snapshot(uint64_t off, size_t len, uint32_t *out)
{
	for (uint64_t k = off / P_LBS; k < (off + len + P_LBS - 1) / P_LBS; k++)
		out[k - off / P_LBS] = P.blk[k].pending;
}

/* Controller resets so far: each ends what is outstanding (a reset the
 * explorer asks for, or the library's recovery of a lost completion). */
static uint64_t resets(void)
{
	struct upcie_nvme_ctrl_info info;

	upcie_nvme_ctrl_info(P.dev.ctrl, &info);
	return info.resets;
}

/* (e): an error is allowed for an operation in flight while a fault was
 * armed, or across a reset. */
static bool error_allowed(uint64_t since_step, uint64_t resets_before)
{
	return P.fault_armed || P.dead || P.fault_end_step >= since_step ||
	       resets() != resets_before;
}

static void check_result(const char *what, long rc, long want, uint64_t since,
			 uint64_t resets_before)
{
	if (rc == want)
		return;
	/* a vector whose later piece failed: the count of what was done */
	if ((rc < 0 ? rc != -EINVAL : rc < want) && error_allowed(since, resets_before)) {
		P.n_errors++;
		return;
	}
	pfail("(e) %s returned %ld, expected %ld (no fault or reset since step %" PRIu64 ")", what,
	      rc, want, since);
}

/* ---- buffers ---- */

static void buf_map(unsigned i)
{
	P.bufs[i].map = mmap(NULL, P_MAP, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (P.bufs[i].map == MAP_FAILED) {
		perror("explore-preload: mmap");
		exit(2);
	}
}

/* The program gives the buffer's memory back (free or munmap). */
static void buf_unmap(unsigned i)
{
	pl_reg_invalidate(P.bufs[i].map, P_MAP);
	munmap(P.bufs[i].map, P_MAP);
	P.bufs[i].map = NULL;
}

/* A buffer for len bytes, not used by aio: aligned to a block, or not. */
static unsigned buf_pick_not(uint8_t **at, size_t len, bool aligned, unsigned not )
{
	static const size_t offs[] = {0, 512, 4096, 1024, 4, 8, 1, 100};
	unsigned i;

	do
		i = below(P_BUFS);
	while (P.bufs[i].users || P.bufs[i].released || i == not );
	*at = P.bufs[i].map + offs[aligned ? below(4) : below(8)];
	(void)len;
	return i;
}

static unsigned buf_pick(uint8_t **at, size_t len, bool aligned)
{
	return buf_pick_not(at, len, aligned, P_BUFS);
}

/* ---- (b): every device transfer, as the model makes it ---- */

/* A transfer touching one of the explorer's buffers must be for a request
 * that uses it: an aio request in flight, or the synchronous call running. */
static void dma_hook(void *arg, uint64_t bus, size_t len, bool to_host)
{
	uintptr_t a = (uintptr_t)bus, e = a + len;

	(void)arg;
	for (unsigned i = 0; i < P_BUFS; i++) {
		uintptr_t b0 = (uintptr_t)P.bufs[i].map, b1 = b0 + P_MAP;

		if (!P.bufs[i].map || e <= b0 || a >= b1)
			continue;
		if (!P.bufs[i].users && i != P.sync_buf[0] && i != P.sync_buf[1])
			pfail("(b) the device %s %zu bytes of buffer %u, which no request uses",
			      to_host ? "wrote" : "read", len, i);
	}
}

/* ---- synchronous calls ---- */

static void fill(uint8_t *p, size_t len, uint64_t w, uint64_t off)
{
	for (size_t k = 0; k < len; k++)
		p[k] = data_byte(w, off + k);
}

static void sync_rw(void)
{
	unsigned fi = below(P_FILES);
	struct pl_file *f = &P.files[fi];
	bool write = chance(500), aligned = fi == F_DIRECT || chance(500), vec = chance(300);
	size_t len = aligned ? P_LBS * (1 + below(P_MAX_IO / P_LBS)) : 1 + below(P_MAX_IO);
	uint64_t off = aligned ? P_LBS * (uint64_t)below(P_BLOCKS) : below(P_BLOCKS * P_LBS);
	uint32_t pend[P_MAX_IO / P_LBS + 2];
	struct iovec iov[3];
	int niov = 1;
	uint8_t *b;
	uint64_t sub = 0;
	long rc;

	if (off + len > P_BLOCKS * P_LBS)
		len = P_BLOCKS * P_LBS - off;
	if (write && !room(off, len))
		return;
	unsigned first = buf_pick(&b, len, aligned);

	P.sync_buf[0] = first;

	iov[0] = (struct iovec){b, len};
	if (vec && len >= 2 * P_LBS) {
		/* two or three pieces, from other buffers (registered or not) */
		size_t cut = aligned ? P_LBS * (1 + below((uint32_t)(len / P_LBS) - 1))
				     : 1 + below((uint32_t)len - 1);
		uint8_t *b2;

		P.sync_buf[1] = buf_pick_not(&b2, len - cut, aligned, first);
		iov[0].iov_len = cut;
		iov[1] = (struct iovec){b2, len - cut};
		niov = 2;
	}
	P.n_rw++;
	if (write) {
		uint64_t w = ++P.seq;
		size_t at = 0;

		fill(P.scratch, len, w, off);
		for (int k = 0; k < niov; k++) {
			memcpy(iov[k].iov_base, P.scratch + at, iov[k].iov_len);
			at += iov[k].iov_len;
		}
		sub = w_begin(off, len, P.scratch);
	} else {
		pending_snapshot(off, len, pend);
		sub = ++P.seq;
	}
	ptrace("%s%s %s %zu at %" PRIu64 " (%d pieces, buf %p)", write ? "pwrite" : "pread",
	       vec ? "v" : "",
	       fi == F_DIRECT ? "direct"
	       : fi == F_SYNC ? "sync"
			      : "buffered",
	       len, off, niov, (void *)b);
	uint64_t r0 = resets();

	P.polls = 0;
	rc = vec ? pl_rwv(f, iov, niov, off, write) : pl_rw(f, b, len, off, write);
	ptrace("  -> %ld", rc);
	P.sync_buf[0] = P.sync_buf[1] = P_BUFS;
	if (write) {
		w_end_torn(off, len, sub, rc == (long)len, niov > 1 && !aligned);
	} else if (rc == (long)len) {
		size_t at = 0;

		for (int k = 0; k < niov; k++) {
			memcpy(P.scratch + at, iov[k].iov_base, iov[k].iov_len);
			at += iov[k].iov_len;
		}
		r_check(off, len, P.scratch, sub, pend, write ? "write" : "read");
	}
	check_result(write ? "pwrite" : "pread", rc, (long)len, P.step, r0);
}

static void sync_other(void)
{
	struct pl_file *f = &P.files[below(2) ? F_DIRECT : F_SYNC];
	unsigned what = below(3);
	uint64_t off = P_LBS * (uint64_t)below(P_BLOCKS), sub;
	size_t len = P_LBS * (1 + below(8));
	int rc;

	if (what == 0) {
		uint64_t r0 = resets();

		ptrace("fsync");
		P.polls = 0;
		rc = pl_flush(f);
		check_result("fsync", rc, 0, P.step, r0);
		return;
	}
	if (off + len > P_BLOCKS * P_LBS)
		len = P_BLOCKS * P_LBS - off;
	if (!room(off, len))
		return;
	/* deallocated blocks read zeros (the model's DLFEAT), as Write Zeroes */
	memset(P.scratch, 0, len);
	sub = w_begin(off, len, P.scratch);
	uint64_t r0 = resets();

	ptrace("%s %zu at %" PRIu64, what == 1 ? "discard" : "zeroout", len, off);
	P.polls = 0;
	rc = pl_discard(f, off, len, what == 2);
	ptrace("  -> %d", rc);
	w_end(off, len, sub, rc == 0);
	check_result(what == 1 ? "discard" : "zeroout", rc, 0, P.step, r0);
}

/* ---- libaio ---- */

static void ctx_setup(unsigned k)
{
	if (!P.rings[k] && !(P.rings[k] = calloc(8, sizeof(unsigned)))) {
		fprintf(stderr, "explore-preload: out of memory\n");
		exit(2);
	}
	P.rings[k][0] = 0;
	P.rings[k][1] = 8 + below(24); /* nr */
	P.ctx[k] = (io_context_t)(void *)P.rings[k];
	io_setup((int)P.rings[k][1], &P.ctx[k]);
	P.ctx[k] = (io_context_t)(void *)P.rings[k];
	P.ctx_on[k] = true;
	ptrace("io_setup ctx%u nr %u", k, P.rings[k][1]);
}

static void req_end(struct preq *r, long res, bool destroyed)
{
	struct pbuf *b = &P.bufs[r->buf];
	bool want_ok = !r->expect_einval;

	r->live = false;
	b->users--;
	if (r->write) {
		w_end(r->off, r->len, r->seq_w, !destroyed && res == (long)r->len);
	} else if (!destroyed && res == (long)r->len && !b->released) {
		r_check(r->off, r->len, r->data, r->sub, r->pend, "aio read");
	}
	if (!destroyed) {
		if (r->expect_einval && res != -EINVAL)
			pfail("(a) misaligned O_DIRECT aio request ended with %ld, not -EINVAL",
			      res);
		else if (want_ok)
			check_result(r->write ? "aio write" : "aio read", res, (long)r->len,
				     r->sub_step, r->resets);
	}
	if (b->released && !b->users) {
		ptrace("  buffer %u: its last request ended, unmapped now", r->buf);
		buf_unmap(r->buf);
		buf_map(r->buf);
		b->released = false;
	}
}

static void aio_submit(void)
{
	unsigned k = below(P_CTXS), nr = 1 + below(4), n = 0;
	struct iocb *cbs[4];
	struct preq *taken[4];
	int rc;

	if (!P.ctx_on[k])
		ctx_setup(k);
	for (unsigned j = 0; j < nr; j++) {
		unsigned i, fi = chance(800) ? F_DIRECT : below(P_FILES);
		struct preq *r = NULL;
		bool aligned = fi != F_BUFFERED || chance(700);

		for (i = 0; i < P_IOCBS && !r; i++)
			if (!P.req[i].live)
				r = &P.req[i];
		if (!r)
			break;
		memset(r, 0, sizeof(*r));
		r->ctx = k;
		r->file = fi;
		r->write = chance(500);
		r->vec = chance(150);
		r->len = aligned ? P_LBS * (1 + below(P_MAX_IO / P_LBS)) : 1 + below(P_MAX_IO);
		r->off = aligned ? P_LBS * (uint64_t)below(P_BLOCKS) : below(P_BLOCKS * P_LBS);
		if (r->off + r->len > P_BLOCKS * P_LBS)
			r->len = P_BLOCKS * P_LBS - r->off;
		if (fi == F_DIRECT && chance(30)) {
			r->expect_einval = true; /* misaligned buffer */
			r->buf = buf_pick(&r->data, r->len, false);
			if (!((uintptr_t)r->data & (P_LBS - 1)))
				r->data += 1;
		} else {
			r->buf = buf_pick(&r->data, r->len, aligned);
		}
		if (r->write && !room(r->off, r->len))
			break;
		r->cb.aio_fildes = (uint32_t)(P_FD0 + (int)fi);
		r->cb.aio_data = (uint64_t)(r - P.req);
		r->cb.aio_offset = (int64_t)r->off;
		if (r->vec) {
			r->iov[0] = (struct iovec){r->data, r->len};
			r->cb.aio_lio_opcode = r->write ? IOCB_CMD_PWRITEV : IOCB_CMD_PREADV;
			r->cb.aio_buf = (uint64_t)(uintptr_t)r->iov;
			r->cb.aio_nbytes = 1;
		} else {
			r->cb.aio_lio_opcode = r->write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
			r->cb.aio_buf = (uint64_t)(uintptr_t)r->data;
			r->cb.aio_nbytes = r->len;
		}
		if (r->write && !r->expect_einval) {
			r->seq_w = ++P.seq;
			fill(r->data, r->len, r->seq_w, r->off);
			r->seq_w = w_begin(r->off, r->len, r->data);
		}
		if (!r->write)
			pending_snapshot(r->off, r->len, r->pend);
		r->sub = ++P.seq;
		r->sub_step = P.step;
		r->resets = resets();
		r->live = true;
		P.bufs[r->buf].users++;
		cbs[n] = &r->cb;
		taken[n++] = r;
		ptrace("  iocb %u: ctx%u %s%s %s %zu at %" PRIu64 " buf %u%s",
		       (unsigned)(r - P.req), k, r->write ? "write" : "read", r->vec ? "v" : "",
		       fi == F_DIRECT ? "direct"
		       : fi == F_SYNC ? "sync"
				      : "buffered",
		       r->len, r->off, r->buf, r->expect_einval ? " (misaligned)" : "");
	}
	if (!n)
		return;
	P.polls = 0;
	rc = io_submit(P.ctx[k], (long)n, cbs);
	ptrace("io_submit ctx%u %u -> %d", k, n, rc);
	P.n_aio += rc > 0 ? (uint64_t)rc : 0;
	if (rc < 0 && rc != -EAGAIN)
		pfail("(e) io_submit returned %d", rc);
	/* what was not taken never runs */
	for (unsigned j = rc > 0 ? (unsigned)rc : 0; j < n; j++) {
		struct preq *r = taken[j];

		if (r->write && !r->expect_einval)
			w_end(r->off, r->len, r->seq_w, false);
		r->live = false;
		P.bufs[r->buf].users--;
	}
}

static void aio_reap(void)
{
	unsigned k = below(P_CTXS), live = 0;
	struct io_event ev[8];
	struct timespec to = {0, 2000000};
	long nr = 1 + below(8), min_nr;
	int rc;

	if (!P.ctx_on[k])
		return;
	for (unsigned i = 0; i < P_IOCBS; i++)
		live += P.req[i].live && P.req[i].ctx == k;
	min_nr = below((uint32_t)(live < (unsigned)nr ? live : (unsigned)nr) + 1);
	bool forever = chance(200);

	ptrace("io_getevents ctx%u min %ld nr %ld (%u live)%s", k, min_nr, nr, live,
	       forever ? " no timeout" : "");
	P.polls = 0;
	rc = io_getevents(P.ctx[k], min_nr, nr, ev, forever ? NULL : &to);
	ptrace("  -> %d", rc);
	if (rc < 0) {
		pfail("(a) io_getevents returned %d", rc);
		return;
	}
	for (int e = 0; e < rc; e++) {
		uint64_t id = ev[e].data;
		struct preq *r = id < P_IOCBS ? &P.req[id] : NULL;

		P.n_events++;
		if (!r || !r->live || r->ctx != k || ev[e].obj != (uint64_t)(uintptr_t)&r->cb) {
			pfail("(a) event for iocb %" PRIu64 " that is not in flight on ctx%u", id,
			      k);
			return;
		}
		ptrace("  event iocb %" PRIu64 ": %lld", id, (long long)ev[e].res);
		req_end(r, (long)ev[e].res, false);
	}
}

static void aio_destroy(unsigned k)
{
	unsigned live = 0;
	int rc;

	if (!P.ctx_on[k])
		return;
	for (unsigned i = 0; i < P_IOCBS; i++)
		live += P.req[i].live && P.req[i].ctx == k;
	P.n_destroy_inflight += live;
	ptrace("io_destroy ctx%u (%u in flight)", k, live);
	P.polls = 0;
	rc = io_destroy(P.ctx[k]);
	ptrace("  -> %d", rc);
	if (rc)
		pfail("(a) io_destroy returned %d", rc);
	/* the kernel drops the events of a destroyed context: every request
	 * of it ended (its buffer is free again), unreported */
	for (unsigned i = 0; i < P_IOCBS; i++)
		if (P.req[i].live && P.req[i].ctx == k)
			req_end(&P.req[i], 0, true);
	P.ctx_on[k] = false;
}

/* ---- registration invariants (r) ---- */

static bool reg_overlaps(const void *va, size_t len, bool live_only)
{
	uintptr_t a0 = (uintptr_t)va, a1 = a0 + len;

	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		const struct pl_reg *g = &P.dev.regs[i];

		if (g->len && (!live_only || !g->doomed) && g->va < a1 && a0 < g->va + g->len)
			return true;
	}
	return false;
}

static void check_regs(void)
{
	struct upcie_dma_heap_info hi;
	unsigned n = 0, pins = 0, users = 0;

	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		n += P.dev.regs[i].len != 0;
		pins += P.dev.regs[i].pins;
	}
	for (unsigned i = 0; i < P_IOCBS; i++)
		users += P.req[i].live;
	upcie_dma_heap_info(P.heap, &hi);
	if (n != P.dev.nregs || hi.regions != P.dev.nregs)
		pfail("(r) the heap has %zu registered regions, the cache %u (%u slots in use)",
		      hi.regions, P.dev.nregs, n);
	if (pins > users)
		pfail("(r) %u pins on the cache's regions with %u aio requests in flight", pins,
		      users);
}

static void release_buffer(void)
{
	unsigned i = below(P_BUFS);
	struct pbuf *b = &P.bufs[i];

	if (b->released)
		return;
	if (b->users) {
		/* the program's mistake: memory freed under a request. It stays
		 * mapped here (the device would reach it), but every live
		 * registration of it must go now */
		ptrace("release buffer %u under %u aio requests", i, b->users);
		pl_reg_invalidate(b->map, P_MAP);
		b->released = true;
		P.n_released_busy++;
		if (reg_overlaps(b->map, P_MAP, true))
			pfail("(r) buffer %u was released but a live region still covers it", i);
		return;
	}
	ptrace("release buffer %u (%s)", i, chance(500) ? "free" : "munmap");
	buf_unmap(i);
	if (reg_overlaps(P.bufs[i].map ? P.bufs[i].map : (void *)1, 0, false))
		pfail("(r) unreachable");
	buf_map(i);
	if (reg_overlaps(b->map, P_MAP, false))
		pfail("(r) buffer %u: a region of the memory given back covers the new mapping", i);
}

/* ---- faults ---- */

static void fault(void)
{
	unsigned what = below(3);

	if (P.fault_armed)
		return; /* one at a time: a reset's own commands would meet it */
	P.n_faults++;
	if (what == 0) {
		int rc;

		ptrace("fault: controller reset");
		P.polls = 0;
		rc = upcie_nvme_ctrl_reset(P.dev.ctrl);
		ptrace("  -> %d", rc);
		if (rc)
			pfail("reset returned %d (%s)", rc, upcie_errmsg());
		P.fault_end_step = P.step;
		return;
	}
	if (what == 1) {
		ptrace("fault: the next completion is dropped");
		upcie_sim_fault(P.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	} else {
		uint32_t nth = 1 + below(4);

		ptrace("fault: command %u from now fails", nth);
		upcie_sim_fault(P.sim, UPCIE_SIM_FAULT_STATUS_NTH, nth, 0x0006);
	}
	P.fault_armed = true;
	P.fault_off_at = P.step + 5 + below(30);
}

static void faults_tick(void)
{
	if (P.dead && !P.fault_armed) {
		/* what an administrator does: reset it, with the faults off */
		int rc = upcie_nvme_ctrl_reset(P.dev.ctrl);

		ptrace("the controller is failed: reset -> %d", rc);
		if (rc)
			pfail("a reset with every fault off failed: %d (%s)", rc, upcie_errmsg());
		P.dead = false;
		P.fault_end_step = P.step;
	}
	if (P.fault_armed && P.step >= P.fault_off_at) {
		ptrace("faults off");
		upcie_sim_fault(P.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
		P.fault_armed = false;
		P.fault_end_step = P.step;
	}
}

/* ---- one seed ---- */

static void setup(void)
{
	struct upcie_sim_config cfg;
	struct upcie_pci_opts po = {0};
	struct upcie_nvme_ctrl_opts co = {
	    .admin_timeout_ms = 40,
	    .io_timeout_ms = 60 + 20 * below(3),
	    .health_ms = 30,
	};
	const struct upcie_nvme_ns *ns;

	upcie_sim_config_default(&cfg);
	cfg.to = 1;
	cfg.nr_ns = 1;
	cfg.ns[0].nlbas = P_BLOCKS;
	cfg.mdts = chance(500) ? 0 : 1; /* 8 KiB: long transfers split */
	P.sim = upcie_sim_create(&cfg);
	if (P.sim)
		upcie_sim_set_dma_hook(P.sim, dma_hook, NULL);
	po.sim = P.sim;
	P.pdev = P.sim ? upcie_pci_open("sim", &po) : NULL;
	P.heap = P.pdev ? upcie_dma_heap_create(P.pdev, 8u << 20, UPCIE_DMA_NO_HUGEPAGES) : NULL;
	P.dev.ctrl = P.heap ? upcie_nvme_ctrl_open(P.pdev, P.heap, &co) : NULL;
	ns = P.dev.ctrl ? upcie_nvme_ns_get(P.dev.ctrl, 1) : NULL;
	if (!ns) {
		fprintf(stderr, "explore-preload: cannot set up the sim: %s\n", upcie_errmsg());
		exit(2);
	}
	/* the device as map.c's dev_open leaves it */
	strcpy(P.dev.name, "sim");
	P.dev.heap = P.heap;
	P.dev.backend = UPCIE_PCI_BACKEND_SIM;
	P.dev.pid = pl_pid;
	P.dev.register_ok = true;
	P.dev.mps = 4096;
	P.dev.opens = P_FILES;
	strcpy(P.map.path, "/dev/explore0");
	P.map.dev = &P.dev;
	P.map.nsid = 1;
	for (unsigned i = 0; i < P_FILES; i++) {
		struct pl_file *f = &P.files[i];

		memset(f, 0, sizeof(*f));
		f->map = &P.map;
		f->dev = &P.dev;
		f->ns = upcie_nvme_ns_get(P.dev.ctrl, 1);
		f->lbs = P_LBS;
		f->size = P_BLOCKS * P_LBS;
		f->flags = O_RDWR | (i == F_DIRECT ? O_DIRECT : i == F_SYNC ? O_SYNC : 0);
		f->refs = 1;
		f->pid = pl_pid;
		pthread_mutex_init(&f->pos_lock, NULL);
	}
	for (unsigned k = 0; k < P_BLOCKS; k++) {
		memset(&P.blk[k], 0, sizeof(P.blk[k]));
		P.blk[k].n = 1; /* all zeros, from the start */
	}
	for (unsigned i = 0; i < P_BUFS; i++)
		buf_map(i);
}

static void finish(void)
{
	struct upcie_dma_heap_info hi;

	if (P.fault_armed)
		P.fault_end_step = P.step;
	P.fault_armed = false;
	upcie_sim_fault(P.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	for (unsigned k = 0; k < P_CTXS && !P.failed; k++) {
		if (P.ctx_on[k] && chance(500)) {
			/* reap everything first, then destroy */
			for (unsigned it = 0; it < 64 && !P.failed; it++) {
				unsigned live = 0;

				for (unsigned i = 0; i < P_IOCBS; i++)
					live += P.req[i].live && P.req[i].ctx == k;
				if (!live)
					break;
				struct io_event ev[8];
				struct timespec to = {0, 5000000};
				int rc = io_getevents(P.ctx[k], 1, 8, ev, &to);

				for (int e = 0; e < rc; e++)
					req_end(&P.req[ev[e].data], (long)ev[e].res, false);
			}
		}
		aio_destroy(k);
	}
	check_regs();
	for (unsigned i = 0; i < P_IOCBS && !P.failed; i++)
		if (P.req[i].live)
			pfail("(a) iocb %u still in flight after its context was destroyed", i);
	for (unsigned i = 0; i < PL_MAX_REGS && !P.failed; i++)
		if (P.dev.regs[i].pins)
			pfail("(r) region %u still pinned (%u) with no I/O", i, P.dev.regs[i].pins);
	/* the device closes as map.c closes it */
	pthread_mutex_lock(&pl_lock);
	pl_aio_close_dev(&P.dev);
	pl_reg_drop_all(&P.dev);
	P.dev.gen++;
	upcie_dma_heap_info(P.heap, &hi);
	if (!P.failed && (hi.regions || P.dev.nregs))
		pfail("(r) %zu regions registered after the cache was dropped (cache: %u)",
		      hi.regions, P.dev.nregs);
	upcie_nvme_ctrl_close(P.dev.ctrl);
	P.dev.ctrl = NULL;
	pthread_mutex_unlock(&pl_lock);
}

static void teardown(void)
{
	for (unsigned k = 0; k < P_CTXS && !P.failed; k++)
		free(P.rings[k]);
	for (unsigned i = 0; i < P_BUFS; i++) {
		if (P.bufs[i].map)
			munmap(P.bufs[i].map, P_MAP);
		P.bufs[i] = (struct pbuf){0};
	}
	upcie_dma_heap_destroy(P.heap);
	upcie_pci_close(P.pdev);
	upcie_sim_destroy(P.sim);
	P.heap = NULL;
	P.pdev = NULL;
	P.sim = NULL;
}

static void step(void)
{
	uint32_t r = below(1000);

	faults_tick();
	if (r < 330)
		sync_rw();
	else if (r < 400)
		sync_other();
	else if (r < 620)
		aio_submit();
	else if (r < 820)
		aio_reap();
	else if (r < 850)
		aio_destroy(below(P_CTXS));
	else if (r < 940)
		release_buffer();
	else if (!P.no_faults)
		fault();
}

static bool no_faults;

static bool run_seed(uint64_t seed, uint64_t steps, bool verbose, bool show)
{
	unsigned gen = P.dev.gen + 1;

	memset(&P, 0, sizeof(P));
	P.dev.gen = gen; /* the thread's queue pair of the last seed is not used */
	P.sync_buf[0] = P.sync_buf[1] = P_BUFS;
	pthread_rwlock_init(&P.dev.reg_lock, NULL);
	P.seed = seed;
	P.verbose = verbose;
	P.no_faults = no_faults;
	xrng_seed(&P.rng, seed);
	{
		uint64_t s = seed ^ 0x5eed5eed5eedull;

		P.steps = steps ? steps : 200 + xrng_splitmix(&s) % 300;
	}
	P.vns = 1000000000ull; /* the same clock for every seed */
	setup();
	for (P.step = 1; P.step <= P.steps && !P.failed; P.step++) {
		step();
		if (P.dev.nregs == PL_MAX_REGS)
			P.n_evicting++;
		check_regs();
	}
	P.step = P.steps;
	if (!P.failed)
		finish();
	if (P.failed && show)
		report();
	else if (P.failed)
		printf("FAIL seed %" PRIu64 ": %s\n", P.seed, P.why);
	teardown();
	return !P.failed;
}

int main(int argc, char **argv)
{
	struct xopts o = XOPTS_DEFAULT;
	uint64_t fails = 0;
	uint64_t t_steps = 0, rw = 0, aio = 0, events = 0, dest = 0, relb = 0, faults = 0, errs = 0,
		 full = 0;

	for (int i = 1; i < argc; i++) {
		if (xopts_arg(&o, argc, argv, &i))
			continue;
		if (!strcmp(argv[i], "--no-faults")) {
			no_faults = true;
		} else {
			fprintf(stderr, "usage: explore-preload --seed S | --seeds A-B "
					"[--steps N] [--show K] [--no-faults] [-v]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	pl_pid = getpid();
	upcie_test_clock_ms = vclock_ms;
	for (uint64_t s = o.a; s <= o.b; s++) {
		fails += !run_seed(s, o.steps, o.verbose, !o.range || fails < o.show);
		t_steps += P.steps;
		rw += P.n_rw;
		aio += P.n_aio;
		events += P.n_events;
		dest += P.n_destroy_inflight;
		relb += P.n_released_busy;
		faults += P.n_faults;
		errs += P.n_errors;
		full += P.n_evicting;
	}
	printf("explore-preload: seeds %" PRIu64 "-%" PRIu64 ": %" PRIu64 " steps, %" PRIu64
	       " failed\n",
	       o.a, o.b, t_steps, fails);
	printf("explore-preload: %" PRIu64 " sync calls, %" PRIu64 " aio requests (%" PRIu64
	       " events, %" PRIu64 " ended by io_destroy), %" PRIu64
	       " buffers released under a request, %" PRIu64 " faults (%" PRIu64
	       " I/O errors from them), %" PRIu64 " steps with the cache full\n",
	       rw, aio, events, dest, relb, faults, errs, full);
	return fails ? 1 : 0;
}
