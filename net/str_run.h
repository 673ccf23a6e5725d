/*
 * str_run.h - the string family's internal header: how its commands
 * (cmd_string.c, cmd_bits.c) are described and run.  str_run.c implements
 * the runner; nothing outside the family includes this (MULTI uses
 * cmd_string.h).
 *
 * A command of the family is three parts, so that it runs the same alone
 * and inside EXEC:
 *   parse: checks the arguments and fills the command's state; no store
 *     access.  An error here is replied at once (a runtime error inside
 *     EXEC, as in Redis, where only arity is checked while queueing).
 *   ops: the keys it touches, in order (st->ops[0 .. nops)).
 *   step: given one key's current state (struct kvs_update: found, value,
 *     expiry), appends to the reply (net_str_put_*) and, for a write,
 *     decides what the key becomes (u->action).  Pure: it sees only its
 *     state and u, never the connection.
 * The runner then either reads the keys on the worker (kvs_lookup) and
 * calls the steps there (a read, alone), or makes each op a KVS_OP_UPDATE
 * of the connection's batch, whose callback calls the step on the engine's
 * writer thread with the key as the batch's earlier writes left it (a
 * write, or any command inside EXEC).
 */
#ifndef KVS_NET_STR_RUN_H
#define KVS_NET_STR_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "server_int.h"

struct net_str;

/* One key a command touches: an op of its batch, or "virtual" when the
 * engine could not hold the key (kvs_check_key refused it: empty, too long),
 * which therefore is absent. */
struct net_str_op {
	const char *key;          /* in the command's arguments */
	size_t klen;
	const char *val;          /* the op's own argument (MSETNX), or NULL */
	size_t vlen;
	bool write;               /* may write the key: a key the engine
				     refuses is then an error, not absent */
	bool virt;                /* not sent: absent (set by the runner) */
	struct net_str *st;       /* (the runner's: the callback's uctx) */
	size_t i;
};

struct net_str_spec {
	const char *name;         /* lower case, as dispatch.c's table */
	int arity;                /* as dispatch.c's table */
	bool write;               /* runs through the batch even alone */
	/* Bytes of the command's state (at least sizeof(struct net_str),
	 * which it embeds first) and the number of ops it may use. */
	size_t (*size)(const struct net_resp_cmd *cmd, size_t *nops);
	/* Fill st and its ops (st->nops of them); NULL, or the error. */
	const char *(*parse)(struct net_str *st,
			     const struct net_resp_cmd *cmd);
	/* Op i's key is in state u.  Steps run in order, once each. */
	void (*step)(struct net_str *st, size_t i, struct kvs_update *u);
};

/* The state every command of the family embeds as its first member. */
struct net_str {
	struct net_upd upd;       /* first: the batch's (update mode) */
	const struct net_str_spec *spec;
	bool direct;              /* steps run on the worker (a read, alone) */
	bool oom;                 /* a reply piece or a value could not be
				     allocated: the reply becomes the error */
	struct net_buf *out;      /* where the reply goes */
	size_t nops;              /* set by parse */
	size_t opsoff;            /* the ops array, from the state's start */
	size_t ran;               /* steps run so far */
	bool broken;              /* an op's key could not be read (its step
				     was not called): later steps do nothing */
};

static inline struct net_str_op *net_str_ops(struct net_str *st)
{
	return (struct net_str_op *)(void *)((char *)st + st->opsoff);
}

/*
 * Run cmd (arity already checked) as spec says: reads alone on the worker,
 * writes and every command when as_update through c's batch.  Replies,
 * or adds to the batch, or replies with the error.  Worker thread.
 */
void net_str_run(struct net_conn *c, const struct net_resp_cmd *cmd,
		 const struct net_str_spec *spec, bool as_update);

/* cmd_bits.c: its command named name[0..len) (any case), or NULL; for
 * net_str_as_update(), which cmd_string.c owns. */
const struct net_str_spec *net_bits_spec(const char *name, size_t len);

/* ---- for the steps (any thread that runs them) ---------------------------- */

/* Reply pieces; after a failure (st->oom) they do nothing. */
void net_str_put_int(struct net_str *st, long long v);
void net_str_put_bulk(struct net_str *st, const void *p, size_t n);
void net_str_put_null(struct net_str *st);
void net_str_put_array(struct net_str *st, size_t n);
void net_str_put_error(struct net_str *st, const char *msg);

/* u's value kept for a later step of the same command: u->val itself on
 * the worker (the runner keeps what kvs_lookup gave until the end), a copy
 * in the batch's memory on the writer.  NULL (st->oom) if out of memory;
 * never NULL otherwise, even for an empty value. */
const void *net_str_keep(struct net_str *st, const struct kvs_update *u);

/* n bytes for a new value, alive until the batch is answered (update mode
 * only); NULL (st->oom) if out of memory. */
void *net_str_alloc(struct net_str *st, size_t n);

/* Set the key to val[0..n) with expiry exp (0: none), unless out of memory
 * made the reply an error, in which case nothing is written. */
void net_str_set(struct net_str *st, struct kvs_update *u, const void *val,
		 size_t n, int64_t exp);

/* Defines fn, the size function (struct net_str_spec.size) of a command
 * whose state is a fixed `type` and which uses n ops. */
#define NET_STR_SIZE_FN(fn, type, n)                                        \
	static size_t fn(const struct net_resp_cmd *cmd, size_t *nops)     \
	{                                                                   \
		(void)cmd;                                                  \
		*nops = (n);                                                \
		return sizeof(type);                                        \
	}

#endif /* KVS_NET_STR_RUN_H */
