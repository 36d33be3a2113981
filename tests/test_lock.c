/*
 * test_lock.c - the writers' lock (shm/lock.c) and the append protocol
 * across real processes: many writers at once, holders that die with the
 * lock, writers killed at random moments, a holder that is stopped, and
 * what lock_peek shows.
 *
 * Rings are made with ring_create() under an instance from tu_instance();
 * the test process plays the daemon where one is needed (collect [tail,
 * head), store the tail, bump space_gen).  Children die with the test
 * process (PR_SET_PDEATHSIG) and are synchronised with pipes, waitpid
 * (WUNTRACED for a stopped one) and polls of shared state with a generous
 * bound; nothing asserts on elapsed time.
 */
#include <check.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/layout.h"
#include "shm/lock.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define FIRST_SEQ 1000

/* ------------------------------------------------------------------------
 * Helpers.
 */

static uint64_t rng_state = 0x243f6a8885a308d3u;

static uint64_t rng(void)
{
	return tu_rng_next(&rng_state);
}

static uint32_t my_tid(void)
{
	return (uint32_t)syscall(SYS_gettid);
}

static void mkring(struct ring_map *m, char *inst, const char *store, uint64_t cap,
		   uint32_t on_full, uint64_t flush_bytes)
{
	struct ring_params p = {
		.store = store,
		.capacity = cap,
		.store_type = BE_TYPE_RAW,
		.on_full = on_full,
		.first_seq = FIRST_SEQ,
		.flush_bytes = flush_bytes,
		.mode = 0600,
	};

	tu_mkring(m, inst, &p);
}

/* Kill and reap a child (a no-op for one already reaped: pid 0). */
static void kill_reap(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/*
 * A child that takes the lock, says 'L' on the pipe, then either pauses
 * forever (stop = 0) or stops itself and, once continued, releases the
 * lock and exits 0 (stop = 1).  The parent has the lock held when
 * holder_start() returns.
 */
static pid_t holder_start(struct ring_hdr *h, int stop)
{
	int pfd[2];
	char c = 0;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = tu_spawn();
	if (pid == 0) {
		struct deadline d = { .timeout_ms = -1 };

		close(pfd[0]);
		if (lock_acquire(h, &d) != 0) {
			c = 'E';
			(void)!write(pfd[1], &c, 1);
			_exit(2);
		}
		c = 'L';
		if (write(pfd[1], &c, 1) != 1)
			_exit(3);
		if (stop) {
			raise(SIGSTOP);
			lock_release(h);
			_exit(0);
		}
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	ck_assert_msg(c == 'L', "the holder could not take the lock");
	return pid;
}

/* The payload of writer w's record number c: self-describing, len >= 16. */
struct wrec {
	uint32_t writer;
	uint32_t counter;
	uint32_t len;
	uint32_t check;
};

/* Payload word j (bytes 16 + 8j on) of writer w's record c. */
static uint64_t wword(uint32_t w, uint32_t c, uint32_t j)
{
	uint64_t v = (((uint64_t)w << 32) | c) * 0x9e3779b97f4a7c15ULL + j * 0xbf58476d1ce4e5b9ULL;

	return v ^ (v >> 29);
}

static uint32_t wlen(uint32_t w, uint32_t c)
{
	return 16 + (c * 2654435761u + w * 40503u) % 97u; /* 16 .. 112: every alignment */
}

static void wfill(uint8_t *buf, uint32_t w, uint32_t c, uint32_t len)
{
	struct wrec r = { w, c, len, w ^ (c * 2654435761u) ^ len };

	memcpy(buf, &r, sizeof(r));
	for (uint32_t i = sizeof(r), j = 0; i < len; i += 8, j++) {
		uint64_t v = wword(w, c, j);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* Check one collected record's payload; returns its wrec. */
static struct wrec wcheck(const struct rec_hdr *rh, const uint8_t *p)
{
	struct wrec r;

	TU_REQUIRE(rh->len >= sizeof(r), "seq %llu: len %u", (unsigned long long)rh->seq, rh->len);
	memcpy(&r, p, sizeof(r));
	TU_REQUIRE(r.len == rh->len && r.check == (r.writer ^ (r.counter * 2654435761u) ^ r.len),
		   "seq %llu: torn or foreign payload (len %u/%u, writer %u, counter %u)",
		   (unsigned long long)rh->seq, rh->len, r.len, r.writer, r.counter);
	for (uint32_t i = sizeof(r), j = 0; i < rh->len; i += 8, j++) {
		uint64_t v = wword(r.writer, r.counter, j);

		if (memcmp(p + i, &v, rh->len - i < 8 ? rh->len - i : 8))
			ck_abort_msg("seq %llu (writer %u, counter %u): payload bytes %u.. damaged",
				     (unsigned long long)rh->seq, r.writer, r.counter, i);
	}
	return r;
}

/* Walk the records of a collected batch. */
#define FOR_EACH_REC(out, bytes, rh, payload)                                                 \
	for (uint64_t _off = 0; _off < (bytes) && (memcpy(&(rh), (out) + _off, sizeof(rh)),   \
						   (payload) = (out) + _off + sizeof(rh), 1); \
	     _off += rec_size((rh).len))

/* ------------------------------------------------------------------------
 * Hammer: 4 writer processes x 50,000 records, the parent draining.
 */

#define HAMMER_WRITERS 4
#define HAMMER_RECORDS 50000

START_TEST(test_hammer)
{
	struct ring_map m;
	struct ring_hdr *h;
	struct be_open_opts o;
	char inst[64];
	be_store *ps;
	pid_t pids[HAMMER_WRITERS];
	int status[HAMMER_WRITERS], reaped = 0;
	uint32_t expect[HAMMER_WRITERS + 1] = { 0 };
	uint64_t last_seq = 0, total = 0, cap = 65536, end;
	uint8_t *out;
	uint8_t pbuf[128];

	mkring(&m, inst, "hammer", cap, RING_ON_FULL_BLOCK, cap / 4);
	h = m.hdr;
	out = malloc(cap);
	ck_assert_ptr_nonnull(out);

	/*
	 * The parent writes one record through the API first: its cached pid
	 * must not leak into its children's records.
	 */
	o = (struct be_open_opts){ .instance = inst, .write_timeout_ms = 1000 };
	ck_assert_int_eq(be_open("hammer", &o, &ps), 0);
	wfill(pbuf, HAMMER_WRITERS, 0, 40);
	ck_assert_int_eq(be_write(ps, pbuf, 40), 0);

	for (uint32_t w = 0; w < HAMMER_WRITERS; w++) {
		pids[w] = tu_spawn();
		if (pids[w] == 0) {
			struct be_open_opts co = { .instance = inst,
						   .write_timeout_ms = tu_bound(20000) };
			uint8_t buf[128];
			be_store *s;
			int ret;

			if (be_open("hammer", &co, &s))
				_exit(2);
			for (uint32_t c = 0; c < HAMMER_RECORDS; c++) {
				uint32_t len = wlen(w, c);

				wfill(buf, w, c, len);
				ret = be_write(s, buf, len);
				if (ret) {
					fprintf(stderr, "hammer writer %u, record %u: %s\n", w, c,
						be_strerror(ret));
					_exit(3);
				}
			}
			_exit(0);
		}
		status[w] = -1;
	}

	/* The daemon: drain while they write, until all have exited and the ring is empty. */
	end = tu_now_ms() + (uint64_t)tu_bound(60000);
	for (;;) {
		uint32_t gen = load_acquire(&h->doorbell_gen);
		int all_done = reaped == HAMMER_WRITERS;
		uint64_t head = load_acquire(&h->head), tail = READ_ONCE(h->tail);
		struct ring_batch res;
		struct rec_hdr rh;
		const uint8_t *p;
		int ret;

		if (head != tail) {
			ret = ring_collect(&m, tail, head, last_seq + 1, out, cap, &res);
			TU_REQUIRE(ret == 0, "collect [%llu, %llu): %s at %llu",
				   (unsigned long long)tail, (unsigned long long)head,
				   be_strerror(ret), (unsigned long long)res.bad_pos);
			TU_REQUIRE_EQ(res.end_pos, head);
			FOR_EACH_REC(out, res.bytes, rh, p)
			{
				struct wrec r = wcheck(&rh, p);

				TU_REQUIRE(rh.seq > last_seq, "seq %llu after %llu",
					   (unsigned long long)rh.seq,
					   (unsigned long long)last_seq);
				last_seq = rh.seq;
				TU_REQUIRE_LE(r.writer, HAMMER_WRITERS);
				TU_REQUIRE(r.counter == expect[r.writer],
					   "writer %u: counter %u where %u was due (lost, "
					   "duplicated or out of order)",
					   r.writer, r.counter, expect[r.writer]);
				TU_REQUIRE_EQ(r.len, r.writer < HAMMER_WRITERS
							     ? wlen(r.writer, r.counter)
							     : 40);
				TU_REQUIRE_EQ(rh.pid, r.writer < HAMMER_WRITERS
							      ? (uint32_t)pids[r.writer]
							      : (uint32_t)getpid());
				expect[r.writer]++;
				total++;
			}
			store_release(&h->tail, res.end_pos);
			futex_bump_wake(&h->space_gen);
			continue;
		}
		if (all_done)
			break;
		for (int w = 0; w < HAMMER_WRITERS; w++) {
			if (status[w] == -1 && waitpid(pids[w], &status[w], WNOHANG) == pids[w])
				reaped++;
		}
		for (int w = 0; w < HAMMER_WRITERS; w++)
			if (status[w] != -1 &&
			    !(WIFEXITED(status[w]) && WEXITSTATUS(status[w]) == 0)) {
				for (int k = 0; k < HAMMER_WRITERS; k++)
					if (status[k] == -1)
						kill_reap(pids[k]);
				ck_abort_msg("writer %d failed (status 0x%x) after %u records", w,
					     status[w], expect[w]);
			}
		if (tu_now_ms() > end) {
			for (int k = 0; k < HAMMER_WRITERS; k++)
				if (status[k] == -1)
					kill_reap(pids[k]);
			ck_abort_msg("the writers did not finish in time (%llu records read)",
				     (unsigned long long)total);
		}
		futex_wait_until(&h->doorbell_gen, gen, now_mono_ns() + 2 * NSEC_PER_MSEC);
	}

	for (int w = 0; w < HAMMER_WRITERS; w++)
		ck_assert_uint_eq(expect[w], HAMMER_RECORDS);
	ck_assert_uint_eq(expect[HAMMER_WRITERS], 1);
	ck_assert_uint_eq(total, HAMMER_WRITERS * HAMMER_RECORDS + 1);
	/* Nobody died: no seq was taken without being published. */
	ck_assert_uint_eq(READ_ONCE(h->next_seq), FIRST_SEQ + total);
	ck_assert_uint_eq(last_seq, FIRST_SEQ + total - 1);
	ck_assert_uint_eq(READ_ONCE(h->lock_recoveries), 0);
	ck_assert_uint_eq(READ_ONCE(h->drops), 0);
	/* be_close flushes: make the parent's record durable first. */
	store_release(&h->durable_seq, READ_ONCE(h->next_seq));
	ck_assert_int_eq(be_close(ps), 0);
	free(out);
	tu_rmring(&m, inst, "hammer");
}
END_TEST

/* ------------------------------------------------------------------------
 * Dead holder.
 */

/* Append one record from this process and check it is collected, alone. */
static void append_and_collect(struct ring_map *m, uint32_t w, uint32_t c, uint32_t pid)
{
	struct ring_batch res;
	struct rec_hdr rh;
	uint8_t buf[128], *out = malloc(m->capacity);
	uint64_t ctail = READ_ONCE(m->hdr->tail), seq = 0, tail = ctail;
	uint64_t next = READ_ONCE(m->hdr->next_seq);
	int ret;

	ck_assert_ptr_nonnull(out);
	wfill(buf, w, c, 48);
	ret = ring_append(m, &ctail, BE_TYPE_RAW, buf, 48, now_real_ns(), pid, tu_bound(2000),
			  &seq);
	ck_assert_msg(ret == 0, "append after the recovery: %s", be_strerror(ret));
	ck_assert_uint_eq(seq, next);
	ck_assert_int_eq(
		ring_collect(m, tail, load_acquire(&m->hdr->head), 0, out, m->capacity, &res), 0);
	ck_assert_uint_eq(res.count, 1);
	memcpy(&rh, out, sizeof(rh));
	ck_assert_uint_eq(rh.seq, seq);
	ck_assert_uint_eq(rh.pid, pid);
	ck_assert_uint_eq(wcheck(&rh, out + sizeof(rh)).counter, c);
	store_release(&m->hdr->tail, res.end_pos);
	free(out);
}

START_TEST(test_dead_holder)
{
	struct ring_map m;
	struct lock_state ls;
	struct deadline d = { .timeout_ms = tu_bound(2000) };
	char inst[64];
	pid_t pid;
	int ret;

	mkring(&m, inst, "dead", 4096, RING_ON_FULL_BLOCK, UINT64_MAX);
	pid = holder_start(m.hdr, 0);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, (uint32_t)pid);
	ck_assert_int_eq(ls.owner_died, 0);
	/* Held: a try without waiting fails, and is counted. */
	{
		struct deadline d0 = { .timeout_ms = 0 };

		ck_assert_int_eq(lock_acquire(m.hdr, &d0), -ETIMEDOUT);
		ck_assert_uint_eq(READ_ONCE(m.hdr->lock_timeouts), 1);
	}

	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	/* The kernel marked the futex word: holder dead. */
	lock_peek(m.hdr, &ls);
	ck_assert_int_eq(ls.owner_died, 1);
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_recoveries), 0);

	ret = lock_acquire(m.hdr, &d);
	ck_assert_msg(ret == 0, "lock_acquire after the holder died: %s", be_strerror(ret));
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_recoveries), 1);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, my_tid());
	ck_assert_int_eq(ls.owner_died, 0);
	lock_release(m.hdr);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, 0);

	/* The lock works normally afterwards: appends, no further recovery. */
	append_and_collect(&m, 7, 1, 111);
	append_and_collect(&m, 7, 2, 112);
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_recoveries), 1);
	ck_assert_uint_eq(READ_ONCE(m.hdr->next_seq), FIRST_SEQ + 2);
	tu_rmring(&m, inst, "dead");
}
END_TEST

/* The holder dies while another process sleeps in lock_acquire(timeout -1). */
START_TEST(test_dead_holder_waiter)
{
	struct ring_map m;
	struct lock_state ls;
	struct ring_batch res;
	struct rec_hdr rh;
	char inst[64];
	uint8_t out[4096];
	pid_t holder, waiter;
	uint64_t end;
	int st;

	mkring(&m, inst, "deadw", 4096, RING_ON_FULL_BLOCK, UINT64_MAX);
	holder = holder_start(m.hdr, 0);
	waiter = tu_spawn();
	if (waiter == 0) {
		struct deadline d = { .timeout_ms = -1 };
		uint64_t ctail = 0, seq = 0;
		uint8_t buf[64];

		if (lock_acquire(m.hdr, &d) != 0)
			_exit(2);
		lock_release(m.hdr);
		wfill(buf, 9, 0, 48);
		if (ring_append(&m, &ctail, BE_TYPE_RAW, buf, 48, 1, (uint32_t)getpid(), 2000,
				&seq))
			_exit(3);
		_exit(seq == FIRST_SEQ ? 0 : 4);
	}
	/* Wait until the waiter sleeps on the lock (it sets FUTEX_WAITERS to do so). */
	end = tu_now_ms() + (uint64_t)tu_bound(10000);
	for (;;) {
		lock_peek(m.hdr, &ls);
		if (ls.waiters)
			break;
		if (waitpid(waiter, &st, WNOHANG) == waiter || tu_now_ms() > end) {
			kill_reap(holder);
			kill_reap(waiter);
			ck_abort_msg("the waiter never blocked on the lock");
		}
		tu_sleep_us(1000);
	}
	ck_assert_uint_eq(ls.owner_tid, (uint32_t)holder);
	ck_assert_int_eq(waitpid(waiter, &st, WNOHANG), 0);

	kill_reap(holder);
	st = tu_wait_bounded(waiter, 10000);
	tu_assert_exit0(st, "waiter on the dead holder's lock");
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_recoveries), 1);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, 0);
	ck_assert_int_eq(ls.owner_died, 0);
	ck_assert_int_eq(
		ring_collect(&m, 0, load_acquire(&m.hdr->head), FIRST_SEQ, out, sizeof(out), &res),
		0);
	ck_assert_uint_eq(res.count, 1);
	memcpy(&rh, out, sizeof(rh));
	ck_assert_uint_eq(rh.pid, (uint32_t)waiter);
	ck_assert_uint_eq(wcheck(&rh, out + sizeof(rh)).writer, 9);
	tu_rmring(&m, inst, "deadw");
}
END_TEST

/* ------------------------------------------------------------------------
 * Writers SIGKILLed at random moments.
 */

#define KILL_ROUNDS    27
#define KILL_PER_ROUND 2
#define KILL_WRITERS   (KILL_ROUNDS * KILL_PER_ROUND)

/*
 * The rings of the killed-writers test, used in turn: a small one that
 * drops when full, a small one where a full ring blocks (with the lock
 * held), and one of big records, where an append spends most of its time
 * copying the payload (a writer killed mid-copy is likely there).
 */
static const struct kring {
	const char *name;
	uint64_t cap;
	uint32_t on_full;
	int timeout;
	uint32_t minlen, span;
} krings[] = {
	{ "kdrop", 16384, RING_ON_FULL_DROP, 0, 16, 400 },
	{ "kblock", 16384, RING_ON_FULL_BLOCK, -1, 16, 400 },
	{ "kbig", 262144, RING_ON_FULL_BLOCK, -1, 4096, 65536 - 4096 + 1 },
};
#define KRINGS 3

/*
 * Writer w appends its records 0, 1, 2 ... for ever (retrying a record the
 * ring refused), counting each success in progress[w].
 */
static void kill_writer(struct ring_map *m, const struct kring *kr, uint32_t w,
			volatile uint64_t *progress)
{
	uint64_t ctail = READ_ONCE(m->hdr->tail), st = 0x9e37 + w * 7919u;
	uint32_t pid = (uint32_t)getpid();
	uint8_t *buf = malloc(kr->minlen + kr->span);

	if (!buf)
		_exit(2);
	for (uint32_t c = 0;; c++) {
		uint32_t len = kr->minlen + (uint32_t)(tu_rng_next(&st) % kr->span);

		wfill(buf, w, c, len);
		while (ring_append(m, &ctail, BE_TYPE_RAW, buf, len, c, pid, kr->timeout, NULL) !=
		       0)
			;
		progress[w] = c + 1;
	}
}

/* What the killed-writers test knows about each ring and writer. */
struct kstate {
	uint64_t last_seq;
	uint64_t recs;
	uint32_t found[KILL_WRITERS];
	uint32_t pids[KILL_WRITERS];
	uint8_t *out;
	uint64_t cap;
};

/*
 * Be the daemon once: collect [tail, head), check that it is whole records
 * only (the collect finds no damage and every payload is intact), that seqs
 * grow and that each writer's records come in its order without a gap;
 * then free the space and wake blocked writers.
 */
static void kdrain(struct ring_map *m, struct kstate *k, int round)
{
	uint64_t head = load_acquire(&m->hdr->head), tail = READ_ONCE(m->hdr->tail);
	struct ring_batch res;
	struct rec_hdr rh;
	const uint8_t *p;
	int ret;

	if (head == tail)
		return;
	ret = ring_collect(m, tail, head, k->last_seq + 1, k->out, k->cap, &res);
	TU_REQUIRE(ret == 0, "round %d: collect [%llu, %llu): %s at %llu", round,
		   (unsigned long long)tail, (unsigned long long)head, be_strerror(ret),
		   (unsigned long long)res.bad_pos);
	TU_REQUIRE_EQ(res.end_pos, head);
	FOR_EACH_REC(k->out, res.bytes, rh, p)
	{
		struct wrec r = wcheck(&rh, p);

		TU_REQUIRE(rh.seq > k->last_seq, "seq %llu after %llu", (unsigned long long)rh.seq,
			   (unsigned long long)k->last_seq);
		k->last_seq = rh.seq;
		TU_REQUIRE(r.writer < KILL_WRITERS, "record of writer %u", r.writer);
		TU_REQUIRE_EQ(rh.pid, k->pids[r.writer]);
		TU_REQUIRE(r.counter == k->found[r.writer], "writer %u: record %u where %u was due",
			   r.writer, r.counter, k->found[r.writer]);
		k->found[r.writer]++;
		k->recs++;
	}
	store_release(&m->hdr->tail, head);
	futex_bump_wake(&m->hdr->space_gen);
}

START_TEST(test_killed_mid_append)
{
	struct ring_map rings[KRINGS];
	char insts[KRINGS][64];
	volatile uint64_t *progress;
	struct kstate *ks = calloc(KRINGS, sizeof(*ks));

	ck_assert_ptr_nonnull(ks);
	progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne((void *)progress, MAP_FAILED);
	for (int ri = 0; ri < KRINGS; ri++) {
		mkring(&rings[ri], insts[ri], krings[ri].name, krings[ri].cap, krings[ri].on_full,
		       UINT64_MAX);
		ks[ri].cap = krings[ri].cap;
		ks[ri].out = malloc(ks[ri].cap);
		ck_assert_ptr_nonnull(ks[ri].out);
	}
	rng_state = 0xdeadbeef;

	for (int round = 0; round < KILL_ROUNDS; round++) {
		int ri = round % KRINGS;
		struct ring_map *m = &rings[ri], o;
		struct kstate *k = &ks[ri];
		pid_t kids[KILL_PER_ROUND];
		uint64_t end, want = 1 + rng() % 200;
		int ret;

		for (int j = 0; j < KILL_PER_ROUND; j++) {
			uint32_t w = (uint32_t)(round * KILL_PER_ROUND + j);

			kids[j] = tu_spawn();
			if (kids[j] == 0)
				kill_writer(m, &krings[ri], w, progress);
			k->pids[w] = (uint32_t)kids[j];
		}
		/* Drain while they write, until each has written a random number of records. */
		end = tu_now_ms() + (uint64_t)tu_bound(10000);
		for (int j = 0; j < KILL_PER_ROUND; j++) {
			uint32_t w = (uint32_t)(round * KILL_PER_ROUND + j);

			while (progress[w] < want) {
				if (tu_now_ms() > end) {
					for (int x = 0; x < KILL_PER_ROUND; x++)
						kill_reap(kids[x]);
					ck_abort_msg(
						"round %d: writer %u wrote %llu of %llu records",
						round, w, (unsigned long long)progress[w],
						(unsigned long long)want);
				}
				kdrain(m, k, round);
				sched_yield();
			}
		}
		/* Then kill them at random moments (the ring may have filled meanwhile). */
		for (int j = 0; j < KILL_PER_ROUND; j++) {
			if (rng() % 4)
				tu_sleep_us((unsigned)(rng() % 2000));
			kill_reap(kids[j]);
		}

		/* The ring still validates. */
		ret = ring_open(insts[ri], krings[ri].name, 0, &o);
		ck_assert_msg(ret == 0, "round %d: the ring no longer validates: %s", round,
			      be_strerror(ret));
		ring_unmap(&o);
		/* What is published is whole records only, in order. */
		kdrain(m, k, round);
		/*
		 * Every record a writer was told was written is there; at most one
		 * more (killed between the publish and its own count).
		 */
		for (int j = 0; j < KILL_PER_ROUND; j++) {
			uint32_t w = (uint32_t)(round * KILL_PER_ROUND + j);

			ck_assert_msg(k->found[w] == progress[w] || k->found[w] == progress[w] + 1,
				      "writer %u: %u records in the ring, %llu acknowledged", w,
				      k->found[w], (unsigned long long)progress[w]);
		}
		/* A new append works (taking the lock over if the kill left it held). */
		{
			struct ring_batch res;
			uint8_t buf[64];
			uint64_t ctail = READ_ONCE(m->hdr->tail), seq = 0, t0 = ctail;

			wfill(buf, 0xffff, (uint32_t)round, 40);
			ret = ring_append(m, &ctail, BE_TYPE_RAW, buf, 40, 0, (uint32_t)getpid(),
					  tu_bound(2000), &seq);
			ck_assert_msg(ret == 0, "round %d: append after the kills: %s", round,
				      be_strerror(ret));
			ck_assert_uint_gt(seq, k->last_seq);
			ck_assert_int_eq(ring_collect(m, t0, load_acquire(&m->hdr->head),
						      k->last_seq + 1, k->out, k->cap, &res),
					 0);
			ck_assert_uint_eq(res.count, 1);
			ck_assert_uint_eq(res.first_seq, seq);
			k->last_seq = seq;
			store_release(&m->hdr->tail, res.end_pos);
		}
	}
	printf("test_killed_mid_append: %d kills; records, and locks taken over from a dead "
	       "holder:",
	       KILL_WRITERS);
	for (int ri = 0; ri < KRINGS; ri++)
		printf(" %s %llu/%llu", krings[ri].name, (unsigned long long)ks[ri].recs,
		       (unsigned long long)READ_ONCE(rings[ri].hdr->lock_recoveries));
	printf("\n");
	for (int ri = 0; ri < KRINGS; ri++) {
		struct lock_state ls;

		ck_assert_uint_gt(ks[ri].recs, 0);
		lock_peek(rings[ri].hdr, &ls);
		ck_assert_uint_eq(ls.owner_tid, 0);
		ck_assert_int_eq(ls.owner_died, 0);
		tu_rmring(&rings[ri], insts[ri], krings[ri].name);
		free(ks[ri].out);
	}
	munmap((void *)progress, 4096);
	free(ks);
}
END_TEST

/* ------------------------------------------------------------------------
 * Stopped holder.
 */

/* 0: the holder is continued and releases; 1: it is killed while stopped. */
START_TEST(test_stopped_holder)
{
	struct ring_map m;
	struct be_open_opts o;
	struct lock_state ls;
	char inst[64];
	be_store *s;
	uint64_t ctail = 0;
	pid_t pid;
	int st, ret;

	mkring(&m, inst, "stop", 4096, RING_ON_FULL_BLOCK, UINT64_MAX);
	pid = holder_start(m.hdr, 1);
	/* Until it has stopped (with the lock). */
	ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
	ck_assert_msg(WIFSTOPPED(st), "the holder did not stop (status 0x%x)", st);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, (uint32_t)pid);

	o = (struct be_open_opts){ .instance = inst, .write_timeout_ms = 100 };
	ck_assert_int_eq(be_open("stop", &o, &s), 0);
	ck_assert_int_eq(be_write(s, "stalled", 7), -ETIMEDOUT);
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_timeouts), 1);
	ck_assert_int_eq(ring_append(&m, &ctail, BE_TYPE_RAW, "x", 1, 0, 1, 0, NULL), -ETIMEDOUT);
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_timeouts), 2);
	ck_assert_uint_eq(READ_ONCE(m.hdr->head), 0);
	ck_assert_uint_eq(READ_ONCE(m.hdr->next_seq), FIRST_SEQ);

	if (_i == 0) {
		ck_assert_int_eq(kill(pid, SIGCONT), 0);
		st = tu_wait_bounded(pid, 10000);
		tu_assert_exit0(st, "continued holder");
	} else {
		kill_reap(pid);
	}
	ret = be_write(s, "after", 5);
	ck_assert_msg(ret == 0, "be_write once the holder is gone: %s", be_strerror(ret));
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_recoveries), _i == 0 ? 0 : 1);
	ck_assert_uint_eq(READ_ONCE(m.hdr->lock_timeouts), 2);
	ck_assert_uint_eq(READ_ONCE(m.hdr->next_seq), FIRST_SEQ + 1);
	store_release(&m.hdr->durable_seq, FIRST_SEQ + 1);
	ck_assert_int_eq(be_close(s), 0);
	tu_rmring(&m, inst, "stop");
}
END_TEST

/* ------------------------------------------------------------------------
 * lock_peek.
 */

START_TEST(test_peek)
{
	struct ring_map m;
	struct lock_state ls;
	struct deadline d = { .timeout_ms = 1000 };
	struct ring_hdr copy;
	char inst[64];
	pid_t pid;
	int st;

	mkring(&m, inst, "peek", 4096, RING_ON_FULL_BLOCK, UINT64_MAX);
	memset(&ls, 0x55, sizeof(ls));
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, 0);
	ck_assert_int_eq(ls.owner_died, 0);
	ck_assert_int_eq(ls.waiters, 0);

	/* Held by this process. */
	ck_assert_int_eq(lock_acquire(m.hdr, &d), 0);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, my_tid());
	ck_assert_int_eq(ls.waiters, 0);
	/* On a copy of the header, as shm-dump does. */
	memcpy(&copy, m.hdr, sizeof(copy));
	lock_peek(&copy, &ls);
	ck_assert_uint_eq(ls.owner_tid, my_tid());
	lock_release(m.hdr);
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, 0);

	/* Held by a child that stops, then releases it when continued, and exits. */
	pid = holder_start(m.hdr, 1);
	ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(st));
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, (uint32_t)pid);
	ck_assert_int_eq(ls.owner_died, 0);
	ck_assert_int_eq(kill(pid, SIGCONT), 0);
	st = tu_wait_bounded(pid, 10000);
	tu_assert_exit0(st, "holder");
	lock_peek(m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, 0);
	ck_assert_int_eq(ls.owner_died, 0);
	tu_rmring(&m, inst, "peek");
}
END_TEST

/* ------------------------------------------------------------------------ */

Suite *lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc;

	tc = tcase_create("hammer");
	tcase_set_timeout(tc, 25);
	tcase_add_test(tc, test_hammer);
	suite_add_tcase(s, tc);

	tc = tcase_create("dead_holder");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_dead_holder);
	tcase_add_test(tc, test_dead_holder_waiter);
	suite_add_tcase(s, tc);

	tc = tcase_create("killed");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_killed_mid_append);
	suite_add_tcase(s, tc);

	tc = tcase_create("stopped_holder");
	tcase_set_timeout(tc, 10);
	tcase_add_loop_test(tc, test_stopped_holder, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("peek");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_peek);
	suite_add_tcase(s, tc);
	return s;
}
