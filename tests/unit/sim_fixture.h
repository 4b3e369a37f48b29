/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Harness shared by the test_sim_* suites: the emulated NVMe controller,
 * driven directly through its BAR. The tests write registers, SQEs and
 * doorbells the way a driver does, step the model, and read CQEs.
 *
 * Each suite is its own binary, so the state below (T, outside) is per
 * binary. Some helpers assert: q_cmd() checks every CQE it takes (cid, sqid,
 * sqhd) and t_start() ends the test when the controller does not come up.
 */
#ifndef UPCIE_TESTS_SIM_FIXTURE_H
#define UPCIE_TESTS_SIM_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <upcie/log.h>
#include <upcie/nvme_spec.h>
#include <upcie/pci.h>
#include <upcie/sim.h>

#include "cu.h"

#define MEM_LEN (8u << 20)
#define PS	4096u
#define NO_CQE	0xffff

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

/* ---- suite setup ------------------------------------------------------- */

static inline int sim_suite_init(void)
{
	/* Inaccessible: if the model ever touched it, the test would crash. */
	outside = mmap(NULL, 4 * PS, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (outside == MAP_FAILED)
		return -1;
	return 0;
}

static inline int sim_suite_clean(void)
{
	munmap(outside, 4 * PS);
	return 0;
}

/* ---- registers and memory ----------------------------------------------- */

static inline uint32_t reg_r(uint32_t off)
{
	return upcie_mmio_read32(T.bar, off);
}

static inline void reg_w(uint32_t off, uint32_t v)
{
	upcie_mmio_write32(T.bar, off, v);
}

static inline void ring_sq(uint16_t qid, uint32_t tail)
{
	reg_w(upcie_nvme_sq_db_off(qid, T.dstrd), tail);
}

static inline void ring_cq(uint16_t qid, uint32_t head)
{
	reg_w(upcie_nvme_cq_db_off(qid, T.dstrd), head);
}

static inline void *t_alloc(size_t len)
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

static inline void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static inline struct upcie_sim_stats stats(void)
{
	struct upcie_sim_stats st;

	upcie_sim_stats(T.sim, &st);
	return st;
}

/* ---- open, enable, close ------------------------------------------------- */

static inline int t_open(const struct upcie_sim_config *cfg)
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
	/* The model powers on with bus mastering off, as a device does. */
	if (upcie_pci_bus_master(T.dev, true))
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

static inline int t_open_default(void)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	return t_open(&cfg);
}

static inline void t_close(void)
{
	if (T.dev && T.mem)
		upcie_pci_dma_unmap(T.dev, T.mem, MEM_LEN, PS, T.bus);
	upcie_pci_close(T.dev);
	upcie_sim_destroy(T.sim);
	free(T.mem);
	free(T.bus);
	memset(&T, 0, sizeof(T));
}

static inline uint32_t cc_val(uint32_t en)
{
	return en | (6u << UPCIE_NVME_CC_IOSQES_SHIFT) | (4u << UPCIE_NVME_CC_IOCQES_SHIFT);
}

/* Write CC; returns CSTS after one step. */
static inline uint32_t t_cc(uint32_t cc)
{
	reg_w(UPCIE_NVME_REG_CC, cc);
	upcie_sim_step(T.sim);
	return reg_r(UPCIE_NVME_REG_CSTS);
}

/* A controller reset (CC cleared); returns CSTS after one step. */
static inline uint32_t t_disable(void)
{
	return t_cc(0);
}

/* Program the admin queue and write CC, without stepping the model. */
static inline void t_setup_aq(uint32_t cc, uint32_t entries)
{
	T.aq = (struct tq){.qid = 0, .size = entries, .phase = 1};
	T.aq.sq = t_alloc(entries * 64);
	T.aq.cq = t_alloc(entries * 16);
	reg_w(UPCIE_NVME_REG_AQA, upcie_nvme_aqa(entries, entries));
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ASQ, (uintptr_t)T.aq.sq);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ACQ, (uintptr_t)T.aq.cq);
	reg_w(UPCIE_NVME_REG_CC, cc);
}

/* Program the admin queue and enable; returns CSTS after one step. */
static inline uint32_t t_enable_with(uint32_t cc, uint32_t entries)
{
	t_setup_aq(cc, entries);
	upcie_sim_step(T.sim);
	return reg_r(UPCIE_NVME_REG_CSTS);
}

static inline uint32_t t_enable(void)
{
	return t_enable_with(cc_val(1), 32);
}

/* Open a controller with cfg and enable it: the test stops when either fails. */
static inline void t_start_with(const struct upcie_sim_config *cfg)
{
	CU_ASSERT_FATAL(t_open(cfg) == 0);
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
}

/* t_start_with() the default configuration. */
static inline void t_start(void)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	t_start_with(&cfg);
}

/* ---- queues and commands ----------------------------------------------------- */

static inline void q_submit(struct tq *q, const struct upcie_nvme_sqe *sqe)
{
	q->sq[q->tail] = *sqe;
	q->tail = (q->tail + 1) % q->size;
	__atomic_thread_fence(__ATOMIC_RELEASE); /* SQE before the doorbell */
	ring_sq(q->qid, q->tail);
}

/* Take one CQE if there is one; the head doorbell is written when ring is true. */
static inline int q_take(struct tq *q, struct upcie_nvme_cqe *out, bool ring)
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
		ring_cq(q->qid, q->head);
	return 1;
}

/* Submit, step once and take the CQE (NO_CQE when there is none). */
static inline uint16_t q_cmd(struct tq *q, const struct upcie_nvme_sqe *sqe,
			     struct upcie_nvme_cqe *out)
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

static inline uint16_t admin(const struct upcie_nvme_sqe *sqe, struct upcie_nvme_cqe *out)
{
	return q_cmd(&T.aq, sqe, out);
}

static inline struct upcie_nvme_sqe create_cq_sqe(uint16_t qid, uint32_t size, void *mem,
						  uint32_t flags)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_CREATE_CQ, .cid = 0x100 + qid};

	s.prp1 = (uintptr_t)mem;
	s.cdw10 = ((size - 1) << 16) | qid;
	s.cdw11 = flags;
	return s;
}

static inline struct upcie_nvme_sqe create_sq_sqe(uint16_t qid, uint32_t size, void *mem,
						  uint16_t cqid, uint32_t flags)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_CREATE_SQ, .cid = 0x200 + qid};

	s.prp1 = (uintptr_t)mem;
	s.cdw10 = ((size - 1) << 16) | qid;
	s.cdw11 = ((uint32_t)cqid << 16) | flags;
	return s;
}

static inline uint16_t create_cq(uint16_t qid, uint32_t size, void *mem, uint32_t flags)
{
	struct upcie_nvme_sqe s = create_cq_sqe(qid, size, mem, flags);

	return admin(&s, NULL);
}

static inline uint16_t create_sq(uint16_t qid, uint32_t size, void *mem, uint16_t cqid,
				 uint32_t flags)
{
	struct upcie_nvme_sqe s = create_sq_sqe(qid, size, mem, cqid, flags);

	return admin(&s, NULL);
}

static inline uint16_t delete_q(uint8_t opc, uint16_t qid)
{
	struct upcie_nvme_sqe s = {.opc = opc, .cid = 0x300 + qid, .cdw10 = qid};

	return admin(&s, NULL);
}

/* Host side of an I/O queue pair with the same id for SQ and CQ. */
static inline void q_init(struct tq *q, uint16_t qid, uint32_t sq_size, uint32_t cq_size)
{
	*q = (struct tq){.qid = qid, .size = sq_size, .phase = 1};
	q->sq = t_alloc(sq_size * 64);
	q->cq = t_alloc(cq_size * 16);
}

/* An I/O queue pair with the same id for SQ and CQ, created on the controller. */
static inline int qpair(struct tq *q, uint16_t qid, uint32_t sq_size, uint32_t cq_size)
{
	q_init(q, qid, sq_size, cq_size);
	if (create_cq(qid, cq_size, q->cq, UPCIE_NVME_QUEUE_PC))
		return -1;
	if (create_sq(qid, sq_size, q->sq, qid, UPCIE_NVME_QUEUE_PC))
		return -1;
	return 0;
}

/* Fill PRP1/PRP2 for buf (a list in T.prp_list when more than two pages). */
static inline void set_prps(struct upcie_nvme_sqe *s, void *buf, size_t len)
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

static inline void rw_sqe(struct upcie_nvme_sqe *s, uint8_t opc, uint32_t nsid, uint64_t slba,
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

static inline uint16_t io(struct tq *q, uint8_t opc, uint32_t nsid, uint64_t slba, uint32_t nlb,
			  void *buf, size_t len)
{
	struct upcie_nvme_sqe s;

	rw_sqe(&s, opc, nsid, slba, nlb, 7);
	set_prps(&s, buf, len);
	return q_cmd(q, &s, NULL);
}

#endif
