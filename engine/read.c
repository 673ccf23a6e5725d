/* read.c - copying a value out of the log, for kvs_get and for the
 * writer's INCR and APPEND (which read the old value): from a sealed
 * segment's mapping or
 * the active segment's window under the SIGBUS guard, or with one preadv
 * for a record past the window.  Every record is checked before its value
 * is returned (the head must be a SET of the key asked for, with the
 * index's value length, and the CRC must hold), so that an index or hint
 * bug becomes an error, never another key's value.  Any thread, inside its
 * read-side section. */
#include "engine_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int bad_record(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		      const char *why)
{
	int rc = kvs__err(KVS_ECORRUPT, "%s: bad record at offset %llu: %s",
			  seg->path, (unsigned long long)off, why);
	kvs__note_damage(db, seg, EBADMSG);
	return rc;
}

/* The record heads are at least an array, seq, type, key and value head of
 * one byte each. */
#define MIN_HEAD 5

/* Copy the value of `e` into buf, after checking that the record at e's
 * offset is a SET of e's key with e's value length (the key's bytes are in
 * cache anyway: the CRC reads them) and that its CRC holds.  Runs inside the
 * caller's read-side section: the segment (and its mapping or file
 * descriptor) cannot be released before the section ends. */
int kvs__read_value(struct kvs *db, const struct kvs__entry *e, void *buf)
{
	KVS__ASSERT_IN_RCU();
	struct kvs__seg *seg = e->seg;
	size_t klen = kvs__entry_klen(e);
	size_t vlen = e->vlen, rec_len = e->rec_len;
	const char *why = "";

	/* Nothing below may trust the entry: a wrong value length would make
	 * the head length wrap. */
	if (e->vlen == KVS__TOMB || rec_len < 5 + MIN_HEAD + klen ||
	    vlen > rec_len - 5 - MIN_HEAD - klen)
		return bad_record(db, seg, e->off,
				  "the index's record and value lengths do not "
				  "fit together");
	size_t hlen = rec_len - 5 - vlen;
	const unsigned char *map = __atomic_load_n(&seg->map, __ATOMIC_ACQUIRE);
	uint64_t map_len = map ? seg->map_len : 0;

	if (!map && seg->win && e->off + (uint64_t)rec_len <= seg->win_len) {
		map = seg->win;
		map_len = seg->win_len;
	}
	if (map) {
		if (e->off + (uint64_t)rec_len > map_len)
			return bad_record(db, seg, e->off,
					  "the record would end past the "
					  "segment");
		const unsigned char *rec = map + e->off;
		if (sigsetjmp(kvs__mapguard.jb, 0) != 0) {
			int rc = kvs__err(KVS_EIO,
					  "%s: mapped page could not be read "
					  "(file truncated or I/O error); "
					  "record at offset %llu",
					  seg->path, (unsigned long long)e->off);
			kvs__note_damage(db, seg, EIO);
			return rc;
		}
		KVS__MAP_ARM();
		bool head_ok = kvs__rec_head_is(rec, hlen, e->key, klen, vlen,
						&why);
		bool crc_ok = head_ok && kvs__rec_crc_ok(rec, rec_len);
		if (crc_ok)
			memcpy(buf, rec + hlen, vlen);
		KVS__MAP_DISARM();
		if (!head_ok)
			return bad_record(db, seg, e->off, why);
		if (!crc_ok)
			return bad_record(db, seg, e->off, "checksum mismatch");
		return KVS_OK;
	}
	/* The active segment, past its window: one preadv of head+key, value
	 * (straight into the caller's buffer) and crc. */
	unsigned char small[256], *head = small, crcb[5];
	if (hlen > sizeof small && !(head = malloc(hlen)))
		return kvs__err(KVS_ENOMEM, "out of memory");
	struct iovec iov[3] = {
		{ head, hlen }, { buf, vlen }, { crcb, 5 },
	};
	int rc = KVS_OK;
	ssize_t n = kvs__io_preadv_full(seg->fd, iov, 3, (off_t)e->off);
	if (n < 0) {
		rc = kvs__err_errno(KVS_EIO, (int)-n, "%s: read", seg->path);
		kvs__note_damage(db, seg, EIO);
	} else if ((size_t)n != rec_len) {
		rc = bad_record(db, seg, e->off, "short read");
	} else if (!kvs__rec_head_is(head, hlen, e->key, klen, vlen, &why)) {
		rc = bad_record(db, seg, e->off, why);
	} else {
		uint32_t crc = kvs__crc32c(kvs__crc32c(0, head, hlen), buf, vlen);
		uint32_t want_crc;
		if (!kvs__crc_item(crcb, &want_crc) || crc != want_crc)
			rc = bad_record(db, seg, e->off, "checksum mismatch");
	}
	if (head != small)
		free(head);
	return rc;
}
