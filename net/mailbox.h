/*
 * mailbox.h - a worker's mailbox: how other threads hand it work.  The
 * acceptor posts new connections, the engine's writer posts connections
 * whose write batch completed, the main thread posts the stop request;
 * each post from another thread rings the worker's eventfd (a completion
 * the worker posts itself, having run the round, sets self_done instead),
 * and the worker takes everything at once.  mailbox.c implements it; the fields are
 * struct net_worker's hand/done/stop, guarded by its mutex `mu`, a leaf
 * lock held for pointer updates only.
 */
#ifndef KVS_NET_MAILBOX_H
#define KVS_NET_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "server_int.h"

/* What the worker took from its mailbox. */
struct net_mail {
	struct net_handoff *hand;  /* new connections (free() the array) */
	size_t nhand;
	struct net_conn *done;     /* completed batches, linked by done_next */
	bool stop;                 /* the server is stopping */
};

/* Acceptor: hand the connection h to w.  Returns 0, or -1 if out of memory
 * (nothing posted; h->fd is still the caller's). */
int net_mailbox_post_conn(struct net_worker *w, const struct net_handoff *h);

/* The engine's writer (its thread, or c's worker that ran the round),
 * through the batch's completion hook: c's
 * batch has its result; queue c for its worker.  The batch's results must
 * be stored before: the mutex orders them before the worker's reads. */
void net_mailbox_post_done(struct net_conn *c);

/* Main thread: ask w to stop. */
void net_mailbox_post_stop(struct net_worker *w);

/* w's worker: take everything posted since the last call; rang: the
 * doorbell rang (epoll said so), silence it. */
void net_mailbox_take(struct net_worker *w, struct net_mail *m, bool rang);

#endif /* KVS_NET_MAILBOX_H */
