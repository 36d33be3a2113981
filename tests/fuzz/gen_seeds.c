/*
 * gen_seeds.c - write the seed corpora of the fuzz targets:
 * tests/fuzz/corpus/<target>/seed-*, from the project's own encoders (the
 * codec, the segment format), so that every seed is an input the code
 * really meets, plus a few of each kind of damage.
 *
 *   make fuzz-seeds      (builds this with $(CC), runs it on tests/fuzz/corpus)
 *
 * The output is deterministic (no clock, no randomness): running it again
 * rewrites the same files.  Files it does not write (seeds added by hand,
 * without the "seed-" prefix) are left alone.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bufferengine.h"
#include "server/config.h"
#include "server/crc32c.h"
#include "server/segment.h"
#include "shm/codec.h"
#include "shm/layout.h"
#include "shm/ring.h"

static const char *root;

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "gen_seeds: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("%s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, target, name);
	f = fopen(path, "wb");
	if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

/* A growable byte string. */
struct bytes {
	uint8_t *p;
	size_t n, cap;
};

static void b_add(struct bytes *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			die("out of memory");
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void b_zero(struct bytes *b, size_t n)
{
	static const uint8_t z[64];

	while (n) {
		size_t k = n < sizeof(z) ? n : sizeof(z);

		b_add(b, z, k);
		n -= k;
	}
}

/* ------------------------------------------------------------------------
 * Payloads.
 */

struct payload {
	const char *name;
	uint16_t type;
	uint8_t buf[2048];
	size_t len;
};

#define NPAY 24
static struct payload pays[NPAY];
static int npays;

static void add_payload(const char *name, uint16_t type, ssize_t len, const uint8_t *buf)
{
	struct payload *p = &pays[npays++];

	if (len < 0 || (size_t)len > sizeof(p->buf))
		die("payload %s: %zd", name, len);
	p->name = name;
	p->type = type;
	memcpy(p->buf, buf, (size_t)len);
	p->len = (size_t)len;
}

static void make_payloads(void)
{
	static const struct be_meta meta = { "host-1", "agent-7", "web01.example", NULL };
	static const struct be_meta meta_utf8 = { "h\xc3\xa9", "", "\xe2\x98\x83", "ep 1" };
	static const struct be_attr attrs[] = {
		{ "cpu", "0" },
		{ "mode", "user" },
		{ "flag", NULL },
		{ "empty", "" },
		{ "odd key", "tab\there \"quoted\" \\ back" },
	};
	static const double bounds[] = { -INFINITY, 0.5, 1, 5, 1e300, INFINITY };
	static const uint64_t buckets[] = { 1, 2, 3, 4, 5, 6, UINT64_MAX };
	uint8_t buf[2048];
	char msg[600];

	{
		struct be_metric m = { .ns = "System",
				       .sub_ns = "CPU",
				       .name = "usage_percent",
				       .unit = "percent",
				       .kind = BE_METRIC_GAUGE,
				       .value = 12.5,
				       .ts_ns = 1764205323123456789u,
				       .attrs = attrs,
				       .nattrs = 2,
				       .meta = &meta };

		add_payload("metric-gauge", BE_TYPE_METRIC,
			    codec_encode_metric(&m, buf, sizeof(buf)), buf);
		m.kind = BE_METRIC_COUNTER;
		m.value = -0.0;
		m.ns = NULL;
		m.unit = "";
		m.attrs = attrs;
		m.nattrs = 5;
		m.meta = &meta_utf8;
		add_payload("metric-counter", BE_TYPE_METRIC,
			    codec_encode_metric(&m, buf, sizeof(buf)), buf);
		m.value = NAN;
		m.nattrs = 0;
		m.meta = NULL;
		m.sub_ns = "a b";
		add_payload("metric-nan", BE_TYPE_METRIC, codec_encode_metric(&m, buf, sizeof(buf)),
			    buf);
		m.value = 4.9406564584124654e-324; /* a denormal */
		m.ts_ns = 0;
		add_payload("metric-denormal", BE_TYPE_METRIC,
			    codec_encode_metric(&m, buf, sizeof(buf)), buf);
	}
	{
		struct be_metric m = { .name = "req_seconds",
				       .kind = BE_METRIC_HISTOGRAM,
				       .ts_ns = 1,
				       .bounds = bounds,
				       .nbounds = 6,
				       .buckets = buckets,
				       .count = 21,
				       .sum = 4.5,
				       .attrs = attrs,
				       .nattrs = 1 };

		add_payload("metric-histogram", BE_TYPE_METRIC,
			    codec_encode_metric(&m, buf, sizeof(buf)), buf);
		m.nbounds = 0;
		m.bounds = NULL;
		m.buckets = NULL;
		m.sum = 1e21;
		add_payload("metric-histogram-empty", BE_TYPE_METRIC,
			    codec_encode_metric(&m, buf, sizeof(buf)), buf);
	}
	{
		struct be_log l = { .ts_ns = 1764205323000000000u,
				    .severity = 17,
				    .message = "no such user",
				    .source = "sshd",
				    .category = "auth",
				    .pid = 99,
				    .fields = attrs + 1,
				    .nfields = 3,
				    .meta = &meta };

		add_payload("log-full", BE_TYPE_LOG, codec_encode_log(&l, buf, sizeof(buf)), buf);
		memset(&l, 0, sizeof(l));
		l.message = "";
		add_payload("log-minimal", BE_TYPE_LOG, codec_encode_log(&l, buf, sizeof(buf)),
			    buf);
		l.severity = 24;
		l.severity_text = "LOUD";
		l.message =
			"line one\nline two\ttab \x01\x7f \xc2\x85 \xc3\xa9 \xff\xfe \xed\xa0\x80 "
			"\xf0\x9f\x98\x80 \xe0\x80\xaf";
		l.fields = attrs + 4;
		l.nfields = 1;
		add_payload("log-bytes", BE_TYPE_LOG, codec_encode_log(&l, buf, sizeof(buf)), buf);
		memset(msg, 'm', sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = 0;
		l.message = msg; /* a 2-byte uleb length */
		l.severity_text = NULL;
		l.severity = 0;
		add_payload("log-long", BE_TYPE_LOG, codec_encode_log(&l, buf, sizeof(buf)), buf);
	}
	{
		struct be_process p = { .snapshot_id = 5,
					.snapshot_ts_ns = 1764205323000000000u,
					.pid = 1,
					.ppid = 0,
					.user = "root",
					.exe = "/sbin/init",
					.cmdline = "/sbin/init splash",
					.cpu_percent = 0.5,
					.mem_percent = 0.1,
					.rss_bytes = 12345,
					.threads = 1,
					.start_ts_ns = 1764200000000000000u,
					.meta = &meta };

		add_payload("process-full", BE_TYPE_PROCESS,
			    codec_encode_process(&p, buf, sizeof(buf)), buf);
		p.pid = 4242;
		p.ppid = 1;
		p.user = NULL;
		p.cmdline = "bash -c 'echo \"hi\"'";
		p.cpu_percent = 123.456;
		p.start_ts_ns = 0;
		p.meta = NULL;
		add_payload("process-2", BE_TYPE_PROCESS,
			    codec_encode_process(&p, buf, sizeof(buf)), buf);
		memset(&p, 0, sizeof(p));
		add_payload("process-minimal", BE_TYPE_PROCESS,
			    codec_encode_process(&p, buf, sizeof(buf)), buf);
	}
	/* Damage: another version, a cut payload, a reserved bit. */
	memcpy(buf, pays[0].buf, pays[0].len);
	buf[0] = 2;
	add_payload("metric-v2", BE_TYPE_METRIC, (ssize_t)pays[0].len, buf);
	memcpy(buf, pays[6].buf, pays[6].len);
	add_payload("log-cut", BE_TYPE_LOG, (ssize_t)pays[6].len - 3, buf);
	buf[3] = 1;
	add_payload("log-flags", BE_TYPE_LOG, (ssize_t)pays[6].len, buf);
}

static void seeds_codec(void)
{
	for (int i = 0; i < npays; i++)
		put("codec", pays[i].name, pays[i].buf, pays[i].len);
	put("codec", "empty", "", 0);
}

/* ------------------------------------------------------------------------
 * Records and batches.
 */

static void rec_add(struct bytes *b, uint16_t type, uint64_t seq, const void *p, uint32_t len)
{
	struct rec_hdr r = { .len = len,
			     .type = type,
			     .seq = seq,
			     .ts_ns = 1764205323000000000u + seq * 1000,
			     .pid = 4242 };

	b_add(b, &r, sizeof(r));
	b_add(b, p, len);
	b_zero(b, rec_size(len) - sizeof(r) - len);
}

static void seeds_recfmt(void)
{
	static const uint8_t raw[] = "hello\n\x00\x01\xff world \xc3\xa9 \"q\" \\";
	char name[96];

	for (int i = 0; i < npays; i++) {
		for (int mode = 0; mode < 2; mode++) {
			struct bytes b = { 0 };
			struct rec_hdr h = { .type = pays[i].type,
					     .seq = 7 + i,
					     .ts_ns = 1764205323123456789u,
					     .pid = 42 };
			uint8_t m = (uint8_t)mode;

			b_add(&b, &m, 1);
			b_add(&b, &h, sizeof(h));
			b_add(&b, pays[i].buf, pays[i].len);
			snprintf(name, sizeof(name), "%s-%s", pays[i].name, mode ? "json" : "text");
			put("recfmt", name, b.p, b.n);
			free(b.p);
		}
	}
	for (int mode = 0; mode < 8; mode++) {
		struct bytes b = { 0 };
		struct rec_hdr h = { .type = mode < 6 ? BE_TYPE_RAW : 9,
				     .seq = UINT64_MAX,
				     .ts_ns = UINT64_MAX,
				     .pid = UINT32_MAX };
		uint8_t m = (uint8_t)mode;

		b_add(&b, &m, 1);
		b_add(&b, &h, sizeof(h));
		b_add(&b, raw, sizeof(raw));
		snprintf(name, sizeof(name), "raw-mode%d", mode);
		put("recfmt", name, b.p, b.n);
		free(b.p);
	}
	/* Snapshots: three processes (text, JSON), then one that does not decode. */
	for (int mode = 8; mode < 11; mode++) {
		struct bytes b = { 0 };
		struct rec_hdr h = { .type = BE_TYPE_PROCESS, .seq = 100, .ts_ns = 5, .pid = 1 };
		uint8_t m = (uint8_t)(mode & 9);

		b_add(&b, &m, 1);
		b_add(&b, &h, sizeof(h));
		for (int i = 0; i < npays; i++) {
			uint16_t len;

			if (pays[i].type != BE_TYPE_PROCESS)
				continue;
			len = (uint16_t)pays[i].len;
			if (mode == 10 && !strcmp(pays[i].name, "process-2"))
				len--;
			b_add(&b, &len, 2);
			b_add(&b, pays[i].buf, len);
		}
		snprintf(name, sizeof(name), "snapshot-%d", mode);
		put("recfmt", name, b.p, b.n);
		free(b.p);
	}
	/* Doubles, times and numbers at the edges. */
	{
		static const double d[] = { 0.1,
					    1e21,
					    1e-7,
					    123456789012345678.0,
					    -0.0,
					    5e-324,
					    1.7976931348623157e308,
					    0.000001,
					    1e15 + 0.5 };
		struct bytes b = { 0 };
		struct rec_hdr h = { .type = BE_TYPE_RAW, .seq = 0, .ts_ns = 0 };
		uint8_t m = 1;

		b_add(&b, &m, 1);
		b_add(&b, &h, sizeof(h));
		b_add(&b, d, sizeof(d));
		put("recfmt", "doubles", b.p, b.n);
		free(b.p);
	}
}

static void file_hdr(struct bytes *b, uint64_t first_seq, uint32_t type, const char *store,
		     uint32_t version)
{
	struct seg_file_hdr fh;

	seg_file_hdr_init(&fh, first_seq, type, store);
	fh.created_ns = 1764205323000000000u; /* deterministic */
	fh.version = version;
	fh.crc = 0;
	fh.crc = crc32c(0, &fh, sizeof(fh));
	b_add(b, &fh, sizeof(fh));
}

/* One batch of the given payloads as records from seq on; returns the next seq. */
static uint64_t batch_add(struct bytes *b, uint64_t seq, uint64_t *pos, const int *which, int n)
{
	struct bytes recs = { 0 };
	struct seg_batch_hdr h;
	uint64_t first = seq;
	size_t at = b->n;

	for (int i = 0; i < n; i++)
		rec_add(&recs, pays[which[i]].type, seq++, pays[which[i]].buf,
			(uint32_t)pays[which[i]].len);
	memset(&h, 0, sizeof(h));
	h.magic = SEG_BATCH_MAGIC;
	h.version = SEG_BATCH_VERSION;
	h.count = (uint32_t)n;
	h.incarnation = 0x1122334455667788u;
	h.start_pos = *pos;
	h.end_pos = *pos + recs.n + (n > 2 ? 64 : 0); /* some padding skipped in the ring */
	*pos = h.end_pos;
	h.first_seq = first;
	h.last_seq = seq - 1;
	h.length = (uint32_t)recs.n;
	b_add(b, &h, sizeof(h));
	b_add(b, recs.p, recs.n);
	seg_batch_seal(b->p + at);
	free(recs.p);
	return seq;
}

static void seg_put(const char *name, uint8_t flags, uint16_t mask, const struct bytes *img)
{
	struct bytes b = { 0 };

	b_add(&b, &flags, 1);
	b_add(&b, &mask, 2);
	b_add(&b, img->p, img->n);
	put("segment", name, b.p, b.n);
	free(b.p);
}

static void seeds_segment(void)
{
	static const int b1[] = { 0, 1, 4 }, b2[] = { 6, 7 }, b3[] = { 10 }, b4[] = { 8, 9, 11 };
	struct bytes img = { 0 };
	uint64_t pos = 4096, seq = 4294967296u;
	size_t end2;

	file_hdr(&img, seq, BE_TYPE_METRIC, "mixed", SEG_FILE_VERSION);
	put("segment", "header-only-raw", img.p, img.n); /* no control bytes: damaged */
	seg_put("header-only", 0, 0, &img);
	seq = batch_add(&img, seq, &pos, b1, 3);
	seq = batch_add(&img, seq, &pos, b2, 2);
	end2 = img.n;
	seq = batch_add(&img, seq, &pos, b3, 1);
	seq = batch_add(&img, seq, &pos, b4, 3);
	seg_put("valid", 0, 0, &img);
	seg_put("valid-json", 0x10, 0, &img);
	seg_put("valid-fixed", 0x0f, 0xffff, &img);

	/* A damaged batch that valid ones follow: corruption. */
	{
		struct bytes d = { 0 };

		b_add(&d, img.p, img.n);
		d.p[end2 - 9] ^= 0x40;
		seg_put("corrupt-middle", 0, 0, &d);
		seg_put("corrupt-resealed", 0x0c, 0xfffd, &d);
		/* ... and a torn tail: a batch-shaped copy with a wrong CRC, cut. */
		b_add(&d, img.p + SEG_FILE_HDR_SIZE, 200);
		d.p[d.n - 200 + 8] ^= 1;
		seg_put("corrupt-and-torn", 0, 0, &d);
		free(d.p);
	}
	/* A torn tail alone: half a batch, then garbage. */
	{
		struct bytes d = { 0 };

		b_add(&d, img.p, end2);
		b_add(&d, img.p + end2, (img.n - end2) / 2);
		seg_put("torn", 0, 0, &d);
		b_zero(&d, 4096);
		seg_put("torn-zeros", 0, 0, &d);
		free(d.p);
	}
	/* Another version; a bad file header; nothing but batches. */
	{
		struct bytes d = { 0 };

		file_hdr(&d, 1, BE_TYPE_RAW, "raw", SEG_FILE_VERSION + 1);
		b_add(&d, img.p + SEG_FILE_HDR_SIZE, img.n - SEG_FILE_HDR_SIZE);
		seg_put("version2", 0, 0, &d);
		d.n = 0;
		file_hdr(&d, 1, BE_TYPE_RAW, "raw", SEG_FILE_VERSION);
		b_add(&d, img.p + SEG_FILE_HDR_SIZE, img.n - SEG_FILE_HDR_SIZE);
		d.p[40] = 'X';
		seg_put("bad-crc", 0, 0, &d);
		seg_put("bad-crc-fixed", 0x03, 0, &d);
		free(d.p);
	}
	/* A raw store, one record a batch, seqs with gaps. */
	{
		struct bytes d = { 0 };
		uint64_t s = 1, p = 0;

		file_hdr(&d, 1, BE_TYPE_RAW, "demo", SEG_FILE_VERSION);
		for (int i = 0; i < 5; i++) {
			struct bytes recs = { 0 };
			struct seg_batch_hdr h = { .magic = SEG_BATCH_MAGIC,
						   .version = SEG_BATCH_VERSION,
						   .count = 1,
						   .incarnation = 9,
						   .first_seq = s,
						   .last_seq = s };
			char data[40];
			size_t at = d.n;
			int n = snprintf(data, sizeof(data), "raw record %d", i);

			rec_add(&recs, BE_TYPE_RAW, s, data, (uint32_t)n);
			h.start_pos = p;
			h.end_pos = p += recs.n;
			h.length = (uint32_t)recs.n;
			b_add(&d, &h, sizeof(h));
			b_add(&d, recs.p, recs.n);
			seg_batch_seal(d.p + at);
			free(recs.p);
			s += 1 + (uint64_t)i * 1000;
		}
		seg_put("raw-batches", 0, 0, &d);
		free(d.p);
	}
	free(img.p);
}

/* ------------------------------------------------------------------------
 * Ring headers and images.
 */

static void ring_hdr_valid(struct ring_hdr *h, uint64_t cap, uint32_t type)
{
	memset(h, 0, sizeof(*h));
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->hdr_size = RING_HDR_SIZE;
	h->capacity = cap;
	h->incarnation = 0x1122334455667788u;
	h->store_type = type;
	h->on_full = RING_ON_FULL_BLOCK;
	h->first_seq = 4294967296u;
	h->created_ns = 1764205323000000000u;
	snprintf(h->store_name, sizeof(h->store_name), "metrics");
	h->max_payload = (uint32_t)(cap / 4);
	h->mode = 0660;
	h->next_seq = h->first_seq + 10;
	h->tail = 8 * 4096 + 64;
	h->head = h->tail + 1024;
	h->durable_pos = h->tail;
	h->durable_seq = h->first_seq + 3;
	h->flush_bytes = 1 << 20;
}

static void seeds_ring_validate(void)
{
	struct ring_hdr *h = calloc(1, sizeof(*h));
	uint8_t buf[sizeof(*h) + 8];
	uint64_t size;

	ring_hdr_valid(h, 1 << 16, BE_TYPE_METRIC);
	put("ring_validate", "valid", h, sizeof(*h));
	size = RING_HDR_SIZE + (1 << 16);
	memcpy(buf, h, sizeof(*h));
	memcpy(buf + sizeof(*h), &size, 8);
	put("ring_validate", "valid-size", buf, sizeof(buf));
	size++;
	memcpy(buf + sizeof(*h), &size, 8);
	put("ring_validate", "wrong-size", buf, sizeof(buf));
	put("ring_validate", "valid-short", h, 600); /* the rest zero */
	ring_hdr_valid(h, RING_CAP_MAX, BE_TYPE_PROCESS);
	h->on_full = RING_ON_FULL_DROP;
	h->max_payload = RING_PAYLOAD_MAX;
	h->head = h->tail + RING_CAP_MAX;
	put("ring_validate", "max", h, sizeof(*h));
	ring_hdr_valid(h, RING_CAP_MIN, BE_TYPE_RAW);
	h->version = (RING_VERSION_MAJOR + 1) << 16;
	put("ring_validate", "major2", h, sizeof(*h));
	ring_hdr_valid(h, RING_CAP_MIN, BE_TYPE_RAW);
	h->version = RING_VERSION + 7; /* another minor: fine */
	memset(h->store_name, 'n', sizeof(h->store_name));
	put("ring_validate", "name-unterminated", h, sizeof(*h));
	ring_hdr_valid(h, RING_CAP_MIN, BE_TYPE_LOG);
	h->head = h->tail - 8;
	put("ring_validate", "head-behind", h, sizeof(*h));
	free(h);
}

/* A collect input: the control fields, then the data area's bytes from tail. */
static void collect_put(const char *name, uint8_t geo, uint8_t flags, uint8_t type, uint32_t maxp,
			uint64_t first, uint64_t tail, uint64_t hv, uint64_t msv, uint32_t cap,
			const struct bytes *area)
{
	struct bytes b = { 0 };

	b_add(&b, &geo, 1);
	b_add(&b, &flags, 1);
	b_add(&b, &type, 1);
	b_add(&b, &maxp, 4);
	b_add(&b, &first, 8);
	b_add(&b, &tail, 8);
	b_add(&b, &hv, 8);
	b_add(&b, &msv, 8);
	b_add(&b, &cap, 4);
	b_add(&b, area->p, area->n);
	put("collect", name, b.p, b.n);
	free(b.p);
}

static void seeds_collect(void)
{
	/* first_seq = 1 + v % (2^62 - 1): v = first - 1. */
	const uint64_t first = 1000, v_first = first - 1;
	/* type byte t: store type 1 + t % 4; metric = 2 -> t = 1 */
	struct bytes a = { 0 };
	uint64_t seq = first;

	/* Three metric records from tail 0 of a 4 KiB ring. */
	for (int i = 0; i < 3; i++)
		rec_add(&a, BE_TYPE_METRIC, seq++, pays[i].buf, (uint32_t)pays[i].len);
	collect_put("three", 0, 0, 1, 1023, v_first, 0, a.n, 0, 8192, &a);
	collect_put("three-small-out", 0, 0, 1, 1023, v_first, 0, a.n, 0, 100, &a);
	collect_put("three-tight-out", 0, 0, 1, 1023, v_first, 0, a.n, 0,
		    (uint32_t)rec_size(pays[0].len) + 8, &a);
	collect_put("three-min-seq", 0, 4, 1, 1023, v_first, 0, a.n, first + 1, 8192, &a);
	collect_put("three-head-short", 0, 0, 1, 1023, v_first, 0, a.n - 8, 0, 8192, &a);
	/* The same, after the area wrapped many times. */
	collect_put("three-wrapped", 0, 0, 1, 1023, v_first, UINT64_C(1) << 40, a.n, 0, 8192, &a);

	/* A padding marker to the end of the area, then a record at its start. */
	{
		struct bytes w = { 0 };
		uint64_t tail = 4096 - 64;
		struct rec_hdr pad = { .len = 64, .type = REC_TYPE_PAD };

		b_add(&w, &pad, sizeof(pad));
		b_zero(&w, 64 - sizeof(pad));
		rec_add(&w, BE_TYPE_LOG, first, pays[6].buf, (uint32_t)pays[6].len);
		collect_put("pad-wrap", 0, 0, 2, 1023, v_first, tail, w.n, 0, 8192, &w);
		/* Only 8 bytes of marker left: the smallest padding. */
		w.n = 0;
		pad.len = 8;
		b_add(&w, &pad, 8);
		rec_add(&w, BE_TYPE_LOG, first, pays[7].buf, (uint32_t)pays[7].len);
		collect_put("pad-8", 0, 0, 2, 1023, v_first, 4096 - 8, w.n, 0, 8192, &w);
		free(w.p);
	}
	/* A full 16 KiB ring of raw records: head - tail = capacity. */
	{
		struct bytes f = { 0 };
		char data[100];
		uint64_t s = first;

		memset(data, 'r', sizeof(data));
		while (f.n + rec_size(sizeof(data)) <= 16384)
			rec_add(&f, BE_TYPE_RAW, s++, data, sizeof(data));
		{
			struct rec_hdr pad = { .len = (uint32_t)(16384 - f.n),
					       .type = REC_TYPE_PAD };

			b_add(&f, &pad, sizeof(pad));
			b_zero(&f, 16384 - f.n);
		}
		collect_put("full", 2, 0, 0, 4095, v_first, 16384 * 3, 16384, 0, 40000, &f);
		collect_put("full-chunks", 2, 0, 0, 4095, v_first, 16384 * 3, 16384, 0, 1000, &f);
		/* A scribbled record in the middle. */
		f.p[rec_size(sizeof(data)) * 5 + 4] = 7;
		collect_put("full-scribbled", 2, 0, 0, 4095, v_first, 16384 * 3, 16384, 0, 40000,
			    &f);
		free(f.p);
	}
	/* Bad positions: head behind tail, unaligned, beyond the capacity. */
	collect_put("head-behind", 0, 1, 1, 1023, v_first, 4096, 8, 0, 8192, &a);
	collect_put("unaligned", 0, 2, 1, 1023, v_first, 4, a.n, 0, 8192, &a);
	collect_put("too-far", 0, 0, 1, 1023, v_first, 0, 8192 + 8, 0, 8192, &a);
	free(a.p);
}

/* ------------------------------------------------------------------------
 * Configs.
 */

static void seeds_config(void)
{
	static const char *const texts[][2] = {
		{ "minimal", "[store s]\ntype = raw\n" },
		{ "engine",
		  "\xef\xbb\xbf; a comment\n[engine]\ninstance = prod-1\ndata_dir = /srv/be\n"
		  "max_workers = 256\nshutdown_flush_timeout = 1h\nbatch_bytes = 64M\n"
		  "ring_mode = 0600\n\n"
		  "  [ store  metrics ]   ; indented\n"
		  "type = metric\ncapacity = 64KiB\nflush_bytes = 64k\nflush_interval = 250\n"
		  "on_full = drop\nsync = none\nsegment_bytes = 1G\nretain_bytes = 10G\n"
		  "retain_age = 7d\n"
		  "[store logs]\ntype=log\ncapacity=16G\nflush_interval=59m\r\n" },
		{ "err-unknown-key", "[engine]\nfoo = 1\n[store a]\ntype = raw\n" },
		{ "err-duplicate-store", "[store a]\ntype = raw\n[store a]\ntype = log\n" },
		{ "err-twice", "[store a]\ntype = raw\ntype = log\n" },
		{ "err-no-type", "[store a]\ncapacity = 1M\n" },
		{ "err-flush-bytes", "[store a]\nflush_bytes = 2M\ncapacity = 1M\ntype = raw\n" },
		{ "err-pow2", "[store a]\ntype = raw\ncapacity = 3M\n" },
		{ "err-size-overflow",
		  "[store a]\ntype = raw\ncapacity = 99999999999999999999999G\n" },
		{ "err-no-bracket", "[store a\ntype = raw\n" },
		{ "err-after-bracket", "[store a] x\ntype = raw\n" },
		{ "err-no-equals", "[store a]\ntype raw\n" },
		{ "err-outside", "type = raw\n[store a]\ntype = raw\n" },
		{ "err-mode", "[engine]\nring_mode = 0640\n[store a]\ntype = raw\n" },
		{ "err-name", "[store a.b]\ntype = raw\n" },
		{ "err-empty-value", "[store a]\ntype =\n" },
		{ "err-no-store", "[engine]\nmax_workers = 2\n" },
		{ "err-duration", "[store a]\ntype = raw\nflush_interval = 2 weeks\n" },
		{ "err-unknown-section", "[engines]\n" },
	};
	char name[64];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		put("config", texts[i][0], texts[i][1], strlen(texts[i][1]));
	put("config", "builtin", config_builtin, strlen(config_builtin));
	/* A long line, a line at inih's limit, a small error buffer. */
	{
		char buf[1200];
		int n = snprintf(buf, sizeof(buf), "[engine]\ndata_dir = /");

		memset(buf + n, 'd', sizeof(buf) - (size_t)n - 1);
		buf[sizeof(buf) - 1] = 0;
		put("config", "long-line", buf, strlen(buf));
		snprintf(name, sizeof(name), "%c[store a]\ntype = nope\n", 0xf5);
		put("config", "small-errbuf", name, strlen(name));
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds DIR   (DIR: tests/fuzz/corpus)\n");
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		die("%s: %s", root, strerror(errno));
	make_payloads();
	seeds_codec();
	seeds_recfmt();
	seeds_segment();
	seeds_ring_validate();
	seeds_collect();
	seeds_config();
	return 0;
}
