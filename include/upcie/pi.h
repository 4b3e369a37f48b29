/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief End-to-end protection information in software
 *
 * What the host computes and checks when it, not the controller, owns the
 * protection information (PRACT = 0): the T10-DIF CRC16 guard, and the
 * 8-byte PI of each block (NVM Command Set spec 5.3.1, 16-bit guard
 * format), in the namespace's layout (extended LBAs or separate metadata,
 * PI in the first or last bytes of the metadata).
 *
 * ~~~
 *   upcie_crc16_t10dif()       CRC16, polynomial 0x8BB7, not reflected,
 *                              initial value 0 (pass the previous result
 *                              to continue); table-driven, 8 bytes a step
 *   upcie_nvme_pi_generate()   fill the PI of a write's blocks
 *   upcie_nvme_pi_verify()     check blocks as the controller would, and
 *                              name the first one that fails
 * ~~~
 *
 * Caveats: the 16-bit guard format only (the 32- and 64-bit guard formats
 * of NVMe 2.0's extended LBA formats are not implemented: a namespace
 * with one reports it in guard_bits, and the I/O calls refuse it).
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
 * Fill the PI of nlb blocks for a write with PRACT = 0: the guard over each
 * block's data (and the metadata before the PI when the PI is last), the
 * application tag o->apptag, the reference tag o->reftag for the first
 * block, one more for each next one (type 3: o->reftag for all). buf holds
 * the data (and, extended LBAs, each block's metadata after its data); md
 * the separate metadata (NULL for extended LBAs). Other metadata bytes are
 * left as they are. Returns 0, or -EINVAL (no PI on the namespace, a
 * missing buffer, o NULL).
 */
int upcie_nvme_pi_generate(const struct upcie_nvme_ns *ns, void *buf, void *md, uint32_t nlb,
			   const struct upcie_nvme_io_opts *o);

/**
 * Check nlb blocks the way the controller does for the PRCHK bits in
 * o->flags (UPCIE_NVME_RW_PRCHK_*), against o->reftag, o->apptag and
 * o->apptag_mask, with the escapes (application tag FFFFh; type 3 also
 * reference tag FFFFFFFFh). Returns 0 when every block passes, the status
 * the controller would report (UPCIE_NVME_SC_GUARD_CHECK, _APPTAG_CHECK,
 * _REFTAG_CHECK) with the index of the first failing block in *bad, or
 * -EINVAL.
 */
int upcie_nvme_pi_verify(const struct upcie_nvme_ns *ns, const void *buf, const void *md,
			 uint32_t nlb, const struct upcie_nvme_io_opts *o, uint32_t *bad);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_PI_H */
