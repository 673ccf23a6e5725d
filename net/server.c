/* server.c - kvs-server's threads: the acceptor, the worker event loops and
 * the life of a connection (read, parse, execute, park on a write, reply).
 * docs/THREADS.md has the picture; commands.c has the commands. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "server_int.h"
#include "tp.h"

#define READ_SIZE (16u << 10)
#define EVENTS_PER_WAIT 256
/* Buffers bigger than this are released once empty, so idle connections
 * hold little memory after a big request or reply. */
#define KEEP_BUF (64u << 10)
/* How long shutdown waits for clients to take their last replies. */
#define DRAIN_MS 3000


static void conn_process(struct net_conn *c);

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

/* ---- connections ---------------------------------------------------------- */

/* The one place a connection and its buffers are released. */
static void conn_free(struct net_conn *c)
{
	struct net_worker *w = c->w;

	ready_del(w, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	w->nconns--;
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	net_resp_parser_free(&c->parser);
	net_buf_free(&c->in);
	net_buf_free(&c->out);
	net_buf_free(&c->defer);
	free(c->ops);
	free(c->wcmds);
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
		epoll_ctl(c->w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		c->state = NET_CONN_ORPHANED;
		return;
	}
	if (c->state != NET_CONN_ORPHANED)
		conn_free(c);
}

static void conn_new(struct net_worker *w, const struct net_handoff *h)
{
	struct net_server *s = w->srv;
	struct net_conn *c = calloc(1, sizeof *c);
	struct epoll_event ev;
	int one = 1;

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
	c->authed = s->password == NULL;
	c->since = time(NULL);
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
	}
}

static size_t out_pending(const struct net_conn *c)
{
	return c->out.len - c->out_pos;
}

/* Register the events c needs now: input while it may read, output while
 * replies wait.  Errors and hang-ups are always reported. */
static void conn_interest(struct net_conn *c)
{
	unsigned want = 0;
	struct epoll_event ev;

	/* No reading while buffered commands wait their turn: the backlog
	 * (and the memmove of it) stays one read big. */
	if (c->state == NET_CONN_ACTIVE && !c->eof && !c->ready)
		want |= EPOLLIN;
	if (out_pending(c))
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

	while (out_pending(c)) {
		ssize_t n = send(c->fd, c->out.data + c->out_pos,
				 out_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
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

/* After c did something: send replies, close a finished connection, or
 * update its epoll interest.  c may be freed. */
static void conn_settle(struct net_conn *c)
{
	if (c->state == NET_CONN_ORPHANED)
		return;
	if (c->eof && c->state == NET_CONN_ACTIVE && !c->ready)
		c->state = NET_CONN_CLOSING; /* every complete command ran */
	if (conn_flush(c) != 0)
		return;
	if (c->state == NET_CONN_CLOSING && !out_pending(c)) {
		conn_free(c);
		return;
	}
	conn_interest(c);
}

static int next_is_write(const struct net_conn *c);

/* Run up to NET_CMDS_PER_WAKEUP buffered commands of an ACTIVE c.  Leaves c
 * on the ready list if it may have more. */
static void conn_process(struct net_conn *c)
{
	struct net_server *s = c->w->srv;
	int budget = NET_CMDS_PER_WAKEUP;

	ready_del(c->w, c);
	while (c->state == NET_CONN_ACTIVE) {
		struct net_resp_cmd cmd;
		size_t used = 0;
		int rc;

		if (budget-- == 0) {
			ready_add(c->w, c);
			break;
		}
		rc = net_resp_parse(&c->parser, c->in.data + c->in_pos,
				    c->in.len - c->in_pos, &cmd, &used);
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
		if (out_pending(c) > s->output_limit) {
			net_log(NET_LOG_WARN, "closing client %s (id %llu): "
				"%zu bytes of replies pending, over the "
				"output limit", c->addr,
				(unsigned long long)c->id, out_pending(c));
			atomic_fetch_add_explicit(&s->closed_by_limit, 1,
						  memory_order_relaxed);
			conn_close(c);
			return;
		}
		atomic_fetch_add_explicit(&s->total_cmds, 1,
					  memory_order_relaxed);
		c->reply_pieces = 0;
		int was_inline = c->parser.inline_cmd;
		net_cmd_execute(c, &cmd);
		if (net_cmd_batch_open(c)) {
			/* Pipelined writes go to the engine together. */
			if (c->state == NET_CONN_ACTIVE && budget > 0 &&
			    !was_inline && net_cmd_batch_room(c) &&
			    next_is_write(c))
				continue;
			net_cmd_batch_submit(c);
		}
		/* Big replies end the turn early too: 256 GETs of 1 MiB
		 * each would keep the other connections of this worker
		 * waiting for seconds. */
		if (c->state == NET_CONN_ACTIVE &&
		    out_pending(c) >= NET_TURN_OUTPUT) {
			ready_add(c->w, c);
			break;
		}
	}
	if (net_cmd_batch_open(c) && c->state != NET_CONN_PARKED)
		net_cmd_batch_submit(c); /* dropped: c is closing */
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
		conn_process(c);
		return;
	}
	c->in.len += (size_t)n;
	atomic_fetch_add_explicit(&s->net_in, (uint64_t)n,
				  memory_order_relaxed);
	conn_process(c);
}

static void conn_event(struct net_conn *c, unsigned events)
{
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (events & EPOLLOUT) {
		if (conn_flush(c) != 0)
			return;
		if (c->state == NET_CONN_CLOSING && !out_pending(c)) {
			conn_free(c);
			return;
		}
		conn_interest(c);
	}
	if (c->state == NET_CONN_ACTIVE && !c->eof && !c->ready &&
	    (events & (EPOLLIN | EPOLLHUP))) {
		conn_read(c);
		return;
	}
	/* A hang-up while parked or closing: nobody will read the replies. */
	if ((events & EPOLLHUP) && c->state != NET_CONN_ACTIVE)
		conn_close(c);
}

/* ---- writes: parking while the engine has the batch ----------------------- */

/* Is the next command buffered in c complete, a multibulk one, and a write?
 * Only then may it join the open batch: anything else must wait for the
 * batch's completion (a read must see the writes before it).  Inline
 * commands never join: their arguments live in the parser's scratch, which
 * the next command reuses. */
static int next_is_write(const struct net_conn *c)
{
	const char *p = c->in.data + c->in_pos;
	const char *end = c->in.data + c->in.len;
	const char *name = NULL;
	size_t namelen = 0;
	long long nargs = 0;

	if (p == end || *p != '*')
		return 0;
	for (long long i = -1; i < nargs; i++) {
		/* "*N\r\n" first, then N times "$L\r\n" + L bytes + "\r\n". */
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		long long v = 0;
		if (!nl || nl - p < 3 || nl[-1] != '\r' ||
		    *p != (i < 0 ? '*' : '$'))
			return 0;
		for (const char *q = p + 1; q < nl - 1; q++) {
			if (*q < '0' || *q > '9' || v > NET_RESP_MAX_BULK)
				return 0;
			v = v * 10 + (*q - '0');
		}
		p = nl + 1;
		if (i < 0) {
			if (v < 1 || v > NET_RESP_MAX_ARGS)
				return 0;
			nargs = v;
			continue;
		}
		if (end - p < v + 2)
			return 0;
		if (i == 0) {
			name = p;
			namelen = (size_t)v;
		}
		p += v + 2;
	}
	return net_cmd_is_write(name, namelen);
}

void net_conn_park(struct net_conn *c)
{
	c->state = NET_CONN_PARKED;
	c->w->nparked++;
}

void net_conn_done(struct net_conn *c)
{
	struct net_worker *w = c->w;
	uint64_t one = 1;

	c->done_next = NULL;
	KVS_CHECK(pthread_mutex_lock(&w->mu));
	int ring = !w->done_head;
	if (w->done_tail)
		w->done_tail->done_next = c;
	else
		w->done_head = c;
	w->done_tail = c;
	/* Ring only when the list was empty: otherwise a ring is pending
	 * already, and the worker takes the whole list when it answers (one
	 * eventfd write per round, not per connection).  Ring before
	 * unlocking: once the worker can see the completion it may finish,
	 * and the server free w and close the eventfd.  (An eventfd write
	 * fails only if the counter would overflow.) */
	if (ring && write(w->evfd, &one, sizeof one) < 0) {
	}
	KVS_CHECK(pthread_mutex_unlock(&w->mu));
}

/* ---- the worker's event loop ------------------------------------------------ */

static void drain_begin(struct net_worker *w)
{
	struct net_conn *c, *next;

	w->draining = 1;
	clock_gettime(CLOCK_MONOTONIC, &w->drain_deadline);
	w->drain_deadline.tv_sec += DRAIN_MS / 1000;
	for (c = w->conns; c; c = next) {
		next = c->next;
		if (c->state == NET_CONN_ACTIVE) {
			ready_del(w, c);
			c->state = NET_CONN_CLOSING;
			conn_settle(c);
		}
	}
}

/* Take the mailbox: new connections, completions, the stop request. */
static void mailbox(struct net_worker *w)
{
	struct net_handoff *hand;
	struct net_conn *done, *next;
	size_t nhand, i;
	uint64_t v;
	int stop;

	if (read(w->evfd, &v, sizeof v) < 0) {
		/* EAGAIN: a doorbell already answered. */
	}
	KVS_CHECK(pthread_mutex_lock(&w->mu));
	hand = w->hand;
	nhand = w->nhand;
	w->hand = NULL;
	w->nhand = w->caphand = 0;
	done = w->done_head;
	w->done_head = w->done_tail = NULL;
	stop = w->stop;
	KVS_CHECK(pthread_mutex_unlock(&w->mu));

	for (i = 0; i < nhand; i++) {
		if (w->draining || stop) {
			close(hand[i].fd);
			atomic_fetch_sub_explicit(&w->srv->connected, 1,
						  memory_order_relaxed);
		} else {
			conn_new(w, &hand[i]);
		}
	}
	free(hand);
	for (; done; done = next) {
		next = done->done_next;
		w->nparked--;
		if (done->state == NET_CONN_ORPHANED) {
			conn_free(done);
			continue;
		}
		done->state = NET_CONN_ACTIVE;
		net_cmd_complete(done);
		if (w->draining || stop) {
			done->state = NET_CONN_CLOSING;
			conn_settle(done);
		} else {
			/* Its pipelined commands run in this turn's ready pass. */
			ready_add(w, done);
		}
	}
	if (stop && !w->draining)
		drain_begin(w);
}

static int drain_expired(const struct net_worker *w)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > w->drain_deadline.tv_sec ||
	       (now.tv_sec == w->drain_deadline.tv_sec &&
		now.tv_nsec >= w->drain_deadline.tv_nsec);
}

static void worker_run(void *arg)
{
	struct net_worker *w = arg;
	struct epoll_event ev[EVENTS_PER_WAIT];

	for (;;) {
		int timeout = w->ready_head ? 0 : w->draining ? 50 : -1;
		int n = epoll_wait(w->epfd, ev, EVENTS_PER_WAIT, timeout);
		struct net_conn *c, *last;
		int rang = 0;

		if (n < 0 && errno != EINTR) {
			net_log(NET_LOG_ERROR, "worker %u: epoll_wait: %s",
				w->idx, strerror(errno));
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == NULL)
				rang = 1;
			else
				conn_event(ev[i].data.ptr, ev[i].events);
		}
		/* After the connection events: the mailbox may free a
		 * connection whose event is in this batch. */
		if (rang)
			mailbox(w);
		/* One turn for each connection that was ready when the pass
		 * began; those that are still ready go to the back. */
		last = w->ready_tail;
		while ((c = w->ready_head) != NULL) {
			int was_last = c == last;

			conn_process(c);
			if (was_last)
				break;
		}
		if (!w->draining)
			continue;
		if (drain_expired(w)) {
			/* Clients that did not take their replies in time. */
			struct net_conn *next;

			for (c = w->conns; c; c = next) {
				next = c->next;
				if (c->state != NET_CONN_PARKED &&
				    c->state != NET_CONN_ORPHANED)
					conn_free(c);
			}
		}
		if (w->nconns == 0)
			break;
	}
}

/* ---- the acceptor ---------------------------------------------------------- */

static void peer_name(const struct sockaddr_storage *ss, char *out,
		      size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
		snprintf(out, size, "%s:%d", host, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
		snprintf(out, size, "[%s]:%d", host, port);
	} else {
		snprintf(out, size, "?");
	}
}

/* Send a last line to a socket we are about to close; best effort. */
static void refuse(int fd, const char *line)
{
	ssize_t n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)n;
	close(fd);
}

static const char denied_msg[] =
	"-DENIED kvs-server is running in protected mode: it listens on a "
	"non-loopback address and no password is set, so only clients on the "
	"loopback interface are served. To serve this host, restart it with "
	"a password (--requirepass, --requirepass-file or the KVS_PASSWORD "
	"environment variable), or bind it to a loopback address only "
	"(--addr 127.0.0.1:PORT) and reach it through a tunnel.\r\n";

/* Log `what` unless a line went out this second (at most one a second:
 * a client storm at the limit must not flood the log).  Acceptor only. */
static void acceptor_warn(time_t *last, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void acceptor_warn(time_t *last, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	time_t now = time(NULL);

	if (now == *last)
		return;
	*last = now;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	net_log(NET_LOG_WARN, "%s", msg);
}

static const char maxclients_msg[] = "-ERR max number of clients reached\r\n";

/*
 * accept() failed with EMFILE/ENFILE: no descriptor for a new connection.
 * Calling accept() again at once would fail again at once (a spinning
 * acceptor), and a client left in the backlog hangs.  So wait (poll, no
 * CPU) until a client is waiting, and try again: descriptors may be free
 * by then.  If they are still not, give back the spare descriptor kept for
 * this, take the connection with it, refuse it as over the client limit,
 * and take the spare again (libev's and nginx's trick).  Without a spare
 * (another thread took its slot), wait a little instead.  Returns the
 * accepted connection to serve, or -1.
 */
static int accept_out_of_fds(struct net_server *s, int err, time_t *last,
			     struct sockaddr_storage *ss, socklen_t *len)
{
	struct pollfd p = { .fd = s->lfd, .events = POLLIN };
	socklen_t len0 = *len;
	int fd;

	acceptor_warn(last, "accept: %s: refusing new clients until "
		      "descriptors are free (%llu clients connected, "
		      "maxclients %llu)", strerror(err),
		      (unsigned long long)atomic_load_explicit(&s->connected,
			memory_order_relaxed),
		      (unsigned long long)s->maxclients);
	/* shutdown() of the listening socket (stopping) wakes it too. */
	if (poll(&p, 1, -1) < 0 || atomic_load(&s->stopping))
		return -1;
	fd = accept4(s->lfd, (struct sockaddr *)ss, len,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		return fd;
	if (errno != EMFILE && errno != ENFILE)
		return -1;
	if (s->spare_fd < 0) {
		usleep(100000); /* ten tries a second at most */
		return -1;
	}
	close(s->spare_fd);
	s->spare_fd = -1;
	*len = len0;
	/* A client is waiting: this does not block (unless it went away
	 * meanwhile; then it takes the next one). */
	fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		atomic_fetch_add_explicit(&s->total_conns, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&s->rejected, 1,
					  memory_order_relaxed);
		refuse(fd, maxclients_msg);
	}
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return -1;
}

static void *acceptor_run(void *arg)
{
	struct net_server *s = arg;
	unsigned rr = 0;
	time_t last_warn = 0;

	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		struct net_handoff h;
		struct net_worker *w;
		uint64_t one = 1;
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (atomic_load(&s->stopping)) {
			if (fd >= 0)
				close(fd);
			break;
		}
		if (fd < 0) {
			int e = errno;
			if (e == EINTR || e == ECONNABORTED || e == EPROTO)
				continue;
			if (e != EMFILE && e != ENFILE) {
				/* Out of memory (ENOBUFS, ENOMEM) or worse:
				 * the client stays queued; try again soon. */
				acceptor_warn(&last_warn, "accept: %s",
					      strerror(e));
				usleep(100000);
				continue;
			}
			len = sizeof ss;
			fd = accept_out_of_fds(s, e, &last_warn, &ss, &len);
			if (fd < 0)
				continue;
		}
		atomic_fetch_add_explicit(&s->total_conns, 1,
					  memory_order_relaxed);
		if (s->spare_fd < 0) /* lost at the last shortage */
			s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		peer_name(&ss, h.addr, sizeof h.addr);
		if (s->protected_mode &&
		    !net_addr_is_loopback((struct sockaddr *)&ss)) {
			net_log(NET_LOG_WARN, "protected mode: refused client "
				"%s", h.addr);
			atomic_fetch_add_explicit(&s->rejected, 1,
						  memory_order_relaxed);
			refuse(fd, denied_msg);
			continue;
		}
		if (atomic_load_explicit(&s->connected, memory_order_relaxed)
		    >= s->maxclients) {
			acceptor_warn(&last_warn, "max number of clients "
				      "reached (%llu): refusing client %s",
				      (unsigned long long)s->maxclients,
				      h.addr);
			atomic_fetch_add_explicit(&s->rejected, 1,
						  memory_order_relaxed);
			refuse(fd, maxclients_msg);
			continue;
		}
		atomic_fetch_add_explicit(&s->connected, 1,
					  memory_order_relaxed);
		h.fd = fd;
		w = &s->workers[rr++ % s->nworkers];
		KVS_CHECK(pthread_mutex_lock(&w->mu));
		if (w->nhand == w->caphand) {
			size_t cap = w->caphand ? w->caphand * 2 : 16;
			struct net_handoff *p = realloc(w->hand,
							cap * sizeof *p);
			if (!p) {
				KVS_CHECK(pthread_mutex_unlock(&w->mu));
				atomic_fetch_sub_explicit(&s->connected, 1,
					memory_order_relaxed);
				refuse(fd, "-ERR out of memory\r\n");
				continue;
			}
			w->hand = p;
			w->caphand = cap;
		}
		w->hand[w->nhand++] = h;
		KVS_CHECK(pthread_mutex_unlock(&w->mu));
		if (write(w->evfd, &one, sizeof one) < 0) {
		}
	}
	return NULL;
}

/* ---- start and stop ------------------------------------------------------------ */

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int listen_on(struct net_server *s)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (net_parse_addr(s->cfg.addr, &ss, &len) != 0) {
		net_log(NET_LOG_ERROR, "invalid address '%s' (expected "
			"IP:PORT or [IPv6]:PORT)", s->cfg.addr);
		return -1;
	}
	s->protected_mode = s->password == NULL &&
			    !net_addr_is_loopback((struct sockaddr *)&ss);
	s->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0) {
		net_log(NET_LOG_ERROR, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s->lfd, (struct sockaddr *)&ss, len) != 0) {
		net_log(NET_LOG_ERROR, "cannot bind %s: %s", s->cfg.addr,
			strerror(errno));
		return -1;
	}
	if (listen(s->lfd, 511) != 0) {
		net_log(NET_LOG_ERROR, "cannot listen on %s: %s", s->cfg.addr,
			strerror(errno));
		return -1;
	}
	len = sizeof ss;
	getsockname(s->lfd, (struct sockaddr *)&ss, &len);
	s->port = ss.ss_family == AF_INET6 ?
		  ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) :
		  ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* Release what start set up, whatever point it reached: descriptors are
 * -1 until opened, mutexes are destroyed only if initialised. */
static void free_server(struct net_server *s)
{
	for (unsigned i = 0; s->workers && i < s->nworkers; i++) {
		struct net_worker *w = &s->workers[i];

		if (w->epfd >= 0)
			close(w->epfd);
		if (w->evfd >= 0)
			close(w->evfd);
		for (size_t j = 0; j < w->nhand; j++)
			close(w->hand[j].fd);
		free(w->hand);
		if (w->mu_ready)
			KVS_CHECK(pthread_mutex_destroy(&w->mu));
	}
	free(s->workers);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	free(s->password);
	free(s);
}

static void stop_workers(struct net_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct net_worker *w = &s->workers[i];
		uint64_t one = 1;

		KVS_CHECK(pthread_mutex_lock(&w->mu));
		w->stop = 1;
		KVS_CHECK(pthread_mutex_unlock(&w->mu));
		if (write(w->evfd, &one, sizeof one) < 0) {
		}
	}
	tp_pool_shutdown(s->pool);
	s->pool = NULL;
}

/*
 * maxclients: the descriptor limit (RLIMIT_NOFILE's soft limit, which
 * kvs-server raises to the hard one at start) less what the server and the
 * store need besides clients, so that a full house of clients never
 * starves the store of the descriptor it needs for a rotation, a
 * compaction output, a hint file or a directory fsync (docs/THREADS.md).
 */
static void set_maxclients(struct net_server *s)
{
	struct rlimit rl;
	uint64_t reserve = NET_FD_RESERVE_STORE + NET_FD_RESERVE_SERVER +
			   2 * (uint64_t)s->nworkers;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    rl.rlim_cur == RLIM_INFINITY) {
		s->maxclients = NET_MAXCLIENTS_UNLIMITED;
		net_log(NET_LOG_INFO, "maxclients %llu (no descriptor limit)",
			(unsigned long long)s->maxclients);
		return;
	}
	if (rl.rlim_cur <= reserve) {
		s->maxclients = 1;
		net_log(NET_LOG_WARN, "the descriptor limit %llu leaves no room "
			"for clients beyond the %llu kept for the store and "
			"the server: maxclients 1; raise it (ulimit -n)",
			(unsigned long long)rl.rlim_cur,
			(unsigned long long)reserve);
		return;
	}
	s->maxclients = rl.rlim_cur - reserve;
	net_log(NET_LOG_INFO, "maxclients %llu (descriptor limit %llu, %llu "
		"kept for the store, the listening socket and %u workers)",
		(unsigned long long)s->maxclients,
		(unsigned long long)rl.rlim_cur, (unsigned long long)reserve,
		s->nworkers);
}

int net_server_start(struct kvs *db, const struct net_server_config *cfg,
		     struct net_server **out)
{
	struct net_server *s = calloc(1, sizeof *s);
	int rc;

	if (!s) {
		net_log(NET_LOG_ERROR, "out of memory");
		return -1;
	}
	s->db = db;
	s->cfg = *cfg;
	s->lfd = -1;
	s->nworkers = cfg->threads ? cfg->threads : 1;
	s->output_limit = cfg->output_limit ? cfg->output_limit :
			  NET_DEFAULT_OUTPUT_LIMIT;
	s->spare_fd = -1;
	s->started = time(NULL);
	if (cfg->password && cfg->password[0]) {
		s->passlen = strlen(cfg->password);
		s->password = strdup(cfg->password);
		if (!s->password)
			goto fail;
	}
	s->cfg.password = NULL; /* kept only in s->password */
	s->cfg.port_file = NULL;
	if (listen_on(s) != 0)
		goto fail;
	/* The acceptor's spare descriptor for running out of them. */
	s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s->spare_fd < 0) {
		net_log(NET_LOG_ERROR, "/dev/null: %s", strerror(errno));
		goto fail;
	}
	s->workers = calloc(s->nworkers, sizeof *s->workers);
	if (!s->workers) {
		net_log(NET_LOG_ERROR, "out of memory");
		goto fail;
	}
	/* Before anything can fail: free_server() must not take a zeroed
	 * worker's descriptors for fd 0. */
	for (unsigned i = 0; i < s->nworkers; i++)
		s->workers[i].epfd = s->workers[i].evfd = -1;
	for (unsigned i = 0; i < s->nworkers; i++) {
		struct net_worker *w = &s->workers[i];
		struct epoll_event ev;

		w->srv = s;
		w->idx = i;
		KVS_CHECK(pthread_mutex_init(&w->mu, NULL));
		w->mu_ready = 1;
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd >= 0)
			w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->epfd < 0 || w->evfd < 0) {
			net_log(NET_LOG_ERROR, "worker %u: %s: %s", i,
				w->epfd < 0 ? "epoll_create1" : "eventfd",
				strerror(errno));
			goto fail;
		}
		memset(&ev, 0, sizeof ev);
		ev.events = EPOLLIN;
		ev.data.ptr = NULL;
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) != 0) {
			net_log(NET_LOG_ERROR, "worker %u: epoll_ctl: %s", i,
				strerror(errno));
			goto fail;
		}
	}
	set_maxclients(s);
	rc = tp_pool_new(TP_SHARED_QUEUE, s->nworkers, "kvs-worker", &s->pool);
	if (rc != TP_OK) {
		net_log(NET_LOG_ERROR, "cannot start %u workers: %s",
			s->nworkers, tp_strerror(rc));
		goto fail;
	}
	for (unsigned i = 0; i < s->nworkers; i++) {
		rc = tp_spawn(s->pool, worker_run, &s->workers[i]);
		if (rc != TP_OK) {
			/* Workers already running stop at their mailbox. */
			net_log(NET_LOG_ERROR, "tp_spawn: %s", tp_strerror(rc));
			stop_workers(s);
			goto fail;
		}
	}
	rc = pthread_create(&s->acceptor, NULL, acceptor_run, s);
	if (rc != 0) {
		net_log(NET_LOG_ERROR, "cannot start the acceptor: %s",
			strerror(rc));
		stop_workers(s);
		goto fail;
	}
	pthread_setname_np(s->acceptor, "kvs-acceptor");
	/* The start-up lines go out before the port file appears: whoever
	 * waits for the file (a test, a script) finds them in the log. */
	net_log(NET_LOG_INFO, "kvs-server %s (pid %ld) listening on %s "
		"(port %d); engine %s, data directory %s, %u worker "
		"threads, fsync %s%s", KVS_VERSION, (long)getpid(),
		s->cfg.addr, s->port, kvs_engine_name(db),
		s->cfg.dir ? s->cfg.dir : ".", s->nworkers,
		s->cfg.fsync_name ? s->cfg.fsync_name : "?",
		s->password ? ", password required" : "");
	if (s->protected_mode)
		net_log(NET_LOG_WARN, "protected mode is on: no password is "
			"set and the address is not loopback, so only "
			"loopback clients are served (set --requirepass to "
			"serve others)");
	if (cfg->port_file && write_port_file(cfg->port_file, s->port) != 0)
		net_log(NET_LOG_WARN, "cannot write the port file %s: %s",
			cfg->port_file, strerror(errno));
	*out = s;
	return 0;
fail:
	if (s->pool)
		stop_workers(s);
	free_server(s);
	return -1;
}

int net_server_port(const struct net_server *s)
{
	return s->port;
}

void net_server_stop(struct net_server *s)
{
	if (!s)
		return;
	/* shutdown() makes the blocked accept() return (EINVAL on Linux);
	 * the flag tells the acceptor that it was on purpose. */
	atomic_store(&s->stopping, 1);
	shutdown(s->lfd, SHUT_RDWR);
	KVS_CHECK(pthread_join(s->acceptor, NULL));
	close(s->lfd);
	s->lfd = -1;
	stop_workers(s);
	free_server(s);
}
