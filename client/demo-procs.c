/*
 * demo-procs.c - a demo process collector linked against libbufferengine.
 *
 * Every --interval (1 s) it snapshots the process table and writes it to a
 * process store as one batch, be_write_processes(): one record per
 * process, every record of a snapshot with the same snapshot id and time.
 * For each /proc/[pid]:
 *
 *   stat      ppid, utime + stime, threads, start time, RSS
 *   status    the real uid, turned into a user name with getpwuid()
 *   cmdline   the command line, NULs as spaces ("[comm]" for a kernel
 *             thread, as ps shows it)
 *   exe       readlink(), when permitted (else absent)
 *
 * CPU percent is the change of utime + stime since the previous snapshot
 * over the time between them (for a process not seen before: over its
 * lifetime, as ps does); memory percent is RSS over MemTotal.  A process
 * that exits while it is read is left out.  Snapshot ids are unique across
 * runs: the collector's start time in seconds in the high 32 bits, a count
 * from 1 in the low.  Every record carries gosight's meta (hostname from
 * gethostname(), host_id from /etc/machine-id).
 *
 * It runs for --duration seconds, or until SIGTERM/SIGINT, then waits until
 * what it wrote is durable (be_flush()) and prints one line to stdout:
 * "demo-procs: N records written to STORE, D dropped, T timed out, ...".
 * Exit status: 0, 1 on an error (one line on stderr), 2 for bad usage.
 *
 * Functions return 0 or a negative errno.  SIGTERM and SIGINT are blocked
 * except while the collector sleeps in ppoll().
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "demo-procs"

#define DEFAULT_STORE	    "processes"
#define DEFAULT_INTERVAL_MS 1000

#include "client/demo-util.h"

#define CMDLINE_MAX 4096 /* longer command lines are cut here */
#define USER_CACHE  64
#define NO_STR	    SIZE_MAX /* a string offset: absent */

/* What the next snapshot needs of a process: its CPU time then. */
struct seen {
	uint32_t pid;
	uint64_t start; /* clock ticks after boot: tells a reused pid */
	uint64_t ticks; /* utime + stime */
};

/*
 * One snapshot.  Strings go to one growing pool and are kept as offsets
 * until snap_seal() points the records at them.
 */
struct snap {
	struct be_process *p;
	struct seen *seen; /* seen[i] belongs to p[i] */
	size_t (*str)[3];  /* user, exe, cmdline of p[i] */
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
};

struct user_cache {
	uint32_t uid[USER_CACHE];
	char name[USER_CACHE][64];
	size_t n;
};

/* Constant for the run. */
struct host {
	long hz;   /* sysconf(_SC_CLK_TCK) */
	long page; /* sysconf(_SC_PAGESIZE) */
	struct be_meta meta;
	char hostname[256];
	char host_id[64];
};

static void host_init(struct host *h)
{
	memset(h, 0, sizeof(*h));
	h->hz = sysconf(_SC_CLK_TCK);
	if (h->hz <= 0)
		h->hz = 100;
	h->page = sysconf(_SC_PAGESIZE);
	if (h->page <= 0)
		h->page = 4096;
	demo_meta_init(&h->meta, h->hostname, sizeof(h->hostname), h->host_id, sizeof(h->host_id));
}

/* MemTotal in bytes, or 0 when /proc/meminfo does not say. */
static uint64_t mem_total(void)
{
	char line[256];
	uint64_t kb = 0;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		/* NOLINTNEXTLINE(cert-err34-c): the kernel's format; the match count is checked */
		if (sscanf(line, "MemTotal: %" SCNu64, &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/*
 * Read /proc/@pid/@name into @buf (at most @len - 1 bytes, NUL added).
 * Returns the byte count, or -errno (-ENOENT, -ESRCH: the process is gone).
 */
static ssize_t read_proc(int pid, const char *name, char *buf, size_t len)
{
	char path[64];
	ssize_t n, got = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)got < len - 1) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			got = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = '\0';
out:
	close(fd);
	return got;
}

/* The user name of @uid, or the number when it has none. */
static const char *user_name(struct user_cache *uc, uint32_t uid, char *num, size_t numlen)
{
	struct passwd *pw;
	size_t i;

	for (i = 0; i < uc->n; i++)
		if (uc->uid[i] == uid)
			return uc->name[i];
	pw = getpwuid((uid_t)uid);
	if (!pw) {
		snprintf(num, numlen, "%" PRIu32, uid);
		return num;
	}
	if (uc->n == USER_CACHE)
		return pw->pw_name;
	uc->uid[uc->n] = uid;
	snprintf(uc->name[uc->n], sizeof(uc->name[0]), "%s", pw->pw_name);
	return uc->name[uc->n++];
}

/* ---------------------------------------------------------------------------
 * The snapshot.
 */

static int snap_grow(struct snap *s)
{
	size_t cap = s->cap ? 2 * s->cap : 256;

	if (demo_grow(&s->p, cap, sizeof(*s->p)) || demo_grow(&s->seen, cap, sizeof(*s->seen)) ||
	    demo_grow(&s->str, cap, sizeof(*s->str)))
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

/* Copy @str (NULL: absent) into the pool; *off gets where. */
static int snap_str(struct snap *s, const char *str, size_t *off)
{
	size_t len;

	if (!str) {
		*off = NO_STR;
		return 0;
	}
	len = strlen(str) + 1;
	if (s->pool_len + len > s->pool_cap) {
		size_t cap = s->pool_cap ? s->pool_cap : (size_t)64 * 1024;
		char *p;

		while (cap < s->pool_len + len)
			cap *= 2;
		p = realloc(s->pool, cap);
		if (!p)
			return -ENOMEM;
		s->pool = p;
		s->pool_cap = cap;
	}
	memcpy(s->pool + s->pool_len, str, len);
	*off = s->pool_len;
	s->pool_len += len;
	return 0;
}

static void snap_seal(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const char **f[3] = { &s->p[i].user, &s->p[i].exe, &s->p[i].cmdline };

		for (int k = 0; k < 3; k++)
			*f[k] = s->str[i][k] == NO_STR ? NULL : s->pool + s->str[i][k];
	}
}

static void snap_free(struct snap *s)
{
	free(s->p);
	free(s->seen);
	free(s->str);
	free(s->pool);
}

static int seen_cmp(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Where the previous snapshot saw @pid (sorted by pid), or NULL. */
static const struct seen *seen_find(const struct seen *v, size_t n, uint32_t pid)
{
	struct seen key = { .pid = pid };

	return n ? bsearch(&key, v, n, sizeof(*v), seen_cmp) : NULL;
}

/* Fields of /proc/[pid]/stat after "(comm)": see proc(5). */
struct pstat {
	char comm[64];
	int ppid;
	unsigned long utime, stime;
	long threads;
	unsigned long long start;
	long rss;
};

static int parse_stat(char *buf, struct pstat *ps)
{
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	size_t len;

	if (!open || !close || close < open)
		return -EBADMSG;
	len = (size_t)(close - open - 1);
	if (len >= sizeof(ps->comm))
		len = sizeof(ps->comm) - 1;
	memcpy(ps->comm, open + 1, len);
	ps->comm[len] = '\0';
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice threads itrealvalue start
	 * vsize rss */
	/* NOLINTNEXTLINE(cert-err34-c): the kernel's format; the match count is checked */
	if (sscanf(close + 1,
		   " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d"
		   " %*d %*d %ld %*d %llu %*u %ld",
		   &ps->ppid, &ps->utime, &ps->stime, &ps->threads, &ps->start, &ps->rss) != 6)
		return -EBADMSG;
	return 0;
}

/* The command line with NULs as spaces, or "[comm]" when it is empty. */
static void read_cmdline(int pid, const char *comm, char *buf, size_t len)
{
	ssize_t n;

	n = read_proc(pid, "cmdline", buf, len);
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	if (n <= 0) {
		snprintf(buf, len, "[%s]", comm);
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
}

/* Clock ticks to nanoseconds, without overflow. */
static uint64_t ticks_ns(uint64_t ticks, long hz)
{
	return ticks / (uint64_t)hz * NSEC_PER_SEC +
	       ticks % (uint64_t)hz * NSEC_PER_SEC / (uint64_t)hz;
}

/* What snap_add() needs to know of the snapshot being taken. */
struct snap_ctx {
	const struct host *h;
	struct user_cache *uc;
	const struct seen *prev; /* the previous snapshot, sorted by pid */
	size_t nprev;
	uint64_t dt_ns;	    /* since the previous snapshot */
	uint64_t boot_ns;   /* CLOCK_REALTIME of the boot */
	uint64_t uptime_ns; /* CLOCK_BOOTTIME now */
	uint64_t memtotal;
};

/*
 * Add process @pid to the snapshot.  Returns 0 (also when the process has
 * gone meanwhile and is left out), or -ENOMEM.
 */
static int snap_add(struct snap *s, int pid, const struct snap_ctx *x)
{
	char buf[CMDLINE_MAX + 8], path[64], num[16];
	const char *user = NULL;
	const struct seen *was;
	struct be_process *rec;
	uint64_t ticks, start_ns, rss;
	struct pstat ps;
	ssize_t n;
	long uid;
	char *p;
	int ret;

	n = read_proc(pid, "stat", buf, sizeof(buf));
	if (n < 0 || parse_stat(buf, &ps))
		return 0; /* gone, or not a process we can read */

	if (s->n == s->cap) {
		ret = snap_grow(s);
		if (ret)
			return ret;
	}
	rec = &s->p[s->n];
	memset(rec, 0, sizeof(*rec));
	rec->pid = (uint32_t)pid;
	rec->ppid = (uint32_t)ps.ppid;
	rec->threads = ps.threads > 0 ? (uint32_t)ps.threads : 0;
	rec->meta = &x->h->meta;
	rss = ps.rss > 0 ? (uint64_t)ps.rss * (uint64_t)x->h->page : 0;
	rec->rss_bytes = rss;
	if (x->memtotal)
		rec->mem_percent = 100.0 * (double)rss / (double)x->memtotal;
	start_ns = ticks_ns(ps.start, x->h->hz);
	rec->start_ts_ns = x->boot_ns + start_ns;

	/* CPU: since the previous snapshot, else over the process's life. */
	ticks = (uint64_t)ps.utime + ps.stime;
	was = seen_find(x->prev, x->nprev, (uint32_t)pid);
	if (was && was->start == ps.start && x->dt_ns && ticks >= was->ticks)
		rec->cpu_percent =
			100.0 * (double)ticks_ns(ticks - was->ticks, x->h->hz) / (double)x->dt_ns;
	else if (x->uptime_ns > start_ns)
		rec->cpu_percent = 100.0 * (double)ticks_ns(ticks, x->h->hz) /
				   (double)(x->uptime_ns - start_ns);
	s->seen[s->n] = (struct seen){ .pid = (uint32_t)pid, .start = ps.start, .ticks = ticks };

	/* The real uid, from status. */
	if (read_proc(pid, "status", buf, sizeof(buf)) > 0) {
		p = strstr(buf, "\nUid:");
		if (p) {
			uid = strtol(p + 5, NULL, 10);
			if (uid >= 0)
				user = user_name(x->uc, (uint32_t)uid, num, sizeof(num));
		}
	}
	ret = snap_str(s, user, &s->str[s->n][0]);
	if (ret)
		return ret;

	/* exe: EACCES for another user's process, ENOENT for a kernel thread. */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0)
		buf[n] = '\0';
	ret = snap_str(s, n > 0 ? buf : NULL, &s->str[s->n][1]);
	if (ret)
		return ret;

	read_cmdline(pid, ps.comm, buf, CMDLINE_MAX + 1);
	ret = snap_str(s, buf, &s->str[s->n][2]);
	if (ret)
		return ret;
	s->n++;
	return 0;
}

/* Take a snapshot of every process in /proc.  Returns 0 or -errno. */
static int snap_take(struct snap *s, const struct snap_ctx *x)
{
	struct dirent *de;
	char *end;
	long pid;
	int ret = 0;
	DIR *d;

	s->n = 0;
	s->pool_len = 0;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((errno = 0, de = readdir(d))) {
		pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0 || pid > INT_MAX)
			continue;
		ret = snap_add(s, (int)pid, x);
		if (ret)
			goto out;
	}
	if (errno)
		ret = -errno;
out:
	closedir(d);
	return ret;
}

/* ---------------------------------------------------------------------------
 * Options.
 */

static void usage(FILE *f)
{
	demo_usage_sampler(f, "process", "snapshots");
	fprintf(f, "Snapshots the process table from /proc and writes each snapshot as one\n"
		   "batch of process records; at the end, flushes and prints a summary.\n"
		   "Exit status: 0 done, 1 an error, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	struct demo_opts a;
	struct snap snaps[2] = { 0 }, *cur = &snaps[0], *prev = &snaps[1], *tmp;
	struct user_cache uc = { .n = 0 };
	struct demo_counts cnt = { 0 };
	struct snap_ctx x = { 0 };
	struct host h;
	uint64_t start, next, deadline, id_base, nsnaps = 0, taken, prev_taken = 0;
	int interval, ret = 0, status = 1;
	sigset_t waitmask;
	be_store *st = NULL;

	ret = demo_sampler_start(argc, argv, usage, &a, &interval, &waitmask);
	if (ret >= 0)
		return ret;
	host_init(&h);
	x.h = &h;
	x.uc = &uc;
	id_base = (demo_clock_ns(CLOCK_REALTIME) / NSEC_PER_SEC) << 32;

	if (demo_open(&a, BE_TYPE_PROCESS, "process", &st))
		goto out;

	start = demo_clock_ns(CLOCK_MONOTONIC);
	deadline = demo_deadline(start, a.duration);
	for (next = start; demo_running(deadline);) {
		uint64_t real = demo_clock_ns(CLOCK_REALTIME);

		taken = demo_clock_ns(CLOCK_MONOTONIC);
		x.uptime_ns = demo_clock_ns(CLOCK_BOOTTIME);
		x.boot_ns = real - x.uptime_ns;
		x.memtotal = mem_total();
		x.prev = prev->seen;
		x.nprev = prev->n;
		x.dt_ns = prev_taken ? taken - prev_taken : 0;
		ret = snap_take(cur, &x);
		if (ret) {
			fprintf(stderr, PROG ": /proc: %s\n", strerror(-ret));
			goto flush;
		}
		snap_seal(cur);
		for (size_t i = 0; i < cur->n; i++) {
			cur->p[i].snapshot_id = id_base + nsnaps + 1;
			cur->p[i].snapshot_ts_ns = real;
		}
		ret = demo_write(st, BE_TYPE_PROCESS, cur->p, cur->n, &cnt);
		if (ret) {
			fprintf(stderr, PROG ": %s: %s\n", a.store, be_strerror(ret));
			goto flush;
		}
		nsnaps++;
		if (cur->n) /* else seen may be NULL, which qsort() must not get */
			qsort(cur->seen, cur->n, sizeof(*cur->seen), seen_cmp);
		tmp = prev;
		prev = cur;
		cur = tmp;
		prev_taken = taken;
		demo_pace(&next, interval, deadline, &waitmask);
	}
	status = 0;
flush:
	if (demo_finish(st, a.store, &cnt, start, "%" PRIu64 " snapshots", nsnaps))
		status = 1;
out:
	be_close(st);
	snap_free(&snaps[0]);
	snap_free(&snaps[1]);
	return status;
}
