/*
 * fuzz_util.h - what the fuzz targets share: a reader over the input, the
 * check that aborts (so libFuzzer and the replay test both see a crash),
 * and the output oracles of the record printer (one JSON object, one text
 * line, the escapers read back).
 *
 * Every fuzz target is one file tests/fuzz/fuzz_NAME.c defining
 * LLVMFuzzerTestOneInput().  `make fuzz` builds it with clang and libFuzzer;
 * the plain build compiles the same file with
 * -DLLVMFuzzerTestOneInput=fuzz_NAME_one into check_main, where
 * tests/test_fuzzreplay.c feeds it every file of tests/fuzz/corpus/NAME/ and
 * tests/fuzz/regress/NAME/.  So nothing here may need clang or libFuzzer,
 * and everything is static inline: each target is its own translation unit.
 */
#ifndef BE_FUZZ_UTIL_H
#define BE_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold: else say which and abort (a crash to libFuzzer). */
#define FUZZ_ASSERT(c)                                     \
	do {                                               \
		if (!(c))                                  \
			fuzz_fail(__FILE__, __LINE__, #c); \
	} while (0)

static inline void __attribute__((noreturn)) fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
	fflush(stderr);
	abort();
}

/* malloc that never returns NULL (a fuzz target has nothing better to do). */
static inline void *fuzz_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

/* A copy of n bytes in a buffer of exactly n bytes, so that ASan sees a read past it. */
static inline uint8_t *fuzz_dup(const void *p, size_t n)
{
	uint8_t *q = malloc(n);

	if (!q && n)
		abort();
	if (n)
		memcpy(q, p, n);
	return q;
}

/* ------------------------------------------------------------------------
 * Reading the input: fixed-width little-endian fields, zero past the end.
 */

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t fin_uint(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		if (in->n) {
			v |= (uint64_t)in->p[0] << (8 * i);
			in->p++;
			in->n--;
		}
	}
	return v;
}

static inline uint8_t fin_u8(struct fuzz_in *in)
{
	return (uint8_t)fin_uint(in, 1);
}

static inline uint16_t fin_u16(struct fuzz_in *in)
{
	return (uint16_t)fin_uint(in, 2);
}

static inline uint32_t fin_u32(struct fuzz_in *in)
{
	return (uint32_t)fin_uint(in, 4);
}

static inline uint64_t fin_u64(struct fuzz_in *in)
{
	return fin_uint(in, 8);
}

/* ------------------------------------------------------------------------
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
 */

/* The length of the valid sequence at p (n > 0 bytes there), 0 when there is none. */
static inline size_t fuzz_utf8_len(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t c = p[0];
	size_t k, i;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c < 0xe0) {
		k = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c < 0xf0) {
		k = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c < 0xf5) {
		k = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < k)
		return 0;
	for (i = 1; i < k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return k;
}

/* ------------------------------------------------------------------------
 * A strict JSON checker (RFC 8259) for the printer's output.
 */

struct fuzz_json {
	const uint8_t *p, *end;
	int depth;
};

#define FUZZ_JSON_DEPTH 16

static inline void fj_ws(struct fuzz_json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static inline int fj_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string: 0 and j->p after its closing quote, or -1. */
static inline int fj_string(struct fuzz_json *j)
{
	if (j->p >= j->end || *j->p != '"')
		return -1;
	j->p++;
	while (j->p < j->end) {
		uint8_t c = *j->p;
		uint32_t cp;
		size_t k;

		if (c == '"') {
			j->p++;
			return 0;
		}
		if (c < 0x20)
			return -1; /* a raw control byte */
		if (c == '\\') {
			if (j->end - j->p < 2)
				return -1;
			switch (j->p[1]) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				j->p += 2;
				continue;
			case 'u':
				if (j->end - j->p < 6)
					return -1;
				for (int i = 2; i < 6; i++)
					if (fj_hex(j->p[i]) < 0)
						return -1;
				j->p += 6;
				continue;
			default:
				return -1;
			}
		}
		k = fuzz_utf8_len(j->p, (size_t)(j->end - j->p), &cp);
		if (!k)
			return -1;
		j->p += k;
	}
	return -1;
}

static inline int fj_digits(struct fuzz_json *j)
{
	const uint8_t *s = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > s ? 0 : -1;
}

static inline int fj_number(struct fuzz_json *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (fj_digits(j))
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (fj_digits(j))
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (fj_digits(j))
			return -1;
	}
	return 0;
}

static inline int fj_lit(struct fuzz_json *j, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return -1;
	j->p += n;
	return 0;
}

static inline int fj_value(struct fuzz_json *j);

/*
 * An object.  With keys != NULL (the top level), the raw text of each key
 * goes there (up to max) and a key seen twice is an error: no key of a
 * record's line appears twice.
 */
static inline int fj_object(struct fuzz_json *j, const uint8_t **keys, size_t *klen, size_t max)
{
	size_t nkeys = 0;

	j->p++; /* '{' */
	fj_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return 0;
	}
	for (;;) {
		const uint8_t *k;

		fj_ws(j);
		k = j->p;
		if (fj_string(j))
			return -1;
		if (keys) {
			size_t n = (size_t)(j->p - k);

			for (size_t i = 0; i < nkeys; i++)
				if (klen[i] == n && !memcmp(keys[i], k, n))
					return -1;
			if (nkeys < max) {
				keys[nkeys] = k;
				klen[nkeys++] = n;
			}
		}
		fj_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return -1;
		j->p++;
		if (fj_value(j))
			return -1;
		fj_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return 0;
		}
		return -1;
	}
}

static inline int fj_array(struct fuzz_json *j)
{
	j->p++; /* '[' */
	fj_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;
	}
	for (;;) {
		if (fj_value(j))
			return -1;
		fj_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		return -1;
	}
}

static inline int fj_value(struct fuzz_json *j)
{
	int ret;

	fj_ws(j);
	if (j->p >= j->end)
		return -1;
	switch (*j->p) {
	case '{':
		if (++j->depth > FUZZ_JSON_DEPTH)
			return -1;
		ret = fj_object(j, NULL, NULL, 0);
		j->depth--;
		return ret;
	case '[':
		if (++j->depth > FUZZ_JSON_DEPTH)
			return -1;
		ret = fj_array(j);
		j->depth--;
		return ret;
	case '"':
		return fj_string(j);
	case 't':
		return fj_lit(j, "true");
	case 'f':
		return fj_lit(j, "false");
	case 'n':
		return fj_lit(j, "null");
	default:
		return fj_number(j);
	}
}

/*
 * fuzz_json_line() - 1 when s[0, n) is one JSON object with no key twice
 * at its top level, then exactly one '\n' (a JSON Lines record), else 0.
 */
static inline int fuzz_json_line(const char *s, size_t n)
{
	struct fuzz_json j = { (const uint8_t *)s, (const uint8_t *)s + n, 1 };
	const uint8_t *keys[64];
	size_t klen[64];

	if (n < 3 || s[0] != '{' || s[n - 1] != '\n')
		return 0;
	j.end--; /* the newline */
	if (fj_object(&j, keys, klen, 64))
		return 0;
	return j.p == j.end;
}

/*
 * fuzz_text_line() - 1 when s[0, n) is one line of text as the printer
 * promises: valid UTF-8, no control byte (C0, DEL or C1) but the final '\n'.
 */
static inline int fuzz_text_line(const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	if (n == 0 || p[n - 1] != '\n')
		return 0;
	n--;
	while (i < n) {
		uint32_t cp;
		size_t k = fuzz_utf8_len(p + i, n - i, &cp);

		if (!k || cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			return 0;
		i += k;
	}
	return 1;
}

/* ------------------------------------------------------------------------
 * The escapers read back.
 */

/*
 * fuzz_cstr_unescape() - the inside of a C string literal as recfmt_cstr()
 * writes it, back to bytes into out (room for n).  Returns the length, or
 * (size_t)-1 for anything recfmt_cstr() would not write: a raw '"' or
 * control byte, an escape other than \\ \" \n \t \r or three octal digits.
 */
static inline size_t fuzz_cstr_unescape(const char *s, size_t n, uint8_t *out)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, o = 0;

	while (i < n) {
		uint8_t c = p[i];

		if (c == '"' || c < 0x20 || c == 0x7f)
			return (size_t)-1;
		if (c != '\\') {
			out[o++] = c;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return (size_t)-1;
		switch (p[i + 1]) {
		case '\\':
			out[o++] = '\\';
			i += 2;
			continue;
		case '"':
			out[o++] = '"';
			i += 2;
			continue;
		case 'n':
			out[o++] = '\n';
			i += 2;
			continue;
		case 't':
			out[o++] = '\t';
			i += 2;
			continue;
		case 'r':
			out[o++] = '\r';
			i += 2;
			continue;
		default:
			break;
		}
		if (i + 3 >= n || p[i + 1] < '0' || p[i + 1] > '3' || p[i + 2] < '0' ||
		    p[i + 2] > '7' || p[i + 3] < '0' || p[i + 3] > '7')
			return (size_t)-1;
		out[o++] =
			(uint8_t)((p[i + 1] - '0') << 6 | (p[i + 2] - '0') << 3 | (p[i + 3] - '0'));
		i += 4;
	}
	return o;
}

/*
 * fuzz_json_unescape() - a JSON string as recfmt_json_str() writes it
 * (quotes included) back to the bytes it was made of: \u00XX is the byte
 * XX (that is how it escapes a byte that is not UTF-8).  Returns the
 * length, or (size_t)-1 for anything it would not write.
 */
static inline size_t fuzz_json_unescape(const char *s, size_t n, uint8_t *out)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 1, o = 0;

	if (n < 2 || p[0] != '"' || p[n - 1] != '"')
		return (size_t)-1;
	n--;
	while (i < n) {
		uint8_t c = p[i];

		if (c == '"')
			return (size_t)-1;
		if (c != '\\') {
			out[o++] = c;
			i++;
			continue;
		}
		if (i + 1 >= n)
			return (size_t)-1;
		switch (p[i + 1]) {
		case '\\':
			out[o++] = '\\';
			i += 2;
			continue;
		case '"':
			out[o++] = '"';
			i += 2;
			continue;
		case 'n':
			out[o++] = '\n';
			i += 2;
			continue;
		case 't':
			out[o++] = '\t';
			i += 2;
			continue;
		case 'r':
			out[o++] = '\r';
			i += 2;
			continue;
		case 'b':
			out[o++] = '\b';
			i += 2;
			continue;
		case 'f':
			out[o++] = '\f';
			i += 2;
			continue;
		case 'u':
			break;
		default:
			return (size_t)-1;
		}
		if (i + 5 >= n || p[i + 2] != '0' || p[i + 3] != '0' || fj_hex(p[i + 4]) < 0 ||
		    fj_hex(p[i + 5]) < 0)
			return (size_t)-1;
		out[o++] = (uint8_t)(fj_hex(p[i + 4]) << 4 | fj_hex(p[i + 5]));
		i += 6;
	}
	return o;
}

#endif /* BE_FUZZ_UTIL_H */
