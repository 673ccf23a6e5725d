/* resp_parse.c - the RESP2 request parser (server side): multibulk and
 * inline requests, incrementally, in bounded memory.  Contracts in resp.h;
 * run by whichever thread owns the parser (a worker, for a connection). */
#include "resp.h"
#include "resp_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Argument slots allocated when a multibulk header arrives, whatever count
 * it claims; beyond that the arrays grow as the arguments arrive. */
#define ARGS_PREALLOC 1024
/* Bigger argument arrays are released before the next command, so one huge
 * request does not pin memory for a connection's life. */
#define ARGS_KEEP 1024

/* ---- the request parser ----------------------------------------------------- */

/*
 * States of the request parser.  Between commands it is in P_START with
 * pos == 0.  Every position is an offset from the first byte of the pending
 * command, which is buf[0] of each call, so the caller may move its buffer.
 */
enum {
	P_START,     /* nothing of the command seen yet */
	P_INLINE,    /* an inline line: scan is where the '\n' search resumes */
	P_MB_COUNT,  /* the "*<n>\r\n" line; its number starts at pos */
	P_BULK_LEN,  /* the "$<len>\r\n" line of argument argc, at pos */
	P_BULK_DATA, /* bulklen bytes and a CRLF at pos */
};
/* parse_one(): an empty command was skipped; p->pos is its length. */
#define SKIP 2

__attribute__((format(printf, 3, 4)))
static int parser_fail(struct net_resp_parser *p, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
	va_end(ap);
	p->error = rc;
	return rc;
}

void net_resp_parser_init(struct net_resp_parser *p)
{
	memset(p, 0, sizeof *p);
	p->state = P_START;
}

static void free_args(struct net_resp_parser *p)
{
	free(p->argoff);
	free(p->arglen);
	free(p->argv);
	p->argoff = NULL;
	p->arglen = NULL;
	p->argv = NULL;
	p->argcap = 0;
}

void net_resp_parser_free(struct net_resp_parser *p)
{
	free_args(p);
	free(p->scratch);
	net_resp_parser_init(p);
}

/* Make the argument arrays hold at least `want` slots.  They double, so
 * with the callers below their size follows the arguments that arrived. */
static int grow_args(struct net_resp_parser *p, size_t want)
{
	if (want <= p->argcap)
		return 0;
	size_t cap = p->argcap ? p->argcap : 8;
	while (cap < want)
		cap *= 2;
	/* Each array is replaced as soon as it is grown, so a failure part way
	 * leaves bigger arrays behind an unchanged argcap: still consistent. */
	size_t *off = realloc(p->argoff, cap * sizeof *off);
	if (!off)
		return -1;
	p->argoff = off;
	size_t *len = realloc(p->arglen, cap * sizeof *len);
	if (!len)
		return -1;
	p->arglen = len;
	const char **argv = realloc(p->argv, cap * sizeof *argv);
	if (!argv)
		return -1;
	p->argv = argv;
	p->argcap = cap;
	return 0;
}

static int is_sep(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Split an inline line s[0..n) into arguments, unquoted into p->scratch
 * (an argument is never longer than its text, so n bytes suffice).  The
 * quoting rules are those redis-cli and Redis's inline reader use; see
 * net_resp_parse() in resp.h.  Returns NET_RESP_OK, SKIP for a blank line,
 * or an error.
 */
static int split_inline(struct net_resp_parser *p, const char *s, size_t n)
{
	if (p->scratchcap < n || !p->scratch) {
		size_t cap = n < 256 ? 256 : n;
		char *sc = realloc(p->scratch, cap);
		if (!sc)
			return parser_fail(p, NET_RESP_ENOMEM, "out of memory");
		p->scratch = sc;
		p->scratchcap = cap;
	}
	char *out = p->scratch;
	size_t i = 0, o = 0;

	p->argc = 0;
	for (;;) {
		while (i < n && is_sep(s[i]))
			i++;
		if (i == n)
			break;
		if (grow_args(p, p->argc + 1) != 0)
			return parser_fail(p, NET_RESP_ENOMEM, "out of memory");
		size_t start = o;
		char quote = 0;
		while (i < n) {
			char c = s[i];
			if (quote == '"' && c == '\\' && i + 1 < n) {
				char e = s[i + 1];
				if (e == 'x' && i + 3 < n && hex_val(s[i + 2]) >= 0 &&
				    hex_val(s[i + 3]) >= 0) {
					out[o++] = (char)(hex_val(s[i + 2]) * 16 +
							  hex_val(s[i + 3]));
					i += 4;
					continue;
				}
				out[o++] = e == 'n' ? '\n' : e == 'r' ? '\r' :
					   e == 't' ? '\t' : e == 'b' ? '\b' :
					   e == 'a' ? '\a' : e;
				i += 2;
			} else if (quote == '\'' && c == '\\' && i + 1 < n &&
				   s[i + 1] == '\'') {
				out[o++] = '\'';
				i += 2;
			} else if (quote && c == quote) {
				/* The closing quote ends the argument. */
				i++;
				if (i < n && !is_sep(s[i]))
					goto unbalanced;
				quote = 0;
				break;
			} else if (!quote && (c == '"' || c == '\'')) {
				quote = c;
				i++;
			} else if (!quote && is_sep(c)) {
				break;
			} else {
				out[o++] = c;
				i++;
			}
		}
		if (quote)
			goto unbalanced;
		p->argoff[p->argc] = start;
		p->arglen[p->argc] = o - start;
		p->argc++;
	}
	return p->argc ? NET_RESP_OK : SKIP;
unbalanced:
	return parser_fail(p, NET_RESP_EPROTO,
			   "Protocol error: unbalanced quotes in request");
}

static int parse_inline(struct net_resp_parser *p, const char *buf, size_t len)
{
	const char *nl = NULL;

	if (p->scan < len)
		nl = memchr(buf + p->scan, '\n', len - p->scan);
	/* The limit counts the bytes before the '\n', so it is checked the
	 * same way whether or not the '\n' has arrived yet. */
	if (!nl) {
		if (len > NET_RESP_MAX_INLINE)
			goto too_big;
		p->scan = len;
		return NET_RESP_NEED_MORE;
	}
	size_t n = (size_t)(nl - buf);
	if (n > NET_RESP_MAX_INLINE)
		goto too_big;
	p->pos = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	return split_inline(p, buf, n);
too_big:
	return parser_fail(p, NET_RESP_EPROTO,
			   "Protocol error: too big inline request");
}

/* Parse (more of) the command at buf[0..len). */
static int parse_one(struct net_resp_parser *p, const char *buf, size_t len)
{
	long long v = 0;
	size_t end = 0;
	int rc;

	for (;;) {
		switch (p->state) {
		case P_START:
			if (len == 0)
				return NET_RESP_NEED_MORE;
			p->pos = 0;
			p->scan = 0;
			p->argc = 0;
			if (buf[0] == '*') {
				p->inline_cmd = 0;
				p->pos = 1;
				p->state = P_MB_COUNT;
			} else {
				p->inline_cmd = 1;
				p->state = P_INLINE;
			}
			break;
		case P_INLINE:
			return parse_inline(p, buf, len);
		case P_MB_COUNT:
			rc = net_resp_number_line(buf, len, p->pos, &p->scan, &v, &end);
			if (rc == NET_RESP_LINE_MORE)
				return NET_RESP_NEED_MORE;
			/* Redis ignores a count <= 0 (0, the null array -1,
			 * and any other negative number alike) and goes on
			 * with the next request; so do we. */
			if (rc == NET_RESP_LINE_BAD || v > NET_RESP_MAX_ARGS)
				return parser_fail(p, NET_RESP_EPROTO,
					"Protocol error: invalid multibulk length");
			p->pos = end;
			if (v <= 0)
				return SKIP;
			p->nargs = v;
			if (grow_args(p, v < ARGS_PREALLOC ? (size_t)v :
							    ARGS_PREALLOC) != 0)
				return parser_fail(p, NET_RESP_ENOMEM,
						   "out of memory");
			p->state = P_BULK_LEN;
			break;
		case P_BULK_LEN:
			if (p->pos >= len)
				return NET_RESP_NEED_MORE;
			if (buf[p->pos] != '$') {
				char got[8];
				net_resp_show_byte(got, sizeof got, buf[p->pos]);
				return parser_fail(p, NET_RESP_EPROTO,
					"Protocol error: expected '$', got '%s'",
					got);
			}
			rc = net_resp_number_line(buf, len, p->pos + 1, &p->scan, &v,
					 &end);
			if (rc == NET_RESP_LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == NET_RESP_LINE_BAD || v < 0 || v > NET_RESP_MAX_BULK)
				return parser_fail(p, NET_RESP_EPROTO,
					"Protocol error: invalid bulk length");
			p->bulklen = v;
			p->pos = end;
			p->state = P_BULK_DATA;
			break;
		case P_BULK_DATA: {
			size_t blen = (size_t)p->bulklen;
			size_t have = len - p->pos;
			/* A wrong byte where the CR belongs is refused as
			 * soon as it arrives. */
			if (have > blen && buf[p->pos + blen] != '\r')
				goto no_crlf;
			if (have < blen + 2)
				return NET_RESP_NEED_MORE;
			if (buf[p->pos + blen + 1] != '\n')
				goto no_crlf;
			if (grow_args(p, p->argc + 1) != 0)
				return parser_fail(p, NET_RESP_ENOMEM,
						   "out of memory");
			p->argoff[p->argc] = p->pos;
			p->arglen[p->argc] = blen;
			p->argc++;
			p->pos += blen + 2;
			if ((long long)p->argc == p->nargs)
				return NET_RESP_OK;
			p->state = P_BULK_LEN;
			break;
		}
		default:
			KVS_DIE("bad parser state", 0);
		}
	}
no_crlf:
	return parser_fail(p, NET_RESP_EPROTO,
			   "Protocol error: bulk string not terminated by CRLF");
}

int net_resp_parse(struct net_resp_parser *p, const char *buf, size_t len,
		   struct net_resp_cmd *cmd, size_t *consumed)
{
	size_t base = 0;

	*consumed = 0;
	if (p->error)
		return p->error;
	/* The caller keeps the pending command's bytes: fewer than last time
	 * would mean it dropped some, and every offset would be wrong. */
	KVS_ASSERT(len >= p->seen);
	if (len == 0)
		return NET_RESP_NEED_MORE; /* buf may be NULL */
	for (;;) {
		if (p->state == P_START && p->argcap > ARGS_KEEP)
			free_args(p);
		int rc = parse_one(p, buf + base, len - base);
		if (rc == SKIP) {
			base += p->pos;
			p->state = P_START;
			p->pos = 0;
			p->seen = 0;
			continue;
		}
		*consumed = base;
		if (rc == NET_RESP_NEED_MORE) {
			p->seen = len - base;
			return rc;
		}
		if (rc != NET_RESP_OK)
			return rc;
		const char *src = p->inline_cmd ? p->scratch : buf + base;
		for (size_t i = 0; i < p->argc; i++)
			p->argv[i] = src + p->argoff[i];
		cmd->argc = p->argc;
		cmd->argv = p->argv;
		cmd->argvlen = p->arglen;
		*consumed = base + p->pos;
		p->state = P_START;
		p->pos = 0;
		p->seen = 0;
		return NET_RESP_OK;
	}
}


/* A look ahead without a parser: it runs on the bytes after the command
 * just parsed, to decide whether the next one may join a write batch.  It
 * reads the lines by the parser's own rules (net_resp_number_line, the
 * limits, the CRLF after each bulk), so a command it calls complete is one
 * the parser accepts: a write it lets join a batch never turns out to be
 * a protocol error that would drop the batch. */
int net_resp_peek_command(const char *buf, size_t len, const char **name,
			  size_t *namelen)
{
	size_t scan = 0, end = 0;
	long long nargs = 0, v = 0;

	if (len == 0 || buf[0] != '*' ||
	    net_resp_number_line(buf, len, 1, &scan, &nargs, &end) !=
		    NET_RESP_LINE_OK ||
	    nargs < 1 || nargs > NET_RESP_MAX_ARGS)
		return 0;
	for (long long i = 0; i < nargs; i++) {
		size_t pos = end;

		scan = 0;
		if (pos >= len || buf[pos] != '$' ||
		    net_resp_number_line(buf, len, pos + 1, &scan, &v, &end) !=
			    NET_RESP_LINE_OK ||
		    v < 0 || v > NET_RESP_MAX_BULK ||
		    len - end < (size_t)v + 2 || buf[end + (size_t)v] != '\r' ||
		    buf[end + (size_t)v + 1] != '\n')
			return 0;
		if (i == 0) {
			*name = buf + end;
			*namelen = (size_t)v;
		}
		end += (size_t)v + 2;
	}
	return 1;
}

size_t net_resp_parser_hint(const struct net_resp_parser *p)
{
	return net_resp_bulk_hint(p->state == P_BULK_DATA, p->pos, p->bulklen, p->seen);
}

const char *net_resp_parser_errmsg(const struct net_resp_parser *p)
{
	return p->errmsg;
}

