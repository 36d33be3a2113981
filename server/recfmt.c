/*
 * recfmt.c - records as lines of text or JSON (see recfmt.h for the output).
 *
 * The one record printer of be-read and shm-dump.  Everything is written
 * by hand into a growable buffer: the escapers reserve room for the worst
 * case of a chunk of input, then fill it with plain stores, so that the
 * common path is a table lookup and a store per byte.  Numbers too are
 * written by hand (doubles with Grisu2, below): no printf on the way of a
 * record but for the rare message of one that does not decode.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"
#include "server/recfmt.h"
#include "shm/codec.h"

#define CHUNK ((size_t)4096) /* input bytes escaped per reservation */

/* ------------------------------------------------------------------------
 * The buffer.
 */

int recfmt_buf_init(struct recfmt_buf *b, size_t cap)
{
	b->len = 0;
	b->err = 0;
	b->cap = cap ? cap : 4096;
	b->p = malloc(b->cap);
	if (!b->p) {
		b->cap = 0;
		return -ENOMEM;
	}
	return 0;
}

void recfmt_buf_free(struct recfmt_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

char *recfmt_buf_grow(struct recfmt_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->err || n > SIZE_MAX / 2 - b->len)
		goto err_nomem;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		goto err_nomem;
	b->p = p;
	b->cap = cap;
	return p + b->len;

err_nomem:
	b->err = -ENOMEM;
	return NULL;
}

/* ------------------------------------------------------------------------
 * Numbers and times.
 */

/* "00" .. "99": two digits a division. */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324"
				     "25262728293031323334353637383940414243444546474849"
				     "50515253545556575859606162636465666768697071727374"
				     "75767778798081828384858687888990919293949596979899";

/* The digits of v, written backwards from end (20 bytes room); returns where they start. */
static inline char *u64_digits(char *end, uint64_t v)
{
	char *p = end;

	while (v >= 100) {
		unsigned i = (unsigned)(v % 100) * 2;

		v /= 100;
		p -= 2;
		p[0] = digit_pairs[i];
		p[1] = digit_pairs[i + 1];
	}
	if (v >= 10) {
		p -= 2;
		p[0] = digit_pairs[v * 2];
		p[1] = digit_pairs[v * 2 + 1];
	} else {
		*--p = (char)('0' + v);
	}
	return p;
}

void recfmt_u64(struct recfmt_buf *b, uint64_t v)
{
	char tmp[20], *p = u64_digits(tmp + sizeof(tmp), v);

	recfmt_mem(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
 * Doubles: Grisu2 (F. Loitsch, "Printing Floating-Point Numbers Quickly and
 * Accurately with Integers", PLDI 2010), in the form RapidJSON has it.
 * With 64-bit integers only, it finds digits that always read back to the
 * same double: the shortest such in all but about 0.1% of cases, one digit
 * more in those.  snprintf("%.17g") and a strtod() check would cost ten
 * times as much, and metric values are mostly doubles.
 */
struct diyfp {
	uint64_t f;
	int e; /* value = f * 2^e */
};

/* 10^k for k = -348, -340, ... 340: a 64-bit significand (top bit set), rounded, and e. */
static const struct {
	uint64_t f;
	int16_t e;
} cached_pow10[87] = {
	/* clang-format off */
	{ UINT64_C(0xfa8fd5a0081c0288), -1220 },
	{ UINT64_C(0xbaaee17fa23ebf76), -1193 },
	{ UINT64_C(0x8b16fb203055ac76), -1166 },
	{ UINT64_C(0xcf42894a5dce35ea), -1140 },
	{ UINT64_C(0x9a6bb0aa55653b2d), -1113 },
	{ UINT64_C(0xe61acf033d1a45df), -1087 },
	{ UINT64_C(0xab70fe17c79ac6ca), -1060 },
	{ UINT64_C(0xff77b1fcbebcdc4f), -1034 },
	{ UINT64_C(0xbe5691ef416bd60c), -1007 },
	{ UINT64_C(0x8dd01fad907ffc3c), -980 },
	{ UINT64_C(0xd3515c2831559a83), -954 },
	{ UINT64_C(0x9d71ac8fada6c9b5), -927 },
	{ UINT64_C(0xea9c227723ee8bcb), -901 },
	{ UINT64_C(0xaecc49914078536d), -874 },
	{ UINT64_C(0x823c12795db6ce57), -847 },
	{ UINT64_C(0xc21094364dfb5637), -821 },
	{ UINT64_C(0x9096ea6f3848984f), -794 },
	{ UINT64_C(0xd77485cb25823ac7), -768 },
	{ UINT64_C(0xa086cfcd97bf97f4), -741 },
	{ UINT64_C(0xef340a98172aace5), -715 },
	{ UINT64_C(0xb23867fb2a35b28e), -688 },
	{ UINT64_C(0x84c8d4dfd2c63f3b), -661 },
	{ UINT64_C(0xc5dd44271ad3cdba), -635 },
	{ UINT64_C(0x936b9fcebb25c996), -608 },
	{ UINT64_C(0xdbac6c247d62a584), -582 },
	{ UINT64_C(0xa3ab66580d5fdaf6), -555 },
	{ UINT64_C(0xf3e2f893dec3f126), -529 },
	{ UINT64_C(0xb5b5ada8aaff80b8), -502 },
	{ UINT64_C(0x87625f056c7c4a8b), -475 },
	{ UINT64_C(0xc9bcff6034c13053), -449 },
	{ UINT64_C(0x964e858c91ba2655), -422 },
	{ UINT64_C(0xdff9772470297ebd), -396 },
	{ UINT64_C(0xa6dfbd9fb8e5b88f), -369 },
	{ UINT64_C(0xf8a95fcf88747d94), -343 },
	{ UINT64_C(0xb94470938fa89bcf), -316 },
	{ UINT64_C(0x8a08f0f8bf0f156b), -289 },
	{ UINT64_C(0xcdb02555653131b6), -263 },
	{ UINT64_C(0x993fe2c6d07b7fac), -236 },
	{ UINT64_C(0xe45c10c42a2b3b06), -210 },
	{ UINT64_C(0xaa242499697392d3), -183 },
	{ UINT64_C(0xfd87b5f28300ca0e), -157 },
	{ UINT64_C(0xbce5086492111aeb), -130 },
	{ UINT64_C(0x8cbccc096f5088cc), -103 },
	{ UINT64_C(0xd1b71758e219652c), -77 },
	{ UINT64_C(0x9c40000000000000), -50 },
	{ UINT64_C(0xe8d4a51000000000), -24 },
	{ UINT64_C(0xad78ebc5ac620000), 3 },
	{ UINT64_C(0x813f3978f8940984), 30 },
	{ UINT64_C(0xc097ce7bc90715b3), 56 },
	{ UINT64_C(0x8f7e32ce7bea5c70), 83 },
	{ UINT64_C(0xd5d238a4abe98068), 109 },
	{ UINT64_C(0x9f4f2726179a2245), 136 },
	{ UINT64_C(0xed63a231d4c4fb27), 162 },
	{ UINT64_C(0xb0de65388cc8ada8), 189 },
	{ UINT64_C(0x83c7088e1aab65db), 216 },
	{ UINT64_C(0xc45d1df942711d9a), 242 },
	{ UINT64_C(0x924d692ca61be758), 269 },
	{ UINT64_C(0xda01ee641a708dea), 295 },
	{ UINT64_C(0xa26da3999aef774a), 322 },
	{ UINT64_C(0xf209787bb47d6b85), 348 },
	{ UINT64_C(0xb454e4a179dd1877), 375 },
	{ UINT64_C(0x865b86925b9bc5c2), 402 },
	{ UINT64_C(0xc83553c5c8965d3d), 428 },
	{ UINT64_C(0x952ab45cfa97a0b3), 455 },
	{ UINT64_C(0xde469fbd99a05fe3), 481 },
	{ UINT64_C(0xa59bc234db398c25), 508 },
	{ UINT64_C(0xf6c69a72a3989f5c), 534 },
	{ UINT64_C(0xb7dcbf5354e9bece), 561 },
	{ UINT64_C(0x88fcf317f22241e2), 588 },
	{ UINT64_C(0xcc20ce9bd35c78a5), 614 },
	{ UINT64_C(0x98165af37b2153df), 641 },
	{ UINT64_C(0xe2a0b5dc971f303a), 667 },
	{ UINT64_C(0xa8d9d1535ce3b396), 694 },
	{ UINT64_C(0xfb9b7cd9a4a7443c), 720 },
	{ UINT64_C(0xbb764c4ca7a44410), 747 },
	{ UINT64_C(0x8bab8eefb6409c1a), 774 },
	{ UINT64_C(0xd01fef10a657842c), 800 },
	{ UINT64_C(0x9b10a4e5e9913129), 827 },
	{ UINT64_C(0xe7109bfba19c0c9d), 853 },
	{ UINT64_C(0xac2820d9623bf429), 880 },
	{ UINT64_C(0x80444b5e7aa7cf85), 907 },
	{ UINT64_C(0xbf21e44003acdd2d), 933 },
	{ UINT64_C(0x8e679c2f5e44ff8f), 960 },
	{ UINT64_C(0xd433179d9c8cb841), 986 },
	{ UINT64_C(0x9e19db92b4e31ba9), 1013 },
	{ UINT64_C(0xeb96bf6ebadf77d9), 1039 },
	{ UINT64_C(0xaf87023b9bf0ee6b), 1066 },
	/* clang-format on */
};

static const uint64_t pow10_u64[20] = {
	UINT64_C(1),
	UINT64_C(10),
	UINT64_C(100),
	UINT64_C(1000),
	UINT64_C(10000),
	UINT64_C(100000),
	UINT64_C(1000000),
	UINT64_C(10000000),
	UINT64_C(100000000),
	UINT64_C(1000000000),
	UINT64_C(10000000000),
	UINT64_C(100000000000),
	UINT64_C(1000000000000),
	UINT64_C(10000000000000),
	UINT64_C(100000000000000),
	UINT64_C(1000000000000000),
	UINT64_C(10000000000000000),
	UINT64_C(100000000000000000),
	UINT64_C(1000000000000000000),
	UINT64_C(10000000000000000000),
};

/* x * y, the upper 64 bits of the product, rounded. */
static inline struct diyfp diy_mul(struct diyfp x, struct diyfp y)
{
	unsigned __int128 p = (unsigned __int128)x.f * y.f;
	uint64_t h = (uint64_t)(p >> 64), l = (uint64_t)p;

	h += l >> 63;
	return (struct diyfp){ h, x.e + y.e + 64 };
}

/* Move the last digit down while that brings it closer to w and stays in range. */
static inline void grisu_round(char *buf, int len, uint64_t delta, uint64_t rest,
			       uint64_t ten_kappa, uint64_t wp_w)
{
	while (rest < wp_w && delta - rest >= ten_kappa &&
	       (rest + ten_kappa < wp_w || wp_w - rest > rest + ten_kappa - wp_w)) {
		buf[len - 1]--;
		rest += ten_kappa;
	}
}

/* The digits of Mp, down to the precision delta allows; *K gets their exponent added. */
static int digit_gen(struct diyfp w, struct diyfp mp, uint64_t delta, char *buf, int *K)
{
	const int sh = -mp.e; /* in [32, 60]: the cached power saw to it */
	const uint64_t one = UINT64_C(1) << sh, wp_w = mp.f - w.f;
	uint32_t p1 = (uint32_t)(mp.f >> sh);
	uint64_t p2 = mp.f & (one - 1);
	int kappa = 1, len = 0;

	while (kappa < 10 && p1 >= pow10_u64[kappa])
		kappa++;
	while (kappa > 0) {
		uint32_t div = (uint32_t)pow10_u64[kappa - 1], d = p1 / div;
		uint64_t rest;

		p1 %= div;
		if (d || len)
			buf[len++] = (char)('0' + d);
		kappa--;
		rest = ((uint64_t)p1 << sh) + p2;
		if (rest <= delta) {
			*K += kappa;
			grisu_round(buf, len, delta, rest, pow10_u64[kappa] << sh, wp_w);
			return len;
		}
	}
	for (;;) {
		char d;

		p2 *= 10;
		delta *= 10;
		d = (char)(p2 >> sh);
		if (d || len)
			buf[len++] = (char)('0' + d);
		p2 &= one - 1;
		kappa--;
		if (p2 < delta) {
			*K += kappa;
			grisu_round(buf, len, delta, p2, one,
				    -kappa < 20 ? wp_w * pow10_u64[-kappa] : 0);
			return len;
		}
	}
}

/* Digits of v (finite, > 0) into buf (18 bytes), value = digits * 10^*K; returns their count. */
static int grisu2(double v, char *buf, int *K)
{
	const uint64_t hidden = UINT64_C(1) << 52;
	struct diyfp w, wp, wm, c;
	uint64_t u;
	int bexp, k, s;
	unsigned idx;
	double dk;

	memcpy(&u, &v, sizeof(u));
	bexp = (int)(u >> 52 & 0x7ff);
	w.f = u & (hidden - 1);
	if (bexp) {
		w.f |= hidden;
		w.e = bexp - 1075;
	} else {
		w.e = -1074;
	}

	/* The boundaries: halfway to the neighbours, normalized to one exponent. */
	wp = (struct diyfp){ (w.f << 1) + 1, w.e - 1 };
	while (!(wp.f & (hidden << 1))) {
		wp.f <<= 1;
		wp.e--;
	}
	wp.f <<= 64 - 54;
	wp.e -= 64 - 54;
	if (w.f == hidden)
		wm = (struct diyfp){ (w.f << 2) - 1, w.e - 2 }; /* the gap below is half */
	else
		wm = (struct diyfp){ (w.f << 1) - 1, w.e - 1 };
	wm.f <<= wm.e - wp.e;
	wm.e = wp.e;
	s = __builtin_clzll(w.f);
	w.f <<= s;
	w.e -= s;

	/* A power of ten that brings wp's exponent into [-60, -32]. */
	dk = (-61 - wp.e) * 0.30102999566398114 + 347;
	k = (int)dk;
	if (dk - k > 0.0)
		k++;
	idx = (unsigned)((k >> 3) + 1);
	*K = -(-348 + (int)idx * 8);
	c = (struct diyfp){ cached_pow10[idx].f, cached_pow10[idx].e };

	w = diy_mul(w, c);
	wp = diy_mul(wp, c);
	wm = diy_mul(wm, c);
	wm.f++; /* stay inside the interval, whatever the products' rounding */
	wp.f--;
	return digit_gen(w, wp, wp.f - wm.f, buf, K);
}

/*
 * dbl_digits() - a finite double into d (32 bytes) as JavaScript writes
 * numbers: integers below 10^21 in full, a point where one falls inside
 * the digits or closely after "0.", else d.ddde+X / e-X.  Returns the length.
 */
static size_t dbl_digits(char *d, double v)
{
	char dig[24];
	size_t n = 0;
	int len, K, kk;

	if (fabs(v) < 1e15 && v == trunc(v) && !(v == 0 && signbit(v))) {
		/* The common case of counters and gauges: an integer. */
		int64_t i = (int64_t)v;
		char tmp[20],
			*p = u64_digits(tmp + sizeof(tmp), i < 0 ? -(uint64_t)i : (uint64_t)i);

		if (i < 0)
			d[n++] = '-';
		memcpy(d + n, p, (size_t)(tmp + sizeof(tmp) - p));
		return n + (size_t)(tmp + sizeof(tmp) - p);
	}
	if (signbit(v)) {
		d[n++] = '-';
		v = -v;
	}
	if (v == 0) {
		d[n++] = '0';
		return n;
	}
	len = grisu2(v, dig, &K);
	kk = len + K; /* where the point goes, counted from the first digit */
	if (K >= 0 && kk <= 21) {
		memcpy(d + n, dig, (size_t)len);
		n += (size_t)len;
		memset(d + n, '0', (size_t)K);
		n += (size_t)K;
	} else if (kk > 0 && kk <= 21) {
		memcpy(d + n, dig, (size_t)kk);
		n += (size_t)kk;
		d[n++] = '.';
		memcpy(d + n, dig + kk, (size_t)(len - kk));
		n += (size_t)(len - kk);
	} else if (kk > -6 && kk <= 0) {
		d[n++] = '0';
		d[n++] = '.';
		memset(d + n, '0', (size_t)-kk);
		n += (size_t)-kk;
		memcpy(d + n, dig, (size_t)len);
		n += (size_t)len;
	} else {
		int x = kk - 1;

		d[n++] = dig[0];
		if (len > 1) {
			d[n++] = '.';
			memcpy(d + n, dig + 1, (size_t)(len - 1));
			n += (size_t)(len - 1);
		}
		d[n++] = 'e';
		d[n++] = x < 0 ? '-' : '+';
		if (x < 0)
			x = -x;
		if (x >= 100)
			d[n++] = (char)('0' + x / 100);
		if (x >= 10)
			d[n++] = (char)('0' + x / 10 % 10);
		d[n++] = (char)('0' + x % 10);
	}
	return n;
}

void recfmt_double(struct recfmt_buf *b, double v, int json)
{
	char d[32];

	if (isnan(v)) {
		if (json)
			recfmt_lit(b, "\"NaN\"");
		else
			recfmt_lit(b, "NaN");
	} else if (isinf(v)) {
		if (json)
			recfmt_mem(b, v < 0 ? "\"-Infinity\"" : "\"Infinity\"", v < 0 ? 11 : 10);
		else
			recfmt_mem(b, v < 0 ? "-Infinity" : "Infinity", v < 0 ? 9 : 8);
	} else {
		recfmt_mem(b, d, dbl_digits(d, v));
	}
}

static inline void two(char *d, unsigned v)
{
	d[0] = (char)('0' + v / 10);
	d[1] = (char)('0' + v % 10);
}

size_t recfmt_time_str(char *buf, uint64_t ns)
{
	uint64_t sec = ns / 1000000000u;
	uint32_t usec = (uint32_t)(ns % 1000000000u / 1000u);
	uint32_t sod = (uint32_t)(sec % 86400u);
	/*
	 * Days since 1970-01-01 to a civil date (H. Hinnant's algorithm, for
	 * days >= 0): eras of 400 years, counted from 0000-03-01.
	 */
	uint64_t z = sec / 86400u + 719468u;
	uint64_t era = z / 146097u;
	uint32_t doe = (uint32_t)(z - era * 146097u);
	uint32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint32_t mp = (5 * doy + 2) / 153;
	uint32_t day = doy - (153 * mp + 2) / 5 + 1;
	uint32_t mon = mp < 10 ? mp + 3 : mp - 9;
	uint32_t year = (uint32_t)(yoe + era * 400) + (mon <= 2);

	/* year <= 2554 for any uint64_t of ns: always four digits. */
	two(buf, year / 100);
	two(buf + 2, year % 100);
	buf[4] = '-';
	two(buf + 5, mon);
	buf[7] = '-';
	two(buf + 8, day);
	buf[10] = 'T';
	two(buf + 11, sod / 3600);
	buf[13] = ':';
	two(buf + 14, sod / 60 % 60);
	buf[16] = ':';
	two(buf + 17, sod % 60);
	buf[19] = '.';
	two(buf + 20, usec / 10000);
	two(buf + 22, usec / 100 % 100);
	two(buf + 24, usec % 100);
	buf[26] = 'Z';
	buf[27] = 0;
	return RECFMT_TIME_LEN;
}

void recfmt_time(struct recfmt_buf *b, uint64_t ns)
{
	char *d = recfmt_need(b, RECFMT_TIME_LEN + 1);

	if (d)
		b->len += recfmt_time_str(d, ns);
}

/* ------------------------------------------------------------------------
 * Strings.
 */

/*
 * utf8_len() - the length of the valid UTF-8 sequence at p (n > 0 bytes
 * there), or 0 when it is not one: no overlong forms, no surrogates,
 * nothing past U+10FFFF (RFC 3629).
 */
static inline size_t utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0;
		return 3;
	}
	if (c < 0xf5) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0;
		return 4;
	}
	return 0;
}

/* Bytes a C string literal holds as they are: printable ASCII but " and \. */
static const uint8_t c_plain[256] = {
	[0x20 ... 0x21] = 1, /* '"' is 0x22 */
	[0x23 ... 0x5b] = 1, /* '\\' is 0x5c */
	[0x5d ... 0x7e] = 1,
};

void recfmt_cstr(struct recfmt_buf *b, const void *src, size_t n, int utf8)
{
	static const char oct[] = "01234567";
	const uint8_t *p = src;
	size_t i = 0;

	while (i < n) {
		size_t lim = n - i < CHUNK ? n : i + CHUNK;
		/* 4 bytes out for 1 in at worst; a sequence may run 3 past lim. */
		char *d = recfmt_need(b, 4 * (lim - i) + 16), *start = d;

		if (!d)
			return;
		while (i < lim) {
			uint8_t c = p[i];
			size_t k;

			if (c_plain[c]) {
				*d++ = (char)c;
				i++;
				continue;
			}
			/* Valid UTF-8, the C1 controls (C2 80 .. C2 9F) excepted. */
			if (utf8 && c >= 0xc2 && (k = utf8_len(p + i, n - i)) &&
			    !(c == 0xc2 && p[i + 1] < 0xa0)) {
				memcpy(d, p + i, k);
				d += k;
				i += k;
				continue;
			}
			*d++ = '\\';
			switch (c) {
			case '\\':
				*d++ = '\\';
				break;
			case '"':
				*d++ = '"';
				break;
			case '\n':
				*d++ = 'n';
				break;
			case '\t':
				*d++ = 't';
				break;
			case '\r':
				*d++ = 'r';
				break;
			default:
				/* Always three digits: never merges with a digit that follows. */
				*d++ = oct[c >> 6];
				*d++ = oct[(c >> 3) & 7];
				*d++ = oct[c & 7];
			}
			i++;
		}
		b->len += (size_t)(d - start);
	}
}

/* JSON: 0 as is, 1 escaped, 2 the start of UTF-8 (or not valid). */
static const uint8_t j_class[256] = {
	[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x7f] = 1, [0x80 ... 0xff] = 2,
};

void recfmt_json_str(struct recfmt_buf *b, const void *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = src;
	size_t i = 0;
	char *d;

	recfmt_lit(b, "\"");
	while (i < n) {
		size_t lim = n - i < CHUNK ? n : i + CHUNK;
		char *start;

		/* 6 bytes out for 1 in at worst; a sequence may run 3 past lim. */
		d = recfmt_need(b, 6 * (lim - i) + 24);
		if (!d)
			return;
		start = d;
		while (i < lim) {
			uint8_t c = p[i];
			size_t k;

			switch (j_class[c]) {
			case 0:
				*d++ = (char)c;
				i++;
				continue;
			case 2:
				k = utf8_len(p + i, n - i);
				if (k) {
					memcpy(d, p + i, k);
					d += k;
					i += k;
					continue;
				}
				break; /* a byte that is not UTF-8: \u00XX */
			}
			*d++ = '\\';
			switch (c) {
			case '"':
			case '\\':
				*d++ = (char)c;
				break;
			case '\n':
				*d++ = 'n';
				break;
			case '\t':
				*d++ = 't';
				break;
			case '\r':
				*d++ = 'r';
				break;
			case '\b':
				*d++ = 'b';
				break;
			case '\f':
				*d++ = 'f';
				break;
			default:
				d[0] = 'u';
				d[1] = '0';
				d[2] = '0';
				d[3] = hex[c >> 4];
				d[4] = hex[c & 15];
				d += 5;
			}
			i++;
		}
		b->len += (size_t)(d - start);
	}
	recfmt_lit(b, "\"");
}

void recfmt_base64(struct recfmt_buf *b, const void *src, size_t n)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = src;

	while (n > 0) {
		/* A multiple of 3 per round, so that only the last one pads. */
		size_t k = n < 3 * (CHUNK / 4) ? n : 3 * (CHUNK / 4);
		char *d = recfmt_need(b, (k + 2) / 3 * 4), *start = d;
		size_t i;

		if (!d)
			return;
		for (i = 0; i + 3 <= k; i += 3) {
			uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

			d[0] = b64[v >> 18];
			d[1] = b64[(v >> 12) & 63];
			d[2] = b64[(v >> 6) & 63];
			d[3] = b64[v & 63];
			d += 4;
		}
		if (i < k) {
			uint32_t v = (uint32_t)p[i] << 16;

			if (i + 1 < k)
				v |= (uint32_t)p[i + 1] << 8;
			d[0] = b64[v >> 18];
			d[1] = b64[(v >> 12) & 63];
			d[2] = i + 1 < k ? b64[(v >> 6) & 63] : '=';
			d[3] = '=';
			d += 4;
		}
		b->len += (size_t)(d - start);
		p += k;
		n -= k;
	}
}

const char *recfmt_type_name(unsigned type)
{
	switch (type) {
	case BE_TYPE_RAW:
		return "raw";
	case BE_TYPE_METRIC:
		return "metric";
	case BE_TYPE_LOG:
		return "log";
	case BE_TYPE_PROCESS:
		return "process";
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Fields: JSON ("j_") and text ("t_").  A JSON key comes with its leading
 * comma: every field follows the header's.
 */

#define j_key(b, k) recfmt_lit((b), "," k ":")

static inline void j_cstr(struct recfmt_buf *b, const struct codec_str *s)
{
	recfmt_json_str(b, s->p, s->len);
}

/* An absent string is left out, key and all. */
#define j_str(b, k, s)                    \
	do {                              \
		if ((s)->p) {             \
			j_key(b, k);      \
			j_cstr((b), (s)); \
		}                         \
	} while (0)

#define j_u64(b, k, v)                \
	do {                          \
		j_key(b, k);          \
		recfmt_u64((b), (v)); \
	} while (0)

#define j_dbl(b, k, v)                      \
	do {                                \
		j_key(b, k);                \
		recfmt_double((b), (v), 1); \
	} while (0)

/* "<k>":"<iso>","<k>_ns":<ns> */
#define j_time(b, k, ns)                        \
	do {                                    \
		j_key(b, "\"" k "\"");          \
		recfmt_lit((b), "\"");          \
		recfmt_time((b), (ns));         \
		recfmt_lit((b), "\"");          \
		j_u64(b, "\"" k "_ns\"", (ns)); \
	} while (0)

/* A plain word needs no quotes in text: [A-Za-z0-9_./:@+-]. */
static const uint8_t t_plain[256] = {
	['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1, ['_'] = 1, ['.'] = 1,
	['/'] = 1,	   [':'] = 1,	      ['@'] = 1,	 ['+'] = 1, ['-'] = 1,
};

static int is_plain(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!t_plain[p[i]])
			return 0;
	return 1;
}

static inline void t_quoted(struct recfmt_buf *b, const char *s, size_t n)
{
	recfmt_lit(b, "\"");
	recfmt_cstr(b, s, n, 1);
	recfmt_lit(b, "\"");
}

/* A value: as is when a plain word, else quoted and escaped. */
static void t_val(struct recfmt_buf *b, const char *s, size_t n)
{
	if (is_plain(s, n))
		recfmt_mem(b, s, n);
	else
		t_quoted(b, s, n);
}

/* " key=value", left out when the string is absent.  k is " key=". */
#define t_str(b, k, s)                                \
	do {                                          \
		if ((s)->p) {                         \
			recfmt_lit((b), k);           \
			t_val((b), (s)->p, (s)->len); \
		}                                     \
	} while (0)

#define t_u64(b, k, v)                \
	do {                          \
		recfmt_lit((b), k);   \
		recfmt_u64((b), (v)); \
	} while (0)

#define t_dbl(b, k, v)                      \
	do {                                \
		recfmt_lit((b), k);         \
		recfmt_double((b), (v), 0); \
	} while (0)

#define t_time(b, k, ns)                \
	do {                            \
		recfmt_lit((b), k);     \
		recfmt_time((b), (ns)); \
	} while (0)

/* "key":"value" in a JSON object, with a comma unless it is the first. */
static void j_member(struct recfmt_buf *b, int *first, const char *key, size_t klen,
		     const struct codec_str *s)
{
	if (!s->p)
		return;
	if (!*first)
		recfmt_lit(b, ",");
	*first = 0;
	recfmt_mem(b, key, klen);
	j_cstr(b, s);
}

#define j_member_lit(b, first, k, s) j_member((b), (first), k, sizeof(k) - 1, (s))

static void put_meta(struct recfmt *f, const struct codec_meta *m)
{
	struct recfmt_buf *b = &f->out;
	int first = 1;

	if (!f->json) {
		t_str(b, " host_id=", &m->host_id);
		t_str(b, " agent_id=", &m->agent_id);
		t_str(b, " hostname=", &m->hostname);
		t_str(b, " endpoint_id=", &m->endpoint_id);
		return;
	}
	if (!m->host_id.p && !m->agent_id.p && !m->hostname.p && !m->endpoint_id.p)
		return;
	recfmt_lit(b, ",\"meta\":{");
	j_member_lit(b, &first, "\"host_id\":", &m->host_id);
	j_member_lit(b, &first, "\"agent_id\":", &m->agent_id);
	j_member_lit(b, &first, "\"hostname\":", &m->hostname);
	j_member_lit(b, &first, "\"endpoint_id\":", &m->endpoint_id);
	recfmt_lit(b, "}");
}

/*
 * put_attrs() - the pairs of a, as "<key>":{...} in JSON (always there),
 * " <key>={k=v,...}" in text (left out when empty).  Returns 0, or
 * -EBADMSG when the bytes do not walk (they changed under us).
 */
static int put_attrs(struct recfmt *f, const char *jkey, const char *tkey,
		     const struct codec_attrs *a)
{
	struct recfmt_buf *b = &f->out;
	struct codec_attr_iter it;
	struct codec_str k, v;
	int first = 1, ret;

	if (!f->json && a->count == 0)
		return 0;
	recfmt_mem(b, f->json ? jkey : tkey, strlen(f->json ? jkey : tkey));
	codec_attrs_begin(a, &it);
	while ((ret = codec_attr_next(&it, &k, &v)) > 0) {
		if (!first)
			recfmt_lit(b, ",");
		first = 0;
		if (f->json) {
			recfmt_json_str(b, k.p, k.len);
			recfmt_lit(b, ":");
			if (v.p)
				recfmt_json_str(b, v.p, v.len);
			else
				recfmt_lit(b, "null");
		} else {
			t_val(b, k.p, k.len);
			if (v.p) {
				recfmt_lit(b, "=");
				t_val(b, v.p, v.len);
			}
		}
	}
	recfmt_lit(b, "}");
	return ret;
}

/* ------------------------------------------------------------------------
 * Records.
 */

static void put_head(struct recfmt *f, const struct rec_hdr *h)
{
	struct recfmt_buf *b = &f->out;
	const char *type = recfmt_type_name(h->type);

	if (f->json) {
		recfmt_lit(b, "{\"seq\":");
		recfmt_u64(b, h->seq);
		recfmt_lit(b, ",\"ts\":\"");
		recfmt_time(b, h->ts_ns);
		recfmt_lit(b, "\",\"ts_ns\":");
		recfmt_u64(b, h->ts_ns);
		recfmt_lit(b, ",\"pid\":");
		recfmt_u64(b, h->pid);
		recfmt_lit(b, ",\"type\":\"");
	} else {
		recfmt_lit(b, "seq=");
		recfmt_u64(b, h->seq);
		recfmt_lit(b, " ts=");
		recfmt_time(b, h->ts_ns);
		recfmt_lit(b, " pid=");
		recfmt_u64(b, h->pid);
		recfmt_lit(b, " type=");
	}
	if (type)
		recfmt_mem(b, type, strlen(type));
	else
		recfmt_u64(b, h->type);
	if (f->json)
		recfmt_lit(b, "\"");
}

/* The payload as it is: base64 in JSON; length and C-escaped bytes in text. */
static void put_data(struct recfmt *f, const uint8_t *p, uint32_t len)
{
	struct recfmt_buf *b = &f->out;

	if (f->json) {
		recfmt_lit(b, ",\"data\":\"");
		recfmt_base64(b, p, len);
		recfmt_lit(b, "\"");
		return;
	}
	recfmt_lit(b, " len=");
	recfmt_u64(b, len);
	recfmt_lit(b, " data=\"");
	if (f->text_data_max && len > f->text_data_max) {
		recfmt_cstr(b, p, f->text_data_max, 0);
		recfmt_lit(b, "\"...");
	} else {
		recfmt_cstr(b, p, len, 0);
		recfmt_lit(b, "\"");
	}
}

static const char *const kind_name[] = {
	[BE_METRIC_GAUGE] = "gauge",
	[BE_METRIC_COUNTER] = "counter",
	[BE_METRIC_HISTOGRAM] = "histogram",
};

static int put_metric(struct recfmt *f, const struct rec_hdr *h, const void *payload)
{
	struct recfmt_buf *b = &f->out;
	struct codec_metric m;
	const char *kind;
	int ret;

	ret = codec_decode_metric(payload, h->len, &m);
	if (ret)
		return ret;
	/* The codec lets no other kind through. */
	kind = m.kind < sizeof(kind_name) / sizeof(kind_name[0]) && kind_name[m.kind]
		       ? kind_name[m.kind]
		       : "unknown";

	if (f->json) {
		j_str(b, "\"namespace\"", &m.ns);
		j_str(b, "\"sub_namespace\"", &m.sub_ns);
		j_str(b, "\"name\"", &m.name);
		j_str(b, "\"unit\"", &m.unit);
		j_key(b, "\"kind\"");
		recfmt_lit(b, "\"");
		recfmt_mem(b, kind, strlen(kind));
		recfmt_lit(b, "\"");
	} else {
		/* ns.sub_ns.name, quoted as one string when any part needs it. */
		const struct codec_str *part[3] = { &m.ns, &m.sub_ns, &m.name };
		int plain = 1, n = 0;

		for (int i = 0; i < 3; i++)
			if (part[i]->p && !is_plain(part[i]->p, part[i]->len))
				plain = 0;
		if (plain)
			recfmt_lit(b, " name=");
		else
			recfmt_lit(b, " name=\"");
		for (int i = 0; i < 3; i++) {
			if (!part[i]->p)
				continue;
			if (n++)
				recfmt_lit(b, ".");
			if (plain)
				recfmt_mem(b, part[i]->p, part[i]->len);
			else
				recfmt_cstr(b, part[i]->p, part[i]->len, 1);
		}
		if (!plain)
			recfmt_lit(b, "\"");
		recfmt_lit(b, " kind=");
		recfmt_mem(b, kind, strlen(kind));
	}

	if (m.kind == BE_METRIC_HISTOGRAM) {
		if (f->json) {
			j_u64(b, "\"count\"", m.count);
			j_dbl(b, "\"sum\"", m.sum);
			recfmt_lit(b, ",\"bounds\":[");
		} else {
			t_u64(b, " count=", m.count);
			t_dbl(b, " sum=", m.sum);
			recfmt_lit(b, " bounds=[");
		}
		for (uint32_t i = 0; i < m.nbounds; i++) {
			if (i)
				recfmt_lit(b, ",");
			recfmt_double(b, codec_metric_bound(&m, i), f->json);
		}
		if (f->json)
			recfmt_lit(b, "],\"buckets\":[");
		else
			recfmt_lit(b, "] buckets=[");
		for (uint32_t i = 0; i <= m.nbounds; i++) {
			if (i)
				recfmt_lit(b, ",");
			recfmt_u64(b, codec_metric_bucket(&m, i));
		}
		recfmt_lit(b, "]");
	} else if (f->json) {
		j_dbl(b, "\"value\"", m.value);
	} else {
		t_dbl(b, " value=", m.value);
	}

	if (f->json) {
		j_time(b, "sample_ts", m.ts_ns);
	} else {
		t_str(b, " unit=", &m.unit);
	}
	ret = put_attrs(f, ",\"attrs\":{", " attrs={", &m.attrs);
	if (ret)
		return ret;
	put_meta(f, &m.meta);
	if (!f->json && m.ts_ns != h->ts_ns)
		t_time(b, " sample_ts=", m.ts_ns);
	return 0;
}

static int put_log(struct recfmt *f, const struct rec_hdr *h, const void *payload)
{
	struct recfmt_buf *b = &f->out;
	struct codec_log l;
	struct codec_str sev;
	int ret;

	ret = codec_decode_log(payload, h->len, &l);
	if (ret)
		return ret;
	sev = l.severity_text;
	if (!sev.p) {
		sev.p = codec_severity_text(l.severity);
		sev.len = sev.p ? strlen(sev.p) : 0;
	}

	if (f->json) {
		j_u64(b, "\"severity\"", l.severity);
		j_str(b, "\"severity_text\"", &sev);
		j_str(b, "\"message\"", &l.message);
		j_str(b, "\"source\"", &l.source);
		j_str(b, "\"category\"", &l.category);
		if (l.pid)
			j_u64(b, "\"log_pid\"", l.pid);
		j_time(b, "log_ts", l.ts_ns);
	} else {
		recfmt_lit(b, " severity=");
		if (sev.p)
			t_val(b, sev.p, sev.len);
		recfmt_lit(b, "(");
		recfmt_u64(b, l.severity);
		recfmt_lit(b, ")");
		t_str(b, " source=", &l.source);
		t_str(b, " category=", &l.category);
		if (l.pid)
			t_u64(b, " log_pid=", l.pid);
		recfmt_lit(b, " msg=");
		t_quoted(b, l.message.p, l.message.len);
	}
	ret = put_attrs(f, ",\"fields\":{", " fields={", &l.fields);
	if (ret)
		return ret;
	put_meta(f, &l.meta);
	if (!f->json && l.ts_ns != h->ts_ns)
		t_time(b, " log_ts=", l.ts_ns);
	return 0;
}

/* The fields of one process, after its snapshot's (shared by both forms). */
static void put_proc_fields(struct recfmt *f, const struct codec_process *p)
{
	struct recfmt_buf *b = &f->out;

	if (f->json) {
		j_u64(b, "\"proc_pid\"", p->pid);
		j_u64(b, "\"ppid\"", p->ppid);
		j_str(b, "\"user\"", &p->user);
		j_str(b, "\"exe\"", &p->exe);
		j_str(b, "\"cmdline\"", &p->cmdline);
		j_dbl(b, "\"cpu_percent\"", p->cpu_percent);
		j_dbl(b, "\"mem_percent\"", p->mem_percent);
		j_u64(b, "\"rss_bytes\"", p->rss_bytes);
		j_u64(b, "\"threads\"", p->threads);
		if (p->start_ts_ns)
			j_time(b, "start_ts", p->start_ts_ns);
	} else {
		t_u64(b, " proc_pid=", p->pid);
		t_u64(b, " ppid=", p->ppid);
		t_str(b, " user=", &p->user);
		t_str(b, " exe=", &p->exe);
		t_dbl(b, " cpu=", p->cpu_percent);
		recfmt_lit(b, "%");
		t_dbl(b, " mem=", p->mem_percent);
		recfmt_lit(b, "%");
		t_u64(b, " rss=", p->rss_bytes);
		t_u64(b, " threads=", p->threads);
		if (p->start_ts_ns)
			t_time(b, " start=", p->start_ts_ns);
		if (p->cmdline.p) {
			recfmt_lit(b, " cmd=");
			t_quoted(b, p->cmdline.p, p->cmdline.len);
		}
	}
	put_meta(f, &p->meta);
}

static int put_process(struct recfmt *f, const struct rec_hdr *h, const void *payload)
{
	struct recfmt_buf *b = &f->out;
	struct codec_process p;
	int ret;

	ret = codec_decode_process(payload, h->len, &p);
	if (ret)
		return ret;
	if (f->json) {
		j_u64(b, "\"snapshot_id\"", p.snapshot_id);
		j_time(b, "snapshot_ts", p.snapshot_ts_ns);
	} else {
		t_u64(b, " snapshot=", p.snapshot_id);
	}
	put_proc_fields(f, &p);
	if (!f->json && p.snapshot_ts_ns != h->ts_ns)
		t_time(b, " snapshot_ts=", p.snapshot_ts_ns);
	return 0;
}

const char *recfmt_error_text(const struct recfmt *f, int err, unsigned type, const void *payload,
			      size_t len, char *buf, size_t size)
{
	const char *tn = recfmt_type_name(type);

	if (!tn)
		snprintf(buf, size, "unknown record type %u", type);
	else if (err == -EPROTO && len > 0)
		snprintf(buf, size, "payload format version %u is newer than this %s",
			 *(const uint8_t *)payload, f->prog ? f->prog : "program");
	else if (err == -EBADMSG)
		snprintf(buf, size, "damaged %s payload: it does not decode", tn);
	else
		snprintf(buf, size, "%s payload: %s", tn, strerror(err < 0 ? -err : err));
	return buf;
}

static void put_error(struct recfmt *f, const struct rec_hdr *h, const uint8_t *payload, int err)
{
	struct recfmt_buf *b = &f->out;
	char why[128];

	recfmt_error_text(f, err, h->type, payload, h->len, why, sizeof(why));
	if (f->json) {
		recfmt_lit(b, ",\"error\":");
		recfmt_json_str(b, why, strlen(why));
	} else {
		recfmt_lit(b, " error=");
		t_quoted(b, why, strlen(why));
	}
	put_data(f, payload, h->len);
}

/* The end of a line; then take it all back when memory ran out. */
static int finish(struct recfmt *f, size_t start, int ret)
{
	struct recfmt_buf *b = &f->out;

	recfmt_mem(b, f->json ? "}\n" : "\n", f->json ? 2 : 1);
	if (b->err) {
		b->len = start;
		b->err = 0;
		return -ENOMEM;
	}
	return ret;
}

int recfmt_record(struct recfmt *f, const struct rec_hdr *h, const void *payload)
{
	struct recfmt_buf *b = &f->out;
	size_t start = b->len, body;
	int ret;

	put_head(f, h);
	body = b->len;
	switch (h->type) {
	case BE_TYPE_RAW:
		put_data(f, payload, h->len);
		ret = 0;
		break;
	case BE_TYPE_METRIC:
		ret = put_metric(f, h, payload);
		break;
	case BE_TYPE_LOG:
		ret = put_log(f, h, payload);
		break;
	case BE_TYPE_PROCESS:
		ret = put_process(f, h, payload);
		break;
	default:
		ret = -EBADMSG;
	}
	if (ret && !b->err) {
		/* Take back what the decoded part wrote; show the bytes instead. */
		b->len = body;
		put_error(f, h, payload, ret);
	}
	return finish(f, start, ret);
}

int recfmt_snapshot(struct recfmt *f, const struct rec_hdr *const *hdrs,
		    const void *const *payloads, size_t n)
{
	struct recfmt_buf *b = &f->out;
	const struct rec_hdr *h0 = hdrs[0];
	size_t start = b->len;
	struct codec_process p;

	if (n == 0 || codec_decode_process(payloads[0], h0->len, &p))
		return -EBADMSG;
	if (f->json) {
		recfmt_lit(b, "{\"seq\":");
		recfmt_u64(b, h0->seq);
		j_u64(b, "\"last_seq\"", hdrs[n - 1]->seq);
		recfmt_lit(b, ",\"ts\":\"");
		recfmt_time(b, h0->ts_ns);
		recfmt_lit(b, "\"");
		j_u64(b, "\"ts_ns\"", h0->ts_ns);
		j_u64(b, "\"pid\"", h0->pid);
		recfmt_lit(b, ",\"type\":\"process_snapshot\"");
		j_u64(b, "\"snapshot_id\"", p.snapshot_id);
		j_time(b, "snapshot_ts", p.snapshot_ts_ns);
		j_u64(b, "\"count\"", n);
		recfmt_lit(b, ",\"processes\":[");
	} else {
		recfmt_lit(b, "seq=");
		recfmt_u64(b, h0->seq);
		recfmt_lit(b, "..");
		recfmt_u64(b, hdrs[n - 1]->seq);
		t_time(b, " ts=", h0->ts_ns);
		t_u64(b, " pid=", h0->pid);
		recfmt_lit(b, " type=process_snapshot");
		t_u64(b, " snapshot=", p.snapshot_id);
		t_time(b, " snapshot_ts=", p.snapshot_ts_ns);
		t_u64(b, " count=", n);
		recfmt_lit(b, "\n");
	}
	for (size_t i = 0; i < n; i++) {
		if (i && codec_decode_process(payloads[i], hdrs[i]->len, &p)) {
			b->len = start;
			b->err = 0;
			return -EBADMSG;
		}
		if (f->json) {
			if (i)
				recfmt_lit(b, ",");
			recfmt_lit(b, "{\"seq\":");
			recfmt_u64(b, hdrs[i]->seq);
			put_proc_fields(f, &p);
			recfmt_lit(b, "}");
		} else {
			t_u64(b, "  seq=", hdrs[i]->seq);
			put_proc_fields(f, &p);
			recfmt_lit(b, "\n");
		}
	}
	if (f->json)
		recfmt_lit(b, "]}\n");
	if (b->err) {
		b->len = start;
		b->err = 0;
		return -ENOMEM;
	}
	return 0;
}

int recfmt_init(struct recfmt *f, int json, const char *prog, size_t cap)
{
	memset(f, 0, sizeof(*f));
	f->json = json;
	f->prog = prog;
	return recfmt_buf_init(&f->out, cap);
}

void recfmt_free(struct recfmt *f)
{
	recfmt_buf_free(&f->out);
}
