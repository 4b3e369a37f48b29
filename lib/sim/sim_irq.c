/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Interrupts of the emulated controller: MSI-X, one eventfd per vector.
 *
 * The PCI backend (backend.c) creates the eventfds when the host enables
 * interrupts and hands them over here; the model signals one after posting
 * an entry to a CQ created with interrupts enabled (Create I/O CQ IEN, the
 * vector in IV; the admin CQ always uses vector 0). As with a device, the
 * entry is written before the interrupt is signalled.
 *
 * Coalescing (Base spec 5.27.1.9/10): Set Features 08h sets an aggregation
 * threshold (THR + 1 entries) and time (TIME x 100 us); an I/O vector
 * signals when THR + 1 entries are pending on it or TIME has passed since
 * the first of them, whichever comes first. TIME 0 is "no delay": every
 * entry signals at once, whatever THR says. Feature 09h turns it off per
 * vector (CD). The admin vector is never coalesced. A reset returns both
 * features to their defaults (off).
 *
 * Faults: IRQ_LOST drops the next 'arg' interrupts (the entries still
 * post); IRQ_SPURIOUS signals vector 'arg' now, with nothing posted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sim_priv.h"

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void upcie_sim_irq_raise(struct upcie_sim *sim, uint32_t vec)
{
	uint64_t one = 1;

	if (!sim->irq_fds || vec >= sim->nr_vec)
		return;
	if (sim->vecs[vec].pending)
		sim->irq_waiting--;
	sim->vecs[vec].pending = 0;
	if (sim->irq_lost_left) {
		sim->irq_lost_left--;
		return;
	}
	sim->vecs[vec].raised++;
	/* An eventfd write fails only when its counter would overflow: then
	 * the host has a wake-up pending anyway. */
	if (write(sim->irq_fds[vec], &one, sizeof(one)) != sizeof(one))
		return;
}

void upcie_sim_irq_post(struct upcie_sim *sim, uint16_t cqid)
{
	const struct sim_cq *cq = &sim->cqs[cqid];
	struct sim_vec *v;

	if (!cq->ien || !sim->irq_fds || cq->iv >= sim->nr_vec)
		return;
	v = &sim->vecs[cq->iv];
	/* No time to wait (TIME 0: no delay) or nothing to wait for (THR 0). */
	if (!cqid || v->cd || !sim->aggr_time || !sim->aggr_thr) {
		upcie_sim_irq_raise(sim, cq->iv);
		return;
	}
	if (!v->pending++) {
		v->first_ns = now_ns();
		sim->irq_waiting++;
	}
	if (v->pending >= (uint32_t)sim->aggr_thr + 1)
		upcie_sim_irq_raise(sim, cq->iv);
}

void upcie_sim_irq_tick(struct upcie_sim *sim)
{
	uint64_t now, limit;

	if (!sim->irq_waiting || !sim->aggr_time)
		return;
	now = now_ns();
	limit = (uint64_t)sim->aggr_time * 100000ull;
	for (uint32_t i = 0; i < sim->nr_vec && sim->irq_waiting; i++)
		if (sim->vecs[i].pending && now - sim->vecs[i].first_ns >= limit)
			upcie_sim_irq_raise(sim, i);
}

void upcie_sim_irq_reset(struct upcie_sim *sim)
{
	sim->aggr_thr = 0;
	sim->aggr_time = 0;
	sim->irq_waiting = 0;
	for (uint32_t i = 0; i < sim->nr_vec; i++) {
		sim->vecs[i].pending = 0;
		sim->vecs[i].cd = false;
	}
}

void upcie_sim_irq_attach(struct upcie_sim *sim, const int *fds)
{
	sim_lock(sim);
	sim->irq_fds = fds;
	sim->irq_waiting = 0;
	for (uint32_t i = 0; i < sim->nr_vec; i++)
		sim->vecs[i].pending = 0;
	sim_unlock(sim);
}

uint64_t upcie_sim_irqs(struct upcie_sim *sim, unsigned vec)
{
	uint64_t n = 0;

	sim_lock(sim);
	for (uint32_t i = 0; i < sim->nr_vec; i++)
		if (vec == UINT32_MAX || vec == i)
			n += sim->vecs[i].raised;
	sim_unlock(sim);
	return n;
}

uint16_t upcie_sim_irq_feature(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, bool set,
			       uint32_t *dw0)
{
	uint32_t fid = sqe->cdw10 & 0xff;

	if (fid == UPCIE_NVME_FEAT_IRQ_COALESCE) {
		if (set) {
			sim->aggr_thr = (uint8_t)sqe->cdw11;
			sim->aggr_time = (uint8_t)(sqe->cdw11 >> 8);
		}
		*dw0 = sim->aggr_thr | (uint32_t)sim->aggr_time << 8;
		return 0;
	}
	/* Interrupt Vector Configuration: IV in cdw11 15:0, CD in bit 16. */
	uint32_t iv = sqe->cdw11 & 0xffff;

	if (iv >= sim->nr_vec)
		return UPCIE_NVME_SC_INVALID_FIELD;
	/* The admin vector cannot be coalesced: CD reads 1 there. */
	if (set && iv)
		sim->vecs[iv].cd = (sqe->cdw11 >> 16) & 1;
	*dw0 = iv | (uint32_t)(!iv || sim->vecs[iv].cd) << 16;
	return 0;
}
