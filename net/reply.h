/*
 * reply.h - a connection's replies: appending them (to `out`, or held in
 * `defer` while a write batch is open), the output limit, and the replies
 * every command family shares (errors of arity, of the store).  reply.c
 * implements it.  Worker thread only: a connection's replies are its
 * worker's.
 *
 * Each net_reply_*() appends one reply (net_reply_array() the header of an
 * array whose elements follow).  A reply that cannot be allocated would
 * break the order of replies, so the connection is made CLOSING instead;
 * the same when replies pass the output limit.  Nothing is returned.
 */
#ifndef KVS_NET_REPLY_H
#define KVS_NET_REPLY_H

#include <stdbool.h>
#include <string.h>

#include "server_int.h"

#define NET_ERR_NOTINT "ERR value is not an integer or out of range"
#define NET_ERR_SYNTAX "ERR syntax error"

/* Where a store call went wrong (the reply to an I/O error differs). */
enum net_store_op { NET_STORE_READ, NET_STORE_WRITE };

/* Where a reply goes now: held behind an open write batch, or out. */
static inline struct net_buf *net_reply_buf(struct net_conn *c)
{
	return c->holding ? &c->defer : &c->out;
}

/* Bytes of replies not sent yet. */
static inline size_t net_reply_pending(const struct net_conn *c)
{
	return c->out.len - c->out_pos;
}

/* Bytes of replies held behind the open batch (batch.c: a command's held
 * replies are those from this mark on). */
static inline size_t net_reply_held(const struct net_conn *c)
{
	return c->defer.len;
}

/* batch.c: hold the replies from now on (on), or send them out again. */
static inline void net_reply_hold(struct net_conn *c, bool on)
{
	c->holding = on;
}

/* batch.c: forget the held replies (the batch is emptied) and stop
 * holding. */
static inline void net_reply_drop_held(struct net_conn *c)
{
	c->holding = false;
	c->defer.len = 0;
}

/* A command starts: the output limit counts its pieces from here. */
/* Where the running command's reply stands, and going back there: a
 * command that reads several keys does its reads again when an atomic
 * batch came between them (kvs_read_retry). */
static inline size_t net_reply_mark(struct net_conn *c)
{
	return net_reply_buf(c)->len;
}

static inline void net_reply_rewind(struct net_conn *c, size_t mark)
{
	net_reply_buf(c)->len = mark;
}

static inline void net_reply_begin(struct net_conn *c)
{
	c->reply_pieces = 0;
}

/* After appending a piece with result rc (NET_RESP_OK or ENOMEM): close c
 * on a failure, and enforce the output limit inside one reply. */
void net_reply_check(struct net_conn *c, int rc);

static inline void net_reply_simple(struct net_conn *c, const char *s)
{
	net_reply_check(c, net_resp_put_simple(net_reply_buf(c), s));
}

static inline void net_reply_ok(struct net_conn *c)
{
	net_reply_simple(c, "OK");
}

static inline void net_reply_error(struct net_conn *c, const char *msg)
{
	net_reply_check(c, net_resp_put_error(net_reply_buf(c), msg));
}

static inline void net_reply_int(struct net_conn *c, long long v)
{
	net_reply_check(c, net_resp_put_int(net_reply_buf(c), v));
}

static inline void net_reply_bulk(struct net_conn *c, const void *p, size_t n)
{
	net_reply_check(c, net_resp_put_bulk(net_reply_buf(c), p, n));
}

static inline void net_reply_str(struct net_conn *c, const char *s)
{
	net_reply_bulk(c, s, strlen(s));
}

static inline void net_reply_null(struct net_conn *c)
{
	net_reply_check(c, net_resp_put_null(net_reply_buf(c)));
}

static inline void net_reply_array(struct net_conn *c, size_t n)
{
	net_reply_check(c, net_resp_put_array(net_reply_buf(c), n));
}

/* An error reply of a printf-formatted message (at most 1 KiB). */
void net_reply_errorf(struct net_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "ERR wrong number of arguments for 'name' command" */
void net_reply_arity(struct net_conn *c, const char *name);

/* "ERR unknown subcommand 'x'. Try WHAT HELP." for argument 1 of cmd. */
void net_reply_unknown_subcommand(struct net_conn *c,
				  const struct net_resp_cmd *cmd,
				  const char *what);

/*
 * The reply to WHAT HELP, as Redis's: an array of simple strings, first
 * "WHAT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", then
 * lines (NULL-terminated: a subcommand's synopsis, then its description
 * indented by four spaces), then HELP's own two lines.
 */
void net_reply_help(struct net_conn *c, const char *what,
		    const char *const *lines);

/*
 * An engine failure as a reply, and a log line (one a second at most) if it
 * is the server's trouble rather than the request's.  msg is kvs_errmsg()
 * as recorded by the thread that failed (for a write batch, the writer's);
 * NULL or "" falls back to kvs_strerror(rc).  docs/PROTOCOL.md lists the
 * replies.
 */
void net_reply_kvs_error(struct net_conn *c, int rc, const char *msg,
			 enum net_store_op op);

/* The same for a store call that just failed on this thread. */
void net_reply_kvs_error_here(struct net_conn *c, int rc,
			      enum net_store_op op);

/* Append the held replies defer[first .. first+n) to `out` (batch.c, when
 * the batch they waited behind is answered). */
void net_reply_release(struct net_conn *c, size_t first, size_t n);

/* Release the buffers of c's replies (conn.c, when c is freed). */
void net_reply_free(struct net_conn *c);

#endif /* KVS_NET_REPLY_H */
