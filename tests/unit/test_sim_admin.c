/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller's admin commands and their statuses, the
 * doorbell counters and shadow doorbells (Doorbell Buffer Config).
 * Deterministic: the model only runs when a test steps it.
 */
#include "sim_fixture.h"

/* ---- admin commands ----------------------------------------------------- */

static void test_identify(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_IDENTIFY, .cid = 9};
	struct upcie_nvme_id_ctrl *ctrl;
	struct upcie_nvme_id_ns *ns;
	uint32_t *list;
	uint8_t *buf;

	t_start();
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

/* Set Features fid to value, then Get Features fid: returns Get's dw0. */
static uint32_t set_get_feature(uint8_t fid, uint32_t value)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_SET_FEATURES, .cid = 3};
	struct upcie_nvme_cqe c = {0};

	s.cdw10 = fid;
	s.cdw11 = value;
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	return c.dw0;
}

static void test_features(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_SET_FEATURES, .cid = 3};
	struct upcie_nvme_cqe c;
	struct tq q;

	t_start();
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
	CU_ASSERT_EQUAL(set_get_feature(UPCIE_NVME_FEAT_VOLATILE_WC, 0), 0);
	CU_ASSERT_EQUAL(set_get_feature(UPCIE_NVME_FEAT_VOLATILE_WC, 1), 1);

	s.opc = UPCIE_NVME_ADM_GET_FEATURES;
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

	t_start();
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

	t_start();
	buf = t_alloc(2 * PS);
	data = t_alloc(8 * PS);
	CU_ASSERT_EQUAL(qpair(&q, 1, 16, 16), 0);

	/* Changed Namespace List: what set_active_ns changed, cleared by a read. */
	s.prp1 = (uintptr_t)buf;
	s.cdw10 = 0x04 | ((4096u / 4 - 1) << 16);
	CU_ASSERT_EQUAL(upcie_sim_set_active_ns(T.sim, 1), 0);
	CU_ASSERT_EQUAL(upcie_sim_set_active_ns(T.sim, 2), 0);
	memset(buf, 0xaa, PS);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(((uint32_t *)(void *)buf)[0], 2);
	CU_ASSERT_EQUAL(((uint32_t *)(void *)buf)[1], 0);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(((uint32_t *)(void *)buf)[0], 0);

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

/* MDTS 0 (no limit): Get Log Page is still bounded (1 MiB); past the log's
 * end the transfer is zeros, and a NUMD of 2^32 dwords is Invalid Field
 * rather than 16 GiB of zeros. */
static void test_log_pages_nolimit(void)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_GET_LOG_PAGE, .cid = 6};
	struct upcie_sim_config cfg;
	const size_t cap = 1u << 20;
	uint32_t numd;
	uint8_t *buf;
	size_t i;

	upcie_sim_config_default(&cfg);
	cfg.mdts = 0;
	t_start_with(&cfg);
	buf = t_alloc(cap + PS);
	CU_ASSERT_FATAL(buf != NULL);

	/* NUMDU:NUMDL all ones: 2^32 dwords. */
	memset(buf, 0xaa, PS);
	s.prp1 = (uintptr_t)buf;
	s.prp2 = (uintptr_t)buf + PS;
	s.cdw10 = UPCIE_NVME_LOG_SMART | (0xffffu << 16);
	s.cdw11 = 0xffff;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(buf[0], 0xaa);
	CU_ASSERT_EQUAL(buf[PS - 1], 0xaa);

	/* One dword over the cap. */
	numd = (uint32_t)(cap / 4) + 1;
	s.cdw10 = UPCIE_NVME_LOG_SMART | (((numd - 1) & 0xffff) << 16);
	s.cdw11 = (numd - 1) >> 16;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(buf[0], 0xaa);

	/* Exactly the cap: the SMART log, then zeros to the end. */
	memset(buf, 0xaa, cap + PS);
	numd = (uint32_t)(cap / 4);
	s.cdw10 = UPCIE_NVME_LOG_SMART | (((numd - 1) & 0xffff) << 16);
	s.cdw11 = (numd - 1) >> 16;
	set_prps(&s, buf, cap);
	CU_ASSERT_EQUAL(admin(&s, NULL), 0);
	CU_ASSERT_EQUAL(buf[1] | (buf[2] << 8), 308);
	for (i = 512; i < cap && !buf[i]; i++)
		;
	CU_ASSERT_EQUAL(i, cap);
	CU_ASSERT_EQUAL(buf[cap], 0xaa);
	t_close();
}

static void test_admin_misc(void)
{
	struct upcie_nvme_sqe s = {.cid = 11};
	struct upcie_nvme_cqe c;

	t_start();
	s.opc = UPCIE_NVME_ADM_ABORT;
	s.cdw10 = (5u << 16) | 1;
	CU_ASSERT_EQUAL(admin(&s, &c), 0);
	CU_ASSERT_EQUAL(c.dw0 & 1, 1);
	s.opc = 0x7e;
	CU_ASSERT_EQUAL(admin(&s, &c), UPCIE_NVME_SC_INVALID_OPCODE);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_dnr(&c), 1);
	/* NVM opcodes are not admin opcodes: Write (0x01) is Create SQ here,
	 * Read (0x02) is Get Log Page; 0x83 is neither (0x80 is Format NVM). */
	s.opc = 0x83;
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_INVALID_OPCODE);

	/* Asynchronous Event Requests are held; one too many is refused. */
	s.opc = UPCIE_NVME_ADM_ASYNC_EVENT;
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(admin(&s, NULL), NO_CQE);
	CU_ASSERT_EQUAL(admin(&s, NULL), UPCIE_NVME_SC_AER_LIMIT);
	t_close();
}

/* ---- doorbells ------------------------------------------------------------- */

static void test_doorbells(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct upcie_sim_stats st;
	struct tq q;

	t_start();
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
	ring_sq(1, 8);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().sq_doorbells, 2);
	ring_sq(1, q.tail);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);

	/* A doorbell of a queue that does not exist does nothing. */
	ring_sq(5, 3);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	t_close();
}

/* The slot of a doorbell in a shadow doorbell or EventIdx page. */
static volatile uint32_t *slot(void *page, uint32_t dboff)
{
	return (volatile uint32_t *)((uint8_t *)page + dboff - UPCIE_NVME_REG_DBS);
}

static volatile uint32_t *sq_slot(void *page, uint16_t qid)
{
	return slot(page, upcie_nvme_sq_db_off(qid, T.dstrd));
}

static volatile uint32_t *cq_slot(void *page, uint16_t qid)
{
	return slot(page, upcie_nvme_cq_db_off(qid, T.dstrd));
}

/* Doorbell Buffer Config with the shadow doorbell and EventIdx pages. */
static uint16_t dbbuf_config(void *sh, void *ei)
{
	struct upcie_nvme_sqe s = {.opc = UPCIE_NVME_ADM_DBBUF_CONFIG, .cid = 2};

	s.prp1 = (uintptr_t)sh;
	s.prp2 = (uintptr_t)ei;
	return admin(&s, NULL);
}

/* A started controller with shadow doorbells on and I/O queue pair 1 of 8
 * entries; sh and ei get the shadow and EventIdx pages. */
static void shadow_start(struct tq *q, uint8_t **sh, uint8_t **ei)
{
	t_start();
	*sh = t_alloc(PS);
	*ei = t_alloc(PS);
	CU_ASSERT_EQUAL(dbbuf_config(*sh, *ei), 0);
	CU_ASSERT_EQUAL(qpair(q, 1, 8, 8), 0);
}

static void test_shadow(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct upcie_sim_stats st;
	uint8_t *sh, *ei;
	struct tq q;

	/* Not offered. */
	upcie_sim_config_default(&cfg);
	cfg.dbbuf = false;
	t_start_with(&cfg);
	CU_ASSERT_EQUAL(dbbuf_config(t_alloc(PS), t_alloc(PS)), UPCIE_NVME_SC_INVALID_OPCODE);
	t_close();

	t_start();
	sh = t_alloc(PS);
	ei = t_alloc(PS);
	CU_ASSERT_EQUAL(dbbuf_config(sh + 8, ei), UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(dbbuf_config(sh, ei + 4), UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(dbbuf_config(sh, outside), UPCIE_NVME_SC_DATA_XFER_ERROR);
	CU_ASSERT_EQUAL(dbbuf_config(sh, ei), 0);
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	upcie_sim_step(T.sim);
	upcie_sim_stats_reset(T.sim);

	/* Shadow only: the model takes the tail from memory, no MMIO write. */
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	q.sq[0] = s;
	q.sq[1] = s;
	q.tail = 2;
	__atomic_store_n(sq_slot(sh, 1), 2, __ATOMIC_RELEASE);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 2);
	st = stats();
	CU_ASSERT_EQUAL(st.sq_doorbells, 0);
	CU_ASSERT_EQUAL(st.shadow_reads, 1);
	CU_ASSERT_EQUAL(*sq_slot(ei, 1), 2);
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	/* CQ head through the shadow. */
	__atomic_store_n(cq_slot(sh, 1), 2, __ATOMIC_RELEASE);
	upcie_sim_step(T.sim);
	st = stats();
	CU_ASSERT_EQUAL(st.shadow_reads, 2);
	CU_ASSERT_EQUAL(st.cq_doorbells, 0);
	CU_ASSERT_EQUAL(*cq_slot(ei, 1), 2);
	/* Nothing new: no reads counted. */
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(stats().shadow_reads, 2);

	/* MMIO writes are still honoured (the shadow is updated first). */
	q.sq[2] = s;
	q.tail = 3;
	*sq_slot(sh, 1) = 3;
	ring_sq(1, 3);
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
	t_disable();
	CU_ASSERT_FATAL(t_enable() == UPCIE_NVME_CSTS_RDY);
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	upcie_sim_stats_reset(T.sim);
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	q.sq[0] = s;
	*sq_slot(sh, 1) = 1;
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().shadow_reads, 0);
	t_close();
}

/* A queue id reused after a delete: stale shadow values are not taken. */
static void test_shadow_reuse(void)
{
	uint8_t *sh, *ei;
	struct tq q;

	shadow_start(&q, &sh, &ei);
	*sq_slot(sh, 1) = 5;
	*cq_slot(sh, 1) = 0;
	for (int i = 0; i < 5; i++)
		rw_sqe(&q.sq[i], UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (uint16_t)i);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 5);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_SQ, 1), 0);
	CU_ASSERT_EQUAL(delete_q(UPCIE_NVME_ADM_DELETE_CQ, 1), 0);
	/* The host has not cleared the slots yet; the model does on create. */
	CU_ASSERT_EQUAL(qpair(&q, 1, 8, 8), 0);
	CU_ASSERT_EQUAL(*sq_slot(sh, 1), 0);
	CU_ASSERT_EQUAL(*sq_slot(ei, 1), 0);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	/* A bad shadow value is ignored once, not counted at every step. */
	upcie_sim_stats_reset(T.sim);
	*sq_slot(sh, 1) = 100;
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 0);
	CU_ASSERT_EQUAL(stats().shadow_reads, 0);
	t_close();
}

/* Shadow doorbell test helpers: put flushes with cids from *cid in the SQ and
 * publish the tail through the shadow only. */
static void shadow_flushes(struct tq *q, uint8_t *sh, int n, uint16_t *cid)
{
	for (int i = 0; i < n; i++) {
		rw_sqe(&q->sq[q->tail], UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (*cid)++);
		q->tail = (q->tail + 1) % q->size;
	}
	__atomic_store_n(sq_slot(sh, q->qid), q->tail, __ATOMIC_RELEASE);
}

/* Take every CQE posted; each must carry the next cid in order. */
static int reap_in_order(struct tq *q, uint16_t *next)
{
	struct upcie_nvme_cqe c;
	int n = 0;

	while (q_take(q, &c, false)) {
		CU_ASSERT_EQUAL(c.cid, *next);
		(*next)++;
		n++;
	}
	return n;
}

/*
 * A host that rings the MMIO SQ tail without updating its shadow (a protocol
 * violation) leaves a stale shadow value behind. The stale value must never
 * be taken later, when the ring has moved on and it would look like a whole
 * lap of new entries: no SQE runs twice.
 */
static void test_shadow_stale_sq(void)
{
	uint16_t cid = 0, next = 0;
	uint8_t *sh, *ei;
	struct tq q;

	shadow_start(&q, &sh, &ei);
	upcie_sim_step(T.sim);
	upcie_sim_stats_reset(T.sim);

	/* Two commands through the shadow. */
	shadow_flushes(&q, sh, 2, &cid);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 2);
	CU_ASSERT_EQUAL(reap_in_order(&q, &next), 2);
	__atomic_store_n(cq_slot(sh, 1), q.head, __ATOMIC_RELEASE);
	/* Two more rung through MMIO only: the shadow still says 2. */
	for (int i = 0; i < 2; i++) {
		rw_sqe(&q.sq[q.tail], UPCIE_NVME_CMD_FLUSH, 1, 0, 1, cid++);
		q.tail = (q.tail + 1) % q.size;
	}
	ring_sq(1, q.tail);
	for (int i = 0; i < 10; i++)
		upcie_sim_step(T.sim);
	reap_in_order(&q, &next);
	CU_ASSERT(stats().io_cmds <= 4);
	/* The host goes on properly: every command runs once, in order. */
	for (int round = 0; round < 6; round++) {
		shadow_flushes(&q, sh, 3, &cid);
		for (int i = 0; i < 3; i++)
			upcie_sim_step(T.sim);
		reap_in_order(&q, &next);
		__atomic_store_n(cq_slot(sh, 1), q.head, __ATOMIC_RELEASE);
		CU_ASSERT(stats().io_cmds <= cid);
	}
	upcie_sim_step(T.sim);
	reap_in_order(&q, &next);
	CU_ASSERT_EQUAL(next, cid);
	CU_ASSERT_EQUAL(stats().io_cmds, cid);
	CU_ASSERT_EQUAL(stats().errors, 0);
	t_close();
}

/*
 * The same for the CQ head: a stale shadow head left behind by MMIO-only
 * head writes must not be taken once enough entries are posted for it to
 * look like a forward move: that would release CQEs the host has not read,
 * and the model would overwrite them.
 */
static void test_shadow_stale_cq(void)
{
	uint16_t cid = 0, next = 0;
	uint8_t *sh, *ei;
	struct upcie_nvme_cqe c;
	struct tq q;

	shadow_start(&q, &sh, &ei);
	upcie_sim_step(T.sim);

	/* CQ head 2 through the shadow. */
	shadow_flushes(&q, sh, 2, &cid);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(reap_in_order(&q, &next), 2);
	__atomic_store_n(cq_slot(sh, 1), q.head, __ATOMIC_RELEASE);
	upcie_sim_step(T.sim);
	/* Five posted (CQ 2..6); the host reads two and rings MMIO only. */
	shadow_flushes(&q, sh, 5, &cid);
	upcie_sim_step(T.sim);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
		CU_ASSERT_EQUAL(c.cid, next);
		next++;
	}
	ring_cq(1, q.head);
	upcie_sim_step(T.sim);
	/* Three more (the CQ fills up), then one more read, rung through MMIO. */
	shadow_flushes(&q, sh, 3, &cid);
	upcie_sim_step(T.sim);
	CU_ASSERT_EQUAL(q_take(&q, &c, false), 1);
	CU_ASSERT_EQUAL(c.cid, next);
	next++;
	ring_cq(1, q.head);
	upcie_sim_step(T.sim);
	/* More commands: their completions must not land on unread CQEs. */
	shadow_flushes(&q, sh, 5, &cid);
	for (int i = 0; i < 4; i++)
		upcie_sim_step(T.sim);
	/* Every CQE the host has not read is still there, in order. */
	reap_in_order(&q, &next);
	/* Back to the protocol: the rest completes, each command once. */
	for (int i = 0; i < 8 && next < cid; i++) {
		__atomic_store_n(cq_slot(sh, 1), q.head, __ATOMIC_RELEASE);
		upcie_sim_step(T.sim);
		reap_in_order(&q, &next);
	}
	CU_ASSERT_EQUAL(next, cid);
	CU_ASSERT_EQUAL(stats().errors, 0);
	t_close();
}

/* With a wide doorbell stride only the queues whose slots fit in the page
 * have shadows; the others use MMIO and the model writes nothing past the page. */
static void test_shadow_stride(void)
{
	struct upcie_sim_config cfg;
	struct upcie_nvme_sqe s;
	uint8_t *sh, *ei, *after;
	struct upcie_nvme_cqe c;
	struct tq q1, q10;

	upcie_sim_config_default(&cfg);
	cfg.dstrd = 6; /* 256-byte stride: qids 0..7 fit in a 4 KiB page */
	t_start_with(&cfg);
	sh = t_alloc(PS);
	ei = t_alloc(PS);
	after = t_alloc(PS);
	memset(after, 0xee, PS);
	CU_ASSERT_EQUAL(dbbuf_config(sh, ei), 0);
	CU_ASSERT_EQUAL(qpair(&q1, 1, 8, 8), 0);
	CU_ASSERT_EQUAL(qpair(&q10, 10, 8, 8), 0);
	upcie_sim_step(T.sim);
	upcie_sim_stats_reset(T.sim);
	rw_sqe(&q1.sq[0], UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 1);
	*sq_slot(sh, 1) = 1;
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

static CU_TestInfo tests[] = {
    {"identify", test_identify},
    {"set and get features", test_features},
    {"create and delete queues", test_create_delete},
    {"log pages", test_log_pages},
    {"log pages without an MDTS limit", test_log_pages_nolimit},
    {"abort, AER, unknown opcode", test_admin_misc},
    {"doorbell counters", test_doorbells},
    {"shadow doorbells and EventIdx", test_shadow},
    {"shadow slots of a reused queue id", test_shadow_reuse},
    {"shadow doorbells with a wide stride", test_shadow_stride},
    {"a stale SQ shadow after an MMIO ring", test_shadow_stale_sq},
    {"a stale CQ shadow after an MMIO ring", test_shadow_stale_cq},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("sim_admin", sim_suite_init, sim_suite_clean, tests)
