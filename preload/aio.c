/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libaio's calls (libaio.so.1: programs call them through the PLT, so these
 * definitions come first). A context is the kernel's (io_setup goes to
 * libaio as always); iocbs on a mapped fd are served here, on a queue pair
 * of the context's own per device (any thread may submit or reap, under
 * the context's lock), the others go to libaio, and io_getevents merges
 * both. Opcodes: PREAD, PWRITE, PREADV, PWRITEV, FSYNC, FDSYNC; a misaligned
 * O_DIRECT request completes with -EINVAL in its event, a device error with
 * -EIO, as from the kernel. Vectors, buffered misaligned requests and
 * transfers too large for one queue run synchronously inside io_submit.
 * Not done: IOCB_FLAG_RESFD (refused with -EINVAL), cancelling (-EINVAL, as
 * the kernel answers for reads and writes), fio's userspace_reap.
 *
 * Lifetime: every call that uses a context's state holds a reference on
 * it (users). io_destroy takes the context out of the table (no new
 * reference can be had), marks it dead (io_submit and io_getevents on it
 * then answer -EINVAL, as the kernel does for a destroyed context), waits
 * until the calls inside it left, then, as the kernel does, until every
 * request of ours completed, and only then frees it. The synchronous
 * requests run with the context's lock released (holding their slot in
 * the context), so other threads keep submitting and reaping meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preload.h"

typedef struct io_context *io_context_t;

#define MAX_CTX 256
/* Longest single sleep in the kernel's io_getevents for a context that has
 * this library's requests too: then our queue pairs are polled again. */
#define SLICE_NS 1000000
/* io_destroy waits this long at most for the context's requests */
#define DESTROY_WAIT_NS (60 * 1000000000ll)

struct aio_req {
	struct pl_aio_ctx *c;
	struct iocb *obj;
	void *bounce, *user;
	size_t len;
	struct pl_dev *dev;
	int slot; /* the registered region pinned for it, or -1 */
	struct upcie_nvme_split sp;
	/* what it sends, for a resubmission after a reset ended it unrun */
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	void *buf;
	uint64_t slba;
	uint32_t nlb;
	bool write;
	unsigned tries;
	struct aio_req *next;
};

struct pl_aio_ctx {
	unsigned long id;
	pthread_mutex_t lock;
	unsigned cap;
	struct {
		struct pl_dev *dev;
		unsigned gen;
		struct upcie_nvme_qpair *qp;
	} qps[PL_MAX_MAPS];
	struct io_event *done; /* ring of finished events, cap entries */
	unsigned head, count;
	unsigned inflight;   /* ours on the device */
	unsigned running;    /* ours running synchronously, the lock released */
	unsigned users;	     /* calls inside that use this state (atomic) */
	bool dead;	     /* io_destroy began: refuse, leave */
	pthread_cond_t left; /* a user left a dead context */
	struct aio_req *reqs, *free_reqs;
	struct aio_req *retry; /* ended by a reset before they ran: sent again by reap */
};

/* Contexts by the hash of their id (the kernel ring's address), probed
 * linearly; read-mostly: lookups share the lock, io_setup's first use and
 * io_destroy take it alone. */
static struct pl_aio_ctx *ctxs[MAX_CTX];
static unsigned nctxs;
/* Contexts io_destroy ended (their ring is unmapped: never read): a call
 * on one answers -EINVAL, until io_setup hands the address out again. */
#define GRAVES 64
static unsigned long graves[GRAVES];
static unsigned grave_next;
static pthread_rwlock_t ctx_lock = PTHREAD_RWLOCK_INITIALIZER;

static unsigned ctx_hash(unsigned long id)
{
	return (unsigned)((id >> 12) ^ (id >> 20)) % MAX_CTX;
}

/* ctx_lock held */
static struct pl_aio_ctx *find_locked(unsigned long id, unsigned *at)
{
	unsigned h = ctx_hash(id);

	for (unsigned k = 0; k < MAX_CTX && nctxs; k++) {
		struct pl_aio_ctx *c = ctxs[(h + k) % MAX_CTX];

		if (c && c->id == id) {
			if (at)
				*at = (h + k) % MAX_CTX;
			return c;
		}
	}
	return NULL;
}

/* The context's state with a reference taken (ctx_put), or NULL. */
static struct pl_aio_ctx *find_ctx(unsigned long id)
{
	struct pl_aio_ctx *c;

	if (!__atomic_load_n(&nctxs, __ATOMIC_ACQUIRE))
		return NULL;
	pthread_rwlock_rdlock(&ctx_lock);
	c = find_locked(id, NULL);
	if (c)
		__atomic_add_fetch(&c->users, 1, __ATOMIC_ACQ_REL);
	pthread_rwlock_unlock(&ctx_lock);
	return c;
}

/* Under the context's lock: io_destroy frees c only once it saw users at
 * 0 with that lock held, so c is never touched after that. */
static void ctx_put(struct pl_aio_ctx *c)
{
	pthread_mutex_lock(&c->lock);
	if (!__atomic_sub_fetch(&c->users, 1, __ATOMIC_ACQ_REL) && c->dead)
		pthread_cond_broadcast(&c->left);
	pthread_mutex_unlock(&c->lock);
}

/* ctx_lock held */
static bool grave_has(unsigned long id)
{
	for (unsigned i = 0; i < GRAVES; i++)
		if (graves[i] == id)
			return true;
	return false;
}

/* Did io_destroy end this context (one that had requests of ours)? */
static bool destroyed(unsigned long id)
{
	bool r;

	if (!__atomic_load_n(&grave_next, __ATOMIC_ACQUIRE))
		return false;
	pthread_rwlock_rdlock(&ctx_lock);
	r = grave_has(id);
	pthread_rwlock_unlock(&ctx_lock);
	return r;
}

/* The context's state, made at its first iocb on a mapped fd; with a
 * reference taken. NULL and *dead for a destroyed context. */
static struct pl_aio_ctx *get_ctx(unsigned long id, bool *dead)
{
	struct pl_aio_ctx *c = find_ctx(id);
	unsigned nr;

	*dead = false;
	if (c)
		return c;
	pthread_rwlock_wrlock(&ctx_lock);
	if (grave_has(id)) {
		*dead = true;
		goto out;
	}
	c = find_locked(id, NULL);
	if (c) {
		__atomic_add_fetch(&c->users, 1, __ATOMIC_ACQ_REL);
		goto out;
	}
	/* the kernel's ring (struct aio_ring, at the context's address): its nr */
	nr = ((const unsigned *)id)[1];
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out;
	c->id = id;
	c->cap = (nr ? nr : 128) * 2 + 64;
	c->done = calloc(c->cap, sizeof(*c->done));
	c->reqs = calloc(c->cap, sizeof(*c->reqs));
	if (!c->done || !c->reqs) {
		free(c->done);
		free(c->reqs);
		free(c);
		c = NULL;
		goto out;
	}
	for (unsigned i = 0; i < c->cap; i++) {
		c->reqs[i].c = c;
		c->reqs[i].next = c->free_reqs;
		c->free_reqs = &c->reqs[i];
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->left, NULL);
	c->users = 1;
	for (unsigned k = 0, h = ctx_hash(id); k < MAX_CTX; k++) {
		if (!ctxs[(h + k) % MAX_CTX]) {
			ctxs[(h + k) % MAX_CTX] = c;
			__atomic_add_fetch(&nctxs, 1, __ATOMIC_RELEASE);
			goto out;
		}
	}
	pl_msg(PL_NAME ": more than %d libaio contexts use mapped files", MAX_CTX);
	pthread_cond_destroy(&c->left);
	pthread_mutex_destroy(&c->lock);
	free(c->done);
	free(c->reqs);
	free(c);
	c = NULL;
out:
	pthread_rwlock_unlock(&ctx_lock);
	return c;
}

static void req_end(struct aio_req *r, long res);

/* c->lock held */
static void post(struct pl_aio_ctx *c, struct iocb *obj, long res)
{
	struct io_event *e = &c->done[(c->head + c->count++) % c->cap];

	e->data = obj->aio_data;
	e->obj = (uint64_t)(uintptr_t)obj;
	e->res = res;
	e->res2 = 0;
}

static void req_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct aio_req *r = arg;
	struct pl_aio_ctx *c = r->c;
	uint16_t st = upcie_nvme_cqe_status(cqe);
	long res = st ? -EIO : (long)r->len;

	if (st && pl_status_retry(st) && ++r->tries < PL_TRIES) {
		/* "retry is safe": reap sends it again, after the poll */
		r->next = c->retry;
		c->retry = r;
		return;
	}
	req_end(r, res);
}

/* c->lock held: the request is over, its event posted */
static void req_end(struct aio_req *r, long res)
{
	struct pl_aio_ctx *c = r->c;

	if (r->bounce) {
		if (res > 0 && r->user)
			memcpy(r->user, r->bounce, r->len);
		upcie_dma_free(r->dev->heap, r->bounce);
	}
	pl_reg_unpin(r->dev, r->slot);
	post(c, r->obj, res);
	c->inflight--;
	r->next = c->free_reqs;
	c->free_reqs = r;
}

/* c->lock held */
static struct upcie_nvme_qpair *ctx_qp(struct pl_aio_ctx *c, struct pl_dev *d)
{
	unsigned gen = __atomic_load_n(&d->gen, __ATOMIC_ACQUIRE), i;
	struct upcie_nvme_qpair_opts o = {0};
	struct upcie_nvme_qpair *qp;

	for (i = 0; i < PL_MAX_MAPS && c->qps[i].dev; i++)
		if (c->qps[i].dev == d && c->qps[i].gen == gen && c->qps[i].qp)
			return c->qps[i].qp;
	for (i = 0; i < PL_MAX_MAPS; i++)
		if (!c->qps[i].dev || c->qps[i].dev == d)
			break;
	if (i == PL_MAX_MAPS)
		return NULL;
	o.depth = c->cap * 2 + 1 > 1024 ? 1024 : c->cap * 2 + 1;
	pthread_mutex_lock(&pl_lock);
	qp = d->ctrl && d->pid == pl_pid ? upcie_nvme_qpair_create(d->ctrl, &o) : NULL;
	if (qp) {
		d->opens++; /* the device stays open until io_destroy */
		c->qps[i].dev = d;
		c->qps[i].gen = d->gen;
		c->qps[i].qp = qp;
	} else {
		pl_msg(PL_NAME ": %s: cannot create an I/O queue pair for an aio context: %s",
		       d->name, upcie_errmsg());
	}
	pthread_mutex_unlock(&pl_lock);
	return qp;
}

/* c->lock held: is qp one of the context's live queue pairs? */
static bool ctx_has_qp(struct pl_aio_ctx *c, struct upcie_nvme_qpair *qp)
{
	for (unsigned i = 0; i < PL_MAX_MAPS && c->qps[i].dev; i++)
		if (c->qps[i].qp == qp && c->qps[i].gen == c->qps[i].dev->gen)
			return true;
	return false;
}

static int req_send(struct aio_req *r)
{
	void *b = r->bounce ? r->bounce : r->buf;

	return r->write ? upcie_nvme_write_split(r->qp, r->ns, r->slba, r->nlb, b, &r->sp, req_done,
						 r, UPCIE_NVME_SUBMIT_RING)
			: upcie_nvme_read_split(r->qp, r->ns, r->slba, r->nlb, b, &r->sp, req_done,
						r, UPCIE_NVME_SUBMIT_RING);
}

/* c->lock held: send again what a reset ended before it ran */
static void resend(struct pl_aio_ctx *c)
{
	struct aio_req *r = c->retry;

	c->retry = NULL;
	while (r) {
		struct aio_req *next = r->next;

		if (!ctx_has_qp(c, r->qp)) {
			req_end(r, -EIO); /* its queue pair is gone */
		} else if (req_send(r)) {
			pl_msg(PL_NAME ": %s: %s sent again after a reset, refused: %s",
			       r->dev->name, r->write ? "write" : "read", upcie_errmsg());
			req_end(r, -EIO);
		}
		r = next;
	}
}

/* c->lock held: reap what the queues have. */
static int reap(struct pl_aio_ctx *c)
{
	int n = 0;

	for (unsigned i = 0; i < PL_MAX_MAPS && c->qps[i].dev; i++) {
		struct pl_dev *d = c->qps[i].dev;
		int rc;

		if (!c->qps[i].qp || c->qps[i].gen != d->gen)
			continue;
		rc = upcie_nvme_poll(c->qps[i].qp, 0);
		if (rc > 0)
			n += rc;
	}
	if (c->retry)
		resend(c);
	return n;
}

static long sync_one(struct pl_file *f, struct iocb *cb)
{
	struct iovec one = {(void *)(uintptr_t)cb->aio_buf, cb->aio_nbytes};
	int op = cb->aio_lio_opcode;
	bool write = op == IOCB_CMD_PWRITE || op == IOCB_CMD_PWRITEV;
	bool vec = op == IOCB_CMD_PREADV || op == IOCB_CMD_PWRITEV;

	if (op == IOCB_CMD_FSYNC || op == IOCB_CMD_FDSYNC)
		return pl_flush(f);
	if (vec)
		return pl_rwv(f, (const struct iovec *)(uintptr_t)cb->aio_buf, (int)cb->aio_nbytes,
			      (uint64_t)cb->aio_offset, write);
	return pl_rwv(f, &one, 1, (uint64_t)cb->aio_offset, write);
}

/* One iocb on a mapped fd; c->lock held. 0, or a negative errno for io_submit. */
static int submit_one(struct pl_aio_ctx *c, struct pl_file *f, struct iocb *cb)
{
	int op = cb->aio_lio_opcode, acc = f->flags & O_ACCMODE, rc;
	bool write = op == IOCB_CMD_PWRITE || op == IOCB_CMD_PWRITEV;
	struct upcie_nvme_qpair *qp;
	void *buf = (void *)(uintptr_t)cb->aio_buf;
	size_t len = cb->aio_nbytes;
	uint64_t off = (uint64_t)cb->aio_offset;
	struct aio_req *r;
	long res;

	if (op != IOCB_CMD_PREAD && op != IOCB_CMD_PWRITE && op != IOCB_CMD_PREADV &&
	    op != IOCB_CMD_PWRITEV && op != IOCB_CMD_FSYNC && op != IOCB_CMD_FDSYNC)
		return -EINVAL;
	if (cb->aio_flags & IOCB_FLAG_RESFD) {
		pl_msg(PL_NAME ": %s: IOCB_FLAG_RESFD (an eventfd per iocb) is not supported",
		       f->map->path);
		return -EINVAL;
	}
	if (c->dead)
		return -EINVAL; /* destroyed meanwhile, as the kernel answers */
	if (pl_check_owner(f, "io_submit"))
		return -EBADF; /* the fd is not usable in this process */
	if ((write && acc == O_RDONLY) ||
	    (!write && acc == O_WRONLY && op != IOCB_CMD_FSYNC && op != IOCB_CMD_FDSYNC))
		return -EBADF;
	if (c->inflight + c->running + c->count >= c->cap)
		return -EAGAIN;
	if ((op == IOCB_CMD_PREADV || op == IOCB_CMD_PWRITEV) && len == 1) {
		const struct iovec *iov = buf;

		buf = iov->iov_base;
		len = iov->iov_len;
		op = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
	}
	if (op == IOCB_CMD_PREADV || op == IOCB_CMD_PWRITEV || op == IOCB_CMD_FSYNC ||
	    op == IOCB_CMD_FDSYNC)
		goto sync;
	if (f->flags & O_DIRECT && !pl_direct_ok(f, buf, len, off)) {
		post(c, cb, -EINVAL);
		return 0;
	}
	if (!len || off >= f->size) {
		post(c, cb, write && len ? -ENOSPC : 0);
		return 0;
	}
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	if (!pl_direct_ok(f, NULL, len, off) || (f->flags & (O_SYNC | O_DSYNC)) ||
	    upcie_nvme_split_parts(f->ns, (uint32_t)(len / f->lbs)) > 64 || len > (64u << 20))
		goto sync;
	qp = ctx_qp(c, f->dev);
	if (!qp)
		return -EAGAIN;
	r = c->free_reqs;
	c->free_reqs = r->next;
	r->obj = cb;
	r->len = len;
	r->dev = f->dev;
	r->bounce = NULL;
	r->user = NULL;
	r->slot = pl_reg_pin(f->dev, buf, len); /* until req_done */
	if (r->slot < 0) {
		r->bounce = upcie_dma_alloc(f->dev->heap, len, 4096);
		if (!r->bounce) {
			r->next = c->free_reqs;
			c->free_reqs = r;
			goto sync;
		}
		if (write)
			memcpy(r->bounce, buf, len);
		else
			r->user = buf;
	}
	if (write)
		__atomic_or_fetch(&f->dev->dirty, 1u << ((f->map->nsid - 1) & 31),
				  __ATOMIC_RELAXED);
	/* -EAGAIN (the queue is full of this batch's commands): nothing was
	 * queued; io_submit rings, reaps and tries once more, else reports the
	 * iocbs taken so far, as the kernel does when it runs out of room. */
	r->qp = qp;
	r->ns = f->ns;
	r->buf = buf;
	r->slba = off >> f->ns->lba_shift;
	r->nlb = (uint32_t)(len >> f->ns->lba_shift);
	r->write = write;
	r->tries = 0;
	{
		void *b = r->bounce ? r->bounce : buf;

		rc = write ? upcie_nvme_write_split(qp, f->ns, r->slba, r->nlb, b, &r->sp, req_done,
						    r, 0)
			   : upcie_nvme_read_split(qp, f->ns, r->slba, r->nlb, b, &r->sp, req_done,
						   r, 0);
	}
	if (rc) {
		if (rc != -EAGAIN)
			pl_msg(PL_NAME ": %s: %s refused: %s", f->dev->name,
			       write ? "write" : "read", upcie_errmsg());
		if (r->bounce)
			upcie_dma_free(f->dev->heap, r->bounce);
		pl_reg_unpin(f->dev, r->slot);
		r->next = c->free_reqs;
		c->free_reqs = r;
		if (rc == -EAGAIN)
			return rc;
		post(c, cb, -EIO); /* the device's or the library's refusal: EIO */
		return 0;
	}
	c->inflight++;
	return 0;
sync:
	/* synchronous work with the context's lock released: the slot is
	 * held (running), the context by the caller's reference */
	c->running++;
	pthread_mutex_unlock(&c->lock);
	res = sync_one(f, cb);
	pthread_mutex_lock(&c->lock);
	c->running--;
	post(c, cb, res);
	return 0;
}

/* c->lock held: one doorbell per queue of the context */
static void ring_all(struct pl_aio_ctx *c)
{
	for (unsigned q = 0; q < PL_MAX_MAPS && c->qps[q].dev; q++)
		if (c->qps[q].qp && c->qps[q].gen == c->qps[q].dev->gen)
			upcie_nvme_ring(c->qps[q].qp);
}

int io_submit(io_context_t ctx, long nr, struct iocb **iocbs);
int io_submit(io_context_t ctx, long nr, struct iocb **iocbs)
{
	static int (*real)(io_context_t, long, struct iocb **);
	struct pl_aio_ctx *c = NULL;
	long i = 0;

	if (!real)
		real = pl_next("io_submit");
	if (nr < 0)
		return -EINVAL;
	while (i < nr) {
		struct pl_file *f = pl_get((int)iocbs[i]->aio_fildes);
		long run = 0;
		int rc;

		if (!f) {
			while (i + run < nr && !pl_get((int)iocbs[i + run]->aio_fildes))
				run++;
			rc = real ? real(ctx, run, iocbs + i) : -ENOSYS;
			if (rc < 0 || rc < run) {
				if (c)
					ctx_put(c);
				return rc < 0 ? (i ? (int)i : rc) : (int)(i + rc);
			}
			i += rc;
			continue;
		}
		if (!c) {
			bool dead;

			c = get_ctx((unsigned long)ctx, &dead);
			if (!c)
				return i ? (int)i : dead ? -EINVAL : -EAGAIN;
		}
		pthread_mutex_lock(&c->lock);
		rc = submit_one(c, f, iocbs[i]);
		if (rc == -EAGAIN) {
			/* full: what this batch queued goes to the device, what it
			 * finished frees room, and the iocb gets one more try */
			ring_all(c);
			if (reap(c) > 0)
				rc = submit_one(c, f, iocbs[i]);
		}
		/* one doorbell per queue for the whole batch */
		if (rc || i + 1 == nr || !pl_get((int)iocbs[i + 1]->aio_fildes))
			ring_all(c);
		pthread_mutex_unlock(&c->lock);
		if (rc) {
			ctx_put(c);
			return i ? (int)i : rc;
		}
		i++;
	}
	if (c)
		ctx_put(c);
	return (int)i;
}

/* The kernel's completion ring (struct aio_ring at the context's address,
 * as libaio reads it): has it events that nobody reaped? */
static bool kernel_has_events(unsigned long id)
{
	const volatile unsigned *ring = (const unsigned *)id;

	/* id, nr, head, tail, magic */
	return ring[4] == 0xa10a10a1u && ring[2] != ring[3];
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
		 struct timespec *timeout);
int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
		 struct timespec *timeout)
{
	static int (*real)(io_context_t, long, long, struct io_event *, struct timespec *);
	struct pl_aio_ctx *c = find_ctx((unsigned long)ctx);
	int64_t end = timeout ? now_ns() + timeout->tv_sec * 1000000000ll + timeout->tv_nsec : 0;
	long got = 0;
	unsigned idle = 0;

	if (!real)
		real = pl_next("io_getevents");
	if (!c && destroyed((unsigned long)ctx))
		return -EINVAL; /* libaio would read the unmapped ring */
	if (!c)
		return real ? real(ctx, min_nr, nr, events, timeout) : -ENOSYS;
	if (nr < 0 || min_nr < 0 || min_nr > nr) {
		ctx_put(c);
		return -EINVAL;
	}
	for (;;) {
		unsigned ours;

		pthread_mutex_lock(&c->lock);
		if (c->dead) {
			/* io_destroy runs: it waits for this call to leave */
			pthread_mutex_unlock(&c->lock);
			ctx_put(c);
			return got ? (int)got : -EINVAL;
		}
		reap(c);
		while (c->count && got < nr) {
			events[got++] = c->done[c->head];
			c->head = (c->head + 1) % c->cap;
			c->count--;
		}
		ours = c->inflight + c->running + c->count;
		pthread_mutex_unlock(&c->lock);
		if (got < nr && (kernel_has_events(c->id) || (!ours && got < min_nr))) {
			/* libaio's requests: what the kernel has now, or, with none of
			 * ours left to wait for, the kernel waits for them */
			struct timespec zero = {0, 0}, left;
			bool block = !ours && got < min_nr;
			int64_t rem = timeout ? end - now_ns() : SLICE_NS;
			int rc;

			/* In slices: another thread may io_submit to one of our fds
			 * on this context meanwhile, and only our poll sees those
			 * complete (a whole-timeout sleep would miss them). */
			rem = rem < 0 ? 0 : rem > SLICE_NS ? SLICE_NS : rem;
			left.tv_sec = rem / 1000000000;
			left.tv_nsec = rem % 1000000000;
			rc = real(ctx, block ? min_nr - got : 0, nr - got, events + got,
				  block ? &left : &zero);
			if (rc > 0) {
				got += rc;
			} else if (rc < 0 && rc != -EINTR) {
				ctx_put(c);
				return got ? (int)got : rc;
			}
		}
		if (got >= min_nr || (timeout && now_ns() >= end)) {
			ctx_put(c);
			return (int)got;
		}
		if (++idle > 64)
			sched_yield();
	}
}

int io_setup(int maxevents, io_context_t *ctxp);
int io_setup(int maxevents, io_context_t *ctxp)
{
	static int (*real)(int, io_context_t *);
	int rc;

	if (!real)
		real = pl_next("io_setup");
	rc = real ? real(maxevents, ctxp) : -ENOSYS;
	if (!rc) {
		/* the address may be a destroyed context's: it lives again */
		pthread_rwlock_wrlock(&ctx_lock);
		for (unsigned i = 0; i < GRAVES; i++)
			if (graves[i] == (unsigned long)*ctxp)
				graves[i] = 0;
		pthread_rwlock_unlock(&ctx_lock);
	}
	return rc;
}

int io_queue_init(int maxevents, io_context_t *ctxp);
int io_queue_init(int maxevents, io_context_t *ctxp)
{
	if (maxevents <= 0)
		return -EINVAL; /* as libaio's own */
	*ctxp = NULL;
	return io_setup(maxevents, ctxp);
}

int io_destroy(io_context_t ctx);
int io_destroy(io_context_t ctx)
{
	static int (*real)(io_context_t);
	struct pl_aio_ctx *c = NULL;
	unsigned at;

	if (!real)
		real = pl_next("io_destroy");
	/* out of the table: no call can take a new reference */
	pthread_rwlock_wrlock(&ctx_lock);
	c = find_locked((unsigned long)ctx, &at);
	if (c) {
		ctxs[at] = NULL;
		__atomic_sub_fetch(&nctxs, 1, __ATOMIC_RELEASE);
		graves[__atomic_fetch_add(&grave_next, 1, __ATOMIC_RELEASE) % GRAVES] =
		    (unsigned long)ctx;
	}
	pthread_rwlock_unlock(&ctx_lock);
	if (!c && destroyed((unsigned long)ctx))
		return -EINVAL; /* twice: libaio would read the unmapped ring */
	if (c) {
		/* the calls inside leave (io_getevents sees dead within its 1 ms
		 * slice, io_submit after the iocb at hand) */
		pthread_mutex_lock(&c->lock);
		c->dead = true;
		while (__atomic_load_n(&c->users, __ATOMIC_ACQUIRE))
			pthread_cond_wait(&c->left, &c->lock);
		pthread_mutex_unlock(&c->lock);
		/* the kernel waits for the context's requests: so do we. Nobody
		 * else can reach c now; the lock is only for reap's rule. The
		 * library ends every command (its timeouts, a failed controller's
		 * aborts) while we poll; should one still be out after
		 * DESTROY_WAIT_NS, the context is left allocated, not freed under
		 * a completion that may yet come, and said so. */
		int64_t end = now_ns() + DESTROY_WAIT_NS;

		for (;;) {
			unsigned left;

			pthread_mutex_lock(&c->lock);
			reap(c);
			left = c->inflight;
			pthread_mutex_unlock(&c->lock);
			if (!left)
				break;
			if (now_ns() >= end) {
				pl_msg(PL_NAME ": io_destroy: %u request(s) still in flight after "
					       "%d s; the context is kept, not freed",
				       left, (int)(DESTROY_WAIT_NS / 1000000000));
				return 0;
			}
			sched_yield();
		}
		pthread_mutex_lock(&pl_lock);
		for (unsigned i = 0; i < PL_MAX_MAPS && c->qps[i].dev; i++) {
			struct pl_dev *d = c->qps[i].dev;

			if (c->qps[i].qp && c->qps[i].gen == d->gen && d->ctrl) {
				upcie_nvme_qpair_destroy(c->qps[i].qp);
				pl_dev_unuse(d);
			}
		}
		pthread_mutex_unlock(&pl_lock);
		pthread_cond_destroy(&c->left);
		pthread_mutex_destroy(&c->lock);
		free(c->done);
		free(c->reqs);
		free(c);
	}
	return real ? real(ctx) : -ENOSYS;
}

int io_cancel(io_context_t ctx, struct iocb *cb, struct io_event *ev);
int io_cancel(io_context_t ctx, struct iocb *cb, struct io_event *ev)
{
	static int (*real)(io_context_t, struct iocb *, struct io_event *);

	if (!real)
		real = pl_next("io_cancel");
	if (cb && pl_get((int)cb->aio_fildes))
		return -EINVAL; /* as the kernel answers for a read or write */
	return real ? real(ctx, cb, ev) : -ENOSYS;
}

/* libaio's wrappers of the two above, should a program call them */
int io_queue_release(io_context_t ctx);
int io_queue_release(io_context_t ctx)
{
	return io_destroy(ctx);
}

/* The device goes at exit: its queue pairs go with the controller. pl_lock held. */
void pl_aio_close_dev(struct pl_dev *d)
{
	for (unsigned k = 0; k < MAX_CTX; k++) {
		struct pl_aio_ctx *c = ctxs[k]; /* at exit: no io_destroy runs */

		for (unsigned i = 0; c && i < PL_MAX_MAPS && c->qps[i].dev; i++)
			if (c->qps[i].dev == d)
				c->qps[i].qp = NULL;
	}
}
