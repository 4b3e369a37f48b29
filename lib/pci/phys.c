/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Physical addresses for DMA, for the backends with no IOMMU between the
 * device and memory: uio (uio.c) and vfio's no-IOMMU mode
 * (vfio_noiommu.c).
 *
 *   upcie_pagemap_phys()       one page's physical address (/proc/self/pagemap)
 *   upcie_pci_phys_map()       a backend's dma_map: one address per hugepage,
 *                              each hugepage checked physically contiguous
 *   upcie_have_cap_sys_admin() may this process see physical addresses?
 *
 * Caveat (both users): the device gets physical addresses, so a wrong PRP
 * lets it write anywhere in RAM; only hugepages are contiguous by
 * themselves, so DMA memory must be hugepages; the kernel shows PFNs only
 * to CAP_SYS_ADMIN (PFN 0 otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

#include "core/log.h"
#include "core/page.h"
#include "pci/backend.h"

/* /proc/self/pagemap entries (Documentation/admin-guide/mm/pagemap.rst):
 * one 64-bit entry per base page of the host (4 KiB, or 16/64 KiB on some
 * arm64 kernels), its PFN counted in those pages too. */
#define PAGEMAP_PRESENT	 (1ull << 63)
#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)

/* CAP_SYS_ADMIN bit of /proc/self/status CapEff (linux/capability.h). */
#define CAP_SYS_ADMIN_BIT 21

/* Is page_size one of the kernel's hugepage sizes? */
static bool is_hugepage_size(const char *root, size_t page_size)
{
	char path[PATH_MAX];

	if (page_size <= upcie_host_page_size())
		return false;
	if (upcie_sysfs_path(root, path, sizeof(path), "kernel/mm/hugepages/hugepages-%zukB",
			     page_size / 1024))
		return false;
	return access(path, F_OK) == 0;
}

/* One pagemap entry per host page; the offset within the page is kept. */
int upcie_pagemap_phys(int fd, uintptr_t addr, size_t host_page, uint64_t *phys)
{
	uint64_t ent;
	off_t off = (off_t)(addr / host_page * sizeof(ent));
	ssize_t n = pread(fd, &ent, sizeof(ent), off);

	if (n != (ssize_t)sizeof(ent))
		return n < 0 ? -errno : -EIO;
	if (!(ent & PAGEMAP_PRESENT))
		return -EFAULT;
	if (!(ent & PAGEMAP_PFN_MASK))
		return -EPERM;
	*phys = (ent & PAGEMAP_PFN_MASK) * host_page + addr % host_page;
	return 0;
}

/*
 * Is the hugepage at addr, whose first host page is at physical address
 * phys, physically contiguous? Its pagemap entries are read in bulk.
 * 0, -EINVAL (the page at *bad is elsewhere or absent), or -EIO/-errno.
 */
static int pagemap_contiguous(int fd, uintptr_t addr, size_t page_size, size_t host_page,
			      uint64_t phys, uintptr_t *bad)
{
	uint64_t ent[512];
	size_t n = page_size / host_page, first = addr / host_page;
	uint64_t pfn0 = phys / host_page;

	for (size_t i = 0; i < n; i += 512) {
		size_t k = n - i < 512 ? n - i : 512;
		ssize_t got =
		    pread(fd, ent, k * sizeof(ent[0]), (off_t)((first + i) * sizeof(ent[0])));

		if (got != (ssize_t)(k * sizeof(ent[0])))
			return got < 0 ? -errno : -EIO;
		for (size_t j = 0; j < k; j++)
			if (!(ent[j] & PAGEMAP_PRESENT) ||
			    (ent[j] & PAGEMAP_PFN_MASK) != pfn0 + i + j) {
				*bad = addr + (i + j) * host_page;
				return -EINVAL;
			}
	}
	return 0;
}

/* The named error of page i's lookup (rc from upcie_pagemap_phys or
 * pagemap_contiguous). */
static int phys_error(struct upcie_pci_dev *dev, int rc, uintptr_t addr, uintptr_t bad,
		      size_t page_size, const char *who, const char *alt, bool contig)
{
	if (contig && rc == -EINVAL)
		return upcie_err(rc,
				 "%s: the %zu-byte page at %p is not physically contiguous (its "
				 "part at %p is elsewhere or not present); DMA memory under %s "
				 "must be hugepages, faulted in",
				 dev->name, page_size, (void *)addr, (void *)bad, who);
	if (!contig && rc == -EFAULT)
		return upcie_err(rc,
				 "%s: page %p is not present in memory; DMA memory must be "
				 "touched (faulted in) before it is mapped",
				 dev->name, (void *)addr);
	if (!contig && rc == -EPERM)
		return upcie_err(rc,
				 "%s: the kernel hides physical addresses from this process "
				 "(pagemap PFN 0); %s needs root (CAP_SYS_ADMIN)%s",
				 dev->name, who, alt);
	return upcie_err(rc, "%s: cannot read /proc/self/pagemap for %p: %s", dev->name,
			 (void *)addr, strerror(-rc));
}

/*
 * Physical address of each page: one pagemap lookup per (huge)page. The
 * pages are hugepages, so each is physically contiguous by itself; that
 * is checked too (every host page of it, in one read per 2 MiB), so that
 * memory that only claims to be hugepages is refused, not corrupted.
 */
int upcie_pci_phys_map(struct upcie_pci_dev *dev, const char *root, void *va, size_t len,
		       size_t page_size, uint64_t *bus, const char *who, const char *alt)
{
	size_t host_page = upcie_host_page_size();
	int fd, rc = 0;

	if (!is_hugepage_size(root, page_size))
		return upcie_err(-EINVAL,
				 "%s: %s needs hugepage-backed DMA memory (physical contiguity for "
				 "queues), but the page size is %zu; reserve hugepages "
				 "('hugepages' tool or /proc/sys/vm/nr_hugepages)",
				 dev->name, who, page_size);
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return upcie_err(-errno, "%s: cannot open /proc/self/pagemap: %s", dev->name,
				 strerror(errno));
	for (size_t i = 0; i < len / page_size; i++) {
		uintptr_t addr = (uintptr_t)va + i * page_size, bad = 0;

		rc = upcie_pagemap_phys(fd, addr, host_page, &bus[i]);
		if (rc) {
			rc = phys_error(dev, rc, addr, 0, page_size, who, alt, false);
			break;
		}
		rc = pagemap_contiguous(fd, addr, page_size, host_page, bus[i], &bad);
		if (rc) {
			rc = phys_error(dev, rc, addr, bad, page_size, who, alt, true);
			break;
		}
	}
	close(fd);
	return rc;
}

bool upcie_have_cap_sys_admin(void)
{
	char line[256];
	bool yes = false;
	FILE *fp;

	if (geteuid() == 0)
		return true;
	fp = fopen("/proc/self/status", "re");
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp)) {
		unsigned long long caps;

		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			yes = (caps >> CAP_SYS_ADMIN_BIT) & 1;
			break;
		}
	}
	fclose(fp);
	return yes;
}
