/*
 * record.h - the record codec (record.c): the only place, with
 * hint.h, where bytes of a segment are encoded or decoded.
 */
#ifndef KVS_ENGINE_RECORD_H
#define KVS_ENGINE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs.h"

/* ---- the record codec (record.c) ------------------------------------- */
/*
 * A segment file is an RFC 8742 CBOR Sequence: a 12-byte header item, then
 * records, each one CBOR array.  docs/FORMAT.md has the byte tables.
 *
 *   header  d9 d9f8  da 6b767331  43 42 4f 52   tag 55800(tag 0x6b767331(h'BOR'))
 *   SET     [seq, 0, key: bstr, value: bstr, crc: uint32]
 *   REMOVE  [seq, 1, key: bstr, crc: uint32]
 *   FOOTER  [last_seq, 2, count, chain: uint32, crc: uint32]
 *   TXN     [seq, 3, count, crc: uint32]
 *   FLUSH   [seq, 4, crc: uint32]
 *   SETX    [seq, 5, expire_ms, key: bstr, value: bstr, crc: uint32]
 *
 * SETX is a SET with an expiry time; decoded, it is a KVS_REC_SET whose
 * expire_ms is not 0 (a SET without one stays op 0, byte for byte, so a
 * key without a TTL costs nothing more).  In both the value ends 5 bytes
 * before the record's end, which the read path relies on.
 *
 * crc is CRC32C over every byte of the record before the crc item, always
 * encoded in 5 bytes (1a + big-endian 32 bits).  chain is CRC32C over the
 * 4-byte crc fields of all earlier records of the file, so the footer vouches
 * for the whole segment.
 */
#define KVS__HDR_LEN 12
extern const unsigned char kvs__seg_header[KVS__HDR_LEN];
#define KVS__REC_MAX_HEAD 32 /* array + seq + op + expiry + 2 bstr heads */
#define KVS__FOOTER_MAX 30   /* 1 + 9 + 1 + 9 + 5 + 5 */
#define KVS__TXN_MAX 25      /* 1 + 9 + 1 + 9 + 5 */
#define KVS__FLUSH_MAX 16    /* 1 + 9 + 1 + 5 */
#define KVS__OP_SETX 5       /* the on-disk op of a SET with an expiry */

/* Encode the part of a record that precedes the key and value bytes:
 * array head, seq, op, key bstr head (and for SET the value's head follows
 * the key: see kvs__rec_encode_vhead).  Returns bytes written. */
size_t kvs__rec_encode_head(unsigned char *out, enum kvs_record_type type,
			    uint64_t seq, size_t klen);
/* The same for a SET with an expiry time (expire_ms > 0: a SETX record;
 * 0: exactly kvs__rec_encode_head). */
size_t kvs__rec_encode_head_x(unsigned char *out, enum kvs_record_type type,
			      uint64_t seq, int64_t expire_ms, size_t klen);
size_t kvs__rec_encode_vhead(unsigned char *out, size_t vlen);
/* Encode the trailing crc item (5 bytes). */
void kvs__rec_encode_crc(unsigned char out[5], uint32_t crc);
/* Encode a whole footer record; returns its length. */
size_t kvs__rec_encode_footer(unsigned char *out, uint64_t last_seq,
			      uint64_t count, uint32_t chain);
/* Encode a whole TXN record (KVS__TXN_MAX bytes at most): the next `count`
 * records are one atomic batch.  Returns its length, crc included. */
size_t kvs__rec_encode_txn(unsigned char *out, uint64_t seq, uint64_t count);
/* Encode a whole FLUSH record (KVS__FLUSH_MAX bytes at most): every record
 * with a lower seq is dead.  Returns its length, crc included. */
size_t kvs__rec_encode_flush(unsigned char *out, uint64_t seq);

enum kvs__dec { KVS__DEC_OK, KVS__DEC_SHORT, KVS__DEC_BAD };

/* The *why of every KVS__DEC_SHORT of the decoders below. */
extern const char kvs__rec_short[];
/* Decode one record from buf[0..len).  On KVS__DEC_OK fills rec (with
 * rec->offset = 0, pointers into buf) and *crc_out.  KVS__DEC_SHORT: buf
 * ends inside a record.  KVS__DEC_BAD: *why says what is wrong, and
 * rec->length is the record's extent if it decoded up to its checksum (0
 * when the structure itself is broken). */
enum kvs__dec kvs__rec_decode(const unsigned char *buf, size_t len,
			      struct kvs_record *rec, uint32_t *crc_out,
			      const char **why);
/* The same without reading the crc item or checking it (the value bytes
 * are not touched): for records this process wrote or already checked. */
enum kvs__dec kvs__rec_decode_head(const unsigned char *buf, size_t len,
				   struct kvs_record *rec, const char **why);
/* Does head[0..hlen) - the bytes of a record before its value - encode a
 * SET or SETX of exactly `key` (klen bytes) whose value has vlen bytes?  Reads only
 * those bytes (the read path checks every record it returns with it, so
 * that an index or hint that points at the wrong record is an error, never
 * another key's value).  On false, *why says what differs. */
bool kvs__rec_head_is(const unsigned char *head, size_t hlen, const void *key,
		      size_t klen, size_t vlen, const char **why);
/* The exact length of a record of this type, seq, key and value length as
 * the engine encodes it (the check of hint entries).  No expiry. */
uint64_t kvs__rec_len_of(enum kvs_record_type type, uint64_t seq, size_t klen,
			 size_t vlen);
/* The same for every type: SET with expire_ms (a SETX when not 0); TXN
 * with n its count; FLUSH (klen, n ignored); REMOVE (n ignored). */
uint64_t kvs__rec_len_x(enum kvs_record_type type, uint64_t seq,
			int64_t expire_ms, size_t klen, uint64_t n);
/* Check a complete record's crc (rec_len bytes starting at buf). */
bool kvs__rec_crc_ok(const unsigned char *buf, size_t rec_len);
/* Decode a 5-byte crc item (1a + big-endian 32 bits); false if it is not
 * one.  (Records and hint files end with one.) */
bool kvs__crc_item(const unsigned char item[5], uint32_t *crc);
/* The sequence number of the record that starts at p[0..n) (n may stop
 * short of the record's end: only its first two items are read); false if
 * p does not start like a record (an array of 3 to 6 items). */
bool kvs__rec_peek_seq(const unsigned char *p, size_t n, uint64_t *seq);
/* Is there a complete, valid record (checksum included) anywhere in
 * buf[0..len)?  Tells a torn tail from damage in the middle of a file. */
bool kvs__rec_any_valid(const unsigned char *buf, size_t len);

/* A generic view of one decoded CBOR item (record.c), for the hint codec. */
enum kvs__item_kind { KVS__IT_NONE, KVS__IT_UINT, KVS__IT_BSTR, KVS__IT_ARRAY };
struct kvs__item {
	enum kvs__item_kind kind;
	uint64_t u;
	const unsigned char *p;
	size_t n;
};
/* Decode the item at buf[*pos] (definite lengths only); advance *pos. */
enum kvs__dec kvs__cbor_next(const unsigned char *buf, size_t len, size_t *pos,
			     struct kvs__item *it);
/* The same, all through libcbor (what kvs__cbor_next does for the kinds
 * it does not decode itself): for the test that compares the two. */
enum kvs__dec kvs__cbor_next_lib(const unsigned char *buf, size_t len,
				 size_t *pos, struct kvs__item *it);

#endif /* KVS_ENGINE_RECORD_H */
