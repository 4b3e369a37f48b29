/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Handing devices and hugepages to a non-root user: who the user is, what
 * RLIMIT_MEMLOCK a login of theirs gets, how much memory the hugepage pool
 * holds, and the files the persist commands write.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysfs.h"

#include "tool.h"

int tool_user_get(const char *name, struct tool_user *u)
{
	struct passwd *pw;
	char *end;

	memset(u, 0, sizeof(*u));
	errno = 0;
	pw = getpwnam(name);
	if (!pw) {
		/* A number that names no account is still an owner chown takes. */
		unsigned long id = strtoul(name, &end, 10);

		if (!*name || *end || id > INT32_MAX)
			return errno ? -errno : -ENOENT;
		pw = getpwuid((uid_t)id);
		if (!pw)
			return -ENOENT;
	}
	if (strlen(pw->pw_name) >= sizeof(u->name))
		return -ENAMETOOLONG;
	snprintf(u->name, sizeof(u->name), "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/* Is u a member of group g (primary or supplementary)? */
static bool user_in_group(const struct tool_user *u, const char *g)
{
	gid_t groups[256];
	int n = 256;
	struct group *gr = getgrnam(g);

	if (!gr)
		return false;
	if (gr->gr_gid == u->gid)
		return true;
	if (getgrouplist(u->name, u->gid, groups, &n) < 0)
		return false;
	for (int i = 0; i < n; i++)
		if (groups[i] == gr->gr_gid)
			return true;
	return false;
}

/* Parsed value of a memlock line in bytes (KiB in the file), UINT64_MAX for unlimited. */
static bool memlock_value(const char *v, uint64_t *bytes)
{
	uint64_t kb;

	if (!strcmp(v, "unlimited") || !strcmp(v, "infinity") || !strcmp(v, "-1")) {
		*bytes = UINT64_MAX;
		return true;
	}
	if (tool_parse_u64(v, &kb) || kb > UINT64_MAX / 1024)
		return false;
	*bytes = kb * 1024;
	return true;
}

enum { PRIO_NONE, PRIO_ALL, PRIO_GROUP, PRIO_USER };

struct limits_scan {
	const struct tool_user *u;
	struct tool_memlock *m;
	int prio_soft, prio_hard;
};

/*
 * pam_limits(8) semantics, as far as memlock goes: "<domain> <type> memlock
 * <value>"; a line for the user beats one for a group (@group), which beats
 * the default (*); among lines of one kind the later wins.
 */
static void limits_file(struct limits_scan *s, const char *path)
{
	char *line = NULL, dom[128], type[16], item[32], val[32];
	size_t cap = 0;
	unsigned lineno = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		uint64_t bytes;
		int prio;

		lineno++;
		line[strcspn(line, "#")] = '\0';
		if (sscanf(line, "%127s %15s %31s %31s", dom, type, item, val) != 4 ||
		    strcmp(item, "memlock") || !memlock_value(val, &bytes))
			continue;
		if (!strcmp(dom, s->u->name))
			prio = PRIO_USER;
		else if (s->u->uid == 0) /* group and '*' lines do not apply to root */
			continue;
		else if (dom[0] == '@' && user_in_group(s->u, dom + 1))
			prio = PRIO_GROUP;
		else if (!strcmp(dom, "*"))
			prio = PRIO_ALL;
		else
			continue;
		if ((!strcmp(type, "soft") || !strcmp(type, "-")) && prio >= s->prio_soft) {
			s->m->soft = bytes;
			s->prio_soft = prio;
			snprintf(s->m->from, sizeof(s->m->from), "%s:%u", path, lineno);
		}
		if ((!strcmp(type, "hard") || !strcmp(type, "-")) && prio >= s->prio_hard) {
			s->m->hard = bytes;
			s->prio_hard = prio;
			snprintf(s->m->from, sizeof(s->m->from), "%s:%u", path, lineno);
		}
	}
	free(line);
	fclose(f);
}

static int conf_cb(const char *name, void *arg)
{
	char **list = arg;
	size_t n = strlen(name);

	if (n > 5 && !strcmp(name + n - 5, ".conf")) {
		size_t have = *list ? strlen(*list) : 0;
		char *v = realloc(*list, have + n + 2);

		if (!v)
			tool_die_errno();
		snprintf(v + have, n + 2, "%s\n", name);
		*list = v;
	}
	return 0;
}

void tool_user_memlock(const char *etc, const struct tool_user *u, struct tool_memlock *m)
{
	struct limits_scan s = {.u = u, .m = m};
	char path[PATH_MAX], dir[PATH_MAX];
	char *list = NULL, *name, *save = NULL;

	memset(m, 0, sizeof(*m));
	m->soft = m->hard = TOOL_MEMLOCK_DEFAULT;
	if (!tool_path(path, sizeof(path), etc, "/etc", "security/limits.conf"))
		limits_file(&s, path);
	if (!tool_path(dir, sizeof(dir), etc, "/etc", "security/limits.d"))
		upcie_sysfs_dir_foreach(dir, conf_cb, &list, ".");
	for (name = list ? strtok_r(list, "\n", &save) : NULL; name;
	     name = strtok_r(NULL, "\n", &save))
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) < sizeof(path))
			limits_file(&s, path);
	free(list);
	m->set = s.prio_soft != PRIO_NONE || s.prio_hard != PRIO_NONE;
	/* A soft limit above the hard one is capped at login. */
	if (m->soft > m->hard)
		m->soft = m->hard;
}

struct pool_scan {
	const char *sysfs;
	uint64_t bytes;
};

static int pool_cb(const char *name, void *arg)
{
	struct pool_scan *p = arg;
	unsigned long long kb;
	uint64_t nr;

	if (sscanf(name, "hugepages-%llukB", &kb) == 1 &&
	    !upcie_sysfs_read_u64(p->sysfs, &nr, "kernel/mm/hugepages/%s/nr_hugepages", name))
		p->bytes += nr * kb * 1024;
	return 0;
}

uint64_t tool_hugepage_pool(const char *sysfs)
{
	struct pool_scan p = {.sysfs = sysfs};

	upcie_sysfs_dir_foreach(sysfs, pool_cb, &p, "kernel/mm/hugepages");
	return p.bytes;
}

static void limit_text(uint64_t v, char *buf, size_t len)
{
	if (v == UINT64_MAX)
		snprintf(buf, len, "unlimited");
	else
		tool_fmt_size(v, buf, len);
}

bool tool_memlock_check(const char *etc, const char *sysfs, const struct tool_user *u)
{
	char lim[32], need[32];
	struct tool_memlock m;
	uint64_t pool = tool_hugepage_pool(sysfs);

	tool_user_memlock(etc, u, &m);
	limit_text(m.soft, lim, sizeof(lim));
	tool_fmt_size(pool, need, sizeof(need));
	if (m.soft >= pool) {
		printf("%s: RLIMIT_MEMLOCK %s (%s) covers the hugepage pool (%s)\n", u->name, lim,
		       m.set ? m.from : "the default", need);
		return true;
	}
	tool_warn("%s may lock %s of memory (RLIMIT_MEMLOCK, %s) but the hugepage pool holds %s: "
		  "vfio-pci pins DMA memory against that limit. Raise it for new logins with a "
		  "line '%s - memlock unlimited' in %s/security/limits.d/upcie.conf, or "
		  "LimitMEMLOCK=infinity in the service that runs the program",
		  u->name, lim, m.set ? m.from : "not set in limits.conf: the default", need,
		  u->name, etc ? etc : "/etc");
	return false;
}

void tool_json_user(struct tool_json *j, const char *key, const char *etc,
		    const struct tool_user *u)
{
	struct tool_memlock m;

	tool_user_memlock(etc, u, &m);
	tool_json_obj(j, key);
	tool_json_str(j, "name", u->name);
	tool_json_uint(j, "uid", u->uid);
	if (m.soft == UINT64_MAX)
		tool_json_null(j, "memlock_soft_bytes");
	else
		tool_json_uint(j, "memlock_soft_bytes", m.soft);
	if (m.hard == UINT64_MAX)
		tool_json_null(j, "memlock_hard_bytes");
	else
		tool_json_uint(j, "memlock_hard_bytes", m.hard);
	tool_json_str(j, "memlock_from", m.set ? m.from : NULL);
	tool_json_obj_end(j);
}

int tool_mkdir_p(const char *dir, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

int tool_file_put(const char *path, const char *content, bool dry_run)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 8];
	char *slash;
	FILE *f;
	int rc;

	if (dry_run) {
		printf("dry-run: write %s:\n", path);
		for (const char *p = content; *p;) {
			size_t n = strcspn(p, "\n");

			printf("    %.*s\n", (int)n, p);
			p += n + (p[n] == '\n');
		}
		return 0;
	}
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir) ||
	    snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		rc = tool_mkdir_p(dir, 0755);
		if (rc)
			return rc;
	}
	/* Whole or not at all: a new file renamed over the old one. */
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	if (fputs(content, f) < 0 || fflush(f) || fsync(fileno(f))) {
		rc = -errno;
		fclose(f);
		unlink(tmp);
		return rc;
	}
	if (fclose(f) || rename(tmp, path)) {
		rc = -errno;
		unlink(tmp);
		return rc;
	}
	printf("wrote %s\n", path);
	return 0;
}

int tool_file_remove(const char *path, bool dry_run)
{
	if (access(path, F_OK) && errno == ENOENT)
		return 0;
	if (dry_run) {
		printf("dry-run: remove %s\n", path);
		return 0;
	}
	if (unlink(path))
		return -errno;
	printf("removed %s\n", path);
	return 0;
}

/* name when there is one that fits, else the number, into buf. */
static const char *id_name(char *buf, size_t len, const char *name, unsigned id)
{
	if (name && strlen(name) < len)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%u", id);
	return buf;
}

const char *tool_uid_name(uid_t uid)
{
	static char buf[32];
	struct passwd *pw = getpwuid(uid);

	return id_name(buf, sizeof(buf), pw ? pw->pw_name : NULL, (unsigned)uid);
}

const char *tool_gid_name(gid_t gid)
{
	static char buf[32];
	struct group *gr = getgrgid(gid);

	return id_name(buf, sizeof(buf), gr ? gr->gr_name : NULL, (unsigned)gid);
}

int tool_unit_put(const char *etc, const char *name, const char *content, bool dry_run)
{
	char unit[PATH_MAX], wants[PATH_MAX], rel[256], dir[PATH_MAX];
	int rc;

	snprintf(rel, sizeof(rel), "systemd/system/%s", name);
	if (tool_path(unit, sizeof(unit), etc, "/etc", rel))
		return -ENAMETOOLONG;
	snprintf(rel, sizeof(rel), "systemd/system/multi-user.target.wants/%s", name);
	if (tool_path(wants, sizeof(wants), etc, "/etc", rel))
		return -ENAMETOOLONG;
	rc = tool_file_put(unit, content, dry_run);
	if (rc)
		return rc;
	/* What 'systemctl enable' does, without needing a running systemd. */
	if (dry_run) {
		printf("dry-run: link %s -> ../%s\n", wants, name);
		return 0;
	}
	if (!access(wants, F_OK))
		return 0;
	snprintf(dir, sizeof(dir), "%s", wants);
	*strrchr(dir, '/') = '\0';
	rc = tool_mkdir_p(dir, 0755);
	if (rc)
		return rc;
	snprintf(rel, sizeof(rel), "../%s", name);
	if (symlink(rel, wants))
		return -errno;
	printf("linked %s\n", wants);
	return 0;
}

int tool_unit_remove(const char *etc, const char *name, bool dry_run)
{
	char path[PATH_MAX], rel[256];
	int rc;

	snprintf(rel, sizeof(rel), "systemd/system/multi-user.target.wants/%s", name);
	if (tool_path(path, sizeof(path), etc, "/etc", rel))
		return -ENAMETOOLONG;
	rc = tool_file_remove(path, dry_run);
	if (rc)
		return rc;
	snprintf(rel, sizeof(rel), "systemd/system/%s", name);
	if (tool_path(path, sizeof(path), etc, "/etc", rel))
		return -ENAMETOOLONG;
	return tool_file_remove(path, dry_run);
}
