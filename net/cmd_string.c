/* cmd_string.c - the string commands APPEND, GETRANGE/SUBSTR, SETRANGE,
 * GETSET, MSETNX, INCRBYFLOAT and LCS, each as a parse and a step
 * (str_run.h), and net_str_as_update() for the whole family (MULTI).
 * Parsing runs on the connection's worker; a step runs on the worker (a
 * read alone) or on the engine's writer thread (an update op). */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "cmd_string.h"
#include "commands.h"
#include "reply.h"
#include "str_run.h"
#include "strops.h"

#define ERR_TOOBIG "ERR string exceeds maximum allowed size " \
		   "(proto-max-bulk-len)"
#define ERR_FLOAT  "ERR value is not a valid float"

/* Op i on argument a of cmd. */
static void set_op(struct net_str *st, size_t i,
		   const struct net_resp_cmd *cmd, size_t a, bool write)
{
	struct net_str_op *op = &net_str_ops(st)[i];

	op->key = cmd->argv[a];
	op->klen = cmd->argvlen[a];
	op->write = write;
}

/* Commands of one key and one argument (APPEND, GETSET, INCRBYFLOAT...). */
struct st_arg {
	struct net_str s;
	const char *arg;
	size_t len;
	long long off;        /* SETRANGE */
	long double incr;     /* INCRBYFLOAT */
};
NET_STR_SIZE_FN(size_arg, struct st_arg, 1)

/* ---- APPEND key value ----------------------------------------------------- */

static const char *parse_append(struct net_str *st,
				const struct net_resp_cmd *cmd)
{
	struct st_arg *x = (struct st_arg *)st;

	set_op(st, 0, cmd, 1, true);
	st->nops = 1;
	x->arg = cmd->argv[2];
	x->len = cmd->argvlen[2];
	return NULL;
}

static void step_append(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_arg *x = (struct st_arg *)st;
	char *p;

	(void)i;
	if (!u->found) {
		net_str_put_int(st, (long long)x->len);
		net_str_set(st, u, x->arg, x->len, 0);
		return;
	}
	if ((uint64_t)u->vlen + x->len > NET_STR_MAX) {
		net_str_put_error(st, ERR_TOOBIG);
		return;
	}
	if (!(p = net_str_alloc(st, u->vlen + x->len)))
		return;
	if (u->vlen)
		memcpy(p, u->val, u->vlen);
	memcpy(p + u->vlen, x->arg, x->len);
	net_str_put_int(st, (long long)(u->vlen + x->len));
	net_str_set(st, u, p, u->vlen + x->len, u->expire_ms);
}

static const struct net_str_spec spec_append = {
	"append", 3, true, size_arg, parse_append, step_append
};

/* ---- GETRANGE / SUBSTR key start end -------------------------------------- */

struct st_range {
	struct net_str s;
	long long start, end;
};
NET_STR_SIZE_FN(size_range, struct st_range, 1)

static const char *parse_range(struct net_str *st,
			       const struct net_resp_cmd *cmd)
{
	struct st_range *x = (struct st_range *)st;

	if (net_arg_int(cmd, 2, &x->start) != 0 ||
	    net_arg_int(cmd, 3, &x->end) != 0)
		return NET_ERR_NOTINT;
	set_op(st, 0, cmd, 1, false);
	st->nops = 1;
	return NULL;
}

static void step_range(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_range *x = (struct st_range *)st;
	size_t from = 0, n = 0;

	(void)i;
	if (u->found)
		net_str_range(x->start, x->end, u->vlen, &from, &n);
	net_str_put_bulk(st, n ? (const char *)u->val + from : "", n);
}

static const struct net_str_spec spec_getrange = {
	"getrange", 4, false, size_range, parse_range, step_range
};
static const struct net_str_spec spec_substr = {
	"substr", 4, false, size_range, parse_range, step_range
};

/* ---- SETRANGE key offset value -------------------------------------------- */

static const char *parse_setrange(struct net_str *st,
				  const struct net_resp_cmd *cmd)
{
	struct st_arg *x = (struct st_arg *)st;

	if (net_arg_int(cmd, 2, &x->off) != 0)
		return NET_ERR_NOTINT;
	if (x->off < 0)
		return "ERR offset is out of range";
	x->arg = cmd->argv[3];
	x->len = cmd->argvlen[3];
	/* Whatever the key holds, the result would pass the limit (an
	 * empty value writes nothing, so it is never refused). */
	if (x->len && (uint64_t)x->off + x->len > NET_STR_MAX)
		return ERR_TOOBIG;
	set_op(st, 0, cmd, 1, true);
	st->nops = 1;
	return NULL;
}

static void step_setrange(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_arg *x = (struct st_arg *)st;
	size_t off = (size_t)x->off, len = u->found ? u->vlen : 0, newlen;
	char *p;

	(void)i;
	if (x->len == 0) { /* nothing to write, and no key is made */
		net_str_put_int(st, (long long)len);
		return;
	}
	newlen = off + x->len > len ? off + x->len : len;
	if (!(p = net_str_alloc(st, newlen)))
		return;
	if (len)
		memcpy(p, u->val, len);
	if (off > len)
		memset(p + len, 0, off - len);
	memcpy(p + off, x->arg, x->len);
	net_str_put_int(st, (long long)newlen);
	net_str_set(st, u, p, newlen, u->found ? u->expire_ms : 0);
}

static const struct net_str_spec spec_setrange = {
	"setrange", 4, true, size_arg, parse_setrange, step_setrange
};

/* ---- GETSET key value (GETDEL is cmd_write.c's) ----------------------------------------- */

static void step_getset(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_arg *x = (struct st_arg *)st;

	(void)i;
	if (u->found)
		net_str_put_bulk(st, u->val, u->vlen);
	else
		net_str_put_null(st);
	net_str_set(st, u, x->arg, x->len, 0); /* as SET: the TTL goes */
}

static const struct net_str_spec spec_getset = {
	"getset", 3, true, size_arg, parse_append, step_getset
};

/* ---- MSETNX key value [key value ...] -------------------------------------
 * 2n ops: n that look whether each key is present, then n that set them,
 * which write only if none was. */

struct st_msetnx {
	struct net_str s;
	size_t n;
	bool any;             /* a key was present */
};

static size_t size_msetnx(const struct net_resp_cmd *cmd, size_t *nops)
{
	*nops = cmd->argc - 1;
	return sizeof(struct st_msetnx);
}

static const char *parse_msetnx(struct net_str *st,
				const struct net_resp_cmd *cmd)
{
	struct st_msetnx *x = (struct st_msetnx *)st;
	struct net_str_op *ops = net_str_ops(st);

	if (cmd->argc < 3 || (cmd->argc - 1) % 2)
		return "ERR wrong number of arguments for 'msetnx' command";
	x->n = (cmd->argc - 1) / 2;
	for (size_t k = 0; k < x->n; k++) {
		set_op(st, k, cmd, 1 + 2 * k, true);
		set_op(st, x->n + k, cmd, 1 + 2 * k, true);
		ops[x->n + k].val = cmd->argv[2 + 2 * k];
		ops[x->n + k].vlen = cmd->argvlen[2 + 2 * k];
	}
	st->nops = 2 * x->n;
	return NULL;
}

static void step_msetnx(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_msetnx *x = (struct st_msetnx *)st;
	const struct net_str_op *op = &net_str_ops(st)[i];

	if (i < x->n) {
		x->any |= u->found;
		return;
	}
	if (!x->any)
		net_str_set(st, u, op->val, op->vlen, 0);
	if (i == st->nops - 1)
		net_str_put_int(st, !x->any);
}

static const struct net_str_spec spec_msetnx = {
	"msetnx", -3, true, size_msetnx, parse_msetnx, step_msetnx
};

/* ---- INCRBYFLOAT key increment -------------------------------------------- */

static const char *parse_incrbyfloat(struct net_str *st,
				     const struct net_resp_cmd *cmd)
{
	struct st_arg *x = (struct st_arg *)st;

	if (!net_str_parse_ld(cmd->argv[2], cmd->argvlen[2], &x->incr))
		return ERR_FLOAT;
	set_op(st, 0, cmd, 1, true);
	st->nops = 1;
	return NULL;
}

static void step_incrbyfloat(struct net_str *st, size_t i,
			     struct kvs_update *u)
{
	struct st_arg *x = (struct st_arg *)st;
	char buf[NET_STR_LD_CHARS];
	long double v = 0;
	size_t n;
	char *p;

	(void)i;
	if (u->found && !net_str_parse_ld(u->val, u->vlen, &v)) {
		net_str_put_error(st, ERR_FLOAT);
		return;
	}
	v += x->incr;
	if (isnan(v) || isinf(v)) {
		net_str_put_error(st, "ERR increment would produce NaN or "
				  "Infinity");
		return;
	}
	n = net_str_format_ld(v, buf);
	if (!(p = net_str_alloc(st, n)))
		return;
	memcpy(p, buf, n);
	net_str_put_bulk(st, p, n);
	/* As INCR: the key keeps its time to live. */
	net_str_set(st, u, p, n, u->found ? u->expire_ms : 0);
}

static const struct net_str_spec spec_incrbyfloat = {
	"incrbyfloat", 3, true, size_arg, parse_incrbyfloat, step_incrbyfloat
};

/* ---- LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN] ---------- */

struct st_lcs {
	struct net_str s;
	bool len, idx, withlen;
	long long minlen;
	const void *a;        /* key1's value, kept for the second step */
	size_t alen;
};
NET_STR_SIZE_FN(size_lcs, struct st_lcs, 2)

static const char *parse_lcs(struct net_str *st,
			     const struct net_resp_cmd *cmd)
{
	struct st_lcs *x = (struct st_lcs *)st;

	for (size_t j = 3; j < cmd->argc; j++) {
		if (net_arg_is(cmd, j, "IDX")) {
			x->idx = true;
		} else if (net_arg_is(cmd, j, "LEN")) {
			x->len = true;
		} else if (net_arg_is(cmd, j, "WITHMATCHLEN")) {
			x->withlen = true;
		} else if (net_arg_is(cmd, j, "MINMATCHLEN") &&
			   j + 1 < cmd->argc) {
			if (net_arg_int(cmd, ++j, &x->minlen) != 0)
				return NET_ERR_NOTINT;
			if (x->minlen < 0)
				x->minlen = 0;
		} else {
			return NET_ERR_SYNTAX;
		}
	}
	if (x->len && x->idx)
		return "ERR If you want both the length and indexes, please "
		       "just use IDX.";
	set_op(st, 0, cmd, 1, false);
	set_op(st, 1, cmd, 2, false);
	st->nops = 2;
	return NULL;
}

static void put_lcs(struct net_str *st, const struct st_lcs *x,
		    const struct net_lcs *l)
{
	if (!x->idx) {
		if (x->len)
			net_str_put_int(st, l->len);
		else
			net_str_put_bulk(st, l->len ? l->str : "", l->len);
		return;
	}
	/* Redis's map (RESP2: a flat array) of the runs and the length. */
	net_str_put_array(st, 4);
	net_str_put_bulk(st, "matches", 7);
	net_str_put_array(st, l->nmatches);
	for (size_t k = 0; k < l->nmatches; k++) {
		const struct net_lcs_match *m = &l->matches[k];

		net_str_put_array(st, x->withlen ? 3 : 2);
		net_str_put_array(st, 2);
		net_str_put_int(st, m->a0);
		net_str_put_int(st, m->a1);
		net_str_put_array(st, 2);
		net_str_put_int(st, m->b0);
		net_str_put_int(st, m->b1);
		if (x->withlen)
			net_str_put_int(st, (long long)(m->a1 - m->a0) + 1);
	}
	net_str_put_bulk(st, "len", 3);
	net_str_put_int(st, l->len);
}

static void step_lcs(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_lcs *x = (struct st_lcs *)st;
	struct net_lcs l;
	int rc;

	if (i == 0) {
		x->a = u->found ? net_str_keep(st, u) : "";
		x->alen = u->found ? u->vlen : 0;
		return;
	}
	if (st->oom)
		return;
	rc = net_str_lcs(x->a, x->alen, u->found ? u->val : "",
			 u->found ? u->vlen : 0, !x->len && !x->idx, x->idx,
			 (uint64_t)x->minlen, &l);
	if (rc == NET_LCS_ETOOBIG) {
		net_str_put_error(st, "ERR Insufficient memory, transient "
				  "memory for LCS exceeds "
				  "proto-max-bulk-len");
		return;
	}
	if (rc != NET_LCS_OK) {
		net_str_put_error(st, "ERR Insufficient memory, failed "
				  "allocating transient memory for LCS");
		return;
	}
	put_lcs(st, x, &l);
	net_str_lcs_free(&l);
}

static const struct net_str_spec spec_lcs = {
	"lcs", -3, false, size_lcs, parse_lcs, step_lcs
};

/* ---- the handlers, and the family for MULTI ------------------------------ */

#define HANDLER(fn, spec)                                                   \
	void fn(struct net_conn *c, const struct net_resp_cmd *cmd)         \
	{                                                                   \
		net_str_run(c, cmd, &spec, false);                          \
	}
HANDLER(net_cmd_append, spec_append)
HANDLER(net_cmd_getrange, spec_getrange)
HANDLER(net_cmd_substr, spec_substr)
HANDLER(net_cmd_setrange, spec_setrange)
HANDLER(net_cmd_getset, spec_getset)
HANDLER(net_cmd_msetnx, spec_msetnx)
HANDLER(net_cmd_incrbyfloat, spec_incrbyfloat)
HANDLER(net_cmd_lcs, spec_lcs)

static const struct net_str_spec *const specs[] = {
	&spec_append, &spec_getrange, &spec_substr, &spec_setrange,
	&spec_getset, &spec_msetnx, &spec_incrbyfloat,
	&spec_lcs,
};

bool net_str_as_update(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	const struct net_str_spec *spec = NULL;
	const char *name = cmd->argv[0];
	size_t len = cmd->argvlen[0];
	int a;

	for (size_t i = 0; i < sizeof specs / sizeof specs[0] && !spec; i++)
		if (strlen(specs[i]->name) == len &&
		    strncasecmp(specs[i]->name, name, len) == 0)
			spec = specs[i];
	if (!spec && !(spec = net_bits_spec(name, len)))
		return false;
	a = spec->arity;
	if ((a > 0 && cmd->argc != (size_t)a) ||
	    (a < 0 && cmd->argc < (size_t)-a))
		net_reply_arity(c, spec->name);
	else
		net_str_run(c, cmd, spec, true);
	return true;
}
