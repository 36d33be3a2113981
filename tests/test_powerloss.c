/*
 * test_powerloss.c - power loss, simulated (DESIGN.md, Guarantees 1 and 3).
 *
 * The test build of the daemon (build/tests/bufferengined-hooks) runs with
 * BE_SYNC_JOURNAL: at every completed fdatasync it journals "file PATH LEN"
 * (that much of that file is durable) and at every directory fsync
 * "dir PATH NAME..." (those names are durable).  Writer processes write
 * (round, writer, counter) records and be_flush() every few records; after
 * each be_flush() that returns 0 a writer stores its acknowledged count in
 * shared memory, so the test knows exactly which records were acknowledged.
 *
 * Then the power is cut: the daemon and every writer are SIGKILLed; each
 * segment is truncated to the largest length the journal gives it (0 if
 * none) and gets a torn tail (a partial page of garbage, a batch's length
 * or more of it, zeros, a batch header that continues the file's seqs over
 * garbage, a stale copy of the file's last batch, or some of the unsynced
 * bytes that really were written); segments whose names no "dir" line
 * names are deleted; the rings and the instance lock leave /dev/shm as a
 * reboot would take them.  The normal daemon then restarts and the test
 * checks: every acknowledged record is there exactly once, each writer's
 * records are 0, 1, 2... without a gap or a repeat, seqs strictly
 * increase, the store reads back without damage (recovery cut the torn
 * tail, and its log says so), and records written after the restart get
 * seqs above every seq that was ever in a segment.
 *
 * Eight rounds per variant (sync = batch, sync = none) on the same store,
 * each round starting from what the last one left (made durable by a
 * clean SIGTERM and syncfs, and journaled as such).  The seed is printed;
 * BE_POWERLOSS_SEED=N repeats a run.
 *
 * By hand only (see the report of the power-loss work):
 *   BE_POWERLOSS_DAEMON_ENV="BE_NO_FDATASYNC=1"   extra NAME=VALUE[,..] for
 *                                                 the hooks daemon
 *   BE_POWERLOSS_HOOKS_BIN=PATH                   another hooks daemon
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/segment.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define LOGFMT "\n--- daemon log %s ---\n%s"
#define LOGARGS(d) (d)->log, tu_file_text((d)->log)

#define STORE "s"
#define NW 3              /* writer processes per round */
#define POST_WRITER NW    /* records the test writes itself after a restart */
#define POST_N 40
#define ROUNDS 8
#define WRITER_CAP 400000 /* a writer stops there (never reached in time) */

/* ------------------------------------------------------------------------
 * Randomness (tu_rng_next(): xorshift64*).
 */

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? tu_rng_next(s) % n : 0;
}

/* ------------------------------------------------------------------------
 * Records: (round, writer, counter) and a checkable filler of varying length.
 */

#define PL_MAGIC 0x4c574f50u /* "POWL" */

struct plrec {
	uint32_t magic;
	uint16_t round;
	uint16_t writer;
	uint64_t counter;
};

static size_t pl_fill_len(unsigned round, unsigned writer, uint64_t counter)
{
	return (size_t)((counter * 13 + writer * 7 + round * 3) % 57);
}

static uint8_t pl_fill_byte(unsigned writer, uint64_t counter, size_t i)
{
	return (uint8_t)(counter * 31 + i * 7 + writer);
}

static size_t pl_make(uint8_t *buf, unsigned round, unsigned writer, uint64_t counter)
{
	struct plrec h = { PL_MAGIC, (uint16_t)round, (uint16_t)writer, counter };
	size_t n = pl_fill_len(round, writer, counter);

	memcpy(buf, &h, sizeof(h));
	for (size_t i = 0; i < n; i++)
		buf[sizeof(h) + i] = pl_fill_byte(writer, counter, i);
	return sizeof(h) + n;
}

/* What the writers tell the test, in a MAP_SHARED page. */
struct pl_shared {
	uint64_t acked[ROUNDS][NW];   /* records 0..acked-1 were acknowledged durable */
	uint64_t written[ROUNDS][NW]; /* records 0..written-1 were accepted by be_write */
};

/*
 * spawn_writer() - a child that writes records forever (up to WRITER_CAP),
 * be_flush()ing every 1..24 records and publishing what each successful
 * be_flush() covered.  It is SIGKILLed by the power cut; on an error it
 * exits 10 (open), 11 (write) or 12 (flush).
 */
static pid_t spawn_writer(const char *instance, struct pl_shared *sh, unsigned round, unsigned w,
			  uint64_t seed)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = tu_bound(20000) };
	uint64_t rng = seed ^ ((uint64_t)round << 40) ^ ((uint64_t)(w + 1) << 20) ^ 0x5151;
	pid_t pid = tu_spawn();
	uint8_t buf[128];
	unsigned left;
	be_store *s;
	int ret;

	if (pid != 0)
		return pid;
	ret = be_open(STORE, &o, &s);
	if (ret) {
		fprintf(stderr, "powerloss writer %u: be_open: %s\n", w, be_strerror(ret));
		_exit(10);
	}
	left = 1 + (unsigned)rng_below(&rng, 24);
	for (uint64_t c = 0; c < WRITER_CAP; c++) {
		size_t len = pl_make(buf, round, w, c);

		ret = be_write(s, buf, len);
		if (ret) {
			fprintf(stderr, "powerloss writer %u: be_write #%llu: %s\n", w,
				(unsigned long long)c, be_strerror(ret));
			_exit(11);
		}
		__atomic_store_n(&sh->written[round][w], c + 1, __ATOMIC_RELEASE);
		if (--left == 0) {
			ret = be_flush(s, tu_bound(20000));
			if (ret) {
				fprintf(stderr, "powerloss writer %u: be_flush after #%llu: %s\n", w,
					(unsigned long long)c, be_strerror(ret));
				_exit(12);
			}
			/* Only now, and only this much, is acknowledged. */
			__atomic_store_n(&sh->acked[round][w], c + 1, __ATOMIC_RELEASE);
			left = 1 + (unsigned)rng_below(&rng, 24);
		}
	}
	_exit(0);
}

/* ------------------------------------------------------------------------
 * Reading back.
 */

struct pl_check {
	uint64_t next[ROUNDS][NW + 1]; /* per (round, writer): the counter expected next */
	uint64_t post_first_seq[ROUNDS];
	uint64_t last_seq, max_seq;
	long records;
	uint64_t dups, gaps, bad, disorder;
	char err[512];                 /* the first problem */
};

static void pl_problem(struct pl_check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pl_problem(struct pl_check *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

static int pl_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct pl_check *c = arg;
	struct plrec h;
	size_t want;

	c->records++;
	if (r->seq <= c->last_seq) {
		c->disorder++;
		pl_problem(c, "record #%ld: seq %llu after seq %llu", c->records,
			   (unsigned long long)r->seq, (unsigned long long)c->last_seq);
	}
	c->last_seq = r->seq;
	if (r->seq > c->max_seq)
		c->max_seq = r->seq;
	if (r->type != BE_TYPE_RAW || r->len < sizeof(h)) {
		c->bad++;
		pl_problem(c, "record #%ld (seq %llu): type %u, len %u", c->records,
			   (unsigned long long)r->seq, r->type, r->len);
		return 0;
	}
	memcpy(&h, payload, sizeof(h));
	if (h.magic != PL_MAGIC || h.round >= ROUNDS || h.writer > POST_WRITER) {
		c->bad++;
		pl_problem(c, "record #%ld (seq %llu): bad payload %08x round %u writer %u",
			   c->records, (unsigned long long)r->seq, h.magic, h.round, h.writer);
		return 0;
	}
	want = sizeof(h) + pl_fill_len(h.round, h.writer, h.counter);
	if (r->len != want) {
		c->bad++;
		pl_problem(c, "record #%ld (seq %llu): len %u, expected %zu", c->records,
			   (unsigned long long)r->seq, r->len, want);
		return 0;
	}
	for (size_t i = 0; i < want - sizeof(h); i++) {
		if (payload[sizeof(h) + i] != pl_fill_byte(h.writer, h.counter, i)) {
			c->bad++;
			pl_problem(c, "record #%ld (seq %llu): payload byte %zu differs",
				   c->records, (unsigned long long)r->seq, sizeof(h) + i);
			return 0;
		}
	}
	if (h.writer == POST_WRITER && h.counter == 0)
		c->post_first_seq[h.round] = r->seq;
	if (h.counter < c->next[h.round][h.writer]) {
		c->dups++;
		pl_problem(c, "record #%ld (seq %llu): round %u writer %u counter %llu again "
			   "(expected %llu): a duplicate", c->records, (unsigned long long)r->seq,
			   h.round, h.writer, (unsigned long long)h.counter,
			   (unsigned long long)c->next[h.round][h.writer]);
		return 0;
	}
	if (h.counter > c->next[h.round][h.writer]) {
		c->gaps += h.counter - c->next[h.round][h.writer];
		pl_problem(c, "record #%ld (seq %llu): round %u writer %u counter %llu, expected "
			   "%llu: a gap", c->records, (unsigned long long)r->seq, h.round, h.writer,
			   (unsigned long long)h.counter,
			   (unsigned long long)c->next[h.round][h.writer]);
	}
	c->next[h.round][h.writer] = h.counter + 1;
	return 0;
}

/* ------------------------------------------------------------------------
 * The journal and the power cut.
 */

#define MAX_SEGS 512

struct journal {
	char dir[PATH_MAX];                 /* the store directory, real path */
	char names[MAX_SEGS][SEG_NAME_LEN + 8]; /* names some "dir" line holds */
	int nnames;
	char fnames[MAX_SEGS][SEG_NAME_LEN + 8]; /* files some "file" line names */
	uint64_t flen[MAX_SEGS];            /* ... and the largest length given */
	int nfiles;
	int lines;
};

static int name_in(char (*names)[SEG_NAME_LEN + 8], int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* Read the journal; only lines about `dir` (the store's directory) count. */
static int journal_read(const char *path, struct journal *j)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	size_t dlen = strlen(j->dir);

	j->nnames = j->nfiles = j->lines = 0;
	if (!f)
		return -1;
	while ((n = getline(&line, &cap, f)) > 0) {
		char *save = NULL, *kind, *p;

		if (line[n - 1] == '\n')
			line[n - 1] = 0;
		j->lines++;
		kind = strtok_r(line, " ", &save);
		p = strtok_r(NULL, " ", &save);
		if (!kind || !p)
			continue;
		if (strcmp(kind, "file") == 0) {
			char *len = strtok_r(NULL, " ", &save);
			const char *name = p + dlen + 1;
			int i;

			if (!len || strncmp(p, j->dir, dlen) != 0 || p[dlen] != '/' ||
			    strchr(name, '/'))
				continue;
			i = name_in(j->fnames, j->nfiles, name);
			if (i < 0 && j->nfiles < MAX_SEGS) {
				i = j->nfiles++;
				snprintf(j->fnames[i], sizeof(j->fnames[i]), "%s", name);
				j->flen[i] = 0;
			}
			if (i >= 0 && strtoull(len, NULL, 10) > j->flen[i])
				j->flen[i] = strtoull(len, NULL, 10);
		} else if (strcmp(kind, "dir") == 0 && strcmp(p, j->dir) == 0) {
			while ((p = strtok_r(NULL, " ", &save))) {
				if (name_in(j->names, j->nnames, p) < 0 && j->nnames < MAX_SEGS)
					snprintf(j->names[j->nnames++], sizeof(j->names[0]), "%s",
						 p);
			}
		}
	}
	free(line);
	fclose(f);
	return 0;
}

/*
 * journal_seed() - start a round's journal with what is on disk now (all
 * of it made durable by the clean stop and syncfs before the call).
 */
static void journal_seed(const char *path, const char *dir)
{
	FILE *f = fopen(path, "w");
	DIR *dd = opendir(dir);
	struct dirent *e;
	char names[8192];
	size_t used = 0;

	ck_assert_msg(f && dd, "journal %s / dir %s: %s", path, dir, strerror(errno));
	names[0] = 0;
	while ((e = readdir(dd))) {
		char p[PATH_MAX + 300];
		struct stat sb;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
			fprintf(f, "file %s %llu\n", p, (unsigned long long)sb.st_size);
		if (used + strlen(e->d_name) + 2 < sizeof(names))
			used += (size_t)snprintf(names + used, sizeof(names) - used, " %s",
						 e->d_name);
	}
	closedir(dd);
	fprintf(f, "dir %s%s\n", dir, names);
	fclose(f);
}

enum garbage {
	G_NONE = -1,
	G_PARTIAL, /* random bytes, less than a page */
	G_BIG,     /* random bytes, a batch's length or more */
	G_ZERO,    /* zeros (blocks allocated, never written) */
	G_HDR,     /* a batch header that continues the file's seqs, then garbage */
	G_STALE,   /* an exact copy of the file's last valid batch (old seqs) */
	G_REAL,    /* some of the bytes that really were written after the sync */
	G_KINDS
};

static const char *const garbage_names[G_KINDS] = { "partial", "big",   "zeros",
						    "header",  "stale", "real" };

struct last_batch {
	struct seg_batch_hdr hdr;
	uint64_t offset;
	int found;
};

static int note_last_batch(const struct seg_batch_ref *b, void *arg)
{
	struct last_batch *lb = arg;

	lb->hdr = *b->hdr;
	lb->offset = b->offset;
	lb->found = 1;
	return 0;
}

struct cut_stats {
	int files, deleted, truncated, garbaged;
	uint64_t cut_bytes;
	uint64_t precut_max_seq;   /* the largest seq in any valid batch before the cut */
	uint64_t kinds[G_KINDS];
	char newest[SEG_NAME_LEN + 8];
	/* What recovery must say about the newest segment (empty: nothing). */
	char expect[160];
	char what[512];            /* a line for messages */
};

static void what_add(struct cut_stats *cs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void what_add(struct cut_stats *cs, const char *fmt, ...)
{
	size_t used = strlen(cs->what);
	va_list ap;

	if (used + 1 >= sizeof(cs->what))
		return;
	va_start(ap, fmt);
	vsnprintf(cs->what + used, sizeof(cs->what) - used, fmt, ap);
	va_end(ap);
}

static void fill_random(uint64_t *rng, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)tu_rng_next(rng);
}

/*
 * torn_tail() - garbage of kind k for a file whose durable part [0, len) is
 * open in fd; `lost` holds the bytes that were past len before the cut.
 * Returns a malloc'ed buffer and its size in *n.
 */
static uint8_t *torn_tail(uint64_t *rng, int *kind, int fd, const uint8_t *lost, size_t nlost,
			  size_t *n)
{
	struct last_batch lb = { .found = 0 };
	struct seg_scan_result res;
	uint8_t *g = NULL;
	size_t len = 0;

	if (seg_scan(fd, &res, note_last_batch, NULL, &lb) != 0)
		lb.found = 0;
	if (*kind == G_REAL && !nlost)
		*kind = G_PARTIAL;
	switch (*kind) {
	case G_PARTIAL:
		len = 1 + rng_below(rng, 4095);
		g = malloc(len);
		fill_random(rng, g, len);
		break;
	case G_BIG:
		len = (lb.found ? SEG_BATCH_HDR_SIZE + lb.hdr.length : 4096) +
		      rng_below(rng, 64 * 1024);
		g = malloc(len);
		fill_random(rng, g, len);
		break;
	case G_ZERO:
		len = 1 + rng_below(rng, 64 * 1024);
		g = calloc(1, len);
		break;
	case G_HDR: {
		/* A header that could be the next batch: magic, version, seqs, positions. */
		struct seg_batch_hdr h = { 0 };

		if (lb.found) {
			h = lb.hdr;
			h.first_seq = lb.hdr.last_seq + 1;
			h.last_seq = h.first_seq + h.count - 1;
			h.start_pos = lb.hdr.end_pos;
			h.end_pos = h.start_pos + (lb.hdr.end_pos - lb.hdr.start_pos);
		} else {
			h.magic = SEG_BATCH_MAGIC;
			h.version = SEG_BATCH_VERSION;
			h.count = 3;
			h.first_seq = 1;
			h.last_seq = 3;
			h.length = 3 * 64;
			h.end_pos = h.length;
		}
		h.crc = (uint32_t)tu_rng_next(rng);
		/* Sometimes the whole claimed length, sometimes less (torn inside). */
		len = SEG_BATCH_HDR_SIZE + (rng_below(rng, 2) ? h.length : rng_below(rng, h.length));
		g = malloc(len);
		memcpy(g, &h, sizeof(h));
		fill_random(rng, g + sizeof(h), len - sizeof(h));
		break;
	}
	case G_STALE:
		if (lb.found) {
			len = SEG_BATCH_HDR_SIZE + lb.hdr.length;
			g = malloc(len);
			if (pread(fd, g, len, (off_t)lb.offset) != (ssize_t)len)
				ck_abort_msg("pread of the last batch: %s", strerror(errno));
		} else {
			*kind = G_ZERO;
			len = 1 + rng_below(rng, 4096);
			g = calloc(1, len);
		}
		break;
	case G_REAL: {
		size_t keep = (size_t)rng_below(rng, nlost + 1);
		size_t extra = rng_below(rng, 2) ? 1 + rng_below(rng, 4095) : 0;

		len = keep + extra;
		g = malloc(len + 1);
		memcpy(g, lost, keep);
		fill_random(rng, g + keep, extra);
		break;
	}
	default:
		ck_abort_msg("garbage kind %d", *kind);
	}
	ck_assert_ptr_nonnull(g);
	*n = len;
	return g;
}

/* Remove the rings and the instance lock, as a reboot empties /dev/shm. */
static void shm_reboot(const char *instance)
{
	char prefix[128], lock[128];
	struct dirent *e;
	DIR *dir = opendir(RING_SHM_DIR);

	ck_assert_ptr_nonnull(dir);
	snprintf(prefix, sizeof(prefix), RING_SHM_PREFIX "%s.", instance);
	snprintf(lock, sizeof(lock), RING_SHM_PREFIX "%s", instance);
	while ((e = readdir(dir))) {
		char path[512];

		if (strncmp(e->d_name, prefix, strlen(prefix)) && strcmp(e->d_name, lock))
			continue;
		snprintf(path, sizeof(path), RING_SHM_DIR "/%s", e->d_name);
		ck_assert_msg(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
	}
	closedir(dir);
}

/*
 * power_cut() - what the disk holds after a power loss, per the journal:
 * non-durable names gone, each file cut to its durable length, a torn tail
 * where one is possible (after unsynced bytes, and on the newest segment).
 */
static void power_cut(struct tu_daemon *d, const char *journal_path, uint64_t *rng,
		      struct cut_stats *cs)
{
	static struct journal j;
	uint64_t *seqs = NULL, newest = 0;
	char sdir[PATH_MAX];
	int dirfd, n, have_newest = 0;

	memset(cs, 0, sizeof(*cs));
	snprintf(sdir, sizeof(sdir), "%s/%s", d->data_dir, STORE);
	ck_assert_msg(realpath(sdir, j.dir) != NULL, "%s: %s", sdir, strerror(errno));
	ck_assert_msg(journal_read(journal_path, &j) == 0, "journal %s: %s", journal_path,
		      strerror(errno));
	dirfd = open(j.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dirfd, 0);
	n = seg_list(dirfd, &seqs);
	ck_assert_int_ge(n, 0);
	/* Names first: a segment whose directory entry was never synced is gone. */
	for (int i = 0; i < n; i++) {
		char name[SEG_NAME_LEN + 1];

		seg_name(name, seqs[i]);
		cs->files++;
		if (name_in(j.names, j.nnames, name) < 0) {
			struct stat sb;
			struct seg_scan_result pre;
			int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);

			if (fd >= 0 && seg_scan(fd, &pre, NULL, NULL, NULL) == 0 && pre.batches &&
			    pre.last_seq > cs->precut_max_seq)
				cs->precut_max_seq = pre.last_seq;
			if (fd >= 0 && fstat(fd, &sb) == 0)
				cs->cut_bytes += (uint64_t)sb.st_size;
			if (fd >= 0)
				close(fd);
			ck_assert_msg(unlinkat(dirfd, name, 0) == 0, "unlink %s", name);
			cs->deleted++;
			what_add(cs, " %s:deleted", name + 12);
			continue;
		}
		newest = seqs[i];
		have_newest = 1;
	}
	if (have_newest)
		seg_name(cs->newest, newest);
	for (int i = 0; i < n; i++) {
		char name[SEG_NAME_LEN + 1];
		struct seg_scan_result pre;
		struct stat sb;
		uint64_t len, size;
		uint8_t *lost = NULL;
		size_t nlost = 0;
		int fd, k, is_newest;

		seg_name(name, seqs[i]);
		fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT)
			continue; /* deleted above */
		ck_assert_msg(fd >= 0, "%s: %s", name, strerror(errno));
		ck_assert_int_eq(fstat(fd, &sb), 0);
		size = (uint64_t)sb.st_size;
		k = name_in(j.fnames, j.nfiles, name);
		len = k >= 0 ? j.flen[k] : 0;
		if (len > size)
			len = size; /* cannot happen: nothing shrinks a file under its sync */
		if (seg_scan(fd, &pre, NULL, NULL, NULL) == 0 && pre.batches &&
		    pre.last_seq > cs->precut_max_seq)
			cs->precut_max_seq = pre.last_seq;
		if (size > len) {
			nlost = (size_t)(size - len);
			lost = malloc(nlost);
			ck_assert_msg(lost && pread(fd, lost, nlost, (off_t)len) == (ssize_t)nlost,
				      "%s: reading the unsynced tail", name);
			ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
			cs->truncated++;
			cs->cut_bytes += nlost;
		}
		is_newest = have_newest && seqs[i] == newest;
		/* A torn tail where bytes went unsynced; on the newest, mostly. */
		if (nlost || (is_newest && rng_below(rng, 4) != 0)) {
			int kind = (int)rng_below(rng, G_KINDS);
			size_t glen;
			uint8_t *g = torn_tail(rng, &kind, fd, lost, nlost, &glen);

			if (glen)
				ck_assert_msg(pwrite(fd, g, glen, (off_t)len) == (ssize_t)glen,
					      "%s: writing the torn tail", name);
			free(g);
			cs->garbaged++;
			cs->kinds[kind]++;
			what_add(cs, " %s:%llu/%llu+%s:%zu", name + 12, (unsigned long long)len,
				 (unsigned long long)size, garbage_names[kind], glen);
		} else {
			what_add(cs, " %s:%llu/%llu", name + 12, (unsigned long long)len,
				 (unsigned long long)size);
		}
		free(lost);
		/* What recovery will find in the newest segment, and must say. */
		if (is_newest) {
			struct seg_scan_result now;
			int ret;

			ck_assert_int_eq(fstat(fd, &sb), 0);
			ret = seg_scan(fd, &now, NULL, NULL, NULL);
			if (ret || now.batches == 0) {
				if ((uint64_t)sb.st_size <= SEG_FILE_HDR_SIZE)
					snprintf(cs->expect, sizeof(cs->expect),
						 "%s: removed an empty segment", name);
				else
					snprintf(cs->expect, sizeof(cs->expect),
						 "%s: no valid batch in %llu bytes: moved to "
						 "%s.torn", name, (unsigned long long)sb.st_size,
						 name);
			} else if (now.torn_bytes) {
				snprintf(cs->expect, sizeof(cs->expect),
					 "%s: torn tail of %llu bytes at offset %llu removed", name,
					 (unsigned long long)now.torn_bytes,
					 (unsigned long long)now.valid_end);
			}
		}
		close(fd);
	}
	free(seqs);
	close(dirfd);
	shm_reboot(d->instance);
}

/* ------------------------------------------------------------------------
 * The test.
 */

/* Start the hooks daemon with the journal (and BE_POWERLOSS_DAEMON_ENV). */
static int start_hooks(struct tu_daemon *d, const char *journal)
{
	const char *bin = getenv("BE_POWERLOSS_HOOKS_BIN");
	const char *extra = getenv("BE_POWERLOSS_DAEMON_ENV");
	char names[8][64];
	int nnames = 0, ret;

	setenv("BE_SYNC_JOURNAL", journal, 1);
	if (extra && *extra) {
		char *copy = strdup(extra), *save = NULL;

		for (char *p = strtok_r(copy, ",", &save); p && nnames < 8;
		     p = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(p, '=');

			if (!eq)
				continue;
			*eq = 0;
			snprintf(names[nnames++], sizeof(names[0]), "%s", p);
			setenv(p, eq + 1, 1);
		}
		free(copy);
	}
	ret = tu_daemon_start_bin(d, STORE, bin && *bin ? bin : BE_TEST_DIR "/bufferengined-hooks");
	unsetenv("BE_SYNC_JOURNAL");
	for (int i = 0; i < nnames; i++)
		unsetenv(names[i]);
	return ret;
}

static int exited(pid_t pid, int *status)
{
	int st;

	if (waitpid(pid, &st, WNOHANG) != pid)
		return 0;
	*status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
	return 1;
}

static uint64_t acked_total(struct pl_shared *sh, unsigned round)
{
	uint64_t t = 0;

	for (unsigned w = 0; w < NW; w++)
		t += __atomic_load_n(&sh->acked[round][w], __ATOMIC_ACQUIRE);
	return t;
}

static uint64_t seed_of_run(void)
{
	const char *e = getenv("BE_POWERLOSS_SEED");
	struct timespec ts;

	if (e && *e)
		return strtoull(e, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
}

static void run_powerloss(const char *sync_mode, const char *flush_bytes)
{
	static struct pl_check chk, prev;
	struct tu_daemon d;
	struct pl_shared *sh;
	char stores[512], journal[400], sdir[PATH_MAX], realdir[PATH_MAX];
	uint64_t seed = seed_of_run(), rng = seed;
	uint64_t tot_acked = 0, tot_disk = 0, tot_unacked = 0, kinds[G_KINDS] = { 0 };
	int deleted = 0, truncated = 0, verbose = getenv("BE_VERBOSE") != NULL;

	fprintf(stderr,
		"powerloss[sync=%s, flush_bytes=%s]: seed %llu (BE_POWERLOSS_SEED=%llu repeats it)\n",
		sync_mode, flush_bytes, (unsigned long long)seed, (unsigned long long)seed);
	snprintf(stores, sizeof(stores),
		 "[store " STORE "]\ntype = raw\ncapacity = 64K\nflush_bytes = %s\n"
		 "flush_interval = 20ms\nsync = %s\nsegment_bytes = 64K\n", flush_bytes, sync_mode);
	tu_daemon_config(&d, "shutdown_flush_timeout = 10s\n", stores);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	memset(&prev, 0, sizeof(prev));
	snprintf(sdir, sizeof(sdir), "%s/%s", d.data_dir, STORE);

	for (unsigned round = 0; round < ROUNDS; round++) {
		struct cut_stats cs;
		pid_t pids[NW];
		uint64_t target, deadline, lost = 0, acked = 0, disk = 0, old_max;
		struct ring_map m;
		be_store *s;
		struct be_open_opts o = { .instance = d.instance,
					  .write_timeout_ms = tu_bound(10000) };
		uint8_t buf[128];
		long got;
		int st, writers_first;

		/* 1. The hooks daemon, journaling; round > 0: the disk as it is, durable. */
		snprintf(journal, sizeof(journal), "%s/journal.%u", d.dir, round);
		if (round > 0) {
			ck_assert_msg(realpath(sdir, realdir) != NULL, "%s", sdir);
			journal_seed(journal, realdir);
		}
		snprintf(d.log, sizeof(d.log), "%s/hooks.%u.log", d.dir, round);
		ck_assert_msg(start_hooks(&d, journal) == 0,
			      "round %u: bufferengined-hooks did not come up" LOGFMT, round,
			      LOGARGS(&d));

		/* 2. Writers, until a random number of records is acknowledged. */
		for (unsigned w = 0; w < NW; w++)
			pids[w] = spawn_writer(d.instance, sh, round, w, seed);
		target = 300 + rng_below(&rng, 4700);
		deadline = tu_now_ms() + (uint64_t)tu_bound(8000);
		while (acked_total(sh, round) < target) {
			for (unsigned w = 0; w < NW; w++)
				ck_assert_msg(!exited(pids[w], &st),
					      "round %u: writer %u ended with %d before the cut "
					      "(10 open, 11 write, 12 flush)" LOGFMT, round, w, st,
					      LOGARGS(&d));
			ck_assert_msg(!exited(d.pid, &st),
				      "round %u: the daemon ended with %d before the cut" LOGFMT,
				      round, st, LOGARGS(&d));
			ck_assert_msg(tu_now_ms() < deadline,
				      "round %u: %llu of %llu records acknowledged in %d ms" LOGFMT,
				      round, (unsigned long long)acked_total(sh, round),
				      (unsigned long long)target, tu_bound(8000), LOGARGS(&d));
			tu_sleep_ms(1);
		}
		/* Anywhere: mid-batch, between the write and its sync, after it. */
		{
			struct timespec ts = { 0, (long)rng_below(&rng, 8000) * 1000L };

			nanosleep(&ts, NULL);
		}

		/* 3. The power goes: everything dies, the daemon or the writers a little first. */
		writers_first = (int)rng_below(&rng, 2);
		if (writers_first)
			for (unsigned w = 0; w < NW; w++)
				kill(pids[w], SIGKILL);
		st = tu_daemon_stop(&d, SIGKILL);
		ck_assert_msg(st == 128 + SIGKILL, "round %u: the daemon ended with %d before the "
			      "cut" LOGFMT, round, st, LOGARGS(&d));
		for (unsigned w = 0; w < NW; w++)
			kill(pids[w], SIGKILL);
		for (unsigned w = 0; w < NW; w++) {
			ck_assert_int_eq(waitpid(pids[w], &st, 0), pids[w]);
			ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
				      "round %u: writer %u ended with %d, not by the cut "
				      "(10 open, 11 write, 12 flush)" LOGFMT, round, w,
				      WIFEXITED(st) ? WEXITSTATUS(st) : -1, LOGARGS(&d));
		}
		power_cut(&d, journal, &rng, &cs);

		/* 4. Reboot: the normal daemon recovers. */
		snprintf(d.log, sizeof(d.log), "%s/restart.%u.log", d.dir, round);
		ck_assert_msg(tu_daemon_start(&d, STORE) == 0,
			      "round %u: bufferengined did not come up after the cut (%s)" LOGFMT,
			      round, cs.what, LOGARGS(&d));
		ck_assert_msg(strstr(tu_file_text(d.log), "corrupt") == NULL,
			      "round %u: recovery found corruption; only torn tails were made "
			      "(%s)" LOGFMT, round, cs.what, LOGARGS(&d));
		if (cs.expect[0])
			ck_assert_msg(strstr(tu_file_text(d.log), cs.expect) != NULL,
				      "round %u: recovery did not say \"%s\" (%s)" LOGFMT, round,
				      cs.expect, cs.what, LOGARGS(&d));

		/* 5. Every acknowledged record, exactly once, in order; nothing damaged. */
		memset(&chk, 0, sizeof(chk));
		got = tu_read_store(d.data_dir, STORE, pl_rec, &chk);
		ck_assert_msg(got >= 0, "round %u: the store does not read back cleanly after "
			      "recovery (a torn tail or corruption left) (%s)" LOGFMT, round,
			      cs.what, LOGARGS(&d));
		for (unsigned r = 0; r <= round; r++) {
			for (unsigned w = 0; w < NW; w++) {
				uint64_t a = __atomic_load_n(&sh->acked[r][w], __ATOMIC_ACQUIRE);

				if (chk.next[r][w] < a)
					lost += a - chk.next[r][w];
				if (r == round) {
					acked += a;
					disk += chk.next[r][w];
				}
			}
		}
		ck_assert_msg(chk.err[0] == 0 && lost == 0,
			      "round %u (seed %llu): %llu acknowledged records lost, %llu "
			      "duplicated, %llu missing in a writer's sequence, %llu out of seq "
			      "order, %llu bad; first: %s (cut: %s)" LOGFMT,
			      round, (unsigned long long)seed, (unsigned long long)lost,
			      (unsigned long long)chk.dups, (unsigned long long)chk.gaps,
			      (unsigned long long)chk.disorder, (unsigned long long)chk.bad,
			      chk.err[0] ? chk.err : "-", cs.what, LOGARGS(&d));
		for (unsigned w = 0; w < NW; w++) {
			uint64_t wr = __atomic_load_n(&sh->written[round][w], __ATOMIC_ACQUIRE);

			/* A writer may die between be_write and publishing its count: +1. */
			ck_assert_msg(chk.next[round][w] <= wr + 1,
				      "round %u: writer %u has %llu records on disk, wrote %llu" LOGFMT,
				      round, w, (unsigned long long)chk.next[round][w],
				      (unsigned long long)wr, LOGARGS(&d));
		}
		/* What earlier rounds left (durable since their clean stop) is untouched. */
		for (unsigned r = 0; r < round; r++)
			for (unsigned w = 0; w <= POST_WRITER; w++)
				ck_assert_msg(chk.next[r][w] == prev.next[r][w],
					      "round %u: round %u writer %u now has %llu records, "
					      "had %llu" LOGFMT, round, r, w,
					      (unsigned long long)chk.next[r][w],
					      (unsigned long long)prev.next[r][w], LOGARGS(&d));

		/* 6. The new ring's seqs start above everything that was ever in a segment. */
		old_max = chk.max_seq;
		ck_assert_int_eq(ring_open(d.instance, STORE, RING_OPEN_RDONLY, &m), 0);
		{
			uint64_t first = READ_ONCE(m.hdr->first_seq);

			ring_unmap(&m);
			ck_assert_msg(first > old_max && first > cs.precut_max_seq,
				      "round %u: the new ring starts at seq %llu; the disk holds "
				      "up to %llu, segments held up to %llu before the cut" LOGFMT,
				      round, (unsigned long long)first,
				      (unsigned long long)old_max,
				      (unsigned long long)cs.precut_max_seq, LOGARGS(&d));
		}
		ck_assert_int_eq(be_open(STORE, &o, &s), 0);
		for (unsigned i = 0; i < POST_N; i++) {
			size_t len = pl_make(buf, round, POST_WRITER, i);
			int ret = be_write(s, buf, len);

			ck_assert_msg(ret == 0, "round %u: be_write after the restart: %s" LOGFMT,
				      round, be_strerror(ret), LOGARGS(&d));
		}
		st = be_flush(s, tu_bound(10000));
		ck_assert_msg(st == 0, "round %u: be_flush after the restart: %s" LOGFMT, round,
			      be_strerror(st), LOGARGS(&d));
		be_close(s);
		memset(&chk, 0, sizeof(chk));
		got = tu_read_store(d.data_dir, STORE, pl_rec, &chk);
		ck_assert_msg(got >= 0 && chk.err[0] == 0 && chk.next[round][POST_WRITER] == POST_N,
			      "round %u: after new writes: read %ld, %llu of %d new records, "
			      "%s" LOGFMT, round, got,
			      (unsigned long long)chk.next[round][POST_WRITER], POST_N,
			      chk.err[0] ? chk.err : "-", LOGARGS(&d));
		ck_assert_msg(chk.post_first_seq[round] > old_max,
			      "round %u: the first new record has seq %llu, the disk held %llu" LOGFMT,
			      round, (unsigned long long)chk.post_first_seq[round],
			      (unsigned long long)old_max, LOGARGS(&d));

		/* 7. A clean stop; what is there now is durable for the next round. */
		st = tu_daemon_stop(&d, SIGTERM);
		ck_assert_msg(st == 0, "round %u: bufferengined after SIGTERM: %d" LOGFMT, round, st,
			      LOGARGS(&d));
		{
			int fd = open(d.data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			ck_assert_int_ge(fd, 0);
			ck_assert_int_eq(syncfs(fd), 0);
			close(fd);
		}
		prev = chk;

		tot_acked += acked;
		tot_disk += disk;
		tot_unacked += disk - acked;
		deleted += cs.deleted;
		truncated += cs.truncated;
		for (int k = 0; k < G_KINDS; k++)
			kinds[k] += cs.kinds[k];
		if (verbose)
			fprintf(stderr,
				"powerloss[sync=%s] round %u: %s killed first; acked %llu, on disk "
				"%llu, lost 0, dup 0; %d segments, %d deleted, %d cut (%llu bytes), "
				"%d torn tails:%s\n", sync_mode, round,
				writers_first ? "writers" : "daemon", (unsigned long long)acked,
				(unsigned long long)disk, cs.files, cs.deleted, cs.truncated,
				(unsigned long long)cs.cut_bytes, cs.garbaged, cs.what);
	}
	fprintf(stderr,
		"powerloss[sync=%s]: %d rounds, %llu records acknowledged, %llu on disk after the "
		"cuts (%llu unacknowledged survivors), 0 lost, 0 duplicated; %d segments "
		"deleted, %d cut; torn tails: partial %llu, big %llu, zeros %llu, header %llu, "
		"stale %llu, real %llu\n", sync_mode, ROUNDS, (unsigned long long)tot_acked,
		(unsigned long long)tot_disk, (unsigned long long)tot_unacked, deleted, truncated,
		(unsigned long long)kinds[G_PARTIAL], (unsigned long long)kinds[G_BIG],
		(unsigned long long)kinds[G_ZERO], (unsigned long long)kinds[G_HDR],
		(unsigned long long)kinds[G_STALE], (unsigned long long)kinds[G_REAL]);
	munmap(sh, sizeof(*sh));
}

START_TEST(test_powerloss_sync_batch)
{
	run_powerloss("batch", "8K");
}
END_TEST

/*
 * flush_bytes = 256: batches of a few records, so that the next batch is
 * often written while the one before syncs (two in flight), and the cut
 * lands between them.
 */
START_TEST(test_powerloss_pipelined)
{
	run_powerloss("batch", "256");
}
END_TEST

START_TEST(test_powerloss_sync_none)
{
	run_powerloss("none", "8K");
}
END_TEST

Suite *powerloss_suite(void);

Suite *powerloss_suite(void)
{
	Suite *s = suite_create("powerloss");
	TCase *tc = tcase_create("powerloss");

	tcase_add_test(tc, test_powerloss_sync_batch);
	tcase_add_test(tc, test_powerloss_sync_none);
	tcase_add_test(tc, test_powerloss_pipelined);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);
	return s;
}
