/*
 * io.h - file I/O and the write path's allocations, with the fault
 * injection tests use (io.c).
 */
#ifndef KVS_ENGINE_IO_H
#define KVS_ENGINE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "util.h"

/* ---- I/O and allocation with fault injection (io.c) ------------------ */
/* malloc/calloc/realloc of the write path (the writer's buffers, index
 * entries and slabs, segments), so that kvs__fault_alloc() can fail them. */
void *kvs__malloc(size_t n);
void *kvs__calloc(size_t n, size_t size);
void *kvs__realloc(void *p, size_t n);
/* n bytes of zeroed memory mapped with its pages already present (one
 * system call instead of a page fault per page; munmap frees it), or NULL.
 * Fails as kvs__malloc does under fault injection. */
void *kvs__map_anon(size_t n);
/* Write all of iov at `off`, retrying EINTR and short writes.  Returns 0 or
 * an errno value. */
int kvs__io_pwritev_all(int fd, struct iovec *iov, int iovcnt, off_t off);
int kvs__io_pwrite_all(int fd, const void *buf, size_t len, off_t off);
/* Read len bytes at `off` (into iov's buffers), retrying EINTR and short
 * reads: returns the bytes read, fewer than asked only at the end of the
 * file, or -errno.  (The readers of a file that may have been cut short -
 * recovery, kvs-dump's reader, the read path past a window - tell a short
 * file from an error by the count.)  iovcnt <= KVS__IO_IOV_MAX. */
#define KVS__IO_IOV_MAX 4
ssize_t kvs__io_preadv_full(int fd, const struct iovec *iov, int iovcnt,
			    off_t off);
ssize_t kvs__io_pread_full(int fd, void *buf, size_t len, off_t off);
/* The suffix of a file being written that is not in place yet (a hint or a
 * marker file, a compaction output, the next active segment): an open
 * removes what a crash left of them. */
#define KVS__TMP_SUFFIX ".tmp"
/* fdatasync, or an injected failure.  Returns 0 or an errno value. */
int kvs__io_fdatasync(int fd);
/* fsync a directory so a created, renamed or removed entry is durable. */
int kvs__io_fsync_dir(const char *dir);
/* The other file operations of a store's directory, with libc's contract
 * (-1 and errno on failure; kvs__io_mmap: MAP_FAILED and errno).  Every
 * operation that changes a file of the store, or its directory, goes
 * through this file, so that the power-loss simulation (iosim.c,
 * kvs_iosim.h) sees them all.  kvs__io_mmap maps fd read-only and shared. */
int kvs__io_open(const char *path, int flags, mode_t mode);
int kvs__io_close(int fd);
int kvs__io_rename(const char *from, const char *to);
int kvs__io_unlink(const char *path);
int kvs__io_ftruncate(int fd, off_t len);
void *kvs__io_mmap(int fd, size_t len);
/* link(2) (a snapshot's hard links; the simulation follows no link into
 * the store's directory: kvs__sim_lost reports one), mkdir(2) and rmdir(2)
 * (a snapshot's temporary directory; directories are not simulated). */
int kvs__io_link(const char *from, const char *to);
int kvs__io_mkdir(const char *path, mode_t mode);
int kvs__io_rmdir(const char *path);
/* Name the calling thread's part in the simulation's log ("writer",
 * "submitter", "syncer", "bgio"; others are "caller").  `role` must be a literal. */
const char *kvs__io_role(const char *role); /* returns the previous */
/* Replace dir/name durably with `len` bytes: temp file, fdatasync, rename,
 * fsync of the directory.  Returns a KVS error code. */
int kvs__io_write_file_durably(const char *dir, const char *name,
			       const void *buf, size_t len);
/* The same without the syncs when !durable (hint files: a torn one fails
 * its checksum and is ignored, so it needs no sync). */
int kvs__io_write_file(const char *dir, const char *name, const void *buf,
		       size_t len, bool durable);

#endif /* KVS_ENGINE_IO_H */
