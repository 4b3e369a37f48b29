/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * PRP construction (NVMe Base spec 2.0, 4.1.1 "Physical Region Page
 * Entry and List").
 *
 * PRP1 points at the first byte and may carry a dword-aligned offset into
 * its page. When the transfer ends within that page PRP2 is unused; when
 * it ends within the next page PRP2 is that page; otherwise PRP2 points at
 * a PRP list of page-aligned entries, one per remaining page. A list that
 * reaches the last slot of its memory page while entries remain uses that
 * slot to point at the next list page.
 */
#include <errno.h>

#include "core/log.h"
#include "nvme/nvme.h"

int upcie_nvme_prp_setup(const struct upcie_dma_heap *heap, uint32_t page_size, const void *buf,
			 size_t len, uint64_t *prp1, uint64_t *prp2, uint64_t *list,
			 uint32_t list_entries)
{
	const uintptr_t pmask = page_size - 1;
	uint64_t bus, first;
	const char *va;
	size_t remaining;
	uint32_t i = 0;

	if (unlikely(!len))
		return -EINVAL;
	bus = upcie_dma_bus_fast(heap, buf);
	/* The whole buffer must be inside the heap; PRP1 must be dword aligned. */
	if (unlikely(bus == UPCIE_DMA_BAD_ADDR || (bus & 3) ||
		     upcie_dma_bus_fast(heap, (const char *)buf + len - 1) == UPCIE_DMA_BAD_ADDR))
		return -EINVAL;

	*prp1 = bus;
	first = page_size - (bus & pmask);
	if (len <= first) {
		*prp2 = 0;
		return 0;
	}
	va = (const char *)buf + first; /* page aligned from here on */
	remaining = len - first;
	if (remaining <= page_size) {
		*prp2 = upcie_dma_bus_fast(heap, va);
		return 0;
	}

	if (unlikely(!list))
		return -EINVAL;
	*prp2 = upcie_dma_bus_fast(heap, list);
	if (unlikely(*prp2 == UPCIE_DMA_BAD_ADDR || (*prp2 & 7)))
		return -EINVAL;
	while (remaining) {
		if (unlikely(i >= list_entries))
			return -EINVAL;
		/* Last slot of a list page with more than one entry left: chain. */
		if (((uintptr_t)&list[i] & pmask) == page_size - 8 && remaining > page_size) {
			if (unlikely(i + 1 >= list_entries))
				return -EINVAL;
			list[i] = upcie_dma_bus_fast(heap, &list[i + 1]);
			i++;
			continue;
		}
		list[i++] = upcie_dma_bus_fast(heap, va);
		va += page_size;
		remaining = remaining > page_size ? remaining - page_size : 0;
	}
	return 0;
}
