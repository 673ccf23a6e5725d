/* lmdb_layout.c - the LMDB engine's named databases, opened (or created)
 * by kvs_open on the opening thread; and the one-time migration of a store
 * written before they existed, whose user data sits in the main database.
 *
 * Why migrate rather than keep old stores as they are: expiry needs a
 * second database beside the data, and the main database of an old store
 * cannot hold a named database without the name becoming a user key (in
 * kvs_scan, or overwritten by a SET of that key).  Moving the data once
 * makes every store the same, so no code path depends on the layout.
 *
 * How, crash-safely and for any size: the first transaction moves user
 * keys that carry one of the three names aside and creates the databases
 * (a store is "new" from then on: its main database holds kvs.data as a
 * named database).  Later transactions each move a bounded number of the
 * remaining user keys from the main database into kvs.data (put and
 * delete in the same transaction).  Whatever the main database holds
 * beside the three names is user data still to move, so an open that
 * finds some (after a crash in the middle) just goes on moving. */
#include "lmdb_int.h"

#include <stdlib.h>
#include <string.h>

#define MOVE_KEYS 4096          /* keys moved per transaction */
#define MOVE_BYTES (32u << 20)  /* or this many bytes, whichever first */

static const char *const names[] = {
	KVS__LM_DB_DATA, KVS__LM_DB_EXPIRES, KVS__LM_DB_DUE,
};
#define NNAMES (sizeof names / sizeof names[0])

static bool is_name(const MDB_val *k)
{
	for (size_t i = 0; i < NNAMES; i++)
		if (k->mv_size == strlen(names[i]) &&
		    memcmp(k->mv_data, names[i], k->mv_size) == 0)
			return true;
	return false;
}

/* A user key of an old store that has the name of a database-to-be. */
struct stashed {
	void *val;
	size_t len;
	bool found;
};

static int open_dbs(struct kvs__lmdb *lm, MDB_txn *txn)
{
	int rc;
	if ((rc = mdb_dbi_open(txn, KVS__LM_DB_DATA, MDB_CREATE, &lm->data)) ||
	    (rc = mdb_dbi_open(txn, KVS__LM_DB_EXPIRES, MDB_CREATE,
			       &lm->expires)) ||
	    (rc = mdb_dbi_open(txn, KVS__LM_DB_DUE, MDB_CREATE | MDB_DUPSORT,
			       &lm->due)))
		return kvs__lm_err(rc, "open the database");
	return KVS_OK;
}

/* The first transaction: see the top of the file.  *old_keys: the user
 * keys an old store's main database held (0 for a new store). */
static int first_txn(struct kvs__lmdb *lm, MDB_dbi *main_dbi,
		     uint64_t *old_keys)
{
	struct stashed st[NNAMES] = { { 0 } };
	MDB_txn *txn;
	MDB_dbi probe;
	MDB_stat ms;
	int rc = mdb_txn_begin(lm->env, NULL, 0, &txn);
	*old_keys = 0;
	if (rc)
		return kvs__lm_err(rc, "open the database");
	if ((rc = mdb_dbi_open(txn, NULL, 0, main_dbi)) ||
	    (rc = mdb_stat(txn, *main_dbi, &ms))) {
		rc = kvs__lm_err(rc, "open the database");
		goto abort;
	}
	rc = mdb_dbi_open(txn, KVS__LM_DB_DATA, 0, &probe);
	if (rc != 0 && rc != MDB_NOTFOUND && rc != MDB_INCOMPATIBLE) {
		rc = kvs__lm_err(rc, "open the database");
		goto abort;
	}
	if (rc != 0) {
		/* Fresh, or old (MDB_INCOMPATIBLE: a user key is named
		 * kvs.data).  Move the keys that are names aside. */
		*old_keys = ms.ms_entries;
		for (size_t i = 0; i < NNAMES; i++) {
			MDB_val k = { strlen(names[i]), (void *)names[i] }, v;
			if ((rc = mdb_get(txn, *main_dbi, &k, &v)) ==
			    MDB_NOTFOUND)
				continue;
			if (rc || !(st[i].val = malloc(v.mv_size ? v.mv_size
								 : 1))) {
				rc = rc ? kvs__lm_err(rc, "get")
					: kvs__err(KVS_ENOMEM, "out of memory");
				goto abort;
			}
			memcpy(st[i].val, v.mv_data, v.mv_size);
			st[i].len = v.mv_size;
			st[i].found = true;
			if ((rc = mdb_del(txn, *main_dbi, &k, NULL)) != 0) {
				rc = kvs__lm_err(rc, "del");
				goto abort;
			}
		}
	}
	if ((rc = open_dbs(lm, txn)) != KVS_OK)
		goto abort;
	for (size_t i = 0; i < NNAMES; i++) {
		MDB_val k = { strlen(names[i]), (void *)names[i] };
		MDB_val v = { st[i].len, st[i].val };
		if (st[i].found &&
		    (rc = mdb_put(txn, lm->data, &k, &v, 0)) != 0) {
			rc = kvs__lm_err(rc, "put");
			goto abort;
		}
	}
	for (size_t i = 0; i < NNAMES; i++)
		free(st[i].val);
	/* A commit frees the transaction whether or not it succeeds: it is
	 * never aborted afterwards. */
	if ((rc = kvs__lm_commit_raw(txn)) != 0)
		return kvs__lm_err(rc, "open the database");
	return KVS_OK;
abort:
	mdb_txn_abort(txn);
	for (size_t i = 0; i < NNAMES; i++)
		free(st[i].val);
	return rc;
}

/* Move up to MOVE_KEYS user keys from the main database into kvs.data.
 * *more: some are left. */
static int move_some(struct kvs__lmdb *lm, MDB_dbi main_dbi, uint64_t *moved,
		     bool *more)
{
	uint8_t key[KVS__LM_MAX_KEY];
	void *buf = NULL;
	size_t cap = 0, n = 0, bytes = 0;
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	int rc = mdb_txn_begin(lm->env, NULL, 0, &txn);
	*more = false;
	if (rc)
		return kvs__lm_err(rc, "migrate: begin");
	if ((rc = mdb_cursor_open(txn, main_dbi, &cur)) != 0)
		goto fail;
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (is_name(&k) || k.mv_size > sizeof key) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
			continue;
		}
		if (n == MOVE_KEYS || bytes >= MOVE_BYTES) {
			*more = true;
			break;
		}
		/* Copies: the puts into kvs.data may move the pages these
		 * point into. */
		if (v.mv_size > cap) {
			void *p = realloc(buf, v.mv_size);
			if (!p) {
				rc = ENOMEM;
				goto fail;
			}
			buf = p;
			cap = v.mv_size;
		}
		size_t klen = k.mv_size;
		memcpy(key, k.mv_data, klen);
		if (v.mv_size)
			memcpy(buf, v.mv_data, v.mv_size);
		MDB_val nk = { klen, key }, nv = { v.mv_size, buf };
		if ((rc = mdb_cursor_del(cur, 0)) != 0 ||
		    (rc = mdb_put(txn, lm->data, &nk, &nv, 0)) != 0)
			goto fail;
		n++;
		bytes += klen + nv.mv_size;
		/* The key after the one just moved. */
		k = nk;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		goto fail;
	mdb_cursor_close(cur);
	free(buf);
	if ((rc = kvs__lm_commit_raw(txn)) != 0)
		return kvs__lm_err(rc, "migrate: commit");
	*moved += n;
	return KVS_OK;
fail:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	free(buf);
	return kvs__lm_err(rc, "migrate");
}

int kvs__lm_layout(struct kvs__lmdb *lm)
{
	MDB_dbi main_dbi;
	uint64_t old_keys = 0, moved = 0;
	bool more = true;
	int rc = first_txn(lm, &main_dbi, &old_keys);
	if (rc)
		return rc;
	if (old_keys)
		kvs__log_to(&lm->opt, KVS_LOG_INFO,
			    "lmdb: a store of the old layout (%llu keys in "
			    "the main database): moving them into the named "
			    "database " KVS__LM_DB_DATA,
			    (unsigned long long)old_keys);
	while (more)
		if ((rc = move_some(lm, main_dbi, &moved, &more)) != KVS_OK)
			return rc;
	if (!moved)
		return KVS_OK;
	/* Under MDB_NOSYNC the moves are not on disk yet: make the one-time
	 * rewrite durable before the store is used. */
	if ((rc = mdb_env_sync(lm->env, 1)) != 0)
		return kvs__lm_err(rc, "migrate: sync");
	kvs__log_to(&lm->opt, KVS_LOG_INFO,
		    "lmdb: moved %llu keys into " KVS__LM_DB_DATA,
		    (unsigned long long)moved);
	return KVS_OK;
}
