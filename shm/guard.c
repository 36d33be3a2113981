/*
 * guard.c - SIGBUS to -EFAULT for code that reads or writes a ring that
 * another process may truncate.  See guard.h.
 *
 * A thread-local stack of frames: the handler jumps to the innermost one.
 * A SIGBUS outside any frame is passed to the handler that was there
 * before, or re-raised with the default action.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "shm/atomics.h"
#include "shm/guard.h"

static __thread struct guard_frame *guard_top;
static struct sigaction guard_old;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_err;

static void guard_handler(int sig, siginfo_t *si, void *uc)
{
	struct guard_frame *f = guard_top;

	if (f) {
		guard_top = f->prev;
		siglongjmp(f->env, 1);
	}
	if (guard_old.sa_flags & SA_SIGINFO) {
		if (guard_old.sa_sigaction) {
			guard_old.sa_sigaction(sig, si, uc);
			return;
		}
	} else if (guard_old.sa_handler != SIG_DFL && guard_old.sa_handler != SIG_IGN) {
		guard_old.sa_handler(sig);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void guard_do_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = guard_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &guard_old) < 0)
		guard_err = -errno;
}

int guard_install(void)
{
	pthread_once(&guard_once, guard_do_install);
	return guard_err;
}

void guard_push(struct guard_frame *f)
{
	f->prev = guard_top;
	guard_top = f;
}

void guard_pop(struct guard_frame *f)
{
	guard_top = f->prev;
}

int guard_copy(void *dst, const void *src, size_t n)
{
	struct guard_frame f;

	GUARD_TRY(f) {
		memcpy(dst, src, n);
		GUARD_END(f);
		return 0;
	}
	/* NOLINTNEXTLINE(clang-analyzer-core.StackAddressEscape): the handler popped f */
	return -EFAULT;
}

int guard_store_u64(uint64_t *p, uint64_t v)
{
	struct guard_frame f;

	GUARD_TRY(f) {
		/* Pairs with the load_acquire of the same field by its readers. */
		store_release(p, v);
		GUARD_END(f);
		return 0;
	}
	/* NOLINTNEXTLINE(clang-analyzer-core.StackAddressEscape): the handler popped f */
	return -EFAULT;
}
