/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Growable DMA heaps (UPCIE_DMA_GROW): when an allocation does not fit,
 * add a segment, a heap of its own created with the first segment's flags
 * and mapped for the device at once. The first segment stays the heap's
 * own va/len/bus, so the hot path's translation of it is unchanged; later
 * segments are found by a scan of their bounds (at most
 * UPCIE_DMA_MAX_SEGS), then translated in O(1) like the first.
 *
 * Publication: a segment is complete (mapped, table filled) before its
 * slot is written, and the slot before nsegs is raised with a release
 * store; readers load nsegs with acquire. Segments are never removed
 * before the heap is destroyed, so a reader never sees a freed one.
 */
#include <errno.h>
#include <stdio.h>

#include "dma/heap.h"
#include "core/log.h"

static size_t nsegs(const struct upcie_dma_heap *h)
{
	return __atomic_load_n(&h->nsegs, __ATOMIC_ACQUIRE);
}

struct upcie_dma_heap *upcie_dma_seg_of(const struct upcie_dma_heap *h, const void *va, size_t len)
{
	size_t n = nsegs(h);

	for (size_t i = 0; i < n; i++) {
		struct upcie_dma_heap *s = h->segs[i];
		uintptr_t off = (uintptr_t)va - (uintptr_t)s->va;

		if (off < s->len && len <= s->len - off)
			return s;
	}
	return NULL;
}

uint64_t upcie_dma_seg_bus(const struct upcie_dma_heap *h, const void *va)
{
	const struct upcie_dma_heap *s = upcie_dma_seg_of(h, va, 1);

	if (!s)
		return upcie_dma_reg_bus(h, va); /* registered, or BAD_ADDR */
	return upcie_dma_bus_at(s, (uintptr_t)va - (uintptr_t)s->va);
}

static void *seg_alloc(struct upcie_dma_heap *s, size_t size, size_t align, bool pages)
{
	return pages ? upcie_dma_alloc_pages_aligned(s, size, align)
		     : upcie_dma_alloc(s, size, align);
}

void *upcie_dma_grow_alloc(struct upcie_dma_heap *h, size_t size, size_t align, bool pages)
{
	struct upcie_dma_heap *s;
	size_t n, want;
	void *p = NULL;

	/* Existing segments first (their own locks); then, under the grow
	 * lock, again (another thread may just have added one) and a new one. */
	for (size_t i = 0; !p && i < nsegs(h); i++)
		p = seg_alloc(h->segs[i], size, align, pages);
	if (p)
		return p;
	pthread_mutex_lock(&h->grow_lock);
	n = h->nsegs;
	for (size_t i = 0; !p && i < n; i++)
		p = seg_alloc(h->segs[i], size, align, pages);
	if (p)
		goto out;
	if (n == UPCIE_DMA_MAX_SEGS) {
		p = upcie_err_null(-ENOMEM,
				   "DMA heap exhausted: %zu bytes asked and all %u segments are "
				   "in use; create a larger heap",
				   size, UPCIE_DMA_MAX_SEGS + 1);
		goto out;
	}
	/* At least the first segment's size, and room for the request at
	 * its alignment. */
	want = size + (align > h->page_size ? align : 0);
	if (want < h->len)
		want = h->len;
	s = upcie_dma_heap_create_like(h, want, h->flags & ~UPCIE_DMA_GROW);
	if (!s) {
		char why[256];
		int err = errno;

		snprintf(why, sizeof(why), "%s", upcie_errmsg());
		p = upcie_err_null(-err,
				   "DMA heap exhausted and a %zu-byte segment could not be added: "
				   "%s",
				   want, why);
		goto out;
	}
	p = seg_alloc(s, size, align, pages);
	if (!p) {
		upcie_dma_heap_destroy(s);
		goto out;
	}
	h->segs[n] = s;
	__atomic_store_n(&h->nsegs, n + 1, __ATOMIC_RELEASE);
	upcie_info("DMA heap grew by %zu bytes (segment %zu)", s->len, n + 2);
out:
	pthread_mutex_unlock(&h->grow_lock);
	return p;
}

void upcie_dma_segs_destroy(struct upcie_dma_heap *h)
{
	for (size_t i = 0; i < h->nsegs; i++)
		upcie_dma_heap_destroy(h->segs[i]);
	h->nsegs = 0;
}
