/*
 * save.h - kvs-server's snapshots (cmd_save.c): BGSAVE, SAVE and LASTSAVE
 * over kvs_snapshot(), and the state INFO persistence reports.
 * docs/SNAPSHOTS.md has the whole story.
 *
 * Threads: the handlers run on a connection's worker; a BGSAVE runs on a
 * thread of its own (one at a time); net_save_status() any thread;
 * net_save_init/stop/free: the thread that starts and stops the server.
 */
#ifndef KVS_NET_SAVE_H
#define KVS_NET_SAVE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct net_server;

/* What INFO persistence shows (a copy taken under the state's lock). */
struct net_save_status {
	bool in_progress;       /* a BGSAVE or SAVE is running */
	bool last_ok;           /* the last one that ended succeeded */
	time_t last_save;       /* end of the last successful one (start-up
				   time until then), as LASTSAVE */
	time_t current_start;   /* while in_progress */
	long long last_bgsave_sec; /* how long the last BGSAVE took; -1 */
	uint64_t saves;         /* successful snapshots since start-up */
	uint64_t writes_at_save; /* the store's writes count when the last
				    successful one began */
	char last_path[4096];   /* its directory ("" if none yet) */
};

/* Set up s's snapshot state; dir: where snapshots go (NULL: "<cfg.dir>/
 * snapshots", or none when the server has no cfg.dir).  0, or -1 (out
 * of memory, logged). */
int net_save_init(struct net_server *s, const char *dir);
/* At stop, after the workers are joined: wait for a BGSAVE still running
 * (logged), so that the store is closed only after it. */
void net_save_stop(struct net_server *s);
void net_save_free(struct net_server *s);
void net_save_status(struct net_server *s, struct net_save_status *out);

#endif /* KVS_NET_SAVE_H */
