/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The JSON writer of every CLI (devbind, hugepages, upcie-perf)
 * ===========================================================
 *
 *   tool_json_init()            pretty-printed: one value per line
 *   tool_json_init_compact()    one line: JSON Lines (upcie-perf's status)
 *   tool_json_obj/_arr(_end)()  nesting (a key inside objects, NULL in arrays)
 *   tool_json_str/int/uint/double/bool/null()   values
 *   tool_json_done()            the newline after the top-level value
 *   tool_json_string()          one escaped string on a stream
 *
 * Strings are written as valid UTF-8 whatever bytes they hold: the names
 * and arguments these tools print come from the system (file names, mount
 * points, command lines) and need not be UTF-8. A byte that does not start
 * a well-formed UTF-8 sequence becomes U+FFFD (as "\ufffd"), quotes,
 * backslashes and control characters are escaped. A double that is not
 * finite is written as null. Nesting goes 16 levels deep.
 */
#ifndef UPCIE_TOOLS_JSON_H
#define UPCIE_TOOLS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct tool_json {
	FILE *f;
	int depth;
	bool compact;
	bool first[16];
};

void tool_json_init(struct tool_json *j, FILE *f);
void tool_json_init_compact(struct tool_json *j, FILE *f);
void tool_json_obj(struct tool_json *j, const char *key);
void tool_json_obj_end(struct tool_json *j);
void tool_json_arr(struct tool_json *j, const char *key);
void tool_json_arr_end(struct tool_json *j);
/* val NULL writes null. */
void tool_json_str(struct tool_json *j, const char *key, const char *val);
void tool_json_int(struct tool_json *j, const char *key, int64_t val);
void tool_json_uint(struct tool_json *j, const char *key, uint64_t val);
/* decimals digits after the point ("%.*f"); null when val is not finite. */
void tool_json_double(struct tool_json *j, const char *key, double val, int decimals);
void tool_json_bool(struct tool_json *j, const char *key, bool val);
void tool_json_null(struct tool_json *j, const char *key);
/* Closing newline after the top-level value; flushes. */
void tool_json_done(struct tool_json *j);

/* s as a quoted, escaped JSON string (see above) on f. */
void tool_json_string(FILE *f, const char *s);

#endif
