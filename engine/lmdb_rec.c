/* lmdb_rec.c - the LMDB engine's records of one key inside a transaction
 * (value, expiry, due index kept in step), the write transaction's turn
 * under wmu with its commit, and the key versions.  Runs on whichever
 * thread writes (a client's, the submit worker, the expirer) or reads. */
#include "lmdb_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int kvs__lm_err(int rc, const char *what)
{
	return kvs__err(rc == MDB_MAP_FULL ? KVS_ENOSPC :
			rc == ENOMEM ? KVS_ENOMEM : KVS_EIO,
			"lmdb: %s: %s", what, mdb_strerror(rc));
}

int kvs__lm_commit_raw(MDB_txn *txn)
{
	int e = kvs__testhook_fail(KVS__TH_LMDB_COMMIT);
	if (e) {
		mdb_txn_abort(txn); /* what a failing mdb_txn_commit does */
		return e;
	}
	return mdb_txn_commit(txn);
}

void kvs__lm_be64(uint8_t out[8], int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--, u >>= 8)
		out[i] = (uint8_t)u;
}

int64_t kvs__lm_get_be64(const MDB_val *v)
{
	const uint8_t *p = v->mv_data;
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | p[i];
	return (int64_t)u;
}

/* The average TTL is (sum of expiry times) / n - now.  The sum is kept
 * relative to the open time and each term capped at 2^40 ms (35 years), so
 * that the true sum of up to 2^24 keys fits in 64 bits; the running sum
 * may wrap meanwhile (unsigned arithmetic is exact modulo 2^64). */
uint64_t kvs__lm_ttl_part(const struct kvs__lmdb *lm, int64_t exp)
{
	if (exp <= lm->ttl_base)
		return 0;
	uint64_t d = (uint64_t)exp - (uint64_t)lm->ttl_base;
	return d < (1ull << 40) ? d : 1ull << 40;
}

int64_t kvs__lm_now(void)
{
	struct timespec ts;
	KVS_CHECK(clock_gettime(CLOCK_REALTIME, &ts));
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kvs__lm_state(struct kvs__lmdb *lm, MDB_txn *txn, const void *key,
		  size_t klen, int64_t now, struct kvs__lm_key *k)
{
	MDB_val mk = { klen, (void *)key }, e;
	memset(k, 0, sizeof *k);
	int rc = mdb_get(txn, lm->data, &mk, &k->val);
	if (rc == MDB_NOTFOUND)
		return KVS_OK;
	if (rc)
		return kvs__lm_err(rc, "get");
	k->present = true;
	rc = mdb_get(txn, lm->expires, &mk, &e);
	if (rc == 0) {
		if (e.mv_size != 8)
			return kvs__err(KVS_ECORRUPT, "lmdb: the expiry time "
					"of a key is %zu bytes, not 8",
					e.mv_size);
		k->exp = kvs__lm_get_be64(&e);
	} else if (rc != MDB_NOTFOUND) {
		return kvs__lm_err(rc, "get expiry");
	}
	k->live = !(k->exp && k->exp <= now);
	return KVS_OK;
}

/* ---- the write transaction's turn ------------------------------------------ */

int kvs__lm_tx_begin(struct kvs__lmdb *lm, struct kvs__lm_tx *tx)
{
	memset(tx, 0, sizeof *tx);
	tx->lm = lm;
	tx->bumped = tx->inline_bumped;
	tx->cap = KVS__LM_TX_INLINE;
	kvs__lock(&lm->wmu);
	/* kvs_set_fsync() changed the policy: set MDB_NOSYNC to match while
	 * no other write transaction can run. */
	enum kvs_fsync policy = kvs__fsync_policy(lm);
	int rc = 0;
	if (policy != lm->fsync_applied) {
		rc = mdb_env_set_flags(lm->env, MDB_NOSYNC,
				       policy != KVS_FSYNC_ALWAYS);
		if (rc == 0)
			lm->fsync_applied = policy;
	}
	if (rc == 0)
		rc = mdb_txn_begin(lm->env, NULL, 0, &tx->txn);
	if (rc) {
		kvs__unlock(&lm->wmu);
		return kvs__lm_err(rc, "begin");
	}
	tx->synced = policy == KVS_FSYNC_ALWAYS;
	tx->now = kvs__lm_now();
	return KVS_OK;
}

static uint64_t next_version(struct kvs__lmdb *lm)
{
	return atomic_fetch_add(&lm->vclock, 1) + 1;
}

static void bump_hash(struct kvs__lmdb *lm, uint64_t h)
{
	atomic_store_explicit(&lm->versions[h % KVS__VERSION_SLOTS],
			      next_version(lm), memory_order_release);
}

static uint64_t key_hash(const struct kvs__lmdb *lm, const void *key,
			 size_t klen)
{
	return kvs__siphash(lm->hkey, key, klen);
}

/* A reader may have taken the number bumped before the commit and then
 * read the value from before it; the second bump, after the commit and
 * before wmu lets the next write begin, is what its later update callback
 * compares against. */
static void bump_again(struct kvs__lm_tx *tx)
{
	struct kvs__lmdb *lm = tx->lm;
	if (tx->bump_all) {
		atomic_store(&lm->flush_version, next_version(lm));
		return;
	}
	for (size_t i = 0; i < tx->nbumped; i++)
		bump_hash(lm, tx->bumped[i]);
}

int kvs__lm_tx_end(struct kvs__lm_tx *tx, int rc)
{
	struct kvs__lmdb *lm = tx->lm;
	if (rc != KVS_OK) {
		mdb_txn_abort(tx->txn);
		goto out;
	}
	/* A commit of several keys makes multi_commits odd while it runs:
	 * kvs_read_begin() waits for it to be even, and kvs_read_retry()
	 * sees it changed (a seqlock, so MGET never sees half of one). */
	bool multi = tx->nbumped > 1 || tx->bump_all || tx->flushed;
	if (multi)
		atomic_fetch_add_explicit(&lm->multi_commits, 1,
					  memory_order_seq_cst);
	int e = kvs__lm_commit_raw(tx->txn);
	if (multi)
		atomic_fetch_add_explicit(&lm->multi_commits, 1,
					  memory_order_release);
	if (e) {
		/* The commit freed txn.  A full disk or map while writing the
		 * pages is refused, not sticky: LMDB writes its meta page
		 * last, so the old state stands.  Anything else (a failed
		 * sync above all) is never retried: the handle fails. */
		if (e == ENOSPC || e == EDQUOT || e == MDB_MAP_FULL) {
			atomic_store(&lm->write_error,
				     e == MDB_MAP_FULL ? ENOSPC : e);
			rc = kvs__err(KVS_ENOSPC, "lmdb: commit: %s",
				      mdb_strerror(e));
		} else {
			int expected = 0;
			atomic_compare_exchange_strong(&lm->failed, &expected,
						       e > 0 ? e : EIO);
			rc = kvs__lm_err(e, "commit");
		}
		goto out;
	}
	atomic_store(&lm->write_error, 0);
	if (tx->flushed)
		atomic_store(&lm->ttl_sum, 0);
	atomic_fetch_add(&lm->ttl_sum, tx->ttl_add - tx->ttl_sub);
	atomic_fetch_add(&lm->expired_keys, tx->expired);
	atomic_fetch_add(&lm->bytes_written, tx->bytes);
	bump_again(tx);
out:
	if (tx->bumped != tx->inline_bumped)
		free(tx->bumped);
	tx->bumped = NULL;
	kvs__unlock(&lm->wmu);
	return rc;
}

void kvs__lm_bump(struct kvs__lm_tx *tx, const void *key, size_t klen)
{
	uint64_t h = key_hash(tx->lm, key, klen);
	bump_hash(tx->lm, h);
	if (tx->bump_all)
		return;
	if (tx->nbumped == tx->cap) {
		size_t cap = tx->cap * 2;
		uint64_t *p = tx->bumped == tx->inline_bumped
				      ? malloc(cap * sizeof *p)
				      : realloc(tx->bumped, cap * sizeof *p);
		if (!p) {
			tx->bump_all = true; /* a false alarm for every key */
			return;
		}
		if (tx->bumped == tx->inline_bumped)
			memcpy(p, tx->inline_bumped, sizeof tx->inline_bumped);
		tx->bumped = p;
		tx->cap = cap;
	}
	tx->bumped[tx->nbumped++] = h;
}

void kvs__lm_bump_all(struct kvs__lm_tx *tx)
{
	atomic_store(&tx->lm->flush_version, next_version(tx->lm));
	tx->bump_all = true;
}

uint64_t kvs__lm_version(struct kvs__lmdb *lm, const void *key, size_t klen)
{
	uint64_t h = key_hash(lm, key, klen);
	uint64_t v = atomic_load_explicit(&lm->versions[h % KVS__VERSION_SLOTS],
					  memory_order_acquire);
	uint64_t f = atomic_load_explicit(&lm->flush_version,
					  memory_order_acquire);
	return v > f ? v : f;
}

/* ---- a key's records ----------------------------------------------------------- */

int kvs__lm_set_exp(struct kvs__lm_tx *tx, const void *key, size_t klen,
		    int64_t old_exp, int64_t exp)
{
	struct kvs__lmdb *lm = tx->lm;
	MDB_val mk = { klen, (void *)key };
	uint8_t tb[8];
	MDB_val t = { 8, tb };
	int rc;
	if (old_exp == exp)
		return KVS_OK;
	if (old_exp) {
		kvs__lm_be64(tb, old_exp);
		if ((rc = mdb_del(tx->txn, lm->due, &t, &mk)) &&
		    rc != MDB_NOTFOUND)
			return kvs__lm_err(rc, "del due");
		if (!exp && (rc = mdb_del(tx->txn, lm->expires, &mk, NULL)) &&
		    rc != MDB_NOTFOUND)
			return kvs__lm_err(rc, "del expiry");
		tx->ttl_sub += kvs__lm_ttl_part(lm, old_exp);
	}
	if (exp) {
		kvs__lm_be64(tb, exp);
		if ((rc = mdb_put(tx->txn, lm->expires, &mk, &t, 0)) != 0 ||
		    (rc = mdb_put(tx->txn, lm->due, &t, &mk, 0)) != 0)
			return kvs__lm_err(rc, "put expiry");
		tx->ttl_add += kvs__lm_ttl_part(lm, exp);
	}
	return KVS_OK;
}

int kvs__lm_put(struct kvs__lm_tx *tx, const void *key, size_t klen,
		const void *val, size_t vlen, int64_t old_exp, int64_t exp)
{
	MDB_val mk = { klen, (void *)key }, mv = { vlen, (void *)val };
	int rc = mdb_put(tx->txn, tx->lm->data, &mk, &mv, 0);
	if (rc)
		return kvs__lm_err(rc, "put");
	tx->bytes += klen + vlen;
	return kvs__lm_set_exp(tx, key, klen, old_exp, exp);
}

int kvs__lm_del(struct kvs__lm_tx *tx, const void *key, size_t klen,
		int64_t old_exp)
{
	MDB_val mk = { klen, (void *)key };
	int rc = mdb_del(tx->txn, tx->lm->data, &mk, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return kvs__lm_err(rc, "del");
	return kvs__lm_set_exp(tx, key, klen, old_exp, 0);
}
