/* reader.c - record-by-record reading of a segment file for tools and tests,
 * through the engine's own record codec.  Takes no lock.  The file is read
 * into memory rather than mapped, so a file that another process truncates
 * meanwhile (recovery cutting a torn tail) cannot kill the reader with
 * SIGBUS. */
#include "hint.h"
#include "io.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct kvs_reader {
	char *path;
	unsigned char *map;
	uint64_t size;
	uint64_t pos;
	bool failed;
	bool footer;      /* a footer was read: nothing may follow */
	uint64_t records; /* records read so far (all but the footer) */
	uint64_t last_seq;
	uint32_t chain;   /* CRC32C over their crc fields */
	bool hint;        /* a hint file: entries end 5 bytes before size */
	uint64_t hint_left; /* entries still to read */
};

int kvs_reader_open(const char *path, struct kvs_reader **out)
{
	struct stat st;
	struct kvs_reader *r = NULL;
	int rc, fd;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: open", path);
	if (fstat(fd, &st) != 0) {
		rc = kvs__err_errno(KVS_EIO, errno, "%s: stat", path);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = kvs__err(KVS_EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	r = calloc(1, sizeof *r);
	if (!r || !(r->path = strdup(path)) ||
	    !(r->map = malloc(st.st_size > 0 ? (size_t)st.st_size : 1))) {
		rc = kvs__err(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	/* Read what is there now; a file that shrinks meanwhile just reads
	 * short, and its tail shows up as a record that runs past the end
	 * of the data. */
	ssize_t got = kvs__io_pread_full(fd, r->map, (size_t)st.st_size, 0);
	if (got < 0) {
		rc = kvs__err_errno(KVS_EIO, (int)-got, "%s: read", path);
		goto fail;
	}
	r->size = (uint64_t)got;
	close(fd);
	fd = -1;
	struct kvs__hint_meta meta;
	size_t at;
	if (r->size >= KVS__HDR_LEN && memcmp(r->map, kvs__hint_header,
					       KVS__HINT_MAGIC_LEN) == 0) {
		if (!kvs__hint_check(r->map, r->size, &meta, &at)) {
			rc = kvs__err(KVS_ECORRUPT, "%s: bad hint file (checksum "
				      "or header)", path);
			goto fail;
		}
		r->hint = true;
		r->hint_left = meta.count;
		r->pos = at;
		*out = r;
		return KVS_OK;
	}
	if (r->size < KVS__HDR_LEN ||
	    memcmp(r->map, kvs__seg_header, KVS__HDR_LEN) != 0) {
		rc = kvs__err(KVS_ECORRUPT,
			      "%s: bad record at offset 0: not a kvs segment "
			      "file (missing header)",
			      path);
		goto fail;
	}
	r->pos = KVS__HDR_LEN;
	*out = r;
	return KVS_OK;
fail:
	if (fd >= 0)
		close(fd);
	kvs_reader_close(r);
	return rc;
}

static int hint_next(struct kvs_reader *r, struct kvs_record *rec)
{
	if (r->hint_left == 0) {
		memset(rec, 0, sizeof *rec);
		if (r->pos != r->size - 5) {
			r->failed = true;
			return kvs__err(KVS_ECORRUPT, "%s: bad hint file: "
					"trailing bytes at offset %llu", r->path,
					(unsigned long long)r->pos);
		}
		return KVS_EEND;
	}
	size_t pos = (size_t)r->pos;
	if (kvs__hint_next(r->map, (size_t)r->size - 5, &pos, rec) !=
	    KVS__DEC_OK) {
		r->failed = true;
		return kvs__err(KVS_ECORRUPT, "%s: bad hint entry at offset %llu",
				r->path, (unsigned long long)r->pos);
	}
	r->pos = pos;
	r->hint_left--;
	return KVS_OK;
}

int kvs_reader_next(struct kvs_reader *r, struct kvs_record *rec)
{
	if (r->hint && !r->failed)
		return hint_next(r, rec);
	if (r->failed || r->pos >= r->size) {
		memset(rec, 0, sizeof *rec);
		rec->offset = r->pos;
		if (r->failed)
			return kvs__err(KVS_ECORRUPT, "%s: bad record at offset "
					"%llu", r->path,
					(unsigned long long)r->pos);
		return KVS_EEND;
	}
	uint32_t crc;
	const char *why = "";
	enum kvs__dec d = kvs__rec_decode(r->map + r->pos, r->size - r->pos,
					  rec, &crc, &why);
	rec->offset = r->pos;
	if (d == KVS__DEC_OK && r->footer) {
		d = KVS__DEC_BAD;
		why = "data after the footer";
	}
	if (d == KVS__DEC_OK && rec->type == KVS_REC_FOOTER &&
	    (rec->count != r->records || rec->chain != r->chain ||
	     (r->records && rec->seq != r->last_seq))) {
		d = KVS__DEC_BAD;
		why = "footer does not match the segment's records";
	}
	if (d != KVS__DEC_OK) {
		r->failed = true;
		return kvs__err(KVS_ECORRUPT, "%s: bad record at offset %llu: %s",
				r->path, (unsigned long long)r->pos,
				why);
	}
	if (rec->type == KVS_REC_FOOTER) {
		r->footer = true;
	} else {
		r->records++;
		r->last_seq = rec->seq;
		r->chain = kvs__crc32c(r->chain,
				       r->map + r->pos + rec->length - 4, 4);
	}
	r->pos += rec->length;
	return KVS_OK;
}

uint64_t kvs_reader_size(const struct kvs_reader *r)
{
	return r->size;
}

void kvs_reader_close(struct kvs_reader *r)
{
	if (!r)
		return;
	free(r->map);
	free(r->path);
	free(r);
}

int kvs_reader_sealed(const struct kvs_reader *r)
{
	return r->footer;
}

int kvs_reader_is_hint(const struct kvs_reader *r)
{
	return r->hint;
}
