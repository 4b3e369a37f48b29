/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lifecycle: the one owner of the controller's state and of each queue
 * pair's state (docs/design.md, "Lifecycle", has the tables).
 *
 * Every field that says where the controller or a queue is in its life
 * (ctrl->state, ctrl->gen, qp->qstate, qp->gen, the zombie list, the qid
 * map) is written here and nowhere else, under the admin lock. Other files
 * ask for a transition through the functions below and obey the answer.
 *
 * Controller states. Every change bumps ctrl->gen and pokes every queue:
 * a queue whose gen differs from the controller's runs its recovery on
 * the thread that owns it (upcie_nvme_state_recover).
 *   LIVE       commands flow
 *   RESETTING  a reset is in progress (on the thread holding the lock)
 *   FAILED     CFS or a lost admin completion: the controller may still
 *              DMA; outstanding commands stay outstanding until a reset
 *   DEAD       a reset failed, but the device is fenced (disabled or bus
 *              mastering off): outstanding commands end, nothing runs
 *   GONE       registers read all-ones, or the kernel took the device
 *              back (and bus mastering is off): nothing will complete
 *
 * Queue pair states (the host's view of one I/O SQ/CQ pair):
 *   NEW     allocated; not on the device yet
 *   LIVE    on the device, in step with the controller's generation
 *   OFF     the controller was reset (or a re-creation failed): not on the
 *           device; re-created by its owner's next poll
 *   FENCED  the controller is DEAD or GONE: what it held ended
 *   ZOMBIE  its deletion was refused: the device may still own its memory;
 *           the next reset (once CSTS.RDY = 0) or close ends its commands
 *           and frees it with its qid
 */
#ifndef UPCIE_LIB_NVME_STATE_H
#define UPCIE_LIB_NVME_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/compiler.h"

struct upcie_nvme_ctrl;
struct upcie_nvme_qpair;

enum upcie_nvme_state {
	UPCIE_NVME_LIVE = 0,
	UPCIE_NVME_RESETTING,
	UPCIE_NVME_FAILED,
	UPCIE_NVME_DEAD,
	UPCIE_NVME_GONE,
	UPCIE_NVME_NR_STATES
};

enum upcie_nvme_qstate {
	UPCIE_NVME_Q_NEW = 0,
	UPCIE_NVME_Q_LIVE,
	UPCIE_NVME_Q_OFF,
	UPCIE_NVME_Q_FENCED,
	UPCIE_NVME_Q_ZOMBIE,
	UPCIE_NVME_NR_QSTATES
};

HIDDEN const char *upcie_nvme_state_name(int state);
HIDDEN const char *upcie_nvme_qstate_name(int qstate);
/* Is from -> to in the table? (exported to the unit test of the table) */
HIDDEN bool upcie_nvme_state_allowed(int from, int to);
HIDDEN bool upcie_nvme_qstate_allowed(int from, int to);

/* A consistent (state, generation) pair, without the lock. */
HIDDEN int upcie_nvme_state_read(const struct upcie_nvme_ctrl *c, uint32_t *gen);

/* Admin lock held. Move the controller to 'to' (the table must allow it):
 * a new generation, every queue poked. */
HIDDEN void upcie_nvme_state_set(struct upcie_nvme_ctrl *c, int to);

/* The admin queue (the controller's own: reset with it, never recovered)
 * is in step with the controller's generation. */
HIDDEN void upcie_nvme_state_admin_in_step(struct upcie_nvme_ctrl *c);

/* Admin lock held: the controller is LIVE or a reset's bring-up runs. */
HIDDEN bool upcie_nvme_state_admin_ok(const struct upcie_nvme_ctrl *c);

/*
 * The device is gone or failed beyond recovery: make sure it cannot DMA
 * (bus mastering off, a disable tried when it still answers), then publish
 * DEAD or GONE so every queue ends its commands. Admin lock held.
 */
HIDDEN void upcie_nvme_fence(struct upcie_nvme_ctrl *c, int state, const char *why);
/* Reset with the admin lock held; see upcie_nvme_ctrl_reset(). */
HIDDEN int upcie_nvme_reset_locked(struct upcie_nvme_ctrl *c, const char *why);
/* An admin command was lost: reset, or mark the controller FAILED. */
HIDDEN void upcie_nvme_admin_lost(struct upcie_nvme_ctrl *c, const char *why);
/* CFS seen with no_auto_reset: LIVE -> FAILED. */
HIDDEN void upcie_nvme_state_failed(struct upcie_nvme_ctrl *c);

/*
 * A queue out of step with its controller, on its owner's thread: end what
 * the controller let go of, re-create the queue, deliver the host
 * completions last. Returns completions delivered or a negative errno.
 */
HIDDEN int upcie_nvme_state_recover(struct upcie_nvme_qpair *qp);

/* Queue pair life, for qpair.c. */
/* The qid map, for the queues the controller granted (at open). */
HIDDEN int upcie_nvme_state_qids_init(struct upcie_nvme_ctrl *c);
HIDDEN int upcie_nvme_state_qid_alloc(struct upcie_nvme_ctrl *c);
HIDDEN void upcie_nvme_state_qid_free(struct upcie_nvme_ctrl *c, uint16_t qid);
/* Created on the device: LIVE in the generation read under the lock that
 * is held across the creation; linked into the controller's list. */
HIDDEN void upcie_nvme_state_q_created(struct upcie_nvme_qpair *qp, uint32_t gen);
HIDDEN void upcie_nvme_state_q_unlink(struct upcie_nvme_qpair *qp);
/* Its SQ and CQ were deleted, or it never reached the device. */
HIDDEN void upcie_nvme_state_q_gone(struct upcie_nvme_qpair *qp);
/* The device may still own it: onto the zombie list. */
HIDDEN void upcie_nvme_state_q_zombie(struct upcie_nvme_qpair *qp);
/* The device is fenced: end what is left with a path error (DNR). */
HIDDEN void upcie_nvme_state_q_fenced(struct upcie_nvme_qpair *qp);
/* End every outstanding command of qp now with a host status (the caller
 * made sure the device can no longer touch them); returns how many. */
HIDDEN uint32_t upcie_nvme_state_q_end(struct upcie_nvme_qpair *qp, uint16_t status, int dnr);
/* End and free the zombies; 'quiet': the device can no longer touch them
 * (else their memory stays allocated). Admin lock held or closing. */
HIDDEN void upcie_nvme_state_end_zombies(struct upcie_nvme_ctrl *c, bool quiet);

#endif
