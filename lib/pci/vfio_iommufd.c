/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio backend's IOMMU half through iommufd and the VFIO device cdev
 * (Linux 6.6 and later, with IOMMUFD and VFIO_DEVICE_CDEV):
 *
 *   open /dev/vfio/devices/vfioN (the device's cdev, named in sysfs under
 *   the PCI device's vfio-dev/), open /dev/iommu, bind the device to it
 *   (VFIO_DEVICE_BIND_IOMMUFD), allocate an IO address space
 *   (IOMMU_IOAS_ALLOC), attach the device to it
 *   (VFIO_DEVICE_ATTACH_IOMMUFD_PT), read its usable IOVA ranges
 *   (IOMMU_IOAS_IOVA_RANGES); DMA maps at IOVAs the backend picks
 *   (IOMMU_IOAS_MAP with FIXED_IOVA), as with type1.
 *
 * No IOMMU group file and no container: a process needs only the cdev and
 * /dev/iommu, and other devices of the group are not opened with it. The
 * device fd works as a group's would for everything else (regions, config
 * space, interrupts, the request interrupt): vfio.c does not tell them
 * apart. Closing the device fd detaches it, closing the iommufd frees the
 * IOAS and its mappings.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sysfs.h"

#include "core/log.h"
#include "core/page.h"
#include "pci/iommufd_uapi.h"
#include "pci/vfio.h"

static int open_dev_file(struct upcie_pci_dev *dev, const char *path, const char *what)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int err = errno;

	if (fd >= 0)
		return fd;
	if (err == ENOENT)
		return upcie_err(-ENODEV,
				 "%s: %s does not exist: the kernel has no %s (IOMMUFD and "
				 "VFIO_DEVICE_CDEV, Linux 6.6 or later), or /dev is not populated; "
				 "use the type1 IOMMU instead",
				 dev->name, path, what);
	if (err == EACCES || err == EPERM)
		return upcie_err(-EACCES,
				 "%s: cannot open %s: %s; run as root or give your user the "
				 "file ('devbind bind --user' does)",
				 dev->name, path, strerror(err));
	if (err == EBUSY)
		return upcie_err(-EBUSY, "%s: %s is busy: another process has the device open",
				 dev->name, path);
	return upcie_err(-err, "%s: cannot open %s: %s", dev->name, path, strerror(err));
}

/* VFIO_DEVICE_BIND_IOMMUFD failed with err. EPERM/EBUSY: the kernel could
 * not claim the IOMMU group for user space, which it refuses while another
 * member has a kernel driver: name them, as type1 does for a group that is
 * not viable. */
static int bind_error(struct upcie_pci_dev *dev, const struct upcie_vfio *p, int err)
{
	char others[512];

	if ((err == EPERM || err == EBUSY) &&
	    upcie_vfio_group_others(p->root, p->group, dev->name, true, others, sizeof(others)))
		return upcie_err(
		    -EBUSY,
		    "%s: IOMMU group %d is not viable: every device in it must be bound "
		    "to vfio-pci or to no driver; the other devices are: %s",
		    dev->name, p->group, others);
	return upcie_err(-err, "%s: VFIO_DEVICE_BIND_IOMMUFD: %s", dev->name, strerror(err));
}

static int iommufd_iova_ranges(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	struct upcie_iommu_iova_range r[MAX_IOVA_RANGES];
	struct upcie_iommu_ioas_iova_ranges q = {
	    .size = sizeof(q),
	    .ioas_id = p->ioas_id,
	    .num_iovas = MAX_IOVA_RANGES,
	    .allowed_iovas = (uintptr_t)r,
	};

	/* EMSGSIZE: more ranges than room; the first MAX_IOVA_RANGES are
	 * filled in, and they are plenty. */
	if (ioctl(p->iommufd, UPCIE_IOMMU_IOAS_IOVA_RANGES, &q) && errno != EMSGSIZE)
		return upcie_err(-errno, "%s: IOMMU_IOAS_IOVA_RANGES: %s", dev->name,
				 strerror(errno));
	p->niova = 0;
	for (uint32_t i = 0; i < q.num_iovas && i < MAX_IOVA_RANGES; i++) {
		p->iova[p->niova].start = r[i].start;
		p->iova[p->niova].end = r[i].last;
		p->niova++;
	}
	if (!p->niova)
		return upcie_err(-ENOSPC, "%s: the IO address space has no usable IOVA range",
				 dev->name);
	/* Every IOVA the heap uses is host-page aligned, which the kernel's
	 * alignment (at most PAGE_SIZE) divides. */
	p->pgsizes = upcie_host_page_size();
	p->iova_next = IOVA_MIN;
	return 0;
}

static int iommufd_open(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	struct upcie_iommu_ioas_alloc alloc = {.size = sizeof(alloc)};
	struct upcie_vfio_device_bind_iommufd bind = {.argsz = sizeof(bind)};
	struct upcie_vfio_device_attach_iommufd_pt at = {.argsz = sizeof(at)};
	char name[32], path[64];
	int rc;

	rc = upcie_sysfs_pci_vfio_cdev(p->root, &dev->addr, name, sizeof(name));
	if (rc)
		return upcie_err(-ENODEV,
				 "%s has no VFIO device cdev (no vfio-dev/ in sysfs): the kernel "
				 "lacks VFIO_DEVICE_CDEV (Linux 6.6 or later) or the device is not "
				 "bound to vfio-pci; use the type1 IOMMU instead",
				 dev->name);
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", name);
	p->device_fd = open_dev_file(dev, path, "VFIO device cdev");
	if (p->device_fd < 0)
		return p->device_fd;
	/* In a DMA context the iommufd and the IOAS may be the context's. */
	if (!p->shared_iommu || p->iommufd < 0) {
		p->iommufd = open_dev_file(dev, "/dev/iommu", "iommufd");
		if (p->iommufd < 0)
			return p->iommufd;
	}
	bind.iommufd = p->iommufd;
	if (ioctl(p->device_fd, UPCIE_VFIO_DEVICE_BIND_IOMMUFD, &bind))
		return bind_error(dev, p, errno);
	if (!p->shared_iommu || !p->iommu_set) {
		if (ioctl(p->iommufd, UPCIE_IOMMU_IOAS_ALLOC, &alloc))
			return upcie_err(-errno, "%s: IOMMU_IOAS_ALLOC: %s", dev->name,
					 strerror(errno));
		p->ioas_id = alloc.out_ioas_id;
	}
	at.pt_id = p->ioas_id;
	if (ioctl(p->device_fd, UPCIE_VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at))
		return upcie_err(-errno, "%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", dev->name,
				 strerror(errno));
	return iommufd_iova_ranges(dev, p);
}

static int iommufd_map(struct upcie_pci_dev *dev, struct upcie_vfio *p, void *va, size_t len,
		       uint64_t iova)
{
	struct upcie_iommu_ioas_map m = {
	    .size = sizeof(m),
	    .flags = UPCIE_IOMMU_IOAS_MAP_FIXED_IOVA | UPCIE_IOMMU_IOAS_MAP_READABLE |
		     UPCIE_IOMMU_IOAS_MAP_WRITEABLE,
	    .ioas_id = p->ioas_id,
	    .user_va = (uintptr_t)va,
	    .length = len,
	    .iova = iova,
	};

	if (ioctl(p->iommufd, UPCIE_IOMMU_IOAS_MAP, &m))
		return upcie_vfio_map_error(dev, p, errno, len, "IOMMU_IOAS_MAP");
	return 0;
}

static int iommufd_unmap(struct upcie_pci_dev *dev, struct upcie_vfio *p, uint64_t iova, size_t len)
{
	struct upcie_iommu_ioas_unmap u = {
	    .size = sizeof(u),
	    .ioas_id = p->ioas_id,
	    .iova = iova,
	    .length = len,
	};

	if (ioctl(p->iommufd, UPCIE_IOMMU_IOAS_UNMAP, &u))
		return upcie_err(-errno, "%s: IOMMU_IOAS_UNMAP at %#llx: %s", dev->name,
				 (unsigned long long)iova, strerror(errno));
	if (u.length != len)
		return upcie_err(-EIO, "%s: IOMMU_IOAS_UNMAP at %#llx unmapped %llu of %zu bytes",
				 dev->name, (unsigned long long)iova, (unsigned long long)u.length,
				 len);
	return 0;
}

static void iommufd_close(struct upcie_vfio *p)
{
	/* The device fd is closed first (vfio.c): that detaches it; closing
	 * the iommufd then frees the IOAS and whatever is still mapped. */
	if (p->iommufd >= 0)
		close(p->iommufd);
	p->iommufd = -1;
}

const struct upcie_vfio_iommu_ops upcie_vfio_iommufd_ops = {
    .name = "iommufd",
    .open = iommufd_open,
    .map = iommufd_map,
    .unmap = iommufd_unmap,
    .close = iommufd_close,
};
