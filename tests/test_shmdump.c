/*
 * test_shmdump.c - shm-dump: the copy-then-recheck of --records (white box, with
 * ring_collect() hooked to move the tail mid-copy), and the program itself: table,
 * one store, JSON validity, records, damaged and truncated rings, exit codes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
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
	ret = dump_records(&tm, 100, 0);
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
	ck_assert_int_eq(dump_records(&tm, 5, 1), 0);
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
	ck_assert_int_eq(dump_records(&tm, 100, 0), EXIT_DAMAGED);
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
	ck_assert_int_eq(dump_records(&tm, 100, 0), 0);
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
	ck_assert_int_eq(dump_records(&tm, 2, 0), 0);
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
	suite_add_tcase(s, tc);
	return s;
}
