/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What a PCI function is and whether it is safe to take from the kernel.
 *
 * Devices are enumerated with the library's sysfs helpers (so a fake tree
 * under --sysfs-root works the same as /sys); libpci is used only to turn
 * vendor, device and class ids into names from its ID database.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <pci/pci.h>

#include <upcie/sysfs.h>

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

enum drv_state drv_state(const struct devbind_opts *o, const char *driver)
{
	char mod[64], dir[PATH_MAX];
	struct utsname u;

	snprintf(mod, sizeof(mod), "%s", driver);
	underscores(mod);
	/* A driver directory means it is registered with the PCI bus right now. */
	if (!upcie_sysfs_exists(o->sysfs, "bus/pci/drivers/%s", driver) ||
	    !upcie_sysfs_exists(o->sysfs, "module/%s", mod))
		return DRV_LOADED;
	if (o->modules_dir) {
		snprintf(dir, sizeof(dir), "%s", o->modules_dir);
	} else {
		if (uname(&u))
			return DRV_MISSING;
		snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
	}
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

static void check_in_use(const struct devbind_opts *o, struct dev_info *d)
{
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
		struct strlist parts = {0};
		struct ctx c = {.o = o, .d = d, .disk = d->blocks.v[i], .names = &parts};

		check_one(&c, d->blocks.v[i], d->blocks.v[i], m, nm);
		upcie_sysfs_dir_foreach(o->sysfs, part_cb, &c, "block/%s", d->blocks.v[i]);
		for (size_t p = 0; p < parts.n; p++)
			check_one(&c, d->blocks.v[i], parts.v[p], m, nm);
		strlist_free(&parts);
	}
	tool_mounts_free(m, nm);
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
	return 0;
}

void dev_info_free(struct dev_info *d)
{
	strlist_free(&d->members);
	strlist_free(&d->member_driver);
	strlist_free(&d->blocks);
	strlist_free(&d->reasons);
}
