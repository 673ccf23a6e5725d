/* cmd_read.c - the read commands: GET, MGET, EXISTS, STRLEN, SCAN.  Alone
 * they call the engine's read path (kvs_get, kvs_lookup, kvs_scan: no
 * lock, never waits for the writer) and reply at once; inside a
 * transaction (keyop.h's upd form) GET, MGET, EXISTS and STRLEN are update
 * ops that read the key on the writer thread.  Run by the connection's
 * worker, but the steps (the writer). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "keyop.h"
#include "reply.h"

/* The upd form's state: which command, and EXISTS's count. */
struct rd {
	struct net_kop k;
	enum { RD_GET, RD_MGET, RD_EXISTS, RD_STRLEN } what;
	long long count;
};

static int rd_step(struct net_kop *k, size_t i, struct kvs_update *u)
{
	struct rd *r = (struct rd *)k;

	switch (r->what) {
	case RD_MGET:
		if (i == 0)
			net_kop_put_array(k, k->n);
		/* fall through */
	case RD_GET:
		if (u->found)
			net_kop_put_bulk(k, u->val, u->vlen);
		else
			net_kop_put_null(k);
		break;
	case RD_EXISTS:
		r->count += u->found;
		if (i + 1 == k->n)
			net_kop_put_int(k, r->count);
		break;
	case RD_STRLEN:
		net_kop_put_int(k, u->found ? (long long)u->vlen : 0);
		break;
	}
	return KVS_OK;
}

/* The upd form of a read of the keys argv[first..argc). */
static void rd_upd(struct net_conn *c, const struct net_resp_cmd *cmd,
		   int what, size_t first)
{
	struct rd *r = (struct rd *)net_kop_begin(c, sizeof *r, rd_step, true);

	if (!r)
		return;
	r->what = what;
	net_kop_add(c, &r->k, cmd->argc - first,
		    cmd->argv + first,
		    cmd->argvlen + first);
}

/* Reply with key's value, or nil.  A key the engine cannot hold (empty,
 * too long) is simply absent. */
static void get_one(struct net_conn *c, const char *key, size_t klen)
{
	void *val = NULL;
	size_t vlen = 0;
	int rc = kvs_get(c->w->srv->db, key, klen, &val, &vlen);

	if (rc == KVS_OK) {
		net_reply_bulk(c, val, vlen);
		kvs_free(val);
	} else if (rc == KVS_ENOTFOUND || rc == KVS_EINVAL ||
		   rc == KVS_ETOOBIG) {
		net_reply_null(c);
	} else {
		net_reply_kvs_error_here(c, rc, NET_STORE_READ);
	}
}

void net_k_get(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	if (upd)
		rd_upd(c, cmd, RD_GET, 1);
	else
		get_one(c, cmd->argv[1], cmd->argvlen[1]);
}

void net_cmd_get(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_get(c, cmd, false);
}

void net_k_mget(struct net_conn *c, const struct net_resp_cmd *cmd, bool upd)
{
	if (upd) {
		rd_upd(c, cmd, RD_MGET, 1);
		return;
	}
	struct kvs *db = c->w->srv->db;
	size_t mark = net_reply_mark(c);
	uint64_t gen;
	/* No half of an EXEC or MSET in one reply: read again if an atomic
	 * batch was published between the reads. */
	do {
		net_reply_rewind(c, mark);
		gen = kvs_read_begin(db);
		net_reply_array(c, cmd->argc - 1);
		for (size_t i = 1; i < cmd->argc && !c->over_limit; i++)
			get_one(c, cmd->argv[i], cmd->argvlen[i]);
	} while (!c->over_limit && c->state != NET_CONN_CLOSING &&
		 kvs_read_retry(db, gen));
}

void net_cmd_mget(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_mget(c, cmd, false);
}

/* 1 present, 0 absent, or a kvs error.  *len gets the value's length. */
static int key_len(struct net_conn *c, const char *key, size_t klen,
		   size_t *len)
{
	struct kvs_update u;
	int rc = net_key_read(c->w->srv->db, key, klen, false, &u);

	*len = u.vlen;
	return rc != KVS_OK ? rc : u.found;
}

void net_k_exists(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	long long n = 0;
	size_t len;

	if (upd) {
		rd_upd(c, cmd, RD_EXISTS, 1);
		return;
	}
	struct kvs *db = c->w->srv->db;
	uint64_t gen;
	do {
		gen = kvs_read_begin(db);
		n = 0;
		for (size_t i = 1; i < cmd->argc; i++) {
			int rc = key_len(c, cmd->argv[i], cmd->argvlen[i],
					 &len);
			if (rc < 0) {
				net_reply_kvs_error_here(c, rc,
							 NET_STORE_READ);
				return;
			}
			n += rc;
		}
	} while (cmd->argc > 2 && kvs_read_retry(db, gen));
	net_reply_int(c, n);
}

void net_cmd_exists(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_exists(c, cmd, false);
}

void net_k_strlen(struct net_conn *c, const struct net_resp_cmd *cmd,
		  bool upd)
{
	size_t len = 0;
	int rc;

	if (upd) {
		rd_upd(c, cmd, RD_STRLEN, 1);
		return;
	}
	rc = key_len(c, cmd->argv[1], cmd->argvlen[1], &len);
	if (rc < 0)
		net_reply_kvs_error_here(c, rc, NET_STORE_READ);
	else
		net_reply_int(c, rc ? (long long)len : 0);
}

void net_cmd_strlen(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_k_strlen(c, cmd, false);
}

/* SCAN's keys that pass MATCH and TYPE, collected by the engine's
 * callback (which may not call back into the server). */
struct scan_ctx {
	struct net_buf keys; /* each as a size_t length then the bytes */
	size_t n;
	int oom;
	const char *pat;     /* MATCH pattern, or NULL */
	size_t patlen;
	int none;            /* TYPE names a type no key has */
};

static int scan_cb(void *ctx, const void *key, size_t klen)
{
	struct scan_ctx *sc = ctx;

	if (sc->none || (sc->pat && !net_glob_match(sc->pat, sc->patlen, key,
						    klen, 0)))
		return 0;
	if (net_buf_append(&sc->keys, &klen, sizeof klen) != NET_RESP_OK ||
	    net_buf_append(&sc->keys, key, klen) != NET_RESP_OK) {
		sc->oom = 1;
		return 1;
	}
	sc->n++;
	return 0;
}

void net_cmd_scan(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct scan_ctx sc = { NET_BUF_INIT, 0, 0, NULL, 0, 0 };
	size_t count = 10, off;
	unsigned long long cursor = 0;
	uint64_t next = 0;
	char *end;
	char num[24];
	int rc;

	/* The cursor: an unsigned decimal, as Redis. */
	if (cmd->argvlen[1] == 0 || cmd->argvlen[1] > 20 ||
	    cmd->argv[1][0] < '0' || cmd->argv[1][0] > '9') {
		net_reply_error(c, "ERR invalid cursor");
		return;
	}
	memcpy(num, cmd->argv[1], cmd->argvlen[1]);
	num[cmd->argvlen[1]] = '\0';
	errno = 0;
	cursor = strtoull(num, &end, 10);
	if (*end || errno) {
		net_reply_error(c, "ERR invalid cursor");
		return;
	}
	for (size_t i = 2; i < cmd->argc; i += 2) {
		long long v;

		if (i + 1 >= cmd->argc) {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
		if (net_arg_is(cmd, i, "MATCH")) {
			sc.pat = cmd->argv[i + 1];
			sc.patlen = cmd->argvlen[i + 1];
		} else if (net_arg_is(cmd, i, "COUNT")) {
			if (net_arg_int(cmd, i + 1, &v) != 0) {
				net_reply_error(c, NET_ERR_NOTINT);
				return;
			}
			if (v < 1) {
				net_reply_error(c, NET_ERR_SYNTAX);
				return;
			}
			count = (size_t)v;
		} else if (net_arg_is(cmd, i, "TYPE")) {
			/* Every key is a string. */
			sc.none = !net_arg_is(cmd, i + 1, "string");
		} else {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
	}
	rc = kvs_scan(c->w->srv->db, cursor, count, scan_cb, &sc, &next);
	if (rc != KVS_OK || sc.oom) {
		net_buf_free(&sc.keys);
		net_reply_kvs_error_here(c, rc != KVS_OK ? rc : KVS_ENOMEM,
				 NET_STORE_READ);
		return;
	}
	net_reply_array(c, 2);
	snprintf(num, sizeof num, "%" PRIu64, next);
	net_reply_str(c, num);
	net_reply_array(c, sc.n);
	for (off = 0; off < sc.keys.len;) {
		size_t klen;

		memcpy(&klen, sc.keys.data + off, sizeof klen);
		off += sizeof klen;
		net_reply_bulk(c, sc.keys.data + off, klen);
		off += klen;
	}
	net_buf_free(&sc.keys);
}
