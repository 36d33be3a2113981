/*
 * be-write.c - like logger(1): every line of standard input becomes one
 * record of a store, then one be_flush() waits until all are durable.
 * Exit status 0 only when every line was written and is durable.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: be-write [-i INSTANCE] [-w MS] [-f MS] STORE < lines\n"
		"  -i, --instance NAME     the instance (default: $BE_INSTANCE, else \"default\")\n"
		"  -w, --write-timeout MS  wait for ring space or the lock (default 1000, -1 forever)\n"
		"  -f, --flush-timeout MS  wait for durability at the end (default 10000, -1 forever)\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n"
		"Writes one record per line (without its newline) to STORE, then waits until\n"
		"every record is durable. Exit status: 0 all durable, 1 an error, 2 bad usage.\n");
}

static int parse_ms(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < -1 || v > INT_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "write-timeout", required_argument, NULL, 'w' },
		{ "flush-timeout", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct be_open_opts o = { .instance = NULL, .write_timeout_ms = 1000 };
	int flush_timeout = 10000, c, ret, status = 0;
	unsigned long lines = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	be_store *s;

	opterr = 0; /* one line of our own for a bad option */
	while ((c = getopt_long(argc, argv, ":i:w:f:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.instance = optarg;
			break;
		case 'w':
			if (parse_ms(optarg, &o.write_timeout_ms)) {
				fprintf(stderr, "be-write: bad --write-timeout '%s'\n", optarg);
				return 2;
			}
			break;
		case 'f':
			if (parse_ms(optarg, &flush_timeout)) {
				fprintf(stderr, "be-write: bad --flush-timeout '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("be-write %s\n", BE_VERSION_STRING);
			return 0;
		case ':':
			fprintf(stderr, "be-write: option '%s' needs a value (see --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "be-write: bad option '%s' (see --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "be-write: %s (see --help)\n",
			optind == argc ? "missing STORE" : "more than one STORE");
		return 2;
	}
	ret = be_open(argv[optind], &o, &s);
	if (ret) {
		fprintf(stderr, "be-write: %s: %s\n", argv[optind], be_strerror(ret));
		return 1;
	}
	if (be_store_type(s) != BE_TYPE_RAW) {
		fprintf(stderr, "be-write: %s: %s\n", argv[optind], be_strerror(-EPROTOTYPE));
		be_close(s);
		return 1;
	}
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		lines++;
		ret = be_write(s, line, (size_t)n);
		if (ret) {
			fprintf(stderr, "be-write: %s: line %lu: %s\n", argv[optind], lines,
				be_strerror(ret));
			status = 1;
			if (ret != -EMSGSIZE)
				break;
		}
	}
	free(line);
	if (ferror(stdin)) {
		fprintf(stderr, "be-write: reading stdin: %s\n", strerror(errno));
		status = 1;
	}
	ret = be_flush(s, flush_timeout);
	if (ret) {
		fprintf(stderr, "be-write: %s: flush: %s\n", argv[optind], be_strerror(ret));
		status = 1;
	}
	be_close(s);
	return status;
}
