/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Controller bring-up, shutdown, identify, admin commands, and every
 * injected fault: each must end with its error within the deadline and
 * leave the DMA heap empty (fx_close checks) and nothing for ASan to find.
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"

static void sim_cfg(struct upcie_sim_config *cfg)
{
	upcie_sim_config_default(cfg);
	cfg->to = 1; /* 500 ms: keeps the fault tests short */
}

static void check_bringup(uint8_t dstrd)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_ctrl_info info;
	struct upcie_sim_stats st;
	struct fx f;

	sim_cfg(&cfg);
	cfg.dstrd = dstrd;
	CU_ASSERT_FATAL(fx_open_opts(&f, &cfg, 0, false, NULL) == 0);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.dstrd, dstrd);
	CU_ASSERT_EQUAL(info.page_size, 4096);
	CU_ASSERT_EQUAL(info.timeout_ms, 500);
	CU_ASSERT_EQUAL(info.nr_ns, 2);

	/* I/O through a queue whose doorbells sit at the strided offsets. */
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_get(f.ctrl, 1);
	char *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	uint16_t status = 0xffff;
	memset(buf, 0x5a, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, 8, 8, buf, &status, 0), 0);
	memset(buf, 0, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 8, 8, buf, &status, 0), 0);
	CU_ASSERT_EQUAL(status, 0);
	CU_ASSERT_EQUAL(buf[0], 0x5a);
	CU_ASSERT_EQUAL(buf[4095], 0x5a);
	upcie_dma_free(f.heap, buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);

	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f.ctrl), 0);
	f.ctrl = NULL;
	upcie_sim_stats(f.sim, &st);
	CU_ASSERT_EQUAL(st.enables, 1);
	CU_ASSERT_EQUAL(st.shutdowns, 1);
	fx_close(&f);
}

static void test_bringup_dstrd0(void)
{
	FX_SIM_ONLY();
	check_bringup(0);
}

static void test_bringup_dstrd2(void)
{
	FX_SIM_ONLY();
	check_bringup(2);
}

/* Open, close and open again on the same device. */
/* Data written before a close is there after the reopen. */
static void test_reopen(void)
{
	struct upcie_nvme_qpair *qp;
	struct fx f;
	uint16_t st;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	uint32_t nsid = ns->nsid, lbs = ns->lba_size;
	uint8_t *buf = upcie_dma_alloc(f.heap, 2 * lbs, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (uint32_t i = 0; i < 2 * lbs; i++)
		buf[i] = (uint8_t)(i * 13 + 7);
	qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, 40, 2, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f.ctrl), 0); /* destroys qp too */

	memset(buf, 0, 2 * lbs);
	f.ctrl = upcie_nvme_ctrl_open(f.dev, f.heap, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.ctrl);
	ns = upcie_nvme_ns_get(f.ctrl, nsid);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
	qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 40, 2, buf, &st, 0), 0);
	unsigned bad = 0;
	for (uint32_t i = 0; i < 2 * lbs; i++)
		bad += buf[i] != (uint8_t)(i * 13 + 7);
	CU_ASSERT_EQUAL(bad, 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static void test_identify(void)
{
	struct upcie_nvme_ctrl_info info;
	struct fx f;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	const struct upcie_nvme_id_ctrl *id = upcie_nvme_ctrl_id(f.ctrl);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT(info.nr_ns >= 1);
	CU_ASSERT(id->nn >= info.nr_ns);
	CU_ASSERT_EQUAL(id->sqes & 0xf, 6);
	CU_ASSERT_EQUAL(id->cqes & 0xf, 4);
	CU_ASSERT(info.io_qpairs_max >= 1);
	CU_ASSERT(info.max_xfer_bytes >= 4096);
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl); ns;
	     ns = upcie_nvme_ns_next(f.ctrl, ns)) {
		CU_ASSERT(ns->nsid >= 1);
		CU_ASSERT(ns->lba_size == 512 || ns->lba_size == 4096);
		CU_ASSERT_EQUAL(1u << ns->lba_shift, ns->lba_size);
		CU_ASSERT(ns->nsze > 0);
		CU_ASSERT_EQUAL(ns->max_xfer_blocks, info.max_xfer_bytes / ns->lba_size);
		CU_ASSERT_PTR_EQUAL(upcie_nvme_ns_get(f.ctrl, ns->nsid), ns);
	}
	CU_ASSERT_PTR_NULL(upcie_nvme_ns_get(f.ctrl, 0));
	CU_ASSERT_PTR_NULL(upcie_nvme_ns_get(f.ctrl, 0xfffffffe));

	if (f.sim) {
		/* The defaults of upcie_sim_config_default(). */
		const struct upcie_nvme_ns *n1 = upcie_nvme_ns_get(f.ctrl, 1);
		const struct upcie_nvme_ns *n2 = upcie_nvme_ns_get(f.ctrl, 2);
		struct upcie_sim_config cfg;
		upcie_sim_config_default(&cfg);
		CU_ASSERT_EQUAL(info.nr_ns, 2);
		CU_ASSERT_EQUAL(id->nn, 2);
		CU_ASSERT_EQUAL(strncmp(id->sn, cfg.serial, strlen(cfg.serial)), 0);
		CU_ASSERT_EQUAL(id->mdts, cfg.mdts);
		CU_ASSERT_EQUAL(info.max_xfer_bytes, 4096u << cfg.mdts);
		CU_ASSERT_EQUAL(info.io_sq_granted, cfg.max_ioqpairs);
		CU_ASSERT_EQUAL(info.mqes, cfg.mqes + 1u);
		CU_ASSERT_PTR_NOT_NULL_FATAL(n1);
		CU_ASSERT_PTR_NOT_NULL_FATAL(n2);
		CU_ASSERT_EQUAL(n1->lba_size, cfg.ns[0].lba_size);
		CU_ASSERT_EQUAL(n1->nsze, cfg.ns[0].nlbas);
		CU_ASSERT_EQUAL(n2->lba_size, cfg.ns[1].lba_size);
		CU_ASSERT_EQUAL(n2->nsze, cfg.ns[1].nlbas);
		CU_ASSERT_EQUAL(n1->max_xfer_blocks, (4096u << cfg.mdts) / 512);
		CU_ASSERT_EQUAL(n2->max_xfer_blocks, (4096u << cfg.mdts) / 4096);
	}
	fx_close(&f);
}

static void test_log_pages(void)
{
	struct fx f;
	uint16_t st = 0xffff;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	void *mem = upcie_dma_alloc(f.heap, 4096, 4096);
	struct upcie_nvme_smart_log *smart = mem;
	memset(smart, 0xee, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_get_log_page(f.ctrl, UPCIE_NVME_LOG_SMART, 0xffffffff, smart,
						sizeof(*smart), &st),
			0);
	CU_ASSERT_EQUAL(st, 0);
	CU_ASSERT(smart->temperature > 200 && smart->temperature < 400); /* Kelvin */
	struct upcie_nvme_error_log *err = mem;
	CU_ASSERT_EQUAL(
	    upcie_nvme_get_log_page(f.ctrl, UPCIE_NVME_LOG_ERROR, 0, err, sizeof(*err), &st), 0);
	/* A log page that does not exist. */
	CU_ASSERT_EQUAL(upcie_nvme_get_log_page(f.ctrl, 0x7f, 0, smart, 512, &st), -EIO);
	/* The spec's status is Invalid Log Page; QEMU answers Invalid Field. */
	if (f.sim)
		CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_INVALID_LOG_PAGE);
	CU_ASSERT(st == UPCIE_NVME_SC_INVALID_LOG_PAGE || st == UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(upcie_nvme_get_log_page(f.ctrl, UPCIE_NVME_LOG_SMART, 0, smart, 3, &st),
			-EINVAL);
	/* Admin transfers above one page (PRP list on the admin queue). */
	void *big = upcie_dma_alloc(f.heap, 16384, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_get_log_page(f.ctrl, UPCIE_NVME_LOG_ERROR, 0, big, 16384, &st),
			0);
	upcie_dma_free(f.heap, big);
	upcie_dma_free(f.heap, mem);
	fx_close(&f);
}

static void test_admin_status(void)
{
	struct upcie_nvme_sqe sqe = {.opc = 0x7e}; /* not an admin opcode */
	struct upcie_nvme_cqe cqe;
	struct fx f;
	uint32_t res = 0;
	uint16_t st = 0;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	CU_ASSERT_EQUAL(upcie_nvme_admin(f.ctrl, &sqe, NULL, 0, &cqe, 0), -EIO);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_OPCODE);
	/* Identify of an inactive namespace. */
	void *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_identify(f.ctrl, UPCIE_NVME_CNS_NS, 0xfffffffe, buf, &st), -EIO);
	CU_ASSERT(st == UPCIE_NVME_SC_INVALID_NS || st == UPCIE_NVME_SC_INVALID_FIELD);
	/* A buffer outside the heap is refused before it reaches the device. */
	static char outside[4096];
	CU_ASSERT_EQUAL(upcie_nvme_identify(f.ctrl, UPCIE_NVME_CNS_CTRL, 0, outside, &st), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			0);
	CU_ASSERT(res != 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* ---- faults (sim only) ---- */

static struct fx fault_fx(enum upcie_sim_fault fault, uint32_t arg, bool open_first)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_ctrl_opts o = {.admin_timeout_ms = 300};
	struct fx f;

	sim_cfg(&cfg);
	CU_ASSERT_FATAL(fx_open_opts(&f, &cfg, 0, !open_first, &o) == 0);
	upcie_sim_fault(f.sim, fault, arg, 0);
	return f;
}

static void test_fault_rdy_never(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_RDY_NEVER, 0, false);
	double t0 = fx_now();

	errno = 0;
	f.ctrl = upcie_nvme_ctrl_open(f.dev, f.heap, NULL);
	double dt = fx_now() - t0;
	CU_ASSERT_PTR_NULL(f.ctrl);
	CU_ASSERT_EQUAL(errno, ETIMEDOUT);
	CU_ASSERT(strstr(upcie_errmsg(), "CSTS.RDY") != NULL);
	/* The message is the enable's, not the clean-up's. */
	CU_ASSERT(strstr(upcie_errmsg(), "enabling") != NULL);
	/* One CAP.TO (500 ms), not two: the clean-up does not wait again. */
	CU_ASSERT(dt >= 0.45 && dt < 0.95);
	/* And the controller is left disabled, not pointing at freed queues. */
	void *regs;
	CU_ASSERT_EQUAL_FATAL(upcie_pci_bar_map(f.dev, 0, &regs, NULL), 0);
	upcie_sim_step(f.sim);
	CU_ASSERT_EQUAL(upcie_mmio_read32(regs, UPCIE_NVME_REG_CC) & UPCIE_NVME_CC_EN, 0);
	fx_close(&f);
}

static void test_fault_cfs(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_CFS, 0, true);
	uint32_t res;
	uint16_t st;
	double t0 = fx_now();

	struct upcie_nvme_ctrl_info info;

	/* CFS while an admin command waits: it fails with the controller-fatal
	 * errno, and the controller is reset (auto reset is on by default). */
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			-ENOTRECOVERABLE);
	CU_ASSERT(fx_now() - t0 < 3.0);
	CU_ASSERT(strstr(upcie_errmsg(), "Controller Fatal Status") != NULL);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_EQUAL(info.resets, 1);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			0);
	/* Close still frees everything. */
	upcie_nvme_ctrl_close(f.ctrl);
	f.ctrl = NULL;
	fx_close(&f);
}

static void test_fault_drop_cqe(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_NONE, 0, true);
	struct upcie_dma_heap_info before, after;
	uint32_t res;
	uint16_t st;

	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	double t0 = fx_now();

	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			-ETIMEDOUT);
	double dt = fx_now() - t0;
	CU_ASSERT(dt >= 0.25 && dt < 3.0); /* admin_timeout_ms = 300 */
	CU_ASSERT(strstr(upcie_errmsg(), "was reset") != NULL);
	/* The reset brought the controller back: admin commands work, and the
	 * qpair re-creates itself and is deleted cleanly. */
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			0);
	upcie_dma_heap_info(f.heap, &before);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	upcie_dma_heap_info(f.heap, &after);
	CU_ASSERT(after.used < before.used);
	upcie_nvme_ctrl_close(f.ctrl);
	f.ctrl = NULL;
	fx_close(&f);
}

static void test_fault_status_nth(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_NONE, 0, true);
	uint32_t res;
	uint16_t st = 0;

	/* The 2nd command from now fails with Internal Error. */
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 2, UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			-EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_INTERNAL);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			0);

	/* Same on the I/O path: the error reaches the callback. */
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	void *buf = upcie_dma_alloc(f.heap, 512, 512);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_STATUS_NTH, 1, UPCIE_NVME_SC_UNRECOVERED_READ);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, upcie_nvme_ns_get(f.ctrl, 1), 0, 1, buf, &st, 0),
			-EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_UNRECOVERED_READ);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static void test_fault_removed(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_NONE, 0, true);
	uint32_t res;
	uint16_t st;
	double t0 = fx_now();

	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_REMOVED, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_get_features(f.ctrl, UPCIE_NVME_FEAT_NUM_QUEUES, 0, &res, &st),
			-ENODEV);
	CU_ASSERT(fx_now() - t0 < 3.0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f.ctrl), -ENODEV);
	f.ctrl = NULL;
	/* Opening a removed controller fails the same way, at once. */
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_open(f.dev, f.heap, NULL));
	CU_ASSERT_EQUAL(errno, ENODEV);
	fx_close(&f);
}

static void test_fault_shutdown_never(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_SHN_NEVER, 0, true);
	double t0 = fx_now();

	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f.ctrl), -ETIMEDOUT);
	CU_ASSERT(fx_now() - t0 < 3.0);
	f.ctrl = NULL;
	fx_close(&f);
}

/* Queue ids are limited to what Set Features granted. */
static void test_qpairs_beyond_granted(void)
{
	struct upcie_nvme_qpair *qp[70];
	struct upcie_nvme_ctrl_info info;
	struct upcie_dma_heap_info before, after;
	struct fx f;
	unsigned n = 0;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	CU_ASSERT_FATAL(info.io_qpairs_max <= 64);
	struct upcie_nvme_qpair_opts o = {.depth = 16};
	for (n = 0; n < info.io_qpairs_max; n++) {
		qp[n] = upcie_nvme_qpair_create(f.ctrl, &o);
		CU_ASSERT_PTR_NOT_NULL(qp[n]);
		if (!qp[n])
			break;
	}
	upcie_dma_heap_info(f.heap, &before);
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_qpair_create(f.ctrl, &o));
	CU_ASSERT_EQUAL(errno, ENOSPC);
	upcie_dma_heap_info(f.heap, &after);
	CU_ASSERT_EQUAL(before.used, after.used);
	/* Freeing one makes room again. */
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp[0]), 0);
	qp[0] = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL(qp[0]);
	for (unsigned i = 0; i < n; i++)
		upcie_nvme_qpair_destroy(qp[i]);
	fx_close(&f);
}

/* A namespace formatted with metadata is listed, but I/O on it is refused
 * (the library moves data only; the device would move more). */
static void test_metadata_ns_refused(void)
{
	FX_SIM_ONLY();
	struct upcie_sim_config cfg;
	struct fx f;
	uint16_t st;

	sim_cfg(&cfg);
	cfg.ns[1].ms = 8;
	CU_ASSERT_FATAL(fx_open_opts(&f, &cfg, 0, false, NULL) == 0);
	const struct upcie_nvme_ns *md = upcie_nvme_ns_get(f.ctrl, 2);
	const struct upcie_nvme_ns *plain = upcie_nvme_ns_get(f.ctrl, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(md);
	CU_ASSERT_EQUAL(md->ms, 8);
	CU_ASSERT_EQUAL(md->max_xfer_blocks, 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	void *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, md, 0, 1, buf, NULL, NULL, UPCIE_NVME_SUBMIT_RING),
			-ENOTSUP);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, md, 0, 1, buf, &st, 0), -ENOTSUP);
	CU_ASSERT(strstr(upcie_errmsg(), "metadata") != NULL);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, plain, 0, 1, buf, &st, 0), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* Create I/O CQ whose completion never comes: the error says so once (no
 * garbled, self-overlapping message), and the queue memory the device may
 * own is kept out of reuse until close. */
static void test_create_cq_timeout(void)
{
	FX_SIM_ONLY();
	struct fx f = fault_fx(UPCIE_SIM_FAULT_NONE, 0, true);
	struct upcie_dma_heap_info before, after;

	upcie_dma_heap_info(f.heap, &before);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_qpair_create(f.ctrl, NULL));
	CU_ASSERT_EQUAL(errno, ETIMEDOUT);
	const char *m = upcie_errmsg();
	const char *first = strstr(m, "Create I/O CQ");
	CU_ASSERT_PTR_NOT_NULL(first);
	CU_ASSERT(first && strstr(first + 1, "Create I/O CQ") == NULL);
	CU_ASSERT(strstr(m, "no completion within") != NULL);
	upcie_dma_heap_info(f.heap, &after);
	CU_ASSERT(after.used > before.used);
	upcie_nvme_ctrl_close(f.ctrl);
	f.ctrl = NULL;
	fx_close(&f); /* every byte back after the reset */
}

static CU_TestInfo tests[] = {
    {"bring-up and shutdown, DSTRD 0", test_bringup_dstrd0},
    {"bring-up and shutdown, DSTRD 2", test_bringup_dstrd2},
    {"close and reopen finds the data", test_reopen},
    {"identify controller and namespaces", test_identify},
    {"log pages", test_log_pages},
    {"admin error statuses", test_admin_status},
    {"fault: RDY never set", test_fault_rdy_never},
    {"fault: CSTS.CFS", test_fault_cfs},
    {"fault: dropped completion", test_fault_drop_cqe},
    {"fault: error status on the Nth command", test_fault_status_nth},
    {"fault: device removed", test_fault_removed},
    {"fault: shutdown never completes", test_fault_shutdown_never},
    {"qpairs beyond the granted count", test_qpairs_beyond_granted},
    {"namespace with metadata refused", test_metadata_ns_refused},
    {"Create I/O CQ timeout", test_create_cq_timeout},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("nvme_ctrl", NULL, NULL, tests)
