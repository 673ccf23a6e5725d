/* batch.c - a connection's write batch, its one owner: the ops of the
 * pipelined write commands, their submission to the engine as one
 * kvs_submit(), the result the writer thread stores, and the replies, in
 * order with those held behind it.  Contracts in batch.h.  The
 * connection's worker runs it, except batch_done() (the engine's writer:
 * its thread, or the worker when it ran the round itself). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "check.h"
#include "reply.h"
#include "stats.h"

/* A block of net_upd_alloc(). */
struct net_upd_mem {
	struct net_upd_mem *next;
	max_align_t data[];
};

void *net_upd_alloc(struct net_upd *x, size_t n)
{
	struct net_upd_mem *m;

	if (n > SIZE_MAX - sizeof *m || !(m = malloc(sizeof *m + n)))
		return NULL;
	m->next = x->mem;
	x->mem = m;
	return m->data;
}

static void free_upds(struct net_batch *b)
{
	for (struct net_upd *x = b->upds, *next; x; x = next) {
		next = x->next;
		if (x->release)
			x->release(x);
		for (struct net_upd_mem *m = x->mem, *mn; m; m = mn) {
			mn = m->next;
			free(m);
		}
		net_buf_free(&x->reply);
		free(x);
	}
	b->upds = NULL;
}

/* The one place a batch is emptied. */
static void batch_reset(struct net_conn *c)
{
	struct net_batch *b = &c->batch;

	free_upds(b);
	b->nwcmds = 0;
	b->nops = 0;
	b->atomic = false;
	b->held_noted = 0;
	b->result = KVS_OK;
	b->err[0] = '\0';
	b->done = NULL;
	net_reply_drop_held(c);
	/* A huge MSET or DEL leaves no huge array behind. */
	if (b->opscap > 4 * NET_BATCH_OPS) {
		free(b->ops);
		b->ops = NULL;
		b->opscap = 0;
	}
}

struct kvs_op *net_batch_ops(struct net_conn *c, size_t n)
{
	struct net_batch *b = &c->batch;
	size_t need = b->nops + n;

	KVS_ASSERT(net_on_worker(c->w));
	if (need < n)
		goto oom;
	if (need > b->opscap) {
		size_t cap = b->opscap ? b->opscap : 4;
		struct kvs_op *ops;

		while (cap < need)
			cap *= 2;
		ops = realloc(b->ops, cap * sizeof *ops);
		if (!ops)
			goto oom;
		b->ops = ops;
		b->opscap = cap;
	}
	memset(b->ops + b->nops, 0, n * sizeof *b->ops);
	return b->ops + b->nops;
oom:
	net_reply_error(c, "OOM out of memory");
	return NULL;
}

/* Add a command of `kind` with ops[first .. first+n) (or for
 * NET_W_DEFERRED, defer[first .. first+n)) to the batch; from then on the
 * replies of other commands are held.  Returns 0 or -1 (out of memory;
 * nothing added). */
static int batch_add(struct net_conn *c, enum net_write_kind kind,
		     size_t first, size_t n)
{
	struct net_batch *b = &c->batch;

	if (b->nwcmds == b->capwcmds) {
		size_t cap = b->capwcmds ? b->capwcmds * 2 : 8;
		struct net_wcmd *w = realloc(b->wcmds, cap * sizeof *w);
		if (!w)
			return -1;
		b->wcmds = w;
		b->capwcmds = cap;
	}
	b->wcmds[b->nwcmds++] = (struct net_wcmd){ kind, first, n, NULL, 0,
						    NULL, NULL };
	if (kind != NET_W_DEFERRED)
		b->nops = first + n;
	net_reply_hold(c, true);
	return 0;
}

void net_batch_add(struct net_conn *c, enum net_write_kind kind, size_t n)
{
	KVS_ASSERT(kind != NET_W_DEFERRED && n > 0 &&
		   c->batch.nops + n <= c->batch.opscap);
	if (batch_add(c, kind, c->batch.nops, n) != 0)
		net_reply_error(c, "OOM out of memory");
}

struct net_upd *net_batch_upd(struct net_conn *c, size_t size)
{
	struct net_upd *x;

	KVS_ASSERT(net_on_worker(c->w) && size >= sizeof *x);
	if (!(x = calloc(1, size))) {
		net_reply_error(c, "OOM out of memory");
		return NULL;
	}
	x->next = c->batch.upds;
	c->batch.upds = x;
	return x;
}

void net_batch_add_upd(struct net_conn *c, struct net_upd *x, size_t n)
{
	struct net_batch *b = &c->batch;

	KVS_ASSERT(n > 0 && b->nops + n <= b->opscap);
	if (batch_add(c, NET_W_UPDATE, b->nops, n) != 0)
		net_reply_error(c, "OOM out of memory");
	else
		b->wcmds[b->nwcmds - 1].upd = x;
}

int net_batch_add_exec(struct net_conn *c, struct net_upd *x, size_t n,
		       size_t *head)
{
	struct net_batch *b = &c->batch;

	KVS_ASSERT(b->nwcmds == 0 && b->nops + n <= b->opscap);
	if (batch_add(c, NET_W_EXEC, b->nops, n) != 0) {
		net_reply_error(c, "OOM out of memory");
		return -1;
	}
	b->wcmds[b->nwcmds - 1].upd = x;
	b->atomic = true;
	*head = b->nwcmds - 1;
	return 0;
}

void net_batch_add_late(struct net_conn *c,
			void (*fn)(struct net_conn *c, const void *arg),
			const void *arg)
{
	struct net_batch *b = &c->batch;

	if (batch_add(c, NET_W_LATE, b->nops, 0) != 0) {
		net_reply_error(c, "OOM out of memory");
		return;
	}
	b->wcmds[b->nwcmds - 1].late = fn;
	b->wcmds[b->nwcmds - 1].late_arg = arg;
}

void net_batch_end_exec(struct net_conn *c, size_t head)
{
	struct net_batch *b = &c->batch;

	KVS_ASSERT(head < b->nwcmds && b->wcmds[head].kind == NET_W_EXEC);
	b->wcmds[head].ncmds = b->nwcmds - head - 1;
}

void net_batch_note_held(struct net_conn *c, size_t held0)
{
	size_t held = net_reply_held(c);

	/* Replies already placed (EXEC places those of its commands one
	 * by one, inside the command that runs them) are not placed twice. */
	if (held0 < c->batch.held_noted)
		held0 = c->batch.held_noted;
	c->batch.held_noted = held;

	if (held > held0 &&
	    batch_add(c, NET_W_DEFERRED, held0, held - held0) != 0) {
		net_log(NET_LOG_WARN, "out of memory: closing client %s",
			c->addr);
		c->state = NET_CONN_CLOSING;
	}
}

bool net_batch_open(const struct net_conn *c)
{
	return c->batch.nwcmds > 0;
}

bool net_batch_writes_key(const struct net_conn *c, const char *key,
			  size_t klen)
{
	const struct net_batch *b = &c->batch;

	/* At most NET_BATCH_OPS ops: a linear scan costs less than the
	 * writer round trip it saves. */
	for (size_t i = 0; i < b->nops; i++) {
		const struct kvs_op *op = &b->ops[i];
		if (op->type == KVS_OP_FLUSH ||
		    (op->klen == klen &&
		     (klen == 0 || memcmp(op->key, key, klen) == 0)))
			return true;
	}
	return false;
}

bool net_batch_room(const struct net_conn *c)
{
	/* An EXEC's batch is one transaction: a write after it must not
	 * share its fate (a WATCH abort cancels every later op). */
	return c->batch.nops < NET_BATCH_OPS && !c->batch.atomic;
}

/* An op's own result that says its key could not be read (a condition or
 * INCR reads the old value): corruption or an unreadable page. */
static bool op_read_failed(int result)
{
	return result == KVS_EIO || result == KVS_ECORRUPT;
}

/* On the engine's thread that completes the batch (the writer thread, or
 * the worker that ran the round): keep the result and, for a failure, the
 * message that thread recorded (kvs_errmsg() now is the round's; on the
 * writer thread it is not the worker's), then report the completion
 * through the hook. */
static void batch_done(void *ctx, int result)
{
	struct net_conn *c = ctx;
	struct net_batch *b = &c->batch;

	b->result = result;
	if (result != KVS_OK) {
		snprintf(b->err, sizeof b->err, "%s", kvs_errmsg());
	} else {
		for (size_t i = 0; i < b->nops; i++) {
			if (op_read_failed(b->ops[i].result)) {
				snprintf(b->err, sizeof b->err, "%s",
					 kvs_errmsg());
				break;
			}
		}
	}
	b->done(c);
}

bool net_batch_submit(struct net_conn *c, void (*done)(struct net_conn *c))
{
	struct net_batch *b = &c->batch;

	KVS_ASSERT(net_on_worker(c->w) && c->state == NET_CONN_ACTIVE &&
		   b->nwcmds > 0);
	/* Only replies held behind the batch, no ops (every write in it was
	 * refused before it joined): nothing for the engine. */
	if (b->nops) {
		struct net_worker *w = c->w;
		struct kvs_submission x = {
			.ops = b->ops, .n = b->nops,
			.flags = b->atomic ? KVS_BATCH_ATOMIC : 0,
			.done = batch_done, .ctx = c,
		};
		b->done = done;
		if (w->nsubs == w->capsubs) {
			size_t cap = w->capsubs ? w->capsubs * 2 : 64;
			struct kvs_submission *p =
				realloc(w->subs, cap * sizeof *p);
			if (p) {
				w->subs = p;
				w->capsubs = cap;
			}
		}
		if (w->nsubs < w->capsubs) {
			w->subs[w->nsubs++] = x;
			return true;
		}
		/* No memory to hold it for the pass: alone, now. */
		int rc = kvs_submit_flags(w->srv->db, x.ops, x.n, x.flags,
					  batch_done, c);
		if (rc == KVS_OK)
			return true;
		b->result = rc;
		snprintf(b->err, sizeof b->err, "%s", kvs_errmsg());
	}
	net_batch_complete(c);
	return false;
}

void net_batch_flush(struct net_worker *w)
{
	KVS_ASSERT(net_on_worker(w));
	if (w->nsubs == 0)
		return;
	kvs_submit_all(w->srv->db, w->subs, w->nsubs);
	w->nsubs = 0;
}

/* The reply of one write command of a completed batch. */
static void reply_write(struct net_conn *c, const struct net_wcmd *wc)
{
	const struct net_batch *b = &c->batch;
	const struct kvs_op *op = &b->ops[wc->first];
	long long n = 0;

	/* A key whose old value could not be read (SET NX/XX, DEL, INCR look
	 * at it): the read's error, not a verdict on the condition.  The
	 * store has not failed; the record is damaged. */
	if (wc->kind != NET_W_DEFERRED && wc->kind != NET_W_MSET &&
	    wc->kind != NET_W_EXEC) {
		for (size_t i = 0; i < wc->n; i++) {
			if (op_read_failed(op[i].result)) {
				net_reply_kvs_error(c, op[i].result, b->err,
						    NET_STORE_READ);
				return;
			}
		}
	}

	switch (wc->kind) {
	case NET_W_SET:
		if (op->result == KVS_OK)
			net_reply_ok(c);
		else
			net_reply_null(c); /* NX or XX did not hold */
		break;
	case NET_W_SETNX:
		net_reply_int(c, op->result == KVS_OK);
		break;
	case NET_W_DEL:
		for (size_t i = 0; i < wc->n; i++)
			n += op[i].result == KVS_OK;
		net_reply_int(c, n);
		break;
	case NET_W_MSET:
		net_reply_ok(c);
		break;
	case NET_W_INCR:
		if (op->result == KVS_OK)
			net_reply_int(c, op->num);
		else if (op->result == KVS_EOVERFLOW)
			net_reply_error(c, "ERR increment or decrement "
					"would overflow");
		else if (op->result == KVS_ENOTINT)
			net_reply_error(c, NET_ERR_NOTINT);
		else
			net_reply_kvs_error(c, op->result, b->err,
					    NET_STORE_WRITE);
		break;
	case NET_W_DEFERRED:
		net_reply_release(c, wc->first, wc->n);
		break;
	case NET_W_EXEC:
		/* The head of a transaction whose keys did not change (a
		 * change skips it all: net_batch_complete). */
		net_reply_array(c, wc->ncmds);
		break;
	case NET_W_LATE:
		wc->late(c, wc->late_arg);
		break;
	case NET_W_UPDATE:
		for (size_t i = 0; i < wc->n; i++) {
			if (op[i].result == KVS_ECANCELED) {
				/* Behind an update that aborted the batch;
				 * only EXEC's WATCH check aborts, and it
				 * skips its commands, so a backstop. */
				net_reply_error(c, "ERR command canceled by "
						"an aborted transaction");
				return;
			}
			if (op[i].result == KVS_ETOOBIG) {
				/* The engine's own limit: the callbacks
				 * check it first, so this is a backstop. */
				net_reply_error(c, "ERR string exceeds maximum "
						"allowed size (512MB)");
				return;
			}
		}
		if (wc->upd->reply.len)
			net_reply_check(c, net_buf_append(net_reply_buf(c),
							  wc->upd->reply.data,
							  wc->upd->reply.len));
		else
			net_reply_error(c, "OOM out of memory");
		break;
	}
}

/* Did one of an EXEC's WATCH checks abort the batch? */
static bool exec_aborted(const struct net_batch *b, const struct net_wcmd *wc)
{
	for (size_t i = 0; i < wc->n; i++)
		if (b->ops[wc->first + i].result == KVS_ECANCELED)
			return true;
	return false;
}

void net_batch_complete(struct net_conn *c)
{
	const struct net_batch *b = &c->batch;

	KVS_ASSERT(net_on_worker(c->w));
	net_reply_hold(c, false); /* the batch's replies go out, first */
	for (size_t i = 0; i < b->nwcmds; i++) {
		const struct net_wcmd *wc = &b->wcmds[i];
		if (wc->kind == NET_W_EXEC && b->result == KVS_OK &&
		    exec_aborted(b, wc)) {
			/* A WATCHed key changed: nil, and nothing of the
			 * transaction was applied or is answered. */
			net_reply_check(c, net_resp_put_null_array(
						   net_reply_buf(c)));
			i += wc->ncmds;
			continue;
		}
		size_t mark = c->out.len;
		if (b->result != KVS_OK && wc->kind != NET_W_DEFERRED &&
		    wc->kind != NET_W_EXEC)
			net_reply_kvs_error(c, b->result, b->err,
					    NET_STORE_WRITE);
		else
			reply_write(c, wc);
		/* INFO's error counts: held replies were counted when made. */
		if (wc->kind != NET_W_DEFERRED && c->out.len > mark &&
		    c->out.data[mark] == '-')
			net_stats_error(c->w, c->out.data + mark,
					c->out.len - mark);
	}
	batch_reset(c);
}

void net_batch_drop(struct net_conn *c)
{
	batch_reset(c);
}

void net_batch_free(struct net_conn *c)
{
	free_upds(&c->batch);
	free(c->batch.ops);
	free(c->batch.wcmds);
	c->batch.ops = NULL;
	c->batch.wcmds = NULL;
	c->batch.opscap = c->batch.capwcmds = 0;
}
