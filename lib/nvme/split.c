/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Transfers above MDTS, split into commands of at most the controller's
 * limit (NVMe Base spec 5.15.2.1, Identify Controller MDTS). Each part is
 * an ordinary Read or Write (with options: its metadata and its first
 * reference tag follow its first block) whose completion is counted in
 * the caller's struct upcie_nvme_split; the caller's callback runs once,
 * after the last part, with the first error.
 *
 * All parts enter the SQ or none does: the free slots are counted first,
 * and nothing between that count and the last submit can take a slot (a
 * queue pair belongs to one thread).
 */
#include <errno.h>
#include <string.h>

#include <upcie/engine.h>

#include "core/log.h"
#include "nvme/nvme.h"

uint32_t upcie_nvme_split_parts(const struct upcie_nvme_ns *ns, uint32_t nlb)
{
	if (!nlb || !ns->max_xfer_blocks)
		return 0;
	return (nlb + ns->max_xfer_blocks - 1) / ns->max_xfer_blocks;
}

static void part_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_split *s = arg;

	if (upcie_nvme_cqe_status(cqe) && !s->failed) {
		s->failed = true;
		s->cqe = *cqe;
	}
	if (--s->pending)
		return;
	if (!s->failed)
		s->cqe = *cqe;
	if (s->cb)
		s->cb(s->arg, &s->cqe);
}

/* One transfer: plain (o NULL: data only, ns->max_xfer_blocks a part) or
 * with options (metadata and PI kept in step, ns->md_max_xfer_blocks). */
struct split_job {
	uint8_t opc;
	const struct upcie_nvme_ns *ns;
	uint64_t slba;
	uint32_t nlb, max;
	const void *buf;
	const struct upcie_nvme_io_opts *o;
};

/* The SQE of the part at block done, n blocks; *data: where its data
 * starts; *md: its metadata (with options), as MPTR or a metadata SGL. */
static int part_prepare(struct upcie_nvme_qpair *qp, const struct split_job *j, uint32_t done,
			uint32_t n, struct upcie_nvme_sqe *sqe, const void **data, size_t *len,
			struct upcie_nvme_md_buf *md)
{
	uint64_t lba = j->slba + done;
	struct upcie_nvme_io_opts po;

	if (!j->o) {
		*sqe = (struct upcie_nvme_sqe){
		    .opc = j->opc,
		    .nsid = j->ns->nsid,
		    .cdw10 = (uint32_t)lba,
		    .cdw11 = (uint32_t)(lba >> 32),
		    .cdw12 = n - 1, /* NLB is 0's based */
		};
		*data = (const char *)j->buf + ((size_t)done << j->ns->lba_shift);
		*len = (size_t)n << j->ns->lba_shift;
		*md = (struct upcie_nvme_md_buf){0};
		return 0;
	}
	/* The part's metadata and first reference tag follow its first block. */
	upcie_nvme_opts_copy(&po, j->o);
	if (po.md)
		po.md = (char *)po.md + upcie_nvme_ns_md_len(j->ns, done, po.flags);
	upcie_nvme_opts_reftag_add(j->ns, &po, done);
	*data = (const char *)j->buf + upcie_nvme_ns_data_len(j->ns, done, po.flags);
	return upcie_nvme_blocks_prepare(qp, j->opc, j->ns, lba, n, *data, &po, sqe, len, md);
}

static int split_check(struct upcie_nvme_qpair *qp, const struct split_job *j,
		       struct upcie_nvme_split *s, uint32_t parts)
{
	const struct upcie_nvme_ns *ns = j->ns;
	size_t len = upcie_nvme_ns_data_len(ns, j->nlb, j->o ? j->o->flags : 0);

	if (unlikely(!s || !j->buf))
		return upcie_err(-EINVAL, "split transfer: no buffer or no split state");
	if (unlikely(upcie_nvme_ns_stale(ns)))
		return upcie_nvme_ns_stale_err(ns);
	if (unlikely(!j->max))
		return upcie_err(-ENOTSUP,
				 "nsid %u has %u metadata bytes per block: use "
				 "upcie_nvme_read_ext_split/_write_ext_split, which take its "
				 "metadata",
				 ns->nsid, ns->ms);
	if (unlikely(!j->nlb || j->slba >= ns->nsze || j->nlb > ns->nsze - j->slba))
		return upcie_err(-EINVAL,
				 "nsid %u: %u blocks at LBA %llu are outside the namespace (%llu "
				 "blocks)",
				 ns->nsid, j->nlb, (unsigned long long)j->slba,
				 (unsigned long long)ns->nsze);
	if (unlikely(parts > upcie_nvme_qpair_depth(qp) - 1))
		return upcie_err(-EINVAL,
				 "a %zu-byte transfer takes %u commands of at most %u blocks; the "
				 "queue holds %u: use a deeper queue",
				 len, parts, j->max, upcie_nvme_qpair_depth(qp) - 1);
	if (unlikely(!upcie_dma_contains(qp->heap, j->buf, len)))
		return upcie_err(-EINVAL,
				 "split transfer: the %zu-byte buffer at %p is neither in the DMA "
				 "heap nor registered; allocate I/O buffers with "
				 "upcie_dma_alloc_pages() or register them (upcie_dma_register)",
				 len, j->buf);
	/* Each part's options and metadata, before any part goes out. */
	for (uint32_t done = 0; j->o && done < j->nlb; done += j->max) {
		struct upcie_nvme_md_buf md;
		struct upcie_nvme_sqe sqe;
		const void *data;
		size_t n;
		int rc = part_prepare(qp, j, done, j->nlb - done < j->max ? j->nlb - done : j->max,
				      &sqe, &data, &n, &md);

		if (rc)
			return rc;
	}
	return 0;
}

static int split_rw(struct upcie_nvme_qpair *qp, const struct split_job *j,
		    struct upcie_nvme_split *s, upcie_nvme_cb cb, void *arg, unsigned flags)
{
	uint32_t parts = j->max ? (j->nlb + j->max - 1) / j->max : 0;
	uint32_t room = upcie_nvme_qpair_depth(qp) - 1 - upcie_nvme_qpair_outstanding(qp);
	uint32_t done = 0, queued = 0;
	int rc = split_check(qp, j, s, parts);

	if (rc)
		return rc;
	if (parts > room)
		return -EAGAIN; /* not an error: poll and retry */

	memset(s, 0, sizeof(*s));
	s->cb = cb;
	s->arg = arg;
	s->parts = parts;
	s->pending = parts;
	while (done < j->nlb) {
		uint32_t n = j->nlb - done < j->max ? j->nlb - done : j->max;
		struct upcie_nvme_md_buf md;
		struct upcie_nvme_sqe sqe;
		const void *data;
		size_t len;

		/* Each part's metadata follows its first block, through MPTR or
		 * its own metadata SGL (in its own CID's list slot). */
		rc = part_prepare(qp, j, done, n, &sqe, &data, &len, &md);
		if (!rc)
			rc = upcie_nvme_blocks_submit(qp, &sqe, data, len, &md, part_done, s, 0,
						      NULL);
		/* Checked above: room, heap, sizes; a refusal here is unexpected. The
		 * parts already queued still complete: the callback then reports an
		 * internal error, once, and the call returns 0 so it is awaited. */
		if (unlikely(rc)) {
			upcie_err(rc,
				  "split transfer: part at LBA %llu refused after %u of %u "
				  "parts were queued",
				  (unsigned long long)(j->slba + done), queued, parts);
			if (!queued)
				return rc;
			s->parts = s->pending = queued;
			s->failed = true;
			s->cqe.status = upcie_nvme_status_field(UPCIE_NVME_SC_INTERNAL, 1, 0);
			break;
		}
		done += n;
		queued++;
	}
	if (flags & UPCIE_NVME_SUBMIT_RING)
		upcie_nvme_ring(qp);
	return 0;
}

static struct split_job job(uint8_t opc, const struct upcie_nvme_ns *ns, uint64_t slba,
			    uint32_t nlb, const void *buf, const struct upcie_nvme_io_opts *o)
{
	return (struct split_job){.opc = opc,
				  .ns = ns,
				  .slba = slba,
				  .nlb = nlb,
				  .max = o ? ns->md_max_xfer_blocks : ns->max_xfer_blocks,
				  .buf = buf,
				  .o = o};
}

int upcie_nvme_read_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			  uint64_t slba, uint32_t nlb, void *buf, struct upcie_nvme_split *split,
			  upcie_nvme_cb cb, void *arg, unsigned flags)
{
	struct split_job j = job(UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, NULL);

	return split_rw(qp, &j, split, cb, arg, flags);
}

int upcie_nvme_write_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			   uint64_t slba, uint32_t nlb, const void *buf,
			   struct upcie_nvme_split *split, upcie_nvme_cb cb, void *arg,
			   unsigned flags)
{
	struct split_job j = job(UPCIE_NVME_CMD_WRITE, ns, slba, nlb, buf, NULL);

	return split_rw(qp, &j, split, cb, arg, flags);
}

/* With options: o may not be NULL (the plain calls are those above). */
static int split_ext(struct upcie_nvme_qpair *qp, uint8_t opc, const struct upcie_nvme_ns *ns,
		     uint64_t slba, uint32_t nlb, const void *buf,
		     const struct upcie_nvme_io_opts *o, struct upcie_nvme_split *split,
		     upcie_nvme_cb cb, void *arg, unsigned flags)
{
	static const struct upcie_nvme_io_opts none = {.opts_size = sizeof(none)};
	struct split_job j = job(opc, ns, slba, nlb, buf, o ? o : &none);

	return split_rw(qp, &j, split, cb, arg, flags);
}

int upcie_nvme_read_ext_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			      uint64_t slba, uint32_t nlb, void *buf,
			      const struct upcie_nvme_io_opts *o, struct upcie_nvme_split *split,
			      upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return split_ext(qp, UPCIE_NVME_CMD_READ, ns, slba, nlb, buf, o, split, cb, arg, flags);
}

int upcie_nvme_write_ext_split(struct upcie_nvme_qpair *qp, const struct upcie_nvme_ns *ns,
			       uint64_t slba, uint32_t nlb, const void *buf,
			       const struct upcie_nvme_io_opts *o, struct upcie_nvme_split *split,
			       upcie_nvme_cb cb, void *arg, unsigned flags)
{
	return split_ext(qp, UPCIE_NVME_CMD_WRITE, ns, slba, nlb, buf, o, split, cb, arg, flags);
}
