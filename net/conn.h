/*
 * conn.h - the life of a connection on its worker: created from a hand-off,
 * read, parsed, executed, parked while its write batch is with the engine,
 * answered, flushed, closed and freed.  conn.c implements it; worker.c
 * calls it.  Worker thread only (each function asserts it).
 */
#ifndef KVS_NET_CONN_H
#define KVS_NET_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "server_int.h"

/* Take the connection h over: a new ACTIVE connection in w's epoll set.
 * On failure the socket is closed (logged). */
void net_conn_new(struct net_worker *w, const struct net_handoff *h);

/* epoll reported `events` for c.  c may be freed. */
void net_conn_event(struct net_conn *c, unsigned events);

/* Run c's next buffered commands (one turn: NET_CMDS_PER_WAKEUP at most):
 * for the worker's pass over its ready list.  c may be freed. */
void net_conn_process(struct net_conn *c);

/* c's write batch completed (the worker took c from its mailbox): answer
 * it, then run c's pipelined commands in this turn, or, if `closing` (the
 * server is stopping), send the replies and close.  An ORPHANED c is
 * freed. */
void net_conn_batch_done(struct net_conn *c, bool closing);

/* The server is stopping: an ACTIVE c sends what is queued, then closes;
 * a parked one waits for its completion. */
void net_conn_shut(struct net_conn *c);

/* CONFIG SET timeout: close w's connections that have sent no command
 * for more than timeout_ms (and have nothing in flight or to send). */
void net_conn_close_idle(struct net_worker *w, uint64_t timeout_ms);

/* The stop's grace period is over: free c unless the engine still has its
 * batch (PARKED, ORPHANED: freed when the completion arrives). */
void net_conn_drop(struct net_conn *c);

#endif /* KVS_NET_CONN_H */
