/*
 * test_shmdump.c - shm-dump: the copy-then-recheck of --records (white box, with
 * ring_collect() hooked to move the tail mid-copy), and the program itself: table,
 * one store, JSON validity, records (--tail, --hex), damaged and truncated rings,
 * exit codes; on a live daemon (columns, fill bar, a SIGKILLed daemon dead at once,
 * rates), the Prometheus text (parsed, values checked against the header) and file,
 * --watch, the lock holder, and 64 rings listed fast.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/*
 * The program is compiled into this file, its main() renamed, and every
 * call it makes to ring_collect() goes through collect_hooked() below: that
 * is where a test plays the daemon and the writers racing the copy.
 */
/* clang-format off */
#define main shm_dump_main
#define ring_collect collect_hooked
#include "server/shm-dump.c"
#undef ring_collect
#undef main
/* clang-format on */

#include "tests/testutil.h"

/* ring.h was read under the hook's name: the real function, for the hook to call. */
int ring_collect(const struct ring_map *m, uint64_t tail, uint64_t head, uint64_t min_seq,
		 uint8_t *out, size_t cap, struct ring_batch *res);

/* Called after each ring_collect() made by shm-dump, with the call's number (0, 1...). */
static void (*after_collect)(int call);
static int collect_calls;
static struct ring_map tm; /* the ring under test, writable */

int collect_hooked(const struct ring_map *m, uint64_t tail, uint64_t head, uint64_t min_seq,
		   uint8_t *out, size_t cap, struct ring_batch *res)
{
	int ret = ring_collect(m, tail, head, min_seq, out, cap, res);

	if (after_collect)
		after_collect(collect_calls);
	collect_calls++;
	return ret;
}

#define FIRST_SEQ 1000

/* A raw ring of the given capacity in a fresh instance, n records of len bytes. */
static void make_ring(char *inst, size_t ilen, const char *store, uint64_t cap, int n, uint32_t len)
{
	struct ring_params p = { .store = store,
				 .capacity = cap,
				 .store_type = BE_TYPE_RAW,
				 .on_full = RING_ON_FULL_DROP,
				 .first_seq = FIRST_SEQ,
				 .flush_bytes = cap,
				 .mode = 0600 };
	uint64_t ct = 0;
	uint8_t *buf;
	int ret;

	if (inst[0] == 0)
		tu_instance(inst, ilen);
	ret = ring_create(inst, &p, &tm);
	ck_assert_msg(ret == 0, "ring_create: %s", strerror(-ret));
	buf = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < n; i++) {
		memset(buf, 'a' + i % 26, len);
		ret = ring_append(&tm, &ct, BE_TYPE_RAW, buf, len, now_real_ns(), 42, 0, NULL);
		ck_assert_msg(ret == 0, "ring_append %d: %s", i, strerror(-ret));
	}
	free(buf);
}

/* The daemon's move: everything below pos is flushed. */
static void set_tail(uint64_t pos)
{
	store_release(&tm.hdr->tail, pos);
}

/* ---- capturing what shm-dump prints to stdout ---- */

static int cap_fd = -1, saved_fd = -1;

static void capture_begin(void)
{
	fflush(stdout);
	cap_fd = memfd_create("out", MFD_CLOEXEC);
	ck_assert_int_ge(cap_fd, 0);
	saved_fd = dup(1);
	dup2(cap_fd, 1);
}

/* Returns what was printed, NUL-terminated, malloc'ed. */
static char *capture_end(void)
{
	off_t len;
	char *s;

	fflush(stdout);
	dup2(saved_fd, 1);
	close(saved_fd);
	len = lseek(cap_fd, 0, SEEK_END);
	s = malloc((size_t)len + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pread(cap_fd, s, (size_t)len, 0), len);
	s[len] = 0;
	close(cap_fd);
	return s;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- white box: positions and the tail recheck ---- */

/* Positions survive the padding at the wrap, including one that ends a copy. */
START_TEST(test_positions_wrap)
{
	char inst[64] = "";
	uint8_t buf[4096];
	struct ring_batch res;
	uint64_t pos[8];

	/* 232-byte records: 15 fill [0, 3480); 2 more, then padding from 3944. */
	make_ring(inst, sizeof(inst), "w", 4096, 15, 200);
	set_tail(3480);
	for (int i = 0; i < 4; i++) {
		uint64_t ct = 3480;
		uint8_t p[200] = { 0 };

		ck_assert_int_eq(ring_append(&tm, &ct, BE_TYPE_RAW, p, 200, 1, 1, 0, NULL), 0);
	}
	ck_assert_uint_eq(tm.hdr->head, 4560);

	ck_assert_int_eq(ring_collect(&tm, 3480, 4560, 0, buf, sizeof(buf), &res), 0);
	ck_assert_uint_eq(res.count, 4);
	ck_assert_int_eq(positions(&tm, buf, &res, pos), 0);
	ck_assert_uint_eq(pos[0], 3480);
	ck_assert_uint_eq(pos[1], 3712);
	ck_assert_uint_eq(pos[2], 4096);
	ck_assert_uint_eq(pos[3], 4328);

	/* Room for two: the copy stops after the padding, end_pos = 4096. */
	ck_assert_int_eq(ring_collect(&tm, 3480, 4560, 0, buf, 2 * 232, &res), 0);
	ck_assert_uint_eq(res.count, 2);
	ck_assert_uint_eq(res.end_pos, 4096);
	ck_assert_int_eq(positions(&tm, buf, &res, pos), 0);
	ck_assert_uint_eq(pos[1], 3712);

	/* A copy that does not add up is refused, not guessed at. */
	res.end_pos = 4000;
	ck_assert_int_eq(positions(&tm, buf, &res, pos), -EBADMSG);
	ring_unmap(&tm);
	ring_unlink(inst, "w");
}
END_TEST

/* The daemon flushes 4 records while shm-dump copies, a writer overwrites them. */
static void flush_four(int call)
{
	if (call == 0) {
		set_tail(4 * 136);
		memset(tm.data, 0xee, 4 * 136);
	}
}

START_TEST(test_records_tail_moved)
{
	char inst[64] = "";
	char *out;
	int ret;

	make_ring(inst, sizeof(inst), "t", 4096, 10, 100); /* 136-byte records */
	after_collect = flush_four;
	capture_begin();
	ret = show_records(&tm, 100, 0, 0, 0);
	out = capture_end();
	ck_assert_int_eq(ret, 0);
	ck_assert_msg(count_lines(out) == 6, "want records 4..9, got:\n%s", out);
	ck_assert_msg(!strncmp(out, "seq=1004 ", 9), "first line: %s", out);
	ck_assert_ptr_nonnull(strstr(out, "seq=1009 "));
	ck_assert_ptr_null(strstr(out, "\\356")); /* nothing of the overwrite */
	free(out);
	ring_unmap(&tm);
	ring_unlink(inst, "t");
}
END_TEST

static void flush_all(int call)
{
	(void)call;
	set_tail(tm.hdr->head);
}

START_TEST(test_records_all_flushed)
{
	char inst[64] = "";
	char *out;

	make_ring(inst, sizeof(inst), "t", 4096, 10, 100);
	after_collect = flush_all;
	capture_begin();
	ck_assert_int_eq(show_records(&tm, 5, 1, 0, 0), 0);
	out = capture_end();
	ck_assert_msg(out[0] == 0, "printed: %s", out);
	free(out);
	ring_unmap(&tm);
	ring_unlink(inst, "t");
}
END_TEST

/* Damage that the tail has not passed is damage: what precedes it, then exit 2. */
START_TEST(test_records_damaged)
{
	char inst[64] = "";
	struct rec_hdr *rh;
	char *out;

	make_ring(inst, sizeof(inst), "t", 4096, 10, 100);
	rh = (struct rec_hdr *)(void *)(tm.data + 5 * 136);
	rh->type = 9;
	capture_begin();
	ck_assert_int_eq(show_records(&tm, 100, 0, 0, 0), EXIT_DAMAGED);
	out = capture_end();
	ck_assert_msg(count_lines(out) == 5, "want records 0..4, got:\n%s", out);
	free(out);
	ring_unmap(&tm);
	ring_unlink(inst, "t");
}
END_TEST

/* Damage met in the copy that the tail then passed was an overwrite: go on. */
static void flush_past_damage(int call)
{
	if (call == 0)
		set_tail(5 * 136);
}

START_TEST(test_records_overwrite_race)
{
	char inst[64] = "";
	struct rec_hdr *rh;
	char *out;

	make_ring(inst, sizeof(inst), "t", 4096, 10, 100);
	rh = (struct rec_hdr *)(void *)(tm.data + 3 * 136);
	rh->seq = 7; /* a writer half-way through the record at 408 */
	after_collect = flush_past_damage;
	capture_begin();
	ck_assert_int_eq(show_records(&tm, 100, 0, 0, 0), 0);
	out = capture_end();
	ck_assert_int_eq(collect_calls, 2);
	ck_assert_msg(count_lines(out) == 5 && !strncmp(out, "seq=1005 ", 9),
		      "want records 5..9, got:\n%s", out);
	free(out);
	ring_unmap(&tm);
	ring_unlink(inst, "t");
}
END_TEST

/* A record larger than the copy chunk is still shown (the buffer grows). */
START_TEST(test_records_large)
{
	char inst[64] = "";
	char *out;

	make_ring(inst, sizeof(inst), "big", 8 << 20, 2, 3 << 19);
	capture_begin();
	ck_assert_int_eq(show_records(&tm, 2, 0, 0, 0), 0);
	out = capture_end();
	ck_assert_int_eq(count_lines(out), 2);
	ck_assert_ptr_nonnull(strstr(out, " len=1572864 data=\"aaaa"));
	ck_assert_ptr_nonnull(strstr(out, "bbb\"...\n"));
	free(out);
	ring_unmap(&tm);
	ring_unlink(inst, "big");
}
END_TEST

/* ---- a small JSON validator: the output must parse, whatever the ring holds ---- */

static const char *js_value(const char *p);

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return p + 1;
}

static const char *js_seq(const char *p, char close, int keyed)
{
	p = js_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (keyed) {
			p = js_string(js_ws(p));
			if (!p || *(p = js_ws(p)) != ':')
				return NULL;
			p++;
		}
		p = js_value(p);
		if (!p)
			return NULL;
		p = js_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *js_value(const char *p)
{
	char *end;

	p = js_ws(p);
	if (*p == '{')
		return js_seq(p, '}', 1);
	if (*p == '[')
		return js_seq(p, ']', 0);
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "null", 4) || !strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (*p != '-' && (*p < '0' || *p > '9'))
		return NULL;
	strtod(p, &end);
	return end > p ? end : NULL;
}

/* Each line, or the whole text, is one JSON value. */
static int json_valid(const char *s, int lines)
{
	const char *p = s;

	if (!lines) {
		p = js_value(s);
		return p && *js_ws(p) == 0;
	}
	while (*p) {
		p = js_value(p);
		if (!p || *p != '\n')
			return 0;
		p++;
	}
	return 1;
}

/* Fail the test when s is not JSON; the output goes to stderr, raw bytes and all. */
static void assert_json(const char *s, int lines)
{
	if (json_valid(s, lines))
		return;
	fprintf(stderr, "not %s:\n%s\n", lines ? "JSON Lines" : "JSON", s);
	ck_abort_msg("the output is not valid %s (printed above)", lines ? "JSON Lines" : "JSON");
}

/* ---- the program ---- */

struct run {
	int status; /* exit status, or 128 + signal */
	char *out, *err;
};

static char *read_memfd(int fd)
{
	off_t len = lseek(fd, 0, SEEK_END);
	char *s = malloc((size_t)len + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(pread(fd, s, (size_t)len, 0), len);
	s[len] = 0;
	close(fd);
	return s;
}

/* Run shm-dump with args (NULL-terminated), stdout and stderr captured. */
static struct run run_dump(const char *arg, ...)
{
	const char *argv[16] = { BE_BIN_DIR "/shm-dump" };
	struct run r;
	int ofd, efd, st, n = 1;
	va_list ap;
	pid_t pid;

	va_start(ap, arg);
	for (; arg && n < 15; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;
	ofd = memfd_create("out", 0);
	efd = memfd_create("err", 0);
	ck_assert(ofd >= 0 && efd >= 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = read_memfd(ofd);
	r.err = read_memfd(efd);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void ring_path(char *out, size_t len, const char *inst, const char *store)
{
	snprintf(out, len, RING_SHM_DIR "/" RING_SHM_PREFIX "%s.%s", inst, store);
}

/* A file in /dev/shm under a ring's name: a copy of tm's header page and data. */
static void write_copy(const char *inst, const char *store, const struct ring_hdr *h, uint64_t size)
{
	char path[256];
	int fd;

	ring_path(path, sizeof(path), inst, store);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, h, sizeof(*h), 0), (ssize_t)sizeof(*h));
	if (size > sizeof(*h))
		ck_assert_int_eq(pwrite(fd, tm.data, size - sizeof(*h), sizeof(*h)),
				 (ssize_t)(size - sizeof(*h)));
	else
		ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

static void unlink_ring(const char *inst, const char *store)
{
	char path[256];

	ring_path(path, sizeof(path), inst, store);
	unlink(path);
}

/* The table: sorted, leftovers skipped, a damaged ring a row of its own, exit 2. */
START_TEST(test_list)
{
	char inst[64] = "", path[256], *a, *b, *c;
	struct ring_hdr h;
	struct run r;
	int fd;

	make_ring(inst, sizeof(inst), "zeta", 4096, 3, 10);
	ring_unmap(&tm);
	make_ring(inst, sizeof(inst), "alpha", 4096, 5, 10);
	h = *tm.hdr;
	h.magic = 0;
	write_copy(inst, "mid", &h, RING_HDR_SIZE + 4096);
	write_copy(inst, "left.tmp", tm.hdr, RING_HDR_SIZE + 4096);
	/* The instance lock file: not a ring. */
	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s", inst);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);

	r = run_dump("-i", inst, NULL);
	ck_assert_msg(r.status == EXIT_DAMAGED, "status %d, stderr %s", r.status, r.err);
	ck_assert_msg(count_lines(r.out) == 4, "want header + 3 rows:\n%s", r.out);
	a = strstr(r.out, "\nalpha ");
	b = strstr(r.out, "\nmid ");
	c = strstr(r.out, "\nzeta ");
	ck_assert_msg(a && b && c && a < b && b < c, "rows missing or unsorted:\n%s", r.out);
	ck_assert_msg(strstr(b, "bad: EBADMSG bad magic"), "mid row: %s", b);
	ck_assert_ptr_null(strstr(r.out, "tmp"));
	run_free(&r);

	r = run_dump("-i", inst, "--json", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	assert_json(r.out, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"store\":\"alpha\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"status\":\"bad\""));
	run_free(&r);

	unlink(path);
	unlink_ring(inst, "mid");
	unlink_ring(inst, "left.tmp");
	ring_unmap(&tm);
	ring_unlink(inst, "alpha");
	ring_unlink(inst, "zeta");
}
END_TEST

/* An idle host is not an error. */
START_TEST(test_list_empty)
{
	char inst[64];
	struct run r;

	tu_instance(inst, sizeof(inst));
	r = run_dump("-i", inst, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "no rings for instance"));
	run_free(&r);
	r = run_dump("-i", inst, "--json", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "[]\n");
	run_free(&r);
}
END_TEST

START_TEST(test_store)
{
	char inst[64] = "";
	struct run r;

	make_ring(inst, sizeof(inst), "s", 4096, 4, 100);
	set_tail(136);
	r = run_dump("-i", inst, "s", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "\nstatus: ok\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nhead: 544\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\ntail: 136\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nunflushed: 408\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nrecords_written: 4\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nlock: free\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\ndaemon_state: none\n"));
	/* Every field, the new ones too, and what the oldest record tells. */
	ck_assert_ptr_nonnull(strstr(r.out, "\nunflushed_records: 3\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\noldest_unflushed_seq: 1001\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\noldest_unflushed_pos: 136\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nlost_seq_from: 0\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nlost_seq_to: 0\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nsegments_deleted: 0\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nreserved_futex: 0\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nlast_error_ns: 0\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nwrites_per_s: -\n"));
	run_free(&r);

	r = run_dump("-i", inst, "--json", "s", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_json(r.out, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"fill_pct\":10.0"));
	run_free(&r);

	r = run_dump("-i", inst, "s", "--records", "2", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(count_lines(r.out) == 2 && !strncmp(r.out, "seq=1001 ", 9), "%s", r.out);
	run_free(&r);

	r = run_dump("-i", inst, "--json", "-n", "5", "s", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count_lines(r.out), 3);
	assert_json(r.out, 1);
	run_free(&r);

	r = run_dump("-i", inst, "nosuch", NULL);
	ck_assert_int_eq(r.status, EXIT_USAGE);
	ck_assert_ptr_nonnull(strstr(r.err, "no store 'nosuch'"));
	run_free(&r);
	ring_unmap(&tm);
	ring_unlink(inst, "s");
}
END_TEST

/* Damaged rings: each says what is wrong, exit 2, and the JSON stays valid. */
START_TEST(test_damaged)
{
	char inst[64] = "";
	struct ring_hdr h;
	struct run r;

	make_ring(inst, sizeof(inst), "good", 4096, 2, 10);

	h = *tm.hdr;
	h.head = h.tail + 4096 + 8;
	write_copy(inst, "over", &h, RING_HDR_SIZE + 4096);
	r = run_dump("-i", inst, "over", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_ptr_nonnull(strstr(r.out, "exceeds capacity"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nunflushed: -\n"));
	run_free(&r);
	r = run_dump("-i", inst, "over", "--records", "1", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_str_eq(r.out, "");
	run_free(&r);

	write_copy(inst, "cut", tm.hdr, RING_HDR_SIZE + 1024);
	r = run_dump("-i", inst, "cut", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_ptr_nonnull(strstr(r.out, "truncated?"));
	run_free(&r);

	write_copy(inst, "stub", tm.hdr, 100);
	r = run_dump("-i", inst, "stub", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_ptr_nonnull(strstr(r.out, "smaller than the header page"));
	run_free(&r);

	h = *tm.hdr;
	h.version = (RING_VERSION_MAJOR + 1) << 16;
	write_copy(inst, "next", &h, RING_HDR_SIZE + 4096);

	/* Hostile bytes where a name should be: the JSON must still parse. */
	h = *tm.hdr;
	h.magic = 1;
	memcpy(h.store_name, "\"\\\n\x01\xff\x7f<", 8);
	h.daemon_state = 77;
	h.last_error = INT32_MIN;
	write_copy(inst, "ugly", &h, RING_HDR_SIZE + 4096);

	r = run_dump("-i", inst, NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_ptr_nonnull(strstr(r.out, "bad: EPROTO other layout version 2.0"));
	ck_assert_ptr_nonnull(strstr(r.out, "\ngood "));
	run_free(&r);
	r = run_dump("-i", inst, "--json", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	assert_json(r.out, 0);
	run_free(&r);
	r = run_dump("-i", inst, "--json", "ugly", NULL);
	assert_json(r.out, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"daemon_state\":\"unknown(77)\""));
	run_free(&r);

	const char *names[] = { "over", "cut", "stub", "next", "ugly" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		unlink_ring(inst, names[i]);
	ring_unmap(&tm);
	ring_unlink(inst, "good");
}
END_TEST

START_TEST(test_usage)
{
	/* clang-format off */
	static const char *const bad[][3] = {
		{ "--records", "0", "s" },
		{ "--records", "2x", "s" },
		{ "--records", "3", NULL },
		{ "-i", "no.dots", NULL },
		{ "a", "b", NULL },
		{ "bad/name", NULL, NULL },
		{ "--nope", NULL, NULL },
		{ "--tail", "s", NULL },
		{ "--hex", "s", NULL },
		{ "s", "-n1", "--watch" },
		{ "s", "-n1", "--prometheus" },
		{ "--json", "--prometheus", NULL },
		{ "--json", "--prometheus-file", "/tmp/x.prom" },
		{ "--watch=0", NULL, NULL },
		{ "--watch=abc", NULL, NULL },
		{ "--iterations", "0", NULL },
		{ "--iterations", NULL, NULL },
	};
	/* clang-format on */
	struct run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = run_dump(bad[i][0], bad[i][1], bad[i][2], NULL);
		ck_assert_msg(r.status == EXIT_USAGE, "%s: status %d", bad[i][0], r.status);
		ck_assert_msg(count_lines(r.err) == 1 && strstr(r.err, "--help"), "%s: stderr: %s",
			      bad[i][0], r.err);
		ck_assert_str_eq(r.out, "");
		run_free(&r);
	}
	r = run_dump("--help", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "Usage: shm-dump"));
	run_free(&r);
	r = run_dump("-V", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "shm-dump " BE_VERSION_STRING "\n");
	run_free(&r);
}
END_TEST

/* ---- more of the program: a live daemon, Prometheus, --watch, --tail, --hex ---- */

/* Time bounds stretched under the sanitizers. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLOWDOWN 4
#else
#define SLOWDOWN 1
#endif

/* The line of the table that starts with "<store> ", malloc'ed; fails the test when none. */
static char *row_of(const char *out, const char *store)
{
	size_t n = strlen(store);

	for (const char *p = out; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		if (!strncmp(p, store, n) && p[n] == ' ') {
			size_t len = strcspn(p, "\n");
			char *row = malloc(len + 1);

			ck_assert_ptr_nonnull(row);
			memcpy(row, p, len);
			row[len] = 0;
			return row;
		}
	}
	ck_abort_msg("no row for store '%s' in:\n%s", store, out);
	return NULL;
}

/*
 * The cell of a right-aligned column in a row: the word that ends where the
 * column's name ends in the header (the first line of table), malloc'ed.
 */
static char *right_cell(const char *table, const char *row, const char *col)
{
	const char *h = strstr(table, col);
	size_t end, start;

	ck_assert_msg(h && h < table + strcspn(table, "\n"), "no column %s", col);
	end = (size_t)(h - table) + strlen(col);
	ck_assert_msg(strlen(row) >= end, "row too short for %s: %s", col, row);
	for (start = end; start > 0 && row[start - 1] != ' '; start--)
		;
	return strndup(row + start, end - start);
}

/* Count the occurrences of needle in s. */
static int count_of(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The header line has every column. */
static void assert_columns(const char *out)
{
	size_t len = strcspn(out, "\n");
	char *hdr = strndup(out, len);

	ck_assert_ptr_nonnull(hdr);
	for (int c = 0; c < NCOLS; c++)
		ck_assert_msg(strstr(hdr, col_name[c]), "no column %s in: %s", col_name[c], hdr);
	ck_assert_msg(!strncmp(hdr, "STORE ", 6), "header: %s", hdr);
	free(hdr);
}

/* A number after "key": in JSON text; NAN when absent or null. */
static double json_num(const char *s, const char *key)
{
	char k[96];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(s, k);
	if (!p || !strncmp(p + strlen(k), "null", 4))
		return NAN;
	return strtod(p + strlen(k), NULL);
}

/* ---- a small parser of the Prometheus text format ---- */

struct psample {
	char name[128];
	char store[BE_NAME_MAX + 1]; /* the store label, "" when none */
	char instance[BE_NAME_MAX + 1];
	double v;
};

#define PFAM_MAX 64

struct prom {
	struct psample *s;
	int n;
	char fam[PFAM_MAX][128]; /* families declared, in order */
	int help[PFAM_MAX], type[PFAM_MAX], sampled[PFAM_MAX];
	int nfam;
	int cur; /* family of the last sample, -1 */
	char err[512];
};

static int prom_name_char(char c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* The length of a metric name at p ([a-zA-Z_:][a-zA-Z0-9_:]*), 0 when none. */
static size_t prom_name_len(const char *p)
{
	size_t n = 0;

	while (prom_name_char(p[n], n == 0))
		n++;
	return n;
}

static int prom_family(struct prom *pr, const char *name, size_t len, int add)
{
	for (int i = 0; i < pr->nfam; i++)
		if (strlen(pr->fam[i]) == len && !strncmp(pr->fam[i], name, len))
			return i;
	if (!add || pr->nfam == PFAM_MAX || len >= sizeof(pr->fam[0]))
		return -1;
	memcpy(pr->fam[pr->nfam], name, len);
	pr->fam[pr->nfam][len] = 0;
	return pr->nfam++;
}

/* A value: a float, NaN, +Inf or -Inf, and nothing after it but an optional timestamp. */
static int prom_value(const char *p, size_t len, double *v)
{
	char buf[64], *end;

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, p, len);
	buf[len] = 0;
	if (!strcmp(buf, "NaN") || !strcmp(buf, "+Inf") || !strcmp(buf, "-Inf")) {
		*v = !strcmp(buf, "NaN") ? NAN : buf[0] == '-' ? -INFINITY : INFINITY;
		return 1;
	}
	*v = strtod(buf, &end);
	return end != buf && *end == 0 && isfinite(*v);
}

#define PROM_FAIL(...)                                           \
	do {                                                     \
		snprintf(pr->err, sizeof(pr->err), __VA_ARGS__); \
		return -1;                                       \
	} while (0)

/*
 * prom_parse() - every line is empty, a comment (# HELP name text, # TYPE name
 * type, or another), or a sample: name{label="value",...} value [timestamp].
 * Every metric has HELP and TYPE before its samples, each once, and the samples
 * of one metric are together.  Returns the sample count, or -1 with pr->err.
 */
static int prom_parse(const char *text, struct prom *pr)
{
	int lineno = 0;

	memset(pr, 0, sizeof(*pr));
	pr->cur = -1;
	for (const char *line = text; *line;) {
		size_t len = strcspn(line, "\n");
		const char *p = line, *end = line + len;
		struct psample sm;
		size_t nl;
		int fam;

		lineno++;
		if (line[len] != '\n')
			PROM_FAIL("line %d does not end with a newline", lineno);
		if (len == 0)
			goto next;
		if (*p == '#') {
			int is_help = !strncmp(p, "# HELP ", 7),
			    is_type = !strncmp(p, "# TYPE ", 7);

			if (!is_help && !is_type)
				goto next;
			p += 7;
			nl = prom_name_len(p);
			if (!nl || (p[nl] != ' ' && p + nl != end))
				PROM_FAIL("line %d: bad metric name in '%.*s'", lineno, (int)len,
					  line);
			fam = prom_family(pr, p, nl, 1);
			if (fam < 0)
				PROM_FAIL("line %d: too many metrics", lineno);
			if (pr->sampled[fam])
				PROM_FAIL("line %d: HELP/TYPE after samples of %s", lineno,
					  pr->fam[fam]);
			if (is_help) {
				if (pr->help[fam]++)
					PROM_FAIL("line %d: a second HELP for %s", lineno,
						  pr->fam[fam]);
			} else {
				const char *t = p + nl + 1;
				size_t tl = (size_t)(end - t);

				if (pr->type[fam]++)
					PROM_FAIL("line %d: a second TYPE for %s", lineno,
						  pr->fam[fam]);
				if (p + nl == end || !((tl == 7 && !strncmp(t, "counter", 7)) ||
						       (tl == 5 && !strncmp(t, "gauge", 5)) ||
						       (tl == 7 && !strncmp(t, "untyped", 7)) ||
						       (tl == 7 && !strncmp(t, "summary", 7)) ||
						       (tl == 9 && !strncmp(t, "histogram", 9))))
					PROM_FAIL("line %d: bad TYPE '%.*s'", lineno, (int)len,
						  line);
			}
			goto next;
		}

		/* A sample. */
		memset(&sm, 0, sizeof(sm));
		nl = prom_name_len(p);
		if (!nl || nl >= sizeof(sm.name))
			PROM_FAIL("line %d: bad metric name in '%.*s'", lineno, (int)len, line);
		memcpy(sm.name, p, nl);
		fam = prom_family(pr, p, nl, 0);
		if (fam < 0 || !pr->help[fam] || !pr->type[fam])
			PROM_FAIL("line %d: %s has no HELP or no TYPE before it", lineno, sm.name);
		if (pr->sampled[fam] && pr->cur != fam)
			PROM_FAIL("line %d: the samples of %s are not together", lineno, sm.name);
		pr->sampled[fam] = 1;
		pr->cur = fam;
		p += nl;
		if (*p == '{') {
			p++;
			while (*p != '}') {
				const char *ln = p;
				size_t ll = 0;
				char val[BE_NAME_MAX + 1];
				size_t vl = 0;

				while (prom_name_char(p[ll], ll == 0) && p[ll] != ':')
					ll++;
				if (!ll || p[ll] != '=' || p[ll + 1] != '"')
					PROM_FAIL("line %d: bad label in '%.*s'", lineno, (int)len,
						  line);
				p += ll + 2;
				for (; *p != '"'; p++) {
					if (p >= end)
						PROM_FAIL("line %d: unterminated label value",
							  lineno);
					if (*p == '\\') {
						p++;
						if (*p != '\\' && *p != '"' && *p != 'n')
							PROM_FAIL("line %d: bad escape", lineno);
					}
					if (vl < sizeof(val) - 1)
						val[vl++] = *p;
				}
				val[vl] = 0;
				p++;
				if (ll == 5 && !strncmp(ln, "store", 5))
					snprintf(sm.store, sizeof(sm.store), "%s", val);
				if (ll == 8 && !strncmp(ln, "instance", 8))
					snprintf(sm.instance, sizeof(sm.instance), "%s", val);
				if (*p == ',')
					p++;
				else if (*p != '}')
					PROM_FAIL("line %d: bad label list in '%.*s'", lineno,
						  (int)len, line);
			}
			p++;
		}
		if (*p != ' ')
			PROM_FAIL("line %d: no value in '%.*s'", lineno, (int)len, line);
		p++;
		{
			size_t vl = strcspn(p, " \n");
			char *tend;

			if (!prom_value(p, vl, &sm.v))
				PROM_FAIL("line %d: value '%.*s' is not a float", lineno, (int)vl,
					  p);
			p += vl;
			if (*p == ' ') { /* a timestamp */
				strtoll(p + 1, &tend, 10);
				if (tend == p + 1 || tend != end)
					PROM_FAIL("line %d: bad timestamp", lineno);
				p = end;
			}
		}
		if (p != end)
			PROM_FAIL("line %d: junk after the value", lineno);
		pr->s = realloc(pr->s, (size_t)(pr->n + 1) * sizeof(*pr->s));
		ck_assert_ptr_nonnull(pr->s);
		pr->s[pr->n++] = sm;
next:
		line += len + (line[len] == '\n');
	}
	return pr->n;
}

/* Parse, or fail the test with the text. */
static void prom_must_parse(const char *text, struct prom *pr)
{
	if (prom_parse(text, pr) < 0) {
		fprintf(stderr, "not Prometheus text:\n%s\n", text);
		ck_abort_msg("Prometheus text: %s", pr->err);
	}
}

/* The value of metric name for store ("" for a sample without a store); NAN when absent. */
static double prom_get(const struct prom *pr, const char *name, const char *store)
{
	for (int i = 0; i < pr->n; i++)
		if (!strcmp(pr->s[i].name, name) && !strcmp(pr->s[i].store, store))
			return pr->s[i].v;
	return NAN;
}

static void prom_assert(const struct prom *pr, const char *name, const char *store, double want)
{
	double got = prom_get(pr, name, store);

	ck_assert_msg(got == want, "%s{store=\"%s\"}: %g, want %g", name, store, got, want);
}

/* The parser itself: what it must refuse. */
START_TEST(test_prom_parser)
{
	struct prom pr;

	ck_assert_int_eq(prom_parse("# HELP a_b x\n# TYPE a_b gauge\na_b{store=\"s\"} 1.5\n"
				    "a_b{store=\"t\",instance=\"i\"} -2e3 123\n\n# other\n",
				    &pr),
			 2);
	ck_assert(prom_get(&pr, "a_b", "t") == -2000);
	free(pr.s);
	ck_assert_int_eq(prom_parse("a 1\n", &pr), -1); /* no HELP/TYPE */
	free(pr.s);
	ck_assert_int_eq(prom_parse("# HELP a x\n# TYPE a gauge\na one\n", &pr), -1); /* value */
	free(pr.s);
	ck_assert_int_eq(prom_parse("# HELP 1a x\n", &pr), -1); /* name */
	free(pr.s);
	ck_assert_int_eq(prom_parse("# HELP a x\n# TYPE a gauge\na{s=\"x} 1\n", &pr), -1);
	free(pr.s);
	ck_assert_int_eq(prom_parse("# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\n"
				    "a 1\nb 1\na 2\n",
				    &pr),
			 -1); /* a split */
	free(pr.s);
	ck_assert_int_eq(prom_parse("# HELP a x\n# TYPE a gauge\na 1", &pr), -1); /* no \n */
	free(pr.s);
}
END_TEST

/* Every metric family of print_prom(), with the sample the test expects on a good ring. */
static void assert_prom_header(const struct prom *pr, const char *store, const struct ring_hdr *h)
{
	prom_assert(pr, "bufferengine_ring_ok", store, 1);
	prom_assert(pr, "bufferengine_ring_capacity_bytes", store, (double)h->capacity);
	prom_assert(pr, "bufferengine_ring_unflushed_bytes", store, (double)(h->head - h->tail));
	prom_assert(pr, "bufferengine_ring_fill_ratio", store,
		    (double)(h->head - h->tail) / (double)h->capacity);
	prom_assert(pr, "bufferengine_ring_written_bytes_total", store, (double)h->head);
	prom_assert(pr, "bufferengine_ring_flushed_bytes_total", store, (double)h->tail);
	prom_assert(pr, "bufferengine_ring_durable_bytes_total", store, (double)h->durable_pos);
	prom_assert(pr, "bufferengine_records_written_total", store,
		    (double)(h->next_seq - h->first_seq));
	prom_assert(pr, "bufferengine_lost_records", store,
		    (double)(h->lost_seq_to - h->lost_seq_from));
	prom_assert(pr, "bufferengine_drops_total", store, (double)h->drops);
	prom_assert(pr, "bufferengine_full_waits_total", store, (double)h->full_waits);
	prom_assert(pr, "bufferengine_lock_recoveries_total", store, (double)h->lock_recoveries);
	prom_assert(pr, "bufferengine_lock_timeouts_total", store, (double)h->lock_timeouts);
	prom_assert(pr, "bufferengine_doorbells_total", store, (double)h->doorbells);
	prom_assert(pr, "bufferengine_batches_total", store, (double)h->batches);
	prom_assert(pr, "bufferengine_syncs_total", store, (double)h->syncs);
	prom_assert(pr, "bufferengine_damaged_bytes_total", store, (double)h->damaged_bytes);
	prom_assert(pr, "bufferengine_segments_deleted_total", store, (double)h->segments_deleted);
	prom_assert(pr, "bufferengine_last_error", store, (double)-h->last_error);
	prom_assert(pr, "bufferengine_daemon_pid", store, (double)h->daemon_pid);
}

/* Prometheus: parsed back, every value as in the header; a damaged ring is ring_ok 0. */
START_TEST(test_prometheus)
{
	char inst[64] = "";
	struct ring_hdr h;
	struct prom pr;
	struct run r;

	make_ring(inst, sizeof(inst), "p", 4096, 6, 100); /* 136-byte records */
	set_tail(2 * 136);
	tm.hdr->durable_pos = 136;
	tm.hdr->drops = 7;
	tm.hdr->full_waits = 8;
	tm.hdr->lock_recoveries = 1;
	tm.hdr->lock_timeouts = 2;
	tm.hdr->doorbells = 3;
	tm.hdr->batches = 11;
	tm.hdr->syncs = 12;
	tm.hdr->damaged_bytes = 40;
	tm.hdr->segments_deleted = 5;
	tm.hdr->lost_seq_from = 1000;
	tm.hdr->lost_seq_to = 1002;
	tm.hdr->last_error = -ENOSPC;
	tm.hdr->last_error_ns = now_real_ns() - 3 * NSEC_PER_SEC;
	tm.hdr->daemon_pid = 999999; /* a pid that cannot be: pid_max is lower */
	tm.hdr->daemon_state = RING_DAEMON_RUNNING;
	tm.hdr->heartbeat_ns = now_mono_ns();
	h = *tm.hdr;
	h.magic = 0;
	write_copy(inst, "q", &h, RING_HDR_SIZE + 4096);

	r = run_dump("-i", inst, "--prometheus", NULL);
	ck_assert_msg(r.status == EXIT_DAMAGED, "status %d, stderr %s", r.status, r.err);
	prom_must_parse(r.out, &pr);
	assert_prom_header(&pr, "p", tm.hdr);
	prom_assert(&pr, "bufferengine_ring_unflushed_records", "p", 4);
	prom_assert(&pr, "bufferengine_lock_held", "p", 0);
	prom_assert(&pr, "bufferengine_lock_owner_dead", "p", 0);
	prom_assert(&pr, "bufferengine_store_quarantined", "p", 0);
	/* RUNNING with a fresh heartbeat, but no such pid: down at once. */
	prom_assert(&pr, "bufferengine_daemon_up", "p", 0);
	ck_assert(prom_get(&pr, "bufferengine_heartbeat_age_seconds", "p") < 5);
	ck_assert(prom_get(&pr, "bufferengine_ring_oldest_unflushed_age_seconds", "p") >= 0);
	ck_assert(fabs(prom_get(&pr, "bufferengine_last_error_timestamp_seconds", "p") -
		       (double)tm.hdr->last_error_ns / 1e9) < 1e-3);
	prom_assert(&pr, "bufferengine_ring_ok", "q", 0);
	ck_assert(isnan(prom_get(&pr, "bufferengine_ring_capacity_bytes", "q")));
	prom_assert(&pr, "bufferengine_rings", "", 2);
	for (int i = 0; i < pr.n; i++)
		ck_assert_str_eq(pr.s[i].instance, inst);
	free(pr.s);
	run_free(&r);

	/* One store. */
	r = run_dump("-i", inst, "-p", "p", NULL);
	ck_assert_int_eq(r.status, 0);
	prom_must_parse(r.out, &pr);
	assert_prom_header(&pr, "p", tm.hdr);
	ck_assert(isnan(prom_get(&pr, "bufferengine_ring_ok", "q")));
	free(pr.s);
	run_free(&r);

	unlink_ring(inst, "q");
	ring_unmap(&tm);
	ring_unlink(inst, "p");
}
END_TEST

/* The names in a directory, but "." and "..", joined by spaces. */
static void dir_names(const char *dir, char *out, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	ck_assert_ptr_nonnull(d);
	out[0] = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "",
				 de->d_name);
	closedir(d);
}

/* --prometheus-file: the whole exposition, no temporary file left, nothing on stdout. */
START_TEST(test_prometheus_file)
{
	char inst[64] = "", dir[256], path[320], names[512];
	const char *text;
	struct prom pr;
	struct stat st;
	struct run r;

	make_ring(inst, sizeof(inst), "f", 4096, 3, 10);
	tu_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/bufferengine.prom", dir);

	r = run_dump("-i", inst, "--prometheus-file", path, NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.err);
	ck_assert_str_eq(r.out, "");
	dir_names(dir, names, sizeof(names));
	ck_assert_str_eq(names, "bufferengine.prom");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((st.st_mode & 0444) == 0444 || (st.st_mode & 0044) == 0, "mode 0%o",
		      st.st_mode & 0777);
	text = tu_file_text(path);
	ck_assert_int_eq((off_t)strlen(text), st.st_size);
	prom_must_parse(text, &pr);
	assert_prom_header(&pr, "f", tm.hdr);
	free(pr.s);
	run_free(&r);

	/* Refreshed by --watch: still one file, complete, the last frame's. */
	tm.hdr->drops = 42;
	r = run_dump("-i", inst, "--prometheus-file", path, "--watch", "0.1", "--iterations", "3",
		     NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.err);
	ck_assert_str_eq(r.out, "");
	dir_names(dir, names, sizeof(names));
	ck_assert_str_eq(names, "bufferengine.prom");
	prom_must_parse(tu_file_text(path), &pr);
	prom_assert(&pr, "bufferengine_drops_total", "f", 42);
	free(pr.s);
	run_free(&r);

	/* A directory that is not there: exit 2, one clear line. */
	snprintf(path, sizeof(path), "%s/nosuch/x.prom", dir);
	r = run_dump("-i", inst, "--prometheus-file", path, NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_msg(count_lines(r.err) == 1 && strstr(r.err, "x.prom"), "stderr: %s", r.err);
	run_free(&r);

	ring_unmap(&tm);
	ring_unlink(inst, "f");
}
END_TEST

/* Start shm-dump with args, stdout and stderr into memfds; returns the pid. */
static pid_t spawn_dump(int *ofd, int *efd, const char *arg, ...)
{
	const char *argv[16] = { BE_BIN_DIR "/shm-dump" };
	int n = 1;
	va_list ap;
	pid_t pid;

	va_start(ap, arg);
	for (; arg && n < 15; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;
	*ofd = memfd_create("out", 0);
	*efd = memfd_create("err", 0);
	ck_assert(*ofd >= 0 && *efd >= 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(*ofd, 1);
		dup2(*efd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --watch: N frames then exit 0, rates from the second on; SIGINT and SIGTERM exit 0. */
START_TEST(test_watch)
{
	char inst[64] = "", *row, *out, *err;
	int ofd, efd, st;
	struct run r;
	pid_t pid;

	make_ring(inst, sizeof(inst), "w", 4096, 3, 10);
	r = run_dump("-i", inst, "--watch", "0.1", "--iterations", "3", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.err);
	ck_assert_msg(count_of(r.out, "\nSTORE ") == 3, "want 3 frames:\n%s", r.out);
	ck_assert_int_eq(count_of(r.out, "shm-dump - instance "), 3);
	ck_assert_ptr_nonnull(strstr(r.out, " - frame 3\n"));
	ck_assert_ptr_null(strstr(r.out, "\033[")); /* not a terminal: no clearing */
	/* The first frame has no rates yet, the last has. */
	row = row_of(strstr(r.out, "frame 3\n") + 8, "w");
	ck_assert_msg(strstr(row, " 0.0 "), "no rate in the last frame: %s", row);
	free(row);
	run_free(&r);

	/* JSON: one array a line, a frame a line. */
	r = run_dump("-i", inst, "--json", "--watch=0.1", "--iterations=2", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count_lines(r.out), 2);
	assert_json(r.out, 1);
	ck_assert_int_eq(count_of(r.out, "\"writes_per_s\":null"), 1);
	ck_assert_int_eq(count_of(r.out, "\"writes_per_s\":0.0"), 1);
	run_free(&r);

	/* One store, --iterations alone implies --watch. */
	r = run_dump("-i", inst, "w", "--iterations", "2", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count_of(r.out, "\nstore: w\n"), 2);
	run_free(&r);

	/* Until a signal: exit 0 on SIGINT and on SIGTERM, each soon after it. */
	for (int k = 0; k < 2; k++) {
		int sig = k ? SIGTERM : SIGINT;
		uint64_t t0;

		pid = spawn_dump(&ofd, &efd, "-i", inst, "--watch", "5", NULL);
		/* The first frame is out once the handlers are in place. */
		for (int i = 0; i < 1000 && lseek(ofd, 0, SEEK_END) == 0; i++)
			sleep_ms(10);
		ck_assert_msg(lseek(ofd, 0, SEEK_END) > 0, "no first frame after 10 s");
		sleep_ms(100);
		t0 = now_mono_ns();
		ck_assert_int_eq(kill(pid, sig), 0);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		out = read_memfd(ofd);
		err = read_memfd(efd);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "signal %d: status 0x%x: %s",
			      sig, st, err);
		ck_assert_msg(now_mono_ns() - t0 < 2 * NSEC_PER_SEC * SLOWDOWN,
			      "took %.1f s to stop", (double)(now_mono_ns() - t0) / 1e9);
		ck_assert_int_eq(count_of(out, "\nSTORE "), 1);
		free(out);
		free(err);
	}

	ring_unmap(&tm);
	ring_unlink(inst, "w");
}
END_TEST

/* --tail and --hex on a ring whose records wrap round the end of the area. */
START_TEST(test_tail_hex)
{
	char inst[64] = "", *p;
	struct run r;

	/* As in test_positions_wrap: 232-byte records, then 4 more across the end. */
	make_ring(inst, sizeof(inst), "h", 4096, 15, 200);
	set_tail(3480);
	for (int i = 0; i < 4; i++) {
		uint64_t ct = 3480;
		uint8_t pl[200];

		memset(pl, 'A' + i, sizeof(pl));
		ck_assert_int_eq(ring_append(&tm, &ct, BE_TYPE_RAW, pl, 200, 1, 1, 0, NULL), 0);
	}

	/* The newest 2: seq 1017 and 1018, oldest first. */
	r = run_dump("-i", inst, "h", "--records", "2", "--tail", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.err);
	ck_assert_msg(count_lines(r.out) == 2 && !strncmp(r.out, "seq=1017 ", 9) &&
			      strstr(r.out, "\nseq=1018 "),
		      "%s", r.out);
	run_free(&r);
	/* More than there are: all four. */
	r = run_dump("-i", inst, "h", "-n", "100", "-t", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(count_lines(r.out) == 4 && !strncmp(r.out, "seq=1015 ", 9), "%s", r.out);
	run_free(&r);
	/* The oldest, for contrast. */
	r = run_dump("-i", inst, "h", "-n", "1", NULL);
	ck_assert_msg(count_lines(r.out) == 1 && !strncmp(r.out, "seq=1015 ", 9), "%s", r.out);
	run_free(&r);

	/* Hex: the last record at ring offset 0xe8 (position 4328), like hexdump -C. */
	r = run_dump("-i", inst, "h", "--records", "1", "--tail", "--hex", NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s", r.status, r.err);
	ck_assert_msg(!strncmp(r.out, "seq=1018 ", 9), "%s", r.out);
	/* len 200 = c8, type 1, seq 1018 = 0x3fa, ts 1, pid 1. */
	ck_assert_msg(strstr(r.out, "\n000000e8  c8 00 00 00 01 00 00 00  fa 03 00 00 00 00 00 00"
				    "  |................|\n"
				    "000000f8  01 00 00 00 00 00 00 00  01 00 00 00 00 00 00 00"
				    "  |................|\n"
				    "00000108  44 44 44 44 44 44 44 44  44 44 44 44 44 44 44 44"
				    "  |DDDDDDDDDDDDDDDD|\n*\n"),
		      "%s", r.out);
	/* 200 bytes of payload from 0x108 end at 0x1d0: half a line, then the end offset. */
	ck_assert_msg(strstr(r.out, "*\n000001c8  44 44 44 44 44 44 44 44 "), "%s", r.out);
	p = r.out + strlen(r.out);
	ck_assert_msg(p - r.out > 20 && !strcmp(p - 20, "|DDDDDDDD|\n000001d0\n"), "ends with: %s",
		      p - 20);
	run_free(&r);

	/* Three records, the last one past the end of the area: offsets 0xd98, 0xe80, 0. */
	r = run_dump("-i", inst, "h", "--records", "3", "--hex", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(!strncmp(r.out, "seq=1015 ", 9), "%s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "\n00000d98  c8 00 00 00 01 00 00 00  f7 03 00 00"));
	ck_assert_ptr_nonnull(strstr(r.out, "\n00000e80\nseq=1016 "));
	ck_assert_ptr_nonnull(strstr(r.out, "\n00000f68\nseq=1017 "));
	ck_assert_ptr_nonnull(strstr(r.out, "\n00000000  c8 00 00 00 01 00 00 00  f9 03 00 00"));
	run_free(&r);

	/* JSON: the bytes as hex, with position and offset. */
	r = run_dump("-i", inst, "--json", "h", "-n", "1", "-t", "-x", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_json(r.out, 1);
	ck_assert_ptr_nonnull(
		strstr(r.out, "\"pos\":4328,\"offset\":232,\"hex\":\"c800000001000000fa03"));
	ck_assert_int_eq(count_lines(r.out), 1);
	run_free(&r);

	ring_unmap(&tm);
	ring_unlink(inst, "h");
}
END_TEST

/* A damaged record at the tail: the row says so, the exit status is 2, ring_ok 0. */
START_TEST(test_damaged_oldest)
{
	char inst[64] = "", *row;
	struct rec_hdr *rh;
	struct prom pr;
	struct run r;

	make_ring(inst, sizeof(inst), "d", 4096, 4, 100);
	set_tail(136);
	rh = (struct rec_hdr *)(void *)(tm.data + 136);
	rh->type = 9;

	r = run_dump("-i", inst, NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	row = row_of(r.out, "d");
	ck_assert_msg(strstr(row, " damaged "), "row: %s", row);
	free(row);
	ck_assert_msg(strstr(r.out, "\nd: bad: a record of another type at position 136\n"), "%s",
		      r.out);
	run_free(&r);

	r = run_dump("-i", inst, "d", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	ck_assert_ptr_nonnull(strstr(r.out, "\nstatus: bad\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\noldest_unflushed_error: a record of another type"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nunflushed_records: -\n"));
	run_free(&r);

	r = run_dump("-i", inst, "--prometheus", NULL);
	ck_assert_int_eq(r.status, EXIT_DAMAGED);
	prom_must_parse(r.out, &pr);
	prom_assert(&pr, "bufferengine_ring_ok", "d", 0);
	prom_assert(&pr, "bufferengine_ring_capacity_bytes", "d", 4096);
	ck_assert(isnan(prom_get(&pr, "bufferengine_ring_unflushed_records", "d")));
	free(pr.s);
	run_free(&r);

	ring_unmap(&tm);
	ring_unlink(inst, "d");
}
END_TEST

/* The writers' lock held by a live process, then by one that died holding it. */
START_TEST(test_lock_holder)
{
	char inst[64] = "", *row, want[64];
	int pfd[2], st;
	struct run r;
	pid_t pid;
	char c;

	make_ring(inst, sizeof(inst), "l", 4096, 2, 10);
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct deadline dl = { .timeout_ms = -1 };

		if (lock_acquire(tm.hdr, &dl) != 0)
			_exit(1);
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);

	r = run_dump("-i", inst, NULL);
	ck_assert_int_eq(r.status, 0);
	row = row_of(r.out, "l");
	snprintf(want, sizeof(want), " pid %d alive ", (int)pid);
	ck_assert_msg(strstr(row, want), "want '%s' in: %s", want, row);
	free(row);
	run_free(&r);
	r = run_dump("-i", inst, "l", NULL);
	snprintf(want, sizeof(want), "\nlock: held by pid %d (alive)\n", (int)pid);
	ck_assert_msg(strstr(r.out, want), "want '%s' in:\n%s", want + 1, r.out);
	run_free(&r);

	/* SIGKILL: the kernel marks the lock owner-died; the next locker recovers it. */
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	r = run_dump("-i", inst, NULL);
	row = row_of(r.out, "l");
	ck_assert_msg(strstr(row, " owner-died "), "row: %s", row);
	free(row);
	run_free(&r);
	r = run_dump("-i", inst, "--json", "l", NULL);
	assert_json(r.out, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"lock_owner_died\":\"yes\""));
	run_free(&r);
	r = run_dump("-i", inst, "-p", NULL);
	ck_assert_ptr_nonnull(strstr(r.out, "\nbufferengine_lock_owner_dead{instance=\""));
	ck_assert_ptr_nonnull(strstr(r.out, ",store=\"l\"} 1\n"));
	run_free(&r);

	close(pfd[0]);
	close(pfd[1]);
	ring_unmap(&tm);
	ring_unlink(inst, "l");
}
END_TEST

#define LIVE_STORES                                                                       \
	"[store a]\ntype = raw\ncapacity = 1M\nflush_bytes = 512K\nflush_interval = 1h\n" \
	"[store b]\ntype = raw\ncapacity = 64K\nflush_interval = 100ms\n"

/* A writer for the rates: n records, one every 500 us, then exit without a flush. */
static pid_t spawn_writer(const char *inst, const char *store, int n)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct be_open_opts oo = { .instance = inst, .write_timeout_ms = 1000 };
		be_store *s = NULL;

		if (be_open(store, &oo, &s) != 0)
			_exit(1);
		for (int i = 0; i < n; i++) {
			if (be_write(s, "rate-rate-rate", 14) != 0)
				_exit(2);
			nanosleep(&(struct timespec){ 0, 500 * 1000 }, NULL);
		}
		_exit(0);
	}
	return pid;
}

/*
 * On a live instance: every column, the fill bar, the daemon alive; rates while a
 * writer writes; after SIGKILL of the daemon, dead at once (a zombie not yet
 * reaped, then reaped), long before its heartbeat could go stale.
 */
START_TEST(test_live)
{
	struct tu_daemon d;
	struct be_open_opts oo = { 0 };
	be_store *s = NULL;
	char *row, want[64];
	struct ring_map m;
	struct prom pr;
	struct run r;
	siginfo_t si;
	double hb;
	pid_t pid, w;
	int ret, st;

	tu_daemon_config(&d, NULL, LIVE_STORES);
	ck_assert_msg(tu_daemon_start(&d, "a") == 0, "bufferengined did not come up:\n%s",
		      tu_file_text(d.log));
	for (int i = 0; i < 1000 && ring_open(d.instance, "b", RING_OPEN_RDONLY, &m) != 0; i++)
		sleep_ms(5);
	ring_unmap(&m);
	oo.instance = d.instance;
	oo.write_timeout_ms = 200;
	ret = be_open("a", &oo, &s);
	ck_assert_msg(ret == 0, "be_open: %s", be_strerror(ret));
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(be_write(s, "twenty records", 14), 0);

	r = run_dump("-i", d.instance, NULL);
	ck_assert_msg(r.status == 0, "status %d, stderr %s\n%s", r.status, r.err, r.out);
	assert_columns(r.out);
	ck_assert_int_eq(count_lines(r.out), 3);
	row = row_of(r.out, "a");
	snprintf(want, sizeof(want), " running %d ", (int)d.pid);
	ck_assert_msg(strstr(row, "[#.........]   0.1%") && strstr(row, " 20 ") &&
			      strstr(row, " free ") && strstr(row, want) && strstr(row, " 1.0M "),
		      "row a: %s (want '%s')", row, want);
	free(row);
	row = row_of(r.out, "b");
	ck_assert_msg(strstr(row, "[..........]   0.0%") && strstr(row, want), "row b: %s", row);
	free(row);
	run_free(&r);

	r = run_dump("-i", d.instance, "--json", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_json(r.out, 0);
	ck_assert_int_eq(count_of(r.out, "\"daemon_status\":\"running\""), 2);
	ck_assert_int_eq(count_of(r.out, "\"daemon_alive\":\"alive\""), 2);
	ck_assert_ptr_nonnull(strstr(r.out, "\"unflushed_records\":20,"));
	run_free(&r);

	/* Rates: --rate samples twice, 200 ms apart, while a writer writes. */
	w = spawn_writer(d.instance, "a", 4000);
	sleep_ms(100);
	r = run_dump("-i", d.instance, "--rate", "--json", "a", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_json(r.out, 0);
	ck_assert_msg(json_num(r.out, "writes_per_s") > 0, "no write rate:\n%s", r.out);
	ck_assert_msg(json_num(r.out, "flushes_per_s") == 0, "flush rate:\n%s", r.out);
	run_free(&r);
	r = run_dump("-i", d.instance, "--watch", "0.2", "--iterations", "2", NULL);
	ck_assert_int_eq(r.status, 0);
	{
		const char *frame = strstr(r.out, "frame 2\n") + 8;
		char *cell;

		row = row_of(frame, "a");
		cell = right_cell(frame, row, "WRITE/s");
		ck_assert_msg(strtod(cell, NULL) > 0, "no write rate '%s' in: %s", cell, row);
		free(cell);
		cell = right_cell(frame, row, "FLUSH/s");
		ck_assert_msg(!strcmp(cell, "0.0"), "flush rate '%s' in: %s", cell, row);
		free(cell);
		free(row);
	}
	run_free(&r);
	kill(w, SIGKILL);
	waitpid(w, &st, 0);

	/* SIGKILL of the daemon: dead at once, while it is a zombie not yet reaped... */
	pid = d.pid;
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	memset(&si, 0, sizeof(si));
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
	r = run_dump("-i", d.instance, NULL);
	snprintf(want, sizeof(want), " dead %d ", (int)pid);
	ck_assert_msg(strstr(r.out, want) && count_of(r.out, want) == 2, "want '%s' twice in:\n%s",
		      want, r.out);
	run_free(&r);
	r = run_dump("-i", d.instance, "--json", "a", NULL);
	assert_json(r.out, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "\"daemon_status\":\"dead\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"daemon_alive\":\"dead\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"daemon_state\":\"running\"")); /* as it left it */
	hb = json_num(r.out, "heartbeat_age_s");
	ck_assert_msg(hb < 5, "heartbeat %.3f s old: dead for the wrong reason", hb);
	run_free(&r);
	r = run_dump("-i", d.instance, "--prometheus", NULL);
	prom_must_parse(r.out, &pr);
	prom_assert(&pr, "bufferengine_daemon_up", "a", 0);
	prom_assert(&pr, "bufferengine_daemon_up", "b", 0);
	prom_assert(&pr, "bufferengine_daemon_pid", "a", (double)pid);
	free(pr.s);
	run_free(&r);

	/* ... and once reaped. */
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	tu_forget_pid(pid);
	d.pid = 0;
	r = run_dump("-i", d.instance, NULL);
	ck_assert_msg(count_of(r.out, want) == 2, "want '%s' twice in:\n%s", want, r.out);
	run_free(&r);

	be_close(s);
}
END_TEST

/* 64 rings listed in well under 100 ms (the table, JSON and Prometheus). */
START_TEST(test_many_rings)
{
	static const char *const modes[] = { NULL, "--json", "--prometheus" };
	char inst[64] = "", store[16];
	uint64_t best[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
	struct run r;

	tu_instance(inst, sizeof(inst));
	for (int i = 0; i < 64; i++) {
		snprintf(store, sizeof(store), "s%02d", i);
		make_ring(inst, sizeof(inst), store, 64 << 10, 50, 100);
		set_tail(10 * 136);
		ring_unmap(&tm);
	}
	for (int k = 0; k < 5; k++) {
		for (int mode = 0; mode < 3; mode++) {
			uint64_t t0 = now_mono_ns(), dt;

			r = run_dump("-i", inst, modes[mode], NULL);
			dt = now_mono_ns() - t0;
			ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
			if (mode == 0)
				ck_assert_int_eq(count_lines(r.out), 65);
			if (dt < best[mode])
				best[mode] = dt;
			run_free(&r);
		}
	}
	fprintf(stderr,
		"shmdump: 64 rings, best of 5 runs (fork+exec included): table %.1f ms, JSON %.1f "
		"ms, Prometheus %.1f ms\n",
		(double)best[0] / 1e6, (double)best[1] / 1e6, (double)best[2] / 1e6);
	for (int mode = 0; mode < 3; mode++)
		ck_assert_msg(best[mode] < 100 * NSEC_PER_MSEC * SLOWDOWN,
			      "64 rings took %.1f ms (mode %d)", (double)best[mode] / 1e6, mode);
	for (int i = 0; i < 64; i++) {
		snprintf(store, sizeof(store), "s%02d", i);
		ring_unlink(inst, store);
	}
}
END_TEST

Suite *shmdump_suite(void)
{
	Suite *s = suite_create("shmdump");
	TCase *tc = tcase_create("records");

	tcase_add_test(tc, test_positions_wrap);
	tcase_add_test(tc, test_records_tail_moved);
	tcase_add_test(tc, test_records_all_flushed);
	tcase_add_test(tc, test_records_damaged);
	tcase_add_test(tc, test_records_overwrite_race);
	tcase_add_test(tc, test_records_large);
	tcase_add_test(tc, test_prom_parser);
	suite_add_tcase(s, tc);

	/* These run the built program: without it they are skipped, and say so. */
	if (access(BE_BIN_DIR "/shm-dump", X_OK) != 0) {
		fprintf(stderr, "shmdump: SKIP the 'program' tests: no %s/shm-dump\n", BE_BIN_DIR);
		return s;
	}
	tc = tcase_create("program");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_list_empty);
	tcase_add_test(tc, test_store);
	tcase_add_test(tc, test_damaged);
	tcase_add_test(tc, test_usage);
	tcase_add_test(tc, test_prometheus);
	tcase_add_test(tc, test_prometheus_file);
	tcase_add_test(tc, test_watch);
	tcase_add_test(tc, test_tail_hex);
	tcase_add_test(tc, test_damaged_oldest);
	tcase_add_test(tc, test_lock_holder);
	tcase_add_test(tc, test_live);
	tcase_add_test(tc, test_many_rings);
	suite_add_tcase(s, tc);
	return s;
}
