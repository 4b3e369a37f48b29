/* SPDX-License-Identifier: BSD-3-Clause */
/* The CLIs' JSON writer: see json.h. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "json.h"

/*
 * Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7):
 * 1 to 4, or 0 when p does not start one (a stray continuation byte, an
 * overlong form, a surrogate, above U+10FFFF, cut short by the string's end).
 */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0], cp, min;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* the terminating NUL stops here too */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void tool_json_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n = utf8_len(p);

		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (!n) {
				fputs("\\ufffd", f); /* one byte that is not UTF-8 */
				n = 1;
			} else if (*p < 0x20 || *p == 0x7f) {
				fprintf(f, "\\u%04x", *p);
			} else {
				fwrite(p, 1, n, f);
			}
		}
		p += n ? n : 1;
	}
	fputc('"', f);
}

static void init(struct tool_json *j, FILE *f, bool compact)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->compact = compact;
	j->first[0] = true;
}

void tool_json_init(struct tool_json *j, FILE *f)
{
	init(j, f, false);
}

void tool_json_init_compact(struct tool_json *j, FILE *f)
{
	init(j, f, true);
}

/* Comma, newline and indentation (a blank when compact) before a value,
 * then its key if any. */
static void json_sep(struct tool_json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		if (j->compact) {
			if (!j->first[j->depth])
				fputc(' ', j->f);
		} else {
			fputc('\n', j->f);
			fprintf(j->f, "%*s", 2 * j->depth, "");
		}
	}
	j->first[j->depth] = false;
	if (key) {
		tool_json_string(j->f, key);
		fputs(": ", j->f);
	}
}

static void json_open(struct tool_json *j, const char *key, char c)
{
	json_sep(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < (int)(sizeof(j->first) / sizeof(j->first[0])))
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(struct tool_json *j, char c)
{
	bool empty = j->first[j->depth];

	if (j->depth > 0)
		j->depth--;
	if (!empty && !j->compact)
		fprintf(j->f, "\n%*s", 2 * j->depth, "");
	fputc(c, j->f);
}

void tool_json_obj(struct tool_json *j, const char *key)
{
	json_open(j, key, '{');
}

void tool_json_obj_end(struct tool_json *j)
{
	json_close(j, '}');
}

void tool_json_arr(struct tool_json *j, const char *key)
{
	json_open(j, key, '[');
}

void tool_json_arr_end(struct tool_json *j)
{
	json_close(j, ']');
}

void tool_json_str(struct tool_json *j, const char *key, const char *val)
{
	json_sep(j, key);
	if (val)
		tool_json_string(j->f, val);
	else
		fputs("null", j->f);
}

void tool_json_int(struct tool_json *j, const char *key, int64_t val)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRId64, val);
}

void tool_json_uint(struct tool_json *j, const char *key, uint64_t val)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRIu64, val);
}

void tool_json_double(struct tool_json *j, const char *key, double val, int decimals)
{
	json_sep(j, key);
	if (isfinite(val))
		fprintf(j->f, "%.*f", decimals, val);
	else
		fputs("null", j->f);
}

void tool_json_bool(struct tool_json *j, const char *key, bool val)
{
	json_sep(j, key);
	fputs(val ? "true" : "false", j->f);
}

void tool_json_null(struct tool_json *j, const char *key)
{
	json_sep(j, key);
	fputs("null", j->f);
}

void tool_json_done(struct tool_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
