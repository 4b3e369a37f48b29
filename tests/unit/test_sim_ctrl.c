/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller as a device: configuration checks, registers
 * and config space, enable, disable and shutdown, and the injected faults.
 * Deterministic: the model only runs when a test steps it.
 */
#include "sim_fixture.h"

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
	CU_ASSERT_EQUAL(t_cc(cc_val(0)), 0);
	CU_ASSERT_EQUAL(reg_r(upcie_nvme_sq_db_off(0, dstrd)), 0);
	CU_ASSERT_EQUAL(reg_r(upcie_nvme_sq_db_off(1, dstrd)), 0);
	CU_ASSERT_EQUAL(t_enable() & UPCIE_NVME_CSTS_RDY, UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(stats().enables, 2);
	/* Queue 1 is gone: it can be created again. */
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);

	/* Shutdown. */
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(t_cc(cc_val(1) | UPCIE_NVME_CC_SHN_NORMAL)), 2);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().shutdowns, 1);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(t_cc(cc_val(1))), 0);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(t_cc(cc_val(1) | UPCIE_NVME_CC_SHN_ABRUPT)), 2);
	CU_ASSERT_EQUAL(stats().shutdowns, 2);
	CU_ASSERT_EQUAL(t_disable(), 0);
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

/* A fresh controller enabled with cc and an admin queue of entries: CFS. */
static void expect_cfs(uint32_t cc, uint32_t entries)
{
	CU_ASSERT_FATAL(t_open_default() == 0);
	CU_ASSERT_EQUAL(t_enable_with(cc, entries), UPCIE_NVME_CSTS_CFS);
	t_close();
}

static void test_enable_invalid(void)
{
	uint32_t csts;

	/* Wrong I/O queue entry sizes. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	csts = t_enable_with(1, 32);
	CU_ASSERT_EQUAL(csts & (UPCIE_NVME_CSTS_RDY | UPCIE_NVME_CSTS_CFS), UPCIE_NVME_CSTS_CFS);
	/* A reset clears CFS; a good configuration then works. */
	CU_ASSERT_EQUAL(t_disable(), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	t_close();

	/* MPS above MPSMAX. */
	expect_cfs(cc_val(1) | (5u << UPCIE_NVME_CC_MPS_SHIFT), 32);
	/* Command set other than NVM. */
	expect_cfs(cc_val(1) | (7u << UPCIE_NVME_CC_CSS_SHIFT), 32);
	/* A one-entry admin queue. */
	expect_cfs(cc_val(1), 1);

	/* ASQ not page aligned. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	t_enable_with(0, 32);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ASQ, (uintptr_t)T.aq.sq + 64);
	CU_ASSERT_EQUAL(t_cc(cc_val(1)), UPCIE_NVME_CSTS_CFS);
	t_close();

	/* ACQ outside registered memory. */
	CU_ASSERT_FATAL(t_open_default() == 0);
	t_enable_with(0, 32);
	upcie_mmio_write64(T.bar, UPCIE_NVME_REG_ACQ, (uintptr_t)outside);
	CU_ASSERT_EQUAL(t_cc(cc_val(1)), UPCIE_NVME_CSTS_CFS);
	CU_ASSERT_EQUAL(stats().xfer_errors, 1);
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

	t_start();
	CU_ASSERT_EQUAL(upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_CFS, 0, 0), 0);
	CU_ASSERT_EQUAL(reg_r(UPCIE_NVME_REG_CSTS), UPCIE_NVME_CSTS_RDY | UPCIE_NVME_CSTS_CFS);
	/* Nothing is processed. */
	CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(stats().admin_cmds, 0);
	/* A controller reset clears it. */
	CU_ASSERT_EQUAL(t_disable(), 0);
	CU_ASSERT_EQUAL(t_enable(), UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	/* And so does FAULT_NONE. */
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_CFS, 0, 0);
	upcie_sim_fault(T.sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	t_close();
}

/* A started controller with I/O queue pair 1 (8 entries), a page of host
 * memory and namespace 1's data; the statistics start from zero. */
static void start_io(struct tq *q, uint8_t **buf, uint8_t **ns)
{
	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(q, 1, 8, 8), 0);
	*buf = t_alloc(PS);
	*ns = upcie_sim_ns_data(T.sim, 1, NULL);
	upcie_sim_stats_reset(T.sim);
}

static void test_fault_drop(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	uint8_t *buf, *ns;
	struct tq q;

	start_io(&q, &buf, &ns);
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

	start_io(&q, &buf, &ns);
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

	t_start();
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
	CU_ASSERT_EQUAL(t_disable(), 0xffffffff);
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
	t_start();
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

	t_start();
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
	CU_ASSERT_EQUAL(t_disable(), 0);
	t_close();
	free(extra);
}

static CU_TestInfo tests[] = {
    {"config defaults and validation", test_config},
    {"registers and config space", test_registers},
    {"enable, disable, shutdown (DSTRD 0)", test_state_dstrd0},
    {"enable, disable, shutdown (DSTRD 2)", test_state_dstrd2},
    {"enable with an invalid configuration", test_enable_invalid},
    {"fault arguments", test_fault_args},
    {"fault RDY_NEVER", test_fault_rdy_never},
    {"fault CFS", test_fault_cfs},
    {"fault DROP_CQE", test_fault_drop},
    {"fault STATUS_NTH", test_fault_status},
    {"fault REMOVED", test_fault_removed},
    {"fault SHN_NEVER", test_fault_shn_never},
    {"queue memory unmapped while live", test_unmapped_queue},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("sim_ctrl", sim_suite_init, sim_suite_clean, tests)
