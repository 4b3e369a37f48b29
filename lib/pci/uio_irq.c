/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The uio backend's interrupts.
 *
 * INTx, the function's one line, and only when its Interrupt
 * Pin is wired (config 0x3d non-zero) and the kernel routed an IRQ to it.
 * What Linux 6.1 does (drivers/uio/uio_pci_generic.c, drivers/uio/uio.c):
 *   - uio_pci_generic's handler masks INTx at each interrupt of this
 *     function (pci_check_and_mask_intx(): COMMAND bit 10, Interrupt
 *     Disable) and uio counts an event; it has no irqcontrol hook, so a
 *     write(1) to /dev/uioN cannot unmask (-ENOSYS). An ack therefore
 *     clears Interrupt Disable itself through config space, as one 16-bit
 *     read-modify-write of COMMAND serialized with the library's other
 *     COMMAND updates (upcie_pci_command_update(): bus mastering may
 *     change in another thread). Not a write of byte 5 alone (where bit
 *     10 lives): QEMU acts on an Interrupt Disable change only when a
 *     write covers COMMAND's low byte, so byte writes left its INTx line
 *     asserted with nothing pending, a storm the kernel ends by disabling
 *     the IRQ ("nobody cared").
 *   - each open file of /dev/uioN keeps its own event count (set at open,
 *     advanced by its reads). So every listener is an open file of its
 *     own: each sees every interrupt, and no listener's read can eat
 *     another's wake-up.
 *   - every close of a /dev/uioN file clears bus mastering (uio.c). A
 *     listener is therefore never closed while the device is in use:
 *     upcie_pci_irq_close() puts it back in a pool that the next
 *     upcie_pci_irq_open() takes from, and the pool is closed with the
 *     handle, after pci.c turned bus mastering off.
 * uio_pci_generic has no MSI or MSI-X support: those need vfio-pci.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

#include "core/log.h"
#include "pci/uio.h"

int uio_irq_info(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info)
{
	struct uio_priv *p = priv_of(dev);
	uint8_t pin = 0;
	uint64_t irq;
	int rc;

	rc = upcie_pci_cfg_fd_io(dev, priv_of(dev)->cfg_fd, 0, PCI_INTERRUPT_PIN, &pin, sizeof(pin),
				 false);
	if (rc)
		return rc;
	if (pin < 1 || pin > 4)
		return 0;
	/* A wired pin the kernel routed no IRQ to: uio_pci_generic then
	 * registers no handler and /dev/uioN never fires (reads fail EIO). */
	if (!upcie_sysfs_read_u64(p->root, &irq, "bus/pci/devices/%s/irq", p->bdf) &&
	    (!irq || irq >= IRQ_NOT_CONNECTED))
		return 0;
	info->kind = UPCIE_PCI_IRQ_INTX;
	info->nvec = 1;
	return 0;
}

/* Set (mask) or clear (unmask) Interrupt Disable (see the top of the
 * file). When the bit is already as wanted nothing is written: a mask by
 * the kernel coming after the read also counts an event, which wakes the
 * listeners, and their acks unmask again. */
static int intx_mask(struct upcie_pci_dev *dev, bool mask)
{
	int rc = upcie_pci_command_update(dev, mask ? 0 : PCI_COMMAND_INTX_DISABLE,
					  mask ? PCI_COMMAND_INTX_DISABLE : 0);

	if (rc && rc != -ENODEV)
		return upcie_err(rc,
				 "%s: cannot %s INTx (PCI COMMAND Interrupt Disable): %s; is "
				 "the device still bound to " UIO_DRIVER "?",
				 dev->name, mask ? "mask" : "unmask", upcie_errmsg());
	return rc;
}

int uio_irq_enable(struct upcie_pci_dev *dev, unsigned nvec)
{
	struct uio_priv *p = priv_of(dev);
	int rc;

	(void)nvec; /* 1: the generic layer checked it against irq_info */
	__atomic_store_n(&p->intx_on, true, __ATOMIC_RELEASE);
	rc = intx_mask(dev, false);
	if (rc)
		__atomic_store_n(&p->intx_on, false, __ATOMIC_RELEASE);
	return rc;
}

void uio_irq_disable(struct upcie_pci_dev *dev)
{
	struct uio_priv *p = priv_of(dev);

	__atomic_store_n(&p->intx_on, false, __ATOMIC_RELEASE);
	if (intx_mask(dev, true))
		upcie_warn("%s: INTx stays unmasked; the kernel masks it again at its next "
			   "interrupt",
			   dev->name);
}

/* A listener: a pooled open file of /dev/uioN, else a new one. */
int uio_irq_open(struct upcie_pci_dev *dev, unsigned vec)
{
	struct uio_priv *p = priv_of(dev);
	struct uio_listener *l;
	int fd = -1, err;

	(void)vec; /* INTx: 0 */
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->nlisteners; i++) {
		if (!p->listeners[i].out) {
			p->listeners[i].out = true;
			fd = p->listeners[i].fd;
			break;
		}
	}
	if (fd >= 0)
		goto out;
	l = realloc(p->listeners, (p->nlisteners + 1) * sizeof(*l));
	if (!l) {
		pthread_mutex_unlock(&p->lock);
		return upcie_err(-ENOMEM, "%s: out of memory for an interrupt listener", dev->name);
	}
	p->listeners = l;
	fd = open(p->uio_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		pthread_mutex_unlock(&p->lock);
		return upcie_err(-err, "%s: cannot open %s as an interrupt listener: %s%s",
				 dev->name, p->uio_path, strerror(err),
				 err == EMFILE || err == ENFILE
				     ? " (out of file descriptors: raise 'ulimit -n')"
				     : "; is the device still bound to " UIO_DRIVER "?");
	}
	l[p->nlisteners++] = (struct uio_listener){.fd = fd, .out = true};
out:
	pthread_mutex_unlock(&p->lock);
	return fd;
}

/* Back to the pool, open: closing it would clear bus mastering. */
void uio_irq_close(struct upcie_pci_dev *dev, unsigned vec, int fd)
{
	struct uio_priv *p = priv_of(dev);
	bool found = false;

	(void)vec;
	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->nlisteners; i++) {
		if (p->listeners[i].fd == fd && p->listeners[i].out) {
			p->listeners[i].out = false;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!found)
		upcie_warn("%s: fd %d is not an open interrupt listener of this handle; left "
			   "alone",
			   dev->name, fd);
}

/* Consume what fired on this listener (its own event count), then unmask
 * INTx: the handler masked it when it fired. */
int uio_irq_ack(struct upcie_pci_dev *dev, unsigned vec, int fd)
{
	struct uio_priv *p = priv_of(dev);
	int32_t count;
	ssize_t n;
	int fired, rc;

	(void)vec;
	n = read(fd, &count, sizeof(count));
	if (n == (ssize_t)sizeof(count))
		fired = 1;
	else if (n == 0 || (n < 0 && errno == EAGAIN))
		fired = 0; /* uio: -EAGAIN; end of file: a fake device file (tests) */
	else if (n < 0 && errno == EIO)
		return upcie_err(-ENODEV,
				 "%s: %s gives no interrupts any more (EIO): the device was "
				 "unbound from " UIO_DRIVER " or removed",
				 dev->name, p->uio_path);
	else
		return upcie_err(n < 0 ? -errno : -EIO,
				 "%s: cannot read the interrupt count from listener fd %d: %s; "
				 "pass an fd from upcie_pci_irq_open()",
				 dev->name, fd, n < 0 ? strerror(errno) : "short read");
	if (!__atomic_load_n(&p->intx_on, __ATOMIC_ACQUIRE))
		return fired; /* disabled meanwhile: leave the line masked */
	rc = intx_mask(dev, false);
	return rc ? rc : fired;
}

/*
 * Close every listener. One still handed out (its owner did not give it
 * back through upcie_pci_irq_close()) is not closed under its owner: its
 * number is pointed at /dev/null instead, so that the owner's later
 * close() closes that, not a /dev/uioN file of a device another process
 * may own by then (it would clear that owner's bus mastering).
 */
void upcie_uio_close_listeners(struct uio_priv *p)
{
	int null_fd = -1;

	for (unsigned i = 0; i < p->nlisteners; i++)
		if (!p->listeners[i].out)
			close(p->listeners[i].fd);
	for (unsigned i = 0; i < p->nlisteners; i++) {
		int fd = p->listeners[i].fd;

		if (!p->listeners[i].out)
			continue;
		if (null_fd < 0)
			null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null_fd >= 0 && dup3(null_fd, fd, O_CLOEXEC) == fd) {
			upcie_warn("interrupt listener fd %d was not given back before the device "
				   "closed; it now refers to /dev/null: close it",
				   fd);
			continue;
		}
		close(fd);
		upcie_warn("interrupt listener fd %d was not given back before the device closed, "
			   "and /dev/null could not take its place: it is closed now, do not "
			   "close it again",
			   fd);
	}
	if (null_fd >= 0)
		close(null_fd);
	free(p->listeners);
	p->listeners = NULL;
	p->nlisteners = 0;
}
