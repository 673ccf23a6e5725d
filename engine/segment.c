/* segment.c - segment files: creating one, sealing it (footer, sync, read-only
 * mapping), and releasing it once no reader can hold it. */
#include "engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

char *kvs__seg_path(const char *dir, uint32_t id)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%010u.seg", dir, id) < 0)
		return NULL;
	return p;
}

static struct kvs__seg *seg_alloc(const char *dir, uint32_t id)
{
	struct kvs__seg *seg = calloc(1, sizeof *seg);
	if (!seg)
		return NULL;
	seg->id = id;
	seg->fd = -1;
	seg->path = kvs__seg_path(dir, id);
	if (!seg->path) {
		free(seg);
		return NULL;
	}
	return seg;
}

int kvs__seg_create(const char *dir, uint32_t id, bool tmp,
		    struct kvs__seg **out)
{
	int rc, e;
	struct kvs__seg *seg = seg_alloc(dir, id);
	char *path = NULL;
	if (!seg || (tmp && asprintf(&path, "%s.tmp", seg->path) < 0)) {
		kvs__seg_free(seg);
		return kvs__err(KVS_ENOMEM, "out of memory");
	}
	const char *p = tmp ? path : seg->path;
	seg->fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (seg->fd < 0) {
		rc = kvs__err_errno(KVS_EIO, errno, "%s: create", p);
		goto fail;
	}
	if ((e = kvs__io_pwrite_all(seg->fd, kvs__seg_header, KVS__HDR_LEN, 0)) ||
	    (!tmp && (e = kvs__io_fdatasync(seg->fd)))) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: write header", p);
		unlink(p);
		goto fail;
	}
	/* A compaction output becomes visible only by its rename, which
	 * syncs the directory then. */
	if (!tmp && (e = kvs__io_fsync_dir(dir)) != 0) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: fsync", dir);
		goto fail;
	}
	seg->size = seg->synced = KVS__HDR_LEN;
	seg->min_seq = UINT64_MAX;
	free(path);
	*out = seg;
	return KVS_OK;
fail:
	free(path);
	kvs__seg_free(seg);
	return rc;
}

int kvs__seg_publish_tmp(const char *dir, struct kvs__seg *seg)
{
	char *tmp = NULL;
	int e;
	if (asprintf(&tmp, "%s.tmp", seg->path) < 0)
		return kvs__err(KVS_ENOMEM, "out of memory");
	if (rename(tmp, seg->path) != 0) {
		int rc = kvs__err_errno(KVS_EIO, errno, "%s: rename", tmp);
		free(tmp);
		return rc;
	}
	free(tmp);
	if ((e = kvs__io_fsync_dir(dir)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: fsync", dir);
	return KVS_OK;
}

int kvs__seg_open(const char *dir, uint32_t id, struct kvs__seg **out)
{
	struct kvs__seg *seg = seg_alloc(dir, id);
	if (!seg)
		return kvs__err(KVS_ENOMEM, "out of memory");
	seg->fd = open(seg->path, O_RDWR | O_CLOEXEC);
	if (seg->fd < 0) {
		int rc = kvs__err_errno(KVS_EIO, errno, "%s: open", seg->path);
		kvs__seg_free(seg);
		return rc;
	}
	seg->min_seq = UINT64_MAX;
	*out = seg;
	return KVS_OK;
}

void kvs__seg_window(struct kvs__seg *seg, uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, seg->fd, 0);
	if (p == MAP_FAILED)
		return;
	madvise(p, len, MADV_RANDOM);
	seg->win = p;
	seg->win_len = len;
}

int kvs__seg_map(struct kvs__seg *seg)
{
	if (seg->win && seg->size <= seg->win_len) {
		seg->map_len = seg->size;
		__atomic_store_n(&seg->map, seg->win, __ATOMIC_RELEASE);
		return KVS_OK;
	}
	void *p = mmap(NULL, seg->size, PROT_READ, MAP_SHARED, seg->fd, 0);
	if (p == MAP_FAILED)
		return kvs__err_errno(KVS_EIO, errno, "%s: mmap", seg->path);
	madvise(p, seg->size, MADV_RANDOM);
	seg->map_len = seg->size;
	/* Release order: a reader that sees the map sees map_len too. */
	__atomic_store_n(&seg->map, (const unsigned char *)p, __ATOMIC_RELEASE);
	return KVS_OK;
}

int kvs__seg_seal(struct kvs *db, struct kvs__seg *seg)
{
	unsigned char foot[KVS__REC_MAX_HEAD + 5];
	size_t n = kvs__rec_encode_footer(foot, seg->last_seq, seg->records,
					  seg->chain);
	uint64_t footer_off = seg->size;
	int e, rc;
	if ((e = kvs__io_pwrite_all(seg->fd, foot, n, (off_t)seg->size)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: write footer", seg->path);
	seg->size += n;
	if ((e = kvs__io_fdatasync(seg->fd)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: fdatasync", seg->path);
	seg->synced = seg->size;
	seg->sealed = true;
	if ((rc = kvs__seg_map(seg)) != KVS_OK)
		return rc;
	/* Encoding and writing the hint takes tens of milliseconds for a big
	 * segment of small records: the compaction helper does it. */
	kvs__compact_hint_later(db, seg, footer_off);
	return KVS_OK;
}

void kvs__seg_free(struct kvs__seg *seg)
{
	if (!seg)
		return;
	if (seg->map && seg->map != seg->win)
		munmap((void *)seg->map, seg->map_len);
	if (seg->win)
		munmap((void *)seg->win, seg->win_len);
	if (seg->fd >= 0)
		close(seg->fd);
	kvs__hint_reset(&seg->hint);
	free(seg->path);
	free(seg);
}

static void seg_free_cb(struct rcu_head *head)
{
	KVS__TSAN_ACQUIRE();
	kvs__seg_free(caa_container_of(head, struct kvs__seg, rcu));
}

void kvs__seg_free_rcu(struct kvs__seg *seg)
{
	kvs__call_rcu(&seg->rcu, seg_free_cb);
}
