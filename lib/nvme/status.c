/* SPDX-License-Identifier: BSD-3-Clause */
/* Readable names for NVMe status values ((SCT << 8) | SC). */
#include <upcie/nvme_spec.h>

struct status_name {
	uint16_t status;
	const char *name;
};

static const struct status_name names[] = {
    {UPCIE_NVME_SC_SUCCESS, "Successful Completion"},
    {UPCIE_NVME_SC_INVALID_OPCODE, "Invalid Command Opcode"},
    {UPCIE_NVME_SC_INVALID_FIELD, "Invalid Field in Command"},
    {UPCIE_NVME_SC_CID_CONFLICT, "Command ID Conflict"},
    {UPCIE_NVME_SC_DATA_XFER_ERROR, "Data Transfer Error"},
    {UPCIE_NVME_SC_POWER_LOSS, "Commands Aborted due to Power Loss Notification"},
    {UPCIE_NVME_SC_INTERNAL, "Internal Error"},
    {UPCIE_NVME_SC_ABORT_REQ, "Command Abort Requested"},
    {UPCIE_NVME_SC_ABORT_SQ_DELETED, "Command Aborted due to SQ Deletion"},
    {UPCIE_NVME_SC_INVALID_NS, "Invalid Namespace or Format"},
    {UPCIE_NVME_SC_CMD_SEQ_ERROR, "Command Sequence Error"},
    {UPCIE_NVME_SC_SGL_SEG_DESC_INVALID, "SGL Segment Descriptor Invalid"},
    {UPCIE_NVME_SC_SGL_NUM_DESC_INVALID, "Invalid Number of SGL Descriptors"},
    {UPCIE_NVME_SC_SGL_DATA_LEN_INVALID, "Data SGL Length Invalid"},
    {UPCIE_NVME_SC_SGL_MD_LEN_INVALID, "Metadata SGL Length Invalid"},
    {UPCIE_NVME_SC_SGL_DESC_TYPE_INVALID, "SGL Descriptor Type Invalid"},
    {UPCIE_NVME_SC_INVALID_PRP_OFFSET, "PRP Offset Invalid"},
    {UPCIE_NVME_SC_LBA_RANGE, "LBA Out of Range"},
    {UPCIE_NVME_SC_CAP_EXCEEDED, "Capacity Exceeded"},
    {UPCIE_NVME_SC_NS_NOT_READY, "Namespace Not Ready"},
    {UPCIE_NVME_SC_CQ_INVALID, "Completion Queue Invalid"},
    {UPCIE_NVME_SC_QID_INVALID, "Invalid Queue Identifier"},
    {UPCIE_NVME_SC_QUEUE_SIZE, "Invalid Queue Size"},
    {UPCIE_NVME_SC_ABORT_LIMIT, "Abort Command Limit Exceeded"},
    {UPCIE_NVME_SC_INVALID_IV, "Invalid Interrupt Vector"},
    {UPCIE_NVME_SC_INVALID_LOG_PAGE, "Invalid Log Page"},
    {UPCIE_NVME_SC_INVALID_FORMAT, "Invalid Format"},
    {UPCIE_NVME_SC_INVALID_QUEUE_DELETION, "Invalid Queue Deletion"},
    {UPCIE_NVME_SC_FEATURE_NOT_SAVEABLE, "Feature Identifier Not Saveable"},
    {UPCIE_NVME_SC_INVALID_PI, "Invalid Protection Information"},
    {UPCIE_NVME_SC_CMD_SIZE_LIMIT, "Command Size Limit Exceeded"},
    {UPCIE_NVME_SC_ATTEMPTED_WRITE_RO, "Attempted Write to Read Only Range"},
    {UPCIE_NVME_SC_WRITE_FAULT, "Write Fault"},
    {UPCIE_NVME_SC_UNRECOVERED_READ, "Unrecovered Read Error"},
    {UPCIE_NVME_SC_GUARD_CHECK, "End-to-end Guard Check Error"},
    {UPCIE_NVME_SC_APPTAG_CHECK, "End-to-end Application Tag Check Error"},
    {UPCIE_NVME_SC_REFTAG_CHECK, "End-to-end Reference Tag Check Error"},
    {UPCIE_NVME_SC_COMPARE_FAILURE, "Compare Failure"},
    {UPCIE_NVME_SC_INTERNAL_PATH, "Internal Path Error"},
    {UPCIE_NVME_SC_HOST_PATH_ERROR, "Host Pathing Error (controller gone)"},
    {UPCIE_NVME_SC_HOST_ABORTED, "Command Aborted By Host (controller reset; retry is safe)"},
};

const char *upcie_nvme_status_str(uint16_t status)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].status == status)
			return names[i].name;
	switch (status >> 8) {
	case UPCIE_NVME_SCT_GENERIC:
		return "Generic Command Status (unknown code)";
	case UPCIE_NVME_SCT_CMD_SPECIFIC:
		return "Command Specific Status (unknown code)";
	case UPCIE_NVME_SCT_MEDIA:
		return "Media and Data Integrity Error (unknown code)";
	case UPCIE_NVME_SCT_PATH:
		return "Path Related Status (unknown code)";
	case UPCIE_NVME_SCT_VENDOR:
		return "Vendor Specific Status";
	default:
		return "Unknown Status Code Type";
	}
}
