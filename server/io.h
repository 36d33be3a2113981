/*
 * io.h - the daemon's I/O: one io_uring for batch writes, fdatasyncs and
 * the doorbell futex waits of every ring, or, where io_uring is refused
 * (kernel.io_uring_disabled, a seccomp profile), pwrite + fdatasync done
 * in place and futex_waitv(2) for the doorbells.
 *
 * Completions come back tagged with the store index, the batch slot (a
 * store may have two batches in flight) and the kind of operation; res is
 * a byte count or -errno, in both backends.
 */
#ifndef BE_IO_H
#define BE_IO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct io;

enum io_kind {
	IO_WRITE = 1, /* a batch write */
	IO_SYNC = 2,  /* an fdatasync, linked after a write or alone */
	IO_FUTEX = 3, /* a doorbell wait completed (woken, or the word changed) */
};

#define IO_SLOTS 2 /* batch slots per store */

struct io_cqe {
	uint32_t store;
	uint32_t slot;  /* < IO_SLOTS: the batch slot given with the op */
	uint32_t kind;
	int32_t res;
};

/*
 * io_init() - set up the backend.
 * @nstores:   stores (futex waits and ops in flight are bounded by it)
 * @nbufs:     batch buffers to allocate (and register with io_uring)
 * @bufsize:   bytes each
 * @force_sync: 1 to skip io_uring (tests; BE_NO_IO_URING=1)
 * Returns 0 or -errno.  io_backend() then names the backend in use.
 */
int io_init(struct io **out, unsigned nstores, unsigned nbufs, size_t bufsize, int force_sync);
void io_exit(struct io *io);

/* io_grow() - make room for nstores stores (SIGHUP added some).  0 or -ENOMEM. */
int io_grow(struct io *io, unsigned nstores);
const char *io_backend(const struct io *io);

/*
 * io_async() - 1 when operations run while the daemon goes on (io_uring),
 * so that a second batch's write can overlap the first one's sync; 0 when
 * they are done in place.
 */
int io_async(const struct io *io);

/*
 * io_submit_now() - hand what is queued to the kernel now rather than at
 * the next io_wait() (an op on the critical path: the next sync).
 */
void io_submit_now(struct io *io);

/* The pool buffers: io_buf(io, i) for i < nbufs. */
uint8_t *io_buf(struct io *io, unsigned i);

/*
 * io_write() - write len bytes of buf at off; with sync, an fdatasync
 * linked after it.  buf_index: the pool buffer buf is in, or -1.
 * One IO_WRITE completion follows, and with sync one IO_SYNC completion
 * (-ECANCELED when the write fell short).  Returns 0 or -errno (nothing
 * was queued).
 */
int io_write(struct io *io, uint32_t store, uint32_t slot, int fd, const void *buf, int buf_index,
	     size_t len, uint64_t off, int sync);

/* io_sync() - an fdatasync alone; one IO_SYNC completion follows. */
int io_sync(struct io *io, uint32_t store, uint32_t slot, int fd);

/*
 * io_arm_futex() - complete with IO_FUTEX once *word != val or a wake
 * comes.  Returns 0, or -EOPNOTSUPP when neither backend can wait on
 * futexes (the caller then polls at a short interval).
 */
int io_arm_futex(struct io *io, uint32_t store, uint32_t *word, uint32_t val);

/* io_futex_polling() - 1 when doorbells must be polled. */
int io_futex_polling(const struct io *io);

/*
 * io_wait() - wait up to timeout_ns for completions, with sigmask (may be
 * NULL) in force while asleep; store up to max in out.
 * Returns the count (0 on timeout or a signal), or -errno.
 */
int io_wait(struct io *io, uint64_t timeout_ns, const sigset_t *sigmask, struct io_cqe *out,
	    int max);

#endif /* BE_IO_H */
