/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admin command set of the emulated controller (Base spec 5), with the
 * specification's checks and status codes.
 */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "sim_priv.h"

static void pad(char *dst, const char *src, size_t n)
{
	size_t k = strnlen(src, n);

	memset(dst, ' ', n);
	memcpy(dst, src, k);
}

static uint16_t to_host(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, size_t len,
			size_t avail)
{
	if (sim->mdts_bytes && len > sim->mdts_bytes)
		return UPCIE_NVME_SC_INVALID_FIELD;
	return upcie_sim_prp_xfer(sim, sqe->prp1, sqe->prp2, sim->scratch, len, avail, true);
}

/* Extended LBA formats: offered when a namespace has the 64-bit guard. */
static bool sim_elbas(const struct upcie_sim *sim)
{
	/* A capability of the controller: every namespace it was made with,
	 * attached or not (detaching the only 64-bit guard namespace must
	 * not change Identify Controller, which a host reads once). */
	for (uint32_t i = 0; i < sim->nr_ns_created; i++)
		if (sim->cfg.ns[i].md_flags & UPCIE_SIM_MD_GUARD64)
			return true;
	return false;
}

/* Identify Controller (Base spec 5.17.2.1). */
static void id_ctrl(struct upcie_sim *sim, struct upcie_nvme_id_ctrl *id)
{
	memset(id, 0, sizeof(*id));
	id->vid = SIM_VID;
	id->ssvid = SIM_VID;
	pad(id->sn, sim->cfg.serial, sizeof(id->sn));
	pad(id->mn, sim->cfg.model, sizeof(id->mn));
	pad(id->fr, "1.0", sizeof(id->fr));
	id->mdts = sim_bad_id(sim, UPCIE_SIM_BAD_ID_MDTS0) ? 0 : sim->cfg.mdts;
	id->cntlid = 1;
	id->ver = sim->vs;
	id->cntrltype = 1; /* I/O controller */
	id->oacs = (sim->cfg.dbbuf ? UPCIE_NVME_OACS_DBBUF : 0) | UPCIE_NVME_OACS_FORMAT;
	id->acl = SIM_ACL;
	id->aerl = SIM_AER_MAX - 1;
	id->lpa = 1u << 2; /* extended Get Log Page: NUMDU, LPOL/LPOU */
	id->elpe = SIM_ERRLOG_NR - 1;
	id->wctemp = 343;
	id->cctemp = 373;
	id->sqes = (SIM_SQES << 4) | SIM_SQES;
	id->cqes = (SIM_CQES << 4) | SIM_CQES;
	id->nn = sim_bad_id(sim, UPCIE_SIM_BAD_ID_NN_HUGE) ? UINT32_MAX : sim->cfg.nr_ns;
	id->oncs = upcie_sim_oncs(sim);
	id->ocfs = UPCIE_NVME_OCFS_FORMAT0 | UPCIE_NVME_OCFS_FORMAT1;
	if (sim_elbas(sim))
		id->ctratt |= UPCIE_NVME_CTRATT_ELBAS;
	id->vwc = 1;
	id->sgls = sim->cfg.sgl ? 1 : 0; /* SGLs without alignment needs */
	if (sim->cfg.sgl && sim->md_sgl)
		id->sgls |= UPCIE_NVME_SGLS_MPTR_SGL; /* no bit 17: metadata dword aligned */
	id->psd[0].mp = 2500;			      /* 25 W in centiwatts */
	snprintf(id->subnqn, sizeof(id->subnqn), "nqn.2024-01.io.upcie:sim:%s", sim->cfg.serial);
}

/* The NVM command set's Identify Namespace (CNS 05h, CSI 00h; NVM Command
 * Set spec 4.1.5.2): LBSTM 0 (no storage tags), PIC, and ELBAF per LBA
 * format: PIF in bits 8:7, STS 0. */
static void id_ns_nvm(const struct upcie_sim *sim, uint32_t nsid, uint8_t *p)
{
	const struct sim_ns *ns = &sim->ns[nsid - 1];

	memset(p, 0, 4096);
	p[8] = 1u << 1; /* PIC: 64-bit guard PI supported */
	for (uint32_t i = 0; i < ns->nlbaf; i++) {
		uint32_t elbaf = ns->lbaf_guard64[i] ? (uint32_t)UPCIE_NVME_PIF_64 << 7 : 0;

		memcpy(p + UPCIE_NVME_ELBAF_OFFSET + 4 * i, &elbaf, sizeof(elbaf));
	}
}

/* Identify Namespace (NVM Command Set spec 4.1.5.1). */
static void id_ns(struct upcie_sim *sim, uint32_t nsid, struct upcie_nvme_id_ns *id)
{
	const struct sim_ns *ns = &sim->ns[nsid - 1];

	memset(id, 0, sizeof(*id));
	id->nsze = ns->nlbas;
	id->ncap = ns->nlbas;
	id->nuse = ns->nlbas;
	id->nlbaf = (uint8_t)(ns->nlbaf - 1);
	id->flbas = (uint8_t)(ns->fmt | (ns->extended ? UPCIE_NVME_FLBAS_EXTENDED : 0));
	id->mc = UPCIE_NVME_MC_EXTENDED | UPCIE_NVME_MC_SEPARATE;
	id->dpc = UPCIE_NVME_DPC_TYPE1 | UPCIE_NVME_DPC_TYPE2 | UPCIE_NVME_DPC_TYPE3 |
		  UPCIE_NVME_DPC_FIRST | UPCIE_NVME_DPC_LAST;
	id->dps = (uint8_t)(ns->pi | (ns->pi_first ? UPCIE_NVME_DPS_FIRST : 0));
	id->dlfeat = 0x1 | (1u << 3); /* deallocated blocks read zeros; WZ may deallocate */
	id->mssrl = SIM_COPY_MSSRL;
	id->mcl = SIM_COPY_MCL;
	id->msrc = SIM_COPY_MSRC - 1;
	for (uint32_t i = 0; i < ns->nlbaf; i++) {
		id->lbaf[i].lbads = (uint8_t)ns->lba_shift;
		id->lbaf[i].ms = ns->lbaf_ms[i];
	}
	id->eui64[0] = 0x02;
	id->eui64[7] = (uint8_t)nsid;
	/* A buggy device's namespace 1 (UPCIE_SIM_FAULT_BAD_ID). */
	if (nsid == 1 && sim_bad_id(sim, UPCIE_SIM_BAD_ID_FLBAS))
		id->flbas = (uint8_t)(id->nlbaf + 1);
	if (nsid == 1 && sim_bad_id(sim, UPCIE_SIM_BAD_ID_NSZE0)) {
		id->nsze = 0;
		id->ncap = 0;
		id->nuse = 0;
	}
}

static uint16_t identify(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint32_t cns = sqe->cdw10 & 0xff;

	switch (cns) {
	case UPCIE_NVME_CNS_NS:
		if (!sqe->nsid || sqe->nsid > sim->cfg.nr_ns)
			return UPCIE_NVME_SC_INVALID_NS;
		id_ns(sim, sqe->nsid, (struct upcie_nvme_id_ns *)sim->scratch);
		break;
	case UPCIE_NVME_CNS_CTRL:
		id_ctrl(sim, (struct upcie_nvme_id_ctrl *)sim->scratch);
		break;
	case UPCIE_NVME_CNS_CS_NS:
		/* Only the NVM command set (CSI 00h, CDW11 31:24), and only on
		 * a controller with extended LBA formats. */
		if (!sim_elbas(sim) || (sqe->cdw11 >> 24) != 0)
			return UPCIE_NVME_SC_INVALID_FIELD;
		if (!sqe->nsid || sqe->nsid > sim->cfg.nr_ns)
			return UPCIE_NVME_SC_INVALID_NS;
		id_ns_nvm(sim, sqe->nsid, sim->scratch);
		break;
	case UPCIE_NVME_CNS_ACTIVE_NS_LIST: {
		uint32_t *list = (uint32_t *)sim->scratch, k = 0;

		if (sqe->nsid >= 0xfffffffe)
			return UPCIE_NVME_SC_INVALID_NS;
		memset(sim->scratch, 0, 4096);
		for (uint32_t id = sqe->nsid + 1; id <= sim->cfg.nr_ns; id++)
			list[k++] = id;
		break;
	}
	default:
		return UPCIE_NVME_SC_INVALID_FIELD;
	}
	return to_host(sim, sqe, 4096, 4096);
}

static uint16_t set_features(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
			     struct sim_cpl *cpl)
{
	uint32_t fid = sqe->cdw10 & 0xff;

	switch (fid) {
	case UPCIE_NVME_FEAT_NUM_QUEUES: {
		uint32_t nsqr = sqe->cdw11 & 0xffff, ncqr = sqe->cdw11 >> 16;

		if (nsqr == 0xffff || ncqr == 0xffff)
			return UPCIE_NVME_SC_INVALID_FIELD;
		/* Base spec 5.27.1.5: only before any I/O queue exists. */
		if (sim->qs_created)
			return UPCIE_NVME_SC_CMD_SEQ_ERROR;
		sim->nsqa = nsqr + 1 < sim->cfg.max_ioqpairs ? nsqr + 1 : sim->cfg.max_ioqpairs;
		sim->ncqa = ncqr + 1 < sim->cfg.max_ioqpairs ? ncqr + 1 : sim->cfg.max_ioqpairs;
		cpl->dw0 = ((sim->ncqa - 1) << 16) | (sim->nsqa - 1);
		return 0;
	}
	case UPCIE_NVME_FEAT_VOLATILE_WC:
		sim->vwc_on = sqe->cdw11 & 1;
		return 0;
	case UPCIE_NVME_FEAT_IRQ_COALESCE:
	case UPCIE_NVME_FEAT_IRQ_CONFIG:
		return upcie_sim_irq_feature(sim, sqe, true, &cpl->dw0);
	default:
		return UPCIE_NVME_SC_INVALID_FIELD;
	}
}

static uint16_t get_features(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
			     struct sim_cpl *cpl)
{
	switch (sqe->cdw10 & 0xff) {
	case UPCIE_NVME_FEAT_NUM_QUEUES:
		cpl->dw0 = ((sim->ncqa - 1) << 16) | (sim->nsqa - 1);
		return 0;
	case UPCIE_NVME_FEAT_VOLATILE_WC:
		cpl->dw0 = sim->vwc_on ? 1 : 0;
		return 0;
	case UPCIE_NVME_FEAT_IRQ_COALESCE:
	case UPCIE_NVME_FEAT_IRQ_CONFIG:
		return upcie_sim_irq_feature(sim, sqe, false, &cpl->dw0);
	default:
		return UPCIE_NVME_SC_INVALID_FIELD;
	}
}

/* Check a queue's base: page aligned (PC=1) and inside registered memory. */
static uint16_t queue_mem(struct upcie_sim *sim, uint64_t base, uint64_t bytes)
{
	if (base & (sim->page_size - 1))
		return UPCIE_NVME_SC_INVALID_PRP_OFFSET;
	if (!base || !upcie_sim_dma_ok(sim, base, bytes)) {
		sim->st.xfer_errors++;
		return UPCIE_NVME_SC_DATA_XFER_ERROR;
	}
	return 0;
}

/*
 * A new queue starts at 0. With shadow doorbells on, its shadow and EventIdx
 * slots may still hold the values of an earlier queue with the same id; the
 * model clears them so a stale shadow is never taken as a new tail or head.
 */
static void shadow_reset(struct upcie_sim *sim, uint32_t dboff, uint32_t qid)
{
	if (!sim_has_shadow(sim, qid) || sim->dbbuf_dead)
		return;
	__atomic_store_n(sim_shadow_slot(sim->shadow, dboff), 0, __ATOMIC_RELAXED);
	__atomic_store_n(sim_shadow_slot(sim->eventidx, dboff), 0, __ATOMIC_RELEASE);
}

/* Create I/O Completion Queue (Base spec 5.4). */
static uint16_t create_cq(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint32_t qid = sqe->cdw10 & 0xffff, qsize = (sqe->cdw10 >> 16) + 1;
	struct sim_cq *cq;
	uint16_t rc;

	if (!qid || qid > sim->ncqa || sim->cqs[qid].live)
		return UPCIE_NVME_SC_QID_INVALID;
	if (qsize < 2 || qsize > upcie_nvme_cap_mqes(sim->cap) + 1)
		return UPCIE_NVME_SC_QUEUE_SIZE;
	/* Non-contiguous queues are not offered (CAP.CQR, or the model lacks them). */
	if (!(sqe->cdw11 & UPCIE_NVME_QUEUE_PC))
		return UPCIE_NVME_SC_INVALID_FIELD;
	if ((sqe->cdw11 & UPCIE_NVME_QUEUE_IEN) && (sqe->cdw11 >> 16) >= sim->nr_vec)
		return UPCIE_NVME_SC_INVALID_IV;
	rc = queue_mem(sim, sqe->prp1, (uint64_t)qsize * 16);
	if (rc)
		return rc;
	cq = &sim->cqs[qid];
	*cq = (struct sim_cq){.base = (uint8_t *)(uintptr_t)sqe->prp1,
			      .size = qsize,
			      .phase = 1,
			      .live = true,
			      .ien = (sqe->cdw11 & UPCIE_NVME_QUEUE_IEN) != 0,
			      .iv = (uint16_t)(sqe->cdw11 >> 16)};
	upcie_sim_mmio_set(sim, upcie_nvme_cq_db_off(qid, sim->cfg.dstrd), 0);
	shadow_reset(sim, upcie_nvme_cq_db_off(qid, sim->cfg.dstrd), qid);
	upcie_sim_live_add_cq(sim, (uint16_t)qid);
	sim->qs_created = true;
	return 0;
}

/* Create I/O Submission Queue (Base spec 5.5). */
static uint16_t create_sq(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint32_t qid = sqe->cdw10 & 0xffff, qsize = (sqe->cdw10 >> 16) + 1;
	uint32_t cqid = sqe->cdw11 >> 16;
	struct sim_sq *sq;
	uint16_t rc;

	if (!qid || qid > sim->nsqa || sim->sqs[qid].live)
		return UPCIE_NVME_SC_QID_INVALID;
	if (!cqid || cqid >= sim->nr_qids || !sim->cqs[cqid].live)
		return UPCIE_NVME_SC_CQ_INVALID;
	if (qsize < 2 || qsize > upcie_nvme_cap_mqes(sim->cap) + 1)
		return UPCIE_NVME_SC_QUEUE_SIZE;
	if (!(sqe->cdw11 & UPCIE_NVME_QUEUE_PC))
		return UPCIE_NVME_SC_INVALID_FIELD;
	rc = queue_mem(sim, sqe->prp1, (uint64_t)qsize * 64);
	if (rc)
		return rc;
	sq = &sim->sqs[qid];
	*sq = (struct sim_sq){.base = (uint8_t *)(uintptr_t)sqe->prp1,
			      .size = qsize,
			      .cqid = (uint16_t)cqid,
			      .live = true};
	sim->cqs[cqid].nr_sqs++;
	upcie_sim_mmio_set(sim, upcie_nvme_sq_db_off(qid, sim->cfg.dstrd), 0);
	shadow_reset(sim, upcie_nvme_sq_db_off(qid, sim->cfg.dstrd), qid);
	upcie_sim_live_add_sq(sim, (uint16_t)qid);
	sim->qs_created = true;
	return 0;
}

static uint16_t delete_sq(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint32_t qid = sqe->cdw10 & 0xffff;
	struct sim_sq *sq;

	if (!qid || qid >= sim->nr_qids || !sim->sqs[qid].live)
		return UPCIE_NVME_SC_QID_INVALID;
	if (sim->f_delete_sq_refused)
		return UPCIE_NVME_SC_INVALID_QUEUE_DELETION;
	sq = &sim->sqs[qid];
	/* Its held commands are aborted, with completions, before it goes. */
	upcie_sim_held_sq_deleted(sim, (uint16_t)qid);
	sim->cqs[sq->cqid].nr_sqs--;
	memset(sq, 0, sizeof(*sq));
	upcie_sim_mmio_set(sim, upcie_nvme_sq_db_off(qid, sim->cfg.dstrd), 0);
	upcie_sim_live_del_sq(sim, (uint16_t)qid);
	return 0;
}

static uint16_t delete_cq(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint32_t qid = sqe->cdw10 & 0xffff;
	struct sim_cq *cq;

	if (!qid || qid >= sim->nr_qids || !sim->cqs[qid].live)
		return UPCIE_NVME_SC_QID_INVALID;
	cq = &sim->cqs[qid];
	if (cq->nr_sqs)
		return UPCIE_NVME_SC_INVALID_QUEUE_DELETION;
	memset(cq, 0, sizeof(*cq));
	upcie_sim_mmio_set(sim, upcie_nvme_cq_db_off(qid, sim->cfg.dstrd), 0);
	upcie_sim_live_del_cq(sim, (uint16_t)qid);
	return 0;
}

static void le128(uint8_t *dst, uint64_t v)
{
	memset(dst, 0, 16);
	memcpy(dst, &v, sizeof(v));
}

/* SMART / Health Information (Base spec 5.16.1.3). */
static void smart_log(struct upcie_sim *sim, struct upcie_nvme_smart_log *s)
{
	memset(s, 0, sizeof(*s));
	s->temperature = 308; /* 35 C */
	s->avail_spare = 100;
	s->spare_thresh = 10;
	le128(s->data_units_read, (sim->units_read + 999) / 1000);
	le128(s->data_units_written, (sim->units_written + 999) / 1000);
	le128(s->host_reads, sim->host_reads);
	le128(s->host_writes, sim->host_writes);
	le128(s->power_cycles, 1);
	le128(s->num_err_log_entries, sim->err_count);
	s->temp_sensor[0] = 308;
}

/*
 * Get Log Page (Base spec 5.16): NUMDL/NUMDU and the byte offset honoured.
 * The log's bytes from the offset are returned, zeros past its end, for the
 * whole length asked. The length is bounded by MDTS, or with MDTS 0 (no
 * limit) by SIM_LOG_MAX_XFER: a NUMD of up to 2^32 dwords would otherwise
 * have the model zero-fill up to 16 GiB; longer requests fail with Invalid
 * Field. The Changed Namespace List is cleared by a read that succeeds.
 */
#define SIM_LOG_CHANGED_NS 0x04

static uint16_t get_log_page(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint32_t lid = sqe->cdw10 & 0xff;
	uint64_t numd = (((uint64_t)(sqe->cdw11 & 0xffff) << 16) | (sqe->cdw10 >> 16)) + 1;
	uint64_t lpo = ((uint64_t)sqe->cdw13 << 32) | sqe->cdw12;
	uint64_t len = numd * 4;
	size_t size;
	uint16_t st;

	memset(sim->scratch, 0, sizeof(sim->scratch));
	switch (lid) {
	case UPCIE_NVME_LOG_ERROR:
		size = sizeof(sim->errlog);
		memcpy(sim->scratch, sim->errlog, size);
		break;
	case UPCIE_NVME_LOG_SMART:
		size = sizeof(struct upcie_nvme_smart_log);
		smart_log(sim, (struct upcie_nvme_smart_log *)sim->scratch);
		break;
	case SIM_LOG_CHANGED_NS: {
		/* Changed Namespace List (5.16.1.5): reading it clears it. */
		uint32_t *list = (uint32_t *)(void *)sim->scratch;

		size = 4096;
		if (sim->nr_changed_ns > 1024)
			list[0] = UINT32_MAX;
		else
			memcpy(list, sim->changed_ns, sim->nr_changed_ns * sizeof(*list));
		break;
	}
	default:
		return UPCIE_NVME_SC_INVALID_LOG_PAGE;
	}
	if ((lpo & 3) || lpo > size)
		return UPCIE_NVME_SC_INVALID_FIELD;
	if (sim->mdts_bytes ? len > sim->mdts_bytes : len > SIM_LOG_MAX_XFER)
		return UPCIE_NVME_SC_INVALID_FIELD;
	memmove(sim->scratch, sim->scratch + lpo, size - lpo);
	st = upcie_sim_prp_xfer(sim, sqe->prp1, sqe->prp2, sim->scratch, (size_t)len,
				size - (size_t)lpo, true);
	if (!st && lid == SIM_LOG_CHANGED_NS)
		sim->nr_changed_ns = 0;
	return st;
}

/* Doorbell Buffer Config (Base spec 5.8). */
static uint16_t dbbuf_config(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint64_t pmask = sim->page_size - 1;

	if (!sim->cfg.dbbuf)
		return UPCIE_NVME_SC_INVALID_OPCODE;
	if (!sqe->prp1 || !sqe->prp2 || (sqe->prp1 & pmask) || (sqe->prp2 & pmask))
		return UPCIE_NVME_SC_INVALID_FIELD;
	if (!upcie_sim_dma_ok(sim, sqe->prp1, sim->page_size) ||
	    !upcie_sim_dma_ok(sim, sqe->prp2, sim->page_size)) {
		sim->st.xfer_errors++;
		return UPCIE_NVME_SC_DATA_XFER_ERROR;
	}
	sim->shadow = (uint8_t *)(uintptr_t)sqe->prp1;
	sim->eventidx = (uint8_t *)(uintptr_t)sqe->prp2;
	sim->dbbuf_on = true;
	sim->dbbuf_dead = false;
	/* Queues that already exist: publish where they stand, so the shadow and
	 * the model agree from the start. */
	for (uint32_t q = 1; q < sim->nr_qids; q++) {
		uint32_t so = upcie_nvme_sq_db_off(q, sim->cfg.dstrd) - UPCIE_NVME_REG_DBS;
		uint32_t co = upcie_nvme_cq_db_off(q, sim->cfg.dstrd) - UPCIE_NVME_REG_DBS;

		if (co + 4 > sim->page_size)
			break;
		if (sim->sqs[q].live) {
			memcpy(sim->shadow + so, &sim->sqs[q].tail, 4);
			memcpy(sim->eventidx + so, &sim->sqs[q].tail, 4);
			sim->sqs[q].ei_seen = sim->sqs[q].tail;
			sim->sqs[q].sh_seen = sim->sqs[q].tail;
		}
		if (sim->cqs[q].live) {
			memcpy(sim->shadow + co, &sim->cqs[q].head, 4);
			memcpy(sim->eventidx + co, &sim->cqs[q].head, 4);
			sim->cqs[q].ei_seen = sim->cqs[q].head;
			sim->cqs[q].sh_seen = sim->cqs[q].head;
		}
	}
	return 0;
}

/* Format NVM (Base spec 5.23): a new LBA format, metadata placement and
 * PI for one namespace or all; their blocks read zeros afterwards. */
static uint16_t format_one(struct sim_ns *ns, uint32_t cdw10)
{
	uint32_t lbaf = (cdw10 & 0xf) | ((cdw10 >> 12) & 0x3) << 4;
	uint16_t rc =
	    upcie_sim_ns_format(ns, lbaf, cdw10 & UPCIE_NVME_FORMAT_MSET,
				(uint8_t)((cdw10 >> 5) & 0x7), cdw10 & UPCIE_NVME_FORMAT_PIL);

	if (!rc)
		upcie_sim_blocks_zero(ns, 0, ns->nlbas);
	return rc;
}

static uint16_t format_nvm(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe)
{
	uint16_t rc = 0;

	if ((sqe->cdw10 >> 9) & 0x7)
		return UPCIE_NVME_SC_INVALID_FIELD; /* no secure erase here */
	if (sqe->nsid != UPCIE_NVME_NSID_ALL) {
		if (!sqe->nsid || sqe->nsid > sim->cfg.nr_ns)
			return UPCIE_NVME_SC_INVALID_NS;
		return format_one(&sim->ns[sqe->nsid - 1], sqe->cdw10);
	}
	for (uint32_t i = 0; i < sim->cfg.nr_ns && !rc; i++)
		rc = format_one(&sim->ns[i], sqe->cdw10);
	return rc;
}

uint16_t upcie_sim_admin(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
			 struct sim_cpl *cpl)
{
	switch (sqe->opc) {
	case UPCIE_NVME_ADM_IDENTIFY:
		return identify(sim, sqe);
	case UPCIE_NVME_ADM_SET_FEATURES:
		return set_features(sim, sqe, cpl);
	case UPCIE_NVME_ADM_GET_FEATURES:
		return get_features(sim, sqe, cpl);
	case UPCIE_NVME_ADM_CREATE_CQ:
		return create_cq(sim, sqe);
	case UPCIE_NVME_ADM_CREATE_SQ:
		return create_sq(sim, sqe);
	case UPCIE_NVME_ADM_DELETE_SQ:
		return delete_sq(sim, sqe);
	case UPCIE_NVME_ADM_DELETE_CQ:
		return delete_cq(sim, sqe);
	case UPCIE_NVME_ADM_GET_LOG_PAGE:
		return get_log_page(sim, sqe);
	case UPCIE_NVME_ADM_ABORT:
		return upcie_sim_abort(sim, sqe, cpl);
	case UPCIE_NVME_ADM_ASYNC_EVENT:
		return upcie_sim_aer(sim, sqe, cpl);
	case UPCIE_NVME_ADM_DBBUF_CONFIG:
		return dbbuf_config(sim, sqe);
	case UPCIE_NVME_ADM_FORMAT_NVM:
		return format_nvm(sim, sqe);
	default:
		return UPCIE_NVME_SC_INVALID_OPCODE;
	}
}
