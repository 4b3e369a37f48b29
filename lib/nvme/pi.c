/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Protection information in software (NVM Command Set spec 5.3.1, the
 * 16-bit guard format): the T10-DIF CRC16 and the per-block PI of a
 * namespace's layout, and the buffer sizes a metadata command moves.
 */
#include <errno.h>
#include <string.h>

#include <upcie/pi.h>

#include "log.h"

#define PI_SIZE 8u

/*
 * CRC16 T10-DIF: polynomial x^16 + x^15 + x^11 + x^9 + x^8 + x^7 + x^5 +
 * x^4 + x^2 + x + 1 (0x8BB7), MSB first, initial value 0, no final XOR.
 * crc_tab[k][b] is the CRC of byte b followed by k zero bytes, so eight
 * bytes fold in with eight lookups ("slicing by 8"). The tables are made
 * once, at load time (no output, no allocation).
 */
static uint16_t crc_tab[8][256];

__attribute__((constructor)) static void crc_tab_init(void)
{
	for (unsigned b = 0; b < 256; b++) {
		uint16_t r = (uint16_t)(b << 8);

		for (int i = 0; i < 8; i++)
			r = (uint16_t)(r & 0x8000 ? (r << 1) ^ 0x8bb7 : r << 1);
		crc_tab[0][b] = r;
	}
	for (unsigned k = 1; k < 8; k++)
		for (unsigned b = 0; b < 256; b++) {
			uint16_t p = crc_tab[k - 1][b];

			crc_tab[k][b] = (uint16_t)(p << 8) ^ crc_tab[0][p >> 8];
		}
}

uint16_t upcie_crc16_t10dif(uint16_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (; len >= 8; len -= 8, p += 8) {
		uint16_t a = (uint16_t)(crc ^ (p[0] << 8 | p[1]));

		crc = crc_tab[7][a >> 8] ^ crc_tab[6][a & 0xff] ^ crc_tab[5][p[2]] ^
		      crc_tab[4][p[3]] ^ crc_tab[3][p[4]] ^ crc_tab[2][p[5]] ^ crc_tab[1][p[6]] ^
		      crc_tab[0][p[7]];
	}
	while (len--)
		crc = (uint16_t)(crc << 8) ^ crc_tab[0][(crc >> 8) ^ *p++];
	return crc;
}

/* ---- buffer sizes ---- */

/* Metadata crosses the bus, unless PRACT on a namespace whose metadata is
 * the PI alone (the controller inserts and strips it). */
static bool md_moves(const struct upcie_nvme_ns *ns, uint32_t flags)
{
	return ns->ms && !(ns->pi_type && (flags & UPCIE_NVME_RW_PRACT) && ns->ms == PI_SIZE);
}

size_t upcie_nvme_ns_data_len(const struct upcie_nvme_ns *ns, uint32_t nlb, uint32_t flags)
{
	size_t per = ns->lba_size;

	if (ns->md_extended && md_moves(ns, flags))
		per += ns->ms;
	return (size_t)nlb * per;
}

size_t upcie_nvme_ns_md_len(const struct upcie_nvme_ns *ns, uint32_t nlb, uint32_t flags)
{
	if (ns->md_extended || !md_moves(ns, flags))
		return 0;
	return (size_t)nlb * ns->ms;
}

/* ---- per block ---- */

struct blocks {
	const struct upcie_nvme_ns *ns;
	uint8_t *buf, *md;
	size_t stride; /* data bytes from one block to the next */
};

static int blocks_init(struct blocks *b, const struct upcie_nvme_ns *ns, const void *buf,
		       const void *md, const struct upcie_nvme_io_opts *o, const char *what)
{
	if (!ns || !buf || !o)
		return upcie_err(-EINVAL, "%s: %s", what,
				 !ns	? "no namespace"
				 : !buf ? "no data buffer"
					: "no options");
	if (!ns->pi_type || ns->guard_bits != 16)
		return upcie_err(-EINVAL,
				 "%s: nsid %u is not formatted with protection information", what,
				 ns->nsid);
	if (!ns->md_extended && !md)
		return upcie_err(-EINVAL, "%s: nsid %u keeps metadata apart: give its buffer", what,
				 ns->nsid);
	b->ns = ns;
	b->buf = (uint8_t *)(uintptr_t)buf;
	b->md = (uint8_t *)(uintptr_t)md;
	b->stride = ns->lba_size + (ns->md_extended ? ns->ms : 0);
	return 0;
}

static const uint8_t *blk_data(const struct blocks *b, uint32_t i)
{
	return b->buf + i * b->stride;
}

static uint8_t *blk_md(const struct blocks *b, uint32_t i)
{
	if (b->ns->md_extended)
		return b->buf + i * b->stride + b->ns->lba_size;
	return b->md + (size_t)i * b->ns->ms;
}

static uint8_t *blk_pi(const struct blocks *b, uint32_t i)
{
	uint8_t *m = blk_md(b, i);

	return b->ns->pi_first ? m : m + b->ns->ms - PI_SIZE;
}

static uint16_t blk_guard(const struct blocks *b, uint32_t i)
{
	uint16_t crc = upcie_crc16_t10dif(0, blk_data(b, i), b->ns->lba_size);

	if (!b->ns->pi_first)
		crc = upcie_crc16_t10dif(crc, blk_md(b, i), b->ns->ms - PI_SIZE);
	return crc;
}

static uint32_t blk_ref(const struct blocks *b, uint32_t first, uint32_t i)
{
	return b->ns->pi_type == 3 ? first : first + i;
}

int upcie_nvme_pi_generate(const struct upcie_nvme_ns *ns, void *buf, void *md, uint32_t nlb,
			   const struct upcie_nvme_io_opts *o)
{
	struct blocks b;
	int rc = blocks_init(&b, ns, buf, md, o, "upcie_nvme_pi_generate");

	if (rc)
		return rc;
	for (uint32_t i = 0; i < nlb; i++) {
		struct upcie_nvme_pi16 pi = {
		    .guard = __builtin_bswap16(blk_guard(&b, i)),
		    .apptag = __builtin_bswap16(o->apptag),
		    .reftag = __builtin_bswap32(blk_ref(&b, o->reftag, i)),
		};

		memcpy(blk_pi(&b, i), &pi, sizeof(pi));
	}
	return 0;
}

static uint16_t blk_check(const struct blocks *b, uint32_t i, const struct upcie_nvme_io_opts *o)
{
	struct upcie_nvme_pi16 pi;
	uint16_t app;
	uint32_t ref;

	memcpy(&pi, blk_pi(b, i), sizeof(pi));
	app = __builtin_bswap16(pi.apptag);
	ref = __builtin_bswap32(pi.reftag);
	if (app == 0xffff && (b->ns->pi_type != 3 || ref == 0xffffffffu))
		return 0; /* the escape: no checks for this block */
	if ((o->flags & UPCIE_NVME_RW_PRCHK_GUARD) &&
	    __builtin_bswap16(pi.guard) != blk_guard(b, i))
		return UPCIE_NVME_SC_GUARD_CHECK;
	if ((o->flags & UPCIE_NVME_RW_PRCHK_APP) && ((app ^ o->apptag) & o->apptag_mask) != 0)
		return UPCIE_NVME_SC_APPTAG_CHECK;
	if ((o->flags & UPCIE_NVME_RW_PRCHK_REF) && ref != blk_ref(b, o->reftag, i))
		return UPCIE_NVME_SC_REFTAG_CHECK;
	return 0;
}

int upcie_nvme_pi_verify(const struct upcie_nvme_ns *ns, const void *buf, const void *md,
			 uint32_t nlb, const struct upcie_nvme_io_opts *o, uint32_t *bad)
{
	struct blocks b;
	int rc = blocks_init(&b, ns, buf, md, o, "upcie_nvme_pi_verify");

	if (rc)
		return rc;
	for (uint32_t i = 0; i < nlb; i++) {
		uint16_t st = blk_check(&b, i, o);

		if (st) {
			if (bad)
				*bad = i;
			return st;
		}
	}
	return 0;
}
