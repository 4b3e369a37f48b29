/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Huge page sizes, counters and hugetlbfs mounts, from the kernel's files:
 * one code path for the running system and a fake tree (--sysfs-root,
 * --proc-root), so the tests on fake trees test what runs for real.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sysfs.h"

#include "hugepages.h"

int hp_size_index(const struct hp_state *st, uint64_t kb)
{
	for (size_t i = 0; i < st->nsizes; i++)
		if (st->size_kb[i] == kb)
			return (int)i;
	return -1;
}

int hp_node_index(const struct hp_state *st, int n)
{
	for (size_t i = 0; i < st->nnodes; i++)
		if (st->node[i] == n)
			return (int)i;
	return -1;
}

void hp_sizes_str(const struct hp_state *st, char *buf, size_t len)
{
	size_t w = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < st->nsizes && w < len; i++) {
		char s[32];

		tool_fmt_kb(st->size_kb[i], s, sizeof(s));
		w += (size_t)snprintf(buf + w, len - w, "%s%s", i ? ", " : "", s);
	}
}

static void add_size(struct hp_state *st, uint64_t kb)
{
	size_t i;

	if (st->nsizes == HP_MAX_SIZES || hp_size_index(st, kb) >= 0)
		return;
	for (i = st->nsizes; i > 0 && st->size_kb[i - 1] > kb; i--)
		st->size_kb[i] = st->size_kb[i - 1];
	st->size_kb[i] = kb;
	st->nsizes++;
}

static int size_dir_cb(const char *name, void *arg)
{
	unsigned long kb;
	int n = 0;

	if (sscanf(name, "hugepages-%lukB%n", &kb, &n) == 1 && name[n] == '\0' && kb)
		add_size(arg, kb);
	return 0;
}

static int read_sizes(const struct hp_opts *o, struct hp_state *st)
{
	int rc;

	rc = upcie_sysfs_dir_foreach(o->sysfs, size_dir_cb, st, "kernel/mm/hugepages");
	if (rc) {
		tool_err("cannot list huge page sizes under %s/kernel/mm/hugepages: %s",
			 o->sysfs ? o->sysfs : "/sys", strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	return TOOL_EXIT_OK;
}

static uint64_t read_default_kb(const struct hp_opts *o)
{
	char path[PATH_MAX], line[256];
	unsigned long kb = 0;
	FILE *f;

	if (tool_path(path, sizeof(path), o->proc, "/proc", "meminfo"))
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int hp_read_count(const struct hp_opts *o, uint64_t kb, int node, struct hp_count *c)
{
	char dir[128];
	int rc;

	if (node < 0)
		snprintf(dir, sizeof(dir), "kernel/mm/hugepages/hugepages-%llukB",
			 (unsigned long long)kb);
	else
		snprintf(dir, sizeof(dir), "devices/system/node/node%d/hugepages/hugepages-%llukB",
			 node, (unsigned long long)kb);
	memset(c, 0, sizeof(*c));
	rc = upcie_sysfs_read_u64(o->sysfs, &c->total, "%s/nr_hugepages", dir);
	if (!rc)
		rc = upcie_sysfs_read_u64(o->sysfs, &c->free, "%s/free_hugepages", dir);
	if (!rc)
		rc = upcie_sysfs_read_u64(o->sysfs, &c->surplus, "%s/surplus_hugepages", dir);
	if (!rc && node < 0) {
		rc = upcie_sysfs_read_u64(o->sysfs, &c->resv, "%s/resv_hugepages", dir);
		c->has_resv = true;
	}
	return rc;
}

static int node_dir_cb(const char *name, void *arg)
{
	struct hp_state *st = arg;
	struct hp_count(*counts)[HP_MAX_SIZES];
	int n = 0, id, *nodes;

	if (sscanf(name, "node%d%n", &id, &n) != 1 || name[n] != '\0' || id < 0)
		return 0;
	/* Grown one at a time: no limit on the number of nodes. */
	nodes = realloc(st->node, (st->nnodes + 1) * sizeof(*nodes));
	if (!nodes)
		tool_die_errno();
	st->node = nodes;
	counts = realloc(st->per_node, (st->nnodes + 1) * sizeof(*counts));
	if (!counts)
		tool_die_errno();
	st->per_node = counts;
	memset(&st->per_node[st->nnodes], 0, sizeof(st->per_node[st->nnodes]));
	st->node[st->nnodes++] = id;
	return 0;
}

static int read_mounts(const struct hp_opts *o, struct hp_state *st)
{
	struct tool_mount *all;
	size_t n, k = 0;
	int rc;

	rc = tool_mounts_read(o->proc, &all, &n);
	if (rc) {
		tool_err("cannot read %s/mounts: %s", o->proc ? o->proc : "/proc", strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	st->mount_kb = calloc(n ? n : 1, sizeof(*st->mount_kb));
	if (!st->mount_kb) {
		tool_mounts_free(all, n);
		tool_err("out of memory");
		return TOOL_EXIT_SYSTEM;
	}
	/* Keep hugetlbfs mounts at the front, free the rest. */
	for (size_t i = 0; i < n; i++) {
		char opt[32];
		uint64_t bytes;

		if (strcmp(all[i].type, "hugetlbfs")) {
			free(all[i].src);
			free(all[i].dir);
			free(all[i].type);
			free(all[i].opts);
			continue;
		}
		st->mount_kb[k] = st->default_kb;
		if (!tool_mount_opt(all[i].opts, "pagesize", opt, sizeof(opt)) &&
		    !tool_parse_size(opt, &bytes))
			st->mount_kb[k] = bytes / 1024;
		all[k++] = all[i];
	}
	st->mounts = all;
	st->nmounts = k;
	return TOOL_EXIT_OK;
}

int hp_state_read(const struct hp_opts *o, struct hp_state *st)
{
	int rc;

	memset(st, 0, sizeof(*st));
	rc = read_sizes(o, st);
	if (rc)
		return rc;
	st->default_kb = read_default_kb(o);
	for (size_t i = 0; i < st->nsizes; i++) {
		rc = hp_read_count(o, st->size_kb[i], -1, &st->global[i]);
		if (rc) {
			tool_err("cannot read the counters of %llu kB pages: %s",
				 (unsigned long long)st->size_kb[i], strerror(-rc));
			hp_state_free(st);
			return TOOL_EXIT_SYSTEM;
		}
	}
	/* No node directory (a kernel without NUMA) is not an error. */
	upcie_sysfs_dir_foreach(o->sysfs, node_dir_cb, st, "devices/system/node");
	for (size_t n = 0; n < st->nnodes; n++)
		for (size_t i = 0; i < st->nsizes; i++)
			if (hp_read_count(o, st->size_kb[i], st->node[n], &st->per_node[n][i]))
				memset(&st->per_node[n][i], 0, sizeof(st->per_node[n][i]));
	rc = read_mounts(o, st);
	if (rc) {
		hp_state_free(st);
		return rc;
	}
	for (size_t i = 0; i < st->nsizes; i++) {
		const char *p = NULL;

		/* The first mount of that size, as libupcie's DMA heap picks it. */
		for (size_t m = 0; m < st->nmounts && !p; m++)
			if (st->mount_kb[m] == st->size_kb[i])
				p = st->mounts[m].dir;
		snprintf(st->mount_for[i], sizeof(st->mount_for[i]), "%s", p ? p : "");
	}
	return TOOL_EXIT_OK;
}

void hp_state_free(struct hp_state *st)
{
	tool_mounts_free(st->mounts, st->nmounts);
	free(st->mount_kb);
	free(st->node);
	free(st->per_node);
	st->node = NULL;
	st->per_node = NULL;
	st->nnodes = 0;
	st->mounts = NULL;
	st->mount_kb = NULL;
	st->nmounts = 0;
}
