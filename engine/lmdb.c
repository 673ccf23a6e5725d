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
 *   - kvs_submit() runs requests, in order, on one worker thread. */
#include "engine_int.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAP_SIZE (256ull << 30) /* address space only: the file grows */
#define MAX_READERS 4096
#define LMDB_MAX_KEY 511

struct lreq {
	struct lreq *next;
	struct kvs_op *ops;
	size_t n;
	void (*done)(void *ctx, int result);
	void *ctx;
};

struct kvs__lmdb {
	struct kvs__handle h;     /* first: see api.c */
	/* Immutable after open. */
	MDB_env *env;
	MDB_dbi dbi;
	struct kvs_options opt;

	/* mu guards the submit queue, stop, and wakes both threads. */
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* CLOCK_MONOTONIC */
	struct lreq *head, *tail;
	bool stop;
	pthread_t worker, syncer;
	bool worker_started, syncer_started;
	/* The policy LMDB's MDB_NOSYNC was last set for: read and changed
	 * only inside a write transaction (LMDB's writer lock). */
	enum kvs_fsync fsync_applied;

	atomic_int failed;        /* errno of a failed commit or sync */
	atomic_int write_error;   /* errno of the last commit refused for a
				     full disk or map (0 after a success) */
	_Atomic uint64_t writes, batches, syncs, bytes_written;
};

static int mdb_err(int rc, const char *what)
{
	return kvs__err(rc == MDB_MAP_FULL ? KVS_ENOSPC :
			rc == ENOMEM ? KVS_ENOMEM : KVS_EIO,
			"lmdb: %s: %s", what, mdb_strerror(rc));
}

/* mdb_txn_commit, behind a test seam (kvs_testhook.h).  Like the real call,
 * it frees txn on failure too: the caller must not abort it afterwards. */
static int txn_commit(MDB_txn *txn)
{
	int e = kvs__testhook_fail(KVS__TH_LMDB_COMMIT);
	if (e) {
		mdb_txn_abort(txn); /* what a failing mdb_txn_commit does */
		return e;
	}
	return mdb_txn_commit(txn);
}

/* ---- writing -------------------------------------------------------------- */

/* Apply one op inside the write transaction. */
static int apply_op(struct kvs__lmdb *lm, MDB_txn *txn, struct kvs_op *op)
{
	MDB_val k = { op->klen, (void *)op->key }, v;
	char numbuf[24];
	int rc;

	op->result = KVS_OK;
	if (op->type == KVS_OP_REMOVE) {
		rc = mdb_del(txn, lm->dbi, &k, NULL);
		if (rc == MDB_NOTFOUND)
			op->result = KVS_ENOTFOUND;
		else if (rc)
			return mdb_err(rc, "del");
		return KVS_OK;
	}
	rc = mdb_get(txn, lm->dbi, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		return mdb_err(rc, "get");
	bool present = rc == 0;
	MDB_val nv = { op->vlen, (void *)op->val };
	if (op->type == KVS_OP_INCR) {
		int64_t num = 0;
		if (present && !kvs_parse_int64(v.mv_data, v.mv_size, &num)) {
			op->result = KVS_ENOTINT;
			return KVS_OK;
		}
		if (__builtin_add_overflow(num, op->delta, &num)) {
			op->result = KVS_EOVERFLOW;
			return KVS_OK;
		}
		op->num = num;
		nv.mv_size = (size_t)snprintf(numbuf, sizeof numbuf, "%lld",
					      (long long)num);
		nv.mv_data = numbuf;
	} else if ((op->flags & KVS_SET_NX) && present) {
		op->result = KVS_EEXIST;
		return KVS_OK;
	} else if ((op->flags & KVS_SET_XX) && !present) {
		op->result = KVS_ENOTFOUND;
		return KVS_OK;
	}
	if ((rc = mdb_put(txn, lm->dbi, &k, &nv, 0)) != 0)
		return mdb_err(rc, "put");
	atomic_fetch_add(&lm->bytes_written, op->klen + nv.mv_size);
	return KVS_OK;
}

/* Every batch is one LMDB transaction, so KVS_BATCH_ATOMIC holds for all
 * of them: flags change nothing. */
static int lm_write(struct kvs *db, struct kvs_op *ops, size_t n,
		    unsigned flags)
{
	(void)flags;
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	MDB_txn *txn;
	int rc;
	if (atomic_load(&lm->failed))
		return kvs__err_errno(KVS_EFAILED, atomic_load(&lm->failed),
				      "writes refused: an earlier commit or "
				      "sync failed");
	if ((rc = mdb_txn_begin(lm->env, NULL, 0, &txn)) != 0)
		return mdb_err(rc, "begin");
	/* kvs_set_fsync() changed the policy: set MDB_NOSYNC to match
	 * while no other commit can run. */
	enum kvs_fsync policy = kvs__fsync_policy(lm);
	if (policy != lm->fsync_applied) {
		if ((rc = mdb_env_set_flags(lm->env, MDB_NOSYNC,
					    policy != KVS_FSYNC_ALWAYS)) != 0) {
			mdb_txn_abort(txn);
			return mdb_err(rc, "set the sync policy");
		}
		lm->fsync_applied = policy;
	}
	for (size_t i = 0; i < n; i++) {
		if ((rc = apply_op(lm, txn, &ops[i])) != KVS_OK) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	if ((rc = txn_commit(txn)) != 0) {
		/* The commit freed txn.  A full disk or map while writing the
		 * pages is refused, not sticky: LMDB writes its meta page
		 * last, so the old state stands.  Anything else (a failed
		 * sync above all) is never retried: the handle fails. */
		if (rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_FULL) {
			atomic_store(&lm->write_error,
				     rc == MDB_MAP_FULL ? ENOSPC : rc);
			return kvs__err(KVS_ENOSPC, "lmdb: commit: %s",
					mdb_strerror(rc));
		}
		int expected = 0;
		atomic_compare_exchange_strong(&lm->failed, &expected,
					       rc > 0 ? rc : EIO);
		return mdb_err(rc, "commit");
	}
	atomic_store(&lm->write_error, 0);
	size_t applied = 0;
	for (size_t i = 0; i < n; i++)
		applied += ops[i].result == KVS_OK;
	atomic_fetch_add(&lm->writes, applied);
	atomic_fetch_add(&lm->batches, 1);
	if (policy == KVS_FSYNC_ALWAYS)
		atomic_fetch_add(&lm->syncs, 1);
	return KVS_OK;
}

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
		struct lreq *r = lm->head;
		lm->head = r->next;
		if (!lm->head)
			lm->tail = NULL;
		kvs__unlock(&lm->mu);
		int rc = lm_write((struct kvs *)lm, r->ops, r->n, 0);
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

static int lm_submit(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags, void (*done)(void *ctx, int result),
		     void *ctx)
{
	(void)flags;
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	struct lreq *r = calloc(1, sizeof *r);
	if (!r)
		return kvs__err(KVS_ENOMEM, "out of memory");
	r->ops = ops;
	r->n = n;
	r->done = done;
	r->ctx = ctx;
	kvs__lock(&lm->mu);
	if (lm->tail)
		lm->tail->next = r;
	else
		lm->head = r;
	lm->tail = r;
	KVS_CHECK(pthread_cond_broadcast(&lm->cv));
	kvs__unlock(&lm->mu);
	return KVS_OK;
}

/* ---- reading, stats, open and close --------------------------------------- */

static int lm_get(struct kvs *db, const void *key, size_t klen, void **val,
		  size_t *vlen)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	MDB_txn *txn;
	MDB_val k = { klen, (void *)key }, v;
	int rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_err(rc, "begin read");
	rc = mdb_get(txn, lm->dbi, &k, &v);
	if (rc) {
		mdb_txn_abort(txn);
		return rc == MDB_NOTFOUND ? KVS_ENOTFOUND : mdb_err(rc, "get");
	}
	void *buf = malloc(v.mv_size ? v.mv_size : 1);
	if (buf)
		memcpy(buf, v.mv_data, v.mv_size);
	mdb_txn_abort(txn);
	if (!buf)
		return kvs__err(KVS_ENOMEM, "out of memory");
	*val = buf;
	*vlen = v.mv_size;
	return KVS_OK;
}

static int lm_compact(struct kvs *db)
{
	(void)db; /* LMDB reuses freed pages: nothing to reclaim */
	return KVS_OK;
}

static int lm_stats(struct kvs *db, struct kvs_store_stats *st)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	MDB_stat ms;
	MDB_envinfo info;
	MDB_txn *txn;
	int rc;
	memset(st, 0, sizeof *st);
	if ((rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn)) != 0)
		return mdb_err(rc, "begin read");
	rc = mdb_stat(txn, lm->dbi, &ms);
	mdb_txn_abort(txn);
	if (rc || (rc = mdb_env_info(lm->env, &info)) != 0)
		return mdb_err(rc, "stat");
	st->live_keys = ms.ms_entries;
	st->disk_bytes = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
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
	lm->worker_started = lm->syncer_started = false;
}

static void lm_free(struct kvs__lmdb *lm)
{
	if (lm->env)
		mdb_env_close(lm->env);
	pthread_mutex_destroy(&lm->mu);
	pthread_cond_destroy(&lm->cv);
	free(lm);
}

static int lm_close(struct kvs *db)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	stop_threads(lm);
	int rc = KVS_OK, e = mdb_env_sync(lm->env, 1);
	if (e)
		rc = mdb_err(e, "sync");
	else if (atomic_load(&lm->failed))
		rc = kvs__err_errno(KVS_EIO, atomic_load(&lm->failed),
				    "the store failed earlier");
	lm_free(lm);
	return rc;
}

static int lm_open(const char *dir, const struct kvs_options *opt,
		   struct kvs **out)
{
	struct kvs__lmdb *lm = calloc(1, sizeof *lm);
	pthread_condattr_t ca;
	MDB_txn *txn;
	int rc;
	if (!lm)
		return kvs__err(KVS_ENOMEM, "out of memory");
	lm->h.lock_fd = -1;
	lm->opt = *opt;
	lm->fsync_applied = opt->fsync;
	KVS_CHECK(pthread_mutex_init(&lm->mu, NULL));
	KVS_CHECK(pthread_condattr_init(&ca));
	KVS_CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
	KVS_CHECK(pthread_cond_init(&lm->cv, &ca));
	pthread_condattr_destroy(&ca);

	unsigned flags = MDB_NOTLS;
	if (opt->fsync != KVS_FSYNC_ALWAYS)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&lm->env)) ||
	    (rc = mdb_env_set_mapsize(lm->env, MAP_SIZE)) ||
	    (rc = mdb_env_set_maxreaders(lm->env, MAX_READERS)) ||
	    (rc = mdb_env_open(lm->env, dir, flags, 0644))) {
		rc = mdb_err(rc, dir);
		goto fail;
	}
	if (mdb_env_get_maxkeysize(lm->env) < LMDB_MAX_KEY) {
		rc = kvs__err(KVS_EINVAL, "lmdb: this liblmdb allows keys of "
			      "only %d bytes", mdb_env_get_maxkeysize(lm->env));
		goto fail;
	}
	if ((rc = mdb_txn_begin(lm->env, NULL, 0, &txn)) != 0) {
		rc = mdb_err(rc, "open the database");
		goto fail;
	}
	if ((rc = mdb_dbi_open(txn, NULL, 0, &lm->dbi)) != 0) {
		mdb_txn_abort(txn); /* not committed: still ours to free */
		rc = mdb_err(rc, "open the database");
		goto fail;
	}
	/* A commit frees the transaction whether or not it succeeds: it is
	 * never aborted afterwards (that freed LMDB's write transaction a
	 * second time). */
	if ((rc = txn_commit(txn)) != 0) {
		rc = mdb_err(rc, "open the database");
		goto fail;
	}
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
	*out = (struct kvs *)lm;
	return KVS_OK;
fail:
	stop_threads(lm);
	lm_free(lm);
	return rc;
}

/* LMDB's keys have no integer position that survives writes, so the first
 * call passes every key and the iteration ends there. */
static int lm_scan(struct kvs *db, uint64_t cursor, size_t count,
		   int (*cb)(void *ctx, const void *key, size_t klen),
		   void *ctx, uint64_t *next_cursor)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;
	(void)count;
	*next_cursor = 0;
	if (cursor != 0)
		return KVS_OK;
	if ((rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn)) != 0)
		return mdb_err(rc, "begin read");
	if ((rc = mdb_cursor_open(txn, lm->dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return mdb_err(rc, "cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if (cb(ctx, k.mv_data, k.mv_size) != 0)
			break;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return KVS_OK;
}

const struct kvs__vtable kvs__lmdb_engine = {
	.name = "lmdb",
	.max_key = LMDB_MAX_KEY,
	.open = lm_open,
	.close = lm_close,
	.get = lm_get,
	.write = lm_write,
	.submit = lm_submit,
	.compact = lm_compact,
	.stats = lm_stats,
	.stats_cached = lm_stats, /* a read transaction: never waits */
	.scan = lm_scan,
};
