/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Registered memory (upcie_dma_register): I/O on the caller's own memory
 * with the data checked (one page, PRP lists, split transfers, PRP and
 * SGL lists over two regions), refusals (unaligned, overlapping, not
 * mapped, unknown or partial unregister, unregistered buffers; uio: not
 * hugepages), unregister refused while commands are in flight and
 * accepted after, holds released by a controller reset, regions released
 * at heap destroy. Runs on the sim, and on a real controller through uio
 * or vfio when UPCIE_TEST_DEVICE names one (the guests do).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"

#define HUGE_2M (2u << 20)

static bool needs_huge(struct fx *f)
{
	return (upcie_pci_dma_caps(f->dev) & UPCIE_PCI_DMA_NEEDS_HUGEPAGES) != 0;
}

/* Memory this backend can register: whole hugepages under uio (faulted
 * in), ordinary pages elsewhere. NULL when none can be had. */
static void *reg_mem(struct fx *f, size_t want, size_t *len)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
	void *p;

	*len = want;
	if (needs_huge(f)) {
		*len = (want + HUGE_2M - 1) / HUGE_2M * HUGE_2M;
		flags |= MAP_HUGETLB;
	}
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, *len);
	return p;
}

static bool msg_has(const char *s)
{
	return strstr(upcie_errmsg(), s) != NULL;
}

static uint8_t pat(uint64_t lba, uint32_t i, uint32_t gen)
{
	return (uint8_t)(lba * 37 + i * 11 + (i >> 9) + gen * 29 + 1);
}

static void fill(uint8_t *b, uint32_t lbs, uint64_t slba, uint32_t nlb, uint32_t gen)
{
	for (uint32_t k = 0; k < nlb; k++)
		for (uint32_t i = 0; i < lbs; i++)
			b[(size_t)k * lbs + i] = pat(slba + k, i, gen);
}

static unsigned bad(const uint8_t *b, uint32_t lbs, uint64_t slba, uint32_t nlb, uint32_t gen)
{
	unsigned n = 0;

	for (uint32_t k = 0; k < nlb; k++)
		for (uint32_t i = 0; i < lbs; i++)
			n += b[(size_t)k * lbs + i] != pat(slba + k, i, gen);
	return n;
}

struct env {
	struct fx f;
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_qpair *qp;
	uint32_t lbs;
};

static bool env_open(struct env *e)
{
	memset(e, 0, sizeof(*e));
	if (fx_open(&e->f)) {
		CU_FAIL("fixture");
		return false;
	}
	e->ns = upcie_nvme_ns_first(e->f.ctrl);
	e->qp = upcie_nvme_qpair_create(e->f.ctrl, NULL);
	CU_ASSERT_PTR_NOT_NULL(e->ns);
	CU_ASSERT_PTR_NOT_NULL(e->qp);
	if (!e->ns || !e->qp) {
		fx_close(&e->f);
		return false;
	}
	e->lbs = e->ns->lba_size;
	return true;
}

/* Memory pages of the multi-page transfers: 5 when MDTS allows (4 on a
 * 16 KiB controller: still a PRP list from a mid-page start, or for 4
 * whole pages). */
static uint32_t xpages(const struct env *e)
{
	uint32_t p = e->ns->max_xfer_blocks * e->lbs / 4096;

	return p < 5 ? p : 5;
}

static void env_close(struct env *e)
{
	if (e->qp)
		CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(e->qp), 0);
	fx_close(&e->f);
}

/* Write a pattern from one part of a registered region, read it into
 * another, synchronously and asynchronously; one page and PRP lists. */
static void test_rw(void)
{
	struct upcie_dma_heap_info hi;
	struct fx_counter cnt = {0};
	struct env e;
	size_t len;
	uint8_t *m;

	if (!env_open(&e))
		return;
	m = reg_mem(&e.f, 256u << 10, &len);
	if (!m) {
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	CU_ASSERT_EQUAL(upcie_dma_bus(e.f.heap, m), UPCIE_DMA_BAD_ADDR);
	CU_ASSERT_FALSE(upcie_dma_contains(e.f.heap, m, 4096));
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, len), 0);
	CU_ASSERT_NOT_EQUAL(upcie_dma_bus(e.f.heap, m), UPCIE_DMA_BAD_ADDR);
	CU_ASSERT_NOT_EQUAL(upcie_dma_bus(e.f.heap, m + len - 1), UPCIE_DMA_BAD_ADDR);
	/* Within a page the bus addresses follow the virtual ones. */
	CU_ASSERT_EQUAL(upcie_dma_bus(e.f.heap, m + 100), upcie_dma_bus(e.f.heap, m) + 100);
	CU_ASSERT_TRUE(upcie_dma_contains(e.f.heap, m, len));
	/* (Not len + 1: the mapping after it may be the heap's own.) */
	upcie_dma_heap_info(e.f.heap, &hi);
	CU_ASSERT_EQUAL(hi.regions, 1);
	CU_ASSERT_EQUAL(hi.registered, len);

	/* One page, async (the general path takes it: not heap memory). */
	uint32_t nlb1 = 4096 / e.lbs;
	fill(m, e.lbs, 8, nlb1, 1);
	CU_ASSERT_EQUAL(
	    upcie_nvme_write(e.qp, e.ns, 8, nlb1, m, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING), 0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 1), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read(e.qp, e.ns, 8, nlb1, m + 65536, fx_count_cb, &cnt,
					UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 2), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(bad(m + 65536, e.lbs, 8, nlb1, 1), 0);

	/* Five pages (four under 16 KiB MDTS) from a 512-byte offset: PRP1
	 * mid-page, then a PRP list (sync helpers: the hold wraps their waiter
	 * too). */
	uint32_t np = xpages(&e);
	uint32_t nlb5 = np * 4096 / e.lbs;
	uint8_t *src = m + 4096 + (e.lbs < 4096 ? 512 : 0);
	fill(src, e.lbs, 64, nlb5, 2);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(e.qp, e.ns, 64, nlb5, src, NULL, 0), 0);
	memset(m + 131072, 0, np * 4096);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(e.qp, e.ns, 64, nlb5, m + 131072, NULL, 0), 0);
	CU_ASSERT_EQUAL(bad(m + 131072, e.lbs, 64, nlb5, 2), 0);

	/* The same LBAs through a heap buffer: the device saw the data. */
	uint8_t *hb = upcie_dma_alloc_pages(e.f.heap, 5 * 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hb);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(e.qp, e.ns, 64, nlb5, hb, NULL, 0), 0);
	CU_ASSERT_EQUAL(bad(hb, e.lbs, 64, nlb5, 2), 0);
	upcie_dma_free(e.f.heap, hb);

	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), 0);
	CU_ASSERT_EQUAL(upcie_dma_bus(e.f.heap, m), UPCIE_DMA_BAD_ADDR);
	CU_ASSERT_FALSE(upcie_dma_contains(e.f.heap, m, 4096));
	upcie_dma_heap_info(e.f.heap, &hi);
	CU_ASSERT_EQUAL(hi.regions, 0);
	CU_ASSERT_EQUAL(hi.registered, 0);
	/* Unregistered: refused again. */
	CU_ASSERT_EQUAL(upcie_nvme_read(e.qp, e.ns, 8, nlb1, m, fx_count_cb, &cnt, 0), -EINVAL);
	CU_ASSERT(msg_has("registered"));
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(e.qp), 0);
	munmap(m, len);
	env_close(&e);
}

/* Transfers above MDTS (split) from and into registered memory. */
static void test_split(void)
{
	struct fx_counter cnt = {0};
	struct upcie_nvme_split s1, s2;
	struct env e;
	size_t len, xfer;
	uint32_t nlb;
	uint8_t *m;

	if (!env_open(&e))
		return;
	xfer = (size_t)e.ns->max_xfer_blocks * e.lbs * 2 + 4096;
	if (xfer > (1u << 20))
		xfer = 1u << 20;
	nlb = (uint32_t)(xfer / e.lbs);
	m = reg_mem(&e.f, 2 * xfer, &len);
	if (!m) {
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, len), 0);
	fill(m, e.lbs, 256, nlb, 3);
	CU_ASSERT_EQUAL(upcie_nvme_write_split(e.qp, e.ns, 256, nlb, m, &s1, fx_count_cb, &cnt,
					       UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 1), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read_split(e.qp, e.ns, 256, nlb, m + xfer, &s2, fx_count_cb,
					      &cnt, UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 2), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(bad(m + xfer, e.lbs, 256, nlb, 3), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), 0);
	munmap(m, len);
	env_close(&e);
}

/* Scatter lists over two registered regions: PRPs (page-aligned inner
 * boundaries, a PRP list) and, when the controller takes them, an SGL of
 * odd-sized buffers. The data is checked through a heap buffer. */
static void test_iov(void)
{
	struct fx_counter cnt = {0};
	struct env e;
	size_t la, lb, list_bytes;
	uint8_t *a, *b, *hb;
	void *list;
	unsigned want = 0;

	if (!env_open(&e))
		return;
	a = reg_mem(&e.f, 64u << 10, &la);
	b = a ? reg_mem(&e.f, 64u << 10, &lb) : NULL;
	if (!b) {
		if (a)
			munmap(a, la);
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, a, la), 0);
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, b, lb), 0);
	list_bytes = upcie_nvme_iov_list_bytes(4, 64u << 10, 4096);
	list = upcie_dma_alloc(e.f.heap, list_bytes, 4096);
	hb = upcie_dma_alloc_pages(e.f.heap, 64u << 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hb);

	/* PRPs: 3 pages of a (2 under 16 KiB MDTS), then 2 pages of b (a PRP
	 * list). */
	size_t pa = (size_t)(xpages(&e) - 2) * 4096; /* 3 pages (2 under 16 KiB MDTS) */
	struct iovec prp[2] = {{a, pa}, {b + 8192, 2 * 4096}};
	struct upcie_nvme_sqe w = {.opc = UPCIE_NVME_CMD_WRITE, .nsid = e.ns->nsid};
	uint32_t nlb = (uint32_t)((pa + 8192) / e.lbs);
	fill(hb, e.lbs, 512, nlb, 4);
	memcpy(a, hb, pa);
	memcpy(b + 8192, hb + pa, 2 * 4096);
	w.cdw10 = 512;
	w.cdw12 = nlb - 1;
	CU_ASSERT_EQUAL(upcie_nvme_submit_iov(e.f.ctrl, e.qp, UPCIE_NVME_IOV_PRP, &w, prp, 2, list,
					      list_bytes, fx_count_cb, &cnt,
					      UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, ++want), 0);
	memset(hb, 0, pa + 8192);
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(e.qp, e.ns, 512, nlb, hb, NULL, 0), 0);
	CU_ASSERT_EQUAL(bad(hb, e.lbs, 512, nlb, 4), 0);

	/* Read them back the other way round into the two regions. */
	struct iovec back[2] = {{b, 2 * 4096}, {a + 4096, pa}};
	struct upcie_nvme_sqe r = w;
	r.opc = UPCIE_NVME_CMD_READ;
	CU_ASSERT_EQUAL(upcie_nvme_submit_iov(e.f.ctrl, e.qp, UPCIE_NVME_IOV_AUTO, &r, back, 2,
					      list, list_bytes, fx_count_cb, &cnt,
					      UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, ++want), 0);
	CU_ASSERT_EQUAL(memcmp(b, hb, 2 * 4096), 0);
	CU_ASSERT_EQUAL(memcmp(a + 4096, hb + 2 * 4096, pa), 0);

	if (upcie_nvme_ctrl_sgl(e.f.ctrl) && e.lbs == 512) {
		/* An SGL: 1536 bytes at an odd spot of a, 2560 of b: no PRP
		 * can describe the inner boundary. */
		struct iovec sg[2] = {{a + 40960 + 64, 1536}, {b + 30000 - 48, 2560}};
		struct upcie_nvme_sqe sw = w;
		sw.cdw10 = 640;
		sw.cdw12 = 8 - 1;
		fill(hb, 512, 640, 8, 5);
		memcpy(sg[0].iov_base, hb, 1536);
		memcpy(sg[1].iov_base, hb + 1536, 2560);
		CU_ASSERT_EQUAL(upcie_nvme_submit_iov(e.f.ctrl, e.qp, UPCIE_NVME_IOV_SGL, &sw, sg,
						      2, list, list_bytes, fx_count_cb, &cnt,
						      UPCIE_NVME_SUBMIT_RING),
				0);
		CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, ++want), 0);
		memset(hb, 0, 4096);
		CU_ASSERT_EQUAL(upcie_nvme_read_sync(e.qp, e.ns, 640, 8, hb, NULL, 0), 0);
		CU_ASSERT_EQUAL(bad(hb, 512, 640, 8, 5), 0);
	} else {
		printf("\n  (no SGL case: the controller takes no SGLs or the LBA is not 512 B)\n");
	}
	CU_ASSERT_EQUAL(cnt.errors, 0);
	/* A list with an unregistered buffer: refused, nothing held. */
	uint8_t *plain =
	    mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(plain != MAP_FAILED);
	struct iovec mixed[2] = {{a, 4096}, {plain, 4096}};
	CU_ASSERT_EQUAL(upcie_nvme_submit_iov(e.f.ctrl, e.qp, UPCIE_NVME_IOV_AUTO, &r, mixed, 2,
					      list, list_bytes, fx_count_cb, &cnt, 0),
			-EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, a, la), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, b, lb), 0);
	munmap(plain, 8192);
	upcie_dma_free(e.f.heap, list);
	upcie_dma_free(e.f.heap, hb);
	munmap(a, la);
	munmap(b, lb);
	env_close(&e);
}

/* Refusals, each with a message naming what is wrong. */
static void test_refusals(void)
{
	struct fx_counter cnt = {0};
	struct env e;
	size_t len, host = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *m, *hole;
	void *hp;

	if (!env_open(&e))
		return;
	CU_ASSERT_EQUAL(upcie_dma_register(NULL, &cnt, 4096), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_unregister(NULL, &cnt, 4096), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, NULL, 4096), -EINVAL);

	/* Ordinary pages: under uio refused (not hugepages), else taken. */
	m = mmap(NULL, 16 * host, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	CU_ASSERT_FATAL(m != MAP_FAILED);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m + 1, 4 * host), -EINVAL);
	CU_ASSERT(msg_has("page aligned"));
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m, 4 * host + 8), -EINVAL);
	CU_ASSERT(msg_has("page aligned"));
	if (needs_huge(&e.f)) {
		CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m, 4 * host), -EINVAL);
		CU_ASSERT(msg_has("hugepage"));
		/* malloc memory too. */
		void *heapmem = NULL;
		CU_ASSERT_EQUAL(posix_memalign(&heapmem, host, 4 * host), 0);
		memset(heapmem, 1, 4 * host);
		CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, heapmem, 4 * host), -EINVAL);
		CU_ASSERT(msg_has("hugepage"));
		free(heapmem);
		munmap(m, 16 * host);
		m = reg_mem(&e.f, HUGE_2M, &len);
		if (!m) {
			upcie_cu_skip("no free 2 MiB hugepage for the rest");
			env_close(&e);
			return;
		}
		/* Part of a hugepage: refused. */
		CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m, HUGE_2M / 2), -EINVAL);
		CU_ASSERT(msg_has("hugepages"));
	} else {
		len = 16 * host;
	}
	size_t part = needs_huge(&e.f) ? len : 8 * host;
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, part), 0);
	/* Overlaps: the same range, a range reaching into it. */
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m, part), -EEXIST);
	CU_ASSERT(msg_has("overlaps"));
	if (!needs_huge(&e.f)) {
		CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m + 4 * host, 8 * host), -EEXIST);
		/* Adjacent is fine; a buffer across both regions works. */
		CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, m + part, 8 * host), 0);
		CU_ASSERT_TRUE(upcie_dma_contains(e.f.heap, m + part - 4096, 8192));
		CU_ASSERT_EQUAL(
		    upcie_nvme_read_sync(e.qp, e.ns, 0, 8192 / e.lbs, m + part - 4096, NULL, 0), 0);
		CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m + part, 8 * host), 0);
	}
	/* The heap's own memory needs no registration. */
	void *h = upcie_dma_alloc_pages(e.f.heap, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, h, 4096),
			needs_huge(&e.f) ? -EINVAL : -EEXIST);
	upcie_dma_free(e.f.heap, h);
	/* Unknown and partial unregisters. */
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, &cnt, 4096), -EINVAL);
	CU_ASSERT(msg_has("nothing is registered"));
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, part - host), -EINVAL);
	CU_ASSERT(msg_has("give its start and length"));
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m + host, part - host), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, part), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, part), -EINVAL);

	/* Not mapped: a hole in the middle. */
	hole = mmap(NULL, 3 * host, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(hole != MAP_FAILED);
	munmap(hole + host, host);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, hole, 3 * host), -EFAULT);
	CU_ASSERT(msg_has("not mapped"));
	munmap(hole, host);
	munmap(hole + 2 * host, host);

	/* A buffer neither from the heap nor registered. */
	hp = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(hp != MAP_FAILED);
	CU_ASSERT_EQUAL(upcie_nvme_read(e.qp, e.ns, 0, 4096 / e.lbs, hp, fx_count_cb, &cnt,
					UPCIE_NVME_SUBMIT_RING),
			-EINVAL);
	CU_ASSERT(msg_has("neither in the DMA heap nor in registered memory"));
	CU_ASSERT_EQUAL(upcie_nvme_read_sync(e.qp, e.ns, 0, 4096 / e.lbs, hp, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(e.qp), 0);
	munmap(hp, 8192);
	munmap(m, len);
	env_close(&e);
}

/* Unregister is refused while a command uses the region, accepted after
 * its completion was reaped. */
static void test_busy(void)
{
	struct fx_counter cnt = {0};
	struct env e;
	size_t len;
	uint8_t *m;
	void *list;
	size_t list_bytes = upcie_nvme_iov_list_bytes(2, 16384, 4096);

	if (!env_open(&e))
		return;
	m = reg_mem(&e.f, 64u << 10, &len);
	if (!m) {
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, len), 0);
	CU_ASSERT_EQUAL(upcie_nvme_read(e.qp, e.ns, 0, 4096 / e.lbs, m, fx_count_cb, &cnt,
					UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(upcie_nvme_read(e.qp, e.ns, 0, 4096 / e.lbs, m + 8192, fx_count_cb, &cnt,
					UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), -EBUSY);
	CU_ASSERT(msg_has("2 command(s) in flight"));
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 1), 0);
	if (cnt.done == 1) {
		CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), -EBUSY);
		CU_ASSERT(msg_has("1 command(s) in flight"));
	}
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 2), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), 0);

	/* The same through a scatter list. */
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, len), 0);
	list = upcie_dma_alloc(e.f.heap, list_bytes, 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(list);
	struct iovec iov[2] = {{m, 8192}, {m + 16384, 8192}};
	struct upcie_nvme_sqe r = {.opc = UPCIE_NVME_CMD_READ, .nsid = e.ns->nsid};
	r.cdw12 = 16384 / e.lbs - 1;
	CU_ASSERT_EQUAL(upcie_nvme_submit_iov(e.f.ctrl, e.qp, UPCIE_NVME_IOV_AUTO, &r, iov, 2, list,
					      list_bytes, fx_count_cb, &cnt,
					      UPCIE_NVME_SUBMIT_RING),
			0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), -EBUSY);
	CU_ASSERT(msg_has("1 command(s) in flight"));
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 3), 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), 0);
	upcie_dma_free(e.f.heap, list);
	munmap(m, len);
	env_close(&e);
}

/* Commands a reset ends (host-aborted) let go of their regions. */
static void test_reset_releases(void)
{
	struct fx_counter cnt = {0};
	struct env e;
	size_t len;
	uint8_t *m;

	if (!env_open(&e))
		return;
	m = reg_mem(&e.f, 64u << 10, &len);
	if (!m) {
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, len), 0);
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(upcie_nvme_read(e.qp, e.ns, i, 1, m + i * 4096, fx_count_cb, &cnt,
						UPCIE_NVME_SUBMIT_RING),
				0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), -EBUSY);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_reset(e.f.ctrl), 0);
	CU_ASSERT_EQUAL(fx_wait(&e.f, e.qp, &cnt.done, 4), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_outstanding(e.qp), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), 0);
	munmap(m, len);
	env_close(&e);
}

/* Regions still registered at heap destroy are released there (the
 * sanitizer and valgrind runs see a leak otherwise); a new heap on the
 * same device can register the same memory again. */
static void test_destroy_releases(void)
{
	struct upcie_dma_heap_info hi;
	struct env e;
	size_t la, lb;
	uint8_t *a, *b;

	if (!env_open(&e))
		return;
	a = reg_mem(&e.f, 64u << 10, &la);
	b = a ? reg_mem(&e.f, 64u << 10, &lb) : NULL;
	if (!b) {
		if (a)
			munmap(a, la);
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, a, la), 0);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, b, lb), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, a, la), 0);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, a, la), 0);
	upcie_dma_heap_info(e.f.heap, &hi);
	CU_ASSERT_EQUAL(hi.regions, 2);
	CU_ASSERT_EQUAL(hi.registered, la + lb);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(e.qp), 0);
	e.qp = NULL;
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(e.f.ctrl), 0);
	e.f.ctrl = NULL;
	upcie_dma_heap_destroy(e.f.heap);
	e.f.heap = upcie_dma_heap_create(e.f.dev, 4u << 20, e.f.sim ? UPCIE_DMA_NO_HUGEPAGES : 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e.f.heap);
	CU_ASSERT_EQUAL(upcie_dma_register(e.f.heap, a, la), 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, a, la), 0);
	fx_close(&e.f);
	munmap(a, la);
	munmap(b, lb);
}

/* Another thread registers and unregisters a second region while this
 * one does verified I/O on the first: lookups take no lock and must see
 * either table, never a torn one (ThreadSanitizer runs this too). */
struct churn {
	struct upcie_dma_heap *heap;
	uint8_t *mem;
	size_t len;
	volatile int stop;
	unsigned rounds, errors;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		if (upcie_dma_register(c->heap, c->mem, c->len))
			c->errors++;
		if (upcie_dma_bus(c->heap, c->mem + c->len / 2) == UPCIE_DMA_BAD_ADDR)
			c->errors++;
		if (upcie_dma_unregister(c->heap, c->mem, c->len))
			c->errors++;
		__atomic_add_fetch(&c->rounds, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void test_concurrent(void)
{
	struct fx_counter cnt = {0};
	struct churn ch = {0};
	struct env e;
	size_t len;
	uint8_t *m;
	pthread_t th;
	unsigned mism = 0;

	if (!env_open(&e))
		return;
	m = reg_mem(&e.f, 64u << 10, &len);
	ch.mem = m ? reg_mem(&e.f, 64u << 10, &ch.len) : NULL;
	if (!ch.mem) {
		if (m)
			munmap(m, len);
		upcie_cu_skip("no memory this backend can register (uio: free 2 MiB hugepages)");
		env_close(&e);
		return;
	}
	ch.heap = e.f.heap;
	CU_ASSERT_EQUAL_FATAL(upcie_dma_register(e.f.heap, m, len), 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, churn_thread, &ch), 0);
	/* 200 rounds, and on until the other thread did a few of its own (a
	 * loaded machine may not schedule it at once), within a bound. */
	for (unsigned i = 0;
	     i < 200 || (__atomic_load_n(&ch.rounds, __ATOMIC_ACQUIRE) < 4 && i < 200000); i++) {
		uint32_t nlb = 4096 / e.lbs;
		uint64_t lba = 1024 + (i % 16) * nlb;

		fill(m, e.lbs, lba, nlb, 6 + i);
		if (upcie_nvme_write(e.qp, e.ns, lba, nlb, m, fx_count_cb, &cnt,
				     UPCIE_NVME_SUBMIT_RING) ||
		    fx_wait(&e.f, e.qp, &cnt.done, 2 * i + 1) ||
		    upcie_nvme_read(e.qp, e.ns, lba, nlb, m + 32768, fx_count_cb, &cnt,
				    UPCIE_NVME_SUBMIT_RING) ||
		    fx_wait(&e.f, e.qp, &cnt.done, 2 * i + 2)) {
			CU_FAIL("registered I/O while another thread registers");
			break;
		}
		mism += bad(m + 32768, e.lbs, lba, nlb, 6 + i) != 0;
	}
	__atomic_store_n(&ch.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(mism, 0);
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(ch.errors, 0);
	CU_ASSERT(ch.rounds > 0);
	CU_ASSERT_EQUAL(upcie_dma_unregister(e.f.heap, m, len), 0);
	munmap(m, len);
	munmap(ch.mem, ch.len);
	env_close(&e);
}

static CU_TestInfo tests[] = {
    {"registered I/O: one page and PRP lists, data checked", test_rw},
    {"registered I/O: split transfers above MDTS", test_split},
    {"registered I/O: PRP and SGL lists over two regions", test_iov},
    {"refusals: unaligned, overlapping, not mapped, unknown unregister, not registered",
     test_refusals},
    {"unregister refused while commands are in flight", test_busy},
    {"a reset's aborts release the regions", test_reset_releases},
    {"heap destroy releases what is left", test_destroy_releases},
    {"I/O while another thread registers and unregisters", test_concurrent},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("dma_reg", NULL, NULL, tests)
