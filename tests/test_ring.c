/*
 * test_ring.c - unit tests of the ring protocol (shm/ring.c, shm/append.c,
 * shm/collect.c) and of the client calls that sit directly on it (be_open,
 * be_write, be_flush), with rings made by ring_create() and no daemon: where
 * a daemon is needed, the test plays it (collect [tail, head), store the
 * tail, bump space_gen; or store durable_seq, bump durable_gen).
 *
 * Every ring is made under an instance from tu_instance() and unlinked by
 * the test; check_main removes whatever a failed test left.  Processes are
 * synchronised with waitpid, pipes and futex generations, never with sleeps:
 * the only timed things are bounded polls that fail the test when a child
 * does not get where it must.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/futex.h"
#include "shm/layout.h"
#include "shm/lock.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define FIRST_SEQ 42 /* not 1: a seq that starts at 0 or 1 by accident shows */
#define TEST_PID  4242u

/* ------------------------------------------------------------------------
 * Helpers.
 */

/* Deterministic pseudo-random numbers (xorshift64*), so that failures repeat. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	return tu_rng_next(&rng_state);
}

/* The payload byte i of the record with this seq. */
static uint8_t pat(uint64_t seq, uint32_t i)
{
	return (uint8_t)(((seq * 0x9e3779b97f4a7c15ULL) >> 56) + i * 13u + (i >> 8));
}

static void fill_pat(uint8_t *buf, uint64_t seq, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		buf[i] = pat(seq, i);
}

static void shm_path(char *out, size_t len, const char *inst, const char *store)
{
	snprintf(out, len, RING_SHM_DIR "/" RING_SHM_PREFIX "%s.%s", inst, store);
}

static struct ring_params params(const char *store, uint64_t cap, uint32_t type, uint32_t on_full,
				 uint64_t flush_bytes)
{
	struct ring_params p = {
		.store = store,
		.capacity = cap,
		.store_type = type,
		.on_full = on_full,
		.first_seq = FIRST_SEQ,
		.flush_bytes = flush_bytes,
		.mode = 0600,
	};
	return p;
}

/* A new ring under a fresh instance; the test fails if it cannot be made. */
static void mkring(struct ring_map *m, char *inst, const char *store, uint64_t cap, uint32_t type,
		   uint32_t on_full, uint64_t flush_bytes)
{
	struct ring_params p = params(store, cap, type, on_full, flush_bytes);

	tu_mkring(m, inst, &p);
}

static struct be_open_opts opts_for(const char *inst, int write_timeout_ms)
{
	struct be_open_opts o = { .instance = inst, .write_timeout_ms = write_timeout_ms };

	return o;
}

/* ------------------------------------------------------------------------
 * A writer and a "daemon" in one process: the model of what the ring holds.
 */

#define QMAX 8192

struct sim {
	struct ring_map m;
	char inst[64];
	const char *store;
	uint64_t ctail;	       /* the writer's cached tail */
	uint64_t next_seq;     /* seq the next append must get */
	uint64_t next_collect; /* seq the next collected record must have */
	uint32_t q[QMAX];      /* lengths appended and not yet collected */
	uint64_t qts[QMAX];    /* and their timestamps */
	unsigned qh, qt;
	uint64_t pad_pending; /* padding bytes appended and not yet collected */
	uint8_t *out;
	uint8_t *pay;
	uint64_t collected;
	uint64_t pads;
	uint8_t pad_seen[2048 / 8 + 1]; /* pad sizes seen, by size / 8 */
};

static void sim_init(struct sim *s, const char *store, uint64_t cap, uint32_t on_full,
		     uint64_t flush_bytes)
{
	memset(s, 0, sizeof(*s));
	s->store = store;
	mkring(&s->m, s->inst, store, cap, BE_TYPE_RAW, on_full, flush_bytes);
	s->next_seq = FIRST_SEQ;
	s->next_collect = FIRST_SEQ;
	s->out = malloc(cap);
	s->pay = malloc(cap);
	ck_assert_ptr_nonnull(s->out);
	ck_assert_ptr_nonnull(s->pay);
}

static void sim_fini(struct sim *s)
{
	free(s->out);
	free(s->pay);
	tu_rmring(&s->m, s->inst, s->store);
}

/*
 * Append one record of len bytes; returns ring_append's result.  On
 * success checks the seq, the new head (pad included) and the padding
 * marker the writer left at the end of the area.
 */
static int sim_append(struct sim *s, uint32_t len, int timeout_ms)
{
	struct ring_hdr *h = s->m.hdr;
	uint64_t head = READ_ONCE(h->head), off = head & s->m.mask, need = rec_size(len);
	uint64_t pad = (s->m.capacity - off < need) ? s->m.capacity - off : 0;
	uint64_t seq = 0;
	int ret;

	/* (a len beyond the buffer is refused before the payload is read) */
	fill_pat(s->pay, s->next_seq, len < s->m.capacity ? len : (uint32_t)s->m.capacity);
	ret = ring_append(&s->m, &s->ctail, BE_TYPE_RAW, s->pay, len, 1000 + s->next_seq, TEST_PID,
			  timeout_ms, &seq);
	if (ret) {
		TU_REQUIRE_EQ(READ_ONCE(h->head), head);
		TU_REQUIRE_EQ(READ_ONCE(h->next_seq), s->next_seq);
		return ret;
	}
	TU_REQUIRE_EQ(seq, s->next_seq);
	TU_REQUIRE_EQ(READ_ONCE(h->next_seq), s->next_seq + 1);
	TU_REQUIRE_EQ(READ_ONCE(h->head), head + pad + need);
	/* In the ring: the header, the payload, then zeros to the next 8 bytes. */
	{
		const uint8_t *rec = s->m.data + ((head + pad) & s->m.mask);
		struct rec_hdr rh;

		memcpy(&rh, rec, sizeof(rh));
		TU_REQUIRE_EQ(rh.len, len);
		TU_REQUIRE_EQ(rh.seq, s->next_seq);
		for (uint64_t b = sizeof(rh) + len; b < need; b++)
			TU_REQUIRE(rec[b] == 0, "seq %llu: padding byte %llu is 0x%02x",
				   (unsigned long long)seq, (unsigned long long)b, rec[b]);
	}
	if (pad) {
		struct rec_hdr ph;

		memcpy(&ph, s->m.data + off, REC_PAD_MIN);
		TU_REQUIRE_EQ(ph.type, REC_TYPE_PAD);
		TU_REQUIRE_EQ(ph.len, pad);
		s->pads++;
		if (pad / 8 < sizeof(s->pad_seen))
			s->pad_seen[pad / 8] = 1;
	}
	TU_REQUIRE((s->qh + 1) % QMAX != s->qt, "model queue overflow");
	s->q[s->qh] = len;
	s->qts[s->qh] = 1000 + s->next_seq;
	s->qh = (s->qh + 1) % QMAX;
	s->pad_pending += pad;
	s->next_seq++;
	return 0;
}

/*
 * Append n records of lens[] with ring_append_many() (timestamp 5000 +
 * the first seq for all); returns its result.  Checks what it appended:
 * the count is n unless the next record really did not fit (drop), the
 * seqs and head moved by exactly the records and pads written, and each
 * record (pads included) is in place.
 */
static int sim_append_many(struct sim *s, const uint32_t *lens, unsigned n, int timeout_ms)
{
	struct ring_hdr *h = s->m.hdr;
	uint64_t head = READ_ONCE(h->head), pos = head, last = 0, ts = 5000 + s->next_seq;
	struct iovec *iov = calloc(n ? n : 1, sizeof(*iov));
	uint8_t *pay;
	uint64_t total = 0, off = 0;
	int ret;

	ck_assert_ptr_nonnull(iov);
	for (unsigned i = 0; i < n; i++)
		total += lens[i] < s->m.capacity ? lens[i] : 0;
	pay = malloc(total + 1);
	ck_assert_ptr_nonnull(pay);
	for (unsigned i = 0; i < n; i++) {
		uint32_t len = lens[i] < s->m.capacity ? lens[i] : 0;

		fill_pat(pay + off, s->next_seq + i, len);
		iov[i] = (struct iovec){ .iov_base = pay + off, .iov_len = lens[i] };
		off += len;
	}
	ret = ring_append_many(&s->m, &s->ctail, BE_TYPE_RAW, iov, n, ts, TEST_PID, timeout_ms,
			       &last);
	if (ret <= 0) {
		TU_REQUIRE_EQ(READ_ONCE(h->head), head);
		TU_REQUIRE_EQ(READ_ONCE(h->next_seq), s->next_seq);
		goto out;
	}
	TU_REQUIRE_LE((unsigned)ret, n);
	for (unsigned i = 0; i < (unsigned)ret; i++) {
		uint64_t need = rec_size(lens[i]), o = pos & s->m.mask;
		uint64_t pad = (s->m.capacity - o < need) ? s->m.capacity - o : 0;
		const uint8_t *rec = s->m.data + ((pos + pad) & s->m.mask);
		struct rec_hdr rh;

		if (pad) {
			memcpy(&rh, s->m.data + o, REC_PAD_MIN);
			TU_REQUIRE_EQ(rh.type, REC_TYPE_PAD);
			TU_REQUIRE_EQ(rh.len, pad);
			s->pads++;
			if (pad / 8 < sizeof(s->pad_seen))
				s->pad_seen[pad / 8] = 1;
		}
		memcpy(&rh, rec, sizeof(rh));
		TU_REQUIRE_EQ(rh.len, lens[i]);
		TU_REQUIRE_EQ(rh.seq, s->next_seq);
		TU_REQUIRE_EQ(rh.ts_ns, ts);
		TU_REQUIRE((s->qh + 1) % QMAX != s->qt, "model queue overflow");
		s->q[s->qh] = lens[i];
		s->qts[s->qh] = ts;
		s->qh = (s->qh + 1) % QMAX;
		s->pad_pending += pad;
		s->next_seq++;
		pos += pad + need;
	}
	TU_REQUIRE_EQ(last, s->next_seq - 1);
	TU_REQUIRE_EQ(READ_ONCE(h->next_seq), s->next_seq);
	TU_REQUIRE_EQ(READ_ONCE(h->head), pos);
	if ((unsigned)ret < n) {
		/* Stopped early: the next record really did not fit. */
		uint64_t need = rec_size(lens[ret]), o = pos & s->m.mask;
		uint64_t pad = (s->m.capacity - o < need) ? s->m.capacity - o : 0;

		TU_REQUIRE(pos + pad + need - READ_ONCE(h->tail) > s->m.capacity,
			   "stopped at record %d of %u, which fits", ret, n);
	}
out:
	free(pay);
	free(iov);
	return ret;
}

/* Check the records in out[0, bytes) against the model, consuming it. */
static void sim_check_out(struct sim *s, const uint8_t *out, uint64_t bytes, uint32_t count)
{
	uint64_t off = 0;

	for (uint32_t i = 0; i < count; i++) {
		struct rec_hdr rh;
		uint32_t want;
		uint64_t want_ts;

		TU_REQUIRE_LE(off + sizeof(rh), bytes);
		memcpy(&rh, out + off, sizeof(rh));
		TU_REQUIRE(s->qt != s->qh, "collected more records than were appended");
		want = s->q[s->qt];
		want_ts = s->qts[s->qt];
		s->qt = (s->qt + 1) % QMAX;
		TU_REQUIRE(rh.type == BE_TYPE_RAW, "record type %u (padding in the output?)",
			   rh.type);
		TU_REQUIRE_EQ(rh.len, want);
		TU_REQUIRE_EQ(rh.seq, s->next_collect);
		TU_REQUIRE_EQ(rh.flags, 0);
		TU_REQUIRE_EQ(rh.reserved, 0);
		TU_REQUIRE_EQ(rh.ts_ns, want_ts);
		TU_REQUIRE_EQ(rh.pid, TEST_PID);
		TU_REQUIRE_LE(off + rec_size(rh.len), bytes);
		for (uint32_t b = 0; b < rh.len; b++)
			if (out[off + sizeof(rh) + b] != pat(rh.seq, b))
				ck_abort_msg(
					"seq %llu len %u: payload byte %u is 0x%02x, not 0x%02x",
					(unsigned long long)rh.seq, rh.len, b,
					out[off + sizeof(rh) + b], pat(rh.seq, b));
		for (uint64_t b = sizeof(rh) + rh.len; b < rec_size(rh.len); b++)
			TU_REQUIRE_EQ(out[off + b], 0);
		off += rec_size(rh.len);
		s->next_collect++;
		s->collected++;
	}
	TU_REQUIRE_EQ(off, bytes);
}

/*
 * Be the daemon: collect all of [tail, head), check it against the model,
 * store the new tail and wake writers.
 */
static void sim_drain(struct sim *s)
{
	struct ring_hdr *h = s->m.hdr;
	uint64_t head = load_acquire(&h->head), tail = READ_ONCE(h->tail);
	struct ring_batch res;
	int ret;

	ret = ring_collect(&s->m, tail, head, s->next_collect, s->out, s->m.capacity, &res);
	TU_REQUIRE(ret == 0, "ring_collect [%llu, %llu): %s at %llu", (unsigned long long)tail,
		   (unsigned long long)head, be_strerror(ret), (unsigned long long)res.bad_pos);
	TU_REQUIRE_EQ(res.start_pos, tail);
	TU_REQUIRE_EQ(res.end_pos, head);
	if (res.count) {
		TU_REQUIRE_EQ(res.first_seq, s->next_collect);
		TU_REQUIRE_EQ(res.last_seq, s->next_collect + res.count - 1);
	}
	/* Everything in [tail, head) is records or padding; none of the padding is output. */
	TU_REQUIRE_EQ(head - tail, res.bytes + s->pad_pending);
	sim_check_out(s, s->out, res.bytes, res.count);
	TU_REQUIRE(s->qt == s->qh, "appended records missing from the collect");
	s->pad_pending = 0;
	store_release(&h->tail, head);
	futex_bump_wake(&h->space_gen);
}

/*
 * Advance the head (appending fillers, draining each) until it sits at offset
 * `target` of the area, without padding on the way when it can be avoided.
 * Offsets 8..24 after a wrap cannot be reached (no record is that small).
 */
static void sim_steer(struct sim *s, uint64_t target)
{
	uint64_t maxrec = rec_size(s->m.max_payload), min = sizeof(struct rec_hdr);

	for (int guard = 0; guard < 64; guard++) {
		uint64_t off = READ_ONCE(s->m.hdr->head) & s->m.mask;
		uint64_t room = s->m.capacity - off, dist = (target - off) & s->m.mask, seg, sz;

		if (dist == 0)
			return;
		/* Straight to the target when it is ahead in this lap; else to the end first. */
		seg = (dist <= room && dist >= min) ? dist : room;
		if (seg < min) {
			sz = min; /* pads the last bytes of the area */
		} else {
			sz = seg < maxrec ? seg : maxrec;
			if (seg > sz && seg - sz < min)
				sz = seg - min;
		}
		TU_REQUIRE_EQ(sim_append(s, (uint32_t)(sz - min), 0), 0);
		sim_drain(s);
	}
	ck_abort_msg("could not steer the head to offset %llu", (unsigned long long)target);
}

/* ------------------------------------------------------------------------
 * Names.
 */

START_TEST(test_names)
{
	char n63[64], n64[65], out[RING_SHM_NAME_MAX];
	static const char *const bad[] = { "",	  "a/b",  "/",	  "a.b",  ".",		 "..",
					   "a b", " ",	  "a\tb", "a\nb", "caf\xc3\xa9", "a*",
					   "a:b", "a\\b", "x%y" };
	static const char *const good[] = { "a",       "Z",	      "0",  "_",	"-",
					    "metrics", "A-Z_a-z_0-9", "--", "store_1-X" };

	memset(n63, 'x', 63);
	n63[63] = 0;
	memset(n64, 'y', 64);
	n64[64] = 0;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(ring_name_valid(good[i]) == 1, "'%s' refused", good[i]);
	ck_assert_int_eq(ring_name_valid(n63), 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(ring_name_valid(bad[i]) == 0, "'%s' accepted", bad[i]);
	ck_assert_int_eq(ring_name_valid(n64), 0);
	ck_assert_int_eq(ring_name_valid(NULL), 0);
	/* Every character outside the set, one at a time. */
	for (int c = 1; c < 256; c++) {
		char s[4] = { 'a', (char)c, 'b', 0 };
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '_' || c == '-';

		ck_assert_msg(ring_name_valid(s) == ok, "char 0x%02x: %d", c, ring_name_valid(s));
	}

	ck_assert_int_eq(ring_shm_name(out, sizeof(out), "inst", "store"), 0);
	ck_assert_str_eq(out, "/bufferengine.inst.store");
	ck_assert_int_eq(ring_shm_name(out, sizeof(out), n63, n63), 0);
	ck_assert_uint_eq(strlen(out), 1 + 13 + 63 + 1 + 63);
	ck_assert_uint_le(strlen(out) + 4 + 1, RING_SHM_NAME_MAX); /* room for ".tmp" */
	ck_assert_int_eq(ring_shm_name(out, sizeof(out), "inst", "a/b"), -EINVAL);
	ck_assert_int_eq(ring_shm_name(out, sizeof(out), "in.st", "store"), -EINVAL);
	ck_assert_int_eq(ring_shm_name(out, sizeof(out), "", "store"), -EINVAL);
	ck_assert_int_eq(ring_shm_name(out, sizeof(out), "inst", n64), -EINVAL);
	ck_assert_int_eq(ring_shm_name(out, 10, "inst", "store"), -ENAMETOOLONG);

	setenv("BE_INSTANCE", "myinst", 1);
	ck_assert_str_eq(ring_default_instance(), "myinst");
	setenv("BE_INSTANCE", "my/inst", 1);
	ck_assert_str_eq(ring_default_instance(), "default");
	unsetenv("BE_INSTANCE");
	ck_assert_str_eq(ring_default_instance(), "default");
}
END_TEST

/* ------------------------------------------------------------------------
 * Create, open, validate.
 */

START_TEST(test_create_open)
{
	struct ring_map m, o;
	struct ring_params p;
	char inst[64], path[256];
	struct stat st;

	tu_instance(inst, sizeof(inst));
	p = params("metrics", 8192, BE_TYPE_METRIC, RING_ON_FULL_DROP, 1234);
	ck_assert_int_eq(ring_create(inst, &p, &m), 0);
	ck_assert_ptr_nonnull(m.hdr);
	ck_assert_uint_eq(m.capacity, 8192);
	ck_assert_uint_eq(m.mask, 8191);
	ck_assert_uint_ne(m.incarnation, 0);
	ck_assert_uint_eq(m.max_payload, 2048);
	ck_assert_ptr_eq(m.data, (uint8_t *)m.hdr + RING_HDR_SIZE);

	/* The header as the daemon wrote it. */
	ck_assert_uint_eq(m.hdr->magic, RING_MAGIC);
	ck_assert_uint_eq(m.hdr->version, RING_VERSION);
	ck_assert_uint_eq(m.hdr->hdr_size, RING_HDR_SIZE);
	ck_assert_uint_eq(m.hdr->next_seq, FIRST_SEQ);
	ck_assert_uint_eq(m.hdr->first_seq, FIRST_SEQ);
	ck_assert_uint_eq(m.hdr->durable_seq, FIRST_SEQ);
	ck_assert_uint_eq(m.hdr->flush_bytes, 1234);
	ck_assert_uint_eq(m.hdr->head, 0);
	ck_assert_uint_eq(m.hdr->tail, 0);
	ck_assert_str_eq(m.hdr->store_name, "metrics");

	/* The object has its exact size and no temporary is left behind. */
	shm_path(path, sizeof(path), inst, "metrics");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, RING_HDR_SIZE + 8192);
	strcat(path, ".tmp");
	ck_assert_int_eq(stat(path, &st), -1);

	ck_assert_int_eq(ring_open(inst, "metrics", 0, &o), 0);
	ck_assert_uint_eq(o.capacity, m.capacity);
	ck_assert_uint_eq(o.mask, m.mask);
	ck_assert_uint_eq(o.store_type, BE_TYPE_METRIC);
	ck_assert_uint_eq(o.on_full, RING_ON_FULL_DROP);
	ck_assert_uint_eq(o.incarnation, m.incarnation);
	ck_assert_uint_eq(o.max_payload, m.max_payload);
	ck_assert_str_eq(o.store, "metrics");
	ck_assert_uint_eq(o.map_len, RING_HDR_SIZE + 8192);
	/* One object: a write through one mapping shows in the other. */
	m.data[100] = 0x5a;
	ck_assert_uint_eq(o.data[100], 0x5a);
	ring_unmap(&o);
	ck_assert_int_eq(o.fd, -1);
	ck_assert_ptr_null(o.hdr);
	ring_unmap(&o); /* twice is safe */

	/* Read-only, as shm-dump opens it. */
	ck_assert_int_eq(ring_open(inst, "metrics", RING_OPEN_RDONLY, &o), 0);
	ck_assert_uint_eq(o.incarnation, m.incarnation);
	ring_unmap(&o);

	/* Another ring gets another incarnation. */
	{
		struct ring_map m2;
		struct ring_params p2 = params("logs", 4096, BE_TYPE_LOG, RING_ON_FULL_BLOCK, 0);

		ck_assert_int_eq(ring_create(inst, &p2, &m2), 0);
		ck_assert_uint_ne(m2.incarnation, m.incarnation);
		ck_assert_uint_eq(m2.max_payload, 1024);
		tu_rmring(&m2, inst, "logs");
	}
	tu_rmring(&m, inst, "metrics");
	ck_assert_int_eq(ring_open(inst, "metrics", 0, &o), -ENOENT);
}
END_TEST

START_TEST(test_create_exists)
{
	struct ring_map m, m2, o;
	struct ring_params p;
	char inst[64], path[256];
	struct stat st;

	mkring(&m, inst, "s", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	m.hdr->head = 64; /* something a replacement would lose */
	m.hdr->next_seq = 77;

	p = params("s", 16384, BE_TYPE_LOG, RING_ON_FULL_DROP, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m2), -EEXIST);
	ck_assert_ptr_null(m2.hdr);
	ck_assert_int_eq(m2.fd, -1);

	/* The ring in place is the first one, untouched. */
	ck_assert_int_eq(ring_open(inst, "s", 0, &o), 0);
	ck_assert_uint_eq(o.incarnation, m.incarnation);
	ck_assert_uint_eq(o.capacity, 4096);
	ck_assert_uint_eq(o.store_type, BE_TYPE_RAW);
	ck_assert_uint_eq(o.hdr->head, 64);
	ck_assert_uint_eq(o.hdr->next_seq, 77);
	ring_unmap(&o);
	/* And the failed creation left no temporary. */
	shm_path(path, sizeof(path), inst, "s");
	strcat(path, ".tmp");
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	tu_rmring(&m, inst, "s");
}
END_TEST

START_TEST(test_create_removes_tmp)
{
	struct ring_map m, o;
	struct ring_params p = params("s", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	char inst[64], path[256], tmp[260];
	struct stat st;
	int fd;

	tu_instance(inst, sizeof(inst));
	shm_path(path, sizeof(path), inst, "s");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	/* A creator died half-way: a garbage temporary of the wrong size and mode. */
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0400);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "garbage", 7), 7);
	close(fd);

	ck_assert_int_eq(ring_create(inst, &p, &m), 0);
	ck_assert_int_eq(stat(tmp, &st), -1);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, RING_HDR_SIZE + 4096);
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(ring_open(inst, "s", 0, &o), 0);
	ck_assert_uint_eq(o.incarnation, m.incarnation);
	ring_unmap(&o);
	tu_rmring(&m, inst, "s");
}
END_TEST

static const uint32_t modes[] = { 0660, 0666, 0644, 0600, 0640, 0604, 0606, 0440 };

START_TEST(test_create_mode)
{
	struct ring_params p = params("s", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	struct ring_map m;
	char inst[64], path[256];
	struct stat st;
	mode_t old = umask(077);

	p.mode = modes[_i];
	tu_instance(inst, sizeof(inst));
	ck_assert_int_eq(ring_create(inst, &p, &m), 0);
	umask(old);
	shm_path(path, sizeof(path), inst, "s");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg((st.st_mode & 07777) == modes[_i], "mode %04o, asked %04o",
		      st.st_mode & 07777, modes[_i]);
	ck_assert_uint_eq(m.hdr->mode, modes[_i]);
	tu_rmring(&m, inst, "s");
}
END_TEST

START_TEST(test_create_invalid)
{
	static const uint64_t caps[] = { 0,
					 1,
					 4095,
					 4097,
					 6144,
					 8192 + 4096,
					 2048,
					 1 << 11,
					 RING_CAP_MAX * 2,
					 (RING_CAP_MAX * 2) - 1 };
	struct ring_map m;
	struct ring_params p;
	char inst[64], path[256];
	struct stat st;

	tu_instance(inst, sizeof(inst));
	shm_path(path, sizeof(path), inst, "s");
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		p = params("s", caps[i], BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
		ck_assert_msg(ring_create(inst, &p, &m) == -EINVAL, "capacity %llu accepted",
			      (unsigned long long)caps[i]);
		ck_assert_int_eq(stat(path, &st), -1);
	}
	p = params("a.b", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	p = params("", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	p = params("s", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create("bad/inst", &p, &m), -EINVAL);
	p = params("s", 4096, 0, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	p = params("s", 4096, BE_TYPE_PROCESS + 1, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	p = params("s", 4096, BE_TYPE_RAW, 2, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	p = params("s", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	p.first_seq = 0;
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	p.first_seq = 1;
	p.mode = 010000;
	ck_assert_int_eq(ring_create(inst, &p, &m), -EINVAL);
	ck_assert_int_eq(stat(path, &st), -1);
	/* The smallest and a large power of two are fine. */
	p = params("s", RING_CAP_MIN, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), 0);
	tu_rmring(&m, inst, "s");
	p = params("s", 1 << 20, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	ck_assert_int_eq(ring_create(inst, &p, &m), 0);
	ck_assert_uint_eq(m.max_payload, (1 << 20) / 4);
	tu_rmring(&m, inst, "s");
}
END_TEST

START_TEST(test_open_missing)
{
	struct be_open_opts o;
	struct ring_map m;
	char inst[64];
	be_store *s = (be_store *)inst; /* any non-NULL: be_open must clear it */

	tu_instance(inst, sizeof(inst));
	ck_assert_int_eq(ring_open(inst, "nosuch", 0, &m), -ENOENT);
	ck_assert_ptr_null(m.hdr);
	ck_assert_int_eq(m.fd, -1);
	ck_assert_int_eq(ring_open(inst, "no.such", 0, &m), -EINVAL);
	ck_assert_int_eq(ring_open("a/b", "s", 0, &m), -EINVAL);

	o = opts_for(inst, 0);
	ck_assert_int_eq(be_open("nosuch", &o, &s), -ENOENT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(be_open("no/such", &o, &s), -EINVAL);
	ck_assert_int_eq(be_open("", &o, &s), -EINVAL);
	ck_assert_int_eq(be_open(NULL, &o, &s), -EINVAL);
	ck_assert_int_eq(be_open("s", &o, NULL), -EINVAL);
	o.instance = "in st";
	ck_assert_int_eq(be_open("s", &o, &s), -EINVAL);
	o = opts_for(inst, -2);
	ck_assert_int_eq(be_open("s", &o, &s), -EINVAL);
	o = opts_for(inst, 0);
	o.open_timeout_ms = -7;
	ck_assert_int_eq(be_open("s", &o, &s), -EINVAL);
	/* A bounded open wait on a ring that never comes. */
	o.open_timeout_ms = 30;
	ck_assert_int_eq(be_open("nosuch", &o, &s), -ENOENT);
	ck_assert_ptr_null(s);
}
END_TEST

/* A ring that appears while be_open waits for it (open_timeout_ms). */
START_TEST(test_open_wait)
{
	struct be_open_opts o;
	char inst[64];
	be_store *s = NULL;
	int pfd[2], st, ret;
	pid_t pid;
	char c = 'g';

	tu_instance(inst, sizeof(inst));
	ck_assert_int_eq(pipe(pfd), 0);
	pid = tu_spawn();
	if (pid == 0) {
		struct ring_params p = params("late", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
		struct ring_map m;

		char path[64], buf[64];
		uint64_t end = tu_now_ms() + (uint64_t)tu_bound(10000);

		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			_exit(2);
		/*
		 * Create the ring only once the parent sleeps in be_open's poll
		 * (its only sleep), so that the wait itself is what is tested.
		 */
		snprintf(path, sizeof(path), "/proc/%d/syscall", (int)getppid());
		while (tu_now_ms() < end) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			long nr;

			if (fd >= 0)
				close(fd);
			if (n <= 0)
				break; /* no /proc/PID/syscall here: create at once */
			buf[n] = 0;
			nr = strtol(buf, NULL, 10);
			if (nr == SYS_clock_nanosleep || nr == SYS_nanosleep)
				break;
			tu_sleep_ms(1);
		}
		_exit(ring_create(inst, &p, &m) == 0 ? 0 : 3);
	}
	close(pfd[0]);
	ck_assert_int_eq(write(pfd[1], &c, 1), 1);
	close(pfd[1]);
	o = opts_for(inst, 0);
	o.open_timeout_ms = tu_bound(10000);
	ret = be_open("late", &o, &s);
	ck_assert_msg(ret == 0, "be_open: %s", be_strerror(ret));
	ck_assert_int_eq(be_store_type(s), BE_TYPE_RAW);
	st = tu_wait_bounded(pid, 10000);
	tu_assert_exit0(st, "creator");
	ck_assert_int_eq(be_close(s), 0); /* nothing written: nothing to flush */
	ring_unlink(inst, "late");
}
END_TEST

/* Damage done to a good ring's header, each one refused by ring_open and be_open. */
enum damage {
	DMG_MAGIC,
	DMG_VERSION_MAJOR,
	DMG_OVERFULL, /* head - tail > capacity */
	DMG_HEAD_MISALIGNED,
	DMG_TAIL_MISALIGNED,
	DMG_TAIL_PAST_HEAD,
	DMG_SIZE_BIGGER, /* ftruncate the object */
	DMG_SIZE_SMALLER,
	DMG_SIZE_TINY,
	DMG_HDR_SIZE,
	DMG_CAPACITY,	    /* not a power of two */
	DMG_CAPACITY_OTHER, /* a power of two, not the file's */
	DMG_TYPE,
	DMG_ON_FULL,
	DMG_INCARNATION,
	DMG_MAX_PAYLOAD,
	DMG_NAME_UNTERMINATED,
	DMG_NAME_INVALID,
	DMG_COUNT
};

START_TEST(test_open_damaged)
{
	struct ring_map m, o;
	struct ring_hdr *h;
	struct be_open_opts opts;
	char inst[64];
	be_store *s = NULL;
	int want = -EBADMSG;

	mkring(&m, inst, "d", 8192, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	h = m.hdr;
	/* A ring in use: the head and tail somewhere in the middle. */
	h->tail = 3 * 8192 + 512;
	h->head = 3 * 8192 + 4096;
	ck_assert_int_eq(ring_open(inst, "d", 0, &o), 0);
	ring_unmap(&o);

	switch (_i) {
	case DMG_MAGIC:
		h->magic ^= 1;
		break;
	case DMG_VERSION_MAJOR:
		h->version = ((RING_VERSION_MAJOR + 1) << 16) | RING_VERSION_MINOR;
		want = -EPROTO;
		break;
	case DMG_OVERFULL:
		h->head = h->tail + 8192 + 8;
		break;
	case DMG_HEAD_MISALIGNED:
		h->head += 4;
		break;
	case DMG_TAIL_MISALIGNED:
		h->tail += 1;
		break;
	case DMG_TAIL_PAST_HEAD:
		h->tail = h->head + 8;
		break;
	case DMG_SIZE_BIGGER:
		ck_assert_int_eq(ftruncate(m.fd, RING_HDR_SIZE + 8192 + 4096), 0);
		break;
	case DMG_SIZE_SMALLER:
		ck_assert_int_eq(ftruncate(m.fd, RING_HDR_SIZE + 4096), 0);
		break;
	case DMG_SIZE_TINY:
		ck_assert_int_eq(ftruncate(m.fd, 100), 0);
		break;
	case DMG_HDR_SIZE:
		h->hdr_size = 8192;
		break;
	case DMG_CAPACITY:
		h->capacity = 8192 + 8;
		break;
	case DMG_CAPACITY_OTHER:
		h->capacity = 4096;
		break;
	case DMG_TYPE:
		h->store_type = 9;
		break;
	case DMG_ON_FULL:
		h->on_full = 7;
		break;
	case DMG_INCARNATION:
		h->incarnation = 0;
		break;
	case DMG_MAX_PAYLOAD:
		h->max_payload = 8192;
		break;
	case DMG_NAME_UNTERMINATED:
		memset(h->store_name, 'n', sizeof(h->store_name));
		break;
	case DMG_NAME_INVALID:
		strcpy(h->store_name, "a.b");
		break;
	}
	ck_assert_int_eq(ring_open(inst, "d", 0, &o), want);
	ck_assert_ptr_null(o.hdr);
	ck_assert_int_eq(o.fd, -1);
	ck_assert_int_eq(ring_open(inst, "d", RING_OPEN_RDONLY | RING_OPEN_NO_PIDNS, &o), want);
	opts = opts_for(inst, 0);
	ck_assert_int_eq(be_open("d", &opts, &s), want);
	ck_assert_ptr_null(s);
	tu_rmring(&m, inst, "d"); /* unmaps without touching the (maybe truncated) pages */
}
END_TEST

/* Another minor version is fine: only the major is a contract break. */
START_TEST(test_open_minor_version)
{
	struct ring_map m, o;
	char inst[64];

	mkring(&m, inst, "v", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	m.hdr->version = (RING_VERSION_MAJOR << 16) | (RING_VERSION_MINOR + 3);
	ck_assert_int_eq(ring_open(inst, "v", 0, &o), 0);
	ring_unmap(&o);
	m.hdr->version = ((RING_VERSION_MAJOR - 1) << 16) | 9;
	ck_assert_int_eq(ring_open(inst, "v", 0, &o), -EPROTO);
	tu_rmring(&m, inst, "v");
}
END_TEST

/* A writer from another pid namespace is refused (-EXDEV); readers may skip the check. */
START_TEST(test_open_other_pidns)
{
	struct ring_map m;
	char inst[64];
	pid_t pid;
	int st;

	if (geteuid() != 0) {
		printf("test_open_other_pidns: skipped (not root: cannot unshare a pid "
		       "namespace)\n");
		return;
	}
	mkring(&m, inst, "ns", 4096, BE_TYPE_RAW, RING_ON_FULL_BLOCK, 0);
	pid = tu_spawn();
	if (pid == 0) {
		pid_t g;
		int gst;

		if (unshare(CLONE_NEWPID) < 0)
			_exit(77);
		g = fork();
		if (g == 0) {
			struct ring_map o;
			struct be_open_opts opts = opts_for(inst, 0);
			be_store *s;

			if (ring_open(inst, "ns", 0, &o) != -EXDEV)
				_exit(1);
			if (be_open("ns", &opts, &s) != -EXDEV)
				_exit(2);
			if (ring_open(inst, "ns", RING_OPEN_NO_PIDNS, &o) != 0)
				_exit(3);
			_exit(0);
		}
		if (g < 0 || waitpid(g, &gst, 0) != g)
			_exit(78);
		_exit(WIFEXITED(gst) ? WEXITSTATUS(gst) : 79);
	}
	st = tu_wait_bounded(pid, 10000);
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		printf("test_open_other_pidns: skipped (unshare(CLONE_NEWPID) refused)\n");
	} else {
		tu_assert_exit0(st, "pid-namespace child");
	}
	tu_rmring(&m, inst, "ns");
}
END_TEST

/* ------------------------------------------------------------------------
 * Append and collect.
 */

/*
 * Padding at every offset: for each pad size P (8 .. the largest a record
 * can need), steer the head to capacity - P, then append a record that
 * does not fit there, with each of the 8 payload alignments; collect after
 * every append.
 */
START_TEST(test_wrap_every_offset)
{
	struct sim *s = malloc(sizeof(*s));
	uint64_t maxpad;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "w", RING_CAP_MIN, RING_ON_FULL_DROP, UINT64_MAX);
	maxpad = rec_size(s->m.max_payload) - REC_ALIGN;
	for (uint64_t pad = REC_ALIGN; pad <= maxpad; pad += REC_ALIGN) {
		for (uint32_t j = 0; j < 8; j++) {
			uint32_t len = (pad > 31 ? (uint32_t)pad - 31 : 0) + j;
			uint64_t pads = s->pads;

			if (len > s->m.max_payload)
				continue;
			sim_steer(s, s->m.capacity - pad);
			ck_assert_int_eq(sim_append(s, len, 0), 0);
			ck_assert_uint_eq(s->pads, pads + 1);
			sim_drain(s);
		}
	}
	for (uint64_t pad = REC_ALIGN; pad <= maxpad; pad += REC_ALIGN)
		ck_assert_msg(s->pad_seen[pad / 8], "no padding of %llu bytes seen",
			      (unsigned long long)pad);
	/* Many times round the ring, and positions far from 0. */
	ck_assert_uint_gt(READ_ONCE(s->m.hdr->head), 500 * s->m.capacity);
	sim_fini(s);
	free(s);
}
END_TEST

/* Every payload length 0 .. max_payload, one record at a time, then the same in reverse. */
START_TEST(test_every_length)
{
	struct sim *s = malloc(sizeof(*s));

	ck_assert_ptr_nonnull(s);
	sim_init(s, "l", RING_CAP_MIN, RING_ON_FULL_DROP, UINT64_MAX);
	for (uint32_t len = 0; len <= s->m.max_payload; len++) {
		ck_assert_int_eq(sim_append(s, len, 0), 0);
		sim_drain(s);
	}
	for (uint32_t len = s->m.max_payload + 1; len-- > 0;) {
		ck_assert_int_eq(sim_append(s, len, 0), 0);
		sim_drain(s);
	}
	ck_assert_uint_eq(s->collected, 2 * (s->m.max_payload + 1));
	ck_assert_uint_gt(s->pads, 100);
	sim_fini(s);
	free(s);
}
END_TEST

/*
 * Bursts of random lengths (mostly small, some up to max_payload) appended
 * until the ring is full, collected in one go: many records and pads a
 * batch, round and round.
 */
static const uint64_t burst_caps[] = { RING_CAP_MIN, 65536 };

START_TEST(test_bursts)
{
	struct sim *s = malloc(sizeof(*s));
	uint64_t want = 40000;

	ck_assert_ptr_nonnull(s);
	rng_state = 0x1234567 + (uint64_t)_i;
	sim_init(s, "b", burst_caps[_i], RING_ON_FULL_DROP, UINT64_MAX);
	while (s->collected < want) {
		unsigned n = 1 + (unsigned)(rng() % 64);

		for (unsigned k = 0; k < n; k++) {
			uint64_t r = rng();
			uint32_t len = (r & 15) == 0 ? (uint32_t)((r >> 8) % (s->m.max_payload + 1))
						     : (uint32_t)((r >> 8) % 200);
			int ret = sim_append(s, len, 0);

			if (ret == -ENOBUFS) {
				/* Full: it really did not fit. */
				uint64_t head = READ_ONCE(s->m.hdr->head);
				uint64_t off = head & s->m.mask, need = rec_size(len);
				uint64_t pad =
					(s->m.capacity - off < need) ? s->m.capacity - off : 0;

				TU_REQUIRE(head + pad + need - READ_ONCE(s->m.hdr->tail) >
						   s->m.capacity,
					   "-ENOBUFS for a record that fits");
				break;
			}
			ck_assert_int_eq(ret, 0);
		}
		sim_drain(s);
	}
	ck_assert_uint_gt(s->pads, 50);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->next_seq), FIRST_SEQ + s->collected);
	sim_fini(s);
	free(s);
}
END_TEST

/*
 * ring_append_many(): batches of random sizes and lengths, interleaved
 * with single appends, until the ring is full (drop): each batch is
 * published whole or up to the record that did not fit, pads fall inside
 * batches, and every record comes out of the collect in order.
 */
START_TEST(test_many_bursts)
{
	struct sim *s = malloc(sizeof(*s));
	uint64_t want = 40000, partial = 0;
	uint32_t lens[96];

	ck_assert_ptr_nonnull(s);
	rng_state = 0x7654321 + (uint64_t)_i;
	sim_init(s, "mb", burst_caps[_i], RING_ON_FULL_DROP, UINT64_MAX);
	while (s->collected < want) {
		for (int round = 0; round < 4; round++) {
			unsigned n = 1 + (unsigned)(rng() % 96);
			int ret;

			for (unsigned k = 0; k < n; k++) {
				uint64_t r = rng();

				lens[k] = (r & 31) == 0 ? (uint32_t)((r >> 8) % (s->m.max_payload + 1))
							: (uint32_t)((r >> 8) % 120);
			}
			if (rng() & 1) {
				ret = sim_append_many(s, lens, n, 0);
			} else {
				ret = 0;
				while ((unsigned)ret < n && sim_append(s, lens[ret], 0) == 0)
					ret++;
				ret = ret ? ret : -ENOBUFS;
			}
			if (ret == -ENOBUFS || (ret > 0 && (unsigned)ret < n)) {
				partial += ret > 0;
				break;
			}
			ck_assert_int_eq(ret, (int)n);
		}
		sim_drain(s);
	}
	ck_assert_uint_gt(s->pads, 50);
	ck_assert_uint_gt(partial, 10);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->next_seq), FIRST_SEQ + s->collected);
	sim_fini(s);
	free(s);
}
END_TEST

/* A bad element fails the batch before anything is written; n = 0 writes nothing. */
START_TEST(test_many_refused)
{
	struct sim *s = malloc(sizeof(*s));
	uint32_t lens[5] = { 10, 20, 0, 30, 40 };

	ck_assert_ptr_nonnull(s);
	sim_init(s, "mr", RING_CAP_MIN, RING_ON_FULL_DROP, UINT64_MAX);
	ck_assert_int_eq(sim_append_many(s, lens, 0, 0), 0);
	lens[2] = s->m.max_payload + 1;
	ck_assert_int_eq(sim_append_many(s, lens, 5, 0), -EMSGSIZE);
	lens[2] = s->m.max_payload;
	ck_assert_int_eq(sim_append_many(s, lens, 5, 0), 5);
	sim_drain(s);
	ck_assert_uint_eq(s->collected, 5);

	/* A damaged next_seq: nothing is written. */
	WRITE_ONCE(s->m.hdr->next_seq, RING_SEQ_FIRST_MAX + RING_SEQ_SPAN);
	ck_assert_int_eq(ring_append_many(&s->m, &s->ctail, BE_TYPE_RAW,
					  &(struct iovec){ .iov_base = lens, .iov_len = 4 }, 1, 1, 1, 0,
					  NULL),
			 -EBADMSG);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->head), READ_ONCE(s->m.hdr->tail));
	WRITE_ONCE(s->m.hdr->next_seq, s->next_seq);
	sim_fini(s);
	free(s);
}
END_TEST

/* The drainer of test_many_block: collects and checks until `count` records came. */
struct many_drain {
	struct ring_map *m;
	uint64_t first_seq, count, got;
	uint64_t parts;	/* head moves seen before the end: partial publications */
	int bad;
};

static void *many_drainer(void *arg)
{
	struct many_drain *d = arg;
	struct ring_hdr *h = d->m->hdr;
	uint8_t *out = malloc(d->m->capacity);
	uint64_t end = tu_now_ms() + (uint64_t)tu_bound(20000);

	if (!out) {
		d->bad = 1;
		return NULL;
	}
	while (d->got < d->count && !d->bad && tu_now_ms() < end) {
		uint64_t head = load_acquire(&h->head), tail = READ_ONCE(h->tail), off = 0;
		struct ring_batch res;

		if (head == tail) {
			uint32_t gen = load_acquire(&h->doorbell_gen);

			if (load_acquire(&h->head) == tail)
				futex_wait_until(&h->doorbell_gen, gen, now_mono_ns() + NSEC_PER_MSEC);
			continue;
		}
		if (ring_collect(d->m, tail, head, d->first_seq + d->got, out, d->m->capacity,
				 &res) != 0) {
			d->bad = 2;
			break;
		}
		for (uint32_t i = 0; i < res.count; i++) {
			struct rec_hdr rh;

			memcpy(&rh, out + off, sizeof(rh));
			if (rh.seq != d->first_seq + d->got || rh.len != 100)
				d->bad = 3;
			for (uint32_t b = 0; b < rh.len; b++)
				if (out[off + sizeof(rh) + b] != pat(rh.seq, b))
					d->bad = 4;
			off += rec_size(rh.len);
			d->got++;
		}
		if (d->got < d->count)
			d->parts++;
		store_release(&h->tail, head);
		futex_bump_wake(&h->space_gen);
	}
	free(out);
	return NULL;
}

/*
 * A batch larger than the ring under block: what fits is published before
 * each wait for space, so that a daemon can drain it; the call returns the
 * whole count.  Without a drainer it times out and returns the count that
 * went in (published).
 */
START_TEST(test_many_block)
{
	enum { N = 300 };
	struct sim *s = malloc(sizeof(*s));
	struct many_drain d = { 0 };
	struct iovec iov[N];
	uint8_t *pay = malloc((size_t)N * 100);
	pthread_t th;
	uint64_t last = 0, fit;
	int ret;

	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(pay);
	sim_init(s, "mk", RING_CAP_MIN, RING_ON_FULL_BLOCK, 1);
	for (unsigned i = 0; i < N; i++) {
		fill_pat(pay + i * 100, FIRST_SEQ + i, 100);
		iov[i] = (struct iovec){ .iov_base = pay + i * 100, .iov_len = 100 };
	}
	d = (struct many_drain){ .m = &s->m, .first_seq = FIRST_SEQ, .count = N };
	ck_assert_int_eq(pthread_create(&th, NULL, many_drainer, &d), 0);
	ret = ring_append_many(&s->m, &s->ctail, BE_TYPE_RAW, iov, N, 7, TEST_PID, 10000, &last);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(ret, N);
	ck_assert_int_eq(d.bad, 0);
	ck_assert_uint_eq(d.got, N);
	ck_assert_uint_ge(d.parts, 1);
	ck_assert_uint_eq(last, FIRST_SEQ + N - 1);
	ck_assert_uint_ge(READ_ONCE(s->m.hdr->full_waits), 1);

	/* No drainer: the records that fit go in, then the wait times out. */
	fit = RING_CAP_MIN / rec_size(100);
	for (unsigned i = 0; i < N; i++)
		fill_pat(pay + i * 100, FIRST_SEQ + N + i, 100);
	ret = ring_append_many(&s->m, &s->ctail, BE_TYPE_RAW, iov, N, 7, TEST_PID, 50, &last);
	ck_assert_int_gt(ret, 0);
	ck_assert_uint_le((unsigned)ret, fit);
	ck_assert_uint_eq(last, FIRST_SEQ + N + (unsigned)ret - 1);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->next_seq), last + 1);
	d = (struct many_drain){ .m = &s->m, .first_seq = FIRST_SEQ + N, .count = (unsigned)ret };
	many_drainer(&d);
	ck_assert_int_eq(d.bad, 0);
	ck_assert_uint_eq(d.got, (unsigned)ret);
	free(pay);
	tu_rmring(&s->m, s->inst, s->store);
	free(s->out);
	free(s->pay);
	free(s);
}
END_TEST

/* Records of lens[] appended from the current head; their positions in pos[]. */
static void append_lens(struct sim *s, const uint32_t *lens, int n, uint64_t *pos)
{
	for (int i = 0; i < n; i++) {
		uint64_t head = READ_ONCE(s->m.hdr->head), off = head & s->m.mask;

		if (s->m.capacity - off < rec_size(lens[i]))
			head += s->m.capacity - off; /* a pad first */
		if (pos)
			pos[i] = head;
		ck_assert_int_eq(sim_append(s, lens[i], 0), 0);
	}
}

START_TEST(test_collect_cap)
{
	static const uint32_t lens[] = { 10, 20, 30, 40, 50 };
	struct sim *s = malloc(sizeof(*s));
	struct ring_batch res;
	struct ring_hdr *h;
	uint64_t pos[5], sz[5], tail, head, end;
	uint8_t *out;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "c", RING_CAP_MIN, RING_ON_FULL_DROP, UINT64_MAX);
	h = s->m.hdr;
	out = malloc(s->m.capacity);
	ck_assert_ptr_nonnull(out);
	for (int i = 0; i < 5; i++)
		sz[i] = rec_size(lens[i]);
	sim_steer(s, 1000); /* not at 0 */
	append_lens(s, lens, 5, pos);
	tail = READ_ONCE(h->tail);
	head = READ_ONCE(h->head);
	ck_assert_uint_eq(tail, pos[0]);

	/* Room for two and a bit: two, ending at a record boundary. */
	ck_assert_int_eq(ring_collect(&s->m, tail, head, 0, out, sz[0] + sz[1] + 10, &res), 0);
	ck_assert_uint_eq(res.count, 2);
	ck_assert_uint_eq(res.bytes, sz[0] + sz[1]);
	ck_assert_uint_eq(res.end_pos, pos[2]);
	ck_assert_uint_eq(res.first_seq, s->next_collect);
	ck_assert_uint_eq(res.last_seq, s->next_collect + 1);
	sim_check_out(s, out, res.bytes, res.count);
	/* Exactly one record's room. */
	ck_assert_int_eq(ring_collect(&s->m, res.end_pos, head, s->next_collect, out, sz[2], &res),
			 0);
	ck_assert_uint_eq(res.count, 1);
	ck_assert_uint_eq(res.end_pos, pos[3]);
	sim_check_out(s, out, res.bytes, res.count);
	/* One byte short of the next: -E2BIG with what it needs. */
	end = res.end_pos;
	ck_assert_int_eq(ring_collect(&s->m, end, head, s->next_collect, out, sz[3] - 1, &res),
			 -E2BIG);
	ck_assert_uint_eq(res.need, sz[3]);
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.bytes, 0);
	ck_assert_int_eq(ring_collect(&s->m, end, head, s->next_collect, out, 0, &res), -E2BIG);
	ck_assert_uint_eq(res.need, sz[3]);
	/* The rest. */
	ck_assert_int_eq(ring_collect(&s->m, end, head, s->next_collect, out, s->m.capacity, &res),
			 0);
	ck_assert_uint_eq(res.count, 2);
	ck_assert_uint_eq(res.end_pos, head);
	sim_check_out(s, out, res.bytes, res.count);
	/* Nothing: count 0. */
	ck_assert_int_eq(ring_collect(&s->m, head, head, s->next_collect, out, s->m.capacity, &res),
			 0);
	ck_assert_uint_eq(res.count, 0);
	ck_assert_uint_eq(res.bytes, 0);
	ck_assert_uint_eq(res.end_pos, head);
	store_release(&h->tail, head);
	s->pad_pending = 0;

	/* Across a pad: [r0][r1][PAD][r2]; room for r0 and r1 only. */
	{
		static const uint32_t l2[] = { 24, 24, 100 };
		uint64_t p2[3], s2 = rec_size(24);

		sim_steer(s, s->m.capacity - 2 * s2 - 40);
		append_lens(s, l2, 3, p2);
		head = READ_ONCE(h->head);
		ck_assert_uint_eq(p2[2] & s->m.mask, 0); /* r2 went round */
		ck_assert_int_eq(
			ring_collect(&s->m, p2[0], head, s->next_collect, out, 2 * s2, &res), 0);
		ck_assert_uint_eq(res.count, 2);
		ck_assert_msg(res.end_pos == p2[2] - 40 || res.end_pos == p2[2],
			      "end_pos %llu: neither before nor after the pad",
			      (unsigned long long)res.end_pos);
		sim_check_out(s, out, res.bytes, res.count);
		/* From before the pad, too small for r2: -E2BIG, r2's size. */
		end = p2[2] - 40;
		ck_assert_int_eq(ring_collect(&s->m, end, head, s->next_collect, out, 64, &res),
				 -E2BIG);
		ck_assert_uint_eq(res.need, rec_size(100));
		ck_assert_uint_eq(res.count, 0);
		ck_assert_int_eq(
			ring_collect(&s->m, end, head, s->next_collect, out, s->m.capacity, &res),
			0);
		ck_assert_uint_eq(res.count, 1);
		ck_assert_uint_eq(res.bytes, rec_size(100));
		ck_assert_uint_eq(res.end_pos, head);
		sim_check_out(s, out, res.bytes, res.count);
		store_release(&h->tail, head);
		s->pad_pending = 0;
	}
	free(out);
	sim_fini(s);
	free(s);
}
END_TEST

/* One damaged record among good ones: the good ones before it, and where. */
enum corrupt {
	CR_TYPE_OTHER_STORE,
	CR_TYPE_GARBAGE,
	CR_LEN_BEYOND_HEAD,
	CR_LEN_OVER_MAX,
	CR_PAD_AS_RECORD, /* a PAD marker in the middle, its len not the room to the end */
	CR_SEQ_SAME,
	CR_SEQ_BACK,
	CR_SEQ_MAX,
	CR_FLAGS,
	CR_RESERVED,
	CR_BELOW_MIN_SEQ, /* the first record's seq below the caller's min_seq */
	CR_REAL_PAD_SHORT,
	CR_REAL_PAD_LONG,
	CR_REAL_PAD_FLAGS,
	CR_REAL_PAD_ZERO,
	CR_HEAD_IN_PAD,	   /* head inside the padding: the pad is not all published */
	CR_HEAD_IN_RECORD, /* head inside record k */
	CR_HEAD_IN_HEADER, /* head 8 bytes into record k's header */
	CR_HEAD_MISALIGNED,
	CR_OVERFULL,
	CR_COUNT
};

START_TEST(test_collect_damaged)
{
	static const uint32_t lens[] = { 16, 24, 100, 8, 40 };
	struct sim *s = malloc(sizeof(*s));
	struct ring_batch res;
	uint64_t pos[5], head, tail, min_seq, bad;
	uint32_t good;
	struct rec_hdr rh;
	uint8_t *out, *at;
	int ret, k = 2;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "x", RING_CAP_MIN, RING_ON_FULL_DROP, UINT64_MAX);
	out = malloc(s->m.capacity);
	ck_assert_ptr_nonnull(out);
	if ((_i >= CR_REAL_PAD_SHORT && _i <= CR_REAL_PAD_ZERO) || _i == CR_HEAD_IN_PAD) {
		/* [r0][r1][PAD 40][r2][r3][r4]: damage the pad. */
		sim_steer(s, s->m.capacity - rec_size(16) - rec_size(24) - 40);
	} else {
		sim_steer(s, 512);
	}
	append_lens(s, lens, 5, pos);
	head = READ_ONCE(s->m.hdr->head);
	tail = READ_ONCE(s->m.hdr->tail);
	ck_assert_uint_eq(tail, pos[0]);
	min_seq = s->next_collect;
	at = s->m.data + (pos[k] & s->m.mask);
	bad = pos[k];
	good = (uint32_t)k;
	memcpy(&rh, at, sizeof(rh));
	switch (_i) {
	case CR_TYPE_OTHER_STORE:
		rh.type = BE_TYPE_LOG;
		break;
	case CR_TYPE_GARBAGE:
		rh.type = 0x1234;
		break;
	case CR_LEN_BEYOND_HEAD:
		k = 4;
		at = s->m.data + (pos[k] & s->m.mask);
		memcpy(&rh, at, sizeof(rh));
		rh.len += 64;
		bad = pos[k];
		good = 4;
		break;
	case CR_LEN_OVER_MAX:
		rh.len = s->m.max_payload + 1;
		break;
	case CR_PAD_AS_RECORD:
		rh.type = REC_TYPE_PAD;
		rh.len = (uint32_t)rec_size(100);
		break;
	case CR_SEQ_SAME:
		rh.seq -= 1;
		break;
	case CR_SEQ_BACK:
		rh.seq = 3;
		break;
	case CR_SEQ_MAX:
		rh.seq = UINT64_MAX;
		break;
	case CR_FLAGS:
		rh.flags = 1;
		break;
	case CR_RESERVED:
		rh.reserved = 0x100;
		break;
	case CR_BELOW_MIN_SEQ:
		min_seq = s->next_collect + 1;
		bad = pos[0];
		good = 0;
		break;
	case CR_REAL_PAD_SHORT:
	case CR_REAL_PAD_LONG:
	case CR_REAL_PAD_FLAGS:
	case CR_REAL_PAD_ZERO:
		/* The pad sits right before r2, at the end of the area. */
		bad = pos[2] - 40;
		at = s->m.data + (bad & s->m.mask);
		memcpy(&rh, at, REC_PAD_MIN);
		ck_assert_uint_eq(rh.type, REC_TYPE_PAD);
		ck_assert_uint_eq(rh.len, 40);
		rh.len = _i == CR_REAL_PAD_SHORT  ? 32
			 : _i == CR_REAL_PAD_LONG ? 48
			 : _i == CR_REAL_PAD_ZERO ? 0
						  : 40;
		if (_i == CR_REAL_PAD_FLAGS)
			rh.flags = 2;
		break;
	case CR_HEAD_IN_PAD:
		bad = pos[2] - 40;
		head = bad + 16;
		break;
	case CR_HEAD_IN_RECORD:
		head = pos[k] + rec_size(lens[k]) - 8;
		break;
	case CR_HEAD_IN_HEADER:
		head = pos[k] + 8;
		break;
	case CR_HEAD_MISALIGNED:
		head += 4;
		bad = tail;
		good = 0;
		break;
	case CR_OVERFULL:
		head = tail + s->m.capacity + 8;
		bad = tail;
		good = 0;
		break;
	}
	if (_i >= CR_REAL_PAD_SHORT && _i <= CR_REAL_PAD_ZERO)
		memcpy(at, &rh, REC_PAD_MIN);
	else if (_i < CR_BELOW_MIN_SEQ)
		memcpy(at, &rh, sizeof(rh));

	ret = ring_collect(&s->m, tail, head, min_seq, out, s->m.capacity, &res);
	ck_assert_int_eq(ret, -EBADMSG);
	ck_assert_uint_eq(res.bad_pos, bad);
	ck_assert_uint_eq(res.count, good);
	if (good) {
		uint64_t bytes = 0;

		for (uint32_t i = 0; i < good; i++)
			bytes += rec_size(lens[i]);
		ck_assert_uint_eq(res.bytes, bytes);
		ck_assert_uint_eq(res.first_seq, s->next_collect);
		ck_assert_uint_eq(res.last_seq, s->next_collect + good - 1);
		ck_assert_uint_eq(res.end_pos, pos[good - 1] + rec_size(lens[good - 1]));
		/* The good records came out intact. */
		sim_check_out(s, out, res.bytes, res.count);
	} else {
		ck_assert_uint_eq(res.bytes, 0);
		ck_assert_uint_eq(res.end_pos, tail);
	}
	free(out);
	sim_fini(s);
	free(s);
}
END_TEST

/*
 * Garbage in the data area, random head and tail: ring_collect must stay
 * inside the data area and the output buffer, and say 0, -E2BIG (only with
 * a small cap) or -EBADMSG.  The data area sits between two PROT_NONE
 * pages and the output is a heap block of exactly cap bytes (ASan sees an
 * overrun of one byte; the guard pages catch reads in any build).
 */
START_TEST(test_collect_garbage)
{
	static const uint64_t caps[] = { RING_CAP_MIN, 4 * RING_CAP_MIN };
	long pg = sysconf(_SC_PAGESIZE);
	int iters = 4000;

	rng_state = 0xfeedface;
	for (size_t ci = 0; ci < sizeof(caps) / sizeof(caps[0]); ci++) {
		uint64_t cap = caps[ci];
		size_t maplen = (size_t)cap + 2 * (size_t)pg;
		uint8_t *base = mmap(NULL, maplen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct ring_map m;
		uint32_t types[] = { BE_TYPE_RAW, REC_TYPE_PAD, BE_TYPE_LOG, 0 };

		ck_assert_ptr_ne(base, MAP_FAILED);
		ck_assert_int_eq(mprotect(base + pg, cap, PROT_READ | PROT_WRITE), 0);
		memset(&m, 0, sizeof(m));
		m.data = base + pg;
		m.capacity = cap;
		m.mask = cap - 1;
		m.store_type = BE_TYPE_RAW;
		m.max_payload = (uint32_t)(cap / 4);
		m.fd = -1;

		for (int it = 0; it < iters; it++) {
			uint64_t tail, head, r = rng(), minseq = rng() % 4;
			size_t ocap;
			uint8_t *out;
			struct ring_batch res;
			int ret;

			/* Random bytes, then, half the time, a chain of plausible headers. */
			for (uint64_t b = 0; b < cap; b += 8) {
				uint64_t v = rng();

				memcpy(m.data + b, &v, 8);
			}
			tail = (r & 1) ? rng() % (cap * 64) : rng() >> 2;
			if (rng() % 8)
				tail &= ~(uint64_t)7;
			head = tail + rng() % (cap + 1);
			if (rng() % 8)
				head &= ~(uint64_t)7;
			if (rng() % 16 == 0)
				head = tail + cap + 8 * (rng() % 4); /* overfull */
			if (rng() % 32 == 0)
				tail = UINT64_MAX - rng() % 4096; /* head wraps the 64 bits */
			if (r & 2) {
				uint64_t pos = tail & ~(uint64_t)7, start = pos,
					 seq = 1 + rng() % 8;

				for (int n = 0; n < 200 && pos - start < cap; n++) {
					uint64_t off = pos & m.mask, room = cap - off, v = rng();
					struct rec_hdr rh = { 0 };

					rh.type = (uint16_t)types[v % 4];
					if (rh.type == 0)
						rh.type = (uint16_t)(v >> 16);
					switch ((v >> 8) % 6) {
					case 0:
						rh.len = (uint32_t)room;
						break;
					case 1:
						rh.len = (uint32_t)(room + 8 * ((v >> 20) % 3) - 8);
						break;
					case 2:
						rh.len = (uint32_t)(v >> 32);
						break;
					case 3:
						rh.len = m.max_payload + (uint32_t)((v >> 24) % 3) -
							 1;
						break;
					default:
						rh.len = (uint32_t)((v >> 24) % 300);
						break;
					}
					if ((v >> 40) % 8 == 0)
						rh.flags = 1;
					rh.seq = (v >> 44) % 16 == 0 ? seq - 1 : seq;
					seq++;
					memcpy(m.data + off, &rh,
					       room < sizeof(rh) ? room : sizeof(rh));
					if (rh.type == REC_TYPE_PAD)
						pos += room;
					else
						pos += rec_size(rh.len) > room ? room
									       : rec_size(rh.len);
				}
			}
			ocap = (rng() % 4 == 0) ? (size_t)(rng() % 512) : (size_t)cap;
			out = malloc(ocap ? ocap : 1);
			ck_assert_ptr_nonnull(out);
			ret = ring_collect(&m, tail, head, minseq, out, ocap, &res);
			TU_REQUIRE(ret == 0 || ret == -EBADMSG || (ret == -E2BIG && ocap < cap),
				   "ring_collect: %d", ret);
			TU_REQUIRE_EQ(res.start_pos, tail);
			if (ret == 0 || ret == -EBADMSG) {
				uint64_t off = 0;

				TU_REQUIRE_LE(res.bytes, ocap);
				TU_REQUIRE_LE(tail, res.end_pos);
				if (ret == 0)
					TU_REQUIRE_LE(res.end_pos, head);
				else
					TU_REQUIRE_EQ(res.end_pos, res.bad_pos);
				/* What came out parses as res.count records. */
				for (uint32_t i = 0; i < res.count; i++) {
					struct rec_hdr rh;

					TU_REQUIRE_LE(off + sizeof(rh), res.bytes);
					memcpy(&rh, out + off, sizeof(rh));
					TU_REQUIRE_EQ(rh.type, BE_TYPE_RAW);
					TU_REQUIRE_LE(rh.len, m.max_payload);
					off += rec_size(rh.len);
				}
				TU_REQUIRE_EQ(off, res.bytes);
			} else {
				TU_REQUIRE(res.need > ocap, "need %llu",
					   (unsigned long long)res.need);
				TU_REQUIRE_EQ(res.count, 0);
			}
			free(out);
		}
		munmap(base, maplen);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * Full ring, sizes, doorbell.
 */

START_TEST(test_full_drop)
{
	struct sim *s = malloc(sizeof(*s));
	struct be_open_opts o;
	be_store *bs;
	uint64_t head, n = 0;
	int ret;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "dr", RING_CAP_MIN, RING_ON_FULL_DROP, UINT64_MAX);
	while ((ret = sim_append(s, 100, 0)) == 0)
		n++;
	ck_assert_int_eq(ret, -ENOBUFS);
	head = READ_ONCE(s->m.hdr->head);
	ck_assert_uint_eq(n, RING_CAP_MIN / rec_size(100));
	ck_assert_uint_le(head - READ_ONCE(s->m.hdr->tail), s->m.capacity);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->drops), 1);
	ck_assert_int_eq(sim_append(s, 100, -1), -ENOBUFS); /* drop never waits */
	ck_assert_int_eq(sim_append(s, 0, 0), -ENOBUFS);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->drops), 3);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->full_waits), 0);

	/* Through the API, too. */
	o = opts_for(s->inst, 1000);
	ck_assert_int_eq(be_open("dr", &o, &bs), 0);
	ck_assert_int_eq(be_write(bs, "x", 1), -ENOBUFS);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->drops), 4);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->head), head);

	/* The lock is free, and space freed by the daemon is used again. */
	{
		struct lock_state ls;

		lock_peek(s->m.hdr, &ls);
		ck_assert_uint_eq(ls.owner_tid, 0);
	}
	sim_drain(s);
	ck_assert_uint_eq(s->collected, n);
	ck_assert_int_eq(sim_append(s, 100, 0), 0);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->drops), 4);
	sim_drain(s);
	ck_assert_int_eq(be_close(bs), 0); /* it wrote nothing */
	sim_fini(s);
	free(s);
}
END_TEST

START_TEST(test_full_block_timeout)
{
	struct sim *s = malloc(sizeof(*s));
	struct be_open_opts o;
	struct lock_state ls;
	be_store *bs;
	uint64_t head, n = 0;
	int ret;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "bt", RING_CAP_MIN, RING_ON_FULL_BLOCK, UINT64_MAX);
	while ((ret = sim_append(s, 200, 0)) == 0)
		n++;
	ck_assert_int_eq(ret, -ETIMEDOUT);
	ck_assert_uint_eq(n, RING_CAP_MIN / rec_size(200));
	head = READ_ONCE(s->m.hdr->head);
	ck_assert_uint_ge(READ_ONCE(s->m.hdr->full_waits), 1);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->drops), 0);
	ck_assert_int_eq(sim_append(s, 200, 50), -ETIMEDOUT);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->head), head);
	lock_peek(s->m.hdr, &ls);
	ck_assert_uint_eq(ls.owner_tid, 0);

	o = opts_for(s->inst, 50);
	ck_assert_int_eq(be_open("bt", &o, &bs), 0);
	memset(s->pay, 'p', 200);
	ck_assert_int_eq(be_write(bs, s->pay, 200), -ETIMEDOUT);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->head), head);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->next_seq), s->next_seq);

	sim_drain(s);
	ck_assert_int_eq(sim_append(s, 200, 0), 0);
	sim_drain(s);
	ck_assert_int_eq(be_close(bs), 0);
	sim_fini(s);
	free(s);
}
END_TEST

/* A writer blocked on a full ring (timeout -1) goes on when the "daemon" frees space. */
START_TEST(test_full_block_wakes)
{
	struct sim *s = malloc(sizeof(*s));
	struct ring_batch res;
	struct rec_hdr rh;
	uint64_t waits, seq, end;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "bw", RING_CAP_MIN, RING_ON_FULL_BLOCK, UINT64_MAX);
	while (sim_append(s, 300, 0) == 0)
		;
	waits = READ_ONCE(s->m.hdr->full_waits);
	seq = s->next_seq;
	pid = tu_spawn();
	if (pid == 0) {
		uint8_t p[77];
		uint64_t got = 0;

		fill_pat(p, seq, sizeof(p));
		_exit(ring_append(&s->m, &s->ctail, BE_TYPE_RAW, p, sizeof(p), 1000 + seq,
				  (uint32_t)getpid(), -1, &got) == 0 &&
				      got == seq
			      ? 0
			      : 1);
	}
	/* Wait until the child is waiting for space (it counts the wait first). */
	end = tu_now_ms() + (uint64_t)tu_bound(10000);
	while (READ_ONCE(s->m.hdr->full_waits) == waits) {
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "the writer exited without waiting");
		ck_assert_msg(tu_now_ms() < end, "the writer never waited for space");
		tu_sleep_ms(1);
	}
	/* It holds the lock while it waits. */
	{
		struct lock_state ls;

		lock_peek(s->m.hdr, &ls);
		ck_assert_uint_eq(ls.owner_tid, (uint32_t)pid);
	}
	ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
	sim_drain(s); /* moves the tail, bumps space_gen, FUTEX_WAKE */
	st = tu_wait_bounded(pid, 10000);
	tu_assert_exit0(st, "blocked writer");

	ck_assert_int_eq(ring_collect(&s->m, READ_ONCE(s->m.hdr->tail), READ_ONCE(s->m.hdr->head),
				      seq, s->out, s->m.capacity, &res),
			 0);
	ck_assert_uint_eq(res.count, 1);
	memcpy(&rh, s->out, sizeof(rh));
	ck_assert_uint_eq(rh.seq, seq);
	ck_assert_uint_eq(rh.len, 77);
	ck_assert_uint_eq(rh.pid, (uint32_t)pid);
	for (uint32_t i = 0; i < 77; i++)
		ck_assert_uint_eq(s->out[sizeof(rh) + i], pat(seq, i));
	sim_fini(s);
	free(s);
}
END_TEST

START_TEST(test_msgsize)
{
	struct sim *s = malloc(sizeof(*s));
	struct be_open_opts o;
	be_store *bs;
	uint8_t *big;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "ms", RING_CAP_MIN, RING_ON_FULL_BLOCK, UINT64_MAX);
	ck_assert_uint_eq(s->m.max_payload, RING_CAP_MIN / 4);
	ck_assert_int_eq(sim_append(s, s->m.max_payload + 1, 0), -EMSGSIZE);
	ck_assert_int_eq(sim_append(s, UINT32_MAX, 0), -EMSGSIZE);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->head), 0);
	ck_assert_int_eq(sim_append(s, s->m.max_payload, 0), 0);
	sim_drain(s);
	ck_assert_uint_eq(s->collected, 1);

	o = opts_for(s->inst, 0);
	ck_assert_int_eq(be_open("ms", &o, &bs), 0);
	ck_assert_uint_eq(be_max_payload(bs), RING_CAP_MIN / 4);
	big = calloc(1, RING_CAP_MIN);
	ck_assert_ptr_nonnull(big);
	ck_assert_int_eq(be_write(bs, big, RING_CAP_MIN / 4 + 1), -EMSGSIZE);
	ck_assert_int_eq(be_write(bs, big, (size_t)UINT32_MAX + 2), -EMSGSIZE);
	ck_assert_int_eq(be_write(bs, NULL, 5), -EINVAL);
	ck_assert_int_eq(be_write(NULL, big, 5), -EINVAL);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->next_seq), s->next_seq);
	ck_assert_int_eq(be_write(bs, big, RING_CAP_MIN / 4), 0);
	ck_assert_int_eq(be_write(bs, NULL, 0), 0);
	ck_assert_uint_eq(READ_ONCE(s->m.hdr->next_seq), s->next_seq + 2);
	free(big);
	WRITE_ONCE(s->m.hdr->durable_seq, s->next_seq + 2);
	ck_assert_int_eq(be_close(bs), 0);
	sim_fini(s);
	free(s);
}
END_TEST

/* A store of another type refuses raw records. */
START_TEST(test_wrong_type)
{
	struct ring_map m;
	struct be_open_opts o;
	char inst[64];
	be_store *bs;

	mkring(&m, inst, "lg", RING_CAP_MIN, BE_TYPE_LOG, RING_ON_FULL_BLOCK, UINT64_MAX);
	o = opts_for(inst, 0);
	ck_assert_int_eq(be_open("lg", &o, &bs), 0);
	ck_assert_int_eq(be_store_type(bs), BE_TYPE_LOG);
	ck_assert_int_eq(be_write(bs, "abc", 3), -EPROTOTYPE);
	ck_assert_uint_eq(READ_ONCE(m.hdr->head), 0);
	ck_assert_int_eq(be_close(bs), 0);
	tu_rmring(&m, inst, "lg");
}
END_TEST

START_TEST(test_doorbell)
{
	struct sim *s = malloc(sizeof(*s));
	struct ring_hdr *h;
	uint32_t gen0;
	uint64_t bells, size = rec_size(32), threshold = 1000;
	pid_t pid;
	int st;

	ck_assert_ptr_nonnull(s);
	sim_init(s, "db", 16384, RING_ON_FULL_DROP, threshold);
	h = s->m.hdr;
	gen0 = READ_ONCE(h->doorbell_gen);
	/* The daemon, asleep on the doorbell. */
	pid = tu_spawn();
	if (pid == 0) {
		int ret;

		do
			ret = futex_wait_until(&h->doorbell_gen, gen0, UINT64_MAX);
		while (ret == -EINTR || (ret == 0 && READ_ONCE(h->doorbell_gen) == gen0));
		_exit(ret == 0 ? 0 : 1);
	}

	for (int round = 0; round < 3; round++) {
		uint64_t below = (threshold - 1) / size; /* appends that stay below */

		bells = READ_ONCE(h->doorbells);
		gen0 = READ_ONCE(h->doorbell_gen);
		for (uint64_t i = 0; i < below; i++) {
			ck_assert_int_eq(sim_append(s, 32, 0), 0);
			ck_assert_msg(
				READ_ONCE(h->doorbells) == bells,
				"round %d: doorbell rung at %llu unflushed bytes", round,
				(unsigned long long)(READ_ONCE(h->head) - READ_ONCE(h->tail)));
			ck_assert_uint_eq(READ_ONCE(h->doorbell_gen), gen0);
		}
		/* This one takes the unflushed bytes over the threshold. */
		ck_assert_int_eq(sim_append(s, 32, 0), 0);
		ck_assert_uint_ge(READ_ONCE(h->head) - READ_ONCE(h->tail), threshold);
		ck_assert_uint_eq(READ_ONCE(h->doorbells), bells + 1);
		ck_assert_uint_eq(READ_ONCE(h->doorbell_gen), gen0 + 1);
		/* Further appends, already over it, do not ring again. */
		for (int i = 0; i < 5; i++)
			ck_assert_int_eq(sim_append(s, 32, 0), 0);
		ck_assert_uint_eq(READ_ONCE(h->doorbells), bells + 1);
		ck_assert_uint_eq(READ_ONCE(h->doorbell_gen), gen0 + 1);
		/* The daemon flushes; the writer's cached tail is now stale. */
		sim_drain(s);
		if (round == 0) {
			st = tu_wait_bounded(pid, 10000);
			tu_assert_exit0(st, "doorbell waiter");
		}
	}
	/* A big record that crosses it at once rings once. */
	bells = READ_ONCE(h->doorbells);
	ck_assert_int_eq(sim_append(s, 2000, 0), 0);
	ck_assert_uint_eq(READ_ONCE(h->doorbells), bells + 1);
	sim_drain(s);
	sim_fini(s);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------
 * be_flush without a daemon, and with the test as the daemon.
 */

START_TEST(test_flush)
{
	struct ring_map m;
	struct be_open_opts o;
	struct ring_hdr *h;
	char inst[64];
	be_store *bs;
	uint64_t seq, bells;
	pid_t pid;
	int st;

	mkring(&m, inst, "fl", RING_CAP_MIN, BE_TYPE_RAW, RING_ON_FULL_BLOCK, UINT64_MAX);
	h = m.hdr;
	o = opts_for(inst, 0);
	ck_assert_int_eq(be_open("fl", &o, &bs), 0);
	/* Nothing written: nothing to wait for. */
	ck_assert_int_eq(be_flush(bs, 0), 0);
	ck_assert_int_eq(be_flush(NULL, 0), -EINVAL);
	ck_assert_int_eq(be_flush(bs, -2), -EINVAL);

	ck_assert_int_eq(be_write(bs, "one", 3), 0);
	ck_assert_int_eq(be_write(bs, "two", 3), 0);
	seq = FIRST_SEQ + 1; /* the handle's last seq */
	bells = READ_ONCE(h->doorbells);
	ck_assert_int_eq(be_flush(bs, 100), -ETIMEDOUT);
	/* It asked for a flush up to its last record, and rang. */
	ck_assert_uint_ge(READ_ONCE(h->flush_req_seq), seq);
	ck_assert_uint_gt(READ_ONCE(h->doorbells), bells);
	ck_assert_int_eq(be_flush(bs, 0), -ETIMEDOUT);

	/* Durable up to (not including) its last record: still waiting. */
	store_release(&h->durable_seq, seq);
	futex_bump_wake(&h->durable_gen);
	ck_assert_int_eq(be_flush(bs, 100), -ETIMEDOUT);
	/* Past it: done. */
	store_release(&h->durable_seq, seq + 1);
	futex_bump_wake(&h->durable_gen);
	ck_assert_int_eq(be_flush(bs, 100), 0);
	ck_assert_int_eq(be_flush(bs, 0), 0);

	/* A writer that waits (no timeout) is woken by the durable_gen bump. */
	pid = tu_spawn();
	if (pid == 0) {
		struct be_open_opts co = opts_for(inst, 0);
		be_store *cs;

		if (be_open("fl", &co, &cs) || be_write(cs, "three", 5))
			_exit(2);
		_exit(be_flush(cs, -1) == 0 ? 0 : 1);
	}
	/* Its record is seq + 1: wait until it asks for that. */
	{
		uint64_t end = tu_now_ms() + (uint64_t)tu_bound(10000);

		while (READ_ONCE(h->flush_req_seq) < seq + 1) {
			ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "the flusher exited early");
			ck_assert_msg(tu_now_ms() < end, "the flusher never asked for a flush");
			tu_sleep_ms(1);
		}
	}
	ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
	store_release(&h->durable_seq, seq + 2);
	futex_bump_wake(&h->durable_gen);
	st = tu_wait_bounded(pid, 10000);
	tu_assert_exit0(st, "flush waiter");

	/* be_close of a handle whose records are durable: 0. */
	ck_assert_int_eq(be_close(bs), 0);
	/* And of one whose records are not: the flush's -ETIMEDOUT. */
	ck_assert_int_eq(be_open("fl", &o, &bs), 0);
	ck_assert_int_eq(be_write(bs, "four", 4), 0);
	ck_assert_int_eq(be_close(bs), -ETIMEDOUT);
	tu_rmring(&m, inst, "fl");
}
END_TEST

/* ------------------------------------------------------------------------ */

Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc;

	tc = tcase_create("names");
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("create_open");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_create_open);
	tcase_add_test(tc, test_create_exists);
	tcase_add_test(tc, test_create_removes_tmp);
	tcase_add_loop_test(tc, test_create_mode, 0, (int)(sizeof(modes) / sizeof(modes[0])));
	tcase_add_test(tc, test_create_invalid);
	tcase_add_test(tc, test_open_missing);
	tcase_add_test(tc, test_open_wait);
	tcase_add_loop_test(tc, test_open_damaged, 0, DMG_COUNT);
	tcase_add_test(tc, test_open_minor_version);
	tcase_add_test(tc, test_open_other_pidns);
	suite_add_tcase(s, tc);

	tc = tcase_create("append_collect");
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, test_wrap_every_offset);
	tcase_add_test(tc, test_every_length);
	tcase_add_loop_test(tc, test_bursts, 0, (int)(sizeof(burst_caps) / sizeof(burst_caps[0])));
	tcase_add_loop_test(tc, test_many_bursts, 0,
			    (int)(sizeof(burst_caps) / sizeof(burst_caps[0])));
	tcase_add_test(tc, test_many_refused);
	tcase_add_test(tc, test_many_block);
	tcase_add_test(tc, test_collect_cap);
	tcase_add_loop_test(tc, test_collect_damaged, 0, CR_COUNT);
	tcase_add_test(tc, test_collect_garbage);
	suite_add_tcase(s, tc);

	tc = tcase_create("full_size_doorbell");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_full_drop);
	tcase_add_test(tc, test_full_block_timeout);
	tcase_add_test(tc, test_full_block_wakes);
	tcase_add_test(tc, test_msgsize);
	tcase_add_test(tc, test_wrong_type);
	tcase_add_test(tc, test_doorbell);
	suite_add_tcase(s, tc);

	tc = tcase_create("flush");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_flush);
	suite_add_tcase(s, tc);
	return s;
}
