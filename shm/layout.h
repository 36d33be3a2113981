/*
 * layout.h - the bytes every process of an instance shares: the ring header
 * page and the record header.  This file is the contract between writers,
 * the daemon and shm-dump; change it only with a new layout version.
 *
 * A ring is one shm object, /dev/shm/bufferengine.<instance>.<store>:
 *
 *   [0, 4096)              struct ring_hdr
 *   [4096, 4096+capacity)  data area, capacity a power of two
 *
 * Positions (head, tail, durable) are free-running 64-bit byte counts,
 * masked with capacity-1 on access.  The data area holds records, each a
 * struct rec_hdr and its payload, padded to 8 bytes.  A record never crosses
 * the end of the data area: the writer first fills the rest of the area with
 * one padding marker (REC_TYPE_PAD, len = bytes to the end; its first 8
 * bytes are enough to mark it, so it fits any remainder).
 *
 * Only fixed-width types live here: no pointers, bool, size_t or long.
 */
#ifndef BE_LAYOUT_H
#define BE_LAYOUT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAGIC UINT64_C(0x474e495246554245) /* "EBUFRING" little-endian */
#define RING_VERSION_MAJOR 1
#define RING_VERSION_MINOR 0
#define RING_VERSION ((RING_VERSION_MAJOR << 16) | RING_VERSION_MINOR)
#define RING_HDR_SIZE 4096u
#define RING_CACHELINE 64

#define RING_CAP_MIN (UINT64_C(1) << 12)  /* 4 KiB */
#define RING_CAP_MAX (UINT64_C(1) << 34)  /* 16 GiB */
#define RING_PAYLOAD_MAX (UINT32_C(1) << 28) /* a record's payload, whatever the ring */
/*
 * Seqs: a ring's first seq is below RING_SEQ_FIRST_MAX, so that the next
 * ring's (the next multiple of 2^32 above the disk's highest) never wraps,
 * and a record's seq is below first_seq + RING_SEQ_SPAN (2^56 records: a
 * century at 20 million a second).  A seq outside is damage.
 */
#define RING_SEQ_FIRST_MAX (UINT64_C(1) << 62)
#define RING_SEQ_SPAN (UINT64_C(1) << 56)

/* Daemon state values (ring_hdr.daemon_state). */
#define RING_DAEMON_NONE 0    /* no daemon has attached since creation */
#define RING_DAEMON_RUNNING 1
#define RING_DAEMON_STOPPED 2 /* the daemon exited cleanly */
#define RING_DAEMON_QUARANTINED 3 /* the daemon stopped flushing this store */

/* on_full policy values (ring_hdr.on_full). */
#define RING_ON_FULL_BLOCK 0
#define RING_ON_FULL_DROP 1

/*
 * struct ring_hdr - the header page.  Grouped by writer, one cache line a
 * group, so that writers and the daemon do not share lines they write.
 */
struct ring_hdr {
	/* --- identity: written by the creator before the rename, then read-only --- */
	uint64_t magic;           /* RING_MAGIC */
	uint32_t version;         /* RING_VERSION: major << 16 | minor */
	uint32_t hdr_size;        /* RING_HDR_SIZE */
	uint64_t capacity;        /* data bytes, a power of two */
	uint64_t incarnation;     /* random, drawn at creation, never 0 */
	uint32_t store_type;      /* enum be_type */
	uint32_t on_full;         /* RING_ON_FULL_* */
	uint64_t pidns_ino;       /* creator's pid namespace: st_ino of /proc/self/ns/pid */
	uint64_t pidns_dev;       /* ... and st_dev */
	uint64_t first_seq;       /* next_seq at creation */
	uint64_t created_ns;      /* CLOCK_REALTIME at creation */
	char store_name[64];      /* NUL-terminated, for shm-dump */
	uint32_t max_payload;     /* largest payload: capacity / 4, at most RING_PAYLOAD_MAX */
	uint32_t mode;            /* the shm object's mode at creation */
	uint8_t _pad_ident[256 - 144];

	/* --- writers: everything here is written under the lock --- */
	uint8_t lock[64];         /* pthread_mutex_t, robust and process-shared */
	uint64_t head;            /* end of the published records; release-stored */
	uint64_t next_seq;        /* seq of the next record */
	uint8_t _pad_writers[128 - 80];

	/* --- daemon: written only by the daemon (and read by everyone) --- */
	uint64_t tail;            /* bytes before this are in a segment; ring space reusable */
	uint64_t durable_pos;     /* bytes before this are covered by an fdatasync */
	uint64_t durable_seq;     /* every record with seq < this is durable */
	uint64_t heartbeat_ns;    /* CLOCK_MONOTONIC of the daemon's last beat */
	uint64_t flush_bytes;     /* unflushed bytes that make a writer ring the doorbell */
	uint32_t daemon_pid;      /* pid of the daemon that last attached */
	uint32_t daemon_state;    /* RING_DAEMON_* */
	int32_t last_error;       /* -errno of the last flush failure, 0 if none */
	uint32_t _pad_daemon0;
	uint64_t last_error_ns;   /* CLOCK_REALTIME of last_error */

	/* --- futex words: 32-bit generations, each beside what it guards --- */
	uint32_t space_gen;       /* bumped by the daemon after tail moves */
	uint32_t durable_gen;     /* bumped by the daemon after durable moves */
	uint32_t doorbell_gen;    /* bumped by writers to wake the daemon */
	uint32_t reserved_futex;  /* 0 */
	uint64_t flush_req_seq;   /* highest seq a be_flush wants durable */
	/*
	 * Records the daemon wrote and whose fdatasync then failed (sync =
	 * none): they may not be on disk and are never reported durable;
	 * be_flush for a seq in [lost_seq_from, lost_seq_to) fails with -EIO.
	 * Written by the daemon, from before durable_seq passes them.
	 */
	uint64_t lost_seq_from;
	uint64_t lost_seq_to;
	uint8_t _pad_futex[64 - 40];

	/* --- counters (monotonic; relaxed atomics) --- */
	uint64_t drops;           /* records refused with -ENOBUFS (on_full = drop) */
	uint64_t full_waits;      /* appends that had to wait for space */
	uint64_t lock_recoveries; /* lock taken over from a dead holder */
	uint64_t lock_timeouts;   /* lock waits that timed out */
	uint64_t doorbells;       /* doorbell rings by writers */
	uint64_t batches;         /* batches the daemon wrote */
	uint64_t syncs;           /* fdatasyncs the daemon completed */
	uint64_t damaged_bytes;   /* ring bytes the daemon skipped as damaged */
	uint64_t segments_deleted; /* closed segments removed by retention */
	uint8_t _pad_counters[4096 - 584];
};

_Static_assert(sizeof(struct ring_hdr) == RING_HDR_SIZE, "ring header is one page");
_Static_assert(offsetof(struct ring_hdr, magic) == 0, "layout");
_Static_assert(offsetof(struct ring_hdr, version) == 8, "layout");
_Static_assert(offsetof(struct ring_hdr, capacity) == 16, "layout");
_Static_assert(offsetof(struct ring_hdr, incarnation) == 24, "layout");
_Static_assert(offsetof(struct ring_hdr, store_type) == 32, "layout");
_Static_assert(offsetof(struct ring_hdr, pidns_ino) == 40, "layout");
_Static_assert(offsetof(struct ring_hdr, first_seq) == 56, "layout");
_Static_assert(offsetof(struct ring_hdr, store_name) == 72, "layout");
_Static_assert(offsetof(struct ring_hdr, max_payload) == 136, "layout");
_Static_assert(offsetof(struct ring_hdr, lock) == 256, "writers' line");
_Static_assert(offsetof(struct ring_hdr, head) == 320, "writers' line");
_Static_assert(offsetof(struct ring_hdr, next_seq) == 328, "writers' line");
_Static_assert(offsetof(struct ring_hdr, tail) == 384, "daemon's line");
_Static_assert(offsetof(struct ring_hdr, durable_pos) == 392, "daemon's line");
_Static_assert(offsetof(struct ring_hdr, durable_seq) == 400, "daemon's line");
_Static_assert(offsetof(struct ring_hdr, daemon_pid) == 424, "daemon's line");
_Static_assert(offsetof(struct ring_hdr, last_error_ns) == 440, "daemon's line");
_Static_assert(offsetof(struct ring_hdr, space_gen) == 448, "futex line");
_Static_assert(offsetof(struct ring_hdr, flush_req_seq) == 464, "futex line");
_Static_assert(offsetof(struct ring_hdr, lost_seq_to) == 480, "futex line");
_Static_assert(offsetof(struct ring_hdr, drops) == 512, "counters' line");
_Static_assert(offsetof(struct ring_hdr, damaged_bytes) == 568, "counters' line");
_Static_assert(offsetof(struct ring_hdr, segments_deleted) == 576, "counters' line");
_Static_assert(sizeof(pthread_mutex_t) <= 64, "the mutex fits its slot");
_Static_assert(_Alignof(pthread_mutex_t) <= 8, "the mutex slot is 8-aligned");

/* Record types beyond enum be_type. */
#define REC_TYPE_PAD 0xffffu

/*
 * struct rec_hdr - in front of every record, in the ring and in segments.
 * A record occupies rec_size(len) bytes: header, payload, zero padding to 8.
 */
struct rec_hdr {
	uint32_t len;   /* payload bytes; for REC_TYPE_PAD: bytes to the end of the area */
	uint16_t type;  /* enum be_type, or REC_TYPE_PAD */
	uint16_t flags; /* 0 */
	uint64_t seq;   /* the store's sequence number */
	uint64_t ts_ns; /* CLOCK_REALTIME when written */
	uint32_t pid;   /* writer's pid, as it says */
	uint32_t reserved; /* 0 */
};
_Static_assert(sizeof(struct rec_hdr) == 32, "record header layout");
_Static_assert(offsetof(struct rec_hdr, seq) == 8, "record header layout");
_Static_assert(offsetof(struct rec_hdr, ts_ns) == 16, "record header layout");
_Static_assert(offsetof(struct rec_hdr, pid) == 24, "record header layout");

#define REC_ALIGN 8u
#define REC_PAD_MIN 8u /* a padding marker needs len and type only */

static inline uint64_t rec_size(uint64_t len)
{
	return (sizeof(struct rec_hdr) + len + (REC_ALIGN - 1)) & ~(uint64_t)(REC_ALIGN - 1);
}

#endif /* BE_LAYOUT_H */
