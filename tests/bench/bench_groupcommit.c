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
 * syncs read from the ring's counter.  Median, min and max of --runs runs,
 * as CSV lines like the other benchmarks.
 */
#include <errno.h>
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
	while (load_acquire(&sh->go) == 1) {
		if (be_write(s, payload, sizeof(payload)) || be_flush(s, 5000))
			sh->errors[i]++;
		else
			WRITE_ONCE(sh->acks[i], sh->acks[i] + 1);
	}
	be_close(s);
	_exit(0);
}

static int one_run(unsigned p, double seconds, double *acks_s, double *syncs_s)
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "processes", required_argument, NULL, 'p' },
		{ "seconds", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned plist[16] = { 1, 2, 8 }, np = 3, runs = 3;
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
		char note[256];

		if (plist[k] == 0 || plist[k] > MAXP)
			bench_die("--processes: 1..%d", MAXP);
		for (unsigned r = 0; r < runs; r++) {
			if (one_run(plist[k], seconds, &acks[r], &syncs[r]))
				bench_die("run failed");
			per[r] = syncs[r] > 0 ? acks[r] / syncs[r] : 0;
			fprintf(stderr, "groupcommit: %u processes, run %u: %.0f acks/s, %.0f syncs/s\n",
				plist[k], r + 1, acks[r], syncs[r]);
		}
		snprintf(note, sizeof(note), "%u processes each looping be_write(64 B) + be_flush; "
			 "%.1f s per run; sync batch; fresh daemon per run", plist[k], seconds);
		bench_emit("groupcommit", "bufferengine", plist[k], 64, "acks", "acks/s",
			   bench_stat_of(acks, runs), note);
		bench_emit("groupcommit", "bufferengine", plist[k], 64, "syncs", "fdatasync/s",
			   bench_stat_of(syncs, runs), note);
		bench_emit("groupcommit", "bufferengine", plist[k], 64, "acks_per_sync", "acks",
			   bench_stat_of(per, runs), note);
	}
	tu_cleanup_run();
	return 0;
}
