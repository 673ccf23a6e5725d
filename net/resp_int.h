/*
 * resp_int.h - what the three files of the RESP codec share (resp.c,
 * resp_parse.c, resp_reader.c).  Nothing else includes it.
 */
#ifndef KVS_NET_RESP_INT_H
#define KVS_NET_RESP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "kvs.h"

/* Characters of a length or integer line: a long long has at most 19 digits
 * and a sign.  A longer line cannot hold a valid number, so it is refused as
 * soon as it is seen, whatever else follows. */
#define NET_RESP_NUM_MAX 20

enum { NET_RESP_LINE_OK, NET_RESP_LINE_MORE, NET_RESP_LINE_BAD };

/*
 * The number of a "<number>\r\n" line whose first character is buf[start].
 * *scan is where checking resumes (bytes before it passed already), so a
 * line split across reads is looked at once.  A byte that cannot be part of
 * a number, more than NET_RESP_NUM_MAX characters, or a '\r' without '\n'
 * makes the line bad as soon as it arrives: a client that ends lines with a
 * bare '\n' gets an error at once instead of a server waiting for more.
 * NET_RESP_LINE_OK: *val and *end (the offset after the '\n') are set.
 * The number itself follows Redis's rule (kvs_parse_int64: an optional '-',
 * no leading zeros, no "-0", within 64 bits).  Inline: it runs for every
 * length line of every request.
 */
static inline int net_resp_number_line(const char *buf, size_t len,
				       size_t start, size_t *scan,
				       long long *val, size_t *end)
{
	size_t i = *scan > start ? *scan : start;
	int64_t v;

	for (; i < len && buf[i] != '\r'; i++) {
		char c = buf[i];
		if ((c < '0' || c > '9') && c != '-')
			return NET_RESP_LINE_BAD;
		if (i - start >= NET_RESP_NUM_MAX)
			return NET_RESP_LINE_BAD;
	}
	if (i + 1 >= len) {
		*scan = i;
		return NET_RESP_LINE_MORE;
	}
	if (buf[i + 1] != '\n' || !kvs_parse_int64(buf + start, i - start, &v))
		return NET_RESP_LINE_BAD;
	*val = v;
	*end = i + 2;
	return NET_RESP_LINE_OK;
}

/* A byte for an error message: itself if printable, else \xHH. */
void net_resp_show_byte(char *out, size_t size, char c);

/* After NET_RESP_NEED_MORE in a bulk string (in_bulk) whose data starts at
 * pos: how many more bytes it needs beyond the `seen` given last, capped at
 * NET_RESP_PREALLOC_MAX; 0 if not in a bulk or none. */
size_t net_resp_bulk_hint(int in_bulk, size_t pos, long long bulklen,
			  size_t seen);

#endif /* KVS_NET_RESP_INT_H */
