/*
 * engine_int.h - structures and functions shared by the files of engine/.
 * Nothing outside engine/ includes this header (tests use kvs_fault.h).
 *
 * Threads of one open store (docs/THREADS.md has the whole picture):
 *   - client threads: any number; kvs_get() reads the index and segments
 *     under rcu_read_lock() and never locks; writes are queued to the writer.
 *   - the writer thread: the only thread that appends to segments, mutates
 *     the index, or changes the segment list.
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
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "check.h" /* KVS_CHECK, KVS_ASSERT, KVS_DIE */
#include "kvs.h"

/* ---- small helpers (util.c) ------------------------------------------ */

/* Record a detailed error message for kvs_errmsg(); returns `code`. */
int kvs__err(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errnum)". */
int kvs__err_errno(int code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The errno the last kvs__err_errno() of this thread carried (0 after a
 * kvs__err()): lets a caller tell a transient failure from a hard one. */
int kvs__errno(void);
/* Is errnum a shortage that goes away by itself (ENOSPC, EDQUOT, EFBIG,
 * EMFILE, ENFILE, ENOMEM)?  A write that failed with one of these before
 * anything of it was acknowledged is refused, undone and tried again later
 * (KVS_ENOSPC), never made sticky. */
bool kvs__errno_transient(int errnum);
/* Send a message to the store's log hook, if any. */
void kvs__log(const struct kvs *db, enum kvs_log_level lvl, const char *fmt,
	      ...) __attribute__((format(printf, 3, 4)));
/* The same, at most once a second per *last_us (any thread): for failures
 * that may repeat at every write or tick while a resource is short. */
void kvs__log_every(const struct kvs *db, _Atomic uint64_t *last_us,
		    enum kvs_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
uint64_t kvs__now_us(void);

/* ---- RCU read-side sections -------------------------------------------- */
/*
 * ThreadSanitizer cannot see liburcu's grace periods (membarrier and futexes
 * in an uninstrumented library), so it would take every free of an entry in
 * a call_rcu callback for a race with the readers that used the entry.  The
 * annotations below state the grace-period guarantee to it: each read-side
 * section ends with a release on one sync object, and each callback starts
 * with an acquire on it, so the free happens after every section that ended
 * before it; an access after a section's end is still reported.  Outside
 * TSan builds they compile to nothing.
 */
#if defined(__SANITIZE_THREAD__)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char kvs__rcu_hb;
#define KVS__TSAN_RELEASE() __tsan_release(&kvs__rcu_hb)
#define KVS__TSAN_ACQUIRE() __tsan_acquire(&kvs__rcu_hb)
#else
#define KVS__TSAN_RELEASE() ((void)0)
#define KVS__TSAN_ACQUIRE() ((void)0)
#endif

static inline void kvs__read_lock(void)
{
	urcu_memb_read_lock();
}

static inline void kvs__read_unlock(void)
{
	KVS__TSAN_RELEASE();
	urcu_memb_read_unlock();
}

/* call_rcu with the annotation; cb must begin with KVS__TSAN_ACQUIRE(). */
static inline void kvs__call_rcu(struct rcu_head *head,
				 void (*cb)(struct rcu_head *))
{
	KVS__TSAN_RELEASE();
	urcu_memb_call_rcu(head, cb);
}

/* ---- thread-context assertions (util.c) -------------------------------- */
/*
 * What the comments of this header state about threads ("writer only",
 * "under rcu_read_lock", "with sync_mu held") is checked where it is cheap,
 * in every build: a thread-local compare each, on paths that already take a
 * lock or make a call.
 *
 * The writer of a store is its writer thread while it runs, and the thread
 * inside kvs_open (recovery) or kvs_close (after the writer is joined)
 * before and after: kvs__become_writer(db) / kvs__become_writer(NULL) mark
 * it.  Mutexes of the engine are taken with kvs__lock/kvs__unlock, which
 * keep a short per-thread list of the mutexes held, so that
 * KVS__ASSERT_HELD can tell "held by this thread" from "held by someone".
 */
extern _Thread_local const struct kvs *kvs__writer_of;
static inline void kvs__become_writer(const struct kvs *db)
{
	kvs__writer_of = db;
}
#define KVS__ASSERT_WRITER(db) KVS_ASSERT(kvs__writer_of == (db))
#define KVS__ASSERT_IN_RCU() KVS_ASSERT(urcu_memb_read_ongoing())
#define KVS__ASSERT_NOT_IN_RCU() KVS_ASSERT(!urcu_memb_read_ongoing())

#define KVS__HELD_MAX 4 /* no engine code nests more mutexes than this */
struct kvs__held {
	pthread_mutex_t *mu[KVS__HELD_MAX];
	unsigned n;
};
extern _Thread_local struct kvs__held kvs__held;
static inline bool kvs__holds(const pthread_mutex_t *mu)
{
	for (unsigned i = 0; i < kvs__held.n; i++)
		if (kvs__held.mu[i] == mu)
			return true;
	return false;
}
static inline void kvs__lock(pthread_mutex_t *mu)
{
	KVS_ASSERT(kvs__held.n < KVS__HELD_MAX && !kvs__holds(mu));
	KVS_CHECK(pthread_mutex_lock(mu));
	kvs__held.mu[kvs__held.n++] = mu;
}
static inline void kvs__unlock(pthread_mutex_t *mu)
{
	unsigned i = 0;
	while (i < kvs__held.n && kvs__held.mu[i] != mu)
		i++;
	KVS_ASSERT(i < kvs__held.n);
	kvs__held.mu[i] = kvs__held.mu[--kvs__held.n];
	KVS_CHECK(pthread_mutex_unlock(mu));
}
#define KVS__ASSERT_HELD(mu) KVS_ASSERT(kvs__holds(mu))
#define KVS__ASSERT_NOT_HELD(mu) KVS_ASSERT(!kvs__holds(mu))

/* ---- checksums and hashing (crc32c.c, siphash.c) ---------------------- */
uint32_t kvs__crc32c(uint32_t crc, const void *buf, size_t len);
uint64_t kvs__siphash(const uint8_t k[16], const void *buf, size_t len);

/* ---- I/O and allocation with fault injection (io.c) ------------------ */
/* malloc/calloc/realloc of the write path (the writer's buffers, index
 * entries and slabs, segments), so that kvs__fault_alloc() can fail them. */
void *kvs__malloc(size_t n);
void *kvs__calloc(size_t n, size_t size);
void *kvs__realloc(void *p, size_t n);
/* Write all of iov at `off`, retrying EINTR and short writes.  Returns 0 or
 * an errno value. */
int kvs__io_pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off);
int kvs__io_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Read len bytes at `off` (into iov's buffers), retrying EINTR and short
 * reads: returns the bytes read, fewer than asked only at the end of the
 * file, or -errno.  (The readers of a file that may have been cut short -
 * recovery, kvs-dump's reader, the read path past a window - tell a short
 * file from an error by the count.)  iovcnt <= KVS__IO_IOV_MAX. */
#define KVS__IO_IOV_MAX 4
ssize_t kvs__io_preadv_full(int fd, const struct iovec *iov, int iovcnt,
			    off_t off);
ssize_t kvs__io_pread_full(int fd, void *buf, size_t len, off_t off);
/* The suffix of a file being written that is not in place yet (a hint or a
 * marker file, a compaction output, the next active segment): an open
 * removes what a crash left of them. */
#define KVS__TMP_SUFFIX ".tmp"
/* fdatasync, or an injected failure.  Returns 0 or an errno value. */
int kvs__io_fdatasync(int fd);
/* fsync a directory so a created, renamed or removed entry is durable. */
int kvs__io_fsync_dir(const char *dir);
/* Replace dir/name durably with `len` bytes: temp file, fdatasync, rename,
 * fsync of the directory.  Returns a KVS error code. */
int kvs__io_write_file_durably(const char *dir, const char *name,
			       const void *buf, size_t len);
/* The same without the syncs when !durable (hint files: a torn one fails
 * its checksum and is ignored, so it needs no sync). */
int kvs__io_write_file(const char *dir, const char *name, const void *buf,
		       size_t len, bool durable);

/* ---- reading mapped bytes (mapguard.c) ---------------------------------- */
/*
 * A mapped page of a file that was cut short under the process (or that the
 * disk cannot read) raises SIGBUS when touched.  Every copy from a segment's
 * mapping (reads, compaction reading a victim, hint entries read back) runs
 * armed: the process-wide handler (installed by the first kvs_open, chaining
 * to the previous handler for any other SIGBUS) jumps back to the copy's
 * sigsetjmp, which then reports the failure.  Use, in one function:
 *
 *	if (sigsetjmp(kvs__mapguard.jb, 0) != 0)
 *		return <the page could not be read>;   (guard already disarmed)
 *	KVS__MAP_ARM();
 *	... read the mapping: no lock taken, nothing allocated ...
 *	KVS__MAP_DISARM();
 *
 * Between ARM and DISARM no local variable that is used after the jump may
 * be changed (C's setjmp rule), and nothing may be left half done: the jump
 * abandons the code in between.  Guards do not nest.
 */
struct kvs__mapguard {
	sigjmp_buf jb;
	volatile sig_atomic_t armed;
	volatile sig_atomic_t faults; /* mapped pages this thread failed to read */
};
extern _Thread_local struct kvs__mapguard kvs__mapguard;
/* The signal fences keep the compiler from moving the mapping's loads out
 * of the armed stretch. */
#define KVS__MAP_ARM()                                                        \
	do {                                                                  \
		kvs__mapguard.armed = 1;                                      \
		atomic_signal_fence(memory_order_seq_cst);                    \
	} while (0)
#define KVS__MAP_DISARM()                                                     \
	do {                                                                  \
		atomic_signal_fence(memory_order_seq_cst);                    \
		kvs__mapguard.armed = 0;                                      \
	} while (0)
/* Install the SIGBUS handler (once per process; kvs_open calls it). */
void kvs__mapguard_install(void);
/* memcpy from a mapping; false if a page could not be read. */
bool kvs__map_copy(void *dst, const void *src, size_t n);

/* ---- test seams (testhook.c; armed through kvs_testhook.h) -------------- */
enum kvs__testhook {
	KVS__TH_LMDB_COMMIT, /* lmdb.c: mdb_txn_commit */
	KVS__TH_UNLINK,      /* compact.c: unlink of a victim */
	KVS__TH_FSYNC_DIR,   /* compact.c: directory fsync after the unlinks */
	KVS__TH_CREATE,      /* compact.c: creation of the output */
	KVS__TH_OUT_WRITE,   /* compact.c: a write of the output's buffer */
	KVS__TH_COUNT
};
/* The errno a test wants the call to fail with, or 0 (the usual case). */
int kvs__testhook_fail(enum kvs__testhook which);
/* The same for the unlink of `path` (KVS__TH_UNLINK, filtered by name). */
int kvs__testhook_fail_unlink(const char *path);
/* Microseconds recovery sleeps after each segment (0 unless a test asks). */
unsigned kvs__testhook_recovery_delay(void);

/* ---- the record codec (record.c) ------------------------------------- */
/*
 * A segment file is an RFC 8742 CBOR Sequence: a 12-byte header item, then
 * records, each one CBOR array.  docs/FORMAT.md has the byte tables.
 *
 *   header  d9 d9f8  da 6b767331  43 42 4f 52   tag 55800(tag 0x6b767331(h'BOR'))
 *   SET     [seq, 0, key: bstr, value: bstr, crc: uint32]
 *   REMOVE  [seq, 1, key: bstr, crc: uint32]
 *   FOOTER  [last_seq, 2, count, chain: uint32, crc: uint32]
 *
 * crc is CRC32C over every byte of the record before the crc item, always
 * encoded in 5 bytes (1a + big-endian 32 bits).  chain is CRC32C over the
 * 4-byte crc fields of all earlier records of the file, so the footer vouches
 * for the whole segment.
 */
#define KVS__HDR_LEN 12
extern const unsigned char kvs__seg_header[KVS__HDR_LEN];
#define KVS__REC_MAX_HEAD 32 /* array + seq + op + 2 bstr heads, max */
#define KVS__FOOTER_MAX 30   /* 1 + 9 + 1 + 9 + 5 + 5 */

/* Encode the part of a record that precedes the key and value bytes:
 * array head, seq, op, key bstr head (and for SET the value's head follows
 * the key: see kvs__rec_encode_vhead).  Returns bytes written. */
size_t kvs__rec_encode_head(unsigned char *out, enum kvs_record_type type,
			    uint64_t seq, size_t klen);
size_t kvs__rec_encode_vhead(unsigned char *out, size_t vlen);
/* Encode the trailing crc item (5 bytes). */
void kvs__rec_encode_crc(unsigned char out[5], uint32_t crc);
/* Encode a whole footer record; returns its length. */
size_t kvs__rec_encode_footer(unsigned char *out, uint64_t last_seq,
			      uint64_t count, uint32_t chain);

enum kvs__dec { KVS__DEC_OK, KVS__DEC_SHORT, KVS__DEC_BAD };
/* Decode one record from buf[0..len).  On KVS__DEC_OK fills rec (with
 * rec->offset = 0, pointers into buf) and *crc_out.  KVS__DEC_SHORT: buf
 * ends inside a record.  KVS__DEC_BAD: *why says what is wrong, and
 * rec->length is the record's extent if it decoded up to its checksum (0
 * when the structure itself is broken). */
enum kvs__dec kvs__rec_decode(const unsigned char *buf, size_t len,
			      struct kvs_record *rec, uint32_t *crc_out,
			      const char **why);
/* The same without reading the crc item or checking it (the value bytes
 * are not touched): for records this process wrote or already checked. */
enum kvs__dec kvs__rec_decode_head(const unsigned char *buf, size_t len,
				   struct kvs_record *rec, const char **why);
/* Does head[0..hlen) - the bytes of a record before its value - encode a
 * SET of exactly `key` (klen bytes) whose value has vlen bytes?  Reads only
 * those bytes (the read path checks every record it returns with it, so
 * that an index or hint that points at the wrong record is an error, never
 * another key's value).  On false, *why says what differs. */
bool kvs__rec_head_is(const unsigned char *head, size_t hlen, const void *key,
		      size_t klen, size_t vlen, const char **why);
/* The exact length of a record of this type, seq, key and value length as
 * the engine encodes it (the check of hint entries). */
uint64_t kvs__rec_len_of(enum kvs_record_type type, uint64_t seq, size_t klen,
			 size_t vlen);
/* Check a complete record's crc (rec_len bytes starting at buf). */
bool kvs__rec_crc_ok(const unsigned char *buf, size_t rec_len);
/* Decode a 5-byte crc item (1a + big-endian 32 bits); false if it is not
 * one.  (Records and hint files end with one.) */
bool kvs__crc_item(const unsigned char item[5], uint32_t *crc);
/* The sequence number of the record that starts at p[0..n) (n may stop
 * short of the record's end: only its first two items are read); false if
 * p does not start like a SET, REMOVE or FOOTER record. */
bool kvs__rec_peek_seq(const unsigned char *p, size_t n, uint64_t *seq);
/* Is there a complete, valid record (checksum included) anywhere in
 * buf[0..len)?  Tells a torn tail from damage in the middle of a file. */
bool kvs__rec_any_valid(const unsigned char *buf, size_t len);

/* A generic view of one decoded CBOR item (record.c), for the hint codec. */
enum kvs__item_kind { KVS__IT_NONE, KVS__IT_UINT, KVS__IT_BSTR, KVS__IT_ARRAY };
struct kvs__item {
	enum kvs__item_kind kind;
	uint64_t u;
	const unsigned char *p;
	size_t n;
};
/* Decode the item at buf[*pos] (definite lengths only); advance *pos. */
enum kvs__dec kvs__cbor_next(const unsigned char *buf, size_t len, size_t *pos,
			     struct kvs__item *it);

/* ---- hint files (hint.c) ----------------------------------------------- */
/*
 * NNNNNNNNNN.hint lists the records of sealed segment NNNNNNNNNN so that
 * opening the store need not read values.  A CBOR Sequence:
 *   header   d9 d9f8  da 6b766831  43 42 4f 52    ("kvh1")
 *   meta     [count, footer_off, min_seq]
 *   entry    [seq, type, key: bstr, offset, rec_len, vlen]   (count of them)
 *   crc      uint32: CRC32C of every byte before it
 * A hint is used only if its crc holds and the segment's footer sits at
 * footer_off, ends the file and counts the same records; otherwise the
 * segment is scanned (and its hint written again).
 */
extern const unsigned char kvs__hint_header[KVS__HDR_LEN];
/* Its first 8 bytes (the self-describing tag and "kvh1") tell a hint file
 * from a segment. */
#define KVS__HINT_MAGIC_LEN 8
struct kvs__hint_meta {
	uint64_t count, footer_off, min_seq;
};
/* Check a whole hint file in memory: header, crc, meta.  On success the
 * entries start at buf[*entries_at] and end 5 bytes before len. */
bool kvs__hint_check(const unsigned char *buf, size_t len,
		     struct kvs__hint_meta *meta, size_t *entries_at);
/* Check every entry of a hint (one kvs__hint_check passed) against its
 * segment before any is used: the entries decode, there are meta->count of
 * them and nothing after, offsets rise and each record lies between the
 * header and the footer without overlapping the previous one, and each
 * record's length is exactly what its seq, type, key length and value length
 * encode to.  NULL when all hold; else what is wrong, *bad the entry. */
const char *kvs__hint_validate(const unsigned char *buf, size_t len,
			       size_t entries_at,
			       const struct kvs__hint_meta *meta, uint64_t *bad);
/* Decode one entry into rec (type, seq, key, offset, length, vlen). */
enum kvs__dec kvs__hint_next(const unsigned char *buf, size_t len,
			     size_t *pos, struct kvs_record *rec);
/* The offsets of a segment's records, kept until its hint file is written:
 * the entries are then read back from the segment's mapping (4 bytes a
 * record in memory, instead of the encoded entry with its key). */
struct kvs__hintbuf {
	uint32_t *off;
	size_t n, cap;
	bool failed; /* out of memory once: the hint is skipped */
};
void kvs__hint_add(struct kvs__hintbuf *hb, uint64_t off);
void kvs__hint_reset(struct kvs__hintbuf *hb);
char *kvs__hint_path(const char *dir, uint32_t id);

/* ---- segments (segment.c) -------------------------------------------- */
struct kvs__seg {
	/* Immutable after creation. */
	uint32_t id;
	char *path;
	struct rcu_head rcu;

	/* The file, read-write; -1 once the segment is sealed and mapped, so
	 * that an open store holds O(1) descriptors (readers copy from the
	 * mapping, which covers the whole file).  Only the writer (or the
	 * opener, or compaction for its own output) sets it to -1, under
	 * kvs.sync_mu for a segment that was active (kvs__seg_close_fd);
	 * other threads read it under sync_mu (kvs__seg_sync), or - readers
	 * pread'ing a record past the active segment's window - inside a
	 * read-side section, which the writer waits out before closing. */
	int fd;
	/* Threads other than the writer inside an fdatasync of fd (the sync
	 * thread, a compaction job): the writer does not close fd until it is
	 * 0.  Guarded by kvs.sync_mu. */
	int fd_users;

	/* RCU-published: NULL while the segment is active, the read-only
	 * mapping once it is sealed. */
	const unsigned char *map;
	uint64_t map_len;
	/* The active segment's read-only window: a mapping of win_len bytes
	 * (the segment size), made before any entry points into the segment
	 * and immutable after.  A record is only ever published after its
	 * write() returned, so readers copy it from here instead of paying a
	 * pread; past win_len (a record bigger than a segment), or with no
	 * window (mmap failed), they pread.  Sealing reuses it as `map`. */
	const unsigned char *win;
	uint64_t win_len;

	/* Writer thread only (and the opener before the writer starts). */
	struct kvs__seg *next;   /* the writer's list, by id */
	uint64_t size;           /* bytes in the file (append offset) */
	uint64_t synced;         /* bytes known to be on stable storage */
	uint64_t records;        /* records excluding the footer */
	uint64_t last_seq;       /* seq of the last record, in file order */
	uint64_t min_seq;        /* lowest seq in the file; UINT64_MAX if none */
	uint32_t chain;          /* running CRC over record crcs */
	uint64_t live_bytes;     /* records the index points at */
	uint64_t dead_bytes;     /* superseded records, fresh tombstones */
	uint64_t kept_bytes;     /* tombstones compaction had to keep: neither
				    live nor garbage (until kept_max_seq is
				    older than every other segment) */
	uint64_t kept_max_seq;
	struct kvs__hintbuf hint; /* entries for the hint file, until sealed */
	bool sealed;
	bool retiring;           /* a victim of the running compaction pass */
	bool forced;             /* covered by a kvs_compact() call */
	/* Set by the writer when it hands the segment's hint file to the
	 * background I/O thread (kvs__bgio_hint), cleared by that thread
	 * (release) once written; while set, a compaction pass with the
	 * segment among its victims waits before dropping them.  hint_next
	 * and hint_footer_off are bgio's queue, under kvs__bgio.mu. */
	atomic_bool hint_busy;
	struct kvs__seg *hint_next;
	uint64_t hint_footer_off;
	/* Set by the first read that found this file damaged (any thread), so
	 * that the log names the file once. */
	atomic_bool damage_logged;
};

/* Segment numbers run from 1 to KVS__SEG_ID_MAX - 1; the next number
 * equal to KVS__SEG_ID_MAX means none is left (a rotation then fails). */
#define KVS__SEG_ID_MAX UINT32_MAX
char *kvs__seg_path(const char *dir, uint32_t id);
/* Create a new, empty segment file (header written, directory synced).
 * With tmp, the file is NNNNNNNNNN.seg.tmp (a compaction output, or the
 * next active segment during a rotation), renamed by
 * kvs__seg_publish_tmp(); its header is not synced.  Errors: KVS_ENOMEM,
 * KVS_EIO with kvs__errno() set (EMFILE, ENOSPC, ...); nothing is left
 * behind on failure. */
int kvs__seg_create(const char *dir, uint32_t id, bool tmp,
		    struct kvs__seg **out);
/* Rename seg's temporary file into place and fsync the directory.
 * KVS_ENOSPC: the rename failed for a shortage (nothing changed); KVS_EIO:
 * another rename failure, or the fsync failed (the file is in place). */
int kvs__seg_publish_tmp(const char *dir, struct kvs__seg *seg);
/* Remove a segment made by kvs__seg_create(tmp) that was never published,
 * and free it. */
void kvs__seg_discard_tmp(struct kvs__seg *seg);
/* Give the active segment its read-only window (see struct kvs__seg); a
 * failure leaves it without one. */
void kvs__seg_window(struct kvs__seg *seg, uint64_t len);
/* Open an existing segment read-write (recovery). */
int kvs__seg_open(const char *dir, uint32_t id, struct kvs__seg **out);
/* Writer only.  Sealing the active segment, in steps a rotation can still
 * undo until it publishes.  kvs__seg_seal appends the footer, fdatasyncs
 * and makes (does not publish) the read-only mapping *map.  Returns KVS_OK;
 * KVS_ENOSPC when the footer could not be written for a transient reason
 * (kvs__errno()) or not mapped, and was cut off again: seg is unchanged;
 * KVS_EIO when the fdatasync failed or the footer could not be cut off: the
 * caller fails the handle. */
int kvs__seg_seal(struct kvs__seg *seg, uint64_t *footer_off,
		  const unsigned char **map);
/* Undo a kvs__seg_seal that was not published: drop the mapping, cut the
 * footer off.  KVS_OK or KVS_EIO (the truncation failed). */
int kvs__seg_unseal(struct kvs__seg *seg, uint64_t footer_off,
		    const unsigned char *map);
/* Mark seg sealed and publish its mapping to readers (its hint file is the
 * caller's: kvs__bgio_hint).  Cannot fail. */
void kvs__seg_publish(struct kvs__seg *seg, const unsigned char *map);
/* Writer only: close the descriptor of a segment sealed by a rotation, once
 * no reader can be pread'ing it and no other thread is syncing it (waits
 * for a sync in progress: it syncs what the seal has just synced). */
void kvs__seg_close_fd(struct kvs *db, struct kvs__seg *seg);
/* Close the descriptor of a sealed, mapped segment no other thread can be
 * using (at open, or compaction's own output). */
void kvs__seg_drop_fd(struct kvs__seg *seg);
/* Any thread: fdatasync seg unless the writer has sealed and closed it
 * meanwhile (the seal synced it then).  Returns 0 or an errno value.  The
 * _locked form is called with kvs.sync_mu held (it drops it around the
 * fdatasync): the sync thread finds its segment and pins it atomically. */
int kvs__seg_sync(struct kvs *db, struct kvs__seg *seg);
int kvs__seg_sync_locked(struct kvs *db, struct kvs__seg *seg);
/* Write seg's hint file: the entries are read from the records at the
 * offsets in seg->hint, through seg->map (footer_off: where the footer
 * is).  Any thread, while nothing else uses seg->hint. */
int kvs__seg_write_hint(const char *dir, struct kvs__seg *seg,
			uint64_t footer_off);
/* Map a sealed segment (found at recovery, or a compaction output), publish
 * the mapping and close the descriptor (kvs__seg_drop_fd): no other thread
 * may be using seg->fd. */
int kvs__seg_map(struct kvs__seg *seg);
/* Free now (no reader can hold it) / after a grace period (call_rcu). */
void kvs__seg_free(struct kvs__seg *seg);
void kvs__seg_free_rcu(struct kvs__seg *seg);

/* ---- the index (index.c) --------------------------------------------- */
/*
 * One entry per live key: 40 bytes before the key on LP64, as an index entry
 * costs memory for every key of the store.  Entries are created by the
 * writer, published into the table (cds_lfht_add_replace) and never changed
 * afterwards: a new write of the key publishes a new entry and the old one is
 * retired (kvs__index_retire), to be freed after a grace period.  `klen` is
 * stored again with release order just before publication, and loaded with
 * acquire order by readers, which makes the publication visible to
 * ThreadSanitizer (the table's own barriers are inside liburcu, which TSan
 * cannot see).  The record's sequence number is not kept: only recovery
 * needs it, and it reads it from the record (kvs__entry_seq).
 */
struct kvs__entry {
	struct cds_lfht_node node;
	struct kvs__seg *seg;  /* segment holding the record */
	uint32_t off;          /* record offset in the segment (a record
				  starts below segment_size <= 1 GiB) */
	uint32_t rec_len;      /* whole record, header to crc */
	uint32_t vlen;         /* value length (the value ends 5 bytes before
				  the record's end), or KVS__TOMB */
	_Atomic uint32_t klen;
	unsigned char key[];
};
/* vlen of a tombstone entry; they exist only while recovery runs. */
#define KVS__TOMB UINT32_MAX

/* Make sure the calling thread is registered with RCU (done once per thread,
 * undone by a thread-exit destructor). */
void kvs__rcu_thread_online(void);

struct kvs__index;
int kvs__index_new(struct kvs__index **out);
/* Remove and free every entry, then destroy: only when no other thread can
 * use the index. */
void kvs__index_destroy(struct kvs__index *ix);
uint64_t kvs__index_hash(const struct kvs__index *ix, const void *key,
			 size_t klen);
/* The mutator (writer, or the opener), outside any read-side section:
 * make the table big enough for nkeys keys, at most two a bucket (see
 * index.c for why). */
void kvs__index_grow(struct kvs__index *ix, uint64_t nkeys);
/* Call with rcu_read_lock held; the result is valid until it is released. */
struct kvs__entry *kvs__index_lookup(struct kvs__index *ix, uint64_t hash,
				     const void *key, size_t klen);
/* Writer only.  Publish `e`; returns the entry it replaced, or NULL.  The
 * caller must retire the replaced entry with kvs__index_retire(). */
struct kvs__entry *kvs__index_put(struct kvs__index *ix, uint64_t hash,
				  struct kvs__entry *e);
/* Writer only (or the opener).  Publish `e` unless the key is present:
 * returns the present entry (e is then not published), or NULL. */
struct kvs__entry *kvs__index_add_unique(struct kvs__index *ix, uint64_t hash,
					 struct kvs__entry *e);
/* Writer only, under rcu_read_lock.  Unpublish `e` (found by lookup). */
void kvs__index_del(struct kvs__index *ix, struct kvs__entry *e);
/* The mutator only.  A new, unpublished entry for `key` (other fields zero),
 * from the index's slabs; NULL if out of memory. */
struct kvs__entry *kvs__entry_new(struct kvs__index *ix, const void *key,
				  size_t klen);
/* The mutator only.  Free an entry that was never published (a published
 * one is retired instead). */
void kvs__entry_free(struct kvs__index *ix, struct kvs__entry *e);
/* The mutator, after filling e and before publishing it. */
static inline void kvs__entry_ready(struct kvs__entry *e)
{
	atomic_store_explicit(&e->klen,
			      atomic_load_explicit(&e->klen, memory_order_relaxed),
			      memory_order_release);
}
/* Readers, before the other fields of an entry found in the table. */
static inline uint32_t kvs__entry_klen(struct kvs__entry *e)
{
	return atomic_load_explicit(&e->klen, memory_order_acquire);
}
/* The mutator only.  Free e (unpublished, or replaced or deleted from the
 * table) once every reader that may hold it is done.  Entries are retired
 * in batches, one call_rcu a batch, so an entry needs no rcu_head. */
void kvs__index_retire(struct kvs__index *ix, struct kvs__entry *e);
/* The mutator only: start the grace period of a partial batch (when idle). */
void kvs__index_retire_flush(struct kvs__index *ix);
/* Writer only: iterate every entry (under rcu_read_lock). */
struct cds_lfht *kvs__index_table(struct kvs__index *ix);

/* ---- the handle -------------------------------------------------------- */

/* A request queued to the writer.  The submitter owns it; the writer fills
 * `result` and then calls done(req) exactly once, after which the writer no
 * longer touches it. */
enum kvs__req_kind {
	KVS__REQ_WRITE, KVS__REQ_STATS, KVS__REQ_COMPACT, KVS__REQ_STOP,
};
struct kvs__req {
	struct kvs__req *next;    /* queue link, guarded by kvs.q_mu */
	enum kvs__req_kind kind;
	struct kvs_op *ops;       /* KVS__REQ_WRITE */
	size_t nops;
	struct kvs_store_stats *stats;  /* KVS__REQ_STATS */
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
	int (*write)(struct kvs *db, struct kvs_op *ops, size_t n);
	int (*submit)(struct kvs *db, struct kvs_op *ops, size_t n,
		      void (*done)(void *ctx, int result), void *ctx);
	int (*compact)(struct kvs *db);
	int (*stats)(struct kvs *db, struct kvs_store_stats *st);
	int (*stats_cached)(struct kvs *db, struct kvs_store_stats *st);
	int (*scan)(struct kvs *db, uint64_t cursor, size_t count,
		    int (*cb)(void *ctx, const void *key, size_t klen),
		    void *ctx, uint64_t *next_cursor);
};
/* Every engine's handle starts with this (set by api.c after open). */
struct kvs__handle {
	const struct kvs__vtable *vt;
	int lock_fd;  /* the directory's flock, released by kvs_close */
};
extern const struct kvs__vtable kvs__log_engine;
extern const struct kvs__vtable kvs__lmdb_engine;

/* ---- the log engine's handle ------------------------------------------------ */

struct kvs {
	struct kvs__handle h;    /* first: see api.c */

	/* Immutable after open. */
	char *dir;
	struct kvs_options opt;
	struct kvs__index *index;

	/* The writer's queue: any thread appends, only the writer takes the
	 * whole list at once.  q_mu guards q_head, q_tail and q_len; the
	 * writer sleeps on q_cv when the queue is empty.  q_mu is a leaf lock:
	 * nothing else is taken while holding it. */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;      /* CLOCK_MONOTONIC */
	struct kvs__req *q_head, *q_tail;
	_Atomic size_t q_len;  /* written under q_mu; read without it by the
				  writer's brief spin before it sleeps */
	pthread_t writer;
	bool writer_started;

	/* The sync thread (everysec).  sync_mu guards sync_seg, sync_stop and
	 * every segment's fd_users (and the change of a segment's fd to -1);
	 * the writer changes sync_seg when it rotates segments.  sync_cv: the
	 * sync thread's timer and stop, and the writer's wait for fd_users to
	 * drop to 0 (broadcast).  unsynced counts bytes written since the sync
	 * thread last looked. */
	pthread_t syncer;
	bool syncer_started;
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	struct kvs__seg *sync_seg;
	bool sync_stop;
	_Atomic uint64_t unsynced;
	_Atomic uint64_t bg_syncs;

	/* Set once a sync failed or a write left the log ambiguous (the errno;
	 * never cleared): writes are refused for good.  Read by anyone, and
	 * live by kvs_stats_cached().  ARCHITECTURE.md "Failures": only a
	 * failed fdatasync/fsync, an undo (truncation) that failed, an I/O
	 * error other than a shortage (EIO, EROFS, ...), and a failure of a
	 * write larger than a segment after part of it was sealed set it. */
	atomic_int failed;
	/* The errno of the last write refused for a transient reason (disk
	 * full, no descriptor, no memory: nothing of it was kept), 0 again
	 * once a write succeeds.  Writer thread writes; anyone reads. */
	atomic_int write_error;
	/* Set (never cleared) by any thread whose read found corruption or a
	 * mapped page it could not read; anyone reads. */
	atomic_int damaged;
	/* kvs__log_every() clock of the writer's refusals for a shortage. */
	_Atomic uint64_t wlog_us;

	/* Writer thread only (the opener before the writer starts). */
	struct kvs__seg *segs;      /* oldest first */
	struct kvs__seg *active;    /* last of segs */
	uint32_t next_seg_id;
	/* Ids left free below the active segment's, for compaction outputs
	 * (see kvs__rotate): spare_id .. spare_end - 1. */
	uint32_t spare_id, spare_end;
	uint64_t next_seq;
	uint64_t live_keys;
	struct kvs_store_stats counters;  /* writes, batches, syncs, ... */
	struct kvs__writer_buf *wbuf;
	struct kvs__compact *cp;    /* compaction state (compact.c) */
	struct kvs__bgio *bg;       /* the background I/O thread (bgio.c) */

	/* The stats snapshot the writer publishes for kvs_stats_cached();
	 * snap_mu (a leaf lock) guards snap.  snap_us: writer only. */
	pthread_mutex_t snap_mu;
	struct kvs_store_stats snap;
	uint64_t snap_us;
	bool snap_dirty;
	/* live_keys, stored by the writer before it completes a round, so
	 * that a DBSIZE after an acknowledged write counts that write. */
	_Atomic uint64_t live_keys_pub;
	uint64_t recovered_entries; /* index entries made by recovery so far */
	uint64_t recovered_tombs;   /* tombstone entries among them */
};

/* recovery.c: load every segment in db->dir into the index. */
int kvs__recover(struct kvs *db);
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
/* writer.c */
int kvs__writer_start(struct kvs *db);
void kvs__writer_stop(struct kvs *db);
int kvs__submit_wait(struct kvs *db, struct kvs__req *req);
/* Queue req; req->done runs on the writer thread when it is complete. */
void kvs__submit(struct kvs *db, struct kvs__req *req);
/* Seal the active segment and start a new one (writer only; writer.c has
 * the order of the steps).  KVS_OK; KVS_ENOSPC: refused for a shortage
 * (kvs__errno() says which), the active segment as it was; KVS_EIO: the
 * handle failed. */
int kvs__rotate(struct kvs *db);

/* Compaction: compact.h.  The background I/O thread: bgio.h. */

#endif /* KVS_ENGINE_INT_H */
