/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of segment batches and
 * file headers.
 *
 * The standard reflected CRC-32C (polynomial 0x1EDC6F41, reflected
 * 0x82F63B78) with the initial and final inversion done inside, so that a
 * value can be carried from one call to the next:
 *
 *	crc32c(0, "123456789", 9) == 0xE3069283
 *	crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a || b, na + nb)
 *
 * crc32c() uses the SSE4.2 crc32 instruction when the CPU has it and a
 * slicing-by-8 table otherwise; both give the same values.
 */
#ifndef BE_CRC32C_H
#define BE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * crc32c() - extend the CRC-32C @crc (0 to start) over @len bytes at @buf.
 * @buf needs no particular alignment; @len may be 0 (returns @crc).
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* crc32c_sw() - the same with the table only, whatever the CPU (for tests). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* crc32c_hw_available() - 1 when crc32c() uses the SSE4.2 instruction, else 0. */
int crc32c_hw_available(void);

#endif /* BE_CRC32C_H */
