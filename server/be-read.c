/*
 * be-read.c - print the records of a store's segments, as text or JSON Lines.
 *
 *	be-read [--json] [--group] [--from-seq N] [--since TIME] [--until TIME]
 *		[--count N] [--salvage] [-f|--follow] [--verify] DIR
 *
 * DIR is <data_dir>/<store>.  Segments are listed with seg_list() and read
 * in order, batch by batch, through a window of a few MiB (struct win):
 * never a whole file, so a store of any size is read in bounded memory
 * (the window grows only to the largest batch that passed its CRC).  Only
 * batches that pass every check of seg_batch_check() are printed; what is
 * a batch and what is damage is decided exactly as seg_scan() does it for
 * the daemon's recovery (a bad region followed by a valid batch of the
 * same file is corruption; bytes after the last valid batch that no valid
 * batch follows are a torn tail; a batch must start above the last seq of
 * its file).
 *
 * Damage is reported on stderr, with the file and the offset, as it is
 * met.  Without --salvage reading stops there; with it, the damaged region
 * is skipped and reading goes on with the next valid batch.  Either way
 * the exit status is then 2.  A torn tail in the newest segment is what a
 * live or crashed daemon leaves until its recovery: a warning only.
 *
 * --follow: after what exists, wait (inotify on DIR, else a 200 ms poll)
 * and print batches as they land, from the file and offset reached (never
 * reading a file again), across rotations: a batch being written is
 * waited for; once a newer segment exists the older one is final, and
 * bytes at its end that are still no batch are a torn tail, reported once.
 * A segment that recovery set aside (a crash during rotation) sends the
 * reader back to the segment the daemon went on in, without printing a
 * record twice.  SIGINT, SIGTERM and a closed output end it cleanly.
 *
 * --verify: every batch checked, seqs strictly increasing across all the
 * segments, each segment named at or below its first seq; a summary on
 * stdout, no records.
 *
 * Records are decoded and formatted by server/recfmt.c (the output is
 * described there), the same as shm-dump --records.  A payload that does
 * not decode is printed with "error" and its bytes, counted, and makes the
 * exit status 2 too.  With --group, the process records of one snapshot
 * are held back and printed as one line (see group_record()).
 *
 * Output is formatted by hand into one large buffer handed to stdio in big
 * pieces: printf per field would cost more than the scan itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/crc32c.h"
#include "server/recfmt.h"
#include "server/segment.h"
#include "shm/clock.h"
#include "shm/codec.h"
#include "shm/layout.h"

#define PROG "be-read"

/* Exit statuses. */
#define EXIT_OK	    0
#define EXIT_USAGE  1 /* bad arguments, DIR unusable, stdout failed */
#define EXIT_DAMAGE 2 /* a segment is damaged or could not be read */

#define OUT_FLUSH (1u << 20)		    /* hand the output to stdio at this size */
#define OUT_CAP	  (OUT_FLUSH + (64u << 10)) /* what the buffer starts with */

/*
 * The read window: file bytes are read in pieces of WIN_CAP.  A batch
 * larger than the window is first checked by streaming its CRC through
 * the window (struct win keeps its size); only then does the window grow
 * to hold it, so a damaged length field never makes be-read allocate.
 */
#define WIN_CAP (4u << 20)

/* --follow: waits. */
#define POLL_MS	      200  /* without inotify: look this often */
#define RECHECK_MS    1000 /* with inotify: look anyway this often */
#define GROUP_IDLE_MS 2000 /* --group: held snapshots go out after this long idle */

/* --group: bounds on what is held back. */
#define GROUP_OPEN_MAX	64	    /* snapshots open at once: then the oldest goes out */
#define GROUP_BYTES_MAX (64u << 20) /* record bytes held at once: the same */

/* One snapshot being put back together: copies of its records (header + payload). */
struct group {
	int used;
	uint32_t pid; /* the writer's */
	uint64_t snapshot_id;
	uint64_t opened; /* when, in snapshots opened: the oldest goes out first */
	uint8_t *buf;	 /* records at rec_size() steps, 8-aligned */
	size_t len, cap, n;
};

/* File bytes [off, off + len) of the segment being read, in buf. */
struct win {
	uint8_t *buf;
	size_t cap;
	uint64_t off;
	size_t len;
	int fd;		/* whose bytes they are; -1: none */
	size_t trusted; /* the largest batch that passed its CRC: the window may grow to it */
};

/* One segment being read. */
struct seg {
	int fd;		  /* -1: none */
	uint64_t name;	  /* the first seq in its name */
	uint64_t off;	  /* of the next batch; 0: the file header is not checked yet */
	uint64_t min_seq; /* a batch here starts at or above this (its file's last seq + 1) */
	dev_t dev;
	ino_t ino;
	int dead;	   /* its header is bad: nothing more is read from it */
	uint64_t last_off; /* the last batch read: its offset (0: none) ... */
	uint32_t last_crc; /* ... and its CRC */
	/* What was found, for --verify. */
	uint64_t batches, records, first_seq, last_seq, corrupt, size;
	uint64_t torn_off, torn_bytes; /* bytes at the end that are no batch */
};

struct reader {
	struct recfmt fmt; /* the output, drained at OUT_FLUSH */
	int failed;	   /* a write to stdout failed: stop quietly */
	int failed_errno;
	int oom; /* out of memory while formatting: stop */
	int verify;
	int group;
	int salvage;
	int follow;
	int live; /* --follow, past what existed at the start: flush after each batch */
	uint64_t from_seq;
	uint64_t since_ns, until_ns; /* record timestamps kept: [since, until] */
	uint64_t left;		     /* --count: records still to print (UINT64_MAX: all) */
	int stop;		     /* reading is over: --count, damage without --salvage */
	const char *dir;
	int dirfd;
	char path[4096];      /* of the segment being read, for messages */
	int damaged;	      /* exit with EXIT_DAMAGE at the end */
	uint64_t undecodable; /* records whose payload did not decode */
	uint64_t newer;	      /* of which written in a newer payload format */
	uint64_t first_bad_seq;
	char first_bad[160]; /* why the first of them did not decode */

	struct win win;
	struct seg cur;	    /* the segment being read */
	uint64_t prev_name; /* --follow: the segment read before it ... */
	uint64_t prev_end;  /* ... up to here (its last batch's end) */
	uint64_t prev_min;  /* ... and its file's next seq */
	int have_prev;
	uint64_t last_seq; /* the highest seq of any batch read so far */
	int have_last;
	int rewound; /* --follow went back to a segment: batches up to last_seq are skipped */

	/* --verify: the whole store. */
	uint64_t v_segments, v_batches, v_records, v_first, v_last;
	uint64_t v_corrupt, v_torn, v_seq_errors, v_name_errors, v_bad_segments;

	struct group groups[GROUP_OPEN_MAX];
	size_t group_bytes;	       /* held in all groups */
	uint64_t group_clock;	       /* snapshots opened so far */
	const struct rec_hdr **g_hdrs; /* scratch for recfmt_snapshot() */
	const void **g_payloads;
	size_t g_cap;
};

/* SIGINT or SIGTERM under --follow. */
static volatile sig_atomic_t stop_sig;

static void on_stop_signal(int sig)
{
	stop_sig = sig;
}

/*
 * out_flush() - the buffer to stdout, with write(2): a short write goes on
 * where it stopped, a signal that interrupts it does not (unless it is
 * SIGINT/SIGTERM under --follow: then reading ends, see main()).
 */
static void out_flush(struct reader *r)
{
	struct recfmt_buf *b = &r->fmt.out;
	size_t done = 0;

	while (done < b->len && !r->failed) {
		ssize_t n = write(STDOUT_FILENO, b->p + done, b->len - done);

		if (n >= 0) {
			done += (size_t)n;
			if (done < b->len && stop_sig) {
				r->failed = 1;
				r->failed_errno = EINTR;
			}
		} else if (errno != EINTR || stop_sig) {
			r->failed = 1;
			r->failed_errno = errno;
		}
	}
	b->len = 0;
}

/* out_sync() - everything so far out to stdout, before a message on stderr. */
static void out_sync(struct reader *r)
{
	out_flush(r);
}

static inline void out_maybe_flush(struct reader *r)
{
	if (r->fmt.out.len >= OUT_FLUSH)
		out_flush(r);
}

static void print_record(struct reader *r, const struct rec_hdr *h, const uint8_t *payload)
{
	int ret = recfmt_record(&r->fmt, h, payload);

	if (ret == -ENOMEM) {
		r->oom = 1;
		return;
	}
	if (ret < 0) {
		/* Printed with "error" and its bytes; counted, told at the end. */
		if (!r->undecodable++) {
			r->first_bad_seq = h->seq;
			recfmt_error_text(&r->fmt, ret, h->type, payload, h->len, r->first_bad,
					  sizeof(r->first_bad));
		}
		if (ret == -EPROTO)
			r->newer++;
	}
	out_maybe_flush(r);
}

/* ------------------------------------------------------------------------
 * --group: the process records of one snapshot on one line.
 */

/* group_flush() - print a group (one line, or one record at a time) and empty it. */
static void group_flush(struct reader *r, struct group *g)
{
	size_t off = 0;
	int ret;

	if (!g->used)
		return;
	if (g->n > r->g_cap) {
		size_t cap = g->n * 2;
		/* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
		const struct rec_hdr **h = reallocarray(r->g_hdrs, cap, sizeof(*h));
		const void **p;

		if (h)
			r->g_hdrs = h;
		p = h ? reallocarray(r->g_payloads, cap, sizeof(*p)) : NULL;
		if (p)
			r->g_payloads = p;
		if (h && p)
			r->g_cap = cap;
	}
	ret = -ENOMEM;
	if (g->n <= r->g_cap) {
		for (size_t i = 0; i < g->n; i++) {
			const struct rec_hdr *h = (const struct rec_hdr *)(void *)(g->buf + off);

			r->g_hdrs[i] = h;
			r->g_payloads[i] = h + 1;
			off += rec_size(h->len);
		}
		ret = recfmt_snapshot(&r->fmt, r->g_hdrs, r->g_payloads, g->n);
	}
	if (ret < 0) {
		/* Each checked as a process before it joined: only memory can fail here. */
		off = 0;
		for (size_t i = 0; i < g->n && !r->oom; i++) {
			const struct rec_hdr *h = (const struct rec_hdr *)(void *)(g->buf + off);

			print_record(r, h, (const uint8_t *)(h + 1));
			off += rec_size(h->len);
		}
	}
	r->group_bytes -= g->len;
	g->used = 0;
	g->len = g->n = 0;
	if (g->cap > OUT_FLUSH) {
		free(g->buf);
		g->buf = NULL;
		g->cap = 0;
	}
	out_maybe_flush(r);
}

static struct group *group_oldest(struct reader *r)
{
	struct group *old = NULL;

	for (size_t i = 0; i < GROUP_OPEN_MAX; i++)
		if (r->groups[i].used && (!old || r->groups[i].opened < old->opened))
			old = &r->groups[i];
	return old;
}

/* group_flush_all() - at the end: every open snapshot, oldest first. */
static void group_flush_all(struct reader *r)
{
	struct group *g;

	while ((g = group_oldest(r)) && !r->failed && !r->oom)
		group_flush(r, g);
}

static void group_free(struct reader *r)
{
	for (size_t i = 0; i < GROUP_OPEN_MAX; i++)
		free(r->groups[i].buf);
	free(r->g_hdrs);
	free(r->g_payloads);
}

/*
 * group_record() - a process record under --group: held with the others of
 * its snapshot until that writer starts another snapshot, the limits are
 * reached, or the end.  One that does not decode is printed at once.
 */
static void group_record(struct reader *r, const struct rec_hdr *h, const uint8_t *payload)
{
	struct codec_process p;
	struct group *g = NULL, *free_slot = NULL;
	size_t size = rec_size(h->len);

	if (codec_decode_process(payload, h->len, &p) < 0) {
		print_record(r, h, payload);
		return;
	}
	for (size_t i = 0; i < GROUP_OPEN_MAX; i++) {
		if (!r->groups[i].used) {
			if (!free_slot)
				free_slot = &r->groups[i];
		} else if (r->groups[i].pid == h->pid) {
			g = &r->groups[i];
			break;
		}
	}
	if (g && g->snapshot_id != p.snapshot_id) {
		/* Records of a snapshot are consecutive for one writer: that one is done. */
		group_flush(r, g);
		free_slot = g;
		g = NULL;
	}
	if (!g) {
		if (!free_slot) {
			free_slot = group_oldest(r);
			group_flush(r, free_slot);
		}
		g = free_slot;
		g->used = 1;
		g->pid = h->pid;
		g->snapshot_id = p.snapshot_id;
		g->opened = r->group_clock++;
	}
	if (g->cap - g->len < size) {
		size_t cap = g->cap ? g->cap : 4096;
		uint8_t *nb;

		while (cap - g->len < size)
			cap *= 2;
		nb = realloc(g->buf, cap);
		if (!nb) {
			/* Out of memory: what is held goes out, this record alone. */
			group_flush(r, g);
			print_record(r, h, payload);
			return;
		}
		g->buf = nb;
		g->cap = cap;
	}
	memcpy(g->buf + g->len, h, sizeof(*h));
	memcpy(g->buf + g->len + sizeof(*h), payload, h->len);
	/* The padding too, so that every byte held is defined. */
	memset(g->buf + g->len + sizeof(*h) + h->len, 0, size - sizeof(*h) - h->len);
	g->len += size;
	g->n++;
	r->group_bytes += size;
	while (r->group_bytes > GROUP_BYTES_MAX)
		group_flush(r, group_oldest(r));
}

/* ------------------------------------------------------------------------
 * Messages.
 */

/*
 * report() - one line about the segment being read: on stdout as part of
 * the report under --verify, else on stderr (after what is printed so far,
 * so that it lands near its place).  damage: counts towards exit status 2.
 */
static void report(struct reader *r, int damage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct reader *r, int damage, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (damage)
		r->damaged = 1;
	if (r->verify) {
		struct recfmt_buf *o = &r->fmt.out;

		recfmt_mem(o, r->path, strlen(r->path));
		recfmt_lit(o, ": ");
		recfmt_mem(o, msg, strlen(msg));
		recfmt_lit(o, "\n");
		out_maybe_flush(r);
		return;
	}
	out_sync(r);
	fprintf(stderr, PROG ": %s: %s\n", r->path, msg);
}

/* What reading does after damage, for the end of a message. */
static const char *after_damage(const struct reader *r)
{
	if (r->verify)
		return "";
	return r->salvage ? "" : "; stopped there (--salvage reads on)";
}

/* ------------------------------------------------------------------------
 * The window: a segment is read in pieces, never whole.
 */

static void win_drop(struct win *w)
{
	w->len = 0;
	w->fd = -1;
}

/*
 * win_get() - make the window hold the bytes [off, off + n) of fd, as many
 * of them as the file has; *p points at off.  Returns how many of the n
 * bytes are there (fewer at the end of the file) or -errno.  The window
 * grows when n is larger: callers ask that only for a batch whose CRC was
 * checked (batch_at()).  What *p points to is valid until the next call.
 */
static ssize_t win_get(struct win *w, int fd, uint64_t off, size_t n, const uint8_t **p)
{
	size_t keep = 0;

	if (w->fd == fd && off >= w->off && off - w->off <= w->len) {
		keep = w->len - (size_t)(off - w->off);
		if (keep >= n) {
			*p = w->buf + (off - w->off);
			return (ssize_t)n;
		}
		if (keep && off != w->off)
			memmove(w->buf, w->buf + (off - w->off), keep);
	}
	if (n > w->cap) {
		size_t cap = (n + 0xffff) & ~(size_t)0xffff;
		uint8_t *nb = realloc(w->buf, cap);

		if (!nb) {
			win_drop(w);
			return -ENOMEM;
		}
		w->buf = nb;
		w->cap = cap;
	}
	w->fd = fd;
	w->off = off;
	w->len = keep;
	while (w->len < n) {
		ssize_t got = pread(fd, w->buf + w->len, w->cap - w->len, (off_t)(off + w->len));

		if (got < 0) {
			int err = -errno;

			if (err == -EINTR)
				continue;
			win_drop(w);
			return err;
		}
		if (got == 0)
			break;
		w->len += (size_t)got;
	}
	*p = w->buf;
	return (ssize_t)(w->len < n ? w->len : n);
}

/*
 * stream_crc_ok() - 1 when the batch at off with header h is all in the
 * file and its CRC is right, read piece by piece through the window; 0
 * when not; -errno.
 */
static int stream_crc_ok(struct reader *r, int fd, uint64_t off, const struct seg_batch_hdr *h)
{
	struct seg_batch_hdr tmp = *h;
	uint64_t at = off + SEG_BATCH_HDR_SIZE, end = at + h->length;
	uint32_t crc;

	tmp.crc = 0;
	crc = crc32c(0, &tmp, sizeof(tmp));
	while (at < end) {
		size_t want = end - at < r->win.cap ? (size_t)(end - at) : r->win.cap;
		const uint8_t *p;
		ssize_t got = win_get(&r->win, fd, at, want, &p);

		if (got < 0)
			return (int)got;
		if ((size_t)got < want)
			return 0; /* the file ends first */
		crc = crc32c(crc, p, want);
		at += want;
	}
	return crc == h->crc;
}

/*
 * batch_at() - 1 when a valid batch starts at off in s (seg_batch_check()
 * passes, and its first seq is at least s->min_seq: what seg_scan() takes
 * for the next batch), *p then pointing at it; 0 when there is none (not
 * all there yet, or damaged); -errno.
 */
static int batch_at(struct reader *r, struct seg *s, uint64_t off, const uint8_t **p)
{
	struct seg_batch_hdr h;
	size_t total;
	ssize_t got;
	int ret;

	got = win_get(&r->win, s->fd, off, SEG_BATCH_HDR_SIZE, p);
	if (got < 0)
		return (int)got;
	if ((size_t)got < SEG_BATCH_HDR_SIZE)
		return 0;
	/* The header alone: -ENODATA says it passed and the records are wanted. */
	if (seg_batch_check(*p, SEG_BATCH_HDR_SIZE) != -ENODATA)
		return 0;
	memcpy(&h, *p, sizeof(h));
	if (h.first_seq < s->min_seq)
		return 0;
	total = SEG_BATCH_HDR_SIZE + (size_t)h.length;
	if (total > r->win.cap && total > r->win.trusted) {
		/* Larger than anything seen: the CRC first, then the memory. */
		ret = stream_crc_ok(r, s->fd, off, &h);
		if (ret <= 0)
			return ret;
	}
	got = win_get(&r->win, s->fd, off, total, p);
	if (got < 0)
		return (int)got;
	if ((size_t)got < total || seg_batch_check(*p, total) != 0)
		return 0;
	if (total > r->win.trusted)
		r->win.trusted = total;
	return 1;
}

/*
 * find_next() - the first offset from `from` on, 8-aligned in the file as
 * batches are, where batch_at() finds a batch: 1 and *next; 0 when there
 * is none before the end of the file; -errno.  The magic is tested first,
 * so a long damaged region costs a load a step.
 */
static int find_next(struct reader *r, struct seg *s, uint64_t from, uint64_t *next)
{
	uint64_t o = from;

	for (;;) {
		const uint8_t *p;
		ssize_t got = win_get(&r->win, s->fd, o, SEG_BATCH_HDR_SIZE, &p);
		uint64_t end;

		if (got < 0)
			return (int)got;
		if ((size_t)got < SEG_BATCH_HDR_SIZE)
			return 0;
		end = r->win.off + r->win.len;
		for (; o + SEG_BATCH_HDR_SIZE <= end; o += 8) {
			uint32_t magic;
			int ret;

			memcpy(&magic, r->win.buf + (o - r->win.off), sizeof(magic));
			if (magic != SEG_BATCH_MAGIC)
				continue;
			ret = batch_at(r, s, o, &p);
			if (ret > 0)
				*next = o;
			if (ret)
				return ret;
			/* batch_at() may have moved the window: look again from the next offset. */
			o += 8;
			break;
		}
	}
}

enum { RD_BATCH, RD_END, RD_PARTIAL, RD_CORRUPT };

/*
 * rd_next() - what is at s->off: RD_BATCH (*p points at it), RD_END (the
 * end of the file), RD_CORRUPT (a damaged region, and the next valid batch
 * at *next), RD_PARTIAL (bytes that are no batch, and no valid batch after
 * them: a batch being written, or a torn tail); or -errno.
 */
static int rd_next(struct reader *r, struct seg *s, const uint8_t **p, uint64_t *next)
{
	const uint8_t *q;
	ssize_t got;
	int ret = batch_at(r, s, s->off, p);

	if (ret)
		return ret > 0 ? RD_BATCH : ret;
	got = win_get(&r->win, s->fd, s->off, 1, &q);
	if (got <= 0)
		return got < 0 ? (int)got : RD_END;
	ret = find_next(r, s, s->off + 8, next);
	if (ret < 0)
		return ret;
	return ret ? RD_CORRUPT : RD_PARTIAL;
}

static uint64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_size > 0 ? (uint64_t)st.st_size : 0;
}

/* ------------------------------------------------------------------------
 * Segments.
 */

static void seg_close(struct reader *r, struct seg *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	win_drop(&r->win);
}

/*
 * seg_open() - open segment `name` of DIR into s, to be read from off (0:
 * from its file header on), batches from min_seq.  0 or -errno (-ENOENT:
 * removed since it was listed).  r->path names it from here on.
 */
static int seg_open(struct reader *r, struct seg *s, uint64_t name, uint64_t off, uint64_t min_seq)
{
	char file[SEG_NAME_LEN + 1];
	size_t dl = strlen(r->dir);
	struct stat st;
	int fd;

	seg_close(r, s);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->name = name;
	s->off = off;
	s->min_seq = min_seq;
	seg_name(file, name);
	snprintf(r->path, sizeof(r->path), "%s%s%s", r->dir, dl && r->dir[dl - 1] == '/' ? "" : "/",
		 file);
	fd = openat(r->dirfd, file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	s->fd = fd;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return 0;
}

/* seg_gone() - 1 when s's name no longer leads to the file s has open. */
static int seg_gone(struct reader *r, const struct seg *s)
{
	char file[SEG_NAME_LEN + 1];
	struct stat st;

	seg_name(file, s->name);
	if (fstatat(r->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT;
	return st.st_dev != s->dev || st.st_ino != s->ino;
}

/*
 * seg_header() - check the file header of s: 0 (s->off is then past it),
 * 1 when the file is shorter than a header, or -EBADMSG / -EPROTO / -errno.
 */
static int seg_header(struct reader *r, struct seg *s)
{
	struct seg_file_hdr fh;
	const uint8_t *p;
	ssize_t got = win_get(&r->win, s->fd, 0, SEG_FILE_HDR_SIZE, &p);
	int ret;

	if (got < 0)
		return (int)got;
	if ((size_t)got < SEG_FILE_HDR_SIZE)
		return 1;
	/* win_get() returned >= 0: p is set (errno: see .clang-tidy). */
	/* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage) */
	memcpy(&fh, p, sizeof(fh));
	ret = seg_file_hdr_check(&fh);
	if (ret)
		return ret;
	if (r->verify && fh.first_seq != s->name) {
		r->v_name_errors++;
		report(r, 1, "its file header says first seq %" PRIu64 ", its name %" PRIu64,
		       fh.first_seq, s->name);
	}
	s->off = SEG_FILE_HDR_SIZE;
	return 0;
}

/* handle_batch() - a valid batch of s at s->off (p): checks across segments, then print. */
static void handle_batch(struct reader *r, struct seg *s, const uint8_t *p)
{
	struct seg_batch_hdr bh;
	const uint8_t *rec, *end;
	uint64_t lo = r->from_seq;

	memcpy(&bh, p, sizeof(bh));
	if (s->batches++ == 0) {
		s->first_seq = bh.first_seq;
		if (r->verify && s->name > bh.first_seq) {
			r->v_name_errors++;
			report(r, 1, "named after seq %" PRIu64 ", above its first seq %" PRIu64,
			       s->name, bh.first_seq);
		}
	}
	s->records += bh.count;
	s->last_seq = bh.last_seq;
	s->min_seq = bh.last_seq + 1;

	/* Within a file the order is the scan's (min_seq); across files it is checked here. */
	if (r->have_last && bh.first_seq <= r->last_seq) {
		if (!r->rewound) {
			if (r->verify)
				r->v_seq_errors++;
			report(r, 1,
			       "batch at offset %" PRIu64 " starts at seq %" PRIu64
			       ", not above seq %" PRIu64 " read before it%s",
			       s->off, bh.first_seq, r->last_seq,
			       r->salvage ? " (its records up to that seq skipped)"
					  : after_damage(r));
			if (!r->salvage && !r->verify) {
				r->stop = 1;
				return;
			}
		}
		/* Went back (--follow) or --salvage: only what is above. */
		if (lo <= r->last_seq)
			lo = r->last_seq + 1;
	} else {
		r->rewound = 0;
	}
	if (!r->have_last || bh.last_seq > r->last_seq) {
		r->last_seq = bh.last_seq;
		r->have_last = 1;
	}
	if (r->verify || bh.last_seq < lo)
		return;

	/* seg_batch_check() has walked these records: every length fits. */
	rec = p + SEG_BATCH_HDR_SIZE;
	end = rec + bh.length;
	while (rec < end && !r->oom) {
		struct rec_hdr h;

		memcpy(&h, rec, sizeof(h));
		if (h.seq >= lo && h.ts_ns >= r->since_ns && h.ts_ns <= r->until_ns) {
			if (r->group && h.type == BE_TYPE_PROCESS)
				group_record(r, &h, rec + sizeof(h));
			else
				print_record(r, &h, rec + sizeof(h));
			if (--r->left == 0) {
				r->stop = 1;
				break;
			}
		}
		rec += rec_size(h.len);
	}
}

/*
 * rewritten() - under --follow, at the end of what s holds: has the last
 * batch read from it been cut away or written over?  (The daemon cuts a
 * segment back after a failed fdatasync, to the batch's start or further,
 * then writes the batch again, maybe with more records.)  Then s is read
 * again from its start, and batches and records already read are skipped
 * (r->rewound).  1 when it went back.
 */
static int rewritten(struct reader *r, struct seg *s)
{
	struct seg_batch_hdr h;

	if (!r->follow || !s->last_off)
		return 0;
	if (file_size(s->fd) >= s->off &&
	    pread(s->fd, &h, sizeof(h), (off_t)s->last_off) == (ssize_t)sizeof(h) &&
	    h.crc == s->last_crc)
		return 0;
	s->off = SEG_FILE_HDR_SIZE;
	s->min_seq = 0;
	s->last_off = 0; /* until a batch is read again */
	r->rewound = r->have_last;
	win_drop(&r->win);
	return 1;
}

static int stopping(const struct reader *r)
{
	return r->stop || r->failed || r->oom || stop_sig;
}

enum { SEG_DONE, SEG_PARTIAL, SEG_STOP };

/*
 * read_seg() - read s from s->off on, up to the end of what is there.
 * Returns SEG_DONE (its end reached, or nothing more can be read from it),
 * SEG_PARTIAL (bytes at its end are no batch, or not yet: s->torn_off and
 * s->torn_bytes; the caller decides what they are), or SEG_STOP.
 */
static int read_seg(struct reader *r, struct seg *s)
{
	for (;;) {
		struct seg_batch_hdr bh;
		const uint8_t *p;
		uint64_t next = 0;
		int ret;

		if (stopping(r))
			return SEG_STOP;
		if (s->dead)
			return SEG_DONE;
		if (s->off == 0) {
			ret = seg_header(r, s);
			if (ret == 1) {
				s->torn_off = 0;
				s->torn_bytes = file_size(s->fd);
				win_drop(&r->win);
				return SEG_PARTIAL;
			}
			if (ret < 0) {
				s->dead = 1;
				r->v_bad_segments++;
				report(r, 1, "%s%s",
				       ret == -EBADMSG	? "bad segment file header"
				       : ret == -EPROTO ? "segment of another format version"
							: strerror(-ret),
				       after_damage(r));
				if (!r->salvage && !r->verify)
					r->stop = 1;
			}
			continue;
		}
		ret = rd_next(r, s, &p, &next);
		switch (ret) {
		case RD_BATCH:
			memcpy(&bh, p, sizeof(bh));
			s->last_off = s->off;
			s->last_crc = bh.crc;
			handle_batch(r, s, p);
			s->off += SEG_BATCH_HDR_SIZE + bh.length;
			if (r->live)
				out_sync(r);
			break;
		case RD_CORRUPT:
			if (rewritten(r, s))
				break;
			s->corrupt++;
			r->v_corrupt++;
			if (r->verify)
				report(r, 1,
				       "corrupt batch at offset %" PRIu64 " (%" PRIu64 " bytes)",
				       s->off, next - s->off);
			else if (r->salvage)
				report(r, 1,
				       "corrupt batch at offset %" PRIu64 " (%" PRIu64
				       " bytes skipped)",
				       s->off, next - s->off);
			else
				report(r, 1,
				       "corrupt batch at offset %" PRIu64 " (%" PRIu64
				       " bytes before the next valid batch)%s",
				       s->off, next - s->off, after_damage(r));
			if (!r->salvage && !r->verify) {
				r->stop = 1;
				return SEG_STOP;
			}
			s->off = next;
			break;
		case RD_END:
			if (rewritten(r, s))
				break;
			s->torn_bytes = 0;
			win_drop(&r->win);
			return SEG_DONE;
		case RD_PARTIAL:
			if (rewritten(r, s))
				break;
			s->torn_off = s->off;
			s->torn_bytes = file_size(s->fd);
			s->torn_bytes = s->torn_bytes > s->off ? s->torn_bytes - s->off : 0;
			/* Read again next time: the bytes may be rewritten in place. */
			win_drop(&r->win);
			return SEG_PARTIAL;
		default:
			s->dead = 1;
			r->v_bad_segments++;
			report(r, 1, "read error at offset %" PRIu64 ": %s%s", s->off,
			       strerror(-ret), after_damage(r));
			if (!r->salvage && !r->verify)
				r->stop = 1;
			break;
		}
	}
}

/* torn() - say what the bytes at the end of s that are no batch are. */
static void torn(struct reader *r, struct seg *s, int newest, int follow_newer)
{
	r->v_torn++;
	if (s->torn_off == 0) {
		if (newest)
			report(r, 0,
			       "%" PRIu64 " bytes, shorter than a segment file header"
			       " (being created?)",
			       s->torn_bytes);
		else
			report(r, 1,
			       "bad segment file header (%" PRIu64 " bytes, shorter than one)",
			       s->torn_bytes);
	} else if (follow_newer) {
		report(r, 1,
		       "torn tail of %" PRIu64 " bytes at offset %" PRIu64
		       " and a newer segment exists: left by a crash, skipped",
		       s->torn_bytes, s->torn_off);
	} else if (newest) {
		report(r, 0,
		       "torn tail of %" PRIu64 " bytes at offset %" PRIu64 " (not yet recovered)",
		       s->torn_bytes, s->torn_off);
	} else {
		report(r, 1,
		       "damaged tail of %" PRIu64 " bytes at offset %" PRIu64
		       " (not the last segment)",
		       s->torn_bytes, s->torn_off);
	}
}

/* verify_seg() - --verify: the summary line of s, and into the totals. */
static void verify_seg(struct reader *r, struct seg *s)
{
	struct recfmt_buf *o = &r->fmt.out;

	s->size = s->fd >= 0 ? file_size(s->fd) : 0;
	recfmt_mem(o, r->path, strlen(r->path));
	recfmt_lit(o, ": batches=");
	recfmt_u64(o, s->batches);
	recfmt_lit(o, " records=");
	recfmt_u64(o, s->records);
	recfmt_lit(o, " first_seq=");
	recfmt_u64(o, s->first_seq);
	recfmt_lit(o, " last_seq=");
	recfmt_u64(o, s->last_seq);
	recfmt_lit(o, " corrupt=");
	recfmt_u64(o, s->corrupt);
	recfmt_lit(o, " torn_bytes=");
	recfmt_u64(o, s->torn_bytes);
	recfmt_lit(o, " size=");
	recfmt_u64(o, s->size);
	recfmt_lit(o, "\n");
	out_maybe_flush(r);
	r->v_segments++;
	r->v_batches += s->batches;
	r->v_records += s->records;
	if (s->batches) {
		if (!r->v_first)
			r->v_first = s->first_seq;
		if (s->last_seq > r->v_last)
			r->v_last = s->last_seq;
	}
}

static void verify_total(struct reader *r)
{
	struct recfmt_buf *o = &r->fmt.out;

	recfmt_lit(o, "total: segments=");
	recfmt_u64(o, r->v_segments);
	recfmt_lit(o, " batches=");
	recfmt_u64(o, r->v_batches);
	recfmt_lit(o, " records=");
	recfmt_u64(o, r->v_records);
	recfmt_lit(o, " first_seq=");
	recfmt_u64(o, r->v_first);
	recfmt_lit(o, " last_seq=");
	recfmt_u64(o, r->v_last);
	recfmt_lit(o, " corrupt=");
	recfmt_u64(o, r->v_corrupt);
	recfmt_lit(o, " torn_tails=");
	recfmt_u64(o, r->v_torn);
	recfmt_lit(o, " seq_errors=");
	recfmt_u64(o, r->v_seq_errors);
	recfmt_lit(o, " name_errors=");
	recfmt_u64(o, r->v_name_errors);
	recfmt_lit(o, " bad_segments=");
	recfmt_u64(o, r->v_bad_segments);
	if (r->damaged)
		recfmt_lit(o, " status=damaged\n");
	else
		recfmt_lit(o, " status=clean\n");
}

/*
 * read_existing() - every segment there is, in order.  Under --follow the
 * newest stays open in r->cur, read up to its end, to be followed.
 */
static void read_existing(struct reader *r, const uint64_t *segs, int n)
{
	for (int i = 0; i < n && !stopping(r); i++) {
		struct seg *s = &r->cur;
		int newest = i == n - 1, ret, st;

		ret = seg_open(r, s, segs[i], 0, 0);
		if (ret == -ENOENT) {
			/* Listed, then removed: retention runs while we read.  Not damage. */
			report(r, 0, "removed while reading, skipped");
			continue;
		}
		if (ret < 0) {
			r->v_bad_segments++;
			report(r, 1, "%s%s", strerror(-ret), after_damage(r));
			if (!r->salvage && !r->verify)
				r->stop = 1;
			continue;
		}
		st = read_seg(r, s);
		if (st == SEG_STOP)
			break;
		if (r->follow && newest)
			return; /* followed from here: its end may still be being written */
		if (st == SEG_PARTIAL)
			torn(r, s, newest, 0);
		if (r->verify)
			verify_seg(r, s);
		if (s->off) {
			r->prev_name = s->name;
			r->prev_end = s->off;
			r->prev_min = s->min_seq;
			r->have_prev = 1;
		}
		seg_close(r, s);
	}
}

/* ------------------------------------------------------------------------
 * --follow.
 */

/*
 * follow_open() - go on reading with segment `name` at off, after the one
 * read so far; skip the segments removed before they could be opened.
 * segs[from..n) are the candidates, name = segs[from] first.  Returns 1
 * when one is open.
 */
static int follow_open(struct reader *r, const uint64_t *segs, int from, int n, uint64_t off,
		       uint64_t min_seq)
{
	for (int i = from; i < n; i++) {
		int ret =
			seg_open(r, &r->cur, segs[i], i == from ? off : 0, i == from ? min_seq : 0);

		if (ret == 0)
			return 1;
		if (ret == -ENOENT) {
			report(r, 0, "removed before it could be read (retention?), skipped");
			continue;
		}
		r->v_bad_segments++;
		report(r, 1, "%s%s", strerror(-ret), after_damage(r));
		if (!r->salvage) {
			r->stop = 1;
			return 0;
		}
	}
	return 0;
}

/*
 * follow_dir() - the directory changed (or it is time to look): move to a
 * newer segment when there is one, or back to the one the daemon went on
 * in when ours was set aside.  Returns 1 when another segment is open.
 */
static int follow_dir(struct reader *r)
{
	struct seg *s = &r->cur;
	uint64_t *segs = NULL;
	int n, i, st, moved = 0;

	n = seg_list(r->dirfd, &segs);
	if (n < 0)
		return 0; /* try again at the next look */
	if (s->fd < 0) {
		/* None open (nothing there yet, or all of it went away). */
		if (n > 0) {
			i = 0;
			/* After records were read: the segment that would hold the next seq. */
			while (r->have_last && i + 1 < n && segs[i + 1] <= r->last_seq + 1)
				i++;
			r->rewound = r->have_last;
			moved = follow_open(r, segs, i, n, 0, 0);
		}
		goto out;
	}
	for (i = 0; i < n && segs[i] <= s->name; i++)
		;
	if (i < n) {
		/*
		 * A newer segment exists, and the daemon wrote ours in full before
		 * it created that one: one last look; what is still no batch at its
		 * end will not become one.
		 */
		st = read_seg(r, s);
		if (st == SEG_STOP)
			goto out;
		if (st == SEG_PARTIAL)
			torn(r, s, 0, 1);
		if (s->off) {
			r->prev_name = s->name;
			r->prev_end = s->off;
			r->prev_min = s->min_seq;
			r->have_prev = 1;
		}
		seg_close(r, s);
		moved = follow_open(r, segs, i, n, 0, 0);
		goto out;
	}
	if (seg_gone(r, s)) {
		/*
		 * Ours is the newest and was removed or renamed: recovery set it
		 * aside (a crash during rotation) and the daemon goes on in the
		 * segment before it, or in a new file of the same name.
		 */
		uint64_t name = s->name;

		st = read_seg(r, s);
		if (st == SEG_STOP)
			goto out;
		if (st == SEG_PARTIAL && s->torn_bytes)
			report(r, 0,
			       "set aside by recovery with %" PRIu64 " bytes at offset %" PRIu64
			       " that are no batch",
			       s->torn_bytes, s->torn_off);
		seg_close(r, s);
		if (n == 0)
			goto out;
		r->rewound = r->have_last;
		if (segs[n - 1] != name && r->have_prev && segs[n - 1] == r->prev_name)
			moved = follow_open(r, segs, n - 1, n, r->prev_end, r->prev_min);
		else
			moved = follow_open(r, segs, n - 1, n, 0, 0);
	}
out:
	free(segs);
	return moved;
}

/* follow_events() - empty the inotify queue; *dirty when the directory's entries changed. */
static void follow_events(int ifd, int *dirty)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		ssize_t len = read(ifd, buf, sizeof(buf));

		if (len <= 0)
			return;
		for (ssize_t at = 0; at + (ssize_t)sizeof(struct inotify_event) <= len;) {
			const struct inotify_event *ev = (const void *)(buf + at);

			if (ev->mask & ~(uint32_t)IN_MODIFY)
				*dirty = 1;
			at += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
}

/*
 * follow_wait() - sleep until the directory changes, a signal, or
 * timeout_ms.  Returns 1 on the timeout.  A closed output pipe is an end
 * too (as for a failed write).
 */
static int follow_wait(struct reader *r, int ifd, int watch_out, int timeout_ms, int *dirty)
{
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	struct pollfd pfd[2];
	sigset_t block, old;
	nfds_t n = 0;
	int ret;

	if (ifd >= 0)
		pfd[n++] = (struct pollfd){ .fd = ifd, .events = POLLIN };
	if (watch_out)
		pfd[n++] = (struct pollfd){ .fd = STDOUT_FILENO, .events = 0 };
	/* Blocked from the check to the sleep, so that a signal cannot fall between. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	ret = stop_sig ? -1 : ppoll(pfd, n, &ts, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (ret <= 0)
		return ret == 0;
	for (nfds_t i = 0; i < n; i++) {
		if (pfd[i].fd == STDOUT_FILENO && (pfd[i].revents & (POLLERR | POLLHUP))) {
			r->failed = 1;
			r->failed_errno = EPIPE;
		} else if (pfd[i].fd == ifd && pfd[i].revents) {
			follow_events(ifd, dirty);
		}
	}
	return 0;
}

static int groups_open(const struct reader *r)
{
	for (size_t i = 0; i < GROUP_OPEN_MAX; i++)
		if (r->groups[i].used)
			return 1;
	return 0;
}

/* follow() - after read_existing(): wait for batches and print them as they land. */
static void follow(struct reader *r)
{
	const uint32_t mask = IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
			      IN_DELETE_SELF | IN_MOVE_SELF;
	int ifd, dirty = 1, watch_out = 0;
	uint64_t last_progress = now_mono_ns();
	struct stat st;

	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (ifd >= 0 && inotify_add_watch(ifd, r->dir, mask) < 0) {
		int err = errno;

		close(ifd);
		ifd = -1;
		errno = err;
	}
	if (ifd < 0)
		fprintf(stderr, PROG ": %s: inotify: %s; looking every %d ms instead\n", r->dir,
			strerror(errno), POLL_MS);
	/* A pipe whose reader went away ends the wait, not only the next write. */
	if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		watch_out = 1;
	r->live = 1;
	for (;;) {
		uint64_t off = r->cur.off, name = r->cur.name;
		int fd = r->cur.fd, timeout;

		if (r->cur.fd >= 0 && read_seg(r, &r->cur) == SEG_STOP)
			break;
		if (dirty) {
			dirty = 0;
			if (follow_dir(r)) {
				/* Read the new one at once, then look again: more may be there. */
				last_progress = now_mono_ns();
				dirty = 1;
				continue;
			}
		}
		if (stopping(r))
			break;
		if (r->cur.fd != fd || r->cur.off != off || r->cur.name != name)
			last_progress = now_mono_ns();
		out_sync(r);
		if (r->failed)
			break;
		timeout = ifd >= 0 ? RECHECK_MS : POLL_MS;
		if (r->group && groups_open(r)) {
			/* Held snapshots go out once nothing came for a while. */
			uint64_t idle_ms = (now_mono_ns() - last_progress) / NSEC_PER_MSEC;

			if (idle_ms >= GROUP_IDLE_MS) {
				group_flush_all(r);
				out_sync(r);
				continue;
			}
			if ((uint64_t)timeout > GROUP_IDLE_MS - idle_ms)
				timeout = (int)(GROUP_IDLE_MS - idle_ms);
		}
		if (follow_wait(r, ifd, watch_out, timeout, &dirty))
			dirty = 1; /* look at the directory anyway now and then */
	}
	if (ifd >= 0)
		close(ifd);
}

/* ------------------------------------------------------------------------
 * Arguments.
 */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTION]... DIR\n"
		"Print the records of a store's segments, DIR = <data_dir>/<store>, in seq order.\n"
		"\n"
		"  --json          JSON Lines: seq, ts, ts_ns, pid, type, then the decoded\n"
		"                  fields of metric, log and process records, or \"data\"\n"
		"                  (base64) for raw ones\n"
		"  --group         one line per process snapshot (its processes as an array\n"
		"                  in JSON, indented lines in text); a snapshot is printed\n"
		"                  when its writer starts the next one, so lines are no\n"
		"                  longer in seq order (at most %u snapshots or %u MiB\n"
		"                  are held: then the oldest is printed, maybe in parts)\n"
		"  --from-seq N    only records with seq >= N\n"
		"  --since TIME    only records written at or after TIME (their header's time)\n"
		"  --until TIME    only records written at or before TIME\n"
		"  --count N       stop after N records\n"
		"  -f, --follow    after what exists, wait for new batches and print them as\n"
		"                  they land, across new segments, like tail -F; ends with\n"
		"                  SIGINT, SIGTERM or a closed output (not with --until)\n"
		"  --salvage       at a corrupt batch, skip to the next valid one and read on\n"
		"                  (without it, reading stops there)\n"
		"  --verify        check every batch and the seq order of all segments; print\n"
		"                  a summary, no records (--verify-only: the same)\n"
		"  -h, --help      this text\n"
		"  -V, --version   the version\n"
		"\n"
		"TIME: 2026-11-27T01:02:03[.frac]Z or with an offset (+01:00); @UNIX-SECONDS\n"
		"[.frac]; -30s, -10m, -2h, -1d, -1w (before now); now.\n"
		"\n"
		"Damage (a corrupt batch, a bad segment, a damaged tail) is reported on\n"
		"stderr with the file and the offset.  Without --salvage, reading stops at\n"
		"the first corrupt batch or bad segment: what was printed before it is all\n"
		"good and in order.  With --salvage, everything readable is printed.  A\n"
		"torn tail in the newest segment (a batch being written, or not yet\n"
		"recovered) is not damage: --follow waits for it.  A payload that does not\n"
		"decode (damaged, or of a newer format) is printed with \"error\" and its\n"
		"bytes, and counts as damage.\n"
		"\n"
		"Exit status: 0 all read (also when --count, SIGINT, SIGTERM or a closed\n"
		"output ended it), 1 bad arguments, DIR unusable or output failed, 2 damage\n"
		"was met (with --verify: the store is damaged).\n",
		(unsigned)GROUP_OPEN_MAX, (unsigned)(GROUP_BYTES_MAX >> 20));
}

/* parse_u64() - a plain decimal number, nothing before or after it. */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

/* Exactly n digits at *s into *v. */
static int digits(const char **s, int n, unsigned *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		unsigned d = (unsigned char)(*s)[i] - '0';

		if (d > 9)
			return -EINVAL;
		*v = *v * 10 + d;
	}
	*s += n;
	return 0;
}

/* An optional ".frac" (1 to 9 digits, more are cut) at *s: nanoseconds. */
static int fraction(const char **s, uint64_t *ns)
{
	uint64_t scale = 100000000;
	int n = 0;

	*ns = 0;
	if (**s != '.' && **s != ',')
		return 0;
	for ((*s)++; **s >= '0' && **s <= '9'; (*s)++, n++) {
		*ns += (uint64_t)(**s - '0') * scale;
		scale /= 10;
	}
	return n ? 0 : -EINVAL;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * parse_time() - TIME as --help says, into ns since the epoch (UTC).
 * 0, or -EINVAL (not a time), -ERANGE (before 1970 or beyond 2554).
 */
static int parse_time(const char *s, uint64_t now, uint64_t *out)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	unsigned y, mo, d, h, mi, sec = 0, oh = 0, om = 0;
	uint64_t frac = 0, v;
	int64_t t;
	int sign = 0;

	if (strcmp(s, "now") == 0) {
		*out = now;
		return 0;
	}
	if (*s == '@') {
		const char *p = ++s;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (v = 0; *p >= '0' && *p <= '9'; p++) {
			if (v > UINT64_MAX / NSEC_PER_SEC / 10)
				return -ERANGE;
			v = v * 10 + (uint64_t)(*p - '0');
		}
		if (fraction(&p, &frac) < 0 || *p)
			return -EINVAL;
		if (v > (UINT64_MAX - frac) / NSEC_PER_SEC)
			return -ERANGE;
		*out = v * NSEC_PER_SEC + frac;
		return 0;
	}
	if (*s == '-') {
		static const struct {
			char c;
			uint64_t s;
		} units[] = {
			{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
		};
		const char *p = ++s;
		uint64_t mult = 0;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		for (v = 0; *p >= '0' && *p <= '9'; p++) {
			if (v > UINT32_MAX)
				return -ERANGE;
			v = v * 10 + (uint64_t)(*p - '0');
		}
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*p == units[i].c)
				mult = units[i].s;
		if (!mult || p[1])
			return -EINVAL;
		/* Before the epoch, or so far back that v * mult ns would wrap. */
		if (v > now / (mult * NSEC_PER_SEC))
			return -ERANGE;
		v *= mult * NSEC_PER_SEC;
		*out = now - v;
		return 0;
	}
	/* ISO 8601: YYYY-MM-DDTHH:MM[:SS[.frac]] and a zone. */
	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
	    digits(&s, 2, &d))
		return -EINVAL;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -EINVAL;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
		return -EINVAL;
	if (*s == ':') {
		s++;
		if (digits(&s, 2, &sec) || fraction(&s, &frac) < 0)
			return -EINVAL;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '-' ? -1 : 1;
		if (digits(&s, 2, &oh))
			return -EINVAL;
		if (*s == ':')
			s++;
		if (*s && digits(&s, 2, &om))
			return -EINVAL;
	} else {
		return -EINVAL; /* no zone: local time is not guessed */
	}
	if (*s || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) || h > 23 || mi > 59 ||
	    sec > 60 || oh > 23 || om > 59)
		return -EINVAL;
	t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec -
	    sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
	if (t < 0)
		return -ERANGE;
	if ((uint64_t)t > (UINT64_MAX - frac) / NSEC_PER_SEC)
		return -ERANGE;
	*out = (uint64_t)t * NSEC_PER_SEC + frac;
	return 0;
}

static int bad_time(const char *opt, const char *arg, int err)
{
	if (err == -ERANGE)
		fprintf(stderr, PROG ": %s: '%s' is out of range (1970 to 2554)\n", opt, arg);
	else
		fprintf(stderr,
			PROG ": %s: not a time: '%s' (2026-11-27T01:02:03Z, ...+01:00, "
			     "@UNIX-SECONDS, -10m, -2h, -1d or now; see --help)\n",
			opt, arg);
	return EXIT_USAGE;
}

enum {
	OPT_JSON = 256,
	OPT_FROM_SEQ,
	OPT_VERIFY,
	OPT_GROUP,
	OPT_SINCE,
	OPT_UNTIL,
	OPT_COUNT,
	OPT_SALVAGE,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "group", no_argument, NULL, OPT_GROUP },
		{ "from-seq", required_argument, NULL, OPT_FROM_SEQ },
		{ "since", required_argument, NULL, OPT_SINCE },
		{ "until", required_argument, NULL, OPT_UNTIL },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "follow", no_argument, NULL, 'f' },
		{ "salvage", no_argument, NULL, OPT_SALVAGE },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "verify-only", no_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct reader r = { 0 };
	uint64_t *segs = NULL, now = now_real_ns();
	int nseg, c, json = 0, have_until = 0, status = EXIT_OK, ret;

	r.until_ns = UINT64_MAX;
	r.left = UINT64_MAX;
	r.cur.fd = -1;
	r.win.fd = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fhV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = 1;
			break;
		case OPT_GROUP:
			r.group = 1;
			break;
		case OPT_FROM_SEQ:
			if (parse_u64(optarg, &r.from_seq) < 0) {
				fprintf(stderr, PROG ": --from-seq: not a sequence number: '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_SINCE:
			ret = parse_time(optarg, now, &r.since_ns);
			if (ret < 0)
				return bad_time("--since", optarg, ret);
			break;
		case OPT_UNTIL:
			ret = parse_time(optarg, now, &r.until_ns);
			if (ret < 0)
				return bad_time("--until", optarg, ret);
			have_until = 1;
			break;
		case OPT_COUNT:
			if (parse_u64(optarg, &r.left) < 0) {
				fprintf(stderr, PROG ": --count: not a number: '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'f':
			r.follow = 1;
			break;
		case OPT_SALVAGE:
			r.salvage = 1;
			break;
		case OPT_VERIFY:
			r.verify = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf(PROG " " BE_VERSION_STRING "\n");
			return EXIT_OK;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs an argument (see --help)\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		default:
			if (optopt > 0 && optopt < 256)
				fprintf(stderr, PROG ": unknown option '-%c' (see --help)\n",
					optopt);
			else if (strchr(argv[optind - 1], '='))
				fprintf(stderr,
					PROG ": option '%s' takes no argument (see --help)\n",
					argv[optind - 1]);
			else
				fprintf(stderr, PROG ": unknown option '%s' (see --help)\n",
					argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, PROG ": %s (see --help)\n",
			argc - optind < 1 ? "missing DIR" : "exactly one DIR expected");
		return EXIT_USAGE;
	}
	if (r.verify && r.follow) {
		fprintf(stderr, PROG ": --verify and --follow do not go together\n");
		return EXIT_USAGE;
	}
	if (have_until && r.follow) {
		fprintf(stderr, PROG ": --until and --follow do not go together (a followed "
				     "store has no end; --count can end it)\n");
		return EXIT_USAGE;
	}
	if (r.since_ns > r.until_ns) {
		fprintf(stderr, PROG ": --since is after --until: no record can match\n");
		return EXIT_USAGE;
	}
	r.dir = argv[optind];

	/* A closed pipe is a write error to act on, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);
	if (r.follow) {
		/* No SA_RESTART: a write blocked on a stalled reader ends too. */
		struct sigaction sa = { .sa_handler = on_stop_signal };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}

	r.dirfd = open(r.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r.dirfd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", r.dir, strerror(errno));
		return EXIT_USAGE;
	}
	nseg = seg_list(r.dirfd, &segs);
	if (nseg < 0) {
		fprintf(stderr, PROG ": %s: %s\n", r.dir, strerror(-nseg));
		status = EXIT_USAGE;
		goto out_close;
	}
	r.win.cap = WIN_CAP;
	r.win.buf = malloc(r.win.cap);
	if (!r.win.buf || recfmt_init(&r.fmt, json, PROG, OUT_CAP) < 0) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		status = EXIT_USAGE;
		goto out_free;
	}

	if (r.left)
		read_existing(&r, segs, nseg);
	if (r.follow && r.left && !stopping(&r))
		follow(&r);
	seg_close(&r, &r.cur);
	if (r.group)
		group_flush_all(&r);
	if (r.verify && !r.failed && !r.oom)
		verify_total(&r);
	out_sync(&r);
	if (r.oom) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		status = EXIT_USAGE;
	} else if (r.failed && r.failed_errno != EPIPE && !(stop_sig && r.failed_errno == EINTR)) {
		fprintf(stderr, PROG ": writing output: %s\n", strerror(r.failed_errno));
		status = EXIT_USAGE;
	} else {
		/* Done, or ended by --count, a signal or a reader that went away. */
		if (r.undecodable) {
			fprintf(stderr,
				PROG ": %s: %" PRIu64 " record%s could not be decoded (printed with"
				     " \"error\" and the payload's bytes); the first, seq %" PRIu64
				     ": %s\n",
				r.dir, r.undecodable, r.undecodable == 1 ? "" : "s",
				r.first_bad_seq, r.first_bad);
			if (r.newer)
				fprintf(stderr,
					PROG ": %" PRIu64 " of them in a newer payload format: "
					     "read them with a newer be-read\n",
					r.newer);
			r.damaged = 1;
		}
		if (r.damaged)
			status = EXIT_DAMAGE;
	}

	group_free(&r);
	recfmt_free(&r.fmt);
out_free:
	free(r.win.buf);
	free(segs);
out_close:
	close(r.dirfd);
	return status;
}
