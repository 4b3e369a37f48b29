/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated controller's registers, state machine, doorbells and queues.
 *
 * The driver writes BAR0 with plain volatile stores; the model notices a
 * change when it steps, by comparing with the last value it saw (CC, every
 * live doorbell, and the shadow doorbells once Doorbell Buffer Config ran).
 *
 * Doorbells: a changed MMIO value counts one sq_doorbells / cq_doorbells.
 * An SQ tail >= the queue size, or a CQ head that would release entries the
 * model never posted, is ignored (with a warning in the log) and the queue
 * carries on with its previous value; the model does not set CFS for it.
 *
 * Shadow doorbells (Base spec 5.8), I/O queues only, and only for queue ids
 * whose slots fit in the one-page buffers: every step the model reads the
 * shadow SQ tail and CQ head of each live queue, after the MMIO doorbell
 * (the host updates the shadow first, so the shadow is the newer value); a
 * value that differs from what the model has counts one shadow_reads. After
 * running an SQ it writes, in the EventIdx page, the SQ tail it consumed
 * and the CQ head it last took. Creating a queue clears its shadow and
 * EventIdx slots. A controller reset forgets both pages.
 *
 * A queue whose memory is unregistered while it lives is marked dead; if the
 * model then has work for it, CSTS.CFS is set rather than touching it.
 */
#include <string.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "sim_priv.h"

uint32_t upcie_sim_mmio(struct upcie_sim *sim, uint32_t off)
{
	return upcie_mmio_read32(sim->bar, off);
}

void upcie_sim_mmio_set(struct upcie_sim *sim, uint32_t off, uint32_t val)
{
	upcie_mmio_write32(sim->bar, off, val);
}

/* Fill BAR0 from off to its end, a register at a time: the host may write
 * a doorbell meanwhile, and the accessors are atomic under TSan (a memset
 * would race with that write). */
static void bar_fill(struct upcie_sim *sim, uint32_t off, uint32_t val)
{
	for (; off + 4 <= sim->bar_len; off += 4)
		upcie_sim_mmio_set(sim, off, val);
}

static void put_reg(struct upcie_sim *sim, uint32_t off, uint32_t val)
{
	/* Compare first: a store would dirty a cache line the host reads. */
	if (upcie_sim_mmio(sim, off) != val)
		upcie_sim_mmio_set(sim, off, val);
}

static void put_csts(struct upcie_sim *sim)
{
	uint32_t c = sim->csts & ~(UPCIE_NVME_CSTS_RDY);

	if (sim->ready)
		c |= UPCIE_NVME_CSTS_RDY;
	sim->csts = c;
	put_reg(sim, UPCIE_NVME_REG_CSTS, c);
}

/* Read-only registers: the host may have scribbled on them; a device ignores that. */
static void put_ro_regs(struct upcie_sim *sim)
{
	put_reg(sim, UPCIE_NVME_REG_CAP, (uint32_t)sim->cap);
	put_reg(sim, UPCIE_NVME_REG_CAP + 4, (uint32_t)(sim->cap >> 32));
	put_reg(sim, UPCIE_NVME_REG_VS, sim->vs);
	put_csts(sim);
}

void upcie_sim_regs_init(struct upcie_sim *sim)
{
	bar_fill(sim, 0, 0);
	sim->cc = 0;
	sim->csts = 0;
	put_ro_regs(sim);
}

void upcie_sim_fill_removed(struct upcie_sim *sim)
{
	bar_fill(sim, 0, UINT32_MAX);
}

static void live_add(uint16_t *list, uint32_t *nr, uint16_t qid)
{
	list[(*nr)++] = qid;
}

static void live_del(uint16_t *list, uint32_t *nr, uint16_t qid)
{
	for (uint32_t i = 0; i < *nr; i++) {
		if (list[i] == qid) {
			memmove(&list[i], &list[i + 1], (*nr - i - 1) * sizeof(list[0]));
			(*nr)--;
			return;
		}
	}
}

/*
 * Controller reset (CC.EN 1 -> 0, Base spec 3.7.2): every queue is gone,
 * Doorbell Buffer Config is forgotten, features return to their defaults,
 * CSTS.RDY, CFS and SHST clear. Doorbell registers read zero again.
 */
void upcie_sim_ctrl_reset(struct upcie_sim *sim)
{
	memset(sim->sqs, 0, sim->nr_qids * sizeof(sim->sqs[0]));
	memset(sim->cqs, 0, sim->nr_qids * sizeof(sim->cqs[0]));
	sim->nr_live_sqs = 0;
	sim->nr_live_cqs = 0;
	sim->nsqa = sim->cfg.max_ioqpairs;
	sim->ncqa = sim->cfg.max_ioqpairs;
	sim->qs_created = false;
	sim->vwc_on = true;
	sim->aer_held = 0;
	sim->nr_held = 0; /* a reset drops what the controller held, unrun */
	sim->dbbuf_on = false;
	sim->dbbuf_dead = false;
	sim->shadow = NULL;
	sim->eventidx = NULL;
	sim->enabled = false;
	sim->en_pending = false;
	sim->ready = false;
	sim->shn_done = false;
	sim->csts = 0;
	sim->rr_last = 0;
	upcie_sim_irq_reset(sim);
	upcie_sim_cap_update(sim);
	bar_fill(sim, UPCIE_NVME_REG_DBS, 0);
	put_csts(sim);
}

static void set_cfs(struct upcie_sim *sim, const char *why)
{
	if (!(sim->csts & UPCIE_NVME_CSTS_CFS))
		upcie_warn("sim: controller fatal status: %s", why);
	sim->csts |= UPCIE_NVME_CSTS_CFS;
	put_csts(sim);
}

/* CC.EN 0 -> 1 (Base spec 3.5.1): check what the host programmed. */
static void try_enable(struct upcie_sim *sim)
{
	uint32_t cc = sim->cc;
	uint32_t aqa = upcie_sim_mmio(sim, UPCIE_NVME_REG_AQA);
	uint64_t asq = upcie_mmio_read64(sim->bar, UPCIE_NVME_REG_ASQ);
	uint64_t acq = upcie_mmio_read64(sim->bar, UPCIE_NVME_REG_ACQ);
	uint32_t mps = upcie_nvme_cc_mps(cc);
	uint32_t sqs = (aqa & 0xfff) + 1, cqs = ((aqa >> 16) & 0xfff) + 1;
	size_t ps;

	sim->en_pending = false;
	if (upcie_nvme_cc_css(cc) != UPCIE_NVME_CC_CSS_NVM) {
		set_cfs(sim, "CC.CSS selects a command set the model lacks (only NVM)");
		return;
	}
	if (mps > SIM_MPSMAX) {
		set_cfs(sim, "CC.MPS is above CAP.MPSMAX");
		return;
	}
	if (upcie_nvme_cc_iosqes(cc) != SIM_SQES || upcie_nvme_cc_iocqes(cc) != SIM_CQES) {
		set_cfs(sim, "CC.IOSQES must be 6 and CC.IOCQES 4");
		return;
	}
	ps = (size_t)4096 << mps;
	if (sqs < 2 || cqs < 2) {
		set_cfs(sim, "AQA: admin queues need at least 2 entries");
		return;
	}
	if (!asq || !acq || (asq & (ps - 1)) || (acq & (ps - 1))) {
		set_cfs(sim, "ASQ/ACQ must be non-zero and aligned to the memory page size");
		return;
	}
	if (!upcie_sim_dma_ok(sim, asq, (uint64_t)sqs * 64) ||
	    !upcie_sim_dma_ok(sim, acq, (uint64_t)cqs * 16)) {
		sim->st.xfer_errors++;
		set_cfs(sim, "ASQ/ACQ memory is not registered for DMA");
		return;
	}
	sim->page_size = ps;
	sim->sqs[0] = (struct sim_sq){
	    .base = (uint8_t *)(uintptr_t)asq, .size = sqs, .cqid = 0, .live = true};
	sim->cqs[0] = (struct sim_cq){.base = (uint8_t *)(uintptr_t)acq,
				      .size = cqs,
				      .phase = 1,
				      .nr_sqs = 1,
				      .live = true,
				      .ien = true};
	upcie_sim_mmio_set(sim, upcie_nvme_sq_db_off(0, sim->cfg.dstrd), 0);
	upcie_sim_mmio_set(sim, upcie_nvme_cq_db_off(0, sim->cfg.dstrd), 0);
	sim->ready = true;
	put_csts(sim);
}

/* React to CC; level based, so clearing a fault lets a pending step finish. */
static void step_regs(struct upcie_sim *sim)
{
	uint32_t cc = upcie_sim_mmio(sim, UPCIE_NVME_REG_CC);
	uint32_t old = sim->cc;

	sim->cc = cc;
	if (upcie_nvme_cc_en(cc) && !sim->enabled) {
		sim->enabled = true;
		sim->en_pending = true;
		sim->st.enables++;
		upcie_sim_cap_update(sim);
	} else if (!upcie_nvme_cc_en(cc) && sim->enabled) {
		upcie_sim_ctrl_reset(sim);
	}
	if (sim->en_pending && !sim->f_rdy_never && !(sim->csts & UPCIE_NVME_CSTS_CFS))
		try_enable(sim);

	/* Shutdown (Base spec 3.6): SHST follows CC.SHN; clearing SHN returns it to normal. */
	if (upcie_nvme_cc_shn(cc)) {
		if (!upcie_nvme_cc_shn(old))
			sim->shn_done = false;
		if (!sim->shn_done) {
			sim->csts &= ~UPCIE_NVME_CSTS_SHST_MASK;
			if (sim->f_shn_never) {
				sim->csts |= UPCIE_NVME_CSTS_SHST_OCCUR;
			} else {
				sim->csts |= UPCIE_NVME_CSTS_SHST_DONE;
				sim->shn_done = true;
				sim->st.shutdowns++;
			}
		}
	} else if (sim->csts & UPCIE_NVME_CSTS_SHST_MASK) {
		sim->csts &= ~UPCIE_NVME_CSTS_SHST_MASK;
		sim->shn_done = false;
	}
	put_ro_regs(sim);
}

/* Mark queues (and shadow pages) whose memory is no longer registered. */
void upcie_sim_check_dead(struct upcie_sim *sim)
{
	for (uint32_t q = 0; q < sim->nr_qids; q++) {
		struct sim_sq *sq = &sim->sqs[q];
		struct sim_cq *cq = &sim->cqs[q];

		if (sq->live && !sq->dead &&
		    !upcie_sim_dma_ok(sim, (uintptr_t)sq->base, (uint64_t)sq->size * 64))
			sq->dead = true;
		if (cq->live && !cq->dead &&
		    !upcie_sim_dma_ok(sim, (uintptr_t)cq->base, (uint64_t)cq->size * 16))
			cq->dead = true;
	}
	if (sim->dbbuf_on && !sim->dbbuf_dead &&
	    (!upcie_sim_dma_ok(sim, (uintptr_t)sim->shadow, sim->page_size) ||
	     !upcie_sim_dma_ok(sim, (uintptr_t)sim->eventidx, sim->page_size)))
		sim->dbbuf_dead = true;
}

/*
 * Doorbell values are ring indices: a value says nothing about how many laps
 * the host has gone, so the model only takes one that moves forward:
 *
 * SQ tail: a new tail must add entries without overrunning the head, i.e.
 * lie ahead of the current tail in ring order and not reach the head. A
 * value between head and tail (older than the tail: entries the model has
 * already been given) is ignored. An out-of-range value is an Invalid
 * Doorbell Write (Base spec 3.1.3.x), ignored too.
 */
static bool sq_tail_ok(const struct sim_sq *sq, uint32_t v)
{
	uint32_t pending = (sq->tail + sq->size - sq->head) % sq->size;

	return v < sq->size && (v + sq->size - sq->head) % sq->size > pending;
}

static bool take_sq_tail(struct sim_sq *sq, uint32_t v, const char *via)
{
	if (sq_tail_ok(sq, v)) {
		sq->tail = v;
		return true;
	}
	upcie_warn("sim: SQ tail %s %u does not add entries (head %u, tail %u, size %u); "
		   "ignored",
		   via, v, sq->head, sq->tail, sq->size);
	return false;
}

/* CQ head: only moves forward, and only over entries the model has posted. */
static bool cq_head_ok(const struct sim_cq *cq, uint32_t v)
{
	uint32_t posted = (cq->tail + cq->size - cq->head) % cq->size;

	return v < cq->size && (v + cq->size - cq->head) % cq->size <= posted;
}

static bool take_cq_head(struct sim_cq *cq, uint32_t v, const char *via)
{
	if (cq_head_ok(cq, v)) {
		cq->head = v;
		return true;
	}
	upcie_warn("sim: CQ head %s %u releases entries never posted (head %u, tail %u); "
		   "ignored",
		   via, v, cq->head, cq->tail);
	return false;
}

/*
 * With shadow doorbells (Base spec 5.8) the host writes the shadow first and
 * the MMIO doorbell only when EventIdx asks for it, so the shadow is the
 * authority:
 *
 *  - an MMIO value is taken only when it equals the shadow slot (otherwise
 *    it is an old value overtaken by a newer shadow, or a host that rang
 *    MMIO without updating the shadow, a protocol violation: either way the
 *    write only wakes the model);
 *  - a shadow value is looked at only when it changed since the model last
 *    read it: a slot left behind by an MMIO-only ring is not taken again
 *    later, when the ring has moved on and the old value would look like a
 *    full lap ahead (re-running old SQEs);
 *  - either way the value must move forward (take_sq_tail, take_cq_head).
 */
static void read_sq_db(struct upcie_sim *sim, uint32_t qid)
{
	struct sim_sq *sq = &sim->sqs[qid];
	uint32_t off = upcie_nvme_sq_db_off(qid, sim->cfg.dstrd);
	uint32_t v = upcie_sim_mmio(sim, off);
	bool shadow = sim_has_shadow(sim, qid) && !sim->dbbuf_dead;
	uint32_t sh = 0;

	/* Shadow after the MMIO doorbell: it is at least as new (written first). */
	if (shadow)
		sh = __atomic_load_n(sim_shadow_slot(sim->shadow, off), __ATOMIC_ACQUIRE);
	if (v != sq->db_seen) {
		sq->db_seen = v;
		sim->st.sq_doorbells++;
		if (v != sq->tail && (!shadow || v == sh))
			take_sq_tail(sq, v, "doorbell");
	}
	if (shadow && sh != sq->sh_seen) {
		sq->sh_seen = sh;
		if (sh != sq->tail && take_sq_tail(sq, sh, "shadow"))
			sim->st.shadow_reads++;
	}
}

static void read_cq_db(struct upcie_sim *sim, uint32_t qid)
{
	struct sim_cq *cq = &sim->cqs[qid];
	uint32_t off = upcie_nvme_cq_db_off(qid, sim->cfg.dstrd);
	uint32_t v = upcie_sim_mmio(sim, off);
	bool shadow = sim_has_shadow(sim, qid) && !sim->dbbuf_dead;
	uint32_t sh = 0;

	if (shadow)
		sh = __atomic_load_n(sim_shadow_slot(sim->shadow, off), __ATOMIC_ACQUIRE);
	if (v != cq->db_seen) {
		cq->db_seen = v;
		sim->st.cq_doorbells++;
		if (v != cq->head && (!shadow || v == sh))
			take_cq_head(cq, v, "doorbell");
	}
	if (shadow && sh != cq->sh_seen) {
		cq->sh_seen = sh;
		if (sh != cq->head && take_cq_head(cq, sh, "shadow"))
			sim->st.shadow_reads++;
	}
}

/* EventIdx: tell the host the last SQ tail / CQ head the model consumed. */
static void write_eventidx(struct upcie_sim *sim, uint32_t qid)
{
	struct sim_sq *sq = &sim->sqs[qid];
	struct sim_cq *cq = &sim->cqs[sq->cqid];

	if (sim->dbbuf_dead)
		return;
	if (sq->ei_seen != sq->tail && sim_has_shadow(sim, qid)) {
		sq->ei_seen = sq->tail;
		__atomic_store_n(
		    sim_shadow_slot(sim->eventidx, upcie_nvme_sq_db_off(qid, sim->cfg.dstrd)),
		    sq->tail, __ATOMIC_RELEASE);
	}
	if (cq->ei_seen != cq->head && sim_has_shadow(sim, sq->cqid)) {
		cq->ei_seen = cq->head;
		__atomic_store_n(
		    sim_shadow_slot(sim->eventidx, upcie_nvme_cq_db_off(sq->cqid, sim->cfg.dstrd)),
		    cq->head, __ATOMIC_RELEASE);
	}
}

/* Newest first, ELPE + 1 entries (Base spec 5.16.1.2). */
static void record_error(struct upcie_sim *sim, uint16_t sqid, const struct upcie_nvme_sqe *sqe,
			 uint16_t status)
{
	struct upcie_nvme_error_log *e = &sim->errlog[0];

	memmove(&sim->errlog[1], &sim->errlog[0], sizeof(sim->errlog) - sizeof(sim->errlog[0]));
	memset(e, 0, sizeof(*e));
	e->error_count = ++sim->err_count;
	e->sqid = sqid;
	e->cid = sqe->cid;
	e->status = (uint16_t)(status << 1);
	e->param_loc = 0xffff;
	e->nsid = sqe->nsid;
	if (sim->err_lba_set)
		e->lba = sim->err_lba; /* the block that failed (sim_md.c) */
	else if (sqid && (sqe->opc == UPCIE_NVME_CMD_READ || sqe->opc == UPCIE_NVME_CMD_WRITE))
		e->lba = (uint64_t)sqe->cdw10 | ((uint64_t)sqe->cdw11 << 32);
	sim->err_lba_set = false;
}

uint16_t upcie_sim_run_io(struct upcie_sim *sim, uint16_t sqid, const struct upcie_nvme_sqe *sqe,
			  struct sim_cpl *cpl)
{
	(void)sqid;
	return upcie_sim_nvm(sim, sqe, cpl);
}

/*
 * UPCIE_SIM_FAULT_ADMIN_OPC: does it take this admin command? A failing
 * command is not run; a lost one is (its effects happen) and posts nothing,
 * but a lost Asynchronous Event Request is dropped, not held.
 */
static bool admin_opc_fault(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
			    uint16_t *status, bool *lost)
{
	if (!sim->aopc_on || sqe->opc != sim->aopc)
		return false;
	sim->aopc_on = false;
	*status = sim->aopc_status;
	*lost = !sim->aopc_status;
	return true;
}

/* Fetch and run at most max commands of one SQ; stop when its CQ is full. */
static int run_sq(struct upcie_sim *sim, uint16_t qid, uint32_t max)
{
	struct sim_sq *sq = &sim->sqs[qid];
	struct sim_cq *cq = &sim->cqs[sq->cqid];
	struct upcie_nvme_sqe sqe;
	int n = 0;

	if (sq->head != sq->tail && (sq->dead || cq->dead)) {
		set_cfs(sim, "a queue's memory was unregistered while the queue was in use");
		return 0;
	}
	while (sq->live && sq->head != sq->tail && (uint32_t)n < max) {
		struct sim_cpl cpl = {0};
		uint16_t status;
		bool lost = false;

		if (upcie_sim_cq_full(cq))
			break; /* CQ full: wait for the host to release entries */
		/* The doorbell was read before (acquire): the SQE the host wrote
		 * before ringing it is visible. Copy it once; never re-read. */
		memcpy(&sqe, sq->base + (size_t)sq->head * 64, sizeof(sqe));
		sq->head = (sq->head + 1) % sq->size;
		n++;
		if (qid)
			sim->st.io_cmds++;
		else
			sim->st.admin_cmds++;

		if (qid && sim->hold_left && upcie_sim_hold(sim, qid, &sqe)) {
			sim->hold_left--;
			continue;
		}
		/* Event requests wait for events: the fault counters skip them. */
		bool aer = !qid && sqe.opc == UPCIE_NVME_ADM_ASYNC_EVENT;

		if (!qid && admin_opc_fault(sim, &sqe, &status, &lost)) {
			if (lost && aer)
				continue;
			if (lost)
				status = upcie_sim_admin(sim, &sqe, &cpl);
		} else if (!aer && sim->nth_left && --sim->nth_left == 0) {
			status = sim->nth_status;
		} else if (qid) {
			status = upcie_sim_nvm(sim, &sqe, &cpl);
		} else {
			status = upcie_sim_admin(sim, &sqe, &cpl);
			if (!sq->live)
				break; /* cannot happen for qid 0; defensive */
		}
		if (cpl.hold)
			continue;
		if (status)
			record_error(sim, qid, &sqe, status);
		if (lost)
			continue;
		if (sim->drop_left && !aer) {
			sim->drop_left--;
			continue;
		}
		upcie_sim_complete(sim, qid, (uint16_t)sq->head, sqe.cid, status, cpl.dw0);
		if (sim->csts & UPCIE_NVME_CSTS_CFS)
			break;
	}
	return n;
}

/* Every I/O SQ, one after the other, each run until empty (upcie_sim_step). */
static int run_all(struct upcie_sim *sim)
{
	int n = 0;

	/* Admin queue: MMIO doorbells only. */
	read_cq_db(sim, 0);
	read_sq_db(sim, 0);
	__atomic_thread_fence(__ATOMIC_ACQUIRE); /* doorbell before SQE contents */
	n += run_sq(sim, 0, UINT32_MAX);

	for (uint32_t i = 0; i < sim->nr_live_cqs; i++)
		read_cq_db(sim, sim->live_cqs[i]);
	for (uint32_t i = 0; i < sim->nr_live_sqs; i++)
		read_sq_db(sim, sim->live_sqs[i]);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < sim->nr_live_sqs && !(sim->csts & UPCIE_NVME_CSTS_CFS); i++) {
		uint16_t qid = sim->live_sqs[i];

		n += run_sq(sim, qid, UINT32_MAX);
		write_eventidx(sim, qid);
	}
	return n;
}

/*
 * At most max commands, one per SQ in turn (upcie_sim_step_n): the SQs
 * (admin included) are served in qid order, starting after the one served
 * last by the previous call, so a caller taking one command per step
 * still moves every queue. Doorbells are read once, up front; a queue
 * created by a command of this step is served from the next step on.
 */
static int run_bounded(struct upcie_sim *sim, uint32_t max)
{
	uint32_t n = 0;

	read_cq_db(sim, 0);
	read_sq_db(sim, 0);
	for (uint32_t i = 0; i < sim->nr_live_cqs; i++)
		read_cq_db(sim, sim->live_cqs[i]);
	for (uint32_t i = 0; i < sim->nr_live_sqs; i++)
		read_sq_db(sim, sim->live_sqs[i]);
	__atomic_thread_fence(__ATOMIC_ACQUIRE); /* doorbells before SQE contents */

	while (n < max && !(sim->csts & UPCIE_NVME_CSTS_CFS)) {
		uint32_t start = sim->rr_last, ran = 0;

		for (uint32_t k = 1; k <= sim->nr_qids && n < max; k++) {
			uint16_t qid = (uint16_t)((start + k) % sim->nr_qids);
			int r;

			if (!sim->sqs[qid].live || (sim->csts & UPCIE_NVME_CSTS_CFS))
				continue;
			r = run_sq(sim, qid, 1);
			if (r > 0) {
				n += (uint32_t)r;
				ran += (uint32_t)r;
				sim->rr_last = qid;
			}
		}
		if (!ran)
			break;
	}
	for (uint32_t i = 0; i < sim->nr_live_sqs; i++)
		write_eventidx(sim, sim->live_sqs[i]);
	return (int)n;
}

bool upcie_sim_sync_regs(struct upcie_sim *sim)
{
	if (sim->removed) {
		upcie_sim_fill_removed(sim);
		return false;
	}
	step_regs(sim);
	return true;
}

/*
 * Registers always; commands only while the controller is ready, not in
 * fatal status, and bus mastering is on (PCI COMMAND.BME): without it a
 * device may not fetch an SQE, read a shadow doorbell or post a CQE, so
 * commands wait in their queues (a reset drops them as usual).
 */
int upcie_sim_step_locked(struct upcie_sim *sim, uint32_t max, bool all)
{
	if (!upcie_sim_sync_regs(sim))
		return 0;
	upcie_sim_irq_tick(sim);
	if (!sim_can_dma(sim) || (!all && !max))
		return 0;
	upcie_sim_aer_flush(sim);
	return all ? run_all(sim) : run_bounded(sim, max);
}

/* Bookkeeping for the admin handlers. */
void upcie_sim_live_add_sq(struct upcie_sim *sim, uint16_t qid)
{
	live_add(sim->live_sqs, &sim->nr_live_sqs, qid);
}

void upcie_sim_live_add_cq(struct upcie_sim *sim, uint16_t qid)
{
	live_add(sim->live_cqs, &sim->nr_live_cqs, qid);
}

void upcie_sim_live_del_cq(struct upcie_sim *sim, uint16_t qid)
{
	live_del(sim->live_cqs, &sim->nr_live_cqs, qid);
}

void upcie_sim_live_del_sq(struct upcie_sim *sim, uint16_t qid)
{
	live_del(sim->live_sqs, &sim->nr_live_sqs, qid);
}
