/*
 * testutil.c - see testutil.h.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"

#include "server/segment.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

static char run_id[32];
static unsigned seq_no;

const char *tu_run_id(void)
{
	const char *e;

	if (run_id[0])
		return run_id;
	e = getenv("BE_TEST_RUN");
	if (e && ring_name_valid(e) && strlen(e) < 20) {
		snprintf(run_id, sizeof(run_id), "%s", e);
	} else {
		snprintf(run_id, sizeof(run_id), "%d", (int)getpid());
		setenv("BE_TEST_RUN", run_id, 1);
	}
	return run_id;
}

static void run_dir(char *out, size_t len)
{
	snprintf(out, len, "/tmp/be-test-%s", tu_run_id());
	mkdir(out, 0755);
}

void tu_instance(char *out, size_t len)
{
	/* The pid keeps forked test processes apart; seq_no the calls of one. */
	snprintf(out, len, "ck%sx%dx%u", tu_run_id(), (int)getpid(), seq_no++);
}

void tu_tmpdir(char *out, size_t len)
{
	char base[64];

	run_dir(base, sizeof(base));
	snprintf(out, len, "%s/d%dx%u", base, (int)getpid(), seq_no++);
	mkdir(out, 0755);
}

void tu_daemon_config(struct tu_daemon *d, const char *engine_extra, const char *stores)
{
	FILE *f;

	memset(d, 0, sizeof(*d));
	tu_instance(d->instance, sizeof(d->instance));
	tu_tmpdir(d->dir, sizeof(d->dir));
	snprintf(d->conf, sizeof(d->conf), "%s/be.conf", d->dir);
	snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	f = fopen(d->conf, "w");
	if (!f)
		abort();
	fprintf(f, "[engine]\ninstance = %s\ndata_dir = %s\n%s\n%s", d->instance, d->data_dir,
		engine_extra ? engine_extra : "", stores);
	fclose(f);
}

static void pid_path(char *path, size_t len, pid_t pid)
{
	run_dir(path, len);
	snprintf(path + strlen(path), len - strlen(path), "/pid.%d", (int)pid);
}

void tu_note_pid(pid_t pid)
{
	char path[128];
	int fd;

	pid_path(path, sizeof(path), pid);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

/* A reaped daemon's pid may soon be someone else's: forget it. */
void tu_forget_pid(pid_t pid)
{
	char path[128];

	pid_path(path, sizeof(path), pid);
	unlink(path);
}

int tu_daemon_start(struct tu_daemon *d, const char *wait_store)
{
	return tu_daemon_start_bin(d, wait_store, BE_BIN_DIR "/bufferengined");
}

pid_t tu_daemon_spawn(const struct tu_daemon *d, const char *path, const char *env)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (env)
			putenv((char *)env); /* this child's copy of the environment only */
		execl(path, "bufferengined", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
	tu_note_pid(pid);
	return pid;
}

int tu_ring_attached(const char *instance, const char *store, pid_t pid)
{
	struct ring_map m;
	uint32_t dp, state;

	if (ring_open(instance, store, RING_OPEN_RDONLY, &m) != 0)
		return 0;
	dp = READ_ONCE(m.hdr->daemon_pid);
	state = READ_ONCE(m.hdr->daemon_state);
	ring_unmap(&m);
	return dp == (uint32_t)pid && state == RING_DAEMON_RUNNING;
}

int tu_daemon_start_bin(struct tu_daemon *d, const char *wait_store, const char *path)
{
	pid_t pid = tu_daemon_spawn(d, path, NULL);

	if (pid < 0)
		return -1;
	d->pid = pid;
	for (int i = 0; i < 2000; i++) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			tu_forget_pid(pid);
			d->pid = 0;
			return -1;
		}
		if (tu_ring_attached(d->instance, wait_store, pid))
			return 0;
		tu_sleep_ms(5);
	}
	return -1;
}

int tu_daemon_stop(struct tu_daemon *d, int sig)
{
	int status;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	if (waitpid(d->pid, &status, 0) != d->pid)
		return -1;
	tu_forget_pid(d->pid);
	d->pid = 0;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* What a failure message adds: the daemon's log. */
#define LOGFMT	   "\n--- daemon log %s ---\n%s"
#define LOGARGS(d) (d)->log, tu_file_text((d)->log)

void tu_assert_daemon_start(struct tu_daemon *d, const char *wait_store)
{
	ck_assert_msg(tu_daemon_start(d, wait_store) == 0, "bufferengined did not come up" LOGFMT,
		      LOGARGS(d));
}

void tu_assert_daemon_stop(struct tu_daemon *d, int sig, int want)
{
	int st;

	ck_assert_int_gt(d->pid, 0);
	kill(d->pid, sig);
	st = tu_wait_exit(d->pid, tu_bound(15000));
	tu_forget_pid(d->pid);
	d->pid = 0;
	ck_assert_msg(st == want,
		      "bufferengined after signal %d: status %d, expected %d "
		      "(-2: still running after %d ms, killed)" LOGFMT,
		      sig, st, want, tu_bound(15000), LOGARGS(d));
}

struct read_ctx {
	tu_record_fn fn;
	void *arg;
	long count;
	int stop;
};

static int read_batch(const struct seg_batch_ref *b, void *arg)
{
	struct read_ctx *c = arg;
	uint64_t off = 0;

	while (off < b->hdr->length) {
		const struct rec_hdr *r = (const struct rec_hdr *)(b->records + off);

		c->count++;
		if (c->fn && c->fn(r, b->records + off + sizeof(*r), c->arg)) {
			c->stop = 1;
			return 1;
		}
		off += rec_size(r->len);
	}
	return 0;
}

long tu_read_store(const char *data_dir, const char *store, tu_record_fn fn, void *arg)
{
	struct read_ctx c = { .fn = fn, .arg = arg };
	char path[512];
	uint64_t *seqs = NULL;
	int dirfd, n;

	snprintf(path, sizeof(path), "%s/%s", data_dir, store);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	n = seg_list(dirfd, &seqs);
	for (int i = 0; i < n && !c.stop; i++) {
		struct seg_scan_result r;
		char name[SEG_NAME_LEN + 1];
		int fd, ret;

		seg_name(name, seqs[i]);
		fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			c.count = -1;
			break;
		}
		ret = seg_scan(fd, &r, read_batch, NULL, &c);
		close(fd);
		if ((ret < 0) || r.corrupt || r.torn_bytes) {
			c.count = -1;
			break;
		}
	}
	free(seqs);
	close(dirfd);
	return n < 0 ? -1 : c.count;
}

int tu_wcheck_rec(const struct rec_hdr *r, const uint8_t *payload, void *arg)
{
	struct tu_wcheck *c = arg;
	struct tu_wrec w;

	c->records++;
	if (r->type != BE_TYPE_RAW || r->len != sizeof(w)) {
		snprintf(c->err, sizeof(c->err), "record #%ld: type %u, len %u", c->records,
			 r->type, r->len);
		return 1;
	}
	if (r->seq <= c->last_seq) {
		snprintf(c->err, sizeof(c->err), "record #%ld: seq %llu after seq %llu",
			 c->records, (unsigned long long)r->seq, (unsigned long long)c->last_seq);
		return 1;
	}
	c->last_seq = r->seq;
	memcpy(&w, payload, sizeof(w));
	if (w.magic != c->magic || w.writer >= c->writers || w.writer >= TU_WRITERS_MAX) {
		snprintf(c->err, sizeof(c->err), "record #%ld (seq %llu): foreign payload %08x/%u",
			 c->records, (unsigned long long)r->seq, w.magic, w.writer);
		return 1;
	}
	if (w.counter != c->next[w.writer]) {
		snprintf(c->err, sizeof(c->err),
			 "record #%ld (seq %llu): writer %u counter %llu, expected %llu (%s)",
			 c->records, (unsigned long long)r->seq, w.writer,
			 (unsigned long long)w.counter, (unsigned long long)c->next[w.writer],
			 w.counter < c->next[w.writer] ? "duplicate or out of order" : "lost");
		return 1;
	}
	if (c->pids[w.writer] && r->pid != (uint32_t)c->pids[w.writer]) {
		snprintf(c->err, sizeof(c->err), "record #%ld: pid %u, writer %u is pid %d",
			 c->records, r->pid, w.writer, (int)c->pids[w.writer]);
		return 1;
	}
	c->next[w.writer]++;
	return 0;
}

void tu_rm_rf(const char *path)
{
	struct stat st;
	DIR *dir;
	struct dirent *e;

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode) && (dir = opendir(path))) {
		while ((e = readdir(dir))) {
			char sub[1024];

			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			tu_rm_rf(sub);
		}
		closedir(dir);
		rmdir(path);
	} else {
		unlink(path);
	}
}

void tu_cleanup_run(void)
{
	char dir[64], prefix[64];
	DIR *d;
	struct dirent *e;

	run_dir(dir, sizeof(dir));
	/* Daemons first: they hold rings and files. */
	if ((d = opendir(dir))) {
		while ((e = readdir(d))) {
			int pid;

			if (sscanf(e->d_name, "pid.%d", &pid) == 1 && pid > 1) {
				if (kill(pid, SIGKILL) == 0)
					waitpid(pid, NULL, 0);
			}
		}
		closedir(d);
	}
	snprintf(prefix, sizeof(prefix), RING_SHM_PREFIX "ck%sx", tu_run_id());
	if ((d = opendir(RING_SHM_DIR))) {
		while ((e = readdir(d))) {
			char path[512];

			if (strncmp(e->d_name, prefix, strlen(prefix)))
				continue;
			snprintf(path, sizeof(path), RING_SHM_DIR "/%s", e->d_name);
			unlink(path);
		}
		closedir(d);
	}
	tu_rm_rf(dir);
}

const char *tu_read_text(const char *path, char *buf, size_t len)
{
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

const char *tu_file_text(const char *path)
{
	static char buf[8192];

	return tu_read_text(path, buf, sizeof(buf));
}

/* ------------------------------------------------------------------------
 * Time, bounded waits and child processes.
 */

uint64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tu_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

void tu_sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

int tu_bound(int ms)
{
	const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
	int mult = m ? atoi(m) : 1;

	return ms * (mult > 1 ? mult : 1);
}

int tu_reap(pid_t pid, int timeout_ms, int *status)
{
	uint64_t end = tu_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		pid_t r = waitpid(pid, status, timeout_ms < 0 ? 0 : WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (timeout_ms < 0)
			continue;
		if (tu_now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -2;
		}
		tu_sleep_ms(1);
	}
}

int tu_wait_exit(pid_t pid, int timeout_ms)
{
	int status, r = tu_reap(pid, timeout_ms, &status);

	if (r < 0)
		return r;
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

int tu_wait_bounded(pid_t pid, int ms)
{
	int status;

	return tu_reap(pid, tu_bound(ms), &status) == 0 ? status : -1;
}

pid_t tu_spawn(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
	}
	return pid;
}

int tu_run_prog(char *const argv[], const char *input, const char *out_path, const char *err_path,
		int timeout_ms)
{
	int in[2], st;
	pid_t pid;

	signal(SIGPIPE, SIG_IGN); /* a child that exits before reading stdin */
	if (pipe2(in, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(in[0]);
		close(in[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : null;
		int err = !err_path ? null
			  : out_path && !strcmp(err_path, out_path)
				  ? out
				  : open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (null < 0 || out < 0 || err < 0)
			_exit(126);
		dup2(in[0], 0);
		dup2(out, 1);
		dup2(err, 2);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], argv);
		_exit(127);
	}
	tu_note_pid(pid);
	close(in[0]);
	for (size_t done = 0, len = input ? strlen(input) : 0; done < len;) {
		ssize_t n = write(in[1], input + done, len - done);

		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(in[1]);
	st = tu_wait_exit(pid, timeout_ms); /* reaps it, whatever happened */
	tu_forget_pid(pid);
	return st;
}

uint64_t tu_rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : UINT64_C(0x9e3779b97f4a7c15);

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* ------------------------------------------------------------------------
 * Files and text.
 */

off_t tu_file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* The text of path from byte `from` into buf (its last len - 1 bytes when longer). */
static const char *text_into(const char *path, off_t from, char *buf, size_t len)
{
	off_t size = tu_file_size(path);
	ssize_t n = 0;
	int fd;

	buf[0] = 0;
	if (size < 0)
		return buf;
	if (size - from > (off_t)len - 1)
		from = size - (off_t)(len - 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return buf;
	n = pread(fd, buf, len - 1, from);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

const char *tu_text_from(const char *path, off_t from)
{
	static char text_buf[49152];

	return text_into(path, from, text_buf, sizeof(text_buf));
}

const char *tu_log_tail(const char *path, off_t from)
{
	static char tail_buf[2600];

	return text_into(path, from, tail_buf, sizeof(tail_buf));
}

int tu_has_line_with(const char *text, const char *a, const char *b)
{
	for (const char *l = text; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char line[1200];

		snprintf(line, sizeof(line), "%.*s",
			 (int)(len < sizeof(line) ? len : sizeof(line) - 1), l);
		if (strstr(line, a) && strstr(line, b))
			return 1;
		l = nl ? nl + 1 : NULL;
	}
	return 0;
}

const char *tu_where_is(pid_t pid)
{
	static char buf[600];
	char path[64], wchan[64] = "", sc[96] = "", *nl;
	FILE *f;

	if (pid <= 0)
		return "(exited)";
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	if ((f = fopen(path, "re"))) {
		if (!fgets(wchan, sizeof(wchan), f))
			wchan[0] = 0;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	if ((f = fopen(path, "re"))) {
		if (!fgets(sc, sizeof(sc), f))
			sc[0] = 0;
		fclose(f);
	}
	if ((nl = strchr(sc, '\n')))
		*nl = 0;
	snprintf(buf, sizeof(buf), "(pid %d still running: wchan '%s', syscall '%s')", (int)pid,
		 wchan, sc);
	return buf;
}

/* ------------------------------------------------------------------------
 * Rings by hand.
 */

void tu_mkring(struct ring_map *m, char *inst, const struct ring_params *p)
{
	int ret;

	tu_instance(inst, 64);
	ret = ring_create(inst, p, m);
	ck_assert_msg(ret == 0, "ring_create(%s, %s): %s", inst, p->store, be_strerror(ret));
}

void tu_rmring(struct ring_map *m, const char *inst, const char *store)
{
	ring_unmap(m);
	ring_unlink(inst, store);
}
