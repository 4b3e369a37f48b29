/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-xcheck: move raw blocks between a namespace and stdin/stdout
 * through libupcie, so that the guest tests can compare what libupcie
 * wrote with what the kernel's nvme driver reads (and the reverse).
 *
 *   upcie-xcheck write   <bdf> <nsid> <slba> <nlb>   < data
 *   upcie-xcheck read    <bdf> <nsid> <slba> <nlb>   > data
 *   upcie-xcheck pattern <seed> <bytes>              > data
 *   upcie-xcheck info    <bdf>                       (nsid lba_size nsze per line)
 *
 * Transfers are split at the namespace's largest transfer (MDTS), and
 * each chunk is a synchronous command with a 10 s timeout. 'pattern'
 * needs no device: 8-byte words from a seeded generator, so a mismatch
 * shows where it is. Exit status 0 on success, 1 on failure (reason on
 * stderr), 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <upcie/upcie.h>

#define TIMEOUT_MS 10000

static int usage(void)
{
	fprintf(stderr, "usage: upcie-xcheck write|read <bdf> <nsid> <slba> <nlb>\n"
			"       upcie-xcheck pattern <seed> <bytes>\n"
			"       upcie-xcheck info <bdf>\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return (errno || end == s || *end) ? -1 : 0;
}

/* splitmix64: a small, well-mixed generator; one word per 8 bytes. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int pattern(uint64_t seed, uint64_t bytes)
{
	uint64_t buf[512];

	for (uint64_t off = 0; off < bytes;) {
		size_t n = sizeof(buf);

		if (bytes - off < n)
			n = (size_t)(bytes - off);
		for (size_t i = 0; i < sizeof(buf) / 8; i++)
			buf[i] = mix(seed ^ ((off / 8) + i));
		if (fwrite(buf, 1, n, stdout) != n)
			return 1;
		off += n;
	}
	return fflush(stdout) ? 1 : 0;
}

static int full_read(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int full_write(int fd, const void *buf, size_t len)
{
	for (size_t put = 0; put < len;) {
		ssize_t n = write(fd, (const char *)buf + put, len - put);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		put += (size_t)n;
	}
	return 0;
}

struct dev {
	struct upcie_pci_dev *pci;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	struct upcie_nvme_qpair *qp;
};

static void dev_close(struct dev *d)
{
	if (d->qp)
		upcie_nvme_qpair_destroy(d->qp);
	if (d->ctrl)
		upcie_nvme_ctrl_close(d->ctrl);
	if (d->heap)
		upcie_dma_heap_destroy(d->heap);
	if (d->pci)
		upcie_pci_close(d->pci);
}

static int dev_open(struct dev *d, const char *bdf, bool qpair)
{
	memset(d, 0, sizeof(*d));
	d->pci = upcie_pci_open(bdf, NULL);
	if (!d->pci)
		goto fail;
	d->heap = upcie_dma_heap_create(d->pci, 8u << 20, 0);
	if (!d->heap)
		goto fail;
	d->ctrl = upcie_nvme_ctrl_open(d->pci, d->heap, NULL);
	if (!d->ctrl)
		goto fail;
	if (qpair) {
		d->qp = upcie_nvme_qpair_create(d->ctrl, NULL);
		if (!d->qp)
			goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "upcie-xcheck: %s: %s\n", bdf, upcie_errmsg());
	dev_close(d);
	return -1;
}

static int info(const char *bdf)
{
	struct dev d;

	if (dev_open(&d, bdf, false))
		return 1;
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(d.ctrl); ns;
	     ns = upcie_nvme_ns_next(d.ctrl, ns))
		printf("%" PRIu32 " %" PRIu32 " %" PRIu64 "\n", ns->nsid, ns->lba_size, ns->nsze);
	dev_close(&d);
	return 0;
}

static int transfer(bool is_write, const char *bdf, uint64_t nsid, uint64_t slba, uint64_t nlb)
{
	const struct upcie_nvme_ns *ns;
	uint32_t chunk;
	struct dev d;
	void *buf = NULL;
	int rc = 1;

	if (dev_open(&d, bdf, true))
		return 1;
	ns = upcie_nvme_ns_get(d.ctrl, (uint32_t)nsid);
	if (!ns) {
		fprintf(stderr, "upcie-xcheck: %s: namespace %" PRIu64 " is not active\n", bdf,
			nsid);
		goto out;
	}
	if (slba + nlb > ns->nsze || !nlb) {
		fprintf(stderr,
			"upcie-xcheck: blocks %" PRIu64 "+%" PRIu64 " outside 0..%" PRIu64 "\n",
			slba, nlb, ns->nsze);
		goto out;
	}
	/* Largest transfer the namespace allows, capped at 256 KiB per chunk. */
	chunk = ns->max_xfer_blocks ? ns->max_xfer_blocks : 1;
	if ((uint64_t)chunk * ns->lba_size > (256u << 10))
		chunk = (256u << 10) / ns->lba_size;
	buf = upcie_dma_alloc(d.heap, (size_t)chunk * ns->lba_size, 4096);
	if (!buf) {
		fprintf(stderr, "upcie-xcheck: DMA buffer: %s\n", upcie_errmsg());
		goto out;
	}
	for (uint64_t done = 0; done < nlb;) {
		uint32_t n = nlb - done < chunk ? (uint32_t)(nlb - done) : chunk;
		size_t bytes = (size_t)n * ns->lba_size;
		uint16_t status = 0;
		int r;

		if (is_write) {
			if (full_read(0, buf, bytes)) {
				fprintf(stderr,
					"upcie-xcheck: stdin ended before %" PRIu64 " blocks\n",
					nlb);
				goto out;
			}
			r = upcie_nvme_write_sync(d.qp, ns, slba + done, n, buf, &status,
						  TIMEOUT_MS);
		} else {
			r = upcie_nvme_read_sync(d.qp, ns, slba + done, n, buf, &status,
						 TIMEOUT_MS);
		}
		if (r) {
			fprintf(stderr,
				"upcie-xcheck: %s of blocks %" PRIu64 "+%u: %s (status %#x) %s\n",
				is_write ? "write" : "read", slba + done, n, strerror(-r), status,
				upcie_errmsg());
			goto out;
		}
		if (!is_write && full_write(1, buf, bytes)) {
			perror("upcie-xcheck: stdout");
			goto out;
		}
		done += n;
	}
	rc = 0;
	fprintf(stderr,
		"upcie-xcheck: %s %" PRIu64 " blocks of %u bytes at %" PRIu64 " (nsid %" PRIu64
		", %u blocks per command)\n",
		is_write ? "wrote" : "read", nlb, ns->lba_size, slba, nsid, chunk);
out:
	if (buf)
		upcie_dma_free(d.heap, buf);
	dev_close(&d);
	return rc;
}

int main(int argc, char **argv)
{
	uint64_t a, b, c;

	if (argc == 4 && !strcmp(argv[1], "pattern")) {
		if (parse_u64(argv[2], &a) || parse_u64(argv[3], &b))
			return usage();
		return pattern(a, b);
	}
	if (argc == 3 && !strcmp(argv[1], "info"))
		return info(argv[2]);
	if (argc == 6 && (!strcmp(argv[1], "write") || !strcmp(argv[1], "read"))) {
		if (parse_u64(argv[3], &a) || parse_u64(argv[4], &b) || parse_u64(argv[5], &c))
			return usage();
		return transfer(argv[1][0] == 'w', argv[2], a, b, c);
	}
	return usage();
}
