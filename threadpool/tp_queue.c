/* tp_queue.c - TP_SHARED_QUEUE: a fixed set of N worker threads taking jobs
 * in FIFO order from one queue under a mutex and a condition variable, with
 * a replacement started for any worker whose job ends its thread. */
#include "tp_int.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/*
 * The pool has N slots, each holding at most one worker thread at a time.
 * A worker loops: wait for a job or for shutdown, dequeue, run the job.
 * If the job ends the thread (pthread_exit, cancellation), a cleanup handler
 * around the job call marks the slot's worker as ended and starts a
 * successor in the same slot; the successor's first act is to join it.
 *
 * Invariants (every field marked "mu" is read and written with mu held):
 *   - live == the number of slots whose `running` is set.  It is N except
 *     after the system refused a replacement, until a refill succeeds
 *     (tp_spawn and shutdown refill).
 *   - Every thread the pool created is, at any moment, exactly one of: the
 *     running worker of its slot; the `prev` of its slot, with `reap` set
 *     (ended, not joined yet); being joined by its successor; joined.  A
 *     worker takes and joins its slot's `prev` before it runs any job or
 *     can end, so `reap` is never overwritten, and once live == 0 every
 *     thread not yet joined is a slot's `prev`: shutdown joins those.
 *   - A worker waits on work_cv only while the queue is empty and the pool
 *     is not closing, and leaves its loop only when the queue is empty and
 *     the pool is closing: queued jobs always run before shutdown returns.
 *   - A worker whose job ended its thread hands its count in live to its
 *     successor in one critical section (live drops only if the successor
 *     could not be started), so neither shutdown, which waits for
 *     live == 0, nor tp_pool_threads ever sees a transient dip.
 *   - A job struct is freed by the worker that dequeued it, before the job
 *     runs; the pool never touches a job's argument.
 */

struct tp__job {
	struct tp__job *next;
	void (*fn)(void *);
	void *arg;
};

struct tp__qpool;

/* One position of the pool.  A replacement takes its predecessor's slot,
 * and with it the thread name "<name>-<idx>". */
struct tp__slot {
	struct tp__qpool *pool; /* immutable */
	unsigned idx;           /* immutable */
	bool running;           /* mu: a worker lives here; tid names it */
	bool reap;              /* mu: prev is an ended thread, not joined */
	pthread_t tid;          /* mu */
	pthread_t prev;         /* mu */
};

struct tp__qpool {
	struct tp_pool base;     /* first: the public handle points here */
	unsigned n;              /* immutable: number of slots */
	pthread_mutex_t mu;      /* a leaf lock: no other lock is taken under it */
	pthread_cond_t work_cv;  /* mu: a job was queued, or closing was set */
	pthread_cond_t done_cv;  /* mu: live dropped to 0 */
	struct tp__job *head;    /* mu: the queue, oldest first */
	struct tp__job *tail;    /* mu */
	bool closing;            /* mu: tp_pool_shutdown has begun */
	_Atomic unsigned live;   /* written with mu held; tp_pool_threads reads
				  * it without */
	struct tp__slot slots[]; /* n of them */
};

static void *worker_main(void *arg);

/* Start a thread for the empty slot s; it becomes the slot's worker.  Does
 * not count it in live.  Call with mu held. */
static int slot_fill(struct tp__slot *s)
{
	int rc;

	KVS_ASSERT(!s->running);
	rc = tp__thread_start(&s->tid, worker_main, s);
	if (rc == TP_OK)
		s->running = true;
	return rc;
}

/* The calling thread, slot s's worker, is ending: leave it to be joined.
 * Does not change live.  Call with mu held. */
static void slot_vacate(struct tp__slot *s)
{
	KVS_ASSERT(s->running && !s->reap);
	KVS_ASSERT(pthread_equal(s->tid, pthread_self()));
	s->running = false;
	s->reap = true;
	s->prev = s->tid;
}

/* One worker fewer; wake shutdown at zero.  Call with mu held. */
static void live_drop(struct tp__qpool *p)
{
	if (atomic_fetch_sub(&p->live, 1) == 1)
		KVS_CHECK(pthread_cond_broadcast(&p->done_cv));
}

/* Start a worker in every empty slot.  Call with mu held. */
static int refill(struct tp__qpool *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		if (p->slots[i].running)
			continue;
		int rc = slot_fill(&p->slots[i]);
		if (rc != TP_OK)
			return rc;
		atomic_fetch_add(&p->live, 1);
	}
	return TP_OK;
}

/* Cleanup handler: the job running on slot s's worker ended the thread.
 * The successor takes over this thread's place in live, so live (which
 * tp_pool_threads reads without the lock) never dips. */
static void job_ended_thread(void *arg)
{
	struct tp__slot *s = arg;
	struct tp__qpool *p = s->pool;

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	slot_vacate(s);
	/* Refused: the slot stays empty until tp_spawn or shutdown refills. */
	if (slot_fill(s) != TP_OK)
		live_drop(p);
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
}

static void *worker_main(void *arg)
{
	struct tp__slot *s = arg;
	struct tp__qpool *p = s->pool;
	pthread_t prev = pthread_self(); /* overwritten when there is one */
	bool join_prev = false;

	tp__thread_init(&p->base, s->idx);

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	if (s->reap) {
		prev = s->prev;
		s->reap = false;
		join_prev = true;
	}
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
	/* The predecessor has left the pool's data; it is only exiting. */
	if (join_prev)
		KVS_CHECK(pthread_join(prev, NULL));

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	for (;;) {
		while (p->head == NULL && !p->closing)
			KVS_CHECK(pthread_cond_wait(&p->work_cv, &p->mu));
		struct tp__job *job = p->head;
		if (job == NULL)
			break; /* closing, and nothing left to run */
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		KVS_CHECK(pthread_mutex_unlock(&p->mu));

		void (*fn)(void *) = job->fn;
		void *job_arg = job->arg;
		free(job);
		tp__run_job(fn, job_arg, job_ended_thread, s);

		KVS_CHECK(pthread_mutex_lock(&p->mu));
	}
	slot_vacate(s);
	live_drop(p);
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
	return NULL;
}

static int queue_spawn(struct tp_pool *base, void (*fn)(void *), void *arg)
{
	struct tp__qpool *p = (struct tp__qpool *)base;
	struct tp__job *job = malloc(sizeof *job);
	int rc = TP_OK;

	if (job == NULL)
		return TP_ENOMEM;
	job->next = NULL;
	job->fn = fn;
	job->arg = arg;

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	if (p->closing) {
		rc = TP_ESHUTDOWN;
		goto out;
	}
	/* Best effort: bring back workers whose replacement was refused. */
	if (atomic_load(&p->live) < p->n)
		(void)refill(p);
	if (atomic_load(&p->live) == 0) {
		rc = TP_EAGAIN;
		goto out;
	}
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	job = NULL;
	KVS_CHECK(pthread_cond_signal(&p->work_cv));
out:
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
	free(job);
	return rc;
}

static unsigned queue_threads(const struct tp_pool *base)
{
	const struct tp__qpool *p = (const struct tp__qpool *)base;

	return atomic_load(&p->live);
}

static void queue_shutdown(struct tp_pool *base)
{
	struct tp__qpool *p = (struct tp__qpool *)base;
	const struct timespec retry = { 0, 10 * 1000 * 1000 };

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	KVS_ASSERT(!p->closing);
	p->closing = true;
	KVS_CHECK(pthread_cond_broadcast(&p->work_cv));
	while (atomic_load(&p->live) > 0 || p->head != NULL) {
		if (atomic_load(&p->live) == 0 && refill(p) != TP_OK &&
		    atomic_load(&p->live) == 0) {
			/* Jobs are queued and no worker could be started
			 * (only after a refused replacement): keep trying,
			 * since every accepted job must run. */
			KVS_CHECK(pthread_mutex_unlock(&p->mu));
			nanosleep(&retry, NULL);
			KVS_CHECK(pthread_mutex_lock(&p->mu));
			continue;
		}
		KVS_CHECK(pthread_cond_wait(&p->done_cv, &p->mu));
	}
	KVS_CHECK(pthread_mutex_unlock(&p->mu));

	/* live == 0: no worker runs, each slot's last thread awaits its join. */
	for (unsigned i = 0; i < p->n; i++) {
		struct tp__slot *s = &p->slots[i];

		KVS_ASSERT(!s->running);
		if (s->reap)
			KVS_CHECK(pthread_join(s->prev, NULL));
	}
	KVS_CHECK(pthread_cond_destroy(&p->done_cv));
	KVS_CHECK(pthread_cond_destroy(&p->work_cv));
	KVS_CHECK(pthread_mutex_destroy(&p->mu));
	free(p);
}

static const struct tp__ops queue_ops = {
	.spawn = queue_spawn,
	.threads = queue_threads,
	.shutdown = queue_shutdown,
};

int tp__queue_new(unsigned n, const char *name, struct tp_pool **out)
{
	struct tp__qpool *p;
	int rc;

	p = calloc(1, sizeof *p + (size_t)n * sizeof p->slots[0]);
	if (p == NULL)
		return TP_ENOMEM;
	tp__pool_init(&p->base, &queue_ops, name);
	p->n = n;
	KVS_CHECK(pthread_mutex_init(&p->mu, NULL));
	KVS_CHECK(pthread_cond_init(&p->work_cv, NULL));
	KVS_CHECK(pthread_cond_init(&p->done_cv, NULL));
	for (unsigned i = 0; i < n; i++) {
		p->slots[i].pool = p;
		p->slots[i].idx = i;
	}

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	rc = refill(p);
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
	if (rc != TP_OK) {
		/* Stops and joins the workers that did start, frees p. */
		queue_shutdown(&p->base);
		return rc;
	}
	*out = &p->base;
	return TP_OK;
}
