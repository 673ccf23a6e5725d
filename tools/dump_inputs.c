/* dump_inputs.c - the files kvs-dump reads: a DIR's segments (or hint
 * files) in ascending order, each with its hint file for --verify, and a
 * warning for a hint file whose segment is gone. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"

void dump_add_input(struct input_list *l, char *path, bool must_seal,
		    char *hint)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct input *v = dump_realloc_array(l->v, cap, sizeof *v);
		if (!v)
			dump_oom();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = (struct input){ path, must_seal, hint };
}

/* "NNNNNNNNNN" + suffix, with exactly ten digits making a segment number
 * the engine uses: 1 to 2^32 - 1.  The engine's open passes over any other
 * name (0000000000.seg included), so kvs-dump does too: its --verify and
 * --stats of a DIR are about the files the engine reads. */
static bool is_store_name(const char *name, const char *suffix)
{
	uint64_t id = 0;
	for (int i = 0; i < 10; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		id = id * 10 + (uint64_t)(name[i] - '0');
	}
	return id >= 1 && id <= UINT32_MAX && strcmp(name + 10, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A growable, sortable list of file names. */
struct names {
	char **v;
	size_t n, cap;
};

static void names_add(struct names *ns, const char *name)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **p = dump_realloc_array(ns->v, cap, sizeof *p);
		if (!p)
			dump_oom();
		ns->v = p;
		ns->cap = cap;
	}
	if (!(ns->v[ns->n++] = strdup(name)))
		dump_oom();
}

static void names_free(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	*ns = (struct names){ 0 };
}

/* dir + "/" + name, without doubling a trailing slash ("data/" + name). */
static char *join(const char *dir, const char *name)
{
	size_t dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	const char *sep = dir[dlen - 1] == '/' ? "" : "/";
	char *path;
	if (asprintf(&path, "%.*s%s%s", (int)dlen, dir, sep, name) < 0)
		dump_oom();
	return path;
}

/* A hint file without its segment: left over by a crash during compaction,
 * and removed by the engine's next open, so --verify only mentions it. */
static void orphan_hint(const struct opts *o, const char *dir,
			const char *name)
{
	if (!o->verify)
		return;
	char *path = join(dir, name);
	dump_complain("warning: %s: its segment is missing (an orphan hint file; "
		 "the engine removes it on open)", path);
	free(path);
}

/* Add the files of `dir` that the options ask for, ascending (ten-digit
 * names sort as numbers): its segments; or with --hints its hint files; or
 * with --verify its segments, each with its hint file if it has one.
 * Returns 0, or -1 after printing why the directory cannot be listed. */
int dump_add_dir(const struct opts *o, struct input_list *l, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		dump_complain("%s: %s", dir, strerror(errno));
		return -1;
	}
	struct names segs = { 0 }, hints = { 0 };
	bool marker = false, mdb = false;
	for (;;) {
		errno = 0; /* how readdir tells an error from the end */
		struct dirent *de = readdir(d);
		if (!de)
			break;
		if (is_store_name(de->d_name, ".seg"))
			names_add(&segs, de->d_name);
		else if (is_store_name(de->d_name, ".hint"))
			names_add(&hints, de->d_name);
		else if (strcmp(de->d_name, "ENGINE") == 0)
			marker = true;
		else if (strcmp(de->d_name, "data.mdb") == 0)
			mdb = true;
	}
	int rc = 0;
	if (errno != 0) {
		dump_complain("%s: %s", dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	/* Nothing to read is not a clean result unless the directory is a
	 * store that has no segment yet (its ENGINE marker, no data.mdb). */
	if (rc == 0 && !segs.n && !hints.n && (mdb || !marker)) {
		dump_complain(mdb ? "%s: holds an LMDB store; kvs-dump reads "
				    "the log engine's segments only" :
				    "%s: not a kvs store (no ENGINE marker, "
				    "no segment or hint files)", dir);
		rc = -1;
	}
	if (segs.n)
		qsort(segs.v, segs.n, sizeof *segs.v, cmp_names);
	if (hints.n)
		qsort(hints.v, hints.n, sizeof *hints.v, cmp_names);

	if (o->hints && !o->verify) {
		for (size_t i = 0; i < hints.n; i++)
			dump_add_input(l, join(dir, hints.v[i]), false, NULL);
	} else {
		/* Both lists are sorted by their ten digits: merge them. */
		size_t h = 0;
		for (size_t i = 0; i < segs.n; i++) {
			while (h < hints.n &&
			       strncmp(hints.v[h], segs.v[i], 10) < 0)
				orphan_hint(o, dir, hints.v[h++]);
			char *hint = NULL;
			if (h < hints.n &&
			    strncmp(hints.v[h], segs.v[i], 10) == 0) {
				if (o->verify)
					hint = join(dir, hints.v[h]);
				h++;
			}
			dump_add_input(l, join(dir, segs.v[i]),
				  rc == 0 && i + 1 < segs.n, hint);
		}
		while (h < hints.n)
			orphan_hint(o, dir, hints.v[h++]);
	}
	names_free(&segs);
	names_free(&hints);
	return rc;
}
