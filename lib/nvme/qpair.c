/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Queue pairs: memory layout, submission, doorbells, polled completion.
 *
 * The hot path (submit, ring, poll) does no MMIO reads, no syscalls, no
 * locking and no allocation. A command identifier indexes the request
 * table and the PRP-list slot it owns; a CID free stack of depth - 1
 * entries bounds the outstanding commands, so neither the SQ nor the CQ
 * can overflow and "queue full" is simply "no free CID".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "log.h"
#include "nvme/nvme.h"

static uint32_t next_pow2(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

/* Entries one CID's PRP list needs for max_xfer bytes, with chain slots. */
static uint32_t prp_slot_entries(uint32_t max_xfer, uint32_t page_size)
{
	uint32_t per_page = page_size / 8;
	uint32_t data = max_xfer / page_size; /* pages after the first, worst case */
	uint32_t pages;

	if (data <= 1)
		return 0; /* PRP1 + PRP2 suffice */
	if (data <= per_page)
		return next_pow2(data) < 8 ? 8 : next_pow2(data);
	/* Every full list page gives one slot to the chain pointer. */
	pages = (data - 1 + (per_page - 2)) / (per_page - 1);
	return pages * per_page;
}

struct upcie_nvme_qpair *upcie_nvme_qpair_alloc(struct upcie_nvme_ctrl *ctrl, uint16_t qid,
						uint32_t depth, uint32_t max_xfer)
{
	struct upcie_nvme_qpair *qp;
	size_t sq_bytes, cq_bytes, prp_bytes;

	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return upcie_err_null(-ENOMEM, "out of memory for a queue pair");
	qp->ctrl = ctrl;
	qp->qid = qid;
	qp->depth = (uint16_t)depth;
	qp->page_size = ctrl->page_size;
	qp->max_xfer = max_xfer;
	qp->heap = ctrl->heap;
	qp->phase = 1;

	sq_bytes = (size_t)depth * sizeof(struct upcie_nvme_sqe);
	cq_bytes = (size_t)depth * sizeof(struct upcie_nvme_cqe);
	qp->prp_slot_entries = prp_slot_entries(max_xfer, ctrl->page_size);
	prp_bytes = (size_t)depth * qp->prp_slot_entries * 8;

	/* Queues must be physically contiguous (created with PC=1) and page aligned. */
	qp->sq = upcie_dma_alloc(ctrl->heap, sq_bytes, ctrl->page_size);
	qp->cq = upcie_dma_alloc(ctrl->heap, cq_bytes, ctrl->page_size);
	/* Slots are sized assuming each starts on a controller page boundary. */
	if (prp_bytes)
		qp->prp_lists =
		    upcie_dma_alloc_pages_aligned(ctrl->heap, prp_bytes, ctrl->page_size);
	qp->reqs = calloc(depth, sizeof(*qp->reqs));
	qp->free_cids = calloc(depth, sizeof(*qp->free_cids));
	if (!qp->sq || !qp->cq || (prp_bytes && !qp->prp_lists) || !qp->reqs || !qp->free_cids) {
		upcie_nvme_qpair_free(qp, false);
		return upcie_err_null(-ENOMEM,
				      "cannot allocate a %u-entry queue pair (%zu bytes of DMA "
				      "memory); use a larger heap or a smaller depth",
				      depth, sq_bytes + cq_bytes + prp_bytes);
	}
	memset(qp->sq, 0, sq_bytes);
	memset(qp->cq, 0, cq_bytes);
	qp->mem_bytes = sq_bytes + cq_bytes + prp_bytes;

	/* depth - 1 CIDs: one SQ slot always stays empty (full = tail + 1 == head). */
	for (uint32_t i = depth - 1; i > 0; i--)
		qp->free_cids[qp->nfree++] = (uint16_t)(i - 1);

	qp->sq_db = (volatile uint32_t *)((volatile char *)ctrl->regs +
					  upcie_nvme_sq_db_off(qid, ctrl->dstrd));
	qp->cq_db = (volatile uint32_t *)((volatile char *)ctrl->regs +
					  upcie_nvme_cq_db_off(qid, ctrl->dstrd));
	return qp;
}

/* keep_dma: the device may still use the queues; leave their memory allocated. */
void upcie_nvme_qpair_free(struct upcie_nvme_qpair *qp, bool keep_dma)
{
	struct upcie_dma_heap *heap;

	if (!qp)
		return;
	heap = qp->ctrl->heap;
	if (!keep_dma) {
		upcie_dma_free(heap, qp->sq);
		upcie_dma_free(heap, qp->cq);
		upcie_dma_free(heap, qp->prp_lists);
	}
	free(qp->reqs);
	free(qp->free_cids);
	free(qp);
}

/*
 * Shadow doorbell check (Base spec 5.8, Doorbell Buffer Config): the
 * device asks for an MMIO write only when the new value passes its
 * EventIdx, i.e. when event_idx lies in [old, new).
 */
static inline bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

static inline bool db_update(volatile uint32_t *db, volatile uint32_t *shadow,
			     volatile uint32_t *eventidx, uint16_t old, uint16_t new_idx)
{
	if (shadow) {
		/* The SQEs (or consumed CQ slots) before the shadow value: the
		 * device may read the shadow at any time, without a doorbell. */
		upcie_wmb();
		*shadow = new_idx;
		/* The shadow value must be globally visible before EventIdx is read,
		 * else the device may miss it while we skip the MMIO write. */
		upcie_mb();
		if (!need_event((uint16_t)*eventidx, new_idx, old))
			return false;
	} else {
		/* The SQEs (or the CQ slots we consumed) must be visible before the
		 * device sees the new doorbell value. */
		upcie_wmb();
	}
	*db = new_idx;
	return true;
}

void upcie_nvme_ring(struct upcie_nvme_qpair *qp)
{
	uint16_t tail = qp->sq_tail;

	if (tail == qp->sq_rung)
		return;
	if (db_update(qp->sq_db, qp->shadow_sq, qp->eventidx_sq, qp->sq_rung, tail))
		qp->stats.sq_doorbells++;
	else
		qp->stats.shadow_sq++;
	qp->sq_rung = tail;
}

/* Post one SQE: take a CID, build PRPs, copy into the SQ. Doorbell per flags. */
int upcie_nvme_qpair_submit_sqe(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				const void *buf, size_t len, upcie_nvme_cb cb, void *arg,
				unsigned flags, uint16_t *cidp)
{
	uint16_t cid;
	int rc;

	if (unlikely(!qp->nfree))
		return -EAGAIN;
	cid = qp->free_cids[qp->nfree - 1];
	if (buf) {
		if (unlikely(len > qp->max_xfer))
			return -EINVAL;
		rc = upcie_nvme_prp_setup(qp->heap, qp->page_size, buf, len, &sqe->prp1, &sqe->prp2,
					  qp->prp_lists + (size_t)cid * qp->prp_slot_entries,
					  qp->prp_slot_entries);
		if (unlikely(rc))
			return rc;
	}
	upcie_nvme_qpair_claim(qp, cb, arg);
	sqe->cid = cid;
	qp->sq[qp->sq_tail] = *sqe;
	if (cidp)
		*cidp = cid;
	upcie_nvme_qpair_push(qp, flags);
	return 0;
}

int upcie_nvme_poll(struct upcie_nvme_qpair *qp, uint32_t max)
{
	uint32_t n = 0;

	if (!max)
		max = qp->depth;
	while (n < max) {
		/* The entry as two aligned quadwords: dw0/dw1, then sqhd/sqid/cid/status. */
		volatile uint64_t *slot = (volatile uint64_t *)&qp->cq[qp->cq_head];
		struct upcie_nvme_cqe cqe;
		struct upcie_nvme_req *req;
		uint64_t q[2];

		if ((uint16_t)(slot[1] >> 48 & 1) != qp->phase)
			break;
		/* The device writes the status word (with the phase) last: read the
		 * entry, the quadword with the phase included, again only after
		 * seeing the new phase. */
		upcie_rmb();
		q[0] = slot[0];
		q[1] = slot[1];
		memcpy(&cqe, q, sizeof(cqe));
		if (++qp->cq_head == qp->depth) {
			qp->cq_head = 0;
			qp->phase ^= 1;
		}
		n++;
		if (unlikely(cqe.cid >= qp->depth || !qp->reqs[cqe.cid].busy)) {
			upcie_log(UPCIE_LOG_ERROR,
				  "qpair %u: completion for unknown CID %u dropped", qp->qid,
				  cqe.cid);
			continue;
		}
		req = &qp->reqs[cqe.cid];
		req->busy = 0;
		qp->free_cids[qp->nfree++] = cqe.cid;
		qp->stats.completed++;
		/* The slot is free before the callback runs, so it may resubmit. */
		if (likely(!req->abandoned) && req->cb)
			req->cb(req->arg, &cqe);
	}
	if (n) {
		if (db_update(qp->cq_db, qp->shadow_cq, qp->eventidx_cq, qp->cq_rung, qp->cq_head))
			qp->stats.cq_doorbells++;
		else
			qp->stats.shadow_cq++;
		qp->cq_rung = qp->cq_head;
	}
	return (int)n;
}

/* Complete every outstanding request with "aborted due to SQ deletion". */
void upcie_nvme_qpair_abort_all(struct upcie_nvme_qpair *qp)
{
	for (uint16_t cid = 0; cid < qp->depth; cid++) {
		struct upcie_nvme_req *req = &qp->reqs[cid];
		struct upcie_nvme_cqe cqe = {0};

		if (!req->busy)
			continue;
		req->busy = 0;
		qp->free_cids[qp->nfree++] = cid;
		if (req->abandoned || !req->cb)
			continue;
		cqe.cid = cid;
		cqe.sqid = qp->qid;
		cqe.status = upcie_nvme_status_field(UPCIE_NVME_SC_ABORT_SQ_DELETED, 1, 0);
		req->cb(req->arg, &cqe);
	}
}

static int alloc_qid(struct upcie_nvme_ctrl *ctrl)
{
	uint16_t max =
	    ctrl->io_sq_granted < ctrl->io_cq_granted ? ctrl->io_sq_granted : ctrl->io_cq_granted;
	for (uint32_t q = 1; q <= max; q++) {
		if (!ctrl->qid_used[q]) {
			ctrl->qid_used[q] = 1;
			return (int)q;
		}
	}
	return upcie_err(-ENOSPC,
			 "all %u I/O queue pairs the controller granted are in use; destroy "
			 "one first",
			 max);
}

static int delete_queue(struct upcie_nvme_ctrl *ctrl, uint8_t opc, uint16_t qid)
{
	struct upcie_nvme_sqe sqe = {.opc = opc, .cdw10 = qid};

	return upcie_nvme_admin(ctrl, &sqe, NULL, 0, NULL, 0);
}

struct upcie_nvme_qpair *upcie_nvme_qpair_create(struct upcie_nvme_ctrl *ctrl,
						 const struct upcie_nvme_qpair_opts *opts)
{
	uint32_t depth = opts && opts->depth ? opts->depth : 128;
	uint32_t mqes = upcie_nvme_cap_mqes(ctrl->cap) + 1;
	struct upcie_nvme_qpair *qp;
	struct upcie_nvme_cqe cqe;
	struct upcie_nvme_sqe sqe;
	int qid, rc;

	if (!ctrl)
		return upcie_err_null(-EINVAL, "upcie_nvme_qpair_create: no controller");
	if (depth < 2)
		return upcie_err_null(-EINVAL, "queue depth %u is too small (at least 2)", depth);
	if (depth > mqes) {
		upcie_info("queue depth %u clamped to the controller's MQES + 1 = %u", depth, mqes);
		depth = mqes;
	}
	if (depth > 65536 - 1)
		depth = 65535;

	pthread_mutex_lock(&ctrl->admin_lock);
	qid = alloc_qid(ctrl);
	pthread_mutex_unlock(&ctrl->admin_lock);
	if (qid < 0) {
		errno = -qid;
		return NULL;
	}
	/* A doorbell beyond the mapped BAR would fault instead of failing. */
	if (upcie_nvme_cq_db_off((uint32_t)qid, ctrl->dstrd) + 4 > ctrl->regs_len) {
		rc = upcie_err(-ENODEV, "queue %d's doorbells lie beyond BAR0 (%zu bytes)", qid,
			       ctrl->regs_len);
		goto err_qid;
	}
	qp = upcie_nvme_qpair_alloc(ctrl, (uint16_t)qid, depth, ctrl->max_xfer);
	if (!qp) {
		rc = -errno;
		goto err_qid;
	}

	/* Shadow slots sit at the doorbells' offsets within one page; a queue
	 * whose slots fall beyond it (wide stride) keeps MMIO doorbells. */
	uint32_t sq_off = (upcie_nvme_sq_db_off((uint32_t)qid, ctrl->dstrd) - 0x1000) / 4;
	uint32_t cq_off = (upcie_nvme_cq_db_off((uint32_t)qid, ctrl->dstrd) - 0x1000) / 4;
	if (ctrl->dbbuf_shadow && (cq_off + 1) * 4 <= ctrl->page_size) {
		qp->shadow_sq = (volatile uint32_t *)ctrl->dbbuf_shadow + sq_off;
		qp->shadow_cq = (volatile uint32_t *)ctrl->dbbuf_shadow + cq_off;
		qp->eventidx_sq = (volatile uint32_t *)ctrl->dbbuf_eventidx + sq_off;
		qp->eventidx_cq = (volatile uint32_t *)ctrl->dbbuf_eventidx + cq_off;
		/* Fresh slots before the device learns of the queue: a value left
		 * by an earlier queue with this id must not read as a new tail. */
		*qp->shadow_sq = 0;
		*qp->shadow_cq = 0;
		*qp->eventidx_sq = 0;
		*qp->eventidx_cq = 0;
	}

	/* CQ first: the SQ names it (Base spec 5.4 / 5.5). PC=1, no interrupts. */
	sqe = (struct upcie_nvme_sqe){
	    .opc = UPCIE_NVME_ADM_CREATE_CQ,
	    .prp1 = upcie_dma_bus(ctrl->heap, qp->cq),
	    .cdw10 = ((depth - 1) << 16) | (uint32_t)qid,
	    .cdw11 = UPCIE_NVME_QUEUE_PC,
	};
	rc = upcie_nvme_admin(ctrl, &sqe, NULL, 0, &cqe, 0);
	if (rc) {
		rc = upcie_err(rc, "Create I/O CQ %d (depth %u) failed: %s", qid, depth,
			       rc == -EIO ? upcie_nvme_status_str(upcie_nvme_cqe_status(&cqe))
					  : upcie_errmsg());
		goto err_free;
	}
	sqe = (struct upcie_nvme_sqe){
	    .opc = UPCIE_NVME_ADM_CREATE_SQ,
	    .prp1 = upcie_dma_bus(ctrl->heap, qp->sq),
	    .cdw10 = ((depth - 1) << 16) | (uint32_t)qid,
	    .cdw11 = ((uint32_t)qid << 16) | UPCIE_NVME_QUEUE_PC,
	};
	rc = upcie_nvme_admin(ctrl, &sqe, NULL, 0, &cqe, 0);
	if (rc) {
		rc = upcie_err(rc, "Create I/O SQ %d (depth %u) failed: %s", qid, depth,
			       rc == -EIO ? upcie_nvme_status_str(upcie_nvme_cqe_status(&cqe))
					  : upcie_errmsg());
		/* The CQ exists on the device: only a successful delete frees it. */
		if (rc == -EIO && delete_queue(ctrl, UPCIE_NVME_ADM_DELETE_CQ, (uint16_t)qid))
			rc = -EBUSY;
		goto err_free;
	}

	pthread_mutex_lock(&ctrl->admin_lock);
	qp->next = ctrl->qpairs;
	ctrl->qpairs = qp;
	pthread_mutex_unlock(&ctrl->admin_lock);
	return qp;

err_free:
	/* -EIO: the device refused the command, so it does not use the memory.
	 * Anything else (a timeout, a CQ left behind) may leave a queue the
	 * device still owns: keep it out of reuse until close resets it. */
	if (rc != -EIO) {
		pthread_mutex_lock(&ctrl->admin_lock);
		qp->next = ctrl->zombies;
		ctrl->zombies = qp;
		pthread_mutex_unlock(&ctrl->admin_lock);
		errno = -rc;
		return NULL;
	}
	upcie_nvme_qpair_free(qp, false);
err_qid:
	pthread_mutex_lock(&ctrl->admin_lock);
	ctrl->qid_used[qid] = 0;
	pthread_mutex_unlock(&ctrl->admin_lock);
	errno = -rc;
	return NULL;
}

int upcie_nvme_qpair_destroy(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_ctrl *ctrl;
	struct upcie_nvme_qpair **pp;
	int rc = 0, rc2;

	if (!qp)
		return 0;
	ctrl = qp->ctrl;
	pthread_mutex_lock(&ctrl->admin_lock);
	for (pp = &ctrl->qpairs; *pp; pp = &(*pp)->next) {
		if (*pp == qp) {
			*pp = qp->next;
			break;
		}
	}
	pthread_mutex_unlock(&ctrl->admin_lock);

	/* SQ first, then CQ (Base spec 5.6 / 5.7). Completions the device posted
	 * before the deletion are delivered; the rest complete as aborted.
	 * admin_broken is only set with the admin lock held, by the thread
	 * that timed out; a stale read here just costs a failing command. */
	if (!ctrl->admin_broken && ctrl->enabled) {
		rc = delete_queue(ctrl, UPCIE_NVME_ADM_DELETE_SQ, qp->qid);
		upcie_nvme_poll(qp, 0);
		rc2 = delete_queue(ctrl, UPCIE_NVME_ADM_DELETE_CQ, qp->qid);
		if (!rc)
			rc = rc2;
	} else if (ctrl->enabled) {
		rc = -EIO;
	}
	upcie_nvme_qpair_abort_all(qp);

	pthread_mutex_lock(&ctrl->admin_lock);
	if (rc && ctrl->enabled) {
		/* The device may still own these queues: keep their memory (and the
		 * qid) out of reuse until the controller is reset at close. */
		qp->next = ctrl->zombies;
		ctrl->zombies = qp;
		qp = NULL;
	} else {
		ctrl->qid_used[qp->qid] = 0;
	}
	pthread_mutex_unlock(&ctrl->admin_lock);
	upcie_nvme_qpair_free(qp, false);
	return rc;
}

uint16_t upcie_nvme_qpair_id(const struct upcie_nvme_qpair *qp)
{
	return qp->qid;
}

uint32_t upcie_nvme_qpair_depth(const struct upcie_nvme_qpair *qp)
{
	return qp->depth;
}

uint32_t upcie_nvme_qpair_outstanding(const struct upcie_nvme_qpair *qp)
{
	return (uint32_t)(qp->depth - 1 - qp->nfree);
}

size_t upcie_nvme_qpair_mem(const struct upcie_nvme_qpair *qp)
{
	return qp->mem_bytes;
}

void upcie_nvme_qpair_stats(const struct upcie_nvme_qpair *qp, struct upcie_nvme_qpair_stats *st)
{
	*st = qp->stats;
}
