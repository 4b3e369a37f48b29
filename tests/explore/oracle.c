/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The explorer's judges of data: its buffers (never given back to the heap
 * before the end, so that any device transfer into one can be judged), the
 * DMA hook (b), and the per-block data oracle (c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "explore.h"

/* ---- buffers: a slot is never given back to the heap before the end, so
 * any device transfer into one can be judged (b) ---- */

int x_slot_get(size_t size)
{
	static const size_t aligns[] = {4096, 4096, 512, 64};
	struct xslot *best = NULL;

	for (uint32_t i = 0; i < X.nslots; i++) {
		struct xslot *s = &X.slots[i];

		if (s->owner || s->size < size || X.step - s->freed_at < X_QUAR)
			continue;
		if (!best || s->freed_at < best->freed_at)
			best = s;
	}
	if (best && (X.nslots == X_SLOTS || x_chance(700)))
		return (int)(best - X.slots) + 1;
	if (X.nslots < X_SLOTS && !(X.off & XF_REG) && x_chance(250)) {
		/* New memory from a registered region (which may be off just
		 * now: then I/O on it must be refused). */
		unsigned r = x_below(X_REGS);
		struct xreg *g = &X.reg[r];
		size_t al = aligns[x_below(4)], at = (g->used + al - 1) & ~(al - 1);

		if (at + size <= X_REG_BYTES) {
			g->used = at + size;
			X.slots[X.nslots] = (struct xslot){
			    .buf = g->mem + at, .size = size, .reg = (uint8_t)(r + 1)};
			return (int)++X.nslots;
		}
	}
	if (X.nslots < X_SLOTS) {
		/* New memory from the heap: it may be memory the library freed
		 * (and still points at, if it has a bug). */
		void *p = upcie_dma_alloc(X.heap, size, aligns[x_below(4)]);

		if (p) {
			X.slots[X.nslots] = (struct xslot){.buf = p, .size = size};
			X.nheap_slots++;
			return (int)++X.nslots;
		}
	}
	return best ? (int)(best - X.slots) + 1 : -1;
}

void x_slot_put(uint32_t slot)
{
	struct xslot *s = &X.slots[slot - 1];

	s->last = s->owner;
	s->owner = 0;
	s->freed_at = X.step;
}

/* ---- (b): every device transfer, as the model makes it ---- */

void x_dma_hook(void *arg, uint64_t bus, size_t len, bool to_host)
{
	uintptr_t a = (uintptr_t)bus, e = a + len;

	(void)arg;
	x_md_hook(bus, len, to_host);
	for (uint32_t i = 0; i < X.nslots; i++) {
		struct xslot *s = &X.slots[i];
		uintptr_t sa = (uintptr_t)s->buf, se = sa + s->size;
		struct xcmd *c;

		if (e <= sa || a >= se)
			continue;
		if (!s->owner) {
			c = x_cmd(s->last);
			x_fail("(b) device %s %zu bytes at +%zu of buffer %u, whose command %u "
			       "(%s, q%u cid %u) completed at step %" PRIu64 " with %#x",
			       to_host ? "wrote" : "read", len, (size_t)(a - sa), i + 1, s->last,
			       c && c->kind == X_WRITE ? "write" : "read", c ? c->q : 0,
			       c ? c->cid : 0, c ? c->done_step : 0, c ? c->status : 0);
			return;
		}
		c = x_cmd(s->owner);
		if (c->kind == X_READ && !to_host)
			x_fail("(b) device read the buffer of read %u", s->owner);
		else if (c->kind == X_WRITE && to_host)
			x_fail("(b) device wrote the buffer of write %u", s->owner);
		else if (a < sa || e > sa + (size_t)c->nlb * c->lba_size)
			x_fail("(b) device transfer of %zu bytes at %+td of command %u's buffer "
			       "(%u bytes)",
			       len, (ptrdiff_t)(a - sa), s->owner, c->nlb * c->lba_size);
	}
}

/* ---- (c): the data oracle ---- */

static uint64_t mixw(uint64_t k)
{
	return (k + 1) * 0x9e3779b97f4a7c15ull;
}

static uint64_t token_of(uint32_t id, uint32_t blk)
{
	return ((uint64_t)id << 8) | (blk + 1);
}

static void fill_block(uint8_t *p, uint32_t size, uint64_t token)
{
	for (uint32_t k = 0; k < size / 8; k++) {
		uint64_t w = token ^ mixw(k);
		memcpy(p + 8 * k, &w, 8);
	}
}

/* The token a block holds, 0 for all zeros, X_INF when it is neither. */
static uint64_t decode_block(const uint8_t *p, uint32_t size)
{
	uint64_t w, t;

	memcpy(&w, p, 8);
	if (!w) {
		for (uint32_t k = 0; k < size; k++)
			if (p[k])
				return X_INF;
		return 0;
	}
	t = w ^ mixw(0);
	for (uint32_t k = 1; k < size / 8; k++) {
		memcpy(&w, p + 8 * k, 8);
		if (w != (t ^ mixw(k)))
			return X_INF;
	}
	return t;
}

void x_fill_write(struct xcmd *c, uint32_t id)
{
	uint8_t *buf = X.slots[c->slot - 1].buf;

	for (uint32_t i = 0; i < c->nlb; i++)
		fill_block(buf + (size_t)i * c->lba_size, c->lba_size, token_of(id, i));
}

bool x_write_intact(struct xcmd *c, uint32_t id)
{
	uint8_t *buf = X.slots[c->slot - 1].buf;

	for (uint32_t i = 0; i < c->nlb; i++)
		if (decode_block(buf + (size_t)i * c->lba_size, c->lba_size) != token_of(id, i))
			return false;
	return true;
}

/* Drop candidates that a later successful write overwrote for sure (it
 * was submitted after they completed). */
static void prune(struct xblock *b)
{
	uint64_t newest_ok_sub = 0;

	for (uint32_t i = 0; i < b->n; i++)
		if (b->e[i].ok && b->e[i].cpl != X_INF && b->e[i].sub > newest_ok_sub)
			newest_ok_sub = b->e[i].sub;
	for (uint32_t i = 0; i < b->n;) {
		if (b->e[i].cpl != X_INF && b->e[i].cpl < newest_ok_sub)
			b->e[i] = b->e[--b->n];
		else
			i++;
	}
}

static struct xblock *blk(uint32_t nsid, uint64_t lba)
{
	return &X.blk[nsid - 1][lba];
}

bool x_oracle_room(uint32_t nsid, uint64_t slba, uint32_t nlb)
{
	for (uint32_t i = 0; i < nlb; i++)
		if (blk(nsid, slba + i)->n >= X_ENTRIES)
			return false;
	return true;
}

void x_oracle_submit(struct xcmd *c, uint32_t id)
{
	c->sub_seq = ++X.seq;
	for (uint32_t i = 0; i < c->nlb; i++) {
		struct xblock *b = blk(c->nsid, c->slba + i);

		if (c->kind == X_READ) {
			if (!b->pending)
				c->check |= (uint8_t)(1u << i);
			continue;
		}
		b->e[b->n++] =
		    (struct xentry){.token = token_of(id, i), .sub = c->sub_seq, .cpl = X_INF};
		b->pending++;
		b->last_wsub = c->sub_seq;
	}
}

void x_oracle_complete(struct xcmd *c, uint32_t id)
{
	uint64_t seq = ++X.seq;
	uint8_t *buf = X.slots[c->slot - 1].buf;

	for (uint32_t i = 0; i < c->nlb; i++) {
		struct xblock *b = blk(c->nsid, c->slba + i);

		if (c->kind == X_WRITE) {
			for (uint32_t j = 0; j < b->n; j++) {
				if (b->e[j].token != token_of(id, i))
					continue;
				b->e[j].cpl = seq;
				b->e[j].ok = c->status == 0;
			}
			b->pending--;
			prune(b);
			continue;
		}
		if (c->status || !(c->check & (1u << i)) || b->pending || b->last_wsub > c->sub_seq)
			continue;
		uint64_t t = decode_block(buf + (size_t)i * c->lba_size, c->lba_size);
		bool found = false;

		for (uint32_t j = 0; j < b->n && !found; j++)
			found = b->e[j].token == t;
		if (!found) {
			char cands[160];
			int n = 0;

			cands[0] = 0;
			for (uint32_t j = 0; j < b->n && n < 140; j++)
				n += snprintf(cands + n, sizeof(cands) - (size_t)n,
					      " w%" PRIu64 ".%" PRIu64, b->e[j].token >> 8,
					      b->e[j].token & 0xff);
			if (t == X_INF)
				x_fail("(c) read %u (ns %u lba %" PRIu64
				       ") succeeded but block holds no whole written value; "
				       "candidates:%s",
				       id, c->nsid, c->slba + i, cands);
			else
				x_fail("(c) read %u (ns %u lba %" PRIu64 ") returned w%" PRIu64
				       ".%" PRIu64 "; candidates:%s",
				       id, c->nsid, c->slba + i, t >> 8, t & 0xff, cands);
		}
	}
}
