/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller's faults and the hooks a fault explorer
 * drives it with: bus mastering, duplicate / stale / foreign completions
 * seen at the raw CQ, admin commands failed or lost by opcode, bad
 * Identify data and CAP, the DMA hook, bounded steps, and held commands
 * across a reset. Deterministic: the model is stepped by the tests.
 */
#include "sim_fixture.h"
#include "sim/sim_priv.h" /* white box: extra_skipped */

/* ---- helpers ---------------------------------------------------------------- */

#define MAX_XFERS 64

struct xfer {
	uint64_t bus;
	size_t len;
	bool to_host;
};

static struct {
	struct xfer x[MAX_XFERS];
	unsigned n;
} D;

static void dma_rec(void *arg, uint64_t bus, size_t len, bool to_host)
{
	(void)arg;
	if (D.n < MAX_XFERS)
		D.x[D.n] = (struct xfer){bus, len, to_host};
	D.n++;
}

static void dma_watch(void)
{
	memset(&D, 0, sizeof(D));
	upcie_sim_set_dma_hook(T.sim, dma_rec, NULL);
}

static bool xfer_is(unsigned i, const void *p, size_t len, bool to_host)
{
	return i < D.n && D.x[i].bus == (uintptr_t)p && D.x[i].len == len &&
	       D.x[i].to_host == to_host;
}

/* Is the CQ entry at slot i posted in the current lap (phase)? */
static bool cqe_posted(const struct tq *q, uint32_t i, int phase)
{
	return (__atomic_load_n(&q->cq[i].status, __ATOMIC_ACQUIRE) & 1) == phase;
}

static void rw_at(struct upcie_nvme_sqe *s, uint8_t opc, uint64_t slba, uint16_t cid, void *buf,
		  size_t len)
{
	rw_sqe(s, opc, 1, slba, (uint32_t)(len / 512), cid);
	set_prps(s, buf, len);
}

/* A 4 KiB write of buf at slba on q, and the CQE taken with q_cmd's checks. */
static uint16_t write_cid(struct tq *q, uint16_t cid, uint64_t slba, void *buf)
{
	struct upcie_nvme_sqe s;

	rw_at(&s, UPCIE_NVME_CMD_WRITE, slba, cid, buf, PS);
	return q_cmd(q, &s, NULL);
}

static uint16_t identify(uint32_t cns, uint32_t nsid, void *buf)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_IDENTIFY, .cid = 0x40};

	s.cdw10 = cns;
	s.nsid = nsid;
	s.prp1 = (uintptr_t)buf;
	return admin(&s, NULL);
}

/* ---- bus mastering ------------------------------------------------------------ */

static void test_bme_power_on(void)
{
	struct upcie_sim_config cfg;
	struct upcie_sim *sim;

	upcie_sim_config_default(&cfg);
	sim = upcie_sim_create(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sim);
	CU_ASSERT_FALSE(upcie_sim_bus_master(sim)); /* off, as on a real device */
	upcie_sim_destroy(sim);
	CU_ASSERT_FALSE(upcie_sim_bus_master(NULL));

	t_start(); /* the fixture turns it on, as upcie_nvme_ctrl_open() does */
	CU_ASSERT_TRUE(upcie_sim_bus_master(T.sim));
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, false), 0);
	CU_ASSERT_FALSE(upcie_sim_bus_master(T.sim));
	t_close();
}

/* The model started, I/O queue pair 1 (16 entries), a page filled with
 * pattern 'seed' in *w; returns namespace 1's backing memory. */
static uint8_t *start_q1(struct tq *q, unsigned seed, uint8_t **w)
{
	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(q, 1, 16, 16), 0);
	*w = t_alloc(PS);
	fill(*w, PS, seed);
	return upcie_sim_ns_data(T.sim, 1, NULL);
}

static void test_bme_off_waits(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c = {0};
	uint8_t *w, *ns;
	struct tq q;

	ns = start_q1(&q, 3, &w);
	/* An event request waits in the model. */
	s = (struct upcie_nvme_sqe){.opc = UPCIE_NVME_ADM_ASYNC_EVENT, .cid = 0x77};
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	dma_watch();

	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, false), 0);
	struct upcie_sim_stats before = stats();
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 8, 1, w, PS);
	q_submit(&q, &s);
	s = (struct upcie_nvme_sqe){.opc = UPCIE_NVME_ADM_GET_FEATURES, .cid = 0x78};
	s.cdw10 = UPCIE_NVME_FEAT_NUM_QUEUES;
	q_submit(&T.aq, &s);
	CU_ASSERT_EQUAL(upcie_sim_event(T.sim, 1, 2, 3), 0);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
		CU_ASSERT_EQUAL(upcie_sim_step_n(T.sim, 1), 0);
	}
	/* Nothing fetched, nothing moved, nothing posted. */
	CU_ASSERT_EQUAL(D.n, 0);
	CU_ASSERT_EQUAL(stats().io_cmds, before.io_cmds);
	CU_ASSERT_EQUAL(stats().admin_cmds, before.admin_cmds);
	CU_ASSERT_FALSE(cqe_posted(&q, 0, 1));
	CU_ASSERT_FALSE(cqe_posted(&T.aq, T.aq.head, T.aq.phase));
	CU_ASSERT_NOT_EQUAL(memcmp(ns + 8 * 512, w, PS), 0);
	/* Registers still work. */
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_VS), 0x00010400);

	/* Back on: the event, the write and the admin command complete. */
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, true), 0);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 2);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 1);
	CU_ASSERT_EQUAL(c.cid, 1);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&c), 0);
	CU_ASSERT_EQUAL(memcmp(ns + 8 * 512, w, PS), 0);
	CU_ASSERT(D.n == 1 && xfer_is(0, w, PS, false));
	CU_ASSERT_EQUAL(q_take(&T.aq, &c, true), 1);
	CU_ASSERT_EQUAL(c.cid, 0x77);
	CU_ASSERT_EQUAL(c.dw0, 1u | 2u << 8 | 3u << 16);
	CU_ASSERT_EQUAL(q_take(&T.aq, &c, true), 1);
	CU_ASSERT_EQUAL(c.cid, 0x78);
	t_close();
}

/* A reset while bus mastering is off drops what waited; it never runs. */
static void test_bme_off_reset_drops(void)
{
	struct upcie_nvme_sqe s;
	uint8_t *w, *ns;
	struct tq q;

	ns = start_q1(&q, 4, &w);
	dma_watch();
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, false), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 16, 1, w, PS);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(t_disable(), 0); /* registers work without bus mastering */
	CU_ASSERT_EQUAL(upcie_pci_bus_master(T.dev, true), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_FALSE(cqe_posted(&q, 0, 1));
	CU_ASSERT_EQUAL(D.n, 0);
	CU_ASSERT_NOT_EQUAL(memcmp(ns + 16 * 512, w, PS), 0);
	t_close();
}

/* ---- completions a buggy device posts ------------------------------------------ */

static void test_dup_cqe(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe a, b;
	uint8_t *w;
	struct tq q, small;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	w = t_alloc(PS);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_DUP_CQE, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_DUP_CQE, 1, 0), 0);
	CU_ASSERT_EQUAL(write_cid(&q, 5, 0, w), 0);
	/* The same entry again, right behind it. */
	a = q.cq[0];
	CU_ASSERT_EQUAL(q_take(&q, &b, true), 1);
	CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof(a)), 0);
	CU_ASSERT_EQUAL(b.cid, 5);
	/* Used up: the next completion comes once. */
	CU_ASSERT_EQUAL(write_cid(&q, 6, 0, w), 0);
	CU_ASSERT_EQUAL(q_take(&q, &b, true), 0);

	/* A full CQ has no room for the duplicate: skipped and counted. */
	CU_ASSERT_EQUAL_FATAL(qpair(&small, 2, 4, 2), 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_DUP_CQE, 1, 0), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 0, 9, w, PS);
	q_submit(&small, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT(cqe_posted(&small, 0, 1));
	CU_ASSERT_FALSE(cqe_posted(&small, 1, 1));
	CU_ASSERT_EQUAL(T.sim->extra_skipped, 1);
	t_close();
}

static void test_stale_cqe(void)
{
	struct upcie_nvme_cqe c, older[4];
	uint8_t *w;
	struct tq q;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	w = t_alloc(PS);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STALE_CQE, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STALE_CQE, 17, 0), -EINVAL);
	/* Too few entries on the CQ yet: nothing to re-post. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STALE_CQE, 3, 0), 0);
	CU_ASSERT_EQUAL(write_cid(&q, 1, 0, w), 0);
	older[0] = q.cq[0];
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 0);
	CU_ASSERT_EQUAL(T.sim->extra_skipped, 1);
	for (uint16_t cid = 2; cid <= 3; cid++) {
		CU_ASSERT_EQUAL(write_cid(&q, cid, cid, w), 0);
		older[cid - 1] = q.cq[cid - 1];
	}
	/* Posted so far: cid 1, 2, 3. Two back from the next one (cid 4) is cid 2. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STALE_CQE, 2, 0), 0);
	CU_ASSERT_EQUAL(write_cid(&q, 4, 4, w), 0);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 1);
	CU_ASSERT_EQUAL(c.cid, 2);
	CU_ASSERT_EQUAL(c.sqid, 1);
	CU_ASSERT_EQUAL(c.sqhd, older[1].sqhd);
	CU_ASSERT_EQUAL(c.status, older[1].status); /* same lap: same phase */
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 0);
	t_close();
}

static void test_foreign_cqe(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c = {0};
	uint8_t *w;
	struct tq q1, q2;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q1, 1, 16, 16), 0);
	w = t_alloc(PS);
	/* Alone: its own id + 1. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_FOREIGN_CQE, 0, 0), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 0, 1, w, PS);
	q_submit(&q1, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT_EQUAL(q_take(&q1, &c, true), 1);
	CU_ASSERT_EQUAL(c.cid, 1);
	CU_ASSERT_EQUAL(c.sqid, 2);

	/* With another live SQ: that one's id, on this SQ's CQ. */
	CU_ASSERT_EQUAL_FATAL(qpair(&q2, 3, 16, 16), 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_FOREIGN_CQE, 1, 0), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 0, 2, w, PS);
	q_submit(&q1, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT_EQUAL(q_take(&q1, &c, true), 1);
	CU_ASSERT_EQUAL(c.cid, 2);
	CU_ASSERT_EQUAL(c.sqid, 3);
	CU_ASSERT_EQUAL(q_take(&q2, &c, true), 0);
	/* Used up; and the admin CQ never gets it. */
	CU_ASSERT_EQUAL(write_cid(&q1, 3, 0, w), 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_FOREIGN_CQE, 1, 0), 0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, w), 0); /* q_cmd checks sqid 0 */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0), 0);
	CU_ASSERT_EQUAL(write_cid(&q1, 4, 0, w), 0);
	t_close();
}

/* ---- admin commands by opcode ------------------------------------------------------ */

static void test_admin_opc(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_GET_FEATURES, .cid = 0x50};
	struct upcie_nvme_cqe c = {0};
	uint8_t *buf;

	t_start();
	buf = t_alloc(PS);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ADMIN_OPC, 256, 1), -EINVAL);

	/* Fails with the status given, other opcodes untouched, once. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ADMIN_OPC,
					UPCIE_NVME_ADM_GET_FEATURES, UPCIE_NVME_SC_INTERNAL),
			0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, buf), 0);
	s.cdw10 = UPCIE_NVME_FEAT_VOLATILE_WC;
	CU_ASSERT_EQUAL(admin(&s, &c), UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT(c.status & 0x8000); /* DNR */
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, 1);

	/* Status 0: lost. The command ran (volatile write cache off), no CQE. */
	CU_ASSERT_EQUAL(
	    upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ADMIN_OPC, UPCIE_NVME_ADM_SET_FEATURES, 0), 0);
	s.opc = UPCIE_NVME_ADM_SET_FEATURES;
	s.cdw11 = 0;
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	for (int i = 0; i < 3; i++)
		upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(q_take(&T.aq, &c, true), 0);
	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0, 0);

	/* A lost event request is not held: an event finds nothing to complete. */
	CU_ASSERT_EQUAL(
	    upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ADMIN_OPC, UPCIE_NVME_ADM_ASYNC_EVENT, 0), 0);
	s = (struct upcie_nvme_sqe){.opc = UPCIE_NVME_ADM_ASYNC_EVENT, .cid = 0x51};
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(upcie_sim_event(T.sim, 1, 0, 0), 0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(q_take(&T.aq, &c, true), 0);

	/* NONE disarms it. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ADMIN_OPC, UPCIE_NVME_ADM_IDENTIFY,
					UPCIE_NVME_SC_INTERNAL),
			0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0), 0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, buf), 0);
	t_close();
}

/* ---- bad Identify data and CAP ------------------------------------------------------- */

static void test_bad_id(void)
{
	struct upcie_nvme_id_ctrl *ctrl;
	struct upcie_nvme_id_ns *ns;
	uint8_t *buf;
	void *mem;

	t_start();
	buf = t_alloc(PS);
	ctrl = (void *)buf;
	ns = (void *)buf;
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, 6, 0), -EINVAL);

	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, UPCIE_SIM_BAD_ID_MDTS0, 0),
			0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, buf), 0);
	CU_ASSERT_EQUAL(ctrl->mdts, 0);
	CU_ASSERT_EQUAL(ctrl->nn, 2);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, UPCIE_SIM_BAD_ID_NN_HUGE, 0),
			0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, buf), 0);
	CU_ASSERT_EQUAL(ctrl->mdts, 0); /* they add up */
	CU_ASSERT_EQUAL(ctrl->nn, 0xffffffffu);

	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, UPCIE_SIM_BAD_ID_FLBAS, 0),
			0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_NS, 1, buf), 0);
	CU_ASSERT((ns->flbas & 0xf) > ns->nlbaf);
	CU_ASSERT_EQUAL(ns->nsze, 131072);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, UPCIE_SIM_BAD_ID_NSZE0, 0),
			0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_NS, 1, buf), 0);
	CU_ASSERT_EQUAL(ns->nsze, 0);
	CU_ASSERT_EQUAL(ns->ncap, 0);
	/* Namespace 2 is left alone. */
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_NS, 2, buf), 0);
	CU_ASSERT_EQUAL(ns->nsze, 16384);
	CU_ASSERT(upcie_nvme_id_ns_flbas_idx(ns) <= ns->nlbaf);

	/* MQES 0 from the next reset on. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_BAD_ID, UPCIE_SIM_BAD_ID_MQES0, 0),
			0);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mqes(upcie_mmio_read64(T.bar, UPCIE_NVME_REG_CAP)), 1023);
	CU_ASSERT_EQUAL(t_disable(), 0);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mqes(upcie_mmio_read64(T.bar, UPCIE_NVME_REG_CAP)), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	mem = t_alloc(2 * 16);
	CU_ASSERT_EQUAL(create_cq(1, 2, mem, UPCIE_NVME_QUEUE_PC), UPCIE_NVME_SC_QUEUE_SIZE);

	/* NONE: back to good data, CAP at once. */
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mqes(upcie_mmio_read64(T.bar, UPCIE_NVME_REG_CAP)), 1023);
	CU_ASSERT_EQUAL(create_cq(1, 2, mem, UPCIE_NVME_QUEUE_PC), 0);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, buf), 0);
	CU_ASSERT_EQUAL(ctrl->mdts, 5);
	CU_ASSERT_EQUAL(ctrl->nn, 2);
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_NS, 1, buf), 0);
	CU_ASSERT_EQUAL(ns->nsze, 131072);
	CU_ASSERT_EQUAL(ns->flbas, 0);
	t_close();
}

/* ---- the DMA hook -------------------------------------------------------------------- */

static void test_dma_hook(void)
{
	const size_t len = 2 * PS;
	struct upcie_nvme_sqe s;
	uint8_t *w, *r;
	struct tq q;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	w = t_alloc(3 * PS);
	r = t_alloc(3 * PS);
	fill(w, 3 * PS, 7);
	dma_watch();

	/* From an offset: PRP1's partial page, then a PRP list of two pages. */
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 32, 1, w + 512, len);
	CU_ASSERT_EQUAL(s.prp2, (uintptr_t)T.prp_list);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(D.n, 3);
	CU_ASSERT(xfer_is(0, w + 512, PS - 512, false));
	CU_ASSERT(xfer_is(1, w + PS, PS, false));
	CU_ASSERT(xfer_is(2, w + 2 * PS, 512, false));

	D.n = 0;
	rw_at(&s, UPCIE_NVME_CMD_READ, 32, 2, r + 512, len);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_EQUAL(D.n, 3);
	CU_ASSERT(xfer_is(0, r + 512, PS - 512, true));
	CU_ASSERT(xfer_is(1, r + PS, PS, true));
	CU_ASSERT(xfer_is(2, r + 2 * PS, 512, true));
	CU_ASSERT_EQUAL(memcmp(r + 512, w + 512, len), 0);

	/* An SGL Data Block: one piece. */
	D.n = 0;
	rw_sqe(&s, UPCIE_NVME_CMD_READ, 1, 32, 8, 3);
	s.flags = 1u << 6; /* PSDT 01b */
	s.prp1 = (uintptr_t)r;
	s.prp2 = (uint64_t)PS; /* length PS, type Data Block */
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT(D.n == 1 && xfer_is(0, r, PS, true));

	/* Admin data (Identify), and nothing for a transfer that fails its checks. */
	D.n = 0;
	CU_ASSERT_EQUAL(identify(UPCIE_NVME_CNS_CTRL, 0, r), 0);
	CU_ASSERT(D.n == 1 && xfer_is(0, r, PS, true));
	D.n = 0;
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 32, 4, outside, PS);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_EQUAL(D.n, 0);

	/* Off. */
	upcie_sim_set_dma_hook(T.sim, NULL, NULL);
	CU_ASSERT_EQUAL(write_cid(&q, 5, 0, w), 0);
	CU_ASSERT_EQUAL(D.n, 0);
	t_close();
}

/* ---- bounded steps ---------------------------------------------------------------------- */

static void test_step_n(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c = {0};
	struct tq q1, q2;
	uint8_t *w;
	unsigned got[3] = {0};

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q1, 1, 16, 16), 0);
	CU_ASSERT_EQUAL_FATAL(qpair(&q2, 2, 16, 16), 0);
	w = t_alloc(PS);
	CU_ASSERT_EQUAL(upcie_sim_step_n(NULL, 1), -EINVAL);
	for (uint16_t i = 0; i < 3; i++) {
		rw_at(&s, UPCIE_NVME_CMD_WRITE, i, (uint16_t)(0x10 + i), w, PS);
		q_submit(&q1, &s);
		rw_at(&s, UPCIE_NVME_CMD_READ, i, (uint16_t)(0x20 + i), w, PS);
		q_submit(&q2, &s);
		s = (struct upcie_nvme_sqe){.opc = UPCIE_NVME_ADM_GET_FEATURES,
					    .cid = (uint16_t)(0x30 + i)};
		s.cdw10 = UPCIE_NVME_FEAT_NUM_QUEUES;
		q_submit(&T.aq, &s);
	}
	/* 0: registers only: no command of any queue, no completion. */
	uint64_t admin0 = stats().admin_cmds;
	CU_ASSERT_EQUAL(upcie_sim_step_n(T.sim, 0), 0);
	CU_ASSERT_EQUAL(stats().io_cmds, 0);
	CU_ASSERT_EQUAL(stats().admin_cmds, admin0);
	CU_ASSERT_FALSE(q_take(&T.aq, &c, false));

	/* One command per call, the queues taking turns. */
	for (unsigned step = 0; step < 9; step++) {
		unsigned n = 0;

		CU_ASSERT_EQUAL(upcie_sim_step_n(T.sim, 1), 1);
		while (q_take(&T.aq, &c, true)) {
			CU_ASSERT_EQUAL(c.cid, 0x30 + got[0]);
			got[0]++;
			n++;
		}
		while (q_take(&q1, &c, true)) {
			CU_ASSERT_EQUAL(c.cid, 0x10 + got[1]);
			got[1]++;
			n++;
		}
		while (q_take(&q2, &c, true)) {
			CU_ASSERT_EQUAL(c.cid, 0x20 + got[2]);
			got[2]++;
			n++;
		}
		CU_ASSERT_EQUAL(n, 1);
		/* Fair: no queue gets two ahead of another. */
		for (unsigned k = 0; k < 3; k++)
			CU_ASSERT(got[k] <= step / 3 + 1);
	}
	CU_ASSERT(got[0] == 3 && got[1] == 3 && got[2] == 3);
	CU_ASSERT_EQUAL(upcie_sim_step_n(T.sim, 1), 0);

	/* A larger budget: at most that many. */
	for (uint16_t i = 0; i < 4; i++) {
		rw_at(&s, UPCIE_NVME_CMD_WRITE, i, i, w, PS);
		q_submit(&q1, &s);
	}
	CU_ASSERT_EQUAL(upcie_sim_step_n(T.sim, 3), 3);
	CU_ASSERT_EQUAL(upcie_sim_step_n(T.sim, 3), 1);
	t_close();
}

/* ---- held commands across a reset ----------------------------------------------------------- */

static void test_hold_reset(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c = {0};
	uint8_t *w, *ns;
	struct tq q;

	ns = start_q1(&q, 11, &w);
	dma_watch();
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_HOLD, 2, 0), 0);
	for (uint16_t cid = 1; cid <= 2; cid++) {
		rw_at(&s, UPCIE_NVME_CMD_WRITE, 40 + 8 * cid, cid, w, PS);
		q_submit(&q, &s);
	}
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 2);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 0);

	/* The disable is written, not yet stepped: release sees it first. */
	reg_w(UPCIE_NVME_REG_CC, 0);
	CU_ASSERT_EQUAL(upcie_sim_release_held(T.sim), 0);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), 0);

	/* Same queue id again: nothing of the old commands ever shows up. */
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	CU_ASSERT_EQUAL(upcie_sim_release_held(T.sim), 0);
	for (int i = 0; i < 3; i++)
		upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 0);
	CU_ASSERT_EQUAL(D.n, 0);
	CU_ASSERT_NOT_EQUAL(memcmp(ns + 48 * 512, w, PS), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(ns + 56 * 512, w, PS), 0);
	/* The new queue works. */
	CU_ASSERT_EQUAL(write_cid(&q, 3, 64, w), 0);
	CU_ASSERT_EQUAL(memcmp(ns + 64 * 512, w, PS), 0);

	/* Held, then a stepped disable: dropped as well. */
	D.n = 0;
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_HOLD, 1, 0), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 72, 4, w, PS);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT_EQUAL(t_disable(), 0);
	CU_ASSERT_EQUAL(upcie_sim_release_held(T.sim), 0);
	CU_ASSERT_EQUAL(D.n, 0);
	t_close();
}

/* An Abort lost by the device stays lost across a reset: nothing completes later. */
static void test_abort_lost_reset(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c = {0};
	uint8_t *w;
	struct tq q;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0);
	w = t_alloc(PS);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_HOLD, 1, 0), 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ABORT_LOST, 0, 0), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 0, 9, w, PS);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	s = (struct upcie_nvme_sqe){.opc = UPCIE_NVME_ADM_ABORT, .cid = 0x99};
	s.cdw10 = 9u << 16 | 1;
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 0);

	CU_ASSERT_EQUAL(t_disable(), 0);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 16), 0); /* q_cmd checks each admin CQE */
	CU_ASSERT_EQUAL(upcie_sim_release_held(T.sim), 0);
	for (int i = 0; i < 3; i++)
		upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(q_take(&T.aq, &c, true), 0);
	CU_ASSERT_EQUAL(q_take(&q, &c, true), 0);
	/* A new Abort answers normally: nothing to abort. */
	s.cdw10 = 9u << 16 | 1;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0 & 1, 1);
	t_close();
}

/* STALE_CQE reaches as far back as it accepts (16). */
static void test_stale_cqe_16(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct tq q;
	uint8_t *w;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 64, 64), 0);
	w = t_alloc(PS);
	for (uint16_t cid = 1; cid <= 20; cid++) {
		rw_at(&s, UPCIE_NVME_CMD_WRITE, 0, cid, w, PS);
		CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	}
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STALE_CQE, 17, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_STALE_CQE, 16, 0), 0);
	rw_at(&s, UPCIE_NVME_CMD_WRITE, 0, 21, w, PS);
	CU_ASSERT_EQUAL(q_cmd(&q, &s, NULL), 0);
	CU_ASSERT_TRUE_FATAL(q_take(&q, &c, true));
	CU_ASSERT_EQUAL(c.cid, 5); /* 16 before 21 */
	t_close();
}

/* Events: a held request completes only when the model may post and the
 * admin CQ has room; never after a removal, never past a disable the host
 * wrote (whichever call raises the event). */
static void test_event_gates(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_ASYNC_EVENT, .cid = 0x77};
	struct upcie_nvme_cqe c;
	int n = 0;

	/* A full admin CQ: the event waits until the host made room. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_FATAL(t_enable_with(cc_val(1), 4) == UPCIE_NVME_CSTS_RDY);
	q_submit(&T.aq, &s);
	upcie_sim_step(T.sim);
	for (int i = 0; i < 3; i++) {
		struct upcie_nvme_sqe g = {.opc = UPCIE_NVME_ADM_GET_FEATURES,
					   .cid = (uint16_t)(0x10 + i)};

		g.cdw10 = UPCIE_NVME_FEAT_NUM_QUEUES;
		q_submit(&T.aq, &g);
	}
	upcie_sim_step(T.sim); /* 3 of 4 entries: full */
	upcie_pci_bus_master(T.dev, false);
	upcie_sim_event(T.sim, 1, 2, 3);
	upcie_pci_bus_master(T.dev, true);
	upcie_sim_step(T.sim);
	for (int k = 0; k < 3; k++) {
		while (q_take(&T.aq, &c, true))
			n += c.cid == 0x77;
		upcie_sim_step(T.sim);
	}
	CU_ASSERT_EQUAL(n, 1);
	t_close();

	/* Removed: nothing is posted into host memory. */
	t_start();
	q_submit(&T.aq, &s);
	upcie_sim_step(T.sim);
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
	upcie_sim_event(T.sim, 1, 2, 3);
	CU_ASSERT_FALSE(q_take(&T.aq, &c, false));
	t_close();

	/* CC.EN = 0 written, not yet stepped: both event sources see it. */
	for (int how = 0; how < 2; how++) {
		t_start();
		q_submit(&T.aq, &s);
		upcie_sim_step(T.sim);
		reg_w(UPCIE_NVME_REG_CC, 0);
		if (how)
			upcie_sim_set_active_ns(T.sim, 1);
		else
			upcie_sim_event(T.sim, 1, 0, 0);
		CU_ASSERT_FALSE(q_take(&T.aq, &c, false));
		t_close();
	}
}

/* ADMIN_OPC: a status beyond SCT/SC is refused (it would read as "lost"). */
static void test_admin_opc_bad_status(void)
{
	t_start();
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_ADMIN_OPC, 6, 0x800), -EINVAL);
	t_close();
}

static CU_TestInfo tests[] = {
    {"bus mastering: off at power-on", test_bme_power_on},
    {"bus mastering off: no fetch, no DMA, no CQE", test_bme_off_waits},
    {"bus mastering off, then a reset: dropped", test_bme_off_reset_drops},
    {"DUP_CQE", test_dup_cqe},
    {"STALE_CQE", test_stale_cqe},
    {"FOREIGN_CQE", test_foreign_cqe},
    {"ADMIN_OPC: fail and lost", test_admin_opc},
    {"BAD_ID: Identify and CAP", test_bad_id},
    {"DMA hook: exact ranges", test_dma_hook},
    {"step_n: bounded and round-robin", test_step_n},
    {"HOLD: dropped by a reset", test_hold_reset},
    {"ABORT_LOST across a reset", test_abort_lost_reset},
    {"STALE_CQE 16 back", test_stale_cqe_16},
    {"events: full CQ, removal, disable written", test_event_gates},
    {"ADMIN_OPC: bad status refused", test_admin_opc_bad_status},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("sim_faults", sim_suite_init, sim_suite_clean, tests)
