/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf --rate: commands go out by the clock, not as fast as the
 * queue allows, so that a run at a fixed rate well below the device's
 * ceiling shows what the waiting costs in CPU time.
 *
 * Each qpair gets an equal share of the rate: a command is due every
 * pace_ticks, on a fixed grid from the start, so a late pass (a sleep
 * that overran) is made up by the next one and the average holds. A
 * backlog of more than 10 ms (or one period, if longer) is dropped
 * instead: a device slower than the rate runs at its own pace, and a stall
 * is followed by at most 10 ms worth of commands at once (as many as there
 * are free slots). Commands due together go out with one doorbell; the
 * completion callback never submits (both --loop modes pace the same way).
 *
 * Between submissions:
 *   polled   poll, spinning, until the next one is due (--idle-sleep
 *            naps after empty polls, as without --rate);
 *   --irq    with commands in flight, upcie_nvme_qpair_wait() with a
 *            timeout up to the next submission time, in whole
 *            milliseconds rounded up (a wait returns at a completion, so
 *            it oversleeps only when none comes before the submission is
 *            due); with nothing in flight there is nothing to wake up
 *            for: a plain sleep until the submission time (pace_sleeps),
 *            precise to the timer's slack rather than to a millisecond.
 */
#include <stdio.h>
#include <time.h>

#include "perf.h"

/* A TSC read of the loop, counted (as perf_io.c's). */
static inline uint64_t pace_tsc(struct perf_thread *t)
{
	t->tsc_reads++;
	return perf_tsc();
}

/* Ticks to ns, for a sleep. */
static long ticks_ns(uint64_t ticks)
{
	double ns = (double)ticks * 1e9 / perf_clock.hz;

	return ns > 1e9 ? 1000000000L : (long)ns;
}

/* --irq, nothing in flight: sleep until 'until' (at most 100 ms: SIGINT). */
static void pace_sleep(struct perf_thread *t, uint64_t now, uint64_t until)
{
	long ns = ticks_ns(until - now);
	struct timespec ts = {0, ns > 100000000L ? 100000000L : ns};

	t->pace_sleeps++;
	nanosleep(&ts, NULL);
}

/* --irq: ms up to 'until', rounded up, at least 1, at most 100 (SIGINT). */
static uint32_t ms_until(uint64_t now, uint64_t until)
{
	uint64_t per_ms = (uint64_t)(perf_clock.hz / 1000) + 1, ms;

	if (until <= now)
		return 1;
	ms = (until - now + per_ms - 1) / per_ms;
	return ms > 100 ? 100 : ms ? (uint32_t)ms : 1;
}

void perf_pace_run(struct perf_thread *t)
{
	const bool irq = t->o->irq, step = t->dev->sim && !irq;
	const uint64_t period = t->pace_ticks;
	/* 10 ms: a loop that spins (polled) shares its CPU with whatever else
	 * runs there, and is descheduled for a scheduler slice at a time (a few
	 * ms); with 1 ms it lost those slices' submissions and ran below the
	 * rate (1200-1500 of 2000 IOPS on a loaded host). */
	uint64_t max_lag = (uint64_t)(perf_clock.hz / 100), last = 0;

	if (max_lag < period)
		max_lag = period;
	t->next_due = perf_tsc();
	for (;;) {
		uint64_t now = last ? last : pace_tsc(t), t0 = now, left, until;
		uint32_t due = 0;
		bool syscalls;

		if (!perf_loop_go(t, now, &left, &syscalls))
			break;
		if (syscalls)
			t0 = 0;
		if (now > t->next_due + max_lag)
			t->next_due = now - max_lag; /* a stall: not made up for */
		while (due < t->nfree && due < left && now >= t->next_due) {
			due++;
			t->next_due += period;
		}
		if (due)
			t0 = perf_submit_batch(t, due);
		if (!irq) {
			if (step) {
				upcie_sim_step(t->dev->sim);
				t0 = 0;
			}
			perf_complete(t, t0, 0, &last);
			continue;
		}
		/* The next thing to wake up for: the next submission, or the
		 * end of the run, whichever is first. */
		until = t->next_due;
		if (t->measuring && t->tsc_end && t->tsc_end < until)
			until = t->tsc_end;
		if (t->nfree < t->nslots) {
			/* In flight: a completion (no free slot: nothing else to do). */
			perf_complete(t, t0, t->nfree ? ms_until(now, until) : 100, &last);
		} else {
			last = 0;
			if (until > now)
				pace_sleep(t, now, until);
		}
	}
}
