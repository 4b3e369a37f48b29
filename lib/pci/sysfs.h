/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * sysfs helpers (internal)
 * ========================
 * Not part of libupcie's ABI: not installed, not exported from the shared
 * library (hidden visibility). The library uses them, and the devbind and
 * hugepages tools link them from a static library (upcie_sysfs_lib).
 *
 *
 * Small readers and writers for /sys, rooted at a directory the caller
 * chooses (NULL means "/sys") so that tests and the CLIs' --sysfs-root can
 * point them at a fake tree. Paths are printf-style and relative to the
 * root, e.g. ("bus/pci/devices/%s/vendor", bdf).
 *
 * Functions:
 *   upcie_sysfs_path()        root + relative path into a buffer
 *   upcie_sysfs_read_str()    first line of an attribute, newline stripped
 *   upcie_sysfs_read_u64()    an attribute as a number (0x hex or decimal)
 *   upcie_sysfs_write_str()   write an attribute
 *   upcie_sysfs_link_name()   basename of a symlink's target ("driver" -> "nvme")
 *   upcie_sysfs_pci_driver()  driver a PCI function is bound to ("" if none)
 *   upcie_sysfs_pci_iommu_group()  IOMMU group number (-ENOENT if none)
 *   upcie_sysfs_pci_vfio_cdev()    VFIO device cdev name (-ENOENT if none)
 *   upcie_sysfs_pci_resource()     start, size and flags of BAR n
 *   upcie_sysfs_exists()      whether a path exists (0 or -ENOENT)
 *   upcie_sysfs_dir_foreach() call back for each entry of a directory, sorted
 *   upcie_sysfs_pci_foreach() call back for each PCI function, sorted by address
 *   upcie_sysfs_pci_ids()     vendor, device and class of a PCI function
 *   upcie_sysfs_pci_numa_node()    NUMA node of a PCI function (-1 if none)
 *   upcie_sysfs_pci_config_read/_write()  config space through sysfs 'config'
 *
 * All return 0 or a negative errno (-ENOENT for a missing file).
 */
#ifndef UPCIE_SYSFS_H
#define UPCIE_SYSFS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upcie_pci_addr;

/* IORESOURCE_* flags of the sysfs 'resource' file. */
#define UPCIE_SYSFS_RES_IO  0x00000100ull
#define UPCIE_SYSFS_RES_MEM 0x00000200ull

int upcie_sysfs_path(const char *root, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int upcie_sysfs_read_str(const char *root, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int upcie_sysfs_read_u64(const char *root, uint64_t *val, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int upcie_sysfs_write_str(const char *root, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int upcie_sysfs_link_name(const char *root, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int upcie_sysfs_pci_driver(const char *root, const struct upcie_pci_addr *addr, char *buf,
			   size_t len);
int upcie_sysfs_pci_iommu_group(const char *root, const struct upcie_pci_addr *addr, int *group);
/* The device's VFIO cdev name ("vfio3", under vfio-dev/); -ENOENT when it
 * has none (a kernel without VFIO_DEVICE_CDEV, or not on vfio-pci). */
int upcie_sysfs_pci_vfio_cdev(const char *root, const struct upcie_pci_addr *addr, char *buf,
			      size_t len);
int upcie_sysfs_pci_resource(const char *root, const struct upcie_pci_addr *addr, unsigned bar,
			     uint64_t *start, uint64_t *size, uint64_t *flags);

int upcie_sysfs_exists(const char *root, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Directory listing in version order ("nvme2" before "nvme10"), without "."
 * and "..". A non-zero return from cb stops the walk and is returned.
 */
typedef int (*upcie_sysfs_dir_cb)(const char *name, void *arg);
int upcie_sysfs_dir_foreach(const char *root, upcie_sysfs_dir_cb cb, void *arg, const char *fmt,
			    ...) __attribute__((format(printf, 4, 5)));

/* Each PCI function under bus/pci/devices, in address order; same stop rule. */
typedef int (*upcie_sysfs_pci_cb)(const struct upcie_pci_addr *addr, void *arg);
int upcie_sysfs_pci_foreach(const char *root, upcie_sysfs_pci_cb cb, void *arg);

/* Any output pointer may be NULL. class_code is the 24-bit class (0x010802). */
int upcie_sysfs_pci_ids(const char *root, const struct upcie_pci_addr *addr, uint16_t *vendor,
			uint16_t *device, uint32_t *class_code);
/* -1 when the platform has no NUMA information (or the file is missing). */
int upcie_sysfs_pci_numa_node(const char *root, const struct upcie_pci_addr *addr, int *node);

/* Config space bytes [off, off + len) through the sysfs 'config' file. */
int upcie_sysfs_pci_config_read(const char *root, const struct upcie_pci_addr *addr, uint32_t off,
				void *buf, size_t len);
int upcie_sysfs_pci_config_write(const char *root, const struct upcie_pci_addr *addr, uint32_t off,
				 const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_SYSFS_H */
