/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging and per-thread error messages. Silent unless asked. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static upcie_log_fn log_fn;
static void *log_arg;
static int log_max = -1; /* -1: not yet decided (UPCIE_LOG is read lazily) */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static __thread char errbuf[512];

void upcie_log_set(upcie_log_fn fn, enum upcie_log_level max, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_fn = fn;
	log_arg = arg;
	log_max = fn ? (int)max : -1;
	pthread_mutex_unlock(&log_lock);
}

const char *upcie_errmsg(void)
{
	return errbuf;
}

static int env_level(void)
{
	const char *e = getenv("UPCIE_LOG");
	static const char *names[] = {"error", "warn", "info", "debug"};

	if (!e || !*e)
		return -2; /* off */
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(e, names[i]))
			return i;
	return UPCIE_LOG_INFO;
}

static void vlog(enum upcie_log_level level, const char *fmt, va_list ap)
{
	static const char *tags[] = {"error", "warn", "info", "debug"};
	char msg[512];
	upcie_log_fn fn;
	void *arg;
	int max;

	pthread_mutex_lock(&log_lock);
	if (log_max == -1 && !log_fn)
		log_max = env_level();
	fn = log_fn;
	arg = log_arg;
	max = log_max;
	pthread_mutex_unlock(&log_lock);

	if ((int)level > max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (fn)
		fn(level, msg, arg);
	else
		fprintf(stderr, "upcie %s: %s\n", tags[level], msg);
}

void upcie_log(enum upcie_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static void record(const char *fmt, va_list ap)
{
	char msg[sizeof(errbuf)];
	va_list ap2;

	/* Format into a local buffer first: an argument may be upcie_errmsg()
	 * itself (a message that wraps an earlier one). */
	va_copy(ap2, ap);
	vsnprintf(msg, sizeof(msg), fmt, ap2);
	va_end(ap2);
	memcpy(errbuf, msg, sizeof(errbuf));
	upcie_log(UPCIE_LOG_ERROR, "%s", msg);
}

int upcie_err(int err, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	record(fmt, ap);
	va_end(ap);
	errno = saved;
	return err;
}

void *upcie_err_null(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	record(fmt, ap);
	va_end(ap);
	errno = err < 0 ? -err : err;
	return NULL;
}

void upcie_errmsg_save(char *buf, size_t len)
{
	snprintf(buf, len, "%s", errbuf);
}

void upcie_errmsg_restore(const char *buf)
{
	snprintf(errbuf, sizeof(errbuf), "%s", buf);
}
