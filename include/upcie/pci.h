/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief PCI devices
 *
 * A device handle opened by name: a PCI address ("0000:01:00.0" or the
 * short "01:00.0") or "sim" for the in-process emulated controller ("sim1",
 * "sim2", ...: other instances of it, names a process can tell apart). Each
 * handle runs on one backend:
 *
 * ~~~
 *   uio   the device is bound to uio_pci_generic; BARs come from sysfs
 *         resourceN, config space from sysfs 'config', DMA addresses are
 *         physical (needs root and hugepages; unsafe without an IOMMU).
 *   vfio  the device is bound to vfio-pci; BARs and config space are
 *         regions of the VFIO device, DMA addresses are IOVAs mapped in
 *         the IOMMU (works with or without hugepages). In vfio's no-IOMMU
 *         mode (opt-in: UPCIE_PCI_VFIO_IOMMU_NOIOMMU) DMA addresses are
 *         physical, as under uio (needs root and hugepages; unsafe without
 *         an IOMMU), while interrupts and the device request stay vfio's.
 *   sim   the emulated controller from sim.h; DMA addresses are virtual.
 * ~~~
 *
 * Nothing above this layer knows which backend runs.
 *
 * Functions:
 * ~~~
 *   upcie_pci_addr_parse()    text to address (-EINVAL on anything else)
 *   upcie_pci_addr_format()   address to "dddd:bb:dd.f"
 *   upcie_pci_open()          open by name, backend chosen from the bound driver;
 *                             one owner per device (-EBUSY), bus mastering off
 *   upcie_pci_close()         unmap BARs, bus mastering off, release
 *   upcie_pci_dma_ctx()       the DMA context the device was opened into
 *   upcie_pci_bar_map()       map a memory BAR (once; later calls return it)
 *   upcie_pci_cfg_read/_write config space access
 *   upcie_pci_bus_master()    set or clear Bus Master Enable
 *   upcie_pci_dma_map/_unmap  give the device access to memory, one bus
 *                             address per page (used by dma.h)
 *   upcie_pci_check()         has the kernel asked for the device back?
 *   upcie_pci_idle()          let a polled backend make progress (sim);
 *                             called by wait loops, never on the I/O path
 * ~~~
 *
 * Ownership and bus mastering (uio and vfio):
 * ~~~
 *   - One owner per device across processes: open takes an advisory lock
 *     on /run/upcie/<dddd:bb:dd.f>.lock (else /tmp/upcie, said in the log;
 *     $UPCIE_LOCK_DIR overrides both). A second open, from another process
 *     or the same one, fails with EBUSY and upcie_errmsg() names the
 *     owner's pid and command. The kernel drops the lock when the owner
 *     dies.
 *   - Open clears Bus Master Enable (a controller left running by a
 *     process that died must not DMA while it is taken over); whoever
 *     drives the device turns it on once the device is quiet (the NVMe
 *     layer: after disabling the controller).
 *   - If the process dies, the kernel clears bus mastering: vfio-pci
 *     resets the device; under uio the handle holds /dev/uioN open and
 *     uio_pci_generic clears bus mastering when it is closed (see
 *     lib/pci/uio.c for the short window it leaves).
 *   - Close leaves bus mastering OFF, whatever it was at open. Restoring
 *     it on would let a controller the library fenced off after an error
 *     (or one whose disable could not be confirmed) DMA into memory that is
 *     freed right after; it is never needed, since every driver that takes
 *     the device next (nvme, vfio-pci users, this library) turns it on
 *     itself once the device is quiet. The rest of COMMAND is restored.
 * ~~~
 */
#ifndef UPCIE_PCI_H
#define UPCIE_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upcie_sim;
struct upcie_pci_dev;
struct upcie_dma_ctx;

/** A PCI address: domain, bus, device, function. */
struct upcie_pci_addr {
	uint16_t domain; /**< PCI segment (domain) */
	uint8_t bus;	 /**< bus number */
	uint8_t dev;	 /**< 0..31 */
	uint8_t func;	 /**< 0..7 */
};

/** Bytes of an address as text: "0000:01:00.0" plus NUL. */
#define UPCIE_PCI_ADDR_STRLEN 13

/**
 * Text to address.
 *
 * Parse "dddd:bb:dd.f" or "bb:dd.f" (hex). Anything else: -EINVAL.
 * @return 0 or -EINVAL.
 */
int upcie_pci_addr_parse(const char *str, struct upcie_pci_addr *addr);

/**
 * Address to text.
 *
 * Write "dddd:bb:dd.f" into buf (UPCIE_PCI_ADDR_STRLEN bytes are enough).
 * @return the length, or -ENOSPC if buf is too small.
 */
int upcie_pci_addr_format(const struct upcie_pci_addr *addr, char *buf, size_t len);

/** The backend a handle runs on (see the list at the top of pci.h). */
enum upcie_pci_backend {
	UPCIE_PCI_BACKEND_AUTO = 0, /**< from the driver the device is bound to */
	UPCIE_PCI_BACKEND_SIM,	    /**< the in-process emulated controller (sim.h) */
	UPCIE_PCI_BACKEND_UIO,	    /**< uio_pci_generic */
	UPCIE_PCI_BACKEND_VFIO,	    /**< vfio-pci */
};

/**
 * @name DMA capabilities
 * What a backend needs from DMA memory (upcie_pci_dma_caps()).
 * @{
 */
#define UPCIE_PCI_DMA_NEEDS_HUGEPAGES (1u << 0) /**< bus addresses are physical */
#define UPCIE_PCI_DMA_BUS_CONTIGUOUS  (1u << 1) /**< one mapping gives contiguous bus addresses */
/** @} */

/**
 * vfio's IOMMU interface (upcie_pci_opts.vfio_iommu).
 *
 * vfio's IOMMU interface: the type1 container (an IOMMU group file and
 * /dev/vfio/vfio), or iommufd with the device's cdev (/dev/iommu and
 * /dev/vfio/devices/vfioN; Linux 6.6 and later with IOMMUFD and
 * VFIO_DEVICE_CDEV). AUTO takes iommufd when the device has a cdev and
 * /dev/iommu exists, else type1; the environment variable
 * UPCIE_VFIO_IOMMU=iommufd|type1|noiommu forces one for a program that
 * leaves the option at AUTO. upcie_pci_vfio_iommu_name() says which a
 * handle uses.
 *
 * NOIOMMU is vfio's no-IOMMU mode (CONFIG_VFIO_NOIOMMU, the vfio module
 * parameter enable_unsafe_noiommu_mode on; 'devbind noiommu on' sets it):
 * a machine without an IOMMU, a group file /dev/vfio/noiommu-N and a
 * container of type VFIO_NOIOMMU_IOMMU. DMA addresses are physical, as
 * under uio: unsafe without an IOMMU, a bug in the program or in the
 * device can DMA anywhere in memory. It needs root (CAP_SYS_RAWIO for the
 * group, CAP_SYS_ADMIN for physical addresses) and hugepages. It is never
 * chosen by AUTO: a device in a no-IOMMU group is refused unless the
 * caller opts in with this value or UPCIE_VFIO_IOMMU=noiommu.
 */
enum upcie_pci_vfio_iommu {
	UPCIE_PCI_VFIO_IOMMU_AUTO =
	    0,			    /**< iommufd when there is a cdev and /dev/iommu, else type1 */
	UPCIE_PCI_VFIO_IOMMU_TYPE1, /**< the type1 container */
	UPCIE_PCI_VFIO_IOMMU_IOMMUFD, /**< iommufd with the device's cdev */
	UPCIE_PCI_VFIO_IOMMU_NOIOMMU, /**< no-IOMMU mode: physical addresses (unsafe; opt-in) */
};

/** Options of upcie_pci_open(); NULL takes the defaults. */
struct upcie_pci_opts {
	enum upcie_pci_backend backend;	      /**< AUTO, or force one */
	struct upcie_sim *sim;		      /**< for "sim": this model (caller keeps ownership);
						 NULL: a default threaded model owned by the handle */
	const char *sysfs_root;		      /**< NULL: "/sys" (tests pass a fake tree) */
	enum upcie_pci_vfio_iommu vfio_iommu; /**< vfio: AUTO, or force one (NOIOMMU: opt in) */
	uint32_t reserved32;		      /**< zero */
	/** Open the device into this DMA context (dma.h, upcie_dma_ctx_create()):
	 * it shares one IOVA space, and so every heap of the context, with the
	 * other devices in it. NULL: the device has a DMA space of its own. */
	struct upcie_dma_ctx *dma_ctx;
	uint64_t reserved[4]; /**< zero: room for options of later releases */
};

/**
 * Open a device by name.
 *
 * The backend is chosen from the driver the device is bound to (or
 * opts->backend); one owner per device (-EBUSY), bus mastering off (see
 * "Ownership and bus mastering" at the top of pci.h).
 * @param name a PCI address ("0000:01:00.0", "01:00.0") or "sim" ("sim1", "sim2", ...
 * for more models: each name is a device of its own)
 * @param opts options, or NULL for the defaults
 * @return the handle, or NULL and errno on failure; upcie_errmsg() says
 * why and what to do. EBUSY: another handle owns it (the message names the
 * process).
 */
struct upcie_pci_dev *upcie_pci_open(const char *name, const struct upcie_pci_opts *opts);
/** Unmap the BARs, leave bus mastering off, release the device; NULL is ignored. */
void upcie_pci_close(struct upcie_pci_dev *dev);
/**
 * The DMA context a device was opened into.
 *
 * @return opts->dma_ctx of upcie_pci_open(), or NULL when the device has a
 * DMA space of its own.
 */
struct upcie_dma_ctx *upcie_pci_dma_ctx(const struct upcie_pci_dev *dev);

/** The device's name: its address as "dddd:bb:dd.f", or "sim" ("sim1", ...). */
const char *upcie_pci_name(const struct upcie_pci_dev *dev);
/** The backend the handle runs on. */
enum upcie_pci_backend upcie_pci_backend(const struct upcie_pci_dev *dev);
/** Readable name of a backend ("uio", "vfio", "sim", "auto"). */
const char *upcie_pci_backend_name(enum upcie_pci_backend backend);
/** What the backend needs from DMA memory: UPCIE_PCI_DMA_* bits. */
unsigned upcie_pci_dma_caps(const struct upcie_pci_dev *dev);
/**
 * The IOMMU interface a vfio handle uses.
 *
 * vfio: "type1", "iommufd" or "noiommu", the IOMMU interface this handle
 * uses; NULL for a handle of another backend.
 */
const char *upcie_pci_vfio_iommu_name(const struct upcie_pci_dev *dev);

/**
 * Map a memory BAR.
 *
 * Mapped once; later calls return the same mapping.
 * @param dev the device
 * @param bar BAR index (0..5)
 * @param va receives the mapping's address
 * @param len receives its length in bytes
 * @return 0 or a negative errno.
 */
int upcie_pci_bar_map(struct upcie_pci_dev *dev, unsigned bar, void **va, size_t *len);
/** Unmap a BAR mapped by upcie_pci_bar_map() (close unmaps every BAR). */
void upcie_pci_bar_unmap(struct upcie_pci_dev *dev, unsigned bar);

/**
 * Read len bytes of config space at offset off into buf.
 * @return 0 or a negative errno.
 */
int upcie_pci_cfg_read(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len);
/**
 * Write len bytes from buf to config space at offset off.
 * @return 0 or a negative errno.
 */
int upcie_pci_cfg_write(struct upcie_pci_dev *dev, uint32_t off, const void *buf, size_t len);

/**
 * Set or clear Bus Master Enable (PCI COMMAND bit 2).
 * @return 0 or a negative errno.
 */
int upcie_pci_bus_master(struct upcie_pci_dev *dev, bool enable);

/**
 * Give the device access to memory, one bus address per page (used by dma.h).
 *
 * Make [va, va + len) reachable by the device. len and va are multiples of
 * page_size; bus[i] receives the bus address of page i. Undo with
 * upcie_pci_dma_unmap() with the same va, len and bus array.
 */
int upcie_pci_dma_map(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
		      uint64_t *bus);
/**
 * Take back what upcie_pci_dma_map() gave the device.
 *
 * va, len, page_size and bus as given to upcie_pci_dma_map().
 * @return 0 or a negative errno.
 */
int upcie_pci_dma_unmap(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			const uint64_t *bus);

/**
 * Has the kernel asked for the device back?
 *
 * 0 while the device is usable; -ENODEV once the kernel asked for it back
 * (vfio device request: hot-unplug or unbind) or it is gone (uio: unbound,
 * removed, config space unreadable or all-ones). Sticky: -ENODEV with the
 * same message from then on. Non-blocking, one or two syscalls: meant for
 * slow paths (the NVMe layer calls it from its health check). After
 * -ENODEV, close the handle: under vfio the kernel's unplug waits for it. */
int upcie_pci_check(struct upcie_pci_dev *dev);

/**
 * Let a polled backend make progress.
 *
 * Steps the sim when it has no thread of its own; nothing on uio and vfio.
 * Called by the library's wait loops, never on the I/O path.
 */
void upcie_pci_idle(struct upcie_pci_dev *dev);

/**
 * Interrupt kinds, and how each backend delivers interrupts.
 *
 * A handle delivers interrupts as file descriptors that poll() readable
 * when their vector fired:
 *
 * ~~~
 *   vfio  MSI-X: one eventfd per vector (VFIO_DEVICE_SET_IRQS), as many
 *         vectors as the function's MSI-X table has.
 *   uio   INTx: one line for the whole function. uio_pci_generic masks it
 *         (PCI COMMAND Interrupt Disable) each time it fires; an ack
 *         unmasks it. Every listener opened on it is a file of its own
 *         (its own event count): each sees every interrupt, none can eat
 *         another's wake-up, and all share the line (a queue whose
 *         completions nobody reaps keeps it asserted and wakes the rest).
 *         MSI-X needs vfio: uio_pci_generic has no MSI support.
 *   sim   MSI-X: one eventfd per vector, raised by the model.
 * ~~~
 *
 * Vector 0 is where the controller signals admin completions; the NVMe
 * layer gives each interrupt-driven I/O queue a vector of its own.
 *
 * ~~~
 *   upcie_pci_irq_info()     kind and number of vectors (0 when none:
 *                            -ENOTSUP from enable, saying why)
 *   upcie_pci_irq_enable()   enable vectors 0..nvec-1 (MSI-X) or the line
 *                            (INTx: nvec 1); again with the same nvec: 0
 *   upcie_pci_irq_disable()  back to no interrupts (close does it too)
 *   upcie_pci_irq_open()     a listener for vector vec: an fd the caller
 *                            polls, readable once the vector fired after
 *                            the last ack; release with _irq_close()
 *   upcie_pci_irq_ack()      consume what fired on that listener and, for
 *                            INTx, unmask the line; returns 1 when it had
 *                            fired, 0 when not, or a negative errno
 *   upcie_pci_gone_fd()      an fd that turns readable (and stays so) when
 *                            the kernel asks for the device back (vfio's
 *                            request interrupt), so a sleeper wakes; -1
 *                            when the backend has none (removal is then
 *                            found by upcie_pci_check() from health checks)
 * ~~~
 *
 * No lost wake-up: ack, then look at the completion queue, then sleep.
 * The device writes a completion before it signals its interrupt, so a
 * completion the look missed signals after the ack, and the sleep ends.
 */
enum upcie_pci_irq_kind {
	UPCIE_PCI_IRQ_NONE = 0,
	UPCIE_PCI_IRQ_INTX,
	UPCIE_PCI_IRQ_MSIX,
};

/** What upcie_pci_irq_info() reports. */
struct upcie_pci_irq_info {
	enum upcie_pci_irq_kind kind; /**< none, INTx or MSI-X */
	unsigned nvec;		      /**< vectors the function offers (INTx: 1) */
	unsigned enabled;	      /**< vectors enabled now, 0 when off */
	uint32_t reserved[5];	      /**< zeroed: room for fields of later releases */
};

/**
 * Kind and number of interrupt vectors.
 *
 * 0 vectors when none: upcie_pci_irq_enable() then fails with -ENOTSUP,
 * saying why.
 * @return 0 or a negative errno.
 */
int upcie_pci_irq_info(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info);
/**
 * Enable vectors 0..nvec-1 (MSI-X) or the line (INTx: nvec 1).
 *
 * Again with the same nvec: 0.
 * @return 0 or a negative errno (-ENOTSUP: no interrupts).
 */
int upcie_pci_irq_enable(struct upcie_pci_dev *dev, unsigned nvec);
/** Back to no interrupts (close does it too). */
void upcie_pci_irq_disable(struct upcie_pci_dev *dev);
/**
 * A listener for vector vec.
 *
 * @return an fd the caller polls, readable once the vector fired after the
 * last ack, or a negative errno; release it with upcie_pci_irq_close().
 */
int upcie_pci_irq_open(struct upcie_pci_dev *dev, unsigned vec);
/** Release a listener from upcie_pci_irq_open(). */
void upcie_pci_irq_close(struct upcie_pci_dev *dev, unsigned vec, int fd);
/**
 * Consume what fired on a listener and, for INTx, unmask the line.
 *
 * No lost wake-up: ack, then look at the completion queue, then sleep.
 * @return 1 when it had fired, 0 when not, or a negative errno.
 */
int upcie_pci_irq_ack(struct upcie_pci_dev *dev, unsigned vec, int fd);
/**
 * An fd that turns readable when the kernel wants the device back.
 *
 * It turns readable (and stays so) when the kernel asks for the device
 * back (vfio's request interrupt), so a sleeper wakes.
 * @return the fd, or -1 when the backend has none (removal is then found
 * by upcie_pci_check() from health checks).
 */
int upcie_pci_gone_fd(struct upcie_pci_dev *dev);

/* MMIO accessors (documented at upcie_mmio_read32()). */
#if defined(__SANITIZE_THREAD__)
#define UPCIE_MMIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UPCIE_MMIO_TSAN 1
#endif
#endif
/**
 * Read a 32-bit register at byte offset off of a mapped BAR.
 *
 * MMIO accessors: plain volatile accesses of the natural width.
 *
 * Under ThreadSanitizer they are atomic, with release (write) and acquire
 * (read) order. The sim backend's BAR is ordinary memory that the model's
 * thread reads and writes, so a plain access would be a data race there
 * (never with a real BAR, which no other thread touches). Release and
 * acquire are what the bus gives a driver: a register write reaches the
 * device after the writes its write barrier ordered before it, and a
 * register read completes only after the device's earlier DMA writes
 * (PCIe: a read completion does not pass posted writes). Other builds keep
 * the plain accesses: the same code as before, no change of ordering.
 */
static inline uint32_t upcie_mmio_read32(const volatile void *base, uint32_t off)
{
#ifdef UPCIE_MMIO_TSAN
	return __atomic_load_n((const volatile uint32_t *)((const volatile char *)base + off),
			       __ATOMIC_ACQUIRE);
#else
	return *(const volatile uint32_t *)((const volatile char *)base + off);
#endif
}
/** Write a 32-bit register at byte offset off of a mapped BAR. */
static inline void upcie_mmio_write32(volatile void *base, uint32_t off, uint32_t val)
{
#ifdef UPCIE_MMIO_TSAN
	__atomic_store_n((volatile uint32_t *)((volatile char *)base + off), val, __ATOMIC_RELEASE);
#else
	*(volatile uint32_t *)((volatile char *)base + off) = val;
#endif
}
/** 64-bit registers as two 32-bit accesses, low first (Base spec 3.1.3: the
 * host may access 64-bit registers as two dwords). */
static inline uint64_t upcie_mmio_read64(const volatile void *base, uint32_t off)
{
	uint64_t lo = upcie_mmio_read32(base, off);
	uint64_t hi = upcie_mmio_read32(base, off + 4);
	return lo | (hi << 32);
}
/** Write a 64-bit register as two 32-bit writes, low dword first. */
static inline void upcie_mmio_write64(volatile void *base, uint32_t off, uint64_t val)
{
	upcie_mmio_write32(base, off, (uint32_t)val);
	upcie_mmio_write32(base, off + 4, (uint32_t)(val >> 32));
}

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_PCI_H */
