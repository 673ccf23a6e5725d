/* record.c - the record codec: encodes records with libcbor's allocation-free
 * cbor_encode_* functions and decodes them with cbor_stream_decode, which
 * builds no tree and points into the input for byte strings.  The byte-level
 * layout is in engine_int.h and docs/FORMAT.md. */
#include "record.h"
#include "util.h"

#include <cbor.h>
#include <string.h>

/* tag 55800 (RFC 9277 CBOR Sequence magic) wrapping tag 0x6b767331 ("kvs1",
 * the format and its version) wrapping the byte string "BOR". */
const unsigned char kvs__seg_header[KVS__HDR_LEN] = {
	0xd9, 0xd9, 0xf8, 0xda, 'k', 'v', 's', '1', 0x43, 'B', 'O', 'R',
};

size_t kvs__rec_encode_head_x(unsigned char *out, enum kvs_record_type type,
			      uint64_t seq, int64_t expire_ms, size_t klen)
{
	bool x = type == KVS_REC_SET && expire_ms > 0;
	size_t n = cbor_encode_array_start(type == KVS_REC_REMOVE ? 4 : x ? 6 : 5,
					   out, KVS__REC_MAX_HEAD);
	n += cbor_encode_uint(seq, out + n, KVS__REC_MAX_HEAD - n);
	n += cbor_encode_uint(x ? KVS__OP_SETX : (uint64_t)type, out + n,
			      KVS__REC_MAX_HEAD - n);
	if (x)
		n += cbor_encode_uint((uint64_t)expire_ms, out + n,
				      KVS__REC_MAX_HEAD - n);
	n += cbor_encode_bytestring_start(klen, out + n, KVS__REC_MAX_HEAD - n);
	return n;
}

size_t kvs__rec_encode_head(unsigned char *out, enum kvs_record_type type,
			    uint64_t seq, size_t klen)
{
	return kvs__rec_encode_head_x(out, type, seq, 0, klen);
}

size_t kvs__rec_encode_vhead(unsigned char *out, size_t vlen)
{
	return cbor_encode_bytestring_start(vlen, out, 9);
}

void kvs__rec_encode_crc(unsigned char out[5], uint32_t crc)
{
	cbor_encode_uint32(crc, out, 5); /* always 1a + 4 bytes */
}

size_t kvs__rec_encode_footer(unsigned char *out, uint64_t last_seq,
			      uint64_t count, uint32_t chain)
{
	size_t n = cbor_encode_array_start(5, out, KVS__REC_MAX_HEAD);
	n += cbor_encode_uint(last_seq, out + n, KVS__REC_MAX_HEAD - n);
	n += cbor_encode_uint(KVS_REC_FOOTER, out + n, KVS__REC_MAX_HEAD - n);
	n += cbor_encode_uint(count, out + n, KVS__REC_MAX_HEAD - n);
	n += cbor_encode_uint32(chain, out + n, KVS__REC_MAX_HEAD - n);
	uint32_t crc = kvs__crc32c(0, out, n);
	kvs__rec_encode_crc(out + n, crc);
	return n + 5;
}

size_t kvs__rec_encode_txn(unsigned char *out, uint64_t seq, uint64_t count)
{
	size_t n = cbor_encode_array_start(4, out, KVS__TXN_MAX);
	n += cbor_encode_uint(seq, out + n, KVS__TXN_MAX - n);
	n += cbor_encode_uint(KVS_REC_TXN, out + n, KVS__TXN_MAX - n);
	n += cbor_encode_uint(count, out + n, KVS__TXN_MAX - n);
	kvs__rec_encode_crc(out + n, kvs__crc32c(0, out, n));
	return n + 5;
}

size_t kvs__rec_encode_flush(unsigned char *out, uint64_t seq)
{
	size_t n = cbor_encode_array_start(3, out, KVS__FLUSH_MAX);
	n += cbor_encode_uint(seq, out + n, KVS__FLUSH_MAX - n);
	n += cbor_encode_uint(KVS_REC_FLUSH, out + n, KVS__FLUSH_MAX - n);
	kvs__rec_encode_crc(out + n, kvs__crc32c(0, out, n));
	return n + 5;
}

/* ---- decoding ---------------------------------------------------------- */

#define IT_NONE KVS__IT_NONE
#define IT_UINT KVS__IT_UINT
#define IT_BSTR KVS__IT_BSTR
#define IT_ARRAY KVS__IT_ARRAY

static void set_item(void *c, enum kvs__item_kind k, uint64_t u,
		     const unsigned char *p, size_t n)
{
	*(struct kvs__item *)c = (struct kvs__item){ k, u, p, n };
}

static void on_u8(void *c, uint8_t v) { set_item(c, IT_UINT, v, NULL, 0); }
static void on_u16(void *c, uint16_t v) { set_item(c, IT_UINT, v, NULL, 0); }
static void on_u32(void *c, uint32_t v) { set_item(c, IT_UINT, v, NULL, 0); }
static void on_u64(void *c, uint64_t v) { set_item(c, IT_UINT, v, NULL, 0); }
static void on_bstr(void *c, cbor_data p, size_t n) { set_item(c, IT_BSTR, 0, p, n); }
static void on_array(void *c, size_t n) { set_item(c, IT_ARRAY, n, NULL, 0); }

static struct cbor_callbacks callbacks;
static pthread_once_t callbacks_once = PTHREAD_ONCE_INIT;

static void callbacks_init(void)
{
	callbacks = cbor_empty_callbacks; /* every other item type: IT_NONE */
	callbacks.uint8 = on_u8;
	callbacks.uint16 = on_u16;
	callbacks.uint32 = on_u32;
	callbacks.uint64 = on_u64;
	callbacks.byte_string = on_bstr; /* definite-length byte strings */
	callbacks.array_start = on_array; /* definite-length arrays */
}

enum kvs__dec kvs__cbor_next_lib(const unsigned char *buf, size_t len,
				 size_t *pos, struct kvs__item *it)
{
	if (*pos >= len)
		return KVS__DEC_SHORT;
	KVS_CHECK(pthread_once(&callbacks_once, callbacks_init));
	it->kind = IT_NONE;
	struct cbor_decoder_result r =
		cbor_stream_decode(buf + *pos, len - *pos, &callbacks, it);
	if (r.status == CBOR_DECODER_NEDATA)
		return KVS__DEC_SHORT;
	if (r.status != CBOR_DECODER_FINISHED)
		return KVS__DEC_BAD;
	*pos += r.read;
	return KVS__DEC_OK;
}

/* The three kinds of item records are made of (an unsigned integer, a
 * byte string, an array), each with a definite length, are decoded here:
 * libcbor's callback decoder was most of the cost of writing a hint file
 * (it reads every record's head again) and a good part of an open's.
 * Anything else goes to libcbor, and what this decodes, it decodes as
 * libcbor does (the same item, length and verdict; a test compares them). */
enum kvs__dec kvs__cbor_next(const unsigned char *buf, size_t len, size_t *pos,
			     struct kvs__item *it)
{
	if (*pos >= len)
		return KVS__DEC_SHORT;
	const unsigned char *p = buf + *pos;
	size_t avail = len - *pos;
	unsigned major = p[0] >> 5, info = p[0] & 31u;
	if ((major != 0 && major != 2 && major != 4) || info >= 28)
		return kvs__cbor_next_lib(buf, len, pos, it);
	uint64_t v = info;
	size_t h = 1;
	if (info >= 24) {
		h += (size_t)1 << (info - 24); /* 1, 2, 4 or 8 bytes follow */
		if (avail < h)
			return KVS__DEC_SHORT;
		v = 0;
		for (size_t i = 1; i < h; i++)
			v = v << 8 | p[i];
	}
	if (major == 2) {
		if (v > avail - h)
			return KVS__DEC_SHORT;
		*it = (struct kvs__item){ IT_BSTR, 0, p + h, (size_t)v };
		*pos += h + (size_t)v;
	} else {
		*it = (struct kvs__item){ major == 0 ? IT_UINT : IT_ARRAY, v,
					  NULL, 0 };
		*pos += h;
	}
	return KVS__DEC_OK;
}

#define next_item kvs__cbor_next

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The 5-byte uint32 form (1a + 4 bytes) at buf[*pos]. */
static enum kvs__dec fixed_u32(const unsigned char *buf, size_t len,
			       size_t *pos, uint32_t *v)
{
	if (*pos >= len)
		return KVS__DEC_SHORT;
	if (buf[*pos] != 0x1a)
		return KVS__DEC_BAD;
	if (len - *pos < 5)
		return KVS__DEC_SHORT;
	*v = be32(buf + *pos + 1);
	*pos += 5;
	return KVS__DEC_OK;
}

/* Why a record is SHORT, whichever item the data ends in.  The same words
 * whether the engine or kvs-dump (reader.c) meets it: a length byte damaged
 * to claim more than is there reads as this too, not as a bad item. */
const char kvs__rec_short[] = "record runs past the end of the data";

#define STEP(call, what)                                                     \
	do {                                                                 \
		enum kvs__dec d_ = (call);                                   \
		if (d_ != KVS__DEC_OK) {                                     \
			*why = d_ == KVS__DEC_SHORT ? kvs__rec_short : (what); \
			return d_;                                           \
		}                                                            \
	} while (0)
#define REQUIRE(cond, what)                                                  \
	do {                                                                 \
		if (!(cond)) {                                               \
			*why = (what);                                       \
			return KVS__DEC_BAD;                                 \
		}                                                            \
	} while (0)

/* The number of items of a record with on-disk op `op`; 0 if none is. */
static uint64_t items_of(uint64_t op)
{
	switch (op) {
	case KVS_REC_SET: return 5;
	case KVS_REC_REMOVE: return 4;
	case KVS_REC_FOOTER: return 5;
	case KVS_REC_TXN: return 4;
	case KVS_REC_FLUSH: return 3;
	case KVS__OP_SETX: return 6;
	default: return 0;
	}
}

/* Decode a record up to its crc item: *pos is left at the crc item. */
static enum kvs__dec decode_body(const unsigned char *buf, size_t len,
				 struct kvs_record *rec, size_t *pos_out,
				 const char **why)
{
	struct kvs__item it;
	size_t pos = 0;

	memset(rec, 0, sizeof *rec);
	STEP(next_item(buf, len, &pos, &it), "bad record start");
	REQUIRE(it.kind == IT_ARRAY && it.u >= 3 && it.u <= 6,
		"not a record (expected an array of 3 to 6 items)");
	uint64_t nitems = it.u;
	STEP(next_item(buf, len, &pos, &it), "bad sequence number");
	REQUIRE(it.kind == IT_UINT, "sequence number is not an unsigned integer");
	rec->seq = it.u;
	STEP(next_item(buf, len, &pos, &it), "bad record type");
	REQUIRE(it.kind == IT_UINT && items_of(it.u) != 0, "bad record type");
	uint64_t op = it.u;
	REQUIRE(nitems == items_of(op), "wrong item count for the record type");
	rec->type = op == KVS__OP_SETX ? KVS_REC_SET : (enum kvs_record_type)op;

	if (op == KVS__OP_SETX) {
		STEP(next_item(buf, len, &pos, &it), "bad expiry time");
		REQUIRE(it.kind == IT_UINT && it.u >= 1 && it.u <= INT64_MAX,
			"expiry time is not a positive integer");
		rec->expire_ms = (int64_t)it.u;
	}
	if (rec->type == KVS_REC_FOOTER) {
		STEP(next_item(buf, len, &pos, &it), "bad footer count");
		REQUIRE(it.kind == IT_UINT, "footer count is not an integer");
		rec->count = it.u;
		uint32_t chain;
		STEP(fixed_u32(buf, len, &pos, &chain), "bad footer chain");
		rec->chain = chain;
	} else if (rec->type == KVS_REC_TXN) {
		STEP(next_item(buf, len, &pos, &it), "bad transaction count");
		REQUIRE(it.kind == IT_UINT, "transaction count is not an integer");
		rec->count = it.u;
	} else if (rec->type != KVS_REC_FLUSH) {
		STEP(next_item(buf, len, &pos, &it), "bad key");
		REQUIRE(it.kind == IT_BSTR, "key is not a byte string");
		REQUIRE(it.n >= 1 && it.n <= KVS_MAX_KEY, "key length out of range");
		rec->key = it.p;
		rec->klen = it.n;
		if (rec->type == KVS_REC_SET) {
			STEP(next_item(buf, len, &pos, &it), "bad value");
			REQUIRE(it.kind == IT_BSTR, "value is not a byte string");
			REQUIRE(it.n <= KVS_MAX_VALUE, "value too long");
			rec->val = it.p;
			rec->vlen = it.n;
		}
	}
	*pos_out = pos;
	return KVS__DEC_OK;
}

enum kvs__dec kvs__rec_decode(const unsigned char *buf, size_t len,
			      struct kvs_record *rec, uint32_t *crc_out,
			      const char **why)
{
	size_t pos;
	uint32_t crc;
	enum kvs__dec d = decode_body(buf, len, rec, &pos, why);
	if (d != KVS__DEC_OK)
		return d;
	size_t body = pos;
	STEP(fixed_u32(buf, len, &pos, &crc), "bad checksum field");
	/* The record's extent is known now, even if its checksum fails:
	 * recovery uses it to tell a bad last record from a bad middle one. */
	rec->length = pos;
	REQUIRE(kvs__crc32c(0, buf, body) == crc, "checksum mismatch");
	*crc_out = crc;
	return KVS__DEC_OK;
}

enum kvs__dec kvs__rec_decode_head(const unsigned char *buf, size_t len,
				   struct kvs_record *rec, const char **why)
{
	size_t pos;
	enum kvs__dec d = decode_body(buf, len, rec, &pos, why);
	if (d != KVS__DEC_OK)
		return d;
	/* buf ends inside the crc item: SHORT, as kvs__rec_decode says of
	 * the same bytes (a prefix of a record is never BAD). */
	if (len - pos < 5) {
		*why = kvs__rec_short;
		return KVS__DEC_SHORT;
	}
	rec->length = pos + 5;
	return KVS__DEC_OK;
}

bool kvs__crc_item(const unsigned char item[5], uint32_t *crc)
{
	if (item[0] != 0x1a)
		return false;
	*crc = be32(item + 1);
	return true;
}

bool kvs__rec_crc_ok(const unsigned char *buf, size_t rec_len)
{
	uint32_t want;
	return rec_len >= 5 && kvs__crc_item(buf + rec_len - 5, &want) &&
	       kvs__crc32c(0, buf, rec_len - 5) == want;
}

bool kvs__rec_peek_seq(const unsigned char *p, size_t n, uint64_t *seq)
{
	struct kvs__item it;
	size_t pos = 0;
	/* A record is an array of 3 (FLUSH) to 6 (SETX) items whose first is
	 * the sequence number. */
	if (next_item(p, n, &pos, &it) != KVS__DEC_OK || it.kind != IT_ARRAY ||
	    it.u < 3 || it.u > 6 ||
	    next_item(p, n, &pos, &it) != KVS__DEC_OK || it.kind != IT_UINT)
		return false;
	*seq = it.u;
	return true;
}

bool kvs__rec_any_valid(const unsigned char *buf, size_t len)
{
	for (size_t p = 0; p < len; p++) {
		/* Only the array heads of 3 to 6 items can start a record. */
		if (buf[p] < 0x83 || buf[p] > 0x86)
			continue;
		struct kvs_record rec;
		uint32_t crc;
		const char *why;
		if (kvs__rec_decode(buf + p, len - p, &rec, &crc, &why) ==
		    KVS__DEC_OK)
			return true;
	}
	return false;
}

/* A byte string's head that takes exactly n bytes: its length into *len. */
static bool bstr_head_exact(const unsigned char *p, size_t n, uint64_t *len)
{
	if (n == 0 || (p[0] >> 5) != 2)
		return false;
	unsigned ai = p[0] & 0x1fu;
	size_t extra = ai < 24 ? 0 : ai <= 27 ? (size_t)1 << (ai - 24) : 99;
	if (n != 1 + extra)
		return false;
	uint64_t v = ai < 24 ? ai : 0;
	for (size_t i = 0; i < extra; i++)
		v = v << 8 | p[1 + i];
	*len = v;
	return true;
}

bool kvs__rec_head_is(const unsigned char *head, size_t hlen, const void *key,
		      size_t klen, size_t vlen, const char **why)
{
	struct kvs__item it;
	size_t pos = 0;
	uint64_t n;
	*why = "";
	if (next_item(head, hlen, &pos, &it) != KVS__DEC_OK ||
	    it.kind != IT_ARRAY || (it.u != 5 && it.u != 6)) {
		*why = "not a set record";
		return false;
	}
	uint64_t nitems = it.u;
	if (next_item(head, hlen, &pos, &it) != KVS__DEC_OK ||
	    it.kind != IT_UINT) {
		*why = "bad sequence number";
		return false;
	}
	if (next_item(head, hlen, &pos, &it) != KVS__DEC_OK ||
	    it.kind != IT_UINT ||
	    it.u != (nitems == 6 ? KVS__OP_SETX : KVS_REC_SET)) {
		*why = "not a set record";
		return false;
	}
	if (nitems == 6 && (next_item(head, hlen, &pos, &it) != KVS__DEC_OK ||
			    it.kind != IT_UINT)) {
		*why = "bad expiry time";
		return false;
	}
	if (next_item(head, hlen, &pos, &it) != KVS__DEC_OK ||
	    it.kind != IT_BSTR || it.n != klen || memcmp(it.p, key, klen) != 0) {
		*why = "the record holds another key than the one asked for";
		return false;
	}
	if (!bstr_head_exact(head + pos, hlen - pos, &n) || n != vlen) {
		*why = "the record's value length is not the indexed one";
		return false;
	}
	return true;
}

uint64_t kvs__rec_len_x(enum kvs_record_type type, uint64_t seq,
			int64_t expire_ms, size_t klen, uint64_t n)
{
	unsigned char head[KVS__REC_MAX_HEAD], vh[9];
	if (type == KVS_REC_TXN)
		return kvs__rec_encode_txn(head, seq, n);
	if (type == KVS_REC_FLUSH)
		return kvs__rec_encode_flush(head, seq);
	uint64_t len = kvs__rec_encode_head_x(head, type, seq, expire_ms, klen) +
		       klen + 5;
	if (type == KVS_REC_SET)
		len += kvs__rec_encode_vhead(vh, (size_t)n) + n;
	return len;
}

uint64_t kvs__rec_len_of(enum kvs_record_type type, uint64_t seq, size_t klen,
			 size_t vlen)
{
	return kvs__rec_len_x(type, seq, 0, klen, vlen);
}
