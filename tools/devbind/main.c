/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devbind: list PCI functions and move NVMe controllers between the kernel's
 * nvme driver and the user-space drivers (uio_pci_generic, vfio-pci).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysfs.h"

#include "devbind.h"

static const char usage_text[] =
    "usage: devbind [options] list [--all] [--json]\n"
    "       devbind [options] status [--user NAME] [--json]\n"
    "       devbind [options] bind [--user NAME] [--noiommu] DRIVER DEVICE...\n"
    "       devbind [options] unbind DEVICE...\n"
    "       devbind [options] restore DEVICE...\n"
    "       devbind [options] persist [--user NAME] DRIVER DEVICE...\n"
    "       devbind [options] unpersist DEVICE...|all\n"
    "       devbind [options] list-persisted [--json]\n"
    "       devbind [options] noiommu [on|off]\n"
    "\n"
    "Commands:\n"
    "  list      NVMe controllers (every PCI function with --all): ids and names,\n"
    "            driver, NUMA node, IOMMU group, block devices, whether in use;\n"
    "            then the user-space drivers' state and RLIMIT_MEMLOCK\n"
    "  bind      bind to DRIVER (uio_pci_generic, vfio-pci or nvme) through\n"
    "            driver_override; loads the module if needed\n"
    "  unbind    clear driver_override and unbind from the current driver\n"
    "  restore   clear driver_override, unbind from a user-space driver and let\n"
    "            the kernel's default driver (e.g. nvme) take the device back\n"
    "  status    what is ready for user space: each controller's driver,\n"
    "            readiness, IOMMU group and who may open /dev/vfio/GROUP;\n"
    "            vfio's interfaces (iommufd, no-IOMMU mode) and, per controller\n"
    "            on vfio-pci, its cdev and whether the library would use type1\n"
    "            or iommufd; hugepages free per NUMA node; RLIMIT_MEMLOCK (and\n"
    "            NAME's)\n"
    "  persist   keep DEVICE on DRIVER across reboots: a udev rule and a\n"
    "            systemd unit (upcie-devbind.service) under /etc\n"
    "  unpersist drop persisted bindings (the devices stay where they are)\n"
    "  list-persisted  the persisted bindings: device, driver, user, and the\n"
    "            driver the device has now\n"
    "  noiommu   vfio's no-IOMMU mode (the vfio module parameter\n"
    "            enable_unsafe_noiommu_mode): show it, or turn it on or off.\n"
    "            UNSAFE: a device without an IOMMU gets physical addresses, so a\n"
    "            bug in the program or the device can DMA anywhere in memory;\n"
    "            root only; libupcie uses it only with UPCIE_VFIO_IOMMU=noiommu\n"
    "\n"
    "DEVICE: a PCI address (0000:01:00.0 or 01:00.0), vendor:device (8086:0953,\n"
    "every match) or all-nvme. A device in use (a mounted or held block device,\n"
    "a network interface that is up or routed, a process driving it) is\n"
    "refused and the others go ahead.\n"
    "\n"
    "Options:\n"
    "  --all              list every PCI function, not only NVMe controllers\n"
    "  --json             list, status and list-persisted as JSON\n"
    "  --force            unbind or rebind a device even if it is in use\n"
    "  --dry-run          print the sysfs writes (path and value), do none; report\n"
    "                     what the real run would hit (a driver module that is\n"
    "                     not there, no IOMMU group, a device in use)\n"
    "  --allow LIST       all-nvme and vendor:device pick only these devices\n"
    "  --deny LIST        all-nvme and vendor:device never pick these devices;\n"
    "                     LIST: PCI addresses and vendor:device pairs, separated\n"
    "                     by commas or blanks; default: $UPCIE_DEVBIND_ALLOW and\n"
    "                     $UPCIE_DEVBIND_DENY. A device named by its address is\n"
    "                     not filtered\n"
    "  --timeout SEC      how long to wait for a bind to show (default 5)\n"
    "  --noiommu          bind vfio-pci: turn vfio's no-IOMMU mode on first (see\n"
    "                     noiommu), so that devices without an IOMMU group bind\n"
    "  --user NAME        bind: give NAME the vfio group device (chown\n"
    "                     /dev/vfio/GROUP; with iommufd also the device's cdev\n"
    "                     /dev/vfio/devices/vfioN and /dev/iommu) and check NAME's\n"
    "                     RLIMIT_MEMLOCK\n"
    "                     against the hugepage pool; status: readiness for NAME\n"
    "  --etc-root DIR     persist's files and limits.conf under DIR, not /etc\n"
    "  --sysfs-root DIR   read and write DIR instead of /sys (no modprobe then)\n"
    "  --proc-root DIR    read mounts, swaps and processes from DIR, not /proc\n"
    "  --dev-root DIR     open block devices in DIR to see whether they are busy\n"
    "                     (default /dev; skipped with --sysfs-root or --proc-root)\n"
    "  --modules-dir DIR  look for modules in DIR, not /lib/modules/$(uname -r)\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 ok, 1 usage error, 2 device or system error (noiommu: the\n"
    "kernel has no no-IOMMU mode, or vfio is not loaded; the write failed),\n"
    "3 refused for safety (a device in use; --force overrides). When some devices\n"
    "are refused and others are not, the others are done and the exit is 3.\n";

/* --- resolving DEVICE arguments ----------------------------------------- */

struct addr_set {
	struct upcie_pci_addr *v;
	size_t n;
	/* vendor:device or class filter while walking */
	int vendor, device;
	bool nvme_only;
	size_t matched, kept; /* by the pattern; of them, past --allow/--deny */
	const struct devbind_opts *o;
};

static bool parse_vendor_device(const char *s, int *ven, int *dev);

static void set_add(struct addr_set *s, const struct upcie_pci_addr *a)
{
	struct upcie_pci_addr *v;

	for (size_t i = 0; i < s->n; i++)
		if (!memcmp(&s->v[i], a, sizeof(*a)))
			return;
	v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v)
		tool_die_errno();
	s->v = v;
	s->v[s->n++] = *a;
}

static bool filter_has(const struct devbind_filter *f, const struct upcie_pci_addr *a, uint16_t ven,
		       uint16_t dev)
{
	/* Field by field: the struct has a padding byte, which memcmp would
	 * compare too (garbage from the allocator or the stack). */
	for (size_t i = 0; i < f->naddrs; i++)
		if (f->addrs[i].domain == a->domain && f->addrs[i].bus == a->bus &&
		    f->addrs[i].dev == a->dev && f->addrs[i].func == a->func)
			return true;
	for (size_t i = 0; i < f->nids; i++)
		if (f->ids[i] == ((uint32_t)ven << 16 | dev))
			return true;
	return false;
}

static int match_cb(const struct upcie_pci_addr *a, void *arg)
{
	struct addr_set *s = arg;
	const struct devbind_opts *o = s->o;
	char bdf[UPCIE_PCI_ADDR_STRLEN];
	uint16_t ven, dev;
	uint32_t cls;

	if (upcie_sysfs_pci_ids(o->sysfs, a, &ven, &dev, &cls))
		return 0;
	if (s->nvme_only ? (cls >> 8) != CLASS_NVME : (ven != s->vendor || dev != s->device))
		return 0;
	s->matched++;
	upcie_pci_addr_format(a, bdf, sizeof(bdf));
	if (o->deny && filter_has(o->deny, a, ven, dev)) {
		printf("%s: skipped (%s)\n", bdf, o->deny->from);
		return 0;
	}
	if (o->allow && !filter_has(o->allow, a, ven, dev)) {
		printf("%s: skipped (not in %s)\n", bdf, o->allow->from);
		return 0;
	}
	set_add(s, a);
	s->kept++;
	return 0;
}

/*
 * A --allow / --deny list (or its variable): PCI addresses and
 * vendor:device pairs separated by commas or blanks. NULL text: no list.
 */
static int filter_parse(const char *from, const char *text, struct devbind_filter *f)
{
	char *copy, *tok, *save = NULL;

	memset(f, 0, sizeof(*f));
	f->from = from;
	copy = strdup(text);
	if (!copy)
		tool_die_errno();
	for (tok = strtok_r(copy, ", \t\n", &save); tok; tok = strtok_r(NULL, ", \t\n", &save)) {
		struct upcie_pci_addr a;
		int ven, dev;

		if (parse_vendor_device(tok, &ven, &dev)) {
			uint32_t *v = realloc(f->ids, (f->nids + 1) * sizeof(*v));

			if (!v)
				tool_die_errno();
			f->ids = v;
			f->ids[f->nids++] = (uint32_t)ven << 16 | (uint32_t)dev;
		} else if (!upcie_pci_addr_parse(tok, &a)) {
			struct upcie_pci_addr *v = realloc(f->addrs, (f->naddrs + 1) * sizeof(*v));

			if (!v)
				tool_die_errno();
			f->addrs = v;
			f->addrs[f->naddrs++] = a;
		} else {
			tool_err("%s: '%s' is not a PCI address or vendor:device (give "
				 "0000:01:00.0, 01:00.0 or 8086:0953, separated by commas)",
				 from, tok);
			free(copy);
			free(f->addrs);
			free(f->ids);
			return TOOL_EXIT_USAGE;
		}
	}
	free(copy);
	return TOOL_EXIT_OK;
}

static void filter_free(struct devbind_filter *f)
{
	free(f->addrs);
	free(f->ids);
}

/* "8086:0953": exactly four hex digits on each side. */
static bool parse_vendor_device(const char *s, int *ven, int *dev)
{
	unsigned v, d;
	int n = 0;

	if (strlen(s) != 9 || s[4] != ':' || sscanf(s, "%4x:%4x%n", &v, &d, &n) != 2 || n != 9)
		return false;
	for (int i = 0; i < 9; i++)
		if (i != 4 && !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	*ven = (int)v;
	*dev = (int)d;
	return true;
}

static int resolve(const struct devbind_opts *o, char **specs, int n, struct dev_info **out,
		   size_t *nout)
{
	struct addr_set s = {.o = o};
	struct dev_info *devs;
	int rc;

	for (int i = 0; i < n; i++) {
		struct upcie_pci_addr a;
		const char *spec = specs[i];

		s.matched = s.kept = 0;
		if (!strcmp(spec, "all-nvme")) {
			s.nvme_only = true;
		} else if (parse_vendor_device(spec, &s.vendor, &s.device)) {
			s.nvme_only = false;
		} else if (!upcie_pci_addr_parse(spec, &a)) {
			char bdf[UPCIE_PCI_ADDR_STRLEN];

			upcie_pci_addr_format(&a, bdf, sizeof(bdf));
			if (upcie_sysfs_exists(o->sysfs, "bus/pci/devices/%s", bdf)) {
				tool_err("no PCI device %s; see devbind list --all", bdf);
				free(s.v);
				return TOOL_EXIT_SYSTEM;
			}
			set_add(&s, &a);
			continue;
		} else {
			tool_err("malformed device '%s': give a PCI address (0000:01:00.0 or "
				 "01:00.0), vendor:device (8086:0953) or all-nvme",
				 spec);
			free(s.v);
			return TOOL_EXIT_USAGE;
		}
		rc = upcie_sysfs_pci_foreach(o->sysfs, match_cb, &s);
		if (rc) {
			tool_err("cannot list PCI devices under %s/bus/pci/devices: %s",
				 o->sysfs ? o->sysfs : "/sys", strerror(-rc));
			free(s.v);
			return TOOL_EXIT_SYSTEM;
		}
		if (!s.matched) {
			tool_err("no PCI device matches '%s'; see devbind list --all", spec);
			free(s.v);
			return TOOL_EXIT_SYSTEM;
		}
		if (!s.kept) {
			tool_err("'%s': every %s it matches is excluded by the allow/deny lists",
				 spec, s.nvme_only ? "NVMe controller" : "PCI device");
			free(s.v);
			return TOOL_EXIT_SYSTEM;
		}
	}
	devs = calloc(s.n ? s.n : 1, sizeof(*devs));
	if (!devs)
		tool_die_errno();
	for (size_t i = 0; i < s.n; i++) {
		rc = dev_info_get(o, &s.v[i], &devs[i]);
		if (rc) {
			char bdf[UPCIE_PCI_ADDR_STRLEN];

			upcie_pci_addr_format(&s.v[i], bdf, sizeof(bdf));
			tool_err("%s: cannot read it from sysfs: %s", bdf, strerror(-rc));
			for (size_t j = 0; j < i; j++)
				dev_info_free(&devs[j]);
			free(devs);
			free(s.v);
			return TOOL_EXIT_SYSTEM;
		}
	}
	free(s.v);
	*out = devs;
	*nout = s.n;
	return TOOL_EXIT_OK;
}

static void free_devs(struct dev_info *devs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dev_info_free(&devs[i]);
	free(devs);
}

/* --- list ---------------------------------------------------------------- */

struct list_ctx {
	const struct devbind_opts *o;
	struct dev_info *v;
	size_t n;
	int err;
};

static int list_cb(const struct upcie_pci_addr *a, void *arg)
{
	struct list_ctx *l = arg;
	struct dev_info d, *v;
	int rc;

	rc = dev_info_get(l->o, a, &d);
	if (rc) {
		char bdf[UPCIE_PCI_ADDR_STRLEN];
		upcie_pci_addr_format(a, bdf, sizeof(bdf));
		tool_warn("%s: skipped, cannot read it from sysfs: %s", bdf, strerror(-rc));
		return 0;
	}
	if (!l->o->all && !dev_is_nvme(&d)) {
		dev_info_free(&d);
		return 0;
	}
	names_lookup(&d);
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		tool_die_errno();
	l->v = v;
	l->v[l->n++] = d;
	return 0;
}

static const char *const drivers_shown[] = {"uio_pci_generic", "vfio-pci"};

static void list_json(const struct devbind_opts *o, const struct list_ctx *l)
{
	struct tool_json j;
	char buf[64];

	tool_json_init(&j, stdout);
	tool_json_obj(&j, NULL);
	tool_json_arr(&j, "devices");
	for (size_t i = 0; i < l->n; i++) {
		const struct dev_info *d = &l->v[i];

		tool_json_obj(&j, NULL);
		tool_json_str(&j, "bdf", d->bdf);
		snprintf(buf, sizeof(buf), "%04x", d->vendor);
		tool_json_str(&j, "vendor_id", buf);
		snprintf(buf, sizeof(buf), "%04x", d->device);
		tool_json_str(&j, "device_id", buf);
		tool_json_str(&j, "vendor", d->vendor_name);
		tool_json_str(&j, "device", d->device_name);
		snprintf(buf, sizeof(buf), "%06x", d->class_code);
		tool_json_str(&j, "class", buf);
		tool_json_str(&j, "class_name", d->class_name);
		tool_json_bool(&j, "nvme", dev_is_nvme(d));
		tool_json_str(&j, "driver", d->driver[0] ? d->driver : NULL);
		tool_json_str(&j, "driver_override", d->override[0] ? d->override : NULL);
		tool_json_int(&j, "numa_node", d->numa);
		if (d->group >= 0)
			tool_json_int(&j, "iommu_group", d->group);
		else
			tool_json_null(&j, "iommu_group");
		tool_json_arr(&j, "iommu_group_members");
		for (size_t m = 0; m < d->members.n; m++) {
			tool_json_obj(&j, NULL);
			tool_json_str(&j, "bdf", d->members.v[m]);
			tool_json_str(&j, "driver",
				      d->member_driver.v[m][0] ? d->member_driver.v[m] : NULL);
			tool_json_obj_end(&j);
		}
		tool_json_arr_end(&j);
		tool_json_arr(&j, "block_devices");
		for (size_t b = 0; b < d->blocks.n; b++)
			tool_json_str(&j, NULL, d->blocks.v[b]);
		tool_json_arr_end(&j);
		tool_json_arr(&j, "network_interfaces");
		for (size_t b = 0; b < d->netifs.n; b++)
			tool_json_str(&j, NULL, d->netifs.v[b]);
		tool_json_arr_end(&j);
		tool_json_bool(&j, "in_use", dev_in_use(d));
		tool_json_arr(&j, "in_use_reasons");
		for (size_t r = 0; r < d->reasons.n; r++)
			tool_json_str(&j, NULL, d->reasons.v[r]);
		for (size_t r = 0; r < d->users.n; r++)
			tool_json_str(&j, NULL, d->users.v[r]);
		tool_json_arr_end(&j);
		tool_json_obj_end(&j);
	}
	tool_json_arr_end(&j);
	tool_json_obj(&j, "drivers");
	for (size_t i = 0; i < sizeof(drivers_shown) / sizeof(drivers_shown[0]); i++) {
		enum drv_state s = drv_state(o, drivers_shown[i]);

		tool_json_obj(&j, drivers_shown[i]);
		tool_json_str(&j, "state", drv_state_name(s));
		tool_json_bool(&j, "available", s != DRV_MISSING);
		tool_json_bool(&j, "loaded", s == DRV_LOADED);
		tool_json_obj_end(&j);
	}
	tool_json_obj_end(&j);
	tool_json_memlock(&j);
	tool_json_obj_end(&j);
	tool_json_done(&j);
}

static void join(const struct strlist *l, char *buf, size_t len)
{
	size_t w = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n && w < len; i++)
		w += (size_t)snprintf(buf + w, len - w, "%s%s", i ? "," : "", l->v[i]);
}

static void list_table(const struct devbind_opts *o, const struct list_ctx *l)
{
	static const char *const hdr[] = {"BDF",   "ID",    "DRIVER", "NUMA",
					  "IOMMU", "BLOCK", "IN-USE", "NAME"};
	static const char *const dhdr[] = {"DRIVER", "STATE"};
	struct tool_table *t = tool_table_new(8, hdr);
	char id[16], numa[16], grp[16], blk[256], name[600];

	for (size_t i = 0; i < l->n; i++) {
		const struct dev_info *d = &l->v[i];
		const char *cells[8] = {d->bdf, id,  d->driver[0] ? d->driver : NULL, numa,
					grp,	blk, dev_in_use(d) ? "yes" : "no",    name};

		snprintf(id, sizeof(id), "%04x:%04x", d->vendor, d->device);
		snprintf(numa, sizeof(numa), "%d", d->numa);
		if (d->group >= 0)
			snprintf(grp, sizeof(grp), "%d", d->group);
		else
			snprintf(grp, sizeof(grp), "-");
		join(&d->blocks, blk, sizeof(blk));
		if (!blk[0])
			snprintf(blk, sizeof(blk), "-");
		snprintf(name, sizeof(name), "%s: %s %s", d->class_name, d->vendor_name,
			 d->device_name);
		tool_table_add(t, cells);
	}
	if (l->n)
		tool_table_print(t, stdout, "");
	else
		printf("no %s found under %s/bus/pci/devices\n",
		       o->all ? "PCI functions" : "NVMe controllers", o->sysfs ? o->sysfs : "/sys");
	tool_table_free(t);

	/* What does not fit in a cell: reasons and the group's other members. */
	for (size_t i = 0; i < l->n; i++) {
		const struct dev_info *d = &l->v[i];

		if (d->driver[0] && d->override[0] && strcmp(d->override, d->driver))
			printf("%s: driver_override is %s\n", d->bdf, d->override);
		for (size_t r = 0; r < d->reasons.n; r++)
			printf("%s: in use: %s\n", d->bdf, d->reasons.v[r]);
		for (size_t r = 0; r < d->users.n; r++)
			printf("%s: in use: %s\n", d->bdf, d->users.v[r]);
		for (size_t m = 0; m < d->members.n; m++)
			printf("%s: IOMMU group %d also holds %s (%s)\n", d->bdf, d->group,
			       d->members.v[m],
			       d->member_driver.v[m][0] ? d->member_driver.v[m] : "no driver");
	}

	printf("\n");
	t = tool_table_new(2, dhdr);
	for (size_t i = 0; i < sizeof(drivers_shown) / sizeof(drivers_shown[0]); i++) {
		const char *cells[2] = {drivers_shown[i],
					drv_state_name(drv_state(o, drivers_shown[i]))};
		tool_table_add(t, cells);
	}
	tool_table_print(t, stdout, "");
	tool_table_free(t);
	tool_memlock_print();
}

static int cmd_list(const struct devbind_opts *o)
{
	struct list_ctx l = {.o = o};
	int rc;

	rc = upcie_sysfs_pci_foreach(o->sysfs, list_cb, &l);
	if (rc) {
		tool_err("cannot list PCI devices under %s/bus/pci/devices: %s",
			 o->sysfs ? o->sysfs : "/sys", strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	if (o->json)
		list_json(o, &l);
	else
		list_table(o, &l);
	free_devs(l.v, l.n);
	return TOOL_EXIT_OK;
}

/* --- main ---------------------------------------------------------------- */

enum {
	OPT_MODULES = TOOL_OPT_NEXT,
	OPT_TIMEOUT,
	OPT_DRY_RUN,
	OPT_DEV,
	OPT_USER,
	OPT_ETC,
	OPT_ALLOW,
	OPT_DENY,
	OPT_NOIOMMU,
};

static int run_devices(const struct devbind_opts *o, const char *cmd, const char *driver,
		       char **specs, int nspecs);

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"all", no_argument, NULL, 'a'},
	    {"force", no_argument, NULL, 'f'},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"modules-dir", required_argument, NULL, OPT_MODULES},
	    {"dev-root", required_argument, NULL, OPT_DEV},
	    {"user", required_argument, NULL, OPT_USER},
	    {"etc-root", required_argument, NULL, OPT_ETC},
	    {"allow", required_argument, NULL, OPT_ALLOW},
	    {"deny", required_argument, NULL, OPT_DENY},
	    {"noiommu", no_argument, NULL, OPT_NOIOMMU},
	    TOOL_LONGOPTS_COMMON,
	};
	struct devbind_opts o = {.timeout_ms = 5000};
	const char *user_name = NULL, *allow_arg = NULL, *deny_arg = NULL;
	struct devbind_filter allow, deny;
	struct tool_user user;
	const char *cmd, *driver = NULL;
	uint64_t secs;
	int c, rc;

	tool_name = "devbind";
	tool_usage_text = usage_text;
	while ((c = tool_getopt(argc, argv, longopts, &o.sysfs, &o.proc, &o.json)) != -1) {
		switch (c) {
		case 'a':
			o.all = true;
			break;
		case 'f':
			o.force = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_TIMEOUT:
			if (tool_parse_u64(optarg, &secs) || secs > 3600)
				return tool_usage(
				    "--timeout takes whole seconds (0-3600), not '%s'", optarg);
			o.timeout_ms = (unsigned)secs * 1000;
			break;
		case OPT_MODULES:
			o.modules_dir = optarg;
			break;
		case OPT_DEV:
			o.dev = optarg;
			break;
		case OPT_USER:
			user_name = optarg;
			break;
		case OPT_ETC:
			o.etc = optarg;
			break;
		case OPT_ALLOW:
			allow_arg = optarg;
			break;
		case OPT_DENY:
			deny_arg = optarg;
			break;
		case OPT_NOIOMMU:
			o.noiommu = true;
			break;
		}
	}
	cmd = tool_command(argc, argv);
	if (strcmp(cmd, "list") && strcmp(cmd, "status") && strcmp(cmd, "bind") &&
	    strcmp(cmd, "unbind") && strcmp(cmd, "restore") && strcmp(cmd, "persist") &&
	    strcmp(cmd, "unpersist") && strcmp(cmd, "list-persisted") && strcmp(cmd, "noiommu"))
		return tool_usage("unknown command '%s'", cmd);
	if (o.noiommu && strcmp(cmd, "bind"))
		return tool_usage("--noiommu applies to bind vfio-pci, not to %s", cmd);
	if (user_name) {
		if (strcmp(cmd, "bind") && strcmp(cmd, "status") && strcmp(cmd, "persist"))
			return tool_usage("--user applies to bind, status and persist, not to %s",
					  cmd);
		if (tool_user_get(user_name, &user)) {
			tool_err("no user '%s' on this system (see getent passwd)", user_name);
			return TOOL_EXIT_USAGE;
		}
		o.user = &user;
	}
	if ((allow_arg || deny_arg) &&
	    (!strcmp(cmd, "list") || !strcmp(cmd, "status") || !strcmp(cmd, "list-persisted") ||
	     !strcmp(cmd, "unpersist")))
		return tool_usage("--allow and --deny pick devices for bind, unbind, restore and "
				  "persist, not for %s",
				  cmd);
	if (!strcmp(cmd, "noiommu")) {
		const char *arg = optind < argc ? argv[optind] : NULL;

		if (o.json || o.user || allow_arg || deny_arg)
			return tool_usage("noiommu takes none of --json, --user, --allow, --deny%s",
					  "");
		if (optind + 1 < argc || (arg && strcmp(arg, "on") && strcmp(arg, "off")))
			return tool_usage("noiommu takes 'on', 'off' or nothing, not '%s'",
					  argv[argc - 1]);
		if (arg && !o.sysfs && !o.dry_run && geteuid() != 0) {
			tool_err("noiommu %s writes to /sys and needs root: run it as root (e.g. "
				 "with sudo), or add --dry-run to see the write",
				 arg);
			return TOOL_EXIT_SYSTEM;
		}
		return devbind_noiommu(&o, arg);
	}
	if (!strcmp(cmd, "list-persisted")) {
		if (optind < argc)
			return tool_usage("%s takes no arguments", cmd);
		return devbind_list_persisted(&o);
	}
	if (!strcmp(cmd, "list") || !strcmp(cmd, "status")) {
		if (optind < argc)
			return tool_usage("%s takes no arguments", cmd);
		rc = !strcmp(cmd, "list") ? cmd_list(&o) : devbind_status(&o);
		names_close();
		return rc;
	}
	if (o.json)
		return tool_usage("--json applies to list and status, not to %s", cmd);
	if ((!strcmp(cmd, "persist") || !strcmp(cmd, "unpersist")) && o.sysfs && !o.etc)
		return tool_usage("%s with a fake --sysfs-root needs --etc-root too", cmd);
	if (!strcmp(cmd, "unpersist")) {
		if (optind >= argc)
			return tool_usage("unpersist needs PCI addresses or 'all'%s", "");
		if (optind + 1 == argc && !strcmp(argv[optind], "all"))
			return devbind_unpersist(&o, NULL, 0);
		return devbind_unpersist(&o, argv + optind, (size_t)(argc - optind));
	}
	if (!strcmp(cmd, "bind") || !strcmp(cmd, "persist")) {
		if (optind >= argc)
			return tool_usage("%s needs a DRIVER and at least one DEVICE", cmd);
		driver = drv_normalize(argv[optind]);
		if (!driver) {
			tool_err("unknown driver '%s': use uio_pci_generic, vfio-pci or nvme",
				 argv[optind]);
			return TOOL_EXIT_USAGE;
		}
		if (o.noiommu && strcmp(driver, "vfio-pci"))
			return tool_usage("--noiommu is vfio's no-IOMMU mode: it applies to bind "
					  "vfio-pci, not to %s",
					  driver);
		if (!drv_is_user(driver) && (o.user || !strcmp(cmd, "persist")))
			return tool_usage("%s is not a user-space driver: --user and persist take "
					  "uio_pci_generic or vfio-pci (restore and unpersist "
					  "give a device back)",
					  driver);
		optind++;
	}
	if (optind >= argc)
		return tool_usage("%s needs at least one DEVICE", cmd);
	/* The options win over the variables. */
	if (!allow_arg && (allow_arg = getenv("UPCIE_DEVBIND_ALLOW")) && *allow_arg)
		allow.from = "UPCIE_DEVBIND_ALLOW";
	else
		allow.from = "--allow";
	if (!deny_arg && (deny_arg = getenv("UPCIE_DEVBIND_DENY")) && *deny_arg)
		deny.from = "UPCIE_DEVBIND_DENY";
	else
		deny.from = "--deny";
	if (allow_arg && *allow_arg) {
		if (filter_parse(allow.from, allow_arg, &allow))
			return TOOL_EXIT_USAGE;
		o.allow = &allow;
	}
	if (deny_arg && *deny_arg) {
		if (filter_parse(deny.from, deny_arg, &deny)) {
			if (o.allow)
				filter_free(&allow);
			return TOOL_EXIT_USAGE;
		}
		o.deny = &deny;
	}
	rc = run_devices(&o, cmd, driver, argv + optind, argc - optind);
	if (o.allow)
		filter_free(&allow);
	if (o.deny)
		filter_free(&deny);
	return rc;
}

/* bind, unbind, restore and persist on the devices given. */
static int run_devices(const struct devbind_opts *o_, const char *cmd, const char *driver,
		       char **specs, int nspecs)
{
	const struct devbind_opts o = *o_;
	struct dev_info *devs = NULL;
	size_t ndevs = 0;
	int rc;

	if (!strcmp(cmd, "persist")) {
		rc = resolve(&o, specs, nspecs, &devs, &ndevs);
		if (!rc)
			rc = devbind_persist(&o, driver, devs, ndevs);
		free_devs(devs, ndevs);
		names_close();
		return rc;
	}
	if (!o.sysfs && !o.dry_run && geteuid() != 0) {
		tool_err("%s writes to /sys and needs root: run it as root (e.g. with sudo), or "
			 "add --dry-run to see the writes",
			 cmd);
		return TOOL_EXIT_SYSTEM;
	}
	rc = resolve(&o, specs, nspecs, &devs, &ndevs);
	if (rc)
		return rc;
	if (driver)
		rc = devbind_bind(&o, driver, devs, ndevs);
	else if (!strcmp(cmd, "unbind"))
		rc = devbind_unbind(&o, devs, ndevs);
	else
		rc = devbind_restore(&o, devs, ndevs);
	free_devs(devs, ndevs);
	names_close();
	return rc;
}
