/*
 * stats.h - the figures INFO's commandstats, errorstats and stats sections
 * show: per-worker counters (struct net_wstats in server_int.h), each
 * written by its own worker only and read by whichever worker runs INFO,
 * which sums them.  No lock and no shared cache line on the command path:
 * the owner does a relaxed load and store, readers relaxed loads.
 * CONFIG RESETSTAT does not write other workers' counters: it records the
 * sums as a baseline (server's stats_mu) that INFO subtracts.
 * stats.c implements it; it calls nothing above util.c.
 */
#ifndef KVS_NET_STATS_H
#define KVS_NET_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server_int.h"

/* The owner's increment: one writer, so a load and a store suffice (no
 * locked instruction); readers on other threads see a whole value. */
static inline void net_stat_add(_Atomic uint64_t *x, uint64_t n)
{
	atomic_store_explicit(x, atomic_load_explicit(x, memory_order_relaxed)
			      + n, memory_order_relaxed);
}

static inline uint64_t net_stat_get(_Atomic uint64_t *x)
{
	return atomic_load_explicit(x, memory_order_relaxed);
}

/* Command idx (its row of the command table, named name: a static
 * string) ran for usec microseconds on w; failed: it replied an error. */
void net_stats_call(struct net_worker *w, unsigned idx, const char *name,
		    uint64_t usec, bool failed);

/* Command idx was refused before it ran (arity, NOAUTH). */
void net_stats_rejected(struct net_worker *w, unsigned idx, const char *name);

/* An error reply went out: reply[0..len) is its RESP ("-ERR ...\r\n");
 * counted in total_error_replies and under its first word. */
void net_stats_error(struct net_worker *w, const char *reply, size_t len);

/* The sums over every worker, less the RESETSTAT baseline.  Any worker,
 * with s->info_mu held (it guards the baseline); so does reset. */
struct net_stats_sum {
	uint64_t errors, hits, misses, cmds;
	struct { const char *name; uint64_t calls, usec, rejected, failed; }
		cmd[NET_MAX_COMMANDS];
	struct { char name[NET_ERRNAME]; uint64_t count; } err[NET_ERRSTATS];
	size_t nerr;
};
void net_stats_sum(struct net_server *s, struct net_stats_sum *out);

/* A key lookup of GET found its key (hit) or not. */
static inline void net_stats_keyspace(struct net_worker *w, bool hit)
{
	net_stat_add(hit ? &w->stats.hits : &w->stats.misses, 1);
}

/* CONFIG RESETSTAT: from now on the sums start at zero. */
void net_stats_reset(struct net_server *s);

#endif /* KVS_NET_STATS_H */
