/* fuzz_cmd.c - libFuzzer harness for kvs-server's command layer: the input
 * is decoded into a pipeline of Redis commands over eight keys, sent over one
 * loopback connection to an in-process server (a real log engine in a private
 * temporary directory), and every reply is compared byte for byte with the
 * reply Redis 7.0 gives, computed by a small model of the keyspace here.
 *
 * The encoding (gen()): one byte for the case of command names, then per
 * command one byte for the operation (mod 30) and its operands (a key: one
 * byte mod 8; a value: b < 128 picks num_value[], else b % 17 bytes
 * follow).  Each input starts with FLUSHALL on a new connection.  Where the
 * reply depends on the clock (TTL's figure; GT/LT between equal times) the
 * pattern accepts any value the clock allows.  Debugging:
 *   FUZZ_CMD_TRACE=1 fuzz-replay-cmd FILE       every command and reply
 *   FUZZ_CMD_REDIS_PORT=P fuzz-replay-cmd DIR   the model against a
 *       redis-server on 127.0.0.1:P (redis-server --port P --save '') */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvs.h"
#include "resp.h"
#include "server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_cmd.c:%d: check failed: %s\n", \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

/* ---- the commands of one input ------------------------------------------- */

#define MAX_ARGS 16
#define MAX_CMDS 512
struct cmd {
	size_t argc;
	const char *argv[MAX_ARGS]; /* NUL-terminated copies in `arena` */
	size_t len[MAX_ARGS];
};
static char arena[1 << 20];
static size_t arena_used;
static struct cmd cmds[MAX_CMDS];
static size_t ncmds;
static unsigned name_case; /* 0 lower, 1 upper, 2 mixed: names are
			      case-insensitive */

struct in {
	const uint8_t *p;
	size_t n, i;
};
static unsigned byte(struct in *in)
{
	return in->i < in->n ? in->p[in->i++] : 0;
}

static void add(struct cmd *c, const void *p, size_t n)
{
	CHECK(c->argc < MAX_ARGS && arena_used + n + 1 <= sizeof arena);
	char *d = arena + arena_used;
	memcpy(d, p, n);
	d[n] = '\0';
	arena_used += n + 1;
	c->argv[c->argc] = d;
	c->len[c->argc++] = n;
}
static void adds(struct cmd *c, const char *s)
{
	add(c, s, strlen(s));
}
static struct cmd *new_cmd(const char *name)
{
	struct cmd *c = &cmds[ncmds++];
	char buf[32];
	size_t n = strlen(name);
	c->argc = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		if (name_case == 1 || (name_case == 2 && i % 2 == 0))
			ch = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
		buf[i] = ch;
	}
	add(c, buf, n);
	return c;
}

/* The key space: eight keys, some binary.  No empty key: kvs refuses it on
 * purpose (docs/PROTOCOL.md, "Differences from Redis"). */
#define NKEYS 8
#define LONGKEY "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
static const char *const key_name[NKEYS] = {
	"a", "b", "key:2", "key with spaces", "\0\xff\r\n", "\xc3\xa9",
	LONGKEY, "z",
};
static const size_t key_len[NKEYS] = { 1, 1, 5, 15, 4, 2, 64, 1 };
static void add_key(struct cmd *c, struct in *in)
{
	unsigned k = byte(in) % NKEYS;
	add(c, key_name[k], key_len[k]);
}

/* Values: numbers in and around the range INCR accepts, or a few bytes of
 * the input. */
static const char *const num_value[] = {
	"0", "1", "-1", "42", "-100", "9223372036854775807",
	"-9223372036854775808", "9223372036854775806", "-9223372036854775807",
	"abc", "", "01", " 1", "+1", "1.5", "-0", "18446744073709551615",
	"12345678901234567890123", "7 ",
};
#define NNUM (sizeof num_value / sizeof num_value[0])
static void add_value(struct cmd *c, struct in *in)
{
	unsigned b = byte(in);
	if (b < 128) {
		adds(c, num_value[b % NNUM]);
	} else {
		char buf[16];
		size_t n = b % 17;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)byte(in);
		add(c, buf, n);
	}
}

/* A junk token that is no keyword of any command ('#' first), so a syntax
 * error is the only reply; no NUL (Redis's option parsing stops at one). */
static void add_junk_token(struct cmd *c, struct in *in)
{
	char buf[4] = { '#' };
	size_t n = 1 + byte(in) % 4;
	for (size_t i = 1; i < n; i++) {
		buf[i] = (char)byte(in);
		if (buf[i] == '\0')
			buf[i] = 'x';
	}
	add(c, buf, n);
}

/* Expiry times, relative, far from the present and from each other (so
 * GT/LT decide the same way however long the run takes), or bad. */
static const char *const ex_time[] = {
	"1000", "100000", "5000000", "0", "-1", "abc", "9223372036854775807",
	"9223372036854775", "9223372036854",
};
static const char *const px_time[] = {
	"1000000", "500000000", "0", "-7", "1.5", "9223372036854775807",
	"9223372036854775", "-9223372036854775808",
};
static const char *const exp_s[] = {
	"1000", "100000", "5000000", "0", "-1", "-100000", "abc",
	"9223372036854775807", "9223372036854775", "-9223372036854775808",
};
#define PICK(tab, b) (tab[(b) % (sizeof tab / sizeof tab[0])])

static const char *const set_opt[] = {
	"NX", "XX", "GET", "KEEPTTL", "EX", "PX", "nx", "Ex", "pX", "keepttl",
	"get", "EX", "PX",
};
static const char *const expire_opt[] = { "NX", "XX", "GT", "LT", "gt", "xx" };

/* The commands the model knows, with Redis's arity. */
struct mcmd {
	const char *name;
	int arity;
};
static const struct mcmd mcmds[] = {
	{ "set", -3 }, { "get", 2 }, { "del", -2 }, { "exists", -2 },
	{ "incr", 2 }, { "incrby", 3 }, { "decr", 2 }, { "decrby", 3 },
	{ "append", 3 }, { "strlen", 2 }, { "mset", -3 }, { "mget", -2 },
	{ "setnx", 3 }, { "getset", 3 }, { "getdel", 2 }, { "expire", -3 },
	{ "pexpire", -3 }, { "persist", 2 }, { "ttl", 2 }, { "type", 2 },
	{ "flushall", -1 }, { "dbsize", 1 }, { "multi", 1 }, { "exec", 1 },
	{ "discard", 1 },
};
#define NMCMDS (sizeof mcmds / sizeof mcmds[0])

/* One command from the input: its first byte picks what. */
static void gen(struct in *in)
{
	unsigned op = byte(in) % 30;
	struct cmd *c;

	switch (op) {
	case 0: case 1: { /* SET k v [options] */
		unsigned o = byte(in);
		c = new_cmd("set");
		add_key(c, in);
		add_value(c, in);
		for (unsigned i = 0; i < o % 4; i++) {
			unsigned b = byte(in);
			const char *opt = PICK(set_opt, b);
			if (b % 23 == 22) {
				add_junk_token(c, in);
				continue;
			}
			adds(c, opt);
			if (c->argc >= MAX_ARGS - 2)
				break;
			/* EX/PX take a time, unless the option is last and
			 * the input says to leave it out. */
			if (strcasecmp(opt, "ex") == 0 && (b & 0x80 || i + 1 < o % 4))
				adds(c, PICK(ex_time, byte(in)));
			else if (strcasecmp(opt, "px") == 0 &&
				 (b & 0x80 || i + 1 < o % 4))
				adds(c, PICK(px_time, byte(in)));
		}
		break;
	}
	case 2: case 14: case 15: /* one key */
	case 16: case 17: case 18: case 19: case 20: case 21: {
		static const char *const one[] = {
			"get", "incr", "decr", "strlen", "getdel", "persist",
			"ttl", "type", "get",
		};
		c = new_cmd(one[op == 2 ? 0 : op - 13]);
		add_key(c, in);
		break;
	}
	case 3: case 4: case 5: { /* DEL, EXISTS, MGET with 1..3 keys */
		c = new_cmd(op == 3 ? "del" : op == 4 ? "exists" : "mget");
		unsigned n = 1 + byte(in) % 3;
		for (unsigned i = 0; i < n; i++)
			add_key(c, in);
		break;
	}
	case 6: case 7: /* INCRBY/DECRBY k n */
		c = new_cmd(op == 6 ? "incrby" : "decrby");
		add_key(c, in);
		adds(c, num_value[byte(in) % NNUM]);
		break;
	case 8: case 9: case 10: /* APPEND, SETNX, GETSET k v */
		c = new_cmd(op == 8 ? "append" : op == 9 ? "setnx" : "getset");
		add_key(c, in);
		add_value(c, in);
		break;
	case 11: { /* MSET k v... (sometimes one argument short) */
		unsigned b = byte(in), n = 1 + b % 3;
		c = new_cmd("mset");
		for (unsigned i = 0; i < n; i++) {
			add_key(c, in);
			if (i + 1 < n || b % 16 != 15)
				add_value(c, in);
		}
		break;
	}
	case 12: case 13: { /* EXPIRE/PEXPIRE k t [options] */
		unsigned b = byte(in);
		c = new_cmd(op == 12 ? "expire" : "pexpire");
		add_key(c, in);
		adds(c, op == 12 ? PICK(exp_s, byte(in)) : PICK(px_time, byte(in)));
		for (unsigned i = 0; i < b % 3; i++) {
			unsigned o = byte(in);
			if (o % 13 == 12)
				add_junk_token(c, in);
			else
				adds(c, PICK(expire_opt, o));
		}
		break;
	}
	case 22: { /* FLUSHALL [SYNC|ASYNC|junk] */
		static const char *const fl[] = { NULL, "SYNC", "async", "#" };
		unsigned b = byte(in) % 5;
		c = new_cmd("flushall");
		if (b < 4 && fl[b])
			adds(c, fl[b]);
		else if (b == 4) {
			adds(c, "sync");
			adds(c, "sync");
		}
		break;
	}
	case 23:
		new_cmd("dbsize");
		break;
	case 24: case 25:
		new_cmd("multi");
		break;
	case 26:
		new_cmd(byte(in) % 4 ? "exec" : "discard");
		break;
	case 27: { /* an unknown command: '#' and a few bytes */
		char name[8] = { '#' };
		size_t n = 1 + byte(in) % 7;
		unsigned nargs = byte(in) % 4;
		for (size_t i = 1; i < n; i++)
			name[i] = (char)byte(in);
		c = &cmds[ncmds++];
		c->argc = 0;
		add(c, name, n);
		for (unsigned i = 0; i < nargs; i++) {
			char arg[100];
			unsigned b = byte(in);
			size_t len = b >= 240 ? 60 + b % 40 : b % 9;
			for (size_t j = 0; j < len; j++)
				arg[j] = (char)(len > 8 ? 'A' + j % 26 : byte(in));
			add(c, arg, len);
		}
		break;
	}
	default: { /* a known command with a wrong argument count */
		const struct mcmd *k = &mcmds[byte(in) % NMCMDS];
		size_t argc;
		if (k->arity == -1)
			k = &mcmds[1];
		if (k->arity > 0)
			argc = byte(in) % 2 || k->arity == 1 ? (size_t)k->arity + 1
							   : (size_t)k->arity - 1;
		else
			argc = 1 + byte(in) % (size_t)(-k->arity - 1);
		c = new_cmd(k->name);
		while (c->argc < argc)
			add_key(c, in);
		break;
	}
	}
}

/* ---- the model: what Redis 7.0 answers ------------------------------------ */

/* A key: its value and whether (and how far ahead, in ms) it expires.  The
 * TTLs are relative to the moment they were set; every one is far longer
 * than an input takes, so none expires during a run. */
struct mkey {
	bool present;
	char *val;
	size_t len;
	long long ttl; /* 0: none */
};
static struct mkey model[NKEYS];
static bool in_multi, multi_failed, in_exec;
/* FUZZ_CMD_REDIS_PORT=P: talk to a redis-server on 127.0.0.1:P instead,
 * to check the model against Redis itself (then DBSIZE in EXEC counts in
 * place). */
static bool against_redis;
static size_t queued[MAX_CMDS], nqueued;

/* What the server's clock could read at the latest, for the overflow
 * checks of expiry times (the table's times are far from the limits). */
#define NOW_MS 2000000000000ll

/* Expected replies: RESP bytes, where byte 1 starts a pattern:
 * 1 'L' a literal byte 1; 1 'P' an integer reply > 0 (a TTL); 1 'B' :0 or
 * :1 (GT/LT between equal times); 1 'D' DBSIZE inside EXEC (filled in). */
static struct net_buf exp_buf = NET_BUF_INIT;
static void e_bytes(struct net_buf *e, const void *p, size_t n)
{
	const char *s = p;
	for (size_t i = 0; i < n; i++) {
		CHECK(net_buf_append(e, s + i, 1) == NET_RESP_OK);
		if (s[i] == 1)
			CHECK(net_buf_append(e, "L", 1) == NET_RESP_OK);
	}
}
static void e_str(struct net_buf *e, const char *s)
{
	e_bytes(e, s, strlen(s));
}
static void e_pat(struct net_buf *e, char code)
{
	char p[2] = { 1, code };
	CHECK(net_buf_append(e, p, 2) == NET_RESP_OK);
}
static void e_int(struct net_buf *e, long long v)
{
	char b[32];
	snprintf(b, sizeof b, ":%lld\r\n", v);
	e_str(e, b);
}
static void e_bulk(struct net_buf *e, const char *p, size_t n)
{
	char b[32];
	snprintf(b, sizeof b, "$%zu\r\n", n);
	e_str(e, b);
	e_bytes(e, p, n);
	e_str(e, "\r\n");
}
static void e_nil(struct net_buf *e)
{
	e_str(e, "$-1\r\n");
}
static void e_ok(struct net_buf *e)
{
	e_str(e, "+OK\r\n");
}
/* An error as Redis's addReplyErrorFormat sends it: CR and LF trimmed from
 * the ends, then those inside turned into spaces. */
static void e_err(struct net_buf *e, const char *msg)
{
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\r' || msg[n - 1] == '\n'))
		n--;
	e_str(e, "-");
	for (size_t i = 0; i < n; i++)
		e_bytes(e, msg[i] == '\r' || msg[i] == '\n' ? " " : msg + i, 1);
	e_str(e, "\r\n");
}
static void e_val(struct net_buf *e, const struct mkey *k)
{
	if (k->present)
		e_bulk(e, k->val, k->len);
	else
		e_nil(e);
}

static bool arg_is(const struct cmd *c, size_t i, const char *word)
{
	return c->len[i] == strlen(word) && strcasecmp(c->argv[i], word) == 0;
}

/* Redis's string2ll: optional '-', no '+', no leading zero or space, no
 * overflow; "-0" is refused. */
static bool str2ll(const char *s, size_t n, long long *out)
{
	unsigned long long v = 0;
	size_t i = 0;
	bool neg = false;

	if (n == 1 && s[0] == '0') {
		*out = 0;
		return true;
	}
	if (n > 0 && s[0] == '-') {
		neg = true;
		i++;
	}
	if (i >= n || s[i] < '1' || s[i] > '9')
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return false;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
							     : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return false;
		*out = (long long)v;
	}
	return true;
}

static struct mkey *mkey_of(const struct cmd *c, size_t i)
{
	for (size_t k = 0; k < NKEYS; k++)
		if (c->len[i] == key_len[k] &&
		    memcmp(c->argv[i], key_name[k], key_len[k]) == 0)
			return &model[k];
	CHECK(0); /* the generator names only these keys */
	return NULL;
}
static void m_del(struct mkey *k)
{
	free(k->val);
	memset(k, 0, sizeof *k);
}
static void m_put(struct mkey *k, const char *v, size_t n, long long ttl)
{
	char *copy = malloc(n ? n : 1);
	CHECK(copy != NULL);
	memcpy(copy, v, n);
	free(k->val);
	k->present = true;
	k->val = copy;
	k->len = n;
	k->ttl = ttl;
}

#define S_NX 1
#define S_XX 2
#define S_GET 4
#define S_KEEPTTL 8
#define S_EX 16
#define S_PX 32
static void m_set(const struct cmd *c, struct net_buf *e)
{
	unsigned fl = 0;
	size_t t = 0;
	long long ms = 0;
	struct mkey *k = mkey_of(c, 1);

	for (size_t j = 3; j < c->argc; j++) {
		bool next = j + 1 < c->argc;
		if (arg_is(c, j, "nx") && !(fl & S_XX))
			fl |= S_NX;
		else if (arg_is(c, j, "xx") && !(fl & S_NX))
			fl |= S_XX;
		else if (arg_is(c, j, "get"))
			fl |= S_GET;
		else if (arg_is(c, j, "keepttl") && !(fl & (S_EX | S_PX)))
			fl |= S_KEEPTTL;
		else if (arg_is(c, j, "ex") && !(fl & (S_KEEPTTL | S_PX)) && next)
			fl |= S_EX, t = ++j;
		else if (arg_is(c, j, "px") && !(fl & (S_KEEPTTL | S_EX)) && next)
			fl |= S_PX, t = ++j;
		else {
			e_err(e, "ERR syntax error");
			return;
		}
	}
	if (t) {
		if (!str2ll(c->argv[t], c->len[t], &ms)) {
			e_err(e, "ERR value is not an integer or out of range");
			return;
		}
		if (ms <= 0 || ((fl & S_EX) && ms > LLONG_MAX / 1000) ||
		    ((fl & S_EX) ? ms * 1000 : ms) > LLONG_MAX - NOW_MS) {
			e_err(e, "ERR invalid expire time in 'set' command");
			return;
		}
		if (fl & S_EX)
			ms *= 1000;
	}
	if (fl & S_GET)
		e_val(e, k);
	if (((fl & S_NX) && k->present) || ((fl & S_XX) && !k->present)) {
		if (!(fl & S_GET))
			e_nil(e);
		return;
	}
	m_put(k, c->argv[2], c->len[2],
	      t ? ms : (fl & S_KEEPTTL) && k->present ? k->ttl : 0);
	if (!(fl & S_GET))
		e_ok(e);
}

static void m_incr(const struct cmd *c, struct net_buf *e, long long by)
{
	struct mkey *k = mkey_of(c, 1);
	long long old = 0;
	char b[32];

	if (k->present && !str2ll(k->val, k->len, &old)) {
		e_err(e, "ERR value is not an integer or out of range");
		return;
	}
	if ((by < 0 && old < 0 && by < LLONG_MIN - old) ||
	    (by > 0 && old > 0 && by > LLONG_MAX - old)) {
		e_err(e, "ERR increment or decrement would overflow");
		return;
	}
	snprintf(b, sizeof b, "%lld", old + by);
	m_put(k, b, strlen(b), k->present ? k->ttl : 0);
	e_int(e, old + by);
}

static void m_expire(const struct cmd *c, struct net_buf *e, bool secs)
{
	bool nx = false, xx = false, gt = false, lt = false;
	struct mkey *k = mkey_of(c, 1);
	long long when;
	char msg[64];

	for (size_t j = 3; j < c->argc; j++) {
		if (arg_is(c, j, "nx"))
			nx = true;
		else if (arg_is(c, j, "xx"))
			xx = true;
		else if (arg_is(c, j, "gt"))
			gt = true;
		else if (arg_is(c, j, "lt"))
			lt = true;
		else {
			snprintf(msg, sizeof msg, "ERR Unsupported option %s",
				 c->argv[j]);
			e_err(e, msg);
			return;
		}
	}
	if (nx && (xx || gt || lt)) {
		e_err(e, "ERR NX and XX, GT or LT options at the same time "
		      "are not compatible");
		return;
	}
	if (gt && lt) {
		e_err(e, "ERR GT and LT options at the same time are not "
		      "compatible");
		return;
	}
	if (!str2ll(c->argv[2], c->len[2], &when)) {
		e_err(e, "ERR value is not an integer or out of range");
		return;
	}
	snprintf(msg, sizeof msg, "ERR invalid expire time in '%s' command",
		 secs ? "expire" : "pexpire");
	if (secs && (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)) {
		e_err(e, msg);
		return;
	}
	if (secs)
		when *= 1000;
	if (when > LLONG_MAX - NOW_MS) {
		e_err(e, msg);
		return;
	}
	if (!k->present || (nx && k->ttl) || (xx && !k->ttl) ||
	    (gt && (!k->ttl || when < k->ttl)) || (lt && k->ttl && when > k->ttl)) {
		e_int(e, 0);
		return;
	}
	if ((gt || lt) && k->ttl && when == k->ttl) {
		/* The same time set again: it depends on the clock's tick
		 * between the two; either way the key is as it was. */
		e_pat(e, 'B');
		return;
	}
	if (when <= 0)
		m_del(k);
	else
		k->ttl = when;
	e_int(e, 1);
}

static long long m_dbsize(void)
{
	long long n = 0;
	for (size_t i = 0; i < NKEYS; i++)
		n += model[i].present;
	return n;
}

static void m_unknown(const struct cmd *c, struct net_buf *e)
{
	char args[300], msg[600];
	size_t used = 0;

	args[0] = '\0';
	for (size_t i = 1; i < c->argc && used < 128; i++)
		used += (size_t)snprintf(args + used, sizeof args - used,
					 "'%.*s' ", 128 - (int)used, c->argv[i]);
	snprintf(msg, sizeof msg, "ERR unknown command '%.128s', with args "
		 "beginning with: %s", c->argv[0], args);
	e_err(e, msg);
}

static void m_exec(struct net_buf *e);

/* Run one command on the model, appending its expected reply to e. */
static void m_run(const struct cmd *c, struct net_buf *e)
{
	const char *n = NULL;
	for (size_t i = 0; i < NMCMDS; i++)
		if (arg_is(c, 0, mcmds[i].name))
			n = mcmds[i].name;
	if (strcmp(n, "set") == 0) {
		m_set(c, e);
	} else if (strcmp(n, "get") == 0) {
		e_val(e, mkey_of(c, 1));
	} else if (strcmp(n, "del") == 0 || strcmp(n, "exists") == 0) {
		long long count = 0;
		for (size_t i = 1; i < c->argc; i++) {
			struct mkey *k = mkey_of(c, i);
			count += k->present;
			if (n[0] == 'd')
				m_del(k);
		}
		e_int(e, count);
	} else if (strcmp(n, "incr") == 0 || strcmp(n, "decr") == 0) {
		m_incr(c, e, n[0] == 'i' ? 1 : -1);
	} else if (strcmp(n, "incrby") == 0 || strcmp(n, "decrby") == 0) {
		long long by;
		if (!str2ll(c->argv[2], c->len[2], &by))
			e_err(e, "ERR value is not an integer or out of range");
		else if (n[0] == 'd' && by == LLONG_MIN)
			e_err(e, "ERR decrement would overflow");
		else
			m_incr(c, e, n[0] == 'i' ? by : -by);
	} else if (strcmp(n, "append") == 0) {
		struct mkey *k = mkey_of(c, 1);
		size_t len = k->len + c->len[2];
		char *v = malloc(len ? len : 1);
		CHECK(v != NULL);
		if (k->present)
			memcpy(v, k->val, k->len);
		memcpy(v + (k->present ? k->len : 0), c->argv[2], c->len[2]);
		m_put(k, v, k->present ? len : c->len[2], k->present ? k->ttl : 0);
		free(v);
		e_int(e, (long long)k->len);
	} else if (strcmp(n, "strlen") == 0) {
		e_int(e, (long long)mkey_of(c, 1)->len);
	} else if (strcmp(n, "mset") == 0) {
		if (c->argc % 2 == 0) {
			e_err(e, "ERR wrong number of arguments for 'mset' command");
			return;
		}
		for (size_t i = 1; i < c->argc; i += 2)
			m_put(mkey_of(c, i), c->argv[i + 1], c->len[i + 1], 0);
		e_ok(e);
	} else if (strcmp(n, "mget") == 0) {
		char b[32];
		snprintf(b, sizeof b, "*%zu\r\n", c->argc - 1);
		e_str(e, b);
		for (size_t i = 1; i < c->argc; i++)
			e_val(e, mkey_of(c, i));
	} else if (strcmp(n, "setnx") == 0) {
		struct mkey *k = mkey_of(c, 1);
		e_int(e, !k->present);
		if (!k->present)
			m_put(k, c->argv[2], c->len[2], 0);
	} else if (strcmp(n, "getset") == 0) {
		struct mkey *k = mkey_of(c, 1);
		e_val(e, k);
		m_put(k, c->argv[2], c->len[2], 0);
	} else if (strcmp(n, "getdel") == 0) {
		struct mkey *k = mkey_of(c, 1);
		e_val(e, k);
		m_del(k);
	} else if (strcmp(n, "expire") == 0 || strcmp(n, "pexpire") == 0) {
		m_expire(c, e, n[0] == 'e');
	} else if (strcmp(n, "persist") == 0) {
		struct mkey *k = mkey_of(c, 1);
		e_int(e, k->present && k->ttl);
		k->ttl = 0;
	} else if (strcmp(n, "ttl") == 0) {
		struct mkey *k = mkey_of(c, 1);
		if (k->present && k->ttl)
			e_pat(e, 'P');
		else
			e_int(e, k->present ? -1 : -2);
	} else if (strcmp(n, "type") == 0) {
		e_str(e, mkey_of(c, 1)->present ? "+string\r\n" : "+none\r\n");
	} else if (strcmp(n, "flushall") == 0) {
		if (c->argc > 2 || (c->argc == 2 && !arg_is(c, 1, "sync") &&
				    !arg_is(c, 1, "async"))) {
			e_err(e, "ERR syntax error");
			return;
		}
		for (size_t i = 0; i < NKEYS; i++)
			m_del(&model[i]);
		e_ok(e);
	} else if (strcmp(n, "dbsize") == 0) {
		/* Inside EXEC kvs counts once the whole transaction is
		 * applied (docs/PROTOCOL.md, Transactions); Redis in place. */
		if (in_exec && !against_redis)
			e_pat(e, 'D');
		else
			e_int(e, m_dbsize());
	} else if (strcmp(n, "multi") == 0) {
		if (in_multi) {
			e_err(e, "ERR MULTI calls can not be nested");
			return;
		}
		in_multi = true;
		e_ok(e);
	} else if (strcmp(n, "discard") == 0) {
		if (!in_multi) {
			e_err(e, "ERR DISCARD without MULTI");
			return;
		}
		in_multi = multi_failed = false;
		nqueued = 0;
		e_ok(e);
	} else {
		CHECK(strcmp(n, "exec") == 0);
		m_exec(e);
	}
}

static void m_exec(struct net_buf *e)
{
	struct net_buf tmp = NET_BUF_INIT;
	char b[32];

	if (!in_multi) {
		e_err(e, "ERR EXEC without MULTI");
		return;
	}
	in_multi = false;
	if (multi_failed) {
		multi_failed = false;
		nqueued = 0;
		e_err(e, "EXECABORT Transaction discarded because of previous "
		      "errors.");
		return;
	}
	snprintf(b, sizeof b, "*%zu\r\n", nqueued);
	e_str(e, b);
	in_exec = true;
	for (size_t i = 0; i < nqueued; i++)
		m_run(&cmds[queued[i]], &tmp);
	in_exec = false;
	nqueued = 0;
	/* Copy the replies, DBSIZE's now that the count is final. */
	for (size_t i = 0; i < tmp.len; i++) {
		if (tmp.data[i] != 1) {
			CHECK(net_buf_append(e, tmp.data + i, 1) == NET_RESP_OK);
			continue;
		}
		char code = tmp.data[++i];
		if (code == 'D')
			e_int(e, m_dbsize());
		else
			e_pat(e, code);
	}
	net_buf_free(&tmp);
}

/* A command as the server takes it: looked up, its arity checked, queued
 * inside MULTI, else run. */
static void m_command(size_t idx, struct net_buf *e)
{
	const struct cmd *c = &cmds[idx];
	const struct mcmd *k = NULL;
	char msg[80];

	for (size_t i = 0; i < NMCMDS; i++)
		if (arg_is(c, 0, mcmds[i].name))
			k = &mcmds[i];
	if (!k) {
		m_unknown(c, e);
		multi_failed |= in_multi;
		return;
	}
	if ((k->arity > 0 && c->argc != (size_t)k->arity) ||
	    (k->arity < 0 && c->argc < (size_t)-k->arity)) {
		snprintf(msg, sizeof msg,
			 "wrong number of arguments for '%s' command", k->name);
		if (strcmp(k->name, "exec") == 0) {
			/* Redis's rejectCommand(): a refused EXEC discards the
			 * transaction, in MULTI or not. */
			e_str(e, "-EXECABORT Transaction discarded because of: ");
			e_str(e, msg);
			e_str(e, "\r\n");
			in_multi = multi_failed = false;
			nqueued = 0;
			return;
		}
		e_str(e, "-ERR ");
		e_str(e, msg);
		e_str(e, "\r\n");
		multi_failed |= in_multi;
		return;
	}
	if (in_multi && strcmp(k->name, "multi") != 0 &&
	    strcmp(k->name, "exec") != 0 && strcmp(k->name, "discard") != 0) {
		queued[nqueued++] = idx;
		e_str(e, "+QUEUED\r\n");
		return;
	}
	m_run(c, e);
}

/* ---- matching a reply against its expected pattern ----------------------- */

/* Does the reply a[0..an) match the pattern p[0..pn) exactly? */
static bool match(const char *p, size_t pn, const char *a, size_t an)
{
	size_t i = 0, j = 0;
	while (i < pn) {
		if (p[i] != 1) {
			if (j >= an || a[j] != p[i])
				return false;
			i++, j++;
			continue;
		}
		char code = p[i + 1];
		i += 2;
		if (code == 'L') {
			if (j >= an || a[j] != 1)
				return false;
			j++;
		} else if (code == 'B') {
			if (an - j < 4 || memcmp(a + j, ":0\r\n", 4) != 0) {
				if (an - j < 4 || memcmp(a + j, ":1\r\n", 4) != 0)
					return false;
			}
			j += 4;
		} else {
			CHECK(code == 'P');
			size_t k = j + 1;
			if (j >= an || a[j] != ':' || k >= an || a[k] < '1' ||
			    a[k] > '9')
				return false;
			while (k < an && a[k] >= '0' && a[k] <= '9')
				k++;
			if (an - k < 2 || a[k] != '\r' || a[k + 1] != '\n')
				return false;
			j = k + 2;
		}
	}
	return j == an;
}

static void show(const char *what, const char *p, size_t n)
{
	fprintf(stderr, "%s\"", what);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch >= 32 && ch < 127 && ch != '"' && ch != '\\')
			fputc(ch, stderr);
		else
			fprintf(stderr, "\\x%02x", ch);
	}
	fprintf(stderr, "\"%s", strcmp(what, " ") == 0 ? "" : "\n");
}

static void show_cmd(size_t i)
{
	fprintf(stderr, "command %zu:", i);
	for (size_t a = 0; a < cmds[i].argc; a++)
		show(" ", cmds[i].argv[a], cmds[i].len[a]);
	fprintf(stderr, "\n");
}

/* ---- the server ------------------------------------------------------------ */

static char dir[] = "/tmp/kvs-fuzz-cmd-XXXXXX";
static struct kvs *db;
static struct net_server *srv;
static int port;

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void stop_server(void)
{
	if (srv)
		net_server_stop(srv);
	if (db)
		kvs_close(db);
	srv = NULL;
	db = NULL;
	if (!against_redis)
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < NKEYS; i++)
		m_del(&model[i]);
	net_buf_free(&exp_buf);
}

/* One store and one server for the whole run, started here: each input
 * begins with FLUSHALL on a new connection, so inputs do not see each
 * other.  fsync never: nothing here is about durability. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct kvs_options opts;
	struct net_server_config cfg;

	(void)argc, (void)argv;
	signal(SIGPIPE, SIG_IGN);
	if (getenv("FUZZ_CMD_REDIS_PORT")) {
		port = atoi(getenv("FUZZ_CMD_REDIS_PORT"));
		against_redis = true;
		return 0;
	}
	CHECK(mkdtemp(dir) != NULL);
	memset(&opts, 0, sizeof opts);
	opts.engine = KVS_ENGINE_KVS;
	opts.fsync = KVS_FSYNC_NEVER;
	opts.segment_size = 1 << 20; /* compaction happens now and then */
	CHECK(kvs_open(dir, &opts, &db) == KVS_OK);
	memset(&cfg, 0, sizeof cfg);
	cfg.addr = "127.0.0.1:0";
	cfg.threads = 1;
	cfg.dir = dir;
	cfg.fsync_name = "never";
	CHECK(net_server_start(db, &cfg, &srv) == 0);
	port = net_server_port(srv);
	atexit(stop_server);
	return 0;
}

static int connect_server(void)
{
	struct sockaddr_in sa;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* An interrupted connect (libFuzzer's alarm) goes on: try again
	 * until it says it is connected. */
	while (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
	       errno != EISCONN)
		CHECK(errno == EINTR || errno == EALREADY);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

/* Send req, read replies until there are n; their ends go to ends[]. */
static void exchange(const struct net_buf *req, size_t n, struct net_buf *got,
		     size_t *ends)
{
	struct net_resp_reader rd;
	size_t sent = 0, parsed = 0, have = 0;
	int fd = connect_server();

	net_resp_reader_init(&rd);
	while (have < n) {
		struct pollfd pf = { fd, POLLIN | (sent < req->len ? POLLOUT : 0), 0 };
		int rc = poll(&pf, 1, 20000);
		/* libFuzzer's -timeout alarm (SIGALRM) interrupts the wait:
		 * that is no hang. */
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			fprintf(stderr, "fuzz_cmd: no reply within 20 s after %zu "
				"of %zu\n", have, n);
			if (have < n)
				show_cmd(have);
			/* A hang is the server's: show where its threads are
			 * and its first worker's mailbox, then ask it about
			 * its clients on another connection. */
			char gdb[320];
			snprintf(gdb, sizeof gdb, "gdb -p %d -batch -ex 'thread "
				 "apply all bt' -ex 'print srv->workers[0].nhand' "
				 "-ex 'print srv->workers[0].done_head' -ex 'print "
				 "srv->connected' -ex 'print srv->total_conns' 1>&2 "
				 "2>/dev/null", (int)getpid());
			if (!against_redis && system(gdb) != 0)
				fprintf(stderr, "fuzz_cmd: no gdb backtrace\n");
			if (!against_redis) {
				int fd2 = connect_server();
				char buf[16384];
				const char *ask = "CLIENT LIST\r\n";
				ssize_t r;
				CHECK(send(fd2, ask, strlen(ask), MSG_NOSIGNAL) > 0);
				sleep(1);
				r = recv(fd2, buf, sizeof buf - 1, MSG_DONTWAIT);
				buf[r > 0 ? r : 0] = '\0';
				fprintf(stderr, "fuzz_cmd: the server says:\n%s\n", buf);
				close(fd2);
			}
			abort();
		}
		if ((pf.revents & POLLOUT) && sent < req->len) {
			ssize_t w = send(fd, req->data + sent, req->len - sent,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			CHECK(w > 0 || errno == EAGAIN || errno == EINTR);
			if (w > 0)
				sent += (size_t)w;
		}
		if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
			CHECK(net_buf_reserve(got, 65536) == NET_RESP_OK);
			ssize_t r = recv(fd, got->data + got->len,
					 got->cap - got->len, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				fprintf(stderr, "fuzz_cmd: the server closed the "
					"connection after %zu of %zu replies\n",
					have, n);
				if (have < n)
					show_cmd(have);
				abort();
			}
			if (r > 0)
				got->len += (size_t)r;
		}
		while (got->len > parsed) {
			const struct net_resp_reply *r = NULL;
			size_t used = 0;
			int st = net_resp_read_reply(&rd, got->data + parsed,
						     got->len - parsed, &r, &used);
			if (st != NET_RESP_OK) {
				CHECK(st == NET_RESP_NEED_MORE);
				break;
			}
			parsed += used;
			CHECK(have < n);
			ends[have++] = parsed;
		}
	}
	/* A reset, not a FIN: no TIME_WAIT left behind per input. */
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
	net_resp_reader_free(&rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size, 0 };
	struct net_buf req = NET_BUF_INIT, got = NET_BUF_INIT;
	static size_t exp_end[MAX_CMDS], got_end[MAX_CMDS];

	arena_used = 0;
	ncmds = 0;
	name_case = byte(&in) % 3;
	new_cmd("flushall");
	while (in.i < in.n && ncmds < MAX_CMDS &&
	       arena_used + 8192 < sizeof arena)
		gen(&in);

	for (size_t i = 0; i < NKEYS; i++)
		m_del(&model[i]);
	in_multi = multi_failed = in_exec = false;
	nqueued = 0;
	exp_buf.len = 0;
	for (size_t i = 0; i < ncmds; i++) {
		CHECK(net_resp_put_command(&req, cmds[i].argc, cmds[i].argv,
					   cmds[i].len) == NET_RESP_OK);
		m_command(i, &exp_buf);
		exp_end[i] = exp_buf.len;
	}

	exchange(&req, ncmds, &got, got_end);
	if (getenv("FUZZ_CMD_TRACE"))
		for (size_t i = 0; i < ncmds; i++) {
			show_cmd(i);
			show("  -> ", got.data + (i ? got_end[i - 1] : 0),
			     got_end[i] - (i ? got_end[i - 1] : 0));
		}
	for (size_t i = 0; i < ncmds; i++) {
		size_t e0 = i ? exp_end[i - 1] : 0, g0 = i ? got_end[i - 1] : 0;
		if (!match(exp_buf.data + e0, exp_end[i] - e0, got.data + g0,
			   got_end[i] - g0)) {
			fprintf(stderr, "fuzz_cmd: reply %zu differs from Redis's\n", i);
			for (size_t j = 0; j <= i; j++)
				show_cmd(j);
			show("expected ", exp_buf.data + e0, exp_end[i] - e0);
			show("got      ", got.data + g0, got_end[i] - g0);
			abort();
		}
	}
	net_buf_free(&req);
	net_buf_free(&got);
	return 0;
}
