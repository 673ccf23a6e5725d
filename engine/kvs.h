/*
 * kvs.h - the public interface of the kvs storage engine (libkvs).
 *
 * kvs is a persistent key-value store: a log-structured engine whose records
 * are CBOR items appended to segment files by one writer at a time (the
 * writer thread, or a caller that finds it idle and writes its own round),
 * indexed in memory by an RCU lock-free hash table so that readers never
 * take a lock.
 *
 * Conventions used by every function below:
 *   - Return value: KVS_OK (0) on success, or one of the negative KVS_E...
 *     codes.  kvs_strerror() names a code; kvs_errmsg() gives the detailed
 *     message (path, offset, errno text) of the last failure on the calling
 *     thread.
 *   - Threads: one handle may be used by any number of threads at once, for
 *     any call except kvs_close().  Callers do no per-thread set-up.
 *   - Memory: buffers returned to the caller are heap copies released with
 *     kvs_free().  Buffers passed in are only read during the call.
 *   - Nothing here prints.  Warnings (e.g. a torn log tail that was cut off)
 *     reach the caller only through kvs_options.log.
 *   - Signals: the first kvs_open() of the process installs a SIGBUS handler
 *     (sigaction, SA_SIGINFO | SA_NODEFER | SA_ONSTACK).  Reads copy values
 *     from read-only mappings of the segment files; if a file is cut short
 *     (or the disk cannot read a page) while the store is open, touching the
 *     page raises SIGBUS, and the handler turns that into KVS_EIO for that
 *     read ("<file>: mapped page could not be read ..." in kvs_errmsg(); the
 *     store is marked damaged).  Any other SIGBUS is passed to the handler
 *     that was installed before (by default the process dies, as without
 *     kvs).  A program that installs its own SIGBUS handler afterwards
 *     should chain to the previous one, and a thread that reads must not
 *     block SIGBUS (the kernel kills a process whose thread faults with
 *     SIGBUS blocked).
 */
#ifndef KVS_H
#define KVS_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KVS_VERSION "0.1.0"

/* Error codes.  Every failure has its own name; all are negative. */
enum kvs_error {
	KVS_OK = 0,
	KVS_ENOTFOUND = -1,  /* the key is not in the store */
	KVS_EINVAL = -2,     /* invalid argument (empty key, bad option, ...) */
	KVS_ETOOBIG = -3,    /* key over KVS_MAX_KEY or value over KVS_MAX_VALUE */
	KVS_EIO = -4,        /* an I/O system call failed; kvs_errmsg() has errno */
	KVS_ECORRUPT = -5,   /* a file failed its checksum or does not decode */
	KVS_ELOCKED = -6,    /* the directory is open in another handle/process */
	KVS_ENOMEM = -7,     /* out of memory */
	KVS_EFAILED = -8,    /* an earlier write or sync failed: writes refused */
	KVS_EENGINE = -9,    /* the directory belongs to another engine */
	KVS_EEND = -10,      /* kvs_reader_next(): no more records */
	KVS_EEXIST = -11,    /* KVS_SET_NX: the key is already present;
				kvs_snapshot(): the path exists */
	KVS_ENOTINT = -12,   /* KVS_OP_INCR: the value is not a 64-bit integer */
	KVS_EOVERFLOW = -13, /* KVS_OP_INCR: the result would overflow */
	KVS_ENOSPC = -14,    /* the disk is full (ENOSPC, EDQUOT, a short
				write) or no file descriptor or memory was
				left for a new file: this write was refused
				and nothing of it was kept; later writes are
				tried again (not sticky, unlike KVS_EFAILED) */
	KVS_ECANCELED = -15, /* an op of a batch after one whose update
				callback asked to abort: not applied */
};
/* Short names used throughout the code and the talent-plan tests. */
#define KVS_NOT_FOUND KVS_ENOTFOUND

/* Limits, as Redis: a bigger key or value is refused and nothing is written. */
#define KVS_MAX_KEY   (1u << 20)   /* 1 MiB */
#define KVS_MAX_VALUE (1u << 29)   /* 512 MiB */

/* When an acknowledged write reaches stable storage.  In every policy an
 * acknowledged write survives the process being killed, because it was
 * write()n to the file before the acknowledgement. */
enum kvs_fsync {
	KVS_FSYNC_EVERYSEC = 0, /* default: ack after write(); fdatasync >= 1/s */
	KVS_FSYNC_ALWAYS = 1,   /* ack after fdatasync (shared: group commit) */
	KVS_FSYNC_NEVER = 2,    /* ack after write(); the OS decides */
};

enum kvs_log_level { KVS_LOG_ERROR = 0, KVS_LOG_WARN = 1, KVS_LOG_INFO = 2 };

/* The engines.  A directory records which one owns it; opening it with
 * another is refused with KVS_EENGINE. */
enum kvs_engine {
	KVS_ENGINE_AUTO = 0, /* the one recorded in the directory, else kvs */
	KVS_ENGINE_KVS = 1,  /* the log-structured engine ("kvs") */
	KVS_ENGINE_LMDB = 2, /* LMDB ("lmdb"), the yardstick: see docs */
};

/* Options for kvs_open().  A zeroed struct (or NULL) means the defaults. */
struct kvs_options {
	enum kvs_engine engine;
	enum kvs_fsync fsync;   /* default KVS_FSYNC_EVERYSEC */
	uint64_t segment_size;  /* bytes; 0 = 64 MiB; 4 KiB..1 GiB */
	/* Compaction (see docs/COMPACTION.md).  A sealed segment whose dead
	 * fraction reaches compact_ratio (0 = 0.5) is rewritten without its
	 * dead records; the active segment is sealed early once it holds
	 * compact_min_dead dead bytes (0 = 4 MiB) and that ratio.  Compaction
	 * runs in steps between client writes and reads at most compact_rate
	 * bytes per second (0 = 32 MiB/s) plus twice the bytes clients write,
	 * so it keeps up with any sustained overwrite load.  no_auto_compact:
	 * only kvs_compact() compacts. */
	double compact_ratio;
	uint64_t compact_min_dead;
	uint64_t compact_rate;
	int no_auto_compact;
	/* Called (from any engine thread) for warnings and errors the engine
	 * handles itself.  NULL: such messages are dropped. */
	void (*log)(void *ctx, enum kvs_log_level level, const char *msg);
	void *log_ctx;
	/* no_create: open only a store that exists.  A missing directory, or
	 * one that holds no store (no ENGINE marker, no NNNNNNNNNN.seg, no
	 * LMDB data.mdb), fails with KVS_ENOTFOUND and nothing is created:
	 * for readers such as `kvs get`, where a read must not make a store. */
	int no_create;
};

struct kvs; /* an open store: opaque */

/*
 * Open the store in directory `dir`, creating it when missing (unless
 * opts->no_create).  opts: NULL for defaults.  out: receives the handle.
 * Holds an exclusive lock on the directory until kvs_close(); replays the
 * logs; truncates a torn tail of the newest segment (reported through
 * opts->log).  May block on disk I/O.
 * Errors: KVS_EINVAL, KVS_ELOCKED, KVS_EENGINE, KVS_ECORRUPT (file and offset
 * in kvs_errmsg()), KVS_EIO, KVS_ENOMEM; KVS_ENOTFOUND with no_create.
 */
int kvs_open(const char *dir, const struct kvs_options *opts, struct kvs **out);

/*
 * Drain every queued write, make everything durable (fdatasync), stop the
 * engine's threads and release all memory.  No other call on `db` may run
 * concurrently or follow.  Returns KVS_EIO if the final sync failed or the
 * handle was already failed (the handle is released either way).
 */
int kvs_close(struct kvs *db);

/*
 * Set `key` to `val`.  key: 1..KVS_MAX_KEY bytes; val: 0..KVS_MAX_VALUE bytes;
 * both binary-safe.  Returns once the record is written (KVS_FSYNC_ALWAYS:
 * once it is on stable storage).  With the writer thread idle, the calling
 * thread writes the record itself (and under KVS_FSYNC_ALWAYS syncs it);
 * else it waits for the writer's round.
 * Errors: KVS_EINVAL, KVS_ETOOBIG, KVS_ENOSPC (disk full, or no descriptor
 * or memory for the write: nothing was kept, and a later call may succeed),
 * KVS_EIO (a sync failed: the handle is failed from now on), KVS_EFAILED
 * (it failed earlier), KVS_ENOMEM.  kvs_errmsg() names the file and errno.
 */
int kvs_set(struct kvs *db, const void *key, size_t klen, const void *val,
	    size_t vlen);

/*
 * Look `key` up.  On KVS_OK, *val is a heap copy of the value (release with
 * kvs_free(); never NULL, even for an empty value) and *vlen its length.
 * Never takes a lock and never waits for the writer.
 * Errors: KVS_ENOTFOUND, KVS_EINVAL, KVS_ETOOBIG, KVS_ECORRUPT (the record
 * failed its checksum, or is not the key's record), KVS_EIO (a read failed,
 * or a mapped page could not be read: the file was cut short), KVS_ENOMEM.
 * After KVS_ECORRUPT or KVS_EIO the store reports itself damaged
 * (kvs_store_stats.damaged); other keys go on being read.
 */
int kvs_get(struct kvs *db, const void *key, size_t klen, void **val,
	    size_t *vlen);

/*
 * Remove `key`.  Writes a tombstone only when the key is present.
 * Errors: KVS_ENOTFOUND, and those of kvs_set().
 */
int kvs_remove(struct kvs *db, const void *key, size_t klen);

/* The name of the handle's engine: "kvs" or "lmdb". */
const char *kvs_engine_name(const struct kvs *db);

/* The longest key the handle's engine takes, in bytes: KVS_MAX_KEY for kvs,
 * 511 for lmdb (LMDB's mdb_env_get_maxkeysize() as Debian builds it); 0 for
 * a NULL handle.  Values go up to KVS_MAX_VALUE with either.  Any thread. */
size_t kvs_max_key(const struct kvs *db);

/*
 * Check a key as every write and read of `db` would: KVS_OK, KVS_EINVAL
 * (empty or NULL) or KVS_ETOOBIG (over the engine's limit: KVS_MAX_KEY for
 * kvs, 511 bytes for lmdb), with the reason in kvs_errmsg().  For servers
 * that must refuse one bad key of a pipelined batch without failing the
 * rest.  Any thread; never blocks.
 */
int kvs_check_key(const struct kvs *db, const void *key, size_t klen);

/*
 * Parse buf[0..len) as the integers KVS_OP_INCR reads and writes: an
 * optional '-', then decimal digits with no leading zero ("0" itself is
 * fine), no '+', no spaces, within int64.  Redis's own rule for INCR and
 * for protocol lengths; servers use it so that they accept exactly what the
 * engine does.  true and *out on success; false otherwise (*out untouched).
 */
bool kvs_parse_int64(const void *buf, size_t len, int64_t *out);

/* Release a buffer returned by the library. */
void kvs_free(void *p);

/*
 * Expiry.  A key may carry an expiry time: an absolute wall-clock time in
 * milliseconds since the Unix epoch (CLOCK_REALTIME), as Redis's PXAT.
 * From that time on the key is gone for every call (kvs_get, kvs_lookup,
 * kvs_scan, the conditions of writes, the update callback's "found", the
 * stats' live_keys), whether or not the engine has yet reclaimed it; the
 * engine removes expired keys by itself in the background (and logs their
 * removal, so that they stay gone after a restart whatever the clock does).
 * The expiry time is part of the key's durable record: it survives a
 * restart, and a key whose time passed while the store was closed is gone
 * when it opens.  0 means "no expiry" everywhere below.
 */
/* The engine's clock: milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t kvs_now_ms(void);

/* One operation of a batch.  A zeroed tail (flags, delta, expire_ms,
 * update) means a plain operation.  Read-modify-write operations run on the
 * writer thread, so they are atomic with respect to every other write. */
enum kvs_op_type {
	KVS_OP_SET = 1,
	KVS_OP_REMOVE = 2,
	KVS_OP_INCR = 3,   /* add delta to the decimal integer value (a missing
			      key counts as 0), as Redis's INCRBY; the key's
			      expiry is kept */
	KVS_OP_UPDATE = 4, /* call update(uctx, &u) with the key's current
			      state; it decides what to write: see struct
			      kvs_update */
	KVS_OP_FLUSH = 5,  /* remove every key (no key: key NULL, klen 0), as
			      Redis's FLUSHALL */
};
#define KVS_SET_NX 1u      /* set only if absent; else result KVS_EEXIST */
#define KVS_SET_XX 2u      /* set only if present; else result KVS_ENOTFOUND */
#define KVS_SET_KEEPTTL 4u /* keep the key's current expiry (expire_ms must
			      be 0) instead of replacing it */

/* What an update callback decides (struct kvs_update.action). */
enum kvs_update_action {
	KVS_UPD_KEEP = 0,   /* write nothing (a read, or a failed condition) */
	KVS_UPD_SET = 1,    /* set the key to new_val, expiring at
			       new_expire_ms */
	KVS_UPD_REMOVE = 2, /* remove the key (nothing if it is absent) */
	KVS_UPD_ABORT = 3,  /* write nothing, and apply no later op of the
			       batch: their result is KVS_ECANCELED */
};

/*
 * The argument of an update callback.  The engine fills the "in" fields
 * with the key's state as every earlier write left it (the earlier ops of
 * the same batch included) and zeroes the "out" ones; the callback sets the
 * "out" fields.  The callback runs in the writer's round (on the writer
 * thread, or on the submitting thread when that runs the round itself)
 * while no other write can happen: it must be quick, must not block, and must not call
 * this handle's write functions (kvs_get and kvs_lookup are allowed but do
 * not see the batch's earlier ops: use the fields here).
 */
struct kvs_update {
	/* in */
	const void *key;
	size_t klen;
	bool found;          /* the key is present (not expired) */
	const void *val;     /* its value (valid during the call only); NULL
				when absent */
	size_t vlen;
	int64_t expire_ms;   /* its expiry; 0: none (or absent) */
	uint64_t version;    /* kvs_key_version()'s number for the key now */
	/* out */
	enum kvs_update_action action;
	const void *new_val; /* KVS_UPD_SET: the new value; must stay valid
				and unchanged until the batch completes (the
				done callback, or kvs_write_batch's return) */
	size_t new_vlen;     /* at most KVS_MAX_VALUE, else the op's result
				is KVS_ETOOBIG and nothing is written */
	int64_t new_expire_ms; /* KVS_UPD_SET: 0 = none; a time not after
				  now removes the key (as Redis does) */
};
/* Returns the op's result (any int the caller wants back in op->result;
 * KVS_OK usually).  The engine never looks at it. */
typedef int kvs_update_fn(void *uctx, struct kvs_update *u);

struct kvs_op {
	enum kvs_op_type type;
	const void *key;
	size_t klen;
	const void *val; /* KVS_OP_SET only */
	size_t vlen;
	int result;      /* out: KVS_OK, or why this op was not applied:
			    KVS_ENOTFOUND (remove of a missing key, XX),
			    KVS_EEXIST (NX), KVS_ENOTINT, KVS_EOVERFLOW,
			    KVS_ECANCELED (an earlier update aborted);
			    KVS_OP_UPDATE: the callback's return value, a
			    read error (KVS_EIO, KVS_ECORRUPT: the callback
			    was not called), or KVS_ETOOBIG */
	unsigned flags;  /* KVS_OP_SET: KVS_SET_NX, KVS_SET_XX,
			    KVS_SET_KEEPTTL */
	int64_t delta;   /* KVS_OP_INCR */
	int64_t num;     /* out, KVS_OP_INCR: the new value; KVS_OP_FLUSH:
			    the number of keys removed */
	int64_t expire_ms; /* KVS_OP_SET: the key expires at this time; 0:
			      no expiry (an old expiry is cleared, as by any
			      write without KVS_SET_KEEPTTL); a time not
			      after now: the SET succeeds and the key is
			      removed (as Redis) */
	kvs_update_fn *update; /* KVS_OP_UPDATE */
	void *uctx;
};

/*
 * Apply `n` operations in order with a single hand-off to the writer: no
 * other client's write is interleaved, and one sync covers them all.  Every
 * op is validated first; if one is invalid nothing is written.  A remove of a
 * missing key is not an error for the batch: its result says KVS_ENOTFOUND.
 * A crash during the call may keep a prefix of the batch (in order).
 * Errors: those of kvs_set().
 */
int kvs_write_batch(struct kvs *db, struct kvs_op *ops, size_t n);

/*
 * The asynchronous form of kvs_write_batch(), for servers: validates the
 * ops, queues them and returns at once.  Later the writer thread calls
 * done(ctx, result) exactly once, with the result kvs_write_batch() would
 * have returned, after the ops are applied (and, under KVS_FSYNC_ALWAYS,
 * synced).  ops and everything they point at must stay valid and unchanged
 * until then.  done runs on the writer thread: it must be quick and must
 * not call kvs_set/kvs_remove/kvs_write_batch/kvs_compact/kvs_close on this
 * handle (kvs_get is fine).  If validation fails, the error is returned and
 * done is never called.
 * Errors: those of kvs_set().
 */
int kvs_submit(struct kvs *db, struct kvs_op *ops, size_t n,
	       void (*done)(void *ctx, int result), void *ctx);

/*
 * The store's fsync policy now, and a change of it while the store is open
 * (kvs-server's CONFIG SET appendfsync): writes submitted after
 * kvs_set_fsync() returns are acknowledged by the new policy's rule (see
 * enum kvs_fsync); under everysec the background sync covers what earlier
 * policies left unsynced.  Any thread; never blocks.
 * Errors: KVS_EINVAL (not a policy).
 */
int kvs_set_fsync(struct kvs *db, enum kvs_fsync policy);
enum kvs_fsync kvs_fsync_policy(struct kvs *db);

/* Flags of kvs_write_batch_flags() and kvs_submit_flags(). */
#define KVS_BATCH_ATOMIC 1u /* the batch is one transaction: after a crash
			       either all of its writes are found or none;
			       and no reader (kvs_get, kvs_lookup, kvs_scan)
			       sees some of its writes but not the others */
/* kvs_write_batch() and kvs_submit() with flags (0: the same calls). */
int kvs_write_batch_flags(struct kvs *db, struct kvs_op *ops, size_t n,
			  unsigned flags);
int kvs_submit_flags(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags, void (*done)(void *ctx, int result),
		     void *ctx);

/*
 * Several kvs_submit_flags() at once, in order, for a caller that gathers
 * the writes of many clients (kvs-server does, once per pass of a worker
 * over its ready connections): the writer is woken once and takes them all
 * in one round when they fit, so they share one write() and, under
 * `always`, one fdatasync.  Every submission's done(ctx, result) is called
 * exactly once, as kvs_submit()'s is; one refused at once (the errors of
 * kvs_submit, e.g. an invalid op or a failed store) has it called before
 * this returns, on the calling thread, with kvs_errmsg() saying why, and
 * does not stop the others.  When the log engine's writer is idle, the
 * calling thread runs the round itself (under `always` only a round of
 * one submission, and the call then returns after its fdatasync): the
 * update callbacks and every done() then run on it before this returns
 * (no thread hand-off); done() must be written for either thread.
 * subs[] itself may be reused once this returns; the ops must stay until
 * their done().
 */
struct kvs_submission {
	struct kvs_op *ops;
	size_t n;
	unsigned flags; /* KVS_BATCH_ATOMIC or 0 */
	void (*done)(void *ctx, int result);
	void *ctx;
};
void kvs_submit_all(struct kvs *db, const struct kvs_submission *subs,
		    size_t n);

/*
 * Look `key` up without necessarily copying its value: any of val, vlen and
 * expire_ms may be NULL.  On KVS_OK: *val a heap copy of the value (as
 * kvs_get), *vlen its length, *expire_ms its expiry time (0: none).  Never
 * takes a lock and never waits for the writer.  For EXISTS, STRLEN, TTL,
 * TYPE.  Errors: those of kvs_get() (KVS_ENOTFOUND for an expired key).
 */
int kvs_lookup(struct kvs *db, const void *key, size_t klen, void **val,
	       size_t *vlen, int64_t *expire_ms);

/*
 * A number that changes whenever `key` is written, removed or flushed by a
 * write that takes effect (not when it merely expires), for optimistic
 * transactions (Redis's WATCH): read it first, then compare it in an update
 * callback (struct kvs_update.version) at the head of the batch that must
 * apply only if nothing changed.  Keys share counters, so a change may be a
 * false alarm, never a miss.  Any thread; never blocks.
 */
uint64_t kvs_key_version(struct kvs *db, const void *key, size_t klen);

/*
 * Reads of several keys that must not see part of an atomic batch (MGET,
 * EXISTS of several keys): take kvs_read_begin() before them and ask
 * kvs_read_retry() after them; true means an atomic batch of several
 * writes (KVS_BATCH_ATOMIC; with lmdb, any batch of several keys) or a
 * flush was published meanwhile, and the reads are to be done again.  Any thread; never blocks
 * (kvs_read_begin waits out a publication in progress: microseconds).
 */
uint64_t kvs_read_begin(struct kvs *db);
bool kvs_read_retry(struct kvs *db, uint64_t token);

/*
 * Compact now: rewrite every sealed segment that holds dead records (sealing
 * the active segment first), without the rate limit, and return when done.
 * Client reads and writes go on meanwhile.  May block on disk I/O.
 * Errors: KVS_EINVAL, KVS_EIO, KVS_EFAILED, KVS_ENOMEM, KVS_ENOSPC (a pass
 * could not create or write its output - disk full, no descriptor, no
 * memory: nothing changed, automatic passes retry later), KVS_ECORRUPT.
 */
int kvs_compact(struct kvs *db);

/*
 * Iterate over the keys, a few at a time, like Redis's SCAN: start with
 * cursor 0; each call passes up to about `count` keys to cb (it may pass
 * more) and sets *next_cursor, 0 when the iteration is complete.  Every key
 * present for the whole iteration is passed at least once; a key written or
 * removed meanwhile may or may not be.  cb runs inside the engine's read-side
 * section: it must not block and must not call this handle's write
 * functions; a nonzero return from cb stops the call early (the cursor then
 * resumes after the last key's 64-bit hash).  Keys are passed in no particular
 * order.  The kvs engine walks its hash table in hash order (a call costs
 * time proportional to the keys before the cursor); the lmdb engine passes
 * every key in the first call.
 * Errors: KVS_EINVAL, KVS_EIO.
 */
/* Defined since kvs_scan exists; kept for code that tests for it. */
#define KVS_HAVE_SCAN 1
int kvs_scan(struct kvs *db, uint64_t cursor, size_t count,
	     int (*cb)(void *ctx, const void *key, size_t klen), void *ctx,
	     uint64_t *next_cursor);

/*
 * Snapshot: write a copy of the store, as it was at one moment during the
 * call, into the new directory `path` (its parent must exist; `path` must
 * not).  The copy is a store of the same engine: kvs_open() (kvs --dir,
 * kvs-server --dir) opens it, and kvs-dump --verify checks it.
 * Guarantees: every write acknowledged before the call began is in it; it
 * is the state at one point of the sequence of writes (none after that
 * point, none before it missing; an atomic batch wholly or not at all); a
 * write submitted after the call returned is not in it.  Reads and writes
 * go on meanwhile.  On KVS_OK every file in it and its name are durable
 * (fsynced).  On failure `path` does not exist: the copy is built as
 * PARENT/.tmp-NAME and renamed into place last, and removed on failure (a
 * crash may leave PARENT/.tmp-NAME, which the next snapshot of that name
 * removes).
 * kvs: the writer thread hard-links the sealed segments and their hint
 * files at the point (microseconds each), then the caller copies the
 * active segment up to the point; files that cannot be linked (another
 * file system) are copied.  Space: the active segment's bytes, while the
 * store later compacts the linked segments away.  lmdb: LMDB's compacting
 * copy of one read transaction (mdb_env_copyfd2, MDB_CP_COMPACT).
 * Blocks on disk I/O (copies, fdatasync, directory fsyncs); any thread;
 * several may run at once into different paths.
 * Errors: KVS_EINVAL (NULL or empty path), KVS_EEXIST (`path` exists),
 * KVS_ENOSPC (disk full, no descriptor or memory), KVS_EIO (the parent
 * is missing or not writable, or another I/O failure: kvs_errmsg() names
 * the file; if only the final fsync of the parent failed, `path` exists
 * and is complete, but a power cut may undo its name).
 */
int kvs_snapshot(struct kvs *db, const char *path);

/* Figures of an open store, filled by kvs_stats(). */
struct kvs_store_stats {
	uint64_t live_keys;       /* keys present (not expired); kvs: a key
				     whose time has just passed counts until
				     the writer removes it, which it does at
				     that time (a few ms late under load, up
				     to 1000 keys a turn between clients'
				     writes) */
	uint64_t volatile_keys;   /* of them, keys with an expiry time (the
				     same lag) */
	uint64_t avg_ttl_ms;      /* their mean time left (0 if none) */
	uint64_t expired_keys;    /* keys removed because they expired,
				     since open (kvs: by the writer's active
				     expiry; a key found expired at open is
				     not counted) */
	uint64_t live_bytes;      /* bytes of the records that hold them */
	uint64_t dead_bytes;      /* bytes of overwritten/removed records */
	uint64_t disk_bytes;      /* total size of the segment files */
	uint64_t segments;        /* segment files */
	uint64_t next_seq;        /* next record sequence number */
	uint64_t writes;          /* records written since open */
	uint64_t bytes_written;   /* bytes of those records */
	uint64_t batches;         /* writer batches (group commits) since open */
	uint64_t syncs;           /* fdatasync calls since open */
	uint64_t compactions;     /* compaction passes finished since open */
	uint64_t bytes_reclaimed; /* segment bytes deleted minus bytes written
				     by compaction, since open */
	uint64_t last_compaction_us; /* wall time of the last pass */
	uint64_t hint_loads;      /* segments loaded from hint files at open */
	uint64_t open_us;         /* time kvs_open took */
	int failed;               /* nonzero once a write or sync has failed:
				     the errno; writes refused for good */
	int write_error;          /* the errno of the last write refused for a
				     transient reason (disk full, no fd, no
				     memory); 0 once a later write succeeded */
	int damaged;              /* nonzero once a read found corruption (a
				     bad checksum, a record not holding the
				     key asked for: EBADMSG) or a mapped page
				     that could not be read (EIO): the first
				     one's errno; run kvs-dump --verify */
};

/* Fill *st with a consistent snapshot taken by the writer thread: waits
 * for the writer's current round (under KVS_FSYNC_ALWAYS, its fdatasync).
 * Errors: KVS_EINVAL. */
int kvs_stats(struct kvs *db, struct kvs_store_stats *st);
/* The same figures as the writer last published them (at most about 50 ms
 * old while writes go on, and about 10 ms after a round a caller ran
 * itself; current when the writer is idle).  Never waits
 * for the writer: for servers' INFO and DBSIZE.  Errors: KVS_EINVAL. */
int kvs_stats_cached(struct kvs *db, struct kvs_store_stats *st);

/* The fixed name of an error code ("key not found", ...); never NULL. */
const char *kvs_strerror(int err);

/* The detailed message of the last failure of a kvs call on this thread,
 * e.g. "data/0000000003.seg: bad record at offset 4711: checksum mismatch".
 * Valid until the next kvs call on this thread; "" if none. */
const char *kvs_errmsg(void);

/*
 * Reading log files record by record, for tools (kvs-dump) and tests.  It
 * uses the engine's own record codec, and takes no lock: it may read the
 * files of a store that is open elsewhere.  It reads segment files
 * (NNNNNNNNNN.seg) and hint files (NNNNNNNNNN.hint).  A hint entry comes back
 * as a SET, REMOVE, TXN or FLUSH record whose offset and length are those of
 * the record in its segment, with key, vlen and expire_ms but no value
 * (val == NULL).
 */
enum kvs_record_type {
	KVS_REC_SET = 0,
	KVS_REC_REMOVE = 1,
	KVS_REC_FOOTER = 2, /* last record of a sealed segment */
	KVS_REC_TXN = 3,    /* the next `count` records are one atomic batch */
	KVS_REC_FLUSH = 4,  /* every record with a lower seq is dead */
};
struct kvs_record {
	uint64_t offset;   /* of the record in the file */
	uint64_t length;   /* of the whole record, in bytes */
	enum kvs_record_type type;
	uint64_t seq;      /* its sequence number; FOOTER: the last one's */
	const void *key;   /* SET/REMOVE; points into the reader's buffer */
	size_t klen;
	const void *val;   /* SET */
	size_t vlen;
	uint64_t count;    /* FOOTER: records before it in the segment (TXN
			      and FLUSH included); TXN: records in the
			      batch that follow it */
	uint32_t chain;    /* FOOTER: CRC32C over the crc fields of those */
	int64_t expire_ms; /* SET: the key's expiry time (unix ms; 0: none;
			      on disk a SET with one is op 5, "SETX") */
};
struct kvs_reader;

/* Open a segment file for reading: reads it into memory and checks its
 * header.  Errors: KVS_EIO, KVS_EINVAL (not a regular file), KVS_ECORRUPT
 * (not a kvs segment), KVS_ENOMEM. */
int kvs_reader_open(const char *path, struct kvs_reader **out);
/* Decode the next record into *rec (valid until kvs_reader_close()).  Checks
 * each record's CRC and that a footer matches the records before it.
 * Returns KVS_OK, KVS_EEND at the end of the file, or KVS_ECORRUPT with the
 * offset in kvs_errmsg() and rec->offset set to where the bad bytes start
 * (every later call returns KVS_ECORRUPT again). */
int kvs_reader_next(struct kvs_reader *r, struct kvs_record *rec);
/* The file's size in bytes. */
uint64_t kvs_reader_size(const struct kvs_reader *r);
/* Nonzero once a footer has been read: the segment is sealed. */
int kvs_reader_sealed(const struct kvs_reader *r);
/* Nonzero if the file is a hint file (its checksum was checked at open). */
int kvs_reader_is_hint(const struct kvs_reader *r);
void kvs_reader_close(struct kvs_reader *r);

#ifdef __cplusplus
}
#endif
#endif /* KVS_H */
