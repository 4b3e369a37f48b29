/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * DMA contexts: several device handles in one DMA space, so that one heap
 * serves them all (include/upcie/dma.h, "DMA contexts").
 *
 * What each backend shares:
 *   vfio  one container (type1) or IOAS (iommufd), kept in ctx->vfio by
 *         vfio_ctx.c; devices attach to it at open and detach at close,
 *         which never unmaps what the others use
 *   uio   nothing: bus addresses are physical; a map reads them once
 *   sim   each model checks DMA against the ranges mapped for it: a map
 *         is given to every model of the context, and a model that joins
 *         later gets every mapping made so far
 *
 * The context keeps each mapping (va, len, first bus address) so that a
 * device joining later can be given it, and counts references: the
 * creator, each device, each heap segment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "pci/backend.h"
#include "pci/ctx.h"

static unsigned ctx_serial;

struct upcie_dma_ctx *upcie_dma_ctx_create(unsigned flags)
{
	struct upcie_dma_ctx *ctx;

	if (flags)
		return upcie_err_null(-EINVAL,
				      "upcie_dma_ctx_create: flags %#x are not known to this "
				      "libupcie; pass 0",
				      flags);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return upcie_err_null(-ENOMEM, "out of memory for a DMA context");
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->refs = 1;
	snprintf(ctx->name, sizeof(ctx->name), "DMA context %u",
		 __atomic_add_fetch(&ctx_serial, 1, __ATOMIC_RELAXED));
	return ctx;
}

/* Say which unmaps failed, once per range; called with the lock held. */
static void tell_stuck(struct upcie_dma_ctx *ctx, const char *when)
{
	if (ctx->nstuck == ctx->stuck_told)
		return;
	ctx->stuck_told = ctx->nstuck;
	upcie_warn("%s %s: %zu bytes in %u ranges stayed mapped for its devices because their "
		   "unmap failed (see the error logged then); their IOVAs are not reused, and "
		   "the memory stays pinned until the last device of the context closes",
		   ctx->name, when, ctx->stuck, ctx->nstuck);
}

static void ctx_free(struct upcie_dma_ctx *ctx)
{
	tell_stuck(ctx, "freed");
	while (ctx->maps) {
		struct upcie_dma_ctx_map *n = ctx->maps->next;

		free(ctx->maps);
		ctx->maps = n;
	}
	if (ctx->vfio)
		upcie_vfio_space_free(ctx->vfio);
	free(ctx->devs);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

/* Drop a reference; the caller does not hold the lock. The put that takes
 * the count to 0 frees: every reference is counted under the lock, so
 * nobody else can hold or wait for it then. */
static void ctx_put(struct upcie_dma_ctx *ctx)
{
	unsigned left;

	pthread_mutex_lock(&ctx->lock);
	left = --ctx->refs;
	pthread_mutex_unlock(&ctx->lock);
	if (!left)
		ctx_free(ctx);
}

void upcie_dma_ctx_destroy(struct upcie_dma_ctx *ctx)
{
	if (!ctx)
		return;
	pthread_mutex_lock(&ctx->lock);
	tell_stuck(ctx, "destroyed");
	pthread_mutex_unlock(&ctx->lock);
	ctx_put(ctx);
}

void upcie_dma_ctx_info(const struct upcie_dma_ctx *ctx, struct upcie_dma_ctx_info *info)
{
	struct upcie_dma_ctx *m = (struct upcie_dma_ctx *)ctx;

	memset(info, 0, sizeof(*info));
	if (!ctx)
		return;
	pthread_mutex_lock(&m->lock);
	info->backend = (int)ctx->backend;
	info->iommu = ctx->vfio ? upcie_vfio_space_iommu(ctx->vfio) : NULL;
	info->devices = ctx->ndevs;
	info->heaps = ctx->heaps;
	info->mapped = ctx->mapped;
	info->unmap_failed = ctx->stuck;
	pthread_mutex_unlock(&m->lock);
}

const char *upcie_dma_ctx_name(const struct upcie_dma_ctx *ctx)
{
	return ctx->name;
}

unsigned upcie_dma_ctx_caps(const struct upcie_dma_ctx *ctx)
{
	return __atomic_load_n(&ctx->dma_caps, __ATOMIC_ACQUIRE);
}

enum upcie_pci_backend upcie_dma_ctx_backend(const struct upcie_dma_ctx *ctx)
{
	return __atomic_load_n(&ctx->backend, __ATOMIC_ACQUIRE);
}

/* The names of the devices in ctx, for a message. */
static void dev_names(const struct upcie_dma_ctx *ctx, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < ctx->ndevs && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", ctx->devs[i]->name);
}

int upcie_dma_ctx_join_begin(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev,
			     enum upcie_pci_backend backend)
{
	char names[256];
	enum upcie_pci_backend cur;
	int rc;

	pthread_mutex_lock(&ctx->lock);
	/* A vfio space outlives a first vfio open that failed after making it:
	 * the context stays vfio's. */
	cur = ctx->vfio ? UPCIE_PCI_BACKEND_VFIO : ctx->backend;
	if (cur == UPCIE_PCI_BACKEND_AUTO || cur == backend) {
		ctx->refs++; /* the open's, until join_end */
		return 0;
	}
	/* The message reads ctx: written before the lock goes. */
	dev_names(ctx, names, sizeof(names));
	rc = upcie_err(-EINVAL,
		       "%s runs on the %s backend, but %s holds %s devices (%s) and memory "
		       "mapped for them; one DMA context serves one backend: open %s into a "
		       "context of its own, or bind it to the driver the others use",
		       dev->name, upcie_pci_backend_name(backend), ctx->name,
		       upcie_pci_backend_name(cur), names[0] ? names : "now closed", dev->name);
	pthread_mutex_unlock(&ctx->lock);
	return rc;
}

/* Give dev every mapping made so far (sim: its model checks DMA against
 * its own list). Undone on failure. */
static int replay_maps(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev)
{
	int rc = 0;

	if (dev->backend != UPCIE_PCI_BACKEND_SIM)
		return 0;
	for (struct upcie_dma_ctx_map *m = ctx->maps; m; m = m->next) {
		if (m->stuck)
			continue;
		rc = dev->ops->dma_map(dev, m->va, m->len, m->len, NULL);
		if (rc) {
			for (struct upcie_dma_ctx_map *u = ctx->maps; u != m; u = u->next)
				if (!u->stuck)
					dev->ops->dma_unmap(dev, u->va, u->len, u->len, NULL);
			return rc;
		}
	}
	return 0;
}

int upcie_dma_ctx_join_end(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev, int rc)
{
	bool opened = !rc;

	if (!rc && ctx->ndevs == ctx->capdevs) {
		unsigned n = ctx->capdevs ? ctx->capdevs * 2 : 4;
		struct upcie_pci_dev **d = realloc(ctx->devs, n * sizeof(*d));

		if (d) {
			ctx->devs = d;
			ctx->capdevs = n;
		} else {
			rc = upcie_err(-ENOMEM, "%s: out of memory joining %s", dev->name,
				       ctx->name);
		}
	}
	if (!rc)
		rc = replay_maps(ctx, dev);
	if (!rc) {
		/* The open's reference becomes the device's. */
		ctx->devs[ctx->ndevs++] = dev;
		__atomic_store_n(&ctx->dma_caps, dev->dma_caps, __ATOMIC_RELEASE);
		__atomic_store_n(&ctx->backend, dev->backend, __ATOMIC_RELEASE);
		dev->dma_ctx = ctx;
		upcie_debug("%s joined %s (%u devices)", dev->name, ctx->name, ctx->ndevs);
		pthread_mutex_unlock(&ctx->lock);
		return 0;
	}
	/* Opened but not joined: closed again while the lock still keeps
	 * the context's space as the open left it. */
	if (opened)
		dev->ops->close(dev);
	pthread_mutex_unlock(&ctx->lock);
	ctx_put(ctx);
	return rc;
}

void upcie_dma_ctx_leave_begin(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev)
{
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < ctx->ndevs; i++) {
		if (ctx->devs[i] != dev)
			continue;
		ctx->devs[i] = ctx->devs[--ctx->ndevs];
		break;
	}
	/* A model that stays (the caller's sim) must not keep reaching memory
	 * the context may free once this device is gone. */
	if (dev->backend == UPCIE_PCI_BACKEND_SIM)
		for (struct upcie_dma_ctx_map *m = ctx->maps; m; m = m->next)
			if (!m->stuck)
				dev->ops->dma_unmap(dev, m->va, m->len, m->len, NULL);
	/* Nothing mapped and nobody left: another backend may use it next. */
	if (!ctx->ndevs && !ctx->maps && !ctx->vfio)
		__atomic_store_n(&ctx->backend, UPCIE_PCI_BACKEND_AUTO, __ATOMIC_RELEASE);
	upcie_debug("%s left %s (%u devices)", dev->name, ctx->name, ctx->ndevs);
}

void upcie_dma_ctx_leave_end(struct upcie_dma_ctx *ctx)
{
	pthread_mutex_unlock(&ctx->lock);
	ctx_put(ctx);
}

int upcie_dma_ctx_heap_get(struct upcie_dma_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	if (!ctx->ndevs) {
		pthread_mutex_unlock(&ctx->lock);
		return upcie_err(-ENODEV,
				 "%s has no device open: a heap is mapped through the devices of "
				 "its context; open one into it first (upcie_pci_opts.dma_ctx)",
				 ctx->name);
	}
	ctx->refs++;
	ctx->heaps++;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

void upcie_dma_ctx_heap_put(struct upcie_dma_ctx *ctx)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->heaps--;
	pthread_mutex_unlock(&ctx->lock);
	ctx_put(ctx);
}

int upcie_dma_ctx_map(struct upcie_dma_ctx *ctx, void *va, size_t len, size_t page_size,
		      uint64_t *bus)
{
	struct upcie_dma_ctx_map *m;
	unsigned i = 0;
	int rc;

	/* The same checks as a map of one device's (upcie_pci_dma_map()). */
	rc = upcie_pci_dma_map_check(ctx->name, va, len, page_size);
	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return upcie_err(-ENOMEM, "out of memory mapping %zu bytes in a DMA context", len);
	pthread_mutex_lock(&ctx->lock);
	if (!ctx->ndevs) {
		rc = upcie_err(-ENODEV,
			       "%s has no device open to map %zu bytes through; open one into it "
			       "first",
			       ctx->name, len);
		goto out;
	}
	switch (ctx->backend) {
	case UPCIE_PCI_BACKEND_VFIO:
		rc = upcie_vfio_space_map(ctx, va, len, page_size, bus);
		break;
	case UPCIE_PCI_BACKEND_SIM:
		/* Every model of the context may reach it. */
		for (i = 0; !rc && i < ctx->ndevs; i++)
			rc = ctx->devs[i]->ops->dma_map(ctx->devs[i], va, len, page_size, bus);
		if (rc)
			for (unsigned j = 0; j + 1 < i; j++)
				ctx->devs[j]->ops->dma_unmap(ctx->devs[j], va, len, page_size, bus);
		break;
	default:
		/* uio: physical addresses, the same for every device. */
		rc = ctx->devs[0]->ops->dma_map(ctx->devs[0], va, len, page_size, bus);
		break;
	}
	if (rc)
		goto out;
	m->va = va;
	m->len = len;
	m->page_size = page_size;
	m->bus0 = bus[0];
	m->next = ctx->maps;
	ctx->maps = m;
	ctx->mapped += len;
	m = NULL;
out:
	pthread_mutex_unlock(&ctx->lock);
	free(m);
	return rc;
}

int upcie_dma_ctx_unmap(struct upcie_dma_ctx *ctx, void *va, size_t len, size_t page_size,
			const uint64_t *bus)
{
	struct upcie_dma_ctx_map **pp, *m = NULL;
	int rc = 0;

	pthread_mutex_lock(&ctx->lock);
	/* A stuck range of the same va (memory mapped again there) is not it. */
	for (pp = &ctx->maps; *pp; pp = &(*pp)->next) {
		if ((*pp)->va == va && (*pp)->len == len && !(*pp)->stuck) {
			m = *pp;
			break;
		}
	}
	if (!m) {
		rc = upcie_err(-EINVAL, "%s: %p+%zu is not mapped in it", ctx->name, va, len);
		pthread_mutex_unlock(&ctx->lock);
		return rc;
	}
	switch (ctx->backend) {
	case UPCIE_PCI_BACKEND_VFIO:
		rc = upcie_vfio_space_unmap(ctx, m->bus0, len);
		break;
	case UPCIE_PCI_BACKEND_SIM:
		for (unsigned i = 0; i < ctx->ndevs; i++) {
			int r = ctx->devs[i]->ops->dma_unmap(ctx->devs[i], va, len, page_size, bus);

			if (r && !rc)
				rc = r;
		}
		break;
	default:
		break; /* uio: physical addresses need no teardown */
	}
	if (rc) {
		/* The backend logged why; the range counts as mapped until the
		 * context goes, and destroy says so. */
		m->stuck = true;
		ctx->stuck += len;
		ctx->nstuck++;
		pthread_mutex_unlock(&ctx->lock);
		return rc;
	}
	*pp = m->next;
	ctx->mapped -= len;
	if (!ctx->ndevs && !ctx->maps && !ctx->vfio)
		__atomic_store_n(&ctx->backend, UPCIE_PCI_BACKEND_AUTO, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ctx->lock);
	free(m);
	return 0;
}

/* type1: the container lost every mapping with its last group, the stuck
 * ones too. Called with the lock held. */
void upcie_dma_ctx_forget_stuck(struct upcie_dma_ctx *ctx)
{
	for (struct upcie_dma_ctx_map **pp = &ctx->maps; *pp;) {
		struct upcie_dma_ctx_map *m = *pp;

		if (!m->stuck) {
			pp = &m->next;
			continue;
		}
		*pp = m->next;
		ctx->mapped -= m->len;
		ctx->stuck -= m->len;
		ctx->nstuck--;
		free(m);
	}
	ctx->stuck_told = ctx->nstuck < ctx->stuck_told ? ctx->nstuck : ctx->stuck_told;
}

struct upcie_dma_ctx *upcie_pci_dma_ctx(const struct upcie_pci_dev *dev)
{
	return dev ? dev->dma_ctx : NULL;
}
