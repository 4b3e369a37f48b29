/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief NVMe controllers, namespaces and queue pairs
 *
 * Bring a controller up (NVMe Base spec 3.5.1), identify it and its
 * namespaces, and run I/O queue pairs with polled completions, or sleep
 * until an interrupt (upcie_nvme_qpair_wait).
 *
 * Controller:
 * ~~~
 *   upcie_nvme_ctrl_open()     disable, set up the admin queue, enable,
 *                              identify, ask for I/O queues, list namespaces
 *   upcie_nvme_ctrl_close()    delete I/O queues, shut down (CC.SHN), free
 *   upcie_nvme_ctrl_id()       cached Identify Controller data
 *   upcie_nvme_ctrl_info()     CAP, VS, MDTS, granted queue counts, ...
 *   upcie_nvme_ns_get()        namespace view by nsid (NULL if inactive)
 *   upcie_nvme_ns_first/_next  iterate the active namespaces
 *   upcie_nvme_admin()         any admin command, synchronous with timeout
 *   upcie_nvme_identify()      Identify with a CNS value
 *   upcie_nvme_get_log_page()  Get Log Page (error, SMART, ...)
 *   upcie_nvme_get/set_features()
 * ~~~
 *
 * Queue pairs (one thread at a time each; no locks inside):
 * ~~~
 *   upcie_nvme_qpair_create/_destroy
 *   upcie_nvme_read/_write/_flush/_write_zeroes/_deallocate/_submit_raw
 *   upcie_nvme_read_ext/_write_ext (metadata, PI, FUA, Limited Retry),
 *   upcie_nvme_compare/_verify/_write_uncorrectable/_copy/_dsm
 *       put one command in the SQ; the doorbell is rung by
 *   upcie_nvme_ring()          one SQ doorbell write for everything queued,
 *       or at once with UPCIE_NVME_SUBMIT_RING in flags
 *   upcie_nvme_poll()          reap completions, call callbacks, one CQ
 *                              doorbell write per call that reaped anything
 *   upcie_nvme_*_sync()        submit and wait, with a timeout
 *   upcie_nvme_qpair_wait()    sleep until completions (interrupts, or hybrid)
 * ~~~
 *
 * For engines that build their own commands:
 * ~~~
 *   upcie_nvme_submit_raw()    any SQE; the library sets CID and PRPs
 *   upcie_nvme_prp_setup()     PRP1/PRP2 and lists for a heap buffer
 * ~~~
 *
 * Statuses: completions carry (SCT << 8) | SC, see nvme_spec.h (DNR, More
 * and CRD through upcie_nvme_cqe_dnr/_more/_crd); synchronous calls return
 * -EIO when the device reported an error and store that status in *status.
 * Other errnos: -ENODEV the controller is gone; -ENOTRECOVERABLE Controller
 * Fatal Status or a failed reset (a reset may bring it back); -ETIMEDOUT a
 * wait ran out; -ECANCELED the command ended with a host status (reset).
 * Every failing call sets upcie_errmsg().
 *
 * Failure handling: commands time out (per qpair), are aborted and, if
 * need be, the controller is reset with every handle kept; device loss and
 * CFS are noticed while only polling. See upcie_nvme_ctrl_reset(),
 * upcie_nvme_ctrl_check() and the timeout options.
 *
 * Buffer lifetime: a command's buffer belongs to the device from submit
 * until its callback ran. The library reports a command finished (success,
 * error, aborted, timed out) only when the controller can no longer touch
 * the buffer: it posted the completion, deleted the SQ, was disabled, or
 * lost bus mastering. If none of those can be reached, the command stays
 * outstanding and its callback never runs: never reuse that buffer.
 *
 * Caveats: all I/O buffers must come from the controller's DMA heap or
 * be registered with it (upcie_dma_register, dma.h); the library
 * translates them, never copies. Transfers above the controller's
 * MDTS are rejected with -EINVAL, never split silently.
 */
#ifndef UPCIE_NVME_H
#define UPCIE_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upcie/nvme_spec.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upcie_pci_dev;
struct upcie_dma_heap;
struct upcie_nvme_ctrl;
struct upcie_nvme_qpair;

/** Options of upcie_nvme_ctrl_open(); NULL or zeroes take the defaults. */
struct upcie_nvme_ctrl_opts {
	uint32_t admin_timeout_ms; /**< per admin command; 0: 5000 */
	uint16_t admin_depth;	   /**< admin queue entries; 0: 32 (clamped to MQES + 1) */
	uint16_t io_queues;	   /**< I/O queue pairs to request; 0: 64 */
	bool no_dbbuf;		   /**< do not use shadow doorbells even if offered */
	bool no_auto_reset;	   /**< on CFS or a lost completion, do not reset by itself:
				      the embedder calls upcie_nvme_ctrl_reset() */
	uint32_t io_timeout_ms;	   /**< default I/O command timeout of new qpairs; 0: 30000 */
	uint32_t health_ms;	   /**< commands outstanding and no completion for this long:
				      read CSTS once (device gone? CFS?); 0: 100 */
	/** Interrupt coalescing (Set Features 08h) for queues with interrupts,
	 * set at open and after each reset: an interrupt waits for this many
	 * completions (0 or 1: each completion signals) or at most
	 * irq_aggr_us (rounded up to the feature's 100 us steps; 0: no delay),
	 * whichever comes first. A controller that refuses it gets a warning. */
	uint16_t irq_aggr;
	uint16_t irq_aggr_us; /**< most delay of an interrupt, in us (see irq_aggr) */
	uint32_t reserved[7]; /**< zero: room to grow without breaking the ABI */
};

/** What upcie_nvme_ctrl_info() reports about a controller. */
struct upcie_nvme_ctrl_info {
	uint64_t cap;		 /**< the CAP register */
	uint32_t vs;		 /**< the VS register */
	uint32_t dstrd;		 /**< CAP.DSTRD */
	uint32_t mqes;		 /**< CAP.MQES + 1: largest queue in entries */
	uint32_t timeout_ms;	 /**< CAP.TO * 500 */
	uint32_t page_size;	 /**< memory page size chosen (CC.MPS) */
	uint32_t max_xfer_bytes; /**< from MDTS (or the library's own cap when MDTS is 0) */
	uint16_t io_sq_granted;	 /**< from Set Features Number of Queues */
	uint16_t io_cq_granted;	 /**< from Set Features Number of Queues */
	uint16_t io_qpairs_max;	 /**< min of the two */
	uint32_t nn;		 /**< Identify Controller NN */
	uint32_t nr_ns;		 /**< active namespaces */
	bool dbbuf;		 /**< shadow doorbells in use */
	uint64_t resets;	 /**< controller resets since open */
	uint64_t health_checks;	 /**< CSTS reads by health checks (slow path only) */
	uint32_t irq_kind;	 /**< enum upcie_pci_irq_kind the device offers (pci.h) */
	uint32_t irq_vectors;	 /**< vectors it offers (MSI-X table size; INTx: 1) */
	uint32_t reserved[6];	 /**< zeroed: room for fields of later releases */
};

/** A namespace as the driver sees it. */
struct upcie_nvme_ns {
	uint32_t nsid;
	uint32_t lba_size; /**< bytes per logical block, data only */
	uint32_t lba_shift;
	uint16_t ms;		  /**< metadata bytes per block */
	uint8_t flbas_idx;	  /**< LBA format in use */
	uint8_t pi_sts;		  /**< storage tag size of the format (ELBAF STS), 0 for the
				       16-bit guard; PI I/O needs 0 (no storage tags) */
	uint64_t nsze;		  /**< size, in blocks */
	uint64_t ncap;		  /**< capacity, in blocks */
	uint32_t max_xfer_blocks; /**< largest transfer of upcie_nvme_read/_write, from MDTS;
				    0 when the namespace has metadata (ms != 0): those
				    refuse it, the _ext calls take it */
	const struct upcie_nvme_id_ns *id;
	/** The metadata format (NVM Command Set spec 5.2), when ms != 0. */
	uint8_t md_extended; /**< 1: each block's metadata follows its data in the data
				buffer (extended LBA); 0: a separate buffer (MPTR) */
	uint8_t pi_type;     /**< protection information: 0 none, 1, 2 or 3 */
	uint8_t pi_first;    /**< 1: the PI is the first bytes of the metadata; 0: the last */
	uint8_t guard_bits;  /**< with PI: 16 (8-byte PI, CRC16 T10-DIF), or, on a controller
				with extended LBA formats, 64 (16-byte PI, CRC-64 NVMe,
				48-bit reference tags) or 32 (refused by the I/O calls) */
	uint32_t md_max_xfer_blocks; /**< largest transfer of the _ext calls (MDTS; with
					extended LBAs the metadata counts too) */
};

/**
 * Bring a controller up (NVMe Base spec 3.5.1).
 *
 * Disable it, set up the admin queue, enable it, identify it, ask for I/O
 * queues, list the namespaces.
 * @param dev the device (upcie_pci_open())
 * @param heap a DMA heap of dev, for queues, PRP lists and Identify data
 * @param opts options, or NULL for the defaults
 * @return the controller, or NULL and errno on failure (upcie_errmsg()
 * says why).
 */
struct upcie_nvme_ctrl *upcie_nvme_ctrl_open(struct upcie_pci_dev *dev, struct upcie_dma_heap *heap,
					     const struct upcie_nvme_ctrl_opts *opts);
/**
 * Delete the I/O queues, shut the controller down (CC.SHN), free it.
 *
 * Deletes remaining I/O queues (their requests complete as aborted),
 * shuts the controller down and frees everything. Returns the first error
 * met (e.g. -ETIMEDOUT if shutdown did not complete), but frees anyway.
 * Called from a completion or event callback of this controller it
 * refuses (-EBUSY, nothing freed): close after the poll returned. */
int upcie_nvme_ctrl_close(struct upcie_nvme_ctrl *ctrl);

/**
 * Reset the controller and keep every handle valid.
 *
 * Reset the controller and keep every handle valid: quiesce it (a working
 * controller first gets a Delete I/O Submission Queue for each live queue
 * pair, so that it ends their commands itself; bounded, best effort),
 * disable it (CC.EN = 0, so it lets go of every queue), bring it up again (admin queue, Identify,
 * Number of Queues, shadow doorbells, namespaces, event requests) and let
 * each I/O queue pair re-create itself, same id, depth and memory, on its
 * owner's next poll. Commands outstanding at the reset complete there with
 * UPCIE_NVME_SC_HOST_ABORTED (retry is safe); commands queued but not yet
 * rung are kept and go to the device after the re-creation; a command rung
 * after the reset but before that poll also ends HOST_ABORTED. (One
 * exception: a command whose queue's owner is reaping in that very instant
 * may end with UPCIE_NVME_SC_ABORT_SQ_DELETED instead, the quiesce's
 * status; it means the same: the command did not complete, retry is safe.)
 * The
 * namespaces are read again (an event about them is lost with the reset):
 * handles of namespaces that are gone or changed LBA size or metadata format (size, placement, PI)
 * are fenced, as after an event (upcie_nvme_ctrl_set_event_cb). Any thread may call it. Returns 0,
 * -ENODEV (device gone) or the error of the step that failed (the controller is then left disabled:
 * -ENOTRECOVERABLE from then on).
 */
int upcie_nvme_ctrl_reset(struct upcie_nvme_ctrl *ctrl);

/**
 * Check the controller's health now.
 *
 * Check the controller's health now: one CSTS read and the PCI layer's
 * "kernel wants the device back" check. Returns 0 (healthy), -ENODEV (gone:
 * outstanding commands end with UPCIE_NVME_SC_HOST_PATH_ERROR) or
 * -ENOTRECOVERABLE (Controller Fatal Status, not reset). Unless
 * no_auto_reset was set, a CFS is answered with a reset, and 0 when the
 * reset worked. Queue pairs run the same check by themselves, when they
 * have commands outstanding and saw no completion for health_ms.
 */
int upcie_nvme_ctrl_check(struct upcie_nvme_ctrl *ctrl);

/** The cached Identify Controller data (read at open and after each reset). */
const struct upcie_nvme_id_ctrl *upcie_nvme_ctrl_id(const struct upcie_nvme_ctrl *ctrl);
/** CAP, VS, MDTS, granted queue counts and counters of a controller, into info. */
void upcie_nvme_ctrl_info(const struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_ctrl_info *info);
/** The PCI device the controller was opened on. */
struct upcie_pci_dev *upcie_nvme_ctrl_dev(const struct upcie_nvme_ctrl *ctrl);
/** The DMA heap the controller was opened with. */
struct upcie_dma_heap *upcie_nvme_ctrl_heap(const struct upcie_nvme_ctrl *ctrl);

/**
 * Namespace view by nsid.
 *
 * @return the namespace, or NULL when nsid is not active.
 */
const struct upcie_nvme_ns *upcie_nvme_ns_get(const struct upcie_nvme_ctrl *ctrl, uint32_t nsid);
/** The first active namespace, or NULL when there is none. */
const struct upcie_nvme_ns *upcie_nvme_ns_first(const struct upcie_nvme_ctrl *ctrl);
/** The active namespace after ns, or NULL after the last. */
const struct upcie_nvme_ns *upcie_nvme_ns_next(const struct upcie_nvme_ctrl *ctrl,
					       const struct upcie_nvme_ns *ns);

/**
 * Any admin command, synchronous, with a timeout.
 *
 * Admin commands: serialized inside the library, so any thread may call.
 * buf (may be NULL) must come from the heap; len <= min(MDTS, 256 KiB).
 * timeout_ms 0 takes the controller's admin timeout. cqe (may be NULL)
 * receives the completion. Returns 0, -EIO (device error: see cqe / status),
 * -ETIMEDOUT, -ENODEV (device gone), -EAGAIN (admin queue full) or -EINVAL.
 * After -ETIMEDOUT the controller is considered failed: the device may
 * still write buf, so keep it until upcie_nvme_ctrl_close() has reset the
 * controller.
 * @param ctrl the controller
 * @param sqe the command; the library sets its CID and, for buf, PRP1/PRP2
 * @param buf data buffer from the heap, or NULL
 * @param len bytes at buf
 * @param cqe receives the completion, or NULL
 * @param timeout_ms how long to wait; 0: the controller's admin timeout
 */
int upcie_nvme_admin(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_sqe *sqe, void *buf,
		     size_t len, struct upcie_nvme_cqe *cqe, uint32_t timeout_ms);
/**
 * Identify with a CNS value.
 *
 * Identify into buf (4096 bytes from the heap).
 * @return as upcie_nvme_admin(); the status goes to *status (may be NULL).
 */
int upcie_nvme_identify(struct upcie_nvme_ctrl *ctrl, uint8_t cns, uint32_t nsid, void *buf,
			uint16_t *status);
/**
 * Get Log Page lid (error, SMART, ...) for nsid into buf (len bytes from the heap).
 *
 * @return as upcie_nvme_admin(); the status goes to *status (may be NULL).
 */
int upcie_nvme_get_log_page(struct upcie_nvme_ctrl *ctrl, uint8_t lid, uint32_t nsid, void *buf,
			    size_t len, uint16_t *status);
/**
 * Set Features fid with CDW11 cdw11.
 *
 * @return as upcie_nvme_admin(); completion dword 0 goes to *result and
 * the status to *status (either may be NULL).
 */
int upcie_nvme_set_features(struct upcie_nvme_ctrl *ctrl, uint8_t fid, uint32_t cdw11,
			    uint32_t *result, uint16_t *status);
/**
 * Get Features fid with CDW11 cdw11.
 *
 * @return as upcie_nvme_admin(); the feature's value (completion dword 0)
 * goes to *result and the status to *status (either may be NULL).
 */
int upcie_nvme_get_features(struct upcie_nvme_ctrl *ctrl, uint8_t fid, uint32_t cdw11,
			    uint32_t *result, uint16_t *status);

/**
 * A completion callback: arg as given at submission, and the command's
 * completion entry (valid during the call).
 */
typedef void (*upcie_nvme_cb)(void *arg, const struct upcie_nvme_cqe *cqe);
/**
 * Submit an admin command without waiting; cb(arg, cqe) runs at its completion.
 *
 * Asynchronous admin commands: the admin queue is shared, so submission
 * and polling take the library's admin lock. One that gets no completion
 * within the admin timeout is handled like a lost synchronous command:
 * the controller is reset (its callback then gets HOST_ABORTED), or with
 * no_auto_reset marked failed. The callback runs inside
 * upcie_nvme_admin_poll() or inside any synchronous admin call, on the
 * thread that made it. Asynchronous Event Requests are the library's own:
 * opcode 0x0c is refused here and by upcie_nvme_admin().
 */
int upcie_nvme_admin_submit(struct upcie_nvme_ctrl *ctrl, const struct upcie_nvme_sqe *sqe,
			    void *buf, size_t len, upcie_nvme_cb cb, void *arg);
/**
 * Reap admin completions and events.
 *
 * @return the count or a negative errno.
 */
int upcie_nvme_admin_poll(struct upcie_nvme_ctrl *ctrl);

/** An Asynchronous Event (Base spec 5.2, Figure 146/147). */
struct upcie_nvme_event {
	uint8_t type; /**< 0 error, 1 SMART/health, 2 notice, 6 I/O command set, 7 vendor */
	uint8_t info; /**< e.g. notice 0: Namespace Attribute Changed */
	uint8_t lid;  /**< log page to read for details (the library reads the
			 Changed Namespace List itself) */
	uint32_t dw0; /**< the raw completion dword 0 */
};
/** An event callback: arg as given to upcie_nvme_ctrl_set_event_cb(), and the event. */
typedef void (*upcie_nvme_event_cb)(void *arg, const struct upcie_nvme_event *ev);
/**
 * Install the callback of Asynchronous Events.
 *
 * Events are kept armed by the library. On Namespace Attribute Changed the
 * namespace list is read again before the callback runs. Earlier
 * upcie_nvme_ns pointers stay readable until close. One whose namespace is
 * gone, or now has another LBA size or metadata format, is fenced: its nsze,
 * ncap and max_xfer_blocks read 0 and every I/O call given it fails with
 * -ESTALE before anything reaches the device (the buffer was sized for the
 * old format); look the namespace up again. Handles of unchanged namespaces
 * keep working. (Commands submitted before the change are the device's
 * already, or, queued unrung before a reset, go out after it as they were.)
 * Runs where admin completions are reaped.
 */
void upcie_nvme_ctrl_set_event_cb(struct upcie_nvme_ctrl *ctrl, upcie_nvme_event_cb cb, void *arg);

/* ---- I/O queue pairs ---- */

/**
 * Timeouts. When a command has been outstanding for the qpair's timeout
 * (measured by a coarse clock read every few hundred polls, never per
 * I/O), the timeout callback decides; without one, the default is ABORT.
 * ~~~
 *   ABORT  send Abort for it; if the command does not complete within the
 *          admin timeout, reset the controller
 *   RESET  reset the controller now
 *   WAIT   give it another full timeout
 * ~~~
 * Either way the command completes exactly once, through its callback:
 * with the device's status (Command Abort Requested after an Abort), or
 * UPCIE_NVME_SC_HOST_ABORTED after a reset. Its CID is never leaked.
 */
enum upcie_nvme_timeout_action {
	UPCIE_NVME_TIMEOUT_ABORT = 0, /**< send Abort, reset if that does not end it */
	UPCIE_NVME_TIMEOUT_RESET,     /**< reset the controller now */
	UPCIE_NVME_TIMEOUT_WAIT,      /**< give it another full timeout */
};
/**
 * A timeout callback: decides what happens to command cid of qp, which
 * timed out; arg is upcie_nvme_qpair_opts.timeout_arg.
 */
typedef enum upcie_nvme_timeout_action (*upcie_nvme_timeout_cb)(void *arg,
								struct upcie_nvme_qpair *qp,
								uint16_t cid);

/** Options of upcie_nvme_qpair_create(); NULL or zeroes take the defaults. */
struct upcie_nvme_qpair_opts {
	uint32_t depth;			  /**< entries per queue; 0: 128; clamped to MQES + 1 */
	uint32_t timeout_ms;		  /**< command timeout; 0: the controller's io_timeout_ms;
					     UINT32_MAX: never */
	upcie_nvme_timeout_cb timeout_cb; /**< NULL: ABORT */
	void *timeout_arg;		  /**< passed to timeout_cb */
	/**
	 * Lazy CQ head doorbell: upcie_nvme_poll() does not publish the CQ head;
	 * the next ring that gives the device new commands publishes it, right
	 * after the SQ tail. The device gets new work first and, once per ring,
	 * learns the head. Safe: every command reaches the device through a ring
	 * that also published the head, so the device never holds more
	 * completions than slots. 0: the head is published by every poll that
	 * reaped anything (the default).
	 */
	uint8_t lazy_cq;
	/**
	 * Interrupts: 1 creates the CQ with interrupts enabled, on a vector of
	 * its own (MSI-X: vfio and sim; vector 0 is the admin queue's) or on the
	 * function's one line (INTx: uio). Then upcie_nvme_qpair_wait() sleeps
	 * instead of spinning and upcie_nvme_qpair_fd() gives an fd for an
	 * event loop. Polling works on it as on any queue. Creation fails with
	 * -ENOTSUP when the backend delivers no interrupts, -ENOSPC when every
	 * vector is taken.
	 */
	uint8_t irq;
	uint8_t reserved8[2]; /**< zero */
	/**
	 * Completion queue entries. 0: at least depth and at least one memory
	 * page's worth (page_size / 16: 256 entries with 4 KiB pages, memory the
	 * CQ takes anyway), clamped to MQES + 1. A CQ with room to spare never
	 * looks full to the device, which some devices (QEMU's among them) make
	 * pay at every head doorbell. Otherwise depth..65535 (and at most
	 * MQES + 1: larger values are lowered; upcie_nvme_qpair_cq_depth()).
	 */
	uint32_t cq_depth;
	/** Hybrid waiting (irq queues): upcie_nvme_qpair_wait() keeps polling for
	 * this long after the last completion it returned before it sleeps;
	 * 0: it sleeps as soon as nothing is there. */
	uint32_t spin_us;
	uint32_t reserved[5]; /**< zero: room to grow without breaking the ABI */
};

/**
 * Counters of a queue pair (upcie_nvme_qpair_stats()).
 *
 * Exact outside completion callbacks; inside one, completions that the
 * running poll has delivered already are not counted yet. */
struct upcie_nvme_qpair_stats {
	uint64_t submitted;    /**< commands placed in the SQ */
	uint64_t completed;    /**< CQEs reaped */
	uint64_t sq_doorbells; /**< SQ tail MMIO writes */
	uint64_t cq_doorbells; /**< CQ head MMIO writes */
	uint64_t shadow_sq;    /**< SQ tail updates that went to the shadow doorbell only */
	uint64_t shadow_cq;    /**< CQ head updates that went to the shadow doorbell only */
	uint64_t timeouts;     /**< commands that timed out */
	uint64_t aborts;       /**< Abort commands sent for them */
	uint64_t recoveries;   /**< re-creations after a controller reset */
	uint64_t stray;	       /**< completions for a CID that was not outstanding */
};

/**
 * Create an I/O queue pair (a CQ, then its SQ).
 *
 * Any thread may create a qpair while others do I/O on theirs.
 * @param ctrl the controller
 * @param opts options, or NULL for the defaults
 * @return the queue pair, or NULL and errno: ENOSPC when every granted
 * queue id is taken.
 */
struct upcie_nvme_qpair *upcie_nvme_qpair_create(struct upcie_nvme_ctrl *ctrl,
						 const struct upcie_nvme_qpair_opts *opts);
/**
 * Delete a queue pair and free it.
 *
 * Deletes SQ then CQ. Completions the device posted are delivered; once
 * the device deleted the SQ, the rest complete with
 * UPCIE_NVME_SC_ABORT_SQ_DELETED. If the device could not be told (it
 * failed, or refused the deletion), returns -EBUSY and the outstanding
 * commands stay outstanding: they complete, with UPCIE_NVME_SC_HOST_ABORTED,
 * when the controller is reset or closed. Until a command completed, the
 * device may still write its buffer: keep it (the buffer-lifetime rule).
 * A device that is gone (or a controller fenced after a failed reset)
 * cannot: the outstanding commands complete with
 * UPCIE_NVME_SC_HOST_PATH_ERROR, the qpair is freed and this returns 0.
 * A deletion that gets no answer resets the controller (unless
 * no_auto_reset), which takes the queue off the device: what is left
 * completes with UPCIE_NVME_SC_HOST_ABORTED, the qpair is freed, 0.
 * A qpair whose deletion was refused (-EBUSY) is ended by the next reset
 * (its commands complete HOST_ABORTED, its queue id is free again) or by
 * close. Called from one of the qpair's own completion callbacks it
 * refuses (-EBUSY, the qpair stays usable): destroy after the poll
 * returned. A reset from inside a callback works.
 */
int upcie_nvme_qpair_destroy(struct upcie_nvme_qpair *qp);

/** The queue id of the pair (its SQ and CQ share it). */
uint16_t upcie_nvme_qpair_id(const struct upcie_nvme_qpair *qp);
/** Entries per queue, after clamping. At most depth - 1 commands are outstanding. */
uint32_t upcie_nvme_qpair_depth(const struct upcie_nvme_qpair *qp);
/** Entries of the completion queue (at least the depth). */
uint32_t upcie_nvme_qpair_cq_depth(const struct upcie_nvme_qpair *qp);
/** Commands submitted and not yet completed (queued unrung included). */
uint32_t upcie_nvme_qpair_outstanding(const struct upcie_nvme_qpair *qp);
/** Bytes of DMA memory this qpair took (SQ, CQ, PRP lists). */
size_t upcie_nvme_qpair_mem(const struct upcie_nvme_qpair *qp);
/** The queue pair's counters, into st. */
void upcie_nvme_qpair_stats(const struct upcie_nvme_qpair *qp, struct upcie_nvme_qpair_stats *st);
/** CID of the latest successful submit on qp (valid until its completion). */
uint16_t upcie_nvme_qpair_last_cid(const struct upcie_nvme_qpair *qp);
/**
 * Abort an outstanding command.
 *
 * Send Abort (Base spec 5.1) for an outstanding command of qp and wait for
 * the Abort's own completion. Returns 0 when the controller says it aborted
 * the command (its completion, Command Abort Requested, comes through
 * upcie_nvme_poll()), 1 when it did not (the command runs on), or a negative
 * errno. Call it from the qpair's owner thread or with its I/O stopped.
 */
int upcie_nvme_abort(struct upcie_nvme_qpair *qp, uint16_t cid);

/**
 * @name Submission flags
 * The flags argument of the submit calls.
 * @{
 */
#define UPCIE_NVME_SUBMIT_RING (1u << 0) /**< ring the SQ doorbell now */
/** @} */

/**
 * Submit a Read of nlb blocks from slba into buf.
 *
 * The command goes into the SQ; the doorbell is rung by upcie_nvme_ring(),
 * by the next upcie_nvme_poll(), or at once with UPCIE_NVME_SUBMIT_RING in
 * flags. cb(arg, cqe) runs from upcie_nvme_poll() when it completed; buf
 * belongs to the device until then.
 * nlb is the number of blocks (1-based). buf length = nlb * lba_size.
 * Called from the qpair's owner thread (one thread at a time per qpair).
 *
 * @param qp the queue pair
 * @param ns the namespace (upcie_nvme_ns_get()); a fenced one fails with
 * -ESTALE
 * @param slba first logical block
 * @param nlb number of blocks, 1-based
 * @param buf nlb * lba_size bytes from the controller's heap, 4-byte aligned
 * @param cb called once with arg and the completion, from upcie_nvme_poll()
 * @param arg passed to cb
 * @param flags 0 or UPCIE_NVME_SUBMIT_RING
 *
 * @return 0 on success; -EAGAIN when the queue is full (never blocks);
 * -EINVAL for a buffer outside the heap, a transfer above MDTS, nlb 0, or a
 * misaligned buffer (must be 4-byte aligned).
 */
int upcie_nvme_read(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		    uint32_t nlb, void *buf, upcie_nvme_cb cb, void *arg, unsigned flags);
/**
 * Submit a Write of nlb blocks at slba from buf.
 *
 * As upcie_nvme_read(): 0, -EAGAIN (queue full), -EINVAL (a buffer outside
 * the heap, a transfer above MDTS, nlb 0, a buffer not 4-byte aligned).
 */
int upcie_nvme_write(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		     uint32_t nlb, const void *buf, upcie_nvme_cb cb, void *arg, unsigned flags);
/**
 * Submit a Flush of namespace nsid.
 *
 * @return 0, -EAGAIN (queue full) or -EINVAL.
 */
int upcie_nvme_flush(struct upcie_nvme_qpair *qp, uint32_t nsid, upcie_nvme_cb cb, void *arg,
		     unsigned flags);
/**
 * Submit a Write Zeroes of nlb blocks at slba.
 *
 * @return as upcie_nvme_read().
 */
int upcie_nvme_write_zeroes(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			    uint64_t slba, uint32_t nlb, upcie_nvme_cb cb, void *arg,
			    unsigned flags);
/**
 * Submit a Dataset Management deallocate (trim) of the ranges.
 *
 * ranges: nr (1..256) entries in heap memory.
 * @return 0, -EAGAIN (queue full) or -EINVAL.
 */
int upcie_nvme_deallocate(struct upcie_nvme_qpair *qp, uint32_t nsid,
			  const struct upcie_nvme_dsm_range *ranges, uint32_t nr, upcie_nvme_cb cb,
			  void *arg, unsigned flags);
/**
 * Metadata, protection information and the optional NVM commands
 * (NVM Command Set spec 3 and 5.2). The plain upcie_nvme_read/_write above
 * stay as they are; these take an options struct:
 *
 * ~~~
 *   flags        UPCIE_NVME_RW_FUA, _LR (Limited Retry), _PRACT, and the
 *                checks _PRCHK_GUARD, _PRCHK_APP, _PRCHK_REF (nvme_spec.h);
 *                they go into CDW12 as they are. PRACT and PRCHK need a
 *                namespace formatted with PI.
 *   md           the separate metadata (ns->md_extended 0): ms bytes per
 *                block, one piece of heap memory (upcie_dma_alloc), 4-byte
 *                aligned. NULL with extended LBAs (the metadata is in buf,
 *                after each block's data) and when nothing crosses the bus:
 *                PRACT on a namespace whose metadata is the 8-byte PI.
 *   reftag       the first block's reference tag (type 1: its LBA's low 32
 *                bits, 48 with the 64-bit guard; types 1 and 2 count up per
 *                block; type 3 the tag of every block). Written by PRACT,
 *                checked by PRCHK_REF.
 *   reftag_hi    bits 47:32 of that tag, on a namespace with the 64-bit
 *                guard format (guard_bits 64), whose tags have 48 bits (it
 *                goes into CDW3); must be 0 elsewhere. Callers built before
 *                it existed pass the smaller opts_size: it reads as 0.
 *   apptag, apptag_mask  application tag (written by PRACT) and the bits
 *                of it PRCHK_APP compares.
 * ~~~
 *
 * opts_size must be sizeof(struct upcie_nvme_io_opts) (the struct may
 * grow; an older, smaller size is taken, its missing fields as 0). o may be NULL: no flags, no
 * metadata. The data buffer is upcie_nvme_ns_data_len() bytes, the metadata upcie_nvme_ns_md_len().
 * Every call refuses with -EINVAL and a message naming the argument
 * (metadata missing or not wanted, PI flags without PI, nlb above
 * md_max_xfer_blocks, ...), -ESTALE for a fenced handle, and the optional
 * commands with -EOPNOTSUPP when Identify Controller ONCS lacks them.
 * Errors of the device come in the completion: End-to-end Guard (0282h),
 * Application Tag (0283h) and Reference Tag (0284h) Check Error, Compare
 * Failure (0285h), Unrecovered Read Error (0281h); upcie_nvme_error_lba()
 * names the block, upcie_nvme_io_sync() does both.
 */
struct upcie_nvme_io_opts {
	uint32_t opts_size; /**< sizeof(struct upcie_nvme_io_opts) */
	uint32_t flags;	    /**< UPCIE_NVME_RW_FUA | _LR | _PRACT | _PRCHK_* */
	void *md;
	uint32_t reftag;
	uint16_t apptag;
	uint16_t apptag_mask;
	uint32_t reftag_hi; /**< reference tag bits 47:32 (64-bit guard format only) */
};
/** The flags the options take (CDW12 bits 31:26). */
#define UPCIE_NVME_IO_FLAGS                                                                        \
	(UPCIE_NVME_RW_LR | UPCIE_NVME_RW_FUA | UPCIE_NVME_RW_PRACT | UPCIE_NVME_RW_PRCHK_ALL)

/** Bytes of the data buffer, and of the separate metadata buffer (0: none
 * goes through MPTR), for nlb blocks with these option flags. */
size_t upcie_nvme_ns_data_len(const struct upcie_nvme_ns *ns, uint32_t nlb, uint32_t flags);
/**
 * Bytes of the separate metadata buffer for nlb blocks with these option
 * flags (0: none goes through MPTR); see upcie_nvme_ns_data_len().
 */
size_t upcie_nvme_ns_md_len(const struct upcie_nvme_ns *ns, uint32_t nlb, uint32_t flags);
/** The PRCHK bits the namespace's PI takes: all three for types 1 and 2,
 * guard and application tag for type 3 (it has no reference tag the
 * controller checks: PRCHK_REF there is refused), 0 without PI. */
uint32_t upcie_nvme_ns_prchk(const struct upcie_nvme_ns *ns);

/**
 * Submit a Read with options: metadata, protection information, FUA.
 *
 * As upcie_nvme_read(), with the options o (see struct upcie_nvme_io_opts
 * for the metadata buffer, the flags and the tags, and the errors). The
 * data buffer is upcie_nvme_ns_data_len() bytes.
 */
int upcie_nvme_read_ext(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
			uint32_t nlb, void *buf, const struct upcie_nvme_io_opts *o,
			upcie_nvme_cb cb, void *arg, unsigned flags);
/**
 * Submit a Write with options: metadata, protection information, FUA.
 *
 * As upcie_nvme_write(), with the options o (see struct
 * upcie_nvme_io_opts). The data buffer is upcie_nvme_ns_data_len() bytes.
 */
int upcie_nvme_write_ext(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
			 uint32_t nlb, const void *buf, const struct upcie_nvme_io_opts *o,
			 upcie_nvme_cb cb, void *arg, unsigned flags);
/** Compare (ONCS bit 0): buf (and metadata) against the blocks; a mismatch
 * completes with Compare Failure. */
int upcie_nvme_compare(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		       uint32_t nlb, const void *buf, const struct upcie_nvme_io_opts *o,
		       upcie_nvme_cb cb, void *arg, unsigned flags);
/** Verify (ONCS bit 7): read and check the blocks, move no data. */
int upcie_nvme_verify(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		      uint32_t nlb, const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg,
		      unsigned flags);
/** Write Uncorrectable (ONCS bit 1): reads of the blocks fail with
 * Unrecovered Read Error until they are written again. nlb 1..65536. */
int upcie_nvme_write_uncorrectable(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
				   uint64_t slba, uint32_t nlb, upcie_nvme_cb cb, void *arg,
				   unsigned flags);
/**
 * Copy (ONCS bit 8, descriptor format 0): nr source ranges (1..MSRC + 1, in
 * heap memory; nlb 0's based, at most MSSRL blocks each, MCL in all) to
 * consecutive blocks from sdlba. src_chk: the PRCHK bits for the sources,
 * checked against each range's eilbrt, elbat and elbatm, and PRACT, which
 * must be there exactly when o->flags has it (PRINFOR and PRINFOW carry
 * the same PRACT on a namespace with PI); o->flags (PRACT, PRCHK),
 * reftag, apptag and apptag_mask apply to the destination.
 */
int upcie_nvme_copy(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t sdlba,
		    const struct upcie_nvme_copy_range *ranges, uint32_t nr, uint32_t src_chk,
		    const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg,
		    unsigned flags);
/**
 * Copy with a source range descriptor format: as upcie_nvme_copy(), with
 * ranges in format 0 (struct upcie_nvme_copy_range, 32 bytes; namespaces
 * without PI or with the 16-bit guard) or format 1 (struct
 * upcie_nvme_copy_range1, 40 bytes, 48-bit expected reference tags: the
 * 64-bit guard). The format must be in Identify Controller OCFS (else
 * -EOPNOTSUPP) and fit the namespace's PI format (else -EINVAL).
 */
int upcie_nvme_copy_ext(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t sdlba,
			uint32_t format, const void *ranges, uint32_t nr, uint32_t src_chk,
			const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg,
			unsigned flags);
/** Dataset Management (ONCS bit 2): nr (1..256) ranges in heap memory, with
 * attributes UPCIE_NVME_DSM_IDR | _IDW | _AD (at least one). */
int upcie_nvme_dsm(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
		   const struct upcie_nvme_dsm_range *ranges, uint32_t nr, uint32_t attrs,
		   upcie_nvme_cb cb, void *arg, unsigned flags);

/** Where a command failed. */
struct upcie_nvme_io_result {
	uint16_t status;   /**< (SCT << 8) | SC; 0: success */
	uint8_t lba_valid; /**< lba names the first block that failed */
	uint8_t reserved;
	uint32_t reserved2;
	uint64_t lba;
};
/**
 * The LBA of the Error Information log entry (log page 01h) for the
 * completion cqe of queue qid, in *lba. Returns 0, -ENOENT when the log
 * has no entry for it (or no LBA), or the Get Log Page's error. An admin
 * command: not from inside an admin callback.
 */
int upcie_nvme_error_lba(struct upcie_nvme_ctrl *ctrl, uint16_t qid,
			 const struct upcie_nvme_cqe *cqe, uint64_t *lba);
/**
 * Read, Write, Compare or Verify (opc) with options, synchronously. On a
 * device error returns -EIO and fills res: the status and, for the
 * statuses that concern a block (0281h-0285h), its LBA: from the Error
 * Information log, else, for a write or compare with PI checks, by
 * checking the host's own buffer (upcie_nvme_pi_verify). res may be NULL.
 * Other returns as upcie_nvme_read_sync().
 */
int upcie_nvme_io_sync(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
		       uint64_t slba, uint32_t nlb, void *buf, const struct upcie_nvme_io_opts *o,
		       struct upcie_nvme_io_result *res, uint32_t timeout_ms);

/**
 * Format NVM (Base spec 5.23) namespace nsid (UPCIE_NVME_NSID_ALL: all) to
 * LBA format lbaf, metadata extended (1) or separate (0), PI type pi (0..3)
 * in the first (pi_first 1) or last bytes of the metadata; then the
 * namespaces are read again (handles of the old format are fenced: look
 * them up again). Its data is gone. Returns 0, -EOPNOTSUPP (OACS has no
 * Format NVM), -EINVAL, or -EIO with the status in *status.
 */
int upcie_nvme_format(struct upcie_nvme_ctrl *ctrl, uint32_t nsid, uint32_t lbaf, int extended,
		      uint32_t pi, int pi_first, uint16_t *status);

/**
 * Submit any I/O command.
 *
 * Any command: the library sets CID and, when buf is not NULL, PRP1/PRP2
 * for len bytes.
 * @return 0, -EAGAIN (queue full) or -EINVAL.
 */
int upcie_nvme_submit_raw(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe, void *buf,
			  size_t len, upcie_nvme_cb cb, void *arg, unsigned flags);

/** Ring the SQ doorbell for everything queued since the last ring. */
void upcie_nvme_ring(struct upcie_nvme_qpair *qp);

/**
 * Reap completions and call their callbacks.
 *
 * Reap up to max completions (0: as many as are there) and call their
 * callbacks; commands queued without a ring go to the device first.
 * Returns the count, or -ENODEV once the controller is gone and
 * -ENOTRECOVERABLE while it is failed (CFS without a reset, or a reset
 * that did not work); upcie_errmsg() says which. Outstanding commands then
 * complete with a host status as soon as the device can no longer touch
 * their buffers.
 * Called from the qpair's owner thread (one thread at a time per qpair).
 * @param qp the queue pair
 * @param max most completions to reap; 0: all there are
 */
int upcie_nvme_poll(struct upcie_nvme_qpair *qp, uint32_t max);

/**
 * Read and wait.
 *
 * Synchronous helpers: submit, ring, poll until done or timeout_ms (0: 30 s).
 * Return 0, -EIO (status in *status), -ETIMEDOUT, or a submit error.
 * On timeout the request stays owned by the qpair and is freed when the
 * completion arrives or the qpair is destroyed. The command may still be
 * running on the device: keep buf until then (a late read still lands in
 * it).
 */
int upcie_nvme_read_sync(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
			 uint32_t nlb, void *buf, uint16_t *status, uint32_t timeout_ms);
/**
 * Write and wait.
 *
 * As upcie_nvme_read_sync(): 0, -EIO (status in *status), -ETIMEDOUT, or a
 * submit error; after a timeout keep buf until the command completed or
 * the qpair is destroyed.
 */
int upcie_nvme_write_sync(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			  uint64_t slba, uint32_t nlb, const void *buf, uint16_t *status,
			  uint32_t timeout_ms);
/**
 * Any I/O command, and wait.
 *
 * As upcie_nvme_submit_raw() then upcie_nvme_read_sync(); cqe (may be
 * NULL) receives the completion. Returns 0, -EIO, -ETIMEDOUT, or a submit
 * error.
 */
int upcie_nvme_raw_sync(struct upcie_nvme_qpair *qp, const struct upcie_nvme_sqe *sqe, void *buf,
			size_t len, struct upcie_nvme_cqe *cqe, uint32_t timeout_ms);

/**
 * Sleep until completions come (interrupts, or hybrid).
 *
 * Waiting for completions (queues created with irq = 1; see also the
 * interrupt section of pci.h): reap what is there; if nothing, (hybrid:
 * poll for spin_us after the last completion), arm, sleep until an
 * interrupt or timeout_ms, reap again. timeout_ms 0 does not sleep;
 * UINT32_MAX has no limit. While commands are outstanding a sleep lasts at
 * most the controller's health_ms, so command timeouts, health checks and a
 * device that is gone are noticed as when polling; a reset (from any
 * thread) and a device removal (vfio's request interrupt; sim) wake the
 * sleeper at once. On a queue without interrupts it polls until a
 * completion or the timeout. One thread at a time per qpair, as for poll.
 * @return completions reaped (callbacks ran), 0 when timeout_ms passed with
 * none, or a negative errno as upcie_nvme_poll() does.
 */
int upcie_nvme_qpair_wait(struct upcie_nvme_qpair *qp, uint32_t timeout_ms);
/**
 * Arm a queue's interrupt, for an engine's own event loop.
 *
 * Acknowledge the interrupt, publish the CQ head, then reap.
 *
 * No lost wake-up: arm acknowledges first and looks at the CQ after; the
 * device writes an entry before it signals, so an entry the look misses
 * signals after the acknowledgement and the fd is readable.
 * One thread at a time per qpair, as for poll.
 * @return completions reaped: 0 means armed, and upcie_nvme_qpair_fd()
 * turns readable at the next completion, a reset or a removal; > 0: handle
 * them and call it again before sleeping; < 0: an error as from poll.
 */
int upcie_nvme_qpair_arm(struct upcie_nvme_qpair *qp);
/**
 * An fd for poll/epoll/io_uring that turns readable when the queue needs reaping.
 *
 * An fd (epoll), owned by the qpair; see upcie_nvme_qpair_arm().
 * @return the fd, or -EINVAL on a queue without interrupts.
 */
int upcie_nvme_qpair_fd(const struct upcie_nvme_qpair *qp);

/** Counters of upcie_nvme_qpair_wait() (upcie_nvme_qpair_wait_stats()). */
struct upcie_nvme_qpair_wait_stats {
	uint64_t waits;	      /**< upcie_nvme_qpair_wait() calls */
	uint64_t sleeps;      /**< sleeps in the kernel (epoll_wait) */
	uint64_t wakeups;     /**< sleeps ended by an interrupt, a reset or a removal */
	uint64_t empty;	      /**< wake-ups that found nothing to reap */
	uint64_t spin_hits;   /**< waits answered while spinning (hybrid) */
	uint64_t reserved[3]; /**< zeroed: room for fields of later releases */
};
/** The wait counters of a queue pair, into st. */
void upcie_nvme_qpair_wait_stats(const struct upcie_nvme_qpair *qp,
				 struct upcie_nvme_qpair_wait_stats *st);

/**
 * PRP1/PRP2 and PRP lists for a heap buffer.
 *
 * PRP construction (Base spec 4.1.1): fill prp1/prp2 for len bytes at buf.
 * When a list is needed its entries go to 'list' (heap memory, 8-byte
 * aligned, list_entries slots); when a list page fills up and entries
 * remain, its last slot chains to the next page of 'list'.
 * Exposed for tests and for engines that build their own SQEs.
 * Returns 0 or -EINVAL (outside the heap, not dword aligned, len 0, list
 * too small).
 */
int upcie_nvme_prp_setup(const struct upcie_dma_heap *heap, uint32_t page_size, const void *buf,
			 size_t len, uint64_t *prp1, uint64_t *prp2, uint64_t *list,
			 uint32_t list_entries);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_NVME_H */
