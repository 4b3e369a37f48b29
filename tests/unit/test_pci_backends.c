/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The uio and vfio backends against a fake sysfs tree: binding checks,
 * IOMMU checks, BAR mapping from sysfs resourceN (a regular file here),
 * config space and bus-master fencing, DMA page-size rules, the owner
 * lock (a forked child holds it), the uio device-gone check, uio INTx
 * (Interrupt Pin, masking through COMMAND, acks, the listener pool), and
 * the advice in the error messages. Real devices, and vfio's MSI-X and
 * device-gone eventfd (ioctls on a real vfio device file), are covered by
 * the QEMU guest tests (tests/qemu/).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <upcie/log.h>
#include <upcie/pci.h>
#include <upcie/sim.h>

#include "pci/sysfs.h" /* white box: the cdev lookup */

#include "cu.h"
#include "pci/backend.h"

static char root[64];

#define NVME_BDF      "0000:01:00.0" /* bound to nvme */
#define UIO_BDF	      "0000:02:00.0" /* uio_pci_generic, no IOMMU */
#define UIO_DMA_BDF   "0000:03:00.0" /* uio_pci_generic, translating IOMMU */
#define UIO_PT_BDF    "0000:04:00.0" /* uio_pci_generic, identity IOMMU (iommu=pt) */
#define VFIO_NOGROUP  "0000:05:00.0" /* vfio-pci without an IOMMU group */
#define UIO_GONE_BDF  "0000:06:00.0" /* uio_pci_generic, removed while open */
#define UIO_NOUIO     "0000:07:00.0" /* uio_pci_generic, no uio/uioN in sysfs */
#define UIO_IRQ_BDF   "0000:08:00.0" /* uio_pci_generic, INTA wired to IRQ 11 */
#define VFIO_BDF      "0000:0b:00.0" /* vfio-pci, IOMMU group 11, no device cdev */
#define VFIO_CDEV_BDF "0000:0a:00.0" /* vfio-pci, IOMMU group 10, cdev vfio7 */
#define UIO_NOIRQ     "0000:09:00.0" /* uio_pci_generic, INTA wired, no IRQ routed */
#define VFIO_NOIOMMU  "0000:0c:00.0" /* vfio-pci, no-IOMMU group 12 (vfio-noiommu) */
#define BAR0_SIZE     16384
#define CMD_INITIAL   0x0002 /* memory space on, bus master off */

static int put(const char *content, size_t len, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	int fd;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, content, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int mkdirs(const char *fmt, ...)
{
	char path[512], cmd[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	return system(cmd);
}

/* A PCI function with config space, a 16 KiB memory BAR0, an unimplemented
 * BAR1 (the upper half of a 64-bit BAR0) and an I/O BAR2. */
static int fake_device(const char *bdf, const char *driver, const char *iommu_type, int group)
{
	static const char resource[] = "0x00000000fe000000 0x00000000fe003fff 0x0000000000140204\n"
				       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
				       "0x000000000000c000 0x000000000000c07f 0x0000000000040101\n"
				       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
				       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
				       "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
	unsigned char cfg[256] = {0x36, 0x1b, 0x10, 0x00, CMD_INITIAL, 0x00};
	char dir[256], target[256], link[300];
	char *bar;
	int rc = 0;

	cfg[0x09] = 0x02; /* class 0x010802 */
	cfg[0x0a] = 0x08;
	cfg[0x0b] = 0x01;
	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s", root, bdf);
	rc |= mkdirs("%s", dir);
	rc |= put((const char *)cfg, sizeof(cfg), "%s/config", dir);
	rc |= put(resource, strlen(resource), "%s/resource", dir);
	bar = calloc(1, BAR0_SIZE);
	if (!bar)
		return -1;
	rc |= put(bar, BAR0_SIZE, "%s/resource0", dir);
	free(bar);
	snprintf(target, sizeof(target), "../../../bus/pci/drivers/%s", driver);
	snprintf(link, sizeof(link), "%s/driver", dir);
	rc |= symlink(target, link);
	/* uio_pci_generic registers a uio device: sysfs .../uio/uioN, and the
	 * node /dev/uioN (the fake tree's own dev/, a plain file here). */
	if (!strcmp(driver, "uio_pci_generic") && strcmp(bdf, UIO_NOUIO)) {
		static int uio_minor;

		rc |= mkdirs("%s/uio/uio%d", dir, uio_minor);
		rc |= put("", 0, "%s/dev/uio%d", root, uio_minor);
		uio_minor++;
	}
	if (iommu_type) {
		rc |= mkdirs("%s/kernel/iommu_groups/%d/devices", root, group);
		rc |= put(iommu_type, strlen(iommu_type), "%s/kernel/iommu_groups/%d/type", root,
			  group);
		snprintf(target, sizeof(target), "../../../kernel/iommu_groups/%d", group);
		snprintf(link, sizeof(link), "%s/iommu_group", dir);
		rc |= symlink(target, link);
	}
	return rc ? -1 : 0;
}

/* Write into a fake device's config file in place. */
static int cfg_poke(const char *bdf, unsigned off, const void *buf, size_t len)
{
	char path[256];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/config", root, bdf);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	if (pwrite(fd, buf, len, off) != (ssize_t)len)
		rc = -1;
	close(fd);
	return rc;
}

static int suite_init(void)
{
	snprintf(root, sizeof(root), "/tmp/upcie-fake-sysfs-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	/* Owner locks inside the fake tree, away from real devices' locks. */
	if (mkdirs("%s/dev", root) || setenv("UPCIE_LOCK_DIR", root, 1))
		return -1;
	if (mkdirs("%s/kernel/mm/hugepages/hugepages-2048kB", root) ||
	    fake_device(NVME_BDF, "nvme", NULL, 0) ||
	    fake_device(UIO_BDF, "uio_pci_generic", NULL, 0) ||
	    fake_device(UIO_DMA_BDF, "uio_pci_generic", "DMA-FQ\n", 5) ||
	    fake_device(UIO_PT_BDF, "uio_pci_generic", "identity\n", 6) ||
	    fake_device(VFIO_NOGROUP, "vfio-pci", NULL, 0) ||
	    fake_device(UIO_GONE_BDF, "uio_pci_generic", NULL, 0) ||
	    fake_device(UIO_NOUIO, "uio_pci_generic", NULL, 0) ||
	    fake_device(UIO_IRQ_BDF, "uio_pci_generic", NULL, 0) ||
	    fake_device(UIO_NOIRQ, "uio_pci_generic", NULL, 0) ||
	    fake_device(VFIO_BDF, "vfio-pci", "DMA-FQ\n", 11) ||
	    fake_device(VFIO_CDEV_BDF, "vfio-pci", "DMA-FQ\n", 10) ||
	    mkdirs("%s/bus/pci/devices/%s/vfio-dev/vfio7", root, VFIO_CDEV_BDF) ||
	    fake_device(VFIO_NOIOMMU, "vfio-pci", "DMA\n", 12) ||
	    put("vfio-noiommu\n", 13, "%s/kernel/iommu_groups/12/name", root))
		return -1;
	/* Interrupt Pin INTA on both; sysfs 'irq' as the kernel shows it. */
	if (cfg_poke(UIO_IRQ_BDF, 0x3d, "\x01", 1) || cfg_poke(UIO_NOIRQ, 0x3d, "\x01", 1) ||
	    put("11\n", 3, "%s/bus/pci/devices/%s/irq", root, UIO_IRQ_BDF) ||
	    put("0\n", 2, "%s/bus/pci/devices/%s/irq", root, UIO_NOIRQ))
		return -1;
	return 0;
}

static int suite_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	return system(cmd) ? -1 : 0;
}

static struct upcie_pci_dev *open_as(const char *bdf, enum upcie_pci_backend be)
{
	struct upcie_pci_opts o = {.backend = be, .sysfs_root = root};

	errno = 0;
	return upcie_pci_open(bdf, &o);
}

static bool msg_has(const char *needle)
{
	bool yes = strstr(upcie_errmsg(), needle) != NULL;

	if (!yes)
		printf("\n  message \"%s\" lacks \"%s\"\n", upcie_errmsg(), needle);
	return yes;
}

static uint16_t fake_command(const char *bdf)
{
	char path[256];
	uint16_t cmd = 0xffff;
	int fd;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/config", root, bdf);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		if (pread(fd, &cmd, 2, 4) != 2)
			cmd = 0xffff;
		close(fd);
	}
	return cmd;
}

static void test_bound_to_nvme(void)
{
	CU_ASSERT_PTR_NULL(open_as(NVME_BDF, UPCIE_PCI_BACKEND_UIO));
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("devbind bind uio_pci_generic " NVME_BDF));
	CU_ASSERT(msg_has("bound to nvme"));

	CU_ASSERT_PTR_NULL(open_as(NVME_BDF, UPCIE_PCI_BACKEND_VFIO));
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("devbind bind vfio-pci " NVME_BDF));

	CU_ASSERT_PTR_NULL(open_as(NVME_BDF, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("devbind"));
}

static void test_unknown_bdf(void)
{
	static const enum upcie_pci_backend be[] = {UPCIE_PCI_BACKEND_AUTO, UPCIE_PCI_BACKEND_UIO,
						    UPCIE_PCI_BACKEND_VFIO};

	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NULL(open_as("0000:7f:1f.7", be[i]));
		CU_ASSERT_EQUAL(errno, ENODEV);
		CU_ASSERT(msg_has("no such PCI device"));
	}
}

static void test_uio_open_bar_cfg(void)
{
	struct upcie_pci_dev *dev;
	uint16_t vendor = 0;
	uint8_t cfg[8];
	size_t len = 0;
	void *va = NULL;

	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_backend(dev), UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_EQUAL(upcie_pci_dma_caps(dev), UPCIE_PCI_DMA_NEEDS_HUGEPAGES);
	/* Fenced at open: bus mastering off until the driver above turns it on. */
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL | 0x4);
	CU_ASSERT_EQUAL(upcie_pci_cfg_read(dev, 0, &vendor, 2), 0);
	CU_ASSERT_EQUAL(vendor, 0x1b36);

	CU_ASSERT_EQUAL(upcie_pci_bar_map(dev, 0, &va, &len), 0);
	CU_ASSERT_PTR_NOT_NULL(va);
	CU_ASSERT_EQUAL(len, BAR0_SIZE);
	if (va) {
		/* MAP_SHARED: the write lands in the resource0 file. */
		upcie_mmio_write32(va, 0x1000, 0xfeedf00d);
		CU_ASSERT_EQUAL(upcie_mmio_read32(va, 0x1000), 0xfeedf00d);
	}

	CU_ASSERT_EQUAL(upcie_pci_bar_map(dev, 1, &va, &len), -EINVAL);
	CU_ASSERT(msg_has("not implemented"));
	CU_ASSERT_EQUAL(upcie_pci_bar_map(dev, 2, &va, &len), -EINVAL);
	CU_ASSERT(msg_has("I/O port BAR"));
	/* The fake config file has 256 bytes: a read across its end is short. */
	CU_ASSERT_EQUAL(upcie_pci_cfg_read(dev, 250, cfg, sizeof(cfg)), -EIO);

	upcie_pci_close(dev);
	/* pci.c put the saved COMMAND back, bus mastering off. */
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL);
}

static void test_uio_dma_needs_hugepages(void)
{
	struct upcie_pci_dev *dev;
	uint64_t bus[4];
	void *mem;

	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	mem = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(mem != MAP_FAILED);
	memset(mem, 1, 16384);
	CU_ASSERT_EQUAL(upcie_pci_dma_map(dev, mem, 16384, 4096, bus), -EINVAL);
	CU_ASSERT(msg_has("hugepage"));
	munmap(mem, 16384);
	upcie_pci_close(dev);
}

/* With real hugepages: an untouched page is refused; a touched one gets
 * a physical address as root, and the "needs root" advice otherwise. */
static void test_uio_dma_pagemap(void)
{
	const size_t huge = 2u << 20;
	struct upcie_pci_dev *dev;
	uint64_t bus[1] = {0};
	void *mem;
	int rc;

	mem = mmap(NULL, huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		   -1, 0);
	if (mem == MAP_FAILED) {
		upcie_cu_skip("no free 2 MiB hugepages on this machine");
		return;
	}
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_dma_map(dev, mem, huge, huge, bus), -EFAULT);
	CU_ASSERT(msg_has("not present"));
	memset(mem, 0, huge);
	rc = upcie_pci_dma_map(dev, mem, huge, huge, bus);
	if (geteuid() == 0) {
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_NOT_EQUAL(bus[0], 0);
		CU_ASSERT_EQUAL(bus[0] % huge, 0);
		CU_ASSERT_EQUAL(upcie_pci_dma_unmap(dev, mem, huge, huge, bus), 0);
	} else {
		CU_ASSERT_EQUAL(rc, -EPERM);
		CU_ASSERT(msg_has("root"));
	}
	upcie_pci_close(dev);
	munmap(mem, huge);
}

/* Pagemap arithmetic for 4 KiB and 64 KiB host pages, on a file laid out
 * like /proc/self/pagemap: entry i at byte 8 * i, PFN in host pages. */
static void test_pagemap_page_sizes(void)
{
	const uint64_t present = 1ull << 63, pfn = 0x1234;
	const size_t sizes[] = {4096, 65536};
	char path[] = "/tmp/upcie-pagemap-XXXXXX";
	int fd = mkstemp(path);
	uint64_t phys, ent;

	CU_ASSERT_FATAL(fd >= 0);
	unlink(path);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t pg = sizes[k];
		uintptr_t addr = 0x12345678;
		off_t at = (off_t)(addr / pg * 8);

		CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 0), 0);
		ent = present | pfn;
		CU_ASSERT_EQUAL(pwrite(fd, &ent, 8, at), 8);
		CU_ASSERT_EQUAL(upcie_pagemap_phys(fd, addr, pg, &phys), 0);
		CU_ASSERT_EQUAL(phys, pfn * pg + addr % pg);
		/* The next host page has a zero entry: not present. */
		ent = 0;
		CU_ASSERT_EQUAL(pwrite(fd, &ent, 8, at + 8), 8);
		CU_ASSERT_EQUAL(upcie_pagemap_phys(fd, addr + pg, pg, &phys), -EFAULT);
		/* Present but PFN 0: the kernel hides it (no CAP_SYS_ADMIN). */
		ent = present;
		CU_ASSERT_EQUAL(pwrite(fd, &ent, 8, at + 8), 8);
		CU_ASSERT_EQUAL(upcie_pagemap_phys(fd, addr + pg, pg, &phys), -EPERM);
		/* Past the end of the file. */
		CU_ASSERT_EQUAL(upcie_pagemap_phys(fd, addr + 4 * pg, pg, &phys), -EIO);
	}
	close(fd);
}

static void test_uio_behind_iommu(void)
{
	struct upcie_pci_dev *dev;

	CU_ASSERT_PTR_NULL(open_as(UIO_DMA_BDF, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, ENOTSUP);
	CU_ASSERT(msg_has("iommu=pt"));
	CU_ASSERT(msg_has("vfio-pci"));
	/* Nothing was touched. */
	CU_ASSERT_EQUAL(fake_command(UIO_DMA_BDF), CMD_INITIAL);

	/* iommu=pt: the identity domain passes physical addresses through. */
	dev = open_as(UIO_PT_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL(dev);
	upcie_pci_close(dev);
}

static void test_vfio_without_group(void)
{
	CU_ASSERT_PTR_NULL(open_as(VFIO_NOGROUP, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, ENODEV);
	CU_ASSERT(msg_has("intel_iommu=on"));
	CU_ASSERT(msg_has("uio_pci_generic"));
}

static void test_backend_mismatch(void)
{
	/* Forcing vfio on a uio-bound device says how to bind it. */
	CU_ASSERT_PTR_NULL(open_as(UIO_BDF, UPCIE_PCI_BACKEND_VFIO));
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("bound to uio_pci_generic"));
	CU_ASSERT_PTR_NULL(open_as(VFIO_NOGROUP, UPCIE_PCI_BACKEND_UIO));
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("bound to vfio-pci"));
}

/* The backend table decides which names and forced backends go together:
 * "sim" is the sim's device, a PCI address is never the sim's, and a name
 * that is neither says what a device name looks like. */
static void test_backend_table(void)
{
	struct upcie_pci_dev *dev;

	CU_ASSERT_PTR_NULL(open_as("sim", UPCIE_PCI_BACKEND_UIO));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("device 'sim' only runs on the sim backend"));
	CU_ASSERT_PTR_NULL(open_as(UIO_BDF, UPCIE_PCI_BACKEND_SIM));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("the sim backend only opens 'sim'"));
	CU_ASSERT_PTR_NULL(open_as("nvme0", UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("'nvme0' is not a device: give a PCI address (0000:01:00.0 or 01:00.0) "
			  "or 'sim'"));
	CU_ASSERT_PTR_NULL(open_as(UIO_BDF, (enum upcie_pci_backend)7));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("upcie_pci_opts.backend 7 is not a backend"));
	dev = open_as("sim", UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_backend(dev), UPCIE_PCI_BACKEND_SIM);
	CU_ASSERT_PTR_NOT_NULL(upcie_pci_sim(dev));
	upcie_pci_close(dev);
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_backend(dev), UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NULL(upcie_pci_sim(dev));
	upcie_pci_close(dev);
}

/* vfio's IOMMU interface forced to iommufd: a device without a cdev in
 * sysfs is refused saying what the kernel lacks; one with a cdev that /dev
 * does not have (this host's kernel) names the missing node. */
static void test_vfio_iommufd_forced(void)
{
	struct upcie_pci_opts o = {.backend = UPCIE_PCI_BACKEND_VFIO,
				   .sysfs_root = root,
				   .vfio_iommu = UPCIE_PCI_VFIO_IOMMU_IOMMUFD};
	struct upcie_pci_dev *dev;
	char name[16];

	struct upcie_pci_addr a;

	CU_ASSERT_EQUAL(upcie_pci_addr_parse(VFIO_CDEV_BDF, &a), 0);
	CU_ASSERT_EQUAL(upcie_sysfs_pci_vfio_cdev(root, &a, name, sizeof(name)), 0);
	CU_ASSERT_STRING_EQUAL(name, "vfio7");
	CU_ASSERT_EQUAL(upcie_pci_addr_parse(VFIO_BDF, &a), 0);
	CU_ASSERT_EQUAL(upcie_sysfs_pci_vfio_cdev(root, &a, name, sizeof(name)), -ENOENT);
	CU_ASSERT_PTR_NULL(upcie_pci_open(VFIO_BDF, &o));
	CU_ASSERT_EQUAL(errno, ENODEV);
	CU_ASSERT(msg_has("has no VFIO device cdev"));
	if (access("/dev/vfio/devices/vfio7", F_OK)) {
		CU_ASSERT_PTR_NULL(upcie_pci_open(VFIO_CDEV_BDF, &o));
		CU_ASSERT_EQUAL(errno, ENODEV);
		CU_ASSERT(msg_has("/dev/vfio/devices/vfio7 does not exist"));
	}
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_PTR_NULL(upcie_pci_vfio_iommu_name(dev));
	upcie_pci_close(dev);
}

/* vfio's no-IOMMU mode: the parameter file of a fake tree ("" removes it). */
static void noiommu_param(const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/module/vfio/parameters/enable_unsafe_noiommu_mode", root);
	if (!val[0]) {
		unlink(path);
		return;
	}
	CU_ASSERT_EQUAL(mkdirs("%s/module/vfio/parameters", root), 0);
	CU_ASSERT_EQUAL(put(val, strlen(val), "%s", path), 0);
}

/* No-IOMMU mode: never by AUTO (a no-IOMMU group is refused, saying it is
 * unsafe and how to opt in); asked for, each missing piece is named: the
 * kernel's mode, the parameter off (with the devbind command), a device
 * that has an IOMMU. UPCIE_VFIO_IOMMU=noiommu asks as the option does. */
static void test_vfio_noiommu(void)
{
	struct upcie_pci_opts o = {.backend = UPCIE_PCI_BACKEND_VFIO,
				   .sysfs_root = root,
				   .vfio_iommu = UPCIE_PCI_VFIO_IOMMU_NOIOMMU};

	unsetenv("UPCIE_VFIO_IOMMU");
	noiommu_param("Y\n");
	CU_ASSERT_PTR_NULL(open_as(VFIO_NOIOMMU, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, EPERM);
	CU_ASSERT(msg_has("no-IOMMU mode (group noiommu-12)"));
	CU_ASSERT(msg_has("unsafe without an IOMMU"));
	CU_ASSERT(msg_has("UPCIE_VFIO_IOMMU=noiommu"));
	CU_ASSERT(msg_has("UPCIE_PCI_VFIO_IOMMU_NOIOMMU"));

	noiommu_param("");
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_pci_open(VFIO_NOIOMMU, &o));
	CU_ASSERT_EQUAL(errno, ENOTSUP);
	CU_ASSERT(msg_has("this kernel has none"));
	CU_ASSERT(msg_has("CONFIG_VFIO_NOIOMMU"));

	noiommu_param("N\n");
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_pci_open(VFIO_NOIOMMU, &o));
	CU_ASSERT_EQUAL(errno, EPERM);
	CU_ASSERT(msg_has("no-IOMMU mode is off"));
	CU_ASSERT(msg_has("devbind noiommu on"));

	noiommu_param("Y\n");
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_pci_open(VFIO_BDF, &o));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("behind an IOMMU (group 11)"));

	/* The variable asks for it too; the option given wins over it. */
	setenv("UPCIE_VFIO_IOMMU", "noiommu", 1);
	CU_ASSERT_PTR_NULL(open_as(VFIO_BDF, UPCIE_PCI_BACKEND_VFIO));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("behind an IOMMU (group 11)"));
	o.vfio_iommu = UPCIE_PCI_VFIO_IOMMU_TYPE1;
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_pci_open(VFIO_NOIOMMU, &o));
	CU_ASSERT_EQUAL(errno, EPERM);
	CU_ASSERT(msg_has("opt in with UPCIE_VFIO_IOMMU=noiommu"));
	unsetenv("UPCIE_VFIO_IOMMU");
	noiommu_param("");
}

static void set_command(const char *bdf, uint16_t cmd)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/bus/pci/devices/%s/config", root, bdf);
	fd = open(path, O_WRONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, &cmd, 2, 4), 2);
	close(fd);
}

/* Bus mastering left on by an earlier owner: off at open, and close does
 * not bring it back (pci.h: close leaves it off). The rest is restored. */
static void test_uio_fence_and_close(void)
{
	struct upcie_pci_dev *dev;

	set_command(UIO_BDF, CMD_INITIAL | 0x4);
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, false), 0); /* fenced after an error */
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);
	upcie_pci_close(dev);
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL);
}

/* Read the owner line of a lock file in the fake tree. */
static void lock_text(const char *bdf, char *buf, size_t len)
{
	char path[256];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.lock", root, bdf);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
}

/* This process's name as the kernel shows it (the lock file and the error
 * quote it): the test's, or the emulator's when qemu-user runs the test. */
static const char *self_comm(void)
{
	static char comm[32];
	FILE *f;

	if (comm[0])
		return comm;
	f = fopen("/proc/self/comm", "r");
	if (!f || !fgets(comm, sizeof(comm), f))
		snprintf(comm, sizeof(comm), "?");
	if (f)
		fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return comm;
}

static void test_lock_same_process(void)
{
	struct upcie_pci_dev *a, *b;
	char text[64], want[64];

	a = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(a, true), 0);
	snprintf(want, sizeof(want), "%d %s\n", (int)getpid(), self_comm());
	lock_text(UIO_BDF, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, want);

	b = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NULL(b);
	CU_ASSERT_EQUAL(errno, EBUSY);
	CU_ASSERT(msg_has("in use (EBUSY) by this process"));
	CU_ASSERT(msg_has(".lock"));
	/* The refused open touched nothing: the owner's bus mastering is on. */
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL | 0x4);
	upcie_pci_close(b);

	upcie_pci_close(a);
	lock_text(UIO_BDF, text, sizeof(text));
	CU_ASSERT_STRING_EQUAL(text, "");
	b = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL(b);
	upcie_pci_close(b);
}

/* Another process holds the device: refused with its pid and command; once
 * it is killed (-9), the kernel has dropped the lock and the open works. */
static void test_lock_other_process(void)
{
	struct upcie_pci_dev *dev;
	char c = 0, want[64];
	int pfd[2], status;
	pid_t pid;

	CU_ASSERT_FATAL(pipe(pfd) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct upcie_pci_dev *d = open_as(UIO_BDF, UPCIE_PCI_BACKEND_UIO);

		c = d ? 'K' : 'F';
		if (write(pfd[1], &c, 1) != 1 || !d)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	CU_ASSERT_EQUAL(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	CU_ASSERT_EQUAL(c, 'K');

	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NULL(dev);
	CU_ASSERT_EQUAL(errno, EBUSY);
	snprintf(want, sizeof(want), "by process %d (%s)", (int)pid, self_comm());
	CU_ASSERT(msg_has(want));
	upcie_pci_close(dev);

	kill(pid, SIGKILL);
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL(dev);
	upcie_pci_close(dev);
}

static void test_reserved_options(void)
{
	/* Room for options of later releases: a non-zero reserved field is
	 * refused, not ignored, so that a later library can give it meaning. */
	struct upcie_pci_opts o = {.backend = UPCIE_PCI_BACKEND_SIM};
	struct upcie_pci_dev *dev;

	o.reserved[3] = 1;
	CU_ASSERT_PTR_NULL(upcie_pci_open("sim", &o));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT(msg_has("reserved[3] is not zero"));
	o.reserved[3] = 0;
	o.vfio_iommu = (enum upcie_pci_vfio_iommu)9;
	CU_ASSERT_PTR_NULL(upcie_pci_open("sim", &o));
	CU_ASSERT(msg_has("vfio_iommu 9 or reserved32 0 is not valid"));
	o.vfio_iommu = UPCIE_PCI_VFIO_IOMMU_AUTO;
	o.reserved[3] = 0;
	dev = upcie_pci_open("sim", &o);
	CU_ASSERT_PTR_NOT_NULL(dev);
	upcie_pci_close(dev);
}

/* A lock directory that lets others remove locks is refused, saying why:
 * writable by others without the sticky bit, a symlink, another user's. */
static void test_lock_dir_unsafe(void)
{
	char dir[300], link[300];
	struct upcie_pci_dev *dev;

	snprintf(dir, sizeof(dir), "%s/locks-shared", root);
	snprintf(link, sizeof(link), "%s/locks-link", root);
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0 && chmod(dir, 0777) == 0);
	CU_ASSERT_FATAL(setenv("UPCIE_LOCK_DIR", dir, 1) == 0);
	/* The refusal comes before the device is touched: bus mastering,
	 * on here as another owner would have it, stays on. */
	set_command(UIO_BDF, CMD_INITIAL | 0x4);
	CU_ASSERT_PTR_NULL(open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, EPERM);
	CU_ASSERT(msg_has("UPCIE_LOCK_DIR="));
	CU_ASSERT(msg_has("no sticky bit"));
	CU_ASSERT_EQUAL(fake_command(UIO_BDF), CMD_INITIAL | 0x4);
	set_command(UIO_BDF, CMD_INITIAL);

	/* With the sticky bit (like /tmp), others keep to their own files. */
	CU_ASSERT(chmod(dir, 01777) == 0);
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL(dev);
	upcie_pci_close(dev);
	/* ... but there a lock file of another user could be removed by its
	 * owner (root can make one). */
	if (geteuid() == 0) {
		char file[400];

		snprintf(file, sizeof(file), "%s/" UIO_BDF ".lock", dir);
		CU_ASSERT(chown(file, 65534, 65534) == 0);
		CU_ASSERT_PTR_NULL(open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO));
		CU_ASSERT_EQUAL(errno, EPERM);
		CU_ASSERT(msg_has("lock file belongs to another user"));
		CU_ASSERT(chown(file, 0, 0) == 0);
	}

	CU_ASSERT(symlink(dir, link) == 0);
	CU_ASSERT(setenv("UPCIE_LOCK_DIR", link, 1) == 0);
	CU_ASSERT_PTR_NULL(open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, ENOTDIR);
	CU_ASSERT(msg_has("symbolic link"));

	/* Another user's directory (root can make one). */
	if (geteuid() == 0) {
		CU_ASSERT(chmod(dir, 0755) == 0 && chown(dir, 65534, 65534) == 0);
		CU_ASSERT(setenv("UPCIE_LOCK_DIR", dir, 1) == 0);
		CU_ASSERT_PTR_NULL(open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO));
		CU_ASSERT_EQUAL(errno, EPERM);
		CU_ASSERT(msg_has("it belongs to another user, who could remove the locks"));
	} else {
		printf("\n  not root: the cases with another user's files are skipped");
	}
	CU_ASSERT_FATAL(setenv("UPCIE_LOCK_DIR", root, 1) == 0);
	dev = open_as(UIO_BDF, UPCIE_PCI_BACKEND_AUTO);
	CU_ASSERT_PTR_NOT_NULL(dev);
	upcie_pci_close(dev);
}

/* An open that fails after the lock releases it again. */
static void test_lock_released_on_failure(void)
{
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_PTR_NULL(open_as(VFIO_NOGROUP, UPCIE_PCI_BACKEND_AUTO));
		CU_ASSERT_EQUAL(errno, ENODEV);
	}
	CU_ASSERT_PTR_NULL(open_as(UIO_NOUIO, UPCIE_PCI_BACKEND_AUTO));
	CU_ASSERT_EQUAL(errno, ENODEV);
	CU_ASSERT(msg_has("no uio device"));
	CU_ASSERT(msg_has("devbind bind uio_pci_generic " UIO_NOUIO));
}

/* upcie_pci_check(): 0 while present; -ENODEV (sticky) once the uio device
 * disappears from sysfs or config space reads all-ones. */
static void test_uio_check_gone(void)
{
	char from[256], to[256], msg[256];
	struct upcie_pci_dev *dev;
	uint16_t ones = 0xffff, vendor = 0x1b36;
	int fd;

	CU_ASSERT_EQUAL(upcie_pci_check(NULL), -EINVAL);
	dev = open_as(UIO_GONE_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_check(dev), 0);
	CU_ASSERT_EQUAL(upcie_pci_check(dev), 0);

	/* Surprise removal: config space reads all-ones. */
	snprintf(from, sizeof(from), "%s/bus/pci/devices/%s/config", root, UIO_GONE_BDF);
	fd = open(from, O_WRONLY);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pwrite(fd, &ones, 2, 0), 2);
	CU_ASSERT_EQUAL(upcie_pci_check(dev), -ENODEV);
	CU_ASSERT(msg_has("all-ones"));
	snprintf(msg, sizeof(msg), "%s", upcie_errmsg());
	/* Sticky, with the same message, even once the device reads back. */
	CU_ASSERT_EQUAL(pwrite(fd, &vendor, 2, 0), 2);
	close(fd);
	CU_ASSERT_EQUAL(upcie_pci_bar_map(dev, 5, NULL, NULL), -EINVAL); /* another message */
	CU_ASSERT_EQUAL(upcie_pci_check(dev), -ENODEV);
	CU_ASSERT_STRING_EQUAL(upcie_errmsg(), msg);
	upcie_pci_close(dev);

	/* Unbound from uio_pci_generic: its uio/uioN directory goes away. */
	dev = open_as(UIO_GONE_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_check(dev), 0);
	snprintf(from, sizeof(from), "%s/bus/pci/devices/%s/uio", root, UIO_GONE_BDF);
	snprintf(to, sizeof(to), "%s/bus/pci/devices/%s/uio.away", root, UIO_GONE_BDF);
	CU_ASSERT_FATAL(rename(from, to) == 0);
	CU_ASSERT_EQUAL(upcie_pci_check(dev), -ENODEV);
	CU_ASSERT(msg_has("removed or unbound"));
	upcie_pci_close(dev);
	CU_ASSERT(rename(to, from) == 0);
}

/* ---- uio INTx ---- */

#define CMD_INTX_DISABLE 0x0400 /* COMMAND bit 10, Interrupt Disable */

/* The fake tree's /dev/uioN of a device (its sysfs uio/uioN names it). */
static void uio_dev_path(const char *bdf, char *buf, size_t len)
{
	char dir[256];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/bus/pci/devices/%s/uio", root, bdf);
	buf[0] = '\0';
	d = opendir(dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "uio", 3) &&
		    snprintf(buf, len, "%s/dev/%s", root, e->d_name) >= (int)len)
			buf[0] = '\0';
	closedir(d);
	CU_ASSERT_FATAL(buf[0] != '\0');
}

/*
 * What the kernel does when the function raises INTx: uio_pci_generic's
 * handler sets Interrupt Disable, and uio counts an event. In the fake
 * tree /dev/uioN is a regular file: one more 4-byte count appended is
 * one event, and each open file's offset is its own event count, so
 * every listener reads it once, as from the real device.
 */
static void raise_intx(const char *bdf)
{
	static int32_t events;
	char path[300];
	int fd;

	set_command(bdf, (uint16_t)(fake_command(bdf) | CMD_INTX_DISABLE));
	uio_dev_path(bdf, path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND);
	CU_ASSERT_FATAL(fd >= 0);
	events++;
	CU_ASSERT_EQUAL(write(fd, &events, sizeof(events)), (ssize_t)sizeof(events));
	close(fd);
}

/* Is fd an open file of the fake /dev/uioN of bdf? */
static bool is_listener(const char *bdf, int fd)
{
	struct stat a, b;
	char path[300];

	uio_dev_path(bdf, path, sizeof(path));
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* No Interrupt Pin, or a pin the kernel routed no IRQ to: no interrupts,
 * and enable says why and what to do. */
static void test_uio_irq_none(void)
{
	static const char *const bdfs[] = {UIO_BDF, UIO_NOIRQ};
	struct upcie_pci_irq_info info;

	for (size_t i = 0; i < 2; i++) {
		struct upcie_pci_dev *dev = open_as(bdfs[i], UPCIE_PCI_BACKEND_UIO);

		CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
		memset(&info, 0xa5, sizeof(info));
		CU_ASSERT_EQUAL(upcie_pci_irq_info(dev, &info), 0);
		CU_ASSERT_EQUAL(info.kind, UPCIE_PCI_IRQ_NONE);
		CU_ASSERT_EQUAL(info.nvec, 0);
		CU_ASSERT_EQUAL(info.enabled, 0);
		CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 1), -ENOTSUP);
		CU_ASSERT(msg_has("no usable INTx line"));
		CU_ASSERT(msg_has("vfio-pci"));
		CU_ASSERT_EQUAL(upcie_pci_irq_open(dev, 0), -EINVAL);
		CU_ASSERT_EQUAL(upcie_pci_gone_fd(dev), -1);
		upcie_pci_close(dev);
	}
}

/* Enable clears Interrupt Disable, disable and close set it; only COMMAND
 * bit 10 changes. While enabled, a COMMAND update from elsewhere (here bus
 * mastering's) reads the register afresh and keeps the bit as it is. */
static void test_uio_irq_enable_disable(void)
{
	struct upcie_pci_irq_info info;
	struct upcie_pci_dev *dev;

	/* Masked by the handler of an interrupt before this open. */
	set_command(UIO_IRQ_BDF, CMD_INITIAL | CMD_INTX_DISABLE);
	dev = open_as(UIO_IRQ_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_irq_info(dev, &info), 0);
	CU_ASSERT_EQUAL(info.kind, UPCIE_PCI_IRQ_INTX);
	CU_ASSERT_EQUAL(info.nvec, 1);
	CU_ASSERT_EQUAL(info.enabled, 0);
	CU_ASSERT_EQUAL(upcie_pci_gone_fd(dev), -1);
	CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 2), -EINVAL);
	CU_ASSERT(msg_has("INTx: one line"));
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);

	CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 1), 0);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL);
	CU_ASSERT_EQUAL(upcie_pci_irq_info(dev, &info), 0);
	CU_ASSERT_EQUAL(info.enabled, 1);
	CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 1), 0);
	upcie_pci_irq_disable(dev);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);
	CU_ASSERT_EQUAL(upcie_pci_irq_info(dev, &info), 0);
	CU_ASSERT_EQUAL(info.enabled, 0);

	/* Bus mastering on and off keeps the line as the backend has it. */
	CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 1), 0);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | 0x4);
	/* The handler masked the line (and counted an event, whose ack will
	 * unmask it): a bus-master update leaves the mask as it found it. */
	set_command(UIO_IRQ_BDF, CMD_INITIAL | 0x4 | CMD_INTX_DISABLE);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, false), 0);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);
	set_command(UIO_IRQ_BDF, CMD_INITIAL);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);
	upcie_pci_irq_disable(dev);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | 0x4 | CMD_INTX_DISABLE);
	/* Disabled: a COMMAND write is written as given. */
	set_command(UIO_IRQ_BDF, CMD_INITIAL | 0x4);
	CU_ASSERT_EQUAL(upcie_pci_cfg_write(dev, 4, &(uint16_t){CMD_INITIAL | CMD_INTX_DISABLE}, 2),
			0);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);

	/* Close with interrupts on: bus mastering off and the line masked. */
	CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 1), 0);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | 0x4);
	upcie_pci_close(dev);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);
	set_command(UIO_IRQ_BDF, CMD_INITIAL);
}

/* Each listener sees each interrupt once; an ack unmasks the line. */
static void test_uio_irq_ack(void)
{
	struct upcie_pci_dev *dev;
	int a, b, wr;

	dev = open_as(UIO_IRQ_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL(upcie_pci_irq_open(dev, 0), -EINVAL);
	CU_ASSERT(msg_has("call upcie_pci_irq_enable() first"));
	CU_ASSERT_EQUAL_FATAL(upcie_pci_irq_enable(dev, 1), 0);
	a = upcie_pci_irq_open(dev, 0);
	b = upcie_pci_irq_open(dev, 0);
	CU_ASSERT_FATAL(a >= 0 && b >= 0);
	CU_ASSERT_NOT_EQUAL(a, b);
	CU_ASSERT(is_listener(UIO_IRQ_BDF, a) && is_listener(UIO_IRQ_BDF, b));
	CU_ASSERT(fcntl(a, F_GETFD) & FD_CLOEXEC);
	CU_ASSERT(fcntl(a, F_GETFL) & O_NONBLOCK);
	CU_ASSERT_EQUAL(upcie_pci_irq_open(dev, 1), -EINVAL);

	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, a), 0);
	raise_intx(UIO_IRQ_BDF);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, a), 1);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, a), 0);
	/* b has its own count: a's ack did not eat its wake-up. */
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, b), 1);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, b), 0);
	/* An ack with nothing new still unmasks (the line may be masked by an
	 * interrupt another listener has not acked yet). */
	raise_intx(UIO_IRQ_BDF);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, a), 1);
	set_command(UIO_IRQ_BDF, CMD_INITIAL | CMD_INTX_DISABLE);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, a), 0);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, b), 1);

	/* Errors: a vector that is not enabled, an fd that cannot be read,
	 * a device whose config space reads all-ones. */
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 1, a), -EINVAL);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, -1), -EINVAL);
	wr = open("/dev/null", O_WRONLY);
	CU_ASSERT_FATAL(wr >= 0);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, wr), -EBADF);
	CU_ASSERT(msg_has("pass an fd from upcie_pci_irq_open()"));
	close(wr);
	set_command(UIO_IRQ_BDF, 0xffff);
	raise_intx(UIO_IRQ_BDF);
	CU_ASSERT_EQUAL(upcie_pci_irq_ack(dev, 0, a), -ENODEV);
	CU_ASSERT(msg_has("all-ones"));
	set_command(UIO_IRQ_BDF, CMD_INITIAL);

	upcie_pci_irq_close(dev, 0, a);
	upcie_pci_irq_close(dev, 0, b);
	upcie_pci_close(dev);
	set_command(UIO_IRQ_BDF, CMD_INITIAL);
}

/* Closing a /dev/uioN file clears bus mastering: listeners given back go
 * to a pool, open until the device closes; one never given back is left
 * pointing at /dev/null, not at the device. */
static void test_uio_irq_pool(void)
{
	struct upcie_pci_dev *dev;
	struct stat null_st, st;
	int a, b, c, d, p[2];

	CU_ASSERT_FATAL(stat("/dev/null", &null_st) == 0);
	dev = open_as(UIO_IRQ_BDF, UPCIE_PCI_BACKEND_UIO);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
	CU_ASSERT_EQUAL_FATAL(upcie_pci_irq_enable(dev, 1), 0);
	CU_ASSERT_EQUAL(upcie_pci_bus_master(dev, true), 0);

	a = upcie_pci_irq_open(dev, 0);
	CU_ASSERT_FATAL(a >= 0);
	upcie_pci_irq_close(dev, 0, a);
	CU_ASSERT(is_listener(UIO_IRQ_BDF, a)); /* still open */
	b = upcie_pci_irq_open(dev, 0);
	CU_ASSERT_EQUAL(b, a); /* taken from the pool */
	c = upcie_pci_irq_open(dev, 0);
	CU_ASSERT_FATAL(c >= 0);
	CU_ASSERT_NOT_EQUAL(c, b);
	upcie_pci_irq_close(dev, 0, b);
	upcie_pci_irq_close(dev, 0, c);
	/* Twice, or an fd that is no listener: left alone. */
	upcie_pci_irq_close(dev, 0, c);
	CU_ASSERT_FATAL(pipe(p) == 0);
	upcie_pci_irq_close(dev, 0, p[0]);
	CU_ASSERT(fcntl(p[0], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
	CU_ASSERT(is_listener(UIO_IRQ_BDF, b));
	CU_ASSERT(is_listener(UIO_IRQ_BDF, c));
	/* Disabling interrupts closes nothing either. */
	upcie_pci_irq_disable(dev);
	CU_ASSERT(is_listener(UIO_IRQ_BDF, b));
	CU_ASSERT(is_listener(UIO_IRQ_BDF, c));
	CU_ASSERT_EQUAL(upcie_pci_irq_enable(dev, 1), 0);
	d = upcie_pci_irq_open(dev, 0);
	CU_ASSERT(d == b || d == c);

	upcie_pci_close(dev);
	/* The pooled listener is closed; the one still out is /dev/null now. */
	errno = 0;
	CU_ASSERT_EQUAL(fcntl(d == b ? c : b, F_GETFD), -1);
	CU_ASSERT_EQUAL(errno, EBADF);
	CU_ASSERT_FATAL(fstat(d, &st) == 0);
	CU_ASSERT(S_ISCHR(st.st_mode) && st.st_rdev == null_st.st_rdev);
	CU_ASSERT(fcntl(d, F_GETFD) & FD_CLOEXEC);
	close(d);
	CU_ASSERT_EQUAL(fake_command(UIO_IRQ_BDF), CMD_INITIAL | CMD_INTX_DISABLE);
	set_command(UIO_IRQ_BDF, CMD_INITIAL);
}

static CU_TestInfo tests[] = {
    {"open a device bound to nvme", test_bound_to_nvme},
    {"open an address that does not exist", test_unknown_bdf},
    {"uio: BAR map, config space, bus mastering fenced", test_uio_open_bar_cfg},
    {"uio: DMA needs a hugepage size", test_uio_dma_needs_hugepages},
    {"uio: DMA addresses from pagemap", test_uio_dma_pagemap},
    {"uio: pagemap with 4 KiB and 64 KiB host pages", test_pagemap_page_sizes},
    {"uio: refuse a device behind a translating IOMMU", test_uio_behind_iommu},
    {"vfio: device without an IOMMU group", test_vfio_without_group},
    {"forced backend does not match the driver", test_backend_mismatch},
    {"backend table: device names, forced backends", test_backend_table},
    {"vfio: iommufd forced without a cdev, or without its node", test_vfio_iommufd_forced},
    {"vfio: no-IOMMU mode only on request, each missing piece named", test_vfio_noiommu},
    {"reserved option fields must be zero", test_reserved_options},
    {"uio: bus mastering off at open and at close", test_uio_fence_and_close},
    {"owner lock: second handle in this process", test_lock_same_process},
    {"owner lock: another process, then kill -9", test_lock_other_process},
    {"owner lock: released when open fails", test_lock_released_on_failure},
    {"owner lock: a directory others could remove locks from is refused", test_lock_dir_unsafe},
    {"uio: check sees a removed or unbound device", test_uio_check_gone},
    {"uio: no interrupts without a pin or a routed IRQ", test_uio_irq_none},
    {"uio: INTx enable, disable and close set Interrupt Disable", test_uio_irq_enable_disable},
    {"uio: every listener sees every interrupt, an ack unmasks", test_uio_irq_ack},
    {"uio: listeners are pooled, closed only with the device", test_uio_irq_pool},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("pci_backends", suite_init, suite_clean, tests)
