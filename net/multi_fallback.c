/* multi_fallback.c - TEMPORARY, branch `multi` only: delete when the
 * "strings" and "keys" branches are merged.  Weak stand-ins for
 * net_str_as_update() (none of its commands) and net_keys_as_update()
 * (the reads GET, MGET, EXISTS, STRLEN as update ops, so that inside EXEC
 * they see the transaction's earlier writes; the writes SET, DEL, INCR...
 * join EXEC's batch through their own handlers as plain ops, which the
 * engine applies in order).  Run by the connection's worker; the
 * callbacks by the engine's writer. */
#include <stdlib.h>

#include "batch.h"
#include "cmd_multi.h"
#include "reply.h"

enum rd_kind { RD_GET, RD_MGET, RD_EXISTS, RD_STRLEN };

struct rd_state {
	struct net_upd base;
	enum rd_kind kind;
	size_t n, seen;   /* keys, keys looked at so far */
	long long count;  /* EXISTS */
	bool oom;
};

/* On the writer: one key of the command, in order. */
static int rd_cb(void *uctx, struct kvs_update *u)
{
	struct rd_state *x = uctx;
	struct net_buf *b = &x->base.reply;
	int rc = NET_RESP_OK;

	u->action = KVS_UPD_KEEP;
	if (x->oom)
		return KVS_OK;
	switch (x->kind) {
	case RD_MGET:
		if (x->seen == 0)
			rc = net_resp_put_array(b, x->n);
		/* fall through */
	case RD_GET:
		if (rc == NET_RESP_OK)
			rc = u->found ? net_resp_put_bulk(b, u->val, u->vlen)
				      : net_resp_put_null(b);
		break;
	case RD_EXISTS:
		x->count += u->found;
		if (x->seen + 1 == x->n)
			rc = net_resp_put_int(b, x->count);
		break;
	case RD_STRLEN:
		rc = net_resp_put_int(b, u->found ? (long long)u->vlen : 0);
		break;
	}
	x->seen++;
	if (rc != NET_RESP_OK) {
		/* No half reply: batch.c answers an empty one with OOM. */
		x->oom = true;
		b->len = 0;
	}
	return KVS_OK;
}

__attribute__((weak)) bool net_keys_as_update(struct net_conn *c,
					      const struct net_resp_cmd *cmd)
{
	struct kvs *db = c->w->srv->db;
	enum rd_kind kind;
	struct rd_state *x;
	struct kvs_op *ops;
	size_t n = cmd->argc - 1;

	if (net_arg_is(cmd, 0, "GET") && cmd->argc == 2)
		kind = RD_GET;
	else if (net_arg_is(cmd, 0, "MGET") && cmd->argc >= 2)
		kind = RD_MGET;
	else if (net_arg_is(cmd, 0, "EXISTS") && cmd->argc >= 2)
		kind = RD_EXISTS;
	else if (net_arg_is(cmd, 0, "STRLEN") && cmd->argc == 2)
		kind = RD_STRLEN;
	else
		return false;
	/* A key the engine cannot hold would fail the whole batch: such a
	 * command reads outside it (the key is absent either way). */
	for (size_t i = 1; i < cmd->argc; i++)
		if (kvs_check_key(db, cmd->argv[i], cmd->argvlen[i]) != KVS_OK)
			return false;
	if (!(x = (struct rd_state *)net_batch_upd(c, sizeof *x)))
		return true;
	if (!(ops = net_batch_ops(c, n)))
		return true;
	x->kind = kind;
	x->n = n;
	for (size_t i = 0; i < n; i++) {
		ops[i].type = KVS_OP_UPDATE;
		ops[i].key = cmd->argv[i + 1];
		ops[i].klen = cmd->argvlen[i + 1];
		ops[i].update = rd_cb;
		ops[i].uctx = x;
	}
	net_batch_add_upd(c, &x->base, n);
	return true;
}

__attribute__((weak)) bool net_str_as_update(struct net_conn *c,
					     const struct net_resp_cmd *cmd)
{
	(void)c;
	(void)cmd;
	return false;
}
