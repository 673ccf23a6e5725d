/* health.c - the two states a store can fall into, and their reports:
 * failed (a sync failed or a write left the log ambiguous: writes are
 * refused for good) and damaged (a read found corruption or an unreadable
 * page: the store serves on, but kvs-dump --verify should look at it).
 * Any thread; both states are set once and never cleared.  Above util.c,
 * below everything that can fail (segments, compaction, the writer, the
 * read path). */
#include "engine_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

void kvs__set_failed(struct kvs *db, int errnum, const char *what)
{
	char msg[PATH_MAX + 256]; /* what is often a path */
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(errnum));
	kvs__set_failed_msg(db, errnum, msg);
}

void kvs__note_damage(struct kvs *db, struct kvs__seg *seg, int err)
{
	int expected = 0;
	atomic_compare_exchange_strong(&db->health.damaged, &expected, err);
	if (!atomic_exchange(&seg->damage_logged, true))
		kvs__log(db, KVS_LOG_ERROR,
			 "%s; the store is marked damaged (run kvs-dump "
			 "--verify %s)", kvs_errmsg(), db->dir);
}

/* Mark the handle failed with a whole message (errno included). */
void kvs__set_failed_msg(struct kvs *db, int errnum, const char *msg)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&db->health.failed, &expected,
					   errnum ? errnum : EIO))
		kvs__log(db, KVS_LOG_ERROR,
			 "%s; the store refuses writes from now on", msg);
}

/* A failure the handle cannot get over, described by kvs_errmsg(): fail
 * the handle (once) and say KVS_EIO. */
int kvs__fail_hard(struct kvs *db)
{
	kvs__set_failed_msg(db, kvs__errno(), kvs_errmsg());
	return KVS_EIO;
}
