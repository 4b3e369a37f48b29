/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA contexts (upcie_dma_ctx_create): two controllers opened into one
 * context share one heap; a buffer written through one is read back
 * through the other, heap memory and registered memory alike. Refusals:
 * a device of another backend, a heap of another context (or of no
 * context), a heap destroyed while a controller on it is open, a heap on
 * a context without devices, unknown flags. Lifetime: closing one device
 * leaves the other's memory mapped (its commands in flight complete with
 * their data), a device opened later gets the heaps made before it, the
 * context outlives its creator's destroy while devices and heaps use it.
 *
 * Threads: destroy while an open into the context runs in another thread,
 * and opens, closes and heaps of several threads in one context (run the
 * suite under -Db_sanitize=thread too). Bookkeeping: a context's map
 * checks its arguments as a device's does; an unmap that fails leaves the
 * range counted. No-IOMMU devices: the rule that keeps physical and IOVA
 * spaces apart.
 *
 * Runs on two stepped sims; on real controllers when UPCIE_TEST_DEVICES
 * names two ("0000:00:04.0 0000:00:05.0": the guests do), through uio or
 * vfio (type1 or iommufd, UPCIE_VFIO_IOMMU). UPCIE_TEST_SAME_GROUP=1: the
 * two share an IOMMU group (type1: one group file for both in a context;
 * in two contexts the second is refused).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upcie/engine.h>

#include "fixture.h"
#include "pci/ctx.h"
#include "pci/vfio.h"
#include "sim/sim_priv.h"

#define NDEV 3
#define LBAS 8

static char names[NDEV][32];
static unsigned nnames;

/* The devices: UPCIE_TEST_DEVICES (two or three names), else sims. */
static bool on_sim(void)
{
	return nnames == 0;
}

static int suite_init(void)
{
	const char *env = getenv("UPCIE_TEST_DEVICES");
	char buf[256];

	if (!env || !*env)
		return 0;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *t = strtok(buf, " ,"); t && nnames < NDEV; t = strtok(NULL, " ,"))
		snprintf(names[nnames++], sizeof(names[0]), "%s", t);
	return nnames >= 2 ? 0 : -1;
}

struct dev {
	struct upcie_sim *sim;
	struct upcie_pci_dev *pci;
	struct upcie_nvme_ctrl *ctrl;
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
};

static bool msg_has(const char *s)
{
	return strstr(upcie_errmsg(), s) != NULL;
}

/* Open device i into ctx (a sim of its own on the sim). */
static int dev_open(struct dev *d, unsigned i, struct upcie_dma_ctx *ctx)
{
	struct upcie_pci_opts po = {.dma_ctx = ctx};
	struct upcie_sim_config cfg;

	memset(d, 0, sizeof(*d));
	if (on_sim()) {
		upcie_sim_config_default(&cfg);
		d->sim = upcie_sim_create(&cfg);
		if (!d->sim)
			return -errno;
		po.sim = d->sim;
	}
	d->pci = upcie_pci_open(on_sim() ? "sim" : names[i], &po);
	if (!d->pci) {
		int rc = -errno;

		printf("\n  open: %s\n", upcie_errmsg());
		upcie_sim_destroy(d->sim);
		d->sim = NULL;
		return rc;
	}
	return 0;
}

static int ctrl_up(struct dev *d, struct upcie_dma_heap *heap)
{
	d->ctrl = upcie_nvme_ctrl_open(d->pci, heap, NULL);
	if (!d->ctrl) {
		printf("\n  ctrl open: %s\n", upcie_errmsg());
		return -errno;
	}
	d->qp = upcie_nvme_qpair_create(d->ctrl, NULL);
	d->ns = upcie_nvme_ns_first(d->ctrl);
	if (!d->qp || !d->ns) {
		printf("\n  qpair/ns: %s\n", upcie_errmsg());
		return -EIO;
	}
	return 0;
}

static void ctrl_down(struct dev *d)
{
	if (d->qp)
		CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(d->qp), 0);
	if (d->ctrl)
		CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(d->ctrl), 0);
	d->qp = NULL;
	d->ctrl = NULL;
}

static void dev_close(struct dev *d)
{
	ctrl_down(d);
	upcie_pci_close(d->pci);
	upcie_sim_destroy(d->sim);
	memset(d, 0, sizeof(*d));
}

static void fill(uint8_t *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + seed * 13 + (i >> 9) + 1);
}

/* Write buf to d's namespace at LBA 0, read it back into out. */
static void roundtrip(struct dev *d, void *buf, void *out, size_t len)
{
	uint32_t nlb = (uint32_t)(len / d->ns->lba_size);
	uint16_t st = 0;

	CU_ASSERT_EQUAL_FATAL(upcie_nvme_write_sync(d->qp, d->ns, 0, nlb, buf, &st, 5000), 0);
	memset(out, 0, len);
	CU_ASSERT_EQUAL_FATAL(upcie_nvme_read_sync(d->qp, d->ns, 0, nlb, out, &st, 5000), 0);
	CU_ASSERT_EQUAL(memcmp(buf, out, len), 0);
}

static size_t xfer_len(struct dev *a, struct dev *b)
{
	uint32_t lbs = a->ns->lba_size > b->ns->lba_size ? a->ns->lba_size : b->ns->lba_size;

	return (size_t)lbs * LBAS;
}

/* One heap, two controllers: a buffer written through A, read through B,
 * and B's data read back into A's buffer; the same on registered memory. */
static void test_two_ctrls_one_heap(void)
{
	struct upcie_dma_ctx *ctx = upcie_dma_ctx_create(0);
	struct upcie_dma_ctx_info ci;
	struct upcie_dma_heap *heap;
	struct dev a, b;
	uint8_t *buf, *out, *reg;
	size_t len, rlen = 1u << 20;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dev_open(&b, 1, ctx), 0);
	CU_ASSERT_PTR_EQUAL(upcie_pci_dma_ctx(a.pci), ctx);
	CU_ASSERT_PTR_EQUAL(upcie_pci_dma_ctx(b.pci), ctx);
	heap = upcie_dma_heap_create_ctx(ctx, 8u << 20, on_sim() ? UPCIE_DMA_NO_HUGEPAGES : 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(heap);
	CU_ASSERT_PTR_EQUAL(upcie_dma_heap_ctx(heap), ctx);
	CU_ASSERT_EQUAL_FATAL(ctrl_up(&a, heap), 0);
	CU_ASSERT_EQUAL_FATAL(ctrl_up(&b, heap), 0);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.devices, 2);
	CU_ASSERT_EQUAL(ci.heaps, 1);
	CU_ASSERT(ci.mapped >= (8u << 20));
	CU_ASSERT_EQUAL(ci.backend, (int)upcie_pci_backend(a.pci));
	if (ci.iommu)
		printf("\n  %s: one %s space for %s and %s\n", upcie_pci_backend_name(ci.backend),
		       ci.iommu, upcie_pci_name(a.pci), upcie_pci_name(b.pci));
	CU_ASSERT(!ci.iommu || !strcmp(ci.iommu, upcie_pci_vfio_iommu_name(a.pci)));

	len = xfer_len(&a, &b);
	buf = upcie_dma_alloc_pages(heap, len);
	out = upcie_dma_alloc_pages(heap, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	fill(buf, len, 1);
	roundtrip(&a, buf, out, len);
	/* out came from A's device; B writes it and reads it back into buf. */
	roundtrip(&b, out, buf, len);
	fill(buf, len, 2);
	roundtrip(&b, buf, out, len);
	roundtrip(&a, out, buf, len);

	/* Registered memory on the context's heap: hugepages under uio. */
	if (upcie_pci_dma_caps(a.pci) & UPCIE_PCI_DMA_NEEDS_HUGEPAGES) {
		rlen = 2u << 20;
		reg = mmap(NULL, rlen, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_HUGETLB, -1, 0);
	} else {
		reg = mmap(NULL, rlen, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	}
	if (reg == MAP_FAILED) {
		upcie_cu_skip("no hugepage for registered memory");
	} else {
		memset(reg, 0, rlen);
		CU_ASSERT_EQUAL_FATAL(upcie_dma_register(heap, reg, rlen), 0);
		fill(reg, len, 3);
		roundtrip(&a, reg, reg + rlen / 2, len);
		roundtrip(&b, reg + rlen / 2, reg, len);
		CU_ASSERT_EQUAL(upcie_dma_unregister(heap, reg, rlen), 0);
		munmap(reg, rlen);
	}

	upcie_dma_free(heap, buf);
	upcie_dma_free(heap, out);
	ctrl_down(&a);
	ctrl_down(&b);
	upcie_dma_heap_destroy(heap);
	dev_close(&a);
	dev_close(&b);
	upcie_dma_ctx_destroy(ctx);
}

/* One backend per context: a uio device beside a sim is refused before it
 * is touched, saying why. */
static void test_mixed_backends_refused(void)
{
	struct upcie_pci_opts po = {.backend = UPCIE_PCI_BACKEND_UIO};
	struct upcie_dma_ctx *ctx;
	char dir[] = "/tmp/upcie-ctx-XXXXXX";
	struct dev a;

	if (!on_sim()) {
		upcie_cu_skip("the sim stands for the other backend");
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	CU_ASSERT_EQUAL_FATAL(setenv("UPCIE_LOCK_DIR", dir, 1), 0);
	ctx = upcie_dma_ctx_create(0);
	CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, ctx), 0);
	po.dma_ctx = ctx;
	CU_ASSERT_PTR_NULL(upcie_pci_open("0000:01:00.0", &po));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("one DMA context serves one backend"));
	CU_ASSERT(msg_has("uio backend"));
	CU_ASSERT(msg_has("holds sim devices (sim)"));
	/* The refused open left nothing behind: the lock is free again. */
	po.dma_ctx = NULL;
	dev_close(&a);
	/* Unknown flags and a heap on a context without devices. */
	CU_ASSERT_PTR_NULL(upcie_dma_ctx_create(1));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("pass 0"));
	CU_ASSERT_PTR_NULL(upcie_dma_heap_create_ctx(ctx, 1u << 20, UPCIE_DMA_NO_HUGEPAGES));
	CU_ASSERT_EQUAL(errno, ENODEV);
	CU_ASSERT(msg_has("open one into it first"));
	CU_ASSERT_PTR_NULL(upcie_dma_heap_create_ctx(NULL, 1u << 20, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	upcie_dma_ctx_destroy(ctx);
	unsetenv("UPCIE_LOCK_DIR");
	rmdir(dir);
}

/* A heap serves the devices of its own context only. */
static void test_heap_of_other_ctx_refused(void)
{
	struct upcie_dma_ctx *c1 = upcie_dma_ctx_create(0), *c2 = upcie_dma_ctx_create(0);
	unsigned flags = on_sim() ? UPCIE_DMA_NO_HUGEPAGES : 0;
	struct upcie_dma_heap *h1, *h2, *own;
	struct dev a, b, c;

	CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, c1), 0);
	if (getenv("UPCIE_TEST_SAME_GROUP")) {
		/* Two devices of one IOMMU group (type1 attaches groups, not
		 * devices): they cannot be in two contexts. */
		struct upcie_pci_opts po = {.dma_ctx = c2};

		CU_ASSERT_PTR_NULL(upcie_pci_open(names[1], &po));
		CU_ASSERT_EQUAL(errno, EBUSY);
		CU_ASSERT(msg_has("IOMMU group"));
		dev_close(&a);
		upcie_dma_ctx_destroy(c1);
		upcie_dma_ctx_destroy(c2);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(dev_open(&b, 1, c2), 0);
	h1 = upcie_dma_heap_create(a.pci, 2u << 20, flags); /* the context's */
	h2 = upcie_dma_heap_create_ctx(c2, 2u << 20, flags);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h2);
	CU_ASSERT_PTR_EQUAL(upcie_dma_heap_ctx(h1), c1);
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_open(b.pci, h1, NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("a heap serves the devices of its DMA context only"));
	/* A device in no context, and a context device with a private heap. */
	dev_close(&a);
	CU_ASSERT_EQUAL_FATAL(dev_open(&c, 0, NULL), 0);
	own = upcie_dma_heap_create(c.pci, 2u << 20, flags);
	CU_ASSERT_PTR_NOT_NULL_FATAL(own);
	CU_ASSERT_PTR_NULL(upcie_dma_heap_ctx(own));
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_open(c.pci, h2, NULL));
	CU_ASSERT(msg_has("in no DMA context"));
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_open(b.pci, own, NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	/* Outside contexts: another device's own heap (its bus addresses are
	 * that device's alone). A third device: only the sim has one (in the
	 * guests A and B are both open here). */
	if (upcie_pci_sim(c.pci)) {
		CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, NULL), 0);
		CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_open(a.pci, own, NULL));
		CU_ASSERT_EQUAL(errno, EINVAL);
		CU_ASSERT(msg_has("serves its own device only"));
		dev_close(&a);
	}
	/* The right heap still works after the refusals. */
	CU_ASSERT_EQUAL(ctrl_up(&b, h2), 0);
	dev_close(&b);
	upcie_dma_heap_destroy(own); /* a device's own heap: before the device */
	dev_close(&c);
	upcie_dma_heap_destroy(h1); /* a context's: after its only device closed */
	upcie_dma_heap_destroy(h2);
	upcie_dma_ctx_destroy(c1);
	upcie_dma_ctx_destroy(c2);
}

/* Teardown order: the heap is not destroyed under an open controller;
 * closing one device leaves the other's buffers mapped, its command in
 * flight completes with its data; a device opened later gets the heap;
 * the creator's destroy does not end a context still in use. */
static void test_teardown_order(void)
{
	struct upcie_dma_ctx *ctx = upcie_dma_ctx_create(0);
	struct upcie_dma_ctx_info ci;
	struct upcie_dma_heap *heap;
	struct fx_counter cnt = {0};
	struct dev a, b, c;
	uint8_t *buf, *out;
	uint32_t nlb;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, ctx), 0);
	CU_ASSERT_EQUAL_FATAL(dev_open(&b, 1, ctx), 0);
	heap = upcie_dma_heap_create_ctx(ctx, 4u << 20,
					 UPCIE_DMA_GROW | (on_sim() ? UPCIE_DMA_NO_HUGEPAGES : 0));
	CU_ASSERT_PTR_NOT_NULL_FATAL(heap);
	CU_ASSERT_EQUAL_FATAL(ctrl_up(&a, heap), 0);
	CU_ASSERT_EQUAL_FATAL(ctrl_up(&b, heap), 0);
	/* The creator lets go: the devices and the heap keep it. */
	upcie_dma_ctx_destroy(ctx);

	/* Refused while controllers are open on it. */
	upcie_dma_heap_destroy(heap);
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("controller(s) of DMA context"));

	len = xfer_len(&a, &b);
	buf = upcie_dma_alloc_pages(heap, len);
	out = upcie_dma_alloc_pages(heap, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	fill(buf, len, 4);
	roundtrip(&a, buf, out, len);
	/* A read on B in flight while A closes: its buffer stays mapped. */
	nlb = (uint32_t)(len / b.ns->lba_size);
	CU_ASSERT_EQUAL(upcie_nvme_write_sync(b.qp, b.ns, 0, nlb, buf, NULL, 5000), 0);
	memset(out, 0, len);
	CU_ASSERT_EQUAL_FATAL(
	    upcie_nvme_read(b.qp, b.ns, 0, nlb, out, fx_count_cb, &cnt, UPCIE_NVME_SUBMIT_RING), 0);
	dev_close(&a);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.devices, 1);
	while (!cnt.done) {
		if (b.sim)
			upcie_sim_step(b.sim);
		upcie_nvme_poll(b.qp, 0);
	}
	CU_ASSERT_EQUAL(cnt.errors, 0);
	CU_ASSERT_EQUAL(memcmp(buf, out, len), 0);

	/* A device opened into the context now reaches the heap made before. */
	CU_ASSERT_EQUAL_FATAL(dev_open(&c, on_sim() ? 2 : 0, ctx), 0);
	CU_ASSERT_EQUAL_FATAL(ctrl_up(&c, heap), 0);
	fill(buf, len, 5);
	roundtrip(&c, buf, out, len);
	roundtrip(&b, out, buf, len);
	/* A grown segment serves both. */
	{
		void *big = upcie_dma_alloc_pages(heap, 6u << 20);
		struct upcie_dma_heap_info hi;

		CU_ASSERT_PTR_NOT_NULL_FATAL(big);
		upcie_dma_heap_info(heap, &hi);
		CU_ASSERT_EQUAL(hi.segments, 2);
		fill(big, len, 6);
		roundtrip(&c, big, out, len);
		roundtrip(&b, out, big, len);
		upcie_dma_free(heap, big);
	}

	upcie_dma_free(heap, buf);
	upcie_dma_free(heap, out);
	dev_close(&b);
	dev_close(&c);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.devices, 0);
	CU_ASSERT_EQUAL(ci.heaps, 2);
	/* The last holder: the heap; destroying it frees the context (the
	 * leak checkers see to it). */
	upcie_dma_heap_destroy(heap);
}

/* upcie_nvme_ctrl_get() with a context: controllers of two devices share
 * the context's one heap; a get of an open device with another context is
 * refused; the heap goes with the last put. */
static void test_shared_ctrls(void)
{
	struct upcie_dma_ctx *ctx = upcie_dma_ctx_create(0), *other = upcie_dma_ctx_create(0);
	struct upcie_nvme_get_opts go = {.size = sizeof(go), .dma_ctx = ctx};
	struct upcie_nvme_ctrl *c1, *c2;
	struct upcie_dma_ctx_info ci;
	struct dev a = {0}, b = {0};
	uint8_t *buf, *out;
	size_t len;

	if (!on_sim()) {
		upcie_cu_skip("runs on the sim's named models (sim1, sim2)");
		upcie_dma_ctx_destroy(ctx);
		upcie_dma_ctx_destroy(other);
		return;
	}
	c1 = upcie_nvme_ctrl_get("sim1", &go);
	c2 = upcie_nvme_ctrl_get("sim2", &go);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_PTR_EQUAL(upcie_nvme_ctrl_heap(c1), upcie_nvme_ctrl_heap(c2));
	CU_ASSERT_PTR_EQUAL(upcie_dma_heap_ctx(upcie_nvme_ctrl_heap(c1)), ctx);
	CU_ASSERT_STRING_EQUAL(upcie_pci_name(upcie_nvme_ctrl_dev(c2)), "sim2");
	go.dma_ctx = other;
	CU_ASSERT_PTR_NULL(upcie_nvme_ctrl_get("sim1", &go));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("get every controller of a job with the same context"));

	a.ctrl = c1;
	b.ctrl = c2;
	a.qp = upcie_nvme_qpair_create(c1, NULL);
	b.qp = upcie_nvme_qpair_create(c2, NULL);
	a.ns = upcie_nvme_ns_first(c1);
	b.ns = upcie_nvme_ns_first(c2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a.qp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b.qp);
	len = xfer_len(&a, &b);
	buf = upcie_dma_alloc_pages(upcie_nvme_ctrl_heap(c1), len);
	out = upcie_dma_alloc_pages(upcie_nvme_ctrl_heap(c2), len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	fill(buf, len, 7);
	roundtrip(&a, buf, out, len);
	roundtrip(&b, out, buf, len);
	upcie_dma_free(upcie_nvme_ctrl_heap(c1), buf);
	upcie_dma_free(upcie_nvme_ctrl_heap(c1), out);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(a.qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_qpair_destroy(b.qp), 0);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(c1), 0);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.devices, 1);
	CU_ASSERT_EQUAL(ci.heaps, 1);
	CU_ASSERT_EQUAL(upcie_nvme_ctrl_put(c2), 0);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.devices, 0);
	CU_ASSERT_EQUAL(ci.heaps, 0);
	upcie_dma_ctx_destroy(ctx);
	upcie_dma_ctx_destroy(other);
}

struct opener {
	struct upcie_dma_ctx *ctx;
	struct dev d;
	int rc;
	bool done; /* atomic */
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;

	o->rc = dev_open(&o->d, 2, o->ctx);
	__atomic_store_n(&o->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Wait until o's open holds the context's lock (it is in its join), then
 * destroy the context (that waits for the lock): true. false when the open
 * was done before the wait saw it (the caller destroys later). */
static bool destroy_while_joining(struct opener *o)
{
	while (!__atomic_load_n(&o->done, __ATOMIC_ACQUIRE)) {
		if (pthread_mutex_trylock(&o->ctx->lock)) {
			upcie_dma_ctx_destroy(o->ctx);
			return true;
		}
		pthread_mutex_unlock(&o->ctx->lock);
		/* let the opener run: under valgrind, whose threads take
		 * turns, a spin without it starves the opener for seconds */
		sched_yield();
	}
	return false;
}

/* The creator's destroy while another thread's open is joining (it holds
 * the context's lock): the open keeps the context, the device works, its
 * close frees the context (the leak checkers see to that). */
static void test_destroy_during_open(void)
{
	if (!on_sim()) {
		upcie_cu_skip("opens a third device: the sim only");
		return;
	}
	for (unsigned round = 0; round < 20; round++) {
		struct opener o = {.ctx = upcie_dma_ctx_create(0)};
		struct upcie_dma_ctx_info ci;
		bool joining;
		pthread_t t;

		CU_ASSERT_PTR_NOT_NULL_FATAL(o.ctx);
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, open_thread, &o), 0);
		joining = destroy_while_joining(&o);
		pthread_join(t, NULL);
		CU_ASSERT_EQUAL_FATAL(o.rc, 0);
		if (!joining)
			upcie_dma_ctx_destroy(o.ctx);
		upcie_dma_ctx_info(upcie_pci_dma_ctx(o.d.pci), &ci);
		CU_ASSERT_EQUAL(ci.devices, 1);
		dev_close(&o.d);
	}
}

/* A join that fails after the backend opened the device (the context
 * cannot give it a mapping), with the creator's destroy waiting meanwhile:
 * the device is closed again under the context's lock and the open lets
 * go of the context last, which frees it then (no access after: ASan;
 * no leak: the leak checkers). */
static void test_join_fails_during_destroy(void)
{
	for (unsigned round = 0; round < 20; round++) {
		struct opener o = {.ctx = upcie_dma_ctx_create(0)};
		struct upcie_dma_ctx_map *m = calloc(1, sizeof(*m));
		bool joining;
		pthread_t t;

		if (!on_sim()) {
			upcie_cu_skip("a mapping the sim refuses: the sim only");
			upcie_dma_ctx_destroy(o.ctx);
			free(m);
			return;
		}
		CU_ASSERT_PTR_NOT_NULL_FATAL(o.ctx);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		/* A range that wraps: the model refuses it when the join
		 * gives it the context's mappings. */
		m->va = (void *)(UINTPTR_MAX & ~(uintptr_t)4095);
		m->len = m->page_size = 8192;
		o.ctx->maps = m;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, open_thread, &o), 0);
		joining = destroy_while_joining(&o);
		pthread_join(t, NULL);
		CU_ASSERT_EQUAL(o.rc, -EINVAL);
		CU_ASSERT_PTR_NULL(o.d.pci);
		if (!joining) {
			struct upcie_dma_ctx_info ci;

			upcie_dma_ctx_info(o.ctx, &ci);
			CU_ASSERT_EQUAL(ci.devices, 0);
			upcie_dma_ctx_destroy(o.ctx);
		}
	}
}

struct churn {
	struct upcie_dma_ctx *ctx;
	pthread_barrier_t *opened;
	int errors;
};

/* Open a device into the context, wait for the others, then open, map a
 * heap through, and close more devices while the main thread lets go of
 * the context. */
static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	struct dev x, y;

	if (dev_open(&x, 2, c->ctx))
		c->errors++;
	pthread_barrier_wait(c->opened);
	if (!x.pci)
		return NULL;
	for (int i = 0; i < 8; i++) {
		struct upcie_dma_heap *h;
		struct upcie_dma_ctx_info ci;

		if (dev_open(&y, 2, c->ctx)) {
			c->errors++;
			continue;
		}
		h = upcie_dma_heap_create_ctx(c->ctx, 64u << 10, UPCIE_DMA_NO_HUGEPAGES);
		if (!h)
			c->errors++;
		upcie_dma_ctx_info(c->ctx, &ci);
		if (ci.devices < 2)
			c->errors++;
		upcie_dma_heap_destroy(h);
		dev_close(&y);
	}
	dev_close(&x);
	return NULL;
}

/* Several threads open, map and close in one context while its creator
 * destroys it and its first device closes: every device joins, the
 * context goes with the last close. */
static void test_threads_churn(void)
{
	enum { NT = 3 };
	pthread_barrier_t opened;
	struct churn c[NT];
	pthread_t t[NT];
	struct dev a;

	if (!on_sim()) {
		upcie_cu_skip("opens many devices: the sim only");
		return;
	}
	for (unsigned round = 0; round < 4; round++) {
		struct upcie_dma_ctx *ctx = upcie_dma_ctx_create(0);

		CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
		CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, ctx), 0);
		pthread_barrier_init(&opened, NULL, NT + 1);
		for (unsigned i = 0; i < NT; i++) {
			c[i] = (struct churn){ctx, &opened, 0};
			CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
		}
		pthread_barrier_wait(&opened);
		upcie_dma_ctx_destroy(ctx);
		dev_close(&a);
		for (unsigned i = 0; i < NT; i++) {
			pthread_join(t[i], NULL);
			CU_ASSERT_EQUAL(c[i].errors, 0);
		}
		pthread_barrier_destroy(&opened);
	}
}

/* A context's map checks its arguments as upcie_pci_dma_map() does. */
static void test_ctx_map_checks(void)
{
	struct upcie_dma_ctx *ctx = upcie_dma_ctx_create(0);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *mem;
	uint64_t bus[4];
	struct dev a;

	if (!on_sim()) {
		upcie_cu_skip("maps unpinned memory: the sim only");
		upcie_dma_ctx_destroy(ctx);
		return;
	}
	mem = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(mem != MAP_FAILED);
	CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, ctx), 0);
	CU_ASSERT_EQUAL(upcie_dma_ctx_map(ctx, mem + 8, 2 * pg, pg, bus), -EINVAL);
	CU_ASSERT(msg_has("must be non-zero multiples of the page size"));
	CU_ASSERT_EQUAL(upcie_dma_ctx_map(ctx, mem, pg + 8, pg, bus), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_ctx_map(ctx, mem, 0, pg, bus), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_ctx_map(ctx, mem, 3000, 3000, bus), -EINVAL);
	CU_ASSERT(msg_has("page size 3000 is not a power of two"));
	/* The same words for a device's own map. */
	CU_ASSERT_EQUAL(upcie_pci_dma_map(a.pci, mem + 8, 2 * pg, pg, bus), -EINVAL);
	CU_ASSERT(msg_has("must be non-zero multiples of the page size"));
	CU_ASSERT_EQUAL(upcie_dma_ctx_map(ctx, mem, 2 * pg, pg, bus), 0);
	CU_ASSERT_EQUAL(upcie_dma_ctx_unmap(ctx, mem, 2 * pg, pg, bus), 0);
	dev_close(&a);
	upcie_dma_ctx_destroy(ctx);
	munmap(mem, 4 * pg);
}

/* An unmap the backend refuses: the range stays counted as mapped (and
 * as failed), is not found by a second unmap, is not given to a device
 * that joins later, and goes with the context. */
static void test_unmap_failure_counted(void)
{
	struct upcie_dma_ctx *ctx = upcie_dma_ctx_create(0);
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct upcie_dma_ctx_info ci;
	size_t ranges;
	uint64_t bus[4];
	uint8_t *mem;
	struct dev a, b;

	if (!on_sim()) {
		upcie_cu_skip("makes the sim's model lose a mapping: the sim only");
		upcie_dma_ctx_destroy(ctx);
		return;
	}
	mem = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(mem != MAP_FAILED);
	CU_ASSERT_EQUAL_FATAL(dev_open(&a, 0, ctx), 0);
	CU_ASSERT_EQUAL_FATAL(upcie_dma_ctx_map(ctx, mem, 2 * pg, pg, bus), 0);
	/* The model forgets it: the context's unmap fails. */
	CU_ASSERT_EQUAL_FATAL(upcie_sim_dma_del(a.sim, (uintptr_t)mem, 2 * pg), 0);
	CU_ASSERT_NOT_EQUAL(upcie_dma_ctx_unmap(ctx, mem, 2 * pg, pg, bus), 0);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.mapped, 2 * pg);
	CU_ASSERT_EQUAL(ci.unmap_failed, 2 * pg);
	CU_ASSERT_EQUAL(upcie_dma_ctx_unmap(ctx, mem, 2 * pg, pg, bus), -EINVAL);
	CU_ASSERT(msg_has("is not mapped in it"));
	/* The same memory mapped again is a mapping of its own. */
	CU_ASSERT_EQUAL(upcie_dma_ctx_map(ctx, mem, 2 * pg, pg, bus), 0);
	ranges = a.sim->nr_ranges;
	CU_ASSERT_EQUAL_FATAL(dev_open(&b, 1, ctx), 0);
	CU_ASSERT_EQUAL(b.sim->nr_ranges, 1); /* the live one, not the stuck one */
	CU_ASSERT_EQUAL(upcie_dma_ctx_unmap(ctx, mem, 2 * pg, pg, bus), 0);
	CU_ASSERT_EQUAL(a.sim->nr_ranges, ranges - 1);
	upcie_dma_ctx_info(ctx, &ci);
	CU_ASSERT_EQUAL(ci.mapped, 2 * pg);
	CU_ASSERT_EQUAL(ci.unmap_failed, 2 * pg);
	dev_close(&a);
	dev_close(&b);
	upcie_dma_ctx_destroy(ctx);
	munmap(mem, 4 * pg);
}

/* vfio's no-IOMMU mode in a context (the sim cannot stand for vfio: the
 * rule itself): physical joins physical, IOVA joins IOVA, the two never
 * mix, and the refusal says which is which. */
static void test_noiommu_flavour(void)
{
	const struct upcie_vfio_iommu_ops *no = &upcie_vfio_noiommu_ops,
					  *t1 = &upcie_vfio_type1_ops,
					  *fd = &upcie_vfio_iommufd_ops;

	CU_ASSERT_EQUAL(upcie_vfio_ctx_flavour("0000:00:04.0", "ctx", NULL, no), 0);
	CU_ASSERT_EQUAL(upcie_vfio_ctx_flavour("0000:00:04.0", "ctx", no, no), 0);
	CU_ASSERT_EQUAL(upcie_vfio_ctx_flavour("0000:00:04.0", "ctx", t1, t1), 0);
	CU_ASSERT_EQUAL(upcie_vfio_ctx_flavour("0000:00:04.0", "ctx", t1, fd), 0);
	CU_ASSERT_EQUAL(upcie_vfio_ctx_flavour("0000:00:04.0", "ctx", t1, no), -ENOTSUP);
	CU_ASSERT(msg_has("0000:00:04.0 is in vfio's no-IOMMU mode"));
	CU_ASSERT(msg_has("through the type1 IOMMU"));
	CU_ASSERT_EQUAL(upcie_vfio_ctx_flavour("0000:00:05.0", "ctx", no, fd), -ENOTSUP);
	CU_ASSERT(msg_has("0000:00:05.0 sits behind an IOMMU (iommufd)"));
	CU_ASSERT(msg_has("no-IOMMU mode"));
	CU_ASSERT(no->physical && !no->map && !no->unmap);
}

static CU_TestInfo tests[] = {
    {"two controllers, one heap", test_two_ctrls_one_heap},
    {"mixed backends refused", test_mixed_backends_refused},
    {"heap of another context refused", test_heap_of_other_ctx_refused},
    {"teardown order", test_teardown_order},
    {"shared controllers in a context", test_shared_ctrls},
    {"destroy while an open joins", test_destroy_during_open},
    {"a join that fails while destroy waits", test_join_fails_during_destroy},
    {"threads open, map and close in one context", test_threads_churn},
    {"context maps check their arguments", test_ctx_map_checks},
    {"a failed unmap stays counted", test_unmap_failure_counted},
    {"no-IOMMU devices and IOVA spaces do not mix", test_noiommu_flavour},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("dma_ctx", suite_init, NULL, tests)
