/*
 * compact_int.h - the state of compaction, shared by its files only:
 *   compact_policy.c  what to compact and when: victims, the tombstone rule
 *                     and ghosts, the rate limit, backoff, kvs_compact()
 *                     callers;
 *   compact_move.c    moving live records: copying them into the output,
 *                     switching the index to the copies;
 *   compact_jobs.c    a pass's file operations, run by the background I/O
 *                     thread (bgio.c);
 *   compact.c         the pass itself, phase by phase, and its lifetime.
 * Calls go from compact.c down to the other three, never back.  Everything
 * here is the writer thread's, except what a job reads while it runs (said
 * at each field).
 */
#ifndef KVS_COMPACT_INT_H
#define KVS_COMPACT_INT_H

#include "bgio.h"
#include "compact.h"
#include "engine_int.h"

#define STEP_BYTES (8u << 10)     /* input read per step (~15 us of work) */
#define PASS_COST (256u << 10)    /* tokens a pass's syncs and renames cost */
#define WRITE_CREDIT 2            /* compaction bytes earned per byte written */
#define OBUF_MAX (64u << 10)      /* output written per pwrite (~30 us) */
#define WRITEBACK_EVERY (1u << 20) /* output bytes per sync_file_range */
#define DEFAULT_RATIO 0.5
#define DEFAULT_MIN_DEAD (4ull << 20)
#define DEFAULT_RATE (32ull << 20)
#define SWITCH_CHUNK 64          /* index entries switched per step */
#define MAX_BURST (64ull << 20)   /* most extra work one step may owe */
/* A step gives way to a waiting client request once it has done STEP_MIN
 * bytes (or SWITCH_MIN entries), unless compaction owes more than
 * BURST_SLACK of work to client writes: then it pays that down first, so
 * that a steady stream of requests cannot starve it. */
#define STEP_MIN (2u << 10)
#define SWITCH_MIN 16
#define BURST_SLACK (256u << 10)  /* or a quarter segment, if less */
/* After a round of client requests, compaction waits this long for the
 * queue to stay empty before its next step: the threads the round woke
 * (on a small machine, often waiting for the CPU the writer is on) run
 * first. */
#define QUIET_US 50
/* A pass that could not write its output (disk full, no descriptor, no
 * memory) is tried again after BACKOFF_MIN_US, doubling up to
 * BACKOFF_MAX_US while it keeps failing; its warning is logged at most
 * once per WARN_EVERY_US. */
#define BACKOFF_MIN_US 250000ull
#define BACKOFF_MAX_US 30000000ull
#define WARN_EVERY_US 1000000ull

/* A pass's fsyncs and renames (a millisecond or more each) run on the
 * background I/O thread, so that the writer goes on serving client writes
 * meanwhile.  While a job runs the writer touches neither the output nor the
 * victims' files; it uses the results only once kvs__bgio_done() says the
 * job is over (acquire). */
enum job_kind {
	JOB_SEAL,    /* write the output's footer, fdatasync it */
	JOB_PUBLISH, /* rename the output into place, fsync the directory,
			write its hint file */
	JOB_DROP,    /* unlink the victims, fsync the directory */
};

struct job {
	struct kvs__bgio_job bj; /* run = kvs__cp_job_run */
	struct kvs *db;
	enum job_kind kind;
	int rc;                  /* JOB_SEAL, JOB_PUBLISH: KVS_OK or error */
	int warn_rc;             /* a failure only worth a warning */
	bool synced_bad;         /* JOB_SEAL, JOB_PUBLISH: the failure was a
				    failed fdatasync/fsync (sticky), not a
				    write, creation or rename (transient) */
	bool renamed;            /* JOB_PUBLISH: the output has its final
				    name, even if the job failed */
	bool dir_bad;            /* JOB_DROP: the directory fsync failed */
	bool *kept;              /* JOB_DROP: [i] victim i's unlink failed
				    (NULL if it could not be allocated:
				    then unlink_bad stands for all) */
	bool unlink_bad;
	char msg[512];           /* kvs_errmsg() of the failure */
	unsigned char foot[KVS__REC_MAX_HEAD + 5];
	size_t foot_len;
	uint64_t footer_off;
	size_t ngone;            /* JOB_DROP: victims[0..ngone) go */
	struct kvs__seg *sync_first; /* JOB_DROP: fdatasync'd before that */
};

/* A file compaction removed from the segment list that may still be in the
 * directory: its unlink failed, or the directory fsync after the unlink
 * failed (a power cut could then bring it back).  Its records count, for
 * the tombstone rule, as if it were still a segment: a tombstone newer than
 * its lowest seq is kept, or the file could bring a removed key back at the
 * next open.  A ghost whose unlink failed is tried again by the next pass's
 * drop job; one whose directory fsync failed stays for the handle's life
 * (a failed fsync is never retried and taken for success). */
struct ghost {
	char *path;
	uint64_t min_seq;
	bool stuck;              /* a directory fsync failed after it */
	bool gone;               /* the drop job unlinked it (or found it
				    gone), pending that job's directory
				    fsync */
};

/* A live SET record copied by the running pass. */
struct moved {
	const unsigned char *key; /* into the victim's mapping */
	uint32_t klen;
	uint32_t old_off, new_off;
	uint32_t rec_len, vlen;
	uint64_t hash;
	struct kvs__seg *victim;
};

struct kvs__compact {
	double ratio;
	uint64_t min_dead, rate;
	bool disabled;           /* after a failed sync or corruption in a pass */
	/* Transient failures (see give_up_pass): no pass starts before
	 * retry_at unless kvs_compact() asks; backoff_us is the next wait. */
	uint64_t retry_at, backoff_us;
	uint64_t warn_us;        /* when the last rate-limited warning went */
	unsigned warn_dropped;   /* warnings not logged since */
	struct ghost *ghosts;    /* see struct ghost; writer only, read and
				    (`gone`) written by the drop job while it
				    runs */
	size_t nghosts;
	unsigned char *kbuf;     /* a moved key, copied from its victim */
	size_t kcap;

	/* The rate limit: a token bucket of input bytes, filled at `rate`
	 * plus WRITE_CREDIT per byte clients write, so that compaction keeps
	 * up with any sustained overwrite load while idle-time work stays
	 * capped.  Credited and refilled by kvs__compact_tick only. */
	double tokens;
	uint64_t refill_us;
	uint64_t written_seen;   /* db->counters-based byte count */
	/* Work owed to client writes since the last step (WRITE_CREDIT per
	 * byte written): the next step does that much more than its usual
	 * share, so that compaction keeps pace with any write rate while a
	 * step on a lightly loaded store stays short. */
	uint64_t burst;
	uint64_t quiet_until;    /* kvs__now_us(): no step before, unless owed */
	/* db->counters.bytes_written when kvs__compact_due_inline last looked
	 * for a candidate segment (a walk of the list) with no pass running. */
	uint64_t trigger_seen;

	/* kvs_compact() callers, completed when the forced work is done. */
	struct kvs__req *waiters;
	bool forced;

	/* The pass in progress: copy the live records (bounded steps), seal
	 * the output, switch the index to it (bounded steps), drop the
	 * victims.  Client writes run between any two steps. */
	bool running;
	enum { PH_COPY, PH_JOB, PH_SWITCH, PH_DROP } phase;
	struct job job;          /* PH_JOB; the job reads victims[], out and
				    ghosts while it runs */
	uint64_t freed;          /* victim bytes deleted by the pass */
	size_t si;               /* PH_SWITCH: moved[] done so far */
	uint64_t out_bytes;      /* size of the sealed output */
	struct kvs__seg **victims;
	size_t nvictims, vi;
	uint64_t cursor;         /* offset in victims[vi] */
	uint64_t min1, min2;     /* the two lowest min_seq over all segments */
	struct kvs__seg *min1_seg;
	struct kvs__seg *out;    /* the output, NNNNNNNNNN.seg.tmp */
	uint64_t written_back;   /* out's bytes whose write-back was started */
	unsigned char *obuf;
	size_t olen, ocap;
	struct moved *moved;
	size_t nmoved, capmoved;
	uint64_t start_us;
};

/* ---- compact_policy.c --------------------------------------------------- */
/* Pick this pass's victims and start it (running, PH_COPY); false if there
 * is nothing to do. */
bool kvs__cp_choose_victims(struct kvs *db);
/* A pass is over: kept tombstones no older segment needs become garbage. */
void kvs__cp_release_kept(struct kvs *db);
/* May a step stop early now?  A client request is queued (the writer's
 * clients_waiting says so) and compaction owes client writes little
 * enough work to put it off. */
bool kvs__cp_should_yield(const struct kvs *db,
			  kvs__clients_waiting_fn *clients_waiting);
/* A victim of the running pass still has its hint file being written (its
 * drop waits for it). */
bool kvs__cp_victims_hinting(const struct kvs *db);
/* A step did `done` bytes' worth of work, of which `share` was its usual
 * share: the rest pays for work owed to client writes. */
void kvs__cp_pay_burst(struct kvs__compact *cp, uint64_t done,
		       uint64_t share);
/* Garbage has outgrown what the writer may let clients add before it
 * waits for a job (see compact_policy.c). */
bool kvs__cp_over_budget(const struct kvs *db);
/* Complete every kvs_compact() caller with result; the forced work ends. */
void kvs__cp_complete_waiters(struct kvs *db, int result);
/* A pass could not write its output and was dropped: no other starts
 * before a backoff (doubling while passes keep failing), a warning at most
 * once a second, callers of kvs_compact() get KVS_ENOSPC. */
void kvs__cp_postpone(struct kvs *db, const char *what);
/* Remember a file that may still be in the directory (struct ghost). */
void kvs__cp_add_ghost(struct kvs *db, const char *path, uint64_t min_seq,
		       bool stuck);
/* A drop job is over (dir_bad: its directory fsync failed): forget the
 * ghosts it unlinked for good; the others it unlinked are stuck. */
void kvs__cp_ghosts_dropped(struct kvs *db, bool dir_bad);

/* ---- compact_move.c ----------------------------------------------------- */
/* copy_one: a page of the victim's mapping could not be read. */
#define KVS__CP_FAULT INT64_MIN
/* Copy (or drop) the record of victim v at cp->cursor; returns its length,
 * 0 at the victim's footer, a negative error, or KVS__CP_FAULT. */
int64_t kvs__cp_copy_one(struct kvs *db, struct kvs__seg *v);
/* Write the output's buffered bytes.  KVS_OK or KVS_EIO. */
int kvs__cp_out_flush(struct kvs *db);
/* Switch up to a step's share of still-current entries to their copies;
 * sets PH_DROP once all are done. */
void kvs__cp_switch_some(struct kvs *db,
			 kvs__clients_waiting_fn *clients_waiting);

/* ---- compact_jobs.c ----------------------------------------------------- */
/* The body of every job (struct job's bj.run). */
void kvs__cp_job_run(struct kvs__bgio_job *bj);

#endif /* KVS_COMPACT_INT_H */
