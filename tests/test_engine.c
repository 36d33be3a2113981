/*
 * test_engine.c - the engine's knobs, as the seed has them and done right:
 * SIGHUP adds a store while writers run and applies a changed threshold at
 * once (and refuses a changed geometry), max_workers bounds the stores in
 * flight, the final flush at SIGTERM gives up at shutdown_flush_timeout
 * with the records left in the ring, and retention deletes the oldest
 * closed segments by size and by age, never the open one.
 */
#include <check.h>
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

#ifndef BE_TEST_DIR
#define BE_TEST_DIR "build/tests"
#endif

/* Poll until the ring of store exists and this daemon attached it (bounded). */
static int wait_ring(const struct tu_daemon *d, const char *store)
{
	for (int i = 0; i < 1000; i++) {
		if (tu_ring_attached(d->instance, store, d->pid))
			return 0;
		tu_sleep_ms(10);
	}
	return -1;
}

/* Write n raw records "<tag>:<i>" to store and flush; exit status 0 when all are durable. */
static pid_t spawn_writer(const char *instance, const char *store, int n, int flush_every)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct be_open_opts o = { .instance = instance, .write_timeout_ms = 5000 };
		be_store *s;
		char buf[64];

		if (be_open(store, &o, &s))
			_exit(10);
		for (int i = 0; i < n; i++) {
			int len = snprintf(buf, sizeof(buf), "%s:%d", store, i);

			if (be_write(s, buf, (size_t)len))
				_exit(11);
			if (flush_every && i % flush_every == 0 && be_flush(s, 10000))
				_exit(12);
		}
		_exit(be_flush(s, 10000) ? 13 : 0);
	}
	return pid;
}

struct count_ctx {
	const char *store;
	int next;
	int bad;
};

static int check_rec(const struct rec_hdr *r, const uint8_t *p, void *arg)
{
	struct count_ctx *c = arg;
	char want[64];
	int len = snprintf(want, sizeof(want), "%s:%d", c->store, c->next);

	if (r->len != (uint32_t)len || memcmp(p, want, (size_t)len))
		c->bad++;
	c->next++;
	return 0;
}

static void append_conf(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_hup_adds_store)
{
	struct tu_daemon d;
	struct count_ctx ca = { .store = "a" }, cb = { .store = "b" };
	pid_t wa, wb;

	tu_daemon_config(&d, NULL, "[store a]\ntype = raw\ncapacity = 256K\nflush_interval = 50ms\n");
	ck_assert_msg(tu_daemon_start(&d, "a") == 0, "daemon: %s", tu_file_text(d.log));
	/* Writers of a keep going while the config grows a store b. */
	wa = spawn_writer(d.instance, "a", 50000, 5000);
	append_conf(d.conf, "[store b]\ntype = raw\ncapacity = 256K\nflush_interval = 50ms\n");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_msg(wait_ring(&d, "b") == 0, "no ring b after SIGHUP: %s", tu_file_text(d.log));
	wb = spawn_writer(d.instance, "b", 2000, 0);
	ck_assert_int_eq(tu_wait_exit(wb, -1), 0);
	ck_assert_int_eq(tu_wait_exit(wa, -1), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	ck_assert_int_eq(tu_read_store(d.data_dir, "a", check_rec, &ca), 50000);
	ck_assert_int_eq(tu_read_store(d.data_dir, "b", check_rec, &cb), 2000);
	ck_assert_int_eq(ca.bad + cb.bad, 0);
	ck_assert_ptr_nonnull(strstr(tu_file_text(d.log), "1 stores added"));
}
END_TEST

START_TEST(test_hup_knobs_and_geometry)
{
	struct tu_daemon d;
	struct ring_map m;
	uint64_t fb = 0;

	tu_daemon_config(&d, NULL,
			 "[store a]\ntype = raw\ncapacity = 1M\nflush_bytes = 64K\n");
	ck_assert_msg(tu_daemon_start(&d, "a") == 0, "daemon: %s", tu_file_text(d.log));
	/* A new threshold reaches the ring's header at once; a new capacity does not. */
	{
		char cmd[1024];

		snprintf(cmd, sizeof(cmd), "sed -i 's/^flush_bytes = 64K/flush_bytes = 128K/' %s",
			 d.conf);
		ck_assert_int_eq(system(cmd), 0);
	}
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	ck_assert_int_eq(ring_open(d.instance, "a", RING_OPEN_RDONLY, &m), 0);
	for (int i = 0; i < 500 && (fb = READ_ONCE(m.hdr->flush_bytes)) != 128 * 1024; i++)
		tu_sleep_ms(10);
	ck_assert_uint_eq(fb, 128 * 1024);
	{
		char cmd[1024];

		snprintf(cmd, sizeof(cmd), "sed -i 's/^capacity = 1M/capacity = 2M/' %s", d.conf);
		ck_assert_int_eq(system(cmd), 0);
	}
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	for (int i = 0; i < 500 && !strstr(tu_file_text(d.log), "refused"); i++)
		tu_sleep_ms(10);
	ck_assert_msg(strstr(tu_file_text(d.log), "[a] error: SIGHUP: type, capacity or on_full "
				 "changed: refused"), "log: %s", tu_file_text(d.log));
	ck_assert_uint_eq(m.capacity, 1 << 20);
	ring_unmap(&m);
	/* The daemon still serves a. */
	{
		pid_t w = spawn_writer(d.instance, "a", 100, 0);

		ck_assert_int_eq(tu_wait_exit(w, -1), 0);
	}
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
}
END_TEST

START_TEST(test_max_workers)
{
	struct tu_daemon d;
	char stores[4096] = "", journal[512], line[128];
	pid_t w[8];
	unsigned high = 0;
	FILE *f;

	for (int i = 0; i < 8; i++) {
		size_t n = strlen(stores);

		snprintf(stores + n, sizeof(stores) - n,
			 "[store s%d]\ntype = raw\ncapacity = 1M\nflush_bytes = 4K\n", i);
	}
	tu_daemon_config(&d, "max_workers = 2\n", stores);
	snprintf(journal, sizeof(journal), "%s/journal", d.dir);
	setenv("BE_SYNC_JOURNAL", journal, 1);
	ck_assert_msg(tu_daemon_start_bin(&d, "s7", BE_TEST_DIR "/bufferengined-hooks") == 0,
		      "daemon: %s", tu_file_text(d.log));
	for (int i = 0; i < 8; i++) {
		char name[8];

		snprintf(name, sizeof(name), "s%d", i);
		w[i] = spawn_writer(d.instance, name, 20000, 500);
	}
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(tu_wait_exit(w[i], -1), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	f = fopen(journal, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned n;

		if (sscanf(line, "workers %u", &n) == 1 && n > high)
			high = n;
	}
	fclose(f);
	/* Eight stores flushing at once, two at a time. */
	ck_assert_uint_eq(high, 2);
	for (int i = 0; i < 8; i++) {
		char name[8];
		struct count_ctx c = { .store = name };

		snprintf(name, sizeof(name), "s%d", i);
		ck_assert_int_eq(tu_read_store(d.data_dir, name, check_rec, &c), 20000);
		ck_assert_int_eq(c.bad, 0);
	}
}
END_TEST

START_TEST(test_shutdown_timeout)
{
	struct tu_daemon d;
	struct ring_map m;
	char faults[512] = "";
	pid_t w;
	int status;

	/* Every write fails: the final flush can never finish. */
	for (int i = 1; i <= 16; i++) {
		size_t n = strlen(faults);

		snprintf(faults + n, sizeof(faults) - n, "%swrite_eio:%d", i > 1 ? "," : "", i);
	}
	setenv("BE_FAULTS", faults, 1);
	tu_daemon_config(&d, "shutdown_flush_timeout = 300ms\n",
			 "[store a]\ntype = raw\ncapacity = 1M\nflush_interval = 10s\n");
	ck_assert_msg(tu_daemon_start_bin(&d, "a", BE_TEST_DIR "/bufferengined-hooks") == 0,
		      "daemon: %s", tu_file_text(d.log));
	w = fork();
	if (w == 0) {
		struct be_open_opts o = { .instance = d.instance, .write_timeout_ms = 1000 };
		be_store *s;

		if (be_open("a", &o, &s))
			_exit(10);
		for (int i = 0; i < 100; i++)
			if (be_write(s, "x", 1))
				_exit(11);
		_exit(0);
	}
	ck_assert_int_eq(tu_wait_exit(w, -1), 0);
	status = tu_daemon_stop(&d, SIGTERM);
	/* It gave up (status 1) rather than hanging; Check's timeout would catch a hang. */
	ck_assert_msg(status == 1, "status %d, log: %s", status, tu_file_text(d.log));
	ck_assert_ptr_nonnull(strstr(tu_file_text(d.log), "shutdown_flush_timeout reached"));
	/* The records wait in the ring for the next daemon. */
	ck_assert_int_eq(ring_open(d.instance, "a", RING_OPEN_RDONLY, &m), 0);
	ck_assert_uint_eq(READ_ONCE(m.hdr->head) - READ_ONCE(m.hdr->tail), 100 * rec_size(1));
	ring_unmap(&m);
	unsetenv("BE_FAULTS");
	ck_assert_msg(tu_daemon_start(&d, "a") == 0, "restart: %s", tu_file_text(d.log));
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	ck_assert_int_eq(tu_read_store(d.data_dir, "a", NULL, NULL), 100);
}
END_TEST

/* The sizes and first seqs of a store's segments, oldest first. */
static int list_segments(const char *data_dir, const char *store, uint64_t *seqs, uint64_t *sizes,
			 int max)
{
	char path[512];
	uint64_t *list = NULL;
	int dirfd, n;

	snprintf(path, sizeof(path), "%s/%s", data_dir, store);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	n = seg_list(dirfd, &list);
	for (int i = 0; i < n && i < max; i++) {
		char name[SEG_NAME_LEN + 1];
		struct stat sb;

		seg_name(name, list[i]);
		seqs[i] = list[i];
		sizes[i] = fstatat(dirfd, name, &sb, 0) == 0 ? (uint64_t)sb.st_size : 0;
	}
	free(list);
	close(dirfd);
	return n;
}

struct last_ctx {
	uint64_t first, last;
	long n;
};

static int note_seq(const struct rec_hdr *r, const uint8_t *p, void *arg)
{
	struct last_ctx *c = arg;

	(void)p;
	if (!c->n++)
		c->first = r->seq;
	c->last = r->seq;
	return 0;
}

START_TEST(test_retention)
{
	struct tu_daemon d;
	struct ring_map m;
	uint64_t seqs[512], sizes[512], total = 0, deleted;
	struct last_ctx c = { 0 };
	int n;
	pid_t w;

	/* Batches of at most 64K, so that a segment holds at most two of them. */
	tu_daemon_config(&d, "batch_bytes = 64K\n",
			 "[store r]\ntype = raw\ncapacity = 256K\nflush_bytes = 16K\n"
			 "segment_bytes = 64K\nretain_bytes = 256K\n");
	ck_assert_msg(tu_daemon_start(&d, "r") == 0, "daemon: %s", tu_file_text(d.log));
	w = spawn_writer(d.instance, "r", 40000, 0); /* ~1.5 MB of records */
	ck_assert_int_eq(tu_wait_exit(w, -1), 0);
	ck_assert_int_eq(ring_open(d.instance, "r", RING_OPEN_RDONLY, &m), 0);
	deleted = READ_ONCE(m.hdr->segments_deleted);
	ring_unmap(&m);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);

	n = list_segments(d.data_dir, "r", seqs, sizes, 512);
	ck_assert_int_gt(n, 1);
	for (int i = 0; i < n; i++)
		total += sizes[i];
	/* Closed segments went oldest first until the store fit, the open one stayed. */
	ck_assert_msg(total <= 256 * 1024 + 2 * 64 * 1024 + 4096, "%d segments, %llu bytes", n,
		      (unsigned long long)total);
	ck_assert_uint_gt(deleted, 0);
	ck_assert_ptr_nonnull(strstr(tu_file_text(d.log), "retention: deleted"));
	/* What is left is the newest records, with no hole: the last one written is there. */
	ck_assert_int_gt(tu_read_store(d.data_dir, "r", note_seq, &c), 0);
	ck_assert_uint_eq(c.last - c.first + 1, (uint64_t)c.n);
	ck_assert_uint_eq(c.first, seqs[0]);
	ck_assert_uint_eq(c.last, 40000);

	/* retain_age: segments last written long ago go at the next start, not the newest. */
	{
		char cmd[1024];
		struct timespec old[2] = { { .tv_sec = time(NULL) - 2 * 86400 },
					   { .tv_sec = time(NULL) - 2 * 86400 } };
		char path[512];

		for (int i = 0; i < n; i++) {
			char name[SEG_NAME_LEN + 1];

			seg_name(name, seqs[i]);
			snprintf(path, sizeof(path), "%s/r/%s", d.data_dir, name);
			ck_assert_int_eq(utimensat(AT_FDCWD, path, old, 0), 0);
		}
		snprintf(cmd, sizeof(cmd), "sed -i 's/^retain_bytes = 256K/retain_age = 1d/' %s",
			 d.conf);
		ck_assert_int_eq(system(cmd), 0);
	}
	ck_assert_msg(tu_daemon_start(&d, "r") == 0, "daemon: %s", tu_file_text(d.log));
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	{
		uint64_t seqs2[512], sizes2[512];
		int n2 = list_segments(d.data_dir, "r", seqs2, sizes2, 512);

		/* Only the segment that was open (the newest) is left. */
		ck_assert_int_eq(n2, 1);
		ck_assert_uint_eq(seqs2[0], seqs[n - 1]);
	}
}
END_TEST

Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("engine");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hup_adds_store);
	tcase_add_test(tc, test_hup_knobs_and_geometry);
	tcase_add_test(tc, test_max_workers);
	tcase_add_test(tc, test_shutdown_timeout);
	tcase_add_test(tc, test_retention);
	suite_add_tcase(s, tc);
	return s;
}
