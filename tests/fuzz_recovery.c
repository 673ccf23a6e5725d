/* fuzz_recovery.c - libFuzzer harness for opening a whole store directory
 * (kvs_open's recovery: segments, hints, leftovers).  The open must succeed
 * or fail with an error code and a message, never crash or read outside a
 * file; an open store must be self-consistent and reopen to the same
 * contents; and where the harness built the store itself, every key whose
 * records precede the damage it then did must be found with its value.
 *
 * The input's first byte picks the mode:
 *   even: a dir image (fuzz_store.h) written as is - any files at all;
 *   odd:  an op list that builds a real store through the API (small
 *         segments, so it rotates; compactions, atomic batches, flushes,
 *         expiry times), then damage applied to its files (see below).
 */
#define FUZZ_NAME "recovery"
#include "fuzz_store.h"

#include "kvs.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NKEYS 32
#define MAX_OPS 96
#define MAX_DAMAGE 4
/* 2100-01-01: an expiry no run of this harness reaches. */
#define FAR_MS 4102444800000ll

/* The input, consumed byte by byte; zeros once it runs out. */
struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned take16(struct in *in)
{
	unsigned lo = take(in);
	return lo | take(in) << 8;
}

static unsigned n_warnings;

static void log_sink(void *ctx, enum kvs_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
	n_warnings++;
}

static struct kvs_options options(void)
{
	struct kvs_options o;
	memset(&o, 0, sizeof o);
	o.engine = KVS_ENGINE_KVS;
	o.fsync = KVS_FSYNC_NEVER;
	o.segment_size = 4096;
	o.no_auto_compact = 1;
	o.log = log_sink;
	return o;
}

/* ---- what an open store holds ---------------------------------------- */

struct item {
	unsigned char *key;
	size_t klen;
	int rc; /* of kvs_lookup */
	unsigned char *val;
	size_t vlen;
	int64_t expire_ms;
};

struct snap {
	struct item *v;
	size_t n, cap;
};

static int scan_cb(void *ctx, const void *key, size_t klen)
{
	struct snap *s = ctx;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 64;
		s->v = realloc(s->v, s->cap * sizeof *s->v);
		CHECK(s->v != NULL);
	}
	struct item *it = &s->v[s->n++];
	memset(it, 0, sizeof *it);
	it->key = malloc(klen ? klen : 1);
	CHECK(it->key != NULL);
	memcpy(it->key, key, klen);
	it->klen = klen;
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		kvs_free(s->v[i].val);
	}
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* Every key kvs_scan passes, each read back.  Checks: a key is passed once
 * or more but reads back as present (or, with damage, as a detected
 * corruption: reads check the record's head and crc); kvs_get agrees with
 * kvs_lookup; live_keys counts the keys scanned.  `clean`: no read may
 * fail. */
static void take_snap(struct kvs *db, struct snap *s, bool clean)
{
	uint64_t cursor = 0;
	memset(s, 0, sizeof *s);
	do {
		CHECK(kvs_scan(db, cursor, 16, scan_cb, s, &cursor) == KVS_OK);
	} while (cursor != 0);
	if (s->n > 1)
		qsort(s->v, s->n, sizeof *s->v, cmp_item);
	size_t w = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (w && cmp_item(&s->v[w - 1], &s->v[i]) == 0) {
			free(s->v[i].key);
			continue;
		}
		s->v[w++] = s->v[i];
	}
	s->n = w;
	for (size_t i = 0; i < s->n; i++) {
		struct item *it = &s->v[i];
		void *val = NULL;
		size_t vlen = 0;
		it->rc = kvs_lookup(db, it->key, it->klen, (void **)&it->val,
				    &it->vlen, &it->expire_ms);
		if (it->rc != KVS_OK) {
			if (clean)
				fuzz_report("lookup: %s", kvs_errmsg());
			CHECK(!clean);
			CHECK(it->rc == KVS_ECORRUPT || it->rc == KVS_EIO);
			it->val = NULL;
			it->vlen = 0;
			continue;
		}
		CHECK(kvs_get(db, it->key, it->klen, &val, &vlen) == KVS_OK);
		CHECK(vlen == it->vlen && memcmp(val, it->val, vlen) == 0);
		kvs_free(val);
	}
	struct kvs_store_stats st;
	CHECK(kvs_stats(db, &st) == KVS_OK);
	/* A key whose expiry time passes during the run may leave the scan
	 * and the count apart; inputs rarely hold such times. */
	if (st.volatile_keys == 0)
		CHECK(st.live_keys == s->n);
}

static void snap_same(const struct snap *a, const struct snap *b)
{
	CHECK(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		const struct item *x = &a->v[i], *y = &b->v[i];
		CHECK(cmp_item(x, y) == 0);
		CHECK(x->rc == y->rc);
		CHECK(x->vlen == y->vlen);
		CHECK(x->vlen == 0 || memcmp(x->val, y->val, x->vlen) == 0);
		CHECK(x->expire_ms == y->expire_ms);
	}
}

/* A failed open must say why with one of the codes damage can cause. */
static void check_failed_open(int rc)
{
	CHECK(rc < 0);
	CHECK(rc == KVS_ECORRUPT || rc == KVS_EENGINE || rc == KVS_EIO);
	CHECK(kvs_errmsg()[0] != '\0');
}

/* Open the directory as it now is.  If it opens: snapshot it (clean: no
 * read may fail), close, reopen, and check that the second open gives the
 * same contents (recovery is idempotent: what the first open cut or
 * rewrote is final).  The first snapshot is left in *s (zeroed on a failed
 * open).  Returns the first open's result. */
static int open_twice(struct snap *s, bool clean,
		      void (*check)(struct kvs *db, void *ctx), void *ctx)
{
	struct kvs_options o = options();
	struct kvs *db = NULL;
	memset(s, 0, sizeof *s);
	int rc = kvs_open(fuzz_dir, &o, &db);
	if (rc != KVS_OK) {
		check_failed_open(rc);
		return rc;
	}
	take_snap(db, s, clean);
	if (check)
		check(db, ctx);
	CHECK(kvs_close(db) == KVS_OK);

	struct snap again;
	unsigned warned = n_warnings;
	rc = kvs_open(fuzz_dir, &o, &db);
	if (rc != KVS_OK)
		fuzz_report("reopen: %s", kvs_errmsg());
	CHECK(rc == KVS_OK);
	/* Only a lost hint may be worth a word now: the first open cut every
	 * torn tail.  (Hints are rewritten without a sync, so none is
	 * expected here either; a warning means the first open left
	 * something to repair.) */
	CHECK(n_warnings == warned);
	take_snap(db, &again, clean);
	snap_same(s, &again);
	snap_free(&again);
	CHECK(kvs_close(db) == KVS_OK);
	return KVS_OK;
}

/* ---- mode 1: a store built through the API, then damaged -------------- */

struct model {
	bool present[NKEYS];
	unsigned char *val[NKEYS];
	size_t vlen[NKEYS];
	int64_t expire_ms[NKEYS];
};

static void key_of(char out[4], unsigned k)
{
	out[0] = 'k';
	out[1] = (char)('0' + k / 10);
	out[2] = (char)('0' + k % 10);
	out[3] = '\0';
}

/* A value of n bytes that differs from write to write. */
static unsigned char *make_value(size_t n, unsigned salt)
{
	unsigned char *v = malloc(n ? n : 1);
	CHECK(v != NULL);
	for (size_t i = 0; i < n; i++)
		v[i] = (unsigned char)(salt * 131u + i * 7u + (i >> 8));
	return v;
}

static void model_set(struct model *m, unsigned k, unsigned char *v,
		      size_t n, int64_t exp)
{
	free(m->val[k]);
	m->present[k] = true;
	m->val[k] = v;
	m->vlen[k] = n;
	m->expire_ms[k] = exp;
}

static void model_clear(struct model *m, unsigned k)
{
	free(m->val[k]);
	m->present[k] = false;
	m->val[k] = NULL;
	m->vlen[k] = 0;
	m->expire_ms[k] = 0;
}

/* One SET or REMOVE op of an atomic batch, and its effect on the model
 * (results checked after the batch). */
struct bop {
	unsigned k;
	bool remove;
	unsigned char *val;
	size_t vlen;
	int want;
};

/* Apply the input's ops to a fresh store; the model follows every
 * acknowledged write, and every result is checked against it. */
static void build(struct in *in, struct model *m)
{
	struct kvs_options o = options();
	struct kvs *db = NULL;
	CHECK(kvs_open(fuzz_dir, &o, &db) == KVS_OK);
	unsigned salt = 0;
	char key[4];
	for (int n = 0; n < MAX_OPS && in->n; n++) {
		unsigned op = take(in);
		unsigned k = (op >> 3) % NKEYS;
		key_of(key, k);
		salt++;
		if ((op & 7) == 7)
			break; /* the damage follows */
		switch (op & 7) {
		case 0:   /* SET */
		case 6: { /* a big SET: rotations */
			size_t len = (op & 7) == 6 ? 600 + take(in) * 8 : take(in);
			unsigned char *v = make_value(len, salt);
			CHECK(kvs_set(db, key, 3, v, len) == KVS_OK);
			model_set(m, k, v, len, 0);
			break;
		}
		case 1: { /* REMOVE */
			int rc = kvs_remove(db, key, 3);
			CHECK(rc == (m->present[k] ? KVS_OK : KVS_ENOTFOUND));
			model_clear(m, k);
			break;
		}
		case 2: { /* SET with an expiry time (a SETX record) */
			size_t len = take(in);
			unsigned char *v = make_value(len, salt);
			struct kvs_op kop = { .type = KVS_OP_SET, .key = key,
					      .klen = 3, .val = v, .vlen = len,
					      .expire_ms = FAR_MS };
			CHECK(kvs_write_batch(db, &kop, 1) == KVS_OK);
			CHECK(kop.result == KVS_OK);
			model_set(m, k, v, len, FAR_MS);
			break;
		}
		case 3: { /* an atomic batch of SETs and REMOVEs */
			struct bop b[5];
			struct kvs_op kop[5];
			char keys[5][4];
			size_t nb = 2 + take(in) % 4;
			memset(kop, 0, sizeof kop);
			for (size_t i = 0; i < nb; i++) {
				unsigned x = take(in);
				b[i].k = (x >> 1) % NKEYS;
				b[i].remove = x & 1;
				b[i].vlen = b[i].remove ? 0 : take(in);
				b[i].val = b[i].remove ? NULL
					   : make_value(b[i].vlen, salt + (unsigned)i * 977u);
				key_of(keys[i], b[i].k);
				kop[i].type = b[i].remove ? KVS_OP_REMOVE : KVS_OP_SET;
				kop[i].key = keys[i];
				kop[i].klen = 3;
				kop[i].val = b[i].val;
				kop[i].vlen = b[i].vlen;
			}
			CHECK(kvs_write_batch_flags(db, kop, nb, KVS_BATCH_ATOMIC) ==
			      KVS_OK);
			for (size_t i = 0; i < nb; i++) {
				if (b[i].remove) {
					CHECK(kop[i].result == (m->present[b[i].k]
								? KVS_OK : KVS_ENOTFOUND));
					model_clear(m, b[i].k);
				} else {
					CHECK(kop[i].result == KVS_OK);
					model_set(m, b[i].k, b[i].val, b[i].vlen, 0);
				}
			}
			break;
		}
		case 4: { /* FLUSH */
			struct kvs_op kop = { .type = KVS_OP_FLUSH };
			CHECK(kvs_write_batch(db, &kop, 1) == KVS_OK);
			for (unsigned i = 0; i < NKEYS; i++)
				model_clear(m, i);
			break;
		}
		case 5: /* compaction (seals the active segment) */
			CHECK(kvs_compact(db) == KVS_OK);
			break;
		}
	}
	/* What was acknowledged is what the store returns. */
	for (unsigned k = 0; k < NKEYS; k++) {
		void *v = NULL;
		size_t vlen;
		key_of(key, k);
		int rc = kvs_get(db, key, 3, &v, &vlen);
		CHECK(rc == (m->present[k] ? KVS_OK : KVS_ENOTFOUND));
		CHECK(rc != KVS_OK || (vlen == m->vlen[k] &&
				       memcmp(v, m->val[k], vlen) == 0));
		kvs_free(v);
	}
	CHECK(kvs_close(db) == KVS_OK);
}

/* A record as the engine's reader found it in the built store. */
struct drec {
	unsigned file; /* index into the segment list */
	uint64_t off, len, seq, count;
	enum kvs_record_type type;
	int key; /* 0..NKEYS-1, or -1 */
};

struct disk {
	struct fuzz_names segs;
	struct drec *r;
	size_t n;
	uint64_t dp[FUZZ_MAX_NAMES]; /* per segment: the first damaged offset */
	bool appended[FUZZ_MAX_NAMES];
};

/* Read every record of the built store with kvs_reader (the engine wrote
 * it: every record must decode). */
static void read_disk(struct disk *d)
{
	size_t cap = 0;
	fuzz_list(&d->segs, ".seg");
	d->r = NULL;
	d->n = 0;
	for (unsigned f = 0; f < d->segs.n; f++) {
		char path[512];
		struct kvs_reader *r;
		struct kvs_record rec;
		int rc;
		fuzz_path(path, sizeof path, d->segs.name[f]);
		CHECK(kvs_reader_open(path, &r) == KVS_OK);
		while ((rc = kvs_reader_next(r, &rec)) == KVS_OK) {
			if (d->n == cap) {
				cap = cap ? 2 * cap : 64;
				d->r = realloc(d->r, cap * sizeof *d->r);
				CHECK(d->r != NULL);
			}
			struct drec *x = &d->r[d->n++];
			const unsigned char *kp = rec.key;
			x->file = f;
			x->off = rec.offset;
			x->len = rec.length;
			x->seq = rec.seq;
			x->count = rec.count;
			x->type = rec.type;
			x->key = rec.klen == 3 && kp[0] == 'k'
				 ? (kp[1] - '0') * 10 + (kp[2] - '0') : -1;
		}
		CHECK(rc == KVS_EEND);
		kvs_reader_close(r);
		d->dp[f] = UINT64_MAX;
		d->appended[f] = false;
	}
}

static bool intact(const struct disk *d, const struct drec *x)
{
	return x->off + x->len <= d->dp[x->file];
}

/* Whether key k's state after recovery is known from the records that
 * precede the damage, and if so whether it is present (*present).  Its
 * newest record decides, unless a newer FLUSH or its batch's closing
 * marker may have been lost. */
static bool key_known(const struct disk *d, unsigned k, bool *present)
{
	const struct drec *newest = NULL;
	for (size_t i = 0; i < d->n; i++)
		if (d->r[i].key == (int)k &&
		    (!newest || d->r[i].seq > newest->seq))
			newest = &d->r[i];
	if (!newest)
		return false; /* never written, or only inside a batch cut */
	if (!intact(d, newest))
		return false;
	*present = newest->type == KVS_REC_SET;
	for (size_t i = 0; i < d->n; i++) {
		const struct drec *x = &d->r[i];
		if (x->type == KVS_REC_FLUSH && x->seq > newest->seq) {
			if (!intact(d, x))
				return false;
			*present = false;
		}
		/* Its atomic batch: an opening marker before it in its file
		 * whose closing marker (count = the opening seq) is after. */
		if (x->type == KVS_REC_TXN && x->count == 0 &&
		    x->file == newest->file && x->seq < newest->seq) {
			for (size_t j = 0; j < d->n; j++) {
				const struct drec *c = &d->r[j];
				if (c->type == KVS_REC_TXN && c->count == x->seq &&
				    c->seq > newest->seq && !intact(d, c))
					return false;
			}
		}
	}
	return true;
}

/* Damage the built store's files as the rest of the input says.  Returns
 * whether every damage is one the open must survive: to hint files,
 * leftover temporary files, or a cut of the newest segment. */
static bool damage(struct in *in, struct disk *d)
{
	struct fuzz_names hints;
	bool benign = true;
	fuzz_list(&hints, ".hint");
	for (int n = 0; n < MAX_DAMAGE && in->n; n++) {
		unsigned kind = take(in) % 5, sel = take(in);
		/* sel < 128: a segment, counted from the newest; else a
		 * hint file (a segment if there is none). */
		bool is_seg = sel < 128 || !hints.n;
		if (is_seg && !d->segs.n)
			break;
		if (is_seg)
			sel = (unsigned)(d->segs.n - 1 - sel % d->segs.n);
		else
			sel = (unsigned)((sel - 128) % hints.n);
		const char *name = is_seg ? d->segs.name[sel] : hints.name[sel];
		bool newest = is_seg && sel + 1 == d->segs.n;
		size_t size = 0;
		unsigned char *buf = fuzz_read_file(name, &size);
		if (!buf)
			continue; /* deleted earlier */
		uint64_t at = UINT64_MAX;
		switch (kind) {
		case 0: /* cut */
			size = take16(in) % (size + 1);
			at = size;
			benign &= !is_seg || newest;
			break;
		case 1: /* flip bits of one byte */
			if (size) {
				at = take16(in) % size;
				buf[at] ^= (unsigned char)(take(in) | 1);
				benign &= !is_seg;
			}
			break;
		case 2: { /* delete */
			char path[512];
			fuzz_path(path, sizeof path, name);
			CHECK(unlink(path) == 0);
			free(buf);
			benign &= !is_seg;
			if (is_seg)
				d->dp[sel] = 0;
			continue;
		}
		case 3: { /* append bytes */
			size_t len = take(in) % 32, old = size;
			unsigned char *nb = realloc(buf, size + len + 1);
			CHECK(nb != NULL);
			buf = nb;
			for (size_t i = 0; i < len; i++)
				buf[size++] = (unsigned char)take(in);
			benign &= !is_seg;
			if (is_seg && len)
				d->appended[sel] = true;
			at = old;
			break;
		}
		case 4: { /* a leftover temporary file */
			char tmp[32];
			unsigned id = (unsigned)atoi(name) + 1 + sel % 2;
			size_t len = take(in) % 64;
			snprintf(tmp, sizeof tmp, "%010u.%s.tmp", id,
				 is_seg ? "seg" : "hint");
			fuzz_write_file(tmp, in->p, len < in->n ? len : in->n);
			free(buf);
			continue;
		}
		}
		fuzz_write_file(name, buf, size);
		free(buf);
		if (is_seg && at < d->dp[sel])
			d->dp[sel] = at;
	}
	return benign;
}

struct expect {
	const struct disk *d;
	const struct model *m;
};

/* In the opened store: every key whose state the intact records decide
 * has it, with the acknowledged value. */
static void check_expected(struct kvs *db, void *ctx)
{
	const struct expect *e = ctx;
	bool any_append = false;
	for (unsigned f = 0; f < e->d->segs.n; f++)
		any_append |= e->d->appended[f];
	for (unsigned k = 0; k < NKEYS; k++) {
		bool present = false;
		char key[4];
		void *v = NULL;
		size_t vlen = 0;
		int64_t exp = 0;
		key_of(key, k);
		int rc = kvs_lookup(db, key, 3, &v, &vlen, &exp);
		if (!key_known(e->d, k, &present)) {
			/* Never written: no bytes can make it appear
			 * (appended ones could hold a copied record). */
			bool written = false;
			for (size_t i = 0; i < e->d->n; i++)
				written |= e->d->r[i].key == (int)k;
			CHECK(written || any_append || rc == KVS_ENOTFOUND);
			kvs_free(v);
			continue;
		}
		/* The disk agrees with what was acknowledged... */
		CHECK(present == e->m->present[k]);
		/* ...and recovery with the disk. */
		if (rc != (present ? KVS_OK : KVS_ENOTFOUND))
			fuzz_report("key %s: %d %s", key, rc, kvs_errmsg());
		CHECK(rc == (present ? KVS_OK : KVS_ENOTFOUND));
		if (present) {
			CHECK(vlen == e->m->vlen[k]);
			CHECK(memcmp(v, e->m->val[k], vlen) == 0);
			CHECK(exp == e->m->expire_ms[k]);
		}
		kvs_free(v);
	}
}

/* With FUZZ_RECOVERY_EXPORT=DIR in the environment, each built store is
 * also written to DIR/image-NNN as a dir image (mode 0), before any damage:
 * how tests/fuzz/gen_recovery.py turns op lists into seeds of real
 * stores.  Not used while fuzzing. */
static void export_image(void)
{
	static unsigned counter;
	const char *out = getenv("FUZZ_RECOVERY_EXPORT");
	if (!out)
		return;
	struct fuzz_names ns[2];
	char path[512];
	fuzz_list(&ns[0], ".seg");
	fuzz_list(&ns[1], ".hint");
	snprintf(path, sizeof path, "%s/image-%03u", out, counter++);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	fputc(0, f); /* the mode byte */
	for (int kind = 0; kind < 2; kind++) {
		for (size_t i = 0; i < ns[kind].n; i++) {
			size_t len;
			unsigned char *buf = fuzz_read_file(ns[kind].name[i], &len);
			unsigned id = (unsigned)atoi(ns[kind].name[i]);
			CHECK(buf != NULL && id < 256 && len < 65536);
			unsigned char head[4] = { (unsigned char)kind,
						  (unsigned char)id,
						  (unsigned char)len,
						  (unsigned char)(len >> 8) };
			fwrite(head, 1, 4, f);
			fwrite(buf, 1, len, f);
			free(buf);
		}
	}
	CHECK(fclose(f) == 0);
}

static void run_ops(struct in *in)
{
	struct model m;
	struct disk d;
	struct snap s;
	memset(&m, 0, sizeof m);
	build(in, &m);
	export_image();
	read_disk(&d);
	bool touched = in->n != 0;
	bool benign = damage(in, &d);
	struct expect e = { &d, &m };
	int rc = open_twice(&s, benign, check_expected, &e);
	if (rc != KVS_OK && (benign || !touched))
		fuzz_report("open: %s", kvs_errmsg());
	CHECK(rc == KVS_OK || !benign);
	CHECK(rc == KVS_OK || touched);
	snap_free(&s);
	free(d.r);
	for (unsigned k = 0; k < NKEYS; k++)
		free(m.val[k]);
}

/* ---- the entry points ------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_make_dir();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct snap s;
	if (!fuzz_dir[0])
		fuzz_make_dir();
	fuzz_empty_dir(fuzz_dir);
	if (take(&in) & 1) {
		run_ops(&in);
	} else {
		fuzz_write_image(in.p, in.n);
		open_twice(&s, false, NULL, NULL);
		snap_free(&s);
	}
	fuzz_empty_dir(fuzz_dir);
	return 0;
}
