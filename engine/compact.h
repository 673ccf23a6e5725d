/*
 * compact.h - compaction as the writer sees it (compact.c, compact_policy.c,
 * compact_move.c, compact_jobs.c; docs/COMPACTION.md): bounded steps the
 * writer runs between rounds of client requests.  Every function here is for
 * the writer thread only (init and free: the thread that starts and stops
 * the writer, while it is not running).
 *
 * One turn of the writer's loop, as it uses them:
 *	kvs__compact_request(...)	a kvs_compact() call in the round
 *	kvs__compact_check_active(db)	after a round
 *	kvs__compact_note_round(db)	after the rounds of this turn
 *	kvs__compact_tick(db)		once, outside the queue's lock
 *	kvs__compact_pending(db, &d)	pure; also under the queue's lock
 *	kvs__compact_step(db, waiting)	when pending and d == 0
 */
#ifndef KVS_COMPACT_H
#define KVS_COMPACT_H

#include <stdbool.h>
#include <stdint.h>

struct kvs;
struct kvs__req;

/* The writer's answer to "is a client request queued?": asked during a step,
 * which then gives way (docs/COMPACTION.md "How fast").  Cheap, no lock. */
typedef bool kvs__clients_waiting_fn(const struct kvs *db);

/* Set up db->cp (nothing runs yet); db->bg must exist.  KVS_OK or
 * KVS_ENOMEM. */
int kvs__compact_init(struct kvs *db);
/* Drop a pass still copying (its temporary output is removed), complete
 * kvs_compact() callers, free db->cp.  After kvs__compact_settle and after
 * the background I/O thread has stopped. */
void kvs__compact_free(struct kvs *db);
/* A kvs_compact() request: remember it; req->done runs when the work it
 * covers is done (or at once, on an error). */
void kvs__compact_request(struct kvs *db, struct kvs__req *req);
/* After a round: seal the active segment early if it is mostly garbage. */
void kvs__compact_check_active(struct kvs *db);
/* The writer has just completed a round of client requests (the quiet time
 * after it starts). */
void kvs__compact_note_round(struct kvs *db);
/* Once per turn of the writer's loop, outside its queue's lock: credit the
 * bytes clients wrote to the rate limit, refill it with time, and complete
 * kvs_compact() callers whose work is done. */
void kvs__compact_tick(struct kvs *db);
/* Is there compaction work (a step to take, or kvs__compact_tick callers to
 * complete)?  *delay_us: how long the rate limit, the quiet time after a
 * round of client requests, or a backoff wants the writer to wait before the
 * next step (0: now).  Reads only, so the writer may call it under its
 * queue's lock; it answers as if kvs__compact_tick had just run. */
bool kvs__compact_pending(const struct kvs *db, uint64_t *delay_us);
/* After a round a caller ran on its own thread (kvs__write_inline): is a
 * step due at once (kvs__compact_pending with no delay)?  Cheap: with no
 * pass running it looks for a candidate segment (a walk of the list) only
 * once per quarter segment (at most 256 KiB) written since it last did. */
bool kvs__compact_due_inline(struct kvs *db);
/* Do one bounded step of compaction; it stops early when clients_waiting
 * says so, unless compaction owes client writes too much work. */
void kvs__compact_step(struct kvs *db,
		       kvs__clients_waiting_fn *clients_waiting);
/* At stop: finish a pass whose output is published (the index switch and
 * the victims' removal), so that nothing points at a freed segment. */
void kvs__compact_settle(struct kvs *db,
			 kvs__clients_waiting_fn *clients_waiting);

#endif /* KVS_COMPACT_H */
