/* startup_bench.c - how long kvs_open takes on a store of N keys with the
 * engine's hint files and without them, and what the in-memory index costs
 * per key (resident memory gained across kvs_open). */
#include <dirent.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kvs.h"
#include "bench.h"

#define PROG "startup_bench"
#define KEY_FMT "key%08u"
#define KEY_MAX 16              /* "key" + 8 digits + NUL, with room */
#define MAX_KEYS 100000000u     /* what eight digits can name */
#define BATCH_OPS 1000
#define RUNS 3                  /* opens per mode; the median is reported */
#define LOAD_WARN_S 30.0        /* a load slower than this is reported */

/*
 * Every kvs_open is measured in a fresh child process, and so is the load.
 * Two reasons: resident memory only grows back to the OS lazily after
 * kvs_close (malloc keeps freed arenas), so a second open in one process
 * would measure nothing; and the parent never starts an engine thread, so
 * fork() is always called from a single-threaded process.  Children report
 * through a pipe as one fixed-size struct.
 */

struct load_result {
	int rc;
	char errmsg[256];
	uint64_t keys;
	uint64_t key_bytes;
	double seconds;
	struct kvs_store_stats st;  /* just before kvs_close */
	double close_seconds;
};

struct open_result {
	int rc;
	char errmsg[256];
	double open_ms;           /* kvs_open() call to return */
	uint64_t rss_before, rss_after;   /* resident bytes (statm) */
	uint64_t anon_before, anon_after; /* resident minus file-backed */
	struct kvs_store_stats st;
};

struct config {
	const char *dir;
	uint64_t nkeys;
	uint64_t value_size;
	uint64_t segment_size;    /* 0: the engine's default */
	uint64_t seed;
};

/* Resident and anonymous-resident bytes of this process, from
 * /proc/self/statm: "size resident shared ..." in pages, where shared is
 * the file-backed part (the mapped segments among it). */
static int read_rss(uint64_t *rss, uint64_t *anon)
{
	unsigned long long size, res, shared;
	FILE *f = fopen("/proc/self/statm", "r");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%llu %llu %llu", &size, &res, &shared) == 3;
	fclose(f);
	if (!ok)
		return -1;
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	*rss = res * page;
	*anon = (res - shared) * page;
	return 0;
}

static size_t make_key(char *buf, uint32_t k)
{
	return (size_t)snprintf(buf, KEY_MAX, KEY_FMT, k);
}

/* ---- the children ---------------------------------------------------------- */

static void load_child(const struct config *cf, struct load_result *res)
{
	struct kvs_options o = {
		.engine = KVS_ENGINE_KVS,
		.fsync = KVS_FSYNC_NEVER,
		.segment_size = cf->segment_size,
	};
	struct kvs_op *ops = calloc(BATCH_OPS, sizeof *ops);
	char (*keys)[KEY_MAX] = calloc(BATCH_OPS, sizeof *keys);
	char *val = malloc(cf->value_size ? cf->value_size : 1);
	uint32_t *perm = malloc(cf->nkeys * sizeof *perm);
	struct kvs *db = NULL;

	if (!ops || !keys || !val || !perm) {
		res->rc = KVS_ENOMEM;
		snprintf(res->errmsg, sizeof res->errmsg, "load buffers");
		goto out;
	}
	/* Keys go in in a seeded random order; each value starts with its
	 * key (as much as fits) and the rest is filler. */
	rng_shuffle(perm, (uint32_t)cf->nkeys, cf->seed);
	memset(val, 'v', cf->value_size);
	if ((res->rc = kvs_open(cf->dir, &o, &db)) != KVS_OK)
		goto fail;
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < cf->nkeys;) {
		size_t n = cf->nkeys - i < BATCH_OPS ? (size_t)(cf->nkeys - i)
						     : BATCH_OPS;
		for (size_t j = 0; j < n; j++) {
			size_t klen = make_key(keys[j], perm[i + j]);
			ops[j] = (struct kvs_op){
				.type = KVS_OP_SET,
				.key = keys[j],
				.klen = klen,
				.val = val,
				.vlen = cf->value_size,
			};
			res->key_bytes += klen;
		}
		/* One value buffer for the whole batch: only its length
		 * matters to what is measured here. */
		if ((res->rc = kvs_write_batch(db, ops, n)) != KVS_OK)
			goto fail;
		i += n;
		res->keys = i;
	}
	res->seconds = (double)(now_ns() - t0) / 1e9;
	if ((res->rc = kvs_stats(db, &res->st)) != KVS_OK)
		goto fail;
	t0 = now_ns();
	res->rc = kvs_close(db);
	db = NULL;
	res->close_seconds = (double)(now_ns() - t0) / 1e9;
	if (res->rc != KVS_OK)
		goto fail;
	goto out;
fail:
	snprintf(res->errmsg, sizeof res->errmsg, "%s: %s",
		 kvs_strerror(res->rc), kvs_errmsg());
out:
	if (db)
		kvs_close(db);
	free(perm);
	free(val);
	free(keys);
	free(ops);
}

static void open_child(const struct config *cf, struct open_result *res)
{
	struct kvs_options o = {
		.engine = KVS_ENGINE_KVS,
		.segment_size = cf->segment_size,
	};
	struct kvs *db = NULL;

	if (read_rss(&res->rss_before, &res->anon_before) != 0) {
		res->rc = KVS_EIO;
		snprintf(res->errmsg, sizeof res->errmsg,
			 "cannot read /proc/self/statm");
		return;
	}
	uint64_t t0 = now_ns();
	res->rc = kvs_open(cf->dir, &o, &db);
	res->open_ms = (double)(now_ns() - t0) / 1e6;
	if (res->rc == KVS_OK &&
	    read_rss(&res->rss_after, &res->anon_after) != 0) {
		res->rc = KVS_EIO;
		snprintf(res->errmsg, sizeof res->errmsg,
			 "cannot read /proc/self/statm");
	} else if (res->rc == KVS_OK &&
		   (res->rc = kvs_stats(db, &res->st)) == KVS_OK) {
		res->rc = kvs_close(db);
		db = NULL;
	}
	if (res->rc != KVS_OK && !res->errmsg[0])
		snprintf(res->errmsg, sizeof res->errmsg, "%s: %s",
			 kvs_strerror(res->rc), kvs_errmsg());
	if (db)
		kvs_close(db);
}

enum child_kind { CHILD_LOAD, CHILD_OPEN };

/* Run one child of `kind` and copy its result (size bytes) into *res.
 * Returns 0, or -1 after printing why the child gave no result. */
static int run_child(enum child_kind kind, const struct config *cf,
		     void *res, size_t size)
{
	int fds[2];
	pid_t pid;

	fflush(stdout);
	if (pipe(fds) != 0 || (pid = fork()) < 0) {
		fprintf(stderr, PROG ": pipe/fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		memset(res, 0, size);
		if (kind == CHILD_LOAD)
			load_child(cf, res);
		else
			open_child(cf, res);
		const char *p = res;
		for (size_t off = 0; off < size;) {
			ssize_t w = write(fds[1], p + off, size - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	close(fds[1]);
	size_t got = 0;
	while (got < size) {
		ssize_t r = read(fds[0], (char *)res + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != size || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, PROG ": the %s child died (status 0x%x)\n",
			kind == CHILD_LOAD ? "load" : "open", (unsigned)status);
		return -1;
	}
	return 0;
}

/* ---- the store directory ------------------------------------------------------ */

struct dir_usage {
	uint64_t seg_bytes, hint_bytes, other_bytes;
	unsigned segs, hints;
};

static bool has_suffix(const char *name, const char *suffix)
{
	size_t n = strlen(name), s = strlen(suffix);
	return n > s && strcmp(name + n - s, suffix) == 0;
}

/* Sizes of the files in dir; with unlink_hints, delete each *.hint
 * instead of counting it.  Returns 0 or -1 (printed). */
static int scan_dir(const char *dir, bool unlink_hints, struct dir_usage *u)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[4096];

	memset(u, 0, sizeof *u);
	if (!d) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir,
				     de->d_name) >= sizeof path)
			continue;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (has_suffix(de->d_name, ".hint")) {
			if (unlink_hints) {
				if (unlink(path) != 0) {
					fprintf(stderr, PROG ": unlink %s: %s\n",
						path, strerror(errno));
					closedir(d);
					return -1;
				}
				continue;
			}
			u->hint_bytes += (uint64_t)st.st_size;
			u->hints++;
		} else if (has_suffix(de->d_name, ".seg")) {
			u->seg_bytes += (uint64_t)st.st_size;
			u->segs++;
		} else {
			u->other_bytes += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return 0;
}

/* ---- reporting ------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

struct mode_summary {
	double open_ms, open_us_stat, rss_per_key, anon_per_key;
	double min_ms, max_ms;
	uint64_t hint_loads, segments, live_keys;
};

static void summarize(const struct open_result *r, size_t n,
		      struct mode_summary *s)
{
	double ms[RUNS], us[RUNS], rss[RUNS], anon[RUNS];

	for (size_t i = 0; i < n; i++) {
		double keys = r[i].st.live_keys ? (double)r[i].st.live_keys : 1;
		ms[i] = r[i].open_ms;
		us[i] = (double)r[i].st.open_us;
		rss[i] = ((double)r[i].rss_after - (double)r[i].rss_before) / keys;
		anon[i] = ((double)r[i].anon_after - (double)r[i].anon_before) /
			  keys;
	}
	s->hint_loads = r[n - 1].st.hint_loads;
	s->segments = r[n - 1].st.segments;
	s->live_keys = r[n - 1].st.live_keys;
	s->open_ms = median(ms, n);
	s->min_ms = ms[0];
	s->max_ms = ms[n - 1];
	s->open_us_stat = median(us, n);
	s->rss_per_key = median(rss, n);
	s->anon_per_key = median(anon, n);
}

static void print_mode(const char *name, const struct mode_summary *s)
{
	printf("%-15s %4d %9.1f %8.1f %8.1f %10.1f %6llu/%-4llu %9llu "
	       "%9.1f %9.1f\n", name, RUNS, s->open_ms, s->min_ms, s->max_ms,
	       s->open_us_stat / 1000.0, (unsigned long long)s->hint_loads,
	       (unsigned long long)(s->segments ? s->segments - 1 : 0),
	       (unsigned long long)s->live_keys, s->rss_per_key,
	       s->anon_per_key);
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-startup-bench [-n KEYS] [--value-size BYTES]\n"
		"         [--segment-size BYTES] [--dir DIR] [--seed N] [-V]\n"
		"\n"
		"Loads a store (kvs_write_batch, %d sets a call, fsync never), then\n"
		"opens it %d times with the engine's hint files and %d times with\n"
		"them deleted first, each open in a fresh process.\n"
		"\n"
		"  -n KEYS              keys to load (default 1000000)\n"
		"  --value-size BYTES   value size (default 100)\n"
		"  --segment-size BYTES segment size (default: the engine's, 64 MiB)\n"
		"  --dir DIR            build the store in DIR (must hold no store)\n"
		"                       and keep it (default: a /tmp directory, removed)\n"
		"  --seed N             PRNG seed of the load order (default 1)\n"
		"  -V, --version        print the version\n",
		BATCH_OPS, RUNS, RUNS);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "value-size", required_argument, NULL, 'v' },
		{ "segment-size", required_argument, NULL, 'g' },
		{ "dir", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cf = { .nkeys = 1000000, .value_size = 100, .seed = 1 };
	char tmpdir[] = "/tmp/kvs-startup-XXXXXX";
	const char *user_dir = NULL;
	struct load_result load;
	struct open_result with[RUNS], without[RUNS];
	struct mode_summary sw, so;
	struct dir_usage u;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "n:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			cf.nkeys = parse_num(PROG, optarg, 1, MAX_KEYS, "-n");
			break;
		case 'v':
			cf.value_size = parse_num(PROG, optarg, 0, KVS_MAX_VALUE,
						  "--value-size");
			break;
		case 'g':
			cf.segment_size = parse_num(PROG, optarg, 4096, 1u << 30,
						    "--segment-size");
			break;
		case 'd': user_dir = optarg; break;
		case 's':
			cf.seed = parse_num(PROG, optarg, 0, UINT64_MAX, "--seed");
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("kvs-startup-bench %s\n", KVS_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (user_dir) {
		/* Refuse to add keys to an existing store: the figures would
		 * not be those of -n keys. */
		if (mkdir(user_dir, 0777) != 0 && errno != EEXIST) {
			fprintf(stderr, PROG ": %s: %s\n", user_dir,
				strerror(errno));
			return 1;
		}
		if (scan_dir(user_dir, false, &u) != 0)
			return 1;
		if (u.segs || u.hints) {
			fprintf(stderr, PROG ": %s already holds a store; give "
				"a new or empty --dir\n", user_dir);
			return 1;
		}
		cf.dir = user_dir;
	} else if (!(cf.dir = mkdtemp(tmpdir))) {
		fprintf(stderr, PROG ": mkdtemp: %s\n", strerror(errno));
		return 1;
	}

	printf("kvs startup bench: %llu keys, %llu-byte values, segments of "
	       "%llu bytes%s, seed %llu, %ld cpus, load average %.2f\n"
	       "store in %s%s\n\n",
	       (unsigned long long)cf.nkeys, (unsigned long long)cf.value_size,
	       (unsigned long long)(cf.segment_size ? cf.segment_size
						    : 64ull << 20),
	       cf.segment_size ? "" : " (default)",
	       (unsigned long long)cf.seed, sysconf(_SC_NPROCESSORS_ONLN),
	       loadavg1(), cf.dir, user_dir ? "" : " (removed at exit)");

	/* 1. The load. */
	if (run_child(CHILD_LOAD, &cf, &load, sizeof load) != 0)
		goto out;
	if (load.rc != KVS_OK) {
		fprintf(stderr, PROG ": load: %s\n", load.errmsg);
		goto out;
	}
	printf("load: %llu keys in %.2f s (%.0f keys/s, %.1f MiB/s of records) "
	       "with kvs_write_batch x%d, fsync never; kvs_close %.2f s\n",
	       (unsigned long long)load.keys, load.seconds,
	       (double)load.keys / load.seconds,
	       mib(load.st.bytes_written) / load.seconds, BATCH_OPS,
	       load.close_seconds);
	if (load.seconds > LOAD_WARN_S)
		printf("NOTE: the load took over %.0f s: kvs_write_batch is "
		       "slow here\n", LOAD_WARN_S);
	if (scan_dir(cf.dir, false, &u) != 0)
		goto out;
	printf("store: %.1f MiB on disk: %u segments %.1f MiB (kvs_stats "
	       "disk_bytes %.1f MiB), %u hint files %.1f MiB, other %.1f KiB\n",
	       mib(u.seg_bytes + u.hint_bytes + u.other_bytes), u.segs,
	       mib(u.seg_bytes), mib(load.st.disk_bytes), u.hints,
	       mib(u.hint_bytes), (double)u.other_bytes / 1024.0);
	printf("page cache: warm (the store was just written and every open "
	       "reads it again;\n  dropping the cache needs root, so cold "
	       "opens are not measured)\n\n");

	/* 2. Opens with the hint files the engine wrote. */
	for (int i = 0; i < RUNS; i++) {
		if (run_child(CHILD_OPEN, &cf, &with[i], sizeof with[i]) != 0)
			goto out;
		if (with[i].rc != KVS_OK) {
			fprintf(stderr, PROG ": open: %s\n", with[i].errmsg);
			goto out;
		}
	}
	/* 3. Opens without: a scanning open writes the hints again, so
	 * they are deleted before every run. */
	for (int i = 0; i < RUNS; i++) {
		if (scan_dir(cf.dir, true, &u) != 0 ||
		    run_child(CHILD_OPEN, &cf, &without[i], sizeof without[i]) != 0)
			goto out;
		if (without[i].rc != KVS_OK) {
			fprintf(stderr, PROG ": open: %s\n", without[i].errmsg);
			goto out;
		}
	}
	summarize(with, RUNS, &sw);
	summarize(without, RUNS, &so);

	double klen = (double)load.key_bytes / (double)load.keys;
	printf("%-15s %4s %9s %8s %8s %10s %11s %9s %9s %9s\n", "open", "runs",
	       "median ms", "min ms", "max ms", "open_us ms", "hints/seal",
	       "keys", "RSS B/key", "anon B/k");
	print_mode("with hints", &sw);
	print_mode("without hints", &so);
	printf("each run, ms:  with hints");
	for (int i = 0; i < RUNS; i++)
		printf(" %.1f", with[i].open_ms);
	printf(";  without hints");
	for (int i = 0; i < RUNS; i++)
		printf(" %.1f", without[i].open_ms);
	printf("\n\nopen speed-up from hints: x%.2f (median wall time)\n",
	       sw.open_ms > 0 ? so.open_ms / sw.open_ms : 0.0);
	printf("keys are %.1f bytes on average; the index costs %.1f bytes a "
	       "key beyond them\n  (anon RSS gained by kvs_open with hints, "
	       "%.1f without)\n",
	       klen, sw.anon_per_key - klen, so.anon_per_key - klen);
	printf("\nopen: wall time of kvs_open in a fresh process; open_us: the "
	       "engine's kvs_stats.open_us\n"
	       "hints/seal: segments loaded from a hint (kvs_stats.hint_loads) "
	       "/ sealed segments; the active\n  segment never has a hint and "
	       "is always scanned; a scanning open also writes the\n  missing "
	       "hints, inside the time measured\n"
	       "RSS B/key: (resident after open - before) / keys, from "
	       "/proc/self/statm; it counts\n  the pages of mapped segments "
	       "the open touched; anon B/k leaves them out (resident - shared)\n");
	char segopt[48] = "";
	if (cf.segment_size)
		snprintf(segopt, sizeof segopt, " --segment-size %llu",
			 (unsigned long long)cf.segment_size);
	printf("load average now %.2f\n", loadavg1());
	printf("command: %s -n %llu --value-size %llu%s --seed %llu%s%s\n",
	       argv[0], (unsigned long long)cf.nkeys,
	       (unsigned long long)cf.value_size, segopt,
	       (unsigned long long)cf.seed, user_dir ? " --dir " : "",
	       user_dir ? user_dir : "");
	status = 0;
out:
	if (!user_dir)
		rm_tree(cf.dir);
	return status;
}
