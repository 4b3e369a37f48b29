/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-qd-loop: keep QD random 4 KiB reads in flight, the pattern to copy
 * for an I/O loop.
 *
 *   upcie-qd-loop DEVICE [QD [COUNT]]     DEVICE: a PCI address or "sim"
 *
 * The completion callback submits the next read without ringing; the same
 * upcie_nvme_poll() that called it rings the SQ doorbell once for all of
 * them before it writes the CQ head doorbell, so the device gets new work
 * first, and one batch costs one doorbell. Exit status: 0 when COUNT reads
 * completed without error, 1 on bad arguments, 2 on a device error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <upcie/upcie.h>

#define USAGE                                                                                      \
	"usage: upcie-qd-loop DEVICE [QD 1..1023 [COUNT >= 1]]\n"                                  \
	"  DEVICE: a PCI address bound to vfio-pci or uio_pci_generic, or 'sim'\n"                 \
	"  QD: reads in flight (default 32), COUNT: reads in all (default 100000)\n"

struct loop {
	struct upcie_nvme_qpair *qp;
	const struct upcie_nvme_ns *ns;
	uint64_t left;	 /* reads still to submit */
	uint64_t done;	 /* reads completed */
	uint64_t errors; /* reads that failed: an error status, or not submitted */
	uint64_t rng;	 /* xorshift state for the LBAs */
};

struct slot {
	struct loop *l;
	void *buf; /* from the DMA heap: the device reads and writes it directly */
};

static void read_done(void *arg, const struct upcie_nvme_cqe *cqe);

static int submit(struct slot *s)
{
	struct loop *l = s->l;
	uint64_t blocks = 4096 / l->ns->lba_size;

	int rc;

	l->rng ^= l->rng << 13, l->rng ^= l->rng >> 7, l->rng ^= l->rng << 17;
	/* No UPCIE_NVME_SUBMIT_RING: poll (or the first ring) publishes it. */
	rc = upcie_nvme_read(l->qp, l->ns, (l->rng % (l->ns->nsze / blocks)) * blocks,
			     (uint32_t)blocks, s->buf, read_done, s, 0);
	if (!rc)
		l->left--;
	return rc;
}

static void read_done(void *arg, const struct upcie_nvme_cqe *cqe)
{
	struct slot *s = arg;

	s->l->done++;
	if (upcie_nvme_cqe_status(cqe)) {
		s->l->errors++;
		fprintf(stderr, "read failed: %s\n",
			upcie_nvme_status_str(upcie_nvme_cqe_status(cqe)));
	}
	if (s->l->left && submit(s)) {
		/* Refused (e.g. -ESTALE: the namespace changed): submit no more,
		 * let what is in flight finish. */
		fprintf(stderr, "resubmit: %s\n", upcie_errmsg());
		s->l->errors++;
		s->l->left = 0;
	}
}

int main(int argc, char **argv)
{
	unsigned qd = argc > 2 ? (unsigned)atoi(argv[2]) : 32;
	uint64_t count = argc > 3 ? strtoull(argv[3], NULL, 0) : 100000;
	struct loop l = {.left = count, .rng = 88172645463325252ull};
	struct upcie_nvme_qpair_opts qo = {.depth = qd + 1};
	struct upcie_pci_dev *dev = NULL;
	struct upcie_dma_heap *heap = NULL;
	struct upcie_nvme_ctrl *ctrl = NULL;
	struct slot *slots = NULL;
	int rc = 2;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(USAGE, stdout);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-' || qd < 1 || qd > 1023 || !count) {
		fputs(USAGE, stderr);
		return 1;
	}
	if (!(dev = upcie_pci_open(argv[1], NULL)) ||
	    !(heap = upcie_dma_heap_create(dev, (size_t)(qd + 64) * 8192, 0)) ||
	    !(ctrl = upcie_nvme_ctrl_open(dev, heap, NULL)) ||
	    !(l.qp = upcie_nvme_qpair_create(ctrl, &qo))) {
		fprintf(stderr, "upcie-qd-loop: %s\n", upcie_errmsg());
		goto out;
	}
	l.ns = upcie_nvme_ns_first(ctrl);
	slots = calloc(qd, sizeof(*slots));
	if (!l.ns || !slots || l.ns->lba_size > 4096 || !l.ns->max_xfer_blocks) {
		fprintf(stderr, "upcie-qd-loop: no namespace with <= 4 KiB blocks to read\n");
		goto out;
	}
	for (unsigned i = 0; i < qd && l.left; i++) {
		slots[i] = (struct slot){.l = &l, .buf = upcie_dma_alloc(heap, 4096, 4096)};
		if (!slots[i].buf || submit(&slots[i])) {
			fprintf(stderr, "upcie-qd-loop: %s\n", upcie_errmsg());
			goto out;
		}
	}
	upcie_nvme_ring(l.qp); /* the first batch; the callbacks keep it going */
	while (upcie_nvme_qpair_outstanding(l.qp)) {
		int n = upcie_nvme_poll(l.qp, 0);

		if (n < 0) { /* gone or failed: the commands have ended, or never will */
			fprintf(stderr, "upcie-qd-loop: %s\n", upcie_errmsg());
			goto out;
		}
	}
	printf("%llu reads at QD %u, %llu errors\n", (unsigned long long)l.done, qd,
	       (unsigned long long)l.errors);
	rc = l.errors || l.done < count ? 2 : 0;
out:
	upcie_nvme_ctrl_close(ctrl); /* deletes the qpair; nothing is outstanding now */
	for (unsigned i = 0; slots && i < qd; i++)
		upcie_dma_free(heap, slots[i].buf);
	free(slots);
	upcie_dma_heap_destroy(heap);
	upcie_pci_close(dev);
	return rc;
}
