/*
 * fuzz_collect.c - the daemon's consumer walk (shm/collect.c: ring_collect)
 * over an arbitrary ring image: the records in [tail, head) that any writer
 * could have scribbled.
 *
 * Input:
 *   u8  geometry   capacity = 4096 << (g % 5): 4 KiB .. 64 KiB
 *   u8  flags      bit 0: head is a raw u64, else tail + (u64 % (2 cap + 16))
 *                  bit 1: tail and head as given, else 8-aligned
 *                  bit 2: min_seq a raw u64, else first_seq
 *   u8  store type (1 + t % 4)
 *   u32 max_payload (1 + v % (capacity / 4): what ring_validate() allows)
 *   u64 first_seq (1 + v % (RING_SEQ_FIRST_MAX - 1))
 *   u64 tail, u64 head (see flags), u64 min_seq (see flags)
 *   u32 out space (v % (2 capacity + 64))
 *   the rest: the data area's bytes from tail on, wrapping (zero elsewhere)
 * The struct ring_map is what ring_validate() makes of a header; the data
 * area is a buffer of exactly capacity bytes, the output one of exactly the
 * space given, so that ASan sees any access outside either.
 *
 * As the daemon does (server/flusher.c), the walk is repeated from where
 * the last one ended, with min_seq past the last seq, and a -E2BIG is
 * retried with exactly the space it asked for.  Every result is checked:
 * the records copied are those of the data area at the positions the
 * padding implies, byte for byte, each valid for the store, seqs
 * increasing from min_seq; counts, bytes and positions agree; the data
 * area is never written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/fuzz/fuzz_util.h"

#define ROUNDS 8

/*
 * check_out() - what one ring_collect() returned: the records in out
 * against the data area from tail, skipping the padding.
 */
static void check_out(const struct ring_map *m, uint64_t tail, uint64_t head, uint64_t min_seq,
		      const uint8_t *out, size_t cap, const struct ring_batch *res, int ret)
{
	uint64_t pos = tail, off = 0, prev = 0;
	uint32_t n = 0;

	FUZZ_ASSERT(ret == 0 || ret == -E2BIG || ret == -EBADMSG);
	FUZZ_ASSERT(res->start_pos == tail);
	FUZZ_ASSERT(res->bytes <= cap);
	if (ret == -E2BIG) {
		FUZZ_ASSERT(res->count == 0 && res->bytes == 0);
		FUZZ_ASSERT(res->need > cap && res->need % REC_ALIGN == 0);
		FUZZ_ASSERT(res->need >= sizeof(struct rec_hdr) && res->need <= m->capacity);
		FUZZ_ASSERT(res->need <= rec_size(m->max_payload));
		return;
	}
	while (off < res->bytes) {
		struct rec_hdr r;
		uint64_t sz, doff;

		/* Padding markers in the ring: never copied. */
		for (;;) {
			struct rec_hdr pad;

			FUZZ_ASSERT(pos < head);
			memcpy(&pad, m->data + (pos & m->mask), REC_PAD_MIN);
			if (pad.type != REC_TYPE_PAD)
				break;
			pos += m->capacity - (pos & m->mask);
		}
		FUZZ_ASSERT(res->bytes - off >= sizeof(r));
		memcpy(&r, out + off, sizeof(r));
		FUZZ_ASSERT(r.type == m->store_type && r.flags == 0 && r.reserved == 0);
		FUZZ_ASSERT(r.len <= m->max_payload);
		sz = rec_size(r.len);
		FUZZ_ASSERT(sz <= res->bytes - off);
		FUZZ_ASSERT(r.seq >= min_seq && r.seq >= m->first_seq &&
			    r.seq - m->first_seq < RING_SEQ_SPAN);
		if (n)
			FUZZ_ASSERT(r.seq > prev);
		else
			FUZZ_ASSERT(r.seq == res->first_seq);
		/* Byte for byte what the ring holds there, within the area and below head. */
		doff = pos & m->mask;
		FUZZ_ASSERT(sz <= m->capacity - doff && sz <= head - pos);
		FUZZ_ASSERT(memcmp(out + off, m->data + doff, sizeof(r) + r.len) == 0);
		for (uint64_t i = sizeof(r) + r.len; i < sz; i++)
			FUZZ_ASSERT(out[off + i] == 0);
		prev = r.seq;
		n++;
		off += sz;
		pos += sz;
	}
	FUZZ_ASSERT(n == res->count);
	if (n)
		FUZZ_ASSERT(res->last_seq == prev);
	FUZZ_ASSERT(pos <= res->end_pos && res->end_pos <= (head > tail ? head : tail));
	if (ret == 0) {
		/* Stopped at head, or at the space with something copied. */
		FUZZ_ASSERT(res->end_pos == head || res->count > 0);
	} else {
		FUZZ_ASSERT(res->bad_pos == res->end_pos);
		FUZZ_ASSERT(res->bad_pos == tail || res->bad_pos < head);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct ring_map m;
	uint8_t flags, *area, *orig;
	uint64_t tail, head, min_seq, hv, msv;
	size_t cap;

	memset(&m, 0, sizeof(m));
	m.fd = -1;
	m.capacity = UINT64_C(4096) << (fin_u8(&in) % 5);
	m.mask = m.capacity - 1;
	flags = fin_u8(&in);
	m.store_type = 1 + fin_u8(&in) % 4;
	m.max_payload = 1 + fin_u32(&in) % (uint32_t)(m.capacity / 4);
	m.first_seq = 1 + fin_u64(&in) % (RING_SEQ_FIRST_MAX - 1);
	m.incarnation = 1;
	tail = fin_u64(&in);
	hv = fin_u64(&in);
	msv = fin_u64(&in);
	cap = fin_u32(&in) % (2 * m.capacity + 64);
	head = (flags & 1) ? hv : tail + hv % (2 * m.capacity + 16);
	if (!(flags & 2)) {
		tail &= ~(uint64_t)(REC_ALIGN - 1);
		head &= ~(uint64_t)(REC_ALIGN - 1);
	}
	min_seq = (flags & 4) ? msv : m.first_seq;

	area = fuzz_malloc(m.capacity);
	memset(area, 0, m.capacity);
	for (size_t i = 0; i < in.n && i < m.capacity; i++)
		area[(tail + i) & m.mask] = in.p[i];
	orig = fuzz_dup(area, m.capacity);
	m.data = area;

	for (int round = 0; round < ROUNDS; round++) {
		struct ring_batch res;
		uint8_t *out = fuzz_malloc(cap);
		int ret;

		memset(&res, 0xee, sizeof(res));
		ret = ring_collect(&m, tail, head, min_seq, out, cap, &res);
		check_out(&m, tail, head, min_seq, out, cap, &res, ret);
		free(out);
		if (ret == -E2BIG) {
			/* The daemon's retry: exactly the space asked for. */
			size_t need = res.need;

			out = fuzz_malloc(need);
			ret = ring_collect(&m, tail, head, min_seq, out, need, &res);
			check_out(&m, tail, head, min_seq, out, need, &res, ret);
			FUZZ_ASSERT(ret != -E2BIG && res.count >= 1);
			free(out);
		}
		if (ret || res.end_pos == tail || res.end_pos >= head)
			break;
		tail = res.end_pos;
		if (res.count)
			min_seq = res.last_seq + 1;
	}
	FUZZ_ASSERT(memcmp(area, orig, m.capacity) == 0);
	free(orig);
	free(area);
	return 0;
}
