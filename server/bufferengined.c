/*
 * bufferengined.c - the daemon: read the config, take the instance and
 * data-directory locks, recover every store, then loop: service each
 * store (flusher.c), sleep on io_uring completions and ring doorbells at
 * once until the next interval tick, and take the completions.
 *
 * SIGTERM/SIGINT: a final flush of every store, bounded by
 * shutdown_flush_timeout, then exit; the rings stay for the next daemon.
 * Signals are blocked except while asleep in io_wait(), so one that
 * arrives between a check and the sleep still ends the sleep.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/daemon.h"
#include "server/log.h"
#include "shm/clock.h"
#include "shm/guard.h"

#define CQE_BATCH 64

static volatile sig_atomic_t got_term, got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bufferengined [-c FILE] [-v] [-q] [--syslog] [--check-config]\n"
		"  -c, --config FILE   the INI config (default: the built-in demo config)\n"
		"  -v, --verbose       log debug events too\n"
		"  -q, --quiet         log errors and warnings only\n"
		"      --syslog        log to syslog (daemon facility) as well as stderr\n"
		"      --check-config  validate the config and exit\n"
		"  -h, --help          this text\n"
		"  -V, --version       the version\n"
		"Drains each store's shared-memory ring into segment files under data_dir.\n");
}

/*
 * mkdir_p() - mkdir -p: each directory it makes is 0750 (the umask is 027
 * by then) and, with a configured group, the group's, so that its members
 * can reach the data directory.  *created: the last one was made here.
 */
static int mkdir_p(const char *path, const struct cfg_engine *e, int *created)
{
	char buf[4096];
	size_t n = strlen(path);

	*created = 0;
	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		int fd;

		if (buf[i] != '/' && buf[i] != 0)
			continue;
		buf[i] = 0;
		*created = 0;
		if (mkdir(buf, 0750) == 0) {
			*created = 1;
			/* The last one is dir_secure()'s, with its checks. */
			if (i < n && e->group_set &&
			    (fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
				if (fchown(fd, (uid_t)-1, e->group_gid) < 0)
					log_msg(LL_WARN, NULL, "%s: cannot give it to group %s: %s",
						buf, e->group, strerror(errno));
				close(fd);
			}
		} else if (errno != EEXIST) {
			return -errno;
		}
		buf[i] = path[i];
	}
	return 0;
}

/*
 * open_data_dir() - create (mkdir -p) and open the data directory, check
 * it, then lock it.  The directory is never reached through a symbolic
 * link and must belong to the daemon's user (dir_secure()); with a
 * configured group it gets that group and mode 02750.  The umask becomes
 * 027: files under data_dir get their own modes (directories 0750,
 * segments 0640), never narrower ones from the caller's umask, which would
 * shut the group out.  Returns 0 or -errno after a log line.
 */
static int open_data_dir(struct daemon *d, int *lockfd)
{
	const struct cfg_engine *e = &d->cfg.engine;
	char dir[sizeof(e->data_dir)];
	size_t len;
	int fd, ret, created;

	/* "dir/" would follow a link named dir whatever O_NOFOLLOW says. */
	snprintf(dir, sizeof(dir), "%s", e->data_dir);
	for (len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
		dir[len - 1] = 0;
	umask(027);
	ret = mkdir_p(dir, e, &created);
	if (ret) {
		log_msg(LL_ERR, NULL, "%s: cannot create the data directory: %s", dir,
			strerror(-ret));
		return ret;
	}
	d->datafd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->datafd < 0) {
		ret = -errno;
		dir_refused(AT_FDCWD, dir, dir, NULL, ret);
		return ret;
	}
	ret = dir_secure(d->datafd, dir, NULL, e, created);
	if (ret)
		return ret;
	fd = openat(d->datafd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0) {
		ret = -errno;
		log_msg(LL_ERR, NULL, "%s/.lock: %s", dir, strerror(-ret));
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char other[BE_NAME_MAX + 1] = "";
		ssize_t n = pread(fd, other, sizeof(other) - 1, 0);

		if (n > 0)
			other[strcspn(other, "\n")] = 0;
		log_msg(LL_ERR, NULL, "%s is in use by another daemon (instance '%s')", dir,
			n > 0 ? other : "?");
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, 0) == 0) {
		dprintf(fd, "%s\n", d->instance);
		fsync(fd);
	}
	*lockfd = fd;
	return 0;
}

/*
 * instance_lock() - take the instance lock: the file path in /dev/shm,
 * flock()ed, with the running pid in it.  /dev/shm is world-writable, so
 * the file is opened without following a symbolic link (a planted link
 * would have the daemon truncate its target) and must be a regular file of
 * the daemon's user; O_CLOEXEC, O_NONBLOCK (a planted FIFO).  libbsd's
 * pidfile_open() did neither.  A holder that removes the file as it exits
 * may do so between our open and our lock: then the lock is on a name
 * that is gone, and we start again.
 * Returns the locked fd, or -1 after a log line.
 */
static int instance_lock(const char *path, const char *instance)
{
	char who[300], me[300];
	struct stat sb, now;
	int fd;

	for (int tries = 0;; tries++) {
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
		if (fd < 0) {
			int err = errno;

			if (lstat(path, &sb) < 0)
				log_msg(LL_ERR, NULL, "%s: %s", path, strerror(err));
			else if (S_ISLNK(sb.st_mode))
				log_msg(LL_ERR, NULL, "%s is a symbolic link (owner %s), not the "
					"instance lock: refused; remove it", path,
					owner_desc(sb.st_uid, who, sizeof(who)));
			else
				log_msg(LL_ERR, NULL, "%s (owner %s): %s", path,
					owner_desc(sb.st_uid, who, sizeof(who)), strerror(err));
			return -1;
		}
		if (fstat(fd, &sb) < 0) {
			log_msg(LL_ERR, NULL, "%s: %s", path, strerror(errno));
			goto err_close;
		}
		if (!S_ISREG(sb.st_mode)) {
			log_msg(LL_ERR, NULL, "%s is not a regular file (owner %s): refused; remove it",
				path, owner_desc(sb.st_uid, who, sizeof(who)));
			goto err_close;
		}
		if (sb.st_uid != geteuid()) {
			log_msg(LL_ERR, NULL, "%s belongs to %s, not to the daemon's %s: refused; "
				"remove it", path, owner_desc(sb.st_uid, who, sizeof(who)),
				owner_desc(geteuid(), me, sizeof(me)));
			goto err_close;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			char other[32] = "";
			ssize_t n;

			if (errno != EWOULDBLOCK) {
				log_msg(LL_ERR, NULL, "%s: %s", path, strerror(errno));
				goto err_close;
			}
			n = pread(fd, other, sizeof(other) - 1, 0);
			other[n > 0 ? n : 0] = 0;
			other[strcspn(other, "\n")] = 0;
			log_msg(LL_ERR, NULL, "instance '%s' is already served by pid %s", instance,
				other[0] ? other : "?");
			goto err_close;
		}
		if (lstat(path, &now) == 0 && now.st_dev == sb.st_dev && now.st_ino == sb.st_ino)
			break;
		close(fd);
		if (tries == 10) {
			log_msg(LL_ERR, NULL, "%s keeps being replaced: cannot take the instance lock",
				path);
			return -1;
		}
	}
	if (ftruncate(fd, 0) == 0)
		dprintf(fd, "%d\n", (int)getpid());
	return fd;

err_close:
	close(fd);
	return -1;
}

/* instance_unlock() - remove the lock file (if it is still ours), then unlock. */
static void instance_unlock(const char *path, int fd)
{
	struct stat sb, now;

	if (fd < 0)
		return;
	if (fstat(fd, &sb) == 0 && lstat(path, &now) == 0 && now.st_dev == sb.st_dev &&
	    now.st_ino == sb.st_ino)
		unlink(path);
	close(fd);
}

/* Bring up store i of d->cfg as d->stores[i]. */
static void store_start(struct daemon *d, unsigned i)
{
	struct store *st = &d->stores[i];

	memset(st, 0, sizeof(*st));
	st->cfg = d->cfg.stores[i];
	st->index = i;
	st->map.fd = -1;
	if (store_recover(d, st))
		st->state = ST_STOPPED;
	st->next_tick_ns = now_mono_ns() + st->cfg.flush_interval_ms * NSEC_PER_MSEC;
}

static int same_geometry(const struct cfg_store *a, const struct cfg_store *b)
{
	return a->type == b->type && a->capacity == b->capacity && a->on_full == b->on_full;
}

/*
 * SIGHUP: read the config again.  New stores are recovered and served at
 * once; a store's interval, threshold, sync mode and segment size apply at
 * once; what would need a new ring (capacity, type, on_full) or a new
 * daemon (instance, data_dir, max_workers, batch_bytes, ring_mode) is
 * refused with a log line, and the running setting stays.  A store that
 * left the config is still drained: its ring may hold records.
 */
static void reload(struct daemon *d)
{
	struct config *nc = malloc(sizeof(*nc));
	const struct cfg_engine *ne, *oe = &d->cfg.engine;
	char err[512];
	unsigned added = 0, changed = 0;
	int ret;

	if (!nc) {
		log_msg(LL_ERR, NULL, "SIGHUP: out of memory; config not reloaded");
		return;
	}
	if (d->config_path)
		ret = config_load(d->config_path, nc, err, sizeof(err));
	else
		ret = config_load_string(config_builtin, "<built-in config>", nc, err, sizeof(err));
	if (ret) {
		log_msg(LL_ERR, NULL, "SIGHUP: %s; the running config stays",
			err[0] ? err : strerror(-ret));
		goto out;
	}
	ne = &nc->engine;
	if (strcmp(ne->instance, oe->instance) != 0 || strcmp(ne->data_dir, oe->data_dir) != 0 ||
	    ne->max_workers != oe->max_workers || ne->batch_bytes != oe->batch_bytes ||
	    ne->ring_mode != oe->ring_mode || ne->group_set != oe->group_set ||
	    (ne->group_set && ne->group_gid != oe->group_gid))
		log_msg(LL_WARN, NULL, "SIGHUP: instance, data_dir, max_workers, batch_bytes, "
			"ring_mode and group apply at the next start only");
	d->cfg.engine.shutdown_flush_timeout_ms = ne->shutdown_flush_timeout_ms;

	for (unsigned i = 0; i < nc->nstores; i++) {
		const struct cfg_store *ns = &nc->stores[i];
		struct store *st = NULL;

		for (unsigned j = 0; j < d->nstores; j++)
			if (!strcmp(d->stores[j].cfg.name, ns->name))
				st = &d->stores[j];
		if (st) {
			if (!same_geometry(&st->cfg, ns)) {
				log_msg(LL_ERR, ns->name, "SIGHUP: type, capacity or on_full changed: "
					"refused (a ring is never replaced under its writers)");
				continue;
			}
			if (st->cfg.flush_bytes == ns->flush_bytes &&
			    st->cfg.flush_interval_ms == ns->flush_interval_ms &&
			    st->cfg.sync == ns->sync && st->cfg.segment_bytes == ns->segment_bytes &&
			    st->cfg.retain_bytes == ns->retain_bytes &&
			    st->cfg.retain_age_ms == ns->retain_age_ms)
				continue;
			st->cfg.flush_bytes = ns->flush_bytes;
			st->cfg.flush_interval_ms = ns->flush_interval_ms;
			st->cfg.sync = ns->sync;
			st->cfg.segment_bytes = ns->segment_bytes;
			st->cfg.retain_bytes = ns->retain_bytes;
			st->cfg.retain_age_ms = ns->retain_age_ms;
			st->next_retain_ns = 0; /* the new limits apply at once */
			st->next_tick_ns = now_mono_ns() + ns->flush_interval_ms * NSEC_PER_MSEC;
			store_set_flush_bytes(st);
			changed++;
			continue;
		}
		if (d->nstores == CONFIG_MAX_STORES) {
			log_msg(LL_ERR, ns->name, "SIGHUP: too many stores; not added");
			continue;
		}
		{
			struct store *grown = realloc(d->stores, (d->nstores + 1) * sizeof(*grown));

			if (!grown || io_grow(d->io, d->nstores + 1)) {
				if (grown)
					d->stores = grown;
				log_msg(LL_ERR, ns->name, "SIGHUP: out of memory; not added");
				continue;
			}
			d->stores = grown;
		}
		d->cfg.stores[d->nstores] = *ns;
		d->cfg.nstores = d->nstores + 1;
		store_start(d, d->nstores);
		d->nstores++;
		added++;
	}
	for (unsigned j = 0; j < d->nstores; j++) {
		int found = 0;

		for (unsigned i = 0; i < nc->nstores && !found; i++)
			found = !strcmp(d->stores[j].cfg.name, nc->stores[i].name);
		if (!found)
			log_msg(LL_WARN, d->stores[j].cfg.name, "SIGHUP: no longer in the config; "
				"still drained until the next start");
	}
	log_msg(LL_INFO, NULL, "SIGHUP: config reloaded: %u stores added, %u changed", added,
		changed);
out:
	free(nc);
}

static uint64_t next_timeout(struct daemon *d, uint64_t now)
{
	uint64_t wake = now + NSEC_PER_SEC, cap = NSEC_PER_SEC;

	if (d->workers < d->cfg.engine.max_workers) {
		for (unsigned i = 0; i < d->nstores; i++) {
			uint64_t t = store_next_wake(&d->stores[i]);

			if (t < wake)
				wake = t;
		}
	}
	if (io_futex_polling(d->io))
		cap = 10 * NSEC_PER_MSEC;
	if (d->stopping && cap > 20 * NSEC_PER_MSEC)
		cap = 20 * NSEC_PER_MSEC;
	if (wake <= now)
		return 0;
	return wake - now < cap ? wake - now : cap;
}

static int run(struct daemon *d, const sigset_t *waitmask)
{
	struct io_cqe cqes[CQE_BATCH];
	uint64_t now;
	int n;

	for (;;) {
		now = now_mono_ns();
		if (got_term && !d->stopping) {
			d->stopping = 1;
			d->stop_deadline_ns =
				now + d->cfg.engine.shutdown_flush_timeout_ms * NSEC_PER_MSEC;
			log_msg(LL_INFO, NULL, "shutting down: final flush of every store");
		}
		if (got_hup) {
			got_hup = 0;
			if (!d->stopping)
				reload(d);
		}
		for (unsigned i = 0; i < d->nstores; i++)
			store_service(d, &d->stores[i], now);
		if (d->stopping) {
			unsigned left = 0;

			for (unsigned i = 0; i < d->nstores; i++)
				left += !store_drained(&d->stores[i]);
			if (!left)
				return 0;
			if (now >= d->stop_deadline_ns) {
				log_msg(LL_WARN, NULL,
					"shutdown_flush_timeout reached with %u stores not drained; "
					"their records stay in the rings", left);
				return 1;
			}
		}
		n = io_wait(d->io, next_timeout(d, now), waitmask, cqes, CQE_BATCH);
		if (n < 0) {
			log_msg(LL_ERR, NULL, "waiting for I/O failed: %s", strerror(-n));
			return 1;
		}
		now = now_mono_ns();
		for (int i = 0; i < n; i++) {
			if (cqes[i].store < d->nstores)
				store_complete(d, &d->stores[cqes[i].store], &cqes[i], now);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	char err[512], lockpath[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];
	struct daemon d;
	sigset_t block, waitmask;
	struct sigaction sa;
	int c, check_only = 0, use_syslog = 0, level = LL_INFO, lockfd = -1, ret, status = 1;
	int instfd;

	opterr = 0; /* one line of our own for a bad option */
	while ((c = getopt_long(argc, argv, ":c:vqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'v':
			level = LL_DEBUG;
			break;
		case 'q':
			level = LL_WARN;
			break;
		case 'C':
			check_only = 1;
			break;
		case 'S':
			use_syslog = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("bufferengined %s\n", BE_VERSION_STRING);
			return 0;
		case ':':
			fprintf(stderr, "bufferengined: option '%s' needs a value (see --help)\n",
				argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "bufferengined: bad option '%s' (see --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "bufferengined: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return 2;
	}
	log_set_level(level);
	if (use_syslog)
		log_to_syslog();

	memset(&d, 0, sizeof(d));
	d.datafd = -1;
	if (config_path)
		ret = config_load(config_path, &d.cfg, err, sizeof(err));
	else
		ret = config_load_string(config_builtin, "<built-in config>", &d.cfg, err,
					 sizeof(err));
	if (ret) {
		fprintf(stderr, "bufferengined: %s\n",
			err[0] ? err : strerror(-ret));
		return 1;
	}
	if (check_only) {
		printf("%s: ok (%u stores)\n", config_path ? config_path : "<built-in config>",
		       d.cfg.nstores);
		return 0;
	}
	d.instance = d.cfg.engine.instance;
	d.config_path = config_path;

	if (guard_install() < 0) {
		log_msg(LL_ERR, NULL, "cannot install the SIGBUS handler");
		return 1;
	}
	/* One daemon per instance: a lock file named like no ring can be. */
	snprintf(lockpath, sizeof(lockpath), RING_SHM_DIR "/" RING_SHM_PREFIX "%s", d.instance);
	instfd = instance_lock(lockpath, d.instance);
	if (instfd < 0)
		return 1;
	if (open_data_dir(&d, &lockfd))
		goto out;

	/* Two buffers per store in flight: one batch syncs while the next is written. */
	ret = io_init(&d.io, d.cfg.nstores, IO_SLOTS * d.cfg.engine.max_workers,
		      d.cfg.engine.batch_bytes, getenv("BE_NO_IO_URING") != NULL);
	if (ret) {
		log_msg(LL_ERR, NULL, "cannot set up I/O: %s", strerror(-ret));
		goto out;
	}
	log_msg(LL_INFO, NULL, "instance '%s', data in %s, %u stores, I/O: %s", d.instance,
		d.cfg.engine.data_dir, d.cfg.nstores, io_backend(d.io));
	d.bufsize = d.cfg.engine.batch_bytes;
	d.free_bufs = calloc((size_t)IO_SLOTS * d.cfg.engine.max_workers, sizeof(*d.free_bufs));
	d.stores = calloc(d.cfg.nstores, sizeof(*d.stores));
	if (!d.free_bufs || !d.stores) {
		log_msg(LL_ERR, NULL, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < IO_SLOTS * d.cfg.engine.max_workers; i++)
		d.free_bufs[d.nfree++] = (int)i;
	d.nstores = d.cfg.nstores;
	for (unsigned i = 0; i < d.nstores; i++)
		store_start(&d, i);

	/* Signals: blocked, except inside io_wait(). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);
	sigdelset(&waitmask, SIGHUP);

	status = run(&d, &waitmask);
	log_msg(LL_INFO, NULL, "stopped");
out:
	for (unsigned i = 0; i < d.nstores; i++)
		store_detach(&d, &d.stores[i]);
	io_exit(d.io);
	free(d.stores);
	free(d.free_bufs);
	if (lockfd >= 0)
		close(lockfd);
	if (d.datafd >= 0)
		close(d.datafd);
	instance_unlock(lockpath, instfd);
	return status;
}
