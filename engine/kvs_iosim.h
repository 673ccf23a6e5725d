/*
 * kvs_iosim.h - the power-loss simulation, for tests (iosim.c).
 *
 * While recording, every file operation of the engine on the files of one
 * directory (engine/io.c's wrappers: create and open, pwrite, fdatasync,
 * directory fsync, rename, unlink, ftruncate, close, mmap) is done for real
 * and also appended to a log, serialized so that the log's order is the
 * order in which the operations took effect.  A test runs a workload, then
 * asks for the directory as a power cut right after the first n operations
 * could have left it: what was made durable (an fdatasync of the file, an
 * fsync of the directory) is there; what was not is lost, kept or torn, as
 * the variant says.  Process-wide; one recording at a time; not for
 * production (when not recording it costs io.c one relaxed atomic load
 * per operation).
 */
#ifndef KVS_IOSIM_H
#define KVS_IOSIM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Start recording the operations on the files directly inside dir, which
 * must exist and be empty (the simulation starts from nothing).  Forgets
 * any earlier recording.  Returns 0, or an errno value. */
int kvs__sim_start(const char *dir);
/* Stop recording (the log stays until the next start or kvs__sim_reset). */
void kvs__sim_stop(void);
/* Free the log. */
void kvs__sim_reset(void);
/* Operations recorded so far: a crash point n (0 <= n <= this) means "the
 * first n operations happened, none after". */
uint64_t kvs__sim_ops(void);

enum kvs_sim_kind {
	KVS_SIM_CREATE,   /* open() that created the file */
	KVS_SIM_OPEN,     /* open() of an existing file */
	KVS_SIM_CLOSE,
	KVS_SIM_WRITE,    /* pwrite/pwritev */
	KVS_SIM_SYNC,     /* fdatasync of a file */
	KVS_SIM_SYNC_DIR, /* fsync of the directory */
	KVS_SIM_RENAME,
	KVS_SIM_UNLINK,
	KVS_SIM_TRUNCATE, /* ftruncate (open's O_TRUNC too) */
	KVS_SIM_MMAP,
};
/* Operation i: its kind and the role of the thread that did it ("writer",
 * "submitter" - a caller running a round itself, kvs__write_inline -,
 * "syncer", "bgio", "caller"); describe() writes one line such as
 * "#57 syncer fdatasync 0000000003.seg".  Returns -1 for i out of range. */
int kvs__sim_op(uint64_t i, enum kvs_sim_kind *kind, const char **role);
const char *kvs__sim_describe(uint64_t i, char *buf, size_t size);

/* What a power cut does to what was not made durable. */
enum kvs_sim_variant {
	/* Unsynced bytes of every file are lost; every create, rename and
	 * unlink not followed by an fsync of the directory is undone. */
	KVS_SIM_LOST,
	/* Per file, its unsynced bytes are lost whole, kept whole, or kept as
	 * a prefix cut at a random 512-byte boundary (the bytes past the cut
	 * are what was durable there); per unsynced directory operation, it
	 * is undone or kept: all at random from the seed. */
	KVS_SIM_RANDOM,
	/* Unsynced bytes lost; unsynced unlinks kept while unsynced creates
	 * and renames are undone (nothing orders them without an fsync of
	 * the directory): the worst case for data that moved. */
	KVS_SIM_UNLINKS_FIRST,
};

/* A replay of the log, for crash points asked in nondecreasing order. */
struct kvs_sim_crash;
struct kvs_sim_crash *kvs__sim_crash_new(void);
void kvs__sim_crash_free(struct kvs_sim_crash *c);
/* Write into outdir (existing; its files are removed first) the directory
 * as a power cut after the first n operations leaves it, with `variant`
 * and `seed`; desc (if not NULL) gets a summary of the choices made, and
 * *kept_unlinks (if not NULL) the number of unsynced unlinks it kept.
 * Returns 0, or an errno value (n out of order or range, or a crash
 * object from before the last kvs__sim_start/reset: EINVAL). */
int kvs__sim_crash_at(struct kvs_sim_crash *c, uint64_t n,
		      enum kvs_sim_variant variant, uint64_t seed,
		      const char *outdir, char *desc, size_t desc_size,
		      unsigned *kept_unlinks);
/* The first operation on a file of the watched directory that the
 * recorder could not follow (a descriptor it did not see opened, a name it
 * did not see created), or NULL: the simulation is then incomplete (a file
 * operation of the engine bypasses io.c), and a test must fail. */
const char *kvs__sim_lost(void);

#ifdef __cplusplus
}
#endif
#endif
