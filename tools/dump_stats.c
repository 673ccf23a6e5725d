/* dump_stats.c - kvs-dump's figures: the newest record of each key across
 * all files (which records are live), the --stats table and --verify's
 * summary line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

/* ---- the newest record of each key (--stats) -------------------------- */

/* struct key_table is a chained hash table of the keys seen, each with its
 * newest record so far.  Keys are binary and copied, since the reader's
 * buffers go away with it. */
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
		dump_oom();
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
void dump_keys_note(struct key_table *t, const struct kvs_record *rec,
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
			dump_oom();
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
	/* A SET whose expiry time has passed holds no live key. */
	e->is_set = rec->type == KVS_REC_SET &&
		    (!rec->expire_ms || rec->expire_ms > kvs_now_ms());
}

/* Credit each key's newest record, if a SET newer than the newest FLUSH, to
 * its file; free the table. */
void dump_keys_count_live(struct key_table *t, struct seg_stats *st)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct key_ent *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (e->is_set && e->seq > t->flush_seq) {
				st[e->file].live++;
				st[e->file].live_bytes += e->rec_len;
			}
			free(e);
		}
	}
	free(t->buckets);
	*t = (struct key_table){ 0 };
}

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
			dump_put_json_text((const unsigned char *)path,
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

void dump_print_stats(const struct opts *o, const struct input_list *in,
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
void dump_print_verify_ok(const struct opts *o, const struct input_list *in,
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
