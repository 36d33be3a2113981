/*
 * daemon.h - bufferengined's state: the engine and one struct store per
 * configured store.  recovery.c brings a store up from its segments and
 * ring; flusher.c moves its records from the ring to segments; the main
 * loop in bufferengined.c drives both.
 *
 * The daemon keeps its own copy of every position it owns (tail, durable,
 * the segment offset): shared memory is written from these copies and
 * never read back as truth.
 */
#ifndef BE_DAEMON_H
#define BE_DAEMON_H

#include <stdint.h>

#include "server/config.h"
#include "server/io.h"
#include "server/segment.h"
#include "shm/ring.h"

enum store_state {
	ST_IDLE = 0,   /* nothing in flight */
	ST_BUSY,       /* a batch write (+ sync), or a sync alone, in flight */
	ST_RETRY,      /* a batch failed: it waits in its buffer for retry_at */
	ST_STOPPED,    /* quarantined: not served (damaged ring, unrecoverable error) */
};

/* One batch: records copied out of the ring, sealed, written, synced. */
struct batch {
	uint8_t *buf;            /* header + records; NULL: the slot is free */
	int buf_index;           /* pool buffer, or -1: heap buffer of its own */
	struct ring_batch b;
	uint64_t off;            /* its segment offset */
	uint64_t len;            /* header + records */
	int sync;                /* it counts only once synced */
	int sync_sent;           /* its sync is queued: linked to the write, or alone after it */
	int wdone;               /* its write completed */
	int pending;             /* completions still to come */
	int res_write, res_sync;
};

struct store {
	struct cfg_store cfg;
	uint32_t index;
	struct ring_map map;
	int dirfd;               /* <data_dir>/<store> */
	int segfd;               /* the open segment, -1 before the first batch */
	uint64_t seg_first_seq;
	uint64_t seg_off;        /* where the next batch goes: the daemon owns it */
	uint64_t synced_off;     /* the open segment is durable up to here */

	/* The daemon's copies of what it publishes. */
	uint64_t tail;           /* ring bytes before this are in a segment */
	uint64_t durable_pos;    /* ring bytes before this are synced */
	uint64_t durable_seq;    /* records with seq below are synced */
	uint64_t written_seq;    /* records with seq below are in a segment */
	uint64_t lost_from;      /* seqs whose sync failed after they left the ring */
	uint64_t lost_to;

	enum store_state state;
	uint64_t next_tick_ns;   /* flush_interval */
	uint64_t next_beat_ns;   /* heartbeat */
	uint64_t next_retain_ns; /* the age limit's check */
	int armed;               /* a doorbell wait is queued */

	/*
	 * Batches in flight (or waiting for a retry), oldest first: bt[bhead],
	 * and with nbatch == 2 the next one, bt[bhead ^ 1], written while the
	 * first one syncs (flusher.c).  The slot index tags their I/O.
	 */
	struct batch bt[IO_SLOTS];
	unsigned bhead, nbatch;
	int sync_only;           /* the op in flight is a sync alone (no batch) */
	int sync_res;            /* its result */
	uint64_t sync_start_ns;  /* when the sync in flight was queued */
	uint64_t gather_until_ns; /* a group commit waits for more be_flush calls: 0 none */

	/* Errors. */
	int last_err;
	unsigned err_streak;
	uint64_t retry_at_ns;
	uint64_t stop_head;      /* shutdown: flush up to here */
	int stop_seen;           /* stop_head is set */
};

struct daemon {
	struct config cfg;
	const char *config_path; /* NULL: the built-in config */
	const char *instance;
	int datafd;              /* the data directory */
	struct io *io;
	struct store *stores;
	unsigned nstores;
	unsigned workers;        /* stores with a batch or sync in flight */
	int *free_bufs;          /* pool buffer indexes not in use */
	unsigned nfree;
	size_t bufsize;
	int stopping;
	uint64_t stop_deadline_ns;
};

/* recovery.c: recover a store from its segments, then create or attach its ring. */
int store_recover(struct daemon *d, struct store *st);

/*
 * recovery.c: the checks on what the daemon creates or trusts.
 * owner_desc() - "uid N (name)" for messages, into buf.
 * dir_refused() - log why a directory (atfd/name, shown as path) could not
 *   be opened: a symbolic link, not a directory, or err; for store (or NULL).
 * dir_secure() - check an open directory: its owner must be the daemon's
 *   euid; with a configured group, give it to that group with mode 02750
 *   (new files inherit the group); a directory just made gets 0750 exactly.
 *   Logs and returns -EPERM (another owner), -ENOTDIR, or -errno.
 */
const char *owner_desc(uid_t uid, char *buf, size_t len);
void dir_refused(int atfd, const char *name, const char *path, const char *store, int err);
int dir_secure(int fd, const char *path, const char *store, const struct cfg_engine *e,
	       int created);

/* flusher.c */
void store_service(struct daemon *d, struct store *st, uint64_t now);
void store_complete(struct daemon *d, struct store *st, const struct io_cqe *c, uint64_t now);
uint64_t store_next_wake(const struct store *st);
int store_drained(const struct store *st);
void store_stop(struct daemon *d, struct store *st, int err, const char *why);
void store_detach(struct daemon *d, struct store *st);
void store_set_flush_bytes(struct store *st);

/* retention.c: delete closed segments beyond retain_bytes / retain_age. */
void store_retain(struct store *st);

#endif /* BE_DAEMON_H */
