/*
 * index.h - the in-memory index (index.c): liburcu's lock-free hash
 * table from key to record location, read without locks.
 */
#ifndef KVS_ENGINE_INDEX_H
#define KVS_ENGINE_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <urcu/rculfhash.h>

#include "util.h"

struct kvs__seg;

/* ---- the index (index.c) --------------------------------------------- */
/*
 * One entry per live key: 40 bytes before the key on LP64, as an index entry
 * costs memory for every key of the store.  Entries are created by the
 * writer, published into the table (cds_lfht_add_replace) and never changed
 * afterwards: a new write of the key publishes a new entry and the old one is
 * retired (kvs__index_retire), to be freed after a grace period.  `klen` is
 * stored again with release order just before publication, and loaded with
 * acquire order by readers, which makes the publication visible to
 * ThreadSanitizer (the table's own barriers are inside liburcu, which TSan
 * cannot see).  The record's sequence number is not kept: only recovery
 * needs it, and it reads it from the record (kvs__entry_seq).
 *
 * Expiry: a key with an expiry time has 8 more bytes after its key bytes
 * (the int64 unix ms, unaligned), and bit 31 of `klen` (KVS__ENT_TTL: a key
 * is at most 1 MiB, so the bit is spare) says so.  A key without one costs
 * nothing more.  The bit is part of the released klen, so a reader that
 * loaded klen with kvs__entry_klen (acquire) may read the expiry: use
 * kvs__entry_expire().
 */
struct kvs__entry {
	struct cds_lfht_node node;
	struct kvs__seg *seg;  /* segment holding the record */
	uint32_t off;          /* record offset in the segment (a record
				  starts below segment_size <= 1 GiB) */
	uint32_t rec_len;      /* whole record, header to crc */
	uint32_t vlen;         /* value length (the value ends 5 bytes before
				  the record's end), or KVS__TOMB */
	_Atomic uint32_t klen; /* the key's length | KVS__ENT_TTL */
	unsigned char key[];   /* then, with KVS__ENT_TTL, int64 expire_ms */
};

#define KVS__ENT_TTL (1u << 31)
/* vlen of a tombstone entry; they exist only while recovery runs. */
#define KVS__TOMB UINT32_MAX

/* Make sure the calling thread is registered with RCU (done once per thread,
 * undone by a thread-exit destructor). */
void kvs__rcu_thread_online(void);

struct kvs__index;
int kvs__index_new(struct kvs__index **out);
/* Remove and free every entry, then destroy: only when no other thread can
 * use the index. */
void kvs__index_destroy(struct kvs__index *ix);
uint64_t kvs__index_hash(const struct kvs__index *ix, const void *key,
			 size_t klen);
/* The mutator (writer, or the opener or its helper: replay.c), outside any
 * read-side section:
 * make the table big enough for nkeys keys, at most two a bucket (see
 * index.c for why). */
void kvs__index_grow(struct kvs__index *ix, uint64_t nkeys);
/* The opener, before the first insert: make the table the size
 * kvs__index_grow would give nkeys keys (an estimate; never smaller than it
 * is).  Without memory it stays as it is. */
void kvs__index_presize(struct kvs__index *ix, uint64_t nkeys);
/* The opener, once the index is loaded: shrink a table presized for more
 * keys than it holds to the size kvs__index_grow would have given nkeys. */
void kvs__index_fit(struct kvs__index *ix, uint64_t nkeys);
/* Call with rcu_read_lock held; the result is valid until it is released. */
struct kvs__entry *kvs__index_lookup(struct kvs__index *ix, uint64_t hash,
				     const void *key, size_t klen);
/* Writer only (or the opener's helper).  Publish `e`; returns the entry it
 * replaced, or NULL.  The caller must retire the replaced entry with
 * kvs__index_retire() (at an open, replay.c may free it: see there). */
struct kvs__entry *kvs__index_put(struct kvs__index *ix, uint64_t hash,
				  struct kvs__entry *e);
/* Writer only (or the opener, or its helper).  Publish `e` unless the key
 * is present:
 * returns the present entry (e is then not published), or NULL. */
struct kvs__entry *kvs__index_add_unique(struct kvs__index *ix, uint64_t hash,
					 struct kvs__entry *e);
/* Writer only, under rcu_read_lock.  Unpublish `e` (found by lookup). */
void kvs__index_del(struct kvs__index *ix, struct kvs__entry *e);
/* The mutator only.  A new, unpublished entry for `key` (other fields zero),
 * from the index's slabs; NULL if out of memory. */
struct kvs__entry *kvs__entry_new(struct kvs__index *ix, const void *key,
				  size_t klen);
/* The same with an expiry time (0: none, the same as kvs__entry_new). */
struct kvs__entry *kvs__entry_new_x(struct kvs__index *ix, const void *key,
				    size_t klen, int64_t expire_ms);
/* The mutator only.  Free an entry that was never published (a published
 * one is retired instead; at an open, an entry kvs__index_put replaced may
 * be freed too, under the conditions replay.c states). */
void kvs__entry_free(struct kvs__index *ix, struct kvs__entry *e);
/* The mutator, after filling e and before publishing it. */
static inline void kvs__entry_ready(struct kvs__entry *e)
{
	atomic_store_explicit(&e->klen,
			      atomic_load_explicit(&e->klen, memory_order_relaxed),
			      memory_order_release);
}
/* Readers, before the other fields of an entry found in the table. */
static inline uint32_t kvs__entry_klen(const struct kvs__entry *e)
{
	return atomic_load_explicit(&((struct kvs__entry *)e)->klen,
				    memory_order_acquire) & ~KVS__ENT_TTL;
}
/* The entry's expiry time, 0 if none (any thread that may read e). */
static inline int64_t kvs__entry_expire(const struct kvs__entry *e)
{
	uint32_t k = atomic_load_explicit(&((struct kvs__entry *)e)->klen,
					  memory_order_acquire);
	if (!(k & KVS__ENT_TTL))
		return 0;
	int64_t x;
	__builtin_memcpy(&x, e->key + (k & ~KVS__ENT_TTL), sizeof x);
	return x;
}
/* Has e expired at now_ms? */
static inline bool kvs__entry_expired(const struct kvs__entry *e,
				      int64_t now_ms)
{
	int64_t x = kvs__entry_expire(e);
	return x != 0 && x <= now_ms;
}
/* The mutator only.  Free e (unpublished, or replaced or deleted from the
 * table) once every reader that may hold it is done.  Entries are retired
 * in batches, one call_rcu a batch, so an entry needs no rcu_head. */
void kvs__index_retire(struct kvs__index *ix, struct kvs__entry *e);
/* The mutator only: start the grace period of a partial batch (when idle). */
void kvs__index_retire_flush(struct kvs__index *ix);
/* Writer only: iterate every entry (under rcu_read_lock). */
struct cds_lfht *kvs__index_table(struct kvs__index *ix);
/* The entry of the node an iterator is on, NULL past the end. */
static inline struct kvs__entry *kvs__index_iter_entry(struct cds_lfht_iter *it)
{
	struct cds_lfht_node *n = cds_lfht_iter_get_node(it);
	return n ? caa_container_of(n, struct kvs__entry, node) : NULL;
}
/* cds_lfht_for_each_entry for the index: liburcu's macro takes the entry
 * of the NULL node that ends the walk (NULL plus an offset, undefined
 * behaviour that clang's UBSan reports in the fuzz build); this stops at
 * the NULL node instead. */
#define KVS__INDEX_FOR_EACH(ht, it, e)                                         \
	for (cds_lfht_first((ht), (it));                                       \
	     ((e) = kvs__index_iter_entry(it)) != NULL; cds_lfht_next((ht), (it)))

#endif /* KVS_ENGINE_INDEX_H */
