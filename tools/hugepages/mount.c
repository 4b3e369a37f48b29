/* SPDX-License-Identifier: BSD-3-Clause */
/* hugepages mount and umount: hugetlbfs on the running system. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>

#include "hugepages.h"

/*
 * Is dir itself on a hugetlbfs? statfs() magic, as libhugetlbfs's
 * hugetlbfs_test_path() answers it: the tool needs nothing else from that
 * library.
 */
static bool on_hugetlbfs(const char *dir)
{
	struct statfs sfs;

	return statfs(dir, &sfs) == 0 && (unsigned long)sfs.f_type == HUGETLBFS_MAGIC;
}

/*
 * *dir made canonical in real (when it exists), then the index of the mount
 * there in st (hugetlbfs) or -1; *other gets another fs type mounted there.
 */
static int find_mount(const struct hp_opts *o, const char **dir, char *real,
		      const struct hp_state *st, char *other, size_t len)
{
	struct tool_mount *m;
	size_t n;

	if (realpath(*dir, real))
		*dir = real;
	other[0] = '\0';
	for (size_t i = 0; i < st->nmounts; i++)
		if (!strcmp(st->mounts[i].dir, *dir))
			return (int)i;
	if (!tool_mounts_read(o->proc, &m, &n)) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(m[i].dir, *dir))
				snprintf(other, len, "%s", m[i].type);
		tool_mounts_free(m, n);
	}
	return -1;
}

/* --user on a mount that is there already: its root directory changes owner. */
static int give_to_user(const struct hp_opts *o, const char *dir)
{
	int rc = hp_need_root(o, "changing the owner of a hugetlbfs mount", true);

	if (rc)
		return rc;
	if (chown(dir, o->user->uid, o->user->gid)) {
		tool_err("chown %s %s failed: %s", o->user->name, dir, strerror(errno));
		return TOOL_EXIT_SYSTEM;
	}
	printf("%s: owned by %s now\n", dir, o->user->name);
	tool_memlock_check(o->etc, o->sysfs, o->user);
	return TOOL_EXIT_OK;
}

int hp_cmd_mount(const struct hp_opts *o, const char *dir, const char *size_arg)
{
	char sz[32], data[64], other[64], real[PATH_MAX];
	struct hp_state st;
	uint64_t kb;
	int rc, idx;

	rc = hp_state_read_size(o, &st, size_arg, &kb, sz, sizeof(sz));
	if (rc)
		return rc;
	idx = find_mount(o, &dir, real, &st, other, sizeof(other));
	if (idx >= 0) {
		char have[32];

		hp_fmt_kb(st.mount_kb[idx], have, sizeof(have));
		if (st.mount_kb[idx] == kb) {
			printf("%s: hugetlbfs with %s pages is already mounted there\n", dir, sz);
			if (o->user && o->dry_run)
				printf("dry-run: chown %s:%s %s\n", o->user->name,
				       tool_gid_name(o->user->gid), dir);
			else if (o->user)
				rc = give_to_user(o, dir);
		} else {
			tool_err("%s already has a hugetlbfs mount with %s pages; umount it first "
				 "(hugepages umount %s) or pick another DIR",
				 dir, have, dir);
			rc = TOOL_EXIT_SYSTEM;
		}
		goto out;
	}
	if (other[0]) {
		tool_err("%s is already a %s mount point; refusing to mount over it", dir, other);
		rc = TOOL_EXIT_SAFETY;
		goto out;
	}
	if (o->user)
		snprintf(data, sizeof(data), "pagesize=%lluK,uid=%u,gid=%u,mode=0700",
			 (unsigned long long)kb, (unsigned)o->user->uid, (unsigned)o->user->gid);
	else
		snprintf(data, sizeof(data), "pagesize=%lluK", (unsigned long long)kb);
	if (o->dry_run) {
		/* What the real run would do; its root check is the only thing skipped. */
		if (access(dir, F_OK))
			printf("dry-run: mkdir -p %s\n", dir);
		printf("dry-run: mount -t hugetlbfs -o %s hugetlbfs %s\n", data, dir);
		goto out;
	}
	rc = hp_need_root(o, "mounting hugetlbfs", true);
	if (rc)
		goto out;
	rc = tool_mkdir_p(dir, 0755);
	if (rc) {
		tool_err("cannot create %s: %s", dir, strerror(-rc));
		rc = TOOL_EXIT_SYSTEM;
		goto out;
	}
	if (mount("hugetlbfs", dir, "hugetlbfs", 0, data)) {
		tool_err("mount -t hugetlbfs -o %s hugetlbfs %s failed: %s", data, dir,
			 strerror(errno));
		rc = TOOL_EXIT_SYSTEM;
		goto out;
	}
	printf("%s: hugetlbfs mounted with %s pages%s%s\n", dir, sz, o->user ? " for " : "",
	       o->user ? o->user->name : "");
	if (o->user)
		tool_memlock_check(o->etc, o->sysfs, o->user);
out:
	hp_state_free(&st);
	return rc;
}

int hp_cmd_umount(const struct hp_opts *o, const char *dir)
{
	char other[64], real[PATH_MAX];
	struct hp_state st;
	bool is_huge;
	int rc, idx;

	rc = hp_state_read(o, &st);
	if (rc)
		return rc;
	idx = find_mount(o, &dir, real, &st, other, sizeof(other));
	/* On the running system ask the kernel too (statfs magic). */
	is_huge = idx >= 0 && (o->proc || on_hugetlbfs(dir));
	if (!is_huge) {
		if (other[0] || idx >= 0) {
			tool_err("%s is a %s mount, not hugetlbfs; refusing to unmount it", dir,
				 other[0] ? other : "different");
			rc = TOOL_EXIT_SAFETY;
		} else {
			tool_err("no hugetlbfs is mounted at %s (see hugepages info)", dir);
			rc = TOOL_EXIT_SYSTEM;
		}
		goto out;
	}
	if (o->dry_run) {
		printf("dry-run: umount %s\n", dir);
		goto out;
	}
	rc = hp_need_root(o, "unmounting hugetlbfs", true);
	if (rc)
		goto out;
	if (umount(dir)) {
		tool_err("umount %s failed: %s%s", dir, strerror(errno),
			 errno == EBUSY ? " (a process still has files there; see lsof or fuser)"
					: "");
		rc = TOOL_EXIT_SYSTEM;
		goto out;
	}
	printf("%s: unmounted\n", dir);
out:
	hp_state_free(&st);
	return rc;
}
