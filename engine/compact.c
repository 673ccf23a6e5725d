/* compact.c - the compaction pass, run by the writer thread in bounded
 * steps between client writes: live records of mostly-dead sealed segments
 * are copied (byte for byte: same seq, same CRC) into a new segment, the
 * index is switched to the copies, and the old segments are deleted.  This
 * file drives a pass through its phases and owns compaction's state; what
 * to compact and when is compact_policy.c's, the copy and the switch are
 * compact_move.c's, the file operations compact_jobs.c's (run by the
 * background I/O thread, bgio.c).
 *
 * Readers never see the past and never get a spurious not-found:
 *   - Only the writer mutates the index, so between the copy and the switch
 *     nothing else can move a key.  The switch replaces an entry only if it
 *     still points at the copied record (a key written or removed during the
 *     pass keeps its newer entry), with cds_lfht_add_replace, which a
 *     concurrent lookup sees either before or after, never in between.
 *   - The copy is complete, synced, mapped and renamed into place before the
 *     first entry points at it.
 *   - An old segment leaves the list first; it is unmapped and closed by a
 *     call_rcu callback, so a reader still inside its read-side section with
 *     an old entry keeps a valid mapping.
 *
 * Crash safety: the copy is written as NNNNNNNNNN.seg.tmp (removed on open)
 * and renamed only once it is sealed and synced; the victims are unlinked
 * only after that, so at every moment the directory holds every live record
 * at least once, and recovery resolves duplicates by sequence number.  The
 * active segment is synced before the victims go, so that overwrites of
 * their dead records survive a power cut under fsync everysec or never.
 * (The tombstone rule is at the top of compact_policy.c.) */
#include "compact_int.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

int kvs__compact_init(struct kvs *db)
{
	KVS__ASSERT_WRITER(db); /* the opener */
	struct kvs__compact *cp = calloc(1, sizeof *cp);
	if (!cp)
		return kvs__err(KVS_ENOMEM, "out of memory");
	cp->ratio = db->opt.compact_ratio > 0 ? db->opt.compact_ratio
					      : DEFAULT_RATIO;
	cp->min_dead = db->opt.compact_min_dead ? db->opt.compact_min_dead
						: DEFAULT_MIN_DEAD;
	cp->rate = db->opt.compact_rate ? db->opt.compact_rate : DEFAULT_RATE;
	cp->tokens = STEP_BYTES;
	cp->refill_us = kvs__now_us();
	cp->job.bj.run = kvs__cp_job_run;
	cp->job.db = db;
	db->cp = cp;
	return KVS_OK;
}

/* ---- ending a pass early ------------------------------------------------ */

/* Drop the running pass: its output (not yet renamed) is removed, its
 * victims stay as they were. */
static void abort_pass(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	for (size_t i = 0; i < cp->nvictims; i++)
		cp->victims[i]->retiring = false;
	if (cp->out)
		kvs__seg_discard_tmp(cp->out);
	free(cp->victims);
	cp->victims = NULL;
	cp->nvictims = cp->vi = 0;
	cp->out = NULL;
	cp->olen = 0;
	cp->nmoved = 0;
	cp->running = false;
	cp->phase = PH_COPY;
}

/* A failed fdatasync or fsync: no pass runs again in this handle's life. */
static void fail_pass(struct kvs *db, const char *what)
{
	kvs__log(db, KVS_LOG_ERROR, "compaction stopped: %s: %s", what,
		 kvs_errmsg());
	abort_pass(db);
	db->cp->disabled = true;
	kvs__cp_complete_waiters(db, KVS_EIO);
}

/* The pass could not create or write its output (disk full, no file
 * descriptor, no memory): nothing of it is used, its temporary file is
 * removed and the victims stay as they are (readable, in the list).  Not a
 * failure of the store: the pass is tried again after a backoff; callers of
 * kvs_compact() get KVS_ENOSPC. */
static void give_up_pass(struct kvs *db, const char *what)
{
	abort_pass(db);
	kvs__cp_postpone(db, what);
}

/* ---- the phases after the copy ------------------------------------------ */

static void insert_by_id(struct kvs *db, struct kvs__seg *seg)
{
	struct kvs__seg **pp = &db->segs;
	while (*pp && (*pp)->id < seg->id)
		pp = &(*pp)->next;
	seg->next = *pp;
	*pp = seg;
}

/* Hand the pass's next file operations to the background I/O thread. */
static void job_start(struct kvs *db, enum job_kind kind)
{
	struct kvs__compact *cp = db->cp;
	cp->job.kind = kind;
	cp->phase = PH_JOB;
	kvs__bgio_post(db->bg, &cp->job.bj);
}

/* The copy is complete: seal the output (a job). */
static void seal_output(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *out = cp->out;

	cp->out_bytes = 0;
	cp->si = 0;
	cp->freed = 0;
	if (!out) {
		cp->phase = PH_DROP;
		return;
	}
	if (kvs__cp_out_flush(db) != KVS_OK) {
		give_up_pass(db, "writing the output");
		return;
	}
	struct job *j = &cp->job;
	j->foot_len = kvs__rec_encode_footer(j->foot, out->last_seq,
					     out->records, out->chain);
	j->footer_off = out->size;
	job_start(db, JOB_SEAL);
}

/* The output is durable: map it, and publish it (a job). */
static void sealed(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *out = cp->out;
	out->size += cp->job.foot_len;
	out->synced = out->size;
	out->sealed = true;
	if (kvs__seg_map(out) != KVS_OK) {
		give_up_pass(db, "mapping the output");
		return;
	}
	/* Only the newest segment may lack a footer: if the active one is
	 * older than the output, seal it and start another. */
	int rc;
	if (db->active->id < out->id && (rc = kvs__rotate(db)) != KVS_OK) {
		/* A shortage refused the rotation (nothing changed): back
		 * off like any other; a failed sync failed the handle. */
		if (rc == KVS_ENOSPC) {
			give_up_pass(db, "sealing the active segment");
		} else {
			abort_pass(db);
			kvs__cp_complete_waiters(db, KVS_EIO);
		}
		return;
	}
	job_start(db, JOB_PUBLISH);
}

/* The output is in place: the index switches to it next. */
static void published(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *out = cp->out;
	insert_by_id(db, out);
	cp->out_bytes = out->size;
	if (cp->nmoved) {
		cp->phase = PH_SWITCH;
	} else {
		cp->out = NULL;
		cp->phase = PH_DROP;
	}
}

/* Every entry is switched: take the victims out of the list and delete
 * their files (a job). */
static void drop_victims(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	size_t ngone = 0;
	for (size_t i = 0; i < cp->nvictims; i++) {
		struct kvs__seg *v = cp->victims[i];
		if (!v->retiring)
			continue; /* kept: an entry could not be switched */
		struct kvs__seg **pp = &db->segs;
		while (*pp != v)
			pp = &(*pp)->next;
		*pp = v->next;
		cp->freed += v->size;
		cp->victims[ngone++] = v;
	}
	cp->job.ngone = ngone;
	free(cp->job.kept);
	cp->job.kept = calloc(ngone ? ngone : 1, sizeof *cp->job.kept);
	/* Segments older than the active one were synced when sealed. */
	cp->job.sync_first = ngone && kvs__fsync_policy(db) != KVS_FSYNC_ALWAYS
				     ? db->active : NULL;
	/* Counted now: whoever sees a victim's file gone (the job unlinks
	 * them) sees the pass in the statistics too. */
	db->counters.compactions++;
	db->counters.bytes_reclaimed +=
		cp->freed > cp->out_bytes ? cp->freed - cp->out_bytes : 0;
	db->counters.last_compaction_us = kvs__now_us() - cp->start_us;
	job_start(db, JOB_DROP);
}

/* The victims' removal is durable: the pass is over.  (Only now may
 * tombstones kept for them go: they can no longer come back.) */
static void dropped(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct job *j = &cp->job;
	kvs__cp_ghosts_dropped(db, j->dir_bad);
	for (size_t i = 0; i < j->ngone; i++) {
		struct kvs__seg *v = cp->victims[i];
		bool kept = j->kept ? j->kept[i] : j->unlink_bad;
		if (kept || j->dir_bad)
			kvs__cp_add_ghost(db, v->path, v->min_seq, j->dir_bad);
		kvs__seg_free_rcu(v);
	}
	free(j->kept);
	j->kept = NULL;
	cp->backoff_us = 0; /* a pass went through */
	free(cp->victims);
	cp->victims = NULL;
	cp->nvictims = cp->vi = 0;
	cp->nmoved = 0;
	cp->running = false;
	cp->phase = PH_COPY;

	kvs__cp_release_kept(db);
	/* Forced work is over when no candidate it covers is left. */
	if (cp->forced) {
		bool more = false;
		for (struct kvs__seg *s = db->segs; s; s = s->next)
			if (s->sealed && s != db->active && s->forced &&
			    s->dead_bytes)
				more = true;
		if (!more)
			kvs__cp_complete_waiters(db, KVS_OK);
	}
}

/* A finished job: go on with the pass. */
static void job_collect(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct job *j = &cp->job;
	kvs__bgio_wait(db->bg, &j->bj);
	if (j->warn_rc != KVS_OK)
		kvs__log(db, KVS_LOG_WARN, "compaction: %s", j->msg);
	if (j->rc != KVS_OK && j->kind == JOB_DROP) {
		/* The active segment could not be synced: its records may be
		 * lost, so the handle fails, as a failed write's would.  The
		 * victims' files stay (the next open skips their duplicates);
		 * they are already out of the list. */
		kvs__log(db, KVS_LOG_ERROR, "compaction: %s", j->msg);
		kvs__set_failed(db, EIO, j->sync_first->path);
		kvs__cp_complete_waiters(db, KVS_EIO);
	} else if (j->rc != KVS_OK) {
		const char *what = j->kind == JOB_SEAL ? "sealing the output"
						       : "renaming the output";
		if (j->kind == JOB_PUBLISH && j->renamed) {
			/* The output has its final name, but the directory
			 * fsync failed: whether it stays after a power cut
			 * is unknown, so it is removed and remembered as a
			 * ghost for good. */
			(void)kvs__io_unlink(cp->out->path);
			kvs__cp_add_ghost(db, cp->out->path, cp->out->min_seq,
					  true);
		}
		(void)kvs__err(j->rc, "%s", j->msg);
		/* A failed fdatasync or fsync is never retried; a failed
		 * write or rename (disk full) is, later. */
		if (j->synced_bad)
			fail_pass(db, what);
		else
			give_up_pass(db, what);
		return;
	}
	switch (j->kind) {
	case JOB_SEAL:
		sealed(db);
		break;
	case JOB_PUBLISH:
		published(db);
		break;
	case JOB_DROP:
		dropped(db);
		break;
	}
}

void kvs__compact_step(struct kvs *db,
		       kvs__clients_waiting_fn *clients_waiting)
{
	KVS__ASSERT_WRITER(db);
	KVS__ASSERT_NOT_IN_RCU(); /* it may wait for a job, or rotate */
	struct kvs__compact *cp = db->cp;
	switch (cp->running ? cp->phase : PH_COPY) {
	case PH_JOB:
		if (kvs__bgio_done(&cp->job.bj) || kvs__cp_over_budget(db))
			job_collect(db); /* waits for it if need be */
		return;
	case PH_SWITCH:
		kvs__cp_switch_some(db, clients_waiting);
		return;
	case PH_DROP:
		if (!kvs__cp_victims_hinting(db))
			drop_victims(db);
		return;
	case PH_COPY:
		break;
	}
	if (!cp->running && !kvs__cp_choose_victims(db))
		return;
	uint64_t done = 0, limit = STEP_BYTES + cp->burst;
	while (cp->vi < cp->nvictims && done < limit) {
		if (done >= STEP_MIN &&
		    kvs__cp_should_yield(db, clients_waiting))
			break;
		struct kvs__seg *v = cp->victims[cp->vi];
		int64_t n = v->records ? kvs__cp_copy_one(db, v) : 0;
		if (n == KVS__CP_FAULT) {
			/* The victim's file was cut short or cannot be
			 * read: it stays as it is (its readable records
			 * keep their entries); the pass goes on without
			 * it. */
			(void)kvs__err(KVS_EIO, "%s: mapped page could not be "
				       "read (file truncated or I/O error); "
				       "record at offset %llu", v->path,
				       (unsigned long long)cp->cursor);
			kvs__note_damage(db, v, EIO);
			v->retiring = false;
			cp->vi++;
			cp->cursor = KVS__HDR_LEN;
			continue;
		}
		if (n < 0) {
			if (n == KVS_ECORRUPT) {
				/* Leave the damaged segment as it is; the
				 * next open reports it. */
				kvs__log(db, KVS_LOG_ERROR, "compaction: %s",
					 kvs_errmsg());
				abort_pass(db);
				cp->disabled = true;
				kvs__cp_complete_waiters(db, KVS_ECORRUPT);
				return;
			}
			/* Creating or writing the output failed (disk
			 * full, no descriptor, no memory). */
			give_up_pass(db, "writing the output");
			return;
		}
		if (n == 0) { /* the footer: next victim */
			cp->vi++;
			cp->cursor = KVS__HDR_LEN;
			continue;
		}
		cp->cursor += (uint64_t)n;
		done += (uint64_t)n;
	}
	kvs__cp_pay_burst(cp, done, STEP_BYTES);
	if (!cp->forced)
		cp->tokens -= (double)done;
	if (cp->vi == cp->nvictims) {
		seal_output(db);
		if (!cp->forced)
			cp->tokens -= PASS_COST;
	}
}

void kvs__compact_settle(struct kvs *db,
			 kvs__clients_waiting_fn *clients_waiting)
{
	struct kvs__compact *cp = db->cp;
	while (cp->running && cp->phase != PH_COPY) {
		if (cp->phase == PH_JOB)
			kvs__bgio_wait(db->bg, &cp->job.bj);
		if (cp->phase == PH_DROP) /* wait for the victims' hints */
			for (size_t i = 0; i < cp->nvictims; i++)
				kvs__bgio_wait_hint(db->bg, cp->victims[i]);
		kvs__compact_step(db, clients_waiting);
	}
}

void kvs__compact_free(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	if (!cp)
		return;
	if (cp->running)
		abort_pass(db);
	kvs__cp_complete_waiters(db, KVS_OK);
	free(cp->obuf);
	free(cp->moved);
	free(cp->kbuf);
	free(cp->job.kept);
	for (size_t i = 0; i < cp->nghosts; i++)
		free(cp->ghosts[i].path);
	free(cp->ghosts);
	free(cp);
	db->cp = NULL;
}
