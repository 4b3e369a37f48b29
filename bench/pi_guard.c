/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What protection information costs the host, per 4 KiB block: the
 * library's T10-DIF CRC16 as it runs here (carry-less multiplication
 * where the CPU has it), its tables alone (slicing by 8), a one-table
 * CRC16 (one lookup per byte, the textbook way), memcpy of the same bytes
 * as a yardstick, and upcie_nvme_pi_generate / _verify of one 4 KiB + 8
 * block (extended LBA, type 1). The same for the 64-bit guard format: the
 * NVMe CRC-64 as it runs here (carry-less multiplication where the CPU
 * has it), its tables alone (slicing by 8), a one-table CRC-64, and
 * generate / verify of one 4 KiB + 16 block. Each figure is the best of several runs,
 * in CPU time of this thread (a busy machine does not inflate it), over
 * a buffer that stays in cache; ratios are against memcpy.
 *
 *   bench-pi-guard [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upcie/pi.h>

/* lib/nvme/pi.c: the tables alone (hidden; this program links the
 * library's static objects). */
uint16_t upcie_crc16_tables(uint16_t crc, const uint8_t *p, size_t len);
uint64_t upcie_crc64_tables(uint64_t crc, const uint8_t *p, size_t len);

#define BLK   4096u
#define ITERS 20000u
#define RUNS  7

static uint16_t tab1[256];
static uint64_t tab64[256];

static void tab1_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint16_t r = (uint16_t)(b << 8);

		for (int i = 0; i < 8; i++)
			r = (uint16_t)(r & 0x8000 ? (r << 1) ^ 0x8bb7 : r << 1);
		tab1[b] = r;
	}
	for (unsigned b = 0; b < 256; b++) {
		uint64_t r = b;

		for (int i = 0; i < 8; i++)
			r = r & 1 ? (r >> 1) ^ 0x9a6c9329ac4bc9b5ull : r >> 1;
		tab64[b] = r;
	}
}

static uint64_t crc64_one_table(const uint8_t *p, size_t len)
{
	uint64_t crc = ~0ull;

	while (len--)
		crc = (crc >> 8) ^ tab64[(crc ^ *p++) & 0xff];
	return ~crc;
}

static uint16_t crc_one_table(const uint8_t *p, size_t len)
{
	uint16_t crc = 0;

	while (len--)
		crc = (uint16_t)(crc << 8) ^ tab1[(crc >> 8) ^ *p++];
	return crc;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

enum what {
	CRC_LIB,
	CRC_SLICE8,
	CRC_TAB1,
	MEMCPY,
	PI_GEN,
	PI_VERIFY,
	CRC64_LIB,
	CRC64_SLICE8,
	CRC64_TAB1,
	PI64_GEN,
	PI64_VERIFY,
	NR_WHAT
};
static const char *const names[NR_WHAT] = {
    "crc16", "crc16_slice8", "crc16_one_table", "memcpy",	 "pi_generate", "pi_verify",
    "crc64", "crc64_slice8", "crc64_one_table", "pi64_generate", "pi64_verify"};

static volatile uint32_t sink;

/* Nanoseconds per 4 KiB block, best of RUNS. */
static double measure(enum what w, uint8_t *blk, uint8_t *dst, const struct upcie_nvme_ns *ns,
		      const struct upcie_nvme_ns *ns64, const struct upcie_nvme_io_opts *o)
{
	double best = 1e30;

	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();
		uint32_t acc = 0;

		for (unsigned i = 0; i < ITERS; i++) {
			blk[i & 255] ^= 1; /* keep the compiler from hoisting the work */
			switch (w) {
			case CRC_LIB:
				acc += upcie_crc16_t10dif(0, blk, BLK);
				break;
			case CRC_SLICE8:
				acc += upcie_crc16_tables(0, blk, BLK);
				break;
			case CRC_TAB1:
				acc += crc_one_table(blk, BLK);
				break;
			case MEMCPY:
				memcpy(dst, blk, BLK);
				acc += dst[i & 4095];
				break;
			case PI_GEN:
				acc += (uint32_t)upcie_nvme_pi_generate(ns, blk, NULL, 1, o);
				break;
			case PI_VERIFY:
				acc += (uint32_t)upcie_nvme_pi_verify(ns, blk, NULL, 1, o, NULL);
				break;
			case CRC64_LIB:
				acc += (uint32_t)upcie_crc64_nvme(0, blk, BLK);
				break;
			case CRC64_SLICE8:
				acc += (uint32_t)upcie_crc64_tables(0, blk, BLK);
				break;
			case CRC64_TAB1:
				acc += (uint32_t)crc64_one_table(blk, BLK);
				break;
			case PI64_GEN:
				acc += (uint32_t)upcie_nvme_pi_generate(ns64, blk, NULL, 1, o);
				break;
			default:
				acc += (uint32_t)upcie_nvme_pi_verify(ns64, blk, NULL, 1, o, NULL);
				break;
			}
		}
		sink += acc;
		double dt = (now_ns() - t0) / ITERS;
		if (dt < best)
			best = dt;
	}
	return best;
}

int main(int argc, char **argv)
{
	struct upcie_nvme_ns ns = {.nsid = 1,
				   .lba_size = BLK,
				   .lba_shift = 12,
				   .ms = 8,
				   .md_extended = 1,
				   .pi_type = 1,
				   .guard_bits = 16};
	struct upcie_nvme_ns ns64 = ns;
	struct upcie_nvme_io_opts o = {
	    .opts_size = sizeof(o), .flags = UPCIE_NVME_RW_PRCHK_ALL, .apptag_mask = 0xffff};
	int json = argc > 1 && !strcmp(argv[1], "--json");
	uint8_t *blk = aligned_alloc(64, BLK + 64), *dst = aligned_alloc(64, BLK + 64);

	ns64.ms = 16;
	ns64.guard_bits = 64;
	double ns_per[NR_WHAT];

	if (argc > 1 && !json) {
		fprintf(stderr, "usage: %s [--json]\n", argv[0]);
		return 1;
	}
	if (!blk || !dst)
		return 2;
	tab1_init();
	for (unsigned i = 0; i < BLK + 16; i++)
		blk[i] = (uint8_t)(i * 7 + 3);
	if (upcie_crc16_t10dif(0, blk, BLK) != crc_one_table(blk, BLK) ||
	    upcie_crc16_tables(0, blk, BLK) != crc_one_table(blk, BLK)) {
		fprintf(stderr, "bench-pi-guard: the CRCs disagree\n");
		return 2;
	}
	if (upcie_crc64_nvme(0, blk, BLK) != crc64_one_table(blk, BLK) ||
	    upcie_crc64_tables(0, blk, BLK) != crc64_one_table(blk, BLK)) {
		fprintf(stderr, "bench-pi-guard: the CRC-64s disagree\n");
		return 2;
	}
	for (int w = 0; w < NR_WHAT; w++)
		ns_per[w] = measure((enum what)w, blk, dst, &ns, &ns64, &o);
	for (int w = 0; w < NR_WHAT; w++) {
		double gbs = BLK / ns_per[w];

		if (json)
			printf("%s{\"what\": \"%s\", \"ns_per_4k\": %.1f, \"gb_per_s\": %.2f, "
			       "\"x_memcpy\": %.2f}%s",
			       w ? "" : "[", names[w], ns_per[w], gbs, ns_per[w] / ns_per[MEMCPY],
			       w + 1 < NR_WHAT ? ", " : "]\n");
		else
			printf("%-16s %8.1f ns/4KiB  %6.2f GB/s  %6.2fx memcpy\n", names[w],
			       ns_per[w], gbs, ns_per[w] / ns_per[MEMCPY]);
	}
	free(blk);
	free(dst);
	return 0;
}
