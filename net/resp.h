/*
 * resp.h - the RESP2 (Redis protocol) codec of kvs's network layer.
 *
 * Three parts, all free of I/O and of global state:
 *   - struct net_buf: a growable byte buffer (a connection's input or
 *     output, a client's request).
 *   - the request parser (server side): turns the bytes a connection has
 *     read into commands, one at a time, as argument vectors.  Multibulk
 *     ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") and inline ("GET k\r\n") requests.
 *   - the reply encoder (server side) and the reply reader (client side:
 *     kvs-client, kvs-bench), which parses one complete reply of any type.
 *
 * Conventions used by every function below:
 *   - Results: NET_RESP_OK (0) when a command or reply is complete, or the
 *     call did what it says; NET_RESP_NEED_MORE (positive) when the bytes
 *     given end in the middle of one: a state, not an error, call again
 *     once more bytes have arrived; or a negative NET_RESP_E... code.
 *   - Threads: nothing here is shared.  One parser, reader or buffer must
 *     be used by one thread at a time; different objects are independent.
 *   - Memory: no function allocates in proportion to a length the peer
 *     claims before the bytes have arrived.  Allocations are a small,
 *     capped amount up front, then grow with the bytes actually received,
 *     so a client that announces a 10 GB bulk or 2^31 arguments costs
 *     nothing until it sends them.  Nothing here blocks or prints.
 */
#ifndef KVS_NET_RESP_H
#define KVS_NET_RESP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Results. */
enum net_resp_status {
	NET_RESP_OK = 0,
	NET_RESP_NEED_MORE = 1, /* incomplete: not an error */
	NET_RESP_EPROTO = -1,   /* a protocol error; the message says which */
	NET_RESP_ENOMEM = -2,   /* out of memory */
};

/* Limits, as Redis's defaults. */
#define NET_RESP_MAX_BULK    (512ll << 20) /* bytes per bulk string (proto-max-bulk-len) */
#define NET_RESP_MAX_ARGS    (1ll << 20)   /* arguments per multibulk request */
#define NET_RESP_MAX_INLINE  (64u << 10)   /* bytes of an inline request line */
/* Replies: elements per array (a reply can be bigger than any request),
 * nesting depth of arrays, and bytes of a +simple, -error or :integer line. */
#define NET_RESP_MAX_REPLY_ELEMS 2147483647ll
#define NET_RESP_MAX_DEPTH   32
#define NET_RESP_MAX_LINE    (64u << 10)
/* The most net_resp_parser_hint() ever suggests reserving at once. */
#define NET_RESP_PREALLOC_MAX (1u << 20)

/* ---- byte buffers ---------------------------------------------------------- */

/*
 * A growable buffer: data[0..len) holds the bytes, cap is the allocated size
 * (len <= cap).  The fields may be read directly; to fill the buffer from a
 * read(), net_buf_reserve() room and then add the count read to len.
 * A zeroed struct (or NET_BUF_INIT) is an empty buffer.  Growing may move
 * data, so pointers into it are invalidated by every call that adds bytes.
 */
struct net_buf {
	char *data; /* NULL while cap == 0 */
	size_t len;
	size_t cap;
};
#define NET_BUF_INIT { NULL, 0, 0 }

/* Release the memory; the buffer is then empty and may be used again. */
void net_buf_free(struct net_buf *b);

/* Ensure room for `extra` more bytes (cap - len >= extra), growing
 * geometrically.  Errors: NET_RESP_ENOMEM (the buffer is unchanged). */
int net_buf_reserve(struct net_buf *b, size_t extra);

/* Append n bytes.  Errors: NET_RESP_ENOMEM (the buffer is unchanged). */
int net_buf_append(struct net_buf *b, const void *p, size_t n);

/* Drop the first n bytes (n <= len), moving the rest to the front: costs
 * a memmove of what stays, so call it once per batch, not per command. */
void net_buf_consume(struct net_buf *b, size_t n);

/* Bytes in the buffer: what an output-buffer limit is checked against. */
static inline size_t net_buf_len(const struct net_buf *b)
{
	return b->len;
}

/* ---- the request parser (server side) ------------------------------------- */

/* One parsed command.  argv[i] is the first byte of argument i (binary;
 * not NUL-terminated) and argvlen[i] its length; argc >= 1. */
struct net_resp_cmd {
	size_t argc;
	const char *const *argv;
	const size_t *argvlen;
};

/*
 * The parser's state between calls: embed one per connection, set it up with
 * net_resp_parser_init() and release it with net_resp_parser_free().  The
 * fields are private to resp.c.  It remembers how far it got in a partial
 * command, so the bytes of a command are examined once however it is split
 * across reads; positions are offsets, so the caller may move or regrow its
 * buffer between calls.
 */
struct net_resp_parser {
	int state;
	int error;          /* the sticky result once failed, else 0 */
	int inline_cmd;     /* the pending command is an inline one */
	size_t pos;         /* bytes of the pending command parsed so far */
	size_t scan;        /* where the search for the end of a line resumes */
	size_t seen;        /* bytes of the pending command given last call */
	long long nargs;    /* multibulk: arguments announced */
	long long bulklen;  /* length of the bulk string being read */
	size_t argc, argcap;
	size_t *argoff;     /* argument offsets (buffer or scratch) */
	size_t *arglen;
	const char **argv;  /* built when a command is complete */
	char *scratch;      /* inline arguments, unquoted */
	size_t scratchcap;
	char errmsg[64];
};

void net_resp_parser_init(struct net_resp_parser *p);
/* Release the parser's memory.  It may be initialised again. */
void net_resp_parser_free(struct net_resp_parser *p);

/*
 * Parse the next command from buf[0..len): the bytes a connection has read
 * and not yet consumed.  Sets *consumed on every return; the caller discards
 * (or skips) that many bytes at the front, and the next call must pass the
 * bytes that followed them, starting at buf[0], with any that arrived since.
 *
 * Returns:
 *   NET_RESP_OK: *cmd is the next command.  *consumed counts its bytes
 *     (and those of any empty command before it: "*0\r\n", "*-1\r\n" and
 *     blank inline lines are skipped, as Redis does).  cmd's arrays belong
 *     to the parser; its argument bytes point into buf (multibulk, no copy)
 *     or into the parser (inline).  They are valid until the next call on
 *     p, or until the caller changes, moves or frees those bytes of buf.
 *   NET_RESP_NEED_MORE: buf ends inside a command.  *consumed may be
 *     nonzero when empty commands were skipped.  The partial command stays
 *     the caller's to keep; the parser remembers how far it got, and
 *     net_resp_parser_hint() says how much more is known to be needed.
 *   NET_RESP_EPROTO: a protocol error.  net_resp_parser_errmsg() gives a
 *     Redis-style message ("Protocol error: invalid bulk length"); the
 *     server replies "-ERR <message>" and closes the connection.  The error
 *     is sticky: every later call returns it again.
 *   NET_RESP_ENOMEM: out of memory (also sticky).
 *
 * Requests: a command whose first byte is '*' is multibulk; anything else
 * is inline.  Multibulk: "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n";
 * numbers as Redis reads them (optional '-', no leading zeros, no '+' or
 * spaces); n <= NET_RESP_MAX_ARGS (n of 0 or -1 is an empty command; below
 * -1 is an error), 0 <= len <= NET_RESP_MAX_BULK.  Inline: a line ending in
 * "\n" or "\r\n", at most NET_RESP_MAX_INLINE bytes before the '\n', split
 * at spaces and tabs; "double quotes" understand the escapes \n \r \t \b \a
 * \\ \" \xHH, 'single quotes' understand \'; a closing quote must be
 * followed by a space or the end of the line.
 *
 * Errors (the messages): "Protocol error: invalid multibulk length",
 * "... invalid bulk length", "... expected '$', got 'X'" (a non-printable
 * byte is shown as \xHH), "... bulk string not terminated by CRLF",
 * "... too big inline request", "... unbalanced quotes in request".
 * The same bytes give the same result however they are split across calls.
 */
int net_resp_parse(struct net_resp_parser *p, const char *buf, size_t len,
		   struct net_resp_cmd *cmd, size_t *consumed);

/*
 * Does buf[0..len) begin with a complete multibulk request ("*<n>\r\n" with
 * n >= 1, then n bulk strings, all there)?  Returns 1 and points *name,
 * *namelen at its first argument (the command's name, in buf); else 0
 * (incomplete, inline, empty, or not well formed).  A command it calls
 * complete is one net_resp_parse() accepts (the same rules; only memory
 * can still fail).  Touches no parser: a server looks at the next buffered
 * command with it, to decide whether the command may join a batch before
 * it is parsed.
 */
int net_resp_peek_command(const char *buf, size_t len, const char **name,
			  size_t *namelen);

/* After NET_RESP_NEED_MORE: how many bytes beyond those given last time are
 * known to be needed for the pending command, but at most
 * NET_RESP_PREALLOC_MAX; 0 when unknown.  A connection may reserve that much
 * before its next read, so a big bulk is read in big steps while memory
 * still only grows with the bytes that actually arrive. */
size_t net_resp_parser_hint(const struct net_resp_parser *p);

/* The message of the last NET_RESP_EPROTO (or "out of memory"); "" if none.
 * Owned by the parser. */
const char *net_resp_parser_errmsg(const struct net_resp_parser *p);

/* ---- the reply encoder ----------------------------------------------------- */

/*
 * Each appends one reply (or, for net_resp_put_array, the header of an array
 * whose n elements are appended next) to b.  Errors: NET_RESP_ENOMEM, in
 * which case b is unchanged.
 */
/* "+s\r\n".  CR and LF in s (not allowed there) are sent as spaces. */
int net_resp_put_simple(struct net_buf *b, const char *s);
/* "-msg\r\n": msg starts with an error code, e.g. "ERR unknown command".
 * CR and LF in msg are sent as spaces. */
int net_resp_put_error(struct net_buf *b, const char *msg);
/* net_resp_put_error() of a printf-formatted message (truncated to 1 KiB). */
int net_resp_put_errorf(struct net_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* ":v\r\n" */
int net_resp_put_int(struct net_buf *b, long long v);
/* "$n\r\n<n bytes>\r\n", binary-safe. */
int net_resp_put_bulk(struct net_buf *b, const void *p, size_t n);
/* "$-1\r\n": the null bulk string (GET of a missing key). */
int net_resp_put_null(struct net_buf *b);
/* "*n\r\n" */
int net_resp_put_array(struct net_buf *b, size_t n);
/* "*-1\r\n": the null array. */
int net_resp_put_null_array(struct net_buf *b);
/* A request, as clients send it: an array of argc bulk strings. */
int net_resp_put_command(struct net_buf *b, size_t argc,
			 const char *const *argv, const size_t *argvlen);

/* ---- the reply reader (client side) --------------------------------------- */

enum net_resp_type {
	NET_RESP_T_SIMPLE = 1, /* +OK */
	NET_RESP_T_ERROR,      /* -ERR ... */
	NET_RESP_T_INTEGER,    /* :1 */
	NET_RESP_T_BULK,       /* $3 foo */
	NET_RESP_T_NULL,       /* $-1 */
	NET_RESP_T_ARRAY,      /* *2 ... */
	NET_RESP_T_NULL_ARRAY, /* *-1 */
};

/*
 * One node of a parsed reply.  A reply is an array of nodes in pre-order:
 * the root first; an array's first element (if nelem > 0) follows it at
 * node + 1, and each node's next sibling is at node + span.  For an array
 * of scalars (MGET's reply) the elements are simply node[1..nelem].
 */
struct net_resp_reply {
	enum net_resp_type type;
	long long integer; /* T_INTEGER: the value */
	const char *str;   /* T_SIMPLE, T_ERROR, T_BULK: the bytes (without the
			    * type byte and CRLF; not NUL-terminated) */
	size_t len;
	size_t nelem;      /* T_ARRAY: element count */
	size_t span;       /* nodes in this subtree, this one included */
};

/* The element after `r` at the same level. */
static inline const struct net_resp_reply *
net_resp_reply_next(const struct net_resp_reply *r)
{
	return r + r->span;
}

struct net_resp_frame {
	size_t node; /* the open array's node */
	size_t left; /* elements still to come */
};

/* The reply reader's state between calls: one per connection; the fields
 * are private to resp.c. */
struct net_resp_reader {
	int state;
	int error;    /* the sticky result once failed, else 0 */
	size_t pos, scan, seen;
	long long bulklen;
	struct net_resp_reply *nodes;
	size_t *offs; /* string offsets, turned into pointers at the end */
	size_t nnodes, cap;
	struct net_resp_frame stack[NET_RESP_MAX_DEPTH];
	int depth;
	char errmsg[64];
};

void net_resp_reader_init(struct net_resp_reader *r);
void net_resp_reader_free(struct net_resp_reader *r);

/*
 * Parse the reply at the front of buf[0..len).  Sets *consumed on every
 * return (it is 0 unless the result is NET_RESP_OK); as with
 * net_resp_parse(), the next call passes the bytes after those consumed,
 * starting at buf[0], and nothing already seen is examined again.
 *
 * Returns:
 *   NET_RESP_OK: *out is the reply's root node; *consumed its bytes.  The
 *     nodes belong to the reader; their strings point into buf.  Valid until
 *     the next call on r, or until those bytes of buf change or move.  An
 *     error reply (-ERR ...) is a successful parse of type NET_RESP_T_ERROR.
 *   NET_RESP_NEED_MORE: the reply is incomplete.
 *   NET_RESP_EPROTO: the bytes are not RESP2 (message from
 *     net_resp_reader_errmsg(): "Protocol error: invalid bulk length",
 *     "... invalid multibulk length", "... invalid integer", "... line too
 *     long", "... reply nested too deeply", "... bulk string not
 *     terminated by CRLF", "... expected CRLF", "... unexpected reply type
 *     byte 'X'").  Sticky.
 *   NET_RESP_ENOMEM: out of memory (sticky).
 * Limits: bulk strings up to NET_RESP_MAX_BULK bytes, arrays up to
 * NET_RESP_MAX_REPLY_ELEMS elements and NET_RESP_MAX_DEPTH levels deep,
 * other lines up to NET_RESP_MAX_LINE bytes.
 */
int net_resp_read_reply(struct net_resp_reader *r, const char *buf,
			size_t len, const struct net_resp_reply **out,
			size_t *consumed);

/* As net_resp_parser_hint(), for a bulk string of a reply. */
size_t net_resp_reader_hint(const struct net_resp_reader *r);

/* The message of the last NET_RESP_EPROTO (or "out of memory"); "" if none.
 * Owned by r. */
const char *net_resp_reader_errmsg(const struct net_resp_reader *r);

#ifdef __cplusplus
}
#endif
#endif /* KVS_NET_RESP_H */
