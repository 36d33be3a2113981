/*
 * fuzz_segment.c - the segment reader that be-read and recovery share
 * (server/segment.c: seg_batch_check, seg_scan) on arbitrary files.
 *
 * Input: three control bytes, then the file image.
 *   byte 0, flags:
 *     bit 0  recompute the file header's CRC (so that the other fields count)
 *     bit 1  force the file header's magic, version and size first
 *     bit 2  fix up batches: walk them from offset 128 by their length and,
 *            for each one the mask picks, make the header agree with the
 *            records (magic, version, count, first/last seq, positions)
 *     bit 3  seal the batches the mask picks (a valid CRC)
 *     bit 4  print the records of valid batches as JSON, else as text
 *   bytes 1-2, mask: batch i is fixed / sealed when bit (i % 16) is set
 * CRCs are beyond a fuzzer's reach; bits 0, 2 and 3 let it make valid
 * batches next to damaged ones, which is what the scan is about.
 *
 * What is checked:
 *  - seg_batch_check() on the bytes at offset 128, copied into a buffer of
 *    exactly their size: never a read past it; 0 only for a batch whose
 *    records walk.
 *  - seg_scan() over a memfd holding the image: the batches reported are in
 *    file order, do not overlap, each passes seg_batch_check() again, and
 *    their records are printed as be-read prints them; the damaged regions
 *    lie between them; the totals agree with the callbacks.
 *  - recovery, as recover_disk() does it: cut the torn tail (ftruncate to
 *    valid_end) and scan again: the same batches, corruption and seqs, and
 *    no torn bytes.  Then write the daemon's next batch at valid_end: a
 *    third scan must find it as the last batch.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/crc32c.h"
#include "server/recfmt.h"
#include "server/segment.h"
#include "shm/layout.h"
#include "tests/fuzz/fuzz_util.h"

#define F_FILE_CRC   0x01
#define F_FILE_FORCE 0x02
#define F_FIXUP	     0x04
#define F_SEAL	     0x08
#define F_JSON	     0x10

static int memfd = -1;

/* The image into the memfd, replacing what was there. */
static void put_file(const uint8_t *p, size_t n)
{
	size_t off = 0;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-segment", MFD_CLOEXEC);
		FUZZ_ASSERT(memfd >= 0);
	}
	FUZZ_ASSERT(ftruncate(memfd, 0) == 0);
	while (off < n) {
		ssize_t w = pwrite(memfd, p + off, n - off, (off_t)off);

		FUZZ_ASSERT(w > 0);
		off += (size_t)w;
	}
}

/* ------------------------------------------------------------------------
 * Making the image more valid than a fuzzer could.
 */

static void fix_file_hdr(uint8_t *img, size_t n, uint8_t flags)
{
	struct seg_file_hdr fh;

	if (n < SEG_FILE_HDR_SIZE || !(flags & (F_FILE_CRC | F_FILE_FORCE)))
		return;
	memcpy(&fh, img, sizeof(fh));
	if (flags & F_FILE_FORCE) {
		fh.magic = SEG_FILE_MAGIC;
		fh.version = SEG_FILE_VERSION;
		fh.hdr_size = SEG_FILE_HDR_SIZE;
	}
	if (flags & F_FILE_CRC) {
		/* As segment.c computes it: the header with crc = 0. */
		fh.crc = 0;
		fh.crc = crc32c(0, &fh, sizeof(fh));
	}
	memcpy(img, &fh, sizeof(fh));
}

/*
 * fix_batch() - make the header of the batch at b (room bytes there, the
 * header included) agree with its records, as far as they walk.
 */
static void fix_batch(uint8_t *b, size_t room)
{
	struct seg_batch_hdr h;
	uint64_t off = 0, count = 0, first = 0, last = 0;
	const uint8_t *rec;

	memcpy(&h, b, sizeof(h));
	h.magic = SEG_BATCH_MAGIC;
	h.version = SEG_BATCH_VERSION;
	h.flags = 0;
	h.reserved = 0;
	if (h.length > room - SEG_BATCH_HDR_SIZE || h.length % REC_ALIGN)
		h.length = (uint32_t)((room - SEG_BATCH_HDR_SIZE) & ~(size_t)(REC_ALIGN - 1));
	rec = b + SEG_BATCH_HDR_SIZE;
	while (off + sizeof(struct rec_hdr) <= h.length) {
		struct rec_hdr r;
		uint64_t sz;

		memcpy(&r, rec + off, sizeof(r));
		sz = rec_size(r.len);
		if (sz > h.length - off)
			break;
		if (!count)
			first = r.seq;
		last = r.seq;
		count++;
		off += sz;
	}
	if (count) {
		h.length = (uint32_t)off; /* what walks */
		h.count = (uint32_t)count;
		h.first_seq = first;
		h.last_seq = last;
	}
	if (h.start_pos >= h.end_pos || h.end_pos - h.start_pos < h.length) {
		h.start_pos &= (UINT64_C(1) << 62) - 1;
		h.end_pos = h.start_pos + h.length + 8;
	}
	memcpy(b, &h, sizeof(h));
}

static void fix_batches(uint8_t *img, size_t n, uint8_t flags, uint16_t mask)
{
	size_t off = SEG_FILE_HDR_SIZE;

	if (!(flags & (F_FIXUP | F_SEAL)))
		return;
	for (unsigned i = 0; off + SEG_BATCH_HDR_SIZE <= n; i++) {
		struct seg_batch_hdr h;
		int pick = mask >> (i % 16) & 1;

		if ((flags & F_FIXUP) && pick)
			fix_batch(img + off, n - off);
		memcpy(&h, img + off, sizeof(h));
		if (h.length > n - off - SEG_BATCH_HDR_SIZE)
			break;
		if ((flags & F_SEAL) && pick)
			seg_batch_seal(img + off);
		off += SEG_BATCH_HDR_SIZE + h.length;
	}
}

/* ------------------------------------------------------------------------
 * The scan.
 */

struct scan_log {
	uint64_t batches, records;
	uint64_t next_off; /* where the last valid batch ended */
	uint64_t bad_calls, bad_bytes;
	uint64_t last_bad_end;
	uint64_t first_bad;
	uint64_t last_seq;
	uint64_t size;
	int json;
	int format; /* print the records (the first scan only) */
	struct recfmt *f;
};

static void check_records(const struct seg_batch_hdr *h, const uint8_t *recs, struct scan_log *l)
{
	uint64_t off = 0, n = 0;

	while (off < h->length) {
		struct rec_hdr r;

		FUZZ_ASSERT(h->length - off >= sizeof(r));
		memcpy(&r, recs + off, sizeof(r));
		FUZZ_ASSERT(r.type >= BE_TYPE_RAW && r.type <= BE_TYPE_PROCESS);
		FUZZ_ASSERT(rec_size(r.len) <= h->length - off);
		if (l->format) {
			int ret = recfmt_record(l->f, &r, recs + off + sizeof(r));

			FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
			l->f->out.len = 0; /* be-read drains it */
		}
		off += rec_size(r.len);
		n++;
	}
	FUZZ_ASSERT(n == h->count);
}

static int on_batch(const struct seg_batch_ref *b, void *arg)
{
	struct scan_log *l = arg;
	const struct seg_batch_hdr *h = b->hdr;

	FUZZ_ASSERT(b->offset >= l->next_off);
	FUZZ_ASSERT(b->offset % 8 == 0);
	FUZZ_ASSERT(b->offset + SEG_BATCH_HDR_SIZE + h->length <= l->size);
	FUZZ_ASSERT(b->records == (const uint8_t *)h + SEG_BATCH_HDR_SIZE);
	FUZZ_ASSERT(seg_batch_check(h, SEG_BATCH_HDR_SIZE + h->length) == 0);
	/* Damage found before this batch ends before it. */
	FUZZ_ASSERT(l->last_bad_end <= b->offset);
	if (l->batches)
		FUZZ_ASSERT(h->first_seq > l->last_seq);
	check_records(h, b->records, l);
	l->batches++;
	l->records += h->count;
	l->last_seq = h->last_seq;
	l->next_off = b->offset + SEG_BATCH_HDR_SIZE + h->length;
	return 0;
}

static void on_bad(uint64_t offset, uint64_t len, void *arg)
{
	struct scan_log *l = arg;

	FUZZ_ASSERT(len > 0);
	FUZZ_ASSERT(offset >= l->next_off && offset >= l->last_bad_end);
	FUZZ_ASSERT(offset + len <= l->size);
	if (!l->bad_calls)
		l->first_bad = offset;
	l->bad_calls++;
	l->bad_bytes += len;
	l->last_bad_end = offset + len;
}

static int scan(uint64_t size, struct seg_scan_result *res, struct scan_log *l)
{
	int ret;

	l->batches = l->records = l->bad_calls = l->bad_bytes = 0;
	l->next_off = SEG_FILE_HDR_SIZE;
	l->last_bad_end = 0;
	l->last_seq = 0;
	l->size = size;
	ret = seg_scan(memfd, res, on_batch, on_bad, l);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
	FUZZ_ASSERT(res->file_size == size);
	if (ret) {
		FUZZ_ASSERT(l->batches == 0 && l->bad_calls == 0);
		return ret;
	}
	FUZZ_ASSERT(size >= SEG_FILE_HDR_SIZE);
	FUZZ_ASSERT(res->batches == l->batches && res->records == l->records);
	FUZZ_ASSERT(res->corrupt == l->bad_calls);
	if (res->corrupt)
		FUZZ_ASSERT(res->first_corrupt_offset == l->first_bad);
	FUZZ_ASSERT(res->valid_end == l->next_off);
	FUZZ_ASSERT(res->valid_end <= size);
	FUZZ_ASSERT(res->torn_bytes == size - res->valid_end);
	FUZZ_ASSERT(l->last_bad_end <= res->valid_end);
	if (res->batches) {
		FUZZ_ASSERT(res->first_seq <= res->last_seq);
		FUZZ_ASSERT(res->last_seq == l->last_seq);
		FUZZ_ASSERT(res->last_start_pos < res->last_end_pos);
	} else {
		FUZZ_ASSERT(res->valid_end == SEG_FILE_HDR_SIZE && res->corrupt == 0);
	}
	return 0;
}

/* The daemon's next batch after the last one found: one raw record. */
static size_t next_batch(uint8_t *out, const struct seg_scan_result *r)
{
	static const char payload[] = "next batch, written at valid_end";
	struct seg_batch_hdr h;
	struct rec_hdr rec;
	uint32_t rsz = (uint32_t)rec_size(sizeof(payload));

	memset(&h, 0, sizeof(h));
	h.magic = SEG_BATCH_MAGIC;
	h.version = SEG_BATCH_VERSION;
	h.count = 1;
	h.incarnation = r->last_incarnation;
	h.start_pos = r->last_end_pos;
	h.end_pos = r->last_end_pos + rsz;
	h.first_seq = h.last_seq = r->last_seq + 1;
	h.length = rsz;
	memset(&rec, 0, sizeof(rec));
	rec.len = sizeof(payload);
	rec.type = BE_TYPE_RAW;
	rec.seq = h.first_seq;
	memset(out, 0, SEG_BATCH_HDR_SIZE + rsz);
	memcpy(out, &h, sizeof(h));
	memcpy(out + SEG_BATCH_HDR_SIZE, &rec, sizeof(rec));
	memcpy(out + SEG_BATCH_HDR_SIZE + sizeof(rec), payload, sizeof(payload));
	seg_batch_seal(out);
	return SEG_BATCH_HDR_SIZE + rsz;
}

static void check_recovery(const struct seg_scan_result *r1, struct scan_log *l)
{
	struct seg_scan_result r2, r3;
	uint8_t nb[SEG_BATCH_HDR_SIZE + 128];
	size_t nlen;

	/* recover_disk(): cut the torn tail, scan again. */
	FUZZ_ASSERT(ftruncate(memfd, (off_t)r1->valid_end) == 0);
	l->format = 0;
	FUZZ_ASSERT(scan(r1->valid_end, &r2, l) == 0);
	FUZZ_ASSERT(r2.torn_bytes == 0);
	FUZZ_ASSERT(r2.valid_end == r1->valid_end);
	FUZZ_ASSERT(r2.batches == r1->batches && r2.records == r1->records);
	FUZZ_ASSERT(r2.first_seq == r1->first_seq && r2.last_seq == r1->last_seq);
	FUZZ_ASSERT(r2.last_incarnation == r1->last_incarnation);
	FUZZ_ASSERT(r2.last_start_pos == r1->last_start_pos && r2.last_end_pos == r1->last_end_pos);
	FUZZ_ASSERT(r2.corrupt == r1->corrupt);
	FUZZ_ASSERT(r2.first_corrupt_offset == r1->first_corrupt_offset);

	/* The daemon then writes its next batch at valid_end: the next recovery must see it. */
	if (r1->last_seq == UINT64_MAX || r1->last_end_pos > UINT64_MAX - 4096)
		return;
	nlen = next_batch(nb, r1);
	FUZZ_ASSERT(pwrite(memfd, nb, nlen, (off_t)r1->valid_end) == (ssize_t)nlen);
	FUZZ_ASSERT(scan(r1->valid_end + nlen, &r3, l) == 0);
	FUZZ_ASSERT(r3.batches == r1->batches + 1);
	FUZZ_ASSERT(r3.last_seq == r1->last_seq + 1);
	FUZZ_ASSERT(r3.valid_end == r1->valid_end + nlen && r3.torn_bytes == 0);
	FUZZ_ASSERT(r3.corrupt == r1->corrupt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct seg_scan_result res;
	struct scan_log log;
	struct recfmt f;
	uint8_t flags, *img, *copy;
	uint16_t mask;
	size_t n;
	int ret;

	if (size > (size_t)4 << 20)
		return 0;
	flags = fin_u8(&in);
	mask = fin_u16(&in);
	n = in.n;
	img = fuzz_malloc(n);
	if (n)
		memcpy(img, in.p, n);
	fix_file_hdr(img, n, flags);
	fix_batches(img, n, flags, mask);

	/* The batch checker alone, on exactly the bytes after the file header. */
	if (n >= SEG_FILE_HDR_SIZE) {
		copy = fuzz_dup(img + SEG_FILE_HDR_SIZE, n - SEG_FILE_HDR_SIZE);
		ret = seg_batch_check(copy, n - SEG_FILE_HDR_SIZE);
		FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO || ret == -ENODATA);
		if (ret == 0) {
			struct seg_batch_hdr h;
			struct scan_log l = { 0 };

			memcpy(&h, copy, sizeof(h));
			FUZZ_ASSERT(h.count >= 1 && h.first_seq <= h.last_seq);
			check_records(&h, copy + SEG_BATCH_HDR_SIZE, &l);
		}
		free(copy);
	}

	put_file(img, n);
	memset(&log, 0, sizeof(log));
	FUZZ_ASSERT(recfmt_init(&f, !!(flags & F_JSON), "fuzz", 4096) == 0);
	log.f = &f;
	log.format = 1;
	ret = scan(n, &res, &log);
	if (ret == 0 && res.batches > 0)
		check_recovery(&res, &log);
	recfmt_free(&f);
	free(img);
	return 0;
}
