/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-perf with metadata (--md) and protection information (--pi):
 * buffers in the namespace's layout (extended LBAs: each block's metadata
 * after its data; else a separate buffer per slot), reads and writes
 * through upcie_nvme_read_ext/_write_ext, and the host's side of the PI:
 * with --pi host the guard and tags are computed for every write and
 * checked after every read (the device checks them too); with --pi pract
 * the device inserts them on writes and checks them on reads, and the
 * host checks what reaches it (metadata larger than the PI).
 */
#include <string.h>

#include "perf.h"

void perf_md_setup(struct perf_thread *t)
{
	const struct perf_opts *o = t->o;

	t->wflags = t->rflags = 0;
	if (o->pi == PERF_PI_HOST) {
		t->wflags = t->rflags = upcie_nvme_ns_prchk(t->ns);
	} else if (o->pi == PERF_PI_PRACT) {
		t->wflags = UPCIE_NVME_RW_PRACT;
		t->rflags = UPCIE_NVME_RW_PRACT | upcie_nvme_ns_prchk(t->ns);
	}
	if (!o->md) {
		t->data_len = o->bs;
		t->md_len = 0;
		t->stride = (size_t)1 << t->lba_shift;
		return;
	}
	/* PRACT is in both directions' flags: the same bytes move both ways. */
	t->data_len = upcie_nvme_ns_data_len(t->ns, t->nlb, t->wflags);
	t->md_len = upcie_nvme_ns_md_len(t->ns, t->nlb, t->wflags);
	t->stride = t->data_len / t->nlb;
}

void perf_fill_blocks(struct perf_thread *t, void *buf, uint64_t slba, uint32_t gen)
{
	size_t lba = (size_t)1 << t->lba_shift;

	if (t->stride == lba) {
		perf_fill(buf, slba, t->nlb, t->lba_shift, gen);
		return;
	}
	for (uint32_t b = 0; b < t->nlb; b++) {
		uint8_t *p = (uint8_t *)buf + b * t->stride;

		perf_fill(p, slba + b, 1, t->lba_shift, gen);
		memset(p + lba, (int)(gen & 0xff), t->stride - lba);
	}
}

long perf_check_blocks(const struct perf_thread *t, const void *buf, uint64_t slba, uint32_t gen)
{
	if (t->stride == (size_t)1 << t->lba_shift)
		return perf_check(buf, slba, t->nlb, t->lba_shift, gen);
	for (uint32_t b = 0; b < t->nlb; b++) {
		long off = perf_check((const uint8_t *)buf + b * t->stride, slba + b, 1,
				      t->lba_shift, gen);

		if (off >= 0)
			return (long)(b * t->stride) + off;
	}
	return -1;
}

/* The options of one I/O: type 1 wants the LBA's low 32 bits (48 with
 * the 64-bit guard) as the first reference tag; the others take it as
 * well. */
static struct upcie_nvme_io_opts io_opts(const struct perf_thread *t, const struct perf_slot *s,
					 uint64_t slba, uint32_t flags)
{
	return (struct upcie_nvme_io_opts){
	    .opts_size = sizeof(struct upcie_nvme_io_opts),
	    .flags = flags,
	    .md = t->md_len ? s->md : NULL,
	    .reftag = (uint32_t)slba,
	    .apptag = PERF_APPTAG,
	    .apptag_mask = 0xffff,
	    .reftag_hi = t->ns->guard_bits == 64 ? (uint32_t)(slba >> 32) & 0xffff : 0};
}

int perf_md_submit(struct perf_thread *t, struct perf_slot *s, uint64_t slba, upcie_nvme_cb cb)
{
	struct upcie_nvme_io_opts o = io_opts(t, s, slba, s->write ? t->wflags : t->rflags);

	if (!s->write)
		return upcie_nvme_read_ext(t->qp, t->ns, slba, t->nlb, s->buf, &o, cb, s, 0);
	if (t->o->pi == PERF_PI_HOST) {
		int rc = upcie_nvme_pi_generate(t->ns, s->buf, o.md, t->nlb, &o);

		if (rc)
			return rc;
	}
	return upcie_nvme_write_ext(t->qp, t->ns, slba, t->nlb, s->buf, &o, cb, s, 0);
}

uint16_t perf_pi_check(const struct perf_thread *t, const struct perf_slot *s, long *off)
{
	struct upcie_nvme_io_opts o = io_opts(t, s, s->blk * t->nlb, upcie_nvme_ns_prchk(t->ns));
	uint32_t bad = 0;
	int st;

	/* PRACT with PI-only metadata: the device stripped it (and checked it). */
	if (!t->o->pi || (t->ns->md_extended ? t->stride == (size_t)1 << t->lba_shift : !t->md_len))
		return 0;
	st = upcie_nvme_pi_verify(t->ns, s->buf, o.md, t->nlb, &o, &bad);
	*off = (long)(bad * t->stride);
	return st > 0 ? (uint16_t)st : 0;
}
