/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The queue layer's cold half: queue memory, the generic submit, the slow
 * path of poll (clock, then the owner's hook), host completions, and the
 * library's one bounded wait loop. The hot half is queue.h.
 *
 * A CID free stack of depth - 1 entries bounds the outstanding commands,
 * so neither the SQ nor the CQ can overflow and "queue full" is simply "no
 * free CID".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/queue.h"
#include "core/page.h"

/* Milliseconds between two ticks of a queue's coarse clock. */
#define TICK_MS 10

uint64_t (*upcie_test_clock_ms)(void);

uint64_t upcie_now_ms(void)
{
	struct timespec ts;

	if (unlikely(upcie_test_clock_ms != NULL))
		return upcie_test_clock_ms();

	/* The coarse clock is read from the vDSO: no system call. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

/* A queue that is never out of step (until an owner points gen_src elsewhere). */
static const uint32_t gen_never;

struct upcie_nvme_qpair *upcie_nvme_queue_alloc(struct upcie_dma_heap *heap, uint16_t qid,
						uint32_t depth, uint32_t cq_depth,
						uint32_t page_size, uint32_t max_xfer,
						uint32_t md_sgl_descs)
{
	struct upcie_nvme_qpair *qp;
	size_t sq_bytes, cq_bytes, prp_bytes;

	qp = upcie_line_calloc(1, sizeof(*qp));
	if (!qp)
		return upcie_err_null(-ENOMEM, "out of memory for a queue pair");
	qp->qid = qid;
	qp->depth = (uint16_t)depth;
	qp->cq_depth = cq_depth; /* the caller made it at least depth */
	qp->page_size = page_size;
	qp->max_xfer = max_xfer;
	qp->heap = heap;
	qp->seg_va = (uintptr_t)heap->va;
	qp->seg_bus = heap->bus;
	qp->seg_mask = heap->page_size - 1;
	qp->seg_shift = heap->page_shift;
	qp->page_mask = page_size - 1;
	/* The read/write fast path needs room for its longest transfer (two
	 * memory pages) after the largest offset it accepts, and heap pages
	 * no smaller than memory pages (so that a memory page is contiguous
	 * on the bus and aligned alike in both address spaces). Without
	 * either, two_pages = 0 sends every buffer the general way. The
	 * general way also checks MDTS; here two_pages is capped by it. */
	if (heap->len >= 2 * (uintptr_t)page_size && heap->page_size >= page_size) {
		/* Never more than MDTS: len <= in_page <= two_pages. */
		qp->two_pages =
		    2 * (uintptr_t)page_size < max_xfer ? 2 * (uintptr_t)page_size : max_xfer;
		qp->seg_fast_max_q = (heap->len - qp->two_pages) >> 2;
	}
	qp->phase = 1;
	qp->gen_src = &gen_never;
	qp->tick_ms = upcie_now_ms();
	qp->tick_step = 1;
	qp->irq_fd = qp->wake_fd = qp->ep_fd = -1;

	sq_bytes = (size_t)depth * sizeof(struct upcie_nvme_sqe);
	cq_bytes = (size_t)qp->cq_depth * sizeof(struct upcie_nvme_cqe);
	qp->prp_slot_entries = prp_slot_entries(max_xfer, page_size);
	/* A command with a metadata SGL uses its CID's slot for SGL descriptors
	 * instead of PRP entries (two 8-byte entries each); the slot grows to
	 * hold them, rounded as PRP slots are so that slots stay aligned. */
	if (md_sgl_descs) {
		uint32_t want = 2 * md_sgl_descs, per_page = page_size / 8;

		want = want <= per_page ? next_pow2(want)
					: (want + per_page - 1) / per_page * per_page;
		if (want > qp->prp_slot_entries)
			qp->prp_slot_entries = want;
		qp->md_sgl_descs = qp->prp_slot_entries / 2;
	}
	prp_bytes = (size_t)depth * qp->prp_slot_entries * 8;

	/* Queues must be physically contiguous (created with PC=1) and page aligned. */
	qp->sq = upcie_dma_alloc(heap, sq_bytes, page_size);
	qp->cq = upcie_dma_alloc(heap, cq_bytes, page_size);
	/* Slots are sized assuming each starts on a controller page boundary. */
	if (prp_bytes)
		qp->prp_lists = upcie_dma_alloc_pages_aligned(heap, prp_bytes, page_size);
	/* CIDs: the slot in the low bits, a generation above (see queue.h). */
	qp->cid_mask = (uint16_t)(next_pow2(depth) - 1);
	qp->cid_gen = (uint16_t)(qp->cid_mask + 1u); /* 0 for 65536 slots: no generation */
	qp->sqid_key = qid;
	qp->reqs = upcie_line_calloc((size_t)qp->cid_mask + 1, sizeof(*qp->reqs));
	qp->free_cids = upcie_line_calloc(depth, sizeof(*qp->free_cids));
	qp->harvest = calloc(depth, sizeof(*qp->harvest));
	if (!qp->sq || !qp->cq || (prp_bytes && !qp->prp_lists) || !qp->reqs || !qp->free_cids ||
	    !qp->harvest) {
		upcie_nvme_queue_free(qp, false);
		return upcie_err_null(-ENOMEM,
				      "cannot allocate a %u-entry queue pair (%zu bytes of DMA "
				      "memory); use a larger heap or a smaller depth",
				      depth, sq_bytes + cq_bytes + prp_bytes);
	}
	qp->mem_bytes = sq_bytes + cq_bytes + prp_bytes;
	upcie_nvme_queue_reset(qp);
	return qp;
}

/* keep_dma: the device may still use the queues; leave their memory allocated. */
void upcie_nvme_queue_free(struct upcie_nvme_qpair *qp, bool keep_dma)
{
	struct upcie_dma_heap *heap;

	if (!qp)
		return;
	heap = (struct upcie_dma_heap *)qp->heap;
	if (!keep_dma) {
		upcie_dma_free(heap, qp->sq);
		upcie_dma_free(heap, qp->cq);
		upcie_dma_free(heap, qp->prp_lists);
	}
	free(qp->reqs);
	free(qp->free_cids);
	free(qp->harvest);
	if (qp->reg_pool)
		free(qp->reg_pool->free);
	free(qp->reg_pool);
	free(qp);
}

/*
 * Host side back to "just created": empty queues, phase 1, every CID free.
 * Only for a queue the device does not have (or before it learns of it):
 * a CQ slot left with phase 1 would read as a new completion.
 */
void upcie_nvme_queue_reset(struct upcie_nvme_qpair *qp)
{
	memset(qp->sq, 0, (size_t)qp->depth * sizeof(*qp->sq));
	memset(qp->cq, 0, (size_t)qp->cq_depth * sizeof(*qp->cq));
	for (uint32_t i = 0; i <= qp->cid_mask; i++) {
		qp->reqs[i] = (struct upcie_nvme_req){0};
		qp->reqs[i].expect = UPCIE_NVME_REQ_IDLE;
	}
	qp->sq_tail = qp->sq_rung = 0;
	qp->cq_head = qp->cq_rung = 0;
	qp->phase = 1;
	/* depth - 1 CIDs: one SQ slot always stays empty (full = tail + 1 == head).
	 * Each reset starts them one generation on, so that nothing the device
	 * posted for the queue's earlier life can match. */
	qp->epoch++;
	qp->nfree = 0;
	for (uint32_t i = qp->depth - 1u; i > 0; i--)
		qp->free_cids[qp->nfree++] = (uint16_t)(i - 1 + qp->epoch * qp->cid_gen);
	if (qp->shadow_sq) {
		/* Fresh slots before the device learns of the queue: a value left
		 * by an earlier queue with this id must not read as a new tail. */
		*qp->shadow_sq = 0;
		*qp->shadow_cq = 0;
		*qp->eventidx_sq = 0;
		*qp->eventidx_cq = 0;
	}
}

/* Cold: an error from a submit path, with a message that names it. */
__attribute__((cold, noinline)) int upcie_nvme_queue_submit_err(struct upcie_nvme_qpair *qp,
								int err, size_t len)
{
	if (err == -EAGAIN)
		return upcie_err(-EAGAIN,
				 "queue %u is full (%u commands outstanding): poll to reap "
				 "completions, then submit again",
				 qp->qid, qp->depth - 1u);
	return upcie_err(err,
			 "queue %u: a %zu-byte transfer is not possible: the buffer must lie in "
			 "the DMA heap or registered memory, start 4-byte aligned and not "
			 "exceed %u bytes (MDTS)",
			 qp->qid, len, qp->max_xfer);
}

/* A read or write off the fast path (upcie_nvme_queue_rw): a full queue, a
 * buffer outside the heap's first segment or misaligned, a PRP list. */
__attribute__((noinline)) int upcie_nvme_queue_rw_general(struct upcie_nvme_qpair *qp, uint8_t opc,
							  uint32_t nsid, uint64_t slba,
							  uint32_t nlb, const void *buf, size_t len,
							  upcie_nvme_cb cb, void *arg,
							  unsigned flags)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = opc,
	    .nsid = nsid,
	    .cdw10 = (uint32_t)slba,
	    .cdw11 = (uint32_t)(slba >> 32),
	    .cdw12 = nlb - 1,
	};

	/* upcie_nvme_queue_submit() checks the queue, MDTS and the buffer. */
	return upcie_nvme_queue_submit(qp, &sqe, buf, len, cb, arg, flags, NULL);
}

/* A completion that matches no outstanding command: the device misbehaved
 * (a duplicate, a stale CID of an earlier command in the slot, another
 * queue's SQ id). It is counted and dropped, never matched. */
void upcie_nvme_queue_stray(struct upcie_nvme_qpair *qp, const struct upcie_nvme_cqe *cqe)
{
	const struct upcie_nvme_req *req = &qp->reqs[cqe->cid & qp->cid_mask];
	const char *why = cqe->sqid != qp->qid ? "it names another SQ id"
			  : !upcie_nvme_req_busy(req)
			      ? "no command is outstanding in its slot"
			      : "its CID is of an earlier command in the slot";

	qp->stats.stray++;
	upcie_log(UPCIE_LOG_ERROR,
		  "qpair %u: completion (SQ id %u, CID %#x, status %#x) dropped: %s", qp->qid,
		  cqe->sqid, cqe->cid, upcie_nvme_cqe_status(cqe), why);
}

/* Reap's cold case: an abandoned command ends (its CID goes back, no
 * callback); anything else that does not match is a stray. */
void upcie_nvme_queue_odd(struct upcie_nvme_qpair *qp, const struct upcie_nvme_cqe *cqe)
{
	const struct upcie_nvme_req *req = &qp->reqs[cqe->cid & qp->cid_mask];

	qp->stats.completed--; /* reap counted it; complete() counts it again */
	if (upcie_nvme_req_holds(req, upcie_nvme_cqe_key(cqe)))
		upcie_nvme_queue_complete(qp, cqe); /* aged, expired or abandoned */
	else
		upcie_nvme_queue_stray(qp, cqe);
}

/* Post one SQE: take a CID, build PRPs, copy into the SQ. Doorbell per flags. */
int upcie_nvme_queue_submit(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
			    const void *buf, size_t len, upcie_nvme_cb cb, void *arg,
			    unsigned flags, uint16_t *cidp)
{
	uint16_t cid;
	int rc;

	if (unlikely(!qp->nfree))
		return upcie_nvme_queue_submit_err(qp, -EAGAIN, len);
	cid = qp->free_cids[qp->nfree - 1];
	if (buf) {
		if (unlikely(len > qp->max_xfer))
			return upcie_nvme_queue_submit_err(qp, -EINVAL, len);
		/* Beyond the heap's first segment: a grown segment, or registered
		 * memory, held from here to the completion (before translating:
		 * a held region cannot be unmapped). */
		if (unlikely((uintptr_t)buf - qp->seg_va >= qp->heap->len)) {
			rc = upcie_nvme_reg_hold(qp, buf, len, &cb, &arg);
			if (rc)
				return rc;
		}
		rc = upcie_nvme_prp_setup(qp->heap, qp->page_size, buf, len, &sqe->prp1, &sqe->prp2,
					  qp->prp_lists +
					      (size_t)(cid & qp->cid_mask) * qp->prp_slot_entries,
					  qp->prp_slot_entries);
		if (unlikely(rc)) {
			upcie_nvme_reg_unhold(cb, arg);
			return upcie_nvme_queue_submit_err(qp, rc, len);
		}
	}
	upcie_nvme_queue_post(qp, sqe, cid, cb, arg, flags, cidp);
	return 0;
}

/*
 * The slow path's first half: move the queue's clock on and let the owner
 * check health, timeouts or recover (not re-entered: a recovery that polls
 * this queue only reaps). Returns completions delivered or a negative errno.
 */
int upcie_nvme_queue_tick(struct upcie_nvme_qpair *qp)
{
	uint64_t now;
	bool tick = false;
	int n = 0;

	if (qp->in_slow || !qp->slow)
		return 0;
	now = upcie_now_ms();
	if (now - qp->tick_ms >= TICK_MS) {
		/* Ticks that passed: a queue polled seldom (a sleeping waiter,
		 * a slow machine) ages its commands by the clock, not by calls. */
		uint64_t step = (now - qp->tick_ms) / TICK_MS;

		qp->tick_step =
		    step > UPCIE_NVME_REQ_AGE_MAX ? UPCIE_NVME_REQ_AGE_MAX : (uint32_t)step;
		qp->tick += qp->tick_step;
		qp->tick_ms = step > UPCIE_NVME_REQ_AGE_MAX ? now : qp->tick_ms + step * TICK_MS;
		tick = true;
	}
	/* Clear the poke before reading the state: a later poke is not lost. */
	__atomic_store_n(&qp->poke, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (tick || !upcie_nvme_queue_in_step(qp)) {
		qp->in_slow = true;
		n = qp->slow(qp, tick);
		qp->in_slow = false;
	}
	if (n < 0 || !upcie_nvme_queue_in_step(qp)) /* come back on the next poll */
		__atomic_store_n(&qp->poke, 1, __ATOMIC_RELAXED);
	else
		upcie_nvme_queue_ring(qp); /* what waited while poked */
	return n;
}

/* Poll's slow path: the tick, then reap as usual. */
int upcie_nvme_queue_poll_slow(struct upcie_nvme_qpair *qp, uint32_t max)
{
	int n = upcie_nvme_queue_tick(qp);

	if (n < 0)
		return n;
	if (max && (uint32_t)n >= max)
		return n;
	return n + upcie_nvme_queue_reap(qp, max ? max - (uint32_t)n : 0);
}

void upcie_nvme_waiter_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_waiter *w = arg;

	w->cqe = *cqe;
	w->done = 1;
}

int upcie_nvme_queue_wait(struct upcie_nvme_qpair *qp, const volatile int *done,
			  uint64_t deadline_ms, struct upcie_pci_dev *dev)
{
	for (unsigned spin = 1;; spin++) {
		int rc = upcie_nvme_queue_poll(qp, 0);

		if (*done)
			return 0;
		if (rc < 0)
			return rc;
		upcie_pci_idle(dev);
		if ((spin & 255) == 0 && upcie_now_ms() > deadline_ms) {
			/* A last look: the completion may have come meanwhile. */
			(void)upcie_nvme_queue_reap(qp, 0);
			return *done ? 0 : -ETIMEDOUT;
		}
	}
}
