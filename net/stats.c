/* stats.c - INFO's per-worker counters: commands (calls, time, refusals,
 * failures), error replies by kind, and their sums over the workers less
 * CONFIG RESETSTAT's baseline.  Contracts in stats.h.  The counting
 * functions run on the worker that owns the counters; the sums on any
 * worker (INFO). */
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static void name_once(struct net_cmdstat *st, const char *name)
{
	if (!atomic_load_explicit(&st->name, memory_order_relaxed))
		atomic_store_explicit(&st->name, name, memory_order_relaxed);
}

void net_stats_call(struct net_worker *w, unsigned idx, const char *name,
		    uint64_t usec, bool failed)
{
	struct net_cmdstat *st;

	if (idx >= NET_MAX_COMMANDS)
		return;
	st = &w->stats.cmd[idx];
	name_once(st, name);
	net_stat_add(&st->calls, 1);
	net_stat_add(&st->usec, usec);
	if (failed)
		net_stat_add(&st->failed, 1);
}

void net_stats_rejected(struct net_worker *w, unsigned idx, const char *name)
{
	if (idx >= NET_MAX_COMMANDS)
		return;
	name_once(&w->stats.cmd[idx], name);
	net_stat_add(&w->stats.cmd[idx].rejected, 1);
}

void net_stats_error(struct net_worker *w, const char *reply, size_t len)
{
	struct net_wstats *st = &w->stats;
	size_t n = 0, nerr;

	net_stat_add(&st->errors, 1);
	/* Its kind: the first word after '-', as Redis's errorstats. */
	if (len && reply[0] == '-') {
		reply++;
		len--;
	}
	while (n < len && n < NET_ERRNAME - 1 && reply[n] != ' ' &&
	       reply[n] != '\r')
		n++;
	if (n == 0)
		return;
	nerr = atomic_load_explicit(&st->nerr, memory_order_relaxed);
	for (size_t i = 0; i < nerr; i++) {
		if (strlen(st->err[i].name) == n &&
		    memcmp(st->err[i].name, reply, n) == 0) {
			net_stat_add(&st->err[i].count, 1);
			return;
		}
	}
	if (nerr == NET_ERRSTATS)
		return; /* a client inventing kinds gets no more rows */
	memcpy(st->err[nerr].name, reply, n);
	st->err[nerr].name[n] = '\0';
	atomic_store_explicit(&st->err[nerr].count, 1, memory_order_relaxed);
	/* The name is whole before a reader can see the row. */
	atomic_store_explicit(&st->nerr, nerr + 1, memory_order_release);
}

static void sum_raw(struct net_server *s, struct net_stats_sum *out)
{
	memset(out, 0, sizeof *out);
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct net_wstats *st = &s->workers[i].stats;
		size_t nerr = atomic_load_explicit(&st->nerr,
						   memory_order_acquire);

		out->errors += net_stat_get(&st->errors);
		out->hits += net_stat_get(&st->hits);
		out->misses += net_stat_get(&st->misses);
		for (size_t k = 0; k < NET_MAX_COMMANDS; k++) {
			struct net_cmdstat *cs = &st->cmd[k];
			const char *name = atomic_load_explicit(
				&cs->name, memory_order_relaxed);
			if (!name)
				continue;
			out->cmd[k].name = name;
			out->cmd[k].calls += net_stat_get(&cs->calls);
			out->cmd[k].usec += net_stat_get(&cs->usec);
			out->cmd[k].rejected += net_stat_get(&cs->rejected);
			out->cmd[k].failed += net_stat_get(&cs->failed);
			out->cmds += net_stat_get(&cs->calls);
		}
		for (size_t e = 0; e < nerr; e++) {
			size_t j;
			for (j = 0; j < out->nerr; j++)
				if (strcmp(out->err[j].name,
					   st->err[e].name) == 0)
					break;
			if (j == out->nerr) {
				if (out->nerr == NET_ERRSTATS)
					continue;
				memcpy(out->err[j].name, st->err[e].name,
				       NET_ERRNAME);
				out->nerr++;
			}
			out->err[j].count += net_stat_get(&st->err[e].count);
		}
	}
}

static uint64_t less(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

void net_stats_sum(struct net_server *s, struct net_stats_sum *out)
{
	const struct net_stats_sum *base = s->stats_base;

	sum_raw(s, out);
	if (!base)
		return;
	out->errors = less(out->errors, base->errors);
	out->hits = less(out->hits, base->hits);
	out->misses = less(out->misses, base->misses);
	out->cmds = less(out->cmds, base->cmds);
	for (size_t k = 0; k < NET_MAX_COMMANDS; k++) {
		out->cmd[k].calls = less(out->cmd[k].calls, base->cmd[k].calls);
		out->cmd[k].usec = less(out->cmd[k].usec, base->cmd[k].usec);
		out->cmd[k].rejected = less(out->cmd[k].rejected,
					    base->cmd[k].rejected);
		out->cmd[k].failed = less(out->cmd[k].failed,
					  base->cmd[k].failed);
	}
	for (size_t j = 0; j < out->nerr; j++)
		for (size_t b = 0; b < base->nerr; b++)
			if (strcmp(out->err[j].name, base->err[b].name) == 0)
				out->err[j].count = less(out->err[j].count,
							 base->err[b].count);
}

void net_stats_reset(struct net_server *s)
{
	struct net_stats_sum *base = s->stats_base;

	if (!base && !(base = malloc(sizeof *base)))
		return;
	sum_raw(s, base);
	s->stats_base = base;
}
