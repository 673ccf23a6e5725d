/* health.c - the two states a store can fall into, and their reports:
 * failed (a sync failed or a write left the log ambiguous: writes are
 * refused for good) and damaged (a read found corruption or an unreadable
 * page: the store serves on, but kvs-dump --verify should look at it).
 * Any thread; both states are set once and never cleared.  Above util.c,
 * below everything that can fail (segments, compaction, the writer, the
 * read path). */
#include "engine_int.h"

#include <string.h>

void kvs__set_failed(struct kvs *db, int errnum, const char *what)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&db->failed, &expected, errnum))
		kvs__log(db, KVS_LOG_ERROR,
			 "%s: %s; the store refuses writes from now on", what,
			 strerror(errnum));
}

void kvs__note_damage(struct kvs *db, struct kvs__seg *seg, int err)
{
	int expected = 0;
	atomic_compare_exchange_strong(&db->damaged, &expected, err);
	if (!atomic_exchange(&seg->damage_logged, true))
		kvs__log(db, KVS_LOG_ERROR,
			 "%s; the store is marked damaged (run kvs-dump "
			 "--verify %s)", kvs_errmsg(), db->dir);
}
