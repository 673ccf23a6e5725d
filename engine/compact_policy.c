/* compact_policy.c - what compaction does and when, writer thread only:
 * choosing a pass's victims, the tombstone rule (with the ghosts of files
 * that may still be on disk), the rate limit and the work owed to client
 * writes, the backoff after a pass that could not write, and the callers of
 * kvs_compact().  No file I/O; the pass itself is compact.c's.
 *
 * Tombstones: a remove record of key k with seq t may be dropped only when
 * no set of k older than t can be left on disk.  The rule used: drop it when
 * the index has a newer entry for k, or when every other segment (the other
 * victims of the pass included, and every ghost) holds only records with
 * seq > t.  Since a victim is deleted only after the copy is durable, a
 * crash between two deletions can never leave an older set without its
 * tombstone. */
#include "compact_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- choosing victims -------------------------------------------------- */

/* The two lowest min_seq over all segments, and whose the lowest is: the
 * lowest seq in every segment but s is (s == min1_seg ? min2 : min1). */
static void lowest_seqs(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	cp->min1 = cp->min2 = UINT64_MAX;
	cp->min1_seg = NULL;
	for (struct kvs__seg *s = db->segs; s; s = s->next) {
		if (s->min_seq < cp->min1) {
			cp->min2 = cp->min1;
			cp->min1 = s->min_seq;
			cp->min1_seg = s;
		} else if (s->min_seq < cp->min2) {
			cp->min2 = s->min_seq;
		}
	}
	/* A file that may still be on disk holds records as old as its
	 * min_seq: no tombstone newer than that may go (struct ghost). */
	for (size_t i = 0; i < cp->nghosts; i++) {
		uint64_t m = cp->ghosts[i].min_seq;
		if (m < cp->min1) {
			cp->min2 = cp->min1;
			cp->min1 = m;
			cp->min1_seg = NULL;
		} else if (m < cp->min2) {
			cp->min2 = m;
		}
	}
}

/* Kept tombstones become garbage once every other segment is newer than
 * the newest of them: no older set of their keys is left. */
void kvs__cp_release_kept(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	lowest_seqs(db);
	for (struct kvs__seg *s = db->segs; s; s = s->next) {
		uint64_t others = s == cp->min1_seg ? cp->min2 : cp->min1;
		if (s->kept_bytes && others > s->kept_max_seq) {
			s->dead_bytes += s->kept_bytes;
			s->kept_bytes = 0;
		}
	}
}

bool kvs__cp_victims_hinting(const struct kvs *db)
{
	const struct kvs__compact *cp = db->cp;
	for (size_t i = 0; i < cp->nvictims; i++)
		if (kvs__bgio_hint_busy(cp->victims[i]))
			return true;
	return false;
}

static bool is_trigger(const struct kvs *db, const struct kvs__seg *s)
{
	const struct kvs__compact *cp = db->cp;
	if (!s->sealed || s == db->active || s->dead_bytes == 0)
		return false;
	/* A file a read or an earlier pass found damaged stays as it is. */
	if (atomic_load_explicit(&s->damage_logged, memory_order_relaxed))
		return false;
	if (cp->forced && s->forced)
		return true;
	if (db->opt.no_auto_compact)
		return false;
	return (double)s->dead_bytes >=
	       cp->ratio * (double)(s->dead_bytes + s->live_bytes +
				    s->kept_bytes);
}

static bool any_trigger(const struct kvs *db)
{
	kvs__testhook_count_cp_walk();
	for (const struct kvs__seg *s = db->segs; s; s = s->next)
		if (is_trigger(db, s))
			return true;
	return false;
}

static double dead_ratio(const struct kvs__seg *s)
{
	uint64_t total = s->dead_bytes + s->live_bytes + s->kept_bytes;
	return total ? (double)s->dead_bytes / (double)total : 1.0;
}

static int by_ratio_desc(const void *a, const void *b)
{
	double x = dead_ratio(*(struct kvs__seg *const *)a);
	double y = dead_ratio(*(struct kvs__seg *const *)b);
	return x < y ? 1 : x > y ? -1 : 0;
}

bool kvs__cp_choose_victims(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	size_t n = 0, empties = 0;
	for (struct kvs__seg *s = db->segs; s; s = s->next) {
		if (is_trigger(db, s))
			n++;
		else if (s->sealed && s != db->active && s->records == 0)
			empties++;
	}
	if (n == 0)
		return false;
	struct kvs__seg **v = malloc((n + empties) * sizeof *v);
	if (!v)
		return false;
	size_t i = 0;
	for (struct kvs__seg *s = db->segs; s; s = s->next)
		if (is_trigger(db, s))
			v[i++] = s;
	qsort(v, n, sizeof *v, by_ratio_desc);
	/* Keep the output to about one segment of live data. */
	uint64_t live = 0;
	size_t keep = 0;
	while (keep < n && (keep == 0 || live + v[keep]->live_bytes <=
						 db->opt.segment_size)) {
		live += v[keep]->live_bytes;
		keep++;
	}
	/* Empty sealed segments (left by earlier passes) go along for free;
	 * they never start a pass on their own. */
	for (struct kvs__seg *s = db->segs; s; s = s->next)
		if (s->sealed && s != db->active && s->records == 0 &&
		    !is_trigger(db, s))
			v[keep++] = s;
	for (size_t j = 0; j < keep; j++)
		v[j]->retiring = true;
	cp->victims = v;
	cp->nvictims = keep;
	cp->vi = 0;
	cp->cursor = KVS__HDR_LEN;

	lowest_seqs(db);
	cp->running = true;
	cp->phase = PH_COPY;
	cp->start_us = kvs__now_us();
	/* Work is owed only to writes made while a pass runs: what clients
	 * wrote before it is this pass's input, not a debt to pay in one
	 * step (that made the first steps of a pass long). */
	cp->burst = 0;
	return true;
}

/* ---- ghosts ------------------------------------------------------------- */

void kvs__cp_add_ghost(struct kvs *db, const char *path, uint64_t min_seq,
		       bool stuck)
{
	struct kvs__compact *cp = db->cp;
	struct ghost *g = realloc(cp->ghosts, (cp->nghosts + 1) * sizeof *g);
	char *p = strdup(path);
	if (!g || !p) {
		/* Without the record, a later pass could drop a tombstone
		 * this file still needs: stop compacting instead. */
		if (g)
			cp->ghosts = g;
		free(p);
		kvs__log(db, KVS_LOG_ERROR, "compaction stopped: out of "
			 "memory to remember %s", path);
		cp->disabled = true;
		return;
	}
	cp->ghosts = g;
	g[cp->nghosts++] = (struct ghost){ .path = p, .min_seq = min_seq,
					   .stuck = stuck };
}

void kvs__cp_ghosts_dropped(struct kvs *db, bool dir_bad)
{
	struct kvs__compact *cp = db->cp;
	/* Ghosts whose unlink the job redid are gone for good once its
	 * directory fsync held; if it failed, they are stuck with the rest. */
	size_t keep = 0;
	for (size_t i = 0; i < cp->nghosts; i++) {
		struct ghost *g = &cp->ghosts[i];
		if (g->gone && !dir_bad) {
			free(g->path);
			continue;
		}
		if (g->gone)
			g->stuck = true;
		cp->ghosts[keep++] = *g;
	}
	cp->nghosts = keep;
}

/* ---- kvs_compact() callers and failed passes ----------------------------- */

void kvs__cp_complete_waiters(struct kvs *db, int result)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__req *r = cp->waiters, *next;
	cp->waiters = NULL;
	cp->forced = false;
	for (; r; r = next) {
		next = r->next;
		r->result = result;
		r->done(r);
	}
}

/* A warning at most once per WARN_EVERY_US (a disk that stays full must
 * not flood the log). */
static void warn_limited(struct kvs *db, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn_limited(struct kvs *db, const char *fmt, ...)
{
	struct kvs__compact *cp = db->cp;
	uint64_t now = kvs__now_us();
	if (cp->warn_us && now - cp->warn_us < WARN_EVERY_US) {
		cp->warn_dropped++;
		return;
	}
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cp->warn_dropped)
		kvs__log(db, KVS_LOG_WARN, "%s (%u more like it not logged)",
			 msg, cp->warn_dropped);
	else
		kvs__log(db, KVS_LOG_WARN, "%s", msg);
	cp->warn_dropped = 0;
	cp->warn_us = now;
}

void kvs__cp_postpone(struct kvs *db, const char *what)
{
	struct kvs__compact *cp = db->cp;
	cp->backoff_us = cp->backoff_us ? cp->backoff_us * 2 : BACKOFF_MIN_US;
	if (cp->backoff_us > BACKOFF_MAX_US)
		cp->backoff_us = BACKOFF_MAX_US;
	cp->retry_at = kvs__now_us() + cp->backoff_us;
	warn_limited(db, "compaction postponed %.2f s: %s: %s",
		     (double)cp->backoff_us / 1e6, what, kvs_errmsg());
	kvs__cp_complete_waiters(db, KVS_ENOSPC);
}

/* ---- the rate limit and the work owed to client writes ------------------- */

/* The token bucket and the work owed to client writes as kvs__compact_tick
 * would leave them at `now`: the bytes clients wrote since the last tick
 * credited, the bucket refilled with the time since.  Both are capped; since
 * only a step takes tokens, and a step always follows a tick, ticking more
 * or less often between two steps ends in the same figures. */
struct bucket {
	double tokens;
	uint64_t burst;
};

static struct bucket ticked(const struct kvs *db, uint64_t now)
{
	const struct kvs__compact *cp = db->cp;
	uint64_t credit = WRITE_CREDIT *
			  (db->counters.bytes_written - cp->written_seen);
	struct bucket b = { cp->tokens + (double)credit, cp->burst + credit };
	if (b.burst > MAX_BURST)
		b.burst = MAX_BURST;
	b.tokens += (double)(now - cp->refill_us) * (double)cp->rate / 1e6;
	if (b.tokens > 32.0 * STEP_BYTES)
		b.tokens = 32.0 * STEP_BYTES;
	return b;
}

/* The work compaction may owe client writes before it is behind them. */
static uint64_t burst_slack(const struct kvs *db)
{
	uint64_t slack = db->opt.segment_size / 4;
	return slack < BURST_SLACK ? slack : BURST_SLACK;
}

/* Compaction owes client writes (burst) more work than it may put off. */
static bool behind(const struct kvs *db, uint64_t burst)
{
	return burst > burst_slack(db);
}

bool kvs__cp_should_yield(const struct kvs *db,
			  kvs__clients_waiting_fn *clients_waiting)
{
	return !behind(db, db->cp->burst) && clients_waiting(db);
}

void kvs__cp_pay_burst(struct kvs__compact *cp, uint64_t done, uint64_t share)
{
	uint64_t extra = done > share ? done - share : 0;
	cp->burst = extra >= cp->burst ? 0 : cp->burst - extra;
}

/* The bytes of the running pass's files that no segment of the list
 * counts: its output until it is published, its victims from the moment
 * they leave the list until the job has unlinked them. */
static uint64_t unlisted_bytes(const struct kvs *db)
{
	const struct kvs__compact *cp = db->cp;
	if (!cp->running)
		return 0;
	if (cp->phase == PH_JOB && cp->job.kind == JOB_DROP)
		return cp->freed;
	if (cp->out && (cp->phase == PH_COPY || cp->phase == PH_JOB))
		return cp->out->size;
	return 0;
}

/* Garbage (with the pass's files outside the list) past one segment more
 * than the live data, while clients write faster than compaction keeps up
 * (it owes them more than BURST_SLACK of work): the writer then waits for a
 * job instead of writing on, or overwrites could outrun compaction and the
 * directory grow without bound.  Garbage left from before, under a light
 * load, is no reason to stall. */
static bool over_budget(const struct kvs *db, uint64_t burst)
{
	if (!behind(db, burst))
		return false; /* clients write slowly: compaction keeps up */
	uint64_t live = 0, dead = unlisted_bytes(db);
	for (const struct kvs__seg *s = db->segs; s; s = s->next) {
		live += s->live_bytes;
		dead += s->dead_bytes;
	}
	return dead > live + db->opt.segment_size;
}

bool kvs__cp_over_budget(const struct kvs *db)
{
	return over_budget(db, db->cp->burst);
}

/* Microseconds left of the quiet time after the last round of client
 * requests (0 when it is over, or when compaction owes too much work to
 * wait). */
static uint64_t quiet_delay(const struct kvs *db, uint64_t burst,
			    uint64_t now)
{
	if (behind(db, burst))
		return 0;
	return now < db->cp->quiet_until ? db->cp->quiet_until - now : 0;
}

void kvs__compact_tick(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__compact *cp = db->cp;
	uint64_t now = kvs__now_us();
	struct bucket b = ticked(db, now);
	cp->tokens = b.tokens;
	cp->burst = b.burst;
	cp->written_seen = db->counters.bytes_written;
	cp->refill_us = now;
	/* kvs_compact() callers whose work is done, or was never there. */
	if (cp->forced && !cp->running && !cp->disabled &&
	    !atomic_load(&db->health.failed) && !any_trigger(db))
		kvs__cp_complete_waiters(db, KVS_OK);
}

bool kvs__compact_pending(const struct kvs *db, uint64_t *delay_us)
{
	KVS__ASSERT_WRITER(db);
	const struct kvs__compact *cp = db->cp;
	uint64_t now = kvs__now_us();
	struct bucket b = ticked(db, now);
	*delay_us = 0;
	/* A job in flight wakes the writer when it is done; the other
	 * phases have no I/O to pace (only the quiet time after a round). */
	if (cp->running && cp->phase == PH_JOB)
		return kvs__bgio_done(&cp->job.bj) || over_budget(db, b.burst);
	if (cp->running && cp->phase == PH_DROP && kvs__cp_victims_hinting(db))
		return false; /* bgio wakes the writer when it is done */
	if (cp->running && cp->phase != PH_COPY) {
		*delay_us = quiet_delay(db, b.burst, now);
		return true;
	}
	if (cp->disabled || atomic_load(&db->health.failed))
		return false;
	if (!cp->running) {
		if (!any_trigger(db))
			return cp->forced; /* the tick completes its callers */
		/* After a pass gave up (disk full...): not before the
		 * backoff is over, unless kvs_compact() asks; the writer
		 * wakes up for it then. */
		if (!cp->forced && now < cp->retry_at) {
			*delay_us = cp->retry_at - now;
			return true;
		}
	}
	if ((*delay_us = quiet_delay(db, b.burst, now)) != 0 || cp->forced)
		return true;
	if (b.tokens < STEP_BYTES)
		*delay_us = (uint64_t)(((double)STEP_BYTES - b.tokens) * 1e6 /
				       (double)cp->rate) + 1;
	return true;
}

bool kvs__compact_due_inline(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__compact *cp = db->cp;
	uint64_t delay;
	/* With no pass running, the answer turns on a walk of the segment
	 * list (any_trigger); only overwrites make a candidate, so look again
	 * only after as many bytes as the slack.  Meanwhile the writer's own
	 * look (KVS__HOUSEKEEP_US after a caller's round) still finds it. */
	if (!cp->running && !cp->forced) {
		uint64_t w = db->counters.bytes_written;
		if (w - cp->trigger_seen < burst_slack(db))
			return false;
		cp->trigger_seen = w;
	}
	return kvs__compact_pending(db, &delay) && delay == 0;
}

void kvs__compact_note_round(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	db->cp->quiet_until = kvs__now_us() + QUIET_US;
}

/* ---- requests from the writer's rounds ---------------------------------- */

void kvs__compact_check_active(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *a = db->active;
	if (db->opt.no_auto_compact || cp->disabled || a->records == 0)
		return;
	if (a->dead_bytes >= cp->min_dead &&
	    (double)a->dead_bytes >= cp->ratio * (double)(a->dead_bytes +
							  a->live_bytes))
		/* A shortage leaves the active segment as it was (the next
		 * round retries); a failed sync marks the handle failed. */
		(void)kvs__rotate(db);
}

void kvs__compact_request(struct kvs *db, struct kvs__req *req)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__compact *cp = db->cp;
	if (atomic_load(&db->health.failed) || cp->disabled) {
		req->result = atomic_load(&db->health.failed) ? KVS_EFAILED : KVS_EIO;
		req->done(req);
		return;
	}
	/* Seal the active segment so that its garbage is covered too. */
	int rc;
	if (db->active->records > 0 && (rc = kvs__rotate(db)) != KVS_OK) {
		/* KVS_ENOSPC: a shortage refused the rotation, and nothing
		 * changed; otherwise a failed sync failed the handle. */
		req->result = rc == KVS_ENOSPC ? KVS_ENOSPC : KVS_EIO;
		req->done(req);
		return;
	}
	/* The call covers the segments sealed now, not the outputs of its
	 * own passes (which writes meanwhile may give garbage too). */
	for (struct kvs__seg *s = db->segs; s; s = s->next)
		if (s->sealed)
			s->forced = true;
	cp->forced = true;
	req->next = cp->waiters;
	cp->waiters = req;
}
