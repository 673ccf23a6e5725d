/*
 * lmdb_int.h - what the files of the LMDB engine share: its handle, the
 * state of one write transaction, and the record helpers (lmdb_rec.c) that
 * keep a key's value, its expiry time and the due index in step.
 *
 * Files, bottom-up (no file calls one above it):
 *   lmdb_rec.c     records of one key inside a transaction, commit, versions
 *   lmdb_expire.c  the due index: backlog counts, the expirer's turns
 *   lmdb_layout.c  the named databases at open, migration of old stores
 *   lmdb_read.c    kvs_get, kvs_lookup, kvs_scan, kvs_key_version
 *   lmdb_write.c   the ops of a batch in one write transaction
 *   lmdb.c         open, close, the threads, stats, the vtable
 *
 * The layout on disk (docs/ENGINES.md, "lmdb"): three named databases in
 * the environment, the main database holding only their names.
 *   kvs.data     user key -> value, as given
 *   kvs.expires  user key -> expiry time, 8 bytes big-endian (ms since the
 *                Unix epoch); only keys that have one
 *   kvs.due      expiry time (8 bytes big-endian) -> user keys (MDB_DUPSORT),
 *                the same pairs as kvs.expires ordered by time, so that the
 *                expirer finds due keys without looking at any other
 * A user key lives only in kvs.data and kvs.expires, so no internal record
 * can be seen or overwritten through the API.
 */
#ifndef KVS_LMDB_INT_H
#define KVS_LMDB_INT_H

#include <lmdb.h>

#include "engine_int.h"

#define KVS__LM_MAX_KEY 511
#define KVS__LM_DB_DATA "kvs.data"
#define KVS__LM_DB_EXPIRES "kvs.expires"
#define KVS__LM_DB_DUE "kvs.due"

struct kvs__lreq; /* a kvs_submit() request (lmdb.c) */

struct kvs__lmdb {
	struct kvs__handle h;     /* first: see api.c */
	/* Immutable after open. */
	MDB_env *env;
	MDB_dbi data, expires, due;
	struct kvs_options opt;
	uint8_t hkey[16];         /* siphash key of the version slots */
	int64_t ttl_base;         /* kvs_now_ms() at open: see ttl_part() */
	/* kvs_key_version(): a key's number is the larger of its slot (its
	 * hash modulo KVS__VERSION_SLOTS) and flush_version.  Both take
	 * values of vclock, only under wmu. */
	_Atomic uint64_t *versions;
	_Atomic uint64_t vclock, flush_version;
	/* kvs_read_begin(): counts the commits of several keys (or a flush),
	 * bumped after each. */
	_Atomic uint64_t multi_commits;

	/* Every write transaction of the handle (client batches, the
	 * expirer) runs under wmu, from its begin to after the version bumps
	 * that follow its commit.  LMDB serialises its writers anyway; wmu
	 * makes the post-commit bookkeeping part of the same turn.  Taken
	 * before LMDB's own writer lock, never while holding mu. */
	pthread_mutex_t wmu;
	/* Sum of ttl_part() over every entry of kvs.expires (modulo 2^64;
	 * the true sum fits): written under wmu, read by the stats. */
	_Atomic uint64_t ttl_sum;

	/* mu guards the submit queue and stop, and wakes the threads. */
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* CLOCK_MONOTONIC */
	struct kvs__lreq *head, *tail;
	bool stop;
	pthread_t worker, syncer, expirer;
	bool worker_started, syncer_started, expirer_started;
	/* The policy LMDB's MDB_NOSYNC was last set for: read and changed
	 * only holding wmu (kvs__lm_tx_begin), before a write transaction. */
	enum kvs_fsync fsync_applied;

	atomic_int failed;        /* errno of a failed commit or sync */
	atomic_int write_error;   /* errno of the last commit refused for a
				     full disk or map (0 after a success) */
	_Atomic uint64_t writes, batches, syncs, bytes_written, expired_keys;
};

/* One write transaction and what it changes besides the database, applied
 * by kvs__lm_tx_finish() once the commit succeeded. */
#define KVS__LM_TX_INLINE 16
struct kvs__lm_tx {
	bool synced;    /* its commit syncs (the policy was always) */
	struct kvs__lmdb *lm;
	MDB_txn *txn;
	int64_t now;              /* the clock of the whole transaction */
	uint64_t ttl_add, ttl_sub; /* into ttl_sum */
	uint64_t expired;         /* expired keys removed */
	uint64_t bytes;           /* keys and values put */
	bool flushed;             /* ttl_sum restarts from 0 */
	/* Hashes of the keys whose version was bumped: bumped again after
	 * the commit.  bump_all: the list could not grow, so every key is
	 * bumped (a false alarm for all, never a miss). */
	uint64_t *bumped, inline_bumped[KVS__LM_TX_INLINE];
	size_t nbumped, cap;
	bool bump_all;
};

/* A key's records as a transaction sees them (kvs__lm_state). */
struct kvs__lm_key {
	bool present;  /* kvs.data holds it (maybe expired) */
	bool live;     /* present and not expired */
	MDB_val val;   /* when present: valid until the next write */
	int64_t exp;   /* its expiry time, 0 = none (even when expired) */
};

/* ---- lmdb_rec.c ---------------------------------------------------------- */

/* An LMDB error as a kvs error code (with the message). */
int kvs__lm_err(int rc, const char *what);
/* mdb_txn_commit behind the test seam (kvs_testhook.h); frees txn on
 * failure too, as the real call does. */
int kvs__lm_commit_raw(MDB_txn *txn);
/* 8 bytes big-endian <-> int64. */
void kvs__lm_be64(uint8_t out[8], int64_t v);
int64_t kvs__lm_get_be64(const MDB_val *v);
/* A key's contribution to ttl_sum. */
uint64_t kvs__lm_ttl_part(const struct kvs__lmdb *lm, int64_t exp);
/* Wall clock in ms (kvs_now_ms's, without a call into api.c). */
int64_t kvs__lm_now(void);

/* Read key's records in txn as of `now`.  KVS_OK (k filled) or an error. */
int kvs__lm_state(struct kvs__lmdb *lm, MDB_txn *txn, const void *key,
		  size_t klen, int64_t now, struct kvs__lm_key *k);

/* Start a write transaction: takes wmu.  Errors: those of mdb_txn_begin
 * (wmu released). */
int kvs__lm_tx_begin(struct kvs__lmdb *lm, struct kvs__lm_tx *tx);
/* Commit (refused for a full disk/map: KVS_ENOSPC, write_error set; any
 * other failure fails the handle), apply tx's bookkeeping on success, and
 * release wmu.  Abort instead when rc is not KVS_OK (then returns rc). */
int kvs__lm_tx_end(struct kvs__lm_tx *tx, int rc);
/* Bump key's version (now, and again after the commit). */
void kvs__lm_bump(struct kvs__lm_tx *tx, const void *key, size_t klen);
/* Bump every key's version (a flush). */
void kvs__lm_bump_all(struct kvs__lm_tx *tx);
/* kvs_key_version(). */
uint64_t kvs__lm_version(struct kvs__lmdb *lm, const void *key, size_t klen);

/* Write key's value, and make its expiry `exp` where it was `old_exp`
 * (0 = none): updates kvs.expires, kvs.due and ttl_sum. */
int kvs__lm_put(struct kvs__lm_tx *tx, const void *key, size_t klen,
		const void *val, size_t vlen, int64_t old_exp, int64_t exp);
/* Change only the expiry records of key from old_exp to exp. */
int kvs__lm_set_exp(struct kvs__lm_tx *tx, const void *key, size_t klen,
		    int64_t old_exp, int64_t exp);
/* Remove key (present, with expiry old_exp) and its expiry records. */
int kvs__lm_del(struct kvs__lm_tx *tx, const void *key, size_t klen,
		int64_t old_exp);

/* ---- lmdb_expire.c ------------------------------------------------------- */

/* Keys of kvs.due whose time is not after now (expired, not yet removed):
 * their number and the sum of their ttl_part(). */
int kvs__lm_backlog(struct kvs__lmdb *lm, MDB_txn *txn, int64_t now,
		    uint64_t *count, uint64_t *ttl_sum);
/* One turn of the expirer: remove up to `max` due keys in one write
 * transaction (none begun when nothing is due).  *removed: how many. */
int kvs__lm_expire_turn(struct kvs__lmdb *lm, size_t max, size_t *removed);
/* The expirer thread: a turn every 100 ms (sooner while keys are due). */
void *kvs__lm_expirer_main(void *arg);

/* ---- lmdb_layout.c ------------------------------------------------------- */

/* Open (creating or migrating) the named databases into lm->data,
 * lm->expires, lm->due.  Errors: KVS_EIO, KVS_ENOSPC, KVS_ENOMEM. */
int kvs__lm_layout(struct kvs__lmdb *lm);

/* ---- lmdb_read.c --------------------------------------------------------- */

int kvs__lm_lookup(struct kvs *db, const void *key, size_t klen, void **val,
		   size_t *vlen, int64_t *expire_ms);
int kvs__lm_get(struct kvs *db, const void *key, size_t klen, void **val,
		size_t *vlen);
uint64_t kvs__lm_key_version(struct kvs *db, const void *key, size_t klen);
uint64_t kvs__lm_read_gen(struct kvs *db);
int kvs__lm_scan(struct kvs *db, uint64_t cursor, size_t count,
		 int (*cb)(void *ctx, const void *key, size_t klen),
		 void *ctx, uint64_t *next_cursor);

/* ---- lmdb_write.c -------------------------------------------------------- */

/* The vtable's write: every batch is one transaction (atomic). */
int kvs__lm_write(struct kvs *db, struct kvs_op *ops, size_t n,
		  unsigned flags);

#endif /* KVS_LMDB_INT_H */
