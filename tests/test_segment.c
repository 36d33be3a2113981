/*
 * test_segment.c - CRC32C and the segment format: batches, scans, names.
 *
 * Batches are built in memory by build_batch() below, then damaged on
 * purpose: every bit flipped, every truncation, wrong versions, records
 * that break one rule each (resealed, so only that rule can catch them).
 * Files live in a directory made under /tmp for each test case and removed
 * by the parent process after it, whether the tests passed or not.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw(); the Makefile defines it already */
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/crc32c.h"
#include "server/segment.h"
#include "shm/layout.h"

/* --- helpers ----------------------------------------------------------- */

static char base_dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Unchecked fixture: runs in the parent, so teardown runs even after a failure. */
static void base_setup(void)
{
	strcpy(base_dir, "/tmp/be-test-segment.XXXXXX");
	if (!mkdtemp(base_dir))
		base_dir[0] = '\0';
}

static void base_teardown(void)
{
	if (base_dir[0])
		rm_rf(base_dir);
}

/* A fresh directory for one test: its path in path[], an O_DIRECTORY fd returned. */
static int test_dir(char *path, size_t len)
{
	int fd;

	ck_assert_msg(base_dir[0], "mkdtemp under /tmp failed");
	snprintf(path, len, "%s/t.XXXXXX", base_dir);
	ck_assert_ptr_nonnull(mkdtemp(path));
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Deterministic pseudo-random bytes (xorshift), so failures repeat. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void fill_random(void *buf, size_t len)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)rng();
}

/* Payload length of record i in test batches: 0..40, so padding varies. */
static uint32_t test_len(uint64_t seq)
{
	return (uint32_t)(seq * 7 % 41);
}

/*
 * build_batch() - a sealed batch of @count records with seqs first_seq,
 * first_seq + seq_step, ... into buf (of cap bytes); payload bytes are a
 * function of seq and offset.  Returns the batch's size in bytes.
 */
static size_t build_batch_step(uint8_t *buf, size_t cap, uint64_t first_seq, uint32_t count,
			       uint64_t seq_step, uint64_t start_pos, uint64_t incarnation)
{
	struct seg_batch_hdr h;
	size_t off = SEG_BATCH_HDR_SIZE;
	uint64_t seq = first_seq;

	memset(&h, 0, sizeof(h));
	for (uint32_t i = 0; i < count; i++, seq += seq_step) {
		struct rec_hdr r = {
			.len = test_len(seq),
			.type = (uint16_t)(BE_TYPE_RAW + seq % 4),
			.seq = seq,
			.ts_ns = UINT64_C(1795741323123456789) + seq,
			.pid = 1000 + (uint32_t)i,
		};
		size_t size = rec_size(r.len);

		ck_assert_uint_le(off + size, cap);
		memset(buf + off, 0, size);
		memcpy(buf + off, &r, sizeof(r));
		for (uint32_t k = 0; k < r.len; k++)
			buf[off + sizeof(r) + k] = (uint8_t)(seq * 31 + k);
		off += size;
	}
	h.magic = SEG_BATCH_MAGIC;
	h.version = SEG_BATCH_VERSION;
	h.count = count;
	h.incarnation = incarnation;
	h.start_pos = start_pos;
	h.end_pos = start_pos + (off - SEG_BATCH_HDR_SIZE) + 8; /* as if a pad followed */
	h.first_seq = first_seq;
	h.last_seq = seq - seq_step;
	h.length = (uint32_t)(off - SEG_BATCH_HDR_SIZE);
	memcpy(buf, &h, sizeof(h));
	seg_batch_seal(buf);
	return off;
}

static size_t build_batch(uint8_t *buf, size_t cap, uint64_t first_seq, uint32_t count,
			  uint64_t start_pos)
{
	return build_batch_step(buf, cap, first_seq, count, 1, start_pos, 0x1234abcdu);
}

static struct seg_batch_hdr get_hdr(const uint8_t *buf)
{
	struct seg_batch_hdr h;

	memcpy(&h, buf, sizeof(h));
	return h;
}

static void put_hdr_sealed(uint8_t *buf, const struct seg_batch_hdr *h)
{
	memcpy(buf, h, sizeof(*h));
	seg_batch_seal(buf);
}

static void pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
}

/*
 * write_segment() - seg_create() then nb batches of 1..9 records, seqs
 * contiguous from first_seq.  Fills offs[] (batch offsets, nb + 1 entries:
 * the last is the end) and returns the fd (O_WRONLY).
 */
static int write_segment(int dirfd, uint64_t first_seq, int nb, uint64_t *offs)
{
	uint8_t buf[4096];
	uint64_t off = SEG_FILE_HDR_SIZE, seq = first_seq, pos = 4096;
	int fd;

	fd = seg_create(dirfd, first_seq, BE_TYPE_RAW, "teststore");
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < nb; i++) {
		uint32_t count = 1 + (uint32_t)i % 9;
		size_t n = build_batch(buf, sizeof(buf), seq, count, pos);

		pwrite_full(fd, buf, n, (off_t)off);
		offs[i] = off;
		off += n;
		seq += count;
		pos += n - SEG_BATCH_HDR_SIZE + 8;
	}
	offs[nb] = off;
	return fd;
}

static int open_seg(int dirfd, uint64_t first_seq)
{
	char name[SEG_NAME_LEN + 1];
	int fd;

	seg_name(name, first_seq);
	fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

struct scan_log {
	uint64_t offsets[64];
	uint64_t seqs[64]; /* first seq of each batch */
	int n;
	uint64_t bad_off[8], bad_len[8];
	int nbad;
	int stop_after; /* return 7 from the callback after this many, if > 0 */
};

static int log_batch(const struct seg_batch_ref *b, void *arg)
{
	struct scan_log *l = arg;
	struct rec_hdr r;

	ck_assert_int_lt(l->n, 64);
	ck_assert_ptr_eq(b->records, (const uint8_t *)b->hdr + SEG_BATCH_HDR_SIZE);
	memcpy(&r, b->records, sizeof(r));
	ck_assert_uint_eq(r.seq, b->hdr->first_seq);
	l->offsets[l->n] = b->offset;
	l->seqs[l->n] = b->hdr->first_seq;
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after ? 7 : 0;
}

static void log_bad(uint64_t offset, uint64_t len, void *arg)
{
	struct scan_log *l = arg;

	ck_assert_int_lt(l->nbad, 8);
	l->bad_off[l->nbad] = offset;
	l->bad_len[l->nbad] = len;
	l->nbad++;
}

/* --- CRC32C ------------------------------------------------------------ */

START_TEST(test_crc_vectors)
{
	uint8_t zeros[32], ones[32];

	memset(zeros, 0, sizeof(zeros));
	memset(ones, 0xff, sizeof(ones));
	ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c(0, zeros, 32), 0x8A9136AAu);
	ck_assert_uint_eq(crc32c_sw(0, zeros, 32), 0x8A9136AAu);
	ck_assert_uint_eq(crc32c(0, ones, 32), 0x62A8AB43u);
	ck_assert_uint_eq(crc32c_sw(0, ones, 32), 0x62A8AB43u);
	ck_assert_uint_eq(crc32c(0, "", 0), 0);
	ck_assert_uint_eq(crc32c(0x12345678u, "", 0), 0x12345678u);
	if (!crc32c_hw_available())
		printf("test_crc_vectors: no SSE4.2 here, hardware path not compared\n");
}
END_TEST

START_TEST(test_crc_chaining)
{
	static uint8_t buf[25353]; /* two rounds of the three-stream path and some */
	uint32_t whole, whole_sw;
	const size_t cuts[] = { 0,    1,    7,	   8,	  9,	 100,	4095,
				4096, 4097, 12288, 12289, 20000, 25352, 25353 };

	fill_random(buf, sizeof(buf));
	whole = crc32c(0, buf, sizeof(buf));
	whole_sw = crc32c_sw(0, buf, sizeof(buf));
	ck_assert_uint_eq(whole, whole_sw);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		size_t c = cuts[i];

		ck_assert_uint_eq(crc32c(crc32c(0, buf, c), buf + c, sizeof(buf) - c), whole);
		ck_assert_uint_eq(crc32c_sw(crc32c_sw(0, buf, c), buf + c, sizeof(buf) - c), whole);
	}
	/* Every split of a short buffer. */
	for (size_t c = 0; c <= 100; c++)
		ck_assert_uint_eq(crc32c(crc32c(0, buf, c), buf + c, 100 - c),
				  crc32c_sw(0, buf, 100));
}
END_TEST

START_TEST(test_crc_hw_sw_agree)
{
	static uint8_t buf[64 * 1024 + 16];

	fill_random(buf, sizeof(buf));
	for (size_t mis = 0; mis < 8; mis++)
		for (size_t len = 0; len <= 64; len++)
			ck_assert_msg(crc32c(0, buf + mis, len) == crc32c_sw(0, buf + mis, len),
				      "offset %zu length %zu", mis, len);
	/* Long buffers take the three-stream path: around its block sizes. */
	for (size_t mis = 0; mis < 8; mis++) {
		const size_t lens[] = {
			12287, 12288, 12289, 12288 + 8, 24576, 24577 + 5, 64 * 1024
		};

		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			ck_assert_msg(crc32c(0xdeadbeefu, buf + mis, lens[i]) ==
					      crc32c_sw(0xdeadbeefu, buf + mis, lens[i]),
				      "offset %zu length %zu", mis, lens[i]);
	}
}
END_TEST

/* --- batches ----------------------------------------------------------- */

START_TEST(test_batch_roundtrip)
{
	uint8_t buf[4096];
	size_t n = build_batch(buf, sizeof(buf), 100, 10, 4096);
	struct seg_batch_hdr h = get_hdr(buf);

	ck_assert_int_eq(seg_batch_check(buf, n), 0);
	ck_assert_int_eq(seg_batch_check(buf, sizeof(buf)), 0); /* more bytes are fine */
	ck_assert_uint_eq(h.count, 10);
	ck_assert_uint_eq(h.first_seq, 100);
	ck_assert_uint_eq(h.last_seq, 109);
	ck_assert_uint_eq(h.length % 8, 0);
	ck_assert_uint_ne(h.crc, 0);
	/* The crc covers the header with crc = 0, then the records. */
	h.crc = 0;
	ck_assert_uint_eq(crc32c(crc32c(0, &h, sizeof(h)), buf + SEG_BATCH_HDR_SIZE, h.length),
			  get_hdr(buf).crc);
	/* Gaps in seq are allowed. */
	n = build_batch_step(buf, sizeof(buf), 5, 4, 1000, 0, 1);
	ck_assert_int_eq(seg_batch_check(buf, n), 0);
}
END_TEST

START_TEST(test_batch_bitflips)
{
	uint8_t buf[2048] = { 0 };
	size_t n = build_batch(buf, sizeof(buf), 7, 9, 0);

	ck_assert_int_eq(seg_batch_check(buf, n), 0);
	for (size_t bit = 0; bit < 8 * n; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(seg_batch_check(buf, n) != 0, "flip of bit %zu not caught", bit);
		/* Even with room to spare (a longer length must still fail). */
		ck_assert_msg(seg_batch_check(buf, sizeof(buf)) != 0, "flip of bit %zu", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ck_assert_int_eq(seg_batch_check(buf, n), 0);
}
END_TEST

START_TEST(test_batch_truncated)
{
	uint8_t buf[2048];
	size_t n = build_batch(buf, sizeof(buf), 1, 6, 0);

	for (size_t avail = 0; avail < n; avail++)
		ck_assert_msg(seg_batch_check(buf, avail) == -ENODATA, "avail %zu", avail);
	ck_assert_int_eq(seg_batch_check(buf, n), 0);
}
END_TEST

START_TEST(test_batch_version)
{
	uint8_t buf[2048];
	size_t n = build_batch(buf, sizeof(buf), 1, 3, 0);
	struct seg_batch_hdr h = get_hdr(buf);

	h.version = SEG_BATCH_VERSION + 1;
	put_hdr_sealed(buf, &h);
	ck_assert_int_eq(seg_batch_check(buf, n), -EPROTO);
	h.version = 0;
	put_hdr_sealed(buf, &h);
	ck_assert_int_eq(seg_batch_check(buf, n), -EPROTO);
}
END_TEST

/* Header fields that break a rule, each resealed so that the crc is right. */
START_TEST(test_batch_bad_fields)
{
	uint8_t buf[2048] = { 0 };
	size_t n = build_batch(buf, sizeof(buf), 50, 5, 800);
	const struct seg_batch_hdr good = get_hdr(buf);
	struct seg_batch_hdr h;

#define EXPECT_BAD(stmt, err)                                                                    \
	do {                                                                                     \
		h = good;                                                                        \
		stmt;                                                                            \
		put_hdr_sealed(buf, &h);                                                         \
		ck_assert_msg(seg_batch_check(buf, sizeof(buf)) == (err), "%s accepted", #stmt); \
	} while (0)

	EXPECT_BAD(h.magic ^= 1, -EBADMSG);
	EXPECT_BAD(h.flags = 1, -EBADMSG);
	EXPECT_BAD(h.reserved = 1, -EBADMSG);
	EXPECT_BAD(h.count = 0, -EBADMSG);
	EXPECT_BAD(h.count = 4, -EBADMSG);
	EXPECT_BAD(h.count = 6, -EBADMSG);
	EXPECT_BAD(h.first_seq = 49, -EBADMSG);
	EXPECT_BAD(h.first_seq = 51, -EBADMSG);
	EXPECT_BAD(h.last_seq = 53, -EBADMSG);
	EXPECT_BAD(h.last_seq = 55, -EBADMSG);
	EXPECT_BAD(h.length -= 8, -EBADMSG);  /* last record no longer fits */
	EXPECT_BAD(h.length += 4, -EBADMSG);  /* not a multiple of 8 */
	EXPECT_BAD(h.length += 32, -EBADMSG); /* trailing bytes that are no record */
	/* Too long to seal over this buffer: the header check alone must refuse it. */
	h = good;
	h.length = SEG_BATCH_MAX + 8;
	memcpy(buf, &h, sizeof(h));
	ck_assert_int_eq(seg_batch_check(buf, sizeof(buf)), -EBADMSG);
	EXPECT_BAD(h.end_pos = h.start_pos, -EBADMSG);
	EXPECT_BAD(h.end_pos = h.start_pos + h.length - 8, -EBADMSG);
	EXPECT_BAD(h.start_pos = h.end_pos + 1, -EBADMSG);
#undef EXPECT_BAD
	/* end - start may exceed length (ring padding): fine. */
	h = good;
	h.end_pos += 4096;
	put_hdr_sealed(buf, &h);
	ck_assert_int_eq(seg_batch_check(buf, n), 0);
}
END_TEST

/* Records that break a rule, resealed. */
START_TEST(test_batch_bad_records)
{
	uint8_t buf[2048];
	size_t n = build_batch(buf, sizeof(buf), 50, 5, 0);
	uint8_t good[2048];
	struct rec_hdr r0, r1;
	size_t off1;

	memcpy(good, buf, n);
	memcpy(&r0, buf + SEG_BATCH_HDR_SIZE, sizeof(r0));
	off1 = SEG_BATCH_HDR_SIZE + rec_size(r0.len);
	memcpy(&r1, buf + off1, sizeof(r1));

#define EXPECT_BAD_REC(off, rec, stmt)                                                    \
	do {                                                                              \
		struct rec_hdr t = (rec);                                                 \
		memcpy(buf, good, n);                                                     \
		stmt;                                                                     \
		memcpy(buf + (off), &t, sizeof(t));                                       \
		seg_batch_seal(buf);                                                      \
		ck_assert_msg(seg_batch_check(buf, n) == -EBADMSG, "%s accepted", #stmt); \
	} while (0)

	EXPECT_BAD_REC(off1, r1, t.type = REC_TYPE_PAD);
	EXPECT_BAD_REC(off1, r1, t.type = 0);
	EXPECT_BAD_REC(off1, r1, t.type = BE_TYPE_PROCESS + 1);
	EXPECT_BAD_REC(off1, r1, t.seq = 50);	       /* equal to the previous */
	EXPECT_BAD_REC(off1, r1, t.seq = 49);	       /* below it */
	EXPECT_BAD_REC(off1, r1, t.len = (uint32_t)n); /* beyond the batch */
	EXPECT_BAD_REC(off1, r1, t.len = UINT32_MAX);
	EXPECT_BAD_REC(SEG_BATCH_HDR_SIZE, r0, t.seq = 49); /* first != first_seq */
#undef EXPECT_BAD_REC
	memcpy(buf, good, n);
	ck_assert_int_eq(seg_batch_check(buf, n), 0);
}
END_TEST

/* --- file header ------------------------------------------------------- */

START_TEST(test_file_hdr)
{
	struct seg_file_hdr h, t;
	char long_name[100];

	seg_file_hdr_init(&h, 42, BE_TYPE_LOG, "logs");
	ck_assert_int_eq(seg_file_hdr_check(&h), 0);
	ck_assert_uint_eq(h.magic, SEG_FILE_MAGIC);
	ck_assert_mem_eq(&h.magic, "BENFSEG1", 8);
	ck_assert_uint_eq(h.first_seq, 42);
	ck_assert_str_eq(h.store_name, "logs");
	ck_assert_uint_gt(h.created_ns, 0);

	for (size_t bit = 0; bit < 8 * sizeof(h); bit++) {
		t = h;
		((uint8_t *)&t)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(seg_file_hdr_check(&t) != 0, "flip of bit %zu", bit);
	}
	t = h;
	t.version = SEG_FILE_VERSION + 1;
	t.crc = 0;
	t.crc = crc32c(0, &t, sizeof(t));
	ck_assert_int_eq(seg_file_hdr_check(&t), -EPROTO);
	t = h;
	memset(t.store_name, 'x', sizeof(t.store_name));
	t.crc = 0;
	t.crc = crc32c(0, &t, sizeof(t));
	ck_assert_int_eq(seg_file_hdr_check(&t), -EBADMSG);
	t = h;
	t.store_type = 0;
	t.crc = 0;
	t.crc = crc32c(0, &t, sizeof(t));
	ck_assert_int_eq(seg_file_hdr_check(&t), -EBADMSG);

	/* A name too long is cut, still terminated. */
	memset(long_name, 'n', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	seg_file_hdr_init(&h, 1, BE_TYPE_RAW, long_name);
	ck_assert_int_eq(seg_file_hdr_check(&h), 0);
	ck_assert_uint_eq(strlen(h.store_name), sizeof(h.store_name) - 1);
}
END_TEST

/* --- names and listing --------------------------------------------------- */

START_TEST(test_names)
{
	char name[SEG_NAME_LEN + 1];
	uint64_t v = 0;

	seg_name(name, 4294967296u);
	ck_assert_str_eq(name, "00000000004294967296.seg");
	ck_assert_int_eq(seg_parse_name(name, &v), 0);
	ck_assert_uint_eq(v, 4294967296u);
	seg_name(name, UINT64_MAX);
	ck_assert_str_eq(name, "18446744073709551615.seg");
	ck_assert_int_eq(seg_parse_name(name, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	ck_assert_int_eq(seg_parse_name("00000000000000000000.seg", &v), 0);
	ck_assert_uint_eq(v, 0);

	v = 77;
	ck_assert_int_eq(seg_parse_name("123.seg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("0000000000000000000a.seg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("-0000000000000000001.seg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name(" 0000000000000000001.seg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("000000000000000000001.seg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("00000000000000000001.seg.tmp", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("00000000000000000001.SEG", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("00000000000000000001", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("00000000000000000001xseg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("18446744073709551616.seg", &v), -EINVAL);
	ck_assert_int_eq(seg_parse_name("99999999999999999999.seg", &v), -EINVAL);
	ck_assert_uint_eq(v, 77); /* untouched on failure */
}
END_TEST

START_TEST(test_list)
{
	const uint64_t seqs[] = { 4294967296u, 1, 0, UINT64_MAX, 99, 100, 8589934592u };
	const char *others[] = { "123.seg",
				 "0000000000000000000a.seg",
				 "000000000000000000001.seg",
				 "00000000000000000005.seg.tmp",
				 "99999999999999999999.seg",
				 "notes.txt" };
	const size_t ns = sizeof(seqs) / sizeof(seqs[0]);
	char path[256], name[SEG_NAME_LEN + 1];
	uint64_t *list = NULL;
	int dirfd, fd, n;

	dirfd = test_dir(path, sizeof(path));
	n = seg_list(dirfd, &list);
	ck_assert_int_eq(n, 0);
	free(list);

	for (size_t i = 0; i < ns; i++) {
		seg_name(name, seqs[i]);
		fd = openat(dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		fd = openat(dirfd, others[i], O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	/* A directory with a segment's name is not a segment. */
	ck_assert_int_eq(mkdirat(dirfd, "00000000000000000007.seg", 0700), 0);

	/* The caller's offset may be anywhere: read the directory to its end first. */
	fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	{
		DIR *d = fdopendir(fd);

		ck_assert_ptr_nonnull(d);
		while (readdir(d))
			;
		closedir(d);
	}
	list = NULL;
	n = seg_list(dirfd, &list);
	ck_assert_int_eq(n, (int)ns);
	ck_assert_uint_eq(list[0], 0);
	ck_assert_uint_eq(list[1], 1);
	ck_assert_uint_eq(list[2], 99);
	ck_assert_uint_eq(list[3], 100);
	ck_assert_uint_eq(list[4], 4294967296u);
	ck_assert_uint_eq(list[5], 8589934592u);
	ck_assert_uint_eq(list[6], UINT64_MAX);
	free(list);
	/* dirfd still usable: seg_list() worked on a copy. */
	ck_assert_int_eq(fcntl(dirfd, F_GETFD), FD_CLOEXEC);
	ck_assert_int_eq(seg_list(-1, &list), -EBADF);
	close(dirfd);
	rm_rf(path);
}
END_TEST

/* --- files ------------------------------------------------------------- */

START_TEST(test_create_and_scan)
{
	char path[256], name[SEG_NAME_LEN + 1];
	uint64_t offs[13];
	struct seg_scan_result res;
	struct scan_log log = { 0 };
	struct seg_file_hdr fh;
	struct stat st;
	int dirfd, fd, rfd;
	uint64_t seq;
	mode_t mask = umask(022);

	umask(mask);
	dirfd = test_dir(path, sizeof(path));
	fd = write_segment(dirfd, 1000, 12, offs);
	ck_assert_int_eq(fcntl(fd, F_GETFD), FD_CLOEXEC);
	ck_assert_int_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY);
	close(fd);

	seg_name(name, 1000);
	ck_assert_int_eq(fstatat(dirfd, name, &st, 0), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0640 & ~mask);

	rfd = open_seg(dirfd, 1000);
	ck_assert_int_eq(pread(rfd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	ck_assert_int_eq(seg_file_hdr_check(&fh), 0);
	ck_assert_uint_eq(fh.first_seq, 1000);
	ck_assert_uint_eq(fh.store_type, BE_TYPE_RAW);
	ck_assert_str_eq(fh.store_name, "teststore");

	ck_assert_int_eq(seg_scan(rfd, &res, log_batch, log_bad, &log), 0);
	ck_assert_uint_eq(res.file_size, offs[12]);
	ck_assert_uint_eq(res.valid_end, offs[12]);
	ck_assert_uint_eq(res.batches, 12);
	/* Batches of 1..9 records: 1+..+9 + 1+2+3 */
	ck_assert_uint_eq(res.records, 45 + 6);
	ck_assert_uint_eq(res.first_seq, 1000);
	ck_assert_uint_eq(res.last_seq, 1000 + 51 - 1);
	ck_assert_uint_eq(res.last_incarnation, 0x1234abcdu);
	ck_assert_uint_eq(res.last_end_pos - res.last_start_pos,
			  offs[12] - offs[11] - SEG_BATCH_HDR_SIZE + 8);
	ck_assert_uint_eq(res.corrupt, 0);
	ck_assert_uint_eq(res.torn_bytes, 0);
	ck_assert_int_eq(log.n, 12);
	ck_assert_int_eq(log.nbad, 0);
	seq = 1000;
	for (int i = 0; i < 12; i++) {
		ck_assert_uint_eq(log.offsets[i], offs[i]);
		ck_assert_uint_eq(log.seqs[i], seq);
		seq += 1 + (uint64_t)i % 9;
	}

	/* A non-zero return from the callback stops the scan and comes back. */
	memset(&log, 0, sizeof(log));
	log.stop_after = 3;
	ck_assert_int_eq(seg_scan(rfd, &res, log_batch, NULL, &log), 7);
	ck_assert_int_eq(log.n, 3);
	close(rfd);

	/* An empty segment: header only. */
	fd = seg_create(dirfd, 5000, BE_TYPE_METRIC, "m");
	ck_assert_int_ge(fd, 0);
	close(fd);
	rfd = open_seg(dirfd, 5000);
	ck_assert_int_eq(seg_scan(rfd, &res, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(res.file_size, SEG_FILE_HDR_SIZE);
	ck_assert_uint_eq(res.valid_end, SEG_FILE_HDR_SIZE);
	ck_assert_uint_eq(res.batches, 0);
	ck_assert_uint_eq(res.first_seq, 0);
	ck_assert_uint_eq(res.last_seq, 0);
	ck_assert_uint_eq(res.torn_bytes, 0);
	close(rfd);
	close(dirfd);
	rm_rf(path);
}
END_TEST

START_TEST(test_scan_bad_file_hdr)
{
	char path[256];
	uint64_t offs[4];
	struct seg_scan_result res;
	struct seg_file_hdr fh;
	int dirfd, fd;

	dirfd = test_dir(path, sizeof(path));
	close(write_segment(dirfd, 1, 3, offs));
	fd = open_seg(dirfd, 1);
	ck_assert_int_eq(pread(fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));

	/* A flipped bit in the file header. */
	fh.created_ns ^= 1;
	pwrite_full(fd, &fh, sizeof(fh), 0);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), -EBADMSG);
	/* Another version. */
	fh.created_ns ^= 1;
	fh.version = 2;
	fh.crc = 0;
	fh.crc = crc32c(0, &fh, sizeof(fh));
	pwrite_full(fd, &fh, sizeof(fh), 0);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), -EPROTO);
	/* Shorter than a header. */
	ck_assert_int_eq(ftruncate(fd, 100), 0);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), -EBADMSG);
	ck_assert_uint_eq(res.file_size, 100);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), -EBADMSG);
	close(fd);
	/* A directory is no segment. */
	ck_assert_int_eq(seg_scan(dirfd, &res, NULL, NULL, NULL), -EISDIR);
	close(dirfd);
	rm_rf(path);
}
END_TEST

START_TEST(test_scan_torn_tail)
{
	char path[256];
	uint64_t offs[6];
	struct seg_scan_result res;
	struct scan_log log;
	uint8_t junk[700];
	int dirfd, fd;

	dirfd = test_dir(path, sizeof(path));
	close(write_segment(dirfd, 1, 5, offs));
	fd = open_seg(dirfd, 1);

	/* Cut inside the last batch, in its header and in its records. */
	for (uint64_t cut = offs[4] + 1; cut < offs[5]; cut += 5) {
		ck_assert_int_eq(ftruncate(fd, (off_t)cut), 0);
		memset(&log, 0, sizeof(log));
		ck_assert_int_eq(seg_scan(fd, &res, log_batch, log_bad, &log), 0);
		ck_assert_uint_eq(res.batches, 4);
		ck_assert_uint_eq(res.valid_end, offs[4]);
		ck_assert_uint_eq(res.torn_bytes, cut - offs[4]);
		ck_assert_uint_eq(res.file_size, cut);
		ck_assert_uint_eq(res.corrupt, 0);
		ck_assert_int_eq(log.nbad, 0);
		ck_assert_int_eq(log.n, 4);
	}
	/* Cut exactly at a batch boundary: no tail. */
	ck_assert_int_eq(ftruncate(fd, (off_t)offs[4]), 0);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(res.torn_bytes, 0);
	ck_assert_uint_eq(res.batches, 4);

	/* Garbage after the last batch, some of it looking like a batch header. */
	fill_random(junk, sizeof(junk));
	for (size_t i = 0; i + 4 <= sizeof(junk); i += 64) {
		uint32_t m = SEG_BATCH_MAGIC;

		memcpy(junk + i, &m, sizeof(m));
	}
	pwrite_full(fd, junk, sizeof(junk), (off_t)offs[4]);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(res.batches, 4);
	ck_assert_uint_eq(res.valid_end, offs[4]);
	ck_assert_uint_eq(res.torn_bytes, sizeof(junk));
	ck_assert_uint_eq(res.corrupt, 0);

	/* A whole batch of zeros at the end (power loss after the size update). */
	ck_assert_int_eq(ftruncate(fd, (off_t)offs[4]), 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)offs[5]), 0);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(res.batches, 4);
	ck_assert_uint_eq(res.torn_bytes, offs[5] - offs[4]);
	close(fd);
	close(dirfd);
	rm_rf(path);
}
END_TEST

START_TEST(test_scan_corrupt_middle)
{
	char path[256];
	uint64_t offs[7];
	struct seg_scan_result res;
	struct scan_log log = { 0 };
	uint8_t byte;
	int dirfd, fd;

	dirfd = test_dir(path, sizeof(path));
	close(write_segment(dirfd, 1, 6, offs));
	fd = open_seg(dirfd, 1);

	/* Flip a bit in the records of batch 2. */
	ck_assert_int_eq(pread(fd, &byte, 1, (off_t)offs[2] + 70), 1);
	byte ^= 0x10;
	pwrite_full(fd, &byte, 1, (off_t)offs[2] + 70);

	ck_assert_int_eq(seg_scan(fd, &res, log_batch, log_bad, &log), 0);
	ck_assert_uint_eq(res.corrupt, 1);
	ck_assert_uint_eq(res.first_corrupt_offset, offs[2]);
	ck_assert_uint_eq(res.batches, 5);
	ck_assert_uint_eq(res.records, 1 + 2 + 4 + 5 + 6);
	ck_assert_uint_eq(res.torn_bytes, 0);
	ck_assert_uint_eq(res.valid_end, offs[6]);
	ck_assert_uint_eq(res.first_seq, 1);
	ck_assert_uint_eq(res.last_seq, 21);
	ck_assert_int_eq(log.nbad, 1);
	ck_assert_uint_eq(log.bad_off[0], offs[2]);
	ck_assert_uint_eq(log.bad_len[0], offs[3] - offs[2]);
	ck_assert_int_eq(log.n, 5);
	ck_assert_uint_eq(log.offsets[2], offs[3]);
	ck_assert_uint_eq(log.seqs[2], 7);

	/* A second damaged batch (in its header) and a torn tail besides. */
	ck_assert_int_eq(pread(fd, &byte, 1, (off_t)offs[4] + 3), 1);
	byte ^= 0x01;
	pwrite_full(fd, &byte, 1, (off_t)offs[4] + 3);
	pwrite_full(fd, "torn tail, 24 bytes....", 24, (off_t)offs[6]);
	memset(&log, 0, sizeof(log));
	ck_assert_int_eq(seg_scan(fd, &res, log_batch, log_bad, &log), 0);
	ck_assert_uint_eq(res.corrupt, 2);
	ck_assert_uint_eq(res.first_corrupt_offset, offs[2]);
	ck_assert_uint_eq(res.batches, 4);
	ck_assert_uint_eq(res.valid_end, offs[6]);
	ck_assert_uint_eq(res.torn_bytes, 24);
	ck_assert_uint_eq(res.last_seq, 21);
	ck_assert_int_eq(log.nbad, 2);
	ck_assert_uint_eq(log.bad_off[1], offs[4]);
	ck_assert_uint_eq(log.bad_len[1], offs[5] - offs[4]);

	/* The last batch damaged too: what follows the last good one is a tail. */
	ck_assert_int_eq(pread(fd, &byte, 1, (off_t)offs[5] + 100), 1);
	byte ^= 0x80;
	pwrite_full(fd, &byte, 1, (off_t)offs[5] + 100);
	memset(&log, 0, sizeof(log));
	ck_assert_int_eq(seg_scan(fd, &res, log_batch, log_bad, &log), 0);
	ck_assert_uint_eq(res.corrupt, 1);
	ck_assert_uint_eq(res.batches, 3);
	ck_assert_uint_eq(res.valid_end, offs[4]);
	ck_assert_uint_eq(res.torn_bytes, offs[6] + 24 - offs[4]);
	ck_assert_uint_eq(res.last_seq, 10);
	close(fd);
	close(dirfd);
	rm_rf(path);
}
END_TEST

/* Resync is 8-aligned and byte-exact: short junk between batches is found as such. */
START_TEST(test_scan_resync)
{
	char path[256];
	uint8_t buf[4096], junk[40];
	struct seg_scan_result res;
	struct scan_log log = { 0 };
	uint64_t off = SEG_FILE_HDR_SIZE, b1, b2;
	size_t n;
	int dirfd, fd;

	dirfd = test_dir(path, sizeof(path));
	fd = seg_create(dirfd, 1, BE_TYPE_RAW, "s");
	ck_assert_int_ge(fd, 0);
	memset(junk, 0xa5, sizeof(junk));
	n = build_batch(buf, sizeof(buf), 1, 3, 0);
	pwrite_full(fd, buf, n, (off_t)off);
	off += n;
	pwrite_full(fd, junk, 8, (off_t)off);
	off += 8;
	b1 = off;
	n = build_batch(buf, sizeof(buf), 4, 2, 1000);
	pwrite_full(fd, buf, n, (off_t)off);
	off += n;
	pwrite_full(fd, junk, 40, (off_t)off);
	off += 40;
	b2 = off;
	n = build_batch(buf, sizeof(buf), 6, 1, 2000);
	pwrite_full(fd, buf, n, (off_t)off);
	off += n;
	close(fd);

	fd = open_seg(dirfd, 1);
	ck_assert_int_eq(seg_scan(fd, &res, log_batch, log_bad, &log), 0);
	ck_assert_uint_eq(res.batches, 3);
	ck_assert_uint_eq(res.records, 6);
	ck_assert_uint_eq(res.corrupt, 2);
	ck_assert_uint_eq(res.first_corrupt_offset, b1 - 8);
	ck_assert_uint_eq(res.valid_end, off);
	ck_assert_uint_eq(res.torn_bytes, 0);
	ck_assert_uint_eq(res.last_start_pos, 2000);
	ck_assert_int_eq(log.nbad, 2);
	ck_assert_uint_eq(log.bad_off[0], b1 - 8);
	ck_assert_uint_eq(log.bad_len[0], 8);
	ck_assert_uint_eq(log.bad_off[1], b2 - 40);
	ck_assert_uint_eq(log.bad_len[1], 40);
	ck_assert_uint_eq(log.offsets[1], b1);
	ck_assert_uint_eq(log.offsets[2], b2);
	close(fd);
	close(dirfd);
	rm_rf(path);
}
END_TEST

START_TEST(test_create_existing)
{
	char path[256], name[SEG_NAME_LEN + 1];
	uint64_t offs[3];
	struct seg_scan_result res;
	struct seg_file_hdr fh;
	uint8_t junk[300];
	int dirfd, fd;

	dirfd = test_dir(path, sizeof(path));
	seg_name(name, 10);

	/* Holds valid batches: refused, left alone. */
	close(write_segment(dirfd, 10, 2, offs));
	ck_assert_int_eq(seg_create(dirfd, 10, BE_TYPE_RAW, "s"), -EEXIST);
	fd = open_seg(dirfd, 10);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(res.batches, 2);

	/* A damaged file header does not make its batches disposable. */
	ck_assert_int_eq(pread(fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	fh.magic ^= 1;
	pwrite_full(fd, &fh, sizeof(fh), 0);
	ck_assert_int_eq(seg_create(dirfd, 10, BE_TYPE_RAW, "s"), -EEXIST);

	/* Only a header and a torn batch: replaced. */
	fh.magic ^= 1;
	pwrite_full(fd, &fh, sizeof(fh), 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)offs[0] + 20), 0);
	close(fd);
	fd = seg_create(dirfd, 10, BE_TYPE_LOG, "replaced");
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = open_seg(dirfd, 10);
	ck_assert_int_eq(seg_scan(fd, &res, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(res.file_size, SEG_FILE_HDR_SIZE);
	ck_assert_int_eq(pread(fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	ck_assert_str_eq(fh.store_name, "replaced");
	close(fd);

	/* Garbage or nothing at all: replaced. */
	fill_random(junk, sizeof(junk));
	fd = open_seg(dirfd, 10);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	pwrite_full(fd, junk, sizeof(junk), 0);
	close(fd);
	fd = seg_create(dirfd, 10, BE_TYPE_RAW, "s");
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = open_seg(dirfd, 10);
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	close(fd);
	fd = seg_create(dirfd, 10, BE_TYPE_RAW, "s");
	ck_assert_int_ge(fd, 0);
	close(fd);

	/* Another version's file is never ours to replace. */
	fd = open_seg(dirfd, 10);
	ck_assert_int_eq(pread(fd, &fh, sizeof(fh), 0), (ssize_t)sizeof(fh));
	fh.version = 2;
	fh.crc = 0;
	fh.crc = crc32c(0, &fh, sizeof(fh));
	pwrite_full(fd, &fh, sizeof(fh), 0);
	close(fd);
	ck_assert_int_eq(seg_create(dirfd, 10, BE_TYPE_RAW, "s"), -EEXIST);

	/* Nor is a directory of that name. */
	seg_name(name, 11);
	ck_assert_int_eq(mkdirat(dirfd, name, 0700), 0);
	ck_assert_int_lt(seg_create(dirfd, 11, BE_TYPE_RAW, "s"), 0);
	ck_assert_int_eq(fstatat(dirfd, name, &(struct stat){ 0 }, 0), 0);
	close(dirfd);
	rm_rf(path);
}
END_TEST

Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc;

	tc = tcase_create("crc32c");
	tcase_add_test(tc, test_crc_vectors);
	tcase_add_test(tc, test_crc_chaining);
	tcase_add_test(tc, test_crc_hw_sw_agree);
	suite_add_tcase(s, tc);

	tc = tcase_create("batch");
	tcase_add_test(tc, test_batch_roundtrip);
	tcase_add_test(tc, test_batch_bitflips);
	tcase_add_test(tc, test_batch_truncated);
	tcase_add_test(tc, test_batch_version);
	tcase_add_test(tc, test_batch_bad_fields);
	tcase_add_test(tc, test_batch_bad_records);
	tcase_add_test(tc, test_file_hdr);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_create_and_scan);
	tcase_add_test(tc, test_scan_bad_file_hdr);
	tcase_add_test(tc, test_scan_torn_tail);
	tcase_add_test(tc, test_scan_corrupt_middle);
	tcase_add_test(tc, test_scan_resync);
	tcase_add_test(tc, test_create_existing);
	suite_add_tcase(s, tc);
	return s;
}
