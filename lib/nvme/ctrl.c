/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Controller bring-up and shutdown (NVMe Base spec 2.0, 3.5.1 "Memory-based
 * controller initialization" and 3.6 "Shutdown processing").
 *
 * Every wait is bounded by CAP.TO (500 ms units); CSTS.CFS or an all-ones
 * register read ends it early with a clear error.
 *
 * Bring-up is a list of named steps (upcie_nvme_ctrl_bringup), run at open
 * and again by a reset: configure the admin queue, enable, identify, ask
 * for I/O queues, shadow doorbells, event requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"
#include "pci/backend.h"

static uint32_t rd32(struct upcie_nvme_ctrl *c, uint32_t off)
{
	return upcie_mmio_read32(c->regs, off);
}

static void wr32(struct upcie_nvme_ctrl *c, uint32_t off, uint32_t v)
{
	upcie_mmio_write32(c->regs, off, v);
}

/* -ENODEV if registers read all-ones, -EIO on CSTS.CFS, else 0. */
int upcie_nvme_ctrl_check_csts(struct upcie_nvme_ctrl *c, const char *what)
{
	uint32_t csts = rd32(c, UPCIE_NVME_REG_CSTS);

	if (csts == UINT32_MAX)
		return upcie_err(-ENODEV,
				 "%s: registers read all-ones during %s; the device is gone",
				 upcie_pci_name(c->dev), what);
	if (upcie_nvme_csts_cfs(csts))
		return upcie_err(-ENOTRECOVERABLE,
				 "%s: Controller Fatal Status (CSTS.CFS) during %s; the controller "
				 "needs a reset (upcie_nvme_ctrl_reset)",
				 upcie_pci_name(c->dev), what);
	return 0;
}

/* Sleep-free bounded wait; the idle hook lets a polled backend progress. */
static void wait_pause(struct upcie_nvme_ctrl *c, unsigned iter)
{
	upcie_pci_idle(c->dev);
	if (iter > 1000) {
		struct timespec ts = {0, 100000}; /* 100 us: this is bring-up, not I/O */
		nanosleep(&ts, NULL);
	}
}

/* Wait for CSTS.RDY == rdy. check_cfs: a fatal status ends the wait. */
static int wait_ready(struct upcie_nvme_ctrl *c, unsigned rdy, bool check_cfs, const char *what)
{
	uint64_t deadline = upcie_now_ms() + c->timeout_ms;

	for (unsigned i = 0;; i++) {
		uint32_t csts = rd32(c, UPCIE_NVME_REG_CSTS);

		if (csts == UINT32_MAX)
			return upcie_err(-ENODEV,
					 "%s: registers read all-ones while %s; the device is gone",
					 upcie_pci_name(c->dev), what);
		if (check_cfs && upcie_nvme_csts_cfs(csts))
			return upcie_err(-ENOTRECOVERABLE,
					 "%s: Controller Fatal Status (CSTS.CFS) while %s; check "
					 "the controller (reset it with 'devbind restore')",
					 upcie_pci_name(c->dev), what);
		if (upcie_nvme_csts_rdy(csts) == rdy)
			return 0;
		if (upcie_now_ms() > deadline)
			return upcie_err(-ETIMEDOUT,
					 "%s: CSTS.RDY did not become %u within CAP.TO = %u ms "
					 "while %s",
					 upcie_pci_name(c->dev), rdy, c->timeout_ms, what);
		wait_pause(c, i);
	}
}

/* wait_enable: honour 3.5.1's wait for a pending enable (not when we just
 * watched our own enable fail). */
int upcie_nvme_ctrl_disable(struct upcie_nvme_ctrl *c, bool wait_enable)
{
	uint32_t cc = rd32(c, UPCIE_NVME_REG_CC);
	uint32_t csts = rd32(c, UPCIE_NVME_REG_CSTS);
	int rc;

	if (cc == UINT32_MAX || csts == UINT32_MAX)
		return upcie_err(-ENODEV, "%s: registers read all-ones; the device is gone",
				 upcie_pci_name(c->dev));
	/* 3.5.1: if CC.EN = 1 and CSTS.RDY = 0, wait for RDY before clearing EN.
	 * If it never comes, clear EN anyway: a controller left enabled would
	 * keep using queue memory that is about to be freed. */
	if (wait_enable && upcie_nvme_cc_en(cc) && !upcie_nvme_csts_rdy(csts) &&
	    !upcie_nvme_csts_cfs(csts)) {
		rc = wait_ready(c, 1, true, "waiting for a previous enable");
		if (rc == -ENODEV)
			return rc;
	}
	/* Clear SHN together with EN: a reset ends any shutdown state. */
	if (upcie_nvme_cc_en(cc))
		wr32(c, UPCIE_NVME_REG_CC, cc & ~(UPCIE_NVME_CC_EN | UPCIE_NVME_CC_SHN_MASK));
	c->enabled = false;
	return wait_ready(c, 0, false, "disabling (CC.EN = 0)");
}

static int choose_page_size(struct upcie_nvme_ctrl *c, uint32_t *mps)
{
	long host = sysconf(_SC_PAGESIZE);
	uint32_t min = upcie_nvme_cap_mpsmin(c->cap), max = upcie_nvme_cap_mpsmax(c->cap);
	uint32_t want = 0;

	while ((4096L << want) < host)
		want++;
	if (want < min)
		want = min;
	if (want > max)
		return upcie_err(-ENOTSUP,
				 "%s: the controller's largest page (%u bytes) is below the host's "
				 "page size (%ld bytes)",
				 upcie_pci_name(c->dev), 4096u << max, host);
	*mps = want;
	/* Set at open; a reset finds the same value (other threads read it). */
	if (c->page_size != 4096u << want)
		c->page_size = 4096u << want;
	return 0;
}

/* Step 1: the admin queue, its registers, and CC without EN (3.5.1 steps 2-4). */
static int configure_admin(struct upcie_nvme_ctrl *c, uint32_t *cc)
{
	uint32_t css_cap = upcie_nvme_cap_css(c->cap);
	uint32_t mps = 0, css;
	int rc;

	rc = choose_page_size(c, &mps);
	if (rc)
		return rc;
	if (css_cap & UPCIE_NVME_CAP_CSS_NVM)
		css = UPCIE_NVME_CC_CSS_NVM;
	else if (css_cap & UPCIE_NVME_CAP_CSS_NOIO)
		css = UPCIE_NVME_CC_CSS_ADMIN;
	else
		return upcie_err(-ENOTSUP,
				 "%s: the controller supports no command set this library "
				 "drives (CAP.CSS = %#x)",
				 upcie_pci_name(c->dev), css_cap);

	if (!c->admin) {
		/* PRP lists sized for the largest admin transfer. */
		c->admin = upcie_nvme_queue_alloc(c->heap, 0, c->admin_depth, c->admin_depth,
						  c->page_size, UPCIE_NVME_ADMIN_MAX_XFER, 0);
		if (!c->admin)
			return -errno;
		c->admin->ctrl = c;
		c->admin->slow = upcie_nvme_admin_slow;
		c->admin->health_ms = c->opts.health_ms;
		c->admin->sq_db = (volatile uint32_t *)((volatile char *)c->regs +
							upcie_nvme_sq_db_off(0, c->dstrd));
		c->admin->cq_db = (volatile uint32_t *)((volatile char *)c->regs +
							upcie_nvme_cq_db_off(0, c->dstrd));
	} else {
		upcie_nvme_queue_reset(c->admin);
	}
	upcie_nvme_state_admin_in_step(c);
	/* Until Identify tells MDTS, admin transfers are at most one page. */
	c->admin->max_xfer = 4096;
	wr32(c, UPCIE_NVME_REG_AQA, upcie_nvme_aqa(c->admin_depth, c->admin_depth));
	upcie_mmio_write64(c->regs, UPCIE_NVME_REG_ASQ, upcie_dma_bus(c->heap, c->admin->sq));
	upcie_mmio_write64(c->regs, UPCIE_NVME_REG_ACQ, upcie_dma_bus(c->heap, c->admin->cq));
	*cc = (css << UPCIE_NVME_CC_CSS_SHIFT) | (mps << UPCIE_NVME_CC_MPS_SHIFT) |
	      (6u << UPCIE_NVME_CC_IOSQES_SHIFT) | (4u << UPCIE_NVME_CC_IOCQES_SHIFT);
	return 0;
}

/* Step 2: CC.EN = 1 and wait for CSTS.RDY (3.5.1 steps 5-6). */
static int enable(struct upcie_nvme_ctrl *c, uint32_t cc)
{
	int rc;

	/* Queue registers are written before CC.EN; keep that order visible. */
	upcie_wmb();
	wr32(c, UPCIE_NVME_REG_CC, cc);
	wr32(c, UPCIE_NVME_REG_CC, cc | UPCIE_NVME_CC_EN);
	rc = wait_ready(c, 1, true, "enabling (CC.EN = 1)");
	if (rc)
		return rc;
	c->enabled = true;
	/* CAP is fixed, but a device may report it differently once enabled:
	 * queue sizes follow what it says now (MQES; the rest was sized at
	 * open and stays). */
	uint64_t cap = upcie_mmio_read64(c->regs, UPCIE_NVME_REG_CAP);
	if (cap != UINT64_MAX && upcie_nvme_cap_mqes(cap) != upcie_nvme_cap_mqes(c->cap)) {
		upcie_warn("%s: CAP.MQES changed from %u to %u", upcie_pci_name(c->dev),
			   upcie_nvme_cap_mqes(c->cap), upcie_nvme_cap_mqes(cap));
		c->cap = (c->cap & ~(uint64_t)0xffff) | (cap & 0xffff);
	}
	return 0;
}

/* Step 3: Identify Controller, and the transfer limits it sets (MDTS). */
static int identify_ctrl(struct upcie_nvme_ctrl *c)
{
	uint32_t mdts_bytes;
	int rc;

	if (!c->admin_buf)
		c->admin_buf = upcie_dma_alloc(c->heap, 4096, 4096);
	if (!c->id)
		c->id = malloc(sizeof(*c->id));
	if (!c->admin_buf || !c->id)
		return upcie_err(-ENOMEM,
				 "cannot allocate Identify buffers; use a larger DMA heap");
	rc = upcie_nvme_identify(c, UPCIE_NVME_CNS_CTRL, 0, c->admin_buf, NULL);
	if (rc)
		return rc;
	memcpy(c->id, c->admin_buf, sizeof(*c->id));

	/* MDTS is in units of CAP.MPSMIN pages; 0 means no limit. Per-CID PRP
	 * lists are sized from this, so very large values are capped. */
	if (!c->id->mdts)
		mdts_bytes = UPCIE_NVME_MAX_XFER_NOLIMIT;
	else if (c->id->mdts + 12 + upcie_nvme_cap_mpsmin(c->cap) > 23)
		mdts_bytes = UPCIE_NVME_MAX_XFER_CAP;
	else
		mdts_bytes = (4096u << upcie_nvme_cap_mpsmin(c->cap)) << c->id->mdts;
	/* Queue pairs keep PRP lists sized at open: a reset never grows them. */
	if (!c->max_xfer || mdts_bytes < c->max_xfer)
		c->max_xfer = mdts_bytes;
	c->admin->max_xfer =
	    c->max_xfer < UPCIE_NVME_ADMIN_MAX_XFER ? c->max_xfer : UPCIE_NVME_ADMIN_MAX_XFER;
	return 0;
}

/* Step 4: Number of Queues (5.27.1.5): ask, and keep what was granted. */
static int number_of_queues(struct upcie_nvme_ctrl *c, bool again)
{
	uint32_t want = c->opts.io_queues ? c->opts.io_queues : 64, res = 0;
	uint16_t st = 0, sq, cq;
	int rc;

	if (again) /* the same count as at open: queue ids must stay valid */
		want = c->io_sq_granted < c->io_cq_granted ? c->io_sq_granted : c->io_cq_granted;
	rc = upcie_nvme_set_features(c, UPCIE_NVME_FEAT_NUM_QUEUES, ((want - 1) << 16) | (want - 1),
				     &res, &st);
	if (rc)
		return upcie_err(rc, "%s: Set Features Number of Queues failed: %s",
				 upcie_pci_name(c->dev),
				 rc == -EIO ? upcie_nvme_status_str(st) : upcie_errmsg());
	sq = (uint16_t)((res & 0xffff) + 1);
	cq = (uint16_t)((res >> 16) + 1);
	if (again) {
		if (sq < c->io_sq_granted || cq < c->io_cq_granted)
			upcie_warn("%s: after the reset the controller grants %u/%u I/O queues "
				   "instead of %u/%u; queue pairs beyond fail",
				   upcie_pci_name(c->dev), sq, cq, c->io_sq_granted,
				   c->io_cq_granted);
		return 0;
	}
	c->io_sq_granted = sq;
	c->io_cq_granted = cq;
	return upcie_nvme_state_qids_init(c);
}

/*
 * Bring the controller from disabled to ready for I/O queues. again: a
 * reset: keep the admin queue memory, the granted queue count and the
 * shadow doorbell pages. The namespaces are read again either way: an
 * event that reported a change may have been lost with the reset (the
 * admin queue starts empty), and a handle to a namespace that changed must
 * not reach the device (see fence_stale in ns.c). A re-scan that fails
 * while the controller answers keeps the old list (and is tried again).
 */
int upcie_nvme_ctrl_bringup(struct upcie_nvme_ctrl *c, bool again)
{
	uint32_t cc = 0;
	int rc;

	c->up = false;
	rc = configure_admin(c, &cc);
	if (!rc)
		rc = enable(c, cc);
	if (!rc)
		rc = identify_ctrl(c);
	if (!rc)
		rc = number_of_queues(c, again);
	if (!rc)
		rc = upcie_nvme_irq_coalescing(c);
	if (rc)
		return rc;
	c->dbbuf_on = false;
	if (!c->opts.no_dbbuf && (c->id->oacs & UPCIE_NVME_OACS_DBBUF))
		upcie_nvme_setup_dbbuf(c); /* optional: without it doorbells are MMIO */
	rc = upcie_nvme_scan_namespaces(c);
	if (rc && again && rc != -ENODEV && rc != -ETIMEDOUT) {
		/* The controller works (it answered): a reset does not fail
		 * over its namespace list; the old one stays, read again at
		 * the next event check. */
		upcie_warn("%s: namespaces not read again after the reset (%s); the list is "
			   "kept as it was",
			   upcie_pci_name(c->dev), upcie_errmsg());
		c->ns_changed = true;
		rc = 0;
	}
	if (rc)
		return rc;
	upcie_nvme_aer_arm(c);
	c->up = true;
	return 0;
}

/* Normal shutdown (3.6.1), then a disable so nothing DMAs into freed memory. */
static int shutdown_ctrl(struct upcie_nvme_ctrl *c, bool *quiet)
{
	/* RTD3 Entry Latency (us) bounds a shutdown when it is longer than CAP.TO. */
	uint64_t rtd3e_ms = c->id ? (c->id->rtd3e + 999) / 1000 : 0;
	uint64_t deadline =
	    upcie_now_ms() + (rtd3e_ms > c->timeout_ms ? rtd3e_ms : c->timeout_ms) + 10;
	uint32_t cc = rd32(c, UPCIE_NVME_REG_CC);
	int rc = 0;

	*quiet = true; /* a device that reads all-ones does no DMA either */
	if (cc == UINT32_MAX)
		return upcie_err(-ENODEV,
				 "%s: registers read all-ones at shutdown; the device is gone",
				 upcie_pci_name(c->dev));
	if (upcie_nvme_cc_en(cc) && c->state == UPCIE_NVME_LIVE) {
		wr32(c, UPCIE_NVME_REG_CC,
		     (cc & ~UPCIE_NVME_CC_SHN_MASK) | UPCIE_NVME_CC_SHN_NORMAL);
		for (unsigned i = 0;; i++) {
			uint32_t csts = rd32(c, UPCIE_NVME_REG_CSTS);

			if (csts == UINT32_MAX)
				return upcie_err(-ENODEV,
						 "%s: registers read all-ones during shutdown",
						 upcie_pci_name(c->dev));
			if (upcie_nvme_csts_shst(csts) == 2)
				break;
			if (upcie_nvme_csts_cfs(csts)) {
				rc = upcie_err(-ENOTRECOVERABLE,
					       "%s: Controller Fatal Status during shutdown",
					       upcie_pci_name(c->dev));
				break;
			}
			if (upcie_now_ms() > deadline) {
				rc =
				    upcie_err(-ETIMEDOUT,
					      "%s: shutdown (CSTS.SHST) did not complete within "
					      "%u ms (CAP.TO and RTD3E)",
					      upcie_pci_name(c->dev),
					      (unsigned)(rtd3e_ms > c->timeout_ms ? rtd3e_ms
										  : c->timeout_ms));
				break;
			}
			wait_pause(c, i);
		}
	}
	/* Keep the shutdown's message if it failed: the disable's is secondary. */
	char msg[512];
	upcie_errmsg_save(msg, sizeof(msg));
	int rc2 = upcie_nvme_ctrl_disable(c, true);
	if (rc)
		upcie_errmsg_restore(msg);
	*quiet = rc2 == 0 || rc2 == -ENODEV;
	return rc ? rc : rc2;
}

/*
 * Free everything. 'quiet' is true once the controller is disabled (or
 * gone): it no longer touches queue memory. Otherwise bus mastering is
 * turned off; if even that fails, commands still outstanding never
 * complete and the queues' DMA memory is left allocated in the heap (it
 * goes with the heap), never handed to another allocation.
 */
static void ctrl_free(struct upcie_nvme_ctrl *c, bool quiet)
{
	if (!quiet) {
		quiet = upcie_pci_bus_master(c->dev, false) == 0;
		upcie_warn("%s: the controller could not be disabled; %s", upcie_pci_name(c->dev),
			   quiet
			       ? "bus mastering is off"
			       : "bus mastering could not be turned off either: its queue memory "
				 "and the buffers of outstanding commands stay allocated until the "
				 "DMA heap is destroyed");
	}
	upcie_nvme_state_end_zombies(c, quiet);
	if (c->admin && quiet)
		upcie_nvme_state_q_end(c->admin, UPCIE_NVME_SC_HOST_ABORTED, 0);
	upcie_nvme_queue_free(c->admin, !quiet);
	if (quiet) {
		upcie_dma_free(c->heap, c->admin_buf);
		upcie_dma_free(c->heap, c->dbbuf_shadow);
		upcie_dma_free(c->heap, c->dbbuf_eventidx);
	}
	free(c->id);
	free(c->qid_used);
	upcie_nvme_ns_free(c);
	pthread_mutex_destroy(&c->admin_lock);
	upcie_nvme_irq_ctrl_free(c);
	upcie_pci_release_nvme(c->dev);
	upcie_dma_heap_ctrl_put(c->heap);
	free(c);
}

/* Map BAR0, read CAP and check the BAR can hold what CAP promises. */
static struct upcie_nvme_ctrl *ctrl_alloc(struct upcie_pci_dev *dev, struct upcie_dma_heap *heap,
					  const struct upcie_nvme_ctrl_opts *opts)
{
	struct upcie_nvme_ctrl *c;
	void *regs;
	size_t regs_len;
	int rc;

	rc = upcie_pci_bar_map(dev, 0, &regs, &regs_len);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	if (regs_len < 0x1000 + 8)
		return upcie_err_null(-ENODEV,
				      "%s: BAR0 is %zu bytes, too small for NVMe registers",
				      upcie_pci_name(dev), regs_len);
	c = calloc(1, sizeof(*c));
	if (!c)
		return upcie_err_null(-ENOMEM, "out of memory for a controller");
	/* Recursive: a reset, and the namespace re-scan after an event, run
	 * admin commands while the lock is held. */
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&c->admin_lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&c->irq_lock, NULL);
	c->admin_lost = upcie_nvme_admin_lost;
	c->dev = dev;
	c->heap = heap;
	c->regs = regs;
	c->regs_len = regs_len;
	if (opts)
		c->opts = *opts;
	if (!c->opts.admin_timeout_ms)
		c->opts.admin_timeout_ms = 5000;
	if (!c->opts.io_timeout_ms)
		c->opts.io_timeout_ms = 30000;
	if (!c->opts.health_ms)
		c->opts.health_ms = 100;
	c->cap = upcie_mmio_read64(regs, UPCIE_NVME_REG_CAP);
	c->vs = rd32(c, UPCIE_NVME_REG_VS);
	c->dstrd = upcie_nvme_cap_dstrd(c->cap);
	c->timeout_ms = (upcie_nvme_cap_to(c->cap) ? upcie_nvme_cap_to(c->cap) : 1) * 500;
	c->admin_depth = c->opts.admin_depth ? c->opts.admin_depth : 32;
	/* MQES bounds I/O queues; a controller reporting 0 (a one-entry queue,
	 * which the spec does not allow) leaves the admin queue to AQA alone. */
	if (upcie_nvme_cap_mqes(c->cap) && c->admin_depth > upcie_nvme_cap_mqes(c->cap) + 1)
		c->admin_depth = upcie_nvme_cap_mqes(c->cap) + 1;
	if (c->admin_depth > 4096)
		c->admin_depth = 4096; /* AQA fields are 12 bits */
	return c;
}

struct upcie_nvme_ctrl *upcie_nvme_ctrl_open(struct upcie_pci_dev *dev, struct upcie_dma_heap *heap,
					     const struct upcie_nvme_ctrl_opts *opts)
{
	struct upcie_nvme_ctrl *c;
	char msg[512];
	bool quiet = true;
	int rc;

	if (!dev || !heap)
		return upcie_err_null(-EINVAL,
				      "upcie_nvme_ctrl_open needs a device and a DMA heap");
	rc = upcie_dma_heap_ctrl_get(heap, dev);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	rc = upcie_pci_claim_nvme(dev);
	if (rc) {
		upcie_dma_heap_ctrl_put(heap);
		errno = -rc;
		return NULL;
	}
	c = ctrl_alloc(dev, heap, opts);
	if (!c) {
		rc = -errno;
		upcie_pci_release_nvme(dev);
		upcie_dma_heap_ctrl_put(heap);
		errno = -rc;
		return NULL;
	}
	if (c->cap == UINT64_MAX) {
		rc = upcie_err(-ENODEV, "%s: CAP reads all-ones; the device is gone or not enabled",
			       upcie_pci_name(dev));
		goto err;
	}
	if (upcie_nvme_cq_db_off(1, c->dstrd) + 4 > c->regs_len) {
		rc = upcie_err(-ENODEV, "%s: BAR0 (%zu bytes) has no room for I/O doorbells",
			       upcie_pci_name(dev), c->regs_len);
		goto err;
	}
	if (c->admin_depth < 2) {
		rc = upcie_err(-EINVAL, "admin queue depth must be at least 2");
		goto err;
	}

	/* Fence first: a controller left enabled by a process that died must
	 * not DMA to stale addresses. Bus mastering only once it is disabled. */
	rc = upcie_nvme_ctrl_disable(c, true);
	if (rc)
		goto err;
	rc = upcie_pci_bus_master(dev, true);
	if (rc)
		goto err;
	rc = upcie_nvme_ctrl_bringup(c, false);
	if (rc)
		goto err_disable;
	upcie_info("%s: NVMe %u.%u controller up, %u namespaces, %u I/O queue pairs granted",
		   upcie_pci_name(dev), upcie_nvme_vs_mjr(c->vs), upcie_nvme_vs_mnr(c->vs),
		   upcie_nvme_nstab(c)->nr, c->io_sq_granted);
	return c;

err_disable:
	/* Keep the first failure's message: it says what went wrong. */
	upcie_errmsg_save(msg, sizeof(msg));
	quiet = upcie_nvme_ctrl_disable(c, false) == 0 || !c->admin;
	upcie_errmsg_restore(msg);
err:
	ctrl_free(c, quiet);
	errno = -rc;
	return NULL;
}

/*
 * Close: delete the I/O queues while the controller can still do it, shut
 * it down and disable it, and only then end what is still outstanding
 * (commands of queues the device could not delete): with the controller
 * disabled, nothing can write into their buffers any more.
 */
int upcie_nvme_ctrl_close(struct upcie_nvme_ctrl *c)
{
	bool quiet = true;
	int rc = 0, rc2;

	if (!c)
		return 0;
	for (struct upcie_nvme_qpair *qp = c->qpairs; qp; qp = qp->next)
		if (qp->in_cb || qp->harvesting)
			return upcie_err(
			    -EBUSY,
			    "%s: the controller cannot be closed from a completion "
			    "callback of its queue %u; close it after upcie_nvme_poll() "
			    "returned",
			    upcie_pci_name(c->dev), qp->qid);
	if (c->admin && c->admin->in_cb)
		return upcie_err(-EBUSY,
				 "%s: the controller cannot be closed from an admin command's or "
				 "an event's callback",
				 upcie_pci_name(c->dev));
	while (c->qpairs) {
		rc2 = upcie_nvme_qpair_destroy(c->qpairs);
		if (!rc)
			rc = rc2;
	}
	rc2 = shutdown_ctrl(c, &quiet);
	if (!rc)
		rc = rc2;
	ctrl_free(c, quiet);
	return rc;
}

const struct upcie_nvme_id_ctrl *upcie_nvme_ctrl_id(const struct upcie_nvme_ctrl *c)
{
	return c->id;
}

void upcie_nvme_ctrl_info(const struct upcie_nvme_ctrl *c, struct upcie_nvme_ctrl_info *info)
{
	memset(info, 0, sizeof(*info));
	info->cap = c->cap;
	info->vs = c->vs;
	info->dstrd = c->dstrd;
	info->mqes = upcie_nvme_cap_mqes(c->cap) + 1;
	info->timeout_ms = c->timeout_ms;
	info->page_size = c->page_size;
	info->max_xfer_bytes = c->max_xfer;
	info->io_sq_granted = c->io_sq_granted;
	info->io_cq_granted = c->io_cq_granted;
	info->io_qpairs_max =
	    c->io_sq_granted < c->io_cq_granted ? c->io_sq_granted : c->io_cq_granted;
	info->nn = c->id->nn;
	info->nr_ns = upcie_nvme_nstab(c)->nr; /* there is one from open on */
	info->dbbuf = c->dbbuf_on;
	info->resets = c->resets;
	info->health_checks = c->health_checks;
	{
		struct upcie_pci_irq_info ii;

		if (!upcie_pci_irq_info(c->dev, &ii)) {
			info->irq_kind = ii.kind;
			info->irq_vectors = ii.nvec;
		}
	}
}

struct upcie_pci_dev *upcie_nvme_ctrl_dev(const struct upcie_nvme_ctrl *c)
{
	return c->dev;
}

struct upcie_dma_heap *upcie_nvme_ctrl_heap(const struct upcie_nvme_ctrl *c)
{
	return c->heap;
}
