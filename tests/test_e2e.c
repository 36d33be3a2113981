/*
 * test_e2e.c - end to end: a real bufferengined, real writer processes, segments
 * read back: every record exactly once and in order, across SIGTERM and SIGKILL
 * restarts, with rotation, with sync = none, with the pwrite fallback, through
 * be-write, and the refusals (a second daemon, a bad config).
 *
 * Every wait is bounded (scaled by CK_TIMEOUT_MULTIPLIER for sanitized builds),
 * and every failure message carries the daemon's log.  Writers are forked
 * children that die with the test process (PR_SET_PDEATHSIG).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/segment.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define LOGFMT "\n--- daemon log %s ---\n%s"
#define LOGARGS(d) (d)->log, tu_file_text((d)->log)

/* ------------------------------------------------------------------------
 * The ring, as seen from outside (read-only).
 */

struct peek {
	uint64_t capacity, head, tail, next_seq, first_seq, durable_seq;
	uint64_t syncs, full_waits, batches;
	uint32_t daemon_pid, daemon_state;
};

static int peek(const char *instance, const char *store, struct peek *p)
{
	struct ring_map m;
	int ret = ring_open(instance, store, RING_OPEN_RDONLY, &m);

	if (ret)
		return ret;
	p->capacity = m.capacity;
	p->tail = load_acquire(&m.hdr->tail);
	p->head = load_acquire(&m.hdr->head);
	p->next_seq = READ_ONCE(m.hdr->next_seq);
	p->first_seq = READ_ONCE(m.hdr->first_seq);
	p->durable_seq = load_acquire(&m.hdr->durable_seq);
	p->syncs = READ_ONCE(m.hdr->syncs);
	p->full_waits = READ_ONCE(m.hdr->full_waits);
	p->batches = READ_ONCE(m.hdr->batches);
	p->daemon_pid = READ_ONCE(m.hdr->daemon_pid);
	p->daemon_state = READ_ONCE(m.hdr->daemon_state);
	ring_unmap(&m);
	return 0;
}

static int ring_exists(const char *instance, const char *store)
{
	char path[256];
	struct stat sb;

	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s.%s", instance, store);
	return stat(path, &sb) == 0;
}

/* How many objects /dev/shm holds whose names start with "bufferengine.<instance>.". */
static int rings_of(const char *instance)
{
	char prefix[128];
	struct dirent *e;
	DIR *dir = opendir(RING_SHM_DIR);
	int n = 0;

	snprintf(prefix, sizeof(prefix), RING_SHM_PREFIX "%s.", instance);
	if (!dir)
		return -1;
	while ((e = readdir(dir)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(dir);
	return n;
}

/* ------------------------------------------------------------------------
 * Writers: forked children writing (writer id, counter) records.
 */

#define WREC_MAGIC 0x43455257u /* "WREC" */

/*
 * spawn_writer() - a child that opens store, writes n records, be_flush()es
 * and exits 0; on an error it says which on stderr and exits 10 (open),
 * 11 (write), 12 (flush) or 13 (close).
 */
static pid_t spawn_writer(const char *instance, const char *store, uint32_t id, uint64_t n,
			  int write_timeout_ms, int flush_timeout_ms)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = write_timeout_ms };
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
	for (uint64_t i = 0; i < n; i++) {
		struct tu_wrec w = { WREC_MAGIC, id, i };

		ret = be_write(s, &w, sizeof(w));
		if (ret) {
			fprintf(stderr, "writer %u: be_write #%llu: %s\n", id,
				(unsigned long long)i, be_strerror(ret));
			_exit(11);
		}
	}
	ret = be_flush(s, flush_timeout_ms);
	if (ret) {
		fprintf(stderr, "writer %u: be_flush: %s\n", id, be_strerror(ret));
		_exit(12);
	}
	ret = be_close(s);
	if (ret) {
		fprintf(stderr, "writer %u: be_close: %s\n", id, be_strerror(ret));
		_exit(13);
	}
	_exit(0);
}

/* Read the store back and assert: n records of each writer, each once, in order. */
static void assert_writers_read_back(struct tu_daemon *d, const char *store, struct tu_wcheck *c,
				     uint64_t n)
{
	long got = tu_read_store(d->data_dir, store, tu_wcheck_rec, c);

	ck_assert_msg(c->err[0] == 0, "%s: %s" LOGFMT, store, c->err, LOGARGS(d));
	ck_assert_msg(got == (long)(n * c->writers),
		      "%s: read back %ld records (-1: damage), expected %llu" LOGFMT, store, got,
		      (unsigned long long)(n * c->writers), LOGARGS(d));
	for (uint32_t w = 0; w < c->writers; w++)
		ck_assert_msg(c->next[w] == n, "writer %u: %llu records read back, expected %llu"
			      LOGFMT, w, (unsigned long long)c->next[w], (unsigned long long)n,
			      LOGARGS(d));
}

static void assert_writers_exit(struct tu_daemon *d, const pid_t *pids, uint32_t n, int timeout)
{
	for (uint32_t w = 0; w < n; w++) {
		int st = tu_wait_exit(pids[w], timeout);

		ck_assert_msg(st == 0,
			      "writer %u (pid %d) ended with %d (10 open, 11 write, 12 flush, "
			      "13 close, -2 still running after %d ms)" LOGFMT,
			      w, (int)pids[w], st, timeout, LOGARGS(d));
	}
}

/* ------------------------------------------------------------------------
 * Variable payloads, for tests with one writer in the test process.
 */

/* Payload of record i: "rec <i> " and then i % 53 letters, so lengths and padding vary. */
static size_t make_payload(unsigned i, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "rec %u ", i);

	for (unsigned k = 0; k < i % 53 && (size_t)n + 1 < cap; k++)
		buf[n++] = (char)('a' + (i + k) % 26);
	buf[n] = 0;
	return (size_t)n;
}

struct pcheck {
	unsigned next;
	uint64_t last_seq;
	char err[256];
};

static int pcheck_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct pcheck *c = arg;
	char want[128];
	size_t len = make_payload(c->next, want, sizeof(want));

	if (r->seq <= c->last_seq) {
		snprintf(c->err, sizeof(c->err), "record %u: seq %llu after %llu", c->next,
			 (unsigned long long)r->seq, (unsigned long long)c->last_seq);
		return 1;
	}
	if (r->type != BE_TYPE_RAW || r->len != len || memcmp(payload, want, len)) {
		snprintf(c->err, sizeof(c->err), "record %u (seq %llu): type %u len %u '%.*s', "
			 "expected len %zu '%s'", c->next, (unsigned long long)r->seq, r->type,
			 r->len, (int)(r->len < 80 ? r->len : 80), (const char *)payload, len, want);
		return 1;
	}
	if (r->pid != (uint32_t)getpid()) {
		snprintf(c->err, sizeof(c->err), "record %u: pid %u, expected %d", c->next, r->pid,
			 (int)getpid());
		return 1;
	}
	c->last_seq = r->seq;
	c->next++;
	return 0;
}

static void write_payloads(struct tu_daemon *d, be_store *s, unsigned from, unsigned to)
{
	char buf[128];

	for (unsigned i = from; i < to; i++) {
		size_t len = make_payload(i, buf, sizeof(buf));
		int ret = be_write(s, buf, len);

		ck_assert_msg(ret == 0, "be_write #%u: %s" LOGFMT, i, be_strerror(ret), LOGARGS(d));
	}
}

static void assert_payloads_read_back(struct tu_daemon *d, const char *store, unsigned n)
{
	struct pcheck c = { 0 };
	long got = tu_read_store(d->data_dir, store, pcheck_rec, &c);

	ck_assert_msg(c.err[0] == 0, "%s: %s" LOGFMT, store, c.err, LOGARGS(d));
	ck_assert_msg(got == (long)n, "%s: read back %ld records (-1: damage), expected %u" LOGFMT,
		      store, got, n, LOGARGS(d));
}

static be_store *open_store(struct tu_daemon *d, const char *store, int write_timeout_ms)
{
	struct be_open_opts o = { .instance = d->instance, .write_timeout_ms = write_timeout_ms };
	be_store *s = NULL;
	int ret = be_open(store, &o, &s);

	ck_assert_msg(ret == 0, "be_open(%s, %s): %s" LOGFMT, d->instance, store,
		      be_strerror(ret), LOGARGS(d));
	return s;
}

#define STORE_1M \
	"[store s]\ntype = raw\ncapacity = 1M\nflush_interval = 100ms\nflush_bytes = 64K\n"

/* ------------------------------------------------------------------------
 * 1. basic: one writer, 1000 records, be_flush, read back, SIGTERM -> 0.
 */

START_TEST(test_basic)
{
	struct tu_daemon d;
	be_store *s;
	int ret;

	unsetenv("BE_NO_IO_URING");
	tu_daemon_config(&d, "shutdown_flush_timeout = 10s", STORE_1M);
	tu_assert_daemon_start(&d, "s");
	s = open_store(&d, "s", 1000);
	write_payloads(&d, s, 0, 1000);
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	assert_payloads_read_back(&d, "s", 1000);
	ck_assert_int_eq(be_close(s), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
	/* The log names the backend, so a run's report says which path was tested. */
	ck_assert_msg(strstr(tu_file_text(d.log), "I/O: ") != NULL, "no I/O line" LOGFMT,
		      LOGARGS(&d));
}
END_TEST

/*
 * be_write_batch through the daemon: 40,000 records in batches of 1..64,
 * three laps of a 1 MiB ring (batches wait for space and are flushed in
 * parts), every one read back once, in order.
 */
START_TEST(test_batch)
{
	enum { N = 40000, MAXB = 64 };
	static char bufs[MAXB][128];
	struct iovec iov[MAXB];
	struct tu_daemon d;
	be_store *s;
	int ret;

	tu_daemon_config(&d, "shutdown_flush_timeout = 10s", STORE_1M);
	tu_assert_daemon_start(&d, "s");
	s = open_store(&d, "s", tu_bound(5000));
	for (unsigned i = 0; i < N;) {
		unsigned n = 1 + (i * 7) % MAXB;

		if (n > N - i)
			n = N - i;
		for (unsigned k = 0; k < n; k++)
			iov[k] = (struct iovec){ .iov_base = bufs[k],
						 .iov_len = make_payload(i + k, bufs[k], 128) };
		ret = be_write_batch(s, iov, n);
		ck_assert_msg(ret == (int)n, "be_write_batch #%u (%u records): %d %s" LOGFMT, i, n,
			      ret, ret < 0 ? be_strerror(ret) : "", LOGARGS(&d));
		i += n;
	}
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	assert_payloads_read_back(&d, "s", N);
	ck_assert_int_eq(be_close(s), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 6. the pwrite + fdatasync fallback: the same as basic, with BE_NO_IO_URING=1.
 */

START_TEST(test_fallback_io)
{
	struct tu_daemon d;
	be_store *s;
	int ret;

	setenv("BE_NO_IO_URING", "1", 1);
	tu_daemon_config(&d, NULL, STORE_1M);
	tu_assert_daemon_start(&d, "s");
	unsetenv("BE_NO_IO_URING");
	ck_assert_msg(strstr(tu_file_text(d.log), "pwrite+fdatasync (io_uring unavailable)"),
		      "the daemon does not say it uses the fallback" LOGFMT, LOGARGS(&d));
	s = open_store(&d, "s", 1000);
	write_payloads(&d, s, 0, 1000);
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	assert_payloads_read_back(&d, "s", 1000);
	/* Once more after the first sync, so the doorbell wait path is used too. */
	write_payloads(&d, s, 1000, 3000);
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	assert_payloads_read_back(&d, "s", 3000);
	ck_assert_int_eq(be_close(s), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. four writers x 200,000 through a 4M ring that wraps ~9 times.
 */

#define STORE_4M \
	"[store w]\ntype = raw\ncapacity = 4M\nflush_interval = 100ms\nflush_bytes = 256K\n" \
	"on_full = block\n"

START_TEST(test_four_writers)
{
	const uint64_t n = 200000;
	struct tu_wcheck c = { .magic = WREC_MAGIC, .writers = 4 };
	struct tu_daemon d;
	struct peek p;

	tu_daemon_config(&d, "shutdown_flush_timeout = 10s", STORE_4M);
	tu_assert_daemon_start(&d, "w");
	for (uint32_t w = 0; w < c.writers; w++)
		c.pids[w] = spawn_writer(d.instance, "w", w, n, tu_bound(30000), tu_bound(30000));
	assert_writers_exit(&d, c.pids, c.writers, tu_bound(60000));
	ck_assert_int_eq(peek(d.instance, "w", &p), 0);
	/* 800,000 records of 48 bytes: the ring's 4M went round many times. */
	ck_assert_msg(p.head > 8 * p.capacity, "head %llu: the ring did not wrap 8 times",
		      (unsigned long long)p.head);
	ck_assert_msg(p.tail == p.head && p.durable_seq == p.next_seq,
		      "after every writer's be_flush: head %llu tail %llu, durable seq %llu next %llu"
		      LOGFMT, (unsigned long long)p.head, (unsigned long long)p.tail,
		      (unsigned long long)p.durable_seq, (unsigned long long)p.next_seq, LOGARGS(&d));
	if (getenv("BE_VERBOSE"))
		printf("e2e four writers: %llu batches, %llu syncs, %llu full waits\n",
		       (unsigned long long)p.batches, (unsigned long long)p.syncs,
		       (unsigned long long)p.full_waits);
	assert_writers_read_back(&d, "w", &c, n);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. the daemon stopped (SIGTERM) or killed (SIGKILL) while writers write, and
 * started again: every record still exactly once, in order.
 */

/* Wait until the writers have written at least `records` records in all. */
static void wait_written(struct tu_daemon *d, uint64_t records)
{
	uint64_t end = tu_now_ms() + (uint64_t)tu_bound(30000);
	struct peek p = { 0 };

	for (;;) {
		ck_assert_int_eq(peek(d->instance, "w", &p), 0);
		if (p.next_seq - p.first_seq >= records)
			return;
		ck_assert_msg(tu_now_ms() < end, "writers stuck at %llu records of %llu" LOGFMT,
			      (unsigned long long)(p.next_seq - p.first_seq),
			      (unsigned long long)records, LOGARGS(d));
		tu_sleep_ms(1);
	}
}

/*
 * With no daemon, the writers fill the ring (and then wait for space), or
 * write their last records (total in all).
 */
static void wait_ring_fills(struct tu_daemon *d, uint64_t total)
{
	uint64_t end = tu_now_ms() + (uint64_t)tu_bound(20000);
	struct peek p = { 0 };

	for (;;) {
		ck_assert_int_eq(peek(d->instance, "w", &p), 0);
		if (p.head - p.tail >= p.capacity / 2 || p.next_seq - p.first_seq >= total)
			return;
		ck_assert_msg(tu_now_ms() < end,
			      "with no daemon the writers did not fill the ring: head %llu tail "
			      "%llu" LOGFMT,
			      (unsigned long long)p.head, (unsigned long long)p.tail, LOGARGS(d));
		tu_sleep_ms(1);
	}
}

/*
 * restart_run() - 4 writers x n records; `cycles` times, at 10%, 25%, 40%... of
 * the records, stop the daemon with sig and start a new one once the writers
 * have filled the ring.  The last stop must leave more than a ring's worth
 * (~87,000 records) to write.
 */
static void restart_run(int sig, int cycles, uint64_t n)
{
	struct tu_wcheck c = { .magic = WREC_MAGIC, .writers = 4 };
	struct tu_daemon d;
	struct peek p;
	uint64_t t0;

	tu_daemon_config(&d, "shutdown_flush_timeout = 10s", STORE_4M);
	tu_assert_daemon_start(&d, "w");
	for (uint32_t w = 0; w < c.writers; w++)
		c.pids[w] = spawn_writer(d.instance, "w", w, n, tu_bound(30000), tu_bound(30000));
	for (int k = 0; k < cycles; k++) {
		uint64_t before, ring_records;

		wait_written(&d, n * c.writers * (uint64_t)(10 + 15 * k) / 100);
		/*
		 * Where the writers are just before the signal: a test process
		 * kept off the CPU may see them late, past the point where a
		 * ring's worth more finishes them, and then the check below
		 * cannot tell a chase from a stop.
		 */
		ck_assert_int_eq(peek(d.instance, "w", &p), 0);
		before = p.next_seq - p.first_seq;
		ring_records = p.capacity / rec_size(48);
		t0 = tu_now_ms();
		tu_assert_daemon_stop(&d, sig, sig == SIGTERM ? 0 : 128 + sig);
		/*
		 * The final flush goes up to the head seen at SIGTERM: writers
		 * can add at most a ring's worth after it, less than is left.
		 */
		ck_assert_int_eq(peek(d.instance, "w", &p), 0);
		if (before + 2 * ring_records < n * c.writers) {
			ck_assert_msg(p.next_seq - p.first_seq < n * c.writers,
				      "the daemon's exit after signal %d took %llu ms and waited for "
				      "the writers to finish all %llu records: its final flush chased "
				      "the head instead of stopping at the head it saw at the signal"
				      LOGFMT, sig, (unsigned long long)(tu_now_ms() - t0),
				      (unsigned long long)(n * c.writers), LOGARGS(&d));
		} else {
			printf("restart_run: the writers were at %llu of %llu records at the "
			       "signal: the final flush's bound is not checked this cycle\n",
			       (unsigned long long)before, (unsigned long long)(n * c.writers));
		}
		wait_ring_fills(&d, n * c.writers);
		tu_assert_daemon_start(&d, "w");
	}
	assert_writers_exit(&d, c.pids, c.writers, tu_bound(60000));
	assert_writers_read_back(&d, "w", &c, n);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}

START_TEST(test_restart_term)
{
	restart_run(SIGTERM, 2, 100000);
}
END_TEST

START_TEST(test_restart_kill)
{
	restart_run(SIGKILL, 5, 200000);
}
END_TEST

/* ------------------------------------------------------------------------
 * 4. sync = none: batches reach the segment unsynced; be_flush still syncs.
 */

START_TEST(test_sync_none)
{
	struct tu_daemon d;
	struct peek p = { 0 };
	uint64_t end;
	be_store *s;
	int ret;

	tu_daemon_config(&d, NULL,
			 "[store s]\ntype = raw\ncapacity = 1M\nflush_interval = 20ms\n"
			 "flush_bytes = 64K\nsync = none\n");
	tu_assert_daemon_start(&d, "s");
	s = open_store(&d, "s", 1000);
	write_payloads(&d, s, 0, 5000);
	/* The interval moves everything to the segment without a be_flush... */
	end = tu_now_ms() + (uint64_t)tu_bound(10000);
	for (;;) {
		ck_assert_int_eq(peek(d.instance, "s", &p), 0);
		if (p.tail == p.head)
			break;
		ck_assert_msg(tu_now_ms() < end,
			      "the interval flush did not come: head %llu tail %llu" LOGFMT,
			      (unsigned long long)p.head, (unsigned long long)p.tail, LOGARGS(&d));
		tu_sleep_ms(2);
	}
	/* ...and, with sync = none, without an fdatasync: nothing is durable yet. */
	ck_assert_msg(p.syncs == 0 && p.durable_seq < p.next_seq,
		      "sync = none synced: %llu syncs, durable seq %llu, next seq %llu" LOGFMT,
		      (unsigned long long)p.syncs, (unsigned long long)p.durable_seq,
		      (unsigned long long)p.next_seq, LOGARGS(&d));
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	ck_assert_int_eq(peek(d.instance, "s", &p), 0);
	ck_assert_msg(p.syncs >= 1 && p.durable_seq == p.next_seq,
		      "be_flush returned 0 but: %llu syncs, durable seq %llu, next seq %llu" LOGFMT,
		      (unsigned long long)p.syncs, (unsigned long long)p.durable_seq,
		      (unsigned long long)p.next_seq, LOGARGS(&d));
	assert_payloads_read_back(&d, "s", 5000);
	ck_assert_int_eq(be_close(s), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 5. rotation: 64K segments, 100,000 small records.
 */

struct first_ctx {
	uint64_t first_seq;
	int seen;
};

static int first_batch(const struct seg_batch_ref *b, void *arg)
{
	struct first_ctx *c = arg;

	if (!c->seen) {
		const struct rec_hdr *r = (const struct rec_hdr *)b->records;

		c->first_seq = r->seq;
		c->seen = 1;
	}
	return 0;
}

/* Records holding the values 0, 1, 2... as uint64_t: each once, in order. */
struct ucheck {
	uint64_t next, last_seq;
	char err[256];
};

static int ucheck_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct ucheck *c = arg;
	uint64_t v;

	if (r->len != sizeof(v) || r->seq <= c->last_seq) {
		snprintf(c->err, sizeof(c->err), "record %llu: len %u, seq %llu after %llu",
			 (unsigned long long)c->next, r->len, (unsigned long long)r->seq,
			 (unsigned long long)c->last_seq);
		return 1;
	}
	memcpy(&v, payload, sizeof(v));
	if (v != c->next) {
		snprintf(c->err, sizeof(c->err), "record %llu (seq %llu) holds %llu",
			 (unsigned long long)c->next, (unsigned long long)r->seq,
			 (unsigned long long)v);
		return 1;
	}
	c->last_seq = r->seq;
	c->next++;
	return 0;
}

static int is_seg_name(const char *name)
{
	for (int i = 0; i < 20; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return strcmp(name + 20, ".seg") == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_rotation)
{
	const unsigned n = 100000;
	struct tu_daemon d;
	char dir[512], *names[4096];
	struct dirent *e;
	uint64_t prev_last = 0;
	unsigned nseg = 0;
	DIR *dh;
	be_store *s;
	int ret;

	tu_daemon_config(&d, "batch_bytes = 64K",
			 "[store s]\ntype = raw\ncapacity = 1M\nflush_interval = 20ms\n"
			 "flush_bytes = 16K\nsegment_bytes = 64K\n");
	tu_assert_daemon_start(&d, "s");
	s = open_store(&d, "s", tu_bound(10000));
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = i;

		ret = be_write(s, &v, sizeof(v));
		ck_assert_msg(ret == 0, "be_write #%u: %s" LOGFMT, i, be_strerror(ret), LOGARGS(&d));
	}
	ret = be_flush(s, tu_bound(10000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	ck_assert_int_eq(be_close(s), 0);

	snprintf(dir, sizeof(dir), "%s/s", d.data_dir);
	dh = opendir(dir);
	ck_assert_msg(dh != NULL, "%s: %s", dir, strerror(errno));
	while ((e = readdir(dh))) {
		/* seq-floor: the first seq of the newest ring (server/recovery.c). */
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    !strcmp(e->d_name, "seq-floor"))
			continue;
		ck_assert_msg(is_seg_name(e->d_name), "%s: unexpected file '%s'", dir, e->d_name);
		ck_assert_uint_lt(nseg, 4096);
		names[nseg++] = strdup(e->d_name);
	}
	closedir(dh);
	/* 100,000 records of 40 bytes are ~4 MB: some 60 segments of 64K. */
	ck_assert_msg(nseg >= 20, "only %u segments in %s" LOGFMT, nseg, dir, LOGARGS(&d));
	qsort(names, nseg, sizeof(names[0]), cmp_str);
	for (unsigned i = 0; i < nseg; i++) {
		struct seg_scan_result r;
		struct first_ctx fc = { 0 };
		char path[600];
		struct stat sb;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
		ck_assert_int_eq(fstat(fd, &sb), 0);
		ret = seg_scan(fd, &r, first_batch, NULL, &fc);
		close(fd);
		ck_assert_msg(ret == 0 && r.corrupt == 0 && r.torn_bytes == 0 && fc.seen,
			      "%s: scan %d, corrupt %llu, torn %llu, batches %llu", path, ret,
			      (unsigned long long)r.corrupt, (unsigned long long)r.torn_bytes,
			      (unsigned long long)r.batches);
		ck_assert_msg(strtoull(names[i], NULL, 10) == fc.first_seq,
			      "%s: its first record has seq %llu", path,
			      (unsigned long long)fc.first_seq);
		ck_assert_msg(fc.first_seq > prev_last, "%s starts at seq %llu, the previous "
			      "segment ends at %llu", path, (unsigned long long)fc.first_seq,
			      (unsigned long long)prev_last);
		/* A segment is cut before it passes 64K, unless one batch (<= 64K) fills it. */
		ck_assert_msg((uint64_t)sb.st_size <= 64 * 1024 + SEG_FILE_HDR_SIZE,
			      "%s: %lld bytes, segment_bytes is 64K", path, (long long)sb.st_size);
		prev_last = r.last_seq;
		free(names[i]);
	}
	{
		struct ucheck uc = { 0 };
		long got = tu_read_store(d.data_dir, "s", ucheck_rec, &uc);

		ck_assert_msg(uc.err[0] == 0, "%s" LOGFMT, uc.err, LOGARGS(&d));
		ck_assert_msg(got == (long)n, "read back %ld records (-1: damage), expected %u" LOGFMT,
			      got, n, LOGARGS(&d));
	}
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 7. a second daemon: on the same instance, or on the same data directory.
 */

/* Does text hold the number v, not as part of a longer number? */
static int has_number(const char *text, long v)
{
	char num[32];
	size_t len = (size_t)snprintf(num, sizeof(num), "%ld", v);

	for (const char *p = text; (p = strstr(p, num)); p++) {
		if ((p == text || p[-1] < '0' || p[-1] > '9') && (p[len] < '0' || p[len] > '9'))
			return 1;
	}
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_second_daemon)
{
	struct tu_daemon d;
	char err[400], text[4096], conf2[400], inst2[64], cfg[1024];
	struct peek p;
	be_store *s;
	int st, ret;

	tu_daemon_config(&d, NULL, STORE_1M);
	tu_assert_daemon_start(&d, "s");

	/* The same instance: refused, naming the pid that serves it. */
	{
		char *argv[] = { BE_BIN_DIR "/bufferengined", "-c", d.conf, NULL };

		snprintf(err, sizeof(err), "%s/second.err", d.dir);
		st = tu_run_prog(argv, NULL, NULL, err, tu_bound(5000));
		tu_read_text(err, text, sizeof(text));
		ck_assert_msg(st >= 1 && st < 128,
			      "a second daemon of instance %s: status %d (-2: still running); "
			      "its stderr:\n%s" LOGFMT, d.instance, st, text, LOGARGS(&d));
		ck_assert_msg(has_number(text, d.pid),
			      "the second daemon does not name pid %d; its stderr:\n%s", (int)d.pid,
			      text);
	}

	/* The same instance on another data directory: refused all the same. */
	snprintf(conf2, sizeof(conf2), "%s/elsewhere.conf", d.dir);
	snprintf(cfg, sizeof(cfg), "[engine]\ninstance = %s\ndata_dir = %s/elsewhere\n%s",
		 d.instance, d.dir, STORE_1M);
	write_file(conf2, cfg);
	{
		char *argv[] = { BE_BIN_DIR "/bufferengined", "-c", conf2, NULL };

		snprintf(err, sizeof(err), "%s/elsewhere.err", d.dir);
		st = tu_run_prog(argv, NULL, NULL, err, tu_bound(5000));
		tu_read_text(err, text, sizeof(text));
		ck_assert_msg(st >= 1 && st < 128 && has_number(text, d.pid),
			      "a second daemon of instance %s on another data_dir: status %d; "
			      "its stderr:\n%s" LOGFMT, d.instance, st, text, LOGARGS(&d));
	}

	/* Another instance on the same data directory: refused, "in use". */
	tu_instance(inst2, sizeof(inst2));
	snprintf(conf2, sizeof(conf2), "%s/other.conf", d.dir);
	snprintf(cfg, sizeof(cfg), "[engine]\ninstance = %s\ndata_dir = %s\n%s", inst2, d.data_dir,
		 STORE_1M);
	write_file(conf2, cfg);
	{
		char *argv[] = { BE_BIN_DIR "/bufferengined", "-c", conf2, NULL };

		snprintf(err, sizeof(err), "%s/other.err", d.dir);
		st = tu_run_prog(argv, NULL, NULL, err, tu_bound(5000));
		tu_read_text(err, text, sizeof(text));
		ck_assert_msg(st >= 1 && st < 128,
			      "a daemon of instance %s on %s: status %d (-2: still running); its "
			      "stderr:\n%s" LOGFMT, inst2, d.data_dir, st, text, LOGARGS(&d));
		ck_assert_msg(strstr(text, "in use") != NULL,
			      "the daemon on a used data_dir does not say 'in use':\n%s", text);
		ck_assert_msg(rings_of(inst2) == 0, "the refused daemon left %d rings of %s",
			      rings_of(inst2), inst2);
	}

	/* The first daemon is untouched and still serves. */
	ck_assert_int_eq(peek(d.instance, "s", &p), 0);
	ck_assert_msg(p.daemon_pid == (uint32_t)d.pid && p.daemon_state == RING_DAEMON_RUNNING,
		      "the ring says daemon %u state %u, expected %d running", p.daemon_pid,
		      p.daemon_state, (int)d.pid);
	s = open_store(&d, "s", 1000);
	write_payloads(&d, s, 0, 100);
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	assert_payloads_read_back(&d, "s", 100);
	ck_assert_int_eq(be_close(s), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 8. a config error: FILE:LINE: key 'K' on stderr, exit non-zero, no ring.
 */

/* The 1-based line of path that starts with key; 0 if none. */
static int line_of(const char *path, const char *key)
{
	char text[4096];
	int line = 1;

	tu_read_text(path, text, sizeof(text));
	for (const char *p = text; *p; line++) {
		if (!strncmp(p, key, strlen(key)))
			return line;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return 0;
}

START_TEST(test_config_error)
{
	static const struct {
		const char *engine, *stores, *key;
	} cases[] = {
		/* After a valid store, so that it would have a ring if anything were made. */
		{ NULL, "[store s]\ntype = raw\ncapacity = 64K\n\n[store t]\ntype = raw\n"
			"bogus_key = 1\n", "bogus_key" },
		{ "flush_everything = yes", "[store s]\ntype = raw\n", "flush_everything" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tu_daemon d;
		char err[400], text[4096], want[512];
		char *argv[] = { BE_BIN_DIR "/bufferengined", "-c", d.conf, NULL };
		int st, line;

		tu_daemon_config(&d, cases[i].engine, cases[i].stores);
		line = line_of(d.conf, cases[i].key);
		ck_assert_int_gt(line, 0);
		snprintf(want, sizeof(want), "%s:%d: key '%s'", d.conf, line, cases[i].key);
		snprintf(err, sizeof(err), "%s/daemon.err", d.dir);
		st = tu_run_prog(argv, NULL, NULL, err, tu_bound(5000));
		tu_read_text(err, text, sizeof(text));
		ck_assert_msg(st >= 1 && st < 128, "case %zu: bufferengined with an unknown key: "
			      "status %d (-2: still running); stderr:\n%s", i, st, text);
		ck_assert_msg(strstr(text, want) != NULL, "case %zu: stderr does not say \"%s\":\n%s",
			      i, want, text);
		ck_assert_msg(rings_of(d.instance) == 0 && !ring_exists(d.instance, "s"),
			      "case %zu: %d rings of instance %s exist after a config error", i,
			      rings_of(d.instance), d.instance);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * 9. be-write: lines in, records out; a missing store; no daemon to flush.
 */

#define CLI_LINES 200

struct lcheck {
	char (*lines)[64];
	unsigned n, next;
	uint64_t last_seq;
	char err[256];
};

static int lcheck_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct lcheck *c = arg;
	size_t len;

	if (c->next >= c->n) {
		snprintf(c->err, sizeof(c->err), "record %u (seq %llu): more records than lines",
			 c->next, (unsigned long long)r->seq);
		return 1;
	}
	len = strlen(c->lines[c->next]);
	if (r->seq <= c->last_seq || r->len != len || memcmp(payload, c->lines[c->next], len)) {
		snprintf(c->err, sizeof(c->err), "record %u (seq %llu after %llu): '%.*s', "
			 "expected '%s'", c->next, (unsigned long long)r->seq,
			 (unsigned long long)c->last_seq, (int)(r->len < 64 ? r->len : 64),
			 (const char *)payload, c->lines[c->next]);
		return 1;
	}
	c->last_seq = r->seq;
	c->next++;
	return 0;
}

static void assert_lines_read_back(struct tu_daemon *d, char (*lines)[64], unsigned n)
{
	struct lcheck c = { .lines = lines, .n = n };
	long got = tu_read_store(d->data_dir, "s", lcheck_rec, &c);

	ck_assert_msg(c.err[0] == 0, "%s" LOGFMT, c.err, LOGARGS(d));
	ck_assert_msg(got == (long)n, "read back %ld records (-1: damage), expected %u" LOGFMT, got,
		      n, LOGARGS(d));
}

START_TEST(test_be_write_cli)
{
	static char lines[CLI_LINES + 3][64];
	static char input[CLI_LINES * 64];
	struct tu_daemon d;
	char err[400], text[4096];
	size_t off = 0;
	int st;

	tu_daemon_config(&d, NULL, STORE_1M);
	tu_assert_daemon_start(&d, "s");
	for (unsigned i = 0; i < CLI_LINES; i++) {
		snprintf(lines[i], sizeof(lines[i]), "line %u of be-write%s", i,
			 i == CLI_LINES - 1 ? ", no newline" : "");
		off += (size_t)snprintf(input + off, sizeof(input) - off, "%s%s", lines[i],
					i == CLI_LINES - 1 ? "" : "\n");
	}
	snprintf(err, sizeof(err), "%s/be-write.err", d.dir);
	{
		char *argv[] = { BE_BIN_DIR "/be-write", "-i", d.instance, "s", NULL };

		st = tu_run_prog(argv, input, NULL, err, tu_bound(15000));
		ck_assert_msg(st == 0, "be-write: status %d; stderr:\n%s" LOGFMT, st,
			      tu_read_text(err, text, sizeof(text)), LOGARGS(&d));
	}
	assert_lines_read_back(&d, lines, CLI_LINES);

	/* A store that is not configured: exit 1 and a message naming it. */
	{
		char *argv[] = { BE_BIN_DIR "/be-write", "-i", d.instance, "nosuch", NULL };

		st = tu_run_prog(argv, "x\n", NULL, err, tu_bound(5000));
		tu_read_text(err, text, sizeof(text));
		ck_assert_msg(st == 1 && strstr(text, "nosuch"),
			      "be-write on a missing store: status %d, stderr:\n%s", st, text);
	}

	/* No daemon: the lines go into the ring, the flush times out: exit 1. */
	tu_assert_daemon_stop(&d, SIGTERM, 0);
	snprintf(lines[CLI_LINES], sizeof(lines[0]), "written with no daemon 1");
	snprintf(lines[CLI_LINES + 1], sizeof(lines[0]), "written with no daemon 2");
	snprintf(input, sizeof(input), "%s\n%s\n", lines[CLI_LINES], lines[CLI_LINES + 1]);
	{
		char *argv[] = { BE_BIN_DIR "/be-write", "-i", d.instance, "-f", "200", "s", NULL };

		st = tu_run_prog(argv, input, NULL, err, tu_bound(5000));
		tu_read_text(err, text, sizeof(text));
		ck_assert_msg(st == 1 && strstr(text, "flush"),
			      "be-write -f 200 with no daemon: status %d, stderr:\n%s", st, text);
	}

	/* A new daemon writes those lines too; one more be-write waits for all of it. */
	tu_assert_daemon_start(&d, "s");
	snprintf(lines[CLI_LINES + 2], sizeof(lines[0]), "after the restart");
	snprintf(input, sizeof(input), "%s\n", lines[CLI_LINES + 2]);
	{
		char *argv[] = { BE_BIN_DIR "/be-write", "-i", d.instance, "s", NULL };

		st = tu_run_prog(argv, input, NULL, err, tu_bound(15000));
		ck_assert_msg(st == 0, "be-write after the restart: status %d; stderr:\n%s" LOGFMT,
			      st, tu_read_text(err, text, sizeof(text)), LOGARGS(&d));
	}
	assert_lines_read_back(&d, lines, CLI_LINES + 3);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * 10. the ring outlives the daemon: writes go on, a new daemon drains them.
 */

START_TEST(test_ring_survives)
{
	struct tu_daemon d;
	struct peek p;
	be_store *s;
	int ret;

	tu_daemon_config(&d, NULL, STORE_1M);
	tu_assert_daemon_start(&d, "s");
	s = open_store(&d, "s", 1000);
	write_payloads(&d, s, 0, 500);
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(&d));
	tu_assert_daemon_stop(&d, SIGTERM, 0);

	ck_assert_msg(ring_exists(d.instance, "s"), "the ring is gone after SIGTERM" LOGFMT,
		      LOGARGS(&d));
	ck_assert_int_eq(peek(d.instance, "s", &p), 0);
	ck_assert_msg(p.daemon_state == RING_DAEMON_STOPPED,
		      "daemon_state %u after a clean exit, expected %d", p.daemon_state,
		      RING_DAEMON_STOPPED);
	/* Writing needs no daemon... */
	write_payloads(&d, s, 500, 1500);
	/* ...being durable does. */
	ret = be_flush(s, 100);
	ck_assert_msg(ret == -ETIMEDOUT, "be_flush with no daemon: %d (%s), expected -ETIMEDOUT",
		      ret, be_strerror(ret));

	tu_assert_daemon_start(&d, "s");
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush after the restart: %s" LOGFMT, be_strerror(ret),
		      LOGARGS(&d));
	assert_payloads_read_back(&d, "s", 1500);
	ck_assert_int_eq(be_close(s), 0);
	tu_assert_daemon_stop(&d, SIGTERM, 0);
}
END_TEST

Suite *e2e_suite(void);

Suite *e2e_suite(void)
{
	Suite *s = suite_create("e2e");
	TCase *tc = tcase_create("single");
	TCase *load = tcase_create("load");

	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_batch);
	tcase_add_test(tc, test_fallback_io);
	tcase_add_test(tc, test_sync_none);
	tcase_add_test(tc, test_rotation);
	tcase_add_test(tc, test_second_daemon);
	tcase_add_test(tc, test_config_error);
	tcase_add_test(tc, test_be_write_cli);
	tcase_add_test(tc, test_ring_survives);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	tcase_add_test(load, test_four_writers);
	tcase_add_test(load, test_restart_term);
	tcase_add_test(load, test_restart_kill);
	tcase_set_timeout(load, 60);
	suite_add_tcase(s, load);
	return s;
}
