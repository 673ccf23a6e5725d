/*
 * kvs_fault.h - fault injection for tests: make the engine's Nth next write,
 * fdatasync or write-path allocation fail.  Process-wide; not for
 * production.
 */
#ifndef KVS_FAULT_H
#define KVS_FAULT_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* nth = 1 fails the very next call; 0 disarms.  err is the errno the
 * failed call reports (ENOSPC, EDQUOT, EIO, ...). */
void kvs__fault_write(int nth, int err);
/* The same, but the failing write first really writes its first `keep`
 * bytes (a short write, as a disk filling up mid-write leaves). */
void kvs__fault_write_short(int nth, int err, size_t keep);
void kvs__fault_sync(int nth, int err);
/* The Nth next allocation through kvs__malloc/calloc/realloc (or
 * kvs__map_anon) returns NULL: the writer's staging buffers, index entries
 * and slabs, segment structs and paths, an open's hint buffers (the open
 * then scans the segment instead). */
void kvs__fault_alloc(int nth);
#ifdef __cplusplus
}
#endif
#endif
