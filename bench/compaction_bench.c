/* compaction_bench.c - what compaction costs the foreground: kvs_get and
 * paced kvs_set latency on an idle store, during a kvs_compact() loop and
 * during automatic compaction; then disk use over time under overwrites. */
#include <dirent.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvs.h"
#include "bench.h"

#define PROG "compaction_bench"
#define KEY_FMT "key%08u"
#define KEY_MAX 16              /* "key" + 8 digits + NUL, with room */
#define MAX_KEYS 100000000u     /* what eight digits can name */
#define BATCH_OPS 1000
#define MAX_TICKS 100           /* latency is kept per tick of a phase */
#define MIN_TICK_NS 100000000ull /* ticks are 100 ms, or D/MAX_TICKS */
#define GARBAGE_ROUNDS 2        /* overwrites of every key before (ii) */

struct config {
	uint64_t nkeys;
	uint64_t value_size;
	uint64_t segment_size;
	uint64_t rate;            /* paced sets a second */
	double seconds;           /* D: each measured phase */
	uint64_t seed;
};

/* ---- keys and values --------------------------------------------------------- */

static size_t make_key(char *buf, uint32_t k)
{
	return (size_t)snprintf(buf, KEY_MAX, KEY_FMT, k);
}

/* Every value starts with its key (as much as fits), so a get can tell a
 * wrong value (say, a record compaction moved wrongly) from the right one;
 * the rest is filler. */
static void make_value(char *val, size_t vsize, const char *key, size_t klen)
{
	memcpy(val, key, klen < vsize ? klen : vsize);
}

static bool value_ok(const void *val, size_t vlen, size_t vsize,
		     const char *key, size_t klen)
{
	return vlen == vsize && memcmp(val, key, klen < vsize ? klen : vsize) == 0;
}

static void print_kvs_error(const char *what, int rc)
{
	fprintf(stderr, PROG ": %s: %s: %s\n", what, kvs_strerror(rc),
		kvs_errmsg());
}

/* Write every key 0..nkeys-1 once more, BATCH_OPS a kvs_write_batch call.
 * Returns KVS_OK or the error (printed).  If rounds_done is not NULL, it
 * is counted up and the loop stops at `deadline` (ns; 0: never). */
static int write_all(struct kvs *db, const struct config *cf, uint64_t deadline,
		     _Atomic uint64_t *rounds_done)
{
	struct kvs_op *ops = calloc(BATCH_OPS, sizeof *ops);
	char (*keys)[KEY_MAX] = calloc(BATCH_OPS, sizeof *keys);
	char *vals = malloc(BATCH_OPS * (cf->value_size ? cf->value_size : 1));
	int rc = KVS_OK;

	if (!ops || !keys || !vals) {
		fprintf(stderr, PROG ": out of memory for batch buffers\n");
		rc = KVS_ENOMEM;
		goto out;
	}
	memset(vals, 'v', BATCH_OPS * cf->value_size);
	do {
		for (uint64_t i = 0; i < cf->nkeys;) {
			size_t n = cf->nkeys - i < BATCH_OPS ?
					   (size_t)(cf->nkeys - i) : BATCH_OPS;
			for (size_t j = 0; j < n; j++) {
				char *v = vals + j * cf->value_size;
				size_t klen = make_key(keys[j], (uint32_t)(i + j));
				make_value(v, cf->value_size, keys[j], klen);
				ops[j] = (struct kvs_op){
					.type = KVS_OP_SET,
					.key = keys[j],
					.klen = klen,
					.val = v,
					.vlen = cf->value_size,
				};
			}
			if ((rc = kvs_write_batch(db, ops, n)) != KVS_OK) {
				print_kvs_error("kvs_write_batch", rc);
				goto out;
			}
			i += n;
			if (deadline && now_ns() >= deadline)
				goto out;
		}
		if (rounds_done)
			(*rounds_done)++;
	} while (deadline && now_ns() < deadline);
out:
	free(vals);
	free(keys);
	free(ops);
	return rc;
}

/* ---- a measured phase: a reader, a paced writer, maybe a compactor ----------- */

enum role { R_READER, R_WRITER, R_COMPACTOR };

struct phase {
	struct kvs *db;
	const struct config *cf;
	uint64_t t0, end;         /* ns; every thread starts at t0 */
	uint64_t tick_ns;
	unsigned nticks;
};

struct client {
	pthread_t tid;
	const struct phase *ph;
	enum role role;
	/* Results, read by the main thread after pthread_join(). */
	struct hist *ticks;       /* [nticks]: latency of ops started in it */
	struct hist *sched;       /* writer, [nticks]: from the set's slot */
	uint64_t ops;
	uint64_t notfound, mismatches;  /* reader: both must stay 0 */
	uint64_t due;             /* writer: slots that fell in the phase */
	uint64_t calls;           /* compactor: kvs_compact() calls */
	double busy_s, max_call_s;
	int rc;
	char errmsg[256];
};

static void client_fail(struct client *c, int rc)
{
	c->rc = rc;
	snprintf(c->errmsg, sizeof c->errmsg, "%s: %s", kvs_strerror(rc),
		 kvs_errmsg());
}

static unsigned tick_of(const struct phase *ph, uint64_t ns)
{
	uint64_t t = (ns - ph->t0) / ph->tick_ns;
	return t < ph->nticks ? (unsigned)t : ph->nticks - 1;
}

static void record(struct client *c, uint64_t start, uint64_t ns)
{
	hist_add(&c->ticks[tick_of(c->ph, start)], ns);
	c->ops++;
}

static void run_reader(struct client *c)
{
	const struct phase *ph = c->ph;
	struct rng r;
	char key[KEY_MAX];

	rng_seed(&r, ph->cf->seed * 1000003u + 1);
	for (uint64_t start; (start = now_ns()) < ph->end;) {
		size_t klen = make_key(key, rng_below(&r, (uint32_t)ph->cf->nkeys));
		void *val = NULL;
		size_t vlen = 0;
		int rc = kvs_get(ph->db, key, klen, &val, &vlen);
		uint64_t t1 = now_ns();
		if (rc == KVS_ENOTFOUND) {
			c->notfound++;
		} else if (rc != KVS_OK) {
			client_fail(c, rc);
			return;
		} else {
			if (!value_ok(val, vlen, ph->cf->value_size, key, klen))
				c->mismatches++;
			kvs_free(val);
		}
		record(c, start, t1 - start);
	}
}

/* Set i is due at t0 + i/rate, and the writer stops at the end of the
 * phase even if it is behind (a backlog of fast sets after a slow stretch
 * would otherwise hide the stretch).  Two latencies: the call's own, and
 * the time from the set's slot to its return, which also counts the wait
 * behind earlier slow sets (what an open-loop client at this rate sees). */
static void run_writer(struct client *c)
{
	const struct phase *ph = c->ph;
	const struct config *cf = ph->cf;
	char *val = malloc(cf->value_size ? cf->value_size : 1);
	char key[KEY_MAX];
	struct rng r;

	if (!val) {
		c->rc = KVS_ENOMEM;
		snprintf(c->errmsg, sizeof c->errmsg, "value buffer");
		return;
	}
	memset(val, 'w', cf->value_size);
	rng_seed(&r, cf->seed * 1000003u + 2);
	for (uint64_t i = 0;; i++) {
		uint64_t due = ph->t0 + i * 1000000000ull / cf->rate;
		if (due >= ph->end || now_ns() >= ph->end)
			break;
		sleep_until_ns(due);
		size_t klen = make_key(key, rng_below(&r, (uint32_t)cf->nkeys));
		make_value(val, cf->value_size, key, klen);
		uint64_t start = now_ns();
		int rc = kvs_set(ph->db, key, klen, val, cf->value_size);
		uint64_t t1 = now_ns();
		if (rc != KVS_OK) {
			client_fail(c, rc);
			break;
		}
		record(c, start, t1 - start);
		hist_add(&c->sched[tick_of(ph, due)], t1 - due);
	}
	c->due = (ph->end - ph->t0) * cf->rate / 1000000000ull;
	free(val);
}

/* kvs_compact() back to back until the phase ends (the last call may run
 * past it; the phase waits for it). */
static void run_compactor(struct client *c)
{
	const struct phase *ph = c->ph;

	for (uint64_t start; (start = now_ns()) < ph->end;) {
		int rc = kvs_compact(ph->db);
		double s = (double)(now_ns() - start) / 1e9;
		if (rc != KVS_OK) {
			client_fail(c, rc);
			return;
		}
		c->calls++;
		c->busy_s += s;
		if (s > c->max_call_s)
			c->max_call_s = s;
	}
}

static void *client_main(void *arg)
{
	struct client *c = arg;

	sleep_until_ns(c->ph->t0);
	switch (c->role) {
	case R_READER: run_reader(c); break;
	case R_WRITER: run_writer(c); break;
	case R_COMPACTOR: run_compactor(c); break;
	}
	return NULL;
}

/* What a phase reports. */
struct phase_result {
	const char *name;
	double seconds;           /* wall time, last client joined */
	uint64_t gets, sets, due;
	struct hist get, set, sched;  /* whole phase */
	/* Ticks from the start through the last one in which a compaction
	 * pass finished: "while compacting". */
	unsigned busy_ticks;
	double busy_s;
	struct hist get_busy, set_busy, sched_busy;
	uint64_t passes, reclaimed;  /* kvs_stats deltas over the phase */
	uint64_t calls;           /* kvs_compact() calls */
	double call_busy_s, max_call_s;
};

/* Run the reader and the paced writer (and a kvs_compact() loop if
 * `compactor`) for cf->seconds, sampling kvs_stats once a tick.
 * Returns 0, or -1 after printing the first error. */
static int run_phase(struct kvs *db, const struct config *cf, bool compactor,
		     struct phase_result *res)
{
	struct phase ph = { .db = db, .cf = cf };
	struct client cl[3];
	struct kvs_store_stats before, *samples = NULL;
	unsigned nclients = compactor ? 3 : 2;
	uint64_t dur = (uint64_t)(cf->seconds * 1e9);
	int rc, ret = -1;

	ph.tick_ns = dur / MAX_TICKS > MIN_TICK_NS ? dur / MAX_TICKS : MIN_TICK_NS;
	ph.nticks = (unsigned)((dur + ph.tick_ns - 1) / ph.tick_ns);
	memset(cl, 0, sizeof cl);
	for (unsigned i = 0; i < nclients; i++) {
		cl[i].ph = &ph;
		cl[i].role = (enum role)i;
		cl[i].ticks = calloc(ph.nticks, sizeof *cl[i].ticks);
		cl[i].sched = calloc(ph.nticks, sizeof *cl[i].sched);
		if (!cl[i].ticks || !cl[i].sched) {
			fprintf(stderr, PROG ": out of memory\n");
			goto out;
		}
	}
	if (!(samples = calloc(ph.nticks, sizeof *samples))) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	if ((rc = kvs_stats(db, &before)) != KVS_OK) {
		print_kvs_error("kvs_stats", rc);
		goto out;
	}
	/* Start everyone at one instant a little ahead, instead of a
	 * barrier: the writer's pacing is anchored there too. */
	ph.t0 = now_ns() + 20000000ull;
	ph.end = ph.t0 + dur;
	for (unsigned i = 0; i < nclients; i++) {
		int e = pthread_create(&cl[i].tid, NULL, client_main, &cl[i]);
		if (e != 0) {
			/* The started ones would run on: no tidy way back. */
			fprintf(stderr, PROG ": pthread_create: %s\n", strerror(e));
			exit(1);
		}
	}
	/* This thread samples the store once a tick. */
	for (unsigned t = 0; t < ph.nticks; t++) {
		sleep_until_ns(ph.t0 + (t + 1) * ph.tick_ns);
		if ((rc = kvs_stats(db, &samples[t])) != KVS_OK)
			samples[t] = t ? samples[t - 1] : before;
	}
	for (unsigned i = 0; i < nclients; i++)
		pthread_join(cl[i].tid, NULL);
	res->seconds = (double)(now_ns() - ph.t0) / 1e9;

	for (unsigned i = 0; i < nclients; i++) {
		if (cl[i].rc != KVS_OK) {
			fprintf(stderr, PROG ": %s thread: %s\n",
				i == R_READER ? "reader" : i == R_WRITER ?
				"writer" : "compactor", cl[i].errmsg);
			goto out;
		}
	}
	if (cl[R_READER].notfound || cl[R_READER].mismatches) {
		fprintf(stderr, PROG ": %s: %llu gets found no key and %llu "
			"a wrong value (every key is always present)\n",
			res->name, (unsigned long long)cl[R_READER].notfound,
			(unsigned long long)cl[R_READER].mismatches);
		goto out;
	}
	struct kvs_store_stats after;
	if ((rc = kvs_stats(db, &after)) != KVS_OK) {
		print_kvs_error("kvs_stats", rc);
		goto out;
	}
	res->passes = after.compactions - before.compactions;
	res->reclaimed = after.bytes_reclaimed - before.bytes_reclaimed;
	res->gets = cl[R_READER].ops;
	res->sets = cl[R_WRITER].ops;
	res->due = cl[R_WRITER].due;
	if (compactor) {
		res->calls = cl[R_COMPACTOR].calls;
		res->call_busy_s = cl[R_COMPACTOR].busy_s;
		res->max_call_s = cl[R_COMPACTOR].max_call_s;
	}
	res->busy_ticks = 0;
	for (unsigned t = 0; t < ph.nticks; t++) {
		uint64_t prev = t ? samples[t - 1].compactions : before.compactions;
		if (samples[t].compactions > prev)
			res->busy_ticks = t + 1;
	}
	res->busy_s = (double)res->busy_ticks * (double)ph.tick_ns / 1e9;
	for (unsigned t = 0; t < ph.nticks; t++) {
		hist_merge(&res->get, &cl[R_READER].ticks[t]);
		hist_merge(&res->set, &cl[R_WRITER].ticks[t]);
		hist_merge(&res->sched, &cl[R_WRITER].sched[t]);
		if (t < res->busy_ticks) {
			hist_merge(&res->get_busy, &cl[R_READER].ticks[t]);
			hist_merge(&res->set_busy, &cl[R_WRITER].ticks[t]);
			hist_merge(&res->sched_busy, &cl[R_WRITER].sched[t]);
		}
	}
	ret = 0;
out:
	for (unsigned i = 0; i < nclients; i++) {
		free(cl[i].ticks);
		free(cl[i].sched);
	}
	free(samples);
	return ret;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void print_header(void)
{
	printf("%-28s %9s %7s %7s %7s %7s %8s %9s %9s %6s %9s\n", "phase",
	       "get ops/s", "get p50", "get p99", "sets/s", "set p50",
	       "set p99", "set max", "slot p99", "passes", "recl. MiB");
}

/* One row: the whole phase, or its compacting stretch. */
struct view {
	const char *name;
	double secs;
	const struct hist *get, *set, *sched;
};

static void print_row(const struct view *v, const struct phase_result *r)
{
	double secs = v->secs > 0 ? v->secs : 1;
	printf("%-28s %9.0f %7.1f %7.1f %7.0f %7.1f %8.1f %9.1f %9.1f",
	       v->name, (double)v->get->count / secs,
	       hist_quantile_us(v->get, 0.50), hist_quantile_us(v->get, 0.99),
	       (double)v->set->count / secs, hist_quantile_us(v->set, 0.50),
	       hist_quantile_us(v->set, 0.99), hist_max_us(v->set),
	       hist_quantile_us(v->sched, 0.99));
	if (r)
		printf(" %6llu %9.1f", (unsigned long long)r->passes,
		       mib(r->reclaimed));
	printf("\n");
}

static void whole(const struct phase_result *r, const struct config *cf,
		  struct view *v)
{
	*v = (struct view){ r->name, cf->seconds, &r->get, &r->set, &r->sched };
}

static void busy(const struct phase_result *r, struct view *v)
{
	*v = (struct view){ "", r->busy_s, &r->get_busy, &r->set_busy,
			    &r->sched_busy };
}

static void print_result(const struct phase_result *r, const struct config *cf)
{
	struct view v;

	whole(r, cf, &v);
	print_row(&v, r);
	/* The sub-row, when compaction stopped well before the phase did. */
	if (r->busy_ticks && r->busy_s < cf->seconds * 0.95) {
		char name[64];
		snprintf(name, sizeof name, "  first %.1f s (compacting)",
			 r->busy_s);
		busy(r, &v);
		v.name = name;
		print_row(&v, NULL);
	}
	fflush(stdout);
}

static double ratio(const struct hist *h, const struct hist *base)
{
	double b = hist_quantile_us(base, 0.99);
	return b > 0 ? hist_quantile_us(h, 0.99) / b : 0.0;
}

static void print_ratio(const char *name, const struct view *v,
			const struct view *idle)
{
	printf("  %-34s get x%.2f   set x%.2f   slot x%.2f\n", name,
	       ratio(v->get, idle->get), ratio(v->set, idle->set),
	       ratio(v->sched, idle->sched));
}

/* ---- (iii) disk use over time -------------------------------------------------- */

/* Bytes of every file in dir: segments, hints, a compaction's unfinished
 * output (.seg.tmp), which kvs_stats.disk_bytes does not count. */
static uint64_t dir_bytes(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4096];
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir,
				     de->d_name) < sizeof path &&
		    stat(path, &st) == 0 && S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

struct overwriter {
	pthread_t tid;
	struct kvs *db;
	const struct config *cf;
	uint64_t end;
	_Atomic uint64_t rounds;  /* full rounds over all keys (the first
				     one creates them) */
	int rc;
};

static void *overwriter_main(void *arg)
{
	struct overwriter *o = arg;

	o->rc = write_all(o->db, o->cf, o->end, &o->rounds);
	return NULL;
}

static int run_disk_phase(const char *dir, const struct config *cf)
{
	struct kvs_options opts = { .engine = KVS_ENGINE_KVS };
	struct kvs *db = NULL;
	struct overwriter o = { .cf = cf };
	uint64_t dur = (uint64_t)(cf->seconds * 1e9), sample_ns = 100000000ull;
	double max_ratio = 0, max_ratio_at = 0, max_dir_ratio = 0;
	int rc;

	/* Default options: auto compaction, default segment size and rate. */
	if ((rc = kvs_open(dir, &opts, &db)) != KVS_OK) {
		print_kvs_error("kvs_open", rc);
		return -1;
	}
	printf("\n(iii) disk use: %llu keys x %llu B overwritten round after "
	       "round (kvs_write_batch x%d, one thread)\n      for %.1f s, default "
	       "options (auto compaction, 64 MiB segments, everysec)\n",
	       (unsigned long long)cf->nkeys, (unsigned long long)cf->value_size,
	       BATCH_OPS, cf->seconds);
	printf("%6s %10s %10s %10s %9s %10s %9s %5s %7s %7s\n", "sec",
	       "disk MiB", "live MiB", "dead MiB", "disk/live", "dir MiB",
	       "dir/live", "segs", "passes", "rounds");
	o.db = db;
	uint64_t t0 = now_ns();
	o.end = t0 + dur;
	int e = pthread_create(&o.tid, NULL, overwriter_main, &o);
	if (e != 0) {
		fprintf(stderr, PROG ": pthread_create: %s\n", strerror(e));
		kvs_close(db);
		return -1;
	}
	struct kvs_store_stats st = { 0 };
	for (uint64_t k = 1; k * sample_ns <= dur; k++) {
		sleep_until_ns(t0 + k * sample_ns);
		if (kvs_stats(db, &st) != KVS_OK)
			continue;
		uint64_t db_bytes = dir_bytes(dir);
		double ratio = st.live_bytes ?
			(double)st.disk_bytes / (double)st.live_bytes : 0.0;
		double dratio = st.live_bytes ?
			(double)db_bytes / (double)st.live_bytes : 0.0;
		if (ratio > max_ratio) {
			max_ratio = ratio;
			max_ratio_at = (double)(k * sample_ns) / 1e9;
		}
		if (dratio > max_dir_ratio)
			max_dir_ratio = dratio;
		if (k % 10 == 0)
			printf("%6.1f %10.1f %10.1f %10.1f %9.2f %10.1f %9.2f %5llu "
			       "%7llu %7llu\n", (double)(k * sample_ns) / 1e9,
			       mib(st.disk_bytes), mib(st.live_bytes),
			       mib(st.dead_bytes), ratio, mib(db_bytes), dratio,
			       (unsigned long long)st.segments,
			       (unsigned long long)st.compactions,
			       (unsigned long long)o.rounds);
		fflush(stdout);
	}
	pthread_join(o.tid, NULL);
	double secs = (double)(now_ns() - t0) / 1e9;
	if (o.rc != KVS_OK) {
		kvs_close(db);
		return -1;
	}
	if (kvs_stats(db, &st) == KVS_OK)
		printf("max disk/live %.2f (at %.1f s), max dir/live %.2f "
		       "(sampled every 100 ms); written %.1f MiB in %.1f s "
		       "(%.1f MiB/s), %llu passes reclaimed %.1f MiB\n",
		       max_ratio, max_ratio_at, max_dir_ratio,
		       mib(st.bytes_written), secs,
		       mib(st.bytes_written) / secs,
		       (unsigned long long)st.compactions,
		       mib(st.bytes_reclaimed));
	if ((rc = kvs_close(db)) != KVS_OK) {
		print_kvs_error("kvs_close", rc);
		return -1;
	}
	return 0;
}

/* ---- main ------------------------------------------------------------------------ */

static int open_store(const char *dir, const struct config *cf, bool autoc,
		      struct kvs **db)
{
	struct kvs_options o = {
		.engine = KVS_ENGINE_KVS,
		.segment_size = cf->segment_size,
		.no_auto_compact = !autoc,
	};
	int rc = kvs_open(dir, &o, db);
	if (rc != KVS_OK)
		print_kvs_error("kvs_open", rc);
	return rc;
}

static int close_store(struct kvs *db)
{
	int rc = kvs_close(db);
	if (rc != KVS_OK)
		print_kvs_error("kvs_close", rc);
	return rc;
}

/* Overwrite every key GARBAGE_ROUNDS times; print how long it took and
 * how much of the store is then dead. */
static int make_garbage(struct kvs *db, const struct config *cf)
{
	struct kvs_store_stats st;
	uint64_t t0 = now_ns();
	int rc;

	for (int i = 0; i < GARBAGE_ROUNDS; i++)
		if (write_all(db, cf, 0, NULL) != KVS_OK)
			return -1;
	if ((rc = kvs_stats(db, &st)) != KVS_OK) {
		print_kvs_error("kvs_stats", rc);
		return -1;
	}
	printf("garbage: every key overwritten %dx in %.2f s: %.1f MiB on disk, "
	       "%.1f MiB live, %.1f MiB dead, %llu segments\n", GARBAGE_ROUNDS,
	       (double)(now_ns() - t0) / 1e9, mib(st.disk_bytes),
	       mib(st.live_bytes), mib(st.dead_bytes),
	       (unsigned long long)st.segments);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-compaction-bench [-n KEYS] [--value-size BYTES]\n"
		"         [--segment-size BYTES] [--rate SETS] [--seconds D]\n"
		"         [--dir DIR] [--seed N] [-V]\n"
		"\n"
		"(i)-(ii): one reader (random kvs_get, as fast as it can) and one\n"
		"writer (kvs_set paced at --rate) for D seconds: on an idle store,\n"
		"during a kvs_compact() loop, and during automatic compaction at the\n"
		"default rate, each after every key was overwritten %dx.\n"
		"(iii): disk use while the keys are overwritten for D seconds with\n"
		"default options.\n"
		"\n"
		"  -n KEYS              keys (default 100000)\n"
		"  --value-size BYTES   value size (default 100)\n"
		"  --segment-size BYTES segment size of (i)-(ii) (default 4194304)\n"
		"  --rate SETS          paced sets a second (default 5000)\n"
		"  --seconds D          length of each phase (default 5)\n"
		"  --dir DIR            keep the stores in DIR/fg and DIR/disk (default:\n"
		"                       a /tmp directory, removed)\n"
		"  --seed N             PRNG seed (default 1)\n"
		"  -V, --version        print the version\n",
		GARBAGE_ROUNDS);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "value-size", required_argument, NULL, 'v' },
		{ "segment-size", required_argument, NULL, 'g' },
		{ "rate", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "dir", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cf = {
		.nkeys = 100000, .value_size = 100, .segment_size = 4u << 20,
		.rate = 5000, .seconds = 5.0, .seed = 1,
	};
	char tmpdir[] = "/tmp/kvs-compaction-XXXXXX";
	char fg_dir[4096], disk_dir[4096];
	const char *user_dir = NULL, *top;
	static struct phase_result idle, loop, after, autoc; /* big: hists */
	struct kvs *db = NULL;
	int c, rc, status = 1;

	while ((c = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			cf.nkeys = parse_num(PROG, optarg, 1, MAX_KEYS, "-n");
			break;
		case 'v':
			cf.value_size = parse_num(PROG, optarg, 0, 1u << 20,
						  "--value-size");
			break;
		case 'g':
			cf.segment_size = parse_num(PROG, optarg, 4096, 1u << 30,
						    "--segment-size");
			break;
		case 'r':
			cf.rate = parse_num(PROG, optarg, 1, 1000000, "--rate");
			break;
		case 'S':
			cf.seconds = parse_seconds(PROG, optarg, 600, "--seconds");
			break;
		case 'd': user_dir = optarg; break;
		case 's':
			cf.seed = parse_num(PROG, optarg, 0, UINT64_MAX, "--seed");
			break;
		case 'h': usage(stdout); return 0;
		case 'V':
			printf("kvs-compaction-bench %s\n", KVS_VERSION);
			return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (user_dir) {
		top = user_dir;
	} else if (!(top = mkdtemp(tmpdir))) {
		fprintf(stderr, PROG ": mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	if ((size_t)snprintf(fg_dir, sizeof fg_dir, "%s/fg", top) >=
		    sizeof fg_dir ||
	    (size_t)snprintf(disk_dir, sizeof disk_dir, "%s/disk", top) >=
		    sizeof disk_dir) {
		fprintf(stderr, PROG ": --dir: path too long\n");
		goto out;
	}

	printf("kvs compaction bench: %llu keys, %llu-byte values, segments of "
	       "%llu bytes, sets paced at %llu/s,\n%.1f s a phase, seed %llu, "
	       "%ld cpus, load average %.2f; stores in %s%s\n\n",
	       (unsigned long long)cf.nkeys, (unsigned long long)cf.value_size,
	       (unsigned long long)cf.segment_size, (unsigned long long)cf.rate,
	       cf.seconds, (unsigned long long)cf.seed,
	       sysconf(_SC_NPROCESSORS_ONLN), loadavg1(), top,
	       user_dir ? "" : " (removed at exit)");

	/* Load, then make two thirds of the store garbage, with automatic
	 * compaction off (an open option). */
	if (open_store(fg_dir, &cf, false, &db) != KVS_OK)
		goto out;
	uint64_t t0 = now_ns();
	if (write_all(db, &cf, 0, NULL) != KVS_OK)
		goto out;
	printf("load: %llu keys in %.2f s (kvs_write_batch x%d)\n",
	       (unsigned long long)cf.nkeys, (double)(now_ns() - t0) / 1e9,
	       BATCH_OPS);
	if (make_garbage(db, &cf) != 0)
		goto out;
	printf("\n");
	print_header();

	/* (i) The same store, no compaction running. */
	idle.name = "idle (no compaction)";
	if (run_phase(db, &cf, false, &idle) != 0)
		goto out;
	print_result(&idle, &cf);

	/* (ii-a) kvs_compact() back to back from a third thread.  The first
	 * call reclaims the garbage; the later ones each seal the active
	 * segment and rewrite every segment the paced sets left dead bytes
	 * in, without the rate limit. */
	loop.name = "kvs_compact() loop";
	if (run_phase(db, &cf, true, &loop) != 0)
		goto out;
	print_result(&loop, &cf);

	/* (i') Idle again, on the compacted store: gets from the sealed,
	 * mapped output differ from gets served by pread from the active
	 * segment, so this shows what the layout alone does. */
	after.name = "idle, after compaction";
	if (run_phase(db, &cf, false, &after) != 0)
		goto out;
	print_result(&after, &cf);
	rc = close_store(db);
	db = NULL;
	if (rc != KVS_OK)
		goto out;

	/* (ii-b) Garbage again, then reopen with automatic compaction at the
	 * default rate limit: it starts at once. */
	if (open_store(fg_dir, &cf, false, &db) != KVS_OK ||
	    make_garbage(db, &cf) != 0)
		goto out;
	rc = close_store(db);
	db = NULL;
	if (rc != KVS_OK || open_store(fg_dir, &cf, true, &db) != KVS_OK)
		goto out;
	autoc.name = "auto compaction (default rate)";
	if (run_phase(db, &cf, false, &autoc) != 0)
		goto out;
	print_result(&autoc, &cf);
	rc = close_store(db);
	db = NULL;
	if (rc != KVS_OK)
		goto out;

	struct view vi, vl, va;
	whole(&idle, &cf, &vi);
	whole(&loop, &cf, &vl);
	whole(&autoc, &cf, &va);
	printf("\np99 ratios, compaction / idle:\n");
	print_ratio("kvs_compact() loop, whole phase", &vl, &vi);
	print_ratio("auto, whole phase", &va, &vi);
	if (autoc.busy_ticks) {
		busy(&autoc, &va);
		print_ratio("auto, while compacting", &va, &vi);
	}
	printf("\nkvs_compact() loop: %llu calls, %.2f s inside them, longest "
	       "%.3f s\n", (unsigned long long)loop.calls, loop.call_busy_s,
	       loop.max_call_s);
	printf("sets done / slots in the phase: idle %llu/%llu, loop %llu/%llu, "
	       "idle after %llu/%llu, auto %llu/%llu\n",
	       (unsigned long long)idle.sets, (unsigned long long)idle.due,
	       (unsigned long long)loop.sets, (unsigned long long)loop.due,
	       (unsigned long long)after.sets, (unsigned long long)after.due,
	       (unsigned long long)autoc.sets, (unsigned long long)autoc.due);
	printf("load average now %.2f\n", loadavg1());
	printf("latency in us.  set: the kvs_set call; slot: from the set's "
	       "paced slot to its\nreturn (counts waiting behind slow sets); "
	       "max to the histogram's 3%%.  passes,\nrecl. MiB: kvs_stats "
	       "compactions and bytes_reclaimed over the phase.  'compacting':\n"
	       "from the start through the last %.1f s tick in which a pass "
	       "finished.  The reader\nchecked every value.\n",
	       (double)MIN_TICK_NS / 1e9);

	/* (iii) Disk use over time. */
	if (run_disk_phase(disk_dir, &cf) != 0)
		goto out;

	printf("\ncommand: %s -n %llu --value-size %llu --segment-size %llu "
	       "--rate %llu --seconds %g --seed %llu%s%s\n", argv[0],
	       (unsigned long long)cf.nkeys, (unsigned long long)cf.value_size,
	       (unsigned long long)cf.segment_size, (unsigned long long)cf.rate,
	       cf.seconds, (unsigned long long)cf.seed,
	       user_dir ? " --dir " : "", user_dir ? user_dir : "");
	status = 0;
out:
	if (db)
		kvs_close(db);
	if (!user_dir)
		rm_tree(top);
	return status;
}
