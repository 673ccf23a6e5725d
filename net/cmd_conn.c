/* cmd_conn.c - the connection commands: PING, ECHO, QUIT, SELECT, AUTH,
 * HELLO, CLIENT.  They touch the connection only, never the store.  Run by
 * the connection's worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "check.h"
#include "commands.h"
#include "reply.h"

void net_cmd_ping(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (cmd->argc > 2)
		net_reply_arity(c, "ping");
	else if (cmd->argc == 2)
		net_reply_bulk(c, cmd->argv[1], cmd->argvlen[1]);
	else
		net_reply_simple(c, "PONG");
}

void net_cmd_echo(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	net_reply_bulk(c, cmd->argv[1], cmd->argvlen[1]);
}

void net_cmd_quit(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	(void)cmd;
	net_reply_ok(c);
	c->state = NET_CONN_CLOSING;
}

void net_cmd_select(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	long long db;

	if (net_arg_int(cmd, 1, &db) != 0)
		net_reply_error(c, NET_ERR_NOTINT);
	else if (db != 0)
		net_reply_error(c, "ERR DB index is out of range");
	else
		net_reply_ok(c);
}

/* Constant-time comparison: the time depends on the secret's length only. */
static int password_ok(const struct net_secret *sec, const char *p, size_t n)
{
	unsigned char diff = n != sec->len;

	for (size_t i = 0; i < sec->len; i++)
		diff |= (unsigned char)(sec->bytes[i] ^
					(i < n ? p[i] : ~sec->bytes[i]));
	return diff == 0;
}

/* Check user/password; replies only on failure.  Returns 1 if accepted. */
static int check_auth(struct net_conn *c, const char *user, size_t ulen,
		      const char *pass, size_t plen)
{
	struct net_server *s = c->w->srv;
	const struct net_secret *sec = net_secret_now(s);
	int user_ok = ulen == 7 && memcmp(user, "default", 7) == 0;

	if (user_ok && (!sec || password_ok(sec, pass, plen))) {
		c->authed = 1;
		return 1;
	}
	atomic_fetch_add_explicit(&s->auth_failures, 1, memory_order_relaxed);
	net_log(NET_LOG_WARN, "client %s (id %llu): wrong password",
		c->addr, (unsigned long long)c->id);
	net_reply_error(c,
		"WRONGPASS invalid username-password pair or user is "
		"disabled.");
	return 0;
}

void net_cmd_auth(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (cmd->argc > 3) {
		net_reply_error(c, NET_ERR_SYNTAX);
		return;
	}
	if (cmd->argc == 2) {
		if (!net_secret_now(c->w->srv)) {
			net_reply_error(c,
				"ERR AUTH <password> called without any "
				"password configured for the default user. "
				"Are you sure your configuration is correct?");
			return;
		}
		if (check_auth(c, "default", 7, cmd->argv[1],
			       cmd->argvlen[1]))
			net_reply_ok(c);
		return;
	}
	if (check_auth(c, cmd->argv[1], cmd->argvlen[1], cmd->argv[2],
		       cmd->argvlen[2]))
		net_reply_ok(c);
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
		net_reply_error(c,
			"ERR Client names cannot contain spaces, newlines "
			"or special characters.");
		return -1;
	}
	if (n) {
		name = malloc(n + 1);
		if (!name) {
			net_reply_error(c, "OOM out of memory");
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
	}
	/* CLIENT LIST on another worker reads it under clients_mu. */
	KVS_CHECK(pthread_mutex_lock(&c->w->srv->clients_mu));
	free(c->name);
	c->name = name;
	KVS_CHECK(pthread_mutex_unlock(&c->w->srv->clients_mu));
	return 0;
}

void net_cmd_hello(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	const char *setname = NULL;
	size_t setnamelen = 0;
	long long ver;
	size_t i;

	if (cmd->argc >= 2) {
		if (net_arg_int(cmd, 1, &ver) != 0) {
			net_reply_error(c,
				"ERR Protocol version is not an integer or "
				"out of range");
			return;
		}
		if (ver != 2) {
			net_reply_error(c,
				"NOPROTO unsupported protocol version");
			return;
		}
	}
	for (i = 2; i < cmd->argc; i++) {
		size_t more = cmd->argc - i - 1;

		if (net_arg_is(cmd, i, "AUTH") && more >= 2) {
			if (!check_auth(c, cmd->argv[i + 1],
					cmd->argvlen[i + 1], cmd->argv[i + 2],
					cmd->argvlen[i + 2]))
				return;
			i += 2;
		} else if (net_arg_is(cmd, i, "SETNAME") && more >= 1) {
			setname = cmd->argv[i + 1];
			setnamelen = cmd->argvlen[i + 1];
			i++;
		} else {
			net_reply_errorf(c, "ERR Syntax error in HELLO option "
					 "'%.*s'", net_arg_shown(cmd, i),
					 cmd->argv[i]);
			return;
		}
	}
	if (!c->authed) {
		net_reply_error(c,
			"NOAUTH HELLO must be called with the client "
			"already authenticated, otherwise the HELLO <proto> "
			"AUTH <user> <pass> option can be used to "
			"authenticate the client and select the RESP "
			"protocol version at the same time");
		return;
	}
	if (setname && set_name(c, setname, setnamelen) != 0)
		return;
	net_reply_array(c, 14);
	net_reply_str(c, "server");
	net_reply_str(c, "kvs");
	net_reply_str(c, "version");
	net_reply_str(c, KVS_VERSION);
	net_reply_str(c, "proto");
	net_reply_int(c, 2);
	net_reply_str(c, "id");
	net_reply_int(c, (long long)c->id);
	net_reply_str(c, "mode");
	net_reply_str(c, "standalone");
	net_reply_str(c, "role");
	net_reply_str(c, "master");
	net_reply_str(c, "modules");
	net_reply_array(c, 0);
}

/* ---- CLIENT ------------------------------------------------------------------ */

/* One CLIENT LIST line of c, as Redis's fields (those kvs has no notion
 * of are constant).  Call with clients_mu held: another worker's c is
 * read through its immutable fields, its name (guarded by clients_mu)
 * and atomics only. */
static void client_line(struct net_buf *b, const struct net_conn *c,
			const struct net_conn *self, uint64_t now_ms)
{
	char line[512];
	const char *cmd = atomic_load_explicit(&c->last_cmd,
					       memory_order_relaxed);
	uint64_t last = atomic_load_explicit(&c->last_ms,
					     memory_order_relaxed);
	int n = snprintf(line, sizeof line,
		"id=%llu addr=%s laddr= fd=%d name=%s age=%lld idle=%llu "
		"flags=%s db=0 sub=0 psub=0 ssub=0 multi=%d qbuf=0 "
		"qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 "
		"omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 "
		"resp=2\n",
		(unsigned long long)c->id, c->addr, c->fd,
		c->name ? c->name : "", (long long)(time(NULL) - c->since),
		(unsigned long long)(now_ms > last ? (now_ms - last) / 1000
						   : 0),
		/* Only the connection's own worker may read in_multi. */
		c == self && c->in_multi ? "x" : "N",
		c == self && c->in_multi ? 0 : -1, cmd ? cmd : "NULL");
	if (n > 0)
		net_buf_append(b, line, (size_t)n < sizeof line ?
					(size_t)n : sizeof line - 1);
}

static void client_list(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	struct net_buf b = NET_BUF_INIT;
	uint64_t now = net_mono_us() / 1000;
	size_t ids_from = 0;

	if (cmd->argc == 4 && net_arg_is(cmd, 2, "TYPE")) {
		if (!net_arg_is(cmd, 3, "normal") &&
		    !net_arg_is(cmd, 3, "master") &&
		    !net_arg_is(cmd, 3, "replica") &&
		    !net_arg_is(cmd, 3, "pubsub")) {
			net_reply_errorf(c, "ERR Unknown client type '%.*s'",
					 net_arg_shown(cmd, 3), cmd->argv[3]);
			return;
		}
		if (!net_arg_is(cmd, 3, "normal")) {
			net_reply_bulk(c, "", 0);
			return;
		}
	} else if (cmd->argc >= 4 && net_arg_is(cmd, 2, "ID")) {
		ids_from = 3;
		for (size_t i = 3; i < cmd->argc; i++) {
			long long id;
			if (net_arg_int(cmd, i, &id) != 0 || id <= 0) {
				net_reply_error(c, "ERR Invalid client ID");
				return;
			}
		}
	} else if (cmd->argc != 2) {
		net_reply_error(c, NET_ERR_SYNTAX);
		return;
	}
	KVS_CHECK(pthread_mutex_lock(&s->clients_mu));
	for (struct net_conn *o = s->clients; o; o = o->allnext) {
		bool want = ids_from == 0;
		for (size_t i = ids_from; ids_from && i < cmd->argc; i++) {
			long long id = 0;
			(void)net_arg_int(cmd, i, &id);
			want |= (uint64_t)id == o->id;
		}
		if (want)
			client_line(&b, o, c, now);
	}
	KVS_CHECK(pthread_mutex_unlock(&s->clients_mu));
	net_reply_bulk(c, b.data ? b.data : "", b.len);
	net_buf_free(&b);
}

/* Close another worker's connection o (clients_mu held, so its fd is
 * still its own): shutting the socket down makes its worker see the end
 * of input and close it.  Ourselves: after this reply. */
static void kill_one(struct net_conn *c, struct net_conn *o)
{
	if (o == c)
		c->state = NET_CONN_CLOSING;
	else if (o->fd >= 0)
		shutdown(o->fd, SHUT_RDWR);
}

static void client_kill(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	struct net_server *s = c->w->srv;
	long long id = 0, killed = 0;
	const char *addr = NULL;
	size_t addrlen = 0;
	bool skipme = true, old = cmd->argc == 3, close_self = false;

	if (old) {
		addr = cmd->argv[2];
		addrlen = cmd->argvlen[2];
		skipme = false;
	} else if (cmd->argc % 2 != 0) {
		net_reply_error(c, NET_ERR_SYNTAX);
		return;
	}
	for (size_t i = 2; !old && i + 1 < cmd->argc; i += 2) {
		if (net_arg_is(cmd, i, "ID")) {
			if (net_arg_int(cmd, i + 1, &id) != 0 || id <= 0) {
				net_reply_error(c, "ERR client-id should be "
						"greater than 0");
				return;
			}
		} else if (net_arg_is(cmd, i, "ADDR")) {
			addr = cmd->argv[i + 1];
			addrlen = cmd->argvlen[i + 1];
		} else if (net_arg_is(cmd, i, "SKIPME")) {
			if (net_arg_is(cmd, i + 1, "yes"))
				skipme = true;
			else if (net_arg_is(cmd, i + 1, "no"))
				skipme = false;
			else {
				net_reply_error(c, NET_ERR_SYNTAX);
				return;
			}
		} else if (net_arg_is(cmd, i, "TYPE") ||
			   net_arg_is(cmd, i, "USER") ||
			   net_arg_is(cmd, i, "LADDR")) {
			continue; /* every client is normal and default */
		} else {
			net_reply_error(c, NET_ERR_SYNTAX);
			return;
		}
	}
	KVS_CHECK(pthread_mutex_lock(&s->clients_mu));
	for (struct net_conn *o = s->clients; o; o = o->allnext) {
		if ((id && o->id != (uint64_t)id) ||
		    (addr && (strlen(o->addr) != addrlen ||
			      memcmp(o->addr, addr, addrlen) != 0)) ||
		    (skipme && o == c))
			continue;
		if (o == c)
			close_self = true;
		else
			kill_one(c, o);
		killed++;
	}
	KVS_CHECK(pthread_mutex_unlock(&s->clients_mu));
	if (old && killed == 0)
		net_reply_error(c, "ERR No such client");
	else if (old)
		net_reply_ok(c);
	else
		net_reply_int(c, killed);
	if (close_self)
		kill_one(c, c);
}

/* Subcommands and their argument counts (argc, or at least -argc). */
static const struct {
	const char *name;
	int argc;
} client_subs[] = {
	{ "id", 2 }, { "getname", 2 }, { "setname", 3 }, { "setinfo", 4 },
	{ "info", 2 }, { "list", -2 }, { "kill", -3 }, { "no-evict", 3 },
	{ "help", 2 },
};

/* CLIENT HELP: what kvs implements of CLIENT, in Redis's layout. */
static const char *const client_help[] = {
	"GETNAME",
	"    Return the name of the current connection, or nil.",
	"ID",
	"    Return the id of the current connection.",
	"INFO",
	"    Return the CLIENT LIST line of the current connection.",
	"KILL <ip:port>",
	"    Close the connection from <ip:port>.",
	"KILL <option> <value> [<option> <value> [...]]",
	"    Close the connections that match every option:",
	"    * ID <client-id>",
	"    * ADDR <ip:port>",
	"    * SKIPME (YES|NO): skip the calling connection (default YES).",
	"    * TYPE, USER, LADDR: accepted; every kvs client is normal.",
	"LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
	"    One line of fields per connection (id, addr, name, age, idle,",
	"    cmd, ...), of the given type or ids.",
	"NO-EVICT (ON|OFF)",
	"    Accepted; kvs never evicts.",
	"SETINFO (LIB-NAME|LIB-VER) <value>",
	"    Accepted, for client libraries; not kept.",
	"SETNAME <name>",
	"    Name the current connection (no spaces or newlines).",
	NULL,
};

void net_cmd_client(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t k, nsubs = sizeof client_subs / sizeof client_subs[0];

	for (k = 0; k < nsubs; k++)
		if (net_arg_is(cmd, 1, client_subs[k].name))
			break;
	if (k == nsubs) {
		net_reply_unknown_subcommand(c, cmd, "CLIENT");
		return;
	}
	if (client_subs[k].argc > 0 ? cmd->argc != (size_t)client_subs[k].argc
				    : cmd->argc < (size_t)-client_subs[k].argc) {
		net_reply_errorf(c, "ERR wrong number of arguments for "
				 "'client|%s' command", client_subs[k].name);
		return;
	}
	if (net_arg_is(cmd, 1, "HELP")) {
		net_reply_help(c, "CLIENT", client_help);
	} else if (net_arg_is(cmd, 1, "ID")) {
		net_reply_int(c, (long long)c->id);
	} else if (net_arg_is(cmd, 1, "GETNAME")) {
		if (c->name)
			net_reply_str(c, c->name);
		else
			net_reply_null(c);
	} else if (net_arg_is(cmd, 1, "SETNAME")) {
		if (set_name(c, cmd->argv[2], cmd->argvlen[2]) == 0)
			net_reply_ok(c);
	} else if (net_arg_is(cmd, 1, "SETINFO")) {
		if (net_arg_is(cmd, 2, "LIB-NAME") ||
		    net_arg_is(cmd, 2, "LIB-VER"))
			net_reply_ok(c);
		else
			net_reply_errorf(c, "ERR Unrecognized option '%.*s'",
					 net_arg_shown(cmd, 2), cmd->argv[2]);
	} else if (net_arg_is(cmd, 1, "INFO")) {
		struct net_buf b = NET_BUF_INIT;

		KVS_CHECK(pthread_mutex_lock(&c->w->srv->clients_mu));
		client_line(&b, c, c, net_mono_us() / 1000);
		KVS_CHECK(pthread_mutex_unlock(&c->w->srv->clients_mu));
		net_reply_bulk(c, b.data ? b.data : "", b.len);
		net_buf_free(&b);
	} else if (net_arg_is(cmd, 1, "LIST")) {
		client_list(c, cmd);
	} else if (net_arg_is(cmd, 1, "KILL")) {
		client_kill(c, cmd);
	} else { /* NO-EVICT: nothing is ever evicted */
		if (net_arg_is(cmd, 2, "on") || net_arg_is(cmd, 2, "off"))
			net_reply_ok(c);
		else
			net_reply_error(c, NET_ERR_SYNTAX);
	}
}
