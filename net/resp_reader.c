/* resp_reader.c - the RESP2 reply reader (client side: kvs-client,
 * kvs-bench, the tests): one complete reply of any type, incrementally.
 * Contracts in resp.h; run by whichever thread owns the reader. */
#include "resp.h"
#include "resp_int.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Bigger node arrays are released before the next reply, so one huge reply
 * does not pin memory for a connection's life. */
#define NODES_KEEP 4096
#define NODES_FIRST 16

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
				net_resp_show_byte(got, sizeof got, c);
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
			rc = net_resp_number_line(buf, len, r->pos, &r->scan, &v, &end);
			if (rc == NET_RESP_LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == NET_RESP_LINE_BAD)
				return reader_fail(r, NET_RESP_EPROTO,
						   "Protocol error: invalid integer");
			n = add_node(r, NET_RESP_T_INTEGER, 0);
			if (!n)
				goto nomem;
			n->integer = v;
			r->pos = end;
			break;
		case R_BULK_LEN:
			rc = net_resp_number_line(buf, len, r->pos, &r->scan, &v, &end);
			if (rc == NET_RESP_LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == NET_RESP_LINE_BAD || v < -1 || v > NET_RESP_MAX_BULK)
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
			rc = net_resp_number_line(buf, len, r->pos, &r->scan, &v, &end);
			if (rc == NET_RESP_LINE_MORE)
				return NET_RESP_NEED_MORE;
			if (rc == NET_RESP_LINE_BAD || v < -1 ||
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
			KVS_DIE("bad reader state", 0);
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
	KVS_ASSERT(len >= r->seen);
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
	return net_resp_bulk_hint(r->state == R_BULK_DATA, r->pos, r->bulklen, r->seen);
}

const char *net_resp_reader_errmsg(const struct net_resp_reader *r)
{
	return r->errmsg;
}
