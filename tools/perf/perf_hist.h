/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Latency histogram for upcie-perf
 * ================================
 *
 * A log-linear (HDR-style) histogram of unsigned 64-bit values (TSC ticks
 * in upcie-perf). Values below 2 * SUB are counted exactly; above that,
 * each power of two [2^n, 2^(n+1)) is split into SUB equal sub-buckets.
 * Nothing is stored per value, recording is a count-leading-zeros, a
 * shift and an increment, and histograms of several threads merge by
 * adding their counters.
 *
 * Error bound: a percentile is reported as the middle of its bucket; a
 * bucket at [m * 2^s, (m + 1) * 2^s) with m >= SUB is at most 2^s wide,
 * so the reported value is within 2^(s-1) / (SUB * 2^s) = 1 / (2 * SUB)
 * of any value in it: with SUB = 128, 0.39 %. Exact below 2 * SUB.
 *
 * Functions:
 *   perf_hist_add()         record one value
 *   perf_hist_merge()       add one histogram into another
 *   perf_hist_percentile()  value at a percentile (0..100)
 *   perf_hist_bound()       the relative error bound, as a fraction
 */
#ifndef UPCIE_PERF_HIST_H
#define UPCIE_PERF_HIST_H

#include <stdint.h>
#include <string.h>

#define PERF_HIST_SUB_BITS 7
#define PERF_HIST_SUB	   (1u << PERF_HIST_SUB_BITS) /* sub-buckets per power of two */
/* Values up to 2^PERF_HIST_MAX_BITS - 1 are resolved; larger ones land in
 * the last bucket (2^44 ticks is over an hour at 4 GHz). */
#define PERF_HIST_MAX_BITS 44
#define PERF_HIST_BUCKETS  ((PERF_HIST_MAX_BITS - PERF_HIST_SUB_BITS + 1) * PERF_HIST_SUB)

struct perf_hist {
	uint64_t count;
	uint64_t min, max;
	uint64_t sum;
	uint64_t buckets[PERF_HIST_BUCKETS];
};

static inline void perf_hist_init(struct perf_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline unsigned perf_hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * PERF_HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	if (msb >= PERF_HIST_MAX_BITS)
		return PERF_HIST_BUCKETS - 1;
	shift = msb - PERF_HIST_SUB_BITS; /* >= 1; v >> shift lies in [SUB, 2 * SUB) */
	return shift * PERF_HIST_SUB + (unsigned)(v >> shift);
}

/* Lowest value of bucket i, and its width. */
static inline uint64_t perf_hist_low(unsigned i, uint64_t *width)
{
	unsigned shift;

	if (i < 2 * PERF_HIST_SUB) {
		*width = 1;
		return i;
	}
	shift = i / PERF_HIST_SUB - 1;
	*width = 1ull << shift;
	return (uint64_t)(i % PERF_HIST_SUB + PERF_HIST_SUB) << shift;
}

static inline void perf_hist_add(struct perf_hist *h, uint64_t v)
{
	h->buckets[perf_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static inline void perf_hist_merge(struct perf_hist *dst, const struct perf_hist *src)
{
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

/* The value at percentile p: the smallest recorded value v such that at
 * least p % of the values are <= v, to within perf_hist_bound(). */
static inline uint64_t perf_hist_percentile(const struct perf_hist *h, double p)
{
	uint64_t rank, seen = 0, low, width, mid;

	if (!h->count)
		return 0;
	rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < PERF_HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen < rank)
			continue;
		low = perf_hist_low(i, &width);
		mid = low + (width - 1) / 2;
		/* The true value is also inside [min, max]. */
		if (mid < h->min)
			mid = h->min;
		if (mid > h->max)
			mid = h->max;
		return mid;
	}
	return h->max;
}

static inline double perf_hist_bound(void)
{
	return 1.0 / (2.0 * PERF_HIST_SUB);
}

#endif
