/*
 * expire.h - active expiry (expire.c): the writer's queue of keys that carry
 * an expiry time, ordered by that time, and the counts behind the stats'
 * volatile_keys, avg_ttl_ms and expired_keys.  Writer thread only (and, during
 * recovery, the opener or its helper thread: replay.c).
 */
#ifndef KVS_ENGINE_EXPIRE_H
#define KVS_ENGINE_EXPIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs.h"

struct kvs;
struct kvs__req;
struct kvs__entry;

/* One queued expiry: the key is known by its index hash only (16 bytes an
 * item instead of a copy of the key); popping it looks up the hash's entries
 * and removes those that are due.  An item left by a key that was written
 * again, removed or given another time is stale and skipped when popped. */
struct kvs__xitem {
	int64_t at;     /* unix ms */
	uint64_t hash;
};

struct kvs__expiry {
	struct kvs__xitem *heap; /* binary min-heap on `at` */
	size_t n, cap;
	bool lost;               /* an item could not be queued (no memory,
				    or a refused reap round): rebuild the
				    heap from the index */
	int64_t retry_ms;        /* no rebuild before (after a refused reap) */
	uint64_t volatile_keys;  /* index entries with an expiry time */
	unsigned __int128 sum;   /* the sum of their times, for avg_ttl_ms */
	uint64_t expired;        /* keys removed by reaping since open */
	/* The reap request in flight (at most one): its ops remove the due
	 * keys, copied into keys[]. */
	struct kvs_op *ops;
	size_t nops, ops_cap;
	unsigned char *keys;
	size_t keys_len, keys_cap;
	struct kvs__req *req;
	bool busy;
};

/* An entry with expiry time `at` was published (recovery or a round). */
void kvs__expire_add(struct kvs__expiry *x, uint64_t hash, int64_t at);
/* An entry with expiry time `at` left the index (replaced or removed). */
void kvs__expire_del(struct kvs__expiry *x, int64_t at);
/* Is op one of the reaping request's removes?  (A reap writes a REMOVE of
 * a key that has expired, which a client's REMOVE would not see, and does
 * not change the key's version.) */
static inline bool kvs__expire_is_reap(const struct kvs__expiry *x,
				       const struct kvs_op *op)
{
	return x->nops && op >= x->ops && op < x->ops + x->nops;
}
/* Is there reaping to do: true with *delay_us 0 if some key is due now,
 * else the wait until the earliest one (capped); false if no key has an
 * expiry time. */
bool kvs__expire_pending(struct kvs *db, uint64_t *delay_us);
/* A request that removes up to a bounded number of due keys (REMOVE ops
 * marked as reaps), to run first in the writer's next round; NULL if none
 * is due (or one is in flight).  Its done callback belongs to expire.c. */
struct kvs__req *kvs__expire_collect(struct kvs *db);
/* Every key was removed at once (a flush): forget the queue and counts
 * (expired_keys stays). */
void kvs__expire_clear(struct kvs__expiry *x);
/* Fill st's volatile_keys, avg_ttl_ms and expired_keys. */
void kvs__expire_stats(const struct kvs__expiry *x,
		       struct kvs_store_stats *st);
void kvs__expire_free(struct kvs__expiry *x);

#endif /* KVS_ENGINE_EXPIRE_H */
