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
#include <bsd/libutil.h>
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

/* mkdir -p, each new directory 0750. */
static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		buf[i] = 0;
		if (mkdir(buf, 0750) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

static int open_data_dir(struct daemon *d, int *lockfd)
{
	const char *dir = d->cfg.engine.data_dir;
	int fd, ret;

	ret = mkdir_p(dir);
	if (ret) {
		log_msg(LL_ERR, NULL, "%s: cannot create the data directory: %s", dir,
			strerror(-ret));
		return ret;
	}
	d->datafd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->datafd < 0) {
		ret = -errno;
		log_msg(LL_ERR, NULL, "%s: %s", dir, strerror(-ret));
		return ret;
	}
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
	if (strcmp(ne->instance, oe->instance) || strcmp(ne->data_dir, oe->data_dir) ||
	    ne->max_workers != oe->max_workers || ne->batch_bytes != oe->batch_bytes ||
	    ne->ring_mode != oe->ring_mode)
		log_msg(LL_WARN, NULL, "SIGHUP: instance, data_dir, max_workers, batch_bytes and "
			"ring_mode apply at the next start only");
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
	struct pidfh *pfh = NULL;
	struct daemon d;
	sigset_t block, waitmask;
	struct sigaction sa;
	int c, check_only = 0, use_syslog = 0, level = LL_INFO, lockfd = -1, ret, status = 1;
	pid_t other;

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
	pfh = pidfile_open(lockpath, 0600, &other);
	if (!pfh) {
		if (errno == EEXIST)
			log_msg(LL_ERR, NULL, "instance '%s' is already served by pid %d",
				d.instance, (int)other);
		else
			log_msg(LL_ERR, NULL, "%s: %s", lockpath, strerror(errno));
		return 1;
	}
	pidfile_write(pfh);
	if (open_data_dir(&d, &lockfd))
		goto out;

	ret = io_init(&d.io, d.cfg.nstores, d.cfg.engine.max_workers,
		      d.cfg.engine.batch_bytes, getenv("BE_NO_IO_URING") != NULL);
	if (ret) {
		log_msg(LL_ERR, NULL, "cannot set up I/O: %s", strerror(-ret));
		goto out;
	}
	log_msg(LL_INFO, NULL, "instance '%s', data in %s, %u stores, I/O: %s", d.instance,
		d.cfg.engine.data_dir, d.cfg.nstores, io_backend(d.io));
	d.bufsize = d.cfg.engine.batch_bytes;
	d.free_bufs = calloc(d.cfg.engine.max_workers, sizeof(*d.free_bufs));
	d.stores = calloc(d.cfg.nstores, sizeof(*d.stores));
	if (!d.free_bufs || !d.stores) {
		log_msg(LL_ERR, NULL, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < d.cfg.engine.max_workers; i++)
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
	if (pfh)
		pidfile_remove(pfh);
	return status;
}
