/* cmd_config.c - CONFIG GET, SET and RESETSTAT: the settings kvs-server
 * shows under Redis's names, and those that change at run time
 * (appendfsync: the store's fsync policy; requirepass; maxclients;
 * timeout).  Run by the connection's worker. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "commands.h"
#include "reply.h"
#include "stats.h"

/* Redis's names of the fsync policies ("no" is kvs's "never"). */
static const char *const fsync_names[] = {
	[KVS_FSYNC_EVERYSEC] = "everysec",
	[KVS_FSYNC_ALWAYS] = "always",
	[KVS_FSYNC_NEVER] = "no",
};

enum param {
	P_SAVE, P_APPENDONLY, P_APPENDFSYNC, P_DATABASES, P_MAXMEMORY,
	P_TIMEOUT, P_PORT, P_DIR, P_MAXCLIENTS, P_REQUIREPASS,
	P_PROTO_MAX_BULK, P_QUERYBUF, P_OUTPUT_LIMIT, P_COUNT
};
static const char *const param_names[P_COUNT] = {
	"save", "appendonly", "appendfsync", "databases", "maxmemory",
	"timeout", "port", "dir", "maxclients", "requirepass",
	"proto-max-bulk-len", "client-query-buffer-limit",
	"client-output-buffer-limit",
};

/* The value of parameter p, in buf (room for 64 bytes) or a string that
 * lives as long as the server (replaced passwords are kept). */
static const char *param_value(struct net_server *s, enum param p,
			       char *buf, size_t size)
{
	const struct net_secret *sec;

	switch (p) {
	case P_SAVE: return "";
	case P_APPENDONLY: return "no";
	case P_APPENDFSYNC:
		return fsync_names[atomic_load(&s->fsync)];
	case P_DATABASES: return "1";
	case P_MAXMEMORY: return "0";
	case P_TIMEOUT:
		snprintf(buf, size, "%" PRIu64, (uint64_t)s->timeout_s);
		return buf;
	case P_PORT:
		snprintf(buf, size, "%d", s->port);
		return buf;
	case P_DIR: return s->cfg.dir ? s->cfg.dir : "";
	case P_MAXCLIENTS:
		snprintf(buf, size, "%" PRIu64, (uint64_t)s->maxclients);
		return buf;
	case P_REQUIREPASS:
		/* As Redis: an authenticated client may read it.  Replaced
		 * passwords stay allocated while the server runs. */
		sec = net_secret_now(s);
		return sec ? sec->bytes : "";
	case P_PROTO_MAX_BULK: return "536870912";
	case P_QUERYBUF: return "1073741824";
	case P_OUTPUT_LIMIT:
		snprintf(buf, size, "%" PRIu64, s->output_limit);
		return buf;
	case P_COUNT: break;
	}
	return "";
}

static void config_get(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	bool match[P_COUNT];
	size_t hits = 0;
	char buf[64];

	for (unsigned p = 0; p < P_COUNT; p++) {
		match[p] = false;
		for (size_t j = 2; j < cmd->argc && !match[p]; j++)
			match[p] = net_glob_match(cmd->argv[j],
					cmd->argvlen[j], param_names[p],
					strlen(param_names[p]), 1);
		hits += match[p];
	}
	net_reply_array(c, 2 * hits);
	for (unsigned p = 0; p < P_COUNT; p++) {
		if (!match[p])
			continue;
		net_reply_str(c, param_names[p]);
		net_reply_str(c, param_value(s, (enum param)p, buf,
					     sizeof buf));
	}
}

/* One parameter of a CONFIG SET, checked before any is applied. */
struct setting {
	enum param p;
	const char *val;
	size_t len;
	long long num;
};

static void set_failed(struct net_conn *c, enum param p, const char *why)
{
	net_reply_errorf(c, "ERR CONFIG SET failed (possibly related to "
			 "argument '%s') - %s", param_names[p], why);
}

/* Check value v of p into *st.  Returns 0, or -1 after replying. */
static int check_setting(struct net_conn *c, struct setting *st)
{
	long long lo = 0, hi = 0;
	int64_t v;

	switch (st->p) {
	case P_APPENDFSYNC:
		for (unsigned i = 0; i < 3; i++)
			if (strlen(fsync_names[i]) == st->len &&
			    strncasecmp(fsync_names[i], st->val, st->len) == 0)
				st->num = i;
			else if (st->len == 5 &&
				 strncasecmp(st->val, "never", 5) == 0)
				st->num = KVS_FSYNC_NEVER;
		if (st->num < 0) {
			set_failed(c, st->p, "argument(s) must be one of the "
				   "following: everysec, always, no");
			return -1;
		}
		return 0;
	case P_REQUIREPASS:
		return 0;
	case P_MAXCLIENTS:
		lo = 1;
		hi = 4294967295ll;
		break;
	case P_TIMEOUT:
		lo = 0;
		hi = 2147483647;
		break;
	default:
		set_failed(c, st->p, "kvs cannot change it at run time");
		return -1;
	}
	if (!kvs_parse_int64(st->val, st->len, &v)) {
		set_failed(c, st->p, "argument couldn't be parsed into an "
			   "integer");
		return -1;
	}
	if (v < lo || v > hi) {
		char why[96];
		snprintf(why, sizeof why, "argument must be between %lld and "
			 "%lld inclusive", lo, hi);
		set_failed(c, st->p, why);
		return -1;
	}
	st->num = v;
	return 0;
}

/* Publish a new password ("" = none); the old one is kept until the
 * server is freed (a worker may be comparing against it). */
static int set_password(struct net_server *s, const char *p, size_t len)
{
	struct net_secret *sec = NULL, *old;

	if (len && !(sec = malloc(sizeof *sec + len + 1)))
		return -1;
	if (sec) {
		sec->next = NULL;
		sec->len = len;
		memcpy(sec->bytes, p, len);
		sec->bytes[len] = '\0';
	}
	KVS_CHECK(pthread_mutex_lock(&s->info_mu));
	old = atomic_exchange(&s->secret, sec);
	if (old) {
		old->next = s->old_secrets;
		s->old_secrets = old;
	}
	/* Protected mode guards a public bind without a password. */
	atomic_store(&s->protected_mode, s->bind_public && !sec);
	KVS_CHECK(pthread_mutex_unlock(&s->info_mu));
	return 0;
}

static void config_set(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	size_t n = (cmd->argc - 2) / 2;
	struct setting st[P_COUNT + 1]; /* the last: a sure duplicate */

	if ((cmd->argc - 2) % 2 != 0) {
		net_reply_error(c, NET_ERR_SYNTAX);
		return;
	}
	if (n > P_COUNT)
		n = P_COUNT + 1; /* a duplicate, surely: found below */
	for (size_t i = 0; i < n; i++) {
		size_t a = 2 + 2 * i;
		unsigned p;

		for (p = 0; p < P_COUNT; p++)
			if (net_arg_is(cmd, a, param_names[p]))
				break;
		if (p == P_COUNT) {
			net_reply_errorf(c, "ERR Unknown option or number of "
					 "arguments for CONFIG SET - '%.*s'",
					 net_arg_shown(cmd, a), cmd->argv[a]);
			return;
		}
		for (size_t j = 0; j < i; j++) {
			if (st[j].p == (enum param)p) {
				set_failed(c, (enum param)p,
					   "duplicate parameter");
				return;
			}
		}
		st[i] = (struct setting){ (enum param)p, cmd->argv[a + 1],
					  cmd->argvlen[a + 1], -1 };
		if (check_setting(c, &st[i]) != 0)
			return;
	}
	for (size_t i = 0; i < n; i++) {
		switch (st[i].p) {
		case P_APPENDFSYNC: {
			int rc = kvs_set_fsync(s->db, (enum kvs_fsync)st[i].num);
			if (rc != KVS_OK) {
				set_failed(c, st[i].p, kvs_errmsg());
				return;
			}
			atomic_store(&s->fsync, (int)st[i].num);
			break;
		}
		case P_REQUIREPASS:
			if (set_password(s, st[i].val, st[i].len) != 0) {
				net_reply_error(c, "OOM out of memory");
				return;
			}
			break;
		case P_MAXCLIENTS:
			atomic_store(&s->maxclients, (uint64_t)st[i].num);
			break;
		case P_TIMEOUT:
			atomic_store(&s->timeout_s, (uint64_t)st[i].num);
			break;
		default:
			break;
		}
	}
	net_reply_ok(c);
}

/* CONFIG HELP: what kvs implements of CONFIG, in Redis's layout. */
static const char *const config_help[] = {
	"GET <pattern> [<pattern> ...]",
	"    Return the parameters matching the glob-like patterns and their",
	"    values.",
	"SET <parameter> <value> [<parameter> <value> ...]",
	"    Set the parameters; kvs changes appendfsync, requirepass (\"\":",
	"    no password), maxclients and timeout at run time.",
	"RESETSTAT",
	"    Reset the statistics reported by INFO.",
	NULL,
};

void net_cmd_config(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (net_arg_is(cmd, 1, "HELP")) {
		if (cmd->argc != 2)
			net_reply_arity(c, "config|help");
		else
			net_reply_help(c, "CONFIG", config_help);
	} else if (net_arg_is(cmd, 1, "GET")) {
		if (cmd->argc < 3)
			net_reply_arity(c, "config|get");
		else
			config_get(c, cmd);
	} else if (net_arg_is(cmd, 1, "SET")) {
		if (cmd->argc < 4)
			net_reply_arity(c, "config|set");
		else
			config_set(c, cmd);
	} else if (net_arg_is(cmd, 1, "RESETSTAT")) {
		if (cmd->argc != 2) {
			net_reply_arity(c, "config|resetstat");
			return;
		}
		KVS_CHECK(pthread_mutex_lock(&c->w->srv->info_mu));
		net_stats_reset(c->w->srv);
		KVS_CHECK(pthread_mutex_unlock(&c->w->srv->info_mu));
		net_reply_ok(c);
	} else {
		net_reply_unknown_subcommand(c, cmd, "CONFIG");
	}
}
