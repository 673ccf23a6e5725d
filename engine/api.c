/* api.c - the public API: argument checks, the data directory (its lock and
 * the marker naming its engine), and dispatch to the engine that owns it
 * (the log engine, kvs.c, or the LMDB engine, lmdb.c). */
#include "engine_int.h"
#include "snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENGINE_FILE KVS__ENGINE_FILE
#define LOCK_FILE "LOCK"

#define VT(db) (((const struct kvs__handle *)(db))->vt)

/* mkdir -p */
static int make_dir(const char *dir)
{
	char path[4096];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof path)
		return kvs__err(KVS_EINVAL, "invalid directory name");
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];
		path[i] = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return kvs__err_errno(KVS_EIO, errno, "%s: mkdir", path);
		path[i] = c;
	}
	struct stat st;
	if (stat(dir, &st) != 0)
		return kvs__err_errno(KVS_EIO, errno, "%s", dir);
	if (!S_ISDIR(st.st_mode))
		return kvs__err(KVS_EINVAL, "%s: not a directory", dir);
	return KVS_OK;
}

static int lock_dir(const char *dir, int *fd_out)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, LOCK_FILE);
	int fd = kvs__io_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return kvs__err_errno(KVS_EIO, errno, "%s: open", path);
	/* flock locks belong to the open file description, so a second
	 * kvs_open of the same directory in this process conflicts too. */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		kvs__io_close(fd);
		if (e == EWOULDBLOCK)
			return kvs__err(KVS_ELOCKED,
					"%s: the store is already open (locked "
					"by another kvs handle or process)",
					dir);
		return kvs__err_errno(KVS_EIO, e, "%s: flock", path);
	}
	*fd_out = fd;
	return KVS_OK;
}

/* Read the marker naming the engine that owns the directory into name
 * ("" when there is none yet). */
static int read_marker(const char *dir, char *name, size_t size)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, ENGINE_FILE);
	name[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return KVS_OK;
		return kvs__err_errno(KVS_EIO, errno, "%s: open", path);
	}
	ssize_t n = read(fd, name, size - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return kvs__err_errno(KVS_EIO, e, "%s: read", path);
	name[n] = '\0';
	name[strcspn(name, "\n")] = '\0';
	return KVS_OK;
}

/* Whether dir holds a store: its ENGINE marker, or (a store whose marker
 * was lost, or written before markers) a log segment or LMDB's data.mdb.
 * KVS_OK with *has set, or an error; a missing dir holds none. */
static int holds_store(const char *dir, bool *has)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*has = false;
	if (!d) {
		if (errno == ENOENT)
			return KVS_OK;
		return kvs__err_errno(errno == ENOTDIR ? KVS_EINVAL : KVS_EIO,
				      errno, "%s", dir);
	}
	while (!*has && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		*has = strcmp(e->d_name, ENGINE_FILE) == 0 ||
		       strcmp(e->d_name, "data.mdb") == 0 ||
		       (n == 14 && strcmp(e->d_name + 10, ".seg") == 0 &&
			strspn(e->d_name, "0123456789") == 10);
	}
	closedir(d);
	return KVS_OK;
}

static const struct kvs__vtable *engine_named(const char *name)
{
	if (strcmp(name, kvs__log_engine.name) == 0)
		return &kvs__log_engine;
	if (strcmp(name, kvs__lmdb_engine.name) == 0)
		return &kvs__lmdb_engine;
	return NULL;
}

static int check_key(const struct kvs *db, const void *key, size_t klen)
{
	size_t max = VT(db)->max_key;
	if (!key || klen == 0)
		return kvs__err(KVS_EINVAL, "the key must not be empty");
	if (klen > max)
		return kvs__err(KVS_ETOOBIG, "key of %zu bytes is over the "
				"%s engine's limit of %zu bytes", klen,
				VT(db)->name, max);
	return KVS_OK;
}

static int check_op(const struct kvs *db, const struct kvs_op *op)
{
	if (op->type == KVS_OP_FLUSH) {
		if (op->key || op->klen)
			return kvs__err(KVS_EINVAL, "a flush takes no key");
		return KVS_OK;
	}
	int rc = check_key(db, op->key, op->klen);
	if (rc)
		return rc;
	if (op->type == KVS_OP_REMOVE || op->type == KVS_OP_INCR)
		return KVS_OK;
	if (op->type == KVS_OP_UPDATE)
		return op->update ? KVS_OK
				  : kvs__err(KVS_EINVAL, "an update without "
					     "its callback");
	if (op->type != KVS_OP_SET)
		return kvs__err(KVS_EINVAL, "unknown operation %d", (int)op->type);
	if (op->flags & ~(KVS_SET_NX | KVS_SET_XX | KVS_SET_KEEPTTL) ||
	    (op->flags & (KVS_SET_NX | KVS_SET_XX)) ==
		    (KVS_SET_NX | KVS_SET_XX))
		return kvs__err(KVS_EINVAL, "invalid set flags %#x", op->flags);
	if ((op->flags & KVS_SET_KEEPTTL) && op->expire_ms)
		return kvs__err(KVS_EINVAL, "KVS_SET_KEEPTTL with an expiry "
				"time");
	if (op->expire_ms < 0)
		return kvs__err(KVS_EINVAL, "negative expiry time");
	if (!op->val && op->vlen)
		return kvs__err(KVS_EINVAL, "NULL value with a nonzero length");
	if (op->vlen > KVS_MAX_VALUE)
		return kvs__err(KVS_ETOOBIG, "value of %zu bytes is over the "
				"limit of %u bytes", op->vlen, KVS_MAX_VALUE);
	return KVS_OK;
}

static int check_batch(const struct kvs *db, const struct kvs_op *ops,
		       size_t n, unsigned flags)
{
	int rc;
	if (flags & ~KVS_BATCH_ATOMIC)
		return kvs__err(KVS_EINVAL, "invalid batch flags %#x", flags);
	for (size_t i = 0; i < n; i++)
		if ((rc = check_op(db, &ops[i])) != KVS_OK)
			return rc;
	return KVS_OK;
}

int kvs_open(const char *dir, const struct kvs_options *opts, struct kvs **out)
{
	struct kvs_options opt = { 0 };
	const struct kvs__vtable *vt = NULL;
	char recorded[64];
	int lock_fd = -1, rc;

	if (!dir || !*dir || !out)
		return kvs__err(KVS_EINVAL, "kvs_open: dir and out are required");
	*out = NULL;
	if (opts)
		opt = *opts;
	if ((unsigned)opt.fsync > KVS_FSYNC_NEVER)
		return kvs__err(KVS_EINVAL, "invalid fsync policy %d",
				(int)opt.fsync);
	if ((unsigned)opt.engine > KVS_ENGINE_LMDB)
		return kvs__err(KVS_EINVAL, "invalid engine %d", (int)opt.engine);
	const struct kvs__vtable *wanted =
		opt.engine == KVS_ENGINE_LMDB ? &kvs__lmdb_engine :
		opt.engine == KVS_ENGINE_KVS ? &kvs__log_engine : NULL;

	if (opt.no_create) {
		bool has;
		if ((rc = holds_store(dir, &has)))
			return rc;
		if (!has)
			return kvs__err(KVS_ENOTFOUND, "%s: no store there", dir);
	}
	if ((rc = make_dir(dir)) || (rc = lock_dir(dir, &lock_fd)) ||
	    (rc = read_marker(dir, recorded, sizeof recorded)))
		goto fail;
	if (recorded[0]) {
		vt = engine_named(recorded);
		if (!vt || (wanted && wanted != vt)) {
			rc = kvs__err(KVS_EENGINE,
				      "%s: the directory holds a '%s' store, "
				      "not a '%s' one",
				      dir, recorded,
				      wanted ? wanted->name : "known");
			goto fail;
		}
	} else {
		vt = wanted ? wanted : &kvs__log_engine;
		char marker[64];
		int n = snprintf(marker, sizeof marker, "%s\n", vt->name);
		rc = kvs__io_write_file_durably(dir, ENGINE_FILE, marker,
						(size_t)n);
		if (rc)
			goto fail;
	}
	if ((rc = vt->open(dir, &opt, out)) != KVS_OK)
		goto fail;
	((struct kvs__handle *)*out)->vt = vt;
	((struct kvs__handle *)*out)->lock_fd = lock_fd;
	atomic_store(&((struct kvs__handle *)*out)->fsync, (int)opt.fsync);
	return KVS_OK;
fail:
	if (lock_fd >= 0)
		kvs__io_close(lock_fd);
	return rc;
}

int kvs_close(struct kvs *db)
{
	if (!db)
		return kvs__err(KVS_EINVAL, "kvs_close: NULL handle");
	/* The lock goes last, once the engine has made everything durable. */
	int lock_fd = ((struct kvs__handle *)db)->lock_fd;
	int rc = VT(db)->close(db);
	if (lock_fd >= 0)
		kvs__io_close(lock_fd);
	return rc;
}

int kvs_check_key(const struct kvs *db, const void *key, size_t klen)
{
	if (!db)
		return kvs__err(KVS_EINVAL, "kvs_check_key: NULL handle");
	return check_key(db, key, klen);
}

const char *kvs_engine_name(const struct kvs *db)
{
	return db ? VT(db)->name : "";
}

size_t kvs_max_key(const struct kvs *db)
{
	return db ? VT(db)->max_key : 0;
}

int kvs_get(struct kvs *db, const void *key, size_t klen, void **val,
	    size_t *vlen)
{
	int rc;
	if (!db || !val || !vlen)
		return kvs__err(KVS_EINVAL, "kvs_get: NULL argument");
	if ((rc = check_key(db, key, klen)) != KVS_OK)
		return rc;
	return VT(db)->get(db, key, klen, val, vlen);
}

int kvs_write_batch_flags(struct kvs *db, struct kvs_op *ops, size_t n,
			  unsigned flags)
{
	int rc;
	if (!db || (!ops && n))
		return kvs__err(KVS_EINVAL, "kvs_write_batch: NULL argument");
	if ((rc = check_batch(db, ops, n, flags)) != KVS_OK)
		return rc;
	if (n == 0)
		return KVS_OK;
	return VT(db)->write(db, ops, n, flags);
}

int kvs_write_batch(struct kvs *db, struct kvs_op *ops, size_t n)
{
	return kvs_write_batch_flags(db, ops, n, 0);
}

int kvs_set(struct kvs *db, const void *key, size_t klen, const void *val,
	    size_t vlen)
{
	struct kvs_op op = { .type = KVS_OP_SET, .key = key, .klen = klen,
			     .val = val, .vlen = vlen };
	if (!db)
		return kvs__err(KVS_EINVAL, "kvs_set: NULL handle");
	return kvs_write_batch(db, &op, 1);
}

int kvs_remove(struct kvs *db, const void *key, size_t klen)
{
	struct kvs_op op = { .type = KVS_OP_REMOVE, .key = key, .klen = klen };
	if (!db)
		return kvs__err(KVS_EINVAL, "kvs_remove: NULL handle");
	int rc = kvs_write_batch(db, &op, 1);
	return rc != KVS_OK ? rc : op.result;
}

int kvs_submit_flags(struct kvs *db, struct kvs_op *ops, size_t n,
		     unsigned flags, void (*done)(void *ctx, int result),
		     void *ctx)
{
	int rc;
	if (!db || (!ops && n) || !done)
		return kvs__err(KVS_EINVAL, "kvs_submit: NULL argument");
	if ((rc = check_batch(db, ops, n, flags)) != KVS_OK)
		return rc;
	return VT(db)->submit(db, ops, n, flags, done, ctx);
}

int kvs_submit(struct kvs *db, struct kvs_op *ops, size_t n,
	       void (*done)(void *ctx, int result), void *ctx)
{
	return kvs_submit_flags(db, ops, n, 0, done, ctx);
}

void kvs_submit_all(struct kvs *db, const struct kvs_submission *subs,
		    size_t n)
{
	size_t bad = 0;
	if (!subs)
		return; /* nobody to tell */
	if (!db) {
		for (size_t i = 0; i < n; i++)
			if (subs[i].done)
				subs[i].done(subs[i].ctx,
					     kvs__err(KVS_EINVAL,
						      "kvs_submit_all: NULL "
						      "handle"));
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!subs[i].done || (!subs[i].ops && subs[i].n) ||
		    check_batch(db, subs[i].ops, subs[i].n, subs[i].flags))
			bad++;
	if (bad == 0) {
		VT(db)->submit_all(db, subs, n);
		return;
	}
	/* Some refused (rare): answer those, hand over the rest in order. */
	struct kvs_submission *ok = malloc((n - bad) * sizeof *ok + 1);
	size_t nok = 0;
	for (size_t i = 0; i < n; i++) {
		const struct kvs_submission *x = &subs[i];
		int rc = KVS_EINVAL;
		if (!x->done)
			continue; /* nobody to tell */
		if ((x->ops || !x->n) &&
		    (rc = check_batch(db, x->ops, x->n, x->flags)) == KVS_OK) {
			if (ok) {
				ok[nok++] = *x;
				continue;
			}
			rc = VT(db)->submit(db, x->ops, x->n, x->flags,
					    x->done, x->ctx);
			if (rc == KVS_OK)
				continue;
		} else if (rc == KVS_EINVAL && !x->ops) {
			kvs__err(KVS_EINVAL, "kvs_submit_all: NULL ops");
		}
		x->done(x->ctx, rc);
	}
	if (ok) {
		VT(db)->submit_all(db, ok, nok);
		free(ok);
	}
}

int kvs_lookup(struct kvs *db, const void *key, size_t klen, void **val,
	       size_t *vlen, int64_t *expire_ms)
{
	int rc;
	if (!db)
		return kvs__err(KVS_EINVAL, "kvs_lookup: NULL handle");
	if ((rc = check_key(db, key, klen)) != KVS_OK)
		return rc;
	return VT(db)->lookup(db, key, klen, val, vlen, expire_ms);
}

uint64_t kvs_read_begin(struct kvs *db)
{
	return db ? VT(db)->read_gen(db) : 0;
}

bool kvs_read_retry(struct kvs *db, uint64_t token)
{
	return db && VT(db)->read_gen(db) != token;
}

uint64_t kvs_key_version(struct kvs *db, const void *key, size_t klen)
{
	if (!db || !key)
		return 0;
	return VT(db)->key_version(db, key, klen);
}

int kvs_stats(struct kvs *db, struct kvs_store_stats *st)
{
	if (!db || !st)
		return kvs__err(KVS_EINVAL, "kvs_stats: NULL argument");
	return VT(db)->stats(db, st);
}

int kvs_compact(struct kvs *db)
{
	if (!db)
		return kvs__err(KVS_EINVAL, "kvs_compact: NULL handle");
	return VT(db)->compact(db);
}

int kvs_scan(struct kvs *db, uint64_t cursor, size_t count,
	     int (*cb)(void *ctx, const void *key, size_t klen), void *ctx,
	     uint64_t *next_cursor)
{
	if (!db || !cb || !next_cursor)
		return kvs__err(KVS_EINVAL, "kvs_scan: NULL argument");
	return VT(db)->scan(db, cursor, count ? count : 10, cb, ctx,
			    next_cursor);
}

int kvs_stats_cached(struct kvs *db, struct kvs_store_stats *st)
{
	if (!db || !st)
		return kvs__err(KVS_EINVAL, "kvs_stats_cached: NULL argument");
	return VT(db)->stats_cached(db, st);
}

int kvs_set_fsync(struct kvs *db, enum kvs_fsync policy)
{
	if (!db)
		return kvs__err(KVS_EINVAL, "no store");
	if ((unsigned)policy > KVS_FSYNC_NEVER)
		return kvs__err(KVS_EINVAL, "invalid fsync policy %d",
				(int)policy);
	atomic_store(&((struct kvs__handle *)db)->fsync, (int)policy);
	return KVS_OK;
}

enum kvs_fsync kvs_fsync_policy(struct kvs *db)
{
	return kvs__fsync_policy(db);
}

int kvs_snapshot(struct kvs *db, const char *path)
{
	struct kvs__snapdir sd;
	int rc;
	if (!db || !path)
		return kvs__err(KVS_EINVAL, "kvs_snapshot: NULL argument");
	if ((rc = kvs__snapdir_begin(&sd, path)) != KVS_OK)
		return rc;
	if ((rc = VT(db)->snapshot(db, sd.tmp)) != KVS_OK ||
	    (rc = kvs__snapdir_commit(&sd, VT(db)->name)) != KVS_OK)
		kvs__snapdir_abort(&sd);
	return rc;
}
