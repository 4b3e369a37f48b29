/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vfio's no-IOMMU mode (CONFIG_VFIO_NOIOMMU): the vfio module parameter
 * enable_unsafe_noiommu_mode. With it on, vfio-pci takes a device that has
 * no IOMMU group by making one ("vfio-noiommu", /dev/vfio/noiommu-N; the
 * kernel is tainted), and the device gets physical addresses, as under
 * uio: unsafe without an IOMMU, a bug in the program, or in the device,
 * can DMA anywhere in memory. libupcie uses such a group only when the
 * program opts in (UPCIE_VFIO_IOMMU=noiommu).
 *
 *   devbind noiommu            the mode: on, off, or not in this kernel
 *   devbind noiommu on|off     set it (on: with the warning above)
 *   devbind bind --noiommu vfio-pci DEV   turn it on, then bind
 *
 * The parameter applies when vfio-pci probes a device: devices bound
 * before keep the group they have (rebind them).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "sysfs.h"

#include "devbind.h"

#define NOIOMMU_PARAM "module/vfio/parameters/enable_unsafe_noiommu_mode"

const char *devbind_noiommu_mode(const struct devbind_opts *o)
{
	char v[8];

	if (upcie_sysfs_read_str(o->sysfs, v, sizeof(v), NOIOMMU_PARAM))
		return NULL;
	return v[0] == 'Y' || v[0] == '1' ? "on" : "off";
}

bool devbind_group_noiommu(const struct devbind_opts *o, int group)
{
	char name[64];

	return group >= 0 &&
	       !upcie_sysfs_read_str(o->sysfs, name, sizeof(name), "kernel/iommu_groups/%d/name",
				     group) &&
	       !strcmp(name, "vfio-noiommu");
}

/* Any IOMMU registered with the kernel (sysfs class/iommu)? */
static int count_iommu(const char *name, void *arg)
{
	(void)name;
	++*(int *)arg;
	return 0;
}

int devbind_noiommu_set(const struct devbind_opts *o, bool on)
{
	const char *mode = devbind_noiommu_mode(o);
	char path[PATH_MAX];
	int niommu = 0, rc;

	upcie_sysfs_path(o->sysfs, path, sizeof(path), "%s", NOIOMMU_PARAM);
	if (!mode) {
		tool_err("vfio has no no-IOMMU mode here (%s is missing): load vfio first "
			 "(devbind bind vfio-pci loads it; or modprobe vfio "
			 "enable_unsafe_noiommu_mode=1), or this kernel was built without "
			 "CONFIG_VFIO_NOIOMMU (Debian's kernels are): use uio_pci_generic",
			 path);
		return TOOL_EXIT_SYSTEM;
	}
	if (!on) {
		if (!strcmp(mode, "off")) {
			printf("vfio no-IOMMU mode: already off\n");
			return TOOL_EXIT_OK;
		}
		rc = devbind_write(o, "vfio", "N", NOIOMMU_PARAM);
		if (!rc)
			printf("vfio no-IOMMU mode: off%s (devices bound in it keep their "
			       "no-IOMMU group until they are bound again)\n",
			       o->dry_run ? " (dry run)" : "");
		return rc;
	}
	tool_warn("vfio's no-IOMMU mode is unsafe: a device bound to vfio-pci without an IOMMU "
		  "gets physical addresses, so a bug in the program, or in the device, can DMA "
		  "anywhere in memory; it needs root, and the kernel is tainted once a device "
		  "takes it. libupcie uses it only when a program opts in "
		  "(UPCIE_VFIO_IOMMU=noiommu)");
	upcie_sysfs_dir_foreach(o->sysfs, count_iommu, &niommu, "class/iommu");
	if (niommu)
		tool_warn("this machine has an IOMMU (%d in %s/class/iommu): devices with an IOMMU "
			  "group keep it, no-IOMMU mode covers only devices without one",
			  niommu, o->sysfs ? o->sysfs : "/sys");
	if (!strcmp(mode, "on")) {
		printf("vfio no-IOMMU mode: already on\n");
		return TOOL_EXIT_OK;
	}
	rc = devbind_write(o, "vfio", "Y", NOIOMMU_PARAM);
	if (!rc)
		printf("vfio no-IOMMU mode: on%s; bind devices without an IOMMU group to "
		       "vfio-pci now (devices bound before keep what they have)\n",
		       o->dry_run ? " (dry run)" : "");
	return rc;
}

int devbind_noiommu(const struct devbind_opts *o, const char *arg)
{
	const char *mode;

	if (arg && !strcmp(arg, "on"))
		return devbind_noiommu_set(o, true);
	if (arg && !strcmp(arg, "off"))
		return devbind_noiommu_set(o, false);
	mode = devbind_noiommu_mode(o);
	printf("vfio no-IOMMU mode: %s\n", mode ? mode : "not in this kernel (or vfio not loaded)");
	return TOOL_EXIT_OK;
}
