/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA heaps: hugepage-backed (memfd MFD_HUGETLB, else hugetlbfs), with a
 * per-page bus address table filled once at creation, and a first-fit
 * allocator whose bookkeeping lives in ordinary memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upcie/dma.h>
#include <upcie/pci.h>

#include "dma/heap.h"
#include "dma/hugetlb.h"
#include "core/log.h"
#include "core/page.h"
#include "pci/ctx.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

/* Page-granular (PRP) allocations are aligned to the smallest NVMe memory
 * page (CAP.MPSMIN is at least 4 KiB); the host page size is another thing. */
#define PRP_PAGE  4096u
#define MIN_ALIGN 64u

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static unsigned log2_exact(size_t v)
{
	return (unsigned)__builtin_ctzll((unsigned long long)v);
}

/* memfd with MFD_HUGETLB for the given page size (Linux >= 4.14). */
static int hugepage_fd_memfd(size_t pgsz)
{
	unsigned flags = MFD_HUGETLB | MFD_CLOEXEC | (log2_exact(pgsz) << MFD_HUGE_SHIFT);

	return memfd_create("upcie-dma", flags);
}

/* Fallback: an unlinked file on a hugetlbfs mount of that page size. */
static int hugepage_fd_hugetlbfs(size_t pgsz)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int fd;

	if (upcie_hugetlb_mount_for(NULL, pgsz, dir, sizeof(dir)))
		return -1;
	if (snprintf(path, sizeof(path), "%s/upcie-dma-XXXXXX", dir) >= (int)sizeof(path))
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Map 'len' bytes of hugepages; NULL when none can be had. */
static void *map_hugepages(size_t len, size_t pgsz)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = attempt == 0 ? hugepage_fd_memfd(pgsz) : hugepage_fd_hugetlbfs(pgsz);
		void *va;

		if (fd < 0)
			continue;
		if (ftruncate(fd, (off_t)len)) {
			close(fd);
			continue;
		}
		/* MAP_POPULATE takes the pages now: a shortage shows here, not as SIGBUS later. */
		va = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
		close(fd);
		if (va != MAP_FAILED)
			return va;
	}
	return NULL;
}

/*
 * Anonymous memory aligned to 'pgsz'. The kernel aligns to its own page,
 * which is pgsz except when a test fakes a larger one: then map one page
 * more and trim both ends.
 */
static void *map_small_pages(size_t len, size_t pgsz)
{
	size_t extra = (size_t)sysconf(_SC_PAGESIZE) < pgsz ? pgsz : 0;
	char *va = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	char *start;

	if (va == MAP_FAILED)
		return NULL;
	if (!extra)
		return va;
	start = (char *)align_up((uintptr_t)va, pgsz);
	if (start > va)
		munmap(va, (size_t)(start - va));
	if (va + extra > start)
		munmap(start + len, (size_t)(va + extra - start));
	return start;
}

static int blocks_insert(struct upcie_dma_heap *h, size_t idx, struct upcie_dma_block b)
{
	if (h->nblocks == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		struct upcie_dma_block *nb = realloc(h->blocks, ncap * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		h->blocks = nb;
		h->cap = ncap;
	}
	memmove(&h->blocks[idx + 1], &h->blocks[idx], (h->nblocks - idx) * sizeof(*h->blocks));
	h->blocks[idx] = b;
	h->nblocks++;
	return 0;
}

static void blocks_remove(struct upcie_dma_heap *h, size_t idx)
{
	memmove(&h->blocks[idx], &h->blocks[idx + 1], (h->nblocks - idx - 1) * sizeof(*h->blocks));
	h->nblocks--;
}

int upcie_dma_heap_map(const struct upcie_dma_heap *h, void *va, size_t len, size_t page_size,
		       uint64_t *bus)
{
	if (h->ctx)
		return upcie_dma_ctx_map(h->ctx, va, len, page_size, bus);
	return upcie_pci_dma_map(h->dev, va, len, page_size, bus);
}

int upcie_dma_heap_unmap(const struct upcie_dma_heap *h, void *va, size_t len, size_t page_size,
			 const uint64_t *bus)
{
	if (h->ctx)
		return upcie_dma_ctx_unmap(h->ctx, va, len, page_size, bus);
	return upcie_pci_dma_unmap(h->dev, va, len, page_size, bus);
}

unsigned upcie_dma_heap_caps(const struct upcie_dma_heap *h)
{
	return h->ctx ? upcie_dma_ctx_caps(h->ctx) : upcie_pci_dma_caps(h->dev);
}

const char *upcie_dma_heap_name(const struct upcie_dma_heap *h)
{
	return h->ctx ? upcie_dma_ctx_name(h->ctx) : upcie_pci_name(h->dev);
}

const char *upcie_dma_heap_backend_name(const struct upcie_dma_heap *h)
{
	return upcie_pci_backend_name(h->ctx ? upcie_dma_ctx_backend(h->ctx)
					     : upcie_pci_backend(h->dev));
}

struct upcie_dma_ctx *upcie_dma_heap_ctx(const struct upcie_dma_heap *h)
{
	return h ? h->ctx : NULL;
}

int upcie_dma_heap_ctrl_get(struct upcie_dma_heap *h, struct upcie_pci_dev *dev)
{
	struct upcie_dma_ctx *dc = upcie_pci_dma_ctx(dev);

	/* Outside contexts a heap serves the device it was made for only: its
	 * bus addresses are mapped for that device alone. */
	if (!dc && !h->ctx && h->dev != dev)
		return upcie_err(-EINVAL,
				 "%s: the DMA heap was made for %s: a heap outside a DMA context "
				 "serves its own device only; give this one a heap of its own, or "
				 "open both into one context (upcie_pci_opts.dma_ctx)",
				 upcie_pci_name(dev), upcie_dma_heap_name(h));
	if (h->ctx != dc)
		return upcie_err(-EINVAL,
				 "%s: the DMA heap is %s's, and the device is %s%s: a heap serves "
				 "the devices of its DMA context only; open the device with "
				 "upcie_pci_opts.dma_ctx set to the heap's context "
				 "(upcie_dma_heap_ctx()), or give it a heap of its own",
				 upcie_pci_name(dev), upcie_dma_heap_name(h),
				 dc ? "in " : "in no DMA context",
				 dc ? upcie_dma_ctx_name(dc) : "");
	__atomic_add_fetch(&h->ctrls, 1, __ATOMIC_ACQ_REL);
	return 0;
}

void upcie_dma_heap_ctrl_put(struct upcie_dma_heap *h)
{
	__atomic_sub_fetch(&h->ctrls, 1, __ATOMIC_ACQ_REL);
}

/* Undo a heap's memory and bookkeeping; mapped: the device mapping
 * exists. A heap that got no memory yet (h->va NULL) gives back only what
 * heap_create took before it. */
static void heap_release(struct upcie_dma_heap *h, bool mapped)
{
	if (mapped)
		upcie_dma_heap_unmap(h, h->va, h->len, h->page_size, h->bus);
	if (h->ctx)
		upcie_dma_ctx_heap_put(h->ctx);
	if (h->va)
		munmap(h->va, h->len);
	free(h->bus);
	free(h->blocks);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->grow_lock);
	pthread_mutex_destroy(&h->reg_lock);
	free(h);
}

/* A heap mapped for dev alone, or (ctx set, dev NULL) in a DMA context. */
static struct upcie_dma_heap *heap_create(struct upcie_pci_dev *dev, struct upcie_dma_ctx *ctx,
					  size_t size, unsigned flags)
{
	struct upcie_dma_heap *h;
	unsigned caps;
	long hpsz;
	int rc;

	if (!size)
		return upcie_err_null(-EINVAL, "DMA heap size is 0; give the bytes you need");
	if (ctx) {
		/* The context must have a device to map through (its caps too). */
		rc = upcie_dma_ctx_heap_get(ctx);
		if (rc) {
			errno = -rc;
			return NULL;
		}
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		if (ctx)
			upcie_dma_ctx_heap_put(ctx);
		return upcie_err_null(-ENOMEM, "out of memory for a DMA heap");
	}
	h->dev = dev;
	h->ctx = ctx;
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->grow_lock, NULL);
	pthread_mutex_init(&h->reg_lock, NULL);
	caps = upcie_dma_heap_caps(h);
	if ((flags & UPCIE_DMA_NO_HUGEPAGES) && (caps & UPCIE_PCI_DMA_NEEDS_HUGEPAGES)) {
		upcie_err(-EINVAL,
			  "%s: the %s backend needs hugepages (physical contiguity); "
			  "reserve some with 'hugepages setup --count N'",
			  upcie_dma_heap_name(h), upcie_dma_heap_backend_name(h));
		heap_release(h, false);
		errno = EINVAL;
		return NULL;
	}
	h->flags = flags;
	h->contiguous = (caps & UPCIE_PCI_DMA_BUS_CONTIGUOUS) != 0;

	hpsz = (flags & UPCIE_DMA_NO_HUGEPAGES) ? -1 : upcie_hugetlb_default_size();
	if (hpsz > 0) {
		h->len = align_up(size, (size_t)hpsz);
		h->va = map_hugepages(h->len, (size_t)hpsz);
		if (h->va) {
			h->page_size = (size_t)hpsz;
			h->hugepages = true;
		}
	}
	if (!h->va) {
		if ((caps & UPCIE_PCI_DMA_NEEDS_HUGEPAGES) || (flags & UPCIE_DMA_HUGEPAGES_ONLY)) {
			size_t need = hpsz > 0 ? align_up(size, (size_t)hpsz) / (size_t)hpsz : 0;
			upcie_err(-ENOMEM,
				  "%s: no free hugepages for a %zu-byte DMA heap (%zu "
				  "needed); reserve them with 'hugepages setup --count "
				  "%zu'",
				  upcie_dma_heap_name(h), size, need, need ? need : 16);
			heap_release(h, false);
			errno = ENOMEM;
			return NULL;
		}
		/* Base pages of the host's MMU: 4 KiB, or 16/64 KiB on some arm64
		 * kernels; each is contiguous for the device by itself. */
		h->page_size = upcie_host_page_size();
		h->len = align_up(size, h->page_size);
		h->va = map_small_pages(h->len, h->page_size);
		if (!h->va) {
			heap_release(h, false);
			return upcie_err_null(-ENOMEM, "cannot map %zu bytes for a DMA heap", size);
		}
		if (!(flags & UPCIE_DMA_NO_HUGEPAGES))
			upcie_warn("%s: no free hugepages; the DMA heap uses %zu-byte pages",
				   upcie_dma_heap_name(h), h->page_size);
	}
	/* Pin: the device may reach this memory at any time. Best effort for
	 * backends that pin themselves (vfio) or do not need it (sim). */
	if (mlock(h->va, h->len))
		upcie_debug("mlock of the DMA heap failed (%s); relying on the backend to pin",
			    strerror(errno));
	/* Touch every page so that its translation exists before the table is filled. */
	for (size_t off = 0; off < h->len; off += h->page_size)
		((volatile char *)h->va)[off] = 0;

	h->page_shift = log2_exact(h->page_size);
	h->npages = h->len >> h->page_shift;
	h->bus = calloc(h->npages, sizeof(*h->bus));
	if (!h->bus) {
		rc = -ENOMEM;
		goto err_unmap;
	}
	rc = upcie_dma_heap_map(h, h->va, h->len, h->page_size, h->bus);
	if (rc)
		goto err_unmap;
	rc = blocks_insert(h, 0, (struct upcie_dma_block){0, h->len, false});
	if (rc)
		goto err_dma;
	upcie_info("%s: DMA heap of %zu bytes in %zu-byte pages", upcie_dma_heap_name(h), h->len,
		   h->page_size);
	return h;

err_dma:
	heap_release(h, true);
	errno = -rc;
	return NULL;
err_unmap:
	heap_release(h, false);
	errno = -rc;
	return NULL;
}

struct upcie_dma_heap *upcie_dma_heap_create(struct upcie_pci_dev *dev, size_t size, unsigned flags)
{
	if (!dev)
		return upcie_err_null(-EINVAL, "upcie_dma_heap_create: no device");
	/* A device in a DMA context gets a heap of the context. */
	return heap_create(upcie_pci_dma_ctx(dev) ? NULL : dev, upcie_pci_dma_ctx(dev), size,
			   flags);
}

struct upcie_dma_heap *upcie_dma_heap_create_ctx(struct upcie_dma_ctx *ctx, size_t size,
						 unsigned flags)
{
	if (!ctx)
		return upcie_err_null(-EINVAL, "upcie_dma_heap_create_ctx: no DMA context");
	return heap_create(NULL, ctx, size, flags);
}

struct upcie_dma_heap *upcie_dma_heap_create_like(const struct upcie_dma_heap *h, size_t size,
						  unsigned flags)
{
	return heap_create(h->dev, h->ctx, size, flags);
}

void upcie_dma_heap_destroy(struct upcie_dma_heap *h)
{
	struct upcie_dma_heap_info info;
	long ctrls;

	if (!h)
		return;
	/* A context's heap outlives any one device, so a controller still open
	 * on it may DMA into it at any time: refused, not freed under it. */
	ctrls = __atomic_load_n(&h->ctrls, __ATOMIC_ACQUIRE);
	if (h->ctx && ctrls > 0) {
		upcie_err(-EBUSY,
			  "upcie_dma_heap_destroy: %ld controller(s) of %s are open on this heap; "
			  "close them (upcie_nvme_ctrl_close) first: the heap is left as it is",
			  ctrls, upcie_dma_heap_name(h));
		errno = EBUSY;
		return;
	}
	upcie_dma_heap_info(h, &info);
	if (info.allocations)
		/* Said, not hidden: a controller still using this memory would now
		 * DMA into pages the kernel may hand to someone else. */
		upcie_warn("destroying a DMA heap with %zu live allocations (%zu bytes): close the "
			   "controllers using it first, and free what you allocated",
			   info.allocations, info.used);
	upcie_dma_reg_destroy(h);
	upcie_dma_segs_destroy(h);
	heap_release(h, true);
}

/*
 * First fit. 'pages' allows straddling backing pages; otherwise on a heap
 * whose bus addresses are contiguous only within a page, the allocation is
 * moved to the next page boundary when it would cross one.
 */
static void *heap_alloc(struct upcie_dma_heap *h, size_t size, size_t align, bool pages)
{
	bool must_fit_page = !pages && !h->contiguous;

	if (!size)
		return upcie_err_null(-EINVAL, "DMA allocation of 0 bytes");
	if (align & (align - 1))
		return upcie_err_null(-EINVAL, "DMA alignment %zu is not a power of two", align);
	if (align < MIN_ALIGN)
		align = MIN_ALIGN;
	if (size > h->len)
		return upcie_err_null(
		    -ENOMEM, "DMA allocation of %zu bytes exceeds the %zu-byte heap", size, h->len);
	if (must_fit_page && size > h->page_size)
		return upcie_err_null(-EINVAL,
				      "a contiguous DMA allocation of %zu bytes cannot fit one "
				      "%zu-byte page; use upcie_dma_alloc_pages() for buffers",
				      size, h->page_size);
	size = align_up(size, MIN_ALIGN);

	for (size_t i = 0; i < h->nblocks; i++) {
		struct upcie_dma_block *b = &h->blocks[i];
		size_t start, end;

		if (b->used || b->len < size)
			continue;
		/* Align the address, not the offset: the base is only page aligned. */
		start = align_up((uintptr_t)h->va + b->off, align) - (uintptr_t)h->va;
		if (must_fit_page &&
		    (start >> h->page_shift) != ((start + size - 1) >> h->page_shift))
			start = align_up(start + 1, h->page_size);
		end = start + size;
		if (end > b->off + b->len)
			continue;

		/* Split into [free head][used][free tail]. */
		size_t b_end = b->off + b->len;
		if (start > b->off) {
			size_t head = start - b->off;
			if (blocks_insert(h, i, (struct upcie_dma_block){b->off, head, false}))
				return upcie_err_null(-ENOMEM, "out of memory for DMA bookkeeping");
			i++;
			b = &h->blocks[i];
		}
		b->off = start;
		b->len = size;
		b->used = true;
		if (end < b_end &&
		    blocks_insert(h, i + 1, (struct upcie_dma_block){end, b_end - end, false})) {
			b->len = b_end - start; /* keep the tail inside this block */
		}
		h->used += h->blocks[i].len;
		h->nallocs++;
		return (char *)h->va + start;
	}
	return upcie_err_null(-ENOMEM,
			      "DMA heap exhausted: %zu bytes asked, %zu of %zu in use; create a "
			      "larger heap",
			      size, h->used, h->len);
}

void *upcie_dma_alloc(struct upcie_dma_heap *h, size_t size, size_t align)
{
	void *p;

	pthread_mutex_lock(&h->lock);
	p = heap_alloc(h, size, align ? align : MIN_ALIGN, false);
	pthread_mutex_unlock(&h->lock);
	if (!p && errno == ENOMEM && (h->flags & UPCIE_DMA_GROW))
		p = upcie_dma_grow_alloc(h, size, align ? align : MIN_ALIGN, false);
	return p;
}

void *upcie_dma_alloc_pages(struct upcie_dma_heap *h, size_t size)
{
	return upcie_dma_alloc_pages_aligned(h, size, PRP_PAGE);
}

void *upcie_dma_alloc_pages_aligned(struct upcie_dma_heap *h, size_t size, size_t align)
{
	void *p;

	pthread_mutex_lock(&h->lock);
	p = heap_alloc(h, align_up(size, PRP_PAGE), align < PRP_PAGE ? PRP_PAGE : align, true);
	pthread_mutex_unlock(&h->lock);
	if (!p && errno == ENOMEM && (h->flags & UPCIE_DMA_GROW))
		p = upcie_dma_grow_alloc(h, align_up(size, PRP_PAGE),
					 align < PRP_PAGE ? PRP_PAGE : align, true);
	return p;
}

static int heap_free(struct upcie_dma_heap *h, void *ptr);

int upcie_dma_free(struct upcie_dma_heap *h, void *ptr)
{
	int rc;

	if (!ptr)
		return 0;
	if (__atomic_load_n(&h->nsegs, __ATOMIC_ACQUIRE) &&
	    ((char *)ptr < (char *)h->va || (char *)ptr >= (char *)h->va + h->len)) {
		struct upcie_dma_heap *seg = upcie_dma_seg_of(h, ptr, 1);
		if (seg)
			return upcie_dma_free(seg, ptr);
	}
	pthread_mutex_lock(&h->lock);
	rc = heap_free(h, ptr);
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static int heap_free(struct upcie_dma_heap *h, void *ptr)
{
	size_t off, lo = 0, hi;

	if (!ptr)
		return 0;
	if ((char *)ptr < (char *)h->va || (char *)ptr >= (char *)h->va + h->len)
		return upcie_err(-EINVAL, "upcie_dma_free: %p is not in this DMA heap", ptr);
	off = (size_t)((char *)ptr - (char *)h->va);
	hi = h->nblocks;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (h->blocks[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == h->nblocks || h->blocks[lo].off != off || !h->blocks[lo].used)
		return upcie_err(-EINVAL, "upcie_dma_free: %p is not an allocation (double free?)",
				 ptr);
	h->blocks[lo].used = false;
	h->used -= h->blocks[lo].len;
	h->nallocs--;
	/* Merge with free neighbours. */
	if (lo + 1 < h->nblocks && !h->blocks[lo + 1].used) {
		h->blocks[lo].len += h->blocks[lo + 1].len;
		blocks_remove(h, lo + 1);
	}
	if (lo > 0 && !h->blocks[lo - 1].used) {
		h->blocks[lo - 1].len += h->blocks[lo].len;
		blocks_remove(h, lo);
	}
	return 0;
}

uint64_t upcie_dma_bus(const struct upcie_dma_heap *h, const void *va)
{
	return upcie_dma_bus_fast(h, va);
}

bool upcie_dma_contains(const struct upcie_dma_heap *h, const void *va, size_t len)
{
	uintptr_t p = (uintptr_t)va, base = (uintptr_t)h->va;

	if (p >= base && len <= h->len && p - base <= h->len - len)
		return true;
	return upcie_dma_seg_of(h, va, len) != NULL || upcie_dma_reg_covers(h, va, len);
}

void upcie_dma_heap_info(const struct upcie_dma_heap *h, struct upcie_dma_heap_info *info)
{
	struct upcie_dma_heap *mh = (struct upcie_dma_heap *)h;

	memset(info, 0, sizeof(*info));
	info->size = h->len;
	info->page_size = h->page_size;
	info->hugepages = h->hugepages;
	/* The counters move under the allocator's lock: read them under it. */
	pthread_mutex_lock(&mh->lock);
	info->used = h->used;
	info->allocations = h->nallocs;
	pthread_mutex_unlock(&mh->lock);
	upcie_dma_reg_info(h, &info->regions, &info->registered);
	info->segments = 1;
	for (size_t i = 0; i < __atomic_load_n(&h->nsegs, __ATOMIC_ACQUIRE); i++) {
		struct upcie_dma_heap_info si;

		upcie_dma_heap_info(h->segs[i], &si);
		info->size += si.size;
		info->used += si.used;
		info->allocations += si.allocations;
		info->segments++;
	}
}
