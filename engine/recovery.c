/* recovery.c - opening a store: replays every segment, oldest first, into the
 * index.  The newest write of a key is decided by sequence number, never by
 * file order (compaction rewrites old records into new files).  A torn or
 * corrupt tail of the newest segment is cut off with a warning; a bad record
 * anywhere else fails the open, naming the file and offset. */
#include "engine_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parse "NNNNNNNNNN.seg" (exactly ten digits); 0 if the name is not one. */
static uint32_t seg_id_of(const char *name)
{
	uint64_t id = 0;
	for (int i = 0; i < 10; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		id = id * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + 10, ".seg") != 0 || id == 0 || id > UINT32_MAX)
		return 0;
	return (uint32_t)id;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Names of hint files found while listing (orphans are removed later). */
static _Thread_local char **hint_names;
static _Thread_local size_t n_hint_names;

static void hint_seen(const char *name)
{
	size_t len = strlen(name);
	if (len != 15 || strcmp(name + 10, ".hint") != 0)
		return;
	char **p = realloc(hint_names, (n_hint_names + 1) * sizeof *p);
	if (!p)
		return;
	hint_names = p;
	if ((hint_names[n_hint_names] = strdup(name)) != NULL)
		n_hint_names++;
}

/* Remove hint files whose segment is gone (a crash during compaction). */
static void remove_orphan_hints(struct kvs *db, const uint32_t *ids, size_t n)
{
	for (size_t i = 0; i < n_hint_names; i++) {
		char seg[32];
		memcpy(seg, hint_names[i], 10);
		strcpy(seg + 10, ".seg");
		uint32_t id = seg_id_of(seg);
		bool found = false;
		for (size_t j = 0; j < n && !found; j++)
			found = ids[j] == id;
		if (!found) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", db->dir,
				 hint_names[i]);
			kvs__io_unlink(path);
		}
		free(hint_names[i]);
	}
	free(hint_names);
	hint_names = NULL;
	n_hint_names = 0;
}

/* List segment ids in ascending order; remove leftover temporary files. */
static int list_segments(const char *dir, uint32_t **ids_out, size_t *n_out)
{
	DIR *d = opendir(dir);
	if (!d)
		return kvs__err_errno(KVS_EIO, errno, "%s: opendir", dir);
	uint32_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		size_t tl = sizeof KVS__TMP_SUFFIX - 1;
		if (len > tl && strcmp(de->d_name + len - tl, KVS__TMP_SUFFIX) == 0) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			kvs__io_unlink(path);
			continue;
		}
		uint32_t id = seg_id_of(de->d_name);
		if (!id) {
			hint_seen(de->d_name);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint32_t *p = realloc(ids, cap * sizeof *ids);
			if (!p) {
				free(ids);
				closedir(d);
				return kvs__err(KVS_ENOMEM, "out of memory");
			}
			ids = p;
		}
		ids[n++] = id;
	}
	closedir(d);
	if (n > 1)
		qsort(ids, n, sizeof *ids, cmp_u32);
	*ids_out = ids;
	*n_out = n;
	return KVS_OK;
}

/* Cut the newest segment back to `keep` bytes. */
static int truncate_tail(struct kvs *db, struct kvs__seg *seg, uint64_t keep,
			 uint64_t size, const char *why)
{
	kvs__log(db, KVS_LOG_WARN,
		 "%s: torn or corrupt tail at offset %llu (%s): dropping %llu "
		 "bytes",
		 seg->path, (unsigned long long)keep, why,
		 (unsigned long long)(size - keep));
	if (kvs__io_ftruncate(seg->fd, (off_t)keep) != 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: truncate", seg->path);
	int e = kvs__io_fdatasync(seg->fd);
	if (e)
		return kvs__err_errno(KVS_EIO, e, "%s: fdatasync", seg->path);
	return KVS_OK;
}

/* Load a sealed segment from its hint file.  *used says whether it could;
 * when not, the caller scans the segment.  A hint that passes its checksum
 * but then does not decode is corruption, and fails the open. */
static int load_from_hint(struct kvs *db, struct kvs__seg *seg, uint64_t size,
			  bool *used, uint64_t *max_seq)
{
	char *path = kvs__hint_path(db->dir, seg->id);
	unsigned char *buf = NULL;
	size_t buf_len = 0;
	int fd = -1, rc = KVS_OK;
	struct stat st;
	*used = false;
	if (!path)
		return kvs__err(KVS_ENOMEM, "out of memory");
	fd = kvs__io_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0)
		goto out; /* no hint: scan */
	size_t len = (size_t)st.st_size;
	/* Read into memory mapped with its pages present (a malloc'd buffer
	 * would take a page fault per 4 KiB).  Read, not mapped: a file cut
	 * short meanwhile, or a failed page read, is a short read here (the
	 * segment is scanned instead), where a mapping would SIGBUS. */
	if (!(buf = kvs__map_anon(len)))
		goto out;
	buf_len = len;
	if (kvs__io_pread_full(fd, buf, len, 0) != (ssize_t)len)
		goto out;
	struct kvs__hint_meta meta;
	size_t pos;
	if (!kvs__hint_check(buf, len, &meta, &pos))
		goto bad_hint;

	/* The segment's footer must sit where the hint says and agree. */
	unsigned char foot[KVS__FOOTER_MAX];
	struct kvs_record frec;
	uint32_t fcrc;
	const char *why;
	if (meta.footer_off < KVS__HDR_LEN || meta.footer_off >= size ||
	    size - meta.footer_off > sizeof foot)
		goto bad_hint;
	size_t flen = (size_t)(size - meta.footer_off);
	if (kvs__io_pread_full(seg->fd, foot, flen, (off_t)meta.footer_off) !=
		(ssize_t)flen ||
	    kvs__rec_decode(foot, flen, &frec, &fcrc, &why) != KVS__DEC_OK ||
	    frec.type != KVS_REC_FOOTER || frec.length != flen ||
	    frec.count != meta.count)
		goto bad_hint;

	/* A hint that passes its checksum can still be wrong (a bug of the
	 * writer, a file from elsewhere): every entry is checked against the
	 * segment before the first is used, and any mismatch means the
	 * segment is scanned instead.  (Whether the record at an entry's
	 * offset holds the entry's key is checked by every read.) */
	uint64_t bad;
	const char *bad_why = kvs__hint_validate(buf, len, pos, &meta, &bad);
	if (bad_why) {
		kvs__log(db, KVS_LOG_WARN, "%s: entry %llu: %s; scanning the "
			 "segment instead", path, (unsigned long long)bad,
			 bad_why);
		goto out;
	}
	seg->size = seg->synced = size;
	if ((rc = kvs__seg_map(seg)) != KVS_OK)
		goto out;
	for (uint64_t i = 0; i < meta.count; i++) {
		struct kvs_record rec;
		if (kvs__hint_next(buf, len - 5, &pos, &rec) != KVS__DEC_OK) {
			rc = kvs__err(KVS_ECORRUPT, "%s: bad hint entry %llu",
				      path, (unsigned long long)i);
			goto out; /* cannot happen: validated above */
		}
		if ((rc = kvs__replay_record(db, seg, rec.offset, &rec)) != KVS_OK)
			goto out;
		if (rec.seq > *max_seq)
			*max_seq = rec.seq;
	}
	seg->records = frec.count;
	seg->last_seq = frec.seq;
	seg->chain = frec.chain;
	seg->min_seq = meta.min_seq;
	seg->sealed = true;
	*used = true;
	goto out;
bad_hint:
	kvs__log(db, KVS_LOG_WARN, "%s: bad or stale hint file; scanning the "
		 "segment instead", path);
out:
	if (fd >= 0)
		kvs__io_close(fd);
	if (buf)
		munmap(buf, buf_len);
	free(path);
	return rc;
}

/* A file shorter than a segment header.  Only a crash while creating the
 * newest file leaves one (with a prefix of the header): its header is
 * written again; anything else is damage. */
static int repair_short_header(struct kvs *db, struct kvs__seg *seg,
			       uint64_t size, bool newest)
{
	unsigned char head[KVS__HDR_LEN];
	ssize_t got = kvs__io_pread_full(seg->fd, head, (size_t)size, 0);
	if (!newest || got != (ssize_t)size ||
	    memcmp(head, kvs__seg_header, (size_t)size) != 0)
		return kvs__err(KVS_ECORRUPT,
				"%s: bad record at offset 0: file too short "
				"for a segment header",
				seg->path);
	kvs__log(db, KVS_LOG_WARN,
		 "%s: incomplete header of a new segment: rewriting it",
		 seg->path);
	int e = kvs__io_pwrite_all(seg->fd, kvs__seg_header, KVS__HDR_LEN, 0);
	if (!e)
		e = kvs__io_fdatasync(seg->fd);
	if (e)
		return kvs__err_errno(KVS_EIO, e, "%s: write", seg->path);
	seg->size = seg->synced = KVS__HDR_LEN;
	return KVS_OK;
}

/* Decode the record at map[pos..size) as the next record of seg: a footer
 * must vouch for the records before it and end the file.  *why on
 * failure. */
static enum kvs__dec next_record(const struct kvs__seg *seg,
				 const unsigned char *map, uint64_t pos,
				 uint64_t size, bool after_footer,
				 struct kvs_record *rec, const char **why)
{
	uint32_t crc;
	*why = "";
	enum kvs__dec d = kvs__rec_decode(map + pos, size - pos, rec, &crc, why);
	if (d != KVS__DEC_OK)
		return d;
	if (rec->type == KVS_REC_FOOTER &&
	    (rec->count != seg->records || rec->chain != seg->chain ||
	     (seg->records && rec->seq != seg->last_seq))) {
		*why = "footer does not match the segment's records";
		return KVS__DEC_BAD;
	}
	if (after_footer) {
		*why = "data after the footer";
		return KVS__DEC_BAD;
	}
	return KVS__DEC_OK;
}

/* Account a replayed record in seg's counts, chain and hint offsets. */
static void note_record(struct kvs__seg *seg, const unsigned char *map,
			uint64_t pos, const struct kvs_record *rec,
			uint64_t *max_seq)
{
	kvs__hint_add(&seg->hint, pos);
	if (rec->seq < seg->min_seq)
		seg->min_seq = rec->seq;
	seg->records++;
	seg->last_seq = rec->seq;
	seg->chain = kvs__crc32c(seg->chain, map + pos + rec->length - 4, 4);
	if (rec->seq > *max_seq)
		*max_seq = rec->seq;
}

/* Is the damage at map[pos..size) a torn tail (nothing valid after it)?
 * rec: what decoding at pos gave (its length, if it got that far).  A
 * "short" record is not enough to tell: a flipped length byte also claims
 * more bytes than the file has.  (A torn record whose own value holds a
 * whole encoded record is taken for damage in the middle: the open then
 * fails rather than drop it.) */
static bool is_tail(const unsigned char *map, uint64_t pos, uint64_t size,
		    const struct kvs_record *rec)
{
	return pos >= size || (rec->length && pos + rec->length == size) ||
	       !kvs__rec_any_valid(map + pos + 1, (size_t)(size - pos - 1));
}

/* The atomic batch opened by the marker `open` at map[pos]: its records
 * must be followed by the closing marker.  If the newest segment ends
 * before it (a crash while the batch was written), the whole batch is cut
 * off with the tail (*cut, *size shrinks to pos). */
static int check_batch(struct kvs *db, struct kvs__seg *seg,
		       const unsigned char *map, uint64_t pos,
		       const struct kvs_record *open, uint64_t *size,
		       bool newest, bool *cut)
{
	uint64_t q = pos + open->length;
	const char *why = "the batch has no closing marker";
	struct kvs_record r;
	memset(&r, 0, sizeof r);
	while (q < *size) {
		uint32_t crc;
		if (kvs__rec_decode(map + q, *size - q, &r, &crc, &why) !=
		    KVS__DEC_OK)
			break;
		if (r.type == KVS_REC_TXN) {
			if (r.count == open->seq)
				return KVS_OK;
			why = "a transaction marker inside a batch";
			goto corrupt;
		}
		if (r.type == KVS_REC_FOOTER) {
			why = "a footer inside an atomic batch";
			goto corrupt;
		}
		q += r.length;
		memset(&r, 0, sizeof r);
	}
	if (newest && is_tail(map, q, *size, &r)) {
		int rc = truncate_tail(db, seg, pos, *size,
				       "an atomic batch without its end");
		*size = pos;
		*cut = true;
		return rc;
	}
corrupt:
	return kvs__err(KVS_ECORRUPT, "%s: bad record at offset %llu: %s",
			seg->path, (unsigned long long)q, why);
}

/* Replay every record of map[0..*size).  The newest segment's torn tail is
 * cut off (*size shrinks); damage anywhere else fails.  *footer_off: the
 * footer's offset, 0 if the file has none. */
static int scan_records(struct kvs *db, struct kvs__seg *seg,
			const unsigned char *map, uint64_t *size, bool newest,
			uint64_t *footer_off, uint64_t *max_seq)
{
	uint64_t pos = KVS__HDR_LEN;
	*footer_off = 0;
	while (pos < *size) {
		struct kvs_record rec;
		const char *why;
		enum kvs__dec d = next_record(seg, map, pos, *size,
					      *footer_off != 0, &rec, &why);
		if (d != KVS__DEC_OK) {
			/* A tail is damage with nothing valid after it. */
			if (newest && *footer_off == 0 &&
			    is_tail(map, pos, *size, &rec)) {
				int rc = truncate_tail(db, seg, pos, *size, why);
				*size = pos;
				return rc;
			}
			return kvs__err(KVS_ECORRUPT,
					"%s: bad record at offset %llu: %s",
					seg->path, (unsigned long long)pos, why);
		}
		if (rec.type == KVS_REC_FOOTER) {
			*footer_off = pos;
		} else {
			if (rec.type == KVS_REC_TXN && rec.count == 0) {
				/* An atomic batch: all of it, or none. */
				bool cut = false;
				int rc = check_batch(db, seg, map, pos, &rec,
						     size, newest, &cut);
				if (rc != KVS_OK || cut)
					return rc;
			}
			int rc = kvs__replay_record(db, seg, pos, &rec);
			if (rc != KVS_OK)
				return rc;
			note_record(seg, map, pos, &rec, max_seq);
		}
		pos += rec.length;
	}
	return KVS_OK;
}

/* Replay one segment file.  `newest`: it is the last one, whose tail may be
 * torn.  On return seg->size, records, chain, last_seq and sealed are set;
 * a sealed segment keeps its mapping. */
static int load_segment(struct kvs *db, struct kvs__seg *seg, bool newest,
			uint64_t *max_seq)
{
	struct stat st;
	if (fstat(seg->fd, &st) != 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: stat", seg->path);
	uint64_t size = (uint64_t)st.st_size, map_size = size, footer_off;
	if (size < KVS__HDR_LEN)
		return repair_short_header(db, seg, size, newest);

	unsigned char *map = kvs__io_mmap(seg->fd, size);
	if (map == MAP_FAILED)
		return kvs__err_errno(KVS_EIO, errno, "%s: mmap", seg->path);
	madvise(map, size, MADV_SEQUENTIAL);
	int rc = KVS_OK;
	if (memcmp(map, kvs__seg_header, KVS__HDR_LEN) != 0) {
		rc = kvs__err(KVS_ECORRUPT,
			      "%s: bad record at offset 0: not a kvs segment "
			      "header",
			      seg->path);
		goto out;
	}
	rc = scan_records(db, seg, map, &size, newest, &footer_off, max_seq);
	if (rc != KVS_OK)
		goto out;
	seg->size = seg->synced = size;
	if (footer_off == 0 && !newest) {
		rc = kvs__err(KVS_ECORRUPT,
			      "%s: bad record at offset %llu: sealed segment "
			      "has no footer (cut short?)",
			      seg->path, (unsigned long long)size);
		goto out;
	}
	if (footer_off != 0) {
		seg->sealed = true;
		seg->map_len = size;
		madvise(map, size, MADV_RANDOM);
		__atomic_store_n(&seg->map, (const unsigned char *)map,
				 __ATOMIC_RELEASE);
		/* Its hint was missing or bad: write it for the next open. */
		if (kvs__seg_write_hint(db->dir, seg, footer_off) != KVS_OK)
			kvs__log(db, KVS_LOG_WARN, "%s", kvs_errmsg());
		return KVS_OK;
	}
out:
	munmap(map, map_size);
	return rc;
}

/*
 * Make the index the size its keys will need before the first insert
 * (kvs__index_presize): as many keys as the hint files count records, and
 * the files without a hint at the hinted files' bytes per record.  Dead
 * records make it an overestimate, which kvs__index_fit takes back once
 * the keys are counted.  A store without hints grows the table as it fills.
 * True when the table was sized.
 */
static bool presize_index(struct kvs *db, const uint32_t *ids, size_t n)
{
	uint64_t hinted = 0, hinted_bytes = 0, other_bytes = 0;
	for (size_t i = 0; i < n; i++) {
		char *path = kvs__seg_path(db->dir, ids[i]);
		if (!path)
			return false;
		struct stat st;
		int e = stat(path, &st);
		free(path);
		if (e != 0 || st.st_size <= 0)
			continue;
		uint64_t size = (uint64_t)st.st_size, count;
		/* The count is unchecked: no more than the segment could hold
		 * (its smallest record is a FLUSH: an array head, a one-byte
		 * seq and op, a 5-byte CRC), so a damaged hint asks for no
		 * bigger table than a real segment of that size may need. */
		if (i + 1 < n && kvs__hint_peek_count(db->dir, ids[i], &count) &&
		    size > KVS__HDR_LEN && count <= (size - KVS__HDR_LEN) / 8) {
			hinted += count;
			hinted_bytes += size;
		} else {
			other_bytes += size;
		}
	}
	if (hinted == 0)
		return false;
	double per_byte = (double)hinted / (double)hinted_bytes;
	kvs__index_presize(db->index,
			   hinted + (uint64_t)((double)other_bytes * per_byte));
	return true;
}

int kvs__recover(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	uint32_t *ids = NULL;
	size_t n = 0;
	uint64_t max_seq = 0;
	struct kvs__seg **tail = &db->segs;
	int rc = list_segments(db->dir, &ids, &n);
	if (rc)
		return rc;
	/* One clock for the whole replay: which keys expired while the store
	 * was closed is decided once. */
	db->rec.now_ms = kvs_now_ms();

	/* Nothing reads the index yet.  The read lock, which cds_lfht's
	 * calls need, is taken around each of them only (replay.c),
	 * never across I/O: a grace period of another
	 * store in this process (its kvs_close) would wait for it. */
	bool presized = n && presize_index(db, ids, n);
	if (n)
		kvs__replay_start(db);
	for (size_t i = 0; i < n; i++) {
		unsigned delay = kvs__testhook_recovery_delay();
		if (delay && i > 0)
			usleep(delay);
		struct kvs__seg *seg;
		if ((rc = kvs__seg_open(db->dir, ids[i], &seg)) != KVS_OK)
			break;
		*tail = seg;
		tail = &seg->next;
		db->active = seg;
		bool newest = i == n - 1, hinted = false;
		if (!newest) {
			struct stat st;
			if (fstat(seg->fd, &st) != 0) {
				rc = kvs__err_errno(KVS_EIO, errno, "%s: stat",
						    seg->path);
				break;
			}
			rc = load_from_hint(db, seg, (uint64_t)st.st_size,
					    &hinted, &max_seq);
			if (rc != KVS_OK)
				break;
			if (hinted) {
				db->counters.hint_loads++;
				continue;
			}
		}
		if ((rc = load_segment(db, seg, newest, &max_seq)) != KVS_OK)
			break;
	}
	/* The helper's failure, if any, is at an earlier record than the
	 * opener's: it is the one a one-thread open reports. */
	int jrc = kvs__replay_join(db);
	if (jrc != KVS_OK)
		rc = jrc;
	if (rc == KVS_OK) {
		kvs__replay_finish(db);
		if (presized)
			kvs__index_fit(db->index, db->live_keys);
	}
	remove_orphan_hints(db, ids, n);
	/* Past the last number, writes fail at the next rotation. */
	db->next_seg_id = !n ? 1
			  : ids[n - 1] >= KVS__SEG_ID_MAX ? KVS__SEG_ID_MAX
							: ids[n - 1] + 1;
	free(ids);
	if (rc)
		return rc;

	db->next_seq = max_seq + 1;
	if (!db->active || db->active->sealed) {
		struct kvs__seg *seg;
		if ((rc = kvs__seg_create(db->dir, db->next_seg_id, false, &seg)))
			return rc;
		db->next_seg_id++;
		*tail = seg;
		db->active = seg;
	}
	kvs__seg_window(db->active, db->opt.segment_size);
	return KVS_OK;
}
