/*
 * flusher.c - one store's way from ring to segment.
 *
 * store_service() looks at the ring (head, flush requests) and decides
 * whether a batch is due: the size threshold, the interval, a be_flush,
 * or shutdown.  It copies [tail, head) (up to the buffer) out of the ring
 * with ring_collect(), seals the batch (CRC32C over our copy) and hands it
 * to io.c, with a linked fdatasync when the store syncs per batch, when a
 * be_flush asks, and at shutdown.  At most max_workers stores in flight.
 *
 * Two batches per store may be in flight: once the first one's write has
 * completed and its fdatasync runs, and flush_bytes more wait in the ring,
 * the next one is copied, sealed and written behind it (start_next()), and
 * gets its own fdatasync when the first one is done.  So the disk syncs one batch while the next one's
 * bytes go into the page cache, instead of each step waiting for the one
 * before.  The next batch never starts before the first one's write went
 * through whole: a crash can then leave a written batch only behind whole
 * ones, never behind a torn one (recovery keeps a damaged batch that a
 * valid one follows, and would move the tail past the torn one's records).
 *
 * be_flush calls are served by group commit: one sync for every record in
 * the ring when it starts; when others already wait as a sync completes,
 * the next one waits briefly for the writers it woke (gather_note()).
 *
 * store_complete() takes the completions; batches complete oldest first
 * (head_progress()).  Only when the write (and its sync) succeeded does
 * the tail move, then durable; then the waiters are woken.  A failed or
 * short write is redone whole at the same offset; a failed fdatasync first
 * cuts the segment back to the last good sync and syncs that (the pages
 * may be clean in the cache and lost on disk, so a second fdatasync would
 * lie): the next batch, if any, is dropped (its write is waited for first:
 * a write landing after the cut would extend the file again) and its
 * records are copied again later.  The store stops if the cut fails.
 * Records stay in the ring until they are safe, so a failure never loses
 * a batch.
 *
 * Every access to shared memory here is inside a guard: a ring truncated
 * under the daemon stops that store, not the daemon.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "server/crc32c.h"
#include "server/daemon.h"
#include "server/hooks.h"
#include "server/log.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/guard.h"

#define BEAT_NS NSEC_PER_SEC
#define RETAIN_CHECK_NS (60 * NSEC_PER_SEC) /* retain_age needs no finer grain */
#define RETRY_MIN_NS (50 * NSEC_PER_MSEC)
#define RETRY_MAX_NS (5 * NSEC_PER_SEC)
#define GATHER_MAX_NS (200 * NSEC_PER_USEC) /* a group commit's longest wait for more be_flush calls */

static uint64_t interval_ns(const struct store *st)
{
	return st->cfg.flush_interval_ms * NSEC_PER_MSEC;
}

static void buf_release(struct daemon *d, struct batch *x)
{
	if (!x->buf)
		return;
	if (x->buf_index >= 0)
		d->free_bufs[d->nfree++] = x->buf_index;
	else
		free(x->buf);
	x->buf = NULL;
	x->buf_index = -1;
}

static int buf_take(struct daemon *d, struct batch *x, size_t need)
{
	if (need <= d->bufsize) {
		if (!d->nfree)
			return -EBUSY;
		x->buf_index = d->free_bufs[--d->nfree];
		x->buf = io_buf(d->io, (unsigned)x->buf_index);
		return 0;
	}
	/* A record larger than the pool's buffers: a buffer of its own, unregistered. */
	if (posix_memalign((void **)&x->buf, 4096, need))
		return -ENOMEM;
	x->buf_index = -1;
	return 0;
}

/* The oldest batch in flight, and the one behind it (NULL: none). */
static inline struct batch *cur_batch(struct store *st)
{
	return &st->bt[st->bhead];
}

static inline struct batch *next_batch(struct store *st)
{
	return st->nbatch == 2 ? &st->bt[st->bhead ^ 1] : NULL;
}

static inline uint32_t slot_of(const struct store *st, const struct batch *x)
{
	return (uint32_t)(x - st->bt);
}

/* Enter or leave ST_BUSY, counting the stores in flight. */
static void set_busy(struct daemon *d, struct store *st)
{
	if (st->state != ST_BUSY) {
		st->state = ST_BUSY;
		d->workers++;
		hook_workers(d->workers);
	}
}

static void leave_busy(struct daemon *d, struct store *st, enum store_state to)
{
	if (st->state == ST_BUSY)
		d->workers--;
	st->state = to;
}

void store_set_flush_bytes(struct store *st)
{
	struct guard_frame gf;

	if (st->state == ST_STOPPED || !st->map.hdr)
		return;
	GUARD_TRY(gf) {
		WRITE_ONCE(st->map.hdr->flush_bytes, st->cfg.flush_bytes);
		GUARD_END(gf);
	}
}

void store_stop(struct daemon *d, struct store *st, int err, const char *why)
{
	struct guard_frame gf;

	if (st->state == ST_STOPPED)
		return;
	log_msg(LL_ERR, st->cfg.name, "store stopped: %s (%s); its records stay in the ring",
		why, strerror(-err));
	if (st->state == ST_BUSY)
		d->workers--;
	/* A batch with completions to come keeps its buffer until they came. */
	for (unsigned i = 0; i < IO_SLOTS; i++)
		if (!st->bt[i].pending)
			buf_release(d, &st->bt[i]);
	st->state = ST_STOPPED;
	st->last_err = err;
	if (st->map.hdr) {
		GUARD_TRY(gf) {
			WRITE_ONCE(st->map.hdr->last_error, err);
			WRITE_ONCE(st->map.hdr->last_error_ns, now_real_ns());
			WRITE_ONCE(st->map.hdr->daemon_state, (uint32_t)RING_DAEMON_QUARANTINED);
			GUARD_END(gf);
		}
	}
}

static void set_error(struct store *st, int err)
{
	struct ring_hdr *h = st->map.hdr;

	st->last_err = err;
	WRITE_ONCE(h->last_error, err);
	WRITE_ONCE(h->last_error_ns, now_real_ns());
}

/* Publish what the daemon's copies say, then wake whoever waits on it. */
static void publish(struct store *st, int tail_moved, int durable_moved)
{
	struct ring_hdr *h = st->map.hdr;

	if (tail_moved) {
		/*
		 * Release: everything we read from [old tail, tail) happened
		 * before a writer, acquiring the new tail, reuses that space.
		 */
		store_release(&h->tail, st->tail);
		futex_bump_wake(&h->space_gen);
	}
	if (durable_moved) {
		store_release(&h->durable_pos, st->durable_pos);
		/* Release: pairs with be_flush's load_acquire(durable_seq). */
		store_release(&h->durable_seq, st->durable_seq);
		fetch_add_relaxed(&h->syncs, 1);
		futex_bump_wake(&h->durable_gen);
	}
}

/* Close the full segment (synced first) so that the next batch opens a new one. */
static void seg_synced(const struct store *st, uint64_t len)
{
	char name[SEG_NAME_LEN + 1];

	seg_name(name, st->seg_first_seq);
	hook_synced(st->dirfd, name, len);
}

static int rotate(struct store *st)
{
	if (hook_fdatasync(st->segfd) < 0)
		return -errno;
	seg_synced(st, st->seg_off);
	close(st->segfd);
	st->segfd = -1;
	hook_point("rotate_mid");
	if (st->durable_pos != st->tail) {
		st->durable_pos = st->tail;
		st->durable_seq = st->written_seq;
		publish(st, 0, 1);
	}
	return 0;
}

/* A success after failures: say so once, and clear what shm-dump shows. */
static void clear_error(struct store *st)
{
	if (st->err_streak) {
		log_msg(LL_INFO, st->cfg.name, "writing again after %u failures", st->err_streak);
		WRITE_ONCE(st->map.hdr->last_error, 0);
		st->err_streak = 0;
		st->last_err = 0;
	}
	st->retry_at_ns = 0;
}

static void retry_later(struct store *st, uint64_t now)
{
	uint64_t wait = RETRY_MIN_NS << (st->err_streak < 7 ? st->err_streak : 7);

	st->err_streak++;
	st->retry_at_ns = now + (wait < RETRY_MAX_NS ? wait : RETRY_MAX_NS);
}

/*
 * Queue x's write, with its sync linked when link_sync (the first try or a
 * retry of the oldest batch), or alone (a batch behind another: its sync
 * comes once the one before it is done).
 */
static int submit_write(struct daemon *d, struct store *st, struct batch *x, int link_sync)
{
	int ret = io_write(d->io, st->index, slot_of(st, x), st->segfd, x->buf, x->buf_index,
			   x->len, x->off, link_sync);

	if (ret)
		return ret;
	x->pending = link_sync ? 2 : 1;
	x->sync_sent = link_sync;
	x->wdone = 0;
	x->res_write = x->res_sync = 0;
	return 0;
}

/* Submit the oldest batch (first try or retry): write and, when it syncs, a linked sync. */
static int submit_batch(struct daemon *d, struct store *st, uint64_t now)
{
	struct batch *x = cur_batch(st);
	int ret = submit_write(d, st, x, x->sync);

	if (ret)
		return ret;
	if (x->sync)
		st->sync_start_ns = now;
	set_busy(d, st);
	return 0;
}

/* Fill in and seal the header of a collected batch. */
static void seal_batch(const struct store *st, struct batch *x)
{
	struct seg_batch_hdr *bh = (struct seg_batch_hdr *)x->buf;

	*bh = (struct seg_batch_hdr){
		.magic = SEG_BATCH_MAGIC,
		.version = SEG_BATCH_VERSION,
		.count = x->b.count,
		.incarnation = st->map.incarnation,
		.start_pos = x->b.start_pos,
		.end_pos = x->b.end_pos,
		.first_seq = x->b.first_seq,
		.last_seq = x->b.last_seq,
		.length = (uint32_t)x->b.bytes,
	};
	seg_batch_seal(x->buf);
	x->len = SEG_BATCH_HDR_SIZE + x->b.bytes;
}

/* Skip ring bytes that do not parse, from the tail up to head. */
static void skip_damage(struct store *st, uint64_t head)
{
	log_msg(LL_ERR, st->cfg.name,
		"damaged records in the ring at %llu: %llu bytes up to the head skipped",
		(unsigned long long)st->tail, (unsigned long long)(head - st->tail));
	fetch_add_relaxed(&st->map.hdr->damaged_bytes, head - st->tail);
	set_error(st, -EBADMSG);
	st->tail = head;
	publish(st, 1, 0);
}

/* Start a batch with nothing in flight: [tail, head) up to a buffer. */
static int start_batch(struct daemon *d, struct store *st, uint64_t head, int sync, uint64_t now)
{
	struct batch *x;
	int ret;

	st->bhead = 0;
	x = cur_batch(st);
	ret = buf_take(d, x, d->bufsize);
	if (ret)
		return ret;
	ret = ring_collect(&st->map, st->tail, head, st->written_seq, x->buf + SEG_BATCH_HDR_SIZE,
			   d->bufsize - SEG_BATCH_HDR_SIZE, &x->b);
	if (ret == -E2BIG) {
		buf_release(d, x);
		ret = buf_take(d, x, x->b.need + SEG_BATCH_HDR_SIZE);
		if (ret)
			return ret;
		ret = ring_collect(&st->map, st->tail, head, st->written_seq,
				   x->buf + SEG_BATCH_HDR_SIZE, x->b.need, &x->b);
	}
	if (ret == -EBADMSG && x->b.count == 0) {
		buf_release(d, x);
		skip_damage(st, head);
		return 0;
	}
	if (ret && ret != -EBADMSG) {
		buf_release(d, x);
		return ret;
	}
	if (x->b.count == 0) {
		/* Padding alone: nothing to write, but the space is free again. */
		buf_release(d, x);
		st->tail = x->b.end_pos;
		publish(st, 1, 0);
		return 0;
	}

	if (st->segfd >= 0 && st->seg_off > SEG_FILE_HDR_SIZE &&
	    st->seg_off + SEG_BATCH_HDR_SIZE + x->b.bytes > st->cfg.segment_bytes) {
		ret = rotate(st);
		if (ret) {
			buf_release(d, x);
			store_stop(d, st, ret, "fdatasync before rotation failed");
			return 0;
		}
	}
	if (st->segfd < 0) {
		ret = seg_create(st->dirfd, x->b.first_seq, (uint32_t)st->cfg.type, st->cfg.name);
		if (ret < 0) {
			buf_release(d, x);
			set_error(st, ret);
			retry_later(st, now);
			log_msg(LL_ERR, st->cfg.name, "cannot create a segment: %s; will retry",
				strerror(-ret));
			return 0;
		}
		st->segfd = ret;
		st->seg_first_seq = x->b.first_seq;
		st->seg_off = st->synced_off = SEG_FILE_HDR_SIZE;
		/* A segment closed, another opened: the limits may be passed. */
		store_retain(st);
	}

	seal_batch(st, x);
	x->off = st->seg_off;
	x->sync = sync;
	ret = submit_batch(d, st, now);
	if (ret) {
		buf_release(d, x);
		return ret;
	}
	st->nbatch = 1;
	return 0;
}

/*
 * With the oldest batch written and syncing, copy the next one (what
 * followed it in the ring, when a flush is due for it) and write it behind
 * it in the same segment; its sync comes when the first one is done.
 * Anything unusual (no pool buffer, a record larger than one, damage,
 * padding alone, a segment to rotate) waits until nothing is in flight.
 */
static void start_next(struct daemon *d, struct store *st, uint64_t head, uint64_t now)
{
	struct batch *c = cur_batch(st), *x;
	uint64_t start, pending, room;
	int want_sync;

	if (st->nbatch != 1 || st->sync_only || !io_async(d->io))
		return;
	if (!c->wdone || c->res_write < 0 || (uint64_t)c->res_write != c->len || !c->sync_sent ||
	    !c->pending)
		return;
	start = c->b.end_pos;
	if (head <= start || head - start > st->map.capacity)
		return;
	pending = head - start;
	/*
	 * Only a full flush_bytes goes behind a batch in flight.  A be_flush
	 * or the interval waits for the sync in flight: then one batch takes
	 * everything that came meanwhile (group commit), where starting one
	 * at once would close it to the be_flush calls still coming.
	 */
	if (pending < st->cfg.flush_bytes)
		return;
	/* Someone waits for records past the first batch, or the shutdown's flush. */
	want_sync = READ_ONCE(st->map.hdr->flush_req_seq) > c->b.last_seq || d->stopping;
	room = st->cfg.segment_bytes > c->off + c->len ? st->cfg.segment_bytes - c->off - c->len : 0;
	if (room < SEG_BATCH_HDR_SIZE + (pending < d->bufsize ? pending : d->bufsize))
		return;
	x = &st->bt[st->bhead ^ 1];
	if (buf_take(d, x, d->bufsize))
		return;
	if (ring_collect(&st->map, start, head, c->b.last_seq + 1, x->buf + SEG_BATCH_HDR_SIZE,
			 d->bufsize - SEG_BATCH_HDR_SIZE, &x->b) != 0 ||
	    x->b.count == 0) {
		buf_release(d, x);
		return;
	}
	seal_batch(st, x);
	x->off = c->off + c->len;
	x->sync = want_sync || st->cfg.sync == CFG_SYNC_BATCH;
	if (submit_write(d, st, x, 0)) {
		buf_release(d, x);
		return;
	}
	st->nbatch = 2;
	st->next_tick_ns = now + interval_ns(st);
	io_submit_now(d->io);
}

static int start_sync(struct daemon *d, struct store *st, uint64_t now)
{
	int ret;

	if (st->segfd < 0)
		return 0;
	ret = io_sync(d->io, st->index, 0, st->segfd);
	if (ret)
		return ret;
	st->sync_start_ns = now;
	st->sync_res = 0;
	st->sync_only = 1;
	set_busy(d, st);
	return 0;
}

static void service(struct daemon *d, struct store *st, uint64_t now)
{
	struct ring_hdr *h = st->map.hdr;
	uint32_t gen;
	uint64_t head, pending, req;
	int want_sync, ret;

	/* The generation first, then what it guards (see shm/futex.h). */
	gen = load_acquire(&h->doorbell_gen);
	if (now >= st->next_beat_ns) {
		WRITE_ONCE(h->heartbeat_ns, now);
		st->next_beat_ns = now + BEAT_NS;
	}
	if (now >= st->next_retain_ns) {
		store_retain(st);
		st->next_retain_ns = now + RETAIN_CHECK_NS;
	}
	/* Acquire: pairs with the writers' store_release(head) after the record. */
	head = load_acquire(&h->head);
	if (head < st->tail || head - st->tail > st->map.capacity || (head & (REC_ALIGN - 1))) {
		store_stop(d, st, -EBADMSG, "the ring's head is impossible");
		return;
	}
	if (d->stopping && !st->stop_seen) {
		st->stop_head = head;
		st->stop_seen = 1;
	}
	/* The final flush takes what was there at SIGTERM, not what keeps coming. */
	if (d->stopping)
		head = st->stop_head;
	if (st->state == ST_BUSY)
		start_next(d, st, head, now);
	if (st->gather_until_ns && now >= st->gather_until_ns)
		st->gather_until_ns = 0;
	if (st->state == ST_IDLE || st->state == ST_RETRY) {
		pending = head - st->tail;
		req = READ_ONCE(h->flush_req_seq);
		/* A request counts only while there is something to make durable. */
		want_sync = (req >= st->durable_seq || d->stopping) &&
			    (pending || st->durable_pos < st->tail);
		/* A request alone waits while a group commit gathers (gather_note()). */
		if (st->gather_until_ns && !d->stopping && pending < st->cfg.flush_bytes &&
		    now < st->next_tick_ns)
			want_sync = 0;

		if (st->state == ST_RETRY) {
			if (now >= st->retry_at_ns && d->workers < d->cfg.engine.max_workers) {
				ret = submit_batch(d, st, now);
				if (ret)
					retry_later(st, now);
			}
		} else if (pending &&
			   (pending >= st->cfg.flush_bytes || now >= st->next_tick_ns || want_sync) &&
			   now >= st->retry_at_ns) {
			if (d->workers < d->cfg.engine.max_workers) {
				st->next_tick_ns = now + interval_ns(st);
				ret = start_batch(d, st, head,
						  want_sync || st->cfg.sync == CFG_SYNC_BATCH, now);
				if (ret && ret != -EBUSY) {
					set_error(st, ret);
					retry_later(st, now);
				}
			}
		} else if (want_sync && d->workers < d->cfg.engine.max_workers &&
			   now >= st->retry_at_ns) {
			ret = start_sync(d, st, now);
			if (ret)
				retry_later(st, now);
		} else if (now >= st->next_tick_ns) {
			st->next_tick_ns = now + interval_ns(st);
		}
	}
	if (!st->armed && st->state != ST_STOPPED && !io_futex_polling(d->io)) {
		if (io_arm_futex(d->io, st->index, &h->doorbell_gen, gen) == 0)
			st->armed = 1;
	}
}

void store_service(struct daemon *d, struct store *st, uint64_t now)
{
	struct guard_frame gf;

	if (st->state == ST_STOPPED || !st->map.hdr)
		return;
	GUARD_TRY(gf) {
		service(d, st, now);
		GUARD_END(gf);
	} else {
		store_stop(d, st, -EFAULT, "the ring was truncated under the daemon");
	}
}

/*
 * A short write says nothing of why: when the file system lacks the room
 * for the rest, call it ENOSPC, which shm-dump then shows.
 */
static int short_write_error(const struct store *st, const struct batch *x)
{
	struct statvfs sv;
	uint64_t rest = x->len - (uint64_t)x->res_write;

	if (fstatvfs(st->segfd, &sv) == 0 && (uint64_t)sv.f_bavail * sv.f_frsize < rest)
		return -ENOSPC;
	return -EIO;
}

/*
 * An fdatasync failed: the pages it covered may be clean in the cache and
 * not on disk, and another fdatasync would report success.  Cut the
 * segment back to what the last good sync covered and make that durable.
 * The batch in hand is written again there; records of earlier batches
 * written since that sync (sync = none) have left the ring: they are
 * published as lost, so that no be_flush reports them durable.
 * Returns 0, or -errno when the cut failed (the store must stop).
 */
static int sync_failed(struct store *st, int err, uint64_t lost_to)
{
	struct ring_hdr *h = st->map.hdr;

	set_error(st, err);
	if (lost_to > st->durable_seq) {
		uint64_t from = st->durable_seq;

		if (st->lost_to > st->lost_from) {
			from = from < st->lost_from ? from : st->lost_from;
			lost_to = lost_to > st->lost_to ? lost_to : st->lost_to;
		}
		st->lost_from = from;
		st->lost_to = lost_to;
		/* Stored before any later durable_seq release that passes them. */
		WRITE_ONCE(h->lost_seq_from, from);
		WRITE_ONCE(h->lost_seq_to, lost_to);
		log_msg(LL_ERR, st->cfg.name,
			"records %llu..%llu were written since the last good sync and may be "
			"lost: be_flush reports them with EIO", (unsigned long long)from,
			(unsigned long long)(lost_to - 1));
	}
	log_msg(LL_ERR, st->cfg.name, "fdatasync failed: %s; cutting the segment back to "
		"offset %llu (the last good sync)", strerror(-err),
		(unsigned long long)st->synced_off);
	if (ftruncate(st->segfd, (off_t)st->synced_off) < 0 || hook_fdatasync(st->segfd) < 0)
		return -errno;
	seg_synced(st, st->synced_off);
	st->seg_off = st->synced_off;
	st->durable_pos = st->tail;
	return 0;
}

/* The oldest batch is written (and synced when it had to be): move the tail and durable. */
static void batch_done(struct daemon *d, struct store *st, struct batch *x)
{
	if (x->sync) {
		seg_synced(st, x->off + x->len);
		st->synced_off = x->off + x->len;
	}
	hook_point("before_tail");
	if (d->stopping)
		hook_point("final_flush");
	st->seg_off = x->off + x->len;
	st->tail = x->b.end_pos;
	st->written_seq = x->b.last_seq + 1;
	fetch_add_relaxed(&st->map.hdr->batches, 1);
	if (x->sync) {
		st->durable_pos = st->tail;
		st->durable_seq = st->written_seq;
	}
	publish(st, 1, x->sync);
	clear_error(st);
	buf_release(d, x);
}

/*
 * Group commit, after a sync completed: when be_flush calls for records it
 * did not cover already wait, several writers are flushing in turn, and
 * those it just woke come back with their next records right away.  The
 * next sync then waits for them a little (half of this sync, at most
 * GATHER_MAX_NS) instead of leaving without them: so each sync serves all
 * of them rather than every other one.  A lone flusher never waits (nobody
 * else waits when its sync completes), and neither does a full flush_bytes,
 * the interval or a shutdown.
 */
static void gather_note(struct daemon *d, struct store *st, uint64_t now)
{
	uint64_t took = now > st->sync_start_ns ? now - st->sync_start_ns : 0, wait = took / 2;

	if (d->stopping || READ_ONCE(st->map.hdr->flush_req_seq) < st->durable_seq)
		return;
	st->gather_until_ns = now + (wait < GATHER_MAX_NS ? wait : GATHER_MAX_NS);
}

/*
 * Drop the batch behind the oldest (its write is done): its records stay
 * in the ring.  A write of its that failed is said and counted here, as it
 * would have been when its turn came.
 */
static void drop_next(struct daemon *d, struct store *st)
{
	struct batch *n = next_batch(st);

	if (!n)
		return;
	if (n->res_write < 0 || (uint64_t)n->res_write != n->len) {
		int werr = n->res_write < 0 ? n->res_write : short_write_error(st, n);

		log_msg(LL_ERR, st->cfg.name,
			"batch write at offset %llu failed: %s; dropped with the cut, its records "
			"stay in the ring", (unsigned long long)n->off,
			n->res_write >= 0 ? "short write" : strerror(-werr));
		set_error(st, werr);
		st->err_streak++;
	}
	buf_release(d, n);
	st->nbatch = 1;
}

/*
 * Move the batches in flight on, oldest first, as far as their completions
 * allow: a failed write is retried, a batch written behind another gets
 * its own sync, a failed sync cuts the segment back, a finished batch
 * moves the tail (and durable) and the next one becomes the oldest.
 */
static void head_progress(struct daemon *d, struct store *st, uint64_t now)
{
	for (;;) {
		struct batch *x = cur_batch(st), *n = next_batch(st);
		int werr;

		if (x->pending)
			return;
		werr = x->res_write < 0			   ? x->res_write
		       : (uint64_t)x->res_write != x->len ? short_write_error(st, x)
							   : 0;
		if (werr) {
			/* Redo the whole batch at the same offset: the daemon owns the offset. */
			if (st->err_streak == 0 || werr != st->last_err || x->res_write >= 0)
				log_msg(LL_ERR, st->cfg.name,
					"batch write at offset %llu failed: %s%s; records stay in the "
					"ring, retrying", (unsigned long long)x->off,
					x->res_write >= 0 ? "short write" : strerror(-werr),
					x->res_write >= 0 && werr == -ENOSPC ? " (no space left)" : "");
			set_error(st, werr);
			leave_busy(d, st, ST_RETRY);
			retry_later(st, now);
			return;
		}
		if (x->sync && !x->sync_sent) {
			/* Written behind the batch before it, which is done: its own sync now. */
			if (io_sync(d->io, st->index, slot_of(st, x), st->segfd) == 0) {
				x->sync_sent = 1;
				x->pending = 1;
				x->res_sync = 0;
				st->sync_start_ns = now;
				/* The disk idles until it is in: not after other stores' copies. */
				io_submit_now(d->io);
				return;
			}
			/* Cannot queue it: the retry writes the batch again with a linked sync. */
			leave_busy(d, st, ST_RETRY);
			retry_later(st, now);
			return;
		}
		if (x->sync && x->res_sync < 0) {
			/*
			 * The cut must not race the next batch's write: wait for
			 * it (its completion brings us back here).
			 */
			if (n && n->pending)
				return;
			drop_next(d, st);
			/* This batch is written again at the cut; its records are still in the ring. */
			if (sync_failed(st, x->res_sync, x->b.first_seq) < 0) {
				store_stop(d, st, -errno, "cannot cut the segment back after a failed sync");
				return;
			}
			x->off = st->seg_off;
			leave_busy(d, st, ST_RETRY);
			retry_later(st, now);
			return;
		}
		batch_done(d, st, x);
		if (x->sync)
			gather_note(d, st, now);
		st->bhead ^= 1;
		if (--st->nbatch == 0) {
			st->bhead = 0;
			leave_busy(d, st, ST_IDLE);
			return;
		}
		/* The next batch is the oldest now: its write may be done, or still going. */
	}
}

/* A sync alone (no batch) completed. */
static void sync_done(struct daemon *d, struct store *st, uint64_t now)
{
	st->sync_only = 0;
	leave_busy(d, st, ST_IDLE);
	if (st->sync_res < 0) {
		if (sync_failed(st, st->sync_res, st->written_seq) < 0) {
			store_stop(d, st, -errno, "cannot cut the segment back after a failed sync");
			return;
		}
		/* Durable (or published as lost) up to the tail. */
		st->durable_seq = st->written_seq;
		publish(st, 0, 1);
		retry_later(st, now);
		return;
	}
	seg_synced(st, st->seg_off);
	st->synced_off = st->seg_off;
	st->durable_pos = st->tail;
	st->durable_seq = st->written_seq;
	publish(st, 0, 1);
	clear_error(st);
	gather_note(d, st, now);
}

static void complete(struct daemon *d, struct store *st, const struct io_cqe *c, uint64_t now)
{
	struct batch *x;

	if (c->kind == IO_FUTEX) {
		st->armed = 0;
		return;
	}
	if (st->sync_only && c->kind == IO_SYNC) {
		st->sync_res = hook_fault(HOOK_SYNC, c->res);
		if (st->state == ST_STOPPED) {
			st->sync_only = 0;
			return;
		}
		sync_done(d, st, now);
		return;
	}
	x = &st->bt[c->slot % IO_SLOTS];
	if (x->pending <= 0)
		return; /* not ours: cannot happen */
	if (c->kind == IO_WRITE) {
		x->res_write = hook_fault(HOOK_WRITE, c->res);
		x->wdone = 1;
	} else {
		x->res_sync = hook_fault(HOOK_SYNC, c->res);
	}
	x->pending--;
	if (st->state == ST_STOPPED) {
		if (!x->pending)
			buf_release(d, x);
		return;
	}
	if (x != cur_batch(st)) {
		/* The batch behind the oldest: written; it waits its turn (or for a cut). */
		hook_point("next_written");
	} else if (x->pending > 0) {
		/* The write is done, its linked sync is not: a crash window. */
		hook_point("write_done");
		return;
	}
	head_progress(d, st, now);
}

void store_complete(struct daemon *d, struct store *st, const struct io_cqe *c, uint64_t now)
{
	struct guard_frame gf;

	if (c->kind != IO_FUTEX && c->slot >= IO_SLOTS)
		return; /* not ours: cannot happen */
	GUARD_TRY(gf) {
		complete(d, st, c, now);
		GUARD_END(gf);
	} else {
		store_stop(d, st, -EFAULT, "the ring was truncated under the daemon");
	}
}

uint64_t store_next_wake(const struct store *st)
{
	uint64_t t = st->next_beat_ns;

	if (st->state == ST_STOPPED)
		return UINT64_MAX;
	if (st->state == ST_IDLE && st->next_tick_ns < t)
		t = st->next_tick_ns;
	if (st->state == ST_IDLE && st->gather_until_ns && st->gather_until_ns < t)
		t = st->gather_until_ns;
	if ((st->state == ST_RETRY || st->err_streak) && st->retry_at_ns < t)
		t = st->retry_at_ns;
	return t;
}

int store_drained(const struct store *st)
{
	if (st->state == ST_STOPPED)
		return 1;
	return st->state == ST_IDLE && st->stop_seen && st->tail >= st->stop_head &&
	       st->durable_pos >= st->tail;
}

void store_detach(struct daemon *d, struct store *st)
{
	struct guard_frame gf;

	(void)d;
	if (st->map.hdr) {
		GUARD_TRY(gf) {
			if (st->state != ST_STOPPED)
				store_release(&st->map.hdr->daemon_state,
					      (uint32_t)RING_DAEMON_STOPPED);
			GUARD_END(gf);
		}
	}
	if (st->segfd >= 0) {
		if (hook_fdatasync(st->segfd) < 0)
			log_msg(LL_ERR, st->cfg.name, "fdatasync at exit failed: %s",
				strerror(errno));
		else
			seg_synced(st, st->seg_off);
		close(st->segfd);
	}
	if (st->dirfd >= 0)
		close(st->dirfd);
	ring_unmap(&st->map);
}
