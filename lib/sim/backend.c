/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "sim" PCI backend: BAR0 is the model's register memory, config space
 * is an array in the model, bus addresses are virtual addresses, and DMA
 * mapping registers a range the model may touch.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pci/backend.h"
#include "sim_priv.h"

struct sim_backend {
	struct upcie_sim *sim;
	bool owned;
};

static struct upcie_sim *model(struct upcie_pci_dev *dev)
{
	return ((struct sim_backend *)dev->priv)->sim;
}

static int sim_bar_map(struct upcie_pci_dev *dev, unsigned bar, void **va, size_t *len)
{
	struct upcie_sim *sim = model(dev);

	if (bar != 0)
		return upcie_err(-EINVAL,
				 "sim: BAR %u is not implemented; the registers are in BAR 0", bar);
	*va = sim->bar;
	*len = sim->bar_len;
	return 0;
}

static void sim_bar_unmap(struct upcie_pci_dev *dev, unsigned bar, void *va, size_t len)
{
	(void)dev;
	(void)bar;
	(void)va;
	(void)len;
}

static int sim_cfg_read(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len)
{
	struct upcie_sim *sim = model(dev);

	if (off > SIM_CFG_SIZE || len > SIM_CFG_SIZE - off)
		return upcie_err(-EINVAL, "sim: config read %#x+%zu is out of range", off, len);
	sim_lock(sim);
	if (sim->removed)
		memset(buf, 0xff, len); /* a removed device reads all-ones */
	else
		memcpy(buf, sim->cfgspace + off, len);
	sim_unlock(sim);
	return 0;
}

static int sim_cfg_write(struct upcie_pci_dev *dev, uint32_t off, const void *buf, size_t len)
{
	struct upcie_sim *sim = model(dev);
	const uint8_t *b = buf;

	if (off > SIM_CFG_SIZE || len > SIM_CFG_SIZE - off)
		return upcie_err(-EINVAL, "sim: config write %#x+%zu is out of range", off, len);
	sim_lock(sim);
	for (size_t i = 0; i < len && !sim->removed; i++) {
		size_t o = off + i;
		uint8_t m = o < sizeof(sim->cfg_wmask) ? sim->cfg_wmask[o] : 0;

		sim->cfgspace[o] = (uint8_t)((sim->cfgspace[o] & ~m) | (b[i] & m));
	}
	sim_unlock(sim);
	return 0;
}

static int sim_dma_map(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
		       uint64_t *bus)
{
	struct upcie_sim *sim = model(dev);
	int rc;

	sim_lock(sim);
	rc = upcie_sim_dma_add(sim, (uintptr_t)va, len);
	sim_unlock(sim);
	if (rc)
		return rc;
	if (bus)
		for (size_t i = 0; i < len / page_size; i++)
			bus[i] = (uintptr_t)va + i * page_size;
	return 0;
}

static int sim_dma_unmap(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			 const uint64_t *bus)
{
	struct upcie_sim *sim = model(dev);
	int rc;

	(void)page_size;
	(void)bus;
	sim_lock(sim);
	rc = upcie_sim_dma_del(sim, (uintptr_t)va, len);
	sim_unlock(sim);
	return rc;
}

/* Wait loops call this: step the model unless its own thread does. */
static void sim_idle(struct upcie_pci_dev *dev)
{
	struct upcie_sim *sim = model(dev);

	if (sim->cfg.threaded)
		sim_cpu_relax();
	else
		upcie_sim_step(sim);
}

static void sim_close(struct upcie_pci_dev *dev)
{
	struct sim_backend *be = dev->priv;

	if (!be)
		return;
	if (be->owned)
		upcie_sim_destroy(be->sim);
	free(be);
	dev->priv = NULL;
	dev->sim = NULL;
}

static const struct upcie_pci_ops sim_ops = {
    .name = "sim",
    .bar_map = sim_bar_map,
    .bar_unmap = sim_bar_unmap,
    .cfg_read = sim_cfg_read,
    .cfg_write = sim_cfg_write,
    .dma_map = sim_dma_map,
    .dma_unmap = sim_dma_unmap,
    .idle = sim_idle,
    .close = sim_close,
};

SIM_HIDDEN int upcie_pci_sim_open(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
{
	struct sim_backend *be = calloc(1, sizeof(*be));

	if (!be)
		return upcie_err(-ENOMEM, "sim: out of memory opening the device");
	if (opts && opts->sim) {
		be->sim = opts->sim;
	} else {
		struct upcie_sim_config cfg;

		upcie_sim_config_default(&cfg);
		cfg.threaded = true;
		be->sim = upcie_sim_create(&cfg);
		if (!be->sim) {
			int err = errno;
			free(be);
			return -err;
		}
		be->owned = true;
	}
	dev->priv = be;
	dev->sim = be->sim;
	dev->ops = &sim_ops;
	dev->dma_caps = UPCIE_PCI_DMA_BUS_CONTIGUOUS;
	return 0;
}
