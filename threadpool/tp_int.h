/*
 * tp_int.h - what the files of threadpool/ share: the pool's common header
 * and operation table, and small helpers.  Nothing outside threadpool/
 * includes this header.
 *
 * Files, each calling only those below it: tp.c (the public entry points
 * and argument checks) -> tp_queue.c (TP_SHARED_QUEUE), tp_naive.c
 * (TP_NAIVE) -> tp_thread.c (starting, naming and running pool threads).
 */
#ifndef KVS_TP_INT_H
#define KVS_TP_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "check.h" /* KVS_CHECK, KVS_ASSERT, KVS_DIE */
#include "tp.h"


/* What differs between the kinds.  Arguments are already checked. */
struct tp__ops {
	int (*spawn)(struct tp_pool *p, void (*fn)(void *), void *arg);
	unsigned (*threads)(const struct tp_pool *p);
	/* Close, drain, join everything, free p. */
	void (*shutdown)(struct tp_pool *p);
};

/* Thread names are at most 15 bytes plus the NUL (a Linux limit). */
#define TP__NAME_MAX 16

/* The first member of each kind's pool struct.  Immutable after creation. */
struct tp_pool {
	const struct tp__ops *ops;
	char name[TP__NAME_MAX]; /* thread-name prefix, NUL-terminated */
};

/* Fill in the common header: ops, and name cut to the name limit. */
void tp__pool_init(struct tp_pool *p, const struct tp__ops *ops,
		   const char *name);

/* Each kind's constructor: n and name are already checked (name non-NULL,
 * non-empty).  Errors as tp_pool_new(). */
int tp__queue_new(unsigned n, const char *name, struct tp_pool **out);
int tp__naive_new(unsigned n, const char *name, struct tp_pool **out);

/* Start a joinable thread running fn(arg) with every signal blocked (the
 * caller's mask is left as it was).  Returns TP_OK or TP_EAGAIN. */
int tp__thread_start(pthread_t *tid, void *(*fn)(void *), void *arg);

/* Is the calling thread one of p's? */
bool tp__in_pool(const struct tp_pool *p);

/* Called first by every pool thread: names the thread "<prefix>-<idx>",
 * records that it belongs to p (for tp_pool_shutdown's self-check) and
 * disables cancellation, which tp__run_job enables only around the job. */
void tp__thread_init(const struct tp_pool *p, unsigned long idx);

/* Run fn(arg) with cancellation enabled.  Returns when fn returns.  If the
 * job ends the thread instead (pthread_exit, an acted-on cancel), this
 * function does not return: ended(ctx) runs on the way out (a pthread
 * cleanup handler), while the thread still exists. */
void tp__run_job(void (*fn)(void *), void *arg, void (*ended)(void *),
		 void *ctx);

#endif /* KVS_TP_INT_H */
