/*
 * acceptor.h - the acceptor thread.  acceptor.c implements it; server.c
 * starts it (pthread_create) and stops it (shutdown() of the listening
 * socket after setting `stopping`).
 */
#ifndef KVS_NET_ACCEPTOR_H
#define KVS_NET_ACCEPTOR_H

/* The thread's body; arg is the struct net_server *.  Returns NULL once
 * `stopping` is set and accept() returned. */
void *net_acceptor_run(void *arg);

#endif /* KVS_NET_ACCEPTOR_H */
