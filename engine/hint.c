/* hint.c - hint files: the keys and record locations of a sealed segment, so
 * that opening a store reads hints instead of values (Bitcask's idea, here
 * as a checksummed CBOR Sequence; the layout is in engine_int.h). */
#include "hint.h"
#include "io.h"
#include "mapguard.h"
#include "segment.h"

#include <cbor.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const unsigned char kvs__hint_header[KVS__HDR_LEN] = {
	0xd9, 0xd9, 0xf8, 0xda, 'k', 'v', 'h', '1', 0x43, 'B', 'O', 'R',
};

char *kvs__hint_path(const char *dir, uint32_t id)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%010u.hint", dir, id) < 0)
		return NULL;
	return p;
}

/* A growing output buffer. */
struct out {
	unsigned char *p;
	size_t len, cap;
};

static bool reserve(struct out *o, size_t more)
{
	if (o->len + more <= o->cap)
		return true;
	size_t cap = o->cap ? o->cap : 4096;
	while (cap < o->len + more)
		cap *= 2;
	unsigned char *p = realloc(o->p, cap);
	if (!p)
		return false;
	o->p = p;
	o->cap = cap;
	return true;
}

void kvs__hint_add(struct kvs__hintbuf *hb, uint64_t off)
{
	if (hb->failed)
		return;
	if (hb->n == hb->cap) {
		size_t cap = hb->cap ? hb->cap * 2 : 1024;
		uint32_t *p = realloc(hb->off, cap * sizeof *p);
		if (!p) {
			free(hb->off); /* no hint; the next open scans instead */
			*hb = (struct kvs__hintbuf){ .failed = true };
			return;
		}
		hb->off = p;
		hb->cap = cap;
	}
	hb->off[hb->n++] = (uint32_t)off;
}

void kvs__hint_reset(struct kvs__hintbuf *hb)
{
	free(hb->off);
	memset(hb, 0, sizeof *hb);
}

static int map_fault(const struct kvs__seg *seg, uint64_t off)
{
	return kvs__err(KVS_EIO, "%s: mapped page could not be read (file "
			"truncated or I/O error); record at offset %llu",
			seg->path, (unsigned long long)off);
}

/* kvs__rec_decode_head on mapped bytes, guarded (the file may have been
 * cut short under the process: see mapguard.c); false if a page could not
 * be read. */
static bool guarded_head(const unsigned char *p, size_t len,
			 struct kvs_record *r, const char **why,
			 enum kvs__dec *d)
{
	if (sigsetjmp(kvs__mapguard.jb, 0) != 0)
		return false;
	KVS__MAP_ARM();
	*d = kvs__rec_decode_head(p, len, r, why);
	KVS__MAP_DISARM();
	return true;
}

int kvs__seg_write_hint(const char *dir, struct kvs__seg *seg,
			uint64_t footer_off)
{
	struct kvs__hintbuf *hb = &seg->hint;
	const unsigned char *map = __atomic_load_n(&seg->map, __ATOMIC_ACQUIRE);
	struct out o = { 0 };
	int rc = KVS_OK;

	if (hb->failed || !reserve(&o, KVS__HDR_LEN + 32 + hb->n * 40)) {
		rc = kvs__err(KVS_ENOMEM, "out of memory for a hint file");
		goto out;
	}
	if (!map || seg->map_len < footer_off) {
		rc = kvs__err(KVS_EINVAL, "%s: not mapped for its hint",
			      seg->path);
		goto out;
	}
	memcpy(o.p, kvs__hint_header, KVS__HDR_LEN);
	o.len = KVS__HDR_LEN;
	o.len += cbor_encode_array_start(3, o.p + o.len, o.cap - o.len);
	o.len += cbor_encode_uint(hb->n, o.p + o.len, o.cap - o.len);
	o.len += cbor_encode_uint(footer_off, o.p + o.len, o.cap - o.len);
	o.len += cbor_encode_uint(seg->min_seq, o.p + o.len, o.cap - o.len);
	/* Each entry from its record's head: the records were written by
	 * this process, or checked when the segment was scanned. */
	for (size_t i = 0; i < hb->n; i++) {
		uint64_t off = hb->off[i];
		struct kvs_record r;
		const char *why = "record beyond the footer";
		enum kvs__dec d = KVS__DEC_BAD;
		if (off < footer_off &&
		    !guarded_head(map + off, footer_off - off, &r, &why, &d)) {
			rc = map_fault(seg, off);
			goto out;
		}
		if (d != KVS__DEC_OK) {
			rc = kvs__err(KVS_ECORRUPT,
				      "%s: bad record at offset %llu: %s",
				      seg->path, (unsigned long long)off, why);
			goto out;
		}
		if (!reserve(&o, 7 * 9 + r.klen + 5)) {
			rc = kvs__err(KVS_ENOMEM, "out of memory for a hint file");
			goto out;
		}
		unsigned char *p = o.p;
		size_t n = o.len, cap = o.cap;
		/* A TXN's entry carries its count where a SET's has the value
		 * length; a SETX's is op 5 with the expiry as a 7th item. */
		bool x = r.type == KVS_REC_SET && r.expire_ms > 0;
		n += cbor_encode_array_start(x ? 7 : 6, p + n, cap - n);
		n += cbor_encode_uint(r.seq, p + n, cap - n);
		n += cbor_encode_uint(x ? KVS__OP_SETX : (uint64_t)r.type, p + n,
				      cap - n);
		n += cbor_encode_bytestring_start(r.klen, p + n, cap - n);
		if (r.klen && !kvs__map_copy(p + n, r.key, r.klen)) {
			rc = map_fault(seg, off);
			goto out;
		}
		n += r.klen;
		n += cbor_encode_uint(off, p + n, cap - n);
		n += cbor_encode_uint(r.length, p + n, cap - n);
		n += cbor_encode_uint(r.type == KVS_REC_TXN ? r.count : r.vlen,
				      p + n, cap - n);
		if (x)
			n += cbor_encode_uint((uint64_t)r.expire_ms, p + n,
					      cap - n);
		o.len = n;
	}
	if (!reserve(&o, 5)) {
		rc = kvs__err(KVS_ENOMEM, "out of memory for a hint file");
		goto out;
	}
	cbor_encode_uint32(kvs__crc32c(0, o.p, o.len), o.p + o.len, 5);
	char name[32];
	snprintf(name, sizeof name, "%010u.hint", seg->id);
	/* No sync: a hint lost or torn by a crash fails its checksum and
	 * the segment is scanned instead. */
	rc = kvs__io_write_file(dir, name, o.p, o.len + 5, false);
out:
	free(o.p);
	kvs__hint_reset(hb);
	return rc;
}

bool kvs__hint_check(const unsigned char *buf, size_t len,
		     struct kvs__hint_meta *meta, size_t *entries_at)
{
	struct kvs__item it;
	size_t pos = KVS__HDR_LEN;
	uint32_t want;
	if (len < KVS__HDR_LEN + 5 || memcmp(buf, kvs__hint_header, KVS__HDR_LEN) ||
	    !kvs__crc_item(buf + len - 5, &want) ||
	    kvs__crc32c(0, buf, len - 5) != want)
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

bool kvs__hint_peek_count(const char *dir, uint32_t id, uint64_t *count)
{
	char *path = kvs__hint_path(dir, id);
	if (!path)
		return false;
	int fd = kvs__io_open(path, O_RDONLY | O_CLOEXEC, 0);
	free(path);
	if (fd < 0)
		return false;
	/* The header, a 3-item array head and the count: at most 12 + 1 + 9
	 * bytes. */
	unsigned char buf[KVS__HDR_LEN + 10];
	struct stat st;
	ssize_t got = fstat(fd, &st) != 0 ? -1
					  : kvs__io_pread_full(fd, buf, sizeof buf, 0);
	kvs__io_close(fd);
	struct kvs__item it;
	size_t pos = KVS__HDR_LEN;
	if (got < KVS__HDR_LEN + 2 ||
	    memcmp(buf, kvs__hint_header, KVS__HDR_LEN) != 0 ||
	    kvs__cbor_next(buf, (size_t)got, &pos, &it) != KVS__DEC_OK ||
	    it.kind != KVS__IT_ARRAY || it.u != 3 ||
	    kvs__cbor_next(buf, (size_t)got, &pos, &it) != KVS__DEC_OK ||
	    it.kind != KVS__IT_UINT)
		return false;
	/* No more entries than the file could hold: the smallest is 7 bytes
	 * (a FLUSH's: array head, seq, op, empty key, offset, length, value
	 * length), so a damaged count is at most a few times the truth. */
	if (st.st_size < KVS__HDR_LEN ||
	    it.u > ((uint64_t)st.st_size - KVS__HDR_LEN) / 7)
		return false;
	*count = it.u;
	return true;
}

enum kvs__dec kvs__hint_next(const unsigned char *buf, size_t len,
			     size_t *pos, struct kvs_record *rec)
{
	struct kvs__item it;
	uint64_t v[7];
	memset(rec, 0, sizeof *rec);
	if (kvs__cbor_next(buf, len, pos, &it) != KVS__DEC_OK ||
	    it.kind != KVS__IT_ARRAY || (it.u != 6 && it.u != 7))
		return KVS__DEC_BAD;
	uint64_t nitems = it.u;
	for (uint64_t i = 0; i < nitems; i++) {
		if (kvs__cbor_next(buf, len, pos, &it) != KVS__DEC_OK)
			return KVS__DEC_BAD;
		if (i == 2) {
			if (it.kind != KVS__IT_BSTR || it.n > KVS_MAX_KEY)
				return KVS__DEC_BAD;
			rec->key = it.p;
			rec->klen = it.n;
			continue;
		}
		if (it.kind != KVS__IT_UINT)
			return KVS__DEC_BAD;
		v[i] = it.u;
	}
	/* 6 items: SET, REMOVE, TXN (vlen is its count) or FLUSH (no key);
	 * 7 items: SETX, its expiry last.  Version-1 hints have only the
	 * first two. */
	uint64_t op = v[1];
	bool keyed = op == KVS_REC_SET || op == KVS_REC_REMOVE ||
		     op == KVS__OP_SETX;
	if (nitems != (op == KVS__OP_SETX ? 7u : 6u) || op == KVS_REC_FOOTER ||
	    op > KVS__OP_SETX || v[4] > UINT32_MAX ||
	    (keyed ? rec->klen == 0 : rec->klen != 0) ||
	    (op != KVS_REC_TXN && v[5] > KVS_MAX_VALUE) ||
	    (op == KVS__OP_SETX && (v[6] == 0 || v[6] > INT64_MAX)))
		return KVS__DEC_BAD;
	rec->seq = v[0];
	rec->type = op == KVS__OP_SETX ? KVS_REC_SET : (enum kvs_record_type)op;
	rec->offset = v[3];
	rec->length = v[4];
	if (op == KVS_REC_TXN)
		rec->count = v[5];
	else
		rec->vlen = v[5];
	if (op == KVS__OP_SETX)
		rec->expire_ms = (int64_t)v[6];
	return KVS__DEC_OK;
}

const char *kvs__hint_validate(const unsigned char *buf, size_t len,
			       size_t entries_at,
			       const struct kvs__hint_meta *meta, uint64_t *bad)
{
	size_t pos = entries_at;
	uint64_t end_prev = KVS__HDR_LEN;
	*bad = 0;
	if (meta->footer_off < KVS__HDR_LEN)
		return "footer offset inside the header";
	for (uint64_t i = 0; i < meta->count; i++) {
		struct kvs_record r;
		*bad = i;
		if (kvs__hint_next(buf, len - 5, &pos, &r) != KVS__DEC_OK)
			return "entry does not decode";
		if (r.offset < end_prev)
			return "record overlaps the previous one or the header";
		if (r.length > meta->footer_off ||
		    r.offset > meta->footer_off - r.length)
			return "record would end past the footer";
		if (r.type != KVS_REC_SET && r.vlen != 0)
			return "a value length on a record without a value";
		if (r.seq < meta->min_seq)
			return "sequence number below the segment's lowest";
		/* Lengths: exactly what the record's items encode to, so
		 * that heads + key + value fill the record (a wrong value
		 * length made a read's head length wrap). */
		if (r.length != kvs__rec_len_x(r.type, r.seq, r.expire_ms,
					       r.klen, r.type == KVS_REC_TXN
							       ? r.count
							       : r.vlen))
			return "record length does not match its key and value "
			       "lengths";
		end_prev = r.offset + r.length;
	}
	*bad = meta->count;
	if (pos != len - 5)
		return "bytes after the last entry";
	return NULL;
}
