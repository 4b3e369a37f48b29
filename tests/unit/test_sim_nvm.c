/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller's NVM commands: reads and writes, PRP checks,
 * CQ phase wrap and back-pressure, random commands (a fuzz test), and the
 * model's own thread. Deterministic: only the last test runs that thread.
 */
#include <time.h>

#include "sim_fixture.h"

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
	t_start();
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

	t_start();
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
	t_start_with(&cfg);
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

/* ---- completion queues ------------------------------------------------------- */

static void test_phase_wrap(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c = {0}; /* read even when no CQE came */
	struct tq q;

	t_start();
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

/* The CQ side of a qpair whose CQ is smaller than its SQ. */
static struct tq cq_view(const struct tq *q, uint32_t cq_size)
{
	struct tq c = *q;

	c.size = cq_size;
	return c;
}

static void test_cq_full(void)
{
	struct upcie_nvme_sqe s;
	struct upcie_nvme_cqe c;
	struct tq q, cq;
	int got = 0;

	t_start();
	CU_ASSERT_EQUAL_FATAL(qpair(&q, 1, 16, 4), 0);
	cq = cq_view(&q, 4);
	upcie_sim_stats_reset(T.sim);
	/* 10 commands behind one doorbell write. */
	for (int i = 0; i < 10; i++) {
		rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, (uint16_t)i);
		q.sq[q.tail] = s;
		q.tail++;
	}
	ring_sq(1, q.tail);
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
	ring_cq(1, cq.head);
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
	ring_cq(1, (cq.head + 2) % 4);
	rw_sqe(&s, UPCIE_NVME_CMD_FLUSH, 1, 0, 1, 99);
	q_submit(&q, &s);
	CU_ASSERT_EQUAL(upcie_sim_step(T.sim), 1);
	CU_ASSERT_EQUAL(q_take(&cq, &c, false), 1);
	CU_ASSERT_EQUAL(c.cid, 99);
	t_close();
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
		t_disable();
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
	t_disable();
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
	t_setup_aq(cc_val(1), 8);
	CU_ASSERT_EQUAL_FATAL(wait_csts(UPCIE_NVME_CSTS_RDY, UPCIE_NVME_CSTS_RDY), 0);

	q_init(&q, 1, 64, 64);
	s = create_cq_sqe(1, 64, q.cq, UPCIE_NVME_QUEUE_PC);
	q_submit(&T.aq, &s);
	CU_ASSERT_EQUAL(wait_cqe(&T.aq, &c), 0);
	s = create_sq_sqe(1, 64, q.sq, 1, UPCIE_NVME_QUEUE_PC);
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

static CU_TestInfo tests[] = {
    {"read/write round trip, both LBA sizes", test_rw},
    {"flush, write zeroes, DSM, invalid nsid", test_nvm_misc},
    {"PRP checks and chained lists", test_prp},
    {"CQ phase tag wrap", test_phase_wrap},
    {"CQ full back-pressure", test_cq_full},
    {"random commands", test_random_commands},
    {"threaded model", test_threaded},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("sim_nvm", sim_suite_init, sim_suite_clean, tests)
