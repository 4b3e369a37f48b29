/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Compiler and CPU helpers shared by every layer of the library:
 * symbol visibility, branch hints and the memory barriers of the hot path.
 *
 * Barriers, and what each one orders. The device is one more observer of
 * host memory (its DMA); its registers are mapped from a uio 'resourceN' file
 * or a vfio region, which the kernel maps uncached: Device-nGnRE on arm64
 * (pgprot_device / pgprot_noncached), UC on x86. So MMIO stores are neither
 * merged nor reordered with each other, but normal-memory (write-back)
 * accesses may still pass them unless a barrier says otherwise.
 *
 *   upcie_dma_wmb()  normal-memory stores before a later normal-memory store
 *                    the device reads by DMA: the SQEs before the shadow SQ
 *                    doorbell (Doorbell Buffer Config) that publishes them;
 *   upcie_wmb()      every earlier store (normal memory or MMIO) before a
 *                    later MMIO store: the SQEs before an SQ doorbell write,
 *                    the admin queue registers (and the zeroed queues)
 *                    before CC.EN;
 *   upcie_rmb()      earlier loads before later loads and stores: the load
 *                    that saw a new CQE phase before the loads of the rest of
 *                    that CQE, and the loads of consumed CQEs before the CQ
 *                    head (shadow or MMIO) that lets the device reuse the slots;
 *   upcie_mb()       earlier stores before later loads (and everything else):
 *                    a shadow doorbell store before the load of its EventIdx.
 */
#ifndef UPCIE_LIB_COMPILER_H
#define UPCIE_LIB_COMPILER_H

#define HIDDEN __attribute__((visibility("hidden")))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#if defined(__x86_64__) || defined(__i386__)
/*
 * x86 (TSO) keeps stores in order with stores and loads in order with loads
 * and stores, for write-back memory and UC MMIO alike: the compiler barrier
 * is what the DMA-only and read cases need. sfence also orders against a
 * write-combining mapping of a BAR; only a store followed by a load needs a
 * real fence (mfence), since x86 lets a load pass an earlier store.
 */
#define upcie_dma_wmb() __asm__ volatile("" ::: "memory")
#define upcie_wmb()	__asm__ volatile("sfence" ::: "memory")
#define upcie_rmb()	__asm__ volatile("" ::: "memory")
#define upcie_mb()	__asm__ volatile("mfence" ::: "memory")
#elif defined(__aarch64__)
/*
 * Armv8-A orders almost nothing by itself: loads and stores to different
 * addresses may be observed in any order, and __atomic_thread_fence()
 * compiles to 'dmb ish', which orders only for the inner-shareable domain
 * (the CPUs), not for a device. Barriers here use the outer-shareable (osh)
 * or full-system forms, as Linux does for DMA (dma_wmb / dma_rmb are
 * 'dmb oshst' / 'dmb oshld', wmb is 'dsb st', mb 'dsb sy').
 *
 * dma_wmb: 'dmb oshst' orders the SQE stores before the shadow doorbell
 *   store for every outer-shareable observer, the device's DMA included.
 * wmb: 'dsb st' completes every earlier store before any later instruction,
 *   so the SQEs (normal memory) are visible before the Device-nGnRE doorbell
 *   store leaves the CPU. Linux's writel() gets by with 'dmb oshst'; the DSB
 *   waits for completion instead of relying on the interconnect to keep the
 *   order for the device (DPDK's rte_wmb and SPDK's spdk_wmb do the same).
 * rmb: 'dmb oshld' orders an earlier load before every later load and
 *   store: the phase-bit load before the CQE body loads (the device writes
 *   the status word last), and consumed CQEs before the CQ head update.
 * mb: 'dmb osh' orders earlier stores before later loads: the shadow
 *   doorbell store before the EventIdx load; without it the device could
 *   miss the new shadow value while we skip the MMIO doorbell.
 */
#define upcie_dma_wmb() __asm__ volatile("dmb oshst" ::: "memory")
#define upcie_wmb()	__asm__ volatile("dsb st" ::: "memory")
#define upcie_rmb()	__asm__ volatile("dmb oshld" ::: "memory")
#define upcie_mb()	__asm__ volatile("dmb osh" ::: "memory")
#else
/* Guessing (a C11 fence) would give CPU-only ordering on most of them. */
#error "libupcie has DMA/MMIO barriers for x86 and aarch64 only: add this CPU to lib/compiler.h"
#endif

/* NVMe structures (SQEs, CQEs, Identify data) and registers are little
 * endian and used in place; aarch64_be defines __aarch64__ too. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libupcie supports little-endian CPUs only (NVMe data structures are used in place)"
#endif

#endif
