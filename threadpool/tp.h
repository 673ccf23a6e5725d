/*
 * tp.h - thread pools: the one public header of threadpool/.
 *
 * One interface, two implementations (talent-plan project 4):
 *   TP_NAIVE         each tp_spawn() starts a new thread that runs that one
 *                    job and ends.  No queue, no limit: for comparison and
 *                    for tests, not for a server.
 *   TP_SHARED_QUEUE  a fixed set of N worker threads; tp_spawn() appends the
 *                    job to one FIFO queue (a mutex and a condition
 *                    variable) and an idle worker takes it.  The server runs
 *                    its N worker event loops as N jobs of such a pool.
 *
 * Who may call what
 *   - tp_pool_new(): any thread.
 *   - tp_spawn(): any thread, concurrently, including the pool's own jobs.
 *     Once tp_pool_shutdown() has begun it fails with TP_ESHUTDOWN.  When
 *     tp_pool_shutdown() returns the pool is freed and must not be named
 *     again, so from its start on only threads it waits for (the pool's own
 *     jobs) or that end before it returns may still call tp_spawn().
 *   - tp_pool_threads(): any thread, while the pool exists.
 *   - tp_pool_shutdown(): once, from any thread that is not one of this
 *     pool's threads (a job shutting its own pool down would wait for
 *     itself; the library aborts instead).
 *
 * Guarantees
 *   - Every job that tp_spawn() accepted (returned TP_OK) starts exactly
 *     once, and has ended before tp_pool_shutdown() returns.  On a
 *     TP_SHARED_QUEUE pool jobs start in the order they were accepted.
 *   - A job may run for as long as it likes: there is no watchdog and no
 *     timeout.  While all N workers are busy, newly accepted jobs wait in the
 *     queue, so a job must not wait for a job spawned after it unless a
 *     worker is certain to be free for that one.
 *   - A job may end its own thread (pthread_exit(), or pthread_cancel() acted
 *     on inside the job: talent-plan's "panicking job").  The job counts as
 *     run; the pool notices (a cleanup handler around the job) and starts a
 *     replacement in the same slot, so a TP_SHARED_QUEUE pool keeps N live
 *     threads.  If the system refuses the replacement, the pool retries on
 *     the next tp_spawn() and at shutdown.
 *   - Cancellation is enabled only while a job runs (deferred type): a
 *     request made between jobs waits for the next job's first
 *     cancellation point, and never stops a worker outside a job.
 *   - A job must not detach or join its own thread, and must not let a C++
 *     exception escape (the process would terminate).
 *   - Nothing outlives tp_pool_shutdown(): every thread the pool ever
 *     created has been joined, and all memory is freed, when it returns.
 *   - Threads are named "<name>-<i>" (pthread_setname_np, at most 15 bytes,
 *     the name shortened to keep the number): i is the slot 0..N-1 for
 *     TP_SHARED_QUEUE (a replacement keeps its slot's name), a running count
 *     for TP_NAIVE.
 *   - Pool threads start with every asynchronous signal blocked, so the
 *     process's signals go to the application's own threads; the fault
 *     signals (SIGBUS, SIGSEGV, SIGFPE, SIGILL) stay unblocked, since a
 *     blocked fault signal kills the process whatever its handler (the kvs
 *     engine's SIGBUS handler must reach readers).  A job that changes its signal
 *     mask or cancellation type must restore them before it returns.
 *   - Nothing here prints, except on a broken invariant (a pthread call
 *     that cannot fail did, or shutdown from the pool's own thread): then
 *     the library writes file, line and the error text to stderr and aborts.
 */
#ifndef KVS_TP_H
#define KVS_TP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes.  Zero is success; every failure is negative. */
enum tp_error {
	TP_OK = 0,
	TP_EINVAL = -1,    /* invalid argument (see each function) */
	TP_ENOMEM = -2,    /* out of memory */
	TP_EAGAIN = -3,    /* the system refused to create a thread */
	TP_ESHUTDOWN = -4, /* tp_pool_shutdown() has begun: no new jobs */
};

enum tp_kind {
	TP_NAIVE = 0,        /* a new thread per job */
	TP_SHARED_QUEUE = 1, /* N threads sharing one job queue */
};

/* The most threads a pool may be asked for. */
#define TP_MAX_THREADS 4096u

struct tp_pool; /* a pool: opaque */

/*
 * Create a pool.
 *   kind: TP_NAIVE or TP_SHARED_QUEUE.
 *   nthreads: 1..TP_MAX_THREADS.  TP_SHARED_QUEUE starts exactly that many
 *     workers before returning; TP_NAIVE checks the count and otherwise
 *     ignores it (it has no fixed threads).
 *   name: prefix of the thread names; NULL or "" means "tp".  Only read
 *     during the call.
 *   out: receives the pool, to be released with tp_pool_shutdown().
 * Errors (*out untouched, nothing left running): TP_EINVAL (bad kind,
 * nthreads out of range, out NULL), TP_ENOMEM, TP_EAGAIN (a worker could not
 * be created; the ones that were are joined first).
 */
int tp_pool_new(enum tp_kind kind, unsigned nthreads, const char *name,
		struct tp_pool **out);

/*
 * Run fn(arg) on a pool thread.  Never waits for a job to start or finish;
 * TP_NAIVE creates the thread here (and joins threads of jobs already ended),
 * TP_SHARED_QUEUE only queues the job (and restarts workers that could not be
 * replaced earlier).  arg is passed through untouched; the pool never frees
 * it.
 * Errors (the job will not run): TP_EINVAL (p or fn NULL), TP_ESHUTDOWN,
 * TP_ENOMEM, TP_EAGAIN (TP_NAIVE: no thread for the job; TP_SHARED_QUEUE:
 * the pool has no live worker and none could be created).
 */
int tp_spawn(struct tp_pool *p, void (*fn)(void *), void *arg);

/*
 * The pool's live threads right now.  TP_SHARED_QUEUE: workers (N, unless
 * a replacement could not be created yet).  TP_NAIVE: threads whose job has
 * not ended.  A snapshot: it may be stale once returned.  p NULL: 0.
 */
unsigned tp_pool_threads(const struct tp_pool *p);

/*
 * Stop accepting jobs (tp_spawn() fails with TP_ESHUTDOWN from now on), run
 * every job still queued, wait for every running job to end, join every
 * thread and free the pool.  Blocks for as long as the slowest job runs:
 * callers with long-lived jobs must first tell them to return.  p NULL: does
 * nothing.  Must not be called from one of p's own threads (aborts).
 */
void tp_pool_shutdown(struct tp_pool *p);

/* A static English description of a tp_error code (never NULL). */
const char *tp_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif /* KVS_TP_H */
