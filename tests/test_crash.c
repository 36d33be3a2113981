/*
 * test_crash.c - the daemon killed on purpose in each window of its flush and
 * recovery protocols (DESIGN.md, "Recovery at start" and "Guarantees" 1-3),
 * and killed at random moments over and over (helper-crashloop).
 *
 * Each crash-point test starts the test build of the daemon
 * (BE_TEST_DIR/bufferengined-hooks, server/hooks.h) with BE_CRASH_AT=POINT:N,
 * so that it SIGKILLs itself the Nth time it reaches POINT while writers
 * write (writer id, counter) records and be_flush; asserts that it died by
 * SIGKILL at that point; checks that every record a be_flush acknowledged
 * before the crash is already in the segments; starts the real daemon again;
 * lets the writers finish (their final be_flush must succeed); stops it with
 * SIGTERM (exit 0); and reads the store back: every counter of every writer
 * exactly once, in order, seqs strictly increasing.
 *
 * Every wait is bounded (scaled by CK_TIMEOUT_MULTIPLIER for sanitized builds)
 * and every failure message carries the daemon's log.  Writers are forked
 * children that die with the test process (PR_SET_PDEATHSIG); every daemon
 * started here is recorded for check_main's cleanup.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/segment.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define HOOKS_DAEMON BE_TEST_DIR "/bufferengined-hooks"
#define CRASHLOOP BE_TEST_DIR "/helper-crashloop"

#define LOGFMT "\n--- daemon log %s ---\n%s"
#define LOGARGS(d) (d)->log, tu_file_text((d)->log)

/* ------------------------------------------------------------------------
 * Files.
 */

/* Its size, 0 when it is not there: an offset into its text (tu_file_text() + at). */
static long file_size(const char *path)
{
	off_t size = tu_file_size(path);

	return size > 0 ? (long)size : 0;
}

/* ------------------------------------------------------------------------
 * The test build of the daemon.
 */

/* Start bufferengined-hooks on d->conf with BE_CRASH_AT=crash_at (stderr to d->log). */
static pid_t start_hooks(struct tu_daemon *d, const char *crash_at)
{
	char env[128];
	pid_t pid;

	snprintf(env, sizeof(env), "BE_CRASH_AT=%s", crash_at);
	pid = tu_daemon_spawn(d, HOOKS_DAEMON, env);
	ck_assert_int_ge(pid, 0);
	return pid;
}

/*
 * wait_hooks_attached() - until the hooks daemon serves store (return 1) or
 * has ended (return 0, its status in *status: exit code or 128 + signal).
 */
static int wait_hooks_attached(struct tu_daemon *d, pid_t pid, const char *store, int *status)
{
	uint64_t end = tu_now_ms() + (uint64_t)tu_bound(10000);

	for (;;) {
		int ws;

		if (waitpid(pid, &ws, WNOHANG) == pid) {
			tu_forget_pid(pid);
			*status = WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
			return 0;
		}
		if (tu_ring_attached(d->instance, store, pid))
			return 1;
		ck_assert_msg(tu_now_ms() < end,
			      "bufferengined-hooks neither served store %s nor ended "
			      "in %d ms" LOGFMT,
			      store, tu_bound(10000), LOGARGS(d));
		tu_sleep_ms(2);
	}
}

/* Wait for the hooks daemon to kill itself at crash_at: status 128 + SIGKILL, and it says so. */
static void assert_hooks_crashed(struct tu_daemon *d, pid_t pid, const char *point, int timeout)
{
	char want[128];
	int st = tu_wait_exit(pid, timeout);

	tu_forget_pid(pid);
	ck_assert_msg(st == 128 + SIGKILL,
		      "bufferengined-hooks (BE_CRASH_AT=%s): status %d, expected %d (SIGKILL at "
		      "the crash point; -2: still running after %d ms, so the point was never "
		      "reached that often)" LOGFMT, point, st, 128 + SIGKILL, timeout, LOGARGS(d));
	snprintf(want, sizeof(want), "test hook: crashing at %s\n", point);
	ck_assert_msg(strstr(tu_file_text(d->log), want) != NULL,
		      "bufferengined-hooks died by SIGKILL but does not say \"%s\"" LOGFMT, want,
		      LOGARGS(d));
}

/* ------------------------------------------------------------------------
 * Writers: (writer id, counter) records; what they did, in shared memory.
 */

#define WREC_MAGIC 0x48535243u /* "CRSH" */
#define MAX_WRITERS 4

struct wstat {
	uint64_t written;  /* counters 0..written-1 were accepted by be_write */
	uint64_t acked;    /* counters below this were reported durable by be_flush */
	uint64_t write_timeouts, flush_timeouts;
};

static struct wstat *wstats; /* MAX_WRITERS of them, shared with forked writers */

static void wstats_map(void)
{
	wstats = mmap(NULL, sizeof(struct wstat) * MAX_WRITERS, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(wstats != MAP_FAILED);
	memset(wstats, 0, sizeof(struct wstat) * MAX_WRITERS);
}

static uint64_t acked_of(uint32_t w)
{
	return __atomic_load_n(&wstats[w].acked, __ATOMIC_ACQUIRE);
}

/* Write counter c as writer id, retrying the same counter while be_write times out. */
static int write_one(be_store *s, uint32_t id, uint64_t c)
{
	struct tu_wrec r = { WREC_MAGIC, id, c };
	uint64_t end = tu_now_ms() + (uint64_t)tu_bound(20000);
	int ret;

	while ((ret = be_write(s, &r, sizeof(r))) == -ETIMEDOUT && tu_now_ms() < end)
		__atomic_fetch_add(&wstats[id].write_timeouts, 1, __ATOMIC_RELAXED);
	if (ret == 0)
		__atomic_store_n(&wstats[id].written, c + 1, __ATOMIC_RELEASE);
	return ret;
}

/*
 * spawn_writer() - a child that writes counters 0..n-1 as writer id, be_flush()es
 * (short timeout, the daemon may be dead) every flush_every records, then
 * be_flush()es with a long timeout and exits 0; on an error it says which on
 * stderr and exits 10 (open), 11 (write), 12 (flush), 13 (final flush).
 */
static pid_t spawn_writer(const char *instance, const char *store, uint32_t id, uint64_t n,
			  unsigned flush_every)
{
	struct be_open_opts o = { .instance = instance,
				  .write_timeout_ms = 200,
				  .open_timeout_ms = tu_bound(5000) };
	pid_t pid = tu_spawn();
	be_store *s;
	int ret;

	if (pid != 0)
		return pid;
	ret = be_open(store, &o, &s);
	if (ret) {
		fprintf(stderr, "writer %u: be_open: %s\n", id, be_strerror(ret));
		_exit(10);
	}
	for (uint64_t c = 0; c < n; c++) {
		ret = write_one(s, id, c);
		if (ret) {
			fprintf(stderr, "writer %u: be_write #%llu: %s\n", id, (unsigned long long)c,
				be_strerror(ret));
			_exit(11);
		}
		if ((c + 1) % flush_every)
			continue;
		ret = be_flush(s, 50);
		if (ret == 0)
			__atomic_store_n(&wstats[id].acked, c + 1, __ATOMIC_RELEASE);
		else if (ret == -ETIMEDOUT)
			__atomic_fetch_add(&wstats[id].flush_timeouts, 1, __ATOMIC_RELAXED);
		else {
			fprintf(stderr, "writer %u: be_flush: %s\n", id, be_strerror(ret));
			_exit(12);
		}
	}
	ret = be_flush(s, tu_bound(20000));
	if (ret) {
		fprintf(stderr, "writer %u: final be_flush: %s\n", id, be_strerror(ret));
		_exit(13);
	}
	__atomic_store_n(&wstats[id].acked, n, __ATOMIC_RELEASE);
	be_close(s);
	_exit(0);
}

static void assert_writers_exit(struct tu_daemon *d, const pid_t *pids, uint32_t n, int timeout)
{
	for (uint32_t w = 0; w < n; w++) {
		int st = tu_wait_exit(pids[w], timeout);

		ck_assert_msg(st == 0,
			      "writer %u (pid %d) ended with %d (10 open, 11 write, 12 flush, "
			      "13 final flush, -2 still running after %d ms)" LOGFMT,
			      w, (int)pids[w], st, timeout, LOGARGS(d));
	}
}

/* ------------------------------------------------------------------------
 * Reading back.
 */

/*
 * Read the store back: n records of each writer, each once, in order, and
 * (implied, but said) every record a be_flush acknowledged.
 */
static void assert_read_back(struct tu_daemon *d, const char *store, uint32_t writers, uint64_t n)
{
	struct tu_wcheck c = { .magic = WREC_MAGIC, .writers = writers };
	long got = tu_read_store(d->data_dir, store, tu_wcheck_rec, &c);

	ck_assert_msg(c.err[0] == 0, "%s: %s" LOGFMT, store, c.err, LOGARGS(d));
	ck_assert_msg(got == (long)(n * writers),
		      "%s: read back %ld records (-1: damage), expected %llu" LOGFMT, store, got,
		      (unsigned long long)(n * writers), LOGARGS(d));
	for (uint32_t w = 0; w < writers; w++) {
		ck_assert_msg(c.next[w] >= acked_of(w),
			      "writer %u: %llu records read back, but be_flush acknowledged %llu"
			      LOGFMT, w, (unsigned long long)c.next[w],
			      (unsigned long long)acked_of(w), LOGARGS(d));
		ck_assert_msg(c.next[w] == n, "writer %u: %llu records read back, expected %llu"
			      LOGFMT, w, (unsigned long long)c.next[w], (unsigned long long)n,
			      LOGARGS(d));
	}
}

/*
 * Right after a crash, before any recovery: the valid batches on disk (a torn
 * tail or a set-aside file is fine here) must already hold every record a
 * be_flush acknowledged (Guarantee 1), each at most once.
 */
struct disk_seen {
	uint32_t writers;
	uint64_t n;
	uint8_t *seen[MAX_WRITERS];
	char err[256];
};

static int disk_batch(const struct seg_batch_ref *b, void *arg)
{
	struct disk_seen *ds = arg;
	uint64_t off = 0;

	while (off < b->hdr->length) {
		const struct rec_hdr *r = (const struct rec_hdr *)(b->records + off);
		struct tu_wrec w;

		off += rec_size(r->len);
		if (r->len != sizeof(w))
			continue;
		memcpy(&w, (const uint8_t *)r + sizeof(*r), sizeof(w));
		if (w.magic != WREC_MAGIC || w.writer >= ds->writers || w.counter >= ds->n)
			continue;
		if (ds->seen[w.writer][w.counter]++ && !ds->err[0])
			snprintf(ds->err, sizeof(ds->err), "writer %u counter %llu twice on disk",
				 w.writer, (unsigned long long)w.counter);
	}
	return 0;
}

static void assert_acked_on_disk(struct tu_daemon *d, const char *store, uint32_t writers,
				 uint64_t n, const uint64_t *acked)
{
	struct disk_seen ds = { .writers = writers, .n = n };
	char path[512];
	uint64_t *seqs = NULL;
	int dirfd, nseg;

	for (uint32_t w = 0; w < writers; w++) {
		ds.seen[w] = calloc(n ? n : 1, 1);
		ck_assert(ds.seen[w] != NULL);
	}
	snprintf(path, sizeof(path), "%s/%s", d->data_dir, store);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_msg(dirfd >= 0, "%s: %s", path, strerror(errno));
	nseg = seg_list(dirfd, &seqs);
	ck_assert_int_ge(nseg, 0);
	for (int i = 0; i < nseg; i++) {
		struct seg_scan_result r;
		char name[SEG_NAME_LEN + 1];
		int fd;

		seg_name(name, seqs[i]);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		ck_assert_msg(fd >= 0, "%s/%s: %s", path, name, strerror(errno));
		seg_scan(fd, &r, disk_batch, NULL, &ds);
		close(fd);
	}
	free(seqs);
	close(dirfd);
	ck_assert_msg(ds.err[0] == 0, "after the crash: %s" LOGFMT, ds.err, LOGARGS(d));
	for (uint32_t w = 0; w < writers; w++) {
		for (uint64_t c = 0; c < acked[w]; c++)
			ck_assert_msg(ds.seen[w][c], "after the crash, before any restart: writer %u "
				      "counter %llu is not on disk, but be_flush acknowledged "
				      "counters 0..%llu" LOGFMT, w, (unsigned long long)c,
				      (unsigned long long)(acked[w] - 1), LOGARGS(d));
		free(ds.seen[w]);
	}
}

/* ------------------------------------------------------------------------
 * 1. one test per crash point, with forked writers.
 */

#define CRASH_WRITERS 2
#define CRASH_RECORDS 15000 /* per writer: 15,000 x 48 bytes, ~700K each */

#define STORE_CRASH(segment_bytes)                                                      \
	"[store s]\ntype = raw\ncapacity = 1M\nflush_bytes = 32K\nflush_interval = 10ms\n" \
	"on_full = block\nsync = batch\nsegment_bytes = " segment_bytes "\n"

/*
 * crash_run() - start bufferengined-hooks with BE_CRASH_AT=point:n, let the
 * writers run into it, check the disk right after the crash, restart with
 * the real daemon, let the writers finish, read back.  want_log: a text the
 * restarted daemon must log (NULL: none).
 */
static void crash_run(const char *point, unsigned n, const char *stores, const char *want_log)
{
	struct tu_daemon d;
	pid_t hooks, pids[CRASH_WRITERS];
	uint64_t acked[CRASH_WRITERS];
	char spec[64];
	long log_at;
	int st;

	wstats_map();
	tu_daemon_config(&d, "shutdown_flush_timeout = 10s\nbatch_bytes = 64K", stores);
	snprintf(spec, sizeof(spec), "%s:%u", point, n);
	hooks = start_hooks(&d, spec);
	ck_assert_msg(wait_hooks_attached(&d, hooks, "s", &st) == 1,
		      "bufferengined-hooks ended (status %d) before it served the store" LOGFMT, st,
		      LOGARGS(&d));
	for (uint32_t w = 0; w < CRASH_WRITERS; w++)
		pids[w] = spawn_writer(d.instance, "s", w, CRASH_RECORDS, 3 + 5 * w);

	assert_hooks_crashed(&d, hooks, point, tu_bound(15000));
	/* The writers go on: they fill the ring while no daemon runs. */
	for (uint32_t w = 0; w < CRASH_WRITERS; w++)
		acked[w] = acked_of(w);
	assert_acked_on_disk(&d, "s", CRASH_WRITERS, CRASH_RECORDS, acked);
	for (uint32_t w = 0; w < CRASH_WRITERS; w++)
		ck_assert_msg(__atomic_load_n(&wstats[w].written, __ATOMIC_ACQUIRE) < CRASH_RECORDS,
			      "writer %u had finished before the crash at %s: it did not land "
			      "mid-run" LOGFMT, w, spec, LOGARGS(&d));

	log_at = file_size(d.log);
	tu_assert_daemon_start(&d, "s");
	assert_writers_exit(&d, pids, CRASH_WRITERS, tu_bound(30000));
	tu_assert_daemon_stop(&d, SIGTERM, 0);
	if (want_log)
		ck_assert_msg(strstr(tu_file_text(d.log) + log_at, want_log) != NULL,
			      "the restart after a crash at %s does not log \"%s\"" LOGFMT, spec,
			      want_log, LOGARGS(&d));
	assert_read_back(&d, "s", CRASH_WRITERS, CRASH_RECORDS);
	if (getenv("BE_VERBOSE"))
		printf("crash %s: acked at the crash %llu+%llu; be_write timeouts %llu+%llu\n",
		       spec, (unsigned long long)acked[0], (unsigned long long)acked[1],
		       (unsigned long long)wstats[0].write_timeouts,
		       (unsigned long long)wstats[1].write_timeouts);
}

/* A batch write completed, its linked fdatasync not yet. */
START_TEST(test_crash_write_done)
{
	crash_run("write_done", 3, STORE_CRASH("1M"), NULL);
}
END_TEST

/*
 * The next batch written behind one whose fdatasync still runs: the restart
 * finds both on disk (the first one whole, as the next one starts only then)
 * and takes neither twice.  A next batch needs flush_bytes behind the one in
 * flight: 100 bytes here, against the writers' be_flush every few records.
 */
START_TEST(test_crash_next_written)
{
	crash_run("next_written", 3,
		  "[store s]\ntype = raw\ncapacity = 1M\nflush_bytes = 100\nflush_interval = 10ms\n"
		  "on_full = block\nsync = batch\nsegment_bytes = 1M\n",
		  NULL);
}
END_TEST

/*
 * Write and sync done, the tail not yet moved: the restart finds the batch on
 * disk and moves the tail forward instead of writing it again.
 */
START_TEST(test_crash_before_tail)
{
	crash_run("before_tail", 3, STORE_CRASH("1M"), "tail moved forward");
}
END_TEST

/* The old segment synced and closed, the new one not yet created. */
START_TEST(test_crash_rotate_mid)
{
	crash_run("rotate_mid", 3, STORE_CRASH("64K"), NULL);
}
END_TEST

/* A new segment created with its header synced, the directory not yet. */
START_TEST(test_crash_seg_created)
{
	crash_run("seg_created", 3, STORE_CRASH("64K"), NULL);
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. final_flush: SIGTERM, and the final flush dies in its second batch.
 * Two writers in the test process; the daemon does not flush on its own
 * (long interval, threshold = the ring), so the final flush has four batches
 * of 64K to write.
 */

static be_store *open_store(struct tu_daemon *d, const char *store)
{
	struct be_open_opts o = { .instance = d->instance, .write_timeout_ms = 200 };
	be_store *s = NULL;
	int ret = be_open(store, &o, &s);

	ck_assert_msg(ret == 0, "be_open(%s, %s): %s" LOGFMT, d->instance, store,
		      be_strerror(ret), LOGARGS(d));
	return s;
}

/* Writers 0 and 1 (one handle each) write counters [from, to), interleaved. */
static void write_both(struct tu_daemon *d, be_store **s, uint64_t from, uint64_t to)
{
	for (uint64_t c = from; c < to; c++) {
		for (uint32_t w = 0; w < 2; w++) {
			int ret = write_one(s[w], w, c);

			ck_assert_msg(ret == 0, "writer %u: be_write #%llu: %s" LOGFMT, w,
				      (unsigned long long)c, be_strerror(ret), LOGARGS(d));
		}
	}
}

static void flush_both(struct tu_daemon *d, be_store **s, uint64_t upto)
{
	for (uint32_t w = 0; w < 2; w++) {
		int ret = be_flush(s[w], tu_bound(5000));

		ck_assert_msg(ret == 0, "writer %u: be_flush: %s" LOGFMT, w, be_strerror(ret),
			      LOGARGS(d));
		__atomic_store_n(&wstats[w].acked, upto, __ATOMIC_RELEASE);
	}
}

START_TEST(test_crash_final_flush)
{
	const uint64_t n1 = 1000, n2 = 3500, n3 = 4500; /* phase 2: 2 x 2500 x 48 = 240K */
	struct tu_daemon d;
	be_store *s[2];
	uint64_t acked[2];
	long log_at;
	pid_t hooks;
	int st;

	wstats_map();
	tu_daemon_config(&d, "shutdown_flush_timeout = 10s\nbatch_bytes = 64K",
			 "[store s]\ntype = raw\ncapacity = 1M\nflush_bytes = 1M\n"
			 "flush_interval = 60s\nsync = batch\nsegment_bytes = 1M\n");
	hooks = start_hooks(&d, "final_flush:2");
	ck_assert_msg(wait_hooks_attached(&d, hooks, "s", &st) == 1,
		      "bufferengined-hooks ended (status %d) before it served the store" LOGFMT, st,
		      LOGARGS(&d));
	s[0] = open_store(&d, "s");
	s[1] = open_store(&d, "s");
	write_both(&d, s, 0, n1);
	flush_both(&d, s, n1);
	/* Not flushed: at SIGTERM the final flush has 240K to write, in 64K batches. */
	write_both(&d, s, n1, n2);
	kill(hooks, SIGTERM);
	assert_hooks_crashed(&d, hooks, "final_flush", tu_bound(10000));
	acked[0] = acked_of(0);
	acked[1] = acked_of(1);
	assert_acked_on_disk(&d, "s", 2, n3, acked);

	/* Written while no daemon runs, then a real one takes over. */
	write_both(&d, s, n2, n2 + 100);
	log_at = file_size(d.log);
	tu_assert_daemon_start(&d, "s");
	write_both(&d, s, n2 + 100, n3);
	flush_both(&d, s, n3);
	ck_assert_int_eq(be_close(s[0]), 0);
	ck_assert_int_eq(be_close(s[1]), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
	/* The batch that died was written and synced: the restart must not write it again. */
	ck_assert_msg(strstr(tu_file_text(d.log) + log_at, "tail moved forward") != NULL,
		      "the restart after a crash in the final flush does not log \"tail moved "
		      "forward\"" LOGFMT, LOGARGS(&d));
	assert_read_back(&d, "s", 2, n3);
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. recovery_truncated: a torn tail (garbage after the last batch of the
 * newest segment), a recovery that dies right after cutting it, and a
 * recovery of that recovery.
 */

/* The newest segment of data_dir/store, into path. */
static void newest_segment(struct tu_daemon *d, const char *store, char *path, size_t len)
{
	char dir[512], name[SEG_NAME_LEN + 1];
	uint64_t *seqs = NULL;
	int dirfd, n;

	snprintf(dir, sizeof(dir), "%s/%s", d->data_dir, store);
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_msg(dirfd >= 0, "%s: %s", dir, strerror(errno));
	n = seg_list(dirfd, &seqs);
	close(dirfd);
	ck_assert_msg(n > 0, "%s: no segment (%d)" LOGFMT, dir, n, LOGARGS(d));
	seg_name(name, seqs[n - 1]);
	free(seqs);
	snprintf(path, len, "%s/%s", dir, name);
}

START_TEST(test_crash_recovery_truncated)
{
	const uint64_t n1 = 3000, n2 = 4000, n3 = 5000;
	struct tu_daemon d;
	char seg[600];
	uint8_t junk[4096];
	be_store *s[2];
	uint64_t acked[2];
	long size, log_at;
	pid_t hooks;
	int fd, st;

	wstats_map();
	tu_daemon_config(&d, "shutdown_flush_timeout = 10s",
			 STORE_CRASH("1M"));
	tu_assert_daemon_start(&d, "s");
	s[0] = open_store(&d, "s");
	s[1] = open_store(&d, "s");
	write_both(&d, s, 0, n1);
	flush_both(&d, s, n1);
	tu_assert_daemon_stop(&d, SIGKILL, 128 + SIGKILL);
	/* Records that only the ring holds, for the next daemon. */
	write_both(&d, s, n1, n2);

	/* A torn tail: a power loss can leave a full-length batch of garbage. */
	newest_segment(&d, "s", seg, sizeof(seg));
	size = file_size(seg);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0xa5 ^ (i * 131));
	fd = open(seg, O_WRONLY | O_APPEND | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s: %s", seg, strerror(errno));
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);

	hooks = start_hooks(&d, "recovery_truncated");
	ck_assert_msg(wait_hooks_attached(&d, hooks, "s", &st) == 0,
		      "bufferengined-hooks served the store: its recovery did not cut the torn "
		      "tail" LOGFMT, LOGARGS(&d));
	ck_assert_msg(st == 128 + SIGKILL, "bufferengined-hooks (BE_CRASH_AT=recovery_truncated): "
		      "status %d, expected %d" LOGFMT, st, 128 + SIGKILL, LOGARGS(&d));
	ck_assert_msg(strstr(tu_file_text(d.log), "test hook: crashing at recovery_truncated\n"),
		      "bufferengined-hooks died by SIGKILL but not at recovery_truncated" LOGFMT,
		      LOGARGS(&d));
	ck_assert_msg(strstr(tu_file_text(d.log), "torn tail of 4096 bytes"),
		      "the recovery does not report the 4096 bytes of torn tail" LOGFMT, LOGARGS(&d));
	ck_assert_msg(file_size(seg) == size, "%s: %ld bytes after the cut, %ld before the "
		      "garbage" LOGFMT, seg, file_size(seg), size, LOGARGS(&d));
	acked[0] = acked_of(0);
	acked[1] = acked_of(1);
	assert_acked_on_disk(&d, "s", 2, n3, acked);

	/* The recovery of the recovery: a real daemon, and nothing torn is left. */
	log_at = file_size(d.log);
	tu_assert_daemon_start(&d, "s");
	write_both(&d, s, n2, n3);
	flush_both(&d, s, n3);
	ck_assert_int_eq(be_close(s[0]), 0);
	ck_assert_int_eq(be_close(s[1]), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
	ck_assert_msg(strstr(tu_file_text(d.log) + log_at, "torn tail") == NULL,
		      "the second recovery found a torn tail again" LOGFMT, LOGARGS(&d));
	assert_read_back(&d, "s", 2, n3);
}
END_TEST

/* ------------------------------------------------------------------------
 * 4. helper-crashloop --rounds 50: random SIGKILLs of the real daemon.
 */

START_TEST(test_crashloop_50)
{
	static char out[1 << 16];
	char *argv[] = { CRASHLOOP, "--rounds", "50", NULL };
	size_t used = 0;
	int p[2], st;
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = tu_spawn();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	/* Its output, up to the end (bounded by Check's timeout), keeping the last 64K. */
	for (;;) {
		ssize_t n;

		if (used == sizeof(out) - 1) {
			memmove(out, out + sizeof(out) / 2, sizeof(out) / 2 - 1);
			used = sizeof(out) / 2 - 1;
		}
		n = read(p[0], out + used, sizeof(out) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	out[used] = 0;
	close(p[0]);
	st = tu_wait_exit(pid, tu_bound(10000));
	ck_assert_msg(st == 0, "helper-crashloop --rounds 50: status %d (1 check failed, 3 run "
		      "failed, 127 not built); its output:\n%s", st, out);
	ck_assert_msg(strstr(out, "crashloop: rounds 50, ") != NULL,
		      "helper-crashloop exited 0 without its summary line:\n%s", out);
	if (getenv("BE_VERBOSE"))
		printf("%s", out);
}
END_TEST

Suite *crash_suite(void);

Suite *crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *points = tcase_create("points");
	TCase *loop = tcase_create("loop");

	tcase_add_test(points, test_crash_write_done);
	tcase_add_test(points, test_crash_next_written);
	tcase_add_test(points, test_crash_before_tail);
	tcase_add_test(points, test_crash_rotate_mid);
	tcase_add_test(points, test_crash_seg_created);
	tcase_add_test(points, test_crash_final_flush);
	tcase_add_test(points, test_crash_recovery_truncated);
	tcase_set_timeout(points, 30);
	suite_add_tcase(s, points);

	tcase_add_test(loop, test_crashloop_50);
	tcase_set_timeout(loop, 40);
	suite_add_tcase(s, loop);
	return s;
}
