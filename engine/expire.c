/* expire.c - active expiry, writer thread only (during recovery, the
 * opener's helper thread if it runs, else the opener): a binary min-heap of {expiry time, key hash} for every key that
 * has an expiry time, from which the writer takes the keys that are due and
 * removes them with REMOVE records of their own (kvs__expire_collect builds
 * the request; stage.c writes them and round_apply counts them), so that a
 * key nobody reads again still goes and compaction reclaims its space.  The
 * work per turn is bounded (REAP_MAX keys): client requests are served
 * between two turns.  Reads never wait for this: an expired key is absent
 * for them as soon as its time has come (kvs__entry_expired). */
#include "round.h"

#include <stdlib.h>
#include <string.h>

#define REAP_MAX 1000            /* keys removed per turn at most */
#define MAX_WAIT_US 10000000ull  /* the writer looks again at least every
				    10 s (the wall clock may jump) */
#define RETRY_MS 1000            /* after a reap round that was refused */

/* ---- the heap ------------------------------------------------------------ */

static void sift_up(struct kvs__xitem *h, size_t i)
{
	struct kvs__xitem it = h[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (h[p].at <= it.at)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = it;
}

static void sift_down(struct kvs__xitem *h, size_t n, size_t i)
{
	struct kvs__xitem it = h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && h[c + 1].at < h[c].at)
			c++;
		if (h[c].at >= it.at)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i] = it;
}

static void push(struct kvs__expiry *x, uint64_t hash, int64_t at)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 256;
		struct kvs__xitem *h = realloc(x->heap, cap * sizeof *h);
		if (!h) {
			x->lost = true; /* the key still expires for reads */
			return;
		}
		x->heap = h;
		x->cap = cap;
	}
	x->heap[x->n] = (struct kvs__xitem){ at, hash };
	sift_up(x->heap, x->n++);
}

static struct kvs__xitem pop(struct kvs__expiry *x)
{
	struct kvs__xitem top = x->heap[0];
	x->heap[0] = x->heap[--x->n];
	if (x->n)
		sift_down(x->heap, x->n, 0);
	return top;
}

void kvs__expire_add(struct kvs__expiry *x, uint64_t hash, int64_t at)
{
	x->volatile_keys++;
	x->sum += (uint64_t)at;
	push(x, hash, at);
}

void kvs__expire_del(struct kvs__expiry *x, int64_t at)
{
	x->volatile_keys--;
	x->sum -= (uint64_t)at;
}

/* Queue every volatile entry again from the index: after an item was lost,
 * or when stale items outnumber live ones (keys written again and again
 * with a TTL leave one each).  One walk of the table. */
static void rebuild(struct kvs *db)
{
	struct kvs__expiry *x = &db->exp;
	struct cds_lfht_iter it;
	struct kvs__entry *e;
	x->n = 0;
	x->lost = false;
	kvs__read_lock();
	KVS__INDEX_FOR_EACH(kvs__index_table(db->index), &it, e) {
		int64_t at = kvs__entry_expire(e);
		if (at)
			push(x, kvs__index_hash(db->index, e->key,
						kvs__entry_klen(e)), at);
	}
	kvs__read_unlock();
}

/* ---- reaping ------------------------------------------------------------- */

bool kvs__expire_pending(struct kvs *db, uint64_t *delay_us)
{
	struct kvs__expiry *x = &db->exp;
	*delay_us = 0;
	if (x->busy || (x->n == 0 && !x->lost))
		return false;
	int64_t now = kvs_now_ms();
	if (x->lost && now >= x->retry_ms)
		return true;
	int64_t at = x->n ? x->heap[0].at : x->retry_ms;
	if (at <= now)
		return true;
	uint64_t us = (uint64_t)(at - now) * 1000u;
	*delay_us = us < MAX_WAIT_US ? us : MAX_WAIT_US;
	return true;
}

static void reap_done(struct kvs__req *req)
{
	struct kvs *db = req->user_ctx;
	struct kvs__expiry *x = &db->exp;
	if (req->result != KVS_OK) {
		/* The round was refused (disk full...): its keys are still in
		 * the index, expired; find them again later. */
		x->lost = true;
		x->retry_ms = kvs_now_ms() + RETRY_MS;
	}
	x->nops = 0;
	x->busy = false;
}

static int match_any(struct cds_lfht_node *node, const void *key)
{
	(void)node;
	(void)key;
	return 1;
}

/* Add a reap of e's key (copied: the op outlives this read-side section);
 * the key's offset in keys[] goes in op->key until the pointers are fixed. */
static bool add_reap(struct kvs__expiry *x, const struct kvs__entry *e)
{
	size_t klen = kvs__entry_klen(e);
	if (!kvs__round_grow((void **)&x->ops, &x->ops_cap, x->nops + 1,
				 sizeof *x->ops) ||
	    !kvs__round_grow((void **)&x->keys, &x->keys_cap,
				 x->keys_len + klen, 1))
		return false;
	memcpy(x->keys + x->keys_len, e->key, klen);
	x->ops[x->nops++] = (struct kvs_op){
		.type = KVS_OP_REMOVE, .key = (void *)(uintptr_t)x->keys_len,
		.klen = klen,
	};
	x->keys_len += klen;
	return true;
}

struct kvs__req *kvs__expire_collect(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__expiry *x = &db->exp;
	if (x->busy || (x->n == 0 && !x->lost))
		return NULL;
	int64_t now = kvs_now_ms();
	if ((x->lost && now >= x->retry_ms) ||
	    x->n > 2 * x->volatile_keys + 1024)
		rebuild(db);
	if (x->n == 0 || x->heap[0].at > now)
		return NULL;
	if (!x->req && !(x->req = calloc(1, sizeof *x->req)))
		return NULL;
	struct cds_lfht *ht = kvs__index_table(db->index);
	x->nops = x->keys_len = 0;
	kvs__read_lock();
	while (x->n && x->heap[0].at <= now && x->nops < REAP_MAX) {
		struct kvs__xitem top = pop(x);
		struct cds_lfht_iter it;
		cds_lfht_lookup(ht, top.hash, match_any, NULL, &it);
		struct cds_lfht_node *node;
		while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
			struct kvs__entry *e =
				caa_container_of(node, struct kvs__entry, node);
			if (kvs__entry_expired(e, now) && !add_reap(x, e)) {
				push(x, top.hash, top.at); /* later */
				goto full;
			}
			cds_lfht_next_duplicate(ht, match_any, NULL, &it);
		}
	}
full:
	kvs__read_unlock();
	if (x->nops == 0)
		return NULL;
	for (size_t i = 0; i < x->nops; i++)
		x->ops[i].key = x->keys + (uintptr_t)x->ops[i].key;
	memset(x->req, 0, sizeof *x->req);
	x->req->kind = KVS__REQ_WRITE;
	x->req->ops = x->ops;
	x->req->nops = x->nops;
	x->req->done = reap_done;
	x->req->user_ctx = db;
	x->busy = true;
	return x->req;
}

void kvs__expire_clear(struct kvs__expiry *x)
{
	x->n = 0;
	x->lost = false;
	x->volatile_keys = 0;
	x->sum = 0;
}

void kvs__expire_stats(const struct kvs__expiry *x,
		       struct kvs_store_stats *st)
{
	st->volatile_keys = x->volatile_keys;
	st->expired_keys = x->expired;
	st->avg_ttl_ms = 0;
	if (x->volatile_keys) {
		int64_t mean = (int64_t)(x->sum / x->volatile_keys);
		int64_t now = kvs_now_ms();
		st->avg_ttl_ms = mean > now ? (uint64_t)(mean - now) : 0;
	}
}

void kvs__expire_free(struct kvs__expiry *x)
{
	free(x->heap);
	free(x->ops);
	free(x->keys);
	free(x->req);
	memset(x, 0, sizeof *x);
}
