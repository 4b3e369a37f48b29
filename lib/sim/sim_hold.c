/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The model's slow commands: I/O commands it fetched but holds (the
 * UPCIE_SIM_FAULT_HOLD fault: a command "stuck in the device" that may
 * still run, and write host memory, later), Abort (Base spec 5.1), held
 * Asynchronous Event Requests and the events that complete them (5.2).
 */
#include <errno.h>
#include <string.h>

#include "core/log.h"
#include "sim_priv.h"

bool upcie_sim_hold(struct upcie_sim *sim, uint16_t sqid, const struct upcie_nvme_sqe *sqe)
{
	if (sim->nr_held >= SIM_HELD_MAX)
		return false;
	sim->held[sim->nr_held].sqe = *sqe;
	sim->held[sim->nr_held].sqid = sqid;
	sim->nr_held++;
	return true;
}

static void held_remove(struct upcie_sim *sim, uint32_t i)
{
	sim->held[i] = sim->held[--sim->nr_held];
}

/* Abort: CDW10 = CID << 16 | SQID; dword 0 bit 0 = 0 when it was aborted. */
uint16_t upcie_sim_abort(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
			 struct sim_cpl *cpl)
{
	uint16_t sqid = (uint16_t)(sqe->cdw10 & 0xffff), cid = (uint16_t)(sqe->cdw10 >> 16);

	sim->st.aborts++;
	if (sim->f_abort_lost) {
		cpl->hold = true; /* never completes */
		return 0;
	}
	cpl->dw0 = 1;
	for (uint32_t i = 0; i < sim->nr_held; i++) {
		if (sim->held[i].sqid != sqid || sim->held[i].sqe.cid != cid)
			continue;
		upcie_sim_post(sim, sqid, cid, UPCIE_NVME_SC_ABORT_REQ, 0);
		held_remove(sim, i);
		cpl->dw0 = 0;
		break;
	}
	return 0;
}

void upcie_sim_held_sq_deleted(struct upcie_sim *sim, uint16_t sqid)
{
	for (uint32_t i = 0; i < sim->nr_held;) {
		if (sim->held[i].sqid != sqid) {
			i++;
			continue;
		}
		upcie_sim_post(sim, sqid, sim->held[i].sqe.cid, UPCIE_NVME_SC_ABORT_SQ_DELETED, 0);
		held_remove(sim, i);
	}
}

/* The oldest pending event, taken off the list. */
static uint32_t aer_pop(struct upcie_sim *sim)
{
	uint32_t dw0 = sim->aer_pending[0];

	memmove(sim->aer_pending, sim->aer_pending + 1,
		--sim->nr_aer_pending * sizeof(sim->aer_pending[0]));
	return dw0;
}

/* An event: pending until a held event request can complete with it. */
static void raise_event(struct upcie_sim *sim, uint32_t dw0)
{
	if (sim->nr_aer_pending < sizeof(sim->aer_pending) / sizeof(sim->aer_pending[0]))
		sim->aer_pending[sim->nr_aer_pending++] = dw0;
	upcie_sim_aer_flush(sim);
}

/* Complete held event requests with pending events, oldest first, while
 * the model may post and the admin CQ has room (else they wait). */
void upcie_sim_aer_flush(struct upcie_sim *sim)
{
	while (sim->aer_held && sim->nr_aer_pending && sim_can_dma(sim) &&
	       !upcie_sim_cq_full(&sim->cqs[0]))
		upcie_sim_post(sim, 0, sim->aer_cids[--sim->aer_held], 0, aer_pop(sim));
}

uint16_t upcie_sim_aer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, struct sim_cpl *cpl)
{
	if (sim->nr_aer_pending) {
		cpl->dw0 = aer_pop(sim);
		return 0;
	}
	if (sim->aer_held >= SIM_AER_MAX)
		return UPCIE_NVME_SC_AER_LIMIT;
	sim->aer_cids[sim->aer_held++] = sqe->cid;
	cpl->hold = true;
	return 0;
}

int upcie_sim_release_held(struct upcie_sim *sim)
{
	int n = 0;

	if (!sim)
		return upcie_err(-EINVAL, "sim: no model given to upcie_sim_release_held()");
	sim_lock(sim);
	/* Register changes first: a disable the host wrote drops them unrun.
	 * Without bus mastering they stay held (they would move data). */
	if (!upcie_sim_sync_regs(sim) || !sim_bme(sim)) {
		sim_unlock(sim);
		return 0;
	}
	while (sim->nr_held) {
		struct sim_held h = sim->held[0];
		struct sim_cpl cpl = {0};
		uint16_t st;

		held_remove(sim, 0);
		if (!sim->ready || !sim->sqs[h.sqid].live)
			continue; /* the controller let go of it: it never runs */
		st = upcie_sim_run_io(sim, h.sqid, &h.sqe, &cpl);
		upcie_sim_post(sim, h.sqid, h.sqe.cid, st, cpl.dw0);
		n++;
	}
	sim_unlock(sim);
	return n;
}

int upcie_sim_event(struct upcie_sim *sim, uint8_t type, uint8_t info, uint8_t lid)
{
	if (!sim)
		return upcie_err(-EINVAL, "sim: no model given to upcie_sim_event()");
	sim_lock(sim);
	upcie_sim_sync_regs(sim); /* a disable the host wrote takes the requests first */
	raise_event(sim, (uint32_t)type | (uint32_t)info << 8 | (uint32_t)lid << 16);
	sim_unlock(sim);
	return 0;
}

int upcie_sim_set_md_sgl(struct upcie_sim *sim, bool on)
{
	if (!sim)
		return upcie_err(-EINVAL, "sim: no model given to upcie_sim_set_md_sgl()");
	if (on && !sim->cfg.sgl)
		return upcie_err(-EINVAL, "sim: metadata SGLs (SGLS bit 19) need SGLs: create the "
					  "model with config.sgl = true");
	sim_lock(sim);
	sim->md_sgl = on;
	sim_unlock(sim);
	return 0;
}

int upcie_sim_set_active_ns(struct upcie_sim *sim, uint32_t nr_ns)
{
	if (!sim)
		return upcie_err(-EINVAL, "sim: no model given to upcie_sim_set_active_ns()");
	sim_lock(sim);
	if (nr_ns > sim->nr_ns_created) {
		sim_unlock(sim);
		return upcie_err(-EINVAL, "sim: %u namespaces asked, the model was created with %u",
				 nr_ns, sim->nr_ns_created);
	}
	/* The nsids between the old and the new count changed state. */
	uint32_t lo = nr_ns < sim->cfg.nr_ns ? nr_ns : sim->cfg.nr_ns;
	uint32_t hi = nr_ns > sim->cfg.nr_ns ? nr_ns : sim->cfg.nr_ns;

	for (uint32_t id = lo + 1; id <= hi; id++) {
		bool known = false;

		for (uint32_t i = 0; i < sim->nr_changed_ns && i < 1024; i++)
			known |= sim->changed_ns[i] == id;
		if (!known && sim->nr_changed_ns++ < 1024)
			sim->changed_ns[sim->nr_changed_ns - 1] = id;
	}
	sim->cfg.nr_ns = nr_ns;
	upcie_sim_sync_regs(sim); /* as upcie_sim_event() */
	/* Notice: Namespace Attribute Changed, log 04h (Changed Namespace List). */
	raise_event(sim, 2u | 0u << 8 | 0x04u << 16);
	sim_unlock(sim);
	return 0;
}
