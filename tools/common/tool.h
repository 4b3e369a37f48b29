/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared helpers for the CLIs
 * ===========================
 *
 * What devbind and hugepages both need and the library does not offer:
 * exit codes, one-line error messages, usage errors and the shared options
 * (--sysfs-root, --proc-root, --json, --help), number and size parsing, the mount
 * table and swap list from a (possibly fake) /proc, an aligned table
 * printer and a small JSON writer.
 *
 * Exit codes (the same in both tools, documented in --help and the man
 * pages): 0 ok, 1 usage, 2 device or system error, 3 refused for safety.
 */
#ifndef UPCIE_TOOLS_TOOL_H
#define UPCIE_TOOLS_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>

#include "json.h"

enum tool_exit {
	TOOL_EXIT_OK = 0,
	TOOL_EXIT_USAGE = 1,
	TOOL_EXIT_SYSTEM = 2,
	TOOL_EXIT_SAFETY = 3,
};

/* Name printed in front of messages and the --help text; set from main(). */
extern const char *tool_name;
extern const char *tool_usage_text;

/* "name: <prefix>message\n" on stderr. */
void tool_vmsg(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* "name: message\n" on stderr. */
void tool_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "name: warning: message\n" on stderr. */
void tool_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* perror(tool_name) and exit TOOL_EXIT_SYSTEM: for an allocation that failed. */
void tool_die_errno(void) __attribute__((noreturn));

/*
 * A usage error, "name: <fmt with arg> (see name --help)", or without fmt
 * the --help text, on stderr; returns TOOL_EXIT_USAGE.
 */
int tool_usage(const char *fmt, const char *arg);

/* getopt_long values of the options both tools take; a tool's own start at TOOL_OPT_NEXT. */
enum {
	TOOL_OPT_SYSFS = 256,
	TOOL_OPT_PROC,
	TOOL_OPT_JSON,
	TOOL_OPT_NEXT,
};

struct option;

/* clang-format off */
/* Entries for the shared options, to end a tool's longopts (needs <getopt.h>). */
#define TOOL_LONGOPTS_COMMON                                            \
	{"json", no_argument, NULL, TOOL_OPT_JSON},                     \
	{"sysfs-root", required_argument, NULL, TOOL_OPT_SYSFS},        \
	{"proc-root", required_argument, NULL, TOOL_OPT_PROC},          \
	{"help", no_argument, NULL, 'h'},                               \
	{NULL, 0, NULL, 0}
/* clang-format on */

/*
 * getopt_long(argc, argv, "h", longopts) that takes the options both tools
 * share itself (--sysfs-root, --proc-root and --json into *sysfs, *proc and
 * *json) and returns the tool's own, -1 after the last. Exits on --help (the
 * usage text on stdout, 0) and on a missing value or an unknown option (a
 * usage error, 1).
 */
int tool_getopt(int argc, char **argv, const struct option *longopts, const char **sysfs,
		const char **proc, bool *json);
/* The command word after the options (optind moves past it); exits with the usage text if none. */
const char *tool_command(int argc, char **argv);

/* Whole decimal number, no sign, no trailing text: 0 or -EINVAL / -ERANGE. */
int tool_parse_u64(const char *s, uint64_t *val);
/* Bytes with an optional K, M, G or T suffix (powers of 1024; "B"/"iB" allowed). */
int tool_parse_size(const char *s, uint64_t *bytes);
/* "2M", "1G", "64K", "16T", "1E", or bytes when not a whole KiB. */
void tool_fmt_size(uint64_t bytes, char *buf, size_t len);
/* The same for a count of KiB (no overflow for sizes of 16 EiB and above). */
void tool_fmt_kb(uint64_t kb, char *buf, size_t len);

/* root + "/" + rel into buf; root NULL means dflt. -ENAMETOOLONG if it does not fit. */
int tool_path(char *buf, size_t len, const char *root, const char *dflt, const char *rel);

/* One line of /proc/mounts, octal escapes (\040) decoded. */
struct tool_mount {
	char *src;
	char *dir;
	char *type;
	char *opts;
};

/* Read <proc_root>/mounts (proc_root NULL: /proc). *out is freed with tool_mounts_free(). */
int tool_mounts_read(const char *proc_root, struct tool_mount **out, size_t *n);
void tool_mounts_free(struct tool_mount *m, size_t n);
/* Value of "key=" in a comma-separated option string, copied into buf; -ENOENT if absent. */
int tool_mount_opt(const char *opts, const char *key, char *buf, size_t len);

/* RLIMIT_MEMLOCK, both limits in bytes; UINT64_MAX for unlimited. */
void tool_memlock(uint64_t *soft, uint64_t *hard);
/* "\nRLIMIT_MEMLOCK: 8M (hard 16M)\n" ("unlimited", one size when equal) on stdout. */
void tool_memlock_print(void);

/* --- a non-root user (user.c) --------------------------------------------- */

#include <sys/types.h>

struct tool_user {
	char name[64];
	uid_t uid;
	gid_t gid; /* primary group */
};

/* An account by name (or uid): 0, or -ENOENT when there is none. */
int tool_user_get(const char *name, struct tool_user *u);

/* The account or group name of an id, else the number (a static buffer each). */
const char *tool_uid_name(uid_t uid);
const char *tool_gid_name(gid_t gid);

/* RLIMIT_MEMLOCK of a login when limits.conf does not set one: the kernel's
 * default since Linux 5.16 (systemd's too); older systems have 64K. */
#define TOOL_MEMLOCK_DEFAULT (8ull << 20)

struct tool_memlock {
	uint64_t soft, hard;	  /* bytes; UINT64_MAX: unlimited */
	bool set;		  /* false: TOOL_MEMLOCK_DEFAULT, nothing in limits.conf */
	char from[PATH_MAX + 16]; /* "FILE:LINE" of the line that set it */
};

/*
 * The memlock limit a login of u gets from pam_limits: ETC/security/limits.conf
 * then ETC/security/limits.d/NAME.conf (etc NULL: /etc). A service started by
 * systemd gets LimitMEMLOCK= instead, which this does not see.
 */
void tool_user_memlock(const char *etc, const struct tool_user *u, struct tool_memlock *m);
/* Bytes held by the hugepage pools (nr_hugepages x size, every size). */
uint64_t tool_hugepage_pool(const char *sysfs);
/*
 * Whether u's memlock limit covers the hugepage pool: a line on stdout when
 * it does, else a warning on stderr saying how to raise it; true when it does.
 */
bool tool_memlock_check(const char *etc, const char *sysfs, const struct tool_user *u);

/* mkdir -p. */
int tool_mkdir_p(const char *dir, mode_t mode);
/*
 * Write a whole file (parent directories made, a temporary file renamed
 * over it) and say so on stdout; with dry_run print the path and content.
 */
int tool_file_put(const char *path, const char *content, bool dry_run);
/* Remove a file if it exists, saying so; with dry_run only say it. */
int tool_file_remove(const char *path, bool dry_run);

/*
 * A systemd unit ETC/systemd/system/NAME, enabled the way 'systemctl enable'
 * does it (a link in multi-user.target.wants), which needs no running systemd.
 */
int tool_unit_put(const char *etc, const char *name, const char *content, bool dry_run);
/* The unit and its link, if they exist. */
int tool_unit_remove(const char *etc, const char *name, bool dry_run);

/*
 * Aligned table: every column as wide as its widest cell, two spaces
 * between columns, the last column not padded. Cells are copied.
 */
struct tool_table;
struct tool_table *tool_table_new(unsigned ncols, const char *const *headers);
/* ncols cells; a NULL cell prints as "-". */
void tool_table_add(struct tool_table *t, const char *const *cells);
void tool_table_print(const struct tool_table *t, FILE *f, const char *indent);
void tool_table_free(struct tool_table *t);

/* "memlock": {"soft_bytes": ..., "hard_bytes": ...}, null for unlimited. */
void tool_json_memlock(struct tool_json *j);
/* key: {"name", "uid", "memlock_soft_bytes", "memlock_hard_bytes" (null:
 * unlimited), "memlock_from" (null: not set)} of u's login. */
void tool_json_user(struct tool_json *j, const char *key, const char *etc,
		    const struct tool_user *u);

#endif
