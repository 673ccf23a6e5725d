/*
 * round.h - the writer's round buffer, shared by the files that make up the
 * writer: round.c (the output pieces of a round and the mark a refused round
 * goes back to), stage.c (staging each operation, then applying the round
 * to the index), rotate.c (sealing the active segment) and writer.c (the
 * loop).  All of it is the writer thread's (or the opener's) alone.
 *
 * A round: kvs__round_reset, then kvs__stage_op for each operation (which
 * encodes its record into the buffer and advances the active segment's
 * append offset, counts and chain as if written: the bytes are in the
 * buffer, the index not yet touched), kvs__round_flush (one pwritev), an
 * fdatasync under `always`, then kvs__round_apply publishes the index
 * entries.  A failure anywhere before apply is taken back whole:
 * kvs__round_discard frees the staged entries and kvs__round_undo cuts the
 * file and restores the counts to the mark.
 */
#ifndef KVS_ROUND_H
#define KVS_ROUND_H

#include "engine_int.h"

/* Keys and values up to this size are copied into the round's buffer so that
 * many small records go out in one contiguous write; larger ones are written
 * straight from the caller's memory. */
#define COPY_MAX 4096

/* One piece of output: either bytes in the arena (ptr == NULL) or bytes in a
 * caller's buffer, valid until the round completes. */
struct piece {
	const void *ptr;
	size_t off; /* in the arena, when ptr == NULL */
	size_t len;
};

/* A record written in this round whose index update is pending (SET,
 * REMOVE or FLUSH). */
struct pend {
	enum kvs_record_type type;
	struct kvs_op *op;        /* FLUSH: its op, for the count removed */
	struct kvs__entry *entry; /* SET: the new entry, published on apply */
	const void *key;          /* REMOVE */
	size_t klen;
	uint64_t hash;
	struct kvs__seg *seg;
	uint64_t off;
	uint64_t seq;
	uint32_t rec_len;
	/* SET: the value written, for a later INCR of the key in this round
	 * (val points into the caller's op, or is_num holds the number). */
	const void *val;
	size_t vlen;
	bool is_num;
	int64_t num;
	int64_t expire_ms; /* SET: the key's expiry time (0: none) */
	bool reap;         /* REMOVE: of an expired key, by expire.c */
};

/* The round's view of keys it has already written, so that a remove after a
 * set of the same key (both in this round) sees the set.  Open addressing;
 * a slot is in use when its gen equals the round's gen. */
struct oslot {
	uint64_t gen;
	uint64_t hash;
	size_t pend; /* index into pends */
};

struct kvs__writer_buf {
	unsigned char *arena;
	size_t arena_len, arena_cap;
	struct piece *pieces;
	size_t npieces, pieces_cap;
	uint64_t base_off;  /* file offset of the first unwritten piece */
	struct pend *pends;
	size_t npends, pends_cap;
	struct oslot *slots;
	size_t slots_cap, slots_used;
	uint64_t gen;
	struct iovec *iov;
	size_t iov_cap;
	/* Where a refused round goes back to (see the top of this file): the
	 * active segment's state and the store's counters at the round's
	 * start, or after the rotation that began it. */
	struct mark {
		struct kvs__seg *seg;
		uint64_t size, records, last_seq, min_seq, next_seq;
		uint64_t writes, bytes_written;
		size_t hint_n;
		uint32_t chain;
	} mark;
	/* The update callbacks' view of a value (stage.c update_state). */
	unsigned char *ubuf;
	size_t ubuf_cap;
	char numbuf[24];
	bool aborted; /* an update op of the request being staged asked to
			 abort it: its later ops are not staged */
	bool atomic;  /* the request being staged is KVS_BATCH_ATOMIC: it is
			 never split by a rotation */
	bool guard;   /* the round holds an atomic request of several records
			 or a flush: its publication is guarded (apply) */
	size_t flush_at; /* 1 + the index of the round's last FLUSH pend; 0:
			    none.  Earlier writes and the index are gone for
			    the ops staged after it */
	bool wrote; /* out_flush ran: bytes may lie past mark.size */
	bool split; /* a rotation sealed records of this round */
};

/* round.c */
/* Make *p hold at least `need` elements of `elem` bytes (doubling). */
bool kvs__round_grow(void **p, size_t *cap, size_t need, size_t elem);
/* Out of memory while staging: KVS_ENOSPC with ENOMEM as its reason (the
 * round is refused and undone, as for a full disk). */
int kvs__round_nomem(void);
/* Append len bytes to the round's output: copied into the arena (copy), or
 * pointed at (the caller's buffer lives until the round completes). */
int kvs__round_add(struct kvs__writer_buf *wb, const void *p, size_t len,
		   bool copy);
/* Write every pending piece to the active segment.  KVS_ENOSPC: a shortage
 * (part of the bytes may be in the file: the round's undo cuts them off);
 * KVS_EIO: any other write error. */
int kvs__round_flush(struct kvs *db);
/* Remember where a refused round would go back to (after a rotation too). */
void kvs__round_mark(struct kvs *db);
/* Empty the buffer for a new round, and mark. */
void kvs__round_reset(struct kvs *db);
/* Take back a round refused before anything of it was acknowledged.
 * KVS_OK, or KVS_EIO if it cannot be (see round.c). */
int kvs__round_undo(struct kvs *db);

/* stage.c */
/* Stage one operation: check its condition against every earlier write
 * (this round's included), encode its record into the round.  Its own
 * outcome goes to op->result (KVS_ENOTFOUND, KVS_EEXIST, ...); the return
 * value is a failure of the round (KVS_ENOSPC, KVS_EIO). */
int kvs__stage_op(struct kvs *db, struct kvs_op *op);
/* Write the marker that opens (open_seq 0) or closes (open_seq: the
 * opening marker's seq) an atomic request: recovery keeps all of the
 * request's records or none. */
int kvs__stage_txn_mark(struct kvs *db, uint64_t open_seq);
/* Publish the round's staged entries (after its bytes are written). */
void kvs__round_apply(struct kvs *db);
/* Free the staged entries of a round that is refused. */
void kvs__round_discard(struct kvs *db);

#endif /* KVS_ROUND_H */
