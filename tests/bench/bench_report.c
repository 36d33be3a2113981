/*
 * bench_report.c - not a benchmark: turns the CSV lines of the benchmark
 * programs (bench.h, BENCH_CSV_COLUMNS) into what scripts/bench.sh keeps
 * under bench-results/:
 *
 *   --md FILE     one Markdown table, one row per (bench, system, writers,
 *                 payload): the rate (median, min-max), MB/s, latency
 *                 p50/p99/p99.9/max (medians), how bufferengine compares
 *                 with the row's system, and the targets of the issue met or
 *                 missed; then the targets again as a list, the notes, and
 *                 the machine (--machine KEY=VALUE lines, in order);
 *   --csv FILE    every figure, one line each: the programs' columns plus
 *                 the comparison, the target and the machine's columns;
 *   --plot PREFIX PREFIX.dat (append throughput by payload and writers,
 *                 scaling by capacity) and PREFIX.gp, a gnuplot script that
 *                 draws PREFIX.png.
 *
 * usage: bench_report --in ROWS --stamp STAMP [--machine KEY=VALUE ...]
 *                     [--md FILE] [--csv FILE] [--plot PREFIX] [--failed]
 *
 * The targets (nothing asserts them; met or missed is reported):
 *   one writer, 64 B: >= 20 M records/s (the ring's append path alone);
 *   the batch call (be_write_batch, 64 per call, 64 B): >= 60 M/s;
 *   two writers, 64 B: >= 8 M records/s;
 *   append latency while the daemon flushes: p99 < 1 us, p99.9 < 5 us;
 *   bufferengine >= 10x write(2) (one record per call, and the batch call)
 *   and the UNIX socket, >= 50x rsyslog (records/s, one writer, 64 B);
 *   durable: segment MB/s >= 90 % of fio's with the same bytes and syncs;
 *   be_flush p50 (one process) <= 1.5x the bare fdatasync p50;
 *   acknowledgements with 8 flushing processes >= 4x with one.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 8192
#define MAX_GROUPS 2048
#define MAX_MACHINE 32

struct row {
	char bench[48], system[64], metric[48], unit[24], note[1024];
	unsigned writers, payload, runs;
	double median, min, max;
	int group;
	char cmp[96];     /* the comparison with bufferengine, for the CSV */
	char target[160]; /* the target and met/missed, for the CSV */
};

struct group {
	char bench[48], system[64];
	unsigned writers, payload;
	int rate, mbs, p50, p99, p999, pmax, cpu;   /* row indexes, -1: none */
	int extra[16];
	unsigned nextra;
	char cmp[96];
	char target[256];
	int note;                              /* footnote number of the first row */
	int notes[8];                          /* every row's, distinct */
	unsigned nnotes;
};

static struct row R[MAX_ROWS];
static unsigned nrows;
static struct group G[MAX_GROUPS];
static unsigned ngroups;
static char *notes[MAX_GROUPS];
static unsigned nnotes;
static char *machine[MAX_MACHINE];
static unsigned nmachine;

struct target_res {
	char what[160], measured[320];
	int met;          /* 1 met, 0 missed, -1 not measured */
};
static struct target_res T[32];
static unsigned ntargets;

static void die(const char *msg, const char *arg)
{
	fprintf(stderr, "bench_report: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
	exit(1);
}

/* ------------------------------------------------------------------------- */
/* Input. */

static int parse_line(char *line, struct row *r)
{
	char *f[11], *p = line, *q;
	unsigned n = 0;

	/* Ten plain fields, then the quoted note (bench.h keeps commas out of it). */
	while (n < 10) {
		q = strchr(p, ',');
		if (!q)
			return -1;
		*q = 0;
		f[n++] = p;
		p = q + 1;
	}
	f[10] = p;
	q = f[10] + strlen(f[10]);
	while (q > f[10] && (q[-1] == '\n' || q[-1] == '\r'))
		*--q = 0;
	if (*f[10] == '"') {
		f[10]++;
		if (q > f[10] && q[-1] == '"')
			q[-1] = 0;
	}
	snprintf(r->bench, sizeof(r->bench), "%s", f[0]);
	snprintf(r->system, sizeof(r->system), "%s", f[1]);
	r->writers = (unsigned)strtoul(f[2], NULL, 10);
	r->payload = (unsigned)strtoul(f[3], NULL, 10);
	snprintf(r->metric, sizeof(r->metric), "%s", f[4]);
	snprintf(r->unit, sizeof(r->unit), "%s", f[5]);
	r->median = strtod(f[6], NULL);
	r->min = strtod(f[7], NULL);
	r->max = strtod(f[8], NULL);
	r->runs = (unsigned)strtoul(f[9], NULL, 10);
	snprintf(r->note, sizeof(r->note), "%s", f[10]);
	return 0;
}

static int group_of(const struct row *r)
{
	for (unsigned i = 0; i < ngroups; i++)
		if (!strcmp(G[i].bench, r->bench) && !strcmp(G[i].system, r->system) &&
		    G[i].writers == r->writers && G[i].payload == r->payload)
			return (int)i;
	if (ngroups == MAX_GROUPS)
		die("too many groups", NULL);
	memset(&G[ngroups], 0, sizeof(G[0]));
	snprintf(G[ngroups].bench, sizeof(G[0].bench), "%s", r->bench);
	snprintf(G[ngroups].system, sizeof(G[0].system), "%s", r->system);
	G[ngroups].writers = r->writers;
	G[ngroups].payload = r->payload;
	G[ngroups].rate = G[ngroups].mbs = G[ngroups].p50 = G[ngroups].p99 = G[ngroups].p999 =
		G[ngroups].pmax = G[ngroups].cpu = -1;
	return (int)ngroups++;
}

static int note_of(const char *note)
{
	for (unsigned i = 0; i < nnotes; i++)
		if (!strcmp(notes[i], note))
			return (int)i + 1;
	if (nnotes == MAX_GROUPS)
		return 0;
	notes[nnotes] = strdup(note);
	return (int)++nnotes;
}

static void read_rows(const char *path)
{
	char line[2048];
	FILE *f = fopen(path, "r");

	if (!f)
		die("cannot open", path);
	while (fgets(line, sizeof(line), f)) {
		struct row *r = &R[nrows];
		struct group *g;
		int gi;

		if (nrows == MAX_ROWS)
			die("too many rows", path);
		if (parse_line(line, r) < 0)
			continue;
		gi = group_of(r);
		g = &G[gi];
		r->group = gi;
		if (!strcmp(r->metric, "throughput") || !strcmp(r->metric, "acks"))
			g->rate = (int)nrows;
		else if (!strcmp(r->metric, "disk_throughput"))
			g->mbs = (int)nrows;
		else if (!strcmp(r->metric, "payload_throughput") && strcmp(r->bench, "durable"))
			g->mbs = (int)nrows;
		else if (!strcmp(r->metric, "latency_p50"))
			g->p50 = (int)nrows;
		else if (!strcmp(r->metric, "latency_p99"))
			g->p99 = (int)nrows;
		else if (!strcmp(r->metric, "latency_p99.9"))
			g->p999 = (int)nrows;
		else if (!strcmp(r->metric, "latency_max"))
			g->pmax = (int)nrows;
		else if (!strcmp(r->metric, "writer_cpu_per_record"))
			g->cpu = (int)nrows;
		else if (g->nextra < 16 && strcmp(r->metric, "ring_throughput"))
			g->extra[g->nextra++] = (int)nrows;
		/* The group's footnotes: every distinct note of its rows. */
		{
			int id = note_of(r->note);
			unsigned k;

			if (!g->note)
				g->note = id;
			for (k = 0; k < g->nnotes && g->notes[k] != id; k++)
				;
			if (k == g->nnotes && k < 8)
				g->notes[g->nnotes++] = id;
		}
		nrows++;
	}
	fclose(f);
}

/* ------------------------------------------------------------------------- */
/* Look-ups, comparisons, targets. */

static const struct row *find(const char *bench, const char *system, unsigned writers,
			      unsigned payload, const char *metric)
{
	for (unsigned i = 0; i < nrows; i++)
		if (!strcmp(R[i].bench, bench) && !strcmp(R[i].system, system) &&
		    R[i].writers == writers && R[i].payload == payload &&
		    !strcmp(R[i].metric, metric))
			return &R[i];
	return NULL;
}

static double to_ns(const struct row *r, double v)
{
	if (!strcmp(r->unit, "us"))
		return v * 1e3;
	if (!strcmp(r->unit, "ms"))
		return v * 1e6;
	return v;
}

static void add_target(struct group *g, const char *what, const char *measured, int met)
{
	struct target_res *t;
	size_t len;

	if (ntargets == 32)
		return;
	t = &T[ntargets++];
	snprintf(t->what, sizeof(t->what), "%s", what);
	snprintf(t->measured, sizeof(t->measured), "%s", measured);
	t->met = met;
	if (!g)
		return;
	len = strlen(g->target);
	snprintf(g->target + len, sizeof(g->target) - len, "%s%s: **%s**", len ? "; " : "", what,
		 met < 0 ? "not measured" : met ? "met" : "missed");
}

/* A target on one figure: value op limit. */
static void target_value(const char *what, const char *bench, const char *system, unsigned w,
			 unsigned p, const char *metric, int at_least, double limit, double scale,
			 const char *unit)
{
	const struct row *r = find(bench, system, w, p, metric);
	char measured[160];
	double v;

	if (!r) {
		add_target(NULL, what, "not measured in this run", -1);
		return;
	}
	v = r->median;
	if (strstr(metric, "latency"))
		v = to_ns(r, v);
	snprintf(measured, sizeof(measured), "%.3g %s (min %.3g, max %.3g)", v / scale, unit,
		 (strstr(metric, "latency") ? to_ns(r, r->min) : r->min) / scale,
		 (strstr(metric, "latency") ? to_ns(r, r->max) : r->max) / scale);
	add_target(&G[r->group], what, measured, at_least ? v >= limit : v < limit);
}

static void comparisons(void)
{
	for (unsigned i = 0; i < ngroups; i++) {
		struct group *g = &G[i];

		if (!strcmp(g->bench, "append") && strcmp(g->system, "bufferengine") && g->rate >= 0) {
			const struct row *be = find("append", "bufferengine", g->writers, g->payload,
						    "throughput");

			if (be && R[g->rate].median > 0)
				snprintf(g->cmp, sizeof(g->cmp), "%.2fx", be->median / R[g->rate].median);
		} else if (!strcmp(g->bench, "durable") && !strcmp(g->system, "fio") && g->mbs >= 0) {
			const struct row *be = find("durable", "bufferengine", g->writers, g->payload,
						    "disk_throughput");

			if (be && R[g->mbs].median > 0)
				snprintf(g->cmp, sizeof(g->cmp), "%.1f%% of fio",
					 100 * be->median / R[g->mbs].median);
		} else if (!strcmp(g->bench, "groupcommit") && !strcmp(g->system, "fdatasync") &&
			   g->p50 >= 0) {
			const struct row *be = find("groupcommit", "bufferengine", 1, 64, "latency_p50");

			if (be && R[g->p50].median > 0)
				snprintf(g->cmp, sizeof(g->cmp), "be_flush p50 = %.2fx",
					 to_ns(be, be->median) / to_ns(&R[g->p50], R[g->p50].median));
		} else if (!strcmp(g->bench, "groupcommit") && !strcmp(g->system, "bufferengine") &&
			   g->writers > 1 && g->rate >= 0) {
			const struct row *one = find("groupcommit", "bufferengine", 1, 64, "acks");

			if (one && one->median > 0)
				snprintf(g->cmp, sizeof(g->cmp), "%.2fx the acks of 1",
					 R[g->rate].median / one->median);
		}
		/* The CSV carries the comparison on the group's rate row (or its first). */
		for (unsigned k = 0; k < nrows; k++)
			if (R[k].group == (int)i)
				snprintf(R[k].cmp, sizeof(R[k].cmp), "%s", g->cmp);
	}
}

static void ratio_target(const char *what, const char *bench, const char *ours, const char *other,
			 unsigned w, unsigned p, const char *metric, double limit)
{
	const struct row *be = find(bench, ours, w, p, metric);
	const struct row *o = find(bench, other, w, p, metric);
	char measured[160];
	double ratio;

	if (!be || !o || o->median <= 0) {
		add_target(NULL, what, "not measured in this run", -1);
		return;
	}
	ratio = be->median / o->median;
	snprintf(measured, sizeof(measured), "%.1fx (%s %.3g/s, %s %.3g/s)", ratio, ours,
		 be->median, other, o->median);
	add_target(&G[o->group], what, measured, ratio >= limit);
}

static void targets(void)
{
	target_value("one writer 64 B >= 20 M records/s", "append", "bufferengine", 1, 64,
		     "throughput", 1, 20e6, 1e6, "M records/s");
	{
		const struct row *cpu = find("append", "bufferengine", 1, 64, "writer_cpu_per_record");

		/* Other load steals the writer's CPU: say what the path costs by itself. */
		if (cpu && cpu->median > 0 && ntargets) {
			size_t len = strlen(T[ntargets - 1].measured);

			snprintf(T[ntargets - 1].measured + len, sizeof(T[0].measured) - len,
				 "; %.1f ns of writer CPU per record = %.1f M records/s on a core of "
				 "its own", cpu->median, 1e3 / cpu->median);
		}
	}
	target_value("batch call 64 B >= 60 M records/s", "append", "bufferengine-batch", 1, 64,
		     "throughput", 1, 60e6, 1e6, "M records/s");
	target_value("two writers 64 B >= 8 M records/s", "append", "bufferengine", 2, 64,
		     "throughput", 1, 8e6, 1e6, "M records/s");
	target_value("append p99 < 1 us with the daemon flushing", "append-flushing", "bufferengine",
		     1, 64, "latency_p99", 0, 1000, 1, "ns");
	target_value("append p99.9 < 5 us with the daemon flushing", "append-flushing",
		     "bufferengine", 1, 64, "latency_p99.9", 0, 5000, 1, "ns");
	ratio_target(">= 10x write(2)", "append", "bufferengine", "write-oappend", 1, 64,
		     "throughput", 10);
	ratio_target(">= 10x write(2), batch call", "append", "bufferengine-batch", "write-oappend",
		     1, 64, "throughput", 10);
	ratio_target(">= 10x UNIX socket", "append", "bufferengine", "unix-dgram", 1, 64,
		     "throughput", 10);
	ratio_target(">= 50x rsyslog", "append", "bufferengine", "rsyslog", 1, 64, "throughput",
		     50);
	for (unsigned w = 1; w <= 8; w++) {
		const struct row *be = find("durable", "bufferengine", w, 64, "disk_throughput");
		const struct row *fio = find("durable", "fio", w, 64, "disk_throughput");
		char what[96], measured[160];

		if (!be)
			continue;
		snprintf(what, sizeof(what), "durable >= 90%% of fio (%u writer%s)", w,
			 w > 1 ? "s" : "");
		if (!fio || fio->median <= 0) {
			add_target(NULL, what, "fio not measured", -1);
			continue;
		}
		snprintf(measured, sizeof(measured), "%.1f%% (%.0f MB/s vs fio %.0f MB/s)",
			 100 * be->median / fio->median, be->median, fio->median);
		add_target(&G[fio->group], what, measured, be->median >= 0.9 * fio->median);
	}
	{
		const struct row *be = find("groupcommit", "bufferengine", 1, 64, "latency_p50");
		const struct row *fs = find("groupcommit", "fdatasync", 1, 64, "latency_p50");
		char measured[160];

		if (be && fs && fs->median > 0) {
			double x = to_ns(be, be->median) / to_ns(fs, fs->median);

			snprintf(measured, sizeof(measured), "%.2fx (be_flush %.0f us, fdatasync %.0f us)",
				 x, to_ns(be, be->median) / 1e3, to_ns(fs, fs->median) / 1e3);
			add_target(&G[be->group], "be_flush p50 <= 1.5x fdatasync", measured, x <= 1.5);
		} else {
			add_target(NULL, "be_flush p50 <= 1.5x fdatasync", "not measured", -1);
		}
	}
	{
		const struct row *one = find("groupcommit", "bufferengine", 1, 64, "acks");
		const struct row *eight = find("groupcommit", "bufferengine", 8, 64, "acks");
		char measured[160];

		if (one && eight && one->median > 0) {
			double x = eight->median / one->median;

			snprintf(measured, sizeof(measured), "%.2fx (%.0f vs %.0f acks/s)", x,
				 eight->median, one->median);
			add_target(&G[eight->group], "8 flushers >= 4x one", measured, x >= 4);
		} else {
			add_target(NULL, "8 flushers >= 4x one", "not measured", -1);
		}
	}
	/* The CSV: each row of a group carries the group's targets. */
	for (unsigned k = 0; k < nrows; k++) {
		const char *t = G[R[k].group].target;
		size_t j = 0;

		for (const char *s = t; *s && j + 1 < sizeof(R[k].target); s++)
			if (*s != '*')
				R[k].target[j++] = *s == ',' ? ';' : *s;
		R[k].target[j] = 0;
	}
}

/* ------------------------------------------------------------------------- */
/* Formatting. */

static void fmt_num(char *out, size_t len, double v)
{
	double a = v < 0 ? -v : v;

	if (a >= 1e9)
		snprintf(out, len, "%.2f G", v / 1e9);
	else if (a >= 1e6)
		snprintf(out, len, "%.2f M", v / 1e6);
	else if (a >= 1e4)
		snprintf(out, len, "%.1f k", v / 1e3);
	else if (a >= 100 || v == (double)(long long)v)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.3g", v);
}

static void fmt_ns(char *out, size_t len, double ns)
{
	if (ns < 1e4)
		snprintf(out, len, "%.0f ns", ns);
	else if (ns < 1e7)
		snprintf(out, len, "%.1f µs", ns / 1e3);
	else
		snprintf(out, len, "%.1f ms", ns / 1e6);
}

/* "median (min–max) unit" */
static void fmt_rate(char *out, size_t len, const struct row *r)
{
	char a[32], b[32], c[32];
	const char *unit = r->unit;

	if (!strcmp(unit, "records/s"))
		unit = "rec/s";
	fmt_num(a, sizeof(a), r->median);
	fmt_num(b, sizeof(b), r->min);
	fmt_num(c, sizeof(c), r->max);
	snprintf(out, len, "**%s %s** (%s–%s)", a, unit, b, c);
}

static void fmt_lat(char *out, size_t len, int idx)
{
	if (idx < 0) {
		out[0] = 0;
		return;
	}
	fmt_ns(out, len, to_ns(&R[idx], R[idx].median));
}

static void write_md(const char *path, const char *stamp, int failed)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die("cannot write", path);
	fprintf(f, "# bufferengine benchmarks, %s\n\n", stamp);
	fprintf(f, "| machine | |\n|---|---|\n");
	for (unsigned i = 0; i < nmachine; i++) {
		char *eq = strchr(machine[i], '=');

		if (eq)
			fprintf(f, "| %.*s | %s |\n", (int)(eq - machine[i]), machine[i], eq + 1);
	}
	fprintf(f, "\nEvery figure is the median of its runs (min–max of the runs beside the rate); "
		"MB = 10^6 bytes. Latencies are the medians over the runs of each run's "
		"percentile, from a log-linear histogram. *CPU/rec*: the writer processes' CPU "
		"time per record (getrusage), which other load on the machine does not inflate "
		"as it does the rate. *be ×*: bufferengine's rate divided by the row's (append: "
		"the same writers and payload). Notes are numbered below the table.\n\n");
	fprintf(f, "| bench | system | writers | payload B | rate (min–max) | MB/s | CPU/rec | p50 | "
		"p99 | p99.9 | max | be × | target | other figures (medians) | note |\n");
	fprintf(f, "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|\n");
	for (unsigned i = 0; i < ngroups; i++) {
		struct group *g = &G[i];
		char rate[128] = "", mbs[32] = "", l50[32], l99[32], l999[32], lmax[32], cpu[32];

		if (g->rate >= 0)
			fmt_rate(rate, sizeof(rate), &R[g->rate]);
		if (g->mbs >= 0)
			snprintf(mbs, sizeof(mbs), "%.0f", R[g->mbs].median);
		fmt_lat(l50, sizeof(l50), g->p50);
		fmt_lat(l99, sizeof(l99), g->p99);
		fmt_lat(l999, sizeof(l999), g->p999);
		fmt_lat(lmax, sizeof(lmax), g->pmax);
		fmt_lat(cpu, sizeof(cpu), g->cpu);
		if (g->rate >= 0 || g->mbs >= 0 || g->p50 >= 0) {
			char other[512] = "";

			/* Figures that fit no column: in the last one, by name. */
			for (unsigned k = 0; k < g->nextra; k++) {
				const struct row *r = &R[g->extra[k]];
				char v[32];
				size_t len = strlen(other);

				fmt_num(v, sizeof(v), r->median);
				snprintf(other + len, sizeof(other) - len, "%s%s %s %s", len ? "; " : "",
					 r->metric, v, r->unit);
			}
			char ids[64] = "";

			for (unsigned k = 0; k < g->nnotes; k++) {
				size_t len = strlen(ids);

				snprintf(ids + len, sizeof(ids) - len, "%s%d", k ? ", " : "", g->notes[k]);
			}
			fprintf(f, "| %s | %s | %u | %u | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
				"%s | %s |\n", g->bench, g->system, g->writers, g->payload, rate, mbs, cpu,
				l50, l99, l999, lmax, g->cmp, g->target, other, ids);
			continue;
		}
		/* A group of other figures only: a row each. */
		for (unsigned k = 0; k < g->nextra; k++) {
			const struct row *r = &R[g->extra[k]];
			char v[128];

			if (!strcmp(r->metric, "not_available")) {
				fprintf(f, "| %s | %s | | | not available | | | | | | | | | | %d |\n",
					r->bench, r->system, note_of(r->note));
				continue;
			}
			fmt_rate(v, sizeof(v), r);
			fprintf(f, "| %s | %s: %s | %u | %u | %s | | | | | | | | %s | | %d |\n", r->bench,
				r->system, r->metric, r->writers, r->payload, v, k == 0 ? g->target : "",
				note_of(r->note));
		}
	}
	fprintf(f, "\n### Targets\n\n");
	for (unsigned i = 0; i < ntargets; i++)
		fprintf(f, "- %s: %s — **%s**\n", T[i].what, T[i].measured,
			T[i].met < 0 ? "not measured" : T[i].met ? "met" : "missed");
	fprintf(f, "\n### Notes\n\n");
	for (unsigned i = 0; i < nnotes; i++)
		fprintf(f, "%u. %s\n", i + 1, notes[i]);
	if (failed)
		fprintf(f, "\n**A benchmark failed: see the log.**\n");
	fclose(f);
}

static void csv_field(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
		fputc(*s == '"' ? '\'' : *s, f);
	fputc('"', f);
}

static void write_csv(const char *path, const char *stamp)
{
	FILE *f = fopen(path, "w");

	if (!f)
		die("cannot write", path);
	fprintf(f, "timestamp,bench,system,writers,payload_bytes,metric,unit,median,min,max,runs,"
		"vs_bufferengine,target,note");
	for (unsigned i = 0; i < nmachine; i++) {
		char *eq = strchr(machine[i], '=');

		fputc(',', f);
		if (eq)
			fprintf(f, "%.*s", (int)(eq - machine[i]), machine[i]);
	}
	fputc('\n', f);
	for (unsigned k = 0; k < nrows; k++) {
		const struct row *r = &R[k];

		fprintf(f, "%s,%s,%s,%u,%u,%s,%s,%.6g,%.6g,%.6g,%u,", stamp, r->bench, r->system,
			r->writers, r->payload, r->metric, r->unit, r->median, r->min, r->max,
			r->runs);
		csv_field(f, r->cmp);
		fputc(',', f);
		csv_field(f, r->target);
		fputc(',', f);
		csv_field(f, r->note);
		for (unsigned i = 0; i < nmachine; i++) {
			char *eq = strchr(machine[i], '=');

			fputc(',', f);
			csv_field(f, eq ? eq + 1 : "");
		}
		fputc('\n', f);
	}
	fclose(f);
}

/* ------------------------------------------------------------------------- */
/* The plot: append throughput by payload, one panel per writer count; the
 * capacity and store scaling. */

static void write_plot(const char *prefix, const char *stamp, const char *title)
{
	char dat[600], gp[600], png[600];
	const char *systems[32];
	unsigned nsys = 0, payloads[16], np = 0, writers[8], nw = 0;
	FILE *f;

	snprintf(dat, sizeof(dat), "%s.dat", prefix);
	snprintf(gp, sizeof(gp), "%s.gp", prefix);
	snprintf(png, sizeof(png), "%s.png", prefix);
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *r = &R[i];
		unsigned k;

		if (strcmp(r->bench, "append") || strcmp(r->metric, "throughput"))
			continue;
		for (k = 0; k < nsys && strcmp(systems[k], r->system); k++)
			;
		if (k == nsys && nsys < 32)
			systems[nsys++] = r->system;
		for (k = 0; k < np && payloads[k] != r->payload; k++)
			;
		if (k == np && np < 16)
			payloads[np++] = r->payload;
		for (k = 0; k < nw && writers[k] != r->writers; k++)
			;
		if (k == nw && nw < 8)
			writers[nw++] = r->writers;
	}
	f = fopen(dat, "w");
	if (!f)
		die("cannot write", dat);
	/* Blocks 0 .. nw-1: append, one per writer count: payload, then a column per system. */
	for (unsigned w = 0; w < nw; w++) {
		fprintf(f, "# append, %u writer(s): payload", writers[w]);
		for (unsigned s = 0; s < nsys; s++)
			fprintf(f, " \"%s\"", systems[s]);
		fprintf(f, "\npayload");
		for (unsigned s = 0; s < nsys; s++)
			fprintf(f, " \"%s\"", systems[s]);
		fputc('\n', f);
		for (unsigned p = 0; p < np; p++) {
			fprintf(f, "%u", payloads[p]);
			for (unsigned s = 0; s < nsys; s++) {
				const struct row *r = find("append", systems[s], writers[w],
							   payloads[p], "throughput");

				if (r)
					fprintf(f, " %.6g", r->median / 1e6);
				else
					fprintf(f, " NaN");
			}
			fputc('\n', f);
		}
		fprintf(f, "\n\n");
	}
	/* Block nw: scaling by ring capacity (KiB, M records/s). */
	fprintf(f, "# scale-capacity: KiB M-records/s min max\ncapacity rate min max\n");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *r = &R[i];
		unsigned long v;
		char unit[8] = "";

		if (strcmp(r->bench, "scale-capacity") || strcmp(r->metric, "throughput"))
			continue;
		if (sscanf(r->system, "bufferengine ring %lu %7s", &v, unit) != 2)
			continue;
		fprintf(f, "%lu %.6g %.6g %.6g\n", !strcmp(unit, "MiB") ? v << 10 : v, r->median / 1e6,
			r->min / 1e6, r->max / 1e6);
	}
	fprintf(f, "\n\n# scale-stores: stores M-records/s min max\nstores rate min max\n");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *r = &R[i];

		if (strcmp(r->bench, "scale-stores") || strcmp(r->metric, "throughput"))
			continue;
		fprintf(f, "%u %.6g %.6g %.6g\n", r->writers, r->median / 1e6, r->min / 1e6,
			r->max / 1e6);
	}
	fclose(f);

	f = fopen(gp, "w");
	if (!f)
		die("cannot write", gp);
	fprintf(f, "# gnuplot %s  (draws %s)\n", gp, png);
	fprintf(f, "set terminal pngcairo size 1600,1100 font ',10' noenhanced\n"
		   "set output '%s'\n"
		   "set datafile missing 'NaN'\n"
		   "set key outside right top vertical\n"
		   "set grid\n"
		   "set logscale xy 2\n"
		   "set format y '%%g'\n"
		   "set xlabel 'payload (bytes)'\n"
		   "set ylabel 'M records/s (median)'\n"
		   "set multiplot layout 2,2 title 'bufferengine %s: %s'\n",
		png, stamp, title);
	/* Ten distinct colours (the default eight repeat); bufferengine first, black and thick. */
	{
		static const char *const col[] = { "#000000", "#7f7f7f", "#1f77b4", "#2ca02c",
						   "#ff7f0e", "#d62728", "#9467bd", "#8c564b",
						   "#e377c2", "#17becf" };

		for (unsigned i = 0; i < 10; i++)
			fprintf(f, "set linetype %u lc rgb '%s' lw %d pt %u\n", i + 1, col[i],
				i == 0 ? 3 : 2, i + 1);
	}
	for (unsigned w = 0; w < nw && w < 3; w++)
		fprintf(f, "set title 'append path, %u writer process%s'\n"
			   "plot for [c=2:%u] '%s' index %u using 1:c with linespoints lt (c - 1) "
			   "title columnheader(c)\n",
			writers[w], writers[w] > 1 ? "es" : "", nsys + 1, dat, w);
	fprintf(f, "unset logscale\nset logscale x 2\nset yrange [0:*]\n"
		   "set title 'through the daemon (sync none, tmpfs): 1 writer by ring capacity; "
		   "1 writer per store by stores'\n"
		   "set xlabel 'ring capacity (KiB)  /  stores'\n"
		   "plot '%s' index %u using 1:2:3:4 with yerrorlines lt 1 title 'by capacity (KiB)', "
		   "'%s' index %u using 1:2:3:4 with yerrorlines lt 3 title 'by stores (1 MiB rings)'\n"
		   "unset multiplot\n",
		dat, nw, dat, nw + 1);
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "in", required_argument, NULL, 'i' },
		{ "stamp", required_argument, NULL, 's' },
		{ "machine", required_argument, NULL, 'm' },
		{ "md", required_argument, NULL, 'M' },
		{ "csv", required_argument, NULL, 'C' },
		{ "plot", required_argument, NULL, 'P' },
		{ "failed", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	const char *in = NULL, *stamp = "", *md = NULL, *csv = NULL, *plot = NULL;
	char title[256] = "";
	int c, failed = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'i':
			in = optarg;
			break;
		case 's':
			stamp = optarg;
			break;
		case 'm':
			if (nmachine < MAX_MACHINE)
				machine[nmachine++] = optarg;
			break;
		case 'M':
			md = optarg;
			break;
		case 'C':
			csv = optarg;
			break;
		case 'P':
			plot = optarg;
			break;
		case 'F':
			failed = 1;
			break;
		default:
			fprintf(stderr, "usage: bench_report --in ROWS --stamp STAMP [--machine K=V]... "
				"[--md FILE] [--csv FILE] [--plot PREFIX] [--failed]\n");
			return 2;
		}
	}
	if (!in)
		die("--in is required", NULL);
	read_rows(in);
	comparisons();
	targets();
	for (unsigned i = 0; i < nmachine; i++)
		if (!strncmp(machine[i], "CPUs=", 5) || !strncmp(machine[i], "kernel=", 7)) {
			size_t len = strlen(title);

			snprintf(title + len, sizeof(title) - len, "%s%s", len ? ", " : "", machine[i]);
		}
	if (md)
		write_md(md, stamp, failed);
	if (csv)
		write_csv(csv, stamp);
	if (plot)
		write_plot(plot, stamp, title);
	return 0;
}
