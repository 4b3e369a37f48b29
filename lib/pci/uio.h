/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The uio backend's state, shared by uio.c (BARs, config space, DMA,
 * open/close) and uio_irq.c (INTx). Internal.
 */
#ifndef UPCIE_LIB_PCI_UIO_H
#define UPCIE_LIB_PCI_UIO_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/compiler.h"
#include "pci/backend.h"

#define UIO_DRIVER "uio_pci_generic"

/* PCI config space: Interrupt Pin (0: none, 1-4: INTA-INTD), and COMMAND's
 * high byte, whose bit 2 is COMMAND bit 10, Interrupt Disable. */
#define PCI_INTERRUPT_PIN	 0x3d
#define PCI_COMMAND_INTX_DISABLE 0x400
/* sysfs 'irq' of a pin the kernel could not route (IRQ_NOTCONNECTED). */
#define IRQ_NOT_CONNECTED 0x80000000ull

/* An open file of /dev/uioN used as an interrupt listener. */
struct uio_listener {
	int fd;
	bool out; /* handed out by irq_open, not yet back through irq_close */
};

struct uio_priv {
	const char *root; /* sysfs root (NULL: /sys), owned by the caller's opts */
	char root_buf[PATH_MAX];
	char bdf[UPCIE_PCI_ADDR_STRLEN];
	char uio_name[32];	 /* "uio0" */
	char uio_path[PATH_MAX]; /* "/dev/uio0" */
	int cfg_fd;
	int uio_fd;	      /* /dev/uioN, held open for crash safety (see above) */
	bool intx_on;	      /* interrupts enabled: Interrupt Disable is ours (atomic) */
	pthread_mutex_t lock; /* the listener table */
	struct uio_listener *listeners;
	unsigned nlisteners;
};

static inline struct uio_priv *priv_of(struct upcie_pci_dev *dev)
{
	return dev->priv;
}

/* uio_irq.c: the interrupt ops, and closing the listener pool at close. */
HIDDEN int uio_irq_info(struct upcie_pci_dev *dev, struct upcie_pci_irq_info *info);
HIDDEN int uio_irq_enable(struct upcie_pci_dev *dev, unsigned nvec);
HIDDEN void uio_irq_disable(struct upcie_pci_dev *dev);
HIDDEN int uio_irq_open(struct upcie_pci_dev *dev, unsigned vec);
HIDDEN void uio_irq_close(struct upcie_pci_dev *dev, unsigned vec, int fd);
HIDDEN int uio_irq_ack(struct upcie_pci_dev *dev, unsigned vec, int fd);
HIDDEN void upcie_uio_close_listeners(struct uio_priv *p);

#endif
