/* cmd_keys.c - the keyspace commands: KEYS, TYPE, TOUCH, RENAME, RENAMENX,
 * COPY, RANDOMKEY, FLUSHDB, FLUSHALL; and net_keys_as_update (cmd_keys.h),
 * which turns any key command into update ops of a transaction's batch.
 * Run by the connection's worker, but ks_step (the engine's writer
 * thread). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cmd_keys.h"
#include "commands.h"
#include "keyop.h"
#include "reply.h"

enum ks_what { KS_TYPE, KS_TOUCH, KS_RENAME, KS_COPY, KS_SAME };

struct ks {
	struct net_kop k;
	enum ks_what what;
	bool nx;               /* RENAMENX; COPY: not REPLACE */
	bool stop;             /* RENAME/COPY: decided, later ops write
				  nothing */
	bool moved;            /* RENAME: the destination was set */
	long long count;       /* TOUCH */
	const void *val;       /* RENAME/COPY: the source's value, */
	size_t vlen;
	int64_t expire_ms;     /* and expiry */
};

/* RENAME[NX]'s ops: the source (read), the destination (set), the source
 * again (removed once the destination is set).  COPY's: the source, the
 * destination.  Both keep the expiry. */
static void move_step(struct ks *s, size_t i, struct kvs_update *u)
{
	bool rename = s->what == KS_RENAME;

	if (s->stop)
		return;
	if (i == 0) {
		if (!u->found) {
			if (rename)
				net_kop_put_error(&s->k, "ERR no such key");
			else
				net_kop_put_int(&s->k, 0);
			s->stop = true;
			return;
		}
		if (!(s->val = net_kop_copy_val(&s->k, u))) {
			s->stop = true;
			return;
		}
		s->vlen = u->vlen;
		s->expire_ms = u->expire_ms;
	} else if (i == 1) {
		if (u->found && s->nx) {
			net_kop_put_int(&s->k, 0);
			s->stop = true;
			return;
		}
		u->action = KVS_UPD_SET;
		u->new_val = s->val;
		u->new_vlen = s->vlen;
		u->new_expire_ms = s->expire_ms;
		s->moved = true;
		if (!rename)
			net_kop_put_int(&s->k, 1);
	} else if (s->moved) {
		u->action = KVS_UPD_REMOVE;
		if (s->nx)
			net_kop_put_int(&s->k, 1);
		else
			net_kop_put_simple(&s->k, "OK");
	}
}

static int ks_step(struct net_kop *k, size_t i, struct kvs_update *u)
{
	struct ks *s = (struct ks *)k;

	switch (s->what) {
	case KS_TYPE:
		net_kop_put_simple(k, u->found ? "string" : "none");
		break;
	case KS_TOUCH:
		s->count += u->found;
		if (i + 1 == k->n)
			net_kop_put_int(k, s->count);
		break;
	case KS_SAME: /* RENAME[NX] k k: nothing moves */
		if (!u->found)
			net_kop_put_error(k, "ERR no such key");
		else if (s->nx)
			net_kop_put_int(k, 0);
		else
			net_kop_put_simple(k, "OK");
		break;
	case KS_RENAME:
	case KS_COPY:
		move_step(s, i, u);
		break;
	}
	return KVS_OK;
}

static struct ks *ks_begin(struct net_conn *c, enum ks_what what, bool upd)
{
	struct ks *s = (struct ks *)net_kop_begin(c, sizeof *s, ks_step, upd);

	if (s)
		s->what = what;
	return s;
}

/* ---- TYPE, TOUCH ---------------------------------------------------------- */

static void k_type(struct net_conn *c, const struct net_resp_cmd *cmd,
		   bool upd)
{
	struct kvs_update u;
	struct ks *s;
	int rc;

	if (upd) {
		if ((s = ks_begin(c, KS_TYPE, true)))
			net_kop_add1(c, &s->k, cmd->argv[1], cmd->argvlen[1]);
		return;
	}
	rc = net_key_read(c->w->srv->db, cmd->argv[1], cmd->argvlen[1], false,
			  &u);
	if (rc != KVS_OK)
		net_reply_kvs_error_here(c, rc, NET_STORE_READ);
	else
		net_reply_simple(c, u.found ? "string" : "none");
}

void net_cmd_type(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	k_type(c, cmd, false);
}

static void k_touch(struct net_conn *c, const struct net_resp_cmd *cmd,
		    bool upd)
{
	struct kvs_update u;
	long long n = 0;
	struct ks *s;

	if (upd) {
		if ((s = ks_begin(c, KS_TOUCH, true)))
			net_kop_add(c, &s->k, cmd->argc - 1, cmd->argv + 1,
				    cmd->argvlen + 1);
		return;
	}
	for (size_t i = 1; i < cmd->argc; i++) {
		int rc = net_key_read(c->w->srv->db, cmd->argv[i],
				      cmd->argvlen[i], false, &u);
		if (rc != KVS_OK) {
			net_reply_kvs_error_here(c, rc, NET_STORE_READ);
			return;
		}
		n += u.found;
	}
	net_reply_int(c, n);
}

void net_cmd_touch(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	k_touch(c, cmd, false);
}

/* ---- RENAME, RENAMENX, COPY ------------------------------------------------ */

/* Move or copy argv[1] to argv[2]. */
static void move(struct net_conn *c, const struct net_resp_cmd *cmd,
		 enum ks_what what, bool nx, bool upd)
{
	const char *keys[3] = { cmd->argv[1], cmd->argv[2], cmd->argv[1] };
	size_t lens[3] = { cmd->argvlen[1], cmd->argvlen[2],
			   cmd->argvlen[1] };
	bool same = cmd->argvlen[1] == cmd->argvlen[2] &&
		    memcmp(cmd->argv[1], cmd->argv[2], cmd->argvlen[1]) == 0;
	struct ks *s;
	int rc;

	if (same && what == KS_COPY) {
		net_reply_error(c, "ERR source and destination objects are "
				"the same");
		return;
	}
	/* A destination the engine cannot hold fails as SET would; a source
	 * it cannot hold is simply absent. */
	if (!same && (rc = kvs_check_key(c->w->srv->db, cmd->argv[2],
					 cmd->argvlen[2])) != KVS_OK) {
		net_reply_kvs_error_here(c, rc, NET_STORE_WRITE);
		return;
	}
	if (!(s = ks_begin(c, same ? KS_SAME : what, upd)))
		return;
	s->nx = nx;
	net_kop_add(c, &s->k, same ? 1 : what == KS_RENAME ? 3 : 2, keys,
		    lens);
}

static void k_rename(struct net_conn *c, const struct net_resp_cmd *cmd,
		     bool upd)
{
	move(c, cmd, KS_RENAME, false, upd);
}

static void k_renamenx(struct net_conn *c, const struct net_resp_cmd *cmd,
		       bool upd)
{
	move(c, cmd, KS_RENAME, true, upd);
}

void net_cmd_rename(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	k_rename(c, cmd, false);
}

void net_cmd_renamenx(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	k_renamenx(c, cmd, false);
}

/* COPY src dst [DB n] [REPLACE]: the one database is 0. */
static void k_copy(struct net_conn *c, const struct net_resp_cmd *cmd,
		   bool upd)
{
	bool replace = false;
	long long db;

	for (size_t i = 3; i < cmd->argc; i++) {
		if (net_arg_is(cmd, i, "REPLACE")) {
			replace = true;
		} else if (net_arg_is(cmd, i, "DB") && i + 1 < cmd->argc) {
			if (net_arg_int(cmd, ++i, &db) != 0 || db < INT32_MIN ||
			    db > INT32_MAX) {
				net_reply_error(c, NET_ERR_NOTINT);
				return;
			}
			if (db != 0) {
				net_reply_error(c, "ERR DB index is out of "
						"range");
				return;
			}
		} else {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
	}
	move(c, cmd, KS_COPY, !replace, upd);
}

void net_cmd_copy(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	k_copy(c, cmd, false);
}

/* ---- FLUSHDB, FLUSHALL -------------------------------------------------------- */

/* One KVS_OP_FLUSH: logged by the engine as one record, so that once it is
 * acknowledged no key comes back after a crash.  ASYNC is the same. */
static void k_flush(struct net_conn *c, const struct net_resp_cmd *cmd,
		    bool upd)
{
	struct net_upd *x;
	struct kvs_op *op;

	(void)upd;
	if (cmd->argc > 2 || (cmd->argc == 2 && !net_arg_is(cmd, 1, "SYNC") &&
			      !net_arg_is(cmd, 1, "ASYNC"))) {
		net_reply_error(c, NET_ERR_SYNTAX);
		return;
	}
	if (!(x = net_batch_upd(c, sizeof *x)))
		return;
	if (net_resp_put_simple(&x->reply, "OK") != NET_RESP_OK ||
	    !(op = net_batch_ops(c, 1))) {
		if (!x->reply.len)
			net_reply_error(c, "OOM out of memory");
		return;
	}
	op->type = KVS_OP_FLUSH;
	net_batch_add_upd(c, x, 1);
}

void net_cmd_flushall(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	k_flush(c, cmd, false);
}

/* ---- KEYS, RANDOMKEY ---------------------------------------------------------- */

struct keys_ctx {
	struct net_buf keys;   /* each as a size_t length, then the bytes */
	size_t n;              /* keys kept */
	const char *pat;       /* NULL: every key */
	size_t patlen;
	int oom;
};

static int keys_cb(void *ctx, const void *key, size_t klen)
{
	struct keys_ctx *kc = ctx;

	if (kc->pat && !net_glob_match(kc->pat, kc->patlen, key, klen, 0))
		return 0;
	if (net_buf_append(&kc->keys, &klen, sizeof klen) != NET_RESP_OK ||
	    net_buf_append(&kc->keys, key, klen) != NET_RESP_OK) {
		kc->oom = 1;
		return 1;
	}
	kc->n++;
	return 0;
}

/* Reply the keys kc collected, as an array. */
static void reply_keys(struct net_conn *c, struct keys_ctx *kc)
{
	size_t off = 0, klen;

	net_reply_array(c, kc->n);
	for (size_t i = 0; i < kc->n && !c->over_limit; i++) {
		memcpy(&klen, kc->keys.data + off, sizeof klen);
		off += sizeof klen;
		net_reply_bulk(c, kc->keys.data + off, klen);
		off += klen;
	}
}

void net_cmd_keys(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct keys_ctx kc = { NET_BUF_INIT, 0, NULL, 0, 0 };
	uint64_t next = 0;
	int rc;

	if (!(cmd->argvlen[1] == 1 && cmd->argv[1][0] == '*')) {
		kc.pat = cmd->argv[1];
		kc.patlen = cmd->argvlen[1];
	}
	/* One call for every key: each call of the kvs engine walks its
	 * index from the start to the cursor. */
	rc = kvs_scan(c->w->srv->db, 0, SIZE_MAX, keys_cb, &kc, &next);
	if (rc == KVS_OK && !kc.oom)
		reply_keys(c, &kc);
	else
		net_reply_kvs_error_here(c, rc != KVS_OK ? rc : KVS_ENOMEM,
					 NET_STORE_READ);
	net_buf_free(&kc.keys);
}

/* splitmix64 over a per-thread state: RANDOMKEY's cursors. */
static uint64_t random64(void)
{
	static _Thread_local uint64_t s;
	uint64_t z;

	if (!s)
		s = (uint64_t)kvs_now_ms() ^ (uint64_t)(uintptr_t)&s;
	z = (s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* RANDOMKEY's pick: one of the first keys a scan passes, each with the
 * same chance (reservoir sampling), so that an engine whose scan passes
 * every key in its first call (lmdb) still gives different keys. */
struct pick {
	char *key;
	size_t klen;
	size_t seen;
	int oom;
};

#define PICK_AMONG 32

static int pick_cb(void *ctx, const void *key, size_t klen)
{
	struct pick *p = ctx;
	char *k;

	if (random64() % ++p->seen == 0) {
		if (!(k = malloc(klen ? klen : 1))) {
			p->oom = 1;
			return 1;
		}
		memcpy(k, key, klen);
		free(p->key);
		p->key = k;
		p->klen = klen;
	}
	return p->seen >= PICK_AMONG;
}

/* A live key near a random cursor (from the start when none is after it):
 * kvs_scan never passes an expired key. */
void net_cmd_randomkey(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct pick p = { NULL, 0, 0, 0 };
	uint64_t cursor = random64(), next = 0;
	int rc = KVS_OK;

	(void)cmd;
	for (int pass = 0; pass < 2 && p.seen == 0; pass++) {
		do {
			rc = kvs_scan(c->w->srv->db, cursor, PICK_AMONG,
				      pick_cb, &p, &next);
			cursor = next;
		} while (rc == KVS_OK && !p.oom && p.seen == 0 && next != 0);
		if (rc != KVS_OK || p.oom)
			break;
		cursor = 0;
	}
	if (rc != KVS_OK || p.oom)
		net_reply_kvs_error_here(c, rc != KVS_OK ? rc : KVS_ENOMEM,
					 NET_STORE_READ);
	else if (!p.key)
		net_reply_null(c);
	else
		net_reply_bulk(c, p.key, p.klen);
	free(p.key);
}

/* ---- transactions: every key command as update ops ---------------------------- */

static const struct {
	const char *name;
	int arity; /* as dispatch.c's table */
	net_kcmd_fn *fn;
} upd_cmds[] = {
	{ "copy", -3, k_copy },
	{ "decr", 2, net_k_decr },
	{ "decrby", 3, net_k_decrby },
	{ "del", -2, net_k_del },
	{ "exists", -2, net_k_exists },
	{ "expire", -3, net_k_expire },
	{ "expireat", -3, net_k_expireat },
	{ "expiretime", 2, net_k_expiretime },
	{ "flushall", -1, k_flush },
	{ "flushdb", -1, k_flush },
	{ "get", 2, net_k_get },
	{ "getdel", 2, net_k_getdel },
	{ "getex", -2, net_k_getex },
	{ "incr", 2, net_k_incr },
	{ "incrby", 3, net_k_incrby },
	{ "mget", -2, net_k_mget },
	{ "mset", -3, net_k_mset },
	{ "persist", 2, net_k_persist },
	{ "pexpire", -3, net_k_pexpire },
	{ "pexpireat", -3, net_k_pexpireat },
	{ "pexpiretime", 2, net_k_pexpiretime },
	{ "psetex", 4, net_k_psetex },
	{ "pttl", 2, net_k_pttl },
	{ "rename", 3, k_rename },
	{ "renamenx", 3, k_renamenx },
	{ "set", -3, net_k_set },
	{ "setex", 4, net_k_setex },
	{ "setnx", 3, net_k_setnx },
	{ "strlen", 2, net_k_strlen },
	{ "time", 1, net_k_time },
	{ "touch", -2, k_touch },
	{ "ttl", 2, net_k_ttl },
	{ "type", 2, k_type },
	{ "unlink", -2, net_k_del },
};

bool net_keys_as_update(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t nc = sizeof upd_cmds / sizeof upd_cmds[0], i, before;
	struct net_buf *out;
	int ar;

	for (i = 0; i < nc; i++)
		if (strlen(upd_cmds[i].name) == cmd->argvlen[0] &&
		    strncasecmp(upd_cmds[i].name, cmd->argv[0],
				cmd->argvlen[0]) == 0)
			break;
	if (i == nc)
		return false;
	/* A reply the command makes at once (an argument error) is moved
	 * into a reply-only op, so that it keeps its place among the
	 * transaction's replies. */
	out = net_reply_buf(c);
	before = out->len;
	ar = upd_cmds[i].arity;
	if ((ar > 0 && cmd->argc != (size_t)ar) ||
	    (ar < 0 && cmd->argc < (size_t)-ar))
		net_reply_arity(c, upd_cmds[i].name);
	else
		upd_cmds[i].fn(c, cmd, true);
	out = net_reply_buf(c);
	if (out->len > before) {
		size_t n = out->len - before;
		char *err = malloc(n);

		if (!err) {
			/* The OOM error stays where it is. */
			return true;
		}
		memcpy(err, out->data + before, n);
		out->len = before;
		net_kop_reply_only(c, err, n, NULL);
		free(err);
	}
	return true;
}
