/*
 * bench_durable.c - durable throughput through the real daemon, and the
 * latency of be_flush.
 *
 * Every run starts a fresh bufferengined (tu_daemon_config/tu_daemon_start,
 * a new instance, a new data directory: under /tmp/be-test-<run>/ by
 * default, under --data-dir when given) with one raw store:
 *
 *     capacity = 64M, flush_bytes = 1M, sync = batch   (options change them)
 *
 * and stops it (SIGTERM) after the run, then removes its ring, its lock and
 * its files, so that runs do not depend on each other and the disk holds
 * one run's segments at most.
 *
 *   - throughput: N writer processes (1 and 2 by default) share --volume
 *     bytes of payload (200 MB by default) in --payload-byte records; each
 *     writes its part with be_write(), then calls be_flush().  The time is
 *     from the first writer's first be_write() to the last writer's
 *     be_flush() returning.  Reported: payload MB/s, ring MB/s (records with
 *     their 32-byte headers and padding to 8, as they go to disk), records/s;
 *     MB = 10^6 bytes.  The ring is much smaller than the volume, so the
 *     writers wait for the daemon: this is the disk path's throughput.
 *   - flush latency: one writer process, --flush-iters times: be_write()
 *     one record, then be_flush(); the time of each be_flush() goes into a
 *     log-linear histogram; p50, p99, p99.9, max.
 *
 *   - the same bytes through fio (unless --no-fio), right after each of
 *     bufferengine's runs: one sequential job writing the run's segment bytes in
 *     blocks of the daemon's average batch, with --fdatasync=1 (the daemon
 *     syncs each batch under sync = batch), ioengine io_uring, no
 *     preallocation (segments are not preallocated), in the same directory;
 *     reported: MB/s, and bufferengine's segment MB/s over fio's.
 *   - the daemon's CPU seconds (utime + stime, /proc/PID/stat) per GB of
 *     segments written, from the throughput runs.
 *   - append latency while the daemon flushes (--paced-seconds): one writer
 *     appends 64-byte records at --paced-rate records/s (spinning on the
 *     clock between records), every 64th be_write timed; the ring never
 *     fills at that rate (the appends that waited for space are in the
 *     note); p50, p99, p99.9, max.
 *
 * Each figure is the median of --runs runs, with min and max.  CSV lines
 * on stdout (bench.h); progress on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/ring.h"
#include "tests/bench/bench.h"
#include "tests/testutil.h"

#define BENCH "durable"
#define MAX_CONFIGS 16
#define STORE "bench"

enum { CMD_VOLUME = 1, CMD_FLUSHLAT, CMD_PACED };

struct opts {
	unsigned payload;
	unsigned writers[MAX_CONFIGS];
	unsigned nconfigs;
	uint64_t volume;          /* payload bytes per run, all writers together */
	unsigned runs;
	unsigned flush_iters;
	unsigned flush_runs;
	const char *capacity;     /* config values, as text */
	const char *flush_bytes;
	const char *sync;
	const char *data_dir;     /* NULL: under /tmp/be-test-<run>/ */
	int skip_volume, skip_flush;
	int fio;                  /* compare with fio (when installed) */
	double paced_seconds;     /* 0: no paced latency runs */
	double paced_rate;
	int prefault;             /* the writers pre-fault their ring mapping (paced runs) */

	/* Per run. */
	char instance[64];
	uint64_t records;         /* per writer */
};

struct wstate {
	be_store *s;
	uint8_t *payload;
};

/* For the signal handler. */
static struct bench_team *cur_team;
static struct tu_daemon *cur_daemon;

static void on_signal(int sig)
{
	if (cur_team)
		bench_team_kill(cur_team);
	if (cur_daemon && cur_daemon->pid > 0) {
		/* Our child, by pid: its rings and files go with the run's names. */
		kill(cur_daemon->pid, SIGKILL);
		waitpid(cur_daemon->pid, NULL, 0);
	}
	/* scripts/bench.sh removes what is left under this run's names. */
	_exit(128 + sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_durable [options]\n"
		"  -s, --payload BYTES      payload size (default 64)\n"
		"  -w, --writers LIST       writer process counts (default 1,2)\n"
		"  -V, --volume BYTES       payload per run, all writers (default 200000000;\n"
		"                           K/M/G are powers of 1024)\n"
		"  -n, --runs N             runs per figure (default 5)\n"
		"  -i, --flush-iters N      write+be_flush iterations per latency run (default 2000)\n"
		"  -d, --data-dir DIR       put the data directories under DIR (default: /tmp)\n"
		"      --capacity SIZE      the store's ring capacity (default 64M)\n"
		"      --flush-bytes SIZE   the store's flush_bytes (default 1M)\n"
		"      --sync MODE          batch | none (default batch)\n"
		"      --no-volume          skip the throughput runs\n"
		"      --no-flush           skip the be_flush latency runs\n"
		"      --no-fio             skip the fio comparison\n"
		"      --paced-seconds S    append latency with the daemon flushing: seconds per\n"
		"                           run (default 0: not measured)\n"
		"      --paced-rate R       ... at R records/s (default 1000000)\n"
		"  -h, --help\n"
		"CSV lines (" BENCH_CSV_COLUMNS ") on stdout.\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	enum { OPT_CAP = 256, OPT_FB, OPT_SYNC, OPT_NOVOL, OPT_NOFLUSH, OPT_NOFIO, OPT_PSEC,
	       OPT_PRATE };
	static const struct option lo[] = {
		{ "payload", required_argument, NULL, 's' },
		{ "writers", required_argument, NULL, 'w' },
		{ "volume", required_argument, NULL, 'V' },
		{ "runs", required_argument, NULL, 'n' },
		{ "flush-iters", required_argument, NULL, 'i' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "capacity", required_argument, NULL, OPT_CAP },
		{ "flush-bytes", required_argument, NULL, OPT_FB },
		{ "sync", required_argument, NULL, OPT_SYNC },
		{ "no-volume", no_argument, NULL, OPT_NOVOL },
		{ "no-flush", no_argument, NULL, OPT_NOFLUSH },
		{ "no-fio", no_argument, NULL, OPT_NOFIO },
		{ "paced-seconds", required_argument, NULL, OPT_PSEC },
		{ "paced-rate", required_argument, NULL, OPT_PRATE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .payload = 64, .volume = 200000000, .runs = 5, .flush_iters = 2000,
			    .capacity = "64M", .flush_bytes = "1M", .sync = "batch", .fio = 1,
			    .paced_rate = 1000000 };
	o->nconfigs = bench_parse_list("1,2", o->writers, MAX_CONFIGS, "writers");
	while ((c = getopt_long(argc, argv, "s:w:V:n:i:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->payload = (unsigned)bench_parse_size(optarg, "--payload");
			break;
		case 'w':
			o->nconfigs = bench_parse_list(optarg, o->writers, MAX_CONFIGS, "--writers");
			break;
		case 'V':
			o->volume = bench_parse_size(optarg, "--volume");
			break;
		case 'n':
			o->runs = (unsigned)bench_parse_size(optarg, "--runs");
			break;
		case 'i':
			o->flush_iters = (unsigned)bench_parse_size(optarg, "--flush-iters");
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case OPT_CAP:
			o->capacity = optarg;
			break;
		case OPT_FB:
			o->flush_bytes = optarg;
			break;
		case OPT_SYNC:
			o->sync = optarg;
			break;
		case OPT_NOVOL:
			o->skip_volume = 1;
			break;
		case OPT_NOFLUSH:
			o->skip_flush = 1;
			break;
		case OPT_NOFIO:
			o->fio = 0;
			break;
		case OPT_PSEC:
			o->paced_seconds = atof(optarg);
			break;
		case OPT_PRATE:
			o->paced_rate = atof(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	if (!o->payload || o->runs == 0 || o->runs > 100 || o->flush_iters == 0)
		bench_die("--payload, --runs (1..100) and --flush-iters must be > 0");
	if (strcmp(o->sync, "batch") && strcmp(o->sync, "none"))
		bench_die("--sync: batch or none");
	if (o->data_dir) {
		struct stat st;

		if (stat(o->data_dir, &st) < 0 || !S_ISDIR(st.st_mode))
			bench_die("--data-dir %s: not a directory", o->data_dir);
	}
}

/* ------------------------------------------------------------------------- */
/* The daemon, one per run. */

struct run_env {
	struct tu_daemon d;
	char data_dir[sizeof(((struct tu_daemon *)0)->data_dir)]; /* ours to remove */
};

static int daemon_up(struct opts *o, struct run_env *e)
{
	char stores[512];

	snprintf(stores, sizeof(stores),
		 "[store " STORE "]\ntype = raw\ncapacity = %s\nflush_bytes = %s\nsync = %s\n",
		 o->capacity, o->flush_bytes, o->sync);
	tu_daemon_config(&e->d, NULL, stores);
	snprintf(e->data_dir, sizeof(e->data_dir), "%s", e->d.data_dir);
	if (o->data_dir) {
		FILE *f;

		/* The same config, with the data directory where we were told. */
		if ((size_t)snprintf(e->data_dir, sizeof(e->data_dir), "%s/be-bench-%s",
				     o->data_dir, e->d.instance) >= sizeof(e->data_dir))
			bench_die("--data-dir %s: too long", o->data_dir);
		memcpy(e->d.data_dir, e->data_dir, sizeof(e->d.data_dir));
		f = fopen(e->d.conf, "w");
		if (!f)
			bench_die("%s: %s", e->d.conf, strerror(errno));
		fprintf(f, "[engine]\ninstance = %s\ndata_dir = %s\n%s", e->d.instance,
			e->data_dir, stores);
		fclose(f);
	}
	snprintf(o->instance, sizeof(o->instance), "%s", e->d.instance);
	cur_daemon = &e->d;
	if (tu_daemon_start(&e->d, STORE) < 0) {
		fprintf(stderr, "bench: bufferengined did not come up; its log (%s):\n%s\n",
			e->d.log, tu_file_text(e->d.log));
		return -1;
	}
	return 0;
}

/* Stop the daemon, then remove its ring, its lock, its data and its scratch dir. */
static int daemon_down(struct run_env *e)
{
	char path[512];
	pid_t pid = e->d.pid;
	int rc = 0;

	if (pid > 0) {
		rc = tu_daemon_stop(&e->d, SIGTERM);
		if (rc != 0)
			fprintf(stderr, "bench: bufferengined exited with %d; its log:\n%s\n", rc,
				tu_file_text(e->d.log));
	}
	cur_daemon = NULL;
	ring_unlink(e->d.instance, STORE);
	snprintf(path, sizeof(path), RING_SHM_DIR "/" RING_SHM_PREFIX "%s", e->d.instance);
	unlink(path);
	bench_rm_rf(e->data_dir);
	bench_rm_rf(e->d.dir);
	return rc;
}

/* The ring's counters, read while the daemon is still attached. */
struct ring_counts {
	uint64_t batches, syncs, full_waits, doorbells, next_seq, durable_seq;
	int32_t last_error;
	double daemon_cpu_s;      /* user + system CPU time of the daemon so far */
	uint64_t seg_bytes;       /* bytes in the store's segment files */
};

static uint64_t seg_total;

static int add_seg(const char *path, const struct stat *st, int type, struct FTW *f)
{
	size_t n = strlen(path);

	(void)f;
	if (type == FTW_F && n > 4 && !strcmp(path + n - 4, ".seg"))
		seg_total += (uint64_t)st->st_size;
	return 0;
}

/* The bytes of every segment under dir. */
static uint64_t segment_bytes(const char *dir)
{
	seg_total = 0;
	nftw(dir, add_seg, 16, FTW_PHYS);
	return seg_total;
}

static int ring_counts(const char *instance, struct ring_counts *c)
{
	struct ring_map m;
	int ret = ring_open(instance, STORE, RING_OPEN_RDONLY, &m);

	if (ret)
		return ret;
	c->batches = READ_ONCE(m.hdr->batches);
	c->syncs = READ_ONCE(m.hdr->syncs);
	c->full_waits = READ_ONCE(m.hdr->full_waits);
	c->doorbells = READ_ONCE(m.hdr->doorbells);
	c->next_seq = READ_ONCE(m.hdr->next_seq);
	c->durable_seq = READ_ONCE(m.hdr->durable_seq);
	c->last_error = READ_ONCE(m.hdr->last_error);
	ring_unmap(&m);
	return 0;
}

/* ------------------------------------------------------------------------- */
/* The writers. */

static int w_setup(struct bench_worker *w)
{
	struct opts *o = w->arg;
	struct be_open_opts bo = { .instance = o->instance, .write_timeout_ms = 30000 };
	struct wstate *ws = calloc(1, sizeof(*ws));
	int ret;

	if (!ws)
		return -ENOMEM;
	ws->payload = malloc(o->payload);
	if (!ws->payload)
		return -ENOMEM;
	for (unsigned i = 0; i < o->payload; i++)
		ws->payload[i] = (uint8_t)('a' + (i + w->idx) % 26);
	ret = be_open(STORE, &bo, &ws->s);
	if (ret) {
		bench_slot_fail(w->slot, ret, "be_open: %s", be_strerror(ret));
		return ret;
	}
	if (o->prefault) {
		/* A writer in steady state has every page of its ring mapped. */
		char shm[RING_SHM_NAME_MAX];
		long n;

		if (ring_shm_name(shm, sizeof(shm), o->instance, STORE))
			return -EINVAL;
		n = bench_prefault_shm(shm + 1);
		if (n < 0) {
			bench_slot_fail(w->slot, (int)n, "prefault: %s", strerror((int)-n));
			return (int)n;
		}
	}
	w->state = ws;
	return 0;
}

static int w_step(struct bench_worker *w, unsigned cmd, unsigned run)
{
	struct opts *o = w->arg;
	struct wstate *ws = w->state;
	struct bench_slot *sl = w->slot;
	uint64_t i = 0;
	int ret = 0;

	(void)run;
	bench_hist_reset(&sl->hist);
	bench_worker_barrier(w);
	sl->t_start = bench_now_ns();
	if (cmd == CMD_VOLUME) {
		for (i = 0; i < o->records; i++) {
			ret = be_write(ws->s, ws->payload, o->payload);
			if (__builtin_expect(ret != 0, 0)) {
				bench_slot_fail(sl, ret, "be_write #%llu: %s", (unsigned long long)i,
						be_strerror(ret));
				break;
			}
		}
		if (!ret) {
			ret = be_flush(ws->s, 60000);
			if (ret)
				bench_slot_fail(sl, ret, "be_flush: %s", be_strerror(ret));
		}
	} else if (cmd == CMD_FLUSHLAT) {
		for (i = 0; i < o->flush_iters; i++) {
			uint64_t t0, t1;

			ret = be_write(ws->s, ws->payload, o->payload);
			if (ret) {
				bench_slot_fail(sl, ret, "be_write: %s", be_strerror(ret));
				break;
			}
			t0 = bench_now_ns();
			ret = be_flush(ws->s, 10000);
			t1 = bench_now_ns();
			if (ret) {
				bench_slot_fail(sl, ret, "be_flush #%llu: %s", (unsigned long long)i,
						be_strerror(ret));
				break;
			}
			bench_hist_add(&sl->hist, t1 - t0);
		}
	} else if (cmd == CMD_PACED) {
		uint64_t n = (uint64_t)(o->paced_seconds * o->paced_rate);
		double ns_per = 1e9 / o->paced_rate;
		uint64_t t_begin = sl->t_start;

		for (i = 0; i < n; i++) {
			if ((i & 63) == 0) {
				uint64_t due = t_begin + (uint64_t)((double)i * ns_per), t0;

				/* Ahead of the pace: spin on the clock (64 records at a time). */
				while ((t0 = bench_now_ns()) < due)
					;
				ret = be_write(ws->s, ws->payload, o->payload);
				bench_hist_add(&sl->hist, bench_now_ns() - t0);
			} else {
				ret = be_write(ws->s, ws->payload, o->payload);
			}
			if (__builtin_expect(ret != 0, 0)) {
				bench_slot_fail(sl, ret, "be_write #%llu: %s", (unsigned long long)i,
						be_strerror(ret));
				break;
			}
		}
	} else {
		return -EINVAL;
	}
	sl->t_end = bench_now_ns();
	sl->ops = i;
	sl->bytes = i * o->payload;
	return ret;
}

static const struct bench_team_ops team_ops = { .setup = w_setup, .step = w_step };

/* ------------------------------------------------------------------------- */
/* The parent. */

/* One run on a fresh daemon: start it, run one step on nw writers, stop it. */
static int one_run(struct opts *o, unsigned nw, unsigned cmd, unsigned run,
		   struct bench_team *team, struct ring_counts *rc, uint64_t *span)
{
	struct run_env e;
	int ret = -1;

	memset(&e, 0, sizeof(e));
	if (daemon_up(o, &e) < 0)
		goto out;
	if (bench_team_start(team, nw, &team_ops, o) < 0)
		goto out;
	cur_team = team;
	if (bench_team_step(team, cmd, run) < 0)
		goto out;
	*span = bench_team_span_ns(team);
	if (ring_counts(o->instance, rc) < 0)
		goto out;
	rc->daemon_cpu_s = bench_proc_cpu_s(e.d.pid);
	rc->seg_bytes = segment_bytes(e.data_dir);
	ret = 0;
out:
	/* The workers' results stay readable in team->ctl until bench_team_stop(). */
	cur_team = NULL;
	if (daemon_down(&e) != 0)
		ret = -1;
	return ret;
}

static int check_space(const struct opts *o, uint64_t need)
{
	struct statvfs sv;
	const char *dir = o->data_dir ? o->data_dir : "/tmp";

	if (statvfs(dir, &sv) < 0)
		return 0;
	if ((uint64_t)sv.f_bavail * sv.f_frsize < 2 * need) {
		fprintf(stderr, "bench: %s has %llu MB free; a run needs %llu MB (twice that to be "
			"safe)\n", dir,
			(unsigned long long)((uint64_t)sv.f_bavail * sv.f_frsize / 1000000),
			(unsigned long long)(need / 1000000));
		return -1;
	}
	return 0;
}

/*
 * One fio run writing `bytes` sequentially in `bs` blocks, fdatasync after
 * each, in a fresh directory under the data directory: its MB/s into *mbs.
 * 0, 1 when fio is not installed, -1 when it failed.
 */
static int fio_once(const struct opts *o, uint64_t bytes, uint64_t bs, double *mbs)
{
	char dir[512], file[600], log[600], bsarg[64], sizearg[64], namearg[700];
	char *argv[] = { "fio", "--name=seqsync", namearg, "--rw=write", bsarg, sizearg,
			 "--fdatasync=1", "--ioengine=io_uring", "--iodepth=1", "--fallocate=none",
			 "--output-format=json", NULL };
	const char *txt, *w, *b;
	pid_t pid;
	int status;

	if (o->data_dir)
		snprintf(dir, sizeof(dir), "%s/be-bench-fio-%s-%d", o->data_dir, tu_run_id(),
			 (int)getpid());
	else
		tu_tmpdir(dir, sizeof(dir));
	mkdir(dir, 0755);
	snprintf(file, sizeof(file), "%s/fio.dat", dir);
	snprintf(log, sizeof(log), "%s/fio.json", dir);
	snprintf(bsarg, sizeof(bsarg), "--bs=%llu", (unsigned long long)bs);
	snprintf(sizearg, sizeof(sizearg), "--size=%llu", (unsigned long long)bytes);
	snprintf(namearg, sizeof(namearg), "--filename=%s", file);
	pid = bench_spawn(argv, log);
	if (pid < 0) {
		bench_rm_rf(dir);
		return 1;
	}
	waitpid(pid, &status, 0);
	txt = tu_file_text(log);
	w = strstr(txt, "\"write\" : {");
	b = w ? strstr(w, "\"bw_bytes\"") : NULL;
	if (!WIFEXITED(status) || WEXITSTATUS(status) || !b || !strchr(b, ':')) {
		fprintf(stderr, "bench: fio failed; its output:\n%s\n", txt);
		bench_rm_rf(dir);
		return -1;
	}
	*mbs = strtod(strchr(b, ':') + 1, NULL) / 1e6;
	bench_rm_rf(dir);
	return 0;
}

/* Append latency with the daemon flushing: one paced writer. */
static int paced_config(struct opts *o)
{
	double p50[100], p99[100], p999[100], max[100], rate[100], waits = 0, syncs = 0;
	char note[512];

	fprintf(stderr, "durable: append latency while the daemon flushes: 1 writer, %.0f "
		"records/s for %.1f s, every 64th be_write timed, %u runs\n", o->paced_rate,
		o->paced_seconds, o->runs);
	o->records = 0;
	o->prefault = 1;
	for (unsigned r = 0; r < o->runs; r++) {
		struct bench_team team;
		struct ring_counts rc;
		uint64_t span = 0;
		int ret;

		memset(&team, 0, sizeof(team));
		ret = one_run(o, 1, CMD_PACED, r, &team, &rc, &span);
		if (ret == 0) {
			const struct bench_hist *h = &team.ctl->slot[0].hist;

			p50[r] = (double)bench_hist_pct(h, 50);
			p99[r] = (double)bench_hist_pct(h, 99);
			p999[r] = (double)bench_hist_pct(h, 99.9);
			max[r] = (double)h->max;
			rate[r] = (double)team.ctl->slot[0].ops * 1e9 / (double)span;
			waits += (double)rc.full_waits;
			syncs += (double)rc.syncs;
			fprintf(stderr, "  run %u: p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns, max %.0f ns; "
				"%.2f M records/s; %llu batches, %llu syncs, %llu waits for space\n",
				r + 1, p50[r], p99[r], p999[r], max[r], rate[r] / 1e6,
				(unsigned long long)rc.batches, (unsigned long long)rc.syncs,
				(unsigned long long)rc.full_waits);
		}
		bench_team_stop(&team);
		if (ret < 0)
			return -1;
	}
	snprintf(note, sizeof(note),
		 "1 writer (ring pre-faulted) paced at %.0f records/s (spinning on the clock) for %.1f s while "
		 "bufferengined flushes (sync %s; %.0f syncs per run); every 64th be_write timed; "
		 "%.0f appends per run waited for space", o->paced_rate, o->paced_seconds, o->sync,
		 syncs / o->runs, waits / o->runs);
	bench_emit("append-flushing", "bufferengine", 1, o->payload, "throughput", "records/s",
		   bench_stat_of(rate, o->runs), note);
	bench_emit("append-flushing", "bufferengine", 1, o->payload, "latency_p50", "ns",
		   bench_stat_of(p50, o->runs), note);
	bench_emit("append-flushing", "bufferengine", 1, o->payload, "latency_p99", "ns",
		   bench_stat_of(p99, o->runs), note);
	bench_emit("append-flushing", "bufferengine", 1, o->payload, "latency_p99.9", "ns",
		   bench_stat_of(p999, o->runs), note);
	bench_emit("append-flushing", "bufferengine", 1, o->payload, "latency_max", "ns",
		   bench_stat_of(max, o->runs), note);
	return 0;
}

static int volume_config(struct opts *o, unsigned nw)
{
	double pay[100], ring[100], recs[100], disk[100], cpu_gb[100], fio[100];
	double batches = 0, syncs = 0, waits = 0, doorbells = 0, dcpu = 0, wall = 0;
	uint64_t fio_bs = 0, fio_bytes = 0;
	int fio_state = o->fio ? 0 : 1;   /* 0: on; 1: off or not installed; -1: failed */
	unsigned nfio = 0;
	uint64_t recbytes = rec_size(o->payload);
	char note[512];

	o->records = o->volume / o->payload / nw;
	if (!o->records)
		bench_die("--volume is smaller than one record per writer");
	if (check_space(o, o->records * nw * recbytes) < 0)
		return -1;
	fprintf(stderr, "durable: %u writer%s, %u-byte payloads, %llu records/writer "
		"(%.0f MB payload, %.0f MB in the ring), %u runs\n", nw, nw > 1 ? "s" : "",
		o->payload, (unsigned long long)o->records,
		(double)(o->records * nw * o->payload) / 1e6,
		(double)(o->records * nw * recbytes) / 1e6, o->runs);
	for (unsigned r = 0; r < o->runs; r++) {
		struct bench_team team;
		struct ring_counts rc;
		uint64_t span = 0, ops = 0;
		int ret;

		memset(&team, 0, sizeof(team));
		ret = one_run(o, nw, CMD_VOLUME, r, &team, &rc, &span);
		for (unsigned i = 0; i < team.n; i++)
			ops += team.ctl->slot[i].ops;
		bench_team_stop(&team);
		if (ret < 0)
			return -1;
		if (rc.durable_seq < rc.next_seq) {
			fprintf(stderr, "bench: after be_flush, durable seq %llu < next seq %llu\n",
				(unsigned long long)rc.durable_seq,
				(unsigned long long)rc.next_seq);
			return -1;
		}
		recs[r] = (double)ops * 1e9 / (double)span;
		pay[r] = recs[r] * o->payload / 1e6;
		ring[r] = recs[r] * (double)recbytes / 1e6;
		disk[r] = (double)rc.seg_bytes * 1e3 / (double)span;
		cpu_gb[r] = rc.seg_bytes ? rc.daemon_cpu_s / ((double)rc.seg_bytes / 1e9) : 0;
		batches += (double)rc.batches;
		syncs += (double)rc.syncs;
		waits += (double)rc.full_waits;
		doorbells += (double)rc.doorbells;
		dcpu += rc.daemon_cpu_s;
		wall += (double)span / 1e9;
		fprintf(stderr, "  run %u: %.1f MB/s payload, %.1f MB/s ring, %.2f M records/s in "
			"%.2f s; %llu batches (%.0f KiB each), %llu syncs, %llu waits for space; "
			"daemon CPU %.2f s\n",
			r + 1, pay[r], ring[r], recs[r] / 1e6, (double)span / 1e9,
			(unsigned long long)rc.batches,
			rc.batches ? (double)(ops * recbytes) / (double)rc.batches / 1024 : 0.0,
			(unsigned long long)rc.syncs, (unsigned long long)rc.full_waits,
			rc.daemon_cpu_s);
		/*
		 * fio right after, under the same conditions: the run's segment bytes
		 * in blocks of its average batch, each followed by an fdatasync (the
		 * daemon syncs each batch).  The size of the first run for all.
		 */
		if (fio_state == 0 && rc.batches) {
			if (!fio_bs) {
				fio_bs = (rc.seg_bytes / rc.batches + 2048) / 4096 * 4096;
				if (fio_bs < 4096)
					fio_bs = 4096;
				fio_bytes = rc.seg_bytes / fio_bs * fio_bs;
			}
			fio_state = fio_once(o, fio_bytes, fio_bs, &fio[nfio]);
			if (fio_state == 0)
				fprintf(stderr, "  fio after run %u: %.1f MB/s (%llu B in %llu-byte "
					"blocks, fdatasync after each)\n", r + 1, fio[nfio++],
					(unsigned long long)fio_bytes, (unsigned long long)fio_bs);
		}
	}
	snprintf(note, sizeof(note),
		 "first be_write to last be_flush return; %llu MB payload; capacity %s flush_bytes "
		 "%s sync %s; fresh daemon per run; per run: %.0f batches of %.0f KiB; %.0f syncs; "
		 "%.0f appends waited for space; %.0f doorbells; daemon CPU %.0f%% of the wall time",
		 (unsigned long long)(o->records * nw * o->payload / 1000000), o->capacity,
		 o->flush_bytes, o->sync, batches / o->runs,
		 batches ? (double)(o->records * nw * recbytes) * o->runs / batches / 1024 : 0.0,
		 syncs / o->runs, waits / o->runs, doorbells / o->runs, wall > 0 ? 100 * dcpu / wall : 0.0);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "payload_throughput", "MB/s",
		   bench_stat_of(pay, o->runs), note);
	snprintf(note, sizeof(note), "ring bytes: payload + 32-byte record header (padded to 8): "
		 "%llu B per record; MB = 10^6 bytes", (unsigned long long)recbytes);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "ring_throughput", "MB/s",
		   bench_stat_of(ring, o->runs), note);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "throughput", "records/s",
		   bench_stat_of(recs, o->runs), "durable records per second");
	bench_emit(BENCH, "bufferengine", nw, o->payload, "disk_throughput", "MB/s",
		   bench_stat_of(disk, o->runs),
		   "segment bytes (records and batch headers) written and fdatasync-ed per second; "
		   "first be_write to last be_flush return");
	snprintf(note, sizeof(note), "user + system CPU of bufferengined (/proc/PID/stat; 10 ms "
		 "ticks) over its life (start to SIGTERM) per 10^9 segment bytes");
	bench_emit(BENCH, "bufferengine", nw, o->payload, "daemon_cpu_per_GB", "CPU s/GB",
		   bench_stat_of(cpu_gb, o->runs), note);
	if (nfio) {
		snprintf(note, sizeof(note), "fio --rw=write --bs=B --size=S --fdatasync=1 "
			 "--ioengine=io_uring --iodepth=1 --fallocate=none right after each "
			 "bufferengine run: S = that configuration's segment bytes; B = its average "
			 "batch (here %llu); one fdatasync per block as the daemon per batch",
			 (unsigned long long)fio_bs);
		bench_emit(BENCH, "fio", nw, o->payload, "disk_throughput", "MB/s",
			   bench_stat_of(fio, nfio), note);
	} else if (o->fio && fio_state == 1) {
		bench_emit(BENCH, "fio", nw, o->payload, "not_available", "-",
			   (struct bench_stat){ 0, 0, 0, 0 }, "fio is not installed");
	}
	return fio_state < 0 ? -1 : 0;
}

static int flush_config(struct opts *o)
{
	double p50[100], p99[100], p999[100], max[100];
	char note[300];

	fprintf(stderr, "durable: be_flush latency: 1 writer, write + be_flush x %u, %u runs\n",
		o->flush_iters, o->runs);
	o->records = 0;
	for (unsigned r = 0; r < o->runs; r++) {
		struct bench_team team;
		struct ring_counts rc;
		uint64_t span = 0;
		int ret;

		memset(&team, 0, sizeof(team));
		ret = one_run(o, 1, CMD_FLUSHLAT, r, &team, &rc, &span);
		if (ret == 0) {
			const struct bench_hist *h = &team.ctl->slot[0].hist;

			p50[r] = (double)bench_hist_pct(h, 50) / 1e3;
			p99[r] = (double)bench_hist_pct(h, 99) / 1e3;
			p999[r] = (double)bench_hist_pct(h, 99.9) / 1e3;
			max[r] = (double)h->max / 1e3;
			fprintf(stderr, "  run %u: p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us; "
				"%llu syncs for %u flushes\n", r + 1, p50[r], p99[r], p999[r],
				max[r], (unsigned long long)rc.syncs, o->flush_iters);
		}
		bench_team_stop(&team);
		if (ret < 0)
			return -1;
	}
	snprintf(note, sizeof(note),
		 "1 process: be_write one record then be_flush; %u iterations per run; time of "
		 "be_flush; sync %s; fresh daemon per run", o->flush_iters, o->sync);
	bench_emit(BENCH, "bufferengine", 1, o->payload, "flush_latency_p50", "us",
		   bench_stat_of(p50, o->runs), note);
	bench_emit(BENCH, "bufferengine", 1, o->payload, "flush_latency_p99", "us",
		   bench_stat_of(p99, o->runs), note);
	bench_emit(BENCH, "bufferengine", 1, o->payload, "flush_latency_p99.9", "us",
		   bench_stat_of(p999, o->runs), note);
	bench_emit(BENCH, "bufferengine", 1, o->payload, "flush_latency_max", "us",
		   bench_stat_of(max, o->runs), note);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct sigaction sa;
	int status = 0;

	parse(argc, argv, &o);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "durable: bufferengined from " BE_BIN_DIR "; data under %s\n",
		o.data_dir ? o.data_dir : "/tmp");

	for (unsigned i = 0; i < o.nconfigs && !status && !o.skip_volume; i++)
		if (volume_config(&o, o.writers[i]) < 0)
			status = 1;
	if (!status && !o.skip_flush && flush_config(&o) < 0)
		status = 1;
	if (!status && o.paced_seconds > 0 && paced_config(&o) < 0)
		status = 1;
	tu_cleanup_run();
	return status;
}
