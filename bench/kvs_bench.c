/* kvs_bench.c - kvs-bench, a RESP2 load generator for kvs-server and Redis:
 * main: the run's phases (connect, preload, warmup, measure), the progress
 * line and CSV series each second, the summary and the exit status.  The
 * options are in kvs_bench_opts.c, the loops in kvs_bench_conn.c. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "kvs_bench.h"

#define SEC 1000000000ull

/* ---- the run ------------------------------------------------------------------------------ */

static struct kb_run run;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&run.stop, 1);
	/* A second Ctrl-C ends the process at once. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
}

/* What the loops have done so far, summed (main, while they run). */
struct snap {
	uint64_t ops, warm, errs;
	struct hist h;
};

static void take_snap(struct snap *s, struct kb_thread *th, unsigned n)
{
	memset(s, 0, sizeof *s);
	for (unsigned t = 0; t < n; t++) {
		struct kb_stats *st = th[t].st;
		for (unsigned c = 0; c < KB_NCMDS; c++) {
			s->ops += kb_get(&st->ops[c]);
			for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
				uint64_t v = kb_get(&st->hist[c].b[i]);
				s->h.b[i] += v;
				s->h.count += v;
			}
		}
		s->warm += kb_get(&st->warm_ops);
		for (unsigned e = 0; e < KB_NERRS; e++)
			s->errs += kb_get(&st->err[e]);
	}
}

/* A remainder of the run shorter than this is merged into the CSV row
 * before it rather than written as a row of its own: a few requests that
 * finished in milliseconds say nothing about a rate. */
#define CSV_MERGE_NS (SEC / 2)

/* The interval between two snapshots: `now` from `prev`.  The CSV is one
 * row behind: the row [held, prev] is written at the next tick, or at the
 * end together with a short remainder. */
struct progress {
	FILE *csv;
	bool tty, quiet, printed, holding;
	unsigned second;       /* progress lines printed */
	unsigned rows;         /* CSV rows written */
	uint64_t prev_ns;      /* the previous measured snapshot */
	uint64_t held_ns;      /* the start of the CSV row not yet written */
	struct snap prev, cur, held;
	struct hist d;
};

/* Latencies of the requests answered between two snapshots, into p->d. */
static void diff_hist(struct progress *p, const struct snap *from,
		      const struct snap *to)
{
	p->d.count = 0;
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		p->d.b[i] = to->h.b[i] - from->h.b[i];
		p->d.count += p->d.b[i];
	}
}

/* One CSV row: what was done from `from` to `to`, at the rate over that
 * real interval. */
static void csv_row(struct progress *p, const struct snap *from,
		    uint64_t from_ns, const struct snap *to, uint64_t to_ns)
{
	double secs = (double)(to_ns - from_ns) / 1e9;
	uint64_t ops = to->ops - from->ops;

	diff_hist(p, from, to);
	fprintf(p->csv, "%u,%llu,%.1f,%.1f,%.1f,%llu,%.3f\n", ++p->rows,
		(unsigned long long)ops, secs > 0 ? (double)ops / secs : 0,
		hist_quantile_us(&p->d, 0.5), hist_quantile_us(&p->d, 0.99),
		(unsigned long long)(to->errs - from->errs), secs);
	fflush(p->csv);
}

/* The end of the run at `end` (p->cur: the totals then): the held row,
 * and the remainder after it, merged into it when short. */
static void finish_csv(struct progress *p, uint64_t end)
{
	bool rest = end > p->prev_ns && (p->cur.ops != p->prev.ops ||
					 p->cur.errs != p->prev.errs);

	if (!p->holding) {
		if (rest)
			csv_row(p, &p->prev, p->prev_ns, &p->cur, end);
		return;
	}
	if (rest && end - p->prev_ns < CSV_MERGE_NS) {
		csv_row(p, &p->held, p->held_ns, &p->cur, end);
		return;
	}
	csv_row(p, &p->held, p->held_ns, &p->prev, p->prev_ns);
	if (rest)
		csv_row(p, &p->prev, p->prev_ns, &p->cur, end);
}

/* A tick during the measurement: the progress line, and the CSV row. */
static void report_interval(struct progress *p, uint64_t now)
{
	double secs = (double)(now - p->prev_ns) / 1e9;
	uint64_t ops = p->cur.ops - p->prev.ops;

	if (p->csv) {
		if (p->holding)
			csv_row(p, &p->held, p->held_ns, &p->prev, p->prev_ns);
		p->held = p->prev;
		p->held_ns = p->prev_ns;
		p->holding = true;
	}
	diff_hist(p, &p->prev, &p->cur);
	double rate = secs > 0 ? (double)ops / secs : 0;
	double p50 = hist_quantile_us(&p->d, 0.5), p99 = hist_quantile_us(&p->d, 0.99);
	p->second++;
	if (!p->quiet) {
		fprintf(stderr, "%s[%4us] %10.0f ops/s  p50 %8.1f us  p99 %8.1f us  "
			"errors %llu%s", p->tty ? "\r" : "", p->second, rate, p50,
			p99, (unsigned long long)p->cur.errs,
			p->tty ? "\033[K" : "\n");
		p->printed = true;
	}
	p->prev = p->cur;
	p->prev_ns = now;
}

static void report_warmup(struct progress *p, uint64_t now, uint64_t *prev_warm,
			  uint64_t *prev_ns)
{
	double secs = (double)(now - *prev_ns) / 1e9;
	double rate = secs > 0 ? (double)(p->cur.warm - *prev_warm) / secs : 0;

	if (!p->quiet) {
		fprintf(stderr, "%s[warmup] %10.0f ops/s  errors %llu%s",
			p->tty ? "\r" : "", rate,
			(unsigned long long)p->cur.errs, p->tty ? "\033[K" : "\n");
		p->printed = true;
	}
	*prev_warm = p->cur.warm;
	*prev_ns = now;
}

/* Tick every second until every loop is done. */
static void watch(struct kb_thread *th, unsigned n, struct progress *p)
{
	uint64_t next, warm_prev = 0, warm_ns = run.start_ns;

	p->prev_ns = run.measure_ns;
	next = run.start_ns + SEC;
	if (next > run.measure_ns)
		next = run.measure_ns + SEC;
	while (atomic_load(&run.done) < n) {
		uint64_t now = now_ns();
		if (now < next) {
			uint64_t wake = next - now < 50000000ull ? next : now + 50000000ull;
			sleep_until_ns(wake);
			continue;
		}
		take_snap(&p->cur, th, n);
		if (next <= run.measure_ns) {
			report_warmup(p, now, &warm_prev, &warm_ns);
			next += SEC;
			if (next > run.measure_ns)
				next = run.measure_ns + SEC;
		} else {
			report_interval(p, now);
			next += SEC;
		}
		while (next <= now)
			next += SEC;
	}
}

/* Did every measured reply fail?  Error and malformed replies are counted
 * in tot->ops as answered requests; none of them succeeded. */
static bool no_success(const struct kb_totals *tot)
{
	uint64_t bad = tot->err[KB_E_ERROR_REPLY] + tot->err[KB_E_PROTOCOL];
	return tot->ops <= bad;
}

/* The first error noted, for the exit message ("" kinds are skipped). */
static const char *first_error(const struct kb_totals *tot)
{
	for (unsigned e = 0; e < KB_NERRS; e++)
		if (tot->err[e] && *kb_first_note(e))
			return kb_first_note(e);
	return "see the summary";
}

static FILE *open_out(const char *path, const char *what)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "%s: %s %s: %s\n", KB_PROG, what, path,
			strerror(errno));
		exit(1);
	}
	return f;
}

int main(int argc, char **argv)
{
	static struct kb_opts o;
	struct kb_thread *th = NULL;
	struct progress prog = { 0 };
	FILE *json = NULL;
	unsigned nth;
	int status = 0;

	kb_parse_options(argc, argv, &o);
	if (o.json)
		json = open_out(o.json, "--json");
	if (o.csv) {
		prog.csv = open_out(o.csv, "--csv");
		fprintf(prog.csv, "second,ops,ops_per_sec,p50_us,p99_us,errors,interval_s\n");
		fflush(prog.csv);
	}
	prog.tty = isatty(STDERR_FILENO);
	prog.quiet = o.quiet;

	run.o = &o;
	run.end_ns = UINT64_MAX;
	if (getrandom(&run.run_id, sizeof run.run_id, GRND_NONBLOCK) !=
	    (ssize_t)sizeof run.run_id)
		run.run_id = (uint32_t)(now_ns() ^ ((uint64_t)getpid() << 16));
	run.pool = kb_pool_new();
	if (o.verify) {
		run.kstate = calloc(o.keys, sizeof *run.kstate);
		run.kfloor = calloc(o.keys, sizeof *run.kfloor);
	}
	if (!run.pool || (o.verify && (!run.kstate || !run.kfloor))) {
		fprintf(stderr, "%s: out of memory (--verify keeps 16 bytes a key)\n",
			KB_PROG);
		return 1;
	}
	if (o.dist == KB_ZIPF)
		kb_zipf_init(&run.zipf, o.keys, o.theta);
	atomic_store(&run.budget, (int64_t)o.requests);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	nth = o.threads;
	th = calloc(nth, sizeof *th);
	if (!th)
		return 1;
	for (unsigned i = 0; i < nth; i++) {
		unsigned first = (unsigned)((uint64_t)o.conns * i / nth);
		unsigned last = (unsigned)((uint64_t)o.conns * (i + 1) / nth);
		if (kb_thread_init(&th[i], &run, i, first, last - first) != 0 ||
		    !(th[i].st = calloc(1, sizeof *th[i].st))) {
			fprintf(stderr, "%s: out of memory\n", KB_PROG);
			return 1;
		}
	}
	if (pthread_barrier_init(&run.barrier, NULL, nth + 1) != 0)
		return 1;
	for (unsigned i = 0; i < nth; i++) {
		int rc = pthread_create(&th[i].tid, NULL, kb_thread_main, &th[i]);
		if (rc) {
			/* The loops already started wait at the barrier for
			 * a party that will never come: end the process. */
			fprintf(stderr, "%s: pthread_create: %s\n", KB_PROG,
				strerror(rc));
			_exit(1);
		}
	}

	/* Connect. */
	pthread_barrier_wait(&run.barrier);
	unsigned connected = atomic_load(&run.connected);
	run.abort = connected == 0 || atomic_load(&run.stop);
	if (connected && connected < o.conns)
		fprintf(stderr, "%s: %u of %u connections failed; going on with %u\n",
			KB_PROG, o.conns - connected, o.conns, connected);
	pthread_barrier_wait(&run.barrier);

	struct kb_outcome oc = { .threads = nth };
	if (!run.abort) {
		if (o.preload) {
			uint64_t t0 = now_ns();
			if (!o.quiet)
				fprintf(stderr, "preloading %u keys...\n", o.keys);
			pthread_barrier_wait(&run.barrier);
			oc.preload_s = (double)(now_ns() - t0) / 1e9;
		}
		run.start_ns = now_ns();
		run.measure_ns = run.start_ns + (uint64_t)(o.warmup * 1e9);
		if (o.duration > 0)
			run.end_ns = run.measure_ns + (uint64_t)(o.duration * 1e9);
		pthread_barrier_wait(&run.barrier);
		watch(th, nth, &prog);
	}
	for (unsigned i = 0; i < nth; i++)
		pthread_join(th[i].tid, NULL);
	if (prog.printed && prog.tty)
		fputc('\n', stderr);

	struct kb_totals *tot = calloc(1, sizeof *tot);
	if (!tot)
		return 1;
	kb_totals_collect(tot, th, nth);
	uint64_t end = 0;
	int failed = 0;
	for (unsigned i = 0; i < nth; i++) {
		if (th[i].end_ns > end)
			end = th[i].end_ns;
		if (th[i].failed && !failed)
			failed = th[i].failed;
	}
	oc.preload_keys = tot->preload_ops;
	oc.interrupted = atomic_load(&run.stop) != 0;
	if (!run.abort && end > run.measure_ns)
		oc.duration_s = (double)(end - run.measure_ns) / 1e9;
	if (o.requests)
		oc.complete = !run.abort && tot->ops == o.requests;
	else
		oc.complete = !run.abort && end >= run.end_ns;
	if (!run.abort && prog.csv) {
		take_snap(&prog.cur, th, nth);
		finish_csv(&prog, end);
	}

	if (o.quiet)
		kb_print_quiet(stdout, tot, &oc);
	else
		kb_print_summary(stdout, &o, tot, &oc);
	fflush(stdout);
	if (json && (kb_write_json(json, &o, tot, &oc) != 0 || fclose(json) != 0)) {
		fprintf(stderr, "%s: --json %s: %s\n", KB_PROG, o.json,
			strerror(errno));
		status = 1;
	}
	if (prog.csv && fclose(prog.csv) != 0) {
		fprintf(stderr, "%s: --csv %s: %s\n", KB_PROG, o.csv, strerror(errno));
		status = 1;
	}

	if (connected == 0) {
		fprintf(stderr, "%s: could not connect to the server%s (%s)\n",
			KB_PROG, o.naddr > 1 ? "s" : "",
			*kb_first_note(KB_E_CONNECTION) ?
				kb_first_note(KB_E_CONNECTION) : "no connection");
		status = 1;
	} else if (failed) {
		fprintf(stderr, "%s: a loop failed: %s\n", KB_PROG, strerror(failed));
		status = 1;
	} else if (tot->err[KB_E_VERIFY]) {
		fprintf(stderr, "%s: %llu verify errors\n", KB_PROG,
			(unsigned long long)tot->err[KB_E_VERIFY]);
		status = 1;
	} else if (!oc.complete && !oc.interrupted) {
		fprintf(stderr, "%s: the run ended early: %s\n", KB_PROG,
			tot->err[KB_E_CONNECTION] || tot->err[KB_E_TIMEOUT] ||
					tot->err[KB_E_PROTOCOL] ?
				"connections were lost" : "requests went unanswered");
		status = 1;
	} else if (tot->err_total && no_success(tot)) {
		/* Every reply an error (a missing password, a command the
		 * server lacks): the ops/s above measured only refusals. */
		fprintf(stderr, "%s: no request succeeded (%llu errors; %s)\n",
			KB_PROG, (unsigned long long)tot->err_total,
			first_error(tot));
		status = 1;
	} else if (tot->err_total > o.max_errors) {
		fprintf(stderr, "%s: %llu errors, more than --max-errors %llu "
			"(%s)\n", KB_PROG, (unsigned long long)tot->err_total,
			(unsigned long long)o.max_errors, first_error(tot));
		status = 1;
	}

	for (unsigned i = 0; i < nth; i++) {
		kb_thread_free(&th[i]);
		free(th[i].st);
	}
	free(th);
	free(tot);
	free(run.kstate);
	free(run.kfloor);
	free(run.pool);
	pthread_barrier_destroy(&run.barrier);
	return status;
}
