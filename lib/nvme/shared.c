/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared controllers: a process-wide registry of controllers opened by
 * name, each with its device handle and a growable DMA heap, counted by
 * reference. Threads of an engine call upcie_nvme_ctrl_get() with the same
 * name and get one bring-up, one heap and one PCI handle; the last
 * upcie_nvme_ctrl_put() closes all three.
 *
 * The registry lock is held across the open, so two threads that ask for
 * the same device at once do not both reset it. A controller is tied to
 * the process that opened it (its DMA mappings and device handle are);
 * a get from a forked child is refused rather than sharing them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upcie/dma.h>
#include <upcie/engine.h>
#include <upcie/pci.h>

#include "core/log.h"
#include "nvme/nvme.h"

#define DEFAULT_HEAP (16u << 20)

/* The heap of a DMA context, shared by the controllers got with it. */
struct shared_heap {
	struct upcie_dma_ctx *ctx;
	struct upcie_dma_heap *heap;
	unsigned refs;
	struct shared_heap *next;
};

struct shared_ctrl {
	char key[64];
	pid_t pid;
	unsigned refs;
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct shared_heap *ctx_heap; /* the context's heap (heap is its heap), or NULL */
	struct upcie_nvme_ctrl *ctrl;
	struct shared_ctrl *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_ctrl *registry;
static struct shared_heap *ctx_heaps;

/* The context's heap: made on first use (dev is in ctx), counted. */
static struct shared_heap *ctx_heap_get(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev,
					const struct upcie_nvme_get_opts *o)
{
	struct shared_heap *sh;

	for (sh = ctx_heaps; sh; sh = sh->next)
		if (sh->ctx == ctx) {
			sh->refs++;
			return sh;
		}
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return upcie_err_null(-ENOMEM, "out of memory for a shared heap");
	sh->heap = upcie_dma_heap_create(dev, o->heap_size ? o->heap_size : DEFAULT_HEAP,
					 o->heap_flags | UPCIE_DMA_GROW);
	if (!sh->heap) {
		int err = errno;

		free(sh);
		errno = err;
		return NULL;
	}
	sh->ctx = ctx;
	sh->refs = 1;
	sh->next = ctx_heaps;
	ctx_heaps = sh;
	return sh;
}

static void ctx_heap_put(struct shared_heap *sh)
{
	struct shared_heap **pp;

	if (!sh || --sh->refs)
		return;
	for (pp = &ctx_heaps; *pp != sh; pp = &(*pp)->next)
		;
	*pp = sh->next;
	upcie_dma_heap_destroy(sh->heap);
	free(sh);
}

/* One spelling per device: "dddd:bb:dd.f" for addresses, else the name. */
static int canonical(const char *name, char *key, size_t len)
{
	struct upcie_pci_addr a;

	if (!upcie_pci_addr_parse(name, &a))
		return upcie_pci_addr_format(&a, key, len) < 0 ? -EINVAL : 0;
	if (strlen(name) >= len)
		return -EINVAL;
	strcpy(key, name);
	return 0;
}

static struct shared_ctrl *find_ctrl(const struct upcie_nvme_ctrl *ctrl, struct shared_ctrl ***pp)
{
	for (struct shared_ctrl **p = &registry; *p; p = &(*p)->next) {
		if ((*p)->ctrl == ctrl) {
			if (pp)
				*pp = p;
			return *p;
		}
	}
	return NULL;
}

static struct shared_ctrl *open_shared(const char *name, const char *key,
				       const struct upcie_nvme_get_opts *o)
{
	struct shared_ctrl *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return upcie_err_null(-ENOMEM, "out of memory for a shared controller");
	strcpy(s->key, key);
	s->pid = getpid();
	if (o->dma_ctx) {
		struct upcie_pci_opts po = {0};

		if (o->pci)
			po = *o->pci;
		po.dma_ctx = o->dma_ctx;
		s->dev = upcie_pci_open(name, &po);
	} else {
		s->dev = upcie_pci_open(name, o->pci);
	}
	if (!s->dev)
		goto err;
	if (o->dma_ctx) {
		s->ctx_heap = ctx_heap_get(o->dma_ctx, s->dev, o);
		s->heap = s->ctx_heap ? s->ctx_heap->heap : NULL;
	} else {
		s->heap = upcie_dma_heap_create(s->dev, o->heap_size ? o->heap_size : DEFAULT_HEAP,
						o->heap_flags | UPCIE_DMA_GROW);
	}
	if (!s->heap)
		goto err;
	s->ctrl = upcie_nvme_ctrl_open(s->dev, s->heap, &o->ctrl);
	if (!s->ctrl)
		goto err;
	s->refs = 1;
	return s;
err:
	err = errno;
	if (s->ctx_heap)
		ctx_heap_put(s->ctx_heap);
	else
		upcie_dma_heap_destroy(s->heap);
	upcie_pci_close(s->dev);
	free(s);
	errno = err;
	return NULL;
}

struct upcie_nvme_ctrl *upcie_nvme_ctrl_get(const char *name,
					    const struct upcie_nvme_get_opts *opts)
{
	struct upcie_nvme_get_opts o = {0};
	struct shared_ctrl *s;
	char key[64];

	if (!name || !*name)
		return upcie_err_null(-EINVAL, "upcie_nvme_ctrl_get: no device name; give a PCI "
					       "address (0000:01:00.0) or \"sim\"");
	if (opts) {
		size_t n = opts->size && opts->size < sizeof(o) ? opts->size : sizeof(o);
		memcpy(&o, opts, n);
	}
	if (canonical(name, key, sizeof(key)))
		return upcie_err_null(-EINVAL, "upcie_nvme_ctrl_get: device name '%s' is too long",
				      name);

	pthread_mutex_lock(&registry_lock);
	for (s = registry; s; s = s->next)
		if (!strcmp(s->key, key))
			break;
	if (s && s->pid != getpid()) {
		pthread_mutex_unlock(&registry_lock);
		return upcie_err_null(-EBUSY,
				      "%s: the controller was opened by process %d before this one "
				      "was forked; a controller cannot be shared across processes "
				      "(use threads, e.g. fio --thread)",
				      key, (int)s->pid);
	}
	if (s && o.dma_ctx && upcie_pci_dma_ctx(s->dev) != o.dma_ctx) {
		pthread_mutex_unlock(&registry_lock);
		return upcie_err_null(
		    -EINVAL,
		    "%s is open already, in %s DMA context than the one asked for; "
		    "its heap cannot serve the buffers of that one: get every "
		    "controller of a job with the same context",
		    key, upcie_pci_dma_ctx(s->dev) ? "another" : "no");
	}
	if (s) {
		s->refs++;
	} else {
		s = open_shared(name, key, &o);
		if (s) {
			s->next = registry;
			registry = s;
		}
	}
	pthread_mutex_unlock(&registry_lock);
	return s ? s->ctrl : NULL;
}

int upcie_nvme_ctrl_put(struct upcie_nvme_ctrl *ctrl)
{
	struct shared_ctrl *s, **pp = NULL;
	int rc = 0;

	if (!ctrl)
		return 0;
	pthread_mutex_lock(&registry_lock);
	s = find_ctrl(ctrl, &pp);
	if (!s) {
		pthread_mutex_unlock(&registry_lock);
		return upcie_err(-EINVAL,
				 "upcie_nvme_ctrl_put: %p is not a shared controller "
				 "(close it with upcie_nvme_ctrl_close)",
				 (void *)ctrl);
	}
	if (--s->refs) {
		pthread_mutex_unlock(&registry_lock);
		return 0;
	}
	/* Closed under the lock: a get for the same device meanwhile must not
	 * reset it while this shutdown runs. */
	*pp = s->next;
	rc = upcie_nvme_ctrl_close(s->ctrl);
	/* A context's heap goes with the last controller on it (before that
	 * controller's device: it unmaps through the context's devices). */
	if (s->ctx_heap)
		ctx_heap_put(s->ctx_heap);
	else
		upcie_dma_heap_destroy(s->heap);
	upcie_pci_close(s->dev);
	pthread_mutex_unlock(&registry_lock);
	free(s);
	return rc;
}

unsigned upcie_nvme_ctrl_refs(const struct upcie_nvme_ctrl *ctrl)
{
	struct shared_ctrl *s;
	unsigned refs;

	pthread_mutex_lock(&registry_lock);
	s = find_ctrl(ctrl, NULL);
	refs = s ? s->refs : 0;
	pthread_mutex_unlock(&registry_lock);
	return refs;
}
