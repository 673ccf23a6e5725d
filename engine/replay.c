/* replay.c - what recovery does with each record it reads (recovery.c
 * reads the files): a SET or REMOVE goes to the index, the newest write of
 * a key winning by sequence number, never by file order; a FLUSH kills
 * every older record; a transaction marker only counts.  Then, once every
 * file is read, the tombstones kept meanwhile and the keys older than the
 * newest FLUSH are dropped.  The opener's thread (the writer to be). */
#include "engine_int.h"

#include <stdlib.h>

/* Account a record that no index entry points at. */
static void count_dead(struct kvs__seg *seg, uint64_t len)
{
	seg->dead_bytes += len;
}

/* The sequence number of the record e points at (entries do not keep it:
 * only recovery needs it, for a key written more than once).  A record is
 * a CBOR array whose first item is the sequence number. */
static int entry_seq(const struct kvs__entry *e, uint64_t *seq)
{
	const struct kvs__seg *seg = e->seg;
	unsigned char buf[10];
	const unsigned char *p;
	size_t n = e->rec_len < sizeof buf ? e->rec_len : sizeof buf;

	if (seg->map && (uint64_t)e->off + n <= seg->map_len) {
		p = seg->map + e->off;
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

/* Apply one SET or REMOVE record found at recovery.  Entries that are
 * replaced are freed at once: no reader exists before kvs_open returns. */
static int replay(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		  const struct kvs_record *rec)
{
	if (rec->type != KVS_REC_SET && rec->type != KVS_REC_REMOVE)
		return KVS_OK;
	uint64_t hash = kvs__index_hash(db->index, rec->key, rec->klen);
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

	/* One walk of the chain for a key seen for the first time (the common
	 * case); a second one only to replace an older record of the key.
	 * Each table call is its own short read-side section (cds_lfht's
	 * rule); reading the older record's seq, which may read the disk,
	 * is outside any.  prev stays valid in between: this thread is the
	 * only one that changes the table, and it has not retired prev. */
	kvs__read_lock();
	struct kvs__entry *prev = kvs__index_add_unique(db->index, hash, e);
	kvs__read_unlock();
	if (prev) {
		uint64_t prev_seq = 0;
		int rc = entry_seq(prev, &prev_seq);
		if (rc != KVS_OK) {
			kvs__entry_free(db->index, e);
			return rc;
		}
		if (prev_seq > rec->seq) {
			kvs__entry_free(db->index, e); /* never published */
			count_dead(seg, rec->length); /* an older write */
			return KVS_OK;
		}
		kvs__read_lock();
		prev = kvs__index_put(db->index, hash, e);
		kvs__read_unlock();
	}
	if (tomb) {
		count_dead(seg, rec->length);
		db->rec.tombs++;
	} else {
		seg->live_bytes += rec->length;
		if (rec->expire_ms)
			kvs__expire_add(&db->exp, hash, rec->expire_ms);
	}
	if (!prev && (++db->rec.entries & 0xffff) == 0) {
		/* Grow the table as it fills (outside any read-side
		 * section, as kvs__index_grow requires). */
		kvs__index_grow(db->index, db->rec.entries + 0xffff);
	}
	if (prev) {
		if (prev->vlen != KVS__TOMB) {
			prev->seg->live_bytes -= prev->rec_len;
			prev->seg->dead_bytes += prev->rec_len;
			if (kvs__entry_expire(prev))
				kvs__expire_del(&db->exp,
						kvs__entry_expire(prev));
		} else {
			db->rec.tombs--;
		}
		kvs__index_retire(db->index, prev);
	}
	return KVS_OK;
}

/* Apply any record found at recovery: a SET or REMOVE goes to the index; a
 * FLUSH kills every record older than it (applied once all are loaded, by
 * drop_dead); a transaction marker only counts in its segment. */
int kvs__replay_record(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		       const struct kvs_record *rec)
{
	if (rec->type == KVS_REC_FLUSH) {
		count_dead(seg, rec->length); /* a tombstone of every key */
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
	kvs__index_for_each(ht, &it, e) {
		if (e->vlen == KVS__TOMB) {
			cds_lfht_del(ht, &e->node);
			kvs__index_retire(db->index, e);
		} else if (flushed(db, e)) {
			e->seg->live_bytes -= e->rec_len;
			e->seg->dead_bytes += e->rec_len;
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

