/*
 * util.h - the bottom of engine/: error messages, logging, clocks,
 * checksums, RCU read-side sections and the thread-context assertions.
 * Every other engine header builds on it.
 */
#ifndef KVS_ENGINE_UTIL_H
#define KVS_ENGINE_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/urcu-memb.h>

#include "check.h" /* KVS_CHECK, KVS_ASSERT, KVS_DIE */
#include "kvs.h"

/* ---- small helpers (util.c) ------------------------------------------ */

/* Record a detailed error message for kvs_errmsg(); returns `code`. */
int kvs__err(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errnum)". */
int kvs__err_errno(int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The errno the last kvs__err_errno() of this thread carried (0 after a
 * kvs__err()): lets a caller tell a transient failure from a hard one. */
int kvs__errno(void);
/* Is errnum a shortage that goes away by itself (ENOSPC, EDQUOT, EFBIG,
 * EMFILE, ENFILE, ENOMEM)?  A write that failed with one of these before
 * anything of it was acknowledged is refused, undone and tried again later
 * (KVS_ENOSPC), never made sticky. */
bool kvs__errno_transient(int errnum);
/* Send a message to the store's log hook (opt->log), if any.  Called as
 * kvs__log(db, ...) with the log engine's handle. */
void kvs__log_to(const struct kvs_options *opt, enum kvs_log_level lvl,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define kvs__log(db, ...) kvs__log_to(&(db)->opt, __VA_ARGS__)
/* The same, at most once a second per *last_us (any thread): for failures
 * that may repeat at every write or tick while a resource is short. */
void kvs__log_every_to(const struct kvs_options *opt, _Atomic uint64_t *last_us,
		       enum kvs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define kvs__log_every(db, ...) kvs__log_every_to(&(db)->opt, __VA_ARGS__)
uint64_t kvs__now_us(void);

/* ---- RCU read-side sections -------------------------------------------- */
/*
 * ThreadSanitizer cannot see liburcu's grace periods (membarrier and futexes
 * in an uninstrumented library), so it would take every free of an entry in
 * a call_rcu callback for a race with the readers that used the entry.  The
 * annotations below state the grace-period guarantee to it: each read-side
 * section ends with a release on one sync object, and each callback starts
 * with an acquire on it, so the free happens after every section that ended
 * before it; an access after a section's end is still reported.  Outside
 * TSan builds they compile to nothing.
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char kvs__rcu_hb;
#define KVS__TSAN_RELEASE() __tsan_release(&kvs__rcu_hb)
#define KVS__TSAN_ACQUIRE() __tsan_acquire(&kvs__rcu_hb)
#else
#define KVS__TSAN_RELEASE() ((void)0)
#define KVS__TSAN_ACQUIRE() ((void)0)
#endif

static inline void kvs__read_lock(void)
{
	urcu_memb_read_lock();
}

static inline void kvs__read_unlock(void)
{
	KVS__TSAN_RELEASE();
	urcu_memb_read_unlock();
}

/* call_rcu with the annotation; cb must begin with KVS__TSAN_ACQUIRE(). */
static inline void kvs__call_rcu(struct rcu_head *head,
				 void (*cb)(struct rcu_head *))
{
	KVS__TSAN_RELEASE();
	urcu_memb_call_rcu(head, cb);
}

/* ---- thread-context assertions (util.c) -------------------------------- */
/*
 * What the comments of this header state about threads ("writer only",
 * "under rcu_read_lock", "with sync.mu held") is checked where it is cheap,
 * in every build: a thread-local compare each, on paths that already take a
 * lock or make a call.
 *
 * The writer of a store is the thread holding its writer role (q.role:
 * the writer thread while awake, or a caller running its own round,
 * kvs__write_inline), and the thread inside kvs_open (recovery) or
 * kvs_close (after the writer is joined) before and after: kvs__become_writer(db) marks it and returns the mark
 * it replaced, which the opener and the closer put back (a callback on
 * another store's writer may open or close this one).  Mutexes of the engine are taken with kvs__lock/kvs__unlock, which
 * keep a short per-thread list of the mutexes held, so that
 * KVS__ASSERT_HELD can tell "held by this thread" from "held by someone".
 */
extern _Thread_local const struct kvs *kvs__writer_of;
static inline const struct kvs *kvs__become_writer(const struct kvs *db)
{
	const struct kvs *prev = kvs__writer_of;
	kvs__writer_of = db;
	return prev;
}
#define KVS__ASSERT_WRITER(db) KVS_ASSERT(kvs__writer_of == (db))
#define KVS__ASSERT_IN_RCU() KVS_ASSERT(urcu_memb_read_ongoing())
#define KVS__ASSERT_NOT_IN_RCU() KVS_ASSERT(!urcu_memb_read_ongoing())

#define KVS__HELD_MAX 4 /* no engine code nests more mutexes than this
			  (the writer's role, then one or two leaf locks) */
struct kvs__held {
	pthread_mutex_t *mu[KVS__HELD_MAX];
	unsigned n;
};
extern _Thread_local struct kvs__held kvs__held;
static inline bool kvs__holds(const pthread_mutex_t *mu)
{
	for (unsigned i = 0; i < kvs__held.n; i++)
		if (kvs__held.mu[i] == mu)
			return true;
	return false;
}
static inline void kvs__lock(pthread_mutex_t *mu)
{
	KVS_ASSERT(kvs__held.n < KVS__HELD_MAX && !kvs__holds(mu));
	KVS_CHECK(pthread_mutex_lock(mu));
	kvs__held.mu[kvs__held.n++] = mu;
}
/* kvs__lock() if mu is free now: true if taken. */
static inline bool kvs__trylock(pthread_mutex_t *mu)
{
	KVS_ASSERT(kvs__held.n < KVS__HELD_MAX && !kvs__holds(mu));
	int e = pthread_mutex_trylock(mu);
	if (e == EBUSY)
		return false;
	KVS_CHECK(e);
	kvs__held.mu[kvs__held.n++] = mu;
	return true;
}
static inline void kvs__unlock(pthread_mutex_t *mu)
{
	unsigned i = 0;
	while (i < kvs__held.n && kvs__held.mu[i] != mu)
		i++;
	KVS_ASSERT(i < kvs__held.n);
	kvs__held.mu[i] = kvs__held.mu[--kvs__held.n];
	KVS_CHECK(pthread_mutex_unlock(mu));
}
#define KVS__ASSERT_HELD(mu) KVS_ASSERT(kvs__holds(mu))
#define KVS__ASSERT_NOT_HELD(mu) KVS_ASSERT(!kvs__holds(mu))

/* ---- checksums and hashing (crc32c.c, siphash.c) ---------------------- */
uint32_t kvs__crc32c(uint32_t crc, const void *buf, size_t len);
uint64_t kvs__siphash(const uint8_t k[16], const void *buf, size_t len);

#endif /* KVS_ENGINE_UTIL_H */
