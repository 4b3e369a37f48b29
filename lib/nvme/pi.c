/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Protection information in software (NVM Command Set spec 5.3.1, the
 * 16-bit and 64-bit guard formats): the T10-DIF CRC16, the NVMe CRC-64,
 * the per-block PI of a namespace's layout, and the buffer sizes a
 * metadata command moves.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <upcie/pi.h>

#include "core/compiler.h"
#include "core/log.h"
#include "nvme/nvme.h"

#define REF48 0xffffffffffffull

/*
 * CRC16 T10-DIF: polynomial x^16 + x^15 + x^11 + x^9 + x^8 + x^7 + x^5 +
 * x^4 + x^2 + x + 1 (0x8BB7), MSB first, initial value 0, no final XOR.
 * crc_tab[k][b] is the CRC of byte b followed by k zero bytes, so eight
 * bytes fold in with eight lookups ("slicing by 8"). The tables are made
 * once, at load time (no output, no allocation).
 */
static uint16_t crc_tab[8][256];

__attribute__((constructor)) static void crc_tab_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint16_t r = (uint16_t)(b << 8);

		for (int i = 0; i < 8; i++)
			r = (uint16_t)(r & 0x8000 ? (r << 1) ^ 0x8bb7 : r << 1);
		crc_tab[0][b] = r;
	}
	for (unsigned k = 1; k < 8; k++)
		for (unsigned b = 0; b < 256; b++) {
			uint16_t p = crc_tab[k - 1][b];

			crc_tab[k][b] = (uint16_t)(p << 8) ^ crc_tab[0][p >> 8];
		}
}

/* Tests reach it to check the tables on machines that take the other path. */
HIDDEN uint16_t upcie_crc16_tables(uint16_t crc, const uint8_t *p, size_t len);

uint16_t upcie_crc16_tables(uint16_t crc, const uint8_t *p, size_t len)
{
	for (; len >= 8; len -= 8, p += 8) {
		uint16_t a = (uint16_t)(crc ^ (p[0] << 8 | p[1]));

		crc = crc_tab[7][a >> 8] ^ crc_tab[6][a & 0xff] ^ crc_tab[5][p[2]] ^
		      crc_tab[4][p[3]] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
		      crc_tab[0][p[7]];
	}
	while (len--)
		crc = (uint16_t)(crc << 8) ^ crc_tab[0][(crc >> 8) ^ *p++];
	return crc;
}

/*
 * Carry-less multiplication: x86-64's PCLMULQDQ, or Armv8's PMULL (the
 * crypto extension). A thin layer of 128-bit operations (v128_*) lets one
 * body of each folding loop below serve both; HAVE_CLMUL says whether this
 * machine has one, have_clmul() whether this CPU does.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_CLMUL   1
#define CLMUL_TARGET __attribute__((target("pclmul,ssse3")))
typedef __m128i v128;

static inline v128 v128_set(uint64_t hi, uint64_t lo)
{
	return _mm_set_epi64x((long long)hi, (long long)lo);
}

static inline v128 v128_load(const uint8_t *p)
{
	return _mm_loadu_si128((const __m128i *)p);
}

static inline void v128_store(uint8_t *p, v128 v)
{
	_mm_storeu_si128((__m128i *)p, v);
}

static inline v128 v128_xor(v128 a, v128 b)
{
	return _mm_xor_si128(a, b);
}

/* The 16 bytes in reverse order. */
CLMUL_TARGET static inline v128 v128_rev(v128 v)
{
	return _mm_shuffle_epi8(v,
				_mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/* lo(r) * lo(k) + hi(r) * hi(k), carry-less. */
CLMUL_TARGET static inline v128 v128_fold(v128 r, v128 k)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(r, k, 0x00), _mm_clmulepi64_si128(r, k, 0x11));
}

static bool have_clmul(void)
{
	static int have = -1;
	int h = __atomic_load_n(&have, __ATOMIC_RELAXED);

	if (h < 0) {
		__builtin_cpu_init();
		h = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("ssse3");
		__atomic_store_n(&have, h, __ATOMIC_RELAXED);
	}
	return h;
}
#elif defined(__aarch64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_PMULL
#define HWCAP_PMULL (1 << 4)
#endif
#define HAVE_CLMUL   1
#define CLMUL_TARGET __attribute__((target("+crypto")))
typedef uint8x16_t v128;

static inline v128 v128_set(uint64_t hi, uint64_t lo)
{
	return vreinterpretq_u8_u64(vcombine_u64(vcreate_u64(lo), vcreate_u64(hi)));
}

static inline v128 v128_load(const uint8_t *p)
{
	return vld1q_u8(p);
}

static inline void v128_store(uint8_t *p, v128 v)
{
	vst1q_u8(p, v);
}

static inline v128 v128_xor(v128 a, v128 b)
{
	return veorq_u8(a, b);
}

static inline v128 v128_rev(v128 v)
{
	v = vrev64q_u8(v);
	return vextq_u8(v, v, 8);
}

CLMUL_TARGET static inline v128 v128_fold(v128 r, v128 k)
{
	poly64x2_t a = vreinterpretq_p64_u8(r), b = vreinterpretq_p64_u8(k);
	v128 lo = vreinterpretq_u8_p128(vmull_p64(vgetq_lane_p64(a, 0), vgetq_lane_p64(b, 0)));

	return veorq_u8(lo, vreinterpretq_u8_p128(vmull_high_p64(a, b)));
}

static bool have_clmul(void)
{
	static int have = -1;
	int h = __atomic_load_n(&have, __ATOMIC_RELAXED);

	if (h < 0) {
		h = (getauxval(AT_HWCAP) & HWCAP_PMULL) != 0;
		__atomic_store_n(&have, h, __ATOMIC_RELAXED);
	}
	return h;
}
#else
#define HAVE_CLMUL 0
#endif

#if HAVE_CLMUL
/*
 * The CRC16 with carry-less multiplication, the folding of Intel's "Fast
 * CRC Computation for Generic Polynomials Using PCLMULQDQ": with the
 * message M as a polynomial (first byte highest), the CRC is M * x^16 mod
 * P. Keep a 128-bit R congruent to what was read, mod P: folding R over
 * the next N bits is R * x^N = Rhi * x^(N+64) + Rlo * x^N, each factor
 * replaced by its 16-bit remainder mod P, so each product fits 80 bits.
 * Four accumulators fold 64 bytes a step; at the end they are folded into
 * one R, whose 16 bytes (and the tail) go through the tables: the CRC of
 * R's bytes is R * x^16 mod P = M * x^16 mod P.
 */
static uint64_t k_pow[10]; /* k_pow[j] = x^(64 j) mod P */

static uint16_t xpow_mod(unsigned n)
{
	uint32_t r = 1;

	while (n--) {
		r <<= 1;
		if (r & 0x10000)
			r ^= 0x18bb7;
	}
	return (uint16_t)r;
}

__attribute__((constructor)) static void k_pow_init(void)
{
	for (unsigned j = 0; j < 10; j++)
		k_pow[j] = xpow_mod(64 * j);
}

/* R * x^(64 j): the pair {x^(64 j) mod P, x^(64 (j + 1)) mod P}. */
static inline v128 kpair(unsigned j)
{
	return v128_set(k_pow[j + 1], k_pow[j]);
}

CLMUL_TARGET static inline v128 load_be(const uint8_t *p)
{
	return v128_rev(v128_load(p));
}

/* len >= 64. */
CLMUL_TARGET static uint16_t crc_clmul(uint16_t crc, const uint8_t *p, size_t len)
{
	const v128 k512 = kpair(8), k128 = kpair(2);
	v128 r0 = load_be(p), r1 = load_be(p + 16), r2 = load_be(p + 32), r3 = load_be(p + 48);
	uint8_t last[16];

	/* The initial CRC goes into the message's first 16 bits. */
	r0 = v128_xor(r0, v128_set((uint64_t)crc << 48, 0));
	for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
		r0 = v128_xor(v128_fold(r0, k512), load_be(p));
		r1 = v128_xor(v128_fold(r1, k512), load_be(p + 16));
		r2 = v128_xor(v128_fold(r2, k512), load_be(p + 32));
		r3 = v128_xor(v128_fold(r3, k512), load_be(p + 48));
	}
	/* M = r0 x^384 + r1 x^256 + r2 x^128 + r3 (mod P). */
	r0 = v128_xor(v128_xor(v128_fold(r0, kpair(6)), v128_fold(r1, kpair(4))),
		      v128_xor(v128_fold(r2, k128), r3));
	for (; len >= 16; p += 16, len -= 16)
		r0 = v128_xor(v128_fold(r0, k128), load_be(p));
	v128_store(last, v128_rev(r0));
	return upcie_crc16_tables(upcie_crc16_tables(0, last, sizeof(last)), p, len);
}
#endif

uint16_t upcie_crc16_t10dif(uint16_t crc, const void *buf, size_t len)
{
#if HAVE_CLMUL
	if (len >= 64 && have_clmul())
		return crc_clmul(crc, buf, len);
#endif
	return upcie_crc16_tables(crc, buf, len);
}

/*
 * CRC-64 of the 64-bit guard format (NVM Command Set spec 5.3.1.2):
 * polynomial 0xAD93D23594C93659, reflected (least significant bit first:
 * the table works with the bit-reversed polynomial 0x9A6C9329AC4BC9B5),
 * initial value and final XOR all ones. crc64_tab[k][b] is the register
 * after byte b followed by k zero bytes, so a little-endian 64-bit load
 * folds eight bytes with eight lookups (slicing by 8); made at load time.
 */
#define CRC64_POLY_REFLECTED 0x9a6c9329ac4bc9b5ull

static uint64_t crc64_tab[8][256];

__attribute__((constructor)) static void crc64_tab_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint64_t r = b;

		for (int i = 0; i < 8; i++)
			r = r & 1 ? (r >> 1) ^ CRC64_POLY_REFLECTED : r >> 1;
		crc64_tab[0][b] = r;
	}
	for (unsigned k = 1; k < 8; k++)
		for (unsigned b = 0; b < 256; b++) {
			uint64_t p = crc64_tab[k - 1][b];

			crc64_tab[k][b] = (p >> 8) ^ crc64_tab[0][p & 0xff];
		}
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* The register without the inversions: reg is the running remainder. */
static uint64_t crc64_raw(uint64_t reg, const uint8_t *p, size_t len)
{
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t v = reg ^ load_le64(p);

		reg = crc64_tab[7][v & 0xff] ^ crc64_tab[6][(v >> 8) & 0xff] ^
		      crc64_tab[5][(v >> 16) & 0xff] ^ crc64_tab[4][(v >> 24) & 0xff] ^
		      crc64_tab[3][(v >> 32) & 0xff] ^ crc64_tab[2][(v >> 40) & 0xff] ^
		      crc64_tab[1][(v >> 48) & 0xff] ^ crc64_tab[0][v >> 56];
	}
	while (len--)
		reg = (reg >> 8) ^ crc64_tab[0][(reg ^ *p++) & 0xff];
	return reg;
}

/* Tests reach it to check the tables on machines that take the other path. */
HIDDEN uint64_t upcie_crc64_tables(uint64_t crc, const uint8_t *p, size_t len);

uint64_t upcie_crc64_tables(uint64_t crc, const uint8_t *p, size_t len)
{
	return ~crc64_raw(~crc, p, len);
}

#if HAVE_CLMUL
/*
 * The CRC-64 with carry-less multiplication. Reflected: a 64-bit word's
 * bit 0 is its highest power, so 16 bytes loaded little-endian are R =
 * LO x^64 + HI with LO the first 8 bytes, and PCLMULQDQ of two such words
 * gives x * A * B (the product lands one bit off). Folding R over N more
 * bits is R x^N = LO x^(N+64) + HI x^N: multiply LO by x^(N+63) mod P and
 * HI by x^(N-1) mod P (the -1 for that bit), each a 64-bit constant, and
 * the two 128-bit products add up to a value congruent to R x^N. Four
 * accumulators fold 64 bytes a step; at the end they are folded into one,
 * whose 16 bytes (and the tail) go through the tables with a register of
 * 0: their CRC is M x^64 mod P, the message's.
 */
static uint64_t crc64_k[10][2]; /* [N / 64]: {x^(N+63), x^(N-1)} mod P, reflected */

static uint64_t reflect64(uint64_t v)
{
	uint64_t r = 0;

	for (int i = 0; i < 64; i++, v >>= 1)
		r = r << 1 | (v & 1);
	return r;
}

static uint64_t crc64_xpow(unsigned n)
{
	uint64_t r = 1; /* x^0, bit i the coefficient of x^i */

	while (n--)
		r = (r << 1) ^ (r >> 63 ? 0xad93d23594c93659ull : 0);
	return reflect64(r);
}

__attribute__((constructor)) static void crc64_k_init(void)
{
	for (unsigned j = 2; j < 10; j += 2) {
		crc64_k[j][0] = crc64_xpow(64 * j + 63);
		crc64_k[j][1] = crc64_xpow(64 * j - 1);
	}
}

static inline v128 k64(unsigned bits)
{
	return v128_set(crc64_k[bits / 64][1], crc64_k[bits / 64][0]);
}

/* reg: the running remainder (inverted CRC); len >= 64. */
CLMUL_TARGET static uint64_t crc64_clmul(uint64_t reg, const uint8_t *p, size_t len)
{
	const v128 k512 = k64(512), k128 = k64(128);
	v128 r0 = v128_load(p), r1 = v128_load(p + 16), r2 = v128_load(p + 32),
	     r3 = v128_load(p + 48);
	uint8_t last[16];

	/* The register goes into the message's first 64 bits. */
	r0 = v128_xor(r0, v128_set(0, reg));
	for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
		r0 = v128_xor(v128_fold(r0, k512), v128_load(p));
		r1 = v128_xor(v128_fold(r1, k512), v128_load(p + 16));
		r2 = v128_xor(v128_fold(r2, k512), v128_load(p + 32));
		r3 = v128_xor(v128_fold(r3, k512), v128_load(p + 48));
	}
	/* M = r0 x^384 + r1 x^256 + r2 x^128 + r3 (mod P). */
	r0 = v128_xor(v128_xor(v128_fold(r0, k64(384)), v128_fold(r1, k64(256))),
		      v128_xor(v128_fold(r2, k128), r3));
	for (; len >= 16; p += 16, len -= 16)
		r0 = v128_xor(v128_fold(r0, k128), v128_load(p));
	v128_store(last, r0);
	return crc64_raw(crc64_raw(0, last, sizeof(last)), p, len);
}
#endif

uint64_t upcie_crc64_nvme(uint64_t crc, const void *buf, size_t len)
{
#if HAVE_CLMUL
	if (len >= 64 && have_clmul())
		return ~crc64_clmul(~crc, buf, len);
#endif
	return ~crc64_raw(~crc, buf, len);
}

/* ---- the PI format and the options ---- */

unsigned upcie_nvme_pi_size(const struct upcie_nvme_ns *ns)
{
	unsigned n = ns->guard_bits == 16 ? 8 : ns->guard_bits == 64 ? 16 : 0;

	return ns->pi_sts || ns->ms < n ? 0 : n;
}

void upcie_nvme_opts_copy(struct upcie_nvme_io_opts *dst, const struct upcie_nvme_io_opts *o)
{
	size_t n = o->opts_size < sizeof(*o) ? o->opts_size : sizeof(*o);

	memset(dst, 0, sizeof(*dst));
	memcpy(dst, o, n);
	dst->opts_size = sizeof(*dst);
}

uint64_t upcie_nvme_opts_reftag(const struct upcie_nvme_io_opts *o)
{
	uint64_t hi = o->opts_size >= sizeof(*o) ? o->reftag_hi : 0;

	return (hi << 32 | o->reftag) & REF48;
}

void upcie_nvme_opts_reftag_add(const struct upcie_nvme_ns *ns, struct upcie_nvme_io_opts *o,
				uint32_t n)
{
	uint64_t r;

	if (ns->pi_type == 3)
		return;
	if (ns->guard_bits != 64) {
		o->reftag += n; /* 32-bit tags wrap */
		return;
	}
	r = (upcie_nvme_opts_reftag(o) + n) & REF48;
	o->reftag = (uint32_t)r;
	o->reftag_hi = (uint32_t)(r >> 32);
}

/* ---- buffer sizes ---- */

/* Metadata crosses the bus, unless PRACT on a namespace whose metadata is
 * the PI alone (the controller inserts and strips it). */
static bool md_moves(const struct upcie_nvme_ns *ns, uint32_t flags)
{
	return ns->ms &&
	       !(ns->pi_type && (flags & UPCIE_NVME_RW_PRACT) && ns->ms == upcie_nvme_pi_size(ns));
}

size_t upcie_nvme_ns_data_len(const struct upcie_nvme_ns *ns, uint32_t nlb, uint32_t flags)
{
	size_t per = ns->lba_size;

	if (ns->md_extended && md_moves(ns, flags))
		per += ns->ms;
	return (size_t)nlb * per;
}

uint32_t upcie_nvme_ns_prchk(const struct upcie_nvme_ns *ns)
{
	if (!ns->pi_type)
		return 0;
	/* Type 3 has no reference tag the controller checks (NVM Command Set
	 * spec 5.3.1.3); asking is Invalid Protection Information. */
	return ns->pi_type == 3 ? UPCIE_NVME_RW_PRCHK_GUARD | UPCIE_NVME_RW_PRCHK_APP
				: UPCIE_NVME_RW_PRCHK_ALL;
}

size_t upcie_nvme_ns_md_len(const struct upcie_nvme_ns *ns, uint32_t nlb, uint32_t flags)
{
	if (ns->md_extended || !md_moves(ns, flags))
		return 0;
	return (size_t)nlb * ns->ms;
}

/* ---- per block ---- */

struct blocks {
	const struct upcie_nvme_ns *ns;
	uint8_t *buf, *md;
	size_t stride;	  /* data bytes from one block to the next */
	unsigned pi_size; /* 8: 16-bit guard; 16: 64-bit guard */
	uint64_t ref_mask;
};

static int blocks_init(struct blocks *b, const struct upcie_nvme_ns *ns, const void *buf,
		       const void *md, const struct upcie_nvme_io_opts *o, const char *what)
{
	if (!ns || !buf || !o)
		return upcie_err(-EINVAL, "%s: %s", what,
				 !ns	? "no namespace"
				 : !buf ? "no data buffer"
					: "no options");
	if (!ns->pi_type)
		return upcie_err(-EINVAL,
				 "%s: nsid %u is not formatted with protection information", what,
				 ns->nsid);
	b->pi_size = upcie_nvme_pi_size(ns);
	if (!b->pi_size || ns->ms < b->pi_size)
		return upcie_err(-ENOTSUP,
				 "%s: nsid %u has a PI format this library does not do (%u-bit "
				 "guard, storage tag size %u)",
				 what, ns->nsid, ns->guard_bits, ns->pi_sts);
	if (!ns->md_extended && !md)
		return upcie_err(-EINVAL, "%s: nsid %u keeps metadata apart: give its buffer", what,
				 ns->nsid);
	b->ns = ns;
	b->buf = (uint8_t *)(uintptr_t)buf;
	b->md = (uint8_t *)(uintptr_t)md;
	b->stride = ns->lba_size + (ns->md_extended ? ns->ms : 0);
	b->ref_mask = b->pi_size == 16 ? REF48 : 0xffffffffu;
	return 0;
}

static const uint8_t *blk_data(const struct blocks *b, uint32_t i)
{
	return b->buf + i * b->stride;
}

static uint8_t *blk_md(const struct blocks *b, uint32_t i)
{
	if (b->ns->md_extended)
		return b->buf + i * b->stride + b->ns->lba_size;
	return b->md + (size_t)i * b->ns->ms;
}

static uint8_t *blk_pi(const struct blocks *b, uint32_t i)
{
	uint8_t *m = blk_md(b, i);

	return b->ns->pi_first ? m : m + b->ns->ms - b->pi_size;
}

/* The guard over the block's data, and the metadata before the PI when
 * the PI is last: CRC16, or CRC-64 (continued over both pieces). */
static uint64_t blk_guard(const struct blocks *b, uint32_t i)
{
	size_t pre = b->ns->pi_first ? 0 : b->ns->ms - b->pi_size;

	if (b->pi_size == 16)
		return upcie_crc64_nvme(upcie_crc64_nvme(0, blk_data(b, i), b->ns->lba_size),
					blk_md(b, i), pre);
	return upcie_crc16_t10dif(upcie_crc16_t10dif(0, blk_data(b, i), b->ns->lba_size),
				  blk_md(b, i), pre);
}

static uint64_t blk_ref(const struct blocks *b, uint64_t first, uint32_t i)
{
	return b->ns->pi_type == 3 ? first : (first + i) & b->ref_mask;
}

/* The PI's three fields, host order, in either format. */
struct pi_fields {
	uint64_t guard, ref;
	uint16_t app;
};

static void pi_get(const struct blocks *b, uint32_t i, struct pi_fields *f)
{
	const uint8_t *p = blk_pi(b, i);

	if (b->pi_size == 16) {
		struct upcie_nvme_pi64 pi;

		memcpy(&pi, p, sizeof(pi));
		f->guard = __builtin_bswap64(pi.guard);
		f->app = __builtin_bswap16(pi.apptag);
		f->ref = 0;
		for (int k = 0; k < 6; k++)
			f->ref = f->ref << 8 | pi.sr[k];
	} else {
		struct upcie_nvme_pi16 pi;

		memcpy(&pi, p, sizeof(pi));
		f->guard = __builtin_bswap16(pi.guard);
		f->app = __builtin_bswap16(pi.apptag);
		f->ref = __builtin_bswap32(pi.reftag);
	}
}

static void pi_put(const struct blocks *b, uint32_t i, const struct pi_fields *f)
{
	uint8_t *p = blk_pi(b, i);

	if (b->pi_size == 16) {
		struct upcie_nvme_pi64 pi = {.guard = __builtin_bswap64(f->guard),
					     .apptag = __builtin_bswap16(f->app)};

		for (int k = 0; k < 6; k++)
			pi.sr[k] = (uint8_t)(f->ref >> (40 - 8 * k));
		memcpy(p, &pi, sizeof(pi));
	} else {
		struct upcie_nvme_pi16 pi = {
		    .guard = __builtin_bswap16((uint16_t)f->guard),
		    .apptag = __builtin_bswap16(f->app),
		    .reftag = __builtin_bswap32((uint32_t)f->ref),
		};

		memcpy(p, &pi, sizeof(pi));
	}
}

int upcie_nvme_pi_generate(const struct upcie_nvme_ns *ns, void *buf, void *md, uint32_t nlb,
			   const struct upcie_nvme_io_opts *o)
{
	struct blocks b;
	int rc = blocks_init(&b, ns, buf, md, o, "upcie_nvme_pi_generate");
	uint64_t first;

	if (rc)
		return rc;
	first = upcie_nvme_opts_reftag(o) & b.ref_mask;
	for (uint32_t i = 0; i < nlb; i++) {
		struct pi_fields f = {
		    .guard = blk_guard(&b, i), .ref = blk_ref(&b, first, i), .app = o->apptag};

		pi_put(&b, i, &f);
	}
	return 0;
}

static uint16_t blk_check(const struct blocks *b, uint32_t i, const struct upcie_nvme_io_opts *o,
			  uint64_t first)
{
	struct pi_fields f;

	pi_get(b, i, &f);
	if (f.app == 0xffff && (b->ns->pi_type != 3 || f.ref == b->ref_mask))
		return 0; /* the escape: no checks for this block */
	if ((o->flags & UPCIE_NVME_RW_PRCHK_GUARD) && f.guard != blk_guard(b, i))
		return UPCIE_NVME_SC_GUARD_CHECK;
	if ((o->flags & UPCIE_NVME_RW_PRCHK_APP) && ((f.app ^ o->apptag) & o->apptag_mask) != 0)
		return UPCIE_NVME_SC_APPTAG_CHECK;
	if ((o->flags & UPCIE_NVME_RW_PRCHK_REF) && f.ref != blk_ref(b, first, i))
		return UPCIE_NVME_SC_REFTAG_CHECK;
	return 0;
}

int upcie_nvme_pi_verify(const struct upcie_nvme_ns *ns, const void *buf, const void *md,
			 uint32_t nlb, const struct upcie_nvme_io_opts *o, uint32_t *bad)
{
	struct blocks b;
	int rc = blocks_init(&b, ns, buf, md, o, "upcie_nvme_pi_verify");
	uint64_t first;

	if (rc)
		return rc;
	first = upcie_nvme_opts_reftag(o) & b.ref_mask;
	for (uint32_t i = 0; i < nlb; i++) {
		uint16_t st = blk_check(&b, i, o, first);

		if (st) {
			if (bad)
				*bad = i;
			return st;
		}
	}
	return 0;
}
