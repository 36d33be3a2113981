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

/* Called for each record read back; return non-zero to stop. */
typedef int (*tu_record_fn)(const struct rec_hdr *r, const uint8_t *payload, void *arg);

/*
 * tu_read_store() - every record of <data_dir>/<store>, in order.
 * Returns the count, or -1 on damage (a corrupt batch or a torn tail).
 */
long tu_read_store(const char *data_dir, const char *store, tu_record_fn fn, void *arg);

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

#endif /* BE_TESTUTIL_H */
