/*
 * bench_append.c - the append path alone: be_open + be_write into a ring in
 * shared memory, no daemon.
 *
 * The benchmark creates one big raw ring itself (ring_create, 256 MiB by
 * default, larger if a run needs it) under a fresh instance name, so that
 * every run's burst fits: the daemon is never needed, and the writers never
 * wait for space.  Between runs, with every writer idle, it plays the
 * daemon's part in one store: tail := head, so the next run has the whole
 * ring again (positions run on and wrap, as in real use).
 *
 * For each writer count (1 and 2 by default) it forks that many writer
 * processes; each pins itself to a CPU of its own (writer i on the i-th
 * allowed CPU, modulo their number: left to the scheduler, two writers on
 * this 2-core machine sometimes share one core and take turns per tick,
 * which hides the contention; --no-pin measures that), opens the store
 * with be_open() and pre-faults its mapping of the ring (a writer in
 * steady state has every page mapped; --no-prefault measures the first lap
 * instead).  Then, all writers starting together:
 *
 *   - one warm-up run (not counted);
 *   - --runs throughput runs: each writer calls be_write() --records times,
 *     nothing else in the loop; aggregate records/s = all records / (first
 *     writer's start .. last writer's end), and payload MB/s (10^6 bytes);
 *     with several writers, also how often the ring changes from one
 *     writer's records to another's (the lock's hand-overs that show);
 *   - --runs latency runs, separate because timing every call perturbs
 *     throughput: clock_gettime(CLOCK_MONOTONIC) before and after every
 *     be_write(), into a log-linear histogram per writer, merged over the
 *     writers of a run; p50, p99, p99.9 and max per run.
 *
 * Every figure is the median of the runs, with min and max.  The timer's
 * own cost (two back-to-back clock_gettime calls, measured the same way) is
 * reported as timer_floor so that it can be subtracted.  be_write() itself
 * reads CLOCK_REALTIME once per record for the record's timestamp: that is
 * part of what is measured.
 *
 * Results are CSV lines on stdout (bench.h); progress on stderr.
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
#include "shm/futex.h"
#include "shm/ring.h"
#include "tests/bench/bench.h"
#include "tests/testutil.h"

#define BENCH "append"
#define MAX_CONFIGS 16

enum { CMD_WARMUP = 1, CMD_THROUGHPUT, CMD_LATENCY, CMD_TIMER };

struct opts {
	unsigned payload;
	unsigned writers[MAX_CONFIGS];
	unsigned nconfigs;
	uint64_t records;        /* per writer per run */
	unsigned runs;
	uint64_t capacity;       /* 0: sized to fit */
	uint64_t flush_bytes;
	int prefault;
	int latency;             /* 0: throughput runs only (--no-latency, for profiling) */
	int pin;                 /* each writer on a CPU of its own (as far as they go) */
	const char *store;
	char instance[64];
	char shm_name[RING_SHM_NAME_MAX];
};

struct wstate {
	be_store *s;
	uint8_t *payload;
};

/* For the signal handler: what to undo if we are interrupted. */
static struct bench_team *cur_team;
static char ring_path[sizeof(RING_SHM_DIR) + RING_SHM_NAME_MAX];

static void on_signal(int sig)
{
	if (cur_team)
		bench_team_kill(cur_team);
	if (ring_path[0])
		unlink(ring_path);
	_exit(128 + sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_append [options]\n"
		"  -s, --payload BYTES     payload size (default 64)\n"
		"  -w, --writers LIST      writer process counts (default 1,2)\n"
		"  -r, --records N         records per writer per run (default 1000000)\n"
		"  -n, --runs N            runs per figure (default 5)\n"
		"  -c, --capacity BYTES    ring capacity, a power of two (default: 256M, or more\n"
		"                          when a run does not fit)\n"
		"  -f, --flush-bytes BYTES the ring's doorbell threshold (default 1M, as the\n"
		"                          daemon's default store; 0: the ring capacity)\n"
		"      --no-prefault       leave the writers' ring mappings unfaulted\n"
		"      --no-latency        throughput runs only (to profile the append path)\n"
		"      --no-pin            let the scheduler place the writers (default: writer i\n"
		"                          pinned to the i-th allowed CPU, modulo their number)\n"
		"  -h, --help\n"
		"CSV lines (" BENCH_CSV_COLUMNS ") on stdout.\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "payload", required_argument, NULL, 's' },
		{ "writers", required_argument, NULL, 'w' },
		{ "records", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "flush-bytes", required_argument, NULL, 'f' },
		{ "no-prefault", no_argument, NULL, 'P' },
		{ "no-latency", no_argument, NULL, 'L' },
		{ "no-pin", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){ .payload = 64, .records = 1000000, .runs = 5, .flush_bytes = 1 << 20,
			    .prefault = 1, .latency = 1, .pin = 1, .store = "bench" };
	o->nconfigs = bench_parse_list("1,2", o->writers, MAX_CONFIGS, "writers");
	while ((c = getopt_long(argc, argv, "s:w:r:n:c:f:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			o->payload = (unsigned)bench_parse_size(optarg, "--payload");
			break;
		case 'w':
			o->nconfigs = bench_parse_list(optarg, o->writers, MAX_CONFIGS, "--writers");
			break;
		case 'r':
			o->records = bench_parse_size(optarg, "--records");
			break;
		case 'n':
			o->runs = (unsigned)bench_parse_size(optarg, "--runs");
			break;
		case 'c':
			o->capacity = bench_parse_size(optarg, "--capacity");
			break;
		case 'f':
			o->flush_bytes = bench_parse_size(optarg, "--flush-bytes");
			break;
		case 'P':
			o->prefault = 0;
			break;
		case 'L':
			o->latency = 0;
			break;
		case 'N':
			o->pin = 0;
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
	if (o->records == 0 || o->runs == 0 || o->runs > 100)
		bench_die("--records must be > 0 and --runs in 1..100");
}

/* ------------------------------------------------------------------------- */
/* The writers. */

static int w_setup(struct bench_worker *w)
{
	struct opts *o = w->arg;
	struct be_open_opts bo = { .instance = o->instance, .write_timeout_ms = 1000 };
	struct wstate *ws = calloc(1, sizeof(*ws));
	int ret;

	if (!ws)
		return -ENOMEM;
	if (o->pin) {
		ret = bench_pin(w->idx);
		if (ret < 0) {
			bench_slot_fail(w->slot, ret, "pinning to a CPU: %s", strerror(-ret));
			return ret;
		}
	}
	ws->payload = malloc(o->payload ? o->payload : 1);
	if (!ws->payload)
		return -ENOMEM;
	for (unsigned i = 0; i < o->payload; i++)
		ws->payload[i] = (uint8_t)('a' + (i + w->idx) % 26);
	ret = be_open(o->store, &bo, &ws->s);
	if (ret) {
		bench_slot_fail(w->slot, ret, "be_open: %s", be_strerror(ret));
		return ret;
	}
	if (o->prefault) {
		long n = bench_prefault_shm(o->shm_name + 1);

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
	uint64_t n = o->records, i;
	int ret = 0;

	(void)run;
	if (cmd == CMD_LATENCY || cmd == CMD_TIMER)
		bench_hist_reset(&sl->hist);
	bench_worker_barrier(w);
	sl->t_start = bench_now_ns();
	switch (cmd) {
	case CMD_WARMUP:
	case CMD_THROUGHPUT:
		for (i = 0; i < n; i++) {
			ret = be_write(ws->s, ws->payload, o->payload);
			if (__builtin_expect(ret != 0, 0))
				break;
		}
		break;
	case CMD_LATENCY:
		for (i = 0; i < n; i++) {
			uint64_t t0 = bench_now_ns(), t1;

			ret = be_write(ws->s, ws->payload, o->payload);
			t1 = bench_now_ns();
			if (__builtin_expect(ret != 0, 0))
				break;
			bench_hist_add(&sl->hist, t1 - t0);
		}
		break;
	case CMD_TIMER:
		for (i = 0; i < n; i++) {
			uint64_t t0 = bench_now_ns(), t1 = bench_now_ns();

			bench_hist_add(&sl->hist, t1 - t0);
		}
		break;
	default:
		return -EINVAL;
	}
	sl->t_end = bench_now_ns();
	sl->ops = i;
	sl->bytes = i * o->payload;
	if (ret)
		bench_slot_fail(sl, ret, "be_write #%llu: %s", (unsigned long long)i,
				be_strerror(ret));
	return ret;
}

static const struct bench_team_ops team_ops = { .setup = w_setup, .step = w_step };

/* ------------------------------------------------------------------------- */
/* The parent. */

/* Every writer is idle: consume the ring as the daemon would, all of it at once. */
static void ring_reset(struct ring_map *m)
{
	uint64_t head = load_acquire(&m->hdr->head);

	/* Release: pairs with the writers' load_acquire(&h->tail). */
	store_release(&m->hdr->tail, head);
	store_release(&m->hdr->durable_pos, head);
	store_release(&m->hdr->durable_seq, READ_ONCE(m->hdr->next_seq));
	futex_bump_wake(&m->hdr->space_gen);
}

/*
 * How often the writer changes from one record to the next in [from, to):
 * with several writers, that is how often the lock went to another process
 * (records of one writer in a row were appended while it kept the lock or
 * took it back first).
 */
static uint64_t writer_switches(const struct ring_map *m, uint64_t from, uint64_t to)
{
	uint64_t pos = from, switches = 0;
	uint32_t last = 0;

	while (pos < to) {
		const struct rec_hdr *r = (const struct rec_hdr *)(m->data + (pos & m->mask));

		if (r->type == REC_TYPE_PAD) {
			pos += r->len;
			continue;
		}
		if (last && r->pid != last)
			switches++;
		last = r->pid;
		pos += rec_size(r->len);
	}
	return switches;
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = RING_CAP_MIN;

	while (p < v)
		p <<= 1;
	return p;
}

struct lat_runs {
	double p50[100], p99[100], p999[100], max[100], rate[100];
};

static int run_config(struct opts *o, struct ring_map *m, unsigned nw, int timer_floor)
{
	struct bench_team team;
	double rate[100], mbs[100], per_writer[100], sw[100], cpus[100];
	struct lat_runs lr;
	struct bench_hist *all = malloc(sizeof(*all));
	struct bench_stat st;
	char note[512];
	uint64_t recbytes = rec_size(o->payload);

	if (!all)
		return -1;
	fprintf(stderr, "append: %u writer%s, %u-byte payloads, %llu records/writer/run, %u runs\n",
		nw, nw > 1 ? "s" : "", o->payload, (unsigned long long)o->records, o->runs);
	if (bench_team_start(&team, nw, &team_ops, o) < 0) {
		free(all);
		return -1;
	}
	cur_team = &team;

	ring_reset(m);
	if (bench_team_step(&team, CMD_WARMUP, 0) < 0)
		goto fail;

	for (unsigned r = 0; r < o->runs; r++) {
		uint64_t ops = 0, span, from;
		double pw = 0;

		ring_reset(m);
		from = load_acquire(&m->hdr->head);
		if (bench_team_step(&team, CMD_THROUGHPUT, r) < 0)
			goto fail;
		span = bench_team_span_ns(&team);
		sw[r] = (double)writer_switches(m, from, load_acquire(&m->hdr->head));
		for (unsigned i = 0; i < nw; i++) {
			struct bench_slot *s = &team.ctl->slot[i];

			ops += s->ops;
			pw += (double)s->ops * 1e9 / (double)(s->t_end - s->t_start);
		}
		rate[r] = (double)ops * 1e9 / (double)span;
		mbs[r] = rate[r] * o->payload / 1e6;
		per_writer[r] = pw / nw;
		{
			uint64_t cpu = 0, vcsw = 0, ivcsw = 0;

			for (unsigned i = 0; i < nw; i++) {
				cpu += team.ctl->slot[i].cpu_ns;
				vcsw += team.ctl->slot[i].vcsw;
				ivcsw += team.ctl->slot[i].ivcsw;
			}
			cpus[r] = (double)cpu / (double)span;
			fprintf(stderr, "  throughput run %u: %.2f M records/s, %.1f MB/s payload, "
				"%.0f writer switches, %.2f CPUs busy, %llu/%llu context switches "
				"(slept/preempted)\n", r + 1, rate[r] / 1e6, mbs[r], sw[r], cpus[r],
				(unsigned long long)vcsw, (unsigned long long)ivcsw);
		}
	}

	for (unsigned r = 0; r < o->runs && o->latency; r++) {
		uint64_t ops = 0;

		ring_reset(m);
		if (bench_team_step(&team, CMD_LATENCY, r) < 0)
			goto fail;
		bench_hist_reset(all);
		for (unsigned i = 0; i < nw; i++) {
			bench_hist_merge(all, &team.ctl->slot[i].hist);
			ops += team.ctl->slot[i].ops;
		}
		lr.p50[r] = (double)bench_hist_pct(all, 50);
		lr.p99[r] = (double)bench_hist_pct(all, 99);
		lr.p999[r] = (double)bench_hist_pct(all, 99.9);
		lr.max[r] = (double)all->max;
		lr.rate[r] = (double)ops * 1e9 / (double)bench_team_span_ns(&team);
		fprintf(stderr, "  latency run %u: p50 %.0f ns, p99 %.0f ns, p99.9 %.0f ns, "
			"max %.0f ns\n", r + 1, lr.p50[r], lr.p99[r], lr.p999[r], lr.max[r]);
	}

	st = bench_stat_of(per_writer, o->runs);
	snprintf(note, sizeof(note),
		 "aggregate over %u writer process(es)%s; %llu records/writer/run; untimed loop; "
		 "per-writer median %.3g records/s; ring record %llu B",
		 nw, o->pin ? " each pinned to a CPU (modulo nproc)" : " placed by the scheduler",
		 (unsigned long long)o->records, st.median, (unsigned long long)recbytes);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "throughput", "records/s",
		   bench_stat_of(rate, o->runs), note);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "payload_throughput", "MB/s",
		   bench_stat_of(mbs, o->runs), "payload bytes only; MB = 10^6 bytes");
	if (nw > 1) {
		struct bench_stat s2 = bench_stat_of(sw, o->runs);

		/* How much the writers really interleaved: explains the spread of the rate. */
		snprintf(note, sizeof(note),
			 "throughput runs: records in the ring whose writer differs from the "
			 "previous record's (median: a run of %.0f records per writer turn); "
			 "writers' CPU time / wall time: median %.2f",
			 (double)o->records * nw / (s2.median + 1),
			 bench_stat_of(cpus, o->runs).median);
		bench_emit(BENCH, "bufferengine", nw, o->payload, "writer_switches", "per run", s2,
			   note);
	}
	if (!o->latency)
		goto done;
	snprintf(note, sizeof(note),
		 "separate runs: clock_gettime(CLOCK_MONOTONIC) around every be_write; "
		 "merged over the writers; includes the timer (see timer_floor)");
	bench_emit(BENCH, "bufferengine", nw, o->payload, "latency_p50", "ns",
		   bench_stat_of(lr.p50, o->runs), note);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "latency_p99", "ns",
		   bench_stat_of(lr.p99, o->runs), note);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "latency_p99.9", "ns",
		   bench_stat_of(lr.p999, o->runs), note);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "latency_max", "ns",
		   bench_stat_of(lr.max, o->runs), note);
	bench_emit(BENCH, "bufferengine", nw, o->payload, "throughput_timed", "records/s",
		   bench_stat_of(lr.rate, o->runs),
		   "aggregate rate during the latency runs (perturbed by the timing)");

	if (timer_floor) {
		double fl[100];

		for (unsigned r = 0; r < o->runs; r++) {
			if (bench_team_step(&team, CMD_TIMER, r) < 0)
				goto fail;
			bench_hist_reset(all);
			for (unsigned i = 0; i < nw; i++)
				bench_hist_merge(all, &team.ctl->slot[i].hist);
			fl[r] = (double)bench_hist_pct(all, 50);
		}
		bench_emit(BENCH, "clock_gettime", nw, 0, "timer_floor_p50", "ns",
			   bench_stat_of(fl, o->runs),
			   "two back-to-back clock_gettime(CLOCK_MONOTONIC): the timer's share of "
			   "each latency sample");
	}

done:
	cur_team = NULL;
	bench_team_stop(&team);
	free(all);
	return 0;
fail:
	cur_team = NULL;
	bench_team_stop(&team);
	free(all);
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct ring_map m;
	struct ring_params p;
	struct sigaction sa;
	uint64_t need;
	unsigned maxw = 0;
	int ret, status = 0;

	parse(argc, argv, &o);
	for (unsigned i = 0; i < o.nconfigs; i++)
		if (o.writers[i] > maxw)
			maxw = o.writers[i];
	/* One run's bytes, plus one padding marker at the wrap. */
	need = (uint64_t)maxw * o.records * rec_size(o.payload) + rec_size(o.payload);
	if (!o.capacity) {
		o.capacity = pow2_at_least(need);
		if (o.capacity < (UINT64_C(256) << 20))
			o.capacity = UINT64_C(256) << 20;
	}
	if (o.capacity < need)
		bench_die("a run needs %llu ring bytes: more than --capacity %llu",
			  (unsigned long long)need, (unsigned long long)o.capacity);
	if (o.payload > o.capacity / 4)
		bench_die("--payload %u is more than a quarter of the ring", o.payload);
	if (!o.flush_bytes)
		o.flush_bytes = o.capacity;

	tu_instance(o.instance, sizeof(o.instance));
	if (ring_shm_name(o.shm_name, sizeof(o.shm_name), o.instance, o.store))
		bench_die("bad ring name");
	snprintf(ring_path, sizeof(ring_path), RING_SHM_DIR "%s", o.shm_name);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	p = (struct ring_params){ .store = o.store, .capacity = o.capacity,
				  .store_type = BE_TYPE_RAW, .on_full = RING_ON_FULL_BLOCK,
				  .first_seq = 1, .flush_bytes = o.flush_bytes, .mode = 0600 };
	ret = ring_create(o.instance, &p, &m);
	if (ret) {
		ring_path[0] = 0;
		bench_die("ring_create(%s, %llu bytes): %s", o.instance,
			  (unsigned long long)o.capacity, strerror(-ret));
	}
	fprintf(stderr, "append: ring %s, %llu MiB, flush_bytes %llu, writers %s, %s\n",
		o.shm_name, (unsigned long long)(o.capacity >> 20),
		(unsigned long long)o.flush_bytes,
		o.prefault ? "pre-faulted" : "not pre-faulted (first lap)",
		o.pin ? "each pinned to a CPU" : "placed by the scheduler");

	for (unsigned i = 0; i < o.nconfigs && !status; i++)
		if (run_config(&o, &m, o.writers[i], i == 0) < 0)
			status = 1;

	fprintf(stderr, "append: doorbells rung %llu, lock recoveries %llu, lock timeouts %llu\n",
		(unsigned long long)READ_ONCE(m.hdr->doorbells),
		(unsigned long long)READ_ONCE(m.hdr->lock_recoveries),
		(unsigned long long)READ_ONCE(m.hdr->lock_timeouts));
	ring_unmap(&m);
	ring_unlink(o.instance, o.store);
	ring_path[0] = 0;
	tu_cleanup_run();
	return status;
}
