/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devbind status: is this machine ready to drive its NVMe controllers from
 * user space, and for whom? One table of controllers (driver, readiness,
 * IOMMU group, who may open /dev/vfio/GROUP), the hugepages free on each
 * NUMA node, and RLIMIT_MEMLOCK of this process and of --user NAME.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysfs.h"

#include "devbind.h"

struct ctrl_status {
	struct dev_info d;
	char vfio_path[PATH_MAX]; /* "" when the device has no group node to show */
	bool vfio_exists;
	struct stat vfio_st;
	bool ready;
	char why[PATH_MAX + 128]; /* "vfio-pci", "root only (uio)", "no: on nvme" ... */
	char cdev[32];		  /* its VFIO device cdev ("vfio3"), "" when none */
	const char *iommu;	  /* vfio-pci: what the library would use, else NULL */
	bool noiommu;		  /* its group is a no-IOMMU one (vfio's no-IOMMU mode) */
};

/* /dev/iommu under the /dev devbind looks at: 1 there, 0 not, -1 unknown
 * (a fake tree without --dev-root). */
static int have_iommufd(const struct devbind_opts *o)
{
	const char *dev = devbind_dev_root(o);
	char path[PATH_MAX];

	if (!dev)
		return -1;
	snprintf(path, sizeof(path), "%s/iommu", dev);
	return access(path, F_OK) == 0;
}

/* Can u open a node with this owner and mode for reading and writing? */
static bool user_can_rw(const struct tool_user *u, const struct stat *st)
{
	if (u->uid == 0)
		return true;
	if (st->st_uid == u->uid)
		return (st->st_mode & 0600) == 0600;
	if (st->st_gid == u->gid)
		return (st->st_mode & 0060) == 0060;
	return (st->st_mode & 0006) == 0006;
}

static void ctrl_judge(const struct devbind_opts *o, struct ctrl_status *c)
{
	const struct dev_info *d = &c->d;
	const char *dev = devbind_dev_root(o);

	c->noiommu = !strcmp(d->driver, "vfio-pci") && devbind_group_noiommu(o, d->group);
	if (d->group >= 0 && dev && !strcmp(d->driver, "vfio-pci")) {
		snprintf(c->vfio_path, sizeof(c->vfio_path), "%s/vfio/%s%d", dev,
			 c->noiommu ? "noiommu-" : "", d->group);
		c->vfio_exists = !stat(c->vfio_path, &c->vfio_st);
	}
	/* A no-IOMMU device has a vfio-dev/vfioN entry but no cdev node (Linux
	 * 6.12: "cdev does not support noiommu device"). */
	if (c->noiommu || upcie_sysfs_pci_vfio_cdev(o->sysfs, &d->addr, c->cdev, sizeof(c->cdev)))
		c->cdev[0] = '\0';
	/* The library's own choice (vfio.c): iommufd with a cdev and /dev/iommu. */
	if (!strcmp(d->driver, "vfio-pci"))
		c->iommu = c->noiommu				? "noiommu"
			   : c->cdev[0] && have_iommufd(o) == 1 ? "iommufd"
								: "type1";
	if (!d->driver[0]) {
		snprintf(c->why, sizeof(c->why), "no: no driver");
	} else if (!strcmp(d->driver, "uio_pci_generic")) {
		c->ready = !o->user || o->user->uid == 0;
		snprintf(c->why, sizeof(c->why), "%s",
			 c->ready ? "yes, as root (uio)" : "no: uio needs root");
	} else if (strcmp(d->driver, "vfio-pci")) {
		snprintf(c->why, sizeof(c->why), "no: on %s", d->driver);
	} else if (d->group < 0) {
		snprintf(c->why, sizeof(c->why), "no: no IOMMU group");
	} else if (!dev) {
		c->ready = true;
		snprintf(c->why, sizeof(c->why), "yes (vfio; /dev not checked)");
	} else if (!c->vfio_exists) {
		snprintf(c->why, sizeof(c->why), "no: %s missing", c->vfio_path);
	} else if (c->noiommu) {
		/* CAP_SYS_RAWIO for the group, CAP_SYS_ADMIN for physical addresses. */
		c->ready = !o->user || o->user->uid == 0;
		snprintf(c->why, sizeof(c->why), "%s",
			 c->ready ? "yes, as root (vfio no-IOMMU, unsafe)"
				  : "no: vfio no-IOMMU needs root");
	} else if (o->user && !user_can_rw(o->user, &c->vfio_st)) {
		snprintf(c->why, sizeof(c->why), "no: %s cannot open %s", o->user->name,
			 c->vfio_path);
	} else {
		c->ready = true;
		snprintf(c->why, sizeof(c->why), "yes (vfio)");
	}
	if (c->ready && dev_in_use(d))
		snprintf(c->why + strlen(c->why), sizeof(c->why) - strlen(c->why), ", in use");
}

struct status_ctx {
	const struct devbind_opts *o;
	struct ctrl_status *v;
	size_t n;
};

static int status_cb(const struct upcie_pci_addr *a, void *arg)
{
	struct status_ctx *s = arg;
	struct ctrl_status *v;
	struct dev_info d;

	if (dev_info_get(s->o, a, &d))
		return 0;
	if (!s->o->all && !dev_is_nvme(&d)) {
		dev_info_free(&d);
		return 0;
	}
	v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (!v)
		tool_die_errno();
	s->v = v;
	memset(&v[s->n], 0, sizeof(v[s->n]));
	v[s->n].d = d;
	ctrl_judge(s->o, &v[s->n]);
	s->n++;
	return 0;
}

/* --- hugepages per node ----------------------------------------------------- */

struct hp_row {
	uint64_t kb;
	int node; /* -1: all nodes */
	uint64_t total, free;
};

struct hp_scan {
	const struct devbind_opts *o;
	struct hp_row *v;
	size_t n;
	int node;
};

static int hp_size_cb(const char *name, void *arg)
{
	struct hp_scan *h = arg;
	unsigned long long kb;
	struct hp_row r = {.node = h->node};
	struct hp_row *v;
	int rc;

	if (sscanf(name, "hugepages-%llukB", &kb) != 1)
		return 0;
	r.kb = kb;
	if (h->node < 0)
		rc = upcie_sysfs_read_u64(h->o->sysfs, &r.total,
					  "kernel/mm/hugepages/%s/nr_hugepages", name) ||
		     upcie_sysfs_read_u64(h->o->sysfs, &r.free,
					  "kernel/mm/hugepages/%s/free_hugepages", name);
	else
		rc = upcie_sysfs_read_u64(h->o->sysfs, &r.total,
					  "devices/system/node/node%d/hugepages/%s/nr_hugepages",
					  h->node, name) ||
		     upcie_sysfs_read_u64(h->o->sysfs, &r.free,
					  "devices/system/node/node%d/hugepages/%s/free_hugepages",
					  h->node, name);
	if (rc)
		return 0;
	v = realloc(h->v, (h->n + 1) * sizeof(*v));
	if (!v)
		tool_die_errno();
	h->v = v;
	h->v[h->n++] = r;
	return 0;
}

static int hp_node_cb(const char *name, void *arg)
{
	struct hp_scan *h = arg;
	int node;
	char end;

	if (sscanf(name, "node%d%c", &node, &end) != 1)
		return 0;
	h->node = node;
	upcie_sysfs_dir_foreach(h->o->sysfs, hp_size_cb, h, "devices/system/node/%s/hugepages",
				name);
	return 0;
}

static void hp_read(const struct devbind_opts *o, struct hp_scan *h)
{
	memset(h, 0, sizeof(*h));
	h->o = o;
	h->node = -1;
	upcie_sysfs_dir_foreach(o->sysfs, hp_size_cb, h, "kernel/mm/hugepages");
	upcie_sysfs_dir_foreach(o->sysfs, hp_node_cb, h, "devices/system/node");
}

/* --- printers ------------------------------------------------------------- */

static void vfio_owner(const struct ctrl_status *c, char *buf, size_t len)
{
	if (!c->vfio_path[0])
		snprintf(buf, len, "-");
	else if (!c->vfio_exists)
		snprintf(buf, len, "%s (missing)", c->vfio_path);
	else
		snprintf(buf, len, "%s %s:%s %04o", c->vfio_path, tool_uid_name(c->vfio_st.st_uid),
			 tool_gid_name(c->vfio_st.st_gid), (unsigned)(c->vfio_st.st_mode & 07777));
}

static void status_json(const struct devbind_opts *o, const struct status_ctx *s,
			const struct hp_scan *h)
{
	struct tool_json j;

	tool_json_init(&j, stdout);
	tool_json_obj(&j, NULL);
	tool_json_arr(&j, "controllers");
	for (size_t i = 0; i < s->n; i++) {
		const struct ctrl_status *c = &s->v[i];

		tool_json_obj(&j, NULL);
		tool_json_str(&j, "bdf", c->d.bdf);
		tool_json_str(&j, "driver", c->d.driver[0] ? c->d.driver : NULL);
		tool_json_bool(&j, "user_space_ready", c->ready);
		tool_json_str(&j, "readiness", c->why);
		tool_json_bool(&j, "in_use", dev_in_use(&c->d));
		tool_json_int(&j, "numa_node", c->d.numa);
		if (c->d.group >= 0)
			tool_json_int(&j, "iommu_group", c->d.group);
		else
			tool_json_null(&j, "iommu_group");
		if (c->vfio_exists) {
			tool_json_obj(&j, "vfio_group_dev");
			tool_json_str(&j, "path", c->vfio_path);
			tool_json_str(&j, "owner", tool_uid_name(c->vfio_st.st_uid));
			tool_json_str(&j, "group", tool_gid_name(c->vfio_st.st_gid));
			tool_json_uint(&j, "mode", c->vfio_st.st_mode & 07777);
			tool_json_obj_end(&j);
		} else {
			tool_json_null(&j, "vfio_group_dev");
		}
		tool_json_str(&j, "vfio_cdev", c->cdev[0] ? c->cdev : NULL);
		tool_json_str(&j, "vfio_iommu", c->iommu);
		tool_json_arr(&j, "block_devices");
		for (size_t b = 0; b < c->d.blocks.n; b++)
			tool_json_str(&j, NULL, c->d.blocks.v[b]);
		tool_json_arr_end(&j);
		tool_json_obj_end(&j);
	}
	tool_json_arr_end(&j);
	tool_json_arr(&j, "hugepages");
	for (size_t i = 0; i < h->n; i++) {
		tool_json_obj(&j, NULL);
		tool_json_uint(&j, "size_kb", h->v[i].kb);
		if (h->v[i].node >= 0)
			tool_json_int(&j, "node", h->v[i].node);
		else
			tool_json_null(&j, "node");
		tool_json_uint(&j, "total", h->v[i].total);
		tool_json_uint(&j, "free", h->v[i].free);
		tool_json_obj_end(&j);
	}
	tool_json_arr_end(&j);
	tool_json_obj(&j, "vfio");
	if (have_iommufd(o) >= 0)
		tool_json_bool(&j, "iommufd", have_iommufd(o) == 1);
	else
		tool_json_null(&j, "iommufd");
	tool_json_str(&j, "noiommu_mode", devbind_noiommu_mode(o));
	tool_json_obj_end(&j);
	tool_json_uint(&j, "hugepage_pool_bytes", tool_hugepage_pool(o->sysfs));
	tool_json_memlock(&j);
	if (o->user)
		tool_json_user(&j, "user", o->etc, o->user);
	tool_json_obj_end(&j);
	tool_json_done(&j);
}

/* vfio's IOMMU interfaces on this machine, and per controller on vfio-pci
 * its cdev and what the library would use. */
static void print_vfio(const struct devbind_opts *o, const struct status_ctx *s)
{
	int fd = have_iommufd(o);
	const char *nm = devbind_noiommu_mode(o);

	printf("\nvfio: iommufd (/dev/iommu): %s; no-IOMMU mode: %s\n",
	       fd < 0 ? "not checked (a fake tree: give --dev-root)"
	       : fd   ? "yes"
		      : "no",
	       nm ? nm : "not in this kernel");
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].iommu)
			printf("  %s: cdev %s, the library would use %s%s\n", s->v[i].d.bdf,
			       s->v[i].cdev[0] ? s->v[i].cdev : "none", s->v[i].iommu,
			       s->v[i].noiommu ? " (physical addresses, unsafe: only for a program "
						 "that opts in, UPCIE_VFIO_IOMMU=noiommu)"
					       : "");
}

static void status_table(const struct devbind_opts *o, const struct status_ctx *s,
			 const struct hp_scan *h)
{
	static const char *const hdr[] = {"BDF",  "DRIVER", "USER-SPACE",    "IOMMU",
					  "NUMA", "BLOCK",  "VFIO-GROUP-DEV"};
	static const char *const hhdr[] = {"SIZE", "NODE", "FREE", "TOTAL"};
	struct tool_table *t = tool_table_new(7, hdr);
	char grp[16], numa[16], blk[256], own[PATH_MAX + 64];

	for (size_t i = 0; i < s->n; i++) {
		const struct ctrl_status *c = &s->v[i];
		const char *cells[7] = {
		    c->d.bdf, c->d.driver[0] ? c->d.driver : NULL, c->why, grp, numa, blk, own};
		size_t w = 0;

		snprintf(grp, sizeof(grp), c->d.group >= 0 ? "%d" : "-", c->d.group);
		snprintf(numa, sizeof(numa), "%d", c->d.numa);
		blk[0] = '\0';
		for (size_t b = 0; b < c->d.blocks.n && w < sizeof(blk); b++)
			w += (size_t)snprintf(blk + w, sizeof(blk) - w, "%s%s", b ? "," : "",
					      c->d.blocks.v[b]);
		if (!blk[0])
			snprintf(blk, sizeof(blk), "-");
		vfio_owner(c, own, sizeof(own));
		tool_table_add(t, cells);
	}
	if (s->n)
		tool_table_print(t, stdout, "");
	else
		printf("no NVMe controllers found under %s/bus/pci/devices\n",
		       o->sysfs ? o->sysfs : "/sys");
	tool_table_free(t);
	print_vfio(o, s);
	for (size_t i = 0; i < s->n; i++) {
		for (size_t r = 0; r < s->v[i].d.reasons.n; r++)
			printf("%s: in use: %s\n", s->v[i].d.bdf, s->v[i].d.reasons.v[r]);
		for (size_t r = 0; r < s->v[i].d.users.n; r++)
			printf("%s: in use: %s\n", s->v[i].d.bdf, s->v[i].d.users.v[r]);
	}

	printf("\nhugepages:\n");
	t = tool_table_new(4, hhdr);
	for (size_t i = 0; i < h->n; i++) {
		char sz[32], node[16], fr[32], tot[32];
		const char *cells[4] = {sz, node, fr, tot};

		tool_fmt_kb(h->v[i].kb, sz, sizeof(sz));
		if (h->v[i].node >= 0)
			snprintf(node, sizeof(node), "%d", h->v[i].node);
		else
			snprintf(node, sizeof(node), "all");
		snprintf(fr, sizeof(fr), "%llu", (unsigned long long)h->v[i].free);
		snprintf(tot, sizeof(tot), "%llu", (unsigned long long)h->v[i].total);
		tool_table_add(t, cells);
	}
	if (h->n)
		tool_table_print(t, stdout, "  ");
	else
		printf("  none offered (CONFIG_HUGETLBFS off?)\n");
	tool_table_free(t);
	tool_memlock_print();
	if (o->user)
		tool_memlock_check(o->etc, o->sysfs, o->user);
}

int devbind_status(const struct devbind_opts *o)
{
	struct status_ctx s = {.o = o};
	struct hp_scan h;
	int rc;

	rc = upcie_sysfs_pci_foreach(o->sysfs, status_cb, &s);
	if (rc) {
		tool_err("cannot list PCI devices under %s/bus/pci/devices: %s",
			 o->sysfs ? o->sysfs : "/sys", strerror(-rc));
		return TOOL_EXIT_SYSTEM;
	}
	hp_read(o, &h);
	if (o->json)
		status_json(o, &s, &h);
	else
		status_table(o, &s, &h);
	for (size_t i = 0; i < s.n; i++)
		dev_info_free(&s.v[i].d);
	free(s.v);
	free(h.v);
	return TOOL_EXIT_OK;
}
