/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The mapping (UPCIE_PRELOAD), the devices it names, open files and the fd
 * table.
 *
 *   UPCIE_PRELOAD='PATH=DEVICE/NSID[,PATH=DEVICE/NSID...]'
 *
 * DEVICE is a PCI address (0000:01:00.0, 01:00.0) or "sim", the emulated
 * controller (two namespaces: 1 has 512 B blocks, 2 has 4 KiB blocks,
 * 64 MiB each). Its data lives in the process; UPCIE_PRELOAD_SIM_IMAGE=FILE
 * loads it from FILE when the model starts and saves what was written back
 * when the last file on it closes, so that one program can read what
 * another wrote.
 *
 * A device is opened (upcie_nvme_ctrl_get) at the first open() of one of
 * its paths and closed when the last file on it is closed (or at exit):
 * between the two another process, or a child after fork(), may take it.
 * An open file holds a placeholder fd (an O_PATH descriptor of /dev/null)
 * so that its number is the kernel's and cannot collide; a program that
 * reaches the placeholder without this library (after exec, or through a
 * raw system call) gets EBADF, never another file's data.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "preload.h"

pid_t pl_pid;
/* recursive: the library, called with it held, closes fds of its own */
pthread_mutex_t pl_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

static struct pl_map maps[PL_MAX_MAPS];
static unsigned nmaps;
static struct pl_dev devs[PL_MAX_MAPS];
static unsigned ndevs;
static bool mapping_bad; /* every mapped path fails with EINVAL */
static char bad_reason[1024];
static struct pl_file *fds[PL_MAX_FDS];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

void pl_msg(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* straight to fd 2: no stdio state, nothing interposed on the way */
	if (pl_real.write)
		(void)!pl_real.write(2, buf, (size_t)n);
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&pl_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&pl_lock);
}

/* The child inherits files and devices it must not use: they keep the
 * parent's pid, and every use compares it with this one. */
static void atfork_child(void)
{
	pthread_mutexattr_t a;

	pl_pid = getpid();
	for (unsigned i = 0; i < ndevs; i++)
		devs[i].sim_forked = devs[i].sim != NULL;
	pl_reg_fork_child();
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&pl_lock, &a);
}

static int bad_entry(unsigned i, const char *e, const char *why)
{
	snprintf(bad_reason, sizeof(bad_reason),
		 "UPCIE_PRELOAD entry %u '%.300s': %s; expected PATH=DEVICE/NSID, e.g. "
		 "/dev/upcie0=0000:01:00.0/1 or /dev/upcie0=sim/1, entries separated by ','",
		 i + 1, e, why);
	mapping_bad = true;
	return -EINVAL;
}

static struct pl_dev *dev_for(const char *name)
{
	for (unsigned i = 0; i < ndevs; i++)
		if (!strcmp(devs[i].name, name))
			return &devs[i];
	struct pl_dev *d = &devs[ndevs++];
	snprintf(d->name, sizeof(d->name), "%s", name);
	pthread_rwlock_init(&d->reg_lock, NULL);
	return d;
}

static int parse_entry(unsigned i, char *e)
{
	char *eq = strchr(e, '='), *slash, *end;
	char orig[4200], name[64];
	struct upcie_pci_addr a;
	unsigned long nsid;

	snprintf(orig, sizeof(orig), "%s", e);
	if (!eq && *e && strlen(e) < sizeof(maps[0].path)) {
		/* a path without its device: opening it fails loudly */
		snprintf(maps[nmaps].path, sizeof(maps[nmaps].path), "%s", e);
		maps[nmaps].index = nmaps;
		nmaps++;
	}
	if (!eq)
		return bad_entry(i, orig, "no '='");
	*eq = 0;
	if (!*e)
		return bad_entry(i, orig, "the path before '=' is empty");
	if (strlen(e) >= sizeof(maps[0].path))
		return bad_entry(i, orig, "the path is too long");
	for (unsigned j = 0; j < nmaps; j++)
		if (!strcmp(maps[j].path, e))
			return bad_entry(i, orig, "the path is mapped twice");
	/* the path is recorded first: opening it fails loudly if the rest is bad */
	snprintf(maps[nmaps].path, sizeof(maps[nmaps].path), "%s", e);
	maps[nmaps].index = nmaps;
	nmaps++;
	slash = strrchr(eq + 1, '/');
	if (!slash)
		return bad_entry(i, orig, "no '/NSID' after the device");
	*slash = 0;
	errno = 0;
	nsid = strtoul(slash + 1, &end, 10);
	if (errno || !slash[1] || *end || nsid < 1 || nsid > 0xfffffffeul)
		return bad_entry(i, orig, "NSID must be a namespace id from 1 to 4294967294");
	if (!strcmp(eq + 1, "sim")) {
		strcpy(name, "sim");
	} else if (!upcie_pci_addr_parse(eq + 1, &a)) {
		upcie_pci_addr_format(&a, name, sizeof(name));
	} else {
		return bad_entry(i, orig,
				 "the device is neither a PCI address (0000:01:00.0) nor \"sim\"");
	}
	if (ndevs == PL_MAX_MAPS && !strcmp(name, "sim"))
		return bad_entry(i, orig, "too many devices");
	maps[nmaps - 1].dev = dev_for(name);
	maps[nmaps - 1].nsid = (uint32_t)nsid;
	return 0;
}

static void parse(void)
{
	const char *env = getenv("UPCIE_PRELOAD");
	char *copy, *save = NULL, *e;
	unsigned i = 0;

	if (!env || !*env)
		return;
	copy = strdup(env);
	if (!copy) {
		mapping_bad = true;
		snprintf(bad_reason, sizeof(bad_reason), "out of memory reading UPCIE_PRELOAD");
		return;
	}
	for (e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save), i++) {
		if (nmaps == PL_MAX_MAPS) {
			bad_entry(i, e, "more than 16 entries");
			break;
		}
		if (parse_entry(i, e))
			break;
	}
	free(copy);
	if (!mapping_bad && !nmaps) {
		mapping_bad = true;
		snprintf(bad_reason, sizeof(bad_reason),
			 "UPCIE_PRELOAD is set but names no path; expected PATH=DEVICE/NSID");
	}
	if (mapping_bad)
		pl_msg(PL_NAME ": %s (every mapped path fails with EINVAL)", bad_reason);
}

static void init_once_fn(void)
{
	pl_pid = getpid();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	parse();
}

void pl_init(void)
{
	pthread_once(&init_once, init_once_fn);
}

bool pl_enabled(void)
{
	pl_init();
	return nmaps > 0;
}

static bool path_is(const struct pl_map *m, int dirfd, const char *path)
{
	char cwd[4096];
	size_t n;

	if (!strcmp(m->path, path))
		return true;
	if (path[0] == '/' || dirfd != AT_FDCWD || m->path[0] != '/')
		return false;
	n = strlen(path);
	if (strlen(m->path) <= n || strcmp(m->path + strlen(m->path) - n, path) ||
	    m->path[strlen(m->path) - n - 1] != '/')
		return false;
	if (!getcwd(cwd, sizeof(cwd)))
		return false;
	n = strlen(cwd);
	if (n > 1 && cwd[n - 1] == '/')
		cwd[--n] = 0;
	return !strncmp(m->path, cwd, n) && m->path[n == 1 ? 0 : n] == '/' &&
	       !strcmp(m->path + (n == 1 ? 1 : n + 1), path);
}

struct pl_map *pl_lookup_path(int dirfd, const char *path, int *err)
{
	*err = 0;
	if (!path || !pl_enabled())
		return NULL;
	for (unsigned i = 0; i < nmaps; i++) {
		if (!path_is(&maps[i], dirfd, path))
			continue;
		if (mapping_bad) {
			pl_msg(PL_NAME ": %s: %s", path, bad_reason);
			*err = EINVAL;
			return NULL;
		}
		return &maps[i];
	}
	return NULL;
}

struct pl_file *pl_get(int fd)
{
	if (fd < 0 || fd >= PL_MAX_FDS)
		return NULL;
	return __atomic_load_n(&fds[fd], __ATOMIC_ACQUIRE);
}

int pl_check_owner(struct pl_file *f, const char *what)
{
	if (f->pid == pl_pid)
		return 0;
	pl_msg(PL_NAME ": %s on %s: this file was opened by process %d before it forked; "
		       "a child cannot use its parent's controller (open the path again in the "
		       "child after the parent closed it, or use threads)",
	       what, f->map->path, (int)f->pid);
	return -EIO;
}

/* ---- the sim's image file ---- */
#ifdef UPCIE_HAVE_SIM

static uint64_t sim_ns_off(struct upcie_sim *sim, uint32_t nsid)
{
	uint64_t off = 0;
	size_t len;

	for (uint32_t n = 1; n < nsid; n++)
		if (upcie_sim_ns_data(sim, n, &len))
			off += len;
	return off;
}

static void sim_image(struct pl_dev *d, bool save)
{
	const char *path = getenv("UPCIE_PRELOAD_SIM_IMAGE");
	int fd;

	if (!path || !*path || (save && !d->dirty))
		return;
	fd = pl_real.open(path, save ? O_WRONLY | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		if (save || errno != ENOENT)
			pl_msg(PL_NAME ": UPCIE_PRELOAD_SIM_IMAGE=%s: cannot %s it: %s", path,
			       save ? "write" : "read", strerror(errno));
		return;
	}
	for (uint32_t nsid = 1; nsid <= UPCIE_SIM_MAX_NS; nsid++) {
		size_t len, done = 0;
		char *p = upcie_sim_ns_data(d->sim, nsid, &len);
		uint64_t off = sim_ns_off(d->sim, nsid);

		if (!p || (save && !(d->dirty & (1u << (nsid - 1)))))
			continue;
		while (done < len) {
			ssize_t n =
			    save ? pl_real.pwrite(fd, p + done, len - done, (off_t)(off + done))
				 : pl_real.pread(fd, p + done, len - done, (off_t)(off + done));
			if (n <= 0) {
				if (n < 0)
					pl_msg(PL_NAME ": UPCIE_PRELOAD_SIM_IMAGE=%s: %s: %s", path,
					       save ? "write" : "read", strerror(errno));
				break;
			}
			done += (size_t)n;
		}
	}
	pl_real.close(fd);
	d->dirty = 0;
}
#else
static void sim_image(struct pl_dev *d, bool save)
{
	(void)d;
	(void)save;
}
#endif

/* ---- devices ---- */

static int dev_open(struct pl_dev *d)
{
	struct upcie_pci_opts popts = {0};
	struct upcie_nvme_get_opts o = {.size = sizeof(o), .pci = &popts};
	struct upcie_nvme_ctrl_info info;
	const char *reg = getenv("UPCIE_PRELOAD_REGISTER");
	int err;

#ifdef UPCIE_HAVE_SIM
	if (!strcmp(d->name, "sim") && (!d->sim || d->sim_forked)) {
		struct upcie_sim *old = d->sim;
		struct upcie_sim_config cfg;

		upcie_sim_config_default(&cfg);
		cfg.threaded = true;
		d->sim = upcie_sim_create(&cfg);
		if (!d->sim) {
			d->sim = old;
			return -errno;
		}
		if (old) {
			/* after fork: the parent's model (without its thread) has the
			 * data as it was; it is copied, and left alone */
			for (uint32_t n = 1; n <= UPCIE_SIM_MAX_NS; n++) {
				size_t len, len2;
				void *from = upcie_sim_ns_data(old, n, &len);
				void *to = upcie_sim_ns_data(d->sim, n, &len2);

				if (from && to && len == len2)
					memcpy(to, from, len);
			}
		} else {
			sim_image(d, false);
		}
		d->sim_forked = false;
	}
	popts.sim = d->sim;
#endif
	d->ctrl = upcie_nvme_ctrl_get(d->name, &o);
	if (!d->ctrl) {
		err = errno ? errno : ENODEV;
		return -err;
	}
	d->heap = upcie_nvme_ctrl_heap(d->ctrl);
	d->backend = upcie_pci_backend(upcie_nvme_ctrl_dev(d->ctrl));
	d->pid = pl_pid;
	upcie_nvme_ctrl_info(d->ctrl, &info);
	d->mps = info.page_size;
	/* uio takes only hugepages: the caller's buffers are bounced there */
	d->register_ok = d->backend != UPCIE_PCI_BACKEND_UIO && !(reg && !strcmp(reg, "0"));
	d->reg_failures = 0;
	return 0;
}

#ifdef UPCIE_HAVE_SIM
/* UPCIE_PRELOAD_SIM_STATS=FILE: the sim's command count and the heap's
 * registered regions against the cache's, appended when the device closes
 * (the tests count Flushes and look for leaked registrations). */
static void sim_stats(struct pl_dev *d)
{
	const char *path = getenv("UPCIE_PRELOAD_SIM_STATS");
	struct upcie_sim_stats st;
	struct upcie_dma_heap_info hi;
	char buf[256];
	int fd, n;

	if (!path || !*path || !d->sim)
		return;
	upcie_sim_stats(d->sim, &st);
	upcie_dma_heap_info(d->heap, &hi);
	n = snprintf(buf, sizeof(buf), "io_cmds: %llu\nheap_regions: %zu\ncache_regions: %u\n",
		     (unsigned long long)st.io_cmds, hi.regions, d->nregs);
	fd = pl_real.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	(void)!pl_real.write(fd, buf, (size_t)n);
	pl_real.close(fd);
}
#else
static void sim_stats(struct pl_dev *d)
{
	(void)d;
}
#endif

static void dev_close(struct pl_dev *d)
{
	sim_stats(d);
	pl_reg_drop_all(d);
	upcie_nvme_ctrl_put(d->ctrl);
	d->ctrl = NULL;
	d->heap = NULL;
	__atomic_add_fetch(&d->gen, 1, __ATOMIC_RELEASE);
	if (d->sim)
		sim_image(d, true);
}

/* Take or drop a use of the device (open files, aio contexts); pl_lock held. */
void pl_dev_unuse(struct pl_dev *d)
{
	if (d->opens && --d->opens == 0)
		dev_close(d);
}

int pl_open_map(struct pl_map *m, int flags, int fd)
{
	struct pl_dev *d = m->dev;
	const struct upcie_nvme_ns *ns;
	struct pl_file *f;
	int rc = 0;

	if (fd >= PL_MAX_FDS) {
		pl_msg(PL_NAME ": %s: fd %d is above the %d this library tracks", m->path, fd,
		       PL_MAX_FDS);
		return -EMFILE;
	}
	if (flags & O_APPEND) {
		pl_msg(PL_NAME ": %s: O_APPEND is not supported on a namespace", m->path);
		return -EINVAL;
	}
	pthread_mutex_lock(&pl_lock);
	if (d->ctrl && d->pid != pl_pid) {
		pl_msg(PL_NAME ": %s: %s was opened by process %d before this process forked; "
			       "a child cannot use its parent's controller (close it in the parent "
			       "first, or use threads)",
		       m->path, d->name, (int)d->pid);
		rc = -EBUSY;
		goto out;
	}
	if (!d->ctrl) {
		rc = dev_open(d);
		if (rc) {
			pl_msg(PL_NAME ": %s: cannot open %s: %s", m->path, d->name,
			       upcie_errmsg());
			goto out;
		}
	}
	d->opens++;
	ns = upcie_nvme_ns_get(d->ctrl, m->nsid);
	if (!ns) {
		pl_msg(PL_NAME ": %s: %s has no active namespace %u (see upcie-identify %s)",
		       m->path, d->name, m->nsid, d->name);
		rc = -ENXIO;
	} else if (ns->ms) {
		pl_msg(PL_NAME
		       ": %s: %s namespace %u is formatted with %u metadata bytes per "
		       "block, which this library does not handle; format it without metadata",
		       m->path, d->name, m->nsid, ns->ms);
		rc = -EOPNOTSUPP;
	} else if (!(f = calloc(1, sizeof(*f)))) {
		rc = -ENOMEM;
	}
	if (rc) {
		pl_dev_unuse(d);
		goto out;
	}
	f->map = m;
	f->dev = d;
	f->ns = ns;
	f->lbs = ns->lba_size;
	f->size = ns->nsze * (uint64_t)ns->lba_size;
	f->flags = flags;
	f->refs = 1;
	f->pid = pl_pid;
	pthread_mutex_init(&f->pos_lock, NULL);
	__atomic_store_n(&fds[fd], f, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&pl_lock);
	return rc;
}

static void file_put(struct pl_file *f)
{
	if (--f->refs)
		return;
	if (f->pid == pl_pid)
		pl_dev_unuse(f->dev);
	pthread_mutex_destroy(&f->pos_lock);
	free(f);
}

int pl_fd_close(int fd)
{
	struct pl_file *f;

	if (!pl_get(fd))
		return 0;
	pthread_mutex_lock(&pl_lock);
	f = pl_get(fd);
	if (f) {
		__atomic_store_n(&fds[fd], NULL, __ATOMIC_RELEASE);
		file_put(f);
	}
	pthread_mutex_unlock(&pl_lock);
	return f ? 1 : 0;
}

/* newfd now names what oldfd names (dup, dup2, dup3, F_DUPFD). */
void pl_fd_dup(int oldfd, int newfd)
{
	struct pl_file *f, *old;

	if (newfd < 0 || newfd >= PL_MAX_FDS || newfd == oldfd ||
	    (!pl_get(oldfd) && !pl_get(newfd)))
		return;
	pthread_mutex_lock(&pl_lock);
	f = pl_get(oldfd);
	old = pl_get(newfd);
	if (f)
		f->refs++;
	__atomic_store_n(&fds[newfd], f, __ATOMIC_RELEASE);
	if (old)
		file_put(old);
	pthread_mutex_unlock(&pl_lock);
}

/* A real call handed out fd: any entry there is stale (closed behind our back). */
void pl_fd_forget(int fd)
{
	if (pl_get(fd))
		pl_fd_close(fd);
}

int pl_stat_map(struct pl_map *m, void *p, bool is64)
{
	struct stat *st = p;

	(void)is64; /* struct stat64 is struct stat on the 64-bit targets built */
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(0, 5);
	st->st_ino = 0x75706369ull + m->index;
	st->st_mode = S_IFBLK | 0660;
	st->st_nlink = 1;
	/* 259: the kernel's blkext major (NVMe namespaces); minors from the top */
	st->st_rdev = makedev(259, 0xfff00 + m->index);
	st->st_blksize = 4096;
	/* st_size 0, as the kernel reports a block device: BLKGETSIZE64 sizes it */
	return 0;
}

__attribute__((destructor)) static void pl_fini(void)
{
	if (!nmaps)
		return;
	pthread_mutex_lock(&pl_lock);
	for (unsigned i = 0; i < ndevs; i++) {
		if (devs[i].ctrl && devs[i].pid == pl_pid) {
			pl_aio_close_dev(&devs[i]);
			dev_close(&devs[i]);
			devs[i].opens = 0;
		}
#ifdef UPCIE_HAVE_SIM
		if (devs[i].sim && !devs[i].sim_forked && !devs[i].ctrl) {
			upcie_sim_destroy(devs[i].sim);
			devs[i].sim = NULL;
		}
#endif
	}
	pthread_mutex_unlock(&pl_lock);
}

struct pl_dev *pl_devs_for_reg(unsigned *n)
{
	*n = ndevs;
	return devs;
}
