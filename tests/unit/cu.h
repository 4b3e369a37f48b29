/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Minimal CUnit runner shared by the unit suites: one suite per binary,
 * basic-mode output, exit status 1 when any assertion failed or a test
 * could not run.
 *
 *   static CU_TestInfo tests[] = { {"name", fn}, CU_TEST_INFO_NULL };
 *   UPCIE_CU_MAIN("suite", NULL, NULL, tests)
 *
 * upcie_cu_skip(why) prints a visible skip line; CUnit has no skip state,
 * so the test then returns having asserted nothing.
 */
#ifndef UPCIE_TESTS_CU_H
#define UPCIE_TESTS_CU_H

#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#define upcie_cu_skip(why) printf("\n  SKIP %s: %s\n", __func__, (why))

#define UPCIE_CU_MAIN(name, init, clean, tests)                                                    \
	int main(void)                                                                             \
	{                                                                                          \
		CU_SuiteInfo suites[] = {{(name), (init), (clean), NULL, NULL, (tests)},           \
					 CU_SUITE_INFO_NULL};                                      \
		unsigned failed;                                                                   \
		if (CU_initialize_registry() != CUE_SUCCESS)                                       \
			return 2;                                                                  \
		if (CU_register_suites(suites) != CUE_SUCCESS) {                                   \
			CU_cleanup_registry();                                                     \
			return 2;                                                                  \
		}                                                                                  \
		CU_basic_set_mode(CU_BRM_VERBOSE);                                                 \
		CU_basic_run_tests();                                                              \
		failed = CU_get_number_of_failures() + CU_get_number_of_suites_failed() +          \
			 CU_get_number_of_tests_failed();                                          \
		CU_cleanup_registry();                                                             \
		return failed ? 1 : 0;                                                             \
	}

#endif
