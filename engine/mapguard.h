/*
 * mapguard.h - reading mapped bytes under the SIGBUS guard (mapguard.c).
 */
#ifndef KVS_ENGINE_MAPGUARD_H
#define KVS_ENGINE_MAPGUARD_H

#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* ---- reading mapped bytes (mapguard.c) ---------------------------------- */
/*
 * A mapped page of a file that was cut short under the process (or that the
 * disk cannot read) raises SIGBUS when touched.  Every copy from a segment's
 * mapping (reads, compaction reading a victim, hint entries read back) runs
 * armed: the process-wide handler (installed by the first kvs_open, chaining
 * to the previous handler for any other SIGBUS) jumps back to the copy's
 * sigsetjmp, which then reports the failure.  Use, in one function:
 *
 *	if (sigsetjmp(kvs__mapguard.jb, 0) != 0)
 *		return <the page could not be read>;   (guard already disarmed)
 *	KVS__MAP_ARM();
 *	... read the mapping: no lock taken, nothing allocated ...
 *	KVS__MAP_DISARM();
 *
 * Between ARM and DISARM no local variable that is used after the jump may
 * be changed (C's setjmp rule), and nothing may be left half done: the jump
 * abandons the code in between.  Guards do not nest.
 */
struct kvs__mapguard {
	sigjmp_buf jb;
	volatile sig_atomic_t armed;
	volatile sig_atomic_t faults; /* mapped pages this thread failed to read */
};
extern _Thread_local struct kvs__mapguard kvs__mapguard;
/* The signal fences keep the compiler from moving the mapping's loads out
 * of the armed stretch. */
#define KVS__MAP_ARM()                                                        \
	do {                                                                  \
		kvs__mapguard.armed = 1;                                      \
		atomic_signal_fence(memory_order_seq_cst);                    \
	} while (0)
#define KVS__MAP_DISARM()                                                     \
	do {                                                                  \
		atomic_signal_fence(memory_order_seq_cst);                    \
		kvs__mapguard.armed = 0;                                      \
	} while (0)
/* Install the SIGBUS handler (once per process; kvs_open calls it). */
void kvs__mapguard_install(void);
/* memcpy from a mapping; false if a page could not be read. */
bool kvs__map_copy(void *dst, const void *src, size_t n);

#endif /* KVS_ENGINE_MAPGUARD_H */
