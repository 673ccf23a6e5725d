/* dump_out.c - kvs-dump's bottom layer: messages on stderr, allocation
 * failure, and showing records on stdout (keys and values as escaped text,
 * JSON text or base64, abbreviated unless --full). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dump.h"

void *dump_realloc_array(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return realloc(p, n * size);
}

void dump_complain(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("kvs-dump: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void dump_oom(void)
{
	dump_complain("out of memory");
	exit(EXIT_BAD_DATA);
}

/* ---- showing bytes ---------------------------------------------------- */

/* The length of the valid UTF-8 character at p[0..n) and its code point in
 * *cp, or 0 if it is not one (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_char(const unsigned char *p, size_t n, uint32_t *cp)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	uint32_t c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Not a C0 or C1 control character, nor DEL. */
static bool printable_cp(uint32_t c)
{
	return c >= 0x20 && c != 0x7f && !(c >= 0x80 && c <= 0x9f);
}

/* How many bytes of p[0..n) to show: all with --full, else about SHOW_MAX.
 * *text says whether they are printable UTF-8, in which case the cut never
 * splits a character. */
static size_t shown_len(const unsigned char *p, size_t n, bool full,
			bool *text)
{
	size_t limit = full || n <= SHOW_MAX ? n : SHOW_MAX;
	size_t i = 0;
	*text = true;
	while (i < limit) {
		uint32_t c;
		size_t k = utf8_char(p + i, n - i, &c);
		if (k == 0 || !printable_cp(c)) {
			*text = false;
			return limit;
		}
		if (i + k > limit)
			break; /* the character straddles the cut */
		i += k;
	}
	return i;
}

/* Printable ASCII as itself (with \" and \\), any other byte as \xNN. */
static void put_escaped(const unsigned char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	putchar('"');
}

/* A JSON string of UTF-8 text; an invalid byte becomes U+FFFD.  (Keys and
 * values reach here only when printable; paths may hold anything.) */
void dump_put_json_text(const unsigned char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_char(p + i, n - i, &c);
		if (k == 0) {
			fputs("\\ufffd", stdout);
			i++;
			continue;
		}
		if (c == '"' || c == '\\')
			printf("\\%c", (int)c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", (unsigned)c);
		else
			fwrite(p + i, 1, k, stdout);
		i += k;
	}
	putchar('"');
}

static void put_base64(const unsigned char *p, size_t n)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	putchar('"');
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];
		putchar(abc[v >> 18]);
		putchar(abc[(v >> 12) & 63]);
		putchar(abc[(v >> 6) & 63]);
		putchar(abc[v & 63]);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		putchar(abc[v >> 18]);
		putchar(abc[(v >> 12) & 63]);
		fputs("==", stdout);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		putchar(abc[v >> 18]);
		putchar(abc[(v >> 12) & 63]);
		putchar(abc[(v >> 6) & 63]);
		putchar('=');
	}
	putchar('"');
}

/* ,"key":"...","key_encoding":"utf8","key_length":N[,"key_truncated":true] */
static void put_json_bytes(const char *name, const void *data, size_t n,
			   bool full)
{
	/* The reader may hand out NULL for an empty string. */
	const unsigned char *p = n ? data : (const unsigned char *)"";
	bool text;
	size_t shown = shown_len(p, n, full, &text);
	printf(",\"%s\":", name);
	if (text)
		dump_put_json_text(p, shown);
	else
		put_base64(p, shown);
	printf(",\"%s_encoding\":\"%s\",\"%s_length\":%zu", name,
	       text ? "utf8" : "base64", name, n);
	if (shown < n)
		printf(",\"%s_truncated\":true", name);
}

/* key "..."  or  key "..."... (N bytes) when abbreviated */
static void put_text_bytes(const char *name, const void *data, size_t n,
			   bool full)
{
	const unsigned char *p = n ? data : (const unsigned char *)"";
	size_t shown = full || n <= SHOW_MAX ? n : SHOW_MAX;
	printf(" %s ", name);
	put_escaped(p, shown);
	if (shown < n)
		printf("... (%zu bytes)", n);
}

const char *dump_op_name(enum kvs_record_type t)
{
	switch (t) {
	case KVS_REC_SET: return "set";
	case KVS_REC_REMOVE: return "remove";
	case KVS_REC_FOOTER: return "footer";
	case KVS_REC_TXN: return "txn";
	case KVS_REC_FLUSH: return "flush";
	}
	return "?";
}

/* A SET's expiry: " expires MS (UTC time, in N s)" or "(..., N s ago)". */
static void put_expiry(int64_t at)
{
	time_t sec = (time_t)(at / 1000);
	struct tm tm;
	char when[32] = "?";
	if (gmtime_r(&sec, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	double left = (double)(at - kvs_now_ms()) / 1000.0;
	printf(" expires %lld (%s.%03dZ, ", (long long)at, when,
	       (int)(at % 1000));
	if (left > 0)
		printf("in %.3f s)", left);
	else
		printf("expired %.3f s ago)", -left);
}

/* The text form's items after the op: TXN's count, a keyed record's key,
 * expiry and value (a hint entry has its value's length only). */
static void print_rest(const struct opts *o, const struct kvs_record *rec,
		       bool is_hint)
{
	if (rec->type == KVS_REC_TXN) {
		printf(" count %llu\n", (unsigned long long)rec->count);
		return;
	}
	if (rec->type == KVS_REC_FLUSH) {
		putchar('\n');
		return;
	}
	put_text_bytes("key", rec->key, rec->klen, o->full);
	if (rec->expire_ms)
		put_expiry(rec->expire_ms);
	if (rec->type == KVS_REC_SET && is_hint)
		printf(" value (%zu bytes)", rec->vlen);
	else if (rec->type == KVS_REC_SET)
		put_text_bytes("value", rec->val, rec->vlen, o->full);
	putchar('\n');
}

/* One record of a segment file, or one entry of a hint file (is_hint): the
 * entry gives the offset and length of its record in the segment, and the
 * value's length but not the value. */
void dump_print_record(const struct opts *o, const char *path, bool is_hint,
		       const struct kvs_record *rec)
{
	unsigned long long off = (unsigned long long)rec->offset;
	unsigned long long len = (unsigned long long)rec->length;
	unsigned long long seq = (unsigned long long)rec->seq;
	if (o->json) {
		fputs("{\"segment\":", stdout);
		dump_put_json_text((const unsigned char *)path, strlen(path));
		printf(",\"file_kind\":\"%s\",\"offset\":%llu,\"length\":%llu,"
		       "\"op\":\"%s\"", is_hint ? "hint" : "segment", off, len,
		       dump_op_name(rec->type));
		if (rec->type == KVS_REC_FOOTER) {
			printf(",\"last_seq\":%llu,\"count\":%llu,"
			       "\"chain\":%lu}\n", seq,
			       (unsigned long long)rec->count,
			       (unsigned long)rec->chain);
			return;
		}
		printf(",\"seq\":%llu", seq);
		if (rec->type == KVS_REC_TXN) {
			printf(",\"count\":%llu}\n",
			       (unsigned long long)rec->count);
			return;
		}
		if (rec->type == KVS_REC_FLUSH) {
			fputs("}\n", stdout);
			return;
		}
		if (rec->expire_ms)
			printf(",\"expire_ms\":%lld,\"expires_in_ms\":%lld",
			       (long long)rec->expire_ms,
			       (long long)(rec->expire_ms - kvs_now_ms()));
		put_json_bytes("key", rec->key, rec->klen, o->full);
		if (rec->type == KVS_REC_SET && is_hint)
			printf(",\"value_length\":%zu", rec->vlen);
		else if (rec->type == KVS_REC_SET)
			put_json_bytes("value", rec->val, rec->vlen, o->full);
		fputs("}\n", stdout);
		return;
	}
	if (is_hint) {
		printf("%s: hint offset %llu length %llu seq %llu %s", path,
		       off, len, seq, dump_op_name(rec->type));
		print_rest(o, rec, true);
		return;
	}
	printf("%s:%llu: ", path, off);
	if (rec->type == KVS_REC_FOOTER) {
		printf("footer last_seq %llu count %llu chain 0x%08lx\n", seq,
		       (unsigned long long)rec->count,
		       (unsigned long)rec->chain);
		return;
	}
	printf("seq %llu %s", seq, dump_op_name(rec->type));
	print_rest(o, rec, false);
}
