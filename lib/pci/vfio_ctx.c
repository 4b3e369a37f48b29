/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio in a DMA context: one IOVA space for several devices.
 *
 *   type1    one container: the first device opens it and sets its IOMMU
 *            type; each later device's group joins it
 *            (VFIO_GROUP_SET_CONTAINER, which attaches the group to the
 *            container's IOMMU domain). A device's close detaches only its
 *            group. When the last group leaves, the kernel drops the
 *            container's IOMMU and every mapping with it; the next device
 *            to join sets the type again and the context's mappings are
 *            made again at the bus addresses they had.
 *   iommufd  one iommufd and one IOAS: the first device allocates it, every
 *            device's cdev is bound to the iommufd and attached to the IOAS.
 *            A device's close detaches its cdev; the IOAS and its mappings
 *            stay until the context is freed.
 *   physical vfio's no-IOMMU mode: nothing is translated, bus addresses are
 *            physical (phys.c), the same for every device, as under uio.
 *            Each device keeps its own no-IOMMU container (they map
 *            nothing); the space only says the context is a physical one,
 *            so its heaps are hugepages read through pagemap. A device with
 *            an IOMMU (type1, iommufd) cannot join such a context, nor a
 *            no-IOMMU device one that maps IOVAs: ENOTSUP, saying why
 *            (upcie_vfio_ctx_flavour()).
 *
 * The space (container or iommufd, the IOVA windows and the bump
 * allocator) is a struct upcie_vfio of its own that no device owns, so
 * vfio.c's map and unmap work on it unchanged. A window shrinks when a
 * device with more reserved regions joins: the ranges are read again at
 * each join (the kernel refuses a join whose reserved regions collide
 * with what is mapped).
 *
 * Devices of one IOMMU group (the functions of one slot, devices behind
 * one PCI bridge): type1 opens a group once, so the context keeps each
 * group's file while a device of it is open, and a later device of the
 * group gets its device fd through that file (which is in the container
 * already). Outside a context the second such device is refused (EBUSY).
 *
 * A device fenced by the kernel's request (vfio_req.c) loses bus
 * mastering, and its close detaches it: neither touches the space.
 *
 * Everything here runs under the context's lock (ctx.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "pci/ctx.h"
#include "pci/vfio.h"

#define MAX_GROUPS 64

/* type1: an IOMMU group attached to the container, while devices of it are. */
struct space_group {
	int group;
	int fd; /* a duplicate of the first device's group file */
	unsigned devices;
};

struct upcie_vfio_space {
	struct upcie_vfio v;	    /* the context's fds, windows and allocator */
	struct upcie_pci_dev named; /* only its name (the context's), for messages */
	unsigned attached;	    /* devices attached now */
	struct space_group groups[MAX_GROUPS];
	unsigned ngroups;
};

static struct space_group *group_of(struct upcie_vfio_space *s, int group)
{
	for (unsigned i = 0; s && i < s->ngroups; i++)
		if (s->groups[i].group == group)
			return &s->groups[i];
	return NULL;
}

/* After a type1 open: count the device in its group (the first one of it
 * keeps a duplicate of the group file). */
static int group_hold(struct upcie_pci_dev *dev, struct upcie_vfio_space *s,
		      const struct upcie_vfio *p)
{
	struct space_group *g = group_of(s, p->group);
	int fd;

	if (s->v.iommu != &upcie_vfio_type1_ops)
		return 0;
	if (g) {
		g->devices++;
		return 0;
	}
	if (s->ngroups == MAX_GROUPS)
		return upcie_err(-ENOSPC, "%s: %s holds %u IOMMU groups already, its most",
				 dev->name, s->named.name, MAX_GROUPS);
	fd = fcntl(p->group_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return upcie_err(-errno, "%s: cannot duplicate the IOMMU group file: %s", dev->name,
				 strerror(errno));
	s->groups[s->ngroups++] = (struct space_group){p->group, fd, 1};
	return 0;
}

static void space_windows(struct upcie_vfio_space *s, const struct upcie_vfio *p)
{
	memcpy(s->v.iova, p->iova, sizeof(s->v.iova));
	s->v.niova = p->niova;
	s->v.pgsizes = p->pgsizes;
}

/* type1 after its last group left: the container has lost its mappings
 * (those whose unmap had failed too); make the context's again, at the
 * same IOVAs. */
static int replay(struct upcie_dma_ctx *ctx, struct upcie_pci_dev *dev, struct upcie_vfio_space *s)
{
	upcie_dma_ctx_forget_stuck(ctx);
	for (struct upcie_dma_ctx_map *m = ctx->maps; m; m = m->next) {
		int rc = s->v.iommu->map(dev, &s->v, m->va, m->len, m->bus0);

		if (rc)
			return upcie_err(rc,
					 "%s: cannot map %s's memory again (%p+%zu at %#llx) after "
					 "its devices all closed: %s",
					 dev->name, ctx->name, m->va, m->len,
					 (unsigned long long)m->bus0, upcie_errmsg());
	}
	return 0;
}

int upcie_vfio_ctx_flavour(const char *dev, const char *ctx,
			   const struct upcie_vfio_iommu_ops *have,
			   const struct upcie_vfio_iommu_ops *iommu)
{
	if (!have || have->physical == iommu->physical)
		return 0;
	if (iommu->physical)
		return upcie_err(-ENOTSUP,
				 "%s is in vfio's no-IOMMU mode (physical bus addresses), but %s "
				 "maps its memory at IOVAs through the %s IOMMU, which this device "
				 "cannot reach; one context shares one kind of address: open it "
				 "into a context of its own (or without one)",
				 dev, ctx, have->name);
	return upcie_err(-ENOTSUP,
			 "%s sits behind an IOMMU (%s), but %s holds devices in vfio's "
			 "no-IOMMU mode and gives its memory physical bus addresses, which the "
			 "IOMMU would not let this device reach; one context shares one kind of "
			 "address: open it into a context of its own (or without one)",
			 dev, iommu->name, ctx);
}

static struct upcie_vfio_space *space_new(struct upcie_dma_ctx *ctx, const struct upcie_vfio *p)
{
	struct upcie_vfio_space *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->v.iommu = p->iommu;
	s->v.container_fd = p->container_fd;
	s->v.iommufd = p->iommufd;
	s->v.ioas_id = p->ioas_id;
	s->v.group_fd = s->v.device_fd = s->v.req_fd = s->v.stop_fd = s->v.gone_fd = -1;
	s->v.iova_next = IOVA_MIN;
	if (p->root) {
		snprintf(s->v.root_buf, sizeof(s->v.root_buf), "%s", p->root);
		s->v.root = s->v.root_buf;
	}
	snprintf(s->named.name, sizeof(s->named.name), "%s", ctx->name);
	ctx->vfio = s;
	return s;
}

/* No-IOMMU mode: the device opens its own container as outside a context;
 * the space marks the context physical (with the first device). */
static int attach_physical(struct upcie_pci_dev *dev, struct upcie_vfio *p,
			   struct upcie_dma_ctx *ctx)
{
	struct upcie_vfio_space *s = ctx->vfio;
	int rc = p->iommu->open(dev, p);

	if (rc)
		return rc;
	if (!s) {
		/* The space holds no fd of the device's. */
		int cfd = p->container_fd;

		p->container_fd = -1;
		s = space_new(ctx, p);
		p->container_fd = cfd;
		if (!s)
			return upcie_err(-ENOMEM, "%s: out of memory for %s", dev->name, ctx->name);
	}
	s->attached++;
	p->space = s;
	upcie_debug("%s: in %s, physical bus addresses (vfio no-IOMMU mode, %u devices)", dev->name,
		    ctx->name, s->attached);
	return 0;
}

int upcie_vfio_ctx_attach(struct upcie_pci_dev *dev, struct upcie_vfio *p,
			  struct upcie_dma_ctx *ctx, enum upcie_pci_vfio_iommu want)
{
	struct upcie_vfio_space *s = ctx->vfio;
	bool fresh;
	int rc;

	rc = upcie_vfio_ctx_flavour(dev->name, ctx->name, s ? s->v.iommu : NULL, p->iommu);
	if (rc)
		return rc;
	if (p->iommu->physical)
		return attach_physical(dev, p, ctx);
	if (s) {
		if (want != UPCIE_PCI_VFIO_IOMMU_AUTO && p->iommu != s->v.iommu)
			return upcie_err(-EINVAL,
					 "%s: asked for the %s IOMMU interface, but %s uses %s; "
					 "one context has one: leave upcie_pci_opts.vfio_iommu at "
					 "AUTO, or open it into another context",
					 dev->name, p->iommu->name, ctx->name, s->v.iommu->name);
		p->iommu = s->v.iommu;
		p->container_fd = s->v.container_fd;
		p->iommufd = s->v.iommufd;
		p->ioas_id = s->v.ioas_id;
		p->iommu_set = s->v.iommu == &upcie_vfio_iommufd_ops || s->attached > 0;
		/* Its group is in the container already: the device fd comes
		 * through that group's file. */
		if (group_of(s, p->group)) {
			p->group_fd = fcntl(group_of(s, p->group)->fd, F_DUPFD_CLOEXEC, 0);
			if (p->group_fd < 0)
				return upcie_err(-errno,
						 "%s: cannot duplicate IOMMU group %d's file: %s",
						 dev->name, p->group, strerror(errno));
		}
	}
	/* Joining: release leaves the context's fds alone from here on. The
	 * first device opens them as its own and hands them over below. */
	fresh = !s;
	p->shared_iommu = !fresh;
	rc = p->iommu->open(dev, p);
	if (rc)
		return rc;
	if (fresh) {
		s = space_new(ctx, p);
		if (!s)
			return upcie_err(-ENOMEM, "%s: out of memory for %s", dev->name, ctx->name);
		p->shared_iommu = true;
	} else if (s->v.iommu == &upcie_vfio_type1_ops && !s->attached) {
		rc = replay(ctx, dev, s);
		if (rc)
			return rc;
	}
	rc = group_hold(dev, s, p);
	if (rc)
		return rc;
	space_windows(s, p);
	s->attached++;
	p->space = s;
	upcie_debug("%s: attached to %s's %s (%u devices)", dev->name, ctx->name, s->v.iommu->name,
		    s->attached);
	return 0;
}

void upcie_vfio_ctx_detach(struct upcie_vfio *p)
{
	/* The fds are the context's: the IOMMU half's close must not close
	 * them (type1 closes the group, which detaches it; iommufd: the
	 * device fd, closed before, detached the cdev). */
	struct upcie_vfio_space *s = p->space;
	struct space_group *g = s ? group_of(s, p->group) : NULL;

	/* Physical: the device's fds are its own, its close closes them. */
	if (s && s->v.iommu->physical) {
		s->attached--;
		p->space = NULL;
		return;
	}
	p->container_fd = -1;
	p->iommufd = -1;
	/* The group's last device: the group file goes (with the device's own,
	 * closed next), which detaches the group from the container. */
	if (g && !--g->devices) {
		close(g->fd);
		*g = s->groups[--s->ngroups];
	}
	if (s)
		s->attached--;
	p->space = NULL;
}

int upcie_vfio_space_map(struct upcie_dma_ctx *ctx, void *va, size_t len, size_t page_size,
			 uint64_t *bus)
{
	struct upcie_vfio_space *s = ctx->vfio;

	if (!s || (s->v.iommu == &upcie_vfio_type1_ops && !s->attached))
		return upcie_err(-ENODEV, "%s: no device attached to map %zu bytes through",
				 ctx->name, len);
	return upcie_vfio_space_map_in(&s->named, &s->v, va, len, page_size, bus);
}

int upcie_vfio_space_unmap(struct upcie_dma_ctx *ctx, uint64_t iova, size_t len)
{
	struct upcie_vfio_space *s = ctx->vfio;

	if (!s)
		return 0;
	/* type1 with no group left: the kernel dropped every mapping already. */
	if (s->v.iommu == &upcie_vfio_type1_ops && !s->attached) {
		upcie_vfio_iova_release(&s->v, iova, len, true);
		return 0;
	}
	return upcie_vfio_space_unmap_in(&s->named, &s->v, iova, len);
}

void upcie_vfio_space_free(struct upcie_vfio_space *s)
{
	/* Every device detached before: closing these drops what is left. */
	if (s->v.container_fd >= 0)
		close(s->v.container_fd);
	if (s->v.iommufd >= 0)
		close(s->v.iommufd);
	free(s);
}

const char *upcie_vfio_space_iommu(const struct upcie_vfio_space *s)
{
	return s->v.iommu->name;
}
