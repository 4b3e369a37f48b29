/* SPDX-License-Identifier: BSD-3-Clause */
/* Aligned tables for the CLIs' text output (JSON: json.c). */
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
