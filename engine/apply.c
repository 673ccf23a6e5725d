/* apply.c - applying a written round to the index (kvs__round_apply): each
 * staged entry published, each replaced or removed one retired, a flush's
 * walk of the whole index, the expiry counts and key versions kept in step;
 * around a round that holds an atomic request or a flush, the publication
 * counter readers wait on (kvs__publish_wait).  Also freeing the entries of
 * a refused round.  Writer thread only. */
#include "round.h"

#include <unistd.h>

static void retire_entry(struct kvs *db, struct kvs__entry *old)
{
	old->seg->live_bytes -= old->rec_len;
	old->seg->dead_bytes += old->rec_len;
	kvs__seg_mark_dead(old->seg, old->off, db->opt.segment_size);
	kvs__index_retire(db->index, old);
}

/* The active-expiry counts and queue follow the index: p's write replaced
 * or removed `old` (NULL: none). */
static void note_expiry(struct kvs *db, const struct pend *p,
			const struct kvs__entry *old)
{
	int64_t was = old ? kvs__entry_expire(old) : 0;
	if (was)
		kvs__expire_del(&db->exp, was);
	if (p->type == KVS_REC_SET && p->expire_ms)
		kvs__expire_add(&db->exp, p->hash, p->expire_ms);
	if (p->reap)
		db->exp.expired++;
}

#define FLUSH_CHUNK 4096

/* Apply a FLUSH: every key of the index goes (the writes staged after it
 * in the round come next).  Called in a read-side section, which it leaves
 * and re-enters every FLUSH_CHUNK keys so that a grace period does not wait
 * for the whole walk.  The iterator moves to the next node before the
 * current one is deleted, so a section ends on a node still in the table
 * (only this thread deletes, and the table never resizes by itself): the
 * walk goes on from it, and each node is visited once.  (Starting again
 * from the first node after each section would walk the emptied buckets
 * again and again: quadratic.) */
static void apply_flush(struct kvs *db, struct pend *p)
{
	struct cds_lfht *ht = kvs__index_table(db->index);
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	uint64_t n = 0;
	p->seg->dead_bytes += p->rec_len; /* kept by the tombstone rule */
	cds_lfht_first(ht, &it);
	while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
		struct kvs__entry *e =
			caa_container_of(node, struct kvs__entry, node);
		cds_lfht_next(ht, &it);
		uint64_t hash = kvs__index_hash(db->index, e->key,
						kvs__entry_klen(e));
		int64_t was = kvs__entry_expire(e);
		if (was)
			kvs__expire_del(&db->exp, was);
		kvs__version_bump(db, hash, p->seq);
		kvs__index_del(db->index, e);
		retire_entry(db, e);
		if (++n % FLUSH_CHUNK == 0) {
			kvs__read_unlock();
			kvs__read_lock();
		}
	}
	db->live_keys -= n < db->live_keys ? n : db->live_keys;
	p->op->num = (int64_t)n;
}

/* Readers wait while an atomic request's entries are being published
 * (kvs__publish_wait), so none sees some of them but not the others. */
static void publish_begin(struct kvs *db)
{
	atomic_fetch_add_explicit(&db->publishing, 1, memory_order_seq_cst);
}

static void publish_end(struct kvs *db)
{
	atomic_fetch_add_explicit(&db->publishing, 1, memory_order_release);
}

void kvs__round_apply(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	KVS__ASSERT_NOT_IN_RCU();
	struct kvs__writer_buf *wb = db->wbuf;
	bool guard = wb->guard;
	if (guard)
		publish_begin(db);
	kvs__read_lock();
	for (size_t i = 0; i < wb->npends; i++) {
		struct pend *p = &wb->pends[i];
		if (p->type == KVS_REC_FLUSH) {
			apply_flush(db, p);
		} else if (p->type == KVS_REC_SET) {
			struct kvs__entry *e = p->entry;
			struct kvs__entry *old = kvs__index_put(db->index, p->hash, e);
			p->seg->live_bytes += p->rec_len;
			kvs__version_bump(db, p->hash, p->seq);
			note_expiry(db, p, old);
			if (old)
				retire_entry(db, old);
			else
				db->live_keys++;
			p->entry = NULL;
			unsigned delay = kvs__testhook_publish_delay();
			if (delay)
				usleep(delay);
		} else {
			struct kvs__entry *old = kvs__index_lookup(
				db->index, p->hash, p->key, p->klen);
			p->seg->dead_bytes += p->rec_len; /* the tombstone */
			if (old) {
				/* Expiring is not a change WATCH sees. */
				if (!p->reap)
					kvs__version_bump(db, p->hash, p->seq);
				note_expiry(db, p, old);
				kvs__index_del(db->index, old);
				retire_entry(db, old);
				db->live_keys--;
			}
		}
	}
	kvs__read_unlock();
	if (guard)
		publish_end(db);
}

void kvs__round_discard(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	for (size_t i = 0; i < wb->npends; i++)
		if (wb->pends[i].entry)
			kvs__entry_free(db->index, wb->pends[i].entry);
}

