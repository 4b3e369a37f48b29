/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA contexts (internal): one DMA space shared by several device handles
 * (include/upcie/dma.h, "DMA contexts"). The generic part (ctx.c) keeps
 * the devices, the heaps' mappings and the reference count; the vfio
 * backend keeps its shared container or IOAS in ctx->vfio (vfio_ctx.c).
 *
 * Locking: ctx->lock guards everything here. It is held across a device's
 * whole open into the context (the backend's open runs under it, so vfio
 * attaches to the shared container with nobody mapping meanwhile), across
 * its close, and across each map and unmap. Never on the I/O path.
 *
 * References: every reference is taken and dropped under the lock, and the
 * context is freed only by the put that took the count to 0. An open holds
 * a reference from the moment its join begins (so a destroy, or the last
 * device's close, in another thread meanwhile cannot free the context
 * under it); a successful open keeps it as the device's, a failed one
 * drops it after the device is closed again. Nothing touches ctx after
 * its own reference is dropped.
 */
#ifndef UPCIE_LIB_PCI_CTX_H
#define UPCIE_LIB_PCI_CTX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upcie/dma.h>
#include <upcie/pci.h>

struct upcie_vfio_space;

/* One mapping of a heap segment or registered region, kept so that a
 * device that joins later (sim; type1 after its last group left) gets it. */
struct upcie_dma_ctx_map {
	void *va;
	size_t len;
	size_t page_size;
	uint64_t bus0; /* bus address of va (contiguous on vfio and sim) */
	/* Its unmap failed: the range may still be mapped (vfio: the IOMMU
	 * keeps it; its IOVAs are not handed out again). Kept for the count,
	 * never given to a device that joins later. */
	bool stuck;
	struct upcie_dma_ctx_map *next;
};

struct upcie_dma_ctx {
	pthread_mutex_t lock;
	unsigned refs;			/* creator + devices + heaps */
	char name[32];			/* "DMA context N", for messages */
	enum upcie_pci_backend backend; /* AUTO until the first device */
	unsigned dma_caps;
	struct upcie_pci_dev **devs;
	unsigned ndevs, capdevs;
	struct upcie_dma_ctx_map *maps;
	unsigned heaps;
	size_t mapped;
	size_t stuck;		       /* bytes whose unmap failed (in mapped too) */
	unsigned nstuck;	       /* ranges of them */
	unsigned stuck_told;	       /* ranges destroy has reported so far */
	struct upcie_vfio_space *vfio; /* vfio: the shared container or IOAS */
};

#define CTX_HIDDEN __attribute__((visibility("hidden")))

/* upcie_pci_open() of a device into ctx: _begin takes the lock, checks the
 * backend and takes the open's reference (on error: unlocks, no
 * reference); _end adds the opened device (rc 0), or closes it again when
 * the join fails after the backend opened it, or (rc < 0) only unlocks and
 * drops the open's reference. Returns rc, or the error of the join. */
CTX_HIDDEN int upcie_dma_ctx_join_begin(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev,
					enum upcie_pci_backend backend);
CTX_HIDDEN int upcie_dma_ctx_join_end(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev, int rc);
/* upcie_pci_close(): _begin takes the lock and takes dev out; the backend
 * closes the device; _end unlocks and drops the device's reference. */
CTX_HIDDEN void upcie_dma_ctx_leave_begin(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev);
CTX_HIDDEN void upcie_dma_ctx_leave_end(struct upcie_dma_ctx *ctx);

/* For heaps: map memory for every device of the context, and undo it
 * (arguments as upcie_pci_dma_map(), checked as there). An unmap that
 * fails leaves the range counted as mapped (ctx_map.stuck). */
CTX_HIDDEN int upcie_dma_ctx_map(struct upcie_dma_ctx *ctx, void *va, size_t len, size_t page_size,
				 uint64_t *bus);
CTX_HIDDEN int upcie_dma_ctx_unmap(struct upcie_dma_ctx *ctx, void *va, size_t len,
				   size_t page_size, const uint64_t *bus);
/* A heap (segment) takes a reference, and drops it at destroy. 0, or
 * -ENODEV when no device is open in the context. */
/* type1 after its last group left: the stuck ranges went with the
 * container's mappings (called with the lock held). */
CTX_HIDDEN void upcie_dma_ctx_forget_stuck(struct upcie_dma_ctx *ctx);
CTX_HIDDEN int upcie_dma_ctx_heap_get(struct upcie_dma_ctx *ctx);
CTX_HIDDEN void upcie_dma_ctx_heap_put(struct upcie_dma_ctx *ctx);
CTX_HIDDEN unsigned upcie_dma_ctx_caps(const struct upcie_dma_ctx *ctx);
CTX_HIDDEN enum upcie_pci_backend upcie_dma_ctx_backend(const struct upcie_dma_ctx *ctx);
CTX_HIDDEN const char *upcie_dma_ctx_name(const struct upcie_dma_ctx *ctx);

/* The checks every DMA map makes of its arguments (pci.c): 0, or -EINVAL
 * with the message. */
CTX_HIDDEN int upcie_pci_dma_map_check(const char *who, const void *va, size_t len,
				       size_t page_size);

/* vfio_ctx.c: the shared container or IOAS (called with ctx->lock held). */
CTX_HIDDEN int upcie_vfio_space_map(struct upcie_dma_ctx *ctx, void *va, size_t len,
				    size_t page_size, uint64_t *bus);
CTX_HIDDEN int upcie_vfio_space_unmap(struct upcie_dma_ctx *ctx, uint64_t iova, size_t len);
CTX_HIDDEN void upcie_vfio_space_free(struct upcie_vfio_space *s);
CTX_HIDDEN const char *upcie_vfio_space_iommu(const struct upcie_vfio_space *s);

#endif
