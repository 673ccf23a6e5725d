/* server.c - starting and stopping kvs-server's network layer: the
 * listening socket, maxclients, the workers (a TP_SHARED_QUEUE pool, one
 * event loop each: worker.c), the acceptor (acceptor.c), the port file; and
 * the graceful stop.  The calls of server.h; run by the application's main
 * thread.  docs/THREADS.md has the picture. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acceptor.h"
#include "check.h"
#include "mailbox.h"
#include "save.h"
#include "server_int.h"
#include "tp.h"
#include "worker.h"


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
	s->bind_public = !net_addr_is_loopback((struct sockaddr *)&ss);
	s->protected_mode = net_secret_now(s) == NULL && s->bind_public;
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
		free(w->subs);
		if (w->mu_ready)
			KVS_CHECK(pthread_mutex_destroy(&w->mu));
	}
	free(s->workers);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->spare_fd >= 0)
		close(s->spare_fd);
	for (struct net_secret *p = s->old_secrets, *next; p; p = next) {
		next = p->next;
		free(p);
	}
	free(atomic_load(&s->secret));
	if (s->info_mu_ready) {
		KVS_CHECK(pthread_mutex_destroy(&s->info_mu));
		KVS_CHECK(pthread_mutex_destroy(&s->clients_mu));
	}
	free(s->stats_base);
	net_save_free(s);
	free(s->port_file);
	free(s);
}

static void stop_workers(struct net_server *s)
{
	for (unsigned i = 0; i < s->nworkers; i++) {
		net_mailbox_post_stop(&s->workers[i]);
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

/*
 * The first half of a start: the password and the listening socket, no
 * thread yet.  kvs-server calls it before it opens the store, so that a
 * busy port fails before anything is created on disk; clients that
 * connect meanwhile wait in the backlog until net_server_serve().
 */
int net_server_listen(const struct net_server_config *cfg,
		      struct net_server **out)
{
	struct net_server *s = calloc(1, sizeof *s);

	if (!s) {
		net_log(NET_LOG_ERROR, "out of memory");
		return -1;
	}
	s->cfg = *cfg;
	s->lfd = -1;
	s->spare_fd = -1;
	s->nworkers = cfg->threads ? cfg->threads : 1;
	s->output_limit = cfg->output_limit ? cfg->output_limit :
			  NET_DEFAULT_OUTPUT_LIMIT;
	s->fsync = !cfg->fsync_name ? KVS_FSYNC_EVERYSEC :
		   strcmp(cfg->fsync_name, "always") == 0 ? KVS_FSYNC_ALWAYS :
		   strcmp(cfg->fsync_name, "never") == 0 ? KVS_FSYNC_NEVER :
		   KVS_FSYNC_EVERYSEC;
	KVS_CHECK(pthread_mutex_init(&s->info_mu, NULL));
	KVS_CHECK(pthread_mutex_init(&s->clients_mu, NULL));
	s->info_mu_ready = 1;
	if (cfg->password && cfg->password[0]) {
		size_t len = strlen(cfg->password);
		struct net_secret *p = malloc(sizeof *p + len + 1);
		if (!p)
			goto fail;
		p->next = NULL;
		p->len = len;
		memcpy(p->bytes, cfg->password, len + 1);
		atomic_store(&s->secret, p);
	}
	s->cfg.password = NULL; /* kept only in s->secret */
	s->cfg.port_file = NULL;
	if (cfg->port_file && !(s->port_file = strdup(cfg->port_file))) {
		net_log(NET_LOG_ERROR, "out of memory");
		goto fail;
	}
	/* Before net_save_init: LASTSAVE starts as the start-up time.  Uptime
	 * counts from here, the store's loading included, as Redis's does. */
	s->started = time(NULL);
	if (net_save_init(s, cfg->snapshot_dir) != 0)
		goto fail;
	s->cfg.snapshot_dir = NULL; /* kept only in s->save */
	if (listen_on(s) != 0)
		goto fail;
	*out = s;
	return 0;
fail:
	free_server(s);
	return -1;
}

int net_server_serve(struct net_server *s, struct kvs *db)
{
	int rc;

	s->db = db;
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
		rc = tp_spawn(s->pool, net_worker_run, &s->workers[i]);
		if (rc != TP_OK) {
			/* Workers already running stop at their mailbox. */
			net_log(NET_LOG_ERROR, "tp_spawn: %s", tp_strerror(rc));
			stop_workers(s);
			goto fail;
		}
	}
	rc = pthread_create(&s->acceptor, NULL, net_acceptor_run, s);
	if (rc != 0) {
		net_log(NET_LOG_ERROR, "cannot start the acceptor: %s",
			strerror(rc));
		stop_workers(s);
		goto fail;
	}
	pthread_setname_np(s->acceptor, "kvs-acceptor");
	s->serving = 1;
	/* The start-up lines go out before the port file appears: whoever
	 * waits for the file (a test, a script) finds them in the log.  The
	 * line says whether clients must AUTH, never the password. */
	net_log(NET_LOG_INFO, "kvs-server %s (pid %ld) listening on %s "
		"(port %d); engine %s, data directory %s, %u worker "
		"threads, fsync %s, %s", KVS_VERSION, (long)getpid(),
		s->cfg.addr, s->port, kvs_engine_name(db),
		s->cfg.dir ? s->cfg.dir : ".", s->nworkers,
		s->cfg.fsync_name ? s->cfg.fsync_name : "?",
		net_secret_now(s) ? "password required" : "no password");
	if (s->protected_mode)
		net_log(NET_LOG_WARN, "protected mode is on: no password is "
			"set and the address is not loopback, so only "
			"loopback clients are served (set --requirepass to "
			"serve others)");
	/* Last: the file promises a server that answers. */
	if (s->port_file && write_port_file(s->port_file, s->port) != 0)
		net_log(NET_LOG_WARN, "cannot write the port file %s: %s",
			s->port_file, strerror(errno));
	return 0;
fail:
	if (s->pool)
		stop_workers(s);
	free_server(s);
	return -1;
}

int net_server_start(struct kvs *db, const struct net_server_config *cfg,
		     struct net_server **out)
{
	struct net_server *s;

	if (net_server_listen(cfg, &s) != 0)
		return -1;
	if (net_server_serve(s, db) != 0)
		return -1;
	*out = s;
	return 0;
}

int net_server_port(const struct net_server *s)
{
	return s->port;
}

void net_server_stop(struct net_server *s)
{
	if (!s)
		return;
	if (!s->serving) { /* only listening: no thread to stop */
		free_server(s);
		return;
	}
	/* shutdown() makes the blocked accept() return (EINVAL on Linux);
	 * the flag tells the acceptor that it was on purpose. */
	atomic_store(&s->stopping, 1);
	shutdown(s->lfd, SHUT_RDWR);
	KVS_CHECK(pthread_join(s->acceptor, NULL));
	close(s->lfd);
	s->lfd = -1;
	stop_workers(s);
	net_save_stop(s);
	free_server(s);
}
