/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The libc functions this library interposes. A call on a mapped path or
 * on an fd this library opened is served here; every other one goes to the
 * next definition (libc's) as it came. Calls from inside libc itself
 * (stdio's read, fopen's open) do not pass here: see the README's limits.
 */
#undef _FORTIFY_SOURCE /* the functions below are defined, not wrapped */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/blkzoned.h>
#include <linux/fs.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "preload.h"

struct pl_real pl_real;

void *pl_next(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p)
		pl_msg(PL_NAME ": no next definition of %s", name);
	return p;
}

#define REAL(type, name, ...)                                                                      \
	static type (*real_##name)(__VA_ARGS__);                                                   \
	if (!real_##name)                                                                          \
		real_##name = pl_next(#name);

__attribute__((constructor)) static void pl_resolve(void)
{
	pl_real.open = dlsym(RTLD_NEXT, "open");
	pl_real.openat = dlsym(RTLD_NEXT, "openat");
	pl_real.close = dlsym(RTLD_NEXT, "close");
	pl_real.read = dlsym(RTLD_NEXT, "read");
	pl_real.write = dlsym(RTLD_NEXT, "write");
	pl_real.pread = dlsym(RTLD_NEXT, "pread");
	pl_real.pwrite = dlsym(RTLD_NEXT, "pwrite");
	pl_real.munmap = dlsym(RTLD_NEXT, "munmap");
	pl_init();
}

static long ret(long rc)
{
	if (rc < 0) {
		errno = (int)-rc;
		return -1;
	}
	return rc;
}

/* ---- open and close ---- */

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	struct pl_map *m;
	int err, fd, rc;

	m = pl_lookup_path(dirfd, path, &err);
	if (err)
		return (int)ret(-err);
	if (!m) {
		if (!pl_real.openat)
			pl_resolve();
		fd = pl_real.openat(dirfd, path, flags, mode);
		if (fd >= 0)
			pl_fd_forget(fd);
		return fd;
	}
	if (flags & (O_DIRECTORY | O_PATH))
		return (int)ret(flags & O_DIRECTORY ? -ENOTDIR : -EINVAL);
	/* the fd number: a descriptor that does nothing if used without us */
	fd = pl_real.openat(AT_FDCWD, "/dev/null", O_PATH | (flags & O_CLOEXEC));
	if (fd < 0)
		return -1;
	pl_fd_forget(fd);
	rc = pl_open_map(m, flags, fd);
	if (rc) {
		pl_real.close(fd);
		return (int)ret(rc);
	}
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, mode);
}

/* The 64 forms are the same calls (off_t is 64-bit here). */
int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

/* _FORTIFY_SOURCE's checked forms */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

int __open_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0);
}

int __open64_2(const char *path, int flags)
{
	return do_open(AT_FDCWD, path, flags, 0);
}

int __openat_2(int dirfd, const char *path, int flags)
{
	return do_open(dirfd, path, flags, 0);
}

int __openat64_2(int dirfd, const char *path, int flags)
{
	return do_open(dirfd, path, flags, 0);
}

int creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int creat64(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int close(int fd)
{
	if (!pl_real.close)
		pl_resolve();
	pl_fd_close(fd);
	return pl_real.close(fd);
}

int close_range(unsigned first, unsigned last, int flags)
{
	REAL(int, close_range, unsigned, unsigned, int)
	int rc = real_close_range(first, last, flags);

	if (!rc && !(flags & CLOSE_RANGE_CLOEXEC))
		for (unsigned fd = first; fd <= last && fd < PL_MAX_FDS; fd++)
			pl_fd_forget((int)fd);
	return rc;
}

int dup(int fd)
{
	REAL(int, dup, int)
	int r = real_dup(fd);

	if (r >= 0)
		pl_fd_dup(fd, r);
	return r;
}

int dup2(int fd, int fd2)
{
	REAL(int, dup2, int, int)
	int r = real_dup2(fd, fd2);

	if (r >= 0)
		pl_fd_dup(fd, r);
	return r;
}

int dup3(int fd, int fd2, int flags)
{
	REAL(int, dup3, int, int, int)
	int r = real_dup3(fd, fd2, flags);

	if (r >= 0)
		pl_fd_dup(fd, r);
	return r;
}

static int do_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	struct pl_file *f = pl_get(fd);
	int r;

	if (!f || cmd == F_GETFD || cmd == F_SETFD) {
		r = real(fd, cmd, arg);
		if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
			pl_fd_dup(fd, r);
		return r;
	}
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		r = real(fd, cmd, arg);
		if (r >= 0)
			pl_fd_dup(fd, r);
		return r;
	case F_GETFL:
		return (f->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)) |
		       O_LARGEFILE;
	case F_SETFL: {
		int v = (int)(intptr_t)arg, keep = O_DIRECT | O_NONBLOCK | O_NOATIME | O_ASYNC;

		if (v & O_APPEND)
			return (int)ret(-EINVAL);
		f->flags = (f->flags & ~keep) | (v & keep);
		return 0;
	}
	case F_GETLK:
	case F_OFD_GETLK:
		((struct flock *)arg)->l_type = F_UNLCK;
		return 0;
	case F_SETLK:
	case F_SETLKW:
	case F_OFD_SETLK:
	case F_OFD_SETLKW:
		return 0; /* one process owns the controller anyway */
	default:
		return (int)ret(-EINVAL);
	}
}

int fcntl(int fd, int cmd, ...)
{
	REAL(int, fcntl, int, int, ...)
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(real_fcntl, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...)
{
	REAL(int, fcntl64, int, int, ...)
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(real_fcntl64, fd, cmd, arg);
}

/* ---- data ---- */

static ssize_t rw_pos(struct pl_file *f, void *buf, size_t len, bool write)
{
	ssize_t n;

	pthread_mutex_lock(&f->pos_lock);
	n = pl_rw(f, buf, len, f->pos, write);
	if (n > 0)
		f->pos += (uint64_t)n;
	pthread_mutex_unlock(&f->pos_lock);
	return ret(n);
}

static ssize_t rwv_pos(struct pl_file *f, const struct iovec *iov, int cnt, bool write)
{
	ssize_t n;

	pthread_mutex_lock(&f->pos_lock);
	n = pl_rwv(f, iov, cnt, f->pos, write);
	if (n > 0)
		f->pos += (uint64_t)n;
	pthread_mutex_unlock(&f->pos_lock);
	return ret(n);
}

ssize_t read(int fd, void *buf, size_t len)
{
	struct pl_file *f = pl_get(fd);

	if (f)
		return rw_pos(f, buf, len, false);
	if (!pl_real.read)
		pl_resolve();
	return pl_real.read(fd, buf, len);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	struct pl_file *f = pl_get(fd);

	if (f)
		return rw_pos(f, (void *)buf, len, true);
	if (!pl_real.write)
		pl_resolve();
	return pl_real.write(fd, buf, len);
}

static ssize_t p_rw(struct pl_file *f, void *buf, size_t len, off_t off, bool write)
{
	if (off < 0)
		return ret(-EINVAL);
	return ret(pl_rw(f, buf, len, (uint64_t)off, write));
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	struct pl_file *f = pl_get(fd);

	if (f)
		return p_rw(f, buf, len, off, false);
	if (!pl_real.pread)
		pl_resolve();
	return pl_real.pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct pl_file *f = pl_get(fd);

	if (f)
		return p_rw(f, (void *)buf, len, off, true);
	if (!pl_real.pwrite)
		pl_resolve();
	return pl_real.pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite(fd, buf, len, off);
}

ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, readv, int, const struct iovec *, int)
	struct pl_file *f = pl_get(fd);

	return f ? rwv_pos(f, iov, cnt, false) : real_readv(fd, iov, cnt);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, writev, int, const struct iovec *, int)
	struct pl_file *f = pl_get(fd);

	return f ? rwv_pos(f, iov, cnt, true) : real_writev(fd, iov, cnt);
}

static ssize_t pv(struct pl_file *f, const struct iovec *iov, int cnt, off_t off, int flags,
		  bool write)
{
	if (off == -1 && flags != -2)
		return rwv_pos(f, iov, cnt, write); /* preadv2 with offset -1: the file position */
	if (off < 0)
		return ret(-EINVAL);
	return ret(pl_rwv(f, iov, cnt, (uint64_t)off, write));
}

ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, preadv, int, const struct iovec *, int, off_t)
	struct pl_file *f = pl_get(fd);

	return f ? pv(f, iov, cnt, off, -2, false) : real_preadv(fd, iov, cnt, off);
}

ssize_t preadv64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return preadv(fd, iov, cnt, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
	struct pl_file *f = pl_get(fd);

	return f ? pv(f, iov, cnt, off, -2, true) : real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return pwritev(fd, iov, cnt, off);
}

ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(ssize_t, preadv2, int, const struct iovec *, int, off_t, int)
	struct pl_file *f = pl_get(fd);

	return f ? pv(f, iov, cnt, off, flags, false) : real_preadv2(fd, iov, cnt, off, flags);
}

ssize_t preadv64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return preadv2(fd, iov, cnt, off, flags);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int)
	struct pl_file *f = pl_get(fd);

	return f ? pv(f, iov, cnt, off, flags, true) : real_pwritev2(fd, iov, cnt, off, flags);
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	return pwritev2(fd, iov, cnt, off, flags);
}

off_t lseek(int fd, off_t off, int whence)
{
	REAL(off_t, lseek, int, off_t, int)
	struct pl_file *f = pl_get(fd);
	int64_t base, pos;

	if (!f)
		return real_lseek(fd, off, whence);
	pthread_mutex_lock(&f->pos_lock);
	base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)f->pos : (int64_t)f->size;
	pos = base + off;
	if (whence == SEEK_DATA || whence == SEEK_HOLE) {
		pos = off;
		if (off < 0 || (uint64_t)off >= f->size)
			pos = -ENXIO;
		else if (whence == SEEK_HOLE)
			pos = (int64_t)f->size;
	} else if (whence < SEEK_SET || whence > SEEK_END || pos < 0 || (uint64_t)pos > f->size) {
		pos = -EINVAL; /* a block device cannot seek past its end */
	}
	if (pos >= 0)
		f->pos = (uint64_t)pos;
	pthread_mutex_unlock(&f->pos_lock);
	return (off_t)ret(pos);
}

off_t lseek64(int fd, off_t off, int whence)
{
	return lseek(fd, off, whence);
}

int fsync(int fd)
{
	REAL(int, fsync, int)
	struct pl_file *f = pl_get(fd);

	return f ? (int)ret(pl_flush(f)) : real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(int, fdatasync, int)
	struct pl_file *f = pl_get(fd);

	return f ? (int)ret(pl_flush(f)) : real_fdatasync(fd);
}

int posix_fadvise(int fd, off_t off, off_t len, int advice)
{
	REAL(int, posix_fadvise, int, off_t, off_t, int)
	return pl_get(fd) ? 0 : real_posix_fadvise(fd, off, len, advice);
}

int posix_fadvise64(int fd, off_t off, off_t len, int advice)
{
	return posix_fadvise(fd, off, len, advice);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(int, fallocate, int, int, off_t, off_t)
	struct pl_file *f = pl_get(fd);

	if (!f)
		return real_fallocate(fd, mode, off, len);
	/* as the kernel does for block devices: zero a range, or punch it */
	if (!(mode & FALLOC_FL_KEEP_SIZE) && mode != FALLOC_FL_ZERO_RANGE)
		return (int)ret(-EOPNOTSUPP);
	if (!(mode & (FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE)) || off < 0 || len <= 0)
		return (int)ret(mode & ~FALLOC_FL_KEEP_SIZE ? -EINVAL : -EOPNOTSUPP);
	return (int)ret(pl_discard(f, (uint64_t)off, (uint64_t)len, true));
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

/* ---- ioctl: the block device's own ---- */

static int blk_ioctl(struct pl_file *f, unsigned long req, void *arg)
{
	uint64_t *r = arg;

	if (!arg && _IOC_SIZE(req) && _IOC_TYPE(req) == 0x12)
		return -EFAULT;
	switch (req) {
	case BLKGETSIZE64:
		*(uint64_t *)arg = f->size;
		return 0;
	case BLKGETSIZE:
		*(unsigned long *)arg = (unsigned long)(f->size >> 9);
		return 0;
	case BLKSSZGET:
		*(int *)arg = (int)f->lbs;
		return 0;
	case BLKPBSZGET:
	case BLKIOMIN:
		*(unsigned *)arg = f->lbs;
		return 0;
	case BLKBSZGET:
		*(int *)arg = f->lbs > 4096 ? (int)f->lbs : 4096;
		return 0;
	case BLKBSZSET:
	case BLKFLSBUF: /* no cache to write back: every write went to the device */
	case BLKRASET:
	case BLKFRASET:
		return 0;
	case BLKIOOPT:
	case BLKGETZONESZ:
	case BLKGETNRZONES:
		*(unsigned *)arg = 0;
		return 0;
	case BLKALIGNOFF:
	case BLKROGET:
		*(int *)arg = 0;
		return 0;
	case BLKDISCARDZEROES:
		*(unsigned *)arg = 0;
		return 0;
	case BLKROTATIONAL:
		*(unsigned short *)arg = 0;
		return 0;
	case BLKRAGET:
	case BLKFRAGET:
		*(long *)arg = 0;
		return 0;
	case BLKDISCARD:
	case BLKZEROOUT:
		return pl_discard(f, r[0], r[1], req == BLKZEROOUT);
	case BLKSECDISCARD:
		return -EOPNOTSUPP;
	default:
		return -ENOTTY;
	}
}

int ioctl(int fd, unsigned long req, ...)
{
	REAL(int, ioctl, int, unsigned long, ...)
	struct pl_file *f = pl_get(fd);
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!f)
		return real_ioctl(fd, req, arg);
	if (pl_check_owner(f, "ioctl"))
		return (int)ret(-EIO);
	return (int)ret(blk_ioctl(f, req, arg));
}

/* ---- stat: a block device ---- */

int fstat(int fd, struct stat *st)
{
	REAL(int, fstat, int, struct stat *)
	struct pl_file *f = pl_get(fd);

	return f ? pl_stat_map(f->map, st, false) : real_fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
	return fstat(fd, (struct stat *)st);
}

static int path_stat(int dirfd, const char *path, struct stat *st, int flags, int *done)
{
	struct pl_file *f;
	struct pl_map *m;
	int err;

	*done = 1;
	if (path && !*path && (flags & AT_EMPTY_PATH) && (f = pl_get(dirfd)))
		return pl_stat_map(f->map, st, false);
	m = pl_lookup_path(dirfd, path, &err);
	if (err)
		return (int)ret(-err);
	if (m)
		return pl_stat_map(m, st, false);
	*done = 0;
	return 0;
}

int stat(const char *path, struct stat *st)
{
	REAL(int, stat, const char *, struct stat *)
	int done, r = path_stat(AT_FDCWD, path, st, 0, &done);

	return done ? r : real_stat(path, st);
}

int stat64(const char *path, struct stat64 *st)
{
	return stat(path, (struct stat *)st);
}

int lstat(const char *path, struct stat *st)
{
	REAL(int, lstat, const char *, struct stat *)
	int done, r = path_stat(AT_FDCWD, path, st, 0, &done);

	return done ? r : real_lstat(path, st);
}

int lstat64(const char *path, struct stat64 *st)
{
	return lstat(path, (struct stat *)st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	REAL(int, fstatat, int, const char *, struct stat *, int)
	int done, r = path_stat(dirfd, path, st, flags, &done);

	return done ? r : real_fstatat(dirfd, path, st, flags);
}

int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return fstatat(dirfd, path, (struct stat *)st, flags);
}

/* The glibc < 2.33 entry points, for programs built against those. */
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

int __fxstat(int ver, int fd, struct stat *st)
{
	(void)ver;
	return fstat(fd, st);
}

int __fxstat64(int ver, int fd, struct stat64 *st)
{
	(void)ver;
	return fstat(fd, (struct stat *)st);
}

int __xstat(int ver, const char *path, struct stat *st)
{
	(void)ver;
	return stat(path, st);
}

int __xstat64(int ver, const char *path, struct stat64 *st)
{
	(void)ver;
	return stat(path, (struct stat *)st);
}

int __lxstat(int ver, const char *path, struct stat *st)
{
	(void)ver;
	return lstat(path, st);
}

int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	(void)ver;
	return lstat(path, (struct stat *)st);
}

int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	(void)ver;
	return fstatat(dirfd, path, st, flags);
}

int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	(void)ver;
	return fstatat(dirfd, path, (struct stat *)st, flags);
}

int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
	REAL(int, statx, int, const char *, int, unsigned, struct statx *)
	struct stat st;
	int done, r = path_stat(dirfd, path, &st, flags, &done);

	if (!done)
		return real_statx(dirfd, path, flags, mask, stx);
	if (r)
		return r;
	memset(stx, 0, sizeof(*stx));
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_blksize = (uint32_t)st.st_blksize;
	stx->stx_nlink = 1;
	stx->stx_mode = (uint16_t)st.st_mode;
	stx->stx_ino = st.st_ino;
	stx->stx_rdev_major = major(st.st_rdev);
	stx->stx_rdev_minor = minor(st.st_rdev);
	stx->stx_dev_major = major(st.st_dev);
	stx->stx_dev_minor = minor(st.st_dev);
	return 0;
}

int access(const char *path, int mode)
{
	REAL(int, access, const char *, int)
	int err;

	if (pl_lookup_path(AT_FDCWD, path, &err) || err)
		return (int)ret(err ? -err : (mode & X_OK) ? -EACCES : 0);
	return real_access(path, mode);
}

int faccessat(int dirfd, const char *path, int mode, int flags)
{
	REAL(int, faccessat, int, const char *, int, int)
	int err;

	if (pl_lookup_path(dirfd, path, &err) || err)
		return (int)ret(err ? -err : (mode & X_OK) ? -EACCES : 0);
	return real_faccessat(dirfd, path, mode, flags);
}

/* ---- memory: registrations die with the pages they pinned (reg.c) ---- */

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(void *, mmap, void *, size_t, int, int, int, off_t)
	if (pl_get(fd)) {
		errno = ENODEV; /* not a memory-mapped device here */
		return MAP_FAILED;
	}
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
		pl_reg_invalidate(addr, len);
	return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	if (!pl_real.munmap)
		pl_resolve();
	pl_reg_invalidate(addr, len);
	return pl_real.munmap(addr, len);
}

void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	REAL(void *, mremap, void *, size_t, size_t, int, ...)
	va_list ap;
	void *new_addr;

	va_start(ap, flags);
	new_addr = flags & MREMAP_FIXED ? va_arg(ap, void *) : NULL;
	va_end(ap);
	pl_reg_invalidate(old, old_len);
	if (flags & MREMAP_FIXED)
		pl_reg_invalidate(new_addr, new_len);
	return real_mremap(old, old_len, new_len, flags, new_addr);
}

int madvise(void *addr, size_t len, int advice)
{
	REAL(int, madvise, void *, size_t, int)
	if (advice == MADV_DONTNEED || advice == MADV_FREE || advice == MADV_REMOVE)
		pl_reg_invalidate(addr, len);
	return real_madvise(addr, len, advice);
}

static void (*real_free)(void *);
static void *(*real_realloc)(void *, size_t);
static size_t (*real_usable)(void *);
static int resolving;

extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);

static void resolve_malloc(void)
{
	if (resolving)
		return;
	resolving = 1;
	real_usable = dlsym(RTLD_NEXT, "malloc_usable_size");
	real_realloc = dlsym(RTLD_NEXT, "realloc");
	real_free = dlsym(RTLD_NEXT, "free");
	resolving = 0;
}

void free(void *p)
{
	if (!real_free) {
		resolve_malloc();
		if (!real_free) {
			__libc_free(p); /* dlsym's own, while it resolves */
			return;
		}
	}
	if (p)
		pl_reg_invalidate(p, real_usable ? real_usable(p) : 1);
	real_free(p);
}

void *realloc(void *p, size_t len)
{
	if (!real_realloc) {
		resolve_malloc();
		if (!real_realloc)
			return __libc_realloc(p, len);
	}
	if (p)
		pl_reg_invalidate(p, real_usable ? real_usable(p) : 1);
	return real_realloc(p, len);
}
