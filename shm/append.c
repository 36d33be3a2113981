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
#include <limits.h>
#include <string.h>
#include <sys/uio.h>

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
 * Write a record header at dst (8-byte aligned) as four 8-byte stores.  A
 * struct built on the stack and copied would be stored in pieces and
 * reloaded whole: a store-forwarding stall on the hottest path.
 */
static inline void rec_hdr_store(uint8_t *dst, uint32_t len, uint16_t type, uint64_t seq,
				 uint64_t ts_ns, uint32_t pid)
{
	/* Little-endian: len at 0, type at 4, flags (0) at 6; pid at 24, reserved (0) at 28. */
	uint64_t w0 = (uint64_t)len | (uint64_t)type << 32, w3 = pid;

	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "rec_hdr_store() is little-endian");
	_Static_assert(offsetof(struct rec_hdr, type) == 4 && offsetof(struct rec_hdr, flags) == 6 &&
			       offsetof(struct rec_hdr, reserved) == 28,
		       "rec_hdr_store() writes this layout");
	memcpy(dst, &w0, 8);
	memcpy(dst + 8, &seq, 8);
	memcpy(dst + 16, &ts_ns, 8);
	memcpy(dst + 24, &w3, 8);
}

/*
 * Read head and check it against the tail: a lock holder's plain read of
 * head is ours to trust only after that check.  The cached tail may be from
 * before a daemon restart: on doubt look at the real one.  0 or -EBADMSG.
 */
static inline int append_begin(struct ring_map *m, uint64_t *cached_tail, uint64_t *head_out,
			       uint64_t *tail_out)
{
	struct ring_hdr *h = m->hdr;
	uint64_t head = READ_ONCE(h->head), tail = *cached_tail;

	if ((head & (REC_ALIGN - 1)) || head < tail || head - tail > m->capacity) {
		tail = load_acquire(&h->tail);
		if ((head & (REC_ALIGN - 1)) || (tail & (REC_ALIGN - 1)) || head < tail ||
		    head - tail > m->capacity)
			return -EBADMSG;
	}
	*head_out = head;
	*tail_out = tail;
	return 0;
}

/*
 * Write one record of `need` bytes at head (the caller made room for
 * `pad + need`): the padding marker first when the record would cross the
 * end of the area, then header and payload.  Returns the bytes taken.
 */
static inline uint64_t rec_write(struct ring_map *m, uint64_t head, uint64_t need, uint64_t pad,
				 uint16_t type, const void *payload, uint32_t len, uint64_t seq,
				 uint64_t ts_ns, uint32_t pid)
{
	uint64_t off = head & m->mask;
	uint8_t *dst;

	if (pad) {
		/* The first 8 bytes mark the rest of the area as padding. */
		uint64_t w0 = (uint64_t)pad | (uint64_t)REC_TYPE_PAD << 32;

		memcpy(m->data + off, &w0, REC_PAD_MIN);
		off = 0;
	}
	dst = m->data + off;
	rec_hdr_store(dst, len, type, seq, ts_ns, pid);
	if (need > sizeof(struct rec_hdr) + len) {
		/* Zero the tail padding (1-7 bytes) first; the payload then overwrites its head. */
		uint64_t zero = 0;

		memcpy(dst + need - 8, &zero, 8);
	}
	if (len)
		memcpy(dst + sizeof(struct rec_hdr), payload, len);
	return pad + need;
}

/* Bytes of padding a record of `need` bytes at head needs before it. */
static inline uint64_t rec_pad(const struct ring_map *m, uint64_t head, uint64_t need)
{
	uint64_t room = m->capacity - (head & m->mask);

	return room < need ? room : 0;
}

/* A seq the daemon would take for damage: the header is impossible. */
static inline int seq_bad(const struct ring_map *m, uint64_t seq, uint64_t n)
{
	return seq < m->first_seq || seq - m->first_seq > RING_SEQ_SPAN - n;
}

/*
 * Publish records written up to new_head, the last with seq last: next
 * seq, the caller's last seq (under the lock, so that every store through
 * seq_out is in seq order), then head with a release store - the record
 * bytes and the padding are visible to whoever acquires the new head (the
 * daemon's load_acquire(&h->head)).
 */
static inline void append_publish(struct ring_hdr *h, uint64_t new_head, uint64_t last,
				  uint64_t *seq_out)
{
	WRITE_ONCE(h->next_seq, last + 1);
	WRITE_ONCE(*seq_out, last);
	store_release(&h->head, new_head);
}

/*
 * Whether appends that took head from `from` to `to` took the unflushed
 * bytes over the doorbell threshold.  The cached tail overstates the
 * unflushed bytes, so look at the real tail before deciding (and keep it).
 */
static inline int doorbell_due(struct ring_map *m, uint64_t *cached_tail, uint64_t from,
			       uint64_t to)
{
	struct ring_hdr *h = m->hdr;
	uint64_t flush_bytes = READ_ONCE(h->flush_bytes), tail;

	if (to - *cached_tail < flush_bytes)
		return 0;
	tail = load_acquire(&h->tail);
	*cached_tail = tail;
	return tail <= from && to - tail >= flush_bytes && from - tail < flush_bytes;
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
	uint64_t need = rec_size(len), head, tail, pad, seq;
	int ret;

	ret = append_begin(m, cached_tail, &head, &tail);
	if (ret)
		return ret;
	pad = rec_pad(m, head, need);
	if (head + pad + need - tail > m->capacity) {
		int64_t t = wait_space(m, head, pad + need, d);

		if (t < 0)
			return (int)t;
		tail = (uint64_t)t;
	}
	*cached_tail = tail;
	seq = READ_ONCE(h->next_seq);
	if (seq_bad(m, seq, 1))
		return -EBADMSG;
	rec_write(m, head, need, pad, type, payload, len, seq, ts_ns, pid);
	append_publish(h, head + pad + need, seq, seq_out);
	*ring = doorbell_due(m, cached_tail, head, head + pad + need);
	return 0;
}

int ring_append(struct ring_map *m, uint64_t *cached_tail, uint16_t type, const void *payload,
		size_t len, uint64_t ts_ns, uint32_t pid, int timeout_ms, uint64_t *seq_out)
{
	struct deadline d = { .timeout_ms = timeout_ms, .at = 0 };
	uint64_t ignored;
	int ret, ring = 0;

	if (len > m->max_payload)
		return -EMSGSIZE;
	ret = lock_acquire(m->hdr, &d);
	if (ret)
		return ret;
	ret = append_locked(m, cached_tail, type, payload, (uint32_t)len, ts_ns, pid, &d, &ring,
			    seq_out ? seq_out : &ignored);
	lock_release(m->hdr);
	if (ring)
		ring_doorbell(m);
	return ret;
}

/*
 * Append n records under the lock, published together by one store of
 * head (and before any wait for space: the daemon can only free what it
 * sees).  Returns the count appended, or -errno when none was.
 */
static int append_many_locked(struct ring_map *m, uint64_t *cached_tail, uint16_t type,
			      const struct iovec *iov, unsigned n, uint64_t ts_ns, uint32_t pid,
			      struct deadline *d, int *ring, uint64_t *seq_out)
{
	struct ring_hdr *h = m->hdr;
	uint64_t start, head, tail, seq, first;
	unsigned i;
	int ret;

	ret = append_begin(m, cached_tail, &start, &tail);
	if (ret)
		return ret;
	first = seq = READ_ONCE(h->next_seq);
	if (seq_bad(m, seq, n))
		return -EBADMSG;
	head = start;
	for (i = 0; i < n; i++) {
		uint32_t len = (uint32_t)iov[i].iov_len;
		uint64_t need = rec_size(len), pad = rec_pad(m, head, need);

		if (__builtin_expect(head + pad + need - tail > m->capacity, 0)) {
			int64_t t;

			if (seq != first) {
				append_publish(h, head, seq - 1, seq_out);
				first = seq;
			}
			t = wait_space(m, head, pad + need, d);
			if (t < 0) {
				ret = (int)t;
				break;
			}
			tail = (uint64_t)t;
		}
		head += rec_write(m, head, need, pad, type, iov[i].iov_base, len, seq, ts_ns, pid);
		seq++;
	}
	*cached_tail = tail;
	if (seq != first)
		append_publish(h, head, seq - 1, seq_out);
	*ring = doorbell_due(m, cached_tail, start, head);
	return i ? (int)i : ret;
}

int ring_append_many(struct ring_map *m, uint64_t *cached_tail, uint16_t type,
		     const struct iovec *iov, size_t n, uint64_t ts_ns, uint32_t pid,
		     int timeout_ms, uint64_t *last_seq)
{
	struct deadline d = { .timeout_ms = timeout_ms, .at = 0 };
	uint64_t ignored;
	int ret, ring = 0;

	if (n == 0)
		return 0;
	if (n > INT_MAX) /* the count must fit the result */
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		if (iov[i].iov_len > m->max_payload)
			return -EMSGSIZE;
	}
	ret = lock_acquire(m->hdr, &d);
	if (ret)
		return ret;
	ret = append_many_locked(m, cached_tail, type, iov, (unsigned)n, ts_ns, pid, &d, &ring,
				 last_seq ? last_seq : &ignored);
	lock_release(m->hdr);
	if (ring)
		ring_doorbell(m);
	return ret;
}
