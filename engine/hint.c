/* hint.c - hint files: the keys and record locations of a sealed segment, so
 * that opening a store reads hints instead of values (Bitcask's idea, here
 * as a checksummed CBOR Sequence; the layout is in engine_int.h). */
#include "engine_int.h"

#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char hint_header[KVS__HDR_LEN] = {
	0xd9, 0xd9, 0xf8, 0xda, 'k', 'v', 'h', '1', 0x43, 'B', 'O', 'R',
};

char *kvs__hint_path(const char *dir, uint32_t id)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%010u.hint", dir, id) < 0)
		return NULL;
	return p;
}

static bool reserve(struct kvs__hintbuf *hb, size_t more)
{
	if (hb->failed)
		return false;
	if (hb->len + more <= hb->cap)
		return true;
	size_t cap = hb->cap ? hb->cap : 4096;
	while (cap < hb->len + more)
		cap *= 2;
	unsigned char *p = realloc(hb->buf, cap);
	if (!p) {
		hb->failed = true; /* no hint; the next open scans instead */
		return false;
	}
	hb->buf = p;
	hb->cap = cap;
	return true;
}

void kvs__hint_add(struct kvs__hintbuf *hb, enum kvs_record_type type,
		   uint64_t seq, const void *key, size_t klen, uint64_t off,
		   uint64_t rec_len, uint64_t vlen)
{
	if (!reserve(hb, 6 * 9 + klen))
		return;
	unsigned char *o = hb->buf;
	size_t n = hb->len, cap = hb->cap;
	n += cbor_encode_array_start(6, o + n, cap - n);
	n += cbor_encode_uint(seq, o + n, cap - n);
	n += cbor_encode_uint((uint64_t)type, o + n, cap - n);
	n += cbor_encode_bytestring_start(klen, o + n, cap - n);
	memcpy(o + n, key, klen);
	n += klen;
	n += cbor_encode_uint(off, o + n, cap - n);
	n += cbor_encode_uint(rec_len, o + n, cap - n);
	n += cbor_encode_uint(vlen, o + n, cap - n);
	hb->len = n;
	hb->count++;
}

void kvs__hint_reset(struct kvs__hintbuf *hb)
{
	free(hb->buf);
	memset(hb, 0, sizeof *hb);
}

int kvs__seg_write_hint(const char *dir, struct kvs__seg *seg,
			uint64_t footer_off)
{
	struct kvs__hintbuf *hb = &seg->hint;
	unsigned char head[KVS__HDR_LEN + 32];
	size_t hlen = KVS__HDR_LEN;
	int rc;

	memcpy(head, hint_header, KVS__HDR_LEN);
	hlen += cbor_encode_array_start(3, head + hlen, sizeof head - hlen);
	hlen += cbor_encode_uint(hb->count, head + hlen, sizeof head - hlen);
	hlen += cbor_encode_uint(footer_off, head + hlen, sizeof head - hlen);
	hlen += cbor_encode_uint(seg->min_seq, head + hlen, sizeof head - hlen);
	/* Make room in front of the entries for the header and meta item,
	 * and behind them for the crc. */
	if (hb->failed || !reserve(hb, hlen + 5)) {
		kvs__hint_reset(hb);
		return kvs__err(KVS_ENOMEM, "out of memory for a hint file");
	}
	memmove(hb->buf + hlen, hb->buf, hb->len);
	memcpy(hb->buf, head, hlen);
	size_t n = hlen + hb->len;
	cbor_encode_uint32(kvs__crc32c(0, hb->buf, n), hb->buf + n, 5);
	char name[32];
	snprintf(name, sizeof name, "%010u.hint", seg->id);
	/* No sync: a hint lost or torn by a crash fails its checksum and
	 * the segment is scanned instead. */
	rc = kvs__io_write_file(dir, name, hb->buf, n + 5, false);
	kvs__hint_reset(hb);
	return rc;
}

bool kvs__hint_check(const unsigned char *buf, size_t len,
		     struct kvs__hint_meta *meta, size_t *entries_at)
{
	struct kvs__item it;
	size_t pos = KVS__HDR_LEN;
	if (len < KVS__HDR_LEN + 5 || memcmp(buf, hint_header, KVS__HDR_LEN) ||
	    buf[len - 5] != 0x1a)
		return false;
	uint32_t want = (uint32_t)buf[len - 4] << 24 |
			(uint32_t)buf[len - 3] << 16 |
			(uint32_t)buf[len - 2] << 8 | buf[len - 1];
	if (kvs__crc32c(0, buf, len - 5) != want)
		return false;
	uint64_t v[3];
	if (kvs__cbor_next(buf, len - 5, &pos, &it) != KVS__DEC_OK ||
	    it.kind != KVS__IT_ARRAY || it.u != 3)
		return false;
	for (int i = 0; i < 3; i++) {
		if (kvs__cbor_next(buf, len - 5, &pos, &it) != KVS__DEC_OK ||
		    it.kind != KVS__IT_UINT)
			return false;
		v[i] = it.u;
	}
	meta->count = v[0];
	meta->footer_off = v[1];
	meta->min_seq = v[2];
	*entries_at = pos;
	return true;
}

enum kvs__dec kvs__hint_next(const unsigned char *buf, size_t len,
			     size_t *pos, struct kvs_record *rec)
{
	struct kvs__item it;
	uint64_t v[6];
	memset(rec, 0, sizeof *rec);
	if (kvs__cbor_next(buf, len, pos, &it) != KVS__DEC_OK ||
	    it.kind != KVS__IT_ARRAY || it.u != 6)
		return KVS__DEC_BAD;
	for (int i = 0; i < 6; i++) {
		if (kvs__cbor_next(buf, len, pos, &it) != KVS__DEC_OK)
			return KVS__DEC_BAD;
		if (i == 2) {
			if (it.kind != KVS__IT_BSTR || it.n == 0 ||
			    it.n > KVS_MAX_KEY)
				return KVS__DEC_BAD;
			rec->key = it.p;
			rec->klen = it.n;
			continue;
		}
		if (it.kind != KVS__IT_UINT)
			return KVS__DEC_BAD;
		v[i] = it.u;
	}
	if (v[1] > KVS_REC_REMOVE || v[4] > UINT32_MAX || v[5] > KVS_MAX_VALUE)
		return KVS__DEC_BAD;
	rec->seq = v[0];
	rec->type = (enum kvs_record_type)v[1];
	rec->offset = v[3];
	rec->length = v[4];
	rec->vlen = v[5];
	return KVS__DEC_OK;
}
