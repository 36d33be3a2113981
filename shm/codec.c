/*
 * codec.c - encode and decode metric, log and process payloads, in the
 * format that shm/codec.h describes.
 *
 * The encoder is one walk over the record that validates every field and
 * counts the bytes, writing them only while they fit (snprintf-like), so
 * that sizing and encoding can never disagree.  The decoder reads through
 * a bounds-checked cursor: every length is checked against the bytes left
 * before anything is read, and anything the encoder would not have written
 * is refused, so a payload decodes only if it is a valid encoding.
 */
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "shm/codec.h"

#define ULEB_MAX_BYTES 4 /* 28 bits: enough for CODEC_MSG_MAX + 1 */

/* ------------------------------------------------------------------------
 * Encoding.
 */

struct enc {
	uint8_t *buf; /* NULL: count only */
	size_t cap;
	size_t len; /* bytes of the encoding so far (written or not) */
	int err;    /* first validation error, 0 if none */
};

static void put(struct enc *e, const void *src, size_t n)
{
	/* Write only while everything so far fits: the bytes are then whole. */
	if (e->buf && e->len <= e->cap && n <= e->cap - e->len && n)
		memcpy(e->buf + e->len, src, n);
	e->len += n;
}

static void put_u8(struct enc *e, uint8_t v)
{
	put(e, &v, 1);
}

static void put_u16(struct enc *e, uint16_t v)
{
	v = htole16(v);
	put(e, &v, 2);
}

static void put_u32(struct enc *e, uint32_t v)
{
	v = htole32(v);
	put(e, &v, 4);
}

static void put_u64(struct enc *e, uint64_t v)
{
	v = htole64(v);
	put(e, &v, 8);
}

/* A double as the bits it holds: no floating-point operation touches it. */
static void put_f64(struct enc *e, const double *d)
{
	uint64_t v;

	memcpy(&v, d, sizeof(v));
	put_u64(e, v);
}

static void put_uleb(struct enc *e, uint32_t v)
{
	uint8_t b[ULEB_MAX_BYTES + 1];
	size_t n = 0;

	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v && n < sizeof(b));
	put(e, b, n);
}

static void fail(struct enc *e, int err)
{
	if (!e->err)
		e->err = err;
}

/* A string: absent (NULL) unless required; at most max bytes. */
static void put_str(struct enc *e, const char *s, size_t max, int required)
{
	size_t n;

	if (!s) {
		if (required)
			fail(e, -EINVAL);
		put_uleb(e, 0);
		return;
	}
	n = strnlen(s, max + 1);
	if (n > max) {
		fail(e, -EMSGSIZE);
		return;
	}
	put_uleb(e, (uint32_t)n + 1);
	put(e, s, n);
}

static void put_meta(struct enc *e, const struct be_meta *m)
{
	static const struct be_meta none;

	if (!m)
		m = &none;
	put_str(e, m->host_id, CODEC_STR_MAX, 0);
	put_str(e, m->agent_id, CODEC_STR_MAX, 0);
	put_str(e, m->hostname, CODEC_STR_MAX, 0);
	put_str(e, m->endpoint_id, CODEC_STR_MAX, 0);
}

static void put_attrs(struct enc *e, const struct be_attr *a, size_t n)
{
	if (n > CODEC_COUNT_MAX) {
		fail(e, -EMSGSIZE);
		return;
	}
	if (n && !a) {
		fail(e, -EINVAL);
		return;
	}
	put_u16(e, (uint16_t)n);
	for (size_t i = 0; i < n && !e->err; i++) {
		put_str(e, a[i].key, CODEC_STR_MAX, 1);
		put_str(e, a[i].value, CODEC_STR_MAX, 0);
	}
}

/* The encoding's size, or its error. */
static ssize_t enc_result(const struct enc *e)
{
	return e->err ? e->err : (ssize_t)e->len;
}

static void put_histogram(struct enc *e, const struct be_metric *m)
{
	if (m->nbounds > CODEC_COUNT_MAX) {
		fail(e, -EMSGSIZE);
		return;
	}
	if (m->nbounds && (!m->bounds || !m->buckets)) {
		fail(e, -EINVAL);
		return;
	}
	for (size_t i = 0; i < m->nbounds; i++) {
		if (isnan(m->bounds[i]) || (i && !(m->bounds[i - 1] < m->bounds[i]))) {
			fail(e, -EINVAL);
			return;
		}
	}
	put_u64(e, m->count);
	put_f64(e, &m->sum);
	put_u16(e, (uint16_t)m->nbounds);
	for (size_t i = 0; i < m->nbounds; i++)
		put_f64(e, &m->bounds[i]);
	if (m->buckets) {
		for (size_t i = 0; i <= m->nbounds; i++)
			put_u64(e, m->buckets[i]);
	} else {
		put_u64(e, m->count); /* no bounds: all in the one bucket */
	}
}

ssize_t codec_encode_metric(const struct be_metric *m, void *buf, size_t cap)
{
	struct enc e = { .buf = buf, .cap = buf ? cap : 0 };

	if (!m || !m->name)
		return -EINVAL;
	if (m->kind < BE_METRIC_GAUGE || m->kind > BE_METRIC_HISTOGRAM)
		return -EINVAL;
	put_u8(&e, CODEC_VERSION);
	put_u8(&e, BE_TYPE_METRIC);
	put_u8(&e, (uint8_t)m->kind);
	put_u8(&e, 0);
	put_u64(&e, m->ts_ns);
	if (m->kind == BE_METRIC_HISTOGRAM)
		put_histogram(&e, m);
	else
		put_f64(&e, &m->value);
	put_str(&e, m->ns, CODEC_STR_MAX, 0);
	put_str(&e, m->sub_ns, CODEC_STR_MAX, 0);
	put_str(&e, m->name, CODEC_STR_MAX, 1);
	put_str(&e, m->unit, CODEC_STR_MAX, 0);
	put_meta(&e, m->meta);
	put_attrs(&e, m->attrs, m->nattrs);
	return enc_result(&e);
}

ssize_t codec_encode_log(const struct be_log *l, void *buf, size_t cap)
{
	struct enc e = { .buf = buf, .cap = buf ? cap : 0 };

	if (!l || !l->message)
		return -EINVAL;
	if (l->severity < 0 || l->severity > CODEC_SEV_MAX)
		return -EINVAL;
	put_u8(&e, CODEC_VERSION);
	put_u8(&e, BE_TYPE_LOG);
	put_u8(&e, (uint8_t)l->severity);
	put_u8(&e, 0);
	put_u32(&e, l->pid);
	put_u64(&e, l->ts_ns);
	put_str(&e, l->severity_text, CODEC_STR_MAX, 0);
	put_str(&e, l->message, CODEC_MSG_MAX, 1);
	put_str(&e, l->source, CODEC_STR_MAX, 0);
	put_str(&e, l->category, CODEC_STR_MAX, 0);
	put_meta(&e, l->meta);
	put_attrs(&e, l->fields, l->nfields);
	return enc_result(&e);
}

ssize_t codec_encode_process(const struct be_process *p, void *buf, size_t cap)
{
	struct enc e = { .buf = buf, .cap = buf ? cap : 0 };

	if (!p)
		return -EINVAL;
	put_u8(&e, CODEC_VERSION);
	put_u8(&e, BE_TYPE_PROCESS);
	put_u16(&e, 0);
	put_u32(&e, p->pid);
	put_u32(&e, p->ppid);
	put_u32(&e, p->threads);
	put_u64(&e, p->snapshot_id);
	put_u64(&e, p->snapshot_ts_ns);
	put_u64(&e, p->start_ts_ns);
	put_u64(&e, p->rss_bytes);
	put_f64(&e, &p->cpu_percent);
	put_f64(&e, &p->mem_percent);
	put_str(&e, p->user, CODEC_STR_MAX, 0);
	put_str(&e, p->exe, CODEC_STR_MAX, 0);
	put_str(&e, p->cmdline, CODEC_STR_MAX, 0);
	put_meta(&e, p->meta);
	return enc_result(&e);
}

/* ------------------------------------------------------------------------
 * Decoding.  A cursor over [p, end); every get_ checks the bytes left
 * first and returns -EBADMSG, leaving the cursor where it was, if short.
 */

struct dec {
	const uint8_t *p, *end;
};

static inline size_t left(const struct dec *d)
{
	return (size_t)(d->end - d->p);
}

static int get_bytes(struct dec *d, size_t n, const uint8_t **out)
{
	if (n > left(d))
		return -EBADMSG;
	*out = d->p;
	d->p += n;
	return 0;
}

static int get_u8(struct dec *d, uint8_t *v)
{
	if (!left(d))
		return -EBADMSG;
	*v = *d->p++;
	return 0;
}

static int get_u16(struct dec *d, uint16_t *v)
{
	if (left(d) < 2)
		return -EBADMSG;
	memcpy(v, d->p, 2);
	*v = le16toh(*v);
	d->p += 2;
	return 0;
}

static int get_u32(struct dec *d, uint32_t *v)
{
	if (left(d) < 4)
		return -EBADMSG;
	memcpy(v, d->p, 4);
	*v = le32toh(*v);
	d->p += 4;
	return 0;
}

static int get_u64(struct dec *d, uint64_t *v)
{
	if (left(d) < 8)
		return -EBADMSG;
	memcpy(v, d->p, 8);
	*v = le64toh(*v);
	d->p += 8;
	return 0;
}

static int get_f64(struct dec *d, double *v)
{
	uint64_t u;
	int ret = get_u64(d, &u);

	if (!ret)
		memcpy(v, &u, sizeof(u));
	return ret;
}

/* Unsigned LEB128, at most ULEB_MAX_BYTES and minimal. */
static int get_uleb(struct dec *d, uint32_t *v)
{
	const uint8_t *p = d->p;
	uint32_t x = 0;

	for (unsigned i = 0; i < ULEB_MAX_BYTES; i++) {
		uint8_t b;

		if (p == d->end)
			return -EBADMSG;
		b = *p++;
		x |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (i && !b)
				return -EBADMSG; /* not minimal */
			*v = x;
			d->p = p;
			return 0;
		}
	}
	return -EBADMSG;
}

static int get_str(struct dec *d, size_t max, int required, struct codec_str *s)
{
	struct dec save = *d;
	const uint8_t *b;
	uint32_t n;

	if (get_uleb(d, &n))
		return -EBADMSG;
	if (n == 0) {
		if (required)
			goto bad;
		s->p = NULL;
		s->len = 0;
		return 0;
	}
	if (n - 1 > max || get_bytes(d, n - 1, &b) || memchr(b, 0, n - 1))
		goto bad;
	s->p = (const char *)b;
	s->len = n - 1;
	return 0;
bad:
	*d = save;
	return -EBADMSG;
}

static int get_meta(struct dec *d, struct codec_meta *m)
{
	if (get_str(d, CODEC_STR_MAX, 0, &m->host_id) ||
	    get_str(d, CODEC_STR_MAX, 0, &m->agent_id) ||
	    get_str(d, CODEC_STR_MAX, 0, &m->hostname) ||
	    get_str(d, CODEC_STR_MAX, 0, &m->endpoint_id))
		return -EBADMSG;
	return 0;
}

static int get_attr(struct dec *d, struct codec_str *k, struct codec_str *v)
{
	if (get_str(d, CODEC_STR_MAX, 1, k) || get_str(d, CODEC_STR_MAX, 0, v))
		return -EBADMSG;
	return 0;
}

static int get_attrs(struct dec *d, struct codec_attrs *a)
{
	struct codec_str k, v;
	uint16_t n;

	if (get_u16(d, &n) || n > CODEC_COUNT_MAX)
		return -EBADMSG;
	a->p = d->p;
	a->count = n;
	for (unsigned i = 0; i < n; i++)
		if (get_attr(d, &k, &v))
			return -EBADMSG;
	a->end = d->p;
	return 0;
}

/*
 * The two leading bytes: version then type.  A version we do not know is
 * -EPROTO, whatever follows; 0 was never a version.
 */
static int get_head(struct dec *d, uint8_t type, uint8_t *version)
{
	uint8_t t;

	if (get_u8(d, version))
		return -EBADMSG;
	if (*version > CODEC_VERSION)
		return -EPROTO;
	if (*version == 0 || get_u8(d, &t) || t != type)
		return -EBADMSG;
	return 0;
}

static inline double f64_at(const uint8_t *p)
{
	uint64_t u;
	double d;

	memcpy(&u, p, sizeof(u));
	u = le64toh(u);
	memcpy(&d, &u, sizeof(d));
	return d;
}

static inline uint64_t u64_at(const uint8_t *p)
{
	uint64_t u;

	memcpy(&u, p, sizeof(u));
	return le64toh(u);
}

static int get_histogram(struct dec *d, struct codec_metric *m)
{
	uint16_t nb;

	if (get_u64(d, &m->count) || get_f64(d, &m->sum) || get_u16(d, &nb) || nb > CODEC_COUNT_MAX)
		return -EBADMSG;
	m->nbounds = nb;
	if (get_bytes(d, (size_t)nb * 8, &m->bounds) ||
	    get_bytes(d, ((size_t)nb + 1) * 8, &m->buckets))
		return -EBADMSG;
	for (size_t i = 0; i < nb; i++) {
		double b = f64_at(m->bounds + 8 * i);

		if (isnan(b) || (i && !(f64_at(m->bounds + 8 * (i - 1)) < b)))
			return -EBADMSG;
	}
	return 0;
}

int codec_decode_metric(const void *p, size_t n, struct codec_metric *out)
{
	struct dec d;
	struct codec_metric m = { 0 };
	uint8_t flags;
	int ret;

	if (!p)
		return -EBADMSG;
	d = (struct dec){ .p = p, .end = (const uint8_t *)p + n };
	ret = get_head(&d, BE_TYPE_METRIC, &m.version);
	if (ret)
		return ret;
	if (get_u8(&d, &m.kind) || m.kind < BE_METRIC_GAUGE || m.kind > BE_METRIC_HISTOGRAM ||
	    get_u8(&d, &flags) || flags || get_u64(&d, &m.ts_ns))
		return -EBADMSG;
	if (m.kind == BE_METRIC_HISTOGRAM)
		ret = get_histogram(&d, &m);
	else
		ret = get_f64(&d, &m.value);
	if (ret || get_str(&d, CODEC_STR_MAX, 0, &m.ns) ||
	    get_str(&d, CODEC_STR_MAX, 0, &m.sub_ns) || get_str(&d, CODEC_STR_MAX, 1, &m.name) ||
	    get_str(&d, CODEC_STR_MAX, 0, &m.unit) || get_meta(&d, &m.meta) ||
	    get_attrs(&d, &m.attrs) || left(&d))
		return -EBADMSG;
	*out = m;
	return 0;
}

int codec_decode_log(const void *p, size_t n, struct codec_log *out)
{
	struct dec d;
	struct codec_log l = { 0 };
	uint8_t flags;
	int ret;

	if (!p)
		return -EBADMSG;
	d = (struct dec){ .p = p, .end = (const uint8_t *)p + n };
	ret = get_head(&d, BE_TYPE_LOG, &l.version);
	if (ret)
		return ret;
	if (get_u8(&d, &l.severity) || l.severity > CODEC_SEV_MAX || get_u8(&d, &flags) || flags ||
	    get_u32(&d, &l.pid) || get_u64(&d, &l.ts_ns) ||
	    get_str(&d, CODEC_STR_MAX, 0, &l.severity_text) ||
	    get_str(&d, CODEC_MSG_MAX, 1, &l.message) || get_str(&d, CODEC_STR_MAX, 0, &l.source) ||
	    get_str(&d, CODEC_STR_MAX, 0, &l.category) || get_meta(&d, &l.meta) ||
	    get_attrs(&d, &l.fields) || left(&d))
		return -EBADMSG;
	*out = l;
	return 0;
}

int codec_decode_process(const void *p, size_t n, struct codec_process *out)
{
	struct dec d;
	struct codec_process r = { 0 };
	uint16_t flags;
	int ret;

	if (!p)
		return -EBADMSG;
	d = (struct dec){ .p = p, .end = (const uint8_t *)p + n };
	ret = get_head(&d, BE_TYPE_PROCESS, &r.version);
	if (ret)
		return ret;
	if (get_u16(&d, &flags) || flags || get_u32(&d, &r.pid) || get_u32(&d, &r.ppid) ||
	    get_u32(&d, &r.threads) || get_u64(&d, &r.snapshot_id) ||
	    get_u64(&d, &r.snapshot_ts_ns) || get_u64(&d, &r.start_ts_ns) ||
	    get_u64(&d, &r.rss_bytes) || get_f64(&d, &r.cpu_percent) ||
	    get_f64(&d, &r.mem_percent) || get_str(&d, CODEC_STR_MAX, 0, &r.user) ||
	    get_str(&d, CODEC_STR_MAX, 0, &r.exe) || get_str(&d, CODEC_STR_MAX, 0, &r.cmdline) ||
	    get_meta(&d, &r.meta) || left(&d))
		return -EBADMSG;
	*out = r;
	return 0;
}

void codec_attrs_begin(const struct codec_attrs *a, struct codec_attr_iter *it)
{
	it->p = a->p;
	it->end = a->end;
	it->left = a->count;
}

int codec_attr_next(struct codec_attr_iter *it, struct codec_str *key, struct codec_str *value)
{
	struct dec d = { .p = it->p, .end = it->end };

	if (!it->left)
		return 0;
	if (!d.p || d.p > d.end || get_attr(&d, key, value)) {
		it->left = 0;
		return -EBADMSG;
	}
	it->p = d.p;
	it->left--;
	return 1;
}

double codec_metric_bound(const struct codec_metric *m, size_t i)
{
	if (!m->bounds || i >= m->nbounds)
		return NAN;
	return f64_at(m->bounds + 8 * i);
}

uint64_t codec_metric_bucket(const struct codec_metric *m, size_t i)
{
	if (!m->buckets || i > m->nbounds)
		return 0;
	return u64_at(m->buckets + 8 * i);
}

/* ------------------------------------------------------------------------
 * Severities.
 */

const char *codec_severity_text(int sev)
{
	/* clang-format off */
	static const char *const names[CODEC_SEV_MAX + 1] = {
		"UNSPECIFIED",
		"TRACE", "TRACE2", "TRACE3", "TRACE4",
		"DEBUG", "DEBUG2", "DEBUG3", "DEBUG4",
		"INFO",  "INFO2",  "INFO3",  "INFO4",
		"WARN",  "WARN2",  "WARN3",  "WARN4",
		"ERROR", "ERROR2", "ERROR3", "ERROR4",
		"FATAL", "FATAL2", "FATAL3", "FATAL4",
	};
	/* clang-format on */

	if (sev < 0 || sev > CODEC_SEV_MAX)
		return NULL;
	return names[sev];
}

int codec_severity_from_syslog(int prio)
{
	/* By syslog level: LOG_EMERG (0) .. LOG_DEBUG (7). */
	/* clang-format off */
	static const uint8_t otel[8] = {
		BE_SEV_FATAL,     /* emerg */
		BE_SEV_ERROR + 2, /* alert: ERROR3 */
		BE_SEV_ERROR + 1, /* crit: ERROR2 */
		BE_SEV_ERROR,     /* err */
		BE_SEV_WARN,      /* warning */
		BE_SEV_INFO + 1,  /* notice: INFO2 */
		BE_SEV_INFO,      /* info */
		BE_SEV_DEBUG,     /* debug */
	};
	/* clang-format on */

	if (prio < 0 || prio > (23 << 3 | 7))
		return -EINVAL;
	return otel[prio & 7];
}
