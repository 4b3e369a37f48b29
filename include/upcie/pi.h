/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief End-to-end protection information in software
 *
 * What the host computes and checks when it, not the controller, owns the
 * protection information (PRACT = 0): the guard, and the PI of each block
 * (NVM Command Set spec 5.3.1) in the namespace's layout (extended LBAs
 * or separate metadata, PI in the first or last bytes of the metadata),
 * in the namespace's PI format: the 16-bit guard (8-byte PI, T10-DIF
 * CRC16, 32-bit reference tags) or the 64-bit guard of the extended LBA
 * formats (16-byte PI, NVMe CRC-64, 48-bit reference tags).
 *
 * ~~~
 *   upcie_crc16_t10dif()       CRC16, polynomial 0x8BB7, not reflected,
 *                              initial value 0 (pass the previous result
 *                              to continue); table-driven, 8 bytes a step
 *   upcie_crc64_nvme()         CRC-64, polynomial 0xAD93D23594C93659,
 *                              reflected, inverted in and out (pass 0 to
 *                              start, the previous result to continue);
 *                              table-driven, 8 bytes a step
 *   upcie_nvme_pi_generate()   fill the PI of a write's blocks
 *   upcie_nvme_pi_verify()     check blocks as the controller would, and
 *                              name the first one that fails
 * ~~~
 *
 * Caveats: the 32-bit guard format (CRC32C) is not implemented, nor are
 * storage tags (a format with a storage tag size above 0): a namespace
 * with either reports it (guard_bits, pi_sts) and the I/O calls refuse PI
 * on it.
 */
#ifndef UPCIE_PI_H
#define UPCIE_PI_H

#include <stddef.h>
#include <stdint.h>

#include <upcie/nvme.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * CRC16 of len bytes at buf, the T10-DIF guard.
 *
 * Polynomial 0x8BB7, not reflected, initial value 0 (pass the previous
 * result as crc to continue); table-driven, 8 bytes a step.
 */
uint16_t upcie_crc16_t10dif(uint16_t crc, const void *buf, size_t len);

/**
 * CRC-64 of len bytes at buf, the guard of the 64-bit guard PI format.
 *
 * The NVMe CRC-64 (NVM Command Set spec 5.3.1.2): polynomial
 * 0xAD93D23594C93659, reflected, initial value and final XOR all ones
 * (the check value of "123456789" is 0xAE8B14860A799888). Pass 0 as crc
 * to start and the previous result to continue: the inversions are done
 * inside. Table-driven, 8 bytes a step.
 */
uint64_t upcie_crc64_nvme(uint64_t crc, const void *buf, size_t len);

/**
 * Fill the PI of nlb blocks for a write with PRACT = 0: the guard over each
 * block's data (and the metadata before the PI when the PI is last), the
 * application tag o->apptag, the reference tag o->reftag (with the 64-bit
 * guard: o->reftag_hi in bits 47:32) for the first block, one more for
 * each next one (type 3: the same for all). buf holds
 * the data (and, extended LBAs, each block's metadata after its data); md
 * the separate metadata (NULL for extended LBAs). Other metadata bytes are
 * left as they are. Returns 0, or -EINVAL (no PI on the namespace, a
 * missing buffer, o NULL), -ENOTSUP (a PI format the library does not do).
 */
int upcie_nvme_pi_generate(const struct upcie_nvme_ns *ns, void *buf, void *md, uint32_t nlb,
			   const struct upcie_nvme_io_opts *o);

/**
 * Check nlb blocks the way the controller does for the PRCHK bits in
 * o->flags (UPCIE_NVME_RW_PRCHK_*), against o->reftag, o->apptag and
 * o->apptag_mask (and o->reftag_hi with the 64-bit guard), with the
 * escapes (application tag FFFFh; type 3 also the reference tag all ones:
 * FFFFFFFFh, or 48 bits of ones with the 64-bit guard). Returns 0 when
 * every block passes, the status the controller would report
 * (UPCIE_NVME_SC_GUARD_CHECK, _APPTAG_CHECK, _REFTAG_CHECK) with the index
 * of the first failing block in *bad, -EINVAL, or -ENOTSUP (a PI format
 * the library does not do).
 */
int upcie_nvme_pi_verify(const struct upcie_nvme_ns *ns, const void *buf, const void *md,
			 uint32_t nlb, const struct upcie_nvme_io_opts *o, uint32_t *bad);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_PI_H */
