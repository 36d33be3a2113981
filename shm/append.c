/*
 * append.c - the writers' side of a ring: one record in, under the lock.
 *
 * The protocol (DESIGN.md, "The ring"): take the lock; check the space
 * against the tail (refreshed from the daemon's line only when the cached
 * one says the record does not fit); write the padding marker if the
 * record would cross the end of the area, then the record; take the seq;
 * publish with one release store of head; unlock.  A writer that dies at
 * any point before that store leaves nothing visible.
 */
#include <errno.h>
#include <string.h>

#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/lock.h"
#include "shm/ring.h"

void ring_doorbell(struct ring_map *m)
{
	fetch_add_relaxed(&m->hdr->doorbells, 1);
	/* futex_bump_wake orders the head store made before us ahead of the bump. */
	futex_bump_wake(&m->hdr->doorbell_gen);
}

/*
 * Wait, with the lock held, until `need` bytes fit after head.  The lock
 * stays with us: the space that frees is ours first, and writers behind us
 * wait on the lock with their own timeouts.  Returns the tail or -errno.
 */
static int64_t wait_space(struct ring_map *m, uint64_t head, uint64_t need, struct deadline *d)
{
	struct ring_hdr *h = m->hdr;
	int counted = 0;

	for (;;) {
		/* Acquire: pairs with the daemon's release of the generation. */
		uint32_t gen = load_acquire(&h->space_gen);
		/* Acquire: pairs with the daemon's store_release(tail) made after
		 * it copied the bytes below the new tail out of the ring. */
		uint64_t tail = load_acquire(&h->tail);
		int ret;

		if (tail > head || head - tail > m->capacity || (tail & (REC_ALIGN - 1)))
			return -EBADMSG;
		if (head + need - tail <= m->capacity)
			return (int64_t)tail;
		if (m->on_full == RING_ON_FULL_DROP) {
			fetch_add_relaxed(&h->drops, 1);
			return -ENOBUFS;
		}
		if (!counted) {
			fetch_add_relaxed(&h->full_waits, 1);
			/*
			 * A full ring needs the daemon now, whatever flush_bytes
			 * says: with a threshold near the capacity no append may
			 * have crossed it.
			 */
			ring_doorbell(m);
			counted = 1;
		}
		ret = futex_wait_until(&h->space_gen, gen, deadline_get(d));
		if (ret && ret != -EINTR)
			return ret;
	}
}

/*
 * Append one record; the lock is held and the caller has checked len
 * against max_payload (before the lock).  Sets *ring when the record takes
 * the unflushed bytes over the doorbell threshold.  Returns 0 or -errno
 * (nothing written then).
 */
static inline int append_locked(struct ring_map *m, uint64_t *cached_tail, uint16_t type,
				const void *payload, uint32_t len, uint64_t ts_ns, uint32_t pid,
				struct deadline *d, int *ring, uint64_t *seq_out)
{
	struct ring_hdr *h = m->hdr;
	uint64_t need, head, off, pad, total, tail, seq, flush_bytes;
	struct rec_hdr rh;
	uint8_t *dst;

	need = rec_size(len);
	/* Only lock holders write head: a plain read is ours to trust - after a check. */
	head = READ_ONCE(h->head);
	tail = *cached_tail;
	if ((head & (REC_ALIGN - 1)) || head < tail || head - tail > m->capacity) {
		/* The cached tail may be from before a daemon restart: look again. */
		tail = load_acquire(&h->tail);
		if ((head & (REC_ALIGN - 1)) || (tail & (REC_ALIGN - 1)) || head < tail ||
		    head - tail > m->capacity)
			return -EBADMSG;
	}
	off = head & m->mask;
	pad = (m->capacity - off < need) ? m->capacity - off : 0;
	total = pad + need;
	if (head + total - tail > m->capacity) {
		int64_t t = wait_space(m, head, total, d);

		if (t < 0)
			return (int)t;
		tail = (uint64_t)t;
	}
	*cached_tail = tail;

	if (pad) {
		/* The first 8 bytes mark the rest of the area as padding. */
		struct rec_hdr ph = { .len = (uint32_t)pad, .type = REC_TYPE_PAD };

		memcpy(m->data + off, &ph, pad < sizeof(ph) ? REC_PAD_MIN : sizeof(ph));
		off = 0;
	}
	seq = READ_ONCE(h->next_seq);
	/* A seq the daemon would take for damage: the header is impossible. */
	if (seq < m->first_seq || seq - m->first_seq >= RING_SEQ_SPAN)
		return -EBADMSG;
	rh = (struct rec_hdr){ .len = len, .type = type, .seq = seq, .ts_ns = ts_ns, .pid = pid };
	dst = m->data + off;
	memcpy(dst, &rh, sizeof(rh));
	if (len)
		memcpy(dst + sizeof(rh), payload, len);
	if (need > sizeof(rh) + len)
		memset(dst + sizeof(rh) + len, 0, need - sizeof(rh) - len);
	WRITE_ONCE(h->next_seq, seq + 1);
	/* Under the lock, so that every store through seq_out is in seq order. */
	WRITE_ONCE(*seq_out, seq);
	/*
	 * Publish: the record bytes and the padding are visible to whoever
	 * acquires the new head (the daemon's load_acquire(&h->head)).
	 */
	store_release(&h->head, head + total);

	/*
	 * Ring the doorbell when this record takes the unflushed bytes over
	 * the threshold.  The cached tail overstates the unflushed bytes, so
	 * look at the real tail before deciding.
	 */
	flush_bytes = READ_ONCE(h->flush_bytes);
	if (head + total - tail >= flush_bytes) {
		tail = load_acquire(&h->tail);
		if (tail <= head && head + total - tail >= flush_bytes && head - tail < flush_bytes)
			*ring = 1;
		*cached_tail = tail;
	}
	return 0;
}

int ring_append(struct ring_map *m, uint64_t *cached_tail, uint16_t type, const void *payload,
		uint32_t len, uint64_t ts_ns, uint32_t pid, int timeout_ms, uint64_t *seq_out)
{
	struct deadline d = { .timeout_ms = timeout_ms, .at = 0 };
	uint64_t ignored;
	int ret, ring = 0;

	if (len > m->max_payload)
		return -EMSGSIZE;
	ret = lock_acquire(m->hdr, &d);
	if (ret)
		return ret;
	ret = append_locked(m, cached_tail, type, payload, len, ts_ns, pid, &d, &ring,
			    seq_out ? seq_out : &ignored);
	lock_release(m->hdr);
	if (ring)
		ring_doorbell(m);
	return ret;
}

int ring_append_many(struct ring_map *m, uint64_t *cached_tail, const struct ring_rec *recs,
		     unsigned n, uint64_t ts_ns, uint32_t pid, int timeout_ms, uint64_t *last_seq)
{
	struct deadline d = { .timeout_ms = timeout_ms, .at = 0 };
	uint64_t ignored;
	unsigned i;
	int ret, ring = 0;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (recs[i].len > m->max_payload)
			return -EMSGSIZE;
	ret = lock_acquire(m->hdr, &d);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		ret = append_locked(m, cached_tail, recs[i].type, recs[i].payload, recs[i].len,
				    ts_ns, pid, &d, &ring, last_seq ? last_seq : &ignored);
		if (ret)
			break;
	}
	lock_release(m->hdr);
	if (ring)
		ring_doorbell(m);
	return i ? (int)i : ret;
}
