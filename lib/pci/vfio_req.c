/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio backend: the kernel asking for the device back.
 *
 * Before it unbinds or hot-unplugs a vfio device, vfio-pci signals the
 * device request interrupt (VFIO_PCI_REQ_IRQ_INDEX) and then waits until
 * the user closes the device file, re-signalling every 10 s; with no
 * eventfd registered it only logs "blocked until released by user".
 *
 * The device keeps working meanwhile, so I/O keeps completing and a health
 * check that looks only at stalled queues would never run. Hence a watcher
 * thread (asleep in poll(), no cost on the I/O path): when the request
 * comes, it records it and clears Bus Master Enable at once. The device can
 * no longer DMA (every outstanding buffer is safe), its queues stall, and
 * the NVMe layer's health check calls upcie_pci_check(), which answers
 * -ENODEV from the recorded request without a syscall. The program then
 * fails its commands and closes the handle, which lets the kernel go on.
 *
 * Bus mastering stays off from then on: a COMMAND write through this
 * handle after the request has its bus-master bit cleared (vfio.c).
 *
 * A thread asleep on interrupts would not see the request until its
 * deadline: the watcher also signals gone_fd (upcie_pci_gone_fd()), which
 * such a thread polls beside its interrupt fds. gone_fd is a semaphore
 * eventfd given the largest count an eventfd holds: a read takes 1 from
 * it, so it stays readable for good even if a caller reads it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "core/log.h"
#include "pci/vfio.h"

/* The largest count an eventfd takes (a write of 2^64 - 1 is refused). */
#define GONE_COUNT 0xfffffffffffffffeull

/* Clear Bus Master Enable through the config region (the watcher thread,
 * and a config write that may have raced with it). */
void upcie_vfio_req_fence(struct upcie_vfio *p)
{
	uint64_t off = p->config.offset + VFIO_PCI_COMMAND;
	uint16_t cmd;

	if (pread(p->device_fd, &cmd, sizeof(cmd), (off_t)off) != (ssize_t)sizeof(cmd))
		return;
	cmd = (uint16_t)(cmd & ~VFIO_PCI_COMMAND_MASTER);
	if (pwrite(p->device_fd, &cmd, sizeof(cmd), (off_t)off) != (ssize_t)sizeof(cmd))
		return;
}

static void *watcher(void *arg)
{
	struct upcie_vfio *p = arg;
	struct pollfd fds[2] = {{.fd = p->req_fd, .events = POLLIN},
				{.fd = p->stop_fd, .events = POLLIN}};
	uint64_t count;

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			/* Not a reason to stop watching (ENOMEM passes): a watcher
			 * gone would hide the kernel's request until its unplug
			 * hangs. Only stop_fd ends this thread. */
			if (errno != EINTR)
				usleep(10000);
			continue;
		}
		if (fds[1].revents)
			return NULL;
		if (fds[0].revents && read(p->req_fd, &count, sizeof(count)) == sizeof(count)) {
			__atomic_store_n(&p->requested, true, __ATOMIC_SEQ_CST);
			upcie_vfio_req_fence(p);
			/* After the fence: a sleeper woken by it finds bus
			 * mastering off and upcie_pci_check() saying -ENODEV. */
			count = GONE_COUNT;
			if (write(p->gone_fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
				upcie_warn("vfio: cannot signal the device-gone eventfd: %s",
					   strerror(errno));
			return NULL;
		}
	}
}

/*
 * Register an eventfd for the request interrupt and start the watcher. A
 * kernel or device without the interrupt is not an error: an unplug then
 * waits until the handle is closed.
 */
int upcie_vfio_req_start(struct upcie_pci_dev *dev, struct upcie_vfio *p)
{
	struct vfio_irq_info ii = {.argsz = sizeof(ii), .index = VFIO_PCI_REQ_IRQ_INDEX};
	_Alignas(struct vfio_irq_set) char buf[sizeof(struct vfio_irq_set) + sizeof(int32_t)];
	struct vfio_irq_set *set = (struct vfio_irq_set *)buf;
	sigset_t all, old;
	int32_t efd;
	int rc;

	if (ioctl(p->device_fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) || ii.count < 1 ||
	    !(ii.flags & VFIO_IRQ_INFO_EVENTFD)) {
		upcie_info("%s: vfio offers no device request interrupt; a hot-unplug or unbind "
			   "waits until the device is closed",
			   dev->name);
		return 0;
	}
	p->req_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	p->gone_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC | EFD_SEMAPHORE);
	if (p->req_fd < 0 || p->stop_fd < 0 || p->gone_fd < 0)
		return upcie_err(-errno,
				 "%s: eventfd for the device request interrupt: %s (out of file "
				 "descriptors? raise 'ulimit -n')",
				 dev->name, strerror(errno));
	efd = p->req_fd;
	memset(buf, 0, sizeof(buf));
	set->argsz = sizeof(buf);
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = VFIO_PCI_REQ_IRQ_INDEX;
	set->start = 0;
	set->count = 1;
	memcpy(set->data, &efd, sizeof(efd));
	if (ioctl(p->device_fd, VFIO_DEVICE_SET_IRQS, set))
		return upcie_err(-errno, "%s: VFIO_DEVICE_SET_IRQS (device request interrupt): %s",
				 dev->name, strerror(errno));
	/* The watcher takes no signals: they stay with the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&p->req_thread, NULL, watcher, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return upcie_err(-rc, "%s: cannot start the device request watcher: %s", dev->name,
				 strerror(rc));
	p->req_thread_started = true;
	return 0;
}

/* Stop the watcher (before the device file closes: it writes to it). */
void upcie_vfio_req_stop(struct upcie_vfio *p)
{
	uint64_t one = 1;

	if (p->req_thread_started) {
		if (write(p->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			pthread_cancel(p->req_thread);
		pthread_join(p->req_thread, NULL);
		p->req_thread_started = false;
	}
}

/* After the device file: closing it unregisters the request eventfd. */
void upcie_vfio_req_close(struct upcie_vfio *p)
{
	if (p->req_fd >= 0)
		close(p->req_fd);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	if (p->gone_fd >= 0)
		close(p->gone_fd);
	p->req_fd = p->stop_fd = p->gone_fd = -1;
}

bool upcie_vfio_req_seen(const struct upcie_vfio *p)
{
	return __atomic_load_n(&p->requested, __ATOMIC_SEQ_CST);
}
