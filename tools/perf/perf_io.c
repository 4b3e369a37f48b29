/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf: the I/O loop of one queue pair.
 *
 * Everything is allocated before the loop starts; inside it there is no
 * allocation and no system call (but the nanosleep of --idle-sleep after an
 * empty poll, the sleeps of --irq, and getrusage when measuring starts and
 * stops): time is the TSC, offsets come from a wyrand-style generator
 * mapped to the range with a multiply-high, and completions are reaped by
 * upcie_nvme_poll() in whatever number the controller has posted.
 *
 * --irq (and --hybrid): the qpair has interrupts and upcie_nvme_qpair_wait()
 * takes the place of upcie_nvme_poll(). It polls first, so a wait that finds
 * completions is a poll; only when nothing is there does it (spin, then)
 * sleep until an interrupt, or at most until the end of the run.
 *
 * Two loops (--loop). callback, the default and the pattern the README
 * shows: the completion callback submits the next command with flags 0
 * and the upcie_nvme_poll() that called it publishes everything its
 * callbacks queued with one SQ doorbell write, before the CQ head's; the
 * loop itself only fills the queue at the start, in groups of --batch.
 * batch: new commands go out only in groups of --batch (fewer only when an
 * --io-count quota has fewer left), each group queued with flags 0 and
 * published by one upcie_nvme_ring() after the poll: one SQ doorbell write
 * per group, after the CQ head's.
 *
 * Driver cost: the TSC time inside the library's submit calls plus ring
 * (submit_tsc), and inside upcie_nvme_poll() calls that reaped at least one
 * completion minus the time spent in our own callback (complete_tsc; with
 * --irq, waits that reaped without sleeping or spinning). Each
 * interval has the cost of one back-to-back TSC read pair taken off; one
 * longer than 20 us means the thread was descheduled or interrupted (the
 * machine is shared) and is left out, and counted in 'preempted'.
 *
 * With --rate the loop is perf_pace.c's; the helpers it shares are here.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

/* wyrand (Wang Yi): a 64-bit state, one add and one 64x64->128 multiply. */
static inline uint64_t rng_next(uint64_t *s)
{
	__uint128_t m;

	*s += 0xa0761d6478bd642full;
	m = (__uint128_t)*s * (*s ^ 0xe7037ed1a0b428dbull);
	return (uint64_t)(m >> 64) ^ (uint64_t)m;
}

/* Uniform in [0, n) without a division: the high half of r * n. */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return (uint64_t)(((__uint128_t)rng_next(s) * n) >> 64);
}

/*
 * The data pattern: every 8-byte word carries the LBA of the block it
 * belongs to, the generation and its word index, mixed so that a word
 * from another block, another generation or another place differs.
 */
static inline uint64_t pattern_word(uint64_t lba, uint32_t gen, uint64_t i)
{
	return ((lba << 24) ^ ((uint64_t)gen << 1) ^ 0x5555000000000001ull) +
	       i * 0x9e3779b97f4a7c15ull;
}

void perf_fill(void *buf, uint64_t slba, uint32_t nlb, uint32_t lba_shift, uint32_t gen)
{
	uint64_t *w = buf;
	uint64_t per = (1ull << lba_shift) / 8;

	for (uint64_t b = 0; b < nlb; b++)
		for (uint64_t i = 0; i < per; i++)
			*w++ = pattern_word(slba + b, gen, i);
}

long perf_check(const void *buf, uint64_t slba, uint32_t nlb, uint32_t lba_shift, uint32_t gen)
{
	const uint64_t *w = buf;
	uint64_t per = (1ull << lba_shift) / 8;

	for (uint64_t b = 0; b < nlb; b++)
		for (uint64_t i = 0; i < per; i++, w++)
			if (*w != pattern_word(slba + b, gen, i))
				return (long)((const char *)w - (const char *)buf);
	return -1;
}

/* A TSC read of the loop, counted (rdtsc is emulated, and costly, in a TCG guest). */
static inline uint64_t loop_tsc(struct perf_thread *t)
{
	t->tsc_reads++;
	return perf_tsc();
}

/* The generation table holds a busy bit while a command on the block is in flight. */
#define GEN_BUSY (1u << 31)
#define GEN_MASK (GEN_BUSY - 1)

static void record_err(struct perf_thread *t, const struct perf_slot *s, uint16_t status,
		       bool mismatch, uint32_t expect, long offset)
{
	struct perf_err *e;

	if (mismatch)
		t->mismatches++;
	else
		t->errors++;
	if (t->nerr == PERF_ERR_RECORDS)
		return;
	e = &t->err[t->nerr++];
	e->lba = s->blk * t->nlb;
	e->status = status;
	e->write = s->write;
	e->mismatch = mismatch;
	e->expect_gen = expect;
	e->offset = offset < 0 ? 0 : (uint32_t)offset;
}

static bool submit_one(struct perf_thread *t);

/* Whether another command may go out now (run time, --io-count, SIGINT). */
static inline bool may_submit(struct perf_thread *t, uint64_t now)
{
	if (perf_stop)
		return false;
	if (!t->measuring)
		return true;
	if (t->quota && t->submitted_measured >= t->quota)
		return false;
	return !t->tsc_end || now < t->tsc_end;
}

static void io_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct perf_slot *s = arg;
	struct perf_thread *t = s->t;
	uint64_t now = loop_tsc(t);
	uint16_t status = upcie_nvme_cqe_status(cqe);

	/* Given up on at the drain timeout and counted then; completed or
	 * aborted late (by the qpair's deletion): never reused. */
	if (perf_unlikely(s->abandoned))
		return;
	if (perf_unlikely(status))
		record_err(t, s, status, false, 0, -1);
	else if (perf_unlikely(t->o->pi) && !s->write) {
		long off = 0;
		uint16_t st = perf_pi_check(t, s, &off);

		if (st)
			record_err(t, s, st, true, 0, off);
	}
	if (t->dev->gen) {
		uint32_t *g = &t->dev->gen[s->blk];

		if (s->write) {
			*g = status ? 0 : s->gen; /* a failed write leaves the block unknown */
		} else {
			uint32_t expect = *g & GEN_MASK;

			*g = expect;
			if (!status && expect) {
				long off = perf_check_blocks(t, s->buf, s->blk * t->nlb, expect);
				t->verified++;
				if (off >= 0)
					record_err(t, s, 0, true, expect, off);
			}
		}
	}
	if (s->measured) {
		uint64_t lat = now - s->start;

		perf_hist_add(&t->hist[s->write], lat);
		t->ios++;
		if (s->write == 2)
			t->trims++;
		else if (s->write)
			t->writes++;
		else
			t->reads++;
		t->tsc_stop = now;
		__atomic_store_n(&t->prog_ios, t->prog_ios + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&t->prog_lat, t->prog_lat + lat, __ATOMIC_RELAXED);
	}
	t->free[t->nfree++] = s;
	/* --loop callback: the next command, queued here and published by the
	 * poll that called us, SQ tail before CQ head. */
	if (t->cb_submit && may_submit(t, now))
		submit_one(t);
	t->cb_tsc += loop_tsc(t) - now;
}

/* Pick the next block: sequential or random within the slice; with
 * --verify, skip blocks that have a command in flight. */
static inline uint64_t next_blk(struct perf_thread *t, bool rand)
{
	uint64_t b;

	for (;;) {
		if (rand) {
			b = t->blk_first + rng_below(&t->rng, t->blk_count);
		} else {
			b = t->blk_first + t->seq_next;
			if (++t->seq_next == t->blk_count)
				t->seq_next = 0;
		}
		/* Terminates: the slice has more blocks than commands in flight. */
		if (!t->dev->gen || !(t->dev->gen[b] & GEN_BUSY))
			return b;
		if (rand) {
			/* Walk forward from here. */
			rand = false;
			t->seq_next = b - t->blk_first;
		}
	}
}

static void start_measuring(struct perf_thread *t, uint64_t now)
{
	for (int d = 0; d < 3; d++)
		perf_hist_init(&t->hist[d]);
	getrusage(RUSAGE_THREAD, &t->ru0);
	t->ios = t->reads = t->writes = t->trims = 0;
	t->submit_tsc = t->complete_tsc = 0;
	t->submit_calls = t->ring_calls = t->polls = t->polls_hit = t->preempted = 0;
	t->tsc_reads = t->reaped_untimed = t->pace_sleeps = 0;
	upcie_nvme_qpair_stats(t->qp, &t->st0);
	upcie_nvme_qpair_wait_stats(t->qp, &t->ws0);
	t->ws_seen = t->ws0;
	t->tsc_start = now;
	t->tsc_stop = now;
	t->measuring = true;
}

static inline void add_cost(struct perf_thread *t, uint64_t *acc, uint64_t d, uint64_t ovh)
{
	if (perf_unlikely(d > perf_clock.preempted))
		t->preempted++;
	else
		*acc += d > ovh ? d - ovh : 0;
}

/* Queue one command on a free slot (no doorbell); false if it was refused. */
static bool submit_one(struct perf_thread *t)
{
	const struct perf_opts *o = t->o;
	bool rand = o->rw >= PERF_RANDREAD;
	uint64_t ovh = (uint64_t)perf_clock.overhead;

	struct perf_slot *s = t->free[--t->nfree];
	uint64_t blk = next_blk(t, rand);
	uint64_t slba = blk * t->nlb;
	uint64_t t0, t1;
	int rc;

	s->blk = blk;
	s->write = o->mix == 100 ? 0 : o->mix == 0 ? 1 : rng_below(&t->rng, 100) >= o->mix;
	if (o->trim && rng_below(&t->rng, 100) < o->trim)
		s->write = 2; /* never with --verify: the data would be undefined */
	s->measured = t->measuring;
	if (t->dev->gen) {
		uint32_t *g = &t->dev->gen[blk];

		if (s->write) {
			s->gen = (*g & GEN_MASK) + 1;
			if (s->gen > GEN_MASK)
				s->gen = 1;
			perf_fill_blocks(t, s->buf, slba, s->gen);
		}
		*g |= GEN_BUSY;
	}
	t0 = loop_tsc(t);
	if (s->write == 2) {
		struct upcie_nvme_dsm_range *r = s->buf;

		r->cattr = 0;
		r->nlb = t->nlb;
		r->slba = slba;
		rc = upcie_nvme_deallocate(t->qp, t->ns->nsid, r, 1, io_done, s, 0);
	} else if (perf_unlikely(o->md)) {
		rc = perf_md_submit(t, s, slba, io_done);
	} else if (perf_unlikely(t->dev->parts > 1)) {
		/* --bs above MDTS: the library splits it, io_done runs once. */
		rc = s->write ? upcie_nvme_write_split(t->qp, t->ns, slba, t->nlb, s->buf,
						       &s->split, io_done, s, 0)
			      : upcie_nvme_read_split(t->qp, t->ns, slba, t->nlb, s->buf, &s->split,
						      io_done, s, 0);
	} else if (s->write) {
		rc = upcie_nvme_write(t->qp, t->ns, slba, t->nlb, s->buf, io_done, s, 0);
	} else
		rc = upcie_nvme_read(t->qp, t->ns, slba, t->nlb, s->buf, io_done, s, 0);
	t1 = loop_tsc(t);
	s->start = t0;
	add_cost(t, &t->submit_tsc, t1 - t0, ovh);
	t->submit_calls++;
	if (perf_unlikely(rc)) {
		/* Not submitted: count it as a failed command. */
		if (t->dev->gen)
			t->dev->gen[blk] &= GEN_MASK;
		record_err(t, s, PERF_ST_REJECTED, false, 0, -1);
		t->free[t->nfree++] = s;
		return false;
	}
	if (s->measured)
		t->submitted_measured++;
	return true;
}

uint64_t perf_submit_batch(struct perf_thread *t, uint32_t n)
{
	uint64_t ovh = (uint64_t)perf_clock.overhead;
	uint64_t t0, t1;

	for (uint32_t i = 0; i < n; i++)
		submit_one(t);
	t0 = loop_tsc(t);
	upcie_nvme_ring(t->qp);
	t1 = loop_tsc(t);
	add_cost(t, &t->submit_tsc, t1 - t0, ovh);
	t->ring_calls++;
	return t1;
}

/* The controller is gone or failed: its commands have ended (or never
 * will); stop every thread and report it. */
static void dev_failed(struct perf_thread *t)
{
	if (!t->rc) {
		t->rc = PERF_EXIT_DEV;
		snprintf(t->errmsg, sizeof(t->errmsg), "qpair %u: %s", t->idx, upcie_errmsg());
	}
	perf_stop = 1;
}

/*
 * One poll. The time after the poll is read only when it completed
 * something (the cost of a poll that finds nothing is not counted): in a
 * TCG guest every TSC read is emulated, and a loop that spins on empty
 * polls would spend most of its time reading the clock.
 */
static inline int poll_once(struct perf_thread *t, uint64_t t0, uint64_t *t1p)
{
	uint64_t cb0 = t->cb_tsc, t1 = 0, ovh = (uint64_t)perf_clock.overhead;
	int n;

	if (!t0)
		t0 = loop_tsc(t);
	n = upcie_nvme_poll(t->qp, 0);
	if (n > 0)
		t1 = loop_tsc(t);
	*t1p = t1;
	if (perf_unlikely(n < 0)) {
		dev_failed(t);
		return n;
	}
	t->polls++;
	if (n > 0) {
		add_cost(t, &t->complete_tsc, t1 - t0 - (t->cb_tsc - cb0), ovh);
		t->polls_hit++;
	} else if (t->o->idle_sleep_us) {
		struct timespec ts = {0, (long)t->o->idle_sleep_us * 1000};

		nanosleep(&ts, NULL);
	}
	return n;
}

/*
 * One wait (--irq): it polls first, and sleeps (hybrid: spins first) only
 * when nothing is there. Its time is the driver's cost only when it reaped
 * without sleeping or spinning, as a poll would have: the wait statistics
 * after each call say which. Completions reaped otherwise are counted in
 * reaped_untimed, and left out of the per-completion cost.
 */
static inline int wait_once(struct perf_thread *t, uint64_t t0, uint32_t timeout_ms, uint64_t *t1p)
{
	uint64_t cb0 = t->cb_tsc, t1 = 0, ovh = (uint64_t)perf_clock.overhead;
	struct upcie_nvme_qpair_wait_stats ws;
	bool direct;
	int n;

	if (!t0)
		t0 = loop_tsc(t);
	n = upcie_nvme_qpair_wait(t->qp, timeout_ms);
	if (n > 0)
		t1 = loop_tsc(t);
	*t1p = t1;
	if (perf_unlikely(n < 0)) {
		dev_failed(t);
		return n;
	}
	upcie_nvme_qpair_wait_stats(t->qp, &ws);
	direct = ws.sleeps == t->ws_seen.sleeps && ws.spin_hits == t->ws_seen.spin_hits;
	t->ws_seen = ws;
	t->polls++;
	if (n > 0) {
		if (direct)
			add_cost(t, &t->complete_tsc, t1 - t0 - (t->cb_tsc - cb0), ovh);
		else
			t->reaped_untimed += (uint64_t)n;
		t->polls_hit++;
	}
	return n;
}

int perf_complete(struct perf_thread *t, uint64_t t0, uint32_t timeout_ms, uint64_t *t1p)
{
	if (t->o->irq)
		return wait_once(t, t0, timeout_ms, t1p);
	return poll_once(t, t0, t1p);
}

/* --irq: how long a wait may sleep, in ms (at least 1): up to the end of
 * the run, at most 100 ms so that SIGINT is seen (it does not end a wait). */
static uint32_t wait_ms(const struct perf_thread *t, uint64_t now)
{
	uint64_t per_ms = (uint64_t)(perf_clock.hz / 1000) + 1, ms;

	if (!t->measuring || !t->tsc_end || now >= t->tsc_end)
		return 100;
	ms = (t->tsc_end - now) / per_ms + 1;
	return ms > 100 ? 100 : (uint32_t)ms;
}

/*
 * Drain timeout: the commands still outstanding are given up on. The device
 * may complete them, and write into their buffers, any time until the
 * controller is reset: mark them so that teardown leaves their buffers
 * allocated, and count each as a failed command.
 */
static void abandon(struct perf_thread *t)
{
	for (uint32_t i = 0; i < t->nslots; i++)
		t->slots[i].abandoned = 1;
	for (uint32_t i = 0; i < t->nfree; i++)
		t->free[i]->abandoned = 0;
	for (uint32_t i = 0; i < t->nslots; i++) {
		struct perf_slot *s = &t->slots[i];

		if (!s->abandoned)
			continue;
		t->abandoned++;
		record_err(t, s, PERF_ST_ABANDONED, false, 0, -1);
	}
	snprintf(t->errmsg, sizeof(t->errmsg),
		 "qpair %u: %u commands did not complete within the drain timeout; abandoned "
		 "(their buffers stay allocated until the controller is reset)",
		 t->idx, t->abandoned);
	t->rc = PERF_EXIT_DEV;
}

void perf_thread_teardown(struct perf_thread *t)
{
	/* First the qpair: deleting it completes what is outstanding (as
	 * aborted), through io_done, which still needs the slots. */
	if (t->qp)
		upcie_nvme_qpair_destroy(t->qp);
	t->qp = NULL;
	if (t->slots) {
		for (uint32_t i = 0; i < t->nslots; i++)
			if (!t->slots[i].abandoned) {
				upcie_dma_free(t->dev->heap, t->slots[i].buf);
				if (t->slots[i].md)
					upcie_dma_free(t->dev->heap, t->slots[i].md);
			}
	}
	free(t->slots);
	free(t->free);
	t->slots = NULL;
	t->free = NULL;
}

bool perf_loop_go(struct perf_thread *t, uint64_t now, uint64_t *left, bool *syscalls)
{
	*left = UINT64_MAX;
	*syscalls = false;
	if (!t->measuring && now >= t->tsc_measure) {
		start_measuring(t, now);
		*syscalls = true;
	}
	if (perf_stop)
		return false;
	if (!t->measuring)
		return true;
	if (t->quota) {
		*left = t->quota - t->submitted_measured;
		if (!*left)
			return false;
	}
	return !t->tsc_end || now < t->tsc_end;
}

/*
 * Without --rate: keep the queue full. Polled, a pass that finds nothing
 * spins; with --irq it sleeps in upcie_nvme_qpair_wait() (which polls
 * first) until a completion or the end of the run. A stepped model is
 * stepped before each poll; a wait steps it itself (the PCI idle hook).
 */
static void run_full(struct perf_thread *t)
{
	const uint32_t batch = t->o->batch;
	const bool step = t->dev->sim && !t->o->irq;
	uint64_t last = 0;

	for (;;) {
		/* One TSC read per pass that finds nothing (two with a stepped
		 * sim): the one here, which also starts the poll's timing when
		 * nothing else runs in between. After a poll that completed
		 * something, its closing read. */
		uint64_t now = last ? last : loop_tsc(t), t0 = now, left;
		uint32_t want = t->nfree >= batch ? batch : 0;
		bool syscalls;

		if (!perf_loop_go(t, now, &left, &syscalls))
			break;
		if (syscalls)
			t0 = 0;
		if (left < batch)
			want = t->nfree >= left ? (uint32_t)left : 0;
		if (want)
			t0 = perf_submit_batch(t, want);
		if (step) {
			upcie_sim_step(t->dev->sim);
			t0 = 0;
		}
		perf_complete(t, t0, t->o->irq ? wait_ms(t, now) : 0, &last);
	}
}

/* Everything submitted completes (and counts) before we stop. */
static void drain(struct perf_thread *t)
{
	uint64_t deadline, last;

	t->cb_submit = false;
	deadline = perf_tsc() + t->drain_ticks;
	while (t->nfree < t->nslots) {
		int n;

		if (t->dev->sim && !t->o->irq)
			upcie_sim_step(t->dev->sim);
		n = perf_complete(t, 0, 100, &last);
		if (n < 0)
			break;
		if (!n && perf_tsc() > deadline) {
			abandon(t);
			break;
		}
	}
}

void *perf_thread_run(void *arg)
{
	struct perf_thread *t = arg;

	t->measuring = false;
	/* All qpairs start together. */
	while (perf_tsc() < t->tsc_go && !perf_stop)
		;
	t->cb_submit = t->o->loop_cb && !t->o->rate;
	if (t->o->rate)
		perf_pace_run(t);
	else
		run_full(t);
	drain(t);
	if (!t->measuring)
		start_measuring(t, perf_tsc());
	getrusage(RUSAGE_THREAD, &t->ru1);
	upcie_nvme_qpair_stats(t->qp, &t->st1);
	upcie_nvme_qpair_wait_stats(t->qp, &t->ws1);
	return NULL;
}
