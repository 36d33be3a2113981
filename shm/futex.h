/*
 * futex.h - waits and wakes on 32-bit generation words in shared memory.
 *
 * The protocol for every wait in the project: the waiter reads the
 * generation, checks its condition, then waits on that generation; the
 * waker changes the guarded value, bumps the generation, then wakes.  A
 * waiter that read the generation before the bump either sees the new
 * value or fails the wait's compare at once: no wake-up is lost.
 * Never FUTEX_PRIVATE_FLAG: these words are shared between processes.
 */
#ifndef BE_FUTEX_H
#define BE_FUTEX_H

#include <stdint.h>

/*
 * futex_wait_until() - sleep while *word == val, until deadline_ns
 * (CLOCK_MONOTONIC, UINT64_MAX for none).
 * Returns 0 (woken, or the word had changed: recheck), -ETIMEDOUT, -EINTR,
 * or -errno.
 */
int futex_wait_until(uint32_t *word, uint32_t val, uint64_t deadline_ns);

/* futex_wake_all() - wake every waiter on word.  Returns the count or -errno. */
int futex_wake_all(uint32_t *word);

/* futex_bump_wake() - increment the generation (release) and wake all. */
void futex_bump_wake(uint32_t *word);

#endif /* BE_FUTEX_H */
