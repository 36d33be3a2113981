/*
 * test_torn.c - torn and damaged segment files met at daemon start
 * (DESIGN.md, "Recovery at start"; Guarantees 1 and 2).
 *
 * Every test builds one store with a real bufferengined: segment 1 holds
 * one large batch, segment 2 (the newest) a few small ones, each batch made
 * by one be_flush.  The daemon is stopped with SIGTERM (every record
 * durable, the ring stays), and the segment files and the ring object are
 * copied: that pristine state is put back before each damage, so that every
 * case starts from the same disk and the same ring.
 *
 *   test_last_batch
 *       every byte offset of the last batch of the newest segment: the file
 *       cut there (variant 0), or everything from there to the end turned to
 *       garbage (variant 1).  Recovery must cut the file back to the end of
 *       the previous batch, keep exactly the batches before, never move the
 *       ring's tail backward, and say that acknowledged records were lost.
 *       Every offset goes through the daemon's recovery code run in this
 *       process (store_recover() from libserver, stderr captured); every 7th
 *       offset, the first and the last also through a real daemon restart,
 *       which must then go on writing (a new record lands, seq above every
 *       old one).
 *   test_corrupt_middle
 *       a flipped bit in an earlier batch (valid batches follow): the file is
 *       kept as it is, the damage is reported with its offset, no later batch
 *       is written twice, be-read says where and exits 2.  (test_errors
 *       covers be-read alone on such a file; here the daemon ran over it.)
 *   test_set_aside, test_crash_in_rotation
 *       the newest segment holds a file header only, nothing, a torn first
 *       batch, garbage, or a garbage header (a crash during rotation); and a
 *       real crash there (the hooks build, BE_CRASH_AT=seg_created:2).  It is
 *       removed or renamed .torn, the store goes on in the previous segment,
 *       nothing is lost.
 *
 * Failure messages carry the daemon's log (or the captured log of the
 * in-process recovery).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/config.h"
#include "server/daemon.h"
#include "server/segment.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/ring.h"
#include "tests/testutil.h"

/* Paths here are short; GCC cannot tell through the structs and guesses long. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#ifndef BE_TEST_DIR
#define BE_TEST_DIR "build/tests"
#endif

/* ------------------------------------------------------------------------
 * Small helpers.
 */

/* A whole file into a new buffer. */
static uint8_t *slurp(const char *path, size_t *len)
{
	off_t size = tu_file_size(path);
	uint8_t *buf;
	int fd;

	ck_assert_msg(size >= 0, "%s: %s", path, strerror(errno));
	buf = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(buf);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), (ssize_t)size);
	close(fd);
	*len = (size_t)size;
	return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
	close(fd);
}

/* Deterministic garbage (xorshift, not tu_rng_next(): same bytes), so that a failure repeats. */
static uint64_t rng_state;

static uint8_t rng_byte(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint8_t)(rng_state >> 24);
}

/*
 * run_prog() - tu_run_prog() with stdout and stderr into files under dir,
 * their text kept in out_text and err_text.  Exit status, or 128 + the signal.
 */
static char out_text[16384], err_text[8192];

static int run_prog(const char *dir, const char *const argv[])
{
	char out_path[512], err_path[512];
	int st;

	snprintf(out_path, sizeof(out_path), "%s/prog.out", dir);
	snprintf(err_path, sizeof(err_path), "%s/prog.err", dir);
	st = tu_run_prog((char *const *)argv, NULL, out_path, err_path, -1);
	ck_assert_int_ge(st, 0);
	snprintf(out_text, sizeof(out_text), "%s", tu_text_from(out_path, 0));
	snprintf(err_text, sizeof(err_text), "%s", tu_text_from(err_path, 0));
	return st;
}

/* ------------------------------------------------------------------------
 * The store under test.
 */

#define NSMALL 4 /* small batches in the newest segment */
#define BIG_LEN 40000u

#define STORE_CONF                                                                    \
	"[store s]\ntype = raw\ncapacity = 256K\nflush_bytes = 256K\nflush_interval = 60s\n" \
	"segment_bytes = 64K\n"

struct bref {
	uint64_t off, len;      /* in the file: header + records */
	uint64_t first_seq, last_seq;
	uint32_t count;
};

struct fx {
	struct tu_daemon d;
	char dir[400];                   /* <data_dir>/s */
	char old_name[SEG_NAME_LEN + 1]; /* segment 1 */
	char new_name[SEG_NAME_LEN + 1]; /* segment 2, the newest */
	char new_path[700];
	char ring_path[256];
	uint8_t *pristine;               /* the newest segment as the daemon left it */
	size_t pristine_len;
	uint8_t *ring;                   /* the ring object as the daemon left it */
	size_t ring_len;
	struct bref b[16];               /* the batches of the newest segment */
	int nb;
	uint64_t seqs[64];               /* every record of the store, in order */
	long nseqs;
	long nlast;                      /* records in the newest segment's last batch */
	char keep[16][64];               /* what the store directory held, pristine */
	int nkeep;
	uint64_t tail0, durable_seq0, next_seq0;
	off_t log_off;                   /* the log's size at the last daemon start */
};

static struct fx F;

#define LOGFMT "\n--- daemon log %s (since its last start) ---\n%s"
#define LOGARGS(f) (f)->d.log, tu_log_tail((f)->d.log, (f)->log_off)

struct peek {
	uint64_t head, tail, next_seq, durable_seq, durable_pos;
	uint32_t daemon_state;
};

static void peek(struct fx *f, struct peek *p)
{
	struct ring_map m;
	int ret = ring_open(f->d.instance, "s", RING_OPEN_RDONLY, &m);

	ck_assert_msg(ret == 0, "ring_open: %s", strerror(-ret));
	p->tail = load_acquire(&m.hdr->tail);
	p->head = load_acquire(&m.hdr->head);
	p->next_seq = READ_ONCE(m.hdr->next_seq);
	p->durable_seq = load_acquire(&m.hdr->durable_seq);
	p->durable_pos = load_acquire(&m.hdr->durable_pos);
	p->daemon_state = READ_ONCE(m.hdr->daemon_state);
	ring_unmap(&m);
}

static void start_daemon(struct fx *f)
{
	f->log_off = tu_file_size(f->d.log) > 0 ? tu_file_size(f->d.log) : 0;
	ck_assert_msg(tu_daemon_start(&f->d, "s") == 0, "bufferengined did not come up %s" LOGFMT,
		      tu_where_is(f->d.pid), LOGARGS(f));
}

static void stop_daemon(struct fx *f)
{
	int st = tu_daemon_stop(&f->d, SIGTERM);

	ck_assert_msg(st == 0, "bufferengined after SIGTERM: status %d" LOGFMT, st, LOGARGS(f));
}

static be_store *open_s(struct fx *f)
{
	struct be_open_opts o = { .instance = f->d.instance, .write_timeout_ms = tu_bound(2000) };
	be_store *s = NULL;
	int ret = be_open("s", &o, &s);

	ck_assert_msg(ret == 0, "be_open: %s" LOGFMT, be_strerror(ret), LOGARGS(f));
	return s;
}

/* Record payloads: "rec <tag> " then letters; the tag is unique per record. */
static size_t payload(unsigned tag, size_t len, char *buf)
{
	int n = snprintf(buf, len + 1, "rec %u ", tag);

	for (size_t i = (size_t)n; i < len; i++)
		buf[i] = (char)('a' + (tag + i) % 26);
	return len;
}

static void write_rec(struct fx *f, be_store *s, unsigned tag, size_t len)
{
	static char buf[BIG_LEN + 64];
	int ret;

	payload(tag, len, buf);
	ret = be_write(s, buf, len);
	ck_assert_msg(ret == 0, "be_write #%u: %s" LOGFMT, tag, be_strerror(ret), LOGARGS(f));
}

static void flush_s(struct fx *f, be_store *s)
{
	int ret = be_flush(s, tu_bound(5000));

	ck_assert_msg(ret == 0, "be_flush: %s" LOGFMT, be_strerror(ret), LOGARGS(f));
}

/* The seqs of every record of the store, in order; -1 on damage (tu_read_store). */
struct seqs {
	uint64_t v[128];
	long n;
};

static int seq_rec(const struct rec_hdr *r, const uint8_t *p, void *arg)
{
	struct seqs *s = arg;

	(void)p;
	if (s->n < (long)(sizeof(s->v) / sizeof(s->v[0])))
		s->v[s->n] = r->seq;
	s->n++;
	return 0;
}

static long read_seqs(struct fx *f, struct seqs *s)
{
	s->n = 0;
	return tu_read_store(f->d.data_dir, "s", seq_rec, s);
}

/* The seqs of the valid batches of every segment, damage or not. */
static int seq_batch(const struct seg_batch_ref *b, void *arg)
{
	uint64_t off = 0;

	while (off < b->hdr->length) {
		const struct rec_hdr *r = (const struct rec_hdr *)(b->records + off);

		seq_rec(r, NULL, arg);
		off += rec_size(r->len);
	}
	return 0;
}

static long read_valid_seqs(struct fx *f, struct seqs *s, uint64_t *corrupt)
{
	uint64_t *list = NULL;
	int dirfd, n;

	s->n = 0;
	*corrupt = 0;
	dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dirfd, 0);
	n = seg_list(dirfd, &list);
	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++) {
		struct seg_scan_result r;
		char name[SEG_NAME_LEN + 1];
		int fd, ret;

		seg_name(name, list[i]);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ret = seg_scan(fd, &r, seq_batch, NULL, s);
		close(fd);
		ck_assert_msg(ret == 0, "%s/%s: seg_scan %d", f->dir, name, ret);
		*corrupt += r.corrupt;
	}
	free(list);
	close(dirfd);
	return s->n;
}

/* The batches of one segment file. */
struct blist {
	struct bref *b;
	int n, max;
};

static int list_batch(const struct seg_batch_ref *b, void *arg)
{
	struct blist *l = arg;

	if (l->n < l->max)
		l->b[l->n] = (struct bref){ b->offset, SEG_BATCH_HDR_SIZE + b->hdr->length,
					    b->hdr->first_seq, b->hdr->last_seq, b->hdr->count };
	l->n++;
	return 0;
}

static int list_batches(const char *path, struct bref *out, int max)
{
	struct seg_scan_result r;
	struct blist l = { out, 0, max };
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	ret = seg_scan(fd, &r, list_batch, NULL, &l);
	close(fd);
	ck_assert_msg(ret == 0 && r.corrupt == 0 && r.torn_bytes == 0,
		      "%s: scan %d, corrupt %llu, torn %llu", path, ret,
		      (unsigned long long)r.corrupt, (unsigned long long)r.torn_bytes);
	return l.n;
}

/* The segment names of the store directory, sorted; how many. */
static int seg_names(struct fx *f, char names[][SEG_NAME_LEN + 1], int max)
{
	uint64_t *list = NULL;
	int dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), n;

	ck_assert_int_ge(dirfd, 0);
	n = seg_list(dirfd, &list);
	close(dirfd);
	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n && i < max; i++)
		seg_name(names[i], list[i]);
	free(list);
	return n;
}

/* The names in the store directory when it was pristine. */
static void list_keep(struct fx *f)
{
	struct dirent *e;
	DIR *dir = opendir(f->dir);

	ck_assert_ptr_nonnull(dir);
	f->nkeep = 0;
	while ((e = readdir(dir))) {
		ck_assert_int_lt(f->nkeep, 16);
		snprintf(f->keep[f->nkeep++], sizeof(f->keep[0]), "%s", e->d_name);
	}
	closedir(dir);
}

/*
 * make_store() - the store of every test here, stopped with SIGTERM, and
 * its pristine copies.  Segment 1: one batch of two 40000-byte records
 * (larger than segment_bytes, so the next batch rotates); segment 2: NSMALL
 * batches of 3, 1, 2, 3 records.
 */
static void make_store(struct fx *f)
{
	char names[8][SEG_NAME_LEN + 1];
	struct seqs s;
	struct peek p;
	be_store *h;
	unsigned tag = 0;
	int n;

	memset(f, 0, sizeof(*f));
	tu_daemon_config(&f->d, "shutdown_flush_timeout = 5s\n", STORE_CONF);
	snprintf(f->dir, sizeof(f->dir), "%s/s", f->d.data_dir);
	snprintf(f->ring_path, sizeof(f->ring_path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s.s",
		 f->d.instance);
	start_daemon(f);
	h = open_s(f);
	write_rec(f, h, tag++, BIG_LEN);
	write_rec(f, h, tag++, BIG_LEN);
	flush_s(f, h);
	for (int b = 0; b < NSMALL; b++) {
		for (int r = 0; r < 1 + (b + 2) % 3; r++)
			write_rec(f, h, tag, 20 + (tag * 7) % 50), tag++;
		flush_s(f, h);
	}
	ck_assert_int_eq(be_close(h), 0);
	stop_daemon(f);

	n = seg_names(f, names, 8);
	ck_assert_msg(n == 2, "%d segments, expected 2" LOGFMT, n, LOGARGS(f));
	memcpy(f->old_name, names[0], sizeof(f->old_name));
	memcpy(f->new_name, names[1], sizeof(f->new_name));
	snprintf(f->new_path, sizeof(f->new_path), "%s/%s", f->dir, f->new_name);
	f->nb = list_batches(f->new_path, f->b, 16);
	ck_assert_msg(f->nb == NSMALL, "%d batches in %s, expected %d" LOGFMT, f->nb, f->new_path,
		      NSMALL, LOGARGS(f));
	f->nlast = f->b[f->nb - 1].count;
	ck_assert_int_eq(f->nlast, 3);
	f->pristine = slurp(f->new_path, &f->pristine_len);
	ck_assert_uint_eq(f->pristine_len, f->b[f->nb - 1].off + f->b[f->nb - 1].len);
	f->ring = slurp(f->ring_path, &f->ring_len);
	list_keep(f);

	ck_assert_int_eq(read_seqs(f, &s), (long)tag);
	f->nseqs = s.n;
	memcpy(f->seqs, s.v, sizeof(uint64_t) * (size_t)s.n);
	for (long i = 1; i < s.n; i++)
		ck_assert_uint_gt(s.v[i], s.v[i - 1]);
	peek(f, &p);
	ck_assert_msg(p.tail == p.head && p.durable_seq == p.next_seq,
		      "after SIGTERM: head %llu tail %llu durable seq %llu next seq %llu",
		      (unsigned long long)p.head, (unsigned long long)p.tail,
		      (unsigned long long)p.durable_seq, (unsigned long long)p.next_seq);
	ck_assert_uint_eq(p.next_seq, f->seqs[f->nseqs - 1] + 1);
	f->tail0 = p.tail;
	f->durable_seq0 = p.durable_seq;
	f->next_seq0 = p.next_seq;
}

/* Put back the pristine newest segment and ring; remove anything new. */
static void restore(struct fx *f)
{
	struct dirent *e;
	DIR *dir = opendir(f->dir);

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		int old = 0;

		for (int i = 0; i < f->nkeep && !old; i++)
			old = !strcmp(e->d_name, f->keep[i]);
		if (!old)
			ck_assert_int_eq(unlinkat(dirfd(dir), e->d_name, 0), 0);
	}
	closedir(dir);
	spit(f->new_path, f->pristine, f->pristine_len);
	{
		int fd = open(f->ring_path, O_RDWR | O_CLOEXEC);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(tu_file_size(f->ring_path), (off_t)f->ring_len);
		ck_assert_int_eq(pwrite(fd, f->ring, f->ring_len, 0), (ssize_t)f->ring_len);
		close(fd);
	}
}

/* Cut the newest segment at off (variant 0), or garble it from off to its end (1). */
static void damage(struct fx *f, int variant, uint64_t off)
{
	if (variant == 0) {
		ck_assert_int_eq(truncate(f->new_path, (off_t)off), 0);
		return;
	}
	{
		size_t n = f->pristine_len - off;
		uint8_t *buf = malloc(n);
		int fd = open(f->new_path, O_WRONLY | O_CLOEXEC);

		ck_assert_ptr_nonnull(buf);
		ck_assert_int_ge(fd, 0);
		rng_state = 0x9e3779b97f4a7c15ull ^ off;
		/* Every byte differs from the original. */
		for (size_t i = 0; i < n; i++)
			buf[i] = f->pristine[off + i] ^ (uint8_t)(1 + rng_byte() % 255);
		ck_assert_int_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
		close(fd);
		free(buf);
	}
}

/* The store holds the records before the last batch, plus `extra` new ones (seqs given). */
static void assert_prefix(struct fx *f, const uint64_t *extra, int nextra, const char *what,
			  const char *log)
{
	long want = f->nseqs - f->nlast;
	struct seqs s;
	long got = read_seqs(f, &s);

	ck_assert_msg(got == want + nextra,
		      "%s: the store holds %ld records (-1: damage), expected %ld%s", what, got,
		      want + nextra, log);
	for (long i = 0; i < want; i++)
		ck_assert_msg(s.v[i] == f->seqs[i], "%s: record %ld has seq %llu, expected %llu%s",
			      what, i, (unsigned long long)s.v[i], (unsigned long long)f->seqs[i],
			      log);
	for (int i = 0; i < nextra; i++)
		ck_assert_msg(s.v[want + i] == extra[i],
			      "%s: new record %d has seq %llu, expected %llu%s", what, i,
			      (unsigned long long)s.v[want + i], (unsigned long long)extra[i], log);
}

/* ------------------------------------------------------------------------
 * The recovery code, in this process: what the daemon runs at start for a
 * store, on the same config, with its log captured.
 */

struct inproc {
	int ret;
	uint64_t seg_off, tail;
	char log[2400];
};

static void recover_inproc(struct fx *f, struct inproc *res)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct store *st = calloc(1, sizeof(*st));
	char err[512], cap[450];
	int saved, fd;

	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(st);
	ck_assert_msg(config_load(f->d.conf, &d->cfg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(d->cfg.nstores, 1);
	d->instance = d->cfg.engine.instance;
	d->datafd = open(f->d.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(d->datafd, 0);
	st->cfg = d->cfg.stores[0];
	st->map.fd = -1;

	snprintf(cap, sizeof(cap), "%s/inproc.log", f->d.dir);
	fd = open(cap, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	dup2(fd, 2);
	close(fd);
	res->ret = store_recover(d, st);
	res->seg_off = st->seg_off;
	res->tail = st->tail;
	store_detach(d, st);
	dup2(saved, 2);
	close(saved);
	snprintf(res->log, sizeof(res->log), "%s", tu_text_from(cap, 0));
	close(d->datafd);
	free(st);
	free(d);
}

/* ------------------------------------------------------------------------
 * 1. Every byte offset of the newest segment's last batch.
 */

/* The line recovery must log: the last batch's seqs were acknowledged, and are gone. */
static void lost_line(struct fx *f, char *buf, size_t len)
{
	snprintf(buf, len, "lost records acknowledged as durable: seqs %llu..%llu",
		 (unsigned long long)f->b[f->nb - 1].first_seq,
		 (unsigned long long)(f->durable_seq0 - 1));
}

static void check_inproc(struct fx *f, int variant, uint64_t off)
{
	const struct bref *last = &f->b[f->nb - 1];
	uint64_t keep = last->off;
	off_t before = tu_file_size(f->new_path);
	char want[200], what[160], log[2600];
	struct inproc r;
	struct peek p;

	snprintf(what, sizeof(what), "variant %d (%s), offset %llu (batch %llu..%llu), in-process",
		 variant, variant ? "garbage" : "cut", (unsigned long long)off,
		 (unsigned long long)keep, (unsigned long long)(keep + last->len - 1));
	recover_inproc(f, &r);
	snprintf(log, sizeof(log), "\n--- recovery log ---\n%s", r.log);
	ck_assert_msg(r.ret == 0, "%s: store_recover: %s%s", what, strerror(-r.ret), log);
	ck_assert_msg(tu_file_size(f->new_path) == (off_t)keep && r.seg_off == keep,
		      "%s: the newest segment is %lld bytes (next batch at %llu), expected %llu%s",
		      what, (long long)tu_file_size(f->new_path), (unsigned long long)r.seg_off,
		      (unsigned long long)keep, log);
	peek(f, &p);
	ck_assert_msg(p.tail >= f->tail0 && r.tail >= f->tail0,
		      "%s: the ring's tail moved backward: %llu (daemon's copy %llu), was %llu%s",
		      what, (unsigned long long)p.tail, (unsigned long long)r.tail,
		      (unsigned long long)f->tail0, log);
	lost_line(f, want, sizeof(want));
	ck_assert_msg(tu_has_line_with(r.log, "[s]", want), "%s: no line '[s] ... %s'%s", what,
		      want, log);
	if (before > (off_t)keep) {
		snprintf(want, sizeof(want), "torn tail of %llu bytes at offset %llu removed",
			 (unsigned long long)(before - (off_t)keep), (unsigned long long)keep);
		ck_assert_msg(tu_has_line_with(r.log, f->new_name, want),
			      "%s: no line '%s ... %s'%s", what, f->new_name, want, log);
	}
	assert_prefix(f, NULL, 0, what, log);
}

static void check_daemon(struct fx *f, int variant, uint64_t off)
{
	const struct bref *last = &f->b[f->nb - 1];
	uint64_t keep = last->off, seq = 0;
	char want[200], what[160], log[200];
	struct peek p;
	be_store *h;

	snprintf(what, sizeof(what), "variant %d (%s), offset %llu (batch %llu..%llu), daemon",
		 variant, variant ? "garbage" : "cut", (unsigned long long)off,
		 (unsigned long long)keep, (unsigned long long)(keep + last->len - 1));
	start_daemon(f);
	/* Recovery is over before the ring is attached: the file is cut now. */
	ck_assert_msg(tu_file_size(f->new_path) == (off_t)keep,
		      "%s: the newest segment is %lld bytes, expected %llu" LOGFMT, what,
		      (long long)tu_file_size(f->new_path), (unsigned long long)keep, LOGARGS(f));
	peek(f, &p);
	ck_assert_msg(p.tail >= f->tail0, "%s: the ring's tail moved backward: %llu, was %llu"
		      LOGFMT, what, (unsigned long long)p.tail, (unsigned long long)f->tail0,
		      LOGARGS(f));
	lost_line(f, want, sizeof(want));
	ck_assert_msg(tu_has_line_with(tu_text_from(f->d.log, f->log_off), "[s]", want),
		      "%s: no line '[s] ... %s'" LOGFMT, what, want, LOGARGS(f));

	/* The daemon goes on writing, after what is left. */
	h = open_s(f);
	write_rec(f, h, 1000 + (unsigned)off, 33);
	flush_s(f, h);
	ck_assert_int_eq(be_close(h), 0);
	peek(f, &p);
	seq = p.next_seq - 1;
	ck_assert_msg(seq >= f->next_seq0, "%s: the new record has seq %llu, not above the old %llu"
		      LOGFMT, what, (unsigned long long)seq, (unsigned long long)(f->next_seq0 - 1),
		      LOGARGS(f));
	ck_assert_msg(p.tail > f->tail0, "%s: the tail is %llu after a new batch, was %llu" LOGFMT,
		      what, (unsigned long long)p.tail, (unsigned long long)f->tail0, LOGARGS(f));
	ck_assert_msg(tu_file_size(f->new_path) > (off_t)keep,
		      "%s: the new batch did not go to the newest segment (%lld bytes)" LOGFMT,
		      what, (long long)tu_file_size(f->new_path), LOGARGS(f));
	stop_daemon(f);
	snprintf(log, sizeof(log), "\n(daemon log: %s)", f->d.log);
	assert_prefix(f, &seq, 1, what, log);
}

START_TEST(test_last_batch)
{
	struct fx *f = &F;
	const int variant = _i;
	uint64_t first, end, t0 = now_mono_ns();
	unsigned inproc = 0, restarts = 0;

	make_store(f);
	first = f->b[f->nb - 1].off;
	end = first + f->b[f->nb - 1].len;
	for (uint64_t off = first; off < end; off++) {
		restore(f);
		damage(f, variant, off);
		check_inproc(f, variant, off);
		inproc++;
		if ((off - first) % 7 == 0 || off == end - 1) {
			restore(f);
			damage(f, variant, off);
			check_daemon(f, variant, off);
			restarts++;
		}
	}
	ck_assert_uint_eq(inproc, end - first);
	if (getenv("BE_VERBOSE"))
		printf("torn last_batch variant %d: %u offsets in-process, %u daemon restarts, "
		       "%.1f s\n", variant, inproc, restarts, (now_mono_ns() - t0) / 1e9);
}
END_TEST

/* ------------------------------------------------------------------------
 * 2. A flipped bit in an earlier batch of the newest segment.
 */

START_TEST(test_corrupt_middle)
{
	struct fx *f = &F;
	const struct bref *bad;
	uint8_t *flipped, *after;
	size_t flen, alen;
	uint64_t at, corrupt, newseq;
	char want[300], what[64];
	struct seqs s;
	struct peek p;
	be_store *h;
	long got, nbad;
	int st;

	make_store(f);
	bad = &f->b[1]; /* batches 2 and 3 follow it */
	nbad = bad->count;
	switch (_i) {
	case 0: /* a payload bit */
		at = bad->off + SEG_BATCH_HDR_SIZE + sizeof(struct rec_hdr) + 5;
		snprintf(what, sizeof(what), "payload bit");
		break;
	case 1: /* the batch magic */
		at = bad->off + offsetof(struct seg_batch_hdr, magic);
		snprintf(what, sizeof(what), "magic bit");
		break;
	default: /* the length: the scan must find the next batch by itself */
		at = bad->off + offsetof(struct seg_batch_hdr, length);
		snprintf(what, sizeof(what), "length bit");
		break;
	}
	f->pristine[at] ^= _i == 2 ? 0x08 : 0x20;
	spit(f->new_path, f->pristine, f->pristine_len);
	flipped = slurp(f->new_path, &flen);

	start_daemon(f);
	ck_assert_msg(tu_has_line_with(tu_text_from(f->d.log, f->log_off), "[s]", "corrupt batch"),
		      "%s: no '[s] ... corrupt batch' line" LOGFMT, what, LOGARGS(f));
	snprintf(want, sizeof(want), "%s: corrupt batch at offset %llu", f->new_name,
		 (unsigned long long)bad->off);
	ck_assert_msg(tu_has_line_with(tu_text_from(f->d.log, f->log_off), "[s]", want),
		      "%s: no line '[s] ... %s'" LOGFMT, what, want, LOGARGS(f));
	/* Kept as it is: same size, same bytes. */
	after = slurp(f->new_path, &alen);
	ck_assert_msg(alen == flen && memcmp(after, flipped, flen) == 0,
		      "%s: the daemon changed the segment (%zu bytes, was %zu)" LOGFMT, what, alen,
		      flen, LOGARGS(f));
	free(after);
	peek(f, &p);
	ck_assert_msg(p.tail == f->tail0 && p.head == f->tail0,
		      "%s: tail %llu head %llu, expected both %llu" LOGFMT, what,
		      (unsigned long long)p.tail, (unsigned long long)p.head,
		      (unsigned long long)f->tail0, LOGARGS(f));

	/* Nothing written twice: every valid record once, the damaged batch's missing. */
	got = read_valid_seqs(f, &s, &corrupt);
	ck_assert_msg(got == f->nseqs - nbad && corrupt == 1,
		      "%s: %ld valid records (%llu corrupt regions), expected %ld and 1" LOGFMT,
		      what, got, (unsigned long long)corrupt, f->nseqs - nbad, LOGARGS(f));
	for (long i = 0, j = 0; i < f->nseqs; i++) {
		if (f->seqs[i] >= bad->first_seq && f->seqs[i] <= bad->last_seq)
			continue;
		ck_assert_msg(s.v[j] == f->seqs[i], "%s: valid record %ld has seq %llu, expected %llu"
			      LOGFMT, what, j, (unsigned long long)s.v[j],
			      (unsigned long long)f->seqs[i], LOGARGS(f));
		j++;
	}

	/* It goes on writing after the last batch, leaving the damage alone. */
	h = open_s(f);
	write_rec(f, h, 999, 40);
	flush_s(f, h);
	ck_assert_int_eq(be_close(h), 0);
	peek(f, &p);
	newseq = p.next_seq - 1;
	ck_assert_uint_ge(newseq, f->next_seq0);
	stop_daemon(f);
	after = slurp(f->new_path, &alen);
	ck_assert_msg(alen == flen + SEG_BATCH_HDR_SIZE + rec_size(40) &&
			      memcmp(after, flipped, flen) == 0,
		      "%s: after one more record the segment is %zu bytes (was %zu) or changed"
		      LOGFMT, what, alen, flen, LOGARGS(f));
	free(after);
	got = read_valid_seqs(f, &s, &corrupt);
	ck_assert_msg(got == f->nseqs - nbad + 1 && s.v[got - 1] == newseq && corrupt == 1,
		      "%s: %ld valid records, the last seq %llu (expected %ld, %llu)" LOGFMT, what,
		      got, (unsigned long long)s.v[got - 1], f->nseqs - nbad + 1,
		      (unsigned long long)newseq, LOGARGS(f));
	for (long i = 1; i < got; i++)
		ck_assert_msg(s.v[i] > s.v[i - 1], "%s: seq %llu after %llu" LOGFMT, what,
			      (unsigned long long)s.v[i], (unsigned long long)s.v[i - 1],
			      LOGARGS(f));

	/* be-read names the file and the offset, prints the rest, exits 2. */
	{
		const char *argv[] = { BE_BIN_DIR "/be-read", f->dir, NULL };
		char path_want[900];

		st = run_prog(f->d.dir, argv);
		snprintf(path_want, sizeof(path_want), "%s: corrupt batch at offset %llu",
			 f->new_path, (unsigned long long)bad->off);
		ck_assert_msg(st == 2, "%s: be-read exit %d, expected 2; stderr:\n%.1500s", what, st,
			      err_text);
		ck_assert_msg(strstr(err_text, path_want), "%s: be-read's stderr lacks '%s':\n%.1500s",
			      what, path_want, err_text);
	}
	free(flipped);
}
END_TEST

/* ------------------------------------------------------------------------
 * 3. The newest segment holds no valid batch: set aside.
 */

static const char *const aside_kinds[] = {
	"file header only", "empty file", "header and a torn batch", "header and garbage",
	"garbage header",
};

START_TEST(test_set_aside)
{
	struct fx *f = &F;
	char bad_name[SEG_NAME_LEN + 1], bad_path[800], torn_path[820], names[8][SEG_NAME_LEN + 1];
	const char *kind = aside_kinds[_i];
	uint8_t buf[4096], *after;
	size_t len = 0, alen;
	uint64_t seq, last;
	struct seg_file_hdr fh;
	struct seqs s;
	struct peek p;
	be_store *h;
	int removed, n;

	make_store(f);
	last = f->seqs[f->nseqs - 1];
	/* The name the next rotation would take. */
	seg_name(bad_name, last + 1);
	snprintf(bad_path, sizeof(bad_path), "%s/%s", f->dir, bad_name);
	snprintf(torn_path, sizeof(torn_path), "%s.torn", bad_path);
	seg_file_hdr_init(&fh, last + 1, BE_TYPE_RAW, "s");
	rng_state = 0x5eed0000u + (unsigned)_i;
	switch (_i) {
	case 0:
		memcpy(buf, &fh, sizeof(fh));
		len = sizeof(fh);
		break;
	case 1:
		len = 0;
		break;
	case 2: /* the first half of a real batch */
		memcpy(buf, &fh, sizeof(fh));
		len = f->b[f->nb - 1].len / 2;
		memcpy(buf + sizeof(fh), f->pristine + f->b[f->nb - 1].off, len);
		len += sizeof(fh);
		break;
	case 3:
		memcpy(buf, &fh, sizeof(fh));
		for (len = sizeof(fh); len < sizeof(fh) + 700; len++)
			buf[len] = rng_byte();
		break;
	default:
		for (len = 0; len < 300; len++)
			buf[len] = rng_byte();
		break;
	}
	spit(bad_path, buf, len);
	removed = len <= SEG_FILE_HDR_SIZE;

	start_daemon(f);
	if (removed)
		ck_assert_msg(tu_has_line_with(tu_text_from(f->d.log, f->log_off), bad_name,
					       "removed an empty segment"),
			      "%s: no line '%s ... removed an empty segment'" LOGFMT, kind,
			      bad_name, LOGARGS(f));
	else
		ck_assert_msg(
			tu_has_line_with(tu_text_from(f->d.log, f->log_off), bad_name, ".torn"),
			"%s: no line '%s ... .torn'" LOGFMT, kind, bad_name, LOGARGS(f));
	ck_assert_msg(tu_file_size(bad_path) < 0, "%s: %s is still there" LOGFMT, kind, bad_path,
		      LOGARGS(f));
	if (removed) {
		ck_assert_msg(tu_file_size(torn_path) < 0, "%s: %s exists" LOGFMT, kind, torn_path,
			      LOGARGS(f));
	} else {
		after = slurp(torn_path, &alen);
		ck_assert_msg(alen == len && memcmp(after, buf, len) == 0,
			      "%s: %s does not hold what the file held" LOGFMT, kind, torn_path,
			      LOGARGS(f));
		free(after);
	}
	/* The previous segment is untouched, and nothing is lost. */
	after = slurp(f->new_path, &alen);
	ck_assert_msg(alen == f->pristine_len && memcmp(after, f->pristine, alen) == 0,
		      "%s: %s changed" LOGFMT, kind, f->new_path, LOGARGS(f));
	free(after);
	ck_assert_msg(read_seqs(f, &s) == f->nseqs, "%s: %ld records, expected %ld" LOGFMT, kind,
		      s.n, f->nseqs, LOGARGS(f));
	peek(f, &p);
	ck_assert_uint_eq(p.tail, f->tail0);

	/* The store goes on in the previous segment. */
	h = open_s(f);
	write_rec(f, h, 777, 50);
	flush_s(f, h);
	ck_assert_int_eq(be_close(h), 0);
	peek(f, &p);
	seq = p.next_seq - 1;
	ck_assert_uint_gt(seq, last);
	stop_daemon(f);
	ck_assert_msg(tu_file_size(f->new_path) ==
			      (off_t)(f->pristine_len + SEG_BATCH_HDR_SIZE + rec_size(50)),
		      "%s: the new record did not go to %s (%lld bytes, was %zu)" LOGFMT, kind,
		      f->new_path, (long long)tu_file_size(f->new_path), f->pristine_len,
		      LOGARGS(f));
	n = seg_names(f, names, 8);
	ck_assert_msg(n == 2, "%s: %d segments, expected 2" LOGFMT, kind, n, LOGARGS(f));
	ck_assert_int_eq(read_seqs(f, &s), f->nseqs + 1);
	ck_assert_msg(memcmp(s.v, f->seqs, sizeof(uint64_t) * (size_t)f->nseqs) == 0 &&
			      s.v[f->nseqs] == seq,
		      "%s: the records read back differ" LOGFMT, kind, LOGARGS(f));
}
END_TEST

/*
 * A real crash during rotation: the hooks build SIGKILLs itself right after
 * creating (and syncing) the second segment, before writing the batch into
 * it.  The batch's records are still in the ring; a normal daemon removes
 * the empty segment and writes them, once.
 */
START_TEST(test_crash_in_rotation)
{
	struct fx *f = &F;
	char names[8][SEG_NAME_LEN + 1], hooks[400];
	struct seqs s;
	be_store *h;
	pid_t pid;
	int st, n, ret;
	uint64_t end;

	snprintf(hooks, sizeof(hooks), BE_TEST_DIR "/bufferengined-hooks");
	if (access(hooks, X_OK) != 0) {
		printf("SKIP: torn/test_crash_in_rotation: %s is not built\n", hooks);
		return;
	}
	memset(f, 0, sizeof(*f));
	tu_daemon_config(&f->d, "shutdown_flush_timeout = 5s\n", STORE_CONF);
	snprintf(f->dir, sizeof(f->dir), "%s/s", f->d.data_dir);
	pid = tu_daemon_spawn(&f->d, hooks, "BE_CRASH_AT=seg_created:2");
	ck_assert_int_ge(pid, 0);
	end = now_mono_ns() + (uint64_t)tu_bound(10000) * NSEC_PER_MSEC;
	for (;;) {
		if (tu_ring_attached(f->d.instance, "s", pid))
			break;
		ck_assert_msg(now_mono_ns() < end && waitpid(pid, &st, WNOHANG) == 0,
			      "the hooks daemon did not come up" LOGFMT, LOGARGS(f));
		tu_sleep_ms(5);
	}
	h = open_s(f);
	write_rec(f, h, 0, BIG_LEN);
	write_rec(f, h, 1, BIG_LEN);
	flush_s(f, h);
	for (unsigned i = 2; i < 6; i++)
		write_rec(f, h, i, 40);
	/* The rotation for these kills the daemon: the flush cannot complete. */
	ret = be_flush(h, 300);
	ck_assert_msg(ret == -ETIMEDOUT, "be_flush across the crash: %d" LOGFMT, ret, LOGARGS(f));
	end = now_mono_ns() + (uint64_t)tu_bound(10000) * NSEC_PER_MSEC;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_mono_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			tu_forget_pid(pid);
			ck_abort_msg("the hooks daemon did not crash at seg_created:2" LOGFMT,
				     LOGARGS(f));
		}
		tu_sleep_ms(5);
	}
	tu_forget_pid(pid);
	ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		      "the hooks daemon ended with status 0x%x, not by its crash point" LOGFMT, st,
		      LOGARGS(f));
	n = seg_names(f, names, 8);
	ck_assert_msg(n == 2, "%d segments after the crash, expected 2" LOGFMT, n, LOGARGS(f));
	snprintf(f->new_path, sizeof(f->new_path), "%s/%s", f->dir, names[1]);
	ck_assert_msg(tu_file_size(f->new_path) == SEG_FILE_HDR_SIZE,
		      "%s: %lld bytes after a crash at seg_created, expected a header only" LOGFMT,
		      f->new_path, (long long)tu_file_size(f->new_path), LOGARGS(f));

	start_daemon(f);
	ck_assert_msg(tu_has_line_with(tu_text_from(f->d.log, f->log_off), names[1],
				       "removed an empty segment"),
		      "no line '%s ... removed an empty segment'" LOGFMT, names[1], LOGARGS(f));
	flush_s(f, h);
	ck_assert_int_eq(be_close(h), 0);
	stop_daemon(f);
	ck_assert_int_eq(read_seqs(f, &s), 6);
	for (long i = 1; i < s.n; i++)
		ck_assert_uint_gt(s.v[i], s.v[i - 1]);
	/* The segment was made again, under the same name, now with the batch. */
	ck_assert_int_eq(seg_names(f, names, 8), 2);
	ck_assert_int_gt(tu_file_size(f->new_path), SEG_FILE_HDR_SIZE);
}
END_TEST

Suite *torn_suite(void);

Suite *torn_suite(void)
{
	Suite *s = suite_create("torn");
	TCase *tc;

	tc = tcase_create("last_batch");
	tcase_add_loop_test(tc, test_last_batch, 0, 2);
	/* ~1 s here (272 recoveries in-process, 40 daemon restarts a variant). */
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("damaged");
	tcase_add_loop_test(tc, test_corrupt_middle, 0, 3);
	tcase_add_loop_test(tc, test_set_aside, 0,
			    (int)(sizeof(aside_kinds) / sizeof(aside_kinds[0])));
	tcase_add_test(tc, test_crash_in_rotation);
	/* Well under a second each; the crash test waits 300 ms for a flush that cannot come. */
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}
