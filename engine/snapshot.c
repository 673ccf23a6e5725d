/* snapshot.c - kvs_snapshot() for the log engine, on the caller's thread:
 * hand the writer a snapshot request (the point: snap_point.c), then, while
 * the writer serves writes again, copy what could not be linked and the
 * active segment's prefix into the snapshot and make them durable.
 *
 * The contract (kvs.h): a write acknowledged before the call is in the
 * snapshot, since the writer acknowledged it in an earlier round than the
 * one the request ends; the snapshot is the store at one sequence number,
 * since it is taken between rounds, when the segments hold exactly the
 * records below db->next_seq; and every value in it is one that was
 * written, since its files are the store's own bytes. */
#include "snapshot.h"
#include "engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kvs__log_snapshot(struct kvs *db, const char *tmp)
{
	struct kvs__snap s = { .tmp = tmp, .active_fd = -1 };
	char errbuf[512] = "";
	char dst[4096 + 64];
	struct kvs__req req = { .kind = KVS__REQ_SNAPSHOT, .snap = &s,
				.errbuf = errbuf, .errbuf_len = sizeof errbuf };
	int rc;

	KVS__ASSERT_NOT_IN_RCU(); /* it waits for the writer */
	rc = kvs__submit_wait(db, &req);
	if (rc != KVS_OK) {
		kvs__snap_release(&s);
		return kvs__err(rc, "snapshot: %s", errbuf);
	}
	for (size_t i = 0; i < s.ncopies && rc == KVS_OK; i++) {
		snprintf(dst, sizeof dst, "%s/%s", tmp, s.copies[i].name);
		rc = kvs__snap_copy_fd(s.copies[i].fd, s.copies[i].len, dst);
	}
	if (rc == KVS_OK) {
		char *seg = kvs__seg_path(tmp, s.active_id);
		if (!seg)
			rc = kvs__err(KVS_ENOSPC, "snapshot: out of memory");
		else
			rc = kvs__snap_copy_fd(s.active_fd, s.active_len, seg);
		free(seg);
	}
	if (rc == KVS_OK)
		kvs__log(db, KVS_LOG_INFO,
			 "snapshot %s: %llu files linked, %zu copied, the "
			 "active segment's %llu bytes; records below seq %llu",
			 tmp, (unsigned long long)s.linked, s.ncopies,
			 (unsigned long long)s.active_len,
			 (unsigned long long)s.seq);
	kvs__snap_release(&s);
	return rc;
}
