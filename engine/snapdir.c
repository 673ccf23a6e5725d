/* snapdir.c - the directory a snapshot is built in, for both engines: made
 * under a temporary name beside the target, renamed into place only once
 * every file in it is durable, removed whole on failure (snapshot.h has the
 * order of the steps).  A crash in the middle leaves only PARENT/.tmp-NAME,
 * which no one takes for a snapshot and the next snapshot of that name
 * removes. */
#include "snapshot.h"
#include "engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUF (1u << 20)

/* Remove dir's regular files, then dir (a temporary directory of ours:
 * flat, nothing else in it). */
static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *de;
		char p[4096 + 300];
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
			(void)kvs__io_unlink(p);
		}
		closedir(d);
	}
	(void)kvs__io_rmdir(dir);
}

static int io_err(int e, const char *what, const char *path)
{
	return kvs__err_errno(kvs__errno_transient(e) ? KVS_ENOSPC : KVS_EIO,
			      e, "%s: %s", path, what);
}

int kvs__snapdir_begin(struct kvs__snapdir *sd, const char *path)
{
	struct stat st;
	size_t len = path ? strlen(path) : 0;

	memset(sd, 0, sizeof *sd);
	while (len > 1 && path[len - 1] == '/')
		len--; /* "snap/" names snap */
	if (len == 0 || len >= sizeof sd->path - 16)
		return kvs__err(KVS_EINVAL, "snapshot: invalid path");
	memcpy(sd->path, path, len);
	sd->path[len] = '\0';
	const char *slash = strrchr(sd->path, '/');
	const char *name = slash ? slash + 1 : sd->path;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return kvs__err(KVS_EINVAL, "%s: not a name for a snapshot",
				sd->path);
	if (!slash)
		strcpy(sd->parent, ".");
	else if (slash == sd->path)
		strcpy(sd->parent, "/");
	else
		snprintf(sd->parent, sizeof sd->parent, "%.*s",
			 (int)(slash - sd->path), sd->path);
	if ((size_t)snprintf(sd->tmp, sizeof sd->tmp,
			     "%s/" KVS__SNAP_TMP_PREFIX "%s", sd->parent,
			     name) >= sizeof sd->tmp)
		return kvs__err(KVS_EINVAL, "snapshot: invalid path");
	if (lstat(sd->path, &st) == 0)
		return kvs__err(KVS_EEXIST, "%s: already exists", sd->path);
	if (errno != ENOENT)
		return kvs__err_errno(KVS_EIO, errno, "%s", sd->path);
	if (stat(sd->parent, &st) != 0)
		return kvs__err_errno(KVS_EIO, errno, "%s", sd->parent);
	if (!S_ISDIR(st.st_mode))
		return kvs__err(KVS_EIO, "%s: not a directory", sd->parent);
	/* What a crashed snapshot of the same name left: never complete. */
	if (lstat(sd->tmp, &st) == 0)
		remove_tree(sd->tmp);
	if (kvs__io_mkdir(sd->tmp, 0755) != 0)
		return io_err(errno, "mkdir", sd->tmp);
	sd->made = true;
	return KVS_OK;
}

int kvs__snapdir_commit(struct kvs__snapdir *sd, const char *engine)
{
	char marker[64];
	int n = snprintf(marker, sizeof marker, "%s\n", engine), rc, e;

	/* The marker is written durably and the directory fsynced: every
	 * file the engine put here is durable too (it synced its copies;
	 * hard links share synced inodes), so their names are next. */
	if ((rc = kvs__io_write_file_durably(sd->tmp, KVS__ENGINE_FILE, marker,
					     (size_t)n)) != KVS_OK)
		return rc;
	if (kvs__io_rename(sd->tmp, sd->path) != 0) {
		e = errno;
		if (e == EEXIST || e == ENOTEMPTY)
			return kvs__err(KVS_EEXIST, "%s: already exists",
					sd->path);
		return io_err(e, "rename", sd->path);
	}
	sd->made = false;
	/* The rename is done: a failed fsync of the parent leaves a complete
	 * snapshot whose name a power cut may undo.  Reported, not undone. */
	if ((e = kvs__io_fsync_dir(sd->parent)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: fsync", sd->parent);
	return KVS_OK;
}

void kvs__snapdir_abort(struct kvs__snapdir *sd)
{
	if (sd->made)
		remove_tree(sd->tmp);
	sd->made = false;
}

int kvs__snap_copy_fd(int src_fd, uint64_t len, const char *dst)
{
	unsigned char *buf = NULL;
	int fd = -1, rc = KVS_OK, e;
	uint64_t off = 0;

	fd = kvs__io_open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return io_err(errno, "create", dst);
	if (!(buf = malloc(COPY_BUF))) {
		rc = kvs__err(KVS_ENOSPC, "%s: out of memory", dst);
		goto fail;
	}
	while (off < len) {
		size_t want = len - off < COPY_BUF ? (size_t)(len - off) : COPY_BUF;
		ssize_t got = kvs__io_pread_full(src_fd, buf, want, (off_t)off);
		if (got < 0 || (size_t)got != want) {
			rc = kvs__err_errno(KVS_EIO, got < 0 ? (int)-got : EIO,
					    "%s: read of the source", dst);
			goto fail;
		}
		e = kvs__testhook_fail(KVS__TH_SNAP_WRITE);
		if (!e)
			e = kvs__io_pwrite_all(fd, buf, want, (off_t)off);
		if (e) {
			rc = io_err(e, "write", dst);
			goto fail;
		}
		off += want;
	}
	if ((e = kvs__io_fdatasync(fd)) != 0) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: fdatasync", dst);
		goto fail;
	}
	free(buf);
	if (kvs__io_close(fd) != 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: close", dst);
	return KVS_OK;
fail:
	free(buf);
	kvs__io_close(fd);
	(void)kvs__io_unlink(dst);
	return rc;
}
