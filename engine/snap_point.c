/* snap_point.c - the log engine's snapshot point, taken by the writer
 * thread between two rounds (writer.c): the segment list is the store's
 * state at that sequence number, so hard-linking its sealed segments and
 * pinning the active one there fixes the snapshot.
 *
 * Why nothing can go missing: only the writer changes the segment list, and
 * every file in it has its final name (a compaction output joins the list
 * after it is renamed into place; victims leave the list before the
 * background thread unlinks them).  So while the writer is here, each
 * segment of the list is on disk: a link made now is a name compaction
 * never removes, and an open descriptor (the active segment, or a file
 * that cannot be linked) keeps the inode readable after an unlink.
 * Sealed segments were fdatasynced when sealed, so their links are
 * durable once the snapshot's directory is.  A hint file is linked if it
 * is there; one the background thread has not written yet is simply
 * absent (the snapshot's first open scans that segment). */
#include "snapshot.h"
#include "engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kvs__snap_link(const char *from, const char *to)
{
	int e = kvs__testhook_fail(KVS__TH_SNAP_LINK);
	if (e) {
		errno = e;
		return -1;
	}
	return kvs__io_link(from, to);
}

/* Open `from` to copy it later (s->copies).  missing_ok: ENOENT is no
 * error (a hint). */
static int pin(struct kvs__snap *s, const char *from, const char *name,
	       bool missing_ok)
{
	struct kvs__snap_file *c;
	struct stat st;
	int fd = kvs__io_open(from, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		if (missing_ok && errno == ENOENT)
			return KVS_OK;
		return kvs__err_errno(kvs__errno_transient(errno) ? KVS_ENOSPC
								  : KVS_EIO,
				      errno, "%s: open", from);
	}
	if (fstat(fd, &st) != 0) {
		int e = errno;
		kvs__io_close(fd);
		return kvs__err_errno(KVS_EIO, e, "%s: fstat", from);
	}
	c = realloc(s->copies, (s->ncopies + 1) * sizeof *c);
	if (!c) {
		kvs__io_close(fd);
		return kvs__err(KVS_ENOSPC, "snapshot: out of memory");
	}
	s->copies = c;
	c = &s->copies[s->ncopies++];
	snprintf(c->name, sizeof c->name, "%s", name);
	c->fd = fd;
	c->len = (uint64_t)st.st_size;
	return KVS_OK;
}

/* Link (or pin) one file of the store into the snapshot. */
static int take(struct kvs__snap *s, const char *from, bool missing_ok)
{
	const char *name = strrchr(from, '/');
	char to[4096 + 64];
	name = name ? name + 1 : from;
	snprintf(to, sizeof to, "%s/%s", s->tmp, name);
	if (kvs__snap_link(from, to) == 0) {
		s->linked++;
		return KVS_OK;
	}
	int e = errno;
	if (e == ENOENT && missing_ok)
		return KVS_OK;
	/* Another file system, or one without hard links: copy it. */
	if (e == EXDEV || e == EPERM || e == EMLINK || e == ENOTSUP)
		return pin(s, from, name, missing_ok);
	return kvs__err_errno(kvs__errno_transient(e) ? KVS_ENOSPC : KVS_EIO,
			      e, "%s: link to %s", from, to);
}

int kvs__snap_point(struct kvs *db, struct kvs__snap *s)
{
	KVS__ASSERT_WRITER(db);
	int rc;

	s->active_fd = -1;
	s->seq = db->next_seq;
	for (struct kvs__seg *seg = db->segs; seg; seg = seg->next) {
		if (seg == db->active)
			continue;
		char *hint = kvs__hint_path(db->dir, seg->id);
		if (!hint)
			return kvs__err(KVS_ENOSPC, "snapshot: out of memory");
		rc = take(s, seg->path, false);
		if (rc == KVS_OK)
			rc = take(s, hint, true);
		free(hint);
		if (rc != KVS_OK)
			return rc;
	}
	/* The active segment grows on: its first active_len bytes (whole
	 * rounds, the last one complete) are copied after the writer goes on.
	 * Later rounds only append; an undo cuts back no further than the
	 * start of a round after this point. */
	s->active_id = db->active->id;
	s->active_len = db->active->size;
	s->active_fd = kvs__io_open(db->active->path, O_RDONLY | O_CLOEXEC, 0);
	if (s->active_fd < 0)
		return kvs__err_errno(kvs__errno_transient(errno) ? KVS_ENOSPC
								  : KVS_EIO,
				      errno, "%s: open", db->active->path);
	return KVS_OK;
}

void kvs__snap_release(struct kvs__snap *s)
{
	for (size_t i = 0; i < s->ncopies; i++)
		kvs__io_close(s->copies[i].fd);
	free(s->copies);
	s->copies = NULL;
	s->ncopies = 0;
	if (s->active_fd >= 0)
		kvs__io_close(s->active_fd);
	s->active_fd = -1;
}
