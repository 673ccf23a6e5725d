/* dump_run.c - one run of kvs-dump over its DIR|FILE arguments, once the
 * options are parsed: gather the inputs, read each, report.  Apart from
 * main so that a test harness (tests/fuzz_dump.c) runs exactly what the
 * command runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dump.h"

int dump_run(const struct opts *o, char *const *args, size_t nargs,
	     struct seg_stats *total)
{
	int status = 0;
	struct input_list in = { 0 };
	for (size_t i = 0; i < nargs; i++) {
		struct stat sb;
		if (stat(args[i], &sb) != 0) {
			dump_complain("%s: %s", args[i], strerror(errno));
			status = EXIT_BAD_DATA;
		} else if (S_ISDIR(sb.st_mode)) {
			if (dump_add_dir(o, &in, args[i]) != 0)
				status = EXIT_BAD_DATA;
		} else {
			char *p = strdup(args[i]);
			if (!p)
				dump_oom();
			dump_add_input(&in, p, false, NULL);
		}
	}

	struct seg_stats *st = calloc(in.n ? in.n : 1, sizeof *st);
	if (!st)
		dump_oom();
	struct key_table keys = { 0 };
	for (size_t i = 0; i < in.n; i++)
		if (dump_read_file(o, &in.v[i], i, &st[i], &keys) != 0)
			status = EXIT_BAD_DATA;
	dump_keys_count_live(&keys, st);

	if (o->stats)
		dump_print_stats(o, &in, st);
	if (o->verify && status == 0)
		dump_print_verify_ok(o, &in, st);
	if (total) {
		*total = (struct seg_stats){ 0 };
		for (size_t i = 0; i < in.n; i++) {
			total->sets += st[i].sets;
			total->removes += st[i].removes;
			total->bytes += st[i].bytes;
			total->live += st[i].live;
			total->live_bytes += st[i].live_bytes;
			total->rec_bytes += st[i].rec_bytes;
		}
	}

	for (size_t i = 0; i < in.n; i++) {
		free(in.v[i].path);
		free(in.v[i].hint);
	}
	free(in.v);
	free(st);
	return status;
}
