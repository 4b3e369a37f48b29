/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller, driven directly through its BAR: the tests
 * write registers, SQEs and doorbells the way a driver does, step the model,
 * and read CQEs. Deterministic: only one test runs the model's own thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <upcie/log.h>
#include <upcie/nvme_spec.h>
#include <upcie/pci.h>
#include <upcie/sim.h>

#include "cu.h"

#define MEM_LEN (8u << 20)
#define PS	4096u
#define NO_CQE	0xffff
#define ST(x)	((uint16_t)(x))

struct tq {
	uint16_t qid;
	uint32_t size;
	struct upcie_nvme_sqe *sq;
	struct upcie_nvme_cqe *cq;
	uint32_t tail, head;
	int phase;
};

static struct {
	struct upcie_sim *sim;
	struct upcie_pci_dev *dev;
	uint8_t *bar;
	size_t bar_len;
	uint8_t *mem;
	size_t used;
	uint64_t *bus;
	uint32_t dstrd;
	uint64_t *prp_list; /* two pages for PRP lists */
	struct tq aq;
} T;

/* Memory the model was never told about (PROT_NONE). */
static uint8_t *outside;

/* ---- harness ---------------------------------------------------------- */

static uint32_t reg_r(uint32_t off)
{
	return upcie_mmio_read32(T.bar, off);
}

static void reg_w(uint32_t off, uint32_t v)
{
	upcie_mmio_write32(T.bar, off, v);
}

static void *t_alloc(size_t len)
{
	void *p;

	len = (len + PS - 1) & ~(size_t)(PS - 1);
	if (T.used + len > MEM_LEN)
		return NULL;
	p = T.mem + T.used;
	T.used += len;
	memset(p, 0, len);
	return p;
}

static int t_open(const struct upcie_sim_config *cfg)
{
	struct upcie_pci_opts o = {0};

	memset(&T, 0, sizeof(T));
	T.sim = upcie_sim_create(cfg);
	if (!T.sim)
		return -1;
	o.sim = T.sim;
	T.dev = upcie_pci_open("sim", &o);
	if (!T.dev)
		return -1;
	if (upcie_pci_bar_map(T.dev, 0, (void **)&T.bar, &T.bar_len))
		return -1;
	T.mem = aligned_alloc(PS, MEM_LEN);
	T.bus = calloc(MEM_LEN / PS, sizeof(uint64_t));
	if (!T.mem || !T.bus)
		return -1;
	if (upcie_pci_dma_map(T.dev, T.mem, MEM_LEN, PS, T.bus))
		return -1;
	T.dstrd = cfg->dstrd;
	T.prp_list = t_alloc(2 * PS);
	return 0;
}

static int t_open_default(void)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	return t_open(&cfg);
}

static void t_close(void)
{
	if (T.dev && T.mem)
		upcie_pci_dma_unmap(T.dev, T.mem, MEM_LEN, PS, T.bus);
	upcie_pci_close(T.dev);
	upcie_sim_destroy(T.sim);
	free(T.mem);
	free(T.bus);
	memset(&T, 0, sizeof(T));
}

static uint32_t cc_val(uint32_t en)
{
	return en | (6u << UPCIE_NVME_CC_IOSQES_SHIFT) | (4u << UPCIE_NVME_CC_IOCQES_SHIFT);
}

/* Program the admin queue and enable; returns CSTS after one step. */
static uint32_t t_enable_with(uint32_t cc, uint32_t entries)
{
	T.aq = (struct tq){.qid = 0, .size = entries, .phase = 1};
	T.aq.sq = t_alloc(entries * 64);
	T.aq.cq = t_alloc(entries * 16);
	reg_w(UPCIE_NVME_REG_AQA, upcie_nvme_aqa(entries, entries));
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ASQ, (uintptr_t)T.aq.sq);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ACQ, (uintptr_t)T.aq.cq);
	reg_w(UPCIE_NVME_REG_CC, cc);
	upcie_sim_step(T.sim);
	return reg_r(UPCIE_NVME_REG_CSTS);
}

static uint32_t t_enable(void)
{
	return t_enable_with(cc_val(1), 32);
}

static void q_submit(struct tq *q, const struct upcie_nvme_sqe *sqe)
{
	q->sq[q->tail] = *sqe;
	q->tail = (q->tail + 1) % q->size;
	__atomic_thread_fence(__ATOMIC_RELEASE); /* SQE before the doorbell */
	reg_w(upcie_nvme_sq_db_off(q->qid, T.dstrd), q->tail);
}

/* Take one CQE if there is one; the head doorbell is written when ring is true. */
static int q_take(struct tq *q, struct upcie_nvme_cqe *out, bool ring)
{
	struct upcie_nvme_cqe *c = &q->cq[q->head];

	if ((__atomic_load_n(&c->status, __ATOMIC_ACQUIRE) & 1) != q->phase)
		return 0;
	*out = *c;
	if (++q->head == q->size) {
		q->head = 0;
		q->phase ^= 1;
	}
	if (ring)
		reg_w(upcie_nvme_cq_db_off(q->qid, T.dstrd), q->head);
	return 1;
}

static uint16_t q_cmd(struct tq *q, const struct upcie_nvme_sqe *sqe, struct upcie_nvme_cqe *out)
{
	struct upcie_nvme_cqe tmp;

	if (!out)
		out = &tmp;
	q_submit(q, sqe);
	upcie_sim_step(T.sim);
	if (!q_take(q, out, true))
		return NO_CQE;
	CU_ASSERT_EQUAL(out->cid, sqe->cid);
	CU_ASSERT_EQUAL(out->sqid, q->qid);
	CU_ASSERT_EQUAL(out->sqhd, q->tail);
	return upcie_nvme_cqe_status(out);
}

static uint16_t admin(const struct upcie_nvme_sqe *sqe, struct upcie_nvme_cqe *out)
{
	return q_cmd(&T.aq, sqe, out);
}

static uint16_t create_cq(uint16_t qid, uint32_t size, void *mem, uint32_t flags)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_CREATE_CQ, .cid = 0x100 + qid};

	s.prp1 = (uintptr_t)mem;
	s.cdw10 = ((size - 1) << 16) | qid;
	s.cdw11 = flags;
	return admin(&s, NULL);
}

static uint16_t create_sq(uint16_t qid, uint32_t size, void *mem, uint16_t cqid, uint32_t flags)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_CREATE_SQ, .cid = 0x200 + qid};

	s.prp1 = (uintptr_t)mem;
	s.cdw10 = ((size - 1) << 16) | qid;
	s.cdw11 = ((uint32_t)cqid << 16) | flags;
	return admin(&s, NULL);
}

static uint16_t delete_q(uint8_t opc, uint16_t qid)
{
	struct upcie_nvme_sqe s = {.opc = opc, .cid = 0x300 + qid, .cdw10 = qid};

	return admin(&s, NULL);
}

/* An I/O queue pair with the same id for SQ and CQ. */
static int qpair(struct tq *q, uint16_t qid, uint32_t sq_size, uint32_t cq_size)
{
	*q = (struct tq){.qid = qid, .size = sq_size, .phase = 1};
	q->sq = t_alloc(sq_size * 64);
	q->cq = t_alloc(cq_size * 16);
	if (create_cq(qid, cq_size, q->cq, UPCIE_NVME_QUEUE_PC))
		return -1;
	if (create_sq(qid, sq_size, q->sq, qid, UPCIE_NVME_QUEUE_PC))
		return -1;
	return 0;
}

/* The CQ side of a qpair whose CQ is smaller than its SQ. */
static struct tq cq_view(const struct tq *q, uint32_t cq_size)
{
	struct tq c = *q;

	c.size = cq_size;
	return c;
}

/* Fill PRP1/PRP2 for buf (a list in T.prp_list when more than two pages). */
static void set_prps(struct upcie_nvme_sqe *s, void *buf, size_t len)
{
	uintptr_t a = (uintptr_t)buf;
	size_t first = PS - (a & (PS - 1));

	s->prp1 = a;
	s->prp2 = 0;
	if (len <= first)
		return;
	if (len - first <= PS) {
		s->prp2 = a + first;
		return;
	}
	size_t n = 0;
	for (size_t off = first; off < len; off += PS)
		T.prp_list[n++] = a + off;
	s->prp2 = (uintptr_t)T.prp_list;
}

static void rw_sqe(struct upcie_nvme_sqe *s, uint8_t opc, uint32_t nsid, uint64_t slba,
		   uint32_t nlb, uint16_t cid)
{
	memset(s, 0, sizeof(*s));
	s->opc = opc;
	s->cid = cid;
	s->nsid = nsid;
	s->cdw10 = (uint32_t)slba;
	s->cdw11 = (uint32_t)(slba >> 32);
	s->cdw12 = nlb - 1;
}

static uint16_t io(struct tq *q, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb, void *buf,
		   size_t len)
{
	struct upcie_nvme_sqe s;

	rw_sqe(&s, opc, nsid, slba, nlb, 7);
	set_prps(&s, buf, len);
	return q_cmd(q, &s, NULL);
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static struct upcie_sim_stats stats(void)
{
	struct upcie_sim_stats st;

	upcie_sim_stats(T.sim, &st);
	return st;
}

/* ---- configuration ----------------------------------------------------- */

static void expect_bad(struct upcie_sim_config *cfg, const char *field)
{
	struct upcie_sim *s;

	errno = 0;
	s = upcie_sim_create(cfg);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(errno, EINVAL);
	if (!strstr(upcie_errmsg(), field)) {
		printf("\n  message for %s: '%s'\n", field, upcie_errmsg());
		CU_FAIL("message does not name the field");
	}
	upcie_sim_destroy(s);
	upcie_sim_config_default(cfg);
}

static void test_config(void)
{
	struct upcie_sim_config cfg;
	struct upcie_sim *s;
	size_t len;

	upcie_sim_config_default(&cfg);
	CU_ASSERT_EQUAL(cfg.mqes, 1023);
	CU_ASSERT_EQUAL(cfg.mdts, 5);
	CU_ASSERT_EQUAL(cfg.nr_ns, 2);
	CU_ASSERT_EQUAL(cfg.ns[1].lba_size, 4096);
	s = upcie_sim_create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL(upcie_sim_ns_data(s, 1, &len));
	CU_ASSERT_EQUAL(len, 512u * 131072);
	CU_ASSERT_PTR_NOT_NULL(upcie_sim_ns_data(s, 2, &len));
	CU_ASSERT_EQUAL(len, 4096u * 16384);
	CU_ASSERT_PTR_NULL(upcie_sim_ns_data(s, 3, &len));
	CU_ASSERT_PTR_NULL(upcie_sim_ns_data(s, 0, &len));
	upcie_sim_destroy(s);

	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_sim_create(NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	cfg.mqes = 0;
	expect_bad(&cfg, "mqes");
	cfg.dstrd = 16;
	expect_bad(&cfg, "dstrd");
	cfg.to = 0;
	expect_bad(&cfg, "to");
	cfg.mdts = 16;
	expect_bad(&cfg, "mdts");
	cfg.max_ioqpairs = 0;
	expect_bad(&cfg, "max_ioqpairs");
	cfg.max_ioqpairs = 65535;
	cfg.dstrd = 12;
	expect_bad(&cfg, "max_ioqpairs");
	cfg.nr_ns = 0;
	expect_bad(&cfg, "nr_ns");
	cfg.nr_ns = UPCIE_SIM_MAX_NS + 1;
	expect_bad(&cfg, "nr_ns");
	cfg.ns[1].lba_size = 1000;
	expect_bad(&cfg, "ns[1].lba_size");
	cfg.ns[0].lba_size = 256;
	expect_bad(&cfg, "ns[0].lba_size");
	cfg.ns[0].lba_size = 131072;
	expect_bad(&cfg, "ns[0].lba_size");
	cfg.ns[1].nlbas = 0;
	expect_bad(&cfg, "ns[1].nlbas");
	cfg.ns[0].nlbas = 1ull << 40;
	expect_bad(&cfg, "ns[0].nlbas");
	memset(cfg.serial, 'x', sizeof(cfg.serial));
	expect_bad(&cfg, "serial");
	memset(cfg.model, 'x', sizeof(cfg.model));
	expect_bad(&cfg, "model");

	/* The extremes that are valid. */
	cfg.nr_ns = UPCIE_SIM_MAX_NS;
	for (int i = 0; i < UPCIE_SIM_MAX_NS; i++)
		cfg.ns[i] = (struct upcie_sim_ns_config){.lba_size = 65536, .nlbas = 2};
	cfg.mqes = 1;
	cfg.mdts = 0;
	cfg.dstrd = 15;
	cfg.max_ioqpairs = 1;
	s = upcie_sim_create(&cfg);
	CU_ASSERT_PTR_NOT_NULL(s);
	upcie_sim_destroy(s);
}

/* ---- registers, config space and the state machine ---------------------- */

static void test_registers(void)
{
	uint64_t cap;
	uint16_t v16;
	uint32_t v32;
	void *va;

	CU_ASSERT_FATAL(t_open_default() == 0);
	cap = upcie_mmio_read64(T.bar, UPCIE_NVME_REG_CAP);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mqes(cap), 1023);
	CU_ASSERT_EQUAL(upcie_nvme_cap_cqr(cap), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cap_to(cap), 2);
	CU_ASSERT_EQUAL(upcie_nvme_cap_dstrd(cap), 0);
	CU_ASSERT_EQUAL(upcie_nvme_cap_css(cap) & UPCIE_NVME_CAP_CSS_NVM, UPCIE_NVME_CAP_CSS_NVM);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mpsmin(cap), 0);
	CU_ASSERT(upcie_nvme_cap_mpsmax(cap) >= 4);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_VS), 0x00010400);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	CU_ASSERT(T.bar_len >= 16384 && T.bar_len % 4096 == 0);
	CU_ASSERT(((uintptr_t)T.bar & 4095) == 0);
	CU_ASSERT_EQUAL(upcie_pci_bar_map(T.dev, 1, &va, NULL), -EINVAL);
	CU_ASSERT_PTR_EQUAL(upcie_pci_sim(T.dev), T.sim);
	CU_ASSERT_EQUAL(upcie_pci_dma_caps(T.dev), UPCIE_PCI_DMA_BUS_CONTIGUOUS);
	CU_ASSERT_EQUAL(T.bus[1], (uintptr_t)T.mem + PS);

	/* A read-only register keeps its value. */
	reg_w(UPCIE_NVME_REG_VS, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_VS), 0x00010400);

	/* Config space. */
	CU_ASSERT_EQUAL(upcie_pci_cfg_read(T.dev, 0x08, &v32, 4), 0);
	CU_ASSERT_EQUAL(v32 >> 8, 0x010802);
	CU_ASSERT_EQUAL(upcie_pci_cfg_read(T.dev, 0x00, &v16, 2), 0);
	CU_ASSERT(v16 != 0xffff && v16 != 0);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, true), 0);
	upcie_pci_cfg_read(T.dev, 0x04, &v16, 2);
	CU_ASSERT(v16 & 0x4);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, false), 0);
	upcie_pci_cfg_read(T.dev, 0x04, &v16, 2);
	CU_ASSERT_FALSE(v16 & 0x4);
	/* BAR0 sizing: write all-ones, read back the size mask. */
	v32 = 0xffffffff;
	upcie_pci_cfg_write(T.dev, 0x10, &v32, 4);
	upcie_pci_cfg_read(T.dev, 0x10, &v32, 4);
	CU_ASSERT_EQUAL(~(v32 & 0xfffffff0u) + 1, T.bar_len);
	CU_ASSERT_EQUAL(v32 & 0x6, 0x4); /* 64-bit memory BAR */
	/* Read-only fields ignore writes. */
	v16 = 0x1234;
	upcie_pci_cfg_write(T.dev, 0x00, &v16, 2);
	upcie_pci_cfg_read(T.dev, 0x00, &v32, 2);
	CU_ASSERT(v16 != (uint16_t)v32);
	t_close();
}

static void state_machine(uint8_t dstrd)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_IDENTIFY, .cid = 1, .cdw10 = 1};
	struct tq q;
	uint8_t *buf;

	upcie_sim_config_default(&cfg);
	cfg.dstrd = dstrd;
	CU_ASSERT_FATAL(t_open(&cfg) == 0);
	CU_ASSERT_EQUAL(upcie_nvme_cap_dstrd(upcie_mmio_read64(T.bar, 0)), dstrd);
	CU_ASSERT(T.bar_len >= upcie_nvme_cq_db_off(16, dstrd) + 4);
	CU_ASSERT_EQUAL(t_enable() & UPCIE_NVME_CSTS_RDY, UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(stats().enables, 1);
	buf = t_alloc(PS);
	s.prp1 = (uintptr_t)buf;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 1, 0, 1, buf, 512), 0);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 4); /* identify, create cq, create sq, write */

	/* Disable: a reset drops the queues and clears RDY. */
	reg_w(UPCIE_NVME_REG_CC, cc_val(0));
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	CU_ASSERT_EQUAL(reg_r(upcie_nvme_sq_db_off(0, dstrd)), 0);
	CU_ASSERT_EQUAL(reg_r(upcie_nvme_sq_db_off(1, dstrd)), 0);
	CU_ASSERT_EQUAL(t_enable() & UPCIE_NVME_CSTS_RDY, UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(stats().enables, 2);
	/* Queue 1 is gone: it can be created again. */
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);

	/* Shutdown. */
	reg_w(UPCIE_NVME_REG_CC, cc_val(1) | UPCIE_NVME_CC_SHN_NORMAL);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(reg_r(UPCIE_NVME_REG_CSTS)), 2);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().shutdowns, 1);
	reg_w(UPCIE_NVME_REG_CC, cc_val(1));
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(reg_r(UPCIE_NVME_REG_CSTS)), 0);
	reg_w(UPCIE_NVME_REG_CC, cc_val(1) | UPCIE_NVME_CC_SHN_ABRUPT);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(reg_r(UPCIE_NVME_REG_CSTS)), 2);
	CU_ASSERT_EQUAL(stats().shutdowns, 2);
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	t_close();
}

static void test_state_dstrd0(void)
{
	state_machine(0);
}

static void test_state_dstrd2(void)
{
	state_machine(2);
}

static void test_enable_invalid(void)
{
	uint32_t csts;

	/* Wrong I/O queue entry sizes. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	csts = t_enable_with(1, 32);
	CU_ASSERT_EQUAL(csts & (UPCIE_NVME_CSTS_RDY | UPCIE_NVME_CSTS_CFS), UPCIE_NVME_CSTS_CFS);
	/* A reset clears CFS; a good configuration then works. */
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	t_close();

	/* MPS above MPSMAX. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	csts = t_enable_with(cc_val(1) | (5u << UPCIE_NVME_CC_MPS_SHIFT), 32);
	CU_ASSERT_EQUAL(csts, UPCIE_NVME_CSTS_CFS);
	t_close();

	/* Command set other than NVM. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	csts = t_enable_with(cc_val(1) | (7u << UPCIE_NVME_CC_CSS_SHIFT), 32);
	CU_ASSERT_EQUAL(csts, UPCIE_NVME_CSTS_CFS);
	t_close();

	/* A one-entry admin queue. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	csts = t_enable_with(cc_val(1), 1);
	CU_ASSERT_EQUAL(csts, UPCIE_NVME_CSTS_CFS);
	t_close();

	/* ASQ not page aligned. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	t_enable_with(0, 32);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ASQ, (uintptr_t)T.aq.sq + 64);
	reg_w(UPCIE_NVME_REG_CC, cc_val(1));
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), UPCIE_NVME_CSTS_CFS);
	t_close();

	/* ACQ outside registered memory. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	t_enable_with(0, 32);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ACQ, (uintptr_t)outside);
	reg_w(UPCIE_NVME_REG_CC, cc_val(1));
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), UPCIE_NVME_CSTS_CFS);
	CU_ASSERT_EQUAL(stats().xfer_errors, 1);
	t_close();
}

/* ---- admin commands ----------------------------------------------------- */

static void test_identify(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_IDENTIFY, .cid = 9};
	struct upcie_nvme_id_ctrl *ctrl;
	struct upcie_nvme_id_ns *ns;
	uint32_t *list;
	uint8_t *buf;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	buf = t_alloc(2 * PS);
	ctrl = (void *)buf;
	s.prp1 = (uintptr_t)buf;
	s.cdw10 = UPCIE_NVME_CNS_CTRL;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT(ctrl->vid != 0 && ctrl->vid != 0xffff);
	CU_ASSERT_EQUAL(memcmp(ctrl->sn, "UPCIESIM0001        ", 20), 0);
	CU_ASSERT_EQUAL(ctrl->mn[39], ' ');
	CU_ASSERT(ctrl->fr[0] != 0);
	CU_ASSERT_EQUAL(ctrl->mdts, 5);
	CU_ASSERT_EQUAL(ctrl->ver, 0x00010400);
	CU_ASSERT(ctrl->oacs & UPCIE_NVME_OACS_DBBUF);
	CU_ASSERT_EQUAL(ctrl->sqes, 0x66);
	CU_ASSERT_EQUAL(ctrl->cqes, 0x44);
	CU_ASSERT_EQUAL(ctrl->nn, 2);
	CU_ASSERT_EQUAL(ctrl->oncs & (UPCIE_NVME_ONCS_WRITE_ZEROES | UPCIE_NVME_ONCS_DSM),
			UPCIE_NVME_ONCS_WRITE_ZEROES | UPCIE_NVME_ONCS_DSM);
	CU_ASSERT_EQUAL(ctrl->vwc & 1, 1);
	CU_ASSERT(ctrl->elpe >= 1);

	/* With an offset into the page: the data spans PRP1 and PRP2. */
	memset(buf, 0xaa, 2 * PS);
	s.prp1 = (uintptr_t)buf + 1024;
	s.prp2 = (uintptr_t)buf + PS;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(((struct upcie_nvme_id_ctrl *)(buf + 1024))->nn, 2);
	CU_ASSERT_EQUAL(buf[1023], 0xaa);
	CU_ASSERT_EQUAL(buf[1024 + 4096], 0xaa);

	s.prp1 = (uintptr_t)buf;
	s.prp2 = 0;
	ns = (void *)buf;
	s.cdw10 = UPCIE_NVME_CNS_NS;
	s.nsid = 1;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(ns->nsze, 131072);
	CU_ASSERT_EQUAL(ns->lbaf[upcie_nvme_id_ns_flbas_idx(ns)].lbads, 9);
	s.nsid = 2;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(ns->nsze, 16384);
	CU_ASSERT_EQUAL(ns->ncap, 16384);
	CU_ASSERT_EQUAL(ns->lbaf[upcie_nvme_id_ns_flbas_idx(ns)].lbads, 12);
	s.nsid = 3;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_NS);
	s.nsid = 0;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_NS);

	list = (void *)buf;
	s.cdw10 = UPCIE_NVME_CNS_ACTIVE_NS_LIST;
	s.nsid = 0;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(list[0], 1);
	CU_ASSERT_EQUAL(list[1], 2);
	CU_ASSERT_EQUAL(list[2], 0);
	s.nsid = 1;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(list[0], 2);
	CU_ASSERT_EQUAL(list[1], 0);

	s.cdw10 = 0x10;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	/* Identify into memory the model does not know. */
	s.cdw10 = UPCIE_NVME_CNS_CTRL;
	s.prp1 = (uintptr_t)outside;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_EQUAL(stats().errors, 4);
	t_close();
}

static void test_features(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_SET_FEATURES, .cid = 3};
	struct upcie_nvme_cqe c;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	s.cdw10 = UPCIE_NVME_FEAT_NUM_QUEUES;
	s.cdw11 = 0xffff;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.cdw11 = (3u << 16) | 99;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, (3u << 16) | 15);
	s.cdw11 = (1u << 16) | 1; /* 2 and 2 */
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, (1u << 16) | 1);
	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, (1u << 16) | 1);

	/* Only 2 queues granted. */
	CU_ASSERT_EQUAL(create_cq(3, 8, t_alloc(PS), UPCIE_NVME_QUEUE_PC),
			UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(qpair(&q, 2, 8, 8), 0);
	s.opc = UPCIE_NVME_ADM_SET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_CMD_SEQ_ERROR);

	/* Volatile write cache. */
	s.cdw10 = UPCIE_NVME_FEAT_VOLATILE_WC;
	s.cdw11 = 0;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, 0);
	s.opc = UPCIE_NVME_ADM_SET_FEATURES;
	s.cdw11 = 1;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, 1);

	s.cdw10 = 0x7f;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.opc = UPCIE_NVME_ADM_SET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	t_close();
}

static void test_create_delete(void)
{
	void *m = NULL;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	m = t_alloc(64 * 1024);

	/* Create I/O CQ. */
	CU_ASSERT_EQUAL(create_cq(0, 8, m, 1), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(create_cq(17, 8, m, 1), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(create_cq(1, 1, m, 1), UPCIE_NVME_SC_QUEUE_SIZE);
	CU_ASSERT_EQUAL(create_cq(1, 1025, m, 1), UPCIE_NVME_SC_QUEUE_SIZE);
	CU_ASSERT_EQUAL(create_cq(1, 8, m, 0), UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(create_cq(1, 8, (uint8_t *)m + 16, 1), UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	CU_ASSERT_EQUAL(create_cq(1, 8, outside, 1), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_EQUAL(create_cq(1, 1024, m, UPCIE_NVME_QUEUE_PC | UPCIE_NVME_CQ_IEN), 0);
	CU_ASSERT_EQUAL(create_cq(1, 8, m, 1), UPCIE_NVME_SC_QID_INVALID);

	/* Create I/O SQ. */
	void *sm = t_alloc(64 * 1024);
	CU_ASSERT_EQUAL(create_sq(0, 8, sm, 1, 1), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(create_sq(17, 8, sm, 1, 1), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(create_sq(1, 8, sm, 2, 1), UPCIE_NVME_SC_CQ_INVALID);
	CU_ASSERT_EQUAL(create_sq(1, 8, sm, 0, 1), UPCIE_NVME_SC_CQ_INVALID);
	CU_ASSERT_EQUAL(create_sq(1, 1, sm, 1, 1), UPCIE_NVME_SC_QUEUE_SIZE);
	CU_ASSERT_EQUAL(create_sq(1, 1025, sm, 1, 1), UPCIE_NVME_SC_QUEUE_SIZE);
	CU_ASSERT_EQUAL(create_sq(1, 8, sm, 1, 0), UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(create_sq(1, 8, (uint8_t *)sm + 64, 1, 1),
			UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	CU_ASSERT_EQUAL(create_sq(1, 8, outside, 1, 1), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_EQUAL(create_sq(1, 1024, sm, 1, 1), 0);
	CU_ASSERT_EQUAL(create_sq(1, 8, sm, 1, 1), UPCIE_NVME_SC_QID_INVALID);
	/* Two SQs may share a CQ. */
	CU_ASSERT_EQUAL(create_sq(2, 8, t_alloc(PS), 1, 1), 0);

	/* Delete. */
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 0), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 5), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 999), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 0), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 5), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 1),
			UPCIE_NVME_SC_INVALID_QUEUE_DELETION);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 1), 0);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 1), UPCIE_NVME_SC_QID_INVALID);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 1),
			UPCIE_NVME_SC_INVALID_QUEUE_DELETION);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 2), 0);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 1), 0);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 1), UPCIE_NVME_SC_QID_INVALID);

	/* Queue ids can be reused and work. */
	CU_ASSERT_EQUAL(qpair(&q, 1, 4, 4), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, NULL, 0), 0);
	t_close();
}

static void test_log_pages(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_GET_LOG_PAGE, .cid = 5};
	struct upcie_nvme_smart_log *smart;
	struct upcie_nvme_error_log *err;
	uint64_t v;
	uint8_t *buf, *data;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	buf = t_alloc(2 * PS);
	data = t_alloc(8 * PS);
	CU_ASSERT_EQUAL(qpair(&q, 1, 16, 16), 0);

	/* Empty error log. */
	s.prp1 = (uintptr_t)buf;
	s.cdw10 = UPCIE_NVME_LOG_ERROR | ((64u / 4 - 1) << 16);
	memset(buf, 0xaa, PS);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	err = (void *)buf;
	CU_ASSERT_EQUAL(err->error_count, 0);
	CU_ASSERT_EQUAL(buf[64], 0xaa); /* exactly NUMD dwords */

	/* One failed I/O command shows up. */
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, 1, 131072, 1, data, 512),
			UPCIE_NVME_SC_LBA_RANGE);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(err->error_count, 1);
	CU_ASSERT_EQUAL(err->sqid, 1);
	CU_ASSERT_EQUAL(err->cid, 7);
	CU_ASSERT_EQUAL(err->status >> 1, UPCIE_NVME_SC_LBA_RANGE);
	CU_ASSERT_EQUAL(err->lba, 131072);
	CU_ASSERT_EQUAL(err->nsid, 1);

	/* SMART after 2 writes of 8 KiB and 1 read of 512 B. */
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 1, 0, 16, data, 8192), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 2, 0, 2, data, 8192), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, 1, 0, 1, data, 512), 0);
	s.cdw10 = UPCIE_NVME_LOG_SMART | ((512u / 4 - 1) << 16);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	smart = (void *)buf;
	CU_ASSERT(smart->temperature > 273 && smart->temperature < 373);
	memcpy(&v, smart->host_writes, 8);
	CU_ASSERT_EQUAL(v, 2);
	memcpy(&v, smart->host_reads, 8);
	CU_ASSERT_EQUAL(v, 1);
	memcpy(&v, smart->data_units_written, 8);
	CU_ASSERT_EQUAL(v, 1); /* 32 units of 512 B, in thousands, rounded up */
	memcpy(&v, smart->num_err_log_entries, 8);
	CU_ASSERT_EQUAL(v, 1);

	/* Offset and NUMDU: 8 bytes from offset 0 of SMART, then a length over
	 * two pages with PRP2 (bytes past the log read zero). */
	memset(buf, 0xaa, 2 * PS);
	s.cdw10 = UPCIE_NVME_LOG_SMART | (1u << 16);
	s.cdw12 = 0;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(buf[8], 0xaa);
	CU_ASSERT_EQUAL(buf[1] | (buf[2] << 8), 308);
	s.cdw10 = UPCIE_NVME_LOG_SMART | (0xffffu << 16);
	s.cdw11 = 0; /* NUMDU 0: 65536 dwords: over MDTS? no, 256 KiB > 128 KiB */
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.prp1 = (uintptr_t)buf + PS - 256;
	s.prp2 = (uintptr_t)buf + PS;
	s.cdw10 = UPCIE_NVME_LOG_SMART | ((1024u / 4 - 1) << 16);
	s.cdw12 = 4;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(buf[PS - 257], 0xaa);
	CU_ASSERT_EQUAL(buf[PS - 256], 10); /* SMART byte 4: available spare threshold */
	CU_ASSERT_EQUAL(buf[PS - 256 + 600], 0);
	CU_ASSERT_EQUAL(buf[PS - 256 + 1024], 0xaa);
	s.cdw12 = 2; /* not dword aligned */
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.cdw12 = 4096;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.cdw12 = 0;

	s.cdw10 = 0x42 | (15u << 16);
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_LOG_PAGE);
	t_close();
}

static void test_admin_misc(void)
{
	struct upcie_nvme_sqe s = {.cid = 11};
	struct upcie_nvme_cqe c;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	s.opc = UPCIE_NVME_ADM_ABORT;
	s.cdw10 = (5u << 16) | 1;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0 & 1, 1);
	s.opc = 0x7e;
	CU_ASSERT_EQUAL(admin(&s, &c), UPCIE_NVME_SC_INVALID_OPCODE);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_dnr(&c), 1);
	/* NVM opcodes are not admin opcodes: Write (0x01) is Create SQ here,
	 * Read (0x02) is Get Log Page; 0x80 is neither. */
	s.opc = 0x80;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_OPCODE);

	/* Asynchronous Event Requests are held; one too many is refused. */
	s.opc = UPCIE_NVME_ADM_ASYNC_EVENT;
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_AER_LIMIT);
	t_close();
}

/* ---- NVM commands -------------------------------------------------------- */

static void round_trip(uint32_t nsid, uint32_t lbs)
{
	const size_t len = 128 * 1024; /* MDTS */
	uint8_t *w, *r, *ns;
	uint32_t nlb = (uint32_t)(len / lbs);
	size_t nslen;
	struct tq q;

	w = t_alloc(len + PS);
	r = t_alloc(len + PS);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, (uint16_t)nsid, 32, 32), 0);
	ns = upcie_sim_ns_data(T.sim, nsid, &nslen);

	/* Page aligned, a PRP list. */
	fill(w, len, nsid);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, nsid, 3, nlb, w, len), 0);
	CU_ASSERT_EQUAL(memcmp(ns + 3 * lbs, w, len), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, nsid, 3, nlb, r, len), 0);
	CU_ASSERT_EQUAL(memcmp(r, w, len), 0);

	/* One block, two blocks across a page boundary, from an offset. */
	fill(w + 512, 2 * lbs, nsid + 9);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, nsid, 1, 1, w + 512, lbs), 0);
	memset(r, 0, 2 * lbs + PS);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, nsid, 1, 1, r + 4, lbs), 0);
	CU_ASSERT_EQUAL(memcmp(r + 4, w + 512, lbs), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, nsid, 100, 2, w + 512, 2 * lbs), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, nsid, 100, 2, r + PS - 512, 2 * lbs), 0);
	CU_ASSERT_EQUAL(memcmp(r + PS - 512, w + 512, 2 * lbs), 0);

	/* The last block of the namespace, then one past it. */
	uint64_t last = nslen / lbs - 1;
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, nsid, last, 1, w, lbs), 0);
	CU_ASSERT_EQUAL(memcmp(ns + nslen - lbs, w, lbs), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, nsid, last, 2, w, 2 * lbs),
			UPCIE_NVME_SC_LBA_RANGE);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, nsid, last + 1, 1, r, lbs),
			UPCIE_NVME_SC_LBA_RANGE);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, nsid, ~0ull, 1, r, lbs),
			UPCIE_NVME_SC_LBA_RANGE);
	/* Over MDTS. */
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, nsid, 0, nlb + 1, r, len + lbs),
			UPCIE_NVME_SC_INVALID_FIELD);
}

static void test_rw(void)
{
	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	round_trip(1, 512);
	round_trip(2, 4096);
	CU_ASSERT_EQUAL(stats().io_cmds, 2 * 11);
	t_close();
}

static void test_nvm_misc(void)
{
	struct upcie_nvme_dsm_range *r;
	struct upcie_nvme_sqe s;
	uint8_t *buf, *ns;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	buf = t_alloc(4 * PS);
	ns = upcie_sim_ns_data(T.sim, 1, NULL);

	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, 0, 0, 1, buf, 512), UPCIE_NVME_SC_INVALID_NS);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, 3, 0, 1, buf, 512), UPCIE_NVME_SC_INVALID_NS);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 0xffffffff, 0, 1, buf, 512),
			UPCIE_NVME_SC_INVALID_NS);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_FLUSH, 0xffffffff, 0, 1, NULL, 0), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_FLUSH, 0, 0, 1, NULL, 0), UPCIE_NVME_SC_INVALID_NS);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_FLUSH, 2, 0, 1, NULL, 0), 0);
	CU_ASSERT_EQUAL(io(&q, 0x7f, 1, 0, 1, buf, 512), UPCIE_NVME_SC_INVALID_OPCODE);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_ADM_IDENTIFY, 1, 0, 1, buf, 512),
			UPCIE_NVME_SC_INVALID_OPCODE);

	/* Write Zeroes. */
	memset(ns, 0x5a, 8192);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE_ZEROES, 1, 2, 4, NULL, 0), 0);
	CU_ASSERT_EQUAL(ns[1023], 0x5a);
	CU_ASSERT_EQUAL(ns[1024], 0);
	CU_ASSERT_EQUAL(ns[3071], 0);
	CU_ASSERT_EQUAL(ns[3072], 0x5a);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE_ZEROES, 1, 131071, 2, NULL, 0),
			UPCIE_NVME_SC_LBA_RANGE);
	/* A large Write Zeroes (whole pages are given back, edges cleared). */
	memset(ns + 1000 * 512, 0x77, 200 * 512);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE_ZEROES, 1, 1001, 198, NULL, 0), 0);
	CU_ASSERT_EQUAL(ns[1001 * 512 - 1], 0x77);
	for (size_t i = 1001 * 512; i < 1199 * 512; i += 509)
		if (ns[i])
			CU_FAIL("Write Zeroes left data");
	CU_ASSERT_EQUAL(ns[1199 * 512 - 1], 0);
	CU_ASSERT_EQUAL(ns[1199 * 512], 0x77);

	/* Dataset Management, deallocate two ranges. */
	memset(ns, 0x5a, 8192);
	r = (void *)buf;
	r[0] = (struct upcie_nvme_dsm_range){.nlb = 1, .slba = 0};
	r[1] = (struct upcie_nvme_dsm_range){.nlb = 2, .slba = 10};
	memset(&s, 0, sizeof(s));
	s.opc = UPCIE_NVME_CMD_DSM;
	s.cid = 4;
	s.nsid = 1;
	s.cdw10 = 1;
	s.cdw11 = UPCIE_NVME_DSM_AD;
	s.prp1 = (uintptr_t)buf;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(ns[0], 0);
	CU_ASSERT_EQUAL(ns[511], 0);
	CU_ASSERT_EQUAL(ns[512], 0x5a);
	CU_ASSERT_EQUAL(ns[10 * 512 - 1], 0x5a);
	CU_ASSERT_EQUAL(ns[10 * 512], 0);
	CU_ASSERT_EQUAL(ns[12 * 512 - 1], 0);
	CU_ASSERT_EQUAL(ns[12 * 512], 0x5a);
	/* Out of range: nothing is deallocated. */
	r[1].slba = 131071;
	ns[0] = 1;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_LBA_RANGE);
	CU_ASSERT_EQUAL(ns[0], 1);
	/* 256 ranges (4 KiB of them), without AD: no change. */
	for (int i = 0; i < 256; i++)
		r[i] = (struct upcie_nvme_dsm_range){.nlb = 1, .slba = (uint64_t)i};
	s.cdw10 = 255;
	s.cdw11 = 0;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(ns[0], 1);
	s.cdw11 = UPCIE_NVME_DSM_AD;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(ns[0], 0);
	s.nsid = 9;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_INVALID_NS);
	t_close();
}

/* ---- PRPs --------------------------------------------------------------- */

static void test_prp(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s;
	uint8_t *buf, *ns;
	uint64_t *l1, *l2;
	struct tq q;

	upcie_sim_config_default(&cfg);
	cfg.mdts = 0; /* no limit, to chain list pages */
	CU_ASSERT_FATAL(t_open(&cfg) == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	buf = t_alloc(600 * PS);
	l1 = t_alloc(PS);
	l2 = t_alloc(PS);
	ns = upcie_sim_ns_data(T.sim, 2, NULL);
	uint64_t xe = stats().xfer_errors;

	/* PRP1 not dword aligned. */
	rw_sqe(&s, UPCIE_NVME_CMD_READ, 2, 0, 1, 1);
	s.prp1 = (uintptr_t)buf + 2;
	s.prp2 = (uintptr_t)buf + PS;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	/* Two pages: PRP2 must have no offset. */
	s.prp1 = (uintptr_t)buf + 512;
	s.prp2 = (uintptr_t)buf + PS + 8;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	/* A list pointer must be qword aligned. */
	rw_sqe(&s, UPCIE_NVME_CMD_READ, 2, 0, 3, 1);
	s.prp1 = (uintptr_t)buf;
	s.prp2 = (uintptr_t)l1 + 4;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	/* List entries must have no offset. */
	l1[0] = (uintptr_t)buf + PS;
	l1[1] = (uintptr_t)buf + 2 * PS + 512;
	s.prp2 = (uintptr_t)l1;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	/* A data page outside registered memory. */
	l1[1] = (uintptr_t)outside;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	/* PRP1 outside, PRP2 outside, the list itself outside. */
	rw_sqe(&s, UPCIE_NVME_CMD_WRITE, 2, 0, 1, 1);
	s.prp1 = (uintptr_t)outside;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	s.prp1 = 0x1000; /* never mapped in this process either */
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	s.prp1 = (uintptr_t)T.mem + MEM_LEN - 512; /* runs off the end of the mapping */
	s.cdw12 = 1;
	s.prp2 = (uintptr_t)T.mem + MEM_LEN;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	rw_sqe(&s, UPCIE_NVME_CMD_WRITE, 2, 0, 3, 1);
	s.prp1 = (uintptr_t)buf;
	s.prp2 = (uintptr_t)outside;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_EQUAL(stats().xfer_errors, xe + 9);

	/* A list that starts 16 bytes before the end of its page: one entry,
	 * then a chain to a second list page. 4 pages in all. */
	uint64_t *tail_list = (uint64_t *)((uint8_t *)l1 + PS - 16);
	fill(buf, 4 * PS, 3);
	tail_list[0] = (uintptr_t)buf + PS;
	tail_list[1] = (uintptr_t)l2;
	l2[0] = (uintptr_t)buf + 2 * PS;
	l2[1] = (uintptr_t)buf + 3 * PS;
	rw_sqe(&s, UPCIE_NVME_CMD_WRITE, 2, 5, 4, 1);
	s.prp1 = (uintptr_t)buf;
	s.prp2 = (uintptr_t)tail_list;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(memcmp(ns + 5 * PS, buf, 4 * PS), 0);
	/* A chain pointer with an offset. */
	tail_list[1] = (uintptr_t)l2 + 8;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_INVALID_PRP_OFFSET);
	/* Exactly 2 remaining pages at the end of a list page: no chain needed. */
	tail_list[1] = (uintptr_t)buf + 2 * PS;
	rw_sqe(&s, UPCIE_NVME_CMD_READ, 2, 5, 3, 1);
	s.prp1 = (uintptr_t)buf + 3 * PS;
	s.prp2 = (uintptr_t)tail_list;
	memset(buf + PS, 0, 2 * PS);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(memcmp(buf + PS, ns + 6 * PS, 2 * PS), 0);

	/* 600 pages through two full list pages (511 entries + chain, then 88). */
	fill(buf, 600 * PS, 4);
	l1[PS / 8 - 1] = (uintptr_t)l2;
	for (size_t i = 1; i < 600; i++) {
		uint64_t a = (uintptr_t)buf + i * PS;
		if (i <= 511)
			l1[i - 1] = a;
		else
			l2[i - 512] = a;
	}
	rw_sqe(&s, UPCIE_NVME_CMD_WRITE, 2, 100, 600, 1);
	s.prp1 = (uintptr_t)buf;
	s.prp2 = (uintptr_t)l1;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(memcmp(ns + 100 * PS, buf, 600 * PS), 0);
	/* The same, with the second list page outside registered memory. */
	l1[PS / 8 - 1] = (uintptr_t)outside;
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	t_close();
}

/* ---- queues and doorbells --------------------------------------------------- */

static void test_phase_wrap(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 3, 4, 4), 0);
	/* 3 rounds of the 4-entry queues, one command at a time. */
	for (int i = 0; i < 12; i++) {
		rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (uint16_t)i);
		int phase = q.phase;
		uint32_t slot = q.head;
		CU_ASSERT_EQUAL(q_cmd(&q, &s, &c), 0);
		CU_ASSERT_EQUAL(upcie_nvme_cqe_phase(&c), phase);
		CU_ASSERT_EQUAL(upcie_nvme_cqe_phase(&c), (i / 4) % 2 == 0 ? 1 : 0);
		CU_ASSERT_EQUAL(slot, (uint32_t)i % 4);
		CU_ASSERT_EQUAL(c.sqhd, (i + 1) % 4);
		CU_ASSERT_EQUAL(c.sqid, 3);
	}
	t_close();
}

static void test_cq_full(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct tq q, cq;
	int got = 0;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 4), 0);
	cq = cq_view(&q, 4);
	upcie_sim_stats_reset(T.sim);
	/* 10 commands behind one doorbell write. */
	for (int i = 0; i < 10; i++) {
		rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (uint16_t)i);
		q.sq[q.tail] = s;
		q.tail++;
	}
	reg_w(upcie_nvme_sq_db_off(1, 0), q.tail);
	/* The CQ holds 3: the model stops there, however often it steps. */
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 3);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().io_cmds, 3);
	/* Reaping without telling the model frees nothing. */
	while (q_take(&cq, &c, false))
		CU_ASSERT_EQUAL(c.cid, got++);
	CU_ASSERT_EQUAL(got, 3);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	/* Head doorbell: 3 more. */
	reg_w(upcie_nvme_cq_db_off(1, 0), cq.head);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 3);
	while (q_take(&cq, &c, true))
		CU_ASSERT_EQUAL(c.cid, got++);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 3);
	while (q_take(&cq, &c, true))
		CU_ASSERT_EQUAL(c.cid, got++);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	while (q_take(&cq, &c, true)) {
		CU_ASSERT_EQUAL(c.cid, got++);
		CU_ASSERT_EQUAL(c.sqhd, 10);
	}
	CU_ASSERT_EQUAL(got, 10);
	CU_ASSERT_EQUAL(stats().io_cmds, 10);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 1);
	CU_ASSERT_EQUAL(stats().cq_doorbells, 4);

	/* A head that releases entries never posted is ignored. */
	reg_w(upcie_nvme_cq_db_off(1, 0), (cq.head + 2) % 4);
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 99);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT_EQUAL(q_take(&cq, &c, false), 1);
	CU_ASSERT_EQUAL(c.cid, 99);
	t_close();
}

static void test_doorbells(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct upcie_sim_stats st;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 8, 8), 0);
	st = stats();
	CU_ASSERT_EQUAL(st.admin_cmds, 2);
	CU_ASSERT_EQUAL(st.sq_doorbells, 2);
	/* The last head write is seen at the next step. */
	CU_ASSERT_EQUAL(st.cq_doorbells, 1);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().cq_doorbells, 2);
	upcie_sim_stats_reset(T.sim);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 0);

	/* Steps with no doorbell change count nothing. */
	upcie_sim_step(T.sim);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 0);

	/* Two submissions, one doorbell write each, reaped together. */
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	q_submit(&q, &s);
	q_submit(&q, &s);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 1); /* the model saw only the last value */
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 1);
	upcie_sim_step(T.sim);
	st = stats();
	CU_ASSERT_EQUAL(st.cq_doorbells, 1);
	CU_ASSERT_EQUAL(st.io_cmds, 2);
	CU_ASSERT_EQUAL(st.errors, 0);

	/* An out-of-range SQ tail is counted and ignored. */
	reg_w(upcie_nvme_sq_db_off(1, 0), 8);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 2);
	reg_w(upcie_nvme_sq_db_off(1, 0), q.tail);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);

	/* A doorbell of a queue that does not exist does nothing. */
	reg_w(upcie_nvme_sq_db_off(5, 0), 3);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	t_close();
}

static volatile uint32_t *slot(void *page, uint32_t dboff)
{
	return (volatile uint32_t *)((uint8_t *)page + dboff - UPCIE_NVME_REG_DBS);
}

static void test_shadow(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_DBBUF_CONFIG, .cid = 2};
	struct upcie_nvme_cqe c;
	struct upcie_sim_stats st;
	uint8_t *sh, *ei;
	struct tq q;

	/* Not offered. */
	upcie_sim_config_default(&cfg);
	cfg.dbbuf = false;
	CU_ASSERT_FATAL(t_open(&cfg) == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	sh = t_alloc(PS);
	ei = t_alloc(PS);
	s.prp1 = (uintptr_t)sh;
	s.prp2 = (uintptr_t)ei;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_OPCODE);
	t_close();

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	sh = t_alloc(PS);
	ei = t_alloc(PS);
	s.prp1 = (uintptr_t)sh + 8;
	s.prp2 = (uintptr_t)ei;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.prp1 = (uintptr_t)sh;
	s.prp2 = (uintptr_t)ei + 4;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	s.prp2 = (uintptr_t)outside;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	s.prp2 = (uintptr_t)ei;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	upcie_sim_step(T.sim);
	upcie_sim_stats_reset(T.sim);

	/* Shadow only: the model takes the tail from memory, no MMIO write. */
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	q.sq[0] = s;
	q.sq[1] = s;
	q.tail = 2;
	__atomic_store_n(slot(sh, upcie_nvme_sq_db_off(1, 0)), 2, __ATOMIC_RELEASE);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 2);
	st = stats();
	CU_ASSERT_EQUAL(st.sq_doorbells, 0);
	CU_ASSERT_EQUAL(st.shadow_reads, 1);
	CU_ASSERT_EQUAL(*slot(ei, upcie_nvme_sq_db_off(1, 0)), 2);
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	/* CQ head through the shadow. */
	__atomic_store_n(slot(sh, upcie_nvme_cq_db_off(1, 0)), 2, __ATOMIC_RELEASE);
	upcie_sim_step(T.sim);
	st = stats();
	CU_ASSERT_EQUAL(st.shadow_reads, 2);
	CU_ASSERT_EQUAL(st.cq_doorbells, 0);
	CU_ASSERT_EQUAL(*slot(ei, upcie_nvme_cq_db_off(1, 0)), 2);
	/* Nothing new: no reads counted. */
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().shadow_reads, 2);

	/* MMIO writes are still honoured (the shadow is updated first). */
	q.sq[2] = s;
	q.tail = 3;
	*slot(sh, upcie_nvme_sq_db_off(1, 0)) = 3;
	reg_w(upcie_nvme_sq_db_off(1, 0), 3);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	st = stats();
	CU_ASSERT_EQUAL(st.sq_doorbells, 1);
	CU_ASSERT_EQUAL(st.shadow_reads, 2);
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	CU_ASSERT_EQUAL(c.sqhd, 3);

	/* The admin queue keeps using MMIO doorbells. */
	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
	s.cdw10 = UPCIE_NVME_FEAT_NUM_QUEUES;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);

	/* A reset forgets the buffers: after re-enabling, shadows are ignored. */
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	upcie_sim_stats_reset(T.sim);
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	q.sq[0] = s;
	*slot(sh, upcie_nvme_sq_db_off(1, 0)) = 1;
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().shadow_reads, 0);
	t_close();
}

/* A queue id reused after a delete: stale shadow values are not taken. */
static void test_shadow_reuse(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_DBBUF_CONFIG, .cid = 2};
	uint8_t *sh, *ei;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	sh = t_alloc(PS);
	ei = t_alloc(PS);
	s.prp1 = (uintptr_t)sh;
	s.prp2 = (uintptr_t)ei;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	*slot(sh, upcie_nvme_sq_db_off(1, 0)) = 5;
	*slot(sh, upcie_nvme_cq_db_off(1, 0)) = 0;
	for (int i = 0; i < 5; i++)
		rw_sqe(&q.sq[i], UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (uint16_t)i);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 5);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 1), 0);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 1), 0);
	/* The host has not cleared the slots yet; the model does on create. */
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	CU_ASSERT_EQUAL(*slot(sh, upcie_nvme_sq_db_off(1, 0)), 0);
	CU_ASSERT_EQUAL(*slot(ei, upcie_nvme_sq_db_off(1, 0)), 0);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	/* A bad shadow value is ignored once, not counted at every step. */
	upcie_sim_stats_reset(T.sim);
	*slot(sh, upcie_nvme_sq_db_off(1, 0)) = 100;
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().shadow_reads, 0);
	t_close();
}

/* With a wide doorbell stride only the queues whose slots fit in the page
 * have shadows; the others use MMIO and the model writes nothing past the page. */
static void test_shadow_stride(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_DBBUF_CONFIG, .cid = 2};
	uint8_t *sh, *ei, *after;
	struct upcie_nvme_cqe c;
	struct tq q1, q10;

	upcie_sim_config_default(&cfg);
	cfg.dstrd = 6; /* 256-byte stride: qids 0..7 fit in a 4 KiB page */
	CU_ASSERT_FATAL(t_open(&cfg) == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	sh = t_alloc(PS);
	ei = t_alloc(PS);
	after = t_alloc(PS);
	memset(after, 0xee, PS);
	s.prp1 = (uintptr_t)sh;
	s.prp2 = (uintptr_t)ei;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(qpair(&q1, 1, 8, 8), 0);
	CU_ASSERT_EQUAL(qpair(&q10, 10, 8, 8), 0);
	upcie_sim_step(T.sim);
	upcie_sim_stats_reset(T.sim);
	rw_sqe(&q1.sq[0], UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	*slot(sh, upcie_nvme_sq_db_off(1, 6)) = 1;
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT_EQUAL(q_take(&q1, &c, false), 1);
	for (int i = 0; i < 20; i++) {
		rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (uint16_t)i);
		CU_ASSERT_EQUAL(q_cmd(&q10, &s, NULL), 0);
	}
	CU_ASSERT_EQUAL(stats().shadow_reads, 1);
	for (size_t i = 0; i < PS; i++)
		if (after[i] != 0xee) {
			CU_FAIL("the model wrote past the EventIdx page");
			break;
		}
	t_close();
}

/* ---- faults ----------------------------------------------------------------- */

static void test_fault_args(void)
{
	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_DROP_CQE, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STATUS_NTH, 0, 6), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STATUS_NTH, 1, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, (enum upcie_sim_fault)99, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(NULL, UPCIE_SIM_FAULT_NONE, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0), 0);
	t_close();
}

static void test_fault_rdy_never(void)
{
	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_RDY_NEVER, 0, 0), 0);
	CU_ASSERT_EQUAL(t_enable(), 0);
	for (int i = 0; i < 100; i++)
		upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	CU_ASSERT_EQUAL(stats().enables, 1);
	/* Cleared: the pending enable completes. */
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), UPCIE_NVME_CSTS_RDY);
	t_close();
}

static void test_fault_cfs(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_ABORT, .cid = 1};

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_CFS, 0, 0), 0);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), UPCIE_NVME_CSTS_RDY | UPCIE_NVME_CSTS_CFS);
	/* Nothing is processed. */
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(stats().admin_cmds, 0);
	/* A controller reset clears it. */
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	/* And so does FAULT_NONE. */
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_CFS, 0, 0);
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	t_close();
}

static void test_fault_drop(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	uint8_t *buf, *ns;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 8, 8), 0);
	buf = t_alloc(PS);
	ns = upcie_sim_ns_data(T.sim, 1, NULL);
	upcie_sim_stats_reset(T.sim);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_DROP_CQE, 2, 0), 0);
	memset(buf, 0x33, 512);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 1, 7, 1, buf, 512), NO_CQE);
	CU_ASSERT_EQUAL(ns[7 * 512], 0x33); /* executed all the same */
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 2);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), NO_CQE);
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 3);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, &c), 0);
	CU_ASSERT_EQUAL(c.cid, 3);
	CU_ASSERT_EQUAL(stats().io_cmds, 3);
	/* Admin commands are dropped too. */
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	s.opc = UPCIE_NVME_ADM_ABORT;
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	t_close();
}

static void test_fault_status(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	uint8_t *buf, *ns;
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 8, 8), 0);
	buf = t_alloc(PS);
	ns = upcie_sim_ns_data(T.sim, 1, NULL);
	upcie_sim_stats_reset(T.sim);
	CU_ASSERT_EQUAL(
	    upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STATUS_NTH, 2, UPCIE_NVME_SC_WRITE_FAULT), 0);
	memset(buf, 0x44, 512);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 1, 1, 1, buf, 512), 0);
	memset(buf, 0x55, 512);
	rw_sqe(&s, UPCIE_NVME_CMD_WRITE, 1, 1, 1, 8);
	set_prps(&s, buf, 512);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, &c), UPCIE_NVME_SC_WRITE_FAULT);
	CU_ASSERT_EQUAL(c.cid, 8);
	CU_ASSERT_EQUAL(ns[512], 0x44); /* not run */
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 1, 1, 1, buf, 512), 0);
	CU_ASSERT_EQUAL(ns[512], 0x55);
	CU_ASSERT_EQUAL(stats().errors, 1);
	/* Counting spans admin and I/O commands. */
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STATUS_NTH, 2, UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, NULL, 0), 0);
	rw_sqe(&s, UPCIE_NVME_ADM_ABORT, 0, 0, 1, 9);
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	t_close();
}

static void test_fault_removed(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_ABORT, .cid = 1};
	uint16_t v16;
	uint32_t v32;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0), 0);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0xffffffff);
	CU_ASSERT_EQUAL(upcie_mmio_read64(T.bar, UPCIE_NVME_REG_CAP), ~0ull);
	for (size_t off = 0; off < T.bar_len; off += 4)
		if (reg_r((uint32_t)off) != 0xffffffff) {
			CU_FAIL("BAR not all-ones");
			break;
		}
	CU_ASSERT_EQUAL(upcie_pci_cfg_read(T.dev, 0, &v32, 4), 0);
	CU_ASSERT_EQUAL(v32, 0xffffffff);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, true), -ENODEV);
	/* Writes go nowhere, nothing is processed. */
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(reg_r(upcie_nvme_sq_db_off(0, 0)), 0xffffffff);
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0xffffffff);
	CU_ASSERT_EQUAL(stats().admin_cmds, 0);
	/* Back: a freshly reset controller. */
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_VS), 0x00010400);
	CU_ASSERT_EQUAL(upcie_pci_cfg_read(T.dev, 0, &v16, 2), 0);
	CU_ASSERT(v16 != 0xffff);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	t_close();
}

static void test_fault_shn_never(void)
{
	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_SHN_NEVER, 0, 0);
	reg_w(UPCIE_NVME_REG_CC, cc_val(1) | UPCIE_NVME_CC_SHN_NORMAL);
	for (int i = 0; i < 100; i++)
		upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(reg_r(UPCIE_NVME_REG_CSTS)), 1); /* in progress */
	CU_ASSERT_EQUAL(stats().shutdowns, 0);
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(reg_r(UPCIE_NVME_REG_CSTS)), 2);
	CU_ASSERT_EQUAL(stats().shutdowns, 1);
	t_close();
}

/* Memory unregistered under a live queue: the model must not touch it. */
static void test_unmapped_queue(void)
{
	struct upcie_nvme_sqe s;
	uint8_t *extra;
	uint64_t bus[4];
	struct tq q;

	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	extra = aligned_alloc(PS, 4 * PS);
	CU_ASSERT_FATAL(extra != NULL);
	memset(extra, 0, 4 * PS);
	CU_ASSERT_EQUAL(upcie_pci_dma_map(T.dev, extra, 4 * PS, PS, bus), 0);
	CU_ASSERT_EQUAL(bus[2], (uintptr_t)extra + 2 * PS);
	q = (struct tq){
	    .qid = 1, .size = 8, .phase = 1, .sq = (void *)extra, .cq = (void *)(extra + 2 * PS)};
	CU_ASSERT_EQUAL(create_cq(1, 8, q.cq, 1), 0);
	CU_ASSERT_EQUAL(create_sq(1, 8, q.sq, 1, 1), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, NULL, 0), 0);
	CU_ASSERT_EQUAL(upcie_pci_dma_unmap(T.dev, extra, 2 * PS, PS, bus), -EINVAL);
	CU_ASSERT_EQUAL(upcie_pci_dma_unmap(T.dev, extra, 4 * PS, PS, bus), 0);
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT(reg_r(UPCIE_NVME_REG_CSTS) & UPCIE_NVME_CSTS_CFS);
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);
	t_close();
	free(extra);
}

/* ---- robustness ----------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rnd_addr(uint8_t *area, size_t len)
{
	switch (rnd() % 8) {
	case 0:
		return 0;
	case 1:
		return (uintptr_t)outside + (rnd() % (4 * PS));
	case 2:
		return rnd();
	case 3:
		return (uintptr_t)area + ((rnd() % len) & ~(size_t)3);
	case 4:
		return (uintptr_t)area + len - PS / 2; /* straddles the end */
	default:
		return (uintptr_t)area + (rnd() % (len / PS)) * PS;
	}
}

static uint32_t rnd_dw(void)
{
	switch (rnd() % 4) {
	case 0:
		return (uint32_t)rnd();
	case 1:
		return (uint32_t)(rnd() % 4);
	case 2:
		return (uint32_t)(rnd() & 0xffff) << 16 | (uint32_t)(rnd() % 20);
	default:
		return (uint32_t)(rnd() % 300);
	}
}

/* Random commands, PRPs, shadow buffers and resets: never a crash, never an
 * access outside registered memory (run it under ASan), always recoverable. */
static void test_random_commands(void)
{
	static const uint8_t adm_ops[] = {0x00, 0x01, 0x02, 0x04, 0x05, 0x06,
					  0x08, 0x09, 0x0a, 0x0c, 0x7c, 0x10};
	static const uint8_t io_ops[] = {0x00, 0x01, 0x02, 0x08, 0x09, 0x04};
	static const uint32_t nsids[] = {0, 1, 2, 3, 0xffffffff, 0xfffffffe};
	const size_t area_len = 64 * PS;
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	uint8_t *area, *buf;
	struct tq q;

	upcie_sim_config_default(&cfg);
	cfg.mdts = 0;
	CU_ASSERT_FATAL(t_open(&cfg) == 0);
	area = t_alloc(area_len);
	for (int round = 0; round < 10; round++) {
		reg_w(UPCIE_NVME_REG_CC, 0);
		upcie_sim_step(T.sim);
		CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
		CU_ASSERT_FATAL(qpair(&q, 1, 64, 64) == 0);
		for (int i = 0; i < 2000; i++) {
			bool adm = rnd() % 3 == 0;
			struct tq *tq = adm ? &T.aq : &q;

			memset(&s, 0, sizeof(s));
			s.opc =
			    adm ? adm_ops[rnd() % sizeof(adm_ops)] : io_ops[rnd() % sizeof(io_ops)];
			if (rnd() % 16 == 0)
				s.opc = (uint8_t)rnd();
			s.cid = (uint16_t)i;
			s.nsid = rnd() % 4 ? nsids[rnd() % 6] : (uint32_t)rnd();
			s.prp1 = rnd_addr(area, area_len);
			s.prp2 = rnd_addr(area, area_len);
			s.cdw10 = rnd_dw();
			s.cdw11 = rnd_dw();
			s.cdw12 = rnd_dw();
			s.cdw13 = rnd() % 4 ? 0 : rnd_dw();
			s.cdw14 = rnd_dw();
			s.cdw15 = rnd_dw();
			/* Keep the harness' own queue pair. */
			if (adm && (s.opc == 0x00 || s.opc == 0x04) && (s.cdw10 & 0xffff) == 1)
				s.cdw10 = 2;
			/* Random list pages: sometimes fill one with plausible entries. */
			if (rnd() % 4 == 0) {
				uint64_t *l =
				    (uint64_t *)(uintptr_t)((uintptr_t)area + (rnd() % 64) * PS);
				for (int k = 0; k < 512; k++)
					l[k] = rnd_addr(area, area_len);
			}
			q_submit(tq, &s);
			upcie_sim_step(T.sim);
			while (q_take(&T.aq, &c, true))
				;
			while (q_take(&q, &c, true))
				;
		}
		CU_ASSERT_FALSE(reg_r(UPCIE_NVME_REG_CSTS) & UPCIE_NVME_CSTS_CFS);
	}
	struct upcie_sim_stats st = stats();
	printf("\n  %llu admin, %llu I/O commands, %llu errors, %llu transfer errors\n",
	       (unsigned long long)st.admin_cmds, (unsigned long long)st.io_cmds,
	       (unsigned long long)st.errors, (unsigned long long)st.xfer_errors);
	CU_ASSERT(st.admin_cmds >= 6000); /* I/O stalls at times: random shadow buffers */
	/* Still a working controller. */
	reg_w(UPCIE_NVME_REG_CC, 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_FATAL(qpair(&q, 1, 8, 8) == 0);
	buf = t_alloc(2 * PS);
	fill(buf, PS, 1);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_WRITE, 2, 9, 1, buf, PS), 0);
	CU_ASSERT_EQUAL(io(&q, UPCIE_NVME_CMD_READ, 2, 9, 1, buf + PS, PS), 0);
	CU_ASSERT_EQUAL(memcmp(buf, buf + PS, PS), 0);
	t_close();
}

/* ---- threads ------------------------------------------------------------------ */

static int wait_csts(uint32_t mask, uint32_t want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if ((reg_r(UPCIE_NVME_REG_CSTS) & mask) == want)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			return -1;
		upcie_pci_idle(T.dev);
	}
}

static uint16_t wait_cqe(struct tq *q, struct upcie_nvme_cqe *c)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!q_take(q, c, true)) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5)
			return NO_CQE;
		upcie_pci_idle(T.dev);
	}
	return upcie_nvme_cqe_status(c);
}

static void test_threaded(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	uint8_t *buf;
	struct tq q;

	upcie_sim_config_default(&cfg);
	cfg.threaded = true;
	CU_ASSERT_FATAL(t_open(&cfg) == 0);
	T.aq = (struct tq){.qid = 0, .size = 8, .phase = 1};
	T.aq.sq = t_alloc(PS);
	T.aq.cq = t_alloc(PS);
	reg_w(UPCIE_NVME_REG_AQA, upcie_nvme_aqa(8, 8));
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ASQ, (uintptr_t)T.aq.sq);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ACQ, (uintptr_t)T.aq.cq);
	reg_w(UPCIE_NVME_REG_CC, cc_val(1));
	CU_ASSERT_EQUAL_FATAL(wait_csts(UPCIE_NVME_CSTS_RDY, UPCIE_NVME_CSTS_RDY), 0);

	q = (struct tq){.qid = 1, .size = 64, .phase = 1};
	q.sq = t_alloc(64 * 64);
	q.cq = t_alloc(64 * 16);
	memset(&s, 0, sizeof(s));
	s.opc = UPCIE_NVME_ADM_CREATE_CQ;
	s.prp1 = (uintptr_t)q.cq;
	s.cdw10 = (63u << 16) | 1;
	s.cdw11 = 1;
	q_submit(&T.aq, &s);
	CU_ASSERT_EQUAL(wait_cqe(&T.aq, &c), 0);
	s.opc = UPCIE_NVME_ADM_CREATE_SQ;
	s.prp1 = (uintptr_t)q.sq;
	s.cdw11 = (1u << 16) | 1;
	q_submit(&T.aq, &s);
	CU_ASSERT_EQUAL(wait_cqe(&T.aq, &c), 0);

	buf = t_alloc(PS);
	for (unsigned i = 0; i < 2000; i++) {
		rw_sqe(&s, i % 2 ? UPCIE_NVME_CMD_READ : UPCIE_NVME_CMD_WRITE, 1, i % 64, 8,
		       (uint16_t)i);
		s.prp1 = (uintptr_t)buf;
		if (i % 100 == 0) /* API calls take the lock the thread spins on */
			CU_ASSERT_EQUAL(stats().io_cmds, i);
		q_submit(&q, &s);
		if (wait_cqe(&q, &c) != 0 || c.cid != (uint16_t)i) {
			CU_FAIL("threaded I/O failed");
			break;
		}
	}
	CU_ASSERT_EQUAL(stats().io_cmds, 2000);
	t_close(); /* joins the thread */

	/* "sim" without a model: a default threaded one owned by the handle. */
	struct upcie_pci_dev *dev = upcie_pci_open("sim", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_PTR_NOT_NULL(upcie_pci_sim(dev));
	upcie_pci_close(dev);
}

static int suite_init(void)
{
	/* Inaccessible: if the model ever touched it, the test would crash. */
	outside = mmap(NULL, 4 * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (outside == MAP_FAILED)
		return -1;
	return 0;
}

static int suite_clean(void)
{
	munmap(outside, 4 * PS);
	return 0;
}

static CU_TestInfo tests[] = {
    {"config defaults and validation", test_config},
    {"registers and config space", test_registers},
    {"enable, disable, shutdown (DSTRD 0)", test_state_dstrd0},
    {"enable, disable, shutdown (DSTRD 2)", test_state_dstrd2},
    {"enable with an invalid configuration", test_enable_invalid},
    {"identify", test_identify},
    {"set and get features", test_features},
    {"create and delete queues", test_create_delete},
    {"log pages", test_log_pages},
    {"abort, AER, unknown opcode", test_admin_misc},
    {"read/write round trip, both LBA sizes", test_rw},
    {"flush, write zeroes, DSM, invalid nsid", test_nvm_misc},
    {"PRP checks and chained lists", test_prp},
    {"CQ phase tag wrap", test_phase_wrap},
    {"CQ full back-pressure", test_cq_full},
    {"doorbell counters", test_doorbells},
    {"shadow doorbells and EventIdx", test_shadow},
    {"shadow slots of a reused queue id", test_shadow_reuse},
    {"shadow doorbells with a wide stride", test_shadow_stride},
    {"fault arguments", test_fault_args},
    {"fault RDY_NEVER", test_fault_rdy_never},
    {"fault CFS", test_fault_cfs},
    {"fault DROP_CQE", test_fault_drop},
    {"fault STATUS_NTH", test_fault_status},
    {"fault REMOVED", test_fault_removed},
    {"fault SHN_NEVER", test_fault_shn_never},
    {"queue memory unmapped while live", test_unmapped_queue},
    {"random commands", test_random_commands},
    {"threaded model", test_threaded},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("sim", suite_init, suite_clean, tests)
