/*
 * bench.h - what the benchmarks in tests/bench/ share (header only: every
 * .c file in tests/bench/ is a program of its own, so shared code lives here as
 * static inline functions).
 *
 *   - a log-linear latency histogram (HdrHistogram-style buckets: exact
 *     below 128 ns, then 64 sub-buckets per power of two, so a percentile
 *     is within 1/64 (1.6 %) of the true value; the max is exact);
 *   - median/min/max over the runs of one figure;
 *   - one result line format (CSV on stdout, see bench_emit()), which
 *     scripts/bench.sh gathers into bench-results/;
 *   - a "team" of forked worker processes, driven step by step by the
 *     parent through a shared anonymous mapping: each step is one command
 *     (what to measure) that every worker runs at the same moment, after a
 *     start barrier, reporting its CLOCK_MONOTONIC start and end, its
 *     operation and byte counts, and a histogram when the step measures
 *     latency;
 *   - pre-faulting a ring's mapping (a steady-state writer has every page
 *     of its ring mapped; a fresh be_open() has none);
 *   - removing a directory tree.
 *
 * Result lines (stdout, one per figure, no header; the columns are
 * BENCH_CSV_COLUMNS):
 *
 *   bench,system,writers,payload_bytes,metric,unit,median,min,max,runs,"note"
 *
 * `system` is what was measured ("bufferengine" here); the comparative
 * benchmark adds rows for other systems with the same columns.  Progress
 * and human-readable text go to stderr.
 */
#ifndef BE_BENCH_H
#define BE_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/atomics.h"

#define BENCH_CSV_COLUMNS "bench,system,writers,payload_bytes,metric,unit,median,min,max,runs,note"

/* ------------------------------------------------------------------------- */
/* Clocks and numbers. */

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* A size with an optional K/M/G suffix (powers of 1024). */
static inline uint64_t bench_parse_size(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		bench_die("%s: not a size: '%s'", what, s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		bench_die("%s: not a size: '%s'", what, s);
	return v;
}

/* A comma-separated list of writer counts, e.g. "1,2,4"; returns how many. */
static inline unsigned bench_parse_list(const char *s, unsigned *out, unsigned max, const char *what)
{
	unsigned n = 0;

	while (*s) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || v == 0 || v > 64 || n == max)
			bench_die("%s: expected a list like 1,2 (each 1..64): '%s'", what, s);
		out[n++] = (unsigned)v;
		s = end;
		if (*s == ',')
			s++;
		else if (*s)
			bench_die("%s: expected a list like 1,2: '%s'", what, s);
	}
	if (!n)
		bench_die("%s: empty list", what);
	return n;
}

/* A comma-separated list of sizes (K/M/G suffixes), e.g. "16,64,1K"; returns how many. */
static inline unsigned bench_parse_sizes(const char *s, uint64_t *out, unsigned max, const char *what)
{
	char item[64];
	unsigned n = 0;

	while (*s) {
		size_t len = strcspn(s, ",");

		if (len == 0 || len >= sizeof(item) || n == max)
			bench_die("%s: expected a list like 16,64,1K: '%s'", what, s);
		memcpy(item, s, len);
		item[len] = 0;
		out[n++] = bench_parse_size(item, what);
		s += len;
		if (*s == ',')
			s++;
	}
	if (!n)
		bench_die("%s: empty list", what);
	return n;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, min and max of n values (sorted in place). */
struct bench_stat {
	double median, min, max;
	unsigned runs;
};

static inline struct bench_stat bench_stat_of(double *v, unsigned n)
{
	struct bench_stat s = { 0, 0, 0, n };

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.median = (n & 1) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

/* One figure as one CSV line on stdout (see the top of this file). */
static inline void bench_emit(const char *bench, const char *system, unsigned writers,
			      unsigned payload, const char *metric, const char *unit,
			      struct bench_stat s, const char *note)
{
	char clean[1024];
	size_t i;

	/* The note is quoted; keep it free of quotes and commas. */
	snprintf(clean, sizeof(clean), "%s", note ? note : "");
	for (i = 0; clean[i]; i++)
		if (clean[i] == '"' || clean[i] == ',' || clean[i] == '\n')
			clean[i] = clean[i] == ',' ? ';' : ' ';
	printf("%s,%s,%u,%u,%s,%s,%.6g,%.6g,%.6g,%u,\"%s\"\n", bench, system, writers, payload,
	       metric, unit, s.median, s.min, s.max, s.runs, clean);
	fflush(stdout);
}

/* ------------------------------------------------------------------------- */
/* The histogram. */

#define BENCH_HIST_SUB_BITS 7                        /* 128 exact values, then 64 per octave */
#define BENCH_HIST_HALF (1u << (BENCH_HIST_SUB_BITS - 1))
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_HALF + 2 * BENCH_HIST_HALF)

struct bench_hist {
	uint64_t count;
	uint64_t min, max;                   /* exact */
	uint64_t sum;                        /* for a mean, if ever wanted */
	uint64_t b[BENCH_HIST_BUCKETS];
};

static inline unsigned bench_hist_index(uint64_t v)
{
	unsigned e, shift;

	if (v < (1u << BENCH_HIST_SUB_BITS))
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);          /* v in [2^e, 2^(e+1)) */
	shift = e - BENCH_HIST_SUB_BITS + 1;
	/* v >> shift is in [HALF, 2*HALF): the sub-bucket within octave e. */
	return shift * BENCH_HIST_HALF + (unsigned)(v >> shift);
}

/* The largest value that lands in bucket i (what HdrHistogram reports). */
static inline uint64_t bench_hist_bucket_high(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < (1u << BENCH_HIST_SUB_BITS))
		return i;
	shift = i / BENCH_HIST_HALF - 1;
	m = i - (uint64_t)shift * BENCH_HIST_HALF;
	return ((m + 1) << shift) - 1;
}

static inline void bench_hist_reset(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline void bench_hist_add(struct bench_hist *h, uint64_t v)
{
	h->b[bench_hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

static inline void bench_hist_merge(struct bench_hist *into, const struct bench_hist *h)
{
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		into->b[i] += h->b[i];
	into->count += h->count;
	into->sum += h->sum;
	if (h->count && h->min < into->min)
		into->min = h->min;
	if (h->max > into->max)
		into->max = h->max;
}

/* The value at percentile p (0 < p <= 100): its bucket's highest value, capped at the max. */
static inline uint64_t bench_hist_pct(const struct bench_hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = bench_hist_bucket_high(i);

			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* ------------------------------------------------------------------------- */
/* Futex words in the shared control block (never FUTEX_PRIVATE_FLAG: shared). */

static inline void bench_futex_wait(uint32_t *w, uint32_t val, long timeout_ns)
{
	struct timespec ts = { timeout_ns / 1000000000L, timeout_ns % 1000000000L };

	syscall(SYS_futex, w, FUTEX_WAIT, val, timeout_ns ? &ts : NULL, NULL, 0);
}

static inline void bench_futex_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ------------------------------------------------------------------------- */
/* The team of worker processes. */

#define BENCH_MAX_WORKERS 64
#define BENCH_CMD_EXIT 0u

/* What one worker reports for one step.  Times are CLOCK_MONOTONIC ns. */
struct bench_slot {
	uint64_t t_start, t_end;
	uint64_t ops, bytes;
	uint64_t cpu_ns;            /* user + system CPU time of the step (getrusage) */
	uint64_t vcsw, ivcsw;       /* voluntary (slept) and involuntary context switches */
	int32_t err;                /* 0, or the negative errno that stopped the worker */
	char errmsg[160];
	struct bench_hist hist;     /* latency steps only */
};

struct bench_ctl {
	uint32_t gen;               /* futex: the parent bumps it to start a step */
	uint32_t cmd;               /* the step's command (BENCH_CMD_EXIT: leave) */
	uint32_t run;               /* the step's run number, for the worker's use */
	uint32_t nworkers;
	uint32_t arrived;           /* start barrier */
	uint32_t done;              /* futex: workers that finished the step */
	uint32_t ready;             /* futex: workers through their setup */
	uint32_t _pad;
	struct bench_slot slot[];
};

struct bench_worker {
	unsigned idx, nworkers;
	struct bench_ctl *ctl;
	struct bench_slot *slot;
	void *arg;                  /* the benchmark's own, set before the fork */
	void *state;                /* the worker's own, set by setup */
};

/*
 * The benchmark's side: setup() runs once in each worker after the fork
 * (open the store, prefault); step() runs one command and fills w->slot,
 * calling bench_worker_barrier() right before its timed part; 0 or -errno.
 */
struct bench_team_ops {
	int (*setup)(struct bench_worker *w);
	int (*step)(struct bench_worker *w, unsigned cmd, unsigned run);
};

struct bench_team {
	unsigned n;
	pid_t pid[BENCH_MAX_WORKERS];
	struct bench_ctl *ctl;
	size_t ctl_len;
};

/* Every worker of the step waits here, then all start together. */
static inline void bench_worker_barrier(struct bench_worker *w)
{
	uint32_t *arrived = &w->ctl->arrived;
	unsigned spins = 0;

	fetch_add_relaxed(arrived, 1);
	while (load_acquire(arrived) < w->nworkers) {
		/* More workers than cores: let the others get there. */
		if (++spins > 1000)
			sched_yield();
	}
}

static inline void bench_slot_fail(struct bench_slot *s, int err, const char *fmt, ...)
{
	va_list ap;

	s->err = err ? err : -EIO;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
}

static inline void bench_rusage(uint64_t *cpu_ns, uint64_t *vcsw, uint64_t *ivcsw)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*cpu_ns = ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
		  ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
	*vcsw = (uint64_t)ru.ru_nvcsw;
	*ivcsw = (uint64_t)ru.ru_nivcsw;
}

static inline void bench_worker_main(struct bench_worker *w, const struct bench_team_ops *ops)
{
	struct bench_ctl *c = w->ctl;
	uint32_t gen = 0;
	int ret;

	ret = ops->setup ? ops->setup(w) : 0;
	if (ret && !w->slot->err)
		bench_slot_fail(w->slot, ret, "setup failed (%d)", ret);
	fetch_add_release(&c->ready, 1);
	bench_futex_wake(&c->ready);
	if (ret)
		_exit(1);
	for (;;) {
		uint32_t g = load_acquire(&c->gen);
		uint64_t cpu0, v0, iv0, cpu1, v1, iv1;

		if (g == gen) {
			bench_futex_wait(&c->gen, g, 0);
			continue;
		}
		gen = g;
		if (READ_ONCE(c->cmd) == BENCH_CMD_EXIT)
			_exit(0);
		w->slot->err = 0;
		w->slot->errmsg[0] = 0;
		bench_rusage(&cpu0, &v0, &iv0);
		ret = ops->step(w, READ_ONCE(c->cmd), READ_ONCE(c->run));
		bench_rusage(&cpu1, &v1, &iv1);
		w->slot->cpu_ns = cpu1 - cpu0;
		w->slot->vcsw = v1 - v0;
		w->slot->ivcsw = iv1 - iv0;
		if (ret && !w->slot->err)
			bench_slot_fail(w->slot, ret, "step failed (%d)", ret);
		fetch_add_release(&c->done, 1);
		bench_futex_wake(&c->done);
	}
}

/* Wait until *word reaches n; -1 if a worker died first. */
static inline int bench_team_wait(struct bench_team *t, uint32_t *word, unsigned n)
{
	for (;;) {
		uint32_t v = load_acquire(word);

		if (v >= n)
			return 0;
		for (unsigned i = 0; i < t->n; i++) {
			int status;

			if (t->pid[i] > 0 && waitpid(t->pid[i], &status, WNOHANG) == t->pid[i]) {
				t->pid[i] = 0;
				fprintf(stderr, "bench: worker %u exited early (%s %d)\n", i,
					WIFSIGNALED(status) ? "signal" : "status",
					WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
				return -1;
			}
		}
		bench_futex_wait(word, v, 100 * 1000 * 1000);
	}
}

/*
 * bench_team_start() - fork n workers that run ops->setup, then wait for
 * steps.  Returns 0 when every worker is through its setup, else -1 (the
 * workers are stopped and *t is released).
 */
static inline void bench_team_stop(struct bench_team *t);

static inline int bench_team_start(struct bench_team *t, unsigned n,
				   const struct bench_team_ops *ops, void *arg)
{
	memset(t, 0, sizeof(*t));
	if (n == 0 || n > BENCH_MAX_WORKERS)
		return -1;
	t->ctl_len = sizeof(struct bench_ctl) + n * sizeof(struct bench_slot);
	t->ctl = mmap(NULL, t->ctl_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t->ctl == MAP_FAILED) {
		t->ctl = NULL;
		return -1;
	}
	t->ctl->nworkers = n;
	fflush(NULL);
	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			bench_team_stop(t);
			return -1;
		}
		if (pid == 0) {
			struct bench_worker w = { .idx = i, .nworkers = n, .ctl = t->ctl,
						  .slot = &t->ctl->slot[i], .arg = arg };

			/* The parent's handlers are for the parent. */
			signal(SIGINT, SIG_DFL);
			signal(SIGTERM, SIG_DFL);
			bench_worker_main(&w, ops);
			_exit(0);
		}
		t->pid[i] = pid;
		t->n = i + 1;
	}
	if (bench_team_wait(t, &t->ctl->ready, n) < 0) {
		for (unsigned i = 0; i < n; i++)
			if (t->ctl->slot[i].err)
				fprintf(stderr, "bench: worker %u: %s\n", i, t->ctl->slot[i].errmsg);
		bench_team_stop(t);
		return -1;
	}
	return 0;
}

/*
 * bench_team_step() - run one command on every worker at once and wait
 * for all.  Returns 0, or -1 when a worker failed (its message printed) or
 * died.
 */
static inline int bench_team_step(struct bench_team *t, unsigned cmd, unsigned run)
{
	struct bench_ctl *c = t->ctl;
	int ret = 0;

	WRITE_ONCE(c->arrived, 0);
	WRITE_ONCE(c->done, 0);
	for (unsigned i = 0; i < t->n; i++) {
		c->slot[i].ops = c->slot[i].bytes = 0;
		c->slot[i].t_start = c->slot[i].t_end = 0;
	}
	WRITE_ONCE(c->cmd, cmd);
	WRITE_ONCE(c->run, run);
	/* Release: the command is visible to a worker that sees the new gen. */
	fetch_add_release(&c->gen, 1);
	bench_futex_wake(&c->gen);
	if (bench_team_wait(t, &c->done, t->n) < 0)
		return -1;
	for (unsigned i = 0; i < t->n; i++) {
		if (c->slot[i].err) {
			fprintf(stderr, "bench: worker %u: %s\n", i, c->slot[i].errmsg);
			ret = -1;
		}
	}
	return ret;
}

/* Wall time of the last step: the first worker's start to the last one's end. */
static inline uint64_t bench_team_span_ns(const struct bench_team *t)
{
	uint64_t start = UINT64_MAX, end = 0;

	for (unsigned i = 0; i < t->n; i++) {
		if (t->ctl->slot[i].t_start < start)
			start = t->ctl->slot[i].t_start;
		if (t->ctl->slot[i].t_end > end)
			end = t->ctl->slot[i].t_end;
	}
	return end > start ? end - start : 0;
}

static inline void bench_team_stop(struct bench_team *t)
{
	if (!t->ctl)
		return;
	WRITE_ONCE(t->ctl->cmd, BENCH_CMD_EXIT);
	fetch_add_release(&t->ctl->gen, 1);
	bench_futex_wake(&t->ctl->gen);
	for (unsigned i = 0; i < t->n; i++) {
		uint64_t deadline = bench_now_ns() + 5000000000ull;

		if (t->pid[i] <= 0)
			continue;
		/* Our own children, by pid: asked to leave, killed if they do not. */
		while (waitpid(t->pid[i], NULL, WNOHANG) == 0) {
			struct timespec ts = { 0, 1000000 };

			if (bench_now_ns() > deadline) {
				kill(t->pid[i], SIGKILL);
				waitpid(t->pid[i], NULL, 0);
				break;
			}
			nanosleep(&ts, NULL);
		}
		t->pid[i] = 0;
	}
	munmap(t->ctl, t->ctl_len);
	t->ctl = NULL;
	t->n = 0;
}

/* Kill the workers at once and reap them (async-signal-safe: for a signal handler). */
static inline void bench_team_kill(const struct bench_team *t)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->pid[i] > 0)
			kill(t->pid[i], SIGKILL);
	for (unsigned i = 0; i < t->n; i++)
		if (t->pid[i] > 0)
			waitpid(t->pid[i], NULL, 0);
}

/*
 * bench_pin() - pin the calling process to the idx-th CPU it may run on
 * (modulo their number): writers i and j != i get different CPUs as long as
 * there are enough.  Returns the CPU, or -errno.
 */
static inline int bench_pin(unsigned idx)
{
	cpu_set_t set, one;
	int n = 0, want;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	n = CPU_COUNT(&set);
	if (n <= 0)
		return -EINVAL;
	want = (int)(idx % (unsigned)n);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &set) || want-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		return sched_setaffinity(0, sizeof(one), &one) < 0 ? -errno : cpu;
	}
	return -EINVAL;
}

/* ------------------------------------------------------------------------- */
/* Other processes: CPU time, and starting a program of another package. */

/* User + system CPU time of a process in seconds, from /proc/PID/stat; -1 if unknown. */
static inline double bench_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* After "pid (comm) ": state is field 3, utime 14, stime 15. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A line "Key:  N" of /proc/PID/status (voluntary_ctxt_switches, ...); -1 if unknown. */
static inline long long bench_proc_status(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * bench_spawn() - fork and exec argv (a bare argv[0] is looked up in /usr/sbin,
 * /sbin, /usr/bin, /usr/local/bin and /usr/local/sbin), stdout and stderr to
 * log (appended).  Returns the pid, or -1 when the program is not there
 * (the reason on stderr).
 */
static inline pid_t bench_spawn(char *const argv[], const char *log)
{
	static const char *const dirs[] = { "/usr/sbin/", "/sbin/", "/usr/bin/", "/usr/local/bin/",
					     "/usr/local/sbin/" };
	char path[256];
	pid_t pid;

	snprintf(path, sizeof(path), "%s", argv[0]);
	if (!strchr(argv[0], '/')) {
		path[0] = 0;
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
			char cand[256];

			snprintf(cand, sizeof(cand), "%s%s", dirs[i], argv[0]);
			if (access(cand, X_OK) == 0) {
				snprintf(path, sizeof(path), "%s", cand);
				break;
			}
		}
	}
	if (!path[0] || access(path, X_OK) != 0) {
		fprintf(stderr, "bench: %s is not installed (scripts/bench-deps.sh installs it)\n",
			argv[0]);
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execv(path, argv);
		_exit(127);
	}
	return pid;
}

/* Wait up to timeout_ms for path to exist; 0, or -1 (also when pid died first). */
static inline int bench_wait_path(const char *path, pid_t pid, int timeout_ms)
{
	uint64_t end = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;

	while (bench_now_ns() < end) {
		struct timespec ts = { 0, 2000000 };

		if (access(path, F_OK) == 0)
			return 0;
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		nanosleep(&ts, NULL);
	}
	return -1;
}

/* SIGTERM our child pid, wait up to 10 s, then SIGKILL it. */
static inline void bench_stop_child(pid_t pid)
{
	uint64_t end = bench_now_ns() + 10000000000ull;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		struct timespec ts = { 0, 2000000 };

		if (bench_now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		nanosleep(&ts, NULL);
	}
}

/* ------------------------------------------------------------------------- */
/* Mappings and files. */

/*
 * bench_prefault_shm() - populate this process's page tables for every
 * mapping of /dev/shm/<name> (a ring opened with be_open(): the handle is
 * opaque, so the mapping is found in /proc/self/maps).  Returns the bytes
 * populated, or -errno.
 */
static inline long bench_prefault_shm(const char *name)
{
	char line[1024], path[512];
	long total = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/dev/shm/%s", name);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char *p = strchr(line, '/');
		size_t n;

		if (!p || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		n = strlen(p);
		while (n && (p[n - 1] == '\n' || p[n - 1] == ' '))
			p[--n] = 0;
		if (strcmp(p, path))
			continue;
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
		if (madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) < 0) {
			int e = errno;

			fclose(f);
			return -e;
		}
		total += (long)(hi - lo);
	}
	fclose(f);
	return total ? total : -ENOENT;
}

static inline int bench_rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	(void)f;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* rm -rf PATH (no symlinks followed). */
static inline void bench_rm_rf(const char *path)
{
	nftw(path, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif /* BE_BENCH_H */
