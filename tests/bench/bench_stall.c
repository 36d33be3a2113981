/*
 * bench_stall.c - how long writers stall when a process holding, or waiting
 * for, a ring's lock is SIGKILLed (DESIGN.md, "The ring": a holder SIGKILLed
 * gives the next locker EOWNERDEAD at once, blocked or not).  No daemon;
 * nothing is asserted; the figures are printed.
 *
 * The benchmark creates one raw ring itself (ring_create, 256 MiB, under a
 * fresh instance name) and runs:
 *
 *   release   --reps times: a child takes the ring's lock (lock_acquire from
 *             shm/lock.h); 2 writer processes (be_open, write_timeout_ms =
 *             -1) call be_write and block on the lock (the parent waits
 *             until both sleep in futex(2), read from /proc/PID/syscall,
 *             and the lock word shows waiters); the holder reads
 *             CLOCK_MONOTONIC and unlocks: the ordinary hand-over, as the
 *             reference.  Each writer reports, through shared memory,
 *             CLOCK_MONOTONIC when its be_write returned.
 *   kill      the same, but the holder blocks in pause() and the parent
 *             reads the clock and SIGKILLs it.  Figures: from the unlock
 *             (the kill()) to the first writer's completion, to the
 *             second's, and both together: median, min, max in us.
 *   hammer    --reps times: --hammer-writers writer processes call be_write
 *             in a tight loop (write_timeout_ms --hammer-timeout, 1000 by
 *             default; each records every gap above GAP_MIN_NS between two
 *             consecutive successful appends, with both timestamps); after
 *             a random 10-30 ms a random one of them is SIGKILLed, the
 *             others go on for 20 ms.  Figure: per rep, the longest gap of
 *             the surviving writers that overlaps [kill, kill + 1 ms]; as
 *             the floor, the longest gap overlapping a 1 ms window 8 ms
 *             before the kill (scheduling noise: the writers outnumber the
 *             cores here).  Split by whether the killed writer held the lock
 *             (the ring's lock_recoveries counter moved).  The killed writer
 *             is replaced by a new process between reps, and the parent
 *             empties the ring (tail := head) with every writer idle, as
 *             bench_append does.
 *   hammer (holder)  the same, but the parent first spins (up to 100 ms)
 *             until the lock word names the victim, so that it is more
 *             often killed holding the lock.
 *
 * A be_write of a surviving hammer writer that times out on the lock is
 * reported on stderr, with the lock word's owner when it returned: a
 * writer killed while asleep in the lock's futex can take the wake-up
 * meant for the next waiter with it (glibc's robust mutex sets
 * FUTEX_WAITERS again only in the waiter that wakes; the kernel re-wakes
 * for a dead waiter only while the lock word is still 0), so the remaining
 * waiter sleeps although the lock is free: with write_timeout_ms = -1 it
 * would sleep for ever, which is why the hammer writers have a timeout.
 *
 * Run: make bench (builds $(BUILD)/bench/bench_stall), then
 *      build/bench/bench_stall [--reps N] [--hammer-writers N] [--payload BYTES]
 *                              [--hammer-timeout MS]
 * Output: CSV lines (bench.h, BENCH_CSV_COLUMNS) on stdout, a readable
 * summary and progress on stderr.  About 15 s with the defaults here.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/lock.h"
#include "shm/ring.h"
#include "tests/bench/bench.h"
#include "tests/testutil.h"

#define BENCH "stall"
#define STORE "stall"
#define MAX_HAMMER 16
#define GAP_MIN_NS 20000u        /* gaps shorter than this are not recorded */
#define MAX_GAPS 8192            /* per writer per rep */
#define WINDOW_NS 1000000u       /* "around the kill": the gap overlaps [kill, kill + 1 ms] */
#define FLOOR_BEFORE_NS 8000000u /* the floor's window starts this long before the kill */

struct opts {
	unsigned reps;
	unsigned hammer;         /* hammering writers, the victim included */
	unsigned payload;
	int hammer_timeout;      /* ms: the hammering writers' write_timeout_ms */
	uint64_t capacity;
	char instance[64];
};

static struct opts O;

/* ------------------------------------------------------------------------- */
/* Shared memory between the parent and its children. */

struct gap {
	uint64_t from, to;       /* CLOCK_MONOTONIC ns of two consecutive completions */
};

struct wslot {
	pid_t pid;
	uint32_t blocked_hint;   /* set right before be_write (kill/release runs) */
	uint64_t t_done;         /* when be_write returned */
	int32_t err;
	uint32_t ngaps;          /* hammer: gaps recorded (may exceed MAX_GAPS: wrapped) */
	uint64_t appends;
	uint32_t timeouts;       /* hammer: be_write calls that timed out on the lock */
	uint32_t timeout_owner;  /* the lock word's owner when the last one returned */
	struct gap gaps[MAX_GAPS];
};

struct ctl {
	uint32_t gen;            /* futex: bumped to start a step */
	uint32_t cmd;
	uint32_t done;           /* futex: writers through the step */
	uint32_t stop;           /* hammer: leave the loop */
	uint32_t held;           /* futex: the holder has the lock */
	uint32_t release;        /* futex: the holder may unlock (release runs) */
	uint64_t t_release;      /* the holder's clock right before unlock */
	struct wslot w[MAX_HAMMER];
};

enum { CMD_EXIT = 1, CMD_WRITE_ONE, CMD_HAMMER };

static struct ctl *C;
static struct ring_map M;
static char shm_name[RING_SHM_NAME_MAX];
static pid_t children[MAX_HAMMER + 4];

static void futex_wait_val(uint32_t *w, uint32_t val, long ns)
{
	bench_futex_wait(w, val, ns);
}

static void kill_children(void)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] > 0) {
			kill(children[i], SIGKILL);
			waitpid(children[i], NULL, 0);
			children[i] = 0;
		}
}

static void track(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] <= 0) {
			children[i] = pid;
			return;
		}
	bench_die("too many children");
}

static void untrack(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] == pid)
			children[i] = 0;
}

static void cleanup(void)
{
	kill_children();
	if (M.hdr)
		ring_unmap(&M);
	if (O.instance[0])
		ring_unlink(O.instance, STORE);
}

static void on_signal(int sig)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] > 0)
			kill(children[i], SIGKILL);
	if (O.instance[0])
		ring_unlink(O.instance, STORE);
	_exit(128 + sig);
}

/* ------------------------------------------------------------------------- */
/* Children. */

static be_store *open_writer(int timeout_ms)
{
	struct be_open_opts bo = { .instance = O.instance, .write_timeout_ms = timeout_ms };
	be_store *s = NULL;
	int ret = be_open(STORE, &bo, &s);

	if (ret) {
		fprintf(stderr, "bench_stall: writer be_open: %s\n", be_strerror(ret));
		_exit(10);
	}
	bench_prefault_shm(shm_name + 1);
	return s;
}

/* A writer: waits for a step, runs it, reports; for ever. */
static void writer_main(unsigned idx)
{
	struct wslot *ws = &C->w[idx];
	uint8_t *buf = calloc(1, O.payload ? O.payload : 1);
	uint32_t gen = load_acquire(&C->gen);
	be_store *s = open_writer(-1), *sh = open_writer(O.hammer_timeout);

	if (!buf)
		_exit(11);
	memset(buf, 'w', O.payload);
	fetch_add_release(&C->done, 1);
	bench_futex_wake(&C->done);
	for (;;) {
		uint32_t g = load_acquire(&C->gen);
		uint32_t cmd;

		if (g == gen) {
			futex_wait_val(&C->gen, g, 0);
			continue;
		}
		gen = g;
		cmd = READ_ONCE(C->cmd);
		if (cmd == CMD_EXIT)
			_exit(0);
		if (cmd == CMD_WRITE_ONE) {
			int ret;

			store_release(&ws->blocked_hint, 1);
			ret = be_write(s, buf, O.payload);
			ws->t_done = now_mono_ns();
			ws->err = ret;
		} else if (cmd == CMD_HAMMER) {
			uint64_t prev = now_mono_ns(), n = 0;
			uint32_t ng = 0, timeouts = 0;
			int ret = 0;

			while (!load_acquire(&C->stop)) {
				uint64_t t;

				ret = be_write(sh, buf, O.payload);
				t = now_mono_ns();
				if (ret == -ETIMEDOUT) {
					/* Asleep on the lock for the whole timeout: see the top. */
					struct lock_state ls;

					lock_peek(M.hdr, &ls);
					ws->timeout_owner = ls.owner_tid;
					timeouts++;
					ret = 0;
					/* No append yet: the gap so far, at least. */
					ws->gaps[ng % MAX_GAPS] = (struct gap){ prev, t };
					ng++;
					continue;
				}
				if (ret)
					break;
				if (t - prev > GAP_MIN_NS) {
					ws->gaps[ng % MAX_GAPS] = (struct gap){ prev, t };
					ng++;
				}
				prev = t;
				n++;
			}
			ws->ngaps = ng;
			ws->appends = n;
			ws->timeouts = timeouts;
			ws->err = ret;
		}
		fetch_add_release(&C->done, 1);
		bench_futex_wake(&C->done);
	}
}

static pid_t spawn_writer(unsigned idx)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(9);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		writer_main(idx);
		_exit(0);
	}
	track(pid);
	C->w[idx].pid = pid;
	return pid;
}

/* The holder: takes the lock, says so, then waits to be killed (or to unlock). */
static pid_t spawn_holder(int release)
{
	pid_t parent = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		struct deadline d = { .timeout_ms = -1 };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(9);
		if (lock_acquire(M.hdr, &d) != 0)
			_exit(2);
		store_release(&C->held, 1);
		bench_futex_wake(&C->held);
		if (!release) {
			for (;;)
				pause();
		}
		while (!load_acquire(&C->release))
			futex_wait_val(&C->release, 0, 0);
		C->t_release = now_mono_ns();
		lock_release(M.hdr);
		_exit(0);
	}
	track(pid);
	return pid;
}

/* ------------------------------------------------------------------------- */
/* The parent. */

/* Is pid asleep in futex(2)?  From /proc/PID/syscall ("202 0x..." on x86-64). */
static int in_futex(pid_t pid)
{
	char path[64], buf[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return atol(buf) == SYS_futex;
}

static void wait_count(uint32_t *word, uint32_t n)
{
	uint64_t end = bench_now_ns() + 20 * NSEC_PER_SEC;

	for (;;) {
		uint32_t v = load_acquire(word);

		if (v >= n)
			return;
		if (bench_now_ns() > end) {
			struct lock_state ls;

			lock_peek(M.hdr, &ls);
			fprintf(stderr, "bench_stall: waiting for %u reports, %u came; lock owner %u "
				"died %d waiters %d; head %llu tail %llu\n", n, v, ls.owner_tid,
				ls.owner_died, ls.waiters, (unsigned long long)M.hdr->head,
				(unsigned long long)M.hdr->tail);
			for (unsigned i = 0; i < MAX_HAMMER; i++)
				if (C->w[i].pid > 0) {
					char cmd[256];

					fprintf(stderr, "  writer %u: pid %d, in futex %d, err %d; "
						"&C->gen %p\n", i, (int)C->w[i].pid,
						in_futex(C->w[i].pid), C->w[i].err, (void *)&C->gen);
					snprintf(cmd, sizeof(cmd), "(cat /proc/%d/syscall; grep stall "
						 "/proc/%d/maps) >&2", (int)C->w[i].pid, (int)C->w[i].pid);
					if (system(cmd) < 0)
						break;
				}
			bench_die("a child did not report within 20 s");
		}
		futex_wait_val(word, v, 10 * 1000 * 1000);
	}
}

static void step(uint32_t cmd)
{
	WRITE_ONCE(C->cmd, cmd);
	fetch_add_release(&C->gen, 1);
	bench_futex_wake(&C->gen);
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

/* Empty the ring with every writer idle: tail := head (the daemon's part). */
static void drain(void)
{
	uint64_t head = load_acquire(&M.hdr->head);

	store_release(&M.hdr->tail, head);
	store_release(&M.hdr->durable_pos, head);
	store_release(&M.hdr->durable_seq, READ_ONCE(M.hdr->next_seq));
	futex_bump_wake(&M.hdr->space_gen);
}

/*
 * One kill (or release) run: holder, 2 blocked writers (slots 0 and 1),
 * then the kill; stall[0] <= stall[1] in ns.
 */
static int blocked_run(int release, double stall[2])
{
	uint64_t t0, end = bench_now_ns() + 10 * NSEC_PER_SEC;
	struct lock_state ls;
	pid_t holder;
	int status;

	WRITE_ONCE(C->held, 0);
	WRITE_ONCE(C->release, 0);
	holder = spawn_holder(release);
	wait_count(&C->held, 1);
	for (int i = 0; i < 2; i++) {
		C->w[i].blocked_hint = 0;
		C->w[i].err = 0;
		C->w[i].t_done = 0;
	}
	WRITE_ONCE(C->done, 0);
	step(CMD_WRITE_ONE);
	/* Both writers asleep on the lock. */
	for (;;) {
		int asleep = 0;

		lock_peek(M.hdr, &ls);
		for (int i = 0; i < 2; i++)
			asleep += load_acquire(&C->w[i].blocked_hint) && in_futex(C->w[i].pid) == 1;
		if (asleep == 2 && ls.waiters)
			break;
		if (bench_now_ns() > end)
			bench_die("the writers did not block on the lock (asleep %d, waiters %d)",
				  asleep, ls.waiters);
		sleep_us(200);
	}
	if (release) {
		store_release(&C->release, 1);
		bench_futex_wake(&C->release);
		wait_count(&C->done, 2);
		t0 = C->t_release;
	} else {
		t0 = now_mono_ns();
		kill(holder, SIGKILL);
		wait_count(&C->done, 2);
	}
	waitpid(holder, &status, 0);
	untrack(holder);
	for (int i = 0; i < 2; i++) {
		if (C->w[i].err) {
			fprintf(stderr, "bench_stall: writer %d: be_write: %s\n", i,
				be_strerror(C->w[i].err));
			return -1;
		}
	}
	stall[0] = (double)(C->w[0].t_done - t0);
	stall[1] = (double)(C->w[1].t_done - t0);
	if (stall[0] > stall[1]) {
		double x = stall[0];

		stall[0] = stall[1];
		stall[1] = x;
	}
	drain();
	return 0;
}

/* The longest recorded gap of a writer that overlaps [from, to]. */
static uint64_t max_gap_in(const struct wslot *ws, uint64_t from, uint64_t to)
{
	uint32_t n = ws->ngaps < MAX_GAPS ? ws->ngaps : MAX_GAPS;
	uint64_t best = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct gap *g = &ws->gaps[i];

		if (g->to >= from && g->from <= to && g->to - g->from > best)
			best = g->to - g->from;
	}
	return best;
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One hammer run: gap around the kill and the floor, in ns; *recovered: the lock was taken over. */
static int hammer_run(int targeted, double *gap, double *floor_gap, int *recovered,
		      uint64_t *appends, unsigned *stranded)
{
	unsigned n = O.hammer, victim = (unsigned)(rnd() % n);
	uint64_t rec0 = READ_ONCE(M.hdr->lock_recoveries), t_kill, g = 0, f = 0;
	int status;

	for (unsigned i = 0; i < n; i++) {
		C->w[i].ngaps = 0;
		C->w[i].err = 0;
		C->w[i].appends = 0;
		C->w[i].timeouts = 0;
	}
	WRITE_ONCE(C->stop, 0);
	WRITE_ONCE(C->done, 0);
	step(CMD_HAMMER);
	sleep_us(10000 + (unsigned)(rnd() % 20000));
	if (targeted) {
		/* Wait (up to 100 ms) until the lock word names the victim: it holds the lock. */
		uint64_t end = now_mono_ns() + 100 * NSEC_PER_MSEC;
		struct lock_state ls;

		do
			lock_peek(M.hdr, &ls);
		while (ls.owner_tid != (uint32_t)C->w[victim].pid && now_mono_ns() < end);
	}
	t_kill = now_mono_ns();
	kill(C->w[victim].pid, SIGKILL);
	waitpid(C->w[victim].pid, &status, 0);
	untrack(C->w[victim].pid);
	sleep_us(20000);
	store_release(&C->stop, 1);
	wait_count(&C->done, n - 1);
	*appends = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i == victim)
			continue;
		if (C->w[i].err) {
			fprintf(stderr, "bench_stall: hammer writer %u: be_write: %s\n", i,
				be_strerror(C->w[i].err));
			return -1;
		}
		if (C->w[i].ngaps > MAX_GAPS)
			fprintf(stderr, "bench_stall: writer %u: %u gaps, only the last %u kept\n", i,
				C->w[i].ngaps, MAX_GAPS);
		*appends += C->w[i].appends;
		if (C->w[i].timeouts) {
			(*stranded)++;
			fprintf(stderr, "bench_stall: writer %u (pid %d): %u be_write timeouts of %d ms "
				"on the lock; the lock word named tid %u when the last one returned "
				"(0: free)\n", i, (int)C->w[i].pid, C->w[i].timeouts, O.hammer_timeout,
				C->w[i].timeout_owner);
		}
		if (max_gap_in(&C->w[i], t_kill, t_kill + WINDOW_NS) > g)
			g = max_gap_in(&C->w[i], t_kill, t_kill + WINDOW_NS);
		if (max_gap_in(&C->w[i], t_kill - FLOOR_BEFORE_NS,
			       t_kill - FLOOR_BEFORE_NS + WINDOW_NS) > f)
			f = max_gap_in(&C->w[i], t_kill - FLOOR_BEFORE_NS,
				       t_kill - FLOOR_BEFORE_NS + WINDOW_NS);
	}
	*recovered = READ_ONCE(M.hdr->lock_recoveries) > rec0;
	*gap = (double)g;
	*floor_gap = (double)f;
	/* A new writer in the victim's place, then an empty ring for the next run. */
	WRITE_ONCE(C->done, 0);
	spawn_writer(victim);
	wait_count(&C->done, 1);
	drain();
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_stall [options]\n"
		"  -n, --reps N             runs of each experiment (default 50)\n"
		"  -w, --hammer-writers N   hammering writers, the killed one included (default 3)\n"
		"  -s, --payload BYTES      payload size (default 32)\n"
		"  -t, --hammer-timeout MS  the hammering writers' write_timeout_ms (default 1000;\n"
		"                           -1 may hang: see the top of the source)\n"
		"  -h, --help\n"
		"Measures how long writers stall after the holder of the ring's lock is SIGKILLed.\n"
		"CSV lines (" BENCH_CSV_COLUMNS ") on stdout, a summary on stderr.\n");
}

static void parse(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "reps", required_argument, NULL, 'n' },
		{ "hammer-writers", required_argument, NULL, 'w' },
		{ "payload", required_argument, NULL, 's' },
		{ "hammer-timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	O = (struct opts){ .reps = 50, .hammer = 3, .payload = 32, .hammer_timeout = 1000,
			   .capacity = 256u << 20 };
	while ((c = getopt_long(argc, argv, "n:w:s:t:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			O.reps = (unsigned)bench_parse_size(optarg, "--reps");
			break;
		case 'w':
			O.hammer = (unsigned)bench_parse_size(optarg, "--hammer-writers");
			break;
		case 's':
			O.payload = (unsigned)bench_parse_size(optarg, "--payload");
			break;
		case 't':
			O.hammer_timeout = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (O.reps < 1 || O.reps > 10000 || O.hammer < 2 || O.hammer > MAX_HAMMER ||
	    O.payload > 4096 || O.hammer_timeout < -1)
		bench_die("--reps 1..10000, --hammer-writers 2..%d, --payload 0..4096", MAX_HAMMER);
}

static void emit(const char *metric, unsigned writers, double *v, unsigned n, const char *note,
		 const char *human)
{
	struct bench_stat s;

	for (unsigned i = 0; i < n; i++)
		v[i] /= 1000.0; /* ns -> us */
	s = bench_stat_of(v, n);
	bench_emit(BENCH, "bufferengine", writers, O.payload, metric, "us", s, note);
	fprintf(stderr, "  %-46s median %9.1f us   min %9.1f us   max %9.1f us   (%u runs)\n", human,
		s.median, s.min, s.max, s.runs);
}

int main(int argc, char **argv)
{
	struct ring_params p = { 0 };
	double *first, *second, *both, *gaps, *floors, *gaps_rec, *gaps_free;
	int ret;

	parse(argc, argv);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	tu_instance(O.instance, sizeof(O.instance));
	if (ring_shm_name(shm_name, sizeof(shm_name), O.instance, STORE))
		bench_die("bad instance name %s", O.instance);
	p.store = STORE;
	p.capacity = O.capacity;
	p.store_type = BE_TYPE_RAW;
	p.on_full = RING_ON_FULL_BLOCK;
	p.first_seq = 1;
	p.flush_bytes = O.capacity; /* no doorbell: nobody listens */
	p.mode = 0600;
	ret = ring_create(O.instance, &p, &M);
	if (ret)
		bench_die("ring_create: %s", strerror(-ret));
	atexit(cleanup);
	C = mmap(NULL, sizeof(*C), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (C == MAP_FAILED)
		bench_die("mmap: %s", strerror(errno));
	memset(C, 0, sizeof(*C));

	first = calloc(O.reps, sizeof(double));
	second = calloc(O.reps, sizeof(double));
	both = calloc(2 * (size_t)O.reps, sizeof(double));
	gaps = calloc(O.reps, sizeof(double));
	floors = calloc(O.reps, sizeof(double));
	gaps_rec = calloc(O.reps, sizeof(double));
	gaps_free = calloc(O.reps, sizeof(double));
	if (!first || !second || !both || !gaps || !floors || !gaps_rec || !gaps_free)
		bench_die("out of memory");

	fprintf(stderr, "bench_stall: %u reps, payload %u bytes, ring %s (%llu MiB), %ld CPUs\n",
		O.reps, O.payload, shm_name, (unsigned long long)(O.capacity >> 20),
		sysconf(_SC_NPROCESSORS_ONLN));

	/* The two blocked writers. */
	WRITE_ONCE(C->done, 0);
	spawn_writer(0);
	spawn_writer(1);
	wait_count(&C->done, 2);

	for (int release = 1; release >= 0; release--) {
		for (unsigned r = 0; r < O.reps; r++) {
			double st[2];

			if (blocked_run(release, st))
				bench_die("run %u failed", r);
			first[r] = st[0];
			second[r] = st[1];
			both[2 * r] = st[0];
			both[2 * r + 1] = st[1];
		}
		fprintf(stderr, "%s: a holder with 2 writers blocked on the lock (timeout -1)\n",
			release ? "release" : "kill");
		if (release) {
			emit("release_to_first_write", 2, first, O.reps,
			     "unlock by a live holder -> first blocked be_write returns",
			     "unlock -> first writer's be_write returns");
			emit("release_to_second_write", 2, second, O.reps,
			     "unlock by a live holder -> second blocked be_write returns",
			     "unlock -> second writer's be_write returns");
		} else {
			emit("kill_to_first_write", 2, first, O.reps,
			     "SIGKILL of the holder -> first blocked be_write returns",
			     "kill() -> first writer's be_write returns");
			emit("kill_to_second_write", 2, second, O.reps,
			     "SIGKILL of the holder -> second blocked be_write returns",
			     "kill() -> second writer's be_write returns");
			emit("kill_to_write_any", 2, both, 2 * O.reps,
			     "SIGKILL of the holder -> each blocked be_write returns",
			     "kill() -> each writer's be_write returns");
		}
	}

	/* Hammering writers: slots 0..hammer-1 (0 and 1 already run). */
	WRITE_ONCE(C->done, 0);
	for (unsigned i = 2; i < O.hammer; i++)
		spawn_writer(i);
	wait_count(&C->done, O.hammer - 2);
	for (int targeted = 0; targeted <= 1; targeted++) {
		unsigned nrec = 0, nfree = 0, stranded = 0;
		uint64_t appends_total = 0;
		char what[64];

		for (unsigned r = 0; r < O.reps; r++) {
			double g, f;
			int rec;
			uint64_t ap;

			if (hammer_run(targeted, &g, &f, &rec, &ap, &stranded))
				bench_die("hammer run %u failed", r);
			gaps[r] = g;
			floors[r] = f;
			appends_total += ap;
			if (rec)
				gaps_rec[nrec++] = g;
			else
				gaps_free[nfree++] = g;
		}
		fprintf(stderr, "hammer%s: %u writers in a tight be_write loop, a random one "
			"SIGKILLed%s (it held the lock %u times of %u); %.1f M appends by the "
			"survivors; %u writers timed out on the lock\n", targeted ? " (holder)" : "",
			O.hammer, targeted ? " when the lock word names it" : "", nrec, O.reps,
			(double)appends_total / 1e6, stranded);
		snprintf(what, sizeof(what), "hammer%s_kill_max_gap", targeted ? "_holder" : "");
		emit(what, O.hammer, gaps, O.reps,
		     targeted ? "victim killed when the lock word names it; longest survivor gap "
				"overlapping [kill; kill+1ms]"
			      : "random victim; longest gap between appends of a surviving writer "
				"overlapping [kill; kill+1ms]",
		     "longest survivor gap around the kill");
		if (nrec) {
			snprintf(what, sizeof(what), "hammer%s_kill_max_gap_lock_held",
				 targeted ? "_holder" : "");
			emit(what, O.hammer, gaps_rec, nrec,
			     "the same; runs where the killed writer held the lock (lock_recoveries)",
			     "  ...when the killed writer held the lock");
		}
		if (nfree) {
			snprintf(what, sizeof(what), "hammer%s_kill_max_gap_lock_free",
				 targeted ? "_holder" : "");
			emit(what, O.hammer, gaps_free, nfree,
			     "the same; runs where the killed writer did not hold the lock",
			     "  ...when it did not");
		}
		snprintf(what, sizeof(what), "hammer%s_floor_max_gap", targeted ? "_holder" : "");
		emit(what, O.hammer, floors, O.reps,
		     "longest gap overlapping a 1 ms window 8 ms before the kill (scheduling noise)",
		     "floor: longest gap in a 1 ms window, no kill");
	}

	step(CMD_EXIT);
	for (unsigned i = 0; i < O.hammer; i++) {
		if (C->w[i].pid > 0) {
			waitpid(C->w[i].pid, NULL, 0);
			untrack(C->w[i].pid);
		}
	}
	return 0;
}
