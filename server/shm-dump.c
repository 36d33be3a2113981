/*
 * shm-dump.c - show what is in the rings of an instance, live.
 *
 * Without a store, one table row per ring found in /dev/shm; with a store,
 * every field of its header page, one "name: value" a line, and the state
 * of the writers' lock; with --records N, the oldest N records not yet
 * flushed, decoded like be-read does.  --json gives the same as JSON.
 *
 * shm-dump only reads: it maps rings read-only, never takes the writers'
 * lock and never stores to shared memory.  Everything it shows comes from
 * a private snapshot copied under the SIGBUS guard (a ring truncated under
 * us is an error row, not a crash), and every value of that snapshot is
 * checked before any arithmetic depends on it.  Records are copied with
 * ring_collect(), then the tail is read again: a record below the new tail
 * may have been overwritten while we copied it, and is left out.
 *
 * Exit status: 0 fine, 1 bad usage or no such store, 2 a ring is damaged
 * or could not be read (every other ring is still shown).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
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

static const char *progname = "shm-dump";

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
};

/* Our own pid namespace, to tell whether TIDs in a ring mean anything here. */
static int pidns_known;
static uint64_t pidns_ino, pidns_dev;

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
			 h->version >> 16, h->version & 0xffff, RING_VERSION_MAJOR);
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
	diagnose(&v->hdr, v->size, v->err, v->why, sizeof(v->why));
out_close:
	close(fd);
}

/*
 * snapshot() - copy the header page of a mapped ring into v->hdr.
 *
 * The page is copied in one go, then durable_pos, tail and head are read
 * again, in that order, with acquire loads: a plain copy may read head
 * before a tail that has since moved past it, which would look like damage.
 * Each pairs with the release store of its writer (daemon, daemon, writer),
 * and since durable <= tail <= head hold at every instant, reading them in
 * this order keeps them true in the copy.  Returns 0 or -EFAULT.
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
	v->now_mono = now_mono_ns();
	return ret;
}

/*
 * view_load() - open a ring read-only, snapshot and validate its header.
 * The result, good or bad, is in *v.  Returns 0, or -ENOENT when there is
 * no such ring.  With keep, a good ring stays mapped in *keep (else it is
 * unmapped).
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
	if (keep) {
		*keep = m;
		return 0;
	}
out_unmap:
	ring_unmap(&m);
	return 0;
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

/* 1 when the ring was made in our pid namespace, 0 when not, -1 unknown. */
static int same_pidns(const struct ring_hdr *h)
{
	if (!pidns_known)
		return -1;
	return h->pidns_ino == pidns_ino && h->pidns_dev == pidns_dev;
}

/* "alive", "dead", or why we cannot tell, for a pid or TID of the ring. */
static const char *pid_liveness(const struct ring_hdr *h, uint32_t pid)
{
	if (pid == 0 || pid > INT32_MAX)
		return "invalid";
	if (same_pidns(h) == 0)
		return "other pid namespace";
	/* A TID is reused quickly (pid_max 32768): "alive" may be a stranger. */
	if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
		return "alive";
	return "dead";
}

/* Heartbeat age in ns, or -1 when there is none or it is in the future. */
static int64_t hb_age(const struct view *v)
{
	uint64_t hb = v->hdr.heartbeat_ns;

	if (hb == 0 || hb > v->now_mono || v->now_mono - hb > INT64_MAX)
		return -1;
	return (int64_t)(v->now_mono - hb);
}

/* none, running, stale, stopped, quarantined; NULL for an unknown value. */
static const char *daemon_state(const struct view *v)
{
	int64_t age;

	switch (v->hdr.daemon_state) {
	case RING_DAEMON_NONE:
		return "none";
	case RING_DAEMON_RUNNING:
		age = hb_age(v);
		return (age >= 0 && (uint64_t)age < HEARTBEAT_STALE_NS) ? "running" : "stale";
	case RING_DAEMON_STOPPED:
		return "stopped";
	case RING_DAEMON_QUARANTINED:
		return "quarantined";
	}
	return NULL;
}

/* The daemon's last error in words, NULL when there is none. */
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

/* The writers' lock in words, from the copy of its futex word. */
static void lock_text(const struct ring_hdr *h, char *buf, size_t len)
{
	struct lock_state st;
	int n;

	lock_peek(h, &st);
	if (st.owner_tid == 0)
		n = snprintf(buf, len, "free");
	else
		n = snprintf(buf, len, "held by tid %u (%s)", st.owner_tid,
			     pid_liveness(h, st.owner_tid));
	if (n < 0 || (size_t)n >= len)
		return;
	if (st.owner_died)
		n += snprintf(buf + n, len - n, ", owner died: the next locker recovers it");
	if (st.waiters && (size_t)n < len)
		snprintf(buf + n, len - n, ", waiters");
}

static const char *status_word(const struct view *v)
{
	return !v->err ? "ok" : v->damaged ? "bad" : "error";
}

/* ------------------------------------------------------------------ */
/* One store: every field                                             */
/* ------------------------------------------------------------------ */

static void emit_view(struct emit *e, const char *instance, const struct view *v)
{
	const struct ring_hdr *h = &v->hdr;
	char name[RING_SHM_NAME_MAX], buf[160];
	int sane = hdr_sane(v);
	int64_t age;
	int pidns;

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
	pidns = same_pidns(h);
	emit_str(e, "pidns_same", pidns < 0 ? NULL : pidns ? "yes" : "no");
	emit_u64(e, "first_seq", h->first_seq);
	emit_u64(e, "created_ns", h->created_ns);
	recfmt_time_str(buf, h->created_ns);
	emit_str(e, "created", buf);
	emit_mem(e, "store_name", h->store_name, strnlen(h->store_name, sizeof(h->store_name)));
	emit_u64(e, "max_payload", h->max_payload);
	emit_strf(e, "mode", "0%03o", h->mode & 07777);

	emit_group(e);
	lock_text(h, buf, sizeof(buf));
	emit_str(e, "lock", buf);
	{
		uint32_t word;

		memcpy(&word, h->lock, sizeof(word));
		emit_strf(e, "lock_word", "0x%08x", word);
	}
	emit_u64(e, "head", h->head);
	emit_u64(e, "next_seq", h->next_seq);
	emit_opt_u64(e, "records_written", h->next_seq >= h->first_seq, h->next_seq - h->first_seq);

	emit_group(e);
	emit_u64(e, "tail", h->tail);
	emit_u64(e, "durable_pos", h->durable_pos);
	emit_u64(e, "durable_seq", h->durable_seq);
	emit_opt_u64(e, "unflushed", sane, h->head - h->tail);
	emit_opt_double(e, "fill_pct", sane,
			sane ? 100.0 * (double)(h->head - h->tail) / (double)h->capacity : 0, 1);
	emit_opt_u64(e, "not_durable", sane && h->durable_pos <= h->tail, h->head - h->durable_pos);
	emit_u64(e, "flush_bytes", h->flush_bytes);
	emit_u64(e, "daemon_pid", h->daemon_pid);
	emit_str(e, "daemon_alive", h->daemon_pid ? pid_liveness(h, h->daemon_pid) : NULL);
	if (daemon_state(v))
		emit_str(e, "daemon_state", daemon_state(v));
	else
		emit_strf(e, "daemon_state", "unknown(%u)", h->daemon_state);
	emit_u64(e, "heartbeat_ns", h->heartbeat_ns);
	age = hb_age(v);
	emit_opt_double(e, "heartbeat_age_s", age >= 0, (double)age / 1e9, 3);
	emit_i64(e, "last_error", h->last_error);
	last_error_text(h, buf, sizeof(buf));
	emit_str(e, "last_error_text", h->last_error ? buf : NULL);
	if (h->last_error) {
		recfmt_time_str(buf, h->last_error_ns);
		emit_str(e, "last_error_time", buf);
	} else {
		emit_str(e, "last_error_time", NULL);
	}

	emit_group(e);
	emit_u64(e, "space_gen", h->space_gen);
	emit_u64(e, "durable_gen", h->durable_gen);
	emit_u64(e, "doorbell_gen", h->doorbell_gen);
	emit_u64(e, "flush_req_seq", h->flush_req_seq);

	emit_group(e);
	emit_u64(e, "drops", h->drops);
	emit_u64(e, "full_waits", h->full_waits);
	emit_u64(e, "lock_recoveries", h->lock_recoveries);
	emit_u64(e, "lock_timeouts", h->lock_timeouts);
	emit_u64(e, "doorbells", h->doorbells);
	emit_u64(e, "batches", h->batches);
	emit_u64(e, "syncs", h->syncs);
	emit_u64(e, "damaged_bytes", h->damaged_bytes);
}

/* ------------------------------------------------------------------ */
/* Every store: the table                                             */
/* ------------------------------------------------------------------ */

enum {
	COL_STORE,
	COL_TYPE,
	COL_CAP,
	COL_HEAD,
	COL_TAIL,
	COL_FILL,
	COL_UNFL,
	COL_RECS,
	COL_DUR,
	COL_DROPS,
	COL_LREC,
	COL_DAEMON,
	COL_HB,
	COL_ERR,
	NCOLS
};

static const char *const col_name[NCOLS] = {
	"STORE",   "TYPE",    "CAP",   "HEAD",	  "TAIL",   "FILL", "UNFLUSHED",
	"RECORDS", "DURABLE", "DROPS", "LOCKREC", "DAEMON", "HB",   "LAST-ERROR",
};

/* Left-aligned columns; the others are numbers, right-aligned. */
static const int col_left[NCOLS] = {
	[COL_STORE] = 1,
	[COL_TYPE] = 1,
	[COL_DAEMON] = 1,
	[COL_ERR] = 1,
};

#define CELL 80

static void row_cells(const struct view *v, char cell[NCOLS][CELL])
{
	const struct ring_hdr *h = &v->hdr;
	const char *st;
	int64_t age;

	for (int c = 0; c < NCOLS; c++)
		snprintf(cell[c], CELL, "-");
	snprintf(cell[COL_STORE], CELL, "%s", v->store);
	snprintf(cell[COL_TYPE], CELL, "%s",
		 recfmt_type_name(h->store_type) ? recfmt_type_name(h->store_type) : "?");
	fmt_human(cell[COL_CAP], CELL, h->capacity);
	snprintf(cell[COL_HEAD], CELL, "%" PRIu64, h->head);
	snprintf(cell[COL_TAIL], CELL, "%" PRIu64, h->tail);
	/* capacity is valid and head - tail <= capacity: the ring validated */
	snprintf(cell[COL_FILL], CELL, "%.1f%%",
		 100.0 * (double)(h->head - h->tail) / (double)h->capacity);
	fmt_human(cell[COL_UNFL], CELL, h->head - h->tail);
	if (h->next_seq >= h->first_seq)
		snprintf(cell[COL_RECS], CELL, "%" PRIu64, h->next_seq - h->first_seq);
	snprintf(cell[COL_DUR], CELL, "%" PRIu64, h->durable_seq);
	snprintf(cell[COL_DROPS], CELL, "%" PRIu64, h->drops);
	snprintf(cell[COL_LREC], CELL, "%" PRIu64, h->lock_recoveries);
	st = daemon_state(v);
	if (!st)
		snprintf(cell[COL_DAEMON], CELL, "unknown(%u)", h->daemon_state);
	else if (h->daemon_pid)
		snprintf(cell[COL_DAEMON], CELL, "%s(%u)", st, h->daemon_pid);
	else
		snprintf(cell[COL_DAEMON], CELL, "%s", st);
	age = hb_age(v);
	if (age >= 0)
		snprintf(cell[COL_HB], CELL, "%.1fs", (double)age / 1e9);
	if (h->last_error)
		last_error_text(h, cell[COL_ERR], CELL);
}

static void print_table(const struct view *views, size_t n)
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
		printf(col_left[c] ? "%-*s  " : "%*s  ", width[c], col_name[c]);
	printf("%s\n", col_name[NCOLS - 1]);
	for (size_t i = 0; i < n; i++) {
		const struct view *v = &views[i];

		if (v->err) {
			/* Store names from /dev/shm passed ring_name_valid(): plain text. */
			printf("%-*s  %s: %s %s\n", width[COL_STORE], v->store, status_word(v),
			       errno_name(-v->err), v->why);
			continue;
		}
		for (int c = 0; c < NCOLS - 1; c++)
			printf(col_left[c] ? "%-*s  " : "%*s  ", width[c], cells[i][c]);
		printf("%s\n", cells[i][NCOLS - 1]);
	}
	free(cells);
}

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
	return view_load(instance, store, v, keep);
}

static int dump_all(const char *instance, int json)
{
	struct view *views = NULL;
	char **names = NULL;
	size_t nviews = 0;
	int status = 0;
	int n, ret;

	n = list_stores(instance, &names);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read %s: %s\n", progname, RING_SHM_DIR, strerror(-n));
		return EXIT_DAMAGED;
	}
	if (n > 0) {
		views = calloc((size_t)n, sizeof(*views));
		if (!views) {
			fprintf(stderr, "%s: out of memory\n", progname);
			status = EXIT_DAMAGED;
			goto out_free;
		}
	}
	for (int i = 0; i < n; i++) {
		ret = load_one(instance, names[i], &views[nviews], NULL);
		if (ret == -ENOENT)
			continue; /* removed since we listed it */
		if (views[nviews].err)
			status = EXIT_DAMAGED;
		nviews++;
	}

	if (json) {
		struct emit e = { .f = stdout, .json = 1 };

		putchar('[');
		for (size_t i = 0; i < nviews; i++) {
			fputs(i ? ",\n" : "\n", stdout);
			emit_begin(&e);
			emit_view(&e, instance, &views[i]);
			emit_end(&e);
		}
		fputs(nviews ? "\n]\n" : "]\n", stdout);
	} else if (nviews == 0) {
		printf("no rings for instance %s\n", instance);
	} else {
		print_table(views, nviews);
	}

out_free:
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(views);
	return status;
}

/* ------------------------------------------------------------------ */
/* --records: the oldest unflushed records                            */
/* ------------------------------------------------------------------ */

/*
 * print_record() - one record through recfmt, as be-read prints it (raw
 * payloads shown in text up to DATA_TEXT_MAX bytes).  Returns what
 * recfmt_record() returned: 0, -EBADMSG / -EPROTO for a payload printed
 * with "error" because it did not decode, -ENOMEM when nothing was printed.
 */
static int print_record(struct recfmt *fmt, const struct rec_hdr *rh, const uint8_t *payload)
{
	int ret = recfmt_record(fmt, rh, payload);

	fwrite(fmt->out.p, 1, fmt->out.len, stdout);
	fmt->out.len = 0;
	return ret;
}

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
 * dump_records() - print up to n of the oldest records in [tail, head).
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
 * Returns 0, EXIT_DAMAGED after printing what came before the damage.
 */
static int dump_records(struct ring_map *m, uint64_t n, int json)
{
	uint64_t tail, head, pos, min_seq = 0, printed = 0, skipped = 0, undecodable = 0;
	uint64_t first_bad_seq = 0;
	char first_bad[160] = "";
	struct recfmt fmt;
	uint64_t *recpos = NULL;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int status = 0;
	int ret;

	if (recfmt_init(&fmt, json, progname, 64 << 10) < 0) {
		fprintf(stderr, "%s: out of memory\n", progname);
		return EXIT_DAMAGED;
	}
	fmt.text_data_max = DATA_TEXT_MAX;
	if (load_u64(&m->hdr->tail, &tail) < 0 || load_u64(&m->hdr->head, &head) < 0)
		goto err_fault;
	if (head - tail > m->capacity) {
		fprintf(stderr, "%s: %s: damaged: head - tail = %" PRIu64 " exceeds capacity\n",
			progname, m->store, head - tail);
		status = EXIT_DAMAGED;
		goto out_free;
	}
	if (head == tail) {
		fprintf(stderr, "%s: %s: no unflushed records\n", progname, m->store);
		goto out_free;
	}

	pos = tail;
	while (printed < n && pos < head) {
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
			struct rec_hdr rh;

			memcpy(&rh, buf + off, sizeof(rh));
			/* Without exact positions, a moved tail may have hit any of them. */
			if ((exact ? recpos[i] : pos) < tail2) {
				skipped++;
			} else if (printed < n) {
				int pr = print_record(&fmt, &rh, buf + off + sizeof(rh));

				if (pr == -ENOMEM)
					goto err_nomem;
				if (pr < 0 && !undecodable++) {
					first_bad_seq = rh.seq;
					recfmt_error_text(&fmt, pr, rh.type, buf + off + sizeof(rh),
							  rh.len, first_bad, sizeof(first_bad));
				}
				printed++;
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
					progname, m->store, res.bad_pos, printed);
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

	if (skipped || (printed == 0 && pos > head)) {
		if (printed)
			fprintf(stderr,
				"%s: %s: the daemon flushed %" PRIu64 " records while "
				"they were read; they are left out\n",
				progname, m->store, skipped);
		else
			fprintf(stderr,
				"%s: %s: the daemon flushed every record while they "
				"were read; nothing to show\n",
				progname, m->store);
	}
	if (undecodable) {
		fprintf(stderr,
			"%s: %s: %" PRIu64 " record%s could not be decoded (printed with their "
			"bytes); the first, seq %" PRIu64 ": %s\n",
			progname, m->store, undecodable, undecodable == 1 ? "" : "s", first_bad_seq,
			first_bad);
		status = EXIT_DAMAGED;
	}
	goto out_free;

err_fault:
	fprintf(stderr, "%s: %s: the ring was truncated while being read\n", progname, m->store);
	status = EXIT_DAMAGED;
	goto out_free;
err_nomem:
	fprintf(stderr, "%s: out of memory\n", progname);
	status = EXIT_DAMAGED;
out_free:
	recfmt_free(&fmt);
	free(recpos);
	free(buf);
	return status;
}

static int dump_one(const char *instance, const char *store, int json, uint64_t records)
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
	ret = load_one(instance, store, v, records ? &m : NULL);
	if (ret == -ENOENT) {
		fprintf(stderr, "%s: no store '%s' in instance '%s' (no %s/%s%s.%s)\n", progname,
			store, instance, RING_SHM_DIR, RING_SHM_PREFIX, instance, store);
		status = EXIT_USAGE;
		goto out_free;
	}
	if (v->err)
		status = EXIT_DAMAGED;

	if (records) {
		if (v->err) {
			fprintf(stderr, "%s: %s: %s: %s %s\n", progname, store, status_word(v),
				errno_name(-v->err), v->why);
			goto out_free;
		}
		status = dump_records(&m, records, json);
		ring_unmap(&m);
	} else {
		struct emit e = { .f = stdout, .json = json };

		emit_begin(&e);
		emit_view(&e, instance, v);
		emit_end(&e);
		if (json)
			putchar('\n');
	}
out_free:
	free(v);
	return status;
}

/* ------------------------------------------------------------------ */
/* main                                                               */
/* ------------------------------------------------------------------ */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [-i INSTANCE] [--json] [STORE [--records N]]\n"
		"Show the shared-memory rings of a bufferengine instance, live.\n"
		"\n"
		"Without STORE, one line per ring of the instance; with STORE, every\n"
		"header field and counter of that ring and the state of its lock.\n"
		"\n"
		"  -i, --instance=NAME  the instance (default: $BE_INSTANCE, else \"default\")\n"
		"  -j, --json           JSON: an array for the list, an object for a store,\n"
		"                       JSON Lines for --records\n"
		"  -n, --records=N      print the oldest N records not yet flushed (needs STORE),\n"
		"                       decoded as be-read prints them (raw payloads: base64\n"
		"                       in JSON, at most %d bytes in text)\n"
		"  -h, --help           this text\n"
		"  -V, --version        the version\n"
		"\n"
		"Exit status: 0 fine, 1 bad arguments or no such store,\n"
		"2 a ring is damaged or could not be read (the others are still shown),\n"
		"or a record's payload did not decode.\n",
		progname, DATA_TEXT_MAX);
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

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "instance", required_argument, NULL, 'i' }, { "json", no_argument, NULL, 'j' },
		{ "records", required_argument, NULL, 'n' },  { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	      { NULL, 0, NULL, 0 },
	};
	const char *instance = NULL, *store = NULL, *env;
	uint64_t records = 0;
	int json = 0;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:jn:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			instance = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'n': {
			char *end;

			errno = 0;
			records = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end || errno || records == 0 ||
			    records > RECORDS_MAX)
				bad_usage("--records takes a count from 1 to %" PRIu64 ", not '%s'",
					  RECORDS_MAX, optarg);
			break;
		}
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
		store = argv[optind++];
	if (optind < argc)
		bad_usage("one store at most, '%s' is one too many", argv[optind]);

	if (instance) {
		if (!ring_name_valid(instance))
			bad_usage("'%s' is not a valid instance name ([A-Za-z0-9_-]{1,63})",
				  instance);
	} else {
		env = getenv("BE_INSTANCE");
		if (env && *env && !ring_name_valid(env))
			fprintf(stderr,
				"%s: $BE_INSTANCE '%s' is not a valid instance name, "
				"using the default\n",
				progname, env);
		instance = ring_default_instance();
	}
	if (store && !ring_name_valid(store))
		bad_usage("'%s' is not a valid store name ([A-Za-z0-9_-]{1,63})", store);
	if (records && !store)
		bad_usage("--records needs a STORE");

	ret = guard_install();
	if (ret < 0) {
		fprintf(stderr, "%s: cannot install the SIGBUS guard: %s\n", progname,
			strerror(-ret));
		return EXIT_DAMAGED;
	}
	read_pidns();

	if (store)
		ret = dump_one(instance, store, json, records);
	else
		ret = dump_all(instance, json);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing the output: %s\n", progname, strerror(errno));
		return ret ? ret : EXIT_DAMAGED;
	}
	return ret;
}
