/* SPDX-License-Identifier: BSD-3-Clause */
/* The host page size, with a hook for unit tests (see page.h). */
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
