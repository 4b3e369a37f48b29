/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulated NVMe controller: internal state (not installed)
 *
 * The model is split by concern:
 *   sim.c        create/destroy, config checks, faults, counters, thread
 *   sim_ctrl.c   registers, the CC/CSTS state machine, doorbells, queues, stepping
 *   sim_cqe.c    CQE posting, and the CQE faults (duplicate, stale, foreign)
 *   sim_prp.c    the table of registered DMA ranges and the PRP walker
 *   sim_admin.c  admin command set
 *   sim_nvm.c    NVM command set against the namespace memory
 *   sim_hold.c   held commands, Abort, Asynchronous Events
 *   backend.c    the "sim" PCI backend (BAR, config space, DMA map, idle)
 *
 * Everything below runs under sim->lock: upcie_sim_step() takes it, and so do
 * the backend's DMA map/unmap and config space accesses. The bus address of
 * host memory is its virtual address, so the model reads and writes host
 * memory directly, but only after checking it lies in a registered range.
 */
#ifndef UPCIE_LIB_SIM_PRIV_H
#define UPCIE_LIB_SIM_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upcie/nvme_spec.h>
#include <upcie/sim.h>

#define SIM_HIDDEN __attribute__((visibility("hidden")))

#define SIM_CFG_SIZE  4096
#define SIM_BAR_MIN   (16 * 1024)
#define SIM_MPSMAX    4	     /* CAP.MPSMAX: pages up to 64 KiB */
#define SIM_ERRLOG_NR 4	     /* Identify ELPE + 1 */
#define SIM_AER_MAX   4	     /* Identify AERL + 1 */
#define SIM_HELD_MAX  64     /* I/O commands held by UPCIE_SIM_FAULT_HOLD */
#define SIM_ACL	      3	     /* Identify ACL, 0's based */
#define SIM_VID	      0x1e5f /* made-up PCI vendor id of the model */
#define SIM_DID	      0x5153 /* made-up PCI device id */
#define SIM_SQES      6	     /* 64-byte SQEs */
#define SIM_CQES      4	     /* 16-byte CQEs */
#define SIM_CQ_HIST   17     /* CQEs kept per CQ: the one just posted and 16 back (STALE_CQE) */
#define SIM_PCI_BME   0x4    /* PCI COMMAND: Bus Master Enable */

/* Pause inside a spin loop. */
static inline void sim_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#else
	__asm__ volatile("" ::: "memory");
#endif
}

struct sim_range {
	uint64_t start;
	uint64_t end; /* exclusive */
};

/* Longest Get Log Page transfer when MDTS is 0 (no limit): the logs are a
 * few KiB; the rest would be zeros. The library's own limit for such a
 * controller is the same 1 MiB. */
#define SIM_LOG_MAX_XFER (1u << 20)

struct sim_sq {
	uint8_t *base;	  /* host memory, size * 64 bytes */
	uint32_t size;	  /* entries */
	uint32_t head;	  /* next entry the model fetches */
	uint32_t tail;	  /* last tail value accepted from the host */
	uint32_t db_seen; /* last value read from the MMIO doorbell */
	uint32_t ei_seen; /* last value written to the EventIdx page */
	uint32_t sh_seen; /* last value read from the shadow doorbell */
	uint16_t cqid;
	bool live;
	bool dead; /* its memory was unregistered while the queue lived */
};

struct sim_cq {
	uint8_t *base; /* host memory, size * 16 bytes */
	uint32_t size;
	uint32_t head; /* last head value accepted from the host */
	uint32_t tail; /* next entry the model posts */
	uint32_t db_seen;
	uint32_t ei_seen;
	uint32_t sh_seen;
	uint16_t phase;	 /* phase tag of the next posted entry */
	uint16_t nr_sqs; /* SQs completing into this CQ */
	bool live;
	bool dead;
	bool ien;    /* interrupts enabled (Create I/O CQ IEN; the admin CQ: always) */
	uint16_t iv; /* its interrupt vector */
	/* The last SIM_CQ_HIST entries posted (I/O CQs), in sim->cq_hist. */
	uint8_t hist_n;	  /* how many are valid */
	uint8_t hist_pos; /* slot the next one goes to */
};

/* One interrupt vector (sim_irq.c). */
struct sim_vec {
	uint32_t pending;  /* entries posted since it last signalled (coalescing) */
	uint64_t first_ns; /* when the first of them was posted */
	uint64_t raised;   /* interrupts signalled */
	bool cd;	   /* coalescing disabled (feature 09h) */
};

/* LBA formats of a namespace (sim.h): these metadata sizes, and the
 * configured one when it is none of them. */
#define SIM_LBAF_MAX 5
#define SIM_MS_MAX   256 /* largest metadata size a namespace may have */

struct sim_ns {
	uint8_t *data;
	size_t len;
	uint32_t lba_size;
	uint32_t lba_shift;
	uint64_t nlbas;
	/* Metadata: md_stride bytes reserved per block (the largest ms of its
	 * formats), ms of them in use; uncor: one bit per block written
	 * uncorrectable (Write Uncorrectable), nr_uncor of them set. */
	uint8_t *md;
	size_t md_len;
	uint32_t md_stride;
	uint8_t *uncor;
	size_t uncor_len;
	uint64_t nr_uncor;
	/* One bit per block whose metadata was written since it was last
	 * deallocated or formatted (uncor_len bytes too): the others read
	 * zeros with the PI all FFh, the escape that turns checks off, as
	 * QEMU's controller does. */
	uint8_t *written;
	uint16_t lbaf_ms[SIM_LBAF_MAX];
	bool lbaf_guard64[SIM_LBAF_MAX]; /* the format's PI has the 64-bit guard (ELBAF PIF 2) */
	uint8_t nlbaf;			 /* formats in lbaf_ms */
	uint8_t fmt;			 /* the one in use */
	uint16_t ms;
	uint8_t pi;    /* 0, 1, 2, 3 */
	bool extended; /* metadata interleaved with the data */
	bool pi_first; /* PI in the first metadata bytes */
	bool guard64;  /* the format in use has the 64-bit guard: 16-byte PI */
};

struct upcie_sim {
	struct upcie_sim_config cfg;
	bool md_sgl; /* Identify SGLS bit 19 (upcie_sim_set_md_sgl) */
	pthread_mutex_t lock;

	/* BAR0: registers and doorbells in ordinary memory. */
	uint8_t *bar;
	size_t bar_len;
	uint32_t db_stride; /* 4 << DSTRD */
	uint64_t cap;	    /* what CAP reads */
	uint64_t cap_cfg;   /* CAP as configured (UPCIE_SIM_BAD_ID_MQES0 changes cap) */
	uint32_t vs;
	uint8_t cfgspace[SIM_CFG_SIZE];
	uint8_t cfg_wmask[64]; /* writable bits of the header's first 64 bytes */

	/* Controller state. */
	uint32_t cc;	     /* last CC value seen */
	uint32_t csts;	     /* what CSTS reads */
	bool enabled;	     /* CC.EN seen 1 */
	bool en_pending;     /* CC.EN went 1, RDY not yet decided */
	bool ready;	     /* CSTS.RDY */
	bool shn_done;	     /* the current CC.SHN request was handled */
	size_t page_size;    /* from CC.MPS at enable */
	uint64_t mdts_bytes; /* 0: no limit */

	/* Queues, indexed by qid 0..max_ioqpairs. */
	uint32_t nr_qids;
	struct sim_sq *sqs;
	struct sim_cq *cqs;
	uint16_t *live_sqs; /* I/O SQ ids in creation order */
	uint32_t nr_live_sqs;
	uint16_t *live_cqs;
	uint32_t nr_live_cqs;
	struct upcie_nvme_cqe *cq_hist; /* SIM_CQ_HIST per qid, phase bit clear */
	uint32_t rr_last;		/* bounded steps: the SQ served last */
	uint32_t nsqa, ncqa;		/* granted by Number of Queues */
	bool qs_created;		/* an I/O queue was created since the reset */
	bool vwc_on;
	uint32_t aer_held;

	/* Doorbell Buffer Config. */
	bool dbbuf_on;
	bool dbbuf_dead;
	uint8_t *shadow;
	uint8_t *eventidx;

	/* Registered DMA ranges. */
	struct sim_range *ranges;
	size_t nr_ranges;
	size_t cap_ranges;
	size_t last_hit;

	struct sim_ns ns[UPCIE_SIM_MAX_NS];

	/* Faults. */
	bool f_rdy_never;
	bool f_shn_never;
	bool removed;
	uint32_t drop_left;
	uint32_t nth_left;
	uint16_t nth_status;
	uint32_t hold_left; /* I/O commands to fetch and hold */
	bool f_abort_lost;  /* Abort commands get no completion */
	bool f_delete_sq_refused;
	uint32_t dup_left;	/* I/O completions to post twice */
	uint32_t stale_back;	/* at the next I/O completion, re-post this far back */
	uint32_t foreign_left;	/* I/O completions to post with another SQ id */
	bool aopc_on;		/* UPCIE_SIM_FAULT_ADMIN_OPC armed */
	uint8_t aopc;		/* its opcode */
	uint16_t aopc_status;	/* 0: lost */
	uint32_t bad_id;	/* 1 << enum upcie_sim_bad_id, or'ed */
	uint64_t extra_skipped; /* duplicate / stale posts a full CQ had no room for */

	/* Held I/O commands (fetched, not run) and held event requests. */
	struct sim_held {
		struct upcie_nvme_sqe sqe;
		uint16_t sqid;
	} held[SIM_HELD_MAX];
	uint32_t nr_held;
	uint16_t aer_cids[SIM_AER_MAX];
	uint32_t aer_pending[8]; /* events waiting for a request (dw0 values) */
	uint32_t nr_aer_pending;
	uint32_t nr_ns_created;
	/* Changed Namespace List (log 04h): nsids attached or detached since
	 * the host last read it; more than 1024 reads as FFFFFFFFh. */
	uint32_t changed_ns[1024];
	uint32_t nr_changed_ns;

	/* Interrupts (sim_irq.c): nr_vec vectors (one per queue id); irq_fds is
	 * the backend's, NULL while the host has them off. */
	const int *irq_fds;
	uint32_t nr_vec;
	struct sim_vec *vecs;
	uint32_t irq_waiting; /* vectors with coalesced entries pending */
	uint8_t aggr_thr;     /* feature 08h: THR (0's based) */
	uint8_t aggr_time;    /* feature 08h: TIME, 100 us units */
	uint32_t irq_lost_left;
	int gone_fd; /* the backend's: written when the device is removed, or -1 */

	/* Every data transfer to or from host memory (upcie_sim_set_dma_hook). */
	upcie_sim_dma_hook dma_hook;
	void *dma_hook_arg;

	/* Counters and logs. */
	struct upcie_sim_stats st;
	uint64_t units_read; /* 512-byte units */
	uint64_t units_written;
	uint64_t host_reads;
	uint64_t host_writes;
	uint64_t err_count;
	struct upcie_nvme_error_log errlog[SIM_ERRLOG_NR]; /* newest first */

	/* Metadata commands stage data and metadata here (sim_md.c); it grows
	 * to the largest transfer seen, and is freed at destroy. */
	uint8_t *bounce;
	size_t bounce_len;
	uint64_t err_lba; /* the failing LBA of the command being run, if err_lba_set */
	bool err_lba_set;
	uint16_t oncs_off; /* UPCIE_SIM_FAULT_ONCS_OFF */

	/* Command scratch (Identify, log pages, DSM ranges): no per-command allocation. */
	_Alignas(64) uint8_t scratch[4096];

	/* Thread. */
	pthread_t thread;
	bool thread_on;
	int stop;
	int waiters; /* callers blocked on the lock: the thread lets them in */
};

/*
 * Take the model's lock from an API call. The stepping thread re-takes the
 * lock right after dropping it, so a plain mutex could starve other threads;
 * it waits while 'waiters' is non-zero instead.
 */
static inline void sim_lock(struct upcie_sim *sim)
{
	__atomic_add_fetch(&sim->waiters, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_lock(&sim->lock);
	__atomic_sub_fetch(&sim->waiters, 1, __ATOMIC_ACQ_REL);
}

static inline void sim_unlock(struct upcie_sim *sim)
{
	pthread_mutex_unlock(&sim->lock);
}

/* Bus Master Enable (PCI COMMAND bit 2): without it the model moves no
 * data, fetches no command and posts no completion. */
static inline bool sim_bme(const struct upcie_sim *sim)
{
	return (sim->cfgspace[0x04] & SIM_PCI_BME) != 0;
}

/* May the model touch host memory now (fetch, move data, post)? Present,
 * ready, not in fatal status, and bus mastering on: every path that
 * fetches, transfers or posts asks this one question. */
static inline bool sim_can_dma(const struct upcie_sim *sim)
{
	return !sim->removed && sim->ready && !(sim->csts & UPCIE_NVME_CSTS_CFS) && sim_bme(sim);
}

static inline bool sim_bad_id(const struct upcie_sim *sim, enum upcie_sim_bad_id b)
{
	return (sim->bad_id & (1u << b)) != 0;
}

/* Does qid have a shadow doorbell? Only I/O queues whose slots fit in the
 * one-page buffers given by Doorbell Buffer Config. */
static inline bool sim_has_shadow(const struct upcie_sim *sim, uint32_t qid)
{
	return sim->dbbuf_on && qid &&
	       upcie_nvme_cq_db_off(qid, sim->cfg.dstrd) - UPCIE_NVME_REG_DBS + 4 <= sim->page_size;
}

/* The slot of a doorbell (by its BAR offset) in the shadow or EventIdx page. */
static inline volatile uint32_t *sim_shadow_slot(uint8_t *page, uint32_t dboff)
{
	return (volatile uint32_t *)(page + dboff - UPCIE_NVME_REG_DBS);
}

/* What a command handler reports besides its status. */
struct sim_cpl {
	uint32_t dw0;
	bool hold; /* post nothing now (held AER) */
};

/* sim_ctrl.c */
/* Register changes, then at most max commands (UINT32_MAX: all, queue by queue). */
/* max: commands at most, round-robin over the queues; all: no limit, each
 * queue emptied in turn (upcie_sim_step). */
SIM_HIDDEN int upcie_sim_step_locked(struct upcie_sim *sim, uint32_t max, bool all);
/* Register changes only; false when the device is removed. */
SIM_HIDDEN bool upcie_sim_sync_regs(struct upcie_sim *sim);
SIM_HIDDEN void upcie_sim_ctrl_reset(struct upcie_sim *sim);
SIM_HIDDEN void upcie_sim_regs_init(struct upcie_sim *sim);
SIM_HIDDEN void upcie_sim_fill_removed(struct upcie_sim *sim);
SIM_HIDDEN void upcie_sim_check_dead(struct upcie_sim *sim);
SIM_HIDDEN uint32_t upcie_sim_mmio(struct upcie_sim *sim, uint32_t off);
SIM_HIDDEN void upcie_sim_mmio_set(struct upcie_sim *sim, uint32_t off, uint32_t val);
SIM_HIDDEN void upcie_sim_live_add_sq(struct upcie_sim *sim, uint16_t qid);
SIM_HIDDEN void upcie_sim_live_add_cq(struct upcie_sim *sim, uint16_t qid);
SIM_HIDDEN void upcie_sim_live_del_sq(struct upcie_sim *sim, uint16_t qid);
SIM_HIDDEN void upcie_sim_live_del_cq(struct upcie_sim *sim, uint16_t qid);

/* sim_cqe.c */
/* Post a completion on the CQ of sqid; the caller checked that one entry
 * fits. I/O CQs get the CQE faults. */
SIM_HIDDEN void upcie_sim_complete(struct upcie_sim *sim, uint16_t sqid, uint16_t sqhd,
				   uint16_t cid, uint16_t status, uint32_t dw0);
/* The same, if the SQ and its CQ still live, the controller is ready, bus
 * mastering is on and the CQ has room; else the completion is lost. */
SIM_HIDDEN void upcie_sim_post(struct upcie_sim *sim, uint16_t sqid, uint16_t cid, uint16_t status,
			       uint32_t dw0);
SIM_HIDDEN bool upcie_sim_cq_full(const struct sim_cq *cq);
SIM_HIDDEN uint16_t upcie_sim_run_io(struct upcie_sim *sim, uint16_t sqid,
				     const struct upcie_nvme_sqe *sqe, struct sim_cpl *cpl);

/* sim_hold.c: held commands, Abort, events */
SIM_HIDDEN bool upcie_sim_hold(struct upcie_sim *sim, uint16_t sqid,
			       const struct upcie_nvme_sqe *sqe);
SIM_HIDDEN uint16_t upcie_sim_abort(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
				    struct sim_cpl *cpl);
SIM_HIDDEN void upcie_sim_held_sq_deleted(struct upcie_sim *sim, uint16_t sqid);
SIM_HIDDEN uint16_t upcie_sim_aer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
				  struct sim_cpl *cpl);
/* Complete held event requests with events raised while they could not post. */
SIM_HIDDEN void upcie_sim_aer_flush(struct upcie_sim *sim);

/* sim_prp.c */
SIM_HIDDEN bool upcie_sim_dma_ok(struct upcie_sim *sim, uint64_t addr, uint64_t len);
SIM_HIDDEN int upcie_sim_dma_add(struct upcie_sim *sim, uint64_t addr, uint64_t len);
SIM_HIDDEN int upcie_sim_dma_del(struct upcie_sim *sim, uint64_t addr, uint64_t len);
/* Move len bytes between buf and the PRPs of a command. Towards the host,
 * bytes past 'avail' read as zeros. Returns a status. */
SIM_HIDDEN uint16_t upcie_sim_prp_xfer(struct upcie_sim *sim, uint64_t prp1, uint64_t prp2,
				       uint8_t *buf, size_t len, size_t avail, bool to_host);

/* Move n bytes between buf + off and host memory at addr (registered). */
SIM_HIDDEN uint16_t upcie_sim_mem_xfer(struct upcie_sim *sim, uint64_t addr, uint8_t *buf,
				       size_t off, size_t n, size_t avail, bool to_host);
/* sim_sgl.c: the data pointer of an NVM command, PRPs or (PSDT 01b, 10b)
 * an SGL. */
SIM_HIDDEN uint16_t upcie_sim_data_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
					uint8_t *buf, size_t len, size_t avail, bool to_host);
/* The separate metadata of an NVM command, len bytes: MPTR one address, or
 * with PSDT 10b the metadata SGL MPTR points at. move false: only check
 * the metadata SGL (0 for a plain MPTR). Returns a status. */
SIM_HIDDEN uint16_t upcie_sim_md_xfer(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
				      uint8_t *buf, size_t len, bool to_host, bool move);

/* sim_admin.c */
SIM_HIDDEN uint16_t upcie_sim_admin(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
				    struct sim_cpl *cpl);

/* sim_nvm.c */
SIM_HIDDEN uint16_t upcie_sim_nvm(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
				  struct sim_cpl *cpl);
SIM_HIDDEN void upcie_sim_zero(uint8_t *base, uint64_t off, uint64_t len);
/* The optional commands the model offers now (Identify ONCS). */
SIM_HIDDEN uint16_t upcie_sim_oncs(const struct upcie_sim *sim);

/* sim_md.c: blocks with metadata and protection information */
/* Zero blocks [slba, slba + nlb): data, metadata, uncorrectable marks. */
SIM_HIDDEN void upcie_sim_blocks_zero(struct sim_ns *ns, uint64_t slba, uint64_t nlb);
/* Read, Write and Compare on a namespace with metadata, or any one with
 * blocks marked uncorrectable. */
SIM_HIDDEN uint16_t upcie_sim_md_rw(struct upcie_sim *sim, struct sim_ns *ns,
				    const struct upcie_nvme_sqe *sqe);
SIM_HIDDEN uint16_t upcie_sim_verify(struct upcie_sim *sim, struct sim_ns *ns,
				     const struct upcie_nvme_sqe *sqe);
SIM_HIDDEN uint16_t upcie_sim_write_uncor(struct upcie_sim *sim, struct sim_ns *ns,
					  const struct upcie_nvme_sqe *sqe);
SIM_HIDDEN uint16_t upcie_sim_write_zeroes(struct upcie_sim *sim, struct sim_ns *ns,
					   const struct upcie_nvme_sqe *sqe);
SIM_HIDDEN uint16_t upcie_sim_copy(struct upcie_sim *sim, struct sim_ns *ns,
				   const struct upcie_nvme_sqe *sqe);
/* Set a namespace's format (create, Format NVM); a status. */
SIM_HIDDEN uint16_t upcie_sim_ns_format(struct sim_ns *ns, uint32_t lbaf, bool extended, uint8_t pi,
					bool pi_first);
/* Copy limits (Identify Namespace MSSRL, MCL, MSRC + 1). */
#define SIM_COPY_MSSRL 256
#define SIM_COPY_MCL   1024
#define SIM_COPY_MSRC  100 /* 100 format 1 ranges (40 bytes) fit the 4 KiB scratch */
/* Most bytes a command with metadata stages (with MDTS 0, no limit, a
 * larger one fails with Invalid Field): a model limit. */
#define SIM_STAGE_MAX (64u << 20)

/* sim_irq.c */
SIM_HIDDEN void upcie_sim_irq_raise(struct upcie_sim *sim, uint32_t vec);
/* An entry was posted on cqid: signal (or count, coalescing) its vector. */
SIM_HIDDEN void upcie_sim_irq_post(struct upcie_sim *sim, uint16_t cqid);
/* Coalescing time: signal vectors whose first pending entry is old enough. */
SIM_HIDDEN void upcie_sim_irq_tick(struct upcie_sim *sim);
SIM_HIDDEN void upcie_sim_irq_reset(struct upcie_sim *sim);
/* The backend's eventfds (NULL: interrupts off); takes the lock. */
SIM_HIDDEN void upcie_sim_irq_attach(struct upcie_sim *sim, const int *fds);
/* Get or Set Features 08h / 09h. */
SIM_HIDDEN uint16_t upcie_sim_irq_feature(struct upcie_sim *sim, const struct upcie_nvme_sqe *sqe,
					  bool set, uint32_t *dw0);

/* backend.c needs these from sim.c */
SIM_HIDDEN void upcie_sim_cfg_init(struct upcie_sim *sim);
/* CAP as it reads from the next reset or enable on (UPCIE_SIM_BAD_ID_MQES0). */
SIM_HIDDEN void upcie_sim_cap_update(struct upcie_sim *sim);

#endif
