/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Registered memory: the caller's own memory, made reachable by the
 * device of a heap and translated like the heap's (upcie_dma_register).
 *
 * Each region has its own bus address table, filled once by the backend's
 * dma_map: vfio maps it through the IOMMU at IOVAs from the same allocator
 * as the heap's (so the two never collide), uio reads physical addresses
 * from pagemap (hugepages only: each is physically contiguous, checked),
 * sim records the range with the model and uses virtual addresses.
 *
 * Lookups take no lock. The regions are listed in a table sorted by
 * address that is never changed once published: register and unregister
 * build a new one under reg_lock and publish it with a release store;
 * readers load it with acquire. A table or a region a reader may still
 * hold is retired, not freed, until the heap is destroyed (a few dozen
 * bytes per registration).
 *
 * Commands in flight: the NVMe layer holds a region for each command whose
 * buffer lies in it (upcie_dma_reg_hold) and drops it at the completion.
 * A hold moves the region's user count up unless the region is dead;
 * unregister turns a count of 0 into dead in one compare-and-swap, so a
 * command can never start on memory that is being unmapped, and memory a
 * command uses is never unmapped (-EBUSY).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "core/page.h"
#include "dma/heap.h"

/* A region's user count once it is unregistered: holds fail. */
#define REG_DEAD LONG_MIN

/* Largest page a contiguous region's table describes (vfio, sim). */
#define REG_MAX_PAGE (1ul << 30)

static struct upcie_dma_reg_table *table(const struct upcie_dma_heap *h)
{
	return __atomic_load_n(&h->regs, __ATOMIC_ACQUIRE);
}

/* Index of the last region starting at or below p, or -1. */
static long find(const struct upcie_dma_reg_table *t, uintptr_t p)
{
	size_t lo = 0, hi = t ? t->n : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->r[mid]->va <= p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

static struct upcie_dma_region *region_at(const struct upcie_dma_reg_table *t, uintptr_t p)
{
	long i = find(t, p);

	if (i < 0 || p - t->r[i]->va >= t->r[i]->len)
		return NULL;
	return t->r[i];
}

uint64_t upcie_dma_reg_bus(const struct upcie_dma_heap *h, const void *va)
{
	const struct upcie_dma_region *r = region_at(table(h), (uintptr_t)va);
	uintptr_t off;

	if (!r)
		return UPCIE_DMA_BAD_ADDR;
	off = (uintptr_t)va - r->va;
	return r->bus[off >> r->page_shift] + (off & (r->page_size - 1));
}

/* The heap segment (first or grown) holding p, as [start, end); false when none. */
static bool in_heap(const struct upcie_dma_heap *h, uintptr_t p, uintptr_t *end)
{
	const struct upcie_dma_heap *s;

	if (p - (uintptr_t)h->va < h->len) {
		*end = (uintptr_t)h->va + h->len;
		return true;
	}
	s = upcie_dma_seg_of(h, (const void *)p, 1);
	if (!s)
		return false;
	*end = (uintptr_t)s->va + s->len;
	return true;
}

/* Does [p, end) meet a segment of the heap? */
static bool overlaps_heap(const struct upcie_dma_heap *h, uintptr_t p, uintptr_t end)
{
	size_t n = __atomic_load_n(&h->nsegs, __ATOMIC_ACQUIRE);

	if ((uintptr_t)h->va < end && (uintptr_t)h->va + h->len > p)
		return true;
	for (size_t i = 0; i < n; i++)
		if ((uintptr_t)h->segs[i]->va < end &&
		    (uintptr_t)h->segs[i]->va + h->segs[i]->len > p)
			return true;
	return false;
}

/*
 * Walk [va, va + len): heap segments pass, registered regions are held
 * (hold) or only looked at. Returns the regions met, -EINVAL at the first
 * byte that is neither (or in a dead region), -E2BIG past max regions.
 */
static int walk(const struct upcie_dma_heap *h, const void *va, size_t len,
		struct upcie_dma_region **out, unsigned max, bool hold)
{
	const struct upcie_dma_reg_table *t = table(h);
	uintptr_t p = (uintptr_t)va, end = p + len, next;
	unsigned n = 0;

	if (!len || end < p)
		return -EINVAL;
	while (p < end) {
		struct upcie_dma_region *r;

		if (in_heap(h, p, &next)) {
			p = next;
			continue;
		}
		r = region_at(t, p);
		if (!r)
			goto fail;
		if (n == max) {
			upcie_dma_reg_release(out, n);
			return -E2BIG;
		}
		if (hold) {
			long u = __atomic_load_n(&r->users, __ATOMIC_RELAXED);

			do {
				if (u < 0)
					goto fail;
			} while (!__atomic_compare_exchange_n(&r->users, &u, u + 1, true,
							      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
		}
		if (out)
			out[n] = r;
		n++;
		p = r->va + r->len;
	}
	return (int)n;
fail:
	if (hold)
		upcie_dma_reg_release(out, n);
	return -EINVAL;
}

int upcie_dma_reg_hold(const struct upcie_dma_heap *h, const void *va, size_t len,
		       struct upcie_dma_region **out, unsigned max)
{
	return walk(h, va, len, out, max, true);
}

void upcie_dma_reg_release(struct upcie_dma_region **r, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		__atomic_fetch_sub(&r[i]->users, 1, __ATOMIC_RELEASE);
}

bool upcie_dma_reg_covers(const struct upcie_dma_heap *h, const void *va, size_t len)
{
	return walk(h, va, len, NULL, UINT_MAX, false) > 0;
}

/*
 * The page size backing [va, va + len), from /proc/self/smaps
 * (KernelPageSize of every mapping the range touches), or only whether it
 * is mapped (page: 0), from /proc/self/maps, which the kernel makes much
 * faster. 0, -EFAULT with a message when part of the range is not mapped,
 * -EINVAL when the mappings' page sizes differ.
 */
static int backing_page_size(uintptr_t va, size_t len, size_t *page)
{
	bool want = *page == 0, overlap = false;
	uintptr_t end = va + len, at = va;
	unsigned long long lo = 0, hi = 0;
	size_t found = 0;
	char line[512];
	FILE *fp;

	fp = fopen(want ? "/proc/self/smaps" : "/proc/self/maps", "re");
	if (!fp)
		return upcie_err(-errno, "cannot read /proc/self/%s to check registered memory: %s",
				 want ? "smaps" : "maps", strerror(errno));
	while (at < end && fgets(line, sizeof(line), fp)) {
		unsigned long long kps;
		char *dash = strchr(line, '-'), *sp = strchr(line, ' ');

		if (dash && sp && dash < sp && sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {
			overlap = lo < end && hi > at;
			if (overlap && lo > at)
				break; /* a hole before this mapping */
			if (overlap && !want)
				at = (uintptr_t)hi;
			continue;
		}
		if (!want || !overlap || sscanf(line, "KernelPageSize: %llu kB", &kps) != 1)
			continue;
		if (found && found != (size_t)kps * 1024) {
			fclose(fp);
			return upcie_err(
			    -EINVAL,
			    "the memory at %#" PRIxPTR "+%zu spans mappings of different "
			    "page sizes (%zu bytes and %llu KiB); register each mapping "
			    "by itself",
			    va, len, found, kps);
		}
		found = (size_t)kps * 1024;
		at = (uintptr_t)hi;
	}
	fclose(fp);
	if (at < end)
		return upcie_err(-EFAULT,
				 "the memory at %#" PRIxPTR "+%zu is not mapped in this process "
				 "(nothing at %#" PRIxPTR "); register memory you allocated (mmap, "
				 "memfd, hugetlbfs)",
				 va, len, at);
	if (want)
		*page = found;
	return 0;
}

/* Largest power of two dividing both a and b, at most cap. */
static size_t common_align(uintptr_t a, size_t b, size_t cap)
{
	uintptr_t x = a | b | cap;

	return (size_t)(x & -x);
}

static void retire_region(struct upcie_dma_heap *h, struct upcie_dma_region *r)
{
	free(r->bus);
	r->bus = NULL;
	r->retired = h->retired_regs;
	h->retired_regs = r;
}

/* Publish t (reg_lock held); the table it replaces is retired. */
static void publish(struct upcie_dma_heap *h, struct upcie_dma_reg_table *t)
{
	struct upcie_dma_reg_table *old = h->regs;

	__atomic_store_n(&h->regs, t, __ATOMIC_RELEASE);
	if (old) {
		old->retired = h->retired_tables;
		h->retired_tables = old;
	}
}

/* The current table with r inserted at index at, or removed (r NULL). */
static struct upcie_dma_reg_table *table_edit(const struct upcie_dma_reg_table *t, size_t at,
					      struct upcie_dma_region *r)
{
	size_t n = t ? t->n : 0, nn = r ? n + 1 : n - 1;
	struct upcie_dma_reg_table *nt = calloc(1, sizeof(*nt) + nn * sizeof(nt->r[0]));

	if (!nt)
		return NULL;
	nt->n = nn;
	for (size_t i = 0, j = 0; i < n; i++) {
		if (i == at) {
			if (r)
				nt->r[j++] = r;
			else
				continue;
		}
		nt->r[j++] = t->r[i];
	}
	if (r && at == n)
		nt->r[n] = r;
	return nt;
}

int upcie_dma_register(struct upcie_dma_heap *h, void *va, size_t len)
{
	uintptr_t p = (uintptr_t)va, end = p + len;
	size_t host = upcie_host_page_size(), page = 0, npages;
	unsigned caps;
	struct upcie_dma_region *r;
	struct upcie_dma_reg_table *t, *nt;
	long at;
	int rc;

	if (!h || !va || !len)
		return upcie_err(-EINVAL, "upcie_dma_register: %s",
				 !h ? "no heap" : "no memory given (NULL or 0 bytes)");
	if ((p | len) & (host - 1) || end < p)
		return upcie_err(-EINVAL,
				 "upcie_dma_register: %p+%zu is not page aligned: start and length "
				 "must be multiples of the %zu-byte page (mmap or "
				 "aligned_alloc memory)",
				 va, len, host);
	caps = upcie_dma_heap_caps(h);
	/* Under uio the page size matters (smaps); elsewhere only that the
	 * range is mapped (maps). */
	page = (caps & UPCIE_PCI_DMA_NEEDS_HUGEPAGES) ? 0 : host;
	rc = backing_page_size(p, len, &page);
	if (rc)
		return rc;
	if (caps & UPCIE_PCI_DMA_NEEDS_HUGEPAGES) {
		/* Physical addresses: only a hugepage is contiguous by itself. */
		if (page <= host)
			return upcie_err(
			    -EINVAL,
			    "%s: the %s backend can register only hugepage-backed memory (its bus "
			    "addresses are physical, contiguous only within a hugepage), but "
			    "%p+%zu is in %zu-byte pages (malloc or ordinary mmap memory); "
			    "allocate it with MAP_HUGETLB, memfd MFD_HUGETLB or on hugetlbfs, or "
			    "bind the device to vfio-pci",
			    upcie_dma_heap_name(h), upcie_dma_heap_backend_name(h), va, len, page);
		if ((p | len) & (page - 1))
			return upcie_err(-EINVAL,
					 "%s: %p+%zu does not start and end on its %zu-byte "
					 "hugepages; register whole hugepages",
					 upcie_dma_heap_name(h), va, len, page);
	} else {
		/* One mapping, contiguous on the bus: any page size that divides
		 * both ends describes it; the largest keeps the table short. */
		page = common_align(p, len, REG_MAX_PAGE);
	}

	pthread_mutex_lock(&h->reg_lock);
	t = h->regs;
	at = find(t, p) + 1;
	/* Overlaps: the region before may reach into ours, ours into the next. */
	if ((at > 0 && t->r[at - 1]->va + t->r[at - 1]->len > p) ||
	    (t && (size_t)at < t->n && t->r[at]->va < end)) {
		const struct upcie_dma_region *o =
		    (at > 0 && t->r[at - 1]->va + t->r[at - 1]->len > p) ? t->r[at - 1] : t->r[at];

		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(-EEXIST,
				 "upcie_dma_register: %p+%zu overlaps the registered region "
				 "%#" PRIxPTR "+%zu; unregister that one first, or register "
				 "only what is new",
				 va, len, o->va, o->len);
	}
	if (overlaps_heap(h, p, end)) {
		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(-EEXIST,
				 "upcie_dma_register: %p+%zu overlaps the DMA heap's own memory, "
				 "which needs no registration",
				 va, len);
	}

	npages = len / page;
	r = calloc(1, sizeof(*r));
	if (r)
		r->bus = calloc(npages, sizeof(*r->bus));
	if (!r || !r->bus) {
		if (r)
			free(r);
		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(-ENOMEM, "out of memory registering %zu bytes", len);
	}
	r->va = p;
	r->len = len;
	r->page_size = page;
	r->page_shift = (unsigned)__builtin_ctzll((unsigned long long)page);
	rc = upcie_dma_heap_map(h, va, len, page, r->bus);
	if (rc) {
		char why[256];

		upcie_errmsg_save(why, sizeof(why));
		free(r->bus);
		free(r);
		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(rc,
				 "upcie_dma_register: %p+%zu cannot be mapped for the device: %s",
				 va, len, why);
	}
	nt = table_edit(t, (size_t)at, r);
	if (!nt) {
		upcie_dma_heap_unmap(h, va, len, page, r->bus);
		free(r->bus);
		free(r);
		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(-ENOMEM, "out of memory registering %zu bytes", len);
	}
	publish(h, nt);
	h->reg_bytes += len;
	pthread_mutex_unlock(&h->reg_lock);
	upcie_debug("%s: registered %p+%zu (%zu-byte pages)", upcie_dma_heap_name(h), va, len,
		    page);
	return 0;
}

int upcie_dma_unregister(struct upcie_dma_heap *h, void *va, size_t len)
{
	uintptr_t p = (uintptr_t)va;
	struct upcie_dma_reg_table *t, *nt;
	struct upcie_dma_region *r;
	long i, zero = 0;
	int rc;

	if (!h)
		return upcie_err(-EINVAL, "upcie_dma_unregister: no heap");
	pthread_mutex_lock(&h->reg_lock);
	t = h->regs;
	i = find(t, p);
	if (i < 0 || t->r[i]->va != p || t->r[i]->len != len) {
		const struct upcie_dma_region *o = region_at(t, p);

		pthread_mutex_unlock(&h->reg_lock);
		if (o)
			return upcie_err(-EINVAL,
					 "upcie_dma_unregister: %p+%zu is not a registered region; "
					 "the one there is %#" PRIxPTR "+%zu: give its start and "
					 "length",
					 va, len, o->va, o->len);
		return upcie_err(-EINVAL,
				 "upcie_dma_unregister: nothing is registered at %p (%zu bytes); "
				 "give the start and length given to upcie_dma_register()",
				 va, len);
	}
	r = t->r[i];
	if (!__atomic_compare_exchange_n(&r->users, &zero, REG_DEAD, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED)) {
		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(-EBUSY,
				 "upcie_dma_unregister: %p+%zu is in use by %ld command(s) in "
				 "flight; unregister after their completions",
				 va, len, zero);
	}
	nt = t->n > 1 ? table_edit(t, (size_t)i, NULL) : NULL;
	if (t->n > 1 && !nt) {
		__atomic_store_n(&r->users, 0, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&h->reg_lock);
		return upcie_err(-ENOMEM, "out of memory unregistering %p", va);
	}
	publish(h, nt);
	h->reg_bytes -= r->len;
	rc = upcie_dma_heap_unmap(h, va, len, r->page_size, r->bus);
	retire_region(h, r);
	pthread_mutex_unlock(&h->reg_lock);
	return rc;
}

void upcie_dma_reg_info(const struct upcie_dma_heap *h, size_t *regions, size_t *bytes)
{
	struct upcie_dma_heap *mh = (struct upcie_dma_heap *)h;

	pthread_mutex_lock(&mh->reg_lock);
	*regions = h->regs ? h->regs->n : 0;
	*bytes = h->reg_bytes;
	pthread_mutex_unlock(&mh->reg_lock);
}

void upcie_dma_reg_destroy(struct upcie_dma_heap *h)
{
	struct upcie_dma_reg_table *t = h->regs;
	size_t busy = 0;

	for (size_t i = 0; t && i < t->n; i++) {
		struct upcie_dma_region *r = t->r[i];

		if (__atomic_load_n(&r->users, __ATOMIC_ACQUIRE) > 0)
			busy++;
		upcie_dma_heap_unmap(h, (void *)r->va, r->len, r->page_size, r->bus);
		retire_region(h, r);
	}
	if (busy)
		upcie_warn("destroying a DMA heap with %zu registered region(s) still used by "
			   "commands in flight: close the controllers using them first",
			   busy);
	publish(h, NULL);
	while (h->retired_tables) {
		struct upcie_dma_reg_table *n = h->retired_tables->retired;

		free(h->retired_tables);
		h->retired_tables = n;
	}
	while (h->retired_regs) {
		struct upcie_dma_region *n = h->retired_regs->retired;

		free(h->retired_regs);
		h->retired_regs = n;
	}
	h->reg_bytes = 0;
}
