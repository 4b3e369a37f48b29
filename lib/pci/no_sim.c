/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Built instead of lib/sim/ when the library has no sim (meson -Dsim=false):
 * the backend table's sim entry is empty, so "sim" opens nothing.
 */
#include "backend.h"

const struct upcie_pci_backend_desc *const upcie_pci_sim_backend = NULL;
