/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Built instead of lib/sim/ when the library has no sim (meson -Dsim=false):
 * the backend table's sim entry is empty, so "sim" opens nothing, and the
 * model's API is here with the same symbols and no model behind it. A
 * program built against a library with the sim (upcie-perf, the fio
 * engine) then still links and runs against one without, and asking for
 * the model gives an error that says why. The exported symbols are the
 * same either way (one version map, one ABI).
 */
#include <errno.h>
#include <string.h>

#include <upcie/sim.h>

#include "backend.h"
#include "core/log.h"

const struct upcie_pci_backend_desc *const upcie_pci_sim_backend = NULL;

static int no_sim(void)
{
	return upcie_err(-ENOTSUP, "this libupcie was built without the emulated controller "
				   "(meson -Dsim=false): use a real device, or a build with "
				   "-Dsim=true");
}

void upcie_sim_config_default(struct upcie_sim_config *cfg)
{
	if (cfg)
		memset(cfg, 0, sizeof(*cfg));
}

struct upcie_sim *upcie_sim_create(const struct upcie_sim_config *cfg)
{
	(void)cfg;
	errno = -no_sim();
	return NULL;
}

/* No model can exist: every call below has a handle it cannot have been
 * given, and says so. */
void upcie_sim_destroy(struct upcie_sim *sim)
{
	(void)sim;
}

struct upcie_sim *upcie_pci_sim(const struct upcie_pci_dev *dev)
{
	(void)dev;
	return NULL;
}

int upcie_sim_step(struct upcie_sim *sim)
{
	(void)sim;
	return no_sim();
}

int upcie_sim_step_n(struct upcie_sim *sim, uint32_t max)
{
	(void)sim;
	(void)max;
	return no_sim();
}

int upcie_sim_fault(struct upcie_sim *sim, enum upcie_sim_fault fault, uint32_t arg,
		    uint16_t status)
{
	(void)sim;
	(void)fault;
	(void)arg;
	(void)status;
	return no_sim();
}

void upcie_sim_stats(struct upcie_sim *sim, struct upcie_sim_stats *st)
{
	(void)sim;
	if (st)
		memset(st, 0, sizeof(*st));
}

uint64_t upcie_sim_irqs(struct upcie_sim *sim, unsigned vec)
{
	(void)sim;
	(void)vec;
	return 0;
}

void upcie_sim_stats_reset(struct upcie_sim *sim)
{
	(void)sim;
}

int upcie_sim_release_held(struct upcie_sim *sim)
{
	(void)sim;
	return no_sim();
}

int upcie_sim_event(struct upcie_sim *sim, uint8_t type, uint8_t info, uint8_t lid)
{
	(void)sim;
	(void)type;
	(void)info;
	(void)lid;
	return no_sim();
}

int upcie_sim_set_md_sgl(struct upcie_sim *sim, bool on)
{
	(void)sim;
	(void)on;
	return no_sim();
}

int upcie_sim_set_active_ns(struct upcie_sim *sim, uint32_t nr_ns)
{
	(void)sim;
	(void)nr_ns;
	return no_sim();
}

void upcie_sim_set_dma_hook(struct upcie_sim *sim, upcie_sim_dma_hook hook, void *arg)
{
	(void)sim;
	(void)hook;
	(void)arg;
}

bool upcie_sim_bus_master(struct upcie_sim *sim)
{
	(void)sim;
	return false;
}

void *upcie_sim_ns_data(struct upcie_sim *sim, uint32_t nsid, size_t *len)
{
	(void)sim;
	(void)nsid;
	if (len)
		*len = 0;
	return NULL;
}

void *upcie_sim_ns_md(struct upcie_sim *sim, uint32_t nsid, uint32_t *stride)
{
	(void)sim;
	(void)nsid;
	if (stride)
		*stride = 0;
	return NULL;
}
