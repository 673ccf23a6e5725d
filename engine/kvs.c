/* kvs.c - the log engine's entry points (behind api.c's vtable): open and
 * close, kvs_get's lookup (the copy itself is read.c's), and the write,
 * stats and compact calls that hand their requests to the writer.  The top
 * of the log engine: it calls into every other part and nothing calls it
 * but api.c. */
#include "engine_int.h"
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SEGMENT_SIZE (64ull << 20)
#define MIN_SEGMENT_SIZE (4ull << 10)
#define MAX_SEGMENT_SIZE (1ull << 30)

/* ---- opening ------------------------------------------------------------- */

static void free_handle(struct kvs *db)
{
	kvs__index_destroy(db->index);
	kvs__expire_free(&db->exp);
	free(db->versions);
	for (struct kvs__seg *s = db->segs, *next; s; s = next) {
		next = s->next;
		kvs__seg_free(s);
	}
	pthread_mutex_destroy(&db->q.mu);
	pthread_mutex_destroy(&db->q.role);
	pthread_cond_destroy(&db->q.cv);
	pthread_mutex_destroy(&db->sync.mu);
	pthread_mutex_destroy(&db->pub.mu);
	pthread_cond_destroy(&db->sync.cv);
	free(db->dir);
	free(db);
}

static int log_open(const char *dir, const struct kvs_options *opts,
		    struct kvs **out)
{
	struct kvs *db = NULL;
	pthread_condattr_t ca;
	const struct kvs *prev_writer = kvs__writer_of;
	int rc;

	uint64_t t0 = kvs__now_us();
	db = calloc(1, sizeof *db);
	if (!db || !(db->dir = strdup(dir))) {
		free(db);
		return kvs__err(KVS_ENOMEM, "out of memory");
	}
	db->h.lock_fd = -1;
	db->opt = *opts;
	if (db->opt.segment_size == 0)
		db->opt.segment_size = DEFAULT_SEGMENT_SIZE;
	KVS_CHECK(pthread_mutex_init(&db->q.mu, NULL));
	KVS_CHECK(pthread_mutex_init(&db->q.role, NULL));
	KVS_CHECK(pthread_mutex_init(&db->sync.mu, NULL));
	KVS_CHECK(pthread_mutex_init(&db->pub.mu, NULL));
	KVS_CHECK(pthread_condattr_init(&ca));
	KVS_CHECK(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC));
	KVS_CHECK(pthread_cond_init(&db->q.cv, &ca));
	KVS_CHECK(pthread_cond_init(&db->sync.cv, &ca));
	pthread_condattr_destroy(&ca);

	if (db->opt.segment_size < MIN_SEGMENT_SIZE ||
	    db->opt.segment_size > MAX_SEGMENT_SIZE) {
		rc = kvs__err(KVS_EINVAL,
			      "segment size %llu out of range (4 KiB to 1 GiB)",
			      (unsigned long long)db->opt.segment_size);
		goto fail;
	}
	kvs__rcu_thread_online();
	/* Until the writer thread starts, this thread is the store's writer
	 * (recovery fills the index and the segment list). */
	kvs__become_writer(db);
	/* Reads copy from mappings: a page that cannot be read must become
	 * an error, not the process's death (see mapguard.c, kvs.h). */
	kvs__mapguard_install();
	db->versions = calloc(KVS__VERSION_SLOTS, sizeof *db->versions);
	if (!db->versions) {
		rc = kvs__err(KVS_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = kvs__index_new(&db->index)) || (rc = kvs__recover(db)))
		goto fail;
	db->counters.open_us = kvs__now_us() - t0;
	atomic_store(&db->pub.live_keys, db->live_keys);
	if ((rc = kvs__writer_start(db)) != KVS_OK)
		goto fail;
	kvs__become_writer(prev_writer);
	*out = db;
	return KVS_OK;
fail:
	kvs__become_writer(db);
	kvs__writer_stop(db);
	free_handle(db);
	kvs__become_writer(prev_writer);
	return rc;
}

static int log_close(struct kvs *db)
{
	kvs__rcu_thread_online();
	kvs__writer_stop(db);
	/* The writer is joined: this thread takes its place to free. */
	const struct kvs *prev_writer = kvs__become_writer(db);
	int failed = atomic_load(&db->health.failed);
	free_handle(db);
	kvs__become_writer(prev_writer);
	if (failed)
		return kvs__err_errno(KVS_EIO, failed,
				      "the store failed earlier");
	return KVS_OK;
}

/* ---- reading --------------------------------------------------------------- */

/* The key's value (a heap copy into *val when val is given), its length and
 * its expiry time. */
static int log_lookup(struct kvs *db, const void *key, size_t klen,
		      void **val, size_t *vlen, int64_t *expire_ms)
{
	int rc = KVS_OK;
	kvs__rcu_thread_online();
	uint64_t hash = kvs__index_hash(db->index, key, klen);

	kvs__publish_wait(db);
	kvs__read_lock();
	struct kvs__entry *e = kvs__index_lookup(db->index, hash, key, klen);
	if (!e) {
		kvs__read_unlock();
		return KVS_ENOTFOUND;
	}
	/* An expired key is absent whether or not the writer has removed it
	 * yet; the clock is read only for keys that have an expiry time. */
	int64_t at = kvs__entry_expire(e);
	if (at && at <= kvs_now_ms()) {
		kvs__read_unlock();
		return KVS_ENOTFOUND;
	}
	size_t n = e->vlen;
	if (val) {
		void *buf = malloc(n ? n : 1);
		if (!buf) {
			kvs__read_unlock();
			return kvs__err(KVS_ENOMEM, "out of memory");
		}
		if ((rc = kvs__read_value(db, e, buf)) != KVS_OK)
			free(buf);
		else
			*val = buf;
	}
	kvs__read_unlock();
	if (rc != KVS_OK)
		return rc;
	if (vlen)
		*vlen = n;
	if (expire_ms)
		*expire_ms = at;
	return KVS_OK;
}

static int log_get(struct kvs *db, const void *key, size_t klen, void **val,
		   size_t *vlen)
{
	return log_lookup(db, key, klen, val, vlen, NULL);
}

static uint64_t log_read_gen(struct kvs *db)
{
	kvs__publish_wait(db);
	return atomic_load_explicit(&db->publishing, memory_order_acquire);
}

static uint64_t log_key_version(struct kvs *db, const void *key, size_t klen)
{
	uint64_t hash = kvs__index_hash(db->index, key, klen);
	return atomic_load_explicit(kvs__version_slot(db, hash),
				    memory_order_acquire);
}

/* ---- writing ----------------------------------------------------------------- */

static void inline_done(struct kvs__req *req)
{
	(void)req; /* the caller reads req->result when the round returns */
}

static int submit_ops(struct kvs *db, struct kvs_op *ops, size_t n,
		      unsigned flags)
{
	if (atomic_load(&db->health.failed))
		return kvs__err_errno(KVS_EFAILED, atomic_load(&db->health.failed),
				      "writes refused: an earlier write or sync "
				      "failed");
	char why[512] = "";
	struct kvs__req req = { .kind = KVS__REQ_WRITE, .ops = ops, .nops = n,
				.flags = flags, .errbuf = why, .errbuf_len = sizeof why,
				.done = inline_done };
	/* The caller waits anyway: with the writer idle, this thread writes
	 * (no hand-off, no wake-up). */
	int rc = kvs__write_inline(db, &req) ? req.result
					     : kvs__submit_wait(db, &req);
	if (rc != KVS_OK)
		/* The writer's own message (file, errno) when it left one. */
		return kvs__err(rc, "%s", why[0] ? why : kvs_strerror(rc));
	return KVS_OK;
}

static int log_write(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags)
{
	return submit_ops(db, ops, n, flags);
}

static void async_done(struct kvs__req *req)
{
	req->user_done(req->user_ctx, req->result);
	free(req);
}

/* A request for kvs_submit() in *out, or the error. */
static int async_req(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags, void (*done)(void *ctx, int result),
		     void *ctx, struct kvs__req **out)
{
	if (atomic_load(&db->health.failed))
		return kvs__err_errno(KVS_EFAILED,
				      atomic_load(&db->health.failed),
				      "writes refused: an earlier write or sync "
				      "failed");
	struct kvs__req *req = calloc(1, sizeof *req);
	if (!req)
		return kvs__err(KVS_ENOMEM, "out of memory");
	req->kind = KVS__REQ_WRITE;
	req->ops = ops;
	req->nops = n;
	req->flags = flags;
	req->done = async_done;
	req->user_done = done;
	req->user_ctx = ctx;
	*out = req;
	return KVS_OK;
}

static int log_submit(struct kvs *db, struct kvs_op *ops, size_t n,
		      unsigned flags, void (*done)(void *ctx, int result),
		      void *ctx)
{
	struct kvs__req *req;
	int rc = async_req(db, ops, n, flags, done, ctx, &req);
	if (rc != KVS_OK)
		return rc;
	kvs__submit(db, req);
	return KVS_OK;
}

static void log_submit_all(struct kvs *db, const struct kvs_submission *subs,
			   size_t n)
{
	struct kvs__req *first = NULL, *last = NULL;
	size_t queued = 0;
	for (size_t i = 0; i < n; i++) {
		const struct kvs_submission *x = &subs[i];
		struct kvs__req *req;
		int rc = async_req(db, x->ops, x->n, x->flags, x->done,
				   x->ctx, &req);
		if (rc != KVS_OK) {
			x->done(x->ctx, rc);
			continue;
		}
		if (last)
			last->next = req;
		else
			first = req;
		last = req;
		queued++;
	}
	if (!first)
		return;
	/* With the writer idle, this thread runs the round (the done()s
	 * before this returns).  Under `always` only when the round is one
	 * submission (one client's writes, for kvs-server): its thread then
	 * waits for the fdatasync as the client does, and saves the two
	 * thread wake-ups a hand-off adds to that client's every write.  A
	 * round of several clients goes to the writer thread, which syncs
	 * while this caller gathers the next one. */
	if ((kvs__fsync_policy(db) == KVS_FSYNC_ALWAYS && queued > 1) ||
	    !kvs__write_inline(db, first))
		kvs__submit_list(db, first, last, queued);
}

static int log_stats(struct kvs *db, struct kvs_store_stats *st)
{
	struct kvs__req req = { .kind = KVS__REQ_STATS, .stats = st };
	return kvs__submit_wait(db, &req);
}

static int log_stats_cached(struct kvs *db, struct kvs_store_stats *st)
{
	kvs__lock(&db->pub.mu);
	*st = db->pub.stats;
	kvs__unlock(&db->pub.mu);
	/* The failure states are current even when the writer is idle or
	 * never woke (a refused write does not reach it). */
	st->failed = atomic_load(&db->health.failed);
	st->write_error = atomic_load(&db->health.write_error);
	st->damaged = atomic_load(&db->health.damaged);
	st->live_keys = atomic_load(&db->pub.live_keys);
	st->writes = atomic_load(&db->pub.writes);
	return KVS_OK;
}

static int log_compact(struct kvs *db)
{
	struct kvs__req req = { .kind = KVS__REQ_COMPACT };
	int rc = kvs__submit_wait(db, &req);
	if (rc != KVS_OK)
		return kvs__err(rc, "compaction failed: %s", kvs_strerror(rc));
	return KVS_OK;
}

/* SCAN over the split-ordered list of cds_lfht: its nodes stay sorted by
 * bit-reversed hash whatever the table's size, so "every node at or after
 * reverse hash c" is a stable cursor through resizes.  Skipping to the cursor
 * walks the nodes before it. */
static int log_scan(struct kvs *db, uint64_t cursor, size_t count,
		    int (*cb)(void *ctx, const void *key, size_t klen),
		    void *ctx, uint64_t *next_cursor)
{
	struct cds_lfht *ht = kvs__index_table(db->index);
	struct cds_lfht_iter it;
	size_t passed = 0;
	uint64_t last = 0;
	bool stopped = false;
	int64_t now = 0; /* read once, at the first key with an expiry */

	kvs__rcu_thread_online();
	kvs__publish_wait(db);
	kvs__read_lock();
	cds_lfht_first(ht, &it);
	struct cds_lfht_node *node;
	while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
		uint64_t rh = node->reverse_hash;
		/* Stop between two hash values only, so keys sharing a hash
		 * are never split across calls. */
		if (passed >= count && rh != last) {
			stopped = true;
			break;
		}
		if (rh >= cursor) {
			struct kvs__entry *e =
				caa_container_of(node, struct kvs__entry, node);
			uint32_t klen = kvs__entry_klen(e);
			int64_t at = kvs__entry_expire(e);
			last = rh;
			passed++;
			if (at && !now)
				now = kvs_now_ms();
			if (at && at <= now) {
				cds_lfht_next(ht, &it);
				continue; /* expired: absent */
			}
			if (cb(ctx, e->key, klen) != 0) {
				stopped = true; /* resume after this hash */
				break;
			}
		}
		cds_lfht_next(ht, &it);
	}
	kvs__read_unlock();
	*next_cursor = stopped && last != UINT64_MAX ? last + 1 : 0;
	if (stopped && passed == 0)
		*next_cursor = cursor;
	return KVS_OK;
}

const struct kvs__vtable kvs__log_engine = {
	.name = "kvs",
	.max_key = KVS_MAX_KEY,
	.open = log_open,
	.close = log_close,
	.get = log_get,
	.write = log_write,
	.submit = log_submit,
	.submit_all = log_submit_all,
	.lookup = log_lookup,
	.key_version = log_key_version,
	.read_gen = log_read_gen,
	.compact = log_compact,
	.stats = log_stats,
	.stats_cached = log_stats_cached,
	.scan = log_scan,
	.snapshot = kvs__log_snapshot,
};
