/* reply.c - a connection's replies: where they go (out, or held behind an
 * open write batch), the output limit, and the replies the command families
 * share (arity, unknown subcommand, store errors).  Contracts in reply.h.
 * Worker thread only. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "reply.h"

void net_reply_check(struct net_conn *c, int rc)
{
	if (rc != NET_RESP_OK) {
		net_log(NET_LOG_WARN, "out of memory: closing client %s",
			c->addr);
		c->state = NET_CONN_CLOSING;
	}
	/* The output limit holds inside one reply too (MGET of one big
	 * value many times): past it, drop everything and close.  A reply
	 * of one or two pieces (GET of a big value) may pass it alone. */
	struct net_server *s = c->w->srv;
	if (!c->over_limit && ++c->reply_pieces > 2 &&
	    c->out.len - c->out_pos > s->output_limit) {
		c->over_limit = 1;
		net_log(NET_LOG_WARN, "closing client %s (id %llu): a reply "
			"went over the output limit", c->addr,
			(unsigned long long)c->id);
		atomic_fetch_add_explicit(&s->closed_by_limit, 1,
					  memory_order_relaxed);
	}
	if (c->over_limit) {
		c->out.len = c->out_pos; /* nothing more is sent */
		c->state = NET_CONN_CLOSING;
	}
}

void net_reply_errorf(struct net_conn *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* As Redis's addReplyErrorFormat(): CR and LF at the end (a client's
	 * argument ending the message) are cut, those inside become spaces
	 * (net_reply_error). */
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\r' || msg[n - 1] == '\n'))
		msg[--n] = '\0';
	net_reply_error(c, msg);
}

void net_reply_arity(struct net_conn *c, const char *name)
{
	net_reply_errorf(c, "ERR wrong number of arguments for '%s' command",
			 name);
}

/* Log a store failure, at most once a second: a full disk refuses every
 * write, and one line per refused write would flood the log. */
static void log_store_error(const struct net_conn *c, const char *what,
			    const char *msg)
{
	if (!net_log_due(&c->w->srv->last_store_log))
		return;
	net_log(NET_LOG_ERROR, "%s for client %s (id %llu): %s", what,
		c->addr, (unsigned long long)c->id, msg);
}

/*
 * An engine failure as a reply, and a log line if it is the server's
 * trouble rather than the request's.  msg is kvs_errmsg() as recorded by
 * the thread that failed (for a write batch, the writer's: c->batch.err); NULL
 * or "" falls back to kvs_strerror(rc).  docs/PROTOCOL.md lists the
 * replies.
 */
void net_reply_kvs_error(struct net_conn *c, int rc, const char *msg,
			 enum net_store_op op)
{
	const char *why = msg && msg[0] ? msg : kvs_strerror(rc);

	switch (rc) {
	case KVS_EINVAL:
		net_reply_error(c, "ERR empty keys are not supported");
		return;
	case KVS_ETOOBIG: {
		/* The limits of this store's engine: lmdb's keys are far
		 * shorter than the log engine's. */
		size_t k = kvs_max_key(c->w->srv->db);
		net_reply_errorf(c, "ERR key or value too large (keys up to "
			"%zu %s, values up to %u MiB with the %s engine)",
			k % (1u << 20) ? k : k >> 20,
			k % (1u << 20) ? "bytes" : "MiB", KVS_MAX_VALUE >> 20,
			kvs_engine_name(c->w->srv->db));
		return;
	}
	case KVS_ENOMEM:
		net_reply_error(c, "OOM out of memory");
		return;
	case KVS_ENOSPC:
		/* Transient: nothing of the write was kept; later writes
		 * are tried again. */
		log_store_error(c, "write refused", why);
		net_reply_errorf(c,
			"MISCONF kvs cannot write to disk: %s; writes are "
			 "refused until it can, reads go on", why);
		return;
	case KVS_EFAILED:
		log_store_error(c, "write refused", why);
		net_reply_errorf(c,
			"MISCONF kvs refuses writes after a failed sync: "
			 "%s; restart it after checking the disk", why);
		return;
	case KVS_EIO:
	case KVS_ECORRUPT:
		if (op == NET_STORE_WRITE) {
			/* The round this write was in failed to be written
			 * or synced: the engine has failed the handle for
			 * good (KVS_EFAILED from now on). */
			log_store_error(c, "write failed", why);
			net_reply_errorf(c,
				"MISCONF kvs refuses writes after a failed "
				 "sync: %s; restart it after checking the disk",
				 why);
			return;
		}
		log_store_error(c, "read failed", why);
		net_reply_errorf(c, "ERR I/O error reading the key: %s", why);
		return;
	default:
		log_store_error(c, "store error", why);
		net_reply_errorf(c, "ERR store error: %s", kvs_strerror(rc));
	}
}

void net_reply_kvs_error_here(struct net_conn *c, int rc,
			      enum net_store_op op)
{
	net_reply_kvs_error(c, rc, kvs_errmsg(), op);
}

void net_reply_unknown_subcommand(struct net_conn *c,
				  const struct net_resp_cmd *cmd,
				  const char *what)
{
	net_reply_errorf(c, "ERR unknown subcommand '%.*s'. Try %s HELP.",
			 (int)(cmd->argvlen[1] > 128 ? 128 : cmd->argvlen[1]),
			 cmd->argv[1], what);
}

void net_reply_help(struct net_conn *c, const char *what,
		    const char *const *lines)
{
	char first[128];
	size_t n = 0;

	while (lines[n])
		n++;
	snprintf(first, sizeof first, "%s <subcommand> [<arg> [value] [opt] "
		 "...]. Subcommands are:", what);
	net_reply_array(c, n + 3);
	net_reply_simple(c, first);
	for (size_t i = 0; i < n; i++)
		net_reply_simple(c, lines[i]);
	net_reply_simple(c, "HELP");
	net_reply_simple(c, "    Print this help.");
}

void net_reply_release(struct net_conn *c, size_t first, size_t n)
{
	KVS_ASSERT(!c->holding && first + n <= c->defer.len);
	net_reply_check(c, net_buf_append(&c->out, c->defer.data + first, n));
}

void net_reply_free(struct net_conn *c)
{
	net_buf_free(&c->out);
	net_buf_free(&c->defer);
}
