/* iosim.c - the power-loss simulation (kvs_iosim.h): the recorder io.c
 * feeds, and the replay that builds the directory a power cut at a given
 * operation leaves.
 *
 * The model is POSIX's promise, no more: a file's bytes are durable once an
 * fdatasync of it returned; a name (created, renamed or removed) once an
 * fsync of its directory returned.  Anything else may or may not have
 * reached the disk, in any order, and a file's unsynced bytes may reach it
 * in part: the variants choose among those outcomes.
 *
 * Test-only code: an allocation failure aborts. */
#include "iosim.h"
#include "kvs_iosim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>

#include "io.h"

struct sim_op {
	enum kvs_sim_kind kind;
	const char *role;
	uint32_t ino;
	char *name, *to; /* CREATE/OPEN/UNLINK: name; RENAME: name -> to */
	uint64_t off, len; /* WRITE: where and how much; TRUNCATE: the size */
	unsigned char *data;
};

struct ent {
	char *name;
	uint32_t ino;
};

/* The recorder.  Everything but `on` is guarded by mu. */
static struct {
	pthread_mutex_t mu;
	atomic_bool on;
	char dir[PATH_MAX]; /* realpath of the watched directory */
	struct sim_op *ops;
	size_t n, cap;
	uint32_t *fd_ino; /* fd -> ino + 1 (0: not a watched file) */
	size_t fd_cap;
	struct ent *ns; /* the names as the recorded calls left them */
	size_t nns;
	uint32_t next_ino;
	uint64_t gen;       /* bumped by every start and reset */
	char lost[PATH_MAX + 64]; /* kvs__sim_lost() */
} R = { .mu = PTHREAD_MUTEX_INITIALIZER };

static _Thread_local const char *role;

const char *kvs__io_role(const char *r)
{
	const char *prev = role;
	role = r;
	return prev;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		abort();
	return q;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

/* ---- names ------------------------------------------------------------ */

static struct ent *ns_find(struct ent *ns, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ns[i].name, name) == 0)
			return &ns[i];
	return NULL;
}

static void ns_set(struct ent **ns, size_t *n, const char *name, uint32_t ino)
{
	struct ent *e = ns_find(*ns, *n, name);
	if (e) {
		e->ino = ino;
		return;
	}
	*ns = xrealloc(*ns, (*n + 1) * sizeof **ns);
	(*ns)[*n].name = xstrdup(name);
	(*ns)[(*n)++].ino = ino;
}

static void ns_del(struct ent *ns, size_t *n, const char *name)
{
	struct ent *e = ns_find(ns, *n, name);
	if (!e)
		return;
	free(e->name);
	*e = ns[--*n];
}

static void ns_free(struct ent *ns, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ns[i].name);
	free(ns);
}

/* The name of path inside the watched directory, or NULL if it is not
 * directly inside it.  buf holds the result. */
static const char *watched(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX], real[PATH_MAX];
	if (!slash || (size_t)(slash - path) >= sizeof dir)
		return NULL;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (!realpath(slash == path ? "/" : dir, real) ||
	    strcmp(real, R.dir) != 0 || strlen(slash + 1) >= size)
		return NULL;
	strcpy(buf, slash + 1);
	return buf;
}

/* ---- the recorder ------------------------------------------------------ */

bool kvs__sim_begin(void)
{
	if (!atomic_load_explicit(&R.on, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&R.mu);
	if (!atomic_load(&R.on)) {
		pthread_mutex_unlock(&R.mu);
		return false;
	}
	return true;
}

void kvs__sim_end(void)
{
	pthread_mutex_unlock(&R.mu);
}

static struct sim_op *append(enum kvs_sim_kind kind, uint32_t ino)
{
	if (R.n == R.cap) {
		R.cap = R.cap ? R.cap * 2 : 1024;
		R.ops = xrealloc(R.ops, R.cap * sizeof *R.ops);
	}
	struct sim_op *op = &R.ops[R.n++];
	memset(op, 0, sizeof *op);
	op->kind = kind;
	op->ino = ino;
	op->role = role ? role : "caller";
	return op;
}

static void lose(const char *what, const char *name)
{
	if (!R.lost[0])
		snprintf(R.lost, sizeof R.lost, "%s %s", what, name);
}

/* ino + 1 of a watched descriptor, or 0.  A descriptor of a file in the
 * watched directory that was not opened through io.c is noted as lost
 * (what: the operation). */
static uint32_t fd_ino_of(int fd, const char *what)
{
	uint32_t i = fd >= 0 && (size_t)fd < R.fd_cap ? R.fd_ino[fd] : 0;
	if (!i && fd >= 0 && what) {
		char link[64], path[PATH_MAX], buf[NAME_MAX + 1];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, path, sizeof path - 1);
		if (n > 0) {
			path[n] = '\0';
			if (watched(path, buf, sizeof buf))
				lose(what, buf);
		}
	}
	return i;
}

static uint32_t fd_ino(int fd)
{
	return fd_ino_of(fd, NULL);
}

void kvs__sim_note_open(int fd, const char *path, int flags)
{
	char buf[NAME_MAX + 1];
	const char *name = watched(path, buf, sizeof buf);
	if (!name || fd < 0)
		return;
	struct ent *e = ns_find(R.ns, R.nns, name);
	uint32_t ino;
	if (e) {
		ino = e->ino;
		append(KVS_SIM_OPEN, ino)->name = xstrdup(name);
		if (flags & O_TRUNC)
			append(KVS_SIM_TRUNCATE, ino)->len = 0;
	} else {
		ino = R.next_ino++;
		ns_set(&R.ns, &R.nns, name, ino);
		append(KVS_SIM_CREATE, ino)->name = xstrdup(name);
	}
	if ((size_t)fd >= R.fd_cap) {
		size_t cap = (size_t)fd * 2 + 16;
		R.fd_ino = xrealloc(R.fd_ino, cap * sizeof *R.fd_ino);
		memset(R.fd_ino + R.fd_cap, 0,
		       (cap - R.fd_cap) * sizeof *R.fd_ino);
		R.fd_cap = cap;
	}
	R.fd_ino[fd] = ino + 1;
}

void kvs__sim_note_close(int fd)
{
	uint32_t i = fd_ino(fd);
	if (!i)
		return;
	append(KVS_SIM_CLOSE, i - 1);
	R.fd_ino[fd] = 0;
}

void kvs__sim_note_write(int fd, const struct iovec *iov, int iovcnt,
			 off_t off, size_t done)
{
	uint32_t i = fd_ino_of(fd, "write to");
	if (!i || done == 0)
		return;
	struct sim_op *op = append(KVS_SIM_WRITE, i - 1);
	op->off = (uint64_t)off;
	op->len = done;
	op->data = xrealloc(NULL, done);
	size_t at = 0;
	for (int k = 0; k < iovcnt && at < done; k++) {
		size_t n = iov[k].iov_len < done - at ? iov[k].iov_len
						      : done - at;
		memcpy(op->data + at, iov[k].iov_base, n);
		at += n;
	}
}

void kvs__sim_note_sync(int fd)
{
	uint32_t i = fd_ino_of(fd, "fdatasync of");
	if (i)
		append(KVS_SIM_SYNC, i - 1);
}

void kvs__sim_note_sync_dir(const char *dir)
{
	char real[PATH_MAX];
	if (realpath(dir, real) && strcmp(real, R.dir) == 0)
		append(KVS_SIM_SYNC_DIR, 0);
}

void kvs__sim_note_rename(const char *from, const char *to)
{
	char b1[NAME_MAX + 1], b2[NAME_MAX + 1];
	const char *f = watched(from, b1, sizeof b1);
	const char *t = watched(to, b2, sizeof b2);
	struct ent *e = f ? ns_find(R.ns, R.nns, f) : NULL;
	if (f && !e)
		lose("rename of", f);
	if (!e || !t)
		return;
	uint32_t ino = e->ino;
	struct sim_op *op = append(KVS_SIM_RENAME, ino);
	op->name = xstrdup(f);
	op->to = xstrdup(t);
	ns_del(R.ns, &R.nns, f);
	ns_set(&R.ns, &R.nns, t, ino);
}

void kvs__sim_note_unlink(const char *path)
{
	char buf[NAME_MAX + 1];
	const char *name = watched(path, buf, sizeof buf);
	struct ent *e = name ? ns_find(R.ns, R.nns, name) : NULL;
	if (name && !e)
		lose("unlink of", name);
	if (!e)
		return;
	append(KVS_SIM_UNLINK, e->ino)->name = xstrdup(name);
	ns_del(R.ns, &R.nns, name);
}

void kvs__sim_note_link(const char *to)
{
	/* The replay has no operation for a second name of a file: a link
	 * into the store's directory would leave the model without it. */
	char buf[NAME_MAX + 1];
	const char *name = watched(to, buf, sizeof buf);
	if (name)
		lose("link to", name);
}

void kvs__sim_note_truncate(int fd, off_t len)
{
	uint32_t i = fd_ino_of(fd, "ftruncate of");
	if (i)
		append(KVS_SIM_TRUNCATE, i - 1)->len = (uint64_t)len;
}

void kvs__sim_note_mmap(int fd)
{
	uint32_t i = fd_ino(fd);
	if (i)
		append(KVS_SIM_MMAP, i - 1);
}

static void forget_locked(void)
{
	for (size_t i = 0; i < R.n; i++) {
		free(R.ops[i].name);
		free(R.ops[i].to);
		free(R.ops[i].data);
	}
	free(R.ops);
	R.ops = NULL;
	R.n = R.cap = 0;
	free(R.fd_ino);
	R.fd_ino = NULL;
	R.fd_cap = 0;
	ns_free(R.ns, R.nns);
	R.ns = NULL;
	R.nns = 0;
	R.next_ino = 0;
	R.gen++;
	R.lost[0] = '\0';
}

int kvs__sim_start(const char *dir)
{
	char real[PATH_MAX];
	if (!realpath(dir, real))
		return errno;
	DIR *d = opendir(real);
	if (!d)
		return errno;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			rc = ENOTEMPTY;
	closedir(d);
	if (rc)
		return rc;
	pthread_mutex_lock(&R.mu);
	forget_locked();
	strcpy(R.dir, real);
	atomic_store(&R.on, true);
	pthread_mutex_unlock(&R.mu);
	return 0;
}

void kvs__sim_stop(void)
{
	pthread_mutex_lock(&R.mu);
	atomic_store(&R.on, false);
	pthread_mutex_unlock(&R.mu);
}

void kvs__sim_reset(void)
{
	pthread_mutex_lock(&R.mu);
	atomic_store(&R.on, false);
	forget_locked();
	pthread_mutex_unlock(&R.mu);
}

const char *kvs__sim_lost(void)
{
	pthread_mutex_lock(&R.mu);
	const char *l = R.lost[0] ? R.lost : NULL;
	pthread_mutex_unlock(&R.mu);
	return l;
}

uint64_t kvs__sim_ops(void)
{
	pthread_mutex_lock(&R.mu);
	uint64_t n = R.n;
	pthread_mutex_unlock(&R.mu);
	return n;
}

static const char *const kind_names[] = {
	[KVS_SIM_CREATE] = "create",	[KVS_SIM_OPEN] = "open",
	[KVS_SIM_CLOSE] = "close",	[KVS_SIM_WRITE] = "write",
	[KVS_SIM_SYNC] = "fdatasync",	[KVS_SIM_SYNC_DIR] = "fsync-dir",
	[KVS_SIM_RENAME] = "rename",	[KVS_SIM_UNLINK] = "unlink",
	[KVS_SIM_TRUNCATE] = "truncate", [KVS_SIM_MMAP] = "mmap",
};

int kvs__sim_op(uint64_t i, enum kvs_sim_kind *kind, const char **r)
{
	pthread_mutex_lock(&R.mu);
	int rc = -1;
	if (i < R.n) {
		*kind = R.ops[i].kind;
		*r = R.ops[i].role;
		rc = 0;
	}
	pthread_mutex_unlock(&R.mu);
	return rc;
}

/* The name an inode was last given by operations before index `end`. */
static const char *ino_name(uint32_t ino, size_t end)
{
	const char *name = "?";
	for (size_t i = 0; i < end; i++) {
		if (R.ops[i].ino != ino)
			continue;
		if (R.ops[i].to)
			name = R.ops[i].to;
		else if (R.ops[i].name)
			name = R.ops[i].name;
	}
	return name;
}

const char *kvs__sim_describe(uint64_t i, char *buf, size_t size)
{
	pthread_mutex_lock(&R.mu);
	if (i >= R.n) {
		snprintf(buf, size, "#%llu (after the last operation)",
			 (unsigned long long)i);
	} else {
		const struct sim_op *op = &R.ops[i];
		const char *name = op->kind == KVS_SIM_SYNC_DIR
					   ? "(directory)"
					   : ino_name(op->ino, (size_t)i + 1);
		int n = snprintf(buf, size, "#%llu %s %s %s",
				 (unsigned long long)i, op->role,
				 kind_names[op->kind],
				 op->kind == KVS_SIM_RENAME ? op->name : name);
		if (n >= 0 && (size_t)n < size) {
			if (op->kind == KVS_SIM_RENAME)
				snprintf(buf + n, size - (size_t)n, " -> %s",
					 op->to);
			else if (op->kind == KVS_SIM_WRITE)
				snprintf(buf + n, size - (size_t)n,
					 " [%llu, +%llu)",
					 (unsigned long long)op->off,
					 (unsigned long long)op->len);
			else if (op->kind == KVS_SIM_TRUNCATE)
				snprintf(buf + n, size - (size_t)n, " to %llu",
					 (unsigned long long)op->len);
		}
	}
	pthread_mutex_unlock(&R.mu);
	return buf;
}

/* ---- the replay -------------------------------------------------------- */

struct mfile {
	unsigned char *cur, *dur; /* as written; as last made durable */
	size_t cur_len, cur_cap, dur_len;
	uint64_t dirty_lo; /* lowest byte changed since the last fdatasync */
	bool dirty;
};

struct kvs_sim_crash {
	uint64_t gen; /* of the log it replays */
	size_t pos;   /* operations applied */
	struct mfile *f;
	size_t nf;
	struct ent *cur_ns, *dur_ns; /* names as called; as last synced */
	size_t ncur, ndur;
	size_t *pending; /* directory operations since the last fsync of it */
	size_t npend;
};

struct kvs_sim_crash *kvs__sim_crash_new(void)
{
	struct kvs_sim_crash *c = calloc(1, sizeof *c);
	if (!c)
		abort();
	pthread_mutex_lock(&R.mu);
	c->gen = R.gen;
	pthread_mutex_unlock(&R.mu);
	return c;
}

void kvs__sim_crash_free(struct kvs_sim_crash *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nf; i++) {
		free(c->f[i].cur);
		free(c->f[i].dur);
	}
	free(c->f);
	ns_free(c->cur_ns, c->ncur);
	ns_free(c->dur_ns, c->ndur);
	free(c->pending);
	free(c);
}

static struct mfile *mfile(struct kvs_sim_crash *c, uint32_t ino)
{
	if (ino >= c->nf) {
		c->f = xrealloc(c->f, (ino + 1) * sizeof *c->f);
		memset(c->f + c->nf, 0, (ino + 1 - c->nf) * sizeof *c->f);
		c->nf = ino + 1;
	}
	return &c->f[ino];
}

/* Set f's current size to len, zero-filling growth. */
static void resize(struct mfile *f, size_t len)
{
	if (len > f->cur_cap) {
		f->cur_cap = len * 2;
		f->cur = xrealloc(f->cur, f->cur_cap);
	}
	if (len > f->cur_len)
		memset(f->cur + f->cur_len, 0, len - f->cur_len);
	f->cur_len = len;
}

static void touch(struct mfile *f, uint64_t lo)
{
	if (!f->dirty || lo < f->dirty_lo)
		f->dirty_lo = lo;
	f->dirty = true;
}

static void apply(struct kvs_sim_crash *c, size_t idx)
{
	const struct sim_op *op = &R.ops[idx];
	struct mfile *f = mfile(c, op->ino);
	switch (op->kind) {
	case KVS_SIM_CREATE:
		ns_set(&c->cur_ns, &c->ncur, op->name, op->ino);
		break;
	case KVS_SIM_RENAME:
		ns_del(c->cur_ns, &c->ncur, op->name);
		ns_set(&c->cur_ns, &c->ncur, op->to, op->ino);
		break;
	case KVS_SIM_UNLINK:
		ns_del(c->cur_ns, &c->ncur, op->name);
		break;
	case KVS_SIM_WRITE:
		if (op->off + op->len > f->cur_len)
			resize(f, op->off + op->len);
		memcpy(f->cur + op->off, op->data, op->len);
		touch(f, op->off);
		return;
	case KVS_SIM_TRUNCATE: {
		/* Growth changes the bytes from the old end on. */
		uint64_t from = op->len < f->cur_len ? op->len : f->cur_len;
		resize(f, op->len);
		touch(f, from);
		return;
	}
	case KVS_SIM_SYNC:
		f->dur = xrealloc(f->dur, f->cur_len);
		memcpy(f->dur, f->cur, f->cur_len);
		f->dur_len = f->cur_len;
		f->dirty = false;
		return;
	case KVS_SIM_SYNC_DIR:
		ns_free(c->dur_ns, c->ndur);
		c->dur_ns = xrealloc(NULL, c->ncur * sizeof *c->dur_ns);
		for (size_t i = 0; i < c->ncur; i++) {
			c->dur_ns[i].name = xstrdup(c->cur_ns[i].name);
			c->dur_ns[i].ino = c->cur_ns[i].ino;
		}
		c->ndur = c->ncur;
		c->npend = 0;
		return;
	default:
		return;
	}
	/* A directory operation: pending until the directory is synced. */
	c->pending = xrealloc(c->pending, (c->npend + 1) * sizeof *c->pending);
	c->pending[c->npend++] = idx;
}

/* splitmix64: the variants' choices, reproducible from the seed. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

struct out {
	char *p;
	size_t size, len;
};

static void say(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(struct out *o, const char *fmt, ...)
{
	if (!o->p || o->len + 1 >= o->size)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->p + o->len, o->size - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len = o->len + (size_t)n < o->size ? o->len + (size_t)n
						      : o->size - 1;
}

/* The names a power cut leaves: the synced ones, then each pending
 * directory operation that the variant keeps, in order. */
static void crash_names(struct kvs_sim_crash *c, enum kvs_sim_variant v,
			uint64_t *rng, struct ent **ns, size_t *n,
			struct out *o, unsigned *kept_unlinks)
{
	*ns = NULL;
	*n = 0;
	for (size_t i = 0; i < c->ndur; i++)
		ns_set(ns, n, c->dur_ns[i].name, c->dur_ns[i].ino);
	for (size_t i = 0; i < c->npend; i++) {
		const struct sim_op *op = &R.ops[c->pending[i]];
		bool keep = v == KVS_SIM_RANDOM ? (next_rand(rng) & 1)
			    : v == KVS_SIM_UNLINKS_FIRST
				    ? op->kind == KVS_SIM_UNLINK
				    : false;
		say(o, "%s %s %s%s%s; ", keep ? "kept" : "undone",
		    kind_names[op->kind], op->name, op->to ? " -> " : "",
		    op->to ? op->to : "");
		if (!keep)
			continue;
		*kept_unlinks += op->kind == KVS_SIM_UNLINK;
		struct ent *e = ns_find(*ns, *n, op->name);
		if (op->kind == KVS_SIM_CREATE) {
			ns_set(ns, n, op->name, op->ino);
		} else if (op->kind == KVS_SIM_RENAME) {
			if (e && e->ino == op->ino)
				ns_del(*ns, n, op->name);
			ns_set(ns, n, op->to, op->ino);
		} else if (e && e->ino == op->ino) {
			ns_del(*ns, n, op->name);
		}
	}
}

/* Write all of buf at off (not through io.c, whose writes it records). */
static int put(int fd, const unsigned char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int write_out(const char *path, const unsigned char *a, size_t alen,
		     const unsigned char *b, size_t blen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno;
	int e = put(fd, a, alen, 0);
	if (!e && blen)
		e = put(fd, b, blen, (off_t)alen);
	if (close(fd) != 0 && !e)
		e = errno;
	return e;
}

/* Write one file as the crash leaves its bytes. */
static int crash_file(const struct mfile *f, const char *path,
		      const char *name, enum kvs_sim_variant v, uint64_t *rng,
		      struct out *o)
{
	if (!f->dirty)
		return write_out(path, f->cur, f->cur_len, NULL, 0);
	int how = v == KVS_SIM_RANDOM ? (int)(next_rand(rng) % 3) : 0;
	if (how == 0) { /* lost */
		say(o, "%s: unsynced lost (%zu of %zu bytes); ", name,
		    f->dur_len, f->cur_len);
		return write_out(path, f->dur, f->dur_len, NULL, 0);
	}
	if (how == 1) { /* kept */
		say(o, "%s: unsynced kept (%zu bytes); ", name, f->cur_len);
		return write_out(path, f->cur, f->cur_len, NULL, 0);
	}
	/* Torn: the current bytes up to a 512-byte boundary at or after the
	 * first changed block, the durable ones past it. */
	uint64_t lo = f->dirty_lo / 512 * 512;
	uint64_t cut = lo;
	if (f->cur_len > lo)
		cut = lo + 512 * (next_rand(rng) % ((f->cur_len - lo + 511) / 512));
	if (cut > f->cur_len)
		cut = f->cur_len;
	size_t tail = f->dur_len > cut ? f->dur_len - (size_t)cut : 0;
	say(o, "%s: torn at %llu (of %zu, %zu synced); ", name,
	    (unsigned long long)cut, f->cur_len, f->dur_len);
	return write_out(path, f->cur, (size_t)cut,
			 tail ? f->dur + cut : NULL, tail);
}

static int clear_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno;
	struct dirent *de;
	char path[PATH_MAX];
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return 0;
}

int kvs__sim_crash_at(struct kvs_sim_crash *c, uint64_t n,
		      enum kvs_sim_variant variant, uint64_t seed,
		      const char *outdir, char *desc, size_t desc_size,
		      unsigned *kept_unlinks)
{
	struct out o = { desc, desc_size, 0 };
	unsigned kept = 0;
	if (desc && desc_size)
		desc[0] = '\0';
	pthread_mutex_lock(&R.mu);
	int rc = 0;
	if (c->gen != R.gen || n < c->pos || n > R.n) {
		rc = EINVAL;
		goto out;
	}
	while (c->pos < n)
		apply(c, c->pos++);
	if ((rc = clear_dir(outdir)) != 0)
		goto out;
	uint64_t rng = seed;
	struct ent *ns;
	size_t nns;
	crash_names(c, variant, &rng, &ns, &nns, &o, &kept);
	if (kept_unlinks)
		*kept_unlinks = kept;
	for (size_t i = 0; i < nns && !rc; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", outdir, ns[i].name);
		rc = crash_file(mfile(c, ns[i].ino), path, ns[i].name, variant,
				&rng, &o);
	}
	ns_free(ns, nns);
out:
	pthread_mutex_unlock(&R.mu);
	return rc;
}
