/* reader.c - record-by-record reading of a segment file for tools and tests,
 * through the engine's own record codec.  Takes no lock. */
#include "engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct kvs_reader {
	char *path;
	const unsigned char *map;
	uint64_t size;
	uint64_t pos;
	bool failed;
	bool footer;      /* a footer was read: nothing may follow */
	uint64_t records; /* SET/REMOVE records read so far */
	uint64_t last_seq;
	uint32_t chain;   /* CRC32C over their crc fields */
};

int kvs_reader_open(const char *path, struct kvs_reader **out)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: open", path);
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return kvs__err_errno(KVS_EIO, e, "%s: stat", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return kvs__err(KVS_EINVAL, "%s: not a regular file", path);
	}
	struct kvs_reader *r = calloc(1, sizeof *r);
	if (!r || !(r->path = strdup(path))) {
		free(r);
		close(fd);
		return kvs__err(KVS_ENOMEM, "out of memory");
	}
	r->size = (uint64_t)st.st_size;
	if (r->size > 0) {
		void *p = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			kvs_reader_close(r);
			return kvs__err_errno(KVS_EIO, e, "%s: mmap", path);
		}
		r->map = p;
	}
	close(fd);
	if (r->size < KVS__HDR_LEN ||
	    memcmp(r->map, kvs__seg_header, KVS__HDR_LEN) != 0) {
		kvs_reader_close(r);
		return kvs__err(KVS_ECORRUPT,
				"%s: bad record at offset 0: not a kvs segment "
				"file (missing header)",
				path);
	}
	r->pos = KVS__HDR_LEN;
	*out = r;
	return KVS_OK;
}

int kvs_reader_next(struct kvs_reader *r, struct kvs_record *rec)
{
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
				d == KVS__DEC_SHORT ? "truncated record" : why);
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
	if (r->map)
		munmap((void *)r->map, r->size);
	free(r->path);
	free(r);
}

int kvs_reader_sealed(const struct kvs_reader *r)
{
	return r->footer;
}
