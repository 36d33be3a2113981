/*
 * fuzz_codec.c - the typed-record decoders (shm/codec.c) on arbitrary bytes.
 *
 * The input is one payload, in a buffer of exactly its size.  Each of the
 * three decoders gets it (at most one can accept: the type byte differs).
 * What decodes must encode back to the same bytes (the format is
 * canonical: shm/codec.h), through the sizing call, an exact buffer and a
 * buffer one byte short (which must not be written past); its attributes
 * must walk.  Then the record is printed the way be-read and shm-dump
 * print it (server/recfmt.c), as text and as JSON, whether it decoded or
 * not: the return value must match the decoder's, a JSON line must be one
 * valid JSON object, a text line one line of printable UTF-8.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"
#include "server/recfmt.h"
#include "shm/codec.h"
#include "tests/fuzz/fuzz_util.h"

/* Copies of decoded strings as C strings, in one arena of 2n + 16 bytes. */
struct arena {
	char *p;
	size_t used, cap;
};

static const char *arena_str(struct arena *a, const struct codec_str *s)
{
	char *d;

	if (!s->p)
		return NULL;
	FUZZ_ASSERT(s->len < a->cap - a->used);
	FUZZ_ASSERT(!memchr(s->p, 0, s->len)); /* the decoder refuses NUL */
	d = a->p + a->used;
	memcpy(d, s->p, s->len);
	d[s->len] = 0;
	a->used += s->len + 1;
	return d;
}

static void arena_meta(struct arena *a, const struct codec_meta *m, struct be_meta *out)
{
	out->host_id = arena_str(a, &m->host_id);
	out->agent_id = arena_str(a, &m->agent_id);
	out->hostname = arena_str(a, &m->hostname);
	out->endpoint_id = arena_str(a, &m->endpoint_id);
}

/* The attributes as an array; walking them must give exactly count pairs. */
static struct be_attr *arena_attrs(struct arena *a, const struct codec_attrs *ca)
{
	struct be_attr *out = fuzz_malloc(ca->count * sizeof(*out));
	struct codec_attr_iter it;
	struct codec_str k, v;
	uint32_t i = 0;
	int ret;

	FUZZ_ASSERT(ca->count <= CODEC_COUNT_MAX);
	codec_attrs_begin(ca, &it);
	while ((ret = codec_attr_next(&it, &k, &v)) > 0) {
		FUZZ_ASSERT(i < ca->count);
		FUZZ_ASSERT(k.p != NULL); /* a key is never absent */
		out[i].key = arena_str(a, &k);
		out[i].value = arena_str(a, &v);
		i++;
	}
	FUZZ_ASSERT(ret == 0);
	FUZZ_ASSERT(i == ca->count);
	FUZZ_ASSERT(codec_attr_next(&it, &k, &v) == 0); /* stays at the end */
	return out;
}

/*
 * The three encoders' checks: the size alone, an exact buffer, and one a
 * byte short (snprintf-like: nothing written past it, same size returned).
 */
typedef ssize_t (*encode_fn)(const void *rec, void *buf, size_t cap);

static void check_encoding(encode_fn enc, const void *rec, const uint8_t *want, size_t n)
{
	uint8_t *buf = fuzz_malloc(n);
	ssize_t ret;

	ret = enc(rec, NULL, 0);
	FUZZ_ASSERT(ret == (ssize_t)n);
	ret = enc(rec, buf, n);
	FUZZ_ASSERT(ret == (ssize_t)n);
	FUZZ_ASSERT(memcmp(buf, want, n) == 0); /* canonical: the same bytes back */
	free(buf);
	if (n > 1) {
		buf = fuzz_malloc(n - 1);
		ret = enc(rec, buf, n - 1);
		FUZZ_ASSERT(ret == (ssize_t)n);
		free(buf);
	}
}

static ssize_t enc_metric(const void *r, void *b, size_t c)
{
	return codec_encode_metric(r, b, c);
}

static ssize_t enc_log(const void *r, void *b, size_t c)
{
	return codec_encode_log(r, b, c);
}

static ssize_t enc_process(const void *r, void *b, size_t c)
{
	return codec_encode_process(r, b, c);
}

static int metric_roundtrip(const uint8_t *p, size_t n, struct arena *a)
{
	struct codec_metric m, before;
	struct be_metric bm = { 0 };
	struct be_meta meta;
	double *bounds = NULL;
	uint64_t *buckets = NULL;
	struct be_attr *attrs;
	int ret;

	memset(&m, 0xa5, sizeof(m));
	memcpy(&before, &m, sizeof(before));
	ret = codec_decode_metric(p, n, &m);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
	if (ret) {
		FUZZ_ASSERT(memcmp(&m, &before, sizeof(m)) == 0); /* *out unchanged */
		return ret;
	}
	FUZZ_ASSERT(m.version == CODEC_VERSION);
	FUZZ_ASSERT(m.kind >= BE_METRIC_GAUGE && m.kind <= BE_METRIC_HISTOGRAM);
	FUZZ_ASSERT(m.name.p != NULL);
	bm.ns = arena_str(a, &m.ns);
	bm.sub_ns = arena_str(a, &m.sub_ns);
	bm.name = arena_str(a, &m.name);
	bm.unit = arena_str(a, &m.unit);
	bm.kind = m.kind;
	bm.value = m.value;
	bm.ts_ns = m.ts_ns;
	if (m.kind == BE_METRIC_HISTOGRAM) {
		FUZZ_ASSERT(m.nbounds <= CODEC_COUNT_MAX);
		FUZZ_ASSERT(m.bounds && m.buckets);
		bounds = fuzz_malloc(m.nbounds * sizeof(*bounds));
		buckets = fuzz_malloc((m.nbounds + 1) * sizeof(*buckets));
		for (uint32_t i = 0; i < m.nbounds; i++)
			bounds[i] = codec_metric_bound(&m, i);
		for (uint32_t i = 0; i <= m.nbounds; i++)
			buckets[i] = codec_metric_bucket(&m, i);
		/* Past the ends: NaN and 0, never a read. */
		FUZZ_ASSERT(codec_metric_bound(&m, m.nbounds) != codec_metric_bound(&m, m.nbounds));
		FUZZ_ASSERT(codec_metric_bucket(&m, m.nbounds + 1) == 0);
		bm.bounds = bounds;
		bm.nbounds = m.nbounds;
		bm.buckets = buckets;
		bm.count = m.count;
		bm.sum = m.sum;
	} else {
		FUZZ_ASSERT(m.nbounds == 0 && !m.bounds && !m.buckets);
	}
	attrs = arena_attrs(a, &m.attrs);
	bm.attrs = attrs;
	bm.nattrs = m.attrs.count;
	arena_meta(a, &m.meta, &meta);
	bm.meta = &meta;
	check_encoding(enc_metric, &bm, p, n);
	free(attrs);
	free(bounds);
	free(buckets);
	return 0;
}

static int log_roundtrip(const uint8_t *p, size_t n, struct arena *a)
{
	struct codec_log l, before;
	struct be_log bl = { 0 };
	struct be_meta meta;
	struct be_attr *fields;
	int ret;

	memset(&l, 0x5a, sizeof(l));
	memcpy(&before, &l, sizeof(before));
	ret = codec_decode_log(p, n, &l);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
	if (ret) {
		FUZZ_ASSERT(memcmp(&l, &before, sizeof(l)) == 0);
		return ret;
	}
	FUZZ_ASSERT(l.version == CODEC_VERSION);
	FUZZ_ASSERT(l.severity <= CODEC_SEV_MAX);
	FUZZ_ASSERT(l.message.p != NULL && l.message.len <= CODEC_MSG_MAX);
	bl.ts_ns = l.ts_ns;
	bl.severity = l.severity;
	bl.severity_text = arena_str(a, &l.severity_text);
	bl.message = arena_str(a, &l.message);
	bl.source = arena_str(a, &l.source);
	bl.category = arena_str(a, &l.category);
	bl.pid = l.pid;
	fields = arena_attrs(a, &l.fields);
	bl.fields = fields;
	bl.nfields = l.fields.count;
	arena_meta(a, &l.meta, &meta);
	bl.meta = &meta;
	check_encoding(enc_log, &bl, p, n);
	free(fields);
	return 0;
}

static int process_roundtrip(const uint8_t *p, size_t n, struct arena *a)
{
	struct codec_process r, before;
	struct be_process bp = { 0 };
	struct be_meta meta;
	int ret;

	memset(&r, 0x3c, sizeof(r));
	memcpy(&before, &r, sizeof(before));
	ret = codec_decode_process(p, n, &r);
	FUZZ_ASSERT(ret == 0 || ret == -EBADMSG || ret == -EPROTO);
	if (ret) {
		FUZZ_ASSERT(memcmp(&r, &before, sizeof(r)) == 0);
		return ret;
	}
	FUZZ_ASSERT(r.version == CODEC_VERSION);
	bp.snapshot_id = r.snapshot_id;
	bp.snapshot_ts_ns = r.snapshot_ts_ns;
	bp.pid = r.pid;
	bp.ppid = r.ppid;
	bp.user = arena_str(a, &r.user);
	bp.exe = arena_str(a, &r.exe);
	bp.cmdline = arena_str(a, &r.cmdline);
	bp.cpu_percent = r.cpu_percent;
	bp.mem_percent = r.mem_percent;
	bp.rss_bytes = r.rss_bytes;
	bp.threads = r.threads;
	bp.start_ts_ns = r.start_ts_ns;
	arena_meta(a, &r.meta, &meta);
	bp.meta = &meta;
	check_encoding(enc_process, &bp, p, n);
	return 0;
}

/* Print the payload as a record of type `type`: the result must be `want`. */
static void check_format(const uint8_t *p, size_t n, uint16_t type, int want)
{
	struct rec_hdr h = {
		.len = (uint32_t)n,
		.type = type,
		.seq = 4294967296u + n,
		.ts_ns = UINT64_C(1764205323123456789),
		.pid = 4242,
	};

	for (int json = 0; json <= 1; json++) {
		struct recfmt f;
		int ret;

		FUZZ_ASSERT(recfmt_init(&f, json, "fuzz", 64) == 0);
		ret = recfmt_record(&f, &h, p);
		FUZZ_ASSERT(ret == want);
		if (json)
			FUZZ_ASSERT(fuzz_json_line(f.out.p, f.out.len));
		else
			FUZZ_ASSERT(fuzz_text_line(f.out.p, f.out.len));
		recfmt_free(&f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;
	struct arena a;
	int rm, rl, rp;

	if (size > (size_t)64 << 20)
		return 0;
	p = fuzz_dup(data, size);
	a.cap = 2 * size + 16;
	a.used = 0;
	a.p = fuzz_malloc(a.cap);

	rm = metric_roundtrip(p, size, &a);
	a.used = 0;
	rl = log_roundtrip(p, size, &a);
	a.used = 0;
	rp = process_roundtrip(p, size, &a);
	/* The type byte differs: at most one decodes.  -EPROTO is the version's, for all. */
	FUZZ_ASSERT((rm == 0) + (rl == 0) + (rp == 0) <= 1);
	if (size > 0 && p[0] > CODEC_VERSION)
		FUZZ_ASSERT(rm == -EPROTO && rl == -EPROTO && rp == -EPROTO);
	else
		FUZZ_ASSERT(rm != -EPROTO && rl != -EPROTO && rp != -EPROTO);

	check_format(p, size, BE_TYPE_METRIC, rm);
	check_format(p, size, BE_TYPE_LOG, rl);
	check_format(p, size, BE_TYPE_PROCESS, rp);

	free(a.p);
	free(p);
	return 0;
}
