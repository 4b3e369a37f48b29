/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * setup --persist and clear --persist: the pool the kernel gets at boot.
 *
 * The default page size on every node is what vm.nr_hugepages sets, so it
 * goes to ETC/sysctl.d/80-upcie-hugepages.conf, which systemd-sysctl (and
 * procps' sysctl --system) applies early at boot. Another size, or one
 * node, has no sysctl: a oneshot unit upcie-hugepages-SIZE[-nodeN].service
 * runs this program's setup again. Pages of 1G and up are best reserved on
 * the kernel command line, before memory fragments; a note says so.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

#include "hugepages.h"

#ifndef HUGEPAGES_INSTALLED
#error "HUGEPAGES_INSTALLED: the installed hugepages' path, set by meson"
#endif

#define SYSCTL_FILE "sysctl.d/80-upcie-hugepages.conf"
#define HEADER	    "# Written by hugepages setup --persist; hugepages clear --persist removes it.\n"

static void unit_name(uint64_t kb, int node, char *buf, size_t len)
{
	char sz[32];

	hp_fmt_kb(kb, sz, sizeof(sz));
	if (node >= 0)
		snprintf(buf, len, "upcie-hugepages-%s-node%d.service", sz, node);
	else
		snprintf(buf, len, "upcie-hugepages-%s.service", sz);
}

struct unit_scan {
	const struct hp_opts *o;
	const char *sz; /* "2M", NULL for every size */
	int rc;
};

/* upcie-hugepages-SIZE.service and upcie-hugepages-SIZE-nodeN.service */
static int unit_cb(const char *name, void *arg)
{
	struct unit_scan *u = arg;
	const char *p = name + strlen("upcie-hugepages-");
	size_t l = strlen(name);

	if (strncmp(name, "upcie-hugepages-", strlen("upcie-hugepages-")) || l < 8 ||
	    strcmp(name + l - 8, ".service"))
		return 0;
	if (u->sz && (strncmp(p, u->sz, strlen(u->sz)) ||
		      (p[strlen(u->sz)] != '.' && strncmp(p + strlen(u->sz), "-node", 5))))
		return 0;
	if (!u->rc)
		u->rc = tool_unit_remove(u->o->etc, name, u->o->dry_run);
	return 0;
}

static int persist_clear(const struct hp_opts *o, const struct hp_state *st, uint64_t kb)
{
	char path[PATH_MAX], dir[PATH_MAX], sz[32];
	struct unit_scan u = {.o = o, .sz = kb ? sz : NULL};
	int rc = 0;

	if (!kb || kb == st->default_kb) {
		if (tool_path(path, sizeof(path), o->etc, "/etc", SYSCTL_FILE))
			return -ENAMETOOLONG;
		rc = tool_file_remove(path, o->dry_run);
	}
	hp_fmt_kb(kb, sz, sizeof(sz));
	if (!rc && !tool_path(dir, sizeof(dir), o->etc, "/etc", "systemd/system"))
		upcie_sysfs_dir_foreach(dir, unit_cb, &u, ".");
	return rc ? rc : u.rc;
}

int hp_persist(const struct hp_opts *o, const struct hp_state *st, uint64_t kb, int node,
	       uint64_t count)
{
	char path[PATH_MAX], name[96], self[PATH_MAX], sz[32], where[32] = "";
	char content[PATH_MAX + 512];
	int rc;

	if (!o->dry_run && !o->etc && geteuid() != 0) {
		tool_err(
		    "--persist writes to /etc and needs root (add --dry-run to see the files)");
		return TOOL_EXIT_SYSTEM;
	}
	if (!count) {
		rc = persist_clear(o, st, kb);
	} else if (kb == st->default_kb && node < 0) {
		if (tool_path(path, sizeof(path), o->etc, "/etc", SYSCTL_FILE))
			rc = -ENAMETOOLONG;
		else {
			snprintf(content, sizeof(content), HEADER "vm.nr_hugepages = %llu\n",
				 (unsigned long long)count);
			rc = tool_file_put(path, content, o->dry_run);
		}
	} else {
		hp_fmt_kb(kb, sz, sizeof(sz));
		unit_name(kb, node, name, sizeof(name));
		if (node >= 0)
			snprintf(where, sizeof(where), " --node %d", node);
		/* The installed hugepages, never the binary that wrote the unit
		 * (a build tree's may be gone by the next boot). */
		snprintf(self, sizeof(self), "%s", HUGEPAGES_INSTALLED);
		if (!o->dry_run && access(self, X_OK))
			tool_warn("the unit runs %s, which is not installed (yet): install "
				  "hugepages there before the next boot",
				  self);
		snprintf(content, sizeof(content),
			 HEADER "[Unit]\n"
				"Description=Reserve %s huge pages (hugepages setup --persist)\n"
				"DefaultDependencies=no\n"
				"After=sysinit.target local-fs.target\n"
				"Before=basic.target\n"
				"\n[Service]\n"
				"Type=oneshot\n"
				"RemainAfterExit=yes\n"
				"ExecStart=%s setup --count %llu --size %s%s\n"
				"\n[Install]\n"
				"WantedBy=multi-user.target\n",
			 sz, self, (unsigned long long)count, sz, where);
		rc = tool_unit_put(o->etc, name, content, o->dry_run);
		if (!rc && kb >= (1u << 20))
			printf("note: %s pages are surest reserved on the kernel command line "
			       "(hugepagesz=%s hugepages=%llu), before memory fragments\n",
			       sz, sz, (unsigned long long)count);
	}
	if (rc) {
		tool_err("--persist: %s", strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}
