/* lmdb_snap.c - kvs_snapshot() for the LMDB engine: LMDB's own copy of the
 * environment (mdb_env_copyfd2 with MDB_CP_COMPACT: one read transaction,
 * so the state of one commit, free pages left out) into the snapshot's
 * data.mdb, then fdatasync.  Writers go on meanwhile; a write acknowledged
 * before the call was committed before the copy's read transaction began,
 * so it is in.  lock.mdb is not copied: LMDB makes it at open. */
#include "lmdb_int.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int kvs__lm_snapshot(struct kvs *db, const char *tmp)
{
	struct kvs__lmdb *lm = (struct kvs__lmdb *)db;
	char path[4096 + 16];
	int fd, rc = KVS_OK, e;

	snprintf(path, sizeof path, "%s/data.mdb", tmp);
	fd = kvs__io_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return kvs__err_errno(kvs__errno_transient(errno) ? KVS_ENOSPC
								  : KVS_EIO,
				      errno, "%s: create", path);
	e = kvs__testhook_fail(KVS__TH_SNAP_WRITE);
	if (!e)
		e = mdb_env_copyfd2(lm->env, fd, MDB_CP_COMPACT);
	if (e) {
		/* LMDB returns errno values for I/O, its own codes else. */
		rc = e > 0 ? kvs__err_errno(kvs__errno_transient(e) ? KVS_ENOSPC
								    : KVS_EIO,
					    e, "%s: copy", path)
			   : kvs__err(KVS_EIO, "%s: copy: %s", path,
				      mdb_strerror(e));
	} else if ((e = kvs__io_fdatasync(fd)) != 0) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: fdatasync", path);
	}
	if (kvs__io_close(fd) != 0 && rc == KVS_OK)
		rc = kvs__err_errno(KVS_EIO, errno, "%s: close", path);
	return rc;
}
