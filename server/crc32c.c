/*
 * crc32c.c - CRC-32C for segment batches: the SSE4.2 crc32 instruction
 * when the CPU has it, else slicing-by-8 over a table built once.
 *
 * Both paths keep the CRC register inverted (~crc) while they run, so a
 * caller sees the plain finished value and can chain calls.  Loads go
 * through memcpy: buffers come from files and need not be aligned, and the
 * compiler turns a fixed-size memcpy into one load.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "server/crc32c.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#endif

#define CRC32C_POLY 0x82f63b78u /* 0x1EDC6F41 reflected */

static uint32_t crc_table[8][256];
static int crc_use_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = crc_table[0][n];

		for (int k = 1; k < 8; k++) {
			c = crc_table[0][c & 0xff] ^ (c >> 8);
			crc_table[k][n] = c;
		}
	}
#ifdef CRC32C_HAVE_X86
	__builtin_cpu_init();
	crc_use_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

static inline uint64_t load_le64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* The table path on the inverted register. */
static uint32_t crc_sw_run(uint32_t c, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
		len--;
	}
	while (len >= 8) {
		uint64_t v = load_le64(p) ^ c;
		uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);

		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c;
}

#ifdef CRC32C_HAVE_X86
/*
 * The instruction path on the inverted register.  Three independent
 * streams hide the instruction's 3-cycle latency on long buffers; their
 * CRCs are joined by crc_shift() below.
 */
#define CRC_HW_BLOCK ((size_t)4096) /* bytes per stream in one round */

static uint32_t crc_shift_table[4][256]; /* multiply by x^(8 * CRC_HW_BLOCK) */

__attribute__((target("sse4.2")))
static inline uint32_t crc_hw_short(uint32_t c, const unsigned char *p, size_t len)
{
	uint64_t c64 = c;

	while (len && ((uintptr_t)p & 7)) {
		c64 = _mm_crc32_u8((uint32_t)c64, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, sizeof(v));
		c64 = _mm_crc32_u64(c64, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		c64 = _mm_crc32_u8((uint32_t)c64, *p++);
	return (uint32_t)c64;
}

/* crc_shift() - the register after CRC_HW_BLOCK zero bytes, by table. */
static inline uint32_t crc_shift(uint32_t c)
{
	return crc_shift_table[0][c & 0xff] ^ crc_shift_table[1][(c >> 8) & 0xff] ^
	       crc_shift_table[2][(c >> 16) & 0xff] ^ crc_shift_table[3][c >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw_run(uint32_t c, const unsigned char *p, size_t len)
{
	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8(c, *p++);
		len--;
	}
	while (len >= 3 * CRC_HW_BLOCK) {
		uint64_t c0 = c, c1 = 0, c2 = 0;
		const unsigned char *end = p + CRC_HW_BLOCK;

		/*
		 * Streams 1 and 2 start from a zero register: by linearity
		 * the full CRC is shift(shift(c0) ^ c1) ^ c2.
		 */
		do {
			uint64_t v0, v1, v2;

			memcpy(&v0, p, 8);
			memcpy(&v1, p + CRC_HW_BLOCK, 8);
			memcpy(&v2, p + 2 * CRC_HW_BLOCK, 8);
			c0 = _mm_crc32_u64(c0, v0);
			c1 = _mm_crc32_u64(c1, v1);
			c2 = _mm_crc32_u64(c2, v2);
			p += 8;
		} while (p < end);
		c = crc_shift(crc_shift((uint32_t)c0) ^ (uint32_t)c1) ^ (uint32_t)c2;
		p += 2 * CRC_HW_BLOCK;
		len -= 3 * CRC_HW_BLOCK;
	}
	return crc_hw_short(c, p, len);
}

/*
 * crc_shift_init() - tables for the linear map "append CRC_HW_BLOCK zero
 * bytes" on the register: built from the images of the 32 single bits.
 */
static void crc_shift_init(void)
{
	static const unsigned char zeros[CRC_HW_BLOCK];
	uint32_t bit_image[32];

	for (int b = 0; b < 32; b++)
		bit_image[b] = crc_sw_run(UINT32_C(1) << b, zeros, sizeof(zeros));
	for (int k = 0; k < 4; k++) {
		for (uint32_t n = 0; n < 256; n++) {
			uint32_t v = 0;

			for (int b = 0; b < 8; b++)
				if (n & (1u << b))
					v ^= bit_image[8 * k + b];
			crc_shift_table[k][n] = v;
		}
	}
}
#endif /* CRC32C_HAVE_X86 */

static void crc_once_init(void)
{
	crc_init();
#ifdef CRC32C_HAVE_X86
	if (crc_use_hw)
		crc_shift_init();
#endif
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_once_init);
	return ~crc_sw_run(~crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc_once, crc_once_init);
#ifdef CRC32C_HAVE_X86
	if (crc_use_hw)
		return ~crc_hw_run(~crc, buf, len);
#endif
	return ~crc_sw_run(~crc, buf, len);
}

int crc32c_hw_available(void)
{
	pthread_once(&crc_once, crc_once_init);
	return crc_use_hw;
}
