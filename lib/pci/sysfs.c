/* SPDX-License-Identifier: BSD-3-Clause */
/* sysfs readers and writers rooted at a caller-chosen directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upcie/pci.h>
#include "sysfs.h"

static int vpath(const char *root, char *buf, size_t len, const char *fmt, va_list ap)
{
	char rel[PATH_MAX];
	int n;

	n = vsnprintf(rel, sizeof(rel), fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "%s/%s", root ? root : "/sys", rel);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* rc = the path from a variadic function's own fmt and arguments, into buf. */
#define VPATH(rc, root, buf, len, fmt)                                                             \
	do {                                                                                       \
		va_list ap_;                                                                       \
		va_start(ap_, fmt);                                                                \
		rc = vpath(root, buf, len, fmt, ap_);                                              \
		va_end(ap_);                                                                       \
	} while (0)

int upcie_sysfs_path(const char *root, char *buf, size_t len, const char *fmt, ...)
{
	int rc;

	VPATH(rc, root, buf, len, fmt);
	return rc;
}

/* Path of attribute attr of the PCI function at addr. */
static int pci_path(const char *root, const struct upcie_pci_addr *addr, char *buf, size_t len,
		    const char *attr)
{
	char bdf[UPCIE_PCI_ADDR_STRLEN];

	upcie_pci_addr_format(addr, bdf, sizeof(bdf));
	return upcie_sysfs_path(root, buf, len, "bus/pci/devices/%s/%s", bdf, attr);
}

/* End of a read or write of len bytes that returned n: 0 or a negative errno. */
static int io_done(int fd, ssize_t n, size_t len)
{
	int rc = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);

	if (close(fd) && !rc)
		rc = -errno;
	return rc;
}

static int read_str(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	if (len == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int upcie_sysfs_read_str(const char *root, char *buf, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX];
	int rc;

	VPATH(rc, root, path, sizeof(path), fmt);
	return rc ? rc : read_str(path, buf, len);
}

static int parse_u64(const char *s, uint64_t *val)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end)
		return -EINVAL;
	*val = v;
	return 0;
}

int upcie_sysfs_read_u64(const char *root, uint64_t *val, const char *fmt, ...)
{
	char path[PATH_MAX], buf[64];
	int rc;

	VPATH(rc, root, path, sizeof(path), fmt);
	if (!rc)
		rc = read_str(path, buf, sizeof(buf));
	return rc ? rc : parse_u64(buf, val);
}

int upcie_sysfs_write_str(const char *root, const char *val, const char *fmt, ...)
{
	char path[PATH_MAX];
	size_t len = strlen(val);
	int rc, fd;

	VPATH(rc, root, path, sizeof(path), fmt);
	if (rc)
		return rc;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return io_done(fd, write(fd, val, len), len);
}

int upcie_sysfs_link_name(const char *root, char *buf, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *base;
	ssize_t n;
	int rc;

	VPATH(rc, root, path, sizeof(path), fmt);
	if (rc)
		return rc;
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

int upcie_sysfs_pci_driver(const char *root, const struct upcie_pci_addr *addr, char *buf,
			   size_t len)
{
	char bdf[UPCIE_PCI_ADDR_STRLEN];
	char path[PATH_MAX];
	int rc;

	upcie_pci_addr_format(addr, bdf, sizeof(bdf));
	rc = upcie_sysfs_path(root, path, sizeof(path), "bus/pci/devices/%s", bdf);
	if (rc)
		return rc;
	if (access(path, F_OK))
		return -ENOENT;
	rc = upcie_sysfs_link_name(root, buf, len, "bus/pci/devices/%s/driver", bdf);
	if (rc == -ENOENT) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	return rc;
}

/* A whole decimal number in [min, INT32_MAX]: 0 or -EINVAL. */
static int parse_int(const char *s, long min, int *val)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < min || v > INT32_MAX)
		return -EINVAL;
	*val = (int)v;
	return 0;
}

int upcie_sysfs_pci_iommu_group(const char *root, const struct upcie_pci_addr *addr, int *group)
{
	char bdf[UPCIE_PCI_ADDR_STRLEN], name[32];
	int rc;

	upcie_pci_addr_format(addr, bdf, sizeof(bdf));
	rc = upcie_sysfs_link_name(root, name, sizeof(name), "bus/pci/devices/%s/iommu_group", bdf);
	return rc ? rc : parse_int(name, 0, group);
}

int upcie_sysfs_pci_vfio_cdev(const char *root, const struct upcie_pci_addr *addr, char *buf,
			      size_t len)
{
	char bdf[UPCIE_PCI_ADDR_STRLEN], path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int rc = -ENOENT;

	upcie_pci_addr_format(addr, bdf, sizeof(bdf));
	if (upcie_sysfs_path(root, path, sizeof(path), "bus/pci/devices/%s/vfio-dev", bdf))
		return -ENAMETOOLONG;
	d = opendir(path);
	if (!d)
		return -ENOENT;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4) && e->d_name[4] >= '0' && e->d_name[4] <= '9') {
			snprintf(buf, len, "%s", e->d_name);
			rc = 0;
			break;
		}
	closedir(d);
	return rc;
}

int upcie_sysfs_pci_resource(const char *root, const struct upcie_pci_addr *addr, unsigned bar,
			     uint64_t *start, uint64_t *size, uint64_t *flags)
{
	char path[PATH_MAX], line[128];
	uint64_t s, e, f;
	FILE *fp;
	int rc;

	if (bar >= 6)
		return -EINVAL;
	rc = pci_path(root, addr, path, sizeof(path), "resource");
	if (rc)
		return rc;
	fp = fopen(path, "re");
	if (!fp)
		return -errno;
	rc = -EINVAL;
	for (unsigned i = 0; fgets(line, sizeof(line), fp); i++) {
		if (i != bar)
			continue;
		if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64, &s, &e, &f) == 3) {
			*start = s;
			*size = (s || e) ? e - s + 1 : 0;
			*flags = f;
			rc = 0;
		}
		break;
	}
	fclose(fp);
	return rc;
}

int upcie_sysfs_exists(const char *root, const char *fmt, ...)
{
	char path[PATH_MAX];
	int rc;

	VPATH(rc, root, path, sizeof(path), fmt);
	if (rc)
		return rc;
	return access(path, F_OK) ? -errno : 0;
}

static int skip_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

int upcie_sysfs_dir_foreach(const char *root, upcie_sysfs_dir_cb cb, void *arg, const char *fmt,
			    ...)
{
	char path[PATH_MAX];
	struct dirent **ents;
	int rc, n;

	VPATH(rc, root, path, sizeof(path), fmt);
	if (rc)
		return rc;
	n = scandir(path, &ents, skip_dots, versionsort);
	if (n < 0)
		return -errno;
	rc = 0;
	for (int i = 0; i < n; i++) {
		if (!rc)
			rc = cb(ents[i]->d_name, arg);
		free(ents[i]);
	}
	free(ents);
	return rc;
}

struct pci_walk {
	upcie_sysfs_pci_cb cb;
	void *arg;
};

static int pci_walk_one(const char *name, void *arg)
{
	struct pci_walk *w = arg;
	struct upcie_pci_addr addr;

	/* Entries that are not PCI addresses are not functions; skip them. */
	if (upcie_pci_addr_parse(name, &addr))
		return 0;
	return w->cb(&addr, w->arg);
}

int upcie_sysfs_pci_foreach(const char *root, upcie_sysfs_pci_cb cb, void *arg)
{
	struct pci_walk w = {cb, arg};

	return upcie_sysfs_dir_foreach(root, pci_walk_one, &w, "bus/pci/devices");
}

int upcie_sysfs_pci_ids(const char *root, const struct upcie_pci_addr *addr, uint16_t *vendor,
			uint16_t *device, uint32_t *class_code)
{
	char bdf[UPCIE_PCI_ADDR_STRLEN];
	uint64_t v;
	int rc;

	upcie_pci_addr_format(addr, bdf, sizeof(bdf));
	if (vendor) {
		rc = upcie_sysfs_read_u64(root, &v, "bus/pci/devices/%s/vendor", bdf);
		if (rc)
			return rc;
		*vendor = (uint16_t)v;
	}
	if (device) {
		rc = upcie_sysfs_read_u64(root, &v, "bus/pci/devices/%s/device", bdf);
		if (rc)
			return rc;
		*device = (uint16_t)v;
	}
	if (class_code) {
		rc = upcie_sysfs_read_u64(root, &v, "bus/pci/devices/%s/class", bdf);
		if (rc)
			return rc;
		*class_code = (uint32_t)(v & 0xffffff);
	}
	return 0;
}

int upcie_sysfs_pci_numa_node(const char *root, const struct upcie_pci_addr *addr, int *node)
{
	char bdf[UPCIE_PCI_ADDR_STRLEN], buf[32];
	int rc;

	upcie_pci_addr_format(addr, bdf, sizeof(bdf));
	rc = upcie_sysfs_read_str(root, buf, sizeof(buf), "bus/pci/devices/%s/numa_node", bdf);
	if (rc == -ENOENT) {
		*node = -1;
		return 0;
	}
	return rc ? rc : parse_int(buf, -1, node);
}

static int config_rw(const char *root, const struct upcie_pci_addr *addr, uint32_t off, void *buf,
		     size_t len, int write)
{
	char path[PATH_MAX];
	int rc, fd;

	rc = pci_path(root, addr, path, sizeof(path), "config");
	if (rc)
		return rc;
	fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return io_done(fd, write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off), len);
}

int upcie_sysfs_pci_config_read(const char *root, const struct upcie_pci_addr *addr, uint32_t off,
				void *buf, size_t len)
{
	return config_rw(root, addr, off, buf, len, 0);
}

int upcie_sysfs_pci_config_write(const char *root, const struct upcie_pci_addr *addr, uint32_t off,
				 const void *buf, size_t len)
{
	return config_rw(root, addr, off, (void *)buf, len, 1);
}
