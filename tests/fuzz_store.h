/* fuzz_store.h - what the store-directory harnesses (fuzz_recovery.c,
 * fuzz_dump.c) share: a private temporary directory, a tiny container format
 * that describes a store directory as a list of files, and small file
 * helpers.  Header-only (static functions) because each harness is built as
 * one translation unit.
 *
 * The container ("dir image"): entries until the input ends, each
 *   kind (1 byte)  id (1 byte)  len (2 bytes, little-endian)  bytes[len]
 * kind % 6 names the file: 0 NNNNNNNNNN.seg, 1 NNNNNNNNNN.hint,
 * 2 NNNNNNNNNN.seg.tmp (an unfinished rotation or compaction),
 * 3 ENGINE (the engine marker), 4 NNNNNNNNNN.hint.tmp, 5 "junk" (a file the
 * store does not know), where NNNNNNNNNN is the id in ten digits (0 too,
 * which is no segment number).  A len past the end takes what is left; a
 * later entry with the same name replaces the earlier one.
 */
#ifndef KVS_FUZZ_STORE_H
#define KVS_FUZZ_STORE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME (the harness's name, for messages) first"
#endif

/* A violated property: say which and abort (libFuzzer saves the input). */
#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fuzz_report("%s:%d: check failed: %s", __FILE__,     \
				    __LINE__, #cond);                        \
			abort();                                             \
		}                                                            \
	} while (0)

/* Where the harness's own messages go: stderr, or the copy of it that a
 * harness keeps after silencing the code under test (fuzz_dump.c). */
static FILE *fuzz_err;

static inline void fuzz_report(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static inline void fuzz_report(const char *fmt, ...)
{
	va_list ap;
	FILE *f = fuzz_err ? fuzz_err : stderr;
	fprintf(f, "fuzz-%s: ", FUZZ_NAME);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
}

/* The private directory every input uses (emptied between inputs), made
 * once and removed at exit.  On tmpfs (/dev/shm) when there is one: the
 * engine syncs at every open, rotation and close, and on a real disk those
 * fdatasyncs (milliseconds each) would make the harness ten times slower.
 * Otherwise under /tmp. */
static char fuzz_dir[64];

static inline void fuzz_empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	CHECK(d != NULL);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char path[512];
		int w = snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		CHECK(w > 0 && (size_t)w < sizeof path);
		CHECK(unlink(path) == 0);
	}
	closedir(d);
}

static inline void fuzz_remove_dir(void)
{
	if (!fuzz_dir[0])
		return;
	fuzz_empty_dir(fuzz_dir);
	rmdir(fuzz_dir);
}

static inline void fuzz_make_dir(void)
{
	snprintf(fuzz_dir, sizeof fuzz_dir, "/dev/shm/fuzz-%s-XXXXXX",
		 FUZZ_NAME);
	if (!mkdtemp(fuzz_dir)) {
		snprintf(fuzz_dir, sizeof fuzz_dir, "/tmp/fuzz-%s-XXXXXX",
			 FUZZ_NAME);
		CHECK(mkdtemp(fuzz_dir) != NULL);
	}
	atexit(fuzz_remove_dir);
}

static inline void fuzz_path(char *out, size_t n, const char *name)
{
	int w = snprintf(out, n, "%s/%s", fuzz_dir, name);
	CHECK(w > 0 && (size_t)w < n);
}

static inline void fuzz_write_file(const char *name, const void *p, size_t n)
{
	char path[512];
	fuzz_path(path, sizeof path, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	const char *s = p;
	while (n) {
		ssize_t w = write(fd, s, n);
		CHECK(w > 0);
		s += w;
		n -= (size_t)w;
	}
	CHECK(close(fd) == 0);
}

/* The whole file `name` of the directory (malloc'd; *n its size), or NULL
 * if there is none. */
static inline unsigned char *fuzz_read_file(const char *name, size_t *n)
{
	char path[512];
	struct stat st;
	fuzz_path(path, sizeof path, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	CHECK(fstat(fd, &st) == 0);
	size_t len = (size_t)st.st_size;
	unsigned char *buf = malloc(len ? len : 1);
	CHECK(buf != NULL);
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);
		CHECK(r > 0);
		got += (size_t)r;
	}
	close(fd);
	*n = len;
	return buf;
}

/* The file name a container entry stands for. */
static inline void fuzz_entry_name(char *out, size_t n, unsigned kind, unsigned id)
{
	static const char *const suffix[6] = {
		".seg", ".hint", ".seg.tmp", NULL, ".hint.tmp", NULL,
	};
	if (kind % 6 == 3)
		snprintf(out, n, "ENGINE");
	else if (kind % 6 == 5)
		snprintf(out, n, "junk");
	else
		snprintf(out, n, "%010u%s", id, suffix[kind % 6]);
}

/* Write the files a container describes into the (empty) directory. */
static inline void fuzz_write_image(const uint8_t *p, size_t n)
{
	while (n >= 4) {
		unsigned kind = p[0], id = p[1];
		size_t len = (size_t)p[2] | (size_t)p[3] << 8;
		p += 4;
		n -= 4;
		if (len > n)
			len = n;
		char name[32];
		fuzz_entry_name(name, sizeof name, kind, id);
		fuzz_write_file(name, p, len);
		p += len;
		n -= len;
	}
}

/* Names of the directory's segment (".seg") and hint (".hint") files,
 * ascending: ten-digit names sort as numbers. */
#define FUZZ_MAX_NAMES 512 /* 256 ids of an image; a built store has fewer */
struct fuzz_names {
	char name[FUZZ_MAX_NAMES][32];
	size_t n;
};

static inline int fuzz_cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

static inline void fuzz_list(struct fuzz_names *ns, const char *suffix)
{
	DIR *d = opendir(fuzz_dir);
	CHECK(d != NULL);
	struct dirent *de;
	ns->n = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name), sl = strlen(suffix);
		if (len != 10 + sl || strcmp(de->d_name + 10, suffix) != 0)
			continue;
		CHECK(ns->n < FUZZ_MAX_NAMES); /* a list cut short lies */
		CHECK(len < sizeof ns->name[0]);
		memcpy(ns->name[ns->n++], de->d_name, len + 1);
	}
	closedir(d);
	qsort(ns->name, ns->n, sizeof ns->name[0], fuzz_cmp_name);
}

#endif /* KVS_FUZZ_STORE_H */
