/*
 * test_clock.c - the records' timestamp clock (shm/tsclock.h): whatever
 * source it reads (the TSC or clock_gettime), every value lies between two
 * clock_gettime(CLOCK_REALTIME) reads taken around it, within the error
 * the design allows, through calibration, re-anchoring, idle gaps, other
 * threads and a forked child; BE_NO_TSC=1 turns the TSC off; and the
 * timestamps be_write() stamps obey the same bracket.
 *
 * A preemption only widens a bracket, so the checks cannot fail on a busy
 * machine; a wrong rate or a stale anchor fails them by far more than the
 * slack.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/ring.h"
#include "shm/tsclock.h"
#include "tests/testutil.h"

/* The error allowed beyond the bracket: ~0.5 us by design, 5 us of slack. */
#define SLACK_NS UINT64_C(5000)

/*
 * Read the clock `reads` times, each bracketed, with a pause of `gap_ns`
 * (a busy wait, so the thread stays on its CPU as a writer would) every
 * `every` reads.  Returns the number of reads outside their bracket
 * (printing the first few).
 */
static unsigned bracket_reads(unsigned reads, unsigned every, uint64_t gap_ns)
{
	unsigned bad = 0;

	for (unsigned i = 0; i < reads; i++) {
		uint64_t before = now_real_ns(), t = tsclock_now_ns(), after = now_real_ns();

		if (t + SLACK_NS < before || t > after + SLACK_NS) {
			if (bad++ < 5)
				fprintf(stderr,
					"read %u: %llu not within [%llu, %llu] (+-%llu ns; %lld ns off)\n",
					i, (unsigned long long)t, (unsigned long long)before,
					(unsigned long long)after, (unsigned long long)SLACK_NS,
					t < before ? (long long)(t - before) : (long long)(t - after));
		}
		if (every && i % every == every - 1) {
			uint64_t until = now_mono_ns() + gap_ns;

			while (now_mono_ns() < until)
				;
		}
	}
	return bad;
}

/* Through calibration and many re-anchors: reads back to back for >= 30 ms. */
START_TEST(test_bracket)
{
	uint64_t until = now_mono_ns() + 30 * NSEC_PER_MSEC;
	unsigned rounds = 0;

	printf("test_clock: the timestamp clock reads %s\n",
	       tsclock_enabled() ? "the TSC" : "clock_gettime");
	while (now_mono_ns() < until || rounds < 10) {
		ck_assert_uint_eq(bracket_reads(10000, 0, 0), 0);
		rounds++;
	}
}
END_TEST

/* Gaps of 0.3, 1.5 and 20 ms between reads: past the span, and an idle thread. */
static const uint64_t gaps_ns[] = { 300000, 1500000, 20000000 };

START_TEST(test_gaps)
{
	ck_assert_uint_eq(bracket_reads(2000, 0, 0), 0);
	ck_assert_uint_eq(bracket_reads(40, 4, gaps_ns[_i]), 0);
	ck_assert_uint_eq(bracket_reads(2000, 0, 0), 0);
}
END_TEST

static void *thread_reads(void *arg)
{
	unsigned *bad = arg;

	*bad = bracket_reads(200000, 1000, 200000);
	return NULL;
}

/* Each thread calibrates its own clock; a forked child goes on with its parent's. */
START_TEST(test_threads_fork)
{
	pthread_t th[3];
	unsigned bad[3];
	pid_t pid;
	int st;

	ck_assert_uint_eq(bracket_reads(100000, 0, 0), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, thread_reads, &bad[i]), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_uint_eq(bad[i], 0);
	}
	pid = tu_spawn();
	if (pid == 0)
		_exit(bracket_reads(100000, 0, 0) == 0 ? 0 : 1);
	st = tu_wait_bounded(pid, 20000);
	tu_assert_exit0(st, "forked reader");
}
END_TEST

/*
 * BE_NO_TSC=1: clock_gettime for every read.  The choice is made once per
 * process, on the first read: this needs Check's fork mode, where each test
 * starts in a process that has not read the clock yet.
 */
START_TEST(test_no_tsc)
{
	const char *fork_mode = getenv("CK_FORK");
	pid_t pid;
	int st;

	if (fork_mode && strcmp(fork_mode, "no") == 0) {
		printf("test_no_tsc: skipped (CK_FORK=no: the clock source is already chosen)\n");
		return;
	}
	pid = tu_spawn();
	if (pid == 0) {
		setenv("BE_NO_TSC", "1", 1);
		if (tsclock_enabled())
			_exit(2);
		_exit(bracket_reads(20000, 1000, 1500000) == 0 ? 0 : 1);
	}
	st = tu_wait_bounded(pid, 20000);
	tu_assert_exit0(st, "reader with BE_NO_TSC=1");
}
END_TEST

/* What be_write and be_write_batch stamp on records obeys the same bracket. */
START_TEST(test_record_stamps)
{
	char inst[64];
	struct ring_map m;
	struct ring_params rp = { .store = "ts", .capacity = 1 << 20, .store_type = BE_TYPE_RAW,
				  .on_full = RING_ON_FULL_DROP, .first_seq = 1,
				  .flush_bytes = 1 << 30, .mode = 0600 };
	struct be_open_opts o = { .write_timeout_ms = 0 };
	uint64_t before[64], after[64], pos;
	struct iovec iov[4] = {
		{ "a", 1 }, { "bb", 2 }, { "ccc", 3 }, { "", 0 },
	};
	be_store *s;

	tu_instance(inst, sizeof(inst));
	o.instance = inst;
	ck_assert_int_eq(ring_create(inst, &rp, &m), 0);
	ck_assert_int_eq(be_open("ts", &o, &s), 0);
	for (int i = 0; i < 64; i++) {
		before[i] = now_real_ns();
		if (i % 2)
			ck_assert_int_eq(be_write(s, "x", 1), 0);
		else
			ck_assert_int_eq(be_write_batch(s, iov, 4), 4);
		after[i] = now_real_ns();
		if (i % 16 == 15) {
			uint64_t until = now_mono_ns() + 2 * NSEC_PER_MSEC;

			while (now_mono_ns() < until)
				;
		}
	}
	pos = READ_ONCE(m.hdr->tail);
	for (int i = 0; i < 64; i++) {
		for (int k = 0; k < (i % 2 ? 1 : 4); k++) {
			struct rec_hdr rh;

			memcpy(&rh, m.data + (pos & m.mask), sizeof(rh));
			ck_assert_uint_ge(rh.ts_ns + SLACK_NS, before[i]);
			ck_assert_uint_le(rh.ts_ns, after[i] + SLACK_NS);
			pos += rec_size(rh.len);
		}
	}
	ck_assert_uint_eq(pos, READ_ONCE(m.hdr->head));
	ck_assert_int_eq(be_close(s), -ETIMEDOUT); /* no daemon */
	ring_unmap(&m);
	ring_unlink(inst, "ts");
}
END_TEST

Suite *clock_suite(void)
{
	Suite *s = suite_create("clock");
	TCase *tc = tcase_create("tsclock");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_bracket);
	tcase_add_loop_test(tc, test_gaps, 0, (int)(sizeof(gaps_ns) / sizeof(gaps_ns[0])));
	tcase_add_test(tc, test_threads_fork);
	tcase_add_test(tc, test_no_tsc);
	tcase_add_test(tc, test_record_stamps);
	suite_add_tcase(s, tc);
	return s;
}
