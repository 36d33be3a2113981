/*
 * clock.h - the clocks the project uses, in nanoseconds: CLOCK_REALTIME for
 * record timestamps, CLOCK_MONOTONIC for deadlines, timeouts and the
 * daemon's heartbeat (one clock for every process of a boot).
 */
#ifndef BE_CLOCK_H
#define BE_CLOCK_H

#include <stdint.h>
#include <time.h>

#define NSEC_PER_SEC UINT64_C(1000000000)
#define NSEC_PER_MSEC UINT64_C(1000000)
#define NSEC_PER_USEC UINT64_C(1000)

static inline uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static inline uint64_t now_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static inline uint64_t now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline struct timespec ns_to_timespec(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / NSEC_PER_SEC),
			       .tv_nsec = (long)(ns % NSEC_PER_SEC) };
	return ts;
}

/* A CLOCK_MONOTONIC deadline timeout_ms from now; UINT64_MAX for -1 (forever). */
static inline uint64_t deadline_after_ms(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT64_MAX;
	return now_mono_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC;
}

/*
 * A deadline computed on first use, so that a fast path that never waits
 * never reads the clock.  timeout_ms: -1 forever, 0 no wait, else ms.
 */
struct deadline {
	int timeout_ms;
	uint64_t at; /* CLOCK_MONOTONIC ns; 0 until computed */
};

static inline uint64_t deadline_get(struct deadline *d)
{
	if (d->timeout_ms < 0)
		return UINT64_MAX;
	if (d->timeout_ms == 0)
		return 0;
	if (!d->at)
		d->at = deadline_after_ms(d->timeout_ms);
	return d->at;
}

#endif /* BE_CLOCK_H */
