/*
 * ring.h - the ring as every process sees it: names, creation (daemon
 * only), opening and validation, the writers' append and the reader's
 * record walk.  The layout itself is in layout.h; the lock in lock.h.
 *
 * Nothing read from the shared header is trusted after open: capacity and
 * mask are copied into struct ring_map once, validated, and never re-read.
 */
#ifndef BE_RING_H
#define BE_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <sys/types.h>

#include "shm/layout.h"

#define RING_SHM_PREFIX "bufferengine."
#define RING_SHM_DIR "/dev/shm"
/* "/bufferengine." + instance + "." + store + ".tmp" + NUL */
#define RING_SHM_NAME_MAX (1 + 13 + 63 + 1 + 63 + 4 + 1)

/* A mapped ring.  Everything but hdr/data is a private, validated copy. */
struct ring_map {
	struct ring_hdr *hdr;  /* the shared header page */
	uint8_t *data;         /* the shared data area */
	uint64_t capacity;     /* validated copy of hdr->capacity */
	uint64_t mask;         /* capacity - 1 */
	uint64_t incarnation;  /* validated copy */
	uint32_t store_type;   /* validated copy */
	uint32_t on_full;      /* validated copy */
	uint32_t max_payload;  /* validated copy */
	uint64_t first_seq;    /* validated copy */
	size_t map_len;        /* RING_HDR_SIZE + capacity */
	int fd;                /* the shm object, O_CLOEXEC; -1 once closed */
	char store[64];        /* the store's name */
};

/* What ring_create() builds. */
struct ring_params {
	const char *store;     /* valid store name */
	uint64_t capacity;     /* power of two in [RING_CAP_MIN, RING_CAP_MAX] */
	uint32_t store_type;   /* enum be_type */
	uint32_t on_full;      /* RING_ON_FULL_* */
	uint64_t first_seq;    /* next_seq of the new ring, >= 1 */
	uint64_t flush_bytes;  /* doorbell threshold */
	uint32_t mode;         /* e.g. 0660: set exactly, whatever the umask */
	int set_gid;           /* 1: give the ring to group gid (0: the creator's group) */
	gid_t gid;             /* with set_gid: the ring's group */
};

/* ring_name_valid() - 1 when s matches [A-Za-z0-9_-]{1,63}, else 0. */
int ring_name_valid(const char *s);

/* ring_default_instance() - $BE_INSTANCE when set and valid, else "default". */
const char *ring_default_instance(void);

/*
 * ring_shm_name() - "/bufferengine.<instance>.<store>" into out.
 * Returns 0, or -EINVAL for a bad name.
 */
int ring_shm_name(char *out, size_t len, const char *instance, const char *store);

/*
 * ring_create() - build a new ring atomically: create "<name>.tmp" (any
 * leftover removed first; O_EXCL and O_NOFOLLOW, so nothing planted under
 * that name is followed or reused), reserve the space with fallocate, give
 * it to p->gid (fchown, group only) when p->set_gid, set the mode with
 * fchmod (so the umask never narrows it), initialise the header and the
 * lock, then rename into place.  All of that happens to the temporary
 * object: the ring appears with its final owner, group and mode.
 * Fails with -EEXIST if the ring already exists (it is never replaced).
 * Returns 0 and a mapped ring in *out, or -errno (-ENOSPC: /dev/shm full,
 * -EPERM: the creator may not give the object to p->gid).
 */
int ring_create(const char *instance, const struct ring_params *p, struct ring_map *out);

/*
 * ring_validate() - check a header read from shared memory against the
 * object's size; fills the validated copies in *m (not hdr/data).
 * Returns 0, -EPROTO (another major version), -EBADMSG (anything else
 * wrong: magic, sizes, capacity, type, head/tail beyond capacity).
 */
int ring_validate(const struct ring_hdr *h, uint64_t file_size, struct ring_map *m);

#define RING_OPEN_RDONLY 0x1   /* map read-only (shm-dump) */
#define RING_OPEN_NO_PIDNS 0x2 /* skip the pid-namespace check (readers) */
#define RING_OPEN_OWNED 0x4    /* refuse a ring the caller's euid does not own (the daemon) */

/*
 * ring_open() - open and map an existing ring, then ring_validate() it and,
 * unless RING_OPEN_NO_PIDNS, check that the caller shares the ring's pid
 * namespace.  The name is never followed: a symbolic link under it (planted
 * in the world-writable /dev/shm) is refused with -ELOOP, anything but a
 * regular file with -EBADMSG, before anything is mapped.
 * Returns 0, -ENOENT, -EACCES (no permission: not in the ring's group),
 * -ELOOP (a symbolic link), -EPERM (RING_OPEN_OWNED and another owner),
 * -EPROTO, -EBADMSG, -EXDEV (another pid namespace), -EINVAL (bad names),
 * or -errno.
 */
int ring_open(const char *instance, const char *store, int flags, struct ring_map *out);

/* ring_unmap() - unmap and close; safe on a zeroed or already unmapped map. */
void ring_unmap(struct ring_map *m);

/* ring_unlink() - remove a ring's shm object (tests and tools). */
int ring_unlink(const char *instance, const char *store);

/*
 * ring_append() - append one record: lock, check space, write the record
 * with seq = next_seq, publish head with a release store, unlock.
 * @cached_tail: the caller's last view of the tail (in and out)
 * @timeout_ms:  -1 forever, 0 no waiting, else ms for the lock and space
 * @seq_out:     receives the record's seq, stored under the lock (so that
 *               stores through one pointer by all appenders are in seq
 *               order: a handle's last seq needs no atomic max); may be NULL
 *
 * The append that takes the unflushed bytes over hdr->flush_bytes rings
 * the daemon's doorbell, after the unlock.
 *
 * len is checked against max_payload here, once, before the lock: callers
 * pass it as they got it.  Returns 0, -EMSGSIZE (len > max_payload),
 * -ENOBUFS (full, drop policy), -ETIMEDOUT, -EBADMSG (the header is
 * damaged: nothing written).
 */
int ring_append(struct ring_map *m, uint64_t *cached_tail, uint16_t type, const void *payload,
		size_t len, uint64_t ts_ns, uint32_t pid, int timeout_ms, uint64_t *seq_out);

/*
 * ring_append_many() - append n records of one type, payloads iov[0..n),
 * under one lock.  All are checked first, in one pass: -EINVAL for n >
 * INT_MAX or a NULL iov_base with a length, -EMSGSIZE for a length over
 * max_payload (nothing is written then).  They are
 * published together by one release store of head, or in parts when the
 * ring fills in the middle (what is written is published before the wait
 * for space, which is a wait like any other).  Returns the count appended
 * (it stops at the first that fails: a full ring under drop, a timeout),
 * or -errno when none was; the last seq is stored into *last_seq under the
 * lock, as ring_append() does.
 */
int ring_append_many(struct ring_map *m, uint64_t *cached_tail, uint16_t type,
		     const struct iovec *iov, size_t n, uint64_t ts_ns, uint32_t pid,
		     int timeout_ms, uint64_t *last_seq);

/* ring_doorbell() - wake the daemon (bump doorbell_gen, FUTEX_WAKE). */
void ring_doorbell(struct ring_map *m);

/* The result of ring_collect(). */
struct ring_batch {
	uint64_t start_pos;   /* = tail given */
	uint64_t end_pos;     /* position after the last record taken (padding included) */
	uint64_t bytes;       /* bytes written to out */
	uint32_t count;       /* records written to out */
	uint64_t first_seq;
	uint64_t last_seq;
	uint64_t bad_pos;     /* with -EBADMSG: where the damage starts */
	uint64_t need;        /* with -E2BIG: the out space the next record needs */
};

/*
 * ring_collect() - copy the records in [tail, head) into out, padding
 * left out, each record header read once from shared memory, validated
 * (alignment, type, length within the area and below head, seq at least
 * min_seq and increasing), then written to out from that private copy.
 * Stops at head, at cap, or at the first damaged record.
 *
 * Returns 0 (res describes what was copied; count may be 0 when tail ==
 * head), -E2BIG (nothing copied: the first record needs res->need bytes),
 * or -EBADMSG (res describes the good records before res->bad_pos).
 * Never reads outside the data area whatever the ring holds.
 */
int ring_collect(const struct ring_map *m, uint64_t tail, uint64_t head, uint64_t min_seq,
		 uint8_t *out, size_t cap, struct ring_batch *res);

#endif /* BE_RING_H */
