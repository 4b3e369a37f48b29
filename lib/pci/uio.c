/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The uio backend: a device bound to uio_pci_generic.
 *
 * uio_pci_generic gives user space nothing but the right to own the
 * device; everything else comes from sysfs:
 *   BARs          mmap of bus/pci/devices/<bdf>/resourceN (memory BARs only)
 *   config space  pread/pwrite of bus/pci/devices/<bdf>/config
 *   DMA           bus addresses are physical addresses, read from
 *                 /proc/self/pagemap (needs CAP_SYS_ADMIN; without it the
 *                 kernel reports PFN 0)
 *
 * Caveats: there is no IOMMU between the device and memory, so a wrong
 * PRP lets the device write anywhere in RAM. Memory must be hugepages: a
 * queue needs physically contiguous memory and only a hugepage guarantees
 * it. A device behind a translating IOMMU cannot use physical addresses:
 * such opens are refused (use vfio-pci, or boot with iommu=pt / iommu=off).
 *
 * Crash safety: the handle keeps /dev/uioN (found through sysfs
 * .../<bdf>/uio/uioN) open for its whole life, although it never reads
 * interrupts from it (listeners are files of their own: see Interrupts
 * below). In Linux 6.1, uio_release() calls the driver's release hook
 * at every close of a /dev/uioN file, and uio_pci_generic's
 * release() calls pci_clear_master(): when the process dies (kill -9
 * included), the kernel closes the file and bus mastering goes off, so the
 * controller stops DMAing into memory the process no longer owns. Two
 * consequences:
 *   - any close of a /dev/uioN file clears bus mastering, whoever opened
 *     it: pci.c takes the owner lock before this file is opened, so a
 *     refused second opener never opens (and closes) it;
 *   - the gap: at exit the kernel tears down the address space
 *     (exit_mm) before it closes files (exit_files), so for a short time
 *     the DMA hugepages are back in the kernel's hugepage pool while bus
 *     mastering is still on. uio cannot close that gap (nothing pins the
 *     pages for the device); vfio can: its pages stay pinned until the
 *     device is reset and released. Use vfio-pci where it matters.
 *
 * Interrupts (INTx): lib/pci/uio_irq.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sysfs.h"

#include "core/log.h"
#include "core/page.h"
#include "pci/backend.h"
#include "pci/uio.h"

static int uio_bar_map(struct upcie_pci_dev *dev, unsigned bar, void **va, size_t *len)
{
	struct uio_priv *p = priv_of(dev);
	uint64_t start, size, flags;
	char path[PATH_MAX];
	size_t maplen;
	void *m;
	int rc, fd, err;

	rc = upcie_sysfs_pci_resource(p->root, &dev->addr, bar, &start, &size, &flags);
	if (rc)
		return upcie_err(rc, "%s: cannot read BAR %u from sysfs 'resource': %s", dev->name,
				 bar, strerror(-rc));
	if (!size)
		return upcie_err(-EINVAL, "%s: BAR %u is not implemented by the device", dev->name,
				 bar);
	if (flags & UPCIE_SYSFS_RES_IO)
		return upcie_err(-EINVAL,
				 "%s: BAR %u is an I/O port BAR; only memory BARs can be mapped",
				 dev->name, bar);
	if (!(flags & UPCIE_SYSFS_RES_MEM))
		return upcie_err(-EINVAL, "%s: BAR %u is not a memory BAR (flags %#llx)", dev->name,
				 bar, (unsigned long long)flags);
	if (size > SIZE_MAX)
		return upcie_err(-EINVAL, "%s: BAR %u is too large to map", dev->name, bar);

	rc = upcie_sysfs_path(p->root, path, sizeof(path), "bus/pci/devices/%s/resource%u", p->bdf,
			      bar);
	if (rc)
		return upcie_err(rc, "%s: sysfs path too long", dev->name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		if (err == EACCES || err == EPERM)
			return upcie_err(-EACCES, "%s: cannot open %s: %s; run as root", dev->name,
					 path, strerror(err));
		return upcie_err(-err, "%s: cannot open %s: %s", dev->name, path, strerror(err));
	}
	/* mmap covers whole pages; the resource file allows the rounded size. */
	maplen = upcie_host_page_align((size_t)size);
	m = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	err = errno;
	close(fd);
	if (m == MAP_FAILED)
		return upcie_err(-err, "%s: cannot mmap BAR %u (%zu bytes) from %s: %s", dev->name,
				 bar, maplen, path, strerror(err));
	*va = m;
	*len = maplen;
	return 0;
}

static int uio_cfg_read(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len)
{
	return upcie_pci_cfg_fd_io(dev, priv_of(dev)->cfg_fd, 0, off, buf, len, false);
}

/* Config writes go straight to the sysfs file. COMMAND is only ever
 * written through upcie_pci_command_update() (serialized, read fresh), so
 * no write carries a stale copy of the Interrupt Disable bit the kernel's
 * handler and the acks move. */
static int uio_cfg_write(struct upcie_pci_dev *dev, uint32_t off, const void *buf, size_t len)
{
	return upcie_pci_cfg_fd_io(dev, priv_of(dev)->cfg_fd, 0, off, (void *)buf, len, true);
}

/* Physical addresses, one per hugepage (phys.c). */
static int uio_dma_map(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
		       uint64_t *bus)
{
	return upcie_pci_phys_map(dev, priv_of(dev)->root, va, len, page_size, bus, "uio",
				  ", or use vfio-pci");
}

static int uio_dma_unmap(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			 const uint64_t *bus)
{
	/* Physical addresses need no teardown; the heap unpins its memory. */
	(void)dev;
	(void)va;
	(void)len;
	(void)page_size;
	(void)bus;
	return 0;
}

/*
 * Gone when the uio device went away (unbound from uio_pci_generic,
 * removed) or config space reads fail or read all-ones (surprise removal).
 * Two syscalls; the NVMe layer calls it every few milliseconds at most.
 */
static int uio_check(struct upcie_pci_dev *dev)
{
	struct uio_priv *p = priv_of(dev);
	uint16_t vendor = 0xffff;
	ssize_t n;
	int rc;

	rc = upcie_sysfs_exists(p->root, "bus/pci/devices/%s/uio/%s", p->bdf, p->uio_name);
	if (rc == -ENOENT)
		return upcie_err(-ENODEV,
				 "%s: the device was removed or unbound from " UIO_DRIVER
				 " (%s is gone)",
				 dev->name, p->uio_name);
	n = pread(p->cfg_fd, &vendor, sizeof(vendor), 0);
	if (n != (ssize_t)sizeof(vendor))
		return upcie_err(-ENODEV,
				 "%s: config space cannot be read any more (%s); the "
				 "device is gone",
				 dev->name, n < 0 ? strerror(errno) : "short read");
	if (vendor == 0xffff)
		return upcie_err(-ENODEV, "%s: config space reads all-ones; the device is gone",
				 dev->name);
	return 0;
}

static void uio_release(struct uio_priv *p)
{
	if (p->cfg_fd >= 0)
		close(p->cfg_fd);
	/* The kernel clears bus mastering here (uio_pci_generic release()):
	 * pci.c turned it off already. */
	if (p->uio_fd >= 0)
		close(p->uio_fd);
	upcie_uio_close_listeners(p);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static void uio_close(struct upcie_pci_dev *dev)
{
	if (dev->priv)
		uio_release(dev->priv);
	dev->priv = NULL;
}

static const struct upcie_pci_ops uio_ops = {
    .name = "uio",
    .bar_map = uio_bar_map,
    .cfg_read = uio_cfg_read,
    .cfg_write = uio_cfg_write,
    .dma_map = uio_dma_map,
    .dma_unmap = uio_dma_unmap,
    .check = uio_check,
    .irq_info = uio_irq_info,
    .irq_enable = uio_irq_enable,
    .irq_disable = uio_irq_disable,
    .irq_open = uio_irq_open,
    .irq_close = uio_irq_close,
    .irq_ack = uio_irq_ack,
    .close = uio_close,
};

/*
 * Physical addresses only work when DMA is not translated: no IOMMU group,
 * or a group whose default domain is the identity map (iommu=pt).
 */
static int check_no_iommu(struct upcie_pci_dev *dev, const char *root)
{
	char type[64] = "";
	int group, rc;

	rc = upcie_sysfs_pci_iommu_group(root, &dev->addr, &group);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return upcie_err(rc, "%s: cannot read its IOMMU group: %s", dev->name,
				 strerror(-rc));
	rc = upcie_sysfs_read_str(root, type, sizeof(type), "kernel/iommu_groups/%d/type", group);
	if (!rc && (!strcmp(type, "identity")))
		return 0;
	return upcie_err(-ENOTSUP,
			 "%s is behind an active IOMMU (group %d, domain type '%s'): uio uses "
			 "physical addresses, which the IOMMU would block; bind it to vfio-pci "
			 "instead, or boot with iommu=pt (or iommu=off / intel_iommu=off)",
			 dev->name, group, type[0] ? type : "unknown");
}

static int uio_cb(const char *name, void *arg)
{
	struct uio_priv *p = arg;

	if (strncmp(name, "uio", 3) || strlen(name) >= sizeof(p->uio_name))
		return 0;
	memcpy(p->uio_name, name, strlen(name) + 1);
	return 1;
}

/*
 * Find uioN under the device's sysfs directory and open /dev/uioN (a fake
 * sysfs tree in tests carries its own dev/ directory beside bus/).
 */
static int open_uio_file(struct upcie_pci_dev *dev, struct uio_priv *p)
{
	char *path = p->uio_path;
	int rc, err;

	rc = upcie_sysfs_dir_foreach(p->root, uio_cb, p, "bus/pci/devices/%s/uio", p->bdf);
	if (rc != 1)
		return upcie_err(-ENODEV,
				 "%s: no uio device under its sysfs directory (%s); rebind it: "
				 "'devbind bind " UIO_DRIVER " %s'",
				 dev->name, rc ? strerror(-rc) : "empty", dev->name);
	rc = 0;
	if (p->root)
		rc = upcie_sysfs_path(p->root, path, sizeof(p->uio_path), "dev/%s", p->uio_name);
	else
		snprintf(path, sizeof(p->uio_path), "/dev/%s", p->uio_name);
	if (rc)
		return upcie_err(rc, "%s: path too long", dev->name);
	p->uio_fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->uio_fd < 0) {
		err = errno;
		if (err == ENOENT)
			return upcie_err(-ENODEV,
					 "%s: %s does not exist although sysfs lists %s; is /dev "
					 "populated (devtmpfs)?",
					 dev->name, path, p->uio_name);
		return upcie_err(-err, "%s: cannot open %s: %s", dev->name, path, strerror(err));
	}
	return 0;
}

static int uio_open(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
{
	const char *root = opts ? opts->sysfs_root : NULL;
	struct uio_priv *p;
	char path[PATH_MAX];
	int rc, err;

	rc = upcie_pci_require_driver(dev, opts, UIO_DRIVER);
	if (rc)
		return rc;
	rc = check_no_iommu(dev, root);
	if (rc)
		return rc;
	/* A fake sysfs tree (tests) has no privileged files; the real one does. */
	if (!root && !upcie_have_cap_sys_admin())
		return upcie_err(-EACCES,
				 "%s: the uio backend needs root (CAP_SYS_ADMIN: BAR files and "
				 "physical addresses); run as root, or bind the device to vfio-pci",
				 dev->name);

	p = calloc(1, sizeof(*p));
	if (!p)
		return upcie_err(-ENOMEM, "%s: out of memory", dev->name);
	p->cfg_fd = p->uio_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	if (root) {
		snprintf(p->root_buf, sizeof(p->root_buf), "%s", root);
		p->root = p->root_buf;
	}
	memcpy(p->bdf, dev->name, sizeof(p->bdf) - 1);

	rc = upcie_sysfs_path(root, path, sizeof(path), "bus/pci/devices/%s/config", p->bdf);
	if (rc) {
		rc = upcie_err(rc, "%s: sysfs path too long", dev->name);
		goto fail;
	}
	p->cfg_fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->cfg_fd < 0) {
		err = errno;
		if (err == EACCES || err == EPERM)
			rc = upcie_err(-EACCES, "%s: cannot open %s for writing: %s; run as root",
				       dev->name, path, strerror(err));
		else
			rc = upcie_err(-err, "%s: cannot open %s: %s", dev->name, path,
				       strerror(err));
		goto fail;
	}

	rc = open_uio_file(dev, p);
	if (rc)
		goto fail;

	/* pci.c clears bus mastering next; the NVMe layer turns it on once
	 * the controller is disabled. */
	dev->priv = p;
	dev->ops = &uio_ops;
	dev->dma_caps = UPCIE_PCI_DMA_NEEDS_HUGEPAGES;
	return 0;

fail:
	uio_release(p);
	dev->priv = NULL;
	dev->ops = NULL;
	return rc;
}

static const struct upcie_pci_backend_desc uio_backend = {
    .id = UPCIE_PCI_BACKEND_UIO,
    .driver = UIO_DRIVER,
    .open = uio_open,
};
const struct upcie_pci_backend_desc *const upcie_pci_uio_backend = &uio_backend;
