/* SPDX-License-Identifier: BSD-3-Clause */
/* DMA heap: allocation, alignment, translation, exhaustion, free and merge. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "dma/hugetlb.h"
#include "fixture.h"
#include "core/page.h"

static struct fx f;

static int suite_init(void)
{
	struct upcie_sim_config cfg;

	upcie_sim_config_default(&cfg);
	memset(&f, 0, sizeof(f));
	f.sim = upcie_sim_create(&cfg);
	if (!f.sim)
		return 1;
	struct upcie_pci_opts po = {.sim = f.sim};
	f.dev = upcie_pci_open("sim", &po);
	return !f.dev;
}

static int suite_clean(void)
{
	upcie_pci_close(f.dev);
	upcie_sim_destroy(f.sim);
	return 0;
}

static void test_alloc_align_translate(void)
{
	struct upcie_dma_heap *h = upcie_dma_heap_create(f.dev, 1u << 20, UPCIE_DMA_NO_HUGEPAGES);
	struct upcie_dma_heap_info hi;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	memset(&hi, 0xa5, sizeof(hi));
	upcie_dma_heap_info(h, &hi);
	/* Room for later fields comes back zeroed. */
	for (size_t i = 0; i < sizeof(hi.reserved) / sizeof(hi.reserved[0]); i++)
		CU_ASSERT_EQUAL(hi.reserved[i], 0);
	CU_ASSERT_EQUAL(hi.size, 1u << 20);
	CU_ASSERT_EQUAL(hi.page_size, (size_t)sysconf(_SC_PAGESIZE));
	CU_ASSERT_FALSE(hi.hugepages);

	void *a = upcie_dma_alloc(h, 100, 0);
	void *b = upcie_dma_alloc(h, 4096, 4096);
	void *c = upcie_dma_alloc(h, 10, 65536);
	CU_ASSERT_PTR_NOT_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(b);
	CU_ASSERT_PTR_NOT_NULL(c);
	CU_ASSERT_EQUAL((uintptr_t)a % 64, 0);
	CU_ASSERT_EQUAL((uintptr_t)b % 4096, 0);
	CU_ASSERT_EQUAL((uintptr_t)c % 65536, 0);
	/* sim: bus address == virtual address. */
	CU_ASSERT_EQUAL(upcie_dma_bus(h, b), (uint64_t)(uintptr_t)b);
	CU_ASSERT_EQUAL(upcie_dma_bus(h, (char *)b + 123), (uint64_t)(uintptr_t)b + 123);
	static char outside;
	CU_ASSERT_EQUAL(upcie_dma_bus(h, &outside), UPCIE_DMA_BAD_ADDR);
	CU_ASSERT_TRUE(upcie_dma_contains(h, b, 4096));
	CU_ASSERT_FALSE(upcie_dma_contains(h, &outside, 1));
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_EQUAL(hi.allocations, 3);
	CU_ASSERT(hi.used >= 100 + 4096 + 10);
	memset(b, 0xff, 4096); /* writable */

	CU_ASSERT_EQUAL(upcie_dma_free(h, a), 0);
	CU_ASSERT_EQUAL(upcie_dma_free(h, a), -EINVAL); /* double free is caught */
	CU_ASSERT_EQUAL(upcie_dma_free(h, (char *)b + 64), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_free(h, &outside), -EINVAL);
	CU_ASSERT_EQUAL(upcie_dma_free(h, NULL), 0);
	CU_ASSERT_EQUAL(upcie_dma_free(h, b), 0);
	CU_ASSERT_EQUAL(upcie_dma_free(h, c), 0);
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_EQUAL(hi.used, 0);
	CU_ASSERT_EQUAL(hi.allocations, 0);
	upcie_dma_heap_destroy(h);
}

static void test_exhaustion_and_merge(void)
{
	struct upcie_dma_heap *h = upcie_dma_heap_create(f.dev, 64 * 4096, UPCIE_DMA_NO_HUGEPAGES);
	void *p[64];

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (int i = 0; i < 64; i++) {
		p[i] = upcie_dma_alloc(h, 4096, 4096);
		CU_ASSERT_PTR_NOT_NULL(p[i]);
	}
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_dma_alloc(h, 64, 64));
	CU_ASSERT_EQUAL(errno, ENOMEM);
	/* Free every other page: 32 pages free, none adjacent. */
	for (int i = 0; i < 64; i += 2)
		upcie_dma_free(h, p[i]);
	CU_ASSERT_PTR_NULL(upcie_dma_alloc(h, 8192, 4096));
	/* Free the rest: neighbours merge into one block that fits everything. */
	for (int i = 1; i < 64; i += 2)
		upcie_dma_free(h, p[i]);
	void *all = upcie_dma_alloc(h, 64 * 4096, 4096);
	CU_ASSERT_PTR_NOT_NULL(all);
	upcie_dma_free(h, all);
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_dma_alloc(h, 0, 64));
	CU_ASSERT_EQUAL(errno, EINVAL);
	CU_ASSERT_PTR_NULL(upcie_dma_alloc(h, 64, 48)); /* not a power of two */
	CU_ASSERT_PTR_NULL(upcie_dma_alloc(h, 65 * 4096, 64));
	upcie_dma_heap_destroy(h);
}

/* A 64 KiB-page kernel (common on arm64 servers), faked: the small-page heap
 * counts in host pages, PRP pages stay 4 KiB aligned, translation is right
 * across host page boundaries. */
static void test_64k_host_pages(void)
{
	const size_t pg = 65536;
	struct upcie_dma_heap_info hi;
	struct upcie_dma_heap *h;

	upcie_host_page_size_fake(pg);
	h = upcie_dma_heap_create(f.dev, 100000, UPCIE_DMA_NO_HUGEPAGES);
	upcie_host_page_size_fake(0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_EQUAL(hi.page_size, pg);
	CU_ASSERT_EQUAL(hi.size, 2 * pg);
	CU_ASSERT_FALSE(hi.hugepages);

	/* 15 PRP pages, then 3 that start 4 KiB before the first host page
	 * ends and run into the second one. */
	char *a = upcie_dma_alloc_pages(h, 15 * 4096);
	char *b = upcie_dma_alloc_pages(h, 3 * 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_EQUAL(b, a + 15 * 4096); /* the premise: it spans the boundary */
	CU_ASSERT_EQUAL((uintptr_t)b % 4096, 0);
	for (size_t off = 0; off < 3 * 4096; off += 2048)
		CU_ASSERT_EQUAL(upcie_dma_bus(h, b + off), (uint64_t)(uintptr_t)(b + off));
	/* sim: bus == virtual, up to the last byte of the second host page. */
	CU_ASSERT_EQUAL(upcie_dma_bus(h, a + 2 * pg - 1), (uint64_t)(uintptr_t)(a + 2 * pg - 1));
	CU_ASSERT_EQUAL(upcie_dma_bus(h, a + 2 * pg), UPCIE_DMA_BAD_ADDR);
	CU_ASSERT_EQUAL(upcie_dma_free(h, a), 0);
	CU_ASSERT_EQUAL(upcie_dma_free(h, b), 0);
	upcie_dma_heap_destroy(h);
}

/* Heaps with hugepages when the machine has some free (skips otherwise). */
static void test_hugepages(void)
{
	struct upcie_dma_heap *h = upcie_dma_heap_create(f.dev, 4u << 20, UPCIE_DMA_HUGEPAGES_ONLY);
	struct upcie_dma_heap_info hi;

	if (!h) {
		CU_ASSERT_EQUAL(errno, ENOMEM);
		upcie_cu_skip("no free hugepages on this machine ('hugepages setup --count 2')");
		return;
	}
	upcie_dma_heap_info(h, &hi);
	CU_ASSERT_TRUE(hi.hugepages);
	CU_ASSERT(hi.page_size >= (2u << 20));
	void *a = upcie_dma_alloc(h, hi.page_size, hi.page_size);
	CU_ASSERT_PTR_NOT_NULL(a);
	upcie_dma_free(h, a);
	upcie_dma_heap_destroy(h);
}

static void test_bad_args(void)
{
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_dma_heap_create(f.dev, 0, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
}

/* The hugetlbfs mount for a page size, from a fake /proc: pagesize= or the
 * default size, escaped names, read-only mounts skipped. */
static void test_hugetlb_mount_for(void)
{
	char root[] = "/tmp/upcie-hugetlb.XXXXXX", path[512], got[512];
	FILE *fp;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
	snprintf(path, sizeof(path), "%s/self", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/huge 2m", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/g", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/meminfo", root);
	fp = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fprintf(fp, "MemTotal:       16384000 kB\nHugepagesize:       2048 kB\n");
	fclose(fp);
	snprintf(path, sizeof(path), "%s/self/mountinfo", root);
	fp = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fprintf(fp, "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n");
	fprintf(
	    fp,
	    "40 22 0:40 / /ro-huge ro,relatime shared:2 - hugetlbfs hugetlbfs rw,pagesize=2M\n");
	fprintf(fp, "41 22 0:41 / %s/huge\\0402m rw,relatime shared:3 - hugetlbfs none rw\n", root);
	fprintf(fp, "42 22 0:42 / %s/g rw,relatime - hugetlbfs none rw,pagesize=1024M\n", root);
	fclose(fp);

	CU_ASSERT_EQUAL(upcie_hugetlb_mount_for(root, 2u << 20, got, sizeof(got)), 0);
	snprintf(path, sizeof(path), "%s/huge 2m", root);
	CU_ASSERT_STRING_EQUAL(got, path);
	CU_ASSERT_EQUAL(upcie_hugetlb_mount_for(root, 1u << 30, got, sizeof(got)), 0);
	snprintf(path, sizeof(path), "%s/g", root);
	CU_ASSERT_STRING_EQUAL(got, path);
	CU_ASSERT_EQUAL(upcie_hugetlb_mount_for(root, 64u << 10, got, sizeof(got)), -ENOENT);
	CU_ASSERT_EQUAL(upcie_hugetlb_mount_for(root, 2u << 20, got, 8), -ENAMETOOLONG);

	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	CU_ASSERT_EQUAL(system(path), 0);
}

static char last_warning[512];
static void keep_warning(enum upcie_log_level level, const char *msg, void *arg)
{
	(void)arg;
	if (level <= UPCIE_LOG_WARN)
		snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

/* Destroying a heap that still has allocations says so instead of
 * unmapping them silently. */
static void test_destroy_with_live_allocations(void)
{
	struct upcie_dma_heap *h = upcie_dma_heap_create(f.dev, 1u << 20, UPCIE_DMA_NO_HUGEPAGES);

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_PTR_NOT_NULL(upcie_dma_alloc(h, 8192, 4096));
	last_warning[0] = 0;
	upcie_log_set(keep_warning, UPCIE_LOG_WARN, NULL);
	upcie_dma_heap_destroy(h);
	upcie_log_set(NULL, UPCIE_LOG_ERROR, NULL);
	CU_ASSERT(strstr(last_warning, "1 live allocations") != NULL);
}

static CU_TestInfo tests[] = {
    {"destroy with live allocations", test_destroy_with_live_allocations},
    {"alloc, align, translate, free", test_alloc_align_translate},
    {"exhaustion and merging", test_exhaustion_and_merge},
    {"64 KiB host pages (faked)", test_64k_host_pages},
    {"hugepage heap", test_hugepages},
    {"bad arguments", test_bad_args},
    {"hugetlbfs mount for a page size from /proc", test_hugetlb_mount_for},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("dma", suite_init, suite_clean, tests)
