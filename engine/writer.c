/* writer.c - the single writer thread: takes every queued request at once,
 * appends their records with as few writes as it can, syncs once for all of
 * them (group commit), then updates the index and wakes the callers.  Also
 * the everysec sync thread.
 *
 * The durability promise, per fsync policy (the caller's kvs_set returns
 * only after the step named here):
 *   always:   the records were written and fdatasync()ed.
 *   everysec: the records were written; the sync thread fdatasyncs the
 *             active segment within about a second.
 *   never:    the records were written; the OS writes them back.
 * In all three an acknowledged write survives SIGKILL, since write() put it
 * in the page cache before the acknowledgement.  Sealing a segment always
 * syncs it, and kvs_close() syncs the active one.
 *
 * Readers see a write only after the index update, which comes after the
 * write() and, under `always`, after the fdatasync: a reader never sees a
 * value that a crash could still take away in that policy.
 *
 * Failures (ARCHITECTURE.md "Failures: which are sticky and which are
 * not").  A round that fails for a shortage before any of it was
 * acknowledged - the disk full (ENOSPC, EDQUOT, EFBIG, a short write), no
 * descriptor (EMFILE, ENFILE) or no space for the next segment, no memory
 * while staging - is refused whole with KVS_ENOSPC (ENOMEM included:
 * write_error tells which) and undone: the active segment is cut back to
 * the round's first byte, its counts, chain, hint offsets and the sequence
 * numbers go back to the round's start (struct mark), the staged index
 * entries are dropped.  The handle stays usable; the next round simply
 * tries again, so writes resume by themselves when the resource comes
 * back.  Sticky (kvs__set_failed, KVS_EIO then KVS_EFAILED) are only: a
 * failed fdatasync or fsync, which is never retried; an undo (truncation)
 * that failed; an I/O error that is not a shortage (EIO, EROFS...); and a
 * failure inside one write call larger than a segment after a rotation
 * sealed its first records (they are durable and cannot be taken back).
 * Rounds rotate between requests, never inside one that fits a segment,
 * so that last case needs a request bigger than a whole segment. */
#include "bgio.h"
#include "compact.h"
#include "engine_int.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Pause rounds (a few microseconds in all) before a waiting thread sleeps:
 * a small write comes back sooner than a futex wake-up reaches a sleeping
 * thread on a VM.  Short, because on a 2-core machine the waiter may be
 * sharing its CPU with the thread it waits for. */
#define SPIN_LOOPS 256

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* Keys and values up to this size are copied into the round's buffer so that
 * many small records go out in one contiguous write; larger ones are written
 * straight from the caller's memory. */
#define COPY_MAX 4096

/* One piece of output: either bytes in the arena (ptr == NULL) or bytes in a
 * caller's buffer, valid until the round completes. */
struct piece {
	const void *ptr;
	size_t off; /* in the arena, when ptr == NULL */
	size_t len;
};

/* A record written in this round whose index update is pending. */
struct pend {
	enum kvs_record_type type;
	struct kvs__entry *entry; /* SET: the new entry, published on apply */
	const void *key;          /* REMOVE */
	size_t klen;
	uint64_t hash;
	struct kvs__seg *seg;
	uint64_t off;
	uint64_t seq;
	uint32_t rec_len;
	/* SET: the value written, for a later INCR of the key in this round
	 * (val points into the caller's op, or is_num holds the number). */
	const void *val;
	size_t vlen;
	bool is_num;
	int64_t num;
};

/* The round's view of keys it has already written, so that a remove after a
 * set of the same key (both in this round) sees the set.  Open addressing;
 * a slot is in use when its gen equals the round's gen. */
struct oslot {
	uint64_t gen;
	uint64_t hash;
	size_t pend; /* index into pends */
};

struct kvs__writer_buf {
	unsigned char *arena;
	size_t arena_len, arena_cap;
	struct piece *pieces;
	size_t npieces, pieces_cap;
	uint64_t base_off;  /* file offset of the first unwritten piece */
	struct pend *pends;
	size_t npends, pends_cap;
	struct oslot *slots;
	size_t slots_cap, slots_used;
	uint64_t gen;
	struct iovec *iov;
	size_t iov_cap;
	/* Where a refused round goes back to (see the top of this file): the
	 * active segment's state and the store's counters at the round's
	 * start, or after the rotation that began it. */
	struct mark {
		struct kvs__seg *seg;
		uint64_t size, records, last_seq, min_seq, next_seq;
		uint64_t writes, bytes_written;
		size_t hint_n;
		uint32_t chain;
	} mark;
	bool wrote; /* out_flush ran: bytes may lie past mark.size */
	bool split; /* a rotation sealed records of this round */
};

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = kvs__realloc(*p, n * elem);
	if (!q)
		return false;
	*p = q;
	*cap = n;
	return true;
}

/* Out of memory while staging: a shortage like a full disk (the round is
 * refused and undone), with ENOMEM as its reason. */
static int nomem(void)
{
	return kvs__err_errno(KVS_ENOSPC, ENOMEM, "staging a write");
}

/* ---- output pieces -------------------------------------------------------- */

static int out_add(struct kvs__writer_buf *wb, const void *p, size_t len,
		   bool copy)
{
	if (len == 0)
		return KVS_OK;
	if (copy) {
		if (!grow((void **)&wb->arena, &wb->arena_cap,
			  wb->arena_len + len, 1))
			return nomem();
		memcpy(wb->arena + wb->arena_len, p, len);
		struct piece *last = wb->npieces ? &wb->pieces[wb->npieces - 1]
						 : NULL;
		if (last && !last->ptr && last->off + last->len == wb->arena_len) {
			last->len += len;
			wb->arena_len += len;
			return KVS_OK;
		}
		if (!grow((void **)&wb->pieces, &wb->pieces_cap, wb->npieces + 1,
			  sizeof *wb->pieces))
			return nomem();
		wb->pieces[wb->npieces++] =
			(struct piece){ NULL, wb->arena_len, len };
		wb->arena_len += len;
		return KVS_OK;
	}
	if (!grow((void **)&wb->pieces, &wb->pieces_cap, wb->npieces + 1,
		  sizeof *wb->pieces))
		return nomem();
	wb->pieces[wb->npieces++] = (struct piece){ p, 0, len };
	return KVS_OK;
}

/* Write every pending piece to the active segment.  KVS_ENOSPC: a shortage
 * (part of the bytes may be in the file: the round's undo cuts them off);
 * KVS_EIO: any other write error. */
static int out_flush(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	if (wb->npieces == 0)
		return KVS_OK;
	if (!grow((void **)&wb->iov, &wb->iov_cap, wb->npieces, sizeof *wb->iov))
		return nomem();
	size_t total = 0;
	for (size_t i = 0; i < wb->npieces; i++) {
		const struct piece *pc = &wb->pieces[i];
		wb->iov[i].iov_base =
			(void *)(pc->ptr ? pc->ptr : wb->arena + pc->off);
		wb->iov[i].iov_len = pc->len;
		total += pc->len;
	}
	wb->wrote = true;
	int e = kvs__io_pwritev_all(db->active->fd, wb->iov, (int)wb->npieces,
				    (off_t)wb->base_off);
	if (e)
		return kvs__err_errno(kvs__errno_transient(e) ? KVS_ENOSPC
							      : KVS_EIO,
				      e, "%s: write", db->active->path);
	wb->base_off += total;
	wb->npieces = 0;
	wb->arena_len = 0;
	atomic_fetch_add(&db->unsynced, total);
	return KVS_OK;
}

/* ---- segment rotation ------------------------------------------------------ */

#define SPARE_IDS 8

/* Mark the handle failed with a whole message (errno included). */
static void fail_msg(struct kvs *db, int errnum, const char *msg)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&db->failed, &expected,
					   errnum ? errnum : EIO))
		kvs__log(db, KVS_LOG_ERROR,
			 "%s; the store refuses writes from now on", msg);
}

/* A failure the handle cannot get over, described by kvs_errmsg(): fail
 * the handle (once) and say KVS_EIO. */
static int fail_hard(struct kvs *db)
{
	fail_msg(db, kvs__errno(), kvs_errmsg());
	return KVS_EIO;
}

/*
 * Seal the active segment and continue in a new one.  The order makes every
 * step before the last undoable, and every crash point recoverable:
 *   1. create the next segment as NNNNNNNNNN.seg.tmp: running out of
 *      descriptors or space here leaves the active segment untouched;
 *   2. write the records staged so far (only a request bigger than a
 *      segment has any), then the footer, and fdatasync;
 *   3. rename the new file into place and fsync the directory;
 *   4. publish the seal (mapping, hint), switch to the new segment, close
 *      the old segment's descriptor.
 * A crash before 3 leaves the sealed or unsealed old segment newest (the
 * open cuts a torn footer, or starts a new segment after a sealed one) and
 * a *.tmp file the open removes; never an older segment without a footer.
 * Returns KVS_OK; KVS_ENOSPC: refused for a shortage (kvs__errno() says
 * which), the active segment as it was but for records staged this round
 * (the caller's undo cuts them off); KVS_EIO: the handle failed.
 */
int kvs__rotate(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	KVS__ASSERT_NOT_IN_RCU();
	struct kvs__seg *old = db->active, *seg = NULL;
	const unsigned char *map = NULL;
	uint64_t footer_off = 0;
	int rc;

	/* Leave SPARE_IDS ids free below the new segment's: compaction
	 * outputs take them, so that they are older than the active segment
	 * (only the newest segment may lack a footer) without another
	 * rotation. */
	uint32_t id = db->next_seg_id;
	if (id == KVS__SEG_ID_MAX) {
		kvs__set_failed(db, ENOSPC, "no segment number left");
		return kvs__err(KVS_EIO, "no segment number left");
	}
	bool spare = id < KVS__SEG_ID_MAX - SPARE_IDS;
	if (spare)
		id += SPARE_IDS;

	if ((rc = kvs__seg_create(db->dir, id, true, &seg)) != KVS_OK) {
		if (rc == KVS_ENOMEM)
			return nomem();
		if (kvs__errno_transient(kvs__errno()))
			return KVS_ENOSPC; /* nothing was left behind */
		return fail_hard(db);
	}
	if ((rc = out_flush(db)) != KVS_OK ||
	    (rc = kvs__seg_seal(old, &footer_off, &map)) != KVS_OK) {
		kvs__seg_discard_tmp(seg);
		return rc == KVS_ENOSPC ? rc : fail_hard(db);
	}
	db->counters.syncs++;
	if ((rc = kvs__seg_publish_tmp(db->dir, seg)) != KVS_OK) {
		if (rc != KVS_ENOSPC)
			return fail_hard(db); /* the dir fsync */
		/* Not renamed: the old segment takes records again. */
		char msg[512];
		snprintf(msg, sizeof msg, "%s", kvs_errmsg());
		int e = kvs__errno();
		kvs__seg_discard_tmp(seg);
		if (kvs__seg_unseal(old, footer_off, map) != KVS_OK)
			return fail_hard(db);
		return kvs__err_errno(KVS_ENOSPC, e, "%s", msg);
	}

	/* Nothing fails from here on. */
	kvs__seg_publish(old, map);
	/* Its hint takes tens of milliseconds for a big segment of small
	 * records: written in the background. */
	kvs__bgio_hint(db->bg, old, footer_off);
	db->spare_id = db->next_seg_id;
	db->spare_end = id;
	db->next_seg_id = id + 1;
	kvs__seg_window(seg, db->opt.segment_size);
	old->next = seg;
	db->active = seg;
	db->wbuf->base_off = seg->size;
	kvs__lock(&db->sync_mu);
	db->sync_seg = seg;
	kvs__unlock(&db->sync_mu);
	kvs__seg_close_fd(db, old);
	return KVS_OK;
}

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
		size_t pkl = p->type == KVS_REC_SET ? p->entry->klen : p->klen;
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
 * KVS_ENOTFOUND, or a read error.  With num != NULL, also parses the value
 * as an integer: *is_int says whether it is one. */
static int key_state(struct kvs *db, uint64_t hash, const void *key,
		     size_t klen, int64_t *num, bool *is_int)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct oslot *s = overlay_find(wb, hash, key, klen);
	if (s && s->gen == wb->gen) {
		const struct pend *p = &wb->pends[s->pend];
		if (p->type != KVS_REC_SET)
			return KVS_ENOTFOUND;
		if (num)
			*is_int = p->is_num ? (*num = p->num, true)
					    : kvs_parse_int64(p->val, p->vlen, num);
		return KVS_OK;
	}
	int rc = KVS_OK;
	kvs__read_lock();
	struct kvs__entry *e = kvs__index_lookup(db->index, hash, key, klen);
	if (!e) {
		rc = KVS_ENOTFOUND;
	} else if (num) {
		unsigned char buf[20];
		*is_int = false;
		if (e->vlen <= sizeof buf &&
		    (rc = kvs__read_value(db, e, buf)) == KVS_OK)
			*is_int = kvs_parse_int64(buf, e->vlen, num);
	}
	kvs__read_unlock();
	return rc;
}

/* ---- staging one operation -------------------------------------------------- */

static int stage_op(struct kvs *db, struct kvs_op *op)
{
	struct kvs__writer_buf *wb = db->wbuf;
	enum kvs_record_type type =
		op->type == KVS_OP_REMOVE ? KVS_REC_REMOVE : KVS_REC_SET;
	uint64_t hash = kvs__index_hash(db->index, op->key, op->klen);
	unsigned char head[KVS__REC_MAX_HEAD], vhead[9], crcb[5];
	char numbuf[24];
	const void *val = op->val;
	size_t vlen = type == KVS_REC_SET ? op->vlen : 0;
	bool is_num = false;
	int64_t num = 0;
	int rc;

	/* Conditions and read-modify-write see every earlier write, this
	 * round's included: the writer is the only one that writes. */
	op->result = KVS_OK;
	if (op->type == KVS_OP_REMOVE || (op->type == KVS_OP_SET && op->flags)) {
		rc = key_state(db, hash, op->key, op->klen, NULL, NULL);
		if (rc != KVS_OK && rc != KVS_ENOTFOUND)
			return op->result = rc, KVS_OK;
		bool present = rc == KVS_OK;
		if (op->type == KVS_OP_REMOVE && !present)
			return op->result = KVS_ENOTFOUND, KVS_OK;
		if ((op->flags & KVS_SET_NX) && present)
			return op->result = KVS_EEXIST, KVS_OK;
		if ((op->flags & KVS_SET_XX) && !present)
			return op->result = KVS_ENOTFOUND, KVS_OK;
	} else if (op->type == KVS_OP_INCR) {
		bool is_int = true;
		rc = key_state(db, hash, op->key, op->klen, &num, &is_int);
		if (rc == KVS_ENOTFOUND)
			num = 0;
		else if (rc != KVS_OK)
			return op->result = rc, KVS_OK;
		else if (!is_int)
			return op->result = KVS_ENOTINT, KVS_OK;
		if (__builtin_add_overflow(num, op->delta, &num))
			return op->result = KVS_EOVERFLOW, KVS_OK;
		op->num = num;
		is_num = true;
		vlen = (size_t)snprintf(numbuf, sizeof numbuf, "%lld",
					(long long)num);
		val = numbuf;
	}

	uint64_t seq = db->next_seq;
	size_t hlen = kvs__rec_encode_head(head, type, seq, op->klen);
	size_t vhlen = type == KVS_REC_SET ? kvs__rec_encode_vhead(vhead, vlen)
					   : 0;
	uint64_t rec_len = hlen + op->klen + vhlen + vlen + 5;

	/* A record that does not fit (with room left for the footer) starts a
	 * new segment, unless the active one is empty: a record larger than a
	 * segment gets one of its own.  writer_round rotates between requests,
	 * so this happens only inside a request bigger than a segment: the
	 * rotation seals the request's first records, and a failure of the
	 * rest can no longer be undone. */
	struct kvs__seg *seg = db->active;
	if (seg->records > 0 &&
	    seg->size + rec_len + KVS__FOOTER_MAX > db->opt.segment_size) {
		if ((rc = kvs__rotate(db)) != KVS_OK)
			return rc;
		wb->split = true;
		seg = db->active;
	}

	if (!grow((void **)&wb->pends, &wb->pends_cap, wb->npends + 1,
		  sizeof *wb->pends))
		return nomem();
	struct pend *p = &wb->pends[wb->npends];
	memset(p, 0, sizeof *p);
	p->type = type;
	p->hash = hash;
	p->seg = seg;
	p->off = seg->size;
	p->rec_len = (uint32_t)rec_len;
	p->seq = seq;
	if (type == KVS_REC_SET) {
		p->entry = kvs__entry_new(db->index, op->key, op->klen);
		if (!p->entry)
			return nomem();
		p->entry->seg = seg;
		p->entry->off = (uint32_t)seg->size;
		p->entry->rec_len = (uint32_t)rec_len;
		p->entry->vlen = (uint32_t)vlen;
		p->val = val;
		p->vlen = vlen;
		p->is_num = is_num;
		p->num = num;
	} else {
		p->key = op->key;
		p->klen = op->klen;
	}
	wb->npends++;
	if (overlay_note(wb, hash, op->key, op->klen, wb->npends - 1) != KVS_OK)
		return nomem();

	uint32_t crc = kvs__crc32c(0, head, hlen);
	crc = kvs__crc32c(crc, op->key, op->klen);
	if (type == KVS_REC_SET) {
		crc = kvs__crc32c(crc, vhead, vhlen);
		crc = kvs__crc32c(crc, val, vlen);
	}
	kvs__rec_encode_crc(crcb, crc);
	if (out_add(wb, head, hlen, true) ||
	    out_add(wb, op->key, op->klen, op->klen <= COPY_MAX) ||
	    (type == KVS_REC_SET &&
	     (out_add(wb, vhead, vhlen, true) ||
	      out_add(wb, val, vlen, is_num || vlen <= COPY_MAX))) ||
	    out_add(wb, crcb, 5, true))
		return nomem();

	/* Staged: account the record (undone by round_undo if the round is
	 * refused). */
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
	return KVS_OK;
}

/* ---- applying a round to the index ------------------------------------------- */

static void retire_entry(struct kvs *db, struct kvs__entry *old)
{
	old->seg->live_bytes -= old->rec_len;
	old->seg->dead_bytes += old->rec_len;
	kvs__index_retire(db->index, old);
}

static void apply_round(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	kvs__read_lock();
	for (size_t i = 0; i < wb->npends; i++) {
		struct pend *p = &wb->pends[i];
		if (p->type == KVS_REC_SET) {
			struct kvs__entry *e = p->entry;
			struct kvs__entry *old = kvs__index_put(db->index, p->hash, e);
			p->seg->live_bytes += p->rec_len;
			if (old)
				retire_entry(db, old);
			else
				db->live_keys++;
			p->entry = NULL;
		} else {
			struct kvs__entry *old = kvs__index_lookup(
				db->index, p->hash, p->key, p->klen);
			p->seg->dead_bytes += p->rec_len; /* the tombstone */
			if (old) {
				kvs__index_del(db->index, old);
				retire_entry(db, old);
				db->live_keys--;
			}
		}
	}
	kvs__read_unlock();
}

static void discard_round(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	for (size_t i = 0; i < wb->npends; i++)
		if (wb->pends[i].entry)
			kvs__entry_free(db->index, wb->pends[i].entry);
}

/* Remember where a refused round would go back to: a few stores a round. */
static void round_mark(struct kvs *db)
{
	struct kvs__seg *seg = db->active;
	struct mark *m = &db->wbuf->mark;
	m->seg = seg;
	m->size = seg->size;
	m->records = seg->records;
	m->last_seq = seg->last_seq;
	m->min_seq = seg->min_seq;
	m->chain = seg->chain;
	m->hint_n = seg->hint.n;
	m->next_seq = db->next_seq;
	m->writes = db->counters.writes;
	m->bytes_written = db->counters.bytes_written;
}

static void round_reset(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	wb->npends = 0;
	wb->npieces = 0;
	wb->arena_len = 0;
	wb->slots_used = 0;
	wb->gen++;
	wb->base_off = db->active->size;
	wb->wrote = wb->split = false;
	round_mark(db);
}

/* Take back a round that is refused before anything of it was
 * acknowledged: cut its bytes off the active segment and restore what
 * staging advanced.  KVS_OK, or KVS_EIO if it cannot be undone (a rotation
 * sealed part of it, or the truncation failed). */
static int round_undo(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct mark *m = &wb->mark;
	struct kvs__seg *seg = m->seg;
	if (wb->split || seg != db->active)
		return kvs__err(KVS_EIO, "%s: part of a write bigger than a "
				"segment was sealed before the rest failed",
				seg->path);
	if (wb->wrote) {
		while (ftruncate(seg->fd, (off_t)m->size) != 0) {
			if (errno != EINTR)
				return kvs__err_errno(KVS_EIO, errno,
						      "%s: truncate", seg->path);
		}
	}
	seg->size = m->size;
	seg->records = m->records;
	seg->last_seq = m->last_seq;
	seg->min_seq = m->min_seq;
	seg->chain = m->chain;
	if (seg->hint.n > m->hint_n)
		seg->hint.n = m->hint_n;
	db->next_seq = m->next_seq;
	db->counters.writes = m->writes;
	db->counters.bytes_written = m->bytes_written;
	return KVS_OK;
}

/* A write was refused for a shortage: say it in the stats at once, and in
 * the log at most once a second. */
static void note_refusal(struct kvs *db, int err, const char *msg)
{
	atomic_store(&db->write_error, err ? err : ENOSPC);
	kvs__log_every(db, &db->wlog_us, KVS_LOG_WARN,
		       "%s; writes are refused until it can, reads go on",
		       msg);
}

/* A round that wrote records succeeded: the shortage is over. */
static void note_success(struct kvs *db)
{
	if (atomic_load_explicit(&db->write_error, memory_order_relaxed) &&
	    atomic_exchange(&db->write_error, 0))
		kvs__log(db, KVS_LOG_INFO, "writes succeed again");
}

/* The round's writes failed with rc: undo them and refuse them with
 * KVS_ENOSPC if it was a shortage, else fail the handle (KVS_EIO). */
static void round_refuse(struct kvs *db, struct kvs__req *list, int rc)
{
	struct kvs__writer_buf *wb = db->wbuf;
	char msg[512];
	int err = kvs__errno();
	snprintf(msg, sizeof msg, "%s", kvs_errmsg());
	discard_round(db);
	if (rc == KVS_ENOSPC && round_undo(db) == KVS_OK) {
		note_refusal(db, err, msg);
	} else {
		if (rc == KVS_ENOSPC) /* the undo failed: say why */
			snprintf(msg, sizeof msg, "%s", kvs_errmsg());
		fail_msg(db, err, msg);
		rc = KVS_EIO;
	}
	for (struct kvs__req *r = list; r; r = r->next)
		if (r->kind == KVS__REQ_WRITE && r->result == KVS_OK)
			r->result = rc;
	wb->npends = 0;
	wb->npieces = 0;
	wb->arena_len = 0;
	wb->base_off = db->active->size;
}

/* ---- stats --------------------------------------------------------------------- */

static void fill_stats(struct kvs *db, struct kvs_store_stats *st)
{
	*st = db->counters;
	st->live_keys = db->live_keys;
	st->live_bytes = st->dead_bytes = st->disk_bytes = st->segments = 0;
	for (struct kvs__seg *s = db->segs; s; s = s->next) {
		st->live_bytes += s->live_bytes;
		st->dead_bytes += s->dead_bytes;
		st->disk_bytes += s->size;
		st->segments++;
	}
	st->next_seq = db->next_seq;
	st->syncs += atomic_load(&db->bg_syncs);
	st->failed = atomic_load(&db->failed);
	st->write_error = atomic_load(&db->write_error);
	st->damaged = atomic_load(&db->damaged);
}

/* Publish the stats snapshot: at most every 50 ms while busy, and always
 * before the writer goes idle (force). */
static void publish_stats(struct kvs *db, bool force)
{
	uint64_t now = kvs__now_us();
	if (!db->snap_dirty || (!force && now - db->snap_us < 50000))
		return;
	struct kvs_store_stats st;
	fill_stats(db, &st);
	kvs__lock(&db->snap_mu);
	db->snap = st;
	kvs__unlock(&db->snap_mu);
	db->snap_us = now;
	db->snap_dirty = false;
}

/* ---- the writer loop ------------------------------------------------------------- */

static void complete(struct kvs__req *req)
{
	if (req->result != KVS_OK && req->errbuf && req->errbuf_len)
		snprintf(req->errbuf, req->errbuf_len, "%s", kvs_errmsg());
	req->done(req);
}

/* The most bytes request r's records can take (a condition may write
 * fewer, an INCR at most 20 digits): to know before staging any of it
 * whether it fits in the active segment.  Exact for a plain SET. */
static uint64_t req_bound(const struct kvs *db, const struct kvs__req *r)
{
	uint64_t seq = db->next_seq + r->nops, n = 0;
	for (size_t i = 0; i < r->nops; i++) {
		const struct kvs_op *op = &r->ops[i];
		if (op->type == KVS_OP_REMOVE)
			n += kvs__rec_len_of(KVS_REC_REMOVE, seq, op->klen, 0);
		else
			n += kvs__rec_len_of(KVS_REC_SET, seq, op->klen,
					     op->type == KVS_OP_INCR ? 20
								     : op->vlen);
	}
	return n;
}

/*
 * Process a list of requests (the whole queue at one moment), or its first
 * part: returns the requests left for the next call, the list being cut
 * after the last one processed.  Rotation happens only between requests,
 * with nothing of the round staged, so a round lies in one segment and is
 * undone by cutting that segment back (a request that does not fit the
 * active segment ends the round before it; the next round rotates first).
 * A request bigger than a whole segment has a round of its own.
 */
static struct kvs__req *writer_round(struct kvs *db, struct kvs__req *list,
				     bool *stop)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct kvs__req *rest = NULL, *prev = NULL;
	bool no_rotation = false; /* one was refused: don't retry it now */
	int rc = KVS_OK;

	round_reset(db);
	for (struct kvs__req *r = list; r; prev = r, r = r->next) {
		if (r->kind == KVS__REQ_STOP)
			*stop = true;
		if (r->kind != KVS__REQ_WRITE)
			continue;
		if (atomic_load(&db->failed)) {
			r->result = kvs__err(KVS_EFAILED, "%s",
					     kvs_strerror(KVS_EFAILED));
			continue;
		}
		r->result = KVS_OK;
		uint64_t need = req_bound(db, r) + KVS__FOOTER_MAX;
		bool huge = KVS__HDR_LEN + need > db->opt.segment_size;
		bool full = db->active->records > 0 &&
			    db->active->size + need > db->opt.segment_size;
		if ((huge || full) && wb->npends > 0) {
			prev->next = NULL;
			rest = r;
			break;
		}
		if (full) {
			rc = no_rotation ? KVS_ENOSPC : kvs__rotate(db);
			if (rc == KVS_ENOSPC) {
				if (!no_rotation)
					note_refusal(db, kvs__errno(),
						     kvs_errmsg());
				no_rotation = true;
			}
			if (rc != KVS_OK) {
				/* Nothing of the round is staged: only
				 * this request is refused. */
				r->result = rc;
				rc = KVS_OK;
				continue;
			}
			round_mark(db);
		}
		for (size_t i = 0; i < r->nops && rc == KVS_OK; i++)
			rc = stage_op(db, &r->ops[i]);
		if (rc != KVS_OK) {
			/* The round ends with r (refused with what was
			 * staged); the requests after it, a kvs_close()'s
			 * STOP among them, go to the next round untried. */
			rest = r->next;
			r->next = NULL;
			break;
		}
		if (huge) {
			rest = r->next;
			r->next = NULL;
			break;
		}
	}
	if (rc == KVS_OK)
		rc = out_flush(db);
	if (rc == KVS_OK && wb->npends > 0 &&
	    db->opt.fsync == KVS_FSYNC_ALWAYS) {
		int e = kvs__io_fdatasync(db->active->fd);
		if (e) {
			/* Never retried: what reached the disk is unknown. */
			rc = kvs__err_errno(KVS_EIO, e, "%s: fdatasync",
					    db->active->path);
		} else {
			db->counters.syncs++;
			db->active->synced = db->active->size;
		}
	}
	if (rc == KVS_OK) {
		apply_round(db);
		atomic_store(&db->live_keys_pub, db->live_keys);
		kvs__index_grow(db->index, db->live_keys);
		if (wb->npends) {
			db->counters.batches++;
			note_success(db);
		}
	} else {
		round_refuse(db, list, rc);
	}
	if (!*stop && rc == KVS_OK)
		kvs__compact_check_active(db);
	if (*stop && !rest) {
		/* kvs_close(): make everything durable before saying done. */
		int e = kvs__io_fdatasync(db->active->fd);
		if (e)
			kvs__set_failed(db, e, db->active->path);
	}
	for (struct kvs__req *r = list, *next; r; r = next) {
		next = r->next; /* r may be gone after complete() */
		if (r->kind == KVS__REQ_COMPACT) {
			/* Completed by compact.c when the pass is done. */
			kvs__compact_request(db, r);
			continue;
		}
		if (r->kind == KVS__REQ_STATS) {
			fill_stats(db, r->stats);
			r->result = KVS_OK;
		} else if (r->kind == KVS__REQ_STOP) {
			r->result = atomic_load(&db->failed) ? KVS_EIO : KVS_OK;
		}
		complete(r);
	}
	return rest;
}

/* The writer's answers to the threads around it: a client request is
 * queued (compaction steps give way), and a background job or hint file is
 * done (bgio.c's callback: the writer may be asleep waiting for it). */
static bool clients_waiting(const struct kvs *db)
{
	return atomic_load_explicit(&db->q_len, memory_order_relaxed) != 0;
}

static void wake_writer(void *arg)
{
	struct kvs *db = arg;
	KVS_CHECK(pthread_mutex_lock(&db->q_mu));
	KVS_CHECK(pthread_cond_broadcast(&db->q_cv));
	KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
}

static void *writer_main(void *arg)
{
	struct kvs *db = arg;
	bool stop = false;

	kvs__rcu_thread_online();
	kvs__become_writer(db);
	db->snap_dirty = true;
	while (!stop) {
		/* Client requests first; compaction steps fill the gaps, as
		 * often as its rate limit allows. */
		uint64_t delay = 0;
		bool work = false;
		publish_stats(db, false);
		if (db->snap_dirty) {
			KVS_CHECK(pthread_mutex_lock(&db->q_mu));
			bool idle = !db->q_head;
			KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
			if (idle)
				publish_stats(db, true);
		}
		/* A thread wake-up costs tens of microseconds on a VM: before
		 * sleeping, watch the queue a little while (a caller that
		 * waits for its previous write usually sends the next one at
		 * once). */
		for (int spin = 0; spin < SPIN_LOOPS && !atomic_load(&db->q_len);
		     spin++)
			cpu_relax();
		KVS_CHECK(pthread_mutex_lock(&db->q_mu));
		while (!db->q_head) {
			/* About to sleep: start the grace period of the
			 * entries retired so far. */
			kvs__index_retire_flush(db->index);
			work = kvs__compact_pending(db, &delay);
			if (work && delay == 0)
				break;
			if (!work) {
				KVS_CHECK(pthread_cond_wait(&db->q_cv, &db->q_mu));
				continue;
			}
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + delay * 1000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			int e = pthread_cond_timedwait(&db->q_cv, &db->q_mu, &ts);
			if (e != 0 && e != ETIMEDOUT)
				KVS_DIE("pthread_cond_timedwait", e);
		}
		struct kvs__req *list = db->q_head;
		db->q_head = db->q_tail = NULL;
		atomic_store(&db->q_len, 0);
		KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
		if (list) {
			while (list)
				list = writer_round(db, list, &stop);
			kvs__compact_note_round(db);
		}
		if (!stop) {
			kvs__compact_tick(db);
			if (kvs__compact_pending(db, &delay) && delay == 0)
				kvs__compact_step(db, clients_waiting);
		}
		db->snap_dirty = true;
	}
	/* A pass whose output is already published must end here: the index
	 * points into it. */
	kvs__compact_settle(db, clients_waiting);
	return NULL;
}

/* ---- the everysec sync thread ------------------------------------------------------ */

static void *syncer_main(void *arg)
{
	struct kvs *db = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	kvs__lock(&db->sync_mu);
	while (!db->sync_stop) {
		next.tv_sec += 1;
		int rc;
		do {
			rc = pthread_cond_timedwait(&db->sync_cv, &db->sync_mu,
						    &next);
		} while (rc == 0 && !db->sync_stop);
		if (rc != 0 && rc != ETIMEDOUT)
			KVS_DIE("pthread_cond_timedwait", rc);
		if (db->sync_stop)
			break;
		if (atomic_exchange(&db->unsynced, 0) == 0)
			continue;
		/* The fdatasync runs outside sync_mu, on the segment pinned by
		 * fd_users rather than on a dup() of its descriptor: a dup
		 * needs a free descriptor, and when clients hold them all
		 * (EMFILE) that is no reason to fail the store.  A rotation
		 * waits for the pin only after sealing the same file, whose
		 * data its own fdatasync has just flushed. */
		int e = kvs__seg_sync_locked(db, db->sync_seg);
		if (e) {
			kvs__unlock(&db->sync_mu);
			kvs__set_failed(db, e, "background fdatasync");
			kvs__lock(&db->sync_mu);
		} else {
			atomic_fetch_add(&db->bg_syncs, 1);
		}
	}
	kvs__unlock(&db->sync_mu);
	return NULL;
}

/* ---- starting, stopping, submitting -------------------------------------------------- */

int kvs__writer_start(struct kvs *db)
{
	int rc;
	db->wbuf = calloc(1, sizeof *db->wbuf);
	if (!db->wbuf)
		return kvs__err(KVS_ENOMEM, "out of memory");
	/* Sealed segments are read through their mappings only: their
	 * descriptors go now (recovery kept those it scanned), so the store
	 * holds O(1) descriptors whatever its size (docs/THREADS.md). */
	for (struct kvs__seg *s = db->segs; s; s = s->next)
		if (s != db->active && s->sealed)
			kvs__seg_drop_fd(s);
	if ((rc = kvs__bgio_new(db, wake_writer, db, &db->bg)) != KVS_OK ||
	    (rc = kvs__compact_init(db)) != KVS_OK)
		return rc;
	db->sync_seg = db->active;
	if ((rc = pthread_create(&db->writer, NULL, writer_main, db)) != 0)
		return kvs__err_errno(KVS_ENOMEM, rc, "cannot start the writer");
	db->writer_started = true;
	if (db->opt.fsync == KVS_FSYNC_EVERYSEC) {
		if ((rc = pthread_create(&db->syncer, NULL, syncer_main, db)))
			return kvs__err_errno(KVS_ENOMEM, rc,
					      "cannot start the sync thread");
		db->syncer_started = true;
	}
	return KVS_OK;
}

static void sync_done(struct kvs__req *req)
{
	atomic_store_explicit(&req->futex, 1, memory_order_release);
	syscall(SYS_futex, &req->futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void enqueue(struct kvs *db, struct kvs__req *req)
{
	req->next = NULL;
	KVS_CHECK(pthread_mutex_lock(&db->q_mu));
	if (db->q_tail)
		db->q_tail->next = req;
	else
		db->q_head = req;
	db->q_tail = req;
	bool was_empty = atomic_fetch_add(&db->q_len, 1) == 0;
	KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
	if (was_empty)
		KVS_CHECK(pthread_cond_signal(&db->q_cv));
}

void kvs__submit(struct kvs *db, struct kvs__req *req)
{
	enqueue(db, req);
}

int kvs__submit_wait(struct kvs *db, struct kvs__req *req)
{
	atomic_init(&req->futex, 0);
	req->done = sync_done;
	enqueue(db, req);
	/* Spin briefly first: a small write comes back in a few microseconds,
	 * sooner than the futex wake-up would reach a sleeping thread. */
	for (int spin = 0; spin < SPIN_LOOPS &&
	     !atomic_load_explicit(&req->futex, memory_order_acquire); spin++)
		cpu_relax();
	while (atomic_load_explicit(&req->futex, memory_order_acquire) == 0)
		syscall(SYS_futex, &req->futex, FUTEX_WAIT_PRIVATE, 0, NULL,
			NULL, 0);
	return req->result;
}

void kvs__writer_stop(struct kvs *db)
{
	if (db->writer_started) {
		struct kvs__req stop = { .kind = KVS__REQ_STOP };
		(void)kvs__submit_wait(db, &stop);
		KVS_CHECK(pthread_join(db->writer, NULL));
		db->writer_started = false;
	}
	if (db->syncer_started) {
		kvs__lock(&db->sync_mu);
		db->sync_stop = true;
		KVS_CHECK(pthread_cond_signal(&db->sync_cv));
		kvs__unlock(&db->sync_mu);
		KVS_CHECK(pthread_join(db->syncer, NULL));
		db->syncer_started = false;
	}
	kvs__bgio_free(db->bg); /* writes the queued hints first */
	db->bg = NULL;
	kvs__compact_free(db);
	if (db->wbuf) {
		struct kvs__writer_buf *wb = db->wbuf;
		free(wb->arena);
		free(wb->pieces);
		free(wb->pends);
		free(wb->slots);
		free(wb->iov);
		free(wb);
		db->wbuf = NULL;
	}
}
