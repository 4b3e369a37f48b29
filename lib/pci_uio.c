/* SPDX-License-Identifier: BSD-3-Clause */
/* The uio backend: not implemented yet. */
#include <errno.h>

#include "log_priv.h"
#include "pci_backend.h"

int upcie_pci_uio_open(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
{
	(void)opts;
	return upcie_err(-ENOTSUP, "%s: the uio backend is not built into this library", dev->name);
}
