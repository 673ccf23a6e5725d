/*
 * segment.h - a segment file of the log (segment.c): creating, sealing,
 * mapping, syncing and freeing it, and the hint file written from it
 * (hint.c).
 */
#ifndef KVS_ENGINE_SEGMENT_H
#define KVS_ENGINE_SEGMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <urcu/urcu-memb.h>

#include "hint.h"
#include "util.h"

struct kvs;

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
	 * kvs.sync.mu for a segment that was active (kvs__seg_close_fd);
	 * other threads read it under sync.mu (kvs__seg_sync), or - readers
	 * pread'ing a record past the active segment's window - inside a
	 * read-side section, which the writer waits out before closing. */
	int fd;
	/* Threads other than the writer inside an fdatasync of fd (the sync
	 * thread, a compaction job): the writer does not close fd until it is
	 * 0.  Guarded by kvs.sync.mu. */
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
	/* The records whose index entry was replaced or removed: bit off >> 3
	 * (two records an entry can point at are over 8 bytes apart), set
	 * by kvs__seg_mark_dead, so that compaction can tell a dead SET from
	 * a live one without an index lookup.  NULL until the first mark;
	 * deadmap_lost: a mark could not be made (no memory), so a clear bit
	 * proves nothing.  The writer's, or the thread that makes the index
	 * inserts at recovery. */
	uint64_t *deadmap;
	uint64_t deadmap_words;
	bool deadmap_lost;
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
/* Rename seg's temporary file into place and fsync the directory (unless
 * !sync_dir: only a test that removes that sync asks).
 * KVS_ENOSPC: the rename failed for a shortage (nothing changed); KVS_EIO:
 * another rename failure, or the fsync failed (the file is in place). */
int kvs__seg_publish_tmp(const char *dir, struct kvs__seg *seg, bool sync_dir);
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
 * _locked form is called with kvs.sync.mu held (it drops it around the
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
/* The record at off is dead for good: its index entry was replaced or
 * removed (struct kvs__seg's deadmap). */
void kvs__seg_mark_dead(struct kvs__seg *seg, uint64_t off,
			uint64_t seg_size);
/* Marked dead.  False proves the record live only while the segment's
 * marks are complete (!deadmap_lost), and only for a record that has had
 * an index entry: a SET without an expiry time. */
static inline bool kvs__seg_marked_dead(const struct kvs__seg *seg,
					uint64_t off)
{
	uint64_t bit = off >> 3, w = bit >> 6;
	return w < seg->deadmap_words && (seg->deadmap[w] >> (bit & 63)) & 1;
}
/* Free now (no reader can hold it) / after a grace period (call_rcu). */
void kvs__seg_free(struct kvs__seg *seg);
void kvs__seg_free_rcu(struct kvs__seg *seg);

#endif /* KVS_ENGINE_SEGMENT_H */
