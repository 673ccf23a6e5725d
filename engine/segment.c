/* segment.c - segment files: creating one, sealing it (footer, sync, read-only
 * mapping) in steps a rotation can undo, closing its descriptor once it is
 * mapped, and releasing it once no reader can hold it. */
#include "engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* dir/NNNNNNNNNN.seg followed by `suffix`, from kvs__malloc. */
static char *path_of(const char *dir, uint32_t id, const char *suffix)
{
	size_t n = strlen(dir) + strlen(suffix) + 17;
	char *p = kvs__malloc(n);
	if (p)
		snprintf(p, n, "%s/%010u.seg%s", dir, id, suffix);
	return p;
}

char *kvs__seg_path(const char *dir, uint32_t id)
{
	return path_of(dir, id, "");
}

static struct kvs__seg *seg_alloc(const char *dir, uint32_t id)
{
	struct kvs__seg *seg = kvs__calloc(1, sizeof *seg);
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
	if (!seg || (tmp && !(path = path_of(dir, id, KVS__TMP_SUFFIX)))) {
		kvs__seg_free(seg);
		return kvs__err(KVS_ENOMEM, "out of memory");
	}
	const char *p = tmp ? path : seg->path;
	seg->fd = kvs__io_open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (seg->fd < 0) {
		rc = kvs__err_errno(KVS_EIO, errno, "%s: create", p);
		goto fail;
	}
	if ((e = kvs__io_pwrite_all(seg->fd, kvs__seg_header, KVS__HDR_LEN, 0)) ||
	    (!tmp && (e = kvs__io_fdatasync(seg->fd)))) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: write header", p);
		kvs__io_unlink(p);
		goto fail;
	}
	/* A temporary file becomes visible only by its rename, which syncs
	 * the directory then; its header is synced with its records (a
	 * newest segment whose header was lost gets it rewritten at open). */
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

/* seg's temporary name, without allocating (an undo must not need memory). */
static bool tmp_name(const struct kvs__seg *seg, char *buf, size_t size)
{
	return (size_t)snprintf(buf, size, "%s" KVS__TMP_SUFFIX, seg->path) < size;
}

int kvs__seg_publish_tmp(const char *dir, struct kvs__seg *seg, bool sync_dir)
{
	char tmp[PATH_MAX];
	int e;
	if (!tmp_name(seg, tmp, sizeof tmp))
		return kvs__err(KVS_EINVAL, "%s: path too long", seg->path);
	if (kvs__io_rename(tmp, seg->path) != 0) {
		e = errno;
		return kvs__err_errno(kvs__errno_transient(e) ? KVS_ENOSPC
							      : KVS_EIO,
				      e, "%s: rename", tmp);
	}
	if (sync_dir && (e = kvs__io_fsync_dir(dir)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: fsync", dir);
	return KVS_OK;
}

void kvs__seg_discard_tmp(struct kvs__seg *seg)
{
	char tmp[PATH_MAX];
	if (tmp_name(seg, tmp, sizeof tmp))
		kvs__io_unlink(tmp);
	kvs__seg_free(seg);
}

int kvs__seg_open(const char *dir, uint32_t id, struct kvs__seg **out)
{
	struct kvs__seg *seg = seg_alloc(dir, id);
	if (!seg)
		return kvs__err(KVS_ENOMEM, "out of memory");
	seg->fd = kvs__io_open(seg->path, O_RDWR | O_CLOEXEC, 0);
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
	void *p = kvs__io_mmap(seg->fd, len);
	if (p == MAP_FAILED)
		return;
	madvise(p, len, MADV_RANDOM);
	seg->win = p;
	seg->win_len = len;
}

/* A read-only mapping of the whole file (seg->size bytes): the active
 * segment's window when it covers the file, else a new mapping. */
static const unsigned char *seg_mmap(struct kvs__seg *seg)
{
	if (seg->win && seg->size <= seg->win_len)
		return seg->win;
	void *p = kvs__io_mmap(seg->fd, seg->size);
	if (p == MAP_FAILED)
		return NULL;
	madvise(p, seg->size, MADV_RANDOM);
	return p;
}

static void seg_set_map(struct kvs__seg *seg, const unsigned char *map)
{
	seg->map_len = seg->size;
	/* Release order: a reader that sees the map sees map_len too. */
	__atomic_store_n(&seg->map, map, __ATOMIC_RELEASE);
}

int kvs__seg_map(struct kvs__seg *seg)
{
	const unsigned char *map = seg_mmap(seg);
	if (!map)
		return kvs__err_errno(KVS_EIO, errno, "%s: mmap", seg->path);
	seg_set_map(seg, map);
	kvs__seg_drop_fd(seg);
	return KVS_OK;
}

void kvs__seg_drop_fd(struct kvs__seg *seg)
{
	if (seg->fd >= 0 && seg->map && seg->map_len >= seg->size) {
		kvs__io_close(seg->fd);
		seg->fd = -1;
	}
}

/* Cut the file back to `len` bytes (undoing a refused append). */
static int seg_cut(struct kvs__seg *seg, uint64_t len)
{
	while (kvs__io_ftruncate(seg->fd, (off_t)len) != 0) {
		if (errno != EINTR)
			return kvs__err_errno(KVS_EIO, errno, "%s: truncate",
					      seg->path);
	}
	return KVS_OK;
}

int kvs__seg_seal(struct kvs__seg *seg, uint64_t *footer_off,
		  const unsigned char **map)
{
	unsigned char foot[KVS__REC_MAX_HEAD + 5];
	size_t n = kvs__rec_encode_footer(foot, seg->last_seq, seg->records,
					  seg->chain);
	uint64_t off = seg->size;
	int e, rc;
	if ((e = kvs__io_pwrite_all(seg->fd, foot, n, (off_t)off)) != 0) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: write footer", seg->path);
		/* Part of the footer may be in the file: cut it off, so the
		 * segment takes records again when space comes back. */
		if (!kvs__errno_transient(e) || seg_cut(seg, off) != KVS_OK)
			return KVS_EIO;
		return KVS_ENOSPC;
	}
	seg->size += n;
	/* Never retried: after a failed fdatasync nobody knows what of the
	 * segment is on the disk. */
	if ((e = kvs__io_fdatasync(seg->fd)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: fdatasync", seg->path);
	seg->synced = seg->size;
	if (!(*map = seg_mmap(seg))) {
		rc = kvs__err_errno(KVS_ENOSPC, errno, "%s: mmap", seg->path);
		seg->size = seg->synced = off;
		return seg_cut(seg, off) == KVS_OK ? rc : KVS_EIO;
	}
	*footer_off = off;
	return KVS_OK;
}

int kvs__seg_unseal(struct kvs__seg *seg, uint64_t footer_off,
		    const unsigned char *map)
{
	if (map && map != seg->win)
		munmap((void *)map, seg->size);
	seg->size = footer_off;
	seg->synced = footer_off; /* the records before were synced */
	return seg_cut(seg, footer_off);
}

void kvs__seg_publish(struct kvs__seg *seg, const unsigned char *map)
{
	seg->sealed = true;
	seg_set_map(seg, map);
}

void kvs__seg_close_fd(struct kvs *db, struct kvs__seg *seg)
{
	KVS__ASSERT_WRITER(db);
	/* A reader pread()s the active segment only for a record outside its
	 * window (a record bigger than the window, or no window at all);
	 * such a reader may still hold the descriptor, so wait until every
	 * read-side section that began before the mapping was published is
	 * over.  Not inside one: a rotation runs between rounds. */
	if (seg->map != seg->win) {
		KVS__ASSERT_NOT_IN_RCU();
		urcu_memb_synchronize_rcu();
		KVS__TSAN_ACQUIRE();
	}
	kvs__lock(&db->sync.mu);
	while (seg->fd_users > 0)
		KVS_CHECK(pthread_cond_wait(&db->sync.cv, &db->sync.mu));
	int fd = seg->fd;
	seg->fd = -1;
	kvs__unlock(&db->sync.mu);
	if (fd >= 0)
		kvs__io_close(fd);
}

int kvs__seg_sync_locked(struct kvs *db, struct kvs__seg *seg)
{
	KVS__ASSERT_HELD(&db->sync.mu);
	int fd = seg->fd;
	if (fd < 0) /* sealed (and so synced) and closed meanwhile */
		return 0;
	seg->fd_users++;
	kvs__unlock(&db->sync.mu);
	int e = kvs__io_fdatasync(fd);
	kvs__lock(&db->sync.mu);
	if (--seg->fd_users == 0)
		KVS_CHECK(pthread_cond_broadcast(&db->sync.cv));
	return e;
}

int kvs__seg_sync(struct kvs *db, struct kvs__seg *seg)
{
	KVS__ASSERT_NOT_HELD(&db->sync.mu);
	kvs__lock(&db->sync.mu);
	int e = kvs__seg_sync_locked(db, seg);
	kvs__unlock(&db->sync.mu);
	return e;
}

void kvs__seg_mark_dead(struct kvs__seg *seg, uint64_t off,
			uint64_t seg_size)
{
	uint64_t bit = off >> 3, w = bit >> 6;
	if (w >= seg->deadmap_words) {
		/* Room for a segment of the store's size at once; past it (a
		 * segment that holds a request bigger than that), doubling.
		 * (No other field of seg is read: at recovery the opener may
		 * be changing them meanwhile.) */
		uint64_t words = (seg_size >> 9) + 1;
		if (words < 2 * seg->deadmap_words)
			words = 2 * seg->deadmap_words;
		if (words <= w)
			words = w + 1;
		/* calloc, not realloc and memset: a map this size is fresh
		 * zero pages from the kernel, and only the pages that get a
		 * mark become resident (one per 256 KiB of segment). */
		uint64_t *m = calloc(words, sizeof *m);
		if (!m) {
			seg->deadmap_lost = true;
			return;
		}
		if (seg->deadmap_words)
			memcpy(m, seg->deadmap,
			       seg->deadmap_words * sizeof *m);
		free(seg->deadmap);
		seg->deadmap = m;
		seg->deadmap_words = words;
	}
	seg->deadmap[w] |= 1ull << (bit & 63);
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
		kvs__io_close(seg->fd);
	kvs__hint_reset(&seg->hint);
	free(seg->deadmap);
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
