/*
 * test_faults.c - injected I/O faults and a full disk (DESIGN.md, "The
 * daemon", Errors; Guarantees 1-3).
 *
 * Faults: the test build of the daemon (build/tests/bufferengined-hooks)
 * with BE_FAULTS=KIND:N turns the Nth write or sync completion into a
 * failed write (EIO), a short write, a failed fdatasync (EIO) or a
 * canceled one (ECANCELED).  Writer processes write and be_flush(); then
 * every record reads back exactly once and in order (no batch twice from
 * a rewrite, none lost), the segments hold no damage, the log names the
 * failure, and the ring's last_error is cleared once writing works again.
 * After a failed fdatasync the log names the cut, and the sync journal
 * (BE_SYNC_JOURNAL) shows the segment cut back to that offset and synced,
 * then synced again beyond it (the batch rewritten).
 *
 * Disk full: the data directory is a small tmpfs, filled up but for a
 * little room; a writer puts 2.5 MB into a 4 MiB ring.  The daemon must
 * record -ENOSPC in the ring while the records stay there (no drops); a
 * second store, whose directory is another tmpfs mounted inside the full
 * one (the config has one data_dir, so this is the only way to put two
 * stores on two filesystems), keeps flushing meanwhile; once the filler is
 * deleted every record lands, exactly once.  Needs root and mount(2): when
 * a probe mount fails, the test is left out with a "SKIP:" line (Check
 * has no skip).  A guardian process outside Check's process group
 * unmounts whatever happens to the test.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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

/* ------------------------------------------------------------------------
 * Writers and reading back.
 */

#define FR_MAGIC 0x544c5546u /* "FULT" */
#define MAX_WRITERS 4

struct frec {
	uint32_t magic;
	uint32_t writer;
	uint64_t counter;
};

static size_t fr_make(uint8_t *buf, size_t fixed, uint32_t writer, uint64_t counter)
{
	struct frec h = { FR_MAGIC, writer, counter };
	size_t n = fixed ? fixed : (size_t)((counter * 11 + writer * 5) % 61);

	memcpy(buf, &h, sizeof(h));
	for (size_t i = 0; i < n; i++)
		buf[sizeof(h) + i] = (uint8_t)(counter + i * 3 + writer);
	return sizeof(h) + n;
}

/*
 * spawn_writer() - a child that writes n records to store, be_flush()ing
 * every `every` records (0: only at the end), then be_close()s and exits 0;
 * on an error it exits 10 (open), 11 (write), 12 (flush), 13 (close).
 */
static pid_t spawn_writer(const char *instance, const char *store, uint32_t id, uint64_t n,
			  unsigned every, size_t fixed, int timeout_ms)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = timeout_ms };
	pid_t pid = tu_spawn();
	uint8_t buf[512];
	be_store *s;
	int ret;

	if (pid != 0)
		return pid;
	ret = be_open(store, &o, &s);
	if (ret) {
		fprintf(stderr, "faults writer %u: be_open: %s\n", id, be_strerror(ret));
		_exit(10);
	}
	for (uint64_t i = 0; i < n; i++) {
		ret = be_write(s, buf, fr_make(buf, fixed, id, i));
		if (ret) {
			fprintf(stderr, "faults writer %u: be_write #%llu: %s\n", id,
				(unsigned long long)i, be_strerror(ret));
			_exit(11);
		}
		if (every && (i + 1) % every == 0) {
			ret = be_flush(s, timeout_ms);
			if (ret) {
				fprintf(stderr, "faults writer %u: be_flush after #%llu: %s\n", id,
					(unsigned long long)i, be_strerror(ret));
				_exit(12);
			}
		}
	}
	ret = be_flush(s, timeout_ms);
	if (ret) {
		fprintf(stderr, "faults writer %u: final be_flush: %s\n", id, be_strerror(ret));
		_exit(12);
	}
	ret = be_close(s);
	if (ret) {
		fprintf(stderr, "faults writer %u: be_close: %s\n", id, be_strerror(ret));
		_exit(13);
	}
	_exit(0);
}

struct fcheck {
	uint32_t writers;
	size_t fixed;
	uint64_t next[MAX_WRITERS];
	uint64_t last_seq;
	long records;
	char err[256];
};

/* Each writer's counters 0, 1, 2...: exactly once, in order; seq increasing; payload intact. */
static int fcheck_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct fcheck *c = arg;
	uint8_t want[512];
	struct frec h;
	size_t len;

	c->records++;
	if (r->seq <= c->last_seq) {
		snprintf(c->err, sizeof(c->err), "record #%ld: seq %llu after seq %llu", c->records,
			 (unsigned long long)r->seq, (unsigned long long)c->last_seq);
		return 1;
	}
	c->last_seq = r->seq;
	if (r->type != BE_TYPE_RAW || r->len < sizeof(h)) {
		snprintf(c->err, sizeof(c->err), "record #%ld: type %u, len %u", c->records,
			 r->type, r->len);
		return 1;
	}
	memcpy(&h, payload, sizeof(h));
	if (h.magic != FR_MAGIC || h.writer >= c->writers) {
		snprintf(c->err, sizeof(c->err), "record #%ld (seq %llu): bad payload %08x/%u",
			 c->records, (unsigned long long)r->seq, h.magic, h.writer);
		return 1;
	}
	if (h.counter != c->next[h.writer]) {
		snprintf(c->err, sizeof(c->err),
			 "record #%ld (seq %llu): writer %u counter %llu, expected %llu (%s)",
			 c->records, (unsigned long long)r->seq, h.writer,
			 (unsigned long long)h.counter, (unsigned long long)c->next[h.writer],
			 h.counter < c->next[h.writer] ? "a duplicate" : "lost records");
		return 1;
	}
	len = fr_make(want, c->fixed, h.writer, h.counter);
	if (r->len != len || memcmp(payload, want, len) != 0) {
		snprintf(c->err, sizeof(c->err), "record #%ld (seq %llu): payload differs",
			 c->records, (unsigned long long)r->seq);
		return 1;
	}
	c->next[h.writer]++;
	return 0;
}

static void assert_read_back(struct tu_daemon *d, const char *store, uint32_t writers, uint64_t n,
			     size_t fixed, const char *what)
{
	struct fcheck c = { .writers = writers, .fixed = fixed };
	long got = tu_read_store(d->data_dir, store, fcheck_rec, &c);

	ck_assert_msg(c.err[0] == 0, "%s: %s: %s" LOGFMT, what, store, c.err, LOGARGS(d));
	ck_assert_msg(got == (long)(n * writers),
		      "%s: %s: read back %ld records (-1: damage in a segment), expected %llu" LOGFMT,
		      what, store, got, (unsigned long long)(n * writers), LOGARGS(d));
}

static int ring_last_error(const char *instance, const char *store, uint64_t *head,
			   uint64_t *tail, uint64_t *drops, uint32_t *state, uint64_t *recs)
{
	struct ring_map m;
	int err;

	if (ring_open(instance, store, RING_OPEN_RDONLY, &m))
		return 1;
	err = READ_ONCE(m.hdr->last_error);
	if (tail)
		*tail = load_acquire(&m.hdr->tail);
	if (head)
		*head = load_acquire(&m.hdr->head);
	if (drops)
		*drops = READ_ONCE(m.hdr->drops);
	if (state)
		*state = READ_ONCE(m.hdr->daemon_state);
	if (recs)
		*recs = READ_ONCE(m.hdr->next_seq) - READ_ONCE(m.hdr->first_seq);
	ring_unmap(&m);
	return err;
}

/* ------------------------------------------------------------------------
 * Injected faults.
 */

struct fault_case {
	const char *faults;      /* BE_FAULTS */
	const char *sync;        /* the store's sync mode */
	const char *expect[3];   /* lines the log must hold */
	int cut;                 /* a failed sync: the cut must show in the log and journal */
};

#define W_EIO "failed: Input/output error; records stay in the ring, retrying"
#define W_SHORT "failed: short write; records stay in the ring, retrying"
#define S_EIO_CUT "fdatasync failed: Input/output error; cutting the segment back to offset"
#define S_CAN_CUT "fdatasync failed: Operation canceled; cutting the segment back to offset"
#define AGAIN "writing again after"

static const struct fault_case fault_cases[] = {
	{ "write_eio:1", "batch", { W_EIO, AGAIN }, 0 },
	{ "write_eio:5", "batch", { W_EIO, AGAIN }, 0 },
	{ "write_short:2", "batch", { W_SHORT, AGAIN }, 0 },
	{ "write_short:6", "batch", { W_SHORT, AGAIN }, 0 },
	{ "sync_eio:1", "batch", { S_EIO_CUT, AGAIN }, 1 },
	{ "sync_eio:4", "batch", { S_EIO_CUT, AGAIN }, 1 },
	{ "sync_canceled:2", "batch", { S_CAN_CUT, AGAIN }, 1 },
	{ "sync_canceled:7", "batch", { S_CAN_CUT, AGAIN }, 1 },
	/*
	 * One batch failing three times in a row, each differently, then
	 * another.  (The short write is not asserted in the log: it follows
	 * an EIO in the same streak and is recorded as -EIO, and the daemon
	 * logs a streak's error only when it changes.)
	 */
	{ "write_eio:2,sync_eio:3,write_short:4,sync_canceled:6", "batch",
	  { W_EIO, S_EIO_CUT, S_CAN_CUT }, 1 },
	/* sync = none: writes alone, and fdatasyncs only for be_flush. */
	{ "write_eio:3,write_short:5", "none", { W_EIO, W_SHORT, AGAIN }, 0 },
	{ "sync_eio:2,sync_canceled:4", "none",
	  { "fdatasync failed: Input/output error", "fdatasync failed: Operation canceled" }, 0 },
};

#define FW 2         /* writers */
#define FN 2000      /* records each */
#define FEVERY 40    /* be_flush every FEVERY records */

/*
 * The cut after a failed sync: the journal must say the segment was synced
 * at exactly the offset the log names, and later synced beyond it.
 */
static void assert_cut_journaled(struct tu_daemon *d, const char *journal)
{
	const char *log = tu_file_text(d->log);
	const char *p = strstr(log, "cutting the segment back to offset ");
	unsigned long long off, len;
	char path[1024], cut_path[1024] = "", line[9000];
	int seen_cut = 0, synced_after = 0;
	FILE *f;

	ck_assert_msg(p != NULL, "no cut in the log" LOGFMT, LOGARGS(d));
	ck_assert_int_eq(sscanf(p, "cutting the segment back to offset %llu", &off), 1);
	f = fopen(journal, "r");
	ck_assert_msg(f != NULL, "%s: %s", journal, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "file %1023s %llu", path, &len) != 2)
			continue;
		if (!seen_cut && len == off && strstr(path, ".seg")) {
			seen_cut = 1;
			snprintf(cut_path, sizeof(cut_path), "%s", path);
		} else if (seen_cut && strcmp(path, cut_path) == 0 && len > off) {
			synced_after = 1;
		}
	}
	fclose(f);
	ck_assert_msg(seen_cut && synced_after,
		      "the sync journal %s: cut to %llu synced: %s; the batch synced again after "
		      "it: %s\n--- journal ---\n%s" LOGFMT, journal, off, seen_cut ? "yes" : "no",
		      synced_after ? "yes" : "no", tu_file_text(journal), LOGARGS(d));
}

static int count_faults(const char *faults)
{
	int n = 1;

	for (const char *p = faults; *p; p++)
		n += *p == ',';
	return n;
}

/* The sum of N over the log's "writing again after N failures" lines. */
static int failures_recovered(const char *log)
{
	int sum = 0;

	for (const char *p = strstr(log, AGAIN); p; p = strstr(p + 1, AGAIN)) {
		int n = 0;

		if (sscanf(p, AGAIN " %d", &n) == 1)
			sum += n;
	}
	return sum;
}

START_TEST(test_fault)
{
	const struct fault_case *fc = &fault_cases[_i];
	struct tu_daemon d;
	char stores[512], journal[400];
	pid_t pids[FW];
	uint64_t head, tail;
	int st, err;

	snprintf(stores, sizeof(stores),
		 "[store f]\ntype = raw\ncapacity = 256K\nflush_bytes = 16K\nflush_interval = 20ms\n"
		 "sync = %s\nsegment_bytes = 64K\n", fc->sync);
	tu_daemon_config(&d, NULL, stores);
	snprintf(journal, sizeof(journal), "%s/journal", d.dir);
	setenv("BE_FAULTS", fc->faults, 1);
	setenv("BE_SYNC_JOURNAL", journal, 1);
	st = tu_daemon_start_bin(&d, "f", BE_TEST_DIR "/bufferengined-hooks");
	unsetenv("BE_FAULTS");
	unsetenv("BE_SYNC_JOURNAL");
	ck_assert_msg(st == 0, "[%s] bufferengined-hooks did not come up" LOGFMT, fc->faults,
		      LOGARGS(&d));

	for (uint32_t w = 0; w < FW; w++)
		pids[w] = spawn_writer(d.instance, "f", w, FN, FEVERY, 0, tu_bound(10000));
	for (uint32_t w = 0; w < FW; w++) {
		st = tu_wait_exit(pids[w], tu_bound(15000));
		ck_assert_msg(st == 0,
			      "[%s] writer %u ended with %d (10 open, 11 write, 12 flush, 13 close, "
			      "-2 still running)" LOGFMT, fc->faults, w, st, LOGARGS(&d));
	}

	/* Everything the writers were told is durable is there, once, in order, undamaged. */
	assert_read_back(&d, "f", FW, FN, 0, fc->faults);
	for (int i = 0; i < 3 && fc->expect[i]; i++)
		ck_assert_msg(strstr(tu_file_text(d.log), fc->expect[i]) != NULL,
			      "[%s] the log does not say \"%s\"" LOGFMT, fc->faults, fc->expect[i],
			      LOGARGS(&d));
	if (fc->cut)
		assert_cut_journaled(&d, journal);
	/* With sync = batch every batch completes whole, and clears the error. */
	err = ring_last_error(d.instance, "f", &head, &tail, NULL, NULL, NULL);
	ck_assert_msg(head == tail, "[%s] head %llu, tail %llu after every writer flushed" LOGFMT,
		      fc->faults, (unsigned long long)head, (unsigned long long)tail, LOGARGS(&d));
	if (strcmp(fc->sync, "batch") == 0) {
		ck_assert_msg(err == 0, "[%s] last_error %d after writing worked again" LOGFMT,
			      fc->faults, err, LOGARGS(&d));
		/* Every completion belongs to a batch: each fault was one failure, recovered. */
		ck_assert_msg(failures_recovered(tu_file_text(d.log)) == count_faults(fc->faults),
			      "[%s] the log counts %d failures recovered from, %d were injected"
			      LOGFMT, fc->faults, failures_recovered(tu_file_text(d.log)),
			      count_faults(fc->faults), LOGARGS(&d));
	}

	st = tu_daemon_stop(&d, SIGTERM);
	ck_assert_msg(st == 0, "[%s] daemon after SIGTERM: %d" LOGFMT, fc->faults, st, LOGARGS(&d));
	assert_read_back(&d, "f", FW, FN, 0, fc->faults);
}
END_TEST

/* ------------------------------------------------------------------------
 * A full disk.
 */

static int mount_tmpfs(const char *dir, const char *size)
{
	char opts[64];

	snprintf(opts, sizeof(opts), "size=%s,mode=0755", size);
	return mount("tmpfs", dir, "tmpfs", 0, opts) == 0 ? 0 : -errno;
}

/*
 * A process outside Check's process group that unmounts both mounts when
 * the test process is gone, however it ends (Check runs no teardown after
 * a failure, and kills the test's process group).
 */
static pid_t spawn_guardian(const char *inner, const char *outer)
{
	int p[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c;

		setpgid(0, 0);
		for (int fd = 3; fd < 1024; fd++)
			if (fd != p[0])
				close(fd);
		while (read(p[0], &c, 1) != 0 && errno == EINTR)
			;
		umount2(inner, MNT_DETACH);
		umount2(outer, MNT_DETACH);
		_exit(0);
	}
	close(p[0]);
	/* p[1] stays open in this process until it ends. */
	return pid;
}

static uint64_t tmpfs_fill(const char *path, uint64_t leave)
{
	static uint8_t chunk[64 * 1024];
	uint64_t size = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	memset(chunk, 0xa5, sizeof(chunk));
	for (;;) {
		ssize_t n = write(fd, chunk, sizeof(chunk));

		if (n <= 0)
			break;
		size += (uint64_t)n;
	}
	ck_assert_msg(size > leave, "filler: only %llu bytes fit", (unsigned long long)size);
	ck_assert_int_eq(ftruncate(fd, (off_t)(size - leave)), 0);
	close(fd);
	return size - leave;
}

#define FULL_N 16000     /* records of 128 bytes: 2.5 MB with headers, in a 4 MiB ring */
#define FULL_PAYLOAD 112 /* + 16 bytes of struct frec */
#define T_N 1000

START_TEST(test_disk_full)
{
	struct tu_daemon d;
	char inner[400], filler[400];
	struct be_open_opts o;
	uint64_t head = 0, tail = 0, drops = 1, recs = 0, deadline;
	uint32_t state = 0;
	be_store *s;
	uint8_t buf[512];
	pid_t writer;
	int st, err = 0, full_err;
	const char *stores =
		"[store full]\ntype = raw\ncapacity = 4M\nflush_bytes = 64K\nflush_interval = 20ms\n"
		"sync = batch\nsegment_bytes = 64M\n"
		"[store t]\ntype = raw\ncapacity = 256K\nflush_bytes = 16K\nflush_interval = 20ms\n"
		"sync = batch\nsegment_bytes = 64M\n";

	tu_daemon_config(&d, "max_workers = 2\n", stores);
	ck_assert_int_eq(mkdir(d.data_dir, 0750), 0);
	st = mount_tmpfs(d.data_dir, "4m");
	ck_assert_msg(st == 0, "mount tmpfs on %s: %s", d.data_dir, strerror(-st));
	snprintf(inner, sizeof(inner), "%s/t", d.data_dir);
	ck_assert_int_eq(mkdir(inner, 0750), 0);
	st = mount_tmpfs(inner, "8m");
	if (st)
		umount2(d.data_dir, MNT_DETACH);
	ck_assert_msg(st == 0, "mount tmpfs on %s: %s", inner, strerror(-st));
	spawn_guardian(inner, d.data_dir);

	tu_assert_daemon_start(&d, "full");
	snprintf(filler, sizeof(filler), "%s/filler", d.data_dir);
	tmpfs_fill(filler, 96 * 1024);

	/* 2.5 MB of records into a disk with 96 KiB free. */
	writer = spawn_writer(d.instance, "full", 0, FULL_N, 0, FULL_PAYLOAD, tu_bound(20000));

	/* The daemon must say why it cannot write, and keep the records in the ring. */
	deadline = tu_now_ms() + (uint64_t)tu_bound(8000);
	for (;;) {
		err = ring_last_error(d.instance, "full", &head, &tail, &drops, &state, &recs);
		if (err && recs == FULL_N)
			break;
		ck_assert_msg(tu_now_ms() < deadline,
			      "no error recorded in %d ms with the disk full: last_error %d, head "
			      "%llu, tail %llu, %llu records in" LOGFMT,
			      tu_bound(8000), err, (unsigned long long)head,
			      (unsigned long long)tail, (unsigned long long)recs, LOGARGS(&d));
		ck_assert_msg(waitpid(writer, &st, WNOHANG) == 0,
			      "the writer ended while the disk was full (status 0x%x)" LOGFMT, st,
			      LOGARGS(&d));
		tu_sleep_ms(5);
	}
	full_err = err;
	ck_assert_msg(head > tail && drops == 0 && state == RING_DAEMON_RUNNING,
		      "disk full: head %llu, tail %llu (records must stay in the ring), drops %llu, "
		      "daemon state %u (1 = running)" LOGFMT, (unsigned long long)head,
		      (unsigned long long)tail, (unsigned long long)drops, state, LOGARGS(&d));

	/* Another store, on a filesystem with room, keeps flushing meanwhile. */
	o = (struct be_open_opts){ .instance = d.instance, .write_timeout_ms = tu_bound(5000) };
	ck_assert_int_eq(be_open("t", &o, &s), 0);
	for (uint64_t i = 0; i < T_N; i++)
		ck_assert_int_eq(be_write(s, buf, fr_make(buf, 0, 0, i)), 0);
	st = be_flush(s, tu_bound(5000));
	ck_assert_msg(st == 0, "store t, beside the full one: be_flush: %s" LOGFMT,
		      be_strerror(st), LOGARGS(&d));
	be_close(s);
	assert_read_back(&d, "t", 1, T_N, 0, "beside a full store");
	/* ... while the full one is still stuck (the disk is still full). */
	err = ring_last_error(d.instance, "full", &head, &tail, &drops, NULL, NULL);
	ck_assert_msg(err != 0 && head > tail && waitpid(writer, &st, WNOHANG) == 0,
		      "the full store moved while its disk was full: last_error %d, head %llu, "
		      "tail %llu" LOGFMT, err, (unsigned long long)head, (unsigned long long)tail,
		      LOGARGS(&d));

	/* Room again: every record lands, exactly once. */
	ck_assert_int_eq(unlink(filler), 0);
	st = tu_wait_exit(writer, tu_bound(15000));
	ck_assert_msg(st == 0, "the writer after the disk had room again: %d (12: be_flush, -2: "
		      "still running)" LOGFMT, st, LOGARGS(&d));
	assert_read_back(&d, "full", 1, FULL_N, FULL_PAYLOAD, "after the disk had room again");
	err = ring_last_error(d.instance, "full", &head, &tail, &drops, NULL, NULL);
	ck_assert_msg(err == 0 && head == tail && drops == 0,
		      "after recovery: last_error %d, head %llu, tail %llu, drops %llu" LOGFMT, err,
		      (unsigned long long)head, (unsigned long long)tail,
		      (unsigned long long)drops, LOGARGS(&d));
	ck_assert_msg(strstr(tu_file_text(d.log), AGAIN) != NULL,
		      "the log does not say the store writes again" LOGFMT, LOGARGS(&d));

	st = tu_daemon_stop(&d, SIGTERM);
	ck_assert_msg(st == 0, "daemon after SIGTERM: %d" LOGFMT, st, LOGARGS(&d));
	ck_assert_int_eq(umount2(inner, MNT_DETACH), 0);
	ck_assert_int_eq(umount2(d.data_dir, MNT_DETACH), 0);

	/* Last, so that everything above was checked too: what shm-dump must show. */
	ck_assert_msg(full_err == -ENOSPC,
		      "with the disk full the ring's last_error was %d (%s), not -ENOSPC (%d)"
		      LOGFMT, full_err, strerror(-full_err), -ENOSPC, LOGARGS(&d));
}
END_TEST

/* Can this process mount a tmpfs?  0, or -errno. */
static int probe_mount(void)
{
	char dir[] = "/tmp/be-faults-probe.XXXXXX";
	int ret;

	if (geteuid() != 0)
		return -EPERM;
	if (!mkdtemp(dir))
		return -errno;
	ret = mount_tmpfs(dir, "64k");
	if (ret == 0)
		umount2(dir, MNT_DETACH);
	rmdir(dir);
	return ret;
}

/*
 * sync = none: batches leave the ring unsynced; when the fdatasync that a
 * be_flush asks for then fails, those records may be lost.  They must
 * never be reported durable: that be_flush fails with EIO, and records
 * written after it are acknowledged as usual.
 */
START_TEST(test_sync_none_lost)
{
	struct tu_daemon d;
	struct ring_map m;
	struct be_open_opts o = { .write_timeout_ms = 2000 };
	be_store *s;
	int ret;

	setenv("BE_FAULTS", "sync_eio:1", 1);
	tu_daemon_config(&d, NULL, "[store n]\ntype = raw\ncapacity = 256K\nsync = none\n"
			 "flush_interval = 20ms\n");
	ck_assert_msg(tu_daemon_start_bin(&d, "n", BE_TEST_DIR "/bufferengined-hooks") == 0,
		      "daemon: %s", tu_file_text(d.log));
	o.instance = d.instance;
	ck_assert_int_eq(be_open("n", &o, &s), 0);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(be_write(s, "lost?", 5), 0);
	/* Wait until the interval flush wrote them, without a sync. */
	ck_assert_int_eq(ring_open(d.instance, "n", RING_OPEN_RDONLY, &m), 0);
	for (int i = 0; i < tu_bound(5000) && READ_ONCE(m.hdr->tail) != READ_ONCE(m.hdr->head); i++)
		tu_sleep_ms(1);
	ck_assert_uint_eq(READ_ONCE(m.hdr->tail), READ_ONCE(m.hdr->head));
	ck_assert_uint_eq(READ_ONCE(m.hdr->syncs), 0);
	/* The sync this asks for fails: the records are not acknowledged. */
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == -EIO, "be_flush: %d, log: %s", ret, tu_file_text(d.log));
	ck_assert_ptr_nonnull(strstr(tu_file_text(d.log), "may be lost: be_flush reports them"));
	ring_unmap(&m);
	be_close(s);
	/* A new handle's records are acknowledged again. */
	ck_assert_int_eq(be_open("n", &o, &s), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(be_write(s, "later", 5), 0);
	ret = be_flush(s, tu_bound(5000));
	ck_assert_msg(ret == 0, "be_flush: %d, log: %s", ret, tu_file_text(d.log));
	be_close(s);
	ck_assert_int_eq(tu_daemon_stop(&d, SIGTERM), 0);
	unsetenv("BE_FAULTS");
	/* The cut took the unsynced batches out: the disk holds what it claims. */
	ck_assert_int_ge(tu_read_store(d.data_dir, "n", NULL, NULL), 10);
}
END_TEST

Suite *faults_suite(void);

Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("injected");
	TCase *full = tcase_create("disk_full");
	int ret;

	tcase_add_loop_test(tc, test_fault, 0, (int)(sizeof(fault_cases) / sizeof(fault_cases[0])));
	tcase_add_test(tc, test_sync_none_lost);
	tcase_set_timeout(tc, 20);
	suite_add_tcase(s, tc);

	ret = probe_mount();
	if (ret) {
		printf("SKIP: faults: test_disk_full: cannot mount a tmpfs (%s); it needs root and "
		       "mount(2)\n", strerror(-ret));
		return s;
	}
	tcase_add_test(full, test_disk_full);
	tcase_set_timeout(full, 30);
	suite_add_tcase(s, full);
	return s;
}
