/* SPDX-License-Identifier: BSD-3-Clause */
/* Register field accessors, structure layouts and status names. */
#include <stddef.h>
#include <string.h>

#include <upcie/nvme_spec.h>

#include "cu.h"

static void test_cap_fields(void)
{
	/* MQES 0x3ff, CQR 1, AMS 1, TO 0x20, DSTRD 2, NSSRS 1, CSS 0x41, MPSMIN 1, MPSMAX 4, CMBS 1
	 */
	uint64_t cap = 0x3ffull | (1ull << 16) | (1ull << 17) | (0x20ull << 24) | (2ull << 32) |
		       (1ull << 36) | (0x41ull << 37) | (1ull << 48) | (4ull << 52) | (1ull << 57);

	CU_ASSERT_EQUAL(upcie_nvme_cap_mqes(cap), 0x3ff);
	CU_ASSERT_EQUAL(upcie_nvme_cap_cqr(cap), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cap_ams(cap), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cap_to(cap), 0x20);
	CU_ASSERT_EQUAL(upcie_nvme_cap_dstrd(cap), 2);
	CU_ASSERT_EQUAL(upcie_nvme_cap_nssrs(cap), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cap_css(cap), 0x41);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mpsmin(cap), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mpsmax(cap), 4);
	CU_ASSERT_EQUAL(upcie_nvme_cap_cmbs(cap), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cap_mqes(0), 0);
	CU_ASSERT_EQUAL(upcie_nvme_cap_dstrd(UINT64_MAX), 0xf);
}

static void test_cc_csts_fields(void)
{
	uint32_t cc = UPCIE_NVME_CC_EN | (6u << UPCIE_NVME_CC_IOSQES_SHIFT) |
		      (4u << UPCIE_NVME_CC_IOCQES_SHIFT) | (2u << UPCIE_NVME_CC_MPS_SHIFT) |
		      UPCIE_NVME_CC_SHN_NORMAL;

	CU_ASSERT_EQUAL(upcie_nvme_cc_en(cc), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cc_iosqes(cc), 6);
	CU_ASSERT_EQUAL(upcie_nvme_cc_iocqes(cc), 4);
	CU_ASSERT_EQUAL(upcie_nvme_cc_mps(cc), 2);
	CU_ASSERT_EQUAL(upcie_nvme_cc_shn(cc), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cc_css(cc), 0);
	CU_ASSERT_EQUAL(upcie_nvme_csts_rdy(UPCIE_NVME_CSTS_RDY), 1);
	CU_ASSERT_EQUAL(upcie_nvme_csts_cfs(UPCIE_NVME_CSTS_CFS), 1);
	CU_ASSERT_EQUAL(upcie_nvme_csts_shst(UPCIE_NVME_CSTS_SHST_DONE), 2);
	CU_ASSERT_EQUAL(upcie_nvme_csts_rdy(UPCIE_NVME_CSTS_CFS), 0);
	CU_ASSERT_EQUAL(upcie_nvme_aqa(32, 16), (15u << 16) | 31u);
	CU_ASSERT_EQUAL(upcie_nvme_vs_mjr(0x00010400), 1);
	CU_ASSERT_EQUAL(upcie_nvme_vs_mnr(0x00010400), 4);
	CU_ASSERT_EQUAL(upcie_nvme_vs_ter(0x00010403), 3);
}

static void test_doorbells(void)
{
	CU_ASSERT_EQUAL(upcie_nvme_sq_db_off(0, 0), 0x1000);
	CU_ASSERT_EQUAL(upcie_nvme_cq_db_off(0, 0), 0x1004);
	CU_ASSERT_EQUAL(upcie_nvme_sq_db_off(1, 0), 0x1008);
	CU_ASSERT_EQUAL(upcie_nvme_cq_db_off(3, 0), 0x101c);
	/* DSTRD 2: 16-byte stride. */
	CU_ASSERT_EQUAL(upcie_nvme_sq_db_off(1, 2), 0x1020);
	CU_ASSERT_EQUAL(upcie_nvme_cq_db_off(1, 2), 0x1030);
}

static void test_cqe_status(void)
{
	struct upcie_nvme_cqe cqe = {0};

	cqe.status = upcie_nvme_status_field(UPCIE_NVME_SC_LBA_RANGE, 1, 1);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_phase(&cqe), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_sc(&cqe), 0x80);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_sct(&cqe), 0);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_dnr(&cqe), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_status(&cqe), UPCIE_NVME_SC_LBA_RANGE);
	cqe.status = upcie_nvme_status_field(UPCIE_NVME_SC_QUEUE_SIZE, 0, 0);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_sct(&cqe), 1);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_sc(&cqe), 2);
	CU_ASSERT_EQUAL(upcie_nvme_cqe_phase(&cqe), 0);
}

static void test_layouts(void)
{
	/* Offsets the specification fixes (Base spec Figure 275, NVM CS Figure 97). */
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, sn), 4);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, mn), 24);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, fr), 64);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, mdts), 77);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, ver), 80);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, cntrltype), 111);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, oacs), 256);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, sqes), 512);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, nn), 516);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, oncs), 520);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, vwc), 525);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, sgls), 536);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, subnqn), 768);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ctrl, psd), 2048);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, nlbaf), 25);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, flbas), 26);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, nvmcap), 48);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, anagrpid), 92);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, nguid), 104);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, eui64), 120);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_id_ns, lbaf), 128);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_sqe, prp1), 24);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_sqe, cdw10), 40);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_cqe, sqhd), 8);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_cqe, status), 14);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_smart_log, temperature), 1);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_smart_log, data_units_read), 32);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_smart_log, temp_sensor), 200);
	CU_ASSERT_EQUAL(offsetof(struct upcie_nvme_error_log, cs), 32);
}

static void test_flbas(void)
{
	struct upcie_nvme_id_ns ns;

	memset(&ns, 0, sizeof(ns));
	ns.flbas = 0x3;
	CU_ASSERT_EQUAL(upcie_nvme_id_ns_flbas_idx(&ns), 3);
	ns.flbas = 0x12 | (1 << 5); /* bit 4 is metadata placement, bits 6:5 high index */
	CU_ASSERT_EQUAL(upcie_nvme_id_ns_flbas_idx(&ns), 0x12);
}

static void test_status_str(void)
{
	CU_ASSERT_STRING_EQUAL(upcie_nvme_status_str(0), "Successful Completion");
	CU_ASSERT_STRING_EQUAL(upcie_nvme_status_str(UPCIE_NVME_SC_LBA_RANGE), "LBA Out of Range");
	CU_ASSERT_STRING_EQUAL(upcie_nvme_status_str(UPCIE_NVME_SC_INVALID_QUEUE_DELETION),
			       "Invalid Queue Deletion");
	CU_ASSERT_PTR_NOT_NULL(upcie_nvme_status_str(0x7ff));
	CU_ASSERT_PTR_NOT_NULL(strstr(upcie_nvme_status_str(0x17f), "Command Specific"));
}

static CU_TestInfo tests[] = {
    {"CAP fields", test_cap_fields},
    {"CC and CSTS fields", test_cc_csts_fields},
    {"doorbell offsets with DSTRD", test_doorbells},
    {"CQE status field", test_cqe_status},
    {"structure offsets", test_layouts},
    {"FLBAS index", test_flbas},
    {"status names", test_status_str},
    CU_TEST_INFO_NULL,
};

UPCIE_CU_MAIN("spec", NULL, NULL, tests)
