/*
 * cmd_keys.h - the key commands as parts of one atomic batch, for
 * transactions (MULTI/EXEC).  cmd_keys.c implements it.
 */
#ifndef KVS_NET_CMD_KEYS_H
#define KVS_NET_CMD_KEYS_H

#include <stdbool.h>

#include "server_int.h"

/*
 * Add cmd to c's open write batch as update ops (KVS_OP_UPDATE; FLUSHDB
 * and FLUSHALL as one KVS_OP_FLUSH), if it is one of the key commands:
 * GET MGET EXISTS STRLEN TYPE TOUCH TTL PTTL EXPIRETIME PEXPIRETIME SET
 * SETNX SETEX PSETEX MSET DEL UNLINK INCR DECR INCRBY DECRBY GETDEL GETEX
 * EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST RENAME RENAMENX COPY FLUSHDB
 * FLUSHALL TIME.  Returns false (and does nothing) for any other command,
 * KEYS, RANDOMKEY, SCAN and DBSIZE included.
 *
 * True: the command is exactly one NET_W_UPDATE command of the batch
 * (net_batch_add_upd), whatever happens, and its reply - the one it would
 * get alone, errors of arity and arguments included - is built when the
 * batch runs, from the keys' states as the batch's earlier ops leave them.
 * An argument error costs one op on a placeholder key that is never
 * written.  The command's arguments are copied: cmd may be released once
 * this returns.  Worker thread (c's).
 */
bool net_keys_as_update(struct net_conn *c, const struct net_resp_cmd *cmd);

#endif /* KVS_NET_CMD_KEYS_H */
