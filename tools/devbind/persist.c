/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devbind persist / unpersist: bindings that survive a reboot.
 *
 * One file per device, ETC/upcie/devbind.d/pci-BDF, holds "DRIVER [USER]"
 * (the layout of driverctl's /etc/driverctl.d). From the whole directory
 * two files are generated, and removed when it is empty:
 *
 *   ETC/udev/rules.d/70-upcie-devbind.rules
 *       sets driver_override when the device appears, so a driver module
 *       loaded later (by udev, from the device's modalias) leaves it alone;
 *   ETC/systemd/system/upcie-devbind.service (+ multi-user.target.wants)
 *       a oneshot unit that runs 'devbind bind' for each device at boot:
 *       it moves a device the kernel's driver took before udev ran (nvme
 *       built in or loaded from the initramfs), loads vfio-pci, refuses a
 *       device in use, and with a user chowns /dev/vfio/GROUP again.
 *
 * The unit runs the installed devbind (DEVBIND_INSTALLED, from the build's
 * prefix and bindir), never the binary that wrote it: that may be a build
 * tree, gone or stale by the next boot.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

#include "devbind.h"

#ifndef DEVBIND_INSTALLED
#error "DEVBIND_INSTALLED: the installed devbind's path, set by meson"
#endif

#define PERSIST_DIR "upcie/devbind.d"
#define RULES_FILE  "udev/rules.d/70-upcie-devbind.rules"
#define UNIT_NAME   "upcie-devbind.service"
#define UNIT_FILE   "systemd/system/" UNIT_NAME
#define UNIT_WANTS  "systemd/system/multi-user.target.wants/" UNIT_NAME
#define HEADER	    "# Written by devbind persist; change it with devbind persist / unpersist.\n"

static int etc_path(const struct devbind_opts *o, char *buf, size_t len, const char *rel)
{
	if (tool_path(buf, len, o->etc, "/etc", rel)) {
		tool_err("path too long under %s", o->etc);
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

struct entry {
	char bdf[UPCIE_PCI_ADDR_STRLEN];
	char driver[64];
	char user[64];
};

struct entries {
	const struct devbind_opts *o;
	struct entry *v;
	size_t n;
};

static int entry_cb(const char *name, void *arg)
{
	struct entries *e = arg;
	struct upcie_pci_addr a;
	char dir[PATH_MAX], line[256];
	struct entry x = {.bdf = ""}, *v;

	if (strncmp(name, "pci-", 4) || upcie_pci_addr_parse(name + 4, &a) ||
	    etc_path(e->o, dir, sizeof(dir), PERSIST_DIR) ||
	    upcie_sysfs_read_str(dir, line, sizeof(line), "%s", name))
		return 0;
	if (sscanf(line, "%63s %63s", x.driver, x.user) < 1 || !drv_normalize(x.driver))
		return 0;
	upcie_pci_addr_format(&a, x.bdf, sizeof(x.bdf));
	v = realloc(e->v, (e->n + 1) * sizeof(*v));
	if (!v)
		tool_die_errno();
	e->v = v;
	e->v[e->n++] = x;
	return 0;
}

/* The generated files from what devbind.d holds after this command. */
static int regenerate(const struct devbind_opts *o, const struct entries *e)
{
	char rules[PATH_MAX], self[PATH_MAX];
	char *r = NULL, *u = NULL;
	size_t rn = 0, un = 0;
	FILE *rf, *uf;
	int rc;

	if (etc_path(o, rules, sizeof(rules), RULES_FILE))
		return TOOL_EXIT_SYSTEM;
	if (!e->n) {
		rc = tool_file_remove(rules, o->dry_run);
		if (!rc)
			rc = tool_unit_remove(o->etc, UNIT_NAME, o->dry_run);
		if (rc) {
			tool_err("cannot remove the generated files: %s", strerror(-rc));
			return TOOL_EXIT_SYSTEM;
		}
		return TOOL_EXIT_OK;
	}
	snprintf(self, sizeof(self), "%s", DEVBIND_INSTALLED);
	if (!o->dry_run && access(self, X_OK))
		tool_warn("the unit runs %s, which is not installed (yet): install devbind "
			  "there before the next boot",
			  self);
	rf = open_memstream(&r, &rn);
	uf = open_memstream(&u, &un);
	if (!rf || !uf)
		tool_die_errno();
	fputs(HEADER "# Keeps the kernel's drivers off these PCI functions from the moment "
		     "they appear.\n",
	      rf);
	fprintf(uf,
		HEADER "[Unit]\n"
		       "Description=Bind PCI functions to user-space drivers (devbind persist)\n"
		       "After=systemd-modules-load.service systemd-udevd.service\n"
		       "\n[Service]\n"
		       "Type=oneshot\n"
		       "RemainAfterExit=yes\n");
	for (size_t i = 0; i < e->n; i++) {
		const struct entry *x = &e->v[i];

		fprintf(rf,
			"ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"%s\", "
			"ATTR{driver_override}=\"%s\"\n",
			x->bdf, x->driver);
		fprintf(uf, "ExecStart=%s bind%s%s %s %s\n", self, x->user[0] ? " --user " : "",
			x->user, x->driver, x->bdf);
	}
	fprintf(uf, "\n[Install]\nWantedBy=multi-user.target\n");
	fclose(rf);
	fclose(uf);
	rc = tool_file_put(rules, r, o->dry_run);
	if (!rc)
		rc = tool_unit_put(o->etc, UNIT_NAME, u, o->dry_run);
	free(r);
	free(u);
	if (rc) {
		tool_err("cannot write the generated files: %s", strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

static int read_entries(const struct devbind_opts *o, struct entries *e)
{
	char dir[PATH_MAX];
	int rc;

	memset(e, 0, sizeof(*e));
	e->o = o;
	if (etc_path(o, dir, sizeof(dir), PERSIST_DIR))
		return TOOL_EXIT_SYSTEM;
	rc = upcie_sysfs_dir_foreach(dir, entry_cb, e, ".");
	if (rc && rc != -ENOENT) {
		tool_err("cannot read %s: %s", dir, strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

static void next_steps(const struct devbind_opts *o)
{
	if (o->dry_run || o->etc)
		return;
	printf("next boot: the udev rule and %s apply them; now: systemctl daemon-reload && "
	       "udevadm control --reload\n",
	       UNIT_NAME);
}

int devbind_persist(const struct devbind_opts *o, const char *driver, const struct dev_info *devs,
		    size_t n)
{
	struct entries e;
	char dir[PATH_MAX], path[PATH_MAX + 32], line[160];
	int rc;

	if (!o->dry_run && !o->etc && geteuid() != 0) {
		tool_err("persist writes to /etc and needs root: run it as root, or add --dry-run "
			 "to see the files");
		return TOOL_EXIT_SYSTEM;
	}
	if (etc_path(o, dir, sizeof(dir), PERSIST_DIR) || read_entries(o, &e))
		return TOOL_EXIT_SYSTEM;
	for (size_t i = 0; i < n; i++) {
		struct entry x = {.bdf = ""};
		size_t k;

		if (dev_in_use(&devs[i]))
			tool_warn("%s: in use now (see devbind list): the bind at boot refuses it "
				  "while it is",
				  devs[i].bdf);

		snprintf(x.bdf, sizeof(x.bdf), "%s", devs[i].bdf);
		snprintf(x.driver, sizeof(x.driver), "%s", driver);
		if (o->user)
			snprintf(x.user, sizeof(x.user), "%s", o->user->name);
		snprintf(line, sizeof(line), "%s%s%s\n", x.driver, x.user[0] ? " " : "", x.user);
		snprintf(path, sizeof(path), "%s/pci-%s", dir, x.bdf);
		rc = tool_file_put(path, line, o->dry_run);
		if (rc) {
			tool_err("cannot write %s: %s", path, strerror(-rc));
			free(e.v);
			return TOOL_EXIT_SYSTEM;
		}
		for (k = 0; k < e.n && strcmp(e.v[k].bdf, x.bdf); k++)
			;
		if (k == e.n) {
			struct entry *v = realloc(e.v, (e.n + 1) * sizeof(*v));

			if (!v)
				tool_die_errno();
			e.v = v;
			e.n++;
		}
		e.v[k] = x;
	}
	rc = regenerate(o, &e);
	free(e.v);
	if (!rc) {
		for (size_t i = 0; i < n; i++)
			printf("%s: persisted on %s%s\n", devs[i].bdf, driver,
			       o->dry_run ? " (dry run)" : "");
		next_steps(o);
	}
	return rc;
}

int devbind_unpersist(const struct devbind_opts *o, char **addrs, size_t n)
{
	char(*bdfs)[UPCIE_PCI_ADDR_STRLEN];
	struct entries e;
	char dir[PATH_MAX], path[PATH_MAX + 32];
	size_t kept = 0;
	int rc = TOOL_EXIT_OK;

	if (!o->dry_run && !o->etc && geteuid() != 0) {
		tool_err(
		    "unpersist writes to /etc and needs root: run it as root, or add --dry-run "
		    "to see the changes");
		return TOOL_EXIT_SYSTEM;
	}
	if (etc_path(o, dir, sizeof(dir), PERSIST_DIR) || read_entries(o, &e))
		return TOOL_EXIT_SYSTEM;
	/* Every address must parse before anything is removed. */
	bdfs = calloc(n ? n : 1, sizeof(*bdfs));
	if (!bdfs)
		tool_die_errno();
	for (size_t i = 0; i < n; i++) {
		struct upcie_pci_addr a;

		if (upcie_pci_addr_parse(addrs[i], &a)) {
			free(e.v);
			free(bdfs);
			return tool_usage("unpersist takes PCI addresses or 'all', not '%s'",
					  addrs[i]);
		}
		upcie_pci_addr_format(&a, bdfs[i], sizeof(bdfs[i]));
	}
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t k = 0; k < e.n; k++)
			found |= !strcmp(e.v[k].bdf, bdfs[i]);
		if (!found)
			printf("%s: not persisted\n", bdfs[i]);
	}
	for (size_t k = 0; k < e.n; k++) {
		bool drop = !addrs;
		int err;

		for (size_t i = 0; addrs && i < n; i++)
			drop |= !strcmp(e.v[k].bdf, bdfs[i]);
		if (!drop) {
			e.v[kept++] = e.v[k];
			continue;
		}
		snprintf(path, sizeof(path), "%s/pci-%s", dir, e.v[k].bdf);
		err = tool_file_remove(path, o->dry_run);
		if (err) {
			tool_err("cannot remove %s: %s", path, strerror(-err));
			rc = TOOL_EXIT_SYSTEM;
			e.v[kept++] = e.v[k];
			continue;
		}
		printf("%s: no longer persisted on %s (its binding now is left as it is; "
		       "devbind restore gives it back)\n",
		       e.v[k].bdf, e.v[k].driver);
	}
	e.n = kept;
	if (!rc)
		rc = regenerate(o, &e);
	if (!rc)
		next_steps(o);
	free(bdfs);
	free(e.v);
	return rc;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->bdf, ((const struct entry *)b)->bdf);
}

int devbind_list_persisted(const struct devbind_opts *o)
{
	static const char *const hdr[] = {"BDF", "PERSISTED", "USER", "DRIVER NOW"};
	struct tool_table *t;
	struct tool_json j;
	struct entries e;
	char(*now)[64];

	if (read_entries(o, &e))
		return TOOL_EXIT_SYSTEM;
	if (e.n)
		qsort(e.v, e.n, sizeof(*e.v), entry_cmp);
	now = calloc(e.n ? e.n : 1, sizeof(*now));
	if (!now)
		tool_die_errno();
	/* The driver each device has now: "" unbound, "?" no such device. */
	for (size_t i = 0; i < e.n; i++) {
		struct upcie_pci_addr a;

		if (upcie_pci_addr_parse(e.v[i].bdf, &a) ||
		    upcie_sysfs_pci_driver(o->sysfs, &a, now[i], sizeof(now[i])))
			snprintf(now[i], sizeof(now[i]), "?");
	}
	if (o->json) {
		tool_json_init(&j, stdout);
		tool_json_obj(&j, NULL);
		tool_json_arr(&j, "persisted");
		for (size_t i = 0; i < e.n; i++) {
			tool_json_obj(&j, NULL);
			tool_json_str(&j, "bdf", e.v[i].bdf);
			tool_json_str(&j, "driver", e.v[i].driver);
			tool_json_str(&j, "user", e.v[i].user[0] ? e.v[i].user : NULL);
			tool_json_str(&j, "current_driver",
				      now[i][0] && strcmp(now[i], "?") ? now[i] : NULL);
			tool_json_bool(&j, "present", strcmp(now[i], "?") != 0);
			tool_json_obj_end(&j);
		}
		tool_json_arr_end(&j);
		tool_json_obj_end(&j);
		tool_json_done(&j);
	} else if (!e.n) {
		printf("no persisted bindings (devbind persist DRIVER DEVICE adds one)\n");
	} else {
		t = tool_table_new(4, hdr);
		for (size_t i = 0; i < e.n; i++) {
			const char *cells[4] = {e.v[i].bdf, e.v[i].driver,
						e.v[i].user[0] ? e.v[i].user : NULL,
						!now[i][0]	       ? "none"
						: !strcmp(now[i], "?") ? "(no such device)"
								       : now[i]};
			tool_table_add(t, cells);
		}
		tool_table_print(t, stdout, "");
		tool_table_free(t);
	}
	free(now);
	free(e.v);
	return TOOL_EXIT_OK;
}
