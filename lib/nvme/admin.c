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

#include "core/log.h"
#include "nvme/nvme.h"

static const char *state_says(const struct upcie_nvme_ctrl *c)
{
	switch (c->state) {
	case UPCIE_NVME_GONE:
		return "the device is gone";
	case UPCIE_NVME_DEAD:
		return "a reset failed; the controller is disabled";
	case UPCIE_NVME_RESETTING:
		return "a reset is in progress";
	default:
		return "the controller failed (CFS or a lost admin completion) and needs a reset "
		       "(upcie_nvme_ctrl_reset)";
	}
}

static int state_errno(const struct upcie_nvme_ctrl *c)
{
	return c->state == UPCIE_NVME_GONE ? -ENODEV : -ENOTRECOVERABLE;
}

/*
 * The admin command got no completion in time, or the controller reported
 * CFS while it waited. The device may still run it and write its buffer,
 * so it is not reported finished: with auto reset the controller is reset
 * (disabled first, so the command ends with it); otherwise the controller
 * is marked failed and the request abandoned until a reset or close.
 */
static int admin_failed(struct upcie_nvme_ctrl *c, const struct upcie_nvme_sqe *sqe, uint16_t cid,
			int err, uint32_t timeout_ms)
{
	char msg[512];

	if (err == -ETIMEDOUT)
		upcie_err(err, "%s: admin command %#x got no completion within %u ms; %s",
			  upcie_pci_name(c->dev), sqe->opc, timeout_ms,
			  c->opts.no_auto_reset
			      ? "the controller needs a reset (upcie_nvme_ctrl_reset)"
			      : "the controller was reset");
	else
		upcie_err(err, "%s: Controller Fatal Status during admin command %#x; %s",
			  upcie_pci_name(c->dev), sqe->opc,
			  c->opts.no_auto_reset
			      ? "the controller needs a reset (upcie_nvme_ctrl_reset)"
			      : "the controller was reset");
	upcie_errmsg_save(msg, sizeof(msg));
	upcie_nvme_queue_abandon(c->admin, cid);
	/* The controller layer decides: mark it failed, or reset it. */
	c->admin_lost(c,
		      err == -ETIMEDOUT ? "an admin command timed out" : "Controller Fatal Status");
	upcie_errmsg_restore(msg);
	return err;
}

int upcie_nvme_admin_locked(struct upcie_nvme_ctrl *c, struct upcie_nvme_sqe *sqe, void *buf,
			    size_t len, struct upcie_nvme_cqe *cqe, uint32_t timeout_ms)
{
	struct upcie_nvme_waiter w = {0};
	uint16_t cid;
	int rc;

	if (!timeout_ms)
		timeout_ms = c->opts.admin_timeout_ms;
	if (!upcie_nvme_state_admin_ok(c))
		return upcie_err(c->state == UPCIE_NVME_RESETTING ? -EAGAIN : state_errno(c),
				 "%s: admin command %#x refused: %s", upcie_pci_name(c->dev),
				 sqe->opc, state_says(c));
	rc = upcie_nvme_queue_submit(c->admin, sqe, buf, len, upcie_nvme_waiter_cb, &w,
				     UPCIE_NVME_SUBMIT_RING, &cid);
	if (rc == -EAGAIN)
		return upcie_err(-EAGAIN, "%s: admin queue full", upcie_pci_name(c->dev));
	if (rc)
		return upcie_err(rc,
				 "admin command %#x: buffer of %zu bytes is not usable (outside "
				 "the DMA heap, misaligned or above %u bytes)",
				 sqe->opc, len, c->admin->max_xfer);

	rc = upcie_nvme_queue_wait(c->admin, &w.done, upcie_now_ms() + timeout_ms, c->dev);
	if (rc == -ETIMEDOUT || (rc == -ENOTRECOVERABLE && c->state != UPCIE_NVME_DEAD))
		return admin_failed(c, sqe, cid, rc, timeout_ms);
	if (rc) {
		/* Gone or failed: the request ends when the device is fenced. */
		upcie_nvme_queue_abandon(c->admin, cid);
		return upcie_err(rc, "%s: admin command %#x: %s", upcie_pci_name(c->dev), sqe->opc,
				 state_says(c));
	}
	if (cqe)
		*cqe = w.cqe;
	if (upcie_nvme_cqe_sct(&w.cqe) == UPCIE_NVME_SCT_PATH)
		return upcie_err(c->state == UPCIE_NVME_GONE ? -ENODEV : -ECANCELED,
				 "%s: admin command %#x ended by the host: %s",
				 upcie_pci_name(c->dev), sqe->opc,
				 upcie_nvme_status_str(upcie_nvme_cqe_status(&w.cqe)));
	if (upcie_nvme_cqe_status(&w.cqe))
		return upcie_err(-EIO, "%s: admin command %#x failed: %s%s", upcie_pci_name(c->dev),
				 sqe->opc, upcie_nvme_status_str(upcie_nvme_cqe_status(&w.cqe)),
				 upcie_nvme_cqe_dnr(&w.cqe) ? " (do not retry)" : "");
	return 0;
}

int upcie_nvme_admin(struct upcie_nvme_ctrl *c, struct upcie_nvme_sqe *sqe, void *buf, size_t len,
		     struct upcie_nvme_cqe *cqe, uint32_t timeout_ms)
{
	int rc;

	if (!c || !sqe)
		return upcie_err(-EINVAL, "upcie_nvme_admin needs a controller and a command");
	if (sqe->opc == UPCIE_NVME_ADM_ASYNC_EVENT)
		return upcie_err(-EINVAL,
				 "Asynchronous Event Requests are kept armed by the library; "
				 "use upcie_nvme_ctrl_set_event_cb() to receive events");
	pthread_mutex_lock(&c->admin_lock);
	rc = upcie_nvme_admin_locked(c, sqe, buf, len, cqe, timeout_ms);
	upcie_nvme_admin_events(c);
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

int upcie_nvme_admin_submit(struct upcie_nvme_ctrl *c, const struct upcie_nvme_sqe *sqe, void *buf,
			    size_t len, upcie_nvme_cb cb, void *arg)
{
	struct upcie_nvme_sqe copy;
	int rc;

	if (!c || !sqe)
		return upcie_err(-EINVAL,
				 "upcie_nvme_admin_submit needs a controller and a command");
	if (sqe->opc == UPCIE_NVME_ADM_ASYNC_EVENT)
		return upcie_err(-EINVAL, "Asynchronous Event Requests are kept armed by the "
					  "library; use upcie_nvme_ctrl_set_event_cb()");
	copy = *sqe;
	pthread_mutex_lock(&c->admin_lock);
	if (c->state != UPCIE_NVME_LIVE)
		rc = upcie_err(state_errno(c), "%s: admin command %#x refused: %s",
			       upcie_pci_name(c->dev), sqe->opc, state_says(c));
	else
		rc = upcie_nvme_queue_submit(c->admin, &copy, buf, len, cb, arg,
					     UPCIE_NVME_SUBMIT_RING, NULL);
	pthread_mutex_unlock(&c->admin_lock);
	return rc;
}

int upcie_nvme_admin_poll(struct upcie_nvme_ctrl *c)
{
	int n;

	if (!c)
		return upcie_err(-EINVAL, "upcie_nvme_admin_poll needs a controller");
	pthread_mutex_lock(&c->admin_lock);
	n = upcie_nvme_queue_poll(c->admin, 0);
	if (n >= 0)
		upcie_nvme_admin_events(c);
	pthread_mutex_unlock(&c->admin_lock);
	return n;
}

/* ---- Asynchronous Event Requests (Base spec 5.2) ---- */

static void aer_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_aer_slot *slot = arg;
	struct upcie_nvme_ctrl *c = slot->ctrl;
	struct upcie_nvme_event ev = {
	    .type = (uint8_t)(cqe->dw0 & 7),
	    .info = (uint8_t)(cqe->dw0 >> 8),
	    .lid = (uint8_t)(cqe->dw0 >> 16),
	    .dw0 = cqe->dw0,
	};

	slot->armed = false;
	if (upcie_nvme_cqe_status(cqe))
		return; /* aborted by a reset or close, or refused: re-armed later */
	/* Notice, Namespace Attribute Changed: read the list again. Both that
	 * and the embedder's callback come later, out of this callback (it
	 * may run inside another admin wait), the re-scan first. */
	if (ev.type == 2 && ev.info == 0)
		c->ns_changed = true;
	if (c->nr_ev_pending < UPCIE_NVME_AER_MAX)
		c->ev_pending[c->nr_ev_pending++] = ev;
}

bool upcie_nvme_admin_is_event(const struct upcie_nvme_req *req)
{
	return req->cb == aer_cb;
}

/* Keep the event requests outstanding; the admin lock is held (or open). */
void upcie_nvme_aer_arm(struct upcie_nvme_ctrl *c)
{
	uint32_t want = c->id ? (uint32_t)c->id->aerl + 1 : 1;

	if (want > UPCIE_NVME_AER_MAX)
		want = UPCIE_NVME_AER_MAX;
	for (uint32_t i = 0; i < want; i++) {
		struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_ASYNC_EVENT};

		if (c->aer[i].armed)
			continue;
		c->aer[i].ctrl = c;
		if (upcie_nvme_queue_submit(c->admin, &sqe, NULL, 0, aer_cb, &c->aer[i],
					    UPCIE_NVME_SUBMIT_RING, NULL))
			break;
		c->aer[i].armed = true;
	}
}

/* After admin completions were reaped: re-arm, re-read namespaces. The
 * admin lock is held (it is recursive: the re-scan's commands take it too). */
void upcie_nvme_admin_events(struct upcie_nvme_ctrl *c)
{
	if (c->state != UPCIE_NVME_LIVE || c->in_events || !c->up)
		return; /* not during bring-up: Identify is not known yet */
	c->in_events = true;
	if (c->ns_changed) {
		c->ns_changed = false;
		/* The Changed Namespace List log clears the event (5.16.1.5). */
		if (c->admin_buf)
			upcie_nvme_get_log_page(c, 0x04, UPCIE_NVME_NSID_ALL, c->admin_buf, 4096,
						NULL);
		if (upcie_nvme_scan_namespaces(c))
			upcie_warn("%s: namespace list not re-read: %s", upcie_pci_name(c->dev),
				   upcie_errmsg());
	}
	/* The list is current: now the embedder hears of the events. */
	for (uint32_t i = 0; i < c->nr_ev_pending; i++) {
		struct upcie_nvme_event ev = c->ev_pending[i];

		if (c->event_cb)
			c->event_cb(c->event_arg, &ev);
	}
	c->nr_ev_pending = 0;
	upcie_nvme_aer_arm(c);
	c->in_events = false;
}

void upcie_nvme_ctrl_set_event_cb(struct upcie_nvme_ctrl *c, upcie_nvme_event_cb cb, void *arg)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->admin_lock);
	c->event_cb = cb;
	c->event_arg = arg;
	pthread_mutex_unlock(&c->admin_lock);
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
 * one page of EventIdx values. Failure just leaves doorbells MMIO-only.
 * The pages are allocated once and kept until close, even when a later
 * configuration fails: queues not yet re-created after a reset still point
 * into them. A reset gives the same pages to the device once more. */
int upcie_nvme_setup_dbbuf(struct upcie_nvme_ctrl *c)
{
	struct upcie_nvme_sqe sqe = {.opc = UPCIE_NVME_ADM_DBBUF_CONFIG};
	uint16_t st = 0;
	int rc;

	c->dbbuf_on = false;
	/* Zeroed once, when allocated: after that each queue zeroes its own
	 * slots when it is created (its owner may be writing them now). */
	if (!c->dbbuf_shadow &&
	    (c->dbbuf_shadow = upcie_dma_alloc(c->heap, c->page_size, c->page_size)))
		memset(c->dbbuf_shadow, 0, c->page_size);
	if (!c->dbbuf_eventidx &&
	    (c->dbbuf_eventidx = upcie_dma_alloc(c->heap, c->page_size, c->page_size)))
		memset(c->dbbuf_eventidx, 0, c->page_size);
	if (!c->dbbuf_shadow || !c->dbbuf_eventidx) {
		rc = -ENOMEM;
		goto off;
	}
	sqe.prp1 = upcie_dma_bus(c->heap, c->dbbuf_shadow);
	sqe.prp2 = upcie_dma_bus(c->heap, c->dbbuf_eventidx);
	rc = admin_status(c, &sqe, NULL, 0, NULL, &st);
	if (!rc) {
		c->dbbuf_on = true;
		upcie_info("%s: shadow doorbells on", upcie_pci_name(c->dev));
		return 0;
	}
off:
	upcie_info("%s: shadow doorbells not used (%s)", upcie_pci_name(c->dev),
		   rc == -EIO	   ? upcie_nvme_status_str(st)
		   : rc == -ENOMEM ? "no memory"
				   : upcie_errmsg());
	return rc;
}
