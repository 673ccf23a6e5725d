/* eb_kvs.c - kvs-engine-bench's stores behind the public API (kvs.h): the
 * log-structured engine, and engine/lmdb.c (the LMDB engine as the server
 * would use it), so the wrapper can be compared with liblmdb used directly. */
#include <stdio.h>
#include <stdlib.h>

#include "kvs.h"
#include "engine_bench.h"

struct eb_store {
	struct kvs *db;
};

/* A worker needs nothing of its own: any thread may call any function on
 * a handle.  It only holds the copy the last get returned. */
struct eb_thread {
	struct kvs *db;
	void *val;
};

static int kvs_fail(const char *what, int rc)
{
	eb_seterr("%s: %s: %s", what, kvs_strerror(rc), kvs_errmsg());
	return EB_ERR;
}

static int open_engine(const char *dir, enum kvs_engine engine,
		       enum eb_sync sync, struct eb_store **out)
{
	struct kvs_options o = {
		.engine = engine,
		.fsync = sync == EB_ALWAYS ? KVS_FSYNC_ALWAYS : KVS_FSYNC_EVERYSEC,
	};
	struct eb_store *s = calloc(1, sizeof *s);
	int rc;

	if (!s) {
		eb_seterr("out of memory");
		return EB_ERR;
	}
	if ((rc = kvs_open(dir, &o, &s->db)) != KVS_OK) {
		free(s);
		return kvs_fail("kvs_open", rc);
	}
	*out = s;
	return 0;
}

static int kv_open(const char *dir, enum eb_sync sync, struct eb_store **out)
{
	return open_engine(dir, KVS_ENGINE_KVS, sync, out);
}

static int lm_open(const char *dir, enum eb_sync sync, struct eb_store **out)
{
	return open_engine(dir, KVS_ENGINE_LMDB, sync, out);
}

static int kv_close(struct eb_store *s)
{
	int rc = kvs_close(s->db);

	free(s);
	return rc == KVS_OK ? 0 : kvs_fail("kvs_close", rc);
}

static int kv_thread_begin(struct eb_store *s, struct eb_thread **out)
{
	struct eb_thread *t = calloc(1, sizeof *t);

	if (!t) {
		eb_seterr("out of memory");
		return EB_ERR;
	}
	t->db = s->db;
	*out = t;
	return 0;
}

static void kv_thread_end(struct eb_thread *t)
{
	kvs_free(t->val);
	free(t);
}

static int kv_get(struct eb_thread *t, const void *key, size_t klen,
		  const void **val, size_t *vlen)
{
	int rc = kvs_get(t->db, key, klen, &t->val, vlen);

	if (rc == KVS_ENOTFOUND)
		return EB_NOTFOUND;
	if (rc != KVS_OK)
		return kvs_fail("kvs_get", rc);
	*val = t->val;
	return 0;
}

/* The caller of kvs_get owns the copy: freeing it is part of a get. */
static void kv_get_done(struct eb_thread *t)
{
	kvs_free(t->val);
	t->val = NULL;
}

static int kv_set(struct eb_thread *t, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	int rc = kvs_set(t->db, key, klen, val, vlen);

	return rc == KVS_OK ? 0 : kvs_fail("kvs_set", rc);
}

static int kv_batch(struct eb_thread *t, const struct eb_kv *kv, size_t n)
{
	struct kvs_op ops[EB_BATCH_OPS];
	int rc;

	if (n > EB_BATCH_OPS) {
		eb_seterr("batch of %zu ops: at most %d", n, EB_BATCH_OPS);
		return EB_ERR;
	}
	for (size_t i = 0; i < n; i++)
		ops[i] = (struct kvs_op){
			.type = KVS_OP_SET,
			.key = kv[i].key, .klen = kv[i].klen,
			.val = kv[i].val, .vlen = kv[i].vlen,
		};
	rc = kvs_write_batch(t->db, ops, n);
	return rc == KVS_OK ? 0 : kvs_fail("kvs_write_batch", rc);
}

const struct eb_adapter eb_kvs_adapter = {
	.engine = "kvs",
	.how = "kvs engine through kvs.h (kvs_get returns a heap copy)",
	.relaxed = "everysec",
	.always = "always (group commit)",
	.max_key = KVS_MAX_KEY,
	.open = kv_open,
	.close = kv_close,
	.thread_begin = kv_thread_begin,
	.thread_end = kv_thread_end,
	.get = kv_get,
	.get_done = kv_get_done,
	.set = kv_set,
	.batch = kv_batch,
};

const struct eb_adapter eb_lmdb_api_adapter = {
	.engine = "lmdb",
	.how = "engine/lmdb.c through kvs.h (read txn begun and aborted per "
	       "get, heap copy; get before put; one txn per call)",
	.relaxed = "MDB_NOSYNC + mdb_env_sync each second",
	.always = "synchronous commit per txn",
	.max_key = 511,
	.open = lm_open,
	.close = kv_close,
	.thread_begin = kv_thread_begin,
	.thread_end = kv_thread_end,
	.get = kv_get,
	.get_done = kv_get_done,
	.set = kv_set,
	.batch = kv_batch,
};
