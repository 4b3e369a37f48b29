/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * One owner per device, across processes.
 *
 * Two processes driving one controller reset it under each other; the
 * first owner's I/O then hangs with no error. The kernel does not stop a
 * second uio user (and vfio only refuses a second opener of the group,
 * without saying who holds it), so upcie_pci_open() of a uio or vfio
 * device takes an advisory lock named after its PCI address:
 *
 *   /run/upcie/<dddd:bb:dd.f>.lock    flock(LOCK_EX | LOCK_NB)
 *
 * The owner writes "<pid> <command>" into the file, so that the refusal can
 * name it. The lock lives on the open file: the kernel drops it when the
 * process dies (kill -9 included), and a second handle in the same process
 * is refused as well. The file itself stays (empty) after close: removing
 * it would race with a process that has it open but not yet locked.
 *
 * Where the lock files go: $UPCIE_LOCK_DIR when set (tests; systems with
 * an unusual layout), else /run/upcie, else (when /run cannot be written,
 * e.g. a non-root vfio user) /tmp/upcie-<euid>, that user's own, which
 * is said in the log: a process locking under /run/upcie does not see the
 * locks there.
 * Every process that may share devices must use the same directory, and
 * the directory must keep others from removing locks: it is refused when
 * it is a symlink, belongs to another user, or is writable by others
 * without the sticky bit (with it, a lock file of another user is refused).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "pci/backend.h"

#define LOCK_DIR_RUN "/run/upcie"
#define LOCK_DIR_TMP "/tmp/upcie"

/*
 * A lock is only as good as its directory: whoever may remove or replace a
 * lock file can let a second process take the device while the first
 * drives it. The directory must be a real directory (not a symlink), owned
 * by root or by us, and not writable by others unless the sticky bit keeps
 * them to their own files (as in /tmp); in such a shared directory the lock
 * file itself must be root's or ours. The checks look at the directory we
 * opened (not at a path that could change in between). 0 or -errno with
 * *why set.
 */
static int check_lock_dir(int dfd, struct stat *st, const char **why)
{
	if (fstat(dfd, st)) {
		*why = strerror(errno);
		return -errno;
	}
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		*why = "it belongs to another user, who could remove the locks in it";
		return -EPERM;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX)) {
		*why = "others may write to it and it has no sticky bit, so anyone could "
		       "remove a lock (chmod o-w,g-w or chmod +t it)";
		return -EPERM;
	}
	return 0;
}

/* Open (creating them, 0755) dir and dir/<bdf>.lock; -errno on failure,
 * with *why saying what was wrong. */
static int open_lock_file(const char *dir, const char *bdf, char *path, size_t len,
			  const char **why)
{
	struct stat st, fst;
	char name[64];
	int dfd, fd, rc;

	if (mkdir(dir, 0755) == 0) {
		/* mkdir honours the umask. */
		if (chmod(dir, 0755))
			goto err;
	} else if (errno != EEXIST) {
		goto err;
	}
	if (snprintf(path, len, "%s/%s.lock", dir, bdf) >= (int)len ||
	    snprintf(name, sizeof(name), "%s.lock", bdf) >= (int)sizeof(name)) {
		errno = ENAMETOOLONG;
		goto err;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		if (errno != ELOOP && errno != ENOTDIR)
			goto err;
		*why = !lstat(dir, &st) && S_ISLNK(st.st_mode)
			   ? "it is a symbolic link, not a directory"
			   : "it is not a directory";
		return -ENOTDIR;
	}
	rc = check_lock_dir(dfd, &st, why);
	if (rc) {
		close(dfd);
		return rc;
	}
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	/* Created by another user: flock works on a read-only descriptor
	 * too; only the owner's name cannot be written then. */
	if (fd < 0 && errno == EACCES)
		fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	rc = fd < 0 ? -errno : 0;
	close(dfd);
	if (rc) {
		errno = -rc;
		goto err;
	}
	/* In a directory others may write to, the owner of a lock file may
	 * remove it (the sticky bit allows that): it must be root or us. */
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		if (fstat(fd, &fst)) {
			rc = -errno;
			close(fd);
			*why = strerror(-rc);
			return rc;
		}
		if (fst.st_uid != 0 && fst.st_uid != geteuid()) {
			close(fd);
			*why = "the lock file belongs to another user, who could remove it from "
			       "this shared directory";
			return -EPERM;
		}
	}
	return fd;
err:
	*why = strerror(errno);
	return -errno;
}

/* "<pid> <command>" of the process that holds the lock, as far as known. */
static void describe_owner(int fd, char *buf, size_t len)
{
	char text[64] = "", comm[32] = "", path[64];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	int pid = 0;

	if (n > 0) {
		text[n] = '\0';
		if (sscanf(text, "%d %31s", &pid, comm) < 1)
			pid = 0;
	}
	if (pid <= 0) {
		snprintf(buf, len, "another process (its pid is not written yet)");
		return;
	}
	if (pid == getpid()) {
		snprintf(buf, len, "this process (pid %d), through another handle", pid);
		return;
	}
	if (!comm[0]) {
		FILE *fp;

		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		fp = fopen(path, "re");
		if (fp) {
			if (!fgets(comm, sizeof(comm), fp))
				comm[0] = '\0';
			comm[strcspn(comm, "\n")] = '\0';
			fclose(fp);
		}
	}
	snprintf(buf, len, "process %d (%s)", pid, comm[0] ? comm : "command unknown");
}

/* Our own command name, for the owner line. */
static void own_comm(char *buf, size_t len)
{
	FILE *fp = fopen("/proc/self/comm", "re");

	buf[0] = '\0';
	if (fp) {
		if (!fgets(buf, (int)len, fp))
			buf[0] = '\0';
		fclose(fp);
	}
	buf[strcspn(buf, "\n")] = '\0';
	for (char *c = buf; *c; c++)
		if (*c == ' ')
			*c = '_';
	if (!buf[0])
		snprintf(buf, len, "?");
}

int upcie_pci_lock(struct upcie_pci_dev *dev)
{
	const char *env = getenv("UPCIE_LOCK_DIR"), *why;
	char path[PATH_MAX], owner[128], line[64], comm[32];
	int fd, n;

	if (env && *env) {
		fd = open_lock_file(env, dev->name, path, sizeof(path), &why);
		if (fd < 0)
			return upcie_err(fd,
					 "%s: cannot use the lock directory UPCIE_LOCK_DIR=%s: %s",
					 dev->name, env, why);
	} else {
		fd = open_lock_file(LOCK_DIR_RUN, dev->name, path, sizeof(path), &why);
		if (fd < 0) {
			const char *run_why = why;
			char tmp[64];

			snprintf(tmp, sizeof(tmp), LOCK_DIR_TMP "-%u", (unsigned)geteuid());
			fd = open_lock_file(tmp, dev->name, path, sizeof(path), &why);
			if (fd < 0)
				return upcie_err(
				    fd,
				    "%s: cannot use " LOCK_DIR_RUN " (%s) nor %s (%s) for "
				    "the owner lock; set UPCIE_LOCK_DIR to a directory "
				    "of yours",
				    dev->name, run_why, tmp, why);
			upcie_info("%s: " LOCK_DIR_RUN " cannot be used (%s); the owner lock is %s "
				   "instead, which processes locking under " LOCK_DIR_RUN
				   " do not see",
				   dev->name, run_why, path);
		}
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno;

		if (err == EWOULDBLOCK) {
			describe_owner(fd, owner, sizeof(owner));
			close(fd);
			return upcie_err(-EBUSY,
					 "%s is in use (EBUSY) by %s, which holds %s; one process "
					 "drives a controller at a time: stop that one first",
					 dev->name, owner, path);
		}
		close(fd);
		return upcie_err(-err, "%s: cannot lock %s: %s", dev->name, path, strerror(err));
	}
	own_comm(comm, sizeof(comm));
	n = snprintf(line, sizeof(line), "%d %s\n", (int)getpid(), comm);
	/* Best effort: a read-only lock file (another user's) keeps its old text. */
	if (!ftruncate(fd, 0) && pwrite(fd, line, (size_t)n, 0) != n)
		upcie_debug("%s: could not write the owner into %s", dev->name, path);
	upcie_debug("%s: owner lock %s taken", dev->name, path);
	dev->lock_fd = fd;
	return 0;
}

void upcie_pci_unlock(struct upcie_pci_dev *dev)
{
	if (dev->lock_fd < 0)
		return;
	/* Clear the owner line while still holding the lock; closing the
	 * file releases it. */
	if (ftruncate(dev->lock_fd, 0))
		upcie_debug("%s: could not clear the lock file", dev->name);
	close(dev->lock_fd);
	dev->lock_fd = -1;
}
