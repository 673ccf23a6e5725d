/* lmdb_expire.c - the LMDB engine's due index (kvs.due, expiry time ->
 * keys): counting the keys that expired but are not removed yet (stats,
 * flush), and the expirer thread that removes due keys in small write
 * transactions so that keys never read again still go. */
#include "lmdb_int.h"

#include <string.h>
#include <time.h>

#define TURN_MAX 256          /* keys removed per write transaction */
#define IDLE_MS 100           /* between turns that found little */
#define BUSY_MS 10            /* after a full turn: more are due */

int kvs__lm_backlog(struct kvs__lmdb *lm, MDB_txn *txn, int64_t now,
		    uint64_t *count, uint64_t *ttl_sum)
{
	MDB_cursor *cur;
	MDB_val t, k;
	int rc = mdb_cursor_open(txn, lm->due, &cur);
	*count = *ttl_sum = 0;
	if (rc)
		return kvs__lm_err(rc, "cursor");
	for (rc = mdb_cursor_get(cur, &t, &k, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &t, &k, MDB_NEXT_NODUP)) {
		if (t.mv_size != 8)
			break;
		int64_t when = kvs__lm_get_be64(&t);
		if (when > now)
			break;
		size_t n = 0;
		if ((rc = mdb_cursor_count(cur, &n)) != 0)
			break;
		*count += n;
		*ttl_sum += n * kvs__lm_ttl_part(lm, when);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? KVS_OK : kvs__lm_err(rc, "due");
}

/* The first entry of kvs.due if it is due: its time and a copy of its key
 * into buf.  true when one is. */
static bool first_due(struct kvs__lmdb *lm, MDB_txn *txn, int64_t now,
		      int64_t *when, uint8_t *buf, size_t *klen, int *err)
{
	MDB_cursor *cur;
	MDB_val t, k;
	*err = mdb_cursor_open(txn, lm->due, &cur);
	if (*err)
		return false;
	int rc = mdb_cursor_get(cur, &t, &k, MDB_FIRST);
	bool due = rc == 0 && t.mv_size == 8 && k.mv_size > 0 &&
		   k.mv_size <= KVS__LM_MAX_KEY &&
		   (*when = kvs__lm_get_be64(&t)) <= now;
	if (due) {
		memcpy(buf, k.mv_data, k.mv_size);
		*klen = k.mv_size;
	}
	if (rc && rc != MDB_NOTFOUND)
		*err = rc;
	mdb_cursor_close(cur);
	return due;
}

int kvs__lm_expire_turn(struct kvs__lmdb *lm, size_t max, size_t *removed)
{
	uint8_t key[KVS__LM_MAX_KEY];
	size_t klen = 0;
	int64_t when = 0;
	MDB_txn *rtxn;
	struct kvs__lm_tx tx;
	int err = 0, rc;

	*removed = 0;
	/* A read transaction first: an idle store takes no writer lock. */
	if ((rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &rtxn)) != 0)
		return kvs__lm_err(rc, "begin read");
	bool any = first_due(lm, rtxn, kvs__lm_now(), &when, key, &klen, &err);
	mdb_txn_abort(rtxn);
	if (err)
		return kvs__lm_err(err, "due");
	if (!any)
		return KVS_OK;

	if ((rc = kvs__lm_tx_begin(lm, &tx)) != KVS_OK)
		return rc;
	while (*removed < max) {
		if (!first_due(lm, tx.txn, tx.now, &when, key, &klen, &err)) {
			rc = err ? kvs__lm_err(err, "due") : KVS_OK;
			break;
		}
		struct kvs__lm_key k;
		if ((rc = kvs__lm_state(lm, tx.txn, key, klen, tx.now, &k)))
			break;
		if (k.exp == when) {
			/* Expiry is not a write: no version bump. */
			rc = kvs__lm_del(&tx, key, klen, when);
			tx.expired += k.present;
		} else {
			/* A due entry the key no longer has (never left by
			 * this code, but harmless to drop). */
			uint8_t tb[8];
			MDB_val t = { 8, tb }, mk = { klen, key };
			kvs__lm_be64(tb, when);
			rc = mdb_del(tx.txn, lm->due, &t, &mk);
			rc = rc ? kvs__lm_err(rc, "del due") : KVS_OK;
		}
		if (rc)
			break;
		(*removed)++;
	}
	return kvs__lm_tx_end(&tx, rc);
}

void *kvs__lm_expirer_main(void *arg)
{
	struct kvs__lmdb *lm = arg;
	static _Atomic uint64_t log_us; /* any store: a rare message */
	int wait_ms = IDLE_MS;
	kvs__lock(&lm->mu);
	while (!lm->stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)wait_ms * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
		}
		int rc = 0;
		while (!lm->stop && rc == 0)
			rc = pthread_cond_timedwait(&lm->cv, &lm->mu, &until);
		if (lm->stop)
			break;
		kvs__unlock(&lm->mu);
		size_t removed = 0;
		wait_ms = IDLE_MS;
		if (!atomic_load(&lm->failed)) {
			rc = kvs__lm_expire_turn(lm, TURN_MAX, &removed);
			if (rc != KVS_OK)
				kvs__log_every_to(&lm->opt, &log_us,
						  KVS_LOG_WARN,
						  "lmdb: removing expired keys: "
						  "%s (tried again later)",
						  kvs_errmsg());
			else if (removed == TURN_MAX)
				wait_ms = BUSY_MS;
		}
		kvs__lock(&lm->mu);
	}
	kvs__unlock(&lm->mu);
	return NULL;
}
