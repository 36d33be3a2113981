/*
 * collect.c - the reader's side of a ring: copy the records in
 * [tail, head) out of shared memory, checking each one.
 *
 * Used by the daemon to build a batch and by shm-dump to show unflushed
 * records.  Every header is read once from shared memory into a local,
 * checked there, and only that local is used afterwards: a writer that
 * scribbles over the ring while we read can make us copy garbage payload
 * bytes (the CRC is computed over our copy, so the disk stays consistent),
 * but never make us read or write outside the data area or the output.
 */
#include <errno.h>
#include <string.h>

#include "shm/ring.h"

int ring_collect(const struct ring_map *m, uint64_t tail, uint64_t head, uint64_t min_seq,
		 uint8_t *out, size_t cap, struct ring_batch *res)
{
	uint64_t pos = tail;

	memset(res, 0, sizeof(*res));
	res->start_pos = tail;
	res->end_pos = tail;
	if (head < tail || head - tail > m->capacity || ((head | tail) & (REC_ALIGN - 1))) {
		res->bad_pos = tail;
		return -EBADMSG;
	}
	while (pos < head) {
		uint64_t off = pos & m->mask;
		uint64_t room = m->capacity - off; /* bytes to the end of the area */
		uint64_t avail = head - pos;       /* published bytes from pos */
		struct rec_hdr rh;
		uint64_t sz;

		if (avail < REC_PAD_MIN)
			goto bad;
		memcpy(&rh, m->data + off, REC_PAD_MIN);
		if (rh.type == REC_TYPE_PAD) {
			if (rh.len != room || room > avail || rh.flags)
				goto bad;
			pos += room;
			res->end_pos = pos;
			continue;
		}
		if (avail < sizeof(rh) || room < sizeof(rh))
			goto bad;
		memcpy(&rh, m->data + off, sizeof(rh));
		if (rh.type != m->store_type || rh.flags || rh.reserved || rh.len > m->max_payload)
			goto bad;
		sz = rec_size(rh.len);
		if (sz > room || sz > avail || rh.seq < min_seq ||
		    rh.seq - m->first_seq >= RING_SEQ_SPAN || rh.seq < m->first_seq)
			goto bad;
		if (res->bytes + sz > cap) {
			if (res->count)
				break;
			res->need = sz;
			return -E2BIG;
		}
		memcpy(out + res->bytes, &rh, sizeof(rh));
		memcpy(out + res->bytes + sizeof(rh), m->data + off + sizeof(rh), rh.len);
		memset(out + res->bytes + sizeof(rh) + rh.len, 0, sz - sizeof(rh) - rh.len);
		if (!res->count)
			res->first_seq = rh.seq;
		res->last_seq = rh.seq;
		res->count++;
		res->bytes += sz;
		min_seq = rh.seq + 1;
		pos += sz;
		res->end_pos = pos;
	}
	return 0;

bad:
	res->bad_pos = pos;
	return -EBADMSG;
}
