/*
 * bench_compare.c - the append path of bufferengine against what a user
 * would pick instead, side by side in one run: the same payloads, the same
 * writer processes, the same loop.
 *
 * For every payload size (-s, default 16,64,256,1024) and writer count
 * (-w, default 1,2,4), each system below gets a team of writer processes
 * (bench.h; writer i pinned to the i-th allowed CPU modulo their number),
 * one warm-up run and --runs measured runs (3 for the systems behind a
 * system call or a server).  A run appends a fixed number of records
 * split evenly over the writers, all starting together; records/s = all
 * records / (first writer's start .. the moment the last record is where
 * the system puts it: in the ring, the file, the reader's file, rsyslog's
 * output file, or acknowledged by Redis).  Every --sample-th record (64
 * for the in-memory systems, 8 for the system calls, every one behind a
 * server) is timed with clock_gettime(CLOCK_MONOTONIC) before and after
 * the call, into a log-linear histogram: p50, p99, p99.9, max of the
 * call's latency.  The timing costs ~40 ns per sampled call: under 1 % of
 * the throughput of any system here.
 *
 *   bufferengine          be_write() into a raw ring (ring_create, 256 MiB,
 *                         no daemon: between runs the parent empties the
 *                         ring as the daemon would, tail := head)
 *   bufferengine-batch    be_write_batch() of 64 records per call into the
 *                         same raw ring (latency: per call of 64 records)
 *   bufferengine-logs     be_write_logs() of 64 log records per call into a
 *                         log ring (typed: each encoded before the lock):
 *                         message = the payload
 *   plain-mutex-ring      the same append loop (timestamp; lock; space check;
 *                         wrap padding; the 32-byte header with seq, time and
 *                         pid; payload; release store of head; unlock) on
 *                         a ring laid out here, under a plain process-shared
 *                         (not robust) pthread mutex: the lock's cost, and the
 *                         library's checks, side by side with ours
 *   memcpy                the payload copied into private memory: the ceiling
 *   write-oappend         write(2) of each record to one file opened O_APPEND
 *                         by every writer (on --data-dir)
 *   unix-dgram            send(2) of each record over a UNIX datagram socket
 *                         to a reader process that write(2)s them to a file
 *                         in 64 KiB chunks; done when the reader wrote all
 *   pipe                  write(2) of each record to a pipe; a reader process
 *                         read(2)s 64 KiB at a time and write(2)s a file
 *   rsyslog               rsyslogd -n -f (private config, pid file, work dir),
 *                         imuxsock on a private socket, omfile with the raw
 *                         message; each writer send(2)s "<14>payload"; done
 *                         when the output file holds every message
 *   redis-xadd            redis-server (private config, dir, UNIX socket,
 *                         port 0, appendonly yes, appendfsync everysec); XADD
 *                         of each record to one stream in RESP, waiting for
 *                         each reply
 *   redis-xadd-p32        the same pipelined: 32 commands, then 32 replies
 *
 * A system whose program is missing (rsyslogd, redis-server: see
 * scripts/bench-deps.sh) is reported on stderr and left out.
 *
 * CSV lines on stdout (bench.h), bench "append"; progress on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bufferengine.h"
#include "shm/atomics.h"
#include "shm/futex.h"
#include "shm/ring.h"
#include "shm/tsclock.h"
#include "tests/bench/bench.h"
#include "tests/testutil.h"

#define BENCH "append"
#define RING_BYTES (UINT64_C(256) << 20)
#define RUN_BYTES_MAX (UINT64_C(200) << 20)  /* one run's bytes in a ring */
#define BATCH 64                             /* records per batch call */
#define PIPELINE 32                          /* redis-xadd-p32 */
#define READER_CHUNK (64 * 1024)
#define MAX_LIST 8

enum sys {
	SYS_BE,
	SYS_BE_BATCH,
	SYS_BE_LOGS,
	SYS_PLAIN,
	SYS_MEMCPY,
	SYS_WRITE,
	SYS_UNIX,
	SYS_PIPE,
	SYS_RSYSLOG,
	SYS_REDIS,
	SYS_REDIS_P32,
	NSYS
};

struct sysdesc {
	const char *name;
	uint64_t records;   /* per run, all writers together (before the ring's cap) */
	unsigned sample;    /* time every sample-th call (a power of two) */
	int mem;            /* in memory: 5 runs, rings capped by RUN_BYTES_MAX */
	const char *note;
};

static const struct sysdesc SYS[NSYS] = {
	[SYS_BE] = { "bufferengine", 1000000, 64, 1,
		     "be_write into a raw ring in /dev/shm; no daemon (the parent empties the ring "
		     "between runs)" },
	[SYS_BE_BATCH] = { "bufferengine-batch", 1000000, 64, 1,
			   "be_write_batch of 64 records per call into the raw ring; latency is "
			   "per call of 64 records" },
	[SYS_BE_LOGS] = { "bufferengine-logs", 1000000, 64, 1,
			  "be_write_logs of 64 log records per call (typed: encoded before the "
			  "lock): message = payload; latency is per call of 64 records" },
	[SYS_PLAIN] = { "plain-mutex-ring", 1000000, 64, 1,
			"the same append loop on a ring laid out in the benchmark under a plain "
			"process-shared (not robust) pthread mutex" },
	[SYS_MEMCPY] = { "memcpy", 4000000, 64, 1,
			 "memcpy of the payload into private pre-faulted memory: the ceiling" },
	[SYS_WRITE] = { "write-oappend", 200000, 8, 0,
			"write(2) of each record to one file opened O_APPEND by every writer" },
	[SYS_UNIX] = { "unix-dgram", 200000, 8, 0,
		       "send(2) over a UNIX datagram socket to a reader process that writes a "
		       "file (64 KiB writes); until the reader wrote all" },
	[SYS_PIPE] = { "pipe", 200000, 8, 0,
		       "write(2) to a pipe; a reader process reads 64 KiB at a time and writes a "
		       "file; until the reader wrote all" },
	[SYS_RSYSLOG] = { "rsyslog", 60000, 1, 0,
			  "rsyslogd imuxsock (private socket) -> omfile; send(2) of <14>payload; "
			  "until every message is in the output file" },
	[SYS_REDIS] = { "redis-xadd", 20000, 1, 0,
			"redis-server over a UNIX socket; appendfsync everysec; XADD per record "
			"waiting for each reply (RESP)" },
	[SYS_REDIS_P32] = { "redis-xadd-p32", 96000, 1, 0,
			    "redis-server as redis-xadd; XADD pipelined x32; latency per call "
			    "(every 32nd waits for 32 replies)" },
};

enum { CMD_RUN = 1 };

struct reader_sh {
	uint64_t bytes;      /* written to the file so far */
	uint64_t records;
};

struct plain_hdr {
	pthread_mutex_t mu;
	uint64_t head;
	uint64_t next_seq;
	uint8_t _pad[128 - sizeof(pthread_mutex_t) - 16];
	uint64_t tail;       /* the parent's: the "daemon" line */
	uint8_t _pad2[64 - 8];
};

struct opts {
	uint64_t payloads[MAX_LIST];
	unsigned npayloads;
	unsigned writers[MAX_LIST];
	unsigned nwriters;
	unsigned runs, slow_runs;
	double scale;                 /* multiplies every system's records per run */
	int want[NSYS];
	char data_dir[512];           /* scratch files: write(2), readers, servers */

	/* Set up by the parent before a team forks. */
	char instance[64];
	char raw_shm[RING_SHM_NAME_MAX], log_shm[RING_SHM_NAME_MAX];
	struct plain_hdr *plain;      /* MAP_SHARED anonymous: header page + data */
	uint8_t *plain_data;
	int pipe_w;                   /* the pipe's write end */
	char file_path[600];          /* write-oappend */
	char unix_path[108];          /* the reader's socket */
	char rsyslog_sock[108];
	char rsyslog_out[600];
	char redis_sock[108];

	/* Per step. */
	enum sys sys;
	unsigned payload;
	uint64_t per_writer;
};

struct wstate {
	uint8_t *payload;
	be_store *s;
	struct be_log logs[BATCH];
	struct iovec iov[BATCH];
	char *msg;
	uint64_t plain_tail;
	uint32_t pid;
	uint8_t *priv;
	size_t priv_len;
	int fd;
	uint8_t *cmd;                 /* the system's message: rsyslog's or one XADD */
	size_t cmd_len;
	uint8_t *out;                 /* redis pipeline */
	size_t out_len;
	unsigned pending;
	char rbuf[65536];
	size_t rlen, rpos;
};

static struct opts O;
static struct bench_team *cur_team;
static pid_t server_pids[4];

static void on_signal(int sig)
{
	if (cur_team)
		bench_team_kill(cur_team);
	for (unsigned i = 0; i < 4; i++)
		if (server_pids[i] > 0)
			kill(server_pids[i], SIGKILL);
	if (O.instance[0]) {
		ring_unlink(O.instance, "bench");
		ring_unlink(O.instance, "benchlog");
	}
	_exit(128 + sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_compare [options]\n"
		"  -s, --payloads LIST   payload sizes (default 16,64,256,1024)\n"
		"  -w, --writers LIST    writer process counts (default 1,2,4)\n"
		"  -n, --runs N          runs per figure, in-memory systems (default 5)\n"
		"      --slow-runs N     runs per figure, the others (default 3)\n"
		"      --scale X         records per run times X (default 1)\n"
		"      --systems LIST    a subset, by name (default all)\n"
		"  -d, --data-dir DIR    scratch files (default /tmp)\n"
		"  -h, --help\n"
		"CSV lines (" BENCH_CSV_COLUMNS ") on stdout.\n");
}

static void parse(int argc, char **argv)
{
	enum { OPT_SLOW = 256, OPT_SCALE, OPT_SYSTEMS };
	static const struct option lo[] = {
		{ "payloads", required_argument, NULL, 's' },
		{ "writers", required_argument, NULL, 'w' },
		{ "runs", required_argument, NULL, 'n' },
		{ "slow-runs", required_argument, NULL, OPT_SLOW },
		{ "scale", required_argument, NULL, OPT_SCALE },
		{ "systems", required_argument, NULL, OPT_SYSTEMS },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = "/tmp", *systems = NULL;
	int c;

	O.npayloads = bench_parse_sizes("16,64,256,1024", O.payloads, MAX_LIST, "payloads");
	O.nwriters = bench_parse_list("1,2,4", O.writers, MAX_LIST, "writers");
	O.runs = 5;
	O.slow_runs = 3;
	O.scale = 1;
	while ((c = getopt_long(argc, argv, "s:w:n:d:h", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			O.npayloads = bench_parse_sizes(optarg, O.payloads, MAX_LIST, "--payloads");
			break;
		case 'w':
			O.nwriters = bench_parse_list(optarg, O.writers, MAX_LIST, "--writers");
			break;
		case 'n':
			O.runs = (unsigned)bench_parse_size(optarg, "--runs");
			break;
		case OPT_SLOW:
			O.slow_runs = (unsigned)bench_parse_size(optarg, "--slow-runs");
			break;
		case OPT_SCALE:
			O.scale = atof(optarg);
			break;
		case OPT_SYSTEMS:
			systems = optarg;
			break;
		case 'd':
			dir = optarg;
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
	if (!O.runs || O.runs > 100 || !O.slow_runs || O.slow_runs > 100 || O.scale <= 0)
		bench_die("--runs and --slow-runs: 1..100; --scale > 0");
	for (unsigned i = 0; i < O.npayloads; i++)
		if (O.payloads[i] < 1 || O.payloads[i] > 4096)
			bench_die("--payloads: 1..4096 bytes each");
	for (int i = 0; i < NSYS; i++)
		O.want[i] = systems == NULL;
	while (systems && *systems) {
		size_t len = strcspn(systems, ",");
		int found = 0;

		for (int i = 0; i < NSYS; i++)
			if (strlen(SYS[i].name) == len && !strncmp(SYS[i].name, systems, len))
				O.want[i] = found = 1;
		if (!found)
			bench_die("--systems: unknown system '%.*s'", (int)len, systems);
		systems += len;
		if (*systems == ',')
			systems++;
	}
	tu_tmpdir(O.data_dir, sizeof(O.data_dir));
	if (strcmp(dir, "/tmp")) {
		/* tu_tmpdir is under /tmp: put ours under the given directory instead. */
		rmdir(O.data_dir);
		if ((size_t)snprintf(O.data_dir, sizeof(O.data_dir), "%s/be-bench-cmp-%s-%d", dir,
				     tu_run_id(), (int)getpid()) >= 300)
			bench_die("--data-dir: too long");
		if (mkdir(O.data_dir, 0755) < 0)
			bench_die("mkdir %s: %s", O.data_dir, strerror(errno));
	}
}

/* ------------------------------------------------------------------------- */
/* The plain-mutex ring: a copy of the append loop of shm/append.c. */

static int plain_append(struct wstate *ws, const void *payload, uint32_t len)
{
	struct plain_hdr *h = O.plain;
	uint64_t need = rec_size(len), head, off, pad, total, seq, w0, w3, ts = tsclock_now_ns();
	uint8_t *dst;

	pthread_mutex_lock(&h->mu);
	head = h->head;
	off = head & (RING_BYTES - 1);
	pad = (RING_BYTES - off < need) ? RING_BYTES - off : 0;
	total = pad + need;
	if (head + total - ws->plain_tail > RING_BYTES) {
		ws->plain_tail = load_acquire(&h->tail);
		if (head + total - ws->plain_tail > RING_BYTES) {
			pthread_mutex_unlock(&h->mu);
			return -ENOBUFS;
		}
	}
	if (pad) {
		w0 = pad | (uint64_t)REC_TYPE_PAD << 32;
		memcpy(O.plain_data + off, &w0, REC_PAD_MIN);
		off = 0;
	}
	seq = h->next_seq;
	/* The header as four 8-byte stores, the tail padding as one, as shm/append.c does. */
	w0 = (uint64_t)len | (uint64_t)BE_TYPE_RAW << 32;
	w3 = ws->pid;
	dst = O.plain_data + off;
	memcpy(dst, &w0, 8);
	memcpy(dst + 8, &seq, 8);
	memcpy(dst + 16, &ts, 8);
	memcpy(dst + 24, &w3, 8);
	if (need > sizeof(struct rec_hdr) + len) {
		uint64_t zero = 0;

		memcpy(dst + need - 8, &zero, 8);
	}
	memcpy(dst + sizeof(struct rec_hdr), payload, len);
	h->next_seq = seq + 1;
	store_release(&h->head, head + total);
	pthread_mutex_unlock(&h->mu);
	return 0;
}

static void plain_init(void)
{
	pthread_mutexattr_t a;
	size_t len = sizeof(struct plain_hdr) + RING_BYTES;
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap %zu: %s", len, strerror(errno));
	O.plain = p;
	O.plain_data = (uint8_t *)p + sizeof(struct plain_hdr);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&O.plain->mu, &a);
	pthread_mutexattr_destroy(&a);
	O.plain->next_seq = 1;
}

/* ------------------------------------------------------------------------- */
/* RESP, just what XADD needs. */

static int xwrite(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read and check n replies (bulk strings: the entry ids). */
static int redis_replies(struct wstate *ws, unsigned n)
{
	while (n) {
		char *b = ws->rbuf + ws->rpos, *nl;
		size_t avail = ws->rlen - ws->rpos;

		nl = avail ? memchr(b, '\n', avail) : NULL;
		if (nl) {
			size_t line = (size_t)(nl - b) + 1;

			if (b[0] == '$') {
				long blen = strtol(b + 1, NULL, 10);
				size_t need = line + (blen > 0 ? (size_t)blen + 2 : 0);

				if (avail >= need) {
					ws->rpos += need;
					n--;
					continue;
				}
			} else if (b[0] == '+' || b[0] == ':') {
				ws->rpos += line;
				n--;
				continue;
			} else {
				return -EPROTO;     /* an error reply: "-ERR ..." */
			}
		}
		/* More bytes needed. */
		if (ws->rpos == ws->rlen) {
			ws->rpos = ws->rlen = 0;
		} else if (ws->rpos > sizeof(ws->rbuf) / 2) {
			memmove(ws->rbuf, ws->rbuf + ws->rpos, ws->rlen - ws->rpos);
			ws->rlen -= ws->rpos;
			ws->rpos = 0;
		}
		{
			ssize_t r = read(ws->fd, ws->rbuf + ws->rlen, sizeof(ws->rbuf) - ws->rlen);

			if (r == 0)
				return -ECONNRESET;
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			ws->rlen += (size_t)r;
		}
	}
	return 0;
}

static size_t redis_xadd_cmd(uint8_t *out, const char *key, const uint8_t *payload, unsigned len)
{
	int n = sprintf((char *)out, "*5\r\n$4\r\nXADD\r\n$%zu\r\n%s\r\n$1\r\n*\r\n$1\r\nd\r\n$%u\r\n",
			strlen(key), key, len);

	memcpy(out + n, payload, len);
	memcpy(out + n + len, "\r\n", 2);
	return (size_t)n + len + 2;
}

/* A UNIX socket of `type` connected to path: the fd or -errno. */
static int unix_connect(const char *path, int type)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

static inline int redis_one(struct wstate *ws)
{
	int ret = xwrite(ws->fd, ws->cmd, ws->cmd_len);

	return ret ? ret : redis_replies(ws, 1);
}

static inline int redis_pipelined(struct wstate *ws)
{
	memcpy(ws->out + ws->out_len, ws->cmd, ws->cmd_len);
	ws->out_len += ws->cmd_len;
	if (++ws->pending == PIPELINE) {
		int ret = xwrite(ws->fd, ws->out, ws->out_len);

		if (!ret)
			ret = redis_replies(ws, ws->pending);
		ws->out_len = 0;
		ws->pending = 0;
		return ret;
	}
	return 0;
}

/* ------------------------------------------------------------------------- */
/* The writers. */

static inline int send_all(int fd, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = send(fd, buf, len, 0);

		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EMSGSIZE;
	}
}

static inline int write_rec(int fd, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = write(fd, buf, len);

		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

static int w_setup(struct bench_worker *w)
{
	struct wstate *ws = calloc(1, sizeof(*ws));
	unsigned len = O.payload;
	int ret = 0;

	if (!ws)
		return -ENOMEM;
	ws->fd = -1;
	ret = bench_pin(w->idx);
	if (ret < 0) {
		bench_slot_fail(w->slot, ret, "pinning to a CPU: %s", strerror(-ret));
		return ret;
	}
	ws->pid = (uint32_t)getpid();
	ws->payload = malloc(len + 1);
	if (!ws->payload)
		return -ENOMEM;
	for (unsigned i = 0; i < len; i++)
		ws->payload[i] = (uint8_t)('a' + (i + w->idx) % 26);
	ws->payload[len] = 0;

	switch (O.sys) {
	case SYS_BE:
	case SYS_BE_BATCH:
	case SYS_BE_LOGS: {
		struct be_open_opts bo = { .instance = O.instance, .write_timeout_ms = 1000 };
		const char *store = O.sys == SYS_BE_LOGS ? "benchlog" : "bench";

		ret = be_open(store, &bo, &ws->s);
		if (ret) {
			bench_slot_fail(w->slot, ret, "be_open: %s", be_strerror(ret));
			return ret;
		}
		if (bench_prefault_shm((O.sys == SYS_BE_LOGS ? O.log_shm : O.raw_shm) + 1) < 0)
			return -EIO;
		for (unsigned i = 0; i < BATCH; i++) {
			ws->logs[i] = (struct be_log){ .severity = BE_SEV_INFO,
						       .message = (const char *)ws->payload };
			ws->iov[i] = (struct iovec){ .iov_base = ws->payload, .iov_len = len };
		}
		break;
	}
	case SYS_PLAIN:
		if (madvise(O.plain, sizeof(struct plain_hdr) + RING_BYTES, MADV_POPULATE_WRITE) < 0)
			return -errno;
		break;
	case SYS_MEMCPY:
		ws->priv_len = (size_t)O.per_writer * ((len + 7u) & ~7u) + 4096;
		ws->priv = mmap(NULL, ws->priv_len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (ws->priv == MAP_FAILED)
			return -errno;
		break;
	case SYS_WRITE:
		ws->fd = open(O.file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (ws->fd < 0)
			return -errno;
		break;
	case SYS_UNIX:
		ws->fd = unix_connect(O.unix_path, SOCK_DGRAM);
		if (ws->fd < 0)
			return ws->fd;
		break;
	case SYS_PIPE:
		ws->fd = O.pipe_w;
		break;
	case SYS_RSYSLOG:
		ws->fd = unix_connect(O.rsyslog_sock, SOCK_DGRAM);
		if (ws->fd < 0)
			return ws->fd;
		ws->cmd = malloc(len + 8);
		if (!ws->cmd)
			return -ENOMEM;
		memcpy(ws->cmd, "<14>", 4);
		memcpy(ws->cmd + 4, ws->payload, len);
		ws->cmd_len = len + 4;
		break;
	case SYS_REDIS:
	case SYS_REDIS_P32:
		ws->fd = unix_connect(O.redis_sock, SOCK_STREAM);
		if (ws->fd < 0)
			return ws->fd;
		ws->cmd = malloc(len + 128);
		ws->out = malloc((len + 128) * PIPELINE);
		if (!ws->cmd || !ws->out)
			return -ENOMEM;
		ws->cmd_len = redis_xadd_cmd(ws->cmd, "bench", ws->payload, len);
		break;
	default:
		return -EINVAL;
	}
	w->state = ws;
	return 0;
}

/* The loop, one copy per system so that the call inlines; every (mask+1)-th timed. */
#define LOOP(n, mask, CALL)                                                     \
	do {                                                                    \
		for (i = 0; i < (n); i++) {                                     \
			if (__builtin_expect((i & (mask)) == 0, 0)) {           \
				uint64_t t0 = bench_now_ns();                   \
				ret = (CALL);                                   \
				bench_hist_add(&sl->hist, bench_now_ns() - t0); \
			} else {                                                \
				ret = (CALL);                                   \
			}                                                       \
			if (__builtin_expect(ret < 0, 0))                       \
				break;                                          \
		}                                                               \
	} while (0)

static int w_step(struct bench_worker *w, unsigned cmd, unsigned run)
{
	struct wstate *ws = w->state;
	struct bench_slot *sl = w->slot;
	const unsigned len = O.payload;
	const uint64_t mask = SYS[O.sys].sample - 1;
	uint64_t n = O.per_writer, i = 0, off = 0, stride = (len + 7u) & ~7u;
	int ret = 0;

	(void)run;
	if (cmd != CMD_RUN)
		return -EINVAL;
	bench_hist_reset(&sl->hist);
	bench_worker_barrier(w);
	sl->t_start = bench_now_ns();
	switch (O.sys) {
	case SYS_BE:
		LOOP(n, mask, be_write(ws->s, ws->payload, len));
		break;
	case SYS_BE_BATCH:
	case SYS_BE_LOGS:
		n /= BATCH;
		if (O.sys == SYS_BE_BATCH)
			LOOP(n, 0, be_write_batch(ws->s, ws->iov, BATCH));
		else
			LOOP(n, 0, be_write_logs(ws->s, ws->logs, BATCH));
		/* Time every call (a call is 64 records): the sample count stays the same. */
		n *= BATCH;
		i *= BATCH;
		if (ret > 0)
			ret = 0;
		break;
	case SYS_PLAIN:
		LOOP(n, mask, plain_append(ws, ws->payload, len));
		break;
	case SYS_MEMCPY:
		LOOP(n, mask, (memcpy(ws->priv + off, ws->payload, len), off += stride, 0));
		break;
	case SYS_WRITE:
	case SYS_PIPE:
		LOOP(n, mask, write_rec(ws->fd, ws->payload, len));
		break;
	case SYS_UNIX:
		LOOP(n, mask, send_all(ws->fd, ws->payload, len));
		break;
	case SYS_RSYSLOG:
		LOOP(n, mask, send_all(ws->fd, ws->cmd, ws->cmd_len));
		break;
	case SYS_REDIS:
		LOOP(n, mask, redis_one(ws));
		break;
	case SYS_REDIS_P32:
		LOOP(n, mask, redis_pipelined(ws));
		break;
	default:
		return -EINVAL;
	}
	sl->t_end = bench_now_ns();
	sl->ops = i;
	sl->bytes = i * len;
	if (ret < 0) {
		bench_slot_fail(sl, ret, "%s: record %llu: %s", SYS[O.sys].name,
				(unsigned long long)i, strerror(-ret));
		return ret;
	}
	return 0;
}

static const struct bench_team_ops team_ops = { .setup = w_setup, .step = w_step };

/* ------------------------------------------------------------------------- */
/* Readers (unix-dgram, pipe): forked by the parent, killed after the config. */

static struct reader_sh *RSH;

static void reader_main(int in, int is_dgram, const char *file)
{
	int out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	uint8_t *buf = malloc(2 * READER_CHUNK);
	size_t fill = 0;
	uint64_t recs = 0;

	if (out < 0 || !buf)
		_exit(1);
	/* Non-blocking reads: when nothing more is there, what we hold goes to the file. */
	if (fcntl(in, F_SETFL, O_NONBLOCK) < 0)
		_exit(1);
	for (;;) {
		ssize_t n;

		if (is_dgram)
			n = recv(in, buf + fill, 2 * READER_CHUNK - fill, 0);
		else
			n = read(in, buf + fill, READER_CHUNK);
		if (n > 0) {
			fill += (size_t)n;
			recs += is_dgram ? 1 : 0;
			if (fill < READER_CHUNK)
				continue;
		} else if (n == 0 && !is_dgram) {
			_exit(0);
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno != EAGAIN) {
			_exit(1);
		}
		/* A full chunk, or nothing more right now: to the file. */
		if (fill) {
			if (write_rec(out, buf, fill) < 0)
				_exit(1);
			fetch_add_release(&RSH->bytes, fill);
			WRITE_ONCE(RSH->records, recs);
			fill = 0;
			continue;
		}
		{
			struct pollfd pfd = { .fd = in, .events = POLLIN };

			poll(&pfd, 1, -1);
		}
	}
}

/* ------------------------------------------------------------------------- */
/* Servers. */

static pid_t rsyslog_pid = -1, redis_pid = -1;
static char server_dir[256];

static int rsyslog_start(void)
{
	char conf[700], pid[700], log[700];
	char *argv[] = { "rsyslogd", "-n", "-f", conf, "-i", pid, NULL };
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/rsyslog.conf", server_dir);
	snprintf(pid, sizeof(pid), "%s/rsyslogd.pid", server_dir);
	snprintf(log, sizeof(log), "%s/rsyslogd.log", server_dir);
	snprintf(O.rsyslog_out, sizeof(O.rsyslog_out), "%s/rsyslog-out.log", server_dir);
	if ((size_t)snprintf(O.rsyslog_sock, sizeof(O.rsyslog_sock), "%s/rs.sock", server_dir) >=
	    sizeof(O.rsyslog_sock))
		bench_die("%s: too long for a socket path", server_dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f,
		"global(workDirectory=\"%s\" maxMessageSize=\"64k\")\n"
		"module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
		"input(type=\"imuxsock\" Socket=\"%s\" RateLimit.Interval=\"0\" "
		"UseSpecialParser=\"off\" ParseHostname=\"off\")\n"
		"template(name=\"raw\" type=\"string\" string=\"%%rawmsg%%\\n\")\n"
		"action(type=\"omfile\" file=\"%s\" template=\"raw\")\n",
		server_dir, O.rsyslog_sock, O.rsyslog_out);
	fclose(f);
	rsyslog_pid = bench_spawn(argv, log);
	if (rsyslog_pid < 0)
		return -1;
	server_pids[0] = rsyslog_pid;
	if (bench_wait_path(O.rsyslog_sock, rsyslog_pid, 10000) < 0) {
		fprintf(stderr, "bench: rsyslogd did not create %s; its log:\n%s\n", O.rsyslog_sock,
			tu_file_text(log));
		bench_stop_child(rsyslog_pid);
		rsyslog_pid = server_pids[0] = -1;
		return -1;
	}
	fprintf(stderr, "compare: rsyslogd %d on %s -> %s\n", (int)rsyslog_pid, O.rsyslog_sock,
		O.rsyslog_out);
	return 0;
}

static int redis_start(void)
{
	char conf[700], log[700];
	char *argv[] = { "redis-server", conf, NULL };
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/redis.conf", server_dir);
	snprintf(log, sizeof(log), "%s/redis.log", server_dir);
	if ((size_t)snprintf(O.redis_sock, sizeof(O.redis_sock), "%s/redis.sock", server_dir) >=
	    sizeof(O.redis_sock))
		bench_die("%s: too long for a socket path", server_dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f,
		"port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\ndaemonize no\n"
		"pidfile %s/redis.pid\nlogfile %s\nsave \"\"\nappendonly yes\n"
		"appendfsync everysec\nauto-aof-rewrite-percentage 0\n",
		O.redis_sock, server_dir, server_dir, log);
	fclose(f);
	redis_pid = bench_spawn(argv, log);
	if (redis_pid < 0)
		return -1;
	server_pids[1] = redis_pid;
	if (bench_wait_path(O.redis_sock, redis_pid, 10000) < 0) {
		fprintf(stderr, "bench: redis-server did not create %s; its log:\n%s\n", O.redis_sock,
			tu_file_text(log));
		bench_stop_child(redis_pid);
		redis_pid = server_pids[1] = -1;
		return -1;
	}
	fprintf(stderr, "compare: redis-server %d on %s (appendonly, appendfsync everysec)\n",
		(int)redis_pid, O.redis_sock);
	return 0;
}

/* One command from the parent (DEL between configurations). */
static int redis_cmd(const char *cmd)
{
	struct wstate *ws = calloc(1, sizeof(*ws));
	int ret;

	if (!ws)
		return -ENOMEM;
	ws->fd = unix_connect(O.redis_sock, SOCK_STREAM);
	if (ws->fd < 0) {
		ret = ws->fd;
		free(ws);
		return ret;
	}
	ret = xwrite(ws->fd, cmd, strlen(cmd));
	if (!ret)
		ret = redis_replies(ws, 1);
	close(ws->fd);
	free(ws);
	return ret;
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ------------------------------------------------------------------------- */
/* The parent. */

static struct ring_map raw_map, log_map;

static void ring_reset(struct ring_map *m)
{
	uint64_t head = load_acquire(&m->hdr->head);

	store_release(&m->hdr->tail, head);
	store_release(&m->hdr->durable_pos, head);
	store_release(&m->hdr->durable_seq, READ_ONCE(m->hdr->next_seq));
	futex_bump_wake(&m->hdr->space_gen);
}

/* Make the system's sink empty with every writer idle (before each run). */
static void sink_reset(void)
{
	switch (O.sys) {
	case SYS_BE:
	case SYS_BE_BATCH:
		ring_reset(&raw_map);
		break;
	case SYS_BE_LOGS:
		ring_reset(&log_map);
		break;
	case SYS_PLAIN:
		store_release(&O.plain->tail, load_acquire(&O.plain->head));
		break;
	case SYS_WRITE:
		if (truncate(O.file_path, 0) < 0 && errno != ENOENT)
			fprintf(stderr, "bench: truncate %s: %s\n", O.file_path, strerror(errno));
		break;
	default:
		break;
	}
}

/* Wait until the sink holds `target` (bytes or records); returns when, or 0 on timeout. */
static uint64_t wait_sink(uint64_t target)
{
	uint64_t end = bench_now_ns() + 60000000000ull;

	for (;;) {
		uint64_t now = bench_now_ns(), have;
		struct timespec ts = { 0, 100000 };

		switch (O.sys) {
		case SYS_UNIX:
		case SYS_PIPE:
			have = load_acquire(&RSH->bytes);
			break;
		case SYS_RSYSLOG:
			have = file_size(O.rsyslog_out);
			break;
		default:
			return now;
		}
		if (have >= target)
			return now;
		if (now > end) {
			fprintf(stderr, "bench: %s: the sink holds %llu of %llu bytes after 60 s\n",
				SYS[O.sys].name, (unsigned long long)have,
				(unsigned long long)target);
			return 0;
		}
		nanosleep(&ts, NULL);
	}
}

static uint64_t record_bytes(void)
{
	switch (O.sys) {
	case SYS_BE:
	case SYS_BE_BATCH:
	case SYS_PLAIN:
		return rec_size(O.payload);
	case SYS_BE_LOGS:
		return rec_size(O.payload + 64); /* the log codec's fields: a bound, not exact */
	case SYS_MEMCPY:
		return (O.payload + 7u) & ~7u;
	default:
		return O.payload;
	}
}

static int run_config(unsigned nw)
{
	const struct sysdesc *d = &SYS[O.sys];
	unsigned runs = d->mem ? O.runs : O.slow_runs;
	double rate[100], mbs[100], p50[100], p99[100], p999[100], pmax[100], cpu[100];
	uint64_t total = (uint64_t)((double)d->records * O.scale), base = 0, per_sink;
	struct bench_team team;
	struct bench_hist *all = malloc(sizeof(*all));
	pid_t reader = -1;
	int pfd[2] = { -1, -1 }, ret = -1, in = -1;
	char note[600], rfile[700];
	uint64_t samples = 0;

	if (!all)
		return -1;
	if (d->mem && total * record_bytes() > RUN_BYTES_MAX)
		total = RUN_BYTES_MAX / record_bytes();
	O.per_writer = total / nw;
	if (O.sys == SYS_BE_BATCH || O.sys == SYS_BE_LOGS)
		O.per_writer -= O.per_writer % BATCH;
	if (O.sys == SYS_REDIS_P32)
		O.per_writer -= O.per_writer % PIPELINE;
	if (O.per_writer < 64)
		O.per_writer = 64;
	total = O.per_writer * nw;
	per_sink = O.payload + (O.sys == SYS_RSYSLOG ? 5 : 0);   /* "<14>" and the newline */

	fprintf(stderr, "compare: %-18s %u writer%s %4u B: %llu records per run, %u runs\n",
		d->name, nw, nw > 1 ? "s" : " ", O.payload, (unsigned long long)total, runs);

	/* Readers first: the writers connect to them in their setup. */
	if (O.sys == SYS_UNIX || O.sys == SYS_PIPE) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };

		memset(RSH, 0, sizeof(*RSH));
		snprintf(rfile, sizeof(rfile), "%s/reader.out", O.data_dir);
		if (O.sys == SYS_UNIX) {
			in = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			snprintf(a.sun_path, sizeof(a.sun_path), "%s", O.unix_path);
			unlink(O.unix_path);
			if (in < 0 || bind(in, (struct sockaddr *)&a, sizeof(a)) < 0)
				bench_die("unix socket %s: %s", O.unix_path, strerror(errno));
		} else {
			if (pipe2(pfd, O_CLOEXEC) < 0)
				bench_die("pipe: %s", strerror(errno));
			in = pfd[0];
			O.pipe_w = pfd[1];
		}
		fflush(NULL);
		reader = fork();
		if (reader < 0)
			bench_die("fork: %s", strerror(errno));
		if (reader == 0) {
			if (pfd[1] >= 0)
				close(pfd[1]);
			reader_main(in, O.sys == SYS_UNIX, rfile);
		}
		server_pids[2] = reader;
	}

	if (bench_team_start(&team, nw, &team_ops, NULL) < 0)
		goto out;
	cur_team = &team;
	if (pfd[1] >= 0) {
		/* The writers have it; the reader sees EOF when they are gone. */
		close(pfd[1]);
		pfd[1] = -1;
	}

	for (unsigned r = 0; r <= runs; r++) {
		uint64_t ops = 0, start, end, span;

		sink_reset();
		if (O.sys == SYS_UNIX || O.sys == SYS_PIPE)
			base = load_acquire(&RSH->bytes);
		else if (O.sys == SYS_RSYSLOG)
			base = file_size(O.rsyslog_out);
		if (bench_team_step(&team, CMD_RUN, r) < 0)
			goto out;
		for (unsigned i = 0; i < nw; i++)
			ops += team.ctl->slot[i].ops;
		start = UINT64_MAX;
		end = 0;
		for (unsigned i = 0; i < nw; i++) {
			if (team.ctl->slot[i].t_start < start)
				start = team.ctl->slot[i].t_start;
			if (team.ctl->slot[i].t_end > end)
				end = team.ctl->slot[i].t_end;
		}
		if (O.sys == SYS_UNIX || O.sys == SYS_PIPE || O.sys == SYS_RSYSLOG) {
			uint64_t t = wait_sink(base + ops * per_sink);

			if (!t)
				goto out;
			/* When the parent saw it: late by at most one poll (0.1 ms). */
			if (t > end)
				end = t;
		}
		if (r == 0)
			continue;       /* the warm-up */
		span = end - start;
		rate[r - 1] = (double)ops * 1e9 / (double)span;
		mbs[r - 1] = rate[r - 1] * O.payload / 1e6;
		{
			uint64_t c = 0;

			for (unsigned i = 0; i < nw; i++)
				c += team.ctl->slot[i].cpu_ns;
			cpu[r - 1] = ops ? (double)c / (double)ops : 0;
		}
		bench_hist_reset(all);
		for (unsigned i = 0; i < nw; i++)
			bench_hist_merge(all, &team.ctl->slot[i].hist);
		samples = all->count;
		p50[r - 1] = (double)bench_hist_pct(all, 50);
		p99[r - 1] = (double)bench_hist_pct(all, 99);
		p999[r - 1] = (double)bench_hist_pct(all, 99.9);
		pmax[r - 1] = (double)all->max;
		fprintf(stderr, "  run %u: %.3f M records/s, %.1f MB/s; p50 %.0f ns, p99 %.0f ns, "
			"p99.9 %.0f ns, max %.0f ns; writer CPU %.1f ns/record\n", r, rate[r - 1] / 1e6,
			mbs[r - 1], p50[r - 1], p99[r - 1], p999[r - 1], pmax[r - 1], cpu[r - 1]);
	}

	snprintf(note, sizeof(note), "%s; %llu records per run (%s) split over the writer "
		 "processes; writer i pinned to CPU i modulo nproc; 1 warm-up run", d->note,
		 (unsigned long long)((double)d->records * O.scale),
		 d->mem ? "at most 200 MiB of the ring or memory" : "all payloads");
	bench_emit(BENCH, d->name, nw, O.payload, "throughput", "records/s",
		   bench_stat_of(rate, runs), note);
	bench_emit(BENCH, d->name, nw, O.payload, "payload_throughput", "MB/s",
		   bench_stat_of(mbs, runs), "payload bytes only; MB = 10^6 bytes");
	bench_emit(BENCH, d->name, nw, O.payload, "writer_cpu_per_record", "ns",
		   bench_stat_of(cpu, runs),
		   "user + system CPU time of the writer processes (getrusage) per record: what a "
		   "record costs its writer whatever else runs; a server's or reader's CPU is not in it");
	snprintf(note, sizeof(note), "latency of the call: every %u%s call timed in the "
		 "throughput runs; includes ~20 ns of clock_gettime", d->sample,
		 d->sample == 1 ? "st" : "th");
	fprintf(stderr, "  %llu latency samples per run\n", (unsigned long long)samples);
	bench_emit(BENCH, d->name, nw, O.payload, "latency_p50", "ns", bench_stat_of(p50, runs),
		   note);
	bench_emit(BENCH, d->name, nw, O.payload, "latency_p99", "ns", bench_stat_of(p99, runs),
		   note);
	bench_emit(BENCH, d->name, nw, O.payload, "latency_p99.9", "ns",
		   bench_stat_of(p999, runs), note);
	bench_emit(BENCH, d->name, nw, O.payload, "latency_max", "ns", bench_stat_of(pmax, runs),
		   note);
	ret = 0;
out:
	cur_team = NULL;
	bench_team_stop(&team);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (reader > 0) {
		kill(reader, SIGKILL);
		waitpid(reader, NULL, 0);
		server_pids[2] = 0;
		unlink(rfile);
	}
	if (in >= 0)
		close(in);
	if (O.sys == SYS_UNIX)
		unlink(O.unix_path);
	if (O.sys == SYS_REDIS || O.sys == SYS_REDIS_P32)
		redis_cmd("*2\r\n$3\r\nDEL\r\n$5\r\nbench\r\n");
	if (O.sys == SYS_RSYSLOG && ret == 0)
		/* omfile appends (O_APPEND): emptied between configurations, with writers idle. */
		if (truncate(O.rsyslog_out, 0) < 0)
			fprintf(stderr, "bench: truncate %s: %s\n", O.rsyslog_out, strerror(errno));
	if (O.sys == SYS_WRITE)
		unlink(O.file_path);
	free(all);
	return ret;
}

static void make_ring(const char *store, uint32_t type, char *shm, struct ring_map *m)
{
	struct ring_params p = { .store = store, .capacity = RING_BYTES, .store_type = type,
				 .on_full = RING_ON_FULL_BLOCK, .first_seq = 1,
				 .flush_bytes = UINT64_C(1) << 20, .mode = 0600 };
	int ret;

	if (ring_shm_name(shm, RING_SHM_NAME_MAX, O.instance, store))
		bench_die("bad ring name");
	ret = ring_create(O.instance, &p, m);
	if (ret)
		bench_die("ring_create(%s): %s", store, strerror(-ret));
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	int status = 0, have[NSYS];

	parse(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	tu_instance(O.instance, sizeof(O.instance));
	make_ring("bench", BE_TYPE_RAW, O.raw_shm, &raw_map);
	make_ring("benchlog", BE_TYPE_LOG, O.log_shm, &log_map);
	plain_init();
	RSH = mmap(NULL, sizeof(*RSH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (RSH == MAP_FAILED)
		bench_die("mmap: %s", strerror(errno));
	snprintf(O.file_path, sizeof(O.file_path), "%s/oappend.log", O.data_dir);
	/* Socket paths must be short: the servers' and the reader's live under /tmp. */
	tu_tmpdir(server_dir, sizeof(server_dir));
	if ((size_t)snprintf(O.unix_path, sizeof(O.unix_path), "%s/reader.sock", server_dir) >=
	    sizeof(O.unix_path))
		bench_die("%s: too long for a socket path", server_dir);
	fprintf(stderr, "compare: files in %s; servers in %s\n", O.data_dir, server_dir);

	for (int s = 0; s < NSYS; s++)
		have[s] = O.want[s];
	if (have[SYS_RSYSLOG] && rsyslog_start() < 0) {
		fprintf(stderr, "compare: rsyslog left out\n");
		have[SYS_RSYSLOG] = 0;
	}
	if ((have[SYS_REDIS] || have[SYS_REDIS_P32]) && redis_start() < 0) {
		fprintf(stderr, "compare: redis left out\n");
		have[SYS_REDIS] = have[SYS_REDIS_P32] = 0;
	}

	for (unsigned pi = 0; pi < O.npayloads && !status; pi++)
		for (unsigned wi = 0; wi < O.nwriters && !status; wi++)
			for (int s = 0; s < NSYS && !status; s++) {
				if (!have[s])
					continue;
				O.sys = (enum sys)s;
				O.payload = (unsigned)O.payloads[pi];
				if (run_config(O.writers[wi]) < 0)
					status = 1;
			}

	for (int s = 0; s < NSYS; s++)
		if (O.want[s] && !have[s])
			bench_emit(BENCH, SYS[s].name, 0, 0, "not_available", "-",
				   (struct bench_stat){ 0, 0, 0, 0 },
				   "its program is missing or did not start: see the log");
	if (rsyslog_pid > 0)
		bench_stop_child(rsyslog_pid);
	if (redis_pid > 0)
		bench_stop_child(redis_pid);
	fprintf(stderr, "compare: ring bench: lock recoveries %llu, timeouts %llu, doorbells %llu\n",
		(unsigned long long)READ_ONCE(raw_map.hdr->lock_recoveries),
		(unsigned long long)READ_ONCE(raw_map.hdr->lock_timeouts),
		(unsigned long long)READ_ONCE(raw_map.hdr->doorbells));
	ring_unmap(&raw_map);
	ring_unmap(&log_map);
	ring_unlink(O.instance, "bench");
	ring_unlink(O.instance, "benchlog");
	bench_rm_rf(O.data_dir);
	bench_rm_rf(server_dir);
	tu_cleanup_run();
	return status;
}
