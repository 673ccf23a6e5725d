/* kvs-dump.c - lists, verifies and summarises the records of kvs segment
 * files and the entries of their hint files (a store directory or single
 * files): its options, usage and main.  The work is done by the dump_*.c
 * files, layered as dump.h says (dump_run.c does one run). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "dump.h"

static void usage(FILE *out, bool details)
{
	fputs("usage: kvs-dump [--json] [--full] [--verify] [--stats] "
	      "[--hints] DIR|FILE...\n"
	      "       kvs-dump -V | --version\n"
	      "       kvs-dump -h | --help\n", out);
	if (!details) {
		fputs("Try 'kvs-dump --help' for more information.\n", out);
		return;
	}
	fprintf(out, "\n"
	"Prints every record of the given segment files, and every entry of\n"
	"the given hint files (NNNNNNNNNN.hint: where each record of a sealed\n"
	"segment is, its seq, op, key and value length, but not the value).\n"
	"A DIR stands for its files named NNNNNNNNNN.seg (ten digits, a\n"
	"segment number from 1 to 4294967295, as the engine reads them), in\n"
	"ascending order.\n"
	"\n"
	"  --json    one JSON object per record (per file with --stats);\n"
	"            keys and values are UTF-8 text when printable, else\n"
	"            base64, as key_encoding and value_encoding say;\n"
	"            \"segment\" names the file read, \"file_kind\" says\n"
	"            whether it is a \"segment\" or a \"hint\" file\n"
	"  --full    whole keys and values (default: the first %d bytes,\n"
	"            and the full length)\n"
	"  --hints   a DIR stands for its NNNNNNNNNN.hint files instead.\n"
	"            The newest segment, still open for appends, has none:\n"
	"            for --stats, name it too (--hints DIR DIR/N.seg)\n"
	"  --verify  no listing: check every record's checksum and footer,\n"
	"            that every atomic batch has its closing marker, and\n"
	"            that every segment of a DIR but the newest is\n"
	"            sealed.  For a DIR (with or without --hints) also check\n"
	"            its hint files: each one's checksum, and that its\n"
	"            entries are the segment's records, all and in order\n"
	"            (offset, length, seq, op, key, value length); a hint\n"
	"            file whose segment is missing is only a warning (the\n"
	"            engine removes it).  Print a one-line summary when all\n"
	"            is well\n"
	"  --stats   no listing: per file, its SET and REMOVE records, bytes,\n"
	"            live records (the newest record of their key among all\n"
	"            files given, a SET, and newer than every flush) and\n"
	"            their bytes, dead bytes\n"
	"            (all other records: values overwritten or removed\n"
	"            since, and every REMOVE: a tombstone counts as dead\n"
	"            here), and the dead ratio, dead bytes / bytes of SET\n"
	"            and REMOVE records (header and footer left out); the\n"
	"            total row has the ratio over all files\n"
	"\n"
	"A bad record ends the reading of its file (after the good records\n"
	"before it) with a message naming the file and offset; the other\n"
	"files are still read.  Exit status: 0 all good, 1 corrupt or\n"
	"unreadable data, 2 usage error.\n",
		SHOW_MAX);
}

int main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_FULL, OPT_VERIFY, OPT_STATS, OPT_HINTS };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "full", no_argument, NULL, OPT_FULL },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "stats", no_argument, NULL, OPT_STATS },
		{ "hints", no_argument, NULL, OPT_HINTS },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "Vh", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: o.json = true; break;
		case OPT_FULL: o.full = true; break;
		case OPT_VERIFY: o.verify = true; break;
		case OPT_STATS: o.stats = true; break;
		case OPT_HINTS: o.hints = true; break;
		case 'V': printf("kvs-dump %s\n", KVS_VERSION); return 0;
		case 'h': usage(stdout, true); return 0;
		default: usage(stderr, false); return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		dump_complain("no DIR or FILE given");
		usage(stderr, false);
		return EXIT_USAGE;
	}

	int status = dump_run(&o, argv + optind, (size_t)(argc - optind), NULL);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		dump_complain("writing the output: %s", strerror(errno));
		status = EXIT_BAD_DATA;
	}
	return status;
}
