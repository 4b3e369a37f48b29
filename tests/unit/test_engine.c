/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The calls an I/O engine builds on (engine.h): growable DMA heaps, shared
 * controllers used from several threads, transfers split above MDTS with
 * one completion and the first error, scatter lists as PRP lists and SGLs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "dma/heap.h"
#include "fixture.h"

/* Poll until *count reaches want; the threaded sim or a device runs alone. */
static int wait_count(struct upcie_nvme_qpair *qp, volatile unsigned *count, unsigned want)
{
	double deadline = fx_now() + 10.0;

	while (*count < want) {
		upcie_nvme_poll(qp, 0);
		if (fx_now() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

static void fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 12));
}

/* ---- growable heap ---- */

/* upcie_nvme_read/_write (the inlined fast path) on a buffer in a grown
 * heap's second segment: it takes the general path and the data is right. */
static void test_rw_in_later_segment(void)
{
	struct fx f;
	struct fx_counter cnt = {0};
	uint16_t st;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, true, NULL), 0);
	upcie_dma_heap_destroy(f.heap);
	f.heap = upcie_dma_heap_create(f.dev, 1 << 20, UPCIE_DMA_NO_HUGEPAGES | UPCIE_DMA_GROW);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.heap);
	f.ctrl = upcie_nvme_ctrl_open(f.dev, f.heap, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.ctrl);
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	const struct upcie_nvme_ns *ns = fx_ns_with_lba(&f, 4096);
	struct upcie_dma_heap_info hi;
	/* Fill the first segment page by page until the heap grows: first-fit
	 * tries the first segment first, so only then does buf land later. */
	static void *pages[512];
	unsigned np = 0;
	do {
		pages[np] = upcie_dma_alloc_pages(f.heap, 4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pages[np]);
		upcie_dma_heap_info(f.heap, &hi);
	} while (hi.segments < 2 && ++np < 512);
	CU_ASSERT_FATAL(hi.segments >= 2);
	uint8_t *buf = upcie_dma_alloc_pages(f.heap, 8192);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	/* Not in the first segment (the fast path's), checked on the heap itself. */
	CU_ASSERT_FATAL((uintptr_t)buf - (uintptr_t)f.heap->va >= f.heap->len);
	fill(buf, 8192, 3);
	CU_ASSERT_EQUAL(
	    upcie_nvme_write(qp, ns, 40, 2, buf, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING), 0);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 1), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	memset(buf, 0, 8192);
	CU_ASSERT_EQUAL(
	    upcie_nvme_read(qp, ns, 40, 2, buf, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING), 0);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &cnt.done, 2), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	uint8_t want[8192];
	fill(want, 8192, 3);
	CU_ASSERT_EQUAL(memcmp(buf, want, 8192), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(qp, ns, 40, 2, buf, &st, 0), 0);
	upcie_dma_free(f.heap, buf);
	for (unsigned i = 0; i <= np && i < 512; i++)
		upcie_dma_free(f.heap, pages[i]);
	fx_close(&f);
}

static void test_heap_grows(void)
{
	struct fx f;
	struct upcie_dma_heap *h, *fixed;
	struct upcie_dma_heap_info hi;
	void *small, *big, *more;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, NULL, 0, true, NULL), 0);
	h = upcie_dma_heap_create(f.dev, 64 << 10, UPCIE_DMA_NO_HUGEPAGES | UPCIE_DMA_GROW);
	fixed = upcie_dma_heap_create(f.dev, 64 << 10, UPCIE_DMA_NO_HUGEPAGES);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fixed);

	/* A fixed heap refuses what it cannot hold; a growable one adds a segment. */
	CU_ASSERT_PTR_NULL(upcie_dma_alloc_pages(fixed, 1 << 20));
	CU_ASSERT_EQUAL(errno, ENOMEM);
	small = upcie_dma_alloc(h, 4096, 4096);
	big = upcie_dma_alloc_pages(h, 1 << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(small);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_EQUAL(hi.segments, 2);
	CU_ASSERT(hi.size >= (64u << 10) + (1u << 20));
	CU_ASSERT_EQUAL(hi.allocations, 2);
	/* Translation and bounds work in the new segment (sim: bus == va). */
	CU_ASSERT_EQUAL(upcie_dma_bus(h, (char *)big + 12345), (uint64_t)(uintptr_t)big + 12345);
	CU_ASSERT_TRUE(upcie_dma_contains(h, big, 1 << 20));
	CU_ASSERT_FALSE(upcie_dma_contains(h, (char *)big + 1, (size_t)(1 << 20) + hi.size));
	memset(big, 0x5a, 1 << 20);
	/* The first segment is still used first; a third segment only when needed. */
	more = upcie_dma_alloc(h, 100, 0);
	CU_ASSERT_PTR_NOT_NULL(more);
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_EQUAL(hi.segments, 2);
	CU_ASSERT_EQUAL(upcie_dma_free(h, big), 0);
	CU_ASSERT_EQUAL(upcie_dma_free(h, big), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_free(h, small), 0);
	CU_ASSERT_EQUAL(upcie_dma_free(h, more), 0);
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_EQUAL(hi.used, 0);
	CU_ASSERT_EQUAL(hi.allocations, 0);
	upcie_dma_heap_destroy(h);
	upcie_dma_heap_destroy(fixed);
	fx_close(&f);
}

/* ---- shared controllers ---- */

static void test_shared_refcount(void)
{
	struct upcie_nvme_get_opts o = {.size = sizeof(o), .heap_size = 1 << 20};
	struct upcie_nvme_ctrl *a, *b;
	struct fx f;

	a = upcie_nvme_ctrl_get(fx_device(), &o);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	b = upcie_nvme_ctrl_get(fx_device(), NULL);
	CU_ASSERT_PTR_EQUAL(a, b);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_refs(a), 2);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(b), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_refs(a), 1);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(a), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_refs(a), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(NULL), 0);

	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_get("", NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_get("not-a-device", NULL));
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "not-a-device"));

	/* A controller from upcie_nvme_ctrl_open() is not the registry's. */
	FX_SIM_ONLY();
	CU_ASSERT_EQUAL_FATAL(fx_open(&f), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(f.ctrl), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "not a shared controller"));
	fx_close(&f);
}

#define NTHREADS 4
#define PER_THR	 64

struct thr {
	unsigned idx;
	int rc;
	struct upcie_nvme_ctrl *ctrl;
};

/* Each thread: its own get, queue pair, writes and read-back, put. */
static void *io_thread(void *arg)
{
	struct thr *t = arg;
	struct upcie_nvme_ctrl *c = upcie_nvme_ctrl_get(fx_device(), NULL);
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_qpair *qp;
	uint8_t *buf;
	uint16_t st;

	t->rc = -1;
	if (!c)
		return NULL;
	t->ctrl = c;
	ns = upcie_nvme_ns_first(c);
	qp = upcie_nvme_qpair_create(c, NULL);
	buf = upcie_dma_alloc_pages(upcie_nvme_ctrl_heap(c), 2 * 4096);
	if (!ns || !qp || !buf)
		goto out;
	uint32_t nlb = 4096 / ns->lba_size;
	for (unsigned i = 0; i < PER_THR; i++) {
		uint64_t lba = ((uint64_t)t->idx * PER_THR + i) * nlb;

		fill(buf, 4096, t->idx * 1000 + i);
		if (upcie_nvme_write_sync(qp, ns, lba, nlb, buf, &st, 0))
			goto out;
		memset(buf + 4096, 0, 4096);
		if (upcie_nvme_read_sync(qp, ns, lba, nlb, buf + 4096, &st, 0) ||
		    memcmp(buf, buf + 4096, 4096))
			goto out;
	}
	t->rc = 0;
out:
	upcie_dma_free(upcie_nvme_ctrl_heap(c), buf);
	if (upcie_nvme_qpair_destroy(qp))
		t->rc = -1;
	upcie_nvme_ctrl_put(c);
	return NULL;
}

static void test_shared_threads(void)
{
	/* One reference held here, so the threads share one bring-up. */
	struct upcie_nvme_ctrl *c = upcie_nvme_ctrl_get(fx_device(), NULL);
	struct upcie_sim_stats st0, st1;
	struct upcie_sim *sim;
	struct upcie_nvme_ctrl_info info;
	pthread_t tid[NTHREADS];
	struct thr t[NTHREADS];
	unsigned nthr = NTHREADS;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	/* One queue pair per thread: no more threads than the controller grants. */
	upcie_nvme_ctrl_info(c, &info);
	if (info.io_qpairs_max < nthr)
		nthr = info.io_qpairs_max;
	CU_ASSERT_FATAL(nthr >= 2); /* else nothing is shared */
	sim = upcie_pci_sim(upcie_nvme_ctrl_dev(c));
	if (sim)
		upcie_sim_stats(sim, &st0);
	for (unsigned i = 0; i < nthr; i++) {
		t[i] = (struct thr){.idx = i};
		CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[i], NULL, io_thread, &t[i]), 0);
	}
	for (unsigned i = 0; i < nthr; i++) {
		pthread_join(tid[i], NULL);
		CU_ASSERT_EQUAL(t[i].rc, 0);
		CU_ASSERT_PTR_EQUAL(t[i].ctrl, c);
	}
	if (sim) {
		upcie_sim_stats(sim, &st1);
		CU_ASSERT_EQUAL(st1.enables, st0.enables); /* nobody reset it again */
		CU_ASSERT_EQUAL(st1.io_cmds - st0.io_cmds, nthr * PER_THR * 2);
		CU_ASSERT_EQUAL(st1.errors, st0.errors);
	}
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_refs(c), 1);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(c), 0);
}

/* ---- split transfers ---- */

struct done {
	volatile unsigned n;
	uint16_t status;
};

static void done_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct done *d = arg;

	d->status = upcie_nvme_cqe_status(cqe);
	d->n++;
}

static void test_split(void)
{
	struct upcie_nvme_ctrl *c = upcie_nvme_ctrl_get(fx_device(), NULL);
	struct upcie_nvme_qpair_opts qo = {.depth = 64};
	struct upcie_nvme_split sp;
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_qpair *qp;
	struct done d = {0};
	uint8_t *buf;
	size_t len;
	uint32_t nlb, parts;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	ns = upcie_nvme_ns_first(c);
	qp = upcie_nvme_qpair_create(c, &qo);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	/* Four times MDTS plus a block: five commands. */
	nlb = ns->max_xfer_blocks * 4 + 1;
	len = (size_t)nlb * ns->lba_size;
	parts = upcie_nvme_split_parts(ns, nlb);
	CU_ASSERT_EQUAL(parts, 5);
	buf = upcie_dma_alloc_pages(upcie_nvme_ctrl_heap(c), 2 * len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	fill(buf, len, 3);

	/* A plain write of that size is refused; the split one goes through. */
	CU_ASSERT_EQUAL(upcie_nvme_write(qp, ns, 0, nlb, buf, done_cb, &d, 0), -EINVAL);
	CU_ASSERT_EQUAL(
	    upcie_nvme_write_split(qp, ns, 0, nlb, buf, &sp, done_cb, &d, UPCIE_NVME_SUBMIT_RING),
	    0);
	CU_ASSERT_EQUAL(sp.parts, parts);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), parts);
	CU_ASSERT_EQUAL(wait_count(qp, &d.n, 1), 0);
	CU_ASSERT_EQUAL(d.status, 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);
	for (unsigned i = 0; i < 1000; i++)
		upcie_nvme_poll(qp, 0);
	CU_ASSERT_EQUAL(d.n, 1); /* once, not per part */

	memset(buf + len, 0, len);
	CU_ASSERT_EQUAL(upcie_nvme_read_split(qp, ns, 0, nlb, buf + len, &sp, done_cb, &d,
					      UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(wait_count(qp, &d.n, 2), 0);
	CU_ASSERT_EQUAL(d.status, 0);
	CU_ASSERT_EQUAL(memcmp(buf, buf + len, len), 0);

	/* Bad input is refused before anything is queued, with a message. */
	CU_ASSERT_EQUAL(upcie_nvme_read_split(qp, ns, ns->nsze - 1, 2, buf, &sp, done_cb, &d, 0),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "outside the namespace"));
	static uint8_t not_heap[8192];
	CU_ASSERT_EQUAL(
	    upcie_nvme_read_split(qp, ns, 0, 8192 / ns->lba_size, not_heap, &sp, done_cb, &d, 0),
	    -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "neither in the DMA heap nor registered"));
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(qp), 0);

	/* Too few free slots now: -EAGAIN and nothing queued. */
	struct upcie_nvme_qpair_opts small = {.depth = 8};
	struct upcie_nvme_qpair *q2 = upcie_nvme_qpair_create(c, &small);
	CU_ASSERT_PTR_NOT_NULL_FATAL(q2);
	struct done d2 = {0};
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(upcie_nvme_flush(q2, ns->nsid, done_cb, &d2, 0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_write_split(q2, ns, 0, nlb, buf, &sp, done_cb, &d, 0), -EAGAIN);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(q2), 4);
	upcie_nvme_ring(q2);
	CU_ASSERT_EQUAL(wait_count(q2, &d2.n, 4), 0);
	CU_ASSERT_EQUAL(
	    upcie_nvme_write_split(q2, ns, 0, nlb, buf, &sp, done_cb, &d, UPCIE_NVME_SUBMIT_RING),
	    0);
	CU_ASSERT_EQUAL(wait_count(q2, &d.n, 3), 0);
	/* More parts than the queue can ever hold. */
	CU_ASSERT_EQUAL(
	    upcie_nvme_write_split(q2, ns, 0, ns->max_xfer_blocks * 8, buf, &sp, done_cb, &d, 0),
	    -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "deeper queue"));
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(q2), 0);

	/* The first failing part's status reaches the one callback (sim only). */
	struct upcie_sim *sim = upcie_pci_sim(upcie_nvme_ctrl_dev(c));
	if (sim) {
		CU_ASSERT_EQUAL(upcie_sim_fault(sim, UPCIE_SIM_FAULT_STATUS_NTH, 2,
						UPCIE_NVME_SC_DATA_XFER_ERROR),
				0);
		CU_ASSERT_EQUAL(upcie_nvme_read_split(qp, ns, 0, nlb, buf + len, &sp, done_cb, &d,
						      UPCIE_NVME_SUBMIT_RING),
				0);
		CU_ASSERT_EQUAL(wait_count(qp, &d.n, 4), 0);
		CU_ASSERT_EQUAL(d.status, UPCIE_NVME_SC_DATA_XFER_ERROR);
		CU_ASSERT_TRUE(sp.failed);
		upcie_sim_fault(sim, UPCIE_SIM_FAULT_NONE, 0, 0);
	}
	upcie_dma_free(upcie_nvme_ctrl_heap(c), buf);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(c), 0);
}

/* ---- scatter lists ---- */

/* Write the pieces with one command, read them back as one buffer. */
static void iov_roundtrip(struct upcie_nvme_ctrl *c, struct upcie_nvme_qpair *qp,
			  enum upcie_nvme_iov_mode mode, const struct iovec *iov, unsigned n,
			  uint8_t *check, void *list, size_t list_bytes, uint8_t want_psdt)
{
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(c);
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_WRITE, .nsid = ns->nsid};
	struct done d = {0};
	size_t total = 0, off = 0;
	long len;

	struct upcie_nvme_ctrl_info info;

	for (unsigned i = 0; i < n; i++) {
		fill(iov[i].iov_base, iov[i].iov_len, 11 * i + 1);
		total += iov[i].iov_len;
	}
	upcie_nvme_ctrl_info(c, &info);
	if (total > info.max_xfer_bytes) {
		upcie_cu_skip("a scatter list above the controller's MDTS");
		return;
	}
	len = upcie_nvme_iov_setup(c, mode, iov, n, &sqe, list, list_bytes);
	CU_ASSERT_EQUAL_FATAL(len, (long)total);
	CU_ASSERT_EQUAL(sqe.flags & 0xc0, want_psdt);
	sqe.cdw12 = (uint32_t)(total / ns->lba_size - 1);
	CU_ASSERT_EQUAL(upcie_nvme_submit_iov(c, qp, mode, &sqe, iov, n, list, list_bytes, done_cb,
					      &d, UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(wait_count(qp, &d.n, 1), 0);
	CU_ASSERT_EQUAL(d.status, 0);
	memset(check, 0, total);
	CU_ASSERT_EQUAL(
	    upcie_nvme_read_sync(qp, ns, 0, (uint32_t)(total / ns->lba_size), check, NULL, 0), 0);
	for (unsigned i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(memcmp(check + off, iov[i].iov_base, iov[i].iov_len), 0);
		off += iov[i].iov_len;
	}
}

static void test_iov(void)
{
	struct upcie_nvme_ctrl *c = upcie_nvme_ctrl_get(fx_device(), NULL);
	struct upcie_dma_heap *h;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint8_t *pages, *check;
	void *list;
	size_t lb;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	h = upcie_nvme_ctrl_heap(c);
	ns = upcie_nvme_ns_first(c);
	qp = upcie_nvme_qpair_create(c, NULL);
	pages = upcie_dma_alloc_pages(h, 64 * 4096);
	check = upcie_dma_alloc_pages(h, 64 * 4096);
	lb = upcie_nvme_iov_list_bytes(8, 64 * 4096, 4096);
	list = upcie_dma_alloc(h, lb, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pages);
	CU_ASSERT_PTR_NOT_NULL_FATAL(check);
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);

	/* PRPs: page-aligned pieces in scattered order, one of them a page
	 * list on its own; the first may start inside a page. */
	size_t lba = ns->lba_size;
	struct iovec prp[4] = {
	    {pages + 40 * 4096 + 4096 - lba, lba}, /* ends on a page */
	    {pages + 10 * 4096, 4096},
	    {pages + 2 * 4096, 4096},
	    {pages + 20 * 4096, 4096 + lba}, /* the last may end anywhere */
	};
	iov_roundtrip(c, qp, UPCIE_NVME_IOV_PRP, prp, 4, check, list, lb, 0x00);
	iov_roundtrip(c, qp, UPCIE_NVME_IOV_AUTO, prp, 4, check, list, lb, 0x00);

	/* Pieces PRPs cannot describe: refused as PRP, taken as an SGL. */
	struct iovec odd[3] = {
	    {pages + 30 * 4096 + 512, 1024},
	    {pages + 33 * 4096 + 64, 2048},
	    {pages + 36 * 4096 + 1024, 4096 + 1024},
	};
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_WRITE};
	CU_ASSERT_EQUAL(upcie_nvme_iov_setup(c, UPCIE_NVME_IOV_PRP, odd, 3, &sqe, list, lb),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "buffer 0"));
	if (upcie_nvme_ctrl_sgl(c) && ns->lba_size == 512) {
		iov_roundtrip(c, qp, UPCIE_NVME_IOV_SGL, odd, 3, check, list, lb, 0x40);
		iov_roundtrip(c, qp, UPCIE_NVME_IOV_AUTO, odd, 3, check, list, lb, 0x40);
		/* One piece: the descriptor sits in the SQE, no list needed. */
		iov_roundtrip(c, qp, UPCIE_NVME_IOV_SGL, &odd[2], 1, check, NULL, 0, 0x40);
		/* A list too small says so. */
		CU_ASSERT_EQUAL(upcie_nvme_iov_setup(c, UPCIE_NVME_IOV_SGL, odd, 3, &sqe, list, 32),
				-ENOSPC);
	} else {
		upcie_cu_skip("no SGL support or no 512-byte namespace first");
	}
	static uint8_t not_heap[4096];
	struct iovec bad = {not_heap, 4096};
	CU_ASSERT_EQUAL(upcie_nvme_iov_setup(c, UPCIE_NVME_IOV_AUTO, &bad, 1, &sqe, list, lb),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "neither in the DMA heap nor registered"));

	upcie_dma_free(h, list);
	upcie_dma_free(h, pages);
	upcie_dma_free(h, check);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(c), 0);
}

/* A controller without SGLs: -ENOTSUP, and the device refuses PSDT 01b. */
static void test_no_sgl(void)
{
	struct upcie_sim_config cfg;
	struct fx f;

	FX_SIM_ONLY();
	upcie_sim_config_default(&cfg);
	cfg.sgl = false;
	CU_ASSERT_EQUAL_FATAL(fx_open_opts(&f, &cfg, 0, false, NULL), 0);
	CU_ASSERT_FALSE(upcie_nvme_ctrl_sgl(f.ctrl));
	uint8_t *buf = upcie_dma_alloc_pages(f.heap, 4096);
	struct iovec iov = {buf + 4, 512};
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_READ};
	CU_ASSERT_EQUAL(upcie_nvme_iov_setup(f.ctrl, UPCIE_NVME_IOV_SGL, &iov, 1, &sqe, NULL, 0),
			-ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_errmsg(), "SGL"));

	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(qp);
	sqe = (struct upcie_nvme_sqe){.opc = UPCIE_NVME_CMD_READ, .flags = 0x40, .nsid = 1};
	sqe.prp1 = (uintptr_t)buf;
	sqe.prp2 = 512; /* SGL1 bytes 8-15: length 512, type Data Block */
	struct done d = {0};
	CU_ASSERT_EQUAL(
	    upcie_nvme_submit_raw(qp, &sqe, NULL, 0, done_cb, &d, UPCIE_NVME_SUBMIT_RING), 0);
	CU_ASSERT_EQUAL(fx_wait(&f, qp, &d.n, 1), 0);
	CU_ASSERT_EQUAL(d.status, UPCIE_NVME_SC_INVALID_FIELD);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(qp), 0);
	upcie_dma_free(f.heap, buf);
	fx_close(&f);
}

static CU_TestInfo tests[] = {
    {"read/write fast path in a later heap segment", test_rw_in_later_segment},
    {"heap_grows", test_heap_grows},
    {"shared_refcount", test_shared_refcount},
    {"shared_threads", test_shared_threads},
    {"split", test_split},
    {"iov", test_iov},
    {"no_sgl", test_no_sgl},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("engine", NULL, NULL, tests)
