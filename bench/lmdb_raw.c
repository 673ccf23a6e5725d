/* lmdb_raw.c - kvs-engine-bench's LMDB yardstick: liblmdb used directly, as
 * a careful LMDB user would use it, so that kvs is never measured against a
 * handicapped LMDB (engine/lmdb.c pays for the kvs API: a read txn begun
 * and aborted per get, a heap copy of every value, a lookup before every
 * put).  Here:
 *   - each worker keeps one read-only txn, renewed before every get and
 *     reset after it (no allocation, no reader-slot search per get);
 *   - a get reads the value in place in the map; the benchmark then reads
 *     every byte of it to check it, as it does with kvs's copy;
 *   - a put is mdb_txn_begin, mdb_put, mdb_txn_commit; a batch is one txn;
 *   - MDB_NORDAHEAD (random reads of a big map want no readahead) and
 *     MDB_NOTLS (read txns belong to the worker, not to a thread slot, so
 *     a worker may hold its reset read txn while it writes);
 *   - EB_RELAXED is MDB_NOSYNC and never syncs (stronger than the
 *     wrapper's sync each second); EB_ALWAYS is LMDB's default: every
 *     commit fdatasyncs the data pages and writes the meta page through an
 *     O_DSYNC descriptor before it returns.
 * eb_lmdb_writemap (--lmdb-writemap) adds MDB_WRITEMAP: commits write into
 * the shared map instead of calling pwrite(), much faster for small puts,
 * at the price LMDB's manual names (a stray pointer write can corrupt the
 * store).  It is not the default: engine/lmdb.c does not use it either, and
 * the default compares the kvs API's overhead against LMDB's own. */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_bench.h"

#define STR_(x) #x
#define STR(x) STR_(x)
#define LMDB_VERSION STR(MDB_VERSION_MAJOR) "." STR(MDB_VERSION_MINOR) "." \
		     STR(MDB_VERSION_PATCH)

#define MAP_SIZE (256ull << 30) /* address space only: the file grows */
#define MAX_READERS 1024        /* > the most workers of any phase */

bool eb_lmdb_writemap;

struct eb_store {
	MDB_env *env;
	MDB_dbi dbi;
};

struct eb_thread {
	struct eb_store *s;
	MDB_txn *rtxn; /* reset between gets */
};

static int mdb_fail(const char *what, int rc)
{
	eb_seterr("lmdb: %s: %s", what, mdb_strerror(rc));
	return EB_ERR;
}

static int raw_open(const char *dir, enum eb_sync sync, struct eb_store **out)
{
	struct eb_store *s = calloc(1, sizeof *s);
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	MDB_txn *txn = NULL;
	int rc;

	if (!s) {
		eb_seterr("out of memory");
		return EB_ERR;
	}
	if (sync == EB_RELAXED)
		flags |= MDB_NOSYNC;
	if (eb_lmdb_writemap)
		flags |= MDB_WRITEMAP;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		eb_seterr("mkdir %s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((rc = mdb_env_create(&s->env)) != 0) {
		mdb_fail("mdb_env_create", rc);
		goto fail;
	}
	if ((rc = mdb_env_set_mapsize(s->env, MAP_SIZE)) != 0 ||
	    (rc = mdb_env_set_maxreaders(s->env, MAX_READERS)) != 0 ||
	    (rc = mdb_env_open(s->env, dir, flags, 0644)) != 0) {
		mdb_fail(dir, rc);
		goto fail;
	}
	if (mdb_env_get_maxkeysize(s->env) < (int)eb_lmdb_raw_adapter.max_key) {
		eb_seterr("lmdb: this liblmdb takes keys of only %d bytes",
			  mdb_env_get_maxkeysize(s->env));
		goto fail;
	}
	if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (txn && rc)
			mdb_txn_abort(txn);
		mdb_fail("open the database", rc);
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->env)
		mdb_env_close(s->env);
	free(s);
	return EB_ERR;
}

static int raw_close(struct eb_store *s)
{
	int rc = mdb_env_sync(s->env, 1);

	mdb_env_close(s->env);
	free(s);
	return rc ? mdb_fail("mdb_env_sync", rc) : 0;
}

static int raw_thread_begin(struct eb_store *s, struct eb_thread **out)
{
	struct eb_thread *t = calloc(1, sizeof *t);
	int rc;

	if (!t) {
		eb_seterr("out of memory");
		return EB_ERR;
	}
	t->s = s;
	if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t->rtxn)) != 0) {
		free(t);
		return mdb_fail("begin read txn", rc);
	}
	mdb_txn_reset(t->rtxn);
	*out = t;
	return 0;
}

static void raw_thread_end(struct eb_thread *t)
{
	mdb_txn_abort(t->rtxn);
	free(t);
}

static int raw_get(struct eb_thread *t, const void *key, size_t klen,
		   const void **val, size_t *vlen)
{
	MDB_val k = { klen, (void *)key }, v;
	int rc = mdb_txn_renew(t->rtxn);

	if (rc != 0)
		return mdb_fail("mdb_txn_renew", rc);
	rc = mdb_get(t->rtxn, t->s->dbi, &k, &v);
	if (rc != 0) {
		mdb_txn_reset(t->rtxn);
		return rc == MDB_NOTFOUND ? EB_NOTFOUND : mdb_fail("mdb_get", rc);
	}
	*val = v.mv_data;
	*vlen = v.mv_size;
	return 0;
}

/* The value lives in the map only while the txn is active. */
static void raw_get_done(struct eb_thread *t)
{
	mdb_txn_reset(t->rtxn);
}

static int raw_put_txn(struct eb_thread *t, const struct eb_kv *kv, size_t n)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(t->s->env, NULL, 0, &txn);

	if (rc != 0)
		return mdb_fail("mdb_txn_begin", rc);
	for (size_t i = 0; i < n; i++) {
		MDB_val k = { kv[i].klen, (void *)kv[i].key };
		MDB_val v = { kv[i].vlen, (void *)kv[i].val };
		if ((rc = mdb_put(txn, t->s->dbi, &k, &v, 0)) != 0) {
			mdb_txn_abort(txn);
			return mdb_fail("mdb_put", rc);
		}
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return mdb_fail("mdb_txn_commit", rc);
	return 0;
}

static int raw_set(struct eb_thread *t, const void *key, size_t klen,
		   const void *val, size_t vlen)
{
	struct eb_kv kv = { key, klen, val, vlen };

	return raw_put_txn(t, &kv, 1);
}

static int raw_batch(struct eb_thread *t, const struct eb_kv *kv, size_t n)
{
	return raw_put_txn(t, kv, n);
}

const struct eb_adapter eb_lmdb_raw_adapter = {
	.engine = "lmdb",
	.how = "liblmdb " LMDB_VERSION " used directly (bench/lmdb_raw.c): "
	       "per-worker read txn with mdb_txn_reset/renew, values read in "
	       "place, MDB_NOTLS|MDB_NORDAHEAD, one txn per put or batch",
	.relaxed = "MDB_NOSYNC",
	.always = "synchronous commit per txn",
	.max_key = 511,
	.open = raw_open,
	.close = raw_close,
	.thread_begin = raw_thread_begin,
	.thread_end = raw_thread_end,
	.get = raw_get,
	.get_done = raw_get_done,
	.set = raw_set,
	.batch = raw_batch,
};
