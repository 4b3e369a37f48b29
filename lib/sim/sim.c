/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller: configuration, life cycle, faults, counters
 * and the optional stepping thread. Registers and queues are in sim_ctrl.c,
 * commands in sim_admin.c and sim_nvm.c, PRPs in sim_prp.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/page.h"
#include "sim_priv.h"

#define SIM_BAR_MAX   (64u << 20)
#define SIM_NS_MAX    (1ull << 40) /* bytes of address space per namespace */
#define SIM_IDLE_SPIN 20000	   /* idle steps before the thread starts napping */
#define SIM_NAP_NS    5000

void upcie_sim_config_default(struct upcie_sim_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->mqes = 1023;
	cfg->dstrd = 0;
	cfg->to = 2;
	cfg->mdts = 5;
	cfg->cqr = true;
	cfg->dbbuf = true;
	cfg->max_ioqpairs = 16;
	cfg->nr_ns = 2;
	cfg->ns[0] = (struct upcie_sim_ns_config){.lba_size = 512, .nlbas = 131072};
	cfg->ns[1] = (struct upcie_sim_ns_config){.lba_size = 4096, .nlbas = 16384};
	cfg->threaded = false;
	cfg->sgl = true;
	snprintf(cfg->serial, sizeof(cfg->serial), "UPCIESIM0001");
	snprintf(cfg->model, sizeof(cfg->model), "upcie emulated NVMe controller");
}

static size_t bar_size(const struct upcie_sim_config *cfg)
{
	uint64_t end =
	    UPCIE_NVME_REG_DBS + 2ull * ((uint64_t)cfg->max_ioqpairs + 1) * (4ull << cfg->dstrd);
	uint64_t len = (end + 4095) & ~4095ull;

	return len < SIM_BAR_MIN ? SIM_BAR_MIN : (size_t)len;
}

static int check_md_config(const struct upcie_sim_ns_config *ns, uint32_t i)
{
	if (ns->ms > SIM_MS_MAX)
		return upcie_err(-EINVAL, "sim: ns[%u].ms %u is above %u metadata bytes per block",
				 i, ns->ms, SIM_MS_MAX);
	if (ns->pi > 3)
		return upcie_err(-EINVAL, "sim: ns[%u].pi %u is not a PI type (0 none, 1, 2, 3)", i,
				 ns->pi);
	if (ns->pi && ns->ms < 8)
		return upcie_err(-EINVAL,
				 "sim: ns[%u].pi %u needs at least 8 metadata bytes (ms is %u)", i,
				 ns->pi, ns->ms);
	if (ns->pi && (ns->md_flags & UPCIE_SIM_MD_GUARD64) && ns->ms < 16)
		return upcie_err(-EINVAL,
				 "sim: ns[%u].pi %u with the 64-bit guard needs at least 16 "
				 "metadata bytes (ms is %u)",
				 i, ns->pi, ns->ms);
	if (ns->md_flags & ~(UPCIE_SIM_MD_EXTENDED | UPCIE_SIM_MD_PI_FIRST | UPCIE_SIM_MD_GUARD64))
		return upcie_err(-EINVAL, "sim: ns[%u].md_flags %#x has unknown bits", i,
				 ns->md_flags);
	return 0;
}

static int check_config(const struct upcie_sim_config *cfg)
{
	int rc;

	if (!cfg)
		return upcie_err(-EINVAL,
				 "sim: no config; fill one with upcie_sim_config_default()");
	if (cfg->mqes < 1)
		return upcie_err(-EINVAL, "sim: mqes is 0's based and must be >= 1 (2 entries)");
	if (cfg->dstrd > 15)
		return upcie_err(-EINVAL, "sim: dstrd %u is above 15 (CAP.DSTRD is 4 bits)",
				 cfg->dstrd);
	if (cfg->to < 1)
		return upcie_err(-EINVAL, "sim: to (CAP.TO, 500 ms units) must be >= 1");
	if (cfg->mdts > 15)
		return upcie_err(-EINVAL, "sim: mdts %u is above 15 (128 MiB); use 0 for no limit",
				 cfg->mdts);
	if (cfg->max_ioqpairs < 1)
		return upcie_err(-EINVAL, "sim: max_ioqpairs must be >= 1");
	if (bar_size(cfg) > SIM_BAR_MAX)
		return upcie_err(-EINVAL,
				 "sim: max_ioqpairs %u with dstrd %u needs a BAR over 64 MiB; "
				 "lower one of them",
				 cfg->max_ioqpairs, cfg->dstrd);
	if (cfg->nr_ns < 1 || cfg->nr_ns > UPCIE_SIM_MAX_NS)
		return upcie_err(-EINVAL, "sim: nr_ns %u is outside 1..%d", cfg->nr_ns,
				 UPCIE_SIM_MAX_NS);
	for (uint32_t i = 0; i < cfg->nr_ns; i++) {
		uint32_t b = cfg->ns[i].lba_size;

		if (b < 512 || b > 65536 || (b & (b - 1)))
			return upcie_err(
			    -EINVAL, "sim: ns[%u].lba_size %u is not a power of two in 512..65536",
			    i, b);
		if (!cfg->ns[i].nlbas || cfg->ns[i].nlbas > SIM_NS_MAX / b)
			return upcie_err(-EINVAL, "sim: ns[%u].nlbas %llu is 0 or above 1 TiB", i,
					 (unsigned long long)cfg->ns[i].nlbas);
		rc = check_md_config(&cfg->ns[i], i);
		if (rc)
			return rc;
	}
	if (!memchr(cfg->serial, 0, sizeof(cfg->serial)))
		return upcie_err(-EINVAL, "sim: serial is not NUL-terminated (20 characters max)");
	if (!memchr(cfg->model, 0, sizeof(cfg->model)))
		return upcie_err(-EINVAL, "sim: model is not NUL-terminated (40 characters max)");
	return 0;
}

/* CAP (Base spec 3.1.3.1). */
static uint64_t make_cap(const struct upcie_sim_config *cfg)
{
	return (uint64_t)cfg->mqes | ((uint64_t)(cfg->cqr ? 1 : 0) << 16) |
	       ((uint64_t)cfg->to << 24) | ((uint64_t)cfg->dstrd << 32) |
	       ((uint64_t)UPCIE_NVME_CAP_CSS_NVM << 37) | (0ull << 48) |
	       ((uint64_t)SIM_MPSMAX << 52);
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* PCI config header, type 0: an NVMe class device with one 64-bit memory BAR. */
void upcie_sim_cfg_init(struct upcie_sim *sim)
{
	uint8_t *c = sim->cfgspace;
	uint32_t bar_mask = ~(uint32_t)(sim->bar_len - 1) & 0xfffffff0u;

	memset(c, 0, SIM_CFG_SIZE);
	memset(sim->cfg_wmask, 0, sizeof(sim->cfg_wmask));
	put16(c + 0x00, SIM_VID);
	put16(c + 0x02, SIM_DID);
	put16(c + 0x04, 0);		    /* COMMAND */
	put16(c + 0x06, 0x0010);	    /* STATUS: capabilities list */
	c[0x08] = 0x01;			    /* revision */
	c[0x09] = 0x02;			    /* prog-if: NVM Express */
	c[0x0a] = 0x08;			    /* subclass: non-volatile memory */
	c[0x0b] = 0x01;			    /* class: mass storage */
	c[0x0e] = 0x00;			    /* header type 0 */
	put32(c + 0x10, 0xfe000000u | 0x4); /* BAR0: 64-bit memory, non-prefetchable */
	put32(c + 0x14, 0);
	put16(c + 0x2c, SIM_VID);
	put16(c + 0x2e, SIM_DID);
	c[0x34] = 0x40; /* capabilities pointer */
	c[0x3d] = 0x01; /* INTA */
	/* PCI Express capability, endpoint, version 2. */
	c[0x40] = 0x10;
	c[0x41] = 0x00;
	put16(c + 0x42, 0x0002);

	/* COMMAND: memory space, bus master, INTx disable. Bus mastering is
	 * off at power-on, as on a real device: whoever drives the model turns
	 * it on (upcie_pci_bus_master(), as upcie_nvme_ctrl_open() does). */
	put16(sim->cfg_wmask + 0x04, 0x0406);
	/* BAR0 sizing: the size bits read back 0. */
	put32(sim->cfg_wmask + 0x10, bar_mask);
	put32(sim->cfg_wmask + 0x14, 0xffffffffu);
	sim->cfg_wmask[0x3c] = 0xff; /* interrupt line */
}

/* Zero-filled memory that commits only where it is written. */
static void *ns_map(size_t len, uint32_t nsid, const char *what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p != MAP_FAILED)
		return p;
	upcie_err(-errno, "sim: cannot reserve %zu bytes of %s for namespace %u: %s", len, what,
		  nsid, strerror(errno));
	return NULL;
}

/* The LBA formats (sim.h): 0, 8, 16 and 64 metadata bytes, and the
 * configured size when it is none of these; the configured one in use. */
static void ns_formats(struct sim_ns *ns, const struct upcie_sim_ns_config *c)
{
	static const uint16_t std[] = {0, 8, 16, 64};
	uint32_t fmt = SIM_LBAF_MAX;

	ns->nlbaf = 0;
	for (uint32_t k = 0; k < sizeof(std) / sizeof(std[0]); k++) {
		if (std[k] == c->ms)
			fmt = ns->nlbaf;
		ns->lbaf_ms[ns->nlbaf++] = std[k];
	}
	if (fmt == SIM_LBAF_MAX) {
		fmt = ns->nlbaf;
		ns->lbaf_ms[ns->nlbaf++] = c->ms;
	}
	for (uint32_t k = 0; k < ns->nlbaf; k++)
		ns->lbaf_guard64[k] = (c->md_flags & UPCIE_SIM_MD_GUARD64) && ns->lbaf_ms[k] >= 16;
	ns->md_stride = c->ms > 64 ? c->ms : 64;
	upcie_sim_ns_format(ns, fmt, c->md_flags & UPCIE_SIM_MD_EXTENDED, c->pi,
			    c->md_flags & UPCIE_SIM_MD_PI_FIRST);
}

static int ns_alloc(struct upcie_sim *sim)
{
	for (uint32_t i = 0; i < sim->nr_ns_created; i++) {
		struct sim_ns *ns = &sim->ns[i];

		ns->lba_size = sim->cfg.ns[i].lba_size;
		ns->lba_shift = (uint32_t)__builtin_ctz(ns->lba_size);
		ns->nlbas = sim->cfg.ns[i].nlbas;
		ns->len = (size_t)(ns->nlbas << ns->lba_shift);
		ns_formats(ns, &sim->cfg.ns[i]);
		ns->md_len = (size_t)ns->nlbas * ns->md_stride;
		ns->uncor_len = (size_t)(ns->nlbas + 7) / 8;
		ns->data = ns_map(ns->len, i + 1, "data");
		ns->md = ns->data ? ns_map(ns->md_len, i + 1, "metadata") : NULL;
		ns->uncor = ns->md ? ns_map(ns->uncor_len, i + 1, "block marks") : NULL;
		ns->written = ns->uncor ? ns_map(ns->uncor_len, i + 1, "block marks") : NULL;
		if (!ns->written)
			return -errno;
	}
	return 0;
}

static void *sim_thread(void *arg);

void upcie_sim_destroy(struct upcie_sim *sim)
{
	if (!sim)
		return;
	if (sim->thread_on) {
		__atomic_store_n(&sim->stop, 1, __ATOMIC_RELEASE);
		pthread_join(sim->thread, NULL);
	}
	for (uint32_t i = 0; i < UPCIE_SIM_MAX_NS; i++) {
		if (sim->ns[i].data)
			munmap(sim->ns[i].data, sim->ns[i].len);
		if (sim->ns[i].md)
			munmap(sim->ns[i].md, sim->ns[i].md_len);
		if (sim->ns[i].uncor)
			munmap(sim->ns[i].uncor, sim->ns[i].uncor_len);
		if (sim->ns[i].written)
			munmap(sim->ns[i].written, sim->ns[i].uncor_len);
	}
	free(sim->bounce);
	if (sim->bar)
		munmap(sim->bar, sim->bar_len);
	free(sim->sqs);
	free(sim->cqs);
	free(sim->live_sqs);
	free(sim->live_cqs);
	free(sim->cq_hist);
	free(sim->vecs);
	free(sim->ranges);
	pthread_mutex_destroy(&sim->lock);
	free(sim);
}

struct upcie_sim *upcie_sim_create(const struct upcie_sim_config *cfg)
{
	struct upcie_sim *sim;
	int rc;

	rc = check_config(cfg);
	if (rc) {
		errno = -rc;
		return NULL;
	}
	sim = upcie_line_calloc(1, sizeof(*sim));
	if (!sim)
		return upcie_err_null(-ENOMEM, "sim: out of memory");
	sim->cfg = *cfg;
	sim->nr_ns_created = cfg->nr_ns;
	pthread_mutex_init(&sim->lock, NULL);
	sim->nr_qids = (uint32_t)cfg->max_ioqpairs + 1;
	sim->sqs = upcie_line_calloc(sim->nr_qids, sizeof(*sim->sqs));
	sim->cqs = upcie_line_calloc(sim->nr_qids, sizeof(*sim->cqs));
	sim->live_sqs = upcie_line_calloc(sim->nr_qids, sizeof(*sim->live_sqs));
	sim->live_cqs = upcie_line_calloc(sim->nr_qids, sizeof(*sim->live_cqs));
	sim->cq_hist = calloc((size_t)sim->nr_qids * SIM_CQ_HIST, sizeof(*sim->cq_hist));
	/* MSI-X: a vector per queue id, as a device offering one per queue. */
	sim->nr_vec = sim->nr_qids;
	sim->vecs = upcie_line_calloc(sim->nr_vec, sizeof(*sim->vecs));
	sim->gone_fd = -1;
	if (!sim->sqs || !sim->cqs || !sim->live_sqs || !sim->live_cqs || !sim->cq_hist ||
	    !sim->vecs) {
		upcie_sim_destroy(sim);
		return upcie_err_null(-ENOMEM, "sim: out of memory for %u queue pairs",
				      cfg->max_ioqpairs);
	}
	sim->bar_len = bar_size(cfg);
	sim->bar =
	    mmap(NULL, sim->bar_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (sim->bar == MAP_FAILED) {
		sim->bar = NULL;
		rc = -errno;
		upcie_sim_destroy(sim);
		return upcie_err_null(rc, "sim: cannot map a %zu-byte BAR: %s", sim->bar_len,
				      strerror(-rc));
	}
	rc = ns_alloc(sim);
	if (rc) {
		upcie_sim_destroy(sim);
		errno = -rc;
		return NULL;
	}
	sim->db_stride = 4u << cfg->dstrd;
	sim->cap_cfg = make_cap(cfg);
	sim->cap = sim->cap_cfg;
	sim->vs = 0x00010400; /* 1.4.0 */
	sim->page_size = 4096;
	sim->mdts_bytes = cfg->mdts ? (uint64_t)4096 << cfg->mdts : 0;
	upcie_sim_cfg_init(sim);
	upcie_sim_regs_init(sim);
	upcie_sim_ctrl_reset(sim);

	if (cfg->threaded) {
		rc = pthread_create(&sim->thread, NULL, sim_thread, sim);
		if (rc) {
			upcie_sim_destroy(sim);
			return upcie_err_null(-rc, "sim: cannot start its thread: %s",
					      strerror(rc));
		}
		sim->thread_on = true;
	}
	return sim;
}

int upcie_sim_step(struct upcie_sim *sim)
{
	int n;

	if (!sim)
		return -EINVAL;
	sim_lock(sim);
	n = upcie_sim_step_locked(sim, 0, true);
	sim_unlock(sim);
	return n;
}

int upcie_sim_step_n(struct upcie_sim *sim, uint32_t max)
{
	int n;

	if (!sim)
		return upcie_err(-EINVAL, "sim: no model given to upcie_sim_step_n()");
	sim_lock(sim);
	n = upcie_sim_step_locked(sim, max, false);
	sim_unlock(sim);
	return n;
}

bool upcie_sim_bus_master(struct upcie_sim *sim)
{
	bool on;

	if (!sim)
		return false;
	sim_lock(sim);
	on = sim_bme(sim);
	sim_unlock(sim);
	return on;
}

void upcie_sim_set_dma_hook(struct upcie_sim *sim, upcie_sim_dma_hook hook, void *arg)
{
	if (!sim)
		return;
	sim_lock(sim);
	sim->dma_hook = hook;
	sim->dma_hook_arg = hook ? arg : NULL;
	sim_unlock(sim);
}

void upcie_sim_cap_update(struct upcie_sim *sim)
{
	sim->cap = sim->cap_cfg;
	if (sim_bad_id(sim, UPCIE_SIM_BAD_ID_MQES0))
		sim->cap &= ~(uint64_t)0xffff;
}

/* Step in a loop; spin while busy, nap a few microseconds once idle for long. */
static void *sim_thread(void *arg)
{
	struct upcie_sim *sim = arg;
	const struct timespec nap = {0, SIM_NAP_NS};
	unsigned idle = 0;

	while (!__atomic_load_n(&sim->stop, __ATOMIC_ACQUIRE)) {
		int n;

		/* Let callers waiting for the lock in first (see sim_lock()). */
		while (__atomic_load_n(&sim->waiters, __ATOMIC_ACQUIRE))
			sim_cpu_relax();
		pthread_mutex_lock(&sim->lock);
		n = upcie_sim_step_locked(sim, 0, true);
		pthread_mutex_unlock(&sim->lock);
		if (n > 0) {
			idle = 0;
		} else if (idle < SIM_IDLE_SPIN) {
			idle++;
			sim_cpu_relax();
		} else {
			nanosleep(&nap, NULL);
		}
	}
	return NULL;
}

/*
 * Faults, and what a driver observes:
 *   NONE        clears every fault below, and CSTS.CFS; a removed device
 *               comes back freshly reset (CC = 0, CSTS = 0, no queues).
 *   RDY_NEVER   CC.EN 0 -> 1 never sets CSTS.RDY (the enable stays pending:
 *               clearing the fault lets it finish); the driver's enable
 *               wait must time out after CAP.TO.
 *   CFS         CSTS.CFS reads 1 at once; no command is fetched until a
 *               controller reset (CC.EN 1 -> 0), which clears it.
 *   DROP_CQE    the next 'arg' commands (admin or I/O) run, and move the SQ
 *               head, but post no completion: the driver sees a timeout.
 *   STATUS_NTH  the arg-th command from now (1 = the next one, admin or I/O)
 *               is not run and completes with 'status' ((SCT << 8) | SC, DNR set).
 *   REMOVED     all of BAR0 and config space read all-ones, writes are lost,
 *               nothing is processed: the driver must see ~0 and give up.
 *   SHN_NEVER   CC.SHN leaves CSTS.SHST at 01b (in progress) forever.
 *   HOLD        the next 'arg' I/O commands are fetched but held: not run,
 *               no completion. Abort ends one (Command Abort Requested),
 *               Delete SQ ends them (Aborted due to SQ Deletion), a
 *               controller reset drops them unrun, and
 *               upcie_sim_release_held() runs them late (writing host
 *               memory, as a slow device would).
 *               A command held when bus mastering goes off stays held
 *               (release does nothing until it is back on).
 *   ABORT_LOST  Abort commands get no completion, until NONE. A lost Abort
 *               leaves nothing behind: its target stays held (or runs as
 *               usual), a reset drops both, and no completion for it ever
 *               appears, before or after the reset.
 * DROP_CQE and STATUS_NTH count every command but Asynchronous Event
 * Requests (those wait for an event, not for the model).
 *   DELETE_SQ_REFUSED  Delete I/O SQ fails with Invalid Queue Deletion.
 *   DUP_CQE     the next 'arg' I/O completions are posted twice (same
 *               content, the second one right after the first).
 *   STALE_CQE   at the next I/O completion, the entry that CQ posted 'arg'
 *               (1..16) entries earlier is posted again after it.
 *   FOREIGN_CQE the next 'arg' (0 counts as 1) I/O completions carry
 *               another SQ id (see sim_cqe.c); the real one never comes.
 *               An extra entry finding its CQ full is skipped (sim_cqe.c).
 *   ADMIN_OPC   the next admin command with opcode 'arg' (one command,
 *               one armed opcode at a time) is not run and fails with
 *               'status' (DNR set); with status 0 it runs but its
 *               completion is lost (a lost Asynchronous Event Request is
 *               dropped, not held).
 *   BAD_ID      'arg' is an enum upcie_sim_bad_id; several can be set one
 *               after the other. MDTS0, NN_HUGE, FLBAS and NSZE0 change
 *               what the next Identify returns (the model still enforces
 *               its configured MDTS and namespace sizes); MQES0 makes
 *               CAP.MQES read 0 from the next reset or enable on, so every
 *               Create I/O queue fails with Invalid Queue Size.
 *   ONCS_OFF    'arg': ONCS bits the next Identify Controller leaves out;
 *               their commands fail with Invalid Command Opcode from now on.
 */
int upcie_sim_fault(struct upcie_sim *sim, enum upcie_sim_fault fault, uint32_t arg,
		    uint16_t status)
{
	int rc = 0;

	if (!sim)
		return upcie_err(-EINVAL, "sim: no model given to upcie_sim_fault()");
	sim_lock(sim);
	switch (fault) {
	case UPCIE_SIM_FAULT_NONE:
		sim->f_rdy_never = false;
		sim->f_shn_never = false;
		sim->drop_left = 0;
		sim->nth_left = 0;
		sim->hold_left = 0;
		sim->f_abort_lost = false;
		sim->f_delete_sq_refused = false;
		sim->dup_left = 0;
		sim->stale_back = 0;
		sim->foreign_left = 0;
		sim->aopc_on = false;
		sim->bad_id = 0;
		sim->oncs_off = 0;
		sim->irq_lost_left = 0;
		upcie_sim_cap_update(sim);
		sim->csts &= ~UPCIE_NVME_CSTS_CFS;
		if (sim->removed) {
			/* Back on the bus, freshly reset. */
			sim->removed = false;
			upcie_sim_regs_init(sim);
			upcie_sim_ctrl_reset(sim);
		}
		upcie_sim_mmio_set(sim, UPCIE_NVME_REG_CAP, (uint32_t)sim->cap);
		upcie_sim_mmio_set(sim, UPCIE_NVME_REG_CSTS, sim->csts);
		break;
	case UPCIE_SIM_FAULT_RDY_NEVER:
		sim->f_rdy_never = true;
		break;
	case UPCIE_SIM_FAULT_CFS:
		sim->csts |= UPCIE_NVME_CSTS_CFS;
		if (!sim->removed)
			upcie_sim_mmio_set(sim, UPCIE_NVME_REG_CSTS, sim->csts);
		break;
	case UPCIE_SIM_FAULT_DROP_CQE:
		if (!arg)
			rc = upcie_err(-EINVAL, "sim: DROP_CQE needs arg >= 1 (commands to drop)");
		else
			sim->drop_left = arg;
		break;
	case UPCIE_SIM_FAULT_STATUS_NTH:
		if (!arg || !status)
			rc = upcie_err(-EINVAL, "sim: STATUS_NTH needs arg >= 1 (1 = the next "
						"command) and a non-zero status");
		else {
			sim->nth_left = arg;
			sim->nth_status = status & 0x7ff;
		}
		break;
	case UPCIE_SIM_FAULT_REMOVED:
		sim->removed = true;
		upcie_sim_fill_removed(sim);
		if (sim->gone_fd >= 0) {
			/* Sleepers wake, as with the kernel's device request. */
			uint64_t one = 1;

			if (write(sim->gone_fd, &one, sizeof(one)) != sizeof(one))
				upcie_info("sim: the removal could not be signalled");
		}
		break;
	case UPCIE_SIM_FAULT_SHN_NEVER:
		sim->f_shn_never = true;
		break;
	case UPCIE_SIM_FAULT_HOLD:
		if (!arg || arg > SIM_HELD_MAX)
			rc = upcie_err(-EINVAL, "sim: HOLD needs arg 1..%d (I/O commands to hold)",
				       SIM_HELD_MAX);
		else
			sim->hold_left = arg;
		break;
	case UPCIE_SIM_FAULT_ABORT_LOST:
		sim->f_abort_lost = true;
		break;
	case UPCIE_SIM_FAULT_DELETE_SQ_REFUSED:
		sim->f_delete_sq_refused = true;
		break;
	case UPCIE_SIM_FAULT_DUP_CQE:
		if (!arg)
			rc = upcie_err(-EINVAL,
				       "sim: DUP_CQE needs arg >= 1 (completions to repeat)");
		else
			sim->dup_left = arg;
		break;
	case UPCIE_SIM_FAULT_STALE_CQE:
		if (!arg || arg >= SIM_CQ_HIST)
			rc = upcie_err(-EINVAL,
				       "sim: STALE_CQE needs arg 1..%d (how many completions back)",
				       SIM_CQ_HIST - 1);
		else
			sim->stale_back = arg;
		break;
	case UPCIE_SIM_FAULT_FOREIGN_CQE:
		sim->foreign_left = arg ? arg : 1;
		break;
	case UPCIE_SIM_FAULT_ADMIN_OPC:
		if (arg > 0xff || (status & ~0x7ffu))
			rc = upcie_err(-EINVAL,
				       "sim: ADMIN_OPC needs an opcode (arg 0..255) and a status "
				       "(SCT << 8 | SC, 0 for a lost command), not %u and %#x",
				       arg, status);
		else {
			sim->aopc_on = true;
			sim->aopc = (uint8_t)arg;
			sim->aopc_status = status & 0x7ff;
		}
		break;
	case UPCIE_SIM_FAULT_BAD_ID:
		if (arg < UPCIE_SIM_BAD_ID_MDTS0 || arg > UPCIE_SIM_BAD_ID_MQES0)
			rc = upcie_err(-EINVAL,
				       "sim: BAD_ID needs an enum upcie_sim_bad_id, not %u", arg);
		else
			sim->bad_id |= 1u << arg;
		break;
	case UPCIE_SIM_FAULT_IRQ_LOST:
		sim->irq_lost_left = arg ? arg : 1;
		break;
	case UPCIE_SIM_FAULT_ONCS_OFF:
		if (arg > 0xffff)
			rc = upcie_err(-EINVAL,
				       "sim: ONCS_OFF needs ONCS bits (0..0xffff), not %#x", arg);
		else
			sim->oncs_off = (uint16_t)arg;
		break;
	case UPCIE_SIM_FAULT_IRQ_SPURIOUS:
		if (arg >= sim->nr_vec)
			rc = upcie_err(-EINVAL, "sim: IRQ_SPURIOUS needs a vector below %u, not %u",
				       sim->nr_vec, arg);
		else
			upcie_sim_irq_raise(sim, arg);
		break;
	default:
		rc = upcie_err(-EINVAL, "sim: unknown fault %d", (int)fault);
		break;
	}
	sim_unlock(sim);
	return rc;
}

void upcie_sim_stats(struct upcie_sim *sim, struct upcie_sim_stats *st)
{
	if (!sim || !st)
		return;
	sim_lock(sim);
	*st = sim->st;
	sim_unlock(sim);
}

void upcie_sim_stats_reset(struct upcie_sim *sim)
{
	if (!sim)
		return;
	sim_lock(sim);
	memset(&sim->st, 0, sizeof(sim->st));
	sim_unlock(sim);
}

void *upcie_sim_ns_data(struct upcie_sim *sim, uint32_t nsid, size_t *len)
{
	if (!sim || !nsid || nsid > sim->nr_ns_created)
		return NULL;
	if (len)
		*len = sim->ns[nsid - 1].len;
	return sim->ns[nsid - 1].data;
}

void *upcie_sim_ns_md(struct upcie_sim *sim, uint32_t nsid, uint32_t *stride)
{
	const struct sim_ns *ns;

	if (!sim || !nsid || nsid > sim->nr_ns_created)
		return NULL;
	ns = &sim->ns[nsid - 1];
	if (!ns->ms)
		return NULL;
	if (stride)
		*stride = ns->md_stride;
	return ns->md;
}
