/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio backend internals shared by the device half (vfio.c) and the IOMMU
 * halves (vfio_type1.c: container and group; vfio_iommufd.c: iommufd and
 * the device cdev; vfio_noiommu.c: the no-IOMMU container and group).
 */
#ifndef UPCIE_LIB_PCI_VFIO_PRIV_H
#define UPCIE_LIB_PCI_VFIO_PRIV_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci/backend.h"

/* When the kernel reports no IOVA ranges: a window that every x86 IOMMU
 * (39-bit address width at least) covers and that avoids low memory. */
#define IOVA_DEFAULT_START 0x10000000ull
#define IOVA_DEFAULT_END   ((1ull << 39) - 1)
/* Never hand out IOVAs below this, even if the IOMMU allows them: a bus
 * address of 0 is too easy to confuse with "unset". */
#define IOVA_MIN 0x10000000ull

#define MAX_IOVA_RANGES 16

/* PCI COMMAND register and its Bus Master Enable bit. */
#define VFIO_PCI_COMMAND	0x04
#define VFIO_PCI_COMMAND_MASTER 0x4

struct upcie_vfio_region {
	uint64_t offset;
	uint64_t size;
	uint32_t flags;
	bool present;
};

struct upcie_vfio_window {
	uint64_t start, end; /* inclusive */
};

struct upcie_vfio;

/* The IOMMU side: a type1 container, or iommufd. */
struct upcie_vfio_iommu_ops {
	const char *name;
	/* Attach the device's group; fill the IOVA windows; open the device fd. */
	int (*open)(struct upcie_pci_dev *dev, struct upcie_vfio *p);
	int (*map)(struct upcie_pci_dev *dev, struct upcie_vfio *p, void *va, size_t len,
		   uint64_t iova);
	int (*unmap)(struct upcie_pci_dev *dev, struct upcie_vfio *p, uint64_t iova, size_t len);
	void (*close)(struct upcie_vfio *p);
	/* No translation (no-IOMMU mode): bus addresses are physical, one per
	 * hugepage (phys.c), map and unmap are NULL (never called) and the
	 * handle reports UPCIE_PCI_DMA_NEEDS_HUGEPAGES. */
	bool physical;
};

struct upcie_vfio {
	const struct upcie_vfio_iommu_ops *iommu;
	char root_buf[PATH_MAX];
	const char *root;
	int group;
	int container_fd;
	int iommufd;	  /* iommufd: /dev/iommu, -1 with type1 */
	uint32_t ioas_id; /* iommufd: the IO address space the device is attached to */
	int group_fd;
	int device_fd;
	int req_fd;    /* eventfd of the device request interrupt, -1 if none */
	int stop_fd;   /* eventfd that stops the request watcher */
	int gone_fd;   /* readable for good once the request came (upcie_pci_gone_fd), -1 if none */
	int *irq_fds;  /* MSI-X: one eventfd per enabled vector */
	unsigned nirq; /* vectors enabled, 0 when off */
	pthread_t req_thread;
	bool req_thread_started;
	bool requested; /* the kernel asked for the device (atomic) */
	struct upcie_vfio_region bars[UPCIE_PCI_NBARS];
	struct upcie_vfio_region config;
	struct upcie_vfio_window iova[MAX_IOVA_RANGES];
	unsigned niova;
	uint64_t iova_next; /* bump pointer */
	uint64_t pgsizes;   /* IOMMU page sizes (bitmap) */
	size_t mapped;	    /* bytes pinned through this handle */
	/* In a DMA context (vfio_ctx.c): container_fd, or iommufd and ioas_id,
	 * are the context's (shared_iommu: the IOMMU half's open uses them and
	 * close leaves them open); iommu_set: type1's container already has
	 * its IOMMU type (another group is attached). */
	struct upcie_vfio_space *space;
	bool shared_iommu;
	bool iommu_set;
};

struct upcie_dma_ctx;

/* DMA contexts (vfio_ctx.c): attach the device to the context's container
 * or IOAS (creating it with the first device), in place of iommu->open;
 * detach at release. Called with the context's lock held. */
int upcie_vfio_ctx_attach(struct upcie_pci_dev *dev, struct upcie_vfio *p,
			  struct upcie_dma_ctx *ctx, enum upcie_pci_vfio_iommu want)
    __attribute__((visibility("hidden")));
void upcie_vfio_ctx_detach(struct upcie_vfio *p) __attribute__((visibility("hidden")));
/* Can a device whose IOMMU half is iommu join a context whose space uses
 * have (NULL: none yet)? Physical (no-IOMMU) and IOVA spaces do not mix:
 * 0, or -ENOTSUP with the message naming dev and ctx. */
int upcie_vfio_ctx_flavour(const char *dev, const char *ctx,
			   const struct upcie_vfio_iommu_ops *have,
			   const struct upcie_vfio_iommu_ops *iommu)
    __attribute__((visibility("hidden")));
/* vfio.c's DMA map and unmap on an IOVA space p (a device's own, or a
 * context's); dev names it in messages. */
int upcie_vfio_space_map_in(struct upcie_pci_dev *dev, struct upcie_vfio *p, void *va, size_t len,
			    size_t page_size, uint64_t *bus) __attribute__((visibility("hidden")));
int upcie_vfio_space_unmap_in(struct upcie_pci_dev *dev, struct upcie_vfio *p, uint64_t iova,
			      size_t len) __attribute__((visibility("hidden")));

/* An IOVA range that is no longer in use (a map that failed, was_mapped
 * false; an unmap that succeeded, or a type1 container that lost its
 * mappings, true): uncount it, and hand it out again when it was the last. */
void upcie_vfio_iova_release(struct upcie_vfio *p, uint64_t iova, size_t len, bool was_mapped)
    __attribute__((visibility("hidden")));

/* The device request interrupt and its watcher (vfio_req.c). */
int upcie_vfio_req_start(struct upcie_pci_dev *dev, struct upcie_vfio *p)
    __attribute__((visibility("hidden")));
void upcie_vfio_req_stop(struct upcie_vfio *p) __attribute__((visibility("hidden")));
void upcie_vfio_req_close(struct upcie_vfio *p) __attribute__((visibility("hidden")));
bool upcie_vfio_req_seen(const struct upcie_vfio *p) __attribute__((visibility("hidden")));
void upcie_vfio_req_fence(struct upcie_vfio *p) __attribute__((visibility("hidden")));

/* The type1 container/group implementation (vfio_type1.c) and the
 * iommufd + device cdev one (vfio_iommufd.c). */
extern const struct upcie_vfio_iommu_ops upcie_vfio_type1_ops __attribute__((visibility("hidden")));
extern const struct upcie_vfio_iommu_ops upcie_vfio_iommufd_ops
    __attribute__((visibility("hidden")));
extern const struct upcie_vfio_iommu_ops upcie_vfio_noiommu_ops
    __attribute__((visibility("hidden")));
/* Is IOMMU group 'group' one that vfio's no-IOMMU mode made? */
bool upcie_vfio_noiommu_group(const struct upcie_vfio *p, int group)
    __attribute__((visibility("hidden")));
/* The refusal of a no-IOMMU group the caller did not opt in to. */
int upcie_vfio_noiommu_refuse(struct upcie_pci_dev *dev, const struct upcie_vfio *p)
    __attribute__((visibility("hidden")));
/* Shared by the group-based halves (vfio_type1.c): the other devices of
 * IOMMU group 'group' as "0000:00:1f.3 (ahci), ..." into buf, and their
 * number (held_only: only those a kernel driver other than vfio-pci
 * holds); the group's viability; the container's API version and IOMMU
 * type (missing: the message when the type is not offered); the device fd
 * through the group file. */
int upcie_vfio_group_others(const char *root, int group, const char *self, bool held_only,
			    char *buf, size_t len) __attribute__((visibility("hidden")));
int upcie_vfio_group_viable(struct upcie_pci_dev *dev, struct upcie_vfio *p)
    __attribute__((visibility("hidden")));
int upcie_vfio_container_check(struct upcie_pci_dev *dev, struct upcie_vfio *p, unsigned long type,
			       const char *missing) __attribute__((visibility("hidden")));
int upcie_vfio_group_device(struct upcie_pci_dev *dev, struct upcie_vfio *p)
    __attribute__((visibility("hidden")));
/* A failed DMA map (ioctl 'what', errno err): ENOMEM/EPERM usually mean
 * the locked-memory limit, and the message then says so. */
int upcie_vfio_map_error(struct upcie_pci_dev *dev, const struct upcie_vfio *p, int err, size_t len,
			 const char *what) __attribute__((visibility("hidden")));

#endif
