/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging and error messages
 * ==========================
 *
 * The library is silent by default. A caller may install a log callback,
 * or set UPCIE_LOG=error|warn|info|debug in the environment to have
 * messages printed to stderr (read at the first message, not at load).
 *
 * Every failing call also leaves a one-line reason, naming what was wrong
 * and what to do, in a per-thread buffer: upcie_errmsg() returns it.
 *
 * Functions:
 *   upcie_log_set()   install a callback (NULL restores the default)
 *   upcie_errmsg()    reason for the calling thread's last failure
 */
#ifndef UPCIE_LOG_H
#define UPCIE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

enum upcie_log_level {
	UPCIE_LOG_ERROR = 0,
	UPCIE_LOG_WARN = 1,
	UPCIE_LOG_INFO = 2,
	UPCIE_LOG_DEBUG = 3,
};

typedef void (*upcie_log_fn)(enum upcie_log_level level, const char *msg, void *arg);

/* Send messages up to and including 'max' to 'fn'. fn == NULL: back to default. */
void upcie_log_set(upcie_log_fn fn, enum upcie_log_level max, void *arg);

/* The calling thread's last error message ("" if none); valid until its next call. */
const char *upcie_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_LOG_H */
