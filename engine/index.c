/* index.c - the in-memory index: liburcu's lock-free RCU hash table (cds_lfht)
 * keyed by a SipHash of the key under a per-open random key, and the lazy
 * per-thread RCU registration that lets callers do no set-up of their own. */
#include "engine_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Entries waiting for a grace period, freed together by one callback. */
struct retired {
	struct rcu_head rcu;
	size_t n;
	struct kvs__entry *e[];
};
#define RETIRE_BATCH 1024

struct kvs__index {
	struct cds_lfht *ht;  /* immutable after open */
	uint8_t sipkey[16];   /* immutable after open */
	unsigned long buckets; /* size last asked for: the mutator only */
	struct retired *retired; /* the batch being filled: the mutator only */
};

#define INITIAL_BUCKETS 1024ul

/* ---- per-thread RCU registration --------------------------------------- */

static pthread_key_t rcu_key;
static pthread_once_t rcu_key_once = PTHREAD_ONCE_INIT;
static _Thread_local bool rcu_online;

static void rcu_thread_exit(void *unused)
{
	(void)unused;
	urcu_memb_unregister_thread();
	rcu_online = false;
}

static void rcu_key_init(void)
{
	KVS_CHECK(pthread_key_create(&rcu_key, rcu_thread_exit));
}

void kvs__rcu_thread_online(void)
{
	if (rcu_online)
		return;
	KVS_CHECK(pthread_once(&rcu_key_once, rcu_key_init));
	urcu_memb_register_thread();
	/* Any non-NULL value makes the destructor run at thread exit. */
	KVS_CHECK(pthread_setspecific(rcu_key, &rcu_online));
	rcu_online = true;
}

/* ---- the table ----------------------------------------------------------- */

struct lookup_key {
	const void *key;
	size_t klen;
};

static int match(struct cds_lfht_node *node, const void *arg)
{
	const struct lookup_key *lk = arg;
	struct kvs__entry *e = caa_container_of(node, struct kvs__entry, node);
	/* Pairs with the writer's release store of seq, made after it filled
	 * the entry and before it published it: the fields read after are
	 * complete (free on x86; what lets TSan see the publication).  The
	 * acquire load is that of klen. */
	return kvs__entry_klen(e) == lk->klen &&
	       memcmp(e->key, lk->key, lk->klen) == 0;
}

int kvs__index_new(struct kvs__index **out)
{
	struct kvs__index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return kvs__err(KVS_ENOMEM, "out of memory");
	if (getrandom(ix->sipkey, sizeof ix->sipkey, 0) != sizeof ix->sipkey) {
		int e = errno;
		free(ix);
		return kvs__err_errno(KVS_EIO, e, "getrandom");
	}
	ix->buckets = INITIAL_BUCKETS;
	/* No CDS_LFHT_AUTO_RESIZE: it may stall (see kvs__index_grow), and
	 * it sizes the table to several buckets a key. */
	ix->ht = cds_lfht_new_flavor(INITIAL_BUCKETS, INITIAL_BUCKETS, 0, 0,
				     &urcu_memb_flavor, NULL);
	if (!ix->ht) {
		free(ix);
		return kvs__err(KVS_ENOMEM, "cannot allocate the index");
	}
	*out = ix;
	return KVS_OK;
}

#if defined(__SANITIZE_THREAD__)
char kvs__rcu_hb;
#endif

static void retired_free_cb(struct rcu_head *head)
{
	KVS__TSAN_ACQUIRE();
	struct retired *r = caa_container_of(head, struct retired, rcu);
	for (size_t i = 0; i < r->n; i++)
		free(r->e[i]);
	free(r);
}

void kvs__index_retire_flush(struct kvs__index *ix)
{
	struct retired *r = ix->retired;
	if (!r || r->n == 0)
		return;
	ix->retired = NULL;
	kvs__call_rcu(&r->rcu, retired_free_cb);
}

void kvs__index_retire(struct kvs__index *ix, struct kvs__entry *e)
{
	if (!ix->retired) {
		ix->retired = malloc(sizeof *ix->retired +
				     RETIRE_BATCH * sizeof ix->retired->e[0]);
		if (!ix->retired) {
			/* No memory even for a batch.  The caller may be in a
			 * read-side section, so it cannot wait for a grace
			 * period: the entry is left allocated (a leak of one
			 * entry, only when memory has already run out). */
			return;
		}
		ix->retired->n = 0;
	}
	ix->retired->e[ix->retired->n++] = e;
	if (ix->retired->n == RETIRE_BATCH)
		kvs__index_retire_flush(ix);
}

void kvs__index_destroy(struct kvs__index *ix)
{
	struct cds_lfht_iter it;
	struct kvs__entry *e;

	if (!ix)
		return;
	kvs__rcu_thread_online();
	kvs__read_lock();
	cds_lfht_for_each_entry(ix->ht, &it, e, node) {
		cds_lfht_del(ix->ht, &e->node);
		kvs__index_retire(ix, e);
	}
	kvs__read_unlock();
	kvs__index_retire_flush(ix);
	/* Let every queued callback (entries, segments) run before the table
	 * and the handle go away. */
	urcu_memb_barrier();
	KVS_CHECK(cds_lfht_destroy(ix->ht, NULL));
	free(ix);
}

/*
 * liburcu 0.13's automatic resize can stall for good: its lazy launch queues
 * the resize work before it marks a resize as started, so when the worker
 * finishes first the mark stays set and no resize is ever started again,
 * leaving chains hundreds of nodes long (seen on 2-CPU machines: a 1M-key
 * open went from 1 s to over 20 s).  So the engine also grows the table
 * itself, to one bucket per key, whenever the key count passes its size.
 * cds_lfht_resize runs in the calling thread and clears the stuck mark.
 */
void kvs__index_grow(struct kvs__index *ix, uint64_t nkeys)
{
	if (nkeys <= ix->buckets)
		return;
	unsigned long n = ix->buckets;
	while (n < nkeys)
		n *= 2;
	cds_lfht_resize(ix->ht, n);
	ix->buckets = n;
}

uint64_t kvs__index_hash(const struct kvs__index *ix, const void *key,
			 size_t klen)
{
	return kvs__siphash(ix->sipkey, key, klen);
}

struct kvs__entry *kvs__index_lookup(struct kvs__index *ix, uint64_t hash,
				     const void *key, size_t klen)
{
	struct lookup_key lk = { key, klen };
	struct cds_lfht_iter it;
	cds_lfht_lookup(ix->ht, hash, match, &lk, &it);
	struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
	if (!node)
		return NULL;
	return caa_container_of(node, struct kvs__entry, node);
}

struct kvs__entry *kvs__index_put(struct kvs__index *ix, uint64_t hash,
				  struct kvs__entry *e)
{
	kvs__entry_ready(e);
	struct lookup_key lk = { e->key, e->klen };
	struct cds_lfht_node *old =
		cds_lfht_add_replace(ix->ht, hash, match, &lk, &e->node);
	return old ? caa_container_of(old, struct kvs__entry, node) : NULL;
}

struct kvs__entry *kvs__index_add_unique(struct kvs__index *ix, uint64_t hash,
					 struct kvs__entry *e)
{
	kvs__entry_ready(e);
	struct lookup_key lk = { e->key, e->klen };
	struct cds_lfht_node *n =
		cds_lfht_add_unique(ix->ht, hash, match, &lk, &e->node);
	return n == &e->node ? NULL
			     : caa_container_of(n, struct kvs__entry, node);
}

void kvs__index_del(struct kvs__index *ix, struct kvs__entry *e)
{
	int rc = cds_lfht_del(ix->ht, &e->node);
	if (rc != 0)
		kvs__die(__FILE__, __LINE__, "cds_lfht_del: entry not in index",
			 ENOENT);
}

struct kvs__entry *kvs__entry_new(const void *key, size_t klen)
{
	struct kvs__entry *e = malloc(sizeof *e + klen);
	if (!e)
		return NULL;
	memset(e, 0, sizeof *e);
	cds_lfht_node_init(&e->node);
	atomic_init(&e->klen, (uint32_t)klen);
	memcpy(e->key, key, klen);
	return e;
}


struct cds_lfht *kvs__index_table(struct kvs__index *ix)
{
	return ix->ht;
}
