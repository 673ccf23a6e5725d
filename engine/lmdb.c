/* lmdb.c - the LMDB engine: the same API over Debian's liblmdb, the
 * yardstick the log engine is measured against (as sled was in talent-plan).
 *
 * Where it differs from the log engine (docs/ENGINES.md):
 *   - keys are limited to LMDB's 511 bytes (KVS_ETOOBIG beyond);
 *   - every kvs_write_batch() is one LMDB write transaction; concurrent
 *     writers queue on LMDB's writer lock, and under KVS_FSYNC_ALWAYS each
 *     transaction syncs on its own (no group commit);
 *   - everysec is MDB_NOSYNC plus a thread calling mdb_env_sync() each
 *     second; never is MDB_NOSYNC alone.  Writes go through write(), so an
 *     acknowledged write survives SIGKILL in every policy;
 *   - kvs_compact() has nothing to do (LMDB reuses freed pages);
 *   - kvs_submit() runs requests, in order, on one worker thread;
 *   - expiry times live in a second database, and a third orders them
 *     by time for the expirer thread (lmdb_int.h has the layout, and
 *     lmdb_layout.c why a store of the older layout, its data in the
 *     main database, is migrated at open).
 *
 * This file: open and close, the submit worker, the everysec sync thread,
 * the stats and the vtable; the rest is in lmdb_*.c (lmdb_int.h). */
#include "lmdb_int.h"
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAP_SIZE (256ull << 30) /* address space only: the file grows */
#define MAX_READERS 4096
#define MAX_DBS 4               /* kvs.data, kvs.expires, kvs.due, spare */

struct kvs__lreq {
	struct kvs__lreq *next;
	struct kvs_op *ops;
	size_t n;
	unsigned flags;
	void (*done)(void *ctx, int result);
	void *ctx;
};

/* ---- the submit worker and the everysec sync thread ----------------------- */

static void *worker_main(void *arg)
{
	struct kvs__lmdb *lm = arg;
	kvs__lock(&lm->mu);
	for (;;) {
		while (!lm->head && !lm->stop)
			KVS_CHECK(pthread_cond_wait(&lm->cv, &lm->mu));
		if (!lm->head)
			break; /* stopping, and the queue is drained */
		struct kvs__lreq *r = lm->head;
		lm->head = r->next;
		if (!lm->head)
			lm->tail = NULL;
		kvs__unlock(&lm->mu);
		int rc = kvs__lm_write((struct kvs *)lm, r->ops, r->n,
				       r->flags);
		r->done(r->ctx, rc);
		free(r);
		kvs__lock(&lm->mu);
	}
	kvs__unlock(&lm->mu);
	return NULL;
}

static void *syncer_main(void *arg)
{
	struct kvs__lmdb *lm = arg;
	struct timespec next;
	clock_gettime(CLOCK_MONOTONIC, &next);
	kvs__lock(&lm->mu);
	while (!lm->stop) {
		next.tv_sec += 1;
		int rc = 0;
		while (!lm->stop && rc == 0)
			rc = pthread_cond_timedwait(&lm->cv, &lm->mu, &next);
		if (lm->stop)
			break;
		if (kvs__fsync_policy(lm) != KVS_FSYNC_EVERYSEC)
			continue;
		kvs__unlock(&lm->mu);
		int e = mdb_env_sync(lm->env, 1);
		if (e) {
			int expected = 0;
			if (atomic_compare_exchange_strong(&lm->failed, &expected,
							   e) && lm->opt.log) {
				char msg[256];
				snprintf(msg, sizeof msg, "lmdb: background sync: "
					 "%s; the store refuses writes from now "
					 "on", mdb_strerror(e));
				lm->opt.log(lm->opt.log_ctx, KVS_LOG_ERROR, msg);
			}
		} else {
			atomic_fetch_add(&lm->syncs, 1);
		}
		kvs__lock(&lm->mu);
	}
	kvs__unlock(&lm->mu);
	return NULL;
}

/* Queue first..last (linked by next) and wake the submit worker once. */
static void lm_enqueue(struct kvs__lmdb *lm, struct kvs__lreq *first,
		       struct kvs__lreq *last)
{
	kvs__lock(&lm->mu);
	if (lm->tail)
		lm->tail->next = first;
	else
		lm->head = first;
	lm->tail = last;
	KVS_CHECK(pthread_cond_broadcast(&lm->cv));
	kvs__unlock(&lm->mu);
}

static struct kvs__lreq *lm_req(struct kvs_op *ops, size_t n, unsigned flags,
				void (*done)(void *ctx, int result), void *ctx)
{
	struct kvs__lreq *r = calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->ops = ops;
	r->n = n;
	r->flags = flags;
	r->done = done;
	r->ctx = ctx;
	return r;
}

static int lm_submit(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags, void (*done)(void *ctx, int result),
		     void *ctx)
{
	struct kvs__lreq *r = lm_req(ops, n, flags, done, ctx);
	if (!r)
		return kvs__err(KVS_ENOMEM, "out of memory");
	lm_enqueue((struct kvs__lmdb *)db, r, r);
	return KVS_OK;
}

static void lm_submit_all(struct kvs *db, const struct kvs_submission *subs,
			  size_t n)
{
	struct kvs__lreq *first = NULL, *last = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct kvs_submission *x = &subs[i];
		struct kvs__lreq *r = lm_req(x->ops, x->n, x->flags, x->done,
					     x->ctx);
		if (!r) {
			x->done(x->ctx, kvs__err(KVS_ENOMEM, "out of memory"));
			continue;
		}
		if (last)
			last->next = r;
		else
			first = r;
		last = r;
	}
	if (first)
		lm_enqueue((struct kvs__lmdb *)db, first, last);
}

/* ---- reading, stats, open and close --------------------------------------- */

static int lm_compact(struct kvs *db)
{
	(void)db; /* LMDB reuses freed pages: nothing to reclaim */
	return KVS_OK;
}

/* From one read transaction: keys whose time has come but that the expirer
 * has not removed yet are subtracted (the due index lists them). */
static int lm_stats(struct kvs *db, struct kvs_store_stats *st)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	MDB_stat ds, es;
	MDB_envinfo info;
	MDB_txn *txn;
	uint64_t due = 0, due_sum = 0;
	int rc;
	memset(st, 0, sizeof *st);
	if ((rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn)) != 0)
		return kvs__lm_err(rc, "begin read");
	int64_t now = kvs__lm_now();
	uint64_t sum = atomic_load(&lm->ttl_sum);
	if ((rc = mdb_stat(txn, lm->data, &ds)) ||
	    (rc = mdb_stat(txn, lm->expires, &es))) {
		mdb_txn_abort(txn);
		return kvs__lm_err(rc, "stat");
	}
	rc = kvs__lm_backlog(lm, txn, now, &due, &due_sum);
	mdb_txn_abort(txn);
	if (rc)
		return rc;
	if ((rc = mdb_env_info(lm->env, &info)) != 0)
		return kvs__lm_err(rc, "stat");
	st->live_keys = ds.ms_entries > due ? ds.ms_entries - due : 0;
	st->volatile_keys = es.ms_entries > due ? es.ms_entries - due : 0;
	if (st->volatile_keys) {
		/* ttl_sum is read outside the transaction: a write between
		 * the two makes the mean briefly off, never negative. */
		uint64_t mean = (sum - due_sum) / st->volatile_keys;
		uint64_t past = (uint64_t)(now - lm->ttl_base);
		st->avg_ttl_ms = mean > past && mean - past < (1ull << 40)
					 ? mean - past : 0;
	}
	st->expired_keys = atomic_load(&lm->expired_keys);
	st->disk_bytes = (uint64_t)(info.me_last_pgno + 1) * ds.ms_psize;
	st->live_bytes = st->disk_bytes;
	st->segments = 1;
	st->writes = atomic_load(&lm->writes);
	st->batches = atomic_load(&lm->batches);
	st->syncs = atomic_load(&lm->syncs);
	st->bytes_written = atomic_load(&lm->bytes_written);
	st->failed = atomic_load(&lm->failed);
	st->write_error = atomic_load(&lm->write_error);
	return KVS_OK;
}

static void stop_threads(struct kvs__lmdb *lm)
{
	kvs__lock(&lm->mu);
	lm->stop = true;
	KVS_CHECK(pthread_cond_broadcast(&lm->cv));
	kvs__unlock(&lm->mu);
	if (lm->worker_started)
		KVS_CHECK(pthread_join(lm->worker, NULL));
	if (lm->syncer_started)
		KVS_CHECK(pthread_join(lm->syncer, NULL));
	if (lm->expirer_started)
		KVS_CHECK(pthread_join(lm->expirer, NULL));
	lm->worker_started = lm->syncer_started = false;
	lm->expirer_started = false;
}

static void lm_free(struct kvs__lmdb *lm)
{
	if (lm->env)
		mdb_env_close(lm->env);
	pthread_mutex_destroy(&lm->mu);
	pthread_mutex_destroy(&lm->wmu);
	pthread_cond_destroy(&lm->cv);
	free(lm->versions);
	free(lm);
}

static int lm_close(struct kvs *db)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	stop_threads(lm);
	int rc = KVS_OK, e = mdb_env_sync(lm->env, 1);
	if (e)
		rc = kvs__lm_err(e, "sync");
	else if (atomic_load(&lm->failed))
		rc = kvs__err_errno(KVS_EIO, atomic_load(&lm->failed),
				    "the store failed earlier");
	lm_free(lm);
	return rc;
}

/* ttl_sum over the expiry times the store holds (a sequential read of
 * kvs.expires: nothing to do in a store without expiry). */
static int load_ttl_sum(struct kvs__lmdb *lm)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t sum = 0;
	int rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return kvs__lm_err(rc, "begin read");
	if ((rc = mdb_cursor_open(txn, lm->expires, &cur)) != 0) {
		mdb_txn_abort(txn);
		return kvs__lm_err(rc, "cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if (v.mv_size == 8)
			sum += kvs__lm_ttl_part(lm, kvs__lm_get_be64(&v));
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return kvs__lm_err(rc, "read expiry times");
	atomic_store(&lm->ttl_sum, sum);
	return KVS_OK;
}

static int lm_open(const char *dir, const struct kvs_options *opt,
		   struct kvs **out)
{
	struct kvs__lmdb *lm = calloc(1, sizeof *lm);
	pthread_condattr_t ca;
	int rc;
	if (!lm)
		return kvs__err(KVS_ENOMEM, "out of memory");
	lm->h.lock_fd = -1;
	lm->opt = *opt;
	lm->ttl_base = kvs__lm_now();
	/* Version slots need spread, not secrecy: any key will do. */
	uint64_t seed = (uint64_t)lm->ttl_base ^ (uintptr_t)lm;
	memcpy(lm->hkey, &seed, sizeof seed);
	KVS_CHECK(pthread_mutex_init(&lm->mu, NULL));
	KVS_CHECK(pthread_mutex_init(&lm->wmu, NULL));
	KVS_CHECK(pthread_condattr_init(&ca));
	KVS_CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
	KVS_CHECK(pthread_cond_init(&lm->cv, &ca));
	pthread_condattr_destroy(&ca);

	lm->versions = calloc(KVS__VERSION_SLOTS, sizeof *lm->versions);
	if (!lm->versions) {
		rc = kvs__err(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	unsigned flags = MDB_NOTLS;
	if (opt->fsync != KVS_FSYNC_ALWAYS)
		flags |= MDB_NOSYNC;
	lm->fsync_applied = opt->fsync;
	if ((rc = mdb_env_create(&lm->env)) ||
	    (rc = mdb_env_set_mapsize(lm->env, MAP_SIZE)) ||
	    (rc = mdb_env_set_maxreaders(lm->env, MAX_READERS)) ||
	    (rc = mdb_env_set_maxdbs(lm->env, MAX_DBS)) ||
	    (rc = mdb_env_open(lm->env, dir, flags, 0644))) {
		rc = kvs__lm_err(rc, dir);
		goto fail;
	}
	if (mdb_env_get_maxkeysize(lm->env) < KVS__LM_MAX_KEY) {
		rc = kvs__err(KVS_EINVAL, "lmdb: this liblmdb allows keys of "
			      "only %d bytes", mdb_env_get_maxkeysize(lm->env));
		goto fail;
	}
	if ((rc = kvs__lm_layout(lm)) != KVS_OK || (rc = load_ttl_sum(lm)))
		goto fail;
	if ((rc = pthread_create(&lm->worker, NULL, worker_main, lm)) != 0) {
		rc = kvs__err_errno(KVS_ENOMEM, rc, "cannot start a thread");
		goto fail;
	}
	lm->worker_started = true;
	/* Under every policy: kvs_set_fsync() may make it everysec. */
	if ((rc = pthread_create(&lm->syncer, NULL, syncer_main, lm))) {
		rc = kvs__err_errno(KVS_ENOMEM, rc, "cannot start a thread");
		goto fail;
	}
	lm->syncer_started = true;
	if ((rc = pthread_create(&lm->expirer, NULL, kvs__lm_expirer_main,
				 lm))) {
		rc = kvs__err_errno(KVS_ENOMEM, rc, "cannot start a thread");
		goto fail;
	}
	lm->expirer_started = true;
	*out = (struct kvs *)lm;
	return KVS_OK;
fail:
	stop_threads(lm);
	lm_free(lm);
	return rc;
}

const struct kvs__vtable kvs__lmdb_engine = {
	.name = "lmdb",
	.max_key = KVS__LM_MAX_KEY,
	.open = lm_open,
	.close = lm_close,
	.get = kvs__lm_get,
	.write = kvs__lm_write,
	.submit = lm_submit,
	.submit_all = lm_submit_all,
	.lookup = kvs__lm_lookup,
	.key_version = kvs__lm_key_version,
	.read_gen = kvs__lm_read_gen,
	.compact = lm_compact,
	.stats = lm_stats,
	.stats_cached = lm_stats, /* a read transaction: never waits */
	.scan = kvs__lm_scan,
	.snapshot = kvs__lm_snapshot,
};
