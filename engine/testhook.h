/*
 * testhook.h - the engine's side of the test seams (testhook.c; tests
 * arm them through kvs_testhook.h).
 */
#ifndef KVS_ENGINE_TESTHOOK_H
#define KVS_ENGINE_TESTHOOK_H


/* ---- test seams (testhook.c; armed through kvs_testhook.h) -------------- */
enum kvs__testhook {
	KVS__TH_LMDB_COMMIT, /* lmdb.c: mdb_txn_commit */
	KVS__TH_UNLINK,      /* compact_jobs.c: unlink of a victim */
	KVS__TH_FSYNC_DIR,   /* compact_jobs.c: directory fsync after the unlinks */
	KVS__TH_CREATE,      /* compact_move.c: creation of the output */
	KVS__TH_OUT_WRITE,   /* compact_move.c: a write of the output's buffer */
	KVS__TH_SNAP_LINK,   /* snap_point.c: a snapshot's link(2) */
	KVS__TH_SNAP_WRITE,  /* snapdir.c, lmdb_snap.c: a snapshot's copy */
	KVS__TH_COUNT
};
/* The errno a test wants the call to fail with, or 0 (the usual case). */
int kvs__testhook_fail(enum kvs__testhook which);
/* The same for the unlink of `path` (KVS__TH_UNLINK, filtered by name). */
int kvs__testhook_fail_unlink(const char *path);
/* Count one of compaction's liveness lookups (kvs__hook_compact_lookups). */
void kvs__testhook_count_cp_lookup(void);
/* Count a walk for a candidate (kvs__hook_compact_list_walks). */
void kvs__testhook_count_cp_walk(void);
/* Count a change of an index's size to n buckets (kvs__hook_index_*). */
void kvs__testhook_count_index_resize(unsigned long n);
/* Count entry slab memory mapped (n > 0) or unmapped. */
void kvs__testhook_count_slab_bytes(long n);
/* Microseconds recovery sleeps after each segment (0 unless a test asks). */
unsigned kvs__testhook_recovery_delay(void);
/* The threads recovery inserts with (kvs__hook_replay_threads), or 0. */
unsigned kvs__testhook_replay_threads(void);
/* Microseconds the writer sleeps after publishing each entry (0 unless a
 * test asks). */
unsigned kvs__testhook_publish_delay(void);
/* Whether a test removed this sync (kvs_testhook.h, enum kvs_hook_sync). */
#include <stdbool.h>
#include "kvs_testhook.h"
bool kvs__testhook_skip_sync(enum kvs_hook_sync which);
/* The everysec thread's period in milliseconds. */
unsigned kvs__testhook_sync_interval_ms(void);

#endif /* KVS_ENGINE_TESTHOOK_H */
