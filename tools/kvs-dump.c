/* kvs-dump.c - lists, verifies and summarises the records of kvs segment
 * files and the entries of their hint files (a store directory or single
 * files), reading them through the engine's own record reader
 * (kvs_reader_*), so it never disagrees with it. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvs.h"

#define SHOW_MAX 64 /* bytes of a key or value shown without --full */

/* Exit statuses. */
enum { EXIT_BAD_DATA = 1, EXIT_USAGE = 2 };

struct opts {
	bool json;   /* one JSON object per line instead of text */
	bool full;   /* never abbreviate keys and values */
	bool verify; /* no listing; check seals and hints, print a summary */
	bool stats;  /* no listing; per-file counts, live and dead records */
	bool hints;  /* a DIR stands for its hint files, not its segments */
};

/* One file to read, in the order given (a DIR's files ascending). */
struct input {
	char *path;
	bool must_seal; /* from a DIR and not its newest segment */
	char *hint;     /* --verify of a DIR: the segment's hint file or NULL */
};

struct input_list {
	struct input *v;
	size_t n, cap;
};

/* What --stats (and --verify's summary) reports for one file.  For a hint
 * file, bytes is the hint file's size, while rec_bytes and live_bytes are
 * the sizes of the segment records its entries describe. */
struct seg_stats {
	uint64_t sets, removes, bytes, live, live_bytes;
	uint64_t rec_bytes; /* SET and REMOVE records (no header, no footer) */
	bool sealed;
	bool hint;          /* the file is a hint file */
};

static void usage(FILE *out, bool details)
{
	fputs("usage: kvs-dump [--json] [--full] [--verify] [--stats] "
	      "[--hints] DIR|FILE...\n"
	      "       kvs-dump -V | --version\n"
	      "       kvs-dump -h | --help\n", out);
	if (!details) {
		fputs("Try 'kvs-dump --help' for more information.\n", out);
		return;
	}
	fprintf(out, "\n"
	"Prints every record of the given segment files, and every entry of\n"
	"the given hint files (NNNNNNNNNN.hint: where each record of a sealed\n"
	"segment is, its seq, op, key and value length, but not the value).\n"
	"A DIR stands for its files named NNNNNNNNNN.seg (ten digits), in\n"
	"ascending order.\n"
	"\n"
	"  --json    one JSON object per record (per file with --stats);\n"
	"            keys and values are UTF-8 text when printable, else\n"
	"            base64, as key_encoding and value_encoding say;\n"
	"            \"segment\" names the file read, \"file_kind\" says\n"
	"            whether it is a \"segment\" or a \"hint\" file\n"
	"  --full    whole keys and values (default: the first %d bytes,\n"
	"            and the full length)\n"
	"  --hints   a DIR stands for its NNNNNNNNNN.hint files instead.\n"
	"            The newest segment, still open for appends, has none:\n"
	"            for --stats, name it too (--hints DIR DIR/N.seg)\n"
	"  --verify  no listing: check every record's checksum and footer,\n"
	"            and that every segment of a DIR but the newest is\n"
	"            sealed.  For a DIR (with or without --hints) also check\n"
	"            its hint files: each one's checksum, and that its\n"
	"            entries are the segment's records, all and in order\n"
	"            (offset, length, seq, op, key, value length); a hint\n"
	"            file whose segment is missing is only a warning (the\n"
	"            engine removes it).  Print a one-line summary when all\n"
	"            is well\n"
	"  --stats   no listing: per file, its SET and REMOVE records, bytes,\n"
	"            live records (the newest record of their key among all\n"
	"            files given, and a SET) and their bytes, dead bytes\n"
	"            (all other records: values overwritten or removed\n"
	"            since, and every REMOVE: a tombstone counts as dead\n"
	"            here), and the dead ratio, dead bytes / bytes of SET\n"
	"            and REMOVE records (header and footer left out); the\n"
	"            total row has the ratio over all files\n"
	"\n"
	"A bad record ends the reading of its file (after the good records\n"
	"before it) with a message naming the file and offset; the other\n"
	"files are still read.  Exit status: 0 all good, 1 corrupt or\n"
	"unreadable data, 2 usage error.\n",
		SHOW_MAX);
}

static void *xrealloc_array(void *p, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return realloc(p, n * size);
}

/* "kvs-dump: " and a message on stderr, after the records listed so far. */
static void complain(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void complain(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fputs("kvs-dump: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void oom(void)
{
	complain("out of memory");
	exit(EXIT_BAD_DATA);
}

/* ---- collecting the input files -------------------------------------- */

static void add_input(struct input_list *l, char *path, bool must_seal,
		      char *hint)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct input *v = xrealloc_array(l->v, cap, sizeof *v);
		if (!v)
			oom();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct input){ path, must_seal, hint };
}

/* "NNNNNNNNNN" + suffix, with exactly ten digits. */
static bool is_store_name(const char *name, const char *suffix)
{
	for (int i = 0; i < 10; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return strcmp(name + 10, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growable, sortable list of file names. */
struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **p = xrealloc_array(ns->v, cap, sizeof *p);
		if (!p)
			oom();
		ns->v = p;
		ns->cap = cap;
	}
	if (!(ns->v[ns->n++] = strdup(name)))
		oom();
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	*ns = (struct names){ 0 };
}

/* dir + "/" + name, without doubling a trailing slash ("data/" + name). */
static char *join(const char *dir, const char *name)
{
	size_t dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	const char *sep = dir[dlen - 1] == '/' ? "" : "/";
	char *path;
	if (asprintf(&path, "%.*s%s%s", (int)dlen, dir, sep, name) < 0)
		oom();
	return path;
}

/* A hint file without its segment: left over by a crash during compaction,
 * and removed by the engine's next open, so --verify only mentions it. */
static void orphan_hint(const struct opts *o, const char *dir,
			const char *name)
{
	if (!o->verify)
		return;
	char *path = join(dir, name);
	complain("warning: %s: its segment is missing (an orphan hint file; "
		 "the engine removes it on open)", path);
	free(path);
}

/* Add the files of `dir` that the options ask for, ascending (ten-digit
 * names sort as numbers): its segments; or with --hints its hint files; or
 * with --verify its segments, each with its hint file if it has one.
 * Returns 0, or -1 after printing why the directory cannot be listed. */
static int add_dir(const struct opts *o, struct input_list *l,
		   const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		complain("%s: %s", dir, strerror(errno));
		return -1;
	}
	struct names segs = { 0 }, hints = { 0 };
	for (;;) {
		errno = 0; /* how readdir tells an error from the end */
		struct dirent *de = readdir(d);
		if (!de)
			break;
		if (is_store_name(de->d_name, ".seg"))
			names_add(&segs, de->d_name);
		else if (is_store_name(de->d_name, ".hint"))
			names_add(&hints, de->d_name);
	}
	int rc = 0;
	if (errno != 0) {
		complain("%s: %s", dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	if (segs.n)
		qsort(segs.v, segs.n, sizeof *segs.v, cmp_names);
	if (hints.n)
		qsort(hints.v, hints.n, sizeof *hints.v, cmp_names);

	if (o->hints && !o->verify) {
		for (size_t i = 0; i < hints.n; i++)
			add_input(l, join(dir, hints.v[i]), false, NULL);
	} else {
		/* Both lists are sorted by their ten digits: merge them. */
		size_t h = 0;
		for (size_t i = 0; i < segs.n; i++) {
			while (h < hints.n &&
			       strncmp(hints.v[h], segs.v[i], 10) < 0)
				orphan_hint(o, dir, hints.v[h++]);
			char *hint = NULL;
			if (h < hints.n &&
			    strncmp(hints.v[h], segs.v[i], 10) == 0) {
				if (o->verify)
					hint = join(dir, hints.v[h]);
				h++;
			}
			add_input(l, join(dir, segs.v[i]),
				  rc == 0 && i + 1 < segs.n, hint);
		}
		while (h < hints.n)
			orphan_hint(o, dir, hints.v[h++]);
	}
	names_free(&segs);
	names_free(&hints);
	return rc;
}

/* ---- the newest record of each key (--stats) -------------------------- */

/* A chained hash table of the keys seen, each with its newest record so far.
 * Keys are binary and copied, since the reader's buffers go away with it. */
struct key_ent {
	struct key_ent *next; /* bucket chain */
	uint64_t hash;
	uint64_t seq;         /* of the newest record of the key */
	uint64_t rec_len;     /* its length in bytes */
	size_t file;          /* index of its input file */
	bool is_set;          /* a SET, not a REMOVE */
	size_t klen;
	unsigned char key[];
};

struct key_table {
	struct key_ent **buckets;
	size_t nbuckets; /* a power of two */
	size_t n;
};

/* FNV-1a: the input is the user's own files, not an adversary's. */
static uint64_t hash_key(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3u;
	}
	return h;
}

static void table_grow(struct key_table *t)
{
	size_t nb = t->nbuckets ? t->nbuckets * 2 : 1024;
	struct key_ent **b = calloc(nb, sizeof *b);
	if (!b)
		oom();
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct key_ent *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t j = (size_t)e->hash & (nb - 1);
			e->next = b[j];
			b[j] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* Note a SET or REMOVE record of file `file`.  Of two records with the same
 * seq (a compacted copy next to its original) the later one wins. */
static void table_note(struct key_table *t, const struct kvs_record *rec,
		       size_t file)
{
	uint64_t h = hash_key(rec->key, rec->klen);
	struct key_ent *e = NULL;
	if (t->nbuckets) {
		e = t->buckets[(size_t)h & (t->nbuckets - 1)];
		while (e && !(e->hash == h && e->klen == rec->klen &&
			      memcmp(e->key, rec->key, rec->klen) == 0))
			e = e->next;
	}
	if (!e) {
		if (t->n >= t->nbuckets)
			table_grow(t);
		e = malloc(sizeof *e + rec->klen);
		if (!e)
			oom();
		e->hash = h;
		e->klen = rec->klen;
		memcpy(e->key, rec->key, rec->klen);
		size_t j = (size_t)h & (t->nbuckets - 1);
		e->next = t->buckets[j];
		t->buckets[j] = e;
		t->n++;
	} else if (rec->seq < e->seq) {
		return;
	}
	e->seq = rec->seq;
	e->rec_len = rec->length;
	e->file = file;
	e->is_set = rec->type == KVS_REC_SET;
}

/* Credit each key's newest record, if a SET, to its file; free the table. */
static void table_count_live(struct key_table *t, struct seg_stats *st)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct key_ent *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (e->is_set) {
				st[e->file].live++;
				st[e->file].live_bytes += e->rec_len;
			}
			free(e);
		}
	}
	free(t->buckets);
	*t = (struct key_table){ 0 };
}

/* ---- showing bytes ---------------------------------------------------- */

/* The length of the valid UTF-8 character at p[0..n) and its code point in
 * *cp, or 0 if it is not one (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_char(const unsigned char *p, size_t n, uint32_t *cp)
{
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	uint32_t c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		c &= 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Not a C0 or C1 control character, nor DEL. */
static bool printable_cp(uint32_t c)
{
	return c >= 0x20 && c != 0x7f && !(c >= 0x80 && c <= 0x9f);
}

/* How many bytes of p[0..n) to show: all with --full, else about SHOW_MAX.
 * *text says whether they are printable UTF-8, in which case the cut never
 * splits a character. */
static size_t shown_len(const unsigned char *p, size_t n, bool full,
			bool *text)
{
	size_t limit = full || n <= SHOW_MAX ? n : SHOW_MAX;
	size_t i = 0;
	*text = true;
	while (i < limit) {
		uint32_t c;
		size_t k = utf8_char(p + i, n - i, &c);
		if (k == 0 || !printable_cp(c)) {
			*text = false;
			return limit;
		}
		if (i + k > limit)
			break; /* the character straddles the cut */
		i += k;
	}
	return i;
}

/* Printable ASCII as itself (with \" and \\), any other byte as \xNN. */
static void put_escaped(const unsigned char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	putchar('"');
}

/* A JSON string of UTF-8 text; an invalid byte becomes U+FFFD.  (Keys and
 * values reach here only when printable; paths may hold anything.) */
static void put_json_text(const unsigned char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_char(p + i, n - i, &c);
		if (k == 0) {
			fputs("\\ufffd", stdout);
			i++;
			continue;
		}
		if (c == '"' || c == '\\')
			printf("\\%c", (int)c);
		else if (c < 0x20 || c == 0x7f)
			printf("\\u%04x", (unsigned)c);
		else
			fwrite(p + i, 1, k, stdout);
		i += k;
	}
	putchar('"');
}

static void put_base64(const unsigned char *p, size_t n)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	putchar('"');
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 |
			     p[i + 2];
		putchar(abc[v >> 18]);
		putchar(abc[(v >> 12) & 63]);
		putchar(abc[(v >> 6) & 63]);
		putchar(abc[v & 63]);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		putchar(abc[v >> 18]);
		putchar(abc[(v >> 12) & 63]);
		fputs("==", stdout);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		putchar(abc[v >> 18]);
		putchar(abc[(v >> 12) & 63]);
		putchar(abc[(v >> 6) & 63]);
		putchar('=');
	}
	putchar('"');
}

/* ,"key":"...","key_encoding":"utf8","key_length":N[,"key_truncated":true] */
static void put_json_bytes(const char *name, const void *data, size_t n,
			   bool full)
{
	/* The reader may hand out NULL for an empty string. */
	const unsigned char *p = n ? data : (const unsigned char *)"";
	bool text;
	size_t shown = shown_len(p, n, full, &text);
	printf(",\"%s\":", name);
	if (text)
		put_json_text(p, shown);
	else
		put_base64(p, shown);
	printf(",\"%s_encoding\":\"%s\",\"%s_length\":%zu", name,
	       text ? "utf8" : "base64", name, n);
	if (shown < n)
		printf(",\"%s_truncated\":true", name);
}

/* key "..."  or  key "..."... (N bytes) when abbreviated */
static void put_text_bytes(const char *name, const void *data, size_t n,
			   bool full)
{
	const unsigned char *p = n ? data : (const unsigned char *)"";
	size_t shown = full || n <= SHOW_MAX ? n : SHOW_MAX;
	printf(" %s ", name);
	put_escaped(p, shown);
	if (shown < n)
		printf("... (%zu bytes)", n);
}

static const char *op_name(enum kvs_record_type t)
{
	return t == KVS_REC_SET ? "set" : t == KVS_REC_REMOVE ? "remove" :
	       "footer";
}

/* One record of a segment file, or one entry of a hint file (is_hint): the
 * entry gives the offset and length of its record in the segment, and the
 * value's length but not the value. */
static void print_record(const struct opts *o, const char *path,
			 bool is_hint, const struct kvs_record *rec)
{
	unsigned long long off = (unsigned long long)rec->offset;
	unsigned long long len = (unsigned long long)rec->length;
	unsigned long long seq = (unsigned long long)rec->seq;
	if (o->json) {
		fputs("{\"segment\":", stdout);
		put_json_text((const unsigned char *)path, strlen(path));
		printf(",\"file_kind\":\"%s\",\"offset\":%llu,\"length\":%llu,"
		       "\"op\":\"%s\"", is_hint ? "hint" : "segment", off, len,
		       op_name(rec->type));
		if (rec->type == KVS_REC_FOOTER) {
			printf(",\"last_seq\":%llu,\"count\":%llu,"
			       "\"chain\":%lu}\n", seq,
			       (unsigned long long)rec->count,
			       (unsigned long)rec->chain);
			return;
		}
		printf(",\"seq\":%llu", seq);
		put_json_bytes("key", rec->key, rec->klen, o->full);
		if (rec->type == KVS_REC_SET && is_hint)
			printf(",\"value_length\":%zu", rec->vlen);
		else if (rec->type == KVS_REC_SET)
			put_json_bytes("value", rec->val, rec->vlen, o->full);
		fputs("}\n", stdout);
		return;
	}
	if (is_hint) {
		printf("%s: hint offset %llu length %llu seq %llu %s", path,
		       off, len, seq, op_name(rec->type));
		put_text_bytes("key", rec->key, rec->klen, o->full);
		if (rec->type == KVS_REC_SET)
			printf(" value (%zu bytes)", rec->vlen);
		putchar('\n');
		return;
	}
	printf("%s:%llu: ", path, off);
	if (rec->type == KVS_REC_FOOTER) {
		printf("footer last_seq %llu count %llu chain 0x%08lx\n", seq,
		       (unsigned long long)rec->count,
		       (unsigned long)rec->chain);
		return;
	}
	printf("seq %llu %s", seq, op_name(rec->type));
	put_text_bytes("key", rec->key, rec->klen, o->full);
	if (rec->type == KVS_REC_SET)
		put_text_bytes("value", rec->val, rec->vlen, o->full);
	putchar('\n');
}

/* ---- reading ------------------------------------------------------------- */

/* Open `path` with the engine's reader.  Returns NULL after printing why
 * it cannot be read. */
static struct kvs_reader *open_reader(const char *path)
{
	struct kvs_reader *r = NULL;
	struct stat sb;

	/* Say "not a regular file" for a directory or a FIFO before the
	 * reader opens it. */
	if (stat(path, &sb) != 0) {
		complain("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (!S_ISREG(sb.st_mode)) {
		complain("%s: not a regular file", path);
		return NULL;
	}
	int rc = kvs_reader_open(path, &r);
	if (rc != KVS_OK) {
		const char *m = kvs_errmsg();
		if (*m)
			complain("%s", m);
		else
			complain("%s: %s", path, kvs_strerror(rc));
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
		oom();
	complain("%s: %s", hc->path, msg);
	free(msg);
	hint_check_stop(hc);
}

/* The reader's own error (its message names the hint file). */
static void hint_check_error(struct hint_check *hc)
{
	complain("%s", kvs_errmsg());
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

/* The segment's next SET or REMOVE record, `rec`: the next entry must
 * describe it. */
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
				"the record is a %s", off, op_name(e.type),
				op_name(rec->type));
	else if (e.length != rec->length)
		hint_check_fail(hc, "hint entry for offset %llu: length %llu, "
				"but the record is %llu bytes", off,
				(unsigned long long)e.length,
				(unsigned long long)rec->length);
	else if (e.klen != rec->klen || memcmp(e.key, rec->key, e.klen) != 0)
		hint_check_fail(hc, "hint entry for offset %llu: the key "
				"differs from the record's", off);
	else if (e.vlen != rec->vlen)
		hint_check_fail(hc, "hint entry for offset %llu: value length "
				"%zu, but the record's value is %zu bytes",
				off, e.vlen, rec->vlen);
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

/* Read one file, listing or counting its records, and with --verify of a
 * DIR check its hint file.  Returns 0, or 1 after printing what is wrong
 * (with the file, or with its hint file). */
static int read_file(const struct opts *o, const struct input *in,
		     size_t idx, struct seg_stats *st, struct key_table *keys)
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
	int rc;
	while ((rc = kvs_reader_next(r, &rec)) == KVS_OK) {
		if (rec.type == KVS_REC_SET)
			st->sets++;
		else if (rec.type == KVS_REC_REMOVE)
			st->removes++;
		if (rec.type != KVS_REC_FOOTER) {
			st->rec_bytes += rec.length;
			hint_check_record(&hc, &rec);
			if (o->stats)
				table_note(keys, &rec, idx);
		}
		if (!o->stats && !o->verify)
			print_record(o, in->path, st->hint, &rec);
	}
	/* A hint file describes a sealed segment. */
	st->sealed = st->hint || kvs_reader_sealed(r) != 0;
	int status = 0;
	if (rc != KVS_EEND) {
		const char *m = kvs_errmsg();
		if (*m)
			complain("%s", m);
		else
			complain("%s: bad record at offset %llu: %s",
				 in->path, (unsigned long long)rec.offset,
				 kvs_strerror(rc));
		status = 1;
	} else if (o->verify && in->must_seal && !st->sealed) {
		complain("%s: segment is not sealed (no footer at offset "
			 "%llu), but a newer segment follows", in->path,
			 (unsigned long long)st->bytes);
		status = 1;
	}
	hint_check_finish(&hc, rc == KVS_EEND, kvs_reader_sealed(r) != 0);
	kvs_reader_close(r);
	return status || hc.bad;
}

/* ---- reports ------------------------------------------------------------- */

static void add_stats(struct seg_stats *sum, const struct seg_stats *s)
{
	sum->sets += s->sets;
	sum->removes += s->removes;
	sum->bytes += s->bytes;
	sum->live += s->live;
	sum->live_bytes += s->live_bytes;
	sum->rec_bytes += s->rec_bytes;
}

/* Bytes of the records that are not live: overwritten SETs, every REMOVE,
 * and a SET of a key removed later. */
static uint64_t dead_bytes(const struct seg_stats *s)
{
	return s->rec_bytes - s->live_bytes;
}

static double dead_ratio(const struct seg_stats *s)
{
	return s->rec_bytes ? (double)dead_bytes(s) / (double)s->rec_bytes
			    : 0.0;
}

static void print_stats_line(const struct opts *o, const char *path,
			     const struct seg_stats *s, bool total)
{
	unsigned long long recs = (unsigned long long)(s->sets + s->removes);
	if (o->json) {
		fputs("{", stdout);
		if (total) {
			fputs("\"total\":true", stdout);
		} else {
			fputs("\"segment\":", stdout);
			put_json_text((const unsigned char *)path,
				      strlen(path));
			printf(",\"file_kind\":\"%s\",\"sealed\":%s",
			       s->hint ? "hint" : "segment",
			       s->sealed ? "true" : "false");
		}
		printf(",\"records\":%llu,\"sets\":%llu,\"removes\":%llu,"
		       "\"bytes\":%llu,\"live_records\":%llu,"
		       "\"live_bytes\":%llu,\"record_bytes\":%llu,"
		       "\"dead_bytes\":%llu,\"dead_ratio\":%.4f}\n",
		       recs, (unsigned long long)s->sets,
		       (unsigned long long)s->removes,
		       (unsigned long long)s->bytes,
		       (unsigned long long)s->live,
		       (unsigned long long)s->live_bytes,
		       (unsigned long long)s->rec_bytes,
		       (unsigned long long)dead_bytes(s), dead_ratio(s));
		return;
	}
	printf("%9llu %9llu %9llu %12llu %9llu %12llu %12llu %10.3f  %-6s %s\n",
	       recs, (unsigned long long)s->sets,
	       (unsigned long long)s->removes, (unsigned long long)s->bytes,
	       (unsigned long long)s->live, (unsigned long long)s->live_bytes,
	       (unsigned long long)dead_bytes(s), dead_ratio(s),
	       total ? "" : s->hint ? "hint" : s->sealed ? "yes" : "no",
	       total ? "total" : path);
}

static void print_stats(const struct opts *o, const struct input_list *in,
			const struct seg_stats *st)
{
	struct seg_stats sum = { 0 };
	if (!o->json)
		printf("%9s %9s %9s %12s %9s %12s %12s %10s  %-6s %s\n",
		       "records", "sets", "removes", "bytes", "live",
		       "live_bytes", "dead_bytes", "dead_ratio", "sealed",
		       "segment");
	for (size_t i = 0; i < in->n; i++) {
		print_stats_line(o, in->v[i].path, &st[i], false);
		add_stats(&sum, &st[i]);
	}
	print_stats_line(o, NULL, &sum, true);
}

static const char *plural(unsigned long long n)
{
	return n == 1 ? "" : "s";
}

/* Segments, their records, and the hint files checked: those given and
 * those of a DIR's segments. */
static void print_verify_ok(const struct opts *o, const struct input_list *in,
			    const struct seg_stats *st)
{
	unsigned long long segs = 0, sets = 0, removes = 0, sealed = 0;
	unsigned long long hints = 0;
	for (size_t i = 0; i < in->n; i++) {
		hints += in->v[i].hint != NULL;
		if (st[i].hint) {
			hints++;
			continue;
		}
		segs++;
		sets += st[i].sets;
		removes += st[i].removes;
		sealed += st[i].sealed;
	}
	if (o->json) {
		printf("{\"ok\":true,\"segments\":%llu,\"sealed\":%llu,"
		       "\"records\":%llu,\"sets\":%llu,\"removes\":%llu,"
		       "\"hints\":%llu}\n", segs, sealed, sets + removes, sets,
		       removes, hints);
		return;
	}
	printf("OK: %llu segment%s (%llu sealed), %llu record%s (%llu set%s, "
	       "%llu remove%s)", segs, plural(segs), sealed, sets + removes,
	       plural(sets + removes), sets, plural(sets), removes,
	       plural(removes));
	if (hints)
		printf(", %llu hint file%s", hints, plural(hints));
	putchar('\n');
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_FULL, OPT_VERIFY, OPT_STATS, OPT_HINTS };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "full", no_argument, NULL, OPT_FULL },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "hints", no_argument, NULL, OPT_HINTS },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "Vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: o.json = true; break;
		case OPT_FULL: o.full = true; break;
		case OPT_VERIFY: o.verify = true; break;
		case OPT_STATS: o.stats = true; break;
		case OPT_HINTS: o.hints = true; break;
		case 'V': printf("kvs-dump %s\n", KVS_VERSION); return 0;
		case 'h': usage(stdout, true); return 0;
		default: usage(stderr, false); return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		complain("no DIR or FILE given");
		usage(stderr, false);
		return EXIT_USAGE;
	}

	int status = 0;
	struct input_list in = { 0 };
	for (int i = optind; i < argc; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) != 0) {
			complain("%s: %s", argv[i], strerror(errno));
			status = EXIT_BAD_DATA;
		} else if (S_ISDIR(sb.st_mode)) {
			if (add_dir(&o, &in, argv[i]) != 0)
				status = EXIT_BAD_DATA;
		} else {
			char *p = strdup(argv[i]);
			if (!p)
				oom();
			add_input(&in, p, false, NULL);
		}
	}

	struct seg_stats *st = calloc(in.n ? in.n : 1, sizeof *st);
	if (!st)
		oom();
	struct key_table keys = { 0 };
	for (size_t i = 0; i < in.n; i++)
		if (read_file(&o, &in.v[i], i, &st[i], &keys) != 0)
			status = EXIT_BAD_DATA;
	table_count_live(&keys, st);

	if (o.stats)
		print_stats(&o, &in, st);
	if (o.verify && status == 0)
		print_verify_ok(&o, &in, st);

	for (size_t i = 0; i < in.n; i++) {
		free(in.v[i].path);
		free(in.v[i].hint);
	}
	free(in.v);
	free(st);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		complain("writing the output: %s", strerror(errno));
		status = EXIT_BAD_DATA;
	}
	return status;
}
