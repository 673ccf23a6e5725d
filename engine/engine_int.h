/*
 * engine_int.h - structures and functions shared by the files of engine/.
 * Nothing outside engine/ includes this header (tests use kvs_fault.h).
 *
 * Threads of one open store (docs/THREADS.md has the whole picture):
 *   - client threads: any number; kvs_get() reads the index and segments
 *     under rcu_read_lock() and never locks; writes are queued to the
 *     writer, or, when it is idle, written by the caller as the writer
 *     (kvs__write_inline: it holds the writer's role, q.role).
 *   - the writer thread: with the role, the only thread that appends to
 *     segments, mutates the index, or changes the segment list; it lets go
 *     of the role only to sleep, and does what a caller's round leaves
 *     (rotation, index resize, compaction, expiry, stats) at its next look.
 *   - the sync thread (everysec only): fdatasyncs the active segment once a
 *     second when it has unsynced bytes.
 *   - the background I/O thread (bgio.c; from the first pass or rotation
 *     on, at nice 10): a pass's syncs, renames and unlinks, hint files.
 *
 * RCU flavour: urcu-memb.  Its read-side lock is a couple of plain loads and
 * stores (the heavy barrier is on the writer's side, done with the
 * membarrier system call), and a thread that blocks in recv() or epoll_wait()
 * while registered does not hold up grace periods, because a grace period
 * waits only for threads that are inside a read-side section.  urcu-qsbr,
 * the other cheap flavour, would make every such blocked thread stall
 * reclamation until it announced a quiescent state.
 */
#ifndef KVS_ENGINE_INT_H
#define KVS_ENGINE_INT_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <urcu/urcu-memb.h>

#include "expire.h"
#include "hint.h"
#include "index.h"
#include "io.h"
#include "mapguard.h"
#include "record.h"
#include "segment.h"
#include "testhook.h"
#include "util.h"

/* ---- the handle -------------------------------------------------------- */

/* A request queued to the writer.  The submitter owns it; the writer fills
 * `result` and then calls done(req) exactly once, after which the writer no
 * longer touches it. */
enum kvs__req_kind {
	KVS__REQ_WRITE, KVS__REQ_STATS, KVS__REQ_COMPACT, KVS__REQ_STOP,
	KVS__REQ_SNAPSHOT,
};
struct kvs__req {
	struct kvs__req *next;    /* queue link, guarded by kvs.q.mu */
	enum kvs__req_kind kind;
	struct kvs_op *ops;       /* KVS__REQ_WRITE */
	size_t nops;
	unsigned flags;           /* KVS__REQ_WRITE: KVS_BATCH_ATOMIC or 0 */
	struct kvs_store_stats *stats;  /* KVS__REQ_STATS */
	struct kvs__snap *snap;         /* KVS__REQ_SNAPSHOT (snapshot.h) */
	int result;
	void (*done)(struct kvs__req *req);
	_Atomic uint32_t futex;   /* the synchronous waiter's word */
	void (*user_done)(void *ctx, int result); /* kvs_submit() */
	void *user_ctx;
	/* Synchronous callers: where the writer copies its kvs_errmsg() when
	 * result is an error (the message belongs to the writer's thread). */
	char *errbuf;
	size_t errbuf_len;
};

/* ---- engines (api.c) ---------------------------------------------------- */

/* What api.c needs of an engine.  Arguments are checked before these run;
 * the directory is created, locked and marked by api.c. */
struct kvs__vtable {
	const char *name;   /* as in the directory's ENGINE marker */
	size_t max_key;
	int (*open)(const char *dir, const struct kvs_options *opt,
		    struct kvs **out);
	int (*close)(struct kvs *db);
	int (*get)(struct kvs *db, const void *key, size_t klen, void **val,
		   size_t *vlen);
	/* flags: KVS_BATCH_ATOMIC or 0 */
	int (*write)(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags);
	int (*submit)(struct kvs *db, struct kvs_op *ops, size_t n,
		      unsigned flags, void (*done)(void *ctx, int result),
		      void *ctx);
	/* Each of subs[0..n) checked; done() called for any refused. */
	void (*submit_all)(struct kvs *db, const struct kvs_submission *subs,
			   size_t n);
	int (*lookup)(struct kvs *db, const void *key, size_t klen,
		      void **val, size_t *vlen, int64_t *expire_ms);
	uint64_t (*key_version)(struct kvs *db, const void *key, size_t klen);
	/* A number that changes when a batch of several writes is published
	 * (kvs_read_begin); may wait out a publication in progress. */
	uint64_t (*read_gen)(struct kvs *db);
	int (*compact)(struct kvs *db);
	int (*stats)(struct kvs *db, struct kvs_store_stats *st);
	int (*stats_cached)(struct kvs *db, struct kvs_store_stats *st);
	int (*scan)(struct kvs *db, uint64_t cursor, size_t count,
		    int (*cb)(void *ctx, const void *key, size_t klen),
		    void *ctx, uint64_t *next_cursor);
	/* Fill the temporary directory tmp with a durable copy of the store
	 * as of one moment (snapshot.h; the rest is api.c's). */
	int (*snapshot)(struct kvs *db, const char *tmp);
};
/* The file naming a directory's engine ("kvs\n", "lmdb\n"). */
#define KVS__ENGINE_FILE "ENGINE"
/* Every engine's handle starts with this (set by api.c after open). */
struct kvs__handle {
	const struct kvs__vtable *vt;
	int lock_fd;  /* the directory's flock, released by kvs_close */
	atomic_int fsync; /* the fsync policy now (enum kvs_fsync): set by
			     api.c from the options, changed by
			     kvs_set_fsync(); any thread reads it */
};

/* The handle's fsync policy now (kvs__fsync_policy: both engines read it
 * where they used the options' policy, so it can change while open). */
static inline enum kvs_fsync kvs__fsync_policy(const void *db)
{
	return (enum kvs_fsync)atomic_load_explicit(
		&((struct kvs__handle *)db)->fsync, memory_order_relaxed);
}
extern const struct kvs__vtable kvs__log_engine;
extern const struct kvs__vtable kvs__lmdb_engine;

/* ---- the log engine's handle ------------------------------------------------ */

/* The writer's queue: any thread appends, only the writer takes the whole
 * list at once.  mu guards head, tail and len; the writer sleeps on cv
 * (CLOCK_MONOTONIC) when the queue is empty, and the background I/O thread
 * wakes it there.  mu is a leaf lock: nothing else is taken while holding
 * it.
 *
 * `role` is the writer's role: whoever holds it is the store's writer
 * (kvs__become_writer).  The writer thread holds it whenever it is awake,
 * from before it takes a list until that list is done, and lets go of it
 * only to sleep; a submitter that finds it free and the queue empty takes
 * it and runs its own round on its thread (kvs__write_inline), which saves
 * two thread switches per round on a machine with few cores.  Taken before
 * mu. */
struct kvs__queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kvs__req *head, *tail;
	_Atomic size_t len; /* written under mu; read without it by the
			       writer's brief spin before it sleeps */
	pthread_mutex_t role;
	/* Rounds submitters ran: the writer looks after what they leave
	 * (compaction, expiry times, stats, retired entries) within
	 * KVS__HOUSEKEEP_US of one, without a wake-up per round. */
	_Atomic uint64_t inline_rounds;
	/* The writer sleeps with no timeout, or one longer than
	 * KVS__HOUSEKEEP_US: the next submitter's round wakes it (written
	 * under mu; read without it). */
	atomic_bool sleeping;
	bool closed; /* under role: the writer has stopped */
	/* The writer thread waits for role: submitters queue meanwhile. */
	atomic_bool role_wanted;
	/* A compaction step is due now (kvs__compact_pending with no delay:
	 * it owes client writes more work than it may put off, or its job
	 * is done): submitters queue meanwhile, and the writer thread
	 * alternates their rounds with steps until it is not, as it would
	 * without them; else a steady caller writing on its own thread
	 * could outrun compaction and the directory grow without bound.
	 * Written under role. */
	atomic_bool compact_due;
};
#define KVS__HOUSEKEEP_US 10000

/* The sync thread (everysec; syncer.c).  mu guards seg, stop and every
 * segment's fd_users (and the change of a segment's fd to -1); the writer
 * changes seg when it rotates segments.  cv: the sync thread's timer and
 * stop, and the writer's wait for fd_users to drop to 0 (broadcast). */
struct kvs__sync {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kvs__seg *seg;
	bool stop;
	_Atomic uint64_t unsynced; /* bytes written since the thread looked */
	_Atomic uint64_t bg_syncs; /* its fdatasyncs, for the stats */
};

/* What went wrong with the store (health.c); any thread reads. */
struct kvs__health {
	/* Set once a sync failed or a write left the log ambiguous (the
	 * errno; never cleared): writes are refused for good.  Live in
	 * kvs_stats_cached().  ARCHITECTURE.md "Failures": only a failed
	 * fdatasync/fsync, an undo (truncation) that failed, an I/O error
	 * other than a shortage (EIO, EROFS, ...), and a failure of a write
	 * larger than a segment after part of it was sealed set it. */
	atomic_int failed;
	/* The errno of the last write refused for a transient reason (disk
	 * full, no descriptor, no memory: nothing of it was kept), 0 again
	 * once a write succeeds.  The writer writes it. */
	atomic_int write_error;
	/* Set (never cleared) by any thread whose read found corruption or a
	 * mapped page it could not read. */
	atomic_int damaged;
	/* kvs__log_every() clock of the writer's refusals for a shortage. */
	_Atomic uint64_t wlog_us;
};

/* What the writer publishes for other threads' kvs_stats_cached() and
 * DBSIZE: mu (a leaf lock) guards stats; us and dirty are the writer's (under q.role). */
struct kvs__pub {
	pthread_mutex_t mu;
	struct kvs_store_stats stats;
	uint64_t us;    /* when stats was last published */
	bool dirty;     /* something changed since */
	/* live_keys and writes, stored by the writer before it completes a
	 * round, so that a DBSIZE (or INFO's count of changes) after an
	 * acknowledged write counts that write. */
	_Atomic uint64_t live_keys, writes;
};

struct kvs {
	struct kvs__handle h;    /* first: see api.c */

	/* Immutable after open. */
	char *dir;
	struct kvs_options opt;
	struct kvs__index *index;
	/* kvs_key_version()'s counters: a key's slot is its hash modulo
	 * KVS__VERSION_SLOTS; the writer stores the sequence number of each
	 * write that takes effect into the slot of its key (kvs__version_bump)
	 * and any thread reads them. */
	_Atomic uint64_t *versions;
	/* Odd while the writer publishes an atomic request's entries or a
	 * flush (stage.c): readers wait for it to be even again
	 * (kvs__publish_wait). */
	_Atomic uint64_t publishing;

	struct kvs__queue q;
	pthread_t writer;
	bool writer_started;
	struct kvs__sync sync;
	struct kvs__health health;
	struct kvs__pub pub;

	/* The writer's only: whoever holds q.role (the writer thread, or a
	 * caller running its round), the opener before the writer starts,
	 * the closer after it stopped (KVS__ASSERT_WRITER). */
	struct kvs__seg *segs;      /* oldest first */
	struct kvs__seg *active;    /* last of segs */
	uint32_t next_seg_id;
	/* Ids left free below the active segment's, for compaction outputs
	 * (see rotate.c): spare_id .. spare_end - 1. */
	uint32_t spare_id, spare_end;
	uint64_t next_seq;
	uint64_t live_keys;
	struct kvs_store_stats counters;  /* writes, batches, syncs, ... */
	struct kvs__writer_buf *wbuf;     /* the round buffer (round.h) */
	struct kvs__compact *cp;    /* compaction state (compact_int.h) */
	struct kvs__bgio *bg;       /* the background I/O thread (bgio.h) */
	struct kvs__expiry exp;     /* keys with an expiry time (expire.h) */
	/* Recovery only: index entries made so far, tombstones among them;
	 * the clock that decides which expiry times have passed. */
	struct {
		uint64_t entries, tombs;
		int64_t now_ms;
		uint64_t flush_seq; /* the newest FLUSH record's seq, or 0 */
		struct kvs__replay_pool *pool; /* its helper thread, or NULL */
	} rec;
};

#define KVS__VERSION_SLOTS 65536u
static inline _Atomic uint64_t *kvs__version_slot(struct kvs *db,
						  uint64_t hash)
{
	return &db->versions[hash % KVS__VERSION_SLOTS];
}
/* Writer only: a write of the key with this hash took effect as `seq`. */
static inline void kvs__version_bump(struct kvs *db, uint64_t hash,
				     uint64_t seq)
{
	atomic_store_explicit(kvs__version_slot(db, hash), seq,
			      memory_order_release);
}

/* Readers, before a lookup: wait out the publication of an atomic
 * request, which takes microseconds (a flush: as long as it walks the
 * index).  The writer never waits for readers, so this cannot deadlock. */
static inline void kvs__publish_wait(struct kvs *db)
{
	unsigned spins = 0;
	while (atomic_load_explicit(&db->publishing, memory_order_acquire) & 1)
		if (++spins % 64 == 0)
			sched_yield();
}

/* recovery.c: load every segment in db->dir into the index. */
int kvs__recover(struct kvs *db);
/* replay.c, for recovery.c: apply a record found at `off` of seg (from the
 * file or its hint), then, once all are read, drop what is dead. */
int kvs__replay_record(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		       const struct kvs_record *rec);
void kvs__replay_finish(struct kvs *db);
/* Start the helper thread that makes the index's inserts, if this
 * machine has a second CPU (or the test seam asks); and wait for it,
 * returning its failure if it had one, with kvs_errmsg() set: that record
 * came before any the opener failed at.  kvs__replay_finish goes after. */
void kvs__replay_start(struct kvs *db);
int kvs__replay_join(struct kvs *db);
/* read.c.  Copy the value of entry e into buf (e->vlen bytes), checking that the
 * record there is a SET of e's key with that value length, and its CRC.
 * Call with rcu_read_lock held.  Errors: KVS_ECORRUPT (bad checksum, or not
 * the record of the key), KVS_EIO (a read failed, or a mapped page could
 * not be read: SIGBUS), KVS_ENOMEM; either of the first two also marks the
 * store damaged (kvs__note_damage). */
int kvs__read_value(struct kvs *db, const struct kvs__entry *e, void *buf);
/* health.c.  A read of seg found damage: mark the store damaged (err: EBADMSG for a
 * corrupt record, EIO for an unreadable page) and log the file, once per
 * file, with kvs_errmsg().  Any thread. */
void kvs__note_damage(struct kvs *db, struct kvs__seg *seg, int err);
/* Mark the handle failed after an I/O error (never cleared). */
void kvs__set_failed(struct kvs *db, int errnum, const char *what);
/* The same with a whole message (errno text included). */
void kvs__set_failed_msg(struct kvs *db, int errnum, const char *msg);
/* A failure the handle cannot get over, described by kvs_errmsg(): fail
 * the handle (once) and return KVS_EIO. */
int kvs__fail_hard(struct kvs *db);
/* writer.c */
int kvs__writer_start(struct kvs *db);
void kvs__writer_stop(struct kvs *db);
int kvs__submit_wait(struct kvs *db, struct kvs__req *req);
/* syncer.c: the everysec sync thread (writer start and stop only). */
int kvs__syncer_start(struct kvs *db);
void kvs__syncer_stop(struct kvs *db);
/* Queue req; req->done runs on the writer thread when it is complete. */
void kvs__submit(struct kvs *db, struct kvs__req *req);
/* Run the write requests `list` (linked by next) on this thread if the
 * writer is free and nothing is queued: done() of each is called before
 * this returns.  false: nothing was done; queue them. */
bool kvs__write_inline(struct kvs *db, struct kvs__req *list);
/* Queue first..last (n requests linked by next) in one step: one wake-up. */
void kvs__submit_list(struct kvs *db, struct kvs__req *first,
		      struct kvs__req *last, size_t n);
/* Seal the active segment and start a new one (writer only; writer.c has
 * the order of the steps).  KVS_OK; KVS_ENOSPC: refused for a shortage
 * (kvs__errno() says which), the active segment as it was; KVS_EIO: the
 * handle failed. */
int kvs__rotate(struct kvs *db);

/* Compaction: compact.h.  The background I/O thread: bgio.h. */

#endif /* KVS_ENGINE_INT_H */
