/*
 * ring.c - naming, creating, opening and validating rings.
 *
 * Creation belongs to the daemon and is atomic: the object is built under
 * "<name>.tmp" with its space reserved, then renamed into place without
 * replacing anything, so an opener sees either no ring or a whole one.
 * Opening maps the object, copies the header out and validates the copy;
 * from then on capacity, mask and type come from that copy only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/guard.h"
#include "shm/lock.h"
#include "shm/ring.h"

int ring_name_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		char c = s[n];

		if (n >= BE_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return n > 0;
}

const char *ring_default_instance(void)
{
	const char *e = getenv("BE_INSTANCE");

	return (e && ring_name_valid(e)) ? e : "default";
}

int ring_shm_name(char *out, size_t len, const char *instance, const char *store)
{
	int n;

	if (!ring_name_valid(instance) || !ring_name_valid(store))
		return -EINVAL;
	n = snprintf(out, len, "/" RING_SHM_PREFIX "%s.%s", instance, store);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

static int pidns_id(uint64_t *ino, uint64_t *dev)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) < 0)
		return -errno;
	*ino = st.st_ino;
	*dev = st.st_dev;
	return 0;
}

static int random_u64(uint64_t *out)
{
	uint64_t v = 0;

	while (v == 0) {
		ssize_t n = getrandom(&v, sizeof(v), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(v))
			return n < 0 ? -errno : -EIO;
	}
	*out = v;
	return 0;
}

static int params_valid(const struct ring_params *p)
{
	if (!ring_name_valid(p->store))
		return 0;
	if (p->capacity < RING_CAP_MIN || p->capacity > RING_CAP_MAX ||
	    (p->capacity & (p->capacity - 1)))
		return 0;
	if (p->store_type < BE_TYPE_RAW || p->store_type > BE_TYPE_PROCESS)
		return 0;
	if (p->on_full != RING_ON_FULL_BLOCK && p->on_full != RING_ON_FULL_DROP)
		return 0;
	return p->first_seq >= 1 && p->first_seq < RING_SEQ_FIRST_MAX && (p->mode & ~07777u) == 0;
}

int ring_create(const char *instance, const struct ring_params *p, struct ring_map *out)
{
	char name[RING_SHM_NAME_MAX], tmp[RING_SHM_NAME_MAX + 4];
	char path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX + 4];
	char tmppath[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX + 8];
	struct ring_hdr *h;
	size_t len;
	void *mem;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!params_valid(p))
		return -EINVAL;
	ret = ring_shm_name(name, sizeof(name), instance, p->store);
	if (ret)
		return ret;
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	snprintf(path, sizeof(path), RING_SHM_DIR "%s", name);
	snprintf(tmppath, sizeof(tmppath), RING_SHM_DIR "%s", tmp);

	/*
	 * A leftover from a creator that died half-way.  open() rather than
	 * shm_open(), to spell the flags out: O_EXCL|O_NOFOLLOW create a new
	 * object or fail, whatever a neighbour planted under the name since.
	 */
	if (shm_unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = open(tmppath, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, p->mode & 0777);
	if (fd < 0)
		return -errno;
	len = RING_HDR_SIZE + p->capacity;
	/* Reserve the pages now: a full /dev/shm fails here, not with SIGBUS later. */
	ret = posix_fallocate(fd, 0, (off_t)len);
	if (ret) {
		ret = -ret;
		goto err_unlink;
	}
	/*
	 * The group, then the mode (a chown may clear mode bits), both on the
	 * temporary object: the ring is never visible with another group, and
	 * the umask narrowed the mode given to open(), so it is set exactly.
	 */
	if (p->set_gid && fchown(fd, (uid_t)-1, p->gid) < 0) {
		ret = -errno;
		goto err_unlink;
	}
	if (fchmod(fd, p->mode) < 0) {
		ret = -errno;
		goto err_unlink;
	}
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		ret = -errno;
		goto err_unlink;
	}
	h = mem;
	/* fallocate'd tmpfs pages read as zero: only non-zero fields are set. */
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->hdr_size = RING_HDR_SIZE;
	h->capacity = p->capacity;
	ret = random_u64(&h->incarnation);
	if (ret)
		goto err_unmap;
	h->store_type = p->store_type;
	h->on_full = p->on_full;
	if (pidns_id(&h->pidns_ino, &h->pidns_dev) < 0) {
		h->pidns_ino = 0;
		h->pidns_dev = 0;
	}
	h->first_seq = p->first_seq;
	h->created_ns = now_real_ns();
	strncpy(h->store_name, p->store, sizeof(h->store_name) - 1);
	h->max_payload = (uint32_t)(p->capacity / 4 > RING_PAYLOAD_MAX ? RING_PAYLOAD_MAX
								       : p->capacity / 4);
	h->mode = p->mode;
	ret = lock_init(h);
	if (ret)
		goto err_unmap;
	h->next_seq = p->first_seq;
	h->durable_seq = p->first_seq;
	h->flush_bytes = p->flush_bytes;

	/* Into place, never over an existing ring. */
	if (renameat2(AT_FDCWD, tmppath, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		ret = -errno;
		goto err_unmap;
	}
	out->hdr = h;
	out->data = (uint8_t *)mem + RING_HDR_SIZE;
	out->capacity = p->capacity;
	out->mask = p->capacity - 1;
	out->incarnation = h->incarnation;
	out->store_type = p->store_type;
	out->on_full = p->on_full;
	out->max_payload = h->max_payload;
	out->first_seq = p->first_seq;
	out->map_len = len;
	out->fd = fd;
	snprintf(out->store, sizeof(out->store), "%s", p->store);
	return 0;

err_unmap:
	munmap(mem, len);
err_unlink:
	shm_unlink(tmp);
	close(fd);
	return ret;
}

int ring_validate(const struct ring_hdr *h, uint64_t file_size, struct ring_map *m)
{
	uint64_t cap, head, tail;
	uint32_t ver;

	if (h->magic != RING_MAGIC)
		return -EBADMSG;
	ver = h->version;
	if ((ver >> 16) != RING_VERSION_MAJOR)
		return -EPROTO;
	cap = h->capacity;
	if (h->hdr_size != RING_HDR_SIZE || cap < RING_CAP_MIN || cap > RING_CAP_MAX ||
	    (cap & (cap - 1)) || file_size != RING_HDR_SIZE + cap)
		return -EBADMSG;
	if (h->store_type < BE_TYPE_RAW || h->store_type > BE_TYPE_PROCESS)
		return -EBADMSG;
	if (h->on_full != RING_ON_FULL_BLOCK && h->on_full != RING_ON_FULL_DROP)
		return -EBADMSG;
	if (h->incarnation == 0 || h->max_payload == 0 || h->max_payload > cap / 4 ||
	    h->max_payload > RING_PAYLOAD_MAX)
		return -EBADMSG;
	if (h->first_seq == 0 || h->first_seq >= RING_SEQ_FIRST_MAX)
		return -EBADMSG;
	if (memchr(h->store_name, 0, sizeof(h->store_name)) == NULL ||
	    !ring_name_valid(h->store_name))
		return -EBADMSG;
	tail = h->tail;
	head = h->head;
	if (head < tail || head - tail > cap || ((head | tail) & (REC_ALIGN - 1)))
		return -EBADMSG;
	m->capacity = cap;
	m->mask = cap - 1;
	m->incarnation = h->incarnation;
	m->store_type = h->store_type;
	m->on_full = h->on_full;
	m->max_payload = h->max_payload;
	m->first_seq = h->first_seq;
	memcpy(m->store, h->store_name, sizeof(m->store));
	m->store[sizeof(m->store) - 1] = 0;
	return 0;
}

int ring_open(const char *instance, const char *store, int flags, struct ring_map *out)
{
	char name[RING_SHM_NAME_MAX];
	struct ring_hdr *copy = NULL;
	int rdonly = flags & RING_OPEN_RDONLY;
	struct stat st;
	void *mem = MAP_FAILED;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	ret = ring_shm_name(name, sizeof(name), instance, store);
	if (ret)
		return ret;
	/*
	 * Not shm_open(): /dev/shm is world-writable, and a FIFO planted under
	 * a ring's name would block it.  O_NONBLOCK, then only a regular file.
	 */
	{
		char path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];

		snprintf(path, sizeof(path), RING_SHM_DIR "%s", name);
		fd = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	}
	/* ELOOP: the name is a symbolic link, which a ring never is: refused. */
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EBADMSG;
		goto err_close;
	}
	/* The daemon attaches only to what it (its user) created. */
	if ((flags & RING_OPEN_OWNED) && st.st_uid != geteuid()) {
		ret = -EPERM;
		goto err_close;
	}
	if (st.st_size < (off_t)RING_HDR_SIZE + (off_t)RING_CAP_MIN ||
	    (uint64_t)st.st_size > RING_HDR_SIZE + RING_CAP_MAX) {
		ret = -EBADMSG;
		goto err_close;
	}
	mem = mmap(NULL, (size_t)st.st_size, rdonly ? PROT_READ : PROT_READ | PROT_WRITE,
		   MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	copy = malloc(sizeof(*copy));
	if (!copy) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	/*
	 * Validate a private copy: the shared page may change as we read.
	 * tail is read before head so that the pair is ordered (head only
	 * grows, tail never passes it); a daemon and writers racing ahead
	 * between the two loads can still make head - tail look too large,
	 * so a failed check is retried before the ring is called damaged.
	 */
	for (int tries = 0; tries < 4; tries++) {
		ret = guard_copy(copy, mem, sizeof(*copy));
		if (!ret)
			ret = guard_copy(&copy->tail, &((struct ring_hdr *)mem)->tail, 8);
		if (!ret)
			ret = guard_copy(&copy->head, &((struct ring_hdr *)mem)->head, 8);
		if (ret)
			goto err_unmap;
		ret = ring_validate(copy, (uint64_t)st.st_size, out);
		if (ret != -EBADMSG)
			break;
	}
	if (ret)
		goto err_unmap;
	if (!(flags & RING_OPEN_NO_PIDNS) && (copy->pidns_ino || copy->pidns_dev)) {
		uint64_t ino = 0, dev = 0;

		if (pidns_id(&ino, &dev) == 0 && (ino != copy->pidns_ino || dev != copy->pidns_dev)) {
			ret = -EXDEV;
			goto err_unmap;
		}
	}
	free(copy);
	out->hdr = mem;
	out->data = (uint8_t *)mem + RING_HDR_SIZE;
	out->map_len = (size_t)st.st_size;
	out->fd = fd;
	return 0;

err_unmap:
	free(copy);
	munmap(mem, (size_t)st.st_size);
err_close:
	close(fd);
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	return ret;
}

void ring_unmap(struct ring_map *m)
{
	if (m->hdr)
		munmap(m->hdr, m->map_len);
	if (m->fd >= 0)
		close(m->fd);
	memset(m, 0, sizeof(*m));
	m->fd = -1;
}

int ring_unlink(const char *instance, const char *store)
{
	char name[RING_SHM_NAME_MAX];
	int ret = ring_shm_name(name, sizeof(name), instance, store);

	if (ret)
		return ret;
	return shm_unlink(name) < 0 ? -errno : 0;
}
