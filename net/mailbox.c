/* mailbox.c - a worker's mailbox: new connections from the acceptor,
 * completed write batches from the engine's writer, the stop request
 * from the main thread; the worker takes them all at once.  Contracts in
 * mailbox.h.  Any thread posts; only the worker takes. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "mailbox.h"

/* Ring w's doorbell.  An eventfd write fails only if the counter would
 * overflow, and then a ring is pending anyway. */
static void ring(struct net_worker *w)
{
	uint64_t one = 1;

	if (write(w->evfd, &one, sizeof one) < 0) {
	}
}

int net_mailbox_post_conn(struct net_worker *w, const struct net_handoff *h)
{
	KVS_CHECK(pthread_mutex_lock(&w->mu));
	if (w->nhand == w->caphand) {
		size_t cap = w->caphand ? w->caphand * 2 : 16;
		struct net_handoff *p = realloc(w->hand, cap * sizeof *p);

		if (!p) {
			KVS_CHECK(pthread_mutex_unlock(&w->mu));
			return -1;
		}
		w->hand = p;
		w->caphand = cap;
	}
	w->hand[w->nhand++] = *h;
	KVS_CHECK(pthread_mutex_unlock(&w->mu));
	ring(w);
	return 0;
}

void net_mailbox_post_done(struct net_conn *c)
{
	struct net_worker *w = c->w;

	c->done_next = NULL;
	KVS_CHECK(pthread_mutex_lock(&w->mu));
	bool was_empty = !w->done_head;
	if (w->done_tail)
		w->done_tail->done_next = c;
	else
		w->done_head = c;
	w->done_tail = c;
	/* Ring only when the list was empty: otherwise a ring is pending
	 * already, and the worker takes the whole list when it answers (one
	 * eventfd write per round, not per connection).  Ring before
	 * unlocking: once the worker can see the completion it may finish,
	 * and the server free w and close the eventfd. */
	/* The worker itself (the engine ran its round on the worker's
	 * thread, kvs_submit_all): it takes the list before it waits. */
	if (pthread_equal(pthread_self(), w->thread))
		w->self_done = 1;
	else if (was_empty)
		ring(w);
	KVS_CHECK(pthread_mutex_unlock(&w->mu));
}

void net_mailbox_post_stop(struct net_worker *w)
{
	KVS_CHECK(pthread_mutex_lock(&w->mu));
	w->stop = 1;
	KVS_CHECK(pthread_mutex_unlock(&w->mu));
	ring(w);
}

void net_mailbox_take(struct net_worker *w, struct net_mail *m, bool rang)
{
	uint64_t v;

	KVS_ASSERT(net_on_worker(w));
	if (rang && read(w->evfd, &v, sizeof v) < 0) {
		/* EAGAIN: a doorbell already answered. */
	}
	KVS_CHECK(pthread_mutex_lock(&w->mu));
	m->hand = w->hand;
	m->nhand = w->nhand;
	w->hand = NULL;
	w->nhand = w->caphand = 0;
	m->done = w->done_head;
	w->done_head = w->done_tail = NULL;
	m->stop = w->stop != 0;
	w->self_done = 0;
	KVS_CHECK(pthread_mutex_unlock(&w->mu));
}
