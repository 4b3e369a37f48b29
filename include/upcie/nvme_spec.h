/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief NVMe specification definitions
 *
 * Plain data from the NVMe Base Specification 2.0 and the NVM Command Set
 * Specification 1.0: controller register offsets and fields, the 64-byte
 * submission queue entry, the 16-byte completion queue entry, opcodes,
 * status codes and the Identify structures a driver needs.
 *
 * Nothing here touches hardware. Every structure whose size the
 * specification fixes carries a _Static_assert.
 *
 * Functions:
 * ~~~
 *   upcie_nvme_cap_*()        one accessor per CAP field
 *   upcie_nvme_csts_*()       one accessor per CSTS field
 *   upcie_nvme_cc_*()         CC field builders
 *   upcie_nvme_sq_db_off()    SQ tail doorbell offset for a queue id
 *   upcie_nvme_cq_db_off()    CQ head doorbell offset for a queue id
 *   upcie_nvme_cqe_status()   (SCT << 8) | SC of a completion
 *   upcie_nvme_status_str()   readable name of a status
 * ~~~
 *
 * Caveats: the structures are little-endian as on the wire; this library
 * targets little-endian hosts only.
 */
#ifndef UPCIE_NVME_SPEC_H
#define UPCIE_NVME_SPEC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#define UPCIE_STATIC_ASSERT static_assert
#else
#define UPCIE_STATIC_ASSERT _Static_assert
#endif

/** Controller registers (Base spec 3.1.3, Figure 33). */
#define UPCIE_NVME_REG_CAP    0x00   /**< Controller Capabilities (64 bit) */
#define UPCIE_NVME_REG_VS     0x08   /**< Version */
#define UPCIE_NVME_REG_INTMS  0x0c   /**< Interrupt Mask Set */
#define UPCIE_NVME_REG_INTMC  0x10   /**< Interrupt Mask Clear */
#define UPCIE_NVME_REG_CC     0x14   /**< Controller Configuration */
#define UPCIE_NVME_REG_CSTS   0x1c   /**< Controller Status */
#define UPCIE_NVME_REG_NSSR   0x20   /**< NVM Subsystem Reset */
#define UPCIE_NVME_REG_AQA    0x24   /**< Admin Queue Attributes */
#define UPCIE_NVME_REG_ASQ    0x28   /**< Admin Submission Queue Base (64 bit) */
#define UPCIE_NVME_REG_ACQ    0x30   /**< Admin Completion Queue Base (64 bit) */
#define UPCIE_NVME_REG_CMBLOC 0x38   /**< Controller Memory Buffer Location */
#define UPCIE_NVME_REG_CMBSZ  0x3c   /**< Controller Memory Buffer Size */
#define UPCIE_NVME_REG_DBS    0x1000 /**< first doorbell */

/* CAP: Controller Capabilities (Base spec 3.1.3.1). */
/** Maximum Queue Entries Supported, 0's based. */
static inline uint32_t upcie_nvme_cap_mqes(uint64_t cap)
{
	return (uint32_t)(cap & 0xffff);
}
/** Contiguous Queues Required. */
static inline uint32_t upcie_nvme_cap_cqr(uint64_t cap)
{
	return (uint32_t)((cap >> 16) & 0x1);
}
/** Arbitration Mechanism Supported. */
static inline uint32_t upcie_nvme_cap_ams(uint64_t cap)
{
	return (uint32_t)((cap >> 17) & 0x3);
}
/** Timeout, in 500 ms units: worst-case time for CSTS.RDY to change. */
static inline uint32_t upcie_nvme_cap_to(uint64_t cap)
{
	return (uint32_t)((cap >> 24) & 0xff);
}
/** Doorbell Stride: doorbells are (4 << DSTRD) bytes apart. */
static inline uint32_t upcie_nvme_cap_dstrd(uint64_t cap)
{
	return (uint32_t)((cap >> 32) & 0xf);
}
/** NVM Subsystem Reset Supported. */
static inline uint32_t upcie_nvme_cap_nssrs(uint64_t cap)
{
	return (uint32_t)((cap >> 36) & 0x1);
}
/** Command Sets Supported (bit 0: NVM, bit 6: I/O command sets, bit 7: admin only). */
static inline uint32_t upcie_nvme_cap_css(uint64_t cap)
{
	return (uint32_t)((cap >> 37) & 0xff);
}
/** Memory Page Size Minimum: 2 ^ (12 + MPSMIN) bytes. */
static inline uint32_t upcie_nvme_cap_mpsmin(uint64_t cap)
{
	return (uint32_t)((cap >> 48) & 0xf);
}
/** Memory Page Size Maximum: 2 ^ (12 + MPSMAX) bytes. */
static inline uint32_t upcie_nvme_cap_mpsmax(uint64_t cap)
{
	return (uint32_t)((cap >> 52) & 0xf);
}
/** Controller Memory Buffer Supported. */
static inline uint32_t upcie_nvme_cap_cmbs(uint64_t cap)
{
	return (uint32_t)((cap >> 57) & 0x1);
}

#define UPCIE_NVME_CAP_CSS_NVM	0x01
#define UPCIE_NVME_CAP_CSS_IOCS 0x40
#define UPCIE_NVME_CAP_CSS_NOIO 0x80

/** VS: Version (Base spec 3.1.3.2): Major Version Number. */
static inline uint32_t upcie_nvme_vs_mjr(uint32_t vs)
{
	return vs >> 16;
}
/** VS: Minor Version Number. */
static inline uint32_t upcie_nvme_vs_mnr(uint32_t vs)
{
	return (vs >> 8) & 0xff;
}
/** VS: Tertiary Version Number. */
static inline uint32_t upcie_nvme_vs_ter(uint32_t vs)
{
	return vs & 0xff;
}

/** CC: Controller Configuration (Base spec 3.1.3.5). */
#define UPCIE_NVME_CC_EN	   (1u << 0)
#define UPCIE_NVME_CC_CSS_SHIFT	   4 /**< I/O Command Set Selected */
#define UPCIE_NVME_CC_CSS_NVM	   0u
#define UPCIE_NVME_CC_CSS_ALL	   6u
#define UPCIE_NVME_CC_CSS_ADMIN	   7u
#define UPCIE_NVME_CC_MPS_SHIFT	   7  /**< Memory Page Size: 2 ^ (12 + MPS) */
#define UPCIE_NVME_CC_AMS_SHIFT	   11 /**< Arbitration Mechanism Selected */
#define UPCIE_NVME_CC_SHN_SHIFT	   14 /**< Shutdown Notification */
#define UPCIE_NVME_CC_SHN_MASK	   (3u << 14)
#define UPCIE_NVME_CC_SHN_NORMAL   (1u << 14)
#define UPCIE_NVME_CC_SHN_ABRUPT   (2u << 14)
#define UPCIE_NVME_CC_IOSQES_SHIFT 16 /**< I/O SQ Entry Size: 2 ^ n */
#define UPCIE_NVME_CC_IOCQES_SHIFT 20 /**< I/O CQ Entry Size: 2 ^ n */

/** CC field reader: Enable (field readers for CC serve the emulated controller and printers). */
static inline uint32_t upcie_nvme_cc_en(uint32_t cc)
{
	return cc & 1;
}
/** CC field reader: I/O Command Set Selected. */
static inline uint32_t upcie_nvme_cc_css(uint32_t cc)
{
	return (cc >> 4) & 0x7;
}
/** CC field reader: Memory Page Size: 2 ^ (12 + MPS) bytes. */
static inline uint32_t upcie_nvme_cc_mps(uint32_t cc)
{
	return (cc >> 7) & 0xf;
}
/** CC field reader: Shutdown Notification. */
static inline uint32_t upcie_nvme_cc_shn(uint32_t cc)
{
	return (cc >> 14) & 0x3;
}
/** CC field reader: I/O SQ Entry Size: 2 ^ n. */
static inline uint32_t upcie_nvme_cc_iosqes(uint32_t cc)
{
	return (cc >> 16) & 0xf;
}
/** CC field reader: I/O CQ Entry Size: 2 ^ n. */
static inline uint32_t upcie_nvme_cc_iocqes(uint32_t cc)
{
	return (cc >> 20) & 0xf;
}

/** CSTS: Controller Status (Base spec 3.1.3.6). */
#define UPCIE_NVME_CSTS_RDY	    (1u << 0)
#define UPCIE_NVME_CSTS_CFS	    (1u << 1)
#define UPCIE_NVME_CSTS_SHST_MASK   (3u << 2)
#define UPCIE_NVME_CSTS_SHST_NORMAL (0u << 2)
#define UPCIE_NVME_CSTS_SHST_OCCUR  (1u << 2)
#define UPCIE_NVME_CSTS_SHST_DONE   (2u << 2)
#define UPCIE_NVME_CSTS_NSSRO	    (1u << 4)
#define UPCIE_NVME_CSTS_PP	    (1u << 5)

/** Ready. */
static inline uint32_t upcie_nvme_csts_rdy(uint32_t csts)
{
	return csts & 1;
}
/** Controller Fatal Status. */
static inline uint32_t upcie_nvme_csts_cfs(uint32_t csts)
{
	return (csts >> 1) & 1;
}
/** Shutdown Status: 0 normal, 1 in progress, 2 complete. */
static inline uint32_t upcie_nvme_csts_shst(uint32_t csts)
{
	return (csts >> 2) & 3;
}

/** AQA: Admin Queue Attributes, both sizes 0's based. */
static inline uint32_t upcie_nvme_aqa(uint32_t sq_entries, uint32_t cq_entries)
{
	return ((cq_entries - 1) << 16) | (sq_entries - 1);
}

/**
 * Offset of the SQ tail doorbell of queue qid.
 *
 * Doorbells (Base spec 3.1.3.x): SQ y tail at 0x1000 + (2y) * (4 << DSTRD),
 * CQ y head at 0x1000 + (2y + 1) * (4 << DSTRD).
 */
static inline uint32_t upcie_nvme_sq_db_off(uint32_t qid, uint32_t dstrd)
{
	return UPCIE_NVME_REG_DBS + (2 * qid) * (4u << dstrd);
}
/** Offset of the CQ head doorbell of queue qid (see upcie_nvme_sq_db_off()). */
static inline uint32_t upcie_nvme_cq_db_off(uint32_t qid, uint32_t dstrd)
{
	return UPCIE_NVME_REG_DBS + (2 * qid + 1) * (4u << dstrd);
}

/** Submission queue entry (Base spec 4.2, Figure 88). */
struct upcie_nvme_sqe {
	uint8_t opc;   /**< opcode */
	uint8_t flags; /**< FUSE (bits 1:0), PSDT (bits 7:6) */
	uint16_t cid;  /**< command identifier */
	uint32_t nsid; /**< namespace identifier */
	uint32_t cdw2;
	uint32_t cdw3;
	uint64_t mptr; /**< metadata pointer */
	uint64_t prp1; /**< data pointer, PRP entry 1 */
	uint64_t prp2; /**< data pointer, PRP entry 2 or PRP list */
	uint32_t cdw10;
	uint32_t cdw11;
	uint32_t cdw12;
	uint32_t cdw13;
	uint32_t cdw14;
	uint32_t cdw15;
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_sqe) == 64, "SQE is 64 bytes");

/** Completion queue entry (Base spec 4.6, Figure 90). */
struct upcie_nvme_cqe {
	uint32_t dw0;	 /**< command specific */
	uint32_t dw1;	 /**< command specific */
	uint16_t sqhd;	 /**< SQ head pointer */
	uint16_t sqid;	 /**< SQ identifier */
	uint16_t cid;	 /**< command identifier */
	uint16_t status; /**< bit 0: phase tag; bits 15:1: status field */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_cqe) == 16, "CQE is 16 bytes");

/** Status field of a CQE (Base spec 4.6.1). */
static inline uint16_t upcie_nvme_cqe_phase(const struct upcie_nvme_cqe *cqe)
{
	return cqe->status & 1;
}
/** Status Code. */
static inline uint16_t upcie_nvme_cqe_sc(const struct upcie_nvme_cqe *cqe)
{
	return (cqe->status >> 1) & 0xff;
}
/** Status Code Type. */
static inline uint16_t upcie_nvme_cqe_sct(const struct upcie_nvme_cqe *cqe)
{
	return (cqe->status >> 9) & 0x7;
}
/** Do Not Retry. */
static inline uint16_t upcie_nvme_cqe_dnr(const struct upcie_nvme_cqe *cqe)
{
	return (cqe->status >> 15) & 1;
}
/** More: more status information in the Error Information log page. */
static inline uint16_t upcie_nvme_cqe_more(const struct upcie_nvme_cqe *cqe)
{
	return (cqe->status >> 14) & 1;
}
/** Command Retry Delay: which CRDT field (1..3) to wait before a retry; 0 none. */
static inline uint16_t upcie_nvme_cqe_crd(const struct upcie_nvme_cqe *cqe)
{
	return (cqe->status >> 12) & 3;
}
/** (SCT << 8) | SC: 0 is success; the form status values take in this library. */
static inline uint16_t upcie_nvme_cqe_status(const struct upcie_nvme_cqe *cqe)
{
	return (uint16_t)((upcie_nvme_cqe_sct(cqe) << 8) | upcie_nvme_cqe_sc(cqe));
}
/** Build the CQE status field from (SCT << 8) | SC, a DNR bit and a phase. */
static inline uint16_t upcie_nvme_status_field(uint16_t status, int dnr, int phase)
{
	return (uint16_t)(((status & 0x7ff) << 1) | ((dnr ? 1u : 0u) << 15) | (phase ? 1u : 0u));
}

/** Admin opcodes (Base spec 5, Figure 138). */
enum {
	UPCIE_NVME_ADM_DELETE_SQ = 0x00,
	UPCIE_NVME_ADM_CREATE_SQ = 0x01,
	UPCIE_NVME_ADM_GET_LOG_PAGE = 0x02,
	UPCIE_NVME_ADM_DELETE_CQ = 0x04,
	UPCIE_NVME_ADM_CREATE_CQ = 0x05,
	UPCIE_NVME_ADM_IDENTIFY = 0x06,
	UPCIE_NVME_ADM_ABORT = 0x08,
	UPCIE_NVME_ADM_SET_FEATURES = 0x09,
	UPCIE_NVME_ADM_GET_FEATURES = 0x0a,
	UPCIE_NVME_ADM_ASYNC_EVENT = 0x0c,
	UPCIE_NVME_ADM_DBBUF_CONFIG = 0x7c,
};

/** NVM command set opcodes (NVM Command Set spec 3). */
enum {
	UPCIE_NVME_CMD_FLUSH = 0x00,
	UPCIE_NVME_CMD_WRITE = 0x01,
	UPCIE_NVME_CMD_READ = 0x02,
	UPCIE_NVME_CMD_WRITE_UNCOR = 0x04, /**< Write Uncorrectable */
	UPCIE_NVME_CMD_COMPARE = 0x05,
	UPCIE_NVME_CMD_WRITE_ZEROES = 0x08,
	UPCIE_NVME_CMD_DSM = 0x09,
	UPCIE_NVME_CMD_VERIFY = 0x0c,
	UPCIE_NVME_CMD_COPY = 0x19,
};

/**
 * CDW12 of Read, Write, Compare, Verify and Write Zeroes (NVM Command Set
 * spec 3.2.6, Figure 66): Limited Retry, Force Unit Access, and PRINFO:
 * Protection Information Action (the controller inserts or strips the PI)
 * and the three checks. NLB (0's based) is in bits 15:0.
 */
#define UPCIE_NVME_RW_LR	  (1u << 31)
#define UPCIE_NVME_RW_FUA	  (1u << 30)
#define UPCIE_NVME_RW_PRACT	  (1u << 29)
#define UPCIE_NVME_RW_PRCHK_GUARD (1u << 28)
#define UPCIE_NVME_RW_PRCHK_APP	  (1u << 27)
#define UPCIE_NVME_RW_PRCHK_REF	  (1u << 26)
#define UPCIE_NVME_RW_PRCHK_ALL                                                                    \
	(UPCIE_NVME_RW_PRCHK_GUARD | UPCIE_NVME_RW_PRCHK_APP | UPCIE_NVME_RW_PRCHK_REF)
/** PRINFO as a 4-bit field (PRACT in bit 3, the checks in 2:0), as Copy
 * carries it twice: PRINFOR in CDW12 bits 15:12, PRINFOW in bits 29:26. */
#define UPCIE_NVME_PRINFO_SHIFT 26

/**
 * Protection information, 16-bit guard format (NVM Command Set spec 5.3.1,
 * Figure 166): eight bytes, big-endian on the wire, in the first or last
 * bytes of each block's metadata (DPS.PIP). The guard is the T10-DIF CRC16
 * (polynomial 0x8BB7) of the block's data, and, when the PI is in the last
 * bytes of a larger metadata area, of the metadata bytes before it.
 */
struct upcie_nvme_pi16 {
	uint16_t guard;	 /**< big-endian */
	uint16_t apptag; /**< big-endian */
	uint32_t reftag; /**< big-endian */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_pi16) == 8, "16-bit guard PI is 8 bytes");

/**
 * Protection information, 64-bit guard format (NVM Command Set spec
 * 5.3.1.2, Figure 168): sixteen bytes, big-endian on the wire. The guard
 * is the NVMe CRC-64 (upcie_crc64_nvme(): polynomial 0xAD93D23594C93659,
 * reflected, inverted in and out) over the same bytes as the 16-bit
 * guard's. The last six bytes hold the 48-bit Logical Block Storage Tag
 * and Reference Tag field: with a storage tag size (ELBAF STS) of 0, the
 * whole field is the reference tag.
 */
struct upcie_nvme_pi64 {
	uint64_t guard;	 /**< big-endian */
	uint16_t apptag; /**< big-endian */
	uint8_t sr[6];	 /**< storage and reference tag, big-endian, 48 bits */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_pi64) == 16, "64-bit guard PI is 16 bytes");

/** Copy source range, descriptor format 0 (NVM Command Set spec 3.2.2.1,
 * Figure 40). */
struct upcie_nvme_copy_range {
	uint8_t rsvd0[8];
	uint64_t slba;
	uint16_t nlb; /**< 0's based */
	uint8_t rsvd18[6];
	uint32_t eilbrt; /**< expected initial logical block reference tag */
	uint16_t elbat;	 /**< expected logical block application tag */
	uint16_t elbatm; /**< its mask */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_copy_range) == 32, "copy range is 32 bytes");

/**
 * Copy source range, descriptor format 1 (NVM Command Set spec 3.2.2.1):
 * the one for namespaces with the 32- and 64-bit guard PI formats, whose
 * expected tags do not fit format 0. elbt is the 80-bit Expected Logical
 * Block Storage Tag and Initial Reference Tag field, most significant byte
 * first (as QEMU's controller and libnvme read it); with the 64-bit guard
 * and no storage tags the 48-bit reference tag is its last six bytes
 * (upcie_nvme_copy_range1_reftag()).
 */
struct upcie_nvme_copy_range1 {
	uint8_t rsvd0[8];
	uint64_t slba;
	uint16_t nlb; /**< 0's based */
	uint8_t rsvd18[8];
	uint8_t elbt[10];
	uint16_t elbat;	 /**< expected logical block application tag */
	uint16_t elbatm; /**< its mask */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_copy_range1) == 40, "copy range 1 is 40 bytes");

/** Set the expected initial reference tag of a format 1 range (48 bits:
 * the 64-bit guard without storage tags). */
static inline void upcie_nvme_copy_range1_reftag(struct upcie_nvme_copy_range1 *r, uint64_t tag)
{
	for (int i = 0; i < 10; i++)
		r->elbt[9 - i] = i < 6 ? (uint8_t)(tag >> (8 * i)) : 0;
}

/** Every namespace (Base spec 3.2.1.2). */
#define UPCIE_NVME_NSID_ALL 0xffffffffu

/** Identify CNS values (Base spec 5.17, Figure 273). */
enum {
	UPCIE_NVME_CNS_NS = 0x00,
	UPCIE_NVME_CNS_CTRL = 0x01,
	UPCIE_NVME_CNS_ACTIVE_NS_LIST = 0x02,
	UPCIE_NVME_CNS_CS_NS =
	    0x05, /**< I/O Command Set specific Identify Namespace (CSI in CDW11) */
};

/** Identify Controller CTRATT bit 15: Extended LBA Formats Supported (the
 * NVM command set's Identify Namespace, CNS 05h, carries ELBAF). */
#define UPCIE_NVME_CTRATT_ELBAS (1u << 15)
/** In that structure (NVM Command Set spec 4.1.5.2): ELBAF[n] is the dword
 * at byte 12 + 4 n; its bits 8:7 are the Protection Information Format
 * (0: 16-bit guard, 1: 32-bit, 2: 64-bit). */
#define UPCIE_NVME_ELBAF_OFFSET 12
/** Protection Information Format of an ELBAF dword (bits 8:7; 0: 16-bit guard). */
static inline uint32_t upcie_nvme_elbaf_pif(uint32_t elbaf)
{
	return (elbaf >> 7) & 0x3;
}
/** Storage Tag Size of an ELBAF dword (bits 6:0): the storage tag's bits in
 * the 48- or 80-bit storage and reference tag field. */
static inline uint32_t upcie_nvme_elbaf_sts(uint32_t elbaf)
{
	return elbaf & 0x7f;
}
/** ELBAF PIF values. */
enum {
	UPCIE_NVME_PIF_16 = 0, /**< 16-bit guard (CRC16 T10-DIF), 8-byte PI */
	UPCIE_NVME_PIF_32 = 1, /**< 32-bit guard (CRC32C), 16-byte PI */
	UPCIE_NVME_PIF_64 = 2, /**< 64-bit guard (CRC-64 NVMe), 16-byte PI */
};

/** Feature identifiers (Base spec 5.27.1). */
enum {
	UPCIE_NVME_FEAT_ARBITRATION = 0x01,
	UPCIE_NVME_FEAT_POWER_MGMT = 0x02,
	UPCIE_NVME_FEAT_TEMP_THRESH = 0x04,
	UPCIE_NVME_FEAT_VOLATILE_WC = 0x06,
	UPCIE_NVME_FEAT_NUM_QUEUES = 0x07,
	UPCIE_NVME_FEAT_IRQ_COALESCE = 0x08, /**< THR (7:0, 0's based), TIME (15:8, 100 us) */
	UPCIE_NVME_FEAT_IRQ_CONFIG = 0x09,   /**< IV (15:0), CD (16): coalescing disable */
};

/** Log page identifiers (Base spec 5.16.1). */
enum {
	UPCIE_NVME_LOG_ERROR = 0x01,
	UPCIE_NVME_LOG_SMART = 0x02,
	UPCIE_NVME_LOG_FW_SLOT = 0x03,
};

/** Create I/O CQ / SQ flags (CDW11). */
#define UPCIE_NVME_QUEUE_PC  (1u << 0) /**< physically contiguous */
#define UPCIE_NVME_QUEUE_IEN (1u << 1) /**< Create I/O CQ: interrupts enabled; IV in bits 31:16 */
#define UPCIE_NVME_CQ_IEN    (1u << 1) /**< interrupts enabled */

/** DSM attributes (CDW11) and range (NVM Command Set spec 3.2.3). */
#define UPCIE_NVME_DSM_IDR (1u << 0) /**< Attribute Integral Dataset for Read */
#define UPCIE_NVME_DSM_IDW (1u << 1) /**< Attribute Integral Dataset for Write */
#define UPCIE_NVME_DSM_AD  (1u << 2) /**< Attribute Deallocate */
/** A Dataset Management range (upcie_nvme_deallocate()). */
struct upcie_nvme_dsm_range {
	uint32_t cattr; /**< context attributes */
	uint32_t nlb;	/**< length in logical blocks (1-based) */
	uint64_t slba;	/**< starting LBA */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_dsm_range) == 16, "DSM range is 16 bytes");

/** Status Code Types (Base spec 4.6.1.2). */
enum {
	UPCIE_NVME_SCT_GENERIC = 0x0,
	UPCIE_NVME_SCT_CMD_SPECIFIC = 0x1,
	UPCIE_NVME_SCT_MEDIA = 0x2,
	UPCIE_NVME_SCT_PATH = 0x3,
	UPCIE_NVME_SCT_VENDOR = 0x7,
};

#define UPCIE_NVME_SC(sct, sc) ((uint16_t)(((sct) << 8) | (sc)))

/** Status values in the (SCT << 8) | SC form. Generic (Figure 94). */
enum {
	UPCIE_NVME_SC_SUCCESS = UPCIE_NVME_SC(0, 0x00),
	UPCIE_NVME_SC_INVALID_OPCODE = UPCIE_NVME_SC(0, 0x01),
	UPCIE_NVME_SC_INVALID_FIELD = UPCIE_NVME_SC(0, 0x02),
	UPCIE_NVME_SC_CID_CONFLICT = UPCIE_NVME_SC(0, 0x03),
	UPCIE_NVME_SC_DATA_XFER_ERROR = UPCIE_NVME_SC(0, 0x04),
	UPCIE_NVME_SC_POWER_LOSS = UPCIE_NVME_SC(0, 0x05),
	UPCIE_NVME_SC_INTERNAL = UPCIE_NVME_SC(0, 0x06),
	UPCIE_NVME_SC_ABORT_REQ = UPCIE_NVME_SC(0, 0x07),
	UPCIE_NVME_SC_ABORT_SQ_DELETED = UPCIE_NVME_SC(0, 0x08),
	UPCIE_NVME_SC_INVALID_NS = UPCIE_NVME_SC(0, 0x0b),
	UPCIE_NVME_SC_CMD_SEQ_ERROR = UPCIE_NVME_SC(0, 0x0c),
	UPCIE_NVME_SC_SGL_SEG_DESC_INVALID = UPCIE_NVME_SC(0, 0x0d),
	UPCIE_NVME_SC_SGL_NUM_DESC_INVALID = UPCIE_NVME_SC(0, 0x0e),
	UPCIE_NVME_SC_SGL_DATA_LEN_INVALID = UPCIE_NVME_SC(0, 0x0f),
	UPCIE_NVME_SC_SGL_MD_LEN_INVALID = UPCIE_NVME_SC(0, 0x10),
	UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID = UPCIE_NVME_SC(0, 0x11),
	UPCIE_NVME_SC_INVALID_PRP_OFFSET = UPCIE_NVME_SC(0, 0x13),
	UPCIE_NVME_SC_LBA_RANGE = UPCIE_NVME_SC(0, 0x80),
	UPCIE_NVME_SC_CAP_EXCEEDED = UPCIE_NVME_SC(0, 0x81),
	UPCIE_NVME_SC_NS_NOT_READY = UPCIE_NVME_SC(0, 0x82),
};

/** Command specific (Figure 95 and the command sections). */
enum {
	UPCIE_NVME_SC_CQ_INVALID = UPCIE_NVME_SC(1, 0x00),
	UPCIE_NVME_SC_QID_INVALID = UPCIE_NVME_SC(1, 0x01),
	UPCIE_NVME_SC_QUEUE_SIZE = UPCIE_NVME_SC(1, 0x02),
	UPCIE_NVME_SC_ABORT_LIMIT = UPCIE_NVME_SC(1, 0x03),
	UPCIE_NVME_SC_INVALID_IV = UPCIE_NVME_SC(1, 0x08),
	UPCIE_NVME_SC_AER_LIMIT = UPCIE_NVME_SC(1, 0x05),
	UPCIE_NVME_SC_INVALID_LOG_PAGE = UPCIE_NVME_SC(1, 0x09),
	UPCIE_NVME_SC_INVALID_FORMAT = UPCIE_NVME_SC(1, 0x0a),
	UPCIE_NVME_SC_INVALID_QUEUE_DELETION = UPCIE_NVME_SC(1, 0x0c),
	UPCIE_NVME_SC_FEATURE_NOT_SAVEABLE = UPCIE_NVME_SC(1, 0x0d),
	UPCIE_NVME_SC_INVALID_PI = UPCIE_NVME_SC(1, 0x81), /**< Invalid Protection Information */
	UPCIE_NVME_SC_CMD_SIZE_LIMIT = UPCIE_NVME_SC(1, 0x83), /**< Command Size Limit Exceeded */
	UPCIE_NVME_SC_ATTEMPTED_WRITE_RO = UPCIE_NVME_SC(1, 0x82),
};

/** Media and data integrity errors (Figure 96). */
enum {
	UPCIE_NVME_SC_WRITE_FAULT = UPCIE_NVME_SC(2, 0x80),
	UPCIE_NVME_SC_UNRECOVERED_READ = UPCIE_NVME_SC(2, 0x81),
	UPCIE_NVME_SC_GUARD_CHECK = UPCIE_NVME_SC(2, 0x82),  /**< End-to-end Guard Check Error */
	UPCIE_NVME_SC_APPTAG_CHECK = UPCIE_NVME_SC(2, 0x83), /**< End-to-end Application Tag */
	UPCIE_NVME_SC_REFTAG_CHECK = UPCIE_NVME_SC(2, 0x84), /**< End-to-end Reference Tag */
	UPCIE_NVME_SC_COMPARE_FAILURE = UPCIE_NVME_SC(2, 0x85),
};

/**
 * Path related statuses (Figure 97). The library posts the two host
 * statuses itself, for commands it ends without a completion from the
 * device, and only once the device can no longer touch their buffers:
 * ~~~
 *   HOST_ABORTED      "Command Aborted By Host": the controller was reset
 *                     (or the queue deleted) before the command completed.
 *                     It may or may not have executed; the device no longer
 *                     holds it, so retrying is safe for idempotent commands
 *                     (read, write, write zeroes, deallocate, flush). DNR = 0.
 *   HOST_PATH_ERROR   "Host Pathing Error": the controller is gone (surprise
 *                     removal, the kernel took the device back) or failed
 *                     beyond recovery; it will never complete. DNR = 1.
 * ~~~
 */
enum {
	UPCIE_NVME_SC_INTERNAL_PATH = UPCIE_NVME_SC(3, 0x00),
	UPCIE_NVME_SC_HOST_PATH_ERROR = UPCIE_NVME_SC(3, 0x70),
	UPCIE_NVME_SC_HOST_ABORTED = UPCIE_NVME_SC(3, 0x71),
};

/** Readable name of a (SCT << 8) | SC status; never NULL. */
const char *upcie_nvme_status_str(uint16_t status);

/** LBA Format (NVM Command Set spec 4.1.5.1, Figure 98). */
struct upcie_nvme_lbaf {
	uint16_t ms;   /**< Metadata Size */
	uint8_t lbads; /**< LBA Data Size: 2 ^ n bytes */
	uint8_t rp;    /**< Relative Performance (bits 1:0) */
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_lbaf) == 4, "LBA format is 4 bytes");

/** Power State Descriptor (Base spec Figure 276). */
struct upcie_nvme_psd {
	uint16_t mp;
	uint8_t rsvd2;
	uint8_t flags;
	uint32_t enlat;
	uint32_t exlat;
	uint8_t rrt;
	uint8_t rrl;
	uint8_t rwt;
	uint8_t rwl;
	uint16_t idlp;
	uint8_t ips;
	uint8_t rsvd19;
	uint16_t actp;
	uint8_t apw_aps;
	uint8_t rsvd23[9];
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_psd) == 32, "power state descriptor is 32 bytes");

/** Identify Controller data structure (Base spec 5.17.2.1, Figure 275). */
struct upcie_nvme_id_ctrl {
	uint16_t vid;	 /**< PCI Vendor ID */
	uint16_t ssvid;	 /**< PCI Subsystem Vendor ID */
	char sn[20];	 /**< Serial Number */
	char mn[40];	 /**< Model Number */
	char fr[8];	 /**< Firmware Revision */
	uint8_t rab;	 /**< Recommended Arbitration Burst */
	uint8_t ieee[3]; /**< IEEE OUI Identifier */
	uint8_t cmic;	 /**< Controller Multi-Path I/O and Namespace Sharing */
	uint8_t mdts;	 /**< Maximum Data Transfer Size: 2 ^ n * CAP.MPSMIN; 0 = no limit */
	uint16_t cntlid; /**< Controller ID */
	uint32_t ver;	 /**< Version */
	uint32_t rtd3r;
	uint32_t rtd3e;
	uint32_t oaes;
	uint32_t ctratt;
	uint16_t rrls;
	uint8_t rsvd102[9];
	uint8_t cntrltype; /**< Controller Type: 1 I/O, 2 discovery, 3 admin */
	uint8_t fguid[16];
	uint16_t crdt[3];
	uint8_t rsvd134[122];
	uint16_t oacs; /**< Optional Admin Command Support */
	uint8_t acl;   /**< Abort Command Limit, 0's based */
	uint8_t aerl;
	uint8_t frmw;
	uint8_t lpa;  /**< Log Page Attributes */
	uint8_t elpe; /**< Error Log Page Entries, 0's based */
	uint8_t npss;
	uint8_t avscc;
	uint8_t apsta;
	uint16_t wctemp;
	uint16_t cctemp;
	uint8_t rsvd270[242];
	uint8_t sqes; /**< SQ Entry Size: max (7:4), required (3:0) */
	uint8_t cqes; /**< CQ Entry Size */
	uint16_t maxcmd;
	uint32_t nn;   /**< Number of Namespaces */
	uint16_t oncs; /**< Optional NVM Command Support */
	uint16_t fuses;
	uint8_t fna;
	uint8_t vwc; /**< Volatile Write Cache */
	uint16_t awun;
	uint16_t awupf;
	uint8_t icsvscc;
	uint8_t nwpc;
	uint16_t acwu;
	uint16_t ocfs;
	uint32_t sgls;
	uint32_t mnan;
	uint8_t rsvd544[224];
	char subnqn[256];
	uint8_t rsvd1024[1024];
	struct upcie_nvme_psd psd[32];
	uint8_t vs[1024];
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_id_ctrl) == 4096, "Identify Controller is 4096 bytes");

/** SGLS bits (Identify Controller SGL Support). */
#define UPCIE_NVME_SGLS_SUPPORTED (3u << 0)  /**< 01b or 10b: SGLs for NVM commands */
#define UPCIE_NVME_SGLS_MD_BYTE	  (1u << 17) /**< byte-aligned contiguous metadata */
#define UPCIE_NVME_SGLS_MPTR_SGL  (1u << 19) /**< MPTR may hold an SGL descriptor */
/** OACS bits. */
#define UPCIE_NVME_OACS_FORMAT (1u << 1) /**< Format NVM */
#define UPCIE_NVME_OACS_DBBUF  (1u << 8)
/** ONCS bits. */
#define UPCIE_NVME_ONCS_COMPARE	     (1u << 0)
#define UPCIE_NVME_ONCS_WRITE_UNCOR  (1u << 1)
#define UPCIE_NVME_ONCS_DSM	     (1u << 2)
#define UPCIE_NVME_ONCS_WRITE_ZEROES (1u << 3)
#define UPCIE_NVME_ONCS_VERIFY	     (1u << 7)
#define UPCIE_NVME_ONCS_COPY	     (1u << 8)
/** OCFS: Copy descriptor format 0 supported. */
#define UPCIE_NVME_OCFS_FORMAT0 (1u << 0)
/** OCFS: Copy descriptor format 1 (32- and 64-bit guard tags) supported. */
#define UPCIE_NVME_OCFS_FORMAT1 (1u << 1)

/** Identify Namespace data structure (NVM Command Set spec 4.1.5.1, Figure 97). */
struct upcie_nvme_id_ns {
	uint64_t nsze; /**< Namespace Size, in LBAs */
	uint64_t ncap; /**< Namespace Capacity */
	uint64_t nuse; /**< Namespace Utilization */
	uint8_t nsfeat;
	uint8_t nlbaf; /**< Number of LBA Formats, 0's based */
	uint8_t flbas; /**< Formatted LBA Size: format index in bits 3:0 (and 6:5) */
	uint8_t mc;
	uint8_t dpc;
	uint8_t dps;
	uint8_t nmic;
	uint8_t rescap;
	uint8_t fpi;
	uint8_t dlfeat;
	uint16_t nawun;
	uint16_t nawupf;
	uint16_t nacwu;
	uint16_t nabsn;
	uint16_t nabo;
	uint16_t nabspf;
	uint16_t noiob;
	uint8_t nvmcap[16];
	uint16_t npwg;
	uint16_t npwa;
	uint16_t npdg;
	uint16_t npda;
	uint16_t nows;
	uint16_t mssrl;
	uint32_t mcl;
	uint8_t msrc;
	uint8_t rsvd81[11];
	uint32_t anagrpid;
	uint8_t rsvd96[3];
	uint8_t nsattr;
	uint16_t nvmsetid;
	uint16_t endgid;
	uint8_t nguid[16];
	uint8_t eui64[8];
	struct upcie_nvme_lbaf lbaf[64];
	uint8_t vs[3712];
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_id_ns) == 4096, "Identify Namespace is 4096 bytes");

/** Identify Namespace metadata and protection fields (NVM Command Set spec
 * 4.1.5.1): FLBAS bit 4, MC, DPC, DPS. */
#define UPCIE_NVME_FLBAS_EXTENDED (1u << 4) /**< metadata at the end of each block's data */
#define UPCIE_NVME_MC_EXTENDED	  (1u << 0) /**< can: metadata in extended LBAs */
#define UPCIE_NVME_MC_SEPARATE	  (1u << 1) /**< can: metadata in a separate buffer (MPTR) */
#define UPCIE_NVME_DPC_TYPE1	  (1u << 0)
#define UPCIE_NVME_DPC_TYPE2	  (1u << 1)
#define UPCIE_NVME_DPC_TYPE3	  (1u << 2)
#define UPCIE_NVME_DPC_FIRST	  (1u << 3) /**< can: PI in the first bytes of metadata */
#define UPCIE_NVME_DPC_LAST	  (1u << 4) /**< can: PI in the last bytes of metadata */
#define UPCIE_NVME_DPS_TYPE_MASK  0x7u	    /**< 0: no PI; 1, 2, 3: PI type */
#define UPCIE_NVME_DPS_FIRST	  (1u << 3) /**< PIP: PI in the first bytes of metadata */

/** Format NVM (Base spec 5.23) CDW10: LBAF (3:0, high bits 13:12), MSET (4),
 * PI (7:5), PIL (8), SES (11:9). */
#define UPCIE_NVME_ADM_FORMAT_NVM 0x80
#define UPCIE_NVME_FORMAT_MSET	  (1u << 4)
#define UPCIE_NVME_FORMAT_PIL	  (1u << 8)

/** Index of the LBA format in use (FLBAS bits 3:0, and 6:5 as the high bits). */
static inline uint32_t upcie_nvme_id_ns_flbas_idx(const struct upcie_nvme_id_ns *ns)
{
	return (uint32_t)((ns->flbas & 0xf) | (((ns->flbas >> 5) & 0x3) << 4));
}

/** Error Information log entry (Base spec 5.16.1.2, Figure 205). */
struct upcie_nvme_error_log {
	uint64_t error_count;
	uint16_t sqid;
	uint16_t cid;
	uint16_t status;
	uint16_t param_loc;
	uint64_t lba;
	uint32_t nsid;
	uint8_t vs;
	uint8_t trtype;
	uint8_t rsvd30[2];
	uint64_t cs;
	uint16_t trtype_spec;
	uint8_t rsvd42[22];
};
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_error_log) == 64, "error log entry is 64 bytes");

/** SMART / Health Information log (Base spec 5.16.1.3, Figure 207). */
struct upcie_nvme_smart_log {
	uint8_t critical_warning;
	uint16_t temperature; /**< Kelvin; unaligned in the spec */
	uint8_t avail_spare;
	uint8_t spare_thresh;
	uint8_t percent_used;
	uint8_t endu_grp_crit_warn;
	uint8_t rsvd7[25];
	uint8_t data_units_read[16];
	uint8_t data_units_written[16];
	uint8_t host_reads[16];
	uint8_t host_writes[16];
	uint8_t ctrl_busy_time[16];
	uint8_t power_cycles[16];
	uint8_t power_on_hours[16];
	uint8_t unsafe_shutdowns[16];
	uint8_t media_errors[16];
	uint8_t num_err_log_entries[16];
	uint32_t warning_temp_time;
	uint32_t critical_comp_time;
	uint16_t temp_sensor[8];
	uint32_t thm_temp1_trans_count;
	uint32_t thm_temp2_trans_count;
	uint32_t thm_temp1_total_time;
	uint32_t thm_temp2_total_time;
	uint8_t rsvd232[280];
} __attribute__((packed));
UPCIE_STATIC_ASSERT(sizeof(struct upcie_nvme_smart_log) == 512, "SMART log is 512 bytes");

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_NVME_SPEC_H */
