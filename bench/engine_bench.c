/* engine_bench.c - kvs-engine-bench: the kvs engine against LMDB, in
 * process (no network), with the same seed and the same data for both:
 * loads, random gets and overwrites, group commit under fsync always, a
 * 90/10 mix, the open of a loaded store and talent-plan's workloads,
 * printed as one table with a kvs/lmdb ratio per row (and CSV/JSON). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "kvs.h"
#include "engine_bench.h"

#define MAX_KEYS 100000000u /* what "key%08u" can name */
#define MAX_LIST 8          /* entries of a comma-separated option */
#define MAX_THREADS 256
#define OPEN_REPS 5         /* opens of the loaded store, time allowing */
#define TP_MAX_REPS 1000    /* talent-plan repetitions, time allowing */
#define TP_KEY_MAX 100000   /* talent-plan's largest key */

/* The workloads, for --only. */
enum {
	W_LOAD = 1 << 0,
	W_BATCH = 1 << 1,
	W_OPEN = 1 << 2,
	W_GET = 1 << 3,
	W_MIXED = 1 << 4,
	W_SET = 1 << 5,
	W_ALWAYS = 1 << 6,
	W_TP = 1 << 7,
	W_STORE = W_BATCH | W_OPEN | W_GET | W_MIXED | W_SET | W_ALWAYS,
};
static const struct {
	const char *name;
	unsigned bit;
} work_names[] = {
	{ "load", W_LOAD }, { "batch_load", W_BATCH }, { "open", W_OPEN },
	{ "get", W_GET }, { "mixed", W_MIXED }, { "set", W_SET },
	{ "overwrite_always", W_ALWAYS }, { "tp", W_TP },
};

struct config {
	uint64_t nkeys[MAX_LIST], vsize[MAX_LIST];
	size_t n_nkeys, n_vsize;
	uint64_t seed;
	const struct eb_adapter *engines[2];
	size_t n_engines;
	double seconds, load_seconds;
	uint64_t get_threads[MAX_LIST], sync_threads[MAX_LIST];
	size_t n_get_threads, n_sync_threads;
	unsigned only;
	const char *dir, *csv, *json;
	char scratch[PATH_MAX];
};

/* Section headings must outlive the report: kept here, freed at exit. */
static char *sections[MAX_LIST + 2]; /* variants, [WM], talent-plan */
static size_t n_sections;

static const char *new_section(const char *name)
{
	if (n_sections == sizeof sections / sizeof sections[0] ||
	    !(sections[n_sections] = strdup(name))) {
		fprintf(stderr, "%s: out of memory\n", EB_PROG);
		exit(1);
	}
	return sections[n_sections++];
}

static void add_row(const char *section, const char *workload,
		    const char *label, unsigned threads, uint64_t value_size,
		    const struct eb_adapter *a, const struct eb_result *res)
{
	struct eb_row r = {
		.section = section, .workload = workload, .label = label,
		.threads = threads, .value_size = value_size,
		.engine = a->engine, .na = res == NULL,
	};

	if (res) {
		r.ops = res->ops;
		r.seconds = res->seconds;
		r.p50_us = hist_quantile_us(&res->hist, 0.50);
		r.p99_us = hist_quantile_us(&res->hist, 0.99);
	}
	eb_report_add(&r);
	eb_report_progress(&r);
}

static int subdir(char *out, const struct config *cf,
		  const struct eb_adapter *a, const char *what)
{
	if ((size_t)snprintf(out, PATH_MAX, "%s/%s-%s", cf->scratch, a->engine,
			     what) >= PATH_MAX) {
		fprintf(stderr, "%s: --dir: path too long\n", EB_PROG);
		return EB_ERR;
	}
	return 0;
}

static int open_store(const struct eb_adapter *a, const char *dir,
		      enum eb_sync sync, struct eb_store **s)
{
	if (a->open(dir, sync, s) != 0) {
		fprintf(stderr, "%s: %s: open %s: %s\n", EB_PROG, a->engine,
			dir, eb_lasterr());
		*s = NULL;
		return EB_ERR;
	}
	return 0;
}

static int close_store(const struct eb_adapter *a, struct eb_store **s)
{
	int rc = 0;

	if (*s && a->close(*s) != 0) {
		fprintf(stderr, "%s: %s: close: %s\n", EB_PROG, a->engine,
			eb_lasterr());
		rc = EB_ERR;
	}
	*s = NULL;
	return rc;
}

/* ---- one key-count/value-size variant ------------------------------------------------ */

/* The CSV names and table labels of a variant's rows; [WM] marks the rows
 * run again against LMDB with MDB_WRITEMAP (--writemap-rows). */
enum { R_LOAD, R_BATCH, R_OPEN, R_GET, R_MIXED, R_SET, R_ALWAYS, R_COUNT };
struct row_names {
	const char *workload[R_COUNT], *label[R_COUNT];
};
static const struct row_names plain_rows = {
	{ "load", "batch_load", "open", "get", "mixed", "set",
	  "overwrite_always" },
	{ "load: set, 1 per call/txn (relaxed)",
	  "batch load, 1000 per batch/txn (relaxed) *",
	  "open the loaded store (ops = opens) **",
	  "get, random keys",
	  "mixed 90% get / 10% set (relaxed)",
	  "set, random keys, 1 per call/txn (relaxed)",
	  "set, random keys, fsync always" },
}, writemap_rows = {
	{ "load_wm", "batch_load_wm", "open_wm", "get_wm", "mixed_wm", "set_wm",
	  "overwrite_always_wm" },
	{ "[WM] load: set, 1 per call/txn (relaxed)",
	  "[WM] batch load, 1000 per batch/txn (relaxed) *",
	  "[WM] open the loaded store (ops = opens) **",
	  "[WM] get, random keys",
	  "[WM] mixed 90% get / 10% set (relaxed)",
	  "[WM] set, random keys, 1 per call/txn (relaxed)",
	  "[WM] set, random keys, fsync always" },
};

/*
 * One engine's store during a variant.  The engines take turns phase by
 * phase (kvs, then lmdb), both stores open, so that each ratio compares two
 * runs made seconds apart: on a machine shared with other work, the
 * background load (and the latency of fdatasync) drifts over minutes.  An
 * idle store costs the other engine little: kvs's writer sleeps, its
 * everysec thread syncs nothing, and raw LMDB has no threads.
 */
struct side {
	const struct eb_adapter *a;
	struct eb_store *s; /* NULL while closed */
	uint32_t loaded;    /* keys its batch load stored */
	char dir[PATH_MAX];
};

static int sides_init(const struct config *cf, struct side *sd, const char *what)
{
	for (size_t e = 0; e < cf->n_engines; e++) {
		sd[e] = (struct side){ .a = cf->engines[e] };
		if (subdir(sd[e].dir, cf, sd[e].a, what))
			return EB_ERR;
	}
	return 0;
}

static int sides_open(const struct config *cf, struct side *sd,
		      enum eb_sync sync)
{
	for (size_t e = 0; e < cf->n_engines; e++)
		if (open_store(sd[e].a, sd[e].dir, sync, &sd[e].s))
			return EB_ERR;
	return 0;
}

static int sides_close(const struct config *cf, struct side *sd)
{
	int rc = 0;

	for (size_t e = 0; e < cf->n_engines; e++)
		if (close_store(sd[e].a, &sd[e].s))
			rc = EB_ERR;
	return rc;
}

/* Close whatever is open (errors printed) and remove the stores. */
static void sides_release(const struct config *cf, struct side *sd)
{
	sides_close(cf, sd);
	for (size_t e = 0; e < cf->n_engines; e++)
		if (sd[e].dir[0])
			rm_tree(sd[e].dir);
}

/* Run `work` on each engine's open store in turn, a row each. */
static int phase_all(const struct config *cf, struct side *sd,
		     struct eb_data *d, enum eb_work work, unsigned threads,
		     uint64_t max_ops, const char *section,
		     const struct row_names *nm, int row)
{
	uint64_t max_ns = (uint64_t)(cf->seconds * 1e9);

	for (size_t e = 0; e < cf->n_engines && !eb_stop; e++) {
		struct eb_result res;
		d->loaded = sd[e].loaded;
		if (eb_run_phase(sd[e].a, sd[e].s, d, work, threads, 0, max_ops,
				 max_ns, &res) != 0)
			return EB_ERR;
		add_row(section, nm->workload[row], nm->label[row], threads,
			d->value_size, sd[e].a, &res);
	}
	return eb_stop ? EB_ERR : 0;
}

/* Fill each store with every key, EB_BATCH_OPS a call, then close it. */
static int batch_load(const struct config *cf, struct side *sd,
		      struct eb_data *d, const char *section,
		      const struct row_names *nm, bool report)
{
	for (size_t e = 0; e < cf->n_engines && !eb_stop; e++) {
		struct eb_result res;
		if (eb_run_phase(sd[e].a, sd[e].s, d, EB_BATCH, 1, 0, d->nkeys,
				 (uint64_t)(cf->load_seconds * 1e9), &res) != 0)
			return EB_ERR;
		if (report)
			add_row(section, nm->workload[R_BATCH], nm->label[R_BATCH],
				1, d->value_size, sd[e].a, &res);
		sd[e].loaded = (uint32_t)res.ops;
		if (sd[e].loaded < d->nkeys)
			printf("  %-4s  the load stopped after %u of %u keys "
			       "(--load-seconds): the later phases use those\n",
			       sd[e].a->engine, sd[e].loaded, d->nkeys);
		if (sd[e].loaded == 0 || close_store(sd[e].a, &sd[e].s))
			return EB_ERR;
	}
	return eb_stop ? EB_ERR : 0;
}

/* Open each loaded store (up to OPEN_REPS times, within --seconds, timing
 * each open if `report`) and leave it open. */
static int open_loaded(const struct config *cf, struct side *sd,
		       const struct eb_data *d, const char *section,
		       const struct row_names *nm, bool report)
{
	for (size_t e = 0; e < cf->n_engines; e++) {
		struct eb_result res;
		memset(&res, 0, sizeof res);
		for (unsigned rep = 0;; rep++) {
			uint64_t t0 = now_ns();
			if (open_store(sd[e].a, sd[e].dir, EB_RELAXED, &sd[e].s))
				return EB_ERR;
			uint64_t t1 = now_ns();
			hist_add(&res.hist, t1 - t0);
			res.ops++;
			res.seconds += (double)(t1 - t0) / 1e9;
			if (!report || rep + 1 == OPEN_REPS ||
			    res.seconds >= cf->seconds || eb_stop)
				break;
			if (close_store(sd[e].a, &sd[e].s))
				return EB_ERR;
		}
		if (report)
			add_row(section, nm->workload[R_OPEN], nm->label[R_OPEN], 1,
				d->value_size, sd[e].a, &res);
	}
	return eb_stop ? EB_ERR : 0;
}

static int run_variant(const struct config *cf, uint64_t nkeys, uint64_t vsize,
		       const struct row_names *nm, unsigned w)
{
	struct side sd[2] = { { 0 } };
	struct eb_data d;
	uint64_t max_ops = 2 * nkeys;
	char name[128];
	int rc = EB_ERR;

	snprintf(name, sizeof name, "%llu-byte values, %llu keys%s",
		 (unsigned long long)vsize, (unsigned long long)nkeys,
		 nm == &writemap_rows ? "; [WM]: lmdb with MDB_WRITEMAP" : "");
	const char *section = new_section(name);
	if (eb_data_init(&d, (uint32_t)nkeys, vsize, cf->seed) != 0) {
		fprintf(stderr, "%s: out of memory for %llu keys\n", EB_PROG,
			(unsigned long long)nkeys);
		return EB_ERR;
	}
	printf("\n== %s ==\n", section);

	/* Single sets into empty stores of their own, time allowing. */
	if (w & W_LOAD) {
		if (sides_init(cf, sd, "load") || sides_open(cf, sd, EB_RELAXED) ||
		    phase_all(cf, sd, &d, EB_LOAD, 1, nkeys, section, nm, R_LOAD) ||
		    sides_close(cf, sd))
			goto out;
		sides_release(cf, sd);
	}
	if (!(w & W_STORE)) {
		rc = eb_stop ? EB_ERR : 0;
		goto out;
	}

	/* The stores of the other phases: every key, in batches. */
	if (sides_init(cf, sd, "main") || sides_open(cf, sd, EB_RELAXED) ||
	    batch_load(cf, sd, &d, section, nm, w & W_BATCH) ||
	    open_loaded(cf, sd, &d, section, nm, w & W_OPEN))
		goto out;
	for (size_t i = 0; (w & W_GET) && i < cf->n_get_threads; i++)
		if (phase_all(cf, sd, &d, EB_GET, (unsigned)cf->get_threads[i],
			      max_ops, section, nm, R_GET))
			goto out;
	for (size_t i = 0; (w & W_MIXED) && i < cf->n_get_threads; i++)
		if (phase_all(cf, sd, &d, EB_MIXED, (unsigned)cf->get_threads[i],
			      max_ops, section, nm, R_MIXED))
			goto out;
	if ((w & W_SET) &&
	    phase_all(cf, sd, &d, EB_SET, 1, max_ops, section, nm, R_SET))
		goto out;
	if (sides_close(cf, sd))
		goto out;

	/* Durable overwrites: one sync per acknowledged write, or per group. */
	if (w & W_ALWAYS) {
		if (sides_open(cf, sd, EB_ALWAYS))
			goto out;
		for (size_t i = 0; i < cf->n_sync_threads; i++)
			if (phase_all(cf, sd, &d, EB_SET,
				      (unsigned)cf->sync_threads[i], max_ops,
				      section, nm, R_ALWAYS))
				goto out;
		if (sides_close(cf, sd))
			goto out;
	}
	rc = 0;
out:
	sides_release(cf, sd);
	eb_data_free(&d);
	return rc;
}

/* ---- talent-plan ---------------------------------------------------------------------- */

struct tp_names {
	const char *write, *read, *write_label, *read_label;
};

/* The 100 writes, each time into a fresh store, for about --seconds. */
static int tp_write_on(const struct config *cf, const struct eb_adapter *a,
		       const struct eb_tp *tp, struct eb_result *res)
{
	uint64_t phase_ns = (uint64_t)(cf->seconds * 1e9), start = now_ns();
	struct eb_store *s = NULL;
	char dir[PATH_MAX];

	if (subdir(dir, cf, a, "tp"))
		return EB_ERR;
	for (unsigned rep = 0; rep < TP_MAX_REPS && !eb_stop; rep++) {
		if (open_store(a, dir, EB_RELAXED, &s))
			return EB_ERR;
		int rc = eb_tp_write(a, s, tp, res);
		if (rc != 0)
			fprintf(stderr, "%s: %s: talent-plan write: %s\n",
				EB_PROG, a->engine, eb_lasterr());
		if (close_store(a, &s) || rc != 0) {
			rm_tree(dir);
			return EB_ERR;
		}
		rm_tree(dir);
		if (now_ns() - start >= phase_ns)
			break;
	}
	return eb_stop ? EB_ERR : 0;
}

/* The 1000 reads, again and again on one store, for about --seconds. */
static int tp_read_on(const struct config *cf, const struct eb_adapter *a,
		      const struct eb_tp *tp, struct eb_result *res)
{
	uint64_t phase_ns = (uint64_t)(cf->seconds * 1e9), start;
	struct eb_result junk = { 0 };
	struct eb_store *s = NULL;
	char dir[PATH_MAX];
	int rc;

	if (subdir(dir, cf, a, "tp") || open_store(a, dir, EB_RELAXED, &s))
		return EB_ERR;
	rc = eb_tp_write(a, s, tp, &junk);
	start = now_ns();
	for (unsigned rep = 0; rc == 0 && rep < TP_MAX_REPS && !eb_stop; rep++) {
		rc = eb_tp_read(a, s, tp, cf->seed * 7u + rep, res);
		if (now_ns() - start >= phase_ns)
			break;
	}
	if (rc != 0)
		fprintf(stderr, "%s: %s: talent-plan: %s\n", EB_PROG, a->engine,
			eb_lasterr());
	if (close_store(a, &s))
		rc = EB_ERR;
	rm_tree(dir);
	return rc != 0 || eb_stop ? EB_ERR : 0;
}

static int run_tp(const struct config *cf)
{
	static const struct tp_names big = {
		"tp_write", "tp_read",
		"tp write 100, keys 1-100000 B (lmdb: <= 511 B)",
		"tp read 1000 of them",
	}, small = {
		"tp_write_k511", "tp_read_k511",
		"tp write 100, keys 1-511 B",
		"tp read 1000 of them (keys 1-511 B)",
	};
	char name[128];

	snprintf(name, sizeof name, "talent-plan: %d random keys, values of "
		 "1-%d B, %d reads", EB_TP_KEYS, EB_TP_VALUE_MAX, EB_TP_READS);
	const char *section = new_section(name);
	printf("\n== %s ==\n", section);
	for (int pass = 0; pass < 2; pass++) {
		const struct tp_names *nm = pass == 0 ? &big : &small;
		struct eb_tp tp;
		int rc = 0;
		if (eb_tp_init(&tp, pass == 0 ? TP_KEY_MAX : 511, cf->seed) != 0) {
			fprintf(stderr, "%s: out of memory\n", EB_PROG);
			return EB_ERR;
		}
		/* Writes of both engines, then reads of both: see struct side. */
		for (int reads = 0; reads < 2 && rc == 0; reads++) {
			for (size_t e = 0; e < cf->n_engines && rc == 0; e++) {
				const struct eb_adapter *a = cf->engines[e];
				struct eb_result res = { 0 };
				bool fits = tp.key_max <= a->max_key;
				if (fits)
					rc = reads ? tp_read_on(cf, a, &tp, &res)
						   : tp_write_on(cf, a, &tp, &res);
				if (rc == 0)
					add_row(section,
						reads ? nm->read : nm->write,
						reads ? nm->read_label
						      : nm->write_label, 1,
						EB_TP_VALUE_MAX, a,
						fits ? &res : NULL);
			}
		}
		eb_tp_free(&tp);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-engine-bench [-n KEYS[,KEYS]] [--value-size BYTES[,BYTES]]\n"
		"         [--engine kvs|lmdb|both] [--lmdb raw|api] [--lmdb-writemap]\n"
		"         [--writemap-rows] [--seed N] [--seconds S] [--load-seconds S]\n"
		"         [-t LIST] [-T LIST] [--only LIST] [--dir DIR] [--csv FILE]\n"
		"         [--json FILE] [--quick]\n"
		"\n"
		"The kvs engine against LMDB, in process, same seed and data for both.\n"
		"Each -n/--value-size pair is a variant (a shorter list repeats its last\n"
		"entry): a load of single sets into an empty store; a store loaded in\n"
		"batches of 1000, then opened, then random gets (-t threads), a 90/10\n"
		"get/set mix (-t threads), single-thread sets, and sets under fsync\n"
		"always (-T threads).  Then talent-plan's workloads.  relaxed = kvs\n"
		"fsync everysec / lmdb MDB_NOSYNC.\n"
		"\n"
		"  -n KEYS            keys of each variant (default 1000000; --quick 10000)\n"
		"  --value-size BYTES value size of each variant (default 100)\n"
		"  --engine E         kvs, lmdb or both (default both)\n"
		"  --lmdb raw|api     lmdb side: liblmdb used directly (bench/lmdb_raw.c,\n"
		"                     default) or engine/lmdb.c through kvs.h\n"
		"  --lmdb-writemap    raw lmdb with MDB_WRITEMAP (faster small puts,\n"
		"                     no protection from stray writes; not the default)\n"
		"  --writemap-rows    then the relaxed writes (load, batch_load, mixed,\n"
		"                     set) of the first variant again, both engines, with\n"
		"                     lmdb using MDB_WRITEMAP: rows marked [WM], *_wm\n"
		"  --seed N           PRNG seed of keys, values and choices (default 1)\n"
		"  --seconds S        time limit of each timed phase (default 3; --quick\n"
		"                     0.2); a phase also stops after 2 x KEYS operations\n"
		"  --load-seconds S   time limit of the batch load that fills the store\n"
		"                     the later phases use (default 120)\n"
		"  -t LIST            threads of the get and mixed phases (default 1,2,4)\n"
		"  -T LIST            threads of the fsync-always sets (default 1,8,64)\n"
		"  --only LIST        run only these workloads: load, batch_load, open,\n"
		"                     get, mixed, set, overwrite_always, tp\n"
		"  --dir DIR          put the scratch directory in DIR (default $TMPDIR\n"
		"                     or /tmp); it is removed at exit\n"
		"  --csv FILE         write the rows as CSV (workload,threads,value_size,\n"
		"                     engine,ops,ops_per_sec,p50_us,p99_us; ratio rows\n"
		"                     have engine kvs/lmdb)\n"
		"  --json FILE        write the rows, the targets and the set-up as JSON\n"
		"  --quick            a fast small run (defaults above)\n"
		"  -V, --version      print the version\n");
}

/* Parse "a,b,c" into out[], each in min..max; returns the count. */
static size_t parse_list(const char *s, uint64_t out[MAX_LIST], uint64_t min,
			 uint64_t max, const char *what)
{
	char buf[256];
	size_t n = 0;

	if (strlen(s) >= sizeof buf) {
		fprintf(stderr, "%s: %s: list too long\n", EB_PROG, what);
		exit(2);
	}
	strcpy(buf, s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_LIST) {
			fprintf(stderr, "%s: %s: at most %d entries\n", EB_PROG,
				what, MAX_LIST);
			exit(2);
		}
		out[n++] = parse_num(EB_PROG, tok, min, max, what);
	}
	if (n == 0) {
		fprintf(stderr, "%s: %s: empty list\n", EB_PROG, what);
		exit(2);
	}
	return n;
}

static unsigned parse_only(const char *s)
{
	char buf[256];
	unsigned bits = 0;

	snprintf(buf, sizeof buf, "%s", s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		size_t i = 0, n = sizeof work_names / sizeof work_names[0];
		while (i < n && strcmp(tok, work_names[i].name) != 0)
			i++;
		if (i == n) {
			fprintf(stderr, "%s: --only: unknown workload '%s'\n",
				EB_PROG, tok);
			exit(2);
		}
		bits |= work_names[i].bit;
	}
	return bits;
}

static void on_signal(int sig)
{
	(void)sig;
	eb_stop = 1;
}

/* A rough upper bound of the scratch space, for a warning: the lmdb side
 * is the larger (a value over ~2 KiB takes whole overflow pages; small
 * ones sit in leaves about half full after random inserts), and the
 * single-set load keeps a second store. */
static double disk_needed(const struct config *cf)
{
	double most = 0;
	size_t nv = cf->n_nkeys > cf->n_vsize ? cf->n_nkeys : cf->n_vsize;

	for (size_t i = 0; i < nv; i++) {
		double n = (double)cf->nkeys[i < cf->n_nkeys ? i : cf->n_nkeys - 1];
		double v = (double)cf->vsize[i < cf->n_vsize ? i : cf->n_vsize - 1];
		double per = v > 2000 ? 4096.0 * ((uint64_t)(v + 15) / 4096 + 1)
				      : 2.0 * (v + 40);
		if (2.0 * n * per > most)
			most = 2.0 * n * per;
	}
	return most;
}

static void command_line(char *buf, size_t size, int argc, char **argv)
{
	size_t len = 0;

	buf[0] = '\0';
	for (int i = 0; i < argc && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? " " : "", argv[i]);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "value-size", required_argument, NULL, 'v' },
		{ "engine", required_argument, NULL, 'e' },
		{ "lmdb", required_argument, NULL, 'L' },
		{ "lmdb-writemap", no_argument, NULL, 'W' },
		{ "writemap-rows", no_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "load-seconds", required_argument, NULL, 'l' },
		{ "only", required_argument, NULL, 'o' },
		{ "dir", required_argument, NULL, 'd' },
		{ "csv", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ "quick", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cf = {
		.seed = 1, .load_seconds = 120, .only = ~0u,
		.vsize = { 100 }, .n_vsize = 1,
		.get_threads = { 1, 2, 4 }, .n_get_threads = 3,
		.sync_threads = { 1, 8, 64 }, .n_sync_threads = 3,
	};
	const char *engine = "both", *lmdb = "raw";
	bool quick = false, writemap_too = false;
	char cmd[1024], relaxed[256], always[256], lmdb_how[512];
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "n:t:T:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			cf.n_nkeys = parse_list(optarg, cf.nkeys, 1, MAX_KEYS, "-n");
			break;
		case 'v':
			cf.n_vsize = parse_list(optarg, cf.vsize, 0, 64u << 20,
						"--value-size");
			break;
		case 'e': engine = optarg; break;
		case 'L': lmdb = optarg; break;
		case 'W': eb_lmdb_writemap = true; break;
		case 'w': writemap_too = true; break;
		case 's':
			cf.seed = parse_num(EB_PROG, optarg, 0, UINT64_MAX, "--seed");
			break;
		case 'S':
			cf.seconds = parse_seconds(EB_PROG, optarg, 3600, "--seconds");
			break;
		case 'l':
			cf.load_seconds = parse_seconds(EB_PROG, optarg, 86400,
							"--load-seconds");
			break;
		case 't':
			cf.n_get_threads = parse_list(optarg, cf.get_threads, 1,
						      MAX_THREADS, "-t");
			break;
		case 'T':
			cf.n_sync_threads = parse_list(optarg, cf.sync_threads, 1,
						       MAX_THREADS, "-T");
			break;
		case 'o': cf.only = parse_only(optarg); break;
		case 'd': cf.dir = optarg; break;
		case 'c': cf.csv = optarg; break;
		case 'j': cf.json = optarg; break;
		case 'q': quick = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("%s %s\n", EB_PROG, KVS_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", EB_PROG,
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (cf.n_nkeys == 0) {
		cf.nkeys[0] = quick ? 10000 : 1000000;
		cf.n_nkeys = 1;
	}
	if (cf.seconds == 0)
		cf.seconds = quick ? 0.2 : 3.0;
	const struct eb_adapter *lm = strcmp(lmdb, "raw") == 0 ?
		&eb_lmdb_raw_adapter : strcmp(lmdb, "api") == 0 ?
		&eb_lmdb_api_adapter : NULL;
	if (!lm) {
		fprintf(stderr, "%s: --lmdb: raw or api\n", EB_PROG);
		return 2;
	}
	if ((eb_lmdb_writemap || writemap_too) && lm != &eb_lmdb_raw_adapter) {
		fprintf(stderr, "%s: --lmdb-writemap and --writemap-rows need "
			"--lmdb raw\n", EB_PROG);
		return 2;
	}
	if (eb_lmdb_writemap && writemap_too) {
		fprintf(stderr, "%s: --writemap-rows: lmdb uses MDB_WRITEMAP "
			"throughout already (--lmdb-writemap)\n", EB_PROG);
		return 2;
	}
	if (strcmp(engine, "kvs") == 0 || strcmp(engine, "both") == 0)
		cf.engines[cf.n_engines++] = &eb_kvs_adapter;
	if (strcmp(engine, "lmdb") == 0 || strcmp(engine, "both") == 0)
		cf.engines[cf.n_engines++] = lm;
	if (cf.n_engines == 0) {
		fprintf(stderr, "%s: --engine: kvs, lmdb or both\n", EB_PROG);
		return 2;
	}

	/* The scratch directory: fresh, inside --dir or $TMPDIR or /tmp. */
	const char *base = cf.dir ? cf.dir : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (cf.dir && mkdir(cf.dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", EB_PROG, cf.dir,
			strerror(errno));
		return 1;
	}
	if ((size_t)snprintf(cf.scratch, sizeof cf.scratch, "%s/kvs-eb-XXXXXX",
			     base) >= sizeof cf.scratch - 64) {
		fprintf(stderr, "%s: --dir: path too long\n", EB_PROG);
		return 2;
	}
	if (!mkdtemp(cf.scratch)) {
		fprintf(stderr, "%s: mkdtemp %s: %s\n", EB_PROG, cf.scratch,
			strerror(errno));
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	struct statvfs vfs;
	double free_b = statvfs(cf.scratch, &vfs) == 0 ?
		(double)vfs.f_bavail * (double)vfs.f_frsize : -1;
	double need_b = disk_needed(&cf);
	struct eb_meta meta = {
		.seed = cf.seed, .cpus = sysconf(_SC_NPROCESSORS_ONLN),
		.loadavg_start = loadavg1(),
		.phase_seconds = cf.seconds, .load_seconds = cf.load_seconds,
		.kvs_how = eb_kvs_adapter.how, .lmdb_how = lmdb_how,
		.relaxed = relaxed, .always = always, .command = cmd,
	};
	snprintf(lmdb_how, sizeof lmdb_how, "%s%s", lm->how,
		 eb_lmdb_writemap ? ", + MDB_WRITEMAP" : "");
	snprintf(relaxed, sizeof relaxed, "kvs fsync %s / lmdb %s",
		 eb_kvs_adapter.relaxed, lm->relaxed);
	snprintf(always, sizeof always, "kvs fsync %s / lmdb %s",
		 eb_kvs_adapter.always, lm->always);
	command_line(cmd, sizeof cmd, argc, argv);
	printf("%s %s: in-process engine benchmark, no network\n"
	       "  kvs : %s\n  lmdb: %s\n  relaxed = %s\n  always  = %s\n"
	       "  seed %llu, %ld cpus, load average %.2f; a timed phase stops "
	       "after %g s or 2 x keys operations,\n  the batch load that fills "
	       "the store after %g s\n"
	       "  scratch %s (removed at exit): %.1f GiB free, at most about "
	       "%.1f GiB needed\n",
	       EB_PROG, KVS_VERSION, eb_kvs_adapter.how, lmdb_how, meta.relaxed,
	       meta.always, (unsigned long long)cf.seed, meta.cpus,
	       meta.loadavg_start, cf.seconds, cf.load_seconds, cf.scratch,
	       free_b / 1073741824.0, need_b / 1073741824.0);
	if (free_b >= 0 && need_b > free_b)
		printf("  WARNING: the disk may fill up: use fewer keys or "
		       "--dir elsewhere\n");
	fflush(stdout);

	size_t nv = cf.n_nkeys > cf.n_vsize ? cf.n_nkeys : cf.n_vsize;
	int rc = 0;
	for (size_t i = 0; i < nv && rc == 0; i++)
		if (cf.only & (W_STORE | W_LOAD))
			rc = run_variant(&cf,
					 cf.nkeys[i < cf.n_nkeys ? i : cf.n_nkeys - 1],
					 cf.vsize[i < cf.n_vsize ? i : cf.n_vsize - 1],
					 &plain_rows, cf.only);
	/* The relaxed writes of the first variant again, against LMDB with
	 * MDB_WRITEMAP: faster small puts, so the stronger yardstick there. */
	unsigned wm_only = cf.only & (W_LOAD | W_BATCH | W_MIXED | W_SET);
	bool has_lmdb = cf.engines[cf.n_engines - 1] == lm;
	if (rc == 0 && writemap_too && wm_only && has_lmdb) {
		eb_lmdb_writemap = true;
		rc = run_variant(&cf, cf.nkeys[0], cf.vsize[0], &writemap_rows,
				 wm_only);
		eb_lmdb_writemap = false;
	}
	if (rc == 0 && (cf.only & W_TP))
		rc = run_tp(&cf);
	if (eb_stop)
		fprintf(stderr, "%s: interrupted\n", EB_PROG);

	meta.loadavg_end = loadavg1();
	printf("\n== results: ops/s, latency per call (us), kvs/lmdb = kvs ops/s "
	       "over lmdb ops/s ==\n");
	eb_report_table(stdout);
	printf("\n*  ops count keys; the latency is that of one batch call/txn.\n"
	       "** the latency is that of one open (kvs: recovery from hint files"
	       " and logs).\n"
	       "relaxed = %s.\nload average %.2f at start, %.2f at the end."
	       "\ncommand: %s\n",
	       relaxed, meta.loadavg_start, meta.loadavg_end, cmd);
	if (rc == 0 && cf.csv && eb_report_csv(cf.csv) != 0)
		rc = EB_ERR;
	if (rc == 0 && cf.json && eb_report_json(cf.json, &meta) != 0)
		rc = EB_ERR;
	if (rc == 0 && (cf.csv || cf.json))
		printf("written:%s%s%s%s\n", cf.csv ? " " : "", cf.csv ? cf.csv : "",
		       cf.json ? " " : "", cf.json ? cf.json : "");
	status = rc == 0 ? 0 : 1;

	rm_tree(cf.scratch);
	eb_report_free();
	for (size_t i = 0; i < n_sections; i++)
		free(sections[i]);
	return status;
}
