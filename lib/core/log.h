/* SPDX-License-Identifier: BSD-3-Clause */
/* Internal logging: upcie_err() records the per-thread message and logs it. */
#ifndef UPCIE_LIB_LOG_PRIV_H
#define UPCIE_LIB_LOG_PRIV_H

#include <stddef.h>

#include <upcie/log.h>

void upcie_log(enum upcie_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), visibility("hidden")));
/* Record 'fmt' as the thread's error message, log it, return err (a negative errno). */
int upcie_err(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), visibility("hidden")));
/* Same, for functions returning a pointer: sets errno = -err, returns NULL. */
void *upcie_err_null(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), visibility("hidden")));

/* Keep the first failure's message across clean-up that may fail too. */
void upcie_errmsg_save(char *buf, size_t len) __attribute__((visibility("hidden")));
void upcie_errmsg_restore(const char *buf) __attribute__((visibility("hidden")));

#define upcie_warn(...)	 upcie_log(UPCIE_LOG_WARN, __VA_ARGS__)
#define upcie_info(...)	 upcie_log(UPCIE_LOG_INFO, __VA_ARGS__)
#define upcie_debug(...) upcie_log(UPCIE_LOG_DEBUG, __VA_ARGS__)

#endif
