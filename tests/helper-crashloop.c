/*
 * helper-crashloop.c - kill bufferengined at random moments, over and over,
 * while writer processes keep writing, then check that nothing was lost,
 * written twice or reordered (DESIGN.md, "Guarantees" 1-3).
 *
 *   helper-crashloop [--rounds N] [--writers W] [--seed S] [--daemon PATH]
 *                    [--keep] [--crash-points] [--verbose]
 *
 * One raw store with a small ring (it wraps and fills), a short flush
 * interval, sync = batch and small segments (rotation is frequent).  W
 * forked writers loop: write a record (writer id, counter), retrying the
 * SAME counter only when be_write fails (it never half-writes), and
 * be_flush every few records (errors while the daemon is down are expected
 * and counted; after a timed-out be_flush a writer writes on for a while,
 * so that the ring fills).  Each round the main process sleeps 0-50 ms
 * (rand(), seeded with --seed: print it, pass it again to replay the
 * schedule), SIGKILLs the daemon, half the time waits 0-20 ms more (one
 * round in 20: 200-300 ms, so that the ring fills and be_write times out),
 * one round in 8 starts a daemon and SIGKILLs it 0-5 ms later (mostly in
 * its recovery; the very first start too, half the time, while it creates
 * the ring), and starts a new daemon.  With --crash-points the daemon
 * is the test build (server/hooks.h) and every start but the last gets
 * BE_CRASH_AT=<random point>:<1..8>, so that it may also kill itself inside
 * a chosen window of the flush or recovery protocol.  After N rounds the
 * writers stop, each makes a final be_flush (long timeout) and reports its
 * last counter; the daemon is stopped with SIGTERM (exit 0 expected); the
 * store is read back from its segments and every writer's counters 0..last
 * must appear exactly once each, in increasing seq order, with no foreign
 * record and seqs strictly increasing over the whole store.
 *
 * The last line is the summary:
 *   crashloop: rounds R, records W, lost L, duplicated D, out of order O, seed S
 * Exit status: 0 when L = D = O = 0 and nothing else was wrong; 1 when the
 * check failed (also: foreign records, damaged segments, a writer that
 * failed, a daemon that ended on its own, did not start again after a
 * crash, or did not exit 0 on SIGTERM, error lines in the daemon log); 2
 * for bad arguments; 3 when the run could not be carried out (no daemon
 * binary, the very first start failed, out of memory); 128 + signal when
 * interrupted (SIGINT, SIGTERM, SIGHUP: writers and daemon are stopped and
 * the files removed, unless --keep).
 *
 * Files and rings are named after the test run (testutil.h).  Run alone,
 * the helper removes everything at the end unless --keep; run from a Check
 * test (BE_TEST_RUN set) it removes only its own scratch directory and
 * rings, and check_main's cleanup covers whatever a killed helper left.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define STORE "s"
#define MAX_WRITERS 32
#define WREC_MAGIC 0x504f4f4cu /* "LOOP" */
#define WRITE_TIMEOUT_MS 200
#define FLUSH_TIMEOUT_MS 20    /* be_flush within the loop: the daemon may be down */
#define FINAL_FLUSH_MS 60000
#define FLUSH_EVERY_MAX 32     /* be_flush after 1..32 records */
#define FLUSH_BACKOFF 2000     /* after a timed-out be_flush, the next after 1000..3000 */

#define CONFIG_ENGINE "shutdown_flush_timeout = 20s\nbatch_bytes = 64K\n"
#define CONFIG_STORE                                                                  \
	"[store " STORE "]\ntype = raw\ncapacity = 512K\nflush_bytes = 32K\n"         \
	"flush_interval = 5ms\non_full = block\nsync = batch\nsegment_bytes = 256K\n"

/* The payload of every record: who wrote it and its place in that writer's order. */
struct wrec {
	uint32_t magic;
	uint32_t writer;
	uint64_t counter;
};

/* What a writer reports, in memory shared with the main process. */
struct wstat {
	uint64_t written;        /* counters 0..written-1 were accepted by be_write */
	uint64_t acked;          /* counters below this were reported durable by be_flush */
	uint64_t write_timeouts; /* be_write -ETIMEDOUT (the ring full, no daemon) */
	uint64_t flush_timeouts; /* be_flush -ETIMEDOUT within the loop */
	uint64_t flushes;        /* be_flush that returned 0 */
	int final_flush;         /* the final be_flush's result */
	int error;               /* another error from be_open/be_write/be_flush */
	int done;
};

struct shared {
	int stop;
	struct wstat w[MAX_WRITERS];
};

static struct shared *sh;
static volatile pid_t alarm_victim;
static volatile sig_atomic_t interrupted;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Not tu_sleep_us(): only `interrupted` cuts it short, not any signal (SIGALRM...). */
static void sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000), (long)(us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !interrupted)
		;
}

/* ------------------------------------------------------------------------
 * Writers.
 */

static void writer_main(const char *instance, uint32_t id, unsigned seed)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = WRITE_TIMEOUT_MS };
	struct wstat *ws = &sh->w[id];
	unsigned rs = seed ^ (0x9e3779b9u * (id + 1));
	unsigned since = 0, every = 1 + (unsigned)rand_r(&rs) % FLUSH_EVERY_MAX;
	uint64_t c = 0;
	be_store *s;
	int ret;

	ret = be_open(STORE, &o, &s);
	if (ret) {
		fprintf(stderr, "crashloop: writer %u: be_open: %s\n", id, be_strerror(ret));
		__atomic_store_n(&ws->error, ret, __ATOMIC_RELAXED);
		_exit(10);
	}
	while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
		struct wrec r = { WREC_MAGIC, id, c };

		ret = be_write(s, &r, sizeof(r));
		if (ret == -ETIMEDOUT) {
			/* Nothing was written: the same counter again. */
			__atomic_fetch_add(&ws->write_timeouts, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (ret) {
			fprintf(stderr, "crashloop: writer %u: be_write #%llu: %s\n", id,
				(unsigned long long)c, be_strerror(ret));
			__atomic_store_n(&ws->error, ret, __ATOMIC_RELAXED);
			_exit(11);
		}
		c++;
		__atomic_store_n(&ws->written, c, __ATOMIC_RELEASE);
		if (++since < every)
			continue;
		since = 0;
		every = 1 + (unsigned)rand_r(&rs) % FLUSH_EVERY_MAX;
		ret = be_flush(s, FLUSH_TIMEOUT_MS);
		if (ret == 0) {
			__atomic_store_n(&ws->acked, c, __ATOMIC_RELEASE);
			__atomic_fetch_add(&ws->flushes, 1, __ATOMIC_RELAXED);
		} else if (ret == -ETIMEDOUT) {
			/* The daemon is down: write on (and fill the ring), flush later. */
			__atomic_fetch_add(&ws->flush_timeouts, 1, __ATOMIC_RELAXED);
			every = FLUSH_BACKOFF / 2 + (unsigned)rand_r(&rs) % FLUSH_BACKOFF;
		} else {
			fprintf(stderr, "crashloop: writer %u: be_flush: %s\n", id,
				be_strerror(ret));
			__atomic_store_n(&ws->error, ret, __ATOMIC_RELAXED);
			_exit(12);
		}
	}
	ret = be_flush(s, FINAL_FLUSH_MS);
	__atomic_store_n(&ws->final_flush, ret, __ATOMIC_RELAXED);
	if (ret == 0)
		__atomic_store_n(&ws->acked, c, __ATOMIC_RELEASE);
	else
		fprintf(stderr, "crashloop: writer %u: final be_flush: %s\n", id,
			be_strerror(ret));
	be_close(s);
	__atomic_store_n(&ws->done, 1, __ATOMIC_RELEASE);
	_exit(ret == 0 ? 0 : 13);
}

static pid_t spawn_writer(const char *instance, uint32_t id, unsigned seed)
{
	pid_t parent = getpid(), pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(9);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	writer_main(instance, id, seed);
	_exit(0);
}

/* ------------------------------------------------------------------------
 * Reading the store back.
 */

struct verify {
	uint32_t writers;
	uint64_t total[MAX_WRITERS];  /* what each writer says it wrote */
	uint8_t *seen[MAX_WRITERS];   /* times each counter was read, saturating */
	uint64_t next_min[MAX_WRITERS]; /* the highest counter read so far, + 1 */
	uint64_t last_seq;
	uint64_t records, duplicated, out_of_order, seq_backward, foreign, beyond;
	char first_problem[256];
};

static void problem(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	if (v->first_problem[0])
		return;
	va_start(ap, fmt);
	vsnprintf(v->first_problem, sizeof(v->first_problem), fmt, ap);
	va_end(ap);
}

static int verify_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct verify *v = arg;
	struct wrec w;

	v->records++;
	if (r->seq <= v->last_seq) {
		v->seq_backward++;
		problem(v, "record #%llu: seq %llu after seq %llu", (unsigned long long)v->records,
			(unsigned long long)r->seq, (unsigned long long)v->last_seq);
	} else {
		v->last_seq = r->seq;
	}
	if (r->type != BE_TYPE_RAW || r->len != sizeof(w)) {
		v->foreign++;
		problem(v, "record #%llu (seq %llu): type %u, len %u", (unsigned long long)v->records,
			(unsigned long long)r->seq, r->type, r->len);
		return 0;
	}
	memcpy(&w, payload, sizeof(w));
	if (w.magic != WREC_MAGIC || w.writer >= v->writers) {
		v->foreign++;
		problem(v, "record #%llu (seq %llu): foreign payload %08x/%u",
			(unsigned long long)v->records, (unsigned long long)r->seq, w.magic, w.writer);
		return 0;
	}
	if (w.counter >= v->total[w.writer]) {
		/* A counter the writer never saw accepted: a failed be_write that wrote. */
		v->beyond++;
		problem(v, "record #%llu (seq %llu): writer %u counter %llu, but it wrote only %llu",
			(unsigned long long)v->records, (unsigned long long)r->seq, w.writer,
			(unsigned long long)w.counter, (unsigned long long)v->total[w.writer]);
		return 0;
	}
	if (v->seen[w.writer][w.counter]) {
		v->duplicated++;
		problem(v, "record #%llu (seq %llu): writer %u counter %llu again",
			(unsigned long long)v->records, (unsigned long long)r->seq, w.writer,
			(unsigned long long)w.counter);
		if (v->seen[w.writer][w.counter] < 255)
			v->seen[w.writer][w.counter]++;
		return 0;
	}
	v->seen[w.writer][w.counter] = 1;
	if (w.counter + 1 < v->next_min[w.writer]) {
		v->out_of_order++;
		problem(v, "record #%llu (seq %llu): writer %u counter %llu after counter %llu",
			(unsigned long long)v->records, (unsigned long long)r->seq, w.writer,
			(unsigned long long)w.counter,
			(unsigned long long)(v->next_min[w.writer] - 1));
	} else {
		v->next_min[w.writer] = w.counter + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The daemon's log and cleanup.
 */

/* Print the log's error lines (at most 10) and return how many there are. */
static unsigned log_errors(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1100];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "] error: ") && !strstr(line, "bufferengined: error: "))
			continue;
		if (n++ < 10)
			printf("crashloop: daemon log: %s", line);
	}
	fclose(f);
	return n;
}

static unsigned log_count(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[1100];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static void print_log_tail(const char *path)
{
	const char *text = tu_file_text(path); /* its first 8K */
	size_t len = strlen(text);

	printf("--- daemon log %s (%s) ---\n%s\n", path, len >= 8191 ? "its start" : "whole",
	       text);
}

/* Only what this helper made: its scratch directory and its instance's shm objects. */
static void cleanup_own(const struct tu_daemon *d)
{
	char prefix[128], path[512];
	struct dirent *e;
	DIR *dir;

	tu_rm_rf(d->dir);
	snprintf(prefix, sizeof(prefix), RING_SHM_PREFIX "%s", d->instance);
	if ((dir = opendir(RING_SHM_DIR))) {
		while ((e = readdir(dir))) {
			size_t n = strlen(prefix);

			if (strncmp(e->d_name, prefix, n) || (e->d_name[n] && e->d_name[n] != '.'))
				continue;
			snprintf(path, sizeof(path), RING_SHM_DIR "/%s", e->d_name);
			unlink(path);
		}
		closedir(dir);
	}
}

/*
 * early_kill() - start the daemon and SIGKILL it after delay_us, without
 * waiting for it to serve the store: often in the middle of its recovery
 * (DESIGN.md: "Recovery is itself safe to crash in").  Returns 1 when it
 * had attached the ring by then, 0 when not, -1 when it had ended on its own.
 */
static int early_kill(struct tu_daemon *d, const char *path, uint64_t delay_us)
{
	struct ring_map m;
	int status, attached = 0;
	pid_t pid = tu_daemon_spawn(d, path, NULL); /* recorded for a run's cleanup */

	if (pid < 0)
		return -1;
	sleep_us(delay_us);
	if (ring_open(d->instance, STORE, RING_OPEN_RDONLY, &m) == 0) {
		attached = READ_ONCE(m.hdr->daemon_pid) == (uint32_t)pid;
		ring_unmap(&m);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	tu_forget_pid(pid);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? attached : -1;
}

/* --crash-points: the test build's crash points (server/hooks.h) a daemon may be given. */
static const char *const crash_points[] = {
	"write_done", "next_written", "before_tail", "rotate_mid", "seg_created",
	"recovery_truncated",
};
#define NPOINTS (sizeof(crash_points) / sizeof(crash_points[0]))

/* Before a start: BE_CRASH_AT=<a random point>:<1..8>, or none. */
static void pick_crash(int on)
{
	char spec[64];

	if (!on) {
		unsetenv("BE_CRASH_AT");
		return;
	}
	snprintf(spec, sizeof(spec), "%s:%d", crash_points[(unsigned)rand() % NPOINTS],
		 1 + rand() % 8);
	setenv("BE_CRASH_AT", spec, 1);
}

/*
 * start_daemon() - tu_daemon_start_bin(); with crash (--crash-points) each
 * start gets its own BE_CRASH_AT, and a daemon that killed itself at its
 * point before it served the store (its log says so) is started again, up
 * to 20 times.  Returns 0, or -1 when no daemon came up.
 */
static int start_daemon(struct tu_daemon *d, const char *path, int crash)
{
	for (int i = 0; i < 20; i++) {
		unsigned before = crash ? log_count(d->log, "test hook: crashing at") : 0;

		pick_crash(crash);
		if (tu_daemon_start_bin(d, STORE, path) == 0)
			return 0;
		if (!crash || log_count(d->log, "test hook: crashing at") == before)
			return -1;
	}
	return -1;
}

static void on_alarm(int sig)
{
	(void)sig;
	if (alarm_victim > 0)
		kill(alarm_victim, SIGKILL);
}

static void on_interrupt(int sig)
{
	interrupted = sig;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------------
 * Main.
 */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: helper-crashloop [--rounds N] [--writers W] [--seed S] [--daemon PATH]\n"
		"                        [--keep] [--crash-points] [--verbose]\n"
		"  --rounds N     SIGKILL and restart the daemon N times (default 100)\n"
		"  --writers W    writer processes, 1..%d (default 3)\n"
		"  --seed S       seed of the random sleeps (default: from the time)\n"
		"  --daemon PATH  the daemon binary (default %s)\n"
		"  --keep         keep the data directory, the log and the ring\n"
		"  --crash-points give each daemon BE_CRASH_AT=<random point>:<1..8> (the\n"
		"                 test build, default then %s)\n"
		"  --verbose      a progress line every 100 rounds (on stderr)\n"
		"Exit: 0 nothing lost, duplicated or reordered; 1 the check failed;\n"
		"      2 bad arguments; 3 the run could not be carried out.\n",
		MAX_WRITERS, BE_BIN_DIR "/bufferengined", BE_TEST_DIR "/bufferengined-hooks");
}

static int parse_ulong(const char *opt, const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr, "helper-crashloop: %s: bad value '%s' (0..%lu)\n", opt, s, max);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "writers", required_argument, NULL, 'w' },
		{ "seed", required_argument, NULL, 's' },
		{ "daemon", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "crash-points", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long rounds = 100, writers = 3, seed, v;
	const char *daemon_path = BE_BIN_DIR "/bufferengined";
	int keep = 0, verbose = 0, crash = 0, opt, in_test, fail = 0, st;
	pid_t pids[MAX_WRITERS];
	uint64_t *restart_us, t0, t_start, records_written = 0, wto = 0, fto = 0, flushes = 0;
	unsigned long done_rounds = 0;
	unsigned early_kills = 0, early_attached = 0;
	int daemon_set = 0;
	struct verify vf;
	struct tu_daemon d;
	struct sigaction sa;
	long got;
	uint64_t lost = 0, lost_acked = 0;

	seed = (unsigned long)(time(NULL) ^ ((unsigned long)getpid() << 16)) & 0xffffffffu;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (parse_ulong("--rounds", optarg, 100000000, &rounds))
				return 2;
			break;
		case 'w':
			if (parse_ulong("--writers", optarg, MAX_WRITERS, &writers) || writers < 1) {
				if (writers < 1)
					fprintf(stderr, "helper-crashloop: --writers: 1..%d\n",
						MAX_WRITERS);
				return 2;
			}
			break;
		case 's':
			if (parse_ulong("--seed", optarg, 0xffffffffu, &seed))
				return 2;
			break;
		case 'd':
			daemon_path = optarg;
			daemon_set = 1;
			break;
		case 'k':
			keep = 1;
			break;
		case 'c':
			crash = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "helper-crashloop: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (crash && !daemon_set)
		daemon_path = BE_TEST_DIR "/bufferengined-hooks";
	if (access(daemon_path, X_OK) < 0) {
		fprintf(stderr, "helper-crashloop: %s: %s (run make)\n", daemon_path,
			strerror(errno));
		return 3;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("crashloop: seed %lu, rounds %lu, writers %lu, daemon %s\n", seed, rounds, writers,
	       daemon_path);
	srand((unsigned)seed);
	in_test = getenv("BE_TEST_RUN") != NULL;
	tu_run_id();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_interrupt;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	restart_us = calloc(rounds + 1, sizeof(*restart_us));
	if (sh == MAP_FAILED || !restart_us) {
		fprintf(stderr, "helper-crashloop: out of memory\n");
		return 3;
	}
	memset(sh, 0, sizeof(*sh));

	tu_daemon_config(&d, CONFIG_ENGINE, CONFIG_STORE);
	printf("crashloop: instance %s, directory %s\n", d.instance, d.dir);
	t_start = now_us();
	/* The first start too: a daemon killed while it creates the ring (and data dir). */
	if (rand() % 2) {
		pick_crash(crash);
		if (early_kill(&d, daemon_path, (uint64_t)(rand() % 5000)) < 0) {
			printf("crashloop: the first daemon ended on its own before the early "
			       "SIGKILL\n");
			print_log_tail(d.log);
			fail = 3;
			goto out;
		}
		early_kills++;
	}
	if (start_daemon(&d, daemon_path, crash && rounds > 0)) {
		printf("crashloop: the daemon did not start\n");
		print_log_tail(d.log);
		fail = 3;
		goto out;
	}
	for (uint32_t w = 0; w < writers; w++)
		pids[w] = spawn_writer(d.instance, w, (unsigned)seed);

	for (done_rounds = 0; done_rounds < rounds; done_rounds++) {
		sleep_us((uint64_t)(rand() % 51) * 1000);
		if (interrupted)
			break;
		st = tu_daemon_stop(&d, SIGKILL);
		if (st != 128 + SIGKILL) {
			printf("crashloop: round %lu: the daemon had ended on its own: status %d\n",
			       done_rounds, st);
			print_log_tail(d.log);
			fail = 1;
			break;
		}
		/*
		 * Half the time a while with no daemon, and one round in 20 long
		 * enough (200-300 ms) that the ring fills and be_write times out.
		 */
		if (rand() % 20 == 0)
			sleep_us((uint64_t)(200 + rand() % 101) * 1000);
		else if (rand() % 2)
			sleep_us((uint64_t)(rand() % 21) * 1000);
		/* One round in 8, a daemon killed 0-5 ms after its start, in its recovery. */
		if (rand() % 8 == 0) {
			pick_crash(crash);
			st = early_kill(&d, daemon_path, (uint64_t)(rand() % 5000));
			if (st < 0) {
				printf("crashloop: round %lu: a daemon ended on its own before the "
				       "early SIGKILL\n", done_rounds);
				print_log_tail(d.log);
				fail = 1;
				break;
			}
			early_kills++;
			early_attached += (unsigned)st;
		}
		t0 = now_us();
		/* The last daemon has no crash point: it serves the final flushes. */
		if (start_daemon(&d, daemon_path, crash && done_rounds + 1 < rounds)) {
			printf("crashloop: round %lu: the daemon did not start again\n", done_rounds);
			print_log_tail(d.log);
			fail = 1;
			break;
		}
		restart_us[done_rounds] = now_us() - t0;
		if (verbose && (done_rounds + 1) % 100 == 0) {
			uint64_t n = 0;

			for (uint32_t w = 0; w < writers; w++)
				n += __atomic_load_n(&sh->w[w].written, __ATOMIC_ACQUIRE);
			fprintf(stderr, "crashloop: %lu rounds, %llu records, %.1f s\n",
				done_rounds + 1, (unsigned long long)n,
				(double)(now_us() - t_start) / 1e6);
		}
	}

	if (interrupted) {
		/* Stopped from outside: no verdict, just leave nothing behind. */
		printf("crashloop: interrupted (signal %d) after %lu rounds\n", (int)interrupted,
		       done_rounds);
		for (uint32_t w = 0; w < writers; w++) {
			kill(pids[w], SIGKILL);
			waitpid(pids[w], NULL, 0);
		}
		fail = 128 + (int)interrupted;
		goto out;
	}

	/* Stop the writers: each makes a final be_flush and reports its last counter. */
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	if (fail && d.pid <= 0 && start_daemon(&d, daemon_path, 0) == 0)
		printf("crashloop: started a daemon again for the writers' final flush\n");
	for (uint32_t w = 0; w < writers; w++) {
		st = tu_wait_exit(pids[w], FINAL_FLUSH_MS + 10000);
		if (st != 0) {
			printf("crashloop: writer %u ended with %d (10 open, 11 write, 12 flush, "
			       "13 final flush %d, -2 killed: still running)\n", w, st,
			       sh->w[w].final_flush);
			fail = fail ? fail : 1;
		}
	}
	if (d.pid > 0) {
		alarm_victim = d.pid;
		alarm(30);
		st = tu_daemon_stop(&d, SIGTERM);
		alarm(0);
		alarm_victim = 0;
		if (st != 0) {
			printf("crashloop: the daemon's exit after SIGTERM: status %d, expected 0%s\n",
			       st, st == 128 + SIGKILL ? " (killed: still running after 30 s)" : "");
			fail = fail ? fail : 1;
		}
	}

	/* Read back. */
	memset(&vf, 0, sizeof(vf));
	vf.writers = (uint32_t)writers;
	for (uint32_t w = 0; w < writers; w++) {
		vf.total[w] = sh->w[w].written;
		vf.seen[w] = calloc(vf.total[w] + 1, 1);
		if (!vf.seen[w]) {
			fprintf(stderr, "helper-crashloop: out of memory\n");
			fail = 3;
			goto out;
		}
		records_written += vf.total[w];
		wto += sh->w[w].write_timeouts;
		fto += sh->w[w].flush_timeouts;
		flushes += sh->w[w].flushes;
	}
	got = tu_read_store(d.data_dir, STORE, verify_rec, &vf);
	if (got < 0) {
		printf("crashloop: the store's segments are damaged (a corrupt batch or a torn "
		       "tail after a clean exit); %llu records read before\n",
		       (unsigned long long)vf.records);
		fail = fail ? fail : 1;
	}
	for (uint32_t w = 0; w < writers; w++) {
		uint64_t wl = 0, wla = 0;

		for (uint64_t c = 0; c < vf.total[w]; c++) {
			if (!vf.seen[w][c]) {
				if (!wl && !wla)
					printf("crashloop: writer %u: counter %llu lost (acked %s)\n",
					       w, (unsigned long long)c,
					       c < sh->w[w].acked ? "yes" : "no");
				wl++;
				wla += c < sh->w[w].acked;
			}
		}
		lost += wl;
		lost_acked += wla;
		free(vf.seen[w]);
	}
	if (vf.first_problem[0])
		printf("crashloop: first problem: %s\n", vf.first_problem);
	if (vf.foreign || vf.beyond) {
		printf("crashloop: %llu foreign records, %llu counters never accepted by be_write\n",
		       (unsigned long long)vf.foreign, (unsigned long long)vf.beyond);
		fail = fail ? fail : 1;
	}
	if (lost_acked)
		printf("crashloop: %llu of the lost records had been acknowledged by be_flush\n",
		       (unsigned long long)lost_acked);
	{
		unsigned errs = log_errors(d.log);

		if (errs) {
			printf("crashloop: %u error lines in the daemon log\n", errs);
			fail = fail ? fail : 1;
		}
		printf("crashloop: daemon log: %u 'tail moved forward', %u torn tails cut, "
		       "%u segments set aside\n", log_count(d.log, "tail moved forward"),
		       log_count(d.log, "torn tail"), log_count(d.log, "no valid batch") +
		       log_count(d.log, "removed an empty segment"));
	}
	if (done_rounds) {
		qsort(restart_us, done_rounds, sizeof(*restart_us), cmp_u64);
		printf("crashloop: restarts: median %.1f ms, max %.1f ms (until the ring is "
		       "attached, polled every 5 ms)\n", (double)restart_us[done_rounds / 2] / 1000,
		       (double)restart_us[done_rounds - 1] / 1000);
	}
	printf("crashloop: %u more daemons killed 0-5 ms after their start (%u of them had "
	       "attached the ring)\n", early_kills, early_attached);
	if (crash) {
		printf("crashloop: daemons that killed themselves at a crash point:");
		for (size_t i = 0; i < NPOINTS; i++) {
			char what[64];

			snprintf(what, sizeof(what), "crashing at %s\n", crash_points[i]);
			printf(" %s %u", crash_points[i], log_count(d.log, what));
		}
		printf("\n");
	}
	printf("crashloop: be_write timeouts %llu, be_flush timeouts %llu, be_flush ok %llu, "
	       "%.1f s\n", (unsigned long long)wto, (unsigned long long)fto,
	       (unsigned long long)flushes, (double)(now_us() - t_start) / 1e6);
	v = (unsigned long)(vf.out_of_order + vf.seq_backward);
	printf("crashloop: rounds %lu, records %llu, lost %llu, duplicated %llu, out of order %lu, "
	       "seed %lu\n", done_rounds, (unsigned long long)records_written,
	       (unsigned long long)lost, (unsigned long long)vf.duplicated, v, seed);
	if (lost || vf.duplicated || v)
		fail = fail ? fail : 1;

out:
	free(restart_us);
	if (d.pid > 0)
		tu_daemon_stop(&d, SIGKILL);
	if (keep)
		printf("crashloop: kept %s (config, data/, daemon.log) and the ring of instance %s\n",
		       d.dir, d.instance);
	else if (in_test)
		cleanup_own(&d);
	else
		tu_cleanup_run();
	return fail;
}
