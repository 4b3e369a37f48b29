/* SPDX-License-Identifier: BSD-3-Clause */
/* The vfio backend: not implemented yet. */
#include <errno.h>

#include "log_priv.h"
#include "pci_backend.h"

int upcie_pci_vfio_open(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
{
	(void)opts;
	return upcie_err(-ENOTSUP, "%s: the vfio backend is not built into this library", dev->name);
}
