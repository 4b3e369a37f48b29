/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf internals: options, per-qpair worker state, results.
 *
 *   perf.c         main: devices, heaps, qpairs, threads, progress
 *   perf_io.c      the I/O loop of one qpair (the hot path)
 *   perf_pace.c    the loop of --rate: commands go out by the clock
 *   perf_opts.c    command line
 *   perf_report.c  text and JSON results
 *   perf_hist.h    latency histogram
 */
#ifndef UPCIE_PERF_H
#define UPCIE_PERF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>

#include <upcie/sim.h>
#include <upcie/upcie.h>

#include "perf_hist.h"

#define PERF_MAX_DEVS	 16
#define PERF_MAX_QPAIRS	 64 /* per controller */
#define PERF_MAX_CPUS	 1024
#define PERF_ERR_RECORDS 8  /* failed commands / mismatches kept for the report */
#define PERF_MAX_PCTS	 16 /* --percentiles */
/* What one I/O thread writes starts and ends on these boundaries: two
 * cache lines, so that no line, nor an adjacent-line prefetch pair, is
 * another thread's too. */
#define PERF_LINE 128

/* perf_err.status values that are not NVMe statuses. */
#define PERF_ST_REJECTED  0xffff /* refused by the library at submit */
#define PERF_ST_ABANDONED 0xfffe /* no completion by the drain timeout */

/* Exit codes. */
#define PERF_EXIT_OK	0
#define PERF_EXIT_USAGE 1
#define PERF_EXIT_DEV	2
#define PERF_EXIT_IO	3

enum perf_rw { PERF_READ, PERF_WRITE, PERF_RANDREAD, PERF_RANDWRITE, PERF_RANDRW };

struct perf_opts {
	const char *devices[PERF_MAX_DEVS];
	unsigned ndev;
	uint32_t nsid; /* 0: the first active namespace */
	enum perf_rw rw;
	unsigned mix;  /* read percentage (randrw) */
	unsigned trim; /* percentage of commands that deallocate their blocks instead */
	uint64_t bs;
	uint32_t qd;
	uint32_t batch;	 /* commands per SQ doorbell */
	uint32_t qpairs; /* per controller */
	int cpus[PERF_MAX_CPUS];
	unsigned ncpus;
	double time_s; /* 0: no time limit (only with io_count) */
	double warmup_s;
	uint64_t io_count; /* 0: no limit */
	bool verify;
	bool no_dbbuf;
	bool loop_cb;		 /* --loop callback: callbacks submit the next command */
	bool lazy_cq;		 /* --lazy-cq */
	bool no_progress_thread; /* --no-progress-thread */
	uint32_t idle_sleep_us;	 /* --idle-sleep; 0: spin */
	uint32_t queue_size;	 /* --queue-size; 0: qd + 1 */
	uint32_t cq_size;	 /* --cq-size; 0: the library's default */
	bool irq;		 /* --irq (or --hybrid): complete through upcie_nvme_qpair_wait() */
	uint32_t spin_us;	 /* --hybrid US: upcie_nvme_qpair_opts.spin_us */
	uint16_t irq_aggr;	 /* --irq-aggr: upcie_nvme_ctrl_opts.irq_aggr */
	uint16_t irq_aggr_us;	 /* --irq-aggr-us: upcie_nvme_ctrl_opts.irq_aggr_us */
	uint64_t rate;		 /* --rate: I/Os per second over every qpair; 0: no limit */
	bool json;
	bool progress;
	bool sim_stepped;
	uint16_t sim_ms;   /* sim only: metadata bytes per block the namespaces report */
	uint8_t sim_pi;	   /* sim only: PI type of the namespaces (--sim-pi) */
	bool sim_extended; /* sim only: metadata in extended LBAs (--sim-extended) */
	bool sim_pi_first; /* sim only: PI in the first metadata bytes (--sim-pi-first) */
	bool sim_guard64;  /* sim only: the 64-bit guard PI format (--sim-guard64) */
	bool md;	   /* --md: move each block's metadata (upcie_nvme_read/write_ext) */
	uint8_t pi;	   /* --pi: PERF_PI_* */
	double pcts[PERF_MAX_PCTS]; /* --percentiles, ascending */
	unsigned npcts;
	const char *output;	/* --output FILE: results there, not on stdout */
	double status_interval; /* --status-interval S: JSON lines every S s; 0: none */
	int argc;		/* the command line, for the JSON report */
	char **argv;
	time_t started; /* wall clock at the start, for the JSON report */
};

/* Parse argv into o. 0: run; 1: usage error (message printed);
 * -1: --help printed, exit 0. */
int perf_opts_parse(int argc, char **argv, struct perf_opts *o);
const char *perf_rw_name(enum perf_rw rw);

/* One failed command or verify mismatch, for the report. */
struct perf_err {
	uint64_t lba;
	uint16_t status; /* NVMe status, 0 for a mismatch */
	uint8_t write;	 /* 0 read, 1 write, 2 trim */
	uint8_t mismatch;
	uint32_t expect_gen; /* mismatch: generation expected */
	uint32_t offset;     /* mismatch: first bad byte in the transfer */
};

struct perf_thread;

/* One in-flight command. */
/* --pi: who makes and checks the protection information. */
enum { PERF_PI_NONE, PERF_PI_HOST, PERF_PI_PRACT };
/* The application tag upcie-perf writes and checks with --pi. */
#define PERF_APPTAG 0x5550

struct perf_slot {
	struct perf_thread *t;
	void *buf;
	void *md;		       /* --md with separate metadata: its buffer */
	uint64_t start;		       /* TSC before the submit call */
	uint64_t blk;		       /* bs-sized block index in the namespace */
	uint32_t gen;		       /* generation written (writes with --verify) */
	uint8_t write;		       /* direction: 0 read, 1 write, 2 trim (deallocate) */
	uint8_t measured;	       /* submitted after the warm-up */
	uint8_t abandoned;	       /* still outstanding after the drain timeout: the device
					  may yet write to buf, which stays allocated */
	struct upcie_nvme_split split; /* --bs above MDTS: the commands of one I/O */
};

struct perf_dev {
	unsigned idx;
	const char *name;
	struct upcie_pci_dev *pci;
	struct upcie_dma_heap *heap;
	struct upcie_sim *sim; /* --sim-stepped: the model the I/O threads step */
	struct upcie_nvme_ctrl *ctrl;
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_ctrl_info info;
	uint64_t nblk; /* bs-sized blocks in the namespace */
	uint32_t *gen; /* --verify: generation per block (0: unknown) */
	size_t heap_size;
	uint32_t parts; /* commands per I/O: 1, or more when --bs is above MDTS */
	bool has_sim_stats;
	struct upcie_sim_stats sim0, sim1;
};

struct perf_thread {
	/* Set up by main. */
	unsigned idx;  /* global qpair index */
	unsigned qidx; /* index on its controller */
	int cpu;       /* -1: not pinned */
	struct perf_dev *dev;
	const struct perf_opts *o;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint32_t nlb; /* blocks per I/O */
	uint32_t lba_shift;
	/* --md / --pi (perf_md.c): buffer sizes, bytes from one block's data
	 * to the next, and the option flags of writes and reads. */
	size_t data_len, md_len, stride;
	uint32_t wflags, rflags;
	uint64_t blk_first, blk_count; /* this qpair's slice (the whole ns without --verify) */
	struct perf_slot *slots;
	struct perf_slot **free;
	uint32_t nfree, nslots;
	uint64_t rng;
	uint64_t quota;			       /* I/Os to measure; 0: time-bound */
	uint64_t tsc_go, tsc_measure, tsc_end; /* start, warm-up end, run end (0: none) */
	uint64_t drain_ticks;
	uint64_t pace_ticks; /* --rate: ticks between two submissions of this qpair */

	/* Loop state. */
	uint64_t seq_next;
	uint64_t submitted_measured;
	uint64_t next_due; /* --rate: when the next command is due (TSC) */
	bool measuring;
	bool cb_submit; /* --loop callback: callbacks may submit the next command */
	struct upcie_nvme_qpair_wait_stats ws_seen; /* --irq: after the last wait */

	/* Results (measured I/Os only). */
	struct perf_hist hist[3]; /* latency of reads [0], writes [1] and trims [2] */
	struct rusage ru0, ru1;	  /* the thread's CPU time at the start and end of the measure */
	uint64_t ios, reads, writes, trims;
	uint64_t submit_tsc, complete_tsc, cb_tsc;
	uint64_t submit_calls, ring_calls, polls, polls_hit;
	uint64_t tsc_reads; /* TSC reads of the loop itself (rdtsc is emulated in a TCG guest) */
	uint64_t preempted; /* intervals left out of the cost */
	uint64_t reaped_untimed; /* --irq: completions reaped by waits that slept or
				    spun, whose time is not the driver's cost */
	uint64_t pace_sleeps;	 /* --rate with --irq: sleeps until the next submission
				    with nothing in flight */
	uint64_t tsc_start, tsc_stop;
	uint64_t errors, mismatches, verified;
	uint32_t abandoned; /* commands outstanding at the drain timeout (in errors) */
	struct perf_err err[PERF_ERR_RECORDS];
	unsigned nerr;
	struct upcie_nvme_qpair_stats st0, st1;
	struct upcie_nvme_qpair_wait_stats ws0, ws1; /* --irq */
	int rc;					     /* PERF_EXIT_* of the worker */
	char errmsg[256];

	/* Progress, read by main with relaxed loads. */
	uint64_t prog_ios, prog_lat;
} __attribute__((aligned(PERF_LINE))); /* threads side by side share no cache
					  line (nor an adjacent-line prefetch pair) */

struct perf_clock {
	double hz;	    /* TSC ticks per second */
	double overhead;    /* ticks one back-to-back TSC read pair costs */
	uint64_t preempted; /* ticks: a library call measured longer than this
			       was interrupted (20 us); left out of the cost */
};

extern struct perf_clock perf_clock;
extern volatile int perf_stop; /* SIGINT */

void *perf_thread_run(void *arg);

/* Shared by the loops of perf_io.c and perf_pace.c. */

/* Start measuring when its time came. False when the loop is over (run
 * time, --io-count, SIGINT); else *left is what the quota still allows
 * (UINT64_MAX: no quota) and *syscalls says measuring just started (it
 * made system calls: not a poll's time). */
bool perf_loop_go(struct perf_thread *t, uint64_t now, uint64_t *left, bool *syscalls);
/* Queue n commands, then one doorbell; the TSC read after the doorbell. */
uint64_t perf_submit_batch(struct perf_thread *t, uint32_t n);
/* Reap completions once: upcie_nvme_poll(), or with --irq
 * upcie_nvme_qpair_wait() for at most timeout_ms. t0: a TSC read just
 * before (0: read one here); *t1p: the TSC after, when it reaped (else 0).
 * Returns what it reaped or a negative errno (the run is stopped). */
int perf_complete(struct perf_thread *t, uint64_t t0, uint32_t timeout_ms, uint64_t *t1p);
/* The --rate loop (perf_pace.c). */
void perf_pace_run(struct perf_thread *t);
/* Destroy the qpair, then free the I/O buffers, except those of abandoned
 * commands: they stay in the heap, which is destroyed only after the
 * controller is closed (reset), when the device can no longer write to it. */
void perf_thread_teardown(struct perf_thread *t);
void perf_fill(void *buf, uint64_t slba, uint32_t nlb, uint32_t lba_shift, uint32_t gen);
/* Offset of the first bad byte, or -1 when buf matches. */
long perf_check(const void *buf, uint64_t slba, uint32_t nlb, uint32_t lba_shift, uint32_t gen);

/* perf_md.c: metadata and protection information (--md, --pi). */
void perf_md_setup(struct perf_thread *t);
/* perf_fill / perf_check for one I/O's blocks, in the namespace's layout. */
void perf_fill_blocks(struct perf_thread *t, void *buf, uint64_t slba, uint32_t gen);
long perf_check_blocks(const struct perf_thread *t, const void *buf, uint64_t slba, uint32_t gen);
/* Submit s as a read or write with metadata and PI (no doorbell). */
int perf_md_submit(struct perf_thread *t, struct perf_slot *s, uint64_t slba, upcie_nvme_cb cb);
/* A read that completed: its PI checked on the host (--pi), 0 or a status,
 * with the offset of the failing block in *off. */
uint16_t perf_pi_check(const struct perf_thread *t, const struct perf_slot *s, long *off);

/* Report. */
void perf_report(const struct perf_opts *o, struct perf_dev *devs, unsigned ndev,
		 struct perf_thread *threads, unsigned nthreads);

#define perf_unlikely(x) __builtin_expect(!!(x), 0)

static inline uint64_t perf_tsc(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

static inline double perf_ns(double ticks)
{
	return ticks * 1e9 / perf_clock.hz;
}

/* JSON key of a percentile (perf_report.c): 99.9 -> "p999". */
void perf_pct_key(double p, char *buf, size_t len);

#endif
