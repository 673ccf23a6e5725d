/*
 * batch.h - a connection's write batch: the one owner of the pipelined
 * writes sent to the engine together and of their replies.  batch.c
 * implements it; the fields are struct net_batch's in server_int.h.
 *
 * Life of a batch (all on the connection's worker, but done()):
 *   the write commands (cmd_write.c) reserve ops with net_batch_ops(), fill
 *   them and add them as one command with net_batch_add(); after every
 *   command, conn.c calls net_batch_note_held() so the replies a command
 *   made while the batch was open (errors, held in `defer`) keep their
 *   place; conn.c decides when to send it (net_batch_submit(), or
 *   net_batch_drop() when the connection is closing); the engine's writer
 *   thread reports the completion through the `done` hook; the worker then
 *   calls net_batch_complete(), which appends every reply in order and
 *   empties the batch.  batch.c calls nothing above it: the hook is how
 *   the completion goes back up.
 *
 * Every op is checked (kvs_check_key, the value size) before it joins the
 * batch: kvs_submit() refuses a whole batch for one invalid op, so one bad
 * key among pipelined writes would otherwise fail the writes around it,
 * depending on how TCP happened to split the stream.
 */
#ifndef KVS_NET_BATCH_H
#define KVS_NET_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "server_int.h"

/* Room for n zeroed ops after the batch's, valid until the next call on
 * c's batch.  Returns them, or NULL after replying with the error (out of
 * memory). */
struct kvs_op *net_batch_ops(struct net_conn *c, size_t n);

/* Add the first n of the ops net_batch_ops() just gave as one command of
 * `kind` (not NET_W_DEFERRED): its reply comes when the batch completes.
 * Replies with the error if out of memory (nothing added). */
void net_batch_add(struct net_conn *c, enum net_write_kind kind, size_t n);

/*
 * Commands made of update ops (KVS_OP_UPDATE: APPEND, SETRANGE, GETDEL,
 * RENAME, and every command queued by MULTI).  net_batch_upd() gives a
 * zeroed state of `size` bytes (at least sizeof(struct net_upd), which must
 * be its first member) that lives until the batch is answered, or NULL
 * after replying with the error.  The command then takes n ops with
 * net_batch_ops(), sets each one's type KVS_OP_UPDATE, key, klen, update
 * and uctx (its state), and adds them with net_batch_add_upd().  The
 * callbacks run on the writer thread, in order, with the key's current
 * state: they append the command's reply to x->reply (net_resp_put_*), and
 * keep any new value in net_upd_alloc() memory.  When the batch is
 * answered the reply is sent, unless an op's result says its key could not
 * be read (the error), or the callbacks built no reply (out of memory).
 */
struct net_upd *net_batch_upd(struct net_conn *c, size_t size);
void net_batch_add_upd(struct net_conn *c, struct net_upd *x, size_t n);
/* A command that reads the whole store (KEYS, SCAN, DBSIZE, RANDOMKEY
 * inside EXEC): it cannot be an update op, so fn(c, arg) runs on the worker
 * when the batch is answered, after the batch's writes were applied, and
 * makes its reply then, in its place.  arg must live until then. */
void net_batch_add_late(struct net_conn *c,
			void (*fn)(struct net_conn *c, const void *arg),
			const void *arg);

/* n bytes that live until the batch is answered, or NULL (out of memory).
 * Any thread that owns x at the time (the writer, in a callback). */
void *net_upd_alloc(struct net_upd *x, size_t n);

/*
 * EXEC (cmd_multi.c): with the batch empty, add its head, whose n ops
 * (taken with net_batch_ops(), possibly none) check the WATCHed keys
 * under state x; *head gets its place.  From then on the batch is one
 * transaction: submitted with KVS_BATCH_ATOMIC, and closed to later
 * commands (net_batch_room() is false).  The queued commands then join it
 * one by one as usual, and net_batch_end_exec(c, *head) marks its end.
 * When answered: an array of their replies, or nil (and nothing of them)
 * if a check aborted.  Returns 0, or -1 after replying (out of memory).
 */
int net_batch_add_exec(struct net_conn *c, struct net_upd *x, size_t n,
		       size_t *head);
void net_batch_end_exec(struct net_conn *c, size_t head);

/* After a command ran: the replies it held back (defer[held0 ..), made
 * while the batch was open) take their place among the batch's replies.
 * Out of memory makes c CLOSING. */
void net_batch_note_held(struct net_conn *c, size_t held0);

/* Does c have a batch open (commands not yet submitted, or in flight)? */
bool net_batch_open(const struct net_conn *c);

/* Does c's open batch write key[0..klen) (an op on it, or a FLUSHALL)?
 * A read of a key it does not write may run before the batch is applied
 * (conn.c); one of a key it writes must wait for it. */
bool net_batch_writes_key(const struct net_conn *c, const char *key,
			  size_t klen);

/* May c's open batch take another command (NET_BATCH_OPS)? */
bool net_batch_room(const struct net_conn *c);

/*
 * Hand c's open batch to the engine: it waits in the worker's list until
 * net_batch_flush() at the end of the pass (alone, at once, if the list
 * cannot grow).  Returns true if it is in flight: the caller parks c, the
 * engine calls done(c) once the result is stored (the writer thread; the
 * worker itself for a batch kvs_submit_all() refused), and the worker then
 * calls net_batch_complete().  Returns false if it was answered at once
 * (no op was left in it, or the engine refused it).
 */
bool net_batch_submit(struct net_conn *c, void (*done)(struct net_conn *c));

/* Hand the batches net_batch_submit() held during this pass of w to the
 * engine, all at once (kvs_submit_all: one writer wake-up, one round for
 * the lot).  The worker calls it before it waits for events again. */
void net_batch_flush(struct net_worker *w);

/* Append the replies of c's answered batch, in order, and empty it. */
void net_batch_complete(struct net_conn *c);

/* Empty c's open batch without a reply: c is closing (nobody takes them). */
void net_batch_drop(struct net_conn *c);

/* Release the batch's memory (conn.c, when c is freed; not in flight). */
void net_batch_free(struct net_conn *c);

#endif /* KVS_NET_BATCH_H */
