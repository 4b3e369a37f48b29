/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Synchronous I/O for the interposed calls. Each thread has its own queue
 * pair per device (created at its first I/O, destroyed when the thread
 * exits or the device closes) and its own bounce buffer in the device's
 * heap; a call submits, then polls its queue until the callback ran.
 *
 * Rules, as the kernel applies them to a block device:
 *   O_DIRECT      offset, length and buffer address multiples of the
 *                 logical block size, else EINVAL
 *   buffered      any offset and length: partial blocks are read, patched
 *                 and written back (read-modify-write; not atomic against
 *                 another writer of the same block)
 *   end of device a read returns what is left (0 at the end), a write
 *                 ENOSPC at the end and is cut short before it
 *   O_SYNC/DSYNC  a Flush after each write call (one per call, however
 *                 many vectors it had)
 * Buffers go to the device as they are when they are registered (vfio,
 * sim: reg.c), pinned until their command completed, else through the
 * bounce buffer (uio, or when registration failed). A vector whose pieces
 * are all registered and aligned goes as one command (upcie_nvme_submit_iov:
 * PRPs, or an SGL); other vectors piece by piece.
 *
 * Errnos a program sees (a block device's): EIO for anything the device
 * or the library refused or failed (a device gone, a reset, a fenced
 * queue: never ENODEV or ESTALE), EINVAL for misaligned O_DIRECT, EBADF
 * for the wrong access mode, ENOSPC at the end of the device, ENOMEM when
 * the DMA heap has no bounce buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>

#include "preload.h"

#define QP_DEPTH 128

struct tls_slot {
	struct pl_dev *dev;
	unsigned gen;
	struct upcie_nvme_qpair *qp;
	void *bounce;
};

static __thread struct tls_slot slots[PL_MAX_MAPS];
static pthread_key_t tls_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void make_key(void)
{
	pthread_key_create(&tls_key, pl_thread_exit);
}

/* A thread ends: its queue pairs and bounce buffers go back. */
void pl_thread_exit(void *arg)
{
	struct tls_slot *s = arg;

	pthread_mutex_lock(&pl_lock);
	for (unsigned i = 0; i < PL_MAX_MAPS; i++) {
		struct pl_dev *d = s[i].dev;

		if (d && d->ctrl && d->pid == pl_pid && s[i].gen == d->gen) {
			upcie_dma_free(d->heap, s[i].bounce);
			upcie_nvme_qpair_destroy(s[i].qp);
		}
		memset(&s[i], 0, sizeof(s[i]));
	}
	pthread_mutex_unlock(&pl_lock);
}

static struct tls_slot *slot_of(struct pl_dev *d)
{
	unsigned gen = __atomic_load_n(&d->gen, __ATOMIC_ACQUIRE);
	struct tls_slot *free_slot = NULL;

	for (unsigned i = 0; i < PL_MAX_MAPS; i++) {
		if (slots[i].dev == d) {
			if (slots[i].gen == gen && slots[i].qp)
				return &slots[i];
			free_slot = &slots[i];
			break;
		}
		if (!slots[i].dev && !free_slot)
			free_slot = &slots[i];
	}
	if (!free_slot) {
		errno = ENOSPC;
		return NULL;
	}
	pthread_once(&key_once, make_key);
	pthread_mutex_lock(&pl_lock);
	if (!d->ctrl || d->pid != pl_pid) {
		pthread_mutex_unlock(&pl_lock);
		errno = EIO;
		return NULL;
	}
	struct upcie_nvme_qpair_opts o = {.depth = QP_DEPTH};
	struct upcie_nvme_qpair *qp = upcie_nvme_qpair_create(d->ctrl, &o);
	int err = errno;

	if (qp) {
		free_slot->dev = d;
		free_slot->gen = d->gen;
		free_slot->qp = qp;
		free_slot->bounce = NULL;
		pthread_setspecific(tls_key, slots);
	}
	pthread_mutex_unlock(&pl_lock);
	if (!qp) {
		pl_msg(PL_NAME ": %s: cannot create an I/O queue pair for this thread: %s", d->name,
		       upcie_errmsg());
		errno = err;
		return NULL;
	}
	return free_slot;
}

struct upcie_nvme_qpair *pl_thread_qpair(struct pl_dev *d)
{
	struct tls_slot *s = slot_of(d);

	return s ? s->qp : NULL;
}

void *pl_thread_bounce(struct pl_dev *d, size_t len)
{
	struct tls_slot *s = slot_of(d);

	if (!s || len > PL_CHUNK)
		return NULL;
	if (!s->bounce) {
		s->bounce = upcie_dma_alloc(d->heap, PL_CHUNK, 4096);
		if (!s->bounce)
			pl_msg(PL_NAME ": %s: no DMA memory for a bounce buffer: %s", d->name,
			       upcie_errmsg());
	}
	return s->bounce;
}

bool pl_status_retry(uint16_t status)
{
	return status == UPCIE_NVME_SC_HOST_ABORTED || status == UPCIE_NVME_SC_ABORT_SQ_DELETED;
}

/* 1: done, PL_RETRY: ended by a reset without running (submit it again),
 * -EIO: failed */
static void done_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	uint16_t st = upcie_nvme_cqe_status(cqe);

	*(volatile int *)arg = !st ? 1 : pl_status_retry(st) ? PL_RETRY : -EIO;
}

/* Poll until the callback set *state. The library completes every command
 * it accepted (a timeout aborts it, a reset or a lost device ends it), so
 * this returns once the device can no longer touch the buffer: 0, -EAGAIN
 * when a reset ended the command before it ran (the caller submits it
 * again, at most PL_TRIES times), or a negative errno. */
int pl_wait(struct upcie_nvme_qpair *qp, volatile int *state)
{
	int err = 0;

	while (!*state) {
		int rc = upcie_nvme_poll(qp, 0);

		if (rc < 0 && !err)
			err = rc;
		if (rc < 0)
			sched_yield();
	}
	if (*state == PL_RETRY)
		return err ? err : -EAGAIN;
	return *state < 0 ? *state : err;
}

/* One transfer, waited for. The thread's queue pair has nothing else
 * outstanding and a transfer is at most half its depth (max_chunk), so
 * the split always finds room: -EAGAIN cannot happen and is not retried. */
static int submit_wait(struct pl_dev *d, struct upcie_nvme_qpair *qp,
		       const struct upcie_nvme_ns *ns, void *buf, uint64_t off, size_t len,
		       bool write)
{
	struct upcie_nvme_split sp;
	uint64_t slba = off >> ns->lba_shift;
	uint32_t nlb = (uint32_t)(len >> ns->lba_shift);
	int rc = -EAGAIN;

	for (unsigned tries = 0; rc == -EAGAIN && tries < PL_TRIES; tries++) {
		volatile int state = 0;

		rc = write ? upcie_nvme_write_split(qp, ns, slba, nlb, buf, &sp, done_cb,
						    (void *)&state, UPCIE_NVME_SUBMIT_RING)
			   : upcie_nvme_read_split(qp, ns, slba, nlb, buf, &sp, done_cb,
						   (void *)&state, UPCIE_NVME_SUBMIT_RING);
		if (rc) {
			pl_msg(PL_NAME ": %s: %s of %zu bytes at %llu refused: %s", d->name,
			       write ? "write" : "read", len, (unsigned long long)off,
			       upcie_errmsg());
			return -EIO; /* a device gone (ENODEV), fenced (ESTALE), ...: EIO */
		}
		rc = pl_wait(qp, &state);
	}
	return rc < 0 ? -EIO : 0;
}

/* Largest transfer sent as one split (all its parts in the queue at once,
 * half the queue at most), a multiple of the block size. */
static size_t max_chunk(const struct upcie_nvme_ns *ns)
{
	size_t part = (size_t)ns->max_xfer_blocks << ns->lba_shift;
	size_t n = part * (QP_DEPTH / 2);

	return n < (8u << 20) ? n : (8u << 20);
}

bool pl_direct_ok(struct pl_file *f, const void *buf, size_t len, uint64_t off)
{
	uint64_t m = f->lbs - 1;

	return !((off | len | (uintptr_t)buf) & m);
}

/* Aligned offset and length, any buffer. */
static int rw_aligned(struct pl_file *f, struct upcie_nvme_qpair *qp, char *buf, size_t len,
		      uint64_t off, bool write)
{
	struct pl_dev *d = f->dev;
	int slot = pl_reg_pin(d, buf, len), rc = 0; /* held until the last part is done */
	bool direct = slot >= 0;
	size_t step = max_chunk(f->ns);

	if (!direct && step > PL_CHUNK)
		step = PL_CHUNK;

	for (size_t done = 0; done < len && !rc;) {
		size_t n = len - done < step ? len - done : step;
		char *b = direct ? buf + done : pl_thread_bounce(d, n);

		if (!b) {
			rc = -ENOMEM;
			break;
		}
		if (write && !direct)
			memcpy(b, buf + done, n);
		rc = submit_wait(d, qp, f->ns, b, off + done, n, write);
		if (!rc && !write && !direct)
			memcpy(buf + done, b, n);
		done += n;
	}
	pl_reg_unpin(d, slot);
	return rc;
}

/* Any offset and length (buffered opens): whole blocks through the bounce
 * buffer; a write reads the partial blocks at either end first. */
static int rw_unaligned(struct pl_file *f, struct upcie_nvme_qpair *qp, char *buf, size_t len,
			uint64_t off, bool write)
{
	struct pl_dev *d = f->dev;
	uint64_t lbs = f->lbs, a0 = off & ~(lbs - 1), a1 = (off + len + lbs - 1) & ~(lbs - 1);
	size_t step = max_chunk(f->ns) < PL_CHUNK ? max_chunk(f->ns) : PL_CHUNK;

	for (uint64_t c0 = a0; c0 < a1;) {
		size_t n = a1 - c0 < step ? (size_t)(a1 - c0) : step;
		uint64_t u0 = off > c0 ? off : c0;
		uint64_t u1 = off + len < c0 + n ? off + len : c0 + n;
		char *b = pl_thread_bounce(d, n);
		int rc = 0;

		if (!b)
			return -ENOMEM;
		if (!write) {
			rc = submit_wait(d, qp, f->ns, b, c0, n, false);
			if (!rc)
				memcpy(buf + (u0 - off), b + (u0 - c0), u1 - u0);
		} else {
			if (u0 > c0)
				rc = submit_wait(d, qp, f->ns, b, c0, lbs, false);
			if (!rc && u1 < c0 + n)
				rc = submit_wait(d, qp, f->ns, b + n - lbs, c0 + n - lbs, lbs,
						 false);
			if (!rc) {
				memcpy(b + (u0 - c0), buf + (u0 - off), u1 - u0);
				rc = submit_wait(d, qp, f->ns, b, c0, n, true);
			}
		}
		if (rc)
			return rc;
		c0 += n;
	}
	return 0;
}

static int check_file(struct pl_file *f, const char *what)
{
	int rc = pl_check_owner(f, what);

	if (rc)
		return rc;
	if (!f->dev->ctrl)
		return -EIO; /* closed at exit */
	return 0;
}

/* One buffer, no Flush (the caller adds the one O_SYNC asks for). */
static ssize_t rw_one(struct pl_file *f, void *buf, size_t len, uint64_t off, bool write)
{
	struct upcie_nvme_qpair *qp;
	int acc = f->flags & O_ACCMODE, rc;

	rc = check_file(f, write ? "write" : "read");
	if (rc)
		return rc;
	if ((write && acc == O_RDONLY) || (!write && acc == O_WRONLY))
		return -EBADF;
	if (f->flags & O_DIRECT && !pl_direct_ok(f, buf, len, off))
		return -EINVAL;
	if (!len)
		return 0;
	if (off >= f->size)
		return write ? -ENOSPC : 0;
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	if (len > 0x7ffff000)
		len = 0x7ffff000; /* as read(2) and write(2) do */
	qp = pl_thread_qpair(f->dev);
	if (!qp)
		return -EIO;
	if (pl_direct_ok(f, NULL, len, off))
		rc = rw_aligned(f, qp, buf, len, off, write);
	else
		rc = rw_unaligned(f, qp, buf, len, off, write);
	if (rc)
		return rc;
	if (write)
		__atomic_or_fetch(&f->dev->dirty, 1u << ((f->map->nsid - 1) & 31),
				  __ATOMIC_RELAXED);
	return (ssize_t)len;
}

static bool wants_flush(const struct pl_file *f)
{
	return (f->flags & (O_SYNC | O_DSYNC)) != 0;
}

ssize_t pl_rw(struct pl_file *f, void *buf, size_t len, uint64_t off, bool write)
{
	ssize_t n = rw_one(f, buf, len, off, write);
	int rc;

	if (n > 0 && write && wants_flush(f)) {
		rc = pl_flush(f);
		if (rc)
			return rc;
	}
	return n;
}

#define IOV_ONE_CMD 64 /* pieces a vector may have to go as one command */

/* The whole vector as one command (upcie_nvme_submit_iov) when every piece
 * is registered, the transfer whole blocks inside the device and within
 * one command's size. 1 when done, 0 when the vector does not qualify
 * (nothing was sent), or a negative errno. */
static int rwv_one_cmd(struct pl_file *f, const struct iovec *iov, int iovcnt, size_t total,
		       uint64_t off, bool write)
{
	const struct upcie_nvme_ns *ns = f->ns;
	struct pl_dev *d = f->dev;
	struct iovec v[IOV_ONE_CMD];
	int pins[IOV_ONE_CMD], rc = 0;
	unsigned n = 0;
	struct upcie_nvme_sqe sqe = {0};
	struct upcie_nvme_qpair *qp;
	volatile int state = 0;
	size_t list_bytes;
	void *list;

	if (!total || ((off | total) & (f->lbs - 1)) || off >= f->size || total > f->size - off ||
	    total > ((size_t)ns->max_xfer_blocks << ns->lba_shift) || check_file(f, "I/O"))
		return 0;
	for (int i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_len)
			continue;
		if (n == IOV_ONE_CMD)
			goto undo;
		pins[n] = pl_reg_pin(d, iov[i].iov_base, iov[i].iov_len);
		if (pins[n] < 0)
			goto undo;
		v[n++] = iov[i];
	}
	qp = pl_thread_qpair(d);
	list_bytes = upcie_nvme_iov_list_bytes(n, total, d->mps ? d->mps : 4096);
	list = qp ? pl_thread_bounce(d, list_bytes) : NULL;
	if (!list)
		goto undo;
	sqe.opc = write ? UPCIE_NVME_CMD_WRITE : UPCIE_NVME_CMD_READ;
	sqe.nsid = f->map->nsid;
	sqe.cdw10 = (uint32_t)(off >> ns->lba_shift);
	sqe.cdw11 = (uint32_t)((off >> ns->lba_shift) >> 32);
	sqe.cdw12 = (uint32_t)(total >> ns->lba_shift) - 1;
	for (unsigned tries = 0;; tries++) {
		state = 0;
		rc = upcie_nvme_submit_iov(d->ctrl, qp, UPCIE_NVME_IOV_AUTO, &sqe, v, n, list,
					   list_bytes, done_cb, (void *)&state,
					   UPCIE_NVME_SUBMIT_RING);
		if ((rc == -EINVAL || rc == -ENOTSUP) && !tries)
			goto undo; /* pieces neither PRPs nor an SGL can describe: one by one */
		if (rc) {
			pl_msg(PL_NAME ": %s: vectored %s of %zu bytes refused: %s", d->name,
			       write ? "write" : "read", total, upcie_errmsg());
			rc = -EIO;
			break;
		}
		rc = pl_wait(qp, &state);
		if (rc != -EAGAIN || tries + 1 == PL_TRIES) {
			rc = rc < 0 ? -EIO : 1;
			break;
		}
	}
	for (unsigned k = 0; k < n; k++)
		pl_reg_unpin(d, pins[k]);
	return rc;
undo:
	for (unsigned k = 0; k < n; k++)
		pl_reg_unpin(d, pins[k]);
	return 0;
}

ssize_t pl_rwv(struct pl_file *f, const struct iovec *iov, int iovcnt, uint64_t off, bool write)
{
	ssize_t total = 0;
	size_t sum = 0;
	int acc = f->flags & O_ACCMODE, rc;

	if (iovcnt < 0 || iovcnt > 1024)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) /* saturating: only the one-command test uses it */
		sum = iov[i].iov_len > SIZE_MAX - sum ? SIZE_MAX : sum + iov[i].iov_len;
	if (f->flags & O_DIRECT) {
		/* every piece aligned, as the kernel wants them (before any I/O) */
		for (int i = 0; i < iovcnt; i++)
			if (!pl_direct_ok(f, iov[i].iov_base, iov[i].iov_len, off))
				return -EINVAL;
	}
	if ((write && acc == O_RDONLY) || (!write && acc == O_WRONLY))
		return -EBADF;
	rc = rwv_one_cmd(f, iov, iovcnt, sum, off, write);
	if (rc < 0)
		return rc;
	if (rc) {
		total = (ssize_t)sum;
		if (write)
			__atomic_or_fetch(&f->dev->dirty, 1u << ((f->map->nsid - 1) & 31),
					  __ATOMIC_RELAXED);
	} else {
		for (int i = 0; i < iovcnt; i++) {
			ssize_t n;

			if (!iov[i].iov_len)
				continue;
			n = rw_one(f, iov[i].iov_base, iov[i].iov_len, off + (uint64_t)total,
				   write);
			if (n < 0) {
				if (!total)
					return n;
				break;
			}
			total += n;
			if ((size_t)n < iov[i].iov_len)
				break;
		}
	}
	/* O_SYNC: one Flush for the call, after every piece */
	if (total > 0 && write && wants_flush(f)) {
		rc = pl_flush(f);
		if (rc)
			return rc;
	}
	return total;
}

int pl_flush(struct pl_file *f)
{
	struct upcie_nvme_qpair *qp;
	volatile int state = 0;
	int rc = check_file(f, "fsync");

	if (rc)
		return rc;
	qp = pl_thread_qpair(f->dev);
	if (!qp)
		return -EIO;
	rc = -EAGAIN;
	for (unsigned tries = 0; rc == -EAGAIN && tries < PL_TRIES; tries++) {
		state = 0;
		rc = upcie_nvme_flush(qp, f->map->nsid, done_cb, (void *)&state,
				      UPCIE_NVME_SUBMIT_RING);
		if (rc) {
			pl_msg(PL_NAME ": %s: Flush refused: %s", f->dev->name, upcie_errmsg());
			return -EIO;
		}
		rc = pl_wait(qp, &state);
	}
	return rc < 0 ? -EIO : 0;
}

/* BLKDISCARD (Dataset Management, deallocate) and BLKZEROOUT (Write Zeroes,
 * or zeroes written when the controller has no Write Zeroes). */
int pl_discard(struct pl_file *f, uint64_t off, uint64_t len, bool zeroout)
{
	const struct upcie_nvme_id_ctrl *id;
	struct upcie_nvme_qpair *qp;
	uint64_t lbs = f->lbs;
	int rc = check_file(f, zeroout ? "BLKZEROOUT" : "BLKDISCARD");

	if (rc)
		return rc;
	if ((f->flags & O_ACCMODE) == O_RDONLY)
		return -EBADF;
	if ((off | len) & (lbs - 1) || off > f->size || len > f->size - off)
		return -EINVAL;
	if (!len)
		return 0;
	qp = pl_thread_qpair(f->dev);
	if (!qp)
		return -EIO;
	id = upcie_nvme_ctrl_id(f->dev->ctrl);
	__atomic_or_fetch(&f->dev->dirty, 1u << ((f->map->nsid - 1) & 31), __ATOMIC_RELAXED);
	if (!zeroout && !(id->oncs & UPCIE_NVME_ONCS_DSM))
		return -EOPNOTSUPP;
	if (zeroout && !(id->oncs & UPCIE_NVME_ONCS_WRITE_ZEROES)) {
		char *b = pl_thread_bounce(f->dev, PL_CHUNK);

		if (!b)
			return -ENOMEM;
		memset(b, 0, PL_CHUNK);
		size_t step = max_chunk(f->ns) < PL_CHUNK ? max_chunk(f->ns) : PL_CHUNK;

		for (uint64_t done = 0; done < len;) {
			size_t n = len - done < step ? (size_t)(len - done) : step;

			rc = submit_wait(f->dev, qp, f->ns, b, off + done, n, true);
			if (rc)
				return rc;
			done += n;
		}
		return 0;
	}
	for (uint64_t lba = off / lbs, end = (off + len) / lbs; lba < end;) {
		uint64_t left = end - lba;
		uint32_t nlb = zeroout ? (left < 65536 ? (uint32_t)left : 65536)
				       : (left < 0x40000000 ? (uint32_t)left : 0x40000000);
		volatile int state = 0;
		unsigned tries = 0;

	again:
		state = 0;
		if (zeroout) {
			rc = upcie_nvme_write_zeroes(qp, f->ns, lba, nlb, done_cb, (void *)&state,
						     UPCIE_NVME_SUBMIT_RING);
		} else {
			struct upcie_nvme_dsm_range *r = pl_thread_bounce(f->dev, sizeof(*r));

			if (!r)
				return -ENOMEM;
			r->cattr = 0;
			r->nlb = nlb;
			r->slba = lba;
			rc = upcie_nvme_deallocate(qp, f->map->nsid, r, 1, done_cb, (void *)&state,
						   UPCIE_NVME_SUBMIT_RING);
		}
		if (rc) {
			pl_msg(PL_NAME ": %s: %s refused: %s", f->dev->name,
			       zeroout ? "Write Zeroes" : "deallocate", upcie_errmsg());
			return -EIO;
		}
		rc = pl_wait(qp, &state);
		if (rc == -EAGAIN && ++tries < PL_TRIES)
			goto again;
		if (rc < 0)
			return -EIO;
		lba += nlb;
	}
	return 0;
}
