/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVM command set of the emulated controller (NVM Command Set spec 3):
 * Read, Write, Flush, Write Zeroes, Dataset Management, and the optional
 * Compare, Write Uncorrectable, Verify and Copy, against the per-namespace
 * memory. No allocation, no system call on Read and Write of a namespace
 * without metadata; those with metadata or PI go through sim_md.c.
 */
#include <string.h>
#include <sys/mman.h>

#include "sim_priv.h"

/*
 * Zero [off, off + len) of a namespace's memory (data or metadata, both
 * page-aligned mappings). Whole pages go back to the kernel (MADV_DONTNEED
 * on private anonymous memory reads back zeros), so deallocating a large
 * range does not commit memory; the edges are cleared.
 */
void upcie_sim_zero(uint8_t *base, uint64_t off, uint64_t len)
{
	const uint64_t pg = 4096;
	uint64_t a = (off + pg - 1) & ~(pg - 1), b = (off + len) & ~(pg - 1);

	if (len >= 4 * pg && b > a && !madvise(base + a, b - a, MADV_DONTNEED)) {
		memset(base + off, 0, a - off);
		memset(base + b, 0, off + len - b);
		return;
	}
	memset(base + off, 0, len);
}

static struct sim_ns *get_ns(struct upcie_sim *sim, uint32_t nsid)
{
	if (!nsid || nsid > sim->cfg.nr_ns)
		return NULL;
	return &sim->ns[nsid - 1];
}

/* SLBA in CDW10/11, NLB (0's based) in CDW12 bits 15:0. */
static uint16_t lba_range(const struct sim_ns *ns, const struct upcie_nvme_sqe *sqe, uint64_t *off,
			  uint64_t *len)
{
	uint64_t slba = ((uint64_t)sqe->cdw11 << 32) | sqe->cdw10;
	uint64_t nlb = (uint64_t)(sqe->cdw12 & 0xffff) + 1;

	if (slba >= ns->nlbas || nlb > ns->nlbas - slba)
		return UPCIE_NVME_SC_LBA_RANGE;
	*off = slba << ns->lba_shift;
	*len = nlb << ns->lba_shift;
	return 0;
}

static uint16_t rw(struct upcie_sim *sim, struct sim_ns *ns, const struct upcie_nvme_sqe *sqe,
		   bool write)
{
	uint64_t off, len;
	uint16_t rc;

	if (ns->ms || ns->nr_uncor)
		return upcie_sim_md_rw(sim, ns, sqe);
	rc = lba_range(ns, sqe, &off, &len);
	if (rc)
		return rc;
	if (sim->mdts_bytes && len > sim->mdts_bytes)
		return UPCIE_NVME_SC_INVALID_FIELD;
	rc = upcie_sim_data_xfer(sim, sqe, ns->data + off, (size_t)len, (size_t)len, !write);
	if (rc)
		return rc;
	if (write) {
		sim->host_writes++;
		sim->units_written += len >> 9;
	} else {
		sim->host_reads++;
		sim->units_read += len >> 9;
	}
	return 0;
}

/* Dataset Management (NVM Command Set spec 3.2.3): NR is 0's based, up to
 * 256 ranges; with Attribute Deallocate the ranges read back zeros. */
static uint16_t dsm(struct upcie_sim *sim, struct sim_ns *ns, const struct upcie_nvme_sqe *sqe)
{
	uint32_t nr = (sqe->cdw10 & 0xff) + 1;
	const struct upcie_nvme_dsm_range *r = (const struct upcie_nvme_dsm_range *)sim->scratch;
	size_t len = nr * sizeof(*r);
	uint16_t rc;

	rc = upcie_sim_prp_xfer(sim, sqe->prp1, sqe->prp2, sim->scratch, len, len, false);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < nr; i++) {
		if (r[i].slba > ns->nlbas || r[i].nlb > ns->nlbas - r[i].slba)
			return UPCIE_NVME_SC_LBA_RANGE;
	}
	if (!(sqe->cdw11 & UPCIE_NVME_DSM_AD))
		return 0;
	for (uint32_t i = 0; i < nr; i++)
		upcie_sim_blocks_zero(ns, r[i].slba, r[i].nlb);
	return 0;
}

uint16_t upcie_sim_oncs(const struct upcie_sim *sim)
{
	uint16_t all = UPCIE_NVME_ONCS_COMPARE | UPCIE_NVME_ONCS_WRITE_UNCOR | UPCIE_NVME_ONCS_DSM |
		       UPCIE_NVME_ONCS_WRITE_ZEROES | UPCIE_NVME_ONCS_VERIFY | UPCIE_NVME_ONCS_COPY;

	return all & (uint16_t)~sim->oncs_off;
}

/* The ONCS bit an opcode needs, or 0 for the mandatory ones. */
static uint16_t oncs_bit(uint8_t opc)
{
	switch (opc) {
	case UPCIE_NVME_CMD_COMPARE:
		return UPCIE_NVME_ONCS_COMPARE;
	case UPCIE_NVME_CMD_WRITE_UNCOR:
		return UPCIE_NVME_ONCS_WRITE_UNCOR;
	case UPCIE_NVME_CMD_DSM:
		return UPCIE_NVME_ONCS_DSM;
	case UPCIE_NVME_CMD_WRITE_ZEROES:
		return UPCIE_NVME_ONCS_WRITE_ZEROES;
	case UPCIE_NVME_CMD_VERIFY:
		return UPCIE_NVME_ONCS_VERIFY;
	case UPCIE_NVME_CMD_COPY:
		return UPCIE_NVME_ONCS_COPY;
	default:
		return 0;
	}
}

uint16_t upcie_sim_nvm(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, struct sim_cpl *cpl)
{
	uint16_t need = oncs_bit(sqe->opc);
	struct sim_ns *ns;

	(void)cpl;
	sim->err_lba_set = false;
	if (sqe->opc == UPCIE_NVME_CMD_FLUSH && sqe->nsid == 0xffffffff)
		return 0; /* all namespaces: memory is always durable here */
	switch (sqe->opc) {
	case UPCIE_NVME_CMD_READ:
	case UPCIE_NVME_CMD_WRITE:
	case UPCIE_NVME_CMD_FLUSH:
		break;
	default:
		if (!need || !(upcie_sim_oncs(sim) & need))
			return UPCIE_NVME_SC_INVALID_OPCODE;
	}
	ns = get_ns(sim, sqe->nsid);
	if (!ns)
		return UPCIE_NVME_SC_INVALID_NS;

	switch (sqe->opc) {
	case UPCIE_NVME_CMD_READ:
		return rw(sim, ns, sqe, false);
	case UPCIE_NVME_CMD_WRITE:
		return rw(sim, ns, sqe, true);
	case UPCIE_NVME_CMD_FLUSH:
		return 0;
	case UPCIE_NVME_CMD_WRITE_ZEROES:
		return upcie_sim_write_zeroes(sim, ns, sqe);
	case UPCIE_NVME_CMD_COMPARE:
		return upcie_sim_md_rw(sim, ns, sqe);
	case UPCIE_NVME_CMD_VERIFY:
		return upcie_sim_verify(sim, ns, sqe);
	case UPCIE_NVME_CMD_WRITE_UNCOR:
		return upcie_sim_write_uncor(sim, ns, sqe);
	case UPCIE_NVME_CMD_COPY:
		return upcie_sim_copy(sim, ns, sqe);
	default:
		return dsm(sim, ns, sqe);
	}
}
