/*
 * kvs_testhook.h - test-only seams of the read, compaction, recovery and
 * lmdb code, beside kvs_fault.h's write and fdatasync faults: make a chosen
 * system call fail with a chosen errno, or slow recovery down.
 * Process-wide; not for production (every hook is disarmed by default and
 * costs one relaxed atomic load where it sits).
 */
#ifndef KVS_TESTHOOK_H
#define KVS_TESTHOOK_H
#ifdef __cplusplus
extern "C" {
#endif
/* Each failing seam: the next `count` calls fail with err (count < 0:
 * every call until disarmed; 0 disarms). */
/* lmdb.c: mdb_txn_commit fails, freeing the transaction as a real failed
 * commit does (LMDB aborts it inside the call). */
void kvs__hook_lmdb_commit(int count, int err);
/* compact_jobs.c: the unlink of a compaction victim's segment file. */
void kvs__hook_compact_unlink(int count, int err);
/* Only unlinks of paths ending with `name` count for the hook above
 * (NULL: every one). */
void kvs__hook_compact_unlink_only(const char *name);
/* compact_jobs.c: the directory fsync after the victims' unlink. */
void kvs__hook_compact_fsync_dir(int count, int err);
/* compact_move.c: the creation of a compaction output. */
void kvs__hook_compact_create(int count, int err);
/* compact_move.c: a write of a compaction output's buffered records. */
void kvs__hook_compact_write(int count, int err);
/* kvs_snapshot(): the hard link of a store file into the snapshot (EXDEV
 * makes it copy the file instead, as across file systems); a write of a
 * copied file (the log engine's active segment, or a file it could not
 * link; with lmdb, the copy of the environment). */
void kvs__hook_snapshot_link(int count, int err);
void kvs__hook_snapshot_write(int count, int err);
/* compact_move.c: output creations attempted since the process started. */
unsigned kvs__hook_compact_creates(void);
/* compact_move.c: index lookups a pass made to decide whether a record is
 * copied, since the process started. */
unsigned long kvs__hook_compact_lookups(void);
/* compact_policy.c: walks of a store's segment list looking for a
 * compaction candidate made by the calling thread (in the rounds it ran
 * itself), since it started. */
unsigned long kvs__hook_compact_list_walks(void);
/* index.c: the changes of an index's size (a resize, or the table an open
 * makes at its estimated size) since the process started, and the bucket
 * count the last one set. */
unsigned long kvs__hook_index_resizes(void);
unsigned long kvs__hook_index_buckets(void);
/* index.c: the bytes of entry slabs mapped by every index now open (they
 * are not malloc's, so mallinfo does not see them). */
long kvs__hook_index_slab_bytes(void);
/* recovery.c: sleep `us` microseconds before loading each segment but the
 * first (a slow open); 0 disarms. */
void kvs__hook_recovery_delay(unsigned us);
/* replay.c: the threads an open loads the index with: 1 (the opener
 * alone), 2 (a helper thread makes the inserts while the opener reads,
 * even on one CPU), or 0 (the default: 2 when the machine has a second
 * CPU). */
void kvs__hook_replay_threads(unsigned n);
/* stage.c: sleep `us` microseconds after publishing each index entry of a
 * round (widens the window a reader could see half of a batch in); 0
 * disarms. */
void kvs__hook_publish_delay(unsigned us);
/* Remove one of the engine's syncs, to prove that the power-loss test
 * (tests/powerloss_test.cc) notices it missing: the write path's fdatasync
 * under fsync always (writer.c); the directory fsync after a compaction
 * output is renamed into place (compact_jobs.c); the fdatasync of the
 * active segment before compaction victims are unlinked (compact_jobs.c).
 * skip = 0 puts it back. */
enum kvs_hook_sync {
	KVS_HOOK_SYNC_WRITE,
	KVS_HOOK_SYNC_PUBLISH_DIR,
	KVS_HOOK_SYNC_BEFORE_UNLINK,
	KVS_HOOK_SYNC_COUNT
};
void kvs__hook_skip_sync(enum kvs_hook_sync which, int skip);
/* syncer.c: the everysec thread's period in milliseconds (0: a second). */
void kvs__hook_sync_interval(unsigned ms);
#ifdef __cplusplus
}
#endif
#endif
