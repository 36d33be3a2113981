/*
 * shm-dump.c - show what is in the rings of an instance, live.
 *
 * Without a store, one table row per ring found in /dev/shm (fill with a
 * bar, unflushed bytes and records, the age of the oldest unflushed record,
 * write and flush rates, drops, the writers' lock, the daemon and its
 * heartbeat, the last error); with a store, every field of its header page,
 * one "name: value" a line; with --records N, the oldest N records not yet
 * flushed (or with --tail the newest N), decoded like be-read does, and with
 * --hex their bytes too.  --json gives the same as JSON, --prometheus the
 * counters and gauges in the Prometheus text format (--prometheus-file: into
 * a file, replaced atomically, for node_exporter's textfile collector), and
 * --watch redraws it all every few seconds like top(1), with the rates
 * computed between two redraws.
 *
 * shm-dump only reads: it maps rings read-only, never takes the writers'
 * lock and never stores to shared memory.  Everything it shows comes from
 * a private snapshot copied under the SIGBUS guard (a ring truncated under
 * us is an error row, not a crash), and every value of that snapshot is
 * checked before any arithmetic depends on it.  Records are copied with
 * ring_collect(), then the tail is read again: a record below the new tail
 * may have been overwritten while we copied it, and is left out.  The one
 * record header the table reads (the oldest, at the tail, for its age) is
 * copied and checked the same way.
 *
 * Exit status: 0 fine, 1 bad usage or no such store, 2 a ring is damaged
 * or could not be read (every other ring is still shown), or the output
 * could not be written.  With --watch: 0 when stopped by SIGINT or SIGTERM
 * or after --iterations, whatever the rings showed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bsd/libutil.h>

#include "bufferengine.h"
#include "server/recfmt.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/guard.h"
#include "shm/layout.h"
#include "shm/lock.h"
#include "shm/ring.h"

#define EXIT_USAGE   1 /* bad arguments, or the store asked for does not exist */
#define EXIT_DAMAGED 2 /* a ring is damaged or could not be read */

#define HEARTBEAT_STALE_NS (5 * NSEC_PER_SEC)  /* older: the daemon is "stale" */
#define DATA_TEXT_MAX	   200		       /* payload bytes shown in text, then "..." */
#define COLLECT_CHUNK	   (UINT64_C(1) << 20) /* ring bytes copied per ring_collect() */
#define RECORDS_MAX	   UINT64_C(1000000000)
#define RATE_SAMPLE_NS	   (200 * NSEC_PER_MSEC) /* --rate: between the two samples */
#define WATCH_MIN_NS	   (100 * NSEC_PER_MSEC)
#define WATCH_MAX_NS	   (86400 * NSEC_PER_SEC)
#define ITERATIONS_MAX	   UINT64_C(1000000000)
#define FILL_BAR	   10 /* characters of the fill bar */

static const char *progname = "shm-dump";

/* What the process in a pid or TID field of a ring is, to us. */
enum {
	PS_INVALID, /* 0, or not a pid */
	PS_OTHER,   /* the ring belongs to another pid namespace: the number means nothing here */
	PS_ALIVE,   /* exists (may be a stranger that reused the number) */
	PS_DEAD,    /* no such process, or a zombie */
};

static const char *const ps_word[] = {
	[PS_INVALID] = "invalid",
	[PS_OTHER] = "other pid namespace",
	[PS_ALIVE] = "alive",
	[PS_DEAD] = "dead",
};

/* What we know of the oldest unflushed record, the one at the tail. */
enum {
	OLDEST_UNKNOWN, /* not read: a bad ring, or the tail moved on every try */
	OLDEST_NONE,	/* nothing unflushed (or only a padding marker) */
	OLDEST_OK,	/* read and checked: oldest_* are valid */
	OLDEST_BAD,	/* the record at the tail is damaged: oldest_why says how */
};

/* What one ring looks like to us: a snapshot and what we concluded. */
struct view {
	char store[BE_NAME_MAX + 1]; /* from the directory entry or argv */
	int err;		     /* 0, or -errno: why the ring is not fine */
	int damaged;		     /* err means the ring itself is bad */
	char why[192];		     /* err in words */
	int have_hdr;		     /* hdr holds a full copy of the header page */
	struct ring_hdr hdr;	     /* the private snapshot: everything shown */
	uint64_t size;		     /* the shm object's size, when known */
	uint64_t now_mono;	     /* CLOCK_MONOTONIC when the copy was taken */
	uint64_t now_real;	     /* CLOCK_REALTIME, the same moment */

	int oldest;	     /* OLDEST_* */
	uint64_t oldest_pos; /* OLDEST_OK: its position; OLDEST_BAD: where */
	uint64_t oldest_seq; /* OLDEST_OK */
	uint64_t oldest_ts;  /* OLDEST_OK: CLOCK_REALTIME when written */
	char oldest_why[96]; /* OLDEST_BAD */

	struct lock_state lock; /* the lock word of the copy, decoded */
	int lock_ps;		/* PS_* of lock.owner_tid (when held) */
	uint32_t lock_pid;	/* the holder's pid (thread group), 0 if unknown */
	int daemon_ps;		/* PS_* of hdr.daemon_pid */

	int have_rates;	   /* the rates below are known */
	double write_rate; /* records a second, since the previous sample */
	double flush_rate; /* batches a second, since the previous sample */
};

/* One look at the rings: every ring of the instance, or one store. */
struct frame {
	struct view *v;
	size_t n;
	int status;  /* 0, or EXIT_DAMAGED: a ring is damaged or unreadable */
	int missing; /* one store was asked for, and there is no such ring */
};

/* What the command line asked for. */
struct opts {
	const char *instance;
	const char *store; /* NULL: every ring */
	int json;
	int prom;	       /* the Prometheus text format */
	const char *prom_file; /* ... written into this file, atomically */
	uint64_t records;      /* --records N */
	int tail;	       /* --tail: the newest N */
	int hex;	       /* --hex */
	int watch;	       /* --watch */
	uint64_t interval_ns;  /* --watch SECONDS */
	uint64_t iterations;   /* --iterations: frames, 0 until a signal */
	int rate;	       /* --rate */
};

/* Our own pid namespace, to tell whether TIDs in a ring mean anything here. */
static int pidns_known;
static uint64_t pidns_ino, pidns_dev;

/* Set by SIGINT and SIGTERM under --watch. */
static volatile sig_atomic_t stop_signal;

/* ------------------------------------------------------------------ */
/* Guarded access to shared memory                                    */
/* ------------------------------------------------------------------ */

/* load_u64() - an acquire load of *p into *out; 0, or -EFAULT on SIGBUS. */
static int load_u64(uint64_t *p, uint64_t *out)
{
	struct guard_frame f;

	GUARD_TRY(f) {
		/* Pairs with the release store of the same field by its writer. */
		*out = load_acquire(p);
		GUARD_END(f);
		return 0;
	}
	return -EFAULT;
}

static int collect_guarded(const struct ring_map *m, uint64_t tail, uint64_t head, uint64_t min_seq,
			   uint8_t *out, size_t cap, struct ring_batch *res)
{
	struct guard_frame f;

	GUARD_TRY(f) {
		int ret = ring_collect(m, tail, head, min_seq, out, cap, res);

		GUARD_END(f);
		return ret;
	}
	return -EFAULT;
}

/* ------------------------------------------------------------------ */
/* Small formatters                                                   */
/* ------------------------------------------------------------------ */

/* "<name>" of errno e (positive), "E?" when glibc has none. */
static const char *errno_name(int e)
{
	const char *s = strerrorname_np(e);

	return s ? s : "E?";
}

/*
 * "64M", "4.0K", "2.4K": humanize_number() scales to fit its buffer, so it
 * is given 5 bytes (4 characters), whatever room buf has.
 */
static void fmt_human(char *buf, size_t len, uint64_t v)
{
	char tmp[5];

	if (v > INT64_MAX || humanize_number(tmp, sizeof(tmp), (int64_t)v, "", HN_AUTOSCALE,
					     HN_B | HN_NOSPACE | HN_DECIMAL) < 0)
		snprintf(buf, len, "%" PRIu64, v);
	else
		snprintf(buf, len, "%s", tmp);
}

/* An age or a duration, short: "0.4s", "12s", "5m07s", "3h05m", "2d03h". */
static void fmt_age(char *buf, size_t len, uint64_t ns)
{
	uint64_t s = ns / NSEC_PER_SEC;

	if (ns < 10 * NSEC_PER_SEC)
		snprintf(buf, len, "%.1fs", (double)ns / 1e9);
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

/* A rate a second: "0.5", "120", "12.3k", "4.5M". */
static void fmt_rate(char *buf, size_t len, double r)
{
	if (r < 10)
		snprintf(buf, len, "%.1f", r);
	else if (r < 1e4)
		snprintf(buf, len, "%.0f", r);
	else if (r < 1e7)
		snprintf(buf, len, "%.1fk", r / 1e3);
	else
		snprintf(buf, len, "%.1fM", r / 1e6);
}

/*
 * A string of n untrusted bytes: a JSON string (recfmt_json_str: valid
 * JSON whatever the bytes), or the inside of a C string literal (printable
 * ASCII as is, the rest escaped), through the escapers records use.
 */
static void put_escaped(FILE *f, int json, const char *s, size_t n)
{
	struct recfmt_buf b;

	if (recfmt_buf_init(&b, 4 * n + 16) < 0)
		return;
	if (json)
		recfmt_json_str(&b, s, n);
	else
		recfmt_cstr(&b, s, n, 0);
	if (!b.err)
		fwrite(b.p, 1, b.len, f);
	recfmt_buf_free(&b);
}

/* ------------------------------------------------------------------ */
/* Output of name/value pairs: "name: value" lines, or one JSON object */
/* ------------------------------------------------------------------ */

struct emit {
	FILE *f;
	int json;
	int n; /* fields written in the current JSON object */
};

static void emit_begin(struct emit *e)
{
	e->n = 0;
	if (e->json)
		putc('{', e->f);
}

static void emit_end(struct emit *e)
{
	if (e->json)
		putc('}', e->f);
}

/* A blank line between groups of fields, in text. */
static void emit_group(struct emit *e)
{
	if (!e->json)
		putc('\n', e->f);
}

static void emit_key(struct emit *e, const char *key)
{
	if (e->json)
		fprintf(e->f, "%s\"%s\":", e->n++ ? "," : "", key);
	else
		fprintf(e->f, "%s: ", key);
}

static void emit_u64(struct emit *e, const char *key, uint64_t v)
{
	emit_key(e, key);
	fprintf(e->f, "%" PRIu64 "%s", v, e->json ? "" : "\n");
}

static void emit_i64(struct emit *e, const char *key, int64_t v)
{
	emit_key(e, key);
	fprintf(e->f, "%" PRId64 "%s", v, e->json ? "" : "\n");
}

/* A number that may be unknown: null in JSON, "-" in text. */
static void emit_opt_u64(struct emit *e, const char *key, int ok, uint64_t v)
{
	if (ok) {
		emit_u64(e, key, v);
		return;
	}
	emit_key(e, key);
	fputs(e->json ? "null" : "-\n", e->f);
}

static void emit_opt_double(struct emit *e, const char *key, int ok, double v, int prec)
{
	emit_key(e, key);
	if (!ok)
		fputs(e->json ? "null" : "-\n", e->f);
	else
		fprintf(e->f, "%.*f%s", prec, v, e->json ? "" : "\n");
}

/* A string, possibly untrusted bytes of length n; NULL: null / "-". */
static void emit_mem(struct emit *e, const char *key, const char *s, size_t n)
{
	emit_key(e, key);
	if (!s) {
		fputs(e->json ? "null" : "-\n", e->f);
	} else {
		put_escaped(e->f, e->json, s, n);
		if (!e->json)
			putc('\n', e->f);
	}
}

static void emit_str(struct emit *e, const char *key, const char *s)
{
	emit_mem(e, key, s, s ? strlen(s) : 0);
}

static void __attribute__((format(printf, 3, 4)))
emit_strf(struct emit *e, const char *key, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	emit_str(e, key, buf);
}

/* ------------------------------------------------------------------ */
/* Reading a ring into a view                                         */
/* ------------------------------------------------------------------ */

static int cap_valid(uint64_t c)
{
	return c >= RING_CAP_MIN && c <= RING_CAP_MAX && !(c & (c - 1));
}

static void view_fail(struct view *v, int err, int damaged, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void view_fail(struct view *v, int err, int damaged, const char *fmt, ...)
{
	va_list ap;

	v->err = err;
	v->damaged = damaged;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
}

/*
 * diagnose() - say in words what is wrong with a header copy, for a ring
 * that ring_open() or ring_validate() refused.  Writes the first problem
 * found into buf; when none of ours is found, says what ring_validate said.
 */
static void diagnose(const struct ring_hdr *h, uint64_t size, int err, char *buf, size_t len)
{
	uint64_t cap = h->capacity;

	/* In ring_validate()'s order, so that both name the same problem. */
	if (h->magic != RING_MAGIC)
		snprintf(buf, len, "bad magic 0x%016" PRIx64, h->magic);
	else if (h->version >> 16 != RING_VERSION_MAJOR)
		snprintf(buf, len, "other layout version %u.%u (this shm-dump reads %u.x)",
			 h->version >> 16, h->version & 0xffff, (unsigned)RING_VERSION_MAJOR);
	else if (h->hdr_size != RING_HDR_SIZE)
		snprintf(buf, len, "header size %u, not %u", h->hdr_size, RING_HDR_SIZE);
	else if (!cap_valid(cap))
		snprintf(buf, len,
			 "capacity %" PRIu64 " is not a power of two in [%" PRIu64 ", %" PRIu64 "]",
			 cap, RING_CAP_MIN, RING_CAP_MAX);
	else if (size != RING_HDR_SIZE + cap)
		snprintf(buf, len,
			 "object is %" PRIu64 " bytes, the header says %" PRIu64 " (truncated?)",
			 size, RING_HDR_SIZE + cap);
	else if (!recfmt_type_name(h->store_type))
		snprintf(buf, len, "store type %u unknown", h->store_type);
	else if (h->on_full != RING_ON_FULL_BLOCK && h->on_full != RING_ON_FULL_DROP)
		snprintf(buf, len, "on_full %u unknown", h->on_full);
	else if (h->incarnation == 0)
		snprintf(buf, len, "incarnation 0");
	else if (h->max_payload == 0 || h->max_payload > cap / 4)
		snprintf(buf, len, "max payload %u out of range", h->max_payload);
	else if (!memchr(h->store_name, 0, sizeof(h->store_name)) ||
		 !ring_name_valid(h->store_name))
		snprintf(buf, len, "store name in the header is not valid");
	else if (h->head < h->tail)
		snprintf(buf, len, "head %" PRIu64 " below tail %" PRIu64, h->head, h->tail);
	else if (h->head - h->tail > cap)
		snprintf(buf, len,
			 "head - tail = %" PRIu64 " exceeds capacity %" PRIu64 " (head %" PRIu64
			 ", tail %" PRIu64 ")",
			 h->head - h->tail, cap, h->head, h->tail);
	else if ((h->head | h->tail) & (REC_ALIGN - 1))
		snprintf(buf, len, "head %" PRIu64 " or tail %" PRIu64 " not 8-aligned", h->head,
			 h->tail);
	else
		snprintf(buf, len, "refused by ring_validate: %s", strerror(-err));
}

/*
 * read_raw() - for a ring that ring_open() refused as damaged: read its
 * header page with pread (no mapping, so no SIGBUS) into v->hdr, so that
 * the error can be explained and the fields still shown.
 */
static void read_raw(const char *instance, struct view *v)
{
	char name[RING_SHM_NAME_MAX], path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	if (ring_shm_name(name, sizeof(name), instance, v->store) < 0)
		return;
	snprintf(path, sizeof(path), "%s%s", RING_SHM_DIR, name);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out_close;
	v->size = (uint64_t)st.st_size;
	if (v->size < RING_HDR_SIZE) {
		snprintf(v->why, sizeof(v->why),
			 "object is %" PRIu64 " bytes, smaller than the header page", v->size);
		goto out_close;
	}
	n = pread(fd, &v->hdr, sizeof(v->hdr), 0);
	if (n != (ssize_t)sizeof(v->hdr))
		goto out_close;
	v->have_hdr = 1;
	v->now_mono = now_mono_ns();
	v->now_real = now_real_ns();
	diagnose(&v->hdr, v->size, v->err, v->why, sizeof(v->why));
out_close:
	close(fd);
}

/*
 * snapshot() - copy the header page of a mapped ring into v->hdr.
 *
 * The page is copied in one go, then durable_pos, tail, head and next_seq
 * are read again, in that order, with acquire loads: a plain copy may read
 * head before a tail that has since moved past it, which would look like
 * damage.  Each pairs with the release store of its writer (daemon, daemon,
 * writer), and since durable <= tail <= head hold at every instant, reading
 * them in this order keeps them true in the copy.  next_seq, stored under
 * the lock before the release of head, is read after head: it is above the
 * seq of every record below that head.  Returns 0 or -EFAULT.
 */
static int snapshot(struct ring_map *m, struct view *v)
{
	int ret;

	ret = guard_copy(&v->hdr, m->hdr, sizeof(v->hdr));
	if (!ret)
		ret = load_u64(&m->hdr->durable_pos, &v->hdr.durable_pos);
	if (!ret)
		ret = load_u64(&m->hdr->tail, &v->hdr.tail);
	if (!ret)
		ret = load_u64(&m->hdr->head, &v->hdr.head);
	if (!ret)
		ret = load_u64(&m->hdr->next_seq, &v->hdr.next_seq);
	v->now_mono = now_mono_ns();
	v->now_real = now_real_ns();
	return ret;
}

/*
 * check_rec() - whether a record header read at pos (room bytes to the end
 * of the area, avail published bytes from pos) is one ring_collect() would
 * take; NULL when it is, else what is wrong.  The same rules.
 */
static const char *check_rec(const struct ring_map *m, const struct rec_hdr *rh, uint64_t room,
			     uint64_t avail)
{
	uint64_t sz;

	if (avail < sizeof(*rh) || room < sizeof(*rh))
		return "a record header that does not fit";
	if (rh->type != m->store_type)
		return "a record of another type";
	if (rh->flags || rh->reserved)
		return "reserved bits set in a record header";
	if (rh->len > m->max_payload)
		return "a record longer than the largest payload";
	sz = rec_size(rh->len);
	if (sz > room || sz > avail)
		return "a record that runs past the head or the end of the area";
	if (rh->seq < m->first_seq || rh->seq - m->first_seq >= RING_SEQ_SPAN)
		return "a record with an impossible seq";
	return NULL;
}

/*
 * read_oldest() - the record at the tail: the oldest not yet flushed, for
 * its age and seq.  Its header is copied under the guard and checked like
 * ring_collect() checks one (a padding marker at the tail is stepped
 * over), then the tail is read again: ring bytes are overwritten only
 * after the tail has passed them, so a copy made while the tail stayed
 * put is intact; if the tail moved, look again at the new one.
 */
static void read_oldest(struct ring_map *m, struct view *v)
{
	uint64_t tail = v->hdr.tail, head = v->hdr.head;

	v->oldest = OLDEST_UNKNOWN;
	for (int tries = 0; tries < 8; tries++) {
		uint64_t pos = tail, tail2;
		const char *why = NULL;
		struct rec_hdr rh;
		int found = 0, state = OLDEST_UNKNOWN;

		for (int step = 0; step < 2 && pos < head && !found && !why; step++) {
			uint64_t off = pos & m->mask;
			uint64_t room = m->capacity - off, avail = head - pos;

			memset(&rh, 0, sizeof(rh));
			if (avail < REC_PAD_MIN) {
				why = "fewer than 8 bytes before the head";
				break;
			}
			if (guard_copy(&rh, m->data + off, room < sizeof(rh) ? room : sizeof(rh)) <
			    0)
				goto fault;
			if (rh.type == REC_TYPE_PAD) {
				if (rh.len != room || room > avail || rh.flags)
					why = "a bad padding marker";
				else
					pos += room;
				continue;
			}
			why = check_rec(m, &rh, room, avail);
			found = !why;
		}
		if (found)
			state = OLDEST_OK;
		else if (why)
			state = OLDEST_BAD;
		else if (pos >= head)
			state = OLDEST_NONE;

		/* Order the copy above before the tail load below (see walk_records). */
		smp_rmb();
		if (load_u64(&m->hdr->tail, &tail2) < 0)
			goto fault;
		if (tail2 == tail) {
			v->oldest = state;
			v->oldest_pos = pos;
			if (found) {
				v->oldest_seq = rh.seq;
				v->oldest_ts = rh.ts_ns;
			}
			if (why)
				snprintf(v->oldest_why, sizeof(v->oldest_why),
					 "%s at position %" PRIu64, why, pos);
			return;
		}
		/* The daemon flushed meanwhile: look at the new tail. */
		if (load_u64(&m->hdr->head, &head) < 0)
			goto fault;
		if (tail2 < tail || head < tail2 || head - tail2 > m->capacity)
			return;
		tail = tail2;
	}
	return;
fault:
	view_fail(v, -EFAULT, 1, "truncated under us (SIGBUS reading the oldest record)");
}

/*
 * view_load() - open a ring read-only, snapshot and validate its header,
 * read its oldest record.  The result, good or bad, is in *v.  Returns 0,
 * or -ENOENT when there is no such ring.  With keep, a good ring stays
 * mapped in *keep (else it is unmapped).
 */
static int view_load(const char *instance, const char *store, struct view *v, struct ring_map *keep)
{
	struct ring_map m;
	struct ring_map chk;
	struct stat st;
	int ret;

	memset(v, 0, sizeof(*v));
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	snprintf(v->store, sizeof(v->store), "%s", store);

	/* ring_open() reads the mapping only through guard_copy(). */
	ret = ring_open(instance, store, RING_OPEN_RDONLY | RING_OPEN_NO_PIDNS, &m);
	if (ret == -ENOENT)
		return -ENOENT;
	if (ret == -EPROTO || ret == -EBADMSG) {
		view_fail(v, ret, 1, "%s", strerror(-ret));
		read_raw(instance, v);
		return 0;
	}
	if (ret == -EFAULT) {
		view_fail(v, ret, 1, "truncated while being opened (SIGBUS)");
		return 0;
	}
	if (ret < 0) {
		view_fail(v, ret, 0, "%s", strerror(-ret));
		return 0;
	}

	/*
	 * Writers and the daemon racing ahead between our loads of tail and
	 * head can make head - tail look too large: like ring_open(), look
	 * again before calling the ring damaged.
	 */
	for (int tries = 0; tries < 4; tries++) {
		if (snapshot(&m, v) < 0) {
			view_fail(v, -EFAULT, 1, "truncated under us (SIGBUS reading the header)");
			goto out_unmap;
		}
		v->have_hdr = 1;

		/* The object's size now, not at open: it may have been truncated since. */
		v->size = m.map_len;
		if (m.fd >= 0 && fstat(m.fd, &st) == 0)
			v->size = (uint64_t)st.st_size;

		memset(&chk, 0, sizeof(chk));
		ret = ring_validate(&v->hdr, v->size, &chk);
		if (ret == 0 && chk.capacity != m.capacity)
			ret = -EBADMSG; /* the identity changed after open */
		if (ret != -EBADMSG)
			break;
	}
	if (ret < 0) {
		view_fail(v, ret, 1, "%s", "");
		diagnose(&v->hdr, v->size, ret, v->why, sizeof(v->why));
		goto out_unmap;
	}
	read_oldest(&m, v);
	if (v->err)
		goto out_unmap;
	if (keep) {
		*keep = m;
		return 0;
	}
out_unmap:
	ring_unmap(&m);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Processes: is the daemon alive, who holds the lock                 */
/* ------------------------------------------------------------------ */

/* 1 when the ring was made in our pid namespace, 0 when not, -1 unknown. */
static int same_pidns(const struct ring_hdr *h)
{
	if (!pidns_known)
		return -1;
	return h->pidns_ino == pidns_ino && h->pidns_dev == pidns_dev;
}

/* What proc_state() found, per frame: 64 rings share one daemon. */
static struct {
	uint32_t id, tgid;
	int ps;
} ps_cache[16];
static unsigned ps_cached;

/*
 * proc_state() - whether the process or thread id exists, and its thread
 * group (its pid) in *tgid when /proc tells (else 0).
 *
 * kill(id, 0) first: ESRCH is dead at once, whatever any heartbeat says.
 * A zombie (killed, not yet reaped by its parent) still takes signals but
 * is dead: /proc/ID/status says so ("State: Z").  When /proc cannot tell
 * (not mounted, hidepid), kill() has the last word.
 */
static int proc_state(uint32_t id, uint32_t *tgid)
{
	char path[40], buf[1024];
	const char *p;
	ssize_t n;
	int fd;

	*tgid = 0;
	if (kill((pid_t)id, 0) < 0 && errno == ESRCH)
		return PS_DEAD;
	snprintf(path, sizeof(path), "/proc/%u/status", id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* Gone since, or /proc cannot tell (hidepid, not mounted): kill() again. */
		if (kill((pid_t)id, 0) < 0 && errno == ESRCH)
			return PS_DEAD;
		return PS_ALIVE;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return PS_ALIVE;
	buf[n] = 0;
	p = strstr(buf, "\nState:");
	if (p) {
		p += 7;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == 'Z' || *p == 'X')
			return PS_DEAD;
	}
	p = strstr(buf, "\nTgid:");
	if (p) {
		unsigned long t = strtoul(p + 6, NULL, 10);

		if (t > 0 && t <= INT32_MAX)
			*tgid = (uint32_t)t;
	}
	return PS_ALIVE;
}

/* PS_* of a pid or TID found in ring h; the holder's pid in *tgid (may be NULL). */
static int pid_state(const struct ring_hdr *h, uint32_t id, uint32_t *tgid)
{
	uint32_t t = 0;
	int ps;

	if (tgid)
		*tgid = 0;
	if (id == 0 || id > INT32_MAX)
		return PS_INVALID;
	if (same_pidns(h) == 0)
		return PS_OTHER;
	for (unsigned i = 0; i < ps_cached; i++) {
		if (ps_cache[i].id == id) {
			if (tgid)
				*tgid = ps_cache[i].tgid;
			return ps_cache[i].ps;
		}
	}
	ps = proc_state(id, &t);
	if (ps_cached < sizeof(ps_cache) / sizeof(ps_cache[0])) {
		ps_cache[ps_cached].id = id;
		ps_cache[ps_cached].tgid = t;
		ps_cache[ps_cached].ps = ps;
		ps_cached++;
	}
	if (tgid)
		*tgid = t;
	return ps;
}

/* view_derive() - the lock holder and the daemon, from a header copy. */
static void view_derive(struct view *v)
{
	const struct ring_hdr *h = &v->hdr;

	lock_peek(h, &v->lock);
	v->lock_ps = PS_INVALID;
	v->lock_pid = 0;
	if (v->lock.owner_tid)
		v->lock_ps = pid_state(h, v->lock.owner_tid, &v->lock_pid);
	v->daemon_ps = pid_state(h, h->daemon_pid, NULL);
}

/* ------------------------------------------------------------------ */
/* What the fields mean                                               */
/* ------------------------------------------------------------------ */

/* Whether a header copy can be trusted for derived values (fill and the like). */
static int hdr_sane(const struct view *v)
{
	return v->have_hdr && cap_valid(v->hdr.capacity) &&
	       v->hdr.head - v->hdr.tail <= v->hdr.capacity;
}

/* Heartbeat age in ns, or -1 when there is none or it is in the future. */
static int64_t hb_age(const struct view *v)
{
	uint64_t hb = v->hdr.heartbeat_ns;

	if (hb == 0 || hb > v->now_mono || v->now_mono - hb > INT64_MAX)
		return -1;
	return (int64_t)(v->now_mono - hb);
}

/* The daemon state field in words; NULL for an unknown value. */
static const char *daemon_state_name(uint32_t state)
{
	switch (state) {
	case RING_DAEMON_NONE:
		return "none";
	case RING_DAEMON_RUNNING:
		return "running";
	case RING_DAEMON_STOPPED:
		return "stopped";
	case RING_DAEMON_QUARANTINED:
		return "quarantined";
	}
	return NULL;
}

/*
 * daemon_status() - what the daemon is doing for this ring, from its state
 * field, its pid and its heartbeat: none, running, stale (its pid lives
 * but it has not beaten for 5 s: stopped, hung, or a stranger with a
 * reused pid), dead (its pid is gone: killed or crashed; seen at once, not
 * after 5 s), stopped (it exited cleanly), quarantined (it gave up on this
 * ring); NULL for an unknown state value.  When the pid cannot be checked
 * (another pid namespace), the heartbeat alone decides running or stale.
 */
static const char *daemon_status(const struct view *v)
{
	int64_t age;

	switch (v->hdr.daemon_state) {
	case RING_DAEMON_NONE:
		return "none";
	case RING_DAEMON_RUNNING:
		if (v->daemon_ps == PS_DEAD)
			return "dead";
		age = hb_age(v);
		return (age >= 0 && (uint64_t)age < HEARTBEAT_STALE_NS) ? "running" : "stale";
	case RING_DAEMON_STOPPED:
		return "stopped";
	case RING_DAEMON_QUARANTINED:
		return v->daemon_ps == PS_DEAD ? "dead" : "quarantined";
	}
	return NULL;
}

static int daemon_up(const struct view *v)
{
	const char *s = daemon_status(v);

	return s && !strcmp(s, "running");
}

/* The daemon's last error in words. */
static void last_error_text(const struct ring_hdr *h, char *buf, size_t len)
{
	int32_t e = h->last_error;

	if (e == 0)
		snprintf(buf, len, "-");
	else if (e < 0 && e > -4096)
		snprintf(buf, len, "%s (%s)", strerror(-e), errno_name(-e));
	else
		snprintf(buf, len, "invalid value %" PRId32, e);
}

/* Age in ns of a CLOCK_REALTIME stamp, -1 when 0 or in the future. */
static int64_t real_age(const struct view *v, uint64_t ts)
{
	if (ts == 0 || ts > v->now_real || v->now_real - ts > INT64_MAX)
		return -1;
	return (int64_t)(v->now_real - ts);
}

/* Unflushed records: next_seq minus the oldest's seq (gaps left by a dead writer count). */
static int unflushed_records(const struct view *v, uint64_t *out)
{
	if (v->oldest == OLDEST_NONE) {
		*out = 0;
		return 1;
	}
	if (v->oldest != OLDEST_OK || v->hdr.next_seq < v->oldest_seq)
		return 0;
	*out = v->hdr.next_seq - v->oldest_seq;
	return 1;
}

/* The writers' lock in words, from the copy of its futex word. */
static void lock_text(const struct view *v, char *buf, size_t len)
{
	const struct lock_state *st = &v->lock;
	int n;

	if (st->owner_tid == 0)
		n = snprintf(buf, len, "free");
	else if (v->lock_pid && v->lock_pid != st->owner_tid)
		n = snprintf(buf, len, "held by pid %u, tid %u (%s)", v->lock_pid, st->owner_tid,
			     ps_word[v->lock_ps]);
	else if (v->lock_pid)
		n = snprintf(buf, len, "held by pid %u (%s)", v->lock_pid, ps_word[v->lock_ps]);
	else
		n = snprintf(buf, len, "held by tid %u (%s)", st->owner_tid, ps_word[v->lock_ps]);
	if (n < 0 || (size_t)n >= len)
		return;
	if (st->owner_died)
		n += snprintf(buf + n, len - n, ", owner died: the next locker recovers it");
	if (st->waiters && (size_t)n < len)
		snprintf(buf + n, len - n, ", waiters");
}

/* The lock, short, for the table. */
static void lock_cell(const struct view *v, char *buf, size_t len)
{
	const struct lock_state *st = &v->lock;

	if (st->owner_tid == 0)
		snprintf(buf, len, "%s", st->owner_died ? "owner-died" : "free");
	else if (v->lock_ps == PS_ALIVE && v->lock_pid)
		snprintf(buf, len, "pid %u alive", v->lock_pid);
	else if (v->lock_ps == PS_ALIVE || v->lock_ps == PS_DEAD)
		snprintf(buf, len, "tid %u %s", st->owner_tid, ps_word[v->lock_ps]);
	else
		snprintf(buf, len, "tid %u ?", st->owner_tid);
}

/* The lock holder is gone (the kernel said so, or its TID is). */
static int lock_owner_dead(const struct view *v)
{
	return v->lock.owner_died || (v->lock.owner_tid && v->lock_ps == PS_DEAD);
}

static const char *status_word(const struct view *v)
{
	if (v->err)
		return v->damaged ? "bad" : "error";
	return v->oldest == OLDEST_BAD ? "bad" : "ok";
}

/* A ring whose header and oldest record passed every check. */
static int ring_ok(const struct view *v)
{
	return !v->err && v->oldest != OLDEST_BAD;
}

/* ------------------------------------------------------------------ */
/* One store: every field                                             */
/* ------------------------------------------------------------------ */

static void emit_view(struct emit *e, const char *instance, const struct view *v)
{
	const struct ring_hdr *h = &v->hdr;
	char name[RING_SHM_NAME_MAX], buf[160];
	int sane = hdr_sane(v);
	uint64_t urec = 0;
	int64_t age;
	int pidns, urec_ok;

	emit_str(e, "store", v->store);
	emit_str(e, "instance", instance);
	if (ring_shm_name(name, sizeof(name), instance, v->store) == 0)
		emit_strf(e, "shm", "%s%s", RING_SHM_DIR, name);
	emit_str(e, "status", status_word(v));
	if (e->json) {
		emit_str(e, "error", v->err ? errno_name(-v->err) : NULL);
		emit_str(e, "error_text", v->err ? v->why : NULL);
	} else if (v->err) {
		emit_strf(e, "error", "%s %s", errno_name(-v->err), v->why);
	}
	if (!v->have_hdr)
		return;

	/* Identity: written once by the creator. */
	emit_group(e);
	emit_strf(e, "magic", "0x%016" PRIx64 "%s", h->magic,
		  h->magic == RING_MAGIC ? "" : " (bad)");
	emit_strf(e, "version", "%u.%u", h->version >> 16, h->version & 0xffff);
	emit_u64(e, "hdr_size", h->hdr_size);
	emit_u64(e, "object_size", v->size);
	emit_u64(e, "capacity", h->capacity);
	fmt_human(buf, sizeof(buf), h->capacity);
	emit_str(e, "capacity_human", buf);
	emit_strf(e, "incarnation", "0x%016" PRIx64, h->incarnation);
	emit_u64(e, "store_type", h->store_type);
	if (recfmt_type_name(h->store_type))
		emit_str(e, "type", recfmt_type_name(h->store_type));
	else
		emit_strf(e, "type", "unknown(%u)", h->store_type);
	if (h->on_full == RING_ON_FULL_BLOCK)
		emit_str(e, "on_full", "block");
	else if (h->on_full == RING_ON_FULL_DROP)
		emit_str(e, "on_full", "drop");
	else
		emit_strf(e, "on_full", "unknown(%u)", h->on_full);
	emit_strf(e, "pidns", "%" PRIu64 ":%" PRIu64, h->pidns_dev, h->pidns_ino);
	emit_u64(e, "pidns_dev", h->pidns_dev);
	emit_u64(e, "pidns_ino", h->pidns_ino);
	pidns = same_pidns(h);
	emit_str(e, "pidns_same", pidns < 0 ? NULL : pidns ? "yes" : "no");
	emit_u64(e, "first_seq", h->first_seq);
	emit_u64(e, "created_ns", h->created_ns);
	recfmt_time_str(buf, h->created_ns);
	emit_str(e, "created", buf);
	emit_mem(e, "store_name", h->store_name, strnlen(h->store_name, sizeof(h->store_name)));
	emit_u64(e, "max_payload", h->max_payload);
	emit_strf(e, "mode", "0%03o", h->mode & 07777);

	/* The writers' line. */
	emit_group(e);
	lock_text(v, buf, sizeof(buf));
	emit_str(e, "lock", buf);
	{
		uint32_t word;

		memcpy(&word, h->lock, sizeof(word));
		emit_strf(e, "lock_word", "0x%08x", word);
	}
	emit_opt_u64(e, "lock_owner_tid", v->lock.owner_tid != 0, v->lock.owner_tid);
	emit_opt_u64(e, "lock_owner_pid", v->lock_pid != 0, v->lock_pid);
	emit_str(e, "lock_owner_alive", v->lock.owner_tid ? ps_word[v->lock_ps] : NULL);
	emit_str(e, "lock_owner_died", v->lock.owner_died ? "yes" : "no");
	emit_str(e, "lock_waiters", v->lock.waiters ? "yes" : "no");
	emit_u64(e, "head", h->head);
	emit_u64(e, "next_seq", h->next_seq);
	emit_opt_u64(e, "records_written", h->next_seq >= h->first_seq, h->next_seq - h->first_seq);

	/* The daemon's line, and what follows from it. */
	emit_group(e);
	emit_u64(e, "tail", h->tail);
	emit_u64(e, "durable_pos", h->durable_pos);
	emit_u64(e, "durable_seq", h->durable_seq);
	emit_opt_u64(e, "unflushed", sane, h->head - h->tail);
	emit_opt_double(e, "fill_pct", sane,
			sane ? 100.0 * (double)(h->head - h->tail) / (double)h->capacity : 0, 1);
	urec_ok = unflushed_records(v, &urec);
	emit_opt_u64(e, "unflushed_records", urec_ok, urec);
	emit_opt_u64(e, "oldest_unflushed_seq", v->oldest == OLDEST_OK, v->oldest_seq);
	emit_opt_u64(e, "oldest_unflushed_pos", v->oldest == OLDEST_OK, v->oldest_pos);
	if (v->oldest == OLDEST_OK) {
		recfmt_time_str(buf, v->oldest_ts);
		emit_str(e, "oldest_unflushed_time", buf);
	} else {
		emit_str(e, "oldest_unflushed_time", NULL);
	}
	age = v->oldest == OLDEST_OK ? real_age(v, v->oldest_ts) : -1;
	if (v->oldest == OLDEST_OK && age < 0)
		age = 0; /* written "in the future": the writer's clock is ahead */
	emit_opt_double(e, "oldest_unflushed_age_s", age >= 0, (double)age / 1e9, 3);
	emit_str(e, "oldest_unflushed_error", v->oldest == OLDEST_BAD ? v->oldest_why : NULL);
	emit_opt_u64(e, "not_durable", sane && h->durable_pos <= h->tail, h->head - h->durable_pos);
	emit_u64(e, "flush_bytes", h->flush_bytes);
	emit_u64(e, "daemon_pid", h->daemon_pid);
	emit_str(e, "daemon_alive", h->daemon_pid ? ps_word[v->daemon_ps] : NULL);
	if (daemon_state_name(h->daemon_state))
		emit_str(e, "daemon_state", daemon_state_name(h->daemon_state));
	else
		emit_strf(e, "daemon_state", "unknown(%u)", h->daemon_state);
	emit_str(e, "daemon_status", daemon_status(v) ? daemon_status(v) : "unknown");
	emit_u64(e, "heartbeat_ns", h->heartbeat_ns);
	age = hb_age(v);
	emit_opt_double(e, "heartbeat_age_s", age >= 0, (double)age / 1e9, 3);
	emit_i64(e, "last_error", h->last_error);
	last_error_text(h, buf, sizeof(buf));
	emit_str(e, "last_error_text", h->last_error ? buf : NULL);
	emit_u64(e, "last_error_ns", h->last_error_ns);
	if (h->last_error) {
		recfmt_time_str(buf, h->last_error_ns);
		emit_str(e, "last_error_time", buf);
	} else {
		emit_str(e, "last_error_time", NULL);
	}
	age = h->last_error ? real_age(v, h->last_error_ns) : -1;
	emit_opt_double(e, "last_error_age_s", age >= 0, (double)age / 1e9, 3);

	/* The futex line. */
	emit_group(e);
	emit_u64(e, "space_gen", h->space_gen);
	emit_u64(e, "durable_gen", h->durable_gen);
	emit_u64(e, "doorbell_gen", h->doorbell_gen);
	emit_u64(e, "reserved_futex", h->reserved_futex);
	emit_u64(e, "flush_req_seq", h->flush_req_seq);
	emit_u64(e, "lost_seq_from", h->lost_seq_from);
	emit_u64(e, "lost_seq_to", h->lost_seq_to);
	emit_u64(e, "lost_records",
		 h->lost_seq_to > h->lost_seq_from ? h->lost_seq_to - h->lost_seq_from : 0);

	/* The counters, then the rates (with --rate or --watch). */
	emit_group(e);
	emit_u64(e, "drops", h->drops);
	emit_u64(e, "full_waits", h->full_waits);
	emit_u64(e, "lock_recoveries", h->lock_recoveries);
	emit_u64(e, "lock_timeouts", h->lock_timeouts);
	emit_u64(e, "doorbells", h->doorbells);
	emit_u64(e, "batches", h->batches);
	emit_u64(e, "syncs", h->syncs);
	emit_u64(e, "damaged_bytes", h->damaged_bytes);
	emit_u64(e, "segments_deleted", h->segments_deleted);
	emit_opt_double(e, "writes_per_s", v->have_rates, v->write_rate, 1);
	emit_opt_double(e, "flushes_per_s", v->have_rates, v->flush_rate, 1);
}

/* ------------------------------------------------------------------ */
/* Every store: the table                                             */
/* ------------------------------------------------------------------ */

enum {
	COL_STORE,
	COL_TYPE,
	COL_CAP,
	COL_FILL,
	COL_UNFL,
	COL_UREC,
	COL_OLDEST,
	COL_WRATE,
	COL_FRATE,
	COL_DROPS,
	COL_LOCK,
	COL_LREC,
	COL_ERR,
	COL_DAEMON,
	COL_HB,
	NCOLS
};

static const char *const col_name[NCOLS] = {
	"STORE",   "TYPE",  "CAP",  "FILL",    "UNFLUSHED",  "UNFL-REC", "OLDEST", "WRITE/s",
	"FLUSH/s", "DROPS", "LOCK", "LOCKREC", "LAST-ERROR", "DAEMON",	 "HB",
};

/* Left-aligned columns; the others are numbers, right-aligned. */
static const int col_left[NCOLS] = {
	[COL_STORE] = 1, [COL_TYPE] = 1, [COL_FILL] = 1,
	[COL_LOCK] = 1,	 [COL_ERR] = 1,	 [COL_DAEMON] = 1,
};

#define CELL 80

/* "[####......]  42.1%": the bar has FILL_BAR characters, one '#' a tenth. */
static void fill_cell(char *buf, size_t len, uint64_t used, uint64_t cap)
{
	double f = (double)used / (double)cap;
	char bar[FILL_BAR + 1];
	int n = (int)(f * FILL_BAR + 0.5);

	if (n == 0 && used)
		n = 1; /* anything at all shows */
	if (n > FILL_BAR)
		n = FILL_BAR;
	for (int i = 0; i < FILL_BAR; i++)
		bar[i] = i < n ? '#' : '.';
	bar[FILL_BAR] = 0;
	snprintf(buf, len, "[%s] %5.1f%%", bar, 100.0 * f);
}

static void row_cells(const struct view *v, char cell[NCOLS][CELL])
{
	const struct ring_hdr *h = &v->hdr;
	const char *st;
	uint64_t urec;
	int64_t age;

	for (int c = 0; c < NCOLS; c++)
		snprintf(cell[c], CELL, "-");
	snprintf(cell[COL_STORE], CELL, "%s", v->store);
	snprintf(cell[COL_TYPE], CELL, "%s",
		 recfmt_type_name(h->store_type) ? recfmt_type_name(h->store_type) : "?");
	fmt_human(cell[COL_CAP], CELL, h->capacity);
	/* capacity is valid and head - tail <= capacity: the ring validated */
	fill_cell(cell[COL_FILL], CELL, h->head - h->tail, h->capacity);
	fmt_human(cell[COL_UNFL], CELL, h->head - h->tail);
	if (unflushed_records(v, &urec))
		snprintf(cell[COL_UREC], CELL, "%" PRIu64, urec);
	if (v->oldest == OLDEST_OK) {
		age = real_age(v, v->oldest_ts);
		fmt_age(cell[COL_OLDEST], CELL, age < 0 ? 0 : (uint64_t)age);
	} else if (v->oldest == OLDEST_BAD) {
		snprintf(cell[COL_OLDEST], CELL, "damaged");
	} else if (v->oldest == OLDEST_UNKNOWN) {
		snprintf(cell[COL_OLDEST], CELL, "?");
	}
	if (v->have_rates) {
		fmt_rate(cell[COL_WRATE], CELL, v->write_rate);
		fmt_rate(cell[COL_FRATE], CELL, v->flush_rate);
	}
	snprintf(cell[COL_DROPS], CELL, "%" PRIu64, h->drops);
	lock_cell(v, cell[COL_LOCK], CELL);
	snprintf(cell[COL_LREC], CELL, "%" PRIu64, h->lock_recoveries);
	if (h->last_error < 0 && h->last_error > -4096) {
		char a[32];

		age = real_age(v, h->last_error_ns);
		if (age >= 0)
			fmt_age(a, sizeof(a), (uint64_t)age);
		snprintf(cell[COL_ERR], CELL, "%s %s", errno_name(-h->last_error),
			 age >= 0 ? a : "?");
	} else if (h->last_error) {
		snprintf(cell[COL_ERR], CELL, "invalid(%" PRId32 ")", h->last_error);
	}
	st = daemon_status(v);
	if (!st)
		snprintf(cell[COL_DAEMON], CELL, "unknown(%u)", h->daemon_state);
	else if (h->daemon_pid)
		snprintf(cell[COL_DAEMON], CELL, "%s %u", st, h->daemon_pid);
	else
		snprintf(cell[COL_DAEMON], CELL, "%s", st);
	age = hb_age(v);
	if (age >= 0)
		fmt_age(cell[COL_HB], CELL, (uint64_t)age);
}

static void print_table(FILE *f, const struct view *views, size_t n)
{
	char(*cells)[NCOLS][CELL];
	int width[NCOLS];

	cells = calloc(n ? n : 1, sizeof(*cells));
	if (!cells) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return;
	}
	for (int c = 0; c < NCOLS; c++)
		width[c] = (int)strlen(col_name[c]);
	for (size_t i = 0; i < n; i++) {
		if (views[i].err) {
			snprintf(cells[i][COL_STORE], CELL, "%s", views[i].store);
		} else {
			row_cells(&views[i], cells[i]);
			for (int c = 0; c < NCOLS; c++)
				if ((int)strlen(cells[i][c]) > width[c])
					width[c] = (int)strlen(cells[i][c]);
		}
		if ((int)strlen(cells[i][COL_STORE]) > width[COL_STORE])
			width[COL_STORE] = (int)strlen(cells[i][COL_STORE]);
	}

	for (int c = 0; c < NCOLS - 1; c++)
		fprintf(f, col_left[c] ? "%-*s  " : "%*s  ", width[c], col_name[c]);
	fprintf(f, "%s\n", col_name[NCOLS - 1]);
	for (size_t i = 0; i < n; i++) {
		const struct view *v = &views[i];

		if (v->err) {
			/* Store names from /dev/shm passed ring_name_valid(): plain text. */
			fprintf(f, "%-*s  %s: %s %s\n", width[COL_STORE], v->store, status_word(v),
				errno_name(-v->err), v->why);
			continue;
		}
		for (int c = 0; c < NCOLS - 1; c++)
			fprintf(f, col_left[c] ? "%-*s  " : "%*s  ", width[c], cells[i][c]);
		fprintf(f, "%s\n", cells[i][NCOLS - 1]);
	}
	/* What a damaged oldest record is, under the table. */
	for (size_t i = 0; i < n; i++)
		if (!views[i].err && views[i].oldest == OLDEST_BAD)
			fprintf(f, "%s: bad: %s\n", views[i].store, views[i].oldest_why);
	free(cells);
}

/* ------------------------------------------------------------------ */
/* Finding and loading the rings                                      */
/* ------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * list_stores() - the store names of an instance found in /dev/shm, sorted.
 * Skips "*.tmp" leftovers of a creation, the instance lock file and any
 * name that is not a valid store.  Returns the count and a malloc'ed array
 * of malloc'ed names in *out, or -errno.
 */
static int list_stores(const char *instance, char ***out)
{
	char prefix[sizeof(RING_SHM_PREFIX) + BE_NAME_MAX + 1];
	char **names = NULL, **grown;
	size_t n = 0, cap = 0, plen;
	struct dirent *de;
	DIR *dir;
	int ret;

	plen = (size_t)snprintf(prefix, sizeof(prefix), "%s%s.", RING_SHM_PREFIX, instance);
	dir = opendir(RING_SHM_DIR);
	if (!dir)
		return -errno;
	while ((errno = 0, de = readdir(dir))) {
		const char *store = de->d_name + plen;
		size_t slen;

		if (strncmp(de->d_name, prefix, plen) != 0)
			continue;
		slen = strlen(store);
		if (slen > 4 && strcmp(store + slen - 4, ".tmp") == 0)
			continue;
		if (!ring_name_valid(store))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			grown = realloc(names, cap * sizeof(*names));
			if (!grown) {
				ret = -ENOMEM;
				goto err_free;
			}
			names = grown;
		}
		names[n] = strdup(store);
		if (!names[n]) {
			ret = -ENOMEM;
			goto err_free;
		}
		n++;
	}
	if (errno) {
		ret = -errno;
		goto err_free;
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	*out = names;
	return (int)n;

err_free:
	while (n)
		free(names[--n]);
	free(names);
	closedir(dir);
	return ret;
}

/*
 * is_regular() - whether /dev/shm/<ring name> is a regular file: anyone can
 * put a FIFO under a ring's name in /dev/shm, and opening one blocks.
 * Returns 1, 0, or -errno (-ENOENT: no such ring).
 */
static int is_regular(const char *instance, const char *store)
{
	char name[RING_SHM_NAME_MAX], path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];
	struct stat st;

	if (ring_shm_name(name, sizeof(name), instance, store) < 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s%s", RING_SHM_DIR, name);
	if (lstat(path, &st) < 0)
		return -errno;
	return S_ISREG(st.st_mode);
}

/* Load one store into v; -ENOENT when it does not exist (anymore). */
static int load_one(const char *instance, const char *store, struct view *v, struct ring_map *keep)
{
	int ret = is_regular(instance, store);

	if (ret < 0 && ret != -ENOENT) {
		memset(v, 0, sizeof(*v));
		snprintf(v->store, sizeof(v->store), "%s", store);
		view_fail(v, ret, 0, "%s", strerror(-ret));
		return 0;
	}
	if (ret == 0) {
		memset(v, 0, sizeof(*v));
		snprintf(v->store, sizeof(v->store), "%s", store);
		view_fail(v, -EINVAL, 1, "not a regular file");
		return 0;
	}
	if (ret < 0)
		return ret;
	ret = view_load(instance, store, v, keep);
	if (ret == 0 && v->have_hdr)
		view_derive(v);
	return ret;
}

static void frame_free(struct frame *fr)
{
	free(fr->v);
	memset(fr, 0, sizeof(*fr));
}

/*
 * frame_load() - look at every ring of the instance, or at the one store
 * asked for.  Returns 0, or -errno when /dev/shm cannot be read (said on
 * stderr).
 */
static int frame_load(const struct opts *o, struct frame *fr)
{
	char **names = NULL;
	int n, ret;

	memset(fr, 0, sizeof(*fr));
	ps_cached = 0; /* a process dead since the last frame is dead now */
	if (o->store) {
		fr->v = calloc(1, sizeof(*fr->v));
		if (!fr->v)
			goto err_nomem;
		ret = load_one(o->instance, o->store, &fr->v[0], NULL);
		if (ret == -ENOENT) {
			fr->missing = 1;
			return 0;
		}
		fr->n = 1;
		if (!ring_ok(&fr->v[0]))
			fr->status = EXIT_DAMAGED;
		return 0;
	}

	n = list_stores(o->instance, &names);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", progname, RING_SHM_DIR, strerror(-n));
		return n;
	}
	/* n > 0: list_stores() set names (errno: see .clang-tidy). */
	if (n > 0) {
		fr->v = calloc((size_t)n, sizeof(*fr->v));
		if (!fr->v) {
			for (int i = 0; i < n; i++)
				free(names[i]); /* NOLINT(clang-analyzer-core.NullDereference) */
			free(names);
			goto err_nomem;
		}
	}
	for (int i = 0; i < n; i++) {
		/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference) */
		ret = load_one(o->instance, names[i], &fr->v[fr->n], NULL);
		free(names[i]);
		if (ret == -ENOENT)
			continue; /* removed since we listed it */
		if (!ring_ok(&fr->v[fr->n]))
			fr->status = EXIT_DAMAGED;
		fr->n++;
	}
	free(names);
	return 0;

err_nomem:
	fprintf(stderr, "%s: out of memory\n", progname);
	return -ENOMEM;
}

/*
 * frame_rates() - records written and batches flushed a second, for each
 * ring of cur also in prev (same store, same incarnation), from the
 * counters of the two snapshots and the time between them.  A counter that
 * went backwards (a ring made anew under the same name) gives no rate.
 */
static void frame_rates(struct frame *cur, const struct frame *prev)
{
	size_t j = 0;

	for (size_t i = 0; i < cur->n; i++) {
		struct view *v = &cur->v[i];
		const struct view *p = NULL;
		double dt;

		/* Both frames are sorted by store name. */
		while (j < prev->n && strcmp(prev->v[j].store, v->store) < 0)
			j++;
		if (j < prev->n && !strcmp(prev->v[j].store, v->store))
			p = &prev->v[j];
		v->have_rates = 0;
		if (!p || v->err || p->err || !v->have_hdr || !p->have_hdr ||
		    p->hdr.incarnation != v->hdr.incarnation || v->now_mono <= p->now_mono ||
		    v->hdr.next_seq < p->hdr.next_seq || v->hdr.batches < p->hdr.batches)
			continue;
		dt = (double)(v->now_mono - p->now_mono) / 1e9;
		v->write_rate = (double)(v->hdr.next_seq - p->hdr.next_seq) / dt;
		v->flush_rate = (double)(v->hdr.batches - p->hdr.batches) / dt;
		v->have_rates = 1;
	}
}

/* ------------------------------------------------------------------ */
/* Prometheus                                                         */
/* ------------------------------------------------------------------ */

enum {
	PM_RING_OK,
	PM_CAPACITY,
	PM_UNFL_BYTES,
	PM_UNFL_RECORDS,
	PM_FILL,
	PM_OLDEST_AGE,
	PM_WRITTEN_BYTES,
	PM_FLUSHED_BYTES,
	PM_DURABLE_BYTES,
	PM_RECORDS_WRITTEN,
	PM_LOST_RECORDS,
	PM_DROPS,
	PM_FULL_WAITS,
	PM_LOCK_RECOVERIES,
	PM_LOCK_TIMEOUTS,
	PM_DOORBELLS,
	PM_BATCHES,
	PM_SYNCS,
	PM_DAMAGED,
	PM_SEGMENTS_DELETED,
	PM_LOCK_HELD,
	PM_LOCK_OWNER_DEAD,
	PM_DAEMON_UP,
	PM_DAEMON_PID,
	PM_HB_AGE,
	PM_LAST_ERROR,
	PM_LAST_ERROR_TS,
	PM_QUARANTINED,
	NPM
};

static const struct {
	const char *name, *type, *help;
} pm_def[NPM] = {
	[PM_RING_OK] = { "bufferengine_ring_ok", "gauge",
			 "1 when the ring's header and its oldest record passed every check, 0 "
			 "when the ring is damaged or could not be read." },
	[PM_CAPACITY] = { "bufferengine_ring_capacity_bytes", "gauge",
			  "Size of the ring's data area." },
	[PM_UNFL_BYTES] = { "bufferengine_ring_unflushed_bytes", "gauge",
			    "Bytes in the ring not yet written to a segment (head - tail)." },
	[PM_UNFL_RECORDS] = { "bufferengine_ring_unflushed_records", "gauge",
			      "Records in the ring not yet written to a segment." },
	[PM_FILL] = { "bufferengine_ring_fill_ratio", "gauge",
		      "Unflushed bytes over capacity, 0 to 1." },
	[PM_OLDEST_AGE] = { "bufferengine_ring_oldest_unflushed_age_seconds", "gauge",
			    "Age of the oldest record not yet written to a segment, 0 when "
			    "there is none." },
	[PM_WRITTEN_BYTES] = { "bufferengine_ring_written_bytes_total", "counter",
			       "Bytes appended to the ring since it was created (its head)." },
	[PM_FLUSHED_BYTES] = { "bufferengine_ring_flushed_bytes_total", "counter",
			       "Ring bytes written to segments since it was created (its tail)." },
	[PM_DURABLE_BYTES] = { "bufferengine_ring_durable_bytes_total", "counter",
			       "Ring bytes covered by an fdatasync since it was created." },
	[PM_RECORDS_WRITTEN] = { "bufferengine_records_written_total", "counter",
				 "Records appended to the ring since it was created." },
	[PM_LOST_RECORDS] = { "bufferengine_lost_records", "gauge",
			      "Records written whose fdatasync failed (lost_seq_to - "
			      "lost_seq_from): be_flush for them fails with EIO." },
	[PM_DROPS] = { "bufferengine_drops_total", "counter",
		       "Records refused because the ring was full (on_full = drop)." },
	[PM_FULL_WAITS] = { "bufferengine_full_waits_total", "counter",
			    "Appends that had to wait for space (on_full = block)." },
	[PM_LOCK_RECOVERIES] = { "bufferengine_lock_recoveries_total", "counter",
				 "Writers' lock taken over from a writer that died holding it." },
	[PM_LOCK_TIMEOUTS] = { "bufferengine_lock_timeouts_total", "counter",
			       "Waits for the writers' lock that timed out." },
	[PM_DOORBELLS] = { "bufferengine_doorbells_total", "counter",
			   "Times a writer woke the daemon (flush threshold reached)." },
	[PM_BATCHES] = { "bufferengine_batches_total", "counter",
			 "Batches the daemon wrote to segments." },
	[PM_SYNCS] = { "bufferengine_syncs_total", "counter", "fdatasyncs the daemon completed." },
	[PM_DAMAGED] = { "bufferengine_damaged_bytes_total", "counter",
			 "Ring bytes the daemon skipped as damaged." },
	[PM_SEGMENTS_DELETED] = { "bufferengine_segments_deleted_total", "counter",
				  "Closed segments removed by retention." },
	[PM_LOCK_HELD] = { "bufferengine_lock_held", "gauge",
			   "1 when a writer held the writers' lock at the sample." },
	[PM_LOCK_OWNER_DEAD] = { "bufferengine_lock_owner_dead", "gauge",
				 "1 when the writers' lock is held by a thread that is gone, or "
				 "marked owner-died by the kernel." },
	[PM_DAEMON_UP] = { "bufferengine_daemon_up", "gauge",
			   "1 when the daemon serves the ring: running, its pid alive, its "
			   "heartbeat younger than 5 s." },
	[PM_DAEMON_PID] = { "bufferengine_daemon_pid", "gauge",
			    "Pid of the daemon that last attached to the ring, 0 if none." },
	[PM_HB_AGE] = { "bufferengine_heartbeat_age_seconds", "gauge",
			"Age of the daemon's last heartbeat in the ring." },
	[PM_LAST_ERROR] = { "bufferengine_last_error", "gauge",
			    "errno of the daemon's last flush failure on the store, 0 if none." },
	[PM_LAST_ERROR_TS] = { "bufferengine_last_error_timestamp_seconds", "gauge",
			       "Unix time of the daemon's last flush failure, 0 if none." },
	[PM_QUARANTINED] = { "bufferengine_store_quarantined", "gauge",
			     "1 when the daemon stopped flushing the store (quarantine)." },
};

/* A sample's value: an exact integer, or a double. */
struct pm_val {
	int is_int;
	uint64_t u;
	double d;
};

/* pm_value() - metric k of ring v into *out; 0 when it has no sample. */
static int pm_value(int k, const struct view *v, struct pm_val *out)
{
	const struct ring_hdr *h = &v->hdr;
	uint64_t u = 0;
	int64_t age;

	out->is_int = 1;
	if (k == PM_RING_OK) {
		out->u = ring_ok(v);
		return 1;
	}
	if (v->err || !v->have_hdr)
		return 0; /* nothing of a bad header is a number to graph */
	switch (k) {
	case PM_CAPACITY:
		u = h->capacity;
		break;
	case PM_UNFL_BYTES:
		u = h->head - h->tail;
		break;
	case PM_UNFL_RECORDS:
		if (!unflushed_records(v, &u))
			return 0;
		break;
	case PM_FILL:
		out->is_int = 0;
		out->d = (double)(h->head - h->tail) / (double)h->capacity;
		return 1;
	case PM_OLDEST_AGE:
		out->is_int = 0;
		if (v->oldest == OLDEST_NONE) {
			out->d = 0;
			return 1;
		}
		if (v->oldest != OLDEST_OK)
			return 0;
		age = real_age(v, v->oldest_ts);
		out->d = age < 0 ? 0 : (double)age / 1e9;
		return 1;
	case PM_WRITTEN_BYTES:
		u = h->head;
		break;
	case PM_FLUSHED_BYTES:
		u = h->tail;
		break;
	case PM_DURABLE_BYTES:
		u = h->durable_pos;
		break;
	case PM_RECORDS_WRITTEN:
		if (h->next_seq < h->first_seq)
			return 0;
		u = h->next_seq - h->first_seq;
		break;
	case PM_LOST_RECORDS:
		u = h->lost_seq_to > h->lost_seq_from ? h->lost_seq_to - h->lost_seq_from : 0;
		break;
	case PM_DROPS:
		u = h->drops;
		break;
	case PM_FULL_WAITS:
		u = h->full_waits;
		break;
	case PM_LOCK_RECOVERIES:
		u = h->lock_recoveries;
		break;
	case PM_LOCK_TIMEOUTS:
		u = h->lock_timeouts;
		break;
	case PM_DOORBELLS:
		u = h->doorbells;
		break;
	case PM_BATCHES:
		u = h->batches;
		break;
	case PM_SYNCS:
		u = h->syncs;
		break;
	case PM_DAMAGED:
		u = h->damaged_bytes;
		break;
	case PM_SEGMENTS_DELETED:
		u = h->segments_deleted;
		break;
	case PM_LOCK_HELD:
		u = v->lock.owner_tid != 0;
		break;
	case PM_LOCK_OWNER_DEAD:
		u = lock_owner_dead(v);
		break;
	case PM_DAEMON_UP:
		u = daemon_up(v);
		break;
	case PM_DAEMON_PID:
		u = h->daemon_pid;
		break;
	case PM_HB_AGE:
		age = hb_age(v);
		if (age < 0)
			return 0;
		out->is_int = 0;
		out->d = (double)age / 1e9;
		return 1;
	case PM_LAST_ERROR:
		if (h->last_error > 0 || h->last_error <= -4096)
			return 0;
		u = (uint64_t) - (int64_t)h->last_error;
		break;
	case PM_LAST_ERROR_TS:
		out->is_int = 0;
		out->d = h->last_error ? (double)h->last_error_ns / 1e9 : 0;
		return 1;
	case PM_QUARANTINED:
		u = h->daemon_state == RING_DAEMON_QUARANTINED;
		break;
	default:
		return 0;
	}
	out->u = u;
	return 1;
}

/* A label value: \ " and newline escaped (names are plain, but say so in code). */
static void pm_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			putc(*s, f);
	}
}

/*
 * print_prom() - the rings in the Prometheus text exposition format: for
 * each metric, its # HELP and # TYPE lines, then one sample a ring, every
 * sample labelled instance and store.  A ring that could not be read has
 * only bufferengine_ring_ok 0.
 */
static void print_prom(FILE *f, const char *instance, const struct view *views, size_t n)
{
	fputs("# HELP bufferengine_rings Rings of the instance found in /dev/shm.\n"
	      "# TYPE bufferengine_rings gauge\n"
	      "bufferengine_rings{instance=\"",
	      f);
	pm_label(f, instance);
	fprintf(f, "\"} %zu\n", n);
	for (int k = 0; k < NPM; k++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", pm_def[k].name, pm_def[k].help,
			pm_def[k].name, pm_def[k].type);
		for (size_t i = 0; i < n; i++) {
			struct pm_val val;

			if (!pm_value(k, &views[i], &val))
				continue;
			fprintf(f, "%s{instance=\"", pm_def[k].name);
			pm_label(f, instance);
			fputs("\",store=\"", f);
			pm_label(f, views[i].store);
			if (val.is_int)
				fprintf(f, "\"} %" PRIu64 "\n", val.u);
			else
				fprintf(f, "\"} %.15g\n", val.d);
		}
	}
}

/*
 * write_atomic() - replace path with len bytes of data: write a temporary
 * file in the same directory (".<name>.XXXXXX": node_exporter's textfile
 * collector reads only *.prom), fsync it, rename it over path, fsync the
 * directory.  A reader sees the old file or the new one, never a part.
 * Returns 0, or -errno (the temporary file removed).
 */
static int write_atomic(const char *path, const char *data, size_t len)
{
	const char *slash = strrchr(path, '/');
	char *tmp, *dir;
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	mode_t mask;
	int fd, dfd, ret = 0;

	tmp = malloc(strlen(path) + 16);
	dir = malloc(dlen + 2);
	if (!tmp || !dir) {
		free(tmp);
		free(dir);
		return -ENOMEM;
	}
	if (slash) {
		memcpy(dir, path, dlen);
		dir[dlen] = 0;
		if (dlen == 0)
			snprintf(dir, dlen + 2, "/");
		sprintf(tmp, "%.*s/.%s.XXXXXX", (int)dlen, path, slash + 1);
	} else {
		snprintf(dir, dlen + 2, ".");
		sprintf(tmp, ".%s.XXXXXX", path);
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	/* mkostemp makes 0600; a textfile collector runs as another user. */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) < 0)
		ret = -errno;
	for (size_t off = 0; !ret && off < len;) {
		ssize_t w = write(fd, data + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			ret = -errno;
		else
			off += (size_t)w;
	}
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd); /* the rename itself durable; failing here loses nothing */
		close(dfd);
	}
out:
	free(tmp);
	free(dir);
	return ret;
}

/* write_prom_file() - the exposition of a frame into o->prom_file. */
static int write_prom_file(const struct opts *o, const struct frame *fr)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int ret;

	f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	print_prom(f, o->instance, fr->v, fr->n);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	ret = write_atomic(o->prom_file, buf, len);
	free(buf);
	if (ret < 0)
		fprintf(stderr, "%s: writing %s: %s\n", progname, o->prom_file, strerror(-ret));
	return ret;
}

/* ------------------------------------------------------------------ */
/* --records: the oldest (or newest) unflushed records                */
/* ------------------------------------------------------------------ */

/*
 * positions() - the ring position of each record ring_collect() copied.
 * Padding is left out of the copy, but where it was follows from the rule
 * that a record never crosses the end of the data area.  Fills pos[] and
 * returns 0, or -EBADMSG when the copy does not add up to what res says
 * (then no position is known, and the caller assumes the worst).
 */
static int positions(const struct ring_map *m, const uint8_t *buf, const struct ring_batch *res,
		     uint64_t *pos)
{
	uint64_t p = res->start_pos, off = 0;

	for (uint32_t i = 0; i < res->count; i++) {
		struct rec_hdr rh;
		uint64_t size, room;

		if (res->bytes - off < sizeof(rh))
			return -EBADMSG;
		memcpy(&rh, buf + off, sizeof(rh));
		size = rec_size(rh.len);
		if (size > res->bytes - off)
			return -EBADMSG;
		room = m->capacity - (p & m->mask);
		if (size > room)
			p += room; /* a padding marker filled the rest of the area */
		pos[i] = p;
		p += size;
		off += size;
	}
	if (off != res->bytes)
		return -EBADMSG;
	/* end_pos may include a padding marker after the last record. */
	if (p != res->end_pos &&
	    !(p < res->end_pos && (res->end_pos & m->mask) == 0 && res->end_pos - p < m->capacity))
		return -EBADMSG;
	return 0;
}

/*
 * What walk_records() hands over: one record (header, payload, padding
 * zeroed: rec_size(rh->len) bytes at rec), copied and found intact, and its
 * position (exact, or only a lower bound when !exact).  Returns 0 to go
 * on, 1 to stop, -ENOMEM.
 */
typedef int (*rec_fn)(void *arg, const struct rec_hdr *rh, const uint8_t *rec, uint64_t pos,
		      int exact);

struct walk {
	uint64_t delivered; /* records handed to the callback */
	uint64_t skipped;   /* records the tail passed while we copied them */
	int empty;	    /* nothing unflushed at the start */
	int passed;	    /* the tail passed the head we started with */
};

/*
 * walk_records() - every intact record in [tail, head), oldest first.
 *
 * Works in chunks of about COLLECT_CHUNK bytes: copy with ring_collect(),
 * then read the tail again.  Ring bytes at a position p are overwritten
 * only once the tail has passed p (a writer needs head - tail <= capacity),
 * so a record at or above the new tail was copied intact, and one below it
 * may not have been: it is left out (it is flushed now, no longer
 * unflushed) and the walk goes on from the new tail, which is always a
 * record boundary.  The head is read once: records written after we start
 * are not shown.
 *
 * Returns 0, EXIT_DAMAGED after saying why on stderr (what came before the
 * damage was handed over), or -ENOMEM.
 */
static int walk_records(struct ring_map *m, rec_fn fn, void *arg, struct walk *w)
{
	uint64_t tail, head, pos, min_seq = 0;
	uint64_t *recpos = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int status = 0, stop = 0;
	int ret;

	memset(w, 0, sizeof(*w));
	if (load_u64(&m->hdr->tail, &tail) < 0 || load_u64(&m->hdr->head, &head) < 0)
		goto err_fault;
	if (head - tail > m->capacity) {
		fprintf(stderr, "%s: %s: damaged: head - tail = %" PRIu64 " exceeds capacity\n",
			progname, m->store, head - tail);
		status = EXIT_DAMAGED;
		goto out_free;
	}
	if (head == tail) {
		w->empty = 1;
		goto out_free;
	}

	pos = tail;
	while (!stop && pos < head) {
		uint64_t want = head - pos < COLLECT_CHUNK ? head - pos : COLLECT_CHUNK;
		struct ring_batch res;
		uint64_t tail2, off;
		int exact;

		if (cap < want) {
			uint8_t *nb = realloc(buf, (size_t)want);

			if (!nb)
				goto err_nomem;
			buf = nb;
			cap = (size_t)want;
		}
		memset(&res, 0, sizeof(res));
		ret = collect_guarded(m, pos, head, min_seq, buf, cap, &res);
		if (ret == -E2BIG) {
			/* One record larger than the chunk: make room for it. */
			if (res.need <= cap || res.need > m->capacity) {
				fprintf(stderr, "%s: %s: damaged record at position %" PRIu64 "\n",
					progname, m->store, pos);
				status = EXIT_DAMAGED;
				break;
			}
			uint8_t *nb = realloc(buf, (size_t)res.need);

			if (!nb)
				goto err_nomem;
			buf = nb;
			cap = (size_t)res.need;
			continue;
		}
		if (ret == -EFAULT)
			goto err_fault;
		if (ret < 0 && ret != -EBADMSG) {
			fprintf(stderr, "%s: %s: reading records: %s\n", progname, m->store,
				strerror(-ret));
			status = EXIT_DAMAGED;
			break;
		}
		if (res.count > cap / sizeof(struct rec_hdr) || res.bytes > cap) {
			fprintf(stderr, "%s: %s: ring_collect returned more than asked\n", progname,
				m->store);
			status = EXIT_DAMAGED;
			break;
		}

		/*
		 * Order the loads of the ring data above before the tail load
		 * below, so that a tail older than the writer that overwrote
		 * what we copied cannot be seen.  The writer read that tail
		 * (acquire, pairing with the daemon's release store) before it
		 * wrote.
		 */
		smp_rmb();
		if (load_u64(&m->hdr->tail, &tail2) < 0)
			goto err_fault;
		if (tail2 < tail) {
			fprintf(stderr,
				"%s: %s: damaged: the tail moved from %" PRIu64 " to %" PRIu64 "\n",
				progname, m->store, tail, tail2);
			status = EXIT_DAMAGED;
			break;
		}
		tail = tail2;

		free(recpos);
		recpos = calloc(res.count ? res.count : 1, sizeof(*recpos));
		if (!recpos)
			goto err_nomem;
		exact = positions(m, buf, &res, recpos) == 0;

		off = 0;
		for (uint32_t i = 0; i < res.count; i++) {
			uint64_t p = exact ? recpos[i] : pos;
			struct rec_hdr rh;

			memcpy(&rh, buf + off, sizeof(rh));
			/* Without exact positions, a moved tail may have hit any of them. */
			if (p < tail2) {
				w->skipped++;
			} else if (!stop) {
				int r = fn(arg, &rh, buf + off, p, exact);

				w->delivered++;
				if (r < 0)
					goto err_nomem;
				if (r > 0)
					stop = 1;
			}
			off += rec_size(rh.len);
		}
		if (res.count)
			min_seq = res.last_seq + 1; /* ring_collect wants seq >= min_seq */

		if (ret == -EBADMSG) {
			if (res.bad_pos >= tail2) {
				fprintf(stderr,
					"%s: %s: damaged record at position %" PRIu64
					" (after %" PRIu64 " good ones)\n",
					progname, m->store, res.bad_pos, w->delivered);
				status = EXIT_DAMAGED;
				break;
			}
			/* The damage was a record being overwritten: flushed since. */
			res.end_pos = tail2;
		}
		if (res.end_pos <= pos && tail2 <= pos) {
			fprintf(stderr, "%s: %s: no progress at position %" PRIu64 "\n", progname,
				m->store, pos);
			status = EXIT_DAMAGED;
			break;
		}
		pos = res.end_pos > tail2 ? res.end_pos : tail2;
	}
	w->passed = pos > head;
	goto out_free;

err_fault:
	fprintf(stderr, "%s: %s: the ring was truncated while being read\n", progname, m->store);
	status = EXIT_DAMAGED;
	goto out_free;
err_nomem:
	status = -ENOMEM;
out_free:
	free(recpos);
	free(buf);
	return status;
}

/* How the records are shown. */
struct printer {
	struct recfmt fmt;
	int json, hex;
	uint64_t mask; /* the ring's, for offsets */
	uint64_t n;    /* print at most n (the oldest-first walk) */
	uint64_t printed;
	uint64_t undecodable; /* payloads that did not decode */
	uint64_t first_bad_seq;
	char first_bad[160];
};

/*
 * hexdump() - n bytes like hexdump -C: the offset (here: in the ring's data
 * area), 16 bytes in hex, the printable ones as text; a run of lines equal
 * to the one before as one "*"; then the offset after the last byte.
 */
static void hexdump(FILE *f, const uint8_t *p, size_t n, uint64_t base)
{
	int squeezed = 0;

	for (size_t i = 0; i < n; i += 16) {
		size_t k = n - i < 16 ? n - i : 16;

		if (i >= 16 && k == 16 && !memcmp(p + i, p + i - 16, 16)) {
			if (!squeezed)
				fputs("*\n", f);
			squeezed = 1;
			continue;
		}
		squeezed = 0;
		fprintf(f, "%08" PRIx64 " ", base + i);
		for (size_t j = 0; j < 16; j++) {
			if (j == 8)
				putc(' ', f);
			if (j < k)
				fprintf(f, " %02x", p[i + j]);
			else
				fputs("   ", f);
		}
		fputs("  |", f);
		for (size_t j = 0; j < k; j++)
			putc(p[i + j] >= 0x20 && p[i + j] < 0x7f ? p[i + j] : '.', f);
		fputs("|\n", f);
	}
	fprintf(f, "%08" PRIx64 "\n", base + n);
}

/*
 * print_rec() - one record through recfmt, as be-read prints it (raw
 * payloads shown in text up to DATA_TEXT_MAX bytes); with hex, then its
 * bytes (text), or "pos", "offset" and "hex" added to its object (JSON).
 * Returns 0 or -ENOMEM.
 */
static int print_rec(struct printer *p, const struct rec_hdr *rh, const uint8_t *rec, uint64_t pos,
		     int exact)
{
	struct recfmt_buf *out = &p->fmt.out;
	size_t size = rec_size(rh->len);
	int ret = recfmt_record(&p->fmt, rh, rec + sizeof(*rh));

	if (ret == -ENOMEM)
		return -ENOMEM;
	if (p->hex && p->json && out->len >= 2 && !memcmp(out->p + out->len - 2, "}\n", 2)) {
		static const char digits[] = "0123456789abcdef";
		char *d;

		out->len -= 2;
		if (exact) {
			recfmt_lit(out, ",\"pos\":");
			recfmt_u64(out, pos);
			recfmt_lit(out, ",\"offset\":");
			recfmt_u64(out, pos & p->mask);
		}
		recfmt_lit(out, ",\"hex\":\"");
		d = recfmt_need(out, 2 * size);
		if (d) {
			for (size_t i = 0; i < size; i++) {
				d[2 * i] = digits[rec[i] >> 4];
				d[2 * i + 1] = digits[rec[i] & 15];
			}
			out->len += 2 * size;
		}
		recfmt_lit(out, "\"}\n");
		if (out->err)
			return -ENOMEM;
	}
	fwrite(out->p, 1, out->len, stdout);
	out->len = 0;
	if (p->hex && !p->json) {
		if (!exact)
			printf("(position unknown: offsets from the record's start)\n");
		hexdump(stdout, rec, size, exact ? pos & p->mask : 0);
	}
	if (ret < 0 && !p->undecodable++) {
		p->first_bad_seq = rh->seq;
		recfmt_error_text(&p->fmt, ret, rh->type, rec + sizeof(*rh), rh->len, p->first_bad,
				  sizeof(p->first_bad));
	}
	p->printed++;
	return 0;
}

/* The oldest-first walk's callback: print, stop after n. */
static int print_cb(void *arg, const struct rec_hdr *rh, const uint8_t *rec, uint64_t pos,
		    int exact)
{
	struct printer *p = arg;
	int ret = print_rec(p, rh, rec, pos, exact);

	if (ret < 0)
		return ret;
	return p->printed >= p->n;
}

/* --tail: the last n records seen, kept as copies in a circular buffer. */
struct kept {
	uint8_t *rec;
	size_t size, cap;
	uint64_t pos;
	int exact;
};

struct keeper {
	uint64_t n;    /* keep at most n */
	uint64_t seen; /* records handed over */
	struct kept *slot;
	size_t nslots; /* allocated, up to n */
};

static int keep_cb(void *arg, const struct rec_hdr *rh, const uint8_t *rec, uint64_t pos, int exact)
{
	struct keeper *k = arg;
	size_t idx = (size_t)(k->seen % k->n);
	size_t size = rec_size(rh->len);
	struct kept *s;

	if (idx >= k->nslots) {
		size_t nn = k->nslots ? k->nslots * 2 : 64;
		struct kept *ns;

		if (nn > k->n)
			nn = (size_t)k->n;
		ns = realloc(k->slot, nn * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		memset(ns + k->nslots, 0, (nn - k->nslots) * sizeof(*ns));
		k->slot = ns;
		k->nslots = nn;
	}
	s = &k->slot[idx];
	if (s->cap < size) {
		uint8_t *nb = realloc(s->rec, size);

		if (!nb)
			return -ENOMEM;
		s->rec = nb;
		s->cap = size;
	}
	/* rec_size() > 0: s->cap >= size only once s->rec was allocated. */
	memcpy(s->rec, rec, size); /* NOLINT(clang-analyzer-core.NonNullParamChecker) */
	s->size = size;
	s->pos = pos;
	s->exact = exact;
	k->seen++;
	return 0;
}

/*
 * show_records() - print the oldest n unflushed records, or with tail the
 * newest n (all of [tail, head) is walked, the last n kept, then printed
 * oldest first).  Returns 0, or EXIT_DAMAGED after printing what came
 * before the damage (and when a payload did not decode).
 */
static int show_records(struct ring_map *m, uint64_t n, int json, int tail, int hex)
{
	struct keeper k = { .n = n };
	struct printer p;
	struct walk w;
	int status;

	memset(&p, 0, sizeof(p));
	if (recfmt_init(&p.fmt, json, progname, 64 << 10) < 0) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return EXIT_DAMAGED;
	}
	p.fmt.text_data_max = DATA_TEXT_MAX;
	p.json = json;
	p.hex = hex;
	p.mask = m->mask;
	p.n = n;

	status = walk_records(m, tail ? keep_cb : print_cb, tail ? (void *)&k : (void *)&p, &w);
	if (tail && status >= 0) {
		uint64_t count = k.seen < n ? k.seen : n;
		uint64_t first = k.seen > n ? k.seen % n : 0;

		for (uint64_t i = 0; i < count; i++) {
			const struct kept *s = &k.slot[(first + i) % n];
			struct rec_hdr rh;

			memcpy(&rh, s->rec, sizeof(rh));
			if (print_rec(&p, &rh, s->rec, s->pos, s->exact) < 0) {
				status = -ENOMEM;
				break;
			}
		}
	}
	if (status == -ENOMEM) {
		fprintf(stderr, "%s: out of memory\n", progname);
		status = EXIT_DAMAGED;
	}

	if (w.empty) {
		fprintf(stderr, "%s: %s: no unflushed records\n", progname, m->store);
	} else if (p.printed == 0 && (w.skipped || w.passed)) {
		fprintf(stderr,
			"%s: %s: the daemon flushed every record while they were read; nothing "
			"to show\n",
			progname, m->store);
	} else if (w.skipped && !tail) {
		fprintf(stderr,
			"%s: %s: the daemon flushed %" PRIu64 " records while they were read; "
			"they are left out\n",
			progname, m->store, w.skipped);
	}
	if (p.undecodable) {
		fprintf(stderr,
			"%s: %s: %" PRIu64 " record%s could not be decoded (printed with their "
			"bytes); the first, seq %" PRIu64 ": %s\n",
			progname, m->store, p.undecodable, p.undecodable == 1 ? "" : "s",
			p.first_bad_seq, p.first_bad);
		status = EXIT_DAMAGED;
	}
	for (size_t i = 0; i < k.nslots; i++)
		free(k.slot[i].rec);
	free(k.slot);
	recfmt_free(&p.fmt);
	return status;
}

static int dump_records_of(const struct opts *o)
{
	struct ring_map m;
	struct view *v;
	int status = 0;
	int ret;

	v = calloc(1, sizeof(*v));
	if (!v) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return EXIT_DAMAGED;
	}
	memset(&m, 0, sizeof(m));
	m.fd = -1;
	ret = load_one(o->instance, o->store, v, &m);
	if (ret == -ENOENT) {
		fprintf(stderr, "%s: no store '%s' in instance '%s' (no %s/%s%s.%s)\n", progname,
			o->store, o->instance, RING_SHM_DIR, RING_SHM_PREFIX, o->instance,
			o->store);
		status = EXIT_USAGE;
	} else if (v->err) {
		fprintf(stderr, "%s: %s: %s: %s %s\n", progname, o->store, status_word(v),
			errno_name(-v->err), v->why);
		status = EXIT_DAMAGED;
	} else {
		status = show_records(&m, o->records, o->json, o->tail, o->hex);
		ring_unmap(&m);
	}
	free(v);
	return status;
}

/* ------------------------------------------------------------------ */
/* Frames: one look, rendered                                         */
/* ------------------------------------------------------------------ */

static void print_missing(FILE *f, const struct opts *o)
{
	fprintf(f, "%s: no store '%s' in instance '%s' (no %s/%s%s.%s)\n", progname, o->store,
		o->instance, RING_SHM_DIR, RING_SHM_PREFIX, o->instance, o->store);
}

/*
 * render() - one frame to stdout (or the Prometheus file).  With watch,
 * JSON is one line a frame, and the table and a store's fields get a
 * title line (and the screen is cleared first when clear).  Returns 0, or
 * -errno when the Prometheus file could not be written.
 */
static int render(const struct opts *o, const struct frame *fr, uint64_t frame_no, int clear)
{
	FILE *f = stdout;

	if (o->prom_file)
		return write_prom_file(o, fr);
	if (o->prom) {
		print_prom(f, o->instance, fr->v, fr->n);
		return 0;
	}
	if (clear)
		fputs("\033[H\033[2J", f);
	if (o->watch && !o->json) {
		char now[RECFMT_TIME_LEN + 1];

		recfmt_time_str(now, now_real_ns());
		fprintf(f, "shm-dump - instance %s - %s - every %gs - frame %" PRIu64 "\n",
			o->instance, now, (double)o->interval_ns / 1e9, frame_no);
	}
	if (fr->missing) {
		if (o->json)
			fputs("null\n", f);
		else
			print_missing(f, o);
	} else if (o->store) {
		struct emit e = { .f = f, .json = o->json };

		emit_begin(&e);
		emit_view(&e, o->instance, &fr->v[0]);
		emit_end(&e);
		if (o->json)
			putc('\n', f);
	} else if (o->json) {
		struct emit e = { .f = f, .json = 1 };
		const char *sep = o->watch ? "" : "\n";

		putc('[', f);
		for (size_t i = 0; i < fr->n; i++) {
			fprintf(f, "%s%s", i ? "," : "", sep);
			emit_begin(&e);
			emit_view(&e, o->instance, &fr->v[i]);
			emit_end(&e);
		}
		fprintf(f, "%s]\n", fr->n ? sep : "");
	} else if (fr->n == 0) {
		fprintf(f, "no rings for instance %s\n", o->instance);
	} else {
		print_table(f, fr->v, fr->n);
	}
	if (o->watch && !o->json && !clear)
		putc('\n', f); /* frames apart, when they are not redrawn */
	return 0;
}

static void on_stop(int sig)
{
	stop_signal = sig;
}

/*
 * pause_ns() - sleep ns, or less when SIGINT or SIGTERM comes: the signals
 * are blocked outside ppoll(), which lets them in while it sleeps, so that
 * one arriving just before the sleep is not slept through.  Returns 1 when
 * asked to stop.
 */
static int pause_ns(uint64_t ns)
{
	uint64_t end = now_mono_ns() + ns;
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	while (!stop_signal) {
		uint64_t now = now_mono_ns();
		struct timespec ts;

		if (now >= end)
			break;
		ts = ns_to_timespec(end - now);
		ppoll(NULL, 0, &ts, &old);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return stop_signal != 0;
}

/* Whether stdout is still good; says so on stderr when not. */
static int output_ok(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing the output: %s\n", progname, strerror(errno));
		return 0;
	}
	return 1;
}

/* One look (two with --rate, RATE_SAMPLE_NS apart), one render. */
static int run_once(const struct opts *o)
{
	struct frame prev, cur;
	int status;

	if (frame_load(o, &cur) < 0)
		return EXIT_DAMAGED;
	if (o->rate && !cur.missing) {
		prev = cur;
		pause_ns(RATE_SAMPLE_NS);
		if (frame_load(o, &cur) < 0) {
			frame_free(&prev);
			return EXIT_DAMAGED;
		}
		frame_rates(&cur, &prev);
		frame_free(&prev);
	}
	if (cur.missing) {
		print_missing(stderr, o);
		frame_free(&cur);
		return EXIT_USAGE;
	}
	status = cur.status;
	if (render(o, &cur, 1, 0) < 0)
		status = EXIT_DAMAGED;
	frame_free(&cur);
	if (!output_ok() && !status)
		status = EXIT_DAMAGED;
	return status;
}

/*
 * run_watch() - a frame every interval until SIGINT or SIGTERM (or
 * --iterations frames), the rates computed between two frames.  On a
 * terminal each frame is drawn over the last, like top(1); elsewhere the
 * frames follow each other.  Returns 0, EXIT_USAGE when the store asked
 * for is not there at the start, EXIT_DAMAGED when the output could not be
 * written (for the Prometheus file: at the last try).
 */
static int run_watch(const struct opts *o)
{
	struct frame prev = { 0 }, cur;
	struct sigaction sa;
	int clear = !o->json && !o->prom && !o->prom_file && isatty(STDOUT_FILENO);
	int status = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	/* A second signal kills at once, should a write hang; a write is resumed. */
	sa.sa_flags = SA_RESETHAND | SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A frame goes out whole, then is flushed. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	for (uint64_t k = 1; !stop_signal; k++) {
		if (frame_load(o, &cur) < 0) {
			status = EXIT_DAMAGED;
			break;
		}
		if (k == 1 && cur.missing) {
			print_missing(stderr, o);
			frame_free(&cur);
			status = EXIT_USAGE;
			break;
		}
		frame_rates(&cur, &prev);
		status = render(o, &cur, k, clear) < 0 ? EXIT_DAMAGED : 0;
		frame_free(&prev);
		prev = cur;
		if (!output_ok()) {
			status = EXIT_DAMAGED;
			break;
		}
		if (o->iterations && k >= o->iterations)
			break;
		if (pause_ns(o->interval_ns))
			break;
	}
	frame_free(&prev);
	return status;
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-i INSTANCE] [--json | --prometheus | --prometheus-file PATH]\n"
		"                [--rate] [--watch [SECONDS] [--iterations N]] [STORE]\n"
		"       %s [-i INSTANCE] [--json] STORE --records N [--tail] [--hex]\n"
		"Show the shared-memory rings of a bufferengine instance, live.\n"
		"\n"
		"Without STORE, one line per ring of the instance: fill, unflushed bytes and\n"
		"records, the oldest unflushed record's age, rates, drops, the writers' lock,\n"
		"the last error, the daemon and its heartbeat; with STORE, every header field\n"
		"and counter of that ring.\n"
		"\n"
		"  -i, --instance=NAME     the instance (default: $BE_INSTANCE, else \"default\")\n"
		"  -j, --json              JSON: an array for the list, an object for a store,\n"
		"                          JSON Lines for --records (and one line a frame\n"
		"                          with --watch)\n"
		"  -p, --prometheus        the counters and gauges in the Prometheus text format\n"
		"      --prometheus-file=PATH\n"
		"                          the same into PATH, replaced atomically (for\n"
		"                          node_exporter's textfile collector); nothing on stdout\n"
		"  -r, --rate              take two looks %d ms apart and show the write and\n"
		"                          flush rates (without it, and without --watch: \"-\")\n"
		"  -w, --watch[=SECONDS]   redraw every SECONDS (default 1, from 0.1) like "
		"top(1),\n"
		"                          with the rates between two frames; until SIGINT or\n"
		"                          SIGTERM (exit status 0)\n"
		"      --iterations=N      with --watch: stop after N frames (implies --watch)\n"
		"  -n, --records=N         print the oldest N records not yet flushed (needs "
		"STORE),\n"
		"                          decoded as be-read prints them (raw payloads: base64\n"
		"                          in JSON, at most %d bytes in text)\n"
		"  -t, --tail              with --records: the newest N instead of the oldest\n"
		"  -x, --hex               with --records: each record's bytes too, like\n"
		"                          hexdump -C, at their offsets in the ring's data area\n"
		"  -h, --help              this text\n"
		"  -V, --version           the version\n"
		"\n"
		"Exit status: 0 fine, 1 bad arguments or no such store,\n"
		"2 a ring is damaged or could not be read (the others are still shown),\n"
		"a record's payload did not decode, or the output could not be written.\n",
		progname, progname, (int)(RATE_SAMPLE_NS / NSEC_PER_MSEC), DATA_TEXT_MAX);
}

static void __attribute__((format(printf, 1, 2))) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	exit(EXIT_USAGE);
}

/* Our pid namespace, to compare with the one each ring records. */
static void read_pidns(void)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) == 0) {
		pidns_known = 1;
		pidns_ino = (uint64_t)st.st_ino;
		pidns_dev = (uint64_t)st.st_dev;
	}
}

/* A count from 1 to max, or -1.  @s: the optarg of -n or --iterations. */
static int64_t parse_count(const char *s, uint64_t max)
{
	unsigned long long v;
	char *end;

	/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): getopt() set it, required */
	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno || v == 0 || v > max)
		return -1;
	return (int64_t)v;
}

/* Seconds ("1", "0.5", "2.25") in [0.1, 86400] as ns, or 0. */
static uint64_t parse_seconds(const char *s)
{
	char *end;
	double d;

	if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
		return 0;
	errno = 0;
	d = strtod(s, &end);
	if (*end || errno || !isfinite(d))
		return 0;
	if (d * 1e9 < (double)WATCH_MIN_NS || d * 1e9 > (double)WATCH_MAX_NS)
		return 0;
	return (uint64_t)(d * 1e9 + 0.5);
}

enum { OPT_PROM_FILE = 256, OPT_ITERATIONS };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "prometheus-file", required_argument, NULL, OPT_PROM_FILE },
		{ "rate", no_argument, NULL, 'r' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "iterations", required_argument, NULL, OPT_ITERATIONS },
		{ "records", required_argument, NULL, 'n' },
		{ "tail", no_argument, NULL, 't' },
		{ "hex", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .interval_ns = NSEC_PER_SEC };
	const char *env;
	int64_t count;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:jprw::n:txhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			o.instance = optarg;
			break;
		case 'j':
			o.json = 1;
			break;
		case 'p':
			o.prom = 1;
			break;
		case OPT_PROM_FILE:
			/* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): getopt() set it */
			if (!optarg[0])
				bad_usage("--prometheus-file needs a path");
			o.prom_file = optarg;
			break;
		case 'r':
			o.rate = 1;
			break;
		case 'w':
			o.watch = 1;
			/*
			 * "--watch 2" as well as "--watch=2": a next argument
			 * that reads as seconds is taken (a store named like
			 * a number goes before --watch, or use --watch=1).
			 */
			if (!optarg && optind < argc && parse_seconds(argv[optind]))
				optarg = argv[optind++];
			if (optarg) {
				o.interval_ns = parse_seconds(optarg);
				if (!o.interval_ns)
					bad_usage(
						"--watch takes seconds from 0.1 to 86400, not '%s'",
						optarg);
			}
			break;
		case OPT_ITERATIONS:
			count = parse_count(optarg, ITERATIONS_MAX);
			if (count < 0)
				bad_usage("--iterations takes a count from 1 to %" PRIu64
					  ", not '%s'",
					  ITERATIONS_MAX, optarg);
			o.iterations = (uint64_t)count;
			o.watch = 1;
			break;
		case 'n':
			count = parse_count(optarg, RECORDS_MAX);
			if (count < 0)
				bad_usage("--records takes a count from 1 to %" PRIu64 ", not '%s'",
					  RECORDS_MAX, optarg);
			o.records = (uint64_t)count;
			break;
		case 't':
			o.tail = 1;
			break;
		case 'x':
			o.hex = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("shm-dump " BE_VERSION_STRING "\n");
			return 0;
		case ':':
			fprintf(stderr, "%s: option '%s' needs a value (see --help)\n", progname,
				argv[optind - 1]);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "%s: bad option '%s' (see --help)\n", progname,
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		o.store = argv[optind++];
	if (optind < argc)
		bad_usage("one store at most, '%s' is one too many", argv[optind]);

	if (o.instance) {
		if (!ring_name_valid(o.instance))
			bad_usage("'%s' is not a valid instance name ([A-Za-z0-9_-]{1,63})",
				  o.instance);
	} else {
		env = getenv("BE_INSTANCE");
		if (env && *env && !ring_name_valid(env))
			fprintf(stderr,
				"%s: $BE_INSTANCE '%s' is not a valid instance name, "
				"using the default\n",
				progname, env);
		o.instance = ring_default_instance();
	}
	if (o.store && !ring_name_valid(o.store))
		bad_usage("'%s' is not a valid store name ([A-Za-z0-9_-]{1,63})", o.store);
	if (o.records && !o.store)
		bad_usage("--records needs a STORE");
	if ((o.tail || o.hex) && !o.records)
		bad_usage("--%s goes with --records N", o.tail ? "tail" : "hex");
	if (o.records && (o.watch || o.prom || o.prom_file || o.rate))
		bad_usage("--records shows records once: not with --%s", o.watch  ? "watch"
									 : o.rate ? "rate"
										  : "prometheus");
	if (o.json && (o.prom || o.prom_file))
		bad_usage("--json or --prometheus: one of them");

	ret = guard_install();
	if (ret < 0) {
		fprintf(stderr, "%s: cannot install the SIGBUS guard: %s\n", progname,
			strerror(-ret));
		return EXIT_DAMAGED;
	}
	read_pidns();

	if (o.records)
		ret = dump_records_of(&o);
	else if (o.watch)
		ret = run_watch(&o);
	else
		ret = run_once(&o);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing the output: %s\n", progname, strerror(errno));
		return ret ? ret : EXIT_DAMAGED;
	}
	return ret;
}
