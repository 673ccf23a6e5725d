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

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs-server [--addr IP:PORT] [--engine kvs|lmdb] [--dir DIR]\n"
		"                  [--threads N] [--fsync always|everysec|never]\n"
		"                  [--requirepass PASS | --requirepass-file FILE]\n"
		"                  [--client-output-limit BYTES] [--port-file FILE]\n"
		"                  [--segment-size BYTES[k|m]]\n"
		"                  [--snapshot-dir DIR]\n"
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
		"  --requirepass clients must AUTH with this password; also from the\n"
		"                file's first line, or the KVS_PASSWORD environment\n"
		"                variable (neither shows in ps)\n"
		"  --client-output-limit  close a client whose unsent replies exceed\n"
		"                this many bytes (default 64 MiB)\n"
		"  --segment-size  bytes per segment file of the kvs engine\n"
		"                (4k..1024m, default 64m)\n"
		"  --snapshot-dir  where BGSAVE and SAVE put snapshots, each in\n"
		"                <unix time in ms>/ (default DIR/snapshots)\n"
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

/* The first line of path, without its line end, in buf.  Returns 0 or -1. */
static int read_secret(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	if (!fgets(buf, (int)size, f)) {
		buf[0] = '\0';
		if (ferror(f)) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
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
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct net_server_config cfg;
	struct kvs_options opts;
	struct net_server *srv = NULL;
	struct kvs *db = NULL;
	const char *engine = NULL, *passfile = NULL;
	static char secret[4096];
	char *end;
	sigset_t sigs;
	long ncpu;
	int opt, rc, sig = 0;

	memset(&cfg, 0, sizeof cfg);
	memset(&opts, 0, sizeof opts);
	cfg.addr = NET_DEFAULT_ADDR;
	cfg.dir = ".";
	cfg.fsync_name = "everysec";
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cfg.threads = ncpu > 0 ? (unsigned)ncpu : 1;
	if (getenv("KVS_PASSWORD") && getenv("KVS_PASSWORD")[0])
		cfg.password = getenv("KVS_PASSWORD");

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
			cfg.password = optarg;
			break;
		case 'P':
			passfile = optarg;
			break;
		case 'o': {
			unsigned long long v;
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || v == 0 ||
			    optarg[0] == '-') {
				fprintf(stderr, "kvs-server: invalid "
					"--client-output-limit '%s'\n", optarg);
				return 2;
			}
			cfg.output_limit = v;
			break;
		}
		case 'F':
			cfg.port_file = optarg;
			break;
		case 's': {
			/* The engine checks the range (4 KiB..1 GiB) at open. */
			unsigned long long v;
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || end == optarg || optarg[0] == '-' || v == 0 ||
			    (*end && strcmp(end, "k") && strcmp(end, "m")) ||
			    v > (1ull << 30)) {
				fprintf(stderr, "kvs-server: invalid "
					"--segment-size '%s'\n", optarg);
				return 2;
			}
			opts.segment_size = v << (*end == 'k' ? 10 :
						  *end == 'm' ? 20 : 0);
			break;
		}
		case 'S':
			cfg.snapshot_dir = optarg;
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
	if (passfile) {
		if (read_secret(passfile, secret, sizeof secret) != 0) {
			fprintf(stderr, "kvs-server: cannot read the password "
				"file %s: %s\n", passfile, strerror(errno));
			return 2;
		}
		cfg.password = secret;
	}

	/* Every thread started from here inherits this mask: the signals
	 * reach only the sigwait() below.  SIGPIPE: sends use MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	raise_nofile();

	opts.log = log_engine;
	rc = kvs_open(cfg.dir, &opts, &db);
	if (rc != KVS_OK) {
		net_log(NET_LOG_ERROR, "cannot open the store in %s: %s",
			cfg.dir, kvs_errmsg()[0] ? kvs_errmsg() :
			kvs_strerror(rc));
		if (rc == KVS_EENGINE)
			fprintf(stderr, "kvs-server: asked for engine '%s', "
				"but %s\n", engine ? engine : "auto",
				kvs_errmsg());
		return 1;
	}
	if (net_server_start(db, &cfg, &srv) != 0) {
		kvs_close(db);
		return 1;
	}
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
