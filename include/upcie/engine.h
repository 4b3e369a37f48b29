/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief What an I/O engine needs
 *
 * Calls for programs that put libupcie under someone else's threads and
 * buffers (fio, a storage target): one controller shared by every thread
 * of the process, transfers larger than the controller takes in one
 * command, and scatter lists. All of it is built on the calls of nvme.h.
 *
 * Shared controllers (lib/nvme/shared.c):
 * ~~~
 *   upcie_nvme_ctrl_get()    open a device, a growable DMA heap and the
 *                            controller on first use; later calls for the
 *                            same device (any spelling of its address)
 *                            return the same controller and count a
 *                            reference
 *   upcie_nvme_ctrl_put()    drop a reference; the last one closes
 *                            controller, heap and device
 * ~~~
 * With upcie_nvme_get_opts.dma_ctx, controllers of several devices share
 * one DMA context and one heap: a job's buffers serve every controller it
 * uses (a fio job over several devices, a mirror).
 * Each thread then creates its own queue pair on the shared controller:
 * upcie_nvme_qpair_create() and _destroy() serialize what they share with
 * other threads (queue ids, the admin queue, the controller's list of
 * queue pairs, the heap) and touch nothing another thread's queue pair
 * uses on its I/O path, so they may run while other threads do I/O.
 *
 * Split transfers (lib/nvme/split.c):
 * ~~~
 *   upcie_nvme_read_split/_write_split()  any number of blocks: as many
 *                            commands as MDTS requires, submitted
 *                            together (all or none), one callback when
 *                            the last completes, carrying the first error
 *   upcie_nvme_read_ext_split/_write_ext_split()  the same with options:
 *                            metadata and PI kept in step with the data
 * ~~~
 *
 * Scatter lists (lib/nvme/sgl.c):
 * ~~~
 *   upcie_nvme_iov_setup()   fill an SQE's data pointer for a list of heap
 *                            buffers, as PRPs when the buffers allow it
 *                            (inner boundaries on memory pages), else as
 *                            an SGL when the controller supports SGLs
 *   upcie_nvme_submit_iov()  the same, submitted on a queue pair
 *   upcie_nvme_ctrl_sgl()    does the controller take SGLs for NVM I/O?
 *   upcie_nvme_ctrl_md_sgl() does it take a metadata SGL (MPTR holding an
 *                            SGL descriptor, Identify SGLS bit 19)?
 * ~~~
 *
 * Caveats: a shared controller belongs to the process that opened it;
 * after fork() the child cannot use it (get fails with -EBUSY and says
 * so). Options of the first get apply; later gets only add a reference.
 */
#ifndef UPCIE_ENGINE_H
#define UPCIE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <upcie/nvme.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upcie_pci_opts;

/* ---- shared controllers ---- */

/** Options of upcie_nvme_ctrl_get(). */
struct upcie_nvme_get_opts {
	size_t size;			  /**< sizeof(struct upcie_nvme_get_opts): lets the
					     struct grow; 0 is taken as this version's size */
	const struct upcie_pci_opts *pci; /**< NULL: defaults (backend from the bound driver) */
	size_t heap_size;		  /**< first heap segment; 0: 16 MiB (the heap grows) */
	unsigned heap_flags;		  /**< UPCIE_DMA_* from dma.h; UPCIE_DMA_GROW is added */
	struct upcie_nvme_ctrl_opts ctrl; /**< the controller's options */
	/** Open the device into this DMA context (dma.h): every controller got
	 * with the same context shares one heap, the context's (made by the
	 * first get with heap_size and heap_flags, destroyed by the last put),
	 * so a buffer from upcie_nvme_ctrl_heap() of one serves them all.
	 * NULL: a device and heap of its own. The caller keeps the context
	 * until the last put. */
	struct upcie_dma_ctx *dma_ctx;
	uint8_t reserved[24]; /**< zero */
};

/**
 * Open a shared controller, or take another reference on it.
 *
 * Opens the device, a growable DMA heap and the controller on first use;
 * later calls for the same device (any spelling of its address) return the
 * same controller and count a reference. Options of the first get apply.
 * name: a PCI address ("0000:01:00.0", "01:00.0") or "sim". opts may be NULL.
 * @return the controller, or NULL and errno on failure, upcie_errmsg() says
 * why (EBUSY in a child after fork()).
 */
struct upcie_nvme_ctrl *upcie_nvme_ctrl_get(const char *name,
					    const struct upcie_nvme_get_opts *opts);
/**
 * Drop a reference on a shared controller; the last one closes controller,
 * heap and device.
 *
 * @return 0, the close's error when this was the last reference, or
 * -EINVAL for a controller that did not come from upcie_nvme_ctrl_get().
 */
int upcie_nvme_ctrl_put(struct upcie_nvme_ctrl *ctrl);
/** References held on a shared controller (0 when it is not one). */
unsigned upcie_nvme_ctrl_refs(const struct upcie_nvme_ctrl *ctrl);

/* ---- split transfers ---- */

/** State of one split transfer, owned by the caller until its callback ran. */
struct upcie_nvme_split {
	upcie_nvme_cb cb;	   /**< the caller's callback */
	void *arg;		   /**< and its argument */
	uint32_t pending;	   /**< commands not yet completed */
	uint32_t parts;		   /**< commands issued */
	bool failed;		   /**< a part failed: cqe is its completion */
	struct upcie_nvme_cqe cqe; /**< what cb receives */
};

/**
 * Read nlb blocks, any number, as as many commands as MDTS requires.
 *
 * Read or write nlb blocks starting at slba, buf (nlb * lba_size bytes) in
 * the controller's heap. When nlb is above ns->max_xfer_blocks the transfer
 * goes as several commands of at most that size; all of them are placed in
 * the SQ or none is: -EAGAIN when the queue has too few free slots now,
 * -EINVAL when it could never hold them (split > queue depth - 1), when the
 * buffer is not in the heap or nlb is 0 or runs past the namespace.
 * cb(arg, cqe) runs once, when every part completed: cqe is the first
 * failed part's completion, else the last part's. flags as for
 * upcie_nvme_read() (UPCIE_NVME_SUBMIT_RING rings once, after the last
 * part). split is only used while parts are outstanding; a transfer that
 * fits one command still goes through it.
 */
int upcie_nvme_read_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			  uint64_t slba, uint32_t nlb, void *buf, struct upcie_nvme_split *split,
			  upcie_nvme_cb cb, void *arg, unsigned flags);
/**
 * Write nlb blocks, any number, as as many commands as MDTS requires.
 *
 * As upcie_nvme_read_split(), in the other direction: all parts or none go
 * into the SQ (-EAGAIN, -EINVAL as there), one callback when the last
 * completed, carrying the first error.
 */
int upcie_nvme_write_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			   uint64_t slba, uint32_t nlb, const void *buf,
			   struct upcie_nvme_split *split, upcie_nvme_cb cb, void *arg,
			   unsigned flags);
/**
 * The same with options (nvme.h, upcie_nvme_read_ext()): parts of at most
 * ns->md_max_xfer_blocks, each with its share of the data buffer
 * (upcie_nvme_ns_data_len() bytes per part) and of o->md, and, for PI
 * types 1 and 2, its first block's reference tag (o->reftag + the blocks
 * before it). Every part is checked before the first is queued.
 */
int upcie_nvme_read_ext_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			      uint64_t slba, uint32_t nlb, void *buf,
			      const struct upcie_nvme_io_opts *o, struct upcie_nvme_split *split,
			      upcie_nvme_cb cb, void *arg, unsigned flags);
/**
 * Write with options (metadata, PI), any number of blocks: as
 * upcie_nvme_read_ext_split() in the other direction.
 */
int upcie_nvme_write_ext_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			       uint64_t slba, uint32_t nlb, const void *buf,
			       const struct upcie_nvme_io_opts *o, struct upcie_nvme_split *split,
			       upcie_nvme_cb cb, void *arg, unsigned flags);
/** Commands a transfer of nlb blocks takes on ns (0 when nlb is 0 or ns
 * refuses I/O). */
uint32_t upcie_nvme_split_parts(const struct upcie_nvme_ns *ns, uint32_t nlb);

/* ---- scatter lists: PRP lists and SGLs ---- */

/** How upcie_nvme_iov_setup() describes the data. */
enum upcie_nvme_iov_mode {
	UPCIE_NVME_IOV_AUTO = 0, /**< PRPs when the buffers allow it, else an SGL */
	UPCIE_NVME_IOV_PRP,	 /**< PRPs or -EINVAL */
	UPCIE_NVME_IOV_SGL,	 /**< an SGL (the controller must support them) */
};

/** Bytes of list memory upcie_nvme_iov_setup() may need for iovcnt buffers
 * of len bytes in all, with memory pages of page_size bytes. */
size_t upcie_nvme_iov_list_bytes(unsigned iovcnt, size_t len, uint32_t page_size);

/**
 * Describe a list of heap buffers in an SQE, as PRPs or as an SGL.
 *
 * Fill sqe's data pointer (PRP1/PRP2 or SGL1 and the PSDT bits of flags)
 * for the buffers iov[0..iovcnt) taken in order, all in the controller's
 * heap. list (list_bytes long, 16-byte aligned, from the heap) receives
 * the PRP list or the SGL segment; keep it until the command completes.
 * PRPs need every buffer but the first to start on a memory page and every
 * buffer but the last to end on one (Base spec 4.1.1); each buffer must be
 * dword aligned for SGLs too. Returns the transfer length, or -EINVAL
 * (saying which buffer and why in upcie_errmsg()), -ENOTSUP (SGL asked but
 * the controller has none), -ENOSPC (list too small).
 */
long upcie_nvme_iov_setup(struct upcie_nvme_ctrl *ctrl, enum upcie_nvme_iov_mode mode,
			  const struct iovec *iov, unsigned iovcnt, struct upcie_nvme_sqe *sqe,
			  void *list, size_t list_bytes);
/**
 * Submit a command for a list of heap buffers.
 *
 * upcie_nvme_iov_setup() then upcie_nvme_submit_raw() on qp (a queue pair of
 * ctrl). Returns 0 or a negative errno (-EAGAIN: queue full). */
int upcie_nvme_submit_iov(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_qpair *qp,
			  enum upcie_nvme_iov_mode mode, const struct upcie_nvme_sqe *sqe,
			  const struct iovec *iov, unsigned iovcnt, void *list, size_t list_bytes,
			  upcie_nvme_cb cb, void *arg, unsigned flags);
/** True when the controller supports SGLs for NVM commands (Identify SGLS). */
bool upcie_nvme_ctrl_sgl(const struct upcie_nvme_ctrl *ctrl);
/**
 * True when the controller takes a metadata SGL.
 *
 * SGLs for NVM commands and Identify Controller SGLS bit 19: MPTR may hold
 * the address of one SGL descriptor (PSDT 10b). Read, Write and Compare
 * with a separate metadata buffer (upcie_nvme_read_ext() and the others)
 * then accept a metadata buffer that is not contiguous in bus addresses
 * (one that crosses a hugepage on a uio heap, or registered memory): the
 * library describes data and metadata with SGLs, in the command's slot of
 * its queue pair's list memory. A bus-contiguous metadata buffer still goes
 * through MPTR as one address, the data through PRPs. Without bit 19 such
 * a buffer is refused.
 *
 * @param ctrl  the controller
 * @return true or false; any thread.
 */
bool upcie_nvme_ctrl_md_sgl(const struct upcie_nvme_ctrl *ctrl);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_ENGINE_H */
