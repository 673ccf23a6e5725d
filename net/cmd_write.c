/* cmd_write.c - the string write commands: SET (every option), SETNX,
 * SETEX, PSETEX, MSET, DEL/UNLINK, INCR, DECR, INCRBY, DECRBY, GETDEL.
 * Each checks its arguments and adds its ops to the connection's write
 * batch (batch.c): plain SET/REMOVE/INCR ops where the engine decides
 * alone, update ops (keyop.h) where the reply needs the old value (SET ...
 * GET, GETDEL) and inside a transaction.  Run by the connection's worker,
 * but wr_step (the engine's writer thread). */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "commands.h"
#include "keyop.h"
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

/* ---- the update form: one state, one step for every command here ---------- */

#define W_GET 8u /* SET ... GET: reply the old value (KVS_SET_* below it) */

enum wr_what { WR_SET, WR_SETNX, WR_MSET, WR_DEL, WR_INCR, WR_GETDEL };

struct wr {
	struct net_kop k;
	enum wr_what what;
	unsigned flags;        /* WR_SET: KVS_SET_NX/XX/KEEPTTL, W_GET */
	int64_t expire_ms;     /* WR_SET: 0 none */
	const char **vals;     /* WR_SET (one), WR_MSET: the values */
	size_t *vlens;
	int64_t delta;         /* WR_INCR */
	long long count;       /* WR_DEL */
	char num[24];          /* WR_INCR: the new value */
};

/* INCR's decision for u, as KVS_OP_INCR makes it: the key keeps its
 * expiry. */
static void incr_step(struct wr *w, struct kvs_update *u)
{
	int64_t v = 0;
	int n;

	if (u->found && !kvs_parse_int64(u->val, u->vlen, &v)) {
		net_kop_put_error(&w->k, NET_ERR_NOTINT);
		return;
	}
	if ((w->delta > 0 && v > INT64_MAX - w->delta) ||
	    (w->delta < 0 && v < INT64_MIN - w->delta)) {
		net_kop_put_error(&w->k, "ERR increment or decrement would "
				  "overflow");
		return;
	}
	v += w->delta;
	n = snprintf(w->num, sizeof w->num, "%" PRId64, v);
	u->action = KVS_UPD_SET;
	u->new_val = w->num;
	u->new_vlen = (size_t)n;
	u->new_expire_ms = u->expire_ms;
	net_kop_put_int(&w->k, v);
}

static int wr_step(struct net_kop *k, size_t i, struct kvs_update *u)
{
	struct wr *w = (struct wr *)k;
	bool get = w->flags & W_GET;

	switch (w->what) {
	case WR_SET:
	case WR_SETNX:
		if (get) {
			if (u->found)
				net_kop_put_bulk(k, u->val, u->vlen);
			else
				net_kop_put_null(k);
		}
		if (((w->flags & KVS_SET_NX) && u->found) ||
		    ((w->flags & KVS_SET_XX) && !u->found)) {
			if (w->what == WR_SETNX)
				net_kop_put_int(k, 0);
			else if (!get)
				net_kop_put_null(k);
			break;
		}
		u->action = KVS_UPD_SET;
		u->new_val = w->vals[0];
		u->new_vlen = w->vlens[0];
		u->new_expire_ms = (w->flags & KVS_SET_KEEPTTL) ?
				   u->expire_ms : w->expire_ms;
		if (w->what == WR_SETNX)
			net_kop_put_int(k, 1);
		else if (!get)
			net_kop_put_simple(k, "OK");
		break;
	case WR_MSET:
		u->action = KVS_UPD_SET;
		u->new_val = w->vals[i];
		u->new_vlen = w->vlens[i];
		if (i + 1 == k->n)
			net_kop_put_simple(k, "OK");
		break;
	case WR_DEL:
		if (u->found) {
			u->action = KVS_UPD_REMOVE;
			w->count++;
		}
		if (i + 1 == k->n)
			net_kop_put_int(k, w->count);
		break;
	case WR_INCR:
		incr_step(w, u);
		break;
	case WR_GETDEL:
		if (u->found) {
			net_kop_put_bulk(k, u->val, u->vlen);
			u->action = KVS_UPD_REMOVE;
		} else {
			net_kop_put_null(k);
		}
		break;
	}
	return KVS_OK;
}

/* A state for `what` with room for nvals values, or NULL after replying. */
static struct wr *wr_begin(struct net_conn *c, enum wr_what what,
			   size_t nvals, bool upd)
{
	struct wr *w = (struct wr *)net_kop_begin(c, sizeof *w, wr_step, upd);

	if (!w)
		return NULL;
	w->what = what;
	if (nvals && (!(w->vals = net_upd_alloc(&w->k.upd,
						nvals * sizeof *w->vals)) ||
		      !(w->vlens = net_upd_alloc(&w->k.upd,
						 nvals * sizeof *w->vlens)))) {
		net_reply_error(c, "OOM out of memory");
		return NULL;
	}
	return w;
}

/* Keep value argument ai as w's value i; false after replying (OOM). */
static bool wr_val(struct net_conn *c, struct wr *w, size_t i,
		   const struct net_resp_cmd *cmd, size_t ai)
{
	if (!(w->vals[i] = net_kop_keep(&w->k, cmd->argv[ai],
					cmd->argvlen[ai]))) {
		net_reply_error(c, "OOM out of memory");
		return false;
	}
	w->vlens[i] = cmd->argvlen[ai];
	return true;
}

/* ---- SET and its family ----------------------------------------------------- */

/* Set key argv[1] to argv[vi] with flags and expiry: a plain SET op (reply
 * of `kind`) unless the reply needs the old value or upd. */
static void set_key(struct net_conn *c, const struct net_resp_cmd *cmd,
		    size_t vi, unsigned flags, int64_t expire_ms,
		    enum net_write_kind kind, bool upd)
{
	struct kvs_op *op;
	struct wr *w;

	if (check_key(c, cmd->argv[1], cmd->argvlen[1]) != 0 ||
	    check_value(c, cmd->argvlen[vi]) != 0)
		return;
	if (upd || (flags & W_GET)) {
		if (!(w = wr_begin(c, kind == NET_W_SETNX ? WR_SETNX : WR_SET,
				   1, upd)) ||
		    !wr_val(c, w, 0, cmd, vi))
			return;
		w->flags = flags;
		w->expire_ms = expire_ms;
		net_kop_add1(c, &w->k, cmd->argv[1], cmd->argvlen[1]);
		return;
	}
	if (!(op = net_batch_ops(c, 1)))
		return;
	op->type = KVS_OP_SET;
	op->key = cmd->argv[1];
	op->klen = cmd->argvlen[1];
	op->val = cmd->argv[vi];
	op->vlen = cmd->argvlen[vi];
	op->flags = flags;
	op->expire_ms = expire_ms;
	net_batch_add(c, kind, 1);
}

void net_k_set(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	unsigned flags = 0;
	enum net_ttl_unit unit = NET_TTL_EX;
	size_t ex = 0; /* the expiry's argument, 0: none */
	int64_t ms = 0;
	int rc;

	/* Redis 7.0's rules: NX and XX exclude each other, KEEPTTL and the
	 * expiry options too, and an expiry option may repeat (the last one
	 * counts) but not mix with another unit. */
	for (size_t i = 3; i < cmd->argc; i++) {
		bool next = i + 1 < cmd->argc;
		int u = -1;

		if (net_arg_is(cmd, i, "EX"))
			u = NET_TTL_EX;
		else if (net_arg_is(cmd, i, "PX"))
			u = NET_TTL_PX;
		else if (net_arg_is(cmd, i, "EXAT"))
			u = NET_TTL_EXAT;
		else if (net_arg_is(cmd, i, "PXAT"))
			u = NET_TTL_PXAT;
		if (net_arg_is(cmd, i, "NX") && !(flags & KVS_SET_XX)) {
			flags |= KVS_SET_NX;
		} else if (net_arg_is(cmd, i, "XX") && !(flags & KVS_SET_NX)) {
			flags |= KVS_SET_XX;
		} else if (net_arg_is(cmd, i, "GET")) {
			flags |= W_GET;
		} else if (net_arg_is(cmd, i, "KEEPTTL") && !ex) {
			flags |= KVS_SET_KEEPTTL;
		} else if (u >= 0 && next && !(flags & KVS_SET_KEEPTTL) &&
			   (!ex || unit == (enum net_ttl_unit)u)) {
			unit = (enum net_ttl_unit)u;
			ex = ++i;
		} else {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
	}
	if (ex && (rc = net_expire_option(cmd->argv[ex], cmd->argvlen[ex],
					  unit, kvs_now_ms(), &ms)) != 0) {
		net_reply_check(c, net_expire_error(net_reply_buf(c), rc,
						    "set"));
		return;
	}
	set_key(c, cmd, 2, flags, ms, NET_W_SET, upd);
}

void net_cmd_set(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_set(c, cmd, false);
}

void net_k_setnx(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	set_key(c, cmd, 2, KVS_SET_NX, 0, NET_W_SETNX, upd);
}

void net_cmd_setnx(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_setnx(c, cmd, false);
}

/* SETEX/PSETEX key time value. */
static void setex(struct net_conn *c, const struct net_resp_cmd *cmd,
		  enum net_ttl_unit unit, const char *name, bool upd)
{
	int64_t ms;
	int rc = net_expire_option(cmd->argv[2], cmd->argvlen[2], unit,
				   kvs_now_ms(), &ms);

	if (rc != 0)
		net_reply_check(c, net_expire_error(net_reply_buf(c), rc,
						    name));
	else
		set_key(c, cmd, 3, 0, ms, NET_W_SET, upd);
}

void net_k_setex(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	setex(c, cmd, NET_TTL_EX, "setex", upd);
}

void net_k_psetex(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	setex(c, cmd, NET_TTL_PX, "psetex", upd);
}

void net_cmd_setex(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_setex(c, cmd, false);
}

void net_cmd_psetex(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_psetex(c, cmd, false);
}

void net_k_mset(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	size_t n = (cmd->argc - 1) / 2;
	struct kvs_op *op;
	struct wr *w;

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
	if (upd) {
		const char **keys;
		size_t *lens;

		if (!(w = wr_begin(c, WR_MSET, n, true)))
			return;
		keys = net_upd_alloc(&w->k.upd, n * sizeof *keys);
		lens = net_upd_alloc(&w->k.upd, n * sizeof *lens);
		if (!keys || !lens) {
			net_reply_error(c, "OOM out of memory");
			return;
		}
		for (size_t i = 0; i < n; i++) {
			if (!wr_val(c, w, i, cmd, 2 + 2 * i))
				return;
			keys[i] = cmd->argv[1 + 2 * i];
			lens[i] = cmd->argvlen[1 + 2 * i];
		}
		net_kop_add(c, &w->k, n, keys, lens);
		return;
	}
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

void net_cmd_mset(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_mset(c, cmd, false);
}

void net_k_del(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	struct kvs *db = c->w->srv->db;
	size_t n = 0;
	struct kvs_op *op;
	struct wr *w;

	if (upd) {
		if ((w = wr_begin(c, WR_DEL, 0, true)))
			net_kop_add(c, &w->k, cmd->argc - 1, cmd->argv + 1,
				    cmd->argvlen + 1);
		return;
	}
	if (!(op = net_batch_ops(c, cmd->argc - 1)))
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

void net_cmd_del(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_del(c, cmd, false);
}

void net_k_getdel(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	struct wr *w = wr_begin(c, WR_GETDEL, 0, upd);

	if (w)
		net_kop_add1(c, &w->k, cmd->argv[1], cmd->argvlen[1]);
}

void net_cmd_getdel(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_getdel(c, cmd, false);
}

/* ---- INCR and its family ------------------------------------------------------ */

static void incr(struct net_conn *c, const char *key, size_t klen,
		 int64_t delta, bool upd)
{
	struct kvs_op *op;
	struct wr *w;

	if (check_key(c, key, klen) != 0)
		return;
	if (upd) {
		if ((w = wr_begin(c, WR_INCR, 0, true))) {
			w->delta = delta;
			net_kop_add1(c, &w->k, key, klen);
		}
		return;
	}
	if ((op = net_batch_ops(c, 1)) == NULL)
		return;
	op->type = KVS_OP_INCR;
	op->key = key;
	op->klen = klen;
	op->delta = delta;
	net_batch_add(c, NET_W_INCR, 1);
}

void net_k_incr(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	incr(c, cmd->argv[1], cmd->argvlen[1], 1, upd);
}

void net_k_decr(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	incr(c, cmd->argv[1], cmd->argvlen[1], -1, upd);
}

void net_k_incrby(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	long long d;

	if (net_arg_int(cmd, 2, &d) != 0)
		net_reply_error(c, NET_ERR_NOTINT);
	else
		incr(c, cmd->argv[1], cmd->argvlen[1], d, upd);
}

void net_k_decrby(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	long long d;

	if (net_arg_int(cmd, 2, &d) != 0)
		net_reply_error(c, NET_ERR_NOTINT);
	else if (d == INT64_MIN)
		net_reply_error(c, "ERR decrement would overflow");
	else
		incr(c, cmd->argv[1], cmd->argvlen[1], -d, upd);
}

void net_cmd_incr(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_incr(c, cmd, false);
}

void net_cmd_decr(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_decr(c, cmd, false);
}

void net_cmd_incrby(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_incrby(c, cmd, false);
}

void net_cmd_decrby(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_decrby(c, cmd, false);
}
