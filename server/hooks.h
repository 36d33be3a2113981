/*
 * hooks.h - what a test build of the daemon (make: -DBE_TEST_HOOKS, the
 * binary build/tests/bufferengined-hooks) can do that the real one cannot:
 *
 *   BE_CRASH_AT=POINT[:N]   SIGKILL itself the Nth time POINT is reached,
 *                           so each window of the flush and recovery
 *                           protocols is crashed on purpose, not by luck
 *   BE_FAULTS=F:N[,F:N..]   turn the Nth completion of a kind into a
 *                           fault: write_eio, write_short, sync_eio,
 *                           sync_canceled
 *   BE_SYNC_JOURNAL=FILE    append a line at every completed sync: what a
 *                           power loss would keep ("file PATH LENGTH",
 *                           "dir PATH NAME...")
 *   BE_NO_FDATASYNC=1       leave out every fdatasync (and journal none):
 *                           the power-loss test must then fail
 *
 * The journal also gets "workers N" each time the number of stores with
 * I/O in flight reaches a new high (max_workers must bound it).
 *
 * In the real daemon every hook compiles to nothing.
 */
#ifndef BE_HOOKS_H
#define BE_HOOKS_H

#include <stdint.h>
#include <unistd.h>

enum hook_fault_kind { HOOK_WRITE = 1, HOOK_SYNC = 2 };

#ifdef BE_TEST_HOOKS
void hook_point(const char *name);
int hook_fault(int kind, int res);
void hook_synced(int dirfd, const char *name, uint64_t len);
void hook_synced_fd(int fd, uint64_t len);
void hook_dirsynced(int dirfd);
int hook_no_fdatasync(void);
void hook_workers(unsigned n);
#else
static inline void hook_point(const char *name)
{
	(void)name;
}
static inline int hook_fault(int kind, int res)
{
	(void)kind;
	return res;
}
static inline void hook_synced(int dirfd, const char *name, uint64_t len)
{
	(void)dirfd, (void)name, (void)len;
}
static inline void hook_synced_fd(int fd, uint64_t len)
{
	(void)fd, (void)len;
}
static inline void hook_dirsynced(int dirfd)
{
	(void)dirfd;
}
static inline int hook_no_fdatasync(void)
{
	return 0;
}
static inline void hook_workers(unsigned n)
{
	(void)n;
}
#endif

/* Every fdatasync of the daemon goes through here (BE_NO_FDATASYNC). */
static inline int hook_fdatasync(int fd)
{
	return hook_no_fdatasync() ? 0 : fdatasync(fd);
}

#endif /* BE_HOOKS_H */
