/* tp.c - the public entry points of threadpool/: argument checks and
 * dispatch to the pool kind (tp_queue.c, tp_naive.c). */
#include "tp_int.h"

int tp_pool_new(enum tp_kind kind, unsigned nthreads, const char *name,
		struct tp_pool **out)
{
	if (out == NULL || nthreads == 0 || nthreads > TP_MAX_THREADS)
		return TP_EINVAL;
	if (name == NULL || name[0] == '\0')
		name = "tp";
	switch (kind) {
	case TP_NAIVE:
		return tp__naive_new(nthreads, name, out);
	case TP_SHARED_QUEUE:
		return tp__queue_new(nthreads, name, out);
	}
	return TP_EINVAL;
}

int tp_spawn(struct tp_pool *p, void (*fn)(void *), void *arg)
{
	if (p == NULL || fn == NULL)
		return TP_EINVAL;
	return p->ops->spawn(p, fn, arg);
}

unsigned tp_pool_threads(const struct tp_pool *p)
{
	return p == NULL ? 0 : p->ops->threads(p);
}

void tp_pool_shutdown(struct tp_pool *p)
{
	if (p == NULL)
		return;
	/* Joining our own thread would never return. */
	if (tp__in_pool(p))
		KVS_DIE("tp_pool_shutdown called from a thread of its own pool",
			0);
	p->ops->shutdown(p);
}

const char *tp_strerror(int code)
{
	switch (code) {
	case TP_OK:
		return "success";
	case TP_EINVAL:
		return "invalid argument";
	case TP_ENOMEM:
		return "out of memory";
	case TP_EAGAIN:
		return "the system refused to create a thread";
	case TP_ESHUTDOWN:
		return "the pool is shutting down";
	}
	return "unknown thread pool error";
}
