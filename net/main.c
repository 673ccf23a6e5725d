/* main.c - kvs-server: options, opening the store, starting the network
 * layer, and the graceful stop on SIGINT/SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kvs.h"
#include "server.h"
#include "size.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-server [--addr IP:PORT] [--engine kvs|lmdb] [--dir DIR]\n"
		"                  [--threads N] [--fsync always|everysec|never]\n"
		"                  [--requirepass PASS | --requirepass-file FILE]\n"
		"                  [--client-output-limit SIZE] [--port-file FILE]\n"
		"                  [--segment-size SIZE]\n"
		"                  [--snapshot-dir DIR] [--pipeline-reads ordered|early]\n"
		"       kvs-server -V | --version\n"
		"       kvs-server -h | --help\n"
		"\n"
		"Serves the store in DIR (default: the current directory) over the\n"
		"Redis protocol (RESP2) on IP:PORT (default " NET_DEFAULT_ADDR
		"; IPv6 as\n"
		"[::1]:4000; port 0 picks a free port, written to --port-file).\n"
		"  --engine      the engine of a new store (default kvs); a store\n"
		"                of the other engine is refused (without --engine,\n"
		"                an existing store opens with its own)\n"
		"  --threads     worker threads (default: the online CPUs)\n"
		"  --fsync       when writes reach the disk (default everysec)\n"
		"  --requirepass clients must AUTH with this password; or from the\n"
		"                file's first line, or the KVS_PASSWORD environment\n"
		"                variable (neither shows in ps).  One source: both\n"
		"                options (or one twice) is an error; an option\n"
		"                overrides KVS_PASSWORD; an empty password is an\n"
		"                error (without any, no password is required)\n"
		"  --client-output-limit  close a client whose unsent replies exceed\n"
		"                this size (default 64MiB)\n"
		"  --segment-size  the size of a segment file of the kvs engine\n"
		"                (4KiB..1GiB, default 64MiB)\n"
		"  --snapshot-dir  where BGSAVE and SAVE put snapshots, each in\n"
		"                <unix time in ms>/ (default DIR/snapshots)\n"
		"  --pipeline-reads  ordered (default): a pipelined read waits for\n"
		"                the connection's earlier writes, as in Redis;\n"
		"                early: a read of other keys runs at once (replies\n"
		"                stay in order), so writes around it share one\n"
		"                round; for shards behind one twemproxy only\n"
		"                (docs/SCALING.md)\n"
		"SIZE: a number of bytes, or with a unit as Redis's config: k, m, g\n"
		"(1000^n), kb, mb, gb or KiB, MiB, GiB (1024^n); e.g. 64MiB, 512kb.\n"
		"Exit status 2 for a usage error (a bad option, value or address),\n"
		"1 if the server cannot start (port busy, store cannot be opened).\n"
		"SIGINT or SIGTERM stops it: in-flight writes finish, replies are\n"
		"sent, the store is closed (durable), exit 0.\n");
}

static void log_engine(void *ctx, enum kvs_log_level level, const char *msg)
{
	(void)ctx;
	net_log(level == KVS_LOG_ERROR ? NET_LOG_ERROR :
		level == KVS_LOG_WARN ? NET_LOG_WARN : NET_LOG_INFO,
		"engine: %s", msg);
}

/* The first line of path, without its line end, in buf.  Returns 0, or -1
 * with errno (ENAMETOOLONG: the line does not fit in buf). */
static int read_secret(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	if (!fgets(buf, (int)size, f)) {
		buf[0] = '\0';
		if (ferror(f)) {
			int e = errno;
			fclose(f);
			errno = e;
			return -1;
		}
	}
	n = strcspn(buf, "\r\n");
	if (!buf[n] && n == size - 1 && fgetc(f) != EOF) {
		fclose(f);
		errno = ENAMETOOLONG; /* a truncated password would be wrong */
		return -1;
	}
	fclose(f);
	buf[n] = '\0';
	return 0;
}

/* Nonzero if p has nothing but blanks (an edited file's stray line). */
static int blank(const char *p)
{
	return p[strspn(p, " \t\r\n\v\f")] == '\0';
}

/*
 * The password, from exactly one source: --requirepass (pass), the first
 * line of --requirepass-file (file), or else KVS_PASSWORD.  An option
 * overrides the environment variable (as a command line does); two
 * options (nopts > 1: both, or one twice) conflict, since which one wins
 * would be a guess.  An empty or blank option value or file is refused: it
 * would start a server that asks for no password while the user meant one.
 * An empty KVS_PASSWORD is unset, as kvs-client and kvs-bench read it (and
 * as a service manager's "KVS_PASSWORD=" line means), with a warning; a
 * blank one (spaces) is refused.  *out: NULL (no password) or the password
 * (in secret).
 * Returns 0, or 2 (the usage error exit status) after saying why.
 */
static int resolve_password(const char *pass, const char *file, int nopts,
			    char *secret, size_t size, const char **out)
{
	const char *env = getenv("KVS_PASSWORD");

	*out = NULL;
	if (env && !*env) {
		if (nopts == 0)
			net_log(NET_LOG_WARN, "KVS_PASSWORD is set but empty: "
				"taken as unset (no password)");
		env = NULL;
	}
	if (nopts > 1) {
		fprintf(stderr, "kvs-server: the password is given more than "
			"once (--requirepass, --requirepass-file): give one "
			"of them, once\n");
		return 2;
	}
	if (nopts == 1 && env)
		net_log(NET_LOG_INFO, "the password of %s overrides "
			"KVS_PASSWORD", file ? "--requirepass-file" :
			"--requirepass");
	if (file) {
		if (read_secret(file, secret, size) != 0) {
			fprintf(stderr, "kvs-server: cannot read the password "
				"file %s: %s\n", file, errno == ENAMETOOLONG ?
				"its first line is too long" : strerror(errno));
			return 2;
		}
		if (blank(secret)) {
			fprintf(stderr, "kvs-server: the password file %s has "
				"no password on its first line (empty or blank); "
				"to run without a password, give none\n", file);
			return 2;
		}
		*out = secret;
		return 0;
	}
	if (pass || env) {
		if (blank(pass ? pass : env)) {
			fprintf(stderr, "kvs-server: %s is empty or blank; "
				"to run without a password, give none\n",
				pass ? "--requirepass" : "KVS_PASSWORD");
			return 2;
		}
		*out = pass ? pass : env;
	}
	return 0;
}

/* A size option's value (size.h's forms) in [min, max] into *out.
 * Returns 0, or 2 after saying why. */
static int size_option(const char *name, const char *arg, uint64_t min,
		       uint64_t max, uint64_t *out)
{
	uint64_t v;

	if (kvs_parse_size(arg, &v) != 0) {
		fprintf(stderr, "kvs-server: invalid --%s '%s': %s\n", name, arg,
			errno == ERANGE ? "too large" :
			"expected a size such as 65536, 64mb or 64MiB");
		return 2;
	}
	if (v < min || v > max) {
		fprintf(stderr, "kvs-server: invalid --%s '%s': must be "
			"%llu..%llu bytes\n", name, arg,
			(unsigned long long)min, (unsigned long long)max);
		return 2;
	}
	*out = v;
	return 0;
}

/* More descriptors for more clients: the soft limit up to the hard one,
 * as Redis does; the log says what we got (maxclients follows from it). */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long long was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		net_log(NET_LOG_WARN, "getrlimit(RLIMIT_NOFILE): %s",
			strerror(errno));
		return;
	}
	was = (unsigned long long)rl.rlim_cur;
	if (rl.rlim_cur == rl.rlim_max) {
		net_log(NET_LOG_INFO, "descriptor limit %llu (the hard limit)",
			was);
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		net_log(NET_LOG_WARN, "cannot raise the descriptor limit from "
			"%llu to %llu: %s", was,
			(unsigned long long)rl.rlim_max, strerror(errno));
		return;
	}
	net_log(NET_LOG_INFO, "descriptor limit raised from %llu to %llu",
		was, (unsigned long long)rl.rlim_max);
}

/*
 * Bind the address, then open the store, then serve.  In this order, a
 * busy port (or any other bind failure) fails before the store is opened,
 * so it creates nothing in a new data directory; and a store that cannot be
 * opened (locked by another server, damaged, of the other engine) closes
 * the socket again before anything was served or the port file written.
 * Returns 0 with *db and *srv, or -1 after logging why.
 */
static int start(const struct net_server_config *cfg, struct kvs_options *opts,
		 const char *engine, struct kvs **db, struct net_server **srv)
{
	int rc;

	if (net_server_listen(cfg, srv) != 0)
		return -1;
	rc = kvs_open(cfg->dir, opts, db);
	if (rc != KVS_OK) {
		net_log(NET_LOG_ERROR, "cannot open the store in %s: %s",
			cfg->dir, kvs_errmsg()[0] ? kvs_errmsg() :
			kvs_strerror(rc));
		if (rc == KVS_EENGINE)
			fprintf(stderr, "kvs-server: asked for engine '%s', "
				"but %s\n", engine ? engine : "auto",
				kvs_errmsg());
		net_server_stop(*srv);
		return -1;
	}
	if (net_server_serve(*srv, *db) != 0) { /* it freed the server */
		kvs_close(*db);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "engine", required_argument, NULL, 'e' },
		{ "dir", required_argument, NULL, 'd' },
		{ "threads", required_argument, NULL, 't' },
		{ "fsync", required_argument, NULL, 'f' },
		{ "requirepass", required_argument, NULL, 'p' },
		{ "requirepass-file", required_argument, NULL, 'P' },
		{ "client-output-limit", required_argument, NULL, 'o' },
		{ "port-file", required_argument, NULL, 'F' },
		{ "segment-size", required_argument, NULL, 's' },
		{ "snapshot-dir", required_argument, NULL, 'S' },
		{ "pipeline-reads", required_argument, NULL, 'R' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct net_server_config cfg;
	struct kvs_options opts;
	struct net_server *srv = NULL;
	struct kvs *db = NULL;
	const char *engine = NULL, *passfile = NULL, *pass = NULL;
	static char secret[4096];
	char *end;
	sigset_t sigs;
	long ncpu;
	int opt, rc, sig = 0, npass = 0;

	memset(&cfg, 0, sizeof cfg);
	memset(&opts, 0, sizeof opts);
	cfg.addr = NET_DEFAULT_ADDR;
	cfg.dir = ".";
	cfg.fsync_name = "everysec";
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	/* One worker per core: with writes run on the workers themselves
	 * while the writer thread sleeps, 1 worker on 2 cores served no more
	 * SETs than 2 under redis-benchmark, and 15-25% fewer GETs and SETs
	 * under kvs-bench's two client threads (docs/PERFORMANCE.md "Few
	 * cores"). */
	cfg.threads = ncpu > 0 ? (unsigned)ncpu : 1;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "Vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			cfg.addr = optarg;
			break;
		case 'e':
			engine = optarg;
			break;
		case 'd':
			cfg.dir = optarg;
			break;
		case 't': {
			long t;
			errno = 0;
			t = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || t < 1 ||
			    t > 1024) {
				fprintf(stderr, "kvs-server: invalid thread "
					"count '%s' (1..1024)\n", optarg);
				return 2;
			}
			cfg.threads = (unsigned)t;
			break;
		}
		case 'f':
			cfg.fsync_name = optarg;
			break;
		case 'p':
			pass = optarg;
			npass++;
			break;
		case 'P':
			passfile = optarg;
			npass++;
			break;
		case 'o':
			if (size_option("client-output-limit", optarg, 1,
					UINT64_MAX, &cfg.output_limit) != 0)
				return 2;
			break;
		case 'F':
			cfg.port_file = optarg;
			break;
		case 's': {
			/* The engine's range (engine/kvs.c), checked here so
			 * that a bad value is a usage error. */
			uint64_t v;
			if (size_option("segment-size", optarg, 4ull << 10,
					1ull << 30, &v) != 0)
				return 2;
			opts.segment_size = v;
			break;
		}
		case 'S':
			cfg.snapshot_dir = optarg;
			break;
		case 'R':
			if (strcmp(optarg, "ordered") == 0) {
				cfg.early_reads = false;
			} else if (strcmp(optarg, "early") == 0) {
				cfg.early_reads = true;
			} else {
				fprintf(stderr, "kvs-server: --pipeline-reads: "
					"ordered or early, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'V':
			printf("kvs-server %s\n", KVS_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "kvs-server: option '%s' needs "
					"a value, or is unknown\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "kvs-server: unknown option "
					"'%s'\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvs-server: unexpected argument '%s'\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	if (!engine)
		opts.engine = KVS_ENGINE_AUTO;
	else if (strcmp(engine, "kvs") == 0)
		opts.engine = KVS_ENGINE_KVS;
	else if (strcmp(engine, "lmdb") == 0)
		opts.engine = KVS_ENGINE_LMDB;
	else {
		fprintf(stderr, "kvs-server: invalid engine '%s' (kvs or "
			"lmdb)\n", engine);
		return 2;
	}
	if (strcmp(cfg.fsync_name, "always") == 0)
		opts.fsync = KVS_FSYNC_ALWAYS;
	else if (strcmp(cfg.fsync_name, "everysec") == 0)
		opts.fsync = KVS_FSYNC_EVERYSEC;
	else if (strcmp(cfg.fsync_name, "never") == 0)
		opts.fsync = KVS_FSYNC_NEVER;
	else {
		fprintf(stderr, "kvs-server: invalid fsync policy '%s' "
			"(always, everysec or never)\n", cfg.fsync_name);
		return 2;
	}
	{
		struct sockaddr_storage ss;
		socklen_t len;
		if (net_parse_addr(cfg.addr, &ss, &len) != 0) {
			fprintf(stderr, "kvs-server: invalid address '%s' "
				"(expected IP:PORT or [IPv6]:PORT)\n", cfg.addr);
			return 2;
		}
	}
	if (resolve_password(pass, passfile, npass, secret, sizeof secret,
			     &cfg.password) != 0)
		return 2;

	/* Every thread started from here inherits this mask: the signals
	 * reach only the sigwait() below.  SIGPIPE: sends use MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	raise_nofile();

	opts.log = log_engine;
	if (start(&cfg, &opts, engine, &db, &srv) != 0)
		return 1;
	while (sigwait(&sigs, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
		;
	net_log(NET_LOG_INFO, "%s received: stopping (finishing writes in "
		"flight, sending replies)", sig == SIGINT ? "SIGINT" :
		"SIGTERM");
	net_server_stop(srv);
	rc = kvs_close(db);
	if (rc != KVS_OK) {
		net_log(NET_LOG_ERROR, "closing the store: %s",
			kvs_errmsg()[0] ? kvs_errmsg() : kvs_strerror(rc));
		return 1;
	}
	net_log(NET_LOG_INFO, "stopped; the store is closed and durable");
	return 0;
}
