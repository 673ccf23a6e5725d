/* index.c - the in-memory index: liburcu's lock-free RCU hash table (cds_lfht)
 * keyed by a SipHash of the key under a per-open random key, and the lazy
 * per-thread RCU registration that lets callers do no set-up of their own. */
#include "index.h"
#include "io.h"
#include "testhook.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

/*
 * Entries come from slabs, not from malloc: malloc would add an 8-byte
 * header to each and round it up to 16 bytes, a fifth of an entry's cost.
 * A slab is carved into entries of one size class (a multiple of 8 bytes);
 * a freed entry goes on its class's free list and is reused by the next
 * entry of that class.  Slab memory goes back to the system only when the
 * index is destroyed (as with memcached's slabs).  Entries with long keys
 * (over CLASS_MAX bytes in all) use malloc.
 *
 * Only the mutator (the writer thread, or the opener) allocates and frees,
 * so the free lists take no lock.  Retired entries come back after their
 * grace period through one lock-free list of whole batches, pushed by the
 * call_rcu thread and taken all at once by the mutator.
 */
#define SLAB_BYTES (256u << 10)
#define CLASS_MAX 512
#define NCLASSES (CLASS_MAX / 8 + 1)

struct slab {
	struct slab *next;
	/* entries follow, 8-byte aligned */
};

struct free_entry {
	struct free_entry *next;
};

/* Entries waiting for a grace period, given back together by one callback. */
struct retired {
	struct rcu_head rcu;
	struct kvs__index *ix;
	struct retired *next_back; /* on ix->back once the grace period ended */
	size_t n;
	struct kvs__entry *e[];
};
#define RETIRE_BATCH 1024

struct kvs__index {
	struct cds_lfht *ht;  /* immutable after open */
	uint8_t sipkey[16];   /* immutable after open */
	/* The mutator only (buckets: also the opener's helper, replay.c): */
	unsigned long buckets; /* size last asked for */
	struct retired *retired; /* the batch being filled */
	struct free_entry *free[NCLASSES];
	struct slab *slabs;
	unsigned char *bump;  /* the rest of the newest slab */
	size_t bump_left;
	/* Batches whose grace period is over (pushed by call_rcu's thread). */
	_Atomic(struct retired *) back;
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
	/* The acquire load of klen pairs with the writer's release store of
	 * it (kvs__entry_ready), made after it filled the entry and before it
	 * published it: the fields read after are complete (free on x86;
	 * what lets TSan see the publication). */
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
	atomic_init(&ix->back, NULL);
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

/* ---- entry memory -------------------------------------------------------- */

/* klen as stored: with KVS__ENT_TTL, the expiry follows the key. */
static size_t entry_size(uint32_t klen)
{
	size_t n = klen & ~KVS__ENT_TTL;
	if (klen & KVS__ENT_TTL)
		n += sizeof(int64_t);
	return (sizeof(struct kvs__entry) + n + 7) & ~(size_t)7;
}

#if defined(__SANITIZE_ADDRESS__)
void __asan_poison_memory_region(void const volatile *addr, size_t size);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#include <sanitizer/lsan_interface.h>
#define LSAN_ROOT(p, n) __lsan_register_root_region((p), (n))
#define LSAN_UNROOT(p, n) __lsan_unregister_root_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define LSAN_ROOT(p, n) ((void)(p), (void)(n))
#define LSAN_UNROOT(p, n) ((void)(p), (void)(n))
#endif

/* Put an entry no reader can reach on its free list. */
static void entry_release(struct kvs__index *ix, struct kvs__entry *e)
{
	size_t sz = entry_size(atomic_load_explicit(&e->klen,
						    memory_order_acquire));
	if (sz > CLASS_MAX) {
		free(e);
		return;
	}
	struct free_entry *f = (struct free_entry *)(void *)e;
	/* Under ASan a freed entry is poisoned but for its link, so a use
	 * after its grace period is still caught. */
	POISON((unsigned char *)e + sizeof *f, sz - sizeof *f);
	f->next = ix->free[sz / 8];
	ix->free[sz / 8] = f;
}

/* Take back the batches whose grace period has ended. */
static void take_back(struct kvs__index *ix)
{
	/* A plain load first: the exchange would take the line from the
	 * call_rcu thread at every allocation that finds its list empty (all
	 * of them while an open fills the index). */
	if (!atomic_load_explicit(&ix->back, memory_order_relaxed))
		return;
	struct retired *r = atomic_exchange_explicit(&ix->back, NULL,
						     memory_order_acquire);
	while (r) {
		struct retired *next = r->next_back;
		for (size_t i = 0; i < r->n; i++)
			entry_release(ix, r->e[i]);
		free(r);
		r = next;
	}
}

static void *entry_alloc(struct kvs__index *ix, size_t sz)
{
	if (sz > CLASS_MAX)
		return kvs__malloc(sz);
	if (!ix->free[sz / 8])
		take_back(ix);
	struct free_entry *f = ix->free[sz / 8];
	if (f) {
		ix->free[sz / 8] = f->next;
		UNPOISON(f, sz);
		return f;
	}
	if (ix->bump_left < sz) {
		/* Mapped with its pages present: an open fills slabs as fast
		 * as it can, and a page fault per 4 KiB page costs more
		 * (56 MB in 160-210 ms, against 87-111 ms populated, on a
		 * 2-vCPU VM). */
		struct slab *s = kvs__map_anon(SLAB_BYTES);
		if (!s)
			return NULL;
		/* Entries of long keys are malloc'd and may be linked only
		 * from a slab's entries: LeakSanitizer must scan slabs. */
		LSAN_ROOT(s, SLAB_BYTES);
		kvs__testhook_count_slab_bytes(SLAB_BYTES);
		s->next = ix->slabs;
		ix->slabs = s;
		ix->bump = (unsigned char *)s + ((sizeof *s + 7) & ~(size_t)7);
		ix->bump_left = SLAB_BYTES - (size_t)(ix->bump - (unsigned char *)s);
		POISON(ix->bump, ix->bump_left);
	}
	void *p = ix->bump;
	UNPOISON(p, sz);
	ix->bump += sz;
	ix->bump_left -= sz;
	return p;
}

static void retired_back_cb(struct rcu_head *head)
{
	KVS__TSAN_ACQUIRE();
	struct retired *r = caa_container_of(head, struct retired, rcu);
	struct kvs__index *ix = r->ix;
	struct retired *top = atomic_load_explicit(&ix->back,
						   memory_order_relaxed);
	do {
		r->next_back = top;
	} while (!atomic_compare_exchange_weak_explicit(
		&ix->back, &top, r, memory_order_release, memory_order_relaxed));
}

void kvs__index_retire_flush(struct kvs__index *ix)
{
	struct retired *r = ix->retired;
	if (!r || r->n == 0)
		return;
	ix->retired = NULL;
	kvs__call_rcu(&r->rcu, retired_back_cb);
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
		ix->retired->ix = ix;
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
	KVS__INDEX_FOR_EACH(ix->ht, &it, e) {
		cds_lfht_del(ix->ht, &e->node);
		kvs__index_retire(ix, e);
	}
	kvs__read_unlock();
	kvs__index_retire_flush(ix);
	/* Let every queued callback (entries, segments) run before the table
	 * and the handle go away. */
	urcu_memb_barrier();
	KVS_CHECK(cds_lfht_destroy(ix->ht, NULL));
	take_back(ix); /* frees the batches, and the entries malloc made */
	for (struct slab *s = ix->slabs, *next; s; s = next) {
		next = s->next;
		/* ASan keeps a region's poison across munmap: a later
		 * mapping at this address would inherit it. */
		UNPOISON(s, SLAB_BYTES);
		LSAN_UNROOT(s, SLAB_BYTES);
		munmap(s, SLAB_BYTES);
		kvs__testhook_count_slab_bytes(-(long)SLAB_BYTES);
	}
	free(ix);
}

/*
 * liburcu 0.13's automatic resize can stall for good: its lazy launch queues
 * the resize work before it marks a resize as started, so when the worker
 * finishes first the mark stays set and no resize is ever started again,
 * leaving chains hundreds of nodes long (seen on 2-CPU machines: a 1M-key
 * open went from 1 s to over 20 s).  So the engine grows the table itself,
 * whenever the key count passes twice its size: one bucket (16 bytes) per
 * one to two keys, 8 to 16 bytes a key.  One bucket per key would cost 16
 * to 32 bytes a key (the size is a power of two) for about 8% more get
 * throughput (kvs-engine-bench get, 1 thread, 600k and 1M keys).
 * cds_lfht_resize runs in the calling thread and clears the stuck mark.
 */
/* The size the policy above gives nkeys keys. */
static unsigned long buckets_for(uint64_t nkeys)
{
	unsigned long n = INITIAL_BUCKETS;
	while (2 * (uint64_t)n < nkeys)
		n *= 2;
	return n;
}

static void resize(struct kvs__index *ix, unsigned long n)
{
	cds_lfht_resize(ix->ht, n);
	ix->buckets = n;
	kvs__testhook_count_index_resize(n);
}

void kvs__index_grow(struct kvs__index *ix, uint64_t nkeys)
{
	KVS__ASSERT_NOT_IN_RCU(); /* a resize waits for grace periods */
	if (nkeys <= 2 * ix->buckets)
		return;
	resize(ix, buckets_for(nkeys));
}

/*
 * Growing a table that holds keys is the dearer part of an open's inserts:
 * each new bucket is linked in by a walk of the split-ordered list past
 * the keys before it, a cache miss each (12% of a 1M-key open's samples).
 * An empty table is made at any size by one linear pass.
 */
void kvs__index_presize(struct kvs__index *ix, uint64_t nkeys)
{
	KVS__ASSERT_NOT_IN_RCU();
	unsigned long n = buckets_for(nkeys);
	if (n <= ix->buckets)
		return;
	/* (liburcu 0.13 asserts rather than fail when the buckets cannot be
	 * allocated, as in any resize: the estimate's bounds keep the table
	 * no bigger than the records on disk could need.) */
	struct cds_lfht *ht = cds_lfht_new_flavor(n, INITIAL_BUCKETS, 0, 0,
						  &urcu_memb_flavor, NULL);
	if (!ht)
		return;
	KVS_CHECK(cds_lfht_destroy(ix->ht, NULL)); /* empty: nothing to free */
	ix->ht = ht;
	ix->buckets = n;
	kvs__testhook_count_index_resize(n);
}

void kvs__index_fit(struct kvs__index *ix, uint64_t nkeys)
{
	KVS__ASSERT_NOT_IN_RCU();
	unsigned long n = buckets_for(nkeys);
	if (n < ix->buckets)
		resize(ix, n);
}

uint64_t kvs__index_hash(const struct kvs__index *ix, const void *key,
			 size_t klen)
{
	return kvs__siphash(ix->sipkey, key, klen);
}

struct kvs__entry *kvs__index_lookup(struct kvs__index *ix, uint64_t hash,
				     const void *key, size_t klen)
{
	KVS__ASSERT_IN_RCU();
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
	KVS__ASSERT_IN_RCU();
	kvs__entry_ready(e);
	struct lookup_key lk = { e->key, kvs__entry_klen(e) };
	struct cds_lfht_node *old =
		cds_lfht_add_replace(ix->ht, hash, match, &lk, &e->node);
	return old ? caa_container_of(old, struct kvs__entry, node) : NULL;
}

struct kvs__entry *kvs__index_add_unique(struct kvs__index *ix, uint64_t hash,
					 struct kvs__entry *e)
{
	KVS__ASSERT_IN_RCU();
	kvs__entry_ready(e);
	struct lookup_key lk = { e->key, kvs__entry_klen(e) };
	struct cds_lfht_node *n =
		cds_lfht_add_unique(ix->ht, hash, match, &lk, &e->node);
	return n == &e->node ? NULL
			     : caa_container_of(n, struct kvs__entry, node);
}

void kvs__index_del(struct kvs__index *ix, struct kvs__entry *e)
{
	KVS__ASSERT_IN_RCU();
	int rc = cds_lfht_del(ix->ht, &e->node);
	if (rc != 0)
		KVS_DIE("cds_lfht_del: entry not in index",
			 ENOENT);
}

struct kvs__entry *kvs__entry_new_x(struct kvs__index *ix, const void *key,
				    size_t klen, int64_t expire_ms)
{
	uint32_t k = (uint32_t)klen | (expire_ms ? KVS__ENT_TTL : 0);
	struct kvs__entry *e = entry_alloc(ix, entry_size(k));
	if (!e)
		return NULL;
	memset(e, 0, sizeof *e);
	cds_lfht_node_init(&e->node);
	atomic_init(&e->klen, k);
	memcpy(e->key, key, klen);
	if (expire_ms)
		memcpy(e->key + klen, &expire_ms, sizeof expire_ms);
	return e;
}

struct kvs__entry *kvs__entry_new(struct kvs__index *ix, const void *key,
				  size_t klen)
{
	return kvs__entry_new_x(ix, key, klen, 0);
}


void kvs__entry_free(struct kvs__index *ix, struct kvs__entry *e)
{
	entry_release(ix, e);
}

struct cds_lfht *kvs__index_table(struct kvs__index *ix)
{
	return ix->ht;
}
