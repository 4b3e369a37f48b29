/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Hugepage sizes and hugetlbfs mounts, read from the kernel's own files.
 *
 * The library used libhugetlbfs for these two questions. Linking it puts
 * its constructor into every process that embeds libupcie (fio, a storage
 * target): at load time it reads HUGETLB_* environment variables and may
 * print, whether or not a DMA heap is ever made. Both answers are one file
 * away (/proc/meminfo, /proc/self/mountinfo), so the library reads them
 * itself, only when a heap is created, and has no load-time side effects.
 * The hugepages tool still uses libhugetlbfs where it adds something (the
 * statfs test before an unmount).
 */
#ifndef UPCIE_LIB_DMA_HUGETLB_H
#define UPCIE_LIB_DMA_HUGETLB_H

#include <stddef.h>

#include "core/compiler.h"

/* The default hugepage size in bytes (Hugepagesize in /proc/meminfo), or
 * -1 when the kernel offers none. */
HIDDEN long upcie_hugetlb_default_size(void);

/*
 * A hugetlbfs mount of this page size, from /proc/self/mountinfo (the
 * mount's pagesize= option, else the default size), the first writable one
 * into buf; -ENOENT when there is none, -ENAMETOOLONG when buf is short.
 * proc_root NULL means /proc (tests pass a fake tree).
 */
HIDDEN int upcie_hugetlb_mount_for(const char *proc_root, size_t page_size, char *buf, size_t len);

#endif
