/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A program built against the installed libupcie-dev through pkg-config:
 * version macros and upcie_version() agree, the sim controller comes up and
 * its namespaces are listed. Exit 0 when all of that works.
 */
#include <stdio.h>
#include <string.h>

#include <upcie/upcie.h>

int main(void)
{
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	unsigned nns = 0;

	printf("headers %s (%d.%d.%d), library %s\n", UPCIE_VERSION_STRING, UPCIE_VERSION_MAJOR,
	       UPCIE_VERSION_MINOR, UPCIE_VERSION_PATCH, upcie_version());
	if (strcmp(upcie_version(), UPCIE_VERSION_STRING))
		return 1;
	dev = upcie_pci_open("sim", NULL);
	if (!dev) {
		fprintf(stderr, "open sim: %s\n", upcie_errmsg());
		return 1;
	}
	heap = upcie_dma_heap_create(dev, 4u << 20, 0);
	ctrl = heap ? upcie_nvme_ctrl_open(dev, heap, NULL) : NULL;
	if (!ctrl) {
		fprintf(stderr, "controller: %s\n", upcie_errmsg());
		return 1;
	}
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(ctrl); ns;
	     ns = upcie_nvme_ns_next(ctrl, ns))
		nns++;
	printf("sim controller up, %u namespaces\n", nns);
	upcie_nvme_ctrl_close(ctrl);
	upcie_dma_heap_destroy(heap);
	upcie_pci_close(dev);
	return nns ? 0 : 1;
}
