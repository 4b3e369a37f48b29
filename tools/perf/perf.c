/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf: I/O benchmark and example of the queue-pair API.
 *
 *   upcie-perf --device sim --rw randread --bs 4K --qd 32 --time 3
 *   upcie-perf --device 0000:01:00.0 --qpairs 2 --cpus 2,3 --json
 *
 * Per controller: open the device, make a DMA heap sized from the queue
 * depth, block size and queue memory (when that is large, only after the
 * options were checked on a small one), bring the controller up, and create
 * --qpairs queue pairs, each driven by its own thread (perf_io.c) with
 * every buffer allocated up front. Main prints progress once a second and
 * the results at the end (perf_report.c). See --help for the options and
 * exit codes.
 *
 * Several --device: they are opened into one DMA context (dma.h), one IOVA
 * space (one vfio container or IOAS) for all of them, each with a heap of
 * that context; devices on different backends (uio and vfio) cannot share
 * one and then get DMA spaces of their own, as said on stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "perf.h"

struct perf_clock perf_clock;
volatile int perf_stop;
/* Several devices: the DMA context they share (NULL: one device, or not
 * shareable). */
static struct upcie_dma_ctx *perf_ctx;

/* Open d into perf_ctx; a device another backend than the others runs on
 * is opened on its own, saying so. */
static struct upcie_pci_dev *open_pci(struct perf_dev *d, struct upcie_pci_opts *popts)
{
	struct upcie_pci_dev *pci;

	popts->dma_ctx = perf_ctx;
	pci = upcie_pci_open(d->name, popts);
	if (!pci && perf_ctx && errno == EINVAL &&
	    strstr(upcie_errmsg(), "one DMA context serves one backend")) {
		fprintf(stderr,
			"upcie-perf: %s: its backend differs from the other devices': it gets a "
			"DMA space of its own\n",
			d->name);
		popts->dma_ctx = NULL;
		pci = upcie_pci_open(d->name, popts);
	}
	return pci;
}

/* Zeroed, on PERF_LINE boundaries at both ends: what one I/O thread writes
 * (its slots, free list, counters) shares no cache line with another's. */
static void *zalloc_lines(size_t n, size_t size)
{
	size_t bytes;

	/* The library's upcie_line_calloc() does this inside libupcie; a tool
	 * cannot call it (hidden). */
	if (size && n > ((size_t)-1 - (PERF_LINE - 1)) / size)
		return NULL;
	bytes = (n * size + PERF_LINE - 1) & ~(size_t)(PERF_LINE - 1);
	if (!bytes)
		bytes = PERF_LINE;
	void *p = aligned_alloc(PERF_LINE, bytes);

	if (p)
		memset(p, 0, bytes);
	return p;
}

static void on_sigint(int sig)
{
	(void)sig;
	perf_stop = 1;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* TSC rate against CLOCK_MONOTONIC over 50 ms, once; and the cost of a
 * back-to-back pair of TSC reads, taken off every measured interval. */
static void clock_calibrate(void)
{
	const struct timespec nap = {0, 50 * 1000 * 1000};
	uint64_t n0, n1, c0, c1, best = UINT64_MAX;

	n0 = mono_ns();
	c0 = perf_tsc();
	nanosleep(&nap, NULL);
	n1 = mono_ns();
	c1 = perf_tsc();
	perf_clock.hz = (double)(c1 - c0) * 1e9 / (double)(n1 - n0);
	for (int i = 0; i < 1000; i++) {
		uint64_t a = perf_tsc(), b = perf_tsc();
		if (b - a < best)
			best = b - a;
	}
	perf_clock.overhead = (double)best;
	perf_clock.preempted = (uint64_t)(perf_clock.hz * 20e-6);
}

static size_t round_up(size_t v, size_t a)
{
	return (v + a - 1) / a * a;
}

/*
 * Heap: I/O buffers (qd x bs) and queue memory (SQ, CQ, and PRP lists for
 * the largest transfer the library issues, 8 MiB: 5 list pages per command;
 * parts commands per I/O when --bs is above MDTS) per qpair, plus 2 MiB for
 * the admin queue, Identify data and shadow doorbell pages.
 */
static size_t heap_size(const struct perf_opts *o, uint32_t parts)
{
	size_t depth = (size_t)o->qd * parts + 1;
	/* With metadata: extended blocks (at most 256 bytes more per 512) and a
	 * separate buffer: three times the data is room enough. */
	size_t per_io = (o->md ? 3 : 1) * round_up(o->bs, 4096);
	size_t per_qp = o->qd * per_io + 2 * round_up(depth * 64, 4096) + depth * 5 * 4096;

	return (2u << 20) + round_up(o->qpairs * per_qp, 2u << 20);
}

static int fail(int rc, const char *what, const char *dev)
{
	fprintf(stderr, "upcie-perf: %s%s%s: %s\n", dev ? dev : "", dev ? ": " : "", what,
		upcie_errmsg());
	return rc;
}

/* Bring the controller up on a new heap of size bytes. */
/* Close the controller and its heap (to come up again on another heap). */
static int ctrl_down(struct perf_dev *d)
{
	int rc;

	d->ns = NULL;
	rc = upcie_nvme_ctrl_close(d->ctrl);
	d->ctrl = NULL;
	upcie_dma_heap_destroy(d->heap);
	d->heap = NULL;
	return rc ? fail(PERF_EXIT_DEV, "controller shutdown", d->name) : 0;
}

static int ctrl_up(const struct perf_opts *o, struct perf_dev *d, size_t size)
{
	struct upcie_nvme_ctrl_opts copts = {.no_dbbuf = o->no_dbbuf,
					     .io_queues = (uint16_t)o->qpairs,
					     .irq_aggr = o->irq_aggr,
					     .irq_aggr_us = o->irq_aggr_us};

	d->heap_size = size;
	d->heap = upcie_dma_heap_create(d->pci, size, 0);
	if (!d->heap)
		return fail(PERF_EXIT_DEV, "cannot create the DMA heap", d->name);
	d->ctrl = upcie_nvme_ctrl_open(d->pci, d->heap, &copts);
	if (!d->ctrl)
		return fail(PERF_EXIT_DEV, "cannot bring the controller up", d->name);
	upcie_nvme_ctrl_info(d->ctrl, &d->info);
	return 0;
}

/* The options against what the controller and namespace allow. */
static int dev_check(const struct perf_opts *o, struct perf_dev *d)
{
	uint64_t need;

	d->ns = o->nsid ? upcie_nvme_ns_get(d->ctrl, o->nsid) : upcie_nvme_ns_first(d->ctrl);
	if (!d->ns) {
		fprintf(stderr, "upcie-perf: %s: namespace %u is not active\n", d->name, o->nsid);
		return PERF_EXIT_USAGE;
	}
	if (d->ns->ms && !o->md) {
		fprintf(stderr,
			"upcie-perf: %s: namespace %u is formatted with %u bytes of metadata per "
			"block: pass --md (or --pi) to move it, or pick a namespace without "
			"metadata (--ns)\n",
			d->name, d->ns->nsid, d->ns->ms);
		return PERF_EXIT_USAGE;
	}
	if (o->md && !d->ns->ms) {
		fprintf(stderr, "upcie-perf: %s: --md: namespace %u has no metadata\n", d->name,
			d->ns->nsid);
		return PERF_EXIT_USAGE;
	}
	if (o->pi && !d->ns->pi_type) {
		fprintf(stderr,
			"upcie-perf: %s: --pi: namespace %u is not formatted with protection "
			"information\n",
			d->name, d->ns->nsid);
		return PERF_EXIT_USAGE;
	}
	if (o->pi && ((d->ns->guard_bits != 16 && d->ns->guard_bits != 64) || d->ns->pi_sts)) {
		fprintf(stderr,
			"upcie-perf: %s: --pi: namespace %u has a PI format the library does not "
			"do (%u-bit guard, storage tag size %u)\n",
			d->name, d->ns->nsid, d->ns->guard_bits, d->ns->pi_sts);
		return PERF_EXIT_USAGE;
	}
	/* --bs above MDTS is split for plain I/O; with metadata one I/O is one
	 * command, so it must fit the largest transfer with its metadata. */
	uint64_t max_bs = (uint64_t)d->ns->md_max_xfer_blocks << d->ns->lba_shift;
	if (o->md && o->bs > max_bs) {
		fprintf(stderr,
			"upcie-perf: %s: --md: --bs %llu is above the largest transfer with "
			"metadata, %llu bytes (MDTS); lower --bs\n",
			d->name, (unsigned long long)o->bs, (unsigned long long)max_bs);
		return PERF_EXIT_USAGE;
	}
	if (o->bs % d->ns->lba_size || (o->bs >> d->ns->lba_shift) > UINT32_MAX) {
		fprintf(stderr,
			"upcie-perf: %s: --bs %llu is not a multiple of the LBA size %u of "
			"namespace %u\n",
			d->name, (unsigned long long)o->bs, d->ns->lba_size, d->ns->nsid);
		return PERF_EXIT_USAGE;
	}
	/* Above MDTS an I/O is several commands (the library splits it, as for
	 * the fio engine): the queues must hold qd of them. */
	d->parts = o->md ? 1 : upcie_nvme_split_parts(d->ns, (uint32_t)(o->bs >> d->ns->lba_shift));
	need = (uint64_t)o->qd * d->parts + 1;
	if (d->parts > 1 && need > d->info.mqes) {
		fprintf(stderr,
			"upcie-perf: %s: --bs %llu is %u commands of at most %u bytes (MDTS) each: "
			"--qd %u of them needs queues of %llu entries, more than the "
			"controller's %u (MQES); lower --bs or --qd\n",
			d->name, (unsigned long long)o->bs, d->parts,
			d->ns->max_xfer_blocks << d->ns->lba_shift, o->qd, (unsigned long long)need,
			d->info.mqes);
		return PERF_EXIT_USAGE;
	}
	if (o->queue_size && o->queue_size < need) {
		fprintf(stderr,
			"upcie-perf: %s: --queue-size %u is too small: --qd %u I/Os of %u commands "
			"each (--bs above MDTS) need at least %llu entries\n",
			d->name, o->queue_size, o->qd, d->parts, (unsigned long long)need);
		return PERF_EXIT_USAGE;
	}
	if (o->qd + 1 > d->info.mqes) {
		fprintf(stderr,
			"upcie-perf: %s: --qd %u is above the controller's limit %u (MQES: "
			"queues of %u entries)\n",
			d->name, o->qd, d->info.mqes - 1, d->info.mqes);
		return PERF_EXIT_USAGE;
	}
	if (o->qpairs > d->info.io_qpairs_max) {
		fprintf(stderr, "upcie-perf: %s: --qpairs %u, but the controller granted %u\n",
			d->name, o->qpairs, d->info.io_qpairs_max);
		return PERF_EXIT_USAGE;
	}
	d->nblk = d->ns->nsze / (o->bs >> d->ns->lba_shift);
	if (o->verify || o->rw == PERF_READ || o->rw == PERF_WRITE) {
		/* Each qpair gets a slice; verify needs more blocks than commands in flight. */
		if (d->nblk / o->qpairs <= 2ull * o->qd) {
			fprintf(stderr,
				"upcie-perf: %s: namespace %u has %llu blocks of %llu bytes: too "
				"few for %u qpairs at --qd %u\n",
				d->name, d->ns->nsid, (unsigned long long)d->nblk,
				(unsigned long long)o->bs, o->qpairs, o->qd);
			return PERF_EXIT_USAGE;
		}
	}
	if (!d->nblk) {
		fprintf(stderr, "upcie-perf: %s: namespace %u is smaller than --bs\n", d->name,
			d->ns->nsid);
		return PERF_EXIT_USAGE;
	}
	if (o->verify && d->nblk > (1ull << 30)) {
		fprintf(stderr,
			"upcie-perf: %s: --verify keeps 4 bytes per block: %llu blocks is too "
			"many; use a larger --bs\n",
			d->name, (unsigned long long)d->nblk);
		return PERF_EXIT_USAGE;
	}
	return 0;
}

/*
 * The heap the run needs (heap_size) is only known to be reasonable once
 * --bs, --qd and --qpairs have been checked against the controller, which
 * needs the controller up, which needs a heap. When the run's heap is large,
 * the controller is first brought up on a small one (admin queue, Identify
 * data, shadow doorbells), the options are checked, and it is brought up
 * again on the run's heap: a bad --bs or --qd is a usage error, never a
 * failed allocation of qd x bs bytes. Small heaps skip the extra reset.
 */
#define PROBE_HEAP	 (2u << 20)
#define PROBE_ABOVE_HEAP (64u << 20)

static int dev_open(const struct perf_opts *o, struct perf_dev *d)
{
	size_t size = heap_size(o, 1);
	int rc;

	if (o->sim_stepped || o->sim_ms) {
		struct upcie_sim_config cfg;
		struct upcie_pci_opts popts = {.backend = UPCIE_PCI_BACKEND_SIM};

		if (strcmp(d->name, "sim")) {
			fprintf(stderr, "upcie-perf: --sim-%s needs --device sim, not %s\n",
				o->sim_stepped ? "stepped" : "ms", d->name);
			return PERF_EXIT_USAGE;
		}
		upcie_sim_config_default(&cfg);
		cfg.threaded = !o->sim_stepped;
		for (uint32_t i = 0; i < UPCIE_SIM_MAX_NS; i++) {
			cfg.ns[i].ms = o->sim_ms;
			cfg.ns[i].pi = o->sim_pi;
			cfg.ns[i].md_flags =
			    (uint8_t)((o->sim_extended ? UPCIE_SIM_MD_EXTENDED : 0) |
				      (o->sim_pi_first ? UPCIE_SIM_MD_PI_FIRST : 0) |
				      (o->sim_guard64 ? UPCIE_SIM_MD_GUARD64 : 0));
		}
		d->sim = upcie_sim_create(&cfg);
		if (!d->sim)
			return fail(PERF_EXIT_DEV, "cannot create the model", d->name);
		popts.sim = d->sim;
		d->pci = open_pci(d, &popts);
	} else {
		struct upcie_pci_opts popts = {0};

		d->pci = open_pci(d, &popts);
	}
	if (!d->pci)
		return fail(PERF_EXIT_DEV, "cannot open the device", d->name);
	if (size > PROBE_ABOVE_HEAP) {
		rc = ctrl_up(o, d, PROBE_HEAP);
		if (!rc)
			rc = dev_check(o, d);
		if (rc)
			return rc;
		rc = ctrl_down(d);
		if (rc)
			return rc;
	}
	rc = ctrl_up(o, d, size);
	if (!rc)
		rc = dev_check(o, d);
	if (!rc && heap_size(o, d->parts) > size) {
		/* --bs above MDTS: more commands, more queue memory; up again on
		 * a heap that holds them. */
		rc = ctrl_down(d);
		if (rc)
			return rc;
		rc = ctrl_up(o, d, heap_size(o, d->parts));
		if (!rc)
			rc = dev_check(o, d);
	}
	if (rc)
		return rc;
	if (o->verify) {
		d->gen = calloc(d->nblk, sizeof(*d->gen));
		if (!d->gen) {
			fprintf(stderr, "upcie-perf: out of memory for the verify table\n");
			return PERF_EXIT_DEV;
		}
	}
	d->has_sim_stats = upcie_pci_sim(d->pci) != NULL;
	return 0;
}

/* The controller is closed (reset) before its heap is destroyed: buffers of
 * abandoned commands stay device-writable until then. */
static void dev_close(struct perf_dev *d)
{
	if (d->ctrl && upcie_nvme_ctrl_close(d->ctrl))
		fail(0, "controller shutdown", d->name);
	upcie_dma_heap_destroy(d->heap);
	if (d->pci)
		upcie_pci_close(d->pci);
	if (d->sim)
		upcie_sim_destroy(d->sim);
	free(d->gen);
}

static int thread_setup(const struct perf_opts *o, struct perf_thread *t, unsigned nthreads)
{
	struct perf_dev *d = t->dev;
	struct upcie_nvme_qpair_opts qo = {.depth =
					       o->queue_size ? o->queue_size : o->qd * d->parts + 1,
					   .lazy_cq = o->lazy_cq,
					   .cq_depth = o->cq_size,
					   .irq = o->irq,
					   .spin_us = o->spin_us};

	t->qp = upcie_nvme_qpair_create(d->ctrl, &qo);
	if (!t->qp)
		return fail(PERF_EXIT_DEV,
			    o->irq ? "--irq: cannot create a queue pair with interrupts"
				   : "cannot create a queue pair",
			    d->name);
	if (upcie_nvme_qpair_depth(t->qp) - 1 < o->qd * d->parts) {
		fprintf(stderr, "upcie-perf: %s: --qd %u is above the controller's limit %u\n",
			d->name, o->qd, upcie_nvme_qpair_depth(t->qp) - 1);
		return PERF_EXIT_USAGE;
	}
	t->ns = d->ns;
	t->lba_shift = d->ns->lba_shift;
	t->nlb = (uint32_t)(o->bs >> t->lba_shift);
	perf_md_setup(t);
	if (d->gen || o->rw == PERF_READ || o->rw == PERF_WRITE) {
		t->blk_first = d->nblk * t->qidx / o->qpairs;
		t->blk_count = d->nblk * (t->qidx + 1) / o->qpairs - t->blk_first;
	} else {
		t->blk_first = 0;
		t->blk_count = d->nblk;
	}
	t->nslots = o->qd;
	t->slots = zalloc_lines(t->nslots, sizeof(*t->slots));
	t->free = zalloc_lines(t->nslots, sizeof(*t->free));
	if (!t->slots || !t->free) {
		fprintf(stderr, "upcie-perf: out of memory\n");
		return PERF_EXIT_DEV;
	}
	for (uint32_t i = 0; i < t->nslots; i++) {
		struct perf_slot *s = &t->slots[i];

		s->t = t;
		s->buf = upcie_dma_alloc_pages(d->heap, t->data_len);
		if (t->md_len)
			s->md = upcie_dma_alloc(d->heap, t->md_len, 64);
		if (!s->buf || (t->md_len && !s->md))
			return fail(PERF_EXIT_DEV, "cannot allocate I/O buffers", d->name);
		/* Something other than zeroes for writes without --verify. */
		perf_fill_blocks(t, s->buf, i, 0xfeed);
		t->free[t->nfree++] = &t->slots[t->nslots - 1 - i];
	}
	t->rng = 0x243f6a8885a308d3ull ^ ((uint64_t)t->idx * 0x9e3779b97f4a7c15ull);
	if (o->io_count)
		t->quota = o->io_count / nthreads + (t->idx < o->io_count % nthreads);
	t->drain_ticks = (uint64_t)(perf_clock.hz * 10);
	if (o->rate) {
		/* An equal share of the rate for each qpair. */
		t->pace_ticks = (uint64_t)(perf_clock.hz * nthreads / (double)o->rate);
		if (!t->pace_ticks)
			t->pace_ticks = 1;
	}
	return 0;
}

static int done_count;

static void *thread_main(void *arg)
{
	struct perf_thread *t = arg;

	perf_thread_run(t);
	__atomic_add_fetch(&done_count, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Once a second: IOPS, MiB/s and average latency over that second. */
/* Completed I/Os and their summed latency (ticks) over every thread so far. */
static void prog_sum(const struct perf_thread *th, unsigned n, uint64_t *ios, uint64_t *lat)
{
	*ios = *lat = 0;
	for (unsigned i = 0; i < n; i++) {
		*ios += __atomic_load_n(&th[i].prog_ios, __ATOMIC_RELAXED);
		*lat += __atomic_load_n(&th[i].prog_lat, __ATOMIC_RELAXED);
	}
}

/* --status-interval: one JSON line per interval on the results' stream. */
static void status_line(const struct perf_opts *o, double t, uint64_t dios, uint64_t dlat,
			double dt)
{
	struct tool_json j;

	tool_json_init_compact(&j, stdout);
	tool_json_obj(&j, NULL);
	tool_json_obj(&j, "status");
	tool_json_double(&j, "time_s", t, 3);
	tool_json_uint(&j, "ios", dios);
	tool_json_double(&j, "iops", (double)dios / dt, 1);
	tool_json_double(&j, "bw_mib_s", (double)dios * (double)o->bs / dt / 1048576.0, 3);
	tool_json_double(&j, "lat_avg_ns", dios ? perf_ns((double)dlat / (double)dios) : 0.0, 0);
	tool_json_obj_end(&j);
	tool_json_obj_end(&j);
	tool_json_done(&j); /* the newline, and a flush */
}

static void progress_loop(const struct perf_opts *o, struct perf_thread *th, unsigned n)
{
	FILE *out = o->json || o->output || o->status_interval ? stderr : stdout;
	const struct timespec nap = {0, 20 * 1000 * 1000};
	uint64_t last_ios = 0, last_lat = 0, last_ns = mono_ns(), start_ns = last_ns;
	uint64_t st_ios = 0, st_lat = 0, st_ns = last_ns;
	uint64_t st_every = (uint64_t)(o->status_interval * 1e9);

	while (__atomic_load_n(&done_count, __ATOMIC_ACQUIRE) < (int)n) {
		uint64_t now, ios = 0, lat = 0;
		double dt;

		nanosleep(&nap, NULL);
		now = mono_ns();
		if (st_every && now - st_ns >= st_every) {
			prog_sum(th, n, &ios, &lat);
			status_line(o, (double)(now - start_ns) / 1e9, ios - st_ios, lat - st_lat,
				    (double)(now - st_ns) / 1e9);
			st_ios = ios;
			st_lat = lat;
			st_ns = now;
		}
		if (!o->progress || now - last_ns < 1000000000ull)
			continue;
		prog_sum(th, n, &ios, &lat);
		dt = (double)(now - last_ns) / 1e9;
		fprintf(out, "[%5.1fs] %10.0f IOPS  %9.2f MiB/s  avg %9.0f ns\n",
			(double)(now - start_ns) / 1e9, (double)(ios - last_ios) / dt,
			(double)(ios - last_ios) * (double)o->bs / dt / 1048576.0,
			ios > last_ios
			    ? perf_ns((double)(lat - last_lat) / (double)(ios - last_ios))
			    : 0.0);
		fflush(out);
		last_ios = ios;
		last_lat = lat;
		last_ns = now;
	}
}

int main(int argc, char **argv)
{
	struct perf_opts o;
	struct perf_dev devs[PERF_MAX_DEVS];
	struct perf_thread *th = NULL;
	pthread_t tids[PERF_MAX_DEVS * PERF_MAX_QPAIRS];
	unsigned nth, started = 0;
	uint64_t t0;
	int rc;

	rc = perf_opts_parse(argc, argv, &o);
	if (rc)
		return rc < 0 ? PERF_EXIT_OK : PERF_EXIT_USAGE;
	if (o.output && !freopen(o.output, "w", stdout)) {
		fprintf(stderr, "upcie-perf: --output %s: %s\n", o.output, strerror(errno));
		return PERF_EXIT_USAGE;
	}
	o.started = time(NULL);
	signal(SIGINT, on_sigint);
	clock_calibrate();

	memset(devs, 0, sizeof(devs));
	nth = o.ndev * o.qpairs;
	th = zalloc_lines(nth, sizeof(*th));
	if (!th) {
		fprintf(stderr, "upcie-perf: out of memory\n");
		return PERF_EXIT_DEV;
	}
	if (o.ndev > 1)
		perf_ctx = upcie_dma_ctx_create(0);
	for (unsigned d = 0; d < o.ndev; d++) {
		devs[d].idx = d;
		devs[d].name = o.devices[d];
		rc = dev_open(&o, &devs[d]);
		if (rc)
			goto out;
	}
	for (unsigned i = 0; i < nth; i++) {
		struct perf_thread *t = &th[i];

		t->idx = i;
		t->qidx = i % o.qpairs;
		t->dev = &devs[i / o.qpairs];
		t->o = &o;
		t->cpu = o.ncpus ? o.cpus[i % o.ncpus] : -1;
		rc = thread_setup(&o, t, nth);
		if (rc)
			goto out;
	}
	for (unsigned d = 0; d < o.ndev; d++)
		if (devs[d].has_sim_stats)
			upcie_sim_stats(upcie_pci_sim(devs[d].pci), &devs[d].sim0);

	t0 = perf_tsc() + (uint64_t)(perf_clock.hz * 0.01);
	for (unsigned i = 0; i < nth; i++) {
		struct perf_thread *t = &th[i];
		pthread_attr_t attr;

		t->tsc_go = t0;
		t->tsc_measure = t0 + (uint64_t)(o.warmup_s * perf_clock.hz);
		t->tsc_end =
		    o.time_s > 0 ? t->tsc_measure + (uint64_t)(o.time_s * perf_clock.hz) : 0;
		pthread_attr_init(&attr);
		if (t->cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(t->cpu, &set);
			pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
		}
		rc = pthread_create(&tids[i], &attr, thread_main, t);
		pthread_attr_destroy(&attr);
		if (rc) {
			fprintf(stderr, "upcie-perf: cannot start the thread of qpair %u%s%d: %s\n",
				i, t->cpu >= 0 ? " on CPU " : "", t->cpu, strerror(rc));
			perf_stop = 1;
			rc = t->cpu >= 0 && rc == EINVAL ? PERF_EXIT_USAGE : PERF_EXIT_DEV;
			break;
		}
		started++;
	}
	/* Without progress or status lines, main has nothing to do until the
	 * threads end: no 20 ms wake-ups on the CPUs they need (in the QEMU
	 * guest matrix that was worth 1.05x-1.2x at QD 32). */
	if (o.progress || o.status_interval)
		progress_loop(&o, th, started);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (rc)
		goto out;
	for (unsigned d = 0; d < o.ndev; d++)
		if (devs[d].has_sim_stats)
			upcie_sim_stats(upcie_pci_sim(devs[d].pci), &devs[d].sim1);

	perf_report(&o, devs, o.ndev, th, nth);
	for (unsigned i = 0; i < nth; i++) {
		if (th[i].rc) {
			fprintf(stderr, "upcie-perf: %s\n", th[i].errmsg);
			if (!rc)
				rc = th[i].rc;
		}
		if ((th[i].errors || th[i].mismatches) && !rc)
			rc = PERF_EXIT_IO;
	}
out:
	for (unsigned i = 0; i < nth; i++)
		if (th[i].dev)
			perf_thread_teardown(&th[i]);
	for (unsigned d = 0; d < o.ndev; d++)
		dev_close(&devs[d]);
	upcie_dma_ctx_destroy(perf_ctx);
	free(th);
	return rc;
}
