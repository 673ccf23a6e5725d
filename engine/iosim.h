/*
 * iosim.h - io.c's side of the power-loss simulation (iosim.c; the tests'
 * side is kvs_iosim.h).  Each io.c wrapper brackets the real system call
 * with kvs__sim_begin()/kvs__sim_end(): while a recording runs, begin takes
 * the simulation's lock (so the log's order is the order the calls took
 * effect in) and the kvs__sim_note_* call in between logs the call's
 * effect when it succeeded.
 */
#ifndef KVS_ENGINE_IOSIM_H
#define KVS_ENGINE_IOSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* True (and the lock taken) when recording. */
bool kvs__sim_begin(void);
void kvs__sim_end(void);
void kvs__sim_note_open(int fd, const char *path, int flags);
void kvs__sim_note_close(int fd);
/* `done` bytes of iov written at off. */
void kvs__sim_note_write(int fd, const struct iovec *iov, int iovcnt,
			 off_t off, size_t done);
void kvs__sim_note_sync(int fd);
void kvs__sim_note_sync_dir(const char *dir);
void kvs__sim_note_rename(const char *from, const char *to);
void kvs__sim_note_unlink(const char *path);
/* A hard link made at `to`: one into the watched directory is lost. */
void kvs__sim_note_link(const char *to);
void kvs__sim_note_truncate(int fd, off_t len);
void kvs__sim_note_mmap(int fd);

#endif /* KVS_ENGINE_IOSIM_H */
