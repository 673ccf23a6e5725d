/* tp_naive.c - TP_NAIVE: every job gets a thread of its own, started by
 * tp_spawn and joined later by a tp_spawn or by shutdown. */
#include "tp_int.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

/*
 * Each job thread, when its job is over (it returned, or ended the thread:
 * the same cleanup handler runs either way), puts its record on the pool's
 * `ended` list and decrements `running`.  The next tp_spawn joins and frees
 * whatever is on that list, so a long-lived pool does not pile up finished
 * threads; shutdown waits for running == 0 and joins the rest.
 *
 * Invariants (fields marked "mu" are read and written with mu held):
 *   - running == the number of job threads that have not yet put themselves
 *     on `ended`.  Every thread the pool created is running, on `ended`, or
 *     joined and freed.
 *   - A thread on `ended` touches no pool data any more (it is only
 *     returning), so joining it never waits for more than its exit.
 *   - Once closing is set no thread is created, so shutdown's wait for
 *     running == 0 ends when the last running job does.
 */

struct tp__npool;

/* One job and its thread.  Owned by the thread until it is on `ended`, then
 * by whoever takes it off the list (to join and free it). */
struct tp__nthread {
	struct tp__nthread *next; /* mu: on `ended` */
	struct tp__npool *pool;   /* immutable */
	pthread_t tid;            /* set (with mu held) before the thread can
				   * reach `ended` */
	unsigned long idx;        /* immutable: the thread name's number */
	void (*fn)(void *);       /* immutable */
	void *arg;                /* immutable */
};

struct tp__npool {
	struct tp_pool base;          /* first: the public handle points here */
	pthread_mutex_t mu;           /* a leaf lock */
	pthread_cond_t done_cv;       /* mu: running dropped to 0 */
	struct tp__nthread *ended;    /* mu: job over, thread to be joined */
	unsigned long started;        /* mu: threads created so far */
	bool closing;                 /* mu: tp_pool_shutdown has begun */
	_Atomic unsigned running;     /* written with mu held; tp_pool_threads
				       * reads it without */
};

/* Join and free a list taken off `ended`.  Call without mu. */
static void join_all(struct tp__nthread *t)
{
	while (t != NULL) {
		struct tp__nthread *next = t->next;

		KVS_CHECK(pthread_join(t->tid, NULL));
		free(t);
		t = next;
	}
}

/* Cleanup handler, run on every job thread's way out. */
static void job_over(void *arg)
{
	struct tp__nthread *t = arg;
	struct tp__npool *p = t->pool;

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	t->next = p->ended;
	p->ended = t;
	if (atomic_fetch_sub(&p->running, 1) == 1)
		KVS_CHECK(pthread_cond_broadcast(&p->done_cv));
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
}

static void *job_main(void *arg)
{
	struct tp__nthread *t = arg;

	tp__thread_init(&t->pool->base, t->idx);
	tp__run_job(t->fn, t->arg, job_over, t);
	job_over(t);
	return NULL;
}

static int naive_spawn(struct tp_pool *base, void (*fn)(void *), void *arg)
{
	struct tp__npool *p = (struct tp__npool *)base;
	struct tp__nthread *t = calloc(1, sizeof *t);
	struct tp__nthread *reap = NULL;
	int rc;

	if (t == NULL)
		return TP_ENOMEM;
	t->pool = p;
	t->fn = fn;
	t->arg = arg;

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	if (p->closing) {
		rc = TP_ESHUTDOWN;
		goto out;
	}
	reap = p->ended;
	p->ended = NULL;
	t->idx = p->started;
	rc = tp__thread_start(&t->tid, job_main, t);
	if (rc == TP_OK) {
		p->started++;
		atomic_fetch_add(&p->running, 1);
		t = NULL; /* the thread owns it now */
	}
out:
	KVS_CHECK(pthread_mutex_unlock(&p->mu));
	free(t);
	join_all(reap);
	return rc;
}

static unsigned naive_threads(const struct tp_pool *base)
{
	const struct tp__npool *p = (const struct tp__npool *)base;

	return atomic_load(&p->running);
}

static void naive_shutdown(struct tp_pool *base)
{
	struct tp__npool *p = (struct tp__npool *)base;
	struct tp__nthread *reap;

	KVS_CHECK(pthread_mutex_lock(&p->mu));
	KVS_ASSERT(!p->closing);
	p->closing = true;
	while (atomic_load(&p->running) > 0)
		KVS_CHECK(pthread_cond_wait(&p->done_cv, &p->mu));
	reap = p->ended;
	p->ended = NULL;
	KVS_CHECK(pthread_mutex_unlock(&p->mu));

	join_all(reap);
	KVS_CHECK(pthread_cond_destroy(&p->done_cv));
	KVS_CHECK(pthread_mutex_destroy(&p->mu));
	free(p);
}

static const struct tp__ops naive_ops = {
	.spawn = naive_spawn,
	.threads = naive_threads,
	.shutdown = naive_shutdown,
};

int tp__naive_new(unsigned n, const char *name, struct tp_pool **out)
{
	struct tp__npool *p;

	(void)n; /* no fixed threads: every job gets its own */
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return TP_ENOMEM;
	tp__pool_init(&p->base, &naive_ops, name);
	KVS_CHECK(pthread_mutex_init(&p->mu, NULL));
	KVS_CHECK(pthread_cond_init(&p->done_cv, NULL));
	*out = &p->base;
	return TP_OK;
}
