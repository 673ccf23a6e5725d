/* compact_jobs.c - a compaction pass's file operations, which take
 * milliseconds each (fdatasync, rename, directory fsync, hint file,
 * unlink): run by the background I/O thread (bgio.c) while the writer goes
 * on serving clients.  A job reads the pass's state that the writer leaves
 * alone while it runs (the output, the victims, the ghosts) and fills in
 * struct job; compact.c reads the results once the job is done. */
#include "compact_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Write the output's footer and make the whole file durable. */
static void seal(struct kvs__seg *out, struct job *j)
{
	int e = kvs__io_pwrite_all(out->fd, j->foot, j->foot_len,
				   (off_t)j->footer_off);
	if (e) {
		j->rc = kvs__err_errno(KVS_EIO, e,
				       "%s" KVS__TMP_SUFFIX ": write",
				       out->path);
	} else if ((e = kvs__io_fdatasync(out->fd)) != 0) {
		j->rc = kvs__err_errno(KVS_EIO, e,
				       "%s" KVS__TMP_SUFFIX ": fdatasync",
				       out->path);
		j->synced_bad = true;
	}
}

/* Rename the output into place, fsync the directory, write its hint. */
static void publish(struct kvs *db, struct kvs__seg *out, struct job *j)
{
	j->rc = kvs__seg_publish_tmp(
		db->dir, out, !kvs__testhook_skip_sync(KVS_HOOK_SYNC_PUBLISH_DIR));
	/* Renamed, then failed: the directory fsync failed. */
	j->renamed = j->rc == KVS_OK || access(out->path, F_OK) == 0;
	j->synced_bad = j->rc != KVS_OK && j->renamed;
	/* The hint only speeds up the next open. */
	if (j->rc == KVS_OK)
		j->warn_rc = kvs__seg_write_hint(db->dir, out, j->footer_off);
}

/* Make the overwrites durable, then unlink the victims (and ghosts of
 * earlier failed unlinks) and fsync the directory. */
static void drop(struct kvs *db, struct kvs__compact *cp, struct job *j)
{
	int e;
	/* A victim's dead records were overwritten by records that may still
	 * be only in the page cache (fsync everysec or never); those must be
	 * durable before the old values go, or a power cut would lose
	 * both. */
	if (j->sync_first && !kvs__testhook_skip_sync(KVS_HOOK_SYNC_BEFORE_UNLINK) &&
	    (e = kvs__seg_sync(db, j->sync_first))) {
		j->rc = kvs__err_errno(KVS_EIO, e, "%s: fdatasync",
				       j->sync_first->path);
		return;
	}
	/* A victim whose unlink fails becomes a ghost (struct ghost), as do
	 * all of them if the directory fsync fails. */
	for (size_t i = 0; i < j->ngone; i++) {
		struct kvs__seg *v = cp->victims[i];
		e = kvs__testhook_fail_unlink(v->path);
		if (!e && kvs__io_unlink(v->path) != 0 && errno != ENOENT)
			e = errno;
		if (e) {
			j->warn_rc = kvs__err_errno(KVS_EIO, e, "%s: unlink",
						    v->path);
			j->unlink_bad = true;
			if (j->kept)
				j->kept[i] = true;
		}
		char *hint = kvs__hint_path(db->dir, v->id);
		if (hint)
			kvs__io_unlink(hint);
		free(hint);
	}
	/* Ghosts of earlier passes are tried again. */
	for (size_t i = 0; i < cp->nghosts; i++) {
		struct ghost *g = &cp->ghosts[i];
		if (g->stuck || g->gone)
			continue;
		e = kvs__testhook_fail_unlink(g->path);
		g->gone = !e && (kvs__io_unlink(g->path) == 0 || errno == ENOENT);
	}
	e = kvs__testhook_fail(KVS__TH_FSYNC_DIR);
	if (e || (e = kvs__io_fsync_dir(db->dir)) != 0) {
		j->warn_rc = kvs__err_errno(KVS_EIO, e, "%s: fsync after "
					    "removing compacted segments",
					    db->dir);
		j->dir_bad = true;
	}
}

void kvs__cp_job_run(struct kvs__bgio_job *bj)
{
	struct job *j = caa_container_of(bj, struct job, bj);
	struct kvs *db = j->db;
	struct kvs__compact *cp = db->cp;

	KVS__ASSERT_NOT_IN_RCU(); /* it syncs and renames */
	j->rc = j->warn_rc = KVS_OK;
	j->synced_bad = j->renamed = j->dir_bad = j->unlink_bad = false;
	switch (j->kind) {
	case JOB_SEAL:
		seal(cp->out, j);
		break;
	case JOB_PUBLISH:
		publish(db, cp->out, j);
		break;
	case JOB_DROP:
		drop(db, cp, j);
		break;
	}
	/* The message belongs to this thread: the writer reads the copy. */
	if (j->rc != KVS_OK || j->warn_rc != KVS_OK)
		snprintf(j->msg, sizeof j->msg, "%s", kvs_errmsg());
}
