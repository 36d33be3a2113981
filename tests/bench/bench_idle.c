/*
 * bench_idle.c - what bufferengined costs when nothing is written: a fresh
 * daemon with 8 raw stores (-S) of 1 MiB at the default flush_interval (1 s),
 * each opened by a collector process that then writes nothing; after a
 * second to settle, --runs windows of --seconds (default 3 x 10 s) each:
 *
 *   - the daemon's CPU time over the window: utime + stime from
 *     /proc/PID/stat (10 ms ticks, every thread of the process), and the
 *     sum of sum_exec_runtime from /proc/PID/task/TID/schedstat (ns) for the
 *     resolution the ticks lack;
 *   - its wake-ups: voluntary context switches of its threads per second.
 *
 * CSV lines on stdout (bench.h), bench "idle"; progress on stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/ring.h"
#include "tests/bench/bench.h"
#include "tests/testutil.h"

#define MAX_STORES 64

static struct tu_daemon D;
static pid_t holders[MAX_STORES];
static unsigned nstores = 8;

static void on_signal(int sig)
{
	for (unsigned i = 0; i < nstores; i++)
		if (holders[i] > 0)
			kill(holders[i], SIGKILL);
	if (D.pid > 0)
		kill(D.pid, SIGKILL);
	_exit(128 + sig);
}

/* Sum over the threads of pid of a per-thread figure: schedstat's runtime (ns) or
 * the voluntary context switches. */
static double threads_sum(pid_t pid, int what)
{
	char path[128];
	struct dirent *e;
	double sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[300];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		if (what == 0) {
			unsigned long long run = 0;

			snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
			f = fopen(p, "re");
			if (!f)
				continue;
			if (fscanf(f, "%llu", &run) == 1)
				sum += (double)run;
			fclose(f);
		} else {
			char line[256];

			snprintf(p, sizeof(p), "/proc/%d/task/%s/status", (int)pid, e->d_name);
			f = fopen(p, "re");
			if (!f)
				continue;
			while (fgets(line, sizeof(line), f))
				if (!strncmp(line, "voluntary_ctxt_switches:", 24))
					sum += strtod(line + 24, NULL);
			fclose(f);
		}
	}
	closedir(d);
	return sum;
}

static void holder(const char *instance, unsigned i)
{
	struct be_open_opts o = { .instance = instance, .open_timeout_ms = 10000 };
	char name[32];
	be_store *s;

	snprintf(name, sizeof(name), "s%u", i);
	if (be_open(name, &o, &s))
		_exit(1);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "stores", required_argument, NULL, 'S' },
		{ "seconds", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double seconds = 10, ms_stat[100], ms_sched[100], wakeups[100];
	unsigned runs = 3;
	struct sigaction sa;
	char *stores, *p, note[512];
	int c;

	while ((c = getopt_long(argc, argv, "S:t:n:h", lo, NULL)) != -1) {
		switch (c) {
		case 'S':
			nstores = (unsigned)atoi(optarg);
			break;
		case 't':
			seconds = atof(optarg);
			break;
		case 'n':
			runs = (unsigned)atoi(optarg);
			break;
		case 'h':
			printf("usage: bench_idle [-S STORES (8)] [-t SECONDS (10)] [-n RUNS (3)]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!nstores || nstores > MAX_STORES || seconds <= 0 || !runs || runs > 100)
		bench_die("bad --stores (1..64), --seconds or --runs");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	stores = malloc(nstores * 64 + 1);
	if (!stores)
		bench_die("out of memory");
	p = stores;
	*p = 0;
	for (unsigned i = 0; i < nstores; i++)
		p += sprintf(p, "[store s%u]\ntype = raw\ncapacity = 1M\n", i);
	tu_daemon_config(&D, NULL, stores);
	if (tu_daemon_start(&D, "s0") < 0)
		bench_die("bufferengined did not start: %s", tu_file_text(D.log));
	fflush(NULL);
	for (unsigned i = 0; i < nstores; i++) {
		holders[i] = fork();
		if (holders[i] == 0)
			holder(D.instance, i);
	}
	fprintf(stderr, "idle: bufferengined %d, %u stores of 1 MiB each opened by an idle "
		"process; %u windows of %.0f s\n", (int)D.pid, nstores, runs, seconds);
	sleep(1);
	for (unsigned r = 0; r < runs; r++) {
		double c0 = bench_proc_cpu_s(D.pid), s0 = threads_sum(D.pid, 0),
		       v0 = threads_sum(D.pid, 1);
		uint64_t t0 = bench_now_ns(), t1;
		struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };

		nanosleep(&ts, NULL);
		t1 = bench_now_ns();
		/* Per 10 s of wall time, whatever the window. */
		ms_stat[r] = (bench_proc_cpu_s(D.pid) - c0) * 1e3 * (10e9 / (double)(t1 - t0));
		ms_sched[r] = (threads_sum(D.pid, 0) - s0) / 1e6 * (10e9 / (double)(t1 - t0));
		wakeups[r] = (threads_sum(D.pid, 1) - v0) * 1e9 / (double)(t1 - t0);
		fprintf(stderr, "  window %u: per 10 s: %.0f ms CPU (/proc/PID/stat), %.2f ms (schedstat), "
			"%.1f wake-ups/s\n", r + 1, ms_stat[r], ms_sched[r], wakeups[r]);
	}
	for (unsigned i = 0; i < nstores; i++) {
		kill(holders[i], SIGKILL);
		waitpid(holders[i], NULL, 0);
		holders[i] = 0;
	}
	tu_daemon_stop(&D, SIGTERM);
	snprintf(note, sizeof(note), "bufferengined with %u raw stores (1 MiB; flush_interval 1s) "
		 "each opened by an idle process; CPU per 10 s (windows of %.0f s) from "
		 "/proc/PID/stat utime+stime (10 ms ticks)", nstores, seconds);
	bench_emit("idle", "bufferengine", 0, 0, "daemon_cpu_per_10s", "ms",
		   bench_stat_of(ms_stat, runs), note);
	bench_emit("idle", "bufferengine", 0, 0, "daemon_cpu_per_10s_schedstat", "ms",
		   bench_stat_of(ms_sched, runs),
		   "the same window: sum_exec_runtime of the daemon's threads (/proc/PID/task/*/schedstat)");
	bench_emit("idle", "bufferengine", 0, 0, "daemon_wakeups", "per s",
		   bench_stat_of(wakeups, runs), "voluntary context switches of the daemon's threads");
	tu_cleanup_run();
	return 0;
}
