/* cmd_write.c - the write commands: SET, SETNX, MSET, DEL/UNLINK, INCR,
 * DECR, INCRBY, DECRBY.  Each checks its arguments and adds its ops to the
 * connection's write batch (batch.c), which submits them and answers them.
 * Run by the connection's worker. */
#include <stdint.h>
#include <string.h>

#include "batch.h"
#include "commands.h"
#include "reply.h"


/* A key a write may use: 0, or -1 after replying with the error kvs_submit
 * would have failed the whole batch with. */
static int check_key(struct net_conn *c, const char *key, size_t klen)
{
	int rc = kvs_check_key(c->w->srv->db, key, klen);

	if (rc != KVS_OK) {
		net_reply_kvs_error_here(c, rc, NET_STORE_WRITE);
		return -1;
	}
	return 0;
}

static int check_value(struct net_conn *c, size_t vlen)
{
	if (vlen > KVS_MAX_VALUE) {
		net_reply_kvs_error(c, KVS_ETOOBIG, NULL, NET_STORE_WRITE);
		return -1;
	}
	return 0;
}

/* Add a SET of key to value with flags as one command of kind. */
static void add_set(struct net_conn *c, const struct net_resp_cmd *cmd,
		    unsigned flags, enum net_write_kind kind)
{
	struct kvs_op *op;

	if (check_key(c, cmd->argv[1], cmd->argvlen[1]) != 0 ||
	    check_value(c, cmd->argvlen[2]) != 0 ||
	    (op = net_batch_ops(c, 1)) == NULL)
		return;
	op->type = KVS_OP_SET;
	op->key = cmd->argv[1];
	op->klen = cmd->argvlen[1];
	op->val = cmd->argv[2];
	op->vlen = cmd->argvlen[2];
	op->flags = flags;
	net_batch_add(c, kind, 1);
}

void net_cmd_set(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	int nx = 0, xx = 0, get = 0, expire = 0, keepttl = 0;

	for (size_t i = 3; i < cmd->argc; i++) {
		if (net_arg_is(cmd, i, "NX") && !xx) {
			nx = 1;
		} else if (net_arg_is(cmd, i, "XX") && !nx) {
			xx = 1;
		} else if (net_arg_is(cmd, i, "GET")) {
			get = 1;
		} else if (net_arg_is(cmd, i, "KEEPTTL") && !expire) {
			keepttl = 1;
		} else if ((net_arg_is(cmd, i, "EX") ||
			    net_arg_is(cmd, i, "PX") ||
			    net_arg_is(cmd, i, "EXAT") ||
			    net_arg_is(cmd, i, "PXAT")) &&
			   !expire && !keepttl && i + 1 < cmd->argc) {
			expire = 1;
			i++;
		} else {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
	}
	if (expire) {
		net_reply_error(c, "ERR expiry is not supported");
		return;
	}
	if (get) {
		net_reply_error(c, "ERR SET with GET is not supported");
		return;
	}
	/* KEEPTTL: keys have no time to live, so there is nothing to keep. */
	add_set(c, cmd, nx ? KVS_SET_NX : xx ? KVS_SET_XX : 0, NET_W_SET);
}

void net_cmd_setnx(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	add_set(c, cmd, KVS_SET_NX, NET_W_SETNX);
}

void net_cmd_mset(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t n = (cmd->argc - 1) / 2;
	struct kvs_op *op;

	if ((cmd->argc - 1) % 2) {
		net_reply_arity(c, "mset");
		return;
	}
	/* All or nothing, as alone: one bad pair refuses the whole MSET. */
	for (size_t i = 0; i < n; i++)
		if (check_key(c, cmd->argv[1 + 2 * i],
			      cmd->argvlen[1 + 2 * i]) != 0 ||
		    check_value(c, cmd->argvlen[2 + 2 * i]) != 0)
			return;
	if ((op = net_batch_ops(c, n)) == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		op[i].type = KVS_OP_SET;
		op[i].key = cmd->argv[1 + 2 * i];
		op[i].klen = cmd->argvlen[1 + 2 * i];
		op[i].val = cmd->argv[2 + 2 * i];
		op[i].vlen = cmd->argvlen[2 + 2 * i];
	}
	net_batch_add(c, NET_W_MSET, n);
}

void net_cmd_del(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct kvs *db = c->w->srv->db;
	size_t n = 0;
	struct kvs_op *op = net_batch_ops(c, cmd->argc - 1);

	if (!op)
		return;
	/* A key the engine cannot hold (empty, over its limit: 511 bytes
	 * for lmdb) is absent: not part of the batch. */
	for (size_t i = 1; i < cmd->argc; i++) {
		if (kvs_check_key(db, cmd->argv[i], cmd->argvlen[i]) != KVS_OK)
			continue;
		op[n].type = KVS_OP_REMOVE;
		op[n].key = cmd->argv[i];
		op[n].klen = cmd->argvlen[i];
		n++;
	}
	if (n == 0)
		net_reply_int(c, 0);
	else
		net_batch_add(c, NET_W_DEL, n);
}

static void incr(struct net_conn *c, const char *key, size_t klen,
		 long long delta)
{
	struct kvs_op *op;

	if (check_key(c, key, klen) != 0 || (op = net_batch_ops(c, 1)) == NULL)
		return;
	op->type = KVS_OP_INCR;
	op->key = key;
	op->klen = klen;
	op->delta = delta;
	net_batch_add(c, NET_W_INCR, 1);
}

void net_cmd_incr(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	incr(c, cmd->argv[1], cmd->argvlen[1], 1);
}

void net_cmd_decr(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	incr(c, cmd->argv[1], cmd->argvlen[1], -1);
}

void net_cmd_incrby(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long d;

	if (net_arg_int(cmd, 2, &d) != 0)
		net_reply_error(c, NET_ERR_NOTINT);
	else
		incr(c, cmd->argv[1], cmd->argvlen[1], d);
}

void net_cmd_decrby(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long d;

	if (net_arg_int(cmd, 2, &d) != 0)
		net_reply_error(c, NET_ERR_NOTINT);
	else if (d == INT64_MIN)
		net_reply_error(c, "ERR decrement would overflow");
	else
		incr(c, cmd->argv[1], cmd->argvlen[1], -d);
}
