/* SPDX-License-Identifier: BSD-3-Clause */
/* DMA heap internals shared with the NVMe layer's hot path. */
#ifndef UPCIE_LIB_DMA_PRIV_H
#define UPCIE_LIB_DMA_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upcie/dma.h>

struct upcie_dma_block {
	size_t off;
	size_t len;
	bool used;
};

/* A registered region (reg.c): the caller's memory, mapped for the device. */
struct upcie_dma_region {
	uintptr_t va;
	size_t len;
	size_t page_size; /* pages its bus table describes */
	unsigned page_shift;
	uint64_t *bus; /* bus address of each page */
	long users;    /* commands holding it (atomic); negative once unregistered */
	struct upcie_dma_region *retired;
};

/* The registered regions, sorted by address; never changed once published. */
struct upcie_dma_reg_table {
	struct upcie_dma_reg_table *retired;
	size_t n;
	struct upcie_dma_region *r[];
};

/* Most segments a growable heap (UPCIE_DMA_GROW) adds to its first one. */
#define UPCIE_DMA_MAX_SEGS 64

struct upcie_dma_heap {
	struct upcie_pci_dev *dev; /* NULL on a context's heap: it outlives any one device */
	struct upcie_dma_ctx *ctx; /* the DMA context whose space it is mapped in, or NULL */
	long ctrls;		   /* controllers opened on it and not closed (atomic) */
	void *va;
	size_t len;
	size_t page_size;
	unsigned page_shift;
	size_t npages;
	uint64_t *bus; /* bus address of each backing page */
	bool hugepages;
	bool contiguous; /* bus addresses contiguous across pages */
	/* Allocator bookkeeping: sorted by offset, outside device memory.
	 * Guarded by lock: allocation is never on the I/O path. */
	pthread_mutex_t lock;
	struct upcie_dma_block *blocks;
	size_t nblocks, cap;
	size_t used, nallocs;
	/* Growth (lib/dma/grow.c): the first segment is this heap's own
	 * va/len/bus, which the hot path reads directly. Each later segment is
	 * a heap of its own, mapped for the device when added; a slot is
	 * written before nsegs is raised (release), and nsegs is read with
	 * acquire, so translation takes no lock. */
	unsigned flags;
	pthread_mutex_t grow_lock;
	struct upcie_dma_heap *segs[UPCIE_DMA_MAX_SEGS];
	size_t nsegs;
	/* Registered memory (lib/dma/reg.c): regs is read with acquire and
	 * replaced whole under reg_lock; replaced tables and unregistered
	 * regions wait on the retired lists until the heap is destroyed. */
	pthread_mutex_t reg_lock;
	struct upcie_dma_reg_table *regs;
	struct upcie_dma_reg_table *retired_tables;
	struct upcie_dma_region *retired_regs;
	size_t reg_bytes;
};

/* The heap's device or context: its mapping, caps and name (dma.c). */
int upcie_dma_heap_map(const struct upcie_dma_heap *h, void *va, size_t len, size_t page_size,
		       uint64_t *bus) __attribute__((visibility("hidden")));
int upcie_dma_heap_unmap(const struct upcie_dma_heap *h, void *va, size_t len, size_t page_size,
			 const uint64_t *bus) __attribute__((visibility("hidden")));
unsigned upcie_dma_heap_caps(const struct upcie_dma_heap *h) __attribute__((visibility("hidden")));
const char *upcie_dma_heap_name(const struct upcie_dma_heap *h)
    __attribute__((visibility("hidden")));
const char *upcie_dma_heap_backend_name(const struct upcie_dma_heap *h)
    __attribute__((visibility("hidden")));
/* A segment like h's first: same device or context. */
struct upcie_dma_heap *upcie_dma_heap_create_like(const struct upcie_dma_heap *h, size_t size,
						  unsigned flags)
    __attribute__((visibility("hidden")));
/*
 * A controller on dev is opened on heap h: 0, or -EINVAL when h cannot
 * serve dev (a heap of another device or DMA context), saying so. Counted
 * until upcie_dma_heap_ctrl_put(): a context's heap is not destroyed while
 * a controller on it is open.
 */
int upcie_dma_heap_ctrl_get(struct upcie_dma_heap *h, struct upcie_pci_dev *dev)
    __attribute__((visibility("hidden")));
void upcie_dma_heap_ctrl_put(struct upcie_dma_heap *h) __attribute__((visibility("hidden")));

/* Page-granular allocation aligned to 'align' (a power of two >= 4 KiB). */
void *upcie_dma_alloc_pages_aligned(struct upcie_dma_heap *h, size_t size, size_t align)
    __attribute__((visibility("hidden")));

/* grow.c: the segments after the first. */
uint64_t upcie_dma_seg_bus(const struct upcie_dma_heap *h, const void *va)
    __attribute__((visibility("hidden")));
void *upcie_dma_grow_alloc(struct upcie_dma_heap *h, size_t size, size_t align, bool pages)
    __attribute__((visibility("hidden")));
struct upcie_dma_heap *upcie_dma_seg_of(const struct upcie_dma_heap *h, const void *va, size_t len)
    __attribute__((visibility("hidden")));
void upcie_dma_segs_destroy(struct upcie_dma_heap *h) __attribute__((visibility("hidden")));

/* reg.c: registered regions. */
/* Bus address of a registered va, or UPCIE_DMA_BAD_ADDR. */
uint64_t upcie_dma_reg_bus(const struct upcie_dma_heap *h, const void *va)
    __attribute__((visibility("hidden")));
/* [va, va + len) lies in heap segments and registered regions (at least one). */
bool upcie_dma_reg_covers(const struct upcie_dma_heap *h, const void *va, size_t len)
    __attribute__((visibility("hidden")));
/*
 * Hold the registered regions [va, va + len) lies in, for a command that
 * uses them (unregister refuses a held region with -EBUSY): the count of
 * regions held (in out[], 0 when the range is all heap), -EINVAL when part
 * of the range is neither heap nor registered (or being unregistered),
 * -E2BIG when it spans more than max regions. Nothing is held on error.
 */
int upcie_dma_reg_hold(const struct upcie_dma_heap *h, const void *va, size_t len,
		       struct upcie_dma_region **out, unsigned max)
    __attribute__((visibility("hidden")));
void upcie_dma_reg_release(struct upcie_dma_region **r, unsigned n)
    __attribute__((visibility("hidden")));
void upcie_dma_reg_info(const struct upcie_dma_heap *h, size_t *regions, size_t *bytes)
    __attribute__((visibility("hidden")));
/* Heap destroy: unmap and free every region. */
void upcie_dma_reg_destroy(struct upcie_dma_heap *h) __attribute__((visibility("hidden")));

/* Bus address of heap offset 'off' (< h->len, checked by the caller). */
static inline uint64_t upcie_dma_bus_at(const struct upcie_dma_heap *h, uintptr_t off)
{
	return h->bus[off >> h->page_shift] + (off & (h->page_size - 1));
}

/* O(1) translation: one subtraction, one shift, one load, one add. */
static inline uint64_t upcie_dma_bus_fast(const struct upcie_dma_heap *h, const void *va)
{
	uintptr_t off = (uintptr_t)va - (uintptr_t)h->va;

	if (__builtin_expect(off >= h->len, 0))
		return upcie_dma_seg_bus(h, va); /* a later segment, or BAD_ADDR */
	return upcie_dma_bus_at(h, off);
}

#endif
