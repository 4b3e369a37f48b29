/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * NVM commands with options (NVM Command Set spec 3): Read and Write with
 * metadata, protection information, FUA and Limited Retry; Compare,
 * Verify, Write Uncorrectable, Copy and Dataset Management, each refused
 * when Identify Controller ONCS does not offer it. None of this is on the
 * plain read/write fast path (io.c, queue.h): a command is checked, its
 * SQE built here, and it goes through the queue's general submit.
 */
#include <errno.h>
#include <string.h>

#include <upcie/dma.h>
#include <upcie/engine.h>
#include <upcie/pi.h>

#include "core/log.h"
#include "nvme/nvme.h"

#define NLB_MAX 65536u /* NLB is 16 bits, 0's based */

static const char *opc_name(uint8_t opc)
{
	switch (opc) {
	case UPCIE_NVME_CMD_READ:
		return "read";
	case UPCIE_NVME_CMD_WRITE:
		return "write";
	case UPCIE_NVME_CMD_COMPARE:
		return "compare";
	case UPCIE_NVME_CMD_VERIFY:
		return "verify";
	case UPCIE_NVME_CMD_WRITE_UNCOR:
		return "write uncorrectable";
	case UPCIE_NVME_CMD_COPY:
		return "copy";
	case UPCIE_NVME_CMD_DSM:
		return "dataset management";
	default:
		return "command";
	}
}

/* The optional command must be in Identify Controller ONCS. */
static int need_oncs(const struct upcie_nvme_qpair *qp, uint16_t bit, uint8_t opc)
{
	if (qp->ctrl->id->oncs & bit)
		return 0;
	return upcie_err(-EOPNOTSUPP,
			 "%s: the controller does not offer it (Identify Controller ONCS bit %d "
			 "is 0)",
			 opc_name(opc), __builtin_ctz(bit));
}

/* Checks the namespace's PI type takes (upcie_nvme_ns_prchk). */
static int prchk_check(const struct upcie_nvme_ns *ns, uint32_t flags, const char *what)
{
	uint32_t extra = flags & UPCIE_NVME_RW_PRCHK_ALL & ~upcie_nvme_ns_prchk(ns);

	if (!extra || !ns->pi_type)
		return 0;
	return upcie_err(-EINVAL,
			 "%s: nsid %u has PI type 3, whose reference tag the controller does not "
			 "check: leave PRCHK_REF out (upcie_nvme_ns_prchk())",
			 what, ns->nsid);
}

static int opts_check(const struct upcie_nvme_ns *ns, const struct upcie_nvme_io_opts *o,
		      const char *what)
{
	if (!o)
		return 0;
	if (o->opts_size < UPCIE_NVME_IO_OPTS_SIZE_V1)
		return upcie_err(
		    -EINVAL, "%s: opts_size %u: set it to sizeof(struct upcie_nvme_io_opts) (%zu)",
		    what, o->opts_size, sizeof(*o));
	if (o->opts_size >= sizeof(*o) && o->reftag_hi && ns->guard_bits != 64)
		return upcie_err(-EINVAL,
				 "%s: reftag_hi %#x given, but nsid %u has 32-bit reference tags "
				 "(only the 64-bit guard format has 48)",
				 what, o->reftag_hi, ns->nsid);
	if (o->opts_size >= sizeof(*o) && o->reftag_hi > 0xffff)
		return upcie_err(-EINVAL,
				 "%s: reftag_hi %#x is above 16 bits (reference tags have 48)",
				 what, o->reftag_hi);
	if (o->flags & ~UPCIE_NVME_IO_FLAGS)
		return upcie_err(-EINVAL,
				 "%s: flags %#x has bits other than FUA, LR, PRACT and PRCHK "
				 "(UPCIE_NVME_IO_FLAGS)",
				 what, o->flags);
	if ((o->flags & (UPCIE_NVME_RW_PRACT | UPCIE_NVME_RW_PRCHK_ALL)) && !ns->pi_type)
		return upcie_err(
		    -EINVAL,
		    "%s: PRACT/PRCHK given, but nsid %u is not formatted with protection "
		    "information",
		    what, ns->nsid);
	return prchk_check(ns, o->flags, what);
}

static int ns_usable(const struct upcie_nvme_ns *ns, const char *what)
{
	if (!ns)
		return upcie_err(-EINVAL, "%s: no namespace", what);
	if (upcie_nvme_ns_stale(ns))
		return upcie_nvme_ns_stale_err(ns);
	if (ns->pi_type && !ns->guard_bits)
		return upcie_err(-ENOTSUP,
				 "%s: nsid %u: its PI format is not known (the NVM Identify "
				 "Namespace failed); it is read again with the next "
				 "namespace change or controller reset",
				 what, ns->nsid);
	if (ns->pi_type && !upcie_nvme_pi_size(ns))
		return upcie_err(-ENOTSUP,
				 "%s: nsid %u uses a %u-bit guard%s; only the 16- and 64-bit "
				 "guard formats without storage tags are supported",
				 what, ns->nsid, ns->guard_bits,
				 ns->pi_sts ? " with storage tags" : "");
	return 0;
}

/* CDW10-15 of a command on [slba, slba + nlb) with the options. */
static void sqe_blocks(struct upcie_nvme_sqe *sqe, uint8_t opc, const struct upcie_nvme_ns *ns,
		       uint64_t slba, uint32_t nlb, const struct upcie_nvme_io_opts *o)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opc = opc;
	sqe->nsid = ns->nsid;
	sqe->cdw10 = (uint32_t)slba;
	sqe->cdw11 = (uint32_t)(slba >> 32);
	sqe->cdw12 = nlb - 1;
	if (o) {
		sqe->cdw12 |= o->flags & UPCIE_NVME_IO_FLAGS;
		sqe->cdw14 = o->reftag;
		sqe->cdw15 = o->apptag | (uint32_t)o->apptag_mask << 16;
		/* 64-bit guard: the 48-bit tag's bits 47:32 go into CDW3 15:0
		 * (NVM Command Set spec 3.2.4, the EILBRT/ELBST field). */
		if (ns->guard_bits == 64)
			sqe->cdw3 = (uint32_t)(upcie_nvme_opts_reftag(o) >> 32);
	}
}

/* Is the metadata buffer [md, md + len) one bus-contiguous run? */
static bool md_contiguous(const struct upcie_nvme_qpair *qp, const uint8_t *md, size_t len)
{
	uint64_t bus = upcie_dma_bus(qp->heap, md);

	for (size_t off = 4096 - ((uintptr_t)md & 4095); off < len; off += 4096)
		if (upcie_dma_bus(qp->heap, md + off) != bus + off)
			return false;
	return true;
}

/* A metadata buffer in pieces: through a metadata SGL (PSDT 10b, sgl.c)
 * when the controller and the queue pair take one, else refused. */
static int md_pieces(const struct upcie_nvme_qpair *qp, const uint8_t *md,
		     struct upcie_nvme_md_buf *mb, const char *what)
{
	const struct upcie_nvme_ctrl *c = qp->ctrl;

	if (!upcie_nvme_ctrl_md_sgl(c))
		return upcie_err(-EINVAL,
				 "%s: the metadata buffer at %p is not contiguous for the device, "
				 "and the controller takes no metadata SGL (Identify SGLS bit 19 "
				 "is 0%s; SGLS = %#x): MPTR is one address, so allocate the "
				 "metadata buffer in one piece with upcie_dma_alloc()",
				 what, (const void *)md,
				 upcie_nvme_ctrl_sgl(c) ? "" : ", and it has no SGLs",
				 upcie_nvme_ctrl_id(c)->sgls);
	if (!qp->md_sgl_descs)
		return upcie_err(-EINVAL,
				 "%s: the metadata buffer at %p is not contiguous for the device, "
				 "and queue pair %u has no list memory for a metadata SGL (it was "
				 "created before the controller offered SGLS bit 19): create the "
				 "queue pair again, or allocate the metadata buffer in one piece",
				 what, (const void *)md, qp->qid);
	mb->sgl = true;
	return 0;
}

/* The separate metadata buffer: MPTR, one address, when it is contiguous
 * for the device; else a metadata SGL (md_pieces). */
static int md_attach(const struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
		     uint32_t nlb, const struct upcie_nvme_io_opts *o, struct upcie_nvme_sqe *sqe,
		     struct upcie_nvme_md_buf *mb, const char *what)
{
	uint32_t f = o ? o->flags : 0;
	size_t len = upcie_nvme_ns_md_len(ns, nlb, f);
	const uint8_t *md = o ? o->md : NULL;

	if (!len && !md)
		return 0;
	if (!len)
		return upcie_err(
		    -EINVAL, "%s: nsid %u takes no separate metadata here (%s): md must be NULL",
		    what, ns->nsid,
		    !ns->ms	      ? "it has none"
		    : ns->md_extended ? "it is in the data buffer, extended LBAs"
				      : "PRACT inserts and strips the 8-byte PI");
	if (!md)
		return upcie_err(-EINVAL,
				 "%s: nsid %u keeps %u metadata bytes per block apart: give a "
				 "%zu-byte metadata buffer (o->md)",
				 what, ns->nsid, ns->ms, len);
	if (((uintptr_t)md & 3) || !upcie_dma_contains(qp->heap, md, len))
		return upcie_err(-EINVAL, "%s: the %zu-byte metadata buffer at %p is %s", what, len,
				 (const void *)md,
				 ((uintptr_t)md & 3) ? "not 4-byte aligned"
						     : "not in the DMA heap");
	mb->va = md;
	mb->len = len;
	if (!md_contiguous(qp, md, len))
		return md_pieces(qp, md, mb, what);
	sqe->mptr = upcie_dma_bus(qp->heap, md);
	return 0;
}

/*
 * Check a Read, Write, Compare or Verify with options and build its SQE;
 * *len: the data buffer's bytes (0: none).
 */
int upcie_nvme_blocks_prepare(const struct upcie_nvme_qpair *qp, uint8_t opc,
			      const struct upcie_nvme_ns *ns, uint64_t slba, uint32_t nlb,
			      const void *buf, const struct upcie_nvme_io_opts *o,
			      struct upcie_nvme_sqe *sqe, size_t *len, struct upcie_nvme_md_buf *md)
{
	const char *what = opc_name(opc);
	bool data = opc != UPCIE_NVME_CMD_VERIFY;
	uint32_t max;
	int rc;

	*md = (struct upcie_nvme_md_buf){0};
	if ((rc = ns_usable(ns, what)) || (rc = opts_check(ns, o, what)))
		return rc;
	max = data ? ns->md_max_xfer_blocks : NLB_MAX;
	if (!nlb || nlb > max)
		return upcie_err(-EINVAL, "%s: nsid %u: %u blocks is not valid (1..%u%s)", what,
				 ns->nsid, nlb, max, data ? " blocks, from MDTS" : "");
	if (data && !buf)
		return upcie_err(-EINVAL, "%s: nsid %u: no data buffer", what, ns->nsid);
	sqe_blocks(sqe, opc, ns, slba, nlb, o);
	*len = data ? upcie_nvme_ns_data_len(ns, nlb, o ? o->flags : 0) : 0;
	if (!data)
		return o && o->md ? upcie_err(-EINVAL, "verify moves no metadata: md must be NULL")
				  : 0;
	return md_attach(qp, ns, nlb, o, sqe, md, what);
}

int upcie_nvme_blocks_submit(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
			     const void *buf, size_t len, const struct upcie_nvme_md_buf *md,
			     upcie_nvme_cb cb, void *arg, unsigned flags, uint16_t *cid)
{
	if (md->sgl)
		return upcie_nvme_queue_submit_md_sgl(qp, sqe, buf, len, md, cb, arg, flags, cid);
	return upcie_nvme_queue_submit(qp, sqe, buf, len, cb, arg, flags, cid);
}

static int blocks_submit(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
			 uint64_t slba, uint32_t nlb, const void *buf,
			 const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg,
			 unsigned flags)
{
	struct upcie_nvme_md_buf md;
	struct upcie_nvme_sqe sqe;
	size_t len;
	int rc = upcie_nvme_blocks_prepare(qp, opc, ns, slba, nlb, buf, o, &sqe, &len, &md);

	if (rc)
		return rc;
	return upcie_nvme_blocks_submit(qp, &sqe, len ? buf : NULL, len, &md, cb, arg, flags, NULL);
}

int upcie_nvme_read_ext(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
			uint32_t nlb, void *buf, const struct upcie_nvme_io_opts *o,
			upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return blocks_submit(qp, UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, o, cb, arg, flags);
}

int upcie_nvme_write_ext(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
			 uint32_t nlb, const void *buf, const struct upcie_nvme_io_opts *o,
			 upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return blocks_submit(qp, UPCIE_NVME_CMD_WRITE, ns, slba, nlb, buf, o, cb, arg, flags);
}

int upcie_nvme_compare(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		       uint32_t nlb, const void *buf, const struct upcie_nvme_io_opts *o,
		       upcie_nvme_cb cb, void *arg, unsigned flags)
{
	int rc = need_oncs(qp, UPCIE_NVME_ONCS_COMPARE, UPCIE_NVME_CMD_COMPARE);

	return rc ? rc
		  : blocks_submit(qp, UPCIE_NVME_CMD_COMPARE, ns, slba, nlb, buf, o, cb, arg,
				  flags);
}

int upcie_nvme_verify(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t slba,
		      uint32_t nlb, const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg,
		      unsigned flags)
{
	int rc = need_oncs(qp, UPCIE_NVME_ONCS_VERIFY, UPCIE_NVME_CMD_VERIFY);

	return rc ? rc
		  : blocks_submit(qp, UPCIE_NVME_CMD_VERIFY, ns, slba, nlb, NULL, o, cb, arg,
				  flags);
}

int upcie_nvme_write_uncorrectable(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
				   uint64_t slba, uint32_t nlb, upcie_nvme_cb cb, void *arg,
				   unsigned flags)
{
	struct upcie_nvme_sqe sqe;
	int rc = need_oncs(qp, UPCIE_NVME_ONCS_WRITE_UNCOR, UPCIE_NVME_CMD_WRITE_UNCOR);

	if (rc || (rc = ns_usable(ns, "write uncorrectable")))
		return rc;
	if (!nlb || nlb > NLB_MAX)
		return upcie_err(-EINVAL, "write uncorrectable: %u blocks is not valid (1..%u)",
				 nlb, NLB_MAX);
	sqe_blocks(&sqe, UPCIE_NVME_CMD_WRITE_UNCOR, ns, slba, nlb, NULL);
	return upcie_nvme_queue_submit(qp, &sqe, NULL, 0, cb, arg, flags, NULL);
}

/* ---- Copy ---- */

/* The number of blocks of range i, 0's based, in either format. */
static uint32_t range_nlb(const void *ranges, uint32_t format, uint32_t i)
{
	if (format == 1)
		return ((const struct upcie_nvme_copy_range1 *)ranges)[i].nlb;
	return ((const struct upcie_nvme_copy_range *)ranges)[i].nlb;
}

/* The descriptor format must be offered (OCFS) and fit the namespace's PI
 * format: format 0 carries 32-bit tags (no PI, 16-bit guard), format 1
 * the longer ones (NVM Command Set spec 3.2.2; QEMU's controller refuses
 * the other pairing with Invalid Format). */
static int copy_format_check(const struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			     uint32_t format)
{
	bool long_tags = ns->pi_type && ns->guard_bits != 16;

	if (format > 1)
		return upcie_err(-EINVAL, "copy: source range format %u is not done (0 and 1 are)",
				 format);
	if (!(qp->ctrl->id->ocfs & (1u << format)))
		return upcie_err(-EOPNOTSUPP,
				 "copy: the controller does not offer source range format %u "
				 "(Identify Controller OCFS bit %u)",
				 format, format);
	if (long_tags != (format == 1))
		return upcie_err(-EINVAL,
				 "copy: nsid %u %s: its source ranges are in format %u, not %u "
				 "(upcie_nvme_copy_ext)",
				 ns->nsid,
				 long_tags ? "has the 64-bit guard PI format"
					   : "has 32-bit reference tags",
				 long_tags ? 1 : 0, format);
	return 0;
}

static int copy_check(const struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
		      uint32_t format, const void *r, uint32_t nr, uint32_t src_chk,
		      uint32_t dst_flags)
{
	uint32_t msrc = (uint32_t)ns->id->msrc + 1, mssrl = ns->id->mssrl, mcl = ns->id->mcl;
	uint64_t total = 0;
	int rc = copy_format_check(qp, ns, format);

	if (rc)
		return rc;
	if (!r || !nr || nr > msrc || nr > 256)
		return upcie_err(-EINVAL, "copy: %u source ranges %s (1..%u in heap memory, MSRC)",
				 nr, r ? "is not valid" : "without a range table",
				 msrc < 256 ? msrc : 256);
	if (src_chk & ~(UPCIE_NVME_RW_PRCHK_ALL | UPCIE_NVME_RW_PRACT))
		return upcie_err(-EINVAL, "copy: src_chk %#x has bits other than PRACT and PRCHK",
				 src_chk);
	if (src_chk && !ns->pi_type)
		return upcie_err(-EINVAL,
				 "copy: src_chk given, but nsid %u has no protection "
				 "information",
				 ns->nsid);
	rc = prchk_check(ns, src_chk, "copy (src_chk)");
	if (rc)
		return rc;
	/* PRINFOR and PRINFOW carry the same PRACT on a namespace with PI
	 * (else Invalid Field in Command, as QEMU's controller answers). */
	if (ns->pi_type && (src_chk ^ dst_flags) & UPCIE_NVME_RW_PRACT)
		return upcie_err(-EINVAL,
				 "copy: PRACT must be in both src_chk and the options' flags, or "
				 "in neither (PRINFOR and PRINFOW)");
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t n = range_nlb(r, format, i) + 1;

		if (mssrl && n > mssrl)
			return upcie_err(-EINVAL,
					 "copy: range %u has %u blocks, above MSSRL (%u blocks)", i,
					 n, mssrl);
		total += n;
	}
	if (mcl && total > mcl)
		return upcie_err(-EINVAL, "copy: %llu blocks in all, above MCL (%u blocks)",
				 (unsigned long long)total, mcl);
	return 0;
}

int upcie_nvme_copy_ext(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t sdlba,
			uint32_t format, const void *ranges, uint32_t nr, uint32_t src_chk,
			const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg,
			unsigned flags)
{
	size_t esz = format == 1 ? sizeof(struct upcie_nvme_copy_range1)
				 : sizeof(struct upcie_nvme_copy_range);
	struct upcie_nvme_sqe sqe;
	int rc = need_oncs(qp, UPCIE_NVME_ONCS_COPY, UPCIE_NVME_CMD_COPY);

	if (rc || (rc = ns_usable(ns, "copy")) || (rc = opts_check(ns, o, "copy")) ||
	    (rc = copy_check(qp, ns, format, ranges, nr, src_chk, o ? o->flags : 0)))
		return rc;
	if (o && o->md)
		return upcie_err(-EINVAL, "copy moves no host metadata: md must be NULL");
	/* CDW12: NR (7:0, 0's based), the descriptor format (11:8), PRINFOR
	 * (15:12), and PRINFOW, FUA, LR where Read and Write have them; the
	 * destination's 48-bit tag's high half in CDW3 (sqe_blocks). */
	sqe_blocks(&sqe, UPCIE_NVME_CMD_COPY, ns, sdlba, nr, o);
	sqe.cdw12 |= format << 8 | (src_chk >> UPCIE_NVME_PRINFO_SHIFT) << 12;
	return upcie_nvme_queue_submit(qp, &sqe, ranges, nr * esz, cb, arg, flags, NULL);
}

int upcie_nvme_copy(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns, uint64_t sdlba,
		    const struct upcie_nvme_copy_range *ranges, uint32_t nr, uint32_t src_chk,
		    const struct upcie_nvme_io_opts *o, upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return upcie_nvme_copy_ext(qp, ns, sdlba, 0, ranges, nr, src_chk, o, cb, arg, flags);
}

int upcie_nvme_dsm(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
		   const struct upcie_nvme_dsm_range *ranges, uint32_t nr, uint32_t attrs,
		   upcie_nvme_cb cb, void *arg, unsigned flags)
{
	const uint32_t all = UPCIE_NVME_DSM_IDR | UPCIE_NVME_DSM_IDW | UPCIE_NVME_DSM_AD;
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_CMD_DSM, .cdw10 = nr - 1, .cdw11 = attrs};
	int rc = need_oncs(qp, UPCIE_NVME_ONCS_DSM, UPCIE_NVME_CMD_DSM);

	if (rc || (rc = ns_usable(ns, "dataset management")))
		return rc;
	if (!ranges || !nr || nr > 256)
		return upcie_err(-EINVAL,
				 "dataset management: %u ranges %s (1..256 ranges in heap memory)",
				 nr, ranges ? "is not valid" : "without a range table");
	if (!attrs || (attrs & ~all))
		return upcie_err(
		    -EINVAL,
		    "dataset management: attributes %#x: give one or more of IDR, IDW, "
		    "AD (UPCIE_NVME_DSM_*)",
		    attrs);
	sqe.nsid = ns->nsid;
	return upcie_nvme_queue_submit(qp, &sqe, ranges, nr * sizeof(*ranges), cb, arg, flags,
				       NULL);
}
