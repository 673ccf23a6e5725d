/*
 * cmd_multi.h - transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, and
 * the queue of commands between MULTI and EXEC.  cmd_multi.c implements
 * them; dispatch.c queues the commands (net_multi_queue) and marks a
 * transaction that must abort (net_multi_flag).  Worker thread only.
 *
 * EXEC sends the queued commands to the engine as ONE batch submitted with
 * KVS_BATCH_ATOMIC, after one update op per WATCHed key that aborts the
 * whole batch if the key changed (its version, or whether it is present:
 * a key that expired since WATCH counts as changed).  Key commands join it
 * as update ops (their callbacks build their replies on the writer thread,
 * seeing the earlier queued writes) or as plain write ops; other commands
 * (PING, INFO, DBSIZE...) run on the worker at EXEC and their replies take
 * their place in the array (batch.c keeps them in order).
 */
#ifndef KVS_NET_CMD_MULTI_H
#define KVS_NET_CMD_MULTI_H

#include <stdbool.h>

#include "commands.h"

/* Is c between MULTI and EXEC/DISCARD (its commands are queued)? */
static inline bool net_multi_active(const struct net_conn *c)
{
	return c->in_multi;
}

/* Queue cmd (its arguments copied: the input buffer moves on) to run
 * with fn at EXEC; idx and name are its table row, for INFO.  Replies
 * +QUEUED, or an error that also makes EXEC abort. */
void net_multi_queue(struct net_conn *c, const struct net_resp_cmd *cmd,
		     net_cmd_fn *fn, unsigned idx, const char *name);

/* A command was refused while queueing (unknown, arity, NOAUTH): EXEC
 * will answer EXECABORT. */
void net_multi_flag(struct net_conn *c);

/* EXEC was refused before it ran (arity, NOAUTH): as Redis's
 * rejectCommand(), the transaction is discarded with its watches, in MULTI
 * or not (dispatch.c then answers -EXECABORT with the reason). */
void net_multi_abort(struct net_conn *c);

/* Release c's transaction state (conn.c, when c is freed). */
void net_multi_free(struct net_conn *c);

/*
 * The key commands' update forms, from the families that own them: add cmd
 * to c's batch as update ops whose callbacks build its reply (or reply its
 * error at once); false if cmd is not one of the family's.
 *   net_str_as_update   cmd_string.c (the string commands)
 *   net_keys_as_update  cmd_keys.c (the keyspace commands, and GET, SET,
 *                       DEL, INCR, MGET, EXISTS, STRLEN, MSET, SETNX)
 */
bool net_str_as_update(struct net_conn *c, const struct net_resp_cmd *cmd);
bool net_keys_as_update(struct net_conn *c, const struct net_resp_cmd *cmd);

net_cmd_fn net_cmd_multi, net_cmd_exec, net_cmd_discard, net_cmd_watch,
	net_cmd_unwatch;

#endif /* KVS_NET_CMD_MULTI_H */
