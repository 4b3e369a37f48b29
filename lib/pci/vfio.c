/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vfio backend: a device bound to vfio-pci, DMA through the IOMMU.
 *
 * This half handles the device: BARs and config space are regions of the
 * VFIO device fd (VFIO_DEVICE_GET_REGION_INFO, mmap, pread/pwrite), and
 * the IOVA space. The container/IOMMU half sits behind struct
 * vfio_iommu_ops (pci_vfio_type1.c), so that an iommufd variant
 * (/dev/iommu, cdev device files) can be added beside the type1 one.
 *
 * DMA: each mapping gets a fresh IOVA range from a bump allocator inside
 * the windows the IOMMU reports, and the whole [va, len) is mapped at once,
 * so bus addresses are contiguous across pages (UPCIE_PCI_DMA_BUS_CONTIGUOUS)
 * whatever the page size: hugepages are welcome but not needed. In vfio's
 * no-IOMMU mode (vfio_noiommu.c, opt-in) there is no IOMMU to map into:
 * bus addresses are physical, one per hugepage, as under uio (phys.c).
 *
 * The kernel asking for the device back (hot-unplug, unbind): the device
 * request interrupt and its watcher are in vfio_req.c; upcie_pci_check()
 * answers -ENODEV once it came, and upcie_pci_gone_fd() turns readable.
 *
 * Interrupts: MSI-X, one eventfd per vector (VFIO_DEVICE_SET_IRQS). The
 * vectors live in the function's MSI-X table, which an NVMe controller
 * reset (CC.EN to 0 and back) leaves alone, so they survive it; only a
 * function reset would need them set again, and this backend does none.
 *
 * Crash safety: the kernel releases the device when the process dies
 * (vfio-pci clears bus mastering and resets the function); the DMA pages
 * stay pinned until then.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "sysfs.h"

#include "core/log.h"
#include "core/page.h"
#include "pci/vfio.h"

#define VFIO_DRIVER "vfio-pci"

static struct upcie_vfio *priv_of(struct upcie_pci_dev *dev)
{
	return dev->priv;
}

/* ------------------------------------------------------------------------ */
/* Device regions: BARs and config space.                                   */

static int region_info(struct upcie_pci_dev *dev, struct upcie_vfio *p, unsigned index,
		       struct upcie_vfio_region *r)
{
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = index};

	if (ioctl(p->device_fd, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return upcie_err(-errno, "%s: VFIO_DEVICE_GET_REGION_INFO(%u): %s", dev->name,
				 index, strerror(errno));
	r->offset = ri.offset;
	r->size = ri.size;
	r->flags = ri.flags;
	r->present = true;
	return 0;
}

/*
 * Sparse mmap areas of a region (VFIO_REGION_INFO_CAP_SPARSE_MMAP), e.g.
 * when the MSI-X table must stay trapped. Returns the number of areas
 * written to 'areas', 0 when the whole region may be mapped.
 */
static int sparse_areas(struct upcie_pci_dev *dev, struct upcie_vfio *p, unsigned index,
			struct vfio_region_sparse_mmap_area *areas, unsigned max)
{
	struct vfio_region_info *ri;
	size_t sz = sizeof(*ri);
	int n = 0;

	ri = calloc(1, sz);
	if (!ri)
		return upcie_err(-ENOMEM, "%s: out of memory", dev->name);
	ri->argsz = (uint32_t)sz;
	ri->index = index;
	if (ioctl(p->device_fd, VFIO_DEVICE_GET_REGION_INFO, ri) ||
	    !(ri->flags & VFIO_REGION_INFO_FLAG_CAPS) || ri->argsz <= sz) {
		free(ri);
		return 0;
	}
	sz = ri->argsz;
	free(ri);
	ri = calloc(1, sz);
	if (!ri)
		return upcie_err(-ENOMEM, "%s: out of memory", dev->name);
	ri->argsz = (uint32_t)sz;
	ri->index = index;
	if (ioctl(p->device_fd, VFIO_DEVICE_GET_REGION_INFO, ri)) {
		free(ri);
		return 0;
	}
	for (uint32_t off = ri->cap_offset, guard = 0;
	     off && off + sizeof(struct vfio_info_cap_header) <= sz && guard < 64; guard++) {
		struct vfio_info_cap_header *h = (void *)((char *)ri + off);

		if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
			struct vfio_region_info_cap_sparse_mmap *s = (void *)h;

			for (uint32_t i = 0; i < s->nr_areas && (unsigned)n < max; i++) {
				if (off + sizeof(*s) + (i + 1) * sizeof(s->areas[0]) > sz)
					break;
				areas[n++] = s->areas[i];
			}
			break;
		}
		off = h->next;
	}
	free(ri);
	return n;
}

static int vfio_bar_map(struct upcie_pci_dev *dev, unsigned bar, void **va, size_t *len)
{
	struct upcie_vfio *p = priv_of(dev);
	struct upcie_vfio_region *r = &p->bars[bar];
	struct vfio_region_sparse_mmap_area areas[8];
	size_t maplen;
	void *m;
	int n;

	if (!r->present || !r->size)
		return upcie_err(-EINVAL, "%s: BAR %u is not implemented by the device", dev->name,
				 bar);
	if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP))
		return upcie_err(-EINVAL,
				 "%s: BAR %u cannot be mmapped through vfio (an I/O port BAR, or "
				 "the kernel traps it)",
				 dev->name, bar);
	if (r->size > SIZE_MAX)
		return upcie_err(-EINVAL, "%s: BAR %u is too large to map", dev->name, bar);
	maplen = upcie_host_page_align((size_t)r->size);

	n = sparse_areas(dev, p, VFIO_PCI_BAR0_REGION_INDEX + bar, areas, 8);
	if (n < 0)
		return n;
	if (n == 0) {
		m = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, p->device_fd,
			 (off_t)r->offset);
		if (m == MAP_FAILED)
			return upcie_err(-errno, "%s: cannot mmap BAR %u (%zu bytes): %s",
					 dev->name, bar, maplen, strerror(errno));
		*va = m;
		*len = maplen;
		return 0;
	}
	/* Only parts may be mapped (e.g. not the MSI-X table): reserve the
	 * whole BAR inaccessible and map the allowed areas over it. Registers
	 * the library uses (NVMe: 0..0x1000 and the doorbells) are in them. */
	m = mmap(NULL, maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return upcie_err(-errno, "%s: cannot reserve %zu bytes for BAR %u: %s", dev->name,
				 maplen, bar, strerror(errno));
	for (int i = 0; i < n; i++) {
		if (!areas[i].size || areas[i].offset + areas[i].size > maplen)
			continue;
		void *a = mmap((char *)m + areas[i].offset, (size_t)areas[i].size,
			       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, p->device_fd,
			       (off_t)(r->offset + areas[i].offset));
		if (a == MAP_FAILED) {
			int err = errno;
			munmap(m, maplen);
			return upcie_err(-err, "%s: cannot mmap BAR %u area %#llx+%#llx: %s",
					 dev->name, bar, (unsigned long long)areas[i].offset,
					 (unsigned long long)areas[i].size, strerror(err));
		}
	}
	upcie_debug("%s: BAR %u mapped in %d sparse areas", dev->name, bar, n);
	*va = m;
	*len = maplen;
	return 0;
}

static int vfio_cfg_io(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len, bool write)
{
	struct upcie_vfio *p = priv_of(dev);

	if (off + len > p->config.size)
		return upcie_err(-EINVAL, "%s: config access %#x+%zu beyond the %llu-byte region",
				 dev->name, off, len, (unsigned long long)p->config.size);
	return upcie_pci_cfg_fd_io(dev, p->device_fd, p->config.offset, off, buf, len, write);
}

static int vfio_cfg_read(struct upcie_pci_dev *dev, uint32_t off, void *buf, size_t len)
{
	return vfio_cfg_io(dev, off, buf, len, false);
}

static int vfio_cfg_write(struct upcie_pci_dev *dev, uint32_t off, const void *buf, size_t len)
{
	const bool command = off <= VFIO_PCI_COMMAND && off + len > VFIO_PCI_COMMAND;
	uint8_t tmp[64];
	int rc;

	/* Once the kernel asked for the device, bus mastering stays off
	 * (vfio_req.c turned it off). */
	if (command && upcie_vfio_req_seen(priv_of(dev))) {
		if (len > sizeof(tmp))
			return upcie_err(-ENODEV,
					 "%s: the kernel asked for the device back: a %zu-byte "
					 "config write over COMMAND is refused",
					 dev->name, len);
		memcpy(tmp, buf, len);
		tmp[VFIO_PCI_COMMAND - off] &= (uint8_t)~VFIO_PCI_COMMAND_MASTER;
		buf = tmp;
	}
	rc = vfio_cfg_io(dev, off, (void *)buf, len, true);
	/* The request may have come between the test above and the write (the
	 * watcher fenced, then this wrote the old COMMAND back): fence again. */
	if (!rc && command && upcie_vfio_req_seen(priv_of(dev)))
		upcie_vfio_req_fence(priv_of(dev));
	return rc;
}

/* ------------------------------------------------------------------------ */
/* DMA: IOVA bump allocator over the reported windows.                      */

static uint64_t align_up64(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void upcie_vfio_iova_release(struct upcie_vfio *p, uint64_t iova, size_t len, bool was_mapped)
{
	if (was_mapped)
		p->mapped -= len < p->mapped ? len : p->mapped;
	/* The last range handed out can be reused at once (heap recreated). */
	if (p->iova_next == iova + len)
		p->iova_next = iova;
}

/* First fit at or above the bump pointer; 0 when the IOVA space is used up. */
static uint64_t iova_alloc(struct upcie_vfio *p, size_t len, size_t align)
{
	for (unsigned i = 0; i < p->niova; i++) {
		uint64_t s = p->iova[i].start > p->iova_next ? p->iova[i].start : p->iova_next;

		s = align_up64(s, align);
		if (s < p->iova[i].start || s > p->iova[i].end || len - 1 > p->iova[i].end - s)
			continue;
		p->iova_next = s + len;
		return s;
	}
	return 0;
}

int upcie_vfio_map_error(struct upcie_pci_dev *dev, const struct upcie_vfio *p, int err, size_t len,
			 const char *what)
{
	struct rlimit rl;

	if ((err == ENOMEM || err == EPERM) && !getrlimit(RLIMIT_MEMLOCK, &rl) &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < p->mapped + len)
		return upcie_err(-err,
				 "%s: cannot pin %zu bytes for DMA: RLIMIT_MEMLOCK is %llu bytes "
				 "and this device needs %zu locked in all; raise it (ulimit -l, "
				 "limits.conf) or run as root",
				 dev->name, len, (unsigned long long)rl.rlim_cur, p->mapped + len);
	return upcie_err(-err, "%s: %s of %zu bytes: %s", dev->name, what, len, strerror(err));
}

int upcie_vfio_space_map_in(struct upcie_pci_dev *dev, struct upcie_vfio *p, void *va, size_t len,
			    size_t page_size, uint64_t *bus)
{
	uint64_t iova, min_pg;
	int rc;

	if (p->iommu->physical)
		return upcie_pci_phys_map(dev, p->root, va, len, page_size, bus,
					  "vfio's no-IOMMU mode", "");
	/* Smallest IOMMU page (lowest set bit); mappings must be multiples.
	 * Unknown: the host page (an arm64 SMMU under a 64 KiB kernel maps
	 * nothing smaller). */
	min_pg = p->pgsizes ? (p->pgsizes & -p->pgsizes) : upcie_host_page_size();
	if (page_size < min_pg)
		return upcie_err(-EINVAL, "%s: page size %zu is below the IOMMU's %llu", dev->name,
				 page_size, (unsigned long long)min_pg);
	iova = iova_alloc(p, len, page_size);
	if (!iova)
		return upcie_err(-ENOSPC,
				 "%s: no room for %zu bytes in the IOVA space (%llu bytes handed "
				 "out so far)",
				 dev->name, len, (unsigned long long)(p->iova_next - IOVA_MIN));
	rc = p->iommu->map(dev, p, va, len, iova);
	if (rc) {
		upcie_vfio_iova_release(p, iova, len, false);
		return rc;
	}
	p->mapped += len;
	for (size_t i = 0; i < len / page_size; i++)
		bus[i] = iova + i * page_size;
	return 0;
}

static int vfio_dma_map(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			uint64_t *bus)
{
	return upcie_vfio_space_map_in(dev, priv_of(dev), va, len, page_size, bus);
}

int upcie_vfio_space_unmap_in(struct upcie_pci_dev *dev, struct upcie_vfio *p, uint64_t iova,
			      size_t len)
{
	int rc;

	if (p->iommu->physical)
		return 0; /* nothing was mapped: the heap unpins its memory */
	/* A failed unmap keeps its bytes counted and its IOVAs taken: the
	 * IOMMU may still map them. */
	rc = p->iommu->unmap(dev, p, iova, len);
	if (rc)
		return rc;
	upcie_vfio_iova_release(p, iova, len, true);
	return 0;
}

static int vfio_dma_unmap(struct upcie_pci_dev *dev, void *va, size_t len, size_t page_size,
			  const uint64_t *bus)
{
	(void)va;
	(void)page_size;
	return upcie_vfio_space_unmap_in(dev, priv_of(dev), bus[0], len);
}

/* ------------------------------------------------------------------------ */

static int vfio_check(struct upcie_pci_dev *dev)
{
	if (!upcie_vfio_req_seen(priv_of(dev)))
		return 0;
	return upcie_err(-ENODEV,
			 "%s: the kernel asked for the device back (hot-unplug or unbind): "
			 "bus mastering is off and its commands are failed; close it so that "
			 "the kernel can go on",
			 dev->name);
}

/* ------------------------------------------------------------------------ */
/* Interrupts: MSI-X vectors as eventfds.                                   */

static int vfio_irq_info(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info)
{
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX};

	if (ioctl(priv_of(dev)->device_fd, VFIO_DEVICE_GET_IRQ_INFO, &ii))
		return upcie_err(-errno,
				 "%s: VFIO_DEVICE_GET_IRQ_INFO (MSI-X) failed: %s; is the device "
				 "still bound to " VFIO_DRIVER "?",
				 dev->name, strerror(errno));
	/* No MSI-X capability: count 0, and enable says there is nothing. */
	if (ii.count && (ii.flags & VFIO_IRQ_INFO_EVENTFD)) {
		info->kind = UPCIE_PCI_IRQ_MSIX;
		info->nvec = ii.count;
	}
	return 0;
}

static void close_irq_fds(struct upcie_vfio *p)
{
	for (unsigned i = 0; p->irq_fds && i < p->nirq; i++)
		if (p->irq_fds[i] >= 0)
			close(p->irq_fds[i]);
	free(p->irq_fds);
	p->irq_fds = NULL;
	p->nirq = 0;
}

/* What to do about a failed MSI-X VFIO_DEVICE_SET_IRQS, by its errno. */
static const char *set_irqs_advice(int err)
{
	switch (err) {
	case ENOSPC:
		return "the host has not that many interrupt vectors free: ask for fewer";
	case EINVAL:
		return "another interrupt type (INTx, MSI) is enabled on the device, or the "
		       "count is beyond its MSI-X table: disable interrupts first";
	case ENOMEM:
		return "the kernel is out of memory";
	default:
		return "the kernel log (dmesg) may say more";
	}
}

static int vfio_irq_enable(struct upcie_pci_dev *dev, unsigned nvec)
{
	struct upcie_vfio *p = priv_of(dev);
	struct vfio_irq_set *set;
	size_t sz = sizeof(*set) + (size_t)nvec * sizeof(int32_t);
	int err;

	p->irq_fds = calloc(nvec, sizeof(*p->irq_fds));
	set = calloc(1, sz);
	if (!p->irq_fds || !set) {
		free(set);
		free(p->irq_fds);
		p->irq_fds = NULL;
		return upcie_err(-ENOMEM, "%s: out of memory for %u interrupt vectors", dev->name,
				 nvec);
	}
	p->nirq = nvec;
	for (unsigned i = 0; i < nvec; i++)
		p->irq_fds[i] = -1;
	for (unsigned i = 0; i < nvec; i++) {
		int32_t fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

		if (fd < 0) {
			err = errno;
			free(set);
			close_irq_fds(p);
			return upcie_err(-err,
					 "%s: eventfd for MSI-X vector %u of %u: %s (out of file "
					 "descriptors? raise 'ulimit -n')",
					 dev->name, i, nvec, strerror(err));
		}
		p->irq_fds[i] = fd;
		memcpy(set->data + i * sizeof(fd), &fd, sizeof(fd));
	}
	set->argsz = (uint32_t)sz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = nvec;
	if (ioctl(p->device_fd, VFIO_DEVICE_SET_IRQS, set)) {
		err = errno;
		free(set);
		close_irq_fds(p);
		return upcie_err(-err,
				 "%s: VFIO_DEVICE_SET_IRQS (MSI-X, %u vectors) failed: %s; %s",
				 dev->name, nvec, strerror(err), set_irqs_advice(err));
	}
	free(set);
	upcie_debug("%s: MSI-X enabled, %u vectors", dev->name, nvec);
	return 0;
}

static void vfio_irq_disable(struct upcie_pci_dev *dev)
{
	struct upcie_vfio *p = priv_of(dev);
	struct vfio_irq_set set = {.argsz = sizeof(set),
				   .flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
				   .index = VFIO_PCI_MSIX_IRQ_INDEX,
				   .start = 0,
				   .count = 0};

	/* Listeners keep their duplicates: they stay valid fds that no
	 * longer fire. */
	if (ioctl(p->device_fd, VFIO_DEVICE_SET_IRQS, &set))
		upcie_warn("%s: VFIO_DEVICE_SET_IRQS (MSI-X off) failed: %s; closing the device "
			   "turns them off",
			   dev->name, strerror(errno));
	close_irq_fds(p);
}

/* A listener: a duplicate of the vector's eventfd (the generic layer's
 * default irq_close closes it). Duplicates share one count: one ack
 * consumes what fired for all of them. */
static int vfio_irq_open(struct upcie_pci_dev *dev, unsigned vec)
{
	struct upcie_vfio *p = priv_of(dev);
	int fd;

	if (vec >= p->nirq)
		return upcie_err(-EINVAL, "%s: MSI-X vector %u is not enabled (%u enabled)",
				 dev->name, vec, p->nirq);
	fd = fcntl(p->irq_fds[vec], F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return upcie_err(-errno,
				 "%s: cannot duplicate the eventfd of MSI-X vector %u: %s (out of "
				 "file descriptors? raise 'ulimit -n')",
				 dev->name, vec, strerror(errno));
	return fd;
}

static int vfio_irq_ack(struct upcie_pci_dev *dev, unsigned vec, int fd)
{
	uint64_t count;
	ssize_t n = read(fd, &count, sizeof(count));

	if (n == (ssize_t)sizeof(count))
		return 1;
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n >= 0)
		return upcie_err(-EIO,
				 "%s: short read (%zd bytes) from the eventfd of MSI-X vector %u",
				 dev->name, n, vec);
	return upcie_err(-errno,
			 "%s: cannot read the eventfd of MSI-X vector %u (fd %d): %s; pass an fd "
			 "from upcie_pci_irq_open()",
			 dev->name, vec, fd, strerror(errno));
}

static int vfio_gone_fd(struct upcie_pci_dev *dev)
{
	return priv_of(dev)->gone_fd;
}

/* ------------------------------------------------------------------------ */

static void vfio_release(struct upcie_vfio *p)
{
	upcie_vfio_req_stop(p);
	close_irq_fds(p); /* pci.c turned MSI-X off before; closing the device would too */
	if (p->device_fd >= 0)
		close(p->device_fd);
	p->device_fd = -1;
	upcie_vfio_req_close(p);
	/* In a DMA context the container or IOAS is the context's: only this
	 * device's group or cdev lets go of it (vfio_ctx.c). */
	if (p->shared_iommu || p->space)
		upcie_vfio_ctx_detach(p);
	if (p->iommu)
		p->iommu->close(p);
	free(p);
}

static void vfio_close(struct upcie_pci_dev *dev)
{
	if (dev->priv)
		vfio_release(dev->priv);
	dev->priv = NULL;
}

static const struct upcie_pci_ops vfio_ops = {
    .name = "vfio",
    .bar_map = vfio_bar_map,
    .cfg_read = vfio_cfg_read,
    .cfg_write = vfio_cfg_write,
    .dma_map = vfio_dma_map,
    .dma_unmap = vfio_dma_unmap,
    .check = vfio_check,
    .irq_info = vfio_irq_info,
    .irq_enable = vfio_irq_enable,
    .irq_disable = vfio_irq_disable,
    .irq_open = vfio_irq_open,
    .irq_ack = vfio_irq_ack,
    .gone_fd = vfio_gone_fd,
    .close = vfio_close,
};

/* iommufd when forced (the option, else UPCIE_VFIO_IOMMU=iommufd|type1
 * in the environment), or (auto) when the device has a cdev and the kernel
 * has /dev/iommu; type1 otherwise. No-IOMMU mode only when asked for
 * (UPCIE_PCI_VFIO_IOMMU_NOIOMMU, UPCIE_VFIO_IOMMU=noiommu): vfio_open
 * refuses a no-IOMMU group without it. */
static const struct upcie_vfio_iommu_ops *
pick_iommu(struct upcie_pci_dev *dev, struct upcie_vfio *p, const struct upcie_pci_opts *opts)
{
	enum upcie_pci_vfio_iommu want = opts ? opts->vfio_iommu : UPCIE_PCI_VFIO_IOMMU_AUTO;
	const char *env = getenv("UPCIE_VFIO_IOMMU");
	char name[32];

	if (want == UPCIE_PCI_VFIO_IOMMU_AUTO && env && !strcmp(env, "iommufd"))
		want = UPCIE_PCI_VFIO_IOMMU_IOMMUFD;
	else if (want == UPCIE_PCI_VFIO_IOMMU_AUTO && env && !strcmp(env, "type1"))
		want = UPCIE_PCI_VFIO_IOMMU_TYPE1;
	else if (want == UPCIE_PCI_VFIO_IOMMU_AUTO && env && !strcmp(env, "noiommu"))
		want = UPCIE_PCI_VFIO_IOMMU_NOIOMMU;
	else if (want == UPCIE_PCI_VFIO_IOMMU_AUTO && env && env[0] && strcmp(env, "auto"))
		upcie_warn("%s: UPCIE_VFIO_IOMMU='%s' is not iommufd, type1, noiommu or auto; "
			   "ignored",
			   dev->name, env);

	if (want == UPCIE_PCI_VFIO_IOMMU_NOIOMMU)
		return &upcie_vfio_noiommu_ops;
	if (want == UPCIE_PCI_VFIO_IOMMU_IOMMUFD)
		return &upcie_vfio_iommufd_ops;
	if (want == UPCIE_PCI_VFIO_IOMMU_TYPE1)
		return &upcie_vfio_type1_ops;
	if (!upcie_sysfs_pci_vfio_cdev(p->root, &dev->addr, name, sizeof(name)) &&
	    !access("/dev/iommu", F_OK))
		return &upcie_vfio_iommufd_ops;
	return &upcie_vfio_type1_ops;
}

const char *upcie_pci_vfio_iommu_name(const struct upcie_pci_dev *dev)
{
	const struct upcie_vfio *p = dev && dev->ops == &vfio_ops ? dev->priv : NULL;

	return p ? p->iommu->name : NULL;
}

static int vfio_open(struct upcie_pci_dev *dev, const struct upcie_pci_opts *opts)
{
	const char *root = opts ? opts->sysfs_root : NULL;
	struct upcie_vfio *p;
	int rc;

	rc = upcie_pci_require_driver(dev, opts, VFIO_DRIVER);
	if (rc)
		return rc;

	p = calloc(1, sizeof(*p));
	if (!p)
		return upcie_err(-ENOMEM, "%s: out of memory", dev->name);
	p->container_fd = p->group_fd = p->device_fd = p->req_fd = p->stop_fd = p->gone_fd = -1;
	p->iommufd = -1;
	if (root) {
		snprintf(p->root_buf, sizeof(p->root_buf), "%s", root);
		p->root = p->root_buf;
	}
	rc = upcie_sysfs_pci_iommu_group(root, &dev->addr, &p->group);
	if (rc == -ENOENT) {
		rc = upcie_err(-ENODEV,
			       "%s has no IOMMU group: vfio-pci needs an enabled IOMMU "
			       "(intel_iommu=on or amd_iommu=on on the kernel command line); "
			       "without one, use uio_pci_generic, or vfio's no-IOMMU mode "
			       "(unsafe: 'devbind noiommu on', bind vfio-pci again, "
			       "UPCIE_VFIO_IOMMU=noiommu)",
			       dev->name);
		goto fail;
	}
	if (rc) {
		rc = upcie_err(rc, "%s: cannot read its IOMMU group: %s", dev->name, strerror(-rc));
		goto fail;
	}

	p->iommu = pick_iommu(dev, p, opts);
	/* A no-IOMMU group only for a caller who opted in (vfio_noiommu.c). */
	if (p->iommu != &upcie_vfio_noiommu_ops && upcie_vfio_noiommu_group(p, p->group)) {
		rc = upcie_vfio_noiommu_refuse(dev, p);
		goto fail;
	}
	if (opts && opts->dma_ctx)
		rc = upcie_vfio_ctx_attach(dev, p, opts->dma_ctx, opts->vfio_iommu);
	else
		rc = p->iommu->open(dev, p);
	if (rc)
		goto fail;

	rc = region_info(dev, p, VFIO_PCI_CONFIG_REGION_INDEX, &p->config);
	for (unsigned i = 0; !rc && i < UPCIE_PCI_NBARS; i++)
		rc = region_info(dev, p, VFIO_PCI_BAR0_REGION_INDEX + i, &p->bars[i]);
	if (!rc)
		rc = upcie_vfio_req_start(dev, p);
	if (rc)
		goto fail;

	/* pci.c clears bus mastering next; the NVMe layer turns it on once
	 * the controller is disabled. */
	dev->priv = p;
	dev->ops = &vfio_ops;
	dev->dma_caps =
	    p->iommu->physical ? UPCIE_PCI_DMA_NEEDS_HUGEPAGES : UPCIE_PCI_DMA_BUS_CONTIGUOUS;
	upcie_debug("%s: vfio %s, IOMMU group %d, %u IOVA window(s) from %#llx", dev->name,
		    p->iommu->name, p->group, p->niova, (unsigned long long)p->iova[0].start);
	return 0;

fail:
	vfio_release(p);
	dev->priv = NULL;
	dev->ops = NULL;
	return rc;
}

static const struct upcie_pci_backend_desc vfio_backend = {
    .id = UPCIE_PCI_BACKEND_VFIO,
    .driver = VFIO_DRIVER,
    .open = vfio_open,
};
const struct upcie_pci_backend_desc *const upcie_pci_vfio_backend = &vfio_backend;
