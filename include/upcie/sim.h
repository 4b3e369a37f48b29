/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief The emulated NVMe controller
 *
 * An NVMe controller model that lives in the same process, behind the
 * "sim" PCI backend. It has a register BAR, doorbells honouring CAP.DSTRD,
 * the enable / disable / shutdown state machine, the admin commands the
 * driver uses (with the specification's validation and status codes), the
 * NVM command set against per-namespace memory, strict PRP checking (only
 * memory registered through the DMA heap may be touched; anything else is a
 * Data Transfer Error, never a crash), shadow doorbells (Doorbell Buffer
 * Config), counters, and fault injection.
 *
 * It runs either on a thread of its own (threaded = true) or is stepped by
 * the caller with upcie_sim_step(): tests step it so they are deterministic.
 * The driver's wait loops step it through the PCI idle hook.
 *
 * Functions:
 * ~~~
 *   upcie_sim_config_default()  a 2-namespace controller (512 B and 4 KiB)
 *   upcie_sim_create/_destroy
 *   upcie_pci_sim()             the model behind a PCI handle opened as "sim"
 *   upcie_sim_step()            process register changes and queued commands
 *   upcie_sim_step_n()          the same, at most n commands, round-robin over SQs
 *   upcie_sim_fault()           inject a fault
 *   upcie_sim_release_held()    run held commands late (fault HOLD)
 *   upcie_sim_event()           raise an Asynchronous Event
 *   upcie_sim_set_active_ns()   attach / detach namespaces (with an event)
 *   upcie_sim_set_md_sgl()      offer metadata SGLs (SGLS bit 19, PSDT 10b)
 *   upcie_sim_stats()           doorbell and command counters
 *   upcie_sim_ns_data()         a namespace's backing memory (for checks)
 *   upcie_sim_ns_md()           a namespace's metadata (for checks)
 *   upcie_sim_set_dma_hook()    watch every data transfer to / from host memory
 *   upcie_sim_bus_master()      PCI Bus Master Enable as the model sees it
 * ~~~
 *
 * Caveats: the model trusts nothing the driver writes into queues, but it
 * does read host memory directly, so it must be given the heap's ranges
 * (the sim backend's DMA map does that). Like a real device it powers on
 * with bus mastering off (PCI COMMAND.BME = 0): it processes nothing until
 * its driver turns it on (upcie_pci_bus_master(); upcie_nvme_ctrl_open()
 * does).
 */
#ifndef UPCIE_SIM_H
#define UPCIE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct upcie_sim;

/** Most namespaces a model has. */
#define UPCIE_SIM_MAX_NS 8

/** md_flags of a namespace. */
#define UPCIE_SIM_MD_EXTENDED                                                                      \
	(1u << 0) /**< metadata at the end of each block (FLBAS bit 4);                            \
		     else in a separate buffer (MPTR) */
#define UPCIE_SIM_MD_PI_FIRST                                                                      \
	(1u << 1) /**< PI in the first bytes of metadata (DPS.PIP);                                \
		     else in the last */
#define UPCIE_SIM_MD_GUARD64                                                                       \
	(1u << 2) /**< the namespace's LBA formats with 16 or more metadata                        \
		     bytes have the 64-bit guard PI format (ELBAF PIF 2:                           \
		     16-byte PI, CRC-64, 48-bit reference tags); the                               \
		     controller then reports extended LBA formats                                  \
		     (CTRATT.ELBAS) and answers Identify CNS 05h */

/**
 * A namespace. Its LBA formats (Identify NLBAF, LBAF) are the data size
 * with 0, 8, 16 and 64 metadata bytes, and ms when it is none of those;
 * the one with ms is in use. Format NVM picks another one, metadata
 * placement and PI at run time. With metadata the model keeps it per
 * block and moves it as the format says (interleaved with the data, or
 * through MPTR); with PI (types 1-3, 16-bit guard, or the 64-bit guard
 * with UPCIE_SIM_MD_GUARD64) it checks and inserts
 * it as the command's PRINFO asks, failing with End-to-end Guard (0282h),
 * Application Tag (0283h) or Reference Tag (0284h) Check Error, the
 * failing LBA in the Error Information log.
 */
struct upcie_sim_ns_config {
	uint32_t lba_size; /**< 512 or 4096 (any power of two 512..65536) */
	uint64_t nlbas;	   /**< blocks */
	uint16_t ms;	   /**< metadata bytes per block, 0..256 (default 0) */
	uint8_t pi;	   /**< protection information type 0 (none), 1, 2, 3; needs ms >= 8 */
	uint8_t md_flags;  /**< UPCIE_SIM_MD_* */
};

/** What the model is; upcie_sim_config_default() fills the defaults named below. */
struct upcie_sim_config {
	uint16_t mqes;	       /**< CAP.MQES, 0's based (default 1023) */
	uint8_t dstrd;	       /**< CAP.DSTRD (default 0) */
	uint8_t to;	       /**< CAP.TO in 500 ms units (default 2) */
	uint8_t mdts;	       /**< Identify MDTS, 2^n * 4 KiB; 0 = no limit (default 5: 128 KiB) */
	bool cqr;	       /**< CAP.CQR (default true) */
	bool dbbuf;	       /**< offer Doorbell Buffer Config (default true) */
	uint16_t max_ioqpairs; /**< I/O SQs and CQs it grants (default 16) */
	uint32_t nr_ns;	       /**< active namespaces, nsid 1..nr_ns (default 2) */
	struct upcie_sim_ns_config ns[UPCIE_SIM_MAX_NS]; /**< the namespaces, nr_ns of them */
	bool threaded;	 /**< run on an own thread (default false) */
	bool sgl;	 /**< SGLs for NVM I/O, Identify SGLS = 1 (default true); metadata
			      SGLs (bit 19) are off unless upcie_sim_set_md_sgl() */
	char serial[21]; /**< Identify SN, NUL-terminated */
	char model[41];	 /**< Identify MN, NUL-terminated */
};

/** A 2-namespace controller (512 B and 4 KiB blocks), with the defaults of upcie_sim_config. */
void upcie_sim_config_default(struct upcie_sim_config *cfg);

/**
 * Create a model.
 *
 * @return the model, or NULL and errno (EINVAL names the bad field in
 * upcie_errmsg()).
 */
struct upcie_sim *upcie_sim_create(const struct upcie_sim_config *cfg);
/** Stop the model's thread (if any) and free it; NULL is ignored. */
void upcie_sim_destroy(struct upcie_sim *sim);

struct upcie_pci_dev;
/**
 * The model behind a PCI handle opened as "sim" (its own, or the one given
 * in upcie_pci_opts.sim); NULL for any other handle.
 */
struct upcie_sim *upcie_pci_sim(const struct upcie_pci_dev *dev);

/**
 * Process register changes and queued commands.
 *
 * Process register changes and every command queued; returns how many
 * commands it processed. Safe to call from any thread (serialized). */
int upcie_sim_step(struct upcie_sim *sim);

/** Faults to inject with upcie_sim_fault(). */
enum upcie_sim_fault {
	UPCIE_SIM_FAULT_NONE = 0,   /**< clear all faults */
	UPCIE_SIM_FAULT_RDY_NEVER,  /**< CC.EN=1 never sets CSTS.RDY */
	UPCIE_SIM_FAULT_CFS,	    /**< CSTS.CFS set now */
	UPCIE_SIM_FAULT_DROP_CQE,   /**< the next 'arg' commands post no completion */
	UPCIE_SIM_FAULT_STATUS_NTH, /**< the arg-th command from now fails with 'status' */
	UPCIE_SIM_FAULT_REMOVED,    /**< registers read all-ones, nothing is processed */
	UPCIE_SIM_FAULT_SHN_NEVER,  /**< shutdown never completes */
	UPCIE_SIM_FAULT_HOLD, /**< the next 'arg' I/O commands are held, not run (see sim.c) */
	UPCIE_SIM_FAULT_ABORT_LOST,	   /**< Abort commands get no completion */
	UPCIE_SIM_FAULT_DELETE_SQ_REFUSED, /**< Delete I/O SQ fails */
	/** Completions a buggy or racing device might post (I/O queues only): */
	UPCIE_SIM_FAULT_DUP_CQE,     /**< the next 'arg' completions are posted twice */
	UPCIE_SIM_FAULT_STALE_CQE,   /**< post again, at the next completion, the one
					posted 'arg' (1..16) completions earlier on that CQ */
	UPCIE_SIM_FAULT_FOREIGN_CQE, /**< the next completion names another SQ id */
	/** The next admin command with opcode 'arg' fails with 'status', or,
	 * with status 0, gets no completion (lost). */
	UPCIE_SIM_FAULT_ADMIN_OPC,
	/** Identify data (and CAP) a buggy device might return, from the next
	 * enable or Identify on: 'arg' is an enum upcie_sim_bad_id. */
	UPCIE_SIM_FAULT_BAD_ID,
	/** Interrupts: the next 'arg' interrupts (0: one) are not signalled (their
	 * entries still post); signal vector 'arg' now with nothing posted. */
	UPCIE_SIM_FAULT_IRQ_LOST,
	UPCIE_SIM_FAULT_IRQ_SPURIOUS,
	/** Optional NVM commands: from the next Identify on, ONCS lacks the
	 * bits set in 'arg' (UPCIE_NVME_ONCS_*) and those commands fail with
	 * Invalid Command Opcode; arg 0 offers them all again. */
	UPCIE_SIM_FAULT_ONCS_OFF,
};

/** Bad Identify data for UPCIE_SIM_FAULT_BAD_ID. */
enum upcie_sim_bad_id {
	UPCIE_SIM_BAD_ID_MDTS0 = 1, /**< Identify MDTS 0 (no limit) */
	UPCIE_SIM_BAD_ID_NN_HUGE,   /**< Identify NN 0xffffffff */
	UPCIE_SIM_BAD_ID_FLBAS,	    /**< namespace 1's FLBAS beyond NLBAF */
	UPCIE_SIM_BAD_ID_NSZE0,	    /**< namespace 1 reports NSZE 0 */
	UPCIE_SIM_BAD_ID_MQES0,	    /**< CAP.MQES 0 (a 1-entry queue: invalid) */
};

/**
 * Inject a fault.
 *
 * status: (SCT << 8) | SC for STATUS_NTH and ADMIN_OPC, ignored otherwise.
 * What each fault does exactly is written above upcie_sim_fault() in
 * lib/sim/sim.c. Returns 0, or -EINVAL for a bad arg. */
int upcie_sim_fault(struct upcie_sim *sim, enum upcie_sim_fault fault, uint32_t arg,
		    uint16_t status);

/** The model's counters (upcie_sim_stats()). */
struct upcie_sim_stats {
	uint64_t sq_doorbells; /**< SQ tail doorbell writes seen */
	uint64_t cq_doorbells; /**< CQ head doorbell writes seen */
	uint64_t admin_cmds;   /**< admin commands processed */
	uint64_t io_cmds;      /**< I/O commands processed */
	uint64_t errors;       /**< completions with a non-zero status */
	uint64_t xfer_errors;  /**< PRP or address check failures */
	uint64_t shadow_reads; /**< shadow doorbell values taken */
	uint64_t enables;      /**< CC.EN 0 -> 1 transitions */
	uint64_t shutdowns;    /**< CC.SHN handled */
	uint64_t aborts;       /**< Abort commands seen */
};

/** The model's doorbell and command counters, into st. */
void upcie_sim_stats(struct upcie_sim *sim, struct upcie_sim_stats *st);
/**
 * Interrupts signalled.
 *
 * Interrupts the model signalled on vector vec (UINT32_MAX: all vectors).
 * It has one MSI-X vector per queue id (max_ioqpairs + 1); see
 * upcie_pci_irq_enable(). */
uint64_t upcie_sim_irqs(struct upcie_sim *sim, unsigned vec);
/** Zero the counters of upcie_sim_stats(). */
void upcie_sim_stats_reset(struct upcie_sim *sim);

/**
 * Run held commands late (fault HOLD).
 *
 * Run the commands held by UPCIE_SIM_FAULT_HOLD now, as a late device
 * would (their data moves, their completions post) if the controller still
 * has their queue; returns how many ran. */
int upcie_sim_release_held(struct upcie_sim *sim);
/**
 * Raise an Asynchronous Event.
 *
 * Raise an Asynchronous Event: completes a held event request (or waits
 * for one) with dword 0 = type | info << 8 | lid << 16. */
int upcie_sim_event(struct upcie_sim *sim, uint8_t type, uint8_t info, uint8_t lid);
/**
 * Offer or withdraw metadata SGLs (Identify Controller SGLS bit 19).
 *
 * With it (and config.sgl), NVM Read, Write and Compare take PSDT 10b:
 * SGL1 an SGL for the data and MPTR the address of one qword-aligned SGL
 * descriptor for the separate metadata buffer, a Data Block or a (Last)
 * Segment pointing at a list. Every descriptor is checked as the data SGL's
 * are; the Data Blocks must be dword aligned (SGLS bit 17, byte-aligned
 * metadata, is not offered) and sum to exactly the metadata length, else
 * the command fails with Metadata SGL Length Invalid (0010h), SGL
 * Descriptor Type Invalid (0011h), SGL Segment Descriptor Invalid (000Dh),
 * Invalid Field (0002h, a misaligned MPTR or metadata block) or Data
 * Transfer Error (0004h, memory outside the guest's), and nothing moves to
 * the namespace. Without bit 19, PSDT 10b fails with Invalid Field.
 *
 * Off by default, so that the model's Identify data stays as before; the
 * host sees a change at its next Identify Controller (open the controller
 * after this call, or reset it).
 *
 * @return 0, or -EINVAL (no model, or on without config.sgl).
 */
int upcie_sim_set_md_sgl(struct upcie_sim *sim, bool on);

/**
 * Attach or detach namespaces (with an event).
 *
 * Make namespaces 1..nr_ns active (at most the number the model was
 * created with) and raise Namespace Attribute Changed; the nsids that
 * changed go into the Changed Namespace List (log 04h) until it is read. */
int upcie_sim_set_active_ns(struct upcie_sim *sim, uint32_t nr_ns);

/**
 * A DMA hook: sees every data transfer to or from host memory.
 *
 * Every data transfer the model makes to or from host memory for an admin
 * or NVM command, as it happens (after the address checks, before the
 * bytes move): bus address (the virtual address in the sim), length and
 * direction (to_host: the device writes host memory). One call per
 * contiguous piece: a PRP page, the page of a PRP list entry, an SGL Data
 * Block. Not reported: PRP list and SGL descriptor reads, queue entries
 * (SQEs, CQEs), shadow doorbell and EventIdx accesses, and transfers that
 * fail their checks (those touch nothing). NULL turns it off. Called with
 * the model's lock held: the hook must not call the model.
 */
typedef void (*upcie_sim_dma_hook)(void *arg, uint64_t bus, size_t len, bool to_host);
/** Watch every data transfer to / from host memory with hook(arg, ...); NULL turns it off. */
void upcie_sim_set_dma_hook(struct upcie_sim *sim, upcie_sim_dma_hook hook, void *arg);

/**
 * Process at most max queued commands, round-robin over SQs.
 *
 * Process at most max queued commands (register changes first); returns
 * how many it processed, or -EINVAL. The SQs, admin included, take turns
 * one command each, in qid order, starting after the SQ served last by the
 * previous call: stepping one command at a time moves every queue.
 * Doorbells are read once per call. upcie_sim_step() is this with no limit
 * (it runs the admin SQ, then each I/O SQ, until empty); max 0 only takes
 * register changes. */
int upcie_sim_step_n(struct upcie_sim *sim, uint32_t max);

/**
 * PCI Bus Master Enable as the model sees it.
 *
 * Bus Master Enable as the model sees it (PCI COMMAND bit 2): while it is
 * off the model fetches no command, moves no data, reads or writes no
 * shadow doorbell and posts no completion (events wait, held commands stay
 * held); registers still work, and a reset drops queued commands as usual.
 * Off at power-on. false for NULL. */
bool upcie_sim_bus_master(struct upcie_sim *sim);

/** Backing memory of namespace nsid and its length (into *len), or NULL (for checks). */
void *upcie_sim_ns_data(struct upcie_sim *sim, uint32_t nsid, size_t *len);
/** Metadata of namespace nsid, or NULL when its format has none: block n's
 * starts at n * *stride, its first ms bytes (the format in use) count;
 * PI in them is big-endian as on the wire. For checks, and for corrupting
 * it on purpose. */
void *upcie_sim_ns_md(struct upcie_sim *sim, uint32_t nsid, uint32_t *stride);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_SIM_H */
