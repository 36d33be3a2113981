/*
 * lock.c - the writers' lock: a robust process-shared pthread mutex with
 * the dead-holder path written out.  See lock.h.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>

#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/lock.h"

int lock_init(struct ring_hdr *h)
{
	pthread_mutexattr_t attr;
	int ret;

	ret = pthread_mutexattr_init(&attr);
	if (ret)
		return -ret;
	ret = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	if (!ret)
		ret = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	if (!ret)
		ret = pthread_mutex_init(lock_mutex(h), &attr);
	pthread_mutexattr_destroy(&attr);
	return -ret;
}

/*
 * One wait on the lock, up to a CLOCK_MONOTONIC deadline (a wall-clock step
 * must not change it).
 */
static int lock_wait(pthread_mutex_t *mu, uint64_t deadline_ns)
{
#if defined(__SANITIZE_THREAD__)
	/*
	 * ThreadSanitizer does not intercept pthread_mutex_clocklock and then
	 * takes our unlock for a bad one: under it, the same deadline on
	 * CLOCK_REALTIME.
	 */
	uint64_t now = now_mono_ns();
	struct timespec ts = ns_to_timespec(now_real_ns() + (deadline_ns > now ? deadline_ns - now : 0));

	return pthread_mutex_timedlock(mu, &ts);
#else
	struct timespec ts = ns_to_timespec(deadline_ns);

	return pthread_mutex_clocklock(mu, CLOCK_MONOTONIC, &ts);
#endif
}

/*
 * Lock before the deadline (UINT64_MAX: none), waiting in slices.  A waiter
 * SIGKILLed just as the unlocker woke it takes that one wake-up with it,
 * and a writer that then takes the free lock without sleeping leaves no
 * waiters bit for its own unlock to act on: the next sleeper would sleep
 * on a free lock for ever.  Each new slice looks at the lock again and
 * sets the bit anew, so such a writer is late by at most one slice.
 */
#define LOCK_SLICE_NS (50 * NSEC_PER_MSEC)

static int lock_until(pthread_mutex_t *mu, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now = now_mono_ns();
		uint64_t end = deadline_ns - now > LOCK_SLICE_NS ? now + LOCK_SLICE_NS : deadline_ns;
		int ret;

		if (deadline_ns <= now)
			return ETIMEDOUT;
		ret = lock_wait(mu, end);
		if (ret != ETIMEDOUT || end == deadline_ns)
			return ret;
	}
}

int lock_acquire_slow(struct ring_hdr *h, struct deadline *d, int ret)
{
	pthread_mutex_t *mu = lock_mutex(h);

	if (ret == EBUSY) {
		uint64_t deadline_ns = deadline_get(d);

		if (deadline_ns == 0)
			ret = ETIMEDOUT;
		else
			ret = lock_until(mu, deadline_ns);
	}
	if (ret == EOWNERDEAD) {
		/*
		 * We own the mutex.  Clean up after the dead previous owner:
		 * a writer publishes a record with one release store of head,
		 * its last step, so whatever it wrote past head is invisible
		 * and will be overwritten; a seq it took without publishing is
		 * a gap, which seq allows.  Nothing to repair but the count.
		 */
		fetch_add_relaxed(&h->lock_recoveries, 1);
		if (pthread_mutex_consistent(mu) != 0) {
			pthread_mutex_unlock(mu);
			return -ENOTRECOVERABLE;
		}
		return 0;
	}
	if (ret == ETIMEDOUT)
		fetch_add_relaxed(&h->lock_timeouts, 1);
	return -ret;
}

void lock_peek(const struct ring_hdr *h, struct lock_state *st)
{
	uint32_t word;

	/* glibc keeps the futex word first in the mutex (__data.__lock). */
	memcpy(&word, h->lock, sizeof(word));
	st->owner_tid = word & FUTEX_TID_MASK;
	st->owner_died = !!(word & FUTEX_OWNER_DIED);
	st->waiters = !!(word & FUTEX_WAITERS);
}
