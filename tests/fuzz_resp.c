/* fuzz_resp.c - libFuzzer harness for the RESP2 codec (net/resp.h): the
 * request parser and the reply reader over arbitrary bytes, fed whole and in
 * pieces (same outcome required), plus encode/parse round trips; and the
 * look ahead (net_resp_peek_command) against the parser. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one pass over the input produced: a hash of every command or reply
 * in order, their count, and how it ended. */
struct run {
	uint64_t hash;
	size_t count;
	int last;
	char err[64];
};

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_resp.c:%d: check failed: %s\n", \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

static void hash_bytes(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= s[i];
		*h *= 1099511628211ull; /* FNV-1a */
	}
}

static void hash_u64(uint64_t *h, uint64_t v)
{
	hash_bytes(h, &v, sizeof v);
}

/* A private heap copy of the pending bytes for each call, so a parser that
 * kept a pointer into an older buffer reads freed memory (ASan). */
static char *dup_bytes(const char *p, size_t n)
{
	char *c = malloc(n ? n : 1);
	CHECK(c != NULL);
	if (n)
		memcpy(c, p, n);
	return c;
}

static void hash_cmd(uint64_t *h, const struct net_resp_cmd *cmd)
{
	hash_u64(h, cmd->argc);
	for (size_t i = 0; i < cmd->argc; i++) {
		hash_u64(h, cmd->argvlen[i]);
		hash_bytes(h, cmd->argv[i], cmd->argvlen[i]);
	}
}

/* A parsed command, encoded as a client would and parsed again, is itself. */
static void cmd_round_trip(const struct net_resp_cmd *cmd)
{
	struct net_buf b = NET_BUF_INIT;
	struct net_resp_parser p;
	struct net_resp_cmd again;
	size_t used = 0;
	uint64_t h1 = 14695981039346656037ull, h2 = h1;

	net_resp_parser_init(&p);
	CHECK(net_resp_put_command(&b, cmd->argc, cmd->argv, cmd->argvlen) ==
	      NET_RESP_OK);
	CHECK(net_resp_parse(&p, b.data, b.len, &again, &used) == NET_RESP_OK);
	CHECK(used == b.len);
	hash_cmd(&h1, cmd);
	hash_cmd(&h2, &again);
	CHECK(h1 == h2);
	net_resp_parser_free(&p);
	net_buf_free(&b);
}

static void run_requests(const char *in, size_t len, size_t chunk,
			 struct run *out, int round_trip)
{
	struct net_resp_parser p;
	struct net_buf pending = NET_BUF_INIT;
	size_t fed = 0;

	memset(out, 0, sizeof *out);
	out->hash = 14695981039346656037ull;
	out->last = NET_RESP_NEED_MORE;
	net_resp_parser_init(&p);
	while (fed < len && out->last >= 0) {
		size_t n = len - fed < chunk ? len - fed : chunk;
		CHECK(net_buf_append(&pending, in + fed, n) == NET_RESP_OK);
		fed += n;
		for (;;) {
			char *copy = dup_bytes(pending.data, pending.len);
			struct net_resp_cmd cmd;
			size_t used = SIZE_MAX;
			const char *name = NULL;
			size_t namelen = 0;
			/* What the look ahead calls complete, the parser
			 * accepts, with the same name. */
			int peeked = net_resp_peek_command(copy, pending.len,
							   &name, &namelen);
			int rc = net_resp_parse(&p, copy, pending.len, &cmd,
						&used);
			CHECK(used <= pending.len);
			if (peeked)
				CHECK(rc == NET_RESP_OK && cmd.argv[0] == name &&
				      cmd.argvlen[0] == namelen);
			out->last = rc;
			if (rc == NET_RESP_OK) {
				CHECK(used > 0 && cmd.argc >= 1);
				out->count++;
				hash_cmd(&out->hash, &cmd);
				if (round_trip)
					cmd_round_trip(&cmd);
			} else if (rc == NET_RESP_NEED_MORE) {
				CHECK(net_resp_parser_hint(&p) <=
				      NET_RESP_PREALLOC_MAX);
			} else {
				CHECK(rc == NET_RESP_EPROTO);
				snprintf(out->err, sizeof out->err, "%s",
					 net_resp_parser_errmsg(&p));
				CHECK(strncmp(out->err, "Protocol error: ", 16) == 0);
			}
			free(copy);
			net_buf_consume(&pending, used);
			if (rc != NET_RESP_OK)
				break;
		}
	}
	net_buf_free(&pending);
	net_resp_parser_free(&p);
}

/* Hash the subtree at r, checking its spans; returns its node count. */
static size_t hash_reply(uint64_t *h, const struct net_resp_reply *r)
{
	hash_u64(h, (uint64_t)r->type);
	switch (r->type) {
	case NET_RESP_T_SIMPLE:
	case NET_RESP_T_ERROR:
	case NET_RESP_T_BULK:
		hash_u64(h, r->len);
		hash_bytes(h, r->str, r->len);
		break;
	case NET_RESP_T_INTEGER:
		hash_u64(h, (uint64_t)r->integer);
		break;
	case NET_RESP_T_ARRAY: {
		size_t nodes = 1;
		const struct net_resp_reply *e = r + 1;
		hash_u64(h, r->nelem);
		for (size_t i = 0; i < r->nelem; i++) {
			nodes += hash_reply(h, e);
			e = net_resp_reply_next(e);
		}
		CHECK(nodes == r->span);
		return nodes;
	}
	default:
		break;
	}
	return 1;
}

/* Encode a parsed reply again with the encoder.  Returns 0 if it holds a
 * simple string or error the encoder would change (NUL, LF). */
static int encode_reply(struct net_buf *b, const struct net_resp_reply *r)
{
	switch (r->type) {
	case NET_RESP_T_SIMPLE:
	case NET_RESP_T_ERROR: {
		if (memchr(r->str, '\0', r->len) || memchr(r->str, '\n', r->len))
			return 0;
		char *line = malloc(r->len + 1);
		CHECK(line != NULL);
		memcpy(line, r->str, r->len);
		line[r->len] = '\0';
		CHECK((r->type == NET_RESP_T_SIMPLE ? net_resp_put_simple(b, line) :
			net_resp_put_error(b, line)) == NET_RESP_OK);
		free(line);
		return 1;
	}
	case NET_RESP_T_INTEGER:
		CHECK(net_resp_put_int(b, r->integer) == NET_RESP_OK);
		return 1;
	case NET_RESP_T_BULK:
		CHECK(net_resp_put_bulk(b, r->str, r->len) == NET_RESP_OK);
		return 1;
	case NET_RESP_T_NULL:
		CHECK(net_resp_put_null(b) == NET_RESP_OK);
		return 1;
	case NET_RESP_T_NULL_ARRAY:
		CHECK(net_resp_put_null_array(b) == NET_RESP_OK);
		return 1;
	case NET_RESP_T_ARRAY: {
		const struct net_resp_reply *e = r + 1;
		CHECK(net_resp_put_array(b, r->nelem) == NET_RESP_OK);
		for (size_t i = 0; i < r->nelem; i++) {
			if (!encode_reply(b, e))
				return 0;
			e = net_resp_reply_next(e);
		}
		return 1;
	}
	}
	CHECK(0);
	return 0;
}

static void reply_round_trip(const struct net_resp_reply *r)
{
	struct net_buf b = NET_BUF_INIT;
	struct net_resp_reader rd;
	const struct net_resp_reply *again = NULL;
	size_t used = 0;
	uint64_t h1 = 14695981039346656037ull, h2 = h1;

	net_resp_reader_init(&rd);
	if (encode_reply(&b, r)) {
		CHECK(net_resp_read_reply(&rd, b.data, b.len, &again, &used) ==
		      NET_RESP_OK);
		CHECK(used == b.len);
		hash_reply(&h1, r);
		hash_reply(&h2, again);
		CHECK(h1 == h2);
	}
	net_resp_reader_free(&rd);
	net_buf_free(&b);
}

static void run_replies(const char *in, size_t len, size_t chunk,
			struct run *out, int round_trip)
{
	struct net_resp_reader r;
	struct net_buf pending = NET_BUF_INIT;
	size_t fed = 0;

	memset(out, 0, sizeof *out);
	out->hash = 14695981039346656037ull;
	out->last = NET_RESP_NEED_MORE;
	net_resp_reader_init(&r);
	while (fed < len && out->last >= 0) {
		size_t n = len - fed < chunk ? len - fed : chunk;
		CHECK(net_buf_append(&pending, in + fed, n) == NET_RESP_OK);
		fed += n;
		for (;;) {
			char *copy = dup_bytes(pending.data, pending.len);
			const struct net_resp_reply *rep = NULL;
			size_t used = SIZE_MAX;
			int rc = net_resp_read_reply(&r, copy, pending.len, &rep,
						     &used);
			CHECK(used <= pending.len);
			out->last = rc;
			if (rc == NET_RESP_OK) {
				CHECK(used > 0 && rep != NULL);
				out->count++;
				hash_reply(&out->hash, rep);
				if (round_trip)
					reply_round_trip(rep);
			} else {
				CHECK(used == 0);
				if (rc == NET_RESP_NEED_MORE) {
					CHECK(net_resp_reader_hint(&r) <=
					      NET_RESP_PREALLOC_MAX);
				} else {
					CHECK(rc == NET_RESP_EPROTO);
					snprintf(out->err, sizeof out->err, "%s",
						 net_resp_reader_errmsg(&r));
				}
			}
			free(copy);
			net_buf_consume(&pending, used);
			if (rc != NET_RESP_OK)
				break;
		}
	}
	net_buf_free(&pending);
	net_resp_reader_free(&r);
}

static void same(const struct run *a, const struct run *b)
{
	CHECK(a->count == b->count);
	CHECK(a->hash == b->hash);
	CHECK(a->last == b->last);
	CHECK(strcmp(a->err, b->err) == 0);
}

/* The first byte picks the size of the pieces (1..16); the rest is the
 * stream, parsed once whole and once in pieces. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole, split;

	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] % 16) + 1;
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	size_t all = len ? len : 1;

	run_requests(in, len, all, &whole, 1);
	run_requests(in, len, chunk, &split, 0);
	same(&whole, &split);

	run_replies(in, len, all, &whole, 1);
	run_replies(in, len, chunk, &split, 0);
	same(&whole, &split);
	return 0;
}
