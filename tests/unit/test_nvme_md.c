/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Metadata and end-to-end protection through the library on the sim:
 * the CRC16, the namespace's format in its handle, separate and extended
 * metadata, PI types 1-3 in the first or last bytes (through Format NVM),
 * PRACT, each check failing with its status and LBA, the option checks,
 * and the optional NVM commands (Compare, Verify, Write Uncorrectable,
 * Copy, Dataset Management), refused when ONCS lacks them.
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"
#include "nvme/queue.h" /* white box: the SQE a call built */

#define BIG 256u /* blocks of the largest buffer a test uses */

static struct fx F;
static struct upcie_nvme_qpair *QP;
static uint8_t *BUF, *RBUF, *MD, *RMD;

/* nsid 1: 512 + 8 separate, no PI; 2: 4096 + 16 extended, PI type 1 last;
 * 3: 512 + 8 separate, PI type 3 first; 4: 4096, no metadata (formats);
 * 5: 512 + 16 separate, PI type 2 with the 64-bit guard (its formats with
 * 16 and 64 metadata bytes have it: the controller has extended LBA
 * formats). */
static void open_md(uint32_t oncs_off)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	cfg.nr_ns = 5;
	cfg.ns[0] = (struct upcie_sim_ns_config){.lba_size = 512, .nlbas = 8192, .ms = 8};
	cfg.ns[1] = (struct upcie_sim_ns_config){
	    .lba_size = 4096, .nlbas = 4096, .ms = 16, .pi = 1, .md_flags = UPCIE_SIM_MD_EXTENDED};
	cfg.ns[2] = (struct upcie_sim_ns_config){
	    .lba_size = 512, .nlbas = 8192, .ms = 8, .pi = 3, .md_flags = UPCIE_SIM_MD_PI_FIRST};
	cfg.ns[3] = (struct upcie_sim_ns_config){.lba_size = 4096, .nlbas = 4096};
	cfg.ns[4] = (struct upcie_sim_ns_config){
	    .lba_size = 512, .nlbas = 8192, .ms = 16, .pi = 2, .md_flags = UPCIE_SIM_MD_GUARD64};
	CU_ASSERT_FATAL(fx_open_opts(&F, &cfg, 32u << 20, true, NULL) == 0);
	if (oncs_off)
		CU_ASSERT_EQUAL(upcie_sim_fault(F.sim, UPCIE_SIM_FAULT_ONCS_OFF, oncs_off, 0), 0);
	F.ctrl = upcie_nvme_ctrl_open(F.dev, F.heap, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(F.ctrl);
	QP = upcie_nvme_qpair_create(F.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(QP);
	BUF = upcie_dma_alloc(F.heap, BIG * (4096 + 64), 4096);
	RBUF = upcie_dma_alloc(F.heap, BIG * (4096 + 64), 4096);
	MD = upcie_dma_alloc(F.heap, BIG * 64, 4096);
	RMD = upcie_dma_alloc(F.heap, BIG * 64, 4096);
	CU_ASSERT_FATAL(BUF && RBUF && MD && RMD);
}

static void close_md(void)
{
	upcie_dma_free(F.heap, BUF);
	upcie_dma_free(F.heap, RBUF);
	upcie_dma_free(F.heap, MD);
	upcie_dma_free(F.heap, RMD);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(QP), 0);
	fx_close(&F);
	/* The buffers died with the heap: a test that takes one before
	 * open_md() gets NULL, refused everywhere, not a stale address that
	 * only works where the next heap lands on the same spot. */
	BUF = RBUF = MD = RMD = NULL;
	QP = NULL;
}

static struct upcie_nvme_io_opts opts(uint32_t flags, void *md, uint32_t ref, uint16_t app)
{
	return (struct upcie_nvme_io_opts){.opts_size = sizeof(struct upcie_nvme_io_opts),
					   .flags = flags,
					   .md = md,
					   .reftag = ref,
					   .apptag = app,
					   .apptag_mask = 0xffff};
}

/* Submit an asynchronous command (its call made by the caller with
 * fx_count_cb) and wait for it; its status. */
static int wait_status(struct fx_counter *c, int rc)
{
	if (rc)
		return rc;
	CU_ASSERT_EQUAL(fx_wait(&F, QP, &c->done, 1), 0);
	return c->last_status;
}

/* ---- CRC16 ---- */

static uint16_t crc_bitwise(const uint8_t *p, size_t len)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < len; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x8bb7 : crc << 1);
	}
	return crc;
}

uint16_t upcie_crc16_tables(uint16_t crc, const uint8_t *p, size_t len); /* pi.c, hidden */
uint64_t upcie_crc64_tables(uint64_t crc, const uint8_t *p, size_t len); /* pi.c, hidden */

static void test_crc16(void)
{
	static uint8_t big[4096 + 77];
	uint8_t buf[300];

	/* The catalogued check value of CRC-16/T10-DIF. */
	CU_ASSERT_EQUAL(upcie_crc16_t10dif(0, "123456789", 9), 0xd0db);
	CU_ASSERT_EQUAL(upcie_crc16_t10dif(0, buf, 0), 0);
	fx_fill(buf, sizeof(buf), 3);
	for (size_t len = 0; len <= sizeof(buf); len += 7)
		CU_ASSERT_EQUAL(upcie_crc16_t10dif(0, buf, len), crc_bitwise(buf, len));
	/* Continued over two pieces, as the guard over data then metadata. */
	CU_ASSERT_EQUAL(upcie_crc16_t10dif(upcie_crc16_t10dif(0, buf, 101), buf + 101, 150),
			crc_bitwise(buf, 251));
	/* Long buffers, every tail length, split anywhere: the carry-less
	 * path (where the CPU has one) and the tables agree with the bits. */
	fx_fill(big, sizeof(big), 7);
	for (size_t len = 4096; len < sizeof(big); len++) {
		uint16_t want = crc_bitwise(big, len);

		CU_ASSERT_EQUAL(upcie_crc16_t10dif(0, big, len), want);
		CU_ASSERT_EQUAL(upcie_crc16_tables(0, big, len), want);
		CU_ASSERT_EQUAL(upcie_crc16_t10dif(upcie_crc16_t10dif(0, big, len - 4000),
						   big + len - 4000, 4000),
				want);
	}
	for (size_t cut = 0; cut < 200; cut += 3)
		CU_ASSERT_EQUAL(
		    upcie_crc16_t10dif(upcie_crc16_t10dif(0, big, cut), big + cut, 1000),
		    crc_bitwise(big, cut + 1000));
}

/* ---- CRC-64 (64-bit guard) ---- */

static uint64_t crc64_bitwise(const uint8_t *p, size_t len)
{
	uint64_t crc = ~0ull;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = crc & 1 ? (crc >> 1) ^ 0x9a6c9329ac4bc9b5ull : crc >> 1;
	}
	return ~crc;
}

static void test_crc64(void)
{
	static uint8_t big[4096 + 77];
	static const uint8_t zeros[4096];

	/* The catalogued check value of CRC-64/NVME. */
	CU_ASSERT_EQUAL(upcie_crc64_nvme(0, "123456789", 9), 0xae8b14860a799888ull);
	CU_ASSERT_EQUAL(upcie_crc64_nvme(0, big, 0), 0);
	/* 4 KiB of zeros: its guard as the NVMe spec's example lists it. */
	CU_ASSERT_EQUAL(upcie_crc64_nvme(0, zeros, 4096), 0x6482d367eb22b64eull);
	fx_fill(big, sizeof(big), 9);
	for (size_t len = 0; len < 300; len += 5)
		CU_ASSERT_EQUAL(upcie_crc64_nvme(0, big, len), crc64_bitwise(big, len));
	/* Long buffers, every tail length: the carry-less path (where the CPU
	 * has one) and the tables agree with the bits. */
	for (size_t len = 4080; len < sizeof(big); len++) {
		uint64_t want = crc64_bitwise(big, len);

		CU_ASSERT_EQUAL(upcie_crc64_nvme(0, big, len), want);
		CU_ASSERT_EQUAL(upcie_crc64_tables(0, big, len), want);
	}
	for (size_t len = 64; len < 400; len++)
		CU_ASSERT_EQUAL(upcie_crc64_nvme(0, big + 3, len), crc64_bitwise(big + 3, len));
	/* Continued over two pieces, cut anywhere (data, then metadata). */
	for (size_t cut = 0; cut < 40; cut++)
		CU_ASSERT_EQUAL(upcie_crc64_nvme(upcie_crc64_nvme(0, big, cut), big + cut, 4096),
				crc64_bitwise(big, cut + 4096));
}

/* ---- the handle ---- */

static void test_ns_format(void)
{
	const struct upcie_nvme_ns *a, *b, *c, *d;
	uint16_t st;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	a = fx_ns(&F, 1), b = fx_ns(&F, 2), c = fx_ns(&F, 3), d = fx_ns(&F, 4);
	CU_ASSERT(a->ms == 8 && !a->md_extended && !a->pi_type && !a->guard_bits);
	CU_ASSERT(b->ms == 16 && b->md_extended && b->pi_type == 1 && !b->pi_first);
	CU_ASSERT_EQUAL(b->guard_bits, 16);
	CU_ASSERT(c->ms == 8 && !c->md_extended && c->pi_type == 3 && c->pi_first);
	CU_ASSERT(d->ms == 0 && !d->pi_type && d->max_xfer_blocks == 32);
	/* The 64-bit guard, from the NVM command set's Identify Namespace. */
	CU_ASSERT(fx_ns(&F, 5)->pi_type == 2 && fx_ns(&F, 5)->guard_bits == 64 &&
		  !fx_ns(&F, 5)->pi_sts);
	CU_ASSERT(upcie_nvme_ctrl_id(F.ctrl)->ctratt & UPCIE_NVME_CTRATT_ELBAS);
	CU_ASSERT_EQUAL(upcie_nvme_ns_md_len(fx_ns(&F, 5), 2, UPCIE_NVME_RW_PRACT), 0);
	/* MDTS 128 KiB: extended LBAs count the metadata too. */
	CU_ASSERT_EQUAL(a->md_max_xfer_blocks, 256);
	CU_ASSERT_EQUAL(b->md_max_xfer_blocks, 131072 / 4112);
	CU_ASSERT_EQUAL(a->max_xfer_blocks, 0);
	/* The plain calls refuse metadata namespaces and say what to use. */
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(QP, a, 0, 1, BUF, &st, 0), -ENOTSUP);
	CU_ASSERT(strstr(upcie_errmsg(), "_ext") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_read(QP, b, 0, 1, BUF, NULL, NULL, 0), -ENOTSUP);
	CU_ASSERT_EQUAL(upcie_nvme_ns_data_len(b, 2, 0), 2 * 4112);
	CU_ASSERT_EQUAL(upcie_nvme_ns_md_len(b, 2, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ns_md_len(a, 2, 0), 16);
	CU_ASSERT_EQUAL(upcie_nvme_ns_md_len(c, 2, UPCIE_NVME_RW_PRACT), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ns_data_len(c, 2, UPCIE_NVME_RW_PRACT), 1024);
	close_md();
}

/* ---- metadata without PI ---- */

static void test_separate_md(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_io_result res;
	uint32_t stride;
	uint8_t *smd, *sdata;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 1);
	fx_fill(BUF, 64 * 512, 1);
	fx_fill(MD, 64 * 8, 2);
	o = opts(0, MD, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 10, 64, BUF, &o, &res, 0),
			0);
	CU_ASSERT_EQUAL(res.status, 0);
	/* The device keeps each block's 8 bytes with its block. */
	smd = upcie_sim_ns_md(F.sim, 1, &stride);
	sdata = upcie_sim_ns_data(F.sim, 1, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(smd);
	CU_ASSERT_EQUAL(memcmp(smd + 11 * stride, MD + 8, 8), 0);
	CU_ASSERT_EQUAL(memcmp(sdata + 10 * 512, BUF, 64 * 512), 0);
	o = opts(0, RMD, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 10, 64, RBUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, 64 * 512), 0);
	CU_ASSERT_EQUAL(memcmp(RMD, MD, 64 * 8), 0);

	/* Wrong metadata arguments, each named. */
	o = opts(0, NULL, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, &o, NULL, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "metadata buffer") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, NULL, NULL, NULL, 0), -EINVAL);
	o = opts(0, (uint8_t *)&o, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, &o, NULL, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "not in the DMA heap") != NULL);
	o = opts(0, RMD + 2, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, &o, NULL, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "aligned") != NULL);
	o = opts(UPCIE_NVME_RW_PRCHK_GUARD, RMD, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, &o, NULL, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "protection information") != NULL);
	o = opts(1u << 3, RMD, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, &o, NULL, NULL, 0), -EINVAL);
	o = opts(0, RMD, 0, 0);
	o.opts_size = 8;
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 1, RBUF, &o, NULL, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "opts_size") != NULL);
	o = opts(0, RMD, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 257, RBUF, &o, NULL, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, 0, 0, RBUF, &o, NULL, NULL, 0), -EINVAL);
	/* The namespace without metadata takes none. */
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, fx_ns(&F, 4), 0, 1, RBUF, &o, NULL, NULL, 0),
			-EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "md must be NULL") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(QP), 0);
	close_md();
}

/* Extended LBAs without PI (format 2: 16 bytes), then FUA and LR in CDW12. */
static void test_extended_md(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o = opts(0, NULL, 0, 0);
	uint32_t stride;
	uint8_t *smd, *sdata;
	uint16_t st;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	CU_ASSERT_EQUAL(upcie_nvme_format(F.ctrl, 4, 2, 1, 0, 0, &st), 0);
	ns = fx_ns(&F, 4);
	CU_ASSERT(ns->ms == 16 && ns->md_extended && !ns->pi_type);
	fx_fill(BUF, 8 * 4112, 5);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 100, 8, BUF, &o, NULL, 0),
			0);
	smd = upcie_sim_ns_md(F.sim, 4, &stride);
	sdata = upcie_sim_ns_data(F.sim, 4, NULL);
	for (uint32_t i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(memcmp(sdata + (100 + i) * 4096, BUF + i * 4112, 4096), 0);
		CU_ASSERT_EQUAL(memcmp(smd + (100 + i) * stride, BUF + i * 4112 + 4096, 16), 0);
	}
	memset(RBUF, 0, 8 * 4112);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 100, 8, RBUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, 8 * 4112), 0);

	/* FUA and Limited Retry go into CDW12 as they are. */
	o = opts(UPCIE_NVME_RW_FUA | UPCIE_NVME_RW_LR, NULL, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_write_ext(QP, ns, 3, 2, BUF, &o, NULL, NULL, 0), 0);
	{
		const struct upcie_nvme_sqe *s = &QP->sq[(QP->sq_tail + QP->depth - 1) % QP->depth];

		CU_ASSERT_EQUAL(s->cdw12, 1 | UPCIE_NVME_RW_FUA | UPCIE_NVME_RW_LR);
		CU_ASSERT_EQUAL(s->mptr, 0);
	}
	upcie_nvme_ring(QP);
	while (upcie_nvme_qpair_outstanding(QP)) {
		fx_step(&F);
		upcie_nvme_poll(QP, 0);
	}
	close_md();
}

/* ---- protection information ---- */

/* Write with host-made PI, read back with every check the type takes
 * (type 3: guard and application tag), for one format. */
static void pi_round_trip(uint32_t lbaf, int ext, uint32_t pi, int first)
{
	const struct upcie_nvme_ns *ns;
	uint64_t slba = 40;
	uint32_t ref = pi == 1 ? (uint32_t)slba : 0x1000, bad = 99;
	struct upcie_nvme_io_opts o = opts(UPCIE_NVME_RW_PRCHK_ALL, ext ? NULL : MD, ref, 0x5a5a);
	uint16_t st = 0xffff;
	size_t dlen;

	CU_ASSERT_EQUAL_FATAL(upcie_nvme_format(F.ctrl, 4, lbaf, ext, pi, first, &st), 0);
	ns = fx_ns(&F, 4);
	CU_ASSERT(ns->pi_type == pi && ns->pi_first == first && ns->md_extended == ext);
	o.flags = upcie_nvme_ns_prchk(ns);
	dlen = upcie_nvme_ns_data_len(ns, 16, 0);
	fx_fill(BUF, dlen, lbaf + pi);
	fx_fill(MD, 16 * ns->ms, pi);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, BUF, o.md, 16, &o), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, BUF, o.md, 16, &o, &bad), 0);
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, slba, 16, BUF, &o, NULL, 0), 0);
	memset(RBUF, 0, dlen);
	o.md = ext ? NULL : RMD;
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, slba, 16, RBUF, &o, NULL, 0), 0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, dlen), 0);
	CU_ASSERT(ext || !memcmp(RMD, MD, 16 * ns->ms));
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, o.md, 16, &o, &bad), 0);
	/* Verify checks them on the device. */
	o.md = NULL;
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_VERIFY, ns, slba, 16, NULL, &o, NULL, 0), 0);
}

static void test_pi_formats(void)
{
	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	for (uint32_t pi = 1; pi <= 3; pi++)
		for (uint32_t lbaf = 1; lbaf <= 2; lbaf++) /* 8 and 16 metadata bytes */
			for (int ext = 0; ext <= 1; ext++)
				for (int first = 0; first <= 1; first++)
					pi_round_trip(lbaf, ext, pi, first);
	/* PI needs metadata: format 0 has none. */
	uint16_t st = 0;
	CU_ASSERT_EQUAL(upcie_nvme_format(F.ctrl, 4, 0, 0, 1, 0, &st), -EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_INVALID_FORMAT);
	CU_ASSERT_EQUAL(upcie_nvme_format(F.ctrl, 4, 0, 0, 4, 0, &st), -EINVAL);
	close_md();
}

/* PRACT: the device makes the PI; with 8-byte metadata none crosses the bus. */
static void test_pract(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o = opts(UPCIE_NVME_RW_PRACT, NULL, 7, 0x1234);
	struct upcie_nvme_pi16 pi;
	uint32_t stride, bad;
	uint8_t *smd;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 3); /* type 3, PI first, 8 bytes, separate */
	fx_fill(BUF, 4 * 512, 9);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 5, 4, BUF, &o, NULL, 0),
			0);
	smd = upcie_sim_ns_md(F.sim, 3, &stride);
	memcpy(&pi, smd + 6 * stride, sizeof(pi));
	CU_ASSERT_EQUAL(__builtin_bswap16(pi.guard), upcie_crc16_t10dif(0, BUF + 512, 512));
	CU_ASSERT_EQUAL(__builtin_bswap16(pi.apptag), 0x1234);
	CU_ASSERT_EQUAL(__builtin_bswap32(pi.reftag), 7); /* type 3: not counted up */
	/* Read, checked and stripped by the device. */
	o.flags = UPCIE_NVME_RW_PRACT | upcie_nvme_ns_prchk(ns);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 5, 4, RBUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, 4 * 512), 0);
	/* Read with the PI, checked by the host. */
	o = opts(0, RMD, 7, 0x1234);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 5, 4, RBUF, &o, NULL, 0),
			0);
	o.flags = upcie_nvme_ns_prchk(ns);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, RMD, 4, &o, &bad), 0);
	o.apptag = 0x1235;
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, RMD, 4, &o, &bad),
			UPCIE_NVME_SC_APPTAG_CHECK);
	CU_ASSERT_EQUAL(bad, 0);
	/* Type 1 extended (16 bytes: the PI is last, the metadata before it
	 * crosses the bus and counts in the guard). */
	ns = fx_ns(&F, 2);
	fx_fill(BUF, 2 * 4112, 4);
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 300, 1);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 300, 2, BUF, &o, NULL, 0),
			0);
	o.flags = UPCIE_NVME_RW_PRCHK_ALL;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 300, 2, RBUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(memcmp(RBUF + 4112, BUF + 4112, 4104), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, NULL, 2, &o, &bad), 0);
	/* Type 3 has no reference tag to check: the library refuses PRCHK_REF
	 * there, naming it, and the device answers it with Invalid PI. */
	CU_ASSERT_EQUAL(upcie_nvme_ns_prchk(fx_ns(&F, 3)),
			UPCIE_NVME_RW_PRCHK_GUARD | UPCIE_NVME_RW_PRCHK_APP);
	CU_ASSERT_EQUAL(upcie_nvme_ns_prchk(fx_ns(&F, 2)), UPCIE_NVME_RW_PRCHK_ALL);
	CU_ASSERT_EQUAL(upcie_nvme_ns_prchk(fx_ns(&F, 1)), 0);
	o = opts(UPCIE_NVME_RW_PRCHK_REF, RMD, 7, 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, fx_ns(&F, 3), 5, 1, RBUF, &o, NULL, NULL, 0),
			-EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "PRCHK_REF") != NULL);
	{
		struct upcie_nvme_sqe sq = {.opc = UPCIE_NVME_CMD_READ,
					    .nsid = 3,
					    .mptr = upcie_dma_bus(F.heap, RMD),
					    .cdw10 = 5,
					    .cdw12 = UPCIE_NVME_RW_PRCHK_REF};
		struct upcie_nvme_cqe cqe;

		CU_ASSERT_EQUAL(upcie_nvme_raw_sync(QP, &sq, RBUF, 512, &cqe, 0), -EIO);
		CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_PI);
	}
	close_md();
}

/* Each check fails with its status, and the failing LBA is named. */
static void test_pi_errors(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_io_result res;
	uint32_t stride;
	uint8_t *smd;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 2); /* type 1, extended, PI last */
	fx_fill(BUF, 8 * 4112, 11);
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, NULL, 1000, 0x77);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, BUF, NULL, 8, &o), 0);
	/* A bad guard on the write (block 5): refused, 0282h at LBA 1005. */
	BUF[5 * 4112 + 17] ^= 1;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 1000, 8, BUF, &o, &res, 0),
			-EIO);
	CU_ASSERT_EQUAL(res.status, UPCIE_NVME_SC_GUARD_CHECK);
	CU_ASSERT(res.lba_valid && res.lba == 1005);
	CU_ASSERT(strstr(upcie_errmsg(), "Guard") != NULL);
	/* Without the guard check the same write goes through. */
	o.flags = UPCIE_NVME_RW_PRCHK_APP | UPCIE_NVME_RW_PRCHK_REF;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 1000, 8, BUF, &o, &res, 0),
			0);
	/* ... and reads back as a guard error at 1005, not as data. */
	o.flags = UPCIE_NVME_RW_PRCHK_ALL;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 8, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT_EQUAL(res.status, UPCIE_NVME_SC_GUARD_CHECK);
	CU_ASSERT(res.lba_valid && res.lba == 1005);
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_VERIFY, ns, 1000, 8, NULL, &o, &res, 0), -EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_GUARD_CHECK && res.lba == 1005);
	/* Without the Error Information log (Get Log Page fails, as on a
	 * controller that keeps no LBA there) the host reads the blocks again
	 * without checks and finds the bad one itself. */
	CU_ASSERT_EQUAL(upcie_sim_fault(F.sim, UPCIE_SIM_FAULT_ADMIN_OPC,
					UPCIE_NVME_ADM_GET_LOG_PAGE, UPCIE_NVME_SC_INVALID_FIELD),
			0);
	memset(&res, 0, sizeof(res));
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 8, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT_EQUAL(res.status, UPCIE_NVME_SC_GUARD_CHECK);
	CU_ASSERT(res.lba_valid && res.lba == 1005);
	CU_ASSERT(strstr(upcie_errmsg(), "Guard") != NULL);
	/* Application tag: 0283h; the mask leaves bits out of the compare. */
	o.apptag = 0x78;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 4, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_APPTAG_CHECK && res.lba == 1000);
	o.apptag_mask = 0xfff0;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 4, RBUF, &o, &res, 0),
			0);
	/* Reference tag: the stored tag of LBA 1002 changed: 0284h there. */
	o = opts(UPCIE_NVME_RW_PRCHK_REF, NULL, 1000, 0);
	smd = upcie_sim_ns_md(F.sim, 2, &stride);
	smd[1002 * stride + 15] ^= 0x40;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 4, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_REFTAG_CHECK && res.lba == 1002);
	/* Type 1: a checked reference tag must be the LBA's. */
	o.reftag = 999;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 4, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT_EQUAL(res.status, UPCIE_NVME_SC_INVALID_PI);
	/* The escape: application tag FFFFh turns the checks off. */
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, NULL, 1000, 0xffff);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, BUF, NULL, 8, &o), 0);
	BUF[2 * 4112] ^= 0xff;
	o.flags = 0;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 1000, 8, BUF, &o, &res, 0),
			0);
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, NULL, 1000, 1);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 1000, 8, RBUF, &o, &res, 0),
			0);
	/* The host's own check agrees with the device about the same buffer. */
	uint32_t bad = 0;
	o.apptag = 0xffff;
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, NULL, 8, &o, &bad), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(fx_ns(&F, 1), RBUF, RMD, 8, &o, &bad), -EINVAL);
	close_md();
}

/* Blocks never written, or deallocated, read their PI as the escape
 * (all FFh): checked reads of them pass; written ones are checked. */
static void test_unwritten_escape(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_io_result res;
	struct upcie_nvme_dsm_range *r;
	struct fx_counter c = {0};

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 3); /* type 3, separate, PI first */
	o = opts(UPCIE_NVME_RW_PRCHK_GUARD | UPCIE_NVME_RW_PRCHK_APP, RMD, 77, 0x10);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 0, 8, RBUF, &o, &res, 0),
			0);
	CU_ASSERT(RMD[0] == 0xff && RMD[7] == 0xff && RMD[63] == 0xff);
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 77, 0x11);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 0, 32, BUF, &o, &res, 0),
			0);
	o = opts(UPCIE_NVME_RW_PRCHK_GUARD | UPCIE_NVME_RW_PRCHK_APP, RMD, 77, 0x10);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 0, 8, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_APPTAG_CHECK && res.lba == 0);
	r = upcie_dma_alloc(F.heap, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	/* Deallocated (3..28: bits of a byte's end, whole bytes, a byte's
	 * start): those read the escape again; 2 and 29 still hold their PI. */
	r[0] = (struct upcie_nvme_dsm_range){.nlb = 26, .slba = 3};
	CU_ASSERT_EQUAL(wait_status(&c, upcie_nvme_dsm(QP, ns, r, 1, UPCIE_NVME_DSM_AD, fx_count_cb,
						       &c, UPCIE_NVME_SUBMIT_RING)),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 3, 26, RBUF, &o, &res, 0),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 2, 1, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 29, 1, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_APPTAG_CHECK && res.lba == 29);
	upcie_dma_free(F.heap, r);
	close_md();
}

/* ---- the 64-bit guard format ---- */

/* nsid 5 in each PI format its LBA formats 2 (16 bytes: the PI alone) and
 * 3 (64: 48 bytes before a last PI count in the guard) take. */
static void test_guard64_formats(void)
{
	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	for (uint32_t pi = 1; pi <= 3; pi++)
		for (uint32_t lbaf = 2; lbaf <= 3; lbaf++)
			for (int ext = 0; ext <= 1; ext++)
				for (int first = 0; first <= 1; first++) {
					const struct upcie_nvme_ns *ns;
					uint16_t st;
					uint32_t ref = pi == 1 ? 40 : 0xfffffff8u, bad = 99;
					struct upcie_nvme_io_opts o =
					    opts(0, ext ? NULL : MD, ref, 0x5a5a);
					size_t dlen;

					CU_ASSERT_EQUAL_FATAL(
					    upcie_nvme_format(F.ctrl, 5, lbaf, ext, pi, first, &st),
					    0);
					ns = fx_ns(&F, 5);
					CU_ASSERT(ns->guard_bits == 64 && ns->pi_type == pi);
					o.flags = upcie_nvme_ns_prchk(ns);
					/* Types 2 and 3: a 48-bit tag whose low half wraps. */
					o.reftag_hi = pi == 1 ? 0 : 0x1234;
					dlen = upcie_nvme_ns_data_len(ns, 16, 0);
					fx_fill(BUF, dlen, lbaf + pi);
					fx_fill(MD, 16 * ns->ms, pi);
					CU_ASSERT_EQUAL(
					    upcie_nvme_pi_generate(ns, BUF, o.md, 16, &o), 0);
					CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE,
									   ns, 40, 16, BUF, &o,
									   NULL, 0),
							0);
					o.md = ext ? NULL : RMD;
					memset(RBUF, 0, dlen);
					CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ,
									   ns, 40, 16, RBUF, &o,
									   NULL, 0),
							0);
					CU_ASSERT_EQUAL(memcmp(RBUF, BUF, dlen), 0);
					CU_ASSERT(ext || !memcmp(RMD, MD, 16 * ns->ms));
					CU_ASSERT_EQUAL(
					    upcie_nvme_pi_verify(ns, RBUF, o.md, 16, &o, &bad), 0);
					o.md = NULL;
					CU_ASSERT_EQUAL(
					    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_VERIFY, ns, 40,
							       16, NULL, &o, NULL, 0),
					    0);
				}
	close_md();
}

/* The 16-byte PI on the wire, PRACT, each check's error and LBA, the
 * 48-bit tag through CDW3 and across a split, the option checks. */
static void test_guard64_checks(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_io_result res;
	struct upcie_nvme_pi64 pi;
	struct upcie_nvme_split sp;
	struct fx_counter c = {0};
	uint32_t stride, bad = 0;
	uint8_t *smd;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 5); /* type 2, 16 bytes of metadata: the PI alone, separate */
	fx_fill(BUF, 8 * 512, 3);
	/* PRACT: the device makes the 16-byte PI, none crosses the bus. */
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 0xffffffffu, 0x4321);
	o.reftag_hi = 0xab;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 8, 4, BUF, &o, NULL, 0),
			0);
	{
		const struct upcie_nvme_sqe *s = &QP->sq[(QP->sq_tail + QP->depth - 1) % QP->depth];

		CU_ASSERT_EQUAL(s->cdw3, 0xab); /* bits 47:32 of the tag */
		CU_ASSERT_EQUAL(s->cdw14, 0xffffffffu);
		CU_ASSERT_EQUAL(s->mptr, 0);
	}
	smd = upcie_sim_ns_md(F.sim, 5, &stride);
	memcpy(&pi, smd + 9 * stride, sizeof(pi));
	CU_ASSERT_EQUAL(__builtin_bswap64(pi.guard), upcie_crc64_nvme(0, BUF + 512, 512));
	CU_ASSERT_EQUAL(__builtin_bswap16(pi.apptag), 0x4321);
	/* Block 1 of the write: 0xab_ffffffff + 1 carries into bit 32. */
	CU_ASSERT(pi.sr[0] == 0 && pi.sr[1] == 0xac && pi.sr[2] == 0 && pi.sr[5] == 0);
	/* Checked by the device, then by the host on the PI read back. */
	o.flags = UPCIE_NVME_RW_PRCHK_ALL;
	o.md = RMD;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 8, 4, RBUF, &o, &res, 0),
			0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, 4 * 512), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, RMD, 4, &o, &bad), 0);
	/* A wrong high half of the tag: 0284h at the first block. */
	o.reftag_hi = 0xaa;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 8, 4, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_REFTAG_CHECK && res.lba_valid && res.lba == 8);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, RMD, 4, &o, &bad),
			UPCIE_NVME_SC_REFTAG_CHECK);
	/* A flipped data bit: the CRC-64 catches it, 0282h at its LBA. */
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, MD, 100, 7);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, BUF, MD, 8, &o), 0);
	BUF[5 * 512 + 100] ^= 0x10;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 100, 8, BUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_GUARD_CHECK && res.lba == 105);
	o.flags = UPCIE_NVME_RW_PRCHK_APP | UPCIE_NVME_RW_PRCHK_REF;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 100, 8, BUF, &o, &res, 0),
			0);
	o.flags = UPCIE_NVME_RW_PRCHK_ALL;
	o.md = RMD;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 100, 8, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_GUARD_CHECK && res.lba == 105);
	o.apptag = 8;
	o.flags = UPCIE_NVME_RW_PRCHK_APP;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 100, 8, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_APPTAG_CHECK && res.lba == 100);
	/* Unwritten blocks read the 16-byte escape. */
	memset(RMD, 0, 64);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 2000, 4, RBUF, &o, &res, 0),
			0);
	CU_ASSERT(RMD[0] == 0xff && RMD[15] == 0xff && RMD[63] == 0xff);
	/* A split keeps the 48-bit tag counting across parts and the 2^32 step. */
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, MD, 0xffffff00u, 0x42);
	o.reftag_hi = 0x7fff;
	fx_fill(BUF, 600 * 512, 5);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, BUF, MD, 600, &o), 0);
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_write_ext_split(QP, ns, 1000, 600, BUF, &o, &sp, fx_count_cb,
						       &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	CU_ASSERT_EQUAL(sp.parts, 3);
	o.md = RMD;
	c.done = 0;
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_read_ext_split(QP, ns, 1000, 600, RBUF, &o, &sp, fx_count_cb,
						      &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	CU_ASSERT_EQUAL(memcmp(RMD, MD, 600 * 16), 0);
	/* Options: the older, smaller struct is taken (reftag_hi as 0);
	 * reftag_hi is refused where tags have 32 bits, and above 16 bits. */
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 5, 0);
	o.opts_size = 24;
	o.reftag_hi = 0x99; /* beyond the older struct: not read */
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 5, 1, BUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(QP->sq[(QP->sq_tail + QP->depth - 1) % QP->depth].cdw3, 0);
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 5, 0);
	o.reftag_hi = 0x10000;
	CU_ASSERT_EQUAL(upcie_nvme_write_ext(QP, ns, 5, 1, BUF, &o, NULL, NULL, 0), -EINVAL);
	o.reftag_hi = 1;
	CU_ASSERT_EQUAL(upcie_nvme_write_ext(QP, fx_ns(&F, 2), 5, 1, BUF, &o, NULL, NULL, 0),
			-EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "reftag_hi") != NULL);
	/* Copy: format 0 ranges have 32-bit tags; refused, naming format 1. */
	CU_ASSERT_EQUAL(upcie_nvme_copy(QP, ns, 0, (void *)RMD, 1, 0, NULL, NULL, NULL, 0),
			-EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "format 1") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(QP), 0);
	close_md();
}

/* Copy with source range format 1 on the 64-bit guard: 48-bit expected
 * tags checked at the source, new PI made or checked at the destination. */
static void test_guard64_copy(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_copy_range1 *r;
	struct upcie_nvme_io_opts o;
	struct fx_counter c = {0};
	uint32_t bad;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 5); /* type 2, 16-byte PI, separate */
	CU_ASSERT(upcie_nvme_ctrl_id(F.ctrl)->ocfs & UPCIE_NVME_OCFS_FORMAT1);
	r = upcie_dma_alloc(F.heap, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	/* Sources: 10..13 tagged 0x77_fffffffe.., 20..21 tagged 0x5_00000000... */
	fx_fill(BUF, 6 * 512, 12);
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 0xfffffffeu, 3);
	o.reftag_hi = 0x77;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 10, 4, BUF, &o, NULL, 0),
			0);
	o.reftag = 0;
	o.reftag_hi = 5;
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 20, 2, BUF + 4 * 512, &o, NULL, 0), 0);
	memset(r, 0, 2 * sizeof(*r));
	r[0].slba = 10;
	r[0].nlb = 3;
	r[0].elbat = 3;
	r[0].elbatm = 0xffff;
	upcie_nvme_copy_range1_reftag(&r[0], 0x77fffffffeull);
	r[1].slba = 20;
	r[1].nlb = 1;
	r[1].elbat = 3;
	r[1].elbatm = 0xffff;
	upcie_nvme_copy_range1_reftag(&r[1], 0x500000000ull);
	CU_ASSERT(r[0].elbt[4] == 0 && r[0].elbt[5] == 0x77 && r[0].elbt[9] == 0xfe);
	/* To 100..105, the device making PI tagged 0x1_00000000.. there. */
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 0, 9);
	o.reftag_hi = 1;
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_copy_ext(QP, ns, 100, 1, r, 2,
						UPCIE_NVME_RW_PRACT | UPCIE_NVME_RW_PRCHK_ALL, &o,
						fx_count_cb, &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	{
		const struct upcie_nvme_sqe *s = &QP->sq[(QP->sq_tail + QP->depth - 1) % QP->depth];

		CU_ASSERT_EQUAL((s->cdw12 >> 8) & 0xf, 1); /* descriptor format */
		CU_ASSERT_EQUAL(s->cdw3, 1);
	}
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, RMD, 0, 9);
	o.reftag_hi = 1;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 100, 6, RBUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, 6 * 512), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, RMD, 6, &o, &bad), 0);
	/* A source's expected tag off in its high half: 0284h. */
	upcie_nvme_copy_range1_reftag(&r[1], 0x600000000ull);
	c.done = 0;
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_copy_ext(QP, ns, 200, 1, r, 2, UPCIE_NVME_RW_PRCHK_REF, NULL,
						fx_count_cb, &c, UPCIE_NVME_SUBMIT_RING)),
	    UPCIE_NVME_SC_REFTAG_CHECK);
	/* PRACT in PRINFOW only: refused by the library, and by the device. */
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 0, 9);
	CU_ASSERT_EQUAL(
	    upcie_nvme_copy_ext(QP, ns, 300, 1, r, 1, UPCIE_NVME_RW_PRCHK_APP, &o, NULL, NULL, 0),
	    -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "PRACT") != NULL);
	{
		struct upcie_nvme_sqe sq = {.opc = UPCIE_NVME_CMD_COPY,
					    .nsid = 5,
					    .cdw10 = 300,
					    .cdw12 = 1u << 8 | UPCIE_NVME_RW_PRACT};
		struct upcie_nvme_cqe cqe;

		CU_ASSERT_EQUAL(upcie_nvme_raw_sync(QP, &sq, r, sizeof(*r), &cqe, 0), -EIO);
		CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_FIELD);
	}
	/* Format 1 where tags have 32 bits, and unknown formats: refused. */
	CU_ASSERT_EQUAL(upcie_nvme_copy_ext(QP, fx_ns(&F, 2), 0, 1, r, 1, 0, NULL, NULL, NULL, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_copy_ext(QP, ns, 0, 2, r, 1, 0, NULL, NULL, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(QP), 0);
	upcie_dma_free(F.heap, r);
	close_md();
}

/* The model refuses formats it cannot have, naming the field. */
static void test_sim_config(void)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	cfg.ns[0].pi = 1;
	CU_ASSERT_PTR_NULL(upcie_sim_create(&cfg));
	CU_ASSERT(strstr(upcie_errmsg(), "ns[0].pi 1 needs at least 8 metadata bytes") != NULL);
	cfg.ns[0].ms = 300;
	CU_ASSERT_PTR_NULL(upcie_sim_create(&cfg));
	CU_ASSERT(strstr(upcie_errmsg(), "ns[0].ms 300") != NULL);
	cfg.ns[0].ms = 8;
	cfg.ns[0].pi = 4;
	CU_ASSERT_PTR_NULL(upcie_sim_create(&cfg));
	cfg.ns[0].pi = 1;
	cfg.ns[0].md_flags = UPCIE_SIM_MD_GUARD64;
	CU_ASSERT_PTR_NULL(upcie_sim_create(&cfg));
	CU_ASSERT(strstr(upcie_errmsg(), "64-bit guard needs at least 16") != NULL);
	cfg.ns[0].pi = 0;
	cfg.ns[0].md_flags = 0x80;
	CU_ASSERT_PTR_NULL(upcie_sim_create(&cfg));
	CU_ASSERT(strstr(upcie_errmsg(), "md_flags") != NULL);
}

/* ---- optional commands ---- */

static void test_compare_uncor(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_io_result res;
	struct fx_counter c = {0};

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 1);
	o = opts(0, MD, 0, 0);
	fx_fill(BUF, 8 * 512, 21);
	fx_fill(MD, 8 * 8, 22);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 50, 8, BUF, &o, NULL, 0),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_COMPARE, ns, 50, 8, BUF, &o, &res, 0),
			0);
	/* A metadata byte of block 6 differs: Compare Failure there. */
	MD[6 * 8 + 3] ^= 1;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_COMPARE, ns, 50, 8, BUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_COMPARE_FAILURE && res.lba_valid && res.lba == 56);
	/* Write Uncorrectable: blocks 52..53 read as Unrecovered Read Error. */
	CU_ASSERT_EQUAL(wait_status(&c, upcie_nvme_write_uncorrectable(QP, ns, 52, 2, fx_count_cb,
								       &c, UPCIE_NVME_SUBMIT_RING)),
			0);
	o.md = RMD;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 50, 8, RBUF, &o, &res, 0),
			-EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_UNRECOVERED_READ && res.lba == 52);
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_VERIFY, ns, 53, 1, NULL, NULL, &res, 0), -EIO);
	CU_ASSERT(res.status == UPCIE_NVME_SC_UNRECOVERED_READ && res.lba == 53);
	/* Written again, they read. */
	o.md = MD;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 52, 2, BUF, &o, NULL, 0),
			0);
	o.md = RMD;
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 50, 8, RBUF, &o, &res, 0),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_write_uncorrectable(QP, ns, 0, 0, NULL, NULL, 0), -EINVAL);
	close_md();
}

static void test_copy(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_copy_range *r;
	struct upcie_nvme_io_opts o;
	struct fx_counter c = {0};
	uint32_t bad;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 2); /* type 1, extended */
	r = upcie_dma_alloc(F.heap, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	fx_fill(BUF, 6 * 4112, 31);
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 10, 3);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 10, 4, BUF, &o, NULL, 0),
			0);
	o.reftag = 20;
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 20, 2, BUF + 4 * 4112, &o, NULL, 0),
	    0);
	/* Two ranges, checked at the source, to 100..105 with new PI. */
	memset(r, 0, 2 * sizeof(*r));
	r[0] = (struct upcie_nvme_copy_range){
	    .slba = 10, .nlb = 3, .eilbrt = 10, .elbat = 3, .elbatm = 0xffff};
	r[1] = (struct upcie_nvme_copy_range){
	    .slba = 20, .nlb = 1, .eilbrt = 20, .elbat = 3, .elbatm = 0xffff};
	o = opts(UPCIE_NVME_RW_PRACT, NULL, 100, 9);
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_copy(QP, ns, 100, r, 2,
					    UPCIE_NVME_RW_PRACT | UPCIE_NVME_RW_PRCHK_ALL, &o,
					    fx_count_cb, &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, NULL, 100, 9);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_READ, ns, 100, 6, RBUF, &o, NULL, 0),
			0);
	for (uint32_t i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(memcmp(RBUF + i * 4112, BUF + i * 4112, 4096 + 8), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, NULL, 6, &o, &bad), 0);
	/* A source whose expected reference tag is wrong: 0284h. */
	r[1].eilbrt = 21;
	c.done = 0;
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_copy(QP, ns, 200, r, 2, UPCIE_NVME_RW_PRCHK_REF, NULL,
					    fx_count_cb, &c, UPCIE_NVME_SUBMIT_RING)),
	    UPCIE_NVME_SC_REFTAG_CHECK);
	/* Limits from Identify Namespace, refused before the device sees them. */
	r[0].nlb = (uint16_t)ns->id->mssrl;
	CU_ASSERT_EQUAL(upcie_nvme_copy(QP, ns, 200, r, 2, 0, NULL, NULL, NULL, 0), -EINVAL);
	CU_ASSERT(strstr(upcie_errmsg(), "MSSRL") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_copy(QP, ns, 200, r, 0, 0, NULL, NULL, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_copy(QP, fx_ns(&F, 1), 200, r, 1, UPCIE_NVME_RW_PRCHK_REF, NULL,
					NULL, NULL, 0),
			-EINVAL);
	upcie_dma_free(F.heap, r);
	close_md();
}

static void test_dsm(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_dsm_range *r;
	struct fx_counter c = {0};
	struct upcie_nvme_io_opts o = opts(0, NULL, 0, 0);
	uint8_t *sdata;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	ns = fx_ns(&F, 4);
	r = upcie_dma_alloc(F.heap, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	fx_fill(BUF, 16 * 4096, 41);
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 0, 16, BUF, &o, NULL, 0),
			0);
	r[0] = (struct upcie_nvme_dsm_range){.nlb = 2, .slba = 1};
	r[1] = (struct upcie_nvme_dsm_range){.cattr = 1, .nlb = 3, .slba = 10};
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_dsm(QP, ns, r, 2, UPCIE_NVME_DSM_AD | UPCIE_NVME_DSM_IDR,
					   fx_count_cb, &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	sdata = upcie_sim_ns_data(F.sim, 4, NULL);
	CU_ASSERT_EQUAL(memcmp(sdata, BUF, 4096), 0);
	CU_ASSERT(sdata[1 * 4096] == 0 && sdata[3 * 4096 - 1] == 0 && sdata[12 * 4096] == 0);
	CU_ASSERT_EQUAL(memcmp(sdata + 3 * 4096, BUF + 3 * 4096, 7 * 4096), 0);
	CU_ASSERT_EQUAL(memcmp(sdata + 13 * 4096, BUF + 13 * 4096, 3 * 4096), 0);
	/* Hints only: the data stays. */
	c.done = 0;
	r[0] = (struct upcie_nvme_dsm_range){.nlb = 1, .slba = 0};
	CU_ASSERT_EQUAL(wait_status(&c, upcie_nvme_dsm(QP, ns, r, 1, UPCIE_NVME_DSM_IDW,
						       fx_count_cb, &c, UPCIE_NVME_SUBMIT_RING)),
			0);
	CU_ASSERT_EQUAL(memcmp(sdata, BUF, 4096), 0);
	CU_ASSERT_EQUAL(upcie_nvme_dsm(QP, ns, r, 1, 0, NULL, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_dsm(QP, ns, r, 1, 1u << 3, NULL, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_dsm(QP, ns, r, 257, UPCIE_NVME_DSM_AD, NULL, NULL, 0), -EINVAL);
	upcie_dma_free(F.heap, r);
	close_md();
}

/* A controller without the optional commands: each call says so. */
static void test_oncs_refused(void)
{
	const uint32_t off = UPCIE_NVME_ONCS_COMPARE | UPCIE_NVME_ONCS_WRITE_UNCOR |
			     UPCIE_NVME_ONCS_DSM | UPCIE_NVME_ONCS_VERIFY | UPCIE_NVME_ONCS_COPY;
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_copy_range *r;
	struct upcie_nvme_io_opts o;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(off);
	ns = fx_ns(&F, 1);
	o = opts(0, MD, 0, 0);
	r = upcie_dma_alloc(F.heap, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	memset(r, 0, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_id(F.ctrl)->oncs & off, 0);
	CU_ASSERT_EQUAL(upcie_nvme_compare(QP, ns, 0, 1, BUF, &o, NULL, NULL, 0), -EOPNOTSUPP);
	CU_ASSERT(strstr(upcie_errmsg(), "compare") && strstr(upcie_errmsg(), "ONCS bit 0"));
	CU_ASSERT_EQUAL(upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_COMPARE, ns, 0, 1, BUF, &o, NULL, 0),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(upcie_nvme_verify(QP, ns, 0, 1, NULL, NULL, NULL, 0), -EOPNOTSUPP);
	CU_ASSERT(strstr(upcie_errmsg(), "ONCS bit 7") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_write_uncorrectable(QP, ns, 0, 1, NULL, NULL, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(upcie_nvme_copy(QP, ns, 0, r, 1, 0, NULL, NULL, NULL, 0), -EOPNOTSUPP);
	CU_ASSERT(strstr(upcie_errmsg(), "ONCS bit 8") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_dsm(QP, ns, (void *)r, 1, UPCIE_NVME_DSM_AD, NULL, NULL, 0),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(QP), 0);
	/* The device refuses them too (raw submits). */
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_CMD_VERIFY, .nsid = 1};
	struct upcie_nvme_cqe cqe;
	CU_ASSERT_EQUAL(upcie_nvme_raw_sync(QP, &s, NULL, 0, &cqe, 0), -EIO);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_OPCODE);
	upcie_dma_free(F.heap, r);
	close_md();
}

/* A split transfer above MDTS keeps data, metadata and reference tags in step. */
static void split_round_trip(uint32_t nsid, uint64_t slba, uint32_t nlb, uint32_t parts)
{
	const struct upcie_nvme_ns *ns = fx_ns(&F, nsid);
	struct upcie_nvme_io_opts o =
	    opts(upcie_nvme_ns_prchk(ns), ns->md_extended ? NULL : MD, (uint32_t)slba, 0x42);
	struct upcie_nvme_split sp;
	struct fx_counter c = {0};
	size_t dlen = upcie_nvme_ns_data_len(ns, nlb, 0), mlen = upcie_nvme_ns_md_len(ns, nlb, 0);
	uint32_t bad;

	CU_ASSERT_EQUAL(upcie_nvme_split_parts(ns, nlb), 0); /* the plain split refuses it */
	fx_fill(BUF, dlen, nsid);
	fx_fill(MD, mlen, nsid + 1);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, BUF, o.md, nlb, &o), 0);
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_write_ext_split(QP, ns, slba, nlb, BUF, &o, &sp, fx_count_cb,
						       &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	CU_ASSERT_EQUAL(sp.parts, parts);
	memset(RBUF, 0, dlen);
	memset(RMD, 0, mlen);
	o.md = mlen ? RMD : NULL;
	c.done = 0;
	CU_ASSERT_EQUAL(
	    wait_status(&c, upcie_nvme_read_ext_split(QP, ns, slba, nlb, RBUF, &o, &sp, fx_count_cb,
						      &c, UPCIE_NVME_SUBMIT_RING)),
	    0);
	CU_ASSERT_EQUAL(memcmp(RBUF, BUF, dlen), 0);
	CU_ASSERT_EQUAL(memcmp(RMD, MD, mlen), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, RBUF, o.md, nlb, &o, &bad), 0);
}

static void test_split(void)
{
	struct upcie_nvme_split sp;
	struct upcie_nvme_io_opts o = opts(0, NULL, 0, 0);

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	split_round_trip(2, 500, 70, 3);  /* extended, type 1: 31 + 31 + 8 blocks */
	split_round_trip(3, 900, 600, 3); /* separate, type 3: 256 + 256 + 88 */
	/* Without its metadata buffer: refused before any part goes out. */
	CU_ASSERT_EQUAL(
	    upcie_nvme_read_ext_split(QP, fx_ns(&F, 3), 0, 600, RBUF, &o, &sp, NULL, NULL, 0),
	    -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_read_split(QP, fx_ns(&F, 3), 0, 600, RBUF, &sp, NULL, NULL, 0),
			-ENOTSUP);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(QP), 0);
	close_md();
}

/* Format NVM fences handles of the old format. */
static void test_format_fences(void)
{
	const struct upcie_nvme_ns *old, *now;
	struct upcie_nvme_io_opts o = opts(0, NULL, 0, 0);
	uint16_t st;

	FX_SIM_ONLY(); /* the model's namespaces and faults */

	open_md(0);
	old = fx_ns(&F, 4);
	CU_ASSERT_EQUAL(upcie_nvme_format(F.ctrl, 4, 1, 0, 2, 1, &st), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, old, 0, 1, RBUF, &o, NULL, NULL, 0), -ESTALE);
	now = fx_ns(&F, 4);
	CU_ASSERT(now->ms == 8 && now->pi_type == 2 && now->pi_first && !now->md_extended);
	CU_ASSERT_EQUAL(upcie_nvme_format(F.ctrl, 4, 9, 0, 0, 0, &st), -EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_INVALID_FORMAT);
	CU_ASSERT_EQUAL(upcie_nvme_format(F.ctrl, 0, 0, 0, 0, 0, &st), -EINVAL);
	close_md();
}

static CU_TestInfo tests[] = {
    {"CRC16 T10-DIF", test_crc16},
    {"CRC-64 NVMe", test_crc64},
    {"the handle reports the metadata format", test_ns_format},
    {"separate metadata, and bad metadata arguments", test_separate_md},
    {"extended LBAs, FUA and LR", test_extended_md},
    {"PI types 1-3, first/last, 8/16 bytes, extended/separate", test_pi_formats},
    {"PRACT inserts and strips", test_pract},
    {"guard, application and reference tag errors name the LBA", test_pi_errors},
    {"unwritten and deallocated blocks read the PI escape", test_unwritten_escape},
    {"sim refuses impossible formats", test_sim_config},
    {"compare and write uncorrectable", test_compare_uncor},
    {"copy with PI", test_copy},
    {"dataset management with ranges and attributes", test_dsm},
    {"optional commands refused without ONCS", test_oncs_refused},
    {"split above MDTS with metadata and PI", test_split},
    {"format NVM fences old handles", test_format_fences},
    {"64-bit guard: formats, separate/extended, first/last", test_guard64_formats},
    {"64-bit guard: PRACT, checks, 48-bit tags, split, options", test_guard64_checks},
    {"64-bit guard: copy with source range format 1", test_guard64_copy},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("nvme_md", NULL, NULL, tests)
