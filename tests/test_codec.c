/*
 * test_codec.c - the payload codec (shm/codec.c) and the typed writes over
 * it (client/typed.c).
 *
 * The codec part round-trips every payload type through its edge cases
 * (absent vs empty strings, maximal lengths and counts and one past them,
 * histograms, NaN bit patterns, infinities, -0.0, denormals, arbitrary
 * bytes, 64-bit extremes), pins the byte layout that shm/codec.h documents
 * with a few exact encodings, and hammers the decoders with every
 * truncation of valid encodings, random buffers and mutated encodings:
 * each buffer is a malloc of exactly its length, so that ASan sees any read
 * past it, and whatever decodes must encode back to the same bytes (the
 * format is canonical).
 *
 * The API part writes through be_write_metric/log/process and the batch
 * forms into rings made with ring_create() (no daemon), reads the records
 * back with ring_collect() and decodes them.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/codec.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/testutil.h"

/* Checks for hot loops: Check's ck_assert_* cost more than a decode. */
#define REQUIRE(c, ...)                            \
	do {                                       \
		if (!(c))                          \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

#define FIRST_SEQ     42
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------
 * Helpers.
 */

/* Deterministic pseudo-random numbers (xorshift64*), so that failures repeat. */
static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double from_bits(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static uint64_t now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A string of n bytes of c (never NUL), malloc'd. */
static char *str_of(size_t n, char c)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, n);
	s[n] = 0;
	return s;
}

/* A malloc'd copy of len bytes: a buffer ASan bounds exactly. */
static uint8_t *dup_exact(const void *p, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(b);
	if (len)
		memcpy(b, p, len);
	return b;
}

/* Encode with the codec's own size, in an exact buffer; checks size == encode. */
static uint8_t *enc_metric(const struct be_metric *m, size_t *n)
{
	ssize_t size = codec_metric_size(m), got;
	uint8_t *b;

	REQUIRE(size > 0, "codec_metric_size: %zd", size);
	b = malloc((size_t)size);
	REQUIRE(b, "malloc");
	got = codec_encode_metric(m, b, (size_t)size);
	REQUIRE(got == size, "encode %zd, size %zd", got, size);
	*n = (size_t)size;
	return b;
}

static uint8_t *enc_log(const struct be_log *l, size_t *n)
{
	ssize_t size = codec_log_size(l), got;
	uint8_t *b;

	REQUIRE(size > 0, "codec_log_size: %zd", size);
	b = malloc((size_t)size);
	REQUIRE(b, "malloc");
	got = codec_encode_log(l, b, (size_t)size);
	REQUIRE(got == size, "encode %zd, size %zd", got, size);
	*n = (size_t)size;
	return b;
}

static uint8_t *enc_process(const struct be_process *p, size_t *n)
{
	ssize_t size = codec_process_size(p), got;
	uint8_t *b;

	REQUIRE(size > 0, "codec_process_size: %zd", size);
	b = malloc((size_t)size);
	REQUIRE(b, "malloc");
	got = codec_encode_process(p, b, (size_t)size);
	REQUIRE(got == size, "encode %zd, size %zd", got, size);
	*n = (size_t)size;
	return b;
}

/* A decoded string against what was encoded: absent for NULL, else the same bytes. */
static void check_str(const struct codec_str *s, const char *want, const char *what)
{
	if (!want) {
		REQUIRE(s->p == NULL && s->len == 0, "%s: want absent, got %zu bytes", what,
			s->len);
		return;
	}
	REQUIRE(s->p != NULL, "%s: absent, want %zu bytes", what, strlen(want));
	REQUIRE(s->len == strlen(want) && memcmp(s->p, want, s->len) == 0,
		"%s: %zu bytes differ from the %zu encoded", what, s->len, strlen(want));
}

static void check_meta(const struct codec_meta *v, const struct be_meta *m)
{
	static const struct be_meta none;

	if (!m)
		m = &none;
	check_str(&v->host_id, m->host_id, "host_id");
	check_str(&v->agent_id, m->agent_id, "agent_id");
	check_str(&v->hostname, m->hostname, "hostname");
	check_str(&v->endpoint_id, m->endpoint_id, "endpoint_id");
}

static void check_attrs(const struct codec_attrs *a, const struct be_attr *want, size_t n)
{
	struct codec_attr_iter it;
	struct codec_str k, v;
	size_t i = 0;
	int ret;

	REQUIRE(a->count == n, "attrs: %u, want %zu", a->count, n);
	codec_attrs_begin(a, &it);
	while ((ret = codec_attr_next(&it, &k, &v)) > 0) {
		REQUIRE(i < n, "attrs: more than %zu", n);
		check_str(&k, want[i].key, "attr key");
		check_str(&v, want[i].value, "attr value");
		i++;
	}
	REQUIRE(ret == 0 && i == n, "attrs: walk ended with %d after %zu of %zu", ret, i, n);
}

static void check_metric(const struct codec_metric *v, const struct be_metric *m)
{
	REQUIRE(v->version == CODEC_VERSION, "version %u", v->version);
	REQUIRE(v->kind == m->kind, "kind %u, want %d", v->kind, m->kind);
	REQUIRE(v->ts_ns == m->ts_ns, "ts_ns");
	if (m->kind == BE_METRIC_HISTOGRAM) {
		REQUIRE(v->count == m->count, "count");
		REQUIRE(bits(v->sum) == bits(m->sum), "sum bits %llx, want %llx",
			(unsigned long long)bits(v->sum), (unsigned long long)bits(m->sum));
		REQUIRE(v->nbounds == m->nbounds, "nbounds %u, want %zu", v->nbounds, m->nbounds);
		for (size_t i = 0; i < m->nbounds; i++)
			REQUIRE(bits(codec_metric_bound(v, i)) == bits(m->bounds[i]), "bound %zu",
				i);
		if (m->buckets) {
			for (size_t i = 0; i <= m->nbounds; i++)
				REQUIRE(codec_metric_bucket(v, i) == m->buckets[i], "bucket %zu",
					i);
		} else {
			REQUIRE(codec_metric_bucket(v, 0) == m->count, "the one bucket");
		}
		REQUIRE(isnan(codec_metric_bound(v, m->nbounds)), "bound past the end");
		REQUIRE(codec_metric_bucket(v, m->nbounds + 1) == 0, "bucket past the end");
		REQUIRE(bits(v->value) == 0, "a histogram has no value");
	} else {
		REQUIRE(bits(v->value) == bits(m->value), "value bits %llx, want %llx",
			(unsigned long long)bits(v->value), (unsigned long long)bits(m->value));
		REQUIRE(v->nbounds == 0 && !v->bounds && !v->buckets && v->count == 0,
			"no histogram");
	}
	check_str(&v->ns, m->ns, "ns");
	check_str(&v->sub_ns, m->sub_ns, "sub_ns");
	check_str(&v->name, m->name, "name");
	check_str(&v->unit, m->unit, "unit");
	check_meta(&v->meta, m->meta);
	check_attrs(&v->attrs, m->attrs, m->nattrs);
}

static void check_log(const struct codec_log *v, const struct be_log *l)
{
	REQUIRE(v->version == CODEC_VERSION, "version %u", v->version);
	REQUIRE(v->severity == l->severity, "severity %u, want %d", v->severity, l->severity);
	REQUIRE(v->pid == l->pid, "pid");
	REQUIRE(v->ts_ns == l->ts_ns, "ts_ns");
	check_str(&v->severity_text, l->severity_text, "severity_text");
	check_str(&v->message, l->message, "message");
	check_str(&v->source, l->source, "source");
	check_str(&v->category, l->category, "category");
	check_meta(&v->meta, l->meta);
	check_attrs(&v->fields, l->fields, l->nfields);
}

static void check_process(const struct codec_process *v, const struct be_process *p)
{
	REQUIRE(v->version == CODEC_VERSION, "version %u", v->version);
	REQUIRE(v->pid == p->pid && v->ppid == p->ppid && v->threads == p->threads, "ids");
	REQUIRE(v->snapshot_id == p->snapshot_id, "snapshot_id");
	REQUIRE(v->snapshot_ts_ns == p->snapshot_ts_ns, "snapshot_ts_ns");
	REQUIRE(v->start_ts_ns == p->start_ts_ns, "start_ts_ns");
	REQUIRE(v->rss_bytes == p->rss_bytes, "rss_bytes");
	REQUIRE(bits(v->cpu_percent) == bits(p->cpu_percent), "cpu_percent bits");
	REQUIRE(bits(v->mem_percent) == bits(p->mem_percent), "mem_percent bits");
	check_str(&v->user, p->user, "user");
	check_str(&v->exe, p->exe, "exe");
	check_str(&v->cmdline, p->cmdline, "cmdline");
	check_meta(&v->meta, p->meta);
}

/* Encode, decode from an exact buffer, compare; also every short cap. */
static void rt_metric(const struct be_metric *m)
{
	struct codec_metric v;
	size_t n;
	uint8_t *b = enc_metric(m, &n);
	int ret = codec_decode_metric(b, n, &v);

	REQUIRE(ret == 0, "decode_metric: %d", ret);
	check_metric(&v, m);
	free(b);
}

static void rt_log(const struct be_log *l)
{
	struct codec_log v;
	size_t n;
	uint8_t *b = enc_log(l, &n);
	int ret = codec_decode_log(b, n, &v);

	REQUIRE(ret == 0, "decode_log: %d", ret);
	check_log(&v, l);
	free(b);
}

static void rt_process(const struct be_process *p)
{
	struct codec_process v;
	size_t n;
	uint8_t *b = enc_process(p, &n);
	int ret = codec_decode_process(b, n, &v);

	REQUIRE(ret == 0, "decode_process: %d", ret);
	check_process(&v, p);
	free(b);
}

/* ------------------------------------------------------------------------
 * Views back to records, to check that whatever decodes encodes back to the
 * same bytes.  Strings are copied, NUL-terminated, into one arena: their
 * bytes (no NUL in them) plus one NUL each fit in twice the payload.
 */

struct arena {
	char *buf;
	size_t used, cap;
	struct be_attr *attrs;
	double *bounds;
	uint64_t *buckets;
	struct be_meta meta;
};

static void arena_init(struct arena *a, size_t payload_len)
{
	memset(a, 0, sizeof(*a));
	a->cap = 2 * payload_len + 16;
	a->buf = malloc(a->cap);
	REQUIRE(a->buf, "malloc");
}

static void arena_fini(struct arena *a)
{
	free(a->buf);
	free(a->attrs);
	free(a->bounds);
	free(a->buckets);
}

static const char *arena_str(struct arena *a, const struct codec_str *s)
{
	char *p;

	if (!s->p)
		return NULL;
	REQUIRE(a->used + s->len + 1 <= a->cap, "arena full");
	p = a->buf + a->used;
	memcpy(p, s->p, s->len);
	p[s->len] = 0;
	a->used += s->len + 1;
	return p;
}

static const struct be_meta *arena_meta(struct arena *a, const struct codec_meta *m)
{
	a->meta.host_id = arena_str(a, &m->host_id);
	a->meta.agent_id = arena_str(a, &m->agent_id);
	a->meta.hostname = arena_str(a, &m->hostname);
	a->meta.endpoint_id = arena_str(a, &m->endpoint_id);
	return &a->meta;
}

static const struct be_attr *arena_attrs(struct arena *a, const struct codec_attrs *v)
{
	struct codec_attr_iter it;
	struct codec_str k, val;
	size_t i = 0;

	a->attrs = calloc(v->count + 1, sizeof(*a->attrs));
	REQUIRE(a->attrs, "calloc");
	codec_attrs_begin(v, &it);
	while (codec_attr_next(&it, &k, &val) > 0) {
		REQUIRE(i < v->count, "attr count");
		a->attrs[i].key = arena_str(a, &k);
		a->attrs[i].value = arena_str(a, &val);
		i++;
	}
	REQUIRE(i == v->count, "attr walk %zu of %u", i, v->count);
	return a->attrs;
}

/* Re-encode a decoded payload and compare with the bytes it came from. */
static void reencode_metric(const struct codec_metric *v, const uint8_t *b, size_t n)
{
	struct arena a;
	struct be_metric m = { 0 };
	size_t n2;
	uint8_t *b2;

	arena_init(&a, n);
	m.kind = v->kind;
	m.ts_ns = v->ts_ns;
	m.value = v->value;
	m.count = v->count;
	m.sum = v->sum;
	if (v->kind == BE_METRIC_HISTOGRAM) {
		m.nbounds = v->nbounds;
		a.bounds = calloc(v->nbounds + 1, sizeof(double));
		a.buckets = calloc(v->nbounds + 1, sizeof(uint64_t));
		REQUIRE(a.bounds && a.buckets, "calloc");
		for (size_t i = 0; i < v->nbounds; i++)
			a.bounds[i] = codec_metric_bound(v, i);
		for (size_t i = 0; i <= v->nbounds; i++)
			a.buckets[i] = codec_metric_bucket(v, i);
		m.bounds = a.bounds;
		m.buckets = a.buckets;
	}
	m.ns = arena_str(&a, &v->ns);
	m.sub_ns = arena_str(&a, &v->sub_ns);
	m.name = arena_str(&a, &v->name);
	m.unit = arena_str(&a, &v->unit);
	m.meta = arena_meta(&a, &v->meta);
	m.attrs = arena_attrs(&a, &v->attrs);
	m.nattrs = v->attrs.count;
	b2 = enc_metric(&m, &n2);
	REQUIRE(n2 == n && memcmp(b, b2, n) == 0, "metric re-encodes differently (%zu, %zu)", n,
		n2);
	free(b2);
	arena_fini(&a);
}

static void reencode_log(const struct codec_log *v, const uint8_t *b, size_t n)
{
	struct arena a;
	struct be_log l = { 0 };
	size_t n2;
	uint8_t *b2;

	arena_init(&a, n);
	l.ts_ns = v->ts_ns;
	l.severity = v->severity;
	l.pid = v->pid;
	l.severity_text = arena_str(&a, &v->severity_text);
	l.message = arena_str(&a, &v->message);
	l.source = arena_str(&a, &v->source);
	l.category = arena_str(&a, &v->category);
	l.meta = arena_meta(&a, &v->meta);
	l.fields = arena_attrs(&a, &v->fields);
	l.nfields = v->fields.count;
	b2 = enc_log(&l, &n2);
	REQUIRE(n2 == n && memcmp(b, b2, n) == 0, "log re-encodes differently (%zu, %zu)", n, n2);
	free(b2);
	arena_fini(&a);
}

static void reencode_process(const struct codec_process *v, const uint8_t *b, size_t n)
{
	struct arena a;
	struct be_process p = { 0 };
	size_t n2;
	uint8_t *b2;

	arena_init(&a, n);
	p.snapshot_id = v->snapshot_id;
	p.snapshot_ts_ns = v->snapshot_ts_ns;
	p.pid = v->pid;
	p.ppid = v->ppid;
	p.threads = v->threads;
	p.start_ts_ns = v->start_ts_ns;
	p.rss_bytes = v->rss_bytes;
	p.cpu_percent = v->cpu_percent;
	p.mem_percent = v->mem_percent;
	p.user = arena_str(&a, &v->user);
	p.exe = arena_str(&a, &v->exe);
	p.cmdline = arena_str(&a, &v->cmdline);
	p.meta = arena_meta(&a, &v->meta);
	b2 = enc_process(&p, &n2);
	REQUIRE(n2 == n && memcmp(b, b2, n) == 0, "process re-encodes differently (%zu, %zu)", n,
		n2);
	free(b2);
	arena_fini(&a);
}

/*
 * Decode b[0..n) (an exact buffer) as each type; whatever succeeds must
 * re-encode to the same bytes.  Returns how many decoders accepted it.
 */
static int decode_all(const uint8_t *b, size_t n)
{
	struct codec_metric m;
	struct codec_log l;
	struct codec_process p;
	int ok = 0, ret;

	ret = codec_decode_metric(b, n, &m);
	REQUIRE(ret == 0 || ret == -EBADMSG || ret == -EPROTO, "decode_metric: %d", ret);
	if (!ret) {
		reencode_metric(&m, b, n);
		ok++;
	}
	ret = codec_decode_log(b, n, &l);
	REQUIRE(ret == 0 || ret == -EBADMSG || ret == -EPROTO, "decode_log: %d", ret);
	if (!ret) {
		reencode_log(&l, b, n);
		ok++;
	}
	ret = codec_decode_process(b, n, &p);
	REQUIRE(ret == 0 || ret == -EBADMSG || ret == -EPROTO, "decode_process: %d", ret);
	if (!ret) {
		reencode_process(&p, b, n);
		ok++;
	}
	REQUIRE(ok <= 1, "one payload decoded as %d types", ok);
	return ok;
}

/* ------------------------------------------------------------------------
 * Sample records: every field set, a variety of shapes.
 */

static const struct be_attr sample_attrs[] = {
	{ "host", "web-1" },
	{ "", "" },
	{ "absent", NULL },
	{ "cpu", "0" },
	{ "bytes\x01\x7f\xff\xfe", "\xc3\x28 not utf-8 \xe2\x82" },
};
static const struct be_meta sample_meta = { "host-id", "agent-42", "web-1.example", "ep/1" };
static const struct be_meta partial_meta = { NULL, "", "h", NULL };
static const double sample_bounds[] = { -INFINITY, -1.5, 0.0, 1e-300, 10.0, INFINITY };
static const uint64_t sample_buckets[] = { 1, 2, 3, 4, 5, 6, UINT64_MAX };

static struct be_metric sample_metric(int i)
{
	struct be_metric m = {
		.ns = "System",
		.sub_ns = "CPU",
		.name = "usage_percent",
		.unit = "percent",
		.kind = BE_METRIC_GAUGE,
		.value = 42.5,
		.ts_ns = 1700000000123456789ull,
		.attrs = sample_attrs,
		.nattrs = ARRAY_SIZE(sample_attrs),
		.meta = &sample_meta,
	};

	switch (i % 5) {
	case 1:
		m.kind = BE_METRIC_COUNTER;
		m.value = 1e18;
		m.meta = &partial_meta;
		m.sub_ns = NULL;
		break;
	case 2:
		m.kind = BE_METRIC_HISTOGRAM;
		m.bounds = sample_bounds;
		m.nbounds = ARRAY_SIZE(sample_bounds);
		m.buckets = sample_buckets;
		m.count = 12345;
		m.sum = -0.0;
		m.meta = NULL;
		break;
	case 3:
		m.kind = BE_METRIC_HISTOGRAM;
		m.count = 7;
		m.sum = 3.25;
		m.nattrs = 0;
		m.attrs = NULL;
		break;
	case 4:
		m.ns = m.sub_ns = m.unit = NULL;
		m.name = "";
		m.nattrs = 1;
		break;
	}
	return m;
}

static struct be_log sample_log(int i)
{
	struct be_log l = {
		.ts_ns = 1700000000987654321ull,
		.severity = BE_SEV_WARN,
		.severity_text = "warning",
		.message = "disk /var is 91% full",
		.source = "diskmon",
		.category = "storage",
		.pid = 1234,
		.fields = sample_attrs,
		.nfields = ARRAY_SIZE(sample_attrs),
		.meta = &sample_meta,
	};

	switch (i % 4) {
	case 1:
		l.severity = 0;
		l.severity_text = NULL;
		l.source = "";
		l.category = NULL;
		l.meta = &partial_meta;
		break;
	case 2:
		l.message = "";
		l.fields = NULL;
		l.nfields = 0;
		l.meta = NULL;
		break;
	case 3:
		l.severity = 24;
		l.message = "line one\nline two\ttab\r\x1b[31mred\x1b[0m \xff\xfe";
		break;
	}
	return l;
}

static struct be_process sample_process(int i)
{
	struct be_process p = {
		.snapshot_id = 77,
		.snapshot_ts_ns = 1700000000000000000ull,
		.pid = 4242,
		.ppid = 1,
		.user = "www-data",
		.exe = "/usr/sbin/nginx",
		.cmdline = "nginx: worker process",
		.cpu_percent = 12.5,
		.mem_percent = 0.25,
		.rss_bytes = 123456789,
		.threads = 9,
		.start_ts_ns = 1690000000000000000ull,
		.meta = &sample_meta,
	};

	switch (i % 3) {
	case 1:
		p.user = NULL;
		p.exe = "";
		p.meta = NULL;
		break;
	case 2:
		p.cmdline = NULL;
		p.meta = &partial_meta;
		p.cpu_percent = from_bits(0x7ff8000000000001ull);
		break;
	}
	return p;
}

/* ------------------------------------------------------------------------
 * Round trips.
 */

START_TEST(test_roundtrip_samples)
{
	for (int i = 0; i < 5; i++) {
		struct be_metric m = sample_metric(i);

		rt_metric(&m);
	}
	for (int i = 0; i < 4; i++) {
		struct be_log l = sample_log(i);

		rt_log(&l);
	}
	for (int i = 0; i < 3; i++) {
		struct be_process p = sample_process(i);

		rt_process(&p);
	}
}
END_TEST

/* Absent and empty are two things, in every string of every type. */
START_TEST(test_null_vs_empty)
{
	const char *vals[] = { NULL, "" };
	struct be_attr a[2] = { { "k", NULL }, { "", "" } };

	for (int i = 0; i < 2; i++) {
		const char *s = vals[i], *t = vals[1 - i];
		struct be_meta meta = { s, t, s, t };
		struct be_metric m = { .ns = s,
				       .sub_ns = t,
				       .name = "",
				       .unit = s,
				       .kind = BE_METRIC_GAUGE,
				       .meta = &meta,
				       .attrs = a,
				       .nattrs = 2 };
		struct be_log l = { .severity_text = s,
				    .message = "",
				    .source = t,
				    .category = s,
				    .meta = &meta,
				    .fields = a,
				    .nfields = 2 };
		struct be_process p = { .user = s, .exe = t, .cmdline = s, .meta = &meta };
		struct codec_metric vm;
		size_t n;
		uint8_t *b;

		rt_metric(&m);
		rt_log(&l);
		rt_process(&p);

		/* A present empty string is not a NULL pointer in the view either. */
		b = enc_metric(&m, &n);
		ck_assert_int_eq(codec_decode_metric(b, n, &vm), 0);
		ck_assert_ptr_nonnull(vm.name.p);
		ck_assert_uint_eq(vm.name.len, 0);
		ck_assert(i == 0 ? vm.ns.p == NULL : vm.ns.p != NULL);
		free(b);
	}
	/* A NULL meta is four absent strings, as all-NULL fields are. */
	{
		struct be_meta none = { 0 };
		struct be_process p1 = { .meta = NULL }, p2 = { .meta = &none };
		size_t n1, n2;
		uint8_t *b1 = enc_process(&p1, &n1), *b2 = enc_process(&p2, &n2);

		ck_assert_uint_eq(n1, n2);
		ck_assert(memcmp(b1, b2, n1) == 0);
		free(b1);
		free(b2);
	}
}
END_TEST

/* The exact bytes of a few records, as shm/codec.h documents them. */
START_TEST(test_layout_bytes)
{
	/* clang-format off */
	static const struct be_attr kv[] = { { "k", "v" } };
	struct be_log l = { .ts_ns = 0x1122334455667788ull, .severity = 9, .message = "hi",
			    .source = "", .pid = 0x01020304, .fields = kv, .nfields = 1 };
	static const uint8_t want_log[] = {
		1, 3, 9, 0,                                     /* version type sev flags */
		0x04, 0x03, 0x02, 0x01,                         /* pid */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* ts_ns */
		0x00,                                           /* severity_text absent */
		0x03, 'h', 'i',                                 /* message */
		0x01,                                           /* source "" */
		0x00,                                           /* category absent */
		0x00, 0x00, 0x00, 0x00,                         /* meta */
		0x01, 0x00, 0x02, 'k', 0x02, 'v',               /* fields */
	};
	struct be_metric g = { .name = "m", .kind = BE_METRIC_GAUGE, .value = 1.5, .ts_ns = 1 };
	static const uint8_t want_gauge[] = {
		1, 2, 1, 0,
		1, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0xf8, 0x3f,                   /* 1.5 */
		0x00, 0x00, 0x02, 'm', 0x00,                    /* ns sub_ns name unit */
		0x00, 0x00, 0x00, 0x00,                         /* meta */
		0x00, 0x00,                                     /* no attrs */
	};
	static const double hb[] = { 2.0 };
	static const uint64_t hk[] = { 3, 0x0102 };
	struct be_metric h = { .name = "h", .kind = BE_METRIC_HISTOGRAM, .count = 5, .sum = -2.0,
			       .bounds = hb, .nbounds = 1, .buckets = hk };
	static const uint8_t want_hist[] = {
		1, 2, 3, 0,
		0, 0, 0, 0, 0, 0, 0, 0,                         /* ts_ns 0 as given */
		5, 0, 0, 0, 0, 0, 0, 0,                         /* count */
		0, 0, 0, 0, 0, 0, 0, 0xc0,                      /* sum -2.0 */
		1, 0,                                           /* nbounds */
		0, 0, 0, 0, 0, 0, 0, 0x40,                      /* 2.0 */
		3, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x01, 0, 0, 0, 0, 0, 0,
		0x00, 0x00, 0x02, 'h', 0x00,
		0x00, 0x00, 0x00, 0x00,
		0x00, 0x00,
	};
	struct be_process p = { .snapshot_id = 2, .pid = 3, .ppid = 4, .threads = 5,
				.user = "u" };
	uint8_t want_proc[64 + 3 + 4 + 1] = { 1, 4, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 2 };
	/* clang-format on */
	uint8_t *b;
	size_t n;

	want_proc[64] = 0x02;
	want_proc[65] = 'u';
	b = enc_log(&l, &n);
	ck_assert_uint_eq(n, sizeof(want_log));
	ck_assert_mem_eq(b, want_log, n);
	free(b);
	b = enc_metric(&g, &n);
	ck_assert_uint_eq(n, sizeof(want_gauge));
	ck_assert_mem_eq(b, want_gauge, n);
	free(b);
	b = enc_metric(&h, &n);
	ck_assert_uint_eq(n, sizeof(want_hist));
	ck_assert_mem_eq(b, want_hist, n);
	free(b);
	b = enc_process(&p, &n);
	ck_assert_uint_eq(n, sizeof(want_proc));
	ck_assert_mem_eq(b, want_proc, n);
	free(b);
}
END_TEST

/* Length prefixes at every uleb width boundary, and the exact sizes. */
START_TEST(test_string_lengths)
{
	static const size_t lens[] = {
		0, 1, 125, 126, 127, 128, 16382, 16383, 16384, 65534, 65535
	};

	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		char *s = str_of(lens[i], 'a' + (char)i);
		size_t n1 = lens[i] + 1, uleb = n1 < 128 ? 1 : n1 < 16384 ? 2 : 3;
		struct be_metric base = { .name = "", .kind = BE_METRIC_COUNTER };
		struct be_metric m = base;
		ssize_t size0 = codec_metric_size(&base);

		m.unit = s;
		ck_assert_int_eq(codec_metric_size(&m), size0 - 1 + (ssize_t)(uleb + lens[i]));
		rt_metric(&m);
		free(s);
	}
}
END_TEST

/* 65535 bytes in every string field is fine; 65536 in any is -EMSGSIZE. */
START_TEST(test_max_lengths)
{
	char *max = str_of(CODEC_STR_MAX, 'x'), *over = str_of(CODEC_STR_MAX + 1, 'y');
	const char *which[2] = { max, over };

	for (int o = 0; o < 2; o++) {
		const char *s = which[o];
		int want = o ? -EMSGSIZE : 0;
		struct be_meta metas[4] = {
			{ s, 0, 0, 0 }, { 0, s, 0, 0 }, { 0, 0, s, 0 }, { 0, 0, 0, s }
		};
		struct be_attr ak = { s, "v" }, av = { "k", s };
		struct be_metric mm[] = {
			{ .ns = s, .name = "n", .kind = 1 },
			{ .sub_ns = s, .name = "n", .kind = 1 },
			{ .name = s, .kind = 1 },
			{ .unit = s, .name = "n", .kind = 1 },
			{ .name = "n", .kind = 1, .attrs = &ak, .nattrs = 1 },
			{ .name = "n", .kind = 1, .attrs = &av, .nattrs = 1 },
			{ .name = "n", .kind = 1, .meta = &metas[0] },
			{ .name = "n", .kind = 1, .meta = &metas[1] },
			{ .name = "n", .kind = 1, .meta = &metas[2] },
			{ .name = "n", .kind = 1, .meta = &metas[3] },
		};
		struct be_log ll[] = {
			{ .message = "m", .severity_text = s },
			{ .message = "m", .source = s },
			{ .message = "m", .category = s },
			{ .message = "m", .fields = &ak, .nfields = 1 },
			{ .message = "m", .fields = &av, .nfields = 1 },
			{ .message = "m", .meta = &metas[2] },
		};
		struct be_process pp[] = {
			{ .user = s },
			{ .exe = s },
			{ .cmdline = s },
			{ .meta = &metas[3] },
		};

		for (size_t i = 0; i < ARRAY_SIZE(mm); i++) {
			uint8_t b[64];

			if (!want) {
				rt_metric(&mm[i]);
				continue;
			}
			ck_assert_int_eq(codec_metric_size(&mm[i]), want);
			ck_assert_int_eq(codec_encode_metric(&mm[i], b, sizeof(b)), want);
		}
		for (size_t i = 0; i < ARRAY_SIZE(ll); i++) {
			if (!want)
				rt_log(&ll[i]);
			else
				ck_assert_int_eq(codec_log_size(&ll[i]), want);
		}
		for (size_t i = 0; i < ARRAY_SIZE(pp); i++) {
			if (!want)
				rt_process(&pp[i]);
			else
				ck_assert_int_eq(codec_process_size(&pp[i]), want);
		}
	}
	free(max);
	free(over);
}
END_TEST

/* A log message may be up to 16 MiB; one byte more is refused. */
START_TEST(test_max_message)
{
	char *msg = str_of(CODEC_MSG_MAX + 1, 'm');
	struct be_log l = { .message = msg, .severity = 9 };
	struct codec_log v;
	uint8_t *b;
	size_t n;

	ck_assert_int_eq(codec_log_size(&l), -EMSGSIZE);
	msg[CODEC_MSG_MAX] = 0;
	b = enc_log(&l, &n);
	ck_assert_int_eq(codec_decode_log(b, n, &v), 0);
	ck_assert_uint_eq(v.message.len, CODEC_MSG_MAX);
	ck_assert(memcmp(v.message.p, msg, CODEC_MSG_MAX) == 0);
	/* A few truncations of the big one (every one is done on small records). */
	for (size_t k = n - 1; k > 8; k = k * 2 / 3) {
		uint8_t *t = dup_exact(b, k);

		ck_assert_int_eq(codec_decode_log(t, k, &v), -EBADMSG);
		free(t);
	}
	free(b);
	/* 2^21 - 1 bytes: the first length that needs a four-byte uleb. */
	msg[(1u << 21) - 1] = 0;
	ck_assert_int_eq(codec_log_size(&l), 16 + 1 + 4 + ((1 << 21) - 1) + 2 + 4 + 2);
	rt_log(&l);
	free(msg);
}
END_TEST

START_TEST(test_max_counts)
{
	struct be_attr *a = calloc(CODEC_COUNT_MAX + 1, sizeof(*a));
	double *bounds = calloc(CODEC_COUNT_MAX + 1, sizeof(double));
	uint64_t *buckets = calloc(CODEC_COUNT_MAX + 2, sizeof(uint64_t));
	char(*keys)[16] = calloc(CODEC_COUNT_MAX + 1, sizeof(*keys));

	ck_assert(a && bounds && buckets && keys);
	for (size_t i = 0; i <= CODEC_COUNT_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		a[i].key = keys[i];
		a[i].value = (i % 3) ? keys[i] + 1 : NULL;
		bounds[i] = (double)i - 512.0;
	}
	for (size_t i = 0; i <= CODEC_COUNT_MAX + 1; i++)
		buckets[i] = i * 0x0101010101ull;
	{
		struct be_metric m = {
			.name = "n", .kind = BE_METRIC_GAUGE, .attrs = a, .nattrs = CODEC_COUNT_MAX
		};
		struct be_log l = { .message = "m", .fields = a, .nfields = CODEC_COUNT_MAX };
		struct be_metric h = { .name = "h",
				       .kind = BE_METRIC_HISTOGRAM,
				       .bounds = bounds,
				       .nbounds = CODEC_COUNT_MAX,
				       .buckets = buckets,
				       .count = 99 };

		rt_metric(&m);
		rt_log(&l);
		rt_metric(&h);
		m.nattrs++;
		l.nfields++;
		h.nbounds++;
		ck_assert_int_eq(codec_metric_size(&m), -EMSGSIZE);
		ck_assert_int_eq(codec_log_size(&l), -EMSGSIZE);
		ck_assert_int_eq(codec_metric_size(&h), -EMSGSIZE);
	}
	free(a);
	free(bounds);
	free(buckets);
	free(keys);
}
END_TEST

START_TEST(test_histograms)
{
	static const uint64_t one[] = { 17 };
	static const double up[] = { 1, 2, 3 };
	static const uint64_t four[] = { 1, 2, 3, 4 };
	struct be_metric h = { .name = "h", .kind = BE_METRIC_HISTOGRAM, .count = 17, .sum = 1 };
	struct codec_metric v;
	uint8_t *b;
	size_t n;

	/* No bounds: one bucket, given or (buckets NULL) equal to count. */
	h.buckets = one;
	rt_metric(&h);
	h.buckets = NULL;
	rt_metric(&h);
	b = enc_metric(&h, &n);
	ck_assert_int_eq(codec_decode_metric(b, n, &v), 0);
	ck_assert_uint_eq(v.nbounds, 0);
	ck_assert_uint_eq(codec_metric_bucket(&v, 0), 17);
	free(b);

	/* Many, with infinities at the ends, subnormals and -0.0 in the middle. */
	{
		double bnd[600];
		uint64_t bk[601];

		bnd[0] = -INFINITY;
		for (int i = 1; i < 599; i++)
			bnd[i] = (double)(i - 300);
		bnd[299] = from_bits(0x8000000000000001ull); /* -smallest denormal */
		bnd[300] = -0.0;
		bnd[301] = from_bits(0x0000000000000001ull); /* smallest denormal */
		bnd[599] = INFINITY;
		for (int i = 1; i < 600; i++)
			ck_assert_msg(bnd[i - 1] < bnd[i], "test data at %d", i);
		for (int i = 0; i < 601; i++)
			bk[i] = (uint64_t)i << 40;
		h.bounds = bnd;
		h.buckets = bk;
		h.nbounds = 600;
		rt_metric(&h);
	}

	/* Refused: -EINVAL. */
	h.nbounds = 3;
	h.bounds = up;
	h.buckets = NULL;
	ck_assert_int_eq(codec_metric_size(&h), -EINVAL); /* buckets NULL, nbounds > 0 */
	h.buckets = four;
	h.bounds = NULL;
	ck_assert_int_eq(codec_metric_size(&h), -EINVAL);
	{
		static const double bad[][3] = {
			{ 1, NAN, 3 },	     { NAN, 1, 2 },
			{ 1, 2, NAN },	     { 1, 1, 2 },
			{ 3, 2, 1 },	     { -0.0, 0.0, 1 },
			{ 0.0, -0.0, 1 },    { INFINITY, INFINITY, INFINITY },
			{ 1, 2, -INFINITY },
		};

		for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
			h.bounds = bad[i];
			ck_assert_msg(codec_metric_size(&h) == -EINVAL, "bounds set %zu", i);
		}
		/* A NaN with a payload and the sign bit set is still NaN. */
		{
			double nb[3] = { 1, from_bits(0xfff0000000000001ull), 3 };

			h.bounds = nb;
			ck_assert_int_eq(codec_metric_size(&h), -EINVAL);
		}
	}
	/* A gauge ignores the histogram fields. */
	{
		struct be_metric g = { .name = "g", .kind = BE_METRIC_GAUGE, .nbounds = 5000 };

		rt_metric(&g);
	}
}
END_TEST

/* Values are bits: NaN payloads and signs, infinities, -0.0, denormals. */
START_TEST(test_float_bits)
{
	static const uint64_t pats[] = {
		0x7ff8000000000000ull, /* the quiet NaN */
		0xfff8000000000000ull, /* negative quiet NaN */
		0x7ff0000000000001ull, /* signalling NaN, smallest payload */
		0x7ff4000000000000ull, /* signalling NaN */
		0xfff0000000000001ull, /* negative signalling NaN */
		0x7fffffffffffffffull, /* quiet NaN, every payload bit */
		0xffffffffffffffffull, 0x7ff8dead0000beefull, 0x7ff0000000000000ull, /* +inf */
		0xfff0000000000000ull,						     /* -inf */
		0x8000000000000000ull,						     /* -0.0 */
		0x0000000000000000ull, 0x0000000000000001ull, /* smallest denormal */
		0x800fffffffffffffull,			      /* largest negative denormal */
		0x0010000000000000ull,			      /* DBL_MIN */
		0x7fefffffffffffffull,			      /* DBL_MAX */
		0xffefffffffffffffull,
	};

	for (size_t i = 0; i < ARRAY_SIZE(pats); i++) {
		double d = from_bits(pats[i]);
		double bnd[1];
		uint64_t bk[2] = { 0, 0 };
		struct be_metric g = { .name = "g", .kind = BE_METRIC_GAUGE, .value = d };
		struct be_metric h = { .name = "h", .kind = BE_METRIC_HISTOGRAM, .sum = d };
		struct be_process p = { .cpu_percent = d, .mem_percent = from_bits(~pats[i]) };
		struct codec_metric v;
		uint8_t *b;
		size_t n;

		ck_assert_uint_eq(bits(d), pats[i]);
		rt_metric(&g);
		g.kind = BE_METRIC_COUNTER;
		rt_metric(&g);
		rt_metric(&h);
		rt_process(&p);
		/* The bytes themselves: the value's bits at offset 12, little-endian. */
		b = enc_metric(&g, &n);
		for (int k = 0; k < 8; k++)
			ck_assert_uint_eq(b[12 + k], (pats[i] >> (8 * k)) & 0xff);
		ck_assert_int_eq(codec_decode_metric(b, n, &v), 0);
		ck_assert_uint_eq(bits(v.value), pats[i]);
		free(b);
		/* Any value but NaN is a valid bound. */
		if (!isnan(d)) {
			bnd[0] = d;
			h.bounds = bnd;
			h.nbounds = 1;
			h.buckets = bk;
			rt_metric(&h);
		}
	}
}
END_TEST

/* Strings are bytes: any byte but NUL, UTF-8 or not, control characters too. */
START_TEST(test_string_bytes)
{
	char all[256], ctl[40];
	const char *odd[] = { "\xff",
			      "\xc0\x80",
			      "\xed\xa0\x80",
			      "\xf4\x90\x80\x80",
			      "\x80\x80",
			      "caf\xe9",
			      "\xe2\x82",
			      "\x1b]0;title\x07",
			      "\r\n\t\v\f\b",
			      "\xef\xbb\xbf"
			      "bom",
			      "\x7f\x7f" };
	size_t k = 0;

	for (int c = 1; c < 256; c++)
		all[k++] = (char)c;
	all[k] = 0;
	for (int c = 1; c < 32; c++)
		ctl[c - 1] = (char)c;
	ctl[31] = 0x7f;
	ctl[32] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(odd) + 2; i++) {
		const char *s = i == ARRAY_SIZE(odd) ? all : i > ARRAY_SIZE(odd) ? ctl : odd[i];
		struct be_meta meta = { s, s, s, s };
		struct be_attr a[2] = { { s, s }, { "k", s } };
		struct be_metric m = { .ns = s,
				       .sub_ns = s,
				       .name = s,
				       .unit = s,
				       .kind = 1,
				       .attrs = a,
				       .nattrs = 2,
				       .meta = &meta };
		struct be_log l = { .severity_text = s,
				    .message = s,
				    .source = s,
				    .category = s,
				    .fields = a,
				    .nfields = 2,
				    .meta = &meta };
		struct be_process p = { .user = s, .exe = s, .cmdline = s, .meta = &meta };

		rt_metric(&m);
		rt_log(&l);
		rt_process(&p);
	}
}
END_TEST

START_TEST(test_int_extremes)
{
	static const uint64_t u64s[] = {
		0, 1, 0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX - 1, UINT64_MAX
	};
	static const uint32_t u32s[] = { 0, 1, 0x7fffffff, 0x80000000u, UINT32_MAX };

	for (size_t i = 0; i < ARRAY_SIZE(u64s); i++) {
		uint64_t x = u64s[i], y = u64s[ARRAY_SIZE(u64s) - 1 - i];
		uint32_t w = u32s[i % ARRAY_SIZE(u32s)];
		uint64_t bk[3] = { x, y, x ^ y };
		double bnd[2] = { -1, 1 };
		struct be_metric h = { .name = "h",
				       .kind = BE_METRIC_HISTOGRAM,
				       .ts_ns = x,
				       .count = y,
				       .bounds = bnd,
				       .nbounds = 2,
				       .buckets = bk };
		struct be_metric g = { .name = "g", .kind = BE_METRIC_GAUGE, .ts_ns = y };
		struct be_log l = { .message = "m", .ts_ns = x, .pid = w, .severity = (int)i };
		struct be_process p = { .snapshot_id = x,
					.snapshot_ts_ns = y,
					.start_ts_ns = x,
					.rss_bytes = y,
					.pid = w,
					.ppid = ~w,
					.threads = w ^ 0x5a5a };

		rt_metric(&h);
		rt_metric(&g);
		rt_log(&l);
		rt_process(&p);
	}
	for (int sev = 0; sev <= CODEC_SEV_MAX; sev++) {
		struct be_log l = { .message = "m", .severity = sev };

		rt_log(&l);
	}
}
END_TEST

/* What the encoder refuses, with what; and nothing past a short buffer. */
START_TEST(test_encode_refusals)
{
	static const struct be_attr nokey[] = { { "a", "b" }, { NULL, "v" } };
	struct be_metric m = { .name = "n", .kind = BE_METRIC_GAUGE };
	struct be_log l = { .message = "m" };
	uint8_t buf[256];

	ck_assert_int_eq(codec_metric_size(NULL), -EINVAL);
	ck_assert_int_eq(codec_log_size(NULL), -EINVAL);
	ck_assert_int_eq(codec_process_size(NULL), -EINVAL);
	m.name = NULL;
	ck_assert_int_eq(codec_metric_size(&m), -EINVAL);
	ck_assert_int_eq(codec_encode_metric(&m, buf, sizeof(buf)), -EINVAL);
	m.name = "n";
	for (int k = -1; k <= 5; k++) {
		m.kind = k;
		if (k >= BE_METRIC_GAUGE && k <= BE_METRIC_HISTOGRAM)
			ck_assert_int_gt(codec_metric_size(&m), 0);
		else
			ck_assert_int_eq(codec_metric_size(&m), -EINVAL);
	}
	m.kind = BE_METRIC_COUNTER;
	m.nattrs = 1;
	ck_assert_int_eq(codec_metric_size(&m), -EINVAL); /* attrs NULL */
	m.attrs = nokey;
	m.nattrs = 2;
	ck_assert_int_eq(codec_metric_size(&m), -EINVAL); /* a NULL key */
	m.nattrs = 1;
	ck_assert_int_gt(codec_metric_size(&m), 0);

	l.message = NULL;
	ck_assert_int_eq(codec_log_size(&l), -EINVAL);
	ck_assert_int_eq(codec_encode_log(&l, buf, sizeof(buf)), -EINVAL);
	l.message = "m";
	ck_assert_int_eq((l.severity = -1, codec_log_size(&l)), -EINVAL);
	ck_assert_int_eq((l.severity = 25, codec_log_size(&l)), -EINVAL);
	ck_assert_int_eq((l.severity = 1000, codec_log_size(&l)), -EINVAL);
	l.severity = 24;
	l.fields = NULL;
	l.nfields = 3;
	ck_assert_int_eq(codec_log_size(&l), -EINVAL);
	l.fields = nokey;
	l.nfields = 2;
	ck_assert_int_eq(codec_log_size(&l), -EINVAL);

	/*
	 * Every short buffer: the full size is returned and nothing is written
	 * past cap (each buffer is a malloc of exactly cap bytes).
	 */
	for (int t = 0; t < 3; t++) {
		struct be_metric sm = sample_metric(2);
		struct be_log sl = sample_log(3);
		struct be_process sp = sample_process(0);
		ssize_t size = t == 0	? codec_metric_size(&sm)
			       : t == 1 ? codec_log_size(&sl)
					: codec_process_size(&sp);

		ck_assert_int_gt(size, 0);
		for (size_t cap = 0; cap < (size_t)size; cap++) {
			uint8_t *b = malloc(cap ? cap : 1);
			ssize_t got = t == 0   ? codec_encode_metric(&sm, b, cap)
				      : t == 1 ? codec_encode_log(&sl, b, cap)
					       : codec_encode_process(&sp, b, cap);

			REQUIRE(got == size, "type %d cap %zu: %zd, want %zd", t, cap, got, size);
			free(b);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------------
 * Decoding what the encoder never writes.
 */

/* A valid encoding of s, a copy with byte i set to x, decoded as a metric. */
static int metric_with_byte(const struct be_metric *m, size_t i, uint8_t x)
{
	struct codec_metric v;
	size_t n;
	uint8_t *b = enc_metric(m, &n);
	int ret;

	ck_assert_uint_lt(i, n);
	b[i] = x;
	ret = codec_decode_metric(b, n, &v);
	free(b);
	return ret;
}

START_TEST(test_decode_refusals)
{
	struct be_metric m = { .name = "n", .kind = BE_METRIC_GAUGE, .unit = "u" };
	struct be_log l = { .message = "m" };
	struct be_process p = { .user = "u" };
	struct codec_metric vm, vm0 = { .ts_ns = 0xabcdef };
	struct codec_log vl;
	struct codec_process vp;
	uint8_t *b, *t;
	size_t n;

	/* Version: 0 is malformed, a later one is another format. */
	ck_assert_int_eq(metric_with_byte(&m, 0, 0), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 0, 2), -EPROTO);
	ck_assert_int_eq(metric_with_byte(&m, 0, 255), -EPROTO);
	/* Another type, bad kinds, reserved flags. */
	ck_assert_int_eq(metric_with_byte(&m, 1, BE_TYPE_LOG), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 1, 0), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 2, 0), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 2, 4), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 3, 1), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 3, 0x80), -EBADMSG);
	/* The name absent (offset 22: ns, sub_ns absent at 20, 21). */
	ck_assert_int_eq(metric_with_byte(&m, 22, 0), -EBADMSG);
	/* A NUL inside a string ("u" is at 25). */
	ck_assert_int_eq(metric_with_byte(&m, 25, 0), -EBADMSG);
	ck_assert_int_eq(metric_with_byte(&m, 25, 'v'), 0);

	/* Trailing bytes, and a view left alone on failure. */
	b = enc_metric(&m, &n);
	t = malloc(n + 1);
	memcpy(t, b, n);
	t[n] = 0;
	vm = vm0;
	ck_assert_int_eq(codec_decode_metric(t, n + 1, &vm), -EBADMSG);
	ck_assert(memcmp(&vm, &vm0, sizeof(vm)) == 0);
	ck_assert_int_eq(codec_decode_metric(t, n, &vm), 0);
	ck_assert_int_eq(codec_decode_metric(NULL, 0, &vm), -EBADMSG);
	ck_assert_int_eq(codec_decode_metric(t, 0, &vm), -EBADMSG);
	/* A payload of one type is no other. */
	ck_assert_int_eq(codec_decode_log(t, n, &vl), -EBADMSG);
	ck_assert_int_eq(codec_decode_process(t, n, &vp), -EBADMSG);
	free(t);
	free(b);

	/* Hand-made bodies after a valid 20-byte gauge head. */
	{
		/* clang-format off */
		static const struct {
			uint8_t bytes[16];
			size_t len;
			int want;
		} tails[] = {
			{ { 0, 0, 2, 'n', 0, 0, 0, 0, 0, 0, 0 }, 11, 0 },      /* the reference */
			{ { 0, 0, 0x82, 0x00, 'n', 0, 0, 0, 0, 0, 0, 0 }, 12, -EBADMSG }, /* non-minimal uleb */
			{ { 0, 0, 0x80, 0x80, 0x80, 0x80, 0x01 }, 7, -EBADMSG }, /* 5-byte uleb */
			{ { 0, 0, 0xff, 0xff, 0xff, 0x7f }, 6, -EBADMSG },  /* 2^28 - 1: too long */
			{ { 0, 0, 2, 'n', 0, 0, 0, 0, 0, 0x01, 0x04 }, 11, -EBADMSG }, /* 1025 attrs */
			{ { 0, 0, 2, 'n', 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x00 }, 13, -EBADMSG }, /* absent key */
			{ { 0, 0, 2, 'n', 0, 0, 0, 0, 0, 0x01, 0x00, 0x01, 0x00 }, 13, 0 }, /* key "", no value */
			{ { 0, 0, 2, 'n', 0, 0, 0, 0, 0, 0x02, 0x00, 0x01, 0x00 }, 13, -EBADMSG }, /* 2 attrs, 1 there */
		};
		/* clang-format on */

		for (size_t i = 0; i < ARRAY_SIZE(tails); i++) {
			struct be_metric h = { .name = "n", .kind = BE_METRIC_GAUGE };
			uint8_t *g = enc_metric(&h, &n), *x;

			x = malloc(20 + tails[i].len);
			memcpy(x, g, 20);
			memcpy(x + 20, tails[i].bytes, tails[i].len);
			ck_assert_msg(codec_decode_metric(x, 20 + tails[i].len, &vm) ==
					      tails[i].want,
				      "tail %zu", i);
			free(x);
			free(g);
		}
	}
	/* A 65536-byte string: a length the encoder never writes. */
	{
		char *s = str_of(CODEC_STR_MAX, 'z');
		struct be_metric big = { .name = "n", .kind = 1, .unit = s };
		uint8_t *x;

		b = enc_metric(&big, &n);
		/* unit's uleb, 65536 = 0x80 0x80 0x04 at offset 24: make it 65537, one byte more. */
		ck_assert_uint_eq(b[24], 0x80);
		ck_assert_uint_eq(b[25], 0x80);
		ck_assert_uint_eq(b[26], 0x04);
		x = malloc(n + 1);
		memcpy(x, b, 27);
		x[24] = 0x81;
		x[27] = 'z';
		memcpy(x + 28, b + 27, n - 27);
		ck_assert_int_eq(codec_decode_metric(x, n + 1, &vm), -EBADMSG);
		free(x);
		free(b);
		free(s);
	}
	/* Histograms: bounds that are NaN or out of order, bytes short. */
	{
		static const double bnd[2] = { 1, 2 };
		static const uint64_t bk[3] = { 1, 2, 3 };
		struct be_metric h = { .name = "n",
				       .kind = BE_METRIC_HISTOGRAM,
				       .bounds = bnd,
				       .nbounds = 2,
				       .buckets = bk };
		const size_t b0 = 30; /* 12 + count 8 + sum 8 + nbounds 2 */

		b = enc_metric(&h, &n);
		ck_assert_uint_eq(b[28], 2);
		free(b);
		/* Second bound (2.0, 0x4000000000000000) := 2^-15, below the first. */
		ck_assert_int_eq(metric_with_byte(&h, b0 + 8 + 7, 0x3f), -EBADMSG);
		/* Second bound := 1.0 (0x3ff0...), equal to the first. */
		{
			uint8_t *x = enc_metric(&h, &n);

			x[b0 + 8 + 6] = 0xf0;
			x[b0 + 8 + 7] = 0x3f;
			ck_assert_int_eq(codec_decode_metric(x, n, &vm), -EBADMSG);
			free(x);
		}
		/* First bound := NaN (exponent all ones, mantissa non-zero). */
		{
			uint8_t *x = enc_metric(&h, &n);

			memset(x + b0, 0xff, 8);
			ck_assert_int_eq(codec_decode_metric(x, n, &vm), -EBADMSG);
			memset(x + b0, 0, 8);
			x[b0 + 6] = 0xf0;
			x[b0 + 7] = 0xff; /* -inf: fine */
			ck_assert_int_eq(codec_decode_metric(x, n, &vm), 0);
			free(x);
		}
		/* nbounds 1026. */
		ck_assert_int_eq(metric_with_byte(&h, 29, 4), -EBADMSG);
	}
	/* Log severity 25; process flags. */
	b = enc_log(&l, &n);
	b[2] = 25;
	ck_assert_int_eq(codec_decode_log(b, n, &vl), -EBADMSG);
	b[2] = 24;
	ck_assert_int_eq(codec_decode_log(b, n, &vl), 0);
	b[3] = 1;
	ck_assert_int_eq(codec_decode_log(b, n, &vl), -EBADMSG);
	b[3] = 0;
	b[17] = 0; /* message absent */
	ck_assert_int_eq(codec_decode_log(b, n - 1, &vl), -EBADMSG);
	free(b);
	b = enc_process(&p, &n);
	b[2] = 1;
	ck_assert_int_eq(codec_decode_process(b, n, &vp), -EBADMSG);
	b[2] = 0;
	b[3] = 0x80;
	ck_assert_int_eq(codec_decode_process(b, n, &vp), -EBADMSG);
	b[3] = 0;
	ck_assert_int_eq(codec_decode_process(b, n, &vp), 0);
	b[0] = 9;
	ck_assert_int_eq(codec_decode_process(b, n, &vp), -EPROTO);
	free(b);
}
END_TEST

/* The attribute walk checks the bytes again: changed under it, it stops. */
START_TEST(test_attr_iter_changed)
{
	static const struct be_attr a[] = { { "one", "1" }, { "two", "2" } };
	struct be_log l = { .message = "m", .fields = a, .nfields = 2 };
	struct codec_log v;
	struct codec_attr_iter it;
	struct codec_str k, val;
	uint8_t *b;
	size_t n;

	b = enc_log(&l, &n);
	ck_assert_int_eq(codec_decode_log(b, n, &v), 0);
	codec_attrs_begin(&v.fields, &it);
	ck_assert_int_eq(codec_attr_next(&it, &k, &val), 1);
	ck_assert_int_eq((int)k.len, 3);
	/* The second key's length (n - 6: "two" then value "2") claims more than there is. */
	ck_assert_uint_eq(b[n - 6], 4);
	b[n - 6] = 0x7f;
	ck_assert_int_eq(codec_attr_next(&it, &k, &val), -EBADMSG);
	ck_assert_int_eq(codec_attr_next(&it, &k, &val), 0);
	free(b);

	/* An empty walk. */
	l.nfields = 0;
	b = enc_log(&l, &n);
	ck_assert_int_eq(codec_decode_log(b, n, &v), 0);
	codec_attrs_begin(&v.fields, &it);
	ck_assert_int_eq(codec_attr_next(&it, &k, &val), 0);
	free(b);
}
END_TEST

/* Every proper prefix of a valid encoding is -EBADMSG, read from an exact buffer. */
START_TEST(test_truncations)
{
	uint8_t *enc[16];
	size_t len[16], count = 0;
	int type[16];

	for (int i = 0; i < 5; i++) {
		struct be_metric m = sample_metric(i);

		type[count] = BE_TYPE_METRIC;
		enc[count] = enc_metric(&m, &len[count]);
		count++;
	}
	for (int i = 0; i < 4; i++) {
		struct be_log l = sample_log(i);

		type[count] = BE_TYPE_LOG;
		enc[count] = enc_log(&l, &len[count]);
		count++;
	}
	for (int i = 0; i < 3; i++) {
		struct be_process p = sample_process(i);

		type[count] = BE_TYPE_PROCESS;
		enc[count] = enc_process(&p, &len[count]);
		count++;
	}
	for (size_t e = 0; e < count; e++) {
		REQUIRE(decode_all(enc[e], len[e]) == 1, "sample %zu does not decode", e);
		for (size_t k = 0; k < len[e]; k++) {
			uint8_t *t = dup_exact(enc[e], k);
			struct codec_metric vm;
			struct codec_log vl;
			struct codec_process vp;
			int ret = type[e] == BE_TYPE_METRIC ? codec_decode_metric(t, k, &vm)
				  : type[e] == BE_TYPE_LOG  ? codec_decode_log(t, k, &vl)
							    : codec_decode_process(t, k, &vp);

			REQUIRE(ret == -EBADMSG, "sample %zu cut to %zu of %zu: %d", e, k, len[e],
				ret);
			REQUIRE(decode_all(t, k) == 0, "sample %zu cut to %zu decodes", e, k);
			free(t);
		}
		free(enc[e]);
	}
}
END_TEST

/* Random buffers: never a crash, never a read outside them. */
START_TEST(test_garbage)
{
	uint8_t buf[512];
	int decoded = 0;

	for (int i = 0; i < 30000; i++) {
		size_t n = (size_t)(rng() % (i < 1000 ? 40 : sizeof(buf)));
		uint8_t *b;

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)rng();
		/* Half of them get past the first two bytes. */
		if (n >= 2 && (i & 1)) {
			buf[0] = CODEC_VERSION;
			buf[1] = (uint8_t)(BE_TYPE_METRIC + rng() % 3);
		}
		/* And some have small lengths and counts, to get further still. */
		if (i % 4 == 1)
			for (size_t k = 2; k < n; k++)
				if (rng() % 3 == 0)
					buf[k] &= 0x07;
		b = dup_exact(buf, n);
		decoded += decode_all(b, n);
		free(b);
	}
	/* Not a check of the codec: a note that the fuzzing reached deep. */
	(void)decoded;
}
END_TEST

/* Mutated valid encodings: whatever still decodes re-encodes to the same bytes. */
START_TEST(test_mutations)
{
	uint8_t *seed[12];
	size_t slen[12], nseeds = 0;
	int decoded = 0;

	for (int i = 0; i < 5; i++) {
		struct be_metric m = sample_metric(i);

		seed[nseeds] = enc_metric(&m, &slen[nseeds]);
		nseeds++;
	}
	for (int i = 0; i < 4; i++) {
		struct be_log l = sample_log(i);

		seed[nseeds] = enc_log(&l, &slen[nseeds]);
		nseeds++;
	}
	for (int i = 0; i < 3; i++) {
		struct be_process p = sample_process(i);

		seed[nseeds] = enc_process(&p, &slen[nseeds]);
		nseeds++;
	}
	for (int i = 0; i < 30000; i++) {
		size_t s = (size_t)(rng() % nseeds), n = slen[s];
		uint8_t work[1024], *b;
		int ops = 1 + (int)(rng() % 3);

		REQUIRE(n + 8 <= sizeof(work), "seed too long");
		memcpy(work, seed[s], n);
		while (ops--) {
			size_t at = n ? (size_t)(rng() % n) : 0;

			switch (rng() % 5) {
			case 0: /* a bit */
				if (n)
					work[at] ^= (uint8_t)(1u << (rng() % 8));
				break;
			case 1: /* a byte */
				if (n)
					work[at] = (uint8_t)rng();
				break;
			case 2: /* a byte in */
				if (n + 1 < sizeof(work)) {
					memmove(work + at + 1, work + at, n - at);
					work[at] = (uint8_t)rng();
					n++;
				}
				break;
			case 3: /* a byte out */
				if (n) {
					memmove(work + at, work + at + 1, n - at - 1);
					n--;
				}
				break;
			default: /* a small number, as a length or count */
				if (n)
					work[at] = (uint8_t)(rng() % 5);
				break;
			}
		}
		b = dup_exact(work, n);
		decoded += decode_all(b, n);
		free(b);
	}
	/* String bytes and numbers mutate into valid payloads often. */
	ck_assert_int_gt(decoded, 1000);
	for (size_t s = 0; s < nseeds; s++)
		free(seed[s]);
}
END_TEST

START_TEST(test_severity)
{
	static const char *const want[25] = {
		"UNSPECIFIED", "TRACE",	 "TRACE2", "TRACE3", "TRACE4", "DEBUG",	 "DEBUG2",
		"DEBUG3",      "DEBUG4", "INFO",   "INFO2",  "INFO3",  "INFO4",	 "WARN",
		"WARN2",       "WARN3",	 "WARN4",  "ERROR",  "ERROR2", "ERROR3", "ERROR4",
		"FATAL",       "FATAL2", "FATAL3", "FATAL4",
	};
	/* LOG_EMERG .. LOG_DEBUG */
	static const int from_syslog[8] = { 21, 19, 18, 17, 13, 10, 9, 5 };

	for (int i = 0; i <= 24; i++)
		ck_assert_str_eq(codec_severity_text(i), want[i]);
	ck_assert_str_eq(codec_severity_text(BE_SEV_TRACE), "TRACE");
	ck_assert_str_eq(codec_severity_text(BE_SEV_DEBUG), "DEBUG");
	ck_assert_str_eq(codec_severity_text(BE_SEV_INFO), "INFO");
	ck_assert_str_eq(codec_severity_text(BE_SEV_WARN), "WARN");
	ck_assert_str_eq(codec_severity_text(BE_SEV_ERROR), "ERROR");
	ck_assert_str_eq(codec_severity_text(BE_SEV_FATAL), "FATAL");
	ck_assert_ptr_null(codec_severity_text(-1));
	ck_assert_ptr_null(codec_severity_text(25));
	for (int lvl = 0; lvl < 8; lvl++) {
		ck_assert_int_eq(codec_severity_from_syslog(lvl), from_syslog[lvl]);
		/* A full PRI: the facility is ignored (LOG_LOCAL7 is 23 << 3). */
		ck_assert_int_eq(codec_severity_from_syslog(23 << 3 | lvl), from_syslog[lvl]);
		ck_assert_int_eq(codec_severity_from_syslog(1 << 3 | lvl), from_syslog[lvl]);
	}
	ck_assert_int_eq(codec_severity_from_syslog(-1), -EINVAL);
	ck_assert_int_eq(codec_severity_from_syslog(192), -EINVAL);
	ck_assert_int_eq(codec_severity_from_syslog(1 << 30), -EINVAL);
}
END_TEST

/* ------------------------------------------------------------------------
 * Through the API, into rings made with ring_create().
 */

static void mkring(struct ring_map *m, char *inst, const char *store, uint64_t cap, uint32_t type,
		   uint32_t on_full)
{
	struct ring_params p = {
		.store = store,
		.capacity = cap,
		.store_type = type,
		.on_full = on_full,
		.first_seq = FIRST_SEQ,
		.flush_bytes = UINT64_MAX,
		.mode = 0600,
	};
	int ret;

	tu_instance(inst, 64);
	ret = ring_create(inst, &p, m);
	ck_assert_msg(ret == 0, "ring_create(%s, %s): %s", inst, store, be_strerror(ret));
}

static void rmring(struct ring_map *m, const char *inst, const char *store)
{
	ring_unmap(m);
	ring_unlink(inst, store);
}

static be_store *open_store(const char *inst, const char *store)
{
	struct be_open_opts o = { .instance = inst, .write_timeout_ms = 0 };
	be_store *s = NULL;
	int ret = be_open(store, &o, &s);

	ck_assert_msg(ret == 0, "be_open(%s): %s", store, be_strerror(ret));
	return s;
}

/* The records in [tail, head), copied out with ring_collect(). */
struct collected {
	uint8_t *buf;
	struct ring_batch b;
	size_t next; /* walk offset */
};

static void collect(const struct ring_map *m, struct collected *c)
{
	uint64_t head = load_acquire(&m->hdr->head), tail = load_acquire(&m->hdr->tail);
	int ret;

	c->buf = malloc(m->capacity);
	ck_assert_ptr_nonnull(c->buf);
	ret = ring_collect(m, tail, head, 0, c->buf, m->capacity, &c->b);
	ck_assert_msg(ret == 0, "ring_collect: %d", ret);
	ck_assert_uint_eq(c->b.end_pos, head);
	c->next = 0;
}

/* The next record: its header in *rh, its payload returned. */
static const uint8_t *next_rec(struct collected *c, struct rec_hdr *rh)
{
	const uint8_t *p;

	ck_assert_uint_lt(c->next, c->b.bytes);
	memcpy(rh, c->buf + c->next, sizeof(*rh));
	p = c->buf + c->next + sizeof(*rh);
	c->next += rec_size(rh->len);
	return p;
}

/* What the store's handle will wait for: be_flush(0) passes only once durable_seq > it. */
static void check_last_seq(be_store *s, struct ring_map *m, uint64_t last)
{
	WRITE_ONCE(m->hdr->durable_seq, last);
	ck_assert_int_eq(be_flush(s, 0), -ETIMEDOUT);
	WRITE_ONCE(m->hdr->durable_seq, last + 1);
	ck_assert_int_eq(be_flush(s, 0), 0);
}

START_TEST(test_api_wrong_type)
{
	struct ring_map raw, met;
	char iraw[64], imet[64];
	be_store *sr, *sm;
	struct be_metric m = { .name = "n", .kind = BE_METRIC_GAUGE };
	struct be_log l = { .message = "m" };
	struct be_process p = { .pid = 1 };

	mkring(&raw, iraw, "raw", RING_CAP_MIN, BE_TYPE_RAW, RING_ON_FULL_DROP);
	mkring(&met, imet, "met", RING_CAP_MIN, BE_TYPE_METRIC, RING_ON_FULL_DROP);
	sr = open_store(iraw, "raw");
	sm = open_store(imet, "met");

	ck_assert_int_eq(be_write_metric(sr, &m), -EPROTOTYPE);
	ck_assert_int_eq(be_write_log(sr, &l), -EPROTOTYPE);
	ck_assert_int_eq(be_write_process(sr, &p), -EPROTOTYPE);
	ck_assert_int_eq(be_write_metrics(sr, &m, 1), -EPROTOTYPE);
	ck_assert_int_eq(be_write_logs(sr, &l, 1), -EPROTOTYPE);
	ck_assert_int_eq(be_write_processes(sr, &p, 1), -EPROTOTYPE);
	/* The type is checked first, before the record is looked at. */
	ck_assert_int_eq(be_write_metric(sr, NULL), -EPROTOTYPE);
	ck_assert_int_eq(be_write_metrics(sr, NULL, 0), -EPROTOTYPE);

	ck_assert_int_eq(be_write(sm, "raw", 3), -EPROTOTYPE);
	ck_assert_int_eq(be_write_log(sm, &l), -EPROTOTYPE);
	ck_assert_int_eq(be_write_process(sm, &p), -EPROTOTYPE);
	ck_assert_int_eq(be_write_logs(sm, &l, 1), -EPROTOTYPE);
	ck_assert_int_eq(be_write_processes(sm, &p, 1), -EPROTOTYPE);

	/* Bad arguments. */
	ck_assert_int_eq(be_write_metric(NULL, &m), -EINVAL);
	ck_assert_int_eq(be_write_metrics(NULL, &m, 1), -EINVAL);
	ck_assert_int_eq(be_write_metric(sm, NULL), -EINVAL);
	ck_assert_int_eq(be_write_metrics(sm, NULL, 1), -EINVAL);
	ck_assert_int_eq(be_write_metrics(sm, NULL, 0), 0);
	ck_assert_int_eq(be_write_metrics(sm, &m, 0), 0);

	ck_assert_uint_eq(READ_ONCE(raw.hdr->head), 0);
	ck_assert_uint_eq(READ_ONCE(met.hdr->head), 0);
	ck_assert_uint_eq(READ_ONCE(met.hdr->next_seq), FIRST_SEQ);

	/* The right type goes in. */
	ck_assert_int_eq(be_write_metric(sm, &m), 0);
	ck_assert_uint_eq(READ_ONCE(met.hdr->next_seq), FIRST_SEQ + 1);
	be_close(sr);
	be_close(sm);
	rmring(&raw, iraw, "raw");
	rmring(&met, imet, "met");
}
END_TEST

/* Metrics, one and a batch: types, seqs, pid, timestamps, payloads. */
START_TEST(test_api_metrics)
{
	static const double bnd[] = { 0.5, 1, 5 };
	static const uint64_t bk[] = { 1, 2, 3, 4 };
	static const struct be_attr at[] = { { "cpu", "0" }, { "mode", NULL } };
	static const struct be_meta meta = { "h1", NULL, "host", "" };
	struct be_metric one[3] = {
		{ .ns = "System",
		  .sub_ns = "CPU",
		  .name = "usage",
		  .unit = "percent",
		  .kind = BE_METRIC_GAUGE,
		  .value = 12.5,
		  .ts_ns = 0,
		  .attrs = at,
		  .nattrs = 2,
		  .meta = &meta },
		{ .name = "requests", .kind = BE_METRIC_COUNTER, .value = 1e9, .ts_ns = 12345 },
		{ .name = "latency",
		  .kind = BE_METRIC_HISTOGRAM,
		  .bounds = bnd,
		  .nbounds = 3,
		  .buckets = bk,
		  .count = 10,
		  .sum = 7.25,
		  .ts_ns = 0 },
	};
	struct be_metric batch[3];
	struct ring_map rm;
	struct collected c;
	struct rec_hdr rh;
	char inst[64];
	be_store *s;
	uint64_t t0, t1;

	mkring(&rm, inst, "m", 1u << 16, BE_TYPE_METRIC, RING_ON_FULL_DROP);
	s = open_store(inst, "m");
	t0 = now_real();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(be_write_metric(s, &one[i]), 0);
	memcpy(batch, one, sizeof(batch));
	batch[0].name = "usage2";
	ck_assert_int_eq(be_write_metrics(s, batch, 3), 3);
	t1 = now_real();
	check_last_seq(s, &rm, FIRST_SEQ + 5);

	collect(&rm, &c);
	ck_assert_uint_eq(c.b.count, 6);
	for (int i = 0; i < 6; i++) {
		struct be_metric want = i < 3 ? one[i] : batch[i - 3];
		struct codec_metric v;
		const uint8_t *pl = next_rec(&c, &rh);

		ck_assert_uint_eq(rh.type, BE_TYPE_METRIC);
		ck_assert_uint_eq(rh.seq, FIRST_SEQ + (uint64_t)i);
		ck_assert_uint_eq(rh.pid, (uint32_t)getpid());
		ck_assert_uint_ge(rh.ts_ns, t0);
		ck_assert_uint_le(rh.ts_ns, t1);
		ck_assert_int_eq(codec_decode_metric(pl, rh.len, &v), 0);
		/* ts_ns 0 is now: the same now as the record header's. */
		if (!want.ts_ns)
			want.ts_ns = rh.ts_ns;
		check_metric(&v, &want);
	}
	be_close(s);
	free(c.buf);
	rmring(&rm, inst, "m");
}
END_TEST

/* Logs: small, past the stack buffer, a batch past it too. */
START_TEST(test_api_logs)
{
	char *big = str_of(5000, 'L');
	struct be_log l = { .severity = BE_SEV_ERROR, .message = big, .source = "src", .pid = 7 };
	struct be_log batch[40];
	struct ring_map rm;
	struct collected c;
	struct rec_hdr rh;
	char inst[64];
	be_store *s;

	mkring(&rm, inst, "l", 1u << 18, BE_TYPE_LOG, RING_ON_FULL_BLOCK);
	s = open_store(inst, "l");
	ck_assert_int_eq(be_write_log(s, &l), 0);
	for (int i = 0; i < 40; i++) {
		batch[i] = (struct be_log){ .severity = i % 25,
					    .message = big + (i * 100),
					    .ts_ns = (uint64_t)i,
					    .category = i % 2 ? "c" : NULL };
	}
	ck_assert_int_eq(be_write_logs(s, batch, 40), 40);
	check_last_seq(s, &rm, FIRST_SEQ + 40);

	collect(&rm, &c);
	ck_assert_uint_eq(c.b.count, 41);
	for (int i = 0; i < 41; i++) {
		struct be_log want = i ? batch[i - 1] : l;
		struct codec_log v;
		const uint8_t *pl = next_rec(&c, &rh);

		ck_assert_uint_eq(rh.type, BE_TYPE_LOG);
		ck_assert_int_eq(codec_decode_log(pl, rh.len, &v), 0);
		if (!want.ts_ns)
			want.ts_ns = rh.ts_ns;
		check_log(&v, &want);
	}
	be_close(s);
	free(c.buf);
	free(big);
	rmring(&rm, inst, "l");
}
END_TEST

/* Processes: a snapshot as one batch, and one on its own. */
START_TEST(test_api_processes)
{
	struct be_process snap[200];
	struct be_process solo = sample_process(0);
	struct ring_map rm;
	struct collected c;
	struct rec_hdr rh;
	char inst[64];
	be_store *s;

	mkring(&rm, inst, "p", 1u << 16, BE_TYPE_PROCESS, RING_ON_FULL_DROP);
	s = open_store(inst, "p");
	for (int i = 0; i < 200; i++) {
		snap[i] = sample_process(i);
		snap[i].snapshot_ts_ns = 0;
		snap[i].pid = (uint32_t)(1000 + i);
	}
	ck_assert_int_eq(be_write_processes(s, snap, 200), 200);
	ck_assert_int_eq(be_write_process(s, &solo), 0);
	check_last_seq(s, &rm, FIRST_SEQ + 200);

	collect(&rm, &c);
	ck_assert_uint_eq(c.b.count, 201);
	for (int i = 0; i < 201; i++) {
		struct be_process want = i < 200 ? snap[i] : solo;
		struct codec_process v;
		const uint8_t *pl = next_rec(&c, &rh);

		ck_assert_uint_eq(rh.type, BE_TYPE_PROCESS);
		ck_assert_uint_eq(rh.seq, FIRST_SEQ + (uint64_t)i);
		ck_assert_int_eq(codec_decode_process(pl, rh.len, &v), 0);
		if (!want.snapshot_ts_ns)
			want.snapshot_ts_ns = rh.ts_ns;
		check_process(&v, &want);
	}
	be_close(s);
	free(c.buf);
	rmring(&rm, inst, "p");
}
END_TEST

/* Over the store's limit, or invalid: refused, and nothing written. */
START_TEST(test_api_refusals)
{
	char *big = str_of(RING_CAP_MIN, 'b');
	struct be_log l = { .message = big };
	struct be_log batch[8];
	struct ring_map rm;
	char inst[64];
	be_store *s;
	size_t fit;

	mkring(&rm, inst, "r", RING_CAP_MIN, BE_TYPE_LOG, RING_ON_FULL_DROP);
	s = open_store(inst, "r");
	ck_assert_uint_eq(be_max_payload(s), RING_CAP_MIN / 4);

	/*
	 * The longest message that fits the limit: 16 fixed bytes, a two-byte
	 * uleb, four absent strings (severity_text, source, category...) and
	 * meta, no fields: 27 bytes besides the message.  One byte more is over.
	 */
	fit = be_max_payload(s) - 27;
	big[fit + 1] = 0;
	ck_assert_int_eq(codec_log_size(&l), (ssize_t)be_max_payload(s) + 1);
	ck_assert_int_eq(be_write_log(s, &l), -EMSGSIZE);
	ck_assert_uint_eq(READ_ONCE(rm.hdr->head), 0);

	for (int i = 0; i < 8; i++)
		batch[i] = (struct be_log){ .message = "ok", .severity = 9 };
	batch[5] = l;
	ck_assert_int_eq(be_write_logs(s, batch, 8), -EMSGSIZE);
	batch[5] = (struct be_log){ .message = NULL };
	ck_assert_int_eq(be_write_logs(s, batch, 8), -EINVAL);
	batch[5] = (struct be_log){ .message = "m", .severity = 30 };
	ck_assert_int_eq(be_write_logs(s, batch, 8), -EINVAL);
	batch[7] = (struct be_log){ .message = "m", .nfields = 1 };
	ck_assert_int_eq(be_write_logs(s, batch, 8), -EINVAL);
	ck_assert_uint_eq(READ_ONCE(rm.hdr->head), 0);
	ck_assert_uint_eq(READ_ONCE(rm.hdr->next_seq), FIRST_SEQ);
	ck_assert_uint_eq(READ_ONCE(rm.hdr->drops), 0);

	/* At the limit, it goes in. */
	big[fit] = 0;
	ck_assert_int_eq(codec_log_size(&l), (ssize_t)be_max_payload(s));
	ck_assert_int_eq(be_write_log(s, &l), 0);
	ck_assert_uint_eq(READ_ONCE(rm.hdr->head), rec_size(be_max_payload(s)));
	be_close(s);
	free(big);
	rmring(&rm, inst, "r");
}
END_TEST

/* A batch into a drop store that fills part-way: the count written, all whole. */
START_TEST(test_api_batch_partial)
{
	struct be_metric batch[100];
	char names[100][32];
	struct ring_map rm;
	struct collected c;
	struct rec_hdr rh;
	char inst[64];
	be_store *s;
	int got;

	mkring(&rm, inst, "d", RING_CAP_MIN, BE_TYPE_METRIC, RING_ON_FULL_DROP);
	s = open_store(inst, "d");
	for (int i = 0; i < 100; i++) {
		snprintf(names[i], sizeof(names[i]), "metric-%03d-with-a-long-name", i);
		batch[i] = (struct be_metric){ .name = names[i],
					       .kind = BE_METRIC_COUNTER,
					       .value = i,
					       .ts_ns = 1000 + (uint64_t)i };
	}
	got = be_write_metrics(s, batch, 100);
	ck_assert_int_gt(got, 0);
	ck_assert_int_lt(got, 100);
	ck_assert_uint_eq(READ_ONCE(rm.hdr->drops), 1);
	check_last_seq(s, &rm, FIRST_SEQ + (uint64_t)got - 1);

	collect(&rm, &c);
	ck_assert_uint_eq(c.b.count, (uint32_t)got);
	for (int i = 0; i < got; i++) {
		struct codec_metric v;
		const uint8_t *pl = next_rec(&c, &rh);

		ck_assert_uint_eq(rh.type, BE_TYPE_METRIC);
		ck_assert_int_eq(codec_decode_metric(pl, rh.len, &v), 0);
		check_metric(&v, &batch[i]);
	}
	/* Full: the next batch writes none and says why. */
	ck_assert_int_eq(be_write_metrics(s, batch, 100), -ENOBUFS);
	ck_assert_int_eq(be_write_metric(s, batch), -ENOBUFS);
	be_close(s);
	free(c.buf);
	rmring(&rm, inst, "d");
}
END_TEST

Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_roundtrip_samples);
	tcase_add_test(tc, test_null_vs_empty);
	tcase_add_test(tc, test_layout_bytes);
	tcase_add_test(tc, test_string_lengths);
	tcase_add_test(tc, test_max_lengths);
	tcase_add_test(tc, test_max_message);
	tcase_add_test(tc, test_max_counts);
	tcase_add_test(tc, test_histograms);
	tcase_add_test(tc, test_float_bits);
	tcase_add_test(tc, test_string_bytes);
	tcase_add_test(tc, test_int_extremes);
	tcase_add_test(tc, test_encode_refusals);
	tcase_add_test(tc, test_severity);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode_hostile");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_decode_refusals);
	tcase_add_test(tc, test_attr_iter_changed);
	tcase_add_test(tc, test_truncations);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);

	tc = tcase_create("api");
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_api_wrong_type);
	tcase_add_test(tc, test_api_metrics);
	tcase_add_test(tc, test_api_logs);
	tcase_add_test(tc, test_api_processes);
	tcase_add_test(tc, test_api_refusals);
	tcase_add_test(tc, test_api_batch_partial);
	suite_add_tcase(s, tc);
	return s;
}
