/*
 * recovery.c - bring one store up at daemon start (DESIGN.md, "Recovery
 * at start"): first the disk, then the ring.
 *
 * Disk: find the newest segment that holds a valid batch.  A newer file
 * with none (a crash during rotation, or a power loss before its first
 * sync) is set aside.  In the chosen segment, bytes after the last valid
 * batch are a torn tail and are cut; a damaged batch that a valid one
 * follows is corruption, kept and reported.  What is left is fdatasynced:
 * that much is durable, and the next batch is written at its end.
 *
 * Ring: created anew (seq above everything on disk, on a 2^32 boundary,
 * since a reader may have seen records that never reached the disk), or
 * attached.  When the last batch on disk came from this ring and ends
 * beyond its tail, the daemon died between the write and the tail update:
 * the tail moves forward to it, so nothing is written twice.  The tail
 * never moves backward.  Every step is safe to crash in and redo.
 *
 * Trust: the store's directory and its ring are opened without following a
 * symbolic link and must belong to the daemon's user; anything else (a
 * link or an object a neighbour planted in /dev/shm) is refused with a log
 * line naming the path and its owner, and the store is not served.  With
 * a configured group, directories get it (mode 02750, so that segments
 * inherit it) and rings are created with it, attached ones given it.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/daemon.h"
#include "server/hooks.h"
#include "server/log.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/futex.h"
#include "shm/guard.h"

/* ---------------------------------------------------------------------------
 * Trust: what the daemon opens under data_dir and in /dev/shm must be what
 * it (its user) made, never a symbolic link or another user's object.
 */

const char *owner_desc(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];

	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, len, "uid %u (%s)", (unsigned)uid, res->pw_name);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

void dir_refused(int atfd, const char *name, const char *path, const char *store, int err)
{
	char who[300];
	struct stat sb;

	/* Only for the message: what is there now, not what open() saw. */
	if (fstatat(atfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
		log_msg(LL_ERR, store, "%s is a symbolic link (owner %s): refused; %s", path,
			owner_desc(sb.st_uid, who, sizeof(who)),
			store ? "remove it (the daemon makes the store's directory itself)"
			      : "set data_dir to the real directory");
	else if (err == -ENOTDIR || err == -ELOOP)
		log_msg(LL_ERR, store, "%s is not a directory: refused", path);
	else
		log_msg(LL_ERR, store, "%s: %s", path, strerror(-err));
}

#define DIR_MODE 0750u
#define DIR_MODE_GROUP (02000u | DIR_MODE) /* setgid: new files get the group */

int dir_secure(int fd, const char *path, const char *store, const struct cfg_engine *e,
	       int created)
{
	char who[300], me[300];
	struct stat sb;
	mode_t want;

	if (fstat(fd, &sb) < 0) {
		int ret = -errno;

		log_msg(LL_ERR, store, "%s: %s", path, strerror(-ret));
		return ret;
	}
	if (!S_ISDIR(sb.st_mode)) {
		log_msg(LL_ERR, store, "%s is not a directory: refused", path);
		return -ENOTDIR;
	}
	if (sb.st_uid != geteuid()) {
		log_msg(LL_ERR, store, "%s belongs to %s, not to the daemon's %s: refused "
			"(chown it, or run the daemon as its owner)", path,
			owner_desc(sb.st_uid, who, sizeof(who)),
			owner_desc(geteuid(), me, sizeof(me)));
		return -EPERM;
	}
	if (e->group_set && sb.st_gid != e->group_gid &&
	    fchown(fd, (uid_t)-1, e->group_gid) < 0) {
		int ret = -errno;

		log_msg(LL_ERR, store, "%s: cannot give it to group %s: %s (the daemon's user "
			"must belong to the group)", path, e->group, strerror(-ret));
		return ret;
	}
	if (e->group_set)
		want = DIR_MODE_GROUP;
	else if (created)
		want = DIR_MODE;
	else
		want = sb.st_mode & 07777; /* an existing directory keeps its mode */
	if ((sb.st_mode & 07777) != want && fchmod(fd, want) < 0) {
		int ret = -errno;

		log_msg(LL_ERR, store, "%s: cannot set mode %04o: %s", path, (unsigned)want,
			strerror(-ret));
		return ret;
	}
	if (want & 0002)
		log_msg(LL_WARN, store, "%s is writable by every user (mode %04o): anyone can "
			"remove or replace what the daemon keeps there", path, (unsigned)want);
	return 0;
}

struct scan_ctx {
	const char *store;
	const char *file;
};

static void report_corrupt(uint64_t offset, uint64_t len, void *arg)
{
	struct scan_ctx *c = arg;

	log_msg(LL_ERR, c->store,
		"%s: corrupt batch at offset %llu (%llu bytes), kept; valid batches follow",
		c->file, (unsigned long long)offset, (unsigned long long)len);
}

/* Set aside a segment without a valid batch: removed if it holds only a header. */
static int set_aside(struct store *st, const char *name, uint64_t size)
{
	char aside[SEG_NAME_LEN + 16];

	if (size <= SEG_FILE_HDR_SIZE) {
		if (unlinkat(st->dirfd, name, 0) < 0)
			return -errno;
		log_msg(LL_INFO, st->cfg.name, "%s: removed an empty segment", name);
	} else {
		snprintf(aside, sizeof(aside), "%s.torn", name);
		if (renameat(st->dirfd, name, st->dirfd, aside) < 0)
			return -errno;
		log_msg(LL_WARN, st->cfg.name,
			"%s: no valid batch in %llu bytes: moved to %s", name,
			(unsigned long long)size, aside);
	}
	if (!hook_no_fdatasync() && fsync(st->dirfd) < 0)
		return -errno;
	hook_dirsynced(st->dirfd);
	return 0;
}

struct disk_state {
	uint64_t max_seq;         /* 0: nothing on disk */
	uint64_t last_incarnation;
	uint64_t last_end_pos;
};

static int recover_disk(struct store *st, struct disk_state *ds)
{
	uint64_t *seqs = NULL;
	int n, ret = 0;

	memset(ds, 0, sizeof(*ds));
	n = seg_list(st->dirfd, &seqs);
	if (n < 0)
		return n;
	for (int i = n - 1; i >= 0; i--) {
		struct seg_scan_result r;
		char name[SEG_NAME_LEN + 1];
		struct scan_ctx ctx = { .store = st->cfg.name, .file = name };
		struct stat sb;
		int fd;

		seg_name(name, seqs[i]);
		fd = openat(st->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			ret = -errno;
			goto out;
		}
		memset(&r, 0, sizeof(r));
		ret = seg_scan(fd, &r, NULL, report_corrupt, &ctx);
		if (ret == -EBADMSG || ret == -EPROTO || (ret == 0 && r.batches == 0)) {
			/* Newest files without a valid batch: left by a crash, never acknowledged. */
			if (fstat(fd, &sb) < 0)
				sb.st_size = 0;
			close(fd);
			if (ret)
				log_msg(LL_WARN, st->cfg.name, "%s: bad file header (%s)", name,
					strerror(-ret));
			ret = set_aside(st, name, (uint64_t)sb.st_size);
			if (ret)
				goto out;
			continue;
		}
		if (ret) {
			close(fd);
			goto out;
		}
		if (r.torn_bytes) {
			log_msg(LL_WARN, st->cfg.name,
				"%s: torn tail of %llu bytes at offset %llu removed", name,
				(unsigned long long)r.torn_bytes, (unsigned long long)r.valid_end);
			if (ftruncate(fd, (off_t)r.valid_end) < 0) {
				ret = -errno;
				close(fd);
				goto out;
			}
			hook_point("recovery_truncated");
		}
		/* What is left is what is durable. */
		if (hook_fdatasync(fd) < 0) {
			ret = -errno;
			close(fd);
			goto out;
		}
		hook_synced(st->dirfd, name, r.valid_end);
		ds->max_seq = r.last_seq;
		ds->last_incarnation = r.last_incarnation;
		ds->last_end_pos = r.last_end_pos;
		st->segfd = fd;
		st->seg_first_seq = seqs[i];
		st->seg_off = st->synced_off = r.valid_end;
		break;
	}
out:
	free(seqs);
	return ret;
}

#define SEQ_FLOOR_FILE "seq-floor"

/*
 * The first seq of the last ring created for this store, kept on disk: a
 * ring lost whole (a reboot before any of its batches was synced) leaves
 * no trace in the segments, yet a reader may have seen its seqs.  The
 * next ring starts above this floor too.  Returns 0 (none or unreadable:
 * 0) or the floor.  The file holds the decimal number and a newline, as
 * seq_floor_write() writes it; anything else (a sign, other characters,
 * a number over 64 bits) is unreadable.
 */
static uint64_t seq_floor_read(int dirfd)
{
	char buf[32], *end;
	unsigned long long v;
	ssize_t n;
	int fd = openat(dirfd, SEQ_FLOOR_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (buf[0] < '0' || buf[0] > '9')
		return 0;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || (*end && strcmp(end, "\n") != 0))
		return 0;
	return v;
}

/* Write the floor durably (temporary file, fdatasync, rename, directory fsync). */
static int seq_floor_write(int dirfd, uint64_t first_seq)
{
	char buf[32];
	int fd, n, ret = 0;

	n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", first_seq);
	fd = openat(dirfd, SEQ_FLOOR_FILE ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		    O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || hook_fdatasync(fd) < 0)
		ret = errno ? -errno : -EIO;
	close(fd);
	if (!ret && renameat(dirfd, SEQ_FLOOR_FILE ".tmp", dirfd, SEQ_FLOOR_FILE) < 0)
		ret = -errno;
	if (!ret && !hook_no_fdatasync() && fsync(dirfd) < 0)
		ret = -errno;
	if (!ret)
		hook_dirsynced(dirfd);
	return ret;
}

/* The ring's path in /dev/shm, for messages. */
static const char *ring_path(const struct daemon *d, const char *store, char *buf, size_t len)
{
	char name[RING_SHM_NAME_MAX];

	if (ring_shm_name(name, sizeof(name), d->instance, store) < 0)
		snprintf(name, sizeof(name), "/?");
	snprintf(buf, len, RING_SHM_DIR "%s", name);
	return buf;
}

/*
 * ring_refused() - say why ring_open() refused an existing ring; err is
 * its error.  What is under the name is looked at again, for the message
 * only.
 */
static void ring_refused(const char *path, const char *store, int err)
{
	char who[300], me[300];
	struct stat sb;
	int have = lstat(path, &sb) == 0;

	if (err == -ELOOP && have && S_ISLNK(sb.st_mode))
		log_msg(LL_ERR, store, "%s is a symbolic link (owner %s), not a ring: refused; "
			"store not served until it is removed", path,
			owner_desc(sb.st_uid, who, sizeof(who)));
	else if (err == -EPERM && have)
		log_msg(LL_ERR, store, "%s belongs to %s, not to the daemon's %s: refused; "
			"store not served (only the daemon's user creates rings: remove it)",
			path, owner_desc(sb.st_uid, who, sizeof(who)),
			owner_desc(geteuid(), me, sizeof(me)));
	else if (err == -EBADMSG && have && !S_ISREG(sb.st_mode))
		log_msg(LL_ERR, store, "%s is not a regular file (owner %s): refused; store not "
			"served until it is removed", path, owner_desc(sb.st_uid, who, sizeof(who)));
	else
		log_msg(LL_ERR, store, "cannot attach the ring %s: %s", path, strerror(-err));
}

/*
 * ring_set_perms() - give an attached ring (the daemon's own: checked at
 * open) the configured group and mode, should they have changed since it
 * was created.  A failure is logged; the ring is served all the same.
 */
static void ring_set_perms(struct daemon *d, struct store *st, const char *path)
{
	const struct cfg_engine *e = &d->cfg.engine;
	struct stat sb;

	if (fstat(st->map.fd, &sb) < 0)
		return;
	if (e->group_set && sb.st_gid != e->group_gid) {
		if (fchown(st->map.fd, (uid_t)-1, e->group_gid) < 0)
			log_msg(LL_WARN, st->cfg.name, "%s: cannot give it to group %s: %s", path,
				e->group, strerror(errno));
		else
			log_msg(LL_INFO, st->cfg.name, "%s: given to group %s", path, e->group);
		sb.st_mode &= ~(mode_t)06000; /* a chown may clear them: set the mode again */
	}
	if ((sb.st_mode & 07777) != e->ring_mode) {
		if (fchmod(st->map.fd, e->ring_mode) < 0)
			log_msg(LL_WARN, st->cfg.name, "%s: cannot set mode %04o: %s", path,
				e->ring_mode, strerror(errno));
		else
			log_msg(LL_INFO, st->cfg.name, "%s: mode set to %04o", path, e->ring_mode);
	}
}

static int attach_ring(struct daemon *d, struct store *st, const struct disk_state *ds)
{
	char path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];
	struct ring_hdr *h;
	struct guard_frame gf;
	uint64_t head, tail, next_seq, first_seq, acked;
	int ret;

	ring_path(d, st->cfg.name, path, sizeof(path));
	/* Never through a symbolic link, never another user's object. */
	ret = ring_open(d->instance, st->cfg.name, RING_OPEN_OWNED, &st->map);
	if (ret == -ENOENT) {
		uint64_t floor = seq_floor_read(st->dirfd);
		uint64_t base = ds->max_seq > floor ? ds->max_seq : floor;

		if (base >= RING_SEQ_FIRST_MAX - (UINT64_C(1) << 32)) {
			log_msg(LL_ERR, st->cfg.name, "the disk's highest seq %llu leaves no room for "
				"a new ring: store not served", (unsigned long long)base);
			return -ERANGE;
		}
		struct ring_params p = {
			.store = st->cfg.name,
			.capacity = st->cfg.capacity,
			.store_type = (uint32_t)st->cfg.type,
			.on_full = st->cfg.on_full == CFG_ON_FULL_DROP ? RING_ON_FULL_DROP
								      : RING_ON_FULL_BLOCK,
			.first_seq = base ? ((base >> 32) + 1) << 32 : 1,
			.flush_bytes = st->cfg.flush_bytes,
			.mode = d->cfg.engine.ring_mode,
			.set_gid = d->cfg.engine.group_set,
			.gid = d->cfg.engine.group_gid,
		};

		/* The floor is durable before any seq of the new ring can be seen. */
		ret = seq_floor_write(st->dirfd, p.first_seq);
		if (ret) {
			log_msg(LL_ERR, st->cfg.name, "cannot record the new ring's first seq: %s",
				strerror(-ret));
			return ret;
		}
		ret = ring_create(d->instance, &p, &st->map);
		if (ret == -EPERM && p.set_gid) {
			log_msg(LL_ERR, st->cfg.name, "cannot create the ring %s: cannot give it to "
				"group %s (the daemon's user must belong to the group)", path,
				d->cfg.engine.group);
			return ret;
		}
		if (ret) {
			log_msg(LL_ERR, st->cfg.name, "cannot create the ring %s: %s", path,
				strerror(-ret));
			return ret;
		}
		log_msg(LL_INFO, st->cfg.name, "ring created: %llu bytes, first seq %llu",
			(unsigned long long)p.capacity, (unsigned long long)p.first_seq);
		st->tail = st->durable_pos = 0;
		st->written_seq = st->durable_seq = p.first_seq;
		goto publish;
	}
	if (ret) {
		ring_refused(path, st->cfg.name, ret);
		return ret;
	}
	ring_set_perms(d, st, path);
	if (st->map.capacity != st->cfg.capacity || st->map.store_type != (uint32_t)st->cfg.type ||
	    st->map.on_full != (uint32_t)st->cfg.on_full) {
		log_msg(LL_ERR, st->cfg.name,
			"the ring (capacity %llu, type %u, on_full %u) differs from the config "
			"(capacity %llu, type %d, on_full %d): store not served; a ring is never "
			"replaced under its writers: drain it, stop them, remove it",
			(unsigned long long)st->map.capacity, st->map.store_type, st->map.on_full,
			(unsigned long long)st->cfg.capacity, st->cfg.type, st->cfg.on_full);
		return -EEXIST;
	}
	h = st->map.hdr;
	GUARD_TRY(gf) {
		/* Acquire: tail before head, so that the pair is ordered (head only grows). */
		tail = load_acquire(&h->tail);
		head = load_acquire(&h->head);
		next_seq = READ_ONCE(h->next_seq);
		first_seq = READ_ONCE(h->first_seq);
		acked = READ_ONCE(h->durable_seq);
		GUARD_END(gf);
	} else {
		return -EFAULT;
	}
	if (tail > head || head - tail > st->map.capacity || ((head | tail) & (REC_ALIGN - 1))) {
		log_msg(LL_ERR, st->cfg.name, "the ring is damaged: head %llu, tail %llu",
			(unsigned long long)head, (unsigned long long)tail);
		return -EBADMSG;
	}
	if (ds->max_seq && next_seq <= ds->max_seq) {
		log_msg(LL_ERR, st->cfg.name,
			"the ring's next seq %llu is not above the disk's %llu: store not served",
			(unsigned long long)next_seq, (unsigned long long)ds->max_seq);
		return -EBADMSG;
	}
	/*
	 * What the last daemon acknowledged as durable and the disk no longer
	 * holds (a damaged or cut segment): say so, with the seqs.  The count
	 * is an upper bound, since seqs may have gaps.
	 */
	if (acked > ds->max_seq + 1 && acked > first_seq && acked <= next_seq) {
		uint64_t from = ds->max_seq + 1 > first_seq ? ds->max_seq + 1 : first_seq;

		if (acked > from)
			log_msg(LL_ERR, st->cfg.name,
				"the disk lost records acknowledged as durable: seqs %llu..%llu "
				"(at most %llu records)", (unsigned long long)from,
				(unsigned long long)(acked - 1), (unsigned long long)(acked - from));
	}
	st->written_seq = first_seq > ds->max_seq + 1 ? first_seq : ds->max_seq + 1;
	if (ds->max_seq && ds->last_incarnation == st->map.incarnation) {
		if (ds->last_end_pos > head || (ds->last_end_pos & (REC_ALIGN - 1))) {
			log_msg(LL_ERR, st->cfg.name,
				"the disk holds ring bytes up to %llu, beyond the ring's head %llu",
				(unsigned long long)ds->last_end_pos, (unsigned long long)head);
			return -EBADMSG;
		}
		if (ds->last_end_pos > tail) {
			/* Written (and now synced) but the tail never moved: move it. */
			log_msg(LL_INFO, st->cfg.name,
				"the disk already holds ring bytes %llu..%llu: tail moved forward",
				(unsigned long long)tail, (unsigned long long)ds->last_end_pos);
			tail = ds->last_end_pos;
		} else if (ds->last_end_pos < tail) {
			log_msg(LL_WARN, st->cfg.name,
				"the ring's tail %llu is beyond the disk's last batch (%llu): "
				"segments were lost or removed",
				(unsigned long long)tail, (unsigned long long)ds->last_end_pos);
		}
		st->written_seq = ds->max_seq + 1;
	}
	st->tail = st->durable_pos = tail;
	st->durable_seq = st->written_seq;
	log_msg(LL_INFO, st->cfg.name, "ring attached: %llu unflushed bytes",
		(unsigned long long)(head - tail));

publish:
	h = st->map.hdr;
	GUARD_TRY(gf) {
		WRITE_ONCE(h->flush_bytes, st->cfg.flush_bytes);
		WRITE_ONCE(h->daemon_pid, (uint32_t)getpid());
		WRITE_ONCE(h->heartbeat_ns, now_mono_ns());
		WRITE_ONCE(h->last_error, 0);
		/* Release: pairs with the writers' and be_flush's acquire loads. */
		store_release(&h->tail, st->tail);
		store_release(&h->durable_pos, st->durable_pos);
		store_release(&h->durable_seq, st->durable_seq);
		store_release(&h->daemon_state, (uint32_t)RING_DAEMON_RUNNING);
		futex_bump_wake(&h->space_gen);
		futex_bump_wake(&h->durable_gen);
		GUARD_END(gf);
	} else {
		return -EFAULT;
	}
	return 0;
}

int store_recover(struct daemon *d, struct store *st)
{
	char path[sizeof(d->cfg.engine.data_dir) + BE_NAME_MAX + 2];
	struct disk_state ds;
	int ret, created = 0;

	st->segfd = -1;
	st->dirfd = -1;
	for (unsigned i = 0; i < IO_SLOTS; i++)
		st->bt[i].buf_index = -1;
	snprintf(path, sizeof(path), "%s/%s", d->cfg.engine.data_dir, st->cfg.name);
	if (mkdirat(d->datafd, st->cfg.name, 0750) == 0) {
		created = 1;
		/* The store's directory must outlive a power loss like its segments. */
		if (!hook_no_fdatasync() && fsync(d->datafd) < 0) {
			ret = -errno;
			log_msg(LL_ERR, st->cfg.name, "cannot sync the data directory: %s",
				strerror(-ret));
			return ret;
		}
		hook_dirsynced(d->datafd);
	} else if (errno != EEXIST) {
		ret = -errno;
		log_msg(LL_ERR, st->cfg.name, "cannot create its directory: %s", strerror(-ret));
		return ret;
	}
	/* Never through a symbolic link; then it must be the daemon's own. */
	st->dirfd = openat(d->datafd, st->cfg.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->dirfd < 0) {
		ret = -errno;
		dir_refused(d->datafd, st->cfg.name, path, st->cfg.name, ret);
		return ret;
	}
	ret = dir_secure(st->dirfd, path, st->cfg.name, &d->cfg.engine, created);
	if (ret)
		return ret;
	ret = recover_disk(st, &ds);
	if (ret) {
		log_msg(LL_ERR, st->cfg.name, "recovery of its segments failed: %s",
			strerror(-ret));
		return ret;
	}
	return attach_ring(d, st, &ds);
}
