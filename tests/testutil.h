/*
 * testutil.h - what the tests share: unique names, a scratch directory per
 * test run, starting and stopping a real bufferengined, reading a store
 * back from its segments, and the cleanup that check_main runs after all
 * suites (Check skips a fixture's teardown when a test fails or times
 * out, so nothing may rely on it).
 *
 * Every test run has an id (BE_TEST_RUN, set by check_main); every
 * instance a test makes is named "ck<id>x<n>", every file lives under
 * /tmp/be-test-<id>/, and every daemon started is recorded there, so
 * tu_cleanup_run() can remove all of it whatever state the tests left.
 */
#ifndef BE_TESTUTIL_H
#define BE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.h"

#ifndef BE_BIN_DIR
#define BE_BIN_DIR "build/bin"
#endif

/* The id of this test run: $BE_TEST_RUN, else set from the pid. */
const char *tu_run_id(void);

/* A fresh, unique instance name for this run. */
void tu_instance(char *out, size_t len);

/* A fresh directory under /tmp/be-test-<id>/; path into out. */
void tu_tmpdir(char *out, size_t len);

struct tu_daemon {
	pid_t pid;
	char instance[64];
	char dir[256];       /* the scratch dir: config, data/, log */
	char conf[320];
	char data_dir[320];
	char log[320];
};

/*
 * tu_daemon_config() - pick an instance and a scratch dir and write a
 * config there: [engine] with instance, data_dir and `engine_extra`,
 * then `stores` (INI text of [store ...] sections) as given.
 */
void tu_daemon_config(struct tu_daemon *d, const char *engine_extra, const char *stores);

/*
 * tu_daemon_start() - start bufferengined on d->conf (stderr to d->log)
 * and wait until store `wait_store` has a ring whose daemon_pid is the
 * new daemon (up to 10 s).  Returns 0, or -1 when it did not come up.
 */
int tu_daemon_start(struct tu_daemon *d, const char *wait_store);

/*
 * tu_daemon_start_bin() - the same with another daemon binary at path (the
 * test build BE_TEST_DIR "/bufferengined-hooks", say).  Its environment is
 * the caller's (set BE_CRASH_AT and the like before the call).
 */
int tu_daemon_start_bin(struct tu_daemon *d, const char *wait_store, const char *path);

/* tu_daemon_stop() - send sig, wait; returns the exit status, or 128+signal. */
int tu_daemon_stop(struct tu_daemon *d, int sig);

/* tu_assert_daemon_start() - tu_daemon_start(), and the test fails (with the log) when it does. */
void tu_assert_daemon_start(struct tu_daemon *d, const char *wait_store);

/*
 * tu_assert_daemon_stop() - like tu_daemon_stop(), but bounded (tu_bound(15000)):
 * the test fails unless the daemon ends with status want in time.
 */
void tu_assert_daemon_stop(struct tu_daemon *d, int sig, int want);

/* Called for each record read back; return non-zero to stop. */
typedef int (*tu_record_fn)(const struct rec_hdr *r, const uint8_t *payload, void *arg);

/*
 * tu_read_store() - every record of <data_dir>/<store>, in order.
 * Returns the count, or -1 on damage (a corrupt batch or a torn tail).
 */
long tu_read_store(const char *data_dir, const char *store, tu_record_fn fn, void *arg);

/* The payload of a counting writer: writer i writes counters 0, 1, 2... */
struct tu_wrec {
	uint32_t magic;   /* the suite's own: a record of another is foreign */
	uint32_t writer;
	uint64_t counter;
};

#define TU_WRITERS_MAX 8

/* What tu_wcheck_rec() found reading counting writers' records back. */
struct tu_wcheck {
	uint32_t magic;                  /* in: the suite's tu_wrec magic */
	uint32_t writers;                /* in: writers 0 .. writers-1 */
	pid_t pids[TU_WRITERS_MAX];      /* in: each writer's pid, 0: not checked */
	uint64_t next[TU_WRITERS_MAX];   /* the counter expected next from each writer */
	uint64_t last_seq;
	long records;
	char err[256];                   /* the first fault, "" when none */
};

/*
 * tu_wcheck_rec() - a tu_record_fn: each writer's counters must come 0, 1,
 * 2... (exactly once, in order), seqs increase, and the record's pid is
 * the writer's where pids[] says it.  The first fault goes to err and
 * stops the reading.
 */
int tu_wcheck_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg);

/*
 * tu_note_pid() / tu_forget_pid() - record a process for tu_cleanup_run()
 * to kill, and forget it once it is reaped (its pid may soon be another's).
 */
void tu_note_pid(pid_t pid);
void tu_forget_pid(pid_t pid);

/* tu_cleanup_run() - kill this run's daemons, remove its rings and files. */
void tu_cleanup_run(void);

/* tu_file_text() - read a whole (small) file into a static buffer, for messages. */
const char *tu_file_text(const char *path);

/* ------------------------------------------------------------------------
 * Time, bounded waits and child processes.
 */

/* tu_now_ms() - CLOCK_MONOTONIC in milliseconds. */
uint64_t tu_now_ms(void);

/* tu_sleep_ms() - sleep ms milliseconds (a signal may end it early). */
void tu_sleep_ms(unsigned ms);

/* tu_sleep_us() - sleep us microseconds (a signal may end it early). */
void tu_sleep_us(unsigned us);

/* tu_bound() - a bound of ms, stretched like Check's own timeouts by CK_TIMEOUT_MULTIPLIER. */
int tu_bound(int ms);

/*
 * tu_reap() - waitpid(pid) within timeout_ms (< 0: no bound), the raw status
 * into *status.  Returns 0, -1 when waitpid fails, -2 when pid did not end in
 * time (it is SIGKILLed and reaped then).
 */
int tu_reap(pid_t pid, int timeout_ms, int *status);

/*
 * tu_wait_exit() - reap pid within timeout_ms (< 0: no bound): its exit status,
 * 128 + signal, -1 when waitpid fails, -2 when it did not exit in time (killed).
 */
int tu_wait_exit(pid_t pid, int timeout_ms);

/* tu_wait_bounded() - reap pid within tu_bound(ms): its raw status, or -1 (failed, or killed). */
int tu_wait_bounded(pid_t pid, int ms);

/*
 * tu_assert_exit0() - assert that a status from tu_wait_bounded() is a clean
 * exit 0 (what names the child in the message).  Needs <check.h>.
 */
#define tu_assert_exit0(st, what)                                             \
	ck_assert_msg((st) != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,    \
		      "%s: child %s (status %d: exit %d, signal %d)", (what), \
		      (st) == -1 ? "did not finish in time" : "failed", (st), \
		      (st) != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1,     \
		      (st) != -1 && WIFSIGNALED(st) ? WTERMSIG(st) : 0)

/*
 * tu_spawn() - fork() a child that dies with the test process
 * (PR_SET_PDEATHSIG); the test fails when fork() does.  Returns as fork() does.
 */
pid_t tu_spawn(void);

/*
 * tu_run_prog() - run argv[0] (a path) with `input` on its stdin (NULL: none,
 * an empty pipe), stdout into out_path and stderr into err_path (NULL:
 * /dev/null; the same path: one file for both); the child dies with the
 * caller.  Returns what tu_wait_exit(pid, timeout_ms) returns, -1 when it
 * could not be started.  SIGPIPE is ignored from then on in the caller.
 */
int tu_run_prog(char *const argv[], const char *input, const char *out_path, const char *err_path,
		int timeout_ms);

/*
 * Checks for hot loops: Check's ck_assert_* record the location of every
 * passing assertion (a message to the runner each time), which costs more
 * than the ring operations under test.  These report only failures.  They
 * need <check.h>.
 */
#define TU_REQUIRE(c, ...)                         \
	do {                                       \
		if (!(c))                          \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)
#define TU_REQUIRE_EQ(a, b)                                                                      \
	do {                                                                                     \
		unsigned long long _ra = (unsigned long long)(a), _rb = (unsigned long long)(b); \
		if (_ra != _rb)                                                                  \
			ck_abort_msg("line %d: %s == %llu, %s == %llu", __LINE__, #a, _ra, #b,   \
				     _rb);                                                       \
	} while (0)
#define TU_REQUIRE_LE(a, b)                                                                      \
	do {                                                                                     \
		unsigned long long _ra = (unsigned long long)(a), _rb = (unsigned long long)(b); \
		if (!(_ra <= _rb))                                                               \
			ck_abort_msg("line %d: %s == %llu > %s == %llu", __LINE__, #a, _ra, #b,  \
				     _rb);                                                       \
	} while (0)

/* tu_rng_next() - xorshift64*: the next pseudo-random number of state *s (0: a fixed seed). */
uint64_t tu_rng_next(uint64_t *s);

/* ------------------------------------------------------------------------
 * Files and text.
 */

/* tu_file_size() - the size of a file, or -1 when it is not there. */
off_t tu_file_size(const char *path);

/* tu_read_text() - a whole small file into buf, NUL-terminated (cut to len - 1; "" if none). */
const char *tu_read_text(const char *path, char *buf, size_t len);

/* tu_text_from() - a file's text from byte `from` on (its last 48K when longer); static buffer. */
const char *tu_text_from(const char *path, off_t from);

/*
 * tu_log_tail() - the end of a log from byte `from`, short enough for a Check
 * message (Check drops messages over CK_MAX_MSG_SIZE, 4096 by default); static buffer.
 */
const char *tu_log_tail(const char *path, off_t from);

/* tu_has_line_with() - does text hold one line that contains both a and b? */
int tu_has_line_with(const char *text, const char *a, const char *b);

/* tu_where_is() - where a process that did not get on is (wchan, syscall): for failure messages. */
const char *tu_where_is(pid_t pid);

/* tu_rm_rf() - remove a file or a directory tree; what cannot be removed stays. */
void tu_rm_rf(const char *path);

/* ------------------------------------------------------------------------
 * Daemons and rings by hand.
 */

/*
 * tu_daemon_spawn() - start the daemon binary at path on d->conf (stdout and
 * stderr appended to d->log), with `env` ("NAME=VALUE", or NULL) added to its
 * environment, and note its pid for tu_cleanup_run().  Does not wait for it.
 * Returns the pid, or -1 when fork() failed.
 */
pid_t tu_daemon_spawn(const struct tu_daemon *d, const char *path, const char *env);

/* tu_ring_attached() - 1 when store's ring exists and names pid its running daemon, else 0. */
int tu_ring_attached(const char *instance, const char *store, pid_t pid);

struct ring_map;
struct ring_params;

/* tu_mkring() - a new ring under a fresh instance (into inst, 64 bytes); the test fails if not. */
void tu_mkring(struct ring_map *m, char *inst, const struct ring_params *p);

/* tu_rmring() - unmap and unlink a ring made by tu_mkring(). */
void tu_rmring(struct ring_map *m, const char *inst, const char *store);

#endif /* BE_TESTUTIL_H */
