/*
 * keyop.h - what the key commands (cmd_read.c, cmd_write.c, cmd_expire.c,
 * cmd_keys.c) share: a command made of KVS_OP_UPDATE ops whose replies are
 * pure functions of the keys' states (struct net_kop), the expiry-time
 * arithmetic of Redis's options, and the time-to-live figures.  keyop.c
 * implements it.
 *
 * Every key command has two forms.  Alone, it reads directly on the worker
 * (kvs_lookup) or adds plain ops (SET, REMOVE, INCR) where it can, and
 * update ops where it must read before it writes (SET ... GET, GETEX,
 * EXPIRE, RENAME...).  Inside a transaction (cmd_keys.h's
 * net_keys_as_update) every command becomes update ops, so that it sees
 * the earlier commands of the same atomic batch: `upd` below is true.  In
 * both forms the decision and the reply come from the same function of the
 * key's state, `struct kvs_update` (found, val, vlen, expire_ms in; action,
 * new value and expiry out), so they cannot differ.
 *
 * Threads: everything but a step's body runs on the connection's worker;
 * a step (net_kop_step) runs on the engine's writer thread and touches only
 * its command's state, u, and net_upd_alloc() memory.
 */
#ifndef KVS_NET_KEYOP_H
#define KVS_NET_KEYOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server_int.h"
#include "ttl.h"

/* A key command's handler in either form: upd = all as update ops, with
 * its arguments copied (the caller may release cmd once it returns). */
typedef void net_kcmd_fn(struct net_conn *c, const struct net_resp_cmd *cmd,
			 bool upd);

struct net_kop;
/* Op i (0-based, in order) of command k, with its key's state u: sets
 * u->action (and the new value, which must be k's memory: net_upd_alloc or
 * an argument kept with net_kop_keep), appends to the reply with
 * net_kop_put_*().  Writer thread.  The return value is the op's result
 * (KVS_OK). */
typedef int net_kop_step(struct net_kop *k, size_t i, struct kvs_update *u);

/* The state of a command of update ops: a command's own state embeds it as
 * its first member. */
struct net_kop {
	struct net_upd upd;   /* first: batch.c's (the reply is built here) */
	net_kop_step *step;
	size_t n;             /* its ops */
	size_t next;          /* the next op's index (steps run in order) */
	bool copy;            /* arguments are copied (upd form) */
	bool oom;             /* a reply piece failed: no reply (batch.c then
				 answers "OOM out of memory") */
	bool *absent;         /* NULL, or per op: its key cannot exist (empty
				 or too long), so the step sees it absent */
};

/* Begin a command of update ops: a zeroed state of `size` bytes (at least
 * sizeof(struct net_kop)) living until the batch is answered, or NULL after
 * replying with the error (out of memory). */
struct net_kop *net_kop_begin(struct net_conn *c, size_t size,
			      net_kop_step *step, bool copy);

/* Bytes an op or a step uses after the command returns: argv memory when
 * not copying (it stays valid while the batch is in flight), else a copy.
 * NULL when out of memory. */
const char *net_kop_keep(struct net_kop *k, const char *p, size_t n);

/* Add k with its keys keys[0..n) (lens[i] each): one update op each, in
 * order.  A key the engine cannot hold is read as absent (its op uses a
 * placeholder key and never writes).  Replies with the error if out of
 * memory. */
void net_kop_add(struct net_conn *c, struct net_kop *k, size_t n,
		 const char *const *keys, const size_t *lens);
/* The same for one key. */
void net_kop_add1(struct net_conn *c, struct net_kop *k, const char *key,
		  size_t klen);

/* A command whose reply is `prebuilt` (RESP bytes) or made by `step` on the
 * writer thread, with no key of its own: one op on a placeholder key that
 * is never written.  For errors inside a transaction, and TIME. */
void net_kop_reply_only(struct net_conn *c, const char *prebuilt, size_t len,
			net_kop_step *step);

/* Reply pieces of a step (writer thread). */
void net_kop_put_int(struct net_kop *k, long long v);
void net_kop_put_bulk(struct net_kop *k, const void *p, size_t n);
void net_kop_put_null(struct net_kop *k);
void net_kop_put_simple(struct net_kop *k, const char *s);
void net_kop_put_error(struct net_kop *k, const char *msg);
void net_kop_put_array(struct net_kop *k, size_t n);

/* A copy of the key's value in k's memory (a step that sets the key to what
 * it holds, e.g. with another expiry), or NULL (out of memory). */
const void *net_kop_copy_val(struct net_kop *k, const struct kvs_update *u);

/* Fill u's "in" fields with key's state read directly on the worker
 * (kvs_lookup; the value only if want_val: then release u->val with
 * kvs_free).  A key the engine cannot hold is absent.  Returns KVS_OK or a
 * read error (KVS_EIO, KVS_ECORRUPT, KVS_ENOMEM). */
int net_key_read(struct kvs *db, const char *key, size_t klen, bool want_val,
		 struct kvs_update *u);

/* ---- the commands' two forms (for cmd_keys.c's transaction table) ---------- */

/* cmd_read.c */
net_kcmd_fn net_k_get, net_k_mget, net_k_exists, net_k_strlen;
/* cmd_write.c */
net_kcmd_fn net_k_set, net_k_setnx, net_k_setex, net_k_psetex, net_k_mset,
	net_k_del, net_k_incr, net_k_decr, net_k_incrby, net_k_decrby,
	net_k_getdel;
/* cmd_expire.c */
net_kcmd_fn net_k_expire, net_k_pexpire, net_k_expireat, net_k_pexpireat,
	net_k_ttl, net_k_pttl, net_k_expiretime, net_k_pexpiretime,
	net_k_persist, net_k_getex, net_k_time;

#endif /* KVS_NET_KEYOP_H */
