/*
 * kvs_fault.h - fault injection for tests: make the engine's Nth next write
 * or fdatasync fail with a chosen errno.  Process-wide; not for production.
 */
#ifndef KVS_FAULT_H
#define KVS_FAULT_H
#ifdef __cplusplus
extern "C" {
#endif
/* nth = 1 fails the very next call; 0 disarms. */
void kvs__fault_write(int nth, int err);
void kvs__fault_sync(int nth, int err);
#ifdef __cplusplus
}
#endif
#endif
