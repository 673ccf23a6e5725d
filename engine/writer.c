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
#include "round.h"
#include "snapshot.h"

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

/* A write was refused for a shortage: say it in the stats at once, and in
 * the log at most once a second. */
static void note_refusal(struct kvs *db, int err, const char *msg)
{
	atomic_store(&db->health.write_error, err ? err : ENOSPC);
	kvs__log_every(db, &db->health.wlog_us, KVS_LOG_WARN,
		       "%s; writes are refused until it can, reads go on",
		       msg);
}

/* A round that wrote records succeeded: the shortage is over. */
static void note_success(struct kvs *db)
{
	if (atomic_load_explicit(&db->health.write_error, memory_order_relaxed) &&
	    atomic_exchange(&db->health.write_error, 0))
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
	kvs__round_discard(db);
	if (rc == KVS_ENOSPC && kvs__round_undo(db) == KVS_OK) {
		note_refusal(db, err, msg);
	} else {
		if (rc == KVS_ENOSPC) /* the undo failed: say why */
			snprintf(msg, sizeof msg, "%s", kvs_errmsg());
		kvs__set_failed_msg(db, err, msg);
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
	kvs__expire_stats(&db->exp, st);
	st->syncs += atomic_load(&db->sync.bg_syncs);
	st->failed = atomic_load(&db->health.failed);
	st->write_error = atomic_load(&db->health.write_error);
	st->damaged = atomic_load(&db->health.damaged);
}

/* Publish the stats snapshot: at most every 50 ms while busy, and always
 * before the writer goes idle (force). */
static void publish_stats(struct kvs *db, bool force)
{
	uint64_t now = kvs__now_us();
	if (!db->pub.dirty || (!force && now - db->pub.us < 50000))
		return;
	struct kvs_store_stats st;
	fill_stats(db, &st);
	kvs__lock(&db->pub.mu);
	db->pub.stats = st;
	kvs__unlock(&db->pub.mu);
	db->pub.us = now;
	db->pub.dirty = false;
}

/* ---- the writer loop ------------------------------------------------------------- */

static void complete(struct kvs__req *req)
{
	if (req->result != KVS_OK && req->errbuf && req->errbuf_len)
		snprintf(req->errbuf, req->errbuf_len, "%s", kvs_errmsg());
	req->done(req);
}

/* The expiry time a SET, INCR or update may write, or a bound on its
 * encoding (INCR and KEEPTTL keep the key's, unknown yet). */
static int64_t set_expiry_bound(const struct kvs_op *op)
{
	if (op->type != KVS_OP_SET || (op->flags & KVS_SET_KEEPTTL))
		return INT64_MAX;
	return op->expire_ms;
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
			n += kvs__rec_len_x(KVS_REC_SET, seq, set_expiry_bound(op),
					    op->klen,
					    op->type == KVS_OP_INCR ? 20 : op->vlen);
	}
	return n;
}

/* Stage every op of request r; an update op that aborts leaves the later
 * ones unstaged (KVS_ECANCELED).  Returns a failure of the round. */
static int stage_request(struct kvs *db, struct kvs__req *r)
{
	struct kvs__writer_buf *wb = db->wbuf;
	bool atomic = r->flags & KVS_BATCH_ATOMIC;
	size_t i, first = wb->npends;
	uint64_t seq0 = db->next_seq;
	int rc = KVS_OK;

	wb->aborted = false;
	wb->atomic = atomic;
	/* An atomic request's records lie between two markers, the opening
	 * one (0) and the closing one, which names the opening one's seq:
	 * recovery keeps them only if the closing one is there. */
	if (atomic)
		rc = kvs__stage_txn_mark(db, 0);
	for (i = 0; i < r->nops && rc == KVS_OK && !wb->aborted; i++)
		rc = kvs__stage_op(db, &r->ops[i]);
	if (wb->aborted)
		for (; i < r->nops; i++)
			r->ops[i].result = KVS_ECANCELED;
	if (atomic && rc == KVS_OK) {
		if (wb->npends - first > 1)
			wb->guard = true;
		rc = kvs__stage_txn_mark(db, seq0);
	}
	wb->atomic = false;
	return rc;
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
				     bool *stop, bool inl)
{
	struct kvs__writer_buf *wb = db->wbuf;
	struct kvs__req *rest = NULL, *prev = NULL;
	bool no_rotation = false; /* one was refused: don't retry it now */
	int rc = KVS_OK;

	kvs__round_reset(db);
	for (struct kvs__req *r = list; r; prev = r, r = r->next) {
		if (r->kind == KVS__REQ_STOP)
			*stop = true;
		if (r->kind != KVS__REQ_WRITE)
			continue;
		if (atomic_load(&db->health.failed)) {
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
			kvs__round_mark(db);
		}
		rc = stage_request(db, r);
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
		rc = kvs__round_flush(db);
	if (rc == KVS_OK && wb->npends > 0 &&
	    kvs__fsync_policy(db) == KVS_FSYNC_ALWAYS) {
		int e = kvs__testhook_skip_sync(KVS_HOOK_SYNC_WRITE)
				? 0 : kvs__io_fdatasync(db->active->fd);
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
		kvs__round_apply(db);
		atomic_store(&db->pub.live_keys, db->live_keys);
		atomic_store(&db->pub.writes, db->counters.writes);
		/* A resize waits for grace periods: the writer thread's. */
		if (!inl)
			kvs__index_grow(db->index, db->live_keys);
		if (wb->npends) {
			db->counters.batches++;
			note_success(db);
		}
	} else {
		round_refuse(db, list, rc);
	}
	/* A rotation syncs: never on a submitter's thread (the writer
	 * checks at its next look, writer_main). */
	if (!*stop && rc == KVS_OK && !inl)
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
		} else if (r->kind == KVS__REQ_SNAPSHOT) {
			/* Between rounds: the state at db->next_seq, every
			 * write of this list before it included. */
			r->result = kvs__snap_point(db, r->snap);
		} else if (r->kind == KVS__REQ_STOP) {
			r->result = atomic_load(&db->health.failed) ? KVS_EIO : KVS_OK;
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
	return atomic_load_explicit(&db->q.len, memory_order_relaxed) != 0;
}

static void wake_writer(void *arg)
{
	struct kvs *db = arg;
	kvs__lock(&db->q.mu);
	KVS_CHECK(pthread_cond_broadcast(&db->q.cv));
	kvs__unlock(&db->q.mu);
}

/* Active expiry while the writer would sleep: true if a key is due now;
 * else the wait (*delay, *work) shortened to the earliest expiry time. */
static bool expiry_due(struct kvs *db, bool *work, uint64_t *delay)
{
	uint64_t xd;
	if (!kvs__expire_pending(db, &xd))
		return false;
	if (xd == 0)
		return true;
	if (!*work || xd < *delay)
		*delay = xd;
	*work = true;
	return false;
}

/* The writer thread sleeps until a request, a compaction step or an
 * expiry time is due: `role` goes while it sleeps, so that a submitter may
 * run its round itself meanwhile (kvs__write_inline). */
static void writer_sleep(struct kvs *db, uint64_t *seen)
{
	for (;;) {
		uint64_t delay = 0;
		bool work = false;
		/* About to sleep: start the grace period of the entries
		 * retired so far. */
		kvs__index_retire_flush(db->index);
		work = kvs__compact_pending(db, &delay);
		if ((work && delay == 0) || expiry_due(db, &work, &delay))
			return;
		/* Rounds submitters ran since the last look: look again
		 * soon, not at each of them. */
		uint64_t n = atomic_load(&db->q.inline_rounds);
		bool look = n != *seen;
		*seen = n;
		if (look && (!work || delay > KVS__HOUSEKEEP_US)) {
			delay = KVS__HOUSEKEEP_US;
			work = true;
		}
		/* Longer than a look-again: a submitter's round wakes it. */
		atomic_store(&db->q.sleeping,
			     !work || delay > KVS__HOUSEKEEP_US);
		kvs__unlock(&db->q.role);
		if (!work) {
			KVS_CHECK(pthread_cond_wait(&db->q.cv, &db->q.mu));
		} else {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t ns = (uint64_t)ts.tv_nsec + delay * 1000u;
			ts.tv_sec += (time_t)(ns / 1000000000u);
			ts.tv_nsec = (long)(ns % 1000000000u);
			int e = pthread_cond_timedwait(&db->q.cv, &db->q.mu,
						       &ts);
			if (e != 0 && e != ETIMEDOUT)
				KVS_DIE("pthread_cond_timedwait", e);
		}
		atomic_store(&db->q.sleeping, false);
		/* role before mu; submitters stand aside meanwhile, or a
		 * steady stream of their rounds could keep the writer out
		 * (a mutex has no hand-off). */
		kvs__unlock(&db->q.mu);
		atomic_store(&db->q.role_wanted, true);
		kvs__lock(&db->q.role);
		atomic_store(&db->q.role_wanted, false);
		kvs__lock(&db->q.mu);
		/* After a look-again wake-up: the stats first (the loop's
		 * top). */
		if (db->q.head || look)
			return;
	}
}

static void *writer_main(void *arg)
{
	struct kvs *db = arg;
	bool stop = false;
	uint64_t seen = 0; /* inline_rounds looked after */

	kvs__io_role("writer");
	kvs__rcu_thread_online();
	kvs__become_writer(db);
	kvs__lock(&db->q.role);
	db->pub.dirty = true;
	while (!stop) {
		/* Client requests first; compaction steps fill the gaps, as
		 * often as its rate limit allows. */
		uint64_t delay = 0;
		publish_stats(db, false);
		if (db->pub.dirty) {
			kvs__lock(&db->q.mu);
			bool idle = !db->q.head;
			kvs__unlock(&db->q.mu);
			if (idle)
				publish_stats(db, true);
		}
		/* A thread wake-up costs tens of microseconds on a VM: before
		 * sleeping, watch the queue a little while (a caller that
		 * waits for its previous write usually sends the next one at
		 * once). */
		for (int spin = 0; spin < SPIN_LOOPS && !atomic_load(&db->q.len);
		     spin++)
			cpu_relax();
		kvs__lock(&db->q.mu);
		if (!db->q.head)
			writer_sleep(db, &seen);
		struct kvs__req *list = db->q.head;
		db->q.head = db->q.tail = NULL;
		atomic_store(&db->q.len, 0);
		kvs__unlock(&db->q.mu);
		/* Keys whose time has come go first, a bounded number a turn
		 * (expire.c); the clients queued meanwhile come next. */
		struct kvs__req *reap = stop ? NULL : kvs__expire_collect(db);
		if (reap) {
			reap->next = list;
			list = reap;
		}
		if (list) {
			while (list)
				list = writer_round(db, list, &stop, false);
			kvs__compact_note_round(db);
		}
		if (!stop) {
			/* Also after submitters' rounds, which leave these
			 * two to the writer thread. */
			kvs__index_grow(db->index, db->live_keys);
			if (!atomic_load(&db->health.failed))
				kvs__compact_check_active(db);
			kvs__compact_tick(db);
			if (kvs__compact_pending(db, &delay) && delay == 0)
				kvs__compact_step(db, clients_waiting);
			/* Submitters run their rounds again once compaction
			 * has caught up (struct kvs__queue). */
			atomic_store(&db->q.compact_due,
				     kvs__compact_pending(db, &delay) &&
					     delay == 0);
		}
		db->pub.dirty = true;
	}
	/* A pass whose output is already published must end here: the index
	 * points into it. */
	kvs__compact_settle(db, clients_waiting);
	db->q.closed = true;
	kvs__unlock(&db->q.role);
	return NULL;
}

/* Do the requests of `list` surely fit the active segment as it is?  A
 * round that needs a rotation is the writer thread's: sealing syncs.  The
 * bound is req_bound's with every record at the list's highest possible
 * seq (the widest encoding), an atomic request's two markers, and no
 * update op (its callback chooses the value's length). */
static bool fits_active(const struct kvs *db, const struct kvs__req *list)
{
	uint64_t seq = db->next_seq, need = KVS__FOOTER_MAX;
	for (const struct kvs__req *r = list; r; r = r->next)
		seq += r->nops + 2;
	for (const struct kvs__req *r = list; r; r = r->next) {
		for (size_t i = 0; i < r->nops; i++) {
			const struct kvs_op *op = &r->ops[i];
			if (op->type == KVS_OP_UPDATE)
				return false;
			if (op->type == KVS_OP_REMOVE)
				need += kvs__rec_len_of(KVS_REC_REMOVE, seq,
							op->klen, 0);
			else
				need += kvs__rec_len_x(
					KVS_REC_SET, seq, set_expiry_bound(op),
					op->klen,
					op->type == KVS_OP_INCR ? 20 : op->vlen);
		}
		if (r->flags & KVS_BATCH_ATOMIC)
			need += 2 * KVS__TXN_MAX;
	}
	return db->active->size + need <= db->opt.segment_size;
}

bool kvs__write_inline(struct kvs *db, struct kvs__req *list)
{
	/* Not from inside a round (a done() or an update callback, of this
	 * store or another: the role is held, or nests too deep); not while
	 * requests queued before these wait (they go first: they are the
	 * writer's), nor while the writer waits for the role. */
	if (kvs__writer_of ||
	    atomic_load_explicit(&db->q.len, memory_order_relaxed) ||
	    atomic_load_explicit(&db->q.role_wanted, memory_order_relaxed) ||
	    atomic_load_explicit(&db->q.compact_due, memory_order_relaxed) ||
	    !kvs__trylock(&db->q.role))
		return false;
	if (atomic_load(&db->q.len) || db->q.closed ||
	    atomic_load(&db->q.compact_due) ||
	    atomic_load(&db->health.failed) || !fits_active(db, list)) {
		kvs__unlock(&db->q.role);
		return false;
	}
	kvs__rcu_thread_online();
	const struct kvs *prev_writer = kvs__become_writer(db);
	const char *prev_role = kvs__io_role("submitter");
	bool stop = false;
	while (list)
		list = writer_round(db, list, &stop, true);
	kvs__compact_note_round(db);
	db->pub.dirty = true;
	bool due = kvs__compact_due_inline(db);
	if (due)
		atomic_store(&db->q.compact_due, true);
	kvs__io_role(prev_role);
	kvs__become_writer(prev_writer);
	atomic_fetch_add(&db->q.inline_rounds, 1);
	bool wake = due || atomic_load(&db->q.sleeping);
	kvs__unlock(&db->q.role);
	if (wake) {
		/* The writer sleeps with no timeout, or a compaction step is
		 * due: it must look at what this round left now (see
		 * writer_sleep). */
		kvs__lock(&db->q.mu);
		if (due || atomic_load(&db->q.sleeping)) {
			atomic_store(&db->q.sleeping, false);
			KVS_CHECK(pthread_cond_signal(&db->q.cv));
		}
		kvs__unlock(&db->q.mu);
	}
	return true;
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
	db->sync.seg = db->active;
	if ((rc = pthread_create(&db->writer, NULL, writer_main, db)) != 0)
		return kvs__err_errno(KVS_ENOMEM, rc, "cannot start the writer");
	db->writer_started = true;
	/* Whatever the policy: kvs_set_fsync() may make it everysec. */
	if ((rc = kvs__syncer_start(db)) != KVS_OK)
		return rc;
	return KVS_OK;
}

static void sync_done(struct kvs__req *req)
{
	atomic_store_explicit(&req->futex, 1, memory_order_release);
	syscall(SYS_futex, &req->futex, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Queue the requests first..last (linked by next, n of them) at once. */
static void enqueue(struct kvs *db, struct kvs__req *first,
		    struct kvs__req *last, size_t n)
{
	last->next = NULL;
	kvs__lock(&db->q.mu);
	if (db->q.tail)
		db->q.tail->next = first;
	else
		db->q.head = first;
	db->q.tail = last;
	bool was_empty = atomic_fetch_add(&db->q.len, n) == 0;
	kvs__unlock(&db->q.mu);
	if (was_empty)
		KVS_CHECK(pthread_cond_signal(&db->q.cv));
}

void kvs__submit(struct kvs *db, struct kvs__req *req)
{
	enqueue(db, req, req, 1);
}

void kvs__submit_list(struct kvs *db, struct kvs__req *first,
		      struct kvs__req *last, size_t n)
{
	if (n)
		enqueue(db, first, last, n);
}

int kvs__submit_wait(struct kvs *db, struct kvs__req *req)
{
	atomic_init(&req->futex, 0);
	req->done = sync_done;
	enqueue(db, req, req, 1);
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
	kvs__syncer_stop(db);
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
		free(wb->ubuf);
		free(wb);
		db->wbuf = NULL;
	}
}
