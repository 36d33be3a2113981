/*
 * bufferengine.h - the public API of libbufferengine.
 *
 * A collector opens a store by name, appends records to the store's ring in
 * shared memory, and may wait until what it wrote is durable on disk.  The
 * daemon bufferengined owns the rings and the segment files; this library
 * never touches a file beyond the ring's shm object.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure; be_strerror() turns any such value into text.  A handle may be
 * used from several threads at once.  A handle is not inherited across
 * fork(): the child opens its own.
 */
#ifndef BUFFERENGINE_H
#define BUFFERENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BE_VERSION_MAJOR 0
#define BE_VERSION_MINOR 1
#define BE_VERSION_STRING "0.1.0"

/* Store (and record) types. */
enum be_type {
	BE_TYPE_RAW = 1,
	BE_TYPE_METRIC = 2,
	BE_TYPE_LOG = 3,
	BE_TYPE_PROCESS = 4,
};

/* Longest store or instance name, without the terminating NUL. */
#define BE_NAME_MAX 63

typedef struct be_store be_store; /* opaque: one open store */

struct be_open_opts {
	/* NULL: $BE_INSTANCE, else "default". */
	const char *instance;
	/* Waiting for ring space or for the writers' lock:
	 * -1 forever, 0 not at all, else milliseconds. */
	int write_timeout_ms;
	/* Waiting for the ring to appear (a collector that starts before the
	 * daemon): 0 not at all, -1 forever, else milliseconds. */
	int open_timeout_ms;
};

/*
 * be_open() - open the ring of a store for writing.
 * @store: the store's name, [A-Za-z0-9_-]{1,63}
 * @opts:  NULL for the defaults (write timeout 1000 ms, no open wait)
 * @out:   receives the handle
 *
 * Returns 0, or:
 *  -EINVAL     a bad store or instance name, or bad options
 *  -ENOENT     no such store: configure it in bufferengined's config
 *  -EPROTO     the ring has another layout major version
 *  -EBADMSG    the ring's header is damaged
 *  -EXDEV      the ring belongs to another pid namespace
 *  -EACCES     no permission on the ring
 *  -ENOMEM     out of memory
 */
int be_open(const char *store, const struct be_open_opts *opts, be_store **out);

/*
 * be_write() - append one record to a raw store.
 *
 * Returns 0 once the record is in the ring (visible to the daemon), or:
 *  -EMSGSIZE    the payload is larger than a quarter of the ring (or 256 MiB)
 *  -EPROTOTYPE  the store is not a raw store
 *  -ENOBUFS     the ring is full and the store's policy is drop (counted)
 *  -ETIMEDOUT   the ring stayed full, or the lock held, for the write timeout
 *  -EBADMSG     the ring's header is damaged; nothing was written
 *  -EINVAL      a NULL handle, or a NULL payload with a non-zero length
 */
int be_write(be_store *s, const void *payload, size_t len);

/*
 * be_flush() - wait until every record this handle wrote is durable.
 * @timeout_ms: -1 forever, else milliseconds
 *
 * Asks the daemon for a flush with fdatasync and waits for it; one sync
 * serves every waiter it covers.  Returns 0, or -ETIMEDOUT (no daemon, or a
 * slow disk), -EBADMSG (a damaged ring header).
 */
int be_flush(be_store *s, int timeout_ms);

/*
 * be_close() - flush for at most the write timeout (10 s when that is -1:
 * call be_flush(s, -1) first to wait for ever), then unmap and free.
 * Returns 0, or the flush's error; the handle is freed in every case.
 */
int be_close(be_store *s);

/* be_strerror() - text for a value returned by any be_ function. */
const char *be_strerror(int err);

/* The store's type (enum be_type), or -EINVAL for a NULL handle. */
int be_store_type(const be_store *s);

/* The largest payload a store accepts, in bytes. */
size_t be_max_payload(const be_store *s);

#ifdef __cplusplus
}
#endif
#endif /* BUFFERENGINE_H */
