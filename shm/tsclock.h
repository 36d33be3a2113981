/*
 * tsclock.h - the records' timestamp clock: CLOCK_REALTIME in nanoseconds,
 * read from the CPU's time-stamp counter where the kernel itself trusts it.
 *
 * clock_gettime() through the vDSO costs ~16 ns here, a quarter of an
 * append; rdtsc costs ~7.5 ns.  Each thread keeps an anchor (a TSC value,
 * the CLOCK_REALTIME read beside it) and the TSC's rate measured between
 * its last two anchors, and extrapolates from the anchor for at most
 * TSCLOCK_SPAN_NS; past that (or on a TSC going backwards) it reads
 * clock_gettime() again and takes a new anchor.  So a clock step or an NTP
 * slew shows within a millisecond, and an error in the rate (the anchors'
 * jitter, bounded below) costs at most rate error x 1 ms: well under a
 * microsecond.
 *
 * The TSC is used only when the CPU says it is invariant (CPUID
 * 0x80000007 EDX bit 8) and the kernel's clocksource is "tsc" (the kernel
 * then keeps the CPUs' counters in step, so a thread moving between CPUs
 * sees one counter).  Otherwise, or with BE_NO_TSC=1 in the environment,
 * every read is clock_gettime(CLOCK_REALTIME).  Like CLOCK_REALTIME itself
 * the result is not monotonic: a re-anchor may step it by the extrapolation
 * error (tens of ns), a clock step by anything.
 */
#ifndef BE_TSCLOCK_H
#define BE_TSCLOCK_H

#include <stdint.h>

#define TSCLOCK_SPAN_NS UINT64_C(1000000) /* extrapolate at most 1 ms from an anchor */

/* One thread's clock state; zero-initialised: not yet decided. */
struct tsclock {
	uint64_t c0;    /* TSC at the anchor */
	uint64_t t0;    /* CLOCK_REALTIME ns at the anchor */
	uint64_t mult;  /* ns per TSC tick, 32.32 fixed point; 0: not calibrated */
	uint64_t span;  /* ticks to extrapolate from the anchor (TSCLOCK_SPAN_NS) */
};

extern __thread struct tsclock tsclock_tls __attribute__((tls_model("initial-exec")));

/* The slow path: decide, calibrate, re-anchor (shm/tsclock.c). */
uint64_t tsclock_slow(struct tsclock *c);

/* tsclock_enabled() - 1 when reads come from the TSC, 0 from clock_gettime. */
int tsclock_enabled(void);

#if defined(__x86_64__)
static inline uint64_t tsclock_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* tsclock_now_ns() - CLOCK_REALTIME now, in ns, for a record's header. */
static inline uint64_t tsclock_now_ns(void)
{
	struct tsclock *c = &tsclock_tls;
	uint64_t span = c->span;

	/* span is 0 until calibrated and on fallback: the slow path then. */
	if (__builtin_expect(span != 0, 1)) {
		uint64_t d = tsclock_rdtsc() - c->c0;

		if (__builtin_expect(d < span, 1))
			return c->t0 + ((d * c->mult) >> 32); /* d < span: d * mult < 2^52 */
	}
	return tsclock_slow(c);
}
#else
static inline uint64_t tsclock_now_ns(void)
{
	return tsclock_slow(&tsclock_tls);
}
#endif

#endif /* BE_TSCLOCK_H */
