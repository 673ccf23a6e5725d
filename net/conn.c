/* conn.c - the life of a connection on its worker: read, parse, execute
 * (commands.h), park while its write batch is with the engine (batch.h),
 * answer, send, close, free.  Contracts in conn.h; the states are
 * enum net_conn_state's (server_int.h).  Worker thread only. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "cmd_multi.h"
#include "commands.h"
#include "conn.h"
#include "mailbox.h"
#include "reply.h"

#define READ_SIZE (16u << 10)
/* Buffers bigger than this are released once empty, so idle connections
 * hold little memory after a big request or reply. */
#define KEEP_BUF (64u << 10)

/* ---- the ready list: connections with buffered commands still to run ---- */

static void ready_add(struct net_worker *w, struct net_conn *c)
{
	if (c->ready)
		return;
	c->ready = 1;
	c->rnext = NULL;
	c->rprev = w->ready_tail;
	if (w->ready_tail)
		w->ready_tail->rnext = c;
	else
		w->ready_head = c;
	w->ready_tail = c;
}

static void ready_del(struct net_worker *w, struct net_conn *c)
{
	if (!c->ready)
		return;
	if (c->rprev)
		c->rprev->rnext = c->rnext;
	else
		w->ready_head = c->rnext;
	if (c->rnext)
		c->rnext->rprev = c->rprev;
	else
		w->ready_tail = c->rprev;
	c->ready = 0;
	c->rprev = c->rnext = NULL;
}

/* ---- connections --------------------------------------------------------- */

/* ---- the server's list of clients (CLIENT LIST, KILL) --------------------- */

static void clients_add(struct net_conn *c)
{
	struct net_server *s = c->w->srv;

	KVS_CHECK(pthread_mutex_lock(&s->clients_mu));
	c->allprev = NULL;
	c->allnext = s->clients;
	if (s->clients)
		s->clients->allprev = c;
	s->clients = c;
	c->listed = true;
	KVS_CHECK(pthread_mutex_unlock(&s->clients_mu));
}

/* Before c's socket is closed: CLIENT KILL may shutdown() a listed
 * connection's fd from another worker, so a closed (and reused) number
 * must not be listed. */
static void clients_del(struct net_conn *c)
{
	struct net_server *s = c->w->srv;

	if (!c->listed)
		return;
	KVS_CHECK(pthread_mutex_lock(&s->clients_mu));
	if (c->allprev)
		c->allprev->allnext = c->allnext;
	else
		s->clients = c->allnext;
	if (c->allnext)
		c->allnext->allprev = c->allprev;
	c->listed = false;
	KVS_CHECK(pthread_mutex_unlock(&s->clients_mu));
}

/* The one place a connection and its buffers are released. */
static void conn_free(struct net_conn *c)
{
	struct net_worker *w = c->w;

	KVS_ASSERT(net_on_worker(w));
	ready_del(w, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	clients_del(c);
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	net_resp_parser_free(&c->parser);
	net_buf_free(&c->in);
	net_reply_free(c);
	net_batch_free(c);
	net_multi_free(c);
	free(c->name);
	atomic_fetch_sub_explicit(&w->srv->connected, 1, memory_order_relaxed);
	free(c);
}

/* The socket is finished with (peer gone, error, limit, last reply sent).
 * A parked connection is only orphaned: the engine still reads its ops. */
static void conn_close(struct net_conn *c)
{
	if (c->state == NET_CONN_PARKED) {
		ready_del(c->w, c);
		clients_del(c);
		epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->state = NET_CONN_ORPHANED;
		return;
	}
	if (c->state != NET_CONN_ORPHANED)
		conn_free(c);
}

void net_conn_new(struct net_worker *w, const struct net_handoff *h)
{
	struct net_server *s = w->srv;
	struct net_conn *c = calloc(1, sizeof *c);
	struct epoll_event ev;
	int one = 1;

	KVS_ASSERT(net_on_worker(w));
	if (!c) {
		net_log(NET_LOG_WARN, "out of memory: dropping client %s",
			h->addr);
		close(h->fd);
		atomic_fetch_sub_explicit(&s->connected, 1,
					  memory_order_relaxed);
		return;
	}
	c->fd = h->fd;
	c->w = w;
	c->id = atomic_fetch_add_explicit(&s->next_id, 1,
					  memory_order_relaxed) + 1;
	c->authed = net_secret_now(s) == NULL;
	c->since = time(NULL);
	atomic_store_explicit(&c->last_ms, net_mono_us() / 1000,
			      memory_order_relaxed);
	memcpy(c->addr, h->addr, sizeof c->addr);
	net_resp_parser_init(&c->parser);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	c->events = EPOLLIN;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		net_log(NET_LOG_WARN, "epoll_ctl: %s: dropping client %s",
			strerror(errno), c->addr);
		conn_free(c);
		return;
	}
	clients_add(c);
}

/* Register the events c needs now: input while it may read, output while
 * replies wait.  Errors and hang-ups are always reported.
 *
 * No reading while a write is parked or buffered commands wait their turn
 * (the backlog, and the memmove of it, stays one read big).  But input
 * interest is dropped lazily: such a connection may usually read again
 * before its client sends more (a SET's round ran on this worker), and two
 * epoll_ctl calls per request cost more than the rare event that finds it
 * unable to read, which drops the interest then (net_conn_event). */
static void conn_interest(struct net_conn *c, bool lazy)
{
	unsigned want = 0;
	struct epoll_event ev;

	if (c->state == NET_CONN_ACTIVE && !c->eof && !c->ready)
		want |= EPOLLIN;
	else if (lazy && (c->events & EPOLLIN) && !c->eof &&
		 (c->state == NET_CONN_PARKED || c->state == NET_CONN_ACTIVE))
		want |= EPOLLIN;
	if (net_reply_pending(c))
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	memset(&ev, 0, sizeof ev);
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

/* Send what the socket takes.  Returns 0, or -1 if the connection was
 * closed (c may be freed). */
static int conn_flush(struct net_conn *c)
{
	struct net_server *s = c->w->srv;

	while (net_reply_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_pos,
				 net_reply_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->out_pos += (size_t)n;
			atomic_fetch_add_explicit(&s->net_out, (uint64_t)n,
						  memory_order_relaxed);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		conn_close(c);
		return -1;
	}
	c->out.len = c->out_pos = 0;
	if (c->out.cap > KEEP_BUF)
		net_buf_free(&c->out);
	return 0;
}

/* Send what c has queued; then free it if it was closing and all went out,
 * or else update its epoll interest.  false: c is gone (closed on a send
 * error, or freed). */
static bool conn_flush_rearm(struct net_conn *c)
{
	if (conn_flush(c) != 0)
		return false;
	if (c->state == NET_CONN_CLOSING && !net_reply_pending(c)) {
		conn_free(c);
		return false;
	}
	conn_interest(c, true);
	return true;
}
/* After c did something: send replies, close a finished connection, or
 * update its epoll interest.  c may be freed. */
static void conn_settle(struct net_conn *c)
{
	if (c->state == NET_CONN_ORPHANED)
		return;
	if (c->eof && c->state == NET_CONN_ACTIVE && !c->ready)
		c->state = NET_CONN_CLOSING; /* every complete command ran */
	(void)conn_flush_rearm(c);
}

/* Is the next command buffered in c complete, a multibulk one, and a write?
 * Only then may it join the open batch: anything else must wait for the
 * batch's completion (a read must see the writes before it).  Inline
 * commands never join: their arguments live in the parser's scratch, which
 * the next command reuses. */
static bool next_is_write(const struct net_conn *c)
{
	const char *name = NULL;
	size_t namelen = 0;

	return net_resp_peek_command(c->in.data + c->in_pos,
				     c->in.len - c->in_pos, &name,
				     &namelen) &&
	       net_cmd_is_write(name, namelen);
}

/*
 * May the next buffered command run now, while c's batch is open and not
 * yet submitted?  A read of keys the batch does not write: its reply is
 * held behind the batch's (reply.h) so replies keep their order, and the
 * writes on both sides of it go to the engine as one submission instead of
 * one writer round trip per read-then-write (twemproxy interleaves many
 * clients' GETs and SETs on one connection per shard: docs/PERFORMANCE.md).
 * A read of a key the batch writes waits for the batch: a connection reads
 * its own writes.  The command, parsed, is left in *cmd (*used bytes) for
 * the caller to run; when false the parser is as before (a complete
 * command leaves it at its start) and nothing was consumed.
 */
static bool next_read_passes(struct net_conn *c, struct net_resp_cmd *cmd,
			     size_t *used)
{
	const char *buf = c->in.data + c->in_pos, *name = NULL;
	size_t len = c->in.len - c->in_pos, namelen = 0, first, last, step;

	/* Inside MULTI a read is queued, not run: the order of the queue
	 * and the batch must not change.  Held replies stay bounded. */
	if (!c->w->srv->cfg.early_reads || net_multi_active(c) || !c->authed ||
	    net_reply_held(c) >= NET_TURN_OUTPUT ||
	    !net_resp_peek_command(buf, len, &name, &namelen) ||
	    !net_cmd_is_keyed_read(name, namelen))
		return false;
	/* Complete and multibulk (the peek said so): this parses it whole
	 * and leaves the parser at the start of the next command. */
	if (net_resp_parse(&c->parser, buf, len, cmd, used) != NET_RESP_OK)
		return false;
	if (!net_cmd_read_keys(cmd, &first, &last, &step))
		return false;
	for (size_t i = first; i <= last; i += step)
		if (net_batch_writes_key(c, cmd->argv[i], cmd->argvlen[i]))
			return false;
	return true;
}

/* The batch's completion, on the engine's writer (its thread, or this
 * worker): to the mailbox. */
static void batch_done(struct net_conn *c)
{
	net_mailbox_post_done(c);
}

/* Send c's open batch: to the engine, parking c until the completion
 * arrives (or answered at once if the engine refused it); dropped if c is
 * closing, since nobody takes the replies. */
static void batch_send(struct net_conn *c)
{
	if (c->state != NET_CONN_ACTIVE) {
		net_batch_drop(c);
		return;
	}
	if (net_batch_submit(c, batch_done)) {
		c->state = NET_CONN_PARKED;
		c->w->nparked++;
	}
}

/* Run up to NET_CMDS_PER_WAKEUP buffered commands of an ACTIVE c.  Leaves c
 * on the ready list if it may have more. */
void net_conn_process(struct net_conn *c)
{
	struct net_server *s = c->w->srv;
	int budget = NET_CMDS_PER_WAKEUP;

	KVS_ASSERT(net_on_worker(c->w));
	struct net_resp_cmd next;
	size_t next_used = 0;
	bool have_next = false; /* a read next_read_passes() parsed */

	ready_del(c->w, c);
	while (c->state == NET_CONN_ACTIVE) {
		struct net_resp_cmd cmd;
		size_t used = 0;
		int rc;

		if (budget-- == 0) {
			KVS_ASSERT(!have_next);
			ready_add(c->w, c);
			break;
		}
		if (have_next) {
			cmd = next;
			used = next_used;
			rc = NET_RESP_OK;
			have_next = false;
		} else {
			rc = net_resp_parse(&c->parser, c->in.data + c->in_pos,
					    c->in.len - c->in_pos, &cmd, &used);
		}
		c->in_pos += used;
		if (rc == NET_RESP_NEED_MORE)
			break;
		if (rc != NET_RESP_OK) {
			net_resp_put_errorf(&c->out, "ERR %s",
				net_resp_parser_errmsg(&c->parser));
			net_log(NET_LOG_INFO, "client %s (id %llu): %s",
				c->addr, (unsigned long long)c->id,
				net_resp_parser_errmsg(&c->parser));
			c->state = NET_CONN_CLOSING;
			break;
		}
		/* Another reply while those pending are already over the
		 * limit: a client that does not read.  (One huge reply alone
		 * is allowed.) */
		if (net_reply_pending(c) > s->output_limit) {
			net_log(NET_LOG_WARN, "closing client %s (id %llu): "
				"%zu bytes of replies pending, over the "
				"output limit", c->addr,
				(unsigned long long)c->id,
				net_reply_pending(c));
			atomic_fetch_add_explicit(&s->closed_by_limit, 1,
						  memory_order_relaxed);
			conn_close(c);
			return;
		}
		atomic_fetch_add_explicit(&s->total_cmds, 1,
					  memory_order_relaxed);
		net_reply_begin(c);
		bool was_inline = c->parser.inline_cmd;
		size_t held0 = net_reply_held(c);
		net_cmd_execute(c, &cmd);
		net_batch_note_held(c, held0);
		if (net_batch_open(c)) {
			/* Pipelined writes go to the engine together. */
			if (c->state == NET_CONN_ACTIVE && budget > 0 &&
			    !was_inline && net_batch_room(c) &&
			    next_is_write(c))
				continue;
			/* So do those around a read that need not wait. */
			if (c->state == NET_CONN_ACTIVE && budget > 0 &&
			    !was_inline && net_batch_room(c) &&
			    next_read_passes(c, &next, &next_used)) {
				have_next = true;
				continue;
			}
			batch_send(c);
		}
		/* Big replies end the turn early too: 256 GETs of 1 MiB
		 * each would keep the other connections of this worker
		 * waiting for seconds. */
		if (c->state == NET_CONN_ACTIVE &&
		    net_reply_pending(c) >= NET_TURN_OUTPUT) {
			ready_add(c->w, c);
			break;
		}
	}
	if (net_batch_open(c) && c->state != NET_CONN_PARKED)
		batch_send(c); /* dropped: c is closing */
	/* While parked the ops point into `in`: it stays as it is. */
	if (c->state == NET_CONN_ACTIVE && c->in_pos) {
		net_buf_consume(&c->in, c->in_pos);
		c->in_pos = 0;
		if (c->in.len == 0 && c->in.cap > KEEP_BUF)
			net_buf_free(&c->in);
	}
	conn_settle(c);
}

static void conn_read(struct net_conn *c)
{
	struct net_server *s = c->w->srv;
	size_t want = net_resp_parser_hint(&c->parser);
	ssize_t n;

	if (want < READ_SIZE)
		want = READ_SIZE;
	if (c->in.len >= NET_QUERYBUF_MAX) {
		net_log(NET_LOG_WARN, "closing client %s (id %llu): query "
			"buffer over %llu bytes", c->addr,
			(unsigned long long)c->id,
			(unsigned long long)NET_QUERYBUF_MAX);
		conn_close(c);
		return;
	}
	if (net_buf_reserve(&c->in, want) != NET_RESP_OK) {
		net_log(NET_LOG_WARN, "out of memory: closing client %s",
			c->addr);
		conn_close(c);
		return;
	}
	n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len,
		 MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_close(c);
		return;
	}
	if (n == 0) {
		/* The peer is done sending: run what it sent, answer, close. */
		c->eof = 1;
		net_conn_process(c);
		return;
	}
	c->in.len += (size_t)n;
	atomic_fetch_add_explicit(&s->net_in, (uint64_t)n,
				  memory_order_relaxed);
	net_conn_process(c);
}

void net_conn_event(struct net_conn *c, unsigned events)
{
	KVS_ASSERT(net_on_worker(c->w));
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if ((events & EPOLLOUT) && !conn_flush_rearm(c))
		return;
	if (c->state == NET_CONN_ACTIVE && !c->eof && !c->ready &&
	    (events & (EPOLLIN | EPOLLHUP))) {
		conn_read(c);
		return;
	}
	/* A hang-up while parked or closing: nobody will read the replies. */
	if ((events & EPOLLHUP) && c->state != NET_CONN_ACTIVE) {
		conn_close(c);
		return;
	}
	/* Input c may not read now, under interest left on (conn_interest):
	 * it is dropped until c may read again. */
	if ((events & EPOLLIN) && c->state != NET_CONN_ORPHANED)
		conn_interest(c, false);
}

void net_conn_batch_done(struct net_conn *c, bool closing)
{
	struct net_worker *w = c->w;

	KVS_ASSERT(net_on_worker(w) && (c->state == NET_CONN_PARKED ||
					c->state == NET_CONN_ORPHANED));
	w->nparked--;
	if (c->state == NET_CONN_ORPHANED) {
		conn_free(c);
		return;
	}
	c->state = NET_CONN_ACTIVE;
	net_batch_complete(c);
	if (closing) {
		c->state = NET_CONN_CLOSING;
		conn_settle(c);
	} else {
		/* Its pipelined commands run in this turn's ready pass. */
		ready_add(w, c);
	}
}

void net_conn_shut(struct net_conn *c)
{
	KVS_ASSERT(net_on_worker(c->w));
	if (c->state == NET_CONN_ACTIVE) {
		ready_del(c->w, c);
		c->state = NET_CONN_CLOSING;
		conn_settle(c);
	}
}

void net_conn_close_idle(struct net_worker *w, uint64_t timeout_ms)
{
	uint64_t now = net_mono_us() / 1000;
	struct net_conn *c, *next;

	KVS_ASSERT(net_on_worker(w));
	for (c = w->conns; c; c = next) {
		next = c->next;
		uint64_t last = atomic_load_explicit(&c->last_ms,
						     memory_order_relaxed);
		/* Only a connection waiting for its client: one with a
		 * write in flight or replies to send is not idle. */
		if (c->state != NET_CONN_ACTIVE || c->ready ||
		    net_reply_pending(c) || now - last <= timeout_ms)
			continue;
		net_log(NET_LOG_INFO, "closing idle client %s (id %llu)",
			c->addr, (unsigned long long)c->id);
		conn_close(c);
	}
}

void net_conn_drop(struct net_conn *c)
{
	KVS_ASSERT(net_on_worker(c->w));
	if (c->state != NET_CONN_PARKED && c->state != NET_CONN_ORPHANED) {
		/* Shutdown's drain timed out on it: say whom it cost what. */
		net_log(NET_LOG_WARN, "shutdown: dropping client %s (id %llu) "
			"that did not read its replies: %zu bytes unsent",
			c->addr, (unsigned long long)c->id,
			net_reply_pending(c));
		conn_free(c);
	}
}
