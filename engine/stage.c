/* stage.c - staging a round's operations: each operation's condition (NX,
 * XX, a REMOVE of a missing key), read-modify-write (INCR, an update op's
 * callback) and expiry are decided against every earlier write, this
 * round's included (the overlay: a small hash table of the round's keys),
 * its record encoded into the round buffer, and its index entry prepared;
 * apply.c publishes the entries once the bytes are written.  Also the
 * records with no key: a flush, and the markers around an atomic request.
 * Writer thread only. */
#include "round.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the round's overlay ---------------------------------------------------- */

static struct oslot *overlay_find(struct kvs__writer_buf *wb, uint64_t hash,
				  const void *key, size_t klen)
{
	if (!wb->slots_cap)
		return NULL;
	size_t mask = wb->slots_cap - 1;
	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		struct oslot *s = &wb->slots[i];
		if (s->gen != wb->gen)
			return s;
		if (s->hash != hash)
			continue;
		const struct pend *p = &wb->pends[s->pend];
		const void *pk = p->type == KVS_REC_SET ? p->entry->key : p->key;
		size_t pkl = p->type == KVS_REC_SET ? kvs__entry_klen(p->entry)
						 : p->klen;
		if (pkl == klen && memcmp(pk, key, klen) == 0)
			return s;
	}
}

static int overlay_rehash(struct kvs__writer_buf *wb, size_t cap)
{
	struct oslot *old = wb->slots;
	size_t oldcap = wb->slots_cap;
	struct oslot *n = kvs__calloc(cap, sizeof *n);
	if (!n)
		return KVS_ENOMEM;
	wb->slots = n;
	wb->slots_cap = cap;
	uint64_t gen = wb->gen;
	wb->gen = 1; /* fresh table: every slot has gen 0 */
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].gen != gen)
			continue;
		size_t mask = cap - 1, j = old[i].hash & mask;
		while (n[j].gen == wb->gen)
			j = (j + 1) & mask;
		n[j] = old[i];
		n[j].gen = wb->gen;
	}
	free(old);
	return KVS_OK;
}

/* Remember that pends[pi] is now the latest write of its key. */
static int overlay_note(struct kvs__writer_buf *wb, uint64_t hash,
			const void *key, size_t klen, size_t pi)
{
	if ((wb->slots_used + 1) * 2 > wb->slots_cap) {
		size_t cap = wb->slots_cap ? wb->slots_cap * 2 : 256;
		if (overlay_rehash(wb, cap) != KVS_OK)
			return KVS_ENOMEM;
	}
	struct oslot *s = overlay_find(wb, hash, key, klen);
	if (s->gen != wb->gen) {
		s->gen = wb->gen;
		s->hash = hash;
		wb->slots_used++;
	}
	s->pend = pi;
	return KVS_OK;
}

/* The key's state counting this round's writes.  Returns KVS_OK (present),
 * KVS_ENOTFOUND (absent, or expired), or a read error.  With num != NULL,
 * also parses the value as an integer: *is_int says whether it is one.
 * With expire != NULL, *expire is the key's expiry time (0: none). */
static int key_state(struct kvs *db, uint64_t hash, const void *key,
		     size_t klen, int64_t *num, bool *is_int, int64_t *expire)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct oslot *s = overlay_find(wb, hash, key, klen);
	if (expire)
		*expire = 0;
	if (s && s->gen == wb->gen && s->pend >= wb->flush_at) {
		const struct pend *p = &wb->pends[s->pend];
		if (p->type != KVS_REC_SET ||
		    (p->expire_ms && p->expire_ms <= kvs_now_ms()))
			return KVS_ENOTFOUND;
		if (num)
			*is_int = p->is_num ? (*num = p->num, true)
					    : kvs_parse_int64(p->val, p->vlen, num);
		if (expire)
			*expire = p->expire_ms;
		return KVS_OK;
	}
	if (wb->flush_at)
		return KVS_ENOTFOUND; /* a flush staged in this round */
	int rc = KVS_OK;
	kvs__read_lock();
	struct kvs__entry *e = kvs__index_lookup(db->index, hash, key, klen);
	int64_t at = e ? kvs__entry_expire(e) : 0;
	if (!e || (at && at <= kvs_now_ms())) {
		rc = KVS_ENOTFOUND;
	} else if (num) {
		unsigned char buf[20];
		*is_int = false;
		if (e->vlen <= sizeof buf &&
		    (rc = kvs__read_value(db, e, buf)) == KVS_OK)
			*is_int = kvs_parse_int64(buf, e->vlen, num);
	}
	if (rc == KVS_OK && expire)
		*expire = at;
	kvs__read_unlock();
	return rc;
}

/* A reap (expire.c): write its REMOVE only if the key's newest write is
 * still an entry of the index that has expired (the reaping request runs
 * first in its round; a key listed twice is skipped the second time). */
static bool reap_due(struct kvs *db, struct kvs_op *op, uint64_t hash)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct oslot *s = overlay_find(wb, hash, op->key, op->klen);
	if (s && s->gen == wb->gen)
		return op->result = KVS_ENOTFOUND, false;
	kvs__read_lock();
	struct kvs__entry *e = kvs__index_lookup(db->index, hash, op->key,
						 op->klen);
	bool due = e && kvs__entry_expired(e, kvs_now_ms());
	kvs__read_unlock();
	op->result = due ? KVS_OK : KVS_ENOTFOUND;
	return due;
}

/* The update buffer kept between update ops: bigger ones are freed. */
#define UBUF_KEEP (1u << 20)

/* The key's state for an update callback, counting this round's writes:
 * u->found (false for an expired key), u->val/u->vlen (the value is copied
 * into the writer's update buffer when it lies in a segment), u->expire_ms,
 * u->version.  KVS_OK or a read error. */
static int update_state(struct kvs *db, uint64_t hash, struct kvs_update *u)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct oslot *s = overlay_find(wb, hash, u->key, u->klen);
	int rc = KVS_OK;

	u->version = atomic_load_explicit(kvs__version_slot(db, hash),
					  memory_order_relaxed);
	if (wb->flush_at)
		/* A flush in this round changed every key. */
		u->version = wb->pends[wb->flush_at - 1].seq;
	if (s && s->gen == wb->gen && s->pend >= wb->flush_at) {
		const struct pend *p = &wb->pends[s->pend];
		/* Staged in this round, so newer than every counter: a WATCH
		 * check after it in the round must see the change. */
		u->version = p->seq;
		if (p->type != KVS_REC_SET ||
		    (p->expire_ms && p->expire_ms <= kvs_now_ms()))
			return KVS_OK;
		u->found = true;
		u->expire_ms = p->expire_ms;
		if (p->is_num) {
			int n = snprintf(wb->numbuf, sizeof wb->numbuf, "%lld",
					 (long long)p->num);
			u->val = wb->numbuf;
			u->vlen = (size_t)n;
		} else {
			u->val = p->vlen ? p->val : "";
			u->vlen = p->vlen;
		}
		return KVS_OK;
	}
	if (wb->flush_at)
		return KVS_OK;
	kvs__read_lock();
	struct kvs__entry *e = kvs__index_lookup(db->index, hash, u->key,
						 u->klen);
	int64_t at = e ? kvs__entry_expire(e) : 0;
	if (e && !(at && at <= kvs_now_ms())) {
		size_t n = e->vlen;
		u->expire_ms = at;
		if (!kvs__round_grow((void **)&wb->ubuf, &wb->ubuf_cap,
				     n ? n : 1, 1))
			rc = kvs__err(KVS_ENOMEM, "out of memory");
		else if ((rc = kvs__read_value(db, e, wb->ubuf)) == KVS_OK) {
			u->found = true;
			u->val = wb->ubuf;
			u->vlen = n;
		}
	}
	kvs__read_unlock();
	return rc;
}

/* ---- staging one operation -------------------------------------------------- */

/* The value an operation writes: the caller's, or INCR's new number. */
struct staged_val {
	const void *p;
	size_t len;
	bool is_num;
	int64_t num;
	char numbuf[24];
	int64_t expire_ms; /* the key's expiry after the write; 0: none */
	bool remove;       /* a SET whose time has passed: write a REMOVE */
	bool reap;         /* a REMOVE of a key that expired (expire.c) */
};

/* The expiry time a SET writes: its own, or with KVS_SET_KEEPTTL the key's
 * current one; a time not after now turns it into the removal of a present
 * key (false: nothing to write, the key being absent). */
static bool set_expiry(struct kvs_op *op, bool present, int64_t cur,
		       struct staged_val *sv)
{
	sv->expire_ms = (op->flags & KVS_SET_KEEPTTL) ? cur : op->expire_ms;
	if (op->expire_ms && op->expire_ms <= kvs_now_ms()) {
		sv->remove = true;
		sv->expire_ms = 0;
		sv->len = 0;
		return present;
	}
	return true;
}

/* Run an update op's callback on the key's state and turn its decision
 * into the record to write: true (and *type, *sv) if it writes one. */
static bool decide_update(struct kvs *db, struct kvs_op *op, uint64_t hash,
			  enum kvs_record_type *type, struct staged_val *sv)
{
	struct kvs_update u = { .key = op->key, .klen = op->klen };
	int rc = update_state(db, hash, &u);
	if (rc != KVS_OK)
		return op->result = rc, false;
	op->result = op->update(op->uctx, &u);
	/* A huge value read once does not stay in memory for the store's
	 * life: the buffer goes back to the heap after a big read. */
	if (db->wbuf->ubuf_cap > UBUF_KEEP) {
		free(db->wbuf->ubuf);
		db->wbuf->ubuf = NULL;
		db->wbuf->ubuf_cap = 0;
	}
	switch (u.action) {
	case KVS_UPD_SET:
		if (u.new_vlen > KVS_MAX_VALUE)
			return op->result = KVS_ETOOBIG, false;
		sv->p = u.new_vlen ? u.new_val : "";
		sv->len = u.new_vlen;
		sv->expire_ms = u.new_expire_ms;
		if (u.new_expire_ms > 0 && u.new_expire_ms <= kvs_now_ms()) {
			/* A time already past removes the key (as Redis). */
			*type = KVS_REC_REMOVE;
			sv->len = 0;
			sv->expire_ms = 0;
			return u.found;
		}
		return true;
	case KVS_UPD_REMOVE:
		*type = KVS_REC_REMOVE;
		sv->len = 0;
		return u.found;
	case KVS_UPD_ABORT:
		db->wbuf->aborted = true;
		return false;
	case KVS_UPD_KEEP:
	default:
		return false;
	}
}

/* Decide op against every earlier write, this round's included (the
 * writer is the only one that writes): true if it writes a record (*type
 * and *sv say which), false if its outcome is already op->result (a failed
 * condition, a value that is not an integer, a read error, an update that
 * writes nothing). */
static bool decide(struct kvs *db, struct kvs_op *op, uint64_t hash,
		   enum kvs_record_type *type, struct staged_val *sv)
{
	int rc;
	op->result = KVS_OK;
	*type = op->type == KVS_OP_REMOVE ? KVS_REC_REMOVE : KVS_REC_SET;
	sv->p = op->val;
	sv->len = op->type == KVS_OP_REMOVE ? 0 : op->vlen;
	sv->is_num = false;
	sv->num = 0;
	sv->expire_ms = 0;
	sv->remove = sv->reap = false;
	if (kvs__expire_is_reap(&db->exp, op))
		return sv->reap = true, reap_due(db, op, hash);
	if (op->type == KVS_OP_UPDATE)
		return decide_update(db, op, hash, type, sv);
	if (op->type == KVS_OP_REMOVE || (op->type == KVS_OP_SET &&
					  (op->flags || op->expire_ms))) {
		int64_t cur = 0;
		rc = key_state(db, hash, op->key, op->klen, NULL, NULL, &cur);
		if (rc != KVS_OK && rc != KVS_ENOTFOUND)
			return op->result = rc, false;
		bool present = rc == KVS_OK;
		if (op->type == KVS_OP_REMOVE && !present)
			return op->result = KVS_ENOTFOUND, false;
		if ((op->flags & KVS_SET_NX) && present)
			return op->result = KVS_EEXIST, false;
		if ((op->flags & KVS_SET_XX) && !present)
			return op->result = KVS_ENOTFOUND, false;
		if (op->type == KVS_OP_SET)
			return set_expiry(op, present, cur, sv);
	} else if (op->type == KVS_OP_INCR) {
		bool is_int = true;
		int64_t num = 0;
		rc = key_state(db, hash, op->key, op->klen, &num, &is_int,
			       &sv->expire_ms);
		if (rc == KVS_ENOTFOUND)
			num = 0;
		else if (rc != KVS_OK)
			return op->result = rc, false;
		else if (!is_int)
			return op->result = KVS_ENOTINT, false;
		if (__builtin_add_overflow(num, op->delta, &num))
			return op->result = KVS_EOVERFLOW, false;
		op->num = sv->num = num;
		sv->is_num = true;
		sv->len = (size_t)snprintf(sv->numbuf, sizeof sv->numbuf, "%lld",
					   (long long)num);
		sv->p = sv->numbuf;
	}
	return true;
}

/* Queue the record's index update, published by kvs__round_apply; a SET
 * gets its (unpublished) entry now. */
static int add_pend(struct kvs *db, const struct kvs_op *op,
		    enum kvs_record_type type, uint64_t hash,
		    struct kvs__seg *seg, uint64_t seq, uint64_t rec_len,
		    const struct staged_val *sv)
{
	struct kvs__writer_buf *wb = db->wbuf;
	if (!kvs__round_grow((void **)&wb->pends, &wb->pends_cap,
			     wb->npends + 1, sizeof *wb->pends))
		return kvs__round_nomem();
	struct pend *p = &wb->pends[wb->npends];
	memset(p, 0, sizeof *p);
	p->type = type;
	p->hash = hash;
	p->seg = seg;
	p->off = seg->size;
	p->rec_len = (uint32_t)rec_len;
	p->seq = seq;
	p->reap = sv->reap;
	if (type == KVS_REC_SET) {
		p->expire_ms = sv->expire_ms;
		p->entry = kvs__entry_new_x(db->index, op->key, op->klen,
					    sv->expire_ms);
		if (!p->entry)
			return kvs__round_nomem();
		p->entry->seg = seg;
		p->entry->off = (uint32_t)seg->size;
		p->entry->rec_len = (uint32_t)rec_len;
		p->entry->vlen = (uint32_t)sv->len;
		p->val = sv->p;
		p->vlen = sv->len;
		p->is_num = sv->is_num;
		p->num = sv->num;
	} else {
		p->key = op->key;
		p->klen = op->klen;
	}
	wb->npends++;
	if (overlay_note(wb, hash, op->key, op->klen, wb->npends - 1) != KVS_OK)
		return kvs__round_nomem();
	return KVS_OK;
}

/* Account a staged record: the active segment's append offset, counts,
 * chain and hint offsets, and the store's sequence number and counters
 * move as if it were written.  Its bytes are in the round buffer until
 * kvs__round_flush; a refused round is taken back by kvs__round_undo. */
static void account(struct kvs *db, struct kvs__seg *seg, uint64_t seq,
		    uint64_t rec_len, const unsigned char crcb[5])
{
	kvs__hint_add(&seg->hint, seg->size);
	db->next_seq++;
	seg->size += rec_len;
	seg->records++;
	seg->last_seq = seq;
	if (seq < seg->min_seq)
		seg->min_seq = seq;
	seg->chain = kvs__crc32c(seg->chain, crcb + 1, 4);
	db->counters.writes++;
	db->counters.bytes_written += rec_len;
}

/* The active segment for a record of rec_len bytes: a new one when it
 * does not fit (with room left for the footer), unless the active one is
 * empty - a record larger than a segment gets one of its own - or the
 * request is atomic.  writer_round rotates between requests, so this
 * happens only inside a request bigger than a segment: the rotation seals
 * the request's first records, and a failure of the rest can no longer be
 * undone.  An atomic request is never split (its records, and the markers
 * around them, stay in one segment): it may make the segment bigger than
 * segment_size instead, up to the 4 GiB that offsets can address. */
static int room_for(struct kvs *db, uint64_t rec_len, struct kvs__seg **out)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct kvs__seg *seg = db->active;
	int rc;
	if (wb->atomic) {
		if (seg->size + rec_len + KVS__FOOTER_MAX > UINT32_MAX)
			return kvs__err(KVS_ETOOBIG, "an atomic batch of over "
					"4 GiB");
	} else if (seg->records > 0 &&
		   seg->size + rec_len + KVS__FOOTER_MAX >
			   db->opt.segment_size) {
		if ((rc = kvs__rotate(db)) != KVS_OK)
			return rc;
		wb->split = true;
		seg = db->active;
	}
	*out = seg;
	return KVS_OK;
}

/* Stage a record with no key (TXN, FLUSH) encoded in rec[0..len). */
static int stage_keyless(struct kvs *db, enum kvs_record_type type,
			 struct kvs_op *op, const unsigned char *rec,
			 size_t len)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct kvs__seg *seg;
	uint64_t seq = db->next_seq;
	int rc = room_for(db, len, &seg);
	if (rc != KVS_OK)
		return rc;
	if (type == KVS_REC_FLUSH) {
		if (!kvs__round_grow((void **)&wb->pends, &wb->pends_cap,
				     wb->npends + 1, sizeof *wb->pends))
			return kvs__round_nomem();
		struct pend *p = &wb->pends[wb->npends++];
		memset(p, 0, sizeof *p);
		p->type = type;
		p->op = op;
		p->seg = seg;
		p->off = seg->size;
		p->rec_len = (uint32_t)len;
		p->seq = seq;
		wb->flush_at = wb->npends;
		wb->guard = true;
	}
	if (kvs__round_add(wb, rec, len, true))
		return kvs__round_nomem();
	account(db, seg, seq, len, rec + len - 5);
	return KVS_OK;
}

int kvs__stage_txn_mark(struct kvs *db, uint64_t open_seq)
{
	KVS__ASSERT_WRITER(db);
	unsigned char rec[KVS__TXN_MAX];
	size_t len = kvs__rec_encode_txn(rec, db->next_seq, open_seq);
	return stage_keyless(db, KVS_REC_TXN, NULL, rec, len);
}

static int stage_flush(struct kvs *db, struct kvs_op *op)
{
	unsigned char rec[KVS__FLUSH_MAX];
	size_t len = kvs__rec_encode_flush(rec, db->next_seq);
	op->result = KVS_OK;
	op->num = 0;
	return stage_keyless(db, KVS_REC_FLUSH, op, rec, len);
}

int kvs__stage_op(struct kvs *db, struct kvs_op *op)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__writer_buf *wb = db->wbuf;
	enum kvs_record_type type;
	if (op->type == KVS_OP_FLUSH)
		return stage_flush(db, op);
	uint64_t hash = kvs__index_hash(db->index, op->key, op->klen);
	unsigned char head[KVS__REC_MAX_HEAD], vhead[9], crcb[5];
	struct staged_val sv;
	int rc;

	if (!decide(db, op, hash, &type, &sv))
		return KVS_OK;
	if (sv.remove)
		type = KVS_REC_REMOVE;
	uint64_t seq = db->next_seq;
	size_t hlen = kvs__rec_encode_head_x(head, type, seq, sv.expire_ms,
					     op->klen);
	size_t vhlen = type == KVS_REC_SET ? kvs__rec_encode_vhead(vhead, sv.len)
					   : 0;
	uint64_t rec_len = hlen + op->klen + vhlen + sv.len + 5;

	struct kvs__seg *seg;
	if ((rc = room_for(db, rec_len, &seg)) != KVS_OK)
		return rc;
	if ((rc = add_pend(db, op, type, hash, seg, seq, rec_len, &sv)))
		return rc;

	uint32_t crc = kvs__crc32c(0, head, hlen);
	crc = kvs__crc32c(crc, op->key, op->klen);
	if (type == KVS_REC_SET) {
		crc = kvs__crc32c(crc, vhead, vhlen);
		crc = kvs__crc32c(crc, sv.p, sv.len);
	}
	kvs__rec_encode_crc(crcb, crc);
	/* INCR's number is copied: sv dies with this call. */
	if (kvs__round_add(wb, head, hlen, true) ||
	    kvs__round_add(wb, op->key, op->klen, op->klen <= COPY_MAX) ||
	    (type == KVS_REC_SET &&
	     (kvs__round_add(wb, vhead, vhlen, true) ||
	      kvs__round_add(wb, sv.p, sv.len,
			     sv.is_num || sv.len <= COPY_MAX))) ||
	    kvs__round_add(wb, crcb, 5, true))
		return kvs__round_nomem();
	account(db, seg, seq, rec_len, crcb);
	return KVS_OK;
}
