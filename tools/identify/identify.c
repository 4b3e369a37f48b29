/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * upcie-identify: print a controller and its namespaces as YAML-like
 * "key: value  # meaning" lines.
 *
 *   upcie-identify DEVICE      DEVICE is a PCI address (0000:01:00.0) or "sim"
 *
 * Exit codes: 0 ok, 1 usage, 2 device error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <upcie/upcie.h>

/* Identify strings are space padded, not NUL terminated, and come from the
 * device: print them quoted, escaping anything that is not plain ASCII. */
static void print_str(const char *key, const char *s, size_t len, const char *meaning)
{
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\0'))
		len--;
	printf("  %s: \"", key);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"  # %s\n", meaning);
}

static void print_ctrl(struct upcie_nvme_ctrl *ctrl)
{
	const struct upcie_nvme_id_ctrl *id = upcie_nvme_ctrl_id(ctrl);
	struct upcie_nvme_ctrl_info info;

	upcie_nvme_ctrl_info(ctrl, &info);
	printf("controller:\n");
	printf("  device: %s\n", upcie_pci_name(upcie_nvme_ctrl_dev(ctrl)));
	printf("  backend: %s\n",
	       upcie_pci_backend_name(upcie_pci_backend(upcie_nvme_ctrl_dev(ctrl))));
	if (upcie_pci_vfio_iommu_name(upcie_nvme_ctrl_dev(ctrl)))
		printf("  vfio_iommu: %s  # type1 (container), iommufd (device cdev) or noiommu\n",
		       upcie_pci_vfio_iommu_name(upcie_nvme_ctrl_dev(ctrl)));
	printf("  vid: 0x%04x  # PCI vendor\n", id->vid);
	print_str("sn", id->sn, sizeof(id->sn), "serial number");
	print_str("mn", id->mn, sizeof(id->mn), "model number");
	print_str("fr", id->fr, sizeof(id->fr), "firmware revision");
	printf("  version: %u.%u.%u  # VS register\n", upcie_nvme_vs_mjr(info.vs),
	       upcie_nvme_vs_mnr(info.vs), upcie_nvme_vs_ter(info.vs));
	printf("  cntlid: %u  # controller ID\n", id->cntlid);
	printf("  mqes: %u  # largest queue, entries (CAP.MQES + 1)\n", info.mqes);
	printf("  dstrd: %u  # doorbell stride, 4 << n bytes\n", info.dstrd);
	printf("  timeout_ms: %u  # CAP.TO, ready transition bound\n", info.timeout_ms);
	printf("  mpsmin: %u  # smallest page, bytes\n", 4096u << upcie_nvme_cap_mpsmin(info.cap));
	printf("  mpsmax: %u  # largest page, bytes\n", 4096u << upcie_nvme_cap_mpsmax(info.cap));
	printf("  page_size: %u  # page size in use (CC.MPS)\n", info.page_size);
	printf("  mdts: %u  # max data transfer, 2^n pages (0: no limit)\n", id->mdts);
	printf("  max_xfer_bytes: %u  # largest transfer the driver issues\n", info.max_xfer_bytes);
	printf("  oacs: 0x%04x  # optional admin commands\n", id->oacs);
	printf("  oncs: 0x%04x  # optional NVM commands\n", id->oncs);
	printf("  ocfs: 0x%04x  # Copy source range formats (bit n: format n)\n", id->ocfs);
	printf("  sgls: 0x%08x  # SGL support (bits 1:0), MPTR with an SGL (bit 19)\n", id->sgls);
	printf("  ctratt: 0x%08x  # controller attributes; bit 15: extended LBA formats\n",
	       id->ctratt);
	printf("  vwc: %u  # volatile write cache present\n", id->vwc & 1);
	printf("  nn: %u  # namespaces (max nsid)\n", id->nn);
	printf("  io_sq_granted: %u  # I/O submission queues granted\n", info.io_sq_granted);
	printf("  io_cq_granted: %u  # I/O completion queues granted\n", info.io_cq_granted);
	printf("  shadow_doorbells: %s  # Doorbell Buffer Config in use\n",
	       info.dbbuf ? "true" : "false");
}

static const char *pi_name(unsigned type)
{
	static const char *const n[] = {"none", "type1", "type2", "type3"};

	return type < 4 ? n[type] : "?";
}

/* What Format NVM could give this LBA format: PI needs 8 metadata bytes
 * (16 for the larger guards). */
static const char *pi_can(const struct upcie_nvme_id_ns *id, unsigned ms, unsigned guard)
{
	return ms >= (guard == 16 ? 8u : 16u) && (id->dpc & 0x7) ? "capable" : "none";
}

static const char *guard_name(unsigned bits)
{
	return bits == 16 ? "16b_guard" : bits == 32 ? "32b_guard" : bits == 64 ? "64b_guard" : "?";
}

/*
 * The PI format of each LBA format: the 16-bit guard, unless the
 * controller has extended LBA formats (CTRATT.ELBAS) and the NVM command
 * set's Identify Namespace (CNS 05h) says otherwise in ELBAF (PIF, STS).
 * elbaf[] gets the dwords; returns false when there are none.
 */
static bool read_elbaf(struct upcie_nvme_ctrl *ctrl, struct upcie_dma_heap *heap, uint32_t nsid,
		       uint32_t elbaf[64])
{
	uint8_t *buf;
	bool ok = false;

	if (!(upcie_nvme_ctrl_id(ctrl)->ctratt & UPCIE_NVME_CTRATT_ELBAS))
		return false;
	buf = upcie_dma_alloc(heap, 4096, 4096);
	if (buf && !upcie_nvme_identify(ctrl, UPCIE_NVME_CNS_CS_NS, nsid, buf, NULL)) {
		memcpy(elbaf, buf + UPCIE_NVME_ELBAF_OFFSET, 64 * sizeof(uint32_t));
		ok = true;
	}
	upcie_dma_free(heap, buf);
	return ok;
}

/* The metadata format in use, and what the namespace can do (MC, DPC). */
static void print_md(const struct upcie_nvme_ns *ns)
{
	const struct upcie_nvme_id_ns *id = ns->id;

	printf("    md_placement: %s  # metadata: in the data buffer (extended LBA) or apart "
	       "(MPTR)\n",
	       !ns->ms		 ? "none"
	       : ns->md_extended ? "extended"
				 : "separate");
	printf("    pi: %s  # protection information in use (DPS)\n", pi_name(ns->pi_type));
	if (ns->pi_type) {
		printf("    pi_location: %s  # PI in the first or last metadata bytes\n",
		       ns->pi_first ? "first" : "last");
		printf("    guard_bits: %u  # CRC guard size\n", ns->guard_bits);
		printf("    pi_format: %s  # %s\n", guard_name(ns->guard_bits),
		       ns->guard_bits == 16   ? "8-byte PI, CRC16 T10-DIF, 32-bit reference tags"
		       : ns->guard_bits == 64 ? "16-byte PI, CRC-64 NVMe, 48-bit reference tags"
					      : "16-byte PI, CRC32C (not done by this library)");
		printf("    pi_sts: %u  # storage tag bits in the tag field (0: none)\n",
		       ns->pi_sts);
	}
	printf("    md_max_xfer_blocks: %u  # largest transfer with metadata, blocks\n",
	       ns->md_max_xfer_blocks);
	printf("    mc: 0x%02x  # metadata capabilities: extended %s, separate %s\n", id->mc,
	       id->mc & UPCIE_NVME_MC_EXTENDED ? "yes" : "no",
	       id->mc & UPCIE_NVME_MC_SEPARATE ? "yes" : "no");
	printf("    dpc: 0x%02x  # PI capabilities: type1 %s, type2 %s, type3 %s, first %s, last "
	       "%s\n",
	       id->dpc, id->dpc & UPCIE_NVME_DPC_TYPE1 ? "yes" : "no",
	       id->dpc & UPCIE_NVME_DPC_TYPE2 ? "yes" : "no",
	       id->dpc & UPCIE_NVME_DPC_TYPE3 ? "yes" : "no",
	       id->dpc & UPCIE_NVME_DPC_FIRST ? "yes" : "no",
	       id->dpc & UPCIE_NVME_DPC_LAST ? "yes" : "no");
}

static void print_ns(struct upcie_nvme_ctrl *ctrl, struct upcie_dma_heap *heap,
		     const struct upcie_nvme_ns *ns)
{
	const struct upcie_nvme_id_ns *id = ns->id;
	uint32_t elbaf[64] = {0};
	bool ext = read_elbaf(ctrl, heap, ns->nsid, elbaf);

	printf("  - nsid: %u\n", ns->nsid);
	printf("    nsze: %llu  # size, blocks\n", (unsigned long long)ns->nsze);
	printf("    ncap: %llu  # capacity, blocks\n", (unsigned long long)ns->ncap);
	printf("    lba_size: %u  # bytes per block in use\n", ns->lba_size);
	printf("    ms: %u  # metadata bytes per block\n", ns->ms);
	printf("    flbas: %u  # LBA format in use\n", ns->flbas_idx);
	printf("    bytes: %llu  # capacity, bytes\n", (unsigned long long)ns->nsze * ns->lba_size);
	printf("    max_xfer_blocks: %u  # largest transfer, blocks (from MDTS)\n",
	       ns->max_xfer_blocks);
	print_md(ns);
	printf("    lba_formats:\n");
	if (ext)
		printf("    # pi_format per LBA format from the NVM command set's Identify "
		       "Namespace (ELBAF)\n");
	for (unsigned i = 0; i <= id->nlbaf && i < 64; i++) {
		bool cur = i == ns->flbas_idx;
		unsigned pif = upcie_nvme_elbaf_pif(elbaf[i]);
		unsigned guard = pif == UPCIE_NVME_PIF_16   ? 16
				 : pif == UPCIE_NVME_PIF_32 ? 32
				 : pif == UPCIE_NVME_PIF_64 ? 64
							    : 0;

		printf("      - {index: %u, lbads: %u, lba_size: %llu, ms: %u, rp: %u, pi: %s, "
		       "pi_format: %s}%s\n",
		       i, id->lbaf[i].lbads,
		       id->lbaf[i].lbads < 64 ? 1ull << id->lbaf[i].lbads : 0ull, id->lbaf[i].ms,
		       id->lbaf[i].rp & 3,
		       cur ? pi_name(ns->pi_type) : pi_can(id, id->lbaf[i].ms, guard),
		       guard_name(guard), cur ? "  # in use" : "");
	}
}

int main(int argc, char **argv)
{
	struct upcie_pci_addr addr;
	struct upcie_pci_dev *dev;
	struct upcie_dma_heap *heap;
	struct upcie_nvme_ctrl *ctrl;
	int rc = 0;

	if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fprintf(argc == 2 ? stdout : stderr,
			"usage: %s DEVICE\n"
			"  DEVICE: a PCI address (0000:01:00.0 or 01:00.0) bound to vfio-pci or\n"
			"          uio_pci_generic, or 'sim' for the emulated controller\n"
			"exit codes: 0 ok, 1 usage, 2 device error\n",
			argv[0]);
		return argc == 2 ? 0 : 1;
	}
	if (strcmp(argv[1], "sim") && upcie_pci_addr_parse(argv[1], &addr)) {
		fprintf(stderr,
			"upcie-identify: '%s' is neither a PCI address (0000:01:00.0 or 01:00.0) "
			"nor 'sim' (see %s --help)\n",
			argv[1], argv[0]);
		return 1;
	}
	dev = upcie_pci_open(argv[1], NULL);
	if (!dev) {
		fprintf(stderr, "upcie-identify: %s\n", upcie_errmsg());
		return 2;
	}
	heap = upcie_dma_heap_create(dev, 4u << 20, 0);
	if (!heap) {
		fprintf(stderr, "upcie-identify: %s\n", upcie_errmsg());
		upcie_pci_close(dev);
		return 2;
	}
	ctrl = upcie_nvme_ctrl_open(dev, heap, NULL);
	if (!ctrl) {
		fprintf(stderr, "upcie-identify: %s\n", upcie_errmsg());
		rc = 2;
		goto out;
	}
	print_ctrl(ctrl);
	printf("namespaces:\n");
	for (const struct upcie_nvme_ns *ns = upcie_nvme_ns_first(ctrl); ns;
	     ns = upcie_nvme_ns_next(ctrl, ns))
		print_ns(ctrl, heap, ns);
	if (upcie_nvme_ctrl_close(ctrl)) {
		fprintf(stderr, "upcie-identify: %s\n", upcie_errmsg());
		rc = 2;
	}
out:
	upcie_dma_heap_destroy(heap);
	upcie_pci_close(dev);
	return rc;
}
