/* cmd_save.c - BGSAVE, SAVE and LASTSAVE: point-in-time snapshots of the
 * store (kvs_snapshot) into <snapshot dir>/<unix time in ms>/, with Redis's
 * replies, and the state INFO persistence reports (save.h).
 *
 * One snapshot at a time, as Redis: a BGSAVE runs on a thread of its own
 * while the workers go on serving reads and writes; a SAVE runs on the
 * worker of its connection (that worker's other clients wait, as all of
 * Redis's do during a SAVE).  A BGSAVE or SAVE while one runs gets Redis's
 * "Background save already in progress".  At shutdown the server waits for
 * a running BGSAVE to finish (net_save_stop): for the log engine that is
 * the copy of at most the active segment, so the wait is bounded by one
 * segment's copy and fsync; the store is closed after it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "commands.h"
#include "reply.h"
#include "save.h"

/* Snapshots of one server.  mu guards every field; it is a leaf lock. */
struct net_save {
	pthread_mutex_t mu;
	char *dir;              /* NULL: no snapshot directory */
	struct net_save_status st;
	bool bg;                /* the running snapshot is a BGSAVE */
	bool joinable;          /* thread is to be joined */
	pthread_t thread;
};

int net_save_init(struct net_server *s, const char *dir)
{
	struct net_save *sv = calloc(1, sizeof *sv);

	if (!sv)
		goto nomem;
	KVS_CHECK(pthread_mutex_init(&sv->mu, NULL));
	if (dir && *dir) {
		sv->dir = strdup(dir);
	} else if (s->cfg.dir && *s->cfg.dir) {
		size_t n = strlen(s->cfg.dir) + sizeof "/snapshots";
		if ((sv->dir = malloc(n)) != NULL)
			snprintf(sv->dir, n, "%s/snapshots", s->cfg.dir);
	} else {
		sv->dir = NULL; /* an in-process server without a directory */
		goto done;
	}
	if (!sv->dir) {
		KVS_CHECK(pthread_mutex_destroy(&sv->mu));
		free(sv);
		goto nomem;
	}
done:
	sv->st.last_ok = true;
	sv->st.last_save = s->started; /* as Redis: LASTSAVE before any */
	sv->st.last_bgsave_sec = -1;
	s->save = sv;
	return 0;
nomem:
	net_log(NET_LOG_ERROR, "out of memory");
	return -1;
}

void net_save_stop(struct net_server *s)
{
	struct net_save *sv = s->save;
	bool join;

	if (!sv)
		return;
	KVS_CHECK(pthread_mutex_lock(&sv->mu));
	join = sv->joinable;
	sv->joinable = false;
	if (join && sv->st.in_progress)
		net_log(NET_LOG_INFO, "waiting for the background save to "
			"finish");
	KVS_CHECK(pthread_mutex_unlock(&sv->mu));
	if (join)
		KVS_CHECK(pthread_join(sv->thread, NULL));
}

void net_save_free(struct net_server *s)
{
	struct net_save *sv = s->save;

	if (!sv)
		return;
	KVS_CHECK(pthread_mutex_destroy(&sv->mu));
	free(sv->dir);
	free(sv);
	s->save = NULL;
}

void net_save_status(struct net_server *s, struct net_save_status *out)
{
	struct net_save *sv = s->save;

	if (!sv) {
		memset(out, 0, sizeof *out);
		out->last_ok = true;
		out->last_save = s->started;
		out->last_bgsave_sec = -1;
		return;
	}
	KVS_CHECK(pthread_mutex_lock(&sv->mu));
	*out = sv->st;
	KVS_CHECK(pthread_mutex_unlock(&sv->mu));
}

/* fsync the directory that holds path (path itself is not touched).
 * 0 or an errno value. */
static int sync_parent(const char *path)
{
	char p[4096];
	size_t len = strlen(path);

	if (len >= sizeof p)
		return ENAMETOOLONG;
	memcpy(p, path, len + 1);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	char *slash = strrchr(p, '/');
	if (!slash)
		strcpy(p, ".");
	else if (slash == p)
		p[1] = '\0';
	else
		*slash = '\0';
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int rc = fsync(fd) == 0 ? 0 : errno;
	close(fd);
	return rc;
}

/* mkdir -p dir.  Each directory it creates is made durable (its parent
 * fsynced): a snapshot reported done must not vanish with a directory
 * entry above it that was never synced.  0 or an errno value. */
static int make_dirs(const char *dir)
{
	char p[4096];
	size_t len = strlen(dir);
	struct stat st;

	if (len == 0 || len >= sizeof p)
		return ENAMETOOLONG;
	memcpy(p, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0755) == 0) {
			int rc = sync_parent(p);
			if (rc != 0)
				return rc;
		} else if (errno != EEXIST) {
			return errno;
		}
		p[i] = i < len ? '/' : '\0';
	}
	if (stat(dir, &st) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Take one snapshot into <dir>/<unix ms>/ (a later millisecond if that
 * name is taken).  Records the outcome in sv->st and ends in_progress.
 * Returns KVS_OK or the error, with the message in msg. */
static int run_snapshot(struct net_server *s, char *msg, size_t msglen)
{
	struct net_save *sv = s->save;
	char path[4096];
	struct kvs_store_stats kst;
	uint64_t writes = 0;
	int rc = KVS_OK, e;
	bool bg;
	time_t t0 = time(NULL);

	/* Writes counted before the snapshot point are in it: a lower bound
	 * for rdb_changes_since_last_save. */
	if (kvs_stats_cached(s->db, &kst) == KVS_OK)
		writes = kst.writes;
	if ((e = make_dirs(sv->dir)) != 0) {
		rc = KVS_EIO;
		snprintf(msg, msglen, "%s: %s", sv->dir, strerror(e));
	} else {
		int64_t ms = wall_ms();
		for (int i = 0; i < 1000; i++) {
			if ((size_t)snprintf(path, sizeof path, "%s/%" PRId64,
					     sv->dir, ms + i) >= sizeof path) {
				rc = KVS_EINVAL;
				snprintf(msg, msglen, "%s: name too long",
					 sv->dir);
				break;
			}
			rc = kvs_snapshot(s->db, path);
			if (rc != KVS_EEXIST)
				break;
		}
		if (rc != KVS_OK && rc != KVS_EINVAL)
			snprintf(msg, msglen, "%s", kvs_errmsg());
	}
	KVS_CHECK(pthread_mutex_lock(&sv->mu));
	bg = sv->bg; /* another snapshot may start once the lock is gone */
	sv->st.in_progress = false;
	sv->st.last_ok = rc == KVS_OK;
	if (bg)
		sv->st.last_bgsave_sec = (long long)(time(NULL) - t0);
	if (rc == KVS_OK) {
		sv->st.last_save = time(NULL);
		sv->st.saves++;
		sv->st.writes_at_save = writes;
		snprintf(sv->st.last_path, sizeof sv->st.last_path, "%s",
			 path);
	}
	KVS_CHECK(pthread_mutex_unlock(&sv->mu));
	if (rc == KVS_OK)
		net_log(NET_LOG_INFO, "%s saved to %s",
			bg ? "background snapshot" : "snapshot", path);
	else
		net_log(NET_LOG_WARN, "%s failed: %s",
			bg ? "background snapshot" : "snapshot", msg);
	return rc;
}

static void *bgsave_main(void *arg)
{
	char msg[512];

	(void)run_snapshot(arg, msg, sizeof msg);
	return NULL;
}

/* Claim the one snapshot slot, or reply the error and return false. */
static bool claim(struct net_conn *c, bool bg)
{
	struct net_save *sv = c->w->srv->save;
	bool ok = false;

	if (!sv || !sv->dir) {
		net_reply_error(c, "ERR no snapshot directory (start "
				"kvs-server with --dir or --snapshot-dir)");
		return false;
	}
	KVS_CHECK(pthread_mutex_lock(&sv->mu));
	if (!sv->st.in_progress) {
		ok = true;
		sv->st.in_progress = true;
		sv->st.current_start = time(NULL);
		sv->bg = bg;
	}
	KVS_CHECK(pthread_mutex_unlock(&sv->mu));
	if (!ok)
		net_reply_error(c, "ERR Background save already in progress");
	return ok;
}

void net_cmd_bgsave(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	struct net_save *sv = s->save;
	pthread_t old;
	bool join;
	int e;

	/* SCHEDULE: accepted as Redis does; nothing here ever needs to wait
	 * for another background job, so it starts at once. */
	if (cmd->argc > 2 || (cmd->argc == 2 && !net_arg_is(cmd, 1, "schedule"))) {
		net_reply_error(c, "ERR syntax error");
		return;
	}
	if (!claim(c, true))
		return;
	/* The previous BGSAVE's thread has ended (in_progress was false). */
	KVS_CHECK(pthread_mutex_lock(&sv->mu));
	join = sv->joinable;
	old = sv->thread;
	sv->joinable = false;
	KVS_CHECK(pthread_mutex_unlock(&sv->mu));
	if (join)
		KVS_CHECK(pthread_join(old, NULL));
	KVS_CHECK(pthread_mutex_lock(&sv->mu));
	e = pthread_create(&sv->thread, NULL, bgsave_main, s);
	if (e == 0)
		sv->joinable = true;
	else
		sv->st.in_progress = false;
	KVS_CHECK(pthread_mutex_unlock(&sv->mu));
	if (e != 0) {
		net_reply_errorf(c, "ERR cannot start the background save: %s",
				 strerror(e));
		return;
	}
	net_reply_simple(c, "Background saving started");
}

void net_cmd_save(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	char msg[512];

	(void)cmd;
	if (!claim(c, false))
		return;
	if (run_snapshot(c->w->srv, msg, sizeof msg) == KVS_OK)
		net_reply_ok(c);
	else
		net_reply_errorf(c, "ERR snapshot failed: %s", msg);
}

void net_cmd_lastsave(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_save_status st;

	(void)cmd;
	net_save_status(c->w->srv, &st);
	net_reply_int(c, (long long)st.last_save);
}
