/*
 * recfmt.h - one record as one line of text or of JSON: the record printer
 * of be-read and shm-dump, and the small formatters under it (ISO time,
 * C escaping, JSON strings, base64, numbers).
 *
 * Output goes into a growable buffer (struct recfmt_buf) that the caller
 * drains: be-read hands it to stdio in pieces of about a megabyte, which
 * is what keeps it at millions of records a second.  A record is always
 * formatted whole into the buffer, so a record that fails half way (its
 * payload does not decode, memory runs out) is taken back and never shows
 * half-printed.
 *
 * ---------------------------------------------------------------------------
 * The output, one line a record
 *
 * Every line starts with the record header: seq, the time it was written
 * (ISO 8601 UTC with microseconds, and in JSON also in ns), the writer's pid
 * and the type.  Then the fields of the decoded payload (shm/codec.h):
 *
 * text:
 *   seq=7 ts=2026-11-27T01:02:03.123456Z pid=42 type=metric
 *     name=System.CPU.usage_percent kind=gauge value=12.5 unit=percent
 *     attrs={cpu=0,mode=user} host_id=h1
 *   ... type=metric name=req kind=histogram count=3 sum=4.5 bounds=[1,5]
 *     buckets=[1,2,0]
 *   ... type=log severity=ERROR(17) source=sshd category=auth log_pid=99
 *     msg="no such user" fields={user=bob}
 *   ... type=process snapshot=5 proc_pid=1 ppid=0 user=root exe=/sbin/init
 *     cpu=0.5% mem=0.1% rss=12345 threads=1 start=2026-11-27T00:00:00.000000Z
 *     cmd="/sbin/init splash"
 *   ... type=raw len=5 data="hello"
 *   A metric's name is ns.sub_ns.name, absent parts left out.  A string
 *   that is not a plain word ([A-Za-z0-9_./:@+-]+) is quoted and C-escaped:
 *   \\ \" \n \t \r, other control bytes and bytes that are not valid UTF-8
 *   as three octal digits; valid UTF-8 (beyond the C1 controls) as is.
 *   msg, cmd and data are always quoted.  Raw data is escaped as bytes
 *   (everything outside printable ASCII in octal), as before typed records.
 *   An attribute with an absent value is its key alone (k), an empty one
 *   k="".  pid fields of the payload are log_pid and proc_pid, so that no
 *   key appears twice in a line.  The payload's own time (a metric's
 *   sample time, a log's time, a snapshot's time) is shown as sample_ts=,
 *   log_ts=, snapshot_ts= only when it differs from the record's ts.
 *
 * JSON Lines (one object a line, keys in this order):
 *   {"seq":7,"ts":"2026-11-27T01:02:03.123456Z","ts_ns":...,"pid":42,
 *    "type":"metric","namespace":"System","sub_namespace":"CPU",
 *    "name":"usage_percent","unit":"percent","kind":"gauge","value":12.5,
 *    "sample_ts":"...","sample_ts_ns":...,"attrs":{"cpu":"0"},
 *    "meta":{"host_id":"h1"}}
 *   histogram: "kind":"histogram","count":3,"sum":4.5,"bounds":[1,5],
 *    "buckets":[1,2,0] in place of "value"
 *   log: "severity":17,"severity_text":"ERROR","message":"...","source":...,
 *    "category":...,"log_pid":99,"log_ts":...,"log_ts_ns":...,"fields":{...},
 *    "meta":{...}
 *   process: "snapshot_id":5,"snapshot_ts":"...","snapshot_ts_ns":...,
 *    "proc_pid":1,"ppid":0,"user":...,"exe":...,"cmdline":...,
 *    "cpu_percent":0.5,"mem_percent":0.1,"rss_bytes":12345,"threads":1,
 *    "start_ts":"...","start_ts_ns":...,"meta":{...}
 *   raw: "data":"<base64>"
 *
 * JSON rules:
 *  - An absent (NULL) string is left out, key and all; so is "meta" when
 *    all four of its strings are absent, "log_pid" when 0 (unknown) and
 *    "start_ts"/"start_ts_ns" when 0.  The exception is an attribute whose
 *    value is absent: its key is there, with null.  "attrs" and "fields"
 *    are always there ({} when empty).  An empty string is "".
 *  - Strings are valid JSON whatever their bytes: " \ and control bytes
 *    are escaped (\n \t \r \b \f, else \u00XX; also DEL as \u007f); valid
 *    UTF-8 passes through; each byte that is not part of valid UTF-8
 *    (overlong forms, surrogates and code points past U+10FFFF included)
 *    becomes \u00XX, the byte as a code point: no byte is lost, at the
 *    price that such a byte reads back like the Latin-1 character of that
 *    number.
 *  - Numbers: integers exactly; doubles with digits that always read back
 *    to the same double (Grisu2: the fewest such digits but in about 0.05%
 *    of cases, where it takes one more), written as JavaScript writes
 *    numbers: 12.5, 100000000000000000000, 0.000001, 1.5e-7, 1e+21; -0
 *    keeps its sign.  NaN and the infinities are no JSON numbers: they are
 *    the strings "NaN", "Infinity" and "-Infinity" (bare words in text).
 *
 * A payload that does not decode (damaged, or -EPROTO: written by a newer
 * library) gives the header, an "error" and the payload as it is:
 *   {"seq":..,"ts":..,"ts_ns":..,"pid":..,"type":"log",
 *    "error":"payload format version 2 is newer than this be-read",
 *    "data":"<base64>"}
 *   seq=.. ts=.. pid=.. type=log error="..." len=N data="<C-escaped>"
 *
 * A process snapshot put back together (recfmt_snapshot(), be-read --group):
 *   {"seq":FIRST,"last_seq":LAST,"ts":..,"ts_ns":..,"pid":..,
 *    "type":"process_snapshot","snapshot_id":..,"snapshot_ts":..,
 *    "snapshot_ts_ns":..,"count":N,"processes":[{"seq":..,"proc_pid":..,
 *    ... the process fields above ...},...]}
 *   seq=FIRST..LAST ts=.. pid=.. type=process_snapshot snapshot=ID
 *     snapshot_ts=.. count=N
 *     then one line a process, indented by two spaces:
 *     "  seq=.. proc_pid=.. ppid=.. ... cmd=\"...\""
 * ---------------------------------------------------------------------------
 */
#ifndef BE_RECFMT_H
#define BE_RECFMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shm/layout.h"

/* A growable output buffer.  err is sticky: once a growth failed, writes are dropped. */
struct recfmt_buf {
	char *p;
	size_t len;
	size_t cap;
	int err; /* 0, or -ENOMEM */
};

/* recfmt_buf_init() - an empty buffer of cap bytes to start with: 0 or -ENOMEM. */
int recfmt_buf_init(struct recfmt_buf *b, size_t cap);
void recfmt_buf_free(struct recfmt_buf *b);

/* recfmt_buf_grow() - room for n more bytes (the slow path of recfmt_need()). */
char *recfmt_buf_grow(struct recfmt_buf *b, size_t n);

/*
 * recfmt_need() - where the next n bytes go, with room for them; NULL when
 * memory ran out (b->err is then -ENOMEM).  Write, then add to b->len.
 */
static inline char *recfmt_need(struct recfmt_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return b->p + b->len;
	return recfmt_buf_grow(b, n);
}

static inline void recfmt_mem(struct recfmt_buf *b, const void *s, size_t n)
{
	char *d = recfmt_need(b, n);

	if (d) {
		memcpy(d, s, n);
		b->len += n;
	}
}

/* A string literal (only: the concatenation refuses anything else). */
#define recfmt_lit(b, s) recfmt_mem((b), "" s "", sizeof(s) - 1)

/* Decimal, as is. */
void recfmt_u64(struct recfmt_buf *b, uint64_t v);

/*
 * recfmt_double() - digits that read back to v (see above); NaN and the
 * infinities as "NaN", "Infinity", "-Infinity", in quotes when json.
 */
void recfmt_double(struct recfmt_buf *b, double v, int json);

/*
 * recfmt_cstr() - n bytes as the inside of a C string literal: printable
 * ASCII as is, \\ \" \n \t \r, any other byte as three octal digits (never
 * \xHH, which would swallow a hex digit that follows).  With utf8, valid
 * UTF-8 sequences of U+00A0 and above are kept as they are.
 */
void recfmt_cstr(struct recfmt_buf *b, const void *p, size_t n, int utf8);

/* recfmt_json_str() - n bytes as a JSON string, quotes included (rules above). */
void recfmt_json_str(struct recfmt_buf *b, const void *p, size_t n);

/* recfmt_base64() - n bytes in standard base64 with padding. */
void recfmt_base64(struct recfmt_buf *b, const void *p, size_t n);

#define RECFMT_TIME_LEN 27 /* "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" */

/*
 * recfmt_time_str() - CLOCK_REALTIME ns as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"
 * (UTC, truncated to microseconds) into buf, NUL-terminated; buf holds at
 * least RECFMT_TIME_LEN + 1 bytes.  Every uint64_t has such a date (the
 * last is in 2554).  Returns RECFMT_TIME_LEN.
 */
size_t recfmt_time_str(char *buf, uint64_t ns);
void recfmt_time(struct recfmt_buf *b, uint64_t ns);

/* "raw", "metric", "log", "process"; NULL for another type. */
const char *recfmt_type_name(unsigned type);

/* The record formatter. */
struct recfmt {
	struct recfmt_buf out; /* what was formatted: the caller drains it */
	int json;	       /* JSON Lines, else text */
	size_t text_data_max;  /* text: raw payload bytes shown, then "..." (0: all) */
	const char *prog;      /* "... is newer than this <prog>" */
};

/*
 * recfmt_init() - a formatter with an empty buffer of cap bytes (it grows
 * as a record needs).  Returns 0 or -ENOMEM.
 */
int recfmt_init(struct recfmt *f, int json, const char *prog, size_t cap);
void recfmt_free(struct recfmt *f);

/*
 * recfmt_record() - append the line of one record: header h, its h->len
 * payload bytes at payload.  Returns 0; or -EBADMSG / -EPROTO when the
 * payload did not decode (or its type is unknown) and the record was
 * printed with "error" and its raw bytes; or -ENOMEM when nothing was
 * appended (out.len is as it was).
 */
int recfmt_record(struct recfmt *f, const struct rec_hdr *h, const void *payload);

/*
 * recfmt_snapshot() - append one snapshot: the n >= 1 process records
 * hdrs[i] / payloads[i], all of one writer and one snapshot id, in seq
 * order.  Returns 0; -EBADMSG when one of them does not decode as a
 * process (then nothing is appended: print them one by one instead); or
 * -ENOMEM (nothing appended).
 */
int recfmt_snapshot(struct recfmt *f, const struct rec_hdr *const *hdrs,
		    const void *const *payloads, size_t n);

/*
 * recfmt_error_text() - in words, why a payload did not decode: err is what
 * recfmt_record() returned, payload/len the record's payload.  Writes at
 * most size bytes into buf, NUL-terminated; returns buf.
 */
const char *recfmt_error_text(const struct recfmt *f, int err, unsigned type, const void *payload,
			      size_t len, char *buf, size_t size);

#endif /* BE_RECFMT_H */
