/* SPDX-License-Identifier: BSD-3-Clause */
#include <upcie/version.h>

const char *upcie_version(void)
{
	return UPCIE_VERSION_STRING;
}
