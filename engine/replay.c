/* replay.c - what recovery does with each record it reads (recovery.c
 * reads the files): a SET or REMOVE goes to the index, the newest write of
 * a key winning by sequence number, never by file order; a FLUSH kills
 * every older record; a transaction marker only counts.  Then, once every
 * file is read, the tombstones kept meanwhile and the keys older than the
 * newest FLUSH are dropped.  The opener's thread (the writer to be), and
 * its helper thread, which makes the index's inserts when the machine has a
 * second CPU. */
#include "engine_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The sequence number of the record e points at (entries do not keep it:
 * only recovery needs it, for a key written more than once).  A record is
 * a CBOR array whose first item is the sequence number. */
static int entry_seq(const struct kvs__entry *e, uint64_t *seq)
{
	const struct kvs__seg *seg = e->seg;
	unsigned char buf[10];
	const unsigned char *p;
	size_t n = e->rec_len < sizeof buf ? e->rec_len : sizeof buf;

	/* The opener publishes a scanned segment's mapping while the helper
	 * may read here (struct kvs__replay_pool). */
	const unsigned char *map = __atomic_load_n(&seg->map, __ATOMIC_ACQUIRE);
	if (map && (uint64_t)e->off + n <= seg->map_len) {
		p = map + e->off;
	} else {
		ssize_t got = kvs__io_pread_full(seg->fd, buf, n, (off_t)e->off);
		if (got < 0)
			return kvs__err_errno(KVS_EIO, (int)-got, "%s: read",
					      seg->path);
		if ((size_t)got != n)
			return kvs__err(KVS_EIO, "%s: offset %u: short read",
					seg->path, e->off);
		p = buf;
	}
	if (!kvs__rec_peek_seq(p, n, seq))
		return kvs__err(KVS_ECORRUPT, "%s: offset %u: no record where "
				"the index points", seg->path, e->off);
	return KVS_OK;
}

/* ---- applying a record to the index ---------------------------------------- */

/*
 * An open's time is mostly the index's inserts, each a few cache misses
 * (the bucket, the nodes around it in the split-ordered list), and the
 * reading, checking and decoding of the records.  With a second CPU the two
 * overlap: the opener reads, checks and decodes every record and makes its
 * entry (the entry allocator is single-threaded), and a helper thread makes
 * the inserts, in file order, as the opener alone would (the table's
 * growth included).  The entries the helper replaces or drops go back to
 * the opener with their batch, which frees them when it takes the batch
 * for reuse, without a grace period.  That is safe only because, until the
 * join: the helper is the one thread that changes or reads the table (no
 * lookup may be added to recovery), the table has no automatic resize
 * (its growth is the helper's own, synchronous cds_lfht_resize), and
 * cds_lfht_add_replace unlinks the old node physically before it returns
 * (liburcu's rculfhash.c: _cds_lfht_replace, then its bucket's garbage
 * collection).  A dropped entry was never linked.  The segments' byte counts, which a FLUSH
 * record makes the opener change too, are updated atomically meanwhile.
 * (Half of the inserts each, by hash, was slower: the opener's share of the
 * work is already the larger one.)
 */
struct item {
	struct kvs__entry *e; /* made, not yet published */
	struct kvs__seg *seg;
	uint64_t hash, seq;
};

#define BATCH_ITEMS 1024
#define BATCHES 4

struct batch {
	struct batch *next;
	size_t n, nfreed;
	struct item it[BATCH_ITEMS];
	/* The helper's: entries it no longer needs, for the opener to free
	 * (each item makes at most one). */
	struct kvs__entry *freed[BATCH_ITEMS];
};

/* What one thread's inserts changed. */
struct replay_ctx {
	bool shared;        /* the other thread runs too: atomic counts */
	struct batch *freed_to; /* the helper's: frees go back with it */
	uint64_t entries, tombs;
};

struct kvs__replay_pool {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work, spare_cv;
	struct batch *queue, *queue_tail, *spare;
	struct batch *cur;  /* the opener's, filling */
	struct batch *batches; /* all BATCHES of them, one mapping */
	bool closing;
	struct kvs *db;
	struct replay_ctx hctx;
	int rc;             /* the helper's first failure, and its message */
	char msg[512];
	atomic_bool failed; /* rc is set: the opener stops at its next batch */
};

static void add_bytes(const struct replay_ctx *c, uint64_t *p, uint64_t n)
{
	if (c->shared)
		__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
	else
		*p += n;
}

static void sub_bytes(const struct replay_ctx *c, uint64_t *p, uint64_t n)
{
	if (c->shared)
		__atomic_fetch_sub(p, n, __ATOMIC_RELAXED);
	else
		*p -= n;
}

/* An entry no longer needed: retired or freed at once by the opener; by
 * the helper, handed back with its batch (struct kvs__replay_pool). */
static void free_entry(struct kvs *db, struct replay_ctx *c,
		       struct kvs__entry *e, bool published)
{
	struct batch *b = c->freed_to;
	if (b) {
		KVS_ASSERT(b->nfreed < BATCH_ITEMS);
		b->freed[b->nfreed++] = e;
	} else if (published) {
		kvs__index_retire(db->index, e);
	} else {
		kvs__entry_free(db->index, e);
	}
}

/* Put it->e, made for a record with seq it->seq of it->seg, in the index
 * unless a newer record of its key is there. */
static int apply(struct kvs *db, struct replay_ctx *c, const struct item *it)
{
	struct kvs__entry *e = it->e;
	bool tomb = e->vlen == KVS__TOMB;
	/* One walk of the chain for a key seen for the first time (the common
	 * case); a second one only to replace an older record of the key.
	 * Each table call is its own short read-side section (cds_lfht's
	 * rule); reading the older record's seq, which may read the disk,
	 * is outside any.  prev stays valid in between: only this thread
	 * changes or retires the entries of this key. */
	kvs__read_lock();
	struct kvs__entry *prev = kvs__index_add_unique(db->index, it->hash, e);
	kvs__read_unlock();
	if (prev) {
		uint64_t prev_seq = 0;
		int rc = entry_seq(prev, &prev_seq);
		if (rc == KVS_OK && prev_seq > it->seq) {
			/* An older write: never published. */
			add_bytes(c, &it->seg->dead_bytes, e->rec_len);
			kvs__seg_mark_dead(it->seg, e->off, db->opt.segment_size);
			free_entry(db, c, e, false);
			return KVS_OK;
		}
		if (rc != KVS_OK) {
			free_entry(db, c, e, false);
			return rc;
		}
		kvs__read_lock();
		prev = kvs__index_put(db->index, it->hash, e);
		kvs__read_unlock();
	}
	if (tomb) {
		add_bytes(c, &it->seg->dead_bytes, e->rec_len);
		c->tombs++;
	} else {
		add_bytes(c, &it->seg->live_bytes, e->rec_len);
		if (kvs__entry_expire(e))
			kvs__expire_add(&db->exp, it->hash,
					kvs__entry_expire(e));
	}
	if (!prev) {
		if ((++c->entries & 0xffff) == 0) {
			/* Grow the table as it fills (outside any read-side
			 * section, as kvs__index_grow requires). */
			kvs__index_grow(db->index, c->entries + 0xffff);
		}
		return KVS_OK;
	}
	if (prev->vlen != KVS__TOMB) {
		sub_bytes(c, &prev->seg->live_bytes, prev->rec_len);
		add_bytes(c, &prev->seg->dead_bytes, prev->rec_len);
		if (kvs__entry_expire(prev))
			kvs__expire_del(&db->exp, kvs__entry_expire(prev));
	} else {
		c->tombs--;
	}
	kvs__seg_mark_dead(prev->seg, prev->off, db->opt.segment_size);
	free_entry(db, c, prev, true);
	return KVS_OK;
}

/* ---- the helper thread ------------------------------------------------------ */

static void *helper_main(void *arg)
{
	struct kvs__replay_pool *pool = arg;
	struct replay_ctx *c = &pool->hctx;
	kvs__rcu_thread_online();
	for (;;) {
		kvs__lock(&pool->mu);
		while (!pool->queue && !pool->closing)
			KVS_CHECK(pthread_cond_wait(&pool->work, &pool->mu));
		struct batch *b = pool->queue;
		if (!b) {
			kvs__unlock(&pool->mu);
			break;
		}
		pool->queue = b->next;
		if (!pool->queue)
			pool->queue_tail = NULL;
		kvs__unlock(&pool->mu);
		c->freed_to = b;
		for (size_t i = 0; i < b->n; i++) {
			/* After a failure: what is left is only freed. */
			if (pool->rc != KVS_OK) {
				free_entry(pool->db, c, b->it[i].e, false);
				continue;
			}
			int rc = apply(pool->db, c, &b->it[i]);
			if (rc != KVS_OK) {
				pool->rc = rc;
				snprintf(pool->msg, sizeof pool->msg, "%s",
					 kvs_errmsg());
				atomic_store(&pool->failed, true);
			}
		}
		c->freed_to = NULL;
		b->n = 0;
		kvs__lock(&pool->mu);
		b->next = pool->spare;
		pool->spare = b;
		KVS_CHECK(pthread_cond_signal(&pool->spare_cv));
		kvs__unlock(&pool->mu);
	}
	return NULL; /* the thread's exit unregisters it from RCU */
}

static void pool_free(struct kvs__replay_pool *pool)
{
	/* Mapped, not malloc'd: their memory goes back at once, and is not
	 * left in the heap under the index's entries (a start-up's RSS). */
	if (pool->batches)
		munmap(pool->batches, BATCHES * sizeof *pool->batches);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->work);
	pthread_cond_destroy(&pool->spare_cv);
	free(pool);
}

void kvs__replay_start(struct kvs *db)
{
	unsigned want = kvs__testhook_replay_threads();
	if (want == 0)
		want = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? 2 : 1;
	if (want < 2)
		return;
	/* Without memory or a thread, the open is serial: only slower. */
	struct kvs__replay_pool *pool = calloc(1, sizeof *pool);
	if (!pool)
		return;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->spare_cv, NULL);
	pool->db = db;
	pool->hctx.shared = true;
	void *m = mmap(NULL, BATCHES * sizeof *pool->batches,
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		pool_free(pool);
		return;
	}
	pool->batches = m;
	for (int i = 0; i < BATCHES; i++) {
		struct batch *b = &pool->batches[i];
		b->n = b->nfreed = 0;
		b->next = pool->spare;
		pool->spare = b;
	}
	pool->cur = pool->spare;
	pool->spare = pool->cur->next;
	pool->cur->next = NULL;
	if (pthread_create(&pool->thread, NULL, helper_main, pool) != 0) {
		pool_free(pool);
		return;
	}
	db->rec.pool = pool;
}

/* Free what the helper handed back with batch b. */
static void take_freed(struct kvs *db, struct batch *b)
{
	for (size_t i = 0; i < b->nfreed; i++)
		kvs__entry_free(db->index, b->freed[i]);
	b->nfreed = 0;
}

/* Hand the opener's batch to the helper; take an empty one. */
static void pool_post(struct kvs__replay_pool *pool)
{
	struct batch *b = pool->cur;
	kvs__lock(&pool->mu);
	b->next = NULL;
	if (pool->queue_tail)
		pool->queue_tail->next = b;
	else
		pool->queue = b;
	pool->queue_tail = b;
	KVS_CHECK(pthread_cond_signal(&pool->work));
	while (!pool->spare)
		KVS_CHECK(pthread_cond_wait(&pool->spare_cv, &pool->mu));
	pool->cur = pool->spare;
	pool->spare = pool->cur->next;
	pool->cur->next = NULL;
	kvs__unlock(&pool->mu);
	take_freed(pool->db, pool->cur);
}

int kvs__replay_join(struct kvs *db)
{
	struct kvs__replay_pool *pool = db->rec.pool;
	if (!pool)
		return KVS_OK;
	if (pool->cur->n)
		pool_post(pool);
	kvs__lock(&pool->mu);
	pool->closing = true;
	KVS_CHECK(pthread_cond_signal(&pool->work));
	kvs__unlock(&pool->mu);
	KVS_CHECK(pthread_join(pool->thread, NULL));
	db->rec.pool = NULL;
	/* Every batch is back (the helper drained the queue): nothing walks
	 * the table any more. */
	for (struct batch *b = pool->spare; b; b = b->next)
		take_freed(db, b);
	take_freed(db, pool->cur);
	struct replay_ctx *c = &pool->hctx;
	db->rec.entries += c->entries;
	db->rec.tombs += c->tombs;
	int rc = pool->rc == KVS_OK ? KVS_OK
				    : kvs__err(pool->rc, "%s", pool->msg);
	pool_free(pool);
	return rc;
}

/* Apply one SET or REMOVE record found at recovery. */
static int replay(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		  const struct kvs_record *rec)
{
	if (rec->type != KVS_REC_SET && rec->type != KVS_REC_REMOVE)
		return KVS_OK;
	struct item it = { .seg = seg, .seq = rec->seq };
	it.hash = kvs__index_hash(db->index, rec->key, rec->klen);
	/* A SET whose expiry time has passed is the key's removal: it must
	 * still beat every older record of the key, as a REMOVE does. */
	bool tomb = rec->type == KVS_REC_REMOVE ||
		    (rec->expire_ms && rec->expire_ms <= db->rec.now_ms);
	struct kvs__entry *e = kvs__entry_new_x(db->index, rec->key, rec->klen,
						tomb ? 0 : rec->expire_ms);
	if (!e)
		return kvs__err(KVS_ENOMEM, "out of memory");
	e->seg = seg;
	e->off = (uint32_t)off;
	e->rec_len = (uint32_t)rec->length;
	e->vlen = tomb ? KVS__TOMB : (uint32_t)rec->vlen;
	it.e = e;

	struct kvs__replay_pool *pool = db->rec.pool;
	if (pool) {
		pool->cur->it[pool->cur->n++] = it;
		if (pool->cur->n < BATCH_ITEMS)
			return KVS_OK;
		pool_post(pool);
		/* The helper failed: the open stops (a few batches after
		 * the record a one-thread open would have stopped at, with
		 * the same error). */
		if (atomic_load(&pool->failed))
			return kvs__replay_join(db);
		return KVS_OK;
	}
	struct replay_ctx c = { .entries = db->rec.entries,
				.tombs = db->rec.tombs };
	int rc = apply(db, &c, &it);
	db->rec.entries = c.entries;
	db->rec.tombs = c.tombs;
	return rc;
}

/* Apply any record found at recovery: a SET or REMOVE goes to the index; a
 * FLUSH kills every record older than it (applied once all are loaded, by
 * drop_dead); a transaction marker only counts in its segment. */
int kvs__replay_record(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		       const struct kvs_record *rec)
{
	if (rec->type == KVS_REC_FLUSH) {
		/* A tombstone of every key.  The helper thread, if it runs,
		 * changes the segments' counts too. */
		if (db->rec.pool)
			__atomic_fetch_add(&seg->dead_bytes, rec->length,
					   __ATOMIC_RELAXED);
		else
			seg->dead_bytes += rec->length;
		if (rec->seq > db->rec.flush_seq)
			db->rec.flush_seq = rec->seq;
		return KVS_OK;
	}
	if (rec->type == KVS_REC_TXN)
		return KVS_OK;
	return replay(db, seg, off, rec);
}

#define WALK_CHUNK 4096

/* Whether entry e (a record's) is older than the newest FLUSH, and so
 * dead.  A segment whose lowest seq is above the FLUSH holds none; any
 * other has the record's own seq read (a compaction output is not in seq
 * order: its last record may be older than records before it). */
static bool flushed(struct kvs *db, const struct kvs__entry *e)
{
	uint64_t f = db->rec.flush_seq, seq;
	if (f == 0 || e->seg->min_seq > f)
		return false;
	return entry_seq(e, &seq) != KVS_OK || seq < f;
}

/* Drop the tombstones kept while replaying, and the keys older than the
 * newest FLUSH; count live keys. */
void kvs__replay_finish(struct kvs *db)
{
	struct cds_lfht *ht = kvs__index_table(db->index);
	struct cds_lfht_iter it;
	struct kvs__entry *e;
	uint64_t live = 0;
	/* The walk touches every node (a cache miss each): skip it when no
	 * tombstone is left in the index, as in a store without removes. */
	if (db->rec.tombs == 0 && db->rec.flush_seq == 0) {
		db->live_keys = db->rec.entries;
		return;
	}
	/* The walk is split into read-side sections of WALK_CHUNK nodes, so
	 * that another store's grace period (its kvs_close) does not wait
	 * for the whole walk.  A section ends only on a live entry: this
	 * thread alone changes the table, so that node stays in it, and the
	 * walk goes on from it; a deleted one may be freed once the section
	 * is over. */
	unsigned n = 0;
	kvs__read_lock();
	KVS__INDEX_FOR_EACH(ht, &it, e) {
		if (e->vlen == KVS__TOMB) {
			cds_lfht_del(ht, &e->node);
			kvs__seg_mark_dead(e->seg, e->off, db->opt.segment_size);
			kvs__index_retire(db->index, e);
		} else if (flushed(db, e)) {
			e->seg->live_bytes -= e->rec_len;
			e->seg->dead_bytes += e->rec_len;
			kvs__seg_mark_dead(e->seg, e->off, db->opt.segment_size);
			if (kvs__entry_expire(e))
				kvs__expire_del(&db->exp, kvs__entry_expire(e));
			cds_lfht_del(ht, &e->node);
			kvs__index_retire(db->index, e);
		} else {
			live++;
			if (++n % WALK_CHUNK == 0) {
				kvs__read_unlock();
				kvs__read_lock();
			}
		}
	}
	kvs__read_unlock();
	db->live_keys = live;
}

