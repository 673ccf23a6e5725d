/* assert_child.c - breaks, on purpose, one thread-context rule that
 * engine_int.h states, so that tests/assert_test.cc can check that the
 * assertion catches it (the process must abort and name the rule).
 *
 *   assert-child DIR MODE
 *     ok          follow every rule: exit 0 (the control)
 *     nested      open and close a second store on a thread marked as the
 *                 first one's writer (as a callback on its writer may):
 *                 the mark must survive, exit 0
 *     writer      rotate the store's segment from a client thread
 *     rcu         look a key up outside a read-side section
 *     in-rcu      grow the index inside a read-side section
 *     held        sync a segment without holding sync_mu
 *     relock      take a mutex this thread already holds
 */
#include "engine_int.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: assert-child DIR MODE\n");
		return 2;
	}
	const char *mode = argv[2];
	struct kvs_options o = { .fsync = KVS_FSYNC_NEVER };
	struct kvs *db = NULL;
	if (kvs_open(argv[1], &o, &db) != KVS_OK) {
		fprintf(stderr, "open: %s\n", kvs_errmsg());
		return 2;
	}
	uint64_t h = kvs__index_hash(db->index, "k", 1);
	if (strcmp(mode, "ok") == 0) {
		kvs__read_lock();
		(void)kvs__index_lookup(db->index, h, "k", 1);
		kvs__read_unlock();
		kvs__lock(&db->sync.mu);
		KVS__ASSERT_HELD(&db->sync.mu);
		kvs__unlock(&db->sync.mu);
		KVS__ASSERT_NOT_HELD(&db->sync.mu);
	} else if (strcmp(mode, "nested") == 0) {
		char dir2[4096];
		struct kvs *db2 = NULL;
		snprintf(dir2, sizeof dir2, "%s.2", argv[1]);
		const struct kvs *prev = kvs__become_writer(db);
		if (kvs_open(dir2, &o, &db2) != KVS_OK || kvs_close(db2) != KVS_OK)
			return 2;
		KVS__ASSERT_WRITER(db);
		kvs__become_writer(prev);
	} else if (strcmp(mode, "writer") == 0) {
		(void)kvs__rotate(db);
	} else if (strcmp(mode, "rcu") == 0) {
		(void)kvs__index_lookup(db->index, h, "k", 1);
	} else if (strcmp(mode, "in-rcu") == 0) {
		kvs__read_lock();
		kvs__index_grow(db->index, 1u << 20);
		kvs__read_unlock();
	} else if (strcmp(mode, "held") == 0) {
		(void)kvs__seg_sync_locked(db, db->active);
	} else if (strcmp(mode, "relock") == 0) {
		kvs__lock(&db->pub.mu);
		kvs__lock(&db->pub.mu);
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	return kvs_close(db) == KVS_OK ? 0 : 1;
}
