/* cmd_multi.c - transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, the
 * queue of a connection's commands between MULTI and EXEC, and the WATCHed
 * keys.  EXEC builds one atomic engine batch (cmd_multi.h says how).  Run
 * by the connection's worker; watch_check() by the engine's writer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "check.h"
#include "cmd_multi.h"
#include "reply.h"
#include "stats.h"

#define ERR_EXECABORT \
	"EXECABORT Transaction discarded because of previous errors."

/* A queued command, in one allocation: this, argv[], argvlen[], bytes. */
struct qcmd {
	net_cmd_fn *fn;
	unsigned idx;
	const char *name;
	struct net_resp_cmd cmd; /* points into the same allocation */
};

/* A WATCHed key: what kvs_key_version() said, then whether it was present
 * (read in that order, so a write in between shows as a changed version:
 * a false alarm at worst, never a miss). */
struct watch {
	char *key;
	size_t klen;
	uint64_t version;
	bool found;
};

struct net_txn {
	struct qcmd **q;
	size_t nq, capq;
	uint64_t bytes;     /* the queue's argument bytes */
	bool dirty;         /* a command was refused while queueing */
	struct watch *w;
	size_t nw, capw;
};

/* EXEC's state in the batch: it owns the queue and the watch list it took
 * from the transaction until the batch is answered. */
struct exec_state {
	struct net_upd base;
	struct qcmd **q;
	size_t nq;
	struct watch *w;
	size_t nw;
};

/* The queue's bytes at most: a transaction is held in memory until EXEC,
 * so it gets the bound of a connection's input buffer. */
#define QUEUE_MAX NET_QUERYBUF_MAX

static void free_queue(struct qcmd **q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(q[i]);
	free(q);
}

static void free_watches(struct watch *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i].key);
	free(w);
}

static struct net_txn *txn_get(struct net_conn *c)
{
	if (!c->txn)
		c->txn = calloc(1, sizeof *c->txn);
	return c->txn;
}

static void unwatch(struct net_txn *t)
{
	free_watches(t->w, t->nw);
	t->w = NULL;
	t->nw = t->capw = 0;
}

/* Leave MULTI: the queue goes, and the watches (as after EXEC). */
static void discard(struct net_conn *c)
{
	struct net_txn *t = c->txn;

	c->in_multi = false;
	if (!t)
		return;
	free_queue(t->q, t->nq);
	t->q = NULL;
	t->nq = t->capq = 0;
	t->bytes = 0;
	t->dirty = false;
	unwatch(t);
}

void net_multi_free(struct net_conn *c)
{
	discard(c);
	free(c->txn);
	c->txn = NULL;
}

void net_multi_abort(struct net_conn *c)
{
	discard(c);
}

void net_multi_flag(struct net_conn *c)
{
	if (c->in_multi && c->txn)
		c->txn->dirty = true;
}

void net_multi_queue(struct net_conn *c, const struct net_resp_cmd *cmd,
		     net_cmd_fn *fn, unsigned idx, const char *name)
{
	struct net_txn *t = c->txn;
	size_t bytes = 0, size;
	struct qcmd *q;
	char *p;

	KVS_ASSERT(c->in_multi && t);
	if (t->dirty) { /* EXEC will abort: keeping it is no use */
		net_reply_simple(c, "QUEUED");
		return;
	}
	for (size_t i = 0; i < cmd->argc; i++)
		bytes += cmd->argvlen[i];
	if (bytes > QUEUE_MAX - t->bytes) {
		t->dirty = true;
		net_reply_error(c, "ERR transaction too big: its queued "
				"commands are over 1 GiB");
		return;
	}
	size = sizeof *q + cmd->argc * (sizeof(char *) + sizeof(size_t)) +
	       bytes;
	if (t->nq == t->capq) {
		size_t cap = t->capq ? t->capq * 2 : 8;
		struct qcmd **nq = realloc(t->q, cap * sizeof *nq);
		if (!nq)
			goto oom;
		t->q = nq;
		t->capq = cap;
	}
	if (!(q = malloc(size)))
		goto oom;
	const char **argv = (const char **)(q + 1);
	size_t *lens = (size_t *)(argv + cmd->argc);
	p = (char *)(lens + cmd->argc);
	for (size_t i = 0; i < cmd->argc; i++) {
		memcpy(p, cmd->argv[i], cmd->argvlen[i]);
		argv[i] = p;
		lens[i] = cmd->argvlen[i];
		p += cmd->argvlen[i];
	}
	q->fn = fn;
	q->idx = idx;
	q->name = name;
	q->cmd.argc = cmd->argc;
	q->cmd.argv = argv;
	q->cmd.argvlen = lens;
	t->q[t->nq++] = q;
	t->bytes += bytes;
	net_reply_simple(c, "QUEUED");
	return;
oom:
	t->dirty = true;
	net_reply_error(c, "OOM out of memory");
}

void net_cmd_multi(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	(void)cmd;
	if (c->in_multi) {
		/* As Redis: an error, but the transaction goes on. */
		net_reply_error(c, "ERR MULTI calls can not be nested");
		return;
	}
	if (!txn_get(c)) {
		net_reply_error(c, "OOM out of memory");
		return;
	}
	c->in_multi = true;
	net_reply_ok(c);
}

void net_cmd_discard(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	(void)cmd;
	if (!c->in_multi) {
		net_reply_error(c, "ERR DISCARD without MULTI");
		return;
	}
	discard(c);
	net_reply_ok(c);
}

/* Read key's version, then whether it is present (struct watch says why
 * in this order).  A read error counts as present: the batch's own check
 * then decides. */
static void watch_state(struct kvs *db, const char *key, size_t klen,
			uint64_t *version, bool *found)
{
	*version = kvs_key_version(db, key, klen);
	*found = kvs_lookup(db, key, klen, NULL, NULL, NULL) != KVS_ENOTFOUND;
}

void net_cmd_watch(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct kvs *db = c->w->srv->db;
	struct net_txn *t;

	if (c->in_multi) {
		net_reply_error(c, "ERR WATCH inside MULTI is not allowed");
		return;
	}
	if (!(t = txn_get(c)))
		goto oom;
	for (size_t i = 1; i < cmd->argc; i++) {
		const char *key = cmd->argv[i];
		size_t klen = cmd->argvlen[i], j;

		/* A key the engine cannot hold never changes. */
		if (kvs_check_key(db, key, klen) != KVS_OK)
			continue;
		for (j = 0; j < t->nw; j++)
			if (t->w[j].klen == klen &&
			    memcmp(t->w[j].key, key, klen) == 0)
				break;
		if (j < t->nw)
			continue; /* already watched: the first look counts */
		if (t->nw == t->capw) {
			size_t cap = t->capw ? t->capw * 2 : 4;
			struct watch *nw = realloc(t->w, cap * sizeof *nw);
			if (!nw)
				goto oom;
			t->w = nw;
			t->capw = cap;
		}
		struct watch *w = &t->w[t->nw];
		if (!(w->key = malloc(klen)))
			goto oom;
		memcpy(w->key, key, klen);
		w->klen = klen;
		watch_state(db, key, klen, &w->version, &w->found);
		t->nw++;
	}
	net_reply_ok(c);
	return;
oom:
	net_reply_error(c, "OOM out of memory");
}

void net_cmd_unwatch(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	(void)cmd;
	if (c->txn)
		unwatch(c->txn);
	net_reply_ok(c);
}

/* Has a watched key visibly changed already?  Then EXEC answers nil
 * without running anything; the batch's own check (watch_check) covers a
 * change between this look and the writer. */
static bool watch_changed(struct net_conn *c, const struct net_txn *t)
{
	struct kvs *db = c->w->srv->db;

	for (size_t i = 0; i < t->nw; i++) {
		uint64_t v;
		bool found;

		watch_state(db, t->w[i].key, t->w[i].klen, &v, &found);
		if (v != t->w[i].version || found != t->w[i].found)
			return true;
	}
	return false;
}

/* On the writer thread, ahead of the transaction's ops: abort the whole
 * batch if the key was written since WATCH, or has appeared or gone
 * (expired) since. */
static int watch_check(void *uctx, struct kvs_update *u)
{
	const struct watch *w = uctx;

	if (u->version != w->version || u->found != w->found) {
		u->action = KVS_UPD_ABORT;
		return KVS_ECANCELED;
	}
	u->action = KVS_UPD_KEEP;
	return KVS_OK;
}

static void exec_release(struct net_upd *base)
{
	struct exec_state *x = (struct exec_state *)base;

	free_queue(x->q, x->nq);
	free_watches(x->w, x->nw);
	x->q = NULL;
	x->w = NULL;
}

/* Add one queued command to the EXEC's batch: as update ops if its family
 * has them, else by its own handler (a write joins the batch as plain
 * ops; anything else replies now, and batch.c keeps the reply's place). */
/* Commands that read the whole store: no update op can run them, so inside
 * EXEC they run when the transaction has been applied (net_batch_add_late),
 * and see its writes (those queued after them too). */
static bool reads_whole_store(const struct qcmd *q)
{
	static const char *const names[] = { "keys", "scan", "dbsize",
					     "randomkey" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(q->name, names[i]) == 0)
			return true;
	return false;
}

static void run_late(struct net_conn *c, const void *arg)
{
	const struct qcmd *q = arg;
	q->fn(c, &q->cmd);
}

static void exec_one(struct net_conn *c, const struct qcmd *q)
{
	size_t held0 = net_reply_held(c);
	uint64_t t0 = net_mono_us();

	bool failed;

	if (reads_whole_store(q))
		net_batch_add_late(c, run_late, q);
	else if (!net_keys_as_update(c, &q->cmd) &&
		 !net_str_as_update(c, &q->cmd))
		q->fn(c, &q->cmd);
	/* A reply it made now (held behind the batch): an error counts. */
	failed = c->defer.len > held0 && c->defer.data[held0] == '-';
	if (failed)
		net_stats_error(c->w, c->defer.data + held0,
				c->defer.len - held0);
	net_batch_note_held(c, held0);
	net_stats_call(c->w, q->idx, q->name, net_mono_us() - t0, failed);
}

void net_cmd_exec(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_txn *t = c->txn;
	struct exec_state *x;
	struct kvs_op *ops = NULL;
	size_t head;

	(void)cmd;
	if (!c->in_multi) {
		net_reply_error(c, "ERR EXEC without MULTI");
		return;
	}
	/* EXEC is no write, so a batch before it was sent before it ran. */
	KVS_ASSERT(t && !net_batch_open(c));
	if (t->dirty) {
		discard(c);
		net_reply_error(c, ERR_EXECABORT);
		return;
	}
	if (watch_changed(c, t)) {
		discard(c);
		net_reply_check(c, net_resp_put_null_array(net_reply_buf(c)));
		return;
	}
	x = (struct exec_state *)net_batch_upd(c, sizeof *x);
	if (!x) {
		discard(c);
		return;
	}
	if (t->nw && !(ops = net_batch_ops(c, t->nw))) {
		discard(c);
		return;
	}
	/* The batch owns the queue and the watches from here on. */
	x->base.release = exec_release;
	x->q = t->q;
	x->nq = t->nq;
	x->w = t->w;
	x->nw = t->nw;
	t->q = NULL;
	t->w = NULL;
	t->nq = t->capq = t->nw = t->capw = 0;
	discard(c);
	for (size_t i = 0; i < x->nw; i++) {
		ops[i].type = KVS_OP_UPDATE;
		ops[i].key = x->w[i].key;
		ops[i].klen = x->w[i].klen;
		ops[i].update = watch_check;
		ops[i].uctx = &x->w[i];
	}
	if (net_batch_add_exec(c, &x->base, x->nw, &head) != 0)
		return; /* replied: out of memory */
	for (size_t i = 0; i < x->nq && c->state == NET_CONN_ACTIVE; i++)
		exec_one(c, x->q[i]);
	net_batch_end_exec(c, head);
}
