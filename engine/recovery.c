/* recovery.c - opening a store: replays every segment, oldest first, into the
 * index.  The newest write of a key is decided by sequence number, never by
 * file order (compaction rewrites old records into new files).  A torn or
 * corrupt tail of the newest segment is cut off with a warning; a bad record
 * anywhere else fails the open, naming the file and offset. */
#include "engine_int.h"

#include <dirent.h>
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
		if (len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
			char path[4096];
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
			continue;
		}
		uint32_t id = seg_id_of(de->d_name);
		if (!id)
			continue;
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

/* Account a record that no index entry points at. */
static void count_dead(struct kvs__seg *seg, uint64_t len)
{
	seg->dead_bytes += len;
}

/* Apply one SET or REMOVE record found at recovery.  Entries that are
 * replaced are freed at once: no reader exists before kvs_open returns. */
static int replay(struct kvs *db, struct kvs__seg *seg, uint64_t off,
		  const struct kvs_record *rec)
{
	uint64_t hash = kvs__index_hash(db->index, rec->key, rec->klen);
	struct kvs__entry *old =
		kvs__index_lookup(db->index, hash, rec->key, rec->klen);
	if (old && atomic_load(&old->seq) > rec->seq) {
		count_dead(seg, rec->length); /* an older write of the key */
		return KVS_OK;
	}
	struct kvs__entry *e = kvs__entry_new(rec->key, rec->klen);
	if (!e)
		return kvs__err(KVS_ENOMEM, "out of memory");
	e->seg = seg;
	e->off = off;
	e->rec_len = (uint32_t)rec->length;
	e->vlen = (uint32_t)rec->vlen;
	e->tomb = rec->type == KVS_REC_REMOVE;
	atomic_store_explicit(&e->seq, rec->seq, memory_order_release);
	if (e->tomb)
		count_dead(seg, rec->length);
	else
		seg->live_bytes += rec->length;
	struct kvs__entry *prev = kvs__index_put(db->index, hash, e);
	if (prev) {
		if (!prev->tomb) {
			prev->seg->live_bytes -= prev->rec_len;
			prev->seg->dead_bytes += prev->rec_len;
		}
		free(prev);
	}
	return KVS_OK;
}

/* Drop the tombstones kept while replaying; count live keys. */
static void drop_tombstones(struct kvs *db)
{
	struct cds_lfht *ht = kvs__index_table(db->index);
	struct cds_lfht_iter it;
	struct kvs__entry *e;
	uint64_t live = 0;
	cds_lfht_for_each_entry(ht, &it, e, node) {
		if (e->tomb) {
			cds_lfht_del(ht, &e->node);
			kvs__entry_free_rcu(e);
		} else {
			live++;
		}
	}
	db->live_keys = live;
}

/* Is there a complete, valid record anywhere in map[from..size)?  Tells a
 * torn tail (nothing valid after the damage) from damage in the middle. */
static bool valid_record_after(const unsigned char *map, uint64_t from,
			       uint64_t size)
{
	for (uint64_t p = from; p < size; p++) {
		if (map[p] != 0x84 && map[p] != 0x85)
			continue;
		struct kvs_record rec;
		uint32_t crc;
		const char *why;
		if (kvs__rec_decode(map + p, size - p, &rec, &crc, &why) ==
		    KVS__DEC_OK)
			return true;
	}
	return false;
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
	if (ftruncate(seg->fd, (off_t)keep) != 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: truncate", seg->path);
	int e = kvs__io_fdatasync(seg->fd);
	if (e)
		return kvs__err_errno(KVS_EIO, e, "%s: fdatasync", seg->path);
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
	uint64_t size = (uint64_t)st.st_size;

	if (size < KVS__HDR_LEN) {
		/* Only a crash while creating the newest file leaves it this
		 * short; anything else is damage. */
		unsigned char head[KVS__HDR_LEN];
		ssize_t got = pread(seg->fd, head, (size_t)size, 0);
		if (!newest || got != (ssize_t)size ||
		    memcmp(head, kvs__seg_header, (size_t)size) != 0)
			return kvs__err(KVS_ECORRUPT,
					"%s: bad record at offset 0: file too "
					"short for a segment header",
					seg->path);
		kvs__log(db, KVS_LOG_WARN,
			 "%s: incomplete header of a new segment: rewriting it",
			 seg->path);
		int e = kvs__io_pwrite_all(seg->fd, kvs__seg_header,
					   KVS__HDR_LEN, 0);
		if (!e)
			e = kvs__io_fdatasync(seg->fd);
		if (e)
			return kvs__err_errno(KVS_EIO, e, "%s: write", seg->path);
		seg->size = seg->synced = KVS__HDR_LEN;
		return KVS_OK;
	}

	unsigned char *map = mmap(NULL, size, PROT_READ, MAP_SHARED, seg->fd, 0);
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

	uint64_t pos = KVS__HDR_LEN;
	bool footer = false;
	while (pos < size) {
		struct kvs_record rec;
		uint32_t crc;
		const char *why = "";
		enum kvs__dec d =
			kvs__rec_decode(map + pos, size - pos, &rec, &crc, &why);
		if (d == KVS__DEC_OK && rec.type == KVS_REC_FOOTER &&
		    (rec.count != seg->records || rec.chain != seg->chain ||
		     (seg->records && rec.seq != seg->last_seq))) {
			d = KVS__DEC_BAD;
			why = "footer does not match the segment's records";
		}
		if (d == KVS__DEC_OK && footer) {
			d = KVS__DEC_BAD;
			why = "data after the footer";
		}
		if (d != KVS__DEC_OK) {
			/* A tail is damage with nothing valid after it.  A
			 * "short" record is not enough to tell: a flipped
			 * length byte also claims more bytes than the file
			 * has.  (A torn record whose own value holds a whole
			 * encoded record would be taken for damage in the
			 * middle: the open then fails rather than drop it.) */
			bool is_tail =
				(rec.length && pos + rec.length == size) ||
				!valid_record_after(map, pos + 1, size);
			if (newest && is_tail && !footer) {
				rc = truncate_tail(db, seg, pos, size, why);
				size = pos;
				break;
			}
			rc = kvs__err(KVS_ECORRUPT,
				      "%s: bad record at offset %llu: %s",
				      seg->path, (unsigned long long)pos, why);
			goto out;
		}
		if (rec.type == KVS_REC_FOOTER) {
			footer = true;
			pos += rec.length;
			continue;
		}
		if ((rc = replay(db, seg, pos, &rec)) != KVS_OK)
			goto out;
		seg->records++;
		seg->last_seq = rec.seq;
		seg->chain = kvs__crc32c(seg->chain, map + pos + rec.length - 4, 4);
		if (rec.seq > *max_seq)
			*max_seq = rec.seq;
		pos += rec.length;
	}
	if (rc != KVS_OK)
		goto out;
	seg->size = seg->synced = size;
	if (!footer && !newest) {
		rc = kvs__err(KVS_ECORRUPT,
			      "%s: bad record at offset %llu: sealed segment "
			      "has no footer (cut short?)",
			      seg->path, (unsigned long long)size);
		goto out;
	}
	if (footer) {
		seg->sealed = true;
		seg->map_len = size;
		madvise(map, size, MADV_RANDOM);
		__atomic_store_n(&seg->map, (const unsigned char *)map,
				 __ATOMIC_RELEASE);
		return KVS_OK;
	}
out:
	munmap(map, size > 0 ? size : 1);
	return rc;
}

int kvs__recover(struct kvs *db)
{
	uint32_t *ids = NULL;
	size_t n = 0;
	uint64_t max_seq = 0;
	struct kvs__seg **tail = &db->segs;
	int rc = list_segments(db->dir, &ids, &n);
	if (rc)
		return rc;

	/* Nothing reads the index yet; the read lock only satisfies
	 * cds_lfht's calling rules. */
	kvs__read_lock();
	for (size_t i = 0; i < n; i++) {
		struct kvs__seg *seg;
		if ((rc = kvs__seg_open(db->dir, ids[i], &seg)) != KVS_OK)
			break;
		*tail = seg;
		tail = &seg->next;
		db->active = seg;
		if ((rc = load_segment(db, seg, i == n - 1, &max_seq)) != KVS_OK)
			break;
	}
	if (rc == KVS_OK)
		drop_tombstones(db);
	kvs__read_unlock();
	db->next_seg_id = n ? ids[n - 1] + 1 : 1;
	free(ids);
	if (rc)
		return rc;

	db->next_seq = max_seq + 1;
	if (!db->active || db->active->sealed) {
		struct kvs__seg *seg;
		if ((rc = kvs__seg_create(db->dir, db->next_seg_id, &seg)))
			return rc;
		db->next_seg_id++;
		*tail = seg;
		db->active = seg;
	}
	return KVS_OK;
}
