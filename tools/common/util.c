/* SPDX-License-Identifier: BSD-3-Clause */
/* Messages, parsing, /proc/mounts and RLIMIT_MEMLOCK for the CLIs. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "tool.h"

const char *tool_name = "upcie";
const char *tool_usage_text = "";

void tool_vmsg(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s", tool_name, prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void tool_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tool_vmsg("", fmt, ap);
	va_end(ap);
}

void tool_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tool_vmsg("warning: ", fmt, ap);
	va_end(ap);
}

void tool_die_errno(void)
{
	perror(tool_name);
	exit(TOOL_EXIT_SYSTEM);
}

int tool_usage(const char *fmt, const char *arg)
{
	if (fmt) {
		fprintf(stderr, "%s: ", tool_name);
		fprintf(stderr, fmt, arg);
		fprintf(stderr, " (see %s --help)\n", tool_name);
	} else {
		fputs(tool_usage_text, stderr);
	}
	return TOOL_EXIT_USAGE;
}

/* getopt_long's '?': a short option is named by optopt ("-hx" names -x); a
 * known long option given a value it does not take ("--json=1") has optopt
 * set to its value, an unknown one 0. */
static int unknown_option(const char *arg)
{
	char opt[64];

	if (strncmp(arg, "--", 2)) {
		snprintf(opt, sizeof(opt), "-%c", optopt > 0 && optopt < 128 ? optopt : '?');
		return tool_usage("unknown option '%s'", opt);
	}
	if (optopt && strchr(arg, '=')) {
		snprintf(opt, sizeof(opt), "%.*s", (int)(strchr(arg, '=') - arg), arg);
		return tool_usage("option '%s' takes no value", opt);
	}
	return tool_usage("unknown option '%s'", arg);
}

int tool_getopt(int argc, char **argv, const struct option *longopts, const char **sysfs,
		const char **proc, bool *json)
{
	int c;

	opterr = 0;
	for (;;) {
		/* The leading ':': a missing value is ':', '?' is left for the rest. */
		c = getopt_long(argc, argv, ":h", longopts, NULL);
		switch (c) {
		case TOOL_OPT_SYSFS:
			*sysfs = optarg;
			break;
		case TOOL_OPT_PROC:
			*proc = optarg;
			break;
		case TOOL_OPT_JSON:
			*json = true;
			break;
		case 'h':
			fputs(tool_usage_text, stdout);
			exit(TOOL_EXIT_OK);
		case ':':
			exit(tool_usage("option '%s' needs a value", argv[optind - 1]));
		case '?':
			exit(unknown_option(argv[optind - 1]));
		default:
			return c;
		}
	}
}

const char *tool_command(int argc, char **argv)
{
	if (optind >= argc)
		exit(tool_usage(NULL, NULL));
	return argv[optind++];
}

/* Leading decimal digits of s (no sign, no blanks) into *v; *end after them. */
static int parse_digits(const char *s, unsigned long long *v, char **end)
{
	/* strtoull accepts "-1" and leading blanks; a count must be plain digits. */
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno ? -ERANGE : 0;
}

int tool_parse_u64(const char *s, uint64_t *val)
{
	unsigned long long v;
	char *end;
	int rc = parse_digits(s, &v, &end);

	if (rc)
		return rc;
	if (*end)
		return -EINVAL;
	*val = v;
	return 0;
}

int tool_parse_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;
	int rc = parse_digits(s, &v, &end);

	if (rc)
		return rc;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (!strcasecmp(end, "iB"))
			end += 2;
		else if (!strcasecmp(end, "B"))
			end += 1;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = (uint64_t)v << shift;
	return 0;
}

/* v in units of 1024^u bytes (u 0: bytes), in the largest unit that keeps it whole. */
static void fmt_units(uint64_t v, int u, char *buf, size_t len)
{
	static const char units[] = " KMGTPE";

	while (v && u < 6 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u]);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

void tool_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	fmt_units(bytes, 0, buf, len);
}

void tool_fmt_kb(uint64_t kb, char *buf, size_t len)
{
	fmt_units(kb, 1, buf, len);
}

int tool_path(char *buf, size_t len, const char *root, const char *dflt, const char *rel)
{
	int n = snprintf(buf, len, "%s/%s", root ? root : dflt, rel);

	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* Undo the kernel's octal escapes (space, tab, newline, backslash) in place. */
static char *unescape(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return s;
}

void tool_mounts_free(struct tool_mount *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(m[i].src);
		free(m[i].dir);
		free(m[i].type);
		free(m[i].opts);
	}
	free(m);
}

int tool_mounts_read(const char *proc_root, struct tool_mount **out, size_t *n)
{
	struct tool_mount *m = NULL, *grown;
	size_t cnt = 0, cap = 0, linecap = 0;
	char path[4096], *line = NULL;
	int rc;
	FILE *f;

	rc = tool_path(path, sizeof(path), proc_root, "/proc", "mounts");
	if (rc)
		return rc;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &linecap, f) > 0) {
		char *save, *src, *dir, *type, *opts;

		src = strtok_r(line, " \t\n", &save);
		dir = strtok_r(NULL, " \t\n", &save);
		type = strtok_r(NULL, " \t\n", &save);
		opts = strtok_r(NULL, " \t\n", &save);
		if (!src || !dir || !type)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 32;
			grown = realloc(m, cap * sizeof(*m));
			if (!grown) {
				rc = -ENOMEM;
				break;
			}
			m = grown;
		}
		m[cnt].src = strdup(unescape(src));
		m[cnt].dir = strdup(unescape(dir));
		m[cnt].type = strdup(type);
		m[cnt].opts = strdup(opts ? opts : "");
		cnt++;
		if (!m[cnt - 1].src || !m[cnt - 1].dir || !m[cnt - 1].type || !m[cnt - 1].opts) {
			rc = -ENOMEM;
			break;
		}
	}
	free(line);
	fclose(f);
	if (rc) {
		tool_mounts_free(m, cnt);
		return rc;
	}
	*out = m;
	*n = cnt;
	return 0;
}

int tool_mount_opt(const char *opts, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	const char *p = opts;

	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > klen && !strncmp(p, key, klen) && p[klen] == '=') {
			size_t vlen = n - klen - 1;
			if (vlen >= len)
				return -ENAMETOOLONG;
			memcpy(buf, p + klen + 1, vlen);
			buf[vlen] = '\0';
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

void tool_memlock(uint64_t *soft, uint64_t *hard)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl)) {
		*soft = *hard = 0;
		return;
	}
	*soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	*hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
}

static void limit_str(uint64_t lim, char *buf, size_t len)
{
	if (lim == UINT64_MAX)
		snprintf(buf, len, "unlimited");
	else
		tool_fmt_size(lim, buf, len);
}

void tool_memlock_print(void)
{
	char s[32], h[32];
	uint64_t soft, hard;

	tool_memlock(&soft, &hard);
	limit_str(soft, s, sizeof(s));
	limit_str(hard, h, sizeof(h));
	if (soft == hard)
		printf("\nRLIMIT_MEMLOCK: %s\n", s);
	else
		printf("\nRLIMIT_MEMLOCK: %s (hard %s)\n", s, h);
}
