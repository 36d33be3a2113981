/*
 * bench_groupcommit.c - durable acknowledgements per second when P
 * processes each write a record and wait for it with be_flush, in a loop:
 * one fdatasync of the daemon should serve every waiter it covers (group
 * commit), so acknowledgements per second should grow with P while
 * fdatasyncs per second stay bounded by the disk.
 *
 * For P in 1, 2, 8 (-p LIST): a fresh daemon (sync = batch) with its data
 * under /tmp/be-test-<run>/, P forked processes looping write + be_flush
 * for --seconds, the acknowledgements counted in shared memory and the
 * syncs read from the ring's counter.  Each process also times every
 * be_flush call (after its be_write) into a histogram of its own; merged
 * over the processes: p50, p99, p99.9, max of the acknowledgement's wait.
 *
 * The reference: the disk's bare fdatasync, measured the same way on the
 * same filesystem (the daemon's data directory is under /tmp/be-test-<run>/,
 * and so is this file), right after each 1-process run so that both see
 * the same disk: one process, write(2) of 64 bytes then fdatasync, in a
 * loop for --seconds; ops/s and the latency of the pair.
 *
 * Median, min and max of --runs runs, as CSV lines like the other
 * benchmarks.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/testutil.h"

#define MAXP 64

struct shared {
	uint32_t go;            /* 1: start, 2: stop */
	uint64_t acks[MAXP];
	uint64_t errors[MAXP];
	struct bench_hist hist[MAXP];   /* be_flush latency, ns */
};

static void writer(struct shared *sh, unsigned i, const char *instance)
{
	struct be_open_opts o = { .instance = instance, .write_timeout_ms = 5000 };
	char payload[64];
	be_store *s;

	memset(payload, 'a' + (int)i, sizeof(payload));
	if (be_open("gc", &o, &s))
		_exit(10);
	while (load_acquire(&sh->go) == 0)
		bench_futex_wait(&sh->go, 0, 100 * 1000 * 1000);
	bench_hist_reset(&sh->hist[i]);
	while (load_acquire(&sh->go) == 1) {
		uint64_t t0;
		int ret = be_write(s, payload, sizeof(payload));

		t0 = bench_now_ns();
		if (!ret)
			ret = be_flush(s, 5000);
		if (ret) {
			sh->errors[i]++;
			continue;
		}
		/* Counted only while the run lasts: the parent reads acks at its end. */
		if (load_acquire(&sh->go) == 1) {
			bench_hist_add(&sh->hist[i], bench_now_ns() - t0);
			WRITE_ONCE(sh->acks[i], sh->acks[i] + 1);
		}
	}
	be_close(s);
	_exit(0);
}

struct lat {
	double p50, p99, p999, max;     /* us */
};

static void lat_of(const struct bench_hist *h, struct lat *l)
{
	l->p50 = (double)bench_hist_pct(h, 50) / 1e3;
	l->p99 = (double)bench_hist_pct(h, 99) / 1e3;
	l->p999 = (double)bench_hist_pct(h, 99.9) / 1e3;
	l->max = (double)h->max / 1e3;
}

static int one_run(unsigned p, double seconds, double *acks_s, double *syncs_s, struct lat *lat)
{
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct tu_daemon d;
	struct ring_map m;
	pid_t pids[MAXP];
	uint64_t acks = 0, errors = 0, syncs0, syncs1, t0, t1;
	char extra[512];

	if (sh == MAP_FAILED)
		return -errno;
	snprintf(extra, sizeof(extra), "max_workers = 4\n");
	tu_daemon_config(&d, extra,
			 "[store gc]\ntype = raw\ncapacity = 16M\nflush_interval = 1s\nsync = batch\n");
	if (tu_daemon_start(&d, "gc"))
		bench_die("the daemon did not start: %s", tu_file_text(d.log));
	if (ring_open(d.instance, "gc", RING_OPEN_RDONLY, &m))
		bench_die("cannot open the ring");
	for (unsigned i = 0; i < p; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			writer(sh, i, d.instance);
	}
	syncs0 = READ_ONCE(m.hdr->syncs);
	t0 = bench_now_ns();
	store_release(&sh->go, 1);
	bench_futex_wake(&sh->go);
	usleep((useconds_t)(seconds * 1e6));
	for (unsigned i = 0; i < p; i++)
		acks += READ_ONCE(sh->acks[i]);
	syncs1 = READ_ONCE(m.hdr->syncs);
	t1 = bench_now_ns();
	store_release(&sh->go, 2);
	for (unsigned i = 0; i < p; i++) {
		waitpid(pids[i], NULL, 0);
		errors += sh->errors[i];
	}
	{
		struct bench_hist *all = malloc(sizeof(*all));

		if (!all)
			bench_die("out of memory");
		bench_hist_reset(all);
		for (unsigned i = 0; i < p; i++)
			bench_hist_merge(all, &sh->hist[i]);
		lat_of(all, lat);
		free(all);
	}
	ring_unmap(&m);
	tu_daemon_stop(&d, SIGTERM);
	munmap(sh, sizeof(*sh));
	if (errors)
		fprintf(stderr, "bench_groupcommit: %llu failed write+flush\n",
			(unsigned long long)errors);
	*acks_s = (double)acks * 1e9 / (double)(t1 - t0);
	*syncs_s = (double)(syncs1 - syncs0) * 1e9 / (double)(t1 - t0);
	return 0;
}

/* The disk's bare write(64 B) + fdatasync, on the filesystem of the daemon's data. */
static void fdatasync_run(double seconds, double *ops_s, struct lat *lat)
{
	struct bench_hist *h = malloc(sizeof(*h));
	char dir[256], path[300], buf[64];
	uint64_t n = 0, t_start, t_end;
	int fd;

	if (!h)
		bench_die("out of memory");
	memset(buf, 'f', sizeof(buf));
	tu_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/fdatasync.dat", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		bench_die("%s: %s", path, strerror(errno));
	bench_hist_reset(h);
	t_start = bench_now_ns();
	t_end = t_start + (uint64_t)(seconds * 1e9);
	for (;;) {
		uint64_t t0 = bench_now_ns(), t1;

		if (t0 >= t_end)
			break;
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) < 0)
			bench_die("write + fdatasync %s: %s", path, strerror(errno));
		t1 = bench_now_ns();
		bench_hist_add(h, t1 - t0);
		n++;
	}
	*ops_s = (double)n * 1e9 / (double)(bench_now_ns() - t_start);
	lat_of(h, lat);
	close(fd);
	bench_rm_rf(dir);
	free(h);
}

static void emit_lat(const char *system, unsigned p, const struct lat *l, unsigned runs,
		     const char *note)
{
	double v[64];

	for (unsigned r = 0; r < runs; r++)
		v[r] = l[r].p50;
	bench_emit("groupcommit", system, p, 64, "latency_p50", "us", bench_stat_of(v, runs), note);
	for (unsigned r = 0; r < runs; r++)
		v[r] = l[r].p99;
	bench_emit("groupcommit", system, p, 64, "latency_p99", "us", bench_stat_of(v, runs), note);
	for (unsigned r = 0; r < runs; r++)
		v[r] = l[r].p999;
	bench_emit("groupcommit", system, p, 64, "latency_p99.9", "us", bench_stat_of(v, runs),
		   note);
	for (unsigned r = 0; r < runs; r++)
		v[r] = l[r].max;
	bench_emit("groupcommit", system, p, 64, "latency_max", "us", bench_stat_of(v, runs), note);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "processes", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned plist[16] = { 1, 2, 8 }, np = 3, runs = 3, nfs = 0;
	double fs_ops[64];
	struct lat fs_lat[64];
	double seconds = 2.0;
	int c;

	while ((c = getopt_long(argc, argv, "p:t:n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			np = bench_parse_list(optarg, plist, 16, "--processes");
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'n':
			runs = (unsigned)atoi(optarg);
			break;
		case 'h':
			printf("usage: bench_groupcommit [-p 1,2,8] [-t SECONDS] [-n RUNS]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!runs || runs > 64 || seconds <= 0)
		bench_die("bad --runs or --seconds");
	for (unsigned k = 0; k < np; k++) {
		double acks[64], syncs[64], per[64];
		struct lat lat[64];
		char note[256];

		if (plist[k] == 0 || plist[k] > MAXP)
			bench_die("--processes: 1..%d", MAXP);
		for (unsigned r = 0; r < runs; r++) {
			if (one_run(plist[k], seconds, &acks[r], &syncs[r], &lat[r]))
				bench_die("run failed");
			/* The bare disk right after, under the same conditions. */
			if (plist[k] == 1 && nfs < 64) {
				fdatasync_run(seconds, &fs_ops[nfs], &fs_lat[nfs]);
				fprintf(stderr, "groupcommit: bare fdatasync after it: %.0f/s, p50 %.1f us, "
					"p99 %.1f us\n", fs_ops[nfs], fs_lat[nfs].p50, fs_lat[nfs].p99);
				nfs++;
			}
			per[r] = syncs[r] > 0 ? acks[r] / syncs[r] : 0;
			fprintf(stderr, "groupcommit: %u processes, run %u: %.0f acks/s, %.0f syncs/s; "
				"be_flush p50 %.1f us, p99 %.1f us\n", plist[k], r + 1, acks[r], syncs[r],
				lat[r].p50, lat[r].p99);
		}
		snprintf(note, sizeof(note), "%u processes each looping be_write(64 B) + be_flush; "
			 "%.1f s per run; sync batch; fresh daemon per run", plist[k], seconds);
		bench_emit("groupcommit", "bufferengine", plist[k], 64, "acks", "acks/s",
			   bench_stat_of(acks, runs), note);
		bench_emit("groupcommit", "bufferengine", plist[k], 64, "syncs", "fdatasync/s",
			   bench_stat_of(syncs, runs), note);
		bench_emit("groupcommit", "bufferengine", plist[k], 64, "acks_per_sync", "acks",
			   bench_stat_of(per, runs), note);
		snprintf(note, sizeof(note), "%u processes each looping be_write(64 B) + be_flush; "
			 "time of each be_flush; merged over the processes", plist[k]);
		emit_lat("bufferengine", plist[k], lat, runs, note);
	}
	{
		/* Without a 1-process configuration: the bare disk on its own. */
		for (unsigned r = 0; nfs == 0 && r < runs; r++) {
			fdatasync_run(seconds, &fs_ops[r], &fs_lat[r]);
			fprintf(stderr, "groupcommit: bare fdatasync, run %u: %.0f/s, p50 %.1f us, "
				"p99 %.1f us\n", r + 1, fs_ops[r], fs_lat[r].p50, fs_lat[r].p99);
		}
		if (!nfs)
			nfs = runs;
		bench_emit("groupcommit", "fdatasync", 1, 64, "acks", "acks/s",
			   bench_stat_of(fs_ops, nfs),
			   "the disk alone: 1 process looping write(2) of 64 B + fdatasync on the "
			   "filesystem of the daemon's data");
		emit_lat("fdatasync", 1, fs_lat, nfs,
			 "time of write(64 B) + fdatasync; the same filesystem as the daemon's data");
	}
	tu_cleanup_run();
	return 0;
}
