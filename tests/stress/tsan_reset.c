/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Stress for ThreadSanitizer: controller resets while I/O runs.
 *
 * The sim controller runs on its own thread (threaded = true). Around it:
 *   - N I/O threads (-j, default 2), each with its own qpair, keep every
 *     CID busy with asynchronous writes and read-backs on LBAs no other
 *     command touches (one slot, one small LBA range); each read is
 *     checked against the pattern of the slot's last successful write. A
 *     command that ends UPCIE_NVME_SC_HOST_ABORTED (a reset took it) is
 *     submitted again from its callback, as the API allows.
 *   - one thread calls upcie_nvme_ctrl_reset() in a loop, with small
 *     random sleeps between the resets;
 *   - one thread calls upcie_nvme_ctrl_check() in a loop;
 *   - one thread (unless -C) creates a qpair, does a synchronous write and
 *     read-back on it and destroys it, in a loop.
 * After the run the I/O threads stop submitting and drain.
 *
 * Exit status 1 on a data mismatch, an unexpected completion status, a
 * failed reset or check, a callback count that differs from the commands
 * submitted, commands still outstanding after the drain, or DMA heap bytes
 * not returned at close. Qpair create / destroy failures are counted and
 * printed (some are expected while a reset runs) but do not fail the run.
 * Any ThreadSanitizer report fails it too (TSan's own exit status, or at
 * once with TSAN_OPTIONS=halt_on_error=1).
 *
 *   tsan_reset [-d SECONDS] [-j IO_THREADS] [-q DEPTH] [-s SEED]
 *              [-r MAX_RESET_SLEEP_US] [-C] [-k] [-v]
 * SECONDS defaults to $UPCIE_STRESS_SECONDS, else 60. -C: no create/destroy
 * thread; -k: run the whole time after a failure (to see more of what
 * follows it); -v: say why qpair creates and destroys failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <upcie/sim.h>
#include <upcie/upcie.h>

#define SLOT_BLOCKS 2	 /* LBAs each slot owns; a command moves 1 or 2 */
#define LBA_SIZE    4096 /* the namespace used (the sim's second) */
#define POISON	    0xdb /* a read buffer before the device fills it */
#define DRAIN_S	    10.0 /* the drain's deadline */
#define SYNC_MS	    10000

static struct {
	double seconds;
	unsigned io_threads;
	unsigned depth;
	uint64_t seed;
	unsigned reset_sleep_us;
	bool create;
	bool verbose;
	bool keep_going;
} opt = {
    .seconds = 60,
    .io_threads = 2,
    .depth = 32,
    .seed = 1,
    .reset_sleep_us = 5000,
    .create = true,
};

static struct {
	struct upcie_sim *sim;
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	const struct upcie_nvme_ns *ns;
	int stop;		    /* atomic: the run is over */
	int failed;		    /* atomic: a check failed */
	pthread_mutex_t print_lock; /* one failure message at a time */
	unsigned messages;	    /* under print_lock */
	bool leaked;		    /* a buffer was given up (sync timeout) */
} G = {.print_lock = PTHREAD_MUTEX_INITIALIZER};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool stopping(void)
{
	return __atomic_load_n(&G.stop, __ATOMIC_ACQUIRE) != 0;
}

/* A failed check: say what (the first few times) and fail the run. */
__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	va_list ap;

	__atomic_store_n(&G.failed, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&G.print_lock);
	if (G.messages++ < 20) {
		fputs("FAIL: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	pthread_mutex_unlock(&G.print_lock);
}

/* A counted event that is not a failure: printed only with -v. */
__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	va_list ap;

	if (!opt.verbose)
		return;
	pthread_mutex_lock(&G.print_lock);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	pthread_mutex_unlock(&G.print_lock);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* The pattern of block lba, written by owner with generation gen. */
static uint64_t pattern_word(unsigned owner, uint64_t lba, uint32_t gen, size_t i)
{
	uint64_t x = ((uint64_t)owner << 56) ^ (lba << 24) ^ ((uint64_t)gen << 1) ^
		     (i * 0x9e3779b97f4a7c15ull);

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static void fill(uint8_t *buf, unsigned owner, uint64_t slba, uint32_t nlb, uint32_t gen)
{
	uint64_t *w = (uint64_t *)buf;

	for (size_t i = 0; i < (size_t)nlb * LBA_SIZE / 8; i++)
		w[i] = pattern_word(owner, slba + i * 8 / LBA_SIZE, gen, i % (LBA_SIZE / 8));
}

/* The offset of the first differing byte, or -1 when buf holds the pattern. */
static long check(const uint8_t *buf, unsigned owner, uint64_t slba, uint32_t nlb, uint32_t gen)
{
	const uint64_t *w = (const uint64_t *)buf;

	for (size_t i = 0; i < (size_t)nlb * LBA_SIZE / 8; i++)
		if (w[i] != pattern_word(owner, slba + i * 8 / LBA_SIZE, gen, i % (LBA_SIZE / 8)))
			return (long)(i * 8);
	return -1;
}

/* ---- I/O threads --------------------------------------------------------- */

struct io_thread;

/* One command at a time on SLOT_BLOCKS LBAs of its own: write, read back. */
struct slot {
	struct io_thread *t;
	uint8_t *buf;	/* SLOT_BLOCKS blocks from the heap */
	uint64_t slba;	/* first of the slot's blocks */
	uint32_t nlb;	/* blocks of the command in flight / last written */
	uint32_t gen;	/* generation of the last write */
	bool reading;	/* the command in flight is the read-back */
	bool busy;	/* a command is in flight */
	bool written;	/* a write of generation gen succeeded */
	unsigned index; /* in the thread's slots */
};

struct io_thread {
	pthread_t th;
	unsigned id;
	struct upcie_nvme_qpair *qp;
	struct slot *slots;
	unsigned nslots;
	unsigned busy; /* slots with a command in flight */
	bool draining; /* submit nothing new, resubmit what a reset took */
	uint64_t rng;
	/* Counted by the owner thread only; read after the join. */
	uint64_t submitted, callbacks, aborted, writes, reads, verified;
	uint64_t errors, polls_failed;
};

static void slot_cb(void *arg, const struct upcie_nvme_cqe *cqe);

/* Submit the slot's command (no ring: the poll that called back rings). */
static void slot_submit(struct slot *s)
{
	struct io_thread *t = s->t;
	int rc;

	if (s->reading) {
		memset(s->buf, POISON, (size_t)s->nlb * LBA_SIZE);
		rc = upcie_nvme_read(t->qp, G.ns, s->slba, s->nlb, s->buf, slot_cb, s, 0);
	} else {
		rc = upcie_nvme_write(t->qp, G.ns, s->slba, s->nlb, s->buf, slot_cb, s, 0);
	}
	if (rc) {
		fail("thread %u slot %u: %s refused: %d (%s)", t->id, s->index,
		     s->reading ? "read" : "write", rc, upcie_errmsg());
		t->errors++;
		if (s->busy) {
			s->busy = false;
			t->busy--;
		}
		return;
	}
	t->submitted++;
	if (!s->busy) {
		s->busy = true;
		t->busy++;
	}
}

/* A new generation: a write of 1 or SLOT_BLOCKS blocks. */
static void slot_start(struct slot *s)
{
	struct io_thread *t = s->t;

	s->gen++;
	s->written = false;
	s->reading = false;
	s->nlb = 1 + (uint32_t)(rnd(&t->rng) % SLOT_BLOCKS);
	fill(s->buf, t->id, s->slba, s->nlb, s->gen);
	slot_submit(s);
}

static void slot_idle(struct slot *s)
{
	s->busy = false;
	s->t->busy--;
}

static void slot_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct slot *s = arg;
	struct io_thread *t = s->t;
	uint16_t st = upcie_nvme_cqe_status(cqe);
	long off;

	t->callbacks++;
	if (!s->busy) {
		fail("thread %u slot %u: a callback for a command not in flight", t->id, s->index);
		t->errors++;
		return;
	}
	if (st == UPCIE_NVME_SC_HOST_ABORTED) {
		/* Taken by a reset: the same command again (a read's buffer may
		 * hold part of a transfer: slot_submit poisons it again). */
		t->aborted++;
		slot_submit(s);
		return;
	}
	if (st) {
		fail("thread %u slot %u: %s of LBA %" PRIu64 "+%u ended with %#x (%s)", t->id,
		     s->index, s->reading ? "read" : "write", s->slba, s->nlb, st,
		     upcie_nvme_status_str(st));
		t->errors++;
		slot_idle(s);
		return;
	}
	if (!s->reading) {
		t->writes++;
		s->written = true;
		s->reading = true;
		slot_submit(s);
		return;
	}
	t->reads++;
	off = check(s->buf, t->id, s->slba, s->nlb, s->gen);
	if (off >= 0) {
		fail("thread %u slot %u: LBA %" PRIu64 "+%u generation %u: data differs at byte "
		     "%ld",
		     t->id, s->index, s->slba, s->nlb, s->gen, off);
		t->errors++;
	} else {
		t->verified++;
	}
	if (t->draining)
		slot_idle(s);
	else
		slot_start(s);
}

static int io_poll(struct io_thread *t, unsigned *idle)
{
	int n = upcie_nvme_poll(t->qp, 0);

	if (n < 0) {
		/* A failed reset (-ENOTRECOVERABLE) or a gone device (-ENODEV):
		 * neither should happen with a healthy sim. */
		if (!t->polls_failed++)
			fail("thread %u: poll: %d (%s)", t->id, n, upcie_errmsg());
		sched_yield();
	} else if (!n && (++*idle & 63) == 0) {
		sched_yield(); /* two cores for the sim and every thread here */
	}
	return n;
}

static void *io_main(void *arg)
{
	struct io_thread *t = arg;
	unsigned idle = 0;
	double deadline;

	for (unsigned i = 0; i < t->nslots; i++)
		slot_start(&t->slots[i]);
	upcie_nvme_ring(t->qp);
	while (!stopping())
		io_poll(t, &idle);

	t->draining = true;
	deadline = now_s() + DRAIN_S;
	while (t->busy && now_s() < deadline)
		io_poll(t, &idle);
	return NULL;
}

/* ---- the reset, check and create/destroy threads ------------------------- */

struct ctl_stats {
	uint64_t resets, checks;
	uint64_t creates, create_failed, destroys, destroy_failed;
	uint64_t sync_ios, sync_aborted;
};

static struct ctl_stats cs; /* each field written by one thread; read after the joins */

static void *reset_main(void *arg)
{
	uint64_t rng = opt.seed * 0x2545f4914f6cdd1dull + 1;
	int rc;

	(void)arg;
	while (!stopping()) {
		sleep_us(rnd(&rng) % (opt.reset_sleep_us + 1));
		rc = upcie_nvme_ctrl_reset(G.ctrl);
		if (rc) {
			fail("upcie_nvme_ctrl_reset: %d (%s)", rc, upcie_errmsg());
			break;
		}
		cs.resets++;
	}
	return NULL;
}

static void *check_main(void *arg)
{
	uint64_t rng = opt.seed * 0x9e3779b97f4a7c15ull + 3;
	int rc;

	(void)arg;
	while (!stopping()) {
		rc = upcie_nvme_ctrl_check(G.ctrl);
		if (rc) {
			fail("upcie_nvme_ctrl_check: %d (%s)", rc, upcie_errmsg());
			break;
		}
		cs.checks++;
		sleep_us(rnd(&rng) % 2000);
	}
	return NULL;
}

/* A synchronous command on qp, again while a reset takes it. 0, or < 0. */
static int sync_io(struct upcie_nvme_qpair *qp, bool write, uint64_t slba, uint8_t *buf)
{
	uint16_t status = 0;
	int rc;

	for (unsigned tries = 0; tries < 100; tries++) {
		rc = write ? upcie_nvme_write_sync(qp, G.ns, slba, 1, buf, &status, SYNC_MS)
			   : upcie_nvme_read_sync(qp, G.ns, slba, 1, buf, &status, SYNC_MS);
		cs.sync_ios++;
		if (rc == -ECANCELED || (rc == -EIO && status == UPCIE_NVME_SC_HOST_ABORTED)) {
			cs.sync_aborted++;
			continue;
		}
		return rc;
	}
	return -EAGAIN;
}

static void *create_main(void *arg)
{
	const struct upcie_nvme_qpair_opts qo = {.depth = 8};
	uint64_t slba = *(const uint64_t *)arg;
	uint8_t *buf = upcie_dma_alloc(G.heap, LBA_SIZE, LBA_SIZE);
	unsigned owner = opt.io_threads;
	uint32_t gen = 0;
	int rc;

	if (!buf) {
		fail("create thread: no buffer: %s", upcie_errmsg());
		return NULL;
	}
	while (!stopping()) {
		struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(G.ctrl, &qo);

		if (!qp) {
			cs.create_failed++;
			note("qpair create: %s", upcie_errmsg());
			sleep_us(1000);
			continue;
		}
		cs.creates++;
		fill(buf, owner, slba, 1, ++gen);
		rc = sync_io(qp, true, slba, buf);
		if (!rc) {
			memset(buf, POISON, LBA_SIZE);
			rc = sync_io(qp, false, slba, buf);
			if (!rc && check(buf, owner, slba, 1, gen) >= 0)
				fail("create thread: LBA %" PRIu64 " generation %u: data differs",
				     slba, gen);
		}
		if (rc == -ETIMEDOUT) {
			/* The device may still write it: never reuse it. */
			fail("create thread: a synchronous command timed out");
			G.leaked = true;
			buf = NULL;
		} else if (rc) {
			fail("create thread: synchronous I/O: %d (%s)", rc, upcie_errmsg());
		}
		rc = upcie_nvme_qpair_destroy(qp);
		if (rc) {
			cs.destroy_failed++;
			note("qpair destroy: %s", upcie_errmsg());
		} else {
			cs.destroys++;
		}
		if (!buf)
			break;
	}
	upcie_dma_free(G.heap, buf);
	return NULL;
}

/* ---- main ---------------------------------------------------------------- */

static int usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-d SECONDS] [-j IO_THREADS] [-q DEPTH] [-s SEED] "
		"[-r MAX_RESET_SLEEP_US] [-C] [-k] [-v]\n",
		argv0);
	return 2;
}

static int parse(int argc, char **argv)
{
	const char *env = getenv("UPCIE_STRESS_SECONDS");
	int c;

	if (env && *env)
		opt.seconds = atof(env);
	opt.seed = (uint64_t)time(NULL);
	while ((c = getopt(argc, argv, "d:j:q:s:r:Ckv")) != -1) {
		switch (c) {
		case 'd':
			opt.seconds = atof(optarg);
			break;
		case 'j':
			opt.io_threads = (unsigned)atoi(optarg);
			break;
		case 'q':
			opt.depth = (unsigned)atoi(optarg);
			break;
		case 's':
			opt.seed = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			opt.reset_sleep_us = (unsigned)atoi(optarg);
			break;
		case 'C':
			opt.create = false;
			break;
		case 'k':
			opt.keep_going = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		default:
			return usage(argv[0]);
		}
	}
	if (optind != argc || opt.seconds <= 0 || opt.io_threads < 1 || opt.io_threads > 8 ||
	    opt.depth < 2 || opt.depth > 1024)
		return usage(argv[0]);
	if (!opt.seed)
		opt.seed = 1;
	return 0;
}

static int open_all(void)
{
	struct upcie_sim_config cfg;
	struct upcie_pci_opts po = {0};
	const struct upcie_nvme_ctrl_opts co = {.admin_timeout_ms = 20000};

	upcie_sim_config_default(&cfg);
	cfg.threaded = true;
	/* Generous waits: under TSan, on a busy machine, the model's thread may
	 * not run for a while (printing a report takes long), and a disable
	 * that outlives CAP.TO fails the reset. */
	cfg.to = 40; /* 20 s */
	G.sim = upcie_sim_create(&cfg);
	if (!G.sim)
		return -1;
	po.sim = G.sim;
	G.dev = upcie_pci_open("sim", &po);
	if (!G.dev)
		return -1;
	G.heap = upcie_dma_heap_create(G.dev, 16u << 20, UPCIE_DMA_NO_HUGEPAGES);
	if (!G.heap)
		return -1;
	G.ctrl = upcie_nvme_ctrl_open(G.dev, G.heap, &co);
	if (!G.ctrl)
		return -1;
	for (G.ns = upcie_nvme_ns_first(G.ctrl); G.ns; G.ns = upcie_nvme_ns_next(G.ctrl, G.ns))
		if (G.ns->lba_size == LBA_SIZE)
			return 0;
	fprintf(stderr, "setup: no namespace with %u-byte blocks\n", LBA_SIZE);
	return -2;
}

int main(int argc, char **argv)
{
	struct io_thread *io;
	pthread_t reset_th, check_th, create_th;
	uint64_t create_slba;
	struct upcie_dma_heap_info hi;
	int rc;

	rc = parse(argc, argv);
	if (rc)
		return rc;
	rc = open_all();
	if (rc) {
		if (rc == -1)
			fprintf(stderr, "setup: %s\n", upcie_errmsg());
		return 1;
	}
	printf("tsan_reset: %.1f s, %u I/O threads, depth %u, seed %" PRIu64 "%s\n", opt.seconds,
	       opt.io_threads, opt.depth, opt.seed, opt.create ? ", qpair create/destroy" : "");

	io = calloc(opt.io_threads, sizeof(*io));
	if (!io)
		return 1;
	for (unsigned i = 0; i < opt.io_threads; i++) {
		struct io_thread *t = &io[i];
		const struct upcie_nvme_qpair_opts qo = {.depth = opt.depth};

		t->id = i;
		t->rng = opt.seed * 0x9e3779b97f4a7c15ull + i * 2 + 7;
		t->qp = upcie_nvme_qpair_create(G.ctrl, &qo);
		if (!t->qp) {
			fprintf(stderr, "qpair: %s\n", upcie_errmsg());
			return 1;
		}
		t->nslots = upcie_nvme_qpair_depth(t->qp) - 1;
		t->slots = calloc(t->nslots, sizeof(*t->slots));
		if (!t->slots)
			return 1;
		for (unsigned k = 0; k < t->nslots; k++) {
			struct slot *s = &t->slots[k];

			s->t = t;
			s->index = k;
			s->slba = ((uint64_t)i * t->nslots + k) * SLOT_BLOCKS;
			s->buf = upcie_dma_alloc(G.heap, SLOT_BLOCKS * LBA_SIZE, LBA_SIZE);
			if (!s->buf) {
				fprintf(stderr, "buffers: %s\n", upcie_errmsg());
				return 1;
			}
		}
	}
	create_slba = (uint64_t)opt.io_threads * opt.depth * SLOT_BLOCKS;
	if (create_slba + 1 > G.ns->nsze) {
		fprintf(stderr, "the namespace is too small for %u threads of depth %u\n",
			opt.io_threads, opt.depth);
		return 2;
	}

	/* A thread that cannot start ends the run (nothing to join for it). */
	for (unsigned i = 0; i < opt.io_threads; i++)
		if (pthread_create(&io[i].th, NULL, io_main, &io[i])) {
			fprintf(stderr, "tsan_reset: cannot start I/O thread %u\n", i);
			return 2;
		}
	if (pthread_create(&reset_th, NULL, reset_main, NULL) ||
	    pthread_create(&check_th, NULL, check_main, NULL) ||
	    (opt.create && pthread_create(&create_th, NULL, create_main, &create_slba))) {
		fprintf(stderr, "tsan_reset: cannot start the reset, check or create thread\n");
		return 2;
	}

	for (double end = now_s() + opt.seconds;
	     now_s() < end && (opt.keep_going || !__atomic_load_n(&G.failed, __ATOMIC_RELAXED));)
		sleep_us(20000);
	__atomic_store_n(&G.stop, 1, __ATOMIC_RELEASE);

	pthread_join(reset_th, NULL);
	pthread_join(check_th, NULL);
	if (opt.create)
		pthread_join(create_th, NULL);
	for (unsigned i = 0; i < opt.io_threads; i++)
		pthread_join(io[i].th, NULL);

	/* Every command submitted called back once; nothing is left. No
	 * command timed out and the library reset only when asked: a lost
	 * command would otherwise hide behind Abort, a reset and a retry. */
	struct upcie_nvme_ctrl_info ci;

	upcie_nvme_ctrl_info(G.ctrl, &ci);
	if (ci.resets != cs.resets)
		fail("the library reset the controller %" PRIu64 " times, %" PRIu64
		     " were asked for",
		     ci.resets, cs.resets);
	if (opt.create && !cs.creates)
		fail("no qpair could be created by the create thread");
	for (unsigned i = 0; i < opt.io_threads; i++) {
		struct io_thread *t = &io[i];
		struct upcie_nvme_qpair_stats st;
		uint32_t out = upcie_nvme_qpair_outstanding(t->qp);

		upcie_nvme_qpair_stats(t->qp, &st);
		if (st.timeouts)
			fail("thread %u: %" PRIu64 " commands timed out", i, st.timeouts);
		printf("thread %u: %" PRIu64 " submitted, %" PRIu64 " callbacks, %" PRIu64
		       " writes, %" PRIu64 " reads verified, %" PRIu64
		       " aborted by resets, %" PRIu64 " recoveries\n",
		       i, t->submitted, t->callbacks, t->writes, t->verified, t->aborted,
		       st.recoveries);
		if (t->callbacks != t->submitted)
			fail("thread %u: %" PRIu64 " commands submitted but %" PRIu64 " callbacks",
			     i, t->submitted, t->callbacks);
		if (t->busy || out)
			fail(
			    "thread %u: after the drain %u slots wait for a callback and the qpair "
			    "has %u commands outstanding",
			    i, t->busy, out);
		if (!t->verified)
			fail("thread %u: no read was verified", i);
		if (!t->busy && !out)
			for (unsigned k = 0; k < t->nslots; k++)
				upcie_dma_free(G.heap, t->slots[k].buf);
		rc = upcie_nvme_qpair_destroy(t->qp);
		if (rc)
			fail("thread %u: qpair destroy: %d (%s)", i, rc, upcie_errmsg());
		free(t->slots);
	}
	printf("%" PRIu64 " resets, %" PRIu64 " checks; qpairs: %" PRIu64 " created (%" PRIu64
	       " failed), %" PRIu64 " destroyed (%" PRIu64 " failed), %" PRIu64
	       " synchronous commands (%" PRIu64 " aborted by resets)\n",
	       cs.resets, cs.checks, cs.creates, cs.create_failed, cs.destroys, cs.destroy_failed,
	       cs.sync_ios, cs.sync_aborted);
	if (!cs.resets)
		fail("no reset ran");

	rc = upcie_nvme_ctrl_close(G.ctrl);
	if (rc)
		fail("close: %d (%s)", rc, upcie_errmsg());
	upcie_dma_heap_info(G.heap, &hi);
	if (hi.used && !G.leaked && !__atomic_load_n(&G.failed, __ATOMIC_RELAXED))
		fail("%zu bytes of the DMA heap were not returned", hi.used);
	upcie_dma_heap_destroy(G.heap);
	upcie_pci_close(G.dev);
	upcie_sim_destroy(G.sim);
	free(io);
	if (__atomic_load_n(&G.failed, __ATOMIC_ACQUIRE)) {
		printf("FAILED (seed %" PRIu64 ")\n", opt.seed);
		return 1;
	}
	printf("ok\n");
	return 0;
}
