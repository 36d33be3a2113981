/*
 * lock.h - the writers' lock of a ring: glibc's robust, process-shared
 * mutex, living in ring_hdr.lock.
 *
 * Robust because a writer may be SIGKILLed while holding it: the kernel
 * walks the dead thread's robust list, marks the futex word OWNER_DIED and
 * wakes a waiter, and the next locker gets EOWNERDEAD instead of waiting
 * forever on a TID that may already belong to someone else.  The daemon
 * never takes this lock (see DESIGN.md).
 */
#ifndef BE_LOCK_H
#define BE_LOCK_H

#include <pthread.h>
#include <stdint.h>

#include "shm/clock.h"
#include "shm/layout.h"

/* lock_init() - initialise the mutex in a new ring's header.  0 or -errno. */
int lock_init(struct ring_hdr *h);

/*
 * lock_acquire() - take the writers' lock before the deadline (read only
 * when the lock is contended).
 *
 * When the previous holder died, the lock is taken over: the caller gets
 * the lock, lock_recoveries is counted, and the mutex is marked consistent
 * (what a dead holder can leave behind is handled by the append protocol
 * itself: it publishes nothing before its final release store of head).
 * Returns 0, -ETIMEDOUT, -ENOTRECOVERABLE, or -errno.
 */
static inline int lock_acquire(struct ring_hdr *h, struct deadline *d);

/* lock_release() - unlock. */
static inline void lock_release(struct ring_hdr *h);

/* lock_acquire()'s way when trylock did not simply succeed (its result in ret). */
int lock_acquire_slow(struct ring_hdr *h, struct deadline *d, int ret);

static inline pthread_mutex_t *lock_mutex(struct ring_hdr *h)
{
	return (pthread_mutex_t *)(void *)h->lock;
}

/* Inline: the uncontended path is a trylock, no clock read, no syscall, no call of ours. */
static inline int lock_acquire(struct ring_hdr *h, struct deadline *d)
{
	int ret = pthread_mutex_trylock(lock_mutex(h));

	if (__builtin_expect(ret == 0, 1))
		return 0;
	return lock_acquire_slow(h, d, ret);
}

static inline void lock_release(struct ring_hdr *h)
{
	pthread_mutex_unlock(lock_mutex(h));
}

/* What lock_peek() saw: for shm-dump, from a racy read of the futex word. */
struct lock_state {
	uint32_t owner_tid;  /* 0: free */
	int owner_died;      /* the kernel marked the holder dead */
	int waiters;         /* someone sleeps on it */
};

/* lock_peek() - decode the futex word of a (copied) header; no side effect. */
void lock_peek(const struct ring_hdr *h, struct lock_state *st);

#endif /* BE_LOCK_H */
