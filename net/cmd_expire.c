/* cmd_expire.c - the expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT
 * (NX/XX/GT/LT), TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST, GETEX, and
 * TIME.  The writes are update ops (keyop.h) whose step decides from the
 * key's state on the engine's writer thread; the TTL family reads directly
 * (kvs_lookup) when alone.  Run by the connection's worker, but ex_step
 * (the writer). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "keyop.h"
#include "reply.h"

#define EXP_NX 1u
#define EXP_XX 2u
#define EXP_GT 4u
#define EXP_LT 8u

enum ex_what { EX_EXPIRE, EX_TTL, EX_PERSIST, EX_GETEX };

struct ex {
	struct net_kop k;
	enum ex_what what;
	unsigned flags;        /* EX_EXPIRE: EXP_*; EX_GETEX: 1 = PERSIST */
	int64_t when;          /* EX_EXPIRE: the new expiry (unix ms) */
	bool ms, abs;          /* EX_TTL: the figure's kind */
	const char *arg;       /* EX_GETEX: the expiry's argument, or NULL */
	size_t arglen;
	enum net_ttl_unit unit;
};

/* Set u's key to its own value expiring at when (0: never). */
static void reexpire(struct net_kop *k, struct kvs_update *u, int64_t when)
{
	const void *v = net_kop_copy_val(k, u);

	if (!v)
		return;
	u->action = KVS_UPD_SET;
	u->new_val = v;
	u->new_vlen = u->vlen;
	u->new_expire_ms = when;
}

/* EXPIRE's decision, as Redis 7.0's: a key without expiry counts as an
 * infinite one for GT and LT; a time already past removes the key. */
static void expire_step(struct ex *e, struct kvs_update *u)
{
	int64_t cur = u->expire_ms;

	if (!u->found || ((e->flags & EXP_NX) && cur) ||
	    ((e->flags & EXP_XX) && !cur) ||
	    ((e->flags & EXP_GT) && (!cur || e->when <= cur)) ||
	    ((e->flags & EXP_LT) && cur && e->when >= cur)) {
		net_kop_put_int(&e->k, 0);
		return;
	}
	if (e->when <= kvs_now_ms())
		u->action = KVS_UPD_REMOVE;
	else
		reexpire(&e->k, u, e->when);
	net_kop_put_int(&e->k, 1);
}

/* GETEX's: the expiry is checked only once the key is found, as Redis. */
static void getex_step(struct ex *e, struct kvs_update *u)
{
	int64_t ms = 0;
	int rc;

	if (!u->found) {
		net_kop_put_null(&e->k);
		return;
	}
	if (e->arg && (rc = net_expire_option(e->arg, e->arglen, e->unit,
					       kvs_now_ms(), &ms)) != 0) {
		if (net_expire_error(&e->k.upd.reply, rc, "getex") !=
		    NET_RESP_OK)
			e->k.oom = true;
		return;
	}
	net_kop_put_bulk(&e->k, u->val, u->vlen);
	if (e->arg && (e->unit == NET_TTL_EXAT || e->unit == NET_TTL_PXAT) &&
	    ms <= kvs_now_ms())
		u->action = KVS_UPD_REMOVE;
	else if (e->arg)
		reexpire(&e->k, u, ms);
	else if (e->flags && u->expire_ms)
		reexpire(&e->k, u, 0);
}

static int ex_step(struct net_kop *k, size_t i, struct kvs_update *u)
{
	struct ex *e = (struct ex *)k;

	(void)i;
	switch (e->what) {
	case EX_EXPIRE:
		expire_step(e, u);
		break;
	case EX_TTL:
		net_kop_put_int(k, net_ttl_figure(u->found, u->expire_ms,
						  kvs_now_ms(), e->ms, e->abs));
		break;
	case EX_PERSIST:
		if (u->found && u->expire_ms)
			reexpire(k, u, 0);
		net_kop_put_int(k, u->found && u->expire_ms);
		break;
	case EX_GETEX:
		getex_step(e, u);
		break;
	}
	return KVS_OK;
}

static struct ex *ex_begin(struct net_conn *c, enum ex_what what, bool upd)
{
	struct ex *e = (struct ex *)net_kop_begin(c, sizeof *e, ex_step, upd);

	if (e)
		e->what = what;
	return e;
}

/* ---- EXPIRE and its family ------------------------------------------------- */

static void expire(struct net_conn *c, const struct net_resp_cmd *cmd,
		   enum net_ttl_unit unit, const char *name, bool upd)
{
	unsigned f = 0;
	int64_t when;
	int rc;
	struct ex *e;

	for (size_t i = 3; i < cmd->argc; i++) {
		if (net_arg_is(cmd, i, "NX"))
			f |= EXP_NX;
		else if (net_arg_is(cmd, i, "XX"))
			f |= EXP_XX;
		else if (net_arg_is(cmd, i, "GT"))
			f |= EXP_GT;
		else if (net_arg_is(cmd, i, "LT"))
			f |= EXP_LT;
		else {
			net_reply_errorf(c, "ERR Unsupported option %.*s",
					 net_arg_shown(cmd, i), cmd->argv[i]);
			return;
		}
	}
	if ((f & EXP_NX) && (f & (EXP_XX | EXP_GT | EXP_LT))) {
		net_reply_error(c, "ERR NX and XX, GT or LT options at the "
				"same time are not compatible");
		return;
	}
	if ((f & EXP_GT) && (f & EXP_LT)) {
		net_reply_error(c, "ERR GT and LT options at the same time "
				"are not compatible");
		return;
	}
	rc = net_expire_when(cmd->argv[2], cmd->argvlen[2], unit, kvs_now_ms(),
			     &when);
	if (rc != 0) {
		net_reply_check(c, net_expire_error(net_reply_buf(c), rc,
						    name));
		return;
	}
	if (!(e = ex_begin(c, EX_EXPIRE, upd)))
		return;
	e->flags = f;
	e->when = when;
	net_kop_add1(c, &e->k, cmd->argv[1], cmd->argvlen[1]);
}

void net_k_expire(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	expire(c, cmd, NET_TTL_EX, "expire", upd);
}

void net_k_pexpire(struct net_conn *c, const struct net_resp_cmd *cmd,
		   bool upd)
{
	expire(c, cmd, NET_TTL_PX, "pexpire", upd);
}

void net_k_expireat(struct net_conn *c, const struct net_resp_cmd *cmd,
		    bool upd)
{
	expire(c, cmd, NET_TTL_EXAT, "expireat", upd);
}

void net_k_pexpireat(struct net_conn *c, const struct net_resp_cmd *cmd,
		     bool upd)
{
	expire(c, cmd, NET_TTL_PXAT, "pexpireat", upd);
}

void net_cmd_expire(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_expire(c, cmd, false);
}

void net_cmd_pexpire(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_pexpire(c, cmd, false);
}

void net_cmd_expireat(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_expireat(c, cmd, false);
}

void net_cmd_pexpireat(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_pexpireat(c, cmd, false);
}

/* ---- TTL and its family ----------------------------------------------------- */

static void ttl(struct net_conn *c, const struct net_resp_cmd *cmd, bool ms,
		bool abs, bool upd)
{
	struct kvs_update u;
	struct ex *e;
	int rc;

	if (upd) {
		if ((e = ex_begin(c, EX_TTL, true))) {
			e->ms = ms;
			e->abs = abs;
			net_kop_add1(c, &e->k, cmd->argv[1], cmd->argvlen[1]);
		}
		return;
	}
	rc = net_key_read(c->w->srv->db, cmd->argv[1], cmd->argvlen[1], false,
			  &u);
	if (rc != KVS_OK)
		net_reply_kvs_error_here(c, rc, NET_STORE_READ);
	else
		net_reply_int(c, net_ttl_figure(u.found, u.expire_ms,
						kvs_now_ms(), ms, abs));
}

void net_k_ttl(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	ttl(c, cmd, false, false, upd);
}

void net_k_pttl(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	ttl(c, cmd, true, false, upd);
}

void net_k_expiretime(struct net_conn *c, const struct net_resp_cmd *cmd,
		      bool upd)
{
	ttl(c, cmd, false, true, upd);
}

void net_k_pexpiretime(struct net_conn *c, const struct net_resp_cmd *cmd,
		       bool upd)
{
	ttl(c, cmd, true, true, upd);
}

void net_cmd_ttl(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_ttl(c, cmd, false);
}

void net_cmd_pttl(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_pttl(c, cmd, false);
}

void net_cmd_expiretime(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_expiretime(c, cmd, false);
}

void net_cmd_pexpiretime(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_pexpiretime(c, cmd, false);
}

/* ---- PERSIST, GETEX, TIME ----------------------------------------------------- */

void net_k_persist(struct net_conn *c, const struct net_resp_cmd *cmd,
		   bool upd)
{
	struct ex *e = ex_begin(c, EX_PERSIST, upd);

	if (e)
		net_kop_add1(c, &e->k, cmd->argv[1], cmd->argvlen[1]);
}

void net_cmd_persist(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_persist(c, cmd, false);
}

void net_k_getex(struct net_conn *c, const struct net_resp_cmd *cmd,
		 bool upd)
{
	bool persist = false;
	size_t ex = 0;
	enum net_ttl_unit unit = NET_TTL_EX;
	struct ex *e;

	/* As SET's options, Redis 7.0's rules: PERSIST excludes the expiry
	 * options, which may repeat but not mix. */
	for (size_t i = 2; i < cmd->argc; i++) {
		int u = -1;

		if (net_arg_is(cmd, i, "EX"))
			u = NET_TTL_EX;
		else if (net_arg_is(cmd, i, "PX"))
			u = NET_TTL_PX;
		else if (net_arg_is(cmd, i, "EXAT"))
			u = NET_TTL_EXAT;
		else if (net_arg_is(cmd, i, "PXAT"))
			u = NET_TTL_PXAT;
		if (net_arg_is(cmd, i, "PERSIST") && !ex) {
			persist = true;
		} else if (u >= 0 && i + 1 < cmd->argc && !persist &&
			   (!ex || unit == (enum net_ttl_unit)u)) {
			unit = (enum net_ttl_unit)u;
			ex = ++i;
		} else {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
	}
	if (!(e = ex_begin(c, EX_GETEX, upd)))
		return;
	e->flags = persist;
	e->unit = unit;
	if (ex) {
		e->arglen = cmd->argvlen[ex];
		if (!(e->arg = net_kop_keep(&e->k, cmd->argv[ex],
					    cmd->argvlen[ex]))) {
			net_reply_error(c, "OOM out of memory");
			return;
		}
	}
	net_kop_add1(c, &e->k, cmd->argv[1], cmd->argvlen[1]);
}

void net_cmd_getex(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_getex(c, cmd, false);
}

/* TIME's reply: [unix seconds, microseconds] as bulk strings. */
static int put_time(struct net_buf *b)
{
	struct timespec ts;
	char s[24], us[24];
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(s, sizeof s, "%lld", (long long)ts.tv_sec);
	snprintf(us, sizeof us, "%ld", ts.tv_nsec / 1000);
	if ((rc = net_resp_put_array(b, 2)) != NET_RESP_OK ||
	    (rc = net_resp_put_bulk(b, s, strlen(s))) != NET_RESP_OK)
		return rc;
	return net_resp_put_bulk(b, us, strlen(us));
}

static int time_step(struct net_kop *k, size_t i, struct kvs_update *u)
{
	(void)i;
	(void)u;
	if (put_time(&k->upd.reply) != NET_RESP_OK)
		k->oom = true;
	return KVS_OK;
}

void net_k_time(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	(void)cmd;
	if (upd)
		net_kop_reply_only(c, NULL, 0, time_step);
	else
		net_reply_check(c, put_time(net_reply_buf(c)));
}

void net_cmd_time(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_time(c, cmd, false);
}
