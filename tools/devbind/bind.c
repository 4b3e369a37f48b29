/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sysfs writes that move a PCI function between drivers.
 *
 * Binding uses driver_override (kernel 3.16+), never new_id: new_id makes
 * the driver grab every device with that vendor:device, not just this one.
 *
 *   0. refuse each device in use (the others go on)
 *   1. modprobe DRIVER                   unless bus/pci/drivers/DRIVER exists
 *      (a dry run checks that a module is there to load);
 *      vfio-pci: refuse a device without an IOMMU group (see below)
 *   2. BDF  > devices/BDF/driver/unbind  if bound to another driver
 *   3. DRIVER > devices/BDF/driver_override
 *   4. BDF  > bus/pci/drivers_probe
 *   5. wait until bus/pci/drivers/DRIVER/BDF exists (bounded)
 *   6. uio_pci_generic: set Bus Master Enable in the COMMAND register,
 *      because that driver does not (vfio-pci leaves it to the user too,
 *      but the VFIO backend sets it through the device fd).
 *
 * Step 5 looks at the driver's side of the bind, the link the kernel adds
 * under bus/pci/drivers/DRIVER/ when a device binds. A fake tree has no
 * kernel, so the tests seed that link; the device's own 'driver' link
 * still names the old driver, which is what steps 2-4 act on.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sysfs.h"

#include "devbind.h"

#define PCI_COMMAND	   0x04
#define PCI_COMMAND_MASTER 0x0004 /* Bus Master Enable, PCI Local Bus 3.0, 6.2.2 */

/* The value as it would appear in a shell: printable, "\n" spelled out. */
static void show_value(const char *val, char *buf, size_t len)
{
	size_t w = 0;

	for (const char *p = val; *p && w + 3 < len; p++) {
		if (*p == '\n') {
			buf[w++] = '\\';
			buf[w++] = 'n';
		} else {
			buf[w++] = *p;
		}
	}
	buf[w] = '\0';
}

/* One sysfs write, or its description under --dry-run. */
static int swrite(const struct devbind_opts *o, const char *who, const char *val, const char *rel)
{
	char path[PATH_MAX], shown[128];
	int rc;

	rc = upcie_sysfs_path(o->sysfs, path, sizeof(path), "%s", rel);
	if (rc) {
		tool_err("%s: path too long under %s", who, o->sysfs);
		return TOOL_EXIT_SYSTEM;
	}
	show_value(val, shown, sizeof(shown));
	if (o->dry_run) {
		printf("dry-run: write \"%s\" to %s\n", shown, path);
		return TOOL_EXIT_OK;
	}
	rc = upcie_sysfs_write_str(o->sysfs, val, "%s", rel);
	if (rc) {
		tool_err("%s: writing \"%s\" to %s failed: %s%s", who, shown, path, strerror(-rc),
			 (rc == -EACCES || rc == -EPERM)  ? " (run as root)"
			 : rc == -ENODEV || rc == -EINVAL ? " (see dmesg for the driver's reason)"
							  : "");
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

int devbind_write(const struct devbind_opts *o, const char *who, const char *val, const char *rel)
{
	return swrite(o, who, val, rel);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Wait (bounded) for bus/pci/drivers/DRIVER/BDF. */
static bool wait_bound(const struct devbind_opts *o, const char *driver, const char *bdf)
{
	uint64_t end = now_ms() + o->timeout_ms;

	for (;;) {
		if (!upcie_sysfs_exists(o->sysfs, "bus/pci/drivers/%s/%s", driver, bdf))
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

struct kdrv_find {
	const char *bdf;
	const struct devbind_opts *o;
	char *out;
	size_t len;
};

static int kdrv_cb(const char *name, void *arg)
{
	struct kdrv_find *k = arg;

	if (drv_is_user(name))
		return 0;
	if (upcie_sysfs_exists(k->o->sysfs, "bus/pci/drivers/%s/%s", name, k->bdf))
		return 0;
	snprintf(k->out, k->len, "%s", name);
	return 1;
}

/* Wait (bounded) for any kernel (non user-space) driver to take the device. */
static bool wait_kernel_driver(const struct devbind_opts *o, const char *bdf, char *drv, size_t len)
{
	uint64_t end = now_ms() + o->timeout_ms;
	struct kdrv_find k = {bdf, o, drv, len};

	for (;;) {
		if (upcie_sysfs_dir_foreach(o->sysfs, kdrv_cb, &k, "bus/pci/drivers") == 1)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(20);
	}
}

static int run_modprobe(const char *driver)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("modprobe", "modprobe", driver, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status))
		return -EINTR;
	return WEXITSTATUS(status) == 127 ? -ENOEXEC : (WEXITSTATUS(status) ? -ENOENT : 0);
}

/* Make sure bus/pci/drivers/DRIVER exists, loading the module if needed. */
static int ensure_driver(const struct devbind_opts *o, const char *driver)
{
	int rc;

	if (!upcie_sysfs_exists(o->sysfs, "bus/pci/drivers/%s", driver))
		return TOOL_EXIT_OK;
	if (o->dry_run) {
		/* What modprobe would find: the module, or built in (then it
		 * would be registered already, so that is missing too). */
		if (drv_state(o, driver) != DRV_AVAILABLE) {
			char dir[PATH_MAX];

			drv_modules_dir(o, dir, sizeof(dir));
			tool_err("%s is not loaded and no module for it is in %s: the real run "
				 "would fail at modprobe %s; install the kernel's extra modules "
				 "(or build it with CONFIG_%s)",
				 driver, dir, driver,
				 !strcmp(driver, "vfio-pci")	      ? "VFIO_PCI"
				 : !strcmp(driver, "uio_pci_generic") ? "UIO_PCI_GENERIC"
								      : "BLK_DEV_NVME");
			return TOOL_EXIT_SYSTEM;
		}
		printf("dry-run: run \"modprobe %s\"\n", driver);
		return TOOL_EXIT_OK;
	}
	if (o->sysfs) {
		/* A fake tree gets no modprobe: it would load into the real kernel. */
		tool_err("driver %s is not registered under %s/bus/pci/drivers and modprobe is "
			 "skipped with --sysfs-root; create that directory in the tree",
			 driver, o->sysfs);
		return TOOL_EXIT_SYSTEM;
	}
	rc = run_modprobe(driver);
	if (rc == -ENOEXEC) {
		tool_err("cannot run modprobe to load %s; install kmod (or busybox modprobe) or "
			 "load the module by hand",
			 driver);
		return TOOL_EXIT_SYSTEM;
	}
	if (rc || upcie_sysfs_exists(o->sysfs, "bus/pci/drivers/%s", driver)) {
		tool_err("driver module %s is missing: modprobe %s failed; install the kernel's "
			 "extra modules (or build it with CONFIG_%s) and retry",
			 driver, driver,
			 !strcmp(driver, "vfio-pci")	      ? "VFIO_PCI"
			 : !strcmp(driver, "uio_pci_generic") ? "UIO_PCI_GENERIC"
							      : "BLK_DEV_NVME");
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

static int set_bus_master(const struct devbind_opts *o, const struct dev_info *d)
{
	char path[PATH_MAX];
	uint8_t cmd[2];
	uint16_t v;
	int rc;

	rc = upcie_sysfs_pci_config_read(o->sysfs, &d->addr, PCI_COMMAND, cmd, sizeof(cmd));
	if (rc) {
		tool_err("%s: cannot read the COMMAND register: %s", d->bdf, strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	v = (uint16_t)(cmd[0] | cmd[1] << 8); /* config space is little endian */
	if (v & PCI_COMMAND_MASTER)
		return TOOL_EXIT_OK;
	v |= PCI_COMMAND_MASTER;
	cmd[0] = (uint8_t)v;
	cmd[1] = (uint8_t)(v >> 8);
	if (o->dry_run) {
		upcie_sysfs_path(o->sysfs, path, sizeof(path), "bus/pci/devices/%s/config", d->bdf);
		printf("dry-run: write 0x%04x at offset 0x%x of %s (COMMAND: Bus Master Enable)\n",
		       v, PCI_COMMAND, path);
		return TOOL_EXIT_OK;
	}
	rc = upcie_sysfs_pci_config_write(o->sysfs, &d->addr, PCI_COMMAND, cmd, sizeof(cmd));
	if (rc) {
		tool_err("%s: cannot enable bus mastering: %s", d->bdf, strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

/* vfio-pci needs every function in the group on vfio-pci, pci-stub, or none
 * (bridges may stay on pcieport); otherwise the group is not viable. */
static void warn_group(const struct dev_info *d, const struct dev_info *devs, size_t n)
{
	for (size_t i = 0; i < d->members.n; i++) {
		const char *m = d->members.v[i], *drv = d->member_driver.v[i];
		bool moving = false;

		for (size_t j = 0; j < n; j++)
			moving |= !strcmp(devs[j].bdf, m);
		if (moving || !drv[0] || !strcmp(drv, "vfio-pci") || !strcmp(drv, "pci-stub") ||
		    !strcmp(drv, "pcieport"))
			continue;
		tool_warn("%s: IOMMU group %d also holds %s, bound to %s; the group is not viable "
			  "for vfio-pci until it moves too (devbind bind vfio-pci %s)",
			  d->bdf, d->group, m, drv, m);
	}
}

/* Each reason in why refuses the device, or is a warning with --force. */
static int refuse(const struct devbind_opts *o, const struct dev_info *d, const struct strlist *why,
		  const char *what_to_do)
{
	int rc = TOOL_EXIT_OK;

	for (size_t r = 0; r < why->n; r++) {
		if (o->force) {
			tool_warn("%s: in use (%s); going ahead because of --force", d->bdf,
				  why->v[r]);
		} else {
			tool_err(
			    "%s: refusing, the device is in use: %s (%s first, or pass --force)",
			    d->bdf, why->v[r], what_to_do);
			rc = TOOL_EXIT_SAFETY;
		}
	}
	return rc;
}

/* The exit code of a command from two of its parts: a refusal (3) wins, so
 * a caller can tell "refused" from "failed"; then any failure. */
static int worst(int a, int b)
{
	if (a == TOOL_EXIT_SAFETY || b == TOOL_EXIT_SAFETY)
		return TOOL_EXIT_SAFETY;
	return a ? a : b;
}

/*
 * Refuse a device that is in use: its block devices (it would leave its
 * kernel driver), a network interface that is up or routed, or a process
 * driving it through uio or vfio, which would lose it under its feet (uio)
 * or make the unbind wait until it exits (vfio). target is the driver bind
 * moves to, NULL for unbind and restore; a device already on target is not
 * touched, so its users do not matter. Each refused device is marked in
 * skip (the others go ahead); TOOL_EXIT_SAFETY when any was.
 */
static int check_safe(const struct devbind_opts *o, const struct dev_info *devs, size_t n,
		      const char *target, bool *skip)
{
	int rc = TOOL_EXIT_OK;

	for (size_t i = 0; i < n; i++) {
		const struct dev_info *d = &devs[i];
		bool bad = false;

		bad |= refuse(o, d, &d->reasons, "unmount or stop it") != TOOL_EXIT_OK;
		if (!target || strcmp(d->driver, target))
			bad |= refuse(o, d, &d->users, "stop that process") != TOOL_EXIT_OK;
		if (bad) {
			skip[i] = true;
			rc = TOOL_EXIT_SAFETY;
		}
	}
	return rc;
}

static bool *skip_new(size_t n)
{
	bool *skip = calloc(n ? n : 1, sizeof(*skip));

	if (!skip)
		tool_die_errno();
	return skip;
}

/* vfio-pci takes a device only through its IOMMU group. Without one (no
 * IOMMU, or it is off) its probe fails with EINVAL after the device has left
 * its driver, so refuse it before writing anything. The unsafe no-IOMMU
 * mode (CONFIG_VFIO_NOIOMMU) makes vfio create a group at probe time; it is
 * off unless vfio's parameter says otherwise (with vfio not loaded yet, as
 * in a dry run, it is taken to be off, its default). Devices that cannot be
 * taken are marked in skip. */
static int check_vfio_group(const struct devbind_opts *o, const struct dev_info *devs, size_t n,
			    bool *skip)
{
	const char *mode = devbind_noiommu_mode(o);
	int rc = TOOL_EXIT_OK;

	if (mode && !strcmp(mode, "on"))
		return TOOL_EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (skip[i] || devs[i].group >= 0 || !strcmp(devs[i].driver, "vfio-pci"))
			continue;
		tool_err("%s: no IOMMU group, so vfio-pci cannot take it: the IOMMU is off or "
			 "missing (enable VT-d/AMD-Vi and boot with intel_iommu=on or "
			 "amd_iommu=on), or bind uio_pci_generic instead, or (unsafe) use "
			 "vfio's no-IOMMU mode: devbind bind --noiommu vfio-pci %s",
			 devs[i].bdf, devs[i].bdf);
		skip[i] = true;
		rc = TOOL_EXIT_SYSTEM;
	}
	return rc;
}

/*
 * A bind that did not take leaves the device with no driver (its block
 * devices gone): hand it back to the driver it had, so a failed bind
 * changes nothing. True when that driver has it again.
 */
static bool roll_back(const struct devbind_opts *o, const struct dev_info *d)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", d->bdf);
	if (swrite(o, d->bdf, d->driver[0] ? d->driver : "\n", rel))
		return false;
	if (!d->driver[0] || swrite(o, d->bdf, d->bdf, "bus/pci/drivers_probe"))
		return false;
	if (!wait_bound(o, d->driver, d->bdf))
		return false;
	/* Back on its old driver: drop the override unless it had one before. */
	if (!d->override[0])
		swrite(o, d->bdf, "\n", rel);
	return true;
}

/*
 * --user: the vfio group device is what a process opens to drive the
 * device (/dev/vfio/vfio, the container, is open to all); make the user
 * its owner. uio gives no such door: its BAR files and /dev/uioN are root's
 * and the physical addresses it needs (/proc/self/pagemap) need
 * CAP_SYS_ADMIN, so say so instead.
 */
/* With iommufd (Linux 6.6+), the library opens the device's cdev and
 * /dev/iommu instead of the group node: the user gets those too. */
static int give_cdev(const struct devbind_opts *o, const struct dev_info *d, const char *dev)
{
	char name[32], path[2][PATH_MAX];

	if (upcie_sysfs_pci_vfio_cdev(o->sysfs, &d->addr, name, sizeof(name)))
		return TOOL_EXIT_OK; /* no cdev: type1 only */
	snprintf(path[0], sizeof(path[0]), "%s/vfio/devices/%s", dev, name);
	snprintf(path[1], sizeof(path[1]), "%s/iommu", dev);
	if (access(path[1], F_OK))
		return TOOL_EXIT_OK; /* no /dev/iommu: the cdev alone opens nothing */
	for (int i = 0; i < 2; i++) {
		if (o->dry_run) {
			printf("dry-run: chown %s:%s %s\n", o->user->name,
			       tool_gid_name(o->user->gid), path[i]);
			continue;
		}
		if (chown(path[i], o->user->uid, o->user->gid)) {
			tool_err("%s: chown %s %s failed: %s", d->bdf, o->user->name, path[i],
				 strerror(errno));
			return TOOL_EXIT_SYSTEM;
		}
		printf("%s: %s is %s's now (%s)\n", d->bdf, path[i], o->user->name,
		       i ? "iommufd; every process that may open it can map memory for its devices"
			 : "the device's VFIO cdev");
	}
	return TOOL_EXIT_OK;
}

static int give_to_user(const struct devbind_opts *o, const struct dev_info *d, const char *driver)
{
	const char *dev = devbind_dev_root(o);
	char path[PATH_MAX];
	uint64_t end = now_ms() + o->timeout_ms;
	int group;

	if (strcmp(driver, "vfio-pci")) {
		tool_warn("%s: %s cannot use it without root: uio_pci_generic's BAR files and "
			  "/dev/uioN belong to root and physical addresses need CAP_SYS_ADMIN; "
			  "bind vfio-pci for a non-root user",
			  d->bdf, o->user->name);
		return TOOL_EXIT_OK;
	}
	if (upcie_sysfs_pci_iommu_group(o->sysfs, &d->addr, &group)) {
		tool_err("%s: no IOMMU group, so no /dev/vfio node to give %s", d->bdf,
			 o->user->name);
		return TOOL_EXIT_SYSTEM;
	}
	if (devbind_group_noiommu(o, group)) {
		tool_warn("%s: %s cannot use it without root: it is in vfio's no-IOMMU mode "
			  "(/dev/vfio/noiommu-%d), which needs CAP_SYS_RAWIO, and physical "
			  "addresses need CAP_SYS_ADMIN",
			  d->bdf, o->user->name, group);
		return TOOL_EXIT_OK;
	}
	if (!dev) {
		printf("%s: /dev/vfio/%d not changed (a fake tree; give --dev-root)\n", d->bdf,
		       group);
		return TOOL_EXIT_OK;
	}
	snprintf(path, sizeof(path), "%s/vfio/%d", dev, group);
	if (o->dry_run) {
		printf("dry-run: chown %s:%s %s\n", o->user->name, tool_gid_name(o->user->gid),
		       path);
		return give_cdev(o, d, dev);
	}
	/* vfio creates the node when the group gets its first vfio-pci device. */
	while (access(path, F_OK) && now_ms() < end)
		sleep_ms(20);
	if (chown(path, o->user->uid, o->user->gid)) {
		tool_err("%s: chown %s %s failed: %s", d->bdf, o->user->name, path,
			 strerror(errno));
		return TOOL_EXIT_SYSTEM;
	}
	printf("%s: %s is %s's now (IOMMU group %d)\n", d->bdf, path, o->user->name, group);
	return give_cdev(o, d, dev);
}

int devbind_bind(const struct devbind_opts *o, const char *driver, struct dev_info *devs, size_t n)
{
	bool *skip = skip_new(n);
	char rel[PATH_MAX];
	int rc, ret;

	/* Each device is checked on its own: one refused (or without an IOMMU
	 * group) is reported and left alone, the others go ahead. */
	ret = check_safe(o, devs, n, driver, skip);
	rc = ensure_driver(o, driver);
	/* --noiommu: the mode on before vfio-pci probes (vfio is loaded now). */
	if (!rc && o->noiommu) {
		rc = devbind_noiommu_set(o, true);
		if (rc && o->dry_run && !devbind_noiommu_mode(o))
			rc = TOOL_EXIT_OK; /* vfio not loaded yet: the real run loads it */
	}
	if (rc) {
		/* A dry run goes on to report what else the real run would hit. */
		if (o->dry_run && !strcmp(driver, "vfio-pci"))
			check_vfio_group(o, devs, n, skip);
		free(skip);
		return worst(ret, rc);
	}
	if (!strcmp(driver, "vfio-pci"))
		ret = worst(ret, check_vfio_group(o, devs, n, skip));
	for (size_t i = 0; i < n; i++) {
		struct dev_info *d = &devs[i];
		char old[64];

		if (skip[i])
			continue;
		if (!strcmp(driver, "vfio-pci"))
			warn_group(d, devs, n);
		snprintf(old, sizeof(old), "%s", d->driver[0] ? d->driver : "no driver");
		if (!strcmp(d->driver, driver)) {
			rc = TOOL_EXIT_OK;
		} else {
			rc = TOOL_EXIT_OK;
			if (d->driver[0]) {
				snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver/unbind",
					 d->bdf);
				rc = swrite(o, d->bdf, d->bdf, rel);
			}
			if (!rc) {
				snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override",
					 d->bdf);
				rc = swrite(o, d->bdf, driver, rel);
			}
			if (!rc)
				rc = swrite(o, d->bdf, d->bdf, "bus/pci/drivers_probe");
			if (!rc && !o->dry_run && !wait_bound(o, driver, d->bdf)) {
				bool back = roll_back(o, d);
				tool_err(
				    "%s: not bound to %s after %u ms (dmesg may say why); %s%s",
				    d->bdf, driver, o->timeout_ms,
				    back ? "put it back on "
					 : "give it back with: devbind restore ",
				    back ? old : d->bdf);
				rc = TOOL_EXIT_SYSTEM;
			}
		}
		if (!rc && !strcmp(driver, "uio_pci_generic"))
			rc = set_bus_master(o, d);
		if (rc) {
			ret = worst(ret, rc);
			continue;
		}
		if (!strcmp(d->driver, driver))
			printf("%s: already bound to %s\n", d->bdf, driver);
		else
			printf("%s: %s -> %s%s\n", d->bdf, old, driver,
			       o->dry_run ? " (dry run)" : "");
		if (o->user)
			ret = worst(ret, give_to_user(o, d, driver));
	}
	free(skip);
	/* A warning only: the bind is done, the user may still raise the limit. */
	if (o->user && !strcmp(driver, "vfio-pci"))
		tool_memlock_check(o->etc, o->sysfs, o->user);
	return ret;
}

static int clear_override(const struct devbind_opts *o, const struct dev_info *d)
{
	char rel[PATH_MAX];

	/* Writing a newline clears it (an empty write is ignored by old kernels). */
	if (!d->override[0])
		return TOOL_EXIT_OK;
	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver_override", d->bdf);
	return swrite(o, d->bdf, "\n", rel);
}

static int unbind_one(const struct devbind_opts *o, const struct dev_info *d)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "bus/pci/devices/%s/driver/unbind", d->bdf);
	return swrite(o, d->bdf, d->bdf, rel);
}

int devbind_unbind(const struct devbind_opts *o, struct dev_info *devs, size_t n)
{
	bool *skip = skip_new(n);
	int rc, ret;

	ret = check_safe(o, devs, n, NULL, skip);
	for (size_t i = 0; i < n; i++) {
		struct dev_info *d = &devs[i];

		if (skip[i])
			continue;
		rc = clear_override(o, d);
		if (!rc && d->driver[0])
			rc = unbind_one(o, d);
		if (rc) {
			ret = worst(ret, rc);
			continue;
		}
		if (d->driver[0])
			printf("%s: unbound from %s%s\n", d->bdf, d->driver,
			       o->dry_run ? " (dry run)" : "");
		else
			printf("%s: no driver bound\n", d->bdf);
	}
	free(skip);
	return ret;
}

int devbind_restore(const struct devbind_opts *o, struct dev_info *devs, size_t n)
{
	bool *skip = skip_new(n);
	int rc, ret = TOOL_EXIT_OK;

	/* Only the devices restore moves: those not on a kernel driver. */
	for (size_t i = 0; i < n; i++)
		if (!devs[i].driver[0] || drv_is_user(devs[i].driver))
			ret = worst(ret, check_safe(o, &devs[i], 1, NULL, &skip[i]));
	for (size_t i = 0; i < n; i++) {
		struct dev_info *d = &devs[i];
		char kdrv[64] = "";

		if (skip[i])
			continue;

		if (d->driver[0] && !drv_is_user(d->driver)) {
			rc = clear_override(o, d);
			if (!rc)
				printf("%s: already on kernel driver %s\n", d->bdf, d->driver);
			ret = worst(ret, rc);
			continue;
		}
		rc = clear_override(o, d);
		if (!rc && d->driver[0])
			rc = unbind_one(o, d);
		if (!rc)
			rc = swrite(o, d->bdf, d->bdf, "bus/pci/drivers_probe");
		if (!rc && !o->dry_run && !wait_kernel_driver(o, d->bdf, kdrv, sizeof(kdrv))) {
			tool_err(
			    "%s: no kernel driver took the device within %u ms; load one (e.g. "
			    "modprobe nvme) and run devbind restore %s again",
			    d->bdf, o->timeout_ms, d->bdf);
			rc = TOOL_EXIT_SYSTEM;
		}
		if (rc) {
			ret = worst(ret, rc);
			continue;
		}
		printf("%s: %s -> %s\n", d->bdf, d->driver[0] ? d->driver : "no driver",
		       o->dry_run ? "kernel default (dry run)" : kdrv);
	}
	free(skip);
	return ret;
}
