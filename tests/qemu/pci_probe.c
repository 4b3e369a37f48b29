/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-pci-probe: exercise the pci layer of one device on its own (no
 * NVMe driver layer), for the QEMU guest tests.
 *
 *   upcie-pci-probe [--nobody] [--small-pages] [--identify] <bdf>
 *
 * Opens the device on the backend its driver selects, maps BAR0 and
 * prints CAP and VS, maps a DMA buffer (a 2 MiB hugepage, or with
 * --small-pages 16 KiB of ordinary pages) and prints its bus addresses.
 * With --identify it also brings the admin queue up by hand and runs one
 * Identify Controller through that buffer: proof that the bus addresses
 * are the ones the device reaches. --nobody drops to uid/gid 65534 first.
 *
 * Prints 'key: value' lines; exit status 0 on success, 1 on failure, with
 * upcie_errmsg() on stderr.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <upcie/log.h>
#include <upcie/pci.h>

/* NVMe base spec 3.1.4 register offsets, kept local so this test does not
 * depend on the driver layer it is meant to sit under. */
#define REG_CAP	  0x00
#define REG_VS	  0x08
#define REG_CC	  0x14
#define REG_CSTS  0x1c
#define REG_AQA	  0x24
#define REG_ASQ	  0x28
#define REG_ACQ	  0x30
#define REG_SQ0DB 0x1000

#define HUGE_2M (2u << 20)

static int fail(const char *what)
{
	int err = errno;

	fprintf(stderr, "upcie-pci-probe: %s: errno %d (%s): %s\n", what, err, strerror(err),
		upcie_errmsg());
	return 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for CSTS.RDY == rdy, bounded by CAP.TO (500 ms units). */
static int wait_ready(volatile void *bar, uint64_t cap, unsigned rdy)
{
	double deadline = now() + (double)((cap >> 24) & 0xff) * 0.5 + 1.0;

	while (now() < deadline) {
		uint32_t csts = upcie_mmio_read32(bar, REG_CSTS);
		if (csts == 0xffffffff)
			return -ENODEV;
		if ((csts & 1) == rdy)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

/* Admin SQ at buf+0, CQ at buf+4K, Identify data at buf+8K; bus[] is the
 * bus address of each page of buf. */
static int identify(struct upcie_pci_dev *dev, volatile void *bar, uint8_t *buf, uint64_t bus_sq,
		    uint64_t bus_cq, uint64_t bus_data)
{
	uint64_t cap = upcie_mmio_read64(bar, REG_CAP);
	unsigned dstrd = (unsigned)((cap >> 32) & 0xf);
	uint32_t *sqe = (uint32_t *)buf;
	volatile uint32_t *cqe = (volatile uint32_t *)(buf + 4096);
	char sn[21], mn[41];
	double deadline;
	int rc;

	upcie_mmio_write32(bar, REG_CC, 0);
	rc = wait_ready(bar, cap, 0);
	if (rc) {
		fprintf(stderr, "controller did not disable: %s\n", strerror(-rc));
		return rc;
	}
	/* Open left bus mastering off (pci.h); on only once the controller is
	 * disabled. */
	rc = upcie_pci_bus_master(dev, true);
	if (rc) {
		fprintf(stderr, "bus master enable: %s\n", upcie_errmsg());
		return rc;
	}
	memset(buf, 0, 3 * 4096);
	upcie_mmio_write32(bar, REG_AQA, (1u << 16) | 1u); /* 2-entry queues */
	upcie_mmio_write64(bar, REG_ASQ, bus_sq);
	upcie_mmio_write64(bar, REG_ACQ, bus_cq);
	/* IOCQES=4 (16 B), IOSQES=6 (64 B), MPS=0 (4 KiB), CSS=NVM, EN=1 */
	upcie_mmio_write32(bar, REG_CC, (4u << 20) | (6u << 16) | 1u);
	rc = wait_ready(bar, cap, 1);
	if (rc) {
		fprintf(stderr, "controller did not enable: %s\n", strerror(-rc));
		return rc;
	}

	sqe[0] = 0x06 | (0x1234u << 16); /* Identify, CID 0x1234 */
	sqe[6] = (uint32_t)bus_data;	 /* PRP1 */
	sqe[7] = (uint32_t)(bus_data >> 32);
	sqe[10] = 1; /* CNS 1: controller */
	/* The SQE must be in memory before the device sees the new tail. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	upcie_mmio_write32(bar, REG_SQ0DB, 1);

	deadline = now() + 5.0;
	while (!(cqe[3] & (1u << 16))) { /* phase tag flips to 1 */
		if (now() > deadline) {
			fprintf(stderr, "identify: no completion within 5 s\n");
			return -ETIMEDOUT;
		}
	}
	/* Read the entry (and the data) only after seeing the phase bit. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	upcie_mmio_write32(bar, REG_SQ0DB + (4u << dstrd), 1); /* CQ0 head */
	printf("identify_cid: %#x\n", cqe[3] & 0xffff);
	printf("identify_status: %#x  # 0 is success\n", (cqe[3] >> 17) & 0x7fff);
	memcpy(sn, buf + 8192 + 4, 20);
	sn[20] = '\0';
	memcpy(mn, buf + 8192 + 24, 40);
	mn[40] = '\0';
	printf("identify_sn: '%s'\n", sn);
	printf("identify_mn: '%s'\n", mn);
	upcie_mmio_write32(bar, REG_CC, 0);
	wait_ready(bar, cap, 0);
	return ((cqe[3] >> 17) & 0x7fff) || (cqe[3] & 0xffff) != 0x1234 ? -EIO : 0;
}

int main(int argc, char **argv)
{
	bool nobody = false, small = false, do_identify = false;
	struct upcie_pci_dev *dev;
	size_t len, blen, pgsz;
	uint64_t bus[8];
	uint16_t ids[2], cmd;
	uint8_t *buf;
	void *bar;
	int i, rc = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--nobody"))
			nobody = true;
		else if (!strcmp(argv[i], "--small-pages"))
			small = true;
		else if (!strcmp(argv[i], "--identify"))
			do_identify = true;
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: upcie-pci-probe [--nobody] [--small-pages] [--identify] "
				"<bdf>\n");
		return 2;
	}
	if (nobody && (setgid(65534) || setuid(65534))) {
		perror("setuid(65534)");
		return 2;
	}

	dev = upcie_pci_open(argv[i], NULL);
	if (!dev)
		return fail("open");
	printf("device: %s\n", upcie_pci_name(dev));
	printf("backend: %s\n", upcie_pci_backend_name(upcie_pci_backend(dev)));
	printf("dma_caps: %#x\n", upcie_pci_dma_caps(dev));
	if (upcie_pci_cfg_read(dev, 0, ids, sizeof(ids))) {
		rc = fail("config read");
		goto out;
	}
	printf("vendor_device: %04x:%04x\n", ids[0], ids[1]);
	if (upcie_pci_cfg_read(dev, 4, &cmd, sizeof(cmd))) {
		rc = fail("config read");
		goto out;
	}
	printf("bus_master: %s  # after open (it fences the device)\n", cmd & 4 ? "on" : "off");
	if (upcie_pci_bar_map(dev, 0, &bar, &len)) {
		rc = fail("BAR0 map");
		goto out;
	}
	printf("bar0_len: %zu\n", len);
	printf("cap: %#018llx  # MQES %u, TO %u x 500 ms\n",
	       (unsigned long long)upcie_mmio_read64(bar, REG_CAP),
	       (unsigned)(upcie_mmio_read64(bar, REG_CAP) & 0xffff) + 1,
	       (unsigned)((upcie_mmio_read64(bar, REG_CAP) >> 24) & 0xff));
	printf("vs: %#010x\n", upcie_mmio_read32(bar, REG_VS));

	pgsz = small ? 4096 : HUGE_2M;
	blen = small ? 4 * 4096 : HUGE_2M;
	buf = mmap(NULL, blen, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | (small ? 0 : MAP_HUGETLB), -1, 0);
	if (buf == MAP_FAILED) {
		fprintf(stderr, "upcie-pci-probe: cannot get %s memory: %s\n",
			small ? "ordinary" : "2 MiB hugepage", strerror(errno));
		rc = 1;
		goto out;
	}
	memset(buf, 0, blen);
	if (upcie_pci_dma_map(dev, buf, blen, pgsz, bus)) {
		rc = fail("DMA map");
		munmap(buf, blen);
		goto out;
	}
	for (size_t p = 0; p < blen / pgsz; p++)
		printf("dma_bus_%zu: %#llx\n", p, (unsigned long long)bus[p]);
	if (do_identify) {
		/* Page-granular addresses: with small pages, page n is bus[n]. */
		uint64_t sq = bus[0], cq = small ? bus[1] : bus[0] + 4096,
			 data = small ? bus[2] : bus[0] + 8192;
		if (identify(dev, bar, buf, sq, cq, data))
			rc = 1;
	}
	if (upcie_pci_dma_unmap(dev, buf, blen, pgsz, bus))
		rc = fail("DMA unmap");
	munmap(buf, blen);
out:
	upcie_pci_close(dev);
	printf("result: %s\n", rc ? "FAIL" : "ok");
	return rc;
}
