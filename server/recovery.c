/*
 * recovery.c - bring one store up at daemon start (DESIGN.md, "Recovery
 * at start"): first the disk, then the ring.
 *
 * Disk: find the newest segment that holds a valid batch.  A newer file
 * with none (a crash during rotation, or a power loss before its first
 * sync) is set aside.  In the chosen segment, bytes after the last valid
 * batch are a torn tail and are cut; a damaged batch that a valid one
 * follows is corruption, kept and reported.  What is left is fdatasynced:
 * that much is durable, and the next batch is written at its end.
 *
 * Ring: created anew (seq above everything on disk, on a 2^32 boundary,
 * since a reader may have seen records that never reached the disk), or
 * attached.  When the last batch on disk came from this ring and ends
 * beyond its tail, the daemon died between the write and the tail update:
 * the tail moves forward to it, so nothing is written twice.  The tail
 * never moves backward.  Every step is safe to crash in and redo.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/daemon.h"
#include "server/hooks.h"
#include "server/log.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/guard.h"

struct scan_ctx {
	const char *store;
	const char *file;
};

static void report_corrupt(uint64_t offset, uint64_t len, void *arg)
{
	struct scan_ctx *c = arg;

	log_msg(LL_ERR, c->store,
		"%s: corrupt batch at offset %llu (%llu bytes), kept; valid batches follow",
		c->file, (unsigned long long)offset, (unsigned long long)len);
}

/* Set aside a segment without a valid batch: removed if it holds only a header. */
static int set_aside(struct store *st, const char *name, uint64_t size)
{
	char aside[SEG_NAME_LEN + 16];

	if (size <= SEG_FILE_HDR_SIZE) {
		if (unlinkat(st->dirfd, name, 0) < 0)
			return -errno;
		log_msg(LL_INFO, st->cfg.name, "%s: removed an empty segment", name);
	} else {
		snprintf(aside, sizeof(aside), "%s.torn", name);
		if (renameat(st->dirfd, name, st->dirfd, aside) < 0)
			return -errno;
		log_msg(LL_WARN, st->cfg.name,
			"%s: no valid batch in %llu bytes: moved to %s", name,
			(unsigned long long)size, aside);
	}
	if (!hook_no_fdatasync() && fsync(st->dirfd) < 0)
		return -errno;
	hook_dirsynced(st->dirfd);
	return 0;
}

struct disk_state {
	uint64_t max_seq;         /* 0: nothing on disk */
	uint64_t last_incarnation;
	uint64_t last_end_pos;
};

static int recover_disk(struct store *st, struct disk_state *ds)
{
	uint64_t *seqs = NULL;
	int n, ret = 0;

	memset(ds, 0, sizeof(*ds));
	n = seg_list(st->dirfd, &seqs);
	if (n < 0)
		return n;
	for (int i = n - 1; i >= 0; i--) {
		struct seg_scan_result r;
		char name[SEG_NAME_LEN + 1];
		struct scan_ctx ctx = { .store = st->cfg.name, .file = name };
		struct stat sb;
		int fd;

		seg_name(name, seqs[i]);
		fd = openat(st->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			ret = -errno;
			goto out;
		}
		memset(&r, 0, sizeof(r));
		ret = seg_scan(fd, &r, NULL, report_corrupt, &ctx);
		if (ret == -EBADMSG || ret == -EPROTO || (ret == 0 && r.batches == 0)) {
			/* Newest files without a valid batch: left by a crash, never acknowledged. */
			if (fstat(fd, &sb) < 0)
				sb.st_size = 0;
			close(fd);
			if (ret)
				log_msg(LL_WARN, st->cfg.name, "%s: bad file header (%s)", name,
					strerror(-ret));
			ret = set_aside(st, name, (uint64_t)sb.st_size);
			if (ret)
				goto out;
			continue;
		}
		if (ret) {
			close(fd);
			goto out;
		}
		if (r.torn_bytes) {
			log_msg(LL_WARN, st->cfg.name,
				"%s: torn tail of %llu bytes at offset %llu removed", name,
				(unsigned long long)r.torn_bytes, (unsigned long long)r.valid_end);
			if (ftruncate(fd, (off_t)r.valid_end) < 0) {
				ret = -errno;
				close(fd);
				goto out;
			}
			hook_point("recovery_truncated");
		}
		/* What is left is what is durable. */
		if (hook_fdatasync(fd) < 0) {
			ret = -errno;
			close(fd);
			goto out;
		}
		hook_synced(st->dirfd, name, r.valid_end);
		ds->max_seq = r.last_seq;
		ds->last_incarnation = r.last_incarnation;
		ds->last_end_pos = r.last_end_pos;
		st->segfd = fd;
		st->seg_first_seq = seqs[i];
		st->seg_off = st->synced_off = r.valid_end;
		break;
	}
out:
	free(seqs);
	return ret;
}

#define SEQ_FLOOR_FILE "seq-floor"

/*
 * The first seq of the last ring created for this store, kept on disk: a
 * ring lost whole (a reboot before any of its batches was synced) leaves
 * no trace in the segments, yet a reader may have seen its seqs.  The
 * next ring starts above this floor too.  Returns 0 (none or unreadable:
 * 0) or the floor.
 */
static uint64_t seq_floor_read(int dirfd)
{
	char buf[32];
	uint64_t v = 0;
	ssize_t n;
	int fd = openat(dirfd, SEQ_FLOOR_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%" SCNu64, &v) != 1)
		return 0;
	return v;
}

/* Write the floor durably (temporary file, fdatasync, rename, directory fsync). */
static int seq_floor_write(int dirfd, uint64_t first_seq)
{
	char buf[32];
	int fd, n, ret = 0;

	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", first_seq);
	fd = openat(dirfd, SEQ_FLOOR_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || hook_fdatasync(fd) < 0)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && renameat(dirfd, SEQ_FLOOR_FILE ".tmp", dirfd, SEQ_FLOOR_FILE) < 0)
		ret = -errno;
	if (!ret && !hook_no_fdatasync() && fsync(dirfd) < 0)
		ret = -errno;
	if (!ret)
		hook_dirsynced(dirfd);
	return ret;
}

static int attach_ring(struct daemon *d, struct store *st, const struct disk_state *ds)
{
	struct ring_hdr *h;
	struct guard_frame gf;
	uint64_t head, tail, next_seq, first_seq, acked;
	int ret;

	ret = ring_open(d->instance, st->cfg.name, 0, &st->map);
	if (ret == -ENOENT) {
		uint64_t floor = seq_floor_read(st->dirfd);
		uint64_t base = ds->max_seq > floor ? ds->max_seq : floor;

		if (base >= RING_SEQ_FIRST_MAX - (UINT64_C(1) << 32)) {
			log_msg(LL_ERR, st->cfg.name, "the disk's highest seq %llu leaves no room for "
				"a new ring: store not served", (unsigned long long)base);
			return -ERANGE;
		}
		struct ring_params p = {
			.store = st->cfg.name,
			.capacity = st->cfg.capacity,
			.store_type = (uint32_t)st->cfg.type,
			.on_full = st->cfg.on_full == CFG_ON_FULL_DROP ? RING_ON_FULL_DROP
								      : RING_ON_FULL_BLOCK,
			.first_seq = base ? ((base >> 32) + 1) << 32 : 1,
			.flush_bytes = st->cfg.flush_bytes,
			.mode = d->cfg.engine.ring_mode,
		};

		/* The floor is durable before any seq of the new ring can be seen. */
		ret = seq_floor_write(st->dirfd, p.first_seq);
		if (ret) {
			log_msg(LL_ERR, st->cfg.name, "cannot record the new ring's first seq: %s",
				strerror(-ret));
			return ret;
		}
		ret = ring_create(d->instance, &p, &st->map);
		if (ret) {
			log_msg(LL_ERR, st->cfg.name, "cannot create the ring: %s", strerror(-ret));
			return ret;
		}
		log_msg(LL_INFO, st->cfg.name, "ring created: %llu bytes, first seq %llu",
			(unsigned long long)p.capacity, (unsigned long long)p.first_seq);
		st->tail = st->durable_pos = 0;
		st->written_seq = st->durable_seq = p.first_seq;
		goto publish;
	}
	if (ret) {
		log_msg(LL_ERR, st->cfg.name, "cannot attach the ring: %s", strerror(-ret));
		return ret;
	}
	if (st->map.capacity != st->cfg.capacity || st->map.store_type != (uint32_t)st->cfg.type ||
	    st->map.on_full != (uint32_t)st->cfg.on_full) {
		log_msg(LL_ERR, st->cfg.name,
			"the ring (capacity %llu, type %u, on_full %u) differs from the config "
			"(capacity %llu, type %d, on_full %d): store not served; a ring is never "
			"replaced under its writers: drain it, stop them, remove it",
			(unsigned long long)st->map.capacity, st->map.store_type, st->map.on_full,
			(unsigned long long)st->cfg.capacity, st->cfg.type, st->cfg.on_full);
		return -EEXIST;
	}
	h = st->map.hdr;
	GUARD_TRY(gf) {
		/* Acquire: tail before head, so that the pair is ordered (head only grows). */
		tail = load_acquire(&h->tail);
		head = load_acquire(&h->head);
		next_seq = READ_ONCE(h->next_seq);
		first_seq = READ_ONCE(h->first_seq);
		acked = READ_ONCE(h->durable_seq);
		GUARD_END(gf);
	} else {
		return -EFAULT;
	}
	if (tail > head || head - tail > st->map.capacity || ((head | tail) & (REC_ALIGN - 1))) {
		log_msg(LL_ERR, st->cfg.name, "the ring is damaged: head %llu, tail %llu",
			(unsigned long long)head, (unsigned long long)tail);
		return -EBADMSG;
	}
	if (ds->max_seq && next_seq <= ds->max_seq) {
		log_msg(LL_ERR, st->cfg.name,
			"the ring's next seq %llu is not above the disk's %llu: store not served",
			(unsigned long long)next_seq, (unsigned long long)ds->max_seq);
		return -EBADMSG;
	}
	/*
	 * What the last daemon acknowledged as durable and the disk no longer
	 * holds (a damaged or cut segment): say so, with the seqs.  The count
	 * is an upper bound, since seqs may have gaps.
	 */
	if (acked > ds->max_seq + 1 && acked > first_seq && acked <= next_seq) {
		uint64_t from = ds->max_seq + 1 > first_seq ? ds->max_seq + 1 : first_seq;

		if (acked > from)
			log_msg(LL_ERR, st->cfg.name,
				"the disk lost records acknowledged as durable: seqs %llu..%llu "
				"(at most %llu records)", (unsigned long long)from,
				(unsigned long long)(acked - 1), (unsigned long long)(acked - from));
	}
	st->written_seq = first_seq > ds->max_seq + 1 ? first_seq : ds->max_seq + 1;
	if (ds->max_seq && ds->last_incarnation == st->map.incarnation) {
		if (ds->last_end_pos > head || (ds->last_end_pos & (REC_ALIGN - 1))) {
			log_msg(LL_ERR, st->cfg.name,
				"the disk holds ring bytes up to %llu, beyond the ring's head %llu",
				(unsigned long long)ds->last_end_pos, (unsigned long long)head);
			return -EBADMSG;
		}
		if (ds->last_end_pos > tail) {
			/* Written (and now synced) but the tail never moved: move it. */
			log_msg(LL_INFO, st->cfg.name,
				"the disk already holds ring bytes %llu..%llu: tail moved forward",
				(unsigned long long)tail, (unsigned long long)ds->last_end_pos);
			tail = ds->last_end_pos;
		} else if (ds->last_end_pos < tail) {
			log_msg(LL_WARN, st->cfg.name,
				"the ring's tail %llu is beyond the disk's last batch (%llu): "
				"segments were lost or removed",
				(unsigned long long)tail, (unsigned long long)ds->last_end_pos);
		}
		st->written_seq = ds->max_seq + 1;
	}
	st->tail = st->durable_pos = tail;
	st->durable_seq = st->written_seq;
	log_msg(LL_INFO, st->cfg.name, "ring attached: %llu unflushed bytes",
		(unsigned long long)(head - tail));

publish:
	h = st->map.hdr;
	GUARD_TRY(gf) {
		WRITE_ONCE(h->flush_bytes, st->cfg.flush_bytes);
		WRITE_ONCE(h->daemon_pid, (uint32_t)getpid());
		WRITE_ONCE(h->heartbeat_ns, now_mono_ns());
		WRITE_ONCE(h->last_error, 0);
		/* Release: pairs with the writers' and be_flush's acquire loads. */
		store_release(&h->tail, st->tail);
		store_release(&h->durable_pos, st->durable_pos);
		store_release(&h->durable_seq, st->durable_seq);
		store_release(&h->daemon_state, (uint32_t)RING_DAEMON_RUNNING);
		futex_bump_wake(&h->space_gen);
		futex_bump_wake(&h->durable_gen);
		GUARD_END(gf);
	} else {
		return -EFAULT;
	}
	return 0;
}

int store_recover(struct daemon *d, struct store *st)
{
	struct disk_state ds;
	int ret;

	st->segfd = -1;
	st->dirfd = -1;
	st->buf_index = -1;
	if (mkdirat(d->datafd, st->cfg.name, 0750) == 0) {
		/* The store's directory must outlive a power loss like its segments. */
		if (!hook_no_fdatasync() && fsync(d->datafd) < 0) {
			ret = -errno;
			log_msg(LL_ERR, st->cfg.name, "cannot sync the data directory: %s",
				strerror(-ret));
			return ret;
		}
		hook_dirsynced(d->datafd);
	} else if (errno != EEXIST) {
		ret = -errno;
		log_msg(LL_ERR, st->cfg.name, "cannot create its directory: %s", strerror(-ret));
		return ret;
	}
	st->dirfd = openat(d->datafd, st->cfg.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->dirfd < 0) {
		ret = -errno;
		log_msg(LL_ERR, st->cfg.name, "cannot open its directory: %s", strerror(-ret));
		return ret;
	}
	ret = recover_disk(st, &ds);
	if (ret) {
		log_msg(LL_ERR, st->cfg.name, "recovery of its segments failed: %s",
			strerror(-ret));
		return ret;
	}
	return attach_ring(d, st, &ds);
}
