/* kvs_bench_report.c - kvs-bench's reports: the totals of all loops, the
 * summary on stdout (full, or one line with -q) and the JSON summary. */
#include <errno.h>
#include <string.h>

#include "kvs.h"
#include "kvs_bench.h"

void kb_totals_collect(struct kb_totals *tot, struct kb_thread *threads,
		       unsigned n)
{
	memset(tot, 0, sizeof *tot);
	for (unsigned ti = 0; ti < n; ti++) {
		struct kb_stats *st = threads[ti].st;
		for (unsigned c = 0; c < KB_NCMDS; c++) {
			for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
				uint64_t v = kb_get(&st->hist[c].b[i]);
				tot->cmd[c].b[i] += v;
				tot->cmd[c].count += v;
			}
			tot->cmd_ops[c] += kb_get(&st->ops[c]);
			tot->cmd_sum_ns[c] += kb_get(&st->sum_ns[c]);
			uint64_t m = kb_get(&st->max_ns[c]);
			if (m > tot->cmd_max_ns[c])
				tot->cmd_max_ns[c] = m;
		}
		for (unsigned e = 0; e < KB_NERRS; e++)
			tot->err[e] += kb_get(&st->err[e]);
		tot->lost += kb_get(&st->lost);
		tot->warm_ops += kb_get(&st->warm_ops);
		tot->preload_ops += kb_get(&st->preload_ops);
		for (unsigned i = 0; i < st->nprefix; i++) {
			unsigned j = 0;
			while (j < tot->nprefix &&
			       strcmp(tot->prefix[j].name, st->prefix[i].name) != 0)
				j++;
			if (j == tot->nprefix) {
				if (j == sizeof tot->prefix / sizeof tot->prefix[0]) {
					tot->prefix_other += st->prefix[i].n;
					continue;
				}
				memcpy(tot->prefix[j].name, st->prefix[i].name,
				       sizeof tot->prefix[j].name);
				tot->nprefix++;
			}
			tot->prefix[j].n += st->prefix[i].n;
		}
		tot->prefix_other += st->prefix_other;
	}
	for (unsigned c = 0; c < KB_NCMDS; c++) {
		hist_merge(&tot->all, &tot->cmd[c]);
		tot->ops += tot->cmd_ops[c];
		tot->sum_ns += tot->cmd_sum_ns[c];
		if (tot->cmd_max_ns[c] > tot->max_ns)
			tot->max_ns = tot->cmd_max_ns[c];
	}
	for (unsigned e = 0; e < KB_NERRS; e++)
		tot->err_total += tot->err[e];
}

/* The commands the workload sends: reported even if none completed. */
static bool in_workload(const struct kb_opts *o, unsigned c)
{
	if (o->cmd >= 0)
		return (int)c == o->cmd;
	return (c == KB_SET && o->ratio_set) || (c == KB_GET && o->ratio_get);
}

static double rate(uint64_t ops, double s)
{
	return s > 0 ? (double)ops / s : 0.0;
}

static double mean_us(uint64_t sum_ns, uint64_t n)
{
	return n ? (double)sum_ns / (double)n / 1000.0 : 0.0;
}

void kb_print_summary(FILE *f, const struct kb_opts *o,
		      const struct kb_totals *t, const struct kb_outcome *oc)
{
	char wl[64], dist[32], vs[32];

	kb_workload_text(o, wl, sizeof wl);
	kb_dist_text(o, dist, sizeof dist);
	kb_value_size_text(o, vs, sizeof vs);
	fprintf(f, "%s %s:", KB_PROG, KVS_VERSION);
	for (unsigned i = 0; i < o->naddr; i++)
		fprintf(f, "%s %s", i ? "," : "", o->addr[i].text);
	fprintf(f, ", %u connections, %u thread%s, pipeline %u\n", o->conns,
		oc->threads, oc->threads == 1 ? "" : "s", o->pipeline);
	fprintf(f, "workload: %s, %u keys (%s, %u bytes), values %s bytes%s\n",
		wl, o->keys, dist, o->key_size, vs, o->verify ? ", verified" : "");
	if (o->preload)
		fprintf(f, "preload: %llu keys in %.2f s\n",
			(unsigned long long)oc->preload_keys, oc->preload_s);
	if (o->warmup > 0)
		fprintf(f, "warmup: %.1f s, %llu ops (not counted below)\n",
			o->warmup, (unsigned long long)t->warm_ops);
	fprintf(f, "total: %llu ops in %.2f s = %.1f ops/s%s%s\n",
		(unsigned long long)t->ops, oc->duration_s,
		rate(t->ops, oc->duration_s),
		oc->interrupted ? " (interrupted)" : "",
		!oc->complete && !oc->interrupted ? " (incomplete)" : "");
	fprintf(f, "errors: %llu (connection %llu, error replies %llu, "
		"protocol %llu, verify %llu, timeout %llu)",
		(unsigned long long)t->err_total,
		(unsigned long long)t->err[KB_E_CONNECTION],
		(unsigned long long)t->err[KB_E_ERROR_REPLY],
		(unsigned long long)t->err[KB_E_PROTOCOL],
		(unsigned long long)t->err[KB_E_VERIFY],
		(unsigned long long)t->err[KB_E_TIMEOUT]);
	if (t->lost)
		fprintf(f, ", %llu requests lost with their connection",
			(unsigned long long)t->lost);
	fputc('\n', f);
	for (unsigned i = 0; i < t->nprefix; i++)
		fprintf(f, "  error replies %s: %llu\n", t->prefix[i].name,
			(unsigned long long)t->prefix[i].n);
	if (t->prefix_other)
		fprintf(f, "  error replies (other): %llu\n",
			(unsigned long long)t->prefix_other);
	for (unsigned e = 0; e < KB_NERRS; e++)
		if (t->err[e] && *kb_first_note(e))
			fprintf(f, "  first %s error: %s\n", kb_err_name[e],
				kb_first_note(e));
	fprintf(f, "latency (us): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  "
		"max %.1f  mean %.1f\n",
		hist_quantile_us(&t->all, 0.50), hist_quantile_us(&t->all, 0.90),
		hist_quantile_us(&t->all, 0.99), hist_quantile_us(&t->all, 0.999),
		(double)t->max_ns / 1000.0, mean_us(t->sum_ns, t->ops));
	fprintf(f, "%-8s %12s %12s %10s %10s %10s\n", "command", "ops", "ops/s",
		"p50(us)", "p99(us)", "max(us)");
	for (unsigned c = 0; c < KB_NCMDS; c++) {
		if (!in_workload(o, c) && !t->cmd_ops[c])
			continue;
		fprintf(f, "%-8s %12llu %12.1f %10.1f %10.1f %10.1f\n",
			kb_cmd_name[c], (unsigned long long)t->cmd_ops[c],
			rate(t->cmd_ops[c], oc->duration_s),
			hist_quantile_us(&t->cmd[c], 0.50),
			hist_quantile_us(&t->cmd[c], 0.99),
			(double)t->cmd_max_ns[c] / 1000.0);
	}
}

void kb_print_quiet(FILE *f, const struct kb_totals *t,
		    const struct kb_outcome *oc)
{
	fprintf(f, "%.1f ops/s, p50 %.1f us, p99 %.1f us, %llu errors\n",
		rate(t->ops, oc->duration_s), hist_quantile_us(&t->all, 0.50),
		hist_quantile_us(&t->all, 0.99),
		(unsigned long long)t->err_total);
}

/* ---- JSON ------------------------------------------------------------------------------------- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_latency(FILE *f, const struct hist *h, uint64_t max_ns,
			 uint64_t sum_ns, uint64_t n)
{
	fprintf(f, "{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
		"\"max\":%.1f,\"mean\":%.1f}",
		hist_quantile_us(h, 0.50), hist_quantile_us(h, 0.90),
		hist_quantile_us(h, 0.99), hist_quantile_us(h, 0.999),
		(double)max_ns / 1000.0, mean_us(sum_ns, n));
}

int kb_write_json(FILE *f, const struct kb_opts *o, const struct kb_totals *t,
		  const struct kb_outcome *oc)
{
	char wl[64], dist[32], vs[32];

	kb_workload_text(o, wl, sizeof wl);
	kb_dist_text(o, dist, sizeof dist);
	kb_value_size_text(o, vs, sizeof vs);
	fprintf(f, "{\"tool\":\"%s\",\"version\":\"%s\",\"addr\":[", KB_PROG,
		KVS_VERSION);
	for (unsigned i = 0; i < o->naddr; i++) {
		if (i)
			fputc(',', f);
		json_str(f, o->addr[i].text);
	}
	fprintf(f, "],\"connections\":%u,\"threads\":%u,\"pipeline\":%u,"
		"\"workload\":", o->conns, oc->threads, o->pipeline);
	json_str(f, wl);
	fprintf(f, ",\"keys\":%u,\"key_dist\":", o->keys);
	json_str(f, dist);
	fprintf(f, ",\"key_size\":%u,\"value_size\":", o->key_size);
	json_str(f, vs);
	if (o->requests)
		fprintf(f, ",\"requests\":%llu", (unsigned long long)o->requests);
	else
		fprintf(f, ",\"requests\":null");
	fprintf(f, ",\"seed\":%llu,\"preload\":%s,\"verify\":%s,"
		"\"warmup_s\":%.3f,\"preload_s\":%.3f,\"duration_s\":%.3f,"
		"\"total_ops\":%llu,\"ops_per_sec\":%.1f,\"complete\":%s,"
		"\"interrupted\":%s,\"warmup_ops\":%llu,\"preload_ops\":%llu,"
		"\"requests_lost\":%llu,",
		(unsigned long long)o->seed, o->preload ? "true" : "false",
		o->verify ? "true" : "false", o->warmup, oc->preload_s,
		oc->duration_s, (unsigned long long)t->ops,
		rate(t->ops, oc->duration_s), oc->complete ? "true" : "false",
		oc->interrupted ? "true" : "false",
		(unsigned long long)t->warm_ops,
		(unsigned long long)t->preload_ops, (unsigned long long)t->lost);
	fprintf(f, "\"errors\":{\"total\":%llu", (unsigned long long)t->err_total);
	for (unsigned e = 0; e < KB_NERRS; e++)
		fprintf(f, ",\"%s\":%llu", kb_err_name[e],
			(unsigned long long)t->err[e]);
	fprintf(f, "},\"error_replies\":{");
	for (unsigned i = 0; i < t->nprefix; i++) {
		if (i)
			fputc(',', f);
		json_str(f, t->prefix[i].name);
		fprintf(f, ":%llu", (unsigned long long)t->prefix[i].n);
	}
	if (t->prefix_other)
		fprintf(f, "%s\"(other)\":%llu", t->nprefix ? "," : "",
			(unsigned long long)t->prefix_other);
	fprintf(f, "},\"latency_us\":");
	json_latency(f, &t->all, t->max_ns, t->sum_ns, t->ops);
	fprintf(f, ",\"commands\":{");
	bool first = true;
	for (unsigned c = 0; c < KB_NCMDS; c++) {
		if (!in_workload(o, c) && !t->cmd_ops[c])
			continue;
		fprintf(f, "%s\"%s\":{\"ops\":%llu,\"ops_per_sec\":%.1f,"
			"\"latency_us\":", first ? "" : ",", kb_cmd_name[c],
			(unsigned long long)t->cmd_ops[c],
			rate(t->cmd_ops[c], oc->duration_s));
		json_latency(f, &t->cmd[c], t->cmd_max_ns[c], t->cmd_sum_ns[c],
			     t->cmd_ops[c]);
		fputc('}', f);
		first = false;
	}
	fprintf(f, "}}\n");
	if (fflush(f) != 0 || ferror(f))
		return -1;
	return 0;
}
