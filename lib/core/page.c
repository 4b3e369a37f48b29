/* SPDX-License-Identifier: BSD-3-Clause */
/* The host page size, with a hook for unit tests (see page.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "page.h"

static size_t fake_page_size;

size_t upcie_host_page_size(void)
{
	long pg;

	if (fake_page_size)
		return fake_page_size;
	pg = sysconf(_SC_PAGESIZE);
	return pg > 0 ? (size_t)pg : 4096;
}

void upcie_host_page_size_fake(size_t size)
{
	fake_page_size = size;
}

void *upcie_line_calloc(size_t n, size_t size)
{
	size_t bytes;
	void *p;

	if (size && n > ((size_t)-1 - UPCIE_LINE_BYTES) / size)
		return NULL;
	bytes = (n * size + UPCIE_LINE_BYTES - 1) & ~(size_t)(UPCIE_LINE_BYTES - 1);
	p = aligned_alloc(UPCIE_LINE_BYTES, bytes ? bytes : UPCIE_LINE_BYTES);
	if (p)
		memset(p, 0, bytes ? bytes : UPCIE_LINE_BYTES);
	return p;
}
