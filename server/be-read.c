/*
 * be-read.c - print the records of a store's segments, as text or JSON Lines.
 *
 *	be-read [--json] [--from-seq N] [--group] [--verify-only] DIR
 *
 * DIR is <data_dir>/<store>.  Segments are listed with seg_list(), read
 * whole and walked with seg_scan(); only batches that pass their checks
 * are printed.  Damage is reported on stderr as it is met and makes the
 * exit status 2 once everything else is printed.  A torn tail in the last
 * segment is what a live or crashed daemon leaves behind until recovery:
 * a warning only.
 *
 * Records are decoded and formatted by server/recfmt.c (the output is
 * described there), the same as shm-dump --records.  A payload that does
 * not decode is printed with "error" and its bytes, counted, and makes the
 * exit status 2 too.  With --group, the process records of one snapshot
 * are held back and printed as one line (see group_record()).
 *
 * Output is formatted by hand into one large buffer handed to stdio in big
 * pieces: printf per field would cost more than the scan itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/recfmt.h"
#include "server/segment.h"
#include "shm/codec.h"
#include "shm/layout.h"

#define PROG "be-read"

/* Exit statuses. */
#define EXIT_OK	    0
#define EXIT_USAGE  1 /* bad arguments, DIR unusable, stdout failed */
#define EXIT_DAMAGE 2 /* a segment is damaged or could not be read */

#define OUT_FLUSH (1u << 20)		    /* hand the output to stdio at this size */
#define OUT_CAP	  (OUT_FLUSH + (64u << 10)) /* what the buffer starts with */

/* --group: bounds on what is held back. */
#define GROUP_OPEN_MAX	64	    /* snapshots open at once: then the oldest goes out */
#define GROUP_BYTES_MAX (64u << 20) /* record bytes held at once: the same */

/* One snapshot being put back together: copies of its records (header + payload). */
struct group {
	int used;
	uint32_t pid; /* the writer's */
	uint64_t snapshot_id;
	uint64_t opened; /* when, in snapshots opened: the oldest goes out first */
	uint8_t *buf;	 /* records at rec_size() steps, 8-aligned */
	size_t len, cap, n;
};

struct reader {
	struct recfmt fmt; /* the output, drained at OUT_FLUSH */
	int failed;	   /* a write to stdout failed: stop quietly */
	int failed_errno;
	int oom; /* out of memory while formatting: stop */
	int verify_only;
	int group;
	uint64_t from_seq;
	const char *path;     /* of the segment being read, for messages */
	int damaged;	      /* exit with EXIT_DAMAGED at the end */
	uint64_t undecodable; /* records whose payload did not decode */
	uint64_t newer;	      /* of which written in a newer payload format */
	uint64_t first_bad_seq;
	char first_bad[160]; /* why the first of them did not decode */

	struct group groups[GROUP_OPEN_MAX];
	size_t group_bytes;	       /* held in all groups */
	uint64_t group_clock;	       /* snapshots opened so far */
	const struct rec_hdr **g_hdrs; /* scratch for recfmt_snapshot() */
	const void **g_payloads;
	size_t g_cap;
};

static void out_flush(struct reader *r)
{
	struct recfmt_buf *b = &r->fmt.out;

	if (b->len && !r->failed && fwrite(b->p, 1, b->len, stdout) != b->len) {
		r->failed = 1;
		r->failed_errno = errno;
	}
	b->len = 0;
}

/* out_sync() - everything so far out to stdout, before a message on stderr. */
static void out_sync(struct reader *r)
{
	out_flush(r);
	if (!r->failed && fflush(stdout) != 0) {
		r->failed = 1;
		r->failed_errno = errno;
	}
}

static inline void out_maybe_flush(struct reader *r)
{
	if (r->fmt.out.len >= OUT_FLUSH)
		out_flush(r);
}

static void print_record(struct reader *r, const struct rec_hdr *h, const uint8_t *payload)
{
	int ret = recfmt_record(&r->fmt, h, payload);

	if (ret == -ENOMEM) {
		r->oom = 1;
		return;
	}
	if (ret < 0) {
		/* Printed with "error" and its bytes; counted, told at the end. */
		if (!r->undecodable++) {
			r->first_bad_seq = h->seq;
			recfmt_error_text(&r->fmt, ret, h->type, payload, h->len, r->first_bad,
					  sizeof(r->first_bad));
		}
		if (ret == -EPROTO)
			r->newer++;
	}
	out_maybe_flush(r);
}

/* ------------------------------------------------------------------------
 * --group: the process records of one snapshot on one line.
 */

/* group_flush() - print a group (one line, or one record at a time) and empty it. */
static void group_flush(struct reader *r, struct group *g)
{
	size_t off = 0;
	int ret;

	if (!g->used)
		return;
	if (g->n > r->g_cap) {
		size_t cap = g->n * 2;
		const struct rec_hdr **h = realloc(r->g_hdrs, cap * sizeof(*h));
		const void **p;

		if (h)
			r->g_hdrs = h;
		p = h ? realloc(r->g_payloads, cap * sizeof(*p)) : NULL;
		if (p)
			r->g_payloads = p;
		if (h && p)
			r->g_cap = cap;
	}
	ret = -ENOMEM;
	if (g->n <= r->g_cap) {
		for (size_t i = 0; i < g->n; i++) {
			const struct rec_hdr *h = (const struct rec_hdr *)(void *)(g->buf + off);

			r->g_hdrs[i] = h;
			r->g_payloads[i] = h + 1;
			off += rec_size(h->len);
		}
		ret = recfmt_snapshot(&r->fmt, r->g_hdrs, r->g_payloads, g->n);
	}
	if (ret < 0) {
		/* Each checked as a process before it joined: only memory can fail here. */
		off = 0;
		for (size_t i = 0; i < g->n && !r->oom; i++) {
			const struct rec_hdr *h = (const struct rec_hdr *)(void *)(g->buf + off);

			print_record(r, h, (const uint8_t *)(h + 1));
			off += rec_size(h->len);
		}
	}
	r->group_bytes -= g->len;
	g->used = 0;
	g->len = g->n = 0;
	if (g->cap > OUT_FLUSH) {
		free(g->buf);
		g->buf = NULL;
		g->cap = 0;
	}
	out_maybe_flush(r);
}

static struct group *group_oldest(struct reader *r)
{
	struct group *old = NULL;

	for (size_t i = 0; i < GROUP_OPEN_MAX; i++)
		if (r->groups[i].used && (!old || r->groups[i].opened < old->opened))
			old = &r->groups[i];
	return old;
}

/* group_flush_all() - at the end: every open snapshot, oldest first. */
static void group_flush_all(struct reader *r)
{
	struct group *g;

	while ((g = group_oldest(r)) && !r->failed && !r->oom)
		group_flush(r, g);
}

static void group_free(struct reader *r)
{
	for (size_t i = 0; i < GROUP_OPEN_MAX; i++)
		free(r->groups[i].buf);
	free(r->g_hdrs);
	free(r->g_payloads);
}

/*
 * group_record() - a process record under --group: held with the others of
 * its snapshot until that writer starts another snapshot, the limits are
 * reached, or the end.  One that does not decode is printed at once.
 */
static void group_record(struct reader *r, const struct rec_hdr *h, const uint8_t *payload)
{
	struct codec_process p;
	struct group *g = NULL, *free_slot = NULL;
	size_t size = rec_size(h->len);

	if (codec_decode_process(payload, h->len, &p) < 0) {
		print_record(r, h, payload);
		return;
	}
	for (size_t i = 0; i < GROUP_OPEN_MAX; i++) {
		if (!r->groups[i].used) {
			if (!free_slot)
				free_slot = &r->groups[i];
		} else if (r->groups[i].pid == h->pid) {
			g = &r->groups[i];
			break;
		}
	}
	if (g && g->snapshot_id != p.snapshot_id) {
		/* Records of a snapshot are consecutive for one writer: that one is done. */
		group_flush(r, g);
		free_slot = g;
		g = NULL;
	}
	if (!g) {
		if (!free_slot) {
			free_slot = group_oldest(r);
			group_flush(r, free_slot);
		}
		g = free_slot;
		g->used = 1;
		g->pid = h->pid;
		g->snapshot_id = p.snapshot_id;
		g->opened = r->group_clock++;
	}
	if (g->cap - g->len < size) {
		size_t cap = g->cap ? g->cap : 4096;
		uint8_t *nb;

		while (cap - g->len < size)
			cap *= 2;
		nb = realloc(g->buf, cap);
		if (!nb) {
			/* Out of memory: what is held goes out, this record alone. */
			group_flush(r, g);
			print_record(r, h, payload);
			return;
		}
		g->buf = nb;
		g->cap = cap;
	}
	memcpy(g->buf + g->len, h, sizeof(*h));
	memcpy(g->buf + g->len + sizeof(*h), payload, h->len);
	/* The padding too, so that every byte held is defined. */
	memset(g->buf + g->len + sizeof(*h) + h->len, 0, size - sizeof(*h) - h->len);
	g->len += size;
	g->n++;
	r->group_bytes += size;
	while (r->group_bytes > GROUP_BYTES_MAX)
		group_flush(r, group_oldest(r));
}

/* on_batch() - seg_scan() callback: print the batch's records. */
static int on_batch(const struct seg_batch_ref *b, void *arg)
{
	struct reader *r = arg;
	const uint8_t *p = b->records, *end = b->records + b->hdr->length;

	if (r->verify_only || b->hdr->last_seq < r->from_seq)
		return 0;
	/* seg_batch_check() has walked these records: every length fits. */
	while (p < end && !r->oom) {
		struct rec_hdr h;

		memcpy(&h, p, sizeof(h));
		if (h.seq >= r->from_seq) {
			if (r->group && h.type == BE_TYPE_PROCESS)
				group_record(r, &h, p + sizeof(h));
			else
				print_record(r, &h, p + sizeof(h));
		}
		p += rec_size(h.len);
	}
	return r->failed || r->oom ? -EPIPE : 0;
}

/* on_bad() - seg_scan() callback: a damaged region that a valid batch follows. */
static void on_bad(uint64_t offset, uint64_t len, void *arg)
{
	struct reader *r = arg;

	/* What is printed so far goes out first, so the message lands near its place. */
	out_sync(r);
	fprintf(stderr,
		PROG ": %s: corrupt batch at offset %" PRIu64 " (%" PRIu64 " bytes skipped)\n",
		r->path, offset, len);
	r->damaged = 1;
}

/*
 * read_segment() - scan and print one segment.  Returns 0, or -EPIPE when
 * stdout failed (everything else is reported here and counted as damage).
 */
static int read_segment(struct reader *r, int dirfd, uint64_t first_seq, int last)
{
	char name[SEG_NAME_LEN + 1];
	struct seg_scan_result res;
	int fd, ret;

	seg_name(name, first_seq);
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto err_report;
	}
	ret = seg_scan(fd, &res, on_batch, on_bad, r);
	close(fd);
	if (ret == -EPIPE && (r->failed || r->oom))
		return ret;
	if (ret)
		goto err_report;

	if (res.torn_bytes) {
		out_sync(r);
		if (last) {
			fprintf(stderr,
				PROG ": %s: torn tail of %" PRIu64 " bytes at offset %" PRIu64
				     " (not yet recovered)\n",
				r->path, res.torn_bytes, res.valid_end);
		} else {
			fprintf(stderr,
				PROG ": %s: damaged tail of %" PRIu64 " bytes at offset %" PRIu64
				     " (not the last segment)\n",
				r->path, res.torn_bytes, res.valid_end);
			r->damaged = 1;
		}
	}
	if (r->verify_only) {
		struct recfmt_buf *o = &r->fmt.out;

		recfmt_mem(o, r->path, strlen(r->path));
		recfmt_lit(o, ": batches=");
		recfmt_u64(o, res.batches);
		recfmt_lit(o, " records=");
		recfmt_u64(o, res.records);
		recfmt_lit(o, " first_seq=");
		recfmt_u64(o, res.first_seq);
		recfmt_lit(o, " last_seq=");
		recfmt_u64(o, res.last_seq);
		recfmt_lit(o, " corrupt=");
		recfmt_u64(o, res.corrupt);
		recfmt_lit(o, " torn_bytes=");
		recfmt_u64(o, res.torn_bytes);
		recfmt_lit(o, " size=");
		recfmt_u64(o, res.file_size);
		recfmt_lit(o, "\n");
	}
	return r->failed || r->oom ? -EPIPE : 0;

err_report:
	out_sync(r);
	if (ret == -ENOENT) {
		/* Listed, then removed: retention runs while we read.  Not damage. */
		fprintf(stderr, PROG ": %s: removed while reading, skipped\n", r->path);
		return r->failed || r->oom ? -EPIPE : 0;
	}
	if (ret == -EBADMSG)
		fprintf(stderr, PROG ": %s: bad segment file header\n", r->path);
	else if (ret == -EPROTO)
		fprintf(stderr, PROG ": %s: segment of another format version\n", r->path);
	else
		fprintf(stderr, PROG ": %s: %s\n", r->path, strerror(-ret));
	r->damaged = 1;
	return r->failed || r->oom ? -EPIPE : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [--json] [--from-seq N] [--group] [--verify-only] DIR\n"
		"Print the records of a store's segments, DIR = <data_dir>/<store>.\n"
		"\n"
		"  --json          JSON Lines: seq, ts, ts_ns, pid, type, then the decoded\n"
		"                  fields of metric, log and process records, or \"data\"\n"
		"                  (base64) for raw ones\n"
		"  --from-seq N    only records with seq >= N\n"
		"  --group         one line per process snapshot (its processes as an array\n"
		"                  in JSON, indented lines in text); a snapshot is printed\n"
		"                  when its writer starts the next one, so lines are no\n"
		"                  longer in seq order (at most %u snapshots or %u MiB\n"
		"                  are held: then the oldest is printed, maybe in parts)\n"
		"  --verify-only   check every batch; print one summary line a segment\n"
		"  -h, --help      this text\n"
		"  -V, --version   the version\n"
		"\n"
		"A payload that does not decode (damaged, or of a newer format) is printed\n"
		"with \"error\" and its bytes, and counts as damage.\n"
		"\n"
		"Exit status: 0 all read (a torn tail in the last segment is a warning),\n"
		"1 bad arguments, DIR unusable or output failed, 2 a segment is damaged\n"
		"or unreadable, or a payload did not decode (everything else is still\n"
		"printed).\n",
		GROUP_OPEN_MAX, GROUP_BYTES_MAX >> 20);
}

/* parse_u64() - a plain decimal number, nothing before or after it. */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

enum { OPT_JSON = 256, OPT_FROM_SEQ, OPT_VERIFY_ONLY, OPT_GROUP };

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "from-seq", required_argument, NULL, OPT_FROM_SEQ },
		{ "verify-only", no_argument, NULL, OPT_VERIFY_ONLY },
		{ "group", no_argument, NULL, OPT_GROUP },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct reader r = { 0 };
	char path[4096];
	const char *dir;
	uint64_t *segs = NULL;
	int dirfd, nseg, c, json = 0, status = EXIT_OK;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			json = 1;
			break;
		case OPT_GROUP:
			r.group = 1;
			break;
		case OPT_FROM_SEQ:
			if (parse_u64(optarg, &r.from_seq) < 0) {
				fprintf(stderr, PROG ": --from-seq: not a sequence number: '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_VERIFY_ONLY:
			r.verify_only = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf(PROG " " BE_VERSION_STRING "\n");
			return EXIT_OK;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs an argument (see --help)\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		default:
			if (optopt > 0 && optopt < 256)
				fprintf(stderr, PROG ": unknown option '-%c' (see --help)\n",
					optopt);
			else if (strchr(argv[optind - 1], '='))
				fprintf(stderr,
					PROG ": option '%s' takes no argument (see --help)\n",
					argv[optind - 1]);
			else
				fprintf(stderr, PROG ": unknown option '%s' (see --help)\n",
					argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, PROG ": %s (see --help)\n",
			argc - optind < 1 ? "missing DIR" : "exactly one DIR expected");
		return EXIT_USAGE;
	}
	dir = argv[optind];

	/* A closed pipe is a write error to act on, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);

	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
		return EXIT_USAGE;
	}
	nseg = seg_list(dirfd, &segs);
	if (nseg < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(-nseg));
		status = EXIT_USAGE;
		goto out_close;
	}
	if (recfmt_init(&r.fmt, json, PROG, OUT_CAP) < 0) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		status = EXIT_USAGE;
		goto out_free;
	}

	for (int i = 0; i < nseg; i++) {
		char name[SEG_NAME_LEN + 1];
		size_t dl = strlen(dir);

		seg_name(name, segs[i]);
		snprintf(path, sizeof(path), "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/",
			 name);
		r.path = path;
		if (read_segment(&r, dirfd, segs[i], i == nseg - 1) < 0)
			break;
	}
	if (r.group)
		group_flush_all(&r);
	out_sync(&r);
	if (r.failed || r.oom) {
		if (r.oom)
			fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		else if (r.failed_errno != EPIPE)
			fprintf(stderr, PROG ": writing output: %s\n", strerror(r.failed_errno));
		status = EXIT_USAGE;
	} else {
		if (r.undecodable) {
			fprintf(stderr,
				PROG ": %s: %" PRIu64 " record%s could not be decoded (printed with"
				     " \"error\" and the payload's bytes); the first, seq %" PRIu64
				     ": %s\n",
				dir, r.undecodable, r.undecodable == 1 ? "" : "s", r.first_bad_seq,
				r.first_bad);
			if (r.newer)
				fprintf(stderr,
					PROG ": %" PRIu64 " of them in a newer payload format: "
					     "read them with a newer be-read\n",
					r.newer);
			r.damaged = 1;
		}
		if (r.damaged)
			status = EXIT_DAMAGE;
	}

	group_free(&r);
	recfmt_free(&r.fmt);
out_free:
	free(segs);
out_close:
	close(dirfd);
	return status;
}
