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

int main(void)
{
	test_hist();
	test_pattern();
	if (failures)
		printf("%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
