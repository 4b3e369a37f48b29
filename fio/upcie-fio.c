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
 * the SQ without ringing, reads and writes through upcie_nvme_read/_write
 * (the library's inlined fast path: the SQE written in place); ->commit()
 * rings once per queue pair for everything queued; ->getevents() polls
 * once per queue pair, each poll reaping all the device posted into an
 * array of completions, hands fio at most its maximum and keeps the rest
 * for the next call (which then does not poll), and polls again only
 * until fio's minimum is met or its timeout passes. No allocation, system
 * call or clock read per I/O (the clock only while a timed ->getevents
 * waits). Reads and writes above the controller's MDTS are split by the
 * library and complete once. Trim is Dataset Management (deallocate), sync
 * is Flush.
 *
 * Completions: polled, or waited for with interrupts (MSI-X under vfio,
 * INTx under uio) through the library's upcie_nvme_qpair_wait(), as fio's
 * own engines do: completion=auto (the default) follows hipri, which polls
 * (as io_uring's --hipri does) and otherwise sleeps until an interrupt, so
 * a job file means the same here as with io_uring, and jobs that share
 * CPUs with each other or the device do not spin against them;
 * completion=poll|irq|hybrid chooses outright (hybrid: poll for spin_us,
 * default 20, after the last completion, then sleep). auto uses MSI-X
 * only (vfio, sim) and polls on INTx (uio) or without interrupts or
 * vectors, saying so; irq takes INTx too, and fails without interrupts.
 *
 * Options (after --ioengine): shared_dma=0/1 (one DMA context and heap for
 * every controller, default 1: see below), nsid (default: the first active namespace),
 * dbbuf=0/1 (shadow doorbells, default 1), poll_batch (most completions
 * reaped per poll call, default 0: all there are), sim_stepped=0/1
 * (filename=sim only: the model has no thread of its own; the I/O threads
 * step it before they poll, so the model's work happens in the I/O thread,
 * where a profiler sees it apart from the driver's: for measurements).
 *
 * Metadata and protection information, with the option names of fio's
 * io_uring_cmd engine (which Debian's fio 3.33 does not have yet):
 * md_per_io_size (bytes of the separate metadata buffer of each I/O),
 * pi_act=0/1 (PRACT: the controller inserts and strips the PI), pi_chk
 * (GUARD,REFTAG,APPTAG: what the controller checks; with pi_act=0 the
 * engine also makes the PI of writes and checks that of reads), apptag,
 * apptag_mask. With extended LBAs offsets and sizes count data and
 * metadata (bs=4104 for 4096 + 8), as with io_uring_cmd; fio's own verify
 * then cannot be used with PI, whose bytes in the buffer the engine (or
 * the controller) writes after fio hashed it: pi_chk checks them instead. sim_ms, sim_pi,
 * sim_extended, sim_pi_first (with sim_stepped=1) format the model's
 * namespaces so that all of it runs without hardware.
 *
 * Several controllers: with shared_dma=1 (the default) every controller
 * of the process is opened into one DMA context (dma.h) and all share its
 * one heap, so a job's files may be on different controllers
 * (--filename=0000.01.00.0:0000.02.00.0, or sim1:sim2 on the emulated
 * controller), and several jobs on several controllers run in one
 * process. One context holds one backend: controllers bound to uio and
 * to vfio cannot run in one process that way (shared_dma=0 gives each a
 * heap of its own; then a job's files must be on one controller).
 *
 * Limits: fio must run jobs as threads (--thread); a job may use at most
 * as many queue pairs as the controller granted, all jobs together as
 * well.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "fio.h"
#include "optgroup.h"

#include <upcie/sim.h>
#include <upcie/upcie.h>

#define ufio_likely(x) __builtin_expect(!!(x), 1)

struct ufio_options {
	void *pad; /* fio wants off1 != 0 */
	unsigned int nsid;
	unsigned int dbbuf;
	unsigned int poll_batch;
	unsigned int sim_stepped;
	unsigned int hipri;
	unsigned int completion;
	unsigned int spin_us;
	unsigned int md_per_io_size;
	unsigned int pi_act;
	char *pi_chk;
	unsigned int apptag;
	unsigned int apptag_mask;
	unsigned int sim_ms;
	unsigned int sim_pi;
	unsigned int sim_extended;
	unsigned int sim_pi_first;
	unsigned int wait_stats;
	unsigned int shared_dma;
};

/* How completions are waited for (the completion= option). */
enum { UFIO_AUTO, UFIO_POLL, UFIO_IRQ, UFIO_HYBRID };

static struct fio_option options[] = {
    {
	.name = "shared_dma",
	.lname = "one DMA context for all controllers",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, shared_dma),
	.def = "1",
	.help = "open every controller of the process into one DMA context with one heap, so "
		"that a job's files may be on several controllers (0: a heap per controller)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
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
	.help = "most completions reaped per poll call (0: all there are)",
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
	/* fio's name for polled completion (io_uring, pvsync2, ...): the same
	 * job file means the same here. */
	.name = "hipri",
	.lname = "polled completions",
	.type = FIO_OPT_STR_SET,
	.off1 = offsetof(struct ufio_options, hipri),
	.help = "poll for completions (with completion=auto, the default)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "completion",
	.lname = "completion mode",
	.type = FIO_OPT_STR,
	.off1 = offsetof(struct ufio_options, completion),
	.def = "auto",
	.help = "how completions are waited for",
	.posval =
	    {
		{.ival = "auto",
		 .oval = UFIO_AUTO,
		 .help = "as fio's other engines: hipri polls, otherwise interrupts"},
		{.ival = "poll", .oval = UFIO_POLL, .help = "busy-poll the completion queue"},
		{.ival = "irq",
		 .oval = UFIO_IRQ,
		 .help = "sleep until an interrupt (MSI-X with vfio, INTx with uio)"},
		{.ival = "hybrid",
		 .oval = UFIO_HYBRID,
		 .help = "poll for spin_us after the last completion, then sleep"},
	    },
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "spin_us",
	.lname = "hybrid spin",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, spin_us),
	.def = "20",
	.help = "completion=hybrid: microseconds to keep polling after the last completion",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "wait_stats",
	.lname = "interrupt wait counters",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, wait_stats),
	.def = "0",
	.help = "at the end of the job, log each queue pair's wait counters (waits, sleeps, "
		"wake-ups, empty wake-ups, spin hits)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "md_per_io_size",
	.lname = "metadata per I/O",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, md_per_io_size),
	.def = "0",
	.help = "bytes of the separate metadata buffer of each I/O (namespaces with metadata "
		"kept apart)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "pi_act",
	.lname = "PRACT",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, pi_act),
	.def = "0",
	.help = "the controller inserts (writes) and strips (reads, 8-byte PI) the protection "
		"information",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "pi_chk",
	.lname = "PRCHK",
	.type = FIO_OPT_STR_STORE,
	.off1 = offsetof(struct ufio_options, pi_chk),
	.def = NULL,
	.help = "protection information checks: GUARD, REFTAG, APPTAG, comma separated",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "apptag",
	.lname = "application tag",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, apptag),
	.def = "0x1234",
	.help = "application tag written and checked (16 bits)",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "apptag_mask",
	.lname = "application tag mask",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, apptag_mask),
	.def = "0xffff",
	.help = "bits of the application tag that are checked",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "sim_ms",
	.lname = "sim metadata size",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, sim_ms),
	.def = "0",
	.help = "sim_stepped=1: metadata bytes per block of the model's namespaces",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "sim_pi",
	.lname = "sim PI type",
	.type = FIO_OPT_INT,
	.off1 = offsetof(struct ufio_options, sim_pi),
	.def = "0",
	.help = "sim_stepped=1: protection information type (1, 2, 3) of the model's namespaces",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "sim_extended",
	.lname = "sim extended LBAs",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, sim_extended),
	.def = "0",
	.help = "sim_stepped=1: metadata at the end of each block",
	.category = FIO_OPT_C_ENGINE,
	.group = FIO_OPT_G_INVALID,
    },
    {
	.name = "sim_pi_first",
	.lname = "sim PI first",
	.type = FIO_OPT_BOOL,
	.off1 = offsetof(struct ufio_options, sim_pi_first),
	.def = "0",
	.help = "sim_stepped=1: PI in the first 8 metadata bytes",
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
/*
 * The process's DMA context (shared_dma=1): every controller the engine
 * opens joins it, and all of them share its one heap, so a job's buffers
 * serve every file it has, on whichever controller. Counted by the files
 * that use it; the last one lets it go (the library keeps it while a
 * device or the heap is still in it).
 */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upcie_dma_ctx *engine_ctx;
static unsigned engine_ctx_users;

static struct upcie_dma_ctx *engine_ctx_get(void)
{
	struct upcie_dma_ctx *ctx;

	pthread_mutex_lock(&ctx_lock);
	if (!engine_ctx)
		engine_ctx = upcie_dma_ctx_create(0);
	if (engine_ctx)
		engine_ctx_users++;
	ctx = engine_ctx;
	pthread_mutex_unlock(&ctx_lock);
	return ctx;
}

static void engine_ctx_put(void)
{
	pthread_mutex_lock(&ctx_lock);
	if (!--engine_ctx_users) {
		upcie_dma_ctx_destroy(engine_ctx);
		engine_ctx = NULL;
	}
	pthread_mutex_unlock(&ctx_lock);
}

/* Controllers that cannot join the engine's DMA context: devices in vfio's
 * no-IOMMU mode join one (physical addresses, as under uio) unless it
 * already holds devices behind an IOMMU, or the other way round; the
 * library refuses that mix (ENOTSUP). Each such controller runs on a heap
 * of its own, and every later open of it in this process
 * asks without the context (the library refuses a controller open already
 * to be got again with another context). */
#define NOCTX_MAX 16
static char noctx[NOCTX_MAX][64];
static unsigned noctx_n;

static bool noctx_has(const char *dev)
{
	bool found = false;

	pthread_mutex_lock(&ctx_lock);
	for (unsigned i = 0; i < noctx_n && !found; i++)
		found = !strcmp(noctx[i], dev);
	pthread_mutex_unlock(&ctx_lock);
	return found;
}

static void noctx_add(const char *dev)
{
	pthread_mutex_lock(&ctx_lock);
	if (noctx_n < NOCTX_MAX)
		snprintf(noctx[noctx_n++], sizeof(noctx[0]), "%s", dev);
	else
		log_err("upcie-fio: %s: more than %d controllers outside the DMA context: a "
			"later job on it needs shared_dma=0\n",
			dev, NOCTX_MAX);
	pthread_mutex_unlock(&ctx_lock);
}

static pthread_mutex_t stepped_lock = PTHREAD_MUTEX_INITIALIZER;
static struct upcie_sim *stepped_sim;
static unsigned stepped_refs;

#ifndef UPCIE_HAVE_SIM
/* A library without the sim backend has no model to step (and no file
 * runs on one: uf->sim stays NULL). */
#define upcie_sim_config_default(cfg) ((void)(cfg))
#define upcie_sim_create(cfg)	      ((void)(cfg), errno = ENOTSUP, (struct upcie_sim *)NULL)
#define upcie_sim_destroy(sim)	      ((void)(sim))
static inline int ufio_no_step(struct upcie_sim *sim)
{
	(void)sim;
	return 0;
}
#define upcie_sim_step ufio_no_step
#endif

#ifdef UPCIE_HAVE_SIM
/* The metadata format the job asks of the model's namespaces. */
static void sim_md_config(struct upcie_sim_config *cfg, const struct ufio_options *o)
{
	for (unsigned i = 0; i < UPCIE_SIM_MAX_NS; i++) {
		cfg->ns[i].ms = (uint16_t)o->sim_ms;
		cfg->ns[i].pi = (uint8_t)o->sim_pi;
		cfg->ns[i].md_flags = (uint8_t)((o->sim_extended ? UPCIE_SIM_MD_EXTENDED : 0) |
						(o->sim_pi_first ? UPCIE_SIM_MD_PI_FIRST : 0));
	}
}
#else
#define sim_md_config(cfg, o) ((void)(cfg), (void)(o))
#endif

/* A reference on the stepped model, made on first use (with the first
 * job's metadata format); NULL and errno. */
static struct upcie_sim *stepped_get(const struct ufio_options *o)
{
	struct upcie_sim *sim;

	pthread_mutex_lock(&stepped_lock);
	if (!stepped_sim) {
		struct upcie_sim_config cfg;

		upcie_sim_config_default(&cfg);
		cfg.threaded = false;
		sim_md_config(&cfg, o);
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
	bool in_ctx;	       /* holds a use of the process's DMA context */
	struct ufile *next;
	/* Metadata and PI (queue_md): the option flags of writes and reads,
	 * bytes per block in fio's offsets (data, and metadata when extended),
	 * and whether the engine makes and checks the PI itself. */
	bool md;
	uint32_t wflags, rflags;
	uint32_t unit;
	bool host_pi;
	uint16_t apptag, apptag_mask;
	unsigned md_per_io;
};

/*
 * A thread. Completions go into an array of io_us, in the order the polls
 * reaped them: a poll takes everything the device posted, ->getevents
 * hands fio at most its 'max' of them and keeps the rest for the next
 * call, which then need not poll. ->event reads the array. An io_u is
 * outstanding, in the array or with fio, never two of these at once: its
 * iodepth slots suffice.
 */
struct uthread {
	struct io_u **ev;    /* ev_slots entries */
	unsigned ev_slots;   /* iodepth */
	unsigned ev_base;    /* the first completion handed to fio by the last ->getevents */
	unsigned ev_given;   /* how many it handed from there */
	unsigned ev_n;	     /* completions in ev[0..ev_n) */
	unsigned queued;     /* commands placed since the last ring, all files */
	unsigned poll_batch; /* most completions per poll call */
	unsigned mode;	     /* UFIO_POLL, UFIO_IRQ or UFIO_HYBRID */
	bool mode_auto;	     /* chosen by completion=auto: polling if no interrupts */
	unsigned spin_us;
	int epfd;			/* irq modes, several files: their queue pairs' fds */
	const struct timespec *timeout; /* of the ->getevents under way, or NULL */
	struct ufile *one; /* the file with a queue pair when there is one, else NULL */
	unsigned nopen;
	struct ufile **open; /* files with a queue pair, for commit and poll */
	unsigned cap_open;
	struct ufile *files;
	struct upcie_nvme_ctrl *mem_ctrl; /* whose heap holds the buffers (a reference) */
	void *buf;
};

/* An io_u. */
struct uiou {
	struct uthread *ut;
	struct io_u *io_u;
	struct ufile *uf; /* of the command in flight (queue_md) */
	void *md;	  /* md_per_io_size bytes of heap memory, or NULL */
	struct upcie_nvme_split split;
	struct upcie_nvme_dsm_range *range; /* heap memory, for trim */
};

static struct uthread *uthread_of(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;

	if (!ut) {
		const struct ufio_options *o = td->eo;

		ut = calloc(1, sizeof(*ut));
		td->io_ops_data = ut;
		if (!ut)
			return NULL;
		/* Here, not in ->init: fio's ->setup opens the files first. */
		ut->mode = o->completion != UFIO_AUTO ? o->completion
			   : o->hipri		      ? UFIO_POLL
						      : UFIO_IRQ;
		ut->mode_auto = o->completion == UFIO_AUTO;
		ut->spin_us = ut->mode == UFIO_HYBRID ? o->spin_us : 0;
		ut->epfd = -1;
	}
	return ut;
}

/*
 * fio splits filenames on ':'; accept 'dddd.bb.dd.f' and 'bb.dd.f' (the
 * first dots stand for colons), an address whose colons were escaped (fio
 * hands it over unescaped), and 'sim' ('sim1', 'sim2', ...: more emulated
 * controllers, each with a model of its own).
 */
static int parse_name(const char *name, char *out, size_t len)
{
	struct upcie_pci_addr a;
	char buf[64];
	size_t dots = 0;

	if (!strncmp(name, "sim", 3) && strlen(name) <= 7 &&
	    strspn(name + 3, "0123456789") == strlen(name + 3)) {
		snprintf(out, len, "%s", name);
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

/* "upcie-fio: DEV: MSG" on fio's log, without DEV when the library's
 * message names the device already (a missing one: "0000:01:00.0: no such
 * PCI device ..."), so the address shows once. */
static void __attribute__((cold)) log_dev_err(const char *dev, const char *msg)
{
	if (strstr(msg, dev))
		log_err("upcie-fio: %s\n", msg);
	else
		log_err("upcie-fio: %s: %s\n", dev, msg);
}

/* pi_chk: "GUARD,REFTAG,APPTAG" (any of them, any order) as PRCHK bits;
 * -1 for a word that is none of these. */
static int parse_pi_chk(const char *s, uint32_t *chk)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} w[] = {{"GUARD", UPCIE_NVME_RW_PRCHK_GUARD},
		 {"REFTAG", UPCIE_NVME_RW_PRCHK_REF},
		 {"APPTAG", UPCIE_NVME_RW_PRCHK_APP}};

	*chk = 0;
	while (s && *s) {
		size_t n = strcspn(s, ",");
		unsigned i;

		for (i = 0; i < 3; i++)
			if (strlen(w[i].name) == n && !strncasecmp(s, w[i].name, n))
				break;
		if (i == 3)
			return -1;
		*chk |= w[i].bit;
		s += n + (s[n] == ',');
	}
	return 0;
}

/* The file's metadata and PI settings from the options; 0, or -1 after
 * saying what does not fit the namespace. */
static int md_setup(struct ufile *uf, const struct ufio_options *o)
{
	const struct upcie_nvme_ns *ns = uf->ns;
	uint32_t chk;

	if (parse_pi_chk(o->pi_chk, &chk)) {
		log_err("upcie-fio: pi_chk '%s': give GUARD, REFTAG and/or APPTAG, comma "
			"separated\n",
			o->pi_chk);
		return -1;
	}
	if ((chk || o->pi_act) && !ns->pi_type) {
		log_err("upcie-fio: %s: pi_act/pi_chk given, but namespace %u is not formatted "
			"with protection information\n",
			uf->dev, ns->nsid);
		return -1;
	}
	/* Type 3 has one reference tag for every block: no check of it here. */
	if (ns->pi_type == 3)
		chk &= ~UPCIE_NVME_RW_PRCHK_REF;
	uf->md = ns->ms || chk || o->pi_act;
	uf->wflags = o->pi_act ? UPCIE_NVME_RW_PRACT : chk;
	uf->rflags = (o->pi_act ? UPCIE_NVME_RW_PRACT : 0) | chk;
	uf->host_pi = ns->pi_type && !o->pi_act;
	uf->apptag = (uint16_t)o->apptag;
	uf->apptag_mask = (uint16_t)o->apptag_mask;
	uf->md_per_io = o->md_per_io_size;
	uf->unit = (uint32_t)(upcie_nvme_ns_data_len(ns, 1, uf->wflags));
	if (upcie_nvme_ns_md_len(ns, 1, uf->wflags) && !o->md_per_io_size) {
		log_err("upcie-fio: %s: namespace %u keeps %u metadata bytes per block apart: give "
			"md_per_io_size (bytes per I/O: blocks per I/O x %u)\n",
			uf->dev, ns->nsid, ns->ms, ns->ms);
		return -1;
	}
	return 0;
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
	if ((o->sim_ms || o->sim_pi || o->sim_extended || o->sim_pi_first) && !o->sim_stepped) {
		log_err("upcie-fio: sim_ms, sim_pi, sim_extended and sim_pi_first format the "
			"stepped model: add sim_stepped=1 (and filename=sim)\n");
		free(uf);
		return EINVAL;
	}
	if (o->sim_stepped) {
		if (strcmp(uf->dev, "sim")) {
			log_err("upcie-fio: sim_stepped=1 needs filename=sim, not '%s'\n",
				f->file_name);
			free(uf);
			return EINVAL;
		}
		sim = stepped_get(o);
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
	if (o->shared_dma && !noctx_has(uf->dev)) {
		go.dma_ctx = engine_ctx_get();
		if (!go.dma_ctx) {
			log_err("upcie-fio: no DMA context: %s\n", upcie_errmsg());
			if (sim)
				stepped_put();
			free(uf);
			return ENOMEM;
		}
		uf->in_ctx = true;
	}
	uf->ctrl = upcie_nvme_ctrl_get(uf->dev, &go);
	if (!uf->ctrl && errno == ENOTSUP && uf->in_ctx && strstr(upcie_errmsg(), "no-IOMMU")) {
		/* A controller the context refuses (a no-IOMMU device beside
		 * devices behind an IOMMU, or the other way round) still runs,
		 * on a heap of its own: a job on it alone works; one spread
		 * over it and the others is refused at open. */
		log_info("upcie-fio: %s: %s; it gets a DMA heap of its own\n", uf->dev,
			 upcie_errmsg());
		engine_ctx_put();
		uf->in_ctx = false;
		go.dma_ctx = NULL;
		uf->ctrl = upcie_nvme_ctrl_get(uf->dev, &go);
		if (uf->ctrl)
			noctx_add(uf->dev);
	}
	if (!uf->ctrl) {
		int err = errno;
		log_dev_err(uf->dev, upcie_errmsg());
		if (o->shared_dma && strstr(upcie_errmsg(), "DMA context"))
			log_err("upcie-fio: %s: shared_dma=0 gives each controller a heap of its "
				"own (then one job's files must be on one controller)\n",
				uf->dev);
		if (sim)
			stepped_put();
		if (uf->in_ctx)
			engine_ctx_put();
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
	if (md_setup(uf, o))
		return EINVAL;
	f->engine_data = uf;
	f->filetype = FIO_TYPE_BLOCK;
	f->real_file_size = uf->ns->nsze * uf->unit;
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
	struct ufio_options *o = td->eo;
	struct uthread *ut = uthread_of(td);

	if (!ut)
		return 1;
	ut->ev_slots = td->o.iodepth;
	ut->poll_batch = o->poll_batch ? o->poll_batch : UINT32_MAX;

	ut->ev = calloc(ut->ev_slots, sizeof(*ut->ev));
	return ut->ev ? 0 : 1;
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
	const struct ufio_options *o = td->eo;
	struct upcie_nvme_ctrl *c = mem_ctrl(td);
	struct uiou *u = calloc(1, sizeof(*u));

	if (!c || !u) {
		free(u);
		return 1;
	}
	u->ut = td->io_ops_data;
	u->io_u = io_u;
	/* Trims come from rw=trim and also from verify's trim_percentage. */
	u->range = upcie_dma_alloc(upcie_nvme_ctrl_heap(c), sizeof(*u->range), 16);
	if (!u->range) {
		log_err("upcie-fio: no DMA memory for a trim range: %s\n", upcie_errmsg());
		free(u);
		return 1;
	}
	if (o->md_per_io_size) {
		u->md = upcie_dma_alloc(upcie_nvme_ctrl_heap(c), o->md_per_io_size, 64);
		if (!u->md) {
			log_err("upcie-fio: no DMA memory for %u metadata bytes: %s\n",
				o->md_per_io_size, upcie_errmsg());
			upcie_dma_free(upcie_nvme_ctrl_heap(c), u->range);
			free(u);
			return 1;
		}
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
	if (u->md && ut && ut->mem_ctrl)
		upcie_dma_free(upcie_nvme_ctrl_heap(ut->mem_ctrl), u->md);
	free(u);
	io_u->engine_data = NULL;
}

/* Several files with interrupts: one epoll over their queue pairs' fds. */
static int irq_watch(struct thread_data *td, struct uthread *ut, struct ufile *uf)
{
	struct epoll_event ev = {.events = EPOLLIN};

	if (ut->epfd < 0)
		ut->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ut->epfd < 0 || epoll_ctl(ut->epfd, EPOLL_CTL_ADD, upcie_nvme_qpair_fd(uf->qp), &ev)) {
		td_verror(td, errno, "upcie-fio open (epoll)");
		return 1;
	}
	return 0;
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
	/* One heap for the job's buffers: the controllers of its files must
	 * share it (shared_dma=1: one DMA context for all of them). */
	if (!mem_ctrl(td) || upcie_nvme_ctrl_heap(mem_ctrl(td)) != upcie_nvme_ctrl_heap(uf->ctrl)) {
		log_err("upcie-fio: %s and %s are different controllers with heaps of their "
			"own: with shared_dma=0 one job's files must share one controller (its "
			"buffers come from that controller's DMA heap); leave shared_dma=1 to "
			"spread a job over several\n",
			td->files[0]->file_name, f->file_name);
		td_verror(td, EINVAL, "upcie-fio open");
		return 1;
	}
	/* unit: the data size of a block, with its metadata for extended LBAs. */
	if (td_min_bs(td) % uf->unit || max_bs % uf->unit || td->o.ba[DDIR_READ] % uf->unit ||
	    td->o.ba[DDIR_WRITE] % uf->unit) {
		log_err("upcie-fio: %s: block sizes and alignment must be multiples of the "
			"namespace's %u-byte blocks%s\n",
			f->file_name, uf->unit,
			uf->unit != uf->ns->lba_size ? " (data and metadata, extended LBAs)" : "");
		td_verror(td, EINVAL, "upcie-fio open");
		return 1;
	}
	if (uf->md && upcie_nvme_ns_md_len(uf->ns, (uint32_t)(max_bs / uf->unit), uf->wflags) >
			  uf->md_per_io) {
		log_err("upcie-fio: %s: bs=%llu moves %zu metadata bytes: md_per_io_size=%u is "
			"too small\n",
			f->file_name, max_bs,
			upcie_nvme_ns_md_len(uf->ns, (uint32_t)(max_bs / uf->unit), uf->wflags),
			uf->md_per_io);
		td_verror(td, EINVAL, "upcie-fio open");
		return 1;
	}
	/* Room for every io_u at its largest split, plus the slot a full queue
	 * keeps empty. */
	if (uf->md && uf->ns->md_max_xfer_blocks)
		parts = (uint32_t)((max_bs / uf->unit + uf->ns->md_max_xfer_blocks - 1) /
				   uf->ns->md_max_xfer_blocks);
	else
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
	qo.irq = ut->mode != UFIO_POLL;
	/* auto takes MSI-X only: INTx (uio) is one line for every queue of the
	 * function, and under QEMU 7.2 it storms (BENCHMARKS.md, part 7). */
	if (qo.irq && ut->mode_auto && info.irq_kind != UPCIE_PCI_IRQ_MSIX) {
		log_info("upcie-fio: %s: no MSI-X (%s): polling\n", f->file_name,
			 info.irq_kind == UPCIE_PCI_IRQ_INTX ? "INTx only" : "no interrupts");
		qo.irq = 0;
	}
	qo.spin_us = qo.irq ? ut->spin_us : 0;
	uf->qp = upcie_nvme_qpair_create(uf->ctrl, &qo);
	if (!uf->qp && qo.irq && ut->mode_auto && (errno == ENOTSUP || errno == ENOSPC)) {
		/* completion=auto on a device without interrupts (or out of
		 * vectors): poll, and say so once per file. */
		log_info("upcie-fio: %s: no interrupts (%s): polling\n", f->file_name,
			 upcie_errmsg());
		qo.irq = 0;
		qo.spin_us = 0;
		uf->qp = upcie_nvme_qpair_create(uf->ctrl, &qo);
	}
	if (!uf->qp) {
		err = errno;
		if (err == ENOSPC)
			log_err(
			    "upcie-fio: %s: every I/O queue pair the controller granted (%u) is "
			    "in use: each job (numjobs counts) takes one per file; run fewer\n",
			    f->file_name, info.io_qpairs_max);
		else
			log_dev_err(uf->dev, upcie_errmsg());
		td_verror(td, err ? err : EIO, "upcie-fio open");
		return 1;
	}
	if (upcie_nvme_qpair_fd(uf->qp) >= 0 && irq_watch(td, ut, uf)) {
		upcie_nvme_qpair_destroy(uf->qp);
		uf->qp = NULL;
		return 1;
	}
	ut->open[ut->nopen++] = uf;
	ut->one = ut->nopen == 1 ? uf : NULL;
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

/* Append a completion. There is room: the library calls back once per
 * command, and before any poll ->getevents empties the array or moves
 * what fio has not taken yet to its front (cleanup empties it too). */
static inline void ev_push(struct uthread *ut, struct io_u *io_u)
{
	ut->ev[ut->ev_n++] = io_u;
}

/* A command failed: fio's error for it, and why. */
static void __attribute__((cold, noinline))
io_failed(struct uiou *u, const struct upcie_nvme_cqe *cqe)
{
	struct io_u *io_u = u->io_u;

	io_u->error = EIO;
	log_err("upcie-fio: %s at offset %llu failed: %s\n", io_ddir_name(io_u->ddir), io_u->offset,
		upcie_nvme_status_str(upcie_nvme_cqe_status(cqe)));
	ev_push(u->ut, io_u);
}

/* Completion callback (fio set io_u->error to 0 when it queued the io_u). */
static void io_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct uiou *u = arg;

	/* Status Code and Status Code Type (bits 11:1), in one test. */
	if (fio_unlikely(cqe->status & 0x0ffe)) {
		io_failed(u, cqe);
		return;
	}
	ev_push(u->ut, u->io_u);
}

/* The options of one command with metadata or PI: the reference tag is
 * the LBA's, its low 32 bits or, with the 64-bit guard, 48 (type 3: none
 * is checked, 0 is written). */
static struct upcie_nvme_io_opts md_opts(const struct ufile *uf, const struct uiou *u,
					 uint64_t slba, uint32_t flags)
{
	return (struct upcie_nvme_io_opts){
	    .opts_size = sizeof(struct upcie_nvme_io_opts),
	    .flags = flags,
	    .md = upcie_nvme_ns_md_len(uf->ns, 1, flags) ? u->md : NULL,
	    .reftag = uf->ns->pi_type == 3 ? 0 : (uint32_t)slba,
	    .apptag = uf->apptag,
	    .apptag_mask = uf->apptag_mask,
	    .reftag_hi = uf->ns->pi_type != 3 && uf->ns->guard_bits == 64
			     ? (uint32_t)(slba >> 32) & 0xffff
			     : 0};
}

/* A read with metadata completed: with pi_act=0 the engine checks the PI
 * it got (as io_uring_cmd does), and says where it failed. */
static void __attribute__((noinline)) md_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct uiou *u = arg;
	struct io_u *io_u = u->io_u;
	const struct ufile *uf = u->uf;
	uint64_t slba = io_u->offset / uf->unit;
	struct upcie_nvme_io_opts o = md_opts(uf, u, slba, uf->rflags);
	uint32_t bad = 0;
	int st;

	if (cqe->status & 0x0ffe) {
		io_failed(u, cqe);
		return;
	}
	if (io_u->ddir == DDIR_READ && uf->host_pi && (o.flags & UPCIE_NVME_RW_PRCHK_ALL)) {
		st = upcie_nvme_pi_verify(uf->ns, io_u->xfer_buf, o.md,
					  (uint32_t)(io_u->xfer_buflen / uf->unit), &o, &bad);
		if (st) {
			io_u->error = EILSEQ;
			log_err("upcie-fio: read at offset %llu: the host's PI check failed at LBA "
				"%llu: %s\n",
				io_u->offset, (unsigned long long)(slba + bad),
				st > 0 ? upcie_nvme_status_str((uint16_t)st) : upcie_errmsg());
		}
	}
	ev_push(u->ut, io_u);
}

/* A read or write with metadata or PI; with pi_act=0 the engine makes the
 * PI of writes. Above MDTS through the library's split. */
static int __attribute__((noinline)) queue_md(struct ufile *uf, struct uiou *u)
{
	struct io_u *io_u = u->io_u;
	bool write = io_u->ddir == DDIR_WRITE;
	uint64_t slba = io_u->offset / uf->unit;
	uint32_t nlb = (uint32_t)(io_u->xfer_buflen / uf->unit);
	struct upcie_nvme_io_opts o = md_opts(uf, u, slba, write ? uf->wflags : uf->rflags);
	size_t md_len = upcie_nvme_ns_md_len(uf->ns, nlb, o.flags);

	if (io_u->offset % uf->unit || io_u->xfer_buflen % uf->unit || md_len > uf->md_per_io) {
		log_err("upcie-fio: %llu bytes at %llu: offsets and sizes count %u bytes per "
			"block (bs a multiple of it), and the %zu metadata bytes need "
			"md_per_io_size >= %zu\n",
			io_u->xfer_buflen, io_u->offset, uf->unit, md_len, md_len);
		return 1;
	}
	u->uf = uf;
	if (write && uf->host_pi) {
		int rc = upcie_nvme_pi_generate(uf->ns, io_u->xfer_buf, o.md, nlb, &o);
		if (rc)
			return rc;
	}
	if (write)
		return upcie_nvme_write_ext_split(uf->qp, uf->ns, slba, nlb, io_u->xfer_buf, &o,
						  &u->split, md_done, u, 0);
	return upcie_nvme_read_ext_split(uf->qp, uf->ns, slba, nlb, io_u->xfer_buf, &o, &u->split,
					 md_done, u, 0);
}

/* A command the engine did not place: the queue is full (fio retries
 * later), the library refused it, or the engine does not do its
 * direction (rc 1); fio completes those with the error. */
static enum fio_q_status __attribute__((cold, noinline)) not_queued(struct io_u *io_u, int rc)
{
	struct uiou *u = io_u->engine_data;

	u->ut->queued--;
	if (rc == -EAGAIN)
		return FIO_Q_BUSY;
	if (rc > 0) {
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	log_err("upcie-fio: %s of %llu bytes at %llu refused: %s\n", io_ddir_name(io_u->ddir),
		io_u->xfer_buflen, io_u->offset, upcie_errmsg());
	io_u->error = -rc;
	return FIO_Q_COMPLETED;
}

/* Everything but a read or write that fits one command: transfers above
 * MDTS (split by the library, one callback), trim, sync. 0, a negative
 * errno, or 1 for a direction the engine does not do. */
static int __attribute__((noinline))
queue_other(struct ufile *uf, struct uiou *u, uint64_t slba, uint32_t nlb)
{
	struct io_u *io_u = u->io_u;
	const struct upcie_nvme_ns *ns = uf->ns;

	if (uf->md && (io_u->ddir == DDIR_READ || io_u->ddir == DDIR_WRITE))
		return queue_md(uf, u);
	switch (io_u->ddir) {
	case DDIR_READ:
		return upcie_nvme_read_split(uf->qp, ns, slba, nlb, io_u->xfer_buf, &u->split,
					     io_done, u, 0);
	case DDIR_WRITE:
		return upcie_nvme_write_split(uf->qp, ns, slba, nlb, io_u->xfer_buf, &u->split,
					      io_done, u, 0);
	case DDIR_TRIM:
		u->range->cattr = 0;
		u->range->nlb = nlb;
		u->range->slba = slba;
		return upcie_nvme_deallocate(uf->qp, ns->nsid, u->range, 1, io_done, u, 0);
	case DDIR_SYNC:
	case DDIR_DATASYNC:
		return upcie_nvme_flush(uf->qp, ns->nsid, io_done, u, 0);
	default:
		return 1;
	}
}

/*
 * Put the command in the SQ without ringing (->commit rings): reads and
 * writes through upcie_nvme_read/_write, whose common case (a buffer
 * inside the heap's first segment, at most two memory pages, within MDTS)
 * writes the SQE straight into its slot. No allocation, no system call.
 */
static enum fio_q_status ufio_queue(struct thread_data *td, struct io_u *io_u)
{
	struct ufile *uf = io_u->file->engine_data;
	struct uiou *u = io_u->engine_data;
	const struct upcie_nvme_ns *ns = uf->ns;
	uint64_t slba = io_u->offset >> ns->lba_shift;
	uint32_t nlb = (uint32_t)(io_u->xfer_buflen >> ns->lba_shift);
	int rc;

	(void)td; /* fio_ro_check() ran in fio's td_io_queue() just before */
	/* Counted first: nothing but the io_u has to outlive the call. */
	u->ut->queued++;
	if (ufio_likely(io_u->ddir == DDIR_READ && nlb <= ns->max_xfer_blocks))
		rc = upcie_nvme_read(uf->qp, ns, slba, nlb, io_u->xfer_buf, io_done, u, 0);
	else if (io_u->ddir == DDIR_WRITE && nlb <= ns->max_xfer_blocks)
		rc = upcie_nvme_write(uf->qp, ns, slba, nlb, io_u->xfer_buf, io_done, u, 0);
	else
		rc = queue_other(uf, u, slba, nlb);
	if (fio_unlikely(rc))
		return not_queued(io_u, rc);
	return FIO_Q_QUEUED;
}

/* More than one file: ring each queue pair (one that got no command
 * writes nothing). */
static int __attribute__((noinline))
commit_each(struct thread_data *td, struct uthread *ut, unsigned n)
{
	ut->queued = 0;
	for (unsigned i = 0; i < ut->nopen; i++)
		upcie_nvme_ring(ut->open[i]->qp);
	io_u_mark_submit(td, n);
	return 0;
}

/*
 * One SQ doorbell write for the commands queued since the last. fio also
 * calls this before every ->getevents, mostly with nothing queued: that
 * case is a load and a test.
 */
static int ufio_commit(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;
	unsigned n = ut->queued;
	struct upcie_nvme_qpair *qp;

	if (!n)
		return 0;
	if (fio_unlikely(!ut->one))
		return commit_each(td, ut, n);
	qp = ut->one->qp;
	ut->queued = 0;
	io_u_mark_submit(td, n);
	upcie_nvme_ring(qp);
	return 0;
}

static uint64_t ns_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (uint64_t)(b.tv_sec - a->tv_sec) * 1000000000ull + (uint64_t)b.tv_nsec -
	       (uint64_t)a->tv_nsec;
}

/* A poll failed: the controller is gone or failed; its commands have
 * ended or never will. Without this a getevents with no timeout would
 * spin for ever. */
static int __attribute__((cold, noinline)) poll_failed(struct ufile *uf, int rc)
{
	log_dev_err(uf->dev, upcie_errmsg());
	return rc;
}

/*
 * One poll call on a queue pair: it reaps everything the device posted
 * into the array (which has room for all of it: at most iodepth commands
 * are outstanding or there), at most poll_batch. The limit is the free
 * slots otherwise: at iodepth 1 exactly what is outstanding, so the poll
 * stops after the completion without looking at the next CQ slot. A
 * stepped model first takes what was rung (upcie-perf steps it before
 * each poll too).
 */
static inline int poll_one(struct uthread *ut, struct ufile *const *ufp)
{
	uint32_t room;
	int n;

	if ((*ufp)->sim)
		upcie_sim_step((*ufp)->sim);
	/* Read again after the step: nothing to keep across the call. */
	room = ut->ev_slots - ut->ev_n;
	n = upcie_nvme_poll((*ufp)->qp, room < ut->poll_batch ? room : ut->poll_batch);
	return fio_unlikely(n < 0) ? poll_failed(*ufp, n) : 0;
}

static int __attribute__((noinline)) poll_each(struct uthread *ut)
{
	/* A full array: nothing is outstanding (and a limit of 0 means none). */
	for (unsigned i = 0; i < ut->nopen && ut->ev_n < ut->ev_slots; i++) {
		int rc = poll_one(ut, &ut->open[i]);

		if (rc)
			return rc;
	}
	return 0;
}

static inline int poll_all(struct uthread *ut)
{
	return ufio_likely(ut->one != NULL) ? poll_one(ut, &ut->one) : poll_each(ut);
}

/* Milliseconds left of fio's timeout (UINT32_MAX: none), rounded up. */
static uint32_t ms_left(const struct timespec *t, const struct timespec *start)
{
	uint64_t limit, spent;

	if (!t)
		return UINT32_MAX;
	limit = (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
	spent = ns_since(start);
	return spent >= limit ? 0 : (uint32_t)((limit - spent + 999999) / 1000000);
}

/*
 * Interrupt modes: sleep until min completions are there or fio's timeout
 * passed. One file: the library's wait (arm, sleep, health checks while
 * commands are out, hybrid spin). Several: arm each, then one epoll over
 * their fds, in slices of at most 100 ms so each queue's slow path still
 * runs (timeouts, health).
 */
static int __attribute__((noinline)) sleep_events(struct uthread *ut, unsigned min)
{
	struct timespec start;

	if (ut->timeout) /* no clock without a timeout */
		clock_gettime(CLOCK_MONOTONIC, &start);
	while (ut->ev_n < min) {
		uint32_t left = ms_left(ut->timeout, &start);

		if (!left)
			break;
		if (ut->one) {
			int n = upcie_nvme_qpair_wait(ut->one->qp, left);

			if (n < 0)
				return poll_failed(ut->one, n);
			if (!n && ut->timeout)
				break; /* the timeout passed */
			continue;
		}
		{
			struct epoll_event ev[8];
			bool got = false;

			for (unsigned i = 0; i < ut->nopen; i++) {
				struct ufile *uf = ut->open[i];
				int n = upcie_nvme_qpair_fd(uf->qp) >= 0
					    ? upcie_nvme_qpair_arm(uf->qp)
					    : upcie_nvme_poll(uf->qp, 0);

				if (n < 0)
					return poll_failed(uf, n);
				got |= n > 0;
			}
			if (!got && ut->ev_n < min &&
			    epoll_wait(ut->epfd, ev, 8, left < 100 ? (int)left : 100) == 0) {
				int rc = poll_all(ut); /* a slice passed: the slow paths */

				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

/* Poll until min completions are there, or fio's timeout passed (the
 * clock is read only every 64 passes, and only when there is one). */
static int __attribute__((noinline)) wait_events(struct uthread *ut, unsigned min)
{
	const struct timespec *t = ut->timeout;
	struct timespec start;
	uint64_t limit = 0;

	if (ut->mode != UFIO_POLL &&
	    (ut->epfd >= 0 || (ut->one && upcie_nvme_qpair_fd(ut->one->qp) >= 0)))
		return sleep_events(ut, min);

	for (unsigned spin = 0; ut->ev_n < min; spin++) {
		int rc = poll_all(ut);

		if (rc)
			return rc;
		if (t && (spin & 63) == 63) {
			if (!limit) {
				clock_gettime(CLOCK_MONOTONIC, &start);
				limit =
				    (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec + 1;
			} else if (ns_since(&start) >= limit) {
				break;
			}
		}
	}
	return 0;
}

/* Poll once, more until min completions are there, hand fio up to max. */
static int __attribute__((noinline)) reap(struct uthread *ut, unsigned min, unsigned max)
{
	int rc = poll_all(ut);

	if (!rc && ut->ev_n < min)
		rc = wait_events(ut, min);
	if (fio_unlikely(rc)) {
		ut->ev_given = 0;
		return rc;
	}
	ut->ev_given = ut->ev_n < max ? ut->ev_n : max;
	return (int)ut->ev_given;
}

/* Fewer than max are waiting from base on: they move to the front, the
 * poll fills in behind. */
static int __attribute__((noinline))
reap_more(struct uthread *ut, unsigned base, unsigned min, unsigned max)
{
	ut->ev_n -= base;
	memmove(ut->ev, ut->ev + base, ut->ev_n * sizeof(*ut->ev));
	ut->ev_base = 0;
	return reap(ut, min, max);
}

/*
 * Hand fio between min and max completions. Those it took with the last
 * call are done with; completions reaped then and not handed over come
 * first, without a poll when there are max of them. Otherwise one poll
 * (reaping many), and more only until min are there.
 */
static int ufio_getevents(struct thread_data *td, unsigned int min, unsigned int max,
			  const struct timespec *t)
{
	struct uthread *ut = td->io_ops_data;
	unsigned base = ut->ev_base + ut->ev_given;

	ut->timeout = t; /* for wait_events(): one store, not a register kept */
	if (base == ut->ev_n) {
		ut->ev_base = ut->ev_n = 0;
		return reap(ut, min, max);
	}
	if (ut->ev_n - base >= max) {
		ut->ev_base = base;
		ut->ev_given = max;
		return (int)max;
	}
	return reap_more(ut, base, min, max);
}

static struct io_u *ufio_event(struct thread_data *td, int event)
{
	struct uthread *ut = td->io_ops_data;

	return ut->ev[ut->ev_base + (unsigned)event];
}

static void ufio_cleanup(struct thread_data *td)
{
	struct uthread *ut = td->io_ops_data;
	const struct ufio_options *o = td->eo;

	unsigned stepped = 0, ctx_uses = 0;

	if (!ut)
		return;
	/* Deleting a queue pair with commands in flight (a job that failed)
	 * completes them through io_done: into an empty array, which has room
	 * for all of them. */
	ut->ev_base = ut->ev_given = ut->ev_n = 0;
	while (ut->files) {
		struct ufile *uf = ut->files;

		ut->files = uf->next;
		if (uf->qp && o->wait_stats) {
			struct upcie_nvme_qpair_wait_stats ws;

			upcie_nvme_qpair_wait_stats(uf->qp, &ws);
			/* On stderr: fio's own output may be JSON. */
			log_err("upcie-fio: %s: waits %llu, sleeps %llu, wake-ups %llu (%llu "
				"empty), spin hits %llu\n",
				uf->dev, (unsigned long long)ws.waits,
				(unsigned long long)ws.sleeps, (unsigned long long)ws.wakeups,
				(unsigned long long)ws.empty, (unsigned long long)ws.spin_hits);
		}
		if (uf->qp && upcie_nvme_qpair_destroy(uf->qp))
			log_err("upcie-fio: %s: deleting the queue pair: %s\n", uf->dev,
				upcie_errmsg());
		upcie_nvme_ctrl_put(uf->ctrl);
		stepped += uf->sim != NULL;
		ctx_uses += uf->in_ctx;
		free(uf);
	}
	upcie_nvme_ctrl_put(ut->mem_ctrl);
	while (ctx_uses--)
		engine_ctx_put();
	/* After every reference this thread held on a controller that runs on
	 * the model. */
	while (stepped--)
		stepped_put();
	if (ut->epfd >= 0)
		close(ut->epfd);
	free(ut->open);
	free(ut->ev);
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
