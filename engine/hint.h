/*
 * hint.h - the hint file codec (hint.c) and the offsets a segment
 * keeps for its hint until it is sealed.
 */
#ifndef KVS_ENGINE_HINT_H
#define KVS_ENGINE_HINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* ---- hint files (hint.c) ----------------------------------------------- */
/*
 * NNNNNNNNNN.hint lists the records of sealed segment NNNNNNNNNN so that
 * opening the store need not read values.  A CBOR Sequence:
 *   header   d9 d9f8  da 6b766831  43 42 4f 52    ("kvh1")
 *   meta     [count, footer_off, min_seq]
 *   entry    [seq, type, key: bstr, offset, rec_len, vlen]   (count of them)
 *            type 0 SET, 1 REMOVE, 3 TXN (vlen: its count), 4 FLUSH (key
 *            h''); a SETX is [seq, 5, key, offset, rec_len, vlen,
 *            expire_ms].  Every record of the segment has an entry.
 *   crc      uint32: CRC32C of every byte before it
 * A hint is used only if its crc holds and the segment's footer sits at
 * footer_off, ends the file and counts the same records; otherwise the
 * segment is scanned (and its hint written again).
 */
extern const unsigned char kvs__hint_header[KVS__HDR_LEN];
/* Its first 8 bytes (the self-describing tag and "kvh1") tell a hint file
 * from a segment. */
#define KVS__HINT_MAGIC_LEN 8
struct kvs__hint_meta {
	uint64_t count, footer_off, min_seq;
};
/* Check a whole hint file in memory: header, crc, meta.  On success the
 * entries start at buf[*entries_at] and end 5 bytes before len. */
bool kvs__hint_check(const unsigned char *buf, size_t len,
		     struct kvs__hint_meta *meta, size_t *entries_at);
/* Check every entry of a hint (one kvs__hint_check passed) against its
 * segment before any is used: the entries decode, there are meta->count of
 * them and nothing after, offsets rise and each record lies between the
 * header and the footer without overlapping the previous one, and each
 * record's length is exactly what its seq, type, key length and value length
 * encode to.  NULL when all hold; else what is wrong, *bad the entry. */
const char *kvs__hint_validate(const unsigned char *buf, size_t len,
			       size_t entries_at,
			       const struct kvs__hint_meta *meta, uint64_t *bad);
/* The record count a hint file's meta claims, read without checking the
 * file's CRC (an estimate, for sizing the index before an open reads
 * anything); false when there is no readable hint, or the count is more
 * than the file could hold entries for. */
bool kvs__hint_peek_count(const char *dir, uint32_t id, uint64_t *count);
/* Decode one entry into rec (type, seq, key, offset, length, vlen). */
enum kvs__dec kvs__hint_next(const unsigned char *buf, size_t len,
			     size_t *pos, struct kvs_record *rec);
/* The offsets of a segment's records, kept until its hint file is written:
 * the entries are then read back from the segment's mapping (4 bytes a
 * record in memory, instead of the encoded entry with its key). */
struct kvs__hintbuf {
	uint32_t *off;
	size_t n, cap;
	bool failed; /* out of memory once: the hint is skipped */
};
void kvs__hint_add(struct kvs__hintbuf *hb, uint64_t off);
void kvs__hint_reset(struct kvs__hintbuf *hb);
char *kvs__hint_path(const char *dir, uint32_t id);

#endif /* KVS_ENGINE_HINT_H */
