/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf pieces without a device: the latency histogram's percentiles
 * against exact ones within the stated error bound, and the verify
 * pattern (fill, check, and the mismatches it must catch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf.h"

struct perf_clock perf_clock;
volatile int perf_stop;

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			failures++;                                                                \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Exact percentile with the histogram's definition: the smallest value with
 * at least p % of the values at or below it. */
static uint64_t exact(const uint64_t *sorted, size_t n, double p)
{
	uint64_t rank = (uint64_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void check_distribution(const char *name, uint64_t *v, size_t n)
{
	static struct perf_hist h;
	const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
	double worst = 0;

	perf_hist_init(&h);
	for (size_t i = 0; i < n; i++)
		perf_hist_add(&h, v[i]);
	qsort(v, n, sizeof(*v), cmp_u64);
	CHECK(h.count == n, "%s: count", name);
	CHECK(h.min == v[0] && h.max == v[n - 1], "%s: min/max", name);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		uint64_t want = exact(v, n, pcts[i]);
		uint64_t got = perf_hist_percentile(&h, pcts[i]);
		double err =
		    want ? (double)(got > want ? got - want : want - got) / (double)want : 0;

		if (err > worst)
			worst = err;
		CHECK(err <= perf_hist_bound(),
		      "%s: p%g: got %llu, exact %llu, error %.4f%% > %.4f%%", name, pcts[i],
		      (unsigned long long)got, (unsigned long long)want, err * 100,
		      perf_hist_bound() * 100);
	}
	printf("ok: %s: %zu values, worst percentile error %.4f%% (bound %.4f%%)\n", name, n,
	       worst * 100, perf_hist_bound() * 100);
}

static void test_hist(void)
{
	const size_t n = 200000;
	uint64_t *v = malloc(n * sizeof(*v));
	static struct perf_hist a, b;

	CHECK(perf_hist_bound() <= 0.01, "bound %.4f above 1%%", perf_hist_bound());

	/* Uniform over a wide range. */
	for (size_t i = 0; i < n; i++)
		v[i] = 1 + xorshift() % 5000000;
	check_distribution("uniform 1..5e6", v, n);

	/* Log-uniform: every bucket size from exact to wide. */
	for (size_t i = 0; i < n; i++)
		v[i] = 1ull << (xorshift() % 36) | (xorshift() & 0xffff);
	check_distribution("log-uniform 1..2^36", v, n);

	/* Latency-like: a narrow peak and a long tail. */
	for (size_t i = 0; i < n; i++)
		v[i] =
		    2000 + xorshift() % 300 + (xorshift() % 1000 == 0 ? xorshift() % 10000000 : 0);
	check_distribution("peak with tail", v, n);

	/* Small values are exact. */
	for (size_t i = 0; i < n; i++)
		v[i] = xorshift() % 200;
	check_distribution("small, exact", v, n);

	/* Merging two halves equals one histogram of everything. */
	perf_hist_init(&a);
	perf_hist_init(&b);
	for (size_t i = 0; i < n; i++)
		perf_hist_add(i & 1 ? &a : &b, v[i] * 1000 + i);
	perf_hist_merge(&a, &b);
	CHECK(a.count == n, "merged count %llu", (unsigned long long)a.count);
	{
		static struct perf_hist all;
		perf_hist_init(&all);
		for (size_t i = 0; i < n; i++)
			perf_hist_add(&all, v[i] * 1000 + i);
		CHECK(!memcmp(&all, &a, sizeof(all)), "merge differs from one histogram");
	}
	free(v);
}

static void test_pattern(void)
{
	const uint32_t shift = 9, nlb = 8; /* 4 KiB of 512-byte blocks */
	uint64_t buf[512], other[512];
	long off;

	perf_fill(buf, 1000, nlb, shift, 7);
	CHECK(perf_check(buf, 1000, nlb, shift, 7) == -1, "a fresh fill must check clean");
	CHECK(perf_check(buf, 1000, nlb, shift, 8) == 0, "another generation must not match");
	CHECK(perf_check(buf, 1001, nlb, shift, 7) == 0, "another LBA must not match");

	/* One flipped bit in the sixth block. */
	((unsigned char *)buf)[5 * 512 + 100] ^= 0x10;
	off = perf_check(buf, 1000, nlb, shift, 7);
	CHECK(off == 5 * 512 + 96, "flipped bit reported at %ld", off);

	/* Blocks swapped within the transfer. */
	perf_fill(buf, 1000, nlb, shift, 7);
	memcpy(other, buf, sizeof(buf));
	memcpy(buf, other + 64, 512);
	memcpy(buf + 64, other, 512);
	CHECK(perf_check(buf, 1000, nlb, shift, 7) == 0, "swapped blocks must not match");

	/* Zeroes (a block never written) do not pass for generation 1. */
	memset(buf, 0, sizeof(buf));
	CHECK(perf_check(buf, 0, nlb, shift, 1) == 0, "zeroes must not match");
	printf("ok: verify pattern\n");
}

/*
 * Drain timeout: commands that never complete are abandoned. The model is
 * not stepped (--sim-stepped without the stepping), so nothing completes.
 * Their buffers must stay allocated after teardown (the device could still
 * write to them until the controller is reset), they count as errors and
 * the worker's exit code is a device error. The same run with the model
 * stepped frees everything.
 */
static void run_drain(bool step, uint32_t qd)
{
	struct upcie_sim_config cfg;
	struct upcie_pci_opts popts = {.backend = UPCIE_PCI_BACKEND_SIM};
	struct upcie_dma_heap_info hi0, hi1;
	static struct perf_thread t;
	struct perf_opts o;
	struct perf_dev d;
	struct upcie_nvme_qpair_opts qo = {.depth = qd + 1};
	struct upcie_sim *sim;

	upcie_sim_config_default(&cfg);
	cfg.threaded = false;
	sim = upcie_sim_create(&cfg);
	CHECK(sim, "sim");
	if (!sim)
		return;
	memset(&d, 0, sizeof(d));
	memset(&o, 0, sizeof(o));
	memset(&t, 0, sizeof(t));
	popts.sim = sim;
	d.name = "sim";
	d.pci = upcie_pci_open("sim", &popts);
	d.heap = d.pci ? upcie_dma_heap_create(d.pci, 8u << 20, 0) : NULL;
	d.ctrl = d.heap ? upcie_nvme_ctrl_open(d.pci, d.heap, NULL) : NULL;
	CHECK(d.ctrl, "controller up: %s", upcie_errmsg());
	if (!d.ctrl)
		goto out;
	d.ns = upcie_nvme_ns_first(d.ctrl);
	d.nblk = d.ns->nsze / 8;
	d.sim = step ? sim : NULL;

	o.rw = PERF_RANDREAD;
	o.mix = 100;
	o.bs = 4096;
	o.qd = qd;
	o.batch = qd;
	o.qpairs = 1;
	o.io_count = qd;

	t.dev = &d;
	t.o = &o;
	t.ns = d.ns;
	t.lba_shift = d.ns->lba_shift;
	t.nlb = (uint32_t)(o.bs >> t.lba_shift);
	t.blk_count = d.nblk;
	t.quota = o.io_count;
	t.drain_ticks = 1000;
	t.rng = 1;
	upcie_dma_heap_info(d.heap, &hi0);
	t.qp = upcie_nvme_qpair_create(d.ctrl, &qo);
	CHECK(t.qp, "qpair");
	t.nslots = qd;
	t.slots = calloc(qd, sizeof(*t.slots));
	t.free = calloc(qd, sizeof(*t.free));
	for (uint32_t i = 0; i < qd; i++) {
		t.slots[i].t = &t;
		t.slots[i].buf = upcie_dma_alloc_pages(d.heap, o.bs);
		CHECK(t.slots[i].buf, "buffer");
		t.free[t.nfree++] = &t.slots[i];
	}

	perf_thread_run(&t);
	if (step) {
		CHECK(t.rc == 0, "stepped: rc %d: %s", t.rc, t.errmsg);
		CHECK(t.ios == qd && t.abandoned == 0 && t.errors == 0,
		      "stepped: ios %llu, abandoned %u, errors %llu", (unsigned long long)t.ios,
		      t.abandoned, (unsigned long long)t.errors);
	} else {
		CHECK(t.rc == PERF_EXIT_DEV, "rc %d", t.rc);
		CHECK(t.abandoned == qd, "abandoned %u of %u", t.abandoned, qd);
		CHECK(t.errors == qd, "errors %llu", (unsigned long long)t.errors);
		CHECK(t.nerr > 0 && t.err[0].status == PERF_ST_ABANDONED, "error record");
		CHECK(strstr(t.errmsg, "drain timeout") != NULL, "message: %s", t.errmsg);
	}
	perf_thread_teardown(&t);
	CHECK(t.qp == NULL && t.slots == NULL, "torn down");
	upcie_dma_heap_info(d.heap, &hi1);
	/* hi0: before the qpair and the buffers. */
	if (step)
		CHECK(hi1.used == hi0.used && hi1.allocations == hi0.allocations,
		      "stepped: all freed: %zu bytes in %zu allocations, %zu in %zu before",
		      hi1.used, hi1.allocations, hi0.used, hi0.allocations);
	else
		CHECK(hi1.used >= hi0.used + (size_t)qd * o.bs &&
			  hi1.allocations >= hi0.allocations + qd,
		      "abandoned buffers kept: %zu bytes in %zu allocations, %zu in %zu before",
		      hi1.used, hi1.allocations, hi0.used, hi0.allocations);
	printf("ok: drain %s: %u abandoned\n", step ? "with the model stepped" : "timeout",
	       t.abandoned);
out:
	if (d.ctrl)
		upcie_nvme_ctrl_close(d.ctrl); /* resets the controller ... */
	upcie_dma_heap_destroy(d.heap);	       /* ... before the heap goes */
	if (d.pci)
		upcie_pci_close(d.pci);
	upcie_sim_destroy(sim);
}

static void test_drain(void)
{
	perf_clock.hz = 1e9;
	perf_clock.overhead = 0;
	perf_clock.preempted = UINT64_MAX;
	run_drain(true, 8);
	run_drain(false, 8);
}

int main(void)
{
	test_hist();
	test_pattern();
	test_drain();
	if (failures)
		printf("%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
