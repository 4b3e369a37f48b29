/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PCI backend ops table (internal)
 *
 * A backend fills one of these. The generic layer in pci.c keeps the BAR
 * table, bus-master save/restore and argument checks; the backend only
 * does the OS-specific part.
 */
#ifndef UPCIE_LIB_PCI_BACKEND_H
#define UPCIE_LIB_PCI_BACKEND_H

#include <pthread.h>

#include <upcie/pci.h>

#define UPCIE_PCI_NBARS 6

struct upcie_pci_ops {
	const char *name;
	/* Map memory BAR 'bar'; fill va and len. */
	int (*bar_map)(struct upcie_pci_dev *dev, unsigned bar, void **va, size_t *len);
	/* Optional: NULL means the mapping is released with munmap(). */
	void (*bar_unmap)(struct upcie_pci_dev *dev, unsigned bar, void *va, size_t len);
	int (*cfg_read)(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len);
	int (*cfg_write)(struct upcie_pci_dev *dev, uint32_t off, const void *buf, size_t len);
	/* One bus address per page; see upcie_pci_dma_map(). */
	int (*dma_map)(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
		       uint64_t *bus);
	int (*dma_unmap)(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			 const uint64_t *bus);
	/* Optional: 0 while the device is ours; -ENODEV once the kernel asked
	 * for it back (hot-unplug, unbind) or it is gone. Cheap, non-blocking;
	 * called on slow paths only (health checks), never per I/O. */
	int (*check)(struct upcie_pci_dev *dev);
	/* Optional: let the device make progress inside a wait loop. */
	void (*idle)(struct upcie_pci_dev *dev);
	/* Optional (NULL: no interrupts). See upcie_pci_irq_*() in pci.h; the
	 * generic layer checks arguments and keeps the enabled count. */
	int (*irq_info)(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info);
	int (*irq_enable)(struct upcie_pci_dev *dev, unsigned nvec);
	void (*irq_disable)(struct upcie_pci_dev *dev);
	int (*irq_open)(struct upcie_pci_dev *dev, unsigned vec);
	void (*irq_close)(struct upcie_pci_dev *dev, unsigned vec, int fd);
	int (*irq_ack)(struct upcie_pci_dev *dev, unsigned vec, int fd);
	/* Optional: see upcie_pci_gone_fd(). */
	int (*gone_fd)(struct upcie_pci_dev *dev);
	/* Release backend state (BARs are already unmapped). */
	void (*close)(struct upcie_pci_dev *dev);
};

struct upcie_pci_bar {
	void *va;
	size_t len;
};

struct upcie_pci_dev {
	char name[64];
	struct upcie_pci_addr addr;
	enum upcie_pci_backend backend;
	unsigned dma_caps;
	const struct upcie_pci_ops *ops;
	void *priv;
	struct upcie_pci_bar bars[UPCIE_PCI_NBARS];
	pthread_mutex_t cmd_lock; /* every read-modify-write of COMMAND (command_update) */
	uint16_t saved_command;
	bool command_saved;
	bool nvme_claimed;	       /* an NVMe controller object drives this handle */
	int lock_fd;		       /* the owner lock (lock.c); -1 when none */
	int gone;		       /* upcie_pci_check() saw -ENODEV (sticky): 0 no, 2 yes */
	char gone_msg[256];	       /* its message, given again on later checks */
	unsigned irq_enabled;	       /* vectors enabled (upcie_pci_irq_enable), 0 when off */
	struct upcie_dma_ctx *dma_ctx; /* the DMA context it was opened into (ctx.c), or NULL */
};

/* One NVMe controller object per handle: -EBUSY for a second. */
int upcie_pci_claim_nvme(struct upcie_pci_dev *dev) __attribute__((visibility("hidden")));
void upcie_pci_release_nvme(struct upcie_pci_dev *dev) __attribute__((visibility("hidden")));

/*
 * One owner per PCI address across processes (lock.c): an advisory flock
 * on a lock file named after the address. -EBUSY naming the owner's pid
 * and command when another handle holds it. Released by upcie_pci_unlock()
 * or by the kernel when the process dies.
 */
int upcie_pci_lock(struct upcie_pci_dev *dev) __attribute__((visibility("hidden")));
void upcie_pci_unlock(struct upcie_pci_dev *dev) __attribute__((visibility("hidden")));

/* The driver dev is bound to ("" if none); -ENODEV when there is no such device. */
int upcie_pci_read_driver(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts, char *drv,
			  size_t len) __attribute__((visibility("hidden")));
/* 0 when dev is bound to 'want', else -EBUSY naming the devbind command. */
int upcie_pci_require_driver(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts,
			     const char *want) __attribute__((visibility("hidden")));

/*
 * Read-modify-write PCI COMMAND: clear the bits of 'clear', set those of
 * 'set', as one 16-bit write (nothing written when nothing changes). All
 * the library's COMMAND updates (bus mastering, uio's Interrupt Disable)
 * go through it, serialized, so none puts back a stale copy of another's
 * bit. One 16-bit write, never a byte: a device model may act on COMMAND
 * only when a write covers its low byte (QEMU does: an Interrupt Disable
 * change written as byte 5 alone leaves its INTx line state stale).
 * 0, -ENODEV when config space reads all-ones, or the error of the access.
 */
int upcie_pci_command_update(struct upcie_pci_dev *dev, uint16_t clear, uint16_t set)
    __attribute__((visibility("hidden")));

/* Config space through a file descriptor at 'base' (sysfs 'config' file:
 * 0; a VFIO config region: its offset): pread/pwrite with errors named. */
int upcie_pci_cfg_fd_io(struct upcie_pci_dev *dev, int fd, uint64_t base, uint32_t off, void *buf,
			size_t len, bool write) __attribute__((visibility("hidden")));

/* Physical addresses (phys.c; uio, and vfio's no-IOMMU mode). */
/* The physical address of 'addr' from an open /proc/self/pagemap whose
 * entries describe 'host_page'-byte pages. 0; -EFAULT when the page is not
 * present; -EPERM when the PFN is hidden (no CAP_SYS_ADMIN); -EIO/-errno. */
int upcie_pagemap_phys(int fd, uintptr_t addr, size_t host_page, uint64_t *phys)
    __attribute__((visibility("hidden")));
/* dma_map of a backend whose bus addresses are physical: [va, len) must be
 * hugepages of page_size bytes, faulted in; bus[i] gets the physical
 * address of page i, each page checked contiguous. 'who' names the
 * backend in the messages ("uio"), 'alt' ends the advice when the
 * kernel hides physical addresses (", or use vfio-pci"). */
int upcie_pci_phys_map(struct upcie_pci_dev *dev, const char *root, void *va, size_t len,
		       size_t page_size, uint64_t *bus, const char *who, const char *alt)
    __attribute__((visibility("hidden")));
/* Does the calling process hold CAP_SYS_ADMIN (pagemap PFNs)? */
bool upcie_have_cap_sys_admin(void) __attribute__((visibility("hidden")));

/*
 * The backend table. Each backend describes itself with one of these; the
 * generic layer (pci.c) knows backends only through it: which device name
 * or which kernel driver selects a backend, and its constructor.
 */
struct upcie_pci_backend_desc {
	enum upcie_pci_backend id;
	/* A backend that opens a named, in-process device (not a PCI address)
	 * gives that name; such a device takes no owner lock and no bus
	 * mastering fence. NULL for PCI backends. */
	const char *device;
	/* The kernel driver a PCI device is bound to when auto picks this
	 * backend; NULL for a named device. */
	const char *driver;
	/* Fill dev->ops, dev->priv, dev->dma_caps. */
	int (*open)(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts);
};

/* Each backend's entry, defined beside its code. The sim's is in
 * lib/sim/backend.c when the library has the sim, else NULL in
 * lib/pci/no_sim.c: meson builds one of the two (-Dsim). */
extern const struct upcie_pci_backend_desc *const upcie_pci_uio_backend
    __attribute__((visibility("hidden")));
extern const struct upcie_pci_backend_desc *const upcie_pci_vfio_backend
    __attribute__((visibility("hidden")));
extern const struct upcie_pci_backend_desc *const upcie_pci_sim_backend
    __attribute__((visibility("hidden")));

#endif
