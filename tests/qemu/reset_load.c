/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-reset-load: controller resets under verified I/O load, on a real
 * (emulated) controller.
 *
 *   upcie-reset-load [options] <bdf>
 *     --duration S      seconds of resets (default 20)
 *     --period MS       one upcie_nvme_ctrl_reset() every MS ms (default 200)
 *     --threads N       I/O threads, one qpair each (default 2)
 *     --qd N            commands in flight per thread (default 16)
 *     --nsid N          namespace (default 1)
 *     --slba N          first block of the tested range (default nsze / 4)
 *     --chunks N        I/O units per thread (default 256)
 *     --nlb N           blocks per command (default 4 KiB worth)
 *     --io-timeout MS   the qpairs' command timeout (default 5000)
 *     --retry-in-loop   a diagnostic: resubmit host-aborted commands from the
 *                       thread's loop after the poll, not from the callback
 *
 * What runs: N threads, each with its own qpair, keep QD reads and writes
 * in flight on disjoint ranges of the namespace (thread t owns chunks
 * [t * chunks, (t + 1) * chunks) of nlb blocks from slba). Every block a
 * write carries names its LBA, the thread and a sequence number (unique per
 * thread), then words derived from them. Per block, the thread keeps the
 * sequence number of its last successful write and, after a write that
 * ended without success (host-aborted, before its retry succeeded), the set
 * of sequence numbers the block may now hold; a read must find one of those
 * patterns, whole (NVMe writes each block atomically: AWUN >= 1 block).
 * At most one command per chunk is in flight, so nothing races with itself.
 * Before the resets start, every chunk is written once (known contents);
 * after they stop and the I/O drained, every chunk is read back once more.
 * Meanwhile another thread calls upcie_nvme_ctrl_reset() every period.
 *
 * Host-aborted commands (UPCIE_NVME_SC_HOST_ABORTED: "retry is safe") are
 * resubmitted from their completion callback, as users are told to do, and
 * must end in success.
 * Each thread must still complete I/O in the second half of the resets
 * (commands that stop coming back would otherwise leave it idle, unseen).
 *
 * Poll errors. upcie_nvme_poll() is documented to return a count, or
 * -ENODEV / -ENOTRECOVERABLE when the controller is gone or failed. While
 * a reset runs, a queue that re-creates itself on its owner's poll may see
 * its Create CQ/SQ refused or ended by that reset, and that poll returns
 * the error (the next poll tries again). So an error is accepted as
 * transient exactly when:
 *   - it is neither -ENODEV nor -ENOTRECOVERABLE (those are final), and
 *   - a reset from the reset thread overlapped that very poll call: the
 *     reset thread bumps an epoch counter before and after each reset
 *     (odd: a reset in progress), and the epoch read before the call was
 *     odd or differs from the one read after it.
 * A poll that overlapped no reset had a live controller and no reason to
 * fail; any such error is counted as a failure. So are commands that time
 * out (the qpair's timeout: QEMU answers in milliseconds, a timeout means a
 * command was lost) and commands the library no longer holds but never
 * completed (our slot is still busy while the qpair has nothing
 * outstanding: no callback will ever come).
 *
 * Output: one "PASS <name>" or "FAIL <name> # <why>" line per check on stdout
 * (guest-reset.sh turns them into TAP), details on stderr. Exit status 0
 * when every check passed, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upcie/upcie.h>

#define MAX_THREADS   8
#define MAX_QD	      256
#define MAX_MAYBE     8			  /* unsuccessful writes remembered per block */
#define MAX_RETRIES   10000		  /* host aborts of one command before giving up */
#define DRAIN_MS      30000		  /* bound of the drain after the resets stopped */
#define LOST_GRACE_MS 1000		  /* busy slots with nothing outstanding: lost */
#define PATTERN_MAGIC 0x55504349525354ull /* "UPCIRST" */
#define MAX_REPORTED  10		  /* mismatches and errors told in detail */

struct opts {
	unsigned duration_s, period_ms, threads, qd, nsid, chunks, nlb, io_timeout_ms;
	uint64_t slba;
	bool retry_in_loop;
	const char *bdf;
};

struct lba_state {
	uint64_t last;		   /* seq of the last successful write; 0: unknown */
	uint64_t maybe[MAX_MAYBE]; /* writes that ended without success since */
	uint8_t nmaybe;
	uint8_t overflow;
};

struct worker;

struct slot {
	struct worker *w;
	void *buf;
	uint32_t chunk;
	uint64_t seq; /* writes: the sequence number the blocks carry */
	uint32_t aborts;
	bool write;
	bool busy;    /* handed to the library, its final callback not yet run */
	bool pending; /* to be submitted (again) by the thread's loop */
	bool dead;    /* its command was lost: the buffer is never used again */
};

enum phase { PREFILL, LOAD, READBACK };

struct worker {
	unsigned id;
	const struct opts *o;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint64_t slba;	   /* first block of this thread's range */
	uint32_t lba_size; /* bytes */
	struct lba_state *lbas;
	uint8_t *chunk_busy;
	struct slot slots[MAX_QD];
	enum phase phase;
	uint32_t next_chunk; /* prefill and readback walk the chunks in order */
	uint64_t seq, rng;
	/* figures */
	uint64_t reads, writes; /* successful, verified or recorded (load phase) */
	uint64_t late;		/* of those, in the second half of the resets */
	uint64_t prefilled, readback_blocks, readback_mismatches;
	uint64_t verified_blocks, mismatches;
	uint64_t aborted;      /* HOST_ABORTED completions */
	uint64_t aborted_cmds; /* commands that got at least one */
	uint64_t retried_ok;   /* of those, ended in success */
	uint64_t retries;      /* resubmissions */
	uint64_t refused;      /* resubmissions the library refused */
	uint64_t failed;       /* other error statuses */
	uint64_t gave_up;
	uint64_t poll_transient, poll_errors, polls;
	uint64_t lost, overflow;
	bool drained;
	char first_err[512];
	unsigned reported;
};

static struct {
	struct upcie_nvme_ctrl *ctrl;
	uint64_t epoch; /* odd while the reset thread is inside a reset */
	int stop_io;
	int late; /* the second half of the resets has begun */
	pthread_barrier_t ready;
	/* reset thread */
	uint64_t resets, reset_failures, reset_max_ms;
	char reset_err[512];
} g;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* The first few problems of a thread are told on stderr; the first is kept. */
static void note(struct worker *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!w->first_err[0])
		snprintf(w->first_err, sizeof(w->first_err), "%s", msg);
	if (w->reported++ < MAX_REPORTED)
		fprintf(stderr, "upcie-reset-load: thread %u: %s\n", w->id, msg);
}

/* Block lba (absolute) as written by thread t with sequence number seq. */
static void fill_block(uint64_t *b, size_t words, unsigned t, uint64_t lba, uint64_t seq)
{
	b[0] = PATTERN_MAGIC ^ ((uint64_t)t << 56);
	b[1] = lba;
	b[2] = seq;
	for (size_t i = 3; i < words; i++)
		b[i] = mix((lba << 20) ^ (seq * 0x100000001b3ull) ^ i);
}

static bool block_is(const uint64_t *b, size_t words, unsigned t, uint64_t lba, uint64_t seq)
{
	if (b[0] != (PATTERN_MAGIC ^ ((uint64_t)t << 56)) || b[1] != lba || b[2] != seq)
		return false;
	for (size_t i = 3; i < words; i++)
		if (b[i] != mix((lba << 20) ^ (seq * 0x100000001b3ull) ^ i))
			return false;
	return true;
}

static bool possible(const struct lba_state *s, uint64_t seq)
{
	if (seq == s->last)
		return true;
	for (unsigned i = 0; i < s->nmaybe; i++)
		if (s->maybe[i] == seq)
			return true;
	return false;
}

/* Check a chunk just read; returns the blocks that matched no possible pattern. */
static uint64_t verify(struct worker *w, const struct slot *c)
{
	size_t words = w->lba_size / 8;
	uint64_t bad = 0;

	for (uint32_t i = 0; i < w->o->nlb; i++) {
		uint32_t idx = c->chunk * w->o->nlb + i;
		const struct lba_state *s = &w->lbas[idx];
		const uint64_t *b =
		    (const uint64_t *)((const char *)c->buf + (size_t)i * w->lba_size);
		uint64_t lba = w->slba + idx;

		if (s->overflow)
			continue; /* counted in w->overflow: too many unknowns to tell */
		if (possible(s, b[2]) && block_is(b, words, w->id, lba, b[2]))
			continue;
		bad++;
		note(w,
		     "MISMATCH lba %" PRIu64 ": holds magic %#" PRIx64 " lba %" PRIu64
		     " seq %" PRIu64 "%s; expected seq %" PRIu64 " or one of %u unfinished writes",
		     lba, b[0], b[1], b[2],
		     b[1] == lba && possible(s, b[2]) ? " (header right, body wrong)" : "", s->last,
		     s->nmaybe);
	}
	return bad;
}

static void write_ended_unsuccessfully(struct worker *w, const struct slot *c)
{
	for (uint32_t i = 0; i < w->o->nlb; i++) {
		struct lba_state *s = &w->lbas[c->chunk * w->o->nlb + i];

		if (possible(s, c->seq))
			continue;
		if (s->nmaybe == MAX_MAYBE) {
			if (!s->overflow)
				w->overflow++;
			s->overflow = 1;
			continue;
		}
		s->maybe[s->nmaybe++] = c->seq;
	}
}

static void write_succeeded(struct worker *w, const struct slot *c)
{
	for (uint32_t i = 0; i < w->o->nlb; i++) {
		struct lba_state *s = &w->lbas[c->chunk * w->o->nlb + i];

		s->last = c->seq;
		s->nmaybe = 0;
		s->overflow = 0;
	}
}

static void done_cb(void *arg, const struct upcie_nvme_cqe *cqe);

static int submit(struct slot *c)
{
	struct worker *w = c->w;
	uint64_t slba = w->slba + (uint64_t)c->chunk * w->o->nlb;

	if (c->write)
		return upcie_nvme_write(w->qp, w->ns, slba, w->o->nlb, c->buf, done_cb, c, 0);
	/* A read's buffer is poisoned first: data of an earlier attempt must
	 * not pass for this one's. */
	memset(c->buf, 0xa5, (size_t)w->o->nlb * w->lba_size);
	return upcie_nvme_read(w->qp, w->ns, slba, w->o->nlb, c->buf, done_cb, c, 0);
}

static void finish(struct slot *c)
{
	c->busy = false;
	c->pending = false;
	c->w->chunk_busy[c->chunk] = 0;
}

static void done_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct slot *c = arg;
	struct worker *w = c->w;
	uint16_t st = upcie_nvme_cqe_status(cqe);
	int rc;

	/* ABORT_SQ_DELETED: the reset's quiesce, seen by a poll that was
	 * already reaping (nvme.h: the same meaning as HOST_ABORTED). */
	if (st == UPCIE_NVME_SC_HOST_ABORTED || st == UPCIE_NVME_SC_ABORT_SQ_DELETED) {
		w->aborted++;
		if (!c->aborts++) {
			w->aborted_cmds++;
			if (c->write)
				write_ended_unsuccessfully(w, c);
		}
		if (c->aborts > MAX_RETRIES) {
			w->gave_up++;
			note(w, "chunk %u: %s host-aborted %u times, given up", c->chunk,
			     c->write ? "write" : "read", c->aborts);
			finish(c);
			return;
		}
		w->retries++;
		if (w->o->retry_in_loop) {
			c->pending = true;
			return;
		}
		/* The pattern users are told to use: retry from the callback. */
		rc = submit(c);
		if (rc) {
			w->refused++;
			note(w, "resubmit from the callback refused: %s (%s)", strerror(-rc),
			     upcie_errmsg());
			c->pending = true; /* the loop tries again */
		}
		return;
	}
	if (st) {
		w->failed++;
		note(w, "chunk %u: %s failed: %s (%#x)%s", c->chunk, c->write ? "write" : "read",
		     upcie_nvme_status_str(st), st, c->aborts ? ", after host aborts" : "");
		if (c->write && !c->aborts)
			write_ended_unsuccessfully(w, c);
		finish(c);
		return;
	}
	if (c->aborts)
		w->retried_ok++;
	if (c->write) {
		write_succeeded(w, c);
		if (w->phase == PREFILL)
			w->prefilled++;
		else
			w->writes++, w->late +=
				     w->phase == LOAD && __atomic_load_n(&g.late, __ATOMIC_RELAXED);
	} else {
		uint64_t bad = verify(w, c);

		if (w->phase == READBACK) {
			w->readback_blocks += w->o->nlb;
			w->readback_mismatches += bad;
		} else {
			w->reads++;
			w->late += w->phase == LOAD && __atomic_load_n(&g.late, __ATOMIC_RELAXED);
			w->verified_blocks += w->o->nlb;
			w->mismatches += bad;
		}
	}
	finish(c);
}

/* A new command in slot c: the next chunk in order (prefill, read-back),
 * or a random read or write of a chunk with nothing in flight (load). */
static bool start(struct worker *w, struct slot *c)
{
	uint32_t chunk;

	if (w->phase == LOAD) {
		chunk = (uint32_t)(rnd(w) % w->o->chunks);
		while (w->chunk_busy[chunk])
			chunk = (chunk + 1) % w->o->chunks;
		c->write = rnd(w) & 1;
	} else {
		if (w->next_chunk == w->o->chunks)
			return false;
		chunk = w->next_chunk++;
		c->write = w->phase == PREFILL;
	}
	c->chunk = chunk;
	c->aborts = 0;
	w->chunk_busy[chunk] = 1;
	if (c->write) {
		c->seq = ++w->seq;
		for (uint32_t i = 0; i < w->o->nlb; i++)
			fill_block((uint64_t *)((char *)c->buf + (size_t)i * w->lba_size),
				   w->lba_size / 8, w->id,
				   w->slba + (uint64_t)chunk * w->o->nlb + i, c->seq);
	}
	c->busy = true;
	c->pending = true;
	return true;
}

/* Submit what waits (new commands, refused resubmissions), then one ring. */
static void fill(struct worker *w, bool new_ones)
{
	for (unsigned i = 0; i < w->o->qd; i++) {
		struct slot *c = &w->slots[i];
		int rc;

		if (c->dead || (!c->busy && !(new_ones && start(w, c))))
			continue;
		if (!c->pending)
			continue;
		rc = submit(c);
		if (rc == -EAGAIN)
			continue;
		if (rc) {
			note(w, "submit refused: %s (%s)", strerror(-rc), upcie_errmsg());
			w->failed++;
			finish(c);
			continue;
		}
		c->pending = false;
	}
	upcie_nvme_ring(w->qp);
}

static void poll_once(struct worker *w)
{
	uint64_t e0 = __atomic_load_n(&g.epoch, __ATOMIC_SEQ_CST);
	int n = upcie_nvme_poll(w->qp, 0);
	uint64_t e1 = __atomic_load_n(&g.epoch, __ATOMIC_SEQ_CST);

	w->polls++;
	if (n >= 0)
		return;
	if (n != -ENODEV && n != -ENOTRECOVERABLE && ((e0 & 1) || e0 != e1)) {
		w->poll_transient++;
		return;
	}
	w->poll_errors++;
	note(w, "poll: %s (%s)%s", strerror(-n), upcie_errmsg(),
	     (e0 & 1) || e0 != e1 ? "" : "; no reset was running");
}

static unsigned busy_slots(const struct worker *w)
{
	unsigned n = 0;

	for (unsigned i = 0; i < w->o->qd; i++)
		n += w->slots[i].busy;
	return n;
}

/* Poll until every slot is idle. Slots still busy while the qpair holds
 * nothing and nothing waits to be submitted will never finish: lost. */
static bool drain(struct worker *w, uint64_t deadline)
{
	uint64_t idle_since = 0;

	while (busy_slots(w)) {
		bool waiting = false;

		fill(w, false);
		poll_once(w);
		for (unsigned i = 0; i < w->o->qd; i++)
			waiting |= w->slots[i].busy && w->slots[i].pending;
		if (upcie_nvme_qpair_outstanding(w->qp) || waiting) {
			idle_since = 0;
		} else if (!idle_since) {
			idle_since = now_ms();
		} else if (now_ms() - idle_since > LOST_GRACE_MS) {
			w->lost += busy_slots(w);
			note(w, "%u commands never completed: the qpair has nothing outstanding",
			     busy_slots(w));
			for (unsigned i = 0; i < w->o->qd; i++)
				if (w->slots[i].busy) /* its chunk stays marked busy */
					w->slots[i].busy = false, w->slots[i].dead = true;
			return false;
		}
		if (now_ms() > deadline) {
			note(w, "drain: %u commands still busy after %u ms (%u outstanding)",
			     busy_slots(w), DRAIN_MS, upcie_nvme_qpair_outstanding(w->qp));
			return false;
		}
	}
	return true;
}

/* Every chunk once, in order (prefill: writes; read-back: reads), then
 * drained; chunks whose command was lost are skipped. Bounded. */
static bool each_chunk(struct worker *w, enum phase phase)
{
	uint64_t deadline = now_ms() + DRAIN_MS;
	bool usable = false;

	w->phase = phase;
	w->next_chunk = 0;
	for (unsigned i = 0; i < w->o->qd && !usable; i++)
		usable = !w->slots[i].dead;
	if (!usable) {
		note(w, "%s: skipped, every slot's command was lost",
		     phase == PREFILL ? "prefill" : "read-back");
		return false;
	}
	while (w->next_chunk < w->o->chunks) {
		while (w->next_chunk < w->o->chunks && w->chunk_busy[w->next_chunk])
			w->next_chunk++;
		fill(w, true);
		poll_once(w);
		if (now_ms() > deadline) {
			note(w, "%s: stuck at chunk %u of %u",
			     phase == PREFILL ? "prefill" : "read-back", w->next_chunk,
			     w->o->chunks);
			return false;
		}
	}
	return drain(w, now_ms() + DRAIN_MS);
}

static void *io_thread(void *arg)
{
	struct worker *w = arg;
	bool ok;

	/* Known contents first: every chunk written once, no resets yet. */
	ok = each_chunk(w, PREFILL);
	pthread_barrier_wait(&g.ready);
	if (!ok)
		return NULL;
	w->phase = LOAD;
	while (!__atomic_load_n(&g.stop_io, __ATOMIC_ACQUIRE)) {
		fill(w, true);
		poll_once(w);
	}
	w->drained = drain(w, now_ms() + DRAIN_MS);
	/* Every chunk once more, the resets over. */
	each_chunk(w, READBACK);
	return NULL;
}

static void sleep_until(uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void *reset_thread(void *arg)
{
	const struct opts *o = arg;
	uint64_t end = now_ms() + (uint64_t)o->duration_s * 1000, next = now_ms();

	for (;;) {
		uint64_t t0, took;
		int rc;

		next += o->period_ms;
		if (next >= end)
			break;
		if (end - next < (uint64_t)o->duration_s * 500)
			__atomic_store_n(&g.late, 1, __ATOMIC_RELAXED);
		sleep_until(next);
		t0 = now_ms();
		__atomic_add_fetch(&g.epoch, 1, __ATOMIC_SEQ_CST);
		rc = upcie_nvme_ctrl_reset(g.ctrl);
		__atomic_add_fetch(&g.epoch, 1, __ATOMIC_SEQ_CST);
		took = now_ms() - t0;
		if (took > g.reset_max_ms)
			g.reset_max_ms = took;
		if (rc) {
			if (!g.reset_failures++)
				snprintf(g.reset_err, sizeof(g.reset_err), "%s (%s)", strerror(-rc),
					 upcie_errmsg());
			fprintf(stderr, "upcie-reset-load: reset %" PRIu64 " failed: %s (%s)\n",
				g.resets + g.reset_failures, strerror(-rc), upcie_errmsg());
		} else {
			g.resets++;
		}
		if (now_ms() > next)
			next = now_ms(); /* late: no burst to catch up */
	}
	return NULL;
}

static int failures;

static void check(bool ok, const char *name, const char *fmt, ...)
{
	char why[512] = "";
	va_list ap;

	if (ok) {
		printf("PASS %s\n", name);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	printf("FAIL %s # %s\n", name, why);
	failures++;
}

static int usage(void)
{
	fprintf(stderr, "usage: upcie-reset-load [--duration S] [--period MS] [--threads N] "
			"[--qd N] [--nsid N] [--slba N] [--chunks N] [--nlb N] "
			"[--io-timeout MS] [--retry-in-loop] <bdf>\n");
	return 2;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.duration_s = 20,
			   .period_ms = 200,
			   .threads = 2,
			   .qd = 16,
			   .nsid = 1,
			   .chunks = 256,
			   .io_timeout_ms = 5000,
			   .slba = UINT64_MAX};
	for (int i = 1; i < argc; i++) {
		static const char *const names[] = {"--duration", "--period",	  "--threads",
						    "--qd",	  "--nsid",	  "--chunks",
						    "--nlb",	  "--io-timeout", "--slba"};
		unsigned *dst[] = {&o->duration_s, &o->period_ms, &o->threads, &o->qd,
				   &o->nsid,	   &o->chunks,	  &o->nlb,     &o->io_timeout_ms};
		unsigned k;
		char *end;

		if (!strcmp(argv[i], "--retry-in-loop")) {
			o->retry_in_loop = true;
			continue;
		}
		if (argv[i][0] != '-') {
			if (o->bdf)
				return -1;
			o->bdf = argv[i];
			continue;
		}
		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			if (!strcmp(argv[i], names[k]))
				break;
		if (k == sizeof(names) / sizeof(names[0]) || i + 1 == argc)
			return -1;
		errno = 0;
		unsigned long long v = strtoull(argv[++i], &end, 0);
		if (errno || *end || end == argv[i])
			return -1;
		if (k < sizeof(dst) / sizeof(dst[0])) {
			if (v > UINT32_MAX)
				return -1;
			*dst[k] = (unsigned)v;
		} else {
			o->slba = v;
		}
	}
	if (!o->bdf || !o->threads || o->threads > MAX_THREADS || !o->qd || o->qd > MAX_QD ||
	    !o->period_ms || o->chunks < 2 * o->qd)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct worker *ws = NULL;
	pthread_t io[MAX_THREADS], rst;
	struct upcie_pci_dev *pci = NULL;
	struct upcie_dma_heap *heap = NULL;
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_ctrl_info info;
	struct opts o;
	uint64_t t_start, t_load, t_stop, t_end;
	unsigned made = 0;
	int rc;

	if (parse_args(argc, argv, &o))
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* ---- setup */
	pci = upcie_pci_open(o.bdf, NULL);
	heap = pci ? upcie_dma_heap_create(pci, 8u << 20, 0) : NULL;
	g.ctrl = heap ? upcie_nvme_ctrl_open(pci, heap, NULL) : NULL;
	if (!g.ctrl) {
		check(false, "setup", "%s: %s", o.bdf, upcie_errmsg());
		goto out;
	}
	ns = upcie_nvme_ns_get(g.ctrl, o.nsid);
	if (!ns || !ns->max_xfer_blocks || ns->lba_size % 8) {
		check(false, "setup", "namespace %u is not active or takes no plain I/O", o.nsid);
		goto out;
	}
	if (!o.nlb)
		o.nlb = ns->lba_size >= 4096 ? 1 : 4096 / ns->lba_size;
	if (o.slba == UINT64_MAX)
		o.slba = ns->nsze / 4;
	if (o.nlb > ns->max_xfer_blocks ||
	    o.slba + (uint64_t)o.threads * o.chunks * o.nlb > ns->nsze) {
		check(false, "setup",
		      "%u threads x %u chunks x %u blocks from %" PRIu64
		      " do not fit namespace %u (%" PRIu64 " blocks, %u per command at most)",
		      o.threads, o.chunks, o.nlb, o.slba, o.nsid, ns->nsze, ns->max_xfer_blocks);
		goto out;
	}
	ws = calloc(o.threads, sizeof(*ws));
	if (!ws) {
		check(false, "setup", "out of memory");
		goto out;
	}
	for (unsigned t = 0; t < o.threads; t++) {
		struct upcie_nvme_qpair_opts qo = {.depth = o.qd + 1,
						   .timeout_ms = o.io_timeout_ms};
		struct worker *w = &ws[t];

		*w = (struct worker){.id = t,
				     .o = &o,
				     .ns = ns,
				     .lba_size = ns->lba_size,
				     .slba = o.slba + (uint64_t)t * o.chunks * o.nlb,
				     .rng = mix(0x5eed + t) | 1};
		w->qp = upcie_nvme_qpair_create(g.ctrl, &qo);
		w->lbas = calloc((size_t)o.chunks * o.nlb, sizeof(*w->lbas));
		w->chunk_busy = calloc(o.chunks, 1);
		if (!w->qp || !w->lbas || !w->chunk_busy) {
			check(false, "setup", "qpair %u: %s", t,
			      w->qp ? "out of memory" : upcie_errmsg());
			goto out;
		}
		made = t + 1;
		for (unsigned i = 0; i < o.qd; i++) {
			w->slots[i].w = w;
			w->slots[i].buf = upcie_dma_alloc(heap, (size_t)o.nlb * ns->lba_size, 4096);
			if (!w->slots[i].buf) {
				check(false, "setup", "DMA buffer: %s", upcie_errmsg());
				goto out;
			}
		}
	}
	upcie_nvme_ctrl_info(g.ctrl, &info);
	fprintf(stderr,
		"upcie-reset-load: %s (%s), nsid %u (%u B blocks): %u threads x QD %u, %u chunks "
		"of %u blocks each from lba %" PRIu64 "; a reset every %u ms for %u s; "
		"I/O timeout %u ms; %u qpairs granted, shadow doorbells %s\n",
		o.bdf, upcie_pci_backend_name(upcie_pci_backend(pci)), o.nsid, ns->lba_size,
		o.threads, o.qd, o.chunks, o.nlb, o.slba, o.period_ms, o.duration_s,
		o.io_timeout_ms, info.io_qpairs_max, info.dbbuf ? "on" : "off");

	/* ---- run */
	pthread_barrier_init(&g.ready, NULL, o.threads + 1);
	t_start = now_ms();
	/* A thread that cannot start would leave the barrier waiting: stop. */
	for (unsigned t = 0; t < o.threads; t++)
		if (pthread_create(&io[t], NULL, io_thread, &ws[t])) {
			fprintf(stderr, "upcie-reset-load: cannot start I/O thread %u\n", t);
			return 2;
		}
	pthread_barrier_wait(&g.ready); /* prefilled */
	t_load = now_ms();
	if (pthread_create(&rst, NULL, reset_thread, &o)) {
		fprintf(stderr, "upcie-reset-load: cannot start the reset thread\n");
		return 2;
	}
	pthread_join(rst, NULL);
	t_stop = now_ms();
	__atomic_store_n(&g.stop_io, 1, __ATOMIC_RELEASE);
	for (unsigned t = 0; t < o.threads; t++)
		pthread_join(io[t], NULL);
	t_end = now_ms();
	pthread_barrier_destroy(&g.ready);

	/* ---- figures and checks */
	{
		struct upcie_nvme_qpair_stats st;
		uint64_t reads = 0, writes = 0, aborted = 0, aborted_cmds = 0, retried_ok = 0,
			 retries = 0, refused = 0, failed = 0, gave_up = 0, mism = 0, verified = 0,
			 rb = 0, rb_mism = 0, transient = 0, perr = 0, lost = 0, tmo = 0, recov = 0,
			 outstanding = 0, prefilled = 0, overflow = 0, polls = 0, total_blocks;
		bool per_thread_io = true, drained = true;
		char per[256] = "", first[600] = "";

		for (unsigned t = 0; t < o.threads; t++) {
			struct worker *w = &ws[t];
			size_t len = strlen(per);

			upcie_nvme_qpair_stats(w->qp, &st);
			snprintf(per + len, sizeof(per) - len, "%sthread %u: %" PRIu64,
				 t ? ", " : "", t, w->reads + w->writes);
			per_thread_io &= w->late > 0;
			drained &= w->drained;
			reads += w->reads;
			writes += w->writes;
			prefilled += w->prefilled;
			aborted += w->aborted;
			aborted_cmds += w->aborted_cmds;
			retried_ok += w->retried_ok;
			retries += w->retries;
			refused += w->refused;
			failed += w->failed;
			gave_up += w->gave_up;
			mism += w->mismatches;
			verified += w->verified_blocks;
			rb += w->readback_blocks;
			rb_mism += w->readback_mismatches;
			transient += w->poll_transient;
			perr += w->poll_errors;
			polls += w->polls;
			lost += w->lost;
			overflow += w->overflow;
			tmo += st.timeouts;
			recov += st.recoveries;
			outstanding += upcie_nvme_qpair_outstanding(w->qp);
			if (!first[0] && w->first_err[0])
				snprintf(first, sizeof(first), "thread %u: %s", t, w->first_err);
		}
		total_blocks = (uint64_t)o.threads * o.chunks * o.nlb;
		upcie_nvme_ctrl_info(g.ctrl, &info);
		fprintf(
		    stderr,
		    "upcie-reset-load: figures: ios %" PRIu64 " (%" PRIu64 " reads, %" PRIu64
		    " writes; %s) in %.1f s of load, %" PRIu64 " prefill writes; resets %" PRIu64
		    " (%" PRIu64 " failed, longest %" PRIu64 " ms; the library counted %" PRIu64
		    "); host-aborted completions %" PRIu64 " on %" PRIu64
		    " commands, retried %" PRIu64 " times, %" PRIu64
		    " then succeeded; mismatches %" PRIu64 " of %" PRIu64
		    " blocks read, read-back %" PRIu64 " of %" PRIu64 "; poll errors %" PRIu64
		    " transient, %" PRIu64 " others; re-creations %" PRIu64 "; timeouts %" PRIu64
		    "; lost %" PRIu64 "; outstanding %" PRIu64 "; total %.1f s\n",
		    reads + writes, reads, writes, per, (double)(t_stop - t_load) / 1000, prefilled,
		    g.resets, g.reset_failures, g.reset_max_ms, (uint64_t)info.resets, aborted,
		    aborted_cmds, retries, retried_ok, mism, verified, rb_mism, rb, transient, perr,
		    recov, tmo, lost, outstanding, (double)(t_end - t_start) / 1000);
		if (first[0])
			fprintf(stderr, "upcie-reset-load: first problem: %s\n", first);

		char name[256];

		snprintf(name, sizeof(name),
			 "I/O under resets: %" PRIu64 " verified commands (%" PRIu64
			 " reads, %" PRIu64 " writes; %s), 0 failed",
			 reads + writes, reads, writes, per);
		check(per_thread_io && !failed && !gave_up, name,
		      "%" PRIu64 " failed, %" PRIu64 " given up%s; first: %s", failed, gave_up,
		      per_thread_io ? "" : ", a thread did no I/O in the second half",
		      first[0] ? first : "-");
		snprintf(name, sizeof(name),
			 "resets: %" PRIu64 " done (one every %u ms for %u s; longest %" PRIu64
			 " ms), 0 failed, none by the library itself",
			 g.resets, o.period_ms, o.duration_s, g.reset_max_ms);
		check(g.resets && !g.reset_failures && info.resets == g.resets, name,
		      "%" PRIu64 " failed (first: %s); the library counted %" PRIu64 " resets",
		      g.reset_failures, g.reset_err[0] ? g.reset_err : "-", (uint64_t)info.resets);
		snprintf(name, sizeof(name),
			 "aborted and retried: %" PRIu64 " host-aborted completions on %" PRIu64
			 " commands, each resubmitted from its %s (%" PRIu64
			 " resubmissions) until it succeeded",
			 aborted, aborted_cmds, o.retry_in_loop ? "thread's loop" : "callback",
			 retries);
		check(retried_ok == aborted_cmds && !refused && !gave_up, name,
		      "%" PRIu64 " of %" PRIu64 " aborted commands succeeded; %" PRIu64
		      " resubmissions refused; %" PRIu64 " given up; %" PRIu64 " lost",
		      retried_ok, aborted_cmds, refused, gave_up, lost);
		snprintf(name, sizeof(name),
			 "mismatches: 0 of %" PRIu64 " blocks read under resets, 0 of %" PRIu64
			 " blocks read back after",
			 verified, rb);
		check(!mism && !rb_mism && !overflow, name,
		      "%" PRIu64 " and %" PRIu64 " mismatching blocks; %" PRIu64
		      " blocks with too many unfinished writes to tell; first: %s",
		      mism, rb_mism, overflow, first[0] ? first : "-");
		snprintf(name, sizeof(name),
			 "read-back: all %" PRIu64 " blocks read after the resets", total_blocks);
		check(rb == total_blocks, name,
		      "%" PRIu64 " read back (chunks of lost commands skipped)", rb);
		check(drained && !lost && !outstanding && !tmo,
		      "drain: every command completed, 0 outstanding, 0 timed out",
		      "%" PRIu64 " commands never completed, %" PRIu64 " outstanding, %" PRIu64
		      " timed out; first: %s",
		      lost, outstanding, tmo, first[0] ? first : "-");
		snprintf(name, sizeof(name),
			 "poll: no error outside a reset (%" PRIu64
			 " transient ones during a reset, "
			 "%" PRIu64 " polls)",
			 transient, polls);
		check(!perr, name,
		      "%" PRIu64 " errors with no reset running or final ones; first: %s", perr,
		      first[0] ? first : "-");
		printf("FIGURES ios=%" PRIu64 " resets=%" PRIu64 " aborted=%" PRIu64
		       " aborted_cmds=%" PRIu64 " retried_ok=%" PRIu64 " mismatches=%" PRIu64
		       " poll_transient=%" PRIu64 " poll_errors=%" PRIu64 " lost=%" PRIu64
		       " timeouts=%" PRIu64 "\n",
		       reads + writes, g.resets, aborted, aborted_cmds, retried_ok, mism + rb_mism,
		       transient, perr, lost, tmo);
	}

out:
	rc = 0;
	for (unsigned t = 0; t < made; t++) {
		int r = upcie_nvme_qpair_destroy(ws[t].qp);

		if (r && !rc) {
			rc = r;
			fprintf(stderr, "upcie-reset-load: qpair destroy: %s\n", upcie_errmsg());
		}
	}
	if (g.ctrl) {
		int r = upcie_nvme_ctrl_close(g.ctrl);

		if (r && !rc) {
			rc = r;
			fprintf(stderr, "upcie-reset-load: close: %s\n", upcie_errmsg());
		}
		check(!rc, "teardown: qpairs destroyed, controller closed", "%s", strerror(-rc));
	}
	for (unsigned t = 0; ws && t < o.threads; t++) {
		for (unsigned i = 0; i < o.qd; i++)
			if (ws[t].slots[i].buf)
				upcie_dma_free(heap, ws[t].slots[i].buf);
		free(ws[t].lbas);
		free(ws[t].chunk_busy);
	}
	free(ws);
	if (heap)
		upcie_dma_heap_destroy(heap);
	if (pci)
		upcie_pci_close(pci);
	return failures ? 1 : 0;
}
