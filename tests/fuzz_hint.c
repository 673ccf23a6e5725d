/* fuzz_hint.c - libFuzzer harness for the hint file codec (engine/hint.h).
 * An input is a hint file: it is checked as given, with its trailing crc
 * made valid, and with its header and crc made valid (so that structure, not
 * a lucky CRC, decides how far the decoders get).  An input that is a
 * segment file is also scanned as recovery scans one (each record's crc made
 * valid), sealed, and given a hint by the engine's own writer
 * (kvs__seg_write_hint), which must then read back as the segment's records.
 * Properties, beyond "no crash":
 *   - kvs__hint_check accepts only a file with the header, crc and meta it
 *     documents, and says where the entries start;
 *   - each entry kvs__hint_next yields lies between where it started and
 *     where it stopped, which stays inside the bytes it was given, and has
 *     the fields its type allows;
 *   - kvs__hint_validate says yes exactly when an independent reading of its
 *     documented rules (docs/FORMAT.md) does, and names the same entry when
 *     it says no;
 *   - every entry of a validated hint describes a record the engine can
 *     encode at exactly that length, which the read path's own checks
 *     (kvs__rec_head_is, its head-length arithmetic) accept;
 *   - the hint the writer makes for a segment lists exactly its records,
 *     and validates when the records are canonically encoded. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cbor.h>

#include "hint.h"
#include "record.h"
#include "segment.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_hint.c:%d: check failed: %s\n", \
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

/* ---- a hint file as given ---------------------------------------------- */

/* The entry encoded as kvs__seg_write_hint encodes it (shortest integer
 * heads); returns its length (out has room for 7 * 9 + klen bytes). */
static size_t encode_entry(unsigned char *out, size_t cap,
			   const struct kvs_record *r)
{
	bool x = r->type == KVS_REC_SET && r->expire_ms > 0;
	size_t n = cbor_encode_array_start(x ? 7 : 6, out, cap);
	n += cbor_encode_uint(r->seq, out + n, cap - n);
	n += cbor_encode_uint(x ? KVS__OP_SETX : (uint64_t)r->type, out + n,
			      cap - n);
	n += cbor_encode_bytestring_start(r->klen, out + n, cap - n);
	if (r->klen)
		memcpy(out + n, r->key, r->klen);
	n += r->klen;
	n += cbor_encode_uint(r->offset, out + n, cap - n);
	n += cbor_encode_uint(r->length, out + n, cap - n);
	n += cbor_encode_uint(r->type == KVS_REC_TXN ? r->count : r->vlen,
			      out + n, cap - n);
	if (x)
		n += cbor_encode_uint((uint64_t)r->expire_ms, out + n, cap - n);
	return n;
}

/* The record an entry describes, encoded by the engine's encoders (value
 * bytes: filler); returns its length.  out: KVS__REC_MAX_HEAD + klen + 9 +
 * vlen + 5 bytes. */
static size_t encode_record(unsigned char *out, const struct kvs_record *r)
{
	if (r->type == KVS_REC_TXN)
		return kvs__rec_encode_txn(out, r->seq, r->count);
	if (r->type == KVS_REC_FLUSH)
		return kvs__rec_encode_flush(out, r->seq);
	size_t n = kvs__rec_encode_head_x(out, r->type, r->seq, r->expire_ms,
					  r->klen);
	memcpy(out + n, r->key, r->klen);
	n += r->klen;
	if (r->type == KVS_REC_SET) {
		n += kvs__rec_encode_vhead(out + n, r->vlen);
		memset(out + n, 'v', r->vlen);
		n += r->vlen;
	}
	kvs__rec_encode_crc(out + n, kvs__crc32c(0, out, n));
	return n + 5;
}

/* A validated entry: the record it describes is what the read path and
 * recovery will expect at its offset. */
static void check_valid_entry(const struct kvs_record *e,
			      const struct kvs__hint_meta *meta)
{
	CHECK(e->offset >= KVS__HDR_LEN && e->length <= meta->footer_off &&
	      e->offset <= meta->footer_off - e->length);
	CHECK(e->seq >= meta->min_seq);
	if (e->type == KVS_REC_SET) {
		/* read.c's sanity check of an index entry (MIN_HEAD 5). */
		CHECK(e->length >= 5 + 5 + e->klen &&
		      e->vlen <= e->length - 5 - 5 - e->klen);
	}
	/* Values up to 512 MiB are legal: build the record only when small. */
	if (e->vlen > 65536)
		return;
	unsigned char *rec = xmalloc(KVS__REC_MAX_HEAD + e->klen + 9 +
				     e->vlen + 5);
	size_t len = encode_record(rec, e);
	CHECK(len == e->length);
	struct kvs_record d;
	uint32_t crc;
	const char *why = "";
	CHECK(kvs__rec_decode(rec, len, &d, &crc, &why) == KVS__DEC_OK);
	CHECK(d.type == e->type && d.seq == e->seq && d.klen == e->klen &&
	      d.vlen == e->vlen && d.count == e->count &&
	      d.expire_ms == e->expire_ms && d.length == e->length);
	CHECK(d.klen == 0 || memcmp(d.key, e->key, d.klen) == 0);
	if (e->type == KVS_REC_SET)
		CHECK(kvs__rec_head_is(rec, len - 5 - e->vlen, e->key, e->klen,
				       e->vlen, &why));
	free(rec);
}

/* kvs__hint_validate's rules as docs/FORMAT.md states them, applied to the
 * entries as decoded: returns the index of the first entry that breaks one
 * (meta->count when the entries are fine but bytes follow them; 0 when the
 * footer offset is impossible), or UINT64_MAX when the hint is valid. */
static uint64_t model_validate(const unsigned char *buf, size_t len,
			       size_t at, const struct kvs__hint_meta *meta)
{
	if (meta->footer_off < KVS__HDR_LEN)
		return 0;
	uint64_t end_prev = KVS__HDR_LEN;
	size_t pos = at;
	for (uint64_t i = 0; i < meta->count; i++) {
		struct kvs_record r;
		if (kvs__hint_next(buf, len - 5, &pos, &r) != KVS__DEC_OK)
			return i;
		uint64_t want = kvs__rec_len_x(r.type, r.seq, r.expire_ms,
					       r.klen, r.type == KVS_REC_TXN
							       ? r.count
							       : r.vlen);
		/* In 128 bits: offset + length must not wrap to pass. */
		unsigned __int128 end = (unsigned __int128)r.offset + r.length;
		if (r.offset < end_prev || end > meta->footer_off ||
		    (r.type != KVS_REC_SET && r.vlen != 0) ||
		    r.seq < meta->min_seq || r.length != want)
			return i;
		end_prev = r.offset + r.length;
	}
	return pos == len - 5 ? UINT64_MAX : meta->count;
}

/* Everything about one hint file buf[0..len). */
static void check_hint(const unsigned char *buf, size_t len)
{
	struct kvs__hint_meta meta;
	size_t at = 0;
	if (!kvs__hint_check(buf, len, &meta, &at)) {
		/* A file with the header, crc and meta array is accepted. */
		return;
	}
	uint32_t want;
	CHECK(len >= KVS__HDR_LEN + 4 + 5 &&
	      memcmp(buf, kvs__hint_header, KVS__HDR_LEN) == 0);
	CHECK(kvs__crc_item(buf + len - 5, &want) &&
	      kvs__crc32c(0, buf, len - 5) == want);
	CHECK(at >= KVS__HDR_LEN + 4 && at <= len - 5);

	/* Walk the entries as recovery and the reader do. */
	size_t pos = at;
	unsigned char *enc = NULL;
	for (uint64_t i = 0; i < meta.count; i++) {
		struct kvs_record r;
		size_t start = pos;
		if (kvs__hint_next(buf, len - 5, &pos, &r) != KVS__DEC_OK)
			break;
		/* The smallest entry: 86 seq op 40 off len vlen. */
		CHECK(pos >= start + 7 && pos <= len - 5);
		CHECK(r.type == KVS_REC_SET || r.type == KVS_REC_REMOVE ||
		      r.type == KVS_REC_TXN || r.type == KVS_REC_FLUSH);
		CHECK(r.length <= UINT32_MAX && r.expire_ms >= 0);
		if (r.klen)
			CHECK((const unsigned char *)r.key >= buf + start &&
			      (const unsigned char *)r.key + r.klen <=
				      buf + pos);
		if (r.type == KVS_REC_SET || r.type == KVS_REC_REMOVE)
			CHECK(r.klen >= 1 && r.klen <= KVS_MAX_KEY);
		else
			CHECK(r.klen == 0);
		CHECK(r.type == KVS_REC_SET || r.expire_ms == 0);
		CHECK(r.type == KVS_REC_TXN ? r.vlen == 0
					    : r.count == 0 &&
						      r.vlen <= KVS_MAX_VALUE);
		CHECK(r.val == NULL && r.chain == 0);
		/* Re-encoded as the writer does: the same bytes when they
		 * were canonical, else fewer (the decoder takes integer heads
		 * that are not the shortest). */
		size_t cap = 7 * 9 + r.klen;
		enc = realloc(enc, cap);
		CHECK(enc != NULL);
		size_t n = encode_entry(enc, cap, &r);
		CHECK(n <= pos - start);
		CHECK((n == pos - start) ==
		      (memcmp(enc, buf + start, n) == 0 && n == pos - start));
	}
	free(enc);

	uint64_t bad = 0;
	const char *why = kvs__hint_validate(buf, len, at, &meta, &bad);
	uint64_t model = model_validate(buf, len, at, &meta);
	CHECK((why == NULL) == (model == UINT64_MAX));
	if (why) {
		CHECK(bad == model);
		return;
	}
	CHECK(bad == meta.count);
	pos = at;
	for (uint64_t i = 0; i < meta.count; i++) {
		struct kvs_record r;
		CHECK(kvs__hint_next(buf, len - 5, &pos, &r) == KVS__DEC_OK);
		check_valid_entry(&r, &meta);
	}
	CHECK(pos == len - 5);
}

/* ---- a segment, and the hint the engine writes for it ------------------ */

static char tmpdir[64];

static void remove_tmpdir(void)
{
	char path[128];
	snprintf(path, sizeof path, "%s/0000000001.hint", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/fuzz-hint-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	atexit(remove_tmpdir);
	return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	size_t cap = 4096, n = 0, got;
	unsigned char *p = xmalloc(cap);
	while ((got = fread(p + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			p = realloc(p, cap *= 2);
			CHECK(p != NULL);
		}
	}
	fclose(f);
	*len = n;
	return p;
}

#define MAX_RECS 512

static void check_writer(const uint8_t *data, size_t size)
{
	/* Room for a footer after the records. */
	unsigned char *seg = xmalloc(size + KVS__FOOTER_MAX);
	memcpy(seg, data, size);
	static uint64_t offs[MAX_RECS];
	size_t n = 0, pos = KVS__HDR_LEN;
	uint64_t min_seq = UINT64_MAX, last_seq = 0;
	uint32_t chain = 0;
	size_t first_noncanonical = SIZE_MAX;
	while (n < MAX_RECS && pos < size) {
		struct kvs_record r;
		uint32_t crc;
		const char *why;
		if (kvs__rec_decode_head(seg + pos, size - pos, &r, &why) !=
		    KVS__DEC_OK)
			break;
		size_t body = pos + (size_t)r.length - 5;
		kvs__rec_encode_crc(seg + body, kvs__crc32c(0, seg + pos,
							    body - pos));
		CHECK(kvs__rec_decode(seg + pos, size - pos, &r, &crc, &why) ==
		      KVS__DEC_OK);
		if (r.type == KVS_REC_FOOTER)
			break;
		uint64_t canon = kvs__rec_len_x(r.type, r.seq, r.expire_ms,
						r.klen, r.type == KVS_REC_TXN
								? r.count
								: r.vlen);
		CHECK(canon <= r.length);
		if (canon != r.length && first_noncanonical == SIZE_MAX)
			first_noncanonical = n;
		offs[n++] = pos;
		if (r.seq < min_seq)
			min_seq = r.seq;
		last_seq = r.seq;
		chain = kvs__crc32c(chain, seg + pos + r.length - 4, 4);
		pos += (size_t)r.length;
	}
	size_t footer_off = pos;
	size_t flen = kvs__rec_encode_footer(seg + footer_off, last_seq, n,
					     chain);

	struct kvs__seg s;
	memset(&s, 0, sizeof s);
	s.id = 1;
	s.path = (char *)"fuzz.seg";
	s.map = seg;
	s.map_len = footer_off + flen;
	s.min_seq = min_seq;
	for (size_t i = 0; i < n; i++)
		kvs__hint_add(&s.hint, offs[i]);
	CHECK(kvs__seg_write_hint(tmpdir, &s, footer_off) == KVS_OK);
	CHECK(s.hint.off == NULL); /* the writer frees the offsets */

	char path[128];
	snprintf(path, sizeof path, "%s/0000000001.hint", tmpdir);
	size_t hlen;
	unsigned char *hint = read_file(path, &hlen);
	struct kvs__hint_meta meta;
	size_t at;
	CHECK(kvs__hint_check(hint, hlen, &meta, &at));
	CHECK(meta.count == n && meta.footer_off == footer_off &&
	      meta.min_seq == min_seq);
	check_hint(hint, hlen);
	/* The writer lists exactly the records, in order. */
	size_t hp = at;
	for (size_t i = 0; i < n; i++) {
		struct kvs_record e, r;
		uint32_t crc;
		const char *why;
		CHECK(kvs__hint_next(hint, hlen - 5, &hp, &e) == KVS__DEC_OK);
		CHECK(kvs__rec_decode(seg + offs[i], footer_off - offs[i], &r,
				      &crc, &why) == KVS__DEC_OK);
		CHECK(e.offset == offs[i] && e.length == r.length &&
		      e.type == r.type && e.seq == r.seq && e.klen == r.klen &&
		      e.vlen == r.vlen && e.count == r.count &&
		      e.expire_ms == r.expire_ms);
		CHECK(e.klen == 0 || memcmp(e.key, r.key, e.klen) == 0);
	}
	CHECK(hp == hlen - 5);
	/* Valid exactly when every record is canonically encoded: a record
	 * with longer integer heads than needed decodes, but its length is
	 * not the one validation computes (the hint is refused and the
	 * segment scanned instead - never written by the engine). */
	uint64_t bad;
	const char *why = kvs__hint_validate(hint, hlen, at, &meta, &bad);
	if (first_noncanonical == SIZE_MAX)
		CHECK(why == NULL);
	else
		CHECK(why != NULL && bad == first_noncanonical);
	free(hint);
	free(seg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_hint(data, size);
	if (size >= KVS__HDR_LEN + 5) {
		unsigned char *c = xmalloc(size);
		memcpy(c, data, size);
		kvs__rec_encode_crc(c + size - 5, kvs__crc32c(0, c, size - 5));
		check_hint(c, size);
		memcpy(c, kvs__hint_header, KVS__HDR_LEN);
		kvs__rec_encode_crc(c + size - 5, kvs__crc32c(0, c, size - 5));
		check_hint(c, size);
		free(c);
	}
	if (size >= KVS__HDR_LEN &&
	    memcmp(data, kvs__seg_header, KVS__HDR_LEN) == 0)
		check_writer(data, size);
	return 0;
}
