/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * I/O queue pairs: creation and depth clamping, phase tags across
 * thousands of wraps, queue full, data integrity on namespaces of two LBA
 * sizes, PRP lists through the device, error statuses, doorbell batching,
 * abort on destroy, sync timeouts, shadow doorbells.
 */
#include <errno.h>
#include <string.h>

#include "fixture.h"
#include "nvme/queue.h" /* white box: which path took a read */

/* A pattern that differs per namespace, LBA and byte. */
static uint8_t pat(uint32_t nsid, uint64_t lba, uint32_t i, uint32_t gen)
{
	return (uint8_t)(nsid * 131 + lba * 31 + i * 7 + (i >> 8) + gen * 17);
}

static void fill(uint8_t *buf, const struct upcie_nvme_ns *ns, uint64_t slba, uint32_t nlb,
		 uint32_t gen)
{
	for (uint32_t b = 0; b < nlb; b++)
		for (uint32_t i = 0; i < ns->lba_size; i++)
			buf[(size_t)b * ns->lba_size + i] = pat(ns->nsid, slba + b, i, gen);
}

static unsigned mismatches(const uint8_t *buf, const struct upcie_nvme_ns *ns, uint64_t slba,
			   uint32_t nlb, uint32_t gen)
{
	unsigned bad = 0;

	for (uint32_t b = 0; b < nlb; b++)
		for (uint32_t i = 0; i < ns->lba_size; i++)
			bad += buf[(size_t)b * ns->lba_size + i] != pat(ns->nsid, slba + b, i, gen);
	return bad;
}

static void test_create_clamp(void)
{
	struct upcie_nvme_ctrl_info info;
	struct fx f;

	if (fx_is_sim()) {
		struct upcie_sim_config cfg;
		upcie_sim_config_default(&cfg);
		cfg.mqes = 63;
		CU_ASSERT_FATAL(fx_open_opts(&f, &cfg, 0, false, NULL) == 0);
	} else {
		CU_ASSERT_FATAL(fx_open(&f) == 0);
	}
	upcie_nvme_ctrl_info(f.ctrl, &info);
	struct upcie_nvme_qpair_opts o = {.depth = 65535};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_depth(qp), info.mqes);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_cq_depth(qp), info.mqes);
	CU_ASSERT(upcie_nvme_qpair_id(qp) >= 1);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	CU_ASSERT(upcie_nvme_qpair_mem(qp) > 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);

	o.depth = 1;
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_qpair_create(f.ctrl, &o));
	CU_ASSERT_EQUAL(errno, EINVAL);

	/* The CQ: by default a memory page of entries (or the depth, if more),
	 * within MQES + 1; explicit, at least the depth. */
	uint32_t page_entries = info.page_size / 16;
	uint32_t want = page_entries < info.mqes ? page_entries : info.mqes;
	o.depth = 2;
	qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_depth(qp), 2);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_cq_depth(qp), want);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	o.depth = 8;
	o.cq_depth = 8;
	qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_cq_depth(qp), 8);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	o.cq_depth = 7;
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_nvme_qpair_create(f.ctrl, &o));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_STRING_EQUAL(upcie_errmsg(),
			       "completion queue of 7 entries for a queue of 8: it needs at least "
			       "as many (or 0 for the default)");
	fx_close(&f);
}

/*
 * Depth-4 queue: 3 commands in flight. With a 4-entry CQ, 12000 commands
 * are 3000 wraps of the CQ phase; with the default CQ (a page of entries,
 * larger than the SQ) the SQ and the CQ wrap at different places.
 */
static void phase_wraps(uint32_t cq_depth)
{
	struct upcie_nvme_qpair_opts o = {.depth = 4, .cq_depth = cq_depth};
	struct fx_counter cnt = {0};
	struct fx f;
	const unsigned total = fx_is_sim() ? 12000 : 3000;
	unsigned submitted = 0;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	uint8_t *buf = upcie_dma_alloc(f.heap, 3 * ns->lba_size, 4096);
	double deadline = fx_now() + 60;

	while (cnt.done < total && fx_now() < deadline) {
		while (submitted < total && upcie_nvme_read(qp, ns, submitted % 64, 1,
							    buf + (submitted % 3) * ns->lba_size,
							    fx_count_cb, &cnt, 0) == 0)
			submitted++;
		upcie_nvme_ring(qp);
		fx_step(&f);
		upcie_nvme_poll(qp, 0);
		/* Never more completions than submissions. */
		if (cnt.done > submitted)
			break;
	}
	CU_ASSERT_EQUAL(cnt.done, total);
	CU_ASSERT_EQUAL(submitted, total);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	struct upcie_nvme_qpair_stats st;
	upcie_nvme_qpair_stats(qp, &st);
	CU_ASSERT_EQUAL(st.submitted, total);
	CU_ASSERT_EQUAL(st.completed, total);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static void test_phase_wraps(void)
{
	phase_wraps(4);
	phase_wraps(0);
}

/* --- lazy CQ head: it goes out only with a ring that has new commands. */
struct lazy_ctx {
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint8_t *buf;
	unsigned done, errors, submitted, total;
	bool resubmit; /* the callback submits the next command (flags 0) */
};

static void lazy_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct lazy_ctx *c = arg;

	c->done++;
	if (upcie_nvme_cqe_status(cqe))
		c->errors++;
	if (c->resubmit && c->submitted < c->total &&
	    upcie_nvme_read(c->qp, c->ns, c->submitted % 64, 1, c->buf, lazy_cb, c, 0) == 0)
		c->submitted++;
}

/*
 * Depth-4 queues (3 commands in flight, the CQ wraps every 4 completions),
 * lazy_cq on: the device must never stall on a CQ it sees as full (the sim
 * stops fetching then, and the run would not finish). Both ways of
 * submitting: a loop that rings after each poll, and callbacks that submit
 * the next command for the poll to publish.
 */
static void test_lazy_cq(void)
{
	/* Modes 0 and 1 with a 4-entry CQ (the device sees it full whenever
	 * three completions wait), 2 and 3 the same with the default CQ. */
	for (int mode = 0; mode < 4; mode++) {
		struct upcie_nvme_qpair_opts o = {
		    .depth = 4, .lazy_cq = 1, .cq_depth = mode < 2 ? 4 : 0};
		struct lazy_ctx c = {.total = fx_is_sim() ? 6000 : 1500, .resubmit = mode & 1};
		struct upcie_nvme_qpair_stats st;
		struct fx f;

		CU_ASSERT_FATAL(fx_open(&f) == 0);
		c.qp = upcie_nvme_qpair_create(f.ctrl, &o);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c.qp);
		c.ns = upcie_nvme_ns_first(f.ctrl);
		c.buf = upcie_dma_alloc(f.heap, c.ns->lba_size, 4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(c.buf);
		double deadline = fx_now() + 60;

		while (c.done < c.total && fx_now() < deadline) {
			/* The loop fills the queue (mode 1: only at the start). */
			while (c.submitted < c.total && (!(mode & 1) || c.submitted < 3) &&
			       upcie_nvme_read(c.qp, c.ns, c.submitted % 64, 1, c.buf, lazy_cb, &c,
					       0) == 0)
				c.submitted++;
			upcie_nvme_ring(c.qp);
			fx_step(&f);
			upcie_nvme_poll(c.qp, 0);
		}
		CU_ASSERT_EQUAL(c.done, c.total);
		CU_ASSERT_EQUAL(c.errors, 0);
		upcie_nvme_qpair_stats(c.qp, &st);
		CU_ASSERT_EQUAL(st.completed, c.total);
		/* The head went out only with rings that carried commands. */
		CU_ASSERT(st.cq_doorbells + st.shadow_cq > 0);
		CU_ASSERT(st.cq_doorbells + st.shadow_cq <= st.sq_doorbells + st.shadow_sq);
		upcie_dma_free(f.heap, c.buf);
		fx_close(&f);
	}
}

static void test_queue_full(void)
{
	struct upcie_nvme_qpair_opts o = {.depth = 8};
	struct fx_counter cnt = {0};
	struct fx f;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	uint32_t nsid = upcie_nvme_ns_first(f.ctrl)->nsid;
	for (int i = 0; i < 7; i++)
		CU_ASSERT_EQUAL(upcie_nvme_flush(qp, nsid, fx_count_cb, &cnt, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 7);
	CU_ASSERT_EQUAL(upcie_nvme_flush(qp, nsid, fx_count_cb, &cnt, 0), -EAGAIN);
	CU_ASSERT_EQUAL(upcie_nvme_flush(qp, nsid, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING),
			-EAGAIN);
	upcie_nvme_ring(qp);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 7), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_flush(qp, nsid, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING), 0);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 8), 0);
	fx_close(&f);
}

/* Distinct patterns on every namespace (512 B and 4 KiB on the sim), at
 * sizes from one block to MDTS, read back and compared byte for byte. */
static void test_write_verify(void)
{
	struct fx f;
	unsigned nns = 0;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl); ns;
	     ns = upcie_nvme_ns_next(f.ctrl, ns), nns++) {
		uint32_t sizes[] = {1, 2, 3, 8, ns->max_xfer_blocks / 2 + 1, ns->max_xfer_blocks};
		size_t max_bytes = (size_t)ns->max_xfer_blocks * ns->lba_size;
		uint8_t *wbuf = upcie_dma_alloc_pages(f.heap, max_bytes + 4096);
		uint8_t *rbuf = upcie_dma_alloc_pages(f.heap, max_bytes + 4096);
		uint64_t lba = 16;
		uint16_t st;

		CU_ASSERT_PTR_NOT_NULL_FATAL(wbuf);
		CU_ASSERT_PTR_NOT_NULL_FATAL(rbuf);
		for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint32_t nlb = sizes[s];
			/* Odd sizes start at a sub-page offset: PRP1 with an offset. */
			size_t off = (s & 1) ? 512 : 0;
			if (!nlb || nlb > ns->max_xfer_blocks ||
			    (off && (size_t)nlb * ns->lba_size + off > max_bytes + 4096))
				continue;
			fill(wbuf + off, ns, lba, nlb, s + 1);
			CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, lba, nlb, wbuf + off, &st, 0),
					0);
			memset(rbuf + off, 0, (size_t)nlb * ns->lba_size);
			CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, lba, nlb, rbuf + off, &st, 0),
					0);
			CU_ASSERT_EQUAL(mismatches(rbuf + off, ns, lba, nlb, s + 1), 0);
			if (f.sim) {
				/* The bytes really are in the namespace, at the right place. */
				size_t len;
				uint8_t *data = upcie_sim_ns_data(f.sim, ns->nsid, &len);
				CU_ASSERT_PTR_NOT_NULL_FATAL(data);
				CU_ASSERT_EQUAL(
				    mismatches(data + lba * ns->lba_size, ns, lba, nlb, s + 1), 0);
			}
			lba += nlb + 1;
		}
		upcie_dma_free(f.heap, wbuf);
		upcie_dma_free(f.heap, rbuf);
	}
	CU_ASSERT(nns >= 1);
	if (f.sim)
		CU_ASSERT_EQUAL(nns, 2);
	fx_close(&f);
}

/* One asynchronous write then read of nlb blocks at buf (the fast path or
 * the general one, as the buffer decides); 0 when the data came back. */
static int async_roundtrip(struct fx *f, struct upcie_nvme_qpair *qp,
			   const struct upcie_nvme_ns *ns, uint64_t lba, uint32_t nlb, uint8_t *buf,
			   uint32_t gen)
{
	struct fx_counter cnt = {0};
	int rc;

	fill(buf, ns, lba, nlb, gen);
	rc = upcie_nvme_write(qp, ns, lba, nlb, buf, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING);
	if (rc)
		return rc;
	if (fx_wait(f, qp, &cnt.done, 1) || cnt.errors)
		return -EIO;
	memset(buf, 0, (size_t)nlb * ns->lba_size);
	rc = upcie_nvme_read(qp, ns, lba, nlb, buf, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING);
	if (rc)
		return rc;
	if (fx_wait(f, qp, &cnt.done, 2) || cnt.errors)
		return -EIO;
	return mismatches(buf, ns, lba, nlb, gen) ? -EILSEQ : 0;
}

/*
 * upcie_nvme_read/_write compute PRP1 and PRP2 inline for a buffer of at
 * most two memory pages in the heap's first segment, and hand everything
 * else to the general path. Both must move the right bytes: every offset
 * in a page that matters (0, 4, 512, a sector before the end, 4 bytes
 * before the end) by lengths of one page or less, exactly one and two
 * pages, one sector past a page, three pages (a PRP list); and buffers at
 * the very end of the segment, where the fast path stops (its last
 * accepted offset leaves room for two pages).
 */
/* The fast path's own answer for a read of nlb blocks at p: 0 (it took
 * it; waited for here) or UPCIE_NVME_RW_SLOW (the general path's turn). */
static int fast_path(struct fx *f, struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
		     const void *p, uint32_t nlb)
{
	struct fx_counter c = {0};
	int rc = upcie_nvme_queue_rw(qp, UPCIE_NVME_CMD_READ, ns->nsid, 0, nlb, p,
				     (size_t)nlb << ns->lba_shift, fx_count_cb, &c,
				     UPCIE_NVME_SUBMIT_RING);

	if (!rc) {
		CU_ASSERT_EQUAL(fx_wait(f, qp, &c.done, 1), 0);
		CU_ASSERT_EQUAL(c.errors, 0);
	}
	return rc;
}

static void test_fast_path_prps(void)
{
	struct fx f;
	unsigned cases = 0;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(&f, 512);
	if (!ns) {
		upcie_cu_skip("needs a namespace with 512 B blocks");
		fx_close(&f);
		return;
	}
	uint8_t *buf = upcie_dma_alloc_pages(f.heap, 4 * 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	static const size_t offs[] = {0, 4, 512, 4096 - 512, 4096 - 4};
	static const uint32_t nlbs[] = {1, 7, 8, 9, 16, 17, 24};
	for (unsigned o = 0; o < sizeof(offs) / sizeof(offs[0]); o++)
		for (unsigned n = 0; n < sizeof(nlbs) / sizeof(nlbs[0]); n++) {
			if (nlbs[n] > ns->max_xfer_blocks)
				continue;
			int rc = async_roundtrip(&f, qp, ns, 8 + 32 * n, nlbs[n], buf + offs[o],
						 o * 8 + n + 1);
			if (rc)
				printf("\n  offset %zu, %u blocks: %d", offs[o], nlbs[n], rc);
			CU_ASSERT_EQUAL(rc, 0);
			cases++;
		}
	CU_ASSERT(cases >= 30);
	/* ... and the fast path took those it is for: one or two pages. */
	struct upcie_nvme_ctrl_info ci;
	upcie_nvme_ctrl_info(f.ctrl, &ci);
	CU_ASSERT_EQUAL(qp->two_pages, 2 * ci.page_size);
	CU_ASSERT_EQUAL(fast_path(&f, qp, ns, buf, 8), 0);
	CU_ASSERT_EQUAL(fast_path(&f, qp, ns, buf + 4096 - 512, 9), 0);
	CU_ASSERT_EQUAL(fast_path(&f, qp, ns, buf + 4, 16), UPCIE_NVME_RW_SLOW);
	/* Not 4-byte aligned: refused by the general path, nothing queued. */
	struct fx_counter cnt = {0};
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 1, buf + 2, fx_count_cb, &cnt, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_write(qp, ns, 0, 1, NULL, fx_count_cb, &cnt, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	upcie_dma_free(f.heap, buf);

	/* The end of the segment: take every page, keep the last three. */
	uint8_t *pages[8192], *last = NULL;
	unsigned np = 0;
	while (np < 8192 && (pages[np] = upcie_dma_alloc_pages(f.heap, 4096)))
		last = pages[np++] + 4096;
	CU_ASSERT_FATAL(np >= 3 && last != NULL);
	CU_ASSERT(upcie_dma_contains(f.heap, last - 12288, 12288));
	/* Two pages ending at the last byte: the fast path's last offset. */
	CU_ASSERT_EQUAL(async_roundtrip(&f, qp, ns, 400, 16, last - 8192, 101), 0);
	CU_ASSERT_EQUAL(fast_path(&f, qp, ns, last - 8192, 16), 0);
	CU_ASSERT_EQUAL(fast_path(&f, qp, ns, last - 8192 + 512, 16), UPCIE_NVME_RW_SLOW);
	/* One page, then one sector, ending at the last byte: beyond that
	 * offset, so the general path. */
	CU_ASSERT_EQUAL(async_roundtrip(&f, qp, ns, 420, 8, last - 4096, 102), 0);
	CU_ASSERT_EQUAL(async_roundtrip(&f, qp, ns, 440, 1, last - 512, 103), 0);
	/* Crossing into the last page from the one before. */
	CU_ASSERT_EQUAL(async_roundtrip(&f, qp, ns, 460, 9, last - 4096 - 512, 104), 0);
	/* Past the end: refused, nothing queued. */
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 2, last - 512, fx_count_cb, &cnt, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 9, last - 4096, fx_count_cb, &cnt, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	while (np)
		upcie_dma_free(f.heap, pages[--np]);
	fx_close(&f);
}

/* The two namespaces hold separate data: writes to one never show in the other. */
static void test_namespaces_isolated(void)
{
	struct fx f;
	uint16_t st;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	const struct upcie_nvme_ns *a = fx_ns_with_lba(&f, 512), *b = fx_ns_with_lba(&f, 4096);
	if (!a || !b) {
		upcie_cu_skip("needs namespaces with 512 B and 4 KiB blocks");
		fx_close(&f);
		return;
	}
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	uint8_t *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	fill(buf, a, 0, 8, 99);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, a, 0, 8, buf, &st, 0), 0);
	fill(buf, b, 0, 1, 77);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, b, 0, 1, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, a, 0, 8, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(mismatches(buf, a, 0, 8, 99), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, b, 0, 1, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(mismatches(buf, b, 0, 1, 77), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static void test_mdts_limit(void)
{
	struct fx f;
	struct fx_counter cnt = {0};

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	size_t max = (size_t)ns->max_xfer_blocks * ns->lba_size;
	uint8_t *buf = upcie_dma_alloc_pages(f.heap, max + ns->lba_size);

	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, ns->max_xfer_blocks, buf, fx_count_cb, &cnt,
					UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, ns->max_xfer_blocks + 1, buf, fx_count_cb, &cnt,
					UPCIE_NVME_SUBMIT_RING),
			-EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 0, buf, fx_count_cb, &cnt, 0), -EINVAL);
	static uint8_t outside[4096];
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 1, outside, fx_count_cb, &cnt, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 1, buf + 1, fx_count_cb, &cnt, 0), -EINVAL);
	/* A raw command larger than MDTS is refused too. */
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_CMD_READ, .nsid = ns->nsid, .cdw12 = ns->max_xfer_blocks};
	CU_ASSERT_EQUAL(
	    upcie_nvme_submit_raw(qp, &sqe, buf, max + ns->lba_size, fx_count_cb, &cnt, 0),
	    -EINVAL);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 1), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* Chained PRP lists through the device: a sim with 4 MiB MDTS. */
static void test_chained_prp_io(void)
{
	FX_SIM_ONLY();
	struct upcie_sim_config cfg;
	struct fx f;
	uint16_t st;

	upcie_sim_config_default(&cfg);
	cfg.mdts = 10;
	cfg.ns[1].nlbas = 4096;
	CU_ASSERT_FATAL(fx_open_opts(&f, &cfg, 32u << 20, false, NULL) == 0);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_get(f.ctrl, 2);
	CU_ASSERT_EQUAL_FATAL(ns->max_xfer_blocks, 1024);
	struct upcie_nvme_qpair_opts o = {.depth = 4};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	uint8_t *buf = upcie_dma_alloc_pages(f.heap, 4u << 20);
	fill(buf, ns, 100, 1024, 5);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, 100, 1024, buf, &st, 0), 0);
	memset(buf, 0, 4u << 20);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 100, 1024, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(mismatches(buf, ns, 100, 1024, 5), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static void test_statuses(void)
{
	struct fx f;
	uint16_t st = 0;
	struct upcie_nvme_cqe cqe;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	uint8_t *buf = upcie_dma_alloc(f.heap, 8192, 4096);

	/* Last block is fine; one past it is LBA Out of Range. */
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, ns->nsze - 1, 1, buf, &st, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, ns->nsze - 1, 2, buf, &st, 0), -EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_LBA_RANGE);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, ns->nsze, 1, buf, &st, 0), -EIO);
	CU_ASSERT_EQUAL(st, UPCIE_NVME_SC_LBA_RANGE);
	/* An nsid no namespace has. */
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_READ, .nsid = 0xfffffff0};
	CU_ASSERT_EQUAL(upcie_nvme_raw_sync(qp, &sqe, buf, 512, &cqe, 0), -EIO);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_NS);
	/* An NVM opcode nobody defined. */
	sqe = (struct upcie_nvme_sqe){.opc = 0x7f, .nsid = ns->nsid};
	CU_ASSERT_EQUAL(upcie_nvme_raw_sync(qp, &sqe, NULL, 0, &cqe, 0), -EIO);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_INVALID_OPCODE);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static void test_zeroes_dealloc_flush(void)
{
	struct fx f;
	struct fx_counter cnt = {0};
	uint16_t st;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	const struct upcie_nvme_id_ctrl *id = upcie_nvme_ctrl_id(f.ctrl);
	uint8_t *buf = upcie_dma_alloc(f.heap, 8 * ns->lba_size, 4096);
	struct upcie_nvme_dsm_range *r = upcie_dma_alloc(f.heap, sizeof(*r), 64);

	fill(buf, ns, 200, 8, 3);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, 200, 8, buf, &st, 0), 0);
	if (id->oncs & UPCIE_NVME_ONCS_WRITE_ZEROES) {
		CU_ASSERT_EQUAL(upcie_nvme_write_zeroes(qp, ns, 200, 4, fx_count_cb, &cnt,
							UPCIE_NVME_SUBMIT_RING),
				0);
		CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 1), 0);
		CU_ASSERT_EQUAL(cnt.errors, 0);
		CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 200, 8, buf, &st, 0), 0);
		unsigned nonzero = 0;
		for (size_t i = 0; i < 4 * ns->lba_size; i++)
			nonzero += buf[i] != 0;
		CU_ASSERT_EQUAL(nonzero, 0);
		CU_ASSERT_EQUAL(mismatches(buf + 4 * ns->lba_size, ns, 204, 4, 3), 0);
	}
	if (id->oncs & UPCIE_NVME_ONCS_DSM) {
		r->cattr = 0;
		r->nlb = 4;
		r->slba = 204;
		CU_ASSERT_EQUAL(upcie_nvme_deallocate(qp, ns->nsid, r, 1, fx_count_cb, &cnt,
						      UPCIE_NVME_SUBMIT_RING),
				0);
		CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, cnt.done + 1), 0);
		CU_ASSERT_EQUAL(cnt.errors, 0);
		CU_ASSERT_EQUAL(upcie_nvme_deallocate(qp, ns->nsid, r, 0, NULL, NULL, 0), -EINVAL);
	}
	unsigned before = cnt.done;
	CU_ASSERT_EQUAL(upcie_nvme_flush(qp, ns->nsid, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, before + 1), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	upcie_dma_free(f.heap, r);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* 32 commands, one ring: exactly one SQ doorbell write, and one CQ doorbell
 * write for the poll call that reaps all 32. Shadow doorbells off, so every
 * doorbell is an MMIO write the sim can count. */
static void test_one_doorbell_per_batch(void)
{
	struct upcie_nvme_ctrl_opts co = {.no_dbbuf = true};
	struct upcie_nvme_qpair_opts o = {.depth = 64};
	struct upcie_nvme_qpair_stats st;
	struct upcie_sim_stats ss0, ss1;
	struct fx_counter cnt = {0};
	struct fx f;

	CU_ASSERT_FATAL(fx_open_opts(&f, NULL, 0, false, &co) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	uint8_t *buf = upcie_dma_alloc(f.heap, 32 * ns->lba_size, 4096);

	for (int round = 0; round < 3; round++) {
		/* Let the sim see the admin CQ head from qpair creation first. */
		fx_step(&f);
		if (f.sim)
			upcie_sim_stats(f.sim, &ss0);
		struct upcie_nvme_qpair_stats st0;
		upcie_nvme_qpair_stats(qp, &st0);
		for (uint32_t i = 0; i < 32; i++)
			CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, i, 1, buf + i * ns->lba_size,
							fx_count_cb, &cnt, 0),
					0);
		upcie_nvme_ring(qp);
		upcie_nvme_ring(qp); /* nothing new: no second write */
		upcie_nvme_qpair_stats(qp, &st);
		CU_ASSERT_EQUAL(st.sq_doorbells - st0.sq_doorbells, 1);
		if (f.sim) {
			upcie_sim_step(f.sim);
			upcie_sim_stats(f.sim, &ss1);
			CU_ASSERT_EQUAL(ss1.sq_doorbells - ss0.sq_doorbells, 1);
			CU_ASSERT_EQUAL(ss1.io_cmds - ss0.io_cmds, 32);
			/* Everything completed in one step: one poll reaps all 32. */
			CU_ASSERT_EQUAL(upcie_nvme_poll(qp, 0), 32);
			upcie_nvme_qpair_stats(qp, &st);
			CU_ASSERT_EQUAL(st.cq_doorbells - st0.cq_doorbells, 1);
			upcie_sim_step(f.sim);
			upcie_sim_stats(f.sim, &ss1);
			if (ss1.cq_doorbells - ss0.cq_doorbells != 1)
				printf("\n  round %d: sim saw %llu CQ doorbells\n", round,
				       (unsigned long long)(ss1.cq_doorbells - ss0.cq_doorbells));
			CU_ASSERT_EQUAL(ss1.cq_doorbells - ss0.cq_doorbells, 1);
		}
		CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 32u * (round + 1)), 0);
	}
	CU_ASSERT_EQUAL(cnt.errors, 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* Commands still queued when a qpair is destroyed complete as aborted. */
static void test_abort_on_destroy(void)
{
	struct fx_counter cnt = {0};
	struct fx f;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	uint32_t nsid = upcie_nvme_ns_first(f.ctrl)->nsid;
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(upcie_nvme_flush(qp, nsid, fx_count_cb, &cnt, 0), 0);
	/* Never rung: the device has not seen them. */
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	CU_ASSERT_EQUAL(cnt.done, 5);
	CU_ASSERT_EQUAL(cnt.errors, 5);
	CU_ASSERT_EQUAL(cnt.last_status, UPCIE_NVME_SC_ABORT_SQ_DELETED);
	fx_close(&f);
}

/* A sync read whose completion never comes times out; Abort does not end
 * it (the model already ran it), so the controller is reset: the CID comes
 * back, the queue works at full depth afterwards, destroying it is clean. */
static void test_sync_timeout(void)
{
	FX_SIM_ONLY();
	struct fx f;
	uint16_t st;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	struct upcie_nvme_qpair_opts o = {.depth = 4};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	uint8_t *buf = upcie_dma_alloc(f.heap, 4096, 4096);
	upcie_sim_fault(f.sim, UPCIE_SIM_FAULT_DROP_CQE, 1, 0);
	double t0 = fx_now();
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 0, 1, buf, &st, 200), -ETIMEDOUT);
	CU_ASSERT(fx_now() - t0 < 2.0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	struct upcie_nvme_qpair_stats qs;
	upcie_nvme_qpair_stats(qp, &qs);
	CU_ASSERT_EQUAL(qs.timeouts, 1);
	CU_ASSERT_EQUAL(qs.aborts, 1);
	/* The queue works for everything else, at full depth. */
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 0, 1, buf, &st, 0), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(upcie_nvme_read(qp, ns, 0, 1, buf, NULL, NULL, 0), 0);
	upcie_nvme_ring(qp);
	while (upcie_nvme_qpair_outstanding(qp))
		CU_ASSERT_FATAL(upcie_nvme_poll(qp, 0) >= 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* Shadow doorbells: data stays right and most updates skip MMIO. */
static void test_shadow_doorbells(void)
{
	struct upcie_nvme_ctrl_info info;
	struct upcie_nvme_qpair_opts o = {.depth = 32};
	struct upcie_nvme_qpair_stats st;
	struct fx_counter cnt = {0};
	struct fx f;
	const unsigned total = 4000;
	unsigned submitted = 0;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	if (!info.dbbuf) {
		upcie_cu_skip("the controller does not offer Doorbell Buffer Config");
		fx_close(&f);
		return;
	}
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, &o);
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	uint8_t *buf = upcie_dma_alloc(f.heap, 8 * ns->lba_size, 4096);
	fill(buf, ns, 0, 8, 11);
	uint16_t s;
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(qp, ns, 0, 8, buf, &s, 0), 0);
	double deadline = fx_now() + 60;
	/* Two batches between device steps: the second finds EventIdx not yet
	 * moved past the first, so it needs no MMIO write (the device is busy). */
	while (cnt.done < total && fx_now() < deadline) {
		for (int batch = 0; batch < 2; batch++) {
			for (int i = 0; i < 4 && submitted < total; i++)
				if (upcie_nvme_read(qp, ns, 0, 8, buf, fx_count_cb, &cnt, 0) == 0)
					submitted++;
			upcie_nvme_ring(qp);
		}
		fx_step(&f);
		upcie_nvme_poll(qp, 0);
	}
	CU_ASSERT_EQUAL(cnt.done, total);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(mismatches(buf, ns, 0, 8, 11), 0);
	upcie_nvme_qpair_stats(qp, &st);
	CU_ASSERT(st.shadow_sq + st.sq_doorbells > 0);
	if (f.sim) {
		struct upcie_sim_stats ss;
		upcie_sim_stats(f.sim, &ss);
		/* Every second batch went to the shadow only, and the device took it. */
		CU_ASSERT(st.shadow_sq >= total / 8 - 2);
		CU_ASSERT(st.sq_doorbells <= total / 8 + 2);
		CU_ASSERT(ss.shadow_reads >= total / 8 - 2);
	}
	printf("\n  shadow: %llu SQ MMIO, %llu SQ shadow-only, %llu CQ MMIO, %llu CQ shadow-only\n",
	       (unsigned long long)st.sq_doorbells, (unsigned long long)st.shadow_sq,
	       (unsigned long long)st.cq_doorbells, (unsigned long long)st.shadow_cq);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

/* Several qpairs at once, each writing its own LBA range with its own
 * pattern, interleaved, then each range read back through another qpair. */
static void test_several_qpairs(void)
{
	struct upcie_nvme_ctrl_info info;
	struct upcie_nvme_qpair *qp[4];
	struct fx_counter cnt = {0};
	uint8_t *buf[4];
	struct fx f;
	unsigned n;
	uint16_t st;

	CU_ASSERT_FATAL(fx_open(&f) == 0);
	upcie_nvme_ctrl_info(f.ctrl, &info);
	n = info.io_qpairs_max < 4 ? info.io_qpairs_max : 4;
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f.ctrl);
	struct upcie_nvme_qpair_opts o = {.depth = 16};
	for (unsigned i = 0; i < n; i++) {
		qp[i] = upcie_nvme_qpair_create(f.ctrl, &o);
		CU_ASSERT_PTR_NOT_NULL_FATAL(qp[i]);
		buf[i] = upcie_dma_alloc(f.heap, 8 * ns->lba_size, 4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(buf[i]);
		fill(buf[i], ns, 1000 + 8 * i, 8, 40 + i);
	}
	for (unsigned i = 0; i < n; i++)
		CU_ASSERT_EQUAL(
		    upcie_nvme_write(qp[i], ns, 1000 + 8 * i, 8, buf[i], fx_count_cb, &cnt, 0), 0);
	for (unsigned i = 0; i < n; i++)
		upcie_nvme_ring(qp[i]);
	double deadline = fx_now() + 10;
	while (cnt.done < n && fx_now() < deadline) {
		fx_step(&f);
		for (unsigned i = 0; i < n; i++)
			upcie_nvme_poll(qp[i], 0);
	}
	CU_ASSERT_EQUAL(cnt.done, n);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	for (unsigned i = 0; i < n; i++) {
		unsigned j = (i + 1) % n;
		memset(buf[i], 0, 8 * ns->lba_size);
		CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp[j], ns, 1000 + 8 * i, 8, buf[i], &st, 0),
				0);
		CU_ASSERT_EQUAL(mismatches(buf[i], ns, 1000 + 8 * i, 8, 40 + i), 0);
		upcie_dma_free(f.heap, buf[i]);
	}
	fx_close(&f);
}

static CU_TestInfo tests[] = {
    {"create and clamp depth", test_create_clamp},
    {"phase tag across thousands of wraps", test_phase_wraps},
    {"lazy CQ head: never a full CQ, head only with rings", test_lazy_cq},
    {"queue full returns -EAGAIN", test_queue_full},
    {"write and verify, 1 block to MDTS", test_write_verify},
    {"read/write fast path: PRPs at every page offset, end of the heap", test_fast_path_prps},
    {"namespaces keep separate data", test_namespaces_isolated},
    {"MDTS limit and bad buffers", test_mdts_limit},
    {"chained PRP list through the device", test_chained_prp_io},
    {"LBA out of range, invalid nsid, invalid opcode", test_statuses},
    {"write zeroes, deallocate, flush", test_zeroes_dealloc_flush},
    {"one SQ doorbell per batch of 32", test_one_doorbell_per_batch},
    {"several qpairs at once", test_several_qpairs},
    {"abort on destroy", test_abort_on_destroy},
    {"sync timeout", test_sync_timeout},
    {"shadow doorbells", test_shadow_doorbells},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("nvme_io", NULL, NULL, tests)
