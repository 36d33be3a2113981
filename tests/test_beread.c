/*
 * test_beread.c - be-read as an operator uses it: --follow, the filters
 * (--since, --until, --count), --verify, --salvage, and reading in bounded
 * memory.
 *
 * Cases:
 *   follow    a real daemon rotating 64K segments while a writer process
 *             writes without pause: be-read --follow --json in a child
 *             prints every record once, in order, then exits 0 on SIGTERM;
 *             the same with retention deleting old segments behind it;
 *             segments made by hand: a half-written batch is waited for
 *             (be-read must have read its bytes, print nothing, report
 *             nothing) and printed once complete; a torn tail with a newer
 *             segment is reported once and skipped; a segment set aside by
 *             recovery sends it back to the older one without a duplicate; a
 *             segment cut back and written again (a failed fdatasync) prints
 *             only what is new;
 *             --count, SIGINT and a closed pipe end it with status 0.
 *   filters   records with known times (written through the API between
 *             clock readings): --since/--until in every TIME form, --count,
 *             --from-seq, and the bad TIME arguments.
 *   verify    --verify on a clean store (the summary's numbers against
 *             seg_scan()), --verify-only the same, then a flipped byte
 *             (exit 2, file and offset named) and a misnamed segment.
 *   salvage   a corrupt batch in the middle: without --salvage nothing after
 *             it is printed; with it, everything else is; exit 2 both ways.
 *   memory    be-read's peak RSS (wait4) on a ~50 MB segment stays within a
 *             few MiB of its RSS on a tiny one, for text, JSON and --verify;
 *             a batch larger than the read window is still read.
 *
 * Every wait is a bounded wait for a condition (a line, an exit, a counter
 * of /proc/PID/io), never a sleep before an assertion.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/segment.h"
#include "shm/clock.h"
#include "shm/layout.h"
#include "tests/testutil.h"

#define BE_READ BE_BIN_DIR "/be-read"

/* ------------------------------------------------------------------------
 * Segments by hand: raw records "<tag> <seq>", padded with 'x' to pad bytes.
 */

struct hseg {
	int fd;
	char path[600];
	uint64_t off;
};

static uint64_t pos_next = 4096;

/* mk_batch() - a sealed batch of n records from first_seq into buf; its size. */
static size_t mk_batch(uint8_t *buf, size_t cap, uint64_t first_seq, int n, uint64_t ts0,
		       const char *tag, size_t pad)
{
	struct seg_batch_hdr bh;
	size_t len = SEG_BATCH_HDR_SIZE;

	for (int i = 0; i < n; i++) {
		char pl[4096];
		struct rec_hdr h = { 0 };
		int pn = snprintf(pl, sizeof(pl), "%s %" PRIu64, tag, first_seq + (uint64_t)i);
		size_t rs;

		if (pad > (size_t)pn && pad < sizeof(pl)) {
			memset(pl + pn, 'x', pad - (size_t)pn);
			pn = (int)pad;
		}
		h.len = (uint32_t)pn;
		h.type = BE_TYPE_RAW;
		h.seq = first_seq + (uint64_t)i;
		h.ts_ns = ts0 + (uint64_t)i;
		h.pid = 77;
		rs = rec_size((uint64_t)pn);
		TU_REQUIRE_LE(len + rs, cap);
		memcpy(buf + len, &h, sizeof(h));
		memcpy(buf + len + sizeof(h), pl, (size_t)pn);
		memset(buf + len + sizeof(h) + pn, 0, rs - sizeof(h) - (size_t)pn);
		len += rs;
	}
	memset(&bh, 0, sizeof(bh));
	bh.magic = SEG_BATCH_MAGIC;
	bh.version = SEG_BATCH_VERSION;
	bh.count = (uint32_t)n;
	bh.incarnation = 5;
	bh.start_pos = pos_next;
	bh.end_pos = pos_next + len - SEG_BATCH_HDR_SIZE;
	bh.first_seq = first_seq;
	bh.last_seq = first_seq + (uint64_t)n - 1;
	bh.length = (uint32_t)(len - SEG_BATCH_HDR_SIZE);
	pos_next = bh.end_pos;
	memcpy(buf, &bh, sizeof(bh));
	seg_batch_seal(buf);
	return len;
}

static void seg_path(char *out, size_t len, const char *dir, uint64_t first_seq)
{
	char name[SEG_NAME_LEN + 1];

	seg_name(name, first_seq);
	snprintf(out, len, "%s/%s", dir, name);
}

/* h_create() - a segment with its file header, under a temporary name renamed into place. */
static void h_create(struct hseg *h, const char *dir, uint64_t first_seq)
{
	struct seg_file_hdr fh;
	char tmp[640];

	seg_path(h->path, sizeof(h->path), dir, first_seq);
	snprintf(tmp, sizeof(tmp), "%s.new", h->path);
	h->fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_msg(h->fd >= 0, "%s: %s", tmp, strerror(errno));
	seg_file_hdr_init(&fh, first_seq, BE_TYPE_RAW, "t");
	ck_assert_int_eq(pwrite(h->fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	h->off = sizeof(fh);
	ck_assert_int_eq(rename(tmp, h->path), 0);
}

/* h_append() - bytes at the end of the segment; their offset. */
static uint64_t h_append(struct hseg *h, const void *p, size_t n)
{
	uint64_t at = h->off;

	ck_assert_int_eq(pwrite(h->fd, p, n, (off_t)at), (ssize_t)n);
	h->off += n;
	return at;
}

/* h_batch() - a batch of n records appended; its offset. */
static uint64_t h_batch(struct hseg *h, uint64_t first_seq, int n, const char *tag)
{
	static uint8_t buf[64 << 10];
	size_t len = mk_batch(buf, sizeof(buf), first_seq, n, 1000, tag, 0);

	return h_append(h, buf, len);
}

static void h_close(struct hseg *h)
{
	close(h->fd);
	h->fd = -1;
}

/* ------------------------------------------------------------------------
 * Running be-read.
 */

struct child {
	pid_t pid;
	int out;       /* the read end of its stdout */
	char err[512]; /* its stderr, a file */
	char buf[1 << 16];
	size_t len;
};

/* spawn() - be-read with argv (argv[0] is set here), stdout into a pipe, stderr into a file. */
static void spawn(struct child *c, const char *dir, char **argv)
{
	static unsigned spawned;
	int p[2];

	memset(c, 0, sizeof(*c));

	snprintf(c->err, sizeof(c->err), "%s/be-read.%u.err", dir, spawned++);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	argv[0] = BE_READ;
	fflush(NULL);
	c->pid = tu_spawn();
	if (c->pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int e = open(c->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(p[1], 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	tu_note_pid(c->pid);
	close(p[1]);
	c->out = p[0];
}

/* next_line() - the child's next line (no '\n') into out by deadline (ms, monotonic): 1, or 0. */
static int next_line(struct child *c, char *out, size_t cap, uint64_t deadline)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd = { .fd = c->out, .events = POLLIN };
		uint64_t now = tu_now_ms();
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - c->buf);

			snprintf(out, cap, "%.*s", (int)len, c->buf);
			memmove(c->buf, nl + 1, c->len - len - 1);
			c->len -= len + 1;
			return 1;
		}
		ck_assert_msg(c->len < sizeof(c->buf), "a line longer than %zu bytes",
			      sizeof(c->buf));
		if (now >= deadline)
			return 0;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
	}
}

/* pending() - bytes of output there right now, without waiting. */
static size_t pending(struct child *c)
{
	struct pollfd pfd = { .fd = c->out, .events = POLLIN };

	while (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN) && c->len < sizeof(c->buf)) {
		ssize_t n = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);

		if (n <= 0)
			break;
		c->len += (size_t)n;
	}
	return c->len;
}

/*
 * finish() - signal the child (0: none), reap it within a bound; its exit
 * status (-2: it did not end in time and was killed).  Its output stays
 * readable (pending()).
 */
static int finish(struct child *c, int sig)
{
	int st;

	if (sig)
		kill(c->pid, sig);
	st = tu_wait_exit(c->pid, tu_bound(10000));
	tu_forget_pid(c->pid);
	return st;
}

/* expect_lines() - the next n lines are raw records with data "<tag> first_seq + i". */
static void expect_lines(struct child *c, const char *tag, uint64_t first_seq, int n)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)tu_bound(15000);

	for (int i = 0; i < n; i++) {
		char line[4096], want[128];
		const char *p;

		ck_assert_msg(next_line(c, line, sizeof(line), deadline),
			      "be-read printed no line for seq %" PRIu64 " in time; stderr:\n%s",
			      first_seq + (uint64_t)i, tu_file_text(c->err));
		snprintf(want, sizeof(want), "seq=%" PRIu64 " ", first_seq + (uint64_t)i);
		ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "expected %s..., got: %s",
			      want, line);
		snprintf(want, sizeof(want), "data=\"%s %" PRIu64, tag, first_seq + (uint64_t)i);
		p = strstr(line, want);
		ck_assert_msg(p && (p[strlen(want)] == '"' || p[strlen(want)] == 'x'),
			      "expected %s in: %s", want, line);
	}
}

/* rchar() - bytes the process has read so far (/proc/PID/io). */
static uint64_t rchar(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/io", (int)pid);
	tu_read_text(path, buf, sizeof(buf));
	p = strstr(buf, "rchar:");
	return p ? strtoull(p + 6, NULL, 10) : 0;
}

/* has_open() - does pid have path open? */
static int has_open(pid_t pid, const char *path)
{
	char fddir[64];
	struct dirent *e;
	DIR *d;
	int found = 0;

	snprintf(fddir, sizeof(fddir), "/proc/%d/fd", (int)pid);
	d = opendir(fddir);
	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char link[600], target[600];
		ssize_t n;

		snprintf(link, sizeof(link), "%s/%s", fddir, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			found = strcmp(target, path) == 0;
		}
	}
	closedir(d);
	return found;
}

static int count_in(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* run() - be-read with argv to completion: stdout, stderr into files; status; peak RSS in KiB. */
struct run {
	int status;
	long maxrss_kb;
	char out_path[512], err_path[512];
};

static struct run run(const char *dir, char **argv)
{
	struct run r;
	struct rusage ru;
	int st;
	pid_t pid;

	memset(&r, 0, sizeof(r));
	snprintf(r.out_path, sizeof(r.out_path), "%s/run.out", dir);
	snprintf(r.err_path, sizeof(r.err_path), "%s/run.err", dir);
	argv[0] = BE_READ;
	fflush(NULL);
	pid = tu_spawn();
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int o = open(r.out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(r.err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(in, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	tu_note_pid(pid);
	ck_assert_int_eq(wait4(pid, &st, 0, &ru), pid);
	tu_forget_pid(pid);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.maxrss_kb = ru.ru_maxrss;
	return r;
}

/* The whole of a (small) file, malloc'ed. */
static char *slurp(const char *path)
{
	off_t n = tu_file_size(path);
	char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = 0;

	ck_assert_ptr_nonnull(s);
	if (fd >= 0 && n > 0) {
		got = read(fd, s, (size_t)n);
		close(fd);
	} else if (fd >= 0) {
		close(fd);
	}
	s[got > 0 ? got : 0] = 0;
	return s;
}

/* ------------------------------------------------------------------------
 * follow: a real daemon.
 */

#define STORE_CONF                                                                         \
	"[store L]\ntype = log\ncapacity = 1M\nflush_interval = 10ms\nflush_bytes = 16K\n" \
	"segment_bytes = 64K\n"

static be_store *open_L(const struct tu_daemon *d)
{
	struct be_open_opts o = { .instance = d->instance, .write_timeout_ms = 10000 };
	be_store *s = NULL;
	int ret = be_open("L", &o, &s);

	ck_assert_msg(ret == 0, "be_open: %s", be_strerror(ret));
	return s;
}

static int write_log(be_store *s, int i)
{
	char msg[96];
	struct be_log l = { .severity = 9, .message = msg, .source = "t" };

	snprintf(msg, sizeof(msg), "r %d padding to make the records longer: %d", i, i * 7);
	return be_write_log(s, &l);
}

/* json_u64() - the number after "key": in a JSON line. */
static uint64_t json_u64(const char *line, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(line, k);
	ck_assert_msg(p, "no %s in: %s", k, line);
	return strtoull(p + strlen(k), NULL, 10);
}

/* The index i of a "message":"r i ..." line. */
static long json_msg_index(const char *line)
{
	const char *p = strstr(line, "\"message\":\"r ");

	ck_assert_msg(p, "no message in: %s", line);
	return strtol(p + 13, NULL, 10);
}

static int count_segments(const char *dir)
{
	uint64_t *segs = NULL;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	ck_assert_int_ge(fd, 0);
	n = seg_list(fd, &segs);
	close(fd);
	free(segs);
	return n;
}

/* Read lines until records [from, to) have been seen, in order, seqs rising. */
static void read_upto(struct child *c, long from, long to, uint64_t *last_seq, uint64_t deadline)
{
	for (long i = from; i < to; i++) {
		char line[4096];
		uint64_t seq;

		ck_assert_msg(
			next_line(c, line, sizeof(line), deadline),
			"be-read --follow printed records up to %ld of %ld in time; stderr:\n%s", i,
			to, tu_file_text(c->err));
		seq = json_u64(line, "seq");
		ck_assert_msg(json_msg_index(line) == i, "record %ld expected, got: %s", i, line);
		ck_assert_msg(seq > *last_seq, "seq %" PRIu64 " after %" PRIu64, seq, *last_seq);
		*last_seq = seq;
	}
}

START_TEST(test_follow_rotation)
{
	const long total = 20000, first = 500;
	struct tu_daemon d;
	struct child c;
	char dir[400], *argv[] = { NULL, "--follow", "--json", dir, NULL };
	uint64_t last_seq = 0;
	be_store *s;
	pid_t writer;
	int st;

	/* Batches of at most 64K: a segment is full after one or two. */
	tu_daemon_config(&d, "batch_bytes = 64K\n", STORE_CONF);
	ck_assert_msg(tu_daemon_start(&d, "L") == 0, "daemon:\n%s", tu_file_text(d.log));
	snprintf(dir, sizeof(dir), "%s/L", d.data_dir);
	s = open_L(&d);
	for (long i = 0; i < first; i++)
		ck_assert_int_eq(write_log(s, (int)i), 0);
	ck_assert_int_eq(be_flush(s, 10000), 0);
	ck_assert_int_eq(be_close(s), 0);

	spawn(&c, d.dir, argv);
	/* A writer process, without pause, while be-read follows. */
	writer = tu_spawn();
	if (writer == 0) {
		struct be_open_opts o = { .instance = d.instance, .write_timeout_ms = 10000 };
		be_store *w;

		if (be_open("L", &o, &w) != 0)
			_exit(2);
		for (long i = first; i < total; i++)
			if (write_log(w, (int)i) != 0)
				_exit(3);
		_exit(be_flush(w, 20000) == 0 && be_close(w) == 0 ? 0 : 4);
	}
	tu_note_pid(writer);
	read_upto(&c, 0, total, &last_seq, tu_now_ms() + (uint64_t)tu_bound(60000));
	st = tu_wait_exit(writer, tu_bound(20000));
	tu_forget_pid(writer);
	ck_assert_int_eq(st, 0);
	ck_assert_msg(count_segments(dir) >= 10, "only %d segments: no rotation to follow",
		      count_segments(dir));

	ck_assert_msg(pending(&c) == 0, "more output: %.*s", (int)c.len, c.buf);
	st = finish(&c, SIGTERM);
	ck_assert_msg(st == 0, "be-read --follow after SIGTERM: status %d; stderr:\n%s", st,
		      tu_file_text(c.err));
	ck_assert_str_eq(tu_file_text(c.err), "");
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

START_TEST(test_follow_retention)
{
	const long chunk = 300, chunks = 20;
	struct tu_daemon d;
	struct child c;
	char dir[400], first_seg[600], *argv[] = { NULL, "-f", "--json", dir, NULL };
	uint64_t last_seq = 0, *segs = NULL;
	be_store *s;
	int n, fd, st;

	tu_daemon_config(&d, NULL, STORE_CONF "retain_bytes = 200K\n");
	ck_assert_msg(tu_daemon_start(&d, "L") == 0, "daemon:\n%s", tu_file_text(d.log));
	snprintf(dir, sizeof(dir), "%s/L", d.data_dir);
	s = open_L(&d);
	ck_assert_int_eq(write_log(s, 0), 0);
	ck_assert_int_eq(be_flush(s, 10000), 0);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = seg_list(fd, &segs);
	close(fd);
	ck_assert_int_eq(n, 1);
	seg_path(first_seg, sizeof(first_seg), dir, segs[0]);
	free(segs);

	spawn(&c, d.dir, argv);
	read_upto(&c, 0, 1, &last_seq, tu_now_ms() + (uint64_t)tu_bound(15000));
	/* In steps, so that be-read keeps up with retention, which deletes behind it. */
	for (long k = 0; k < chunks; k++) {
		long from = 1 + k * chunk;

		for (long i = from; i < from + chunk; i++)
			ck_assert_int_eq(write_log(s, (int)i), 0);
		ck_assert_int_eq(be_flush(s, 10000), 0);
		read_upto(&c, from, from + chunk, &last_seq,
			  tu_now_ms() + (uint64_t)tu_bound(15000));
	}
	ck_assert_int_eq(be_close(s), 0);
	ck_assert_msg(tu_file_size(first_seg) < 0, "retention did not delete %s", first_seg);

	st = finish(&c, SIGTERM);
	ck_assert_msg(st == 0, "be-read --follow after SIGTERM: status %d; stderr:\n%s", st,
		      tu_file_text(c.err));
	ck_assert_str_eq(tu_file_text(c.err), "");
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* ------------------------------------------------------------------------
 * follow: segments by hand.
 */

START_TEST(test_follow_partial)
{
	static uint8_t buf[64 << 10];
	char dir[256], *argv[] = { NULL, "--follow", dir, NULL };
	struct child c;
	struct hseg h;
	size_t len, half;
	uint64_t before, deadline;
	int st;

	tu_tmpdir(dir, sizeof(dir));
	h_create(&h, dir, 1);
	h_batch(&h, 1, 3, "a");
	spawn(&c, dir, argv);
	expect_lines(&c, "a", 1, 3);

	/* Half a batch: be-read reads it, prints nothing and says nothing. */
	len = mk_batch(buf, sizeof(buf), 4, 3, 2000, "b", 1000);
	half = len / 2;
	before = rchar(c.pid);
	h_append(&h, buf, half);
	deadline = tu_now_ms() + (uint64_t)tu_bound(10000);
	while (rchar(c.pid) < before + half && tu_now_ms() < deadline)
		tu_sleep_ms(2);
	ck_assert_msg(rchar(c.pid) >= before + half,
		      "be-read did not read the half batch (rchar %" PRIu64 " -> %" PRIu64 ")",
		      before, rchar(c.pid));
	ck_assert_msg(pending(&c) == 0, "be-read printed part of a batch: %.*s", (int)c.len, c.buf);
	ck_assert_str_eq(tu_file_text(c.err), "");

	/* The rest: now it is printed, once. */
	h_append(&h, buf + half, len - half);
	expect_lines(&c, "b", 4, 3);
	h_batch(&h, 7, 2, "c");
	expect_lines(&c, "c", 7, 2);
	st = finish(&c, SIGTERM);
	ck_assert_msg(st == 0, "status %d; stderr:\n%s", st, tu_file_text(c.err));
	ck_assert_msg(pending(&c) == 0, "more output: %.*s", (int)c.len, c.buf);
	ck_assert_str_eq(tu_file_text(c.err), "");
	h_close(&h);
}
END_TEST

START_TEST(test_follow_torn_newer)
{
	static uint8_t buf[64 << 10];
	char dir[256], *argv[] = { NULL, "--follow", dir, NULL }, want[800];
	struct child c;
	struct hseg a, b;
	uint64_t torn_at;
	size_t len;
	int st;

	tu_tmpdir(dir, sizeof(dir));
	h_create(&a, dir, 1);
	h_batch(&a, 1, 3, "a");
	len = mk_batch(buf, sizeof(buf), 4, 3, 2000, "lost", 0);
	torn_at = h_append(&a, buf, len - 40); /* a crash in the middle of a batch */
	spawn(&c, dir, argv);
	expect_lines(&c, "a", 1, 3);

	/* A newer segment: the torn tail will never be completed. */
	h_create(&b, dir, 7);
	h_batch(&b, 7, 3, "b");
	expect_lines(&c, "b", 7, 3);
	h_batch(&b, 10, 3, "b");
	expect_lines(&c, "b", 10, 3);
	snprintf(want, sizeof(want),
		 "%s: torn tail of %zu bytes at offset %" PRIu64 " and a newer segment exists",
		 a.path, len - 40, torn_at);
	st = finish(&c, SIGTERM);
	ck_assert_msg(count_in(tu_file_text(c.err), want) == 1, "stderr should say once '%s':\n%s",
		      want, tu_file_text(c.err));
	ck_assert_int_eq(count_lines(tu_file_text(c.err)), 1);
	ck_assert_msg(st == 2, "status %d (damage was met: 2)", st);
	h_close(&a);
	h_close(&b);
}
END_TEST

START_TEST(test_follow_set_aside)
{
	char dir[256], *argv[] = { NULL, "--follow", dir, NULL }, torn[700];
	uint8_t garbage[96];
	struct child c;
	struct hseg a, b;
	uint64_t deadline;
	int st;

	tu_tmpdir(dir, sizeof(dir));
	h_create(&a, dir, 1);
	h_batch(&a, 1, 3, "a");
	/* A crash during rotation: the newer segment holds its header and garbage. */
	h_create(&b, dir, 4);
	memset(garbage, 0xa5, sizeof(garbage));
	h_append(&b, garbage, sizeof(garbage));
	spawn(&c, dir, argv);
	expect_lines(&c, "a", 1, 3);
	deadline = tu_now_ms() + (uint64_t)tu_bound(10000);
	while (!has_open(c.pid, b.path) && tu_now_ms() < deadline)
		tu_sleep_ms(2);
	ck_assert_msg(has_open(c.pid, b.path), "be-read did not move to %s", b.path);

	/* Recovery sets it aside and the daemon goes on in the older one. */
	snprintf(torn, sizeof(torn), "%s.torn", b.path);
	ck_assert_int_eq(rename(b.path, torn), 0);
	h_batch(&a, 4, 3, "a");
	expect_lines(&c, "a", 4, 3);
	h_batch(&a, 7, 2, "a");
	expect_lines(&c, "a", 7, 2);
	st = finish(&c, SIGTERM);
	ck_assert_msg(st == 0, "status %d; stderr:\n%s", st, tu_file_text(c.err));
	ck_assert_msg(pending(&c) == 0, "more output: %.*s", (int)c.len, c.buf);
	h_close(&a);
	h_close(&b);
}
END_TEST

START_TEST(test_follow_rewrite)
{
	static uint8_t buf[64 << 10];
	char dir[256], *argv[] = { NULL, "--follow", dir, NULL };
	struct child c;
	struct hseg h;
	uint64_t off2;
	size_t len;
	int st;

	tu_tmpdir(dir, sizeof(dir));
	h_create(&h, dir, 1);
	h_batch(&h, 1, 3, "a");
	off2 = h_batch(&h, 4, 2, "a");
	spawn(&c, dir, argv);
	expect_lines(&c, "a", 1, 5);

	/* Cut back to the second batch and written again, longer (a failed fdatasync). */
	len = mk_batch(buf, sizeof(buf), 4, 5, 1000, "a", 0);
	h.off = off2;
	h_append(&h, buf, len);
	expect_lines(&c, "a", 6, 3);
	h_batch(&h, 9, 2, "a");
	expect_lines(&c, "a", 9, 2);

	/* Cut back to the file header, everything written again and more. */
	ck_assert_int_eq(ftruncate(h.fd, SEG_FILE_HDR_SIZE), 0);
	len = mk_batch(buf, sizeof(buf), 1, 12, 1000, "a", 0);
	h.off = SEG_FILE_HDR_SIZE;
	h_append(&h, buf, len);
	expect_lines(&c, "a", 11, 2);
	h_batch(&h, 13, 1, "a");
	expect_lines(&c, "a", 13, 1);

	st = finish(&c, SIGTERM);
	ck_assert_msg(st == 0, "status %d; stderr:\n%s", st, tu_file_text(c.err));
	ck_assert_msg(pending(&c) == 0, "more output: %.*s", (int)c.len, c.buf);
	ck_assert_str_eq(tu_file_text(c.err), "");
	h_close(&h);
}
END_TEST

START_TEST(test_follow_ends)
{
	char dir[256], line[4096];
	char *argv_count[] = { NULL, "-f", "--count", "5", dir, NULL };
	char *argv[] = { NULL, "-f", dir, NULL };
	struct child c;
	struct hseg h;
	int st;

	tu_tmpdir(dir, sizeof(dir));
	h_create(&h, dir, 1);
	h_batch(&h, 1, 3, "a");

	/* --count: it ends by itself once the count is there. */
	spawn(&c, dir, argv_count);
	expect_lines(&c, "a", 1, 3);
	h_batch(&h, 4, 3, "a");
	expect_lines(&c, "a", 4, 2);
	st = finish(&c, 0);
	ck_assert_msg(st == 0, "--follow --count 5: status %d; stderr:\n%s", st,
		      tu_file_text(c.err));
	ck_assert_msg(pending(&c) == 0, "after --count 5: %.*s", (int)c.len, c.buf);
	close(c.out);

	/* SIGINT. */
	spawn(&c, dir, argv);
	expect_lines(&c, "a", 1, 6);
	st = finish(&c, SIGINT);
	ck_assert_msg(st == 0, "--follow, SIGINT: status %d; stderr:\n%s", st, tu_file_text(c.err));
	close(c.out);

	/* The reader of its output goes away while it waits: it ends, status 0. */
	spawn(&c, dir, argv);
	ck_assert(next_line(&c, line, sizeof(line), tu_now_ms() + (uint64_t)tu_bound(10000)));
	close(c.out);
	c.out = -1;
	st = finish(&c, 0);
	ck_assert_msg(st == 0, "--follow, output closed: status %d; stderr:\n%s", st,
		      tu_file_text(c.err));
	ck_assert_str_eq(tu_file_text(c.err), "");
	h_close(&h);
}
END_TEST

/* ------------------------------------------------------------------------
 * filters.
 */

/* ISO 8601 of ns, in UTC ("Z") or shifted by off_min minutes with its offset. */
static void iso(char *out, size_t len, uint64_t ns, int off_min)
{
	time_t t = (time_t)(ns / NSEC_PER_SEC) + off_min * 60;
	struct tm tm;
	char base[64];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (off_min == 0)
		snprintf(out, len, "%s.%09" PRIu64 "Z", base, ns % NSEC_PER_SEC);
	else
		snprintf(out, len, "%s.%09" PRIu64 "%c%02d:%02d", base, ns % NSEC_PER_SEC,
			 off_min < 0 ? '-' : '+', abs(off_min) / 60, abs(off_min) % 60);
}

/* run_lines() - be-read --json with extra args (NULL-terminated) on dir: status, message indexes. */
static int run_lines(const char *tmp, const char *dir, const char *const *args, long *idx, int *n,
		     char *err, size_t errlen)
{
	char *argv[16];
	struct run r;
	char *out, *line;
	int k = 1;

	argv[k++] = "--json";
	for (; *args; args++)
		argv[k++] = (char *)*args;
	argv[k++] = (char *)dir;
	argv[k] = NULL;
	r = run(tmp, argv);
	out = slurp(r.out_path);
	*n = 0;
	for (line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
		idx[(*n)++] = json_msg_index(line);
	free(out);
	tu_read_text(r.err_path, err, errlen);
	return r.status;
}

START_TEST(test_filters)
{
	struct tu_daemon d;
	char dir[400], err[4096], t1s[64], t2s[64], t1iso[80], t2iso[80], t1plus[80], t2minus[80],
		seq6[32];
	uint64_t t1, t2;
	long idx[64];
	be_store *s;
	int n, st;

	tu_daemon_config(&d, NULL, STORE_CONF);
	ck_assert_msg(tu_daemon_start(&d, "L") == 0, "daemon:\n%s", tu_file_text(d.log));
	snprintf(dir, sizeof(dir), "%s/L", d.data_dir);
	s = open_L(&d);
	/* Three groups of five, a clock reading between them, 5 ms apart. */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(write_log(s, i), 0);
	tu_sleep_ms(5);
	t1 = now_real_ns();
	tu_sleep_ms(5);
	for (int i = 5; i < 10; i++)
		ck_assert_int_eq(write_log(s, i), 0);
	tu_sleep_ms(5);
	t2 = now_real_ns();
	tu_sleep_ms(5);
	for (int i = 10; i < 15; i++)
		ck_assert_int_eq(write_log(s, i), 0);
	ck_assert_int_eq(be_flush(s, 10000), 0);
	ck_assert_int_eq(be_close(s), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	snprintf(t1s, sizeof(t1s), "@%" PRIu64 ".%09" PRIu64, t1 / NSEC_PER_SEC, t1 % NSEC_PER_SEC);
	snprintf(t2s, sizeof(t2s), "@%" PRIu64 ".%09" PRIu64, t2 / NSEC_PER_SEC, t2 % NSEC_PER_SEC);
	iso(t1iso, sizeof(t1iso), t1, 0);
	iso(t2iso, sizeof(t2iso), t2, 0);
	iso(t1plus, sizeof(t1plus), t1, 60);
	iso(t2minus, sizeof(t2minus), t2, -330);

	{
		const char *a[] = { "--since", t1s, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 10 && idx[0] == 5 && idx[9] == 14,
			      "--since %s: status %d, %d lines from %ld; %s", t1s, st, n, idx[0],
			      err);
	}
	{
		const char *a[] = { "--since", t1s, "--until", t2s, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 5 && idx[0] == 5 && idx[4] == 9,
			      "--since/--until @: status %d, %d lines; %s", st, n, err);
	}
	{
		const char *a[] = { "--since", t1iso, "--until", t2iso, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 5 && idx[0] == 5 && idx[4] == 9,
			      "--since %s --until %s: status %d, %d lines; %s", t1iso, t2iso, st, n,
			      err);
	}
	{
		const char *a[] = { "--since", t1plus, "--until", t2minus, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 5 && idx[0] == 5 && idx[4] == 9,
			      "--since %s --until %s: status %d, %d lines; %s", t1plus, t2minus, st,
			      n, err);
	}
	{
		const char *a[] = { "--until", t1s, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 5 && idx[0] == 0 && idx[4] == 4,
			      "--until: status %d, %d lines; %s", st, n, err);
	}
	{
		const char *a[] = { "--since", "-1h", "--count", "7", NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 7 && idx[0] == 0 && idx[6] == 6,
			      "--since -1h --count 7: status %d, %d lines; %s", st, n, err);
	}
	{
		const char *a[] = { "--since", "now", NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 0, "--since now: status %d, %d lines; %s", st, n,
			      err);
	}
	{
		/* The seq of record 6, then --from-seq it with --count 2. */
		char *argv[] = { NULL, "--json", "--since", t1s, "--count", "2", dir, NULL };
		struct run r = run(d.dir, argv);
		char *out = slurp(r.out_path), *second = strchr(out, '\n');

		ck_assert_ptr_nonnull(second);
		snprintf(seq6, sizeof(seq6), "%" PRIu64, json_u64(second + 1, "seq"));
		free(out);
	}
	{
		const char *a[] = { "--from-seq", seq6, "--count", "2", "--until", t2s, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 2 && idx[0] == 6 && idx[1] == 7,
			      "--from-seq %s --count 2: status %d, %d lines; %s", seq6, st, n, err);
	}
	{
		const char *a[] = { "--count", "0", NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 0 && n == 0, "--count 0: status %d, %d lines", st, n);
	}

	/* Bad arguments: exit 1, one line, naming the option. */
	{
		static const char *const bad[][3] = {
			{ "--since", "yesterday", NULL },
			{ "--since", "2026-11-27T01:02:03", NULL }, /* no zone */
			{ "--since", "2026-02-30T01:02:03Z", NULL },
			{ "--until", "2026-11-27T25:00:00Z", NULL },
			{ "--since", "@12x", NULL },
			{ "--since", "-5y", NULL },
			{ "--until", "1969-12-31T23:59:59Z", NULL },
			{ "--count", "-1", NULL },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			st = run_lines(d.dir, dir, bad[i], idx, &n, err, sizeof(err));
			ck_assert_msg(st == 1 && count_lines(err) == 1 && strstr(err, bad[i][0]) &&
					      n == 0,
				      "%s %s: status %d, stderr:\n%s", bad[i][0], bad[i][1], st,
				      err);
		}
	}
	{
		const char *a[] = { "--since", t2s, "--until", t1s, NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 1 && count_lines(err) == 1, "--since > --until: %d\n%s", st,
			      err);
	}
	{
		const char *a[] = { "--follow", "--until", "now", NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 1 && count_lines(err) == 1, "--follow --until: %d\n%s", st,
			      err);
	}
	{
		const char *a[] = { "--follow", "--verify", NULL };

		st = run_lines(d.dir, dir, a, idx, &n, err, sizeof(err));
		ck_assert_msg(st == 1 && count_lines(err) == 1, "--follow --verify: %d\n%s", st,
			      err);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * verify.
 */

struct expect {
	uint64_t segments, batches, records, first, last;
};

/* What seg_scan() finds in the store: the numbers --verify must give. */
static struct expect scan_store(const char *dir)
{
	struct expect e = { 0 };
	uint64_t *segs = NULL;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	ck_assert_int_ge(fd, 0);
	n = seg_list(fd, &segs);
	for (int i = 0; i < n; i++) {
		char name[SEG_NAME_LEN + 1];
		struct seg_scan_result r;
		int sfd;

		seg_name(name, segs[i]);
		sfd = openat(fd, name, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(sfd, 0);
		ck_assert_int_eq(seg_scan(sfd, &r, NULL, NULL, NULL), 0);
		close(sfd);
		e.segments++;
		e.batches += r.batches;
		e.records += r.records;
		if (!e.first)
			e.first = r.first_seq;
		e.last = r.last_seq;
	}
	free(segs);
	close(fd);
	return e;
}

static void check_total(const char *out, const struct expect *e, const char *status)
{
	char want[512];
	const char *t = strstr(out, "total: ");

	ck_assert_msg(t, "no total line in:\n%s", out);
	snprintf(want, sizeof(want),
		 "total: segments=%" PRIu64 " batches=%" PRIu64 " records=%" PRIu64
		 " first_seq=%" PRIu64 " last_seq=%" PRIu64 " ",
		 e->segments, e->batches, e->records, e->first, e->last);
	ck_assert_msg(strncmp(t, want, strlen(want)) == 0, "expected '%s...', got:\n%s", want, t);
	ck_assert_msg(strstr(t, status), "expected %s in:\n%s", status, t);
}

START_TEST(test_verify)
{
	struct tu_daemon d;
	char dir[400], *argv[] = { NULL, "--verify", dir, NULL }, *out, want[800];
	struct seg_file_hdr fh;
	struct seg_batch_hdr bh;
	struct expect e;
	uint64_t *segs = NULL, off, bad_off = 0;
	char path[700], path3[700], renamed[700];
	struct run r;
	be_store *s;
	int fd, n, nb = 0;

	tu_daemon_config(&d, NULL, STORE_CONF);
	ck_assert_msg(tu_daemon_start(&d, "L") == 0, "daemon:\n%s", tu_file_text(d.log));
	snprintf(dir, sizeof(dir), "%s/L", d.data_dir);
	s = open_L(&d);
	for (int i = 0; i < 3000; i++) {
		ck_assert_int_eq(write_log(s, i), 0);
		if (i % 100 == 99)
			ck_assert_int_eq(be_flush(s, 10000), 0);
	}
	ck_assert_int_eq(be_close(s), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	e = scan_store(dir);
	ck_assert_uint_ge(e.segments, 3);
	ck_assert_uint_eq(e.records, 3000);
	r = run(d.dir, argv);
	out = slurp(r.out_path);
	ck_assert_msg(r.status == 0, "--verify on a clean store: %d\n%s\n%s", r.status, out,
		      tu_file_text(r.err_path));
	check_total(out, &e,
		    " corrupt=0 torn_tails=0 seq_errors=0 name_errors=0 bad_segments=0 "
		    "status=clean");
	ck_assert_int_eq(count_lines(out), (int)e.segments + 1); /* no records */
	ck_assert_str_eq(tu_file_text(r.err_path), "");
	free(out);
	argv[1] = "--verify-only";
	r = run(d.dir, argv);
	out = slurp(r.out_path);
	ck_assert_int_eq(r.status, 0);
	check_total(out, &e, "status=clean");
	free(out);
	argv[1] = "--verify";

	/* A flipped byte in the second batch of the second segment. */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = seg_list(fd, &segs);
	close(fd);
	ck_assert_int_ge(n, 3);
	seg_path(path, sizeof(path), dir, segs[1]);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	for (off = SEG_FILE_HDR_SIZE; pread(fd, &bh, sizeof(bh), (off_t)off) == sizeof(bh);
	     off += SEG_BATCH_HDR_SIZE + bh.length)
		if (++nb == 2)
			bad_off = off;
	ck_assert_msg(nb >= 3, "segment 2 has %d batches", nb);
	{
		uint8_t c;
		off_t at = (off_t)(bad_off + SEG_BATCH_HDR_SIZE + sizeof(struct rec_hdr) + 5);

		ck_assert_int_eq(pread(fd, &c, 1, at), 1);
		c ^= 0x01;
		ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
	}
	close(fd);
	r = run(d.dir, argv);
	out = slurp(r.out_path);
	ck_assert_msg(r.status == 2, "--verify on a flipped byte: %d\n%s", r.status, out);
	snprintf(want, sizeof(want), "%s: corrupt batch at offset %" PRIu64, path, bad_off);
	ck_assert_msg(strstr(out, want), "no '%s' in:\n%s", want, out);
	ck_assert_msg(strstr(out, " corrupt=1 ") && strstr(out, "status=damaged"), "%s", out);
	ck_assert_ptr_null(strstr(out, " type=")); /* no records */
	free(out);

	/* A segment renamed above its first seq: named, exit 2. */
	seg_path(path3, sizeof(path3), dir, segs[2]);
	seg_path(renamed, sizeof(renamed), dir, segs[2] + 1);
	ck_assert_int_eq(rename(path3, renamed), 0);
	r = run(d.dir, argv);
	out = slurp(r.out_path);
	ck_assert_int_eq(r.status, 2);
	snprintf(want, sizeof(want),
		 "%s: named after seq %" PRIu64 ", above its first seq %" PRIu64, renamed,
		 segs[2] + 1, segs[2]);
	ck_assert_msg(strstr(out, want), "no '%s' in:\n%s", want, out);
	ck_assert_msg(strstr(out, " name_errors=2 "), "%s", out); /* the name and the header */
	free(out);
	free(segs);
}
END_TEST

/* ------------------------------------------------------------------------
 * salvage.
 */

START_TEST(test_salvage)
{
	char dir[256], *argv[] = { NULL, NULL, dir, NULL }, *out, *err, want[800];
	struct hseg a, b;
	uint64_t offs[4];
	struct run r;
	int fd;

	tu_tmpdir(dir, sizeof(dir));
	h_create(&a, dir, 1);
	for (int i = 0; i < 4; i++)
		offs[i] = h_batch(&a, 1 + 3 * (uint64_t)i, 3, "a");
	h_create(&b, dir, 13);
	h_batch(&b, 13, 3, "b");
	h_close(&b);
	/* One flipped byte in the second batch's records. */
	{
		uint8_t c;
		off_t at = (off_t)(offs[1] + SEG_BATCH_HDR_SIZE + sizeof(struct rec_hdr) + 1);

		fd = a.fd;
		ck_assert_int_eq(pread(fd, &c, 1, at), 1);
		c ^= 0x40;
		ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
	}
	h_close(&a);
	snprintf(want, sizeof(want), "%s: corrupt batch at offset %" PRIu64, a.path, offs[1]);

	/* Without --salvage: what comes before, then it stops. */
	argv[1] = dir;
	argv[2] = NULL;
	r = run(dir, argv);
	out = slurp(r.out_path);
	err = slurp(r.err_path);
	ck_assert_msg(r.status == 2, "status %d\n%s", r.status, err);
	ck_assert_msg(strstr(err, want) && strstr(err, "--salvage"), "no '%s' in:\n%s", want, err);
	ck_assert_int_eq(count_lines(err), 1);
	ck_assert_msg(count_lines(out) == 3 && strstr(out, "data=\"a 3\"") &&
			      !strstr(out, "data=\"a 7\"") && !strstr(out, "data=\"b 13\""),
		      "without --salvage:\n%s", out);
	free(out);
	free(err);

	/* With it: everything else. */
	argv[1] = "--salvage";
	argv[2] = dir;
	r = run(dir, argv);
	out = slurp(r.out_path);
	err = slurp(r.err_path);
	ck_assert_msg(r.status == 2, "status %d\n%s", r.status, err);
	ck_assert_msg(strstr(err, want) && strstr(err, "bytes skipped"), "no '%s' in:\n%s", want,
		      err);
	ck_assert_int_eq(count_lines(err), 1);
	ck_assert_msg(count_lines(out) == 12 && strstr(out, "data=\"a 3\"") &&
			      !strstr(out, "data=\"a 4\"") && strstr(out, "data=\"a 7\"") &&
			      strstr(out, "data=\"a 12\"") && strstr(out, "data=\"b 15\""),
		      "with --salvage:\n%s", out);
	free(out);
	free(err);
}
END_TEST

/* ------------------------------------------------------------------------
 * memory.
 */

/* A segment of about `bytes` in batches of about batch_bytes, records of 200 bytes. */
static uint64_t write_big(const char *dir, uint64_t first_seq, size_t bytes, size_t batch_bytes)
{
	size_t per = batch_bytes / rec_size(200), cap = batch_bytes + (64 << 10);
	uint8_t *buf = malloc(cap);
	uint64_t seq = first_seq;
	struct hseg h;

	ck_assert_ptr_nonnull(buf);
	h_create(&h, dir, first_seq);
	while (h.off < bytes) {
		size_t len = mk_batch(buf, cap, seq, (int)per, 5000, "m", 200);

		h_append(&h, buf, len);
		seq += per;
	}
	h_close(&h);
	free(buf);
	return seq - first_seq;
}

/* vm_hwm_kb() - the peak RSS of pid's program in KiB (VmHWM: since its exec, not before). */
static long vm_hwm_kb(pid_t pid)
{
	char path[64], buf[4096];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	tu_read_text(path, buf, sizeof(buf));
	p = strstr(buf, "VmHWM:");
	ck_assert_msg(p, "no VmHWM in %s", path);
	return strtol(p + 6, NULL, 10);
}

/* drain_until() - read the child's output until `needle` went by: 1, or 0 at the deadline. */
static int drain_until(struct child *c, const char *needle, uint64_t deadline)
{
	size_t nlen = strlen(needle);

	c->len = 0;
	for (;;) {
		struct pollfd pfd = { .fd = c->out, .events = POLLIN };
		uint64_t now = tu_now_ms();
		ssize_t n;

		if (memmem(c->buf, c->len, needle, nlen))
			return 1;
		if (c->len >= nlen) {
			memmove(c->buf, c->buf + c->len - (nlen - 1), nlen - 1);
			c->len = nlen - 1;
		}
		if (now >= deadline)
			return 0;
		if (poll(&pfd, 1, (int)(deadline - now)) <= 0)
			continue;
		n = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return 0;
		c->len += (size_t)n;
	}
}

/*
 * follow_peak() - be-read --follow [opt] on dir until it has printed the
 * record last_seq (then it only waits): its peak RSS in KiB, from
 * /proc/PID/status while it runs.  (wait4's ru_maxrss would count the
 * forked test process before the exec too, which under ASan is most of it.)
 */
static long follow_peak(const char *dir, const char *opt, uint64_t last_seq)
{
	char *argv[] = { NULL, "--follow", (char *)opt, (char *)dir, NULL }, needle[64];
	struct child c;
	long kb;
	int st;

	if (!opt) {
		argv[2] = (char *)dir;
		argv[3] = NULL;
	}
	if (opt && strcmp(opt, "--json") == 0)
		snprintf(needle, sizeof(needle), "\"seq\":%" PRIu64 ",", last_seq);
	else
		snprintf(needle, sizeof(needle), "seq=%" PRIu64 " ", last_seq);
	spawn(&c, dir, argv);
	ck_assert_msg(drain_until(&c, needle, tu_now_ms() + (uint64_t)tu_bound(60000)),
		      "be-read --follow %s: '%s' not printed in time; stderr:\n%s", opt ? opt : "",
		      needle, tu_file_text(c.err));
	kb = vm_hwm_kb(c.pid);
	st = finish(&c, SIGTERM);
	ck_assert_msg(st == 0, "status %d; stderr:\n%s", st, tu_file_text(c.err));
	ck_assert_str_eq(tu_file_text(c.err), "");
	close(c.out);
	return kb;
}

START_TEST(test_memory)
{
	const size_t big = 50u << 20;
	char small_dir[256], big_dir[256], huge_dir[256], *out;
	static const char *const modes[] = { NULL, "--json" };
	uint64_t n, n_small;
	struct run r;

	tu_tmpdir(small_dir, sizeof(small_dir));
	tu_tmpdir(big_dir, sizeof(big_dir));
	n_small = write_big(small_dir, 1, 64 << 10, 32 << 10);
	n = write_big(big_dir, 1, big, 1 << 20);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		long small_kb = follow_peak(small_dir, modes[i], n_small);
		long big_kb = follow_peak(big_dir, modes[i], n);

		fprintf(stderr,
			"beread/memory: %s: peak RSS %ld KiB on a %zu MiB segment (%" PRIu64
			" records), %ld KiB on a 64 KiB one\n",
			modes[i] ? modes[i] : "text", big_kb, big >> 20, n, small_kb);
		/* The window and the output buffer: a few MiB, whatever the segment. */
		ck_assert_msg(big_kb - small_kb < 12 * 1024,
			      "be-read %s: peak RSS %ld KiB on a %zu MiB segment, %ld KiB on a "
			      "tiny one",
			      modes[i] ? modes[i] : "", big_kb, big >> 20, small_kb);
	}
	{
		/* --verify reads it all too (wait4's figure: see follow_peak()). */
		char *argv[] = { NULL, "--verify", small_dir, NULL }, want[128];
		long small_kb;

		r = run(small_dir, argv);
		ck_assert_int_eq(r.status, 0);
		small_kb = r.maxrss_kb;
		argv[2] = big_dir;
		r = run(big_dir, argv);
		ck_assert_int_eq(r.status, 0);
		fprintf(stderr,
			"beread/memory: --verify: ru_maxrss %ld KiB (50 MiB), %ld KiB (64 KiB)\n",
			r.maxrss_kb, small_kb);
		ck_assert_msg(r.maxrss_kb - small_kb < 12 * 1024, "--verify: %ld KiB, %ld KiB",
			      r.maxrss_kb, small_kb);
		out = slurp(r.out_path);
		snprintf(want, sizeof(want),
			 " records=%" PRIu64 " first_seq=1 last_seq=%" PRIu64 " ", n, n);
		ck_assert_msg(strstr(out, want), "no '%s' in:\n%s", want, out);
		free(out);
	}

	/* One batch larger than the read window (12 MiB): read all the same. */
	tu_tmpdir(huge_dir, sizeof(huge_dir));
	n = write_big(huge_dir, 1, SEG_FILE_HDR_SIZE + 1, 12u << 20);
	ck_assert_uint_gt(n, 50000);
	{
		char *argv[] = { NULL, huge_dir, NULL }, want[128];

		r = run(huge_dir, argv);
		ck_assert_msg(r.status == 0, "status %d\n%s", r.status, tu_file_text(r.err_path));
		out = slurp(r.out_path);
		ck_assert_int_eq(count_lines(out), (int)n);
		snprintf(want, sizeof(want), "data=\"m %" PRIu64 "xx", n);
		ck_assert_msg(strstr(out, want), "no '%s'", want);
		free(out);
	}
}
END_TEST

Suite *beread_suite(void)
{
	Suite *s = suite_create("beread");
	TCase *tc;

	if (access(BE_READ, X_OK) != 0) {
		fprintf(stderr, "beread: SKIP: no %s\n", BE_READ);
		return s;
	}
	tc = tcase_create("follow");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_follow_rotation);
	tcase_add_test(tc, test_follow_retention);
	tcase_add_test(tc, test_follow_partial);
	tcase_add_test(tc, test_follow_torn_newer);
	tcase_add_test(tc, test_follow_set_aside);
	tcase_add_test(tc, test_follow_rewrite);
	tcase_add_test(tc, test_follow_ends);
	suite_add_tcase(s, tc);

	tc = tcase_create("filters");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_filters);
	suite_add_tcase(s, tc);

	tc = tcase_create("verify");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_verify);
	tcase_add_test(tc, test_salvage);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_memory);
	suite_add_tcase(s, tc);
	return s;
}
