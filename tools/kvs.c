/* kvs.c - the embedded command line: set, get and rm on the store in the
 * current directory (or --dir DIR), with talent-plan's exact behaviour. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kvs [--dir DIR] set KEY VALUE\n"
		"       kvs [--dir DIR] get KEY\n"
		"       kvs [--dir DIR] rm KEY\n"
		"       kvs -V | --version\n"
		"       kvs -h | --help\n"
		"A \"--\" after the subcommand lets KEY or VALUE start with '-'.\n"
		"\n"
		"Works on the store in the current directory, or in DIR; only\n"
		"set creates one (get and rm of a directory without a store\n"
		"answer as for a missing key).\n"
		"get prints the value, or 'Key not found' (exit 0).\n"
		"rm of a missing key prints 'Key not found' and exits 1.\n");
}

static void log_stderr(void *ctx, enum kvs_log_level lvl, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "kvs: %s: %s\n",
		lvl == KVS_LOG_ERROR ? "error" :
		lvl == KVS_LOG_WARN ? "warning" : "info", msg);
}

static int fail(int rc)
{
	const char *m = kvs_errmsg();
	fprintf(stderr, "kvs: %s\n", *m ? m : kvs_strerror(rc));
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = ".";
	int c;

	/* '+': options come before the subcommand.  After it, an argument
	 * starting with '-' is an unknown flag, unless a "--" came first:
	 * kvs set -- k -1 sets k to "-1". */
	while ((c = getopt_long(argc, argv, "+d:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'V': printf("kvs %s\n", KVS_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	bool literal = false;
	if (nargs < 1) {
		fprintf(stderr, "kvs: missing subcommand\n");
		usage(stderr);
		return 2;
	}
	const char *cmd = args[0];
	if (nargs > 1 && strcmp(args[1], "--") == 0) {
		/* Drop the "--": the rest are taken as they are. */
		for (int i = 1; i + 1 < nargs; i++)
			args[i] = args[i + 1];
		nargs--;
		literal = true;
	}
	int want = strcmp(cmd, "set") == 0 ? 3 :
		   strcmp(cmd, "get") == 0 || strcmp(cmd, "rm") == 0 ? 2 : -1;
	if (want < 0) {
		fprintf(stderr, "kvs: unknown subcommand '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	for (int i = 1; i < nargs && !literal; i++) {
		if (args[i][0] == '-' && args[i][1] != '\0') {
			fprintf(stderr, "kvs: unknown option '%s'\n", args[i]);
			usage(stderr);
			return 2;
		}
	}

	if (nargs != want) {
		fprintf(stderr, "kvs: %s takes %d argument%s\n", cmd, want - 1,
			want == 2 ? "" : "s");
		usage(stderr);
		return 2;
	}
	/* Only set makes a store: get and rm of a directory that holds none
	 * answer as for a missing key, and leave the directory as it was. */
	bool is_set = strcmp(cmd, "set") == 0;
	struct kvs_options opt = { .log = log_stderr, .no_create = !is_set };
	struct kvs *db;
	int rc = kvs_open(dir, &opt, &db);
	if (rc == KVS_ENOTFOUND) {
		printf("Key not found\n");
		return fflush(stdout) != 0 ? 1 : strcmp(cmd, "rm") == 0;
	}
	if (rc != KVS_OK)
		return fail(rc);
	const char *key = args[1];
	int status = 0;
	if (is_set) {
		rc = kvs_set(db, key, strlen(key), args[2], strlen(args[2]));
		if (rc != KVS_OK)
			status = fail(rc);
	} else if (strcmp(cmd, "get") == 0) {
		void *val;
		size_t vlen;
		rc = kvs_get(db, key, strlen(key), &val, &vlen);
		if (rc == KVS_ENOTFOUND) {
			printf("Key not found\n");
		} else if (rc != KVS_OK) {
			status = fail(rc);
		} else {
			fwrite(val, 1, vlen, stdout);
			putchar('\n');
			kvs_free(val);
		}
	} else {
		rc = kvs_remove(db, key, strlen(key));
		if (rc == KVS_ENOTFOUND) {
			printf("Key not found\n");
			status = 1;
		} else if (rc != KVS_OK) {
			status = fail(rc);
		}
	}
	rc = kvs_close(db);
	if (rc != KVS_OK && status == 0)
		status = fail(rc);
	if (fflush(stdout) != 0 && status == 0) {
		perror("kvs: stdout");
		status = 1;
	}
	return status;
}
