/*
 * tsclock.c - the slow path of the records' timestamp clock: deciding once
 * per process whether the TSC can be used, and per thread calibrating and
 * re-anchoring it against clock_gettime(CLOCK_REALTIME).  See tsclock.h.
 *
 * A thread's clock goes through three states, told apart by span:
 *   - no anchor (t0 == 0): the first read takes one;
 *   - calibrating (span == 0): every read is clock_gettime until the anchor
 *     is TSCLOCK_SPAN_NS old, then the rate is measured over that baseline;
 *   - running (span != 0): the fast path extrapolates; past span ticks it
 *     comes here, measures the rate over the last interval and re-anchors.
 * A sample is taken between two rdtsc reads, and thrown away when they lie
 * far apart (an interrupt or a preemption between them): the anchor's
 * uncertainty is what bounds the rate's error.  A rate that moved by more
 * than 1/256 (NTP slews by at most 1/2000) or a clock that went backwards
 * starts a new calibration.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "shm/clock.h"
#include "shm/tsclock.h"

__thread struct tsclock tsclock_tls __attribute__((tls_model("initial-exec")));

/* A sample's two rdtsc reads at most this far apart: before calibration, in ticks... */
#define TSCLOCK_BRACKET_TICKS 1024
/* ...and once the rate is known, in ns. */
#define TSCLOCK_BRACKET_NS 250
/* Keep rates within 1/2^8 of the last one, or calibrate again. */
#define TSCLOCK_RATE_SHIFT 8
/* Longer baselines than this (an idle thread) keep the rate they had. */
#define TSCLOCK_BASELINE_MAX_NS (UINT64_C(1) << 31)

static atomic_int tsclock_mode; /* 0: undecided; 1: TSC; -1: clock_gettime */

#if defined(__x86_64__)
static int tsc_invariant(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u)
		return 0;
	if (!__get_cpuid(0x80000007u, &a, &b, &c, &d))
		return 0;
	return !!(d & (1u << 8));
}

static int kernel_clocksource_is_tsc(void)
{
	char buf[32] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
	int ok;

	if (!f)
		return 0;
	ok = fgets(buf, sizeof(buf), f) != NULL && strcmp(buf, "tsc\n") == 0;
	fclose(f);
	return ok;
}
#endif

static int tsclock_decide(void)
{
	int mode = atomic_load_explicit(&tsclock_mode, memory_order_relaxed);
	const char *env;

	if (mode)
		return mode;
	mode = -1;
#if defined(__x86_64__)
	env = getenv("BE_NO_TSC");
	if ((!env || !*env || strcmp(env, "0") == 0) && tsc_invariant() && kernel_clocksource_is_tsc())
		mode = 1;
#else
	(void)env;
#endif
	/* Racing deciders reach the same answer. */
	atomic_store_explicit(&tsclock_mode, mode, memory_order_relaxed);
	return mode;
}

int tsclock_enabled(void)
{
	return tsclock_decide() > 0;
}

#if defined(__x86_64__)
static uint64_t tsclock_anchor(struct tsclock *c, uint64_t tick, uint64_t t)
{
	c->c0 = tick;
	c->t0 = t;
	return t;
}

static uint64_t tsclock_recalibrate(struct tsclock *c, uint64_t tick, uint64_t t)
{
	c->mult = 0;
	c->span = 0;
	return tsclock_anchor(c, tick, t);
}

uint64_t tsclock_slow(struct tsclock *c)
{
	uint64_t c1, c2, t, tick, width, d, dt, mult;

	if (tsclock_decide() < 0)
		return now_real_ns();
	c1 = tsclock_rdtsc();
	t = now_real_ns();
	c2 = tsclock_rdtsc();
	width = c2 - c1;
	if (c2 < c1 || (c->span ? ((width * c->mult) >> 32) > TSCLOCK_BRACKET_NS
				: width > TSCLOCK_BRACKET_TICKS))
		return t; /* a poor sample: the next read tries again */
	tick = c1 + width / 2;
	if (c->t0 == 0)
		return tsclock_anchor(c, tick, t);
	if (t < c->t0 || tick <= c->c0)
		return tsclock_recalibrate(c, tick, t); /* a clock or a counter went back */
	d = tick - c->c0;
	dt = t - c->t0;
	if (dt < TSCLOCK_SPAN_NS) {
		/* Calibrating: let the baseline grow.  Running: span ticks took
		 * less than span ns, so the rate is off: measure it again. */
		return c->span ? tsclock_recalibrate(c, tick, t) : t;
	}
	if (dt >= TSCLOCK_BASELINE_MAX_NS) {
		/* An idle thread: keep the rate (or keep calibrating). */
		return c->span ? tsclock_anchor(c, tick, t) : tsclock_recalibrate(c, tick, t);
	}
	mult = (dt << 32) / d; /* dt < 2^31: no overflow */
	if (mult == 0)
		return tsclock_recalibrate(c, tick, t); /* a counter faster than 2^32 GHz */
	if (c->span && (mult > c->mult + (c->mult >> TSCLOCK_RATE_SHIFT) ||
			mult < c->mult - (c->mult >> TSCLOCK_RATE_SHIFT)))
		return tsclock_recalibrate(c, tick, t);
	c->mult = mult;
	c->span = (TSCLOCK_SPAN_NS << 32) / mult;
	return tsclock_anchor(c, tick, t);
}
#else
uint64_t tsclock_slow(struct tsclock *c)
{
	(void)c;
	(void)tsclock_decide();
	return now_real_ns();
}
#endif
