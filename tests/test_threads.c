/*
 * test_threads.c - one handle shared by the threads of one process, as
 * include/bufferengine.h allows (half of them through be_write_batch): the
 * ring's lock serialises them, every
 * record lands exactly once, each thread's in its order, and be_flush
 * from any thread waits for that handle's records.  The test thread plays
 * the daemon.  This is the suite ThreadSanitizer can judge
 * (make check SANITIZE=thread): all the sharing is inside one process.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/futex.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define NTHREADS 4
#define PER_THREAD 20000

struct payload {
	uint32_t thread;
	uint32_t counter;
};

struct shared {
	be_store *s;
	uint32_t id;
	int err;
};

static void *writer(void *arg)
{
	struct shared *w = arg;

	if (w->id % 2) {
		/* Odd threads write batches of 1..13 records (be_write_batch). */
		struct payload p[13];
		struct iovec iov[13];

		for (uint32_t i = 0; i < PER_THREAD;) {
			uint32_t n = 1 + i % 13;
			int ret;

			if (n > PER_THREAD - i)
				n = PER_THREAD - i;
			for (uint32_t k = 0; k < n; k++) {
				p[k] = (struct payload){ .thread = w->id, .counter = i + k };
				iov[k] = (struct iovec){ .iov_base = &p[k], .iov_len = sizeof(p[k]) };
			}
			ret = be_write_batch(w->s, iov, n);
			if (ret != (int)n) {
				w->err = ret < 0 ? ret : -EIO;
				break;
			}
			i += n;
		}
		return NULL;
	}
	for (uint32_t i = 0; i < PER_THREAD; i++) {
		struct payload p = { .thread = w->id, .counter = i };
		int ret = be_write(w->s, &p, sizeof(p));

		if (ret) {
			w->err = ret;
			break;
		}
	}
	return NULL;
}

START_TEST(test_shared_handle)
{
	char inst[64];
	struct ring_params rp = { .store = "t", .capacity = 1 << 16, .store_type = BE_TYPE_RAW,
				  .on_full = RING_ON_FULL_BLOCK, .first_seq = 1,
				  .flush_bytes = 1 << 20, .mode = 0600 };
	struct be_open_opts o = { .write_timeout_ms = -1 };
	struct shared w[NTHREADS];
	pthread_t th[NTHREADS];
	uint32_t next[NTHREADS] = { 0 };
	struct ring_map m;
	uint8_t *buf = malloc(1 << 16);
	uint64_t total = 0, last_seq = 0;
	be_store *s;

	tu_instance(inst, sizeof(inst));
	ck_assert_int_eq(ring_create(inst, &rp, &m), 0);
	o.instance = inst;
	ck_assert_int_eq(be_open("t", &o, &s), 0);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct shared){ .s = s, .id = (uint32_t)i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer, &w[i]), 0);
	}
	/* The daemon's part: drain [tail, head) until every record is in. */
	while (total < (uint64_t)NTHREADS * PER_THREAD) {
		uint64_t tail = m.hdr->tail, head = load_acquire(&m.hdr->head);
		struct ring_batch b;
		uint64_t off = 0;

		ck_assert_int_eq(ring_collect(&m, tail, head, last_seq + 1, buf, 1 << 16, &b), 0);
		for (uint32_t r = 0; r < b.count; r++) {
			const struct rec_hdr *rh = (const struct rec_hdr *)(buf + off);
			struct payload p;

			ck_assert_uint_eq(rh->len, sizeof(p));
			memcpy(&p, buf + off + sizeof(*rh), sizeof(p));
			ck_assert_uint_lt(p.thread, NTHREADS);
			/* Exactly once and in each thread's order. */
			ck_assert_uint_eq(p.counter, next[p.thread]);
			next[p.thread]++;
			ck_assert_uint_gt(rh->seq, last_seq);
			last_seq = rh->seq;
			off += rec_size(rh->len);
			total++;
		}
		if (b.end_pos != tail) {
			store_release(&m.hdr->tail, b.end_pos);
			futex_bump_wake(&m.hdr->space_gen);
		}
	}
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(w[i].err, 0);
		ck_assert_uint_eq(next[i], PER_THREAD);
	}
	/* be_flush waits for the largest seq any thread wrote through the handle. */
	store_release(&m.hdr->durable_seq, last_seq);
	ck_assert_int_eq(be_flush(s, 0), -ETIMEDOUT);
	store_release(&m.hdr->durable_seq, last_seq + 1);
	ck_assert_int_eq(be_flush(s, 0), 0);
	ck_assert_int_eq(be_close(s), 0);
	ring_unmap(&m);
	ring_unlink(inst, "t");
	free(buf);
}
END_TEST

Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("shared_handle");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_shared_handle);
	suite_add_tcase(s, tc);
	return s;
}
