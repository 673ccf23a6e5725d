/* syncer.c - the everysec sync thread: once a second, when the policy is
 * everysec and the active segment has unsynced bytes, it fdatasyncs it
 * (it runs under every policy, which kvs_set_fsync() may change).  It pins the segment
 * (fd_users, under sync.mu) instead of dup()ing its descriptor, and a
 * failed sync fails the store (kvs__set_failed).  Started and stopped by
 * the writer's start and stop. */
#include "engine_int.h"

#include <errno.h>
#include <time.h>

static void *syncer_main(void *arg)
{
	struct kvs *db = arg;
	struct timespec next;

	kvs__io_role("syncer");

	clock_gettime(CLOCK_MONOTONIC, &next);
	kvs__lock(&db->sync.mu);
	while (!db->sync.stop) {
		unsigned ms = kvs__testhook_sync_interval_ms();
		next.tv_nsec += (long)(ms % 1000) * 1000000L;
		next.tv_sec += ms / 1000 + next.tv_nsec / 1000000000L;
		next.tv_nsec %= 1000000000L;
		int rc;
		do {
			rc = pthread_cond_timedwait(&db->sync.cv, &db->sync.mu,
						    &next);
		} while (rc == 0 && !db->sync.stop);
		if (rc != 0 && rc != ETIMEDOUT)
			KVS_DIE("pthread_cond_timedwait", rc);
		if (db->sync.stop)
			break;
		/* Another policy now (kvs_set_fsync): the bytes stay counted
		 * as unsynced for when everysec comes back. */
		if (kvs__fsync_policy(db) != KVS_FSYNC_EVERYSEC)
			continue;
		if (atomic_exchange(&db->sync.unsynced, 0) == 0)
			continue;
		/* The fdatasync runs outside sync.mu, on the segment pinned by
		 * fd_users rather than on a dup() of its descriptor: a dup
		 * needs a free descriptor, and when clients hold them all
		 * (EMFILE) that is no reason to fail the store.  A rotation
		 * waits for the pin only after sealing the same file, whose
		 * data its own fdatasync has just flushed. */
		int e = kvs__seg_sync_locked(db, db->sync.seg);
		if (e) {
			kvs__unlock(&db->sync.mu);
			kvs__set_failed(db, e, "background fdatasync");
			kvs__lock(&db->sync.mu);
		} else {
			atomic_fetch_add(&db->sync.bg_syncs, 1);
		}
	}
	kvs__unlock(&db->sync.mu);
	return NULL;
}

int kvs__syncer_start(struct kvs *db)
{
	int rc = pthread_create(&db->sync.thread, NULL, syncer_main, db);
	if (rc != 0)
		return kvs__err_errno(KVS_ENOMEM, rc,
				      "cannot start the sync thread");
	db->sync.started = true;
	return KVS_OK;
}

void kvs__syncer_stop(struct kvs *db)
{
	if (!db->sync.started)
		return;
	kvs__lock(&db->sync.mu);
	db->sync.stop = true;
	KVS_CHECK(pthread_cond_signal(&db->sync.cv));
	kvs__unlock(&db->sync.mu);
	KVS_CHECK(pthread_join(db->sync.thread, NULL));
	db->sync.started = false;
}
