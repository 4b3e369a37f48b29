/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The registration cache: the caller's buffers go to the device as they
 * are once the pages around them are registered with the device's heap
 * (upcie_dma_register: vfio maps them through the IOMMU, the sim reads them
 * directly). At most PL_MAX_REGS regions per device; beyond, the least
 * recently used one is unregistered. A buffer overlapping registered
 * regions without lying inside one of them replaces them by their union.
 *
 * A registration pins the pages the buffer had when it was registered. If
 * the program gives the memory back and gets other pages at the same
 * address, the device would reach the old ones: every registration that
 * overlaps memory the program frees (free, realloc), unmaps or remaps
 * (munmap, mremap, mmap MAP_FIXED) or discards (madvise DONTNEED, FREE,
 * REMOVE) is dropped first (libc.c calls pl_reg_invalidate). Memory a
 * library releases without going through those calls (a raw system call)
 * is not seen: set UPCIE_PRELOAD_REGISTER=0 to bounce every buffer.
 * A region the program releases while I/O still uses it (a program bug,
 * but the registration must not leak) is marked doomed: nothing new uses
 * it, and it is unregistered when its last pin goes or, if the library
 * still refuses (-EBUSY), at the cache's next change. free() is cheap for
 * memory outside every region: the bounds of each device's regions are
 * checked first, without a lock.
 *
 * uio takes only hugepages: there, and whenever registration fails (the
 * locked-memory limit under vfio, memory the heap overlaps), buffers are
 * bounced through the heap (io.c). After 8 failures on a device it stops
 * trying and says so once.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "preload.h"

static unsigned reg_total;  /* regions on every device: free() looks first */
static __thread int in_reg; /* this thread is inside the cache: frees are the library's */
/* this thread's last hit: most programs reuse a few buffers */
static __thread struct pl_dev *hint_dev;
static __thread unsigned hint_slot;

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

static void wrlock(struct pl_dev *d)
{
	pthread_rwlock_wrlock(&d->reg_lock);
	in_reg++;
}

static void rdlock(struct pl_dev *d)
{
	pthread_rwlock_rdlock(&d->reg_lock);
	in_reg++;
}

static void unlock(struct pl_dev *d)
{
	in_reg--;
	pthread_rwlock_unlock(&d->reg_lock);
}

/* The bounds and the sorted list free() checks without the lock; reg_lock
 * held exclusive. */
static void bounds_update(struct pl_dev *d)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0, vas[PL_MAX_REGS], ends[PL_MAX_REGS], end = 0;
	unsigned n = 0, seq = d->reg_sorted.seq;

	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		struct pl_reg *r = &d->regs[i];
		unsigned j = n++;

		if (!r->len) {
			n--;
			continue;
		}
		lo = r->va < lo ? r->va : lo;
		hi = r->va + r->len > hi ? r->va + r->len : hi;
		for (; j && vas[j - 1] > r->va; j--) { /* insertion sort, at most 64 */
			vas[j] = vas[j - 1];
			ends[j] = ends[j - 1];
		}
		vas[j] = r->va;
		ends[j] = r->va + r->len;
	}
	__atomic_store_n(&d->reg_sorted.seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	for (unsigned i = 0; i < n; i++) {
		end = ends[i] > end ? ends[i] : end;
		__atomic_store_n(&d->reg_sorted.vas[i], vas[i], __ATOMIC_RELAXED);
		__atomic_store_n(&d->reg_sorted.ends[i], end, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&d->reg_sorted.n, n, __ATOMIC_RELAXED);
	__atomic_store_n(&d->reg_sorted.seq, seq + 2, __ATOMIC_RELEASE);
	__atomic_store_n(&d->reg_lo, lo, __ATOMIC_RELEASE);
	__atomic_store_n(&d->reg_hi, hi, __ATOMIC_RELEASE);
}

/* Does [a0, a1) touch a region? Without the lock: 0 no, 1 yes, -1 the
 * list changed meanwhile (ask under the lock). A binary search: the last
 * region that starts below a1, and the highest end up to it. */
static int sorted_overlap(const struct pl_dev *d, uintptr_t a0, uintptr_t a1)
{
	unsigned seq = __atomic_load_n(&d->reg_sorted.seq, __ATOMIC_ACQUIRE);
	unsigned n = __atomic_load_n(&d->reg_sorted.n, __ATOMIC_RELAXED), lo = 0, hi;
	bool hit;

	if ((seq & 1) || n > PL_MAX_REGS)
		return -1;
	for (hi = n; lo < hi;) {
		unsigned mid = (lo + hi) / 2;

		if (__atomic_load_n(&d->reg_sorted.vas[mid], __ATOMIC_RELAXED) < a1)
			lo = mid + 1;
		else
			hi = mid;
	}
	hit = lo && __atomic_load_n(&d->reg_sorted.ends[lo - 1], __ATOMIC_RELAXED) > a0;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&d->reg_sorted.seq, __ATOMIC_RELAXED) == seq ? hit : -1;
}

static void reg_clear(struct pl_dev *d, unsigned i)
{
	/* len first: free()'s unlocked look skips the slot from now on */
	__atomic_store_n(&d->regs[i].len, 0, __ATOMIC_RELEASE);
	memset(&d->regs[i], 0, sizeof(d->regs[i]));
	d->nregs--;
	__atomic_sub_fetch(&reg_total, 1, __ATOMIC_RELAXED);
}

/* Unregister slot i unless I/O pins it; false while it is in use (by our
 * pins, or by commands the library still counts). reg_lock exclusive. */
static bool reg_drop(struct pl_dev *d, unsigned i)
{
	struct pl_reg *r = &d->regs[i];

	if (__atomic_load_n(&r->pins, __ATOMIC_ACQUIRE) ||
	    upcie_dma_unregister(d->heap, (void *)r->va, r->len))
		return false;
	reg_clear(d, i);
	return true;
}

/* Doomed regions whose I/O finished go now; reg_lock exclusive. */
static void drop_doomed(struct pl_dev *d)
{
	bool any = false;

	for (unsigned i = 0; i < PL_MAX_REGS; i++)
		if (d->regs[i].len && d->regs[i].doomed && reg_drop(d, i))
			any = true;
	if (any)
		bounds_update(d);
}

/* This thread's stack: its pages are given back at the thread's exit
 * inside libc, unseen; buffers there are bounced, never registered. */
static __thread uintptr_t stack_lo, stack_hi;

static bool on_own_stack(uintptr_t a)
{
	if (!stack_hi) {
		pthread_attr_t at;
		void *lo;
		size_t sz;

		if (pthread_getattr_np(pthread_self(), &at))
			return true;
		if (!pthread_attr_getstack(&at, &lo, &sz)) {
			stack_lo = (uintptr_t)lo;
			stack_hi = stack_lo + sz;
		}
		pthread_attr_destroy(&at);
		if (!stack_hi)
			return true;
	}
	return a >= stack_lo && a < stack_hi;
}

/* After fork: the child has the parent's cache but not its mappings (and
 * maybe a lock another thread held): it forgets them, uses none. */
void pl_reg_fork_child(void)
{
	unsigned n;
	struct pl_dev *devs = pl_devs_for_reg(&n);

	for (unsigned i = 0; i < n; i++) {
		pthread_rwlock_init(&devs[i].reg_lock, NULL);
		memset(devs[i].regs, 0, sizeof(devs[i].regs));
		devs[i].nregs = 0;
		devs[i].reg_lo = UINTPTR_MAX;
		devs[i].reg_hi = 0;
	}
	reg_total = 0;
	stack_lo = stack_hi = 0;
	hint_dev = NULL;
}

/* A live region holding [p0, p1); the lock held either way. */
static int find(struct pl_dev *d, uintptr_t p0, uintptr_t p1)
{
	if (hint_dev == d) {
		struct pl_reg *r = &d->regs[hint_slot];

		if (r->len && !r->doomed && r->va <= p0 && p1 <= r->va + r->len)
			return (int)hint_slot;
	}
	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		struct pl_reg *r = &d->regs[i];

		if (r->len && !r->doomed && r->va <= p0 && p1 <= r->va + r->len) {
			hint_dev = d;
			hint_slot = i;
			return (int)i;
		}
	}
	return -1;
}

static int pin(struct pl_dev *d, int i)
{
	__atomic_add_fetch(&d->regs[i].pins, 1, __ATOMIC_ACQ_REL);
	__atomic_store_n(&d->regs[i].used, __atomic_add_fetch(&d->reg_clock, 1, __ATOMIC_RELAXED),
			 __ATOMIC_RELAXED);
	return i;
}

/* Not found: register the pages around the buffer (merging, evicting);
 * reg_lock exclusive. The slot, pinned, or -1. */
static int insert(struct pl_dev *d, uintptr_t p0, uintptr_t p1)
{
	unsigned slot = PL_MAX_REGS;
	int rc;

	drop_doomed(d);
	/* overlapping regions: replaced by one region covering them all */
	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		struct pl_reg r = d->regs[i];

		if (!r.len || r.va >= p1 || r.va + r.len <= p0)
			continue;
		if (r.doomed || !reg_drop(d, i))
			return -1; /* in use by I/O: bounce this one */
		p0 = r.va < p0 ? r.va : p0;
		p1 = r.va + r.len > p1 ? r.va + r.len : p1;
	}
	if (d->nregs >= PL_MAX_REGS) {
		int lru = -1;

		for (unsigned i = 0; i < PL_MAX_REGS; i++)
			if (d->regs[i].len && !d->regs[i].pins &&
			    (lru < 0 || d->regs[i].used < d->regs[lru].used))
				lru = (int)i;
		if (lru < 0 || !reg_drop(d, (unsigned)lru))
			return -1; /* every region is in use: bounce */
	}
	for (unsigned i = 0; i < PL_MAX_REGS; i++)
		if (!d->regs[i].len) {
			slot = i;
			break;
		}
	rc = upcie_dma_register(d->heap, (void *)p0, p1 - p0);
	if (rc) {
		bounds_update(d);
		if (++d->reg_failures == 8) {
			d->register_ok = false;
			pl_msg(PL_NAME ": %s: registering buffers failed 8 times (last: %s); "
				       "bouncing them through the DMA heap from now on",
			       d->name, upcie_errmsg());
		}
		return -1;
	}
	d->regs[slot] = (struct pl_reg){.va = p0};
	__atomic_store_n(&d->regs[slot].len, p1 - p0, __ATOMIC_RELEASE); /* last: see overlaps() */
	d->nregs++;
	__atomic_add_fetch(&reg_total, 1, __ATOMIC_RELAXED);
	bounds_update(d);
	hint_dev = d;
	hint_slot = slot;
	return pin(d, (int)slot);
}

int pl_reg_pin(struct pl_dev *d, const void *buf, size_t len)
{
	uintptr_t ps = page_size(), p0 = (uintptr_t)buf & ~(ps - 1);
	uintptr_t p1 = ((uintptr_t)buf + len + ps - 1) & ~(ps - 1);
	int i;

	if (!__atomic_load_n(&d->register_ok, __ATOMIC_RELAXED) || ((uintptr_t)buf & 3) ||
	    on_own_stack((uintptr_t)buf))
		return -1;
	rdlock(d);
	i = find(d, p0, p1);
	if (i >= 0)
		pin(d, i);
	unlock(d);
	if (i >= 0)
		return i;
	wrlock(d);
	i = find(d, p0, p1); /* another thread may have registered it meanwhile */
	i = i >= 0 ? pin(d, i) : d->register_ok ? insert(d, p0, p1) : -1;
	unlock(d);
	return i;
}

void pl_reg_unpin(struct pl_dev *d, int slot)
{
	struct pl_reg *r;

	if (slot < 0)
		return;
	r = &d->regs[slot];
	if (__atomic_sub_fetch(&r->pins, 1, __ATOMIC_ACQ_REL) ||
	    !__atomic_load_n(&r->doomed, __ATOMIC_ACQUIRE))
		return;
	/* the memory was released under this I/O: its registration goes now */
	wrlock(d);
	drop_doomed(d);
	unlock(d);
}

/* The device closes: every region goes (the heap would unmap them anyway). */
void pl_reg_drop_all(struct pl_dev *d)
{
	wrlock(d);
	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		if (!d->regs[i].len)
			continue;
		upcie_dma_unregister(d->heap, (void *)d->regs[i].va, d->regs[i].len);
		reg_clear(d, i);
	}
	bounds_update(d);
	unlock(d);
}

/* Also read without the lock (free()'s first look): len is stored last
 * when a region is made and first when it goes; a stale answer only costs
 * a look under the lock. */
static bool overlaps(const struct pl_reg *r, uintptr_t a0, uintptr_t a1)
{
	size_t len = __atomic_load_n(&r->len, __ATOMIC_ACQUIRE);
	uintptr_t va = __atomic_load_n(&r->va, __ATOMIC_RELAXED);

	return len && !__atomic_load_n(&r->doomed, __ATOMIC_RELAXED) && va < a1 && a0 < va + len;
}

static void invalidate_dev(struct pl_dev *d, const void *va, uintptr_t a0, uintptr_t a1)
{
	bool hit = false, changed = false;

	if (!sorted_overlap(d, a0, a1))
		return; /* no lock taken: the common free() */
	for (unsigned i = 0; i < PL_MAX_REGS && !hit; i++)
		hit = overlaps(&d->regs[i], a0, a1);
	if (!hit)
		return; /* a doomed region, or gone meanwhile */
	wrlock(d);
	for (unsigned i = 0; i < PL_MAX_REGS; i++) {
		struct pl_reg *r = &d->regs[i];

		if (!overlaps(r, a0, a1))
			continue;
		if (reg_drop(d, i)) {
			changed = true;
			continue;
		}
		/* in use by I/O: the program releases memory under a command.
		 * Kept until that completes, so the registration does not leak;
		 * nothing new is served from it. */
		__atomic_store_n(&r->doomed, true, __ATOMIC_RELEASE);
		pl_msg(PL_NAME ": %s: memory at %p is released while a command uses it; "
			       "its registration goes when the command completes",
		       d->name, va);
	}
	if (changed)
		bounds_update(d);
	unlock(d);
}

void pl_reg_invalidate(const void *va, size_t len)
{
	uintptr_t a0 = (uintptr_t)va, a1 = a0 + len;
	struct pl_dev *devs;
	unsigned n;

	if (!__atomic_load_n(&reg_total, __ATOMIC_RELAXED) || in_reg || !len)
		return;
	devs = pl_devs_for_reg(&n);
	for (unsigned k = 0; k < n; k++) {
		struct pl_dev *d = &devs[k];

		/* outside every region of the device: no lock at all */
		if (a1 <= __atomic_load_n(&d->reg_lo, __ATOMIC_ACQUIRE) ||
		    a0 >= __atomic_load_n(&d->reg_hi, __ATOMIC_ACQUIRE))
			continue;
		invalidate_dev(d, va, a0, a1);
	}
}
