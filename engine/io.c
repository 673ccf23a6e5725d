/* io.c - the engine's durable-write helpers, written once: full writes that
 * survive EINTR and short writes, fdatasync, directory fsync and the
 * temp-file-and-rename recipe.  Writes, syncs and the write path's
 * allocations pass a fault-injection check so tests can fail the Nth one. */
#include "io.h"
#include "iosim.h"
#include "kvs_fault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_int fault_write_n, fault_write_err;
static _Atomic size_t fault_write_keep;
static atomic_int fault_sync_n, fault_sync_err;
static atomic_int fault_alloc_n;

void kvs__fault_write(int nth, int err)
{
	kvs__fault_write_short(nth, err, 0);
}

void kvs__fault_write_short(int nth, int err, size_t keep)
{
	atomic_store(&fault_write_err, err);
	atomic_store(&fault_write_keep, keep);
	atomic_store(&fault_write_n, nth);
}

void kvs__fault_alloc(int nth)
{
	atomic_store(&fault_alloc_n, nth);
}

void kvs__fault_sync(int nth, int err)
{
	atomic_store(&fault_sync_err, err);
	atomic_store(&fault_sync_n, nth);
}

/* Count down an armed fault; returns the errno to inject or 0. */
static int fault_hit(atomic_int *n, atomic_int *err)
{
	int cur = atomic_load(n);
	while (cur > 0) {
		if (atomic_compare_exchange_weak(n, &cur, cur - 1))
			return cur == 1 ? atomic_load(err) : 0;
	}
	return 0;
}

/* An injected short write: the first `keep` bytes of iov really reach the
 * file, as when a disk fills up in the middle of a write. */
static size_t write_prefix(int fd, const struct iovec *iov, int iovcnt,
			   off_t off, size_t keep)
{
	size_t done = 0;
	for (int i = 0; i < iovcnt && keep > 0; i++) {
		size_t n = iov[i].iov_len < keep ? iov[i].iov_len : keep;
		if (pwrite(fd, iov[i].iov_base, n, off) != (ssize_t)n)
			break;
		off += (off_t)n;
		keep -= n;
		done += n;
	}
	return done;
}

/* Move past n bytes done of iov[0..*cnt): whole iovecs are skipped, a
 * partly done one is cut at its front.  Returns the first iovec left. */
static struct iovec *iov_advance(struct iovec *iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= iov->iov_len) {
		n -= iov->iov_len;
		iov++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		iov->iov_base = (char *)iov->iov_base + n;
		iov->iov_len -= n;
	}
	return iov;
}

static int pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off,
		       size_t *done)
{
	int e = fault_hit(&fault_write_n, &fault_write_err);
	if (e) {
		*done = write_prefix(fd, iov, iovcnt, off,
				     atomic_load(&fault_write_keep));
		return e;
	}
	while (iovcnt > 0) {
		int cnt = iovcnt > IOV_MAX ? IOV_MAX : iovcnt;
		ssize_t n = pwritev(fd, iov, cnt, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		off += n;
		*done += (size_t)n;
		iov = iov_advance(iov, &iovcnt, (size_t)n);
	}
	return 0;
}

int kvs__io_pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off)
{
	if (!kvs__sim_begin()) {
		size_t done = 0;
		return pwritev_all(fd, iov, iovcnt, off, &done);
	}
	/* The log needs the pieces as they were given: iov is consumed.
	 * (Test-only: a failed allocation aborts.) */
	struct iovec *copy = malloc((size_t)(iovcnt ? iovcnt : 1) * sizeof *copy);
	if (!copy)
		abort();
	memcpy(copy, iov, (size_t)iovcnt * sizeof *copy);
	size_t done = 0;
	int e = pwritev_all(fd, iov, iovcnt, off, &done);
	kvs__sim_note_write(fd, copy, iovcnt, off, done);
	free(copy);
	kvs__sim_end();
	return e;
}

int kvs__io_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return kvs__io_pwritev_all(fd, &iov, 1, off);
}

ssize_t kvs__io_preadv_full(int fd, const struct iovec *iov, int iovcnt,
			    off_t off)
{
	struct iovec v[KVS__IO_IOV_MAX];
	size_t total = 0, want = 0;
	KVS_ASSERT(iovcnt >= 0 && iovcnt <= KVS__IO_IOV_MAX);
	memcpy(v, iov, (size_t)iovcnt * sizeof *v);
	for (int i = 0; i < iovcnt; i++)
		want += v[i].iov_len;
	struct iovec *cur = v;
	while (total < want) {
		ssize_t n = preadv(fd, cur, iovcnt, off + (off_t)total);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* end of file */
		total += (size_t)n;
		cur = iov_advance(cur, &iovcnt, (size_t)n);
	}
	return (ssize_t)total;
}

ssize_t kvs__io_pread_full(int fd, void *buf, size_t len, off_t off)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	return kvs__io_preadv_full(fd, &iov, 1, off);
}

int kvs__io_fdatasync(int fd)
{
	int e = fault_hit(&fault_sync_n, &fault_sync_err);
	if (e)
		return e;
	bool sim = kvs__sim_begin();
	while (fdatasync(fd) != 0) {
		if (errno != EINTR) {
			e = errno;
			break;
		}
	}
	if (sim) {
		if (!e)
			kvs__sim_note_sync(fd);
		kvs__sim_end();
	}
	return e;
}

/* The allocations of the write path: one relaxed-enough atomic load more
 * than malloc, and only when memory is really asked for (the writer reuses
 * its buffers and carves index entries from slabs). */
static bool alloc_fails(void)
{
	atomic_int enomem = ENOMEM;
	return atomic_load_explicit(&fault_alloc_n, memory_order_relaxed) > 0 &&
	       fault_hit(&fault_alloc_n, &enomem) != 0;
}

void *kvs__malloc(size_t n)
{
	return alloc_fails() ? NULL : malloc(n);
}

void *kvs__calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : calloc(n, size);
}

void *kvs__realloc(void *p, size_t n)
{
	return alloc_fails() ? NULL : realloc(p, n);
}

void *kvs__map_anon(size_t n)
{
	if (alloc_fails())
		return NULL;
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

int kvs__io_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	bool sim = kvs__sim_begin();
	int rc = 0;
	if (fsync(fd) != 0)
		rc = errno;
	if (sim) {
		if (!rc)
			kvs__sim_note_sync_dir(dir);
		kvs__sim_end();
	}
	close(fd);
	return rc;
}

/* The wrappers below keep errno as the call left it. */
int kvs__io_open(const char *path, int flags, mode_t mode)
{
	bool sim = kvs__sim_begin();
	int fd = open(path, flags, mode);
	if (sim) {
		int e = errno;
		kvs__sim_note_open(fd, path, flags);
		kvs__sim_end();
		errno = e;
	}
	return fd;
}

int kvs__io_close(int fd)
{
	bool sim = kvs__sim_begin();
	int rc = close(fd);
	if (sim) {
		int e = errno;
		kvs__sim_note_close(fd); /* closed even when it failed */
		kvs__sim_end();
		errno = e;
	}
	return rc;
}

int kvs__io_rename(const char *from, const char *to)
{
	bool sim = kvs__sim_begin();
	int rc = rename(from, to);
	if (sim) {
		int e = errno;
		if (rc == 0)
			kvs__sim_note_rename(from, to);
		kvs__sim_end();
		errno = e;
	}
	return rc;
}

int kvs__io_unlink(const char *path)
{
	bool sim = kvs__sim_begin();
	int rc = unlink(path);
	if (sim) {
		int e = errno;
		if (rc == 0)
			kvs__sim_note_unlink(path);
		kvs__sim_end();
		errno = e;
	}
	return rc;
}

int kvs__io_link(const char *from, const char *to)
{
	bool sim = kvs__sim_begin();
	int rc = link(from, to);
	if (sim) {
		int e = errno;
		if (rc == 0)
			kvs__sim_note_link(to);
		kvs__sim_end();
		errno = e;
	}
	return rc;
}

/* Directories are not files of a store (its own directory is made before
 * anything is recorded): a snapshot's temporary directory is made and
 * removed here without a note. */
int kvs__io_mkdir(const char *path, mode_t mode)
{
	return mkdir(path, mode);
}

int kvs__io_rmdir(const char *path)
{
	return rmdir(path);
}

int kvs__io_ftruncate(int fd, off_t len)
{
	bool sim = kvs__sim_begin();
	int rc = ftruncate(fd, len);
	if (sim) {
		int e = errno;
		if (rc == 0)
			kvs__sim_note_truncate(fd, len);
		kvs__sim_end();
		errno = e;
	}
	return rc;
}

void *kvs__io_mmap(int fd, size_t len)
{
	bool sim = kvs__sim_begin();
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (sim) {
		int e = errno;
		if (p != MAP_FAILED)
			kvs__sim_note_mmap(fd);
		kvs__sim_end();
		errno = e;
	}
	return p;
}

int kvs__io_write_file_durably(const char *dir, const char *name,
			       const void *buf, size_t len)
{
	return kvs__io_write_file(dir, name, buf, len, true);
}

int kvs__io_write_file(const char *dir, const char *name, const void *buf,
		       size_t len, bool durable)
{
	char tmp[4096], dst[4096];
	int fd = -1, rc = KVS_OK, e;

	snprintf(tmp, sizeof tmp, "%s/%s" KVS__TMP_SUFFIX, dir, name);
	snprintf(dst, sizeof dst, "%s/%s", dir, name);
	fd = kvs__io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: create", tmp);
	if ((e = kvs__io_pwrite_all(fd, buf, len, 0)) != 0) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: write", tmp);
		goto fail;
	}
	if (durable && (e = kvs__io_fdatasync(fd)) != 0) {
		rc = kvs__err_errno(KVS_EIO, e, "%s: fdatasync", tmp);
		goto fail;
	}
	e = kvs__io_close(fd) == 0 ? 0 : errno;
	fd = -1;
	if (e) { /* NFS and some others report a failed write back here */
		rc = kvs__err_errno(KVS_EIO, e, "%s: close", tmp);
		goto fail;
	}
	if (kvs__io_rename(tmp, dst) != 0) {
		rc = kvs__err_errno(KVS_EIO, errno, "%s: rename", dst);
		goto fail;
	}
	if (durable && (e = kvs__io_fsync_dir(dir)) != 0)
		return kvs__err_errno(KVS_EIO, e, "%s: fsync", dir);
	return KVS_OK;
fail:
	if (fd >= 0)
		kvs__io_close(fd);
	kvs__io_unlink(tmp);
	return rc;
}
