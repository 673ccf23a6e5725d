/* kvs_bench.c - kvs-bench, a RESP2 load generator for kvs-server and Redis:
 * the command line, the run's phases (connect, preload, warmup, measure),
 * the progress line and CSV series each second, and the exit status. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "kvs.h"
#include "server.h"
#include "kvs_bench.h"

#define DEFAULT_REQUESTS 100000
#define DEFAULT_KEYS 100000
#define DEFAULT_KEY_SIZE 16
#define DEFAULT_VALUE_SIZE 100
#define DEFAULT_TIMEOUT 10.0
#define SEC 1000000000ull

static void usage(FILE *out)
{
	fprintf(out,
"usage: kvs-bench [options]\n"
"A RESP2 load generator for kvs-server and Redis servers.\n"
"\n"
"Where and how hard:\n"
"  --addr IP:PORT        server address (default " KB_DEFAULT_ADDR "; IPv6 as\n"
"                        [::1]:4000); repeat it to spread connections over several\n"
"  -c, --connections N   connections (default 50)\n"
"  -t, --threads N       event-loop threads, connections spread over them\n"
"                        (default 1; at most one per connection)\n"
"  -P, --pipeline N      requests in flight per connection (default 1)\n"
"  -n, --requests N      measured requests in all (default %u)\n"
"  -d, --duration S      or: measure for S seconds\n"
"  --warmup S            run S seconds first, not measured (default 0)\n"
"  --timeout S           a request without a reply for S seconds is an error\n"
"                        and closes its connection (default %g; also the\n"
"                        connect timeout)\n"
"  --password PW         AUTH with PW on each connection (default: $KVS_PASSWORD)\n"
"\n"
"What:\n"
"  --ratio SET:GET       a mix of SET and GET, e.g. 1:9 (the default)\n"
"  --cmd NAME            one command only: ping, set, get, incr (on counters\n"
"                        \"ctr:...\"), mset (%u keys each), del\n"
"  --keys N              key space: keys \"key:\" + zero-padded number, 0..N-1\n"
"                        (default %u)\n"
"  --key-dist D          uniform (default), zipf[:THETA] (0 < THETA < 1,\n"
"                        default 0.99), sequential\n"
"  --key-size N          bytes per key (default %u, at least what N keys need)\n"
"  --value-size N|MIN-MAX  bytes per value (default %u)\n"
"  --seed N              seed of the key and command choices (default 1)\n"
"  --preload             SET every key once before measuring (pipelined)\n"
"  --verify              check every GET: values name their key and version\n"
"                        and carry filler derived from both; a wrong, corrupted\n"
"                        or stale value (older than one acknowledged before the\n"
"                        GET was sent) is a verify error; with --preload a nil\n"
"                        is one too (values need at least %u bytes)\n"
"\n"
"Output:\n"
"  --json FILE           the summary as JSON\n"
"  --csv FILE            one row per second: second,ops,ops_per_sec,p50_us,\n"
"                        p99_us,errors,interval_s\n"
"  -q, --quiet           no progress lines; a one-line summary\n"
"  -V, --version         print the version\n"
"  -h, --help            this text\n"
"\n"
"A progress line goes to stderr each second; the summary to stdout.  Ctrl-C\n"
"stops the run and prints the summary so far.  Exit status: 0 done; 1 no\n"
"connection could be made, a verify error, or the run ended early (every\n"
"connection lost); 2 bad options.\n",
		DEFAULT_REQUESTS, DEFAULT_TIMEOUT, KB_MSET_KEYS, DEFAULT_KEYS,
		DEFAULT_KEY_SIZE, DEFAULT_VALUE_SIZE, KB_VALUE_HEADER_MAX);
}

__attribute__((format(printf, 1, 2), noreturn))
static void bad(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\nTry '%s --help'.\n", KB_PROG, msg, KB_PROG);
	exit(2);
}

/* A number of seconds in [0, max] (0 allowed: --warmup 0). */
static double parse_secs0(const char *s, double max, const char *what)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0) || v > max)
		bad("%s: '%s' is not a number of seconds in 0..%g", what, s, max);
	return v;
}

static void parse_value_size(struct kb_opts *o, const char *s)
{
	const char *dash = strchr(s, '-');

	if (!dash) {
		o->vmin = o->vmax = (uint32_t)parse_num(KB_PROG, s, 0,
							KB_MAX_VALUE_SIZE,
							"--value-size");
		return;
	}
	char lo[32];
	size_t n = (size_t)(dash - s);
	if (n == 0 || n >= sizeof lo)
		bad("--value-size: '%s' is not N or MIN-MAX", s);
	memcpy(lo, s, n);
	lo[n] = '\0';
	o->vmin = (uint32_t)parse_num(KB_PROG, lo, 0, KB_MAX_VALUE_SIZE,
				      "--value-size MIN");
	o->vmax = (uint32_t)parse_num(KB_PROG, dash + 1, 0, KB_MAX_VALUE_SIZE,
				      "--value-size MAX");
	if (o->vmin > o->vmax)
		bad("--value-size: MIN %u is greater than MAX %u", o->vmin,
		    o->vmax);
}

static void parse_ratio(struct kb_opts *o, const char *s)
{
	const char *colon = strchr(s, ':');
	char a[32];

	if (!colon || (size_t)(colon - s) >= sizeof a || colon == s)
		bad("--ratio: '%s' is not SET:GET (e.g. 1:9)", s);
	memcpy(a, s, (size_t)(colon - s));
	a[colon - s] = '\0';
	o->ratio_set = (unsigned)parse_num(KB_PROG, a, 0, 1000000, "--ratio SET");
	o->ratio_get = (unsigned)parse_num(KB_PROG, colon + 1, 0, 1000000,
					   "--ratio GET");
	if (o->ratio_set + o->ratio_get == 0)
		bad("--ratio: 0:0 sends nothing");
}

static void parse_dist(struct kb_opts *o, const char *s)
{
	if (strcmp(s, "uniform") == 0) {
		o->dist = KB_UNIFORM;
	} else if (strcmp(s, "sequential") == 0) {
		o->dist = KB_SEQUENTIAL;
	} else if (strncmp(s, "zipf", 4) == 0 && (s[4] == '\0' || s[4] == ':')) {
		o->dist = KB_ZIPF;
		o->theta = 0.99;
		if (s[4] == ':') {
			char *end;
			o->theta = strtod(s + 5, &end);
			if (end == s + 5 || *end || !(o->theta > 0 && o->theta < 1))
				bad("--key-dist: zipf THETA must be a number "
				    "with 0 < THETA < 1, not '%s'", s + 5);
		}
	} else {
		bad("--key-dist: '%s' is not uniform, zipf[:THETA] or sequential", s);
	}
}

static void add_addr(struct kb_opts *o, const char *s)
{
	struct kb_addr *a;

	if (o->naddr == KB_MAX_ADDRS)
		bad("--addr: at most %d addresses", KB_MAX_ADDRS);
	a = &o->addr[o->naddr];
	if (strlen(s) >= sizeof a->text || net_parse_addr(s, &a->ss, &a->len) != 0)
		bad("--addr: '%s' is not IP:PORT or [IPv6]:PORT", s);
	if ((a->ss.ss_family == AF_INET &&
	     ((struct sockaddr_in *)&a->ss)->sin_port == 0) ||
	    (a->ss.ss_family == AF_INET6 &&
	     ((struct sockaddr_in6 *)&a->ss)->sin6_port == 0))
		bad("--addr: '%s': port 0 cannot be connected to", s);
	strcpy(a->text, s);
	o->naddr++;
}

enum {
	O_ADDR = 256, O_WARMUP, O_RATIO, O_CMD, O_KEYS, O_DIST, O_KSIZE,
	O_VSIZE, O_SEED, O_PRELOAD, O_VERIFY, O_JSON, O_CSV, O_PASSWORD,
	O_TIMEOUT,
};

void kb_parse_options(int argc, char **argv, struct kb_opts *o)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, O_ADDR },
		{ "connections", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "pipeline", required_argument, NULL, 'P' },
		{ "requests", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, O_WARMUP },
		{ "ratio", required_argument, NULL, O_RATIO },
		{ "cmd", required_argument, NULL, O_CMD },
		{ "keys", required_argument, NULL, O_KEYS },
		{ "key-dist", required_argument, NULL, O_DIST },
		{ "key-size", required_argument, NULL, O_KSIZE },
		{ "value-size", required_argument, NULL, O_VSIZE },
		{ "seed", required_argument, NULL, O_SEED },
		{ "preload", no_argument, NULL, O_PRELOAD },
		{ "verify", no_argument, NULL, O_VERIFY },
		{ "json", required_argument, NULL, O_JSON },
		{ "csv", required_argument, NULL, O_CSV },
		{ "password", required_argument, NULL, O_PASSWORD },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_ratio = false, have_ksize = false;
	int opt;

	memset(o, 0, sizeof *o);
	o->conns = 50;
	o->threads = 1;
	o->pipeline = 1;
	o->cmd = -1;
	o->ratio_set = 1;
	o->ratio_get = 9;
	o->keys = DEFAULT_KEYS;
	o->dist = KB_UNIFORM;
	o->key_size = DEFAULT_KEY_SIZE;
	o->vmin = o->vmax = DEFAULT_VALUE_SIZE;
	o->seed = 1;
	o->timeout = DEFAULT_TIMEOUT;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":c:t:P:n:d:qVh", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case O_ADDR: add_addr(o, optarg); break;
		case 'c':
			o->conns = (unsigned)parse_num(KB_PROG, optarg, 1,
						       KB_MAX_CONNS, "-c");
			break;
		case 't':
			o->threads = (unsigned)parse_num(KB_PROG, optarg, 1,
							 KB_MAX_THREADS, "-t");
			break;
		case 'P':
			o->pipeline = (unsigned)parse_num(KB_PROG, optarg, 1,
							  KB_MAX_PIPELINE, "-P");
			break;
		case 'n':
			if (o->duration > 0)
				bad("-n and -d: give one of them");
			o->requests = parse_num(KB_PROG, optarg, 1,
						1000000000000ull, "-n");
			break;
		case 'd':
			if (o->requests)
				bad("-n and -d: give one of them");
			o->duration = parse_seconds(KB_PROG, optarg, 1e6, "-d");
			break;
		case O_WARMUP:
			o->warmup = parse_secs0(optarg, 1e5, "--warmup");
			break;
		case O_TIMEOUT:
			o->timeout = parse_seconds(KB_PROG, optarg, 86400, "--timeout");
			break;
		case O_RATIO:
			if (o->cmd >= 0)
				bad("--ratio and --cmd: give one of them");
			parse_ratio(o, optarg);
			have_ratio = true;
			break;
		case O_CMD: {
			if (have_ratio)
				bad("--ratio and --cmd: give one of them");
			int c = -1;
			for (int i = 0; i < KB_NCMDS; i++)
				if (strcasecmp(optarg, kb_cmd_opt[i]) == 0)
					c = i;
			if (c < 0)
				bad("--cmd: '%s' is not one of ping, set, get, "
				    "incr, mset, del", optarg);
			o->cmd = c;
			break;
		}
		case O_KEYS:
			o->keys = (uint32_t)parse_num(KB_PROG, optarg, 1,
						      KB_MAX_KEYS, "--keys");
			break;
		case O_DIST: parse_dist(o, optarg); break;
		case O_KSIZE:
			o->key_size = (unsigned)parse_num(KB_PROG, optarg, 1,
							  KB_MAX_KEY_SIZE,
							  "--key-size");
			have_ksize = true;
			break;
		case O_VSIZE: parse_value_size(o, optarg); break;
		case O_SEED:
			o->seed = parse_num(KB_PROG, optarg, 0, UINT64_MAX, "--seed");
			break;
		case O_PRELOAD: o->preload = true; break;
		case O_VERIFY: o->verify = true; break;
		case O_JSON: o->json = optarg; break;
		case O_CSV: o->csv = optarg; break;
		case O_PASSWORD: o->password = optarg; break;
		case 'q': o->quiet = true; break;
		case 'V':
			printf("%s %s\n", KB_PROG, KVS_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			bad("option '%s' needs a value", argv[optind - 1]);
		default:
			bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad("unexpected argument '%s'", argv[optind]);
	if (o->naddr == 0)
		add_addr(o, KB_DEFAULT_ADDR);
	if (!o->requests && !(o->duration > 0))
		o->requests = DEFAULT_REQUESTS;
	if (!o->password) {
		const char *pw = getenv("KVS_PASSWORD");
		if (pw && *pw)
			o->password = pw;
	}
	unsigned kmin = kb_key_min_size(o->keys);
	if (!have_ksize && o->key_size < kmin)
		o->key_size = kmin;
	if (o->key_size < kmin)
		bad("--key-size %u is too small for %u keys: at least %u",
		    o->key_size, o->keys, kmin);
	if (o->threads > o->conns)
		o->threads = o->conns;
	if (o->verify) {
		if (o->vmin < KB_VALUE_HEADER_MAX)
			bad("--verify needs values of at least %u bytes "
			    "(--value-size)", KB_VALUE_HEADER_MAX);
		uint64_t writes = (uint64_t)o->conns *
				  (o->pipeline > KB_PRELOAD_DEPTH ? o->pipeline :
								    KB_PRELOAD_DEPTH) *
				  (o->cmd == KB_MSET ? KB_MSET_KEYS : 1);
		if (writes > KB_INFLIGHT_MASK)
			bad("--verify: at most %llu writes in flight "
			    "(connections x pipeline)", KB_INFLIGHT_MASK);
	}
}

void kb_workload_text(const struct kb_opts *o, char *buf, size_t n)
{
	if (o->cmd >= 0)
		snprintf(buf, n, "cmd=%s", kb_cmd_opt[o->cmd]);
	else
		snprintf(buf, n, "set:get=%u:%u", o->ratio_set, o->ratio_get);
}

void kb_dist_text(const struct kb_opts *o, char *buf, size_t n)
{
	if (o->dist == KB_ZIPF)
		snprintf(buf, n, "zipf:%g", o->theta);
	else
		snprintf(buf, n, "%s", o->dist == KB_SEQUENTIAL ? "sequential" :
								  "uniform");
}

void kb_value_size_text(const struct kb_opts *o, char *buf, size_t n)
{
	if (o->vmin == o->vmax)
		snprintf(buf, n, "%u", o->vmin);
	else
		snprintf(buf, n, "%u-%u", o->vmin, o->vmax);
}

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

/* The interval between two snapshots: `now` from `prev`. */
struct progress {
	FILE *csv;
	bool tty, quiet, printed;
	unsigned second;       /* CSV rows written */
	uint64_t prev_ns;      /* the previous measured snapshot */
	struct snap prev, cur;
	struct hist d;
};

static void report_interval(struct progress *p, uint64_t now, bool final)
{
	double secs = (double)(now - p->prev_ns) / 1e9;
	uint64_t ops = p->cur.ops - p->prev.ops;
	uint64_t errs = p->cur.errs - p->prev.errs;

	if (final && ops == 0 && errs == 0)
		return;
	p->d.count = 0;
	for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
		p->d.b[i] = p->cur.h.b[i] - p->prev.h.b[i];
		p->d.count += p->d.b[i];
	}
	double rate = secs > 0 ? (double)ops / secs : 0;
	double p50 = hist_quantile_us(&p->d, 0.5), p99 = hist_quantile_us(&p->d, 0.99);
	p->second++;
	if (p->csv) {
		fprintf(p->csv, "%u,%llu,%.1f,%.1f,%.1f,%llu,%.3f\n", p->second,
			(unsigned long long)ops, rate, p50, p99,
			(unsigned long long)errs, secs);
		fflush(p->csv);
	}
	if (!p->quiet && !final) {
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
			report_interval(p, now, false);
			next += SEC;
		}
		while (next <= now)
			next += SEC;
	}
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
		if (end > prog.prev_ns)
			report_interval(&prog, end, true);
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
