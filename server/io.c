/*
 * io.c - the daemon's two I/O backends behind one interface (io.h).
 *
 * io_uring: writes (WRITE_FIXED from the registered pool when possible),
 * linked fdatasyncs, and IORING_OP_FUTEX_WAIT on each ring's doorbell, so
 * that one io_uring_submit_and_wait_timeout() sleeps on disk completions
 * and writers at once.  liburing 2.3 and the 6.1 uapi headers predate the
 * futex opcodes, so the SQE is built by hand; the kernel's probe says
 * whether it knows them, and if not the doorbells are polled.
 *
 * sync: where io_uring_queue_init() is refused.  Each operation runs in
 * place and its completion is queued; doorbells are waited on with
 * futex_waitv(2).
 */
#include <errno.h>
#include <linux/futex.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "server/hooks.h"
#include "server/io.h"
#include "shm/atomics.h"
#include "shm/clock.h"

/* Not in the 6.1 uapi headers: the opcode of IORING_OP_FUTEX_WAIT (6.7). */
#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51
#endif
#ifndef FUTEX2_SIZE_U32
#define FUTEX2_SIZE_U32 FUTEX_32
#endif
#ifndef __NR_futex_waitv
#define __NR_futex_waitv 449
#endif
#define IO_WAITV_MAX 128

struct io {
	int uring;              /* 1: io_uring backend */
	int registered;         /* pool buffers registered with io_uring */
	int futex_ok;           /* doorbells can be waited on */
	struct io_uring ring;
	unsigned nbufs;
	uint8_t **bufs;
	size_t bufsize;
	unsigned nstores;
	/* sync backend: queued completions and armed doorbells */
	struct io_cqe *q;
	unsigned qhead, qlen, qcap;
	struct futex_waitv *wv;
	uint32_t *wv_store;
	unsigned nwv;
};

/* user_data: the store above bit 8, the slot in bits 4-7, the kind in bits 0-3. */
static inline uint64_t io_ud(uint32_t store, uint32_t slot, uint32_t kind)
{
	return ((uint64_t)store << 8) | (slot & 0xf) << 4 | (kind & 0xf);
}

static int io_uring_setup_ring(struct io *io)
{
	unsigned entries = 64;
	struct io_uring_probe *probe;
	struct iovec *iov;
	int ret;

	/* Per store: a doorbell wait, and two batches' write and sync. */
	while (entries < io->nstores * 6 && entries < 4096)
		entries <<= 1;
	ret = io_uring_queue_init(entries, &io->ring, 0);
	if (ret < 0)
		return ret;
	io->uring = 1;

	iov = calloc(io->nbufs, sizeof(*iov));
	if (iov) {
		for (unsigned i = 0; i < io->nbufs; i++) {
			iov[i].iov_base = io->bufs[i];
			iov[i].iov_len = io->bufsize;
		}
		/* Registered memory counts against RLIMIT_MEMLOCK: fall back to plain writes. */
		io->registered = io_uring_register_buffers(&io->ring, iov, io->nbufs) == 0;
		free(iov);
	}
	probe = io_uring_get_probe_ring(&io->ring);
	if (probe) {
		io->futex_ok = io_uring_opcode_supported(probe, IORING_OP_FUTEX_WAIT);
		io_uring_free_probe(probe);
	}
	return 0;
}

int io_init(struct io **out, unsigned nstores, unsigned nbufs, size_t bufsize, int force_sync)
{
	struct io *io;
	int ret = -ENOMEM;

	io = calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->nstores = nstores ? nstores : 1;
	io->nbufs = nbufs;
	io->bufsize = bufsize;
	io->bufs = calloc(nbufs, sizeof(*io->bufs));
	if (!io->bufs)
		goto err_free;
	for (unsigned i = 0; i < nbufs; i++) {
		if (posix_memalign((void **)&io->bufs[i], 4096, bufsize))
			goto err_free;
	}
	if (!force_sync && io_uring_setup_ring(io) == 0) {
		*out = io;
		return 0;
	}
	/* sync backend */
	io->qcap = io->nstores * 3 + 4;
	io->q = calloc(io->qcap, sizeof(*io->q));
	io->wv = calloc(IO_WAITV_MAX, sizeof(*io->wv));
	io->wv_store = calloc(IO_WAITV_MAX, sizeof(*io->wv_store));
	if (!io->q || !io->wv || !io->wv_store)
		goto err_free;
	io->futex_ok = 1;
	*out = io;
	return 0;

err_free:
	io_exit(io);
	return ret;
}

void io_exit(struct io *io)
{
	if (!io)
		return;
	if (io->uring)
		io_uring_queue_exit(&io->ring);
	for (unsigned i = 0; io->bufs && i < io->nbufs; i++)
		free(io->bufs[i]);
	free(io->bufs);
	free(io->q);
	free(io->wv);
	free(io->wv_store);
	free(io);
}

int io_grow(struct io *io, unsigned nstores)
{
	unsigned qcap = nstores * 3 + 4;
	struct io_cqe *q;

	if (nstores <= io->nstores)
		return 0;
	io->nstores = nstores;
	if (io->uring || qcap <= io->qcap)
		return 0; /* the SQ is flushed when full; the kernel never drops a CQE */
	/* The sync backend's queue: unroll it into a bigger array. */
	q = calloc(qcap, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (unsigned i = 0; i < io->qlen; i++)
		q[i] = io->q[(io->qhead + i) % io->qcap];
	free(io->q);
	io->q = q;
	io->qhead = 0;
	io->qcap = qcap;
	return 0;
}

int io_async(const struct io *io)
{
	return io->uring;
}

void io_submit_now(struct io *io)
{
	if (io->uring)
		io_uring_submit(&io->ring);
}

const char *io_backend(const struct io *io)
{
	if (!io->uring)
		return "pwrite+fdatasync (io_uring unavailable)";
	if (!io->futex_ok)
		return "io_uring (doorbells polled: no IORING_OP_FUTEX_WAIT)";
	return io->registered ? "io_uring (registered buffers, futex waits)"
			      : "io_uring (futex waits)";
}

uint8_t *io_buf(struct io *io, unsigned i)
{
	return i < io->nbufs ? io->bufs[i] : NULL;
}

int io_futex_polling(const struct io *io)
{
	return !io->futex_ok || (!io->uring && io->nwv >= IO_WAITV_MAX);
}

static struct io_uring_sqe *io_sqe(struct io *io)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);

	if (!sqe) {
		io_uring_submit(&io->ring);
		sqe = io_uring_get_sqe(&io->ring);
	}
	return sqe;
}

static void io_queue(struct io *io, uint32_t store, uint32_t slot, uint32_t kind, int32_t res)
{
	unsigned at;

	/* Cannot happen: in place, one batch per store (io_async() is 0). */
	if (io->qlen == io->qcap)
		abort();
	at = (io->qhead + io->qlen) % io->qcap;
	io->q[at] = (struct io_cqe){ .store = store, .slot = slot, .kind = kind, .res = res };
	io->qlen++;
}

/* pwrite everything or fail; returns the bytes written or -errno. */
static ssize_t io_pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return done ? (ssize_t)done : -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int io_write(struct io *io, uint32_t store, uint32_t slot, int fd, const void *buf, int buf_index,
	     size_t len, uint64_t off, int sync)
{
	struct io_uring_sqe *sqe, *fsqe;

	if (!io->uring) {
		ssize_t n = io_pwrite_all(fd, buf, len, off);

		io_queue(io, store, slot, IO_WRITE, (int32_t)n);
		if (sync) {
			int r = -ECANCELED;

			if (n == (ssize_t)len)
				r = hook_fdatasync(fd) < 0 ? -errno : 0;
			io_queue(io, store, slot, IO_SYNC, r);
		}
		return 0;
	}
	/* Both SQEs or neither: a link must not be cut by a full SQ. */
	if (io_uring_sq_space_left(&io->ring) < 2)
		io_uring_submit(&io->ring);
	sqe = io_sqe(io);
	if (!sqe)
		return -EBUSY;
	if (io->registered && buf_index >= 0)
		io_uring_prep_write_fixed(sqe, fd, buf, (unsigned)len, off, buf_index);
	else
		io_uring_prep_write(sqe, fd, buf, (unsigned)len, off);
	io_uring_sqe_set_data64(sqe, io_ud(store, slot, IO_WRITE));
	if (!sync)
		return 0;
	sqe->flags |= IOSQE_IO_LINK;
	fsqe = io_sqe(io);
	if (!fsqe)
		return -EBUSY;
	if (hook_no_fdatasync())
		io_uring_prep_nop(fsqe);
	else
		io_uring_prep_fsync(fsqe, fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(fsqe, io_ud(store, slot, IO_SYNC));
	return 0;
}

int io_sync(struct io *io, uint32_t store, uint32_t slot, int fd)
{
	struct io_uring_sqe *sqe;

	if (!io->uring) {
		io_queue(io, store, slot, IO_SYNC, hook_fdatasync(fd) < 0 ? -errno : 0);
		return 0;
	}
	sqe = io_sqe(io);
	if (!sqe)
		return -EBUSY;
	if (hook_no_fdatasync())
		io_uring_prep_nop(sqe);
	else
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_data64(sqe, io_ud(store, slot, IO_SYNC));
	return 0;
}

int io_arm_futex(struct io *io, uint32_t store, uint32_t *word, uint32_t val)
{
	struct io_uring_sqe *sqe;

	if (!io->futex_ok)
		return -EOPNOTSUPP;
	if (!io->uring) {
		if (io->nwv >= IO_WAITV_MAX)
			return -EOPNOTSUPP;
		io->wv[io->nwv] = (struct futex_waitv){ .val = val,
							.uaddr = (uint64_t)(uintptr_t)word,
							.flags = FUTEX_32 };
		io->wv_store[io->nwv++] = store;
		return 0;
	}
	sqe = io_sqe(io);
	if (!sqe)
		return -EBUSY;
	/* IORING_OP_FUTEX_WAIT: fd = futex2 flags, addr = word, addr2 = value, addr3 = mask. */
	io_uring_prep_rw(IORING_OP_FUTEX_WAIT, sqe, FUTEX2_SIZE_U32, word, 0, val);
	sqe->addr3 = FUTEX_BITSET_MATCH_ANY;
	io_uring_sqe_set_data64(sqe, io_ud(store, 0, IO_FUTEX));
	return 0;
}

/* sync backend: complete the armed waits whose word changed (or all). */
static void io_waitv_complete(struct io *io, int all, int index)
{
	unsigned keep = 0;

	for (unsigned i = 0; i < io->nwv; i++) {
		uint32_t *w = (uint32_t *)(uintptr_t)io->wv[i].uaddr;
		int done = all || (int)i == index || READ_ONCE(*w) != (uint32_t)io->wv[i].val;

		if (done) {
			io_queue(io, io->wv_store[i], 0, IO_FUTEX, 0);
		} else {
			io->wv[keep] = io->wv[i];
			io->wv_store[keep++] = io->wv_store[i];
		}
	}
	io->nwv = keep;
}

static int io_wait_sync(struct io *io, uint64_t timeout_ns, const sigset_t *sigmask,
			struct io_cqe *out, int max)
{
	int n = 0;

	if (!io->qlen && io->nwv) {
		struct timespec ts = ns_to_timespec(now_mono_ns() + timeout_ns);
		sigset_t old;
		long r;

		if (sigmask)
			sigprocmask(SIG_SETMASK, sigmask, &old);
		r = syscall(__NR_futex_waitv, io->wv, io->nwv, 0, &ts, CLOCK_MONOTONIC);
		if (sigmask)
			sigprocmask(SIG_SETMASK, &old, NULL);
		if (r >= 0)
			io_waitv_complete(io, 0, (int)r);
		else if (errno == EAGAIN)
			io_waitv_complete(io, 0, -1);
		else if (errno == ENOSYS)
			io_waitv_complete(io, 1, -1), io->futex_ok = 0;
	} else if (!io->qlen) {
		struct timespec ts = ns_to_timespec(timeout_ns);

		ppoll(NULL, 0, &ts, sigmask);
	}
	while (io->qlen && n < max) {
		out[n++] = io->q[io->qhead];
		io->qhead = (io->qhead + 1) % io->qcap;
		io->qlen--;
	}
	return n;
}

int io_wait(struct io *io, uint64_t timeout_ns, const sigset_t *sigmask, struct io_cqe *out,
	    int max)
{
	struct __kernel_timespec ts = { .tv_sec = (long long)(timeout_ns / NSEC_PER_SEC),
					.tv_nsec = (long long)(timeout_ns % NSEC_PER_SEC) };
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;
	int ret, n = 0;

	if (!io->uring)
		return io_wait_sync(io, timeout_ns, sigmask, out, max);
	ret = io_uring_submit_and_wait_timeout(&io->ring, &cqe, 1, &ts, (sigset_t *)sigmask);
	if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	io_uring_for_each_cqe(&io->ring, head, cqe) {
		if (n == max)
			break;
		out[n] = (struct io_cqe){ .store = (uint32_t)(cqe->user_data >> 8),
					  .slot = (uint32_t)(cqe->user_data >> 4) & 0xf,
					  .kind = (uint32_t)(cqe->user_data & 0xf),
					  .res = cqe->res };
		/* A kernel that probes the opcode but refuses the wait: poll instead. */
		if (out[n].kind == IO_FUTEX && out[n].res < 0 && out[n].res != -EAGAIN &&
		    out[n].res != -EINTR && out[n].res != -ECANCELED && out[n].res != -EFAULT)
			io->futex_ok = 0;
		n++;
		seen++;
	}
	io_uring_cq_advance(&io->ring, seen);
	return n;
}
