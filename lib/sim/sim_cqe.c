/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Completion posting of the emulated controller, and the completions a
 * buggy or racing device might post on I/O queues:
 *
 *   DUP_CQE      the entry is posted a second time, same content;
 *   STALE_CQE    after the entry, one posted 'arg' entries before it on
 *                that CQ is posted again (each CQ keeps its last
 *                SIM_CQ_HIST entries);
 *   FOREIGN_CQE  the entry names another SQ id (the next live I/O SQ in
 *                creation order, or its own id + 1 when it is alone): the
 *                command's real completion never comes.
 *
 * An extra entry (duplicate or stale) is posted only when the CQ has room
 * for it: the model never overwrites an entry the host has not released.
 * One that finds the CQ full is skipped and counted (sim->extra_skipped);
 * the fault is used up all the same. The admin CQ gets none of these.
 */
#include <string.h>

#include "core/log.h"
#include "sim_priv.h"

bool upcie_sim_cq_full(const struct sim_cq *cq)
{
	return (cq->tail + 1) % cq->size == cq->head;
}

/*
 * Post one entry (Base spec 4.6): everything but the status word first,
 * then the status with the phase tag, as a release store, so a host that
 * sees the new phase also sees the rest of the entry. e's phase bit is
 * ignored.
 */
static void put_cqe(struct upcie_sim *sim, uint16_t cqid, const struct upcie_nvme_cqe *e)
{
	struct sim_cq *cq = &sim->cqs[cqid];
	struct upcie_nvme_cqe *c = (struct upcie_nvme_cqe *)(cq->base + (size_t)cq->tail * 16);
	uint16_t sf = (uint16_t)((e->status & ~1u) | cq->phase);

	c->dw0 = e->dw0;
	c->dw1 = e->dw1;
	c->sqhd = e->sqhd;
	c->sqid = e->sqid;
	c->cid = e->cid;
	__atomic_store_n(&c->status, sf, __ATOMIC_RELEASE);
	if (++cq->tail == cq->size) {
		cq->tail = 0;
		cq->phase ^= 1;
	}
	/* The entry first, then its interrupt. */
	upcie_sim_irq_post(sim, cqid);
	if (cqid) {
		struct upcie_nvme_cqe *h = &sim->cq_hist[(size_t)cqid * SIM_CQ_HIST];

		h[cq->hist_pos] = *e;
		h[cq->hist_pos].status &= (uint16_t)~1u;
		cq->hist_pos = (uint8_t)((cq->hist_pos + 1) % SIM_CQ_HIST);
		if (cq->hist_n < SIM_CQ_HIST)
			cq->hist_n++;
	}
}

/* A duplicate or stale entry: only into room the host has released. */
static void put_extra(struct upcie_sim *sim, uint16_t cqid, const struct upcie_nvme_cqe *e)
{
	if (upcie_sim_cq_full(&sim->cqs[cqid])) {
		sim->extra_skipped++;
		upcie_info(
		    "sim: CQ %u is full: an extra (duplicate or stale) completion is skipped",
		    cqid);
		return;
	}
	put_cqe(sim, cqid, e);
}

/* Another SQ id for FOREIGN_CQE: the next live I/O SQ after sqid. */
static uint16_t foreign_sqid(const struct upcie_sim *sim, uint16_t sqid)
{
	uint32_t n = sim->nr_live_sqs, at = 0;

	for (uint32_t i = 0; i < n; i++)
		if (sim->live_sqs[i] == sqid)
			at = i;
	for (uint32_t k = 1; k <= n; k++) {
		uint16_t q = sim->live_sqs[(at + k) % n];

		if (q != sqid)
			return q;
	}
	return sqid == UINT16_MAX ? 1 : (uint16_t)(sqid + 1);
}

void upcie_sim_complete(struct upcie_sim *sim, uint16_t sqid, uint16_t sqhd, uint16_t cid,
			uint16_t status, uint32_t dw0)
{
	uint16_t cqid = sim->sqs[sqid].cqid;
	struct sim_cq *cq = &sim->cqs[cqid];
	struct upcie_nvme_cqe e = {.dw0 = dw0, .sqhd = sqhd, .sqid = sqid, .cid = cid};
	struct upcie_nvme_cqe stale;
	bool have_stale = false;

	e.status = upcie_nvme_status_field(status, status != 0, 0);
	if (status)
		sim->st.errors++;
	if (!cqid) {
		put_cqe(sim, cqid, &e);
		return;
	}
	if (sim->foreign_left) {
		sim->foreign_left--;
		e.sqid = foreign_sqid(sim, sqid);
	}
	put_cqe(sim, cqid, &e);
	if (sim->stale_back) {
		/* Entry 0 back is the one just posted. */
		uint32_t back = sim->stale_back;

		sim->stale_back = 0;
		if (back < cq->hist_n) {
			uint32_t i = (cq->hist_pos + 2u * SIM_CQ_HIST - 1 - back) % SIM_CQ_HIST;

			stale = sim->cq_hist[(size_t)cqid * SIM_CQ_HIST + i];
			have_stale = true;
		} else {
			sim->extra_skipped++;
			upcie_info(
			    "sim: CQ %u has posted %u entries, fewer than STALE_CQE's %u back: "
			    "nothing to re-post",
			    cqid, cq->hist_n, back);
		}
	}
	if (sim->dup_left) {
		sim->dup_left--;
		put_extra(sim, cqid, &e);
	}
	if (have_stale)
		put_extra(sim, cqid, &stale);
}

void upcie_sim_post(struct upcie_sim *sim, uint16_t sqid, uint16_t cid, uint16_t status,
		    uint32_t dw0)
{
	struct sim_sq *sq = &sim->sqs[sqid];
	struct sim_cq *cq;

	if (!sq->live || !sim_can_dma(sim))
		return;
	cq = &sim->cqs[sq->cqid];
	if (!cq->live || cq->dead || upcie_sim_cq_full(cq))
		return; /* a full CQ loses it: the host sees a timeout */
	upcie_sim_complete(sim, sqid, (uint16_t)sq->head, cid, status, dw0);
}
