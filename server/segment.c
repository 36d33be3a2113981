/*
 * segment.c - encode, check and scan segment files (the format is in
 * segment.h).
 *
 * Everything read from a file is untrusted: headers are copied out with
 * memcpy (so no alignment is assumed) and every length is checked against
 * the bytes really there before it is used.  The scan reads a whole
 * segment into memory and walks it; a region that is not a valid batch is
 * skipped by searching forward, 8-aligned, for the next one that is.
 * Whether such a region is corruption (a valid batch follows) or a torn
 * tail (none does) is for the caller to act on: this file never truncates
 * or rewrites anything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/crc32c.h"
#include "server/hooks.h"
#include "server/segment.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "segments are little-endian and read in place");

/* Refuse files larger than this: a segment is read whole into memory. */
#define SEG_SCAN_MAX (UINT64_C(4) << 30)

static uint32_t file_hdr_crc(const struct seg_file_hdr *h)
{
	struct seg_file_hdr tmp = *h;

	tmp.crc = 0;
	return crc32c(0, &tmp, sizeof(tmp));
}

void seg_file_hdr_init(struct seg_file_hdr *h, uint64_t first_seq, uint32_t store_type,
		       const char *store_name)
{
	struct timespec ts;

	memset(h, 0, sizeof(*h));
	h->magic = SEG_FILE_MAGIC;
	h->version = SEG_FILE_VERSION;
	h->hdr_size = SEG_FILE_HDR_SIZE;
	h->first_seq = first_seq;
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0)
		h->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	h->store_type = store_type;
	if (store_name) {
		size_t n = strnlen(store_name, sizeof(h->store_name) - 1);

		memcpy(h->store_name, store_name, n);
	}
	h->crc = file_hdr_crc(h);
}

int seg_file_hdr_check(const struct seg_file_hdr *h)
{
	if (h->magic != SEG_FILE_MAGIC)
		return -EBADMSG;
	/* Another version may checksum differently: say so before the crc. */
	if (h->version != SEG_FILE_VERSION)
		return -EPROTO;
	if (h->hdr_size != SEG_FILE_HDR_SIZE)
		return -EBADMSG;
	if (h->crc != file_hdr_crc(h))
		return -EBADMSG;
	if (!memchr(h->store_name, '\0', sizeof(h->store_name)))
		return -EBADMSG;
	if (h->store_type < BE_TYPE_RAW || h->store_type > BE_TYPE_PROCESS)
		return -EBADMSG;
	return 0;
}

static uint32_t batch_crc(const struct seg_batch_hdr *h, const void *records)
{
	struct seg_batch_hdr tmp = *h;
	uint32_t crc;

	tmp.crc = 0;
	crc = crc32c(0, &tmp, sizeof(tmp));
	return crc32c(crc, records, h->length);
}

void seg_batch_seal(void *buf)
{
	struct seg_batch_hdr h;

	memcpy(&h, buf, sizeof(h));
	h.crc = batch_crc(&h, (const uint8_t *)buf + SEG_BATCH_HDR_SIZE);
	memcpy(buf, &h, sizeof(h));
}

/*
 * batch_hdr_check() - the header fields alone, nothing that needs the
 * records: magic, version, flags, reserved, count, length and positions.
 */
static int batch_hdr_check(const struct seg_batch_hdr *h)
{
	if (h->magic != SEG_BATCH_MAGIC)
		return -EBADMSG;
	if (h->version != SEG_BATCH_VERSION)
		return -EPROTO;
	if (h->flags != 0 || h->reserved != 0)
		return -EBADMSG;
	if (h->count == 0)
		return -EBADMSG;
	if (h->length % REC_ALIGN != 0 || h->length > SEG_BATCH_MAX)
		return -EBADMSG;
	/* Every record is at least a header. */
	if ((uint64_t)h->count * sizeof(struct rec_hdr) > h->length)
		return -EBADMSG;
	if (h->first_seq > h->last_seq)
		return -EBADMSG;
	if (h->start_pos >= h->end_pos || h->end_pos - h->start_pos < h->length)
		return -EBADMSG;
	return 0;
}

/* records_check() - walk h->length bytes of records against the header. */
static int records_check(const struct seg_batch_hdr *h, const uint8_t *p)
{
	uint64_t left = h->length;
	uint64_t n = 0, prev_seq = 0;

	while (left > 0) {
		struct rec_hdr r;
		uint64_t size;

		if (left < sizeof(r))
			return -EBADMSG;
		memcpy(&r, p, sizeof(r));
		size = rec_size(r.len);
		if (size > left)
			return -EBADMSG;
		if (r.type < BE_TYPE_RAW || r.type > BE_TYPE_PROCESS)
			return -EBADMSG;
		if (n == 0) {
			if (r.seq != h->first_seq)
				return -EBADMSG;
		} else if (r.seq <= prev_seq) {
			return -EBADMSG;
		}
		prev_seq = r.seq;
		if (++n > h->count)
			return -EBADMSG;
		p += size;
		left -= size;
	}
	if (n != h->count || prev_seq != h->last_seq)
		return -EBADMSG;
	return 0;
}

int seg_batch_check(const void *buf, size_t avail)
{
	const uint8_t *p = buf;
	struct seg_batch_hdr h;
	int ret;

	if (avail < SEG_BATCH_HDR_SIZE)
		return -ENODATA;
	memcpy(&h, p, sizeof(h));
	ret = batch_hdr_check(&h);
	if (ret)
		return ret;
	if (avail - SEG_BATCH_HDR_SIZE < h.length)
		return -ENODATA;
	if (h.crc != batch_crc(&h, p + SEG_BATCH_HDR_SIZE))
		return -EBADMSG;
	return records_check(&h, p + SEG_BATCH_HDR_SIZE);
}

void seg_name(char *out, uint64_t first_seq)
{
	snprintf(out, SEG_NAME_LEN + 1, "%020" PRIu64 ".seg", first_seq);
}

int seg_parse_name(const char *name, uint64_t *first_seq)
{
	uint64_t v = 0;

	if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, ".seg") != 0)
		return -EINVAL;
	for (int i = 0; i < 20; i++) {
		unsigned d = (unsigned char)name[i] - '0';

		if (d > 9)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*first_seq = v;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int seg_list(int dirfd, uint64_t **out)
{
	uint64_t *list, *grown;
	size_t n = 0, cap = 16;
	struct dirent *de;
	DIR *dir;
	int fd, ret;

	list = malloc(cap * sizeof(*list));
	if (!list)
		return -ENOMEM;
	/* fdopendir() takes over the fd it is given, so give it a copy. */
	fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err_free;
	}
	dir = fdopendir(fd);
	if (!dir) {
		ret = -errno;
		close(fd);
		goto err_free;
	}
	/* The copy shares the caller's offset, which may be anywhere. */
	rewinddir(dir);
	for (;;) {
		uint64_t seq;

		errno = 0;
		de = readdir(dir);
		if (!de) {
			if (errno) {
				ret = -errno;
				goto err_close;
			}
			break;
		}
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		if (seg_parse_name(de->d_name, &seq) < 0)
			continue;
		if (n == cap) {
			if (cap > (size_t)INT32_MAX / 2) {
				ret = -EOVERFLOW;
				goto err_close;
			}
			grown = realloc(list, 2 * cap * sizeof(*list));
			if (!grown) {
				ret = -ENOMEM;
				goto err_close;
			}
			list = grown;
			cap *= 2;
		}
		list[n++] = seq;
	}
	closedir(dir);
	qsort(list, n, sizeof(*list), cmp_u64);
	*out = list;
	return (int)n;

err_close:
	closedir(dir);
err_free:
	free(list);
	return ret;
}

/* read_all() - the whole file into a new buffer; *size gets the bytes read. */
static int read_all(int fd, uint8_t **bufp, uint64_t *size)
{
	struct stat st;
	uint8_t *buf;
	uint64_t want, got = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	if (st.st_size < 0)
		return -EINVAL;
	want = (uint64_t)st.st_size;
	if (want > SEG_SCAN_MAX)
		return -EFBIG;
	/* One byte more than needed, so that an empty file is a real buffer. */
	buf = malloc(want + 1);
	if (!buf)
		return -ENOMEM;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, (off_t)got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return -errno;
		}
		if (n == 0)
			break; /* the file shrank since fstat: take what is there */
		got += (uint64_t)n;
	}
	*bufp = buf;
	*size = got;
	return 0;
}

/*
 * next_batch() - the first offset at or after @off, 8-aligned relative to
 * the file, where a valid batch starts; @size when there is none.  The
 * magic is tested first, so a long damaged region costs a load a step.
 */
/*
 * batch_at() - 0 when a valid batch starts at off whose seqs continue the
 * file's (first_seq >= min_seq): a batch-shaped payload inside a damaged
 * region, or an old batch, cannot pass for the next one.
 */
static int batch_at(const uint8_t *buf, uint64_t size, uint64_t off, uint64_t min_seq)
{
	const struct seg_batch_hdr *h = (const struct seg_batch_hdr *)(buf + off);

	if (seg_batch_check(buf + off, size - off) != 0)
		return -EBADMSG;
	return h->first_seq >= min_seq ? 0 : -EBADMSG;
}

static uint64_t next_batch(const uint8_t *buf, uint64_t size, uint64_t off, uint64_t min_seq)
{
	for (; off + SEG_BATCH_HDR_SIZE <= size; off += 8) {
		uint32_t magic;

		memcpy(&magic, buf + off, sizeof(magic));
		if (magic != SEG_BATCH_MAGIC)
			continue;
		if (batch_at(buf, size, off, min_seq) == 0)
			return off;
	}
	return size;
}

/*
 * scan_batches() - walk the batches of buf[0, size) from the end of the
 * file header, filling res (whose file_size is set) and calling cb / bad.
 * Returns 0 or the first non-zero value of cb.
 */
static int scan_batches(const uint8_t *buf, uint64_t size, struct seg_scan_result *res,
			seg_batch_fn cb, seg_bad_fn bad, void *arg)
{
	uint64_t off = SEG_FILE_HDR_SIZE;

	res->valid_end = SEG_FILE_HDR_SIZE;
	while (off < size) {
		const struct seg_batch_hdr *h;
		struct seg_batch_ref ref;
		int ret;

		uint64_t min_seq = res->batches ? res->last_seq + 1 : 0;

		/* After seq UINT64_MAX no batch can follow (min_seq wrapped to 0): torn tail. */
		if (res->batches && min_seq == 0)
			break;
		if (batch_at(buf, size, off, min_seq) != 0) {
			uint64_t next = next_batch(buf, size, off + 8, min_seq);

			if (next >= size)
				break; /* nothing valid follows: a torn tail */
			if (res->corrupt++ == 0)
				res->first_corrupt_offset = off;
			if (bad)
				bad(off, next - off, arg);
			off = next;
		}
		/* off is 8-aligned in a malloc'ed buffer: the header may be used in place. */
		h = (const struct seg_batch_hdr *)(buf + off);
		if (res->batches++ == 0)
			res->first_seq = h->first_seq;
		res->records += h->count;
		res->last_seq = h->last_seq;
		res->last_incarnation = h->incarnation;
		res->last_start_pos = h->start_pos;
		res->last_end_pos = h->end_pos;
		off += SEG_BATCH_HDR_SIZE + h->length;
		res->valid_end = off;
		if (cb) {
			ref.hdr = h;
			ref.records = buf + (off - h->length);
			ref.offset = off - SEG_BATCH_HDR_SIZE - h->length;
			ret = cb(&ref, arg);
			if (ret)
				return ret;
		}
	}
	res->torn_bytes = size - res->valid_end;
	return 0;
}

int seg_scan(int fd, struct seg_scan_result *res, seg_batch_fn cb, seg_bad_fn bad, void *arg)
{
	struct seg_file_hdr fh;
	uint8_t *buf;
	uint64_t size;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = read_all(fd, &buf, &size);
	if (ret)
		return ret;
	res->file_size = size;
	if (size < SEG_FILE_HDR_SIZE) {
		ret = -EBADMSG;
		goto out_free;
	}
	memcpy(&fh, buf, sizeof(fh));
	ret = seg_file_hdr_check(&fh);
	if (ret)
		goto out_free;
	ret = scan_batches(buf, size, res, cb, bad, arg);
out_free:
	free(buf);
	return ret;
}

/*
 * holds_batches() - 1 when the existing file @name holds a valid batch,
 * whatever its file header says, 0 when it holds none, or -errno.  A file
 * of another version is taken as holding data: it is never ours to replace.
 */
static int holds_batches(int dirfd, const char *name)
{
	struct seg_file_hdr fh;
	struct seg_scan_result res;
	uint8_t *buf;
	uint64_t size;
	int fd, ret;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ret = read_all(fd, &buf, &size);
	close(fd);
	if (ret)
		return ret;
	ret = 0;
	/* read_all() returned 0: size is set (errno: see .clang-tidy). */
	/* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult) */
	if (size >= SEG_FILE_HDR_SIZE) {
		memcpy(&fh, buf, sizeof(fh));
		if (seg_file_hdr_check(&fh) == -EPROTO) {
			ret = 1;
		} else {
			memset(&res, 0, sizeof(res));
			res.file_size = size;
			scan_batches(buf, size, &res, NULL, NULL, NULL);
			ret = res.batches > 0;
		}
	}
	free(buf);
	return ret;
}

/* pwrite_all() - all of buf at off, through short writes and EINTR. */
static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int seg_create(int dirfd, uint64_t first_seq, uint32_t store_type, const char *store_name)
{
	/* O_EXCL refuses a symbolic link already; O_NOFOLLOW says so too. */
	const int flags = O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC;
	char name[SEG_NAME_LEN + 1];
	struct seg_file_hdr fh;
	int fd, ret;

	seg_name(name, first_seq);
	fd = openat(dirfd, name, flags, 0640);
	if (fd < 0 && errno == EEXIST) {
		/* Left by a crash during rotation?  Replace it only if it is empty of data. */
		ret = holds_batches(dirfd, name);
		if (ret < 0)
			return ret;
		if (ret > 0)
			return -EEXIST;
		if (unlinkat(dirfd, name, 0) < 0)
			return -errno;
		fd = openat(dirfd, name, flags, 0640);
	}
	if (fd < 0)
		return -errno;

	seg_file_hdr_init(&fh, first_seq, store_type, store_name);
	ret = pwrite_all(fd, &fh, sizeof(fh), 0);
	if (ret)
		goto err_unlink;
	if (hook_fdatasync(fd) < 0) {
		ret = -errno;
		goto err_unlink;
	}
	hook_synced(dirfd, name, sizeof(fh));
	hook_point("seg_created");
	/* The file counts for nothing until its directory entry is durable. */
	if (!hook_no_fdatasync() && fsync(dirfd) < 0) {
		ret = -errno;
		goto err_unlink;
	}
	hook_dirsynced(dirfd);
	return fd;

err_unlink:
	close(fd);
	unlinkat(dirfd, name, 0);
	return ret;
}
