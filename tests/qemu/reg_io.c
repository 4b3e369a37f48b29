/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-reg-io: I/O on registered memory (upcie_dma_register) against a
 * real (emulated) controller, for the QEMU guest tests.
 *
 *   upcie-reg-io [--mem hugetlb|anon|malloc] [--nsid N] <bdf>
 *
 * Allocates two buffers of the kind --mem names (default: hugetlb, two
 * 2 MiB hugepages; anon: 1 MiB of ordinary mmap pages each; malloc:
 * aligned_alloc), registers both with the device's heap, and checks:
 *   - writes from one region (a page; 5 pages, 4 under a 16 KiB MDTS,
 *     from a 512-byte offset: a PRP list; a transfer above MDTS, split)
 *     read back into the other, and through a heap buffer, byte for byte;
 *   - a scatter list over both regions (PRPs) reads back the same;
 *   - unregister while a read is in flight: EBUSY; after its completion: 0;
 *   - the buffer once unregistered: EINVAL.
 * When the backend refuses the memory (uio with anon or malloc memory),
 * the registration's message is printed on stderr and the program exits
 * 3: guest-reg.sh expects exactly that, with the reason in the message.
 *
 * The LBAs used are in the namespace's second eighth, clear of the
 * cross-check regions at its end and of upcie-reset-load's quarter.
 *
 * Output: "PASS <name>" or "FAIL <name> # <why>" per check on stdout,
 * details on stderr. Exit 0 when all passed, 1 on a failure, 2 on bad
 * usage or setup, 3 when the registration was refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <upcie/upcie.h>

#define HUGE_2M (2u << 20)

static int failures;

static void check(int ok, const char *name, const char *why)
{
	if (ok) {
		printf("PASS %s\n", name);
	} else {
		printf("FAIL %s # %s\n", name, why);
		failures++;
	}
}

static uint8_t pat(uint64_t lba, uint32_t i, uint32_t gen)
{
	return (uint8_t)(lba * 41 + i * 13 + (i >> 9) + gen * 7 + 3);
}

static void fill(uint8_t *b, uint32_t lbs, uint64_t slba, uint32_t nlb, uint32_t gen)
{
	for (uint32_t k = 0; k < nlb; k++)
		for (uint32_t i = 0; i < lbs; i++)
			b[(size_t)k * lbs + i] = pat(slba + k, i, gen);
}

static size_t bad(const uint8_t *b, uint32_t lbs, uint64_t slba, uint32_t nlb, uint32_t gen)
{
	size_t n = 0;

	for (uint32_t k = 0; k < nlb; k++)
		for (uint32_t i = 0; i < lbs; i++)
			n += b[(size_t)k * lbs + i] != pat(slba + k, i, gen);
	return n;
}

static void *get_mem(const char *kind, size_t *len)
{
	void *p = NULL;

	if (!strcmp(kind, "hugetlb")) {
		*len = 2 * HUGE_2M;
		p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	*len = 1u << 20;
	if (!strcmp(kind, "anon")) {
		p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	}
	p = aligned_alloc(4096, *len);
	if (p)
		memset(p, 0, *len);
	return p;
}

static void put_mem(const char *kind, void *p, size_t len)
{
	if (!strcmp(kind, "malloc"))
		free(p);
	else
		munmap(p, len);
}

struct counter {
	volatile unsigned done, errors;
};

static void count_cb(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct counter *c = arg;

	c->errors += upcie_nvme_cqe_status(cqe) != 0;
	c->done++;
}

static int wait_for(struct upcie_nvme_qpair *qp, struct counter *c, unsigned want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (c->done < want) {
		if (upcie_nvme_poll(qp, 0) < 0)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 10)
			return -1;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: upcie-reg-io [--mem hugetlb|anon|malloc] [--nsid N] <bdf>\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *kind = "hugetlb", *bdf = NULL;
	uint32_t nsid = 1;
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	const struct upcie_nvme_ns *ns;
	struct upcie_nvme_qpair *qp;
	struct counter cnt = {0};
	struct upcie_nvme_split split;
	uint8_t *a, *b, *hb;
	size_t la, lb;
	char why[256];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mem") && i + 1 < argc)
			kind = argv[++i];
		else if (!strcmp(argv[i], "--nsid") && i + 1 < argc)
			nsid = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (argv[i][0] != '-' && !bdf)
			bdf = argv[i];
		else
			return usage();
	}
	if (!bdf || (strcmp(kind, "hugetlb") && strcmp(kind, "anon") && strcmp(kind, "malloc")))
		return usage();
	dev = upcie_pci_open(bdf, NULL);
	heap = dev ? upcie_dma_heap_create(dev, 8u << 20, 0) : NULL;
	ctrl = heap ? upcie_nvme_ctrl_open(dev, heap, NULL) : NULL;
	ns = ctrl ? upcie_nvme_ns_get(ctrl, nsid) : NULL;
	qp = ns ? upcie_nvme_qpair_create(ctrl, NULL) : NULL;
	a = qp ? get_mem(kind, &la) : NULL;
	b = a ? get_mem(kind, &lb) : NULL;
	hb = b ? upcie_dma_alloc_pages(heap, 1u << 20) : NULL;
	if (!hb) {
		fprintf(stderr, "setup (%s memory on %s): %s\n", kind, bdf,
			qp && !b ? "cannot allocate the buffers (hugetlb: reserve four more 2 MiB "
				   "hugepages)"
				 : upcie_errmsg());
		return 2;
	}
	fprintf(stderr, "%s on %s: nsid %u, %u-byte blocks, %u blocks per command at most\n", kind,
		bdf, ns->nsid, ns->lba_size, ns->max_xfer_blocks);

	rc = upcie_dma_register(heap, a, la);
	if (rc) {
		fprintf(stderr, "register %zu bytes of %s memory: %s (%s)\n", la, kind,
			strerror(-rc), upcie_errmsg());
		upcie_dma_free(heap, hb);
		upcie_nvme_ctrl_close(ctrl);
		upcie_dma_heap_destroy(heap);
		upcie_pci_close(dev);
		return 3;
	}
	rc = upcie_dma_register(heap, b, lb);
	check(rc == 0, "register two regions", upcie_errmsg());
	if (rc)
		return 1;

	uint32_t lbs = ns->lba_size;
	uint64_t base = ns->nsze / 8;
	/* One page. */
	uint32_t n1 = 4096 / lbs;
	fill(a, lbs, base, n1, 1);
	rc = upcie_nvme_write_sync(qp, ns, base, n1, a, NULL, 0);
	rc = rc ? rc : upcie_nvme_read_sync(qp, ns, base, n1, b, NULL, 0);
	snprintf(why, sizeof(why), "rc %d, %zu bytes differ: %s", rc,
		 rc ? 0 : bad(b, lbs, base, n1, 1), rc ? upcie_errmsg() : "");
	check(!rc && !bad(b, lbs, base, n1, 1), "one page written and read back", why);

	/* From a 512-byte offset: a PRP list in both regions. */
	/* Five pages, or four under a 16 KiB MDTS (still a PRP list from a
	 * mid-page start). */
	uint32_t np = ns->max_xfer_blocks * lbs / 4096 < 5 ? ns->max_xfer_blocks * lbs / 4096 : 5;
	uint32_t n5 = np * 4096 / lbs;
	uint8_t *src = a + 8192 + (lbs < 4096 ? 512 : 0),
		*dst = b + 65536 + (lbs < 4096 ? 1024 : 0);
	fill(src, lbs, base + 16, n5, 2);
	rc = upcie_nvme_write_sync(qp, ns, base + 16, n5, src, NULL, 0);
	rc = rc ? rc : upcie_nvme_read_sync(qp, ns, base + 16, n5, dst, NULL, 0);
	rc = rc ? rc : upcie_nvme_read_sync(qp, ns, base + 16, n5, hb, NULL, 0);
	snprintf(why, sizeof(why), "rc %d, %zu / %zu bytes differ %s", rc,
		 rc ? 0 : bad(dst, lbs, base + 16, n5, 2), rc ? 0 : bad(hb, lbs, base + 16, n5, 2),
		 rc ? upcie_errmsg() : "");
	check(!rc && !bad(dst, lbs, base + 16, n5, 2) && !bad(hb, lbs, base + 16, n5, 2),
	      "PRP list from and into registered memory (and a heap buffer agrees)", why);

	/* Above MDTS: split, asynchronously. */
	uint32_t ns_split = ns->max_xfer_blocks * 2 + n1;
	if ((size_t)ns_split * lbs > (512u << 10))
		ns_split = (512u << 10) / lbs;
	fill(a + 4096, lbs, base + 64, ns_split, 3);
	memset(b + 4096, 0, (size_t)ns_split * lbs);
	rc = upcie_nvme_write_split(qp, ns, base + 64, ns_split, a + 4096, &split, count_cb, &cnt,
				    UPCIE_NVME_SUBMIT_RING);
	rc = rc ? rc : wait_for(qp, &cnt, 1);
	rc = rc ? rc
		: upcie_nvme_read_split(qp, ns, base + 64, ns_split, b + 4096, &split, count_cb,
					&cnt, UPCIE_NVME_SUBMIT_RING);
	rc = rc ? rc : wait_for(qp, &cnt, 2);
	snprintf(why, sizeof(why), "rc %d, %u errors, %zu bytes differ", rc, cnt.errors,
		 rc ? 0 : bad(b + 4096, lbs, base + 64, ns_split, 3));
	check(!rc && !cnt.errors && !bad(b + 4096, lbs, base + 64, ns_split, 3),
	      "split transfer above MDTS from and into registered memory", why);

	/* A scatter list over both regions (PRPs: page-aligned inner edges). */
	size_t list_bytes = upcie_nvme_iov_list_bytes(2, np * 4096, 4096);
	void *list = upcie_dma_alloc(heap, list_bytes, 4096);
	struct iovec iov[2] = {{b + 262144, 2 * 4096}, {a + 262144, (np - 2) * 4096}};
	struct upcie_nvme_sqe r = {.opc = UPCIE_NVME_CMD_READ, .nsid = ns->nsid};
	r.cdw10 = (uint32_t)(base + 16);
	r.cdw11 = (uint32_t)((base + 16) >> 32);
	r.cdw12 = n5 - 1;
	rc = list ? upcie_nvme_submit_iov(ctrl, qp, UPCIE_NVME_IOV_PRP, &r, iov, 2, list,
					  list_bytes, count_cb, &cnt, UPCIE_NVME_SUBMIT_RING)
		  : -ENOMEM;
	rc = rc ? rc : wait_for(qp, &cnt, 3);
	rc = rc ? rc
		: (memcmp(b + 262144, hb, 8192) || memcmp(a + 262144, hb + 8192, (np - 2) * 4096));
	check(!rc && !cnt.errors, "scatter list over two regions read back", upcie_errmsg());

	/* Unregister while a read is in flight: refused, then accepted. */
	rc = upcie_nvme_read(qp, ns, base, n1, b, count_cb, &cnt, UPCIE_NVME_SUBMIT_RING);
	int busy = rc ? rc : upcie_dma_unregister(heap, b, lb);
	snprintf(why, sizeof(why), "submit/unregister gave %d: %s", busy, upcie_errmsg());
	check(busy == -EBUSY, "unregister refused while a read is in flight (EBUSY)", why);
	rc = wait_for(qp, &cnt, 4);
	rc = rc ? rc : upcie_dma_unregister(heap, b, lb);
	check(!rc, "unregister after the completion", upcie_errmsg());
	rc = upcie_nvme_read(qp, ns, base, n1, b, count_cb, &cnt, UPCIE_NVME_SUBMIT_RING);
	snprintf(why, sizeof(why), "read gave %d", rc);
	check(rc == -EINVAL, "the unregistered buffer is refused (EINVAL)", why);
	rc = upcie_dma_unregister(heap, a, la);
	check(!rc, "unregister the other region", upcie_errmsg());

	upcie_dma_free(heap, list);
	upcie_dma_free(heap, hb);
	upcie_nvme_qpair_destroy(qp);
	upcie_nvme_ctrl_close(ctrl);
	upcie_dma_heap_destroy(heap);
	upcie_pci_close(dev);
	put_mem(kind, a, la);
	put_mem(kind, b, lb);
	return failures ? 1 : 0;
}
