/*
 * futex.c - the futex(2) wrappers behind every wait on a ring.  See futex.h.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"

int futex_wait_until(uint32_t *word, uint32_t val, uint64_t deadline_ns)
{
	struct timespec ts, *tsp = NULL;
	long ret;

	if (deadline_ns != UINT64_MAX) {
		if (now_mono_ns() >= deadline_ns)
			return -ETIMEDOUT;
		ts = ns_to_timespec(deadline_ns);
		tsp = &ts;
	}
	/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
	ret = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, val, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
	if (ret < 0) {
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
	return 0;
}

int futex_wake_all(uint32_t *word)
{
	long ret = syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);

	return (ret < 0) ? -errno : (int)ret;
}

void futex_bump_wake(uint32_t *word)
{
	/*
	 * Release: the value this generation guards (stored before the call)
	 * is visible to a waiter that sees the new generation.
	 */
	fetch_add_release(word, 1);
	futex_wake_all(word);
}
