/*
 * worker.h - a worker's event loop.  worker.c implements it; server.c
 * starts one per worker as a job of the TP_SHARED_QUEUE pool.
 */
#ifndef KVS_NET_WORKER_H
#define KVS_NET_WORKER_H

/* The loop of worker `arg` (a struct net_worker *): epoll, the mailbox,
 * one turn per ready connection; after a stop request, the drain.  Returns
 * once stopped with no connection left. */
void net_worker_run(void *arg);

#endif /* KVS_NET_WORKER_H */
