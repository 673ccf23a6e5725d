/* bgio.c - the store's background I/O thread: runs the jobs the writer posts
 * (one at a time) and writes the hint files of the segments it seals, at
 * nice 10, and reports each through the writer's wake callback.  bgio_main
 * and what it calls run on that thread; the kvs__bgio_* functions on the
 * writer, except where bgio.h says any thread. */
#include "bgio.h"
#include "engine_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

struct kvs__bgio {
	struct kvs *db;            /* its directory and log; immutable */
	void (*wake)(void *ctx);   /* immutable */
	void *wake_ctx;
	pthread_t thread;
	bool started;              /* writer only */
	/* mu guards posted, stop and the hint queue (seg->hint_next); cv:
	 * work or stop for the thread; done_cv: a job or a hint is over (for
	 * the waits).  mu is a leaf: nothing else is taken under it. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t done_cv;
	struct kvs__bgio_job *posted;
	bool stop;
	/* Sealed segments whose hint files are to be written, oldest first. */
	struct kvs__seg *hint_head, *hint_tail;
};

int kvs__bgio_new(struct kvs *db, void (*wake)(void *ctx), void *ctx,
		  struct kvs__bgio **out)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__bgio *bg = calloc(1, sizeof *bg);
	if (!bg)
		return kvs__err(KVS_ENOMEM, "out of memory");
	bg->db = db;
	bg->wake = wake;
	bg->wake_ctx = ctx;
	KVS_CHECK(pthread_mutex_init(&bg->mu, NULL));
	KVS_CHECK(pthread_cond_init(&bg->cv, NULL));
	KVS_CHECK(pthread_cond_init(&bg->done_cv, NULL));
	*out = bg;
	return KVS_OK;
}

/* A job or a hint is over: store its flag (release: what it wrote is
 * visible to whoever sees the flag), then wake the waits of this file and
 * the writer.  The flag is stored under mu so that a wait that found it
 * unset is asleep before the broadcast. */
static void announce(struct kvs__bgio *bg, atomic_bool *flag, bool value)
{
	kvs__lock(&bg->mu);
	atomic_store_explicit(flag, value, memory_order_release);
	KVS_CHECK(pthread_cond_broadcast(&bg->done_cv));
	kvs__unlock(&bg->mu);
	bg->wake(bg->wake_ctx);
}

static void job_run(struct kvs__bgio *bg, struct kvs__bgio_job *job)
{
	job->run(job);
	announce(bg, &job->done, true);
}

/* Write a sealed segment's hint, then let the writer see the segment free
 * again. */
static void hint_run(struct kvs__bgio *bg, struct kvs__seg *seg)
{
	/* The hint only speeds up the next open: failing to write it is not
	 * a failed write. */
	struct kvs *db = bg->db;
	sig_atomic_t faults = kvs__mapguard.faults;
	if (kvs__seg_write_hint(db->dir, seg, seg->hint_footer_off) != KVS_OK) {
		if (kvs__mapguard.faults != faults)
			kvs__note_damage(db, seg, EIO); /* logs it */
		else
			kvs__log(db, KVS_LOG_WARN, "%s", kvs_errmsg());
	}
	announce(bg, &seg->hint_busy, false);
}

/* The oldest queued hint (under mu). */
static struct kvs__seg *next_hint(struct kvs__bgio *bg)
{
	KVS__ASSERT_HELD(&bg->mu);
	struct kvs__seg *seg = bg->hint_head;
	if (!(bg->hint_head = seg->hint_next))
		bg->hint_tail = NULL;
	return seg;
}

static void *bgio_main(void *arg)
{
	struct kvs__bgio *bg = arg;

	kvs__io_role("bgio");
	/* Jobs are background work (a hint's encoding alone takes
	 * milliseconds of CPU): at a low priority, a thread that serves
	 * clients preempts this one as soon as it wakes, and on a small
	 * machine the writer is not descheduled for it.  Nice 10 (about a
	 * tenth of a normal thread's share under contention), not SCHED_IDLE
	 * or nice 19: under full load it still progresses, so a writer
	 * waiting for a job (compaction's over_budget) is not starved.  A
	 * failure here is harmless. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
	kvs__lock(&bg->mu);
	for (;;) {
		while (!bg->posted && !bg->stop && !bg->hint_head)
			KVS_CHECK(pthread_cond_wait(&bg->cv, &bg->mu));
		if (bg->posted) { /* a job first: it may be awaited */
			struct kvs__bgio_job *job = bg->posted;
			bg->posted = NULL;
			kvs__unlock(&bg->mu);
			job_run(bg, job);
			kvs__lock(&bg->mu);
			continue;
		}
		if (!bg->hint_head)
			break; /* stopping; queued hints are written first, so
				  that the next open finds them */
		struct kvs__seg *seg = next_hint(bg);
		kvs__unlock(&bg->mu);
		hint_run(bg, seg);
		kvs__lock(&bg->mu);
	}
	kvs__unlock(&bg->mu);
	return NULL;
}

/* Start the thread if it is not running yet; false if it cannot be.  It is
 * started once and kept: creating and joining a thread per job cost the
 * writer up to milliseconds. */
static bool ensure_started(struct kvs__bgio *bg)
{
	KVS__ASSERT_WRITER(bg->db);
	if (!bg->started)
		bg->started =
			pthread_create(&bg->thread, NULL, bgio_main, bg) == 0;
	return bg->started;
}

void kvs__bgio_post(struct kvs__bgio *bg, struct kvs__bgio_job *job)
{
	atomic_store_explicit(&job->done, false, memory_order_relaxed);
	if (!ensure_started(bg)) {
		job_run(bg, job); /* no thread to spare: do it here */
		return;
	}
	kvs__lock(&bg->mu);
	KVS_ASSERT(!bg->posted);
	bg->posted = job;
	KVS_CHECK(pthread_cond_signal(&bg->cv));
	kvs__unlock(&bg->mu);
}

bool kvs__bgio_done(const struct kvs__bgio_job *job)
{
	return atomic_load_explicit(&job->done, memory_order_acquire);
}

void kvs__bgio_wait(struct kvs__bgio *bg, const struct kvs__bgio_job *job)
{
	KVS__ASSERT_WRITER(bg->db);
	KVS__ASSERT_NOT_IN_RCU();
	if (kvs__bgio_done(job))
		return;
	kvs__lock(&bg->mu);
	while (!kvs__bgio_done(job))
		KVS_CHECK(pthread_cond_wait(&bg->done_cv, &bg->mu));
	kvs__unlock(&bg->mu);
}

void kvs__bgio_hint(struct kvs__bgio *bg, struct kvs__seg *seg,
		    uint64_t footer_off)
{
	seg->hint_footer_off = footer_off;
	if (!ensure_started(bg)) {
		if (kvs__seg_write_hint(bg->db->dir, seg, footer_off) != KVS_OK)
			kvs__log(bg->db, KVS_LOG_WARN, "%s", kvs_errmsg());
		return;
	}
	atomic_store_explicit(&seg->hint_busy, true, memory_order_relaxed);
	seg->hint_next = NULL;
	kvs__lock(&bg->mu);
	if (bg->hint_tail)
		bg->hint_tail->hint_next = seg;
	else
		bg->hint_head = seg;
	bg->hint_tail = seg;
	KVS_CHECK(pthread_cond_signal(&bg->cv));
	kvs__unlock(&bg->mu);
}

bool kvs__bgio_hint_busy(const struct kvs__seg *seg)
{
	return atomic_load_explicit(&seg->hint_busy, memory_order_acquire);
}

void kvs__bgio_wait_hint(struct kvs__bgio *bg, const struct kvs__seg *seg)
{
	KVS__ASSERT_WRITER(bg->db);
	KVS__ASSERT_NOT_IN_RCU();
	if (!kvs__bgio_hint_busy(seg))
		return;
	kvs__lock(&bg->mu);
	while (kvs__bgio_hint_busy(seg))
		KVS_CHECK(pthread_cond_wait(&bg->done_cv, &bg->mu));
	kvs__unlock(&bg->mu);
}

void kvs__bgio_free(struct kvs__bgio *bg)
{
	if (!bg)
		return;
	if (bg->started) {
		/* It finishes a posted job and the queued hints first. */
		kvs__lock(&bg->mu);
		bg->stop = true;
		KVS_CHECK(pthread_cond_signal(&bg->cv));
		kvs__unlock(&bg->mu);
		KVS_CHECK(pthread_join(bg->thread, NULL));
	}
	KVS_CHECK(pthread_cond_destroy(&bg->done_cv));
	KVS_CHECK(pthread_cond_destroy(&bg->cv));
	KVS_CHECK(pthread_mutex_destroy(&bg->mu));
	free(bg);
}
