/* kvs-dump.c - lists, verifies and summarises the records of kvs segment
 * files (a store directory or single .seg files), reading them through the
 * engine's own record reader (kvs_reader_*), so it never disagrees with it. */
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
	bool verify; /* no listing; check seals, print an OK summary */
	bool stats;  /* no listing; per-segment counts and live records */
};

/* One file to read, in the order given (a DIR's segments ascending). */
struct input {
	char *path;
	bool must_seal; /* from a DIR and not its newest segment */
};

struct input_list {
	struct input *v;
	size_t n, cap;
};

/* What --stats reports for one file. */
struct seg_stats {
	uint64_t sets, removes, bytes, live, live_bytes;
	bool sealed;
};

static void usage(FILE *out, bool details)
{
	fputs("usage: kvs-dump [--json] [--full] [--verify] [--stats] "
	      "DIR|SEGMENT...\n"
	      "       kvs-dump -V | --version\n"
	      "       kvs-dump -h | --help\n", out);
	if (!details) {
		fputs("Try 'kvs-dump --help' for more information.\n", out);
		return;
	}
	fprintf(out, "\n"
	"Prints every record of the given segment files.  A DIR stands for\n"
	"its files named NNNNNNNNNN.seg (ten digits), in ascending order.\n"
	"\n"
	"  --json    one JSON object per record (per segment with --stats);\n"
	"            keys and values are UTF-8 text when printable, else\n"
	"            base64, as key_encoding and value_encoding say\n"
	"  --full    whole keys and values (default: the first %d bytes,\n"
	"            and the full length)\n"
	"  --verify  no listing: check every record's checksum and footer,\n"
	"            and that every segment of a DIR but the newest is\n"
	"            sealed; print a one-line summary when all is well\n"
	"  --stats   no listing: per segment, its SET and REMOVE records,\n"
	"            bytes, and live records (the newest record of their\n"
	"            key among all files given, and a SET) and their bytes\n"
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

static void add_input(struct input_list *l, char *path, bool must_seal)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct input *v = xrealloc_array(l->v, cap, sizeof *v);
		if (!v)
			oom();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct input){ path, must_seal };
}

/* "NNNNNNNNNN.seg" with exactly ten digits. */
static bool is_segment_name(const char *name)
{
	for (int i = 0; i < 10; i++)
		if (name[i] < '0' || name[i] > '9')
			return false;
	return strcmp(name + 10, ".seg") == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add the segments of `dir`, ascending (ten-digit names sort as numbers).
 * Returns 0, or -1 after printing why the directory cannot be listed. */
static int add_dir(struct input_list *l, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		complain("%s: %s", dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		errno = 0; /* how readdir tells an error from the end */
		struct dirent *de = readdir(d);
		if (!de)
			break;
		if (!is_segment_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **p = xrealloc_array(names, cap, sizeof *p);
			if (!p)
				oom();
			names = p;
		}
		if (!(names[n++] = strdup(de->d_name)))
			oom();
	}
	int rc = 0;
	if (errno != 0) {
		complain("%s: %s", dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, cmp_names);

	/* Join without doubling a trailing slash ("data/" + name). */
	size_t dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	const char *sep = dir[dlen - 1] == '/' ? "" : "/";
	for (size_t i = 0; i < n; i++) {
		char *path;
		if (asprintf(&path, "%.*s%s%s", (int)dlen, dir, sep,
			     names[i]) < 0)
			oom();
		add_input(l, path, rc == 0 && i + 1 < n);
		free(names[i]);
	}
	free(names);
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

static void print_record(const struct opts *o, const char *path,
			 const struct kvs_record *rec)
{
	unsigned long long off = (unsigned long long)rec->offset;
	unsigned long long seq = (unsigned long long)rec->seq;
	if (o->json) {
		fputs("{\"segment\":", stdout);
		put_json_text((const unsigned char *)path, strlen(path));
		printf(",\"offset\":%llu,\"length\":%llu,\"op\":\"%s\"", off,
		       (unsigned long long)rec->length, op_name(rec->type));
		if (rec->type == KVS_REC_FOOTER) {
			printf(",\"last_seq\":%llu,\"count\":%llu,"
			       "\"chain\":%lu}\n", seq,
			       (unsigned long long)rec->count,
			       (unsigned long)rec->chain);
			return;
		}
		printf(",\"seq\":%llu", seq);
		put_json_bytes("key", rec->key, rec->klen, o->full);
		if (rec->type == KVS_REC_SET)
			put_json_bytes("value", rec->val, rec->vlen, o->full);
		fputs("}\n", stdout);
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

/* Read one file, listing or counting its records.  Returns 0, or 1 after
 * printing what is wrong with it. */
static int read_file(const struct opts *o, const struct input *in,
		     size_t idx, struct seg_stats *st, struct key_table *keys)
{
	struct kvs_reader *r = NULL;
	struct kvs_record rec;
	struct stat sb;

	/* kvs_reader_open() refuses anything but a regular file only after
	 * open(), which waits forever for a writer on a FIFO: look first. */
	if (stat(in->path, &sb) != 0) {
		complain("%s: %s", in->path, strerror(errno));
		return 1;
	}
	if (!S_ISREG(sb.st_mode)) {
		complain("%s: not a regular file", in->path);
		return 1;
	}
	int rc = kvs_reader_open(in->path, &r);
	if (rc != KVS_OK) {
		const char *m = kvs_errmsg();
		if (*m)
			complain("%s", m);
		else
			complain("%s: %s", in->path, kvs_strerror(rc));
		return 1;
	}
	st->bytes = kvs_reader_size(r);
	while ((rc = kvs_reader_next(r, &rec)) == KVS_OK) {
		if (rec.type == KVS_REC_SET)
			st->sets++;
		else if (rec.type == KVS_REC_REMOVE)
			st->removes++;
		if (o->stats && rec.type != KVS_REC_FOOTER)
			table_note(keys, &rec, idx);
		if (!o->stats && !o->verify)
			print_record(o, in->path, &rec);
	}
	st->sealed = kvs_reader_sealed(r) != 0;
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
	kvs_reader_close(r);
	return status;
}

/* ---- reports ------------------------------------------------------------- */

static void add_stats(struct seg_stats *sum, const struct seg_stats *s)
{
	sum->sets += s->sets;
	sum->removes += s->removes;
	sum->bytes += s->bytes;
	sum->live += s->live;
	sum->live_bytes += s->live_bytes;
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
			printf(",\"sealed\":%s", s->sealed ? "true" : "false");
		}
		printf(",\"records\":%llu,\"sets\":%llu,\"removes\":%llu,"
		       "\"bytes\":%llu,\"live_records\":%llu,"
		       "\"live_bytes\":%llu}\n",
		       recs, (unsigned long long)s->sets,
		       (unsigned long long)s->removes,
		       (unsigned long long)s->bytes,
		       (unsigned long long)s->live,
		       (unsigned long long)s->live_bytes);
		return;
	}
	printf("%9llu %9llu %9llu %12llu %9llu %12llu  %-6s %s\n", recs,
	       (unsigned long long)s->sets, (unsigned long long)s->removes,
	       (unsigned long long)s->bytes, (unsigned long long)s->live,
	       (unsigned long long)s->live_bytes,
	       total ? "" : s->sealed ? "yes" : "no", total ? "total" : path);
}

static void print_stats(const struct opts *o, const struct input_list *in,
			const struct seg_stats *st)
{
	struct seg_stats sum = { 0 };
	if (!o->json)
		printf("%9s %9s %9s %12s %9s %12s  %-6s %s\n", "records",
		       "sets", "removes", "bytes", "live", "live_bytes",
		       "sealed", "segment");
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

static void print_verify_ok(const struct opts *o, const struct input_list *in,
			    const struct seg_stats *st)
{
	unsigned long long sets = 0, removes = 0, sealed = 0;
	for (size_t i = 0; i < in->n; i++) {
		sets += st[i].sets;
		removes += st[i].removes;
		sealed += st[i].sealed;
	}
	if (o->json)
		printf("{\"ok\":true,\"segments\":%zu,\"sealed\":%llu,"
		       "\"records\":%llu,\"sets\":%llu,\"removes\":%llu}\n",
		       in->n, sealed, sets + removes, sets, removes);
	else
		printf("OK: %zu segment%s (%llu sealed), %llu record%s (%llu "
		       "set%s, %llu remove%s)\n", in->n, plural(in->n), sealed,
		       sets + removes, plural(sets + removes), sets,
		       plural(sets), removes, plural(removes));
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_FULL, OPT_VERIFY, OPT_STATS };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "full", no_argument, NULL, OPT_FULL },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "stats", no_argument, NULL, OPT_STATS },
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
		case 'V': printf("kvs-dump %s\n", KVS_VERSION); return 0;
		case 'h': usage(stdout, true); return 0;
		default: usage(stderr, false); return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		complain("no DIR or SEGMENT given");
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
			if (add_dir(&in, argv[i]) != 0)
				status = EXIT_BAD_DATA;
		} else {
			char *p = strdup(argv[i]);
			if (!p)
				oom();
			add_input(&in, p, false);
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

	for (size_t i = 0; i < in.n; i++)
		free(in.v[i].path);
	free(in.v);
	free(st);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		complain("writing the output: %s", strerror(errno));
		status = EXIT_BAD_DATA;
	}
	return status;
}
