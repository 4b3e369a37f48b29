/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hugepages internals
 * ===================
 *
 * state.c  what the kernel offers and holds: page sizes, per-size and
 *          per-node counters, the default size, hugetlbfs mounts.
 * main.c   command line, printers, setup and clear.
 * mount.c  mount and umount.
 * persist.c setup --persist, clear --persist: the pool at boot (sysctl.d
 *          for the default size, a systemd unit otherwise).
 *
 * Everything is read from the kernel's files under /sys and /proc (or
 * --sysfs-root and --proc-root): one code path for the running system and
 * the fake trees of the tests. Before unmounting on the running system,
 * umount also asks statfs() whether DIR really is a hugetlbfs (its magic
 * number); no libhugetlbfs is needed.
 */
#ifndef UPCIE_TOOLS_HUGEPAGES_H
#define UPCIE_TOOLS_HUGEPAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tool.h"

#define HP_MAX_SIZES 8

struct hp_opts {
	const char *sysfs; /* NULL: /sys */
	const char *proc;  /* NULL: /proc */
	const char *etc;   /* NULL: /etc (--persist's files, limits.conf) */
	bool json;
	bool persist;		      /* setup/clear --persist */
	bool dry_run;		      /* --persist, mount, umount: show, do nothing */
	const struct tool_user *user; /* mount --user */
};

struct hp_count {
	uint64_t total, free, resv, surplus;
	bool has_resv; /* per-node directories have no resv_hugepages */
};

struct hp_state {
	uint64_t default_kb; /* 0: unknown */
	size_t nsizes;
	uint64_t size_kb[HP_MAX_SIZES]; /* ascending */
	struct hp_count global[HP_MAX_SIZES];
	size_t nnodes;				   /* as many as the system has */
	int *node;				   /* node numbers, ascending */
	struct hp_count (*per_node)[HP_MAX_SIZES]; /* [nnodes][HP_MAX_SIZES] */
	/* Where a process would find pages of each size ("" if no mount). */
	char mount_for[HP_MAX_SIZES][256];
	struct tool_mount *mounts; /* hugetlbfs only */
	uint64_t *mount_kb;	   /* page size of each mount */
	size_t nmounts;
};

/* Fill st; on failure prints why, frees st and returns a TOOL_EXIT_* code. */
int hp_state_read(const struct hp_opts *o, struct hp_state *st);
void hp_state_free(struct hp_state *st);

/* Index of a page size in st, or -1. */
int hp_size_index(const struct hp_state *st, uint64_t kb);
/* "2M, 1G" for messages. */
void hp_sizes_str(const struct hp_state *st, char *buf, size_t len);
/* Index of node n in st, or -1. */
int hp_node_index(const struct hp_state *st, int n);

/* Counters of one size, globally (node < 0) or on one node. */
int hp_read_count(const struct hp_opts *o, uint64_t kb, int node, struct hp_count *c);

#define DEFAULT_MOUNT "/dev/hugepages"

/* "2M", "1G" */
void hp_fmt_kb(uint64_t kb, char *buf, size_t len);
/* --size S (NULL: the default) to an offered size in kB, or a TOOL_EXIT_* code. */
int hp_pick_size(const struct hp_state *st, const char *arg, uint64_t *kb);
/* hp_state_read(), hp_pick_size() and the size as text; st is freed on failure. */
int hp_state_read_size(const struct hp_opts *o, struct hp_state *st, const char *size_arg,
		       uint64_t *kb, char *sz, size_t len);
/* TOOL_EXIT_SYSTEM with a message when not root for this action. */
int hp_need_root(const struct hp_opts *o, const char *what, bool real_only);

int hp_cmd_mount(const struct hp_opts *o, const char *dir, const char *size_arg);
/* The pool of one size (node < 0: every node) at boot; kb 0 clears every size. */
int hp_persist(const struct hp_opts *o, const struct hp_state *st, uint64_t kb, int node,
	       uint64_t count);
int hp_cmd_umount(const struct hp_opts *o, const char *dir);

#endif
