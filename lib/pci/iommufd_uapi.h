/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The few iommufd and VFIO cdev definitions the iommufd half of the vfio
 * backend needs (Linux 6.6 and later; uapi headers linux/iommufd.h and
 * linux/vfio.h). Debian 12's linux-libc-dev (6.1) has neither, so the
 * library carries them under names of its own (no clash with a newer
 * system header) and tests/abi/iommufd_uapi.c checks every number, size
 * and offset here against the kernel's own uapi headers when a 6.6+ copy
 * is installed (linux-headers-*-common or the kernel source).
 */
#ifndef UPCIE_LIB_PCI_IOMMUFD_UAPI_H
#define UPCIE_LIB_PCI_IOMMUFD_UAPI_H

#include <linux/ioctl.h>
#include <stdint.h>

/* iommufd: ioctl type ';', commands from 0x80. */
#define UPCIE_IOMMUFD_TYPE	     ';'
#define UPCIE_IOMMU_IOAS_ALLOC	     _IO(UPCIE_IOMMUFD_TYPE, 0x81)
#define UPCIE_IOMMU_IOAS_IOVA_RANGES _IO(UPCIE_IOMMUFD_TYPE, 0x84)
#define UPCIE_IOMMU_IOAS_MAP	     _IO(UPCIE_IOMMUFD_TYPE, 0x85)
#define UPCIE_IOMMU_IOAS_UNMAP	     _IO(UPCIE_IOMMUFD_TYPE, 0x86)

#define UPCIE_IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define UPCIE_IOMMU_IOAS_MAP_WRITEABLE	(1u << 1)
#define UPCIE_IOMMU_IOAS_MAP_READABLE	(1u << 2)

struct upcie_iommu_ioas_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t out_ioas_id;
};

struct upcie_iommu_iova_range {
	uint64_t start;
	uint64_t last; /* inclusive */
};

struct upcie_iommu_ioas_iova_ranges {
	uint32_t size;
	uint32_t ioas_id;
	uint32_t num_iovas; /* in: room in allowed_iovas; out: how many there are */
	uint32_t reserved;
	uint64_t allowed_iovas; /* user pointer to struct upcie_iommu_iova_range[] */
	uint64_t out_iova_alignment;
};

struct upcie_iommu_ioas_map {
	uint32_t size;
	uint32_t flags;
	uint32_t ioas_id;
	uint32_t reserved;
	uint64_t user_va;
	uint64_t length;
	uint64_t iova;
};

struct upcie_iommu_ioas_unmap {
	uint32_t size;
	uint32_t ioas_id;
	uint64_t iova;
	uint64_t length; /* in: bytes; out: bytes unmapped */
};

/* The VFIO device cdev (/dev/vfio/devices/vfioN): VFIO_TYPE ';' too,
 * VFIO_BASE 100. */
#define UPCIE_VFIO_DEVICE_BIND_IOMMUFD	    _IO(';', 100 + 18)
#define UPCIE_VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(';', 100 + 19)

struct upcie_vfio_device_bind_iommufd {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
};

struct upcie_vfio_device_attach_iommufd_pt {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pt_id;
};

#endif
