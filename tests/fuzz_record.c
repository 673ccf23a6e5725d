/* fuzz_record.c - libFuzzer harness for the record codec (engine/record.h):
 * kvs__rec_decode, kvs__rec_decode_head and the helpers the read path and
 * recovery use on segment bytes, over arbitrary bytes and over the same bytes
 * with their checksum made valid (so that structure, not a lucky CRC, decides
 * how far the decoder gets); plus encode-then-decode of records whose fields
 * are drawn from the input.  Properties, beyond "no crash":
 *   - a decoded record lies inside the input: key and value inside its body,
 *     the value ending 5 bytes before its end (the read path relies on it);
 *   - re-encoding it with the encoders gives its bytes when it was encoded
 *     canonically (shortest integer heads), and only then is its length the
 *     one kvs__rec_len_x computes (the length hint validation demands);
 *   - kvs__rec_decode and kvs__rec_decode_head agree on its structure;
 *   - every prefix of a record decodes as SHORT, never OK or BAD;
 *   - kvs__rec_peek_seq, kvs__rec_head_is, kvs__rec_crc_ok and
 *     kvs__rec_any_valid agree with the decoder. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_record.c:%d: check failed: %s\n", \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	CHECK(p != NULL);
	return p;
}

/* Does [p, p+n) lie inside [lo, hi)? */
static bool inside(const void *p, size_t n, const unsigned char *lo,
		   const unsigned char *hi)
{
	const unsigned char *q = p;
	return q >= lo && q <= hi && n <= (size_t)(hi - q);
}

/* Encode rec with the engine's encoders into out (room for
 * KVS__REC_MAX_HEAD + klen + 9 + vlen + 5 bytes); returns the length. */
static size_t encode(unsigned char *out, const struct kvs_record *rec)
{
	size_t n;
	switch (rec->type) {
	case KVS_REC_FOOTER:
		return kvs__rec_encode_footer(out, rec->seq, rec->count,
					      rec->chain);
	case KVS_REC_TXN:
		return kvs__rec_encode_txn(out, rec->seq, rec->count);
	case KVS_REC_FLUSH:
		return kvs__rec_encode_flush(out, rec->seq);
	case KVS_REC_SET:
	case KVS_REC_REMOVE:
		break;
	}
	n = kvs__rec_encode_head_x(out, rec->type, rec->seq, rec->expire_ms,
				   rec->klen);
	memcpy(out + n, rec->key, rec->klen);
	n += rec->klen;
	if (rec->type == KVS_REC_SET) {
		n += kvs__rec_encode_vhead(out + n, rec->vlen);
		if (rec->vlen)
			memcpy(out + n, rec->val, rec->vlen);
		n += rec->vlen;
	}
	kvs__rec_encode_crc(out + n, kvs__crc32c(0, out, n));
	return n + 5;
}

/* kvs__rec_len_x's view of rec (FOOTER: the footer encoder's length). */
static uint64_t len_of(const struct kvs_record *rec)
{
	unsigned char foot[KVS__FOOTER_MAX];
	if (rec->type == KVS_REC_FOOTER)
		return kvs__rec_encode_footer(foot, rec->seq, rec->count,
					      rec->chain);
	return kvs__rec_len_x(rec->type, rec->seq, rec->expire_ms, rec->klen,
			      rec->type == KVS_REC_TXN ? rec->count : rec->vlen);
}

/* The decoded fields of two records are the same (pointers compared by
 * offset from their buffers). */
static bool same_record(const struct kvs_record *a, const unsigned char *abuf,
			const struct kvs_record *b, const unsigned char *bbuf)
{
	if (a->type != b->type || a->seq != b->seq || a->length != b->length ||
	    a->klen != b->klen || a->vlen != b->vlen || a->count != b->count ||
	    a->chain != b->chain || a->expire_ms != b->expire_ms ||
	    a->offset != b->offset)
		return false;
	if ((a->key == NULL) != (b->key == NULL) ||
	    (a->val == NULL) != (b->val == NULL))
		return false;
	if (a->key && (const unsigned char *)a->key - abuf !=
			      (const unsigned char *)b->key - bbuf)
		return false;
	if (a->val && (const unsigned char *)a->val - abuf !=
			      (const unsigned char *)b->val - bbuf)
		return false;
	return true;
}

/* Decode buf[0..k) from a private heap copy of exactly k bytes, so that a
 * read past k is an ASan report. */
static enum kvs__dec decode_copy(const unsigned char *buf, size_t k,
				 bool head_only)
{
	unsigned char *c = xmalloc(k);
	if (k)
		memcpy(c, buf, k);
	struct kvs_record r;
	uint32_t crc;
	const char *why = "";
	enum kvs__dec d = head_only ? kvs__rec_decode_head(c, k, &r, &why)
				    : kvs__rec_decode(c, k, &r, &crc, &why);
	free(c);
	return d;
}

/* Every prefix of the valid record buf[0..len) is SHORT, for both decoders
 * (all of them for a short record; otherwise those around each item start
 * and the crc, where the decoder's decisions are). */
static void check_prefixes(const unsigned char *buf, size_t len)
{
	size_t starts[16], ns = 0, pos = 0;
	struct kvs__item it;
	while (ns < 16 && pos < len) {
		starts[ns++] = pos;
		if (kvs__cbor_next(buf, len, &pos, &it) != KVS__DEC_OK)
			break;
	}
	for (size_t k = 0; k < len; k++) {
		bool probe = len <= 64 || k + 6 >= len;
		for (size_t i = 0; !probe && i < ns; i++)
			probe = k >= starts[i] && k - starts[i] < 11;
		if (!probe)
			continue;
		CHECK(decode_copy(buf, k, false) == KVS__DEC_SHORT);
		CHECK(decode_copy(buf, k, true) == KVS__DEC_SHORT);
	}
}

/* Everything that must hold of a record kvs__rec_decode accepted at
 * buf[0..len). */
static void check_ok_record(const unsigned char *buf, size_t len,
			    const struct kvs_record *rec, uint32_t crc)
{
	const unsigned char *end = buf + rec->length;
	CHECK(rec->length >= 8 && rec->length <= len);
	CHECK(rec->offset == 0);
	CHECK(kvs__rec_crc_ok(buf, rec->length));
	uint32_t item;
	CHECK(kvs__crc_item(end - 5, &item) && item == crc);
	CHECK(kvs__crc32c(0, buf, rec->length - 5) == crc);

	switch (rec->type) {
	case KVS_REC_SET:
		CHECK(rec->val != NULL && rec->vlen <= KVS_MAX_VALUE);
		/* The read path reads the value at rec_len - 5 - vlen. */
		CHECK((const unsigned char *)rec->val + rec->vlen == end - 5);
		CHECK(inside(rec->val, rec->vlen, buf, end - 5));
		/* fall through */
	case KVS_REC_REMOVE:
		CHECK(rec->key != NULL && rec->klen >= 1 &&
		      rec->klen <= KVS_MAX_KEY);
		CHECK(inside(rec->key, rec->klen, buf, end - 5));
		CHECK(rec->type == KVS_REC_SET || rec->expire_ms == 0);
		if (rec->type == KVS_REC_SET)
			CHECK((const unsigned char *)rec->key + rec->klen <=
			      (const unsigned char *)rec->val);
		CHECK(rec->count == 0 && rec->chain == 0);
		break;
	case KVS_REC_FOOTER:
	case KVS_REC_TXN:
	case KVS_REC_FLUSH:
		CHECK(rec->key == NULL && rec->klen == 0 && rec->val == NULL &&
		      rec->vlen == 0 && rec->expire_ms == 0);
		CHECK(rec->type == KVS_REC_FOOTER || rec->chain == 0);
		CHECK(rec->type != KVS_REC_FLUSH || rec->count == 0);
		break;
	default:
		CHECK(!"decoded an unknown record type");
	}
	CHECK(rec->expire_ms >= 0);

	/* Canonical iff it re-encodes to itself, and then exactly as long as
	 * kvs__rec_len_x says (what hint validation demands).  A longer,
	 * non-shortest encoding decodes too: the decoder is lenient on
	 * integer heads; such a record is never written by the engine. */
	unsigned char *re = xmalloc(KVS__REC_MAX_HEAD + rec->klen + 9 +
				    rec->vlen + 5);
	size_t rlen = encode(re, rec);
	CHECK(rlen == len_of(rec));
	CHECK(rlen <= rec->length);
	bool canonical = rlen == rec->length &&
			 memcmp(re, buf, rlen) == 0;
	CHECK(canonical == (rlen == rec->length));
	/* The re-encoding (canonical by construction) decodes to the same
	 * fields, and all its prefixes are SHORT. */
	struct kvs_record r2;
	uint32_t crc2;
	const char *why = "";
	CHECK(kvs__rec_decode(re, rlen, &r2, &crc2, &why) == KVS__DEC_OK);
	CHECK(r2.type == rec->type && r2.seq == rec->seq &&
	      r2.klen == rec->klen && r2.vlen == rec->vlen &&
	      r2.count == rec->count && r2.chain == rec->chain &&
	      r2.expire_ms == rec->expire_ms && r2.length == rlen);
	CHECK(r2.klen == 0 || memcmp(r2.key, rec->key, r2.klen) == 0);
	CHECK(r2.vlen == 0 || memcmp(r2.val, rec->val, r2.vlen) == 0);
	check_prefixes(re, rlen);
	free(re);

	/* The record on its own (no bytes after it) decodes the same. */
	unsigned char *own = xmalloc(rec->length);
	memcpy(own, buf, rec->length);
	struct kvs_record r3;
	uint32_t crc3;
	CHECK(kvs__rec_decode(own, rec->length, &r3, &crc3, &why) ==
	      KVS__DEC_OK);
	CHECK(same_record(&r3, own, rec, buf) && crc3 == crc);
	if (rec->length <= 512)
		check_prefixes(own, rec->length);
	free(own);

	uint64_t seq;
	CHECK(kvs__rec_peek_seq(buf, len, &seq) && seq == rec->seq);
	CHECK(kvs__rec_any_valid(buf, len));
	if (rec->type == KVS_REC_SET) {
		size_t hlen = rec->length - 5 - rec->vlen;
		CHECK(kvs__rec_head_is(buf, hlen, rec->key, rec->klen,
				       rec->vlen, &why));
		/* Another value length or key is refused. */
		CHECK(!kvs__rec_head_is(buf, hlen, rec->key, rec->klen,
					rec->vlen + 1, &why));
		CHECK(!kvs__rec_head_is(buf, hlen, rec->key, rec->klen - 1,
					rec->vlen, &why));
	}
}

/* Decode buf[0..len) with both decoders and check that they agree. */
static void check_one(const unsigned char *buf, size_t len)
{
	struct kvs_record rec, head;
	uint32_t crc = 0;
	const char *why = NULL, *hwhy = NULL;
	enum kvs__dec d = kvs__rec_decode(buf, len, &rec, &crc, &why);
	enum kvs__dec h = kvs__rec_decode_head(buf, len, &head, &hwhy);

	CHECK(d == KVS__DEC_OK || why != NULL);
	CHECK(h == KVS__DEC_OK || hwhy != NULL);
	CHECK(rec.length <= len && head.length <= len);
	if (d == KVS__DEC_OK) {
		CHECK(h == KVS__DEC_OK && same_record(&rec, buf, &head, buf));
		check_ok_record(buf, len, &rec, crc);
	} else if (d == KVS__DEC_BAD && rec.length != 0) {
		/* Decoded up to a checksum that does not hold: the head
		 * decoder, which does not check it, accepts the record. */
		CHECK(h == KVS__DEC_OK && same_record(&rec, buf, &head, buf));
		CHECK(!kvs__rec_crc_ok(buf, rec.length));
	}
	if (h == KVS__DEC_OK) {
		/* Only the crc item can make the full decoder refuse. */
		CHECK(d != KVS__DEC_SHORT);
		CHECK(head.length >= 8 && head.length <= len);
		CHECK(d == KVS__DEC_OK || rec.length != 0 ||
		      buf[head.length - 5] != 0x1a);
	} else if (h == KVS__DEC_SHORT) {
		/* Short in the body, or a crc item cut short (or one that is
		 * not a uint32 and would not fit anyway). */
		CHECK(d == KVS__DEC_SHORT ||
		      (d == KVS__DEC_BAD && rec.length == 0));
	} else {
		CHECK(d == KVS__DEC_BAD && rec.length == 0);
	}
}

/* The same bytes with the checksum the decoder will look for made valid:
 * the head decoder finds where it is. */
static void check_fixed_crc(const unsigned char *data, size_t size)
{
	struct kvs_record head;
	const char *why;
	if (kvs__rec_decode_head(data, size, &head, &why) != KVS__DEC_OK)
		return;
	unsigned char *c = xmalloc(size);
	memcpy(c, data, size);
	size_t body = head.length - 5;
	kvs__rec_encode_crc(c + body, kvs__crc32c(0, c, body));
	struct kvs_record rec;
	uint32_t crc;
	CHECK(kvs__rec_decode(c, size, &rec, &crc, &why) == KVS__DEC_OK);
	check_one(c, size);
	free(c);
}

/* A sequence of records, as in a segment after its header: check each
 * while they decode. */
static void check_walk(const unsigned char *data, size_t size)
{
	size_t pos = 0;
	for (int i = 0; i < 16 && pos < size; i++) {
		if (i > 0)
			check_one(data + pos, size - pos);
		struct kvs_record rec;
		uint32_t crc;
		const char *why;
		if (kvs__rec_decode(data + pos, size - pos, &rec, &crc, &why) !=
		    KVS__DEC_OK)
			break;
		CHECK(rec.length > 0 && rec.length <= size - pos);
		pos += rec.length;
	}
}

static uint64_t take(const uint8_t **p, size_t *n, size_t bytes)
{
	uint64_t v = 0;
	for (size_t i = 0; i < bytes && *n; i++, (*p)++, (*n)--)
		v = v << 8 | **p;
	return v;
}

/* A record whose fields come from the input, encoded and decoded: the
 * decoder gives back exactly those fields, and the encoders' length is
 * kvs__rec_len_x's. */
static void check_encoded(const uint8_t *data, size_t size)
{
	const uint8_t *p = data;
	size_t n = size;
	struct kvs_record want;
	memset(&want, 0, sizeof want);
	unsigned sel = (unsigned)take(&p, &n, 1);
	/* Integers of every width: a byte picks how many bytes seq has. */
	want.seq = take(&p, &n, sel >> 4 & 7 ? (sel >> 4 & 7) + 1 : 1);
	want.type = (enum kvs_record_type)(sel % 5);
	if (want.type == KVS_REC_SET && (sel & 8))
		want.expire_ms = (int64_t)(take(&p, &n, 8) >> 1);
	if (want.type == KVS_REC_TXN || want.type == KVS_REC_FOOTER)
		want.count = take(&p, &n, (size_t)(sel >> 7) * 7 + 1);
	if (want.type == KVS_REC_FOOTER)
		want.chain = (uint32_t)take(&p, &n, 4);
	if (want.type == KVS_REC_SET || want.type == KVS_REC_REMOVE) {
		size_t klen = (size_t)take(&p, &n, 1) + 1;
		if (klen > n)
			return;
		want.key = p;
		want.klen = klen;
		p += klen;
		n -= klen;
	}
	if (want.type == KVS_REC_SET) {
		want.val = p;
		want.vlen = n;
	}
	size_t cap = KVS__REC_MAX_HEAD + want.klen + 9 + want.vlen + 5;
	unsigned char *buf = xmalloc(cap);
	size_t len = encode(buf, &want);
	CHECK(len <= cap && len == len_of(&want));
	if (want.type == KVS_REC_SET && want.expire_ms == 0)
		CHECK(len == kvs__rec_len_of(KVS_REC_SET, want.seq, want.klen,
					     want.vlen));
	struct kvs_record rec;
	uint32_t crc;
	const char *why;
	CHECK(kvs__rec_decode(buf, len, &rec, &crc, &why) == KVS__DEC_OK);
	CHECK(rec.length == len && rec.type == want.type &&
	      rec.seq == want.seq && rec.klen == want.klen &&
	      rec.vlen == want.vlen && rec.count == want.count &&
	      rec.chain == want.chain && rec.expire_ms == want.expire_ms);
	CHECK(rec.klen == 0 || memcmp(rec.key, want.key, rec.klen) == 0);
	CHECK(rec.vlen == 0 || memcmp(rec.val, want.val, rec.vlen) == 0);
	check_ok_record(buf, len, &rec, crc);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_one(data, size);
	check_fixed_crc(data, size);
	check_walk(data, size);
	/* A segment's own bytes: the header is not a record. */
	if (size >= KVS__HDR_LEN &&
	    memcmp(data, kvs__seg_header, KVS__HDR_LEN) == 0)
		check_walk(data + KVS__HDR_LEN, size - KVS__HDR_LEN);
	check_encoded(data, size);
	return 0;
}
