/*
 * hooks.c - the test build's crash points, fault injection and sync
 * journal (see hooks.h).  Empty in the real daemon.
 */
#ifdef BE_TEST_HOOKS
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/hooks.h"

#define HOOK_FAULTS_MAX 16

static int hook_ready;
static char crash_at[64];
static unsigned long crash_n = 1, crash_hits;
static struct {
	char name[64];
	unsigned long n;
} faults[HOOK_FAULTS_MAX];
static int nfaults;
static unsigned long writes_seen, syncs_seen;
static int journal_fd = -1;
static int no_sync;

static void hook_init(void)
{
	const char *e;

	if (hook_ready)
		return;
	hook_ready = 1;
	e = getenv("BE_CRASH_AT");
	if (e && *e) {
		const char *colon = strchr(e, ':');
		size_t n = colon ? (size_t)(colon - e) : strlen(e);

		if (n >= sizeof(crash_at))
			n = sizeof(crash_at) - 1;
		memcpy(crash_at, e, n);
		crash_at[n] = '\0';
		if (colon)
			crash_n = strtoul(colon + 1, NULL, 10);
		if (!crash_n)
			crash_n = 1;
	}
	e = getenv("BE_FAULTS");
	while (e && *e && nfaults < HOOK_FAULTS_MAX) {
		const char *end = strchr(e, ',');
		size_t len = end ? (size_t)(end - e) : strlen(e);
		char item[64];
		char *colon;

		if (len >= sizeof(item))
			len = sizeof(item) - 1;
		memcpy(item, e, len);
		item[len] = 0;
		colon = strchr(item, ':');
		if (colon) {
			*colon = 0;
			snprintf(faults[nfaults].name, sizeof(faults[nfaults].name), "%s", item);
			faults[nfaults].n = strtoul(colon + 1, NULL, 10);
			nfaults++;
		}
		e = end ? end + 1 : NULL;
	}
	e = getenv("BE_SYNC_JOURNAL");
	if (e && *e)
		journal_fd = open(e, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	e = getenv("BE_NO_FDATASYNC");
	no_sync = e && *e && strcmp(e, "0") != 0;
}

void hook_point(const char *name)
{
	hook_init();
	if (crash_at[0] && strcmp(name, crash_at) == 0 && ++crash_hits == crash_n) {
		static const char msg[] = "bufferengined: test hook: crashing at ";

		if (write(2, msg, sizeof(msg) - 1) > 0 && write(2, name, strlen(name)) > 0)
			(void)!write(2, "\n", 1);
		raise(SIGKILL);
	}
}

static int fault_due(const char *name, unsigned long count)
{
	for (int i = 0; i < nfaults; i++)
		if (strcmp(faults[i].name, name) == 0 && faults[i].n == count)
			return 1;
	return 0;
}

int hook_fault(int kind, int res)
{
	hook_init();
	if (kind == HOOK_WRITE) {
		writes_seen++;
		if (fault_due("write_eio", writes_seen))
			return -EIO;
		if (fault_due("write_short", writes_seen) && res > 8)
			return res / 2;
	} else if (kind == HOOK_SYNC) {
		syncs_seen++;
		if (fault_due("sync_eio", syncs_seen))
			return -EIO;
		if (fault_due("sync_canceled", syncs_seen))
			return -ECANCELED;
	}
	return res;
}

/*
 * A sync that was left out (BE_NO_FDATASYNC) made nothing durable: nothing
 * is journaled, so that a power-loss simulation then cuts what it claimed.
 */
static void journal(const char *line, size_t n)
{
	if (journal_fd >= 0 && !no_sync)
		(void)!write(journal_fd, line, n);
}

static int fd_path(int fd, char *out, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, len - 1);
	if (n < 0)
		return -1;
	out[n] = 0;
	return 0;
}

void hook_synced(int dirfd, const char *name, uint64_t len)
{
	char dir[1024], line[1400];
	int n;

	hook_init();
	if (journal_fd < 0 || fd_path(dirfd, dir, sizeof(dir)))
		return;
	n = snprintf(line, sizeof(line), "file %s/%s %llu\n", dir, name, (unsigned long long)len);
	if (n > 0 && (size_t)n < sizeof(line))
		journal(line, (size_t)n);
}

void hook_synced_fd(int fd, uint64_t len)
{
	char path[1024], line[1200];
	int n;

	hook_init();
	if (journal_fd < 0 || fd_path(fd, path, sizeof(path)))
		return;
	n = snprintf(line, sizeof(line), "file %s %llu\n", path, (unsigned long long)len);
	if (n > 0 && (size_t)n < sizeof(line))
		journal(line, (size_t)n);
}

void hook_dirsynced(int dirfd)
{
	char dir[1024], line[8192];
	struct dirent *e;
	size_t used;
	DIR *d;
	int fd, n;

	hook_init();
	if (journal_fd < 0 || fd_path(dirfd, dir, sizeof(dir)))
		return;
	n = snprintf(line, sizeof(line), "dir %s", dir);
	if (n < 0)
		return;
	used = (size_t)n;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n = snprintf(line + used, sizeof(line) - used, " %s", e->d_name);
		if (n < 0 || (size_t)n >= sizeof(line) - used)
			break;
		used += (size_t)n;
	}
	closedir(d);
	if (used < sizeof(line) - 1) {
		line[used++] = '\n';
		journal(line, used);
	}
}

void hook_workers(unsigned n)
{
	static unsigned high;
	char line[32];
	int len;

	hook_init();
	if (n <= high || journal_fd < 0)
		return;
	high = n;
	len = snprintf(line, sizeof(line), "workers %u\n", n);
	if (len > 0)
		(void)!write(journal_fd, line, (size_t)len);
}

int hook_no_fdatasync(void)
{
	hook_init();
	return no_sync;
}
#endif /* BE_TEST_HOOKS */
