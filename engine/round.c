/* round.c - the writer's round buffer (round.h): the pieces of output a
 * round collects, written with one pwritev, and the mark that a refused
 * round goes back to.  Writer thread only. */
#include "round.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool kvs__round_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = kvs__realloc(*p, n * elem);
	if (!q)
		return false;
	*p = q;
	*cap = n;
	return true;
}

int kvs__round_nomem(void)
{
	return kvs__err_errno(KVS_ENOSPC, ENOMEM, "staging a write");
}

int kvs__round_add(struct kvs__writer_buf *wb, const void *p, size_t len,
		   bool copy)
{
	if (len == 0)
		return KVS_OK;
	if (copy) {
		if (!kvs__round_grow((void **)&wb->arena, &wb->arena_cap,
				     wb->arena_len + len, 1))
			return kvs__round_nomem();
		memcpy(wb->arena + wb->arena_len, p, len);
		struct piece *last = wb->npieces ? &wb->pieces[wb->npieces - 1]
						 : NULL;
		if (last && !last->ptr && last->off + last->len == wb->arena_len) {
			last->len += len;
			wb->arena_len += len;
			return KVS_OK;
		}
		if (!kvs__round_grow((void **)&wb->pieces, &wb->pieces_cap,
				     wb->npieces + 1, sizeof *wb->pieces))
			return kvs__round_nomem();
		wb->pieces[wb->npieces++] =
			(struct piece){ NULL, wb->arena_len, len };
		wb->arena_len += len;
		return KVS_OK;
	}
	if (!kvs__round_grow((void **)&wb->pieces, &wb->pieces_cap,
			     wb->npieces + 1, sizeof *wb->pieces))
		return kvs__round_nomem();
	wb->pieces[wb->npieces++] = (struct piece){ p, 0, len };
	return KVS_OK;
}

int kvs__round_flush(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__writer_buf *wb = db->wbuf;
	if (wb->npieces == 0)
		return KVS_OK;
	if (!kvs__round_grow((void **)&wb->iov, &wb->iov_cap, wb->npieces,
			     sizeof *wb->iov))
		return kvs__round_nomem();
	size_t total = 0;
	for (size_t i = 0; i < wb->npieces; i++) {
		const struct piece *pc = &wb->pieces[i];
		wb->iov[i].iov_base =
			(void *)(pc->ptr ? pc->ptr : wb->arena + pc->off);
		wb->iov[i].iov_len = pc->len;
		total += pc->len;
	}
	wb->wrote = true;
	int e = kvs__io_pwritev_all(db->active->fd, wb->iov, (int)wb->npieces,
				    (off_t)wb->base_off);
	if (e)
		return kvs__err_errno(kvs__errno_transient(e) ? KVS_ENOSPC
							      : KVS_EIO,
				      e, "%s: write", db->active->path);
	wb->base_off += total;
	wb->npieces = 0;
	wb->arena_len = 0;
	atomic_fetch_add(&db->sync.unsynced, total);
	return KVS_OK;
}

/* ---- the mark of a round ------------------------------------------------- */

/* Remember where a refused round would go back to: a few stores a round. */
void kvs__round_mark(struct kvs *db)
{
	struct kvs__seg *seg = db->active;
	struct mark *m = &db->wbuf->mark;
	m->seg = seg;
	m->size = seg->size;
	m->records = seg->records;
	m->last_seq = seg->last_seq;
	m->min_seq = seg->min_seq;
	m->chain = seg->chain;
	m->hint_n = seg->hint.n;
	m->next_seq = db->next_seq;
	m->writes = db->counters.writes;
	m->bytes_written = db->counters.bytes_written;
}

void kvs__round_reset(struct kvs *db)
{
	struct kvs__writer_buf *wb = db->wbuf;
	wb->npends = 0;
	wb->npieces = 0;
	wb->arena_len = 0;
	wb->slots_used = 0;
	wb->gen++;
	wb->base_off = db->active->size;
	wb->wrote = wb->split = false;
	wb->guard = wb->atomic = false;
	wb->flush_at = 0;
	kvs__round_mark(db);
}

/* Take back a round that is refused before anything of it was
 * acknowledged: cut its bytes off the active segment and restore what
 * staging advanced.  KVS_OK, or KVS_EIO if it cannot be undone (a rotation
 * sealed part of it, or the truncation failed). */
int kvs__round_undo(struct kvs *db)
{
	KVS__ASSERT_WRITER(db);
	struct kvs__writer_buf *wb = db->wbuf;
	struct mark *m = &wb->mark;
	struct kvs__seg *seg = m->seg;
	if (wb->split || seg != db->active)
		return kvs__err(KVS_EIO, "%s: part of a write bigger than a "
				"segment was sealed before the rest failed",
				seg->path);
	if (wb->wrote) {
		while (kvs__io_ftruncate(seg->fd, (off_t)m->size) != 0) {
			if (errno != EINTR)
				return kvs__err_errno(KVS_EIO, errno,
						      "%s: truncate", seg->path);
		}
	}
	seg->size = m->size;
	seg->records = m->records;
	seg->last_seq = m->last_seq;
	seg->min_seq = m->min_seq;
	seg->chain = m->chain;
	if (seg->hint.n > m->hint_n)
		seg->hint.n = m->hint_n;
	db->next_seq = m->next_seq;
	db->counters.writes = m->writes;
	db->counters.bytes_written = m->bytes_written;
	return KVS_OK;
}

