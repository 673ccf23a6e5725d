/*
 * bgio.h - the store's background I/O thread (bgio.c): file work the writer
 * must not wait for.  It runs posted jobs one at a time (a compaction pass's
 * syncs, renames and unlinks) and writes the hint files of segments the
 * writer has sealed, oldest first.  It knows nothing of what a job is for,
 * nor of the writer's queue: it reports every finished job and hint through
 * the callback given to kvs__bgio_new.
 *
 * Threads: kvs__bgio_new, _free, _post, _hint and the waits are for the
 * writer thread (the opener or closer while no writer runs); _done and
 * _hint_busy may be called by any thread.
 */
#ifndef KVS_BGIO_H
#define KVS_BGIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct kvs;
struct kvs__seg;
struct kvs__bgio;

/* A job: run(job) is called once, on the background thread (or on the
 * poster's, when no thread can be started).  The poster owns the job and
 * must not touch what run uses until kvs__bgio_done(job) says so; embed
 * this struct in the job's own and get back to it with container_of. */
struct kvs__bgio_job {
	void (*run)(struct kvs__bgio_job *job);
	atomic_bool done; /* set with release order after run returned */
};

/* A new, idle background I/O unit for store db (its directory, its log).
 * The thread starts on first use, at nice 10.  wake(ctx) is called after
 * each job and each hint file is done, holding no lock of bgio's: on the
 * background thread, or on the writer when no thread could be started and
 * the job ran there.  The writer passes a function that wakes it.  Returns
 * KVS_OK or KVS_ENOMEM. */
int kvs__bgio_new(struct kvs *db, void (*wake)(void *ctx), void *ctx,
		  struct kvs__bgio **out);
/* Finish a posted job and every queued hint file, stop the thread and free
 * bg (NULL is fine). */
void kvs__bgio_free(struct kvs__bgio *bg);

/* Run job in the background: job->done is cleared here and set when it is
 * over.  The previous job must be done.  A job goes before queued hints. */
void kvs__bgio_post(struct kvs__bgio *bg, struct kvs__bgio_job *job);
/* Is the job over (acquire: its results may be read)?  Any thread. */
bool kvs__bgio_done(const struct kvs__bgio_job *job);
/* Block until the job is over (at once if it is). */
void kvs__bgio_wait(struct kvs__bgio *bg, const struct kvs__bgio_job *job);

/* Write the hint file of seg, just sealed and published (footer_off: where
 * its footer is), in the background; seg must stay until
 * kvs__bgio_hint_busy(seg) is false.  Written at once, on this thread, when
 * no background thread can be started.  A failure is logged (the hint only
 * speeds up the next open). */
void kvs__bgio_hint(struct kvs__bgio *bg, struct kvs__seg *seg,
		    uint64_t footer_off);
/* Is seg's hint file queued or being written?  Any thread. */
bool kvs__bgio_hint_busy(const struct kvs__seg *seg);
/* Block until seg's hint file is written (at once if it is). */
void kvs__bgio_wait_hint(struct kvs__bgio *bg, const struct kvs__seg *seg);

#endif /* KVS_BGIO_H */
