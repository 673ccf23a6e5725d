/*
 * kvs_bench.h - the internal header of kvs-bench, the RESP2 load generator:
 * its options, the state one run shares between threads, the per-thread
 * event loops and their statistics, the workload (keys, values and their
 * verification) and the reports.  Nothing outside bench/kvs_bench*.c
 * includes it.
 *
 * Threads (kvs_bench.c starts them):
 *   - main: parses the options, starts the loops, prints a progress line
 *     and a CSV row each second, joins the loops, prints the summary.  It
 *     handles SIGINT/SIGTERM (the loops block them).
 *   - loop i (-t of them): owns its connections, its epoll instance and
 *     its struct kb_stats; nothing of a connection is touched by another
 *     thread.
 * What they share, and how:
 *   - struct kb_opts, the key distribution and the value pool: written by
 *     main before the loops start, then read-only.
 *   - struct kb_run's phase fields (abort, start_ns, ...): written by main
 *     between two waits on kb_run.barrier, which orders them.
 *   - kb_run.stop, kb_run.budget, the per-key verify state: atomics.
 *   - struct kb_stats: each field is written by its loop only, as relaxed
 *     atomic stores (no locked instruction on the hot path), and read by
 *     main with relaxed loads at any time; exact after pthread_join().
 *   - kb_note(): the first messages of each error kind, under a mutex.
 */
#ifndef KVS_KVS_BENCH_H
#define KVS_KVS_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "bench.h"
#include "resp.h"

#define KB_PROG "kvs-bench"
#define KB_DEFAULT_ADDR "127.0.0.1:4000"

/* Limits of the options (bad input is refused with a message). */
#define KB_MAX_ADDRS 64
#define KB_MAX_CONNS 10000
#define KB_MAX_THREADS 256
#define KB_MAX_PIPELINE 10000
#define KB_MAX_KEYS 4294967295ull  /* key numbers are uint32_t */
#define KB_MAX_KEY_SIZE 1024
#define KB_MAX_VALUE_SIZE (16u << 20)
#define KB_MSET_KEYS 10            /* key/value pairs of one MSET */
#define KB_PRELOAD_DEPTH 64        /* requests in flight per connection */

/* ---- options ----------------------------------------------------------------------- */

enum kb_cmd { KB_PING, KB_SET, KB_GET, KB_INCR, KB_MSET, KB_DEL, KB_NCMDS, KB_AUTH = KB_NCMDS };
enum kb_dist { KB_UNIFORM, KB_ZIPF, KB_SEQUENTIAL };

/* The command names, as sent and as reported ("GET"), and as --cmd takes
 * them ("get"). */
extern const char *const kb_cmd_name[KB_NCMDS + 1];
extern const char *const kb_cmd_opt[KB_NCMDS];

struct kb_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[80]; /* as given on the command line */
};

/* What the command line asked for; read-only once the loops start. */
struct kb_opts {
	struct kb_addr addr[KB_MAX_ADDRS];
	unsigned naddr;
	unsigned conns, threads, pipeline;
	uint64_t requests;        /* -n; 0 when -d is used */
	double duration;          /* -d seconds; 0 when -n is used */
	double warmup;            /* seconds, 0 for none */
	int cmd;                  /* --cmd, or -1 for the --ratio mix */
	unsigned ratio_set, ratio_get;
	uint32_t keys;
	enum kb_dist dist;
	double theta;             /* zipf */
	unsigned key_size;
	uint32_t vmin, vmax;      /* --value-size N or MIN-MAX */
	uint64_t seed;
	bool preload, verify, quiet;
	double timeout;           /* seconds without a reply: a timeout */
	const char *json, *csv;
	const char *password;     /* --password or $KVS_PASSWORD; NULL if none */
	uint64_t max_errors;      /* --max-errors: more fail the run (exit 1) */
};

/* Parse argv into *o.  Prints usage or the version and exits 0 for --help
 * and -V; prints a message and exits 2 for bad input. */
void kb_parse_options(int argc, char **argv, struct kb_opts *o);

/* Text forms of the workload for reports: "set:get=1:9" or "cmd=get";
 * "uniform", "zipf:0.99" or "sequential"; "100" or "10-100". */
void kb_workload_text(const struct kb_opts *o, char *buf, size_t n);
void kb_dist_text(const struct kb_opts *o, char *buf, size_t n);
void kb_value_size_text(const struct kb_opts *o, char *buf, size_t n);

/* ---- statistics ---------------------------------------------------------------------- */

/* A struct hist (bench.h) whose buckets one thread updates and another may
 * read while it runs. */
struct kb_ahist {
	_Atomic uint64_t b[HIST_NBUCKETS];
};

/* A counter written by one thread only: a relaxed load and store, which is
 * what a plain increment compiles to, yet race-free for the reader. */
static inline void kb_inc(_Atomic uint64_t *c, uint64_t by)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
			      memory_order_relaxed);
}

static inline uint64_t kb_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

enum kb_err {
	KB_E_CONNECTION, /* a connection that failed to open, or was closed or
			  * reset by the peer */
	KB_E_ERROR_REPLY,/* a -ERR ... reply */
	KB_E_PROTOCOL,   /* bytes that are not RESP2, or a reply of a type the
			  * command never returns */
	KB_E_VERIFY,     /* --verify: a GET returned a value that is wrong */
	KB_E_TIMEOUT,    /* requests with no reply within --timeout */
	KB_NERRS
};
extern const char *const kb_err_name[KB_NERRS];

#define KB_MAX_PREFIXES 16

/* One loop's statistics (see the threading notes at the top). */
struct kb_stats {
	/* Requests sent in the measured phase that got a reply, by command:
	 * latency histogram (ns), count, sum and maximum. */
	struct kb_ahist hist[KB_NCMDS];
	_Atomic uint64_t ops[KB_NCMDS];
	_Atomic uint64_t sum_ns[KB_NCMDS];
	_Atomic uint64_t max_ns[KB_NCMDS];
	_Atomic uint64_t warm_ops;     /* replies to warmup requests */
	_Atomic uint64_t preload_ops;  /* replies to preload SETs */
	_Atomic uint64_t err[KB_NERRS];/* whole run: preload and warmup too */
	_Atomic uint64_t lost;         /* requests without a reply on a
					* connection that failed */
	/* Error replies by their first word ("ERR", "NOAUTH"); the loop's
	 * own, read by main after pthread_join() only. */
	struct {
		char name[24];
		uint64_t n;
	} prefix[KB_MAX_PREFIXES];
	unsigned nprefix;
	uint64_t prefix_other;
};

/* ---- the workload ------------------------------------------------------------------------ */

/* Zipf by Gray et al. ("Quickly generating billion-record synthetic
 * databases", 1994), ranks scattered over the key space by a bijection so
 * that the hot keys are not neighbours. */
struct kb_zipf {
	uint64_t n;
	double theta, zetan, alpha, eta, half_pow; /* 1 + 0.5^theta */
	uint64_t mul, add;                         /* rank -> key */
};

void kb_zipf_init(struct kb_zipf *z, uint64_t n, double theta);
uint32_t kb_zipf_next(const struct kb_zipf *z, struct rng *r);

/*
 * Values.  Each value is derived from (key, version, run id), so that a GET
 * can check every byte of what it got:
 *
 *   offset  bytes     content
 *   0       2         "kb"
 *   2       1..10     the key number, decimal
 *           1         '.'
 *           1..14     the version, decimal (1 is the first write)
 *           1         '.'
 *           8         the run id of the writer, hex (random per run)
 *           1         '.'
 *           1..8      the length of the whole value, decimal
 *           1         ';'
 *           rest      filler: bytes of a fixed pseudo-random pool of
 *                     letters and digits, from an offset hashed from
 *                     (run id, key, version)
 *
 * The length is MIN + hash(key, version) % (MAX - MIN + 1) for
 * --value-size MIN-MAX.  The header needs at most KB_VALUE_HEADER_MAX
 * bytes, so --verify requires MIN >= that; without --verify a shorter
 * value is the same bytes cut short.  Every value describes itself, so a
 * value written by another run (another run id, other options) is checked
 * as completely as one of this run.
 */
#define KB_VALUE_HEADER_MAX 48
#define KB_POOL_SIZE 65536u

/* Build the fixed filler pool (KB_POOL_SIZE * 2 bytes: the second half
 * repeats the first, so a slice of up to KB_POOL_SIZE bytes from any offset
 * is contiguous).  Returns NULL when out of memory. */
char *kb_pool_new(void);

/* The length of the value of (key, version). */
uint32_t kb_value_len(const struct kb_opts *o, uint32_t key, uint64_t version);

/* Write the value of (key, version, run) into dst (len bytes). */
void kb_value_fill(const char *pool, char *dst, uint32_t len, uint32_t key,
		   uint64_t version, uint32_t run);

/* What a GET reply's value says about itself. */
struct kb_value_check {
	uint64_t version;  /* 0 for a nil reply */
	uint32_t run;
	bool nil;
};

/*
 * Check that v[0..len) is a well-formed kvs-bench value of `key`: the header
 * names `key` and the length len, and the filler is the one of (run, key,
 * version) it names.  Fills *out.  Returns NULL if so, else a static
 * description of what is wrong ("the value of another key", "corrupted
 * value ...", ...).  Whether the version is right is the caller's check.
 */
const char *kb_value_check(const char *pool, const char *v, size_t len,
			   uint32_t key, struct kb_value_check *out);

/* Write the key of number k (key_size bytes, "key:" then zero-padded
 * digits) at dst; "ctr:" instead of "key:" for counters (INCR). */
void kb_key_fill(char *dst, unsigned key_size, uint32_t k, bool counter);

/* The fewest bytes a key needs for `keys` keys. */
unsigned kb_key_min_size(uint64_t keys);

/*
 * --verify: per key, one 64-bit word (version counter << KB_INFLIGHT_BITS |
 * SETs in flight) and the floor: the highest version that any GET sent
 * from now on must return at least (see kvs_bench_verify.c for the
 * argument).
 */
#define KB_INFLIGHT_BITS 20
#define KB_INFLIGHT_MASK ((1ull << KB_INFLIGHT_BITS) - 1)

/* ---- --verify (kvs_bench_verify.c; any loop thread) ------------------------------------- */

struct kb_run;

/* A SET of key k is about to be sent: its version; *cand tells whether no
 * other SET of k was in flight (see kvs_bench_verify.c). */
uint64_t kb_verify_take(struct kb_run *run, uint32_t k, bool *cand);

/* That SET got its reply (ok: +OK). */
void kb_verify_set_done(struct kb_run *run, uint32_t k, uint64_t ver,
			bool cand, bool ok);

/* A GET of key k is about to be sent: the least version it may return. */
uint64_t kb_verify_floor(struct kb_run *run, uint32_t k);

/* Check the reply (a bulk or nil) to a GET of k sent with that floor.
 * Returns NULL if it is right, else msg, filled with what is wrong (n
 * bytes at most). */
const char *kb_verify_get(struct kb_run *run, const struct net_resp_reply *rep,
			  uint32_t k, uint64_t floor, char *msg, size_t n);

/* ---- one run ------------------------------------------------------------------------------ */

struct kb_run {
	const struct kb_opts *o;
	struct kb_zipf zipf;
	char *pool;
	uint32_t run_id;
	_Atomic uint64_t *kstate; /* --verify: [keys] */
	_Atomic uint64_t *kfloor; /* --verify: [keys] */

	atomic_int stop;          /* SIGINT/SIGTERM: stop sending, drain */
	_Atomic int64_t budget;   /* -n: measured requests not yet claimed */
	_Atomic uint64_t preload_next; /* next key to preload */
	atomic_uint connected;    /* connections that are ready */
	atomic_uint done;         /* loops whose run phase has ended */

	/* The phases, set by main between waits on the barrier (threads + 1
	 * parties): connect | main checks | preload (if any) | start | run. */
	pthread_barrier_t barrier;
	bool abort;               /* nothing connected: loops just exit */
	uint64_t start_ns;        /* the run phase (warmup first) began */
	uint64_t measure_ns;      /* start_ns + warmup: measured from here */
	uint64_t end_ns;          /* -d: stop sending then; else UINT64_MAX */
};

/* One event-loop thread. */
struct kb_conn;
struct kb_thread {
	pthread_t tid;
	unsigned id;
	struct kb_run *run;
	struct kb_conn *conns;    /* this loop's connections */
	unsigned nconns;
	struct kb_stats *st;
	/* The loop's own (no other thread reads these before the join). */
	int ep;
	unsigned alive;           /* connections not closed */
	unsigned long inflight;   /* requests in flight on all of them */
	int64_t tokens;           /* -n: claimed from run->budget, unused */
	uint32_t seq;             /* --key-dist sequential: next key */
	uint64_t end_ns;          /* when its run phase ended */
	int failed;               /* a resource failure (out of memory) */
};

/* Set up loop t (before it starts): the run's connections
 * first..first+n-1, connection i to address i % naddr.  Returns 0 or
 * ENOMEM; kb_thread_free() releases what was allocated either way. */
int kb_thread_init(struct kb_thread *t, struct kb_run *run, unsigned id,
		   unsigned first, unsigned n);

/* The body of a loop thread (pthread_create's start routine). */
void *kb_thread_main(void *arg);

/* Release what kb_thread_main() left allocated. */
void kb_thread_free(struct kb_thread *t);

/* Report an error message of a kind: the first few of each kind are printed
 * on stderr, all are counted by the caller; any thread. */
void kb_note(enum kb_err kind, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The first message noted of each kind ("" if none), for the summary. */
const char *kb_first_note(enum kb_err kind);

/* ---- reports --------------------------------------------------------------------------- */

/* The totals of all loops (after they ended). */
struct kb_totals {
	struct hist all, cmd[KB_NCMDS];
	uint64_t ops, cmd_ops[KB_NCMDS];
	uint64_t sum_ns, cmd_sum_ns[KB_NCMDS];
	uint64_t max_ns, cmd_max_ns[KB_NCMDS];
	uint64_t err[KB_NERRS], err_total, lost, warm_ops, preload_ops;
	struct {
		char name[24];
		uint64_t n;
	} prefix[KB_MAX_PREFIXES * 4];
	unsigned nprefix;
	uint64_t prefix_other;
};

void kb_totals_collect(struct kb_totals *tot, struct kb_thread *threads,
		       unsigned n);

/* What the summary reports about the run besides the totals. */
struct kb_outcome {
	double duration_s;     /* the measured phase */
	double preload_s;      /* 0 without --preload */
	uint64_t preload_keys;
	bool interrupted;      /* SIGINT/SIGTERM */
	bool complete;         /* every request asked for got a reply */
	unsigned threads;      /* loops actually started */
};

void kb_print_summary(FILE *f, const struct kb_opts *o,
		      const struct kb_totals *t, const struct kb_outcome *oc);
void kb_print_quiet(FILE *f, const struct kb_totals *t,
		    const struct kb_outcome *oc);
/* Returns 0, or -1 if the file could not be written (errno set). */
int kb_write_json(FILE *f, const struct kb_opts *o, const struct kb_totals *t,
		  const struct kb_outcome *oc);

#endif /* KVS_KVS_BENCH_H */
