/* lmdb_read.c - the LMDB engine's reads (kvs_get, kvs_lookup, kvs_scan)
 * and kvs_key_version, on the caller's thread: each read is one LMDB read
 * transaction, in which a key whose expiry time has come is absent. */
#include "lmdb_int.h"

#include <sched.h>

#include <stdlib.h>
#include <string.h>

int kvs__lm_lookup(struct kvs *db, const void *key, size_t klen, void **val,
		   size_t *vlen, int64_t *expire_ms)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	struct kvs__lm_key k;
	MDB_txn *txn;
	void *buf = NULL;
	int rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return kvs__lm_err(rc, "begin read");
	rc = kvs__lm_state(lm, txn, key, klen, kvs__lm_now(), &k);
	if (rc == KVS_OK && !k.live)
		rc = KVS_ENOTFOUND;
	if (rc == KVS_OK && val) {
		buf = malloc(k.val.mv_size ? k.val.mv_size : 1);
		if (buf)
			memcpy(buf, k.val.mv_data, k.val.mv_size);
		else
			rc = kvs__err(KVS_ENOMEM, "out of memory");
	}
	mdb_txn_abort(txn);
	if (rc != KVS_OK)
		return rc;
	if (val)
		*val = buf;
	if (vlen)
		*vlen = k.val.mv_size;
	if (expire_ms)
		*expire_ms = k.exp;
	return KVS_OK;
}

int kvs__lm_get(struct kvs *db, const void *key, size_t klen, void **val,
		size_t *vlen)
{
	return kvs__lm_lookup(db, key, klen, val, vlen, NULL);
}

uint64_t kvs__lm_read_gen(struct kvs *db)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	uint64_t g;
	unsigned spins = 0;
	while ((g = atomic_load_explicit(&lm->multi_commits,
					 memory_order_acquire)) & 1)
		if (++spins % 64 == 0)
			sched_yield();
	return g;
}

uint64_t kvs__lm_key_version(struct kvs *db, const void *key, size_t klen)
{
	return kvs__lm_version((struct kvs__lmdb *)db, key, klen);
}

/* LMDB's keys have no integer position that survives writes, so the first
 * call passes every key and the iteration ends there.  Keys with an
 * expiry time are looked up in kvs.expires (skipped when it is empty, as
 * in a store that never used expiry). */
int kvs__lm_scan(struct kvs *db, uint64_t cursor, size_t count,
		 int (*cb)(void *ctx, const void *key, size_t klen),
		 void *ctx, uint64_t *next_cursor)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_stat es;
	MDB_val k, v, e;
	int rc;
	(void)count;
	*next_cursor = 0;
	if (cursor != 0)
		return KVS_OK;
	if ((rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn)) != 0)
		return kvs__lm_err(rc, "begin read");
	if ((rc = mdb_stat(txn, lm->expires, &es)) != 0 ||
	    (rc = mdb_cursor_open(txn, lm->data, &cur)) != 0) {
		mdb_txn_abort(txn);
		return kvs__lm_err(rc, "cursor");
	}
	int64_t now = kvs__lm_now();
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (es.ms_entries && mdb_get(txn, lm->expires, &k, &e) == 0 &&
		    e.mv_size == 8 && kvs__lm_get_be64(&e) <= now)
			continue;
		if (cb(ctx, k.mv_data, k.mv_size) != 0)
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return KVS_OK;
}
