/*
 * snapshot.h - kvs_snapshot() inside the engine (docs/SNAPSHOTS.md):
 * the directory it builds (snapdir.c, both engines), the log engine's
 * snapshot point, taken by the writer thread (snap_point.c), and the
 * engines' halves (snapshot.c for the log engine, lmdb_snap.c for LMDB).
 *
 * The order of a snapshot into PATH (api.c drives it):
 *   1. kvs__snapdir_begin: PATH must not exist; PARENT/.tmp-NAME is made
 *      (a leftover of a crashed snapshot of the same name is removed).
 *   2. the engine's vtable->snapshot(db, tmp): the store's files, durable.
 *   3. kvs__snapdir_commit: the ENGINE marker, fsync of the temporary
 *      directory, rename to PATH, fsync of PARENT.
 *   Any failure: kvs__snapdir_abort removes the temporary directory, so a
 *   directory named PATH exists only once it is complete and durable.
 */
#ifndef KVS_ENGINE_SNAPSHOT_H
#define KVS_ENGINE_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct kvs;
struct kvs__seg;

/* The prefix of a snapshot's temporary directory, in the target's parent. */
#define KVS__SNAP_TMP_PREFIX ".tmp-"

/* ---- the directory being built (snapdir.c) ----------------------------- */
struct kvs__snapdir {
	char path[4096];   /* the final name */
	char parent[4096]; /* its directory */
	char tmp[4096];    /* PARENT/.tmp-NAME */
	bool made;         /* tmp exists (abort removes it) */
};
/* Step 1.  Errors: KVS_EINVAL (empty or too long a path), KVS_EEXIST (it
 * exists), KVS_EIO (the parent is missing or not writable, mkdir failed). */
int kvs__snapdir_begin(struct kvs__snapdir *sd, const char *path);
/* Step 3: engine is the marker's text ("kvs", "lmdb").  KVS_OK or KVS_EIO
 * (KVS_ENOSPC for a full disk); on failure the caller aborts. */
int kvs__snapdir_commit(struct kvs__snapdir *sd, const char *engine);
/* Remove the temporary directory and everything in it (if made). */
void kvs__snapdir_abort(struct kvs__snapdir *sd);
/* Copy len bytes of src_fd from offset 0 into a new file dst (created
 * exclusive), then fdatasync it.  KVS_OK, KVS_ENOSPC (disk full or no
 * descriptor), KVS_EIO; a partial dst is removed. */
int kvs__snap_copy_fd(int src_fd, uint64_t len, const char *dst);

/* ---- the log engine's snapshot point (snap_point.c) -------------------- */
/* A file the point could not hard-link (another file system): the caller
 * copies it from fd (open, so compaction may unlink it meanwhile). */
struct kvs__snap_file {
	char name[32]; /* NNNNNNNNNN.seg or .hint */
	int fd;
	uint64_t len;
};
struct kvs__snap {
	const char *tmp;          /* in: the directory being built */
	/* out, filled by the writer at the point: */
	uint64_t seq;             /* the snapshot is the state before this
				     sequence number */
	uint32_t active_id;       /* the active segment ... */
	int active_fd;            /* ... opened read-only (-1: none) */
	uint64_t active_len;      /* ... and its length at the point */
	struct kvs__snap_file *copies; /* files to copy instead of link */
	size_t ncopies;
	uint64_t linked;          /* files hard-linked */
};
/* Writer thread, between rounds: hard-link every sealed segment of the
 * list and the hint files present into s->tmp, open what cannot be linked
 * and the active segment, and record the active segment's length.  Nothing
 * of the store changes.  KVS_OK, or an error (kvs_errmsg()): what was
 * linked stays for the caller's abort, and the fds in *s are the caller's
 * to close (kvs__snap_release) whatever the result. */
int kvs__snap_point(struct kvs *db, struct kvs__snap *s);
/* Close the descriptors and free the list in *s. */
void kvs__snap_release(struct kvs__snap *s);
/* link(2) through io.c's seam (kvs__hook_snapshot_link). */
int kvs__snap_link(const char *from, const char *to);

/* ---- the engines' halves (vtable->snapshot) ----------------------------- */
/* Fill the temporary directory tmp with the store's files as of one
 * moment, durable (the marker and the rename are api.c's). */
int kvs__log_snapshot(struct kvs *db, const char *tmp);
int kvs__lm_snapshot(struct kvs *db, const char *tmp);

#endif /* KVS_ENGINE_SNAPSHOT_H */
