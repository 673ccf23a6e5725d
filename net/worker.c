/* worker.c - a worker's event loop (memcached's model: each worker owns its
 * connections for their whole life): epoll events, the mailbox (new
 * connections, completed batches, the stop request), one turn per ready
 * connection, and the drain when the server stops.  Runs on the worker's
 * own thread (a job of the pool, kvs-worker-i). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "batch.h"
#include "conn.h"
#include "mailbox.h"
#include "worker.h"

#define EVENTS_PER_WAIT 256
/* How long shutdown waits for clients to take their last replies. */
#define DRAIN_MS 3000

/* The server is stopping: close new hand-offs from now on, close the
 * active connections once their replies are sent, and wait for the parked
 * ones' completions, DRAIN_MS at most for clients that do not read. */
static void drain_begin(struct net_worker *w)
{
	struct net_conn *c, *next;

	w->draining = 1;
	clock_gettime(CLOCK_MONOTONIC, &w->drain_deadline);
	w->drain_deadline.tv_sec += DRAIN_MS / 1000;
	for (c = w->conns; c; c = next) {
		next = c->next;
		net_conn_shut(c);
	}
}

static int drain_expired(const struct net_worker *w)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > w->drain_deadline.tv_sec ||
	       (now.tv_sec == w->drain_deadline.tv_sec &&
		now.tv_nsec >= w->drain_deadline.tv_nsec);
}

/* Take the mailbox: new connections, completions, the stop request. */
static void mailbox(struct net_worker *w, bool rang)
{
	struct net_mail m;
	struct net_conn *next;

	net_mailbox_take(w, &m, rang);
	for (size_t i = 0; i < m.nhand; i++) {
		if (w->draining || m.stop) {
			close(m.hand[i].fd);
			atomic_fetch_sub_explicit(&w->srv->connected, 1,
						  memory_order_relaxed);
		} else {
			net_conn_new(w, &m.hand[i]);
		}
	}
	free(m.hand);
	for (; m.done; m.done = next) {
		next = m.done->done_next;
		net_conn_batch_done(m.done, w->draining || m.stop);
	}
	if (m.stop && !w->draining)
		drain_begin(w);
}

void net_worker_run(void *arg)
{
	struct net_worker *w = arg;
	struct epoll_event ev[EVENTS_PER_WAIT];

	/* Before any connection is touched: net_on_worker() reads it. */
	w->thread = pthread_self();
	uint64_t next_sweep = 0;
	bool skip_poll = false;
	for (;;) {
		uint64_t idle_s = atomic_load_explicit(&w->srv->timeout_s,
						       memory_order_relaxed);
		/* The writes parked in the last pass go to the engine
		 * together, before the worker can sleep. */
		net_batch_flush(w);
		/* Completions of rounds the engine ran on this thread: no
		 * doorbell rang for them.  Their replies go out in a pass of
		 * their own, without a look at the sockets first: one
		 * epoll_wait a turn, not two (but never two such passes in a
		 * row, or a pipelining client could keep the others from
		 * being polled). */
		bool own = w->self_done;
		if (own)
			mailbox(w, false);
		skip_poll = own && w->ready_head && !skip_poll;
		/* At most a second asleep: CONFIG SET timeout, set on any
		 * worker, is seen within a second without a wake-up. */
		int timeout = w->ready_head ? 0 : w->draining ? 50 : 1000;
		int n = skip_poll ? 0 :
			epoll_wait(w->epfd, ev, EVENTS_PER_WAIT, timeout);
		struct net_conn *c, *last;
		int rang = 0;

		if (n < 0 && errno != EINTR) {
			net_log(NET_LOG_ERROR, "worker %u: epoll_wait: %s",
				w->idx, strerror(errno));
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL)
				rang = 1;
			else
				net_conn_event(ev[i].data.ptr, ev[i].events);
		}
		/* After the connection events: the mailbox may free a
		 * connection whose event is in this batch. */
		if (rang)
			mailbox(w, true);
		/* One turn for each connection that was ready when the pass
		 * began; those that are still ready go to the back. */
		last = w->ready_tail;
		while ((c = w->ready_head) != NULL) {
			int was_last = c == last;

			net_conn_process(c);
			if (was_last)
				break;
		}
		/* CONFIG SET timeout: a look at idle clients each second. */
		if (idle_s && !w->draining) {
			uint64_t now = net_mono_us() / 1000;
			if (now >= next_sweep) {
				next_sweep = now + 1000;
				net_conn_close_idle(w, idle_s * 1000);
			}
		}
		if (!w->draining)
			continue;
		if (drain_expired(w)) {
			/* Clients that did not take their replies in time. */
			struct net_conn *next;

			for (c = w->conns; c; c = next) {
				next = c->next;
				net_conn_drop(c);
			}
		}
		if (w->nconns == 0)
			break;
	}
}
