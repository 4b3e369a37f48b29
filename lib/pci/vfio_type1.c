/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio backend, IOMMU half: the type1 container and group.
 *
 *   container  /dev/vfio/vfio: API version, TYPE1v2 support
 *   group      /dev/vfio/<iommu_group>: must be viable (every device of the
 *              group bound to vfio-pci or to no driver), then joined to the
 *              container, then the container's IOMMU type is set
 *   device     VFIO_GROUP_GET_DEVICE_FD on the group
 *   IOVAs      the usable windows come from VFIO_IOMMU_GET_INFO's
 *              capability chain (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
 *
 * (Documentation/driver-api/vfio.rst.)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <unistd.h>

#include <linux/vfio.h>

#include "sysfs.h"

#include "core/log.h"
#include "core/page.h"
#include "pci/vfio.h"

int upcie_vfio_group_others(const char *root, int group, const char *self, bool held_only,
			    char *buf, size_t len)
{
	char path[PATH_MAX], drv[64];
	struct upcie_pci_addr a;
	struct dirent *de;
	size_t used = 0;
	int n = 0;
	DIR *d;

	buf[0] = '\0';
	if (upcie_sysfs_path(root, path, sizeof(path), "kernel/iommu_groups/%d/devices", group))
		return 0;
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		int w;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, self))
			continue;
		if (upcie_pci_addr_parse(de->d_name, &a) ||
		    upcie_sysfs_pci_driver(root, &a, drv, sizeof(drv)))
			drv[0] = '\0';
		if (held_only && (!drv[0] || !strcmp(drv, "vfio-pci")))
			continue;
		n++;
		w = snprintf(buf + used, len - used, "%s%s (%s)", used ? ", " : "", de->d_name,
			     drv[0] ? drv : "no driver");
		if (w > 0 && (size_t)w < len - used)
			used += (size_t)w;
	}
	closedir(d);
	return n;
}

int upcie_vfio_group_viable(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	struct vfio_group_status st = {.argsz = sizeof(st)};
	char others[512];

	if (ioctl(p->group_fd, VFIO_GROUP_GET_STATUS, &st))
		return upcie_err(-errno, "%s: VFIO_GROUP_GET_STATUS: %s", dev->name,
				 strerror(errno));
	if (st.flags & VFIO_GROUP_FLAGS_VIABLE)
		return 0;
	upcie_vfio_group_others(p->root, p->group, dev->name, false, others, sizeof(others));
	return upcie_err(-EBUSY,
			 "%s: IOMMU group %d is not viable: every device in it must be "
			 "bound to vfio-pci or to no driver; the other devices are: %s",
			 dev->name, p->group, others[0] ? others : "(none listed)");
}

int upcie_vfio_container_check(struct upcie_pci_dev *dev, struct upcie_vfio *p, unsigned long type,
			       const char *missing)
{
	int api = ioctl(p->container_fd, VFIO_GET_API_VERSION);

	if (api != VFIO_API_VERSION)
		return upcie_err(-ENOTSUP, "%s: VFIO API version %d, this library speaks %d",
				 dev->name, api, VFIO_API_VERSION);
	if (ioctl(p->container_fd, VFIO_CHECK_EXTENSION, type) <= 0)
		return upcie_err(-ENOTSUP, "%s: %s", dev->name, missing);
	return 0;
}

int upcie_vfio_group_device(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	p->device_fd = ioctl(p->group_fd, VFIO_GROUP_GET_DEVICE_FD, dev->name);
	if (p->device_fd < 0)
		return upcie_err(-errno, "%s: VFIO_GROUP_GET_DEVICE_FD: %s (is it in use?)",
				 dev->name, strerror(errno));
	return 0;
}

/* Walk VFIO_IOMMU_GET_INFO's capability chain for the usable IOVA ranges. */
static int type1_iova_ranges(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	struct vfio_iommu_type1_info *info;
	size_t sz = sizeof(*info);

	info = calloc(1, sz);
	if (!info)
		return upcie_err(-ENOMEM, "%s: out of memory", dev->name);
	info->argsz = (uint32_t)sz;
	if (ioctl(p->container_fd, VFIO_IOMMU_GET_INFO, info)) {
		int err = errno;
		free(info);
		return upcie_err(-err, "%s: VFIO_IOMMU_GET_INFO: %s", dev->name, strerror(err));
	}
	if (info->argsz > sz) {
		/* The capabilities do not fit: ask again with the size it wants. */
		struct vfio_iommu_type1_info *big;

		sz = info->argsz;
		big = realloc(info, sz);
		if (!big) {
			free(info);
			return upcie_err(-ENOMEM, "%s: out of memory", dev->name);
		}
		info = big;
		memset(info, 0, sz);
		info->argsz = (uint32_t)sz;
		if (ioctl(p->container_fd, VFIO_IOMMU_GET_INFO, info)) {
			int err = errno;
			free(info);
			return upcie_err(-err, "%s: VFIO_IOMMU_GET_INFO: %s", dev->name,
					 strerror(err));
		}
	}
	p->pgsizes =
	    (info->flags & VFIO_IOMMU_INFO_PGSIZES) ? info->iova_pgsizes : upcie_host_page_size();
	p->niova = 0;
	if ((info->flags & VFIO_IOMMU_INFO_CAPS) && info->cap_offset) {
		uint32_t off = info->cap_offset;

		/* Each header names the next one by offset; 0 ends the chain. */
		for (int guard = 0;
		     off && off + sizeof(struct vfio_info_cap_header) <= sz && guard < 64;
		     guard++) {
			struct vfio_info_cap_header *h = (void *)((char *)info + off);

			if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE &&
			    off + sizeof(struct vfio_iommu_type1_info_cap_iova_range) <= sz) {
				struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;

				for (uint32_t i = 0; i < r->nr_iovas && p->niova < MAX_IOVA_RANGES;
				     i++) {
					if (off + sizeof(*r) + (i + 1) * sizeof(r->iova_ranges[0]) >
					    sz)
						break;
					p->iova[p->niova].start = r->iova_ranges[i].start;
					p->iova[p->niova].end = r->iova_ranges[i].end;
					p->niova++;
				}
			}
			off = h->next;
		}
	}
	free(info);
	if (!p->niova) {
		p->iova[0].start = IOVA_DEFAULT_START;
		p->iova[0].end = IOVA_DEFAULT_END;
		p->niova = 1;
		upcie_debug("%s: IOMMU reports no IOVA ranges; using [%#llx, %#llx]", dev->name,
			    (unsigned long long)IOVA_DEFAULT_START,
			    (unsigned long long)IOVA_DEFAULT_END);
	}
	p->iova_next = IOVA_MIN;
	return 0;
}

static int open_group(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	char path[64];
	int err;

	snprintf(path, sizeof(path), "/dev/vfio/%d", p->group);
	p->group_fd = open(path, O_RDWR | O_CLOEXEC);
	if (p->group_fd < 0) {
		err = errno;
		if (err == EACCES || err == EPERM)
			return upcie_err(
			    -EACCES,
			    "%s: cannot open %s: %s; run as root, or give your user "
			    "the group file (chown) and enough locked memory (ulimit -l)",
			    dev->name, path, strerror(err));
		if (err == EBUSY)
			return upcie_err(-EBUSY,
					 "%s: %s is busy: another process (or handle) has IOMMU "
					 "group %d open",
					 dev->name, path, p->group);
		if (err == ENOENT)
			return upcie_err(-ENODEV,
					 "%s: %s does not exist although the device is bound to "
					 "vfio-pci; is vfio loaded and /dev populated (devtmpfs)?",
					 dev->name, path);
		return upcie_err(-err, "%s: cannot open %s: %s", dev->name, path, strerror(err));
	}
	return upcie_vfio_group_viable(dev, p);
}

static int type1_container_open(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	p->container_fd = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (p->container_fd < 0) {
		int err = errno;
		if (err == ENOENT)
			return upcie_err(-ENODEV,
					 "%s: /dev/vfio/vfio does not exist; load the vfio-pci "
					 "module (modprobe vfio-pci)",
					 dev->name);
		if (err == EACCES || err == EPERM)
			return upcie_err(-EACCES, "%s: cannot open /dev/vfio/vfio: %s; run as root",
					 dev->name, strerror(err));
		return upcie_err(-err, "%s: cannot open /dev/vfio/vfio: %s", dev->name,
				 strerror(err));
	}
	return upcie_vfio_container_check(dev, p, VFIO_TYPE1v2_IOMMU,
					  "the kernel's VFIO has no type1v2 IOMMU support "
					  "(vfio_iommu_type1 module)");
}

static int type1_open(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	int rc;

	/* In a DMA context the container may be the context's already. */
	if (!p->shared_iommu || p->container_fd < 0) {
		rc = type1_container_open(dev, p);
		if (rc)
			return rc;
	}
	/* A group another device of the context opened is in the container
	 * already: its file is given (vfio_ctx.c). */
	if (p->group_fd < 0) {
		rc = open_group(dev, p);
		if (rc)
			return rc;
		if (ioctl(p->group_fd, VFIO_GROUP_SET_CONTAINER, &p->container_fd))
			return upcie_err(-errno, "%s: VFIO_GROUP_SET_CONTAINER: %s", dev->name,
					 strerror(errno));
	}
	/* A container with a group attached has its IOMMU: the group joins it. */
	if (!p->iommu_set && ioctl(p->container_fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) {
		int err = errno;

		/* type1 refuses a group whose MSIs the IOMMU cannot remap
		 * (an Arm GICv2 without ITS, x86 without interrupt remapping). */
		if (err == EPERM)
			return upcie_err(-err,
					 "%s: VFIO_SET_IOMMU (type1v2): %s; the platform has "
					 "no MSI/interrupt remapping (arm64: a GICv3 ITS; x86: "
					 "intremap=on); load vfio_iommu_type1 with "
					 "allow_unsafe_interrupts=1 only if you trust the device",
					 dev->name, strerror(err));
		return upcie_err(-err, "%s: VFIO_SET_IOMMU (type1v2): %s", dev->name,
				 strerror(err));
	}
	rc = type1_iova_ranges(dev, p);
	if (rc)
		return rc;
	return upcie_vfio_group_device(dev, p);
}

static int type1_map(struct upcie_pci_dev *dev, struct upcie_vfio *p, void *va, size_t len,
		     uint64_t iova)
{
	struct vfio_iommu_type1_dma_map m = {
	    .argsz = sizeof(m),
	    .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
	    .vaddr = (uintptr_t)va,
	    .iova = iova,
	    .size = len,
	};

	if (ioctl(p->container_fd, VFIO_IOMMU_MAP_DMA, &m))
		return upcie_vfio_map_error(dev, p, errno, len, "VFIO_IOMMU_MAP_DMA");
	return 0;
}

static int type1_unmap(struct upcie_pci_dev *dev, struct upcie_vfio *p, uint64_t iova, size_t len)
{
	struct vfio_iommu_type1_dma_unmap u = {
	    .argsz = sizeof(u),
	    .iova = iova,
	    .size = len,
	};

	if (ioctl(p->container_fd, VFIO_IOMMU_UNMAP_DMA, &u))
		return upcie_err(-errno, "%s: VFIO_IOMMU_UNMAP_DMA at %#llx: %s", dev->name,
				 (unsigned long long)iova, strerror(errno));
	if (u.size != len)
		return upcie_err(
		    -EIO, "%s: VFIO_IOMMU_UNMAP_DMA at %#llx unmapped %llu of %zu bytes", dev->name,
		    (unsigned long long)iova, (unsigned long long)u.size, len);
	return 0;
}

static void type1_close(struct upcie_vfio *p)
{
	/* Closing the group detaches it; closing the container drops every
	 * mapping that is left. */
	if (p->group_fd >= 0)
		close(p->group_fd);
	if (p->container_fd >= 0)
		close(p->container_fd);
	p->group_fd = p->container_fd = -1;
}

const struct upcie_vfio_iommu_ops upcie_vfio_type1_ops = {
    .name = "type1",
    .open = type1_open,
    .map = type1_map,
    .unmap = type1_unmap,
    .close = type1_close,
};
