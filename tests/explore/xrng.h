/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The explorers' PRNG: xoshiro256**, seeded through splitmix64, so that one
 * seed replays exactly. Shared by explore (the library) and
 * explore-preload (the preload's I/O layer).
 */
#ifndef UPCIE_TESTS_XRNG_H
#define UPCIE_TESTS_XRNG_H

#include <stdint.h>

struct xrng {
	uint64_t s[4];
};

static inline uint64_t xrng_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t xrng_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline void xrng_seed(struct xrng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = xrng_splitmix(&seed);
}

static inline uint64_t xrng_next(struct xrng *r)
{
	uint64_t *s = r->s, v = xrng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = xrng_rotl(s[3], 45);
	return v;
}

/* A number below n (0 for n = 0). */
static inline uint32_t xrng_below(struct xrng *r, uint32_t n)
{
	return n ? (uint32_t)((xrng_next(r) >> 32) % n) : 0;
}

#endif
