/* resp.c - the RESP2 codec's byte buffers and reply encoder, and the few
 * helpers the request parser (resp_parse.c) and the reply reader
 * (resp_reader.c) share.  Contracts in resp.h; no state, any thread. */
#include "resp.h"
#include "resp_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

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
	KVS_ASSERT(n <= b->len);
	if (n < b->len)
		memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

/* ---- numbers and shared helpers ------------------------------------------- */

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

/* A byte for an error message: itself if printable, else \xHH. */
void net_resp_show_byte(char *out, size_t size, char c)
{
	unsigned char u = (unsigned char)c;
	if (u >= 0x20 && u < 0x7f && u != '\\')
		snprintf(out, size, "%c", u);
	else
		snprintf(out, size, "\\x%02x", u);
}

size_t net_resp_bulk_hint(int in_bulk, size_t pos, long long bulklen,
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

