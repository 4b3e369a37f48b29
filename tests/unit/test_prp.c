/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PRP layouts checked entry by entry (NVMe Base spec 4.1.1). The heap is a
 * sim heap of 4 KiB pages whose bus addresses equal virtual addresses, so
 * the expected values are plain pointer arithmetic.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fixture.h"

static struct fx f;
static char *base;     /* page-aligned data area */
static uint64_t *list; /* two pages of list entries */

#define PG 4096u

static int suite_init(void)
{
	struct upcie_sim_config cfg;

	if (!fx_is_sim())
		return 0; /* layout tests need identity bus addresses: run on sim only */
	upcie_sim_config_default(&cfg);
	if (fx_open_opts(&f, &cfg, 8u << 20, true, NULL))
		return 1;
	base = upcie_dma_alloc_pages(f.heap, 600 * PG);
	list = upcie_dma_alloc_pages(f.heap, 2 * PG);
	return !base || !list;
}

static int suite_clean(void)
{
	/* No CUnit assertions outside a test: tear down by hand. */
	if (f.heap) {
		upcie_dma_free(f.heap, base);
		upcie_dma_free(f.heap, list);
		upcie_dma_heap_destroy(f.heap);
	}
	if (f.dev)
		upcie_pci_close(f.dev);
	upcie_sim_destroy(f.sim);
	return 0;
}

static uint64_t B(size_t off)
{
	return (uint64_t)(uintptr_t)(base + off);
}

static int setup(size_t off, size_t len, uint64_t *p1, uint64_t *p2)
{
	memset(list, 0xa5, 2 * PG);
	return upcie_nvme_prp_setup(f.heap, PG, base + off, len, p1, p2, list, 1024);
}

struct prp_case {
	const char *name;
	size_t off, len;
	uint64_t prp2_off; /* expected PRP2 as offset from base; UINT64_MAX: 0; 1: the list */
	unsigned nentries; /* list entries expected */
	size_t entries[4]; /* expected list entries as offsets from base */
};

static void test_table(void)
{
	static const struct prp_case cases[] = {
	    {"512 B", 0, 512, UINT64_MAX, 0, {0}},
	    {"512 B at offset 3584", 3584, 512, UINT64_MAX, 0, {0}},
	    {"4 KiB", 0, 4096, UINT64_MAX, 0, {0}},
	    {"4 KiB at offset 8", 8, 4096, 4096, 0, {0}},
	    {"8 KiB", 0, 8192, 4096, 0, {0}},
	    {"two pages with offset", 512, 8192 - 512, 4096, 0, {0}},
	    {"8 KiB at offset 512 (three pages)", 512, 8192, 1, 2, {4096, 8192}},
	    {"12 KiB", 0, 12288, 1, 2, {4096, 8192}},
	    {"16 KiB at offset 4", 4, 16384, 1, 4, {4096, 8192, 12288, 16384}},
	};

	FX_SIM_ONLY();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct prp_case *c = &cases[i];
		uint64_t p1 = 0, p2 = 0;
		int rc = setup(c->off, c->len, &p1, &p2);

		if (rc || p1 != B(c->off))
			printf("\n  case '%s': rc %d prp1 %#llx\n", c->name, rc,
			       (unsigned long long)p1);
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(p1, B(c->off));
		if (c->prp2_off == UINT64_MAX) {
			CU_ASSERT_EQUAL(p2, 0);
		} else if (c->prp2_off == 1) {
			CU_ASSERT_EQUAL(p2, (uint64_t)(uintptr_t)list);
			for (unsigned e = 0; e < c->nentries; e++)
				CU_ASSERT_EQUAL(list[e], B(c->entries[e]));
			/* Nothing written past the last entry. */
			CU_ASSERT_EQUAL(list[c->nentries], 0xa5a5a5a5a5a5a5a5ull);
		} else {
			CU_ASSERT_EQUAL(p2, B(c->prp2_off));
		}
	}
}

/* 514 pages from a page boundary: 513 list entries, so the first list page
 * holds 511 data entries and a chain pointer in its last slot. */
static void test_chained(void)
{
	uint64_t p1, p2;

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL(setup(0, 514 * PG, &p1, &p2), 0);
	CU_ASSERT_EQUAL(p1, B(0));
	CU_ASSERT_EQUAL(p2, (uint64_t)(uintptr_t)list);
	for (unsigned e = 0; e < 511; e++)
		CU_ASSERT_EQUAL(list[e], B((size_t)(e + 1) * PG));
	CU_ASSERT_EQUAL(list[511], (uint64_t)(uintptr_t)&list[512]);
	CU_ASSERT_EQUAL(list[512], B(512 * PG));
	CU_ASSERT_EQUAL(list[513], B(513 * PG));
	CU_ASSERT_EQUAL(list[514], 0xa5a5a5a5a5a5a5a5ull);

	/* Exactly 512 entries fit one page with no chain. */
	CU_ASSERT_EQUAL(setup(0, 513 * PG, &p1, &p2), 0);
	CU_ASSERT_EQUAL(list[511], B(512 * PG));
	CU_ASSERT_EQUAL(list[512], 0xa5a5a5a5a5a5a5a5ull);
}

/* A list that starts two slots before the end of a page chains after one entry. */
static void test_chained_offset_list(void)
{
	uint64_t p1, p2, *l = list + 510;

	FX_SIM_ONLY();
	memset(list, 0, 2 * PG);
	CU_ASSERT_EQUAL(upcie_nvme_prp_setup(f.heap, PG, base, 4 * PG, &p1, &p2, l, 10), 0);
	CU_ASSERT_EQUAL(p2, (uint64_t)(uintptr_t)l);
	CU_ASSERT_EQUAL(l[0], B(PG));
	CU_ASSERT_EQUAL(l[1], (uint64_t)(uintptr_t)&l[2]);
	CU_ASSERT_EQUAL(l[2], B(2 * PG));
	CU_ASSERT_EQUAL(l[3], B(3 * PG));
}

static void test_rejects(void)
{
	uint64_t p1, p2;
	static char outside[8192];

	FX_SIM_ONLY();
	CU_ASSERT_EQUAL(setup(0, 0, &p1, &p2), -EINVAL);   /* empty */
	CU_ASSERT_EQUAL(setup(2, 512, &p1, &p2), -EINVAL); /* not dword aligned */
	CU_ASSERT_EQUAL(upcie_nvme_prp_setup(f.heap, PG, outside, 512, &p1, &p2, list, 1024),
			-EINVAL); /* outside the heap */
	/* List too small for the transfer. */
	CU_ASSERT_EQUAL(upcie_nvme_prp_setup(f.heap, PG, base, 10 * PG, &p1, &p2, list, 4),
			-EINVAL);
}

static CU_TestInfo tests[] = {
    {"layout table", test_table},
    {"chained list", test_chained},
    {"list starting near a page end", test_chained_offset_list},
    {"rejected buffers", test_rejects},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("prp", suite_init, suite_clean, tests)
