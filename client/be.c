/*
 * be.c - libbufferengine: the public API over the shm/ core.
 *
 * A handle is a mapped ring plus what this handle has done with it: the
 * last seq it wrote (what be_flush waits for) and the cached tail.  The
 * cached tail is touched only under the ring's lock, which serialises the
 * threads of a process as well as the processes, so a handle needs no
 * lock of its own.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufferengine.h"
#include "client/be_internal.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/ring.h"
#include "shm/tsclock.h"

#define BE_DEFAULT_WRITE_TIMEOUT_MS 1000
#define BE_OPEN_POLL_NS (10 * NSEC_PER_MSEC)
#define BE_CLOSE_FLUSH_MS 10000 /* be_close's bound when writes wait forever */

struct be_store {
	struct ring_map map;
	uint64_t cached_tail; /* under the ring lock only */
	uint64_t last_seq;    /* atomic: highest seq written through this handle; 0: none */
	int write_timeout_ms;
};

/*
 * The pid stamped on records.  getpid() is a system call on this libc, too
 * dear for every record; the cache is reset in a forked child.
 */
static uint32_t be_pid;
static pthread_once_t be_pid_once = PTHREAD_ONCE_INIT;

static void be_pid_reset(void)
{
	WRITE_ONCE(be_pid, 0);
}

static void be_pid_init(void)
{
	pthread_atfork(NULL, NULL, be_pid_reset);
}

static inline uint32_t be_getpid(void)
{
	uint32_t pid = READ_ONCE(be_pid);

	if (__builtin_expect(pid == 0, 0)) {
		pthread_once(&be_pid_once, be_pid_init);
		pid = (uint32_t)getpid();
		WRITE_ONCE(be_pid, pid);
	}
	return pid;
}

int be_open(const char *store, const struct be_open_opts *opts, be_store **out)
{
	const char *instance = NULL;
	int write_timeout = BE_DEFAULT_WRITE_TIMEOUT_MS, open_timeout = 0;
	uint64_t deadline;
	be_store *s;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (opts) {
		instance = opts->instance;
		write_timeout = opts->write_timeout_ms;
		open_timeout = opts->open_timeout_ms;
		if (write_timeout < -1 || open_timeout < -1)
			return -EINVAL;
	}
	if (!instance) {
		const char *env = getenv("BE_INSTANCE");

		/* A bad $BE_INSTANCE must not send records to another instance. */
		if (env && !ring_name_valid(env))
			return -EINVAL;
		instance = ring_default_instance();
	}
	if (!ring_name_valid(store) || !ring_name_valid(instance))
		return -EINVAL;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->write_timeout_ms = write_timeout;
	deadline = deadline_after_ms(open_timeout);
	for (;;) {
		ret = ring_open(instance, store, 0, &s->map);
		if (ret != -ENOENT || open_timeout == 0)
			break;
		if (now_mono_ns() + BE_OPEN_POLL_NS > deadline)
			break;
		{
			struct timespec ts = ns_to_timespec(BE_OPEN_POLL_NS);

			nanosleep(&ts, NULL);
		}
	}
	if (ret) {
		free(s);
		return ret;
	}
	/* Acquire: pairs with the daemon's release store of tail. */
	s->cached_tail = load_acquire(&s->map.hdr->tail);
	*out = s;
	return 0;
}

/*
 * The appends store the record's seq into the handle's last_seq under the
 * ring's lock: every thread of the handle writes it under that one lock,
 * in seq order, so it only grows, without a compare-and-swap.
 */

/* Append one encoded payload of the given record type. */
static inline int be_append(be_store *s, uint16_t type, const void *payload, size_t len,
			    uint64_t ts_ns)
{
	return ring_append(&s->map, &s->cached_tail, type, payload, len, ts_ns, be_getpid(),
			   s->write_timeout_ms, &s->last_seq);
}

/* For client/typed.c: be_append() with the header's timestamp given. */
int client_append(be_store *s, uint16_t type, const void *payload, size_t len, uint64_t ts_ns)
{
	return be_append(s, type, payload, len, ts_ns);
}

int client_append_many(be_store *s, uint16_t type, const struct iovec *iov, size_t n,
		       uint64_t ts_ns)
{
	return ring_append_many(&s->map, &s->cached_tail, type, iov, n, ts_ns, be_getpid(),
				s->write_timeout_ms, &s->last_seq);
}

int be_write(be_store *s, const void *payload, size_t len)
{
	if (!s || (!payload && len))
		return -EINVAL;
	if (s->map.store_type != BE_TYPE_RAW)
		return -EPROTOTYPE;
	return be_append(s, BE_TYPE_RAW, payload, len, tsclock_now_ns());
}

int be_write_batch(be_store *s, const struct iovec *recs, size_t n)
{
	if (!s || (!recs && n))
		return -EINVAL;
	if (s->map.store_type != BE_TYPE_RAW)
		return -EPROTOTYPE;
	/* The count, NULL bases and lengths are checked there, in one pass. */
	return client_append_many(s, BE_TYPE_RAW, recs, n, tsclock_now_ns());
}

int be_flush(be_store *s, int timeout_ms)
{
	struct ring_hdr *h;
	uint64_t target, deadline, req;
	int rang = 0;

	if (!s || timeout_ms < -1)
		return -EINVAL;
	h = s->map.hdr;
	target = READ_ONCE(s->last_seq);
	if (!target)
		return 0;
	deadline = deadline_after_ms(timeout_ms);
	for (;;) {
		/* Read the generation before the value it guards (see futex.h). */
		uint32_t gen = load_acquire(&h->durable_gen);
		int ret;

		/* Acquire: pairs with the daemon's release of durable_seq after its fdatasync. */
		if (load_acquire(&h->durable_seq) > target) {
			/* The lost range is stored before durable_seq passes it. */
			if (target >= READ_ONCE(h->lost_seq_from) && target < READ_ONCE(h->lost_seq_to))
				return -EIO;
			return 0;
		}
		if (!rang) {
			/* Ask for everything up to target; the largest request wins. */
			req = READ_ONCE(h->flush_req_seq);
			while (req < target && !cas_relaxed(&h->flush_req_seq, &req, target))
				;
			ring_doorbell(&s->map);
			rang = 1;
		}
		ret = futex_wait_until(&h->durable_gen, gen, deadline);
		if (ret == -ETIMEDOUT)
			return ret;
		if (ret && ret != -EINTR)
			return ret;
	}
}

int be_close(be_store *s)
{
	int ret;

	if (!s)
		return -EINVAL;
	ret = be_flush(s, s->write_timeout_ms >= 0 ? s->write_timeout_ms : BE_CLOSE_FLUSH_MS);
	ring_unmap(&s->map);
	free(s);
	return ret;
}

int be_store_type(const be_store *s)
{
	return s ? (int)s->map.store_type : -EINVAL;
}

size_t be_max_payload(const be_store *s)
{
	return s ? s->map.max_payload : 0;
}

const char *be_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument (names are [A-Za-z0-9_-]{1,63})";
	case -ENOENT:
		return "no such store: configure it in bufferengined's config and start the daemon";
	case -EPROTO:
		return "the ring has another layout version: upgrade the library or the daemon";
	case -EBADMSG:
		return "the ring is damaged (bad header or impossible head/tail): nothing written";
	case -EXDEV:
		return "the ring belongs to another pid namespace: run the writer beside the daemon";
	case -EMSGSIZE:
		return "record larger than the store accepts (a quarter of its ring)";
	case -EPROTOTYPE:
		return "record of the wrong type for this store";
	case -ENOBUFS:
		return "ring full: record dropped (store policy on_full = drop)";
	case -ETIMEDOUT:
		return "timed out (ring full, lock held, or no daemon flushing)";
	case -EACCES:
		return "permission denied on the ring: join the ring's group";
	case -ENOTRECOVERABLE:
		return "the ring's lock is unrecoverable";
	}
	if (err < 0 && err > -4096) { /* errno values are small; -INT_MIN overflows */
		const char *d = strerrordesc_np(-err);

		if (d)
			return d;
	}
	return "unknown error";
}
