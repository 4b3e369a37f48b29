/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Admin commands. The admin queue is shared by every thread using the
 * controller, so each command runs under admin_lock: submit, ring, poll
 * until done or timed out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/pci.h>

#include "log.h"
#include "nvme/nvme.h"

struct admin_wait {
	int done;
	struct upcie_nvme_cqe cqe;
};

static void admin_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct admin_wait *w = arg;

	w->cqe = *cqe;
	w->done = 1;
}

int upcie_nvme_admin_locked(struct upcie_nvme_ctrl *c, struct upcie_nvme_sqe *sqe, void *buf,
			    size_t len, struct upcie_nvme_cqe *cqe, uint32_t timeout_ms)
{
	struct admin_wait w = {0};
	uint64_t deadline;
	uint16_t cid;
	int rc;

	if (c->admin_broken)
		return upcie_err(-EIO,
				 "%s: an earlier admin command timed out; close and reopen the "
				 "controller",
				 upcie_pci_name(c->dev));
	rc = upcie_nvme_qpair_submit_sqe(c->admin, sqe, buf, len, admin_cb, &w,
					 UPCIE_NVME_SUBMIT_RING, &cid);
	if (rc == -EAGAIN)
		return upcie_err(-EAGAIN, "admin queue full");
	if (rc)
		return upcie_err(rc,
				 "admin command %#x: buffer of %zu bytes is not usable (outside "
				 "the DMA heap, misaligned or above %u bytes)",
				 sqe->opc, len, c->admin->max_xfer);

	deadline = upcie_now_ms() + (timeout_ms ? timeout_ms : c->admin_timeout_ms);
	for (unsigned spin = 1; !w.done; spin++) {
		upcie_nvme_poll(c->admin, 0);
		if (w.done)
			break;
		upcie_pci_idle(c->dev);
		if ((spin & 1023) == 0) {
			rc = upcie_nvme_ctrl_check_csts(c, "an admin command");
			if (!rc && upcie_now_ms() > deadline)
				rc = upcie_err(-ETIMEDOUT,
					       "%s: admin command %#x got no completion within %u "
					       "ms; the controller is now unusable until reopened",
					       upcie_pci_name(c->dev), sqe->opc,
					       timeout_ms ? timeout_ms : c->admin_timeout_ms);
			if (rc) {
				c->admin->reqs[cid].abandoned = 1;
				c->admin_broken = true;
				return rc;
			}
		}
	}
	if (cqe)
		*cqe = w.cqe;
	return upcie_nvme_cqe_status(&w.cqe) ? -EIO : 0;
}

int upcie_nvme_admin(struct upcie_nvme_ctrl *c, struct upcie_nvme_sqe *sqe, void *buf, size_t len,
		     struct upcie_nvme_cqe *cqe, uint32_t timeout_ms)
{
	int rc;

	if (!c || !sqe)
		return -EINVAL;
	pthread_mutex_lock(&c->admin_lock);
	rc = upcie_nvme_admin_locked(c, sqe, buf, len, cqe, timeout_ms);
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

static int admin_status(struct upcie_nvme_ctrl *c, struct upcie_nvme_sqe *sqe, void *buf,
			size_t len, uint32_t *dw0, uint16_t *status)
{
	struct upcie_nvme_cqe cqe = {0};
	int rc = upcie_nvme_admin(c, sqe, buf, len, &cqe, 0);

	if (status)
		*status = upcie_nvme_cqe_status(&cqe);
	if (dw0)
		*dw0 = cqe.dw0;
	return rc;
}

int upcie_nvme_identify(struct upcie_nvme_ctrl *c, uint8_t cns, uint32_t nsid, void *buf,
			uint16_t *status)
{
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_IDENTIFY, .nsid = nsid, .cdw10 = cns};

	return admin_status(c, &sqe, buf, 4096, NULL, status);
}

int upcie_nvme_get_log_page(struct upcie_nvme_ctrl *c, uint8_t lid, uint32_t nsid, void *buf,
			    size_t len, uint16_t *status)
{
	uint32_t numd = (uint32_t)(len / 4) - 1; /* dwords, 0's based */
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_ADM_GET_LOG_PAGE,
	    .nsid = nsid,
	    .cdw10 = ((numd & 0xffff) << 16) | lid,
	    .cdw11 = numd >> 16,
	};

	if (len < 4 || len % 4)
		return upcie_err(-EINVAL, "log page length %zu must be a non-zero multiple of 4",
				 len);
	return admin_status(c, &sqe, buf, len, NULL, status);
}

int upcie_nvme_set_features(struct upcie_nvme_ctrl *c, uint8_t fid, uint32_t cdw11,
			    uint32_t *result, uint16_t *status)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_ADM_SET_FEATURES, .cdw10 = fid, .cdw11 = cdw11};

	return admin_status(c, &sqe, NULL, 0, result, status);
}

int upcie_nvme_get_features(struct upcie_nvme_ctrl *c, uint8_t fid, uint32_t cdw11,
			    uint32_t *result, uint16_t *status)
{
	struct upcie_nvme_sqe sqe = {
	    .opc = UPCIE_NVME_ADM_GET_FEATURES, .cdw10 = fid, .cdw11 = cdw11};

	return admin_status(c, &sqe, NULL, 0, result, status);
}

/* Doorbell Buffer Config (Base spec 5.8): one page of shadow doorbells,
 * one page of EventIdx values. Failure just leaves doorbells MMIO-only. */
int upcie_nvme_setup_dbbuf(struct upcie_nvme_ctrl *c)
{
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_DBBUF_CONFIG};
	uint16_t st = 0;
	int rc;

	c->dbbuf_shadow = upcie_dma_alloc(c->heap, c->page_size, c->page_size);
	c->dbbuf_eventidx = upcie_dma_alloc(c->heap, c->page_size, c->page_size);
	if (!c->dbbuf_shadow || !c->dbbuf_eventidx) {
		rc = -ENOMEM;
		goto off;
	}
	memset(c->dbbuf_shadow, 0, c->page_size);
	memset(c->dbbuf_eventidx, 0, c->page_size);
	sqe.prp1 = upcie_dma_bus(c->heap, c->dbbuf_shadow);
	sqe.prp2 = upcie_dma_bus(c->heap, c->dbbuf_eventidx);
	rc = admin_status(c, &sqe, NULL, 0, NULL, &st);
	if (!rc) {
		upcie_info("%s: shadow doorbells on", upcie_pci_name(c->dev));
		return 0;
	}
off:
	upcie_info("%s: shadow doorbells not used (%s)", upcie_pci_name(c->dev),
		   rc == -EIO ? upcie_nvme_status_str(st) : "no memory");
	upcie_dma_free(c->heap, c->dbbuf_shadow);
	upcie_dma_free(c->heap, c->dbbuf_eventidx);
	c->dbbuf_shadow = c->dbbuf_eventidx = NULL;
	return rc;
}

static int add_ns(struct upcie_nvme_ctrl *c, uint32_t nsid, const struct upcie_nvme_id_ns *id)
{
	struct upcie_nvme_ns *ns = &c->ns[c->nr_ns];
	uint32_t idx = upcie_nvme_id_ns_flbas_idx(id);
	uint32_t lbads;

	if (idx > id->nlbaf || idx >= 64)
		return upcie_err(-EIO, "nsid %u: FLBAS names LBA format %u beyond NLBAF %u", nsid,
				 idx, id->nlbaf);
	lbads = id->lbaf[idx].lbads;
	if (lbads < 9 || lbads > 24) {
		upcie_warn("nsid %u: LBA data size 2^%u is not usable; namespace skipped", nsid,
			   lbads);
		return 0;
	}
	c->ns_id[c->nr_ns] = *id;
	ns->nsid = nsid;
	ns->lba_shift = lbads;
	ns->lba_size = 1u << lbads;
	ns->ms = id->lbaf[idx].ms;
	ns->flbas_idx = (uint8_t)idx;
	ns->nsze = id->nsze;
	ns->ncap = id->ncap;
	/* Metadata (extended LBAs or a separate buffer) is not supported: with
	 * ms != 0 the device would move more bytes than the data buffer holds,
	 * or DMA metadata to MPTR. Refuse I/O on such a namespace instead. */
	ns->max_xfer_blocks = ns->ms ? 0 : c->max_xfer >> lbads;
	if (ns->ms)
		upcie_warn("nsid %u: formatted with %u metadata bytes per block; I/O through "
			   "this library is refused (format it without metadata)",
			   nsid, ns->ms);
	ns->id = &c->ns_id[c->nr_ns];
	c->nr_ns++;
	return 0;
}

/* Active namespace list (CNS 02h), then Identify Namespace for each. */
int upcie_nvme_scan_namespaces(struct upcie_nvme_ctrl *c)
{
	uint32_t *list = c->admin_buf;
	uint32_t nsids[1024], n = 0;
	uint16_t st = 0;
	int rc;

	rc = upcie_nvme_identify(c, UPCIE_NVME_CNS_ACTIVE_NS_LIST, 0, list, &st);
	if (rc == 0) {
		for (n = 0; n < 1024 && list[n]; n++)
			nsids[n] = list[n];
	} else if (rc == -EIO) {
		/* Before NVMe 1.1 there is no list: try 1..NN. */
		for (uint32_t i = 1; i <= c->id->nn && n < 1024; i++)
			nsids[n++] = i;
	} else {
		return rc;
	}
	c->ns = calloc(n ? n : 1, sizeof(*c->ns));
	c->ns_id = calloc(n ? n : 1, sizeof(*c->ns_id));
	if (!c->ns || !c->ns_id)
		return upcie_err(-ENOMEM, "out of memory for %u namespaces", n);
	for (uint32_t i = 0; i < n; i++) {
		const struct upcie_nvme_id_ns *id = c->admin_buf;

		rc = upcie_nvme_identify(c, UPCIE_NVME_CNS_NS, nsids[i], c->admin_buf, &st);
		if (rc == -EIO)
			continue; /* inactive */
		if (rc)
			return rc;
		if (!id->nsze)
			continue;
		rc = add_ns(c, nsids[i], id);
		if (rc)
			return rc;
	}
	return 0;
}
