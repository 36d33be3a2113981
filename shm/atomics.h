/*
 * atomics.h - the one place where the project says how shared memory is
 * ordered.  Thin wrappers over <stdatomic.h>; every caller that uses an
 * acquire or release names, in a comment, the access it pairs with.
 *
 * Fields in shared memory are plain fixed-width integers (the layout is an
 * ABI between processes), so the wrappers cast to the _Atomic type of the
 * same size; _Static_assert in layout.h checks that those are lock-free.
 */
#ifndef BE_ATOMICS_H
#define BE_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

#define READ_ONCE(x) \
	atomic_load_explicit((_Atomic __typeof__(x) *)&(x), memory_order_relaxed)
#define WRITE_ONCE(x, v) \
	atomic_store_explicit((_Atomic __typeof__(x) *)&(x), (v), memory_order_relaxed)
#define load_acquire(p) \
	atomic_load_explicit((_Atomic __typeof__(*(p)) *)(p), memory_order_acquire)
#define store_release(p, v) \
	atomic_store_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_release)
#define fetch_add_relaxed(p, v) \
	atomic_fetch_add_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_relaxed)
#define fetch_add_release(p, v) \
	atomic_fetch_add_explicit((_Atomic __typeof__(*(p)) *)(p), (v), memory_order_release)
#define cas_relaxed(p, expp, v) \
	atomic_compare_exchange_weak_explicit((_Atomic __typeof__(*(p)) *)(p), (expp), (v), \
					      memory_order_relaxed, memory_order_relaxed)

/*
 * smp_rmb(): loads before it complete before loads after it (a seqlock
 * reader's fence: copy, fence, re-read the position that guards the copy).
 * ThreadSanitizer models no fences, and cannot see the other processes these
 * fences are for anyway: under it the fence is left out.
 */
#if defined(__SANITIZE_THREAD__)
#define smp_rmb() do { } while (0)
#else
#define smp_rmb() atomic_thread_fence(memory_order_acquire)
#endif

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");

#endif /* BE_ATOMICS_H */
