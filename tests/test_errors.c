/*
 * test_errors.c - Guarantee 5 of DESIGN.md: bad input, from a caller, a
 * file or shared memory, gives a clear error, never a crash, and never
 * damages another store.
 *
 * Cases:
 *   api       argument checks of the public API, be_strerror()
 *   ring      rings built by hand with ring_create() (no daemon), then
 *             damaged on purpose: another layout version, a bad magic,
 *             impossible head/tail before and after be_open, a full ring
 *             under both policies, be_flush with no daemon, a writer from
 *             another pid namespace, a damaged ring beside a healthy one
 *   daemon    a real bufferengined facing a ring whose records are
 *             garbage, a ring truncated under it (to one page, to nothing),
 *             a header page of garbage, a config it must refuse, a ring
 *             whose geometry differs from the config
 *   tools     be-read on a corrupt segment, bad arguments, --help and
 *             --version of every program
 *
 * Every name and file comes from testutil (unique per run); check_main
 * removes whatever a run left, so a failing test needs no teardown.
 * Waits for the daemon are waits for a condition with a deadline, never a
 * fixed sleep before an assertion.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
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
#include "shm/clock.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/testutil.h"

/* --- helpers ----------------------------------------------------------- */

#define CAP_SMALL 4096u

static void nap_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* A ring built by hand, as the daemon would, with no daemon behind it. */
static void make_ring(const char *instance, const char *store, uint64_t cap, uint32_t type,
		      uint32_t on_full, struct ring_map *m)
{
	struct ring_params p = {
		.store = store,
		.capacity = cap,
		.store_type = type,
		.on_full = on_full,
		.first_seq = 1,
		.flush_bytes = cap, /* no doorbell: nobody listens */
		.mode = 0600,
	};
	int ret = ring_create(instance, &p, m);

	ck_assert_msg(ret == 0, "ring_create(%s, %s): %s", instance, store, strerror(-ret));
}

static be_store *open_ok(const char *instance, const char *store, int write_timeout_ms)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = write_timeout_ms };
	be_store *s = NULL;
	int ret = be_open(store, &o, &s);

	ck_assert_msg(ret == 0, "be_open(%s) in %s: %d %s", store, instance, ret,
		      be_strerror(ret));
	ck_assert_ptr_nonnull(s);
	return s;
}

static int open_err(const char *instance, const char *store)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = 0 };
	be_store *s = (be_store *)(uintptr_t)1;
	int ret = be_open(store, &o, &s);

	if (ret == 0)
		be_close(s);
	else
		ck_assert_msg(s == NULL, "be_open failed (%d) but left *out set", ret);
	return ret;
}

/* Deterministic garbage (xorshift), so that a failure repeats. */
static uint64_t rng_state;

static uint8_t rng_byte(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

/* Scribble garbage over the ring bytes [from, to), masked like the ring does. */
static void scribble(struct ring_map *m, uint64_t from, uint64_t to, uint64_t seed)
{
	rng_state = seed;
	for (uint64_t pos = from; pos < to; pos++)
		m->data[pos & m->mask] = rng_byte();
	/* The first record's header cannot pass as anything: type 0xa5a5. */
	if (to - from >= 8) {
		m->data[(from + 4) & m->mask] = 0xa5;
		m->data[(from + 5) & m->mask] = 0xa5;
	}
}

/* Read a whole (small) file into buf; "" when missing. */
static const char *slurp(const char *path, char *buf, size_t len)
{
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = 0;
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/*
 * run_prog() - run argv (argv[0] a path) with stdin from /dev/null and
 * stdout/stderr into files under dir; their text into out/err.  Returns
 * the exit status, or 128 + the signal that killed it.
 */
static char out_text[16384], err_text[8192];

static int run_prog(const char *dir, const char *const argv[])
{
	char out_path[512], err_path[512];
	int status;
	pid_t pid;

	snprintf(out_path, sizeof(out_path), "%s/prog.out", dir);
	snprintf(err_path, sizeof(err_path), "%s/prog.err", dir);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || out < 0 || err < 0)
			_exit(126);
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	slurp(out_path, out_text, sizeof(out_text));
	slurp(err_path, err_text, sizeof(err_text));
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Wait (up to timeout_ms) until the file at path contains needle. */
static int wait_file_has(const char *path, const char *needle, unsigned timeout_ms)
{
	uint64_t deadline = deadline_after_ms((int)timeout_ms);

	for (;;) {
		if (strstr(tu_file_text(path), needle))
			return 1;
		if (now_mono_ns() > deadline)
			return 0;
		nap_ms(10);
	}
}

/* Does text hold one line that contains both a and b? */
static int has_line_with(const char *text, const char *a, const char *b)
{
	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char line[1024];

		snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), l);
		if (strstr(line, a) && strstr(line, b))
			return 1;
		l = nl ? nl + 1 : NULL;
	}
	return 0;
}

/* The daemon is still running: not reaped, and its pid exists. */
static void assert_alive(struct tu_daemon *d)
{
	int status;

	ck_assert_int_gt(d->pid, 0);
	ck_assert_msg(waitpid(d->pid, &status, WNOHANG) == 0,
		      "the daemon exited (status 0x%x); its log:\n%s", status,
		      tu_file_text(d->log));
	ck_assert_msg(kill(d->pid, 0) == 0, "the daemon's pid is gone");
}

static void start_daemon(struct tu_daemon *d, const char *wait_store)
{
	ck_assert_msg(tu_daemon_start(d, wait_store) == 0, "bufferengined did not come up; log:\n%s",
		      tu_file_text(d->log));
}

/* Write n small records "<tag> i" to s. */
static void write_n(be_store *s, const char *tag, int n)
{
	for (int i = 0; i < n; i++) {
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "%s record %d", tag, i);
		int ret = be_write(s, buf, (size_t)len);

		ck_assert_msg(ret == 0, "be_write %s %d: %s", tag, i, be_strerror(ret));
	}
}

/* --- api: arguments ---------------------------------------------------- */

START_TEST(test_open_bad_args)
{
	char inst[64], name64[65], name63[64], slash[] = "ab/cd", dot[] = "ab.cd";
	struct be_open_opts o = { 0 };
	be_store *s = NULL;

	tu_instance(inst, sizeof(inst));
	memset(name64, 'a', 64);
	name64[64] = 0;
	memset(name63, 'b', 63);
	name63[63] = 0;

	/* Store names. */
	ck_assert_int_eq(open_err(inst, name64), -EINVAL);
	ck_assert_int_eq(open_err(inst, slash), -EINVAL);
	ck_assert_int_eq(open_err(inst, dot), -EINVAL);
	ck_assert_int_eq(open_err(inst, ".."), -EINVAL);
	ck_assert_int_eq(open_err(inst, ""), -EINVAL);
	ck_assert_int_eq(open_err(inst, NULL), -EINVAL);
	ck_assert_int_eq(open_err(inst, "a b"), -EINVAL);
	/* 63 characters is a valid name: the store is just missing. */
	ck_assert_int_eq(open_err(inst, name63), -ENOENT);

	/* Instance names. */
	ck_assert_int_eq(open_err(name64, "st"), -EINVAL);
	ck_assert_int_eq(open_err("a/b", "st"), -EINVAL);
	ck_assert_int_eq(open_err("a.b", "st"), -EINVAL);
	ck_assert_int_eq(open_err("", "st"), -EINVAL);

	/* Timeouts below -1. */
	o.instance = inst;
	o.write_timeout_ms = -2;
	ck_assert_int_eq(be_open("st", &o, &s), -EINVAL);
	ck_assert_ptr_null(s);
	o.write_timeout_ms = INT_MIN;
	ck_assert_int_eq(be_open("st", &o, &s), -EINVAL);
	o.write_timeout_ms = 0;
	o.open_timeout_ms = -2;
	ck_assert_int_eq(be_open("st", &o, &s), -EINVAL);
	o.open_timeout_ms = INT_MIN;
	ck_assert_int_eq(be_open("st", &o, &s), -EINVAL);
	ck_assert_ptr_null(s);

	/* No place for the handle. */
	o.open_timeout_ms = 0;
	ck_assert_int_eq(be_open("st", &o, NULL), -EINVAL);
	ck_assert_int_eq(be_open("st", NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_open_missing)
{
	char inst[64];
	struct be_open_opts o = { .write_timeout_ms = 0, .open_timeout_ms = 30 };
	const char *msg;
	be_store *s = NULL;
	uint64_t t0;

	tu_instance(inst, sizeof(inst));
	ck_assert_int_eq(open_err(inst, "nosuchstore"), -ENOENT);
	msg = be_strerror(-ENOENT);
	ck_assert_ptr_nonnull(msg);
	ck_assert_msg(strstr(msg, "config") && strstr(msg, "daemon"),
		      "be_strerror(-ENOENT) does not say to configure the daemon: '%s'", msg);

	/* With an open timeout it waits, then still says -ENOENT. */
	o.instance = inst;
	t0 = now_mono_ns();
	ck_assert_int_eq(be_open("nosuchstore", &o, &s), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_uint_ge(now_mono_ns() - t0, 20 * NSEC_PER_MSEC);
}
END_TEST

START_TEST(test_write_bad_args)
{
	char inst[64];
	struct ring_map m;
	be_store *s;
	uint64_t head, seq;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "raw", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	s = open_ok(inst, "raw", 0);

	ck_assert_int_eq(be_write(NULL, "x", 1), -EINVAL);
	ck_assert_int_eq(be_write(NULL, NULL, 0), -EINVAL);
	ck_assert_int_eq(be_write(s, NULL, 1), -EINVAL);
	ck_assert_int_eq(be_write(s, NULL, 100), -EINVAL);
	ck_assert_uint_eq(m.hdr->head, 0);
	ck_assert_uint_eq(m.hdr->next_seq, 1);

	/* A zero-length record is a record, whatever the pointer. */
	ck_assert_int_eq(be_write(s, NULL, 0), 0);
	ck_assert_uint_eq(m.hdr->head, rec_size(0));
	ck_assert_uint_eq(m.hdr->next_seq, 2);
	ck_assert_int_eq(be_write(s, "ignored", 0), 0);
	ck_assert_uint_eq(m.hdr->head, 2 * rec_size(0));
	ck_assert_uint_eq(m.hdr->next_seq, 3);

	/* Too large: refused, nothing written. */
	ck_assert_uint_eq(be_max_payload(s), CAP_SMALL / 4);
	{
		size_t big = be_max_payload(s) + 1;
		char *buf = calloc(1, big + 4096);

		ck_assert_ptr_nonnull(buf);
		head = m.hdr->head;
		seq = m.hdr->next_seq;
		ck_assert_int_eq(be_write(s, buf, big), -EMSGSIZE);
		ck_assert_int_eq(be_write(s, buf, big + 4095), -EMSGSIZE);
		ck_assert_int_eq(be_write(s, buf, SIZE_MAX), -EMSGSIZE);
		ck_assert_int_eq(be_write(s, buf, (size_t)UINT32_MAX + 1 + 8), -EMSGSIZE);
		ck_assert_uint_eq(m.hdr->head, head);
		ck_assert_uint_eq(m.hdr->next_seq, seq);
		/* The largest accepted payload is accepted. */
		ck_assert_int_eq(be_write(s, buf, be_max_payload(s)), 0);
		ck_assert_uint_eq(m.hdr->next_seq, seq + 1);
		free(buf);
	}

	/* Other entry points with a NULL handle or a bad timeout. */
	ck_assert_int_eq(be_flush(NULL, 0), -EINVAL);
	ck_assert_int_eq(be_flush(s, -2), -EINVAL);
	ck_assert_int_eq(be_close(NULL), -EINVAL);
	ck_assert_int_eq(be_store_type(NULL), -EINVAL);
	ck_assert_uint_eq(be_max_payload(NULL), 0);
	ck_assert_int_eq(be_store_type(s), BE_TYPE_RAW);

	be_close(s);
	ring_unmap(&m);
}
END_TEST

/* be_write_batch(): every bad argument refused before anything is written. */
START_TEST(test_write_batch_bad_args)
{
	char inst[64], *big;
	struct ring_map m, mm;
	struct iovec iov[3] = { { "one", 3 }, { NULL, 0 }, { "three", 5 } };
	be_store *s, *sm;
	uint64_t seq;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "raw", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	make_ring(inst, "met", CAP_SMALL, BE_TYPE_METRIC, RING_ON_FULL_DROP, &mm);
	s = open_ok(inst, "raw", 0);
	sm = open_ok(inst, "met", 0);
	big = calloc(1, be_max_payload(s) + 1);
	ck_assert_ptr_nonnull(big);

	ck_assert_int_eq(be_write_batch(NULL, iov, 3), -EINVAL);
	ck_assert_int_eq(be_write_batch(s, NULL, 1), -EINVAL);
	ck_assert_int_eq(be_write_batch(s, iov, (size_t)INT_MAX + 1), -EINVAL);
	ck_assert_int_eq(be_write_batch(sm, iov, 3), -EPROTOTYPE);
	iov[1].iov_len = 1; /* NULL base with a length */
	ck_assert_int_eq(be_write_batch(s, iov, 3), -EINVAL);
	iov[1] = (struct iovec){ big, be_max_payload(s) + 1 };
	ck_assert_int_eq(be_write_batch(s, iov, 3), -EMSGSIZE);
	iov[1] = (struct iovec){ big, SIZE_MAX };
	ck_assert_int_eq(be_write_batch(s, iov, 3), -EMSGSIZE);
	ck_assert_uint_eq(m.hdr->head, 0);
	ck_assert_uint_eq(m.hdr->next_seq, 1);
	ck_assert_uint_eq(mm.hdr->head, 0);

	/* Nothing to write is not an error; then a good batch, the largest payload in it. */
	ck_assert_int_eq(be_write_batch(s, NULL, 0), 0);
	ck_assert_int_eq(be_write_batch(s, iov, 0), 0);
	ck_assert_uint_eq(m.hdr->next_seq, 1);
	iov[1] = (struct iovec){ big, be_max_payload(s) };
	ck_assert_int_eq(be_write_batch(s, iov, 3), 3);
	seq = m.hdr->next_seq;
	ck_assert_uint_eq(seq, 4);
	ck_assert_uint_eq(m.hdr->head,
			  rec_size(3) + rec_size(be_max_payload(s)) + rec_size(5));

	/* Full under drop: the records that fit, then -ENOBUFS for a batch with none. */
	{
		struct iovec many[64];
		int got;

		for (int i = 0; i < 64; i++)
			many[i] = (struct iovec){ big, 200 };
		got = be_write_batch(s, many, 64);
		ck_assert_int_gt(got, 0);
		ck_assert_int_lt(got, 64);
		ck_assert_uint_eq(m.hdr->next_seq, seq + (uint64_t)got);
		ck_assert_int_eq(be_write_batch(s, many, 64), -ENOBUFS);
		ck_assert_uint_eq(m.hdr->next_seq, seq + (uint64_t)got);
		ck_assert_uint_ge(m.hdr->drops, 2);
	}
	free(big);
	be_close(s);
	be_close(sm);
	ring_unmap(&m);
	ring_unmap(&mm);
}
END_TEST
START_TEST(test_wrong_type)
{
	char inst[64];
	struct ring_map m;
	be_store *s;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "met", CAP_SMALL, BE_TYPE_METRIC, RING_ON_FULL_DROP, &m);
	s = open_ok(inst, "met", 0);
	ck_assert_int_eq(be_store_type(s), BE_TYPE_METRIC);
	ck_assert_int_eq(be_write(s, "raw bytes", 9), -EPROTOTYPE);
	ck_assert_uint_eq(m.hdr->head, 0);
	ck_assert_uint_eq(m.hdr->next_seq, 1);
	be_close(s);
	ring_unmap(&m);
}
END_TEST

START_TEST(test_strerror)
{
	static const int errs[] = { -EINVAL, -ENOENT,  -EPROTO,    -EBADMSG,
				    -EXDEV,  -EMSGSIZE, -EPROTOTYPE, -ENOBUFS,
				    -ETIMEDOUT, -EACCES, -ENOMEM, -ENOTRECOVERABLE };
	const int n = (int)(sizeof(errs) / sizeof(errs[0]));
	const char *txt[sizeof(errs) / sizeof(errs[0])];

	for (int i = 0; i < n; i++) {
		txt[i] = be_strerror(errs[i]);
		ck_assert_msg(txt[i] && txt[i][0], "be_strerror(%d) is empty", errs[i]);
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(txt[i], txt[j]) != 0,
				      "be_strerror(%d) == be_strerror(%d): '%s'", errs[i], errs[j],
				      txt[i]);
	}
	ck_assert_ptr_nonnull(be_strerror(0));
	ck_assert_ptr_nonnull(be_strerror(-9999));
	ck_assert_str_ne(be_strerror(-9999), "");
	ck_assert_ptr_nonnull(be_strerror(9999));
	ck_assert_ptr_nonnull(be_strerror(EINVAL));
	ck_assert_ptr_nonnull(be_strerror(INT_MAX));
	ck_assert_ptr_nonnull(be_strerror(-INT_MAX));
	ck_assert_ptr_nonnull(be_strerror(INT_MIN));
}
END_TEST

/* --- ring: damaged shared memory, no daemon ---------------------------- */

START_TEST(test_other_major_version)
{
	char inst[64];
	struct ring_map m;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "v2", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	m.hdr->version = 2u << 16;
	ck_assert_int_eq(open_err(inst, "v2"), -EPROTO);
	m.hdr->version = (2u << 16) | 7;
	ck_assert_int_eq(open_err(inst, "v2"), -EPROTO);
	/* Another minor of our major is fine. */
	m.hdr->version = (RING_VERSION_MAJOR << 16) | 0x1234;
	ck_assert_int_eq(open_err(inst, "v2"), 0);
	ring_unmap(&m);
}
END_TEST

START_TEST(test_bad_header)
{
	char inst[64];
	struct ring_map m;
	uint64_t magic;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "hd", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	ck_assert_int_eq(open_err(inst, "hd"), 0);

	magic = m.hdr->magic;
	m.hdr->magic = magic ^ 1;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	m.hdr->magic = magic;

	/* head - tail > capacity */
	m.hdr->head = CAP_SMALL + 8;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	/* head below tail */
	m.hdr->tail = 64;
	m.hdr->head = 8;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	/* head not 8-aligned */
	m.hdr->tail = 0;
	m.hdr->head = 12;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	m.hdr->head = 0;

	/* capacity that does not match the object */
	m.hdr->capacity = CAP_SMALL * 2;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	m.hdr->capacity = 3000;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	m.hdr->capacity = CAP_SMALL;

	/* a store type that does not exist */
	m.hdr->store_type = 99;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	m.hdr->store_type = BE_TYPE_RAW;

	/* an unterminated store name */
	memset(m.hdr->store_name, 'x', sizeof(m.hdr->store_name));
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	strcpy(m.hdr->store_name, "hd");

	/* max_payload above a quarter of the ring */
	m.hdr->max_payload = CAP_SMALL;
	ck_assert_int_eq(open_err(inst, "hd"), -EBADMSG);
	m.hdr->max_payload = CAP_SMALL / 4;

	/* Repaired: opens again. */
	ck_assert_int_eq(open_err(inst, "hd"), 0);
	ring_unmap(&m);
}
END_TEST

/* Damage after be_open: writers see it at their next append. */
START_TEST(test_damage_after_open)
{
	char inst[64];
	struct ring_map m;
	be_store *s;
	uint64_t head, seq;
	uint8_t before[CAP_SMALL];
	/* i: the kind of damage */
	const int kind = _i;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "dm", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	s = open_ok(inst, "dm", 0);
	write_n(s, "ok", 3);
	head = m.hdr->head;
	seq = m.hdr->next_seq;
	ck_assert_uint_gt(head, 0);

	switch (kind) {
	case 0: /* head - tail > capacity */
		head = m.hdr->tail + CAP_SMALL + 8;
		break;
	case 1: /* head not aligned */
		head += 3;
		break;
	case 2: /* head far beyond anything */
		head = UINT64_MAX - 7;
		break;
	}
	WRITE_ONCE(m.hdr->head, head);
	memcpy(before, m.data, sizeof(before));

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(be_write(s, "after the damage", 16), -EBADMSG);
	ck_assert_uint_eq(m.hdr->head, head);
	ck_assert_uint_eq(m.hdr->next_seq, seq);
	ck_assert_msg(memcmp(before, m.data, sizeof(before)) == 0,
		      "a refused write changed the data area");
	ck_assert_int_eq(open_err(inst, "dm"), -EBADMSG);
	/* The handle still closes cleanly (its flush may time out: no daemon). */
	be_close(s);
	ring_unmap(&m);
}
END_TEST

START_TEST(test_full_drop)
{
	char inst[64], payload[200];
	struct ring_map m;
	be_store *s;
	uint64_t head, seq;
	int ret, n = 0;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "fd", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	s = open_ok(inst, "fd", 1000); /* a timeout must not matter under drop */
	memset(payload, 'p', sizeof(payload));
	while ((ret = be_write(s, payload, sizeof(payload))) == 0)
		ck_assert_int_lt(++n, 1000);
	ck_assert_int_eq(ret, -ENOBUFS);
	ck_assert_int_eq(n, CAP_SMALL / rec_size(sizeof(payload)));
	ck_assert_uint_eq(m.hdr->drops, 1);
	head = m.hdr->head;
	seq = m.hdr->next_seq;
	ck_assert_int_eq(be_write(s, payload, sizeof(payload)), -ENOBUFS);
	ck_assert_uint_eq(m.hdr->drops, 2);
	ck_assert_uint_eq(m.hdr->head, head);
	ck_assert_uint_eq(m.hdr->next_seq, seq);
	ck_assert_uint_eq(m.hdr->full_waits, 0);
	be_close(s);
	ring_unmap(&m);
}
END_TEST

START_TEST(test_full_block_timeout)
{
	char inst[64], payload[200];
	struct ring_map m;
	be_store *s;
	uint64_t head, t0;
	int ret, n = 0;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "fb", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_BLOCK, &m);
	s = open_ok(inst, "fb", 50);
	memset(payload, 'p', sizeof(payload));
	for (;;) {
		t0 = now_mono_ns();
		ret = be_write(s, payload, sizeof(payload));
		if (ret)
			break;
		ck_assert_int_lt(++n, 1000);
	}
	ck_assert_int_eq(ret, -ETIMEDOUT);
	/* It did wait (a lower bound only: a loaded host may wait longer). */
	ck_assert_uint_ge(now_mono_ns() - t0, 45 * NSEC_PER_MSEC);
	ck_assert_uint_eq(m.hdr->full_waits, 1);
	ck_assert_uint_eq(m.hdr->drops, 0);
	head = m.hdr->head;
	ck_assert_uint_eq(head, (uint64_t)n * rec_size(sizeof(payload)));
	be_close(s);
	ring_unmap(&m);
}
END_TEST

START_TEST(test_flush_no_daemon)
{
	char inst[64];
	struct ring_map m;
	be_store *s;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "nd", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_BLOCK, &m);
	s = open_ok(inst, "nd", 0);
	/* Nothing written through the handle: nothing to wait for. */
	ck_assert_int_eq(be_flush(s, 200), 0);
	ck_assert_int_eq(be_write(s, "one", 3), 0);
	ck_assert_int_eq(be_flush(s, 200), -ETIMEDOUT);
	ck_assert_int_eq(be_flush(s, 0), -ETIMEDOUT);
	be_close(s);
	ring_unmap(&m);
}
END_TEST

/*
 * A writer in another pid namespace: the grandchild is pid 1 of a new
 * namespace.  Only added when unshare(CLONE_NEWPID) works (root).
 */
START_TEST(test_other_pidns)
{
	char inst[64];
	struct ring_map m;
	int pfd[2], status, res[2] = { 0, 0 };
	pid_t c;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "ns", CAP_SMALL, BE_TYPE_RAW, RING_ON_FULL_DROP, &m);
	ck_assert_int_eq(pipe(pfd), 0);
	c = fork();
	ck_assert_int_ge(c, 0);
	if (c == 0) {
		pid_t g;

		close(pfd[0]);
		if (unshare(CLONE_NEWPID) < 0)
			_exit(100);
		g = fork();
		if (g < 0)
			_exit(101);
		if (g == 0) {
			struct be_open_opts o = { .instance = inst, .write_timeout_ms = 0 };
			be_store *s = NULL;
			int out[2];

			out[0] = be_open("ns", &o, &s);
			out[1] = (int)getpid();
			if (out[0] == 0)
				be_close(s);
			if (write(pfd[1], out, sizeof(out)) != (ssize_t)sizeof(out))
				_exit(102);
			_exit(0);
		}
		if (waitpid(g, &status, 0) != g || !WIFEXITED(status))
			_exit(103);
		_exit(WEXITSTATUS(status));
	}
	close(pfd[1]);
	ck_assert_int_eq(waitpid(c, &status, 0), c);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the namespace child failed: status 0x%x", status);
	ck_assert_int_eq(read(pfd[0], res, sizeof(res)), (ssize_t)sizeof(res));
	close(pfd[0]);
	ck_assert_int_eq(res[1], 1); /* it really was in a new namespace */
	ck_assert_msg(res[0] == -EXDEV, "be_open from another pid namespace: %d (%s)", res[0],
		      be_strerror(res[0]));
	/* Nothing written, the ring still fine for us. */
	ck_assert_uint_eq(m.hdr->head, 0);
	ck_assert_int_eq(open_err(inst, "ns"), 0);
	ring_unmap(&m);
}
END_TEST

static int pidns_available(void)
{
	int status;
	pid_t c = fork();

	if (c < 0)
		return 0;
	if (c == 0)
		_exit(unshare(CLONE_NEWPID) == 0 ? 0 : 1);
	if (waitpid(c, &status, 0) != c)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A damaged store beside a healthy one: the healthy one does not notice. */
START_TEST(test_neighbour_untouched)
{
	char inst[64], buf[64];
	struct ring_map a, b;
	struct ring_hdr snap, now;
	be_store *sa, *sb, *sb2;
	uint64_t a_tail, a_head, bad_head;
	uint8_t *out;
	struct ring_batch res;

	tu_instance(inst, sizeof(inst));
	make_ring(inst, "A", 8192, BE_TYPE_RAW, RING_ON_FULL_BLOCK, &a);
	make_ring(inst, "B", 8192, BE_TYPE_RAW, RING_ON_FULL_BLOCK, &b);
	sa = open_ok(inst, "A", 0);
	sb = open_ok(inst, "B", 0);
	write_n(sa, "A", 5);
	write_n(sb, "B", 3);
	memcpy(&snap, b.hdr, sizeof(snap));

	/* Garbage over A's records, then an impossible head. */
	a_tail = a.hdr->tail;
	a_head = a.hdr->head;
	ck_assert_uint_gt(a_head, a_tail);
	scribble(&a, a_tail, a_head, 0x1234567);
	bad_head = a_tail + 3 * 8192 + 5;
	WRITE_ONCE(a.hdr->head, bad_head);

	ck_assert_int_eq(be_write(sa, "x", 1), -EBADMSG);
	ck_assert_int_eq(open_err(inst, "A"), -EBADMSG);
	ck_assert_uint_eq(a.hdr->head, bad_head);

	/* B goes on. */
	for (int i = 3; i < 8; i++) {
		int len = snprintf(buf, sizeof(buf), "B record %d", i);

		ck_assert_int_eq(be_write(sb, buf, (size_t)len), 0);
	}
	/* A second writer of B (closed only after the comparison: its close flushes). */
	sb2 = open_ok(inst, "B", 0);
	ck_assert_int_eq(be_write(sb2, "B record 8", 10), 0);
	ck_assert_int_eq(be_write(sa, "x", 1), -EBADMSG);

	/* B's header: only head, next_seq and the counters may have moved. */
	memcpy(&now, b.hdr, sizeof(now));
	ck_assert_uint_eq(now.next_seq, snap.next_seq + 6);
	ck_assert_uint_gt(now.head, snap.head);
	now.head = snap.head;
	now.next_seq = snap.next_seq;
	memcpy((uint8_t *)&now + offsetof(struct ring_hdr, drops),
	       (uint8_t *)&snap + offsetof(struct ring_hdr, drops),
	       sizeof(now) - offsetof(struct ring_hdr, drops));
	for (size_t off = 0; off < sizeof(now); off++)
		ck_assert_msg(((uint8_t *)&now)[off] == ((uint8_t *)&snap)[off],
			      "B's header changed at byte %zu", off);

	/* B's records are all there, in order, intact. */
	out = malloc(8192);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(ring_collect(&b, b.hdr->tail, b.hdr->head, 1, out, 8192, &res), 0);
	ck_assert_uint_eq(res.count, 9);
	ck_assert_uint_eq(res.first_seq, 1);
	ck_assert_uint_eq(res.last_seq, 9);
	{
		uint64_t off = 0;

		for (int i = 0; i < 9; i++) {
			const struct rec_hdr *r = (const struct rec_hdr *)(out + off);
			int len = snprintf(buf, sizeof(buf), "B record %d", i);

			ck_assert_uint_eq(r->len, (uint32_t)len);
			ck_assert_msg(memcmp(out + off + sizeof(*r), buf, (size_t)len) == 0,
				      "B record %d differs", i);
			off += rec_size(r->len);
		}
	}
	free(out);
	be_close(sb2);
	be_close(sb);
	be_close(sa);
	ring_unmap(&a);
	ring_unmap(&b);
}
END_TEST

/* --- daemon ------------------------------------------------------------ */

static const char two_stores[] = "[store A]\n"
				 "type = raw\n"
				 "capacity = 64K\n"
				 "flush_bytes = 64K\n"
				 "flush_interval = %s\n"
				 "\n"
				 "[store B]\n"
				 "type = raw\n"
				 "capacity = 64K\n"
				 "flush_bytes = 64K\n"
				 "flush_interval = 60s\n";

static void config_two(struct tu_daemon *d, const char *a_interval)
{
	char stores[512];

	snprintf(stores, sizeof(stores), two_stores, a_interval);
	tu_daemon_config(d, "max_workers = 2\nshutdown_flush_timeout = 5s\n", stores);
}

/* Write to B and wait until it is durable: the daemon serves B. */
static void b_still_served(struct tu_daemon *d, const char *tag)
{
	be_store *sb = open_ok(d->instance, "B", 1000);
	int ret;

	write_n(sb, tag, 3);
	ret = be_flush(sb, 5000);
	ck_assert_msg(ret == 0, "be_flush(B): %s; daemon log:\n%s", be_strerror(ret),
		      tu_file_text(d->log));
	ck_assert_int_eq(be_close(sb), 0);
}

START_TEST(test_daemon_damaged_ring)
{
	struct tu_daemon d;
	struct ring_map m;
	be_store *sa;
	uint64_t tail, head, dmg = 0, deadline;
	const char *log;
	int st;

	config_two(&d, "100ms");
	start_daemon(&d, "B");

	sa = open_ok(d.instance, "A", 1000);
	write_n(sa, "A1", 5);
	ck_assert_int_eq(be_flush(sa, 5000), 0);
	ck_assert_int_eq(be_close(sa), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	/* Records written with no daemon, then turned to garbage. */
	sa = open_ok(d.instance, "A", 0);
	write_n(sa, "A2", 6);
	ck_assert_int_eq(ring_open(d.instance, "A", 0, &m), 0);
	tail = m.hdr->tail;
	head = m.hdr->head;
	ck_assert_uint_eq(head - tail, 6 * rec_size(strlen("A2 record 0")));
	/* _i == 0: every unflushed record is garbage; 1: the last three only. */
	if (_i == 1)
		tail = head - 3 * rec_size(strlen("A2 record 0"));
	scribble(&m, tail, head, 0xdeadbeef);

	start_daemon(&d, "B");
	/* Wait for the daemon to meet the damage (A ticks every 100 ms). */
	deadline = deadline_after_ms(10000);
	while ((dmg = load_acquire(&m.hdr->damaged_bytes)) == 0 && now_mono_ns() < deadline)
		nap_ms(10);
	ck_assert_msg(dmg == head - tail, "damaged_bytes %llu, expected %llu; log:\n%s",
		      (unsigned long long)dmg, (unsigned long long)(head - tail),
		      tu_file_text(d.log));
	ck_assert_uint_ge(load_acquire(&m.hdr->tail), head);

	b_still_served(&d, "B after damage");
	assert_alive(&d);

	log = tu_file_text(d.log);
	ck_assert_msg(has_line_with(log, "[A]", "damaged"), "no line '[A] ... damaged' in:\n%s",
		      log);

	/* shm-dump shows it. */
	{
		const char *argv[] = { BE_BIN_DIR "/shm-dump", "-i", d.instance, "A", NULL };
		unsigned long long v = 0;
		const char *p;

		st = run_prog(d.dir, argv);
		ck_assert_msg(st < 128, "shm-dump died of signal %d", st - 128);
		p = strstr(out_text, "damaged_bytes:");
		ck_assert_msg(p, "no damaged_bytes in shm-dump's output (exit %d):\n%s%s", st,
			      out_text, err_text);
		ck_assert_int_eq(sscanf(p, "damaged_bytes: %llu", &v), 1);
		ck_assert_uint_eq(v, head - tail);
	}

	/* A itself is usable again past the damage. */
	{
		be_store *s2 = open_ok(d.instance, "A", 1000);

		write_n(s2, "A3", 2);
		ck_assert_int_eq(be_flush(s2, 5000), 0);
		ck_assert_int_eq(be_close(s2), 0);
	}
	assert_alive(&d);
	be_close(sa);
	ring_unmap(&m);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	/* On disk: A1, the good A2 records before the damage, A3; no damage. */
	ck_assert_int_eq(tu_read_store(d.data_dir, "A", NULL, NULL), _i == 0 ? 5 + 2 : 5 + 3 + 2);
}
END_TEST

/* Map the first page of a ring's shm object, whatever its size now. */
static struct ring_hdr *map_hdr_page(const char *instance, const char *store, int *fdp)
{
	char path[256];
	void *p;
	int fd;

	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s.%s", instance, store);
	fd = open(path, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	p = mmap(NULL, RING_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	*fdp = fd;
	return p;
}

START_TEST(test_daemon_truncated_ring)
{
	struct tu_daemon d;
	char path[256];
	struct ring_hdr *h;
	be_store *sa;
	int fd, st, ret;

	config_two(&d, "60s");
	start_daemon(&d, "B");
	/* Unflushed records in A: the daemon will have to read A's data area. */
	sa = open_ok(d.instance, "A", 100);
	write_n(sa, "A", 4);

	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s.A", d.instance);
	ck_assert_int_eq(truncate(path, 4096), 0);

	/* Ask for A: the header page is still there, the records are not. */
	ret = be_flush(sa, 300);
	ck_assert_msg(ret == -ETIMEDOUT, "be_flush(A) of a truncated ring: %d", ret);
	ck_assert_msg(wait_file_has(d.log, "truncated", 10000),
		      "the daemon did not report the truncation; log:\n%s", tu_file_text(d.log));

	b_still_served(&d, "B after truncation");
	assert_alive(&d);
	ck_assert_msg(has_line_with(tu_file_text(d.log), "[A]", "truncated"),
		      "no line '[A] ... truncated' in:\n%s", tu_file_text(d.log));

	/* A's header says so; a new writer is refused cleanly. */
	h = map_hdr_page(d.instance, "A", &fd);
	ck_assert_uint_eq(READ_ONCE(h->daemon_state), RING_DAEMON_QUARANTINED);
	ck_assert_int_eq(READ_ONCE(h->last_error), -EFAULT);
	munmap(h, RING_HDR_SIZE);
	close(fd);
	ck_assert_int_eq(open_err(d.instance, "A"), -EBADMSG);

	/* shm-dump on the truncated ring: an error status, not a crash. */
	{
		const char *argv[] = { BE_BIN_DIR "/shm-dump", "-i", d.instance, "A", NULL };

		st = run_prog(d.dir, argv);
		ck_assert_msg(st == 2, "shm-dump on a truncated ring: exit %d\n%s%s", st, out_text,
			      err_text);
	}
	be_close(sa);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/* Truncated to nothing: the header page is gone too; the heartbeat meets it. */
START_TEST(test_daemon_truncated_to_zero)
{
	struct tu_daemon d;
	char path[256];

	config_two(&d, "60s");
	start_daemon(&d, "B");
	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s.A", d.instance);
	ck_assert_int_eq(truncate(path, 0), 0);
	ck_assert_msg(wait_file_has(d.log, "truncated", 10000),
		      "the daemon did not report the truncation; log:\n%s", tu_file_text(d.log));
	b_still_served(&d, "B after truncation");
	assert_alive(&d);
	ck_assert_int_eq(open_err(d.instance, "A"), -EBADMSG);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

/*
 * A writer turns A's whole header page to garbage (lock, head, identity)
 * while the daemon runs, and again before a restart: the daemon stops
 * serving A, says so, and goes on with B.
 */
START_TEST(test_daemon_garbage_header)
{
	struct tu_daemon d;
	struct ring_hdr *h;
	uint64_t head, tail;
	int fd;

	config_two(&d, "60s");
	start_daemon(&d, "B");
	h = map_hdr_page(d.instance, "A", &fd);
	rng_state = 0xfeedface;
	for (size_t i = 0; i < RING_HDR_SIZE; i++)
		((uint8_t *)h)[i] = rng_byte();
	head = READ_ONCE(h->head);
	tail = READ_ONCE(h->tail);
	ck_assert_msg(head < tail || head - tail > (64u << 10) || (head & 7), "garbage too sane");

	/* B's flush runs the daemon's loop, which looks at every store. */
	b_still_served(&d, "B after garbage");
	ck_assert_msg(wait_file_has(d.log, "impossible", 5000), "A's damage not reported:\n%s",
		      tu_file_text(d.log));
	ck_assert_msg(has_line_with(tu_file_text(d.log), "[A]", "impossible"),
		      "no line '[A] ... impossible' in:\n%s", tu_file_text(d.log));
	assert_alive(&d);
	ck_assert_int_eq(open_err(d.instance, "A"), -EBADMSG);

	/* A restart meets the same ring: refused, the others served. */
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	rng_state = 0xfeedface;
	for (size_t i = 0; i < RING_HDR_SIZE; i++)
		((uint8_t *)h)[i] = rng_byte();
	start_daemon(&d, "B");
	b_still_served(&d, "B after restart");
	ck_assert_msg(has_line_with(tu_file_text(d.log), "[A]", "cannot attach"),
		      "no line '[A] ... cannot attach' in:\n%s", tu_file_text(d.log));
	assert_alive(&d);
	munmap(h, RING_HDR_SIZE);
	close(fd);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

START_TEST(test_config_not_pow2)
{
	struct tu_daemon d;
	char needle[400], text[4096];
	const char *argv[4];
	struct ring_map m;
	int st, line = 0, n = 0;
	char *p;

	tu_daemon_config(&d, NULL,
			 "[store A]\ntype = raw\ncapacity = 1M\n\n"
			 "[store B]\ntype = raw\ncapacity = 3M\nflush_bytes = 4K\n");
	slurp(d.conf, text, sizeof(text));
	p = strstr(text, "capacity = 3M");
	ck_assert_ptr_nonnull(p);
	for (char *q = text; q <= p; q++)
		n += *q == '\n';
	line = n + 1;

	argv[0] = BE_BIN_DIR "/bufferengined";
	argv[1] = "-c";
	argv[2] = d.conf;
	argv[3] = NULL;
	st = run_prog(d.dir, argv);
	ck_assert_msg(st != 0 && st < 128, "bufferengined with capacity 3M: exit %d", st);
	snprintf(needle, sizeof(needle), "%s:%d", d.conf, line);
	ck_assert_msg(strstr(err_text, needle), "stderr does not name %s:\n%s", needle, err_text);
	ck_assert_msg(strstr(err_text, "capacity"), "stderr does not name 'capacity':\n%s",
		      err_text);
	ck_assert_int_eq(count_lines(err_text), 1);
	/* Before touching any ring. */
	ck_assert_int_eq(ring_open(d.instance, "A", RING_OPEN_RDONLY, &m), -ENOENT);
	ck_assert_int_eq(ring_open(d.instance, "B", RING_OPEN_RDONLY, &m), -ENOENT);
}
END_TEST

START_TEST(test_config_geometry_differs)
{
	struct tu_daemon d;
	struct ring_map m;
	uint64_t inc;
	const char *log;
	FILE *f;
	be_store *s;

	tu_daemon_config(&d, "shutdown_flush_timeout = 5s\n",
			 "[store A]\ntype = raw\ncapacity = 1M\nflush_interval = 60s\n\n"
			 "[store B]\ntype = raw\ncapacity = 64K\nflush_interval = 60s\n");
	start_daemon(&d, "B");
	s = open_ok(d.instance, "A", 1000);
	write_n(s, "A", 3);
	ck_assert_int_eq(be_flush(s, 5000), 0);
	ck_assert_int_eq(be_close(s), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	ck_assert_int_eq(ring_open(d.instance, "A", RING_OPEN_RDONLY, &m), 0);
	ck_assert_uint_eq(m.capacity, 1u << 20);
	inc = m.incarnation;
	ring_unmap(&m);

	/* Same instance and data, A now 2M. */
	f = fopen(d.conf, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"[engine]\ninstance = %s\ndata_dir = %s\nshutdown_flush_timeout = 5s\n\n"
		"[store A]\ntype = raw\ncapacity = 2M\nflush_interval = 60s\n\n"
		"[store B]\ntype = raw\ncapacity = 64K\nflush_interval = 60s\n",
		d.instance, d.data_dir);
	fclose(f);
	start_daemon(&d, "B");
	ck_assert_msg(wait_file_has(d.log, "differs from the config", 5000),
		      "no refusal in the log:\n%s", tu_file_text(d.log));
	log = tu_file_text(d.log);
	ck_assert_msg(has_line_with(log, "[A]", "differs"), "no line '[A] ... differs' in:\n%s",
		      log);

	/* The ring is the one we had: same size, same incarnation, same writers. */
	ck_assert_int_eq(ring_open(d.instance, "A", RING_OPEN_RDONLY, &m), 0);
	ck_assert_uint_eq(m.capacity, 1u << 20);
	ck_assert_uint_eq(m.map_len, RING_HDR_SIZE + (1u << 20));
	ck_assert_uint_eq(m.incarnation, inc);
	ck_assert_uint_ne(READ_ONCE(m.hdr->daemon_pid), (uint32_t)d.pid);
	ring_unmap(&m);
	s = open_ok(d.instance, "A", 0);
	ck_assert_int_eq(be_write(s, "still writable", 14), 0);
	be_close(s);

	b_still_served(&d, "B");
	assert_alive(&d);
	tu_daemon_stop(&d, SIGTERM);
}
END_TEST

/* --- tools ------------------------------------------------------------- */

START_TEST(test_be_read_corrupt_batch)
{
	struct tu_daemon d;
	char dir[400], segpath[700], needle[800];
	const char *argv[4];
	struct seg_file_hdr fh;
	struct seg_batch_hdr bh;
	uint64_t off, off2 = 0, total = 0, in2 = 0;
	int nbatches = 0, fd, st;
	DIR *dd;
	struct dirent *e;
	be_store *s;

	tu_daemon_config(&d, "shutdown_flush_timeout = 5s\n",
			 "[store A]\ntype = raw\ncapacity = 64K\nflush_bytes = 1\n"
			 "flush_interval = 60s\n");
	start_daemon(&d, "A");
	s = open_ok(d.instance, "A", 1000);
	/* One batch per round: a record, then a flush that waits for it. */
	for (int i = 0; i < 4; i++) {
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "batch %d payload", i);

		ck_assert_int_eq(be_write(s, buf, (size_t)len), 0);
		ck_assert_int_eq(be_flush(s, 5000), 0);
	}
	ck_assert_int_eq(be_close(s), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	snprintf(dir, sizeof(dir), "%s/A", d.data_dir);
	dd = opendir(dir);
	ck_assert_ptr_nonnull(dd);
	segpath[0] = 0;
	while ((e = readdir(dd))) {
		uint64_t first;

		if (seg_parse_name(e->d_name, &first) == 0) {
			ck_assert_msg(!segpath[0], "more than one segment");
			snprintf(segpath, sizeof(segpath), "%s/%s", dir, e->d_name);
		}
	}
	closedir(dd);
	ck_assert_msg(segpath[0], "no segment in %s", dir);

	/* Walk the batches; flip a payload byte of the second. */
	fd = open(segpath, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	off = fh.hdr_size;
	while (pread(fd, &bh, sizeof(bh), (off_t)off) == (ssize_t)sizeof(bh) &&
	       bh.magic == SEG_BATCH_MAGIC) {
		nbatches++;
		total += bh.count;
		if (nbatches == 2) {
			off2 = off;
			in2 = bh.count;
		}
		off += SEG_BATCH_HDR_SIZE + bh.length;
	}
	ck_assert_int_ge(nbatches, 3);
	ck_assert_uint_eq(total, 4);
	{
		uint8_t c;
		off_t at = (off_t)(off2 + SEG_BATCH_HDR_SIZE + sizeof(struct rec_hdr) + 2);

		ck_assert_int_eq(pread(fd, &c, 1, at), 1);
		c ^= 0x20;
		ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
	}
	close(fd);

	/* Without --salvage be-read stops at the corrupt batch; with it, it reads on. */
	argv[0] = BE_BIN_DIR "/be-read";
	argv[1] = dir;
	argv[2] = NULL;
	st = run_prog(d.dir, argv);
	ck_assert_msg(st == 2, "be-read on a corrupt segment: exit %d\n%s", st, err_text);
	ck_assert_ptr_null(strstr(out_text, "batch 3 payload"));
	argv[1] = "--salvage";
	argv[2] = dir;
	argv[3] = NULL;
	st = run_prog(d.dir, argv);
	ck_assert_msg(st == 2, "be-read --salvage on a corrupt segment: exit %d\n%s", st, err_text);
	snprintf(needle, sizeof(needle), "%s: corrupt batch at offset %llu", segpath,
		 (unsigned long long)off2);
	ck_assert_msg(strstr(err_text, needle), "stderr lacks '%s':\n%s", needle, err_text);
	/* Every record of the other batches is still printed. */
	ck_assert_int_eq(count_lines(out_text), (int)(total - in2));
	ck_assert_ptr_null(strstr(out_text, "batch 1 payload"));
	ck_assert_ptr_nonnull(strstr(out_text, "batch 3 payload"));
}
END_TEST

START_TEST(test_be_read_bad_args)
{
	char dir[256], missing[300];
	const char *argv[4];
	int st;

	tu_tmpdir(dir, sizeof(dir));
	snprintf(missing, sizeof(missing), "%s/no/such/dir", dir);
	argv[0] = BE_BIN_DIR "/be-read";
	argv[1] = missing;
	argv[2] = NULL;
	st = run_prog(dir, argv);
	ck_assert_int_eq(st, 1);
	ck_assert_int_eq(count_lines(err_text), 1);
	ck_assert_ptr_nonnull(strstr(err_text, missing));
	ck_assert_str_eq(out_text, "");

	argv[1] = "--bogus";
	argv[2] = dir;
	argv[3] = NULL;
	st = run_prog(dir, argv);
	ck_assert_int_ne(st, 0);
	ck_assert_int_lt(st, 128);
	ck_assert_msg(count_lines(err_text) == 1, "be-read --bogus: stderr not one line:\n%s",
		      err_text);
	ck_assert_ptr_nonnull(strstr(err_text, "--bogus"));

	argv[1] = "--from-seq";
	argv[2] = "abc";
	argv[3] = NULL;
	st = run_prog(dir, argv);
	ck_assert_int_eq(st, 1);
	ck_assert_int_eq(count_lines(err_text), 1);

	argv[1] = NULL;
	st = run_prog(dir, argv);
	ck_assert_int_eq(st, 1);
	ck_assert_int_eq(count_lines(err_text), 1);

	/* An empty store directory: nothing to print, nothing wrong. */
	argv[1] = dir;
	argv[2] = NULL;
	st = run_prog(dir, argv);
	ck_assert_msg(st == 0, "be-read of an empty dir: exit %d\n%s", st, err_text);
	ck_assert_str_eq(out_text, "");

	/* A segment whose file header is garbage: named, exit 2. */
	{
		char seg[400];
		uint8_t junk[300];
		int fd;

		snprintf(seg, sizeof(seg), "%s/00000000000000000001.seg", dir);
		rng_state = 42;
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = rng_byte();
		fd = open(seg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
		close(fd);
		st = run_prog(dir, argv);
		ck_assert_msg(st == 2, "be-read of a garbage segment: exit %d\n%s", st, err_text);
		ck_assert_msg(strstr(err_text, seg), "stderr does not name %s:\n%s", seg, err_text);
		ck_assert_int_eq(count_lines(err_text), 1);
		ck_assert_str_eq(out_text, "");
	}
}
END_TEST

static const char *const progs[] = { "bufferengined", "be-read", "be-write", "shm-dump" };

START_TEST(test_help_version)
{
	char dir[256], path[512];
	const char *argv[3];
	const char *prog = progs[_i];
	int st;

	tu_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), BE_BIN_DIR "/%s", prog);
	argv[0] = path;
	argv[2] = NULL;

	argv[1] = "--help";
	st = run_prog(dir, argv);
	ck_assert_msg(st == 0, "%s --help: exit %d", prog, st);
	ck_assert_msg(out_text[0], "%s --help printed nothing", prog);

	argv[1] = "--version";
	st = run_prog(dir, argv);
	ck_assert_msg(st == 0, "%s --version: exit %d", prog, st);
	ck_assert_msg(strstr(out_text, BE_VERSION_STRING), "%s --version: '%s'", prog, out_text);

	argv[1] = "-V";
	st = run_prog(dir, argv);
	ck_assert_msg(st == 0 && strstr(out_text, BE_VERSION_STRING), "%s -V: exit %d '%s'", prog,
		      st, out_text);

	argv[1] = "--no-such-option";
	st = run_prog(dir, argv);
	ck_assert_msg(st != 0 && st < 128, "%s --no-such-option: exit %d", prog, st);
	ck_assert_msg(err_text[0], "%s --no-such-option: nothing on stderr", prog);
	ck_assert_msg(strstr(err_text, "no-such-option"),
		      "%s --no-such-option: stderr does not name it:\n%s", prog, err_text);
}
END_TEST

START_TEST(test_tools_missing_store)
{
	char dir[256], inst[64];
	const char *argv[5];
	int st;

	tu_tmpdir(dir, sizeof(dir));
	tu_instance(inst, sizeof(inst));

	argv[0] = BE_BIN_DIR "/be-write";
	argv[1] = "-i";
	argv[2] = inst;
	argv[3] = "nosuch";
	argv[4] = NULL;
	st = run_prog(dir, argv);
	ck_assert_int_eq(st, 1);
	ck_assert_int_eq(count_lines(err_text), 1);
	ck_assert_ptr_nonnull(strstr(err_text, "nosuch"));

	argv[3] = "bad/name";
	st = run_prog(dir, argv);
	ck_assert_int_ne(st, 0);
	ck_assert_int_lt(st, 128);
	ck_assert_int_eq(count_lines(err_text), 1);

	argv[0] = BE_BIN_DIR "/shm-dump";
	argv[3] = "nosuch";
	st = run_prog(dir, argv);
	ck_assert_int_eq(st, 1);
	ck_assert_ptr_nonnull(strstr(err_text, "nosuch"));

	argv[0] = BE_BIN_DIR "/bufferengined";
	argv[1] = "-c";
	argv[2] = "/nonexistent/be.conf";
	argv[3] = NULL;
	st = run_prog(dir, argv);
	ck_assert_int_ne(st, 0);
	ck_assert_int_lt(st, 128);
	ck_assert_int_eq(count_lines(err_text), 1);
	ck_assert_ptr_nonnull(strstr(err_text, "/nonexistent/be.conf"));
}
END_TEST

Suite *errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc;

	tc = tcase_create("api");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_open_bad_args);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_write_bad_args);
	tcase_add_test(tc, test_write_batch_bad_args);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_strerror);
	suite_add_tcase(s, tc);

	tc = tcase_create("ring");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_other_major_version);
	tcase_add_test(tc, test_bad_header);
	tcase_add_loop_test(tc, test_damage_after_open, 0, 3);
	tcase_add_test(tc, test_full_drop);
	tcase_add_test(tc, test_full_block_timeout);
	tcase_add_test(tc, test_flush_no_daemon);
	if (pidns_available())
		tcase_add_test(tc, test_other_pidns);
	else
		printf("SKIP: errors/ring/test_other_pidns: unshare(CLONE_NEWPID) is not "
		       "permitted here (needs root)\n");
	tcase_add_test(tc, test_neighbour_untouched);
	suite_add_tcase(s, tc);

	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_daemon_damaged_ring, 0, 2);
	tcase_add_test(tc, test_daemon_truncated_ring);
	tcase_add_test(tc, test_daemon_truncated_to_zero);
	tcase_add_test(tc, test_daemon_garbage_header);
	tcase_add_test(tc, test_config_not_pow2);
	tcase_add_test(tc, test_config_geometry_differs);
	suite_add_tcase(s, tc);

	tc = tcase_create("tools");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_be_read_corrupt_batch);
	tcase_add_test(tc, test_be_read_bad_args);
	tcase_add_loop_test(tc, test_help_version, 0, (int)(sizeof(progs) / sizeof(progs[0])));
	tcase_add_test(tc, test_tools_missing_store);
	suite_add_tcase(s, tc);
	return s;
}
