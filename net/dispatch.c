/* dispatch.c - the command table (each command's name, arity, flags, key
 * positions and handler), COMMAND (which reports the table), and running
 * one parsed command: lookup, arity, AUTH, handler.  Run by the
 * connection's worker. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "check.h"
#include "cmd_multi.h"
#include "commands.h"
#include "reply.h"
#include "stats.h"

/* Command flags, shown by COMMAND as Redis's names. */
#define F_WRITE   1u  /* modifies the store */
#define F_READ    2u  /* reads the store */
#define F_NOAUTH  4u  /* allowed before AUTH */
#define F_FAST    8u  /* O(1) */
#define F_TXN     16u /* runs at once inside MULTI (not queued) */

struct net_command {
	const char *name; /* lower case */
	int arity;        /* argc exactly, or at least -arity if negative */
	unsigned flags;
	int first, last, step; /* key positions, as COMMAND reports them */
	net_cmd_fn *fn;
};

/* COMMAND reports the table, so it lives with it. */
static net_cmd_fn cmd_command;

static const struct net_command commands[] = {
	{ "append", 3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_append },
	{ "auth", -2, F_NOAUTH | F_FAST, 0, 0, 0, net_cmd_auth },
	{ "bgsave", -1, 0, 0, 0, 0, net_cmd_bgsave },
	{ "bitcount", -2, F_READ, 1, 1, 1, net_cmd_bitcount },
	{ "bitfield", -2, F_WRITE, 1, 1, 1, net_cmd_bitfield },
	{ "bitfield_ro", -2, F_READ | F_FAST, 1, 1, 1, net_cmd_bitfield_ro },
	{ "bitop", -4, F_WRITE, 2, -1, 1, net_cmd_bitop },
	{ "bitpos", -3, F_READ, 1, 1, 1, net_cmd_bitpos },
	{ "client", -2, 0, 0, 0, 0, net_cmd_client },
	{ "command", -1, 0, 0, 0, 0, cmd_command },
	{ "config", -2, 0, 0, 0, 0, net_cmd_config },
	{ "copy", -3, F_WRITE, 1, 2, 1, net_cmd_copy },
	{ "dbsize", 1, F_READ | F_FAST, 0, 0, 0, net_cmd_dbsize },
	{ "decr", 2, F_WRITE | F_FAST, 1, 1, 1, net_cmd_decr },
	{ "decrby", 3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_decrby },
	{ "del", -2, F_WRITE, 1, -1, 1, net_cmd_del },
	{ "discard", 1, F_FAST | F_TXN, 0, 0, 0, net_cmd_discard },
	{ "echo", 2, F_FAST, 0, 0, 0, net_cmd_echo },
	{ "exec", 1, F_TXN, 0, 0, 0, net_cmd_exec },
	{ "exists", -2, F_READ | F_FAST, 1, -1, 1, net_cmd_exists },
	{ "expire", -3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_expire },
	{ "expireat", -3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_expireat },
	{ "expiretime", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_expiretime },
	{ "flushall", -1, F_WRITE, 0, 0, 0, net_cmd_flushall },
	{ "flushdb", -1, F_WRITE, 0, 0, 0, net_cmd_flushall },
	{ "get", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_get },
	{ "getbit", 3, F_READ | F_FAST, 1, 1, 1, net_cmd_getbit },
	{ "getdel", 2, F_WRITE | F_FAST, 1, 1, 1, net_cmd_getdel },
	{ "getex", -2, F_WRITE | F_FAST, 1, 1, 1, net_cmd_getex },
	{ "getrange", 4, F_READ, 1, 1, 1, net_cmd_getrange },
	{ "getset", 3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_getset },
	{ "hello", -1, F_NOAUTH | F_FAST, 0, 0, 0, net_cmd_hello },
	{ "incr", 2, F_WRITE | F_FAST, 1, 1, 1, net_cmd_incr },
	{ "incrby", 3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_incrby },
	{ "incrbyfloat", 3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_incrbyfloat },
	{ "info", -1, 0, 0, 0, 0, net_cmd_info },
	{ "keys", 2, F_READ, 0, 0, 0, net_cmd_keys },
	{ "lastsave", 1, F_FAST, 0, 0, 0, net_cmd_lastsave },
	{ "lcs", -3, F_READ, 1, 2, 1, net_cmd_lcs },
	{ "mget", -2, F_READ | F_FAST, 1, -1, 1, net_cmd_mget },
	{ "multi", 1, F_FAST | F_TXN, 0, 0, 0, net_cmd_multi },
	{ "mset", -3, F_WRITE, 1, -1, 2, net_cmd_mset },
	{ "msetnx", -3, F_WRITE, 1, -1, 2, net_cmd_msetnx },
	{ "persist", 2, F_WRITE | F_FAST, 1, 1, 1, net_cmd_persist },
	{ "pexpire", -3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_pexpire },
	{ "pexpireat", -3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_pexpireat },
	{ "pexpiretime", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_pexpiretime },
	{ "ping", -1, F_FAST, 0, 0, 0, net_cmd_ping },
	{ "psetex", 4, F_WRITE, 1, 1, 1, net_cmd_psetex },
	{ "pttl", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_pttl },
	{ "quit", -1, F_NOAUTH | F_FAST | F_TXN, 0, 0, 0, net_cmd_quit },
	{ "randomkey", 1, F_READ, 0, 0, 0, net_cmd_randomkey },
	{ "rename", 3, F_WRITE, 1, 2, 1, net_cmd_rename },
	{ "renamenx", 3, F_WRITE | F_FAST, 1, 2, 1, net_cmd_renamenx },
	{ "save", 1, 0, 0, 0, 0, net_cmd_save },
	{ "scan", -2, F_READ, 0, 0, 0, net_cmd_scan },
	{ "select", 2, F_FAST, 0, 0, 0, net_cmd_select },
	{ "set", -3, F_WRITE, 1, 1, 1, net_cmd_set },
	{ "setbit", 4, F_WRITE, 1, 1, 1, net_cmd_setbit },
	{ "setex", 4, F_WRITE, 1, 1, 1, net_cmd_setex },
	{ "setnx", 3, F_WRITE | F_FAST, 1, 1, 1, net_cmd_setnx },
	{ "setrange", 4, F_WRITE, 1, 1, 1, net_cmd_setrange },
	{ "strlen", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_strlen },
	{ "substr", 4, F_READ, 1, 1, 1, net_cmd_substr },
	{ "time", 1, F_FAST, 0, 0, 0, net_cmd_time },
	{ "touch", -2, F_READ | F_FAST, 1, -1, 1, net_cmd_touch },
	{ "ttl", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_ttl },
	{ "type", 2, F_READ | F_FAST, 1, 1, 1, net_cmd_type },
	{ "unlink", -2, F_WRITE | F_FAST, 1, -1, 1, net_cmd_del },
	{ "unwatch", 1, F_FAST, 0, 0, 0, net_cmd_unwatch },
	{ "watch", -2, F_FAST | F_TXN, 1, -1, 1, net_cmd_watch },
};
static const size_t ncommands = sizeof commands / sizeof commands[0];
_Static_assert(sizeof commands / sizeof commands[0] <= NET_MAX_COMMANDS,
	       "INFO's per-command counters need a row per command");

/* The table by name, for the lookup of every command a client sends
 * (twice for most): open addressing over NAME_SLOTS slots, each the row's
 * index + 1 (0: empty), built once.  The hash folds case the cheap way
 * (| 0x20), the same for the table's lower-case names and for what a
 * client sends; the match itself is strncasecmp. */
#define NAME_SLOTS 512u
_Static_assert(sizeof commands / sizeof commands[0] <= NAME_SLOTS / 2,
	       "the name table stays at most half full");
static uint16_t name_slot[NAME_SLOTS];
static uint8_t name_len[sizeof commands / sizeof commands[0]];
static size_t name_max;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static unsigned name_hash(const char *name, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ ((unsigned char)name[i] | 0x20u)) * 16777619u;
	return h & (NAME_SLOTS - 1);
}

static void names_init(void)
{
	for (size_t i = 0; i < ncommands; i++) {
		size_t len = strlen(commands[i].name);
		KVS_ASSERT(len < 256);
		name_len[i] = (uint8_t)len;
		if (len > name_max)
			name_max = len;
		unsigned h = name_hash(commands[i].name, len);
		while (name_slot[h])
			h = (h + 1) & (NAME_SLOTS - 1);
		name_slot[h] = (uint16_t)(i + 1);
	}
}

static const struct net_command *lookup(const char *name, size_t len)
{
	KVS_CHECK(pthread_once(&names_once, names_init));
	if (len == 0 || len > name_max)
		return NULL;
	for (unsigned h = name_hash(name, len); name_slot[h];
	     h = (h + 1) & (NAME_SLOTS - 1)) {
		size_t i = name_slot[h] - 1u;
		if (name_len[i] == len &&
		    strncasecmp(commands[i].name, name, len) == 0)
			return &commands[i];
	}
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
	net_reply_errorf(c, "ERR unknown command '%.*s', with args beginning "
			 "with: %s", net_arg_shown(cmd, 0), cmd->argv[0], args);
}

/* A command refused before it ran: counted, and inside MULTI it makes
 * EXEC abort (as Redis). */
static void rejected(struct net_conn *c, const struct net_command *k,
		     const char *kind)
{
	net_stats_error(c->w, kind, strlen(kind));
	if (k)
		net_stats_rejected(c->w, (unsigned)(k - commands), k->name);
	net_multi_flag(c);
}

/* EXEC refused before it ran: Redis's rejectCommand() discards the
 * transaction (in MULTI or not) and answers EXECABORT with the reason. */
static void rejected_exec(struct net_conn *c, const struct net_command *k,
			  const char *why)
{
	net_multi_abort(c);
	net_reply_errorf(c, "EXECABORT Transaction discarded because of: %s",
			 why);
	net_stats_error(c->w, "EXECABORT", 9);
	net_stats_rejected(c->w, (unsigned)(k - commands), k->name);
}

void net_cmd_execute(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	const struct net_command *k = lookup(cmd->argv[0], cmd->argvlen[0]);
	struct net_buf *rb;
	size_t mark;
	uint64_t t0;

	KVS_ASSERT(net_on_worker(c->w) && c->state == NET_CONN_ACTIVE);
	if (!k) {
		unknown_command(c, cmd);
		rejected(c, NULL, "ERR");
		return;
	}
	if ((k->arity > 0 && cmd->argc != (size_t)k->arity) ||
	    (k->arity < 0 && cmd->argc < (size_t)-k->arity)) {
		if (k->fn == net_cmd_exec) {
			rejected_exec(c, k, "wrong number of arguments for "
				      "'exec' command");
			return;
		}
		net_reply_arity(c, k->name);
		rejected(c, k, "ERR");
		return;
	}
	if (!c->authed && !(k->flags & F_NOAUTH)) {
		if (k->fn == net_cmd_exec) {
			rejected_exec(c, k, "NOAUTH Authentication required.");
			return;
		}
		net_reply_error(c, "NOAUTH Authentication required.");
		rejected(c, k, "NOAUTH");
		return;
	}
	if (net_multi_active(c) && !(k->flags & F_TXN)) {
		net_multi_queue(c, cmd, k->fn, (unsigned)(k - commands),
				k->name);
		return;
	}
	/* Where its reply starts: an error reply is counted as a failure
	 * (replies that come with the batch are counted by batch.c). */
	rb = net_reply_buf(c);
	mark = rb->len;
	t0 = net_mono_us();
	atomic_store_explicit(&c->last_ms, t0 / 1000, memory_order_relaxed);
	atomic_store_explicit(&c->last_cmd, k->name, memory_order_relaxed);
	k->fn(c, cmd);
	/* A command that opened a batch (EXEC) switched buffers: its
	 * reply comes with the batch. */
	bool same = net_reply_buf(c) == rb && rb->len >= mark;
	bool failed = same && rb->len > mark && rb->data[mark] == '-';
	if (failed)
		net_stats_error(c->w, rb->data + mark, rb->len - mark);
	else if (same && k->fn == net_cmd_get && rb->len > mark)
		net_stats_keyspace(c->w, rb->data[mark] == '$' &&
				   rb->data[mark + 1] != '-');
	net_stats_call(c->w, (unsigned)(k - commands), k->name,
		       net_mono_us() - t0, failed);
}

static void put_command_info(struct net_conn *c, const struct net_command *k)
{
	size_t nflags = 0;

	net_reply_array(c, 10);
	net_reply_str(c, k->name);
	net_reply_int(c, k->arity);
	nflags = !!(k->flags & F_WRITE) + !!(k->flags & F_READ) +

		 !!(k->flags & F_NOAUTH) + !!(k->flags & F_FAST);
	net_reply_array(c, nflags);
	if (k->flags & F_WRITE)
		net_reply_simple(c, "write");
	if (k->flags & F_READ)
		net_reply_simple(c, "readonly");
	if (k->flags & F_NOAUTH)
		net_reply_simple(c, "no_auth");
	if (k->flags & F_FAST)
		net_reply_simple(c, "fast");

	net_reply_int(c, k->first);
	net_reply_int(c, k->last);
	net_reply_int(c, k->step);
	net_reply_array(c, 0); /* ACL categories */
	net_reply_array(c, 0); /* tips */
	net_reply_array(c, 0); /* key specifications */
	net_reply_array(c, 0); /* subcommands */
}

static const char *const command_help[] = {
	"(no subcommand)",
	"    Return details about every command kvs-server knows.",
	"COUNT",
	"    Return the number of commands.",
	"DOCS [<command-name> ...]",
	"    Return documentation of commands: kvs-server has none (empty).",
	"INFO [<command-name> ...]",
	"    Return details about the given commands (nil for an unknown one).",
	"LIST",
	"    Return the names of every command.",
	NULL,
};

static void cmd_command(struct net_conn *c, const struct net_resp_cmd *cmd)
{
	size_t i;

	if (cmd->argc == 1) {
		net_reply_array(c, ncommands);
		for (i = 0; i < ncommands; i++)
			put_command_info(c, &commands[i]);
	} else if (net_arg_is(cmd, 1, "COUNT") && cmd->argc == 2) {
		net_reply_int(c, (long long)ncommands);
	} else if (net_arg_is(cmd, 1, "HELP") && cmd->argc == 2) {
		net_reply_help(c, "COMMAND", command_help);
	} else if (net_arg_is(cmd, 1, "DOCS")) {
		net_reply_array(c, 0); /* no documentation: clients accept it */
	} else if (net_arg_is(cmd, 1, "LIST") && cmd->argc == 2) {
		net_reply_array(c, ncommands);
		for (i = 0; i < ncommands; i++)
			net_reply_str(c, commands[i].name);
	} else if (net_arg_is(cmd, 1, "INFO")) {
		net_reply_array(c, cmd->argc - 2);
		for (i = 2; i < cmd->argc; i++) {
			const struct net_command *k =
				lookup(cmd->argv[i], cmd->argvlen[i]);
			if (k)
				put_command_info(c, k);
			else
				net_reply_null(c);
		}
	} else {
		net_reply_unknown_subcommand(c, cmd, "COMMAND");
	}
}

bool net_cmd_is_write(const char *name, size_t len)
{
	const struct net_command *k = lookup(name, len);
	return k && (k->flags & F_WRITE);
}

bool net_cmd_is_keyed_read(const char *name, size_t len)
{
	const struct net_command *k = lookup(name, len);
	return k && (k->flags & F_READ) && !(k->flags & F_WRITE) &&
	       k->first > 0;
}

bool net_cmd_read_keys(const struct net_resp_cmd *cmd, size_t *first,
		       size_t *last, size_t *step)
{
	const struct net_command *k = lookup(cmd->argv[0], cmd->argvlen[0]);

	if (!k || !(k->flags & F_READ) || (k->flags & F_WRITE) ||
	    k->first <= 0 || k->step <= 0 ||
	    (k->arity > 0 && cmd->argc != (size_t)k->arity) ||
	    (k->arity < 0 && cmd->argc < (size_t)-k->arity))
		return false;
	*first = (size_t)k->first;
	*last = k->last < 0 ? cmd->argc - (size_t)-k->last : (size_t)k->last;
	*step = (size_t)k->step;
	return *first <= *last && *last < cmd->argc;
}
