/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a PCI function is and whether it is safe to take from the kernel.
 *
 * Devices are enumerated with the library's sysfs helpers (so a fake tree
 * under --sysfs-root works the same as /sys); libpci is used only to turn
 * vendor, device and class ids into names from its ID database.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <pci/pci.h>

#include "sysfs.h"

#include "devbind.h"

void strlist_add(struct strlist *l, const char *fmt, ...)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
	va_list ap;
	int rc;

	if (!v)
		tool_die_errno();
	l->v = v;
	va_start(ap, fmt);
	rc = vasprintf(&l->v[l->n], fmt, ap);
	va_end(ap);
	if (rc < 0)
		tool_die_errno();
	l->n++;
}

bool strlist_has(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

void strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* --- names from libpci's ID database ------------------------------------ */

static struct pci_access *pacc;

/* libpci's hooks; pci_init() would install its own, but see below. */
static void __attribute__((format(printf, 1, 2), noreturn)) pci_error_hook(char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	tool_vmsg("libpci: ", msg, ap);
	va_end(ap);
	exit(TOOL_EXIT_SYSTEM);
}

static void __attribute__((format(printf, 1, 2))) pci_warning_hook(char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	tool_vmsg("warning: libpci: ", msg, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 1, 2))) pci_debug_hook(char *msg, ...)
{
	(void)msg;
}

void names_lookup(struct dev_info *d)
{
	/* Local pci.ids only: no DNS, no udev hwdb (absent in a minimal guest
	 * and a second source of truth); numbers when an id is unknown. */
	const int flags = PCI_LOOKUP_NO_HWDB;

	if (!pacc) {
		/* pci_alloc() sets up the ID database path. pci_init() is not
		 * called: names need only the hooks, and pci_init() would probe
		 * access methods (the real /sys, /proc/bus/pci, even port I/O),
		 * which is neither wanted with --sysfs-root nor safe to fail. */
		pacc = pci_alloc();
		if (!pacc)
			return;
		pacc->error = pci_error_hook;
		pacc->warning = pci_warning_hook;
		pacc->debug = pci_debug_hook;
	}
	pci_lookup_name(pacc, d->vendor_name, sizeof(d->vendor_name), flags | PCI_LOOKUP_VENDOR,
			d->vendor);
	pci_lookup_name(pacc, d->device_name, sizeof(d->device_name), flags | PCI_LOOKUP_DEVICE,
			d->vendor, d->device);
	pci_lookup_name(pacc, d->class_name, sizeof(d->class_name), flags | PCI_LOOKUP_CLASS,
			d->class_code >> 8);
}

void names_close(void)
{
	if (pacc)
		pci_cleanup(pacc);
	pacc = NULL;
}

/* --- drivers ------------------------------------------------------------- */

static const char *const user_drivers[] = {"uio_pci_generic", "vfio-pci"};

const char *drv_normalize(const char *name)
{
	if (!strcmp(name, "uio_pci_generic") || !strcmp(name, "uio-pci-generic"))
		return "uio_pci_generic";
	if (!strcmp(name, "vfio-pci") || !strcmp(name, "vfio_pci"))
		return "vfio-pci";
	if (!strcmp(name, "nvme"))
		return "nvme";
	return NULL;
}

bool drv_is_user(const char *driver)
{
	for (size_t i = 0; i < sizeof(user_drivers) / sizeof(user_drivers[0]); i++)
		if (!strcmp(driver, user_drivers[i]))
			return true;
	return false;
}

const char *drv_state_name(enum drv_state s)
{
	switch (s) {
	case DRV_LOADED:
		return "loaded";
	case DRV_BUILTIN:
		return "built-in";
	case DRV_AVAILABLE:
		return "available";
	case DRV_MISSING:
		break;
	}
	return "missing";
}

/* Module names use '_' where the driver name may use '-'. */
static void underscores(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '-')
			*p = '_';
}

/* Does a modules.dep / modules.builtin line name this module's .ko file? */
static bool line_has_module(const char *line, const char *mod)
{
	char name[NAME_MAX + 1];
	const char *base, *end;
	size_t n;

	end = strchr(line, ':');
	if (!end)
		end = line + strcspn(line, "\n");
	base = line;
	for (const char *p = line; p < end; p++)
		if (*p == '/')
			base = p + 1;
	n = (size_t)(end - base);
	if (n >= sizeof(name))
		return false;
	memcpy(name, base, n);
	name[n] = '\0';
	/* "vfio-pci.ko", "vfio-pci.ko.xz", "vfio_pci.ko.zst" ... */
	char *dot = strstr(name, ".ko");
	if (!dot)
		return false;
	*dot = '\0';
	underscores(name);
	return !strcmp(name, mod);
}

static bool modules_file_has(const char *dir, const char *file, const char *mod)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	if (tool_path(path, sizeof(path), dir, "/lib/modules", file))
		return false;
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0)
		found = line_has_module(line, mod);
	free(line);
	fclose(f);
	return found;
}

void drv_modules_dir(const struct devbind_opts *o, char *dir, size_t len)
{
	struct utsname u;

	if (o->modules_dir)
		snprintf(dir, len, "%s", o->modules_dir);
	else if (uname(&u))
		snprintf(dir, len, "/lib/modules");
	else
		snprintf(dir, len, "/lib/modules/%s", u.release);
}

enum drv_state drv_state(const struct devbind_opts *o, const char *driver)
{
	char mod[64], dir[PATH_MAX];

	snprintf(mod, sizeof(mod), "%s", driver);
	underscores(mod);
	/* A driver directory means it is registered with the PCI bus right now. */
	if (!upcie_sysfs_exists(o->sysfs, "bus/pci/drivers/%s", driver) ||
	    !upcie_sysfs_exists(o->sysfs, "module/%s", mod))
		return DRV_LOADED;
	drv_modules_dir(o, dir, sizeof(dir));
	if (modules_file_has(dir, "modules.builtin", mod))
		return DRV_BUILTIN;
	if (modules_file_has(dir, "modules.dep", mod))
		return DRV_AVAILABLE;
	return DRV_MISSING;
}

/* --- block devices and whether they are in use --------------------------- */

struct ctx {
	const struct devbind_opts *o;
	struct dev_info *d;
	const char *ctrl; /* controller while walking its namespaces */
	const char *disk; /* disk while walking its partitions */
	const char *cur;  /* disk or partition being checked */
	struct strlist *names;
};

/* "nvme0n1" -> itself; "nvme0c1n1" (a path under native multipath) -> "nvme0n1". */
static bool ns_block_name(const char *ent, char *buf, size_t len)
{
	unsigned a, b, c;
	int n = 0;

	if (sscanf(ent, "nvme%un%u%n", &a, &b, &n) == 2 && ent[n] == '\0') {
		snprintf(buf, len, "nvme%un%u", a, b);
		return true;
	}
	if (sscanf(ent, "nvme%uc%un%u%n", &a, &c, &b, &n) == 3 && ent[n] == '\0') {
		snprintf(buf, len, "nvme%un%u", a, b);
		return true;
	}
	return false;
}

static int ns_cb(const char *name, void *arg)
{
	struct ctx *c = arg;
	char blk[64];

	if (ns_block_name(name, blk, sizeof(blk)) && !strlist_has(&c->d->blocks, blk))
		strlist_add(&c->d->blocks, "%s", blk);
	return 0;
}

static int ctrl_cb(const char *name, void *arg)
{
	struct ctx *c = arg;

	c->ctrl = name;
	upcie_sysfs_dir_foreach(c->o->sysfs, ns_cb, c, "bus/pci/devices/%s/nvme/%s", c->d->bdf,
				name);
	return 0;
}

/* Any disk whose sysfs directory lies below the PCI function's (virtio-blk,
 * AHCI, and NVMe without multipath): /sys/block/X resolves into it. */
static int disk_cb(const char *name, void *arg)
{
	struct ctx *c = arg;
	char path[PATH_MAX], real[PATH_MAX];
	const char *devdir = c->disk;
	size_t n = strlen(devdir);

	if (upcie_sysfs_path(c->o->sysfs, path, sizeof(path), "block/%s", name) ||
	    !realpath(path, real))
		return 0;
	if (!strncmp(real, devdir, n) && real[n] == '/' && !strlist_has(&c->d->blocks, name))
		strlist_add(&c->d->blocks, "%s", name);
	return 0;
}

static void find_disks(const struct devbind_opts *o, struct dev_info *d)
{
	char path[PATH_MAX], real[PATH_MAX];
	struct ctx c = {.o = o, .d = d, .disk = real};

	/* NVMe namespaces, including paths of a multipath head (nvme0c0n1). */
	upcie_sysfs_dir_foreach(o->sysfs, ctrl_cb, &c, "bus/pci/devices/%s/nvme", d->bdf);
	if (upcie_sysfs_path(o->sysfs, path, sizeof(path), "bus/pci/devices/%s", d->bdf) ||
	    !realpath(path, real))
		return;
	upcie_sysfs_dir_foreach(o->sysfs, disk_cb, &c, "block");
}

static int part_cb(const char *name, void *arg)
{
	struct ctx *c = arg;

	/* Partitions are subdirectories named after the disk with a 'partition' file. */
	if (!strncmp(name, c->disk, strlen(c->disk)) &&
	    !upcie_sysfs_exists(c->o->sysfs, "block/%s/%s/partition", c->disk, name))
		strlist_add(c->names, "%s", name);
	return 0;
}

/* "259:3" of a disk or partition; "" when unknown. */
static void blk_devno(const struct devbind_opts *o, const char *disk, const char *name, char *buf,
		      size_t len)
{
	int rc;

	if (!strcmp(disk, name))
		rc = upcie_sysfs_read_str(o->sysfs, buf, len, "block/%s/dev", disk);
	else
		rc = upcie_sysfs_read_str(o->sysfs, buf, len, "block/%s/%s/dev", disk, name);
	if (rc)
		buf[0] = '\0';
}

static int holder_cb(const char *name, void *arg)
{
	struct ctx *c = arg;
	const char *what = c->cur;
	char dmname[128];

	if (!upcie_sysfs_read_str(c->o->sysfs, dmname, sizeof(dmname), "block/%s/dm/name", name))
		strlist_add(&c->d->reasons, "%s is held by %s (%s)", what, name, dmname);
	else
		strlist_add(&c->d->reasons, "%s is held by %s", what, name);
	return 0;
}

/* Is "/dev/..." this block device? Compares names, and resolves symlinks
 * (/dev/disk/by-uuid/...) when looking at the real system. */
static bool src_is(const struct devbind_opts *o, const char *src, const char *name)
{
	char real[PATH_MAX];
	const char *base;

	if (strncmp(src, "/dev/", 5))
		return false;
	if (!strcmp(src + 5, name))
		return true;
	if (o->proc || !realpath(src, real))
		return false;
	base = strrchr(real, '/');
	return base && !strcmp(base + 1, name);
}

/* mountinfo names the device by major:minor, which also catches /dev/root. */
static void check_mountinfo(struct ctx *c, const char *name, const char *devno)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (!devno[0] || tool_path(path, sizeof(path), c->o->proc, "/proc", "self/mountinfo"))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char mm[32], dir[PATH_MAX];

		/* id parent major:minor root mount-point ... */
		if (sscanf(line, "%*d %*d %31s %*s %4095s", mm, dir) != 2 || strcmp(mm, devno))
			continue;
		strlist_add(&c->d->reasons, "%s is mounted on %s", name, dir);
		break;
	}
	free(line);
	fclose(f);
}

static void check_one(struct ctx *c, const char *disk, const char *name, const struct tool_mount *m,
		      size_t nm)
{
	char devno[32], path[PATH_MAX], *line = NULL;
	size_t cap = 0, before = c->d->reasons.n;
	FILE *f;

	c->cur = name;
	for (size_t i = 0; i < nm; i++)
		if (src_is(c->o, m[i].src, name))
			strlist_add(&c->d->reasons, "%s is mounted on %s%s", name, m[i].dir,
				    strcmp(m[i].dir, "/") ? "" : " (the root filesystem)");
	if (c->d->reasons.n == before) {
		blk_devno(c->o, disk, name, devno, sizeof(devno));
		check_mountinfo(c, name, devno);
	}
	if (!tool_path(path, sizeof(path), c->o->proc, "/proc", "swaps") &&
	    (f = fopen(path, "re"))) {
		while (getline(&line, &cap, f) > 0) {
			char *sp = strpbrk(line, " \t\n");
			if (sp)
				*sp = '\0';
			if (src_is(c->o, line, name))
				strlist_add(&c->d->reasons, "%s is in use as swap", name);
		}
		free(line);
		fclose(f);
	}
	if (strcmp(disk, name))
		upcie_sysfs_dir_foreach(c->o->sysfs, holder_cb, c, "block/%s/%s/holders", disk,
					name);
	else
		upcie_sysfs_dir_foreach(c->o->sysfs, holder_cb, c, "block/%s/holders", disk);
}

/* --- processes ------------------------------------------------------------ */

static const char *proc_root(const struct devbind_opts *o)
{
	return o->proc ? o->proc : "/proc";
}

/* Digits only: a pid, the N of uioN. */
static bool is_number(const char *name)
{
	for (const char *p = name; *p; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	return name[0] != '\0';
}

/* readlink() of <proc>/<rel>, terminated; false when it is not a readable link. */
static bool proc_link(const struct devbind_opts *o, const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;

	if (upcie_sysfs_path(proc_root(o), path, sizeof(path), "%s", rel))
		return false;
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* The command name of a process, "?" when it is gone. */
static void proc_comm(const struct devbind_opts *o, const char *pid, char *buf, size_t len)
{
	if (upcie_sysfs_read_str(proc_root(o), buf, len, "%s/comm", pid) || !buf[0])
		snprintf(buf, len, "?");
}

/* --- in use beyond this mount namespace's table --------------------------- */

/* The disk and its partitions with their "major:minor", in parallel. */
struct blk_set {
	struct strlist names, devnos;
};

struct ns_scan {
	const struct devbind_opts *o;
	struct dev_info *d;
	const struct blk_set *b;
	char self_ns[64];     /* "mnt:[4026531841]", "" when unknown */
	struct strlist seen;  /* namespaces read already */
	struct strlist found; /* names reported already */
};

static int ns_pid_cb(const char *pid, void *arg)
{
	struct ns_scan *s = arg;
	char rel[64], ns[64], path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (!is_number(pid))
		return 0;
	/* Each namespace once; ours is the one check_mountinfo() read. A link we
	 * may not read (another user's process) still has its table read. */
	snprintf(rel, sizeof(rel), "%s/ns/mnt", pid);
	if (proc_link(s->o, rel, ns, sizeof(ns))) {
		if ((s->self_ns[0] && !strcmp(ns, s->self_ns)) || strlist_has(&s->seen, ns))
			return 0;
		strlist_add(&s->seen, "%s", ns);
	}
	if (upcie_sysfs_path(proc_root(s->o), path, sizeof(path), "%s/mountinfo", pid))
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		char mm[32], dir[PATH_MAX], comm[64];

		if (sscanf(line, "%*d %*d %31s %*s %4095s", mm, dir) != 2)
			continue;
		for (size_t i = 0; i < s->b->devnos.n; i++) {
			const char *name = s->b->names.v[i];

			if (strcmp(mm, s->b->devnos.v[i]) || strlist_has(&s->found, name))
				continue;
			proc_comm(s->o, pid, comm, sizeof(comm));
			strlist_add(&s->d->reasons,
				    "%s is mounted on %s in another mount namespace (pid %s, %s)",
				    name, dir, pid, comm);
			strlist_add(&s->found, "%s", name);
		}
	}
	free(line);
	fclose(f);
	return 0;
}

/* Mounts only another mount namespace sees (a container, a service with
 * PrivateMounts=): the mountinfo of every process, by major:minor. */
static void check_other_ns(const struct devbind_opts *o, struct dev_info *d,
			   const struct blk_set *b)
{
	struct ns_scan s = {.o = o, .d = d, .b = b};

	if (!proc_link(o, "self/ns/mnt", s.self_ns, sizeof(s.self_ns)))
		s.self_ns[0] = '\0';
	upcie_sysfs_dir_foreach(proc_root(o), ns_pid_cb, &s, ".");
	strlist_free(&s.seen);
	strlist_free(&s.found);
}

/* The /dev a block device's node is opened in: --dev-root, else /dev on the
 * running system; NULL with a fake tree, whose names mean nothing in /dev. */
const char *devbind_dev_root(const struct devbind_opts *o)
{
	if (o->dev)
		return o->dev;
	return o->sysfs || o->proc ? NULL : "/dev";
}

#define BUSY_WHY "is busy (open exclusively: mounted, a RAID/LVM/btrfs member or a running program)"

/* Busy for an exclusive open: the kernel has the device claimed. */
static bool blk_busy(const char *dev, const char *name)
{
	char path[PATH_MAX];
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", dev, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		close(fd);
		return false;
	}
	/* ENOENT, EACCES (not root), ENXIO: no claim seen. */
	return errno == EBUSY;
}

/*
 * A block device opened with O_EXCL fails with EBUSY while anything holds
 * it exclusively: a mount (also one in another namespace, or a btrfs member
 * that /proc/mounts does not name), device-mapper, MD, bcache, a ZFS pool,
 * or a program such as mkfs. A busy partition also makes its disk busy, so
 * the disk is named only when no partition is.
 */
static void check_busy(const struct devbind_opts *o, struct dev_info *d, const struct blk_set *b)
{
	const char *dev = devbind_dev_root(o);
	bool part_busy = false;

	if (!dev)
		return;
	for (size_t i = 1; i < b->names.n; i++)
		if (blk_busy(dev, b->names.v[i])) {
			strlist_add(&d->reasons, "%s " BUSY_WHY, b->names.v[i]);
			part_busy = true;
		}
	if (!part_busy && b->names.n && blk_busy(dev, b->names.v[0]))
		strlist_add(&d->reasons, "%s " BUSY_WHY, b->names.v[0]);
}

static void find_openers(const struct devbind_opts *o, struct dev_info *d, const struct blk_set *b);

static void check_in_use(const struct devbind_opts *o, struct dev_info *d)
{
	struct blk_set all = {0};
	struct tool_mount *m = NULL;
	size_t nm = 0;
	int rc;

	if (!d->blocks.n)
		return;
	rc = tool_mounts_read(o->proc, &m, &nm);
	if (rc) {
		/* Without the mount table we cannot tell; say so and call it in use. */
		strlist_add(&d->reasons, "cannot read the mount table (%s)", strerror(-rc));
		return;
	}
	for (size_t i = 0; i < d->blocks.n; i++) {
		const char *disk = d->blocks.v[i];
		struct blk_set b = {0};
		struct ctx c = {.o = o, .d = d, .disk = disk, .names = &b.names};
		size_t before = d->reasons.n;
		char devno[32];

		strlist_add(&b.names, "%s", disk);
		upcie_sysfs_dir_foreach(o->sysfs, part_cb, &c, "block/%s", disk);
		for (size_t p = 0; p < b.names.n; p++) {
			check_one(&c, disk, b.names.v[p], m, nm);
			blk_devno(o, disk, b.names.v[p], devno, sizeof(devno));
			strlist_add(&b.devnos, "%s", devno);
		}
		/* What our mount table, swaps and holders do not show. */
		if (d->reasons.n == before)
			check_other_ns(o, d, &b);
		if (d->reasons.n == before)
			check_busy(o, d, &b);
		for (size_t p = 0; p < b.names.n; p++) {
			strlist_add(&all.names, "%s", b.names.v[p]);
			strlist_add(&all.devnos, "%s", b.devnos.v[p]);
		}
		strlist_free(&b.names);
		strlist_free(&b.devnos);
	}
	tool_mounts_free(m, nm);
	/* Plain opens, by any process: one pass over /proc for every disk. */
	find_openers(o, d, &all);
	strlist_free(&all.names);
	strlist_free(&all.devnos);
}

/* --- network interfaces -------------------------------------------------- */

#define IFF_UP_FLAG 0x1 /* IFF_UP in <linux/if.h>: administratively up */

/* Is iface named in a route table of <proc>/net (IPv4: the first column,
 * IPv6: the last)? */
static bool has_route(const struct devbind_opts *o, const char *iface, const char *table, bool last)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	if (upcie_sysfs_path(proc_root(o), path, sizeof(path), "net/%s", table))
		return false;
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *tok, *save = NULL, *want = NULL;

		for (tok = strtok_r(line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save)) {
			if (!want || last)
				want = tok;
			if (!last)
				break;
		}
		found = want && !strcmp(want, iface);
	}
	free(line);
	fclose(f);
	return found;
}

static int net_cb(const char *name, void *arg)
{
	struct ctx *c = arg;
	const struct devbind_opts *o = c->o;
	struct dev_info *d = c->d;
	char state[32] = "";
	uint64_t flags = 0;

	strlist_add(&d->netifs, "%s", name);
	if (upcie_sysfs_read_str(o->sysfs, state, sizeof(state),
				 "bus/pci/devices/%s/net/%s/operstate", d->bdf, name))
		state[0] = '\0';
	if (upcie_sysfs_read_u64(o->sysfs, &flags, "bus/pci/devices/%s/net/%s/flags", d->bdf, name))
		flags = 0;
	if (!strcmp(state, "up") || (flags & IFF_UP_FLAG))
		strlist_add(&d->reasons, "network interface %s is up", name);
	/* dpdk-devbind's test: a routed interface carries traffic (an ssh session). */
	if (has_route(o, name, "route", false) || has_route(o, name, "ipv6_route", true))
		strlist_add(&d->reasons, "network interface %s has routes", name);
	return 0;
}

/* A network function whose interface is up or routed: taking it away cuts
 * the machine's traffic on it (perhaps the session running this). */
static void check_net(const struct devbind_opts *o, struct dev_info *d)
{
	struct ctx c = {.o = o, .d = d};

	upcie_sysfs_dir_foreach(o->sysfs, net_cb, &c, "bus/pci/devices/%s/net", d->bdf);
}

/* --- IOMMU group --------------------------------------------------------- */

static int member_cb(const char *name, void *arg)
{
	struct ctx *c = arg;
	struct upcie_pci_addr a;
	char drv[64] = "";

	if (!strcmp(name, c->d->bdf))
		return 0;
	if (!upcie_pci_addr_parse(name, &a))
		upcie_sysfs_pci_driver(c->o->sysfs, &a, drv, sizeof(drv));
	strlist_add(&c->d->members, "%s", name);
	strlist_add(&c->d->member_driver, "%s", drv);
	return 0;
}

/* --- processes driving a device through uio or vfio ----------------------- */

struct user_scan {
	const struct devbind_opts *o;
	struct strlist *out;  /* where a user is reported: d->users or d->reasons */
	struct strlist files; /* an fd on one of these means a user: "/dev/vfio/7" */
	struct strlist rdevs; /* block devices by "major:minor" (the running system only) */
	char res[PATH_MAX];   /* "<device's sysfs dir>/resource": its BAR files */
	bool maps;	      /* also look for BAR files mapped after close */
	const char *pid;
	bool hit;
};

/* ".../0000:01:00.0/resource0" or "resource2_wc": a BAR file of the device. */
static bool is_bar_file(const struct user_scan *u, const char *path)
{
	size_t n = strlen(u->res);

	return u->res[0] && !strncmp(path, u->res, n) && isdigit((unsigned char)path[n]);
}

static void user_found(struct user_scan *u, const char *file, const char *how)
{
	char comm[64];

	proc_comm(u->o, u->pid, comm, sizeof(comm));
	strlist_add(u->out, "pid %s (%s) has %s %s", u->pid, comm, file, how);
	u->hit = true;
}

/* An fd on a block device node of one of u->rdevs, wherever the node lives
 * (a container's /dev, a node made with mknod): the running system only. */
static bool fd_is_rdev(const struct user_scan *u, const char *rel)
{
	char path[PATH_MAX], mm[32];
	struct stat st;

	if (!u->rdevs.n || u->o->proc ||
	    upcie_sysfs_path(proc_root(u->o), path, sizeof(path), "%s", rel) || stat(path, &st) ||
	    !S_ISBLK(st.st_mode))
		return false;
	snprintf(mm, sizeof(mm), "%u:%u", major(st.st_rdev), minor(st.st_rdev));
	return strlist_has(&u->rdevs, mm);
}

static int user_fd_cb(const char *fd, void *arg)
{
	struct user_scan *u = arg;
	char rel[PATH_MAX], target[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s/fd/%s", u->pid, fd);
	if (!proc_link(u->o, rel, target, sizeof(target)))
		return 0;
	if (strlist_has(&u->files, target) || is_bar_file(u, target) || fd_is_rdev(u, rel)) {
		user_found(u, target, "open");
		return 1;
	}
	return 0;
}

/* BARs stay mapped after their file is closed (libupcie's uio backend does that). */
static void user_maps(struct user_scan *u)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;

	if (upcie_sysfs_path(proc_root(u->o), path, sizeof(path), "%s/maps", u->pid))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (!u->hit && getline(&line, &cap, f) > 0) {
		/* address perms offset dev inode path */
		char *file = strchr(line, '/');

		if (!file)
			continue;
		file[strcspn(file, "\n")] = '\0';
		if (is_bar_file(u, file))
			user_found(u, file, "mapped");
	}
	free(line);
	fclose(f);
}

static int user_pid_cb(const char *pid, void *arg)
{
	struct user_scan *u = arg;
	char self[32];

	if (!is_number(pid))
		return 0;
	/* Not ourselves (on the running system; a fake tree has no such pid). */
	snprintf(self, sizeof(self), "%d", (int)getpid());
	if (!u->o->proc && !strcmp(pid, self))
		return 0;
	u->pid = pid;
	u->hit = false;
	upcie_sysfs_dir_foreach(proc_root(u->o), user_fd_cb, u, "%s/fd", pid);
	if (!u->hit && u->maps)
		user_maps(u);
	return 0;
}

static int uio_cb(const char *name, void *arg)
{
	struct user_scan *u = arg;

	if (!strncmp(name, "uio", 3) && is_number(name + 3))
		strlist_add(&u->files, "/dev/%s", name);
	return 0;
}

static int vfio_dev_cb(const char *name, void *arg)
{
	struct user_scan *u = arg;

	if (!strncmp(name, "vfio", 4) && is_number(name + 4))
		strlist_add(&u->files, "/dev/vfio/devices/%s", name);
	return 0;
}

/*
 * A process driving a device bound to a user-space driver holds one of its
 * files: vfio's group (/dev/vfio/<group>, noiommu-<group>) or device cdev
 * (/dev/vfio/devices/vfioN), uio's /dev/uioN, or a BAR file
 * (resourceN) open or mapped. The links under /proc/PID/fd name them.
 */
static void find_users(const struct devbind_opts *o, struct dev_info *d)
{
	struct user_scan u = {.o = o, .out = &d->users, .maps = true};
	char path[PATH_MAX], real[PATH_MAX];

	if (!strcmp(d->driver, "vfio-pci")) {
		if (d->group >= 0) {
			strlist_add(&u.files, "/dev/vfio/%d", d->group);
			strlist_add(&u.files, "/dev/vfio/noiommu-%d", d->group);
		}
		upcie_sysfs_dir_foreach(o->sysfs, vfio_dev_cb, &u, "bus/pci/devices/%s/vfio-dev",
					d->bdf);
	} else {
		upcie_sysfs_dir_foreach(o->sysfs, uio_cb, &u, "bus/pci/devices/%s/uio", d->bdf);
	}
	if (!upcie_sysfs_path(o->sysfs, path, sizeof(path), "bus/pci/devices/%s", d->bdf) &&
	    realpath(path, real) && strlen(real) + sizeof("/resource") <= sizeof(u.res))
		snprintf(u.res, sizeof(u.res), "%s/resource", real);
	upcie_sysfs_dir_foreach(proc_root(o), user_pid_cb, &u, ".");
	strlist_free(&u.files);
}

/*
 * Processes with a namespace's block device or a partition open (a dd, a
 * database on the raw device, a backup tool): their I/O fails once the
 * device leaves the kernel's driver. An open without O_EXCL leaves no other
 * trace, so the fds of every process are read: the link names the node
 * (/dev/nvme0n1), and on the running system the node's device number also
 * catches nodes opened under another name.
 */
static void find_openers(const struct devbind_opts *o, struct dev_info *d, const struct blk_set *b)
{
	struct user_scan u = {.o = o, .out = &d->reasons};

	for (size_t i = 0; i < b->names.n; i++) {
		strlist_add(&u.files, "/dev/%s", b->names.v[i]);
		if (b->devnos.v[i][0])
			strlist_add(&u.rdevs, "%s", b->devnos.v[i]);
	}
	upcie_sysfs_dir_foreach(proc_root(o), user_pid_cb, &u, ".");
	strlist_free(&u.files);
	strlist_free(&u.rdevs);
}

int dev_info_get(const struct devbind_opts *o, const struct upcie_pci_addr *addr,
		 struct dev_info *d)
{
	struct ctx c = {.o = o, .d = d};
	int rc;

	memset(d, 0, sizeof(*d));
	d->addr = *addr;
	upcie_pci_addr_format(addr, d->bdf, sizeof(d->bdf));
	rc = upcie_sysfs_pci_ids(o->sysfs, addr, &d->vendor, &d->device, &d->class_code);
	if (rc)
		return rc;
	rc = upcie_sysfs_pci_driver(o->sysfs, addr, d->driver, sizeof(d->driver));
	if (rc)
		return rc;
	if (upcie_sysfs_read_str(o->sysfs, d->override, sizeof(d->override),
				 "bus/pci/devices/%s/driver_override", d->bdf) ||
	    !strcmp(d->override, "(null)"))
		d->override[0] = '\0';
	if (upcie_sysfs_pci_numa_node(o->sysfs, addr, &d->numa))
		d->numa = -1;
	if (upcie_sysfs_pci_iommu_group(o->sysfs, addr, &d->group))
		d->group = -1;
	else
		upcie_sysfs_dir_foreach(o->sysfs, member_cb, &c, "kernel/iommu_groups/%d/devices",
					d->group);
	find_disks(o, d);
	check_in_use(o, d);
	check_net(o, d);
	if (drv_is_user(d->driver))
		find_users(o, d);
	return 0;
}

void dev_info_free(struct dev_info *d)
{
	strlist_free(&d->members);
	strlist_free(&d->member_driver);
	strlist_free(&d->blocks);
	strlist_free(&d->reasons);
	strlist_free(&d->users);
	strlist_free(&d->netifs);
}
