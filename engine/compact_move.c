/* compact_move.c - moving a pass's live records, writer thread only: the
 * copy (each record of a victim checked against the index, a live one
 * appended unchanged to the output through a buffer) and the index switch
 * (each copied entry that is still current replaced by one pointing at its
 * copy).  Both run in bounded steps that compact.c drives. */
#include "compact_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* ---- the copy ------------------------------------------------------------ */

int kvs__cp_out_flush(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	if (cp->olen == 0)
		return KVS_OK;
	uint64_t at = cp->out->size - cp->olen;
	int e = kvs__testhook_fail(KVS__TH_OUT_WRITE);
	if (!e)
		e = kvs__io_pwrite_all(cp->out->fd, cp->obuf, cp->olen,
				       (off_t)at);
	if (e)
		return kvs__err_errno(KVS_EIO, e,
				      "%s" KVS__TMP_SUFFIX ": write",
				      cp->out->path);
	cp->olen = 0;
	/* Start the write-back now and then, in the background, so that the
	 * disk writes are spread over the pass and the final fdatasync has
	 * little left to wait for.  A failure here only costs that. */
	if (cp->out->size - cp->written_back >= WRITEBACK_EVERY) {
		(void)sync_file_range(cp->out->fd, (off_t)cp->written_back,
				      (off_t)(cp->out->size - cp->written_back),
				      SYNC_FILE_RANGE_WRITE);
		cp->written_back = cp->out->size;
	}
	return KVS_OK;
}

/* Room for `len` more bytes in the output buffer (flushing it first if
 * need be): where they go, or NULL with *rc set. */
static unsigned char *out_reserve(struct kvs *db, size_t len, int *rc)
{
	struct kvs__compact *cp = db->cp;
	if (cp->olen + len > cp->ocap) {
		/* Bytes are buffered only once committed: the file exists. */
		if (cp->olen && (*rc = kvs__cp_out_flush(db)) != KVS_OK)
			return NULL;
		if (len > cp->ocap) {
			size_t cap = len > OBUF_MAX ? len : OBUF_MAX;
			unsigned char *p = realloc(cp->obuf, cap);
			if (!p) {
				*rc = kvs__err(KVS_ENOMEM, "out of memory");
				return NULL;
			}
			cp->obuf = p;
			cp->ocap = cap;
		}
	}
	return cp->obuf + cp->olen;
}

/* Create the pass's output file if it has none yet. */
static int out_open(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	if (cp->out)
		return KVS_OK;
	/* An id below the active segment's if one is left (then no rotation
	 * is needed when the output is sealed). */
	bool spare = db->spare_id < db->spare_end;
	uint32_t id = spare ? db->spare_id : db->next_seg_id;
	if (id == KVS__SEG_ID_MAX)
		return kvs__err(KVS_EIO, "no segment number left");
	int e = kvs__testhook_fail(KVS__TH_CREATE);
	int rc = e ? kvs__err_errno(KVS_EIO, e,
				    "%s/%010u.seg" KVS__TMP_SUFFIX ": create",
				    db->dir, id)
		   : kvs__seg_create(db->dir, id, true, &cp->out);
	if (rc)
		return rc;
	if (spare)
		db->spare_id++;
	else
		db->next_seg_id++;
	cp->written_back = 0;
	return KVS_OK;
}

/* Keep the record placed at obuf + olen (r decoded from those bytes). */
static void out_commit(struct kvs *db, const struct kvs_record *r)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *o = cp->out;
	const unsigned char *rec = cp->obuf + cp->olen;
	cp->olen += r->length;
	kvs__hint_add(&o->hint, o->size);
	o->size += r->length;
	o->records++;
	o->last_seq = r->seq;
	if (r->seq < o->min_seq)
		o->min_seq = r->seq;
	o->chain = kvs__crc32c(o->chain, rec + r->length - 4, 4);
}

/* Write r (a SET whose key has expired) as a REMOVE of the same seq and
 * key at dst (r->length bytes). */
static void encode_remove(unsigned char *dst, const struct kvs_record *r)
{
	size_t h = kvs__rec_encode_head(dst, KVS_REC_REMOVE, r->seq, r->klen);
	memcpy(dst + h, r->key, r->klen);
	kvs__rec_encode_crc(dst + h + r->klen,
			    kvs__crc32c(0, dst, h + r->klen));
}

/* Copy (or drop) the record at the cursor; returns its length, or 0 at the
 * victim's footer, or a negative error, or KVS__CP_FAULT.  Every read of the
 * victim's mapping here is guarded (its file may have been cut short under
 * the process: mapguard.c): a fault jumps back to the sigsetjmp, leaving the
 * read-side section if it was in one.  The record is checked (CRC) and
 * decided on in place, and only a kept one is copied into the output
 * buffer; out_reserve runs inside the guard but touches no mapping, so a
 * fault can only come after it is complete. */
int64_t kvs__cp_copy_one(struct kvs *db, struct kvs__seg *v)
{
	struct kvs__compact *cp = db->cp;
	const unsigned char *rec = v->map + cp->cursor;
	struct kvs_record r;
	uint32_t crc;
	const char *why = "";
	volatile bool locked = false;
	int rc = KVS_OK;

	KVS__ASSERT_NOT_IN_RCU(); /* the fault path leaves its own section */

	if (sigsetjmp(kvs__mapguard.jb, 0) != 0) {
		if (locked)
			kvs__read_unlock();
		return KVS__CP_FAULT;
	}
	KVS__MAP_ARM();
	enum kvs__dec d = kvs__rec_decode(rec, v->map_len - cp->cursor, &r,
					  &crc, &why);
	if (d != KVS__DEC_OK || r.type == KVS_REC_FOOTER) {
		KVS__MAP_DISARM();
		if (d != KVS__DEC_OK)
			return kvs__err(KVS_ECORRUPT,
					"%s: bad record at offset %llu: %s",
					v->path, (unsigned long long)cp->cursor,
					why);
		return 0;
	}
	uint64_t others = v == cp->min1_seg ? cp->min2 : cp->min1;
	uint64_t hash = 0;
	bool keep, as_remove = false;
	if (r.type == KVS_REC_TXN) {
		/* A TXN marker of a sealed segment has done its job (its batch
		 * is complete), and the output is no transaction: its records
		 * are all durable before any is used. */
		keep = false;
	} else if (r.type == KVS_REC_FLUSH) {
		/* A tombstone of every key: the tombstone rule, with no key
		 * that the index could hold newer. */
		keep = others < r.seq;
	} else if (r.type == KVS_REC_SET && !r.expire_ms && !v->deadmap_lost) {
		/* A SET without an expiry time is live unless marked dead
		 * (struct kvs__seg's deadmap): no index lookup.  (The switch
		 * looks each copy up anyway, so a copy made live by mistake
		 * would only be garbage in the output.) */
		keep = !kvs__seg_marked_dead(v, cp->cursor);
		if (keep)
			hash = kvs__index_hash(db->index, r.key, r.klen);
	} else if (r.type == KVS_REC_REMOVE && others >= r.seq) {
		keep = false; /* no older record of any key is left */
	} else {
		hash = kvs__index_hash(db->index, r.key, r.klen);
		kvs__testhook_count_cp_lookup();
		locked = true;
		kvs__read_lock();
		struct kvs__entry *e = kvs__index_lookup(db->index, hash, r.key,
							 r.klen);
		if (r.type == KVS_REC_SET) {
			keep = e && e->seg == v && e->off == cp->cursor;
			/* A SET whose expiry time has passed, the key being
			 * absent from the index.  It may be all that hides an
			 * older value of the key in another file (one that
			 * expired while the store was closed has no REMOVE
			 * after it), so it is a tombstone for the rule below,
			 * and is kept as a REMOVE of the same seq.
			 * Not one that has yet to expire: a REMOVE or FLUSH
			 * after it made it dead, and that record may still be
			 * unsynced in the active segment.  A REMOVE of this
			 * seq in the output (which is synced) would make the
			 * removal durable before the writes that came ahead
			 * of it.  Dropping it is safe: the victim stays on
			 * disk until the active segment is synced. */
			if (!keep && !e && r.expire_ms && others < r.seq &&
			    r.expire_ms <= kvs_now_ms())
				keep = as_remove = true;
		} else {
			keep = !e && others < r.seq;
		}
		kvs__read_unlock();
		locked = false;
	}
	unsigned char *dst = NULL;
	int64_t in_len = (int64_t)r.length; /* the victim's bytes consumed */
	if (as_remove) {
		r.type = KVS_REC_REMOVE;
		r.length = kvs__rec_len_of(KVS_REC_REMOVE, r.seq, r.klen, 0);
		r.expire_ms = 0;
		if ((dst = out_reserve(db, r.length, &rc)) != NULL)
			encode_remove(dst, &r);
	} else if (keep && (dst = out_reserve(db, r.length, &rc)) != NULL) {
		memcpy(dst, rec, r.length);
	}
	KVS__MAP_DISARM();
	if (!keep)
		return in_len;
	if (!dst)
		return rc;

	uint32_t new_off = (uint32_t)(cp->out ? cp->out->size : KVS__HDR_LEN);
	if ((rc = out_open(db)) != KVS_OK)
		return rc;
	out_commit(db, &r);
	if (r.type != KVS_REC_SET) {
		/* A tombstone that must stay is not garbage: the output must
		 * not become a candidate again at once because of it. */
		cp->out->kept_bytes += r.length;
		if (r.seq > cp->out->kept_max_seq)
			cp->out->kept_max_seq = r.seq;
		return in_len;
	}
	if (cp->nmoved == cp->capmoved) {
		size_t cap = cp->capmoved ? cp->capmoved * 2 : 1024;
		struct moved *m = realloc(cp->moved, cap * sizeof *m);
		if (!m)
			return kvs__err(KVS_ENOMEM, "out of memory");
		cp->moved = m;
		cp->capmoved = cap;
	}
	cp->moved[cp->nmoved++] = (struct moved){
		.key = r.key, .klen = (uint32_t)r.klen,
		.old_off = (uint32_t)cp->cursor, .new_off = new_off,
		.rec_len = (uint32_t)r.length, .vlen = (uint32_t)r.vlen,
		.hash = hash, .victim = v,
	};
	return in_len;
}

/* ---- the index switch ---------------------------------------------------- */

/* The copy m in the output is garbage: its key was written or removed
 * since, or its victim stays. */
static void copy_dead(struct kvs *db, struct kvs__seg *out,
		      const struct moved *m)
{
	out->dead_bytes += m->rec_len;
	kvs__seg_mark_dead(out, m->new_off, db->opt.segment_size);
}

/* Switch up to SWITCH_CHUNK still-current entries to their copies in the
 * output (sealed, durable and published already); then the victims go. */
void kvs__cp_switch_some(struct kvs *db,
			 kvs__clients_waiting_fn *clients_waiting)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *out = cp->out;
	size_t chunk = SWITCH_CHUNK + cp->burst / 64; /* ~ one per record */
	size_t end = cp->nmoved - cp->si > chunk ? cp->si + chunk : cp->nmoved;
	size_t i;
	KVS__ASSERT_NOT_IN_RCU();
	kvs__read_lock();
	for (i = cp->si; i < end; i++) {
		if (i - cp->si >= SWITCH_MIN &&
		    kvs__cp_should_yield(db, clients_waiting))
			break;
		const struct moved *m = &cp->moved[i];
		if (!m->victim->retiring) {
			/* The victim stays (a page of it could not be read,
			 * or an entry of it could not be switched): so do
			 * all its entries. */
			copy_dead(db, out, m);
			continue;
		}
		/* The key is read from the victim's mapping, guarded; the
		 * copy is what the index calls see. */
		if (m->klen > cp->kcap) {
			unsigned char *k = realloc(cp->kbuf, m->klen);
			if (!k) {
				m->victim->retiring = false;
				copy_dead(db, out, m);
				continue;
			}
			cp->kbuf = k;
			cp->kcap = m->klen;
		}
		if (!kvs__map_copy(cp->kbuf, m->key, m->klen)) {
			(void)kvs__err(KVS_EIO, "%s: mapped page could not be "
				       "read (file truncated or I/O error); "
				       "record at offset %u",
				       m->victim->path, m->old_off);
			kvs__note_damage(db, m->victim, EIO);
			m->victim->retiring = false;
			copy_dead(db, out, m);
			continue;
		}
		struct kvs__entry *e =
			kvs__index_lookup(db->index, m->hash, cp->kbuf, m->klen);
		if (!e || e->seg != m->victim || e->off != m->old_off) {
			copy_dead(db, out, m); /* overwritten meanwhile */
			continue;
		}
		struct kvs__entry *n = kvs__entry_new_x(db->index, cp->kbuf,
							m->klen,
							kvs__entry_expire(e));
		if (!n) {
			/* Keep the old entry: the victim then cannot go. */
			m->victim->retiring = false;
			copy_dead(db, out, m);
			continue;
		}
		n->seg = out;
		n->off = m->new_off;
		n->rec_len = m->rec_len;
		n->vlen = m->vlen;
		struct kvs__entry *old = kvs__index_put(db->index, m->hash, n);
		out->live_bytes += m->rec_len;
		kvs__index_retire(db->index, old);
	}
	kvs__read_unlock();
	kvs__cp_pay_burst(cp, (i - cp->si) * 64, SWITCH_CHUNK * 64);
	cp->si = i;
	if (i == cp->nmoved) {
		cp->out = NULL;
		cp->phase = PH_DROP;
	}
}

