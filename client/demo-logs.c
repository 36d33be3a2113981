/*
 * demo-logs.c - a demo log collector linked against libbufferengine.
 *
 * It turns the lines of a real log into log records: FILE, or by default
 * /var/log/dpkg.log when that exists, else standard input ("-" names it
 * too).  A file is read to its end and then followed, as tail -f does, until
 * --duration or SIGTERM/SIGINT (--no-follow stops at the end); standard
 * input is read until its end.  Lines go out in batches, be_write_logs(), of
 * at most 256 records: those of one read() of the input.
 *
 * Each non-empty line becomes one record:
 *   time      parsed from the line's start when it has one ("2024-05-01
 *             12:00:00" as dpkg writes it, ISO 8601 with 'T', fractions and
 *             a zone, or syslog's "May  1 12:00:00"); local time unless a
 *             zone is given; otherwise the time it was read
 *   message   the rest of the line
 *   severity  ERROR when a word of the line starts with "error", FATAL
 *             with "fatal" or "panic", WARN with "warn", else INFO
 *   source    the file's name ("dpkg.log", "stdin")
 *   category  --category, else the file's name up to its first dot ("dpkg")
 *   fields    line=N; for dpkg's log also action=, and package= (and
 *             state= for a status line)
 *   meta      hostname from gethostname(), host_id from /etc/machine-id
 * A line longer than 64 KiB is cut there (and counted): a record must fit
 * in a quarter of the ring.
 *
 * At the end it waits until what it wrote is durable (be_flush()) and
 * prints one line to stdout: "demo-logs: N records written to STORE, D
 * dropped, T timed out, ...".  Exit status: 0, 1 on an error (one line on
 * stderr), 2 for bad usage.
 *
 * Functions return 0 or a negative errno.  SIGTERM and SIGINT are blocked
 * except while the collector waits in ppoll(), for input or for time.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PROG "demo-logs"

#define DEFAULT_STORE  "logs"
#define DEFAULT_FILE   "/var/log/dpkg.log"
#define FOLLOW_POLL_MS 200 /* a followed file is checked this often */

#include "client/demo-util.h"

#define LINE_MAX_LEN ((size_t)64 * 1024) /* longer lines are cut */
#define BATCH	     256		 /* records per be_write_logs() */
#define NFIELDS	     4

struct counts {
	struct demo_counts w; /* what the writes came to */
	uint64_t lines;	      /* non-empty lines read */
	uint64_t cut;	      /* lines cut at LINE_MAX_LEN */
};

/* The input: its own buffer, since it is polled (stdio's would hide data). */
struct input {
	int fd;
	bool follow;   /* a file: wait for more at its end */
	bool eof;      /* no more will come */
	bool skipping; /* dropping the rest of a line that was cut */
	off_t off;     /* of a followed file: bytes read */
	char *buf;
	size_t len; /* bytes in buf */
	uint64_t lineno;
};

/* The records waiting for the next be_write_logs(): fixed arrays, so the
 * pointers between them stay valid. */
struct batch {
	struct be_log rec[BATCH];
	struct be_attr fields[BATCH][NFIELDS];
	char num[BATCH][24];
	char *mem[BATCH]; /* the message, then the field values */
	size_t n;
};

/* What every record of the run shares. */
struct logctx {
	const char *source;
	const char *category;
	bool dpkg; /* parse dpkg's fields */
	struct be_meta meta;
	char hostname[256];
	char host_id[64];
	int this_year; /* for syslog's time, which has none */
};

/* ---------------------------------------------------------------------------
 * Parsing a line.
 */

/* ".123456" after the seconds: nanoseconds; *sp moves past it. */
static uint64_t parse_fraction(const char **sp)
{
	const char *s = *sp;
	uint64_t ns = 0, scale = NSEC_PER_SEC / 10;

	if (*s != '.' && *s != ',')
		return 0;
	for (s++; *s >= '0' && *s <= '9'; s++) {
		ns += (uint64_t)(*s - '0') * scale;
		scale /= 10;
	}
	*sp = s;
	return ns;
}

/* Two decimal digits at @s: their value, or -1. */
static int two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * "Z", "+02:00", "-0500": the offset east of UTC in seconds; *sp moves past.
 * Anything else (one digit, a sign or a letter in place of one, hours over
 * 23, minutes over 59) is no zone, and *sp stays.
 */
static bool parse_zone(const char **sp, long *off)
{
	const char *s = *sp;
	int h, m, sign = *s == '-' ? -1 : 1;

	if (*s == 'Z') {
		*off = 0;
		*sp = s + 1;
		return true;
	}
	if (*s != '+' && *s != '-')
		return false;
	h = two_digits(s + 1);
	if (h < 0 || h > 23)
		return false;
	s += 3;
	if (*s == ':')
		s++;
	m = two_digits(s);
	if (m < 0 || m > 59)
		return false;
	*off = sign * (h * 3600L + m * 60L);
	*sp = s + 2;
	return true;
}

/*
 * The time at the start of @line, in CLOCK_REALTIME ns; *rest gets what
 * follows it (spaces skipped).  Returns 0 when the line has none.
 */
static uint64_t parse_time(const char *line, const char **rest, const struct logctx *lc)
{
	const char *s;
	struct tm tm;
	uint64_t frac;
	time_t t;
	long off;
	bool zone;

	memset(&tm, 0, sizeof(tm));
	s = strptime(line, "%Y-%m-%d", &tm);
	if (s && (*s == ' ' || *s == 'T'))
		s = strptime(s + 1, "%H:%M:%S", &tm);
	else if (!s || *s) {
		/* syslog: "May  1 12:00:00", no year */
		memset(&tm, 0, sizeof(tm));
		s = strptime(line, "%b %e %H:%M:%S", &tm);
		if (s)
			tm.tm_year = lc->this_year - 1900;
	} else {
		s = NULL; /* a date alone */
	}
	if (!s)
		return 0;
	frac = parse_fraction(&s);
	zone = parse_zone(&s, &off);
	if (*s && *s != ' ' && *s != '\t')
		return 0;
	tm.tm_isdst = -1;
	t = zone ? timegm(&tm) - off : mktime(&tm);
	if (t < 0) /* (time_t)-1 too: mktime()'s and timegm()'s error */
		return 0;
	while (*s == ' ' || *s == '\t')
		s++;
	*rest = s;
	return (uint64_t)t * NSEC_PER_SEC + frac;
}

/* Does a word of @s start with @word (any case)?  "liberror-perl" does not. */
static bool has_word(const char *s, const char *word)
{
	for (const char *p = s; (p = strcasestr(p, word)); p++)
		if (p == s || !isalnum((unsigned char)p[-1]))
			return true;
	return false;
}

static int severity_of(const char *s)
{
	if (has_word(s, "fatal") || has_word(s, "panic"))
		return BE_SEV_FATAL;
	if (has_word(s, "error"))
		return BE_SEV_ERROR;
	if (has_word(s, "warn"))
		return BE_SEV_WARN;
	return BE_SEV_INFO;
}

/*
 * dpkg.log lines: "ACTION PACKAGE ..." or "status STATE PACKAGE VERSION";
 * "startup ..." and "conffile ..." name no package.  @words is a copy of
 * the message to cut into words; fields go after fields[*n].
 */
static void dpkg_fields(char *words, struct be_attr *fields, size_t *n)
{
	char *save = NULL, *w[3];
	int nw;

	for (nw = 0; nw < 3; nw++) {
		w[nw] = strtok_r(nw ? NULL : words, " \t", &save);
		if (!w[nw])
			break;
	}
	if (nw < 1)
		return;
	fields[(*n)++] = (struct be_attr){ .key = "action", .value = w[0] };
	if (!strcmp(w[0], "startup") || !strcmp(w[0], "conffile") || nw < 2)
		return;
	if (!strcmp(w[0], "status")) {
		fields[(*n)++] = (struct be_attr){ .key = "state", .value = w[1] };
		if (nw == 3)
			fields[(*n)++] = (struct be_attr){ .key = "package", .value = w[2] };
		return;
	}
	fields[(*n)++] = (struct be_attr){ .key = "package", .value = w[1] };
}

/* Turn @line (@len bytes, no newline) into the batch's next record. */
static int batch_add(struct batch *b, const struct logctx *lc, const char *line, size_t len,
		     uint64_t lineno)
{
	size_t i = b->n, nf = 0;
	struct be_log *rec = &b->rec[i];
	const char *msg;
	char *mem;

	/*
	 * The records outlive the input buffer: everything goes to a copy.
	 * len <= LINE_MAX_LEN (take_lines()), so the size does not wrap.
	 */
	mem = malloc(2 * len + 2); /* NOLINT(clang-analyzer-optin.portability.UnixAPI) */
	if (!mem)
		return -ENOMEM;
	memcpy(mem, line, len);
	mem[len] = '\0';
	memset(rec, 0, sizeof(*rec));
	msg = mem;
	rec->ts_ns = parse_time(mem, &msg, lc);
	if (!*msg)
		msg = mem; /* a time alone: keep the line */
	rec->message = msg;
	rec->severity = severity_of(msg);
	rec->source = lc->source;
	rec->category = lc->category;
	rec->meta = &lc->meta;

	snprintf(b->num[i], sizeof(b->num[i]), "%" PRIu64, lineno);
	b->fields[i][nf++] = (struct be_attr){ .key = "line", .value = b->num[i] };
	if (lc->dpkg) {
		char *words = mem + len + 1;

		snprintf(words, len + 1, "%s", msg);
		dpkg_fields(words, b->fields[i], &nf);
	}
	rec->fields = b->fields[i];
	rec->nfields = nf;
	b->mem[i] = mem;
	b->n++;
	return 0;
}

/*
 * Write the batch; what a partial write left is tried again until the
 * library refuses it.  Drops and timeouts are counted, not errors.
 */
static int batch_write(struct batch *b, be_store *st, struct counts *c)
{
	int ret = demo_write(st, BE_TYPE_LOG, b->rec, b->n, &c->w);

	for (size_t i = 0; i < b->n; i++)
		free(b->mem[i]);
	b->n = 0;
	return ret;
}

/* ---------------------------------------------------------------------------
 * Reading.
 */

/* One line of input, @len bytes without the newline. */
static int take_line(struct input *in, struct batch *b, const struct logctx *lc, be_store *st,
		     struct counts *c, const char *line, size_t len)
{
	int ret;

	in->lineno++;
	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return 0;
	c->lines++;
	ret = batch_add(b, lc, line, len, in->lineno);
	if (ret)
		return ret;
	return b->n == BATCH ? batch_write(b, st, c) : 0;
}

/* The complete lines in the buffer; a line too long for it is cut. */
static int take_lines(struct input *in, struct batch *b, const struct logctx *lc, be_store *st,
		      struct counts *c)
{
	size_t pos = 0;
	char *nl;
	int ret = 0;

	while ((nl = memchr(in->buf + pos, '\n', in->len - pos))) {
		size_t len = (size_t)(nl - (in->buf + pos));

		if (in->skipping)
			in->skipping = false;
		else
			ret = take_line(in, b, lc, st, c, in->buf + pos, len);
		pos += len + 1;
		if (ret)
			return ret;
	}
	in->len -= pos;
	memmove(in->buf, in->buf + pos, in->len);
	if (in->len == LINE_MAX_LEN) {
		if (!in->skipping) {
			c->cut++;
			ret = take_line(in, b, lc, st, c, in->buf, in->len);
		}
		in->skipping = true;
		in->len = 0;
	}
	return ret;
}

/*
 * Read what is there.  Returns the byte count, 0 when nothing is (yet),
 * or -errno.  A followed file that shrank was truncated or replaced in
 * place: it is read again from its start, line 1.
 */
static ssize_t input_read(struct input *in)
{
	struct stat sb;
	ssize_t n;

	n = read(in->fd, in->buf + in->len, LINE_MAX_LEN - in->len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	in->off += n;
	in->len += (size_t)n;
	if (n > 0)
		return n;
	if (!in->follow) {
		in->eof = true;
		return 0;
	}
	if (fstat(in->fd, &sb) == 0 && sb.st_size < in->off) {
		if (lseek(in->fd, 0, SEEK_SET) < 0)
			return -errno;
		in->off = 0;
		in->len = 0; /* a partial line of the old text */
		in->skipping = false;
		in->lineno = 0;
	}
	return 0;
}

/*
 * Wait until input can be read without blocking (a followed file: for
 * FOLLOW_POLL_MS), at most until CLOCK_MONOTONIC reaches @deadline, or
 * for a signal.  Returns true when a read will not block.
 */
static bool input_wait(struct input *in, uint64_t deadline, const sigset_t *waitmask)
{
	struct pollfd pfd = { .fd = in->fd, .events = POLLIN };
	uint64_t now = demo_clock_ns(CLOCK_MONOTONIC), wait;
	struct timespec ts;

	if (now >= deadline)
		return false;
	wait = deadline - now;
	if (in->follow && wait > FOLLOW_POLL_MS * NSEC_PER_MSEC)
		wait = FOLLOW_POLL_MS * NSEC_PER_MSEC;
	ts.tv_sec = (time_t)(wait / NSEC_PER_SEC);
	ts.tv_nsec = (long)(wait % NSEC_PER_SEC);
	if (in->follow) {
		ppoll(NULL, 0, &ts, waitmask);
		return true;
	}
	return ppoll(&pfd, 1, &ts, waitmask) > 0;
}

/* ---------------------------------------------------------------------------
 * Options.
 */

/* The options of demo-logs alone. */
struct log_opts {
	const char *category; /* -c */
	bool follow;	      /* -1: false */
};

static int log_option(int c, void *ctx)
{
	struct log_opts *lo = ctx;

	if (c == 'c')
		lo->category = optarg;
	else
		lo->follow = false;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [-i INSTANCE] [-s STORE] [-d SECONDS] [-c CATEGORY]\n"
		   "                 [--no-follow] [-w MS] [-o MS] [FILE]\n");
	demo_usage_store(f, "log");
	fprintf(f, "  -c, --category TEXT     the records' category (default: FILE's name up\n"
		   "                          to its first dot)\n"
		   "  -1, --no-follow         stop at the end of FILE instead of following it\n");
	demo_usage_timeouts(f);
	fprintf(f,
		"Turns every line of FILE (default " DEFAULT_FILE " if it exists, else\n"
		"standard input; \"-\" is standard input) into a log record; at the end,\n"
		"flushes and prints a summary.  Exit status: 0 done, 1 an error, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		DEMO_LONG_OPTIONS,
		{ "category", required_argument, NULL, 'c' },
		{ "no-follow", no_argument, NULL, '1' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct demo_prog prog = { ":i:s:d:c:1w:o:hV", opts, usage, log_option, true };
	struct log_opts lo = { .follow = true };
	struct demo_opts a;
	const char *path = NULL, *base;
	struct input in = { .fd = -1 };
	struct counts cnt = { 0 };
	struct logctx lc = { 0 };
	struct batch *b = NULL;
	uint64_t start = 0, deadline;
	char catbuf[64];
	int ret = 0, status = 1;
	sigset_t waitmask;
	struct stat sb;
	struct tm tm;
	time_t now;
	be_store *st = NULL;
	ssize_t n;

	demo_opts_init(&a, DEFAULT_STORE);
	ret = demo_parse(&prog, argc, argv, &a, &lo);
	if (ret >= 0)
		return ret;
	if (argc - optind > 1) {
		fprintf(stderr, PROG ": more than one FILE (see --help)\n");
		return 2;
	}
	if (optind < argc)
		path = argv[optind];
	else if (access(DEFAULT_FILE, R_OK) == 0)
		path = DEFAULT_FILE;
	if (path && !strcmp(path, "-"))
		path = NULL;

	if (demo_signals_setup(&waitmask))
		return 1;

	/* The input first: a bad FILE is said before waiting for a ring. */
	if (path) {
		in.fd = open(path, O_RDONLY | O_CLOEXEC);
		if (in.fd < 0) {
			fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
			return 1;
		}
		in.follow = lo.follow && fstat(in.fd, &sb) == 0 && S_ISREG(sb.st_mode);
		base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	} else {
		in.fd = STDIN_FILENO;
		base = "stdin";
	}
	in.buf = malloc(LINE_MAX_LEN);
	b = calloc(1, sizeof(*b));
	if (!in.buf || !b) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		goto out;
	}
	lc.source = base;
	if (!lo.category) {
		snprintf(catbuf, sizeof(catbuf), "%.*s", (int)strcspn(base, "."), base);
		lo.category = catbuf;
	}
	lc.category = lo.category;
	lc.dpkg = !strcmp(lo.category, "dpkg");
	now = time(NULL);
	lc.this_year = localtime_r(&now, &tm) ? tm.tm_year + 1900 : 1970;
	demo_meta_init(&lc.meta, lc.hostname, sizeof(lc.hostname), lc.host_id, sizeof(lc.host_id));

	if (demo_open(&a, BE_TYPE_LOG, "log", &st))
		goto out;

	start = demo_clock_ns(CLOCK_MONOTONIC);
	deadline = demo_deadline(start, a.duration);
	while (!in.eof && demo_running(deadline)) {
		/* A pipe or a terminal is read only when that cannot block. */
		if (!in.follow && !input_wait(&in, deadline, &waitmask))
			continue;
		n = input_read(&in);
		if (n < 0) {
			fprintf(stderr, PROG ": %s: %s\n", path ? path : "stdin",
				strerror((int)-n));
			goto flush;
		}
		ret = take_lines(&in, b, &lc, st, &cnt);
		if (!ret && b->n)
			ret = batch_write(b, st, &cnt);
		if (ret)
			goto write_failed;
		if (n == 0 && in.follow)
			input_wait(&in, deadline, &waitmask);
	}
	/* A last line without its newline. */
	if (in.len && !in.skipping)
		ret = take_line(&in, b, &lc, st, &cnt, in.buf, in.len);
	if (!ret && b->n)
		ret = batch_write(b, st, &cnt);
	if (ret)
		goto write_failed;
	status = 0;
	goto flush;

write_failed:
	fprintf(stderr, PROG ": %s: %s\n", a.store, be_strerror(ret));
flush:
	if (demo_finish(st, a.store, &cnt.w, start, "%" PRIu64 " lines of %s, %" PRIu64 " cut,",
			cnt.lines, path ? path : "stdin", cnt.cut))
		status = 1;
out:
	if (b) {
		for (size_t i = 0; i < b->n; i++)
			free(b->mem[i]);
		free(b);
	}
	be_close(st);
	free(in.buf);
	if (in.fd > STDIN_FILENO)
		close(in.fd);
	return status;
}
