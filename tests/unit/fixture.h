/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test fixture: a controller on the stepped sim, or on a real device when
 * UPCIE_TEST_DEVICE names one (the guest harness runs the same suites
 * against QEMU's controllers through uio and vfio).
 */
#ifndef UPCIE_TESTS_FIXTURE_H
#define UPCIE_TESTS_FIXTURE_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <upcie/sim.h>
#include <upcie/upcie.h>

#include "cu.h"

struct fx {
	struct upcie_sim *sim; /* NULL on a real device */
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	const char *name;
};

/* The device under test: "sim" unless UPCIE_TEST_DEVICE says otherwise. */
static inline const char *fx_device(void)
{
	const char *d = getenv("UPCIE_TEST_DEVICE");
	return d && *d ? d : "sim";
}

static inline bool fx_is_sim(void)
{
	return !strcmp(fx_device(), "sim");
}

#define FX_SIM_ONLY()                                                                              \
	do {                                                                                       \
		if (!fx_is_sim()) {                                                                \
			upcie_cu_skip("needs the sim (fault injection or its counters)");          \
			return;                                                                    \
		}                                                                                  \
	} while (0)

static inline double fx_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Open device + heap (+ controller unless no_ctrl). cfg: sim config or NULL. */
static inline int fx_open_opts(struct fx *f, const struct upcie_sim_config *cfg, size_t heap_size,
			       bool no_ctrl, const struct upcie_nvme_ctrl_opts *copts)
{
	struct upcie_pci_opts po = {0};

	memset(f, 0, sizeof(*f));
	f->name = fx_device();
	if (fx_is_sim()) {
		struct upcie_sim_config def;
		if (!cfg) {
			upcie_sim_config_default(&def);
			cfg = &def;
		}
		f->sim = upcie_sim_create(cfg);
		if (!f->sim)
			return -errno;
		po.sim = f->sim;
	}
	f->dev = upcie_pci_open(f->name, &po);
	if (!f->dev) {
		int rc = -errno;
		upcie_sim_destroy(f->sim);
		f->sim = NULL;
		return rc;
	}
	f->heap = upcie_dma_heap_create(f->dev, heap_size ? heap_size : (16u << 20),
					f->sim ? UPCIE_DMA_NO_HUGEPAGES : 0);
	if (!f->heap) {
		int rc = -errno;
		printf("\n  heap: %s\n", upcie_errmsg());
		upcie_pci_close(f->dev);
		upcie_sim_destroy(f->sim);
		f->dev = NULL;
		f->sim = NULL;
		return rc;
	}
	if (no_ctrl)
		return 0;
	f->ctrl = upcie_nvme_ctrl_open(f->dev, f->heap, copts);
	if (!f->ctrl) {
		int rc = -errno;
		printf("\n  ctrl open: %s\n", upcie_errmsg());
		return rc;
	}
	return 0;
}

static inline int fx_open(struct fx *f)
{
	return fx_open_opts(f, NULL, 0, false, NULL);
}

/* Close everything; checks that the heap got back every byte. */
static inline void fx_close(struct fx *f)
{
	struct upcie_dma_heap_info hi;

	if (f->ctrl)
		CU_ASSERT_EQUAL(upcie_nvme_ctrl_close(f->ctrl), 0);
	f->ctrl = NULL;
	if (f->heap) {
		upcie_dma_heap_info(f->heap, &hi);
		CU_ASSERT_EQUAL(hi.used, 0);
		CU_ASSERT_EQUAL(hi.allocations, 0);
		upcie_dma_heap_destroy(f->heap);
	}
	if (f->dev)
		upcie_pci_close(f->dev);
	upcie_sim_destroy(f->sim);
	memset(f, 0, sizeof(*f));
}

/* Let the device run: step the sim; nothing to do for real hardware. */
static inline void fx_step(struct fx *f)
{
	if (f->sim)
		upcie_sim_step(f->sim);
}

/* Poll (stepping the sim) until *count reaches want or 10 s pass. */
static inline int fx_wait(struct fx *f, struct upcie_nvme_qpair *qp, volatile unsigned *count,
			  unsigned want)
{
	double deadline = fx_now() + 10.0;

	while (*count < want) {
		fx_step(f);
		upcie_nvme_poll(qp, 0);
		if (fx_now() > deadline)
			return -ETIMEDOUT;
	}
	return 0;
}

/* A callback that counts completions and remembers the last status. */
struct fx_counter {
	volatile unsigned done;
	unsigned errors;
	uint16_t last_status;
};

static inline void fx_count_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct fx_counter *c = arg;
	uint16_t st = upcie_nvme_cqe_status(cqe);

	c->last_status = st;
	if (st)
		c->errors++;
	c->done++;
}

/* First namespace with the given LBA size, or NULL. */
/* Namespace nsid of f's controller; the test stops when there is none. */
static inline const struct upcie_nvme_ns *fx_ns(struct fx *f, uint32_t nsid)
{
	const struct upcie_nvme_ns *ns = upcie_nvme_ns_get(f->ctrl, nsid);

	CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
	return ns;
}

/* Bytes that differ with the seed and along the buffer. */
static inline void fx_fill(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 37 + i * 13 + (i >> 7));
}

static inline const struct upcie_nvme_ns *fx_ns_with_lba(struct fx *f, uint32_t lba_size)
{
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(f->ctrl); ns;
	     ns = upcie_nvme_ns_next(f->ctrl, ns))
		if (ns->lba_size == lba_size)
			return ns;
	return NULL;
}

#endif
