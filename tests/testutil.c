/*
 * testutil.c - see testutil.h.
 */
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

int tu_daemon_start_bin(struct tu_daemon *d, const char *wait_store, const char *path)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(path, "bufferengined", "-c", d->conf, (char *)NULL);
		_exit(127);
	}
	d->pid = pid;
	tu_note_pid(pid);
	for (int i = 0; i < 2000; i++) {
		struct ring_map m;
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			tu_forget_pid(pid);
			d->pid = 0;
			return -1;
		}
		if (ring_open(d->instance, wait_store, RING_OPEN_RDONLY, &m) == 0) {
			uint32_t dp = READ_ONCE(m.hdr->daemon_pid);
			uint32_t state = READ_ONCE(m.hdr->daemon_state);

			ring_unmap(&m);
			if (dp == (uint32_t)pid && state == RING_DAEMON_RUNNING)
				return 0;
		}
		nanosleep(&ts, NULL);
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

static void rm_rf(const char *path)
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
			rm_rf(sub);
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
	rm_rf(dir);
}

const char *tu_file_text(const char *path)
{
	static char buf[8192];
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	buf[0] = 0;
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	return buf;
}
