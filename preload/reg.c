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

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

static void reg_remove(struct pl_dev *d, unsigned i)
{
	d->regs[i] = d->regs[--d->nregs];
	__atomic_sub_fetch(&reg_total, 1, __ATOMIC_RELAXED);
}

/* Unregister region i; false while commands use it. reg_lock held. */
static bool reg_drop(struct pl_dev *d, unsigned i)
{
	if (upcie_dma_unregister(d->heap, (void *)d->regs[i].va, d->regs[i].len))
		return false;
	reg_remove(d, i);
	return true;
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
		pthread_mutex_init(&devs[i].reg_lock, NULL);
		devs[i].nregs = 0;
	}
	reg_total = 0;
	stack_lo = stack_hi = 0;
}

bool pl_reg_usable(struct pl_dev *d, const void *buf, size_t len)
{
	uintptr_t ps = page_size(), p0 = (uintptr_t)buf & ~(ps - 1);
	uintptr_t p1 = ((uintptr_t)buf + len + ps - 1) & ~(ps - 1);
	bool ok = false;
	int rc;

	if (!d->register_ok || ((uintptr_t)buf & 3) || on_own_stack((uintptr_t)buf))
		return false;
	pthread_mutex_lock(&d->reg_lock);
	in_reg++;
	for (unsigned i = 0; i < d->nregs; i++) {
		struct pl_reg *r = &d->regs[i];

		if (r->va <= p0 && p1 <= r->va + r->len) {
			r->used = ++d->reg_clock;
			ok = true;
			goto out;
		}
	}
	/* overlapping regions: replaced by one region covering them all */
	for (unsigned i = 0; i < d->nregs;) {
		struct pl_reg r = d->regs[i];

		if (r.va >= p1 || r.va + r.len <= p0) {
			i++;
			continue;
		}
		if (!reg_drop(d, i))
			goto out; /* in use by a command: bounce this one */
		p0 = r.va < p0 ? r.va : p0;
		p1 = r.va + r.len > p1 ? r.va + r.len : p1;
	}
	while (d->nregs >= PL_MAX_REGS) {
		unsigned lru = 0;

		for (unsigned i = 1; i < d->nregs; i++)
			if (d->regs[i].used < d->regs[lru].used)
				lru = i;
		if (!reg_drop(d, lru))
			goto out;
	}
	rc = upcie_dma_register(d->heap, (void *)p0, p1 - p0);
	if (rc) {
		if (++d->reg_failures == 8) {
			d->register_ok = false;
			pl_msg(PL_NAME ": %s: registering buffers failed 8 times (last: %s); "
				       "bouncing them through the DMA heap from now on",
			       d->name, upcie_errmsg());
		}
		goto out;
	}
	d->regs[d->nregs++] = (struct pl_reg){.va = p0, .len = p1 - p0, .used = ++d->reg_clock};
	__atomic_add_fetch(&reg_total, 1, __ATOMIC_RELAXED);
	ok = true;
out:
	in_reg--;
	pthread_mutex_unlock(&d->reg_lock);
	return ok;
}

/* The device closes: every region goes (the heap would unmap them anyway). */
void pl_reg_drop_all(struct pl_dev *d)
{
	pthread_mutex_lock(&d->reg_lock);
	in_reg++;
	while (d->nregs) {
		upcie_dma_unregister(d->heap, (void *)d->regs[0].va, d->regs[0].len);
		reg_remove(d, 0);
	}
	in_reg--;
	pthread_mutex_unlock(&d->reg_lock);
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

		if (!d->nregs)
			continue;
		pthread_mutex_lock(&d->reg_lock);
		in_reg++;
		for (unsigned i = 0; i < d->nregs;) {
			struct pl_reg *r = &d->regs[i];

			if (r->va >= a1 || r->va + r->len <= a0) {
				i++;
				continue;
			}
			/* refused only while a command uses it: the program freed
			 * memory under I/O; the cache forgets it either way */
			if (!reg_drop(d, i)) {
				pl_msg(PL_NAME ": %s: memory at %p is released while a command "
					       "uses it",
				       d->name, va);
				reg_remove(d, i);
			}
		}
		in_reg--;
		pthread_mutex_unlock(&d->reg_lock);
	}
}
