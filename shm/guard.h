/*
 * guard.h - survive a ring truncated under us.
 *
 * Any process may ftruncate a ring's shm object; touching a page past the
 * new end then raises SIGBUS.  The daemon and shm-dump must not die of it:
 * they touch shared memory only through guard_copy()/guard_store_u64(), or
 * inside a GUARD_TRY block, and a SIGBUS there turns into -EFAULT.  Writers
 * (the library) do not install the guard: a writer whose ring is truncated
 * under it gets SIGBUS, like any process touching a truncated mapping.
 *
 * The guard is per thread; guard_install() sets the SIGBUS handler once per
 * process and keeps any handler found for faults outside a guard.
 */
#ifndef BE_GUARD_H
#define BE_GUARD_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

/* guard_install() - install the SIGBUS handler.  Returns 0 or -errno. */
int guard_install(void);

/* guard_copy() - memcpy from shared memory; 0, or -EFAULT on SIGBUS. */
int guard_copy(void *dst, const void *src, size_t n);

/* guard_store_u64() - a release store of v to *p; 0, or -EFAULT. */
int guard_store_u64(uint64_t *p, uint64_t v);

/* The machinery behind GUARD_TRY; not for direct use. */
struct guard_frame {
	sigjmp_buf env;
	struct guard_frame *prev;
};
void guard_push(struct guard_frame *f);
void guard_pop(struct guard_frame *f);

/*
 * GUARD_TRY(f) { ...touch shared memory... GUARD_END(f); } else { ...SIGBUS... }
 * Locals changed inside the block and read after a fault must be volatile.
 */
#define GUARD_TRY(f) if ((guard_push(&(f)), sigsetjmp((f).env, 1) == 0))
#define GUARD_END(f) guard_pop(&(f))

#endif /* BE_GUARD_H */
