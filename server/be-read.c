/*
 * be-read.c - print the records of a store's segments, as text or JSON Lines.
 *
 *	be-read [--json] [--from-seq N] [--verify-only] DIR
 *
 * DIR is <data_dir>/<store>.  Segments are listed with seg_list(), read
 * whole and walked with seg_scan(); only batches that pass their checks
 * are printed.  Damage is reported on stderr as it is met and makes the
 * exit status 2 once everything else is printed.  A torn tail in the last
 * segment is what a live or crashed daemon leaves behind until recovery:
 * a warning only.
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
#include <time.h>
#include <unistd.h>

#include "bufferengine.h"
#include "server/segment.h"
#include "shm/layout.h"

#define PROG "be-read"

/* Exit statuses. */
#define EXIT_OK	    0
#define EXIT_USAGE  1 /* bad arguments, DIR unusable, stdout failed */
#define EXIT_DAMAGE 2 /* a segment is damaged or could not be read */

#define OUT_CAP	  (1u << 20)
#define OUT_CHUNK 4096u /* payload bytes formatted per reservation */

struct out {
	char *buf;
	size_t len;
	int failed; /* a write to stdout failed: stop quietly */
	int failed_errno;
};

struct reader {
	struct out out;
	int json;
	int verify_only;
	uint64_t from_seq;
	const char *path; /* of the segment being read, for messages */
	int damaged;	  /* exit with EXIT_DAMAGE at the end */
	int64_t ts_sec;	  /* the second whose text is in ts_text */
	char ts_text[32]; /* "YYYY-MM-DDTHH:MM:SS" */
	size_t ts_len;
};

static void out_flush(struct out *o)
{
	if (o->len && !o->failed && fwrite(o->buf, 1, o->len, stdout) != o->len) {
		o->failed = 1;
		o->failed_errno = errno;
	}
	o->len = 0;
}

/* out_sync() - everything so far out to stdout, before a message on stderr. */
static void out_sync(struct out *o)
{
	out_flush(o);
	if (!o->failed && fflush(stdout) != 0) {
		o->failed = 1;
		o->failed_errno = errno;
	}
}

/* out_need() - room for n more bytes (n <= OUT_CAP). */
static inline char *out_need(struct out *o, size_t n)
{
	if (OUT_CAP - o->len < n)
		out_flush(o);
	return o->buf + o->len;
}

static inline void out_mem(struct out *o, const char *s, size_t n)
{
	memcpy(out_need(o, n), s, n);
	o->len += n;
}

#define out_lit(o, s) out_mem((o), (s), sizeof(s) - 1)

static inline void out_u64(struct out *o, uint64_t v)
{
	char tmp[20], *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	out_mem(o, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* out_cstr() - bytes as the inside of a C string literal. */
static void out_cstr(struct out *o, const uint8_t *p, size_t n)
{
	static const char oct[] = "01234567";

	while (n > 0) {
		size_t k = n < OUT_CHUNK ? n : OUT_CHUNK;
		char *d = out_need(o, 4 * k), *start = d;

		for (size_t i = 0; i < k; i++) {
			uint8_t c = p[i];

			if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
				*d++ = (char)c;
				continue;
			}
			*d++ = '\\';
			switch (c) {
			case '\\':
				*d++ = '\\';
				break;
			case '"':
				*d++ = '"';
				break;
			case '\n':
				*d++ = 'n';
				break;
			case '\t':
				*d++ = 't';
				break;
			case '\r':
				*d++ = 'r';
				break;
			default:
				/* Always three digits: never merges with a digit that follows. */
				*d++ = oct[c >> 6];
				*d++ = oct[(c >> 3) & 7];
				*d++ = oct[c & 7];
			}
		}
		o->len += (size_t)(d - start);
		p += k;
		n -= k;
	}
}

static void out_base64(struct out *o, const uint8_t *p, size_t n)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	while (n > 0) {
		/* A multiple of 3 per round, so that only the last one pads. */
		size_t k = n < 3 * (OUT_CHUNK / 4) ? n : 3 * (OUT_CHUNK / 4);
		char *d = out_need(o, (k + 2) / 3 * 4), *start = d;
		size_t i;

		for (i = 0; i + 3 <= k; i += 3) {
			uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

			d[0] = b64[v >> 18];
			d[1] = b64[(v >> 12) & 63];
			d[2] = b64[(v >> 6) & 63];
			d[3] = b64[v & 63];
			d += 4;
		}
		if (i < k) {
			uint32_t v = (uint32_t)p[i] << 16;

			if (i + 1 < k)
				v |= (uint32_t)p[i + 1] << 8;
			d[0] = b64[v >> 18];
			d[1] = b64[(v >> 12) & 63];
			d[2] = i + 1 < k ? b64[(v >> 6) & 63] : '=';
			d[3] = '=';
			d += 4;
		}
		o->len += (size_t)(d - start);
		p += k;
		n -= k;
	}
}

/* out_ts() - ts_ns as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ"; the date part is cached per second. */
static void out_ts(struct reader *r, uint64_t ts_ns)
{
	int64_t sec = (int64_t)(ts_ns / 1000000000u);
	uint32_t usec = (uint32_t)(ts_ns % 1000000000u / 1000u);
	char frac[9];

	if (sec != r->ts_sec || !r->ts_len) {
		time_t t = (time_t)sec;
		struct tm tm;

		r->ts_len = 0;
		if (gmtime_r(&t, &tm))
			r->ts_len =
				strftime(r->ts_text, sizeof(r->ts_text), "%Y-%m-%dT%H:%M:%S", &tm);
		if (!r->ts_len)
			r->ts_len =
				(size_t)snprintf(r->ts_text, sizeof(r->ts_text), "@%" PRId64, sec);
		r->ts_sec = sec;
	}
	out_mem(&r->out, r->ts_text, r->ts_len);
	frac[0] = '.';
	for (int i = 6; i >= 1; i--) {
		frac[i] = (char)('0' + usec % 10);
		usec /= 10;
	}
	frac[7] = 'Z';
	out_mem(&r->out, frac, 8);
}

static const char *type_name(uint16_t type)
{
	switch (type) {
	case BE_TYPE_RAW:
		return "raw";
	case BE_TYPE_METRIC:
		return "metric";
	case BE_TYPE_LOG:
		return "log";
	case BE_TYPE_PROCESS:
		return "process";
	}
	return "unknown"; /* seg_batch_check() lets no other type through */
}

static void print_record(struct reader *r, const struct rec_hdr *h, const uint8_t *payload)
{
	struct out *o = &r->out;
	const char *type = type_name(h->type);

	if (r->json) {
		out_lit(o, "{\"seq\":");
		out_u64(o, h->seq);
		out_lit(o, ",\"ts\":\"");
		out_ts(r, h->ts_ns);
		out_lit(o, "\",\"ts_ns\":");
		out_u64(o, h->ts_ns);
		out_lit(o, ",\"pid\":");
		out_u64(o, h->pid);
		out_lit(o, ",\"type\":\"");
		out_mem(o, type, strlen(type));
		out_lit(o, "\",\"data\":\"");
		out_base64(o, payload, h->len);
		out_lit(o, "\"}\n");
	} else {
		out_lit(o, "seq=");
		out_u64(o, h->seq);
		out_lit(o, " ts=");
		out_ts(r, h->ts_ns);
		out_lit(o, " pid=");
		out_u64(o, h->pid);
		out_lit(o, " type=");
		out_mem(o, type, strlen(type));
		out_lit(o, " len=");
		out_u64(o, h->len);
		out_lit(o, " data=\"");
		out_cstr(o, payload, h->len);
		out_lit(o, "\"\n");
	}
}

/* on_batch() - seg_scan() callback: print the batch's records. */
static int on_batch(const struct seg_batch_ref *b, void *arg)
{
	struct reader *r = arg;
	const uint8_t *p = b->records, *end = b->records + b->hdr->length;

	if (r->verify_only || b->hdr->last_seq < r->from_seq)
		return 0;
	/* seg_batch_check() has walked these records: every length fits. */
	while (p < end) {
		struct rec_hdr h;

		memcpy(&h, p, sizeof(h));
		if (h.seq >= r->from_seq)
			print_record(r, &h, p + sizeof(h));
		p += rec_size(h.len);
	}
	return r->out.failed ? -EPIPE : 0;
}

/* on_bad() - seg_scan() callback: a damaged region that a valid batch follows. */
static void on_bad(uint64_t offset, uint64_t len, void *arg)
{
	struct reader *r = arg;

	/* What is printed so far goes out first, so the message lands near its place. */
	out_sync(&r->out);
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
	if (ret == -EPIPE && r->out.failed)
		return ret;
	if (ret)
		goto err_report;

	if (res.torn_bytes) {
		out_sync(&r->out);
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
		struct out *o = &r->out;

		out_mem(o, r->path, strlen(r->path));
		out_lit(o, ": batches=");
		out_u64(o, res.batches);
		out_lit(o, " records=");
		out_u64(o, res.records);
		out_lit(o, " first_seq=");
		out_u64(o, res.first_seq);
		out_lit(o, " last_seq=");
		out_u64(o, res.last_seq);
		out_lit(o, " corrupt=");
		out_u64(o, res.corrupt);
		out_lit(o, " torn_bytes=");
		out_u64(o, res.torn_bytes);
		out_lit(o, " size=");
		out_u64(o, res.file_size);
		out_lit(o, "\n");
	}
	return r->out.failed ? -EPIPE : 0;

err_report:
	out_sync(&r->out);
	if (ret == -ENOENT) {
		/* Listed, then removed: retention runs while we read.  Not damage. */
		fprintf(stderr, PROG ": %s: removed while reading, skipped\n", r->path);
		return r->out.failed ? -EPIPE : 0;
	}
	if (ret == -EBADMSG)
		fprintf(stderr, PROG ": %s: bad segment file header\n", r->path);
	else if (ret == -EPROTO)
		fprintf(stderr, PROG ": %s: segment of another format version\n", r->path);
	else
		fprintf(stderr, PROG ": %s: %s\n", r->path, strerror(-ret));
	r->damaged = 1;
	return r->out.failed ? -EPIPE : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: " PROG " [--json] [--from-seq N] [--verify-only] DIR\n"
		   "Print the records of a store's segments, DIR = <data_dir>/<store>.\n"
		   "\n"
		   "  --json          JSON Lines: seq, ts, ts_ns, pid, type, data (base64)\n"
		   "  --from-seq N    only records with seq >= N\n"
		   "  --verify-only   check every batch; print one summary line a segment\n"
		   "  -h, --help      this text\n"
		   "  -V, --version   the version\n"
		   "\n"
		   "Exit status: 0 all read (a torn tail in the last segment is a warning),\n"
		   "1 bad arguments, DIR unusable or output failed, 2 a segment is damaged\n"
		   "or unreadable (everything else is still printed).\n");
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

enum { OPT_JSON = 256, OPT_FROM_SEQ, OPT_VERIFY_ONLY };

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "from-seq", required_argument, NULL, OPT_FROM_SEQ },
		{ "verify-only", no_argument, NULL, OPT_VERIFY_ONLY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct reader r = { .ts_sec = -1 };
	char path[4096];
	const char *dir;
	uint64_t *segs = NULL;
	int dirfd, nseg, c, status = EXIT_OK;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			r.json = 1;
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
	r.out.buf = malloc(OUT_CAP);
	if (!r.out.buf) {
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
	out_sync(&r.out);
	if (r.out.failed) {
		if (r.out.failed_errno != EPIPE)
			fprintf(stderr, PROG ": writing output: %s\n",
				strerror(r.out.failed_errno));
		status = EXIT_USAGE;
	} else if (r.damaged) {
		status = EXIT_DAMAGE;
	}

	free(r.out.buf);
out_free:
	free(segs);
out_close:
	close(dirfd);
	return status;
}
