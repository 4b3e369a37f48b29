/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Namespaces: the table of active namespaces (Identify CNS 02h, then
 * Identify Namespace for each), read at bring-up, after every reset and
 * after a Namespace Attribute Changed event; its publication as one
 * table, the fencing of handles whose namespace went away or changed
 * format, and the lookups.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

/* The metadata format (NVM Command Set spec 4.1.5.1: FLBAS bit 4, DPS). */
static void md_format(struct upcie_nvme_ns *ns, const struct upcie_nvme_id_ns *id,
		      uint32_t max_xfer)
{
	uint32_t pi = id->dps & UPCIE_NVME_DPS_TYPE_MASK;

	ns->md_extended = ns->ms && (id->flbas & UPCIE_NVME_FLBAS_EXTENDED);
	ns->pi_type = 0;
	ns->pi_first = 0;
	ns->guard_bits = 0;
	ns->pi_sts = 0;
	if (pi >= 1 && pi <= 3 && ns->ms >= 8) {
		ns->pi_type = (uint8_t)pi;
		ns->pi_first = (id->dps & UPCIE_NVME_DPS_FIRST) != 0;
		ns->guard_bits = 16;
	} else if (pi) {
		upcie_warn("nsid %u: DPS names PI type %u with %u metadata bytes; taken as no PI",
			   ns->nsid, pi, ns->ms);
	}
	if (ns->md_extended)
		ns->md_max_xfer_blocks = max_xfer / (ns->lba_size + ns->ms);
	else
		ns->md_max_xfer_blocks = max_xfer >> ns->lba_shift;
}

static int add_ns(struct upcie_nvme_ctrl *c, struct upcie_nvme_ns_table *t, uint32_t nsid,
		  const struct upcie_nvme_id_ns *id)
{
	struct upcie_nvme_ns *ns = &t->ns[t->nr];
	uint32_t idx = upcie_nvme_id_ns_flbas_idx(id);
	uint32_t lbads;

	if (idx > id->nlbaf || idx >= 64) {
		/* A device bug: nothing says how large its blocks are. */
		upcie_warn("nsid %u: FLBAS names LBA format %u beyond NLBAF %u; namespace skipped",
			   nsid, idx, id->nlbaf);
		return 0;
	}
	lbads = id->lbaf[idx].lbads;
	if (lbads < 9 || lbads > 24) {
		upcie_warn("nsid %u: LBA data size 2^%u is not usable; namespace skipped", nsid,
			   lbads);
		return 0;
	}
	t->id[t->nr] = *id;
	ns->nsid = nsid;
	ns->lba_shift = lbads;
	ns->lba_size = 1u << lbads;
	ns->ms = id->lbaf[idx].ms;
	ns->flbas_idx = (uint8_t)idx;
	ns->nsze = id->nsze;
	ns->ncap = id->ncap;
	/* With metadata the device moves more than the data (extended LBAs) or
	 * DMAs metadata to MPTR: the plain read/write, which take a data
	 * buffer only, refuse such a namespace (limit 0, the fast path's one
	 * compare); the _ext calls take it. */
	ns->max_xfer_blocks = ns->ms ? 0 : c->max_xfer >> lbads;
	md_format(ns, id, c->max_xfer);
	ns->id = &t->id[t->nr];
	t->nr++;
	return 0;
}

/*
 * Namespace tables. A scan builds a new table aside and publishes it only
 * when it differs from the current one (a reset re-scans: an unchanged
 * namespace set costs no memory); the table it replaces is kept until
 * close, so a pointer a thread still holds stays readable.
 */
static void ns_table_free(struct upcie_nvme_ns_table *t)
{
	if (t) {
		free(t->ns);
		free(t->id);
		free(t);
	}
}

static struct upcie_nvme_ns_table *ns_table_new(uint32_t n)
{
	struct upcie_nvme_ns_table *t = calloc(1, sizeof(*t));

	if (t) {
		t->ns = calloc(n ? n : 1, sizeof(*t->ns));
		t->id = calloc(n ? n : 1, sizeof(*t->id));
		if (!t->ns || !t->id) {
			ns_table_free(t);
			t = NULL;
		}
	}
	if (!t)
		upcie_err(-ENOMEM, "out of memory for %u namespaces", n);
	return t;
}

void upcie_nvme_ns_free(struct upcie_nvme_ctrl *c)
{
	struct upcie_nvme_ns_table *t = c->nstab;

	while (t) {
		struct upcie_nvme_ns_table *prev = t->prev;

		ns_table_free(t);
		t = prev;
	}
	c->nstab = NULL;
}

/* The metadata's size and placement, the PI type and where it sits (what
 * the Identify Namespace gives; the PI format is known after CNS 05h). */
static bool md_layout_same(const struct upcie_nvme_ns *a, const struct upcie_nvme_ns *b)
{
	return a->ms == b->ms && a->md_extended == b->md_extended && a->pi_type == b->pi_type &&
	       a->pi_first == b->pi_first;
}

/* The same bytes move for the same call: size, placement and PI of the metadata. */
static bool md_same(const struct upcie_nvme_ns *a, const struct upcie_nvme_ns *b)
{
	return md_layout_same(a, b) && a->guard_bits == b->guard_bits && a->pi_sts == b->pi_sts;
}

static bool ns_same(const struct upcie_nvme_ns *a, const struct upcie_nvme_ns *b)
{
	return a->nsid == b->nsid && a->lba_shift == b->lba_shift && a->ms == b->ms &&
	       a->flbas_idx == b->flbas_idx && a->nsze == b->nsze && a->ncap == b->ncap &&
	       a->max_xfer_blocks == b->max_xfer_blocks && md_same(a, b) &&
	       a->md_max_xfer_blocks == b->md_max_xfer_blocks;
}

static bool ns_table_same(const struct upcie_nvme_ns_table *a, const struct upcie_nvme_ns_table *b)
{
	if (a->nr != b->nr)
		return false;
	for (uint32_t i = 0; i < a->nr; i++)
		if (!ns_same(&a->ns[i], &b->ns[i]))
			return false;
	return true;
}

/*
 * After a new table is published: a handle from an earlier table whose
 * namespace is gone, or now has another LBA size or metadata format (size,
 * placement, PI), is fenced. I/O through it would make the device move a different number of
 * bytes than the buffer was sized for. Its transfer limit and size become
 * 0, so the read/write fast path (nlb - 1 < max_xfer_blocks) sends it to
 * the slow path, which refuses it with -ESTALE; nothing reaches the
 * device. Handles of namespaces that did not change keep working.
 */
static void fence_stale(struct upcie_nvme_ctrl *c, const struct upcie_nvme_ns_table *now)
{
	uint32_t fenced = 0;

	for (struct upcie_nvme_ns_table *t = now->prev; t; t = t->prev) {
		for (uint32_t i = 0; i < t->nr; i++) {
			struct upcie_nvme_ns *old = &t->ns[i];
			const struct upcie_nvme_ns *cur = NULL;

			if (!old->nsze)
				continue; /* fenced already */
			for (uint32_t j = 0; j < now->nr && !cur; j++)
				if (now->ns[j].nsid == old->nsid)
					cur = &now->ns[j];
			if (cur && cur->lba_shift == old->lba_shift && md_same(cur, old))
				continue;
			/* Other threads may be reading these: whole-word stores,
			 * the size (the stale mark) before the limit, so that a
			 * reader failing the limit sees the mark. */
			__atomic_store_n(&old->ncap, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&old->nsze, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&old->max_xfer_blocks, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&old->md_max_xfer_blocks, 0, __ATOMIC_RELEASE);
			fenced++;
		}
	}
	if (fenced)
		upcie_info("%s: %u namespace handle(s) fenced: their namespace is gone or was "
			   "reformatted",
			   upcie_pci_name(c->dev), fenced);
}

int upcie_nvme_ns_stale_err(const struct upcie_nvme_ns *ns)
{
	return upcie_err(-ESTALE,
			 "nsid %u: this namespace handle is stale: the namespace is gone or was "
			 "reformatted (seen after an event or a reset); look it up again with "
			 "upcie_nvme_ns_get()",
			 ns->nsid);
}

/*
 * The PI format of a PI namespace: the 16-bit guard unless the controller
 * has extended LBA formats (CTRATT.ELBAS) and the NVM command set's
 * Identify Namespace (CNS 05h, CSI 00h; NVM Command Set spec 4.1.5.2)
 * gives the format in use another Protection Information Format in its
 * ELBAF. The library does the 16- and 64-bit guards without storage tags;
 * a namespace with the 32-bit guard or a storage tag size above 0 reports
 * it (guard_bits, pi_sts) and the I/O calls refuse PI on it.
 */
static int guard_size(struct upcie_nvme_ctrl *c, struct upcie_nvme_ns *ns,
		      const struct upcie_nvme_ns_table *cur)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_ADM_IDENTIFY, .nsid = ns->nsid, .cdw10 = UPCIE_NVME_CNS_CS_NS};
	uint32_t elbaf, pif;
	int rc;

	if (!ns->pi_type || !(c->id->ctratt & UPCIE_NVME_CTRATT_ELBAS))
		return 0;
	rc = upcie_nvme_admin(c, &sqe, c->admin_buf, 4096, NULL, 0);
	if (rc == -EIO) {
		/* Refused: never guess the guard. A wrong guess moves the wrong
		 * bytes (a 64-bit guard's 16-byte PI taken for 8 puts the
		 * metadata inside the data of an extended-LBA read). The entry
		 * of the namespace as it was, same format, keeps its guard;
		 * else PI I/O on it is refused until a rescan tells. */
		for (uint32_t i = 0; cur && i < cur->nr; i++) {
			const struct upcie_nvme_ns *o = &cur->ns[i];

			if (o->nsid == ns->nsid && o->flbas_idx == ns->flbas_idx &&
			    md_layout_same(o, ns)) {
				ns->guard_bits = o->guard_bits;
				ns->pi_sts = o->pi_sts;
				return 0;
			}
		}
		ns->guard_bits = 0;
		upcie_warn("nsid %u: the NVM Identify Namespace (CNS 05h) failed, so its PI "
			   "format is not known: PI I/O on it is refused until the namespaces "
			   "are read again",
			   ns->nsid);
		return 0;
	}
	if (rc)
		return rc;
	memcpy(&elbaf, (const uint8_t *)c->admin_buf + UPCIE_NVME_ELBAF_OFFSET + 4 * ns->flbas_idx,
	       sizeof(elbaf));
	pif = upcie_nvme_elbaf_pif(elbaf);
	ns->guard_bits = pif == UPCIE_NVME_PIF_16   ? 16
			 : pif == UPCIE_NVME_PIF_32 ? 32
			 : pif == UPCIE_NVME_PIF_64 ? 64
						    : 0; /* reserved */
	ns->pi_sts = (uint8_t)upcie_nvme_elbaf_sts(elbaf);
	if (!upcie_nvme_pi_size(ns))
		upcie_info("nsid %u: PI with a %u-bit guard%s (PIF %u, STS %u, %u metadata "
			   "bytes), which this library does not do: PI I/O on it is refused",
			   ns->nsid, ns->guard_bits, ns->pi_sts ? " and storage tags" : "", pif,
			   ns->pi_sts, ns->ms);
	return 0;
}

/* Copy nsid's entry of the current table (never fenced: only the tables
 * it replaced are) into t. */
static void keep_ns(struct upcie_nvme_ns_table *t, const struct upcie_nvme_ns_table *cur,
		    uint32_t nsid)
{
	for (uint32_t i = 0; cur && i < cur->nr; i++) {
		if (cur->ns[i].nsid != nsid)
			continue;
		t->ns[t->nr] = cur->ns[i];
		t->id[t->nr] = cur->id[i];
		t->ns[t->nr].id = &t->id[t->nr];
		t->nr++;
		return;
	}
}

/* Active namespace list (CNS 02h), then Identify Namespace for each. */
int upcie_nvme_scan_namespaces(struct upcie_nvme_ctrl *c)
{
	uint32_t *list = c->admin_buf;
	uint32_t nsids[1024], n = 0;
	struct upcie_nvme_ns_table *t, *cur = c->nstab;
	bool listed = false;
	uint16_t st = 0;
	int rc;

	rc = upcie_nvme_identify(c, UPCIE_NVME_CNS_ACTIVE_NS_LIST, 0, list, &st);
	if (rc == 0) {
		listed = true;
		for (n = 0; n < 1024 && list[n]; n++)
			nsids[n] = list[n];
	} else if (rc == -EIO) {
		/* Before NVMe 1.1 there is no list: try 1..NN. */
		for (uint32_t i = 1; i <= c->id->nn && n < 1024; i++)
			nsids[n++] = i;
	} else {
		return rc;
	}
	t = ns_table_new(n);
	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct upcie_nvme_id_ns *id = c->admin_buf;

		rc = upcie_nvme_identify(c, UPCIE_NVME_CNS_NS, nsids[i], c->admin_buf, &st);
		if (rc == -EIO) {
			/* Not active (when we tried 1..NN); an active one the
			 * controller failed to describe keeps what we knew. */
			if (listed)
				keep_ns(t, cur, nsids[i]);
			continue;
		}
		if (!rc && id->nsze) {
			rc = add_ns(c, t, nsids[i], id);
			if (!rc && t->nr && t->ns[t->nr - 1].nsid == nsids[i])
				rc = guard_size(c, &t->ns[t->nr - 1], cur);
		}
		if (rc) {
			ns_table_free(t);
			return rc;
		}
	}
	if (cur && ns_table_same(cur, t)) {
		ns_table_free(t);
		return 0;
	}
	t->prev = cur;
	__atomic_store_n(&c->nstab, t, __ATOMIC_RELEASE);
	fence_stale(c, t);
	return 0;
}

const struct upcie_nvme_ns *upcie_nvme_ns_get(const struct upcie_nvme_ctrl *c, uint32_t nsid)
{
	const struct upcie_nvme_ns_table *t = upcie_nvme_nstab(c);

	for (uint32_t i = 0; i < t->nr; i++)
		if (t->ns[i].nsid == nsid)
			return &t->ns[i];
	return upcie_err_null(-ENOENT, "%s: namespace %u is not active (%u active namespaces)",
			      upcie_pci_name(c->dev), nsid, t->nr);
}

const struct upcie_nvme_ns *upcie_nvme_ns_first(const struct upcie_nvme_ctrl *c)
{
	const struct upcie_nvme_ns_table *t = upcie_nvme_nstab(c);

	return t->nr ? &t->ns[0] : NULL;
}

/* The next in nsid order. ns may come from an earlier table (the list was
 * re-read between the calls): then the current table's first namespace
 * with a larger nsid. */
const struct upcie_nvme_ns *upcie_nvme_ns_next(const struct upcie_nvme_ctrl *c,
					       const struct upcie_nvme_ns *ns)
{
	const struct upcie_nvme_ns_table *t = upcie_nvme_nstab(c);

	for (uint32_t i = 0; i < t->nr; i++)
		if (t->ns[i].nsid > ns->nsid)
			return &t->ns[i];
	return NULL;
}
