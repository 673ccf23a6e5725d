/* acceptor.c - the acceptor thread (kvs-acceptor): blocks in accept(),
 * refuses what it must (protected mode, maxclients, no descriptor left)
 * with a last line, and hands each accepted connection to a worker round
 * robin through the worker's mailbox.  It never parses.  Runs on the
 * acceptor thread only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acceptor.h"
#include "check.h"
#include "mailbox.h"

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
static void acceptor_warn(const struct net_server *s, atomic_llong *last,
			  const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void acceptor_warn(const struct net_server *s, atomic_llong *last,
			  const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	KVS_ASSERT(net_on_acceptor(s));
	if (!net_log_due(last))
		return;
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
static int accept_out_of_fds(struct net_server *s, int err,
			     atomic_llong *last,
			     struct sockaddr_storage *ss, socklen_t *len)
{
	struct pollfd p = { .fd = s->lfd, .events = POLLIN };
	socklen_t len0 = *len;
	int fd;

	KVS_ASSERT(net_on_acceptor(s));
	acceptor_warn(s, last, "accept: %s: refusing new clients until "
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

void *net_acceptor_run(void *arg)
{
	struct net_server *s = arg;
	unsigned rr = 0;
	atomic_llong last_warn = 0;

	/* Before anything else: net_on_acceptor() reads it. */
	s->acceptor_self = pthread_self();
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		struct net_handoff h;
		struct net_worker *w;
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
				acceptor_warn(s, &last_warn, "accept: %s",
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
			acceptor_warn(s, &last_warn, "max number of clients "
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
		if (net_mailbox_post_conn(w, &h) != 0) {
			atomic_fetch_sub_explicit(&s->connected, 1,
						  memory_order_relaxed);
			refuse(fd, "-ERR out of memory\r\n");
		}
	}
	return NULL;
}
