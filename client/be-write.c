/*
 * be-write.c - like logger(1): every line of standard input becomes one
 * record of a store, then one be_flush() waits until all are durable.
 *
 * On a raw store a line is written as it is.  On a log store it becomes a
 * log record (be_write_log): the line is the message, -p gives the
 * severity as logger's priority does (a syslog level, mapped to the
 * OpenTelemetry number by codec_severity_from_syslog), -t the source,
 * --category the category, and the pid is be-write's own.  Other store
 * types are refused.
 *
 * Exit status 0 only when every line was written and is durable.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/codec.h"
#include "shm/ring.h"

#define EXIT_FAIL  1
#define EXIT_USAGE 2

struct name_val {
	const char *name;
	int val;
};

/* syslog facilities, as logger(1) names them. */
static const struct name_val facilities[] = {
	{ "kern", 0 },	   { "user", 1 },      { "mail", 2 },	 { "daemon", 3 },  { "auth", 4 },
	{ "security", 4 }, { "syslog", 5 },    { "lpr", 6 },	 { "news", 7 },	   { "uucp", 8 },
	{ "cron", 9 },	   { "authpriv", 10 }, { "ftp", 11 },	 { "local0", 16 }, { "local1", 17 },
	{ "local2", 18 },  { "local3", 19 },   { "local4", 20 }, { "local5", 21 }, { "local6", 22 },
	{ "local7", 23 },  { NULL, 0 },
};

/* syslog levels. */
static const struct name_val levels[] = {
	{ "emerg", 0 },	 { "panic", 0 }, { "alert", 1 },   { "crit", 2 },
	{ "err", 3 },	 { "error", 3 }, { "warning", 4 }, { "warn", 4 },
	{ "notice", 5 }, { "info", 6 },	 { "debug", 7 },   { NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: be-write [-i INSTANCE] [-w MS] [-f MS] [-p PRIO] [-t TAG] [--category C]"
		" STORE < lines\n"
		"  -i, --instance NAME     the instance (default: $BE_INSTANCE, else \"default\")\n"
		"  -w, --write-timeout MS  wait for ring space or the lock (default 1000, -1 "
		"forever)\n"
		"  -f, --flush-timeout MS  wait for durability at the end (default 10000, -1 "
		"forever)\n"
		"  -p, --priority PRIO     log stores: the priority, as logger(1) takes it: a "
		"level\n"
		"                          (emerg alert crit err warning notice info debug),\n"
		"                          facility.level (user.notice, daemon.warning), or a\n"
		"                          number (0-191, facility * 8 + level); default\n"
		"                          user.notice.  Stored as the OpenTelemetry severity\n"
		"                          (err: 17 ERROR, warning: 13 WARN, info: 9 INFO...)\n"
		"  -t, --tag TAG           log stores: the source of every record\n"
		"      --category C        log stores: the category of every record\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n"
		"Writes one record per line (without its newline) to STORE, then waits until\n"
		"every record is durable.  On a raw store a record is the line's bytes; on a\n"
		"log store a log record: the line is the message, the pid be-write's own, and\n"
		"a facility named in -p is kept as the field facility=NAME.  Other store types\n"
		"are refused.  Exit status: 0 all durable, 1 an error, 2 bad usage.\n");
}

/*
 * open_failed() - be_open()'s error on stderr, with what be_strerror()
 * cannot know: on -EACCES the ring's path, owner, group and mode, and the
 * group to join; on -ELOOP that the ring's name is a symbolic link.
 */
static void open_failed(const char *instance, const char *store, int err)
{
	char name[RING_SHM_NAME_MAX], path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];
	char gbuf[1024], pbuf[1024], gname[300], uname[300];
	struct group gr, *g = NULL;
	struct passwd pw, *u = NULL;
	struct stat sb;

	if (!instance)
		instance = ring_default_instance();
	if ((err != -EACCES && err != -ELOOP) ||
	    ring_shm_name(name, sizeof(name), instance, store) < 0) {
		fprintf(stderr, "be-write: %s: %s\n", store, be_strerror(err));
		return;
	}
	snprintf(path, sizeof(path), RING_SHM_DIR "%s", name);
	if (err == -ELOOP) {
		fprintf(stderr,
			"be-write: %s: %s is a symbolic link, not a ring: refused (rings are "
			"made by bufferengined only; remove the link)\n",
			store, path);
		return;
	}
	if (lstat(path, &sb) < 0) {
		fprintf(stderr, "be-write: %s: permission denied on the ring %s: join its group "
			"(ls -l %s shows it)\n", store, path, path);
		return;
	}
	if (getgrgid_r(sb.st_gid, &gr, gbuf, sizeof(gbuf), &g) == 0 && g)
		snprintf(gname, sizeof(gname), "%s", g->gr_name);
	else
		snprintf(gname, sizeof(gname), "%u", (unsigned)sb.st_gid);
	if (getpwuid_r(sb.st_uid, &pw, pbuf, sizeof(pbuf), &u) == 0 && u)
		snprintf(uname, sizeof(uname), "%s", u->pw_name);
	else
		snprintf(uname, sizeof(uname), "%u", (unsigned)sb.st_uid);
	fprintf(stderr,
		"be-write: %s: permission denied on the ring %s (owner %s, group %s, mode %04o): "
		"join group %s (then log in again)\n",
		store, path, uname, gname, (unsigned)(sb.st_mode & 07777), gname);
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

/* A name of the table, or a decimal number in [0, max]: its value, or -1. */
static int decode(const char *s, size_t n, const struct name_val *tab, int max)
{
	if (n > 0 && n <= 3 && strspn(s, "0123456789") >= n) {
		int v = 0;

		for (size_t i = 0; i < n; i++)
			v = v * 10 + (s[i] - '0');
		return v <= max ? v : -1;
	}
	for (const struct name_val *e = tab; e->name; e++)
		if (strlen(e->name) == n && strncasecmp(e->name, s, n) == 0)
			return e->val;
	return -1;
}

/*
 * parse_priority() - logger's -p: "level", "facility.level" or a number
 * (facility * 8 + level).  Fills *prio (facility << 3 | level) and *fac
 * (the facility's name when one was named, else NULL).  Returns 0 or -1.
 */
static int parse_priority(const char *s, int *prio, const char **fac)
{
	const char *dot = strchr(s, '.');
	int f = 1, l; /* user */

	*fac = NULL;
	if (dot) {
		f = decode(s, (size_t)(dot - s), facilities, 23);
		if (f < 0)
			return -1;
		for (const struct name_val *e = facilities; e->name; e++) {
			if (e->val == f) {
				*fac = e->name;
				break;
			}
		}
		l = decode(dot + 1, strlen(dot + 1), levels, 7);
		if (l < 0)
			return -1;
		*prio = f << 3 | l;
		return 0;
	}
	l = decode(s, strlen(s), levels, 191); /* a number is a whole priority */
	if (l < 0)
		return -1;
	*prio = (l > 7 ? 0 : f << 3) | l;
	return 0;
}

enum { OPT_CATEGORY = 256 };

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "write-timeout", required_argument, NULL, 'w' },
		{ "flush-timeout", required_argument, NULL, 'f' },
		{ "priority", required_argument, NULL, 'p' },
		{ "tag", required_argument, NULL, 't' },
		{ "category", required_argument, NULL, OPT_CATEGORY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct be_open_opts o = { .instance = NULL, .write_timeout_ms = 1000 };
	int flush_timeout = 10000, c, ret, type, status = 0;
	int prio = 1 << 3 | 5, log_opts = 0; /* user.notice, as logger */
	const char *tag = NULL, *category = NULL, *facility = NULL, *store;
	struct be_attr fac_attr;
	struct be_log l;
	unsigned long lines = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	be_store *s;

	opterr = 0; /* one line of our own for a bad option */
	while ((c = getopt_long(argc, argv, ":i:w:f:p:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.instance = optarg;
			break;
		case 'w':
			if (parse_ms(optarg, &o.write_timeout_ms)) {
				fprintf(stderr, "be-write: bad --write-timeout '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			if (parse_ms(optarg, &flush_timeout)) {
				fprintf(stderr, "be-write: bad --flush-timeout '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			if (parse_priority(optarg, &prio, &facility)) {
				fprintf(stderr,
					"be-write: bad priority '%s' (a level such as err, "
					"facility.level such as daemon.warning, or 0-191; see "
					"--help)\n",
					optarg);
				return EXIT_USAGE;
			}
			log_opts = 1;
			break;
		case 't':
			tag = optarg;
			log_opts = 1;
			break;
		case OPT_CATEGORY:
			category = optarg;
			log_opts = 1;
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
			return EXIT_USAGE;
		default:
			fprintf(stderr, "be-write: bad option '%s' (see --help)\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "be-write: %s (see --help)\n",
			optind == argc ? "missing STORE" : "more than one STORE");
		return EXIT_USAGE;
	}
	store = argv[optind];
	ret = be_open(store, &o, &s);
	if (ret) {
		open_failed(o.instance, store, ret);
		return EXIT_FAIL;
	}
	type = be_store_type(s);
	if (type == BE_TYPE_RAW && log_opts) {
		fprintf(stderr,
			"be-write: %s: a raw store: -p, -t and --category are for log stores\n",
			store);
		be_close(s);
		return EXIT_USAGE;
	}
	if (type != BE_TYPE_RAW && type != BE_TYPE_LOG) {
		fprintf(stderr,
			"be-write: %s: a %s store: be-write writes raw and log stores only\n",
			store,
			type == BE_TYPE_METRIC	  ? "metric"
			: type == BE_TYPE_PROCESS ? "process"
						  : "typed");
		be_close(s);
		return EXIT_FAIL;
	}

	memset(&l, 0, sizeof(l));
	l.severity = codec_severity_from_syslog(prio); /* prio is in 0..191 */
	l.source = tag;
	l.category = category;
	l.pid = (uint32_t)getpid();
	if (facility) {
		fac_attr.key = "facility";
		fac_attr.value = facility;
		l.fields = &fac_attr;
		l.nfields = 1;
	}

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		lines++;
		if (type == BE_TYPE_RAW) {
			ret = be_write(s, line, (size_t)n);
		} else if (memchr(line, 0, (size_t)n)) {
			fprintf(stderr, "be-write: %s: line %lu: a NUL byte: not a log message\n",
				store, lines);
			status = EXIT_FAIL;
			continue;
		} else {
			line[n] = 0;
			l.message = line;
			l.ts_ns = 0; /* now */
			ret = be_write_log(s, &l);
		}
		if (ret) {
			fprintf(stderr, "be-write: %s: line %lu: %s\n", store, lines,
				be_strerror(ret));
			status = EXIT_FAIL;
			if (ret != -EMSGSIZE)
				break;
		}
	}
	free(line);
	if (ferror(stdin)) {
		fprintf(stderr, "be-write: reading stdin: %s\n", strerror(errno));
		status = EXIT_FAIL;
	}
	ret = be_flush(s, flush_timeout);
	if (ret) {
		fprintf(stderr, "be-write: %s: flush: %s\n", store, be_strerror(ret));
		status = EXIT_FAIL;
	}
	be_close(s);
	return status;
}
