/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The "sim" PCI backend: BAR0 is the model's register memory, config space
 * is an array in the model, bus addresses are virtual addresses, and DMA
 * mapping registers a range the model may touch.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pci/backend.h"
#include "sim_priv.h"

struct sim_backend {
	struct upcie_sim *sim;
	bool owned;
	int *irq_fds; /* one eventfd per enabled vector, NULL when off */
	unsigned irq_nvec;
	int gone_fd; /* written by the model when it is removed */
};

static struct upcie_sim *model(const struct upcie_pci_dev *dev)
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

/* ---- interrupts: MSI-X, an eventfd per vector (sim_irq.c raises them) ---- */

static int sim_irq_info(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info)
{
	info->kind = UPCIE_PCI_IRQ_MSIX;
	info->nvec = model(dev)->nr_vec;
	return 0;
}

static void sim_irq_disable(struct upcie_pci_dev *dev)
{
	struct sim_backend *be = dev->priv;

	if (!be->irq_fds)
		return;
	upcie_sim_irq_attach(be->sim, NULL);
	for (unsigned i = 0; i < be->irq_nvec; i++)
		close(be->irq_fds[i]);
	free(be->irq_fds);
	be->irq_fds = NULL;
	be->irq_nvec = 0;
}

static int sim_irq_enable(struct upcie_pci_dev *dev, unsigned nvec)
{
	struct sim_backend *be = dev->priv;
	int *fds = calloc(nvec, sizeof(*fds));

	if (!fds)
		return upcie_err(-ENOMEM, "sim: out of memory for %u interrupt vectors", nvec);
	for (unsigned i = 0; i < nvec; i++) {
		fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fds[i] < 0) {
			int err = errno;

			while (i--)
				close(fds[i]);
			free(fds);
			return upcie_err(-err, "sim: eventfd for interrupt vector %u: %s", i,
					 strerror(err));
		}
	}
	be->irq_fds = fds;
	be->irq_nvec = nvec;
	upcie_sim_irq_attach(be->sim, fds);
	return 0;
}

static int sim_irq_open(struct upcie_pci_dev *dev, unsigned vec)
{
	struct sim_backend *be = dev->priv;
	int fd = fcntl(be->irq_fds[vec], F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return upcie_err(-errno, "sim: cannot duplicate interrupt vector %u's eventfd: %s",
				 vec, strerror(errno));
	return fd;
}

/* An eventfd: reading takes its count (and clears it). */
static int eventfd_ack(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) == sizeof(n))
		return 1;
	if (errno == EAGAIN)
		return 0;
	return upcie_err(-errno, "interrupt eventfd read: %s", strerror(errno));
}

static int sim_irq_ack(struct upcie_pci_dev *dev, unsigned vec, int fd)
{
	(void)dev;
	(void)vec;
	return eventfd_ack(fd);
}

static int sim_gone_fd(struct upcie_pci_dev *dev)
{
	return ((struct sim_backend *)dev->priv)->gone_fd;
}

static void sim_close(struct upcie_pci_dev *dev)
{
	struct sim_backend *be = dev->priv;

	if (!be)
		return;
	sim_irq_disable(dev);
	if (be->gone_fd >= 0) {
		sim_lock(be->sim);
		be->sim->gone_fd = -1;
		sim_unlock(be->sim);
		close(be->gone_fd);
	}
	if (be->owned)
		upcie_sim_destroy(be->sim);
	free(be);
	dev->priv = NULL;
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
    .irq_info = sim_irq_info,
    .irq_enable = sim_irq_enable,
    .irq_disable = sim_irq_disable,
    .irq_open = sim_irq_open,
    .irq_ack = sim_irq_ack,
    .gone_fd = sim_gone_fd,
    .close = sim_close,
};

static int sim_open(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
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
	/* Readable (and left so) once the model is removed: wakes sleepers. */
	be->gone_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (be->gone_fd >= 0) {
		sim_lock(be->sim);
		be->sim->gone_fd = be->gone_fd;
		sim_unlock(be->sim);
	}
	dev->priv = be;
	dev->ops = &sim_ops;
	dev->dma_caps = UPCIE_PCI_DMA_BUS_CONTIGUOUS;
	return 0;
}

/* The sim's entry in the PCI layer's backend table (lib/pci/backend.h):
 * the device named "sim", no PCI driver. */
static const struct upcie_pci_backend_desc sim_backend = {
    .id = UPCIE_PCI_BACKEND_SIM,
    .device = "sim",
    .open = sim_open,
};
const struct upcie_pci_backend_desc *const upcie_pci_sim_backend = &sim_backend;

struct upcie_sim *upcie_pci_sim(const struct upcie_pci_dev *dev)
{
	return dev && dev->ops == &sim_ops ? model(dev) : NULL;
}
