/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devbind internals
 * =================
 *
 * scan.c   what a PCI function is: ids and names (libpci's ID database),
 *          driver, NUMA node, IOMMU group, the block devices it backs and
 *          whether any of them is in use; which processes drive it through
 *          uio or vfio; which user-space drivers the system offers.
 * bind.c   the sysfs writes: unbind, driver_override, drivers_probe, the
 *          bounded wait for the bind, bus mastering for uio_pci_generic.
 * status.c one table of what is ready for user space: controllers, drivers,
 *          IOMMU groups and their /dev/vfio permissions, hugepages per
 *          node, a user's memlock limit.
 * noiommu.c vfio's no-IOMMU mode: its module parameter, shown and set.
 * persist.c bindings that survive a reboot: a udev rule and a systemd unit
 *          generated from one file per device under /etc/upcie/devbind.d;
 *          list-persisted shows them.
 * main.c   command line, the list printers, exit codes.
 *
 * Everything reads and writes through the library's sysfs helpers, rooted
 * at --sysfs-root, so the tests can run the tool against a fake tree.
 */
#ifndef UPCIE_TOOLS_DEVBIND_H
#define UPCIE_TOOLS_DEVBIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <upcie/pci.h>

#include "tool.h"

struct devbind_opts {
	const char *sysfs;	 /* NULL: /sys */
	const char *proc;	 /* NULL: /proc */
	const char *dev;	 /* NULL: /dev on the running system, none with a fake tree */
	const char *modules_dir; /* NULL: /lib/modules/$(uname -r) */
	const char *etc;	 /* NULL: /etc (persist's files, limits.conf) */
	bool all, json, force, dry_run;
	bool noiommu;				   /* bind --noiommu: turn the mode on first */
	unsigned timeout_ms;			   /* bounded wait for a bind to show */
	const struct tool_user *user;		   /* --user: who gets the device; NULL: none */
	const struct devbind_filter *allow, *deny; /* for all-nvme, vendor:device */
};

/*
 * --allow / --deny (or UPCIE_DEVBIND_ALLOW / _DENY): which devices the
 * wildcard forms of DEVICE (all-nvme, vendor:device) may pick. A device
 * named by its address is never filtered.
 */
struct devbind_filter {
	const char *from; /* "--deny", "UPCIE_DEVBIND_DENY", ... for messages */
	struct upcie_pci_addr *addrs;
	size_t naddrs;
	uint32_t *ids; /* vendor << 16 | device */
	size_t nids;
};

struct strlist {
	char **v;
	size_t n;
};

void strlist_add(struct strlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool strlist_has(const struct strlist *l, const char *s);
void strlist_free(struct strlist *l);

struct dev_info {
	struct upcie_pci_addr addr;
	char bdf[UPCIE_PCI_ADDR_STRLEN];
	uint16_t vendor, device;
	uint32_t class_code;
	char driver[64];	      /* "" when unbound */
	char override[64];	      /* "" when not set */
	int numa;		      /* -1: none */
	int group;		      /* -1: no IOMMU group */
	struct strlist members;	      /* other functions in the group: "bdf" */
	struct strlist member_driver; /* their drivers, "" when unbound */
	struct strlist blocks;	      /* namespaces' block devices: "nvme0n1" */
	struct strlist reasons;	      /* why it is in use; empty when it is not */
	struct strlist users;	      /* processes driving it through uio or vfio */
	struct strlist netifs;	      /* its network interfaces: "eth0" */
	char vendor_name[128];
	char device_name[256];
	char class_name[128];
};

#define CLASS_NVME 0x0108 /* class 01 (mass storage), subclass 08 (NVM) */

static inline bool dev_is_nvme(const struct dev_info *d)
{
	return (d->class_code >> 8) == CLASS_NVME;
}

static inline bool dev_in_use(const struct dev_info *d)
{
	return d->reasons.n || d->users.n;
}

/* scan.c */
int dev_info_get(const struct devbind_opts *o, const struct upcie_pci_addr *addr,
		 struct dev_info *d);
void dev_info_free(struct dev_info *d);
/* ids to names through libpci (only list needs them). */
void names_lookup(struct dev_info *d);
void names_close(void);

enum drv_state {
	DRV_MISSING,
	DRV_AVAILABLE, /* a module that modprobe can load */
	DRV_BUILTIN,
	DRV_LOADED,
};
const char *drv_state_name(enum drv_state s);
enum drv_state drv_state(const struct devbind_opts *o, const char *driver);
/* Where modules are looked for: --modules-dir, else /lib/modules/$(uname -r). */
void drv_modules_dir(const struct devbind_opts *o, char *dir, size_t len);

/* The drivers devbind knows how to bind; NULL for anything else. */
const char *drv_normalize(const char *name);
bool drv_is_user(const char *driver);

/* The /dev that device nodes are in: --dev-root, else /dev on the running
 * system; NULL with a fake tree, whose names mean nothing in /dev. */
const char *devbind_dev_root(const struct devbind_opts *o);

/* status.c, persist.c; each returns a TOOL_EXIT_* code. */
int devbind_status(const struct devbind_opts *o);
int devbind_persist(const struct devbind_opts *o, const char *driver, const struct dev_info *devs,
		    size_t n);
/* addrs: PCI addresses as given, or NULL for every persisted device. */
int devbind_unpersist(const struct devbind_opts *o, char **addrs, size_t n);
int devbind_list_persisted(const struct devbind_opts *o);

/* noiommu.c: vfio's no-IOMMU mode ("on", "off", NULL when the kernel has
 * none or vfio is not loaded); is IOMMU group 'group' one it made?
 * _set and devbind_noiommu (the command) return a TOOL_EXIT_* code. */
const char *devbind_noiommu_mode(const struct devbind_opts *o);
bool devbind_group_noiommu(const struct devbind_opts *o, int group);
int devbind_noiommu_set(const struct devbind_opts *o, bool on);
int devbind_noiommu(const struct devbind_opts *o, const char *arg);

/* bind.c; each returns a TOOL_EXIT_* code. */
/* One sysfs write (rel under the sysfs root), or its line under --dry-run. */
int devbind_write(const struct devbind_opts *o, const char *who, const char *val, const char *rel);
int devbind_bind(const struct devbind_opts *o, const char *driver, struct dev_info *devs, size_t n);
int devbind_unbind(const struct devbind_opts *o, struct dev_info *devs, size_t n);
int devbind_restore(const struct devbind_opts *o, struct dev_info *devs, size_t n);

#endif
