/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Generic PCI layer: address parsing, backend selection, BAR table, the
 * owner lock, bus-master fencing. Backends live in uio.c, vfio.c and
 * sim/backend.c; each registers in the backend table (backend.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <upcie/pci.h>
#include <upcie/version.h>
#include "sysfs.h"

#include "core/log.h"
#include "pci/backend.h"
#include "pci/ctx.h"

#define PCI_COMMAND	   0x04
#define PCI_COMMAND_MASTER 0x4

/* dma_ctx took the place of reserved[0]: the size and the other offsets
 * are those of the release before (LP64, the ABI the dump in abi/ holds). */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(struct upcie_pci_opts) == 72, "upcie_pci_opts changed size");
#endif

/* Parse exactly 'width' hex digits (no sign, no prefix); advance *s. */
static int hexfield(const char **s, int width, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < width; i++) {
		char c = (*s)[i];
		if (!isxdigit((unsigned char)c))
			return -EINVAL;
		v = v * 16 +
		    (unsigned)(isdigit((unsigned char)c) ? c - '0' : tolower(c) - 'a' + 10);
	}
	*s += width;
	*out = v;
	return 0;
}

int upcie_pci_addr_parse(const char *str, struct upcie_pci_addr *addr)
{
	unsigned dom = 0, bus, dev, fn;
	const char *s = str;

	if (!str || !addr)
		return -EINVAL;
	/* Full form has a domain: dddd:bb:dd.f (12 chars); short: bb:dd.f (7 chars). */
	size_t n = strlen(str);
	if (n == 12) {
		if (hexfield(&s, 4, &dom) || *s++ != ':')
			return -EINVAL;
	} else if (n != 7) {
		return -EINVAL;
	}
	if (hexfield(&s, 2, &bus) || *s++ != ':')
		return -EINVAL;
	if (hexfield(&s, 2, &dev) || *s++ != '.')
		return -EINVAL;
	if (hexfield(&s, 1, &fn) || *s)
		return -EINVAL;
	if (dev > 31 || fn > 7)
		return -EINVAL;
	addr->domain = (uint16_t)dom;
	addr->bus = (uint8_t)bus;
	addr->dev = (uint8_t)dev;
	addr->func = (uint8_t)fn;
	return 0;
}

int upcie_pci_addr_format(const struct upcie_pci_addr *addr, char *buf, size_t len)
{
	int n =
	    snprintf(buf, len, "%04x:%02x:%02x.%x", addr->domain, addr->bus, addr->dev, addr->func);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

const char *upcie_pci_backend_name(enum upcie_pci_backend backend)
{
	switch (backend) {
	case UPCIE_PCI_BACKEND_SIM:
		return "sim";
	case UPCIE_PCI_BACKEND_UIO:
		return "uio";
	case UPCIE_PCI_BACKEND_VFIO:
		return "vfio";
	case UPCIE_PCI_BACKEND_AUTO:
		break;
	}
	return "auto";
}

int upcie_pci_read_driver(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts, char *drv,
			  size_t len)
{
	int rc = upcie_sysfs_pci_driver(opts ? opts->sysfs_root : NULL, &dev->addr, drv, len);

	if (rc == -ENOENT)
		return upcie_err(
		    -ENODEV, "%s: no such PCI device; 'devbind list' shows the NVMe controllers",
		    dev->name);
	if (rc)
		return upcie_err(rc, "%s: cannot read its driver from sysfs: %s", dev->name,
				 strerror(-rc));
	return 0;
}

int upcie_pci_require_driver(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts,
			     const char *want)
{
	char drv[64];
	int rc = upcie_pci_read_driver(dev, opts, drv, sizeof(drv));

	if (rc)
		return rc;
	if (strcmp(drv, want))
		return upcie_err(-EBUSY,
				 "%s is bound to %s, not %s; bind it first: 'devbind bind %s %s'",
				 dev->name, drv[0] ? drv : "no driver", want, want, dev->name);
	return 0;
}

/* Every backend this library has, in the order auto tries them; a
 * missing one (the sim, when not built) is a NULL entry. */
static const struct upcie_pci_backend_desc *const *const backend_table[] = {
    &upcie_pci_vfio_backend,
    &upcie_pci_uio_backend,
    &upcie_pci_sim_backend,
};
#define NBACKENDS (sizeof(backend_table) / sizeof(backend_table[0]))

/* 'name' names the in-process device 'device': the name itself, or the
 * name and a decimal instance number ("sim2"), so that a process can tell
 * several such devices apart (each opened with a model of its own). */
static bool named_match(const char *device, const char *name)
{
	size_t n = device ? strlen(device) : 0;

	if (!n || strncmp(device, name, n))
		return false;
	name += n;
	if (!*name)
		return true;
	if (*name == '0' || strlen(name) > 4)
		return false;
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

/* The backend with id 'id' (by its PCI driver or device name when 'drv' or
 * 'device' is given instead), or NULL. */
static const struct upcie_pci_backend_desc *find_backend(int id, const char *drv,
							 const char *device)
{
	for (size_t i = 0; i < NBACKENDS; i++) {
		const struct upcie_pci_backend_desc *b = *backend_table[i];

		if (!b)
			continue;
		if (drv	     ? b->driver && !strcmp(b->driver, drv)
		    : device ? named_match(b->device, device)
			     : (int)b->id == id)
			return b;
	}
	return NULL;
}

/* The backend for the driver the device is bound to. */
static int pick_backend(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
{
	const struct upcie_pci_backend_desc *b;
	char drv[64];
	int rc = upcie_pci_read_driver(dev, opts, drv, sizeof(drv));

	if (rc)
		return rc;
	b = find_backend(0, drv, NULL);
	if (b)
		return (int)b->id;
	return upcie_err(-EBUSY,
			 "%s is bound to %s; bind it for user space first: "
			 "'devbind bind vfio-pci %s' (or uio_pci_generic)",
			 dev->name, drv[0] ? drv : "no driver", dev->name);
}

/* The named devices the backends open, for a message: " or 'sim'". */
static void named_devices(char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (size_t i = 0; i < NBACKENDS; i++)
		if (*backend_table[i] && (*backend_table[i])->device && n < len)
			n += (size_t)snprintf(buf + n, len - n, " or '%s'",
					      (*backend_table[i])->device);
	if (!buf[0])
		snprintf(buf, len,
			 "; this libupcie has no in-process device (built with -Dsim=false)");
}

/* The backend that opens 'name' with these options; fills dev->name and
 * dev->addr. NULL with errno and the thread's message when none can. */
static const struct upcie_pci_backend_desc *
choose_backend(struct upcie_pci_dev *dev, const char *name, const struct upcie_pci_opts *opts)
{
	int want = opts ? (int)opts->backend : UPCIE_PCI_BACKEND_AUTO;
	const struct upcie_pci_backend_desc *b = find_backend(0, NULL, name);
	char names[128];
	int id;

	if (want < UPCIE_PCI_BACKEND_AUTO || want > UPCIE_PCI_BACKEND_VFIO)
		return upcie_err_null(-EINVAL, "upcie_pci_opts.backend %d is not a backend", want);
	if (want != UPCIE_PCI_BACKEND_AUTO && !find_backend(want, NULL, NULL))
		return upcie_err_null(-ENOTSUP,
				      "this libupcie has no '%s' backend: it was left out of "
				      "the build (meson -Dsim=false leaves out the sim)",
				      upcie_pci_backend_name((enum upcie_pci_backend)want));
	if (b) {
		if (want != UPCIE_PCI_BACKEND_AUTO && want != (int)b->id)
			return upcie_err_null(-EINVAL, "device '%s' only runs on the %s backend",
					      name, upcie_pci_backend_name(b->id));
		snprintf(dev->name, sizeof(dev->name), "%s", name);
		return b;
	}
	if (upcie_pci_addr_parse(name, &dev->addr)) {
		named_devices(names, sizeof(names));
		return upcie_err_null(-EINVAL,
				      "'%s' is not a device: give a PCI address "
				      "(0000:01:00.0 or 01:00.0)%s",
				      name, names);
	}
	upcie_pci_addr_format(&dev->addr, dev->name, sizeof(dev->name));
	if (want != UPCIE_PCI_BACKEND_AUTO) {
		b = find_backend(want, NULL, NULL);
		if (b->device)
			return upcie_err_null(-EINVAL, "the %s backend only opens '%s'",
					      upcie_pci_backend_name(b->id), b->device);
		return b;
	}
	id = pick_backend(dev, opts);
	if (id < 0) {
		errno = -id;
		return NULL;
	}
	return find_backend(id, NULL, NULL);
}

struct upcie_pci_dev *upcie_pci_open(const char *name, const struct upcie_pci_opts *opts)
{
	const struct upcie_pci_backend_desc *b;
	struct upcie_pci_dev *dev;
	int rc;

	if (!name)
		return upcie_err_null(-EINVAL, "no device name given");
	for (size_t i = 0; opts && i < sizeof(opts->reserved) / sizeof(opts->reserved[0]); i++)
		if (opts->reserved[i])
			return upcie_err_null(-EINVAL,
					      "upcie_pci_opts.reserved[%zu] is not zero: options "
					      "from a newer libupcie than %s, or an uninitialized "
					      "struct",
					      i, upcie_version());
	if (opts && (opts->reserved32 || (unsigned)opts->vfio_iommu > UPCIE_PCI_VFIO_IOMMU_NOIOMMU))
		return upcie_err_null(
		    -EINVAL,
		    "upcie_pci_opts: vfio_iommu %u or reserved32 %u is not valid: "
		    "options from a newer libupcie than %s, or an uninitialized "
		    "struct",
		    (unsigned)opts->vfio_iommu, opts->reserved32, upcie_version());
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return upcie_err_null(-ENOMEM, "out of memory opening %s", name);
	dev->lock_fd = -1;
	pthread_mutex_init(&dev->cmd_lock, NULL);

	b = choose_backend(dev, name, opts);
	if (!b) {
		rc = errno;
		free(dev);
		errno = rc;
		return NULL;
	}
	dev->backend = b->id;

	/* The lock comes first: a refused second opener must not touch the
	 * device (closing a /dev/uioN file clears the owner's bus mastering). */
	if (!b->device) {
		rc = upcie_pci_lock(dev);
		if (rc) {
			free(dev);
			errno = -rc;
			return NULL;
		}
	}
	/* Into a DMA context: its lock is held across the backend's open
	 * (vfio attaches to the context's container or IOAS there). */
	if (opts && opts->dma_ctx) {
		rc = upcie_dma_ctx_join_begin(opts->dma_ctx, dev, b->id);
		if (rc) {
			upcie_pci_unlock(dev);
			free(dev);
			errno = -rc;
			return NULL;
		}
	}
	rc = b->open(dev, opts);
	if (!rc && !b->device) {
		/* Fence: a controller left running by a process that died must
		 * not DMA while the NVMe layer takes it over. That layer disables
		 * the controller and only then turns bus mastering on. */
		rc = upcie_pci_bus_master(dev, false);
		if (rc)
			dev->ops->close(dev);
	}
	/* A join that fails closes the device again (under the context's lock,
	 * with the open's reference still held: see ctx.h). */
	if (opts && opts->dma_ctx)
		rc = upcie_dma_ctx_join_end(opts->dma_ctx, dev, rc);
	if (rc) {
		upcie_pci_unlock(dev);
		free(dev);
		errno = -rc;
		return NULL;
	}
	return dev;
}

void upcie_pci_close(struct upcie_pci_dev *dev)
{
	if (!dev)
		return;
	for (unsigned i = 0; i < UPCIE_PCI_NBARS; i++)
		upcie_pci_bar_unmap(dev, i);
	/* COMMAND as it was at open, but never with bus mastering on: see
	 * upcie_pci_close() in pci.h. */
	if (dev->command_saved && !__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE)) {
		uint16_t cmd = (uint16_t)(dev->saved_command & ~PCI_COMMAND_MASTER);
		(void)dev->ops->cfg_write(dev, PCI_COMMAND, &cmd, sizeof(cmd));
	}
	upcie_pci_irq_disable(dev);
	/* In a DMA context only this device detaches: the context's memory
	 * stays mapped for the others (ctx.c). */
	if (dev->dma_ctx)
		upcie_dma_ctx_leave_begin(dev->dma_ctx, dev);
	dev->ops->close(dev);
	if (dev->dma_ctx)
		upcie_dma_ctx_leave_end(dev->dma_ctx);
	/* Last: every file of the device is closed before another process may
	 * take it over. */
	upcie_pci_unlock(dev);
	pthread_mutex_destroy(&dev->cmd_lock);
	free(dev);
}

const char *upcie_pci_name(const struct upcie_pci_dev *dev)
{
	return dev->name;
}

enum upcie_pci_backend upcie_pci_backend(const struct upcie_pci_dev *dev)
{
	return dev->backend;
}

unsigned upcie_pci_dma_caps(const struct upcie_pci_dev *dev)
{
	return dev->dma_caps;
}

int upcie_pci_bar_map(struct upcie_pci_dev *dev, unsigned bar, void **va, size_t *len)
{
	int rc;

	if (bar >= UPCIE_PCI_NBARS)
		return upcie_err(-EINVAL, "BAR %u does not exist (0..5)", bar);
	if (!dev->bars[bar].va) {
		rc = dev->ops->bar_map(dev, bar, &dev->bars[bar].va, &dev->bars[bar].len);
		if (rc)
			return rc;
	}
	if (va)
		*va = dev->bars[bar].va;
	if (len)
		*len = dev->bars[bar].len;
	return 0;
}

void upcie_pci_bar_unmap(struct upcie_pci_dev *dev, unsigned bar)
{
	if (bar >= UPCIE_PCI_NBARS || !dev->bars[bar].va)
		return;
	if (dev->ops->bar_unmap)
		dev->ops->bar_unmap(dev, bar, dev->bars[bar].va, dev->bars[bar].len);
	else
		munmap(dev->bars[bar].va, dev->bars[bar].len);
	dev->bars[bar].va = NULL;
	dev->bars[bar].len = 0;
}

int upcie_pci_cfg_read(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len)
{
	if (off > 4096 || len > 4096 - off)
		return upcie_err(-EINVAL, "config space access %#x+%zu is out of range", off, len);
	return dev->ops->cfg_read(dev, off, buf, len);
}

int upcie_pci_cfg_write(struct upcie_pci_dev *dev, uint32_t off, const void *buf, size_t len)
{
	if (off > 4096 || len > 4096 - off)
		return upcie_err(-EINVAL, "config space access %#x+%zu is out of range", off, len);
	return dev->ops->cfg_write(dev, off, buf, len);
}

int upcie_pci_command_update(struct upcie_pci_dev *dev, uint16_t clear, uint16_t set)
{
	uint16_t cmd, want;
	int rc;

	pthread_mutex_lock(&dev->cmd_lock);
	rc = dev->ops->cfg_read(dev, PCI_COMMAND, &cmd, sizeof(cmd));
	if (rc) {
		rc = upcie_err(rc, "%s: cannot read the PCI COMMAND register", dev->name);
		goto out;
	}
	if (cmd == 0xffff) {
		rc = upcie_err(-ENODEV, "%s: config space reads all-ones; the device is gone",
			       dev->name);
		goto out;
	}
	if (!dev->command_saved) {
		dev->saved_command = cmd;
		dev->command_saved = true;
	}
	want = (uint16_t)((cmd & ~clear) | set);
	if (want != cmd) {
		rc = dev->ops->cfg_write(dev, PCI_COMMAND, &want, sizeof(want));
		if (rc)
			rc = upcie_err(rc, "%s: cannot write the PCI COMMAND register", dev->name);
	}
out:
	pthread_mutex_unlock(&dev->cmd_lock);
	return rc;
}

int upcie_pci_bus_master(struct upcie_pci_dev *dev, bool enable)
{
	return upcie_pci_command_update(dev, enable ? 0 : PCI_COMMAND_MASTER,
					enable ? PCI_COMMAND_MASTER : 0);
}

int upcie_pci_dma_map_check(const char *who, const void *va, size_t len, size_t page_size)
{
	if (!page_size || (page_size & (page_size - 1)))
		return upcie_err(-EINVAL, "%s: DMA map: page size %zu is not a power of two", who,
				 page_size);
	if (((uintptr_t)va % page_size) || (len % page_size) || !len)
		return upcie_err(-EINVAL,
				 "%s: DMA map: va %p and len %zu must be non-zero multiples of "
				 "the page size %zu",
				 who, va, len, page_size);
	return 0;
}

int upcie_pci_dma_map(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
		      uint64_t *bus)
{
	int rc;

	/* In a context, memory is mapped for all of its devices at once (and
	 * checked there). */
	if (dev->dma_ctx)
		return upcie_dma_ctx_map(dev->dma_ctx, va, len, page_size, bus);
	rc = upcie_pci_dma_map_check(dev->name, va, len, page_size);
	return rc ? rc : dev->ops->dma_map(dev, va, len, page_size, bus);
}

int upcie_pci_dma_unmap(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			const uint64_t *bus)
{
	if (dev->dma_ctx)
		return upcie_dma_ctx_unmap(dev->dma_ctx, va, len, page_size, bus);
	return dev->ops->dma_unmap(dev, va, len, page_size, bus);
}

int upcie_pci_claim_nvme(struct upcie_pci_dev *dev)
{
	if (__atomic_exchange_n(&dev->nvme_claimed, true, __ATOMIC_ACQ_REL))
		return upcie_err(-EBUSY,
				 "%s: this device handle already has an open NVMe controller; "
				 "share that one (a second would reset it under its owner)",
				 dev->name);
	return 0;
}

void upcie_pci_release_nvme(struct upcie_pci_dev *dev)
{
	__atomic_store_n(&dev->nvme_claimed, false, __ATOMIC_RELEASE);
}

int upcie_pci_check(struct upcie_pci_dev *dev)
{
	int rc;

	if (!dev)
		return upcie_err(-EINVAL, "upcie_pci_check: no device");
	/* Queue pairs on several threads may check at once: the first to see
	 * -ENODEV records the message, then publishes it (2). */
	if (__atomic_load_n(&dev->gone, __ATOMIC_ACQUIRE) == 2) {
		upcie_errmsg_restore(dev->gone_msg);
		return -ENODEV;
	}
	rc = dev->ops->check ? dev->ops->check(dev) : 0;
	if (rc == -ENODEV) {
		int live = 0;

		if (__atomic_compare_exchange_n(&dev->gone, &live, 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			upcie_errmsg_save(dev->gone_msg, sizeof(dev->gone_msg));
			__atomic_store_n(&dev->gone, 2, __ATOMIC_RELEASE);
		}
	}
	return rc;
}

void upcie_pci_idle(struct upcie_pci_dev *dev)
{
	if (dev->ops->idle)
		dev->ops->idle(dev);
}

int upcie_pci_cfg_fd_io(struct upcie_pci_dev *dev, int fd, uint64_t base, uint32_t off, void *buf,
			size_t len, bool write)
{
	const char *what = write ? "write" : "read";
	ssize_t n = write ? pwrite(fd, buf, len, (off_t)(base + off))
			  : pread(fd, buf, len, (off_t)(base + off));

	if (n < 0)
		return upcie_err(-errno, "%s: config %s at %#x: %s", dev->name, what, off,
				 strerror(errno));
	if ((size_t)n != len)
		return upcie_err(-EIO, "%s: config %s at %#x+%zu came back short (%zd bytes)",
				 dev->name, what, off, len, n);
	return 0;
}

/* ---- interrupts: argument checks and the enabled count; the backend does the rest ---- */

int upcie_pci_irq_info(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info)
{
	if (!dev || !info)
		return upcie_err(-EINVAL, "upcie_pci_irq_info: no device or no info");
	memset(info, 0, sizeof(*info));
	if (dev->ops->irq_info) {
		int rc = dev->ops->irq_info(dev, info);

		if (rc)
			return rc;
	}
	info->enabled = dev->irq_enabled;
	return 0;
}

int upcie_pci_irq_enable(struct upcie_pci_dev *dev, unsigned nvec)
{
	struct upcie_pci_irq_info info;
	int rc;

	if (!dev || !nvec)
		return upcie_err(-EINVAL, "upcie_pci_irq_enable: no device, or 0 vectors");
	rc = upcie_pci_irq_info(dev, &info);
	if (rc)
		return rc;
	if (info.kind == UPCIE_PCI_IRQ_NONE || !info.nvec || !dev->ops->irq_enable)
		return upcie_err(-ENOTSUP,
				 "%s: the %s backend delivers no interrupts here; use polled "
				 "queues%s",
				 dev->name, dev->ops->name,
				 dev->backend == UPCIE_PCI_BACKEND_UIO
				     ? " (uio_pci_generic gives INTx only, and this function has "
				       "no usable INTx line: bind it to vfio-pci for MSI-X)"
				     : "");
	if (nvec > info.nvec)
		return upcie_err(-EINVAL,
				 "%s: %u interrupt vectors asked for, the function has %u (%s)",
				 dev->name, nvec, info.nvec,
				 info.kind == UPCIE_PCI_IRQ_INTX ? "INTx: one line" : "MSI-X");
	if (dev->irq_enabled == nvec)
		return 0;
	if (dev->irq_enabled)
		return upcie_err(-EBUSY,
				 "%s: interrupts are enabled with %u vectors; disable them before "
				 "asking for %u",
				 dev->name, dev->irq_enabled, nvec);
	rc = dev->ops->irq_enable(dev, nvec);
	if (rc)
		return rc;
	dev->irq_enabled = nvec;
	return 0;
}

void upcie_pci_irq_disable(struct upcie_pci_dev *dev)
{
	if (!dev || !dev->irq_enabled)
		return;
	if (dev->ops->irq_disable)
		dev->ops->irq_disable(dev);
	dev->irq_enabled = 0;
}

int upcie_pci_irq_open(struct upcie_pci_dev *dev, unsigned vec)
{
	if (!dev)
		return upcie_err(-EINVAL, "upcie_pci_irq_open: no device");
	if (vec >= dev->irq_enabled)
		return upcie_err(-EINVAL,
				 "%s: interrupt vector %u is not enabled (%u enabled): call "
				 "upcie_pci_irq_enable() first",
				 dev->name, vec, dev->irq_enabled);
	return dev->ops->irq_open(dev, vec);
}

void upcie_pci_irq_close(struct upcie_pci_dev *dev, unsigned vec, int fd)
{
	if (!dev || fd < 0)
		return;
	if (dev->ops->irq_close)
		dev->ops->irq_close(dev, vec, fd);
	else
		close(fd);
}

int upcie_pci_irq_ack(struct upcie_pci_dev *dev, unsigned vec, int fd)
{
	if (!dev || fd < 0 || vec >= dev->irq_enabled)
		return upcie_err(-EINVAL, "upcie_pci_irq_ack: no device, fd or enabled vector %u",
				 vec);
	return dev->ops->irq_ack(dev, vec, fd);
}

int upcie_pci_gone_fd(struct upcie_pci_dev *dev)
{
	if (!dev || !dev->ops->gone_fd)
		return -1;
	return dev->ops->gone_fd(dev);
}
