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
#include <sys/uio.h>

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
 *  -EACCES     no permission on the ring: join the ring's group (ls -l
 *              /dev/shm/bufferengine.<instance>.<store> shows it)
 *  -ELOOP      the ring's name in /dev/shm is a symbolic link, which no
 *              ring is (someone planted it): refused, nothing is opened
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
 * be_write_batch() - append n records to a raw store under one lock: the
 * payload of record i is recs[i] (one iovec per record, not gathered into
 * one).  Every length is checked first: a payload too large fails the call
 * before anything is written.  The records share one timestamp and are
 * published together (in parts only when the ring fills in the middle).
 * Returns the count written (less than n only when the ring filled under
 * on_full = drop, or the write timeout passed), or -errno when none was:
 * the errors of be_write(), and -EINVAL for a NULL recs with n > 0, a NULL
 * iov_base with a non-zero length, or n > INT_MAX.
 */
int be_write_batch(be_store *s, const struct iovec *recs, size_t n);

/*
 * be_flush() - wait until every record this handle wrote is durable.
 * @timeout_ms: -1 forever, else milliseconds
 *
 * Asks the daemon for a flush with fdatasync and waits for it; one sync
 * serves every waiter it covers.  Returns 0, or -ETIMEDOUT (no daemon, or a
 * slow disk), -EBADMSG (a damaged ring header), -EIO (an fdatasync failed
 * after the records left the ring, on a store with sync = none: they may
 * be lost).
 */
int be_flush(be_store *s, int timeout_ms);

/*
 * be_close() - flush for at most the write timeout (10 s when that is -1:
 * call be_flush(s, -1) first to wait for ever), then unmap and free.
 * Returns 0, or the flush's error; the handle is freed in every case.
 */
int be_close(be_store *s);

/*
 * Typed payloads: metric, log and process records.  The library encodes
 * them (before taking the ring's lock) in the compact, versioned format
 * described in shm/codec.h; be-read and shm-dump decode them.  Strings are
 * NUL-terminated; NULL means "absent" (an empty string is kept as empty).
 * A string longer than 65535 bytes (a log message: 16 MiB), more than 1024
 * attributes or histogram bounds, or a record over the store's limit is
 * refused with -EMSGSIZE; a bad enum value or inconsistent counts with
 * -EINVAL; nothing is ever truncated.  Writing a record of the wrong type
 * for the store is refused with -EPROTOTYPE.
 */

/* One key=value attribute (metric attributes, log fields). */
struct be_attr {
	const char *key;
	const char *value;
};

/* Where a record came from, as gosight identifies it; any field may be NULL. */
struct be_meta {
	const char *host_id;
	const char *agent_id;
	const char *hostname;
	const char *endpoint_id;
};

enum be_metric_kind {
	BE_METRIC_GAUGE = 1,
	BE_METRIC_COUNTER = 2,   /* a sum */
	BE_METRIC_HISTOGRAM = 3,
};

struct be_metric {
	const char *ns;           /* namespace, e.g. "System" */
	const char *sub_ns;       /* sub-namespace, e.g. "CPU" */
	const char *name;         /* required, e.g. "usage_percent" */
	const char *unit;         /* e.g. "percent", "bytes" */
	int kind;                 /* enum be_metric_kind */
	double value;             /* gauge and counter */
	uint64_t ts_ns;           /* CLOCK_REALTIME ns of the sample; 0: now */
	/* histogram: nbounds upper bounds (increasing), nbounds + 1 bucket counts */
	const double *bounds;
	size_t nbounds;
	const uint64_t *buckets;
	uint64_t count;           /* histogram: observations */
	double sum;               /* histogram: their sum */
	const struct be_attr *attrs;
	size_t nattrs;
	const struct be_meta *meta; /* may be NULL */
};

/* Severity numbers as OpenTelemetry has them (1..24; syslog maps onto them). */
enum be_severity {
	BE_SEV_TRACE = 1,
	BE_SEV_DEBUG = 5,
	BE_SEV_INFO = 9,
	BE_SEV_WARN = 13,
	BE_SEV_ERROR = 17,
	BE_SEV_FATAL = 21,
};

struct be_log {
	uint64_t ts_ns;           /* when it was logged; 0: now */
	int severity;             /* 1..24, or 0: unspecified */
	const char *severity_text; /* NULL: derived from the number */
	const char *message;      /* required */
	const char *source;       /* e.g. the program or file */
	const char *category;     /* e.g. "auth", "kernel" */
	uint32_t pid;             /* the process that logged it, 0: unknown */
	const struct be_attr *fields;
	size_t nfields;
	const struct be_meta *meta;
};

/* One process of a snapshot: every record of a snapshot shares its id and time. */
struct be_process {
	uint64_t snapshot_id;
	uint64_t snapshot_ts_ns;  /* 0: now */
	uint32_t pid;
	uint32_t ppid;
	const char *user;
	const char *exe;
	const char *cmdline;
	double cpu_percent;
	double mem_percent;
	uint64_t rss_bytes;
	uint32_t threads;
	uint64_t start_ts_ns;     /* when the process started, CLOCK_REALTIME ns */
	const struct be_meta *meta;
};

/* be_write_metric() / be_write_log() / be_write_process() - one typed record.
 * Returns 0, or the errors of be_write() and those above. */
int be_write_metric(be_store *s, const struct be_metric *m);
int be_write_log(be_store *s, const struct be_log *l);
int be_write_process(be_store *s, const struct be_process *p);

/*
 * be_write_metrics() / be_write_logs() / be_write_processes() - n records
 * under one lock.  All are encoded (and checked) first: a bad one fails
 * the call before anything is written.  Returns the count written (less
 * than n only when the ring filled under on_full = drop, or the write
 * timeout passed), or -errno when none was.
 */
int be_write_metrics(be_store *s, const struct be_metric *m, size_t n);
int be_write_logs(be_store *s, const struct be_log *l, size_t n);
int be_write_processes(be_store *s, const struct be_process *p, size_t n);

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
