/*
 * fuzz_recfmt.c - the record printer of be-read and shm-dump
 * (server/recfmt.c) on arbitrary records, and its formatters read back.
 *
 * Input: one mode byte, a struct rec_hdr (32 bytes: any type, seq, time
 * and pid; len is set to what follows), then the payload.
 *   mode bit 0     JSON, else text
 *   mode bits 1-2  text_data_max: 0 (all), 1, 16, 4096
 *   mode bit 3     a process snapshot (recfmt_snapshot): the payload is
 *                  pieces of u16 length + bytes, one record each
 * Checks: the return value (0 for raw, the decoder's for a typed payload,
 * -EBADMSG for an unknown type); a JSON line is one valid JSON object with
 * no key twice; a text line is one line of printable UTF-8.  Then, on the
 * payload's bytes: recfmt_cstr() and recfmt_json_str() read back to the
 * same bytes, base64 decodes back; its first 64 bytes, 8 at a time, print
 * as doubles digits that strtod() reads back to the same bits, as times
 * the date that gmtime_r() gives, as u64 the number strtoull() reads.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bufferengine.h"
#include "server/recfmt.h"
#include "shm/codec.h"
#include "tests/fuzz/fuzz_util.h"

#define SNAP_MAX 16

/* What recfmt_record() must return for this payload. */
static int expected(const struct rec_hdr *h, const uint8_t *p)
{
	struct codec_metric m;
	struct codec_log l;
	struct codec_process r;

	switch (h->type) {
	case BE_TYPE_RAW:
		return 0;
	case BE_TYPE_METRIC:
		return codec_decode_metric(p, h->len, &m);
	case BE_TYPE_LOG:
		return codec_decode_log(p, h->len, &l);
	case BE_TYPE_PROCESS:
		return codec_decode_process(p, h->len, &r);
	}
	return -EBADMSG;
}

static void check_record(const struct rec_hdr *h, const uint8_t *p, int json, size_t data_max)
{
	struct recfmt f;
	int ret;

	FUZZ_ASSERT(recfmt_init(&f, json, "fuzz", 16) == 0);
	f.text_data_max = data_max;
	/* Something already in the buffer: a record is appended after it. */
	recfmt_lit(&f.out, "x");
	ret = recfmt_record(&f, h, p);
	FUZZ_ASSERT(ret == expected(h, p));
	FUZZ_ASSERT(f.out.len > 1 && f.out.p[0] == 'x');
	if (json)
		FUZZ_ASSERT(fuzz_json_line(f.out.p + 1, f.out.len - 1));
	else
		FUZZ_ASSERT(fuzz_text_line(f.out.p + 1, f.out.len - 1));
	if (ret) {
		char why[128];

		recfmt_error_text(&f, ret, h->type, p, h->len, why, sizeof(why));
		FUZZ_ASSERT(strlen(why) < sizeof(why));
		/* A small buffer is cut, never overrun. */
		recfmt_error_text(&f, ret, h->type, p, h->len, why, 8);
		FUZZ_ASSERT(strlen(why) < 8);
	}
	recfmt_free(&f);
}

static void check_snapshot(const struct rec_hdr *h0, const uint8_t *p, size_t n, int json)
{
	struct rec_hdr hdrs[SNAP_MAX];
	const struct rec_hdr *hp[SNAP_MAX];
	const void *pp[SNAP_MAX];
	uint8_t *bufs[SNAP_MAX];
	struct codec_process r;
	size_t k = 0, off = 0;
	int all = 1, ret;
	struct recfmt f;

	while (k < SNAP_MAX && off + 2 <= n) {
		size_t len = (size_t)p[off] | (size_t)p[off + 1] << 8;

		off += 2;
		if (len > n - off)
			len = n - off;
		hdrs[k] = *h0;
		hdrs[k].type = BE_TYPE_PROCESS;
		hdrs[k].len = (uint32_t)len;
		hdrs[k].seq = h0->seq + k;
		bufs[k] = fuzz_dup(p + off, len);
		hp[k] = &hdrs[k];
		pp[k] = bufs[k];
		if (codec_decode_process(bufs[k], len, &r))
			all = 0;
		off += len;
		k++;
	}
	if (k == 0)
		return;
	FUZZ_ASSERT(recfmt_init(&f, json, "fuzz", 16) == 0);
	recfmt_lit(&f.out, "x");
	ret = recfmt_snapshot(&f, hp, pp, k);
	if (!all) {
		FUZZ_ASSERT(ret == -EBADMSG);
		FUZZ_ASSERT(f.out.len == 1); /* nothing appended */
	} else {
		FUZZ_ASSERT(ret == 0);
		if (json) {
			FUZZ_ASSERT(fuzz_json_line(f.out.p + 1, f.out.len - 1));
		} else {
			/* A header line, then one line a process. */
			const char *s = f.out.p + 1, *e = f.out.p + f.out.len;
			size_t lines = 0;

			while (s < e) {
				const char *nl = memchr(s, '\n', (size_t)(e - s));

				FUZZ_ASSERT(nl != NULL);
				FUZZ_ASSERT(fuzz_text_line(s, (size_t)(nl + 1 - s)));
				s = nl + 1;
				lines++;
			}
			FUZZ_ASSERT(lines == k + 1);
		}
	}
	recfmt_free(&f);
	for (size_t i = 0; i < k; i++)
		free(bufs[i]);
}

/* ------------------------------------------------------------------------
 * The formatters under the printer.
 */

static void check_escapers(const uint8_t *p, size_t n)
{
	struct recfmt_buf b;
	uint8_t *back = fuzz_malloc(n);
	size_t m;

	for (int utf8 = 0; utf8 <= 1; utf8++) {
		FUZZ_ASSERT(recfmt_buf_init(&b, 1) == 0);
		recfmt_cstr(&b, p, n, utf8);
		FUZZ_ASSERT(b.err == 0);
		m = b.len <= 4 * n ? fuzz_cstr_unescape(b.p, b.len, back) : (size_t)-1;
		FUZZ_ASSERT(m == n && memcmp(back, p, n) == 0);
		if (!utf8)
			for (size_t i = 0; i < b.len; i++)
				FUZZ_ASSERT(b.p[i] >= 0x20 && b.p[i] < 0x7f);
		recfmt_buf_free(&b);
	}

	FUZZ_ASSERT(recfmt_buf_init(&b, 1) == 0);
	recfmt_json_str(&b, p, n);
	{
		struct fuzz_json j = { (const uint8_t *)b.p, (const uint8_t *)b.p + b.len, 0 };

		FUZZ_ASSERT(fj_string(&j) == 0 && j.p == j.end);
	}
	m = b.len <= 6 * n + 2 ? fuzz_json_unescape(b.p, b.len, back) : (size_t)-1;
	FUZZ_ASSERT(m == n && memcmp(back, p, n) == 0);
	recfmt_buf_free(&b);

	FUZZ_ASSERT(recfmt_buf_init(&b, 1) == 0);
	recfmt_base64(&b, p, n);
	FUZZ_ASSERT(b.len == (n + 2) / 3 * 4);
	{
		static const char al[] =
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
		size_t o = 0;

		for (size_t i = 0; i < b.len; i += 4) {
			uint32_t v = 0;
			int pad = 0;

			for (int k = 0; k < 4; k++) {
				const char *c =
					b.p[i + k] == '=' ? NULL : memchr(al, b.p[i + k], 64);

				FUZZ_ASSERT(c || (b.p[i + k] == '=' && i + 4 == b.len && k >= 2));
				if (!c)
					pad++;
				v = v << 6 | (c ? (uint32_t)(c - al) : 0);
			}
			for (int k = 0; k < 3 - pad; k++)
				back[o++] = (uint8_t)(v >> (16 - 8 * k));
		}
		FUZZ_ASSERT(o == n && memcmp(back, p, n) == 0);
	}
	recfmt_buf_free(&b);
	free(back);
}

static void check_double(double v)
{
	struct recfmt_buf b;
	char s[64];

	for (int json = 0; json <= 1; json++) {
		FUZZ_ASSERT(recfmt_buf_init(&b, 1) == 0);
		recfmt_double(&b, v, json);
		FUZZ_ASSERT(b.len > 0 && b.len < 40);
		memcpy(s, b.p, b.len);
		s[b.len] = 0;
		if (isnan(v)) {
			FUZZ_ASSERT(!strcmp(s, json ? "\"NaN\"" : "NaN"));
		} else if (isinf(v)) {
			FUZZ_ASSERT(!strcmp(s, v < 0 ? (json ? "\"-Infinity\"" : "-Infinity")
						     : (json ? "\"Infinity\"" : "Infinity")));
		} else {
			struct fuzz_json j = { (const uint8_t *)s, (const uint8_t *)s + b.len, 0 };
			double back;
			char *end;
			int digits = 0, lead = 1;

			/* A JSON number that reads back to the very same double. */
			FUZZ_ASSERT(fj_number(&j) == 0 && j.p == j.end);
			back = strtod(s, &end);
			FUZZ_ASSERT(*end == 0);
			FUZZ_ASSERT(memcmp(&back, &v, sizeof(v)) == 0);
			/* At most 17 significant digits (shortest, or one more). */
			for (const char *c = s; *c && *c != 'e'; c++) {
				if (*c >= '1' && *c <= '9')
					lead = 0;
				if (*c >= '0' && *c <= '9' && !lead)
					digits++;
			}
			if (fabs(v) < 1e21) {
				/* integers print in full: zeros after the digits are not noise */
				FUZZ_ASSERT(digits <= 17 || v == trunc(v));
			} else {
				FUZZ_ASSERT(digits <= 17);
			}
		}
		recfmt_buf_free(&b);
	}
}

static void check_time(uint64_t ns)
{
	char s[RECFMT_TIME_LEN + 8], want[64];
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	size_t n;

	memset(s, 0x7f, sizeof(s));
	n = recfmt_time_str(s, ns);
	FUZZ_ASSERT(n == RECFMT_TIME_LEN && s[n] == 0 && (uint8_t)s[n + 1] == 0x7f);
	FUZZ_ASSERT(gmtime_r(&sec, &tm) != NULL);
	snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ns % 1000000000u / 1000u));
	FUZZ_ASSERT(strcmp(s, want) == 0);
}

static void check_u64(uint64_t v)
{
	struct recfmt_buf b;
	char s[32];

	FUZZ_ASSERT(recfmt_buf_init(&b, 1) == 0);
	recfmt_u64(&b, v);
	FUZZ_ASSERT(b.len > 0 && b.len <= 20);
	memcpy(s, b.p, b.len);
	s[b.len] = 0;
	FUZZ_ASSERT(strtoull(s, NULL, 10) == v);
	FUZZ_ASSERT(b.len == 1 || s[0] != '0');
	recfmt_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t data_max[4] = { 0, 1, 16, 4096 };
	struct fuzz_in in = { data, size };
	struct rec_hdr h;
	uint8_t mode, *p;
	size_t n;

	if (size > (size_t)16 << 20)
		return 0;
	mode = fin_u8(&in);
	memset(&h, 0, sizeof(h));
	h.len = fin_u32(&in);
	h.type = fin_u16(&in);
	h.flags = fin_u16(&in);
	h.seq = fin_u64(&in);
	h.ts_ns = fin_u64(&in);
	h.pid = fin_u32(&in);
	h.reserved = fin_u32(&in);
	n = in.n;
	h.len = (uint32_t)n;
	p = fuzz_dup(in.p, n);

	if (mode & 8)
		check_snapshot(&h, p, n, mode & 1);
	else
		check_record(&h, p, mode & 1, data_max[(mode >> 1) & 3]);

	check_escapers(p, n);
	for (size_t i = 0; i + 8 <= n && i < 8 * 8; i += 8) {
		uint64_t u;
		double d;

		memcpy(&u, p + i, 8);
		memcpy(&d, p + i, 8);
		check_double(d);
		check_time(u);
		check_u64(u);
	}
	check_time(h.ts_ns);
	check_u64(h.seq);
	free(p);
	return 0;
}
