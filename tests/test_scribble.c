/*
 * test_scribble.c - a writer scribbles over its ring while the daemon
 * runs (DESIGN.md, "Trust" and Guarantee 5): it may damage that store's
 * unflushed data and disturb its writers; it must not crash the daemon,
 * make it write garbage to disk, or touch another store.
 *
 *   rounds     One daemon serves NA scribbled stores A0..A{NA-1} and a
 *              store B that a child process writes and flushes all along.
 *              For ~10 s, round after round, this process writes a few
 *              records into one Ai, overwrites one or more of: the ring
 *              header's head, tail or next_seq, or the length, type or seq
 *              of a record in the unflushed area (values: head below the
 *              tail, head - tail above the capacity, misaligned, huge; a
 *              length beyond the head or past the area, a padding marker
 *              with the wrong length, a seq going backwards...), then asks
 *              the daemon to flush and waits for its answer: the store
 *              quarantined (an impossible head: be_open refuses with
 *              -EBADMSG, and so does be_write of an open handle unless the
 *              head went below the tail but not below the handle's cached
 *              tail; shm-dump --json says "quarantined", the log names the
 *              store), or the damage skipped and counted
 *              (damaged_bytes) and the store writing on, or the records
 *              written.  A store that is not quarantined must then take a
 *              good record cleanly (be_flush 0, no damage counted); the
 *              scribbler first undoes an impossible tail it wrote (if the
 *              daemon has not published a new one) and a next_seq that went
 *              backwards, as those would only make the next rounds refuse
 *              or skip everything.  A quarantined store is spent until the
 *              next daemon: when none is left, the daemon is restarted with
 *              fresh rings for the spent ones, so that every round meets a
 *              store the daemon still serves.  Then: the daemon never died
 *              (kill(pid, 0) after every round, no sanitizer or abort text
 *              in its log), every B record is on disk exactly once and in
 *              order, and every batch of every Ai segment passes its CRC
 *              and record checks (tu_read_store() >= 0) with seqs strictly
 *              increasing: the daemon never wrote garbage.
 *   truncate   Rounds of: a fresh ring for A, a writer hammering it, a
 *              child running shm-dump (list, --json, STORE --records) in a
 *              loop, and the ring ftruncate()d to 0 at a random moment.
 *              The daemon and every shm-dump run survive (shm-dump exits 0
 *              or 2, never by a signal), A is quarantined with a log line,
 *              B keeps being flushed.
 *
 * Random values come from a xorshift seeded by $BE_SCRIBBLE_SEED or the
 * clock; the seed is printed in every failure message.  Waits are for a
 * condition, with a deadline (scaled by CK_TIMEOUT_MULTIPLIER).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/testutil.h"

/* Paths here are short; GCC cannot tell through the structs and guesses long. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define NA 12              /* scribbled stores */
#define A_CAP (64u << 10)
#define ROUNDS_SECS 10     /* the rounds test runs this long */
#define TRUNC_SECS 5       /* the truncate test */
#define MIN_ROUNDS 200     /* fewer means the test did not test much */

/* ------------------------------------------------------------------------
 * Helpers.
 */

/* xorshift (13, 7, 17), not tu_rng_next(): a printed seed must replay the same rounds. */
static uint64_t seed;
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void seed_rng(void)
{
	const char *e = getenv("BE_SCRIBBLE_SEED");

	seed = e ? strtoull(e, NULL, 0) : (now_real_ns() ^ ((uint64_t)getpid() << 32));
	if (!seed)
		seed = 1;
	rng_state = seed;
}

/* What a crash or a sanitizer leaves in a log: the first such line, or NULL. */
static const char *crash_text(const char *path)
{
	static const char *const marks[] = { "Sanitizer", "runtime error", "SUMMARY:",
					      "Segmentation", "Aborted", "core dumped",
					      "assertion", "Assertion" };
	static char hit[300];
	FILE *f = fopen(path, "re");
	char line[1024];

	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
			if (strstr(line, marks[i])) {
				snprintf(hit, sizeof(hit), "%s", line);
				fclose(f);
				return hit;
			}
		}
	}
	fclose(f);
	return NULL;
}

/*
 * reap() - pid's raw status within timeout_ms, or -1 (then it is killed and
 * reaped); its pid forgotten.  Here, not tu_wait_exit(): the tests tell a
 * signal from an exit code.
 */
static int reap(pid_t pid, int timeout_ms)
{
	int status, r = tu_reap(pid, timeout_ms, &status);

	tu_forget_pid(pid);
	return r == 0 ? status : -1;
}

/* tu_run_prog() with stdout and stderr into out_path, and its text kept in out_text. */
static char out_text[16384];

static int run_prog(const char *out_path, const char *const argv[])
{
	int st = tu_run_prog((char *const *)argv, NULL, out_path, out_path, -1);

	ck_assert_int_ge(st, 0);
	snprintf(out_text, sizeof(out_text), "%s", tu_text_from(out_path, 0));
	return st;
}

/* ------------------------------------------------------------------------
 * B: a child process writing counted records and flushing them, all along.
 */

#define BREC_MAGIC 0x42524543u /* "BREC" */

struct brec {
	uint32_t magic;
	uint32_t pad;
	uint64_t counter;
};

struct bshared {
	uint32_t stop;          /* set by the test: flush and leave */
	uint32_t pause;         /* the dumper: stop starting shm-dump */
	uint32_t idle;          /* the dumper: not running one */
	uint32_t _pad;
	uint64_t written;       /* B records written (and, at exit, flushed) */
	int32_t err;
	char msg[200];
	/* the dumper's tally */
	uint64_t dumps, dump_exit[4], dump_signals;
	char dump_msg[200];
};

static struct bshared *shared_map(void)
{
	struct bshared *b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(b, MAP_FAILED);
	memset(b, 0, sizeof(*b));
	return b;
}

static pid_t start_b_writer(const char *instance, struct bshared *sh)
{
	pid_t pid = tu_spawn();

	if (pid == 0) {
		struct be_open_opts o = { .instance = instance, .write_timeout_ms = 20000 };
		be_store *s;
		uint64_t n = 0;
		int ret;

		ret = be_open("B", &o, &s);
		if (ret) {
			snprintf(sh->msg, sizeof(sh->msg), "be_open(B): %s", be_strerror(ret));
			_exit(10);
		}
		while (!load_acquire(&sh->stop)) {
			struct brec r = { BREC_MAGIC, 0, n };

			ret = be_write(s, &r, sizeof(r));
			if (ret) {
				snprintf(sh->msg, sizeof(sh->msg), "be_write(B) #%llu: %s",
					 (unsigned long long)n, be_strerror(ret));
				_exit(11);
			}
			n++;
			store_release(&sh->written, n);
			if (n % 32 == 0 && (ret = be_flush(s, 20000))) {
				snprintf(sh->msg, sizeof(sh->msg), "be_flush(B) at %llu: %s",
					 (unsigned long long)n, be_strerror(ret));
				_exit(12);
			}
		}
		ret = be_flush(s, 20000);
		if (ret) {
			snprintf(sh->msg, sizeof(sh->msg), "final be_flush(B): %s", be_strerror(ret));
			_exit(12);
		}
		be_close(s);
		_exit(0);
	}
	tu_note_pid(pid);
	return pid;
}

struct bcheck {
	uint64_t next, last_seq;
	char err[200];
};

static int bcheck_rec(const struct rec_hdr *r, const uint8_t *p, void *arg)
{
	struct bcheck *c = arg;
	struct brec b;

	if (r->len != sizeof(b) || r->type != BE_TYPE_RAW || r->seq <= c->last_seq) {
		snprintf(c->err, sizeof(c->err), "B record %llu: len %u type %u seq %llu after %llu",
			 (unsigned long long)c->next, r->len, r->type, (unsigned long long)r->seq,
			 (unsigned long long)c->last_seq);
		return 1;
	}
	memcpy(&b, p, sizeof(b));
	if (b.magic != BREC_MAGIC || b.counter != c->next) {
		snprintf(c->err, sizeof(c->err), "B record %llu holds %08x/%llu (%s)",
			 (unsigned long long)c->next, b.magic, (unsigned long long)b.counter,
			 b.counter < c->next ? "duplicate" : "lost or garbage");
		return 1;
	}
	c->last_seq = r->seq;
	c->next++;
	return 0;
}

/* Every record of a scribbled store: raw, seqs strictly increasing. */
struct acheck {
	uint64_t last_seq;
	long n;
	char err[200];
};

static int acheck_rec(const struct rec_hdr *r, const uint8_t *p, void *arg)
{
	struct acheck *c = arg;

	(void)p;
	if (r->type != BE_TYPE_RAW || r->flags || r->seq <= c->last_seq) {
		snprintf(c->err, sizeof(c->err), "record %ld: type %u flags %u seq %llu after %llu",
			 c->n, r->type, r->flags, (unsigned long long)r->seq,
			 (unsigned long long)c->last_seq);
		return 1;
	}
	c->last_seq = r->seq;
	c->n++;
	return 0;
}

/* ------------------------------------------------------------------------
 * The daemon, with its log since the last start for messages.
 */

static struct tu_daemon D;
static off_t log_off;

#define LOGFMT "\n(seed %llu)\n--- daemon log %s (since its last start) ---\n%s"
#define LOGARGS (unsigned long long)seed, D.log, tu_log_tail(D.log, log_off)

static void start_daemon(const char *wait_store)
{
	log_off = tu_file_size(D.log) > 0 ? tu_file_size(D.log) : 0;
	ck_assert_msg(tu_daemon_start(&D, wait_store) == 0,
		      "bufferengined did not come up %s" LOGFMT, tu_where_is(D.pid), LOGARGS);
}

static void assert_alive(const char *when)
{
	int status = 0;
	pid_t r = waitpid(D.pid, &status, WNOHANG);

	ck_assert_msg(r == 0 && kill(D.pid, 0) == 0,
		      "%s: the daemon is gone (waitpid %d, status 0x%x)" LOGFMT, when, (int)r, status,
		      LOGARGS);
}

static void stop_daemon(void)
{
	const char *crash;
	int st;

	assert_alive("before SIGTERM");
	st = tu_daemon_stop(&D, SIGTERM);
	ck_assert_msg(st == 0, "bufferengined after SIGTERM: status %d" LOGFMT, st, LOGARGS);
	crash = crash_text(D.log);
	ck_assert_msg(!crash, "the daemon's log shows a crash: %s" LOGFMT, crash, LOGARGS);
}

/* Wait (bounded) until the log since the daemon's start has a line with a and b. */
static int wait_log_line(const char *a, const char *b, int timeout_ms)
{
	uint64_t end = deadline_after_ms(timeout_ms);

	for (;;) {
		if (tu_has_line_with(tu_text_from(D.log, log_off), a, b))
			return 1;
		if (now_mono_ns() > end)
			return 0;
		tu_sleep_us(2000);
	}
}

/* ------------------------------------------------------------------------
 * 1. Scribble rounds.
 */

enum outcome { OUT_QUARANTINED, OUT_DAMAGE, OUT_CLEAN, OUT_N };
static const char *const outcome_name[OUT_N] = { "quarantined", "damage skipped", "clean" };

enum kind {
	K_HEAD_BAD,   /* an impossible head */
	K_HEAD_OK,    /* a possible but wrong head */
	K_TAIL,       /* the daemon's tail, possible or not */
	K_NEXT_SEQ,   /* the writers' next seq */
	K_REC_LEN,    /* a record's length */
	K_REC_TYPE,   /* a record's type, padding markers with the wrong length included */
	K_REC_SEQ,    /* a record's seq */
	K_N
};
static const char *const kind_name[K_N] = { "head (impossible)", "head (possible)", "tail",
					     "next_seq", "record len", "record type",
					     "record seq" };

struct astore {
	char name[8];
	be_store *h;
	struct ring_map m;
	int spent;            /* quarantined: served again only by the next daemon */
};

static struct astore A[NA];

static const char a_stores_fmt[] = "[store A%d]\ntype = raw\ncapacity = 64K\nflush_bytes = 64K\n"
				   "flush_interval = 60s\nsegment_bytes = 64K\n\n";
static const char b_store[] = "[store B]\ntype = raw\ncapacity = 256K\nflush_bytes = 16K\n"
			      "flush_interval = 20ms\n";

static int impossible(uint64_t head, uint64_t tail, uint64_t cap)
{
	return head < tail || head - tail > cap || ((head | tail) & (REC_ALIGN - 1));
}

static void open_a(struct astore *a)
{
	struct be_open_opts o = { .instance = D.instance, .write_timeout_ms = 0 };
	int ret = be_open(a->name, &o, &a->h);

	ck_assert_msg(ret == 0, "be_open(%s): %s" LOGFMT, a->name, be_strerror(ret), LOGARGS);
	ret = ring_open(D.instance, a->name, 0, &a->m);
	ck_assert_msg(ret == 0, "ring_open(%s): %s" LOGFMT, a->name, strerror(-ret), LOGARGS);
	a->spent = 0;
}

static void close_a(struct astore *a)
{
	/* A flush bounded by the write timeout (0): the refusal of a damaged ring is fine. */
	be_close(a->h);
	a->h = NULL;
	ring_unmap(&a->m);
}

static void write_a(struct astore *a, unsigned round, unsigned k, const char *what)
{
	char buf[160];
	size_t len = 8 + rnd_below(120);
	int ret;

	memset(buf, 'a' + (int)(k % 26), len);
	snprintf(buf, len, "r%u k%u", round, k);
	ret = be_write(a->h, buf, len);
	ck_assert_msg(ret == 0, "round %u, %s: be_write (%s): %s" LOGFMT, round, a->name, what,
		      be_strerror(ret), LOGARGS);
}

/* Record positions in [from, to), walked from the headers we just wrote. */
static int record_positions(struct astore *a, uint64_t from, uint64_t to, uint64_t *pos, int max)
{
	int n = 0;

	while (from < to && n < max) {
		struct rec_hdr rh;
		uint64_t off = from & a->m.mask;

		memcpy(&rh, a->m.data + off, REC_PAD_MIN);
		if (rh.type == REC_TYPE_PAD) {
			if (rh.len != a->m.capacity - off)
				break;
			from += rh.len;
			continue;
		}
		if (rh.len > a->m.max_payload)
			break;
		pos[n++] = from;
		from += rec_size(rh.len);
	}
	return n;
}

struct scribble {
	int kinds;             /* bit mask of enum kind */
	char what[400];        /* what was done, for messages */
	uint64_t tail_value;   /* K_TAIL: what was written */
	int head_below;        /* K_HEAD_BAD: below the tail (still aligned) */
};

static void note(struct scribble *s, const char *fmt, unsigned long long v)
{
	size_t n = strlen(s->what);

	snprintf(s->what + n, sizeof(s->what) - n, fmt, v);
}

/* One scribble of kind k over store a, whose published records are [t, h). */
static void scribble_one(struct astore *a, int k, uint64_t t, uint64_t h, struct scribble *s)
{
	struct ring_hdr *hd = a->m.hdr;
	uint64_t cap = a->m.capacity, v = 0, pos[64];
	int n;

	s->kinds |= 1 << k;
	switch (k) {
	case K_HEAD_BAD:
		/* Impossible whatever tail the daemon publishes meanwhile (in [t, h]). */
		switch (rnd_below(5)) {
		case 0:
			if (t >= 8) {
				v = t - 8 * (1 + rnd_below(t / 8 < 64 ? t / 8 : 64));
				s->head_below = 1;
			} else {
				v = h + 2 * cap;
			}
			break;
		case 1: v = h + cap + 8 * (1 + rnd_below(1000)); break;
		case 2: v = h + 1 + rnd_below(7); break;
		case 3: v = UINT64_MAX - 7 - 8 * rnd_below(1000); break;
		default: v = rnd() | 1; break;
		}
		WRITE_ONCE(hd->head, v);
		note(s, "head=%llu ", v);
		break;
	case K_HEAD_OK:
		/* Forward past the real head (stale or zero bytes), or back inside a record. */
		n = record_positions(a, t, h, pos, 64);
		if (n > 0 && rnd_below(2)) {
			uint64_t p = pos[rnd_below((uint64_t)n)];

			v = p + 8; /* inside the record: a record is >= 32 bytes */
		} else {
			v = h + 8 * (1 + rnd_below((t + cap - h) / 8 ? (t + cap - h) / 8 : 1));
			if (v - t > cap)
				v = t + cap;
		}
		WRITE_ONCE(hd->head, v);
		note(s, "head=%llu(possible) ", v);
		break;
	case K_TAIL:
		switch (rnd_below(5)) {
		case 0: v = h + 8 * (1 + rnd_below(100)); break;          /* above head */
		case 1: v = h >= cap + 8 ? h - cap - 8 : h + 16; break;  /* too far back */
		case 2: v = t + 1 + rnd_below(7); break;                 /* misaligned */
		case 3: v = UINT64_MAX; break;
		default: v = t + 8 * rnd_below((h - t) / 8 + 1); break;  /* possible */
		}
		WRITE_ONCE(hd->tail, v);
		s->tail_value = v;
		note(s, "tail=%llu ", v);
		break;
	case K_NEXT_SEQ: {
		uint64_t cur = READ_ONCE(hd->next_seq);

		switch (rnd_below(4)) {
		case 0: v = rnd_below(cur); break;                        /* backwards */
		case 1: v = cur > 5 ? cur - 1 - rnd_below(4) : 0; break;  /* a little back */
		case 2: v = cur + rnd_below(UINT64_C(1) << 40); break;    /* a jump */
		default: v = (UINT64_C(1) << 62) + rnd_below(UINT64_C(1) << 40); break; /* huge */
		}
		WRITE_ONCE(hd->next_seq, v);
		note(s, "next_seq=%llu ", v);
		break;
	}
	default: {
		struct rec_hdr rh;
		uint64_t p, off, room;

		n = record_positions(a, t, h, pos, 64);
		if (n == 0) {
			note(s, "(no record left to scribble)%llu ", 0);
			break;
		}
		p = pos[rnd_below((uint64_t)n)];
		off = p & a->m.mask;
		room = cap - off;
		memcpy(&rh, a->m.data + off, sizeof(rh));
		if (k == K_REC_LEN) {
			switch (rnd_below(6)) {
			case 0: rh.len = (uint32_t)rnd(); break;                       /* huge */
			case 1: rh.len = (uint32_t)(h - p); break;                     /* beyond head */
			case 2: rh.len = (uint32_t)room; break;                        /* past the area */
			case 3: rh.len = rh.len >= 8 ? rh.len - 8 : rh.len + 8; break; /* a bit off */
			case 4: rh.len = 0; break;
			default: rh.len = a->m.max_payload + 1 + (uint32_t)rnd_below(64); break;
			}
			note(s, "len@%llu ", p);
		} else if (k == K_REC_TYPE) {
			switch (rnd_below(5)) {
			case 0: rh.type = REC_TYPE_PAD; break;                   /* padding, wrong len */
			case 1: rh.type = REC_TYPE_PAD; rh.len = (uint32_t)(room - 8); break;
			case 2: rh.type = BE_TYPE_METRIC; break;                 /* another store's */
			case 3: rh.type = 0; break;
			default: rh.type = (uint16_t)rnd(); break;
			}
			note(s, "type@%llu ", p);
		} else {
			switch (rnd_below(4)) {
			case 0: rh.seq = 0; break;
			case 1: rh.seq = rh.seq > 1 ? rh.seq - 1 : 0; break;     /* a duplicate */
			case 2: rh.seq = rh.seq >> 1; break;                      /* backwards */
			default: rh.seq = UINT64_MAX; break;
			}
			/*
			 * Never a valid seq near the top (twice over one record can
			 * give UINT64_MAX - 1): the daemon takes any seq from its
			 * next one up to UINT64_MAX - 1, and after that the store
			 * skips every record, and after a reboot its ring cannot be
			 * made (recovery.c: ((max_seq >> 32) + 1) << 32 wraps to 0).
			 * Known, reported; not what these rounds are about.
			 */
			if (rh.seq > (UINT64_C(1) << 63) && rh.seq != UINT64_MAX)
				rh.seq = UINT64_MAX;
			note(s, "seq@%llu ", p);
		}
		/* One store of 8 or 16 bytes, like a writer's memcpy. */
		memcpy(a->m.data + off, &rh, 16);
		break;
	}
	}
}

struct stats {
	unsigned rounds, restarts, out[OUT_N], kinds[K_N], refused_write, refused_open;
	unsigned accepted_below; /* writes accepted over a head below the tail (cached tail) */
	unsigned dumps;
	uint64_t damaged;
};

/* Wait for the daemon's answer to what was done to a: which outcome. */
static enum outcome await_answer(struct astore *a, unsigned round, const struct scribble *s,
				 uint64_t dmg0, uint64_t batches0, int must_quarantine)
{
	struct ring_hdr *h = a->m.hdr;
	uint64_t end = deadline_after_ms(tu_bound(5000));
	uint64_t req, dur;

	uint64_t asked = 0;

	for (;;) {
		uint64_t head = load_acquire(&h->head), tail = load_acquire(&h->tail);
		uint64_t dmg = READ_ONCE(h->damaged_bytes), b = READ_ONCE(h->batches);

		/*
		 * Ask for a flush of what is pending, like a be_flush does; again
		 * each time the durable seq moves: a batch cut short by damage
		 * answers the request, and the rest waits for the next one.
		 */
		dur = load_acquire(&h->durable_seq);
		if (!asked || dur > asked) {
			req = READ_ONCE(h->flush_req_seq);
			while (req < dur && !cas_relaxed(&h->flush_req_seq, &req, dur))
				;
			ring_doorbell(&a->m);
			asked = dur ? dur : 1;
		}

		if (READ_ONCE(h->daemon_state) == RING_DAEMON_QUARANTINED)
			return OUT_QUARANTINED;
		if (!must_quarantine && tail == head && (dmg > dmg0 || b > batches0))
			return dmg > dmg0 ? OUT_DAMAGE : OUT_CLEAN;
		ck_assert_msg(now_mono_ns() < end,
			      "round %u, %s after %s: no answer from the daemon (%s): head %llu tail "
			      "%llu, damaged %llu (was %llu), batches %llu (was %llu)" LOGFMT,
			      round, a->name, s->what,
			      must_quarantine ? "an impossible head must quarantine the store"
					      : "neither quarantined, nor damage counted, nor flushed",
			      (unsigned long long)head, (unsigned long long)tail,
			      (unsigned long long)dmg, (unsigned long long)dmg0, (unsigned long long)b,
			      (unsigned long long)batches0, LOGARGS);
		assert_alive("waiting for an answer");
		tu_sleep_us(100);
	}
}

/* shm-dump --json on a quarantined store: it says so, and exits 0 or 2. */
static void assert_dump_quarantined(struct astore *a, unsigned round, int head_bad,
				    struct stats *st)
{
	const char *argv[] = { BE_BIN_DIR "/shm-dump", "-i", D.instance, "--json", a->name, NULL };
	char out[400];
	int ret;

	snprintf(out, sizeof(out), "%s/dump.out", D.dir);
	ret = run_prog(out, argv);
	st->dumps++;
	ck_assert_msg(ret == 0 || ret == 2, "round %u: shm-dump --json %s: exit %d\n%.1000s" LOGFMT,
		      round, a->name, ret, out_text, LOGARGS);
	/* A head that only the daemon's tail makes impossible leaves the header sane. */
	ck_assert_msg(strstr(out_text, "\"daemon_state\":\"quarantined\"") &&
			      strstr(out_text, "\"last_error\":-") &&
			      (!head_bad || strstr(out_text, "\"status\":\"bad\"")),
		      "round %u: shm-dump --json %s does not show the quarantine, the error (and, "
		      "for an impossible head, the bad ring):\n%.1000s"
		      LOGFMT, round, a->name, out_text, LOGARGS);
}

static void one_round(struct astore *a, unsigned round, struct stats *st)
{
	struct ring_hdr *hd = a->m.hdr;
	struct scribble s = { 0 };
	uint64_t t, h, seq0, dmg0, b0, hn, tn;
	unsigned n = 1 + (unsigned)rnd_below(6), nk;
	enum outcome out;
	int head_bad, ret;

	for (unsigned k = 0; k < n; k++)
		write_a(a, round, k, "before the scribble");
	t = load_acquire(&hd->tail);
	h = load_acquire(&hd->head);
	seq0 = READ_ONCE(hd->next_seq);
	dmg0 = READ_ONCE(hd->damaged_bytes);
	b0 = READ_ONCE(hd->batches);

	/*
	 * One scribble, sometimes two or three at once.  An impossible head
	 * (one kind in ten: it ends the store's life) comes last and without
	 * a tail or another head, so that it stays impossible to every reader.
	 */
	nk = rnd_below(8) == 0 ? 2 + (unsigned)rnd_below(2) : 1;
	{
		int kinds[3], bad = 0;

		for (unsigned i = 0; i < nk; i++) {
			kinds[i] = (int)rnd_below(K_N);
			if (kinds[i] == K_HEAD_BAD && rnd_below(3))
				kinds[i] = K_REC_LEN + (int)rnd_below(3);
			bad |= kinds[i] == K_HEAD_BAD;
		}
		for (unsigned i = 0; i < nk; i++) {
			if (bad && (kinds[i] == K_HEAD_BAD || kinds[i] == K_HEAD_OK ||
				    kinds[i] == K_TAIL))
				continue;
			st->kinds[kinds[i]]++;
			scribble_one(a, kinds[i], t, h, &s);
		}
		if (bad) {
			st->kinds[K_HEAD_BAD]++;
			scribble_one(a, K_HEAD_BAD, t, h, &s);
		}
	}

	/*
	 * Writers: an impossible head is refused by a new writer, and by one
	 * already open, except for a head below the tail: that one checks
	 * against its cached tail (client/be.c), which may be older than the
	 * head; the daemon quarantines the store all the same.
	 */
	hn = load_acquire(&hd->head);
	tn = load_acquire(&hd->tail);
	head_bad = (s.kinds & (1 << K_HEAD_BAD)) != 0;
	if (head_bad) {
		be_store *h2 = NULL;
		struct be_open_opts o = { .instance = D.instance, .write_timeout_ms = 0 };

		ret = be_open(a->name, &o, &h2);
		if (ret == 0)
			be_close(h2);
		ck_assert_msg(ret == -EBADMSG, "round %u, %s after %s: be_open returned %d (%s), "
			      "expected -EBADMSG" LOGFMT, round, a->name, s.what, ret,
			      be_strerror(ret), LOGARGS);
		st->refused_open++;
		if (!s.head_below) {
			ret = be_write(a->h, "refused", 7);
			ck_assert_msg(ret == -EBADMSG,
				      "round %u, %s after %s: be_write returned %d (%s), expected "
				      "-EBADMSG" LOGFMT, round, a->name, s.what, ret, be_strerror(ret),
				      LOGARGS);
			ck_assert_uint_eq(load_acquire(&hd->head), hn);
			st->refused_write++;
		}
	} else if (impossible(hn, tn, a->m.capacity)) {
		/* Only the tail is impossible: a new writer is refused... */
		be_store *h2 = NULL;
		struct be_open_opts o = { .instance = D.instance, .write_timeout_ms = 0 };

		ret = be_open(a->name, &o, &h2);
		if (ret == 0)
			be_close(h2);
		ck_assert_msg(ret == -EBADMSG || load_acquire(&hd->tail) != tn,
			      "round %u, %s after %s: be_open returned %d (%s) with head %llu tail "
			      "%llu" LOGFMT, round, a->name, s.what, ret, be_strerror(ret),
			      (unsigned long long)hn, (unsigned long long)tn, LOGARGS);
		st->refused_open += ret == -EBADMSG;
		/* ...and the scribbler puts back what it overwrote, if the daemon has not. */
		cas_relaxed(&hd->tail, &tn, t);
	}

	if (!head_bad) {
		/* Something for the daemon to look at, whatever the scribble left. */
		ret = be_write(a->h, "probe", 5);
		ck_assert_msg(ret == 0 || ret == -ETIMEDOUT || ret == -EBADMSG,
			      "round %u, %s after %s: be_write(probe): %s" LOGFMT, round, a->name,
			      s.what, be_strerror(ret), LOGARGS);
		if (ret == -EBADMSG) {
			/* Only when the tail it reads, or the next seq, is impossible. */
			uint64_t ns = READ_ONCE(hd->next_seq), first = READ_ONCE(hd->first_seq);

			tn = load_acquire(&hd->tail);
			hn = load_acquire(&hd->head);
			ck_assert_msg(impossible(hn, tn, a->m.capacity) || (s.kinds & (1 << K_TAIL)) ||
					      ns < first || ns - first >= RING_SEQ_SPAN,
				      "round %u, %s after %s: be_write refused a sane header: head "
				      "%llu tail %llu" LOGFMT, round, a->name, s.what,
				      (unsigned long long)hn, (unsigned long long)tn, LOGARGS);
			st->refused_write++;
		}
	}

	out = await_answer(a, round, &s, dmg0, b0, head_bad);
	st->out[out]++;
	st->damaged += READ_ONCE(hd->damaged_bytes) - dmg0;
	if (out == OUT_QUARANTINED) {
		char tag[16];
		int first = 1;

		for (int i = 0; i < NA; i++)
			first &= !A[i].spent;
		a->spent = 1;
		snprintf(tag, sizeof(tag), "[%s]", a->name);
		ck_assert_msg(wait_log_line(tag, "store stopped", tu_bound(5000)),
			      "round %u, %s after %s: quarantined, but no log line names it" LOGFMT,
			      round, a->name, s.what, LOGARGS);
		ck_assert_msg(READ_ONCE(hd->last_error) != 0,
			      "round %u, %s quarantined with last_error 0" LOGFMT, round, a->name,
			      LOGARGS);
		/* shm-dump once a daemon (it costs an exec). */
		if (first)
			assert_dump_quarantined(a, round, head_bad, st);
		/* A writer whose cached tail is older than a head below the tail. */
		if (s.head_below) {
			ret = be_write(a->h, "after", 5);
			ck_assert_msg(ret == -EBADMSG || ret == 0,
				      "round %u, %s after %s: be_write: %s" LOGFMT, round, a->name,
				      s.what, be_strerror(ret), LOGARGS);
			st->refused_write += ret == -EBADMSG;
			st->accepted_below += ret == 0;
		}
		return;
	}

	/*
	 * Served on: the scribbler undoes a seq that went backwards (or
	 * below what the daemon has written), and a good record goes through.
	 */
	{
		uint64_t ns = READ_ONCE(hd->next_seq), dur = load_acquire(&hd->durable_seq);
		uint64_t want = seq0 > dur ? seq0 : dur, first = READ_ONCE(hd->first_seq);

		/* A next_seq outside the ring's span is refused by writers, not written. */
		if (ns < first || ns - first >= RING_SEQ_SPAN) {
			ret = be_write(a->h, "x", 1);
			ck_assert_msg(ret == -EBADMSG, "round %u, %s after %s: be_write with "
				      "next_seq %llu: %s" LOGFMT, round, a->name, s.what,
				      (unsigned long long)ns, be_strerror(ret), LOGARGS);
			WRITE_ONCE(hd->next_seq, want);
		} else if (ns < want) {
			WRITE_ONCE(hd->next_seq, want);
		}
	}
	dmg0 = READ_ONCE(hd->damaged_bytes);
	write_a(a, round, 99, "after the answer");
	ret = be_flush(a->h, tu_bound(5000));
	ck_assert_msg(ret == 0, "round %u, %s after %s (%s): be_flush: %s" LOGFMT, round, a->name,
		      s.what, outcome_name[out], be_strerror(ret), LOGARGS);
	ck_assert_msg(READ_ONCE(hd->damaged_bytes) == dmg0 &&
			      load_acquire(&hd->tail) == load_acquire(&hd->head),
		      "round %u, %s after %s (%s): a good record was not written cleanly: damaged "
		      "%llu (was %llu), head %llu tail %llu" LOGFMT, round, a->name, s.what,
		      outcome_name[out], (unsigned long long)READ_ONCE(hd->damaged_bytes),
		      (unsigned long long)dmg0, (unsigned long long)load_acquire(&hd->head),
		      (unsigned long long)load_acquire(&hd->tail), LOGARGS);
}

/* A new daemon: fresh rings for the spent stores, the others as they are. */
static void restart(struct stats *st)
{
	stop_daemon();
	for (int i = 0; i < NA; i++) {
		if (!A[i].spent)
			continue;
		close_a(&A[i]);
		ck_assert_int_eq(ring_unlink(D.instance, A[i].name), 0);
	}
	start_daemon("B");
	for (int i = 0; i < NA; i++)
		if (!A[i].h)
			open_a(&A[i]);
	st->restarts++;
}

START_TEST(test_rounds)
{
	char stores[4096];
	size_t off = 0;
	struct bshared *sh = shared_map();
	struct stats st = { 0 };
	uint64_t end;
	pid_t bw;
	int status;
	unsigned next = 0;

	seed_rng();
	for (int i = 0; i < NA; i++)
		off += (size_t)snprintf(stores + off, sizeof(stores) - off, a_stores_fmt, i);
	snprintf(stores + off, sizeof(stores) - off, "%s", b_store);
	tu_daemon_config(&D, "shutdown_flush_timeout = 10s\nmax_workers = 4\n", stores);
	start_daemon("B");
	for (int i = 0; i < NA; i++) {
		snprintf(A[i].name, sizeof(A[i].name), "A%d", i);
		open_a(&A[i]);
	}
	bw = start_b_writer(D.instance, sh);

	end = now_mono_ns() + ROUNDS_SECS * NSEC_PER_SEC;
	while (now_mono_ns() < end) {
		struct astore *a = NULL;

		for (int k = 0; k < NA && !a; k++, next++)
			if (!A[next % NA].spent)
				a = &A[next % NA];
		if (!a) {
			restart(&st);
			continue;
		}
		next++;
		one_round(a, st.rounds, &st);
		st.rounds++;
		assert_alive("after a round");
		ck_assert_msg(waitpid(bw, &status, WNOHANG) == 0,
			      "the B writer ended (status 0x%x): %s" LOGFMT, status, sh->msg, LOGARGS);
	}

	/* B: stop its writer, which flushes; every record once, in order. */
	store_release(&sh->stop, 1);
	status = reap(bw, tu_bound(30000));
	ck_assert_msg(status == 0, "the B writer: status 0x%x: %s" LOGFMT, status, sh->msg, LOGARGS);
	for (int i = 0; i < NA; i++)
		close_a(&A[i]);
	stop_daemon();
	{
		struct bcheck c = { 0 };
		long got = tu_read_store(D.data_dir, "B", bcheck_rec, &c);

		ck_assert_msg(c.err[0] == 0, "B: %s" LOGFMT, c.err, LOGARGS);
		ck_assert_msg(got == (long)sh->written && got > 0,
			      "B: %ld records read back (-1: damage), %llu written" LOGFMT, got,
			      (unsigned long long)sh->written, LOGARGS);
	}
	/* The scribbled stores: no garbage on disk, seqs strictly increasing. */
	for (int i = 0; i < NA; i++) {
		struct acheck c = { 0 };
		long got = tu_read_store(D.data_dir, A[i].name, acheck_rec, &c);

		ck_assert_msg(got >= 0 && c.err[0] == 0,
			      "%s: tu_read_store %ld (-1: a batch fails its checks): %s" LOGFMT,
			      A[i].name, got, c.err, LOGARGS);
	}
	ck_assert_msg(st.rounds >= MIN_ROUNDS, "only %u rounds in %d s" LOGFMT, st.rounds,
		      ROUNDS_SECS, LOGARGS);
	ck_assert_msg(st.out[OUT_QUARANTINED] > 0 && st.out[OUT_DAMAGE] > 0,
		      "%u rounds: %u quarantined, %u damage skipped, %u clean: a kind of answer "
		      "never came" LOGFMT, st.rounds, st.out[OUT_QUARANTINED], st.out[OUT_DAMAGE],
		      st.out[OUT_CLEAN], LOGARGS);
	if (getenv("BE_VERBOSE")) {
		printf("scribble rounds (seed %llu): %u rounds, %u daemons; answers: %u quarantined, "
		       "%u damage skipped (%llu bytes), %u clean; writers refused: %u writes, %u "
		       "opens, %u writes accepted over a head below the tail; %u shm-dump runs; "
		       "B: %llu records\n  kinds:",
		       (unsigned long long)seed, st.rounds, st.restarts + 1,
		       st.out[OUT_QUARANTINED], st.out[OUT_DAMAGE], (unsigned long long)st.damaged,
		       st.out[OUT_CLEAN], st.refused_write, st.refused_open, st.accepted_below,
		       st.dumps,
		       (unsigned long long)sh->written);
		for (int k = 0; k < K_N; k++)
			printf(" %s %u%s", kind_name[k], st.kinds[k], k + 1 < K_N ? "," : "\n");
	}
	munmap(sh, sizeof(*sh));
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. The ring truncated to nothing while shm-dump reads it in a loop.
 */

static pid_t start_dumper(const char *instance, const char *dir, struct bshared *sh)
{
	pid_t pid = tu_spawn();

	if (pid == 0) {
		const char *sd = BE_BIN_DIR "/shm-dump";
		const char *const variants[][8] = {
			{ sd, "-i", instance, NULL },
			{ sd, "-i", instance, "--json", NULL },
			{ sd, "-i", instance, "A", NULL },
			{ sd, "-i", instance, "--json", "A", NULL },
			{ sd, "-i", instance, "A", "--records", "64", NULL },
			{ sd, "-i", instance, "--json", "A", "--records", "64", NULL },
		};
		char out[400];
		unsigned v = 0;

		snprintf(out, sizeof(out), "%s/dumper.out", dir);
		while (!load_acquire(&sh->stop)) {
			const char *const *argv = variants[v++ % 6];
			int status;
			pid_t c;

			if (load_acquire(&sh->pause)) {
				store_release(&sh->idle, 1);
				tu_sleep_us(500);
				continue;
			}
			store_release(&sh->idle, 0);
			if (load_acquire(&sh->pause))
				continue;
			c = fork();
			if (c < 0)
				_exit(20);
			if (c == 0) {
				int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

				if (fd >= 0) {
					dup2(fd, 1);
					dup2(fd, 2);
				}
				execv(argv[0], (char *const *)argv);
				_exit(127);
			}
			if (waitpid(c, &status, 0) != c)
				_exit(21);
			sh->dumps++;
			if (WIFSIGNALED(status)) {
				sh->dump_signals++;
				snprintf(sh->dump_msg, sizeof(sh->dump_msg),
					 "shm-dump %s %s %s: signal %d", argv[3],
					 argv[4] ? argv[4] : "", argv[4] && argv[5] ? argv[5] : "",
					 WTERMSIG(status));
			} else {
				sh->dump_exit[WEXITSTATUS(status) < 3 ? WEXITSTATUS(status) : 3]++;
				if (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 2)
					snprintf(sh->dump_msg, sizeof(sh->dump_msg),
						 "shm-dump %s %s: exit %d", argv[3],
						 argv[4] ? argv[4] : "", WEXITSTATUS(status));
			}
		}
		_exit(0);
	}
	tu_note_pid(pid);
	return pid;
}

/* A writer hammering A until the ring goes from under it (SIGBUS) or it is told to stop. */
static pid_t start_a_hammer(const char *instance)
{
	pid_t pid = tu_spawn();

	if (pid == 0) {
		struct be_open_opts o = { .instance = instance, .write_timeout_ms = 0 };
		be_store *s;
		char buf[200];

		/* Its death by SIGBUS is expected: no sanitizer report of it in the test's output. */
		{
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, 2);
		}
		/* Refused when the truncation came first. */
		if (be_open("A", &o, &s))
			_exit(10);
		memset(buf, 'h', sizeof(buf));
		for (uint64_t i = 0;; i++) {
			int ret = be_write(s, buf, 16 + i % 180);

			if (ret == -EBADMSG)
				_exit(0);
			if (ret && ret != -ETIMEDOUT && ret != -ENOBUFS)
				_exit(11);
			if (ret)
				tu_sleep_us(200);
		}
	}
	tu_note_pid(pid);
	return pid;
}

START_TEST(test_truncate)
{
	struct bshared *sh = shared_map(), *dsh = shared_map();
	char ring_path[256], out[400];
	uint64_t end;
	unsigned rounds = 0, wsig = 0;
	pid_t bw, dumper;
	int status;

	seed_rng();
	tu_daemon_config(&D, "shutdown_flush_timeout = 10s\n",
			 "[store A]\ntype = raw\ncapacity = 64K\nflush_bytes = 16K\n"
			 "flush_interval = 5ms\non_full = drop\n\n"
			 "[store B]\ntype = raw\ncapacity = 256K\nflush_bytes = 16K\n"
			 "flush_interval = 20ms\n");
	snprintf(ring_path, sizeof(ring_path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s.A", D.instance);
	snprintf(out, sizeof(out), "%s/dump.out", D.dir);
	start_daemon("B");
	bw = start_b_writer(D.instance, sh);
	dumper = start_dumper(D.instance, D.dir, dsh);

	end = now_mono_ns() + TRUNC_SECS * NSEC_PER_SEC;
	while (now_mono_ns() < end || rounds < 5) {
		pid_t hammer = start_a_hammer(D.instance);
		uint64_t b0, bend;
		struct ring_map mb;

		/* Somewhere while the daemon and shm-dump read A and the writer writes. */
		tu_sleep_us(1000 + (unsigned)rnd_below(20000));
		ck_assert_int_eq(truncate(ring_path, 0), 0);
		ck_assert_msg(wait_log_line("[A]", "truncated", tu_bound(10000)),
			      "round %u: the daemon did not report A truncated" LOGFMT, rounds,
			      LOGARGS);
		assert_alive("after the truncation");

		/* B goes on: its durable seq moves. */
		ck_assert_int_eq(ring_open(D.instance, "B", RING_OPEN_RDONLY, &mb), 0);
		b0 = load_acquire(&mb.hdr->durable_seq);
		bend = deadline_after_ms(tu_bound(10000));
		while (load_acquire(&mb.hdr->durable_seq) == b0) {
			ck_assert_msg(now_mono_ns() < bend, "round %u: B's durable seq stuck at %llu "
				      "after A's truncation" LOGFMT, rounds, (unsigned long long)b0,
				      LOGARGS);
			tu_sleep_us(1000);
		}
		ring_unmap(&mb);

		/* shm-dump on the truncated ring: a clean error. */
		{
			const char *argv[] = { BE_BIN_DIR "/shm-dump", "-i", D.instance, "--json",
					       "A", NULL };
			int ret = run_prog(out, argv);

			ck_assert_msg(ret == 2 && strstr(out_text, "\"status\":\"bad\""),
				      "round %u: shm-dump --json A on a truncated ring: exit %d\n%.1000s"
				      LOGFMT, rounds, ret, out_text, LOGARGS);
		}

		/*
		 * The writer died of the truncation (SIGBUS, documented in
		 * shm/guard.h; exit 1 when a sanitizer catches it), or was
		 * refused (10), or is still writing (killed here); never a
		 * be_write error other than the ones a full or damaged ring gives.
		 */
		kill(hammer, SIGKILL);
		status = reap(hammer, tu_bound(5000));
		ck_assert_msg(status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 11),
			      "round %u: the A writer ended with status 0x%x" LOGFMT, rounds, status,
			      LOGARGS);
		wsig += (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
			(WIFEXITED(status) && WEXITSTATUS(status) == 1);

		/* Next round: a fresh ring from a new daemon, shm-dump paused meanwhile. */
		store_release(&dsh->pause, 1);
		{
			uint64_t pend = deadline_after_ms(tu_bound(10000));

			while (!load_acquire(&dsh->idle)) {
				ck_assert_msg(now_mono_ns() < pend, "the dumper does not pause");
				tu_sleep_us(500);
			}
		}
		ck_assert_msg(dsh->dump_signals == 0, "round %u: %s (%llu of %llu runs by a signal)"
			      LOGFMT, rounds, dsh->dump_msg, (unsigned long long)dsh->dump_signals,
			      (unsigned long long)dsh->dumps, LOGARGS);
		ck_assert_msg(dsh->dump_exit[1] == 0 && dsh->dump_exit[3] == 0,
			      "round %u: %s" LOGFMT, rounds, dsh->dump_msg, LOGARGS);
		stop_daemon();
		ck_assert_int_eq(ring_unlink(D.instance, "A"), 0);
		start_daemon("A");
		store_release(&dsh->pause, 0);
		rounds++;
	}

	store_release(&dsh->stop, 1);
	ck_assert_int_eq(reap(dumper, tu_bound(10000)), 0);
	store_release(&sh->stop, 1);
	status = reap(bw, tu_bound(30000));
	ck_assert_msg(status == 0, "the B writer: status 0x%x: %s" LOGFMT, status, sh->msg, LOGARGS);
	stop_daemon();
	{
		struct bcheck c = { 0 };
		struct acheck ac = { 0 };
		long got = tu_read_store(D.data_dir, "B", bcheck_rec, &c);

		ck_assert_msg(c.err[0] == 0 && got == (long)sh->written,
			      "B: %ld records read back, %llu written: %s" LOGFMT, got,
			      (unsigned long long)sh->written, c.err, LOGARGS);
		got = tu_read_store(D.data_dir, "A", acheck_rec, &ac);
		ck_assert_msg(got >= 0 && ac.err[0] == 0, "A: tu_read_store %ld: %s" LOGFMT, got,
			      ac.err, LOGARGS);
	}
	if (getenv("BE_VERBOSE"))
		printf("scribble truncate (seed %llu): %u rounds, %llu shm-dump runs (exit 0: %llu, "
		       "2: %llu), A writers killed by SIGBUS: %u, B: %llu records\n",
		       (unsigned long long)seed, rounds, (unsigned long long)dsh->dumps,
		       (unsigned long long)dsh->dump_exit[0], (unsigned long long)dsh->dump_exit[2],
		       wsig, (unsigned long long)sh->written);
	munmap(sh, sizeof(*sh));
	munmap(dsh, sizeof(*dsh));
}
END_TEST

Suite *scribble_suite(void);

Suite *scribble_suite(void)
{
	Suite *s = suite_create("scribble");
	TCase *tc;

	tc = tcase_create("rounds");
	tcase_add_test(tc, test_rounds);
	tcase_set_timeout(tc, ROUNDS_SECS + 20);
	suite_add_tcase(s, tc);

	tc = tcase_create("truncate");
	tcase_add_test(tc, test_truncate);
	tcase_set_timeout(tc, TRUNC_SECS + 20);
	suite_add_tcase(s, tc);
	return s;
}
