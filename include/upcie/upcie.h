/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief libupcie: a user-space PCIe NVMe driver library
 *
 * Include this one header to get the whole public API:
 *
 * ~~~
 *   nvme_spec.h  NVMe registers, commands, statuses, Identify structures
 *   pci.h        PCI device handles (uio, vfio and the emulated 'sim')
 *   dma.h        hugepage DMA heaps with virtual-to-bus translation
 *   nvme.h       controllers, namespaces, queue pairs, I/O
 *   engine.h     for I/O engines: shared controllers, split transfers,
 *                scatter lists (PRP lists and SGLs)
 *   pi.h         protection information in software (CRC16 guard)
 *   version.h    UPCIE_VERSION_MAJOR/MINOR/PATCH, upcie_version()
 * ~~~
 *
 * Not included here, include them when you need them:
 * ~~~
 *   sim.h        the in-process emulated NVMe controller (fault injection,
 *                counters) behind the 'sim' backend: public, for tests and
 *                for users without hardware
 * ~~~
 *
 * Error convention: functions return 0 (or a count) on success and a
 * negative errno on failure; functions returning a pointer return NULL and
 * set errno. A readable reason for the last failure of the calling thread
 * is available from upcie_errmsg(). Nothing is printed unless logging was
 * turned on, with upcie_log_set() or the UPCIE_LOG environment variable
 * (UPCIE_LOG=error|warn|info|debug prints to stderr).
 */
#ifndef UPCIE_UPCIE_H
#define UPCIE_UPCIE_H

#include <upcie/version.h>
#include <upcie/log.h>
#include <upcie/nvme_spec.h>
#include <upcie/pci.h>
#include <upcie/dma.h>
#include <upcie/nvme.h>
#include <upcie/engine.h>
#include <upcie/pi.h>

#endif /* UPCIE_UPCIE_H */
