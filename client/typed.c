/*
 * typed.c - be_write_metric/log/process and their batch forms: check the
 * store's type, encode (shm/codec.h) before any lock is taken, then append
 * with one call into the ring (client/be.c does the appending, as for
 * be_write).
 *
 * A record is encoded straight into a stack buffer; one that does not fit
 * there is encoded again into a buffer of its exact size.  A batch is sized
 * record by record (every record checked), then encoded into one block
 * that also holds the ring_rec array, so that a bad record fails the call
 * before anything reaches the ring.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "bufferengine.h"
#include "client/be_internal.h"
#include "shm/clock.h"
#include "shm/codec.h"

#define TYPED_STACK_BYTES 2048 /* one record; a batch's records and payloads */

/*
 * Encode one record (a struct be_metric, be_log or be_process) with now in
 * place of a 0 timestamp.  The codec's contract: the exact size, written
 * to buf only when it fits cap; or -errno.
 */
typedef ssize_t (*encode_fn)(const void *rec, uint64_t now, void *buf, size_t cap);

static ssize_t enc_metric(const void *rec, uint64_t now, void *buf, size_t cap)
{
	struct be_metric m = *(const struct be_metric *)rec;

	if (!m.ts_ns)
		m.ts_ns = now;
	return codec_encode_metric(&m, buf, cap);
}

static ssize_t enc_log(const void *rec, uint64_t now, void *buf, size_t cap)
{
	struct be_log l = *(const struct be_log *)rec;

	if (!l.ts_ns)
		l.ts_ns = now;
	return codec_encode_log(&l, buf, cap);
}

static ssize_t enc_process(const void *rec, uint64_t now, void *buf, size_t cap)
{
	struct be_process p = *(const struct be_process *)rec;

	if (!p.snapshot_ts_ns)
		p.snapshot_ts_ns = now;
	return codec_encode_process(&p, buf, cap);
}

/* Checks shared by both forms: 0, or the error to return. */
static int check_store(be_store *s, uint16_t type)
{
	int t = be_store_type(s);

	if (t < 0)
		return t;
	return t == type ? 0 : -EPROTOTYPE;
}

static int write_one(be_store *s, uint16_t type, encode_fn enc, const void *rec)
{
	uint64_t stack[TYPED_STACK_BYTES / sizeof(uint64_t)];
	void *buf = stack;
	uint64_t now;
	ssize_t len, again;
	int ret;

	ret = check_store(s, type);
	if (ret)
		return ret;
	if (!rec)
		return -EINVAL;
	now = now_real_ns();
	len = enc(rec, now, stack, sizeof(stack));
	if (len < 0)
		return (int)len;
	if ((size_t)len > be_max_payload(s))
		return -EMSGSIZE;
	if ((size_t)len > sizeof(stack)) {
		buf = malloc((size_t)len);
		if (!buf)
			return -ENOMEM;
		again = enc(rec, now, buf, (size_t)len);
		if (again != len) {
			/* The caller's strings changed under us. */
			ret = again < 0 ? (int)again : -EINVAL;
			goto out_free;
		}
	}
	ret = client_append(s, type, buf, (size_t)len, now);
out_free:
	if (buf != stack)
		free(buf);
	return ret;
}

static int write_many(be_store *s, uint16_t type, encode_fn enc, const void *recs, size_t size,
		      size_t n)
{
	uint64_t stack[TYPED_STACK_BYTES / sizeof(uint64_t)];
	const char *rec = recs;
	struct ring_rec *rr;
	uint8_t *block = (uint8_t *)stack, *p;
	size_t total = 0, room, max;
	uint64_t now;
	int ret;

	ret = check_store(s, type);
	if (ret)
		return ret;
	if (n == 0)
		return 0;
	if (!recs || n > INT_MAX) /* the count must fit the result */
		return -EINVAL;
	now = now_real_ns();
	max = be_max_payload(s);

	/* Size and check every record before anything is written. */
	for (size_t i = 0; i < n; i++) {
		ssize_t len = enc(rec + i * size, now, NULL, 0);

		if (len < 0)
			return (int)len;
		if ((size_t)len > max)
			return -EMSGSIZE;
		if (total + (size_t)len < total)
			return -ENOMEM;
		total += (size_t)len;
	}
	if (n > (SIZE_MAX - total) / sizeof(*rr))
		return -ENOMEM;
	if (n * sizeof(*rr) + total > sizeof(stack)) {
		block = malloc(n * sizeof(*rr) + total);
		if (!block)
			return -ENOMEM;
	}

	/* The ring_rec array first (malloc's alignment), then the payloads. */
	rr = (struct ring_rec *)(void *)block;
	p = block + n * sizeof(*rr);
	room = total;
	for (size_t i = 0; i < n; i++) {
		ssize_t len = enc(rec + i * size, now, p, room);

		if (len < 0 || (size_t)len > room) {
			ret = len < 0 ? (int)len : -EINVAL; /* changed under us */
			goto out_free;
		}
		rr[i] = (struct ring_rec){ .type = type, .len = (uint32_t)len, .payload = p };
		p += len;
		room -= (size_t)len;
	}
	ret = client_append_many(s, rr, (unsigned)n, now);
out_free:
	if (block != (uint8_t *)stack)
		free(block);
	return ret;
}

int be_write_metric(be_store *s, const struct be_metric *m)
{
	return write_one(s, BE_TYPE_METRIC, enc_metric, m);
}

int be_write_log(be_store *s, const struct be_log *l)
{
	return write_one(s, BE_TYPE_LOG, enc_log, l);
}

int be_write_process(be_store *s, const struct be_process *p)
{
	return write_one(s, BE_TYPE_PROCESS, enc_process, p);
}

int be_write_metrics(be_store *s, const struct be_metric *m, size_t n)
{
	return write_many(s, BE_TYPE_METRIC, enc_metric, m, sizeof(*m), n);
}

int be_write_logs(be_store *s, const struct be_log *l, size_t n)
{
	return write_many(s, BE_TYPE_LOG, enc_log, l, sizeof(*l), n);
}

int be_write_processes(be_store *s, const struct be_process *p, size_t n)
{
	return write_many(s, BE_TYPE_PROCESS, enc_process, p, sizeof(*p), n);
}
