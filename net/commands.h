/*
 * commands.h - kvs-server's commands: the handlers of each family (for the
 * table in dispatch.c), the argument helpers they share, and the two calls
 * the connection code makes (net_cmd_execute, net_cmd_is_write).  Every
 * function runs on the connection's worker.  docs/PROTOCOL.md lists the
 * commands and their replies.
 *
 *   cmd_conn.c    PING ECHO QUIT SELECT AUTH HELLO CLIENT
 *   cmd_server.c  INFO DBSIZE
 *   cmd_save.c    BGSAVE SAVE LASTSAVE
 *   cmd_config.c  CONFIG
 *   cmd_multi.c   MULTI EXEC DISCARD WATCH UNWATCH (cmd_multi.h)
 *   cmd_read.c    GET MGET EXISTS STRLEN SCAN
 *   cmd_write.c   SET SETNX SETEX PSETEX MSET DEL UNLINK INCR DECR INCRBY
 *                 DECRBY GETDEL
 *   cmd_expire.c  EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL EXPIRETIME
 *                 PEXPIRETIME PERSIST GETEX TIME
 *   cmd_keys.c    KEYS TYPE TOUCH RENAME RENAMENX COPY RANDOMKEY FLUSHDB
 *                 FLUSHALL (and cmd_keys.h: key commands in transactions)
 *   cmd_string.c  APPEND GETRANGE SUBSTR SETRANGE GETSET MSETNX INCRBYFLOAT
 *                 LCS (str_run.c runs them; cmd_string.h: MULTI)
 *   cmd_bits.c    SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO
 *   dispatch.c    the table, COMMAND, lookup, arity and AUTH checks
 */
#ifndef KVS_NET_COMMANDS_H
#define KVS_NET_COMMANDS_H

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "server_int.h"

/* A command's handler: argc and arity are checked before it runs.  It
 * appends its reply (reply.h), adds a write to c's batch (batch.h), or
 * makes c CLOSING. */
typedef void net_cmd_fn(struct net_conn *c, const struct net_resp_cmd *cmd);

/* Run one parsed command on c (ACTIVE): look it up, check its arity and
 * AUTH, run its handler. */
void net_cmd_execute(struct net_conn *c, const struct net_resp_cmd *cmd);

/* Is the command named name[0..len) a write (may it join a batch)? */
bool net_cmd_is_write(const char *name, size_t len);

/* Is the command named name[0..len) a read of the keys it names (flag
 * "readonly" with key positions: GET, MGET, EXISTS, TTL ...; not DBSIZE,
 * KEYS, SCAN, RANDOMKEY, which read the whole store)? */
bool net_cmd_is_keyed_read(const char *name, size_t len);

/* For such a read with a valid argc: its keys are argv[*first], then every
 * *step-th argument up to argv[*last].  false for any other command, or a
 * wrong number of arguments. */
bool net_cmd_read_keys(const struct net_resp_cmd *cmd, size_t *first,
		       size_t *last, size_t *step);

/* ---- arguments ------------------------------------------------------------ */

/* Argument i equals s, ignoring ASCII case. */
static inline bool net_arg_is(const struct net_resp_cmd *cmd, size_t i,
			      const char *s)
{
	size_t n = strlen(s);

	return cmd->argvlen[i] == n && strncasecmp(cmd->argv[i], s, n) == 0;
}

/* Argument i as an integer by Redis's rule (kvs_parse_int64).  Returns 0,
 * or -1 if it is not one. */
static inline int net_arg_int(const struct net_resp_cmd *cmd, size_t i,
			      long long *out)
{
	int64_t v;

	if (!kvs_parse_int64(cmd->argv[i], cmd->argvlen[i], &v))
		return -1;
	*out = v;
	return 0;
}

/* How much of argument i an error message shows ("'%.*s'"): 128 bytes at
 * most, as Redis. */
static inline int net_arg_shown(const struct net_resp_cmd *cmd, size_t i)
{
	return (int)(cmd->argvlen[i] > 128 ? 128 : cmd->argvlen[i]);
}

/* ---- the handlers --------------------------------------------------------- */

/* cmd_conn.c */
net_cmd_fn net_cmd_ping, net_cmd_echo, net_cmd_quit, net_cmd_select,
	net_cmd_auth, net_cmd_hello, net_cmd_client;
/* cmd_save.c */
net_cmd_fn net_cmd_bgsave, net_cmd_save, net_cmd_lastsave;
/* cmd_server.c, cmd_config.c */
net_cmd_fn net_cmd_config, net_cmd_info, net_cmd_dbsize;
/* cmd_read.c */
net_cmd_fn net_cmd_get, net_cmd_mget, net_cmd_exists, net_cmd_strlen,
	net_cmd_scan;
/* cmd_write.c */
net_cmd_fn net_cmd_set, net_cmd_setnx, net_cmd_mset, net_cmd_del,
	net_cmd_incr, net_cmd_decr, net_cmd_incrby, net_cmd_decrby,
	net_cmd_setex, net_cmd_psetex, net_cmd_getdel;
/* cmd_expire.c */
net_cmd_fn net_cmd_expire, net_cmd_pexpire, net_cmd_expireat,
	net_cmd_pexpireat, net_cmd_ttl, net_cmd_pttl, net_cmd_expiretime,
	net_cmd_pexpiretime, net_cmd_persist, net_cmd_getex, net_cmd_time;
/* cmd_keys.c */
net_cmd_fn net_cmd_keys, net_cmd_type, net_cmd_touch, net_cmd_rename,
	net_cmd_renamenx, net_cmd_copy, net_cmd_randomkey, net_cmd_flushall;
/* cmd_string.c */
net_cmd_fn net_cmd_append, net_cmd_getrange, net_cmd_substr,
	net_cmd_setrange, net_cmd_getset, net_cmd_msetnx, net_cmd_incrbyfloat,
	net_cmd_lcs;
/* cmd_bits.c */
net_cmd_fn net_cmd_setbit, net_cmd_getbit, net_cmd_bitcount, net_cmd_bitpos,
	net_cmd_bitop, net_cmd_bitfield, net_cmd_bitfield_ro;

#endif /* KVS_NET_COMMANDS_H */
