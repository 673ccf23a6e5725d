/* engine_bench.c - a small in-process benchmark of the kvs engine: load,
 * batch load, random gets (1..T threads) and durable overwrites with group
 * commit, printed as a table of throughput and p50/p99 latency. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kvs.h"
#include "bench.h"

#define PROG "engine_bench"

#define KEY_FMT "key%08u"
#define KEY_MAX 16              /* "key" + 8 digits + NUL, with room */
#define MAX_KEYS 100000000u     /* what eight digits can name */
#define MAX_THREADS 256
#define MAX_THREAD_RUNS 16      /* entries of -t LIST */
#define BATCH_OPS 1000
#define DURABLE_THREADS 8       /* the group-commit run of the overwrite */

/* ---- workers ------------------------------------------------------------------------ */

enum workload {
	W_LOAD,      /* kvs_set of perm[first .. first+count), in that order */
	W_BATCH,     /* the same keys through kvs_write_batch, BATCH_OPS a call */
	W_GET,       /* count kvs_gets of random loaded keys, values checked */
	W_OVERWRITE, /* count kvs_sets of random loaded keys */
};

/* What every worker of a phase shares; read-only while it runs. */
struct bench {
	struct kvs *db;
	const uint32_t *perm; /* a random permutation of the key numbers */
	uint32_t loaded;      /* W_GET/W_OVERWRITE pick from perm[0..loaded) */
	size_t value_size;
	uint64_t seed;
	uint64_t max_ns;      /* each phase stops after this long */
};

struct worker {
	pthread_t tid;
	const struct bench *b;
	pthread_barrier_t *start;
	enum workload w;
	unsigned id;
	uint64_t first, count;
	/* Results, read by the main thread after pthread_join(). */
	uint64_t done;        /* operations completed (keys, for W_BATCH) */
	uint64_t mismatches;  /* W_GET: values that were not the ones set */
	int rc;               /* the first error, or KVS_OK */
	char errmsg[256];
	struct hist hist;     /* per call: per batch for W_BATCH */
};

static size_t make_key(char *buf, uint32_t k)
{
	return (size_t)snprintf(buf, KEY_MAX, KEY_FMT, k);
}

/* Every value starts with its key (as much as fits), so a get can tell a
 * wrong value from the right one; the rest is filler. */
static void make_value(char *val, size_t vsize, const char *key, size_t klen)
{
	memcpy(val, key, klen < vsize ? klen : vsize);
}

static bool value_ok(const void *val, size_t vlen, size_t vsize,
		     const char *key, size_t klen)
{
	return vlen == vsize && memcmp(val, key, klen < vsize ? klen : vsize) == 0;
}

static void worker_fail(struct worker *wk, int rc)
{
	wk->rc = rc;
	snprintf(wk->errmsg, sizeof wk->errmsg, "%s", kvs_errmsg());
}

static void run_load(struct worker *wk, char *val, uint64_t deadline)
{
	const struct bench *b = wk->b;
	char key[KEY_MAX];

	for (uint64_t i = 0; i < wk->count; i++) {
		size_t klen = make_key(key, b->perm[wk->first + i]);
		make_value(val, b->value_size, key, klen);
		uint64_t t0 = now_ns();
		int rc = kvs_set(b->db, key, klen, val, b->value_size);
		uint64_t t1 = now_ns();
		if (rc != KVS_OK) {
			worker_fail(wk, rc);
			return;
		}
		hist_add(&wk->hist, t1 - t0);
		wk->done++;
		if (t1 >= deadline)
			return;
	}
}

static void run_batch(struct worker *wk, char *val, uint64_t deadline)
{
	const struct bench *b = wk->b;
	struct kvs_op *ops = calloc(BATCH_OPS, sizeof *ops);
	char (*keys)[KEY_MAX] = calloc(BATCH_OPS, sizeof *keys);

	if (!ops || !keys) {
		wk->rc = KVS_ENOMEM;
		snprintf(wk->errmsg, sizeof wk->errmsg, "batch buffers");
		goto out;
	}
	/* All ops of a call share one value buffer: its bytes do not matter
	 * here, and one buffer keeps memory small for big --value-size. */
	for (uint64_t i = 0; i < wk->count;) {
		size_t n = wk->count - i < BATCH_OPS ? (size_t)(wk->count - i)
						     : BATCH_OPS;
		for (size_t j = 0; j < n; j++) {
			ops[j] = (struct kvs_op){
				.type = KVS_OP_SET,
				.key = keys[j],
				.klen = make_key(keys[j], b->perm[wk->first + i + j]),
				.val = val,
				.vlen = b->value_size,
			};
		}
		uint64_t t0 = now_ns();
		int rc = kvs_write_batch(b->db, ops, n);
		uint64_t t1 = now_ns();
		if (rc != KVS_OK) {
			worker_fail(wk, rc);
			break;
		}
		hist_add(&wk->hist, t1 - t0);
		wk->done += n;
		i += n;
		if (t1 >= deadline)
			break;
	}
out:
	free(keys);
	free(ops);
}

static void run_random(struct worker *wk, char *val, uint64_t deadline)
{
	const struct bench *b = wk->b;
	struct rng r;
	char key[KEY_MAX];

	rng_seed(&r, b->seed * 1000003u + 7919u * (wk->id + 1) + (unsigned)wk->w);
	for (uint64_t i = 0; i < wk->count; i++) {
		size_t klen = make_key(key, b->perm[rng_below(&r, b->loaded)]);
		uint64_t t0, t1;
		int rc;
		if (wk->w == W_GET) {
			void *got = NULL;
			size_t glen = 0;
			t0 = now_ns();
			rc = kvs_get(b->db, key, klen, &got, &glen);
			t1 = now_ns();
			if (rc == KVS_OK) {
				if (!value_ok(got, glen, b->value_size, key, klen))
					wk->mismatches++;
				kvs_free(got);
			}
		} else {
			make_value(val, b->value_size, key, klen);
			t0 = now_ns();
			rc = kvs_set(b->db, key, klen, val, b->value_size);
			t1 = now_ns();
		}
		if (rc != KVS_OK) {
			worker_fail(wk, rc);
			return;
		}
		hist_add(&wk->hist, t1 - t0);
		wk->done++;
		if (t1 >= deadline)
			return;
	}
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	char *val = malloc(wk->b->value_size ? wk->b->value_size : 1);

	if (!val) {
		wk->rc = KVS_ENOMEM;
		snprintf(wk->errmsg, sizeof wk->errmsg, "value buffer");
	} else {
		memset(val, 'v', wk->b->value_size);
	}
	/* Wait even after a failure, so the barrier is always complete. */
	pthread_barrier_wait(wk->start);
	if (wk->rc == KVS_OK) {
		uint64_t deadline = now_ns() + wk->b->max_ns;
		switch (wk->w) {
		case W_LOAD: run_load(wk, val, deadline); break;
		case W_BATCH: run_batch(wk, val, deadline); break;
		case W_GET:
		case W_OVERWRITE: run_random(wk, val, deadline); break;
		}
	}
	free(val);
	return NULL;
}

/* ---- phases ------------------------------------------------------------------------ */

struct result {
	uint64_t ops;
	double seconds;
	struct hist hist;
};

/* Run `total` operations of workload w split over `threads` threads (or
 * fewer, if the time limit comes first).  Returns 0, or -1 after printing
 * the first error.  *res is filled on success. */
static int run_phase(const struct bench *b, enum workload w, unsigned threads,
		     uint64_t total, struct result *res)
{
	struct worker *wk = calloc(threads, sizeof *wk);
	pthread_barrier_t start;
	unsigned started = 0;
	int ret = 0;

	memset(res, 0, sizeof *res);
	if (!wk) {
		fprintf(stderr, "engine_bench: out of memory\n");
		return -1;
	}
	pthread_barrier_init(&start, NULL, threads + 1);
	uint64_t per = (total + threads - 1) / threads;
	for (unsigned i = 0; i < threads; i++) {
		uint64_t first = per * i < total ? per * i : total;
		wk[i] = (struct worker){
			.b = b, .start = &start, .w = w, .id = i,
			.first = first,
			.count = total - first < per ? total - first : per,
		};
		int e = pthread_create(&wk[i].tid, NULL, worker_main, &wk[i]);
		if (e != 0) {
			/* Threads that started wait on the barrier: it cannot
			 * be completed now, so there is no tidy way back. */
			fprintf(stderr, "engine_bench: pthread_create: %s\n",
				strerror(e));
			exit(1);
		}
		started++;
	}
	pthread_barrier_wait(&start);
	uint64_t t0 = now_ns();
	for (unsigned i = 0; i < started; i++)
		pthread_join(wk[i].tid, NULL);
	res->seconds = (double)(now_ns() - t0) / 1e9;
	pthread_barrier_destroy(&start);

	for (unsigned i = 0; i < threads; i++) {
		if (wk[i].rc != KVS_OK && ret == 0) {
			fprintf(stderr, "engine_bench: thread %u: %s: %s\n", i,
				kvs_strerror(wk[i].rc), wk[i].errmsg);
			ret = -1;
		}
		if (wk[i].mismatches && ret == 0) {
			fprintf(stderr, "engine_bench: thread %u: %llu gets "
				"returned a wrong value\n", i,
				(unsigned long long)wk[i].mismatches);
			ret = -1;
		}
		res->ops += wk[i].done;
		hist_merge(&res->hist, &wk[i].hist);
	}
	free(wk);
	return ret;
}

static void print_header(void)
{
	printf("%-28s %7s %10s %8s %12s %9s %9s\n", "workload", "threads",
	       "ops", "seconds", "ops/s", "p50 us", "p99 us");
}

static void print_row(const char *name, unsigned threads,
		      const struct result *r)
{
	printf("%-28s %7u %10llu %8.3f %12.0f %9.1f %9.1f\n", name, threads,
	       (unsigned long long)r->ops, r->seconds,
	       r->seconds > 0 ? (double)r->ops / r->seconds : 0.0,
	       hist_quantile_us(&r->hist, 0.50),
	       hist_quantile_us(&r->hist, 0.99));
	fflush(stdout);
}

/* ---- set-up ------------------------------------------------------------------------ */

static const char *fsync_name(enum kvs_fsync f)
{
	switch (f) {
	case KVS_FSYNC_ALWAYS: return "always";
	case KVS_FSYNC_NEVER: return "never";
	case KVS_FSYNC_EVERYSEC: break;
	}
	return "everysec";
}

static int open_store(const char *dir, enum kvs_fsync f, struct kvs **db)
{
	struct kvs_options o = { .fsync = f };
	int rc = kvs_open(dir, &o, db);
	if (rc != KVS_OK)
		fprintf(stderr, "engine_bench: kvs_open %s: %s: %s\n", dir,
			kvs_strerror(rc), kvs_errmsg());
	return rc;
}

static int close_store(struct kvs *db)
{
	int rc = kvs_close(db);
	if (rc != KVS_OK)
		fprintf(stderr, "engine_bench: kvs_close: %s: %s\n",
			kvs_strerror(rc), kvs_errmsg());
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-engine-bench [-n KEYS] [--value-size BYTES] [--dir DIR]\n"
		"         [--fsync always|everysec|never] [--seed N] [-t LIST]\n"
		"         [--seconds S]\n"
		"\n"
		"  -n KEYS            keys to load (default 200000)\n"
		"  --value-size BYTES value size (default 100)\n"
		"  --dir DIR          put the stores in DIR/main and DIR/batch and keep\n"
		"                     them (default: a fresh /tmp directory, removed)\n"
		"  --fsync POLICY     policy of the load and get phases (default everysec);\n"
		"                     the durable overwrite always uses 'always'\n"
		"  --seed N           PRNG seed (default 1)\n"
		"  -t LIST            thread counts of the get phase, e.g. 1,2,4\n"
		"                     (default 1,2; 1 always runs first)\n"
		"  --seconds S        time limit of each phase (default 3)\n");
}

/* Parse "1,2,4" into t[], with 1 first (the single-thread get). */
static unsigned parse_threads(const char *s, unsigned t[MAX_THREAD_RUNS])
{
	char buf[256];
	unsigned n = 1;

	t[0] = 1;
	if (strlen(s) >= sizeof buf) {
		fprintf(stderr, "engine_bench: -t: list too long\n");
		exit(2);
	}
	strcpy(buf, s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned v = (unsigned)parse_num(PROG, tok, 1, MAX_THREADS, "-t");
		if (v == 1)
			continue;
		if (n == MAX_THREAD_RUNS) {
			fprintf(stderr, "engine_bench: -t: at most %d counts\n",
				MAX_THREAD_RUNS);
			exit(2);
		}
		t[n++] = v;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "value-size", required_argument, NULL, 'v' },
		{ "dir", required_argument, NULL, 'd' },
		{ "fsync", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t nkeys = 200000, vsize = 100, seed = 1;
	double seconds = 3.0;
	enum kvs_fsync policy = KVS_FSYNC_EVERYSEC;
	const char *user_dir = NULL, *tlist = "1,2";
	unsigned threads[MAX_THREAD_RUNS], nthreads;
	char tmpdir[] = "/tmp/kvs-bench-XXXXXX";
	char main_dir[4096], batch_dir[4096];
	uint32_t *perm = NULL;
	struct kvs *db = NULL;
	struct bench b = { 0 };
	struct result res;
	char name[64];
	const char *top;
	int c, rc, status = 1;

	while ((c = getopt_long(argc, argv, "n:t:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			nkeys = parse_num(PROG, optarg, 1, MAX_KEYS, "-n");
			break;
		case 'v':
			vsize = parse_num(PROG, optarg, 0, KVS_MAX_VALUE,
					  "--value-size");
			break;
		case 'd': user_dir = optarg; break;
		case 'f':
			if (strcmp(optarg, "always") == 0)
				policy = KVS_FSYNC_ALWAYS;
			else if (strcmp(optarg, "everysec") == 0)
				policy = KVS_FSYNC_EVERYSEC;
			else if (strcmp(optarg, "never") == 0)
				policy = KVS_FSYNC_NEVER;
			else {
				fprintf(stderr, "engine_bench: --fsync: "
					"always, everysec or never\n");
				return 2;
			}
			break;
		case 's':
			seed = parse_num(PROG, optarg, 0, UINT64_MAX, "--seed");
			break;
		case 'S': {
			char *end;
			seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(seconds > 0) ||
			    seconds > 3600) {
				fprintf(stderr, "engine_bench: --seconds: "
					"0 < S <= 3600\n");
				return 2;
			}
			break;
		}
		case 't': tlist = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kvs-engine-bench %s\n", KVS_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "engine_bench: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	nthreads = parse_threads(tlist, threads);

	if (user_dir) {
		top = user_dir;
	} else if (!(top = mkdtemp(tmpdir))) {
		fprintf(stderr, "engine_bench: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	if ((size_t)snprintf(main_dir, sizeof main_dir, "%s/main", top) >=
		    sizeof main_dir ||
	    (size_t)snprintf(batch_dir, sizeof batch_dir, "%s/batch", top) >=
		    sizeof batch_dir) {
		fprintf(stderr, "engine_bench: --dir: path too long\n");
		goto out;
	}

	/* The load order: a seeded Fisher-Yates shuffle of 0..nkeys-1. */
	perm = malloc(nkeys * sizeof *perm);
	if (!perm) {
		fprintf(stderr, "engine_bench: out of memory for %llu keys\n",
			(unsigned long long)nkeys);
		goto out;
	}
	rng_shuffle(perm, (uint32_t)nkeys, seed);

	printf("kvs engine bench: %llu keys, %llu-byte values, fsync=%s, "
	       "seed %llu, %ld cpus, limit %.1f s a phase\n"
	       "stores in %s%s\n\n",
	       (unsigned long long)nkeys, (unsigned long long)vsize,
	       fsync_name(policy), (unsigned long long)seed,
	       sysconf(_SC_NPROCESSORS_ONLN), seconds, top,
	       user_dir ? "" : " (removed at exit)");
	print_header();

	b.perm = perm;
	b.value_size = vsize;
	b.seed = seed;
	b.max_ns = (uint64_t)(seconds * 1e9);

	/* 1. Load the main store, one kvs_set at a time. */
	if (open_store(main_dir, policy, &db) != KVS_OK)
		goto out;
	b.db = db;
	if (run_phase(&b, W_LOAD, 1, nkeys, &res) != 0)
		goto out;
	snprintf(name, sizeof name, "set (%s)", fsync_name(policy));
	print_row(name, 1, &res);
	b.loaded = (uint32_t)res.ops; /* a prefix of perm, if cut short */

	/* 2. Random gets of loaded keys, 1 thread then the others. */
	for (unsigned i = 0; i < nthreads; i++) {
		if (run_phase(&b, W_GET, threads[i], nkeys, &res) != 0)
			goto out;
		print_row("get (random)", threads[i], &res);
	}
	rc = close_store(db);
	db = NULL;
	if (rc != KVS_OK)
		goto out;

	/* 3. The same keys into a fresh store, BATCH_OPS per call. */
	if (open_store(batch_dir, policy, &db) != KVS_OK)
		goto out;
	b.db = db;
	if (run_phase(&b, W_BATCH, 1, nkeys, &res) != 0)
		goto out;
	snprintf(name, sizeof name, "batch set x%d (%s) *", BATCH_OPS,
		 fsync_name(policy));
	print_row(name, 1, &res);
	rc = close_store(db);
	db = NULL;
	if (rc != KVS_OK)
		goto out;

	/* 4. Durable overwrites of loaded keys: every set waits for its
	 * fdatasync; with many threads one sync covers many sets. */
	if (open_store(main_dir, KVS_FSYNC_ALWAYS, &db) != KVS_OK)
		goto out;
	b.db = db;
	static const unsigned durable[] = { 1, DURABLE_THREADS };
	for (unsigned i = 0; i < 2; i++) {
		if (run_phase(&b, W_OVERWRITE, durable[i], nkeys, &res) != 0)
			goto out;
		print_row("overwrite (always)", durable[i], &res);
	}
	rc = close_store(db);
	db = NULL;
	if (rc != KVS_OK)
		goto out;

	printf("\n* ops counts keys; its latency is per kvs_write_batch call.\n"
	       "command: %s -n %llu --value-size %llu --fsync %s --seed %llu "
	       "-t %s --seconds %g%s%s\n",
	       argv[0], (unsigned long long)nkeys, (unsigned long long)vsize,
	       fsync_name(policy), (unsigned long long)seed, tlist, seconds,
	       user_dir ? " --dir " : "", user_dir ? user_dir : "");
	status = 0;
out:
	if (db)
		kvs_close(db);
	free(perm);
	if (!user_dir)
		rm_tree(top);
	return status;
}
