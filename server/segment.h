/*
 * segment.h - the on-disk format of a store: segment files of batches.
 *
 * A store's directory <data_dir>/<store>/ holds segments named after the
 * first seq they may hold, 20 digits: 00000000004294967296.seg.  A segment
 * is a struct seg_file_hdr, then batches, each a struct seg_batch_hdr and
 * `length` bytes of records (struct rec_hdr + payload, 8-aligned, exactly as
 * in the ring, never a padding record).  All integers are little-endian.
 *
 * The batch CRC32C covers the batch header with its crc field zeroed and
 * then the records, so a batch is checked as one unit.  start_pos/end_pos
 * and incarnation name the ring bytes the batch holds: recovery uses them
 * to tell the ring how far the disk already goes.
 *
 * This module only encodes, decodes and scans; it never writes files on
 * its own except seg_create() (the daemon owns offsets and io_uring).
 */
#ifndef BE_SEGMENT_H
#define BE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/layout.h"

#define SEG_FILE_MAGIC UINT64_C(0x31474553464e4542)   /* "BENFSEG1" little-endian */
#define SEG_FILE_VERSION 1
#define SEG_FILE_HDR_SIZE 128u
#define SEG_BATCH_MAGIC UINT32_C(0x48544142)          /* "BATH" little-endian */
#define SEG_BATCH_VERSION 1
#define SEG_BATCH_HDR_SIZE 64u
#define SEG_BATCH_MAX (UINT32_C(1) << 30)             /* bytes of records in one batch */
#define SEG_NAME_LEN 24                               /* 20 digits + ".seg" */

struct seg_file_hdr {
	uint64_t magic;        /* SEG_FILE_MAGIC */
	uint32_t version;      /* SEG_FILE_VERSION */
	uint32_t hdr_size;     /* SEG_FILE_HDR_SIZE */
	uint64_t first_seq;    /* the seq in the file name */
	uint64_t created_ns;   /* CLOCK_REALTIME */
	uint32_t store_type;   /* enum be_type */
	uint32_t crc;          /* CRC32C of this header with crc = 0 */
	char store_name[64];   /* NUL-terminated */
	uint8_t _pad[128 - 104];
};
_Static_assert(sizeof(struct seg_file_hdr) == SEG_FILE_HDR_SIZE, "segment header");
_Static_assert(offsetof(struct seg_file_hdr, crc) == 36, "segment header");
_Static_assert(offsetof(struct seg_file_hdr, store_name) == 40, "segment header");

struct seg_batch_hdr {
	uint32_t magic;        /* SEG_BATCH_MAGIC */
	uint16_t version;      /* SEG_BATCH_VERSION */
	uint16_t flags;        /* 0 */
	uint32_t crc;          /* CRC32C of this header (crc = 0) and the records */
	uint32_t count;        /* records in the batch, >= 1 */
	uint64_t incarnation;  /* the ring's incarnation */
	uint64_t start_pos;    /* ring position of the batch's first byte */
	uint64_t end_pos;      /* ring position after its last byte (padding included) */
	uint64_t first_seq;    /* seq of the first record */
	uint64_t last_seq;     /* seq of the last record */
	uint32_t length;       /* bytes of records that follow, a multiple of 8 */
	uint32_t reserved;     /* 0 */
};
_Static_assert(sizeof(struct seg_batch_hdr) == SEG_BATCH_HDR_SIZE, "batch header");
_Static_assert(offsetof(struct seg_batch_hdr, incarnation) == 16, "batch header");
_Static_assert(offsetof(struct seg_batch_hdr, length) == 56, "batch header");

/*
 * seg_file_hdr_init() - fill a file header for a new segment.
 */
void seg_file_hdr_init(struct seg_file_hdr *h, uint64_t first_seq, uint32_t store_type,
		       const char *store_name);

/*
 * seg_file_hdr_check() - validate a file header read from disk.
 * Returns 0, -EBADMSG (bad magic or crc, unterminated name), -EPROTO
 * (another version).
 */
int seg_file_hdr_check(const struct seg_file_hdr *h);

/*
 * seg_batch_seal() - fill in the crc of a batch whose header fields and
 * records are in place: buf = header followed by h->length record bytes.
 */
void seg_batch_seal(void *buf);

/*
 * seg_batch_check() - validate one batch in memory: the header, then that
 * `avail` bytes hold it all, the CRC, and every record inside (length,
 * type not PAD, seqs strictly increasing from first_seq to last_seq,
 * count).  Returns 0, -EBADMSG (damaged), -EPROTO (another version),
 * -ENODATA (avail is shorter than the batch claims).
 */
int seg_batch_check(const void *buf, size_t avail);

/* seg_name() - "<first_seq, 20 digits>.seg" into out[SEG_NAME_LEN + 1]. */
void seg_name(char *out, uint64_t first_seq);

/* seg_parse_name() - 0 and *first_seq when name is a segment name, else -EINVAL. */
int seg_parse_name(const char *name, uint64_t *first_seq);

/*
 * seg_list() - the segments of a store directory, sorted by first seq.
 * Returns the count (>= 0) and a malloc'ed array in *out, or -errno.
 */
int seg_list(int dirfd, uint64_t **out);

/* One valid batch found by seg_scan(). */
struct seg_batch_ref {
	const struct seg_batch_hdr *hdr; /* in the scan's buffer */
	const uint8_t *records;          /* hdr->length bytes */
	uint64_t offset;                 /* the batch's offset in the file */
};

/* What seg_scan() found in one file. */
struct seg_scan_result {
	uint64_t file_size;
	uint64_t valid_end;       /* offset after the last valid batch (or the file header) */
	uint64_t batches;         /* valid batches */
	uint64_t records;         /* records in valid batches */
	uint64_t first_seq, last_seq;  /* of valid records; 0 when none */
	uint64_t last_incarnation;     /* of the last valid batch; 0 when none */
	uint64_t last_start_pos, last_end_pos; /* of the last valid batch */
	uint64_t corrupt;         /* damaged regions followed by a valid batch */
	uint64_t first_corrupt_offset; /* offset of the first one, when corrupt > 0 */
	uint64_t torn_bytes;      /* bytes after valid_end that hold no valid batch */
};

/*
 * seg_scan() - read a whole segment and walk its batches.
 * @fd:   open for reading
 * @cb:   called for each valid batch in file order (may be NULL); a
 *        non-zero return stops the scan and is returned
 * @bad:  called for each damaged region that a valid batch follows (may be
 *        NULL): its offset and length
 *
 * A damaged region is skipped by searching, 8-aligned, for the next batch
 * that passes seg_batch_check().  Bytes after the last valid batch are the
 * torn tail (res->torn_bytes), not corruption.  Returns 0, -EBADMSG when
 * the file header is bad, -EPROTO for another version, or -errno from I/O.
 */
typedef int (*seg_batch_fn)(const struct seg_batch_ref *b, void *arg);
typedef void (*seg_bad_fn)(uint64_t offset, uint64_t len, void *arg);
int seg_scan(int fd, struct seg_scan_result *res, seg_batch_fn cb, seg_bad_fn bad, void *arg);

/*
 * seg_create() - create <dirfd>/<name of first_seq> with its file header,
 * fdatasync it and the directory.  An existing file of that name is
 * replaced only when it holds no valid batch.  Returns an fd open for
 * writing (O_CLOEXEC) or -errno.
 */
int seg_create(int dirfd, uint64_t first_seq, uint32_t store_type, const char *store_name);

#endif /* BE_SEGMENT_H */
