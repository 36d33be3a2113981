/*
 * bench_scale.c - records/s through the real daemon as the ring grows and
 * as the stores multiply.
 *
 *   capacity  one raw store of capacity 64K, 256K, 1M, 4M, 16M, 64M, 256M
 *             (-c LIST), flush_bytes at its default (1M, or half the ring
 *             when that is smaller); one writer process appends 64-byte
 *             records (-s) with be_write for --seconds per run.
 *   stores    N raw stores of 1 MiB each (N in -S LIST, default 1,4,16,64),
 *             one writer process per store, all appending for --seconds.
 *
 * Every configuration gets a fresh bufferengined (sync = none: the figure
 * is the ring and the daemon, not the disk's fdatasync; max_workers 4, the
 * default) whose data directory is under --data-dir (default /dev/shm, a
 * tmpfs, so that the disk's write-back does not set the pace either), and
 * --runs runs on it.  records/s = every record appended / (first writer's
 * start .. last writer's end); the writers wait for space whenever the
 * daemon has not drained the ring yet, which is what the figure shows.
 * The appends that waited and the daemon's CPU share are in the notes.
 *
 * CSV lines on stdout (bench.h), bench "scale-capacity" (system
 * "bufferengine ring <capacity>") and "scale-stores" (system "bufferengine
 * <N> stores", writers N); progress on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/bench/bench.h"
#include "tests/testutil.h"

#define MAX_LIST 16

enum { CMD_RUN = 1 };

struct opts {
	uint64_t caps[MAX_LIST];
	unsigned ncaps;
	unsigned stores[MAX_LIST];
	unsigned nstores;
	unsigned payload;
	unsigned runs;
	double seconds;
	const char *data_dir;

	/* Per configuration. */
	char instance[64];
	unsigned nstore;             /* stores of the configuration: writer i -> store i % n */
	int prefix_caps;             /* store names: "c0" (capacity) or "s<i>" (stores) */
};

struct wstate {
	be_store *s;
	uint8_t *payload;
};

static struct opts O;
static struct bench_team *cur_team;
static struct tu_daemon *cur_daemon;

static void on_signal(int sig)
{
	if (cur_team)
		bench_team_kill(cur_team);
	if (cur_daemon && cur_daemon->pid > 0) {
		kill(cur_daemon->pid, SIGKILL);
		waitpid(cur_daemon->pid, NULL, 0);
	}
	_exit(128 + sig);
}

static void store_name(char *out, size_t len, unsigned i)
{
	snprintf(out, len, "s%u", i);
}

static int w_setup(struct bench_worker *w)
{
	/* The daemon creates its rings one by one: wait for ours to appear. */
	struct be_open_opts bo = { .instance = O.instance, .write_timeout_ms = 30000,
				   .open_timeout_ms = 10000 };
	struct wstate *ws = calloc(1, sizeof(*ws));
	char name[32], shm[RING_SHM_NAME_MAX];
	int ret;

	if (!ws)
		return -ENOMEM;
	/* Pinned only while there are no more writers than CPUs: beyond, the scheduler. */
	if (w->nworkers <= (unsigned)sysconf(_SC_NPROCESSORS_ONLN) && bench_pin(w->idx) < 0)
		return -EINVAL;
	ws->payload = malloc(O.payload);
	if (!ws->payload)
		return -ENOMEM;
	memset(ws->payload, 'a' + (int)(w->idx % 26), O.payload);
	store_name(name, sizeof(name), w->idx % O.nstore);
	ret = be_open(name, &bo, &ws->s);
	if (ret) {
		bench_slot_fail(w->slot, ret, "be_open %s: %s", name, be_strerror(ret));
		return ret;
	}
	if (ring_shm_name(shm, sizeof(shm), O.instance, name) == 0)
		bench_prefault_shm(shm + 1);
	w->state = ws;
	return 0;
}

static int w_step(struct bench_worker *w, unsigned cmd, unsigned run)
{
	struct wstate *ws = w->state;
	struct bench_slot *sl = w->slot;
	uint64_t i = 0, end;
	int ret = 0;

	(void)run;
	if (cmd != CMD_RUN)
		return -EINVAL;
	bench_worker_barrier(w);
	sl->t_start = bench_now_ns();
	end = sl->t_start + (uint64_t)(O.seconds * 1e9);
	for (;;) {
		for (unsigned k = 0; k < 256; k++, i++) {
			ret = be_write(ws->s, ws->payload, O.payload);
			if (__builtin_expect(ret != 0, 0))
				goto out;
		}
		if (bench_now_ns() >= end)
			break;
	}
out:
	sl->t_end = bench_now_ns();
	sl->ops = i;
	sl->bytes = i * O.payload;
	if (ret)
		bench_slot_fail(sl, ret, "be_write #%llu: %s", (unsigned long long)i, be_strerror(ret));
	return ret;
}

static const struct bench_team_ops team_ops = { .setup = w_setup, .step = w_step };

/* A fresh daemon with n stores of `cap` bytes, data under O.data_dir. */
static int daemon_up(struct tu_daemon *d, char *data_dir, size_t dlen, unsigned n, uint64_t cap)
{
	size_t len = 256 + (size_t)n * 160;
	char *stores = malloc(len), *p;
	FILE *f;

	if (!stores)
		return -1;
	p = stores;
	for (unsigned i = 0; i < n; i++) {
		char name[32];

		store_name(name, sizeof(name), i);
		p += sprintf(p, "[store %s]\ntype = raw\ncapacity = %llu\nsync = none\n"
			     "flush_interval = 100ms\n", name, (unsigned long long)cap);
	}
	tu_daemon_config(d, NULL, stores);
	if ((size_t)snprintf(data_dir, dlen, "%s/be-bench-scale-%s", O.data_dir, d->instance) >=
	    dlen)
		bench_die("--data-dir too long");
	if (strlen(data_dir) >= sizeof(d->data_dir))
		bench_die("--data-dir too long");
	memcpy(d->data_dir, data_dir, strlen(data_dir) + 1);
	f = fopen(d->conf, "w");
	if (!f)
		bench_die("%s: %s", d->conf, strerror(errno));
	fprintf(f, "[engine]\ninstance = %s\ndata_dir = %s\n%s", d->instance, data_dir, stores);
	fclose(f);
	free(stores);
	snprintf(O.instance, sizeof(O.instance), "%s", d->instance);
	cur_daemon = d;
	if (tu_daemon_start(d, "s0") < 0) {
		fprintf(stderr, "bench: bufferengined did not come up; its log (%s):\n%s\n", d->log,
			tu_file_text(d->log));
		return -1;
	}
	return 0;
}

static void daemon_down(struct tu_daemon *d, const char *data_dir, unsigned n)
{
	char path[512];

	if (d->pid > 0)
		tu_daemon_stop(d, SIGTERM);
	cur_daemon = NULL;
	for (unsigned i = 0; i < n; i++) {
		char name[32];

		store_name(name, sizeof(name), i);
		ring_unlink(d->instance, name);
	}
	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s", d->instance);
	unlink(path);
	bench_rm_rf(data_dir);
	bench_rm_rf(d->dir);
}

static uint64_t full_waits(unsigned n)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++) {
		struct ring_map m;
		char name[32];

		store_name(name, sizeof(name), i);
		if (ring_open(O.instance, name, RING_OPEN_RDONLY, &m) == 0) {
			sum += READ_ONCE(m.hdr->full_waits);
			ring_unmap(&m);
		}
	}
	return sum;
}

/* One configuration: n stores of cap bytes, nw writers. */
static int config(const char *bench, const char *system, unsigned n, uint64_t cap, unsigned nw,
		  const char *what)
{
	struct tu_daemon d;
	struct bench_team team;
	char data_dir[512], note[600];
	double rate[100], waits = 0, cpu = 0, wall = 0;
	int ret = -1;

	memset(&team, 0, sizeof(team));
	O.nstore = n;
	fprintf(stderr, "%s: %u store%s of %llu KiB, %u writer%s, %u runs of %.1f s\n", bench, n,
		n > 1 ? "s" : "", (unsigned long long)(cap >> 10), nw, nw > 1 ? "s" : "", O.runs,
		O.seconds);
	if (daemon_up(&d, data_dir, sizeof(data_dir), n, cap) < 0)
		goto out;
	if (bench_team_start(&team, nw, &team_ops, NULL) < 0)
		goto out;
	cur_team = &team;
	for (unsigned r = 0; r < O.runs; r++) {
		uint64_t ops = 0, span, w0 = full_waits(n);
		double c0 = bench_proc_cpu_s(d.pid);

		if (bench_team_step(&team, CMD_RUN, r) < 0)
			goto out;
		span = bench_team_span_ns(&team);
		for (unsigned i = 0; i < nw; i++)
			ops += team.ctl->slot[i].ops;
		rate[r] = (double)ops * 1e9 / (double)span;
		waits += (double)(full_waits(n) - w0);
		cpu += bench_proc_cpu_s(d.pid) - c0;
		wall += (double)span / 1e9;
		fprintf(stderr, "  run %u: %.2f M records/s\n", r + 1, rate[r] / 1e6);
	}
	snprintf(note, sizeof(note),
		 "%s; %u-byte records; bufferengined sync none, max_workers 4; data on %s; %.1f s "
		 "per run; fresh daemon per configuration", bench, O.payload, O.data_dir, O.seconds);
	(void)what;
	bench_emit(bench, system, nw, O.payload, "throughput", "records/s",
		   bench_stat_of(rate, O.runs), note);
	{
		struct bench_stat w = { waits / O.runs, waits / O.runs, waits / O.runs, O.runs };
		struct bench_stat c = { wall > 0 ? 100 * cpu / wall : 0, 0, 0, O.runs };

		c.min = c.max = c.median;
		bench_emit(bench, system, nw, O.payload, "waits_for_space", "per run", w,
			   "appends that waited for ring space (the ring's full_waits); mean of the runs");
		bench_emit(bench, system, nw, O.payload, "daemon_cpu", "%", c,
			   "bufferengined's CPU time over the runs' wall time (/proc/PID/stat)");
	}
	ret = 0;
out:
	cur_team = NULL;
	bench_team_stop(&team);
	daemon_down(&d, data_dir, n);
	return ret;
}

int main(int argc, char **argv)
{
	enum { OPT_SEC = 256 };
	static const struct option lo[] = {
		{ "capacities", required_argument, NULL, 'c' },
		{ "stores", required_argument, NULL, 'S' },
		{ "payload", required_argument, NULL, 's' },
		{ "runs", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, OPT_SEC },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	int c, status = 0;

	O.ncaps = bench_parse_sizes("64K,256K,1M,4M,16M,64M,256M", O.caps, MAX_LIST, "capacities");
	O.nstores = bench_parse_list("1,4,16,64", O.stores, MAX_LIST, "stores");
	O.payload = 64;
	O.runs = 3;
	O.seconds = 0.5;
	O.data_dir = "/dev/shm";
	while ((c = getopt_long(argc, argv, "c:S:s:n:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			O.ncaps = bench_parse_sizes(optarg, O.caps, MAX_LIST, "--capacities");
			break;
		case 'S':
			O.nstores = bench_parse_list(optarg, O.stores, MAX_LIST, "--stores");
			break;
		case 's':
			O.payload = (unsigned)bench_parse_size(optarg, "--payload");
			break;
		case 'n':
			O.runs = (unsigned)bench_parse_size(optarg, "--runs");
			break;
		case OPT_SEC:
			O.seconds = atof(optarg);
			break;
		case 'd':
			O.data_dir = optarg;
			break;
		case 'h':
			printf("usage: bench_scale [-c 64K,...,256M] [-S 1,4,16,64] [-s PAYLOAD] [-n RUNS]\n"
			       "                   [--seconds S] [-d DATA_DIR (default /dev/shm)]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!O.runs || O.runs > 100 || O.seconds <= 0 || !O.payload)
		bench_die("bad --runs, --seconds or --payload");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (unsigned i = 0; i < O.ncaps && !status; i++) {
		char what[128], system[64];

		snprintf(what, sizeof(what), "ring capacity %llu KiB; 1 store; 1 writer process",
			 (unsigned long long)(O.caps[i] >> 10));
		if (O.caps[i] >= (UINT64_C(1) << 20))
			snprintf(system, sizeof(system), "bufferengine ring %llu MiB",
				 (unsigned long long)(O.caps[i] >> 20));
		else
			snprintf(system, sizeof(system), "bufferengine ring %llu KiB",
				 (unsigned long long)(O.caps[i] >> 10));
		if (config("scale-capacity", system, 1, O.caps[i], 1, what) < 0)
			status = 1;
	}
	for (unsigned i = 0; i < O.nstores && !status; i++) {
		char what[128], system[64];

		snprintf(what, sizeof(what), "%u stores of 1 MiB; one writer process per store",
			 O.stores[i]);
		snprintf(system, sizeof(system), "bufferengine %u store%s", O.stores[i],
			 O.stores[i] > 1 ? "s" : "");
		if (config("scale-stores", system, O.stores[i], UINT64_C(1) << 20, O.stores[i],
			   what) < 0)
			status = 1;
	}
	tu_cleanup_run();
	return status;
}
