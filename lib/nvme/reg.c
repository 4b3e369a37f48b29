/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Commands on registered memory (upcie_dma_register): the regions a
 * command's buffers lie in are held from submit to completion, so that
 * upcie_dma_unregister() refuses them (-EBUSY) while the device may still
 * use them. All of it is off the heap's fast path: a heap buffer in the
 * first segment never comes here (queue.h's read/write fast path and
 * queue.c's submit test the segment first).
 *
 * The record of a command comes from the queue pair's pool (queue.h says
 * why it is not per CID slot), allocated with the first such command. The
 * command's request
 * carries upcie_nvme_reg_done and the record as its callback: whichever
 * way the command ends with a callback (the device's completion, a host
 * abort after a reset or a fence), the hold goes with it; the two ways
 * without one (an abandoned command, a queue's host side reset) call
 * upcie_nvme_reg_drop().
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "core/log.h"
#include "nvme/queue.h"

void upcie_nvme_reg_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_reg_cmd *t = arg;
	upcie_nvme_cb cb = t->cb;
	void *cb_arg = t->arg;

	/* Let go first: the callback may unregister, or submit again. */
	upcie_nvme_reg_unhold(upcie_nvme_reg_done, t);
	if (cb)
		cb(cb_arg, cqe);
}

void upcie_nvme_reg_unhold(upcie_nvme_cb cb, void *arg)
{
	struct upcie_nvme_reg_cmd *t = arg;
	struct upcie_nvme_reg_pool *pool;

	if (cb != upcie_nvme_reg_done)
		return;
	pool = t->pool;
	upcie_dma_reg_release(t->r, t->n);
	t->n = 0;
	t->cb = NULL;
	t->arg = NULL;
	pool->free[pool->nfree++] = (uint32_t)(t - pool->rec);
}

/* A free record, or NULL (-ENOMEM: no pool; -EAGAIN: none free). */
static struct upcie_nvme_reg_cmd *record_get(struct upcie_nvme_qpair *qp)
{
	struct upcie_nvme_reg_pool *pool = qp->reg_pool;

	if (!pool) {
		uint32_t n = 2 * ((uint32_t)qp->cid_mask + 1);

		pool = calloc(1, sizeof(*pool) + n * sizeof(pool->rec[0]));
		if (pool)
			pool->free = calloc(n, sizeof(*pool->free));
		if (!pool || !pool->free) {
			free(pool);
			return upcie_err_null(-ENOMEM,
					      "queue %u: out of memory for registered-memory "
					      "records",
					      qp->qid);
		}
		for (uint32_t i = 0; i < n; i++) {
			pool->rec[i].pool = pool;
			pool->free[pool->nfree++] = n - 1 - i;
		}
		qp->reg_pool = pool;
	}
	if (!pool->nfree)
		return upcie_err_null(-EAGAIN,
				      "queue %u: every record of commands on registered memory is "
				      "in use (completions not yet delivered); poll, then submit "
				      "again",
				      qp->qid);
	return &pool->rec[pool->free[--pool->nfree]];
}

static int hold_error(struct upcie_nvme_qpair *qp, int rc, const void *buf, size_t len)
{
	if (rc == -E2BIG)
		return upcie_err(
		    -EINVAL,
		    "queue %u: the %zu-byte buffer at %p spans more than %u registered "
		    "regions; register the memory as fewer, larger regions",
		    qp->qid, len, buf, UPCIE_NVME_REG_MAX);
	return upcie_err(-EINVAL,
			 "queue %u: the %zu-byte buffer at %p is neither in the DMA heap nor in "
			 "registered memory; allocate it with upcie_dma_alloc_pages() or "
			 "register it with upcie_dma_register()",
			 qp->qid, len, buf);
}

int upcie_nvme_reg_hold(struct upcie_nvme_qpair *qp, const void *buf, size_t len, upcie_nvme_cb *cb,
			void **arg)
{
	struct upcie_dma_region *r[UPCIE_NVME_REG_MAX];
	struct upcie_nvme_reg_cmd *t;
	int n;

	if (!qp->nfree)
		return upcie_nvme_queue_submit_err(qp, -EAGAIN, len);
	n = upcie_dma_reg_hold(qp->heap, buf, len, r, UPCIE_NVME_REG_MAX);
	if (n < 0)
		return hold_error(qp, n, buf, len);
	if (!n)
		return 0; /* a grown heap segment: nothing to hold */
	t = record_get(qp);
	if (!t) {
		int err = -errno;

		upcie_dma_reg_release(r, (unsigned)n);
		return err;
	}
	t->cb = *cb;
	t->arg = *arg;
	t->n = (unsigned)n;
	for (int i = 0; i < n; i++)
		t->r[i] = r[i];
	*cb = upcie_nvme_reg_done;
	*arg = t;
	return 0;
}

int upcie_nvme_reg_hold_iov(struct upcie_nvme_qpair *qp, const struct iovec *iov, unsigned iovcnt,
			    upcie_nvme_cb *cb, void **arg)
{
	struct upcie_dma_region *r[UPCIE_NVME_REG_MAX];
	struct upcie_nvme_reg_cmd *t;
	unsigned n = 0;

	if (!qp->nfree)
		return upcie_nvme_queue_submit_err(qp, -EAGAIN, 0);
	for (unsigned i = 0; i < iovcnt; i++) {
		struct upcie_dma_region *got[UPCIE_NVME_REG_MAX];
		uintptr_t off = (uintptr_t)iov[i].iov_base - qp->seg_va;
		int k;

		if (off < qp->heap->len && iov[i].iov_len <= qp->heap->len - off)
			continue; /* the first segment: nothing to hold */
		k = upcie_dma_reg_hold(qp->heap, iov[i].iov_base, iov[i].iov_len, got,
				       UPCIE_NVME_REG_MAX);
		if (k < 0 || n + (unsigned)k > UPCIE_NVME_REG_MAX) {
			if (k > 0)
				upcie_dma_reg_release(got, (unsigned)k);
			upcie_dma_reg_release(r, n);
			return hold_error(qp, k < 0 ? k : -E2BIG, iov[i].iov_base, iov[i].iov_len);
		}
		/* A region already held for an earlier buffer is held once. */
		for (int j = 0; j < k; j++) {
			bool dup = false;

			for (unsigned m = 0; m < n && !dup; m++)
				dup = r[m] == got[j];
			if (dup)
				upcie_dma_reg_release(&got[j], 1);
			else
				r[n++] = got[j];
		}
	}
	if (!n)
		return 0;
	t = record_get(qp);
	if (!t) {
		int err = -errno;

		upcie_dma_reg_release(r, n);
		return err;
	}
	t->cb = *cb;
	t->arg = *arg;
	t->n = n;
	for (unsigned i = 0; i < n; i++)
		t->r[i] = r[i];
	*cb = upcie_nvme_reg_done;
	*arg = t;
	return 0;
}
