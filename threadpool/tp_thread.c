/* tp_thread.c - what both pool kinds use to set up, start, name and run
 * their threads; below tp_queue.c and tp_naive.c, which tp.c dispatches
 * to. */
#include "tp_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

/* The pool whose thread this is; set once by tp__thread_init. */
static _Thread_local const struct tp_pool *current_pool;

bool tp__in_pool(const struct tp_pool *p)
{
	return current_pool == p;
}

void tp__pool_init(struct tp_pool *p, const struct tp__ops *ops,
		   const char *name)
{
	size_t len = strnlen(name, sizeof p->name - 1);

	p->ops = ops;
	memcpy(p->name, name, len);
	p->name[len] = '\0';
}

int tp__thread_start(pthread_t *tid, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	/* A new thread inherits its creator's mask: block every asynchronous
	 * signal just for the pthread_create call.  The fault signals stay
	 * open: a blocked SIGBUS or SIGSEGV raised by the thread's own access
	 * kills the process whatever handler is installed (the engine turns
	 * a SIGBUS on a truncated segment's mapping into a read error). */
	sigfillset(&all);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	KVS_CHECK(pthread_sigmask(SIG_SETMASK, &all, &old));
	rc = pthread_create(tid, NULL, fn, arg);
	KVS_CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL));
	if (rc == EINVAL || rc == EPERM)
		KVS_DIE("pthread_create", rc);
	return rc == 0 ? TP_OK : TP_EAGAIN;
}

void tp__thread_init(const struct tp_pool *p, unsigned long idx)
{
	char buf[TP__NAME_MAX];
	char num[24];
	size_t nlen = (size_t)snprintf(num, sizeof num, "-%lu", idx);
	size_t plen = strlen(p->name);

	/* Keep the number whole and shorten the prefix to make it fit. */
	if (nlen > sizeof buf - 1)
		nlen = sizeof buf - 1;
	if (plen > sizeof buf - 1 - nlen)
		plen = sizeof buf - 1 - nlen;
	memcpy(buf, p->name, plen);
	memcpy(buf + plen, num, nlen);
	buf[plen + nlen] = '\0';
	/* Naming is a debugging aid: failure (e.g. no /proc) is harmless. */
	(void)pthread_setname_np(pthread_self(), buf);
	current_pool = p;
	KVS_CHECK(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL));
}

#if defined(__SANITIZE_ADDRESS__)
/*
 * When a job ends its thread, glibc reaches our cleanup handler by a
 * longjmp from inside its own unwinder, which AddressSanitizer does not
 * see: the shadow of the job's abandoned frames, below the handler, keeps
 * their redzones poisoned, and the sanitizer's own uninstrumented frames
 * placed there next (its noreturn hook checks a local with sigaltstack)
 * are reported as stack overflows.  Clear the shadow below us first.
 */
static void unpoison_abandoned_frames(void)
{
	pthread_attr_t attr;
	void *lo;
	size_t size;
	char here;

	if (pthread_getattr_np(pthread_self(), &attr) != 0)
		return;
	if (pthread_attr_getstack(&attr, &lo, &size) == 0 &&
	    (char *)lo < &here)
		__asan_unpoison_memory_region(lo, (size_t)(&here - (char *)lo));
	KVS_CHECK(pthread_attr_destroy(&attr));
}
#endif

/* What tp__run_job's cleanup handler calls; lives in tp__run_job's frame,
 * which is intact when the handler runs. */
struct ended_call {
	void (*ended)(void *);
	void *ctx;
};

static void job_ended_thread(void *arg)
{
	const struct ended_call *c = arg;

#if defined(__SANITIZE_ADDRESS__)
	unpoison_abandoned_frames();
#endif
	c->ended(c->ctx);
}

void tp__run_job(void (*fn)(void *), void *arg, void (*ended)(void *),
		 void *ctx)
{
	struct ended_call call = { ended, ctx };

	/* The handler runs only if the thread ends inside fn (pop(0) on the
	 * normal path), which is how a job ending its thread is noticed. */
	pthread_cleanup_push(job_ended_thread, &call);
	KVS_CHECK(pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL));
	fn(arg);
	KVS_CHECK(pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL));
	pthread_cleanup_pop(0);
}
