/* util.c - error messages and logging of the engine. */
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The detailed message of the last failure on this thread (kvs_errmsg),
 * and the errno it carried (0 if none): see kvs__errno(). */
static _Thread_local char errbuf[512];
static _Thread_local int errbuf_errno;

_Thread_local const struct kvs *kvs__writer_of;
_Thread_local struct kvs__held kvs__held;

int kvs__err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	errbuf_errno = 0;
	return code;
}

int kvs__err_errno(int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof errbuf)
		snprintf(errbuf + n, sizeof errbuf - (size_t)n, ": %s",
			 strerror(errnum));
	errbuf_errno = errnum;
	return code;
}

int kvs__errno(void)
{
	return errbuf_errno;
}

bool kvs__errno_transient(int errnum)
{
	switch (errnum) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
	case EMFILE:
	case ENFILE:
	case ENOMEM:
		return true;
	default:
		return false;
	}
}

/* The format attribute lets clang's -Wformat-nonliteral (in -Wformat=2, as
 * the fuzz build compiles the engine) see that fmt is checked at callers. */
__attribute__((format(printf, 3, 0)))
static void vlog(const struct kvs_options *opt, enum kvs_log_level lvl,
		 const char *fmt, va_list ap)
{
	if (!opt->log)
		return;
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	opt->log(opt->log_ctx, lvl, msg);
}

void kvs__log_to(const struct kvs_options *opt, enum kvs_log_level lvl,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(opt, lvl, fmt, ap);
	va_end(ap);
}

void kvs__log_every_to(const struct kvs_options *opt, _Atomic uint64_t *last_us,
		       enum kvs_log_level lvl, const char *fmt, ...)
{
	uint64_t now = kvs__now_us(), last = atomic_load(last_us);
	/* One caller a second wins the exchange; the others say nothing. */
	if ((last && now - last < 1000000) ||
	    !atomic_compare_exchange_strong(last_us, &last, now ? now : 1))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(opt, lvl, fmt, ap);
	va_end(ap);
}

uint64_t kvs__now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Parse a Redis-style integer: an optional '-', then digits without
 * leading zeros ("0" itself is fine), at most 20 bytes, within int64. */
bool kvs_parse_int64(const void *buf, size_t len, int64_t *out)
{
	const unsigned char *p = buf;
	bool neg = false;
	uint64_t v = 0;
	if (len == 0 || len > 20)
		return false;
	if (*p == '-') {
		neg = true;
		p++;
		len--;
		if (len == 0)
			return false;
	}
	if (p[0] == '0')
		return len == 1 && !neg ? (*out = 0, true) : false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		if (v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return false;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return false;
		*out = (int64_t)v;
	}
	return true;
}

const char *kvs_errmsg(void)
{
	return errbuf;
}

const char *kvs_strerror(int err)
{
	switch (err) {
	case KVS_OK: return "success";
	case KVS_ENOTFOUND: return "key not found";
	case KVS_EINVAL: return "invalid argument";
	case KVS_ETOOBIG: return "key or value too big";
	case KVS_EIO: return "I/O error";
	case KVS_ECORRUPT: return "corrupt data";
	case KVS_ELOCKED: return "store is locked by another handle or process";
	case KVS_ENOMEM: return "out of memory";
	case KVS_EFAILED: return "store failed after an earlier I/O error; "
				 "writes are refused";
	case KVS_EENGINE: return "directory belongs to another engine";
	case KVS_EEND: return "end of file";
	case KVS_EEXIST: return "key already exists";
	case KVS_ENOTINT: return "value is not an integer or out of range";
	case KVS_EOVERFLOW: return "increment or decrement would overflow";
	case KVS_ENOSPC: return "no space left on the device (or no file "
				"descriptor or memory for a new file); the "
				"write was refused";
	case KVS_ECANCELED: return "not applied: an earlier operation of the "
				   "batch aborted it";
	}
	return "unknown error";
}

void kvs_free(void *p)
{
	free(p);
}

int64_t kvs_now_ms(void)
{
	struct timespec ts;
	KVS_CHECK(clock_gettime(CLOCK_REALTIME, &ts));
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
