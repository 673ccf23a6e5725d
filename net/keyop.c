/* keyop.c - the key commands' shared machinery (contracts in keyop.h):
 * commands made of update ops whose steps build the reply from the keys'
 * states, Redis's expiry-time arithmetic and TTL figures, and a key's
 * state read directly.  The worker runs it, but kop_update() and the
 * net_kop_put_*() pieces (the engine's writer thread). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check.h"
#include "keyop.h"
#include "reply.h"

/* The key of an op that has none of its own (a reply-only command, a key
 * the engine cannot hold): read, never written. */
static const char placeholder[] = "\0kvs-placeholder";

static int step_none(struct net_kop *k, size_t i, struct kvs_update *u)
{
	(void)k;
	(void)i;
	(void)u;
	return KVS_OK;
}

/* Every op of a net_kop: the steps run in order, so k->next says which one
 * this is.  The key an absent[] op names is shown absent and never
 * written. */
static int kop_update(void *uctx, struct kvs_update *u)
{
	struct net_kop *k = uctx;
	size_t i = k->next++;
	bool absent = k->absent && i < k->n && k->absent[i];
	int rc;

	if (i >= k->n)
		return KVS_OK;
	if (absent) {
		u->found = false;
		u->val = NULL;
		u->vlen = 0;
		u->expire_ms = 0;
	}
	rc = k->step(k, i, u);
	if (absent)
		u->action = KVS_UPD_KEEP;
	if (k->oom)
		k->upd.reply.len = 0;
	return rc;
}

struct net_kop *net_kop_begin(struct net_conn *c, size_t size,
			      net_kop_step *step, bool copy)
{
	struct net_kop *k = (struct net_kop *)net_batch_upd(c, size);

	if (k) {
		k->step = step;
		k->copy = copy;
	}
	return k;
}

const char *net_kop_keep(struct net_kop *k, const char *p, size_t n)
{
	char *q;

	if (!k->copy)
		return p;
	if (!(q = net_upd_alloc(&k->upd, n ? n : 1)))
		return NULL;
	memcpy(q, p, n);
	return q;
}

void net_kop_add(struct net_conn *c, struct net_kop *k, size_t n,
		 const char *const *keys, const size_t *lens)
{
	struct kvs *db = c->w->srv->db;
	struct kvs_op *ops;

	KVS_ASSERT(n > 0);
	if (!(ops = net_batch_ops(c, n)))
		return;
	for (size_t i = 0; i < n; i++) {
		const char *key = placeholder;
		size_t klen = sizeof placeholder - 1;

		if (keys[i] && kvs_check_key(db, keys[i], lens[i]) == KVS_OK) {
			if (!(key = net_kop_keep(k, keys[i], lens[i])))
				goto oom;
			klen = lens[i];
		} else {
			if (!k->absent) {
				if (!(k->absent = net_upd_alloc(&k->upd, n)))
					goto oom;
				memset(k->absent, 0, n);
			}
			k->absent[i] = true;
		}
		ops[i].type = KVS_OP_UPDATE;
		ops[i].key = key;
		ops[i].klen = klen;
		ops[i].update = kop_update;
		ops[i].uctx = k;
	}
	k->n = n;
	net_batch_add_upd(c, &k->upd, n);
	return;
oom:
	net_reply_error(c, "OOM out of memory");
}

void net_kop_add1(struct net_conn *c, struct net_kop *k, const char *key,
		  size_t klen)
{
	net_kop_add(c, k, 1, &key, &klen);
}

void net_kop_reply_only(struct net_conn *c, const char *prebuilt, size_t len,
			net_kop_step *step)
{
	struct net_kop *k = net_kop_begin(c, sizeof *k,
					  step ? step : step_none, false);

	if (!k)
		return;
	if (len && net_buf_append(&k->upd.reply, prebuilt, len) !=
		   NET_RESP_OK) {
		net_reply_error(c, "OOM out of memory");
		return;
	}
	net_kop_add1(c, k, NULL, 0);
}

/* ---- reply pieces (writer thread) ----------------------------------------- */

static void put_rc(struct net_kop *k, int rc)
{
	if (rc != NET_RESP_OK)
		k->oom = true;
}

void net_kop_put_int(struct net_kop *k, long long v)
{
	if (!k->oom)
		put_rc(k, net_resp_put_int(&k->upd.reply, v));
}

void net_kop_put_bulk(struct net_kop *k, const void *p, size_t n)
{
	if (!k->oom)
		put_rc(k, net_resp_put_bulk(&k->upd.reply, p, n));
}

void net_kop_put_null(struct net_kop *k)
{
	if (!k->oom)
		put_rc(k, net_resp_put_null(&k->upd.reply));
}

void net_kop_put_simple(struct net_kop *k, const char *s)
{
	if (!k->oom)
		put_rc(k, net_resp_put_simple(&k->upd.reply, s));
}

void net_kop_put_error(struct net_kop *k, const char *msg)
{
	if (!k->oom)
		put_rc(k, net_resp_put_error(&k->upd.reply, msg));
}

void net_kop_put_array(struct net_kop *k, size_t n)
{
	if (!k->oom)
		put_rc(k, net_resp_put_array(&k->upd.reply, n));
}

const void *net_kop_copy_val(struct net_kop *k, const struct kvs_update *u)
{
	void *p = net_upd_alloc(&k->upd, u->vlen ? u->vlen : 1);

	if (p && u->vlen)
		memcpy(p, u->val, u->vlen);
	if (!p)
		k->oom = true;
	return p;
}

int net_key_read(struct kvs *db, const char *key, size_t klen, bool want_val,
		 struct kvs_update *u)
{
	void *val = NULL;
	size_t vlen = 0;
	int64_t exp = 0;
	int rc;

	memset(u, 0, sizeof *u);
	u->key = key;
	u->klen = klen;
	if (kvs_check_key(db, key, klen) != KVS_OK)
		return KVS_OK;
	rc = kvs_lookup(db, key, klen, want_val ? &val : NULL, &vlen, &exp);
	if (rc == KVS_ENOTFOUND)
		return KVS_OK;
	if (rc != KVS_OK)
		return rc;
	u->found = true;
	u->val = val;
	u->vlen = vlen;
	u->expire_ms = exp;
	return KVS_OK;
}
