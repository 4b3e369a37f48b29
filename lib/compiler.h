/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Compiler and CPU helpers shared by every layer of the library:
 * symbol visibility, branch hints and the memory barriers of the hot path.
 *
 * Barriers, and what each one orders:
 *   upcie_wmb()  normal-memory stores (SQEs, CQ slots consumed, shadow
 *                doorbells) before a later store the device acts on;
 *   upcie_rmb()  the load that saw a new CQE phase before the loads of
 *                the rest of that CQE;
 *   upcie_mb()   a store (a shadow doorbell) before a later load (its
 *                EventIdx).
 * x86 keeps stores in order and loads in order (TSO), so for write-back
 * memory a compiler barrier would do; sfence also orders against
 * write-combining mappings of a BAR, mfence orders a store before a load.
 */
#ifndef UPCIE_LIB_COMPILER_H
#define UPCIE_LIB_COMPILER_H

#define HIDDEN __attribute__((visibility("hidden")))

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#if defined(__x86_64__) || defined(__i386__)
#define upcie_wmb() __asm__ volatile("sfence" ::: "memory")
#define upcie_rmb() __asm__ volatile("" ::: "memory")
#define upcie_mb()  __asm__ volatile("mfence" ::: "memory")
#else
#define upcie_wmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define upcie_rmb() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define upcie_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

#endif
