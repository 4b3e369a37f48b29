/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-fio: an fio external I/O engine on libupcie
 * =================================================
 *
 *   fio --thread --ioengine=external:/path/libupcie-fio.so \
 *       --filename=0000.01.00.0 --nsid=1 --rw=randread --bs=4k --iodepth=32 ...
 *
 * The filename is a PCI address in a form fio does not split ('0000.01.00.0',
 * or '0000\:01\:00.0' with the colons escaped), or 'sim' for the emulated
 * controller built into the library. Every thread of the fio process uses
 * one controller per device (upcie_nvme_ctrl_get(): one bring-up, one DMA
 * heap) and one I/O queue pair of its own per file, created when fio sets
 * the job up and deleted when the job ends.
 *
 * I/O path: fio's buffers come from the controller's DMA heap (iomem_alloc),
 * so the device reads and writes them directly. ->queue() puts a command in
 * the SQ without ringing; ->commit() rings each SQ that got commands once;
 * ->getevents() polls the CQs until fio's minimum is met or its timeout
 * passes. Reads and writes above the controller's MDTS are split by the
 * library and complete once. Trim is Dataset Management (deallocate), sync
 * is Flush.
 *
 * Options (after --ioengine): nsid (default: the first active namespace),
 * dbbuf=0/1 (shadow doorbells, default 1), poll_batch (most completions
 * reaped per poll call, default 0: as many as fio can take), sim_stepped=0/1
 * (filename=sim only: the model has no thread of its own; the I/O threads
 * step it before they poll, so the model's work happens in the I/O thread,
 * where a profiler sees it apart from the driver's: for measurements).
 *
 * Limits: fio must run jobs as threads (--thread); all files of one job
 * must be on one controller (its buffers come from that controller's heap);
 * a job may use at most as many queue pairs as the controller granted, all
 * jobs together as well.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fio.h"
#include "optgroup.h"

#include <upcie/sim.h>
#include <upcie/upcie.h>

struct ufio_options {
	void *pad; /* fio wants off1 != 0 */
	unsigned int nsid;
	unsigned int dbbuf;
	unsigned int poll_batch;
	unsigned int sim_stepped;
};

static struct fio_option options[] = {
    {
	.name = "nsid",
	.lname = "NVMe namespace id",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, nsid),
	.def = "0",
	.help = "namespace to use (0: the first active one)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "dbbuf",
	.lname = "NVMe shadow doorbells",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, dbbuf),
	.def = "1",
	.help = "use shadow doorbells (Doorbell Buffer Config) when the controller offers them",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "poll_batch",
	.lname = "completions per poll",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, poll_batch),
	.def = "0",
	.help = "most completions reaped per poll call (0: as many as fio can take)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "sim_stepped",
	.lname = "stepped sim",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, sim_stepped),
	.def = "0",
	.help = "filename=sim: no model thread; the I/O threads step the model before each poll",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = NULL,
    },
};

/*
 * The stepped model (sim_stepped=1): one per process, made by the first
 * job that asks before the 'sim' controller exists, counted by every file
 * whose controller runs on it, destroyed after the last of them dropped
 * its controller (the controller's close still talks to the model).
 */
static pthread_mutex_t stepped_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upcie_sim *stepped_sim;
static unsigned stepped_refs;

#ifndef UPCIE_HAVE_SIM
/* A library without the sim backend has no model to step. */
#define upcie_sim_config_default(cfg) ((void)(cfg))
#define upcie_sim_create(cfg)	      ((void)(cfg), errno = ENOTSUP, (struct upcie_sim *)NULL)
#define upcie_sim_destroy(sim)	      ((void)(sim))
#define upcie_sim_step(sim)	      ((void)(sim), 0)
#endif

/* A reference on the stepped model, made on first use; NULL and errno. */
static struct upcie_sim *stepped_get(void)
{
	struct upcie_sim *sim;

	pthread_mutex_lock(&stepped_lock);
	if (!stepped_sim) {
		struct upcie_sim_config cfg;

		upcie_sim_config_default(&cfg);
		cfg.threaded = false;
		stepped_sim = upcie_sim_create(&cfg);
	}
	if (stepped_sim)
		stepped_refs++;
	sim = stepped_sim;
	pthread_mutex_unlock(&stepped_lock);
	return sim;
}

static void stepped_put(void)
{
	pthread_mutex_lock(&stepped_lock);
	if (stepped_refs && !--stepped_refs) {
		upcie_sim_destroy(stepped_sim);
		stepped_sim = NULL;
	}
	pthread_mutex_unlock(&stepped_lock);
}

/* A file: one namespace of a shared controller, one queue pair while open. */
struct ufile {
	char dev[64];
	struct upcie_nvme_ctrl *ctrl; /* a reference, dropped at cleanup */
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_qpair *qp;
	struct upcie_sim *sim; /* the stepped model its controller runs on, or NULL */
	unsigned queued;       /* commands placed since the last ring */
	struct ufile *next;
};

/* A thread. */
struct uthread {
	struct ufile *files;
	struct ufile **open; /* files with a queue pair, for commit and poll */
	unsigned nopen, cap_open;
	struct io_u **events;
	unsigned nevents, max_events;
	struct upcie_nvme_ctrl *mem_ctrl; /* whose heap holds the buffers (a reference) */
	void *buf;
};

/* An io_u. */
struct uiou {
	struct thread_data *td;
	struct io_u *io_u;
	struct upcie_nvme_split split;
	struct upcie_nvme_dsm_range *range; /* heap memory, for trim */
};

static struct uthread *uthread_of(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;

	if (!ut) {
		ut = calloc(1, sizeof(*ut));
		td->io_ops_data = ut;
	}
	return ut;
}

/*
 * fio splits filenames on ':'; accept 'dddd.bb.dd.f' and 'bb.dd.f' (the
 * first dots stand for colons), an address whose colons were escaped (fio
 * hands it over unescaped), and 'sim'.
 */
static int parse_name(const char *name, char *out, size_t len)
{
	struct upcie_pci_addr a;
	char buf[64];
	size_t dots = 0;

	if (!strcmp(name, "sim")) {
		snprintf(out, len, "sim");
		return 0;
	}
	if (strlen(name) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, name);
	for (char *p = buf; *p; p++)
		dots += *p == '.';
	if (!strchr(buf, ':') && (dots == 2 || dots == 3)) {
		for (char *p = buf; dots > 1; p++) {
			if (*p == '.') {
				*p = ':';
				dots--;
			}
		}
	}
	if (upcie_pci_addr_parse(buf, &a))
		return -EINVAL;
	return upcie_pci_addr_format(&a, out, len) < 0 ? -EINVAL : 0;
}

static int file_attach(struct thread_data *td, struct fio_file *f)
{
	struct ufio_options *o = td->eo;
	struct uthread *ut = uthread_of(td);
	struct upcie_nvme_get_opts go = {.size = sizeof(go)};
	struct upcie_pci_opts po = {.backend = UPCIE_PCI_BACKEND_SIM};
	struct upcie_sim *sim = NULL;
	struct ufile *uf;

	if (f->engine_data)
		return 0;
	if (!ut)
		return ENOMEM;
	uf = calloc(1, sizeof(*uf));
	if (!uf)
		return ENOMEM;
	if (parse_name(f->file_name, uf->dev, sizeof(uf->dev))) {
		log_err("upcie-fio: filename '%s' is neither a PCI address nor 'sim': write "
			"the address as 0000.01.00.0 (or 0000\\:01\\:00.0; fio splits names on "
			"':')\n",
			f->file_name);
		free(uf);
		return EINVAL;
	}
	go.ctrl.no_dbbuf = !o->dbbuf;
	if (o->sim_stepped) {
		if (strcmp(uf->dev, "sim")) {
			log_err("upcie-fio: sim_stepped=1 needs filename=sim, not '%s'\n",
				f->file_name);
			free(uf);
			return EINVAL;
		}
		sim = stepped_get();
		if (!sim) {
			int err = errno;
			log_err("upcie-fio: sim_stepped=1: %s\n",
				err == ENOTSUP
				    ? "this libupcie was built without the sim (-Dsim=false)"
				    : upcie_errmsg());
			free(uf);
			return err ? err : ENOMEM;
		}
		po.sim = sim;
		go.pci = &po;
	}
	uf->ctrl = upcie_nvme_ctrl_get(uf->dev, &go);
	if (!uf->ctrl) {
		int err = errno;
		log_err("upcie-fio: %s: %s\n", uf->dev, upcie_errmsg());
		if (sim)
			stepped_put();
		free(uf);
		return err ? err : EIO;
	}
	/* The first get made the controller: it may run on the stepped model
	 * though this job did not ask, or on its own thread though it did.
	 * Whoever uses a stepped controller steps it. */
	if (!strcmp(uf->dev, "sim")) {
		struct upcie_sim *on = upcie_pci_sim(upcie_nvme_ctrl_dev(uf->ctrl));

		if (!sim && on) {
			pthread_mutex_lock(&stepped_lock);
			if (on == stepped_sim) {
				stepped_refs++;
				sim = on;
			}
			pthread_mutex_unlock(&stepped_lock);
		} else if (sim && on != sim) {
			stepped_put();
			sim = NULL;
		}
	}
	uf->sim = sim;
	uf->next = ut->files;
	ut->files = uf;
	uf->ns = o->nsid ? upcie_nvme_ns_get(uf->ctrl, o->nsid) : upcie_nvme_ns_first(uf->ctrl);
	if (!uf->ns) {
		log_err("upcie-fio: %s: namespace %u is not active (nsid=0 takes the first "
			"active one)\n",
			uf->dev, o->nsid);
		return ENXIO;
	}
	if (!uf->ns->max_xfer_blocks) {
		log_err("upcie-fio: %s: namespace %u has metadata (%u bytes per block), which "
			"this engine does not handle; reformat it without\n",
			uf->dev, uf->ns->nsid, uf->ns->ms);
		return ENOTSUP;
	}
	f->engine_data = uf;
	f->filetype = FIO_TYPE_BLOCK;
	f->real_file_size = uf->ns->nsze << uf->ns->lba_shift;
	fio_file_set_size_known(f);
	return 0;
}

static int ufio_open_file(struct thread_data *td, struct fio_file *f);

static int ufio_setup(struct thread_data *td)
{
	struct fio_file *f;
	unsigned int i;

	if (!td->o.use_thread) {
		log_err("upcie-fio: jobs must run as threads of one process, which share the "
			"controller: add --thread (thread=1)\n");
		td_verror(td, EINVAL, "upcie-fio: thread=0");
		return 1;
	}
	/* Queue pairs are taken here, before any job runs (fio sets up every
	 * job first unless create_serialize=0): a job beyond the granted queue
	 * count fails now, whatever the timing of the others. */
	for_each_file(td, f, i)
	{
		if (ufio_open_file(td, f))
			return 1;
	}
	return 0;
}

static int ufio_init(struct thread_data *td)
{
	struct uthread *ut = uthread_of(td);

	if (!ut)
		return 1;
	ut->max_events = td->o.iodepth;
	ut->events = calloc(ut->max_events, sizeof(*ut->events));
	return ut->events ? 0 : 1;
}

/* The controller whose heap holds this job's memory: the first file's. */
static struct upcie_nvme_ctrl *mem_ctrl(struct thread_data *td)
{
	struct uthread *ut = uthread_of(td);
	struct ufile *uf;

	if (!ut)
		return NULL;
	if (ut->mem_ctrl)
		return ut->mem_ctrl;
	if (!td->files_index || file_attach(td, td->files[0]))
		return NULL;
	uf = td->files[0]->engine_data;
	ut->mem_ctrl = upcie_nvme_ctrl_get(uf->dev, NULL); /* the buffers' own reference */
	return ut->mem_ctrl;
}

static int ufio_iomem_alloc(struct thread_data *td, size_t size)
{
	struct upcie_nvme_ctrl *c = mem_ctrl(td);
	struct uthread *ut = td->io_ops_data;

	if (!c)
		return 1;
	ut->buf = upcie_dma_alloc_pages(upcie_nvme_ctrl_heap(c), size);
	if (!ut->buf) {
		log_err("upcie-fio: no DMA memory for %zu bytes of buffers: %s\n", size,
			upcie_errmsg());
		return 1;
	}
	td->orig_buffer = ut->buf;
	return 0;
}

static void ufio_iomem_free(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;

	if (ut && ut->buf && ut->mem_ctrl)
		upcie_dma_free(upcie_nvme_ctrl_heap(ut->mem_ctrl), ut->buf);
	if (ut)
		ut->buf = NULL;
}

static int ufio_io_u_init(struct thread_data *td, struct io_u *io_u)
{
	struct upcie_nvme_ctrl *c = mem_ctrl(td);
	struct uiou *u = calloc(1, sizeof(*u));

	if (!c || !u) {
		free(u);
		return 1;
	}
	u->td = td;
	u->io_u = io_u;
	/* Trims come from rw=trim and also from verify's trim_percentage. */
	u->range = upcie_dma_alloc(upcie_nvme_ctrl_heap(c), sizeof(*u->range), 16);
	if (!u->range) {
		log_err("upcie-fio: no DMA memory for a trim range: %s\n", upcie_errmsg());
		free(u);
		return 1;
	}
	io_u->engine_data = u;
	return 0;
}

static void ufio_io_u_free(struct thread_data *td, struct io_u *io_u)
{
	struct uthread *ut = td->io_ops_data;
	struct uiou *u = io_u->engine_data;

	if (!u)
		return;
	if (u->range && ut && ut->mem_ctrl)
		upcie_dma_free(upcie_nvme_ctrl_heap(ut->mem_ctrl), u->range);
	free(u);
	io_u->engine_data = NULL;
}

static int ufio_open_file(struct thread_data *td, struct fio_file *f)
{
	struct uthread *ut = uthread_of(td);
	struct upcie_nvme_qpair_opts qo = {0};
	struct upcie_nvme_ctrl_info info;
	struct ufile *uf;
	unsigned long long max_bs = td_max_bs(td);
	uint32_t parts;
	int err = file_attach(td, f);

	if (err) {
		td_verror(td, err, "upcie-fio open");
		return 1;
	}
	uf = f->engine_data;
	if (uf->qp)
		return 0;
	if (mem_ctrl(td) != uf->ctrl) {
		log_err("upcie-fio: %s and %s are different controllers: one job's files must "
			"share one (its buffers come from that controller's DMA heap)\n",
			td->files[0]->file_name, f->file_name);
		td_verror(td, EINVAL, "upcie-fio open");
		return 1;
	}
	if (td_min_bs(td) % uf->ns->lba_size || max_bs % uf->ns->lba_size ||
	    td->o.ba[DDIR_READ] % uf->ns->lba_size || td->o.ba[DDIR_WRITE] % uf->ns->lba_size) {
		log_err("upcie-fio: %s: block sizes and alignment must be multiples of the "
			"namespace's %u-byte blocks\n",
			f->file_name, uf->ns->lba_size);
		td_verror(td, EINVAL, "upcie-fio open");
		return 1;
	}
	/* Room for every io_u at its largest split, plus the slot a full queue
	 * keeps empty. */
	parts = upcie_nvme_split_parts(uf->ns, (uint32_t)(max_bs >> uf->ns->lba_shift));
	qo.depth = td->o.iodepth * (parts ? parts : 1) + 1;
	upcie_nvme_ctrl_info(uf->ctrl, &info);
	if (qo.depth > info.mqes) {
		log_err("upcie-fio: %s: iodepth=%u with bs=%llu needs %u queue entries; the "
			"controller's queues hold %u: lower iodepth or bs\n",
			f->file_name, td->o.iodepth, max_bs, qo.depth, info.mqes);
		td_verror(td, EINVAL, "upcie-fio open");
		return 1;
	}
	if (ut->nopen == ut->cap_open) {
		unsigned n = ut->cap_open ? ut->cap_open * 2 : 4;
		struct ufile **o = realloc(ut->open, n * sizeof(*o));
		if (!o) {
			td_verror(td, ENOMEM, "upcie-fio open");
			return 1;
		}
		ut->open = o;
		ut->cap_open = n;
	}
	uf->qp = upcie_nvme_qpair_create(uf->ctrl, &qo);
	if (!uf->qp) {
		err = errno;
		if (err == ENOSPC)
			log_err(
			    "upcie-fio: %s: every I/O queue pair the controller granted (%u) is "
			    "in use: each job (numjobs counts) takes one per file; run fewer\n",
			    f->file_name, info.io_qpairs_max);
		else
			log_err("upcie-fio: %s: %s\n", f->file_name, upcie_errmsg());
		td_verror(td, err ? err : EIO, "upcie-fio open");
		return 1;
	}
	ut->open[ut->nopen++] = uf;
	return 0;
}

/* The queue pair stays until cleanup: fio closes and reopens files on
 * every pass of a time_based or loops= job, and a queue pair is two admin
 * commands each way. fio closes a file only with no I/O in flight. */
static int ufio_close_file(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

static void io_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct uiou *u = arg;
	struct uthread *ut = u->td->io_ops_data;
	uint16_t st = upcie_nvme_cqe_status(cqe);

	if (st) {
		u->io_u->error = EIO;
		log_err("upcie-fio: %s at offset %llu failed: %s\n", io_ddir_name(u->io_u->ddir),
			u->io_u->offset, upcie_nvme_status_str(st));
	} else {
		u->io_u->error = 0;
	}
	/* Bounded by the poll's max; a queue pair deleted with commands in
	 * flight (fio closes files only when idle) has none to report. */
	if (ut->nevents < ut->max_events)
		ut->events[ut->nevents++] = u->io_u;
}

static enum fio_q_status ufio_queue(struct thread_data *td, struct io_u *io_u)
{
	struct ufile *uf = io_u->file->engine_data;
	struct uiou *u = io_u->engine_data;
	const struct upcie_nvme_ns *ns = uf->ns;
	uint64_t slba = io_u->offset >> ns->lba_shift;
	uint32_t nlb = (uint32_t)(io_u->xfer_buflen >> ns->lba_shift);
	int rc;

	fio_ro_check(td, io_u);
	switch (io_u->ddir) {
	case DDIR_READ:
	case DDIR_WRITE:
		if (nlb <= ns->max_xfer_blocks) {
			struct upcie_nvme_sqe sqe = {
			    .opc = io_u->ddir == DDIR_READ ? UPCIE_NVME_CMD_READ
							   : UPCIE_NVME_CMD_WRITE,
			    .nsid = ns->nsid,
			    .cdw10 = (uint32_t)slba,
			    .cdw11 = (uint32_t)(slba >> 32),
			    .cdw12 = nlb - 1,
			};
			rc = upcie_nvme_submit_raw(uf->qp, &sqe, io_u->xfer_buf, io_u->xfer_buflen,
						   io_done, u, 0);
		} else if (io_u->ddir == DDIR_READ) {
			rc = upcie_nvme_read_split(uf->qp, ns, slba, nlb, io_u->xfer_buf, &u->split,
						   io_done, u, 0);
		} else {
			rc = upcie_nvme_write_split(uf->qp, ns, slba, nlb, io_u->xfer_buf,
						    &u->split, io_done, u, 0);
		}
		break;
	case DDIR_TRIM:
		u->range->cattr = 0;
		u->range->nlb = nlb;
		u->range->slba = slba;
		rc = upcie_nvme_deallocate(uf->qp, ns->nsid, u->range, 1, io_done, u, 0);
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
		rc = upcie_nvme_flush(uf->qp, ns->nsid, io_done, u, 0);
		break;
	default:
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	if (rc == -EAGAIN)
		return FIO_Q_BUSY;
	if (rc) {
		log_err("upcie-fio: %s of %llu bytes at %llu refused: %s\n",
			io_ddir_name(io_u->ddir), io_u->xfer_buflen, io_u->offset, upcie_errmsg());
		io_u->error = -rc;
		return FIO_Q_COMPLETED;
	}
	uf->queued++;
	return FIO_Q_QUEUED;
}

static int ufio_commit(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;
	unsigned n = 0;

	for (unsigned i = 0; i < ut->nopen; i++) {
		struct ufile *uf = ut->open[i];

		if (!uf->queued)
			continue;
		upcie_nvme_ring(uf->qp);
		n += uf->queued;
		uf->queued = 0;
	}
	if (n)
		io_u_mark_submit(td, n);
	return 0;
}

static uint64_t ns_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (uint64_t)(b.tv_sec - a->tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec -
	       (uint64_t)a->tv_nsec;
}

static int ufio_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			  const struct timespec *t)
{
	struct uthread *ut = td->io_ops_data;
	struct ufio_options *o = td->eo;
	uint64_t limit = t ? (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec : 0;
	struct timespec start;

	if (max > ut->max_events)
		max = ut->max_events;
	ut->nevents = 0;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned spin = 0;; spin++) {
		for (unsigned i = 0; i < ut->nopen && ut->nevents < max; i++) {
			uint32_t room = max - ut->nevents;

			if (ut->open[i]->sim)
				upcie_sim_step(ut->open[i]->sim);

			if (o->poll_batch && o->poll_batch < room)
				room = o->poll_batch;
			int n = upcie_nvme_poll(ut->open[i]->qp, room);

			if (n < 0) {
				/* Gone or failed: its commands have ended or never will;
				 * without this a getevents with no timeout spins for ever. */
				log_err("upcie-fio: %s: %s\n", ut->open[i]->dev, upcie_errmsg());
				return n;
			}
		}
		if (ut->nevents >= min || ut->nevents == max)
			break;
		if (t && (spin & 63) == 63 && ns_since(&start) >= limit)
			break;
	}
	return (int)ut->nevents;
}

static struct io_u *ufio_event(struct thread_data *td, int event)
{
	struct uthread *ut = td->io_ops_data;

	return ut->events[event];
}

static void ufio_cleanup(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;

	unsigned stepped = 0;

	if (!ut)
		return;
	while (ut->files) {
		struct ufile *uf = ut->files;

		ut->files = uf->next;
		if (uf->qp && upcie_nvme_qpair_destroy(uf->qp))
			log_err("upcie-fio: %s: deleting the queue pair: %s\n", uf->dev,
				upcie_errmsg());
		upcie_nvme_ctrl_put(uf->ctrl);
		stepped += uf->sim != NULL;
		free(uf);
	}
	upcie_nvme_ctrl_put(ut->mem_ctrl);
	/* After every reference this thread held on a controller that runs on
	 * the model. */
	while (stepped--)
		stepped_put();
	free(ut->open);
	free(ut->events);
	free(ut);
	td->io_ops_data = NULL;
}

static int ufio_invalidate(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0; /* no page cache in the way */
}

struct ioengine_ops ioengine = {
    .name = "upcie",
    .version = FIO_IOOPS_VERSION,
    .flags = FIO_DISKLESSIO | FIO_NODISKUTIL | FIO_NOEXTEND | FIO_MEMALIGN | FIO_RAWIO,
    .setup = ufio_setup,
    .init = ufio_init,
    .queue = ufio_queue,
    .commit = ufio_commit,
    .getevents = ufio_getevents,
    .event = ufio_event,
    .cleanup = ufio_cleanup,
    .open_file = ufio_open_file,
    .close_file = ufio_close_file,
    .invalidate = ufio_invalidate,
    .iomem_alloc = ufio_iomem_alloc,
    .iomem_free = ufio_iomem_free,
    .io_u_init = ufio_io_u_init,
    .io_u_free = ufio_io_u_free,
    .option_struct_size = sizeof(struct ufio_options),
    .options = options,
};
