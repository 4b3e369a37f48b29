/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host's base page size: 4 KiB on x86, 4, 16 or 64 KiB on arm64
 * depending on the kernel. Everything that counts in pages of the CPU's
 * MMU (the pagemap, mmap lengths, the small-page DMA heap, IOMMU mapping
 * granules) asks here instead of assuming 4096. The NVMe memory page size
 * (CC.MPS) is a different thing and lives in the NVMe layer.
 */
#ifndef UPCIE_LIB_PAGE_H
#define UPCIE_LIB_PAGE_H

#include <stddef.h>

/* sysconf(_SC_PAGESIZE), or the size a test set with the hook below. */
size_t upcie_host_page_size(void) __attribute__((visibility("hidden")));

/* Zeroed memory (free() it) that starts and ends on a boundary of
 * UPCIE_LINE_BYTES: what one thread writes per I/O (a queue, its CID stack
 * and request table, a model's queue state) then shares no cache line, nor
 * an adjacent-line prefetch pair, with another thread's. NULL when out of
 * memory. */
#define UPCIE_LINE_BYTES 128u
void *upcie_line_calloc(size_t n, size_t size) __attribute__((visibility("hidden")));

/* Test hook: pretend the host page size is 'size' (a power of two >= 4096);
 * 0 goes back to the real one. Not thread-safe; for unit tests only. */
void upcie_host_page_size_fake(size_t size) __attribute__((visibility("hidden")));

/* 'v' rounded up to a multiple of the host page size. */
static inline size_t upcie_host_page_align(size_t v)
{
	size_t pg = upcie_host_page_size();

	return (v + pg - 1) & ~(pg - 1);
}

#endif
