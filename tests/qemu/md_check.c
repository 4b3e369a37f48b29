/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-md-check: metadata and protection information on a real (QEMU)
 * controller, namespace by namespace, for guest-md.sh.
 *
 *   upcie-md-check BDF                 the checks below, on every namespace
 *                                      with metadata; "ok"/"FAIL" lines,
 *                                      exit 1 when one failed
 *   upcie-md-check BDF write SEED      the cross-check pattern (blocks
 *                                      XBASE.., XBLOCKS of them) with its PI
 *   upcie-md-check BDF check SEED      read it back (PI checked by the device
 *                                      and the host), zero mismatches
 *   upcie-md-check - dump SEED LBA_SIZE  the pattern's data on stdout, to
 *                                      compare with what the kernel reads
 *
 * Checks on each namespace with metadata: a write and read back of data
 * and metadata (PI made by the host and checked by the device and the
 * host); with PI also PRACT (the device inserts, checks and strips), a
 * guard corrupted on purpose (written without checks, then read with the
 * guard check: End-to-end Guard Check Error with its LBA, never data),
 * Verify and Compare where ONCS offers them; with the 64-bit guard and
 * type 2, a 48-bit reference tag whose low half wraps within the
 * command (its high half in CDW3), checked by the device and the host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/upcie.h>

#define NLB	16
#define XBASE	1024 /* cross-check region: blocks XBASE .. XBASE + XBLOCKS */
#define XBLOCKS 64
#define APPTAG	0x4d44

static int failures;
static struct upcie_nvme_ctrl *CTRL;

static void result(int ok, const struct upcie_nvme_ns *ns, const char *what, const char *why)
{
	printf("%s nsid %u: %s%s%s\n", ok ? "ok" : "FAIL", ns->nsid, what, ok ? "" : ": ",
	       ok ? "" : why);
	if (!ok)
		failures++;
}

/* Data of block lba (its data bytes only), for generation seed. */
static void pattern(uint8_t *p, uint32_t n, uint64_t lba, uint32_t seed)
{
	for (uint32_t i = 0; i < n; i++)
		p[i] = (uint8_t)((lba * 131) ^ (i * 7) ^ (i >> 8) ^ seed);
}

struct bufs {
	const struct upcie_nvme_ns *ns;
	uint8_t *buf, *md;
	size_t stride; /* bytes per block in buf */
};

/* Fill nlb blocks at slba: data pattern, metadata bytes too, then the PI
 * the host makes (o; NULL: none, the device makes it). */
static void fill(struct bufs *b, uint64_t slba, uint32_t nlb, uint32_t seed,
		 const struct upcie_nvme_io_opts *o)
{
	memset(b->buf, 0, nlb * b->stride);
	if (b->md)
		memset(b->md, (int)(seed & 0xff), (size_t)nlb * b->ns->ms);
	for (uint32_t i = 0; i < nlb; i++) {
		pattern(b->buf + i * b->stride, b->ns->lba_size, slba + i, seed);
		if (b->ns->md_extended)
			memset(b->buf + i * b->stride + b->ns->lba_size, (int)(seed & 0xff),
			       b->ns->ms);
	}
	if (b->ns->pi_type && o)
		upcie_nvme_pi_generate(b->ns, b->buf, b->md, nlb, o);
}

static long mismatch(const struct bufs *b, uint64_t slba, uint32_t nlb, uint32_t seed)
{
	uint8_t *want = malloc(b->ns->lba_size);
	long bad = -1;

	for (uint32_t i = 0; want && i < nlb && bad < 0; i++) {
		pattern(want, b->ns->lba_size, slba + i, seed);
		if (memcmp(want, b->buf + i * b->stride, b->ns->lba_size))
			bad = (long)i;
	}
	free(want);
	return want ? bad : 0;
}

static struct upcie_nvme_io_opts opts(const struct bufs *b, uint32_t flags, uint64_t slba)
{
	return (struct upcie_nvme_io_opts){
	    .opts_size = sizeof(struct upcie_nvme_io_opts),
	    .flags = flags,
	    .md = upcie_nvme_ns_md_len(b->ns, 1, flags) ? b->md : NULL,
	    .reftag = b->ns->pi_type == 3 ? 0x600d : (uint32_t)slba,
	    .apptag = APPTAG,
	    .apptag_mask = 0xffff,
	};
}

static int io(struct upcie_nvme_qpair *qp, uint8_t opc, const struct bufs *b, uint64_t slba,
	      uint32_t nlb, const struct upcie_nvme_io_opts *o, struct upcie_nvme_io_result *r)
{
	return upcie_nvme_io_sync(qp, opc, b->ns, slba, nlb,
				  opc == UPCIE_NVME_CMD_VERIFY ? NULL : b->buf, o, r, 10000);
}

static uint32_t checks(const struct upcie_nvme_ns *ns)
{
	return upcie_nvme_ns_prchk(ns);
}

static void round_trip(struct upcie_nvme_qpair *qp, struct bufs *b)
{
	struct upcie_nvme_io_opts o = opts(b, checks(b->ns), 64);
	struct upcie_nvme_io_result r;
	uint32_t bad;
	char why[256];
	int rc;

	fill(b, 64, NLB, 1, &o);
	rc = io(qp, UPCIE_NVME_CMD_WRITE, b, 64, NLB, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x: %s", rc, r.status, upcie_errmsg());
	result(!rc, b->ns, "write with metadata (host PI, device checks)", why);
	memset(b->buf, 0, NLB * b->stride);
	if (b->md)
		memset(b->md, 0, (size_t)NLB * b->ns->ms);
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 64, NLB, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x, first bad block %ld", rc, r.status,
		 mismatch(b, 64, NLB, 1));
	result(!rc && mismatch(b, 64, NLB, 1) < 0, b->ns, "read back, data matches", why);
	if (b->ns->pi_type) {
		rc = upcie_nvme_pi_verify(b->ns, b->buf, o.md, NLB, &o, &bad);
		snprintf(why, sizeof(why), "%#x at block %u", rc, bad);
		result(!rc, b->ns, "the host checks the PI it read", why);
	}
}

/* PRACT: the device makes the PI, checks it, and strips it (8 bytes). */
static void pract(struct upcie_nvme_qpair *qp, struct bufs *b)
{
	struct upcie_nvme_io_opts o = opts(b, UPCIE_NVME_RW_PRACT, 128);
	struct upcie_nvme_io_result r;
	char why[256];
	int rc;

	b->stride = upcie_nvme_ns_data_len(b->ns, 1, o.flags);
	fill(b, 128, NLB, 2, NULL);
	rc = io(qp, UPCIE_NVME_CMD_WRITE, b, 128, NLB, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x: %s", rc, r.status, upcie_errmsg());
	result(!rc, b->ns, "PRACT write (the device inserts the PI)", why);
	o.flags |= upcie_nvme_ns_prchk(b->ns);
	memset(b->buf, 0, NLB * b->stride);
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 128, NLB, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x, first bad block %ld", rc, r.status,
		 mismatch(b, 128, NLB, 2));
	result(!rc && mismatch(b, 128, NLB, 2) < 0, b->ns,
	       "PRACT read, checked by the device, data matches", why);
	b->stride = upcie_nvme_ns_data_len(b->ns, 1, 0);
}

/* A bad guard is reported as a guard check error with its LBA, not as data. */
static void bad_guard(struct upcie_nvme_qpair *qp, struct bufs *b)
{
	struct upcie_nvme_io_opts o = opts(b, 0, 160);
	struct upcie_nvme_io_result r;
	char why[256];
	int rc;

	fill(b, 160, 8, 3, &o);
	b->buf[3 * b->stride + 100] ^= 0x20; /* block 163's data, after its guard was made */
	rc = io(qp, UPCIE_NVME_CMD_WRITE, b, 160, 8, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x", rc, r.status);
	result(!rc, b->ns, "write with a bad guard and no checks is taken", why);
	o.flags = UPCIE_NVME_RW_PRCHK_GUARD;
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 160, 8, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x lba %s%llu", rc, r.status,
		 r.lba_valid ? "" : "(none) ", (unsigned long long)r.lba);
	result(rc == -EIO && r.status == UPCIE_NVME_SC_GUARD_CHECK && r.lba_valid && r.lba == 163,
	       b->ns, "read with the guard check: Guard Check Error at LBA 163", why);
	if (upcie_nvme_ctrl_id(CTRL)->oncs & UPCIE_NVME_ONCS_VERIFY) {
		rc = io(qp, UPCIE_NVME_CMD_VERIFY, b, 160, 8, &o, &r);
		snprintf(why, sizeof(why), "rc %d status %#x", rc, r.status);
		result(rc == -EIO && r.status == UPCIE_NVME_SC_GUARD_CHECK, b->ns,
		       "Verify with the guard check: Guard Check Error", why);
	}
}

/* 64-bit guard, type 2: tags of 48 bits, FFFFFFFCh + 5Ah << 32 counting
 * over the 32-bit step; the device checks them, and a wrong high half is
 * a Reference Tag Check Error at the first block. */
static void tag48(struct upcie_nvme_qpair *qp, struct bufs *b)
{
	struct upcie_nvme_io_opts o = opts(b, checks(b->ns), 200);
	struct upcie_nvme_io_result r;
	uint32_t bad = 0;
	char why[256];
	int rc;

	o.reftag = 0xfffffffcu;
	o.reftag_hi = 0x5a;
	fill(b, 200, 8, 4, &o);
	rc = io(qp, UPCIE_NVME_CMD_WRITE, b, 200, 8, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x: %s", rc, r.status, upcie_errmsg());
	result(!rc, b->ns, "48-bit tags over the 32-bit step: write, checked by the device", why);
	memset(b->buf, 0, 8 * b->stride);
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 200, 8, &o, &r);
	if (!rc)
		rc = upcie_nvme_pi_verify(b->ns, b->buf, o.md, 8, &o, &bad);
	snprintf(why, sizeof(why), "rc %d status %#x block %u", rc, r.status, bad);
	result(!rc && mismatch(b, 200, 8, 4) < 0, b->ns,
	       "48-bit tags: read back, checked by the device and the host", why);
	o.reftag_hi = 0x5b;
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 200, 8, &o, &r);
	snprintf(why, sizeof(why), "rc %d status %#x lba %s%llu", rc, r.status,
		 r.lba_valid ? "" : "(none) ", (unsigned long long)r.lba);
	result(rc == -EIO && r.status == UPCIE_NVME_SC_REFTAG_CHECK && r.lba_valid && r.lba == 200,
	       b->ns, "48-bit tags: a wrong high half (CDW3) is a Reference Tag Check Error", why);
}

static void compare_verify(struct upcie_nvme_qpair *qp, struct bufs *b)
{
	const struct upcie_nvme_id_ctrl *id = upcie_nvme_ctrl_id(CTRL);
	struct upcie_nvme_io_opts o = opts(b, checks(b->ns), 64);
	struct upcie_nvme_io_result r;
	char why[256];
	int rc;

	if (id->oncs & UPCIE_NVME_ONCS_VERIFY) {
		rc = io(qp, UPCIE_NVME_CMD_VERIFY, b, 64, NLB, &o, &r);
		snprintf(why, sizeof(why), "rc %d status %#x", rc, r.status);
		result(!rc, b->ns, "Verify of the blocks written", why);
	}
	if (id->oncs & UPCIE_NVME_ONCS_COMPARE) {
		fill(b, 64, NLB, 1, &o);
		rc = io(qp, UPCIE_NVME_CMD_COMPARE, b, 64, NLB, &o, &r);
		snprintf(why, sizeof(why), "rc %d status %#x", rc, r.status);
		result(!rc, b->ns, "Compare with what was written", why);
	}
}

/* The copy's completion; cid 0xffff marks it done. */
static void copy_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_cqe *out = arg;

	*out = *cqe;
	out->cid = 0xffff;
}

/* 64-bit guard: Copy with source range format 1 (48-bit expected tags),
 * the blocks round_trip() wrote at 64.. checked at the source, to 300..
 * with PI the device makes (PRACT); read back with every check. */
static void copy64(struct upcie_nvme_qpair *qp, struct bufs *b, struct upcie_dma_heap *heap)
{
	struct upcie_nvme_io_opts o = opts(b, UPCIE_NVME_RW_PRACT, 300);
	struct upcie_nvme_copy_range1 *r;
	struct upcie_nvme_io_result res;
	struct upcie_nvme_cqe cqe = {.cid = 0};
	char why[256];
	int rc;

	if (!(upcie_nvme_ctrl_id(CTRL)->oncs & UPCIE_NVME_ONCS_COPY) ||
	    !(upcie_nvme_ctrl_id(CTRL)->ocfs & UPCIE_NVME_OCFS_FORMAT1))
		return;
	r = upcie_dma_alloc(heap, sizeof(*r), 64);
	if (!r)
		return;
	memset(r, 0, sizeof(*r));
	r->slba = 64;
	r->nlb = NLB - 1;
	r->elbat = APPTAG;
	r->elbatm = 0xffff;
	upcie_nvme_copy_range1_reftag(r, b->ns->pi_type == 3 ? 0x600d : 64);
	rc = upcie_nvme_copy_ext(qp, b->ns, 300, 1, r, 1, UPCIE_NVME_RW_PRACT | checks(b->ns), &o,
				 copy_done, &cqe, UPCIE_NVME_SUBMIT_RING);
	for (int spins = 0; !rc && cqe.cid != 0xffff && spins < 10000000; spins++)
		upcie_nvme_poll(qp, 0);
	snprintf(why, sizeof(why), "rc %d status %#x: %s", rc, upcie_nvme_cqe_status(&cqe),
		 upcie_errmsg());
	rc = rc ? rc : upcie_nvme_cqe_status(&cqe);
	result(!rc, b->ns,
	       "Copy with source range format 1 (48-bit tags checked at the source, PRACT at "
	       "the destination)",
	       why);
	upcie_dma_free(heap, r);
	o = opts(b, checks(b->ns), 300);
	memset(b->buf, 0, NLB * b->stride);
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 300, NLB, &o, &res);
	snprintf(why, sizeof(why), "rc %d status %#x, first bad block %ld", rc, res.status,
		 mismatch(b, 64, NLB, 1));
	result(!rc && mismatch(b, 64, NLB, 1) < 0, b->ns,
	       "the copy reads back as the source, its new PI checked", why);
	if (b->ns->pi_type == 3)
		return;
	/* An expected source tag off in bits 47:32 (elbt's byte order). */
	r = upcie_dma_alloc(heap, sizeof(*r), 64);
	if (!r)
		return;
	memset(r, 0, sizeof(*r));
	r->slba = 64;
	r->nlb = NLB - 1;
	upcie_nvme_copy_range1_reftag(r, 64 | 1ull << 40);
	cqe.cid = 0;
	rc = upcie_nvme_copy_ext(qp, b->ns, 400, 1, r, 1, UPCIE_NVME_RW_PRCHK_REF, NULL, copy_done,
				 &cqe, UPCIE_NVME_SUBMIT_RING);
	for (int spins = 0; !rc && cqe.cid != 0xffff && spins < 10000000; spins++)
		upcie_nvme_poll(qp, 0);
	/* QEMU 7.2 ends a Copy whose source check fails with Internal Error
	 * (0006h: its copy path turns the check's status into an I/O error),
	 * where the spec and the sim say Reference Tag Check Error (0284h):
	 * either is taken here, and named. */
	snprintf(why, sizeof(why), "rc %d status %#x", rc, upcie_nvme_cqe_status(&cqe));
	result(!rc && (upcie_nvme_cqe_status(&cqe) == UPCIE_NVME_SC_REFTAG_CHECK ||
		       upcie_nvme_cqe_status(&cqe) == UPCIE_NVME_SC_INTERNAL),
	       b->ns, "Copy whose expected 48-bit source tag is off in bit 40 is refused", why);
	printf("    nsid %u: that Copy ended with status %#x (%s)\n", b->ns->nsid,
	       upcie_nvme_cqe_status(&cqe),
	       upcie_nvme_cqe_status(&cqe) == UPCIE_NVME_SC_REFTAG_CHECK
		   ? "Reference Tag Check Error"
		   : "Internal Error: QEMU 7.2's Copy reports a failed check so");
	upcie_dma_free(heap, r);
}

/* What ONCS lacks is refused before the device sees it; Copy, where it is
 * offered, moves data and metadata (read back with the checks). */
static void optional(struct upcie_nvme_qpair *qp, struct bufs *b, struct upcie_dma_heap *heap)
{
	const struct upcie_nvme_id_ctrl *id = upcie_nvme_ctrl_id(CTRL);
	struct upcie_nvme_io_opts o = opts(b, checks(b->ns), 300);
	struct upcie_nvme_copy_range *r;
	struct upcie_nvme_io_result res;
	struct upcie_nvme_cqe cqe = {.cid = 0};
	char why[256];
	int rc;

	if (!(id->oncs & UPCIE_NVME_ONCS_VERIFY)) {
		rc = upcie_nvme_verify(qp, b->ns, 0, 1, NULL, NULL, NULL, 0);
		result(rc == -EOPNOTSUPP, b->ns, "Verify refused: ONCS lacks it", upcie_errmsg());
	}
	if (!(id->oncs & UPCIE_NVME_ONCS_WRITE_UNCOR)) {
		rc = upcie_nvme_write_uncorrectable(qp, b->ns, 0, 1, NULL, NULL, 0);
		result(rc == -EOPNOTSUPP, b->ns, "Write Uncorrectable refused: ONCS lacks it",
		       upcie_errmsg());
	}
	if (!(id->oncs & UPCIE_NVME_ONCS_COPY) || b->ns->pi_type)
		return;
	r = upcie_dma_alloc(heap, sizeof(*r), 64);
	if (!r)
		return;
	memset(r, 0, sizeof(*r));
	r->slba = 64;
	r->nlb = NLB - 1;
	rc =
	    upcie_nvme_copy(qp, b->ns, 300, r, 1, 0, NULL, copy_done, &cqe, UPCIE_NVME_SUBMIT_RING);
	for (int spins = 0; !rc && cqe.cid != 0xffff && spins < 10000000; spins++)
		upcie_nvme_poll(qp, 0);
	snprintf(why, sizeof(why), "rc %d status %#x: %s", rc, upcie_nvme_cqe_status(&cqe),
		 upcie_errmsg());
	rc = rc ? rc : upcie_nvme_cqe_status(&cqe);
	result(!rc, b->ns, "Copy of the blocks written, 64.. to 300..", why);
	upcie_dma_free(heap, r);
	memset(b->buf, 0, NLB * b->stride);
	rc = io(qp, UPCIE_NVME_CMD_READ, b, 300, NLB, &o, &res);
	snprintf(why, sizeof(why), "rc %d, first bad block %ld", rc, mismatch(b, 64, NLB, 1));
	result(!rc && mismatch(b, 64, NLB, 1) < 0, b->ns, "the copy reads back as the source", why);
}

/* A PI format the library does not do (32-bit guard, storage tags):
 * named, and every I/O with options refused before the device sees it. */
static void unsupported_guard(struct upcie_nvme_qpair *qp, struct bufs *b)
{
	struct upcie_nvme_io_opts o = opts(b, 0, 0);
	int rc;

	printf("nsid %u: PI type %u with a %u-bit guard\n", b->ns->nsid, b->ns->pi_type,
	       b->ns->guard_bits);
	rc = upcie_nvme_read_ext(qp, b->ns, 0, 1, b->buf, &o, NULL, NULL, 0);
	result(rc == -ENOTSUP && strstr(upcie_errmsg(), "guard"), b->ns,
	       "I/O refused, naming the guard size", upcie_errmsg());
}

static int bufs_init(struct bufs *b, struct upcie_dma_heap *heap, const struct upcie_nvme_ns *ns,
		     uint32_t nlb)
{
	b->ns = ns;
	b->stride = upcie_nvme_ns_data_len(ns, 1, 0);
	b->buf = upcie_dma_alloc_pages(heap, nlb * (ns->lba_size + ns->ms));
	b->md = ns->md_extended ? NULL : upcie_dma_alloc(heap, (size_t)nlb * ns->ms + 64, 64);
	return b->buf && (ns->md_extended || b->md) ? 0 : -ENOMEM;
}

static void bufs_free(struct bufs *b, struct upcie_dma_heap *heap)
{
	upcie_dma_free(heap, b->buf);
	if (b->md)
		upcie_dma_free(heap, b->md);
}

static void describe(const struct upcie_nvme_ns *ns)
{
	printf("nsid %u: %u + %u bytes, %s metadata, PI %s%s%s\n", ns->nsid, ns->lba_size, ns->ms,
	       !ns->ms		 ? "no"
	       : ns->md_extended ? "extended"
				 : "separate",
	       ns->pi_type ? (ns->pi_type == 1	 ? "type 1"
			      : ns->pi_type == 2 ? "type 2"
						 : "type 3")
			   : "none",
	       ns->pi_type ? (ns->pi_first ? ", first bytes" : ", last bytes") : "",
	       !ns->pi_type	      ? ""
	       : ns->guard_bits == 64 ? ", 64-bit guard (16-byte PI, CRC-64)"
				      : ", 16-bit guard");
}

/* The cross-check region: write it, check it, or print its data. */
static int xregion(struct upcie_nvme_qpair *qp, struct bufs *b, const char *mode, uint32_t seed)
{
	struct upcie_nvme_io_opts o = opts(b, checks(b->ns), XBASE);
	struct upcie_nvme_io_result r;
	int rc;

	if (!strcmp(mode, "write")) {
		fill(b, XBASE, XBLOCKS, seed, &o);
		rc = io(qp, UPCIE_NVME_CMD_WRITE, b, XBASE, XBLOCKS, &o, &r);
		result(!rc, b->ns, "cross-check region written with its PI", upcie_errmsg());
		return rc;
	}
	memset(b->buf, 0, XBLOCKS * b->stride);
	rc = io(qp, UPCIE_NVME_CMD_READ, b, XBASE, XBLOCKS, &o, &r);
	if (!rc && b->ns->pi_type)
		rc = upcie_nvme_pi_verify(b->ns, b->buf, o.md, XBLOCKS, &o, NULL);
	result(!rc && mismatch(b, XBASE, XBLOCKS, seed) < 0, b->ns,
	       "cross-check region reads back (device and host checks), 0 mismatches",
	       upcie_errmsg());
	return rc;
}

/* The cross-check region's data, as the kernel should read it. */
static int dump(uint32_t seed, uint32_t lba_size)
{
	uint8_t *p = lba_size >= 512 && lba_size <= 65536 ? malloc(lba_size) : NULL;

	if (!p) {
		fprintf(stderr, "upcie-md-check: dump: LBA size %u is not valid\n", lba_size);
		return 2;
	}
	for (uint32_t i = 0; i < XBLOCKS; i++) {
		pattern(p, lba_size, XBASE + i, seed);
		fwrite(p, 1, lba_size, stdout);
	}
	free(p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "check-all";
	uint32_t seed = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 0;
	uint32_t only = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 0) : 0;
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	struct upcie_nvme_qpair *qp;

	if (argc < 2 || (argc > 2 && argc < 4)) {
		fprintf(stderr, "usage: %s BDF [write|check SEED [NSID]] | - dump SEED LBA_SIZE\n",
			argv[0]);
		return 2;
	}
	if (!strcmp(mode, "dump"))
		return dump(seed, only);
	dev = upcie_pci_open(argv[1], NULL);
	heap = dev ? upcie_dma_heap_create(dev, 8u << 20, 0) : NULL;
	ctrl = heap ? upcie_nvme_ctrl_open(dev, heap, NULL) : NULL;
	qp = ctrl ? upcie_nvme_qpair_create(ctrl, NULL) : NULL;
	if (!qp) {
		fprintf(stderr, "upcie-md-check: %s: %s\n", argv[1], upcie_errmsg());
		return 2;
	}
	if (!strcmp(mode, "check-all"))
		printf("oncs: %#x\n", upcie_nvme_ctrl_id(ctrl)->oncs);
	CTRL = ctrl;
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(ctrl); ns;
	     ns = upcie_nvme_ns_next(ctrl, ns)) {
		struct bufs b;

		if (!ns->ms || (only && ns->nsid != only))
			continue;
		if (bufs_init(&b, heap, ns, XBLOCKS)) {
			fprintf(stderr, "upcie-md-check: out of DMA memory\n");
			return 2;
		}
		if (ns->pi_type && ((ns->guard_bits != 16 && ns->guard_bits != 64) || ns->pi_sts)) {
			unsupported_guard(qp, &b);
		} else if (!strcmp(mode, "check-all")) {
			describe(ns);
			round_trip(qp, &b);
			compare_verify(qp, &b);
			optional(qp, &b, heap);
			if (ns->pi_type) {
				pract(qp, &b);
				bad_guard(qp, &b);
				if (ns->guard_bits == 64 && ns->pi_type == 2)
					tag48(qp, &b);
				if (ns->guard_bits == 64)
					copy64(qp, &b, heap);
			}
		} else {
			xregion(qp, &b, mode, seed);
		}
		bufs_free(&b, heap);
	}
	upcie_nvme_qpair_destroy(qp);
	upcie_nvme_ctrl_close(ctrl);
	upcie_dma_heap_destroy(heap);
	upcie_pci_close(dev);
	printf("%d failed\n", failures);
	return failures ? 1 : 0;
}
