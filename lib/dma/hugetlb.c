/* SPDX-License-Identifier: BSD-3-Clause */
/* Hugepage sizes and hugetlbfs mounts from /proc (see hugetlb.h for why). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hugetlb.h"

static long meminfo_kb(const char *proc_root, const char *key)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0, klen = strlen(key);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/meminfo", proc_root ? proc_root : "/proc");
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			kb = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	free(line);
	fclose(f);
	return kb;
}

long upcie_hugetlb_default_size(void)
{
	long kb = meminfo_kb(NULL, "Hugepagesize");

	return kb > 0 ? kb * 1024 : -1;
}

/* "2M", "1024M", "1G", "64K" (the kernel's pagesize= spelling) in bytes. */
static size_t parse_pagesize(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'K':
	case 'k':
		return (size_t)(v << 10);
	case 'M':
	case 'm':
		return (size_t)(v << 20);
	case 'G':
	case 'g':
		return (size_t)(v << 30);
	default:
		return (size_t)v;
	}
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

int upcie_hugetlb_mount_for(const char *proc_root, size_t page_size, char *buf, size_t len)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	long dflt_kb = meminfo_kb(proc_root, "Hugepagesize");
	int rc = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/self/mountinfo", proc_root ? proc_root : "/proc");
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (rc == -ENOENT && getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mount-point mount-opts [optional...] - type source
		 * super-opts */
		char *save = NULL, *dir, *mopts, *tok, *type, *sopts;
		size_t size = dflt_kb > 0 ? (size_t)dflt_kb * 1024 : 0;

		line[strcspn(line, "\n")] = '\0';
		if (!strtok_r(line, " ", &save) || !strtok_r(NULL, " ", &save) ||
		    !strtok_r(NULL, " ", &save) || !strtok_r(NULL, " ", &save))
			continue;
		dir = strtok_r(NULL, " ", &save);
		mopts = strtok_r(NULL, " ", &save);
		while ((tok = strtok_r(NULL, " ", &save)) && strcmp(tok, "-"))
			;
		type = strtok_r(NULL, " ", &save);
		if (!dir || !mopts || !type || strcmp(type, "hugetlbfs") ||
		    !strtok_r(NULL, " ", &save))
			continue;
		sopts = strtok_r(NULL, " ", &save);
		for (char *o = sopts ? strtok_r(sopts, ",", &save) : NULL; o;
		     o = strtok_r(NULL, ",", &save))
			if (!strncmp(o, "pagesize=", 9))
				size = parse_pagesize(o + 9);
		/* A read-only mount cannot hold the heap's file. */
		if (size != page_size || !strncmp(mopts, "ro", 2))
			continue;
		unescape(dir);
		if (access(dir, W_OK))
			continue;
		rc = strlen(dir) < len ? 0 : -ENAMETOOLONG;
		if (!rc)
			memcpy(buf, dir, strlen(dir) + 1);
	}
	free(line);
	fclose(f);
	return rc;
}
