/* cmd_conn.c - the connection commands: PING, ECHO, QUIT, SELECT, AUTH,
 * HELLO, CLIENT.  They touch the connection only, never the store.  Run by
 * the connection's worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		if (!c->w->srv->password) {
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
	free(c->name);
	c->name = name;
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

void net_cmd_client(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	if (net_arg_is(cmd, 1, "ID") && cmd->argc == 2) {
		net_reply_int(c, (long long)c->id);
	} else if (net_arg_is(cmd, 1, "GETNAME") && cmd->argc == 2) {
		if (c->name)
			net_reply_str(c, c->name);
		else
			net_reply_null(c);
	} else if (net_arg_is(cmd, 1, "SETNAME") && cmd->argc == 3) {
		if (set_name(c, cmd->argv[2], cmd->argvlen[2]) == 0)
			net_reply_ok(c);
	} else if (net_arg_is(cmd, 1, "SETINFO") && cmd->argc == 4) {
		if (net_arg_is(cmd, 2, "LIB-NAME") ||
		    net_arg_is(cmd, 2, "LIB-VER"))
			net_reply_ok(c);
		else
			net_reply_errorf(c, "ERR Unrecognized option '%.*s'",
					 net_arg_shown(cmd, 2), cmd->argv[2]);
	} else if (net_arg_is(cmd, 1, "INFO") && cmd->argc == 2) {
		char line[256];

		snprintf(line, sizeof line, "id=%llu addr=%s name=%s age=%lld "
			 "db=0\n", (unsigned long long)c->id, c->addr,
			 c->name ? c->name : "",
			 (long long)(time(NULL) - c->since));
		net_reply_str(c, line);
	} else if (net_arg_is(cmd, 1, "ID") || net_arg_is(cmd, 1, "GETNAME") ||
		   net_arg_is(cmd, 1, "SETNAME") ||
		   net_arg_is(cmd, 1, "SETINFO") ||
		   net_arg_is(cmd, 1, "INFO")) {
		char sub[16];
		size_t n = cmd->argvlen[1];

		for (size_t i = 0; i < n; i++)
			sub[i] = (char)(cmd->argv[1][i] | 0x20);
		sub[n] = '\0';
		net_reply_errorf(c, "ERR wrong number of arguments for "
				 "'client|%s' command", sub);
	} else {
		net_reply_unknown_subcommand(c, cmd, "CLIENT");
	}
}
