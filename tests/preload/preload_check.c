/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program that knows nothing of libupcie: plain libc and libaio calls on
 * a path, checked against what a block device must answer. Run under
 * LD_PRELOAD=libupcie-preload.so with the path mapped to a namespace of 4 KiB
 * or 512 B blocks (tests/preload/preload-sim.sh); prints TAP.
 *
 *   preload_check PATH SCRATCH_FILE
 *
 * Checks: block device identity (fstat, stat, BLKGETSIZE64, BLKSSZGET,
 * BLKPBSZGET, BLKGETSIZE, lseek SEEK_END); O_DIRECT pwrite/pread of
 * patterns read back equal, from malloc'd, page-aligned and stack memory;
 * misaligned offset, length and buffer refused with EINVAL; buffered
 * writes at odd offsets (read-modify-write) read back with their
 * neighbours intact; preadv/pwritev; read/write with the file offset and a
 * dup sharing it; end of device (read 0, write ENOSPC, lseek past it
 * EINVAL); fsync; BLKDISCARD and BLKZEROOUT; O_RDONLY refuses writes
 * (EBADF); four threads doing verified I/O at once; libaio: a context with
 * requests on the mapped path and on SCRATCH_FILE (an ordinary file, through
 * the kernel) in one io_submit, reaped with min_nr, an O_DIRECT misaligned
 * request completing with -EINVAL, an empty io_getevents timing out; a
 * forked child's use of an inherited fd fails with EIO (its io_submit
 * with EBADF), and its open of the path with EBUSY while the parent holds
 * it; more than 64 buffers (the registration cache's size) in use by four
 * threads at once, every I/O verified (eviction never takes a region under
 * a command); io_destroy while other threads are inside io_submit and
 * io_getevents on the context (they leave with -EINVAL, nothing is freed
 * under them, the requests complete first); io_submit on a destroyed
 * context: -EINVAL.
 *
 *   preload_check PATH SCRATCH_FILE MODE
 *
 * runs one scenario for preload-sim.sh, which reads the sim's counters
 * (UPCIE_PRELOAD_SIM_STATS) afterwards: osync-iov (pwritev of four
 * registered 4 KiB pieces on an O_SYNC file: one command and one Flush),
 * osync-stack (the same from the stack, bounced piece by piece: four
 * writes, one Flush), free-busy (a buffer freed while a libaio write from
 * it runs: its registration must not leak), bench (per-I/O time of 4 KiB
 * O_DIRECT preads at QD 1 and of malloc + free pairs, for BENCHMARKS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBAIO
#include <libaio.h>
#endif

static int n_test, n_fail;
static const char *path;
static uint64_t dev_size;
static int lbs;

static void ok(int cond, const char *what, const char *why)
{
	n_test++;
	if (cond) {
		printf("ok %d - %s\n", n_test, what);
	} else {
		n_fail++;
		printf("not ok %d - %s # %s (errno %d: %s)\n", n_test, what, why, errno,
		       strerror(errno));
	}
	fflush(stdout);
}

static void fill(void *buf, size_t len, uint32_t seed)
{
	uint32_t *p = buf;

	for (size_t i = 0; i < len / 4; i++)
		p[i] = seed * 2654435761u + (uint32_t)i;
}

static void *aligned(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, 4096, len))
		return NULL;
	return p;
}

static int direct_roundtrip(int fd, void *wbuf, void *rbuf, size_t len, off_t off, uint32_t seed)
{
	fill(wbuf, len, seed);
	memset(rbuf, 0xee, len);
	if (pwrite(fd, wbuf, len, off) != (ssize_t)len)
		return 0;
	if (pread(fd, rbuf, len, off) != (ssize_t)len)
		return 0;
	return !memcmp(wbuf, rbuf, len);
}

struct thr {
	int fd;
	int id;
	int good;
};

static void *thread_io(void *arg)
{
	struct thr *t = arg;
	size_t len = 64 * 1024;
	char *w = aligned(len), *r = aligned(len);

	t->good = w && r;
	for (int i = 0; i < 50 && t->good; i++)
		t->good = direct_roundtrip(t->fd, w, r, len,
					   (off_t)(8u << 20) + (off_t)t->id * (1 << 20) +
					       (off_t)(i % 8) * (off_t)len,
					   (uint32_t)(t->id * 1000 + i));
	free(w);
	free(r);
	return NULL;
}

/* Each of four threads cycles through 24 buffers of its own: 96 regions
 * against a cache of 64, so regions are evicted while other threads'
 * commands use theirs. */
enum { EV_THREADS = 4, EV_BUFS = 24, EV_ROUNDS = 6 };

static void *thread_evict(void *arg)
{
	struct thr *t = arg;
	char *w[EV_BUFS], *r = NULL;
	size_t len = 8192;

	t->good = 1;
	for (int i = 0; i < EV_BUFS; i++) {
		w[i] = aligned(len); /* its own pages, page aligned: its own region */
		if (!w[i])
			t->good = 0;
	}
	r = aligned(len);
	for (int k = 0; k < EV_ROUNDS * EV_BUFS && t->good && r; k++) {
		int i = k % EV_BUFS;
		off_t off = (off_t)(12u << 20) + (off_t)t->id * (1 << 20) + (off_t)i * (off_t)len;

		t->good = direct_roundtrip(t->fd, w[i], w[(i + 1) % EV_BUFS], len, off,
					   (uint32_t)(t->id * 7919 + k));
		if (!t->good)
			fprintf(stderr, "# thread %d buffer %d: errno %d\n", t->id, i, errno);
	}
	for (int i = 0; i < EV_BUFS; i++)
		free(w[i]);
	free(r);
	return NULL;
}

static void evict_checks(int fd)
{
	pthread_t th[EV_THREADS];
	struct thr t[EV_THREADS];
	int all = 1;

	for (int i = 0; i < EV_THREADS; i++) {
		t[i] = (struct thr){.fd = fd, .id = i};
		pthread_create(&th[i], NULL, thread_evict, &t[i]);
	}
	for (int i = 0; i < EV_THREADS; i++) {
		pthread_join(th[i], NULL);
		all &= t[i].good;
	}
	ok(all, "96 buffers in four threads against a cache of 64: every I/O verified",
	   "an I/O failed or read back wrong");
}

static void identity(int fd)
{
	struct stat st;
	uint64_t sz = 0;
	unsigned long sectors = 0;
	int ssz = 0;
	unsigned pbsz = 0;

	ok(!fstat(fd, &st) && S_ISBLK(st.st_mode), "fstat: a block device", "not S_IFBLK");
	ok(!stat(path, &st) && S_ISBLK(st.st_mode), "stat of the path: a block device",
	   "not S_IFBLK");
	ok(!ioctl(fd, BLKGETSIZE64, &sz) && sz >= (32u << 20), "BLKGETSIZE64", "size");
	dev_size = sz;
	ok(!ioctl(fd, BLKSSZGET, &ssz) && (ssz == 512 || ssz == 4096), "BLKSSZGET", "size");
	lbs = ssz;
	ok(!ioctl(fd, BLKPBSZGET, &pbsz) && pbsz == (unsigned)ssz, "BLKPBSZGET", "size");
	ok(!ioctl(fd, BLKGETSIZE, &sectors) && sectors == sz / 512, "BLKGETSIZE (sectors)", "size");
	ok(lseek(fd, 0, SEEK_END) == (off_t)sz && lseek(fd, 0, SEEK_SET) == 0,
	   "lseek SEEK_END is the size", "lseek");
	errno = 0;
	char tbuf[256];
	ok(ioctl(fd, 0x5401 /* TCGETS */, tbuf) == -1 && errno == ENOTTY,
	   "a terminal ioctl: ENOTTY", "not ENOTTY");
}

static void direct_checks(void)
{
	int fd = open(path, O_RDWR | O_DIRECT);
	size_t len = 256 * 1024;
	char *w = aligned(2u << 20), *r = aligned(2u << 20), *m = malloc(len + 4096);
	char stackbuf[8192] __attribute__((aligned(4096)));
	ssize_t n;

	ok(fd >= 0, "open O_DIRECT", "open failed");
	if (fd < 0)
		return;
	identity(fd);
	ok(direct_roundtrip(fd, w, r, len, 0, 1), "O_DIRECT 256 KiB at 0, page-aligned buffers",
	   "mismatch");
	ok(direct_roundtrip(fd, w, r, (size_t)lbs, (off_t)(dev_size - (uint64_t)lbs), 2),
	   "O_DIRECT one block at the end", "mismatch");
	char *ma = (char *)(((uintptr_t)m + (uintptr_t)lbs - 1) & ~((uintptr_t)lbs - 1));
	ok(direct_roundtrip(fd, ma, r, len, 1 << 20, 3), "O_DIRECT from malloc'd memory",
	   "mismatch");
	fill(stackbuf, sizeof(stackbuf), 4);
	ok(pwrite(fd, stackbuf, sizeof(stackbuf), 2 << 20) == (ssize_t)sizeof(stackbuf) &&
	       pread(fd, r, sizeof(stackbuf), 2 << 20) == (ssize_t)sizeof(stackbuf) &&
	       !memcmp(stackbuf, r, sizeof(stackbuf)),
	   "O_DIRECT from the stack", "mismatch");
	errno = 0;
	ok(pread(fd, r, (size_t)lbs, lbs / 2) == -1 && errno == EINVAL,
	   "O_DIRECT misaligned offset: EINVAL", "not EINVAL");
	errno = 0;
	ok(pwrite(fd, w, (size_t)lbs + 100, 0) == -1 && errno == EINVAL,
	   "O_DIRECT misaligned length: EINVAL", "not EINVAL");
	errno = 0;
	ok(pread(fd, w + 1, (size_t)lbs, 0) == -1 && errno == EINVAL,
	   "O_DIRECT misaligned buffer: EINVAL", "not EINVAL");
	/* vectors */
	fill(w, 3 * 4096, 5);
	struct iovec iov[3] = {{w, 4096}, {w + 4096, 8192}, {w + 3 * 4096, 4096}};
	n = pwritev(fd, iov, 3, 4 << 20);
	memset(r, 0, 4 * 4096);
	struct iovec riov[2] = {{r, 4096 * 3}, {r + 4096 * 3, 4096}};
	ok(n == 4 * 4096 && preadv(fd, riov, 2, 4 << 20) == 4 * 4096 && !memcmp(w, r, 4 * 4096),
	   "pwritev / preadv", "mismatch");
	/* file offset, dup */
	int fd2 = dup(fd);
	ok(lseek(fd, 1 << 20, SEEK_SET) == 1 << 20 && read(fd2, r, 4096) == 4096 &&
	       lseek(fd, 0, SEEK_CUR) == (1 << 20) + 4096 && !memcmp(r, ma, 4096),
	   "read at the file offset, shared by a dup", "offset or data");
	fill(w, 8192, 6);
	ok(lseek(fd2, 6 << 20, SEEK_SET) == 6 << 20 && write(fd, w, 8192) == 8192 &&
	       pread(fd2, r, 8192, 6 << 20) == 8192 && !memcmp(w, r, 8192) &&
	       lseek(fd, 0, SEEK_CUR) == (6 << 20) + 8192,
	   "write at the file offset", "offset or data");
	close(fd2);
	/* end of the device */
	ok(pread(fd, r, 4096, (off_t)dev_size) == 0, "read at the end: 0 bytes", "not 0");
	errno = 0;
	ok(pwrite(fd, w, 4096, (off_t)dev_size) == -1 && errno == ENOSPC,
	   "write at the end: ENOSPC", "not ENOSPC");
	ok(pread(fd, r, 8192, (off_t)dev_size - 4096) == 4096, "read across the end: cut short",
	   "not 4096");
	errno = 0;
	ok(lseek(fd, (off_t)dev_size + 4096, SEEK_SET) == -1 && errno == EINVAL,
	   "lseek past the end: EINVAL", "not EINVAL");
	ok(!fsync(fd) && !fdatasync(fd), "fsync, fdatasync", "failed");
	/* discard and write zeroes */
	uint64_t range[2] = {3 << 20, 1 << 20};
	fill(w, 1 << 20, 7);
	ok(pwrite(fd, w, 1 << 20, 3 << 20) == 1 << 20 && !ioctl(fd, BLKZEROOUT, range) &&
	       pread(fd, r, 1 << 20, 3 << 20) == 1 << 20 && r[0] == 0 && r[(1 << 20) - 1] == 0 &&
	       !memcmp(r, r + 1, (1 << 20) - 1),
	   "BLKZEROOUT: zeroes read back", "not zero");
	ok(!ioctl(fd, BLKDISCARD, range), "BLKDISCARD (deallocate)", "failed");
	range[0] = 1;
	errno = 0;
	ok(ioctl(fd, BLKDISCARD, range) == -1 && errno == EINVAL, "BLKDISCARD misaligned: EINVAL",
	   "not EINVAL");
	/* threads */
	pthread_t th[4];
	struct thr t[4];
	int all = 1;
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){.fd = fd, .id = i};
		pthread_create(&th[i], NULL, thread_io, &t[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		all &= t[i].good;
	}
	ok(all, "four threads, verified 64 KiB I/O each", "a thread saw a mismatch");
	evict_checks(fd);
	/* fork */
	pid_t pid = fork();
	if (pid == 0) {
		char b[4096] __attribute__((aligned(4096)));
		int e1, e2, fd3;

		errno = 0;
		e1 = pread(fd, b, 4096, 0) == -1 ? errno : 0;
		errno = 0;
		fd3 = open(path, O_RDWR);
		e2 = fd3 < 0 ? errno : 0;
		int e3 = 0;
#ifdef HAVE_LIBAIO
		io_context_t cctx = 0;
		struct iocb ccb, *cp = &ccb;

		io_prep_pread(&ccb, fd, b, 4096, 0);
		e3 = io_setup(4, &cctx) ? -1 : io_submit(cctx, 1, &cp);
		if (cctx)
			io_destroy(cctx);
#else
		e3 = -EBADF;
#endif
		_exit(e1 == EIO && e2 == EBUSY && e3 == -EBADF ? 0 : 1);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "fork: the child's pread on an inherited fd EIO, io_submit EBADF, its open EBUSY",
	   "child failed");
	ok(direct_roundtrip(fd, w, r, 4096, 0, 8), "the parent's I/O after the fork", "mismatch");
	ok(!close(fd), "close", "failed");
	free(w);
	free(r);
	free(m);
}

static void buffered_checks(void)
{
	int fd = open(path, O_RDWR);
	char *base = aligned(3 * 4096), *got = aligned(3 * 4096), *in = malloc(5000);

	ok(fd >= 0, "open without O_DIRECT", "open failed");
	ok(base && got && in, "buffers for the buffered checks", "out of memory");
	if (fd < 0 || !base || !got || !in) {
		if (fd >= 0)
			close(fd);
		free(base);
		free(got);
		free(in);
		return;
	}
	fill(base, 3 * 4096, 10);
	fill(in, 5000, 11);
	memcpy(got, base, 3 * 4096);
	memcpy(got + 1000, in, 5000);
	ok(pwrite(fd, base, 3 * 4096, 5 << 20) == 3 * 4096 &&
	       pwrite(fd, in, 5000, (5 << 20) + 1000) == 5000,
	   "buffered write of 5000 bytes at an odd offset", "write failed");
	memset(base, 0, 3 * 4096);
	ok(pread(fd, base, 3 * 4096, 5 << 20) == 3 * 4096 && !memcmp(base, got, 3 * 4096),
	   "read-modify-write kept the neighbouring bytes", "mismatch");
	ok(pread(fd, base, 7, (5 << 20) + 1001) == 7 && !memcmp(base, in + 1, 7),
	   "buffered read of 7 bytes at an odd offset", "mismatch");
	close(fd);
	fd = open(path, O_RDONLY);
	errno = 0;
	ok(fd >= 0 && pwrite(fd, in, 512, 0) == -1 && errno == EBADF,
	   "O_RDONLY: write refused with EBADF", "not EBADF");
	ok(!(fcntl(fd, F_GETFL) & O_DIRECT) && !fcntl(fd, F_SETFL, O_DIRECT) &&
	       (fcntl(fd, F_GETFL) & O_DIRECT),
	   "fcntl F_SETFL O_DIRECT", "flags");
	close(fd);
	free(base);
	free(got);
	free(in);
}

#ifdef HAVE_LIBAIO
static void aio_checks(const char *scratch)
{
	int fd = open(path, O_RDWR | O_DIRECT),
	    sfd = open(scratch, O_RDWR | O_CREAT | O_TRUNC, 0600);
	io_context_t ctx = 0;
	enum { N = 16, LEN = 16384 };
	struct iocb cbs[N + 3], *p[N + 3];
	struct io_event ev[N + 3];
	char *w = aligned(N * LEN), *r = aligned(N * LEN), *s = malloc(4096);
	struct timespec ts = {0, 50 * 1000 * 1000};
	int got = 0, rc, bad = 0;

	ok(fd >= 0 && sfd >= 0 && !io_setup(64, &ctx), "io_setup", "failed");
	if (fd < 0 || sfd < 0)
		return;
	fill(w, N * LEN, 20);
	fill(s, 4096, 21);
	for (int i = 0; i < N; i++) {
		io_prep_pwrite(&cbs[i], fd, w + i * LEN, LEN, (7 << 20) + i * LEN);
		cbs[i].data = (void *)(intptr_t)i;
		p[i] = &cbs[i];
	}
	io_prep_pwrite(&cbs[N], sfd, s, 4096, 0); /* an ordinary file, in the same batch */
	cbs[N].data = (void *)(intptr_t)N;
	p[N] = &cbs[N];
	io_prep_pread(&cbs[N + 1], fd, w, (size_t)lbs, lbs / 2); /* misaligned O_DIRECT */
	cbs[N + 1].data = (void *)(intptr_t)(N + 1);
	p[N + 1] = &cbs[N + 1];
	rc = io_submit(ctx, N + 2, p);
	ok(rc == N + 2, "io_submit: 16 writes, one ordinary file's, one misaligned", "count");
	while (got < N + 2 && rc > 0) {
		int n = io_getevents(ctx, 1, N + 2, ev, NULL);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			long want = ev[i].obj == &cbs[N + 1] ? -EINVAL
				    : ev[i].obj == &cbs[N]   ? 4096
							     : LEN;
			if ((long)ev[i].res != want || ev[i].data != ev[i].obj->data)
				bad++;
		}
		got += n;
	}
	ok(got == N + 2 && !bad, "io_getevents: every event, results as the kernel's", "events");
	for (int i = 0; i < N; i++) {
		io_prep_pread(&cbs[i], fd, r + i * LEN, LEN, (7 << 20) + i * LEN);
		p[i] = &cbs[i];
	}
	memset(r, 0, N * LEN);
	rc = io_submit(ctx, N, p);
	got = rc == N ? io_getevents(ctx, N, N, ev, NULL) : -1;
	ok(got == N && !memcmp(w, r, N * LEN), "libaio reads (min_nr = all) read back the writes",
	   "mismatch");
	io_prep_fsync(&cbs[0], fd);
	p[0] = &cbs[0];
	ok(io_submit(ctx, 1, p) == 1 && io_getevents(ctx, 1, 1, ev, NULL) == 1 && ev[0].res == 0,
	   "IOCB_CMD_FSYNC", "failed");
	ok(io_getevents(ctx, 1, 1, ev, &ts) == 0, "io_getevents with nothing in flight times out",
	   "not 0");
	ok(!io_destroy(ctx), "io_destroy", "failed");
	/* a fresh context whose first request is an ordinary file's */
	ctx = 0;
	io_prep_pwrite(&cbs[0], sfd, s, 4096, 4096);
	io_prep_pread(&cbs[1], fd, r, LEN, 7 << 20);
	p[0] = &cbs[0];
	p[1] = &cbs[1];
	ok(!io_setup(8, &ctx) && io_submit(ctx, 1, p) == 1 && io_submit(ctx, 1, p + 1) == 1 &&
	       io_getevents(ctx, 2, 2, ev, NULL) == 2 && !io_destroy(ctx),
	   "an ordinary file's request first, then a mapped one: io_getevents(min_nr 2) gets both",
	   "failed");
	char back[4096];
	ok(pread(sfd, back, 4096, 0) == 4096 && !memcmp(back, s, 4096),
	   "the ordinary file got its write through the kernel", "mismatch");
	close(fd);
	close(sfd);
	unlink(scratch);
	free(w);
	free(r);
	free(s);
}

struct race {
	io_context_t ctx;
	int fd;
	char *buf;
	volatile int stop;
	int bad;
	long subs, evs;
	struct iocb *cbs; /* RACE_CBS, each used once: live until io_destroy returned */
	unsigned next;
};

enum { RACE_CBS = 8192 };

static void *race_submit(void *arg)
{
	struct race *ra = arg;
	struct iocb *p[4];

	while (!ra->stop && ra->next + 4 <= RACE_CBS) {
		for (int i = 0; i < 4; i++) {
			p[i] = &ra->cbs[ra->next++];
			io_prep_pread(p[i], ra->fd, ra->buf + i * 4096, 4096, 4096 * i);
		}
		int rc = io_submit(ra->ctx, 4, p);
		if (rc == -EINVAL)
			break; /* destroyed */
		if (rc < 0 && rc != -EAGAIN) {
			ra->bad++;
			break;
		}
		if (rc > 0)
			ra->subs += rc;
		/* after the destroy the iocbs may still be the device's: the
		 * context's requests complete before io_destroy returns */
	}
	return NULL;
}

static void *race_reap(void *arg)
{
	struct race *ra = arg;
	struct io_event ev[8];
	struct timespec ts = {0, 2 * 1000 * 1000};

	for (;;) {
		int n = io_getevents(ra->ctx, 1, 8, ev, &ts);
		if (n == -EINVAL)
			break;
		if (n < 0) {
			ra->bad++;
			break;
		}
		ra->evs += n;
		if (ra->stop && !n)
			break;
	}
	return NULL;
}

/* io_destroy while one thread submits and two reap on the context. */
static void aio_destroy_race(void)
{
	int fd = open(path, O_RDWR | O_DIRECT), bad = 0, rounds = 40;
	char *buf = aligned(4 * 4096 * 2);
	struct iocb cb, *p = &cb;

	ok(fd >= 0 && buf, "open for the io_destroy race", "failed");
	if (fd < 0 || !buf)
		return;
	for (int k = 0; k < rounds && !bad; k++) {
		struct race ra = {
		    .fd = fd, .buf = buf, .cbs = calloc(RACE_CBS, sizeof(struct iocb))};
		pthread_t th[3];

		if (!ra.cbs || io_setup(32, &ra.ctx)) {
			bad++;
			break;
		}
		/* a request of ours first: the context is this library's */
		struct iocb *first = &ra.cbs[ra.next++];
		io_prep_pread(first, fd, buf, 4096, 0);
		if (io_submit(ra.ctx, 1, &first) != 1)
			bad++;
		pthread_create(&th[0], NULL, race_submit, &ra);
		pthread_create(&th[1], NULL, race_reap, &ra);
		pthread_create(&th[2], NULL, race_reap, &ra);
		usleep(2000 + (useconds_t)(k % 5) * 500);
		if (io_destroy(ra.ctx))
			bad++;
		ra.stop = 1;
		for (int i = 0; i < 3; i++)
			pthread_join(th[i], NULL);
		bad += ra.bad;
		/* after io_destroy: -EINVAL, never a crash or a new context */
		io_prep_pread(&cb, fd, buf, 4096, 0);
		if (io_submit(ra.ctx, 1, &p) != -EINVAL)
			bad++;
		free(ra.cbs);
	}
	ok(!bad, "io_destroy while threads are in io_submit and io_getevents: they leave cleanly",
	   "a call failed otherwise");
	/* io_destroy waits for the requests: the data is there when it returns */
	io_context_t ctx = 0;
	struct iocb cbs[8], *ps[8];
	char *w = aligned(8 * 16384), *r = aligned(8 * 16384);
	fill(w, 8 * 16384, 40);
	memset(r, 0xee, 8 * 16384);
	int wrote = pwrite(fd, w, 8 * 16384, 9 << 20) == 8 * 16384;
	for (int i = 0; i < 8; i++) {
		io_prep_pread(&cbs[i], fd, r + i * 16384, 16384, (9 << 20) + i * 16384);
		ps[i] = &cbs[i];
	}
	int st = io_setup(8, &ctx), sub = st ? -1 : io_submit(ctx, 8, ps),
	    des = sub == 8 ? io_destroy(ctx) : -1;
	if (!wrote || st || sub != 8 || des)
		fprintf(stderr, "# pwrite %d io_setup %d io_submit %d io_destroy %d\n", wrote, st,
			sub, des);
	ok(wrote && !st && sub == 8 && !des && !memcmp(w, r, 8 * 16384),
	   "io_destroy right after io_submit: the reads completed before it returned", "mismatch");
	free(w);
	free(r);
	free(buf);
	close(fd);
}
#endif

/* One scenario whose device counters preload-sim.sh checks. */
static int mode_run(const char *mode)
{
	struct iovec iov[4];
	char stackbuf[4 * 4096] __attribute__((aligned(4096)));
	char *heap = aligned(4 * 4096);
	int fd;

	if (!strcmp(mode, "osync-iov") || !strcmp(mode, "osync-stack")) {
		char *b = !strcmp(mode, "osync-iov") ? heap : stackbuf;

		fd = open(path, O_RDWR | O_DIRECT | O_SYNC);
		if (fd < 0 || !heap)
			return 1;
		fill(b, 4 * 4096, 50);
		for (int i = 0; i < 4; i++)
			iov[i] = (struct iovec){b + i * 4096, 4096};
		if (pwritev(fd, iov, 4, 0) != 4 * 4096)
			return 1;
		close(fd);
		free(heap);
		return 0;
	}
#ifdef HAVE_LIBAIO
	if (!strcmp(mode, "free-busy")) {
		/* below malloc's mmap threshold: the freed memory stays mapped
		 * (the sim reaches it directly, without an IOMMU's pin) */
		size_t len = 96u << 10;
		char *big = aligned(len);
		io_context_t ctx = 0;
		struct iocb cb, *p = &cb;
		struct io_event ev;

		fd = open(path, O_RDWR | O_DIRECT);
		if (fd < 0 || !big || io_setup(4, &ctx))
			return 1;
		/* a write: the device only reads the memory given back */
		io_prep_pwrite(&cb, fd, big, len, 0);
		if (io_submit(ctx, 1, &p) != 1)
			return 1;
		free(big); /* a program bug: the write still runs */
		if (io_getevents(ctx, 1, 1, &ev, NULL) != 1)
			return 1;
		io_destroy(ctx);
		close(fd);
		free(heap);
		return 0;
	}
#endif
	if (!strcmp(mode, "bench")) {
		/* per-I/O time at QD 1, 4 KiB O_DIRECT preads from one buffer,
		 * with 32 other buffers registered; then malloc(64) + free pairs
		 * (free looks for registrations) */
		enum { IOS = 20000, FREES = 1000000, OTHERS = 32 };
		char *others[OTHERS], *b = aligned(4096);
		struct timespec t0, t1;

		fd = open(path, O_RDWR | O_DIRECT);
		if (fd < 0 || !b)
			return 1;
		for (int i = 0; i < OTHERS; i++) {
			others[i] = aligned(4096);
			if (!others[i] || pread(fd, others[i], 4096, 0) != 4096)
				return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < IOS; i++)
			if (pread(fd, b, 4096, (off_t)(i % 1024) * 4096) != 4096)
				return 1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("pread_4k_qd1_ns: %.0f\n",
		       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
			   IOS);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < FREES; i++) {
			void *volatile m = malloc(64);
			free(m);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("malloc_free_ns: %.1f\n",
		       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
			   FREES);
		for (int i = 0; i < OTHERS; i++)
			free(others[i]);
		close(fd);
		free(b);
		free(heap);
		return 0;
	}
	fprintf(stderr, "unknown mode %s\n", mode);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s PATH SCRATCH_FILE [MODE]\n", argv[0]);
		return 2;
	}
	path = argv[1];
	if (argc == 4)
		return mode_run(argv[3]);
	direct_checks();
	buffered_checks();
#ifdef HAVE_LIBAIO
	aio_checks(argv[2]);
	aio_destroy_race();
#else
	printf("ok %d - libaio # SKIP built without libaio.h\n", ++n_test);
#endif
	printf("1..%d\n", n_test);
	return n_fail ? 1 : 0;
}
