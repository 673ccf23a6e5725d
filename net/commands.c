/* commands.c - kvs-server's command table: each command's name, arity,
 * flags and handler, with replies as Redis gives them (docs/PROTOCOL.md).
 * Reads run here on the worker; writes are submitted and answered later. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "server_int.h"

typedef void net_cmd_fn(struct net_conn *c, const struct net_resp_cmd *cmd);

/* Command flags, shown by COMMAND as Redis's names. */
#define F_WRITE   1u  /* modifies the store */
#define F_READ    2u  /* reads the store */
#define F_NOAUTH  4u  /* allowed before AUTH */
#define F_FAST    8u  /* O(1) */

struct net_command {
	const char *name; /* lower case */
	int arity;        /* argc exactly, or at least -arity if negative */
	unsigned flags;
	int first, last, step; /* key positions, as COMMAND reports them */
	net_cmd_fn *fn;
};

static const struct net_command *lookup(const char *name, size_t len);

/* ---- replies ----------------------------------------------------------------
 * Each appends one reply.  A reply that cannot be allocated would break the
 * order of replies, so the connection is closed instead. */

/* Where a reply goes: while a write batch is open, a command's immediate
 * reply (an error) must wait for the batch's replies, which come first. */
static struct net_buf *rbuf(struct net_conn *c)
{
	return c->nwcmds && !c->completing ? &c->defer : &c->out;
}

static void put_check(struct net_conn *c, int rc)
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

static void r_simple(struct net_conn *c, const char *s)
{
	put_check(c, net_resp_put_simple(rbuf(c), s));
}

static void r_ok(struct net_conn *c)
{
	r_simple(c, "OK");
}

static void r_error(struct net_conn *c, const char *msg)
{
	put_check(c, net_resp_put_error(rbuf(c), msg));
}

static void r_errorf(struct net_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void r_errorf(struct net_conn *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r_error(c, msg);
}

static void r_int(struct net_conn *c, long long v)
{
	put_check(c, net_resp_put_int(rbuf(c), v));
}

static void r_bulk(struct net_conn *c, const void *p, size_t n)
{
	put_check(c, net_resp_put_bulk(rbuf(c), p, n));
}

static void r_str(struct net_conn *c, const char *s)
{
	r_bulk(c, s, strlen(s));
}

static void r_null(struct net_conn *c)
{
	put_check(c, net_resp_put_null(rbuf(c)));
}

static void r_array(struct net_conn *c, size_t n)
{
	put_check(c, net_resp_put_array(rbuf(c), n));
}

static const char err_notint[] = "ERR value is not an integer or out of range";
static const char err_syntax[] = "ERR syntax error";

static void r_arity(struct net_conn *c, const char *name)
{
	r_errorf(c, "ERR wrong number of arguments for '%s' command", name);
}

/* Log a store failure, at most once a second: a full disk refuses every
 * write, and one line per refused write would flood the log.  Any thread. */
static void log_store_error(const struct net_conn *c, const char *what,
			    const char *msg)
{
	atomic_llong *last = &c->w->srv->last_store_log;
	long long now = (long long)time(NULL);
	long long prev = atomic_load_explicit(last, memory_order_relaxed);

	if (prev == now || !atomic_compare_exchange_strong_explicit(last,
			&prev, now, memory_order_relaxed, memory_order_relaxed))
		return;
	net_log(NET_LOG_ERROR, "%s for client %s (id %llu): %s", what,
		c->addr, (unsigned long long)c->id, msg);
}

/* Where a store call went wrong. */
enum store_op { STORE_READ, STORE_WRITE };

/*
 * An engine failure as a reply, and a log line if it is the server's
 * trouble rather than the request's.  msg is kvs_errmsg() as recorded by
 * the thread that failed (for a write batch, the writer's: c->werr); NULL
 * or "" falls back to kvs_strerror(rc).  docs/PROTOCOL.md lists the
 * replies.
 */
static void r_kvs_error(struct net_conn *c, int rc, const char *msg,
			enum store_op op)
{
	const char *why = msg && msg[0] ? msg : kvs_strerror(rc);

	switch (rc) {
	case KVS_EINVAL:
		r_error(c, "ERR empty keys are not supported");
		return;
	case KVS_ETOOBIG:
		r_error(c, "ERR key or value too large (keys up to 1 MiB, "
			"values up to 512 MiB)");
		return;
	case KVS_ENOMEM:
		r_error(c, "OOM out of memory");
		return;
	case KVS_ENOSPC:
		/* Transient: nothing of the write was kept; later writes
		 * are tried again. */
		log_store_error(c, "write refused", why);
		r_errorf(c, "MISCONF kvs cannot write to disk: %s; writes are "
			 "refused until it can, reads go on", why);
		return;
	case KVS_EFAILED:
		log_store_error(c, "write refused", why);
		r_errorf(c, "MISCONF kvs refuses writes after a failed sync: "
			 "%s; restart it after checking the disk", why);
		return;
	case KVS_EIO:
	case KVS_ECORRUPT:
		if (op == STORE_WRITE) {
			/* The round this write was in failed to be written
			 * or synced: the engine has failed the handle for
			 * good (KVS_EFAILED from now on). */
			log_store_error(c, "write failed", why);
			r_errorf(c, "MISCONF kvs refuses writes after a failed "
				 "sync: %s; restart it after checking the disk",
				 why);
			return;
		}
		log_store_error(c, "read failed", why);
		r_errorf(c, "ERR I/O error reading the key: %s", why);
		return;
	default:
		log_store_error(c, "store error", why);
		r_errorf(c, "ERR store error: %s", kvs_strerror(rc));
	}
}

/* The same for a call that just failed on this thread. */
static void r_kvs_error_here(struct net_conn *c, int rc, enum store_op op)
{
	r_kvs_error(c, rc, kvs_errmsg(), op);
}

/* ---- arguments ------------------------------------------------------------- */

/* Argument i equals s, ignoring ASCII case. */
static int arg_is(const struct net_resp_cmd *cmd, size_t i, const char *s)
{
	size_t n = strlen(s);

	return cmd->argvlen[i] == n && strncasecmp(cmd->argv[i], s, n) == 0;
}

/* A decimal integer as Redis reads one: optional '-', digits, no leading
 * zeros, no spaces, within long long.  Returns 0 or -1. */
static int parse_ll(const char *s, size_t n, long long *out)
{
	unsigned long long v = 0, lim;
	size_t i = 0;
	int neg = 0;

	if (n == 0 || n > 20)
		return -1;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
		if (n == 1)
			return -1;
	}
	if (s[i] == '0' && n > i + 1)
		return -1;
	if (neg && s[i] == '0')
		return -1; /* "-0" */
	lim = neg ? (unsigned long long)INT64_MAX + 1 : INT64_MAX;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (lim - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (neg)
		*out = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN :
		       -(long long)v;
	else
		*out = (long long)v;
	return 0;
}

static int arg_ll(const struct net_resp_cmd *cmd, size_t i, long long *out)
{
	return parse_ll(cmd->argv[i], cmd->argvlen[i], out);
}

/* ---- connection and server commands ---------------------------------------- */

static void cmd_ping(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (cmd->argc > 2)
		r_arity(c, "ping");
	else if (cmd->argc == 2)
		r_bulk(c, cmd->argv[1], cmd->argvlen[1]);
	else
		r_simple(c, "PONG");
}

static void cmd_echo(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	r_bulk(c, cmd->argv[1], cmd->argvlen[1]);
}

static void cmd_quit(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	(void)cmd;
	r_ok(c);
	c->state = NET_CONN_CLOSING;
}

static void cmd_select(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long db;

	if (arg_ll(cmd, 1, &db) != 0)
		r_error(c, err_notint);
	else if (db != 0)
		r_error(c, "ERR DB index is out of range");
	else
		r_ok(c);
}

/* Constant-time comparison: the time depends on the secret's length only. */
static int password_ok(const struct net_server *s, const char *p, size_t n)
{
	unsigned char diff = n != s->passlen;

	for (size_t i = 0; i < s->passlen; i++)
		diff |= (unsigned char)(s->password[i] ^
					(i < n ? p[i] : ~s->password[i]));
	return diff == 0;
}

/* Check user/password; replies only on failure.  Returns 1 if accepted. */
static int check_auth(struct net_conn *c, const char *user, size_t ulen,
		      const char *pass, size_t plen)
{
	struct net_server *s = c->w->srv;
	int user_ok = ulen == 7 && memcmp(user, "default", 7) == 0;

	if (user_ok && (!s->password || password_ok(s, pass, plen))) {
		c->authed = 1;
		return 1;
	}
	atomic_fetch_add_explicit(&s->auth_failures, 1, memory_order_relaxed);
	net_log(NET_LOG_WARN, "client %s (id %llu): wrong password",
		c->addr, (unsigned long long)c->id);
	r_error(c, "WRONGPASS invalid username-password pair or user is "
		"disabled.");
	return 0;
}

static void cmd_auth(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (cmd->argc > 3) {
		r_error(c, err_syntax);
		return;
	}
	if (cmd->argc == 2) {
		if (!c->w->srv->password) {
			r_error(c, "ERR AUTH <password> called without any "
				"password configured for the default user. "
				"Are you sure your configuration is correct?");
			return;
		}
		if (check_auth(c, "default", 7, cmd->argv[1],
			       cmd->argvlen[1]))
			r_ok(c);
		return;
	}
	if (check_auth(c, cmd->argv[1], cmd->argvlen[1], cmd->argv[2],
		       cmd->argvlen[2]))
		r_ok(c);
}

/* Redis's rule for client names: printable, no spaces. */
static int valid_name(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < '!' || p[i] > '~')
			return 0;
	return 1;
}

static int set_name(struct net_conn *c, const char *p, size_t n)
{
	char *name = NULL;

	if (!valid_name(p, n)) {
		r_error(c, "ERR Client names cannot contain spaces, newlines "
			"or special characters.");
		return -1;
	}
	if (n) {
		name = malloc(n + 1);
		if (!name) {
			r_error(c, "OOM out of memory");
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
	}
	free(c->name);
	c->name = name;
	return 0;
}

static void cmd_hello(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	const char *setname = NULL;
	size_t setnamelen = 0;
	long long ver;
	size_t i;

	if (cmd->argc >= 2) {
		if (arg_ll(cmd, 1, &ver) != 0) {
			r_error(c, "ERR Protocol version is not an integer or "
				"out of range");
			return;
		}
		if (ver != 2) {
			r_error(c, "NOPROTO unsupported protocol version");
			return;
		}
	}
	for (i = 2; i < cmd->argc; i++) {
		size_t more = cmd->argc - i - 1;

		if (arg_is(cmd, i, "AUTH") && more >= 2) {
			if (!check_auth(c, cmd->argv[i + 1],
					cmd->argvlen[i + 1], cmd->argv[i + 2],
					cmd->argvlen[i + 2]))
				return;
			i += 2;
		} else if (arg_is(cmd, i, "SETNAME") && more >= 1) {
			setname = cmd->argv[i + 1];
			setnamelen = cmd->argvlen[i + 1];
			i++;
		} else {
			r_errorf(c, "ERR Syntax error in HELLO option '%.*s'",
				 (int)(cmd->argvlen[i] > 128 ? 128 :
				       cmd->argvlen[i]), cmd->argv[i]);
			return;
		}
	}
	if (!c->authed) {
		r_error(c, "NOAUTH HELLO must be called with the client "
			"already authenticated, otherwise the HELLO <proto> "
			"AUTH <user> <pass> option can be used to "
			"authenticate the client and select the RESP "
			"protocol version at the same time");
		return;
	}
	if (setname && set_name(c, setname, setnamelen) != 0)
		return;
	r_array(c, 14);
	r_str(c, "server");
	r_str(c, "kvs");
	r_str(c, "version");
	r_str(c, KVS_VERSION);
	r_str(c, "proto");
	r_int(c, 2);
	r_str(c, "id");
	r_int(c, (long long)c->id);
	r_str(c, "mode");
	r_str(c, "standalone");
	r_str(c, "role");
	r_str(c, "master");
	r_str(c, "modules");
	r_array(c, 0);
}

static void cmd_client(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (arg_is(cmd, 1, "ID") && cmd->argc == 2) {
		r_int(c, (long long)c->id);
	} else if (arg_is(cmd, 1, "GETNAME") && cmd->argc == 2) {
		if (c->name)
			r_str(c, c->name);
		else
			r_null(c);
	} else if (arg_is(cmd, 1, "SETNAME") && cmd->argc == 3) {
		if (set_name(c, cmd->argv[2], cmd->argvlen[2]) == 0)
			r_ok(c);
	} else if (arg_is(cmd, 1, "SETINFO") && cmd->argc == 4) {
		if (arg_is(cmd, 2, "LIB-NAME") || arg_is(cmd, 2, "LIB-VER"))
			r_ok(c);
		else
			r_errorf(c, "ERR Unrecognized option '%.*s'",
				 (int)(cmd->argvlen[2] > 128 ? 128 :
				       cmd->argvlen[2]), cmd->argv[2]);
	} else if (arg_is(cmd, 1, "INFO") && cmd->argc == 2) {
		char line[256];

		snprintf(line, sizeof line, "id=%llu addr=%s name=%s age=%lld "
			 "db=0\n", (unsigned long long)c->id, c->addr,
			 c->name ? c->name : "",
			 (long long)(time(NULL) - c->since));
		r_str(c, line);
	} else if (arg_is(cmd, 1, "ID") || arg_is(cmd, 1, "GETNAME") ||
		   arg_is(cmd, 1, "SETNAME") || arg_is(cmd, 1, "SETINFO") ||
		   arg_is(cmd, 1, "INFO")) {
		char sub[16];
		size_t n = cmd->argvlen[1];

		for (size_t i = 0; i < n; i++)
			sub[i] = (char)(cmd->argv[1][i] | 0x20);
		sub[n] = '\0';
		r_errorf(c, "ERR wrong number of arguments for 'client|%s' "
			 "command", sub);
	} else {
		r_errorf(c, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
			 (int)(cmd->argvlen[1] > 128 ? 128 : cmd->argvlen[1]),
			 cmd->argv[1]);
	}
}

/* ---- COMMAND and CONFIG ------------------------------------------------------ */

static void put_command_info(struct net_conn *c, const struct net_command *k)
{
	size_t nflags = 0;

	r_array(c, 10);
	r_str(c, k->name);
	r_int(c, k->arity);
	nflags = !!(k->flags & F_WRITE) + !!(k->flags & F_READ) +
		 !!(k->flags & F_NOAUTH) + !!(k->flags & F_FAST);
	r_array(c, nflags);
	if (k->flags & F_WRITE)
		r_simple(c, "write");
	if (k->flags & F_READ)
		r_simple(c, "readonly");
	if (k->flags & F_NOAUTH)
		r_simple(c, "no_auth");
	if (k->flags & F_FAST)
		r_simple(c, "fast");
	r_int(c, k->first);
	r_int(c, k->last);
	r_int(c, k->step);
	r_array(c, 0); /* ACL categories */
	r_array(c, 0); /* tips */
	r_array(c, 0); /* key specifications */
	r_array(c, 0); /* subcommands */
}

/* The table is at the end of the file. */
static size_t table_size(void);
static const struct net_command *table_at(size_t i);

static void cmd_command(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t i, ncommands = table_size();

	if (cmd->argc == 1) {
		r_array(c, ncommands);
		for (i = 0; i < ncommands; i++)
			put_command_info(c, table_at(i));
	} else if (arg_is(cmd, 1, "COUNT") && cmd->argc == 2) {
		r_int(c, (long long)ncommands);
	} else if (arg_is(cmd, 1, "DOCS")) {
		r_array(c, 0); /* documentation: none, which clients accept */
	} else if (arg_is(cmd, 1, "LIST") && cmd->argc == 2) {
		r_array(c, ncommands);
		for (i = 0; i < ncommands; i++)
			r_str(c, table_at(i)->name);
	} else if (arg_is(cmd, 1, "INFO")) {
		r_array(c, cmd->argc - 2);
		for (i = 2; i < cmd->argc; i++) {
			const struct net_command *k =
				lookup(cmd->argv[i], cmd->argvlen[i]);
			if (k)
				put_command_info(c, k);
			else
				r_null(c);
		}
	} else {
		r_errorf(c, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
			 (int)(cmd->argvlen[1] > 128 ? 128 : cmd->argvlen[1]),
			 cmd->argv[1]);
	}
}

static void cmd_config(struct net_conn *c, const struct net_resp_cmd *cmd)
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

	if (arg_is(cmd, 1, "GET")) {
		if (cmd->argc < 3) {
			r_arity(c, "config|get");
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
		r_array(c, 2 * hits);
		for (i = 0; i < n; i++) {
			if (!match[i])
				continue;
			r_str(c, params[i][0]);
			r_str(c, params[i][1]);
		}
	} else if (arg_is(cmd, 1, "SET")) {
		r_error(c, "ERR CONFIG SET is not supported: restart "
			"kvs-server with other options");
	} else if (arg_is(cmd, 1, "RESETSTAT") && cmd->argc == 2) {
		r_ok(c); /* the figures are since start; nothing to reset */
	} else {
		r_errorf(c, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
			 (int)(cmd->argvlen[1] > 128 ? 128 : cmd->argvlen[1]),
			 cmd->argv[1]);
	}
}

/* ---- INFO and DBSIZE ----------------------------------------------------------- */

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

static void cmd_info(struct net_conn *c, const struct net_resp_cmd *cmd)
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
		if (arg_is(cmd, i, "all") || arg_is(cmd, i, "default") ||
		    arg_is(cmd, i, "everything")) {
			for (k = 0; k < 5; k++)
				want[k] = 1;
			continue;
		}
		for (k = 0; k < 5; k++)
			if (arg_is(cmd, i, names[k]))
				want[k] = 1;
	}
	for (k = 0; k < 5; k++)
		any |= want[k];
	if (cmd->argc == 1)
		for (k = 0; k < 5; k++)
			want[k] = 1;
	else if (!any) {
		r_bulk(c, "", 0);
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
	r_bulk(c, b.data ? b.data : "", b.len);
	net_buf_free(&b);
}

static void cmd_dbsize(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct kvs_store_stats st;
	int rc = kvs_stats_cached(c->w->srv->db, &st);

	(void)cmd;
	if (rc != KVS_OK)
		r_kvs_error_here(c, rc, STORE_READ);
	else
		r_int(c, (long long)st.live_keys);
}

/* ---- reads ----------------------------------------------------------------------- */

/* Reply with key's value, or nil.  A key the engine cannot hold (empty,
 * too long) is simply absent. */
static void get_one(struct net_conn *c, const char *key, size_t klen)
{
	void *val = NULL;
	size_t vlen = 0;
	int rc = kvs_get(c->w->srv->db, key, klen, &val, &vlen);

	if (rc == KVS_OK) {
		r_bulk(c, val, vlen);
		kvs_free(val);
	} else if (rc == KVS_ENOTFOUND || rc == KVS_EINVAL ||
		   rc == KVS_ETOOBIG) {
		r_null(c);
	} else {
		r_kvs_error_here(c, rc, STORE_READ);
	}
}

static void cmd_get(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	get_one(c, cmd->argv[1], cmd->argvlen[1]);
}

static void cmd_mget(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	r_array(c, cmd->argc - 1);
	for (size_t i = 1; i < cmd->argc && !c->over_limit; i++)
		get_one(c, cmd->argv[i], cmd->argvlen[i]);
}

/* 1 present, 0 absent, or a kvs error.  *len gets the value's length. */
static int key_len(struct net_conn *c, const char *key, size_t klen,
		   size_t *len)
{
	void *val = NULL;
	int rc = kvs_get(c->w->srv->db, key, klen, &val, len);

	if (rc == KVS_OK) {
		kvs_free(val);
		return 1;
	}
	if (rc == KVS_ENOTFOUND || rc == KVS_EINVAL || rc == KVS_ETOOBIG)
		return 0;
	return rc;
}

static void cmd_exists(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long n = 0;
	size_t len;

	for (size_t i = 1; i < cmd->argc; i++) {
		int rc = key_len(c, cmd->argv[i], cmd->argvlen[i], &len);
		if (rc < 0) {
			r_kvs_error_here(c, rc, STORE_READ);
			return;
		}
		n += rc;
	}
	r_int(c, n);
}

static void cmd_strlen(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t len = 0;
	int rc = key_len(c, cmd->argv[1], cmd->argvlen[1], &len);

	if (rc < 0)
		r_kvs_error_here(c, rc, STORE_READ);
	else
		r_int(c, rc ? (long long)len : 0);
}

#ifdef KVS_HAVE_SCAN
/* SCAN's keys, collected by the engine's callback then filtered. */
struct scan_ctx {
	struct net_buf keys; /* each as a size_t length then the bytes */
	size_t n;
	int oom;
};

static int scan_cb(void *ctx, const void *key, size_t klen)
{
	struct scan_ctx *sc = ctx;

	if (net_buf_append(&sc->keys, &klen, sizeof klen) != NET_RESP_OK ||
	    net_buf_append(&sc->keys, key, klen) != NET_RESP_OK) {
		sc->oom = 1;
		return 1;
	}
	sc->n++;
	return 0;
}

static void cmd_scan(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct scan_ctx sc = { NET_BUF_INIT, 0, 0 };
	int none = 0;
	const char *pat = NULL;
	size_t patlen = 0, count = 10, hits = 0, off;
	unsigned long long cursor = 0;
	uint64_t next = 0;
	char *end;
	char num[24];
	int rc;

	/* The cursor: an unsigned decimal, as Redis. */
	if (cmd->argvlen[1] == 0 || cmd->argvlen[1] > 20 ||
	    cmd->argv[1][0] < '0' || cmd->argv[1][0] > '9') {
		r_error(c, "ERR invalid cursor");
		return;
	}
	memcpy(num, cmd->argv[1], cmd->argvlen[1]);
	num[cmd->argvlen[1]] = '\0';
	errno = 0;
	cursor = strtoull(num, &end, 10);
	if (*end || errno) {
		r_error(c, "ERR invalid cursor");
		return;
	}
	for (size_t i = 2; i < cmd->argc; i += 2) {
		long long v;

		if (i + 1 >= cmd->argc) {
			r_error(c, err_syntax);
			return;
		}
		if (arg_is(cmd, i, "MATCH")) {
			pat = cmd->argv[i + 1];
			patlen = cmd->argvlen[i + 1];
		} else if (arg_is(cmd, i, "COUNT")) {
			if (arg_ll(cmd, i + 1, &v) != 0) {
				r_error(c, err_notint);
				return;
			}
			if (v < 1) {
				r_error(c, err_syntax);
				return;
			}
			count = (size_t)v;
		} else if (arg_is(cmd, i, "TYPE")) {
			/* Every key is a string. */
			none = !arg_is(cmd, i + 1, "string");
		} else {
			r_error(c, err_syntax);
			return;
		}
	}
	rc = kvs_scan(c->w->srv->db, cursor, count, scan_cb, &sc, &next);
	if (rc != KVS_OK || sc.oom) {
		net_buf_free(&sc.keys);
		r_kvs_error_here(c, rc != KVS_OK ? rc : KVS_ENOMEM,
				 STORE_READ);
		return;
	}
	for (off = 0; off < sc.keys.len;) {
		size_t klen;

		memcpy(&klen, sc.keys.data + off, sizeof klen);
		off += sizeof klen;
		if (!none && (!pat || net_glob_match(pat, patlen,
					sc.keys.data + off, klen, 0)))
			hits++;
		off += klen;
	}
	r_array(c, 2);
	snprintf(num, sizeof num, "%" PRIu64, next);
	r_str(c, num);
	r_array(c, hits);
	for (off = 0; off < sc.keys.len;) {
		size_t klen;

		memcpy(&klen, sc.keys.data + off, sizeof klen);
		off += sizeof klen;
		if (!none && (!pat || net_glob_match(pat, patlen,
					sc.keys.data + off, klen, 0)))
			r_bulk(c, sc.keys.data + off, klen);
		off += klen;
	}
	net_buf_free(&sc.keys);
}
#else
static void cmd_scan(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	(void)cmd;
	r_error(c, "ERR SCAN is not supported yet");
}
#endif

/* ---- the write batch ---------------------------------------------------------------
 *
 * This file owns a connection's write batch: the write commands below add
 * their ops to it (batch_ops, batch_add), net_cmd_execute() adds the
 * replies of commands run while it is open (batch_add NET_W_DEFERRED),
 * net_cmd_batch_submit() hands it to the engine, batch_done() stores the
 * engine's result, net_cmd_complete() answers it, and batch_reset() empties
 * it, the one place that does.  server.c decides when to submit (the next
 * buffered command is not a write) and parks the connection meanwhile.
 *
 * Every op is checked (kvs_check_key, the value size) before it joins the
 * batch: kvs_submit() refuses a whole batch for one invalid op, so one bad
 * key among pipelined writes would otherwise fail the writes around it,
 * depending on how TCP happened to split the stream.
 */

static void batch_reset(struct net_conn *c)
{
	c->nwcmds = 0;
	c->nops = 0;
	c->defer.len = 0;
	c->wresult = KVS_OK;
	c->werr[0] = '\0';
	/* A huge MSET or DEL leaves no huge array behind. */
	if (c->opscap > 4 * NET_BATCH_OPS) {
		free(c->ops);
		c->ops = NULL;
		c->opscap = 0;
	}
}

/* Room for n zeroed ops after the batch's: *first is where they start
 * (batch_add then makes them part of the batch).  Replies with the error
 * and returns -1 if out of memory. */
static int batch_ops(struct net_conn *c, size_t n, size_t *first)
{
	size_t need = c->nops + n;

	if (need < n)
		goto oom;
	if (need > c->opscap) {
		size_t cap = c->opscap ? c->opscap : 4;
		struct kvs_op *ops;

		while (cap < need)
			cap *= 2;
		ops = realloc(c->ops, cap * sizeof *ops);
		if (!ops)
			goto oom;
		c->ops = ops;
		c->opscap = cap;
	}
	memset(c->ops + c->nops, 0, n * sizeof *c->ops);
	*first = c->nops;
	return 0;
oom:
	r_error(c, "OOM out of memory");
	return -1;
}

/* Add a command of `kind` with ops[first .. first+n) (or for
 * NET_W_DEFERRED, defer[first .. first+n)) to the batch.  Returns 0 or -1
 * (out of memory; nothing added). */
static int batch_add(struct net_conn *c, enum net_write_kind kind,
		     size_t first, size_t n)
{
	if (c->nwcmds == c->capwcmds) {
		size_t cap = c->capwcmds ? c->capwcmds * 2 : 8;
		struct net_wcmd *w = realloc(c->wcmds, cap * sizeof *w);
		if (!w)
			return -1;
		c->wcmds = w;
		c->capwcmds = cap;
	}
	c->wcmds[c->nwcmds++] = (struct net_wcmd){ kind, first, n };
	if (kind != NET_W_DEFERRED)
		c->nops = first + n;
	return 0;
}

/* Add a write command's ops (prepared by batch_ops) to the batch. */
static void submit(struct net_conn *c, size_t first, size_t n,
		   enum net_write_kind kind)
{
	if (batch_add(c, kind, first, n) != 0)
		r_error(c, "OOM out of memory");
}

/* On the engine's thread that completes the batch (the writer): keep the
 * result and, for a failure, the message that thread recorded (this
 * thread's kvs_errmsg() is the writer's, not the worker's), then hand c
 * back to its worker. */
/* An op's own result that says its key could not be read (a condition or
 * INCR reads the old value): corruption or an unreadable page. */
static int op_read_failed(int result)
{
	return result == KVS_EIO || result == KVS_ECORRUPT;
}

static void batch_done(void *ctx, int result)
{
	struct net_conn *c = ctx;

	c->wresult = result;
	/* This runs on the writer thread: its kvs_errmsg() is the message
	 * of the failure (of the batch, or of an op's read). */
	if (result != KVS_OK) {
		snprintf(c->werr, sizeof c->werr, "%s", kvs_errmsg());
	} else {
		for (size_t i = 0; i < c->nops; i++) {
			if (op_read_failed(c->ops[i].result)) {
				snprintf(c->werr, sizeof c->werr, "%s",
					 kvs_errmsg());
				break;
			}
		}
	}
	net_conn_done(c);
}

int net_cmd_batch_open(const struct net_conn *c)
{
	return c->nwcmds > 0;
}

int net_cmd_batch_room(const struct net_conn *c)
{
	return c->nops < NET_BATCH_OPS;
}

void net_cmd_batch_submit(struct net_conn *c)
{
	if (c->state != NET_CONN_ACTIVE) {
		batch_reset(c); /* c is going away: nobody takes the replies */
		return;
	}
	/* Only replies deferred behind the batch, no ops (every write in it
	 * was refused before it joined): nothing for the engine. */
	int rc = c->nops ? kvs_submit(c->w->srv->db, c->ops, c->nops,
				      batch_done, c) : KVS_OK;
	if (rc == KVS_OK && c->nops) {
		net_conn_park(c);
		return;
	}
	c->wresult = rc;
	if (rc != KVS_OK)
		snprintf(c->werr, sizeof c->werr, "%s", kvs_errmsg());
	net_cmd_complete(c);
}

/* A key a write may use: 0, or -1 after replying with the error kvs_submit
 * would have failed the whole batch with. */
static int check_key(struct net_conn *c, const char *key, size_t klen)
{
	int rc = kvs_check_key(c->w->srv->db, key, klen);

	if (rc != KVS_OK) {
		r_kvs_error_here(c, rc, STORE_WRITE);
		return -1;
	}
	return 0;
}

static int check_value(struct net_conn *c, size_t vlen)
{
	if (vlen > KVS_MAX_VALUE) {
		r_kvs_error(c, KVS_ETOOBIG, NULL, STORE_WRITE);
		return -1;
	}
	return 0;
}

/* ---- writes: added to the batch here, answered in net_cmd_complete() ------------- */

static void cmd_set(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	int nx = 0, xx = 0, get = 0, expire = 0, keepttl = 0;

	for (size_t i = 3; i < cmd->argc; i++) {
		if (arg_is(cmd, i, "NX") && !xx) {
			nx = 1;
		} else if (arg_is(cmd, i, "XX") && !nx) {
			xx = 1;
		} else if (arg_is(cmd, i, "GET")) {
			get = 1;
		} else if (arg_is(cmd, i, "KEEPTTL") && !expire) {
			keepttl = 1;
		} else if ((arg_is(cmd, i, "EX") || arg_is(cmd, i, "PX") ||
			    arg_is(cmd, i, "EXAT") || arg_is(cmd, i, "PXAT")) &&
			   !expire && !keepttl && i + 1 < cmd->argc) {
			expire = 1;
			i++;
		} else {
			r_error(c, err_syntax);
			return;
		}
	}
	if (expire) {
		r_error(c, "ERR expiry is not supported");
		return;
	}
	if (get) {
		r_error(c, "ERR SET with GET is not supported");
		return;
	}
	if (check_key(c, cmd->argv[1], cmd->argvlen[1]) != 0 ||
	    check_value(c, cmd->argvlen[2]) != 0)
		return;
	/* KEEPTTL: keys have no time to live, so there is nothing to keep. */
	size_t b;
	if (batch_ops(c, 1, &b) != 0)
		return;
	c->ops[b].type = KVS_OP_SET;
	c->ops[b].key = cmd->argv[1];
	c->ops[b].klen = cmd->argvlen[1];
	c->ops[b].val = cmd->argv[2];
	c->ops[b].vlen = cmd->argvlen[2];
	c->ops[b].flags = nx ? KVS_SET_NX : xx ? KVS_SET_XX : 0;
	submit(c, b, 1, NET_W_SET);
}

static void cmd_setnx(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t b;

	if (check_key(c, cmd->argv[1], cmd->argvlen[1]) != 0 ||
	    check_value(c, cmd->argvlen[2]) != 0 || batch_ops(c, 1, &b) != 0)
		return;
	c->ops[b].type = KVS_OP_SET;
	c->ops[b].key = cmd->argv[1];
	c->ops[b].klen = cmd->argvlen[1];
	c->ops[b].val = cmd->argv[2];
	c->ops[b].vlen = cmd->argvlen[2];
	c->ops[b].flags = KVS_SET_NX;
	submit(c, b, 1, NET_W_SETNX);
}

static void cmd_mset(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t n = (cmd->argc - 1) / 2, b;

	if ((cmd->argc - 1) % 2) {
		r_arity(c, "mset");
		return;
	}
	/* All or nothing, as alone: one bad pair refuses the whole MSET. */
	for (size_t i = 0; i < n; i++)
		if (check_key(c, cmd->argv[1 + 2 * i],
			      cmd->argvlen[1 + 2 * i]) != 0 ||
		    check_value(c, cmd->argvlen[2 + 2 * i]) != 0)
			return;
	if (batch_ops(c, n, &b) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		c->ops[b + i].type = KVS_OP_SET;
		c->ops[b + i].key = cmd->argv[1 + 2 * i];
		c->ops[b + i].klen = cmd->argvlen[1 + 2 * i];
		c->ops[b + i].val = cmd->argv[2 + 2 * i];
		c->ops[b + i].vlen = cmd->argvlen[2 + 2 * i];
	}
	submit(c, b, n, NET_W_MSET);
}

static void cmd_del(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct kvs *db = c->w->srv->db;
	size_t n = 0, b;

	if (batch_ops(c, cmd->argc - 1, &b) != 0)
		return;
	/* A key the engine cannot hold (empty, over its limit: 511 bytes
	 * for lmdb) is absent: not part of the batch. */
	for (size_t i = 1; i < cmd->argc; i++) {
		if (kvs_check_key(db, cmd->argv[i], cmd->argvlen[i]) != KVS_OK)
			continue;
		c->ops[b + n].type = KVS_OP_REMOVE;
		c->ops[b + n].key = cmd->argv[i];
		c->ops[b + n].klen = cmd->argvlen[i];
		n++;
	}
	if (n == 0)
		r_int(c, 0);
	else
		submit(c, b, n, NET_W_DEL);
}

static void incr(struct net_conn *c, const char *key, size_t klen,
		 long long delta)
{
	size_t b;

	if (check_key(c, key, klen) != 0 || batch_ops(c, 1, &b) != 0)
		return;
	c->ops[b].type = KVS_OP_INCR;
	c->ops[b].key = key;
	c->ops[b].klen = klen;
	c->ops[b].delta = delta;
	submit(c, b, 1, NET_W_INCR);
}

static void cmd_incr(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	incr(c, cmd->argv[1], cmd->argvlen[1], 1);
}

static void cmd_decr(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	incr(c, cmd->argv[1], cmd->argvlen[1], -1);
}

static void cmd_incrby(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long d;

	if (arg_ll(cmd, 2, &d) != 0)
		r_error(c, err_notint);
	else
		incr(c, cmd->argv[1], cmd->argvlen[1], d);
}

static void cmd_decrby(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long d;

	if (arg_ll(cmd, 2, &d) != 0)
		r_error(c, err_notint);
	else if (d == INT64_MIN)
		r_error(c, "ERR decrement would overflow");
	else
		incr(c, cmd->argv[1], cmd->argvlen[1], -d);
}

/* The reply of one write command of a completed batch. */
static void reply_write(struct net_conn *c, const struct net_wcmd *wc)
{
	const struct kvs_op *op = &c->ops[wc->first];
	long long n = 0;

	/* A key whose old value could not be read (SET NX/XX, DEL, INCR look
	 * at it): the read's error, not a verdict on the condition.  The
	 * store has not failed; the record is damaged. */
	if (wc->kind != NET_W_DEFERRED && wc->kind != NET_W_MSET) {
		for (size_t i = 0; i < wc->n; i++) {
			if (op_read_failed(op[i].result)) {
				r_kvs_error(c, op[i].result, c->werr,
					    STORE_READ);
				return;
			}
		}
	}

	switch (wc->kind) {
	case NET_W_SET:
		if (op->result == KVS_OK)
			r_ok(c);
		else
			r_null(c); /* NX or XX did not hold */
		break;
	case NET_W_SETNX:
		r_int(c, op->result == KVS_OK);
		break;
	case NET_W_DEL:
		for (size_t i = 0; i < wc->n; i++)
			n += op[i].result == KVS_OK;
		r_int(c, n);
		break;
	case NET_W_MSET:
		r_ok(c);
		break;
	case NET_W_INCR:
		if (op->result == KVS_OK)
			r_int(c, op->num);
		else if (op->result == KVS_EOVERFLOW)
			r_error(c, "ERR increment or decrement would overflow");
		else if (op->result == KVS_ENOTINT)
			r_error(c, err_notint);
		else
			r_kvs_error(c, op->result, c->werr, STORE_WRITE);
		break;
	case NET_W_DEFERRED:
		put_check(c, net_buf_append(&c->out, c->defer.data + wc->first,
					    wc->n));
		break;
	}
}

void net_cmd_complete(struct net_conn *c)
{
	c->completing = 1;
	for (size_t i = 0; i < c->nwcmds; i++) {
		const struct net_wcmd *wc = &c->wcmds[i];
		if (c->wresult != KVS_OK && wc->kind != NET_W_DEFERRED)
			r_kvs_error(c, c->wresult, c->werr, STORE_WRITE);
		else
			reply_write(c, wc);
	}
	c->completing = 0;
	batch_reset(c);
}

int net_cmd_is_write(const char *name, size_t len)
{
	const struct net_command *k = lookup(name, len);
	return k && (k->flags & F_WRITE);
}

/* ---- the table ---------------------------------------------------------------- */

static const struct net_command commands[] = {
	{ "auth", -2, F_NOAUTH | F_FAST, 0, 0, 0, cmd_auth },
	{ "client", -2, 0, 0, 0, 0, cmd_client },
	{ "command", -1, 0, 0, 0, 0, cmd_command },
	{ "config", -2, 0, 0, 0, 0, cmd_config },
	{ "dbsize", 1, F_READ | F_FAST, 0, 0, 0, cmd_dbsize },
	{ "decr", 2, F_WRITE | F_FAST, 1, 1, 1, cmd_decr },
	{ "decrby", 3, F_WRITE | F_FAST, 1, 1, 1, cmd_decrby },
	{ "del", -2, F_WRITE, 1, -1, 1, cmd_del },
	{ "echo", 2, F_FAST, 0, 0, 0, cmd_echo },
	{ "exists", -2, F_READ | F_FAST, 1, -1, 1, cmd_exists },
	{ "get", 2, F_READ | F_FAST, 1, 1, 1, cmd_get },
	{ "hello", -1, F_NOAUTH | F_FAST, 0, 0, 0, cmd_hello },
	{ "incr", 2, F_WRITE | F_FAST, 1, 1, 1, cmd_incr },
	{ "incrby", 3, F_WRITE | F_FAST, 1, 1, 1, cmd_incrby },
	{ "info", -1, 0, 0, 0, 0, cmd_info },
	{ "mget", -2, F_READ | F_FAST, 1, -1, 1, cmd_mget },
	{ "mset", -3, F_WRITE, 1, -1, 2, cmd_mset },
	{ "ping", -1, F_FAST, 0, 0, 0, cmd_ping },
	{ "quit", -1, F_NOAUTH | F_FAST, 0, 0, 0, cmd_quit },
	{ "scan", -2, F_READ, 0, 0, 0, cmd_scan },
	{ "select", 2, F_FAST, 0, 0, 0, cmd_select },
	{ "set", -3, F_WRITE, 1, 1, 1, cmd_set },
	{ "setnx", 3, F_WRITE | F_FAST, 1, 1, 1, cmd_setnx },
	{ "strlen", 2, F_READ | F_FAST, 1, 1, 1, cmd_strlen },
	{ "unlink", -2, F_WRITE | F_FAST, 1, -1, 1, cmd_del },
};
static const size_t ncommands = sizeof commands / sizeof commands[0];

static size_t table_size(void)
{
	return ncommands;
}

static const struct net_command *table_at(size_t i)
{
	return &commands[i];
}

static const struct net_command *lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < ncommands; i++)
		if (strlen(commands[i].name) == len &&
		    strncasecmp(commands[i].name, name, len) == 0)
			return &commands[i];
	return NULL;
}

/* "unknown command 'x', with args beginning with: 'a' 'b' ", as Redis
 * builds it: at most about 128 bytes of the name and of the arguments. */
static void unknown_command(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	char args[160];
	size_t used = 0;

	args[0] = '\0';
	for (size_t i = 1; i < cmd->argc && used < 128; i++) {
		int room = 128 - (int)used;
		int n = snprintf(args + used, sizeof args - used, "'%.*s' ",
				 (int)(cmd->argvlen[i] < (size_t)room ?
				       cmd->argvlen[i] : (size_t)room),
				 cmd->argv[i]);
		if (n < 0)
			break;
		used += (size_t)n;
		if (used >= sizeof args)
			used = sizeof args - 1;
	}
	r_errorf(c, "ERR unknown command '%.*s', with args beginning with: %s",
		 (int)(cmd->argvlen[0] > 128 ? 128 : cmd->argvlen[0]),
		 cmd->argv[0], args);
}

static void dispatch(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	const struct net_command *k = lookup(cmd->argv[0], cmd->argvlen[0]);

	if (!k) {
		unknown_command(c, cmd);
		return;
	}
	if ((k->arity > 0 && cmd->argc != (size_t)k->arity) ||
	    (k->arity < 0 && cmd->argc < (size_t)-k->arity)) {
		r_arity(c, k->name);
		return;
	}
	if (!c->authed && !(k->flags & F_NOAUTH)) {
		r_error(c, "NOAUTH Authentication required.");
		return;
	}
	k->fn(c, cmd);
}

void net_cmd_execute(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t d0 = c->defer.len;

	dispatch(c, cmd);
	/* Its immediate replies (errors) went to `defer` while the batch was
	 * open: they take their place among the batch's replies. */
	if (c->defer.len > d0 &&
	    batch_add(c, NET_W_DEFERRED, d0, c->defer.len - d0) != 0) {
		net_log(NET_LOG_WARN, "out of memory: closing client %s",
			c->addr);
		c->state = NET_CONN_CLOSING;
	}
}
