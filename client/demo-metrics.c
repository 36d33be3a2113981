/*
 * demo-metrics.c - a demo metric collector linked against libbufferengine.
 *
 * Every --interval (100 ms) it samples the host the way gosight's agent
 * reports "System" metrics and writes the sample to a metric store as one
 * batch, be_write_metrics(): every record of a sample has the same time,
 * namespace "System", the host's meta (hostname from gethostname(),
 * host_id from /etc/machine-id) and one of these sub-namespaces:
 *
 *   CPU     /proc/stat: usage, user, system, idle, iowait and steal percent
 *           per cpu and in total (cpu=cpu0 ... cpu=total), gauges computed
 *           from the change since the previous sample (none in the first);
 *           context switches and forks, the kernel's counters
 *   Memory  /proc/meminfo: total, free, available, used, buffers, cached
 *           and swap bytes, used percent
 *   Load    /proc/loadavg: load1, load5, load15, tasks; running and
 *           blocked tasks from /proc/stat
 *   Disk    /proc/diskstats: per device (device=vda), the kernel's counters
 *           of reads, writes, bytes and I/O time; loop and ram devices and
 *           devices that never did I/O are left out
 *
 * It runs for --duration seconds, or until SIGTERM/SIGINT, then waits until
 * what it wrote is durable (be_flush()) and prints one line to stdout:
 * "demo-metrics: N records written to STORE, D dropped, T timed out, ...".
 * Exit status: 0, 1 on an error (one line on stderr), 2 for bad usage.
 *
 * Functions return 0 or a negative errno.  SIGTERM and SIGINT are blocked
 * except while the collector sleeps in ppoll(), so one that arrives during
 * a write ends the next sleep at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "demo-metrics"

#define DEFAULT_STORE	    "metrics"
#define DEFAULT_INTERVAL_MS 100

#include "client/demo-util.h"

#define LABEL_MAX  48 /* an attribute value: "cpu127", "nvme0n1p1" */
#define CPU_STATES 8  /* user nice system idle iowait irq softirq steal */

enum { CPU_USER, CPU_NICE, CPU_SYSTEM, CPU_IDLE, CPU_IOWAIT, CPU_IRQ, CPU_SOFTIRQ, CPU_STEAL };

/* One sample: the records of one be_write_metrics() call. */
struct sample {
	struct be_metric *m;
	struct be_attr *attrs;	   /* attrs[i] belongs to m[i] */
	char (*labels)[LABEL_MAX]; /* the value of attrs[i] */
	size_t n, cap;
	uint64_t ts_ns;
	const struct be_meta *meta;
	int err; /* sticky: the first failure of sample_add() */
};

/* A line "cpu..." of /proc/stat. */
struct cpu {
	char name[16];
	uint64_t t[CPU_STATES];
};

struct cpus {
	struct cpu *v;
	size_t n, cap;
};

/* ---------------------------------------------------------------------------
 * The sample.
 */

static int sample_grow(struct sample *s)
{
	size_t cap = s->cap ? 2 * s->cap : 64;

	if (demo_grow(&s->m, cap, sizeof(*s->m)) || demo_grow(&s->attrs, cap, sizeof(*s->attrs)) ||
	    demo_grow(&s->labels, cap, sizeof(*s->labels)))
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

static void sample_reset(struct sample *s, uint64_t ts_ns)
{
	s->n = 0;
	s->ts_ns = ts_ns;
	s->err = 0;
}

/*
 * Add one metric.  @key (a static string) and @label give its one
 * attribute, or NULL for none.  A failure is kept in s->err.
 */
static void sample_add(struct sample *s, const char *sub_ns, const char *name, const char *unit,
		       int kind, double value, const char *key, const char *label)
{
	struct be_metric *m;
	int ret;

	if (s->err)
		return;
	if (s->n == s->cap) {
		ret = sample_grow(s);
		if (ret) {
			s->err = ret;
			return;
		}
	}
	m = &s->m[s->n];
	memset(m, 0, sizeof(*m));
	m->ns = "System";
	m->sub_ns = sub_ns;
	m->name = name;
	m->unit = unit;
	m->kind = kind;
	m->value = value;
	m->ts_ns = s->ts_ns;
	m->meta = s->meta;
	if (key) {
		s->attrs[s->n].key = key;
		snprintf(s->labels[s->n], LABEL_MAX, "%s", label);
		m->nattrs = 1;
	}
	s->n++;
}

/* Point every metric at its attribute, now that the arrays stay put. */
static void sample_seal(struct sample *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (!s->m[i].nattrs)
			continue;
		s->attrs[i].value = s->labels[i];
		s->m[i].attrs = &s->attrs[i];
	}
}

static void sample_free(struct sample *s)
{
	free(s->m);
	free(s->attrs);
	free(s->labels);
}

#define gauge(s, sub, name, unit, v, key, label) \
	sample_add(s, sub, name, unit, BE_METRIC_GAUGE, (double)(v), key, label)
#define counter(s, sub, name, unit, v, key, label) \
	sample_add(s, sub, name, unit, BE_METRIC_COUNTER, (double)(v), key, label)

/* ---------------------------------------------------------------------------
 * /proc.
 */

/* A line "@key N" of /proc/stat: N into *v.  Any other line leaves *v. */
static void stat_value(const char *line, const char *key, uint64_t *v)
{
	size_t n = strlen(key);
	const char *p = line + n + 1;
	unsigned long long x;
	char *end;

	if (strncmp(line, key, n) != 0 || line[n] != ' ' || *p < '0' || *p > '9')
		return;
	errno = 0;
	x = strtoull(p, &end, 10);
	if (!errno && (*end == '\n' || !*end))
		*v = x;
}

/* /proc/stat: the cpu lines into @cur, and four of the other counters. */
static int read_stat(struct sample *s, struct cpus *cur)
{
	uint64_t ctxt = 0, forks = 0, running = 0, blocked = 0;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;
	FILE *f;

	f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	cur->n = 0;
	while (getline(&line, &cap, f) > 0) {
		struct cpu *c;

		if (strncmp(line, "cpu", 3) != 0) {
			stat_value(line, "ctxt", &ctxt);
			stat_value(line, "processes", &forks);
			stat_value(line, "procs_running", &running);
			stat_value(line, "procs_blocked", &blocked);
			continue;
		}
		if (cur->n == cur->cap) {
			size_t ncap = cur->cap ? 2 * cur->cap : 16;
			void *p = reallocarray(cur->v, ncap, sizeof(*cur->v));

			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			cur->v = p;
			cur->cap = ncap;
		}
		c = &cur->v[cur->n];
		memset(c, 0, sizeof(*c));
		/* Older kernels have fewer columns: the rest stay 0. */
		/* NOLINTNEXTLINE(cert-err34-c): the kernel's format; the match count is checked */
		if (sscanf(line,
			   "%15s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %" SCNu64 " %" SCNu64,
			   c->name, &c->t[0], &c->t[1], &c->t[2], &c->t[3], &c->t[4], &c->t[5],
			   &c->t[6], &c->t[7]) >= 5)
			cur->n++;
	}
	if (ferror(f)) {
		ret = -EIO;
		goto out;
	}
	counter(s, "CPU", "context_switches", "count", ctxt, NULL, NULL);
	counter(s, "CPU", "forks", "count", forks, NULL, NULL);
	gauge(s, "Load", "procs_running", "count", running, NULL, NULL);
	gauge(s, "Load", "procs_blocked", "count", blocked, NULL, NULL);
out:
	free(line);
	fclose(f);
	return ret;
}

static const struct cpu *cpu_find(const struct cpus *v, size_t hint, const char *name)
{
	if (hint < v->n && !strcmp(v->v[hint].name, name))
		return &v->v[hint];
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->v[i].name, name))
			return &v->v[i];
	return NULL;
}

/* Percent gauges for every cpu found in both @prev and @cur. */
static void cpu_percent(struct sample *s, const struct cpus *prev, const struct cpus *cur)
{
	for (size_t i = 0; i < cur->n; i++) {
		const struct cpu *c = &cur->v[i], *p = cpu_find(prev, i, c->name);
		uint64_t d[CPU_STATES], total = 0;
		const char *label;
		double pct;

		if (!p)
			continue;
		for (int k = 0; k < CPU_STATES; k++) {
			/* A counter that went back (cpu hotplug): no sample. */
			d[k] = c->t[k] >= p->t[k] ? c->t[k] - p->t[k] : 0;
			total += d[k];
		}
		if (!total)
			continue;
		pct = 100.0 / (double)total;
		label = strcmp(c->name, "cpu") ? c->name : "total";
		gauge(s, "CPU", "usage_percent", "percent",
		      pct * (double)(total - d[CPU_IDLE] - d[CPU_IOWAIT]), "cpu", label);
		gauge(s, "CPU", "user_percent", "percent",
		      pct * (double)(d[CPU_USER] + d[CPU_NICE]), "cpu", label);
		gauge(s, "CPU", "system_percent", "percent",
		      pct * (double)(d[CPU_SYSTEM] + d[CPU_IRQ] + d[CPU_SOFTIRQ]), "cpu", label);
		gauge(s, "CPU", "idle_percent", "percent", pct * (double)d[CPU_IDLE], "cpu", label);
		gauge(s, "CPU", "iowait_percent", "percent", pct * (double)d[CPU_IOWAIT], "cpu",
		      label);
		gauge(s, "CPU", "steal_percent", "percent", pct * (double)d[CPU_STEAL], "cpu",
		      label);
	}
}

static int read_meminfo(struct sample *s)
{
	static const char *const keys[] = { "MemTotal", "MemFree",   "MemAvailable", "Buffers",
					    "Cached",	"SwapTotal", "SwapFree" };
	enum { TOTAL, FREE, AVAIL, BUFFERS, CACHED, SWAP_TOTAL, SWAP_FREE, NKEYS };
	uint64_t v[NKEYS] = { 0 }, used, kb;
	char key[64], *line = NULL;
	size_t cap = 0;
	FILE *f;

	_Static_assert(sizeof(keys) / sizeof(keys[0]) == NKEYS, "meminfo keys");
	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		/* NOLINTNEXTLINE(cert-err34-c): the kernel's format; the match count is checked */
		if (sscanf(line, "%63[^:]: %" SCNu64, key, &kb) != 2)
			continue;
		for (int i = 0; i < NKEYS; i++)
			if (!strcmp(key, keys[i]))
				v[i] = kb * 1024;
	}
	free(line);
	fclose(f);
	if (!v[TOTAL])
		return -EBADMSG;
	used = v[TOTAL] > v[AVAIL] ? v[TOTAL] - v[AVAIL] : 0;
	gauge(s, "Memory", "total_bytes", "bytes", v[TOTAL], NULL, NULL);
	gauge(s, "Memory", "free_bytes", "bytes", v[FREE], NULL, NULL);
	gauge(s, "Memory", "available_bytes", "bytes", v[AVAIL], NULL, NULL);
	gauge(s, "Memory", "used_bytes", "bytes", used, NULL, NULL);
	gauge(s, "Memory", "buffers_bytes", "bytes", v[BUFFERS], NULL, NULL);
	gauge(s, "Memory", "cached_bytes", "bytes", v[CACHED], NULL, NULL);
	gauge(s, "Memory", "used_percent", "percent", 100.0 * (double)used / (double)v[TOTAL], NULL,
	      NULL);
	gauge(s, "Memory", "swap_total_bytes", "bytes", v[SWAP_TOTAL], NULL, NULL);
	gauge(s, "Memory", "swap_used_bytes", "bytes",
	      v[SWAP_TOTAL] > v[SWAP_FREE] ? v[SWAP_TOTAL] - v[SWAP_FREE] : 0, NULL, NULL);
	return 0;
}

static int read_loadavg(struct sample *s)
{
	double l1, l5, l15;
	unsigned long running, tasks;
	int n, ret = 0;
	FILE *f;

	f = fopen("/proc/loadavg", "re");
	if (!f)
		return -errno;
	/* NOLINTNEXTLINE(cert-err34-c): the kernel's format; the match count is checked */
	n = fscanf(f, "%lf %lf %lf %lu/%lu", &l1, &l5, &l15, &running, &tasks);
	if (n != 5) {
		ret = -EBADMSG;
		goto out;
	}
	gauge(s, "Load", "load1", NULL, l1, NULL, NULL);
	gauge(s, "Load", "load5", NULL, l5, NULL, NULL);
	gauge(s, "Load", "load15", NULL, l15, NULL, NULL);
	gauge(s, "Load", "tasks", "count", tasks, NULL, NULL);
out:
	fclose(f);
	return ret;
}

/* /proc/diskstats: 512-byte sectors whatever the device's block size. */
static int read_diskstats(struct sample *s)
{
	uint64_t rd, rd_sec, wr, wr_sec, inflight, io_ms;
	char dev[LABEL_MAX], *line = NULL;
	size_t cap = 0;
	FILE *f;

	f = fopen("/proc/diskstats", "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno; /* some containers have none */
	while (getline(&line, &cap, f) > 0) {
		/* NOLINTNEXTLINE(cert-err34-c): the kernel's format; the match count is checked */
		if (sscanf(line,
			   " %*u %*u %47s %" SCNu64 " %*u %" SCNu64 " %*u %" SCNu64 " %*u %" SCNu64
			   " %*u %" SCNu64 " %" SCNu64,
			   dev, &rd, &rd_sec, &wr, &wr_sec, &inflight, &io_ms) != 7)
			continue;
		if (!strncmp(dev, "loop", 4) || !strncmp(dev, "ram", 3) || (!rd && !wr))
			continue;
		counter(s, "Disk", "reads_completed", "count", rd, "device", dev);
		counter(s, "Disk", "read_bytes", "bytes", rd_sec * 512, "device", dev);
		counter(s, "Disk", "writes_completed", "count", wr, "device", dev);
		counter(s, "Disk", "write_bytes", "bytes", wr_sec * 512, "device", dev);
		counter(s, "Disk", "io_time_ms", "milliseconds", io_ms, "device", dev);
		gauge(s, "Disk", "ios_in_progress", "count", inflight, "device", dev);
	}
	free(line);
	fclose(f);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Options.
 */

static void usage(FILE *f)
{
	demo_usage_sampler(f, "metric", "samples");
	fprintf(f, "Samples CPU, memory, load and disks from /proc and writes each sample as\n"
		   "one batch of metric records; at the end, flushes and prints a summary.\n"
		   "Exit status: 0 done, 1 an error, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	struct demo_opts a;
	const char *what = NULL;
	char host[256], host_id[64];
	struct cpus prev = { 0 }, cur = { 0 }, tmp;
	struct sample smp = { 0 };
	struct demo_counts cnt = { 0 };
	struct be_meta meta;
	uint64_t start, next, deadline, samples = 0;
	int interval, ret, status = 1;
	sigset_t waitmask;
	be_store *st = NULL;

	ret = demo_sampler_start(argc, argv, usage, &a, &interval, &waitmask);
	if (ret >= 0)
		return ret;
	demo_meta_init(&meta, host, sizeof(host), host_id, sizeof(host_id));
	smp.meta = &meta;

	if (demo_open(&a, BE_TYPE_METRIC, "metric", &st))
		goto out;

	start = demo_clock_ns(CLOCK_MONOTONIC);
	deadline = demo_deadline(start, a.duration);
	for (next = start; demo_running(deadline);) {
		sample_reset(&smp, demo_clock_ns(CLOCK_REALTIME));
		what = "/proc/stat";
		ret = read_stat(&smp, &cur);
		if (ret)
			goto fail;
		if (samples)
			cpu_percent(&smp, &prev, &cur);
		tmp = prev;
		prev = cur;
		cur = tmp;
		what = "/proc/meminfo";
		ret = read_meminfo(&smp);
		if (ret)
			goto fail;
		what = "/proc/loadavg";
		ret = read_loadavg(&smp);
		if (ret)
			goto fail;
		what = "/proc/diskstats";
		ret = read_diskstats(&smp);
		if (ret)
			goto fail;
		what = "sample";
		ret = smp.err;
		if (ret)
			goto fail;
		sample_seal(&smp);
		what = a.store;
		ret = demo_write(st, BE_TYPE_METRIC, smp.m, smp.n, &cnt);
		if (ret)
			goto fail;
		samples++;
		demo_pace(&next, interval, deadline, &waitmask);
	}
	status = 0;
	goto flush;

fail:
	/* be_strerror() speaks of rings: for a file or memory, the plain text. */
	if (what == a.store)
		fprintf(stderr, PROG ": %s: %s\n", what, be_strerror(ret));
	else
		fprintf(stderr, PROG ": %s: %s\n", what,
			ret == -EBADMSG ? "unexpected format" : strerror(-ret));
flush:
	if (demo_finish(st, a.store, &cnt, start, "%" PRIu64 " samples", samples))
		status = 1;
out:
	be_close(st);
	sample_free(&smp);
	free(prev.v);
	free(cur.v);
	return status;
}
