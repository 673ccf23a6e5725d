/* str_run.c - runs a command of the string family (str_run.h): parses it,
 * then either reads its keys and runs its steps on the connection's worker
 * (a read, alone), or makes its keys update ops of the connection's batch
 * whose callback runs the steps on the engine's writer thread (a write, or
 * any command inside EXEC).  The step helpers (net_str_put_*, keep, alloc,
 * set) run on whichever of the two threads runs the step. */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check.h"
#include "reply.h"
#include "str_run.h"

/* ---- step helpers --------------------------------------------------------- */

static void put_rc(struct net_str *st, int rc)
{
	if (rc != NET_RESP_OK)
		st->oom = true;
}

void net_str_put_int(struct net_str *st, long long v)
{
	if (!st->oom)
		put_rc(st, net_resp_put_int(st->out, v));
}

void net_str_put_bulk(struct net_str *st, const void *p, size_t n)
{
	if (!st->oom)
		put_rc(st, net_resp_put_bulk(st->out, p, n));
}

void net_str_put_null(struct net_str *st)
{
	if (!st->oom)
		put_rc(st, net_resp_put_null(st->out));
}

void net_str_put_array(struct net_str *st, size_t n)
{
	if (!st->oom)
		put_rc(st, net_resp_put_array(st->out, n));
}

void net_str_put_error(struct net_str *st, const char *msg)
{
	if (!st->oom)
		put_rc(st, net_resp_put_error(st->out, msg));
}

const void *net_str_keep(struct net_str *st, const struct kvs_update *u)
{
	void *p;

	if (u->vlen == 0)
		return "";
	if (st->direct)
		return u->val;
	if (!(p = net_upd_alloc(&st->upd, u->vlen))) {
		st->oom = true;
		return NULL;
	}
	memcpy(p, u->val, u->vlen);
	return p;
}

void *net_str_alloc(struct net_str *st, size_t n)
{
	void *p;

	KVS_ASSERT(!st->direct);
	if (!(p = net_upd_alloc(&st->upd, n ? n : 1)))
		st->oom = true;
	return p;
}

void net_str_set(struct net_str *st, struct kvs_update *u, const void *val,
		 size_t n, int64_t exp)
{
	if (st->oom)
		return; /* the reply says OOM: nothing may have changed */
	u->action = KVS_UPD_SET;
	u->new_val = val;
	u->new_vlen = n;
	u->new_expire_ms = exp;
}

/* ---- running the steps ---------------------------------------------------- */

/* Op i, whose key the engine cannot hold: absent.  Its step's decision is
 * dropped (such ops only read). */
static void run_virtual(struct net_str *st, size_t i)
{
	const struct net_str_op *op = &net_str_ops(st)[i];
	struct kvs_update u;

	memset(&u, 0, sizeof u);
	u.key = op->key;
	u.klen = op->klen;
	st->spec->step(st, i, &u);
	st->ran = i + 1;
}

/* The update callback of op uctx, on the writer thread.  Steps must run in
 * order, once each: the virtual ops between the last step and this one run
 * first, and after the command's last real op, the virtual ones after it.
 * A real op whose step never ran had a key the engine could not read (its
 * result is the read error, which batch.c replies): nothing more runs. */
static int str_update(void *uctx, struct kvs_update *u)
{
	struct net_str_op *op = uctx;
	struct net_str *st = op->st;
	struct net_str_op *ops = net_str_ops(st);
	size_t j;

	u->action = KVS_UPD_KEEP;
	if (st->broken)
		return KVS_OK;
	for (j = st->ran; j < op->i; j++) {
		if (!ops[j].virt) {
			st->broken = true;
			return KVS_OK;
		}
		run_virtual(st, j);
	}
	st->spec->step(st, op->i, u);
	st->ran = op->i + 1;
	for (j = op->i + 1; j < st->nops && ops[j].virt; j++)
		;
	if (j == st->nops)
		for (j = op->i + 1; j < st->nops; j++)
			run_virtual(st, j);
	/* No reply: batch.c answers the out-of-memory error. */
	if (st->ran == st->nops && st->oom)
		st->upd.reply.len = 0;
	return KVS_OK;
}

/* A key's state as the worker reads it. */
struct looked {
	void *val;
	size_t vlen;
	int64_t exp;
	bool found;
};

/* Read every key of st, then run every step, on the worker; the reply goes
 * straight to c's. */
static void run_direct(struct net_conn *c, struct net_str *st)
{
	struct net_str_op *ops = net_str_ops(st);
	struct looked *k = calloc(st->nops ? st->nops : 1, sizeof *k);
	size_t i, mark;

	if (!k) {
		net_reply_error(c, "OOM out of memory");
		return;
	}
	for (i = 0; i < st->nops; i++) {
		int rc;

		if (ops[i].virt)
			continue;
		rc = kvs_lookup(c->w->srv->db, ops[i].key, ops[i].klen,
				&k[i].val, &k[i].vlen, &k[i].exp);
		if (rc == KVS_OK) {
			k[i].found = true;
		} else if (rc != KVS_ENOTFOUND) {
			net_reply_kvs_error_here(c, rc, NET_STORE_READ);
			goto out;
		}
	}
	st->direct = true;
	st->out = net_reply_buf(c);
	mark = st->out->len;
	for (i = 0; i < st->nops; i++) {
		struct kvs_update u;

		memset(&u, 0, sizeof u);
		u.key = ops[i].key;
		u.klen = ops[i].klen;
		u.found = k[i].found;
		u.val = k[i].found ? k[i].val : NULL;
		u.vlen = k[i].vlen;
		u.expire_ms = k[i].exp;
		st->spec->step(st, i, &u);
		st->ran = i + 1;
	}
	if (st->oom)
		st->out->len = mark; /* no half reply before the close */
	net_reply_check(c, st->oom ? NET_RESP_ENOMEM : NET_RESP_OK);
out:
	for (i = 0; i < st->nops; i++)
		kvs_free(k[i].val);
	free(k);
}

void net_str_run(struct net_conn *c, const struct net_resp_cmd *cmd,
		 const struct net_str_spec *spec, bool as_update)
{
	const size_t hdr = sizeof(struct net_upd);
	struct net_str *tmp, *st;
	struct net_str_op *ops;
	struct kvs_op *kops;
	size_t cap = 0, size, off, total, nreal = 0, i, j;
	const char *err;

	KVS_ASSERT(net_on_worker(c->w));
	size = spec->size(cmd, &cap);
	KVS_ASSERT(size >= sizeof *st);
	off = (size + alignof(struct net_str_op) - 1) &
	      ~(alignof(struct net_str_op) - 1);
	if (cap > (SIZE_MAX - off) / sizeof *ops ||
	    !(tmp = calloc(1, total = off + cap * sizeof *ops))) {
		net_reply_error(c, "OOM out of memory");
		return;
	}
	tmp->spec = spec;
	tmp->opsoff = off;
	if ((err = spec->parse(tmp, cmd)) != NULL) {
		net_reply_error(c, err);
		goto out;
	}
	KVS_ASSERT(tmp->nops <= cap);
	ops = net_str_ops(tmp);
	for (i = 0; i < tmp->nops; i++) {
		int rc = kvs_check_key(c->w->srv->db, ops[i].key,
				       ops[i].klen);
		if (rc == KVS_OK) {
			nreal++;
		} else if (ops[i].write) {
			net_reply_kvs_error_here(c, rc, NET_STORE_WRITE);
			goto out;
		} else {
			ops[i].virt = true;
		}
	}
	/* A read alone, or a command no key of which can exist: nothing the
	 * batch could change, so the steps run here. */
	if (!(spec->write || as_update) || nreal == 0) {
		run_direct(c, tmp);
		goto out;
	}
	/* The batch's state keeps its own link (upd); the rest is ours.
	 * Nothing in it points into itself, so it may be copied. */
	if (!(st = (struct net_str *)(void *)net_batch_upd(c, total)))
		goto out;
	memcpy((char *)st + hdr, (char *)tmp + hdr, total - hdr);
	st->out = &st->upd.reply;
	ops = net_str_ops(st);
	if (!(kops = net_batch_ops(c, nreal)))
		goto out;
	for (i = 0, j = 0; i < st->nops; i++) {
		ops[i].st = st;
		ops[i].i = i;
		if (ops[i].virt)
			continue;
		kops[j].type = KVS_OP_UPDATE;
		kops[j].key = ops[i].key;
		kops[j].klen = ops[i].klen;
		kops[j].update = str_update;
		kops[j].uctx = &ops[i];
		j++;
	}
	net_batch_add_upd(c, &st->upd, nreal);
out:
	free(tmp);
}
