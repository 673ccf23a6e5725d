/* lmdb_write.c - the LMDB engine's writes: the ops of one batch applied in
 * one LMDB write transaction, on the calling thread (kvs_write_batch) or
 * the submit worker (kvs_submit).  LMDB's write transaction sees its own
 * writes, so each op (and an update callback) sees the earlier ops of the
 * batch; and a batch is all or nothing, so KVS_BATCH_ATOMIC always holds. */
#include "lmdb_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The key's state for a write: a key whose time has come is removed now
 * (counted as expired, no version bump) and seen as absent. */
static int live_state(struct kvs__lm_tx *tx, const void *key, size_t klen,
		      struct kvs__lm_key *k)
{
	int rc = kvs__lm_state(tx->lm, tx->txn, key, klen, tx->now, k);
	if (rc || !k->present || k->live)
		return rc;
	if ((rc = kvs__lm_del(tx, key, klen, k->exp)) != KVS_OK)
		return rc;
	tx->expired++;
	memset(k, 0, sizeof *k);
	return KVS_OK;
}

/* Make key hold val until exp (0: no expiry; not after now: removed), it
 * being in state k (live or absent). */
static int write_key(struct kvs__lm_tx *tx, const void *key, size_t klen,
		     const struct kvs__lm_key *k, const void *val,
		     size_t vlen, int64_t exp)
{
	int rc;
	if (exp && exp <= tx->now)
		rc = k->live ? kvs__lm_del(tx, key, klen, k->exp) : KVS_OK;
	else
		rc = kvs__lm_put(tx, key, klen, val, vlen, k->exp, exp);
	if (rc == KVS_OK)
		kvs__lm_bump(tx, key, klen);
	return rc;
}

static int op_set(struct kvs__lm_tx *tx, struct kvs_op *op)
{
	struct kvs__lm_key k;
	int rc = live_state(tx, op->key, op->klen, &k);
	if (rc)
		return rc;
	if ((op->flags & KVS_SET_NX) && k.live) {
		op->result = KVS_EEXIST;
		return KVS_OK;
	}
	if ((op->flags & KVS_SET_XX) && !k.live) {
		op->result = KVS_ENOTFOUND;
		return KVS_OK;
	}
	int64_t exp = op->flags & KVS_SET_KEEPTTL ? k.exp : op->expire_ms;
	return write_key(tx, op->key, op->klen, &k, op->val, op->vlen, exp);
}

static int op_remove(struct kvs__lm_tx *tx, struct kvs_op *op)
{
	struct kvs__lm_key k;
	int rc = live_state(tx, op->key, op->klen, &k);
	if (rc)
		return rc;
	if (!k.live) {
		op->result = KVS_ENOTFOUND;
		return KVS_OK;
	}
	if ((rc = kvs__lm_del(tx, op->key, op->klen, k.exp)) == KVS_OK)
		kvs__lm_bump(tx, op->key, op->klen);
	return rc;
}

static int op_incr(struct kvs__lm_tx *tx, struct kvs_op *op)
{
	struct kvs__lm_key k;
	char numbuf[24];
	int64_t num = 0;
	int rc = live_state(tx, op->key, op->klen, &k);
	if (rc)
		return rc;
	if (k.live && !kvs_parse_int64(k.val.mv_data, k.val.mv_size, &num)) {
		op->result = KVS_ENOTINT;
		return KVS_OK;
	}
	if (__builtin_add_overflow(num, op->delta, &num)) {
		op->result = KVS_EOVERFLOW;
		return KVS_OK;
	}
	op->num = num;
	int len = snprintf(numbuf, sizeof numbuf, "%lld", (long long)num);
	/* The expiry stays: k.exp (a live key's, or 0). */
	return write_key(tx, op->key, op->klen, &k, numbuf, (size_t)len, k.exp);
}

/* What the callback asked for, k being the key's state it was shown. */
static int apply_update(struct kvs__lm_tx *tx, struct kvs_op *op,
			const struct kvs__lm_key *k, const struct kvs_update *u)
{
	const char *old = k->val.mv_data;
	const char *nv = u->new_val;
	void *copy = NULL;
	int rc;
	if (u->action == KVS_UPD_REMOVE) {
		if (!k->live)
			return KVS_OK;
		if ((rc = kvs__lm_del(tx, op->key, op->klen, k->exp)) == KVS_OK)
			kvs__lm_bump(tx, op->key, op->klen);
		return rc;
	}
	if (u->action != KVS_UPD_SET)
		return KVS_OK;
	if (u->new_vlen > KVS_MAX_VALUE) {
		op->result = kvs__err(KVS_ETOOBIG, "value of %zu bytes is over "
				      "the limit of %u bytes", u->new_vlen,
				      KVS_MAX_VALUE);
		return KVS_OK;
	}
	if ((!nv && u->new_vlen) || u->new_expire_ms < 0) {
		op->result = kvs__err(KVS_EINVAL, "update callback: a NULL "
				      "value or a negative expiry time");
		return KVS_OK;
	}
	/* The old value lives in a page of the map that the put may change:
	 * a new value taken from it is copied first (the same bytes in the
	 * same place: only the expiry changes). */
	bool gone = u->new_expire_ms && u->new_expire_ms <= tx->now;
	if (!gone && k->live && nv && nv >= old &&
	    nv < old + k->val.mv_size) {
		if (nv == old && u->new_vlen == k->val.mv_size) {
			rc = kvs__lm_set_exp(tx, op->key, op->klen, k->exp,
					     u->new_expire_ms);
			if (rc == KVS_OK)
				kvs__lm_bump(tx, op->key, op->klen);
			return rc;
		}
		if (!(copy = malloc(u->new_vlen ? u->new_vlen : 1)))
			return kvs__err(KVS_ENOMEM, "out of memory");
		memcpy(copy, nv, u->new_vlen);
		nv = copy;
	}
	rc = write_key(tx, op->key, op->klen, k, nv, u->new_vlen,
		       u->new_expire_ms);
	free(copy);
	return rc;
}

static int op_update(struct kvs__lm_tx *tx, struct kvs_op *op, bool *abort)
{
	struct kvs__lm_key k;
	int rc = live_state(tx, op->key, op->klen, &k);
	if (rc == KVS_ECORRUPT) {
		op->result = rc; /* the callback is not called */
		return KVS_OK;
	}
	if (rc)
		return rc;
	struct kvs_update u = {
		.key = op->key,
		.klen = op->klen,
		.found = k.live,
		.val = k.live ? k.val.mv_data : NULL,
		.vlen = k.live ? k.val.mv_size : 0,
		.expire_ms = k.exp,
		.version = kvs__lm_version(tx->lm, op->key, op->klen),
	};
	op->result = op->update(op->uctx, &u);
	if (u.action == KVS_UPD_ABORT) {
		*abort = true;
		return KVS_OK;
	}
	return apply_update(tx, op, &k, &u);
}

static int op_flush(struct kvs__lm_tx *tx, struct kvs_op *op)
{
	struct kvs__lmdb *lm = tx->lm;
	uint64_t due = 0, due_sum = 0;
	MDB_stat ds;
	int rc = mdb_stat(tx->txn, lm->data, &ds);
	if (rc)
		return kvs__lm_err(rc, "stat");
	if ((rc = kvs__lm_backlog(lm, tx->txn, tx->now, &due, &due_sum)))
		return rc;
	/* mdb_drop(.., 0) empties a database and frees its pages in this
	 * transaction: the flush is durable with the commit, and the space
	 * is reused by later writes. */
	if ((rc = mdb_drop(tx->txn, lm->data, 0)) ||
	    (rc = mdb_drop(tx->txn, lm->expires, 0)) ||
	    (rc = mdb_drop(tx->txn, lm->due, 0)))
		return kvs__lm_err(rc, "drop");
	op->num = (int64_t)(ds.ms_entries > due ? ds.ms_entries - due : 0);
	tx->flushed = true;
	tx->ttl_add = tx->ttl_sub = 0;
	kvs__lm_bump_all(tx);
	return KVS_OK;
}

static int apply_op(struct kvs__lm_tx *tx, struct kvs_op *op, bool *abort)
{
	op->result = KVS_OK;
	switch (op->type) {
	case KVS_OP_SET:
		return op_set(tx, op);
	case KVS_OP_REMOVE:
		return op_remove(tx, op);
	case KVS_OP_INCR:
		return op_incr(tx, op);
	case KVS_OP_UPDATE:
		return op_update(tx, op, abort);
	case KVS_OP_FLUSH:
		return op_flush(tx, op);
	}
	return kvs__err(KVS_EINVAL, "unknown operation %d", (int)op->type);
}

int kvs__lm_write(struct kvs *db, struct kvs_op *ops, size_t n,
		  unsigned flags)
{
	(void)flags; /* every batch is one transaction: atomic anyway */
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	struct kvs__lm_tx tx;
	bool aborted = false;
	int rc;
	if (atomic_load(&lm->failed))
		return kvs__err_errno(KVS_EFAILED, atomic_load(&lm->failed),
				      "writes refused: an earlier commit or "
				      "sync failed");
	if ((rc = kvs__lm_tx_begin(lm, &tx)) != KVS_OK)
		return rc;
	for (size_t i = 0; i < n && rc == KVS_OK; i++) {
		if (aborted)
			ops[i].result = KVS_ECANCELED;
		else
			rc = apply_op(&tx, &ops[i], &aborted);
	}
	if ((rc = kvs__lm_tx_end(&tx, rc)) != KVS_OK)
		return rc;
	size_t applied = 0;
	for (size_t i = 0; i < n; i++)
		applied += ops[i].result == KVS_OK;
	atomic_fetch_add(&lm->writes, applied);
	atomic_fetch_add(&lm->batches, 1);
	if (tx.synced)
		atomic_fetch_add(&lm->syncs, 1);
	return KVS_OK;
}
