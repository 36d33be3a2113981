/*
 * demo-util.h - what the demo collectors (client/demo-*.c) share: the clock,
 * SIGTERM/SIGINT, the common options, opening the store, writing a batch
 * with drops and timeouts counted, and the summary line.
 *
 * Header-only (static inline), included by each demo program: the Makefile
 * puts every client source without a '-' in its name into libbufferengine,
 * and none of this belongs there.  Define PROG (the program's name, a string
 * literal) and DEFAULT_STORE before including it, and DEFAULT_INTERVAL_MS in
 * a collector that samples every -n ms.
 *
 * Functions return 0 or a negative errno unless they say otherwise.
 */
#ifndef BE_DEMO_UTIL_H
#define BE_DEMO_UTIL_H

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"

#ifndef PROG
#error "define PROG before including demo-util.h"
#endif

#define NSEC_PER_SEC  1000000000ull
#define NSEC_PER_MSEC 1000000ull

#define DEFAULT_WRITE_TIMEOUT 500
#define DEFAULT_OPEN_TIMEOUT  10000
#define FLUSH_TIMEOUT_MS      10000

/* The signal (SIGTERM, SIGINT) that ends the run, once one came. */
static volatile sig_atomic_t demo_got_signal;

/* What the writes came to. */
struct demo_counts {
	uint64_t written;
	uint64_t dropped;   /* -ENOBUFS: the ring was full, on_full = drop */
	uint64_t timed_out; /* -ETIMEDOUT: full, or the lock held, too long */
};

/* The options every collector takes. */
struct demo_opts {
	struct be_open_opts open; /* -i, -w, -o */
	const char *store;	  /* -s */
	uint64_t duration;	  /* -d, in ns; 0: until a signal */
};

/* ---------------------------------------------------------------------------
 * Time and signals.
 */

/* demo_clock_ns() - clock @id in nanoseconds. */
static inline uint64_t demo_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* demo_on_signal() - the SIGTERM/SIGINT handler: the run ends. */
static inline void demo_on_signal(int sig)
{
	demo_got_signal = sig;
}

/*
 * demo_signals_setup() - catch SIGTERM and SIGINT but keep them blocked;
 * *waitmask gets the mask that lets them in, for ppoll().  Returns 0, or -1
 * (said on stderr).
 */
static inline int demo_signals_setup(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = demo_on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, waitmask) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0) {
		fprintf(stderr, PROG ": signals: %s\n", strerror(errno));
		return -1;
	}
	sigdelset(waitmask, SIGTERM);
	sigdelset(waitmask, SIGINT);
	return 0;
}

/* demo_deadline() - when a run that started at @start ends: after @duration ns, or never (0). */
static inline uint64_t demo_deadline(uint64_t start, uint64_t duration)
{
	return duration ? start + duration : UINT64_MAX;
}

/* demo_running() - true until a signal came or CLOCK_MONOTONIC reached @deadline. */
static inline bool demo_running(uint64_t deadline)
{
	return !demo_got_signal && demo_clock_ns(CLOCK_MONOTONIC) < deadline;
}

/* demo_sleep_until() - sleep until CLOCK_MONOTONIC reaches @until_ns, or a signal comes. */
static inline void demo_sleep_until(uint64_t until_ns, const sigset_t *waitmask)
{
	struct timespec ts;
	uint64_t now;

	while (!demo_got_signal && (now = demo_clock_ns(CLOCK_MONOTONIC)) < until_ns) {
		ts.tv_sec = (time_t)((until_ns - now) / NSEC_PER_SEC);
		ts.tv_nsec = (long)((until_ns - now) % NSEC_PER_SEC);
		ppoll(NULL, 0, &ts, waitmask);
	}
}

/*
 * demo_pace() - *next moves on by @interval_ms (to now at the earliest: a late
 * round does not make the next ones come faster); sleep until then, at most
 * until @deadline, or until a signal.
 */
static inline void demo_pace(uint64_t *next, int interval_ms, uint64_t deadline,
			     const sigset_t *waitmask)
{
	*next += (uint64_t)interval_ms * NSEC_PER_MSEC;
	if (*next < demo_clock_ns(CLOCK_MONOTONIC))
		*next = demo_clock_ns(CLOCK_MONOTONIC);
	demo_sleep_until(*next < deadline ? *next : deadline, waitmask);
}

/*
 * demo_grow() - reallocarray() the array that *@arrayp (any T *) points at to
 * @n elements of @size: 0, or -ENOMEM (then it stays as it was).
 */
static inline int demo_grow(void *arrayp, size_t n, size_t size)
{
	void *old, *p;

	memcpy(&old, arrayp, sizeof(old));
	p = reallocarray(old, n, size);
	if (!p)
		return -ENOMEM;
	memcpy(arrayp, &p, sizeof(p));
	/* p now lives in *arrayp: cppcheck cannot see through the memcpy. */
	/* cppcheck-suppress memleak */
	return 0;
}

/* demo_meta_init() - every record's meta: agent PROG, gethostname(), /etc/machine-id. */
static inline void demo_meta_init(struct be_meta *meta, char *host, size_t hostlen, char *id,
				  size_t idlen)
{
	FILE *f;

	memset(meta, 0, sizeof(*meta));
	meta->agent_id = PROG;
	if (gethostname(host, hostlen) == 0) {
		host[hostlen - 1] = '\0';
		meta->hostname = host;
	}
	f = fopen("/etc/machine-id", "re");
	if (!f)
		return;
	if (fgets(id, (int)idlen, f)) {
		id[strcspn(id, " \t\r\n")] = '\0';
		if (id[0])
			meta->host_id = id;
	}
	fclose(f);
}

/* ---------------------------------------------------------------------------
 * Options.
 */

/* The long options of demo_opts, for the program's struct option table. */
/* clang-format off */
#define DEMO_LONG_OPTIONS                                  \
	{ "instance", required_argument, NULL, 'i' },      \
	{ "store", required_argument, NULL, 's' },         \
	{ "duration", required_argument, NULL, 'd' },      \
	{ "write-timeout", required_argument, NULL, 'w' }, \
	{ "open-timeout", required_argument, NULL, 'o' },  \
	{ "help", no_argument, NULL, 'h' },                \
	{ "version", no_argument, NULL, 'V' }
/* clang-format on */

/* demo_usage_store() - the help of -i, -s (a @kind store) and -d, for usage(). */
static inline void demo_usage_store(FILE *f, const char *kind)
{
	fprintf(f,
		"  -i, --instance NAME     the instance (default: $BE_INSTANCE, else \"default\")\n"
		"  -s, --store NAME        the %s store (default \"" DEFAULT_STORE "\")\n"
		"  -d, --duration SECONDS  stop after this long (default: at SIGTERM/SIGINT)\n",
		kind);
}

/* demo_usage_timeouts() - the help of -w, -o, -h and -V, for usage(). */
static inline void demo_usage_timeouts(FILE *f)
{
	fprintf(f,
		"  -w, --write-timeout MS  wait for ring space or the lock (default %d)\n"
		"  -o, --open-timeout MS   wait for the daemon to create the ring (default %d)\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n",
		DEFAULT_WRITE_TIMEOUT, DEFAULT_OPEN_TIMEOUT);
}

/* demo_opts_init() - the defaults: $BE_INSTANCE or "default", @store, no end. */
static inline void demo_opts_init(struct demo_opts *a, const char *store)
{
	memset(a, 0, sizeof(*a));
	a->open.instance = NULL;
	a->open.write_timeout_ms = DEFAULT_WRITE_TIMEOUT;
	a->open.open_timeout_ms = DEFAULT_OPEN_TIMEOUT;
	a->store = store;
}

/* demo_parse_ms() - milliseconds, @min to INT_MAX, into *out. */
static inline int demo_parse_ms(const char *s, int min, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* demo_parse_seconds() - seconds, fractions allowed, 0 for "until a signal": nanoseconds. */
static inline int demo_parse_seconds(const char *s, uint64_t *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e7)
		return -EINVAL;
	*out = (uint64_t)(v * (double)NSEC_PER_SEC);
	return 0;
}

/* What demo_parse() needs to know of a program. */
struct demo_prog {
	const char *optstring;		 /* for getopt_long(), with the common ":i:s:d:w:o:hV" */
	const struct option *longopts;	 /* DEMO_LONG_OPTIONS and the program's own */
	void (*usage)(FILE *f);		 /* --help */
	int (*option)(int c, void *ctx); /* the program's own: 0, or -EINVAL for a bad value */
	bool operands;			 /* operands allowed (the program checks them) */
};

/* demo_option() - a common option @c into @a: 0, -EINVAL for a bad value, -ENOENT when not one. */
static inline int demo_option(int c, struct demo_opts *a)
{
	switch (c) {
	case 'i':
		a->open.instance = optarg;
		return 0;
	case 's':
		a->store = optarg;
		return 0;
	case 'd':
		return demo_parse_seconds(optarg, &a->duration);
	case 'w':
		return demo_parse_ms(optarg, -1, &a->open.write_timeout_ms);
	case 'o':
		return demo_parse_ms(optarg, -1, &a->open.open_timeout_ms);
	}
	return -ENOENT;
}

/*
 * demo_parse() - the command line: the common options into @a, the program's
 * own through p->option(c, @ctx).  Returns -1 when the run goes on (optind at
 * the first operand), else the exit status to return now: 0 after --help or
 * --version, 2 for bad usage (said on stderr, one line).
 */
static inline int demo_parse(const struct demo_prog *p, int argc, char **argv, struct demo_opts *a,
			     void *ctx)
{
	int c, ret;

	opterr = 0; /* one line of our own for a bad option */
	while ((c = getopt_long(argc, argv, p->optstring, p->longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			p->usage(stdout);
			return 0;
		case 'V':
			printf(PROG " %s\n", BE_VERSION_STRING);
			return 0;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs a value (see --help)\n",
				argv[optind - 1]);
			return 2;
		case '?':
			fprintf(stderr, PROG ": bad option '%s' (see --help)\n", argv[optind - 1]);
			return 2;
		}
		ret = demo_option(c, a);
		if (ret == -ENOENT)
			ret = p->option(c, ctx);
		if (ret) {
			fprintf(stderr, PROG ": bad value '%s' for -%c (see --help)\n", optarg, c);
			return 2;
		}
	}
	if (!p->operands && optind != argc) {
		fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	return -1;
}

#ifdef DEFAULT_INTERVAL_MS
/* ---------------------------------------------------------------------------
 * A collector that samples every -n ms (DEFAULT_INTERVAL_MS defined).
 */

/*
 * demo_usage_sampler() - its help: the usage line and every option, for a
 * @kind store, -n the time between @rounds ("samples").
 */
static inline void demo_usage_sampler(FILE *f, const char *kind, const char *rounds)
{
	fprintf(f,
		"usage: " PROG " [-i INSTANCE] [-s STORE] [-d SECONDS] [-n MS] [-w MS] [-o MS]\n");
	demo_usage_store(f, kind);
	fprintf(f, "  -n, --interval MS       between %s (default %d)\n", rounds,
		DEFAULT_INTERVAL_MS);
	demo_usage_timeouts(f);
}

/* demo_interval_option() - its -n: ms, at least 1, into *(int *)ctx. */
static inline int demo_interval_option(int c, void *ctx)
{
	(void)c;
	return demo_parse_ms(optarg, 1, ctx);
}

/*
 * demo_sampler_start() - its command line into @a and *@interval, then
 * demo_signals_setup().  Returns -1 when the run goes on, else the exit
 * status to return now (as demo_parse(); 1 when the signals failed).
 */
static inline int demo_sampler_start(int argc, char **argv, void (*usage)(FILE *),
				     struct demo_opts *a, int *interval, sigset_t *waitmask)
{
	static const struct option opts[] = {
		DEMO_LONG_OPTIONS,
		{ "interval", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const struct demo_prog prog = {
		":i:s:d:n:w:o:hV", opts, usage, demo_interval_option, false,
	};
	int ret;

	demo_opts_init(a, DEFAULT_STORE);
	*interval = DEFAULT_INTERVAL_MS;
	ret = demo_parse(&prog, argc, argv, a, interval);
	if (ret >= 0)
		return ret;
	return demo_signals_setup(waitmask) ? 1 : -1;
}
#endif /* DEFAULT_INTERVAL_MS */

/* ---------------------------------------------------------------------------
 * The store.
 */

/*
 * demo_open() - be_open() the store of @a and check that it is of @type (a
 * @kind store).  Returns 0, or -1 when not (said on stderr; *st is NULL then).
 */
static inline int demo_open(const struct demo_opts *a, int type, const char *kind, be_store **st)
{
	int ret;

	*st = NULL;
	ret = be_open(a->store, &a->open, st);
	if (ret) {
		fprintf(stderr, PROG ": %s: %s\n", a->store, be_strerror(ret));
		return -1;
	}
	if (be_store_type(*st) != type) {
		fprintf(stderr, PROG ": %s: not a %s store: %s\n", a->store, kind,
			be_strerror(-EPROTOTYPE));
		be_close(*st);
		*st = NULL;
		return -1;
	}
	return 0;
}

/* One be_write_*() call, by the store's type: @recs + @done, @n of them. */
static inline int demo_write_some(be_store *st, int type, const void *recs, size_t done, size_t n)
{
	switch (type) {
	case BE_TYPE_METRIC:
		return be_write_metrics(st, (const struct be_metric *)recs + done, n);
	case BE_TYPE_LOG:
		return be_write_logs(st, (const struct be_log *)recs + done, n);
	case BE_TYPE_PROCESS:
		return be_write_processes(st, (const struct be_process *)recs + done, n);
	}
	return -EINVAL;
}

/*
 * demo_write() - write @n records (struct be_metric, be_log or be_process, as
 * @type says); what a partial write left is tried again until the library
 * refuses it.  Drops and timeouts are counted in @c, not errors.
 */
static inline int demo_write(be_store *st, int type, const void *recs, size_t n,
			     struct demo_counts *c)
{
	size_t done = 0;
	int ret;

	while (done < n) {
		ret = demo_write_some(st, type, recs, done, n - done);
		if (ret == -ENOBUFS) {
			c->dropped += n - done;
			return 0;
		}
		if (ret == -ETIMEDOUT || ret == 0) {
			c->timed_out += n - done;
			return 0;
		}
		if (ret < 0)
			return ret;
		done += (size_t)ret;
		c->written += (uint64_t)ret;
	}
	return 0;
}

/*
 * demo_finish() - be_flush() what was written, then print the summary line
 * "PROG: N records written to STORE, D dropped, T timed out (WHAT in S s)",
 * ", durable" added when the flush succeeded; WHAT is @fmt, printf-style, and
 * S the time since @start.  Returns 0, or 1 when the flush failed (said on
 * stderr).
 */
static inline int demo_finish(be_store *st, const char *store, const struct demo_counts *c,
			      uint64_t start, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static inline int demo_finish(be_store *st, const char *store, const struct demo_counts *c,
			      uint64_t start, const char *fmt, ...)
{
	int ret = be_flush(st, FLUSH_TIMEOUT_MS);
	va_list ap;

	printf(PROG ": %" PRIu64 " records written to %s, %" PRIu64 " dropped, %" PRIu64
		    " timed out (",
	       c->written, store, c->dropped, c->timed_out);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" in %.1f s)%s\n",
	       (double)(demo_clock_ns(CLOCK_MONOTONIC) - start) / (double)NSEC_PER_SEC,
	       ret ? "" : ", durable");
	fflush(stdout);
	if (ret) {
		fprintf(stderr, PROG ": %s: flush: %s\n", store, be_strerror(ret));
		return 1;
	}
	return 0;
}

#endif /* BE_DEMO_UTIL_H */
