/* SPDX-License-Identifier: BSD-3-Clause */
/* PCI address parsing and formatting. */
#include <errno.h>
#include <string.h>

#include <upcie/pci.h>

#include "cu.h"

static void test_parse_full(void)
{
	struct upcie_pci_addr a;
	char buf[UPCIE_PCI_ADDR_STRLEN];

	CU_ASSERT_EQUAL(upcie_pci_addr_parse("0000:01:00.0", &a), 0);
	CU_ASSERT_EQUAL(a.domain, 0);
	CU_ASSERT_EQUAL(a.bus, 1);
	CU_ASSERT_EQUAL(a.dev, 0);
	CU_ASSERT_EQUAL(a.func, 0);
	CU_ASSERT_EQUAL(upcie_pci_addr_parse("abcd:Ef:1f.7", &a), 0);
	CU_ASSERT_EQUAL(a.domain, 0xabcd);
	CU_ASSERT_EQUAL(a.bus, 0xef);
	CU_ASSERT_EQUAL(a.dev, 0x1f);
	CU_ASSERT_EQUAL(a.func, 7);
	CU_ASSERT_EQUAL(upcie_pci_addr_format(&a, buf, sizeof(buf)), 12);
	CU_ASSERT_STRING_EQUAL(buf, "abcd:ef:1f.7");
}

static void test_parse_short(void)
{
	struct upcie_pci_addr a;
	char buf[UPCIE_PCI_ADDR_STRLEN];

	CU_ASSERT_EQUAL(upcie_pci_addr_parse("01:00.0", &a), 0);
	CU_ASSERT_EQUAL(a.domain, 0);
	CU_ASSERT_EQUAL(a.bus, 1);
	upcie_pci_addr_format(&a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "0000:01:00.0");
	CU_ASSERT_EQUAL(upcie_pci_addr_parse("00:03.1", &a), 0);
	CU_ASSERT_EQUAL(a.dev, 3);
	CU_ASSERT_EQUAL(a.func, 1);
}

static void test_parse_bad(void)
{
	static const char *bad[] = {
	    "",
	    "0",
	    "1:0.0",
	    "01:00",
	    "01:00.",
	    "01:00.8",
	    "01:20.0",
	    "0000:01:00.0 ",
	    " 01:00.0",
	    "0000:01:00:0",
	    "000:01:00.0",
	    "00000:01:00.0",
	    "0000-01:00.0",
	    "0x01:00.0",
	    "g1:00.0",
	    "01:0g.0",
	    "0000:01:00.0.0",
	    "sim0",
	    "+1:00.0",
	    "0000:1:00.0",
	    "0000:01:0.00",
	};
	struct upcie_pci_addr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = upcie_pci_addr_parse(bad[i], &a);
		if (rc != -EINVAL)
			printf("\n  accepted bad address '%s'\n", bad[i]);
		CU_ASSERT_EQUAL(rc, -EINVAL);
	}
	CU_ASSERT_EQUAL(upcie_pci_addr_parse(NULL, &a), -EINVAL);
}

static void test_format_small(void)
{
	struct upcie_pci_addr a = {0, 1, 2, 3};
	char buf[12];

	CU_ASSERT_EQUAL(upcie_pci_addr_format(&a, buf, sizeof(buf)), -ENOSPC);
}

static void test_open_bad_name(void)
{
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_pci_open("nonsense", NULL));
	CU_ASSERT_EQUAL(errno, EINVAL);
	/* A well-formed address that does not exist in a fake (empty) tree. */
	struct upcie_pci_opts o = {.sysfs_root = "/nonexistent-sysfs"};
	errno = 0;
	CU_ASSERT_PTR_NULL(upcie_pci_open("0000:7f:1f.7", &o));
	CU_ASSERT_EQUAL(errno, ENODEV);
}

static CU_TestInfo tests[] = {
    {"parse full form", test_parse_full},    {"parse short form", test_parse_short},
    {"reject malformed", test_parse_bad},    {"format into a small buffer", test_format_small},
    {"open a bad name", test_open_bad_name}, CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("pci_addr", NULL, NULL, tests)
