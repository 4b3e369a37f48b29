/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The queue layer: one submission queue and its completion queue, as the
 * hot path sees them. Read top to bottom, this is the whole life of a
 * command: claim a CID, write the SQE, move the tail, ring the SQ
 * doorbell; see a new phase, read the CQE, give the CID back, call back,
 * ring the CQ doorbell.
 *
 * This layer knows nothing of admin commands or of the controller: the
 * controller layer above plugs into it through 'poke' and 'gen' (its state
 * changed: the queue must be recovered) and the 'slow' hook (health,
 * timeouts, recovery), both reached only off the hot path.
 *
 * Hot-path rules (docs/design.md): no MMIO reads, no syscalls, no locks,
 * no allocation; one SQ doorbell write per ring, one CQ doorbell write per
 * poll call that reaped anything (with lazy_cq: per ring that had new
 * commands instead).
 */
#ifndef UPCIE_LIB_NVME_QUEUE_H
#define UPCIE_LIB_NVME_QUEUE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <upcie/nvme.h>
#include <upcie/pci.h> /* MMIO accessors */

#include "core/compiler.h"
#include "dma/heap.h"

/* Empty poll calls, and completions, between two looks at the clock
 * (powers of two). A completion is worth less: a busy queue is seldom
 * the one whose command is late, and the look costs about 80
 * instructions. */
#define UPCIE_NVME_TICK_POLLS	    256u
#define UPCIE_NVME_TICK_COMPLETIONS 1024u

/*
 * Per-command state, indexed by CID slot (the CID's low bits, see
 * cid_mask). A CID carries a generation in its high bits: each time a slot
 * is given back, the CID it will be claimed with next moves on by one
 * generation (cid_gen), so a completion for a slot's earlier command (a
 * stale or duplicate CQE) does not match the command now in it.
 *
 * 'expect' is the slot's state and what a completion for it must carry,
 * in one word: a CQE's SQ id and CID as the CQE has them (SQ id in bits
 * 0-15, CID in bits 16-31) while the command is outstanding, and nothing
 * else set while it is young; UPCIE_NVME_REQ_IDLE when the slot is free.
 * Above the key: abandoned (a sync wait gave up: the completion frees the
 * slot, no callback), expired (timed out, recovery started) and its age in
 * ticks (counted by the timeout scan). A CQE of a live, young command
 * matches in one compare; anything else (an aged or abandoned command, a
 * stale, duplicate or foreign completion) goes to the cold path.
 */
#define UPCIE_NVME_REQ_KEY	 0xffffffffull
#define UPCIE_NVME_REQ_IDLE	 (1ull << 32)
#define UPCIE_NVME_REQ_ABANDONED (1ull << 33)
#define UPCIE_NVME_REQ_EXPIRED	 (1ull << 34)
#define UPCIE_NVME_REQ_AGE_SHIFT 40
#define UPCIE_NVME_REQ_AGE_MAX	 ((1u << 24) - 1)

struct upcie_nvme_req {
	upcie_nvme_cb cb;
	void *arg;
	uint64_t expect;
} __attribute__((aligned(32)));

/* The key a CQE carries (its dword 2 high half and dword 3 low half):
 * SQ id | CID << 16. */
static inline uint32_t upcie_nvme_cqe_key(const struct upcie_nvme_cqe *cqe)
{
	uint32_t key;

	/* sqid and cid are adjacent (bytes 10-13, Base spec 4.6): one load,
	 * SQ id low (little-endian only: lib/compiler.h). */
	memcpy(&key, (const char *)cqe + 10, sizeof(key));
	return key;
}

/* The slot is outstanding (maybe abandoned). */
static inline bool upcie_nvme_req_busy(const struct upcie_nvme_req *req)
{
	return !(req->expect & UPCIE_NVME_REQ_IDLE);
}

/* The slot holds the command a completion with this key is for. */
static inline bool upcie_nvme_req_holds(const struct upcie_nvme_req *req, uint64_t key)
{
	return (req->expect & (UPCIE_NVME_REQ_KEY | UPCIE_NVME_REQ_IDLE)) == key;
}

static inline uint32_t upcie_nvme_req_age(const struct upcie_nvme_req *req)
{
	return (uint32_t)(req->expect >> UPCIE_NVME_REQ_AGE_SHIFT);
}

/* The full CID of an outstanding slot's command. */
static inline uint16_t upcie_nvme_req_cid(const struct upcie_nvme_req *req)
{
	return (uint16_t)(req->expect >> 16);
}

/* A completion made or taken by the host, kept until its callback can run
 * (lifecycle, state.c: collected under the lock, delivered after). */
struct upcie_nvme_hcpl {
	upcie_nvme_cb cb;
	void *arg;
	struct upcie_nvme_cqe cqe;
};

struct upcie_nvme_qpair;
/* The controller layer's slow path: called with the queue's state. */
typedef int (*upcie_nvme_queue_slow_fn)(struct upcie_nvme_qpair *qp, bool tick);

struct upcie_nvme_qpair {
	/* Submission side (hot). */
	struct upcie_nvme_sqe *sq;
	volatile uint32_t *sq_db;
	uint16_t sq_tail;
	uint16_t sq_rung; /* tail value last published to the device */
	uint16_t depth;	  /* entries in the SQ (cq_depth: in the CQ) */
	/* nfree and cid_mask are 32-bit (values fit 16) so that indexing with
	 * them needs no zero extension on the hot path. */
	uint32_t nfree;
	uint16_t *free_cids;	     /* full CIDs (slot | generation), depth - 1 */
	struct upcie_nvme_req *reqs; /* cid_mask + 1 slots */
	uint32_t cid_mask;	     /* a CID's slot bits: the power of two >= depth, - 1 */
	uint16_t cid_gen;	     /* one generation: cid_mask + 1 (0 when no bits are left) */
	uint32_t sqid_key;	     /* this SQ's id, as upcie_nvme_cqe_key() has it */
	uint64_t *prp_lists;
	uint32_t prp_slot_entries; /* list entries each CID owns */
	uint32_t page_size;
	uint32_t max_xfer;
	uint32_t tick; /* coarse clock of this queue, in ticks */
	const struct upcie_dma_heap *heap;
	/* The heap's first segment (fixed for the heap's life), copied here so
	 * that the read/write fast path translates without reading the heap. */
	uintptr_t seg_va;
	const uint64_t *seg_bus;
	uint64_t seg_mask;
	unsigned seg_shift;
	uintptr_t seg_fast_max_q; /* a fast-path buffer's largest offset in it, / 4 */
	uintptr_t page_mask;	  /* page_size - 1 */
	uintptr_t two_pages; /* the fast path's largest reach: 2 pages (PRP1 + PRP2), MDTS, or 0 */

	/* Completion side (hot). */
	struct upcie_nvme_cqe *cq;
	volatile uint32_t *cq_db;
	uint32_t cq_head;  /* < cq_depth; 32-bit: no zero extension when it moves */
	uint32_t cq_depth; /* CQ entries (>= depth: the CQ may be larger) */
	uint16_t cq_rung;  /* head value last published to the device */
	uint16_t phase;
	uint8_t poke;		 /* set by another thread (atomically): the owner's state changed */
	uint8_t lazy_cq;	 /* the CQ head goes out with the next SQ ring only */
	uint8_t in_cb;		 /* a completion callback of this queue is running */
	uint32_t polls;		 /* poll calls, for the clock look every TICK_POLLS */
	uint32_t gen;		 /* *gen_src when this queue was last in step with its owner */
	const uint32_t *gen_src; /* read atomically: another thread moves it */

	/* Shadow doorbells (Doorbell Buffer Config), NULL when unused. */
	volatile uint32_t *shadow_sq, *shadow_cq;
	volatile uint32_t *eventidx_sq, *eventidx_cq;

	struct upcie_nvme_qpair_stats stats;

	/* Cold: the slow path and its owner. */
	upcie_nvme_queue_slow_fn slow;
	bool in_slow;			 /* the slow path is running (no re-entry) */
	bool harvesting;		 /* state.c fills or delivers harvest (no re-entry) */
	struct upcie_nvme_hcpl *harvest; /* depth entries, for state.c */
	uint64_t tick_ms;		 /* clock at the last tick */
	uint64_t seen_completed;	 /* stats.completed at the last progress check */
	uint64_t progress_ms;		 /* clock when progress was last seen */
	uint32_t timeout_ticks;		 /* async command timeout; 0: none */
	uint32_t health_ms;		 /* no progress for this long: check health */
	upcie_nvme_timeout_cb tcb;	 /* the embedder's timeout policy, or NULL */
	void *tcb_arg;
	struct upcie_nvme_ctrl *ctrl;
	uint16_t qid;
	uint16_t epoch;	    /* host-side resets: the generation new CIDs start at */
	uint8_t qstate;	    /* lifecycle (state.h): written by state.c only */
	uint32_t tick_step; /* ticks the clock moved at the last tick (>= 1) */
	size_t mem_bytes;
	/* 16-byte SGL descriptors each CID's PRP-list slot holds for a command
	 * with a metadata SGL (PSDT 10b, sgl.c); 0: the queue takes none. Cold:
	 * the hot fields above keep their offsets. */
	uint32_t md_sgl_descs;

	/* Interrupts (irq.c); the fds are -1 on a queue that only polls. */
	int irq_fd;	       /* listener of its vector (pci.h) */
	int wake_fd;	       /* eventfd: a reset or a removal wakes a sleeper */
	int ep_fd;	       /* epoll over irq_fd, wake_fd and the device's gone fd */
	uint16_t irq_vec;      /* its vector (INTx: 0) */
	uint8_t irq;	       /* created with interrupts */
	uint8_t gone_watched;  /* the device's gone fd is in ep_fd */
	uint8_t woken;	       /* wake_fd was written (atomic): arm drains it */
	uint32_t spin_us;      /* hybrid: poll this long after the last completion */
	uint64_t last_done_ns; /* when wait last returned completions */
	struct upcie_nvme_qpair_wait_stats wst;
	struct upcie_nvme_qpair *next; /* controller's list of I/O qpairs */
	/* Commands on registered memory (reg.c): their records, allocated
	 * with the first such command; NULL until then. */
	struct upcie_nvme_reg_pool *reg_pool;
};

/* In step with the owner's state (the owner moves *gen_src from another
 * thread, and pokes after it). */
static inline bool upcie_nvme_queue_in_step(const struct upcie_nvme_qpair *qp)
{
	return qp->gen == __atomic_load_n(qp->gen_src, __ATOMIC_ACQUIRE);
}

/* The request of command cid, or NULL when it is not outstanding (its slot
 * is free, or holds a later command). */
static inline struct upcie_nvme_req *upcie_nvme_queue_req(struct upcie_nvme_qpair *qp, uint16_t cid)
{
	struct upcie_nvme_req *req = &qp->reqs[cid & qp->cid_mask];

	return upcie_nvme_req_holds(req, qp->sqid_key | (uint32_t)cid << 16) ? req : NULL;
}

/* A wait gave up on command cid: if it is still outstanding, its
 * completion frees the slot with no callback. */
static inline void upcie_nvme_queue_abandon(struct upcie_nvme_qpair *qp, uint16_t cid)
{
	struct upcie_nvme_req *req = upcie_nvme_queue_req(qp, cid);

	if (req)
		req->expect |= UPCIE_NVME_REQ_ABANDONED;
}

/*
 * Commands on registered memory (reg.c), off the fast path. A command
 * whose buffer lies in registered regions holds them (upcie_dma_reg_hold)
 * until it ends: its callback is replaced by upcie_nvme_reg_done, whose
 * argument is its record of the caller's callback and the regions.
 * Every way a command ends calls its callback, except an abandoned one
 * and a queue reset: those call upcie_nvme_reg_drop() for the slot.
 */
struct iovec;
#define UPCIE_NVME_REG_MAX 4 /* regions one command may span */
struct upcie_nvme_reg_pool;
struct upcie_nvme_reg_cmd {
	upcie_nvme_cb cb;
	void *arg;
	unsigned n;
	struct upcie_dma_region *r[UPCIE_NVME_REG_MAX];
	struct upcie_nvme_reg_pool *pool;
};
/* A command's record outlives its slot: a completion the lifecycle
 * collects (state.c) is delivered after its CID went back, and a callback
 * before it may submit into the same slot. So records come from a pool of
 * twice the slots: each command outstanding and each collected completion
 * not yet delivered holds one (at most depth - 1 and depth). */
struct upcie_nvme_reg_pool {
	uint32_t nfree;
	uint32_t *free;
	struct upcie_nvme_reg_cmd rec[];
};
HIDDEN void upcie_nvme_reg_done(void *arg, const struct upcie_nvme_cqe *cqe);
/* A buffer beyond the heap's first segment, for the command about to be
 * submitted: hold its regions, and route the completion through
 * upcie_nvme_reg_done (*cb, *arg changed) when there are any. 0, or a
 * negative errno with the message set. */
HIDDEN int upcie_nvme_reg_hold(struct upcie_nvme_qpair *qp, const void *buf, size_t len,
			       upcie_nvme_cb *cb, void **arg);
/* The same for a list of buffers. */
HIDDEN int upcie_nvme_reg_hold_iov(struct upcie_nvme_qpair *qp, const struct iovec *iov,
				   unsigned iovcnt, upcie_nvme_cb *cb, void **arg);
/* Undo a hold whose command was not submitted (cb, arg as the hold left them). */
HIDDEN void upcie_nvme_reg_unhold(upcie_nvme_cb cb, void *arg);
/* The command in req ends without its callback (abandoned, queue reset). */
static inline void upcie_nvme_reg_drop(struct upcie_nvme_req *req)
{
	if (unlikely(req->cb == upcie_nvme_reg_done))
		upcie_nvme_reg_unhold(req->cb, req->arg);
}
/* The caller's callback of a request (through a registered-memory hold). */
static inline upcie_nvme_cb upcie_nvme_req_user_cb(const struct upcie_nvme_req *req)
{
	if (unlikely(req->cb == upcie_nvme_reg_done))
		return ((const struct upcie_nvme_reg_cmd *)req->arg)->cb;
	return req->cb;
}

/* queue.c: memory, the cold halves of submit and poll, and waits. */
HIDDEN struct upcie_nvme_qpair *upcie_nvme_queue_alloc(struct upcie_dma_heap *heap, uint16_t qid,
						       uint32_t depth, uint32_t cq_depth,
						       uint32_t page_size, uint32_t max_xfer,
						       uint32_t md_sgl_descs);
HIDDEN void upcie_nvme_queue_free(struct upcie_nvme_qpair *qp, bool keep_dma);
HIDDEN void upcie_nvme_queue_reset(struct upcie_nvme_qpair *qp);
HIDDEN int upcie_nvme_queue_submit(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
				   const void *buf, size_t len, upcie_nvme_cb cb, void *arg,
				   unsigned flags, uint16_t *cid);
HIDDEN void upcie_nvme_queue_stray(struct upcie_nvme_qpair *qp, const struct upcie_nvme_cqe *cqe);
HIDDEN int upcie_nvme_queue_poll_slow(struct upcie_nvme_qpair *qp, uint32_t max);
HIDDEN int upcie_nvme_queue_tick(struct upcie_nvme_qpair *qp);
HIDDEN int upcie_nvme_queue_submit_err(struct upcie_nvme_qpair *qp, int err, size_t len);
HIDDEN int upcie_nvme_queue_rw_general(struct upcie_nvme_qpair *qp, uint8_t opc, uint32_t nsid,
				       uint64_t slba, uint32_t nlb, const void *buf, size_t len,
				       upcie_nvme_cb cb, void *arg, unsigned flags);
HIDDEN uint64_t upcie_now_ms(void);
/* Tests only (the explorer): a clock of their own, so that every timeout
 * and health interval follows the test's steps, not the wall clock. */
HIDDEN extern uint64_t (*upcie_test_clock_ms)(void);

/* A synchronous caller's completion: the callback copies the CQE, sets done. */
struct upcie_nvme_waiter {
	volatile int done;
	struct upcie_nvme_cqe cqe;
};
HIDDEN void upcie_nvme_waiter_cb(void *arg, const struct upcie_nvme_cqe *cqe);

/*
 * The one bounded wait of the library: poll until *done, the deadline, or
 * an error from the queue. idle(dev) lets a polled backend progress.
 * Returns 0 when done, -ETIMEDOUT at the deadline (after a last look at
 * the CQ), or the negative errno poll returned (-ENODEV, -ENOTRECOVERABLE).
 */
HIDDEN int upcie_nvme_queue_wait(struct upcie_nvme_qpair *qp, const volatile int *done,
				 uint64_t deadline_ms, struct upcie_pci_dev *dev);

/* ---- the hot path, in the order a command lives it ---- */

/* 1. Claim the CID on top of the free stack for (cb, arg); nfree > 0. */
static inline uint16_t upcie_nvme_queue_claim(struct upcie_nvme_qpair *qp, upcie_nvme_cb cb,
					      void *arg)
{
	uint16_t cid = qp->free_cids[--qp->nfree];
	struct upcie_nvme_req *req = &qp->reqs[cid & qp->cid_mask];

	req->cb = cb;
	req->arg = arg;
	/* Outstanding, as its completion must name it; flags and age 0. */
	req->expect = qp->sqid_key | (uint32_t)cid << 16;
	return cid;
}

/*
 * 2. Shadow doorbell check (Base spec 3.1.3.6 / 5.8, Doorbell Buffer
 * Config): the device asks for an MMIO write only when the new value
 * passes its EventIdx, i.e. when event_idx lies in [old, new).
 */
static inline bool upcie_nvme_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/*
 * Publish a new tail (sq) or head (!sq): shadow slot, then MMIO if asked.
 * What must be ordered before it differs: for a tail, our stores of the
 * SQEs; for a head, our loads of the CQEs we consumed (the device may
 * overwrite those slots as soon as it sees the head).
 */
static inline bool upcie_nvme_db_update(volatile uint32_t *db, volatile uint32_t *shadow,
					volatile uint32_t *eventidx, uint16_t old, uint16_t new_idx,
					bool sq)
{
	if (shadow) {
		/* Before the shadow value: the device may read the shadow at any
		 * time, without a doorbell (normal memory on both sides). */
		if (sq)
			upcie_dma_wmb();
		else
			upcie_rmb();
		upcie_mmio_write32(shadow, 0, new_idx); /* plain memory: a store */
		/* The shadow value must be globally visible before EventIdx is read,
		 * else the device may miss it while we skip the MMIO write. */
		upcie_mb();
		if (!upcie_nvme_need_event((uint16_t)upcie_mmio_read32(eventidx, 0), new_idx, old))
			return false;
		/* The SQEs visible to the device before the MMIO doorbell store. */
		if (sq)
			upcie_wmb();
	} else if (sq) {
		/* The SQEs must be visible before the device sees the new tail. */
		upcie_wmb();
	} else {
		/* Our loads of the consumed CQ slots before the new head. */
		upcie_rmb();
	}
	upcie_mmio_write32(db, 0, new_idx);
	return true;
}

/* Publish the CQ head (it moved since the last time). */
static inline void upcie_nvme_queue_cq_db(struct upcie_nvme_qpair *qp)
{
	if (upcie_nvme_db_update(qp->cq_db, qp->shadow_cq, qp->eventidx_cq, qp->cq_rung,
				 qp->cq_head, false))
		qp->stats.cq_doorbells++;
	else
		qp->stats.shadow_cq++;
	qp->cq_rung = qp->cq_head;
}

/* 3a. The SQ tail: one doorbell write for everything queued since the
 * last; true when a new tail went out. */
static inline bool upcie_nvme_queue_ring_sq(struct upcie_nvme_qpair *qp)
{
	uint16_t tail = qp->sq_tail;

	if (tail == qp->sq_rung)
		return false;
	/* No test of the poke here: after a reset this queue may not be on the
	 * device yet, and a doorbell for a queue that does not exist moves no
	 * data (at most an error event); its owner's next poll re-creates the
	 * queue and ends what was rung meanwhile as HOST_ABORTED (never run). */
	if (upcie_nvme_db_update(qp->sq_db, qp->shadow_sq, qp->eventidx_sq, qp->sq_rung, tail,
				 true))
		qp->stats.sq_doorbells++;
	else
		qp->stats.shadow_sq++;
	qp->sq_rung = tail;
	return true;
}

/*
 * 3. Ring: the SQ tail, then, with lazy_cq, the CQ head if it moved (without
 * lazy_cq every reaping poll published it already).
 *
 * Why lazy_cq cannot overflow the CQ: the device learns of commands only
 * here, and here it also learns the head H of everything we consumed.
 * Let O be the commands outstanding after this ring (O <= depth - 1: the
 * CID pool) and P of them already posted past H. Until the next ring the
 * device gets no new command, so it posts at most O - P more entries,
 * while it sees cq_depth - 1 - P free slots, and
 * O - P <= depth - 1 - P <= cq_depth - 1 - P.
 */
static inline void upcie_nvme_queue_ring(struct upcie_nvme_qpair *qp)
{
	if (upcie_nvme_queue_ring_sq(qp) && unlikely(qp->lazy_cq) && qp->cq_head != qp->cq_rung)
		upcie_nvme_queue_cq_db(qp);
}

/* 4. The SQE at the tail is written: move the tail; ring now if asked. */
static inline void upcie_nvme_queue_push(struct upcie_nvme_qpair *qp, unsigned flags)
{
	qp->sq_tail = (uint16_t)(qp->sq_tail + 1 == qp->depth ? 0 : qp->sq_tail + 1);
	if (flags & UPCIE_NVME_SUBMIT_RING)
		upcie_nvme_queue_ring(qp);
}

/* 2.-4. for an SQE built elsewhere, on the CID the caller peeked: claim
 * it, write the SQE at the tail, tell the caller its CID, push. */
static inline void upcie_nvme_queue_post(struct upcie_nvme_qpair *qp, struct upcie_nvme_sqe *sqe,
					 uint16_t cid, upcie_nvme_cb cb, void *arg, unsigned flags,
					 uint16_t *cidp)
{
	upcie_nvme_queue_claim(qp, cb, arg);
	sqe->cid = cid;
	qp->sq[qp->sq_tail] = *sqe;
	if (cidp)
		*cidp = cid;
	upcie_nvme_queue_push(qp, flags);
}

/*
 * Read or write, start to end (upcie_nvme_read/_write are this, inlined),
 * for the common case: a free CID, a buffer inside the heap's first
 * segment, 4-byte aligned, spanning at most two memory pages (PRP1 and
 * PRP2, Base spec 4.1.1), within MDTS. The SQE goes straight into its SQ
 * slot as eight quadwords. Returns 0, or 1 when the command does not fit
 * the fast path: the caller then takes the general path, which handles
 * (or refuses, saying why) everything else.
 */
#define UPCIE_NVME_RW_SLOW 1

/* x rotated right by two bits. */
static inline uintptr_t upcie_ror2(uintptr_t x)
{
	return x >> 2 | x << (sizeof(x) * 8 - 2);
}

static inline __attribute__((always_inline)) int
upcie_nvme_queue_rw(struct upcie_nvme_qpair *qp, uint8_t opc, uint32_t nsid, uint64_t slba,
		    uint32_t nlb, const void *buf, size_t len, upcie_nvme_cb cb, void *arg,
		    unsigned flags)
{
	const uintptr_t off = (uintptr_t)buf - qp->seg_va;
	/* The heap's pages start at memory-page boundaries in both address
	 * spaces, so the buffer's offset in its memory page is the heap
	 * offset's. */
	const uintptr_t in_page = (off & qp->page_mask) + len;
	uint16_t cid, tail, next;

	/* Inside the first segment (seg_fast_max_q leaves room for two pages,
	 * the most this path moves; a NULL buffer is far outside) and 4-byte
	 * aligned, in one compare: rotated right by two, an offset with
	 * either low bit set is larger than any offset/4 (seg_fast_max_q * 4 is a
	 * multiple of 4). At most two memory pages, a free CID. */
	if (unlikely(upcie_ror2(off) > qp->seg_fast_max_q || in_page > qp->two_pages || !qp->nfree))
		return UPCIE_NVME_RW_SLOW;
	/* From here on each argument goes to memory as soon as its slot is
	 * known (fewer values live at once: no spills). The queue's own
	 * stores come first: the compiler must assume the SQE's may alias
	 * them. */
	tail = qp->sq_tail;
	next = (uint16_t)(tail + 1);
	if (unlikely(next == qp->depth))
		next = 0;
	qp->sq_tail = next;
	cid = upcie_nvme_queue_claim(qp, cb, arg);
	{
		/* The SQE in Base spec 4.2's layout, quadword by quadword: opc,
		 * flags 0, cid, nsid | cdw2, cdw3 | mptr | prp1 | prp2 | cdw10-11
		 * (SLBA) | cdw12 (NLB, 0's based), cdw13 | cdw14, cdw15. */
		typedef uint64_t __attribute__((may_alias)) u64a;
		u64a *q = (u64a *)&qp->sq[tail];

		q[5] = slba;
		q[6] = nlb - 1;
		q[0] = opc | (uint32_t)cid << 16 | (uint64_t)nsid << 32;
		q[1] = 0;
		q[2] = 0;
		q[7] = 0;
		q[3] = qp->seg_bus[off >> qp->seg_shift] + (off & qp->seg_mask);
		q[4] = 0;
		if (in_page - 1 > qp->page_mask) {
			/* PRP2: the next memory page, which the transfer reaches. */
			uintptr_t off2 = (off | qp->page_mask) + 1;

			q[4] = qp->seg_bus[off2 >> qp->seg_shift] + (off2 & qp->seg_mask);
		}
	}
	if (flags & UPCIE_NVME_SUBMIT_RING)
		upcie_nvme_queue_ring(qp);
	return 0;
}

/* The status halfword of a CQ slot, with the phase tag (bits 63:48 of its
 * second quadword). Under ThreadSanitizer (the sim's thread posts) an
 * acquire load stands for what the read barrier after it gives. */
static inline uint16_t upcie_nvme_cqe_status_word(const volatile uint64_t *slot)
{
#ifdef UPCIE_MMIO_TSAN
	return __atomic_load_n(&((const volatile uint16_t *)slot)[7], __ATOMIC_ACQUIRE);
#else
	return ((const volatile uint16_t *)slot)[7];
#endif
}

/*
 * 5. Take one completion if the device posted it: the entry as two
 * aligned quadwords, dw0/dw1 then sqhd/sqid/cid/status (Base spec 4.6).
 * Returns false when the slot at the head still has the old phase.
 */
static inline bool upcie_nvme_cqe_take(struct upcie_nvme_qpair *qp, struct upcie_nvme_cqe *cqe)
{
	volatile uint64_t *slot = (volatile uint64_t *)&qp->cq[qp->cq_head];
	uint64_t q[2];

	/* The phase tag: bit 0 of the status halfword (bits 63:48 of the
	 * second quadword). */
	if ((upcie_nvme_cqe_status_word(slot) ^ qp->phase) & 1)
		return false;
	/* The device writes the status word (with the phase) last: read the
	 * entry, the quadword with the phase included, again only after
	 * seeing the new phase. */
	upcie_rmb();
	q[0] = slot[0];
	q[1] = slot[1];
	memcpy(cqe, q, sizeof(*cqe));
	if (++qp->cq_head == qp->cq_depth) {
		qp->cq_head = 0;
		qp->phase ^= 1;
	}
	return true;
}

/* 6. Give the CID back, then call back (so the callback may resubmit). */
static inline void upcie_nvme_queue_complete(struct upcie_nvme_qpair *qp,
					     const struct upcie_nvme_cqe *cqe)
{
	struct upcie_nvme_req *req = &qp->reqs[cqe->cid & qp->cid_mask];
	bool deliver = !(req->expect & UPCIE_NVME_REQ_ABANDONED) && req->cb;
	uint8_t was = qp->in_cb;

	if (!deliver)
		upcie_nvme_reg_drop(req);
	req->expect = UPCIE_NVME_REQ_IDLE;
	qp->free_cids[qp->nfree++] = (uint16_t)(cqe->cid + qp->cid_gen);
	qp->stats.completed++;
	if (deliver) {
		qp->in_cb = 1;
		req->cb(req->arg, cqe);
		qp->in_cb = was;
	}
}

/* An entry reap cannot deliver as is (cold): a stray CID, or an
 * abandoned command (its CID goes back, no callback). Reap counts every
 * entry as completed; this takes the count back for those it ends itself
 * or drops. */
HIDDEN void upcie_nvme_queue_odd(struct upcie_nvme_qpair *qp, const struct upcie_nvme_cqe *cqe);

/* 7. Reap up to max completions (0: a queue's worth), then doorbells. */
static inline __attribute__((always_inline)) int upcie_nvme_queue_reap(struct upcie_nvme_qpair *qp,
								       uint32_t max)
{
	struct upcie_nvme_cqe cqe;
	uint32_t left, n;
	uint8_t was = qp->in_cb;

	if (!max)
		max = qp->depth;
	/* Destroy and close refuse to run under one of our callbacks. */
	qp->in_cb = 1;
	/* Counted down: one decrement and branch per entry. */
	for (left = max; left && upcie_nvme_cqe_take(qp, &cqe); left--) {
		/* The slot from the key's CID half (key >> 16 is the CID alone:
		 * no masking or extension beyond cid_mask). */
		const uint32_t key = upcie_nvme_cqe_key(&cqe);
		struct upcie_nvme_req *req = &qp->reqs[(key >> 16) & qp->cid_mask];
		upcie_nvme_cb cb;

		/* Outstanding, not abandoned, this SQ and this generation of the
		 * CID, in one compare: anything else (a stale, duplicate or
		 * foreign completion) is dropped or ended by the cold path. */
		if (unlikely(req->expect != key)) {
			upcie_nvme_queue_odd(qp, &cqe);
			continue;
		}
		/* Give the CID back (one generation on), then call back (so the
		 * callback may resubmit); see upcie_nvme_queue_complete. */
		req->expect = UPCIE_NVME_REQ_IDLE;
		qp->free_cids[qp->nfree++] = (uint16_t)(cqe.cid + qp->cid_gen);
		cb = req->cb;
		if (likely(cb != NULL))
			cb(req->arg, &cqe);
	}
	qp->in_cb = was;
	n = max - left;
	qp->stats.completed += n; /* upcie_nvme_queue_odd() corrects for its own */
	/* What the callbacks queued goes to the device before the CQ head,
	 * which moved (n <= depth - 1: the device never fills more). With
	 * lazy_cq, the head goes out only with a new tail. */
	if (n && (upcie_nvme_queue_ring_sq(qp) || !qp->lazy_cq))
		upcie_nvme_queue_cq_db(qp);
	return (int)n;
}

/*
 * 8. Poll: reap, then doorbells (see 7). A poked queue (its owner's state
 * changed) takes the slow path first. The slow path also runs after every
 * UPCIE_NVME_TICK_POLLS empty polls and every UPCIE_NVME_TICK_COMPLETIONS
 * completions: it looks at the coarse clock for timeouts and health.
 */
static inline __attribute__((always_inline)) int upcie_nvme_queue_poll(struct upcie_nvme_qpair *qp,
								       uint32_t max)
{
	int n;

	if (unlikely(__atomic_load_n(&qp->poke, __ATOMIC_RELAXED)))
		return upcie_nvme_queue_poll_slow(qp, max);
	n = upcie_nvme_queue_reap(qp, max);
	if (!n) {
		if (unlikely((++qp->polls & (UPCIE_NVME_TICK_POLLS - 1)) == 0))
			return upcie_nvme_queue_poll_slow(qp, max);
	} else if (unlikely(((uint32_t)qp->stats.completed & (UPCIE_NVME_TICK_COMPLETIONS - 1)) <
			    (uint32_t)n)) {
		int m = upcie_nvme_queue_tick(qp);

		return m < 0 ? m : n + m;
	}
	return n;
}

#endif
