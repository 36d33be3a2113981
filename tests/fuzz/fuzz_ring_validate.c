/*
 * fuzz_ring_validate.c - the ring header check (shm/ring.c: ring_validate)
 * that writers, the daemon and shm-dump run on a header copied out of
 * shared memory, on an arbitrary 4096-byte header and object size.
 *
 * Input: up to 4096 bytes of header (zero-padded), then a u64 object
 * size; without one, the size is what the header's capacity implies (so
 * that the checks past the size are reachable).  The header lives in a
 * buffer of exactly sizeof(struct ring_hdr).
 *
 * When it accepts, everything the readers rely on must hold: capacity a
 * power of two in range and the size matching it, mask = capacity - 1,
 * a known type and on_full, max_payload within capacity / 4 and
 * RING_PAYLOAD_MAX, first_seq in range, a valid NUL-terminated store name,
 * head and tail 8-aligned with head - tail <= capacity.  The header is
 * never written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ring_hdr *h = fuzz_malloc(sizeof(*h));
	struct ring_hdr *orig = fuzz_malloc(sizeof(*h));
	struct ring_map m;
	uint64_t file_size;
	size_t n = size < sizeof(*h) ? size : sizeof(*h);
	int ret;

	memset(h, 0, sizeof(*h));
	memcpy(h, data, n);
	if (size >= sizeof(*h) + 8)
		memcpy(&file_size, data + sizeof(*h), 8);
	else
		file_size = RING_HDR_SIZE + h->capacity;
	memcpy(orig, h, sizeof(*h));
	memset(&m, 0, sizeof(m));
	m.fd = -1;

	ret = ring_validate(h, file_size, &m);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
	FUZZ_ASSERT(memcmp(h, orig, sizeof(*h)) == 0);
	if (ret == -EPROTO)
		FUZZ_ASSERT(h->magic == RING_MAGIC && (h->version >> 16) != RING_VERSION_MAJOR);
	if (ret == 0) {
		FUZZ_ASSERT(h->magic == RING_MAGIC && (h->version >> 16) == RING_VERSION_MAJOR);
		FUZZ_ASSERT(h->hdr_size == RING_HDR_SIZE);
		FUZZ_ASSERT(m.capacity >= RING_CAP_MIN && m.capacity <= RING_CAP_MAX);
		FUZZ_ASSERT((m.capacity & (m.capacity - 1)) == 0);
		FUZZ_ASSERT(m.mask == m.capacity - 1);
		FUZZ_ASSERT(file_size == RING_HDR_SIZE + m.capacity);
		FUZZ_ASSERT(m.capacity == h->capacity);
		FUZZ_ASSERT(m.store_type >= BE_TYPE_RAW && m.store_type <= BE_TYPE_PROCESS);
		FUZZ_ASSERT(m.on_full == RING_ON_FULL_BLOCK || m.on_full == RING_ON_FULL_DROP);
		FUZZ_ASSERT(m.incarnation != 0 && m.incarnation == h->incarnation);
		FUZZ_ASSERT(m.max_payload >= 1 && m.max_payload <= m.capacity / 4 &&
			    m.max_payload <= RING_PAYLOAD_MAX);
		/* A record of max_payload always fits the area, header and padding included. */
		FUZZ_ASSERT(rec_size(m.max_payload) <= m.capacity);
		FUZZ_ASSERT(m.first_seq >= 1 && m.first_seq < RING_SEQ_FIRST_MAX);
		FUZZ_ASSERT(memchr(m.store, 0, sizeof(m.store)) != NULL);
		FUZZ_ASSERT(ring_name_valid(m.store));
		FUZZ_ASSERT(strcmp(m.store, h->store_name) == 0);
		FUZZ_ASSERT(h->head >= h->tail && h->head - h->tail <= m.capacity);
		FUZZ_ASSERT(h->head % REC_ALIGN == 0 && h->tail % REC_ALIGN == 0);
		/* hdr/data are the caller's: untouched. */
		FUZZ_ASSERT(m.hdr == NULL && m.data == NULL && m.fd == -1);
	}
	free(orig);
	free(h);
	return 0;
}
