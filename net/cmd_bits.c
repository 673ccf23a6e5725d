/* cmd_bits.c - the bit commands SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
 * BITFIELD and BITFIELD_RO, each as a parse and a step (str_run.h).
 * Parsing runs on the connection's worker; a step runs on the worker (a
 * read alone) or on the engine's writer thread (an update op). */
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "reply.h"
#include "str_run.h"
#include "strops.h"

#define ERR_OFFSET "ERR bit offset is not an integer or out of range"

/* Op 0 on the key in argument 1. */
static void key_op(struct net_str *st, const struct net_resp_cmd *cmd,
		   bool write)
{
	struct net_str_op *op = net_str_ops(st);

	op->key = cmd->argv[1];
	op->klen = cmd->argvlen[1];
	op->write = write;
	st->nops = 1;
}

/* A bit offset (Redis's rule): a non-negative integer whose byte is inside
 * the largest string.  With `hash`, "#n" means n fields of `bits` bits. */
static bool bit_offset(const struct net_resp_cmd *cmd, size_t a, bool hash,
		       unsigned bits, uint64_t *out)
{
	const char *s = cmd->argv[a];
	size_t n = cmd->argvlen[a];
	size_t h = hash && n > 0 && s[0] == '#';
	int64_t v;

	if (!kvs_parse_int64(s + h, n - h, &v) || v < 0)
		return false;
	if (h) {
		if ((uint64_t)v > NET_STR_MAX * 8 / bits)
			return false;
		v *= bits;
	}
	if ((uint64_t)v >> 3 >= NET_STR_MAX)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* p[0..len) grown with zero bytes to at least `need`, in a new value. */
static uint8_t *grown_copy(struct net_str *st, const struct kvs_update *u,
			   size_t need, size_t *newlen)
{
	size_t len = u->found ? u->vlen : 0;
	uint8_t *p;

	*newlen = need > len ? need : len;
	if (!(p = net_str_alloc(st, *newlen)))
		return NULL;
	if (len)
		memcpy(p, u->val, len);
	memset(p + len, 0, *newlen - len);
	return p;
}

/* ---- SETBIT key offset value, GETBIT key offset --------------------------- */

struct st_bit {
	struct net_str s;
	uint64_t off;
	int on;
};
NET_STR_SIZE_FN(size_bit, struct st_bit, 1)

static const char *parse_setbit(struct net_str *st,
				const struct net_resp_cmd *cmd)
{
	struct st_bit *x = (struct st_bit *)st;
	long long on;

	if (!bit_offset(cmd, 2, false, 0, &x->off))
		return ERR_OFFSET;
	if (net_arg_int(cmd, 3, &on) != 0 || (on & ~1))
		return "ERR bit is not an integer or out of range";
	x->on = (int)on;
	key_op(st, cmd, true);
	return NULL;
}

static void step_setbit(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_bit *x = (struct st_bit *)st;
	int old = u->found ? net_str_getbit(u->val, u->vlen, x->off) : 0;
	size_t newlen;
	uint8_t *p;

	(void)i;
	/* Unchanged (present, long enough, same bit): no write at all. */
	if (u->found && (x->off >> 3) < u->vlen && old == x->on) {
		net_str_put_int(st, old);
		return;
	}
	if (!(p = grown_copy(st, u, (size_t)(x->off >> 3) + 1, &newlen)))
		return;
	net_str_bf_put(p, x->off, (struct net_bftype){ false, 1 }, x->on);
	net_str_put_int(st, old);
	net_str_set(st, u, p, newlen, u->found ? u->expire_ms : 0);
}

static const struct net_str_spec spec_setbit = {
	"setbit", 4, true, size_bit, parse_setbit, step_setbit
};

static const char *parse_getbit(struct net_str *st,
				const struct net_resp_cmd *cmd)
{
	struct st_bit *x = (struct st_bit *)st;

	if (!bit_offset(cmd, 2, false, 0, &x->off))
		return ERR_OFFSET;
	key_op(st, cmd, false);
	return NULL;
}

static void step_getbit(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_bit *x = (struct st_bit *)st;

	(void)i;
	net_str_put_int(st, u->found ?
			    net_str_getbit(u->val, u->vlen, x->off) : 0);
}

static const struct net_str_spec spec_getbit = {
	"getbit", 3, false, size_bit, parse_getbit, step_getbit
};

/* ---- BITCOUNT key [start end [BYTE|BIT]], BITPOS key bit [start [end
 * [BYTE|BIT]]] ---------------------------------------------------------------
 * Redis answers a missing key before it reads the range: its errors are
 * kept (err) and given only when the key is present. */

struct st_count {
	struct net_str s;
	struct net_bitrange r;
	bool ranged;
	int bit;              /* BITPOS */
	const char *err;
};
NET_STR_SIZE_FN(size_count, struct st_count, 1)

/* The unit argument a of cmd into r; false if it is neither. */
static bool unit_arg(const struct net_resp_cmd *cmd, size_t a,
		     struct net_bitrange *r)
{
	if (net_arg_is(cmd, a, "BIT"))
		r->bits = true;
	else if (!net_arg_is(cmd, a, "BYTE"))
		return false;
	return true;
}

static const char *parse_bitcount(struct net_str *st,
				  const struct net_resp_cmd *cmd)
{
	struct st_count *x = (struct st_count *)st;
	long long s, e;

	key_op(st, cmd, false);
	if (cmd->argc == 2)
		return NULL;
	if (cmd->argc != 4 && cmd->argc != 5) {
		x->err = NET_ERR_SYNTAX;
		return NULL;
	}
	if (net_arg_int(cmd, 2, &s) != 0 || net_arg_int(cmd, 3, &e) != 0) {
		x->err = NET_ERR_NOTINT;
		return NULL;
	}
	x->ranged = true;
	x->r = (struct net_bitrange){ true, true, false, s, e };
	/* Crossed negative indexes count nothing, whatever the unit says. */
	if (s < 0 && e < 0 && s > e)
		return NULL;
	if (cmd->argc == 5 && !unit_arg(cmd, 4, &x->r))
		x->err = NET_ERR_SYNTAX;
	return NULL;
}

static void step_bitcount(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_count *x = (struct st_count *)st;

	(void)i;
	if (!u->found)
		net_str_put_int(st, 0);
	else if (x->err)
		net_str_put_error(st, x->err);
	else
		net_str_put_int(st, (long long)net_str_bitcount(
			u->val, u->vlen, x->ranged ? &x->r : NULL));
}

static const struct net_str_spec spec_bitcount = {
	"bitcount", -2, false, size_count, parse_bitcount, step_bitcount
};

static const char *parse_bitpos(struct net_str *st,
				const struct net_resp_cmd *cmd)
{
	struct st_count *x = (struct st_count *)st;
	long long bit, s, e;

	if (net_arg_int(cmd, 2, &bit) != 0)
		return NET_ERR_NOTINT;
	if (bit != 0 && bit != 1)
		return "ERR The bit argument must be 1 or 0.";
	x->bit = (int)bit;
	key_op(st, cmd, false);
	if (cmd->argc == 3)
		return NULL;
	if (cmd->argc > 6) {
		x->err = NET_ERR_SYNTAX;
		return NULL;
	}
	/* Redis's order: start, then the unit, then end. */
	x->ranged = true;
	if (net_arg_int(cmd, 3, &s) != 0) {
		x->err = NET_ERR_NOTINT;
		return NULL;
	}
	x->r = (struct net_bitrange){ true, false, false, s, 0 };
	if (cmd->argc == 6 && !unit_arg(cmd, 5, &x->r)) {
		x->err = NET_ERR_SYNTAX;
		return NULL;
	}
	if (cmd->argc >= 5) {
		if (net_arg_int(cmd, 4, &e) != 0) {
			x->err = NET_ERR_NOTINT;
			return NULL;
		}
		x->r.has_end = true;
		x->r.end = e;
	}
	return NULL;
}

static void step_bitpos(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_count *x = (struct st_count *)st;

	(void)i;
	/* A missing key is all zeros, without end. */
	if (!u->found)
		net_str_put_int(st, x->bit ? -1 : 0);
	else if (x->err)
		net_str_put_error(st, x->err);
	else
		net_str_put_int(st, net_str_bitpos(u->val, u->vlen, x->bit,
						   x->ranged ? &x->r : NULL));
}

static const struct net_str_spec spec_bitpos = {
	"bitpos", -3, false, size_count, parse_bitpos, step_bitpos
};

/* ---- BITOP op dest src [src ...] ------------------------------------------
 * An op per source, reading it, then the destination's, which writes.  The
 * destination may be a source too: it is read first, as in Redis. */

struct st_bitop {
	struct net_str s;
	enum net_bitop op;
	size_t n;             /* sources */
	const uint8_t **src;  /* their values (batch memory), from step 0 */
	size_t *len;
};

static size_t size_bitop(const struct net_resp_cmd *cmd, size_t *nops)
{
	*nops = cmd->argc - 2;
	return sizeof(struct st_bitop);
}

static const char *parse_bitop(struct net_str *st,
			       const struct net_resp_cmd *cmd)
{
	struct st_bitop *x = (struct st_bitop *)st;
	struct net_str_op *ops = net_str_ops(st);

	if (net_arg_is(cmd, 1, "AND"))
		x->op = NET_BITOP_AND;
	else if (net_arg_is(cmd, 1, "OR"))
		x->op = NET_BITOP_OR;
	else if (net_arg_is(cmd, 1, "XOR"))
		x->op = NET_BITOP_XOR;
	else if (net_arg_is(cmd, 1, "NOT"))
		x->op = NET_BITOP_NOT;
	else
		return NET_ERR_SYNTAX;
	if (x->op == NET_BITOP_NOT && cmd->argc != 4)
		return "ERR BITOP NOT must be called with a single source key.";
	x->n = cmd->argc - 3;
	for (size_t k = 0; k <= x->n; k++) {
		size_t a = k < x->n ? 3 + k : 2;

		ops[k].key = cmd->argv[a];
		ops[k].klen = cmd->argvlen[a];
		ops[k].write = k == x->n;
	}
	st->nops = x->n + 1;
	return NULL;
}

static void step_bitop(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_bitop *x = (struct st_bitop *)st;
	size_t maxlen = 0;
	uint8_t *p;

	if (i == 0) {
		x->src = net_str_alloc(st, x->n * sizeof *x->src);
		x->len = net_str_alloc(st, x->n * sizeof *x->len);
	}
	if (st->oom)
		return;
	if (i < x->n) {
		x->src[i] = u->found ? net_str_keep(st, u) : NULL;
		x->len[i] = u->found ? u->vlen : 0;
		return;
	}
	for (size_t k = 0; k < x->n; k++)
		if (x->len[k] > maxlen)
			maxlen = x->len[k];
	if (maxlen == 0) { /* an empty result removes the destination */
		net_str_put_int(st, 0);
		if (u->found && !st->oom)
			u->action = KVS_UPD_REMOVE;
		return;
	}
	if (!(p = net_str_alloc(st, maxlen)))
		return;
	net_str_bitop(x->op, x->src, x->len, x->n, p, maxlen);
	net_str_put_int(st, (long long)maxlen);
	net_str_set(st, u, p, maxlen, 0);
}

static const struct net_str_spec spec_bitop = {
	"bitop", -4, true, size_bitop, parse_bitop, step_bitop
};

/* ---- BITFIELD key [GET type offset] [SET type offset value] [INCRBY type
 * offset increment] [OVERFLOW WRAP|SAT|FAIL] ..., BITFIELD_RO (GETs) ----- */

enum { BF_GET, BF_SET, BF_INCRBY };

struct bf_op {
	uint64_t off;
	int64_t arg;
	struct net_bftype t;
	int code;
	enum net_bfow ow;
};

struct st_bitfield {
	struct net_str s;
	bool readonly;        /* GETs only */
	uint64_t top;         /* the last bit a SET or INCRBY touches */
	size_t n;
	struct bf_op ops[];   /* every subcommand takes 2 arguments at least */
};

static size_t size_bitfield(const struct net_resp_cmd *cmd, size_t *nops)
{
	*nops = 1;
	return sizeof(struct st_bitfield) +
	       (cmd->argc / 2) * sizeof(struct bf_op);
}

static bool bf_type(const struct net_resp_cmd *cmd, size_t a,
		    struct net_bftype *t)
{
	const char *s = cmd->argv[a];
	size_t n = cmd->argvlen[a];
	int64_t bits;

	if (n == 0 || (s[0] != 'i' && s[0] != 'u') ||
	    !kvs_parse_int64(s + 1, n - 1, &bits) || bits < 1 ||
	    bits > (s[0] == 'i' ? 64 : 63))
		return false;
	t->sign = s[0] == 'i';
	t->bits = (unsigned)bits;
	return true;
}

static const char *parse_bitfield_any(struct net_str *st,
				      const struct net_resp_cmd *cmd, bool ro)
{
	struct st_bitfield *x = (struct st_bitfield *)st;
	enum net_bfow ow = NET_BFOW_WRAP;

	x->readonly = true;
	for (size_t j = 2; j < cmd->argc; j++) {
		size_t rem = cmd->argc - j - 1;
		struct bf_op *op = &x->ops[x->n];

		if (net_arg_is(cmd, j, "GET") && rem >= 2) {
			op->code = BF_GET;
		} else if (net_arg_is(cmd, j, "SET") && rem >= 3) {
			op->code = BF_SET;
		} else if (net_arg_is(cmd, j, "INCRBY") && rem >= 3) {
			op->code = BF_INCRBY;
		} else if (net_arg_is(cmd, j, "OVERFLOW") && rem >= 1) {
			j++;
			if (net_arg_is(cmd, j, "WRAP"))
				ow = NET_BFOW_WRAP;
			else if (net_arg_is(cmd, j, "SAT"))
				ow = NET_BFOW_SAT;
			else if (net_arg_is(cmd, j, "FAIL"))
				ow = NET_BFOW_FAIL;
			else
				return "ERR Invalid OVERFLOW type specified";
			continue;
		} else {
			return NET_ERR_SYNTAX;
		}
		if (!bf_type(cmd, j + 1, &op->t))
			return "ERR Invalid bitfield type. Use something like "
			       "i16 u8. Note that u64 is not supported but "
			       "i64 is.";
		if (!bit_offset(cmd, j + 2, true, op->t.bits, &op->off))
			return ERR_OFFSET;
		if (op->code != BF_GET) {
			long long v;

			x->readonly = false;
			if (op->off + op->t.bits - 1 > x->top)
				x->top = op->off + op->t.bits - 1;
			if (net_arg_int(cmd, j + 3, &v) != 0)
				return NET_ERR_NOTINT;
			op->arg = v;
		}
		op->ow = ow;
		x->n++;
		j += op->code == BF_GET ? 2 : 3;
	}
	if (ro && !x->readonly)
		return "ERR BITFIELD_RO only supports the GET subcommand";
	/* A field may start inside the largest string and end past it:
	 * Redis then makes a longer string; the engine cannot hold one. */
	if (!x->readonly && (x->top >> 3) + 1 > NET_STR_MAX)
		return "ERR string exceeds maximum allowed size "
		       "(proto-max-bulk-len)";
	/* GETs alone read: a key the engine cannot hold is absent. */
	key_op(st, cmd, !x->readonly);
	return NULL;
}

static const char *parse_bitfield(struct net_str *st,
				  const struct net_resp_cmd *cmd)
{
	return parse_bitfield_any(st, cmd, false);
}

static const char *parse_bitfield_ro(struct net_str *st,
				     const struct net_resp_cmd *cmd)
{
	return parse_bitfield_any(st, cmd, true);
}

static void step_bitfield(struct net_str *st, size_t i, struct kvs_update *u)
{
	struct st_bitfield *x = (struct st_bitfield *)st;
	const uint8_t *src = u->found ? u->val : NULL;
	size_t len = u->found ? u->vlen : 0;
	uint8_t *p = NULL;
	bool changed = false;

	(void)i;
	/* A write makes room up to its farthest bit first, as Redis does,
	 * even when every write then fails its overflow check. */
	if (!x->readonly) {
		if (!(p = grown_copy(st, u, (size_t)(x->top >> 3) + 1, &len)))
			return;
		changed = !u->found || len != u->vlen;
		src = p;
	}
	net_str_put_array(st, x->n);
	for (size_t k = 0; k < x->n; k++) {
		const struct bf_op *op = &x->ops[k];
		int64_t old = net_str_bf_get(src, len, op->off, op->t), v;

		if (op->code == BF_GET) {
			net_str_put_int(st, old);
		} else if (!net_str_bf_apply(op->t, op->ow,
					     op->code == BF_INCRBY, old,
					     op->arg, &v)) {
			net_str_put_null(st); /* OVERFLOW FAIL */
		} else {
			net_str_put_int(st, op->code == BF_INCRBY ? v : old);
			net_str_bf_put(p, op->off, op->t, v);
			changed |= v != old;
		}
	}
	if (changed)
		net_str_set(st, u, p, len, u->found ? u->expire_ms : 0);
}

static const struct net_str_spec spec_bitfield = {
	"bitfield", -2, true, size_bitfield, parse_bitfield, step_bitfield
};
static const struct net_str_spec spec_bitfield_ro = {
	"bitfield_ro", -2, false, size_bitfield, parse_bitfield_ro,
	step_bitfield
};

/* ---- the handlers --------------------------------------------------------- */

#define HANDLER(fn, spec)                                                   \
	void fn(struct net_conn *c, const struct net_resp_cmd *cmd)         \
	{                                                                   \
		net_str_run(c, cmd, &spec, false);                          \
	}
HANDLER(net_cmd_setbit, spec_setbit)
HANDLER(net_cmd_getbit, spec_getbit)
HANDLER(net_cmd_bitcount, spec_bitcount)
HANDLER(net_cmd_bitpos, spec_bitpos)
HANDLER(net_cmd_bitop, spec_bitop)
HANDLER(net_cmd_bitfield, spec_bitfield)
HANDLER(net_cmd_bitfield_ro, spec_bitfield_ro)

static const struct net_str_spec *const specs[] = {
	&spec_setbit, &spec_getbit, &spec_bitcount, &spec_bitpos,
	&spec_bitop, &spec_bitfield, &spec_bitfield_ro,
};

const struct net_str_spec *net_bits_spec(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
		if (strlen(specs[i]->name) == len &&
		    strncasecmp(specs[i]->name, name, len) == 0)
			return specs[i];
	return NULL;
}
