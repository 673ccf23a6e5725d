/* crash_child.c - the victim of the crash tests: writes to a store as fast as
 * it can and reports each acknowledged write on stdout, until it is killed.
 *
 * usage: crash-child DIR PREFIX always|everysec|never THREADS [compact]
 * Each thread t sets PREFIX-t-i to "v-PREFIX-t-i" for i = 0, 1, ...; every
 * third key is then removed again.  After each acknowledged operation it
 * writes a line "S key" or "R key" to stdout (one write() per line, so the
 * parent never sees a partial line from a live process).
 *
 * With "compact", thread t instead runs op n = 0, 1, ... on key
 * "c-t-(n % 50)": version v = n / 50 sets the value "PREFIX-t-n", except
 * that every fifth version removes the key; it reports "N t n" after each.
 * Another thread runs kvs_compact() back to back, on 16 KiB segments. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvs.h"

static struct kvs *db;
static const char *prefix;
static volatile int stop_compacting;

#define CKEYS 50

static void *run_overwrites(void *arg)
{
	long t = (long)arg;
	char key[64], val[128], line[64];
	for (long n = 0; n < 100000000; n++) {
		snprintf(key, sizeof key, "c-%ld-%ld", t, n % CKEYS);
		int rc;
		if ((n / CKEYS) % 5 == 4) {
			rc = kvs_remove(db, key, strlen(key));
		} else {
			snprintf(val, sizeof val, "%s-%ld-%ld", prefix, t, n);
			rc = kvs_set(db, key, strlen(key), val, strlen(val));
		}
		if (rc != KVS_OK) {
			fprintf(stderr, "crash-child: %s\n", kvs_errmsg());
			_exit(4);
		}
		int len = snprintf(line, sizeof line, "N %ld %ld\n", t, n);
		if (write(1, line, (size_t)len) != len)
			_exit(3);
	}
	return NULL;
}

static void *run_compactions(void *arg)
{
	(void)arg;
	while (!stop_compacting) {
		int rc = kvs_compact(db);
		if (rc != KVS_OK) {
			fprintf(stderr, "crash-child: compact: %s\n", kvs_errmsg());
			_exit(5);
		}
	}
	return NULL;
}

static void report(char op, const char *key)
{
	char line[256];
	int n = snprintf(line, sizeof line, "%c %s\n", op, key);
	if (write(1, line, (size_t)n) != n)
		_exit(3);
}

static void *run(void *arg)
{
	long t = (long)arg;
	char key[128], val[160];
	for (long i = 0; i < 100000000; i++) {
		snprintf(key, sizeof key, "%s-%ld-%ld", prefix, t, i);
		snprintf(val, sizeof val, "v-%s", key);
		if (kvs_set(db, key, strlen(key), val, strlen(val)) != KVS_OK) {
			fprintf(stderr, "crash-child: set: %s\n", kvs_errmsg());
			_exit(4);
		}
		report('S', key);
		if (i % 3 == 2) {
			if (kvs_remove(db, key, strlen(key)) != KVS_OK) {
				fprintf(stderr, "crash-child: rm: %s\n",
					kvs_errmsg());
				_exit(4);
			}
			report('R', key);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: crash-child DIR PREFIX POLICY THREADS "
			"[compact]\n");
		return 2;
	}
	int compact = argc == 6 && strcmp(argv[5], "compact") == 0;
	struct kvs_options opt = { .segment_size = compact ? 16384 : 65536 };
	opt.fsync = strcmp(argv[3], "always") == 0 ? KVS_FSYNC_ALWAYS :
		    strcmp(argv[3], "never") == 0 ? KVS_FSYNC_NEVER :
						    KVS_FSYNC_EVERYSEC;
	prefix = argv[2];
	if (kvs_open(argv[1], &opt, &db) != KVS_OK) {
		fprintf(stderr, "crash-child: open: %s\n", kvs_errmsg());
		return 1;
	}
	report('O', "open");
	long nthreads = atol(argv[4]);
	if (nthreads < 1 || nthreads > 64)
		nthreads = 1;
	pthread_t th[64], ct;
	if (compact)
		pthread_create(&ct, NULL, run_compactions, NULL);
	for (long t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, compact ? run_overwrites : run,
			       (void *)t);
	for (long t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	if (compact) {
		stop_compacting = 1;
		pthread_join(ct, NULL);
	}
	return 0;
}
