/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The explorer: one seeded PRNG drives the real library against the
 * stepped sim, one action per step, and the invariants are checked after
 * every step. Shared state of explore.c (runner, invariants), oracle.c
 * (buffers, DMA hook, data oracle), actions.c (what a step does, the
 * callbacks) and irq.c (interrupts: waits, arms, the system calls a wait
 * makes, and the invariants of interrupts).
 */
#ifndef UPCIE_TESTS_EXPLORE_H
#define UPCIE_TESTS_EXPLORE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upcie/sim.h>
#include <upcie/upcie.h>

#include "xrng.h"

#define X_QPAIRS      3	  /* qpair slots */
#define X_VECTORS     5	  /* the model's MSI-X vectors: admin + max_ioqpairs (4) */
#define X_NS	      2	  /* namespaces 1 (512 B blocks) and 2 (4 KiB) */
#define X_BLOCKS      48  /* blocks used per namespace: small, so I/O overlaps */
#define X_MAX_NLB     8	  /* blocks per command */
#define X_SLOTS	      160 /* buffers the explorer keeps (never given back until the end) */
#define X_QUAR	      48  /* steps a freed buffer rests before reuse */
#define X_ENTRIES     24  /* oracle: candidate values per block */
#define X_TRACE	      64  /* trace lines kept */
#define X_TRACE_SHOWN 30  /* trace lines printed on a failure */
#define X_INF	      UINT64_MAX
#define X_REGS	      2		  /* registered regions (upcie_dma_register) */
#define X_REG_BYTES   (64u << 10) /* each */

/* Features a run may leave out (--no a,b): to find which defect needs what. */
enum xfeature {
	XF_RETRY = 1u << 0,   /* resubmit from completion callbacks */
	XF_CBRESET = 1u << 1, /* reset from completion callbacks */
	XF_DROP = 1u << 2,    /* faults, one bit each */
	XF_NTH = 1u << 3,
	XF_HOLD = 1u << 4,
	XF_ABORTLOST = 1u << 5,
	XF_DELREFUSED = 1u << 6,
	XF_CFS = 1u << 7,
	XF_DUP = 1u << 8,
	XF_STALE = 1u << 9,
	XF_FOREIGN = 1u << 10,
	XF_ADMINOPC = 1u << 11,
	XF_REMOVED = 1u << 12,
	XF_RESET = 1u << 13,	  /* resets the explorer asks for (action) */
	XF_NS = 1u << 14,	  /* namespace attach / detach */
	XF_DESTROY = 1u << 15,	  /* qpair destroy and create */
	XF_DBBUFFAIL = 1u << 16,  /* ADMIN_OPC on Doorbell Buffer Config */
	XF_RETRYABORT = 1u << 17, /* resubmit what an Abort ended (retry: what a reset ended) */
	XF_IRQ = 1u << 18,	  /* interrupt queues, wait and arm */
	XF_IRQLOST = 1u << 19,	  /* IRQ_LOST faults */
	XF_IRQSPUR = 1u << 20,	  /* IRQ_SPURIOUS faults */
	XF_COALESCE = 1u << 21,	  /* interrupt coalescing (controller options) */
	XF_MEANWHILE = 1u << 22,  /* the device and other threads act inside a wait */
	XF_PI = 1u << 23,	  /* namespace 2 formatted with protection information */
	XF_REG = 1u << 24,	  /* buffers in registered memory, register / unregister */
	XF_PEER = 1u << 25,	  /* a second controller in the DMA context (peer.c) */
	XF_MDSGL = 1u << 26,	  /* PI from metadata buffers in pieces: metadata SGLs (md.c) */
};

enum xkind { X_READ = 1, X_WRITE, X_ADMIN };
enum xstate { X_FREE = 0, X_LIVE, X_DONE };

struct xcmd {
	uint8_t kind;
	uint8_t state;
	uint8_t q;     /* qpair slot (I/O) */
	uint8_t check; /* read: bit i = block i may be checked */
	bool zombie;   /* its qpair became a zombie (destroy -EBUSY) */
	uint16_t cid;
	uint16_t status;
	uint32_t nsid;
	uint32_t nlb;
	uint32_t lba_size;
	uint32_t slot; /* buffer slot + 1, 0: none */
	uint64_t slba;
	uint64_t sub_seq;
	uint64_t done_step;
	uint32_t parent; /* resubmitted from this command's callback, 0: none */
	bool md;	 /* its PI crosses the bus, from its slot's metadata buffer (md.c) */
	uint16_t md_ms;	 /* metadata bytes per block then */
	uint32_t md_ref; /* and its first reference tag */
};

struct xslot {
	uint8_t *buf;
	size_t size;
	uint32_t owner;	   /* live command, 0: free */
	uint32_t last;	   /* last owner */
	uint64_t freed_at; /* step */
	uint8_t reg;	   /* in registered region reg - 1; 0: heap memory */
};

/* A region of the explorer's own memory, registered with the heap while on. */
struct xreg {
	uint8_t *mem;
	size_t used; /* carved into slots, from the start */
	bool on;
};

struct xentry {
	uint64_t token; /* 0: the initial all-zero block */
	uint64_t sub;	/* submit sequence */
	uint64_t cpl;	/* completion sequence, X_INF while in flight */
	bool ok;
};

struct xblock {
	uint32_t pending;   /* writes in flight */
	uint64_t last_wsub; /* sequence of the last write submitted */
	uint32_t n;
	struct xentry e[X_ENTRIES];
};

struct xq {
	struct upcie_nvme_qpair *qp;
	uint32_t live; /* commands the explorer counts outstanding on it */
	uint32_t depth;
	bool busy_destroy; /* being destroyed: callbacks do nothing to it */
	bool tcb;	   /* has a timeout callback */
	/* Interrupts (irq.c). Armed: its last arm (or wait that slept)
	 * returned 0, so its fd must turn readable when there is something
	 * for it (i); what was true then: */
	bool irq;
	bool armed;
	bool arm_lost;	     /* an IRQ_LOST fault may have dropped its interrupt since */
	uint64_t arm_raised; /* interrupts the model had signalled on its vector */
	uint32_t arm_gen;    /* the controller's generation */
	bool arm_removed;    /* the device was already gone */
};

struct xstate_s {
	/* Run. */
	uint64_t seed;
	struct xrng rng;
	uint64_t step, steps;
	uint64_t seq;
	bool verbose;
	uint32_t off; /* enum xfeature bits left out */
	uint8_t pi;   /* namespace 2's PI type (0: none), from the seed */
	bool md_sgl;  /* the model offers metadata SGLs, namespace 2 separate metadata */

	/* Failure. */
	bool failed;
	char why[512];
	uint64_t fail_step;
	jmp_buf hang;
	bool hang_armed;

	/* Virtual clock and call bounds. vsub_ns: the part of a virtual
	 * millisecond that CLOCK_MONOTONIC reads have used up (irq.c). */
	uint64_t vnow;
	uint64_t vsub_ns;
	bool vtime; /* a seed runs: clock_gettime and epoll_wait are virtual */
	uint32_t per_call;
	int call_depth;
	uint64_t call_start;
	const char *call_name;
	uint64_t bound_ms; /* (d) */
	uint64_t hang_ms;  /* give up: the call does not end */
	uint64_t max_call_ms;

	/* Device and library. ctx: the DMA context the device is opened into
	 * (NULL with --no peer); the heap is the context's. */
	struct upcie_dma_ctx *ctx;
	struct upcie_sim *sim;
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	struct upcie_nvme_ctrl_opts copts;
	uint32_t cap_to_ms;
	struct xq q[X_QPAIRS];
	bool removed;
	bool closing;  /* drain / close: callbacks act no more */
	int cb_depth;  /* callbacks running */
	int cb_resets; /* resets called from callbacks during this step */
	uint32_t nr_active_ns;
	bool dbbuf;

	/* Commands, by id (1-based index). */
	struct xcmd *cmds;
	uint32_t ncmds, cap_cmds;
	uint32_t live_total;

	/* Buffers. */
	struct xslot slots[X_SLOTS];
	uint32_t nslots;
	uint32_t nheap_slots; /* those from the heap */
	struct xreg reg[X_REGS];
	void *admin_buf; /* sync admin data: kept until the end */

	/* Oracle. */
	struct xblock blk[X_NS][X_BLOCKS];

	/* Trace. */
	char trace[X_TRACE][160];
	uint64_t ntrace;

	/* (h): a command whose timeout the explorer answered with ABORT, and
	 * the window after it ended (by the device) without a reset. */
	uint32_t expiring;
	uint32_t exp_gen;
	uint32_t win_cmd;
	uint32_t win_gen;
	uint64_t win_cbresets;

	/* Interrupts (irq.c): the queue an explorer wait or arm runs on (+1, 0:
	 * none), what happened meanwhile in this call, open fds (k). */
	unsigned irq_qi;
	bool in_meanwhile;
	uint32_t meanwhile_left;
	int fd_start, fd_before_open, fd_after_open;

	/* Counters for the report. */
	uint64_t n_io, n_resets_seen, n_faults, n_cb_resubmits, n_cb_resets, n_timeouts;
	uint64_t n_waits, n_arms, n_sleeps, n_woken, n_meanwhile;
	uint64_t n_reg_io, n_unreg_busy, n_reg_toggles;
	uint64_t n_md_io;
};

extern struct xstate_s X;

/* explore.c */
uint64_t x_rnd(void);
uint32_t x_below(uint32_t n);
bool x_chance(uint32_t per_mille);
void x_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void x_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void x_call_begin(const char *name);
void x_call_end(void);
void x_time_passes(uint64_t ms);
struct xcmd *x_cmd(uint32_t id);
uint32_t x_cmd_new(uint8_t kind);
void x_fill_write(struct xcmd *c, uint32_t id);
bool x_write_intact(struct xcmd *c, uint32_t id);
bool x_oracle_room(uint32_t nsid, uint64_t slba, uint32_t nlb);
void x_oracle_submit(struct xcmd *c, uint32_t id);
void x_oracle_complete(struct xcmd *c, uint32_t id);
int x_slot_get(size_t size);
void x_slot_put(uint32_t slot);
void x_dma_hook(void *arg, uint64_t bus, size_t len, bool to_host);

/* actions.c */
void x_step(void);
void x_io_cb(void *arg, const struct upcie_nvme_cqe *cqe);
int x_submit_io(unsigned qi, uint8_t kind, uint32_t nsid, uint64_t slba, uint32_t nlb,
		uint32_t parent, bool from_cb);
void x_qpair_create(unsigned qi);
void x_qpair_destroy(unsigned qi);
void x_check_counts(void);
void x_poll(unsigned qi, uint32_t times);
void x_window_close(void);

/* md.c: metadata buffers in pieces (metadata SGLs) */
uint8_t *x_md_buf(uint32_t slot);
void x_md_setup(void);
void x_md_teardown(void);
void x_md_hook(uint64_t bus, size_t len, bool to_host);
void x_md_read_done(const struct xcmd *c, uint32_t id);

/* peer.c: a second controller in the DMA context */
void x_peer_setup(void);
void x_peer_step(void);
void x_peer_check(void);
void x_peer_finish(void);
void x_peer_teardown(void);
void x_peer_report(void);
int x_peer_fds(void);
unsigned x_peer_allocs(void);

/* irq.c */
int x_fd_count(void);
void x_irq_wait(unsigned qi);
void x_irq_arm(unsigned qi);
void x_irq_lost_injected(void);
void x_irq_check_all(void);
void x_irq_check_fds(const char *after);

#endif
