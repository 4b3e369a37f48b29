/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What every explorer's main() does alike: the options that pick seeds
 * and steps, and the report of a failed seed from its trace ring. Shared
 * by explore (the library) and explore-preload (the preload's I/O layer).
 */
#ifndef UPCIE_TESTS_XRUN_H
#define UPCIE_TESTS_XRUN_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xopts {
	uint64_t a, b;	/* seeds a..b */
	uint64_t steps; /* 0: each seed picks its own */
	uint64_t show;	/* in a range, failures shown with their trace */
	bool verbose, range;
};

#define XOPTS_DEFAULT                                                                              \
	{                                                                                          \
		.a = 1, .b = 1, .show = 3                                                          \
	}

/* argv[*i] is one of the common options (--seed S, --seeds A-B, --steps
 * N, --show K, -v): taken, *i past its value. false: not one of them. */
static inline bool xopts_arg(struct xopts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
	char *end;

	if (!strcmp(a, "-v")) {
		o->verbose = true;
		return true;
	}
	if (!v)
		return false;
	if (!strcmp(a, "--seed")) {
		o->a = o->b = strtoull(v, NULL, 0);
	} else if (!strcmp(a, "--seeds")) {
		o->a = strtoull(v, &end, 0);
		o->b = *end == '-' ? strtoull(end + 1, NULL, 0) : o->a;
		o->range = true;
	} else if (!strcmp(a, "--steps")) {
		o->steps = strtoull(v, NULL, 0);
	} else if (!strcmp(a, "--show")) {
		o->show = strtoull(v, NULL, 0);
	} else {
		return false;
	}
	++*i;
	return true;
}

/* A failed seed: what failed, the last `shown` lines of a ring of `cap`
 * lines of `width` bytes that has had n lines, and how to replay it. */
static inline void xreport(uint64_t seed, uint64_t fail_step, uint64_t steps, const char *why,
			   const char *ring, size_t width, uint64_t cap, uint64_t n, uint64_t shown,
			   const char *legend, const char *replay)
{
	uint64_t first = n > shown ? n - shown : 0;

	printf("FAIL seed %" PRIu64 " step %" PRIu64 "/%" PRIu64 ": %s\n", seed, fail_step, steps,
	       why);
	printf("  last %" PRIu64 " trace lines%s:\n", n - first, legend);
	for (uint64_t i = first; i < n; i++)
		printf("    %s\n", ring + (i % cap) * width);
	printf("  replay: %s\n", replay);
}

#endif
