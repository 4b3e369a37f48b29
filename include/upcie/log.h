/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file
 * @brief Logging and error messages
 *
 * The library is silent by default. A caller may install a log callback,
 * or set UPCIE_LOG=error|warn|info|debug in the environment to have
 * messages printed to stderr (read at the first message, not at load).
 *
 * Every failing call also leaves a one-line reason, naming what was wrong
 * and what to do, in a per-thread buffer: upcie_errmsg() returns it.
 *
 * Functions:
 * ~~~
 *   upcie_log_set()   install a callback (NULL restores the default)
 *   upcie_errmsg()    reason for the calling thread's last failure
 * ~~~
 */
#ifndef UPCIE_LOG_H
#define UPCIE_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/** Message levels, most severe first. */
enum upcie_log_level {
	UPCIE_LOG_ERROR = 0,
	UPCIE_LOG_WARN = 1,
	UPCIE_LOG_INFO = 2,
	UPCIE_LOG_DEBUG = 3,
};

/**
 * A log callback: receives each message up to the level set, and the arg
 * given to upcie_log_set().
 */
typedef void (*upcie_log_fn)(enum upcie_log_level level, const char *msg, void *arg);

/**
 * Install a log callback.
 *
 * Send messages up to and including 'max' to 'fn'. fn == NULL: back to
 * default (silent, or stderr as UPCIE_LOG says).
 */
void upcie_log_set(upcie_log_fn fn, enum upcie_log_level max, void *arg);

/**
 * Reason for the calling thread's last failure.
 *
 * @return the calling thread's last error message ("" if none); valid
 * until its next call.
 */
const char *upcie_errmsg(void);

#ifdef __cplusplus
}
#endif

#endif /* UPCIE_LOG_H */
