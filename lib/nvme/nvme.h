/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The controller layer's internals, on top of the queue layer (queue.h):
 * the controller object, its state machine, and the calls between the
 * admin, controller, recovery and qpair files.
 *
 *   state.c    lifecycle: controller and queue states and their one writer;
 *              fence, reset, a queue's recovery, zombies (state.h)
 *   admin.c    admin commands on the admin queue (sync and async), events
 *   ns.c       the namespace table: scan, publish, fence stale handles, lookups
 *   ctrl.c     bring-up in named steps, shutdown, close, accessors
 *   health.c   health checks, timeouts (Abort), the queues' slow hooks
 *   qpair.c    I/O queue pairs: create and delete on the device
 *   io.c       NVM commands and the synchronous helpers
 */
#ifndef UPCIE_LIB_NVME_NVME_H
#define UPCIE_LIB_NVME_NVME_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <upcie/nvme.h>

#include "core/compiler.h"
#include "nvme/queue.h"
#include "nvme/state.h"

/* Largest transfer when the controller reports MDTS 0 (no limit). */
#define UPCIE_NVME_MAX_XFER_NOLIMIT (1u << 20)
/* Largest transfer the driver issues even when MDTS allows more. */
#define UPCIE_NVME_MAX_XFER_CAP (8u << 20)
/* Largest admin transfer (Get Log Page of big logs); MDTS still applies. */
#define UPCIE_NVME_ADMIN_MAX_XFER (256u << 10)
/* Asynchronous Event Requests kept outstanding (at most AERL + 1). */
#define UPCIE_NVME_AER_MAX 2

struct upcie_nvme_aer_slot {
	struct upcie_nvme_ctrl *ctrl;
	bool armed;
};

struct upcie_nvme_ctrl {
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	volatile void *regs;
	size_t regs_len;
	uint64_t cap;
	uint32_t vs;
	uint32_t dstrd;
	uint32_t timeout_ms; /* CAP.TO * 500 */
	uint32_t page_size;
	uint32_t max_xfer;
	uint32_t admin_depth;
	struct upcie_nvme_ctrl_opts opts;
	bool enabled;
	bool up; /* bring-up finished (events may be handled) */

	/* Lifecycle (state.h): written by state.c under admin_lock only,
	 * read anywhere (atomically where the lock is not held). */
	uint32_t gen;
	int state;
	bool in_bringup; /* a reset's bring-up runs: its admin commands may go */
	uint64_t resets;
	uint64_t health_checks;

	pthread_mutex_t admin_lock;
	/* Set by the controller layer: an admin command was lost (timeout or
	 * CFS while waiting); admin lock held. The admin layer calls up only
	 * through this. */
	void (*admin_lost)(struct upcie_nvme_ctrl *ctrl, const char *why);
	struct upcie_nvme_qpair *admin;
	void *admin_buf; /* 4 KiB for internal admin data */

	/* Asynchronous events. */
	struct upcie_nvme_aer_slot aer[UPCIE_NVME_AER_MAX];
	upcie_nvme_event_cb event_cb;
	void *event_arg;
	/* Events seen, delivered once the namespace list was read again. */
	struct upcie_nvme_event ev_pending[UPCIE_NVME_AER_MAX];
	uint32_t nr_ev_pending;
	bool ns_changed;
	bool in_events; /* re-scanning: no nested event handling */

	struct upcie_nvme_id_ctrl *id;
	uint16_t io_sq_granted, io_cq_granted;
	uint8_t *qid_used; /* [1..granted] */
	struct upcie_nvme_qpair *qpairs;
	struct upcie_nvme_qpair *zombies; /* destroyed, but the device may still use them */

	/* Shadow doorbells: one page each, allocated once and kept until close
	 * (queues point into them); dbbuf_on: the device was given them by
	 * the last bring-up. */
	void *dbbuf_shadow, *dbbuf_eventidx;
	bool dbbuf_on;

	/* The namespace table, swapped whole by a re-scan (ns.c); readers
	 * load it with upcie_nvme_nstab(). Earlier tables stay until close. */
	struct upcie_nvme_ns_table *nstab;

	/* Interrupts (irq.c): enabled on the first interrupt queue. */
	pthread_mutex_t irq_lock;
	int irq_kind;	       /* enum upcie_pci_irq_kind */
	unsigned irq_nvec;     /* vectors enabled, 0 before */
	uint8_t *vec_used;     /* [irq_nvec]: taken by a queue (0: admin's) */
	bool irq_enabled_here; /* this controller enabled them: close disables */
};

/* irq.c */
/* Vector, listener and epoll of a new qpair when opts->irq; 0 otherwise. */
HIDDEN int upcie_nvme_irq_setup(struct upcie_nvme_qpair *qp,
				const struct upcie_nvme_qpair_opts *opts);
/* Before the qpair is freed: its fds and vector. */
HIDDEN void upcie_nvme_irq_free(struct upcie_nvme_qpair *qp);
/* Wake the qpair's sleeper (its state changed). */
HIDDEN void upcie_nvme_irq_wake(struct upcie_nvme_qpair *qp);
/* Bring-up step: interrupt coalescing from the options. */
HIDDEN int upcie_nvme_irq_coalescing(struct upcie_nvme_ctrl *ctrl);
HIDDEN void upcie_nvme_irq_ctrl_free(struct upcie_nvme_ctrl *ctrl);

/* io.c: submit one command, ring, wait for it (bounded; a command that
 * outlives the wait goes through the timeout path). */
HIDDEN int upcie_nvme_sync_submit_wait(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				       const void *buf, size_t len, struct upcie_nvme_cqe *cqe,
				       uint32_t timeout_ms);
struct upcie_nvme_md_buf;
/* The same for a command of upcie_nvme_blocks_prepare, with its metadata. */
HIDDEN int upcie_nvme_sync_submit_wait_md(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
					  const void *buf, size_t len,
					  const struct upcie_nvme_md_buf *md,
					  struct upcie_nvme_cqe *cqe, uint32_t timeout_ms);

/* The separate metadata buffer of a command, as blocks_prepare found it:
 * sgl set when it goes through a metadata SGL (PSDT 10b, sgl.c). */
struct upcie_nvme_md_buf {
	const void *va;
	size_t len;
	bool sgl;
};

/* nvm.c: check a Read, Write, Compare or Verify with options and build
 * its SQE; *len gets the data buffer's bytes (0: none), *md the metadata
 * buffer (va NULL: none). */
HIDDEN int upcie_nvme_blocks_prepare(const struct upcie_nvme_qpair *qp, uint8_t opc,
				     const struct upcie_nvme_ns *ns, uint64_t slba, uint32_t nlb,
				     const void *buf, const struct upcie_nvme_io_opts *o,
				     struct upcie_nvme_sqe *sqe, size_t *len,
				     struct upcie_nvme_md_buf *md);

/* nvm.c: a command blocks_prepare built (buf, len its data), submitted:
 * through upcie_nvme_queue_submit, or with its metadata SGL. */
HIDDEN int upcie_nvme_blocks_submit(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				    const void *buf, size_t len, const struct upcie_nvme_md_buf *md,
				    upcie_nvme_cb cb, void *arg, unsigned flags, uint16_t *cid);

/* sgl.c: metadata SGLs (PSDT 10b). The descriptors one command needs at
 * most for max_xfer bytes of data and as much metadata; and the submit
 * that builds the data SGL and the metadata SGL in the command's slot of
 * the queue's list memory. */
HIDDEN uint32_t upcie_nvme_md_sgl_descs(uint32_t max_xfer);
HIDDEN int upcie_nvme_queue_submit_md_sgl(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
					  const void *buf, size_t len,
					  const struct upcie_nvme_md_buf *md, upcie_nvme_cb cb,
					  void *arg, unsigned flags, uint16_t *cid);

/* pi.c: the PI format of a namespace with PI: 8 bytes (16-bit guard), 16
 * (64-bit guard), 0 for a format the library does not do (32-bit guard,
 * storage tags); and the first reference tag of the options (48 bits with
 * the 64-bit guard; reftag_hi reads as 0 for callers with the older,
 * smaller options). */
HIDDEN unsigned upcie_nvme_pi_size(const struct upcie_nvme_ns *ns);
HIDDEN uint64_t upcie_nvme_opts_reftag(const struct upcie_nvme_io_opts *o);
/* The options with the first reference tag moved on by n blocks (type 3:
 * not moved), carrying into reftag_hi with 48-bit tags. */
HIDDEN void upcie_nvme_opts_reftag_add(const struct upcie_nvme_ns *ns, struct upcie_nvme_io_opts *o,
				       uint32_t n);
/* The size the options had before reftag_hi. */
#define UPCIE_NVME_IO_OPTS_SIZE_V1 24u
/* *dst = *o, reading no more than o->opts_size bytes of it (the rest 0);
 * dst->opts_size becomes the full size. */
HIDDEN void upcie_nvme_opts_copy(struct upcie_nvme_io_opts *dst,
				 const struct upcie_nvme_io_opts *o);

/* ctrl.c */
HIDDEN int upcie_nvme_ctrl_check_csts(struct upcie_nvme_ctrl *ctrl, const char *what);
HIDDEN int upcie_nvme_ctrl_disable(struct upcie_nvme_ctrl *ctrl, bool wait_enable);
HIDDEN int upcie_nvme_ctrl_bringup(struct upcie_nvme_ctrl *ctrl, bool again);

/* admin.c */
HIDDEN int upcie_nvme_admin_locked(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_sqe *sqe,
				   void *buf, size_t len, struct upcie_nvme_cqe *cqe,
				   uint32_t timeout_ms);
HIDDEN int upcie_nvme_setup_dbbuf(struct upcie_nvme_ctrl *ctrl);
HIDDEN void upcie_nvme_aer_arm(struct upcie_nvme_ctrl *ctrl);
HIDDEN void upcie_nvme_admin_events(struct upcie_nvme_ctrl *ctrl);
/* The request is one of the library's Asynchronous Event Requests (they
 * stay outstanding until an event: no timeout applies). */
HIDDEN bool upcie_nvme_admin_is_event(const struct upcie_nvme_req *req);

/* ns.c */
HIDDEN int upcie_nvme_scan_namespaces(struct upcie_nvme_ctrl *ctrl);
HIDDEN void upcie_nvme_ns_free(struct upcie_nvme_ctrl *ctrl);

/* A namespace table: nr namespaces in ascending nsid order, their
 * Identify data, and the table it replaced. */
struct upcie_nvme_ns_table {
	uint32_t nr;
	struct upcie_nvme_ns *ns;
	struct upcie_nvme_id_ns *id;
	struct upcie_nvme_ns_table *prev;
};

/* A handle fenced by a re-scan (ns.c): its namespace is gone or changed
 * format. Every call that takes a handle refuses it with this error. */
static inline bool upcie_nvme_ns_stale(const struct upcie_nvme_ns *ns)
{
	return !__atomic_load_n(&ns->nsze, __ATOMIC_ACQUIRE);
}
HIDDEN int upcie_nvme_ns_stale_err(const struct upcie_nvme_ns *ns);

static inline const struct upcie_nvme_ns_table *upcie_nvme_nstab(const struct upcie_nvme_ctrl *c)
{
	return __atomic_load_n(&c->nstab, __ATOMIC_ACQUIRE);
}

/* health.c */
HIDDEN int upcie_nvme_queue_owner_slow(struct upcie_nvme_qpair *qp, bool tick);
HIDDEN int upcie_nvme_admin_slow(struct upcie_nvme_qpair *qp, bool tick);
/* The command in slot outlived its timeout. */
HIDDEN int upcie_nvme_expire(struct upcie_nvme_qpair *qp, uint32_t slot);

/* qpair.c: Create I/O CQ, then SQ, for a queue whose host side is fresh
 * (lock held by the caller across it). -EIO: refused, nothing on the
 * device; -EBUSY: a CQ was left behind; others: unknown. */
HIDDEN int upcie_nvme_qpair_create_on_device(struct upcie_nvme_qpair *qp);

#endif
