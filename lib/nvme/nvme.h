/* SPDX-License-Identifier: BSD-3-Clause */
/* NVMe driver internals: controller and queue pair layouts. */
#ifndef UPCIE_LIB_NVME_PRIV_H
#define UPCIE_LIB_NVME_PRIV_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <upcie/nvme.h>

#include "compiler.h"
#include "dma/heap.h"

/* Largest transfer when the controller reports MDTS 0 (no limit). */
#define UPCIE_NVME_MAX_XFER_NOLIMIT (1u << 20)
/* Largest transfer the driver issues even when MDTS allows more. */
#define UPCIE_NVME_MAX_XFER_CAP (8u << 20)
/* Largest admin transfer (Get Log Page of big logs); MDTS still applies. */
#define UPCIE_NVME_ADMIN_MAX_XFER (256u << 10)

/* Per-command state, indexed by CID. One cache line. */
struct upcie_nvme_req {
	upcie_nvme_cb cb;
	void *arg;
	uint8_t busy;
	uint8_t abandoned; /* a sync wait gave up; the completion is dropped */
} __attribute__((aligned(32)));

struct upcie_nvme_qpair {
	/* Submission side (hot). */
	struct upcie_nvme_sqe *sq;
	volatile uint32_t *sq_db;
	uint16_t sq_tail;
	uint16_t sq_rung; /* tail value last published to the device */
	uint16_t depth;	  /* entries in each queue */
	uint16_t nfree;
	uint16_t *free_cids;
	struct upcie_nvme_req *reqs;
	uint64_t *prp_lists;
	uint32_t prp_slot_entries; /* list entries each CID owns */
	uint32_t page_size;
	uint32_t max_xfer;
	const struct upcie_dma_heap *heap;

	/* Completion side (hot). */
	struct upcie_nvme_cqe *cq;
	volatile uint32_t *cq_db;
	uint16_t cq_head;
	uint16_t cq_rung; /* head value last published to the device */
	uint16_t phase;

	/* Shadow doorbells (Doorbell Buffer Config), NULL when unused. */
	volatile uint32_t *shadow_sq, *shadow_cq;
	volatile uint32_t *eventidx_sq, *eventidx_cq;

	struct upcie_nvme_qpair_stats stats;

	/* Cold. */
	struct upcie_nvme_ctrl *ctrl;
	uint16_t qid;
	size_t mem_bytes;
	struct upcie_nvme_qpair *next; /* controller's list of I/O qpairs */
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
	uint32_t admin_timeout_ms;
	uint32_t page_size;
	uint32_t max_xfer;
	bool enabled;
	bool admin_broken; /* an admin command timed out: only close is safe */

	pthread_mutex_t admin_lock;
	struct upcie_nvme_qpair *admin;
	void *admin_buf; /* 4 KiB for internal admin data */

	struct upcie_nvme_id_ctrl *id;
	uint16_t io_sq_granted, io_cq_granted;
	uint8_t *qid_used; /* [1..granted] */
	struct upcie_nvme_qpair *qpairs;
	struct upcie_nvme_qpair *zombies; /* destroyed, but the device may still use them */

	void *dbbuf_shadow, *dbbuf_eventidx; /* one page each, when in use */

	struct upcie_nvme_ns *ns;
	struct upcie_nvme_id_ns *ns_id;
	uint32_t nr_ns;
};

/* nvme_qpair.c */
HIDDEN struct upcie_nvme_qpair *upcie_nvme_qpair_alloc(struct upcie_nvme_ctrl *ctrl, uint16_t qid,
						       uint32_t depth, uint32_t max_xfer);
HIDDEN void upcie_nvme_qpair_free(struct upcie_nvme_qpair *qp, bool keep_dma);
HIDDEN void upcie_nvme_qpair_abort_all(struct upcie_nvme_qpair *qp);
HIDDEN int upcie_nvme_qpair_submit_sqe(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				       const void *buf, size_t len, upcie_nvme_cb cb, void *arg,
				       unsigned flags, uint16_t *cid);

/* Claim the CID on top of the free stack for (cb, arg); nfree > 0. */
static inline uint16_t upcie_nvme_qpair_claim(struct upcie_nvme_qpair *qp, upcie_nvme_cb cb,
					      void *arg)
{
	uint16_t cid = qp->free_cids[--qp->nfree];
	struct upcie_nvme_req *req = &qp->reqs[cid];

	req->cb = cb;
	req->arg = arg;
	req->busy = 1;
	req->abandoned = 0;
	return cid;
}

/* The SQE at the tail is written: move the tail; ring now if asked. */
static inline void upcie_nvme_qpair_push(struct upcie_nvme_qpair *qp, unsigned flags)
{
	qp->sq_tail = (uint16_t)(qp->sq_tail + 1 == qp->depth ? 0 : qp->sq_tail + 1);
	qp->stats.submitted++;
	if (flags & UPCIE_NVME_SUBMIT_RING)
		upcie_nvme_ring(qp);
}

/*
 * Fast path of upcie_nvme_read/_write: inlined into them, so a read or
 * write is one call from the application. Same checks and results as
 * upcie_nvme_qpair_submit_sqe() + upcie_nvme_prp_setup(), but the PRPs of
 * a transfer that spans at most two memory pages are computed here, and
 * the SQE is written straight into its SQ slot (no stack copy).
 */
static inline __attribute__((always_inline)) int
upcie_nvme_qpair_rw(struct upcie_nvme_qpair *qp, uint8_t opc, uint32_t nsid, uint64_t slba,
		    uint32_t nlb, const void *buf, size_t len, upcie_nvme_cb cb, void *arg,
		    unsigned flags)
{
	const struct upcie_dma_heap *h = qp->heap;
	const uint64_t pmask = qp->page_size - 1;
	uintptr_t off = (uintptr_t)buf - (uintptr_t)h->va;
	struct upcie_nvme_sqe *sqe;
	uint64_t prp1, prp2 = 0, first;
	uint16_t cid;

	if (unlikely(!qp->nfree))
		return -EAGAIN;
	/* The whole buffer inside the heap (len >= 1), PRP1 dword aligned. */
	if (unlikely(len > qp->max_xfer || off >= h->len || len > h->len - off))
		return -EINVAL;
	prp1 = upcie_dma_bus_at(h, off);
	if (unlikely(prp1 & 3))
		return -EINVAL;
	cid = qp->free_cids[qp->nfree - 1];
	first = qp->page_size - (prp1 & pmask);
	if (len > first) {
		if (len - first <= qp->page_size) {
			prp2 = upcie_dma_bus_at(h, off + first);
		} else {
			int rc =
			    upcie_nvme_prp_setup(h, qp->page_size, buf, len, &prp1, &prp2,
						 qp->prp_lists + (size_t)cid * qp->prp_slot_entries,
						 qp->prp_slot_entries);
			if (unlikely(rc))
				return rc;
		}
	}
	upcie_nvme_qpair_claim(qp, cb, arg);
	sqe = &qp->sq[qp->sq_tail];
	sqe->opc = opc;
	sqe->flags = 0;
	sqe->cid = cid;
	sqe->nsid = nsid;
	sqe->cdw2 = 0;
	sqe->cdw3 = 0;
	sqe->mptr = 0;
	sqe->prp1 = prp1;
	sqe->prp2 = prp2;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = nlb - 1; /* NLB is 0's based */
	sqe->cdw13 = 0;
	sqe->cdw14 = 0;
	sqe->cdw15 = 0;
	upcie_nvme_qpair_push(qp, flags);
	return 0;
}

/* nvme_ctrl.c */
HIDDEN int upcie_nvme_ctrl_check_csts(struct upcie_nvme_ctrl *ctrl, const char *what);
HIDDEN uint64_t upcie_now_ms(void);

/* nvme_admin.c */
HIDDEN int upcie_nvme_admin_locked(struct upcie_nvme_ctrl *ctrl, struct upcie_nvme_sqe *sqe,
				   void *buf, size_t len, struct upcie_nvme_cqe *cqe,
				   uint32_t timeout_ms);
HIDDEN int upcie_nvme_scan_namespaces(struct upcie_nvme_ctrl *ctrl);
HIDDEN int upcie_nvme_setup_dbbuf(struct upcie_nvme_ctrl *ctrl);

#endif
