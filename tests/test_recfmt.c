/*
 * test_recfmt.c - the record printer of be-read and shm-dump (server/recfmt.c).
 *
 * Records of every type are built with the codec and formatted: each JSON
 * line must pass a strict validator (UTF-8 included) and hold the fields
 * and values expected; hostile strings (control bytes, quotes, backslashes,
 * invalid UTF-8), NaN and the infinities must still give valid JSON; text
 * is spot-checked; a damaged or newer payload gives "error" and its bytes;
 * thousands of random and mutated payloads never crash (run it under ASan).
 * Then the real programs: a daemon with log, metric and process stores,
 * typed records through the API, be-read --json on each store (every line
 * valid), be-read --group, be-write -p/-t on a log store, shm-dump
 * --records on typed records, and be-read's exit 2 on payloads that do not
 * decode.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/recfmt.h"
#include "shm/clock.h"
#include "shm/codec.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/testutil.h"

/* Checks for hot loops: Check's ck_assert_* cost more than a format. */
#define REQUIRE(c, ...)                            \
	do {                                       \
		if (!(c))                          \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* ------------------------------------------------------------------------
 * A strict JSON validator (RFC 8259), with UTF-8 checked in strings.
 */

static const char *jv_value(const char *p, int depth);

static const char *jv_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* The length of a valid UTF-8 sequence at p, or 0; written apart from recfmt's. */
static int jv_utf8(const unsigned char *p)
{
	unsigned cp;
	int n;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0; /* overlong */
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static const char *jv_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;
		int n;

		if (c < 0x20)
			return NULL; /* the NUL at the end too */
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!p[i] || !strchr("0123456789abcdefABCDEF", p[i]))
						return NULL;
				p += 5;
			} else if (*p && strchr("\"\\/bfnrt", *p)) {
				p++;
			} else {
				return NULL;
			}
			continue;
		}
		n = jv_utf8((const unsigned char *)p);
		if (!n)
			return NULL;
		p += n;
	}
	return p + 1;
}

static const char *jv_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

static const char *jv_seq(const char *p, char close, int keyed, int depth)
{
	p = jv_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (keyed) {
			p = jv_string(jv_ws(p));
			if (!p)
				return NULL;
			p = jv_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		p = jv_value(p, depth + 1);
		if (!p)
			return NULL;
		p = jv_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *jv_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = jv_ws(p);
	switch (*p) {
	case '{':
		return jv_seq(p, '}', 1, depth);
	case '[':
		return jv_seq(p, ']', 0, depth);
	case '"':
		return jv_string(p);
	case 't':
		return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f':
		return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n':
		return strncmp(p, "null", 4) ? NULL : p + 4;
	}
	return jv_number(p);
}

/* Whether s is JSON Lines: each line one object, nothing else.  Counts them. */
static int json_lines(const char *s, int *count)
{
	int n = 0;

	while (*s) {
		const char *e;

		if (*jv_ws(s) != '{')
			return 0;
		e = jv_value(s, 0);
		if (!e || *e != '\n')
			return 0;
		s = e + 1;
		n++;
	}
	if (count)
		*count = n;
	return 1;
}

/*
 * jget() - the raw text of member key of the object at obj (top level
 * only), into *v / *vlen.  Returns 1 when found.
 */
static int jget(const char *obj, const char *key, const char **v, size_t *vlen)
{
	size_t klen = strlen(key);
	const char *p = jv_ws(obj);

	if (*p != '{')
		return 0;
	p = jv_ws(p + 1);
	while (*p == '"') {
		const char *k = p + 1, *ke = jv_string(p), *ve;

		if (!ke)
			return 0;
		p = jv_ws(ke);
		if (*p++ != ':')
			return 0;
		p = jv_ws(p);
		ve = jv_value(p, 0);
		if (!ve)
			return 0;
		if ((size_t)(ke - 1 - k) == klen && !memcmp(k, key, klen)) {
			*v = p;
			*vlen = (size_t)(ve - p);
			return 1;
		}
		p = jv_ws(ve);
		if (*p != ',')
			return 0;
		p = jv_ws(p + 1);
	}
	return 0;
}

/* Member key of line must read exactly raw ("null" for a member that must be absent: NULL). */
static void expect(const char *line, const char *key, const char *raw)
{
	const char *v;
	size_t n;
	int found = jget(line, key, &v, &n);

	if (!raw) {
		ck_assert_msg(!found, "\"%s\" should be absent in:\n%s", key, line);
		return;
	}
	ck_assert_msg(found, "no \"%s\" in:\n%s", key, line);
	ck_assert_msg(n == strlen(raw) && !memcmp(v, raw, n), "\"%s\" is %.*s, want %s, in:\n%s",
		      key, (int)n, v, raw, line);
}

/* A copy of member key's raw text (an object, say), for expect() on it. */
static char *member(const char *line, const char *key)
{
	const char *v;
	size_t n;
	char *s;

	ck_assert_msg(jget(line, key, &v, &n), "no \"%s\" in:\n%s", key, line);
	s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	memcpy(s, v, n);
	s[n] = 0;
	return s;
}

/* ------------------------------------------------------------------------
 * Formatting one record.
 */

#define TS1 UINT64_C(1795741323123456789) /* 2026-11-27T01:02:03.123456789Z */

/* An encoded payload in a malloc of exactly its size (so ASan sees any overread). */
struct payload {
	uint8_t *p;
	size_t len;
};

static struct payload enc_metric(const struct be_metric *m)
{
	struct payload pl;
	ssize_t n = codec_metric_size(m);

	ck_assert_msg(n > 0, "codec_metric_size: %zd", n);
	pl.len = (size_t)n;
	pl.p = malloc(pl.len);
	ck_assert_int_eq(codec_encode_metric(m, pl.p, pl.len), n);
	return pl;
}

static struct payload enc_log(const struct be_log *l)
{
	struct payload pl;
	ssize_t n = codec_log_size(l);

	ck_assert_msg(n > 0, "codec_log_size: %zd", n);
	pl.len = (size_t)n;
	pl.p = malloc(pl.len);
	ck_assert_int_eq(codec_encode_log(l, pl.p, pl.len), n);
	return pl;
}

static struct payload enc_process(const struct be_process *p)
{
	struct payload pl;
	ssize_t n = codec_process_size(p);

	ck_assert_msg(n > 0, "codec_process_size: %zd", n);
	pl.len = (size_t)n;
	pl.p = malloc(pl.len);
	ck_assert_int_eq(codec_encode_process(p, pl.p, pl.len), n);
	return pl;
}

/*
 * fmt() - one record as a line (malloc'ed, NUL-terminated); *ret gets what
 * recfmt_record() returned.  The header: seq 7, ts TS1, pid 42.
 */
static char *fmt(int json, unsigned type, const void *payload, size_t len, int *ret)
{
	struct rec_hdr h = {
		.len = (uint32_t)len, .type = (uint16_t)type, .seq = 7, .ts_ns = TS1, .pid = 42
	};
	struct recfmt f;
	char *s;
	int r;

	ck_assert_int_eq(recfmt_init(&f, json, "be-read", 16), 0);
	r = recfmt_record(&f, &h, payload);
	if (ret)
		*ret = r;
	REQUIRE(r != -ENOMEM, "recfmt_record: ENOMEM");
	s = malloc(f.out.len + 1);
	memcpy(s, f.out.p, f.out.len);
	s[f.out.len] = 0;
	recfmt_free(&f);
	return s;
}

static char *fmt_pl(int json, unsigned type, struct payload pl, int *ret)
{
	char *s = fmt(json, type, pl.p, pl.len, ret);

	free(pl.p);
	return s;
}

static void assert_json_line(const char *s)
{
	int n = 0;

	ck_assert_msg(json_lines(s, &n) && n == 1, "not one valid JSON line:\n%s", s);
}

/* One text line: ends in its only newline, no other control byte. */
static void assert_text_line(const char *s)
{
	size_t n = strlen(s);

	REQUIRE(n > 0 && s[n - 1] == '\n', "text line without its newline: %s", s);
	for (size_t i = 0; i + 1 < n; i++)
		REQUIRE((unsigned char)s[i] >= 0x20 && s[i] != 0x7f,
			"control byte 0x%02x at %zu in text line: %s", (unsigned char)s[i], i, s);
}

/* ------------------------------------------------------------------------
 * Each type, JSON.
 */

static const struct be_meta meta_host = { .host_id = "h1", .hostname = "box" };

START_TEST(test_metric_json)
{
	struct be_attr attrs[] = { { "cpu", "0" }, { "mode", NULL } };
	struct be_metric m = { .ns = "System",
			       .sub_ns = "CPU",
			       .name = "usage_percent",
			       .unit = "percent",
			       .kind = BE_METRIC_GAUGE,
			       .value = 12.5,
			       .ts_ns = TS1 - 1000,
			       .attrs = attrs,
			       .nattrs = 2,
			       .meta = &meta_host };
	char *s, *o;
	int ret;

	s = fmt_pl(1, BE_TYPE_METRIC, enc_metric(&m), &ret);
	ck_assert_int_eq(ret, 0);
	assert_json_line(s);
	ck_assert_msg(!strncmp(s,
			       "{\"seq\":7,\"ts\":\"2026-11-27T01:02:03.123456Z\",\"ts_ns\":"
			       "1795741323123456789,\"pid\":42,\"type\":\"metric\",",
			       strlen("{\"seq\":7,\"ts\":\"2026-11-27T01:02:03.123456Z\",\"ts_ns\":"
				      "1795741323123456789,\"pid\":42,\"type\":\"metric\",")),
		      "header: %s", s);
	expect(s, "namespace", "\"System\"");
	expect(s, "sub_namespace", "\"CPU\"");
	expect(s, "name", "\"usage_percent\"");
	expect(s, "unit", "\"percent\"");
	expect(s, "kind", "\"gauge\"");
	expect(s, "value", "12.5");
	expect(s, "sample_ts_ns", "1795741323123455789");
	expect(s, "sample_ts", "\"2026-11-27T01:02:03.123455Z\"");
	expect(s, "count", NULL);
	o = member(s, "attrs");
	expect(o, "cpu", "\"0\"");
	expect(o, "mode", "null"); /* an absent value: the key stays, null */
	free(o);
	o = member(s, "meta");
	expect(o, "host_id", "\"h1\"");
	expect(o, "hostname", "\"box\"");
	expect(o, "agent_id", NULL);
	free(o);
	free(s);

	/* Absent strings are left out, and meta when all of it is absent; attrs stay. */
	m = (struct be_metric){ .name = "up", .kind = BE_METRIC_COUNTER, .value = -3 };
	s = fmt_pl(1, BE_TYPE_METRIC, enc_metric(&m), &ret);
	assert_json_line(s);
	expect(s, "namespace", NULL);
	expect(s, "sub_namespace", NULL);
	expect(s, "unit", NULL);
	expect(s, "meta", NULL);
	expect(s, "kind", "\"counter\"");
	expect(s, "value", "-3");
	expect(s, "attrs", "{}");
	free(s);
}
END_TEST

START_TEST(test_histogram_json)
{
	double bounds[] = { -INFINITY, 1, 2.5, INFINITY };
	uint64_t buckets[] = { 1, 2, 3, 4, UINT64_MAX };
	struct be_metric m = { .name = "latency",
			       .unit = "s",
			       .kind = BE_METRIC_HISTOGRAM,
			       .bounds = bounds,
			       .nbounds = 4,
			       .buckets = buckets,
			       .count = 10,
			       .sum = NAN,
			       .ts_ns = TS1 };
	char *s;
	int ret;

	s = fmt_pl(1, BE_TYPE_METRIC, enc_metric(&m), &ret);
	ck_assert_int_eq(ret, 0);
	assert_json_line(s);
	expect(s, "kind", "\"histogram\"");
	expect(s, "count", "10");
	expect(s, "sum", "\"NaN\"");
	expect(s, "bounds", "[\"-Infinity\",1,2.5,\"Infinity\"]");
	expect(s, "buckets", "[1,2,3,4,18446744073709551615]");
	expect(s, "value", NULL);
	free(s);

	s = fmt_pl(0, BE_TYPE_METRIC, enc_metric(&m), &ret);
	assert_text_line(s);
	ck_assert_msg(strstr(s, " name=latency kind=histogram count=10 sum=NaN "
				"bounds=[-Infinity,1,2.5,Infinity] "
				"buckets=[1,2,3,4,18446744073709551615] unit=s\n"),
		      "%s", s);
	free(s);

	/* No bounds: one bucket. */
	m.nbounds = 0;
	m.bounds = NULL;
	m.buckets = NULL;
	m.sum = 4.25;
	s = fmt_pl(1, BE_TYPE_METRIC, enc_metric(&m), &ret);
	assert_json_line(s);
	expect(s, "bounds", "[]");
	expect(s, "buckets", "[10]");
	expect(s, "sum", "4.25");
	free(s);
}
END_TEST

START_TEST(test_log_json)
{
	struct be_attr fields[] = { { "user", "bob" }, { "n", "" } };
	struct be_log l = { .ts_ns = TS1,
			    .severity = BE_SEV_ERROR,
			    .message = "no such user",
			    .source = "sshd",
			    .category = "auth",
			    .pid = 99,
			    .fields = fields,
			    .nfields = 2 };
	char *s, *o;
	int ret;

	s = fmt_pl(1, BE_TYPE_LOG, enc_log(&l), &ret);
	ck_assert_int_eq(ret, 0);
	assert_json_line(s);
	expect(s, "type", "\"log\"");
	expect(s, "severity", "17");
	expect(s, "severity_text", "\"ERROR\"");
	expect(s, "message", "\"no such user\"");
	expect(s, "source", "\"sshd\"");
	expect(s, "category", "\"auth\"");
	expect(s, "log_pid", "99");
	expect(s, "log_ts_ns", "1795741323123456789");
	expect(s, "meta", NULL);
	o = member(s, "fields");
	expect(o, "user", "\"bob\"");
	expect(o, "n", "\"\"");
	free(o);
	free(s);

	/* Its own severity text wins; pid 0 (unknown) is left out. */
	l = (struct be_log){ .severity = 0, .severity_text = "notice", .message = "" };
	s = fmt_pl(1, BE_TYPE_LOG, enc_log(&l), &ret);
	assert_json_line(s);
	expect(s, "severity", "0");
	expect(s, "severity_text", "\"notice\"");
	expect(s, "message", "\"\"");
	expect(s, "log_pid", NULL);
	expect(s, "source", NULL);
	expect(s, "fields", "{}");
	free(s);
}
END_TEST

START_TEST(test_process_json)
{
	struct be_process p = { .snapshot_id = 5,
				.snapshot_ts_ns = TS1,
				.pid = 1,
				.ppid = 0,
				.user = "root",
				.exe = "/sbin/init",
				.cmdline = "/sbin/init splash",
				.cpu_percent = 0.5,
				.mem_percent = 0.1,
				.rss_bytes = 12345,
				.threads = 3,
				.start_ts_ns = 1000000000,
				.meta = &meta_host };
	char *s;
	int ret;

	s = fmt_pl(1, BE_TYPE_PROCESS, enc_process(&p), &ret);
	ck_assert_int_eq(ret, 0);
	assert_json_line(s);
	expect(s, "type", "\"process\"");
	expect(s, "pid", "42");
	expect(s, "snapshot_id", "5");
	expect(s, "snapshot_ts", "\"2026-11-27T01:02:03.123456Z\"");
	expect(s, "snapshot_ts_ns", "1795741323123456789");
	expect(s, "proc_pid", "1");
	expect(s, "ppid", "0");
	expect(s, "user", "\"root\"");
	expect(s, "exe", "\"/sbin/init\"");
	expect(s, "cmdline", "\"/sbin/init splash\"");
	expect(s, "cpu_percent", "0.5");
	expect(s, "mem_percent", "0.1");
	expect(s, "rss_bytes", "12345");
	expect(s, "threads", "3");
	expect(s, "start_ts", "\"1970-01-01T00:00:01.000000Z\"");
	expect(s, "start_ts_ns", "1000000000");
	free(s);

	/* Unknown start and absent strings: left out. */
	p = (struct be_process){ .snapshot_id = 6, .pid = 2 };
	s = fmt_pl(1, BE_TYPE_PROCESS, enc_process(&p), &ret);
	assert_json_line(s);
	expect(s, "start_ts", NULL);
	expect(s, "user", NULL);
	expect(s, "cmdline", NULL);
	expect(s, "meta", NULL);
	free(s);
}
END_TEST

START_TEST(test_raw)
{
	char *s;
	int ret;

	s = fmt(1, BE_TYPE_RAW, "hello", 5, &ret);
	ck_assert_int_eq(ret, 0);
	ck_assert_str_eq(
		s, "{\"seq\":7,\"ts\":\"2026-11-27T01:02:03.123456Z\",\"ts_ns\":"
		   "1795741323123456789,\"pid\":42,\"type\":\"raw\",\"data\":\"aGVsbG8=\"}\n");
	free(s);
	s = fmt(0, BE_TYPE_RAW,
		"a\"b\\\n\x01\xff"
		"7",
		8, &ret);
	ck_assert_str_eq(s, "seq=7 ts=2026-11-27T01:02:03.123456Z pid=42 type=raw len=8 "
			    "data=\"a\\\"b\\\\\\n\\001\\3777\"\n");
	free(s);
	s = fmt(1, BE_TYPE_RAW, "", 0, &ret);
	assert_json_line(s);
	expect(s, "data", "\"\"");
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------
 * Hostile strings, numbers, times.
 */

static const char *const hostile[] = {
	"plain",
	"",
	"\"quoted\" and \\backslashed\\",
	"\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x1f\x7f",
	"lone continuation \x80 and \xbf",
	"overlong \xc0\xaf \xe0\x80\xaf \xf0\x80\x80\xaf",
	"surrogate \xed\xa0\x80 high \xf4\x90\x80\x80 \xf5\x80\x80\x80 \xff\xfe",
	"truncated at the end \xe2\x82",
	"truncated \xe2\x82 in the middle \xf0\x9f\x98",
	"valid: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0 C1 \xc2\x85",
	"</script>\u2028\u2029",
	"a=b,c={d} [e] spaces here",
};

START_TEST(test_hostile_strings)
{
	for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
		const char *h = hostile[i];
		struct be_attr a[] = { { h, h }, { "k", h } };
		struct be_meta meta = { h, h, h, h };
		struct be_metric m = { .ns = h,
				       .sub_ns = h,
				       .name = h,
				       .unit = h,
				       .kind = BE_METRIC_GAUGE,
				       .attrs = a,
				       .nattrs = 2,
				       .meta = &meta };
		struct be_log l = { .severity_text = h,
				    .message = h,
				    .source = h,
				    .category = h,
				    .fields = a,
				    .nfields = 2,
				    .meta = &meta };
		struct be_process p = { .user = h, .exe = h, .cmdline = h, .meta = &meta };

		for (int json = 0; json <= 1; json++) {
			char *s[3];

			s[0] = fmt_pl(json, BE_TYPE_METRIC, enc_metric(&m), NULL);
			s[1] = fmt_pl(json, BE_TYPE_LOG, enc_log(&l), NULL);
			s[2] = fmt_pl(json, BE_TYPE_PROCESS, enc_process(&p), NULL);
			for (int k = 0; k < 3; k++) {
				if (json)
					assert_json_line(s[k]);
				else
					assert_text_line(s[k]);
				free(s[k]);
			}
		}
	}
}
END_TEST

/* The exact JSON of a few strings: escapes, \u00XX for bytes that are not UTF-8. */
START_TEST(test_json_escapes)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "\n\t\r\b\f\x01\x1f\x7f", "\"\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
		{ "\xff\x80", "\"\\u00ff\\u0080\"" },
		{ "\xc0\xaf", "\"\\u00c0\\u00af\"" },		 /* overlong '/' */
		{ "\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\"" }, /* a surrogate */
		{ "x\xe2\x82", "\"x\\u00e2\\u0082\"" },		 /* cut short */
		{ "\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"" },	 /* U+10FFFF */
		{ "\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\"" },
	};
	struct recfmt_buf b;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ck_assert_int_eq(recfmt_buf_init(&b, 1), 0);
		recfmt_json_str(&b, cases[i].in, strlen(cases[i].in));
		ck_assert_int_eq(b.err, 0);
		ck_assert_msg(b.len == strlen(cases[i].out) && !memcmp(b.p, cases[i].out, b.len),
			      "case %zu: %.*s, want %s", i, (int)b.len, b.p, cases[i].out);
		recfmt_buf_free(&b);
	}

	/* NUL bytes (raw data may hold them) and a long string crossing the chunks. */
	{
		size_t n = 3 * 4096 + 7;
		char *big = malloc(n);

		for (size_t i = 0; i < n; i++)
			big[i] = (char)(i % 5 == 0 ? 0 : i % 7 == 0 ? 0xe2 : 'a' + i % 26);
		/* A valid 3-byte sequence across the first chunk boundary. */
		memcpy(big + 4095, "\xe2\x82\xac", 3);
		ck_assert_int_eq(recfmt_buf_init(&b, 1), 0);
		recfmt_json_str(&b, big, n);
		recfmt_lit(&b, "\n");
		ck_assert_int_eq(b.err, 0);
		{
			char *line = malloc(b.len + 3);

			line[0] = '[';
			memcpy(line + 1, b.p, b.len - 1);
			memcpy(line + b.len, "]\n", 3);
			ck_assert_msg(jv_value(line, 0) && *jv_value(line, 0) == '\n',
				      "a long string is not valid JSON");
			ck_assert_ptr_nonnull(strstr(line, "\\u0000"));
			ck_assert_ptr_nonnull(strstr(line, "\xe2\x82\xac"));
			free(line);
		}
		recfmt_buf_free(&b);
		free(big);
	}
}
END_TEST

START_TEST(test_numbers)
{
	static const struct {
		double v;
		const char *json, *text;
	} cases[] = {
		{ 0, "0", "0" },
		{ 12.5, "12.5", "12.5" },
		{ -3, "-3", "-3" },
		{ 0.1, "0.1", "0.1" },
		{ 1e300, "1e+300", "1e+300" },
		{ 1e15, "1000000000000000", "1000000000000000" },
		{ 1e20, "100000000000000000000", "100000000000000000000" },
		{ 1e21, "1e+21", "1e+21" },
		{ 9007199254740994.0, "9007199254740994", "9007199254740994" },
		{ 123456789012345.0, "123456789012345", "123456789012345" },
		{ 123456.789, "123456.789", "123456.789" },
		{ 0.000001, "0.000001", "0.000001" },
		{ 1.5e-7, "1.5e-7", "1.5e-7" },
		{ -2.5e-300, "-2.5e-300", "-2.5e-300" },
		{ 0.30000000000000004, "0.30000000000000004", "0.30000000000000004" },
		{ 1.7976931348623157e308, "1.7976931348623157e+308", "1.7976931348623157e+308" },
		{ 2.2250738585072014e-308, "2.2250738585072014e-308", "2.2250738585072014e-308" },
		{ 5e-324, "5e-324", "5e-324" },
		{ NAN, "\"NaN\"", "NaN" },
		{ INFINITY, "\"Infinity\"", "Infinity" },
		{ -INFINITY, "\"-Infinity\"", "-Infinity" },
	};
	struct recfmt_buf b;
	int longer = 0;

	ck_assert_int_eq(recfmt_buf_init(&b, 64), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int json = 0; json <= 1; json++) {
			const char *want = json ? cases[i].json : cases[i].text;

			b.len = 0;
			recfmt_double(&b, cases[i].v, json);
			ck_assert_msg(b.len == strlen(want) && !memcmp(b.p, want, b.len),
				      "case %zu (%s): %.*s, want %s", i, json ? "json" : "text",
				      (int)b.len, b.p, want);
		}
	}
	/* -0.0 keeps its sign. */
	b.len = 0;
	recfmt_double(&b, -0.0, 1);
	ck_assert_msg(b.len == 2 && !memcmp(b.p, "-0", 2), "-0.0: %.*s", (int)b.len, b.p);

	/*
	 * Random bit patterns: a JSON number (or one of the three strings) that
	 * reads back; and for the first few thousand, as short as the shortest
	 * that reads back (found with %.Ng, N = 1..17) in nearly all cases.
	 */
	for (int i = 0; i < 200000; i++) {
		uint64_t u = rng();
		double v, back;
		char s[64];

		if (i & 1) /* also ordinary magnitudes */
			u = (u & ~(UINT64_C(0x7ff) << 52)) |
			    ((UINT64_C(1023) - 30 + rng() % 60) << 52);
		memcpy(&v, &u, sizeof(v));
		b.len = 0;
		recfmt_double(&b, v, 1);
		REQUIRE(b.len > 0 && b.len < sizeof(s), "length %zu", b.len);
		memcpy(s, b.p, b.len);
		s[b.len] = 0;
		if (isnan(v)) {
			REQUIRE(!strcmp(s, "\"NaN\""), "NaN as %s", s);
			continue;
		}
		if (isinf(v)) {
			REQUIRE(!strcmp(s, v < 0 ? "\"-Infinity\"" : "\"Infinity\""), "inf: %s", s);
			continue;
		}
		REQUIRE(jv_number(s) == s + b.len, "not a JSON number: %s", s);
		back = strtod(s, NULL);
		REQUIRE(memcmp(&back, &v, sizeof(v)) == 0, "%s reads back as %.17g, not %.17g", s,
			back, v);
		if (i < 20000) {
			int sig = 0, best;
			char t[64];

			/* Significant digits: up to the exponent, leading zeros not counted. */
			for (const char *c = s; *c && *c != 'e'; c++)
				if (*c >= '0' && *c <= '9' && (sig || *c != '0'))
					sig++;
			for (best = 1; best < 17; best++) {
				snprintf(t, sizeof(t), "%.*g", best, v);
				if (strtod(t, NULL) == v)
					break;
			}
			/* Trailing zeros of an integer count as digits: those are fine. */
			if (sig > best && !strchr(s, '.') && !strchr(s, 'e'))
				sig = best;
			REQUIRE(sig <= 17, "%s: %d digits", s, sig);
			longer += sig > best;
		}
	}
	ck_assert_msg(longer < 20000 / 100, "%d of 20000 longer than the shortest", longer);
	recfmt_buf_free(&b);
}
END_TEST

START_TEST(test_time)
{
	char buf[RECFMT_TIME_LEN + 1], want[64];

	ck_assert_int_eq(recfmt_time_str(buf, 0), RECFMT_TIME_LEN);
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000000Z");
	recfmt_time_str(buf, UINT64_MAX);
	ck_assert_str_eq(buf, "2554-07-21T23:34:33.709551Z");
	recfmt_time_str(buf, TS1);
	ck_assert_str_eq(buf, "2026-11-27T01:02:03.123456Z");
	/* Against gmtime_r, over leap years and centuries. */
	for (int i = 0; i < 100000; i++) {
		uint64_t ns = i < 50000 ? rng() : rng() % (UINT64_C(4102444800) * 1000000000u);
		time_t t = (time_t)(ns / 1000000000u);
		struct tm tm;
		size_t n;

		REQUIRE(gmtime_r(&t, &tm), "gmtime_r");
		n = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want + n, sizeof(want) - n, ".%06uZ",
			 (unsigned)(ns % 1000000000u / 1000u));
		recfmt_time_str(buf, ns);
		REQUIRE(!strcmp(buf, want), "%llu: %s, want %s", (unsigned long long)ns, buf, want);
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * Text.
 */

START_TEST(test_text)
{
	struct be_attr attrs[] = { { "cpu", "0" }, { "mode", NULL }, { "w s", "a,b" } };
	struct be_metric m = { .ns = "System",
			       .sub_ns = "CPU",
			       .name = "usage_percent",
			       .unit = "percent",
			       .kind = BE_METRIC_GAUGE,
			       .value = 12.5,
			       .ts_ns = TS1,
			       .attrs = attrs,
			       .nattrs = 3,
			       .meta = &meta_host };
	struct be_log l = { .ts_ns = TS1,
			    .severity = BE_SEV_INFO,
			    .message = "hi \"you\"\n",
			    .source = "app",
			    .category = "web",
			    .pid = 77 };
	struct be_process p = { .snapshot_id = 5,
				.snapshot_ts_ns = TS1,
				.pid = 1,
				.ppid = 0,
				.user = "root",
				.exe = "/sbin/init",
				.cmdline = "/sbin/init splash",
				.cpu_percent = 0.5,
				.mem_percent = 12,
				.rss_bytes = 12345,
				.threads = 3,
				.start_ts_ns = 1000000000 };
	char *s;

	s = fmt_pl(0, BE_TYPE_METRIC, enc_metric(&m), NULL);
	ck_assert_str_eq(s, "seq=7 ts=2026-11-27T01:02:03.123456Z pid=42 type=metric "
			    "name=System.CPU.usage_percent kind=gauge value=12.5 unit=percent "
			    "attrs={cpu=0,mode,\"w s\"=\"a,b\"} host_id=h1 hostname=box\n");
	free(s);

	/* Absent parts of the name left out; one that is not a word quotes the name. */
	m = (struct be_metric){ .sub_ns = "CPU",
				.name = "up",
				.kind = BE_METRIC_COUNTER,
				.value = 1,
				.ts_ns = TS1 - 1000 };
	s = fmt_pl(0, BE_TYPE_METRIC, enc_metric(&m), NULL);
	ck_assert_msg(strstr(s, " name=CPU.up kind=counter value=1 "
				"sample_ts=2026-11-27T01:02:03.123455Z\n"),
		      "%s", s);
	free(s);
	m.ns = "my ns";
	s = fmt_pl(0, BE_TYPE_METRIC, enc_metric(&m), NULL);
	ck_assert_msg(strstr(s, " name=\"my ns.CPU.up\" kind=counter"), "%s", s);
	free(s);

	s = fmt_pl(0, BE_TYPE_LOG, enc_log(&l), NULL);
	ck_assert_str_eq(s, "seq=7 ts=2026-11-27T01:02:03.123456Z pid=42 type=log "
			    "severity=INFO(9) source=app category=web log_pid=77 "
			    "msg=\"hi \\\"you\\\"\\n\"\n");
	free(s);

	s = fmt_pl(0, BE_TYPE_PROCESS, enc_process(&p), NULL);
	ck_assert_str_eq(s, "seq=7 ts=2026-11-27T01:02:03.123456Z pid=42 type=process "
			    "snapshot=5 proc_pid=1 ppid=0 user=root exe=/sbin/init cpu=0.5% "
			    "mem=12% rss=12345 threads=3 start=1970-01-01T00:00:01.000000Z "
			    "cmd=\"/sbin/init splash\"\n");
	free(s);

	/* Text keeps valid UTF-8, escapes the rest. */
	l.message = "caf\xc3\xa9 \xff \xc2\x85";
	s = fmt_pl(0, BE_TYPE_LOG, enc_log(&l), NULL);
	ck_assert_msg(strstr(s, " msg=\"caf\xc3\xa9 \\377 \\302\\205\"\n"), "%s", s);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------------
 * Payloads that do not decode.
 */

START_TEST(test_damaged)
{
	struct be_log l = { .severity = 9, .message = "hello" };
	struct payload pl = enc_log(&l);
	char *s, *t;
	int ret;

	/* Cut short by one byte. */
	s = fmt(1, BE_TYPE_LOG, pl.p, pl.len - 1, &ret);
	ck_assert_int_eq(ret, -EBADMSG);
	assert_json_line(s);
	expect(s, "type", "\"log\"");
	expect(s, "error", "\"damaged log payload: it does not decode\"");
	expect(s, "message", NULL);
	ck_assert_msg(jget(s, "data", &(const char *){ NULL }, &(size_t){ 0 }), "%s", s);
	free(s);
	t = fmt(0, BE_TYPE_LOG, pl.p, pl.len - 1, &ret);
	ck_assert_int_eq(ret, -EBADMSG);
	assert_text_line(t);
	ck_assert_msg(strstr(t, " type=log error=\"damaged log payload: it does not decode\" len="),
		      "%s", t);
	free(t);

	/* A newer format version. */
	pl.p[0] = 2;
	s = fmt(1, BE_TYPE_LOG, pl.p, pl.len, &ret);
	ck_assert_int_eq(ret, -EPROTO);
	assert_json_line(s);
	expect(s, "error", "\"payload format version 2 is newer than this be-read\"");
	free(s);

	/* A metric payload in a log record; a type nobody knows; nothing at all. */
	pl.p[0] = 1;
	s = fmt(1, BE_TYPE_METRIC, pl.p, pl.len, &ret);
	ck_assert_int_eq(ret, -EBADMSG);
	assert_json_line(s);
	free(s);
	s = fmt(1, 9, pl.p, pl.len, &ret);
	ck_assert_int_eq(ret, -EBADMSG);
	assert_json_line(s);
	expect(s, "type", "\"9\"");
	expect(s, "error", "\"unknown record type 9\"");
	free(s);
	s = fmt(1, BE_TYPE_PROCESS, NULL, 0, &ret);
	ck_assert_int_eq(ret, -EBADMSG);
	assert_json_line(s);
	expect(s, "data", "\"\"");
	free(s);
	free(pl.p);
}
END_TEST

/* Random bytes, and mutations of valid payloads: never a crash, always one valid line. */
START_TEST(test_garbage)
{
	static const unsigned types[] = { BE_TYPE_RAW, BE_TYPE_METRIC,
					  BE_TYPE_LOG, BE_TYPE_PROCESS,
					  0,	       77 };
	double bounds[] = { 1, 2 };
	uint64_t buckets[] = { 1, 2, 3 };
	struct be_attr a[] = { { "k", "v" }, { "x", NULL } };
	struct be_meta meta = { "h", "a", NULL, "e" };
	struct be_metric m = { .ns = "n",
			       .name = "m",
			       .kind = BE_METRIC_HISTOGRAM,
			       .bounds = bounds,
			       .nbounds = 2,
			       .buckets = buckets,
			       .count = 6,
			       .attrs = a,
			       .nattrs = 2,
			       .meta = &meta };
	struct be_log l = { .severity = 3,
			    .message = "msg",
			    .source = "s",
			    .fields = a,
			    .nfields = 2,
			    .meta = &meta };
	struct be_process p = { .user = "u", .cmdline = "c", .meta = &meta };
	struct payload valid[3] = { enc_metric(&m), enc_log(&l), enc_process(&p) };
	struct recfmt f[2];
	int decoded = 0, failed = 0;

	ck_assert_int_eq(recfmt_init(&f[0], 0, "be-read", 1), 0);
	ck_assert_int_eq(recfmt_init(&f[1], 1, "be-read", 1), 0);
	for (int i = 0; i < 30000; i++) {
		unsigned type = types[rng() % ARRAY_SIZE(types)];
		size_t len;
		uint8_t *buf;
		struct rec_hdr h;

		if (i % 2 && type >= BE_TYPE_METRIC && type <= BE_TYPE_PROCESS) {
			/* A valid payload, mutated: a few bytes changed, maybe cut. */
			const struct payload *v = &valid[type - BE_TYPE_METRIC];

			len = v->len - (rng() % 4 == 0 ? rng() % v->len : 0);
			buf = malloc(len ? len : 1);
			memcpy(buf, v->p, len);
			for (int k = (int)(rng() % 3); k >= 0 && len; k--)
				buf[rng() % len] ^= (uint8_t)(1 + rng() % 255);
		} else {
			len = rng() % 300;
			buf = malloc(len ? len : 1);
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rng();
			if (len >= 2 && rng() % 2) {
				buf[0] = 1; /* get past the version and type check */
				buf[1] = (uint8_t)type;
			}
		}
		h = (struct rec_hdr){ .len = (uint32_t)len,
				      .type = (uint16_t)type,
				      .seq = (uint64_t)i,
				      .ts_ns = rng(),
				      .pid = (uint32_t)rng() };
		for (int json = 0; json <= 1; json++) {
			int ret, n = 0;

			f[json].out.len = 0;
			ret = recfmt_record(&f[json], &h, buf);
			REQUIRE(ret == 0 || ret == -EBADMSG || ret == -EPROTO, "recfmt_record: %d",
				ret);
			if (json)
				ret ? failed++ : decoded++;
			recfmt_lit(&f[json].out, "\0");
			REQUIRE(f[json].out.err == 0, "out of memory");
			if (json) {
				REQUIRE(json_lines(f[json].out.p, &n) && n == 1,
					"record %d: not one JSON line:\n%s", i, f[json].out.p);
				REQUIRE(ret == 0 || strstr(f[json].out.p, ",\"error\":"),
					"no error in %s", f[json].out.p);
			} else {
				assert_text_line(f[json].out.p);
			}
		}
		free(buf);
	}
	/* Both paths were taken, many times. */
	ck_assert_int_gt(decoded, 1000);
	ck_assert_int_gt(failed, 1000);
	recfmt_free(&f[0]);
	recfmt_free(&f[1]);
	for (int i = 0; i < 3; i++)
		free(valid[i].p);
}
END_TEST

/* A snapshot on one line; a member that does not decode refuses the group. */
START_TEST(test_snapshot)
{
	struct rec_hdr h[3];
	const struct rec_hdr *hp[3];
	const void *pp[3];
	struct payload pl[3];
	struct recfmt f;
	char *o;

	for (int i = 0; i < 3; i++) {
		struct be_process p = { .snapshot_id = 9,
					.snapshot_ts_ns = TS1,
					.pid = (uint32_t)(100 + i),
					.ppid = 1,
					.user = "u",
					.cmdline = i == 1 ? "a \"b\"\n" : "c" };

		pl[i] = enc_process(&p);
		h[i] = (struct rec_hdr){ .len = (uint32_t)pl[i].len,
					 .type = BE_TYPE_PROCESS,
					 .seq = 10 + (uint64_t)i,
					 .ts_ns = TS1,
					 .pid = 42 };
		hp[i] = &h[i];
		pp[i] = pl[i].p;
	}
	ck_assert_int_eq(recfmt_init(&f, 1, "be-read", 1), 0);
	ck_assert_int_eq(recfmt_snapshot(&f, hp, pp, 3), 0);
	recfmt_lit(&f.out, "\0");
	assert_json_line(f.out.p);
	expect(f.out.p, "seq", "10");
	expect(f.out.p, "last_seq", "12");
	expect(f.out.p, "type", "\"process_snapshot\"");
	expect(f.out.p, "snapshot_id", "9");
	expect(f.out.p, "count", "3");
	o = member(f.out.p, "processes");
	ck_assert_msg(!strncmp(o,
			       "[{\"seq\":10,\"proc_pid\":100,\"ppid\":1,\"user\":\"u\","
			       "\"cmdline\":\"c\"",
			       48),
		      "%s", o);
	free(o);
	recfmt_free(&f);

	ck_assert_int_eq(recfmt_init(&f, 0, "be-read", 1), 0);
	ck_assert_int_eq(recfmt_snapshot(&f, hp, pp, 3), 0);
	recfmt_lit(&f.out, "\0");
	ck_assert_msg(!strncmp(f.out.p,
			       "seq=10..12 ts=2026-11-27T01:02:03.123456Z pid=42 "
			       "type=process_snapshot snapshot=9 "
			       "snapshot_ts=2026-11-27T01:02:03.123456Z count=3\n"
			       "  seq=10 proc_pid=100 ppid=1 user=u",
			       strlen("seq=10..12 ts=2026-11-27T01:02:03.123456Z pid=42 "
				      "type=process_snapshot snapshot=9 "
				      "snapshot_ts=2026-11-27T01:02:03.123456Z count=3\n"
				      "  seq=10 proc_pid=100 ppid=1 user=u")),
		      "%s", f.out.p);
	recfmt_free(&f);

	/* A damaged member: nothing appended, -EBADMSG. */
	pl[2].p[pl[2].len - 1] ^= 0xff;
	ck_assert_int_eq(recfmt_init(&f, 1, "be-read", 1), 0);
	ck_assert_int_eq(recfmt_snapshot(&f, hp, pp, 3), -EBADMSG);
	ck_assert_uint_eq(f.out.len, 0);
	recfmt_free(&f);
	for (int i = 0; i < 3; i++)
		free(pl[i].p);
}
END_TEST

/* ------------------------------------------------------------------------
 * The programs, end to end.
 */

/* Read a whole file into a malloc'ed NUL-terminated string. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	return s;
}

struct run {
	int status; /* exit status, or 128 + signal */
	char *out, *err;
};

/* Run argv with input on stdin, stdout and stderr into files of dir; wait. */
static struct run run(const char *dir, char *const argv[], const char *input)
{
	char in[512], out[512], err[512];
	struct run r;
	int st, fd;
	pid_t pid;

	snprintf(in, sizeof(in), "%s/run.in", dir);
	snprintf(out, sizeof(out), "%s/run.out", dir);
	snprintf(err, sizeof(err), "%s/run.err", dir);
	fd = open(in, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	if (input)
		ck_assert_int_eq(write(fd, input, strlen(input)), (ssize_t)strlen(input));
	close(fd);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int i = open(in, O_RDONLY), o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644),
		    e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (i < 0 || o < 0 || e < 0)
			_exit(126);
		dup2(i, 0);
		dup2(o, 1);
		dup2(e, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	tu_note_pid(pid);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	tu_forget_pid(pid);
	r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	r.out = slurp(out);
	r.err = slurp(err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* be-read --json on <data_dir>/<store>: every line valid JSON; n lines. */
static struct run be_read(struct tu_daemon *d, const char *store, const char *opt, int *n)
{
	char dir[400];
	char *argv[] = { BE_BIN_DIR "/be-read", "--json", (char *)opt, dir, NULL };
	struct run r;

	snprintf(dir, sizeof(dir), "%s/%s", d->data_dir, store);
	if (!opt) {
		argv[2] = dir;
		argv[3] = NULL;
	}
	r = run(d->dir, argv, NULL);
	if (!json_lines(r.out, n)) {
		fprintf(stderr, "be-read output:\n%s\n", r.out);
		ck_abort_msg("be-read --json %s: output is not JSON Lines (printed above)", store);
	}
	return r;
}

#define NLINE 300

START_TEST(test_programs)
{
	struct tu_daemon d;
	struct be_open_opts oo = { .write_timeout_ms = 5000, .open_timeout_ms = 5000 };
	be_store *ls, *ms, *ps;
	struct run r;
	char *line, *o;
	int n;

	tu_daemon_config(&d, NULL,
			 "[store logs]\ntype = log\ncapacity = 1M\nflush_interval = 100ms\n"
			 "[store metrics]\ntype = metric\ncapacity = 1M\nflush_interval = 100ms\n"
			 "[store procs]\ntype = process\ncapacity = 1M\nflush_interval = 100ms\n"
			 "[store raw]\ntype = raw\ncapacity = 1M\nflush_interval = 100ms\n");
	ck_assert_msg(tu_daemon_start(&d, "logs") == 0, "daemon did not start:\n%s",
		      tu_file_text(d.log));
	oo.instance = d.instance;
	ck_assert_int_eq(be_open("logs", &oo, &ls), 0);
	ck_assert_int_eq(be_open("metrics", &oo, &ms), 0);
	ck_assert_int_eq(be_open("procs", &oo, &ps), 0);

	/* Typed records, hostile strings and numbers among them. */
	for (int i = 0; i < NLINE; i++) {
		const char *h = hostile[(size_t)i % ARRAY_SIZE(hostile)];
		struct be_attr a[] = { { "i", h }, { h, NULL } };
		double bounds[] = { -INFINITY, 0.5, 1e300 };
		uint64_t buckets[] = { 1, 2, 3, 4 };
		struct be_metric m = { .ns = "System",
				       .sub_ns = i % 3 ? "CPU" : NULL,
				       .name = h[0] ? h : "x",
				       .kind = 1 + i % 3,
				       .value = i % 5 == 0 ? NAN : i / 7.0,
				       .bounds = bounds,
				       .nbounds = 3,
				       .buckets = buckets,
				       .count = 10,
				       .sum = i % 4 == 0 ? -INFINITY : 2.5,
				       .attrs = a,
				       .nattrs = 2,
				       .meta = &meta_host };
		struct be_log l = { .severity = i % 25,
				    .message = h,
				    .source = "t",
				    .pid = (uint32_t)i,
				    .fields = a,
				    .nfields = 2 };
		struct be_process p = { .snapshot_id = 1000 + (uint64_t)i / 50,
					.pid = (uint32_t)i,
					.ppid = 1,
					.user = h,
					.cmdline = h,
					.cpu_percent = i % 9 == 0 ? INFINITY : 1.0 / (i + 1),
					.rss_bytes = (uint64_t)i << 20 };

		ck_assert_int_eq(be_write_metric(ms, &m), 0);
		ck_assert_int_eq(be_write_log(ls, &l), 0);
		ck_assert_int_eq(be_write_process(ps, &p), 0);
	}
	ck_assert_int_eq(be_flush(ls, 10000), 0);
	ck_assert_int_eq(be_flush(ms, 10000), 0);
	ck_assert_int_eq(be_flush(ps, 10000), 0);

	r = be_read(&d, "metrics", NULL, &n);
	ck_assert_msg(r.status == 0 && n == NLINE, "metrics: status %d, %d lines\n%s", r.status, n,
		      r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "\"kind\":\"histogram\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"value\":\"NaN\""));
	ck_assert_ptr_null(strstr(r.out, "\"error\""));
	run_free(&r);
	r = be_read(&d, "logs", NULL, &n);
	ck_assert_msg(r.status == 0 && n == NLINE, "logs: status %d, %d lines\n%s", r.status, n,
		      r.err);
	ck_assert_ptr_null(strstr(r.out, "\"error\""));
	run_free(&r);
	r = be_read(&d, "procs", NULL, &n);
	ck_assert_msg(r.status == 0 && n == NLINE, "procs: status %d, %d lines\n%s", r.status, n,
		      r.err);
	run_free(&r);

	/* --group: one line per snapshot (50 processes each), valid JSON. */
	r = be_read(&d, "procs", "--group", &n);
	ck_assert_msg(r.status == 0 && n == NLINE / 50, "--group: status %d, %d lines\n%s",
		      r.status, n, r.err);
	expect(r.out, "type", "\"process_snapshot\"");
	expect(r.out, "snapshot_id", "1000");
	expect(r.out, "count", "50");
	run_free(&r);

	/* be-write on a log store: -p err -> 17, -t -> source, the pid its own. */
	{
		char *argv[] = {
			BE_BIN_DIR "/be-write", "-i",  d.instance, "-p", "err", "-t", "mytag",
			"--category",		"cat", "logs",	   NULL
		};

		r = run(d.dir, argv, "from be-write\n");
		ck_assert_msg(r.status == 0, "be-write: %d\n%s", r.status, r.err);
		run_free(&r);
	}
	r = be_read(&d, "logs", NULL, &n);
	ck_assert_int_eq(n, NLINE + 1);
	line = strstr(r.out, "\"message\":\"from be-write\"");
	ck_assert_ptr_nonnull(line);
	while (line > r.out && line[-1] != '\n')
		line--;
	expect(line, "severity", "17");
	expect(line, "severity_text", "\"ERROR\"");
	expect(line, "source", "\"mytag\"");
	expect(line, "category", "\"cat\"");
	o = member(line, "log_pid");
	ck_assert_msg(strcmp(o, "0") != 0, "log_pid %s", o);
	free(o);
	run_free(&r);

	/* Other priorities; a metric store and log options on a raw store are refused. */
	{
		char *argv[] = { BE_BIN_DIR "/be-write", "-i",	 d.instance, "-p",
				 "daemon.warning",	 "logs", NULL };

		r = run(d.dir, argv, "warned\n");
		ck_assert_int_eq(r.status, 0);
		run_free(&r);
		argv[4] = "local7.6";
		r = run(d.dir, argv, "numeric level\n");
		ck_assert_int_eq(r.status, 0);
		run_free(&r);
		argv[4] = "131"; /* 16 << 3 | 3: local0.err */
		r = run(d.dir, argv, "whole priority\n");
		ck_assert_int_eq(r.status, 0);
		run_free(&r);
		argv[4] = "bogus.err";
		r = run(d.dir, argv, "x\n");
		ck_assert_int_eq(r.status, 2);
		ck_assert_ptr_nonnull(strstr(r.err, "bogus.err"));
		run_free(&r);
		argv[3] = "metrics";
		argv[4] = NULL;
		r = run(d.dir, argv, "x\n");
		ck_assert_msg(r.status == 1 && strstr(r.err, "metric store"), "%d %s", r.status,
			      r.err);
		run_free(&r);
		argv[3] = "-t";
		argv[4] = "x";
		argv[5] = "raw";
		r = run(d.dir, argv, "x\n");
		ck_assert_msg(r.status == 2 && strstr(r.err, "log stores"), "%d %s", r.status,
			      r.err);
		run_free(&r);
	}
	r = be_read(&d, "logs", NULL, &n);
	ck_assert_int_eq(n, NLINE + 4);
	line = strstr(r.out, "\"message\":\"warned\"");
	ck_assert_ptr_nonnull(line);
	while (line[-1] != '\n')
		line--;
	expect(line, "severity", "13");
	o = member(line, "fields");
	expect(o, "facility", "\"daemon\"");
	free(o);
	line = strstr(r.out, "\"message\":\"numeric level\"");
	while (line[-1] != '\n')
		line--;
	expect(line, "severity", "9");
	line = strstr(r.out, "\"message\":\"whole priority\"");
	while (line[-1] != '\n')
		line--;
	expect(line, "severity", "17");
	run_free(&r);

	/*
	 * Payloads that do not decode, appended straight to the ring: be-read
	 * prints them with "error", says so, and exits 2.
	 */
	{
		struct ring_map m;
		uint64_t ct = 0;
		uint8_t junk[] = { 1, BE_TYPE_LOG, 3, 0, 1, 2 };
		uint8_t newer[] = { 2, BE_TYPE_LOG, 9, 0, 0, 0, 0, 0 };
		struct be_log l = { .severity = 9, .message = "after the damage" };

		ck_assert_int_eq(ring_open(d.instance, "logs", 0, &m), 0);
		ck_assert_int_eq(ring_append(&m, &ct, BE_TYPE_LOG, junk, sizeof(junk),
					     now_real_ns(), 1, 1000, NULL),
				 0);
		ck_assert_int_eq(ring_append(&m, &ct, BE_TYPE_LOG, newer, sizeof(newer),
					     now_real_ns(), 1, 1000, NULL),
				 0);
		ring_unmap(&m);
		ck_assert_int_eq(be_write_log(ls, &l), 0);
		ck_assert_int_eq(be_flush(ls, 10000), 0);
	}
	r = be_read(&d, "logs", NULL, &n);
	ck_assert_msg(r.status == 2, "be-read on undecodable payloads: status %d\n%s", r.status,
		      r.err);
	ck_assert_int_eq(n, NLINE + 7);
	ck_assert_ptr_nonnull(strstr(r.out, "\"error\":\"damaged log payload"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"error\":\"payload format version 2 is newer than "
					    "this be-read\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"message\":\"after the damage\""));
	ck_assert_msg(strstr(r.err, "2 records could not be decoded") &&
			      strstr(r.err, "newer payload format"),
		      "stderr:\n%s", r.err);
	run_free(&r);

	/*
	 * shm-dump --records: typed records still in the ring (no daemon to
	 * flush them), the same JSON as be-read's.
	 */
	ck_assert_int_eq(be_close(ls), 0);
	ck_assert_int_eq(be_close(ms), 0);
	ck_assert_int_eq(be_close(ps), 0);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	oo.write_timeout_ms = 100; /* be_close's flush: there is no daemon */
	ck_assert_int_eq(be_open("logs", &oo, &ls), 0);
	for (int i = 0; i < 3; i++) {
		struct be_log l = { .severity = 13, .message = hostile[3 + i], .source = "sd" };

		ck_assert_int_eq(be_write_log(ls, &l), 0);
	}
	{
		char *argv[] = { BE_BIN_DIR "/shm-dump",
				 "-i",
				 d.instance,
				 "--json",
				 "logs",
				 "--records",
				 "10",
				 NULL };

		r = run(d.dir, argv, NULL);
		ck_assert_msg(r.status == 0, "shm-dump: %d\n%s", r.status, r.err);
		ck_assert_msg(json_lines(r.out, &n) && n == 3, "shm-dump --records:\n%s", r.out);
		expect(r.out, "type", "\"log\"");
		expect(r.out, "severity", "13");
		expect(r.out, "source", "\"sd\"");
		run_free(&r);
		argv[3] = "logs";
		argv[4] = "-n";
		argv[5] = "10";
		argv[6] = NULL;
		r = run(d.dir, argv, NULL);
		ck_assert_int_eq(r.status, 0);
		ck_assert_msg(strstr(r.out, " type=log severity=WARN(13) source=sd msg=\""), "%s",
			      r.out);
		run_free(&r);
	}

	/* Its flush times out: there is no daemon. */
	ck_assert_int_eq(be_close(ls), -ETIMEDOUT);
}
END_TEST

Suite *recfmt_suite(void)
{
	Suite *s = suite_create("recfmt");
	TCase *tc = tcase_create("format");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_metric_json);
	tcase_add_test(tc, test_histogram_json);
	tcase_add_test(tc, test_log_json);
	tcase_add_test(tc, test_process_json);
	tcase_add_test(tc, test_raw);
	tcase_add_test(tc, test_hostile_strings);
	tcase_add_test(tc, test_json_escapes);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_time);
	tcase_add_test(tc, test_text);
	tcase_add_test(tc, test_damaged);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_snapshot);
	suite_add_tcase(s, tc);

	/* These run the built programs: without them they are skipped, and say so. */
	if (access(BE_BIN_DIR "/be-read", X_OK) != 0 || access(BE_BIN_DIR "/be-write", X_OK) != 0 ||
	    access(BE_BIN_DIR "/shm-dump", X_OK) != 0) {
		fprintf(stderr, "recfmt: SKIP the 'programs' test: no programs in %s\n",
			BE_BIN_DIR);
		return s;
	}
	tc = tcase_create("programs");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_programs);
	suite_add_tcase(s, tc);
	return s;
}
