/*
 * codec.h - the payload encoding of typed records: metric, log and process.
 *
 * This comment is the one description of the format.  The library encodes
 * (client/typed.c, before it takes the ring's lock); the daemon's tools
 * (be-read, shm-dump) decode.  The record header (layout.h) says which of
 * the three a payload is; the payload says it again, with its version.
 * This file and codec.c need libc and the record structs of the public
 * header (include/bufferengine.h), nothing else.
 *
 * ---------------------------------------------------------------------------
 * Format, version 1
 *
 * Every payload starts with two bytes: the format version (1) and the record
 * type (BE_TYPE_METRIC 2, BE_TYPE_LOG 3, BE_TYPE_PROCESS 4).  A decoder
 * refuses a version it does not know with -EPROTO (a later version may be
 * read by a later decoder: the version byte is the first thing it looks
 * at); version 0 and a type that is not the one asked for are -EBADMSG.
 *
 * Fields are packed, in the order below, with no alignment and no padding.
 * Integers are little-endian: u8, u16, u32, u64.  f64 is an IEEE 754
 * binary64 stored as the u64 of its bits, so every value round-trips
 * exactly: NaN with its sign and payload bits, +-inf, -0.0, denormals.
 *
 * str - a string, or "absent" (a NULL pointer in the API):
 *     uleb  n        n = 0: absent, nothing follows;
 *                    n >= 1: a string of n - 1 bytes follows
 *     n - 1 bytes    any byte but NUL (the API takes C strings), UTF-8 or not
 *   uleb is unsigned LEB128: 7 bits a byte, least significant group first,
 *   bit 7 set on every byte but the last; at most 4 bytes, and minimal (a
 *   last byte of 0 after another byte is refused).  A string is at most
 *   65535 bytes (CODEC_STR_MAX), a log message at most 16 MiB
 *   (CODEC_MSG_MAX).  Absent and empty differ: 0x00 is absent, 0x01 is "".
 *
 * meta - where the record came from (struct be_meta; NULL = all absent):
 *     str host_id, str agent_id, str hostname, str endpoint_id
 *
 * attrs - key=value pairs (metric attributes, log fields):
 *     u16 count      at most 1024 (CODEC_COUNT_MAX)
 *     count x { str key (never absent), str value }
 *
 * Metric (type 2):
 *     off size
 *      0  u8   version = 1
 *      1  u8   type = 2
 *      2  u8   kind: 1 gauge, 2 counter, 3 histogram
 *      3  u8   flags = 0 (reserved)
 *      4  u64  ts_ns
 *     12       gauge, counter:  f64 value
 *              histogram:       u64 count, f64 sum, u16 nbounds (<= 1024),
 *                               nbounds x f64 bound,
 *                               (nbounds + 1) x u64 bucket
 *      .  str ns, str sub_ns, str name (never absent), str unit
 *      .  meta
 *      .  attrs
 *   Histogram bounds are strictly increasing and never NaN (-inf and +inf
 *   may open and close the list); with nbounds = 0 there is one bucket.
 *   The sum of the buckets is not checked against count.
 *
 * Log (type 3):
 *      0  u8   version = 1
 *      1  u8   type = 3
 *      2  u8   severity: 0 (unspecified) or 1..24 (OpenTelemetry numbers)
 *      3  u8   flags = 0 (reserved)
 *      4  u32  pid (0: unknown)
 *      8  u64  ts_ns
 *     16  str severity_text (absent: readers show codec_severity_text(severity)),
 *         str message (never absent; up to 16 MiB), str source, str category
 *      .  meta
 *      .  attrs (the fields)
 *
 * Process (type 4):
 *      0  u8   version = 1
 *      1  u8   type = 4
 *      2  u16  flags = 0 (reserved)
 *      4  u32  pid
 *      8  u32  ppid
 *     12  u32  threads
 *     16  u64  snapshot_id
 *     24  u64  snapshot_ts_ns
 *     32  u64  start_ts_ns
 *     40  u64  rss_bytes
 *     48  f64  cpu_percent
 *     56  f64  mem_percent
 *     64  str user, str exe, str cmdline
 *      .  meta
 *
 * A payload is exactly its fields: trailing bytes are refused, and so is
 * anything the encoder would not write (a reserved bit, an absent required
 * string, a NUL in a string, a non-minimal uleb, a bad kind or severity,
 * bad bounds).  So a payload decodes only if it is the encoding of some
 * valid input, and encoding what it decodes to gives the same bytes back.
 * ---------------------------------------------------------------------------
 *
 * Encoding: codec_encode_X(rec, buf, cap) validates the record and returns
 * its exact encoded size, like snprintf: the bytes are in buf only when
 * that size is <= cap (buf may be NULL with cap 0: codec_X_size() is that).
 * It returns -EINVAL for a NULL record or required string (metric name, log
 * message, an attribute key), a bad metric kind, a severity outside 0..24,
 * a NULL attrs/bounds/buckets array with a non-zero count (a histogram
 * with no bounds may have NULL buckets: its one bucket is then count), NaN
 * or non-increasing bounds; -EMSGSIZE for a string over its limit or a
 * count over 1024.  Nothing is ever truncated.  The timestamps are encoded
 * as given (0 stays 0: the library puts "now" in before it encodes).
 *
 * Decoding: codec_decode_X(p, n, out) checks every byte of the n at p and
 * fills a view whose strings and arrays point into p (keep p alive and
 * unchanged while the view is used).  Returns 0, -EBADMSG (malformed:
 * never a read outside [p, p + n)), or -EPROTO (another format version);
 * *out is unchanged on failure.  Arrays in the payload are unaligned: read
 * them with the accessors below, never through a cast.
 */
#ifndef BE_CODEC_H
#define BE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bufferengine.h"

#define CODEC_VERSION 1
#define CODEC_STR_MAX 65535u           /* bytes of a string */
#define CODEC_MSG_MAX (UINT32_C(16) << 20) /* bytes of a log message: 16 MiB */
#define CODEC_COUNT_MAX 1024u          /* attributes, fields, histogram bounds */
#define CODEC_SEV_MAX 24               /* severities are 0..24 */

/* A string of a decoded payload: p == NULL when absent; not NUL-terminated. */
struct codec_str {
	const char *p;
	size_t len;
};

struct codec_meta {
	struct codec_str host_id, agent_id, hostname, endpoint_id;
};

/* The attributes (or fields) of a decoded payload: walk them with codec_attr_next(). */
struct codec_attrs {
	const uint8_t *p;   /* the first attribute */
	const uint8_t *end; /* just after the last */
	uint32_t count;
};

struct codec_attr_iter {
	const uint8_t *p, *end;
	uint32_t left;
};

struct codec_metric {
	uint8_t version;
	uint8_t kind;            /* enum be_metric_kind */
	uint64_t ts_ns;
	double value;            /* gauge, counter; 0 for a histogram */
	uint64_t count;          /* histogram; 0 otherwise */
	double sum;              /* histogram; 0 otherwise */
	uint32_t nbounds;        /* histogram: codec_metric_bound(m, 0 .. nbounds-1),
				  * codec_metric_bucket(m, 0 .. nbounds); 0 otherwise */
	const uint8_t *bounds;   /* unaligned f64 LE; NULL unless a histogram */
	const uint8_t *buckets;  /* unaligned u64 LE; NULL unless a histogram */
	struct codec_str ns, sub_ns, name, unit;
	struct codec_meta meta;
	struct codec_attrs attrs;
};

struct codec_log {
	uint8_t version;
	uint8_t severity;        /* 0..24 */
	uint32_t pid;
	uint64_t ts_ns;
	struct codec_str severity_text, message, source, category;
	struct codec_meta meta;
	struct codec_attrs fields;
};

struct codec_process {
	uint8_t version;
	uint32_t pid, ppid, threads;
	uint64_t snapshot_id, snapshot_ts_ns, start_ts_ns, rss_bytes;
	double cpu_percent, mem_percent;
	struct codec_str user, exe, cmdline;
	struct codec_meta meta;
};

/* Encode (see above): the exact size, or -EINVAL / -EMSGSIZE. */
ssize_t codec_encode_metric(const struct be_metric *m, void *buf, size_t cap);
ssize_t codec_encode_log(const struct be_log *l, void *buf, size_t cap);
ssize_t codec_encode_process(const struct be_process *p, void *buf, size_t cap);

static inline ssize_t codec_metric_size(const struct be_metric *m)
{
	return codec_encode_metric(m, NULL, 0);
}

static inline ssize_t codec_log_size(const struct be_log *l)
{
	return codec_encode_log(l, NULL, 0);
}

static inline ssize_t codec_process_size(const struct be_process *p)
{
	return codec_encode_process(p, NULL, 0);
}

/* Decode (see above): 0, -EBADMSG or -EPROTO; *out unchanged on failure. */
int codec_decode_metric(const void *p, size_t n, struct codec_metric *out);
int codec_decode_log(const void *p, size_t n, struct codec_log *out);
int codec_decode_process(const void *p, size_t n, struct codec_process *out);

/*
 * codec_attrs_begin() / codec_attr_next() - walk decoded attributes:
 *
 *	struct codec_attr_iter it;
 *	struct codec_str k, v;
 *
 *	codec_attrs_begin(&m.attrs, &it);
 *	while (codec_attr_next(&it, &k, &v) > 0)
 *		... k.p/k.len; v.p == NULL when the value is absent ...
 *
 * codec_attr_next() returns 1 with the next pair in *key and *value, 0 after
 * the last, or -EBADMSG if the bytes changed since they were decoded (it
 * checks them again, so even then it never reads outside them).
 */
void codec_attrs_begin(const struct codec_attrs *a, struct codec_attr_iter *it);
int codec_attr_next(struct codec_attr_iter *it, struct codec_str *key, struct codec_str *value);

/* Histogram bound i (< nbounds) and bucket i (<= nbounds); NaN / 0 beyond. */
double codec_metric_bound(const struct codec_metric *m, size_t i);
uint64_t codec_metric_bucket(const struct codec_metric *m, size_t i);

/*
 * codec_severity_text() - the OpenTelemetry short name of a severity
 * number: "TRACE", "TRACE2" .. "FATAL4"; "UNSPECIFIED" for 0; NULL outside
 * 0..24.
 */
const char *codec_severity_text(int sev);

/*
 * codec_severity_from_syslog() - the OpenTelemetry severity of a syslog
 * priority: the level in its low 3 bits (a full PRI, facility << 3 | level,
 * is fine).  emerg FATAL (21), alert ERROR3 (19), crit ERROR2 (18), err
 * ERROR (17), warning WARN (13), notice INFO2 (10), info INFO (9), debug
 * DEBUG (5), as the OpenTelemetry log data model maps them.  Returns
 * -EINVAL for a negative prio or one above 191 (facility 23, level 7).
 */
int codec_severity_from_syslog(int prio);

#endif /* BE_CODEC_H */
