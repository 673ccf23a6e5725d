/* compact.c - background compaction, run by the writer thread in bounded
 * steps between client writes: live records of mostly-dead sealed segments
 * are copied (byte for byte: same seq, same CRC) into a new segment, the
 * index is switched to the copies, and the old segments are deleted.
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
 * Tombstones: a remove record of key k with seq t may be dropped only when
 * no set of k older than t can be left on disk.  The rule used: drop it when
 * the index has a newer entry for k, or when every other segment (the other
 * victims of the pass included) holds only records with seq > t.  Since a
 * victim is deleted only after the copy is durable, a crash between two
 * deletions can never leave an older set without its tombstone.
 *
 * Crash safety: the copy is written as NNNNNNNNNN.seg.tmp (removed on open)
 * and renamed only once it is sealed and synced; the victims are unlinked
 * only after that, so at every moment the directory holds every live record
 * at least once, and recovery resolves duplicates by sequence number.  The
 * active segment is synced before the victims go, so that overwrites of
 * their dead records survive a power cut under fsync everysec or never. */
#include "engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define STEP_BYTES (8u << 10)     /* input read per step (~15 us of work) */
#define PASS_COST (256u << 10)    /* tokens a pass's syncs and renames cost */
#define WRITE_CREDIT 2            /* compaction bytes earned per byte written */
#define OBUF_MAX (64u << 10)      /* output written per pwrite (~30 us) */
#define WRITEBACK_EVERY (1u << 20) /* output bytes per sync_file_range */
#define DEFAULT_RATIO 0.5
#define DEFAULT_MIN_DEAD (4ull << 20)
#define DEFAULT_RATE (32ull << 20)
#define SWITCH_CHUNK 64          /* index entries switched per step */
#define MAX_BURST (64ull << 20)   /* most extra work one step may owe */
/* A step gives way to a waiting client request once it has done STEP_MIN
 * bytes (or SWITCH_MIN entries), unless compaction owes more than
 * BURST_SLACK of work to client writes: then it pays that down first, so
 * that a steady stream of requests cannot starve it. */
#define STEP_MIN (2u << 10)
#define SWITCH_MIN 16
#define BURST_SLACK (256u << 10)  /* or a quarter segment, if less */
/* After a round of client requests, compaction waits this long for the
 * queue to stay empty before its next step: the threads the round woke
 * (on a small machine, often waiting for the CPU the writer is on) run
 * first. */
#define QUIET_US 50
/* A pass that could not write its output (disk full, no descriptor, no
 * memory) is tried again after BACKOFF_MIN_US, doubling up to
 * BACKOFF_MAX_US while it keeps failing; its warning is logged at most
 * once per WARN_EVERY_US. */
#define BACKOFF_MIN_US 250000ull
#define BACKOFF_MAX_US 30000000ull
#define WARN_EVERY_US 1000000ull

/* A pass's fsyncs and renames (a millisecond or more each) run on a
 * helper thread, started with the first pass and kept until close, so that
 * the writer goes on serving client writes meanwhile.  The writer posts a
 * job under j_mu; while it runs the writer touches neither the output nor
 * the victims' files; it sees the job done (`done`, set with release
 * order, then q_cv is signalled under q_mu, which wakes the writer) before
 * it uses the results. */
enum job_kind {
	JOB_SEAL,    /* write the output's footer, fdatasync it */
	JOB_PUBLISH, /* rename the output into place, fsync the directory,
			write its hint file */
	JOB_DROP,    /* unlink the victims, fsync the directory */
};

struct job {
	enum job_kind kind;
	atomic_bool done;
	int rc;                  /* JOB_SEAL, JOB_PUBLISH: KVS_OK or error */
	int warn_rc;             /* a failure only worth a warning */
	bool synced_bad;         /* JOB_SEAL, JOB_PUBLISH: the failure was a
				    failed fdatasync/fsync (sticky), not a
				    write, creation or rename (transient) */
	bool renamed;            /* JOB_PUBLISH: the output has its final
				    name, even if the job failed */
	bool dir_bad;            /* JOB_DROP: the directory fsync failed */
	bool *kept;              /* JOB_DROP: [i] victim i's unlink failed
				    (NULL if it could not be allocated:
				    then unlink_bad stands for all) */
	bool unlink_bad;
	char msg[512];           /* kvs_errmsg() of the failure */
	unsigned char foot[KVS__REC_MAX_HEAD + 5];
	size_t foot_len;
	uint64_t footer_off;
	size_t ngone;            /* JOB_DROP: victims[0..ngone) go */
	struct kvs__seg *sync_first; /* JOB_DROP: fdatasync'd before that */
};

/* A file compaction removed from the segment list that may still be in the
 * directory: its unlink failed, or the directory fsync after the unlink
 * failed (a power cut could then bring it back).  Its records count, for
 * the tombstone rule, as if it were still a segment: a tombstone newer than
 * its lowest seq is kept, or the file could bring a removed key back at the
 * next open.  A ghost whose unlink failed is tried again by the next pass's
 * drop job; one whose directory fsync failed stays for the handle's life
 * (a failed fsync is never retried and taken for success). */
struct ghost {
	char *path;
	uint64_t min_seq;
	bool stuck;              /* a directory fsync failed after it */
	bool gone;               /* the drop job unlinked it (or found it
				    gone), pending that job's directory
				    fsync */
};

/* A live SET record copied by the running pass. */
struct moved {
	const unsigned char *key; /* into the victim's mapping */
	uint32_t klen;
	uint32_t old_off, new_off;
	uint32_t rec_len, vlen;
	uint64_t hash;
	struct kvs__seg *victim;
};

struct kvs__compact {
	double ratio;
	uint64_t min_dead, rate;
	bool disabled;           /* after a failed sync or corruption in a pass */
	/* Transient failures (see give_up_pass): no pass starts before
	 * retry_at unless kvs_compact() asks; backoff_us is the next wait. */
	uint64_t retry_at, backoff_us;
	uint64_t warn_us;        /* when the last rate-limited warning went */
	unsigned warn_dropped;   /* warnings not logged since */
	struct ghost *ghosts;    /* see struct ghost; writer only, read by
				    the drop job while it runs */
	size_t nghosts;
	unsigned char *kbuf;     /* a moved key, copied from its victim */
	size_t kcap;

	/* The rate limit: a token bucket of input bytes, filled at `rate`
	 * plus WRITE_CREDIT per byte clients write, so that compaction keeps
	 * up with any sustained overwrite load while idle-time work stays
	 * capped. */
	double tokens;
	uint64_t refill_us;
	uint64_t written_seen;   /* db->counters-based byte count */
	/* Work owed to client writes since the last step (WRITE_CREDIT per
	 * byte written): the next step does that much more than its usual
	 * share, so that compaction keeps pace with any write rate while a
	 * step on a lightly loaded store stays short. */
	uint64_t burst;
	uint64_t quiet_until;    /* kvs__now_us(): no step before, unless owed */

	/* kvs_compact() callers, completed when the forced work is done. */
	struct kvs__req *waiters;
	bool forced;

	/* The pass in progress: copy the live records (bounded steps), seal
	 * the output, switch the index to it (bounded steps), drop the
	 * victims.  Client writes run between any two steps. */
	bool running;
	enum { PH_COPY, PH_JOB, PH_SWITCH, PH_DROP } phase;
	struct job job;          /* PH_JOB */
	/* The helper thread that runs jobs. */
	pthread_t helper;
	bool helper_started;
	pthread_mutex_t j_mu;
	pthread_cond_t j_cv;     /* j_posted or j_stop was set */
	bool j_posted, j_stop;   /* under j_mu */
	/* Sealed segments whose hint files the helper is to write, oldest
	 * first (under j_mu; see kvs__compact_hint_later). */
	struct kvs__seg *hint_head, *hint_tail;
	uint64_t freed;          /* victim bytes deleted by the pass */
	size_t si;               /* PH_SWITCH: moved[] done so far */
	uint64_t out_bytes;      /* size of the sealed output */
	struct kvs__seg **victims;
	size_t nvictims, vi;
	uint64_t cursor;         /* offset in victims[vi] */
	uint64_t min1, min2;     /* the two lowest min_seq over all segments */
	struct kvs__seg *min1_seg;
	struct kvs__seg *out;    /* the output, NNNNNNNNNN.seg.tmp */
	uint64_t written_back;   /* out's bytes whose write-back was started */
	unsigned char *obuf;
	size_t olen, ocap;
	struct moved *moved;
	size_t nmoved, capmoved;
	uint64_t start_us;
};

int kvs__compact_init(struct kvs *db)
{
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
	KVS_CHECK(pthread_mutex_init(&cp->j_mu, NULL));
	KVS_CHECK(pthread_cond_init(&cp->j_cv, NULL));
	db->cp = cp;
	return KVS_OK;
}

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
static void release_kept(struct kvs *db)
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

/* The helper has yet to write the segment's hint: the segment must stay
 * (a victim's drop waits for it). */
static bool hint_busy(const struct kvs__seg *s)
{
	return atomic_load_explicit(&s->hint_busy, memory_order_acquire);
}

/* A victim of the running pass still has its hint being written. */
static bool victims_hinting(const struct kvs *db)
{
	const struct kvs__compact *cp = db->cp;
	for (size_t i = 0; i < cp->nvictims; i++)
		if (hint_busy(cp->victims[i]))
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

/* Pick this pass's victims; false if there is nothing to do. */
static bool choose_victims(struct kvs *db)
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
	cp->start_us = kvs__now_us();
	/* Work is owed only to writes made while a pass runs: what clients
	 * wrote before it is this pass's input, not a debt to pay in one
	 * step (that made the first steps of a pass long). */
	cp->burst = 0;
	return true;
}

/* ---- the pass ----------------------------------------------------------- */

static void abort_pass(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	for (size_t i = 0; i < cp->nvictims; i++)
		cp->victims[i]->retiring = false;
	if (cp->out) {
		char *tmp = NULL;
		if (asprintf(&tmp, "%s.tmp", cp->out->path) >= 0)
			unlink(tmp);
		free(tmp);
		kvs__seg_free(cp->out);
	}
	free(cp->victims);
	cp->victims = NULL;
	cp->nvictims = cp->vi = 0;
	cp->out = NULL;
	cp->olen = 0;
	cp->nmoved = 0;
	cp->running = false;
	cp->phase = PH_COPY;
}

static void complete_waiters(struct kvs *db, int result)
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

static void fail_pass(struct kvs *db, const char *what)
{
	kvs__log(db, KVS_LOG_ERROR, "compaction stopped: %s: %s", what,
		 kvs_errmsg());
	abort_pass(db);
	db->cp->disabled = true;
	complete_waiters(db, KVS_EIO);
}

/* Remember a file that may still be in the directory (struct ghost). */
static void add_ghost(struct kvs *db, const char *path, uint64_t min_seq,
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

/* The pass could not create or write its output (disk full, no file
 * descriptor, no memory): nothing of it is used, its temporary file is
 * removed and the victims stay as they are (readable, in the list).  Not a
 * failure of the store: the pass is tried again after a backoff; callers of
 * kvs_compact() get KVS_ENOSPC. */
static void give_up_pass(struct kvs *db, const char *what)
{
	struct kvs__compact *cp = db->cp;
	abort_pass(db);
	cp->backoff_us = cp->backoff_us ? cp->backoff_us * 2 : BACKOFF_MIN_US;
	if (cp->backoff_us > BACKOFF_MAX_US)
		cp->backoff_us = BACKOFF_MAX_US;
	cp->retry_at = kvs__now_us() + cp->backoff_us;
	warn_limited(db, "compaction postponed %.2f s: %s: %s",
		     (double)cp->backoff_us / 1e6, what, kvs_errmsg());
	complete_waiters(db, KVS_ENOSPC);
}

static int out_flush(struct kvs *db)
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
		return kvs__err_errno(KVS_EIO, e, "%s.tmp: write", cp->out->path);
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
		if (cp->olen && (*rc = out_flush(db)) != KVS_OK)
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
	int rc = e ? kvs__err_errno(KVS_EIO, e, "%s/%010u.seg.tmp: create",
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

/* copy_one: a page of the victim's mapping could not be read. */
#define COPY_FAULT INT64_MIN

/* Copy (or drop) the record at the cursor; returns its length, or 0 at the
 * victim's footer, or a negative error, or COPY_FAULT.  Every read of the
 * victim's mapping here is guarded (its file may have been cut short under
 * the process: mapguard.c): a fault jumps back to the sigsetjmp, leaving the
 * read-side section if it was in one.  The record is checked (CRC) and
 * decided on in place, and only a kept one is copied into the output
 * buffer; out_reserve runs inside the guard but touches no mapping, so a
 * fault can only come after it is complete. */
static int64_t copy_one(struct kvs *db, struct kvs__seg *v)
{
	struct kvs__compact *cp = db->cp;
	const unsigned char *rec = v->map + cp->cursor;
	struct kvs_record r;
	uint32_t crc;
	const char *why = "";
	volatile bool locked = false;
	int rc = KVS_OK;

	if (sigsetjmp(kvs__mapguard.jb, 0) != 0) {
		if (locked)
			kvs__read_unlock();
		return COPY_FAULT;
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
	uint64_t hash = kvs__index_hash(db->index, r.key, r.klen);
	locked = true;
	kvs__read_lock();
	struct kvs__entry *e = kvs__index_lookup(db->index, hash, r.key, r.klen);
	bool keep;
	if (r.type == KVS_REC_SET) {
		keep = e && e->seg == v && e->off == cp->cursor;
	} else {
		uint64_t others = v == cp->min1_seg ? cp->min2 : cp->min1;
		keep = !e && others < r.seq;
	}
	kvs__read_unlock();
	locked = false;
	unsigned char *dst = NULL;
	if (keep && (dst = out_reserve(db, r.length, &rc)) != NULL)
		memcpy(dst, rec, r.length);
	KVS__MAP_DISARM();
	if (!keep)
		return (int64_t)r.length;
	if (!dst)
		return rc;

	uint32_t new_off = (uint32_t)(cp->out ? cp->out->size : KVS__HDR_LEN);
	if ((rc = out_open(db)) != KVS_OK)
		return rc;
	out_commit(db, &r);
	if (r.type == KVS_REC_REMOVE) {
		/* A tombstone that must stay is not garbage: the output must
		 * not become a candidate again at once because of it. */
		cp->out->kept_bytes += r.length;
		if (r.seq > cp->out->kept_max_seq)
			cp->out->kept_max_seq = r.seq;
		return (int64_t)r.length;
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
	return (int64_t)r.length;
}

/* Compaction owes client writes more work than it may put off. */
static bool behind(const struct kvs *db)
{
	uint64_t slack = db->opt.segment_size / 4;
	return db->cp->burst > (slack < BURST_SLACK ? slack : BURST_SLACK);
}

/* A client request is queued, and compaction owes little enough work that
 * the step may stop early for it. */
static bool client_waiting(const struct kvs *db)
{
	return !behind(db) &&
	       atomic_load_explicit(&db->q_len, memory_order_relaxed) != 0;
}

/* A step did `done` bytes' worth of work, of which `share` was its usual
 * share: the rest pays for work owed to client writes. */
static void pay_burst(struct kvs__compact *cp, uint64_t done, uint64_t share)
{
	uint64_t extra = done > share ? done - share : 0;
	cp->burst = extra >= cp->burst ? 0 : cp->burst - extra;
}

/* Switch up to SWITCH_CHUNK still-current entries to their copies in the
 * output (sealed, durable and published already); then the victims go. */
static void switch_some(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct kvs__seg *out = cp->out;
	size_t chunk = SWITCH_CHUNK + cp->burst / 64; /* ~ one per record */
	size_t end = cp->nmoved - cp->si > chunk ? cp->si + chunk : cp->nmoved;
	size_t i;
	kvs__read_lock();
	for (i = cp->si; i < end; i++) {
		if (i - cp->si >= SWITCH_MIN && client_waiting(db))
			break;
		const struct moved *m = &cp->moved[i];
		if (!m->victim->retiring) {
			/* The victim stays (a page of it could not be read,
			 * or an entry of it could not be switched): so do
			 * all its entries. */
			out->dead_bytes += m->rec_len;
			continue;
		}
		/* The key is read from the victim's mapping, guarded; the
		 * copy is what the index calls see. */
		if (m->klen > cp->kcap) {
			unsigned char *k = realloc(cp->kbuf, m->klen);
			if (!k) {
				m->victim->retiring = false;
				out->dead_bytes += m->rec_len;
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
			out->dead_bytes += m->rec_len;
			continue;
		}
		struct kvs__entry *e =
			kvs__index_lookup(db->index, m->hash, cp->kbuf, m->klen);
		if (!e || e->seg != m->victim || e->off != m->old_off) {
			out->dead_bytes += m->rec_len; /* overwritten meanwhile */
			continue;
		}
		struct kvs__entry *n = kvs__entry_new(db->index, cp->kbuf, m->klen);
		if (!n) {
			/* Keep the old entry: the victim then cannot go. */
			m->victim->retiring = false;
			out->dead_bytes += m->rec_len;
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
	pay_burst(cp, (i - cp->si) * 64, SWITCH_CHUNK * 64);
	cp->si = i;
	if (i == cp->nmoved) {
		cp->out = NULL;
		cp->phase = PH_DROP;
	}
}

static void insert_by_id(struct kvs *db, struct kvs__seg *seg)
{
	struct kvs__seg **pp = &db->segs;
	while (*pp && (*pp)->id < seg->id)
		pp = &(*pp)->next;
	seg->next = *pp;
	*pp = seg;
}

/* ---- the pass's I/O jobs ------------------------------------------------ */

static void job_run(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct job *j = &cp->job;
	struct kvs__seg *out = cp->out;
	int e;

	j->rc = j->warn_rc = KVS_OK;
	j->synced_bad = j->renamed = j->dir_bad = j->unlink_bad = false;
	switch (j->kind) {
	case JOB_SEAL:
		e = kvs__io_pwrite_all(out->fd, j->foot, j->foot_len,
				       (off_t)j->footer_off);
		if (e) {
			j->rc = kvs__err_errno(KVS_EIO, e, "%s.tmp: write",
					       out->path);
		} else if ((e = kvs__io_fdatasync(out->fd)) != 0) {
			j->rc = kvs__err_errno(KVS_EIO, e, "%s.tmp: fdatasync",
					       out->path);
			j->synced_bad = true;
		}
		break;
	case JOB_PUBLISH:
		j->rc = kvs__seg_publish_tmp(db->dir, out);
		/* Renamed, then failed: the directory fsync failed. */
		j->renamed = j->rc == KVS_OK || access(out->path, F_OK) == 0;
		j->synced_bad = j->rc != KVS_OK && j->renamed;
		/* The hint only speeds up the next open. */
		if (j->rc == KVS_OK)
			j->warn_rc = kvs__seg_write_hint(db->dir, out,
							 j->footer_off);
		break;
	case JOB_DROP:
		/* A victim's dead records were overwritten by records that
		 * may still be only in the page cache (fsync everysec or
		 * never); those must be durable before the old values go, or
		 * a power cut would lose both. */
		if (j->sync_first && (e = kvs__seg_sync(db, j->sync_first))) {
			j->rc = kvs__err_errno(KVS_EIO, e, "%s: fdatasync",
					       j->sync_first->path);
			break;
		}
		/* A victim whose unlink fails becomes a ghost (struct
		 * ghost), as do all of them if the directory fsync fails. */
		for (size_t i = 0; i < j->ngone; i++) {
			struct kvs__seg *v = cp->victims[i];
			e = kvs__testhook_fail_unlink(v->path);
			if (!e && unlink(v->path) != 0 && errno != ENOENT)
				e = errno;
			if (e) {
				j->warn_rc = kvs__err_errno(KVS_EIO, e,
							    "%s: unlink",
							    v->path);
				j->unlink_bad = true;
				if (j->kept)
					j->kept[i] = true;
			}
			char *hint = kvs__hint_path(db->dir, v->id);
			if (hint)
				unlink(hint);
			free(hint);
		}
		/* Ghosts of earlier passes are tried again. */
		for (size_t i = 0; i < cp->nghosts; i++) {
			struct ghost *g = &cp->ghosts[i];
			if (g->stuck || g->gone)
				continue;
			e = kvs__testhook_fail_unlink(g->path);
			g->gone = !e && (unlink(g->path) == 0 || errno == ENOENT);
		}
		e = kvs__testhook_fail(KVS__TH_FSYNC_DIR);
		if (e || (e = kvs__io_fsync_dir(db->dir)) != 0) {
			j->warn_rc = kvs__err_errno(KVS_EIO, e, "%s: fsync "
						    "after removing compacted "
						    "segments", db->dir);
			j->dir_bad = true;
		}
		break;
	}
	if (j->rc != KVS_OK || j->warn_rc != KVS_OK)
		snprintf(j->msg, sizeof j->msg, "%s", kvs_errmsg());
	KVS_CHECK(pthread_mutex_lock(&db->q_mu));
	atomic_store_explicit(&j->done, true, memory_order_release);
	KVS_CHECK(pthread_cond_broadcast(&db->q_cv));
	KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
}

/* Write a sealed segment's hint (the helper), then let the writer see the
 * segment free again. */
static void hint_run(struct kvs *db, struct kvs__seg *seg)
{
	/* The hint only speeds up the next open: failing to write it is not
	 * a failed write. */
	sig_atomic_t faults = kvs__mapguard.faults;
	if (kvs__seg_write_hint(db->dir, seg, seg->hint_footer_off) != KVS_OK) {
		if (kvs__mapguard.faults != faults)
			kvs__note_damage(db, seg, EIO); /* logs it */
		else
			kvs__log(db, KVS_LOG_WARN, "%s", kvs_errmsg());
	}
	KVS_CHECK(pthread_mutex_lock(&db->q_mu));
	atomic_store_explicit(&seg->hint_busy, false, memory_order_release);
	/* A kvs_compact() call may be waiting for the segment. */
	KVS_CHECK(pthread_cond_broadcast(&db->q_cv));
	KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
}

static void *helper_main(void *arg)
{
	struct kvs *db = arg;
	struct kvs__compact *cp = db->cp;

	/* Jobs are background work (a hint's encoding alone takes
	 * milliseconds of CPU): at a low priority, a thread that serves
	 * clients preempts the helper as soon as it wakes, and on a small
	 * machine the writer is not descheduled for it.  Nice 10 (about a
	 * tenth of a normal thread's share under contention), not SCHED_IDLE
	 * or nice 19: under full load the helper still progresses, so a
	 * writer waiting for a job (see over_budget) is not starved.  A
	 * failure here is harmless. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	KVS_CHECK(pthread_mutex_lock(&cp->j_mu));
	for (;;) {
		while (!cp->j_posted && !cp->j_stop && !cp->hint_head)
			KVS_CHECK(pthread_cond_wait(&cp->j_cv, &cp->j_mu));
		if (cp->j_posted) { /* a pass's job first: it may be awaited */
			cp->j_posted = false;
			KVS_CHECK(pthread_mutex_unlock(&cp->j_mu));
			job_run(db);
			KVS_CHECK(pthread_mutex_lock(&cp->j_mu));
			continue;
		}
		if (!cp->hint_head)
			break; /* stopping; queued hints are written first, so
				  that the next open finds them */
		struct kvs__seg *seg = cp->hint_head;
		if (!(cp->hint_head = seg->hint_next))
			cp->hint_tail = NULL;
		KVS_CHECK(pthread_mutex_unlock(&cp->j_mu));
		hint_run(db, seg);
		KVS_CHECK(pthread_mutex_lock(&cp->j_mu));
	}
	KVS_CHECK(pthread_mutex_unlock(&cp->j_mu));
	return NULL;
}

/* Start the helper thread if it is not running yet; false if it cannot. */
static bool helper_ensure(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	if (!cp->helper_started)
		cp->helper_started =
			pthread_create(&cp->helper, NULL, helper_main, db) == 0;
	return cp->helper_started;
}

void kvs__compact_hint_later(struct kvs *db, struct kvs__seg *seg,
			     uint64_t footer_off)
{
	struct kvs__compact *cp = db->cp;
	seg->hint_footer_off = footer_off;
	if (!helper_ensure(db)) {
		if (kvs__seg_write_hint(db->dir, seg, footer_off) != KVS_OK)
			kvs__log(db, KVS_LOG_WARN, "%s", kvs_errmsg());
		return;
	}
	atomic_store_explicit(&seg->hint_busy, true, memory_order_relaxed);
	seg->hint_next = NULL;
	KVS_CHECK(pthread_mutex_lock(&cp->j_mu));
	if (cp->hint_tail)
		cp->hint_tail->hint_next = seg;
	else
		cp->hint_head = seg;
	cp->hint_tail = seg;
	KVS_CHECK(pthread_cond_signal(&cp->j_cv));
	KVS_CHECK(pthread_mutex_unlock(&cp->j_mu));
}

static void job_start(struct kvs *db, enum job_kind kind)
{
	struct kvs__compact *cp = db->cp;
	struct job *j = &cp->job;
	j->kind = kind;
	atomic_store_explicit(&j->done, false, memory_order_relaxed);
	cp->phase = PH_JOB;
	if (!helper_ensure(db)) {
		job_run(db); /* no thread to spare: do it here */
		return;
	}
	KVS_CHECK(pthread_mutex_lock(&cp->j_mu));
	cp->j_posted = true;
	KVS_CHECK(pthread_cond_signal(&cp->j_cv));
	KVS_CHECK(pthread_mutex_unlock(&cp->j_mu));
}

/* Wait until the job is done (at once if it is). */
static void job_wait(struct kvs *db)
{
	struct job *j = &db->cp->job;
	if (atomic_load_explicit(&j->done, memory_order_acquire))
		return;
	KVS_CHECK(pthread_mutex_lock(&db->q_mu));
	while (!atomic_load_explicit(&j->done, memory_order_acquire))
		KVS_CHECK(pthread_cond_wait(&db->q_cv, &db->q_mu));
	KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
}

/* ---- ending a pass ----------------------------------------------------------- */

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
	if (out_flush(db) != KVS_OK) {
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
			complete_waiters(db, KVS_EIO);
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
	cp->job.sync_first = ngone && db->opt.fsync != KVS_FSYNC_ALWAYS
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
	/* Ghosts whose unlink this job redid are gone for good once its
	 * directory fsync held; if it failed, they are stuck with the rest. */
	size_t keep = 0;
	for (size_t i = 0; i < cp->nghosts; i++) {
		struct ghost *g = &cp->ghosts[i];
		if (g->gone && !j->dir_bad) {
			free(g->path);
			continue;
		}
		if (g->gone)
			g->stuck = true;
		cp->ghosts[keep++] = *g;
	}
	cp->nghosts = keep;
	for (size_t i = 0; i < j->ngone; i++) {
		struct kvs__seg *v = cp->victims[i];
		bool kept = j->kept ? j->kept[i] : j->unlink_bad;
		if (kept || j->dir_bad)
			add_ghost(db, v->path, v->min_seq, j->dir_bad);
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

	release_kept(db);
	/* Forced work is over when no candidate it covers is left. */
	if (cp->forced) {
		bool more = false;
		for (struct kvs__seg *s = db->segs; s; s = s->next)
			if (s->sealed && s != db->active && s->forced &&
			    s->dead_bytes)
				more = true;
		if (!more)
			complete_waiters(db, KVS_OK);
	}
}

/* Garbage past one segment more than the live data, while clients write
 * faster than compaction keeps up (it owes them more than BURST_SLACK of
 * work): the writer then waits for a job instead of writing on, or
 * overwrites could outrun compaction and the directory grow without bound.
 * Garbage left from before, under a light load, is no reason to stall. */
static bool over_budget(const struct kvs *db)
{
	if (!behind(db))
		return false; /* clients write slowly: compaction keeps up */
	uint64_t live = 0, dead = 0;
	for (const struct kvs__seg *s = db->segs; s; s = s->next) {
		live += s->live_bytes;
		dead += s->dead_bytes;
	}
	return dead > live + db->opt.segment_size;
}

/* A finished job: go on with the pass. */
static void job_collect(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	struct job *j = &cp->job;
	job_wait(db);
	if (j->warn_rc != KVS_OK)
		kvs__log(db, KVS_LOG_WARN, "compaction: %s", j->msg);
	if (j->rc != KVS_OK && j->kind == JOB_DROP) {
		/* The active segment could not be synced: its records may be
		 * lost, so the handle fails, as a failed write's would.  The
		 * victims' files stay (the next open skips their duplicates);
		 * they are already out of the list. */
		kvs__log(db, KVS_LOG_ERROR, "compaction: %s", j->msg);
		kvs__set_failed(db, EIO, j->sync_first->path);
		complete_waiters(db, KVS_EIO);
	} else if (j->rc != KVS_OK) {
		const char *what = j->kind == JOB_SEAL ? "sealing the output"
						       : "renaming the output";
		if (j->kind == JOB_PUBLISH && j->renamed) {
			/* The output has its final name, but the directory
			 * fsync failed: whether it stays after a power cut
			 * is unknown, so it is removed and remembered as a
			 * ghost for good. */
			(void)unlink(cp->out->path);
			add_ghost(db, cp->out->path, cp->out->min_seq, true);
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

void kvs__compact_step(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	switch (cp->running ? cp->phase : PH_COPY) {
	case PH_JOB:
		if (atomic_load_explicit(&cp->job.done, memory_order_acquire) ||
		    over_budget(db))
			job_collect(db); /* waits for it if need be */
		return;
	case PH_SWITCH:
		switch_some(db);
		return;
	case PH_DROP:
		if (!victims_hinting(db))
			drop_victims(db);
		return;
	case PH_COPY:
		break;
	}
	if (!cp->running && !choose_victims(db))
		return;
	uint64_t done = 0, limit = STEP_BYTES + cp->burst;
	while (cp->vi < cp->nvictims && done < limit) {
		if (done >= STEP_MIN && client_waiting(db))
			break;
		struct kvs__seg *v = cp->victims[cp->vi];
		int64_t n = v->records ? copy_one(db, v) : 0;
		if (n == COPY_FAULT) {
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
				complete_waiters(db, KVS_ECORRUPT);
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
	pay_burst(cp, done, STEP_BYTES);
	if (!cp->forced)
		cp->tokens -= (double)done;
	if (cp->vi == cp->nvictims) {
		seal_output(db);
		if (!cp->forced)
			cp->tokens -= PASS_COST;
	}
}

void kvs__compact_settle(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	while (cp->running && cp->phase != PH_COPY) {
		if (cp->phase == PH_JOB)
			job_wait(db);
		if (cp->phase == PH_DROP) { /* wait for the victims' hints */
			KVS_CHECK(pthread_mutex_lock(&db->q_mu));
			while (victims_hinting(db))
				KVS_CHECK(pthread_cond_wait(&db->q_cv, &db->q_mu));
			KVS_CHECK(pthread_mutex_unlock(&db->q_mu));
		}
		kvs__compact_step(db);
	}
}

/* Microseconds left of the quiet time after the last round of client
 * requests (0 when it is over, or when compaction owes too much work to
 * wait). */
static uint64_t quiet_delay(const struct kvs *db)
{
	if (behind(db))
		return 0;
	uint64_t now = kvs__now_us();
	return now < db->cp->quiet_until ? db->cp->quiet_until - now : 0;
}

bool kvs__compact_pending(struct kvs *db, uint64_t *delay_us)
{
	struct kvs__compact *cp = db->cp;
	*delay_us = 0;
	uint64_t written = db->counters.bytes_written;
	uint64_t credit = WRITE_CREDIT * (written - cp->written_seen);
	cp->written_seen = written;
	cp->tokens += (double)credit;
	cp->burst += credit;
	if (cp->burst > MAX_BURST)
		cp->burst = MAX_BURST;
	/* A job in flight wakes the writer when it is done; the other
	 * phases have no I/O to pace (only the quiet time after a round). */
	if (cp->running && cp->phase == PH_JOB)
		return atomic_load_explicit(&cp->job.done, memory_order_acquire) ||
		       over_budget(db);
	if (cp->running && cp->phase == PH_DROP && victims_hinting(db))
		return false; /* the helper wakes the writer when it is done */
	if (cp->running && cp->phase != PH_COPY) {
		*delay_us = quiet_delay(db);
		return true;
	}
	if (cp->disabled || atomic_load(&db->failed))
		return false;
	if (!cp->running) {
		bool any = false;
		for (struct kvs__seg *s = db->segs; s && !any; s = s->next)
			any = is_trigger(db, s);
		if (!any) {
			if (cp->forced) /* nothing (left) to do */
				complete_waiters(db, KVS_OK);
			return false;
		}
		/* After a pass gave up (disk full...): not before the
		 * backoff is over, unless kvs_compact() asks; the writer
		 * wakes up for it then. */
		uint64_t now = kvs__now_us();
		if (!cp->forced && now < cp->retry_at) {
			*delay_us = cp->retry_at - now;
			return true;
		}
	}
	if ((*delay_us = quiet_delay(db)) != 0 || cp->forced)
		return true;
	uint64_t now = kvs__now_us();
	cp->tokens += (double)(now - cp->refill_us) * (double)cp->rate / 1e6;
	cp->refill_us = now;
	if (cp->tokens > 32.0 * STEP_BYTES)
		cp->tokens = 32.0 * STEP_BYTES;
	if (cp->tokens < STEP_BYTES)
		*delay_us = (uint64_t)(((double)STEP_BYTES - cp->tokens) * 1e6 /
				       (double)cp->rate) + 1;
	return true;
}

void kvs__compact_note_round(struct kvs *db)
{
	db->cp->quiet_until = kvs__now_us() + QUIET_US;
}

void kvs__compact_check_active(struct kvs *db)
{
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
	struct kvs__compact *cp = db->cp;
	if (atomic_load(&db->failed) || cp->disabled) {
		req->result = atomic_load(&db->failed) ? KVS_EFAILED : KVS_EIO;
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

void kvs__compact_free(struct kvs *db)
{
	struct kvs__compact *cp = db->cp;
	if (!cp)
		return;
	if (cp->helper_started) {
		/* It finishes a posted job and the queued hints first. */
		KVS_CHECK(pthread_mutex_lock(&cp->j_mu));
		cp->j_stop = true;
		KVS_CHECK(pthread_cond_signal(&cp->j_cv));
		KVS_CHECK(pthread_mutex_unlock(&cp->j_mu));
		KVS_CHECK(pthread_join(cp->helper, NULL));
	}
	KVS_CHECK(pthread_cond_destroy(&cp->j_cv));
	KVS_CHECK(pthread_mutex_destroy(&cp->j_mu));
	if (cp->running)
		abort_pass(db);
	complete_waiters(db, KVS_OK);
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
