/*
 * check.h - the one abort path of engine/, net/ and threadpool/: for broken
 * invariants and calls that cannot fail on valid objects (pthread_mutex_lock
 * on an initialised mutex), never for anything a client or a file can cause.
 *
 *	KVS_CHECK(pthread_mutex_lock(&mu));   the call must return 0
 *	KVS_ASSERT(n <= cap);                 the condition must hold
 *	KVS_DIE("what broke", errnum);        unconditionally
 *
 * Both print file, line, the expression and (for KVS_CHECK) the error text
 * to stderr, then abort().  They are always compiled in: each costs a
 * compare on a path that already makes a call.  Header only, so that each
 * library that includes it stays free of the others.
 */
#ifndef KVS_COMMON_CHECK_H
#define KVS_COMMON_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noreturn, cold, unused)) static void
kvs_check_die_(const char *file, int line, const char *what, int err)
{
	if (err != 0)
		fprintf(stderr, "kvs: fatal: %s:%d: %s: %s\n", file, line,
			what, strerror(err));
	else
		fprintf(stderr, "kvs: fatal: %s:%d: %s\n", file, line, what);
	abort();
}

#define KVS_CHECK(expr)                                                       \
	do {                                                                  \
		int kvs_check_rc_ = (expr);                                   \
		if (__builtin_expect(kvs_check_rc_ != 0, 0))                  \
			kvs_check_die_(__FILE__, __LINE__, #expr,             \
				       kvs_check_rc_);                        \
	} while (0)

#define KVS_ASSERT(cond)                                                      \
	do {                                                                  \
		if (__builtin_expect(!(cond), 0))                             \
			kvs_check_die_(__FILE__, __LINE__,                    \
				       "assertion failed: " #cond, 0);        \
	} while (0)

/* Abort with a message of the caller's (err: an errno value, or 0). */
#define KVS_DIE(what, err) kvs_check_die_(__FILE__, __LINE__, (what), (err))

#endif /* KVS_COMMON_CHECK_H */
