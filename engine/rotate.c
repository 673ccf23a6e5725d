/* rotate.c - sealing the active segment and starting the next one (the
 * order of the steps is below), and the segment numbers left spare for
 * compaction outputs.  Writer thread only. */
#include "bgio.h"
#include "round.h"

#include <errno.h>
#include <stdio.h>

#define SPARE_IDS 8

/*
 * Seal the active segment and continue in a new one.  The order makes every
 * step before the last undoable, and every crash point recoverable:
 *   1. create the next segment as NNNNNNNNNN.seg.tmp: running out of
 *      descriptors or space here leaves the active segment untouched;
 *   2. write the records staged so far (only a request bigger than a
 *      segment has any), then the footer, and fdatasync;
 *   3. rename the new file into place and fsync the directory;
 *   4. publish the seal (mapping, hint), switch to the new segment, close
 *      the old segment's descriptor.
 * A crash before 3 leaves the sealed or unsealed old segment newest (the
 * open cuts a torn footer, or starts a new segment after a sealed one) and
 * a *.tmp file the open removes; never an older segment without a footer.
 * Returns KVS_OK; KVS_ENOSPC: refused for a shortage (kvs__errno() says
 * which), the active segment as it was but for records staged this round
 * (the caller's undo cuts them off); KVS_EIO: the handle failed.
 */
int kvs__rotate(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	KVS__ASSERT_NOT_IN_RCU();
	struct kvs__seg *old = db->active, *seg = NULL;
	const unsigned char *map = NULL;
	uint64_t footer_off = 0;
	int rc;

	/* Leave SPARE_IDS ids free below the new segment's: compaction
	 * outputs take them, so that they are older than the active segment
	 * (only the newest segment may lack a footer) without another
	 * rotation. */
	uint32_t id = db->next_seg_id;
	if (id == KVS__SEG_ID_MAX) {
		kvs__set_failed(db, ENOSPC, "no segment number left");
		return kvs__err(KVS_EIO, "no segment number left");
	}
	bool spare = id < KVS__SEG_ID_MAX - SPARE_IDS;
	if (spare)
		id += SPARE_IDS;

	if ((rc = kvs__seg_create(db->dir, id, true, &seg)) != KVS_OK) {
		if (rc == KVS_ENOMEM)
			return kvs__round_nomem();
		if (kvs__errno_transient(kvs__errno()))
			return KVS_ENOSPC; /* nothing was left behind */
		return kvs__fail_hard(db);
	}
	if ((rc = kvs__round_flush(db)) != KVS_OK ||
	    (rc = kvs__seg_seal(old, &footer_off, &map)) != KVS_OK) {
		kvs__seg_discard_tmp(seg);
		return rc == KVS_ENOSPC ? rc : kvs__fail_hard(db);
	}
	db->counters.syncs++;
	if ((rc = kvs__seg_publish_tmp(db->dir, seg, true)) != KVS_OK) {
		if (rc != KVS_ENOSPC)
			return kvs__fail_hard(db); /* the dir fsync */
		/* Not renamed: the old segment takes records again. */
		char msg[512];
		snprintf(msg, sizeof msg, "%s", kvs_errmsg());
		int e = kvs__errno();
		kvs__seg_discard_tmp(seg);
		if (kvs__seg_unseal(old, footer_off, map) != KVS_OK)
			return kvs__fail_hard(db);
		return kvs__err_errno(KVS_ENOSPC, e, "%s", msg);
	}

	/* Nothing fails from here on. */
	kvs__seg_publish(old, map);
	/* Its hint takes tens of milliseconds for a big segment of small
	 * records: written in the background. */
	kvs__bgio_hint(db->bg, old, footer_off);
	db->spare_id = db->next_seg_id;
	db->spare_end = id;
	db->next_seg_id = id + 1;
	kvs__seg_window(seg, db->opt.segment_size);
	old->next = seg;
	db->active = seg;
	db->wbuf->base_off = seg->size;
	kvs__lock(&db->sync.mu);
	db->sync.seg = seg;
	kvs__unlock(&db->sync.mu);
	kvs__seg_close_fd(db, old);
	return KVS_OK;
}

