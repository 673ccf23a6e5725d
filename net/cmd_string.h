/*
 * cmd_string.h - the string and bit commands (APPEND, GETRANGE, SUBSTR,
 * SETRANGE, GETSET, GETDEL, MSETNX, INCRBYFLOAT, LCS in cmd_string.c;
 * SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO in
 * cmd_bits.c) as MULTI/EXEC needs them.  Their handlers for the command
 * table are in commands.h.  Worker thread.
 */
#ifndef KVS_NET_CMD_STRING_H
#define KVS_NET_CMD_STRING_H

#include <stdbool.h>

#include "server_int.h"

/*
 * If cmd is one of the commands above, add it to c's open batch as update
 * ops (KVS_OP_UPDATE), read or write, and return true; else return false
 * and do nothing.  Its reply is built by the ops' callbacks on the writer
 * thread, seeing every earlier op of the batch (so a read inside EXEC sees
 * the writes queued before it), and comes when the batch is answered.
 * Replied at once instead, with nothing added (the replies are held behind
 * the open batch, in order, as every command's): a wrong argument count
 * (arity is normally checked before, by dispatch.c), an argument error
 * (Redis's runtime errors: "ERR syntax error", "ERR value is not an integer
 * or out of range", ...), a key the engine refuses for a write, out of
 * memory; and the whole reply of a command none of whose keys the engine
 * could hold (they are all absent).  The ops point into cmd's argument
 * bytes, which must stay valid and unchanged until the batch is answered;
 * cmd's arrays need not.  The callbacks never abort the batch.
 */
bool net_str_as_update(struct net_conn *c, const struct net_resp_cmd *cmd);

#endif /* KVS_NET_CMD_STRING_H */
