/* dump.h - what the files of kvs-dump share: its options, the list of input
 * files, the per-file figures, and the functions each file offers the
 * others.  Internal to kvs-dump; one thread (main's) runs all of it.
 *
 * Layers, each using only those above it:
 *   dump_out.c     messages on stderr, allocation, showing keys, values and
 *                  records on stdout
 *   dump_inputs.c  the files to read: arguments and directory walks
 *   dump_stats.c   the newest record of each key; --stats and --verify
 *                  reports
 *   dump_read.c    reading one file through the engine's reader, and
 *                  checking a hint file against its segment
 *   kvs-dump.c     options and main
 */
#ifndef KVS_DUMP_H
#define KVS_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvs.h"

#define SHOW_MAX 64 /* bytes of a key or value shown without --full */

/* Exit statuses. */
enum { EXIT_BAD_DATA = 1, EXIT_USAGE = 2 };

struct opts {
	bool json;   /* one JSON object per line instead of text */
	bool full;   /* never abbreviate keys and values */
	bool verify; /* no listing; check seals and hints, print a summary */
	bool stats;  /* no listing; per-file counts, live and dead records */
	bool hints;  /* a DIR stands for its hint files, not its segments */
};

/* One file to read, in the order given (a DIR's files ascending). */
struct input {
	char *path;
	bool must_seal; /* from a DIR and not its newest segment */
	char *hint;     /* --verify of a DIR: the segment's hint file or NULL */
};

struct input_list {
	struct input *v;
	size_t n, cap;
};

/* What --stats (and --verify's summary) reports for one file.  For a hint
 * file, bytes is the hint file's size, while rec_bytes and live_bytes are
 * the sizes of the segment records its entries describe. */
struct seg_stats {
	uint64_t sets, removes, bytes, live, live_bytes;
	uint64_t rec_bytes; /* SET and REMOVE records (no header, no footer) */
	bool sealed;
	bool hint;          /* the file is a hint file */
};

/* The keys seen by --stats, each with its newest record so far
 * (dump_stats.c).  Zeroed is empty. */
struct key_ent;
struct key_table {
	struct key_ent **buckets;
	size_t nbuckets; /* a power of two */
	size_t n;
	uint64_t flush_seq; /* of the newest FLUSH: older records are dead */
};

/* ---- dump_out.c ---------------------------------------------------------- */

/* "kvs-dump: " and a message on stderr, after the records listed so far. */
void dump_complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Says "out of memory" and exits with EXIT_BAD_DATA. */
void dump_oom(void) __attribute__((noreturn));
/* realloc(p, n * size), or NULL if that overflows or fails. */
void *dump_realloc_array(void *p, size_t n, size_t size);
/* p[0..n) as a JSON string; an invalid UTF-8 byte becomes U+FFFD. */
void dump_put_json_text(const unsigned char *p, size_t n);
/* "set", "remove" or "footer". */
const char *dump_op_name(enum kvs_record_type t);
/* One record of the segment file `path`, or one entry of a hint file
 * (is_hint), as a line of text or a JSON object (o->json). */
void dump_print_record(const struct opts *o, const char *path, bool is_hint,
		       const struct kvs_record *rec);

/* ---- dump_inputs.c ------------------------------------------------------- */

/* Append a file to read; the list owns path and hint (malloc'd). */
void dump_add_input(struct input_list *l, char *path, bool must_seal,
		    char *hint);
/* Append the files of `dir` that the options ask for, ascending.  Returns 0,
 * or -1 after printing why the directory cannot be listed. */
int dump_add_dir(const struct opts *o, struct input_list *l, const char *dir);

/* ---- dump_stats.c -------------------------------------------------------- */

/* Note a SET or REMOVE record of input file number `file`. */
void dump_keys_note(struct key_table *t, const struct kvs_record *rec,
		    size_t file);
/* Credit each key's newest record, if a SET, to its file's st[]; empty the
 * table. */
void dump_keys_count_live(struct key_table *t, struct seg_stats *st);
/* The --stats table (or JSON lines): one row per file and a total. */
void dump_print_stats(const struct opts *o, const struct input_list *in,
		      const struct seg_stats *st);
/* --verify's one-line summary when all is well. */
void dump_print_verify_ok(const struct opts *o, const struct input_list *in,
			  const struct seg_stats *st);

/* ---- dump_read.c --------------------------------------------------------- */

/* Read input file number idx, listing or counting its records into *st
 * (and keys, with --stats), and with --verify of a DIR check its hint file.
 * Returns 0, or 1 after printing what is wrong. */
int dump_read_file(const struct opts *o, const struct input *in, size_t idx,
		   struct seg_stats *st, struct key_table *keys);

#endif
