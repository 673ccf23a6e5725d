/* kvs_bench_opts.c - kvs-bench's command line: usage, parsing with a clear
 * message (exit 2) for bad input, and the text forms of the workload. */
#include <getopt.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kvs.h"
#include "server.h"
#include "kvs_bench.h"

#define DEFAULT_REQUESTS 100000
#define DEFAULT_KEYS 100000
#define DEFAULT_KEY_SIZE 16
#define DEFAULT_VALUE_SIZE 100
#define DEFAULT_TIMEOUT 10.0

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
"  --max-errors N        a run with more than N errors (of any kind, warmup\n"
"                        included) fails: exit 1 (default 0: any error fails)\n"
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
"                        p99_us,errors,interval_s (ops_per_sec is over the\n"
"                        row's interval_s; a last remainder under 0.5 s is\n"
"                        merged into the row before it)\n"
"  -q, --quiet           no progress lines; a one-line summary\n"
"  -V, --version         print the version\n"
"  -h, --help            this text\n"
"\n"
"A progress line goes to stderr each second; the summary to stdout.  Ctrl-C\n"
"stops the run and prints the summary so far.  Exit status: 0 done; 1 no\n"
"connection could be made, a verify error, the run ended early (every\n"
"connection lost), no request succeeded, or more than --max-errors errors;\n"
"2 bad options.  The summary is printed in every case.\n",
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
	O_TIMEOUT, O_MAX_ERRORS,
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
		{ "max-errors", required_argument, NULL, O_MAX_ERRORS },
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
		case O_MAX_ERRORS:
			o->max_errors = parse_num(KB_PROG, optarg, 0,
						  UINT64_MAX / 2, "--max-errors");
			break;
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

