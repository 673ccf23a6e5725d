/* eb_report.c - kvs-engine-bench's results: the rows measured, printed as
 * one table with kvs and lmdb side by side and their ratio, the targets
 * checked against that table, and CSV and JSON copies. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "engine_bench.h"

static struct eb_row *rows;
static size_t nrows, cap;

/* The targets the table makes checkable: reported, never tuned for. */
static const struct target {
	const char *workload;
	unsigned threads;
	double goal; /* kvs ops/s over lmdb ops/s */
	const char *what;
} targets[] = {
	{ "get", 1, 1.5, "random get, 1 thread: kvs >= 1.5x lmdb" },
	{ "get", 2, 1.5, "random get, 2 threads: kvs >= 1.5x lmdb" },
	{ "overwrite_always", 64, 20.0,
	  "overwrite fsync always, 64 threads: kvs >= 20x lmdb's sync per txn" },
	{ "batch_load", 1, 2.0,
	  "batch load, 1000 per batch/txn: kvs >= 2x lmdb" },
	{ "set", 1, 1.0,
	  "set, 1 thread: kvs everysec >= lmdb put per txn (MDB_NOSYNC)" },
	/* The same two against LMDB with MDB_WRITEMAP (--writemap-rows). */
	{ "batch_load_wm", 1, 2.0,
	  "[WM] batch load, 1000 per batch/txn: kvs >= 2x lmdb" },
	{ "set_wm", 1, 1.0,
	  "[WM] set, 1 thread: kvs everysec >= lmdb put per txn (NOSYNC)" },
};

void eb_report_add(const struct eb_row *r)
{
	if (nrows == cap) {
		size_t ncap = cap ? cap * 2 : 64;
		struct eb_row *n = realloc(rows, ncap * sizeof *n);
		if (!n) {
			fprintf(stderr, "%s: out of memory for the results\n",
				EB_PROG);
			exit(1);
		}
		rows = n;
		cap = ncap;
	}
	rows[nrows++] = *r;
}

void eb_report_free(void)
{
	free(rows);
	rows = NULL;
	nrows = cap = 0;
}

static double ops_per_sec(const struct eb_row *r)
{
	return r->seconds > 0 ? (double)r->ops / r->seconds : 0.0;
}

/* "12.3" below 1000 us, "12345" above: the table stays narrow. */
static void fmt_us(char *buf, size_t size, double us)
{
	snprintf(buf, size, us < 1000 ? "%.1f" : "%.0f", us);
}

void eb_report_progress(const struct eb_row *r)
{
	char p50[32], p99[32];

	if (r->na) {
		printf("  %-4s  %-48s n/a\n", r->engine, r->label);
	} else {
		fmt_us(p50, sizeof p50, r->p50_us);
		fmt_us(p99, sizeof p99, r->p99_us);
		printf("  %-4s  %-48s %3u thr %10llu ops %7.2f s %11.0f ops/s "
		       "p50 %s us p99 %s us\n",
		       r->engine, r->label, r->threads,
		       (unsigned long long)r->ops, r->seconds, ops_per_sec(r),
		       p50, p99);
	}
	fflush(stdout);
}

/* The row of `engine` with the same section, workload and threads as r. */
static const struct eb_row *find(const struct eb_row *r, const char *engine)
{
	for (size_t i = 0; i < nrows; i++)
		if (rows[i].section == r->section &&
		    strcmp(rows[i].workload, r->workload) == 0 &&
		    rows[i].threads == r->threads &&
		    strcmp(rows[i].engine, engine) == 0)
			return &rows[i];
	return NULL;
}

/* Is rows[i] the first row of its (section, workload, threads)? */
static bool first_of_kind(size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (rows[j].section == rows[i].section &&
		    strcmp(rows[j].workload, rows[i].workload) == 0 &&
		    rows[j].threads == rows[i].threads)
			return false;
	return true;
}

static bool measured(const struct eb_row *r)
{
	return r && !r->na && r->ops > 0 && r->seconds > 0;
}

/* kvs ops/s over lmdb ops/s for the kind of r; NAN if not both ran. */
static double ratio_of(const struct eb_row *r)
{
	const struct eb_row *k = find(r, "kvs"), *l = find(r, "lmdb");

	if (!measured(k) || !measured(l))
		return NAN;
	return ops_per_sec(k) / ops_per_sec(l);
}

static void print_side(FILE *out, const struct eb_row *r)
{
	char p50[32], p99[32];

	if (!r)
		fprintf(out, " %11s %8s %8s |", "-", "-", "-");
	else if (r->na)
		fprintf(out, " %11s %8s %8s |", "n/a", "", "");
	else {
		fmt_us(p50, sizeof p50, r->p50_us);
		fmt_us(p99, sizeof p99, r->p99_us);
		fprintf(out, " %11.0f %8s %8s |", ops_per_sec(r), p50, p99);
	}
}

static void print_targets(FILE *out)
{
	bool any = false;

	for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
		for (size_t i = 0; i < nrows; i++) {
			if (strcmp(rows[i].workload, targets[t].workload) != 0 ||
			    rows[i].threads != targets[t].threads ||
			    !first_of_kind(i))
				continue;
			double q = ratio_of(&rows[i]);
			if (isnan(q))
				continue;
			if (!any)
				fprintf(out, "\ntargets (reported as measured; "
					"kvs/lmdb ops/s):\n");
			any = true;
			fprintf(out, "  %-6s %-66s %7.2fx  [%s]\n",
				q >= targets[t].goal ? "met" : "MISSED",
				targets[t].what, q, rows[i].section);
		}
	}
}

void eb_report_table(FILE *out)
{
	const char *section = NULL;

	for (size_t i = 0; i < nrows; i++) {
		if (!first_of_kind(i))
			continue;
		if (rows[i].section != section) {
			section = rows[i].section;
			fprintf(out, "\n%s\n%-50s %3s | %11s %8s %8s | %11s %8s "
				"%8s | %8s\n", section, "workload", "thr",
				"kvs ops/s", "p50 us", "p99 us", "lmdb ops/s",
				"p50 us", "p99 us", "kvs/lmdb");
		}
		fprintf(out, "%-50s %3u |", rows[i].label, rows[i].threads);
		print_side(out, find(&rows[i], "kvs"));
		print_side(out, find(&rows[i], "lmdb"));
		double q = ratio_of(&rows[i]);
		if (isnan(q))
			fprintf(out, " %8s\n", "n/a");
		else /* small ratios (the open row) keep some digits */
			fprintf(out, q < 0.1 ? " %7.4fx\n" : " %7.2fx\n", q);
	}
	print_targets(out);
	fflush(out);
}

/* ---- CSV ---------------------------------------------------------------------- */

int eb_report_csv(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", EB_PROG, path, strerror(errno));
		return -1;
	}
	fprintf(f, "workload,threads,value_size,engine,ops,ops_per_sec,"
		"p50_us,p99_us\n");
	for (size_t i = 0; i < nrows; i++) {
		const struct eb_row *r = &rows[i];
		if (r->na)
			continue; /* the JSON file lists these */
		fprintf(f, "%s,%u,%llu,%s,%llu,%.1f,%.3f,%.3f\n", r->workload,
			r->threads, (unsigned long long)r->value_size, r->engine,
			(unsigned long long)r->ops, ops_per_sec(r), r->p50_us,
			r->p99_us);
	}
	/* Ratio rows: kvs's figure over lmdb's in each numeric column. */
	for (size_t i = 0; i < nrows; i++) {
		if (!first_of_kind(i) || isnan(ratio_of(&rows[i])))
			continue;
		const struct eb_row *k = find(&rows[i], "kvs");
		const struct eb_row *l = find(&rows[i], "lmdb");
		fprintf(f, "%s,%u,%llu,kvs/lmdb,,%.4f,%.4f,%.4f\n", k->workload,
			k->threads, (unsigned long long)k->value_size,
			ratio_of(k), l->p50_us > 0 ? k->p50_us / l->p50_us : 0.0,
			l->p99_us > 0 ? k->p99_us / l->p99_us : 0.0);
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: %s: %s\n", EB_PROG, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- JSON --------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A number, or null for NaN and infinities (which JSON cannot hold). */
static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.6g", v);
	else
		fputs("null", f);
}

static void json_row(FILE *f, const struct eb_row *r, const char *engine,
		     double ops_s, double p50, double p99, bool last)
{
	fputs("    {\"section\": ", f);
	json_str(f, r->section);
	fputs(", \"workload\": ", f);
	json_str(f, r->workload);
	fputs(", \"label\": ", f);
	json_str(f, r->label);
	fprintf(f, ", \"threads\": %u, \"value_size\": %llu, \"engine\": ",
		r->threads, (unsigned long long)r->value_size);
	json_str(f, engine);
	if (r->na) {
		fputs(", \"na\": true", f);
	} else {
		if (strcmp(engine, "kvs/lmdb") != 0)
			fprintf(f, ", \"ops\": %llu, \"seconds\": %.6f",
				(unsigned long long)r->ops, r->seconds);
		fputs(", \"ops_per_sec\": ", f);
		json_num(f, ops_s);
		fputs(", \"p50_us\": ", f);
		json_num(f, p50);
		fputs(", \"p99_us\": ", f);
		json_num(f, p99);
	}
	fprintf(f, "}%s\n", last ? "" : ",");
}

int eb_report_json(const char *path, const struct eb_meta *m)
{
	FILE *f = fopen(path, "w");
	size_t nratio = 0, done = 0;
	bool first = true;

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", EB_PROG, path, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < nrows; i++)
		nratio += first_of_kind(i) && !isnan(ratio_of(&rows[i]));
	fprintf(f, "{\n  \"program\": \"%s\", \"version\": \"%s\",\n"
		"  \"seed\": %llu, \"cpus\": %ld, \"loadavg_start\": %.2f, "
		"\"loadavg_end\": %.2f,\n  \"phase_seconds\": %g, "
		"\"load_seconds\": %g,\n  \"kvs\": ", EB_PROG, KVS_VERSION,
		(unsigned long long)m->seed, m->cpus, m->loadavg_start,
		m->loadavg_end, m->phase_seconds, m->load_seconds);
	json_str(f, m->kvs_how);
	fputs(",\n  \"lmdb\": ", f);
	json_str(f, m->lmdb_how);
	fputs(",\n  \"relaxed\": ", f);
	json_str(f, m->relaxed);
	fputs(",\n  \"always\": ", f);
	json_str(f, m->always);
	fputs(",\n  \"command\": ", f);
	json_str(f, m->command);
	fputs(",\n  \"rows\": [\n", f);
	for (size_t i = 0; i < nrows; i++)
		json_row(f, &rows[i], rows[i].engine, ops_per_sec(&rows[i]),
			 rows[i].p50_us, rows[i].p99_us,
			 ++done == nrows + nratio);
	for (size_t i = 0; i < nrows; i++) {
		if (!first_of_kind(i) || isnan(ratio_of(&rows[i])))
			continue;
		const struct eb_row *k = find(&rows[i], "kvs");
		const struct eb_row *l = find(&rows[i], "lmdb");
		json_row(f, k, "kvs/lmdb", ratio_of(k), k->p50_us / l->p50_us,
			 k->p99_us / l->p99_us, ++done == nrows + nratio);
	}
	fputs("  ],\n  \"targets\": [", f);
	for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
		for (size_t i = 0; i < nrows; i++) {
			if (strcmp(rows[i].workload, targets[t].workload) != 0 ||
			    rows[i].threads != targets[t].threads ||
			    !first_of_kind(i) || isnan(ratio_of(&rows[i])))
				continue;
			double q = ratio_of(&rows[i]);
			fprintf(f, "%s\n    {\"target\": ", first ? "" : ",");
			first = false;
			json_str(f, targets[t].what);
			fputs(", \"section\": ", f);
			json_str(f, rows[i].section);
			fprintf(f, ", \"goal\": %g, \"ratio\": ", targets[t].goal);
			json_num(f, q);
			fprintf(f, ", \"met\": %s}", q >= targets[t].goal ?
				"true" : "false");
		}
	}
	fputs("\n  ]\n}\n", f);
	if (fclose(f) != 0) {
		fprintf(stderr, "%s: %s: %s\n", EB_PROG, path, strerror(errno));
		return -1;
	}
	return 0;
}
