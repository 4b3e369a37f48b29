/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio backend's IOMMU half for vfio's no-IOMMU mode
 * (CONFIG_VFIO_NOIOMMU; the vfio module parameter
 * enable_unsafe_noiommu_mode):
 *
 *   With the parameter on, vfio-pci takes a device that has no IOMMU group
 *   by making one for it (sysfs names it "vfio-noiommu", the kernel is
 *   tainted); its group file is /dev/vfio/noiommu-N. The group joins a
 *   container of type VFIO_NOIOMMU_IOMMU, which maps nothing: the device
 *   sees physical addresses, read from /proc/self/pagemap as under uio
 *   (phys.c), so DMA memory must be hugepages. Regions, config space,
 *   MSI-X and the device request interrupt are vfio's, as with an IOMMU.
 *
 * Unsafe without an IOMMU: a bug in the program, or in the device, can
 * DMA anywhere in memory. Hence an opt-in (UPCIE_PCI_VFIO_IOMMU_NOIOMMU or
 * UPCIE_VFIO_IOMMU=noiommu); a no-IOMMU group met without it is refused.
 * The kernel wants CAP_SYS_RAWIO for the group, and physical addresses
 * need CAP_SYS_ADMIN: root.
 *
 * The device cdev is no way in here: Linux 6.12 gives a no-IOMMU device
 * no cdev (drivers/vfio/vfio.h: "cdev does not support noiommu device"),
 * and VFIO_DEVICE_BIND_IOMMUFD refuses iommufd -1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "sysfs.h"

#include "core/log.h"
#include "pci/vfio.h"

#define NOIOMMU_PARAM "module/vfio/parameters/enable_unsafe_noiommu_mode"
/* The name vfio gives the IOMMU groups it makes in no-IOMMU mode. */
#define NOIOMMU_GROUP_NAME "vfio-noiommu"

bool upcie_vfio_noiommu_group(const struct upcie_vfio *p, int group)
{
	char name[64];

	return !upcie_sysfs_read_str(p->root, name, sizeof(name), "kernel/iommu_groups/%d/name",
				     group) &&
	       !strcmp(name, NOIOMMU_GROUP_NAME);
}

int upcie_vfio_noiommu_refuse(struct upcie_pci_dev *dev, const struct upcie_vfio *p)
{
	return upcie_err(-EPERM,
			 "%s is in vfio's no-IOMMU mode (group noiommu-%d): DMA would use "
			 "physical addresses, unsafe without an IOMMU (a bug in the program, "
			 "or in the device, can DMA anywhere in memory); opt in with "
			 "UPCIE_VFIO_IOMMU=noiommu (upcie_pci_opts.vfio_iommu = "
			 "UPCIE_PCI_VFIO_IOMMU_NOIOMMU), or use a machine with an IOMMU",
			 dev->name, p->group);
}

/* The module parameter: 0 on, or the error naming what is missing. */
static int check_param(struct upcie_pci_dev *dev, const struct upcie_vfio *p)
{
	char v[8];

	if (upcie_sysfs_read_str(p->root, v, sizeof(v), NOIOMMU_PARAM))
		return upcie_err(-ENOTSUP,
				 "%s: vfio's no-IOMMU mode was asked for, but this kernel has none "
				 "(no /sys/" NOIOMMU_PARAM ": vfio not loaded, or built without "
				 "CONFIG_VFIO_NOIOMMU); use uio_pci_generic instead",
				 dev->name);
	if (v[0] != 'Y' && v[0] != '1')
		return upcie_err(
		    -EPERM,
		    "%s: vfio's no-IOMMU mode is off (/sys/" NOIOMMU_PARAM
		    " is %s); turn it on with 'devbind noiommu on' (or write Y "
		    "there, or boot with vfio.enable_unsafe_noiommu_mode=1), then bind "
		    "the device to vfio-pci again",
		    dev->name, v);
	return 0;
}

static int open_file(struct upcie_pci_dev *dev, const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int err = errno;

	if (fd >= 0)
		return fd;
	if (err == EACCES || err == EPERM)
		return upcie_err(-EACCES,
				 "%s: cannot open %s: %s; vfio's no-IOMMU mode needs "
				 "CAP_SYS_RAWIO: run as root",
				 dev->name, path, strerror(err));
	if (err == EBUSY)
		return upcie_err(-EBUSY, "%s: %s is busy: another process (or handle) has it open",
				 dev->name, path);
	if (err == ENOENT)
		return upcie_err(-ENODEV,
				 "%s: %s does not exist; is vfio loaded and /dev populated "
				 "(devtmpfs)?",
				 dev->name, path);
	return upcie_err(-err, "%s: cannot open %s: %s", dev->name, path, strerror(err));
}

static int noiommu_open(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	char path[64];
	int rc;

	rc = check_param(dev, p);
	if (rc)
		return rc;
	if (!upcie_vfio_noiommu_group(p, p->group))
		return upcie_err(-EINVAL,
				 "%s: vfio's no-IOMMU mode was asked for, but the device is behind "
				 "an IOMMU (group %d): no-IOMMU mode is only for devices without "
				 "one; leave UPCIE_VFIO_IOMMU unset (type1 or iommufd)",
				 dev->name, p->group);
	/* A fake sysfs tree (tests) goes no further than the files above. */
	if (!p->root && !upcie_have_cap_sys_admin())
		return upcie_err(-EACCES,
				 "%s: vfio's no-IOMMU mode needs CAP_SYS_RAWIO (the group) and "
				 "CAP_SYS_ADMIN (physical addresses): run as root",
				 dev->name);

	p->container_fd = open_file(dev, "/dev/vfio/vfio");
	if (p->container_fd < 0)
		return p->container_fd;
	/* The extension is there only while the parameter is on (it may have
	 * gone off since). */
	rc = upcie_vfio_container_check(
	    dev, p, VFIO_NOIOMMU_IOMMU,
	    "the vfio container offers no VFIO_NOIOMMU_IOMMU: "
	    "no-IOMMU mode is off; turn it on with 'devbind noiommu on'");
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/dev/vfio/noiommu-%d", p->group);
	p->group_fd = open_file(dev, path);
	if (p->group_fd < 0)
		return p->group_fd;
	rc = upcie_vfio_group_viable(dev, p);
	if (rc)
		return rc;
	if (ioctl(p->group_fd, VFIO_GROUP_SET_CONTAINER, &p->container_fd))
		return upcie_err(
		    -errno, "%s: VFIO_GROUP_SET_CONTAINER: %s%s", dev->name, strerror(errno),
		    errno == EPERM ? " (no-IOMMU mode needs CAP_SYS_RAWIO: run as root)" : "");
	if (ioctl(p->container_fd, VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU))
		return upcie_err(-errno, "%s: VFIO_SET_IOMMU (no-IOMMU): %s", dev->name,
				 strerror(errno));
	rc = upcie_vfio_group_device(dev, p);
	if (rc)
		return rc;
	upcie_warn("%s: vfio no-IOMMU mode: the device gets physical addresses, unsafe without an "
		   "IOMMU (a bug in the program, or in the device, can DMA anywhere in memory)",
		   dev->name);
	return 0;
}

static void noiommu_close(struct upcie_vfio *p)
{
	if (p->group_fd >= 0)
		close(p->group_fd);
	if (p->container_fd >= 0)
		close(p->container_fd);
	p->group_fd = p->container_fd = -1;
}

const struct upcie_vfio_iommu_ops upcie_vfio_noiommu_ops = {
    .name = "noiommu",
    .open = noiommu_open,
    .close = noiommu_close,
    .physical = true,
};
