/*
 * typed.c - be_write_metric/log/process and their batch forms: check the
 * store's type, encode (shm/codec.h) before any lock is taken, then append
 * with one call into the ring (client/be.c does the appending, as for
 * be_write).
 *
 * A record is encoded straight into a stack buffer; one that does not fit
 * there is encoded again into a buffer of its exact size.  A batch is
 * encoded record by record into one growing buffer (every record checked,
 * each encoded once unless the buffer had to grow for it), so that a bad
 * record fails the call before anything reaches the ring.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "bufferengine.h"
#include "client/be_internal.h"
#include "shm/clock.h"
#include "shm/codec.h"
#include "shm/tsclock.h"

#define TYPED_STACK_BYTES 8192 /* one record, or a batch's payloads */
#define TYPED_STACK_RECS 64    /* a batch's iovecs */

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
	now = tsclock_now_ns();
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

/*
 * Grow a batch's payload buffer to hold at least `need` bytes (the stack
 * buffer at first; the bytes used so far move along).  0 or -ENOMEM.
 */
static int batch_grow(uint8_t **buf, size_t *cap, uint8_t *stack, size_t used, size_t need)
{
	size_t ncap = *cap * 2 > need ? *cap * 2 : need;
	uint8_t *nbuf;

	if (*buf == stack) {
		nbuf = malloc(ncap);
		if (nbuf)
			memcpy(nbuf, stack, used);
	} else {
		nbuf = realloc(*buf, ncap);
	}
	if (!nbuf)
		return -ENOMEM;
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

static int write_many(be_store *s, uint16_t type, encode_fn enc, const void *recs, size_t size,
		      size_t n)
{
	uint64_t stack[TYPED_STACK_BYTES / sizeof(uint64_t)];
	struct iovec iov_stack[TYPED_STACK_RECS], *iov = iov_stack;
	const char *rec = recs;
	uint8_t *buf = (uint8_t *)stack;
	size_t cap = sizeof(stack), used = 0, max;
	uint64_t now;
	int ret;

	ret = check_store(s, type);
	if (ret)
		return ret;
	if (n == 0)
		return 0;
	if (!recs || n > INT_MAX) /* the count must fit the result */
		return -EINVAL;
	if (n > TYPED_STACK_RECS) {
		iov = malloc(n * sizeof(*iov));
		if (!iov)
			return -ENOMEM;
	}
	now = tsclock_now_ns();
	max = be_max_payload(s);

	/*
	 * Encode (and check) every record before anything is written, each
	 * once: into the room left, or again after the buffer grew.  The
	 * buffer may move, so the iovecs hold offsets until the end.
	 */
	for (size_t i = 0; i < n; i++) {
		ssize_t len = enc(rec + i * size, now, buf + used, cap - used);

		if (len < 0) {
			ret = (int)len;
			goto out_free;
		}
		if ((size_t)len > max) {
			ret = -EMSGSIZE;
			goto out_free;
		}
		if ((size_t)len > cap - used) {
			ssize_t again;

			if (used + (size_t)len < used) {
				ret = -ENOMEM;
				goto out_free;
			}
			ret = batch_grow(&buf, &cap, (uint8_t *)stack, used, used + (size_t)len);
			if (ret)
				goto out_free;
			again = enc(rec + i * size, now, buf + used, cap - used);
			if (again != len) {
				/* The caller's strings changed under us. */
				ret = again < 0 ? (int)again : -EINVAL;
				goto out_free;
			}
		}
		iov[i].iov_base = (void *)(uintptr_t)used;
		iov[i].iov_len = (size_t)len;
		used += (size_t)len;
	}
	for (size_t i = 0; i < n; i++)
		iov[i].iov_base = buf + (uintptr_t)iov[i].iov_base;
	ret = client_append_many(s, type, iov, n, now);
out_free:
	if (buf != (uint8_t *)stack)
		free(buf);
	if (iov != iov_stack)
		free(iov);
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
