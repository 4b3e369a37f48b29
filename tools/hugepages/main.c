/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hugepages: show and set the kernel's huge page pools and hugetlbfs mounts,
 * the memory libupcie's DMA heaps come from.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

#include "hugepages.h"

static const char usage_text[] =
    "usage: hugepages [options] info [--json]\n"
    "       hugepages [options] setup (--count N | --mem SIZE) [--size S] [--node N]\n"
    "                 [--persist [--dry-run]]\n"
    "       hugepages [options] clear [--size S] [--persist [--dry-run]]\n"
    "       hugepages [options] mount [DIR] [--size S] [--user NAME] [--dry-run]\n"
    "       hugepages [options] umount [DIR] [--dry-run]\n"
    "\n"
    "Commands:\n"
    "  info     page sizes the kernel offers with total, free, reserved and\n"
    "           surplus pages, globally and per NUMA node; hugetlbfs mounts;\n"
    "           RLIMIT_MEMLOCK\n"
    "  setup    set the pool of one page size to N pages (--count) or to enough\n"
    "           pages for SIZE bytes (--mem, rounded up), on one node with --node;\n"
    "           fails (2) when the kernel grants fewer\n"
    "  clear    set the pool to 0 pages (every size unless --size)\n"
    "  mount    mount hugetlbfs at DIR (default " DEFAULT_MOUNT "), creating it;\n"
    "           with --user NAME, owned by NAME (an existing mount is chowned)\n"
    "  umount   unmount the hugetlbfs at DIR (default " DEFAULT_MOUNT ")\n"
    "\n"
    "SIZE and S take K, M or G suffixes (2M, 1G); S defaults to the kernel's\n"
    "default huge page size.\n"
    "\n"
    "Options:\n"
    "  --json             info as JSON\n"
    "  --persist          setup: the same pool at every boot (/etc/sysctl.d for\n"
    "                     the default size, else a systemd unit); clear: remove it\n"
    "  --dry-run          with --persist: show the files; mount, umount: show\n"
    "                     the mkdir, mount or umount (no root needed); change\n"
    "                     nothing\n"
    "  --etc-root DIR     --persist's files and limits.conf under DIR, not /etc\n"
    "  --user NAME        mount: owner of the mount; checks NAME's RLIMIT_MEMLOCK\n"
    "                     against the hugepage pool\n"
    "  --sysfs-root DIR   read and write DIR instead of /sys\n"
    "  --proc-root DIR    read DIR instead of /proc\n"
    "  -h, --help         this text\n"
    "mount and umount always act on the running system.\n"
    "\n"
    "Exit status: 0 ok, 1 usage error, 2 device or system error (including\n"
    "fewer pages granted than asked), 3 refused for safety.\n";

void hp_fmt_kb(uint64_t kb, char *buf, size_t len)
{
	tool_fmt_kb(kb, buf, len);
}

/* --- info ---------------------------------------------------------------- */

static void info_json(const struct hp_state *st)
{
	struct tool_json j;
	char s[32];

	tool_json_init(&j, stdout);
	tool_json_obj(&j, NULL);
	tool_json_uint(&j, "default_page_size_kb", st->default_kb);
	tool_json_arr(&j, "page_sizes");
	for (size_t i = 0; i < st->nsizes; i++) {
		const struct hp_count *g = &st->global[i];

		tool_json_obj(&j, NULL);
		hp_fmt_kb(st->size_kb[i], s, sizeof(s));
		tool_json_str(&j, "size", s);
		tool_json_uint(&j, "size_kb", st->size_kb[i]);
		tool_json_bool(&j, "default", st->size_kb[i] == st->default_kb);
		tool_json_uint(&j, "total", g->total);
		tool_json_uint(&j, "free", g->free);
		tool_json_uint(&j, "reserved", g->resv);
		tool_json_uint(&j, "surplus", g->surplus);
		tool_json_str(&j, "mount", st->mount_for[i][0] ? st->mount_for[i] : NULL);
		tool_json_arr(&j, "nodes");
		for (size_t n = 0; n < st->nnodes; n++) {
			const struct hp_count *c = &st->per_node[n][i];

			tool_json_obj(&j, NULL);
			tool_json_int(&j, "node", st->node[n]);
			tool_json_uint(&j, "total", c->total);
			tool_json_uint(&j, "free", c->free);
			tool_json_uint(&j, "surplus", c->surplus);
			tool_json_obj_end(&j);
		}
		tool_json_arr_end(&j);
		tool_json_obj_end(&j);
	}
	tool_json_arr_end(&j);
	tool_json_arr(&j, "mounts");
	for (size_t m = 0; m < st->nmounts; m++) {
		tool_json_obj(&j, NULL);
		tool_json_str(&j, "dir", st->mounts[m].dir);
		tool_json_str(&j, "source", st->mounts[m].src);
		hp_fmt_kb(st->mount_kb[m], s, sizeof(s));
		tool_json_str(&j, "page_size", s);
		tool_json_uint(&j, "page_size_kb", st->mount_kb[m]);
		tool_json_obj_end(&j);
	}
	tool_json_arr_end(&j);
	tool_json_memlock(&j);
	tool_json_obj_end(&j);
	tool_json_done(&j);
}

static void info_table(const struct hp_state *st)
{
	static const char *const hdr[] = {"SIZE",     "NODE",	 "TOTAL", "FREE",
					  "RESERVED", "SURPLUS", "MOUNT"};
	static const char *const mhdr[] = {"DIR", "PAGESIZE", "SOURCE"};
	char sz[32], node[16], tot[24], fr[24], rs[24], sp[24];
	struct tool_table *t;

	hp_fmt_kb(st->default_kb, sz, sizeof(sz));
	printf("default huge page size: %s\n\n", st->default_kb ? sz : "unknown");
	t = tool_table_new(7, hdr);
	for (size_t i = 0; i < st->nsizes; i++) {
		for (size_t n = 0; n <= st->nnodes; n++) {
			const struct hp_count *c = n ? &st->per_node[n - 1][i] : &st->global[i];
			const char *cells[7] = {sz,
						node,
						tot,
						fr,
						c->has_resv ? rs : NULL,
						sp,
						n ? "" : st->mount_for[i]};

			if (!n && !st->mount_for[i][0])
				cells[6] = NULL;
			hp_fmt_kb(st->size_kb[i], sz, sizeof(sz));
			if (n)
				snprintf(node, sizeof(node), "%d", st->node[n - 1]);
			else
				snprintf(node, sizeof(node), "all");
			snprintf(tot, sizeof(tot), "%llu", (unsigned long long)c->total);
			snprintf(fr, sizeof(fr), "%llu", (unsigned long long)c->free);
			snprintf(rs, sizeof(rs), "%llu", (unsigned long long)c->resv);
			snprintf(sp, sizeof(sp), "%llu", (unsigned long long)c->surplus);
			tool_table_add(t, cells);
		}
	}
	if (st->nsizes)
		tool_table_print(t, stdout, "");
	else
		printf("the kernel offers no huge pages\n");
	tool_table_free(t);

	printf("\nhugetlbfs mounts:\n");
	if (!st->nmounts) {
		printf("  none (mount one with: hugepages mount)\n");
	} else {
		t = tool_table_new(3, mhdr);
		for (size_t m = 0; m < st->nmounts; m++) {
			const char *cells[3] = {st->mounts[m].dir, sz, st->mounts[m].src};

			hp_fmt_kb(st->mount_kb[m], sz, sizeof(sz));
			tool_table_add(t, cells);
		}
		tool_table_print(t, stdout, "  ");
		tool_table_free(t);
	}
	tool_memlock_print();
}

static int cmd_info(const struct hp_opts *o)
{
	struct hp_state st;
	int rc;

	rc = hp_state_read(o, &st);
	if (rc)
		return rc;
	if (o->json)
		info_json(&st);
	else
		info_table(&st);
	hp_state_free(&st);
	return TOOL_EXIT_OK;
}

/* --- argument checks shared by the writing commands ---------------------- */

/* --size S (or the default) to an offered size in kB. */
int hp_pick_size(const struct hp_state *st, const char *arg, uint64_t *kb)
{
	char offered[128];
	uint64_t bytes;

	hp_sizes_str(st, offered, sizeof(offered));
	if (!st->nsizes) {
		tool_err("the kernel offers no huge pages (CONFIG_HUGETLBFS off?)");
		return TOOL_EXIT_SYSTEM;
	}
	if (!arg) {
		*kb = st->default_kb && hp_size_index(st, st->default_kb) >= 0 ? st->default_kb
									       : st->size_kb[0];
		return TOOL_EXIT_OK;
	}
	if (tool_parse_size(arg, &bytes) || !bytes) {
		tool_err("unknown page size '%s': use one the kernel offers (%s)", arg, offered);
		return TOOL_EXIT_USAGE;
	}
	if (bytes % 1024 || hp_size_index(st, bytes / 1024) < 0) {
		tool_err("the kernel does not offer %s pages; it offers %s", arg, offered);
		return TOOL_EXIT_SYSTEM;
	}
	*kb = bytes / 1024;
	return TOOL_EXIT_OK;
}

int hp_state_read_size(const struct hp_opts *o, struct hp_state *st, const char *size_arg,
		       uint64_t *kb, char *sz, size_t len)
{
	int rc = hp_state_read(o, st);

	if (rc)
		return rc;
	rc = hp_pick_size(st, size_arg, kb);
	if (rc) {
		hp_state_free(st);
		return rc;
	}
	hp_fmt_kb(*kb, sz, len);
	return TOOL_EXIT_OK;
}

int hp_need_root(const struct hp_opts *o, const char *what, bool real_only)
{
	if ((real_only || !o->sysfs) && geteuid() != 0) {
		tool_err("%s needs root: run it as root (e.g. with sudo)", what);
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

/* Set the pool of kb pages (sz as text) on node (< 0: globally) and read back *c. */
static int write_count(const struct hp_opts *o, uint64_t kb, const char *sz, int node,
		       uint64_t count, struct hp_count *c)
{
	char val[32], rel[128], path[PATH_MAX];
	int rc;

	if (node < 0)
		snprintf(rel, sizeof(rel), "kernel/mm/hugepages/hugepages-%llukB/nr_hugepages",
			 (unsigned long long)kb);
	else
		snprintf(rel, sizeof(rel),
			 "devices/system/node/node%d/hugepages/hugepages-%llukB/nr_hugepages", node,
			 (unsigned long long)kb);
	/* With a newline, as echo writes it: the kernel takes either, and a
	 * fake tree's plain file then reads back right even when it held a
	 * longer number before. */
	snprintf(val, sizeof(val), "%llu\n", (unsigned long long)count);
	rc = upcie_sysfs_write_str(o->sysfs, val, "%s", rel);
	if (rc) {
		upcie_sysfs_path(o->sysfs, path, sizeof(path), "%s", rel);
		tool_err("writing %llu to %s failed: %s%s", (unsigned long long)count, path,
			 strerror(-rc), rc == -EACCES || rc == -EPERM ? " (run as root)" : "");
		return TOOL_EXIT_SYSTEM;
	}
	if (hp_read_count(o, kb, node, c)) {
		tool_err("cannot read back the number of %s pages", sz);
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

/* --- setup and clear ----------------------------------------------------- */

static int cmd_setup(const struct hp_opts *o, const char *count_arg, const char *mem_arg,
		     const char *size_arg, const char *node_arg)
{
	struct hp_state st;
	struct hp_count c;
	uint64_t kb, count, mem, n64;
	int node = -1, rc;
	char sz[32], where[32] = "";

	if (!count_arg == !mem_arg)
		return tool_usage("setup needs exactly one of --count N and --mem SIZE%s", "");
	if (count_arg) {
		rc = tool_parse_u64(count_arg, &count);
		if (rc == -ERANGE || (!rc && count > INT32_MAX)) {
			tool_err("--count %s is more than %d pages", count_arg, INT32_MAX);
			return TOOL_EXIT_USAGE;
		}
		if (rc) {
			tool_err("--count needs a whole number of pages, not '%s'", count_arg);
			return TOOL_EXIT_USAGE;
		}
		if (!count) {
			tool_err("--count 0 asks for no pages; to free them use: hugepages clear");
			return TOOL_EXIT_USAGE;
		}
	}
	if (mem_arg && (rc = tool_parse_size(mem_arg, &mem)) == -ERANGE) {
		tool_err("--mem %s is more than 16 EiB", mem_arg);
		return TOOL_EXIT_USAGE;
	}
	if (mem_arg && (rc || !mem)) {
		tool_err("--mem needs a size like 512M or 2G, not '%s'", mem_arg);
		return TOOL_EXIT_USAGE;
	}
	if (node_arg) {
		if (tool_parse_u64(node_arg, &n64) || n64 > INT32_MAX) {
			tool_err("--node needs a NUMA node number, not '%s'", node_arg);
			return TOOL_EXIT_USAGE;
		}
		node = (int)n64;
	}
	rc = hp_state_read_size(o, &st, size_arg, &kb, sz, sizeof(sz));
	if (rc)
		return rc;
	if (mem_arg) {
		uint64_t pg = kb * 1024;

		/* Rounded up without mem + pg - 1, which wraps for sizes near 2^64. */
		count = mem / pg + (mem % pg != 0);
		if (!count || count > INT32_MAX) {
			tool_err("--mem %s is more than %d pages of %s", mem_arg, INT32_MAX, sz);
			rc = TOOL_EXIT_USAGE;
			goto out;
		}
	}
	if (node >= 0) {
		if (hp_node_index(&st, node) < 0 ||
		    upcie_sysfs_exists(o->sysfs,
				       "devices/system/node/node%d/hugepages/hugepages-%llukB",
				       node, (unsigned long long)kb)) {
			tool_err("NUMA node %d does not exist or has no %s pages (see hugepages "
				 "info)",
				 node, sz);
			rc = TOOL_EXIT_SYSTEM;
			goto out;
		}
		snprintf(where, sizeof(where), " on node %d", node);
	}
	if (o->dry_run) {
		/* --persist --dry-run: the files only, the pool as it is. */
		rc = hp_persist(o, &st, kb, node, count);
		goto out;
	}
	rc = hp_need_root(o, "setting up huge pages", false);
	if (!rc)
		rc = write_count(o, kb, sz, node, count, &c);
	if (rc)
		goto out;
	if (c.total < count) {
		tool_err("the kernel granted %llu of %llu %s pages%s: memory is short or "
			 "fragmented; free some, or reserve them at boot (hugepagesz=%s "
			 "hugepages=%llu on the kernel command line)",
			 (unsigned long long)c.total, (unsigned long long)count, sz, where, sz,
			 (unsigned long long)count);
		rc = TOOL_EXIT_SYSTEM;
		goto out;
	}
	printf("%s pages%s: %llu (%llu free)\n", sz, where, (unsigned long long)c.total,
	       (unsigned long long)c.free);
	if (o->persist)
		rc = hp_persist(o, &st, kb, node, count);
out:
	hp_state_free(&st);
	return rc;
}

static int cmd_clear(const struct hp_opts *o, const char *size_arg)
{
	struct hp_state st;
	uint64_t kb;
	int rc, ret = TOOL_EXIT_OK;

	rc = hp_state_read(o, &st);
	if (rc)
		return rc;
	if (size_arg) {
		rc = hp_pick_size(&st, size_arg, &kb);
		if (rc)
			goto out;
	}
	if (o->persist) {
		/* The boot-time files go first: a pool still in use stays until its
		 * users exit, but must not come back at the next boot. */
		rc = hp_persist(o, &st, size_arg ? kb : 0, -1, 0);
		if (rc || o->dry_run)
			goto out;
	}
	rc = hp_need_root(o, "clearing huge pages", false);
	if (rc)
		goto out;
	for (size_t i = 0; i < st.nsizes; i++) {
		struct hp_count c;
		char sz[32];

		if (size_arg && st.size_kb[i] != kb)
			continue;
		hp_fmt_kb(st.size_kb[i], sz, sizeof(sz));
		rc = write_count(o, st.size_kb[i], sz, -1, 0, &c);
		if (rc) {
			ret = rc;
			continue;
		}
		if (c.total || c.surplus) {
			/* Pages mapped by a process stay (as surplus) until it lets go. */
			tool_err("%s pages: %llu left (%llu surplus still in use by a process; "
				 "they go when it exits)",
				 sz, (unsigned long long)c.total, (unsigned long long)c.surplus);
			ret = TOOL_EXIT_SYSTEM;
			continue;
		}
		printf("%s pages: 0\n", sz);
	}
	rc = ret;
out:
	hp_state_free(&st);
	return rc;
}

/* --- main ---------------------------------------------------------------- */

enum {
	OPT_COUNT = TOOL_OPT_NEXT,
	OPT_MEM,
	OPT_SIZE,
	OPT_NODE,
	OPT_PERSIST,
	OPT_DRY_RUN,
	OPT_ETC,
	OPT_USER,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"mem", required_argument, NULL, OPT_MEM},
	    {"size", required_argument, NULL, OPT_SIZE},
	    {"node", required_argument, NULL, OPT_NODE},
	    {"persist", no_argument, NULL, OPT_PERSIST},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"etc-root", required_argument, NULL, OPT_ETC},
	    {"user", required_argument, NULL, OPT_USER},
	    TOOL_LONGOPTS_COMMON,
	};
	const char *count = NULL, *mem = NULL, *size = NULL, *node = NULL, *cmd, *dir;
	const char *user_name = NULL;
	struct hp_opts o = {0};
	struct tool_user user;
	int c;

	tool_name = "hugepages";
	tool_usage_text = usage_text;
	while ((c = tool_getopt(argc, argv, longopts, &o.sysfs, &o.proc, &o.json)) != -1) {
		switch (c) {
		case OPT_COUNT:
			count = optarg;
			break;
		case OPT_MEM:
			mem = optarg;
			break;
		case OPT_SIZE:
			size = optarg;
			break;
		case OPT_NODE:
			node = optarg;
			break;
		case OPT_PERSIST:
			o.persist = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_ETC:
			o.etc = optarg;
			break;
		case OPT_USER:
			user_name = optarg;
			break;
		}
	}
	cmd = tool_command(argc, argv);
	dir = optind < argc ? argv[optind++] : NULL;
	if (optind < argc)
		return tool_usage("unexpected argument '%s'", argv[optind]);
	if (o.json && strcmp(cmd, "info"))
		return tool_usage("--json applies to info only, not to %s", cmd);
	if ((count || mem || node) && strcmp(cmd, "setup"))
		return tool_usage("--count, --mem and --node apply to setup only, not to %s", cmd);
	if (size && !strcmp(cmd, "info"))
		return tool_usage("--size does not apply to %s", cmd);
	if (dir && strcmp(cmd, "mount") && strcmp(cmd, "umount"))
		return tool_usage("unexpected argument '%s'", dir);
	if (o.persist && strcmp(cmd, "setup") && strcmp(cmd, "clear"))
		return tool_usage("--persist applies to setup and clear, not to %s", cmd);
	if (o.dry_run && !o.persist && strcmp(cmd, "mount") && strcmp(cmd, "umount"))
		return tool_usage("--dry-run applies to mount, umount and --persist, not to %s",
				  cmd);
	if (o.persist && o.sysfs && !o.etc)
		return tool_usage("--persist with a fake --sysfs-root needs --etc-root too%s", "");
	if (user_name) {
		if (strcmp(cmd, "mount"))
			return tool_usage("--user applies to mount, not to %s", cmd);
		if (tool_user_get(user_name, &user)) {
			tool_err("no user '%s' on this system (see getent passwd)", user_name);
			return TOOL_EXIT_USAGE;
		}
		o.user = &user;
	}
	if (!strcmp(cmd, "info"))
		return cmd_info(&o);
	if (!strcmp(cmd, "setup"))
		return cmd_setup(&o, count, mem, size, node);
	if (!strcmp(cmd, "clear"))
		return cmd_clear(&o, size);
	if (!strcmp(cmd, "mount"))
		return hp_cmd_mount(&o, dir ? dir : DEFAULT_MOUNT, size);
	if (!strcmp(cmd, "umount")) {
		if (size)
			return tool_usage("--size does not apply to %s", cmd);
		return hp_cmd_umount(&o, dir ? dir : DEFAULT_MOUNT);
	}
	return tool_usage("unknown command '%s'", cmd);
}
