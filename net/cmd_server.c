/* cmd_server.c - the server commands INFO and DBSIZE: figures of the
 * server (stats.c's counters summed over the workers) and of the store
 * (the writer's last published ones, so neither waits for it).  Run by the
 * connection's worker. */
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "commands.h"
#include "reply.h"
#include "save.h"
#include "stats.h"

/* ---- INFO and DBSIZE ---------------------------------------------------- */

static void info_line(struct net_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void info_line(struct net_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line)
		n = sizeof line - 1;
	net_buf_append(b, line, (size_t)n);
	net_buf_append(b, "\r\n", 2);
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), \
						     memory_order_relaxed))

/* INFO's sections, in Redis's order; which ones "default", "all" and
 * "everything" mean. */
enum {
	S_SERVER, S_CLIENTS, S_MEMORY, S_PERSISTENCE, S_STATS, S_REPLICATION,
	S_CPU, S_MODULES, S_COMMANDSTATS, S_ERRORSTATS, S_CLUSTER, S_KEYSPACE,
	S_COUNT
};
static const char *const section_names[S_COUNT] = {
	"server", "clients", "memory", "persistence", "stats", "replication",
	"cpu", "modules", "commandstats", "errorstats", "cluster", "keyspace",
};
#define S_BIT(x) (1u << (x))
#define S_ALL ((1u << S_COUNT) - 1)
#define S_DEFAULT (S_ALL & ~S_BIT(S_COMMANDSTATS))

static unsigned info_sections(const struct net_resp_cmd *cmd)
{
	unsigned want = 0;

	if (cmd->argc == 1)
		return S_DEFAULT;
	for (size_t i = 1; i < cmd->argc; i++) {
		if (net_arg_is(cmd, i, "all") ||
		    net_arg_is(cmd, i, "everything"))
			want |= S_ALL;
		else if (net_arg_is(cmd, i, "default"))
			want |= S_DEFAULT;
		for (unsigned k = 0; k < S_COUNT; k++)
			if (net_arg_is(cmd, i, section_names[k]))
				want |= S_BIT(k);
	}
	return want;
}

/* Bytes the process has allocated (glibc's arenas and mmapped blocks),
 * and its resident set (/proc/self/statm). */
static uint64_t mem_rss(void);
static uint64_t mem_used(void)
{
	struct mallinfo2 mi = mallinfo2();
	uint64_t n = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;

	/* Another allocator in front of glibc's (a sanitizer's) leaves
	 * mallinfo at 0: the resident set is the best figure then. */
	return n ? n : mem_rss();
}

static uint64_t mem_rss(void)
{
	unsigned long long size = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%llu %llu", &size, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000;
}

/* Commands a second since the previous sample (taken by INFO, at most
 * every 100 ms; the first INFO's sample is the average since start).
 * Call with info_mu held. */
static uint64_t ops_per_sec(struct net_server *s, uint64_t total)
{
	uint64_t now = now_ms(), rate;

	if (!s->ops_ms) {
		uint64_t up = (uint64_t)(time(NULL) - s->started) * 1000u;
		s->ops_ms = now - (up < now ? up : 0);
	}
	if (now - s->ops_ms < 100)
		return s->ops_rate;
	rate = (total - s->ops_total) * 1000u / (now - s->ops_ms);
	s->ops_ms = now;
	s->ops_total = total;
	s->ops_rate = rate;
	return rate;
}

static void info_server(struct net_buf *b, struct net_server *s)
{
	struct utsname u;
	time_t now = time(NULL);

	if (uname(&u) != 0)
		memset(&u, 0, sizeof u);
	info_line(b, "# Server");
	/* Clients decide what they may send by this: the Redis version whose
	 * commands and replies kvs follows.  kvs's own is kvs_version. */
	info_line(b, "redis_version:7.0.0");
	info_line(b, "kvs_version:%s", KVS_VERSION);
	info_line(b, "redis_mode:standalone");
	info_line(b, "os:%s %s %s", u.sysname, u.release, u.machine);
	info_line(b, "arch_bits:%d", (int)(sizeof(void *) * 8));
	info_line(b, "multiplexing_api:epoll");
	info_line(b, "process_id:%ld", (long)getpid());
	info_line(b, "tcp_port:%d", s->port);
	info_line(b, "uptime_in_seconds:%lld", (long long)(now - s->started));
	info_line(b, "uptime_in_days:%lld",
		  (long long)(now - s->started) / 86400);
	info_line(b, "executable:kvs-server");
	info_line(b, "engine:%s", kvs_engine_name(s->db));
	info_line(b, "data_dir:%s", s->cfg.dir ? s->cfg.dir : "");
	info_line(b, "worker_threads:%u", s->nworkers);
	/* kvs's names (--fsync); CONFIG GET appendfsync gives Redis's. */
	enum kvs_fsync f = kvs_fsync_policy(s->db);
	info_line(b, "fsync_policy:%s", f == KVS_FSYNC_ALWAYS ? "always" :
		  f == KVS_FSYNC_NEVER ? "never" : "everysec");
	info_line(b, "protected_mode:%s", s->protected_mode ? "yes" : "no");
}

static void info_persistence(struct net_buf *b, struct net_server *s,
			     const struct kvs_store_stats *st, bool have)
{
	struct net_save_status sv;
	time_t now = time(NULL);

	net_save_status(s, &sv);
	info_line(b, "# Persistence");
	info_line(b, "loading:0");
	info_line(b, "async_loading:0");
	/* Records written since the last completed snapshot began (a write
	 * that changes nothing writes none); since start-up before any. */
	uint64_t w = have ? st->writes : 0;
	info_line(b, "rdb_changes_since_last_save:%llu",
		  (unsigned long long)(w > sv.writes_at_save
				       ? w - sv.writes_at_save : 0));
	info_line(b, "rdb_bgsave_in_progress:%d", sv.in_progress ? 1 : 0);
	info_line(b, "rdb_last_save_time:%lld", (long long)sv.last_save);
	info_line(b, "rdb_last_bgsave_status:%s", sv.last_ok ? "ok" : "err");
	info_line(b, "rdb_last_bgsave_time_sec:%lld", sv.last_bgsave_sec);
	info_line(b, "rdb_current_bgsave_time_sec:%lld", sv.in_progress
		  ? (long long)(now - sv.current_start) : -1ll);
	info_line(b, "rdb_saves:%llu", (unsigned long long)sv.saves);
	info_line(b, "kvs_last_snapshot_path:%s", sv.last_path);
	info_line(b, "aof_enabled:0");
	info_line(b, "aof_rewrite_in_progress:0");
	info_line(b, "aof_last_write_status:%s",
		  have && (st->failed || st->write_error) ? "err" : "ok");
	if (!have)
		return;
	/* failed: sticky (a failed sync); write_error: the last transient
	 * refusal (disk full), 0 once a later write succeeded; damaged: a
	 * read found corruption (run kvs-dump --verify). */
	char eb[128];
	info_line(b, "store_failed:%d", st->failed ? 1 : 0);
	info_line(b, "store_write_error:%s", st->write_error ?
		  strerror_r(st->write_error, eb, sizeof eb) : "0");
	info_line(b, "store_damaged:%d", st->damaged ? 1 : 0);
	info_line(b, "live_keys:%" PRIu64, st->live_keys);
	info_line(b, "live_bytes:%" PRIu64, st->live_bytes);
	info_line(b, "dead_bytes:%" PRIu64, st->dead_bytes);
	info_line(b, "disk_bytes:%" PRIu64, st->disk_bytes);
	info_line(b, "segments:%" PRIu64, st->segments);
	info_line(b, "records_written:%" PRIu64, st->writes);
	info_line(b, "bytes_written:%" PRIu64, st->bytes_written);
	info_line(b, "write_batches:%" PRIu64, st->batches);
	info_line(b, "fsyncs:%" PRIu64, st->syncs);
	info_line(b, "compactions:%" PRIu64, st->compactions);
	info_line(b, "bytes_reclaimed:%" PRIu64, st->bytes_reclaimed);
	info_line(b, "open_usec:%" PRIu64, st->open_us);
}

static void info_stats(struct net_buf *b, struct net_server *s,
		       const struct net_stats_sum *sum,
		       const struct kvs_store_stats *st, bool have)
{
	info_line(b, "# Stats");
	info_line(b, "total_connections_received:%llu", LOAD(s->total_conns));
	info_line(b, "total_commands_processed:%llu", LOAD(s->total_cmds));
	info_line(b, "instantaneous_ops_per_sec:%" PRIu64,
		  ops_per_sec(s, LOAD(s->total_cmds)));
	info_line(b, "total_net_input_bytes:%llu", LOAD(s->net_in));
	info_line(b, "total_net_output_bytes:%llu", LOAD(s->net_out));
	info_line(b, "rejected_connections:%llu", LOAD(s->rejected));
	info_line(b, "expired_keys:%" PRIu64, have ? st->expired_keys : 0);
	info_line(b, "evicted_keys:0");
	info_line(b, "keyspace_hits:%" PRIu64, sum->hits);
	info_line(b, "keyspace_misses:%" PRIu64, sum->misses);
	info_line(b, "pubsub_channels:0");
	info_line(b, "pubsub_patterns:0");
	info_line(b, "total_error_replies:%" PRIu64, sum->errors);
	info_line(b, "client_output_buffer_limit_disconnections:%llu",
		  LOAD(s->closed_by_limit));
	info_line(b, "acl_access_denied_auth:%llu", LOAD(s->auth_failures));
}

static void info_cpu(struct net_buf *b)
{
	struct rusage self, kids;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	info_line(b, "# CPU");
	info_line(b, "used_cpu_sys:%ld.%06ld", (long)self.ru_stime.tv_sec,
		  (long)self.ru_stime.tv_usec);
	info_line(b, "used_cpu_user:%ld.%06ld", (long)self.ru_utime.tv_sec,
		  (long)self.ru_utime.tv_usec);
	info_line(b, "used_cpu_sys_children:%ld.%06ld",
		  (long)kids.ru_stime.tv_sec, (long)kids.ru_stime.tv_usec);
	info_line(b, "used_cpu_user_children:%ld.%06ld",
		  (long)kids.ru_utime.tv_sec, (long)kids.ru_utime.tv_usec);
}

static void info_commandstats(struct net_buf *b,
			      const struct net_stats_sum *sum)
{
	info_line(b, "# Commandstats");
	for (size_t k = 0; k < NET_MAX_COMMANDS; k++) {
		if (!sum->cmd[k].name ||
		    (!sum->cmd[k].calls && !sum->cmd[k].rejected))
			continue;
		info_line(b, "cmdstat_%s:calls=%" PRIu64 ",usec=%" PRIu64
			  ",usec_per_call=%.2f,rejected_calls=%" PRIu64
			  ",failed_calls=%" PRIu64, sum->cmd[k].name,
			  sum->cmd[k].calls, sum->cmd[k].usec,
			  sum->cmd[k].calls ? (double)sum->cmd[k].usec /
					      (double)sum->cmd[k].calls : 0.0,
			  sum->cmd[k].rejected, sum->cmd[k].failed);
	}
}

void net_cmd_info(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	struct kvs_store_stats st;
	struct net_stats_sum *sum = NULL;
	struct net_buf b = NET_BUF_INIT;
	unsigned want = info_sections(cmd);
	bool have = false;
	uint64_t used;

	if (!want) {
		net_reply_bulk(c, "", 0);
		return;
	}
	if (!(sum = malloc(sizeof *sum))) {
		net_reply_error(c, "OOM out of memory");
		return;
	}
	/* The figures the writer last published: never waits for it. */
	if (kvs_stats_cached(s->db, &st) == KVS_OK)
		have = true;
	used = mem_used();
	KVS_CHECK(pthread_mutex_lock(&s->info_mu));
	net_stats_sum(s, sum);
	if (used > s->peak_mem)
		s->peak_mem = used;
	for (unsigned k = 0; k < S_COUNT; k++) {
		if (!(want & S_BIT(k)))
			continue;
		if (b.len)
			info_line(&b, "%s", "");
		switch (k) {
		case S_SERVER:
			info_server(&b, s);
			break;
		case S_CLIENTS:
			info_line(&b, "# Clients");
			info_line(&b, "connected_clients:%llu",
				  LOAD(s->connected));
			info_line(&b, "cluster_connections:0");
			info_line(&b, "maxclients:%" PRIu64,
				  (uint64_t)s->maxclients);
			info_line(&b, "blocked_clients:0");
			info_line(&b, "tracking_clients:0");
			break;
		case S_MEMORY:
			info_line(&b, "# Memory");
			info_line(&b, "used_memory:%" PRIu64, used);
			info_line(&b, "used_memory_rss:%" PRIu64, mem_rss());
			info_line(&b, "used_memory_peak:%" PRIu64,
				  s->peak_mem);
			info_line(&b, "maxmemory:0");
			info_line(&b, "maxmemory_policy:noeviction");
			info_line(&b, "mem_allocator:libc");
			break;
		case S_PERSISTENCE:
			info_persistence(&b, s, &st, have);
			break;
		case S_STATS:
			info_stats(&b, s, sum, &st, have);
			break;
		case S_REPLICATION:
			info_line(&b, "# Replication");
			info_line(&b, "role:master");
			info_line(&b, "connected_slaves:0");
			info_line(&b, "master_failover_state:no-failover");
			info_line(&b, "master_repl_offset:0");
			info_line(&b, "second_repl_offset:-1");
			info_line(&b, "repl_backlog_active:0");
			break;
		case S_CPU:
			info_cpu(&b);
			break;
		case S_MODULES:
			info_line(&b, "# Modules");
			break;
		case S_COMMANDSTATS:
			info_commandstats(&b, sum);
			break;
		case S_ERRORSTATS:
			info_line(&b, "# Errorstats");
			for (size_t e = 0; e < sum->nerr; e++)
				if (sum->err[e].count)
					info_line(&b, "errorstat_%s:count=%"
						  PRIu64, sum->err[e].name,
						  sum->err[e].count);
			break;
		case S_CLUSTER:
			info_line(&b, "# Cluster");
			info_line(&b, "cluster_enabled:0");
			break;
		case S_KEYSPACE:
			info_line(&b, "# Keyspace");
			/* Redis omits an empty database. */
			if (have && st.live_keys)
				info_line(&b, "db0:keys=%" PRIu64 ",expires=%"
					  PRIu64 ",avg_ttl=%" PRIu64,
					  st.live_keys, st.volatile_keys,
					  st.avg_ttl_ms);
			break;
		}
	}
	KVS_CHECK(pthread_mutex_unlock(&s->info_mu));
	free(sum);
	net_reply_bulk(c, b.data ? b.data : "", b.len);
	net_buf_free(&b);
}

void net_cmd_dbsize(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct kvs_store_stats st;
	int rc = kvs_stats_cached(c->w->srv->db, &st);

	(void)cmd;
	if (rc != KVS_OK)
		net_reply_kvs_error_here(c, rc, NET_STORE_READ);
	else
		net_reply_int(c, (long long)st.live_keys);
}
