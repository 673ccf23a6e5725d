/* resp.c - the RESP2 codec: byte buffers, the incremental request parser,
 * the reply encoder and the client-side reply reader.  The contracts are in
 * resp.h; this file says how the bounded-memory and no-rescan promises hold. */
#include "resp.h"

#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Characters of a length or integer line: a long long has at most 19 digits
 * and a sign.  A longer line cannot hold a valid number, so it is refused as
 * soon as it is seen, whatever else follows. */
#define NUM_MAX 20
/* Argument slots allocated when a multibulk header arrives, whatever count
 * it claims; beyond that the arrays grow as the arguments arrive. */
#define ARGS_PREALLOC 1024
/* Bigger argument or node arrays are released before the next command or
 * reply, so one huge request does not pin memory for a connection's life. */
#define ARGS_KEEP 1024
#define NODES_KEEP 4096
#define NODES_FIRST 16

/* ---- byte buffers ---------------------------------------------------------- */

void net_buf_free(struct net_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

int net_buf_reserve(struct net_buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return NET_RESP_OK;
	if (extra > SIZE_MAX - b->len)
		return NET_RESP_ENOMEM;
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *d = realloc(b->data, cap);
	if (!d)
		return NET_RESP_ENOMEM;
	b->data = d;
	b->cap = cap;
	return NET_RESP_OK;
}

int net_buf_append(struct net_buf *b, const void *p, size_t n)
{
	if (net_buf_reserve(b, n) != NET_RESP_OK)
		return NET_RESP_ENOMEM;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return NET_RESP_OK;
}

void net_buf_consume(struct net_buf *b, size_t n)
{
	assert(n <= b->len);
	if (n < b->len)
		memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* ---- numbers ---------------------------------------------------------------- */

/*
 * A decimal long long as Redis reads lengths: an optional '-', then "0" or
 * digits without a leading zero; no '+', no spaces, no "-0".
 * Returns 0, or -1 when s[0..n) is not such a number or overflows.
 */
static int parse_ll(const char *s, size_t n, long long *out)
{
	unsigned long long v = 0;
	size_t i = 0;
	int neg = 0;

	if (n == 0)
		return -1;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == n || s[i] < '0' || s[i] > '9')
		return -1;
	if (s[i] == '0') {
		if (neg || n != 1)
			return -1;
		*out = 0;
		return 0;
	}
	for (; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (s[i] < '0' || s[i] > '9' || v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return -1;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN :
							       -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return -1;
		*out = (long long)v;
	}
	return 0;
}

/* Decimal digits of u into out (room for 20); returns how many. */
static size_t fmt_u(char *out, unsigned long long u)
{
	char tmp[24];
	size_t n = 0, k = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		out[k++] = tmp[--n];
	return k;
}

/* "<type>[-]<digits>\r\n" into h (room for 24); returns its length. */
static size_t fmt_header(char *h, char type, long long v)
{
	size_t n = 0;
	h[n++] = type;
	if (v < 0) {
		h[n++] = '-';
		n += fmt_u(h + n, 0ull - (unsigned long long)v);
	} else {
		n += fmt_u(h + n, (unsigned long long)v);
	}
	h[n++] = '\r';
	h[n++] = '\n';
	return n;
}

enum { LINE_OK, LINE_MORE, LINE_BAD };

/*
 * The number of a "<number>\r\n" line whose first character is buf[start].
 * *scan is where checking resumes (bytes before it passed already), so a
 * line split across reads is looked at once.  A byte that cannot be part of
 * a number, more than NUM_MAX characters, or a '\r' without '\n' makes the
 * line bad as soon as it arrives: a client that ends lines with a bare '\n'
 * gets an error at once instead of a server waiting for more.
 * LINE_OK: *val and *end (the offset after the '\n') are set.
 */
static int number_line(const char *buf, size_t len, size_t start,
		       size_t *scan, long long *val, size_t *end)
{
	size_t i = *scan > start ? *scan : start;

	for (; i < len && buf[i] != '\r'; i++) {
		char c = buf[i];
		if ((c < '0' || c > '9') && c != '-')
			return LINE_BAD;
		if (i - start >= NUM_MAX)
			return LINE_BAD;
	}
	if (i + 1 >= len) {
		*scan = i;
		return LINE_MORE;
	}
	if (buf[i + 1] != '\n' || parse_ll(buf + start, i - start, val) != 0)
		return LINE_BAD;
	*end = i + 2;
	return LINE_OK;
}

/* A byte for an error message: itself if printable, else \xHH. */
static void show_byte(char *out, size_t size, char c)
{
	unsigned char u = (unsigned char)c;
	if (u >= 0x20 && u < 0x7f && u != '\\')
		snprintf(out, size, "%c", u);
	else
		snprintf(out, size, "\\x%02x", u);
}

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
			rc = number_line(buf, len, p->pos, &p->scan, &v, &end);
			if (rc == LINE_MORE)
				return NET_RESP_NEED_MORE;
			/* Redis ignores a count <= 0 (0, the null array -1,
			 * and any other negative number alike) and goes on
			 * with the next request; so do we. */
			if (rc == LINE_BAD || v > NET_RESP_MAX_ARGS)
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
				show_byte(got, sizeof got, buf[p->pos]);
				return parser_fail(p, NET_RESP_EPROTO,
					"Protocol error: expected '$', got '%s'",
					got);
			}
			rc = number_line(buf, len, p->pos + 1, &p->scan, &v,
					 &end);
			if (rc == LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == LINE_BAD || v < 0 || v > NET_RESP_MAX_BULK)
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
			assert(0 && "bad parser state");
			return parser_fail(p, NET_RESP_EPROTO, "internal error");
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
	assert(len >= p->seen);
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

static size_t bulk_hint(int in_bulk, size_t pos, long long bulklen,
			size_t seen)
{
	if (!in_bulk)
		return 0;
	size_t need = pos + (size_t)bulklen + 2;
	if (need <= seen)
		return 0;
	need -= seen;
	return need < NET_RESP_PREALLOC_MAX ? need : NET_RESP_PREALLOC_MAX;
}

size_t net_resp_parser_hint(const struct net_resp_parser *p)
{
	return bulk_hint(p->state == P_BULK_DATA, p->pos, p->bulklen, p->seen);
}

const char *net_resp_parser_errmsg(const struct net_resp_parser *p)
{
	return p->errmsg;
}

/* ---- the reply encoder ------------------------------------------------------ */

/* "<type>s\r\n", with CR and LF in s sent as spaces. */
static int put_line(struct net_buf *b, char type, const char *s)
{
	size_t n = strlen(s);
	if (n > SIZE_MAX - 3 || net_buf_reserve(b, n + 3) != NET_RESP_OK)
		return NET_RESP_ENOMEM;
	char *d = b->data + b->len;
	d[0] = type;
	for (size_t i = 0; i < n; i++)
		d[1 + i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
	d[n + 1] = '\r';
	d[n + 2] = '\n';
	b->len += n + 3;
	return NET_RESP_OK;
}

int net_resp_put_simple(struct net_buf *b, const char *s)
{
	return put_line(b, '+', s);
}

int net_resp_put_error(struct net_buf *b, const char *msg)
{
	return put_line(b, '-', msg);
}

int net_resp_put_errorf(struct net_buf *b, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return put_line(b, '-', msg);
}

int net_resp_put_int(struct net_buf *b, long long v)
{
	char h[32];
	return net_buf_append(b, h, fmt_header(h, ':', v));
}

/* "$n\r\n" into h (room for 24); returns its length. */
static size_t fmt_bulk_header(char *h, size_t n)
{
	size_t k = 0;
	h[k++] = '$';
	k += fmt_u(h + k, n);
	h[k++] = '\r';
	h[k++] = '\n';
	return k;
}

int net_resp_put_bulk(struct net_buf *b, const void *p, size_t n)
{
	char h[32];
	size_t hn = fmt_bulk_header(h, n);
	if (n > SIZE_MAX - hn - 2 || net_buf_reserve(b, hn + n + 2) != NET_RESP_OK)
		return NET_RESP_ENOMEM;
	char *d = b->data + b->len;
	memcpy(d, h, hn);
	if (n > 0)
		memcpy(d + hn, p, n);
	d[hn + n] = '\r';
	d[hn + n + 1] = '\n';
	b->len += hn + n + 2;
	return NET_RESP_OK;
}

int net_resp_put_null(struct net_buf *b)
{
	return net_buf_append(b, "$-1\r\n", 5);
}

int net_resp_put_array(struct net_buf *b, size_t n)
{
	char h[32];
	size_t k = 0;
	h[k++] = '*';
	k += fmt_u(h + k, n);
	h[k++] = '\r';
	h[k++] = '\n';
	return net_buf_append(b, h, k);
}

int net_resp_put_null_array(struct net_buf *b)
{
	return net_buf_append(b, "*-1\r\n", 5);
}

int net_resp_put_command(struct net_buf *b, size_t argc,
			 const char *const *argv, const size_t *argvlen)
{
	/* Reserve the whole request first, so a failure leaves b unchanged. */
	size_t total = 24;
	for (size_t i = 0; i < argc; i++) {
		if (argvlen[i] > SIZE_MAX - total - 26)
			return NET_RESP_ENOMEM;
		total += argvlen[i] + 26;
	}
	if (net_buf_reserve(b, total) != NET_RESP_OK)
		return NET_RESP_ENOMEM;
	net_resp_put_array(b, argc);
	for (size_t i = 0; i < argc; i++)
		net_resp_put_bulk(b, argv[i], argvlen[i]);
	return NET_RESP_OK;
}

/* ---- the reply reader ------------------------------------------------------- */

/*
 * States of the reply reader.  Between replies it is in R_TYPE with
 * pos == 0 and no nodes.  Nodes are added in pre-order as their headers are
 * read; the open arrays are on r->stack with the count of elements still to
 * come.  String nodes record offsets, turned into pointers once the whole
 * reply is there (the caller may move its buffer between calls).
 */
enum {
	R_TYPE,      /* the type byte at pos */
	R_SIMPLE,    /* the rest of a '+' line */
	R_ERROR,     /* the rest of a '-' line */
	R_INTEGER,   /* the number of a ':' line */
	R_BULK_LEN,  /* the number of a '$' line */
	R_BULK_DATA, /* bulklen bytes and a CRLF at pos */
	R_ARRAY_LEN, /* the number of a '*' line */
};

__attribute__((format(printf, 3, 4)))
static int reader_fail(struct net_resp_reader *r, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
	va_end(ap);
	r->error = rc;
	return rc;
}

void net_resp_reader_init(struct net_resp_reader *r)
{
	memset(r, 0, sizeof *r);
	r->state = R_TYPE;
}

void net_resp_reader_free(struct net_resp_reader *r)
{
	free(r->nodes);
	free(r->offs);
	net_resp_reader_init(r);
}

/* Append a node; returns it, or NULL when out of memory.  Nodes are added
 * only for headers that arrived (at least 3 bytes each), so the arrays
 * stay within a small multiple of the reply's size. */
static struct net_resp_reply *add_node(struct net_resp_reader *r,
				       enum net_resp_type type, size_t off)
{
	if (r->nnodes == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : NODES_FIRST;
		struct net_resp_reply *nodes = realloc(r->nodes,
						       cap * sizeof *nodes);
		if (!nodes)
			return NULL;
		r->nodes = nodes;
		size_t *offs = realloc(r->offs, cap * sizeof *offs);
		if (!offs)
			return NULL;
		r->offs = offs;
		r->cap = cap;
	}
	struct net_resp_reply *n = &r->nodes[r->nnodes];
	memset(n, 0, sizeof *n);
	n->type = type;
	n->span = 1;
	r->offs[r->nnodes] = off;
	r->nnodes++;
	return n;
}

/* The last node is complete (a scalar, or an array whose last element just
 * completed): tick off the open arrays it completes.  1 when the whole
 * reply is done. */
static int node_done(struct net_resp_reader *r)
{
	while (r->depth > 0) {
		struct net_resp_frame *f = &r->stack[r->depth - 1];
		if (--f->left > 0)
			return 0;
		r->nodes[f->node].span = r->nnodes - f->node;
		r->depth--;
	}
	return 1;
}

/* Parse (more of) the reply at buf[0..len). */
static int read_one(struct net_resp_reader *r, const char *buf, size_t len)
{
	struct net_resp_reply *n;
	long long v = 0;
	size_t end = 0;
	int rc;

	for (;;) {
		switch (r->state) {
		case R_TYPE: {
			if (r->pos >= len)
				return NET_RESP_NEED_MORE;
			char c = buf[r->pos];
			switch (c) {
			case '+': r->state = R_SIMPLE; break;
			case '-': r->state = R_ERROR; break;
			case ':': r->state = R_INTEGER; break;
			case '$': r->state = R_BULK_LEN; break;
			case '*': r->state = R_ARRAY_LEN; break;
			default: {
				char got[8];
				show_byte(got, sizeof got, c);
				return reader_fail(r, NET_RESP_EPROTO,
					"Protocol error: unexpected reply type byte '%s'",
					got);
			}
			}
			r->pos++;
			r->scan = r->pos;
			continue;
		}
		case R_SIMPLE:
		case R_ERROR: {
			/* The text may be up to NET_RESP_MAX_LINE bytes, so the
			 * '\r' is looked for no further than that. */
			size_t lim = r->pos + NET_RESP_MAX_LINE + 1;
			size_t stop = len < lim ? len : lim;
			const char *cr = NULL;
			if (r->scan < stop)
				cr = memchr(buf + r->scan, '\r', stop - r->scan);
			if (!cr) {
				if (len >= lim)
					return reader_fail(r, NET_RESP_EPROTO,
						"Protocol error: line too long");
				r->scan = len;
				return NET_RESP_NEED_MORE;
			}
			size_t j = (size_t)(cr - buf);
			if (j + 1 >= len) {
				r->scan = j;
				return NET_RESP_NEED_MORE;
			}
			if (buf[j + 1] != '\n')
				return reader_fail(r, NET_RESP_EPROTO,
						   "Protocol error: expected CRLF");
			n = add_node(r, r->state == R_SIMPLE ? NET_RESP_T_SIMPLE :
							       NET_RESP_T_ERROR,
				     r->pos);
			if (!n)
				goto nomem;
			n->len = j - r->pos;
			r->pos = j + 2;
			break;
		}
		case R_INTEGER:
			rc = number_line(buf, len, r->pos, &r->scan, &v, &end);
			if (rc == LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == LINE_BAD)
				return reader_fail(r, NET_RESP_EPROTO,
						   "Protocol error: invalid integer");
			n = add_node(r, NET_RESP_T_INTEGER, 0);
			if (!n)
				goto nomem;
			n->integer = v;
			r->pos = end;
			break;
		case R_BULK_LEN:
			rc = number_line(buf, len, r->pos, &r->scan, &v, &end);
			if (rc == LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == LINE_BAD || v < -1 || v > NET_RESP_MAX_BULK)
				return reader_fail(r, NET_RESP_EPROTO,
						   "Protocol error: invalid bulk length");
			r->pos = end;
			if (v == -1) {
				if (!add_node(r, NET_RESP_T_NULL, 0))
					goto nomem;
				break;
			}
			r->bulklen = v;
			r->state = R_BULK_DATA;
			continue;
		case R_BULK_DATA: {
			size_t blen = (size_t)r->bulklen;
			size_t have = len - r->pos;
			if (have > blen && buf[r->pos + blen] != '\r')
				goto no_crlf;
			if (have < blen + 2)
				return NET_RESP_NEED_MORE;
			if (buf[r->pos + blen + 1] != '\n')
				goto no_crlf;
			n = add_node(r, NET_RESP_T_BULK, r->pos);
			if (!n)
				goto nomem;
			n->len = blen;
			r->pos += blen + 2;
			break;
		}
		case R_ARRAY_LEN:
			rc = number_line(buf, len, r->pos, &r->scan, &v, &end);
			if (rc == LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == LINE_BAD || v < -1 ||
			    v > NET_RESP_MAX_REPLY_ELEMS)
				return reader_fail(r, NET_RESP_EPROTO,
						   "Protocol error: invalid multibulk length");
			r->pos = end;
			if (v > 0 && r->depth == NET_RESP_MAX_DEPTH)
				return reader_fail(r, NET_RESP_EPROTO,
						   "Protocol error: reply nested too deeply");
			n = add_node(r, v < 0 ? NET_RESP_T_NULL_ARRAY :
						NET_RESP_T_ARRAY, 0);
			if (!n)
				goto nomem;
			if (v > 0) {
				/* Only the count is kept: no element is
				 * allocated before it arrives. */
				n->nelem = (size_t)v;
				r->stack[r->depth].node = r->nnodes - 1;
				r->stack[r->depth].left = (size_t)v;
				r->depth++;
				r->state = R_TYPE;
				r->scan = r->pos;
				continue;
			}
			break;
		default:
			assert(0 && "bad reader state");
			return reader_fail(r, NET_RESP_EPROTO, "internal error");
		}
		/* A node is complete. */
		r->state = R_TYPE;
		r->scan = r->pos;
		if (node_done(r))
			return NET_RESP_OK;
	}
no_crlf:
	return reader_fail(r, NET_RESP_EPROTO,
			   "Protocol error: bulk string not terminated by CRLF");
nomem:
	return reader_fail(r, NET_RESP_ENOMEM, "out of memory");
}

int net_resp_read_reply(struct net_resp_reader *r, const char *buf,
			size_t len, const struct net_resp_reply **out,
			size_t *consumed)
{
	*consumed = 0;
	if (r->error)
		return r->error;
	assert(len >= r->seen);
	if (len == 0)
		return NET_RESP_NEED_MORE; /* buf may be NULL */
	if (r->state == R_TYPE && r->pos == 0 && r->nnodes == 0 &&
	    r->cap > NODES_KEEP) {
		free(r->nodes);
		free(r->offs);
		r->nodes = NULL;
		r->offs = NULL;
		r->cap = 0;
	}
	int rc = read_one(r, buf, len);
	if (rc == NET_RESP_NEED_MORE)
		r->seen = len;
	if (rc != NET_RESP_OK)
		return rc;
	for (size_t i = 0; i < r->nnodes; i++) {
		struct net_resp_reply *n = &r->nodes[i];
		if (n->type == NET_RESP_T_SIMPLE || n->type == NET_RESP_T_ERROR ||
		    n->type == NET_RESP_T_BULK)
			n->str = buf + r->offs[i];
	}
	*out = r->nodes;
	*consumed = r->pos;
	r->pos = 0;
	r->scan = 0;
	r->seen = 0;
	r->nnodes = 0;
	return NET_RESP_OK;
}

size_t net_resp_reader_hint(const struct net_resp_reader *r)
{
	return bulk_hint(r->state == R_BULK_DATA, r->pos, r->bulklen, r->seen);
}

const char *net_resp_reader_errmsg(const struct net_resp_reader *r)
{
	return r->errmsg;
}
