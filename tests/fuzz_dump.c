/* fuzz_dump.c - libFuzzer harness for kvs-dump's reader (tools/dump_*.c,
 * run through dump_run() exactly as the command runs it) over a store
 * directory and its single files: bad data must be reported, never crash.
 * Then the engine opens the same directory, and --verify's verdict must
 * agree with it: a directory that verifies opens, without a repair, with
 * as many live keys as kvs-dump counts.  (The reverse need not hold:
 * --verify also fails a torn tail or a bad hint file, which the engine
 * repairs at open.)
 *
 * Input: one byte of options, then a dir image (fuzz_store.h).
 *   bit 0 --json, bit 1 --full, bit 2 also list every file on its own,
 *   bit 3 also run --hints on the directory.
 */
#define FUZZ_NAME "dump"
#include "fuzz_store.h"

#include "dump.h"
#include "kvs.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* kvs-dump prints every record on stdout and every problem on stderr;
 * here both go to /dev/null while it runs, by pointing glibc's `stdout` and
 * `stderr` (assignable variables in glibc) at it, so that libFuzzer's own
 * messages (written through the FILE it took at start-up), the replay's
 * summary and the sanitizers' reports (a descriptor) still show. */
static FILE *devnull;

static unsigned n_warnings;

static void log_sink(void *ctx, enum kvs_log_level level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
	n_warnings++;
}

/* One kvs-dump run over `path` with options o, quietly. */
static int run_dump(const struct opts *o, const char *path,
		    struct seg_stats *total)
{
	char *args[1] = { (char *)path };
	FILE *out = stdout, *err = stderr;
	stdout = stderr = devnull;
	int status = dump_run(o, args, 1, total);
	fflush(devnull);
	stdout = out;
	stderr = err;
	CHECK(status == 0 || status == EXIT_BAD_DATA);
	return status;
}

/* The engine's view of the directory: open (modifying it: cuts torn tails,
 * rewrites hints, removes leftovers), count the live keys, close. */
static int engine_open(uint64_t *live, uint64_t *volatile_keys)
{
	struct kvs_options opt;
	struct kvs *db = NULL;
	memset(&opt, 0, sizeof opt);
	opt.engine = KVS_ENGINE_KVS;
	opt.fsync = KVS_FSYNC_NEVER;
	opt.segment_size = 4096;
	opt.no_auto_compact = 1;
	opt.log = log_sink;
	int rc = kvs_open(fuzz_dir, &opt, &db);
	if (rc != KVS_OK)
		return rc;
	struct kvs_store_stats st;
	CHECK(kvs_stats(db, &st) == KVS_OK);
	*live = st.live_keys;
	*volatile_keys = st.volatile_keys;
	CHECK(kvs_close(db) == KVS_OK);
	return KVS_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	CHECK((devnull = fopen("/dev/null", "w")) != NULL);
	fuzz_make_dir();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if (!devnull)
		LLVMFuzzerInitialize(NULL, NULL);
	unsigned flags = data[0];
	struct opts o = { .json = flags & 1, .full = flags & 2 };
	fuzz_empty_dir(fuzz_dir);
	fuzz_write_image(data + 1, size - 1);

	/* Every file on its own, as `kvs-dump FILE` lists it. */
	if (flags & 4) {
		struct fuzz_names ns;
		char path[512];
		for (int kind = 0; kind < 2; kind++) {
			fuzz_list(&ns, kind ? ".hint" : ".seg");
			for (size_t i = 0; i < ns.n; i++) {
				fuzz_path(path, sizeof path, ns.name[i]);
				run_dump(&o, path, NULL);
			}
		}
	}
	if (flags & 8) {
		struct opts h = o;
		h.hints = true;
		run_dump(&h, fuzz_dir, NULL);
		h.stats = true;
		run_dump(&h, fuzz_dir, NULL);
	}

	struct opts v = o, s = o;
	struct seg_stats total;
	v.verify = true;
	s.stats = true;
	int verified = run_dump(&v, fuzz_dir, NULL);
	run_dump(&s, fuzz_dir, &total);

	uint64_t live = 0, vol = 0;
	unsigned warned = n_warnings;
	int rc = engine_open(&live, &vol);
	if (verified == 0 && rc != KVS_EENGINE) {
		/* (kvs-dump reads no ENGINE marker.)  The engine reads what --verify passed, as it is. */
		if (rc != KVS_OK)
			fuzz_report("--verify passed, but the open failed: %s",
				    kvs_errmsg());
		CHECK(rc == KVS_OK);
		if (n_warnings != warned)
			fuzz_report("--verify passed, but the open repaired "
				    "something (%u warnings)",
				    n_warnings - warned);
		CHECK(n_warnings == warned);
		/* The same live keys (a key expiring between the two
		 * clocks aside). */
		if (live != total.live)
			fuzz_report("--stats counts %llu live keys, the engine "
				    "%llu", (unsigned long long)total.live,
				    (unsigned long long)live);
		CHECK(live == total.live || vol != 0);
	} else if (rc != KVS_OK) {
		CHECK(rc == KVS_ECORRUPT || rc == KVS_EENGINE || rc == KVS_EIO);
		CHECK(kvs_errmsg()[0] != '\0');
	}
	fuzz_empty_dir(fuzz_dir);
	return 0;
}
