/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Blocks with metadata and end-to-end protection in the emulated controller
 * (NVM Command Set spec 5.2, "End-to-end Data Protection", and 5.3, the
 * 16-bit and 64-bit guard PI formats), and the commands that work on whole blocks:
 * Read, Write and Compare with metadata, Verify, Write Uncorrectable,
 * Write Zeroes and Copy.
 *
 * The namespace keeps data and metadata apart (ns->data, ns->md). A
 * command stages the host's view in sim->bounce: block by block data then
 * metadata when the host interleaves them (extended LBAs), else all the
 * data then all the metadata (MPTR). PRINFO is honoured on namespaces with
 * PI only: PRACT makes the model insert the PI on a write and, with
 * metadata that is the PI alone (8 bytes; 16 with the 64-bit guard), keeps
 * the metadata off the bus in both directions;
 * the checks follow PRCHK. A check failing names its LBA in the Error
 * Information log (sim->err_lba). A block not written since it was
 * deallocated (or formatted) reads its PI as all FFh: the escape, so that
 * checked reads of fresh blocks pass, as on QEMU's controller.
 */
#include <stdlib.h>
#include <string.h>

#include <upcie/pi.h>

#include "sim_priv.h"

#define REF48 0xffffffffffffull

/* One command's view of its blocks. */
struct mdcmd {
	struct sim_ns *ns;
	uint64_t slba;
	uint32_t nlb;
	uint32_t prinfo;  /* PRACT and PRCHK bits (UPCIE_NVME_RW_*), 0 without PI */
	uint64_t reftag;  /* CDW14 (and CDW3 15:0, 64-bit guard): initial reference tag */
	uint16_t apptag;  /* CDW15 15:0 */
	uint16_t appmask; /* CDW15 31:16 */
	bool xfer_md;	  /* metadata moves between host and controller */
	bool interleaved; /* the host's data buffer holds each block's metadata */
	size_t host_len;  /* bytes through the data pointer */
	uint8_t *buf;	  /* the staged blocks (sim->bounce) */
};

static uint8_t *blk_data(const struct mdcmd *c, uint32_t i)
{
	const struct sim_ns *ns = c->ns;

	if (c->interleaved)
		return c->buf + (size_t)i * (ns->lba_size + ns->ms);
	return c->buf + ((size_t)i << ns->lba_shift);
}

static uint8_t *blk_md(const struct mdcmd *c, uint32_t i)
{
	const struct sim_ns *ns = c->ns;

	if (c->interleaved)
		return blk_data(c, i) + ns->lba_size;
	return c->buf + ((size_t)c->nlb << ns->lba_shift) + (size_t)i * ns->ms;
}

static uint8_t *store_data(const struct sim_ns *ns, uint64_t lba)
{
	return ns->data + (lba << ns->lba_shift);
}

static uint8_t *store_md(const struct sim_ns *ns, uint64_t lba)
{
	return ns->md + lba * ns->md_stride;
}

static bool uncor_test(const struct sim_ns *ns, uint64_t lba)
{
	return ns->nr_uncor && (ns->uncor[lba >> 3] >> (lba & 7) & 1);
}

static void uncor_set(struct sim_ns *ns, uint64_t lba, bool on)
{
	uint8_t bit = (uint8_t)(1u << (lba & 7));
	bool was = ns->uncor[lba >> 3] & bit;

	if (was == on)
		return;
	ns->uncor[lba >> 3] ^= bit;
	ns->nr_uncor += on ? 1 : (uint64_t)-1;
}

static bool written(const struct sim_ns *ns, uint64_t lba)
{
	return ns->written[lba >> 3] >> (lba & 7) & 1;
}

static void set_written(struct sim_ns *ns, uint64_t lba, bool on)
{
	uint8_t bit = (uint8_t)(1u << (lba & 7));

	if (on)
		ns->written[lba >> 3] |= bit;
	else
		ns->written[lba >> 3] &= (uint8_t)~bit;
}

static uint16_t fail_at(struct upcie_sim *sim, uint64_t lba, uint16_t status)
{
	sim->err_lba = lba;
	sim->err_lba_set = true;
	return status;
}

/* ---- protection information ---- */

/* 8 bytes for the 16-bit guard, 16 for the 64-bit guard (NVM Command Set
 * spec 5.3.1.1 and 5.3.1.2). */
static unsigned pi_size(const struct sim_ns *ns)
{
	return ns->guard64 ? 16 : 8;
}

static uint64_t ref_mask(const struct sim_ns *ns)
{
	return ns->guard64 ? REF48 : 0xffffffffu;
}

static uint8_t *pi_of(const struct sim_ns *ns, uint8_t *md)
{
	return ns->pi_first ? md : md + ns->ms - pi_size(ns);
}

/* The guard: the data, and the metadata before the PI when it is last;
 * CRC16 T10-DIF, or the NVMe CRC-64 continued over both. */
static uint64_t guard_of(const struct sim_ns *ns, const uint8_t *data, const uint8_t *md)
{
	size_t pre = ns->pi_first ? 0 : ns->ms - pi_size(ns);

	if (ns->guard64)
		return upcie_crc64_nvme(upcie_crc64_nvme(0, data, ns->lba_size), md, pre);
	return upcie_crc16_t10dif(upcie_crc16_t10dif(0, data, ns->lba_size), md, pre);
}

/* The reference tag block i of a command must carry: type 3 has one tag
 * for every block; 32 bits, or 48 with the 64-bit guard. */
static uint64_t ref_at(const struct sim_ns *ns, uint64_t first, uint32_t i)
{
	return ns->pi == 3 ? first : (first + i) & ref_mask(ns);
}

struct pi_tuple {
	uint64_t guard, ref;
	uint16_t app;
};

static void pi_read(const struct sim_ns *ns, uint8_t *md, struct pi_tuple *t)
{
	const uint8_t *p = pi_of(ns, md);

	if (ns->guard64) {
		struct upcie_nvme_pi64 pi;

		memcpy(&pi, p, sizeof(pi));
		t->guard = __builtin_bswap64(pi.guard);
		t->app = __builtin_bswap16(pi.apptag);
		t->ref = 0;
		for (int k = 0; k < 6; k++)
			t->ref = t->ref << 8 | pi.sr[k];
	} else {
		struct upcie_nvme_pi16 pi;

		memcpy(&pi, p, sizeof(pi));
		t->guard = __builtin_bswap16(pi.guard);
		t->app = __builtin_bswap16(pi.apptag);
		t->ref = __builtin_bswap32(pi.reftag);
	}
}

static void pi_put(const struct sim_ns *ns, const uint8_t *data, uint8_t *md, uint16_t app,
		   uint64_t ref)
{
	uint64_t guard = guard_of(ns, data, md);

	if (ns->guard64) {
		struct upcie_nvme_pi64 pi = {.guard = __builtin_bswap64(guard),
					     .apptag = __builtin_bswap16(app)};

		for (int k = 0; k < 6; k++)
			pi.sr[k] = (uint8_t)(ref >> (40 - 8 * k));
		memcpy(pi_of(ns, md), &pi, sizeof(pi));
	} else {
		struct upcie_nvme_pi16 pi = {
		    .guard = __builtin_bswap16((uint16_t)guard),
		    .apptag = __builtin_bswap16(app),
		    .reftag = __builtin_bswap32((uint32_t)ref),
		};

		memcpy(pi_of(ns, md), &pi, sizeof(pi));
	}
}

struct pi_expect {
	uint32_t chk; /* UPCIE_NVME_RW_PRCHK_* */
	uint64_t ref; /* for block 0 */
	uint16_t app, mask;
};

static uint16_t pi_check(const struct sim_ns *ns, const uint8_t *data, uint8_t *md,
			 const struct pi_expect *e, uint32_t i)
{
	struct pi_tuple t;

	pi_read(ns, md, &t);
	/* Escapes (NVM Command Set spec 5.2.1.x): an application tag of FFFFh
	 * turns the checks off for the block; for type 3 the reference tag
	 * must be all ones too (32 or 48 bits). */
	if (t.app == 0xffff && (ns->pi != 3 || t.ref == ref_mask(ns)))
		return 0;
	if ((e->chk & UPCIE_NVME_RW_PRCHK_GUARD) && t.guard != guard_of(ns, data, md))
		return UPCIE_NVME_SC_GUARD_CHECK;
	if ((e->chk & UPCIE_NVME_RW_PRCHK_APP) && (t.app & e->mask) != (e->app & e->mask))
		return UPCIE_NVME_SC_APPTAG_CHECK;
	if ((e->chk & UPCIE_NVME_RW_PRCHK_REF) && t.ref != ref_at(ns, e->ref, i))
		return UPCIE_NVME_SC_REFTAG_CHECK;
	return 0;
}

/* Check the staged blocks of c; lba0 names block 0 in the error log. */
static uint16_t check_staged(struct upcie_sim *sim, const struct mdcmd *c,
			     const struct pi_expect *e, uint64_t lba0)
{
	if (!c->ns->pi || !(e->chk & UPCIE_NVME_RW_PRCHK_ALL))
		return 0;
	for (uint32_t i = 0; i < c->nlb; i++) {
		uint16_t rc = pi_check(c->ns, blk_data(c, i), blk_md(c, i), e, i);

		if (rc)
			return fail_at(sim, lba0 + i, rc);
	}
	return 0;
}

static void generate_staged(const struct mdcmd *c, uint64_t ref, uint16_t app)
{
	for (uint32_t i = 0; i < c->nlb; i++)
		pi_put(c->ns, blk_data(c, i), blk_md(c, i), app, ref_at(c->ns, ref, i));
}

static struct pi_expect cmd_expect(const struct mdcmd *c)
{
	return (struct pi_expect){.chk = c->prinfo & UPCIE_NVME_RW_PRCHK_ALL,
				  .ref = c->reftag,
				  .app = c->apptag,
				  .mask = c->appmask};
}

/* ---- staging ---- */

static bool stage(struct upcie_sim *sim, size_t need)
{
	uint8_t *p;

	if (need <= sim->bounce_len)
		return true;
	p = realloc(sim->bounce, need);
	if (!p)
		return false;
	sim->bounce = p;
	sim->bounce_len = need;
	return true;
}

static uint16_t lba_check(const struct sim_ns *ns, uint64_t slba, uint64_t nlb)
{
	if (slba >= ns->nlbas || nlb > ns->nlbas - slba)
		return UPCIE_NVME_SC_LBA_RANGE;
	return 0;
}

/* The command's initial reference tag: CDW14, and with the 64-bit guard
 * bits 47:32 from CDW3 15:0 (NVM Command Set spec 3.2.4). */
static uint64_t cmd_reftag(const struct sim_ns *ns, const struct upcie_nvme_sqe *sqe)
{
	if (!ns->guard64)
		return sqe->cdw14;
	return ((uint64_t)sqe->cdw3 << 32 | sqe->cdw14) & REF48;
}

/* Decode SLBA, NLB and PRINFO of an NVM command; with 'staged', room for
 * its blocks (a transfer within MDTS, and at most SIM_STAGE_MAX bytes). */
static uint16_t cmd_setup(struct upcie_sim *sim, struct sim_ns *ns,
			  const struct upcie_nvme_sqe *sqe, struct mdcmd *c, bool staged)
{
	memset(c, 0, sizeof(*c));
	c->ns = ns;
	c->slba = ((uint64_t)sqe->cdw11 << 32) | sqe->cdw10;
	c->nlb = (sqe->cdw12 & 0xffff) + 1;
	if (lba_check(ns, c->slba, c->nlb))
		return UPCIE_NVME_SC_LBA_RANGE;
	if (ns->pi)
		c->prinfo = sqe->cdw12 & (UPCIE_NVME_RW_PRACT | UPCIE_NVME_RW_PRCHK_ALL);
	c->reftag = cmd_reftag(ns, sqe);
	c->apptag = (uint16_t)sqe->cdw15;
	c->appmask = (uint16_t)(sqe->cdw15 >> 16);
	/* Type 1: the reference tag is the LBA's low 32 (48) bits; a command
	 * checking it must start there. */
	if (ns->pi == 1 && (c->prinfo & UPCIE_NVME_RW_PRCHK_REF) &&
	    (c->slba & ref_mask(ns)) != c->reftag)
		return UPCIE_NVME_SC_INVALID_PI;
	/* Type 3 has no reference tag to check: asking is an error (as on
	 * QEMU's controller). */
	if (ns->pi == 3 && (c->prinfo & UPCIE_NVME_RW_PRCHK_REF))
		return UPCIE_NVME_SC_INVALID_PI;
	c->xfer_md = ns->ms && !((c->prinfo & UPCIE_NVME_RW_PRACT) && ns->ms == pi_size(ns));
	c->interleaved = ns->extended && c->xfer_md;
	c->host_len = (size_t)c->nlb * (ns->lba_size + (c->interleaved ? ns->ms : 0));
	if (!staged)
		return 0;
	if ((sim->mdts_bytes && c->host_len > sim->mdts_bytes) ||
	    (size_t)c->nlb * (ns->lba_size + ns->ms) > SIM_STAGE_MAX)
		return UPCIE_NVME_SC_INVALID_FIELD;
	if (!stage(sim, (size_t)c->nlb * (ns->lba_size + ns->ms)))
		return UPCIE_NVME_SC_INTERNAL;
	c->buf = sim->bounce;
	return 0;
}

/* Move the staged blocks to or from the host: the data pointer, then MPTR
 * (one address, or a metadata SGL: checked whole before anything moves). */
static uint16_t host_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
			  const struct mdcmd *c, bool to_host)
{
	size_t md_len = (size_t)c->nlb * c->ns->ms;
	uint8_t *md = c->buf + ((size_t)c->nlb << c->ns->lba_shift);
	bool sep = c->xfer_md && !c->interleaved;
	uint16_t rc;

	if (sep && (rc = upcie_sim_md_xfer(sim, sqe, md, md_len, to_host, false)))
		return rc;
	rc = upcie_sim_data_xfer(sim, sqe, c->buf, c->host_len, c->host_len, to_host);
	if (rc || !sep)
		return rc;
	return upcie_sim_md_xfer(sim, sqe, md, md_len, to_host, true);
}

/* The metadata a block reads as: what was written, or for a block not
 * written since it was deallocated, zeros with the PI's escape (all FFh). */
static void md_get(const struct sim_ns *ns, uint64_t lba, uint8_t *md)
{
	if (written(ns, lba)) {
		memcpy(md, store_md(ns, lba), ns->ms);
		return;
	}
	memset(md, 0, ns->ms);
	if (ns->pi)
		memset(pi_of(ns, md), 0xff, pi_size(ns));
}

static void load(const struct mdcmd *c, uint64_t lba)
{
	for (uint32_t i = 0; i < c->nlb; i++) {
		memcpy(blk_data(c, i), store_data(c->ns, lba + i), c->ns->lba_size);
		if (c->ns->ms)
			md_get(c->ns, lba + i, blk_md(c, i));
	}
}

static void store(const struct mdcmd *c, uint64_t lba)
{
	for (uint32_t i = 0; i < c->nlb; i++) {
		memcpy(store_data(c->ns, lba + i), blk_data(c, i), c->ns->lba_size);
		if (c->ns->ms)
			memcpy(store_md(c->ns, lba + i), blk_md(c, i), c->ns->ms);
		set_written(c->ns, lba + i, true);
		if (c->ns->nr_uncor)
			uncor_set(c->ns, lba + i, false);
	}
}

static uint16_t uncor_check(struct upcie_sim *sim, const struct sim_ns *ns, uint64_t slba,
			    uint32_t nlb)
{
	for (uint32_t i = 0; ns->nr_uncor && i < nlb; i++)
		if (uncor_test(ns, slba + i))
			return fail_at(sim, slba + i, UPCIE_NVME_SC_UNRECOVERED_READ);
	return 0;
}

/* ---- commands ---- */

static uint16_t md_write(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, struct mdcmd *c)
{
	struct pi_expect e = cmd_expect(c);
	uint16_t rc = host_xfer(sim, sqe, c, false);

	if (rc)
		return rc;
	if (c->prinfo & UPCIE_NVME_RW_PRACT)
		generate_staged(c, c->reftag, c->apptag);
	else if ((rc = check_staged(sim, c, &e, c->slba)))
		return rc;
	store(c, c->slba);
	sim->host_writes++;
	sim->units_written += ((uint64_t)c->nlb << c->ns->lba_shift) >> 9;
	return 0;
}

static uint16_t md_read(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, struct mdcmd *c)
{
	struct pi_expect e = cmd_expect(c);
	uint16_t rc = uncor_check(sim, c->ns, c->slba, c->nlb);

	if (rc)
		return rc;
	load(c, c->slba);
	rc = check_staged(sim, c, &e, c->slba);
	if (rc)
		return rc;
	sim->host_reads++;
	sim->units_read += ((uint64_t)c->nlb << c->ns->lba_shift) >> 9;
	return host_xfer(sim, sqe, c, true);
}

/* Compare (NVM Command Set spec 3.2.1): the stored blocks pass their
 * checks, then data (and metadata when it crossed the bus) must match. */
static uint16_t md_compare(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe, struct mdcmd *c)
{
	struct pi_expect e = cmd_expect(c);
	uint16_t rc = host_xfer(sim, sqe, c, false);

	if (rc || (rc = uncor_check(sim, c->ns, c->slba, c->nlb)))
		return rc;
	for (uint32_t i = 0; i < c->nlb; i++) {
		const struct sim_ns *ns = c->ns;
		uint8_t *d = store_data(ns, c->slba + i), m[SIM_MS_MAX];

		if (ns->ms)
			md_get(ns, c->slba + i, m);
		if (ns->pi && e.chk && (rc = pi_check(ns, d, m, &e, i)))
			return fail_at(sim, c->slba + i, rc);
		if (memcmp(blk_data(c, i), d, ns->lba_size) ||
		    (c->xfer_md && memcmp(blk_md(c, i), m, ns->ms)))
			return fail_at(sim, c->slba + i, UPCIE_NVME_SC_COMPARE_FAILURE);
	}
	return 0;
}

uint16_t upcie_sim_md_rw(struct upcie_sim *sim, struct sim_ns *ns, const struct upcie_nvme_sqe *sqe)
{
	struct mdcmd c;
	uint16_t rc = cmd_setup(sim, ns, sqe, &c, true);

	if (rc)
		return rc;
	switch (sqe->opc) {
	case UPCIE_NVME_CMD_WRITE:
		return md_write(sim, sqe, &c);
	case UPCIE_NVME_CMD_READ:
		return md_read(sim, sqe, &c);
	default:
		return md_compare(sim, sqe, &c);
	}
}

/* Verify (NVM Command Set spec 3.2.9): read and check, move nothing. */
uint16_t upcie_sim_verify(struct upcie_sim *sim, struct sim_ns *ns,
			  const struct upcie_nvme_sqe *sqe)
{
	struct mdcmd c;
	struct pi_expect e;
	uint16_t rc = cmd_setup(sim, ns, sqe, &c, false);

	if (rc || (rc = uncor_check(sim, ns, c.slba, c.nlb)))
		return rc;
	e = cmd_expect(&c);
	for (uint32_t i = 0; ns->pi && e.chk && i < c.nlb; i++) {
		uint64_t lba = c.slba + i;
		uint8_t m[SIM_MS_MAX];

		md_get(ns, lba, m);
		rc = pi_check(ns, store_data(ns, lba), m, &e, i);
		if (rc)
			return fail_at(sim, lba, rc);
	}
	return 0;
}

/* Write Uncorrectable (NVM Command Set spec 3.2.7): reads of these blocks
 * fail with Unrecovered Read Error until they are written again. */
uint16_t upcie_sim_write_uncor(struct upcie_sim *sim, struct sim_ns *ns,
			       const struct upcie_nvme_sqe *sqe)
{
	uint64_t slba = ((uint64_t)sqe->cdw11 << 32) | sqe->cdw10;
	uint32_t nlb = (sqe->cdw12 & 0xffff) + 1;

	(void)sim;
	if (lba_check(ns, slba, nlb))
		return UPCIE_NVME_SC_LBA_RANGE;
	for (uint32_t i = 0; i < nlb; i++)
		uncor_set(ns, slba + i, true);
	return 0;
}

/* Clear bits [first, first + n) of a block map: whole bytes at once. */
static void bits_clear(uint8_t *map, uint64_t first, uint64_t n)
{
	for (; n && (first & 7); first++, n--)
		map[first >> 3] &= (uint8_t) ~(1u << (first & 7));
	if (n >= 8) {
		upcie_sim_zero(map, first >> 3, n >> 3);
		first += n & ~7ull;
		n &= 7;
	}
	for (; n; first++, n--)
		map[first >> 3] &= (uint8_t) ~(1u << (first & 7));
}

void upcie_sim_blocks_zero(struct sim_ns *ns, uint64_t slba, uint64_t nlb)
{
	upcie_sim_zero(ns->data, slba << ns->lba_shift, nlb << ns->lba_shift);
	/* Unwritten metadata reads zeros (and the PI escape) whatever it holds:
	 * the marks are what count; the bytes are cleared for upcie_sim_ns_md. */
	bits_clear(ns->written, slba, nlb);
	if (ns->ms)
		upcie_sim_zero(ns->md, slba * ns->md_stride, nlb * ns->md_stride);
	for (uint64_t i = 0; ns->nr_uncor && i < nlb; i++)
		uncor_set(ns, slba + i, false);
}

/* Write Zeroes (NVM Command Set spec 3.2.8): zeros, and with PRACT on a
 * namespace with PI, PI for them (the guard of zeros is 0). */
uint16_t upcie_sim_write_zeroes(struct upcie_sim *sim, struct sim_ns *ns,
				const struct upcie_nvme_sqe *sqe)
{
	uint64_t slba = ((uint64_t)sqe->cdw11 << 32) | sqe->cdw10;
	uint32_t nlb = (sqe->cdw12 & 0xffff) + 1;

	(void)sim;
	if (lba_check(ns, slba, nlb))
		return UPCIE_NVME_SC_LBA_RANGE;
	upcie_sim_blocks_zero(ns, slba, nlb);
	if (!ns->pi || !(sqe->cdw12 & UPCIE_NVME_RW_PRACT))
		return 0;
	for (uint32_t i = 0; i < nlb; i++) {
		pi_put(ns, store_data(ns, slba + i), store_md(ns, slba + i), (uint16_t)sqe->cdw15,
		       ref_at(ns, cmd_reftag(ns, sqe), i));
		set_written(ns, slba + i, true);
	}
	return 0;
}

/* ---- Copy (NVM Command Set spec 3.2.2), source range formats 0 and 1 ---- */

/* A source range, from either descriptor format. */
struct copy_src {
	uint64_t slba, ref;
	uint32_t nlb; /* blocks, not 0's based */
	uint16_t app, mask;
};

/* Format 0: 32-bit EILBRT, little-endian; format 1: the 80-bit ELBST and
 * EILBRT field most significant byte first, its low 48 bits the reference
 * tag (no storage tags here). */
static void range_get(const uint8_t *raw, uint32_t format, struct copy_src *r)
{
	if (format == 1) {
		struct upcie_nvme_copy_range1 d;

		memcpy(&d, raw, sizeof(d));
		r->slba = d.slba;
		r->nlb = (uint32_t)d.nlb + 1;
		r->ref = 0;
		for (int k = 4; k < 10; k++)
			r->ref = r->ref << 8 | d.elbt[k];
		r->app = d.elbat;
		r->mask = d.elbatm;
	} else {
		struct upcie_nvme_copy_range d;

		memcpy(&d, raw, sizeof(d));
		r->slba = d.slba;
		r->nlb = (uint32_t)d.nlb + 1;
		r->ref = d.eilbrt;
		r->app = d.elbat;
		r->mask = d.elbatm;
	}
}

static uint16_t copy_ranges_ok(const struct sim_ns *ns, const struct copy_src *r, uint32_t nr,
			       uint64_t sdlba)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < nr; i++) {
		if (lba_check(ns, r[i].slba, r[i].nlb))
			return UPCIE_NVME_SC_LBA_RANGE;
		if (r[i].nlb > SIM_COPY_MSSRL)
			return UPCIE_NVME_SC_CMD_SIZE_LIMIT;
		total += r[i].nlb;
	}
	if (total > SIM_COPY_MCL)
		return UPCIE_NVME_SC_CMD_SIZE_LIMIT;
	return lba_check(ns, sdlba, total);
}

/* One source range to the destination: checks on the source (PRINFOR),
 * then PI made (PRINFOW PRACT) or checked (PRINFOW PRCHK) for where it goes. */
static uint16_t copy_one(struct upcie_sim *sim, struct mdcmd *c, const struct copy_src *r,
			 uint32_t rinfo, const struct pi_expect *w, uint64_t dlba)
{
	struct pi_expect e = {.chk = rinfo, .ref = r->ref, .app = r->app, .mask = r->mask};
	struct pi_expect we = *w;
	uint16_t rc;

	c->nlb = r->nlb;
	if ((rc = uncor_check(sim, c->ns, r->slba, c->nlb)))
		return rc;
	load(c, r->slba);
	if ((rc = check_staged(sim, c, &e, r->slba)))
		return rc;
	if (we.chk & UPCIE_NVME_RW_PRACT)
		generate_staged(c, we.ref, we.app);
	else if ((rc = check_staged(sim, c, &we, dlba)))
		return rc;
	store(c, dlba);
	return 0;
}

uint16_t upcie_sim_copy(struct upcie_sim *sim, struct sim_ns *ns, const struct upcie_nvme_sqe *sqe)
{
	uint32_t nr = (sqe->cdw12 & 0xff) + 1, rinfo = 0, format = (sqe->cdw12 >> 8) & 0xf;
	size_t esz = format == 1 ? sizeof(struct upcie_nvme_copy_range1)
				 : sizeof(struct upcie_nvme_copy_range);
	uint64_t dlba = ((uint64_t)sqe->cdw11 << 32) | sqe->cdw10;
	struct pi_expect w = {.ref = cmd_reftag(ns, sqe),
			      .app = (uint16_t)sqe->cdw15,
			      .mask = (uint16_t)(sqe->cdw15 >> 16)};
	struct copy_src r[SIM_COPY_MSRC];
	struct mdcmd c = {.ns = ns};
	uint16_t rc;

	if (format > 1)
		return UPCIE_NVME_SC_INVALID_FIELD; /* descriptor formats 0 and 1 only */
	/* Format 0 carries 32-bit tags, format 1 the longer ones: each fits
	 * one PI format (as QEMU's controller answers). */
	if ((ns->pi && ns->guard64) != (format == 1))
		return UPCIE_NVME_SC_INVALID_FORMAT;
	if (nr > SIM_COPY_MSRC)
		return UPCIE_NVME_SC_CMD_SIZE_LIMIT;
	rc = upcie_sim_prp_xfer(sim, sqe->prp1, sqe->prp2, sim->scratch, nr * esz, nr * esz, false);
	if (rc)
		return rc;
	for (uint32_t i = 0; i < nr; i++)
		range_get(sim->scratch + i * esz, format, &r[i]);
	if ((rc = copy_ranges_ok(ns, r, nr, dlba)))
		return rc;
	if (ns->pi) {
		rinfo = ((sqe->cdw12 >> 12) & 0xfu) << UPCIE_NVME_PRINFO_SHIFT;
		w.chk = sqe->cdw12 & (UPCIE_NVME_RW_PRACT | UPCIE_NVME_RW_PRCHK_ALL);
		/* PRACT is the same in PRINFOR and PRINFOW, or the command is
		 * refused (as QEMU's controller does). */
		if ((rinfo ^ w.chk) & UPCIE_NVME_RW_PRACT)
			return UPCIE_NVME_SC_INVALID_FIELD;
		rinfo &= UPCIE_NVME_RW_PRCHK_ALL;
		if (ns->pi == 3 && ((rinfo | w.chk) & UPCIE_NVME_RW_PRCHK_REF))
			return UPCIE_NVME_SC_INVALID_PI;
	}
	if (!stage(sim, (size_t)SIM_COPY_MSSRL * (ns->lba_size + ns->ms)))
		return UPCIE_NVME_SC_INTERNAL;
	c.buf = sim->bounce;
	for (uint32_t i = 0; i < nr; i++) {
		if ((rc = copy_one(sim, &c, &r[i], rinfo, &w, dlba)))
			return rc;
		w.ref = ref_at(ns, w.ref, c.nlb);
		dlba += c.nlb;
	}
	return 0;
}

/* ---- formats ---- */

uint16_t upcie_sim_ns_format(struct sim_ns *ns, uint32_t lbaf, bool extended, uint8_t pi,
			     bool pi_first)
{
	if (lbaf >= ns->nlbaf)
		return UPCIE_NVME_SC_INVALID_FORMAT;
	if (pi > 3)
		return UPCIE_NVME_SC_INVALID_FIELD;
	if (pi && ns->lbaf_ms[lbaf] < (ns->lbaf_guard64[lbaf] ? 16 : 8))
		return UPCIE_NVME_SC_INVALID_FORMAT;
	ns->fmt = (uint8_t)lbaf;
	ns->ms = ns->lbaf_ms[lbaf];
	ns->pi = pi;
	ns->extended = ns->ms && extended;
	ns->pi_first = pi && pi_first;
	ns->guard64 = ns->lbaf_guard64[lbaf];
	return 0;
}
