/* cmd_server.c - the server commands: CONFIG, INFO, DBSIZE (figures of the
 * server and of the store; the store's are the writer's last published
 * ones, so none of these waits for it).  Run by the connection's worker. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "reply.h"

void net_cmd_config(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	char port[16], maxclients[24], limit[24];
	const char *params[][2] = {
		{ "save", "" },
		{ "appendonly", "no" },
		{ "appendfsync", s->cfg.fsync_name ? s->cfg.fsync_name : "" },
		{ "databases", "1" },
		{ "maxmemory", "0" },
		{ "timeout", "0" },
		{ "port", port },
		{ "dir", s->cfg.dir ? s->cfg.dir : "" },
		{ "maxclients", maxclients },
		{ "proto-max-bulk-len", "536870912" },
		{ "client-query-buffer-limit", "1073741824" },
		{ "client-output-buffer-limit", limit },
	};
	size_t n = sizeof params / sizeof params[0], hits = 0, i, j;
	char match[sizeof params / sizeof params[0]];

	if (net_arg_is(cmd, 1, "GET")) {
		if (cmd->argc < 3) {
			net_reply_arity(c, "config|get");
			return;
		}
		snprintf(port, sizeof port, "%d", s->port);
		snprintf(maxclients, sizeof maxclients, "%" PRIu64,
			 s->maxclients);
		snprintf(limit, sizeof limit, "%" PRIu64, s->output_limit);
		for (i = 0; i < n; i++) {
			match[i] = 0;
			for (j = 2; j < cmd->argc && !match[i]; j++)
				match[i] = (char)net_glob_match(cmd->argv[j],
					cmd->argvlen[j], params[i][0],
					strlen(params[i][0]), 1);
			hits += (size_t)match[i];
		}
		net_reply_array(c, 2 * hits);
		for (i = 0; i < n; i++) {
			if (!match[i])
				continue;
			net_reply_str(c, params[i][0]);
			net_reply_str(c, params[i][1]);
		}
	} else if (net_arg_is(cmd, 1, "SET")) {
		net_reply_error(c, "ERR CONFIG SET is not supported: restart "
			"kvs-server with other options");
	} else if (net_arg_is(cmd, 1, "RESETSTAT") && cmd->argc == 2) {
		/* The figures are since start: nothing to reset. */
		net_reply_ok(c);
	} else {
		net_reply_unknown_subcommand(c, cmd, "CONFIG");
	}
}

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

void net_cmd_info(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	static const char *const names[] = { "server", "clients", "stats",
					     "persistence", "keyspace" };
	struct net_server *s = c->w->srv;
	struct kvs_store_stats st;
	struct net_buf b = NET_BUF_INIT;
	int want[5] = { 0 }, any = 0, have_stats = 0;
	time_t now = time(NULL);
	size_t i, k;

	for (i = 1; i < cmd->argc; i++) {
		if (net_arg_is(cmd, i, "all") ||
		    net_arg_is(cmd, i, "default") ||
		    net_arg_is(cmd, i, "everything")) {
			for (k = 0; k < 5; k++)
				want[k] = 1;
			continue;
		}
		for (k = 0; k < 5; k++)
			if (net_arg_is(cmd, i, names[k]))
				want[k] = 1;
	}
	for (k = 0; k < 5; k++)
		any |= want[k];
	if (cmd->argc == 1)
		for (k = 0; k < 5; k++)
			want[k] = 1;
	else if (!any) {
		net_reply_bulk(c, "", 0);
		return;
	}
	/* The figures the writer last published: never waits for it. */
	if ((want[3] || want[4]) && kvs_stats_cached(s->db, &st) == KVS_OK)
		have_stats = 1;
	if (want[0]) {
		info_line(&b, "# Server");
		info_line(&b, "redis_version:%s", KVS_VERSION);
		info_line(&b, "kvs_version:%s", KVS_VERSION);
		info_line(&b, "redis_mode:standalone");
		info_line(&b, "arch_bits:%d", (int)(sizeof(void *) * 8));
		info_line(&b, "multiplexing_api:epoll");
		info_line(&b, "process_id:%ld", (long)getpid());
		info_line(&b, "tcp_port:%d", s->port);
		info_line(&b, "uptime_in_seconds:%lld",
			  (long long)(now - s->started));
		info_line(&b, "uptime_in_days:%lld",
			  (long long)(now - s->started) / 86400);
		info_line(&b, "engine:%s", kvs_engine_name(s->db));
		info_line(&b, "data_dir:%s", s->cfg.dir ? s->cfg.dir : "");
		info_line(&b, "worker_threads:%u", s->nworkers);
		info_line(&b, "fsync_policy:%s",
			  s->cfg.fsync_name ? s->cfg.fsync_name : "");
		info_line(&b, "protected_mode:%s",
			  s->protected_mode ? "yes" : "no");
		info_line(&b, "%s", "");
	}
	if (want[1]) {
		info_line(&b, "# Clients");
		info_line(&b, "connected_clients:%llu", LOAD(s->connected));
		info_line(&b, "maxclients:%llu",
			  (unsigned long long)s->maxclients);
		info_line(&b, "%s", "");
	}
	if (want[2]) {
		info_line(&b, "# Stats");
		info_line(&b, "total_connections_received:%llu",
			  LOAD(s->total_conns));
		info_line(&b, "total_commands_processed:%llu",
			  LOAD(s->total_cmds));
		info_line(&b, "total_net_input_bytes:%llu", LOAD(s->net_in));
		info_line(&b, "total_net_output_bytes:%llu", LOAD(s->net_out));
		info_line(&b, "rejected_connections:%llu", LOAD(s->rejected));
		info_line(&b, "client_output_buffer_limit_disconnections:%llu",
			  LOAD(s->closed_by_limit));
		info_line(&b, "acl_access_denied_auth:%llu",
			  LOAD(s->auth_failures));
		info_line(&b, "%s", "");
	}
	if (want[3]) {
		info_line(&b, "# Persistence");
		info_line(&b, "loading:0");
		if (have_stats) {
			/* failed: sticky (a failed sync); write_error: the
			 * last transient refusal (disk full), 0 once a later
			 * write succeeded; damaged: a read found corruption
			 * (run kvs-dump --verify). */
			info_line(&b, "store_failed:%d", st.failed ? 1 : 0);
			char eb[128];
			info_line(&b, "store_write_error:%s", st.write_error ?
				  strerror_r(st.write_error, eb, sizeof eb) :
				  "0");
			info_line(&b, "store_damaged:%d", st.damaged ? 1 : 0);
			info_line(&b, "live_keys:%" PRIu64, st.live_keys);
			info_line(&b, "live_bytes:%" PRIu64, st.live_bytes);
			info_line(&b, "dead_bytes:%" PRIu64, st.dead_bytes);
			info_line(&b, "disk_bytes:%" PRIu64, st.disk_bytes);
			info_line(&b, "segments:%" PRIu64, st.segments);
			info_line(&b, "records_written:%" PRIu64, st.writes);
			info_line(&b, "bytes_written:%" PRIu64,
				  st.bytes_written);
			info_line(&b, "write_batches:%" PRIu64, st.batches);
			info_line(&b, "fsyncs:%" PRIu64, st.syncs);
			info_line(&b, "compactions:%" PRIu64, st.compactions);
			info_line(&b, "bytes_reclaimed:%" PRIu64,
				  st.bytes_reclaimed);
			info_line(&b, "open_usec:%" PRIu64, st.open_us);
		}
		info_line(&b, "%s", "");
	}
	if (want[4]) {
		info_line(&b, "# Keyspace");
		if (have_stats && st.live_keys)
			info_line(&b, "db0:keys=%" PRIu64 ",expires=0,avg_ttl=0",
				  st.live_keys);
		info_line(&b, "%s", "");
	}
	/* Without the last blank line, as Redis. */
	if (b.len >= 2)
		b.len -= 2;
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
