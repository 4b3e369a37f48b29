/* SPDX-License-Identifier: BSD-3-Clause */
/* Aligned tables and a small JSON writer for the CLIs' two output modes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

struct tool_table {
	unsigned ncols;
	size_t nrows, cap;
	char **cells; /* (nrows + 1) * ncols, row 0 the headers */
};

static char *dup_or_dash(const char *s)
{
	char *d = strdup(s ? s : "-");

	/* A CLI out of memory for a table cell has nothing better to do. */
	if (!d)
		tool_die_errno();
	return d;
}

static void table_row(struct tool_table *t, const char *const *cells)
{
	if (t->nrows + 1 >= t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
		if (!c)
			tool_die_errno();
		t->cells = c;
		t->cap = cap;
	}
	for (unsigned i = 0; i < t->ncols; i++)
		t->cells[t->nrows * t->ncols + i] = dup_or_dash(cells[i]);
	t->nrows++;
}

struct tool_table *tool_table_new(unsigned ncols, const char *const *headers)
{
	struct tool_table *t = calloc(1, sizeof(*t));

	if (!t)
		tool_die_errno();
	t->ncols = ncols;
	table_row(t, headers);
	return t;
}

void tool_table_add(struct tool_table *t, const char *const *cells)
{
	table_row(t, cells);
}

void tool_table_print(const struct tool_table *t, FILE *f, const char *indent)
{
	size_t w[32] = {0};

	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols && c < 32; c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);
			if (n > w[c])
				w[c] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(indent ? indent : "", f);
		unsigned last = 0;

		/* No padding after the last non-empty cell: no trailing blanks. */
		for (unsigned c = 0; c < t->ncols; c++)
			if (t->cells[r * t->ncols + c][0])
				last = c;
		for (unsigned c = 0; c <= last; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (c == last)
				fprintf(f, "%s\n", cell);
			else
				fprintf(f, "%-*s  ", (int)w[c], cell);
		}
	}
}

void tool_table_free(struct tool_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void tool_json_init(struct tool_json *j, FILE *f)
{
	memset(j, 0, sizeof(*j));
	j->f = f;
	j->first[0] = true;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
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
		case '\t':
			fputs("\\t", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Comma, newline and indentation before a value, then its key if any. */
static void json_sep(struct tool_json *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		fputc('\n', j->f);
		fprintf(j->f, "%*s", 2 * j->depth, "");
	}
	j->first[j->depth] = false;
	if (key) {
		json_string(j->f, key);
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
	if (!empty)
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
		json_string(j->f, val);
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

void tool_json_memlock(struct tool_json *j)
{
	uint64_t soft, hard;

	tool_memlock(&soft, &hard);
	tool_json_obj(j, "memlock");
	if (soft == UINT64_MAX)
		tool_json_null(j, "soft_bytes");
	else
		tool_json_uint(j, "soft_bytes", soft);
	if (hard == UINT64_MAX)
		tool_json_null(j, "hard_bytes");
	else
		tool_json_uint(j, "hard_bytes", hard);
	tool_json_obj_end(j);
}

void tool_json_done(struct tool_json *j)
{
	fputc('\n', j->f);
	fflush(j->f);
}
