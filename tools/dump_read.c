/* dump_read.c - reads one file through the engine's record reader
 * (kvs_reader_*, so it never disagrees with the engine), listing or counting
 * its records, and with --verify of a DIR checks the segment's hint file
 * against it entry by entry. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump.h"

/* Open `path` with the engine's reader.  Returns NULL after printing why
 * it cannot be read. */
static struct kvs_reader *open_reader(const char *path)
{
	struct kvs_reader *r = NULL;
	struct stat sb;

	/* Say "not a regular file" for a directory or a FIFO before the
	 * reader opens it. */
	if (stat(path, &sb) != 0) {
		dump_complain("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(sb.st_mode)) {
		dump_complain("%s: not a regular file", path);
		return NULL;
	}
	int rc = kvs_reader_open(path, &r);
	if (rc != KVS_OK) {
		const char *m = kvs_errmsg();
		/* A hint file's checksum covers the whole file, so no byte can
		 * be blamed: say which bytes it covers and where it is. */
		if (*m && strstr(m, "bad hint file (checksum or header)") &&
		    sb.st_size > 5)
			dump_complain("%s: bad hint file: the checksum at offset "
				      "%llu does not match the %llu bytes before "
				      "it, or the header at offset 0 is damaged",
				      path, (unsigned long long)sb.st_size - 5,
				      (unsigned long long)sb.st_size - 5);
		else if (*m)
			dump_complain("%s", m);
		else
			dump_complain("%s: %s", path, kvs_strerror(rc));
		return NULL;
	}
	return r;
}

/*
 * --verify of a DIR checks each hint file against its segment in step with
 * the segment's reading: the engine writes a hint's entries in the order
 * of the segment's records, one per SET or REMOVE, so entry i must describe
 * record i exactly.  The first difference is reported and ends the check
 * of that hint file.
 */
struct hint_check {
	const char *path;     /* the hint file */
	const char *seg;      /* its segment */
	struct kvs_reader *r; /* NULL once done or failed */
	uint64_t entries;     /* matched so far */
	bool bad;             /* a problem was reported */
};

static void hint_check_stop(struct hint_check *hc)
{
	hc->bad = true;
	kvs_reader_close(hc->r);
	hc->r = NULL;
}

/* Report a difference, prefixed with the hint file's name, and stop. */
static void hint_check_fail(struct hint_check *hc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void hint_check_fail(struct hint_check *hc, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		dump_oom();
	dump_complain("%s: %s", hc->path, msg);
	free(msg);
	hint_check_stop(hc);
}

/* The reader's own error (its message names the hint file). */
static void hint_check_error(struct hint_check *hc)
{
	dump_complain("%s", kvs_errmsg());
	hint_check_stop(hc);
}

/* Start checking hint file `path` (NULL: none) against segment `seg`. */
static void hint_check_open(struct hint_check *hc, const char *path,
			    const char *seg)
{
	*hc = (struct hint_check){ .path = path, .seg = seg };
	if (!path)
		return;
	hc->r = open_reader(path);
	if (!hc->r)
		hc->bad = true;
	else if (!kvs_reader_is_hint(hc->r))
		hint_check_fail(hc, "not a hint file");
}

/* The segment's next record (any but the footer), `rec`: the next entry
 * must describe it. */
static void hint_check_record(struct hint_check *hc,
			      const struct kvs_record *rec)
{
	struct kvs_record e;
	if (!hc->r)
		return;
	int rc = kvs_reader_next(hc->r, &e);
	if (rc == KVS_EEND) {
		hint_check_fail(hc, "lists %llu records, but %s has more (the "
				"next at offset %llu)",
				(unsigned long long)hc->entries, hc->seg,
				(unsigned long long)rec->offset);
		return;
	}
	if (rc != KVS_OK) {
		hint_check_error(hc);
		return;
	}
	unsigned long long off = (unsigned long long)e.offset;
	if (e.offset != rec->offset)
		hint_check_fail(hc, "hint entry for offset %llu does not match "
				"%s: its record number %llu is at offset %llu",
				off, hc->seg,
				(unsigned long long)hc->entries + 1,
				(unsigned long long)rec->offset);
	else if (e.seq != rec->seq)
		hint_check_fail(hc, "hint entry for offset %llu: seq %llu, but "
				"the record has seq %llu", off,
				(unsigned long long)e.seq,
				(unsigned long long)rec->seq);
	else if (e.type != rec->type)
		hint_check_fail(hc, "hint entry for offset %llu: op %s, but "
				"the record is a %s", off, dump_op_name(e.type),
				dump_op_name(rec->type));
	else if (e.length != rec->length)
		hint_check_fail(hc, "hint entry for offset %llu: length %llu, "
				"but the record is %llu bytes", off,
				(unsigned long long)e.length,
				(unsigned long long)rec->length);
	else if (e.klen != rec->klen ||
		 (e.klen && memcmp(e.key, rec->key, e.klen) != 0))
		hint_check_fail(hc, "hint entry for offset %llu: the key "
				"differs from the record's", off);
	else if (e.vlen != rec->vlen)
		hint_check_fail(hc, "hint entry for offset %llu: value length "
				"%zu, but the record's value is %zu bytes",
				off, e.vlen, rec->vlen);
	else if (e.expire_ms != rec->expire_ms)
		hint_check_fail(hc, "hint entry for offset %llu: expiry %lld, "
				"but the record's is %lld", off,
				(long long)e.expire_ms, (long long)rec->expire_ms);
	else if (e.count != rec->count)
		hint_check_fail(hc, "hint entry for offset %llu: count %llu, "
				"but the record's is %llu", off,
				(unsigned long long)e.count,
				(unsigned long long)rec->count);
	else
		hc->entries++;
}

/* The segment has been read: seg_ok if all of it was good.  A hint of a
 * bad segment is not judged further (the segment's error is reported). */
static void hint_check_finish(struct hint_check *hc, bool seg_ok, bool sealed)
{
	struct kvs_record e;
	if (!hc->r)
		return;
	if (seg_ok) {
		int rc = kvs_reader_next(hc->r, &e);
		if (rc == KVS_OK) {
			hint_check_fail(hc, "hint entry for offset %llu: %s "
					"has no record left (it has %llu)",
					(unsigned long long)e.offset, hc->seg,
					(unsigned long long)hc->entries);
			return;
		}
		if (rc != KVS_EEND) {
			hint_check_error(hc);
			return;
		}
		if (!sealed) {
			hint_check_fail(hc, "%s has a hint file but is not "
					"sealed", hc->seg);
			return;
		}
	}
	kvs_reader_close(hc->r);
	hc->r = NULL;
}

/*
 * Atomic batches (TXN markers, docs/FORMAT.md): the engine's open applies a
 * batch only with its closing marker.  A segment that ends inside one is
 * cut back to its opening marker (a crash while the batch was written: the
 * newest segment), and a footer or another marker inside one fails the
 * open.  Either way the file is not what the open will read, so it is
 * reported here as the engine's scan would: a bad record at the offset.
 */
struct batch {
	bool open;
	uint64_t seq;    /* of the opening marker */
	uint64_t offset; /* where it is */
};

/* The segment's next record (TXN or FOOTER).  Returns what is wrong with
 * it, or NULL. */
static const char *batch_step(struct batch *b, const struct kvs_record *rec)
{
	if (!b->open) {
		if (rec->type == KVS_REC_TXN && rec->count == 0)
			*b = (struct batch){ true, rec->seq, rec->offset };
		return NULL;
	}
	if (rec->type == KVS_REC_FOOTER)
		return "a footer inside an atomic batch";
	if (rec->count != b->seq)
		return "a transaction marker inside an atomic batch";
	b->open = false;
	return NULL;
}

/* Read one file, listing or counting its records, and with --verify of a
 * DIR check its hint file.  Returns 0, or 1 after printing what is wrong
 * (with the file, or with its hint file). */
int dump_read_file(const struct opts *o, const struct input *in, size_t idx,
		   struct seg_stats *st, struct key_table *keys)
{
	struct kvs_reader *r = NULL;
	struct kvs_record rec;
	struct hint_check hc;

	hint_check_open(&hc, in->hint, in->path);
	if (!(r = open_reader(in->path))) {
		hint_check_finish(&hc, false, false);
		return 1;
	}
	st->hint = kvs_reader_is_hint(r) != 0;
	st->bytes = kvs_reader_size(r);
	struct batch batch = { 0 };
	const char *batch_bad = NULL;
	int rc;
	while ((rc = kvs_reader_next(r, &rec)) == KVS_OK) {
		if (!st->hint && (rec.type == KVS_REC_TXN ||
				  rec.type == KVS_REC_FOOTER) &&
		    (batch_bad = batch_step(&batch, &rec)) != NULL)
			break;
		if (rec.type == KVS_REC_SET)
			st->sets++;
		else if (rec.type == KVS_REC_REMOVE)
			st->removes++;
		if (rec.type != KVS_REC_FOOTER) {
			st->rec_bytes += rec.length;
			hint_check_record(&hc, &rec);
			if (o->stats && rec.klen)
				dump_keys_note(keys, &rec, idx);
			if (rec.type == KVS_REC_FLUSH && rec.seq > keys->flush_seq)
				keys->flush_seq = rec.seq;
		}
		if (!o->stats && !o->verify)
			dump_print_record(o, in->path, st->hint, &rec);
	}
	/* A hint file describes a sealed segment. */
	st->sealed = st->hint || kvs_reader_sealed(r) != 0;
	int status = 0;
	if (rc == KVS_EEND && batch.open) {
		batch_bad = "an atomic batch without its closing marker (the "
			    "engine drops it at open)";
		rec.offset = batch.offset;
	}
	if (batch_bad) {
		dump_complain("%s: bad record at offset %llu: %s", in->path,
			      (unsigned long long)rec.offset, batch_bad);
		status = 1;
	} else if (rc != KVS_EEND) {
		const char *m = kvs_errmsg();
		if (*m)
			dump_complain("%s", m);
		else
			dump_complain("%s: bad record at offset %llu: %s",
				 in->path, (unsigned long long)rec.offset,
				 kvs_strerror(rc));
		status = 1;
	} else if (o->verify && in->must_seal && !st->sealed) {
		dump_complain("%s: segment is not sealed (no footer at offset "
			 "%llu), but a newer segment follows", in->path,
			 (unsigned long long)st->bytes);
		status = 1;
	}
	hint_check_finish(&hc, rc == KVS_EEND && !batch_bad,
			  kvs_reader_sealed(r) != 0);
	kvs_reader_close(r);
	return status || hc.bad;
}
