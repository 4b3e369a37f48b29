/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Metadata SGLs (PSDT 10b, Identify SGLS bit 19) through the library on
 * the sim: a separate metadata buffer (and data) that is not contiguous in
 * bus addresses, written and read back with and without PI, across a split
 * above MDTS; refused, naming the bit, when the controller lacks it; and
 * the model's answers to bad metadata SGLs.
 *
 * The sim's bus addresses equal virtual ones, so a bus discontinuity is
 * made by hand: a memfd's pages mapped twice, once contiguously (the
 * buffer the host uses) and once from the cut on at another address; the
 * contiguous mapping is registered and its bus table pointed at the second
 * mapping from the cut on (white box), so the device reaches the same
 * memory through two runs.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upcie/engine.h>
#include <upcie/pi.h>

#include "dma/heap.h" /* white box: a registered region's bus table */
#include "fixture.h"
#include "nvme/queue.h" /* white box: the SQE a call built */

#define PG 4096u

static struct fx F;
static struct upcie_nvme_qpair *QP;

/* A registered buffer of n pages whose bus addresses jump at page cut (n
 * odd: registration then describes it in 4 KiB pages). */
struct split_mem {
	uint8_t *a;    /* n pages, contiguous for the host */
	uint8_t *resv; /* reservation holding the second mapping, guarded */
	uint8_t *b;    /* pages cut..n again */
	size_t n, cut;
	int fd;
};

static struct upcie_dma_region *region_of(const void *va)
{
	struct upcie_dma_reg_table *t = F.heap->regs;

	for (size_t i = 0; t && i < t->n; i++)
		if (t->r[i]->va == (uintptr_t)va)
			return t->r[i];
	return NULL;
}

static void split_mem_make(struct split_mem *m, size_t n, size_t cut)
{
	struct upcie_dma_region *r;

	memset(m, 0, sizeof(*m));
	m->n = n;
	m->cut = cut;
	m->fd = memfd_create("md-sgl", 0);
	CU_ASSERT_FATAL(m->fd >= 0);
	CU_ASSERT_FATAL(ftruncate(m->fd, (off_t)(n * PG)) == 0);
	m->a = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	m->resv = mmap(NULL, (n - cut + 2) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(m->a != MAP_FAILED && m->resv != MAP_FAILED);
	m->b = mmap(m->resv + PG, (n - cut) * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		    m->fd, (off_t)(cut * PG));
	CU_ASSERT_FATAL(m->b != MAP_FAILED);
	CU_ASSERT_FATAL(upcie_dma_register(F.heap, m->a, n * PG) == 0);
	CU_ASSERT_FATAL(upcie_dma_register(F.heap, m->b, (n - cut) * PG) == 0);
	r = region_of(m->a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(r->page_size, PG);
	for (size_t i = cut; i < n; i++)
		r->bus[i] = (uintptr_t)(m->b + (i - cut) * PG);
	CU_ASSERT_EQUAL(upcie_dma_bus(F.heap, m->a + cut * PG), (uintptr_t)m->b);
}

static void split_mem_free(struct split_mem *m)
{
	struct upcie_dma_region *r = region_of(m->a);

	for (size_t i = m->cut; r && i < m->n; i++)
		r->bus[i] = (uintptr_t)(m->a + i * PG); /* as it was mapped */
	CU_ASSERT_EQUAL(upcie_dma_unregister(F.heap, m->b, (m->n - m->cut) * PG), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(F.heap, m->a, m->n * PG), 0);
	munmap(m->resv, (m->n - m->cut + 2) * PG);
	munmap(m->a, m->n * PG);
	close(m->fd);
}

/* nsid 1: 512 + 8 separate, no PI; 2: 512 + 8 separate, PI type 1 last;
 * 3: 512 + 8 separate, PI type 3 first; 4: 512 + 16 separate, PI type 2
 * with the 64-bit guard. */
static void open_sgl(bool md_sgl)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	cfg.nr_ns = 4;
	cfg.ns[0] = (struct upcie_sim_ns_config){.lba_size = 512, .nlbas = 8192, .ms = 8};
	cfg.ns[1] = (struct upcie_sim_ns_config){.lba_size = 512, .nlbas = 8192, .ms = 8, .pi = 1};
	cfg.ns[2] = (struct upcie_sim_ns_config){
	    .lba_size = 512, .nlbas = 8192, .ms = 8, .pi = 3, .md_flags = UPCIE_SIM_MD_PI_FIRST};
	cfg.ns[3] = (struct upcie_sim_ns_config){
	    .lba_size = 512, .nlbas = 8192, .ms = 16, .pi = 2, .md_flags = UPCIE_SIM_MD_GUARD64};
	CU_ASSERT_FATAL(fx_open_opts(&F, &cfg, 16u << 20, true, NULL) == 0);
	CU_ASSERT_EQUAL(upcie_sim_set_md_sgl(F.sim, md_sgl), 0);
	F.ctrl = upcie_nvme_ctrl_open(F.dev, F.heap, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(F.ctrl);
	QP = upcie_nvme_qpair_create(F.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(QP);
}

static void close_sgl(void)
{
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(QP), 0);
	QP = NULL;
	fx_close(&F);
}

static struct upcie_nvme_io_opts opts(uint32_t flags, void *md, uint32_t ref)
{
	return (struct upcie_nvme_io_opts){.opts_size = sizeof(struct upcie_nvme_io_opts),
					   .flags = flags,
					   .md = md,
					   .reftag = ref,
					   .apptag = 0x1234,
					   .apptag_mask = 0xffff};
}

/* The flags byte of the SQE submitted last. */
static uint8_t last_psdt(void)
{
	return QP->sq[(QP->sq_tail + QP->depth - 1u) % QP->depth].flags & 0xc0;
}

/* Write nlb blocks at lba from data and md, read them back into rdata and
 * rmd, compare; PI generated and checked when the namespace has it. */
static void round_trip(uint32_t nsid, uint64_t lba, uint32_t nlb, uint8_t *data, uint8_t *md,
		       uint8_t *rdata, uint8_t *rmd, uint8_t psdt)
{
	const struct upcie_nvme_ns *ns = fx_ns(&F, nsid);
	uint32_t chk = ns->pi_type ? upcie_nvme_ns_prchk(ns) : 0, bad = 0;
	struct fx_counter c = {0};
	struct upcie_nvme_io_opts o = opts(chk, md, (uint32_t)lba);
	size_t dl = (size_t)nlb * 512, ml = upcie_nvme_ns_md_len(ns, nlb, 0);

	fx_fill(data, dl, nsid + (unsigned)lba);
	fx_fill(md, ml, nsid * 3 + 1);
	if (ns->pi_type)
		CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, data, md, nlb, &o), 0);
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, lba, nlb, data, &o, NULL, 5000), 0);
	CU_ASSERT_EQUAL(last_psdt(), psdt);
	memset(rdata, 0, dl);
	memset(rmd, 0, ml);
	o.md = rmd;
	CU_ASSERT_EQUAL(upcie_nvme_read_ext(QP, ns, lba, nlb, rdata, &o, fx_count_cb, &c,
					    UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(last_psdt(), psdt);
	CU_ASSERT_EQUAL(fx_wait(&F, QP, &c.done, 1), 0);
	CU_ASSERT_EQUAL(c.errors, 0);
	CU_ASSERT_EQUAL(memcmp(rdata, data, dl), 0);
	CU_ASSERT_EQUAL(memcmp(rmd, md, ml), 0);
	if (ns->pi_type)
		CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, rdata, rmd, nlb, &o, &bad), 0);
}

/* Data and metadata across bus discontinuities, each namespace, PI or not. */
static void test_round_trip(void)
{
	struct split_mem md, rmd, data;
	uint8_t *buf, *rbuf;

	FX_SIM_ONLY();
	open_sgl(true);
	CU_ASSERT_TRUE(upcie_nvme_ctrl_md_sgl(F.ctrl));
	CU_ASSERT_TRUE(upcie_nvme_ctrl_id(F.ctrl)->sgls & UPCIE_NVME_SGLS_MPTR_SGL);
	split_mem_make(&md, 5, 1);
	split_mem_make(&rmd, 5, 2);
	split_mem_make(&data, 17, 9);
	buf = upcie_dma_alloc(F.heap, 64 * 1024, 4096);
	rbuf = upcie_dma_alloc(F.heap, 64 * 1024, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf && rbuf);
	for (uint32_t nsid = 1; nsid <= 4; nsid++) {
		/* Metadata in two runs (one Last Segment list), data in the heap. */
		round_trip(nsid, 100, 64, buf, md.a + PG - 200, rbuf, rmd.a + 2 * PG - 100, 0x80);
		/* Data in pieces too: both SGLs are lists. */
		round_trip(nsid, 300, 40, data.a + 9 * PG - 4096 - 512, md.a + PG - 64, rbuf,
			   rmd.a + 2 * PG - 8, 0x80);
		/* Contiguous metadata: MPTR one address, the data through PRPs. */
		round_trip(nsid, 500, 16, buf, md.a + 2 * PG, rbuf, rmd.a, 0x00);
	}
	upcie_dma_free(F.heap, buf);
	upcie_dma_free(F.heap, rbuf);
	split_mem_free(&md);
	split_mem_free(&rmd);
	split_mem_free(&data);
	close_sgl();
}

/* A bad guard in metadata that crosses the cut fails the write as a
 * contiguous one would; the block is not stored. */
static void test_guard_error(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_io_result res;
	struct split_mem md;
	uint8_t *buf, *m;

	FX_SIM_ONLY();
	open_sgl(true);
	ns = fx_ns(&F, 2);
	split_mem_make(&md, 3, 1);
	buf = upcie_dma_alloc(F.heap, 8 * 512, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	m = md.a + PG - 24; /* blocks 0-2 before the cut, 3-7 after */
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, m, 40);
	fx_fill(buf, 8 * 512, 5);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, buf, m, 8, &o), 0);
	m[5 * 8 + 1] ^= 1; /* block 5's guard, past the cut */
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, ns, 40, 8, buf, &o, &res, 5000), -EIO);
	CU_ASSERT_EQUAL(res.status, UPCIE_NVME_SC_GUARD_CHECK);
	CU_ASSERT_TRUE(res.lba_valid);
	CU_ASSERT_EQUAL(res.lba, 45);
	CU_ASSERT_EQUAL(last_psdt(), 0x80);
	upcie_dma_free(F.heap, buf);
	split_mem_free(&md);
	close_sgl();
}

/* Above MDTS: each part's metadata follows its first block, and parts whose
 * metadata crosses the cut take their own metadata SGL. */
static void test_split(void)
{
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_split sp;
	struct upcie_nvme_io_opts o;
	struct fx_counter c = {0};
	struct split_mem md, rmd;
	uint32_t nlb = 700, bad = 0;
	uint8_t *buf, *rbuf, *m, *rm;

	FX_SIM_ONLY();
	open_sgl(true);
	ns = fx_ns(&F, 2);
	CU_ASSERT(nlb > 2 * ns->md_max_xfer_blocks); /* three parts */
	split_mem_make(&md, 5, 1);
	split_mem_make(&rmd, 5, 2);
	buf = upcie_dma_alloc(F.heap, nlb * 512, 4096);
	rbuf = upcie_dma_alloc(F.heap, nlb * 512, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf && rbuf);
	m = md.a + PG - 1000;
	rm = rmd.a + 2 * PG - 3000;
	fx_fill(buf, nlb * 512, 9);
	o = opts(UPCIE_NVME_RW_PRCHK_ALL, m, 1000);
	CU_ASSERT_EQUAL(upcie_nvme_pi_generate(ns, buf, m, nlb, &o), 0);
	CU_ASSERT_EQUAL(upcie_nvme_write_ext_split(QP, ns, 1000, nlb, buf, &o, &sp, fx_count_cb, &c,
						   UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&F, QP, &c.done, 1), 0);
	CU_ASSERT_EQUAL(c.errors, 0);
	o.md = rm;
	CU_ASSERT_EQUAL(upcie_nvme_read_ext_split(QP, ns, 1000, nlb, rbuf, &o, &sp, fx_count_cb, &c,
						  UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&F, QP, &c.done, 2), 0);
	CU_ASSERT_EQUAL(c.errors, 0);
	CU_ASSERT_EQUAL(memcmp(rbuf, buf, nlb * 512), 0);
	CU_ASSERT_EQUAL(memcmp(rm, m, nlb * 8), 0);
	CU_ASSERT_EQUAL(upcie_nvme_pi_verify(ns, rbuf, rm, nlb, &o, &bad), 0);
	upcie_dma_free(F.heap, buf);
	upcie_dma_free(F.heap, rbuf);
	split_mem_free(&md);
	split_mem_free(&rmd);
	close_sgl();
}

/* Without SGLS bit 19: refused, the message naming the bit; a contiguous
 * buffer still goes; the model refuses PSDT 10b with Invalid Field. */
static void test_refused(void)
{
	struct upcie_nvme_io_opts o;
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_READ, .nsid = 1, .flags = 0x80};
	struct upcie_nvme_cqe cqe = {0};
	struct split_mem md;
	uint8_t *buf;

	FX_SIM_ONLY();
	open_sgl(false);
	CU_ASSERT_FALSE(upcie_nvme_ctrl_md_sgl(F.ctrl));
	split_mem_make(&md, 3, 1);
	buf = upcie_dma_alloc(F.heap, 8 * 512, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	o = opts(0, md.a + PG - 16, 0);
	CU_ASSERT_EQUAL(upcie_nvme_write_ext(QP, fx_ns(&F, 1), 0, 8, buf, &o, NULL, NULL, 0),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "SGLS bit 19"));
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "upcie_dma_alloc"));
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(QP), 0);
	o.md = md.a;
	CU_ASSERT_EQUAL(
	    upcie_nvme_io_sync(QP, UPCIE_NVME_CMD_WRITE, fx_ns(&F, 1), 0, 8, buf, &o, NULL, 5000),
	    0);
	/* PSDT 10b by hand: the model does not offer it. */
	sqe.prp1 = (uintptr_t)buf;
	sqe.prp2 = 8 * 512; /* SGL1: a Data Block of 4 KiB */
	sqe.mptr = (uintptr_t)md.a;
	sqe.cdw12 = 7;
	CU_ASSERT_EQUAL(upcie_nvme_raw_sync(QP, &sqe, NULL, 0, &cqe, 5000), -EIO);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_FIELD);
	upcie_dma_free(F.heap, buf);
	split_mem_free(&md);
	close_sgl();
}

/* ---- the model's checks of a metadata SGL ---- */

struct desc {
	uint64_t addr;
	uint32_t len;
	uint8_t rsvd[3];
	uint8_t type;
};

/* A Write of 8 blocks to nsid 1 at LBA 0 with PSDT 10b and mptr; the status. */
static uint16_t raw_write(uint8_t *buf, uint64_t mptr)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_CMD_WRITE, .nsid = 1, .flags = 0x80, .mptr = mptr, .cdw12 = 7};
	struct desc d = {.addr = (uintptr_t)buf, .len = 8 * 512, .type = 0};
	struct upcie_nvme_cqe cqe = {0};

	memcpy(&sqe.prp1, &d, sizeof(d));
	(void)upcie_nvme_raw_sync(QP, &sqe, NULL, 0, &cqe, 5000);
	return upcie_nvme_cqe_status(&cqe);
}

static void test_sim_rejects(void)
{
	struct desc *d, *list;
	uint8_t *buf, *md, *ns_md;
	uint32_t stride = 0;

	FX_SIM_ONLY();
	open_sgl(true);
	buf = upcie_dma_alloc(F.heap, 8 * 512, 4096);
	md = upcie_dma_alloc(F.heap, 4096, 4096);
	d = upcie_dma_alloc(F.heap, 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf && md && d);
	list = d + 4;
	fx_fill(buf, 8 * 512, 1);
	fx_fill(md, 64, 2);
	ns_md = upcie_sim_ns_md(F.sim, 1, &stride);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns_md);

	/* Good: one Data Block; then a Last Segment of two. */
	d[0] = (struct desc){.addr = (uintptr_t)md, .len = 64};
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), 0);
	CU_ASSERT_EQUAL(memcmp(ns_md, md, 8), 0);
	list[0] = (struct desc){.addr = (uintptr_t)md + 512, .len = 24};
	list[1] = (struct desc){.addr = (uintptr_t)md + 1024, .len = 40};
	d[0] = (struct desc){.addr = (uintptr_t)list, .len = 32, .type = 0x30};
	fx_fill(md + 512, 24, 3);
	fx_fill(md + 1024, 40, 4);
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), 0);
	CU_ASSERT_EQUAL(memcmp(ns_md, md + 512, 8), 0);
	CU_ASSERT_EQUAL(memcmp(ns_md + 3 * stride, md + 1024, 8), 0);

	/* Bad: nothing reaches the namespace. */
	memset(md, 0xee, 64);
	d[0] = (struct desc){.addr = (uintptr_t)md, .len = 56};
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_SGL_MD_LEN_INVALID);
	d[0].len = 72;
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_SGL_MD_LEN_INVALID);
	list[1].len = 32; /* the list sums to 56 */
	d[0] = (struct desc){.addr = (uintptr_t)list, .len = 32, .type = 0x30};
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_SGL_MD_LEN_INVALID);
	list[1] = (struct desc){.addr = (uintptr_t)md, .len = 40, .type = 0x10}; /* bit bucket */
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
	list[1] = (struct desc){.addr = (uintptr_t)md, .len = 40, .type = 0x30}; /* in a Last */
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID);
	d[0] = (struct desc){.addr = (uintptr_t)list, .len = 20, .type = 0x30};
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_SGL_SEG_DESC_INVALID);
	d[0] = (struct desc){.addr = (uintptr_t)md + 2, .len = 64}; /* not dword aligned */
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_INVALID_FIELD);
	d[0] = (struct desc){.addr = (uintptr_t)md, .len = 64};
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d + 4), UPCIE_NVME_SC_INVALID_FIELD); /* MPTR */
	CU_ASSERT_EQUAL(raw_write(buf, 0x1000), UPCIE_NVME_SC_DATA_XFER_ERROR); /* not guest's */
	d[0] = (struct desc){.addr = 0x1000, .len = 64};
	CU_ASSERT_EQUAL(raw_write(buf, (uintptr_t)d), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_NOT_EQUAL(ns_md[0], 0xee);
	CU_ASSERT_NOT_EQUAL(ns_md[3 * stride], 0xee);

	upcie_dma_free(F.heap, buf);
	upcie_dma_free(F.heap, md);
	upcie_dma_free(F.heap, d);
	close_sgl();
}

static CU_TestInfo tests[] = {
    {"data and metadata across bus discontinuities, with and without PI", test_round_trip},
    {"a bad guard in metadata in pieces names its LBA", test_guard_error},
    {"split above MDTS with metadata in pieces", test_split},
    {"refused without SGLS bit 19", test_refused},
    {"the sim checks metadata SGLs", test_sim_rejects},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("nvme_md_sgl", NULL, NULL, tests)
