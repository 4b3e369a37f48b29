/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief DMA heaps
 *
 * A heap is a region of pinned memory the device can reach, carved into
 * allocations for queues, PRP lists and I/O buffers. It is backed by
 * hugepages (memfd with MFD_HUGETLB, else a file on a hugetlbfs mount);
 * where the backend allows it (sim, vfio) it falls back to ordinary pages
 * when no hugepages are free, and says so through the log.
 *
 * Every page's bus address is looked up once, at creation, into a table;
 * translation is then one shift, one load and one add.
 *
 * upcie_dma_alloc() returns memory that is contiguous for the device:
 * on a heap whose bus addresses are only contiguous within a hugepage
 * (uio: physical addresses) it never straddles a hugepage. Buffers that
 * are described page by page (PRP lists) may use upcie_dma_alloc_pages(),
 * which may straddle.
 *
 * The allocator's bookkeeping lives in ordinary memory, never in the
 * device-visible region.
 *
 * Functions:
 * ~~~
 *   upcie_dma_heap_create/_destroy
 *   upcie_dma_alloc()        device-contiguous, aligned (power of two)
 *   upcie_dma_alloc_pages()  page-aligned, page-granular
 *   upcie_dma_free()
 *   upcie_dma_bus()          bus address of a heap pointer
 *   upcie_dma_heap_info()    size, use, page size, hugepages or not
 *   upcie_dma_register()     make the caller's own memory usable for I/O
 *   upcie_dma_unregister()   give it back (refused while commands use it)
 *   upcie_dma_ctx_create/_destroy  one DMA space for several devices
 *   upcie_dma_heap_create_ctx()    a heap that serves every device of a context
 *   upcie_dma_heap_ctx()     the context of a heap
 *   upcie_dma_ctx_info()     backend, devices, heaps of a context
 * ~~~
 *
 * DMA contexts: by default each device has a DMA space of its own (its
 * vfio container or IOAS), and a heap serves the one device it was
 * created for. Devices opened into one context (upcie_pci_opts.dma_ctx)
 * share one space instead, so one heap, and the memory registered on it,
 * serves all of them: a buffer written through one controller can be read
 * through another, and a job can spread over several controllers with one
 * pool of buffers. What is shared:
 * ~~~
 *   vfio type1  one container: every device's IOMMU group is attached to it
 *   iommufd     one IOAS, which every device's cdev is attached to
 *   uio         nothing to share: bus addresses are physical anyway
 *   vfio no-IOMMU  the same as uio: physical addresses (hugepages, root);
 *               such a context takes no device behind an IOMMU, and a
 *               no-IOMMU device no context of type1 or iommufd (ENOTSUP)
 *   sim         every model in the context may reach the context's memory
 * ~~~
 * Open every controller with the same heap (upcie_nvme_ctrl_open() refuses
 * a heap of another context). Rules:
 * ~~~
 *   - One backend per context: the first device sets it; a device of
 *     another backend (uio beside vfio, type1 beside iommufd) is refused
 *     with EINVAL, saying why.
 *   - Lifetime: a context lives while its creator, a device or a heap
 *     holds it; upcie_dma_ctx_destroy() drops the creator's hold.
 *   - Closing a device (or a device going away, fenced by the kernel's
 *     request) detaches only that device: the heaps stay mapped for the
 *     others. (type1: when the last device of a context closes, the kernel
 *     drops the container's mappings; the next device opened into it maps
 *     the context's heaps again, at the same bus addresses.)
 *   - upcie_dma_heap_destroy() of a context heap is refused (EBUSY, said
 *     in the log and upcie_errmsg()) while a controller opened on it is
 *     open: close the controllers first.
 *   - An unmap that fails (the IOMMU refused it) leaves the range counted
 *     as mapped (upcie_dma_ctx_info().unmap_failed) and its bus addresses
 *     unused; destroy, and the context's end, say so in the log.
 *   - A heap needs a device in its context when it is created (it maps
 *     through it); devices of one IOMMU group cannot be in different
 *     contexts (the kernel attaches groups, not devices).
 * ~~~
 *
 * Growth: a heap created with UPCIE_DMA_GROW adds a segment when an
 * allocation does not fit: new memory of the same kind (hugepages when the
 * first segment has them), at least as large as the first segment and the
 * request, mapped for the device when it is added (never on the I/O
 * path: the allocating thread pays). Translation stays O(1) within a
 * segment: the first segment is looked up as before, later ones after a
 * scan of at most UPCIE_DMA_MAX_SEGS (64) segment bounds. No allocation
 * ever spans two segments. Segments live until the heap is destroyed.
 * This is what lets an engine take small command payloads (DSM ranges)
 * and I/O buffers from the heap without sizing it up front.
 *
 * Registered memory: an application whose buffers are its own (a buffer
 * pool, network buffers) registers them with the heap of the device that
 * will use them; I/O calls then take them like heap memory (read/write,
 * split, submit_raw, submit_iov, PRP lists and SGLs). What each backend
 * accepts:
 *   vfio  any page-aligned memory mapped in the process: it is pinned and
 *         mapped through the IOMMU (VFIO_IOMMU_MAP_DMA) at IOVAs that never
 *         collide with the heap's; the locked-memory limit counts it.
 *   uio   hugepage-backed memory only, whole hugepages (MAP_HUGETLB, memfd
 *         MFD_HUGETLB, hugetlbfs), already faulted in: bus addresses are
 *         physical (read from /proc/self/pagemap, each hugepage checked to
 *         be physically contiguous). Other memory is refused, saying why.
 *   sim   any page-aligned mapped memory (the model reads it directly).
 * Commands hold the regions their buffers lie in from submit to
 * completion (counted off the heap's fast path: heap buffers cost what
 * they did); unregister of a held region fails with EBUSY. Registered
 * buffers take the general submit path, a region lookup and a hold:
 * about 500 instructions more per command than a heap buffer. Regions
 * left at destroy are unmapped then. Translation takes no lock, but a
 * buffer must not be used while its region is being unregistered.
 *
 * Caveats: with uio, bus addresses are physical and need CAP_SYS_ADMIN to
 * read from /proc/self/pagemap; a heap is tied to the device it was created
 * for, or to that device's DMA context. Allocation and free take a lock (they are not meant for the
 * I/O path); translation takes none.
 */
#ifndef UPCIE_DMA_H
#define UPCIE_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upcie_pci_dev;
struct upcie_dma_heap;
struct upcie_dma_ctx;

/**
 * @name Creation flags
 * The flags argument of upcie_dma_heap_create().
 * @{
 */
#define UPCIE_DMA_HUGEPAGES_ONLY (1u << 0) /**< fail rather than fall back to small pages */
#define UPCIE_DMA_NO_HUGEPAGES	 (1u << 1) /**< ordinary pages only (sim, vfio) */
#define UPCIE_DMA_GROW		 (1u << 2) /**< add segments when an allocation does not fit */
/** @} */

/** upcie_dma_bus() of an address outside the heap. */
#define UPCIE_DMA_BAD_ADDR UINT64_MAX

/** What upcie_dma_heap_info() reports about a heap. */
struct upcie_dma_heap_info {
	size_t size;	      /**< bytes in the heap */
	size_t used;	      /**< bytes allocated, alignment padding included */
	size_t page_size;     /**< backing page size */
	bool hugepages;	      /**< backed by hugepages */
	size_t allocations;   /**< live allocations */
	size_t segments;      /**< 1, plus those added by growth */
	size_t regions;	      /**< registered regions (upcie_dma_register) */
	size_t registered;    /**< bytes in them */
	uint64_t reserved[4]; /**< zeroed: room for fields of later releases */
};

/**
 * Create a DMA heap for dev.
 *
 * size (of the first segment) is rounded up to the page size. When dev was
 * opened into a DMA context, the heap is the context's: as
 * upcie_dma_heap_create_ctx() on it.
 * @param dev the device whose DMA the heap serves (the heap is tied to it)
 * @param size bytes of the first segment
 * @param flags UPCIE_DMA_HUGEPAGES_ONLY, UPCIE_DMA_NO_HUGEPAGES, UPCIE_DMA_GROW
 * @return the heap, or NULL and errno on failure.
 */
struct upcie_dma_heap *upcie_dma_heap_create(struct upcie_pci_dev *dev, size_t size,
					     unsigned flags);
/**
 * Unmap the heap for the device and free its memory; NULL is ignored.
 *
 * A heap of a DMA context that a controller was opened on and not closed
 * yet is not destroyed: the call says so (upcie_errmsg(), EBUSY in errno,
 * and the log) and leaves it as it is. Close the controllers first.
 */
void upcie_dma_heap_destroy(struct upcie_dma_heap *heap);

/**
 * Allocate size bytes that are contiguous for the device.
 *
 * align: power of two (0 means 64).
 * @return the allocation, or NULL with errno ENOMEM when exhausted
 * (with UPCIE_DMA_GROW: when no segment could be added either),
 * EINVAL when size is 0 or the request can never be contiguous.
 */
void *upcie_dma_alloc(struct upcie_dma_heap *heap, size_t size, size_t align);
/**
 * Allocate size bytes for page-by-page use (PRP lists).
 *
 * Page-aligned (4 KiB), may straddle backing pages. NULL and errno as
 * upcie_dma_alloc().
 */
void *upcie_dma_alloc_pages(struct upcie_dma_heap *heap, size_t size);
/**
 * Free an allocation.
 *
 * NULL is ignored; a pointer not from this heap is ignored with a logged
 * error (returns -EINVAL).
 * @return 0 or -EINVAL.
 */
int upcie_dma_free(struct upcie_dma_heap *heap, void *ptr);

/**
 * Bus address of a heap pointer or of registered memory.
 *
 * @return the bus address of va, or UPCIE_DMA_BAD_ADDR when va is neither
 * in the heap nor registered.
 */
uint64_t upcie_dma_bus(const struct upcie_dma_heap *heap, const void *va);
/** True when [va, va + len) lies inside the heap or registered memory. */
bool upcie_dma_contains(const struct upcie_dma_heap *heap, const void *va, size_t len);

/**
 * Make the caller's own memory usable for I/O.
 *
 * Register [va, va + len), memory the caller owns, for DMA by the heap's
 * device: afterwards upcie_dma_bus() translates it and the I/O calls
 * accept buffers in it. va and len: multiples of the host page size (uio:
 * of the hugepage size). The memory must stay mapped until unregistered.
 * Returns 0; -EINVAL (not aligned; uio: not hugepages), -EEXIST (overlaps
 * a registered region or the heap), -EFAULT (not mapped; uio: not faulted
 * in), -ENOMEM or the backend's mapping error (vfio: the locked-memory
 * limit). upcie_errmsg() says which and what to do. Takes the heap's
 * registration lock; not for the I/O path.
 */
int upcie_dma_register(struct upcie_dma_heap *heap, void *va, size_t len);
/**
 * Give registered memory back (refused while commands use it).
 *
 * Unregister a region: va and len exactly as registered. -EINVAL when no
 * region matches (the message names the one at va, if any); -EBUSY while
 * commands submitted on it have not completed (poll, then again). After
 * it returns 0 the device can no longer reach the memory.
 */
int upcie_dma_unregister(struct upcie_dma_heap *heap, void *va, size_t len);

/**
 * Size, use, page size of a heap, and whether hugepages back it.
 *
 * size and used count every segment; page_size and hugepages describe the
 * first.
 */
void upcie_dma_heap_info(const struct upcie_dma_heap *heap, struct upcie_dma_heap_info *info);

/* ---- DMA contexts: one DMA space for several devices ---- */

/** What upcie_dma_ctx_info() reports about a context. */
struct upcie_dma_ctx_info {
	int backend;	       /**< enum upcie_pci_backend (pci.h) of its devices; 0 (AUTO)
				  before the first device */
	const char *iommu;     /**< vfio: "type1", "iommufd" or "noiommu"; NULL otherwise */
	unsigned devices;      /**< devices open in it */
	unsigned heaps;	       /**< heaps and heap segments on it */
	size_t mapped;	       /**< bytes mapped for its devices */
	uint64_t unmap_failed; /**< of mapped: bytes whose unmap failed, still mapped */
	uint64_t reserved[3];  /**< zeroed: room for fields of later releases */
};

/**
 * Create a DMA context: one DMA space for several devices.
 *
 * Open devices into it with upcie_pci_opts.dma_ctx; heaps created on it
 * (upcie_dma_heap_create_ctx(), or upcie_dma_heap_create() with one of its
 * devices) serve every device in it. See "DMA contexts" at the top of dma.h.
 * @param flags 0 (room for options of later releases)
 * @return the context, or NULL and errno (EINVAL: unknown flags; ENOMEM).
 */
struct upcie_dma_ctx *upcie_dma_ctx_create(unsigned flags);
/**
 * Drop the creator's hold on a context; NULL is ignored.
 *
 * The context is freed when the last of its devices is closed and the last
 * of its heaps destroyed; until then they keep working. Call it once, and
 * do not open devices into the context afterwards. Thread-safe against an
 * open into the context that already runs in another thread: that open
 * holds the context until it has joined (or failed). Logs (UPCIE_LOG) the
 * ranges whose unmap failed so far.
 */
void upcie_dma_ctx_destroy(struct upcie_dma_ctx *ctx);
/**
 * Create a DMA heap that serves every device of a context.
 *
 * As upcie_dma_heap_create(), but the memory is mapped into the context's
 * DMA space: any device in the context, now or opened later, reaches it at
 * the same bus addresses.
 * @param ctx the context; at least one device must be open in it (the
 * heap maps through it), else ENODEV
 * @param size bytes of the first segment
 * @param flags UPCIE_DMA_HUGEPAGES_ONLY, UPCIE_DMA_NO_HUGEPAGES, UPCIE_DMA_GROW
 * @return the heap, or NULL and errno on failure.
 */
struct upcie_dma_heap *upcie_dma_heap_create_ctx(struct upcie_dma_ctx *ctx, size_t size,
						 unsigned flags);
/** The DMA context of a heap, or NULL when it serves one device only. */
struct upcie_dma_ctx *upcie_dma_heap_ctx(const struct upcie_dma_heap *heap);
/** Backend, devices, heaps and mapped bytes of a context, into info. */
void upcie_dma_ctx_info(const struct upcie_dma_ctx *ctx, struct upcie_dma_ctx_info *info);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_DMA_H */
