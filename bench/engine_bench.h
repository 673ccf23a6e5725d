/* engine_bench.h - what the files of kvs-engine-bench share: the stores it
 * drives (the kvs API, or liblmdb used directly) behind one table of
 * functions, the workloads, and the rows of results.  Internal to the
 * benchmark: only engine_bench.c, eb_*.c and lmdb_raw.c include it.
 *
 *   engine_bench.c  options; the phases, the engines taking turns
 *   eb_workload.c   keys and values, the worker threads, talent-plan data
 *   eb_kvs.c        a store through kvs.h (engine kvs, or engine/lmdb.c)
 *   lmdb_raw.c      a store in liblmdb, used the way a careful user would
 *   eb_report.c     the table, CSV, JSON and the targets
 */
#ifndef KVS_ENGINE_BENCH_H
#define KVS_ENGINE_BENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bench.h"

#define EB_PROG "kvs-engine-bench"

/* ---- stores ------------------------------------------------------------------
 *
 * An adapter opens a store in a directory and performs single operations
 * on it.  Every function returns 0 or EB_ERR; on EB_ERR, eb_lasterr() on the
 * calling thread says why.  get() also returns EB_NOTFOUND.
 *
 * Threads: open/close from the main thread only, with no worker running.
 * Each worker thread calls thread_begin() once, uses only its own
 * struct eb_thread, and calls thread_end() before it exits; several workers
 * run at once on one store. */

enum eb_sync {
	EB_RELAXED = 0, /* kvs: fsync everysec; lmdb: MDB_NOSYNC */
	EB_ALWAYS = 1,  /* acknowledged = on stable storage: kvs fsync always
			   (group commit); lmdb a synchronous commit per txn */
};

#define EB_ERR (-1)
#define EB_NOTFOUND 1

struct eb_store;  /* an open store */
struct eb_thread; /* a worker's handle on a store */

/* One put of a batch. */
struct eb_kv {
	const void *key;
	size_t klen;
	const void *val;
	size_t vlen;
};

struct eb_adapter {
	const char *engine;  /* the CSV's engine column: "kvs" or "lmdb" */
	const char *how;     /* one line for the header: how it is driven */
	const char *relaxed; /* what EB_RELAXED means here, e.g. "everysec" */
	const char *always;  /* what EB_ALWAYS means here */
	size_t max_key;      /* longest key the store takes */

	/* Open (creating) the store in `dir`, which may not exist yet. */
	int (*open)(const char *dir, enum eb_sync sync, struct eb_store **out);
	/* Make everything durable, then release the store (even on error). */
	int (*close)(struct eb_store *s);

	int (*thread_begin)(struct eb_store *s, struct eb_thread **out);
	void (*thread_end)(struct eb_thread *t);

	/* Look `key` up: on 0, *val and *vlen stay valid until get_done(t), which
	 * must follow every successful get before the next call on t. */
	int (*get)(struct eb_thread *t, const void *key, size_t klen,
		   const void **val, size_t *vlen);
	void (*get_done)(struct eb_thread *t);
	/* One write acknowledged under the store's eb_sync. */
	int (*set)(struct eb_thread *t, const void *key, size_t klen,
		   const void *val, size_t vlen);
	/* n puts applied together (one kvs_write_batch, one LMDB txn). */
	int (*batch)(struct eb_thread *t, const struct eb_kv *kv, size_t n);
};

extern const struct eb_adapter eb_kvs_adapter;      /* eb_kvs.c */
extern const struct eb_adapter eb_lmdb_api_adapter; /* eb_kvs.c */
extern const struct eb_adapter eb_lmdb_raw_adapter; /* lmdb_raw.c */
/* Set before the first open: the raw adapter adds MDB_WRITEMAP. */
extern bool eb_lmdb_writemap;

/* Set / read the calling thread's last error message. */
void eb_seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *eb_lasterr(void);

/* ---- workloads (eb_workload.c) ----------------------------------------------- */

enum eb_work {
	EB_LOAD,    /* set perm[first..first+count) in order, one per call */
	EB_BATCH,   /* the same through batch(), EB_BATCH_OPS a call */
	EB_GET,     /* gets of random loaded keys, every value checked */
	EB_SET,     /* sets of random loaded keys (overwrites) */
	EB_MIXED,   /* 90% gets, 10% sets of random loaded keys */
};
#define EB_BATCH_OPS 1000
#define EB_MIXED_SET_PCT 10

/* Set by SIGINT/SIGTERM: every phase stops at its next operation, and the
 * benchmark cleans up and exits. */
extern volatile sig_atomic_t eb_stop;

/* The data of one key-count/value-size variant.  Key k is "key%08u", its
 * value the key followed by a seeded filler, so a value depends only on
 * its key and size: whatever the phases did, both engines hold the same
 * bytes, and every get can check the whole value it read. */
struct eb_data {
	uint32_t nkeys;
	uint32_t *perm;      /* a seeded permutation of 0..nkeys-1: load order */
	uint32_t loaded;     /* random ops pick from perm[0..loaded) */
	size_t value_size;
	unsigned char *filler; /* value_size bytes */
	uint64_t seed;
};

int eb_data_init(struct eb_data *d, uint32_t nkeys, size_t value_size,
		 uint64_t seed);
void eb_data_free(struct eb_data *d);

/* What one phase measured. */
struct eb_result {
	uint64_t ops;     /* operations completed; keys for EB_BATCH */
	double seconds;   /* wall time, first op to last thread's last op */
	struct hist hist; /* per call (per batch for EB_BATCH) */
};

/* Run `work` on `s` from `threads` threads for at most `max_ops` operations
 * in all (split evenly) and about `max_ns` nanoseconds.  EB_LOAD and
 * EB_BATCH take keys from perm[first..]; the random workloads seed each
 * thread's PRNG from the seed, `work` and the thread number, so both
 * engines see the same sequence of keys.  Returns 0, or EB_ERR after
 * printing the first failure. */
int eb_run_phase(const struct eb_adapter *a, struct eb_store *s,
		 const struct eb_data *d, enum eb_work work, unsigned threads,
		 uint64_t first, uint64_t max_ops, uint64_t max_ns,
		 struct eb_result *res);

/* talent-plan's data: 100 random keys of 1..key_max bytes and values of
 * 1..100000 bytes, random bytes, from a seed. */
#define EB_TP_KEYS 100
#define EB_TP_READS 1000
#define EB_TP_VALUE_MAX 100000
struct eb_tp {
	size_t key_max;
	unsigned char *key[EB_TP_KEYS], *val[EB_TP_KEYS];
	size_t klen[EB_TP_KEYS], vlen[EB_TP_KEYS];
};
int eb_tp_init(struct eb_tp *tp, size_t key_max, uint64_t seed);
void eb_tp_free(struct eb_tp *tp);

/* Write the 100 pairs with set(), timing each call into res. */
int eb_tp_write(const struct eb_adapter *a, struct eb_store *s,
		const struct eb_tp *tp, struct eb_result *res);
/* EB_TP_READS gets of random ones of the 100 (values checked), into res. */
int eb_tp_read(const struct eb_adapter *a, struct eb_store *s,
	       const struct eb_tp *tp, uint64_t seed, struct eb_result *res);

/* ---- results (eb_report.c) ---------------------------------------------------- */

struct eb_row {
	const char *section;  /* the table's heading, e.g. "100-byte values" */
	const char *workload; /* machine name: "get", "tp_write", ... */
	const char *label;    /* the table's row name */
	unsigned threads;
	uint64_t value_size;  /* talent-plan rows: the largest (1..100000) */
	const char *engine;   /* "kvs" or "lmdb" */
	bool na;              /* this engine cannot run the row */
	uint64_t ops;
	double seconds;
	double p50_us, p99_us;
};

/* What the JSON file says about the run besides its rows. */
struct eb_meta {
	uint64_t seed;
	long cpus;
	double loadavg_start, loadavg_end;
	double phase_seconds, load_seconds;
	const char *kvs_how, *lmdb_how;
	const char *relaxed, *always; /* "kvs ... / lmdb ..." */
	const char *command;
};

/* Keep a copy of *r (strings are not copied: they must outlive the report). */
void eb_report_add(const struct eb_row *r);
/* One progress line for a row just measured. */
void eb_report_progress(const struct eb_row *r);
/* The whole table, with a kvs/lmdb ratio per row, then the targets. */
void eb_report_table(FILE *out);
/* Machine-readable copies; 0 or -1 (message printed). */
int eb_report_csv(const char *path);
int eb_report_json(const char *path, const struct eb_meta *meta);
void eb_report_free(void);

#endif /* KVS_ENGINE_BENCH_H */
