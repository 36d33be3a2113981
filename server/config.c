/*
 * config.c - bufferengined's configuration: the INI file of DESIGN.md read
 * with inih into struct config, every value checked.  See config.h.
 *
 * inih splits "key = value" lines and strips inline comments; the rest is
 * here.  inih as Debian builds it neither passes a line number to the
 * handler nor reports a section that has no keys, so the text reaches inih
 * through our own line reader, cfg_reader(): it counts the lines, takes the
 * [section] headers itself (inih only sees a blank line for them), strips
 * indentation (so inih never treats a line as a continuation), refuses a
 * key line longer than inih's buffer, and notices a line inih rejected.
 * cfg_handler() checks each key against a table for its section.  A store is
 * checked as a whole (type given, flush_bytes <= capacity) when its section
 * ends, the engine's derived default (data_dir) once all the text is read.
 *
 * The first error stops the parse and leaves one line in errbuf,
 * "FILE:LINE: key 'K': what is wrong" (or "section 'S': ..."); the caller
 * gets -EINVAL and a zeroed struct config.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "server/config.h"
#include "shm/ring.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

/* config_load() refuses larger files. */
#define CFG_FILE_MAX (1u << 20)
/* The longest flush_interval and shutdown_flush_timeout: 1 h. */
#define CFG_DURATION_MAX_MS (UINT64_C(3600) * 1000)
#define CFG_RETAIN_AGE_MAX_MS (UINT64_C(3650) * 86400 * 1000) /* ten years */
#define CFG_DATA_DIR_PREFIX "/var/lib/bufferengine/"
/* ring_mode must let the daemon (the owner) read and write its rings. */
#define CFG_MODE_OWNER_RW 0600u

/* The daemon hands these to ring_create() as they are. */
_Static_assert(CFG_ON_FULL_BLOCK == RING_ON_FULL_BLOCK, "on_full values");
_Static_assert(CFG_ON_FULL_DROP == RING_ON_FULL_DROP, "on_full values");
/* set_field() writes every non-uint64_t number field as 4 bytes. */
_Static_assert(sizeof(int) == sizeof(uint32_t) && sizeof(unsigned) == sizeof(uint32_t),
	       "int fields are 32-bit");

const char config_builtin[] =
	"; bufferengined's built-in configuration (no -c): the demo's stores,\n"
	"; segments under ./be-data in the working directory.\n"
	"[engine]\n"
	"data_dir = ./be-data\n"
	"max_workers = 4\n"
	"shutdown_flush_timeout = 10s\n"
	"\n"
	"[store demo]\n"
	"type = raw\n"
	"capacity = 1M\n"
	"flush_bytes = 64K\n"
	"flush_interval = 200ms\n"
	"\n"
	"[store logs]\n"
	"type = log\n"
	"capacity = 4M\n"
	"flush_interval = 500ms\n"
	"\n"
	"[store metrics]\n"
	"type = metric\n"
	"capacity = 4M\n"
	"flush_interval = 1s\n"
	"\n"
	"[store processes]\n"
	"type = process\n"
	"capacity = 8M\n"
	"flush_interval = 2s\n";

/* ---------------------------------------------------------------------------
 * Numbers.  The *_r parsers return 0, -EINVAL (not a number of that kind) or
 * -ERANGE (too large for 64 bits), and leave *out alone on failure.
 */

/*
 * Read the decimal digits at *sp into *out and move *sp past them.
 * Returns 0, -EINVAL (no digit: *sp unchanged) or -ERANGE (the digits
 * overflow; *sp still moves past all of them so that the caller can tell
 * trailing junk, which wins, from a number that is merely too large).
 */
static int parse_digits(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	bool big = false;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	*sp = s;
	*out = v;
	return big ? -ERANGE : 0;
}

/* "64M", "4k", "1KiB", "512B", "4096": K/M/G are powers of 1024. */
static int parse_size_r(const char *s, uint64_t *out)
{
	unsigned shift = 0;
	uint64_t v;
	int ret;

	ret = parse_digits(&s, &v);
	if (ret == -EINVAL)
		return ret;
	if (*s == 'k' || *s == 'K')
		shift = 10;
	else if (*s == 'm' || *s == 'M')
		shift = 20;
	else if (*s == 'g' || *s == 'G')
		shift = 30;
	if (shift)
		s++;
	if (shift && (s[0] == 'i' || s[0] == 'I') && (s[1] == 'b' || s[1] == 'B'))
		s += 2;
	else if (*s == 'b' || *s == 'B')
		s++;
	if (*s)
		return -EINVAL;
	if (ret)
		return ret;
	if (v > UINT64_MAX >> shift)
		return -ERANGE;
	*out = v << shift;
	return 0;
}

/* "250ms", "250", "2s", "5m" (minutes): milliseconds. */
static int parse_duration_r(const char *s, uint64_t *out)
{
	uint64_t v, mult;
	int ret;

	ret = parse_digits(&s, &v);
	if (ret == -EINVAL)
		return ret;
	if (!*s || !strcasecmp(s, "ms"))
		mult = 1;
	else if (!strcasecmp(s, "s"))
		mult = 1000;
	else if (!strcasecmp(s, "m"))
		mult = UINT64_C(60) * 1000;
	else if (!strcasecmp(s, "h"))
		mult = UINT64_C(3600) * 1000;
	else if (!strcasecmp(s, "d"))
		mult = UINT64_C(86400) * 1000;
	else
		return -EINVAL;
	if (ret)
		return ret;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

/* A plain decimal number, no suffix. */
static int parse_uint_r(const char *s, uint64_t *out)
{
	uint64_t v;
	int ret;

	ret = parse_digits(&s, &v);
	if (ret == -EINVAL || *s)
		return -EINVAL;
	if (ret)
		return ret;
	*out = v;
	return 0;
}

/* Octal digits only ("0660", "660"); -ERANGE above 07777. */
static int parse_octal_r(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	bool big = false;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -EINVAL;
		v = v * 8 + (uint64_t)(*s - '0');
		if (v > 07777) {
			big = true;
			v = 07777;
		}
	}
	if (big)
		return -ERANGE;
	*out = v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
	if (!s || !out)
		return -EINVAL;
	return parse_size_r(s, out) ? -EINVAL : 0;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
	if (!s || !out)
		return -EINVAL;
	return parse_duration_r(s, out) ? -EINVAL : 0;
}

/* A size for messages, in the unit a user would write: "64M", "4K", "1000". */
static const char *fmt_size(char *buf, size_t len, uint64_t v)
{
	if (v && !(v % GiB))
		snprintf(buf, len, "%" PRIu64 "G", v / GiB);
	else if (v && !(v % MiB))
		snprintf(buf, len, "%" PRIu64 "M", v / MiB);
	else if (v && !(v % KiB))
		snprintf(buf, len, "%" PRIu64 "K", v / KiB);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

/* A duration for messages: "1ms", "2s", "60m". */
static const char *fmt_duration(char *buf, size_t len, uint64_t ms)
{
	if (ms && !(ms % 60000))
		snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
	else if (ms && !(ms % 1000))
		snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
	else
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	return buf;
}

/* ---------------------------------------------------------------------------
 * The keys of each section.
 */

enum val_kind {
	VAL_NAME,     /* [A-Za-z0-9_-]{1,63}, into a char array */
	VAL_PATH,     /* any text that fits the char array */
	VAL_UINT,     /* a plain decimal number */
	VAL_SIZE,     /* config_parse_size() */
	VAL_POW2,     /* a size that is a power of two */
	VAL_DURATION, /* config_parse_duration_ms() */
	VAL_MODE,     /* octal permission bits, with the owner's rw */
	VAL_ENUM,     /* one of the words */
	VAL_GROUP,    /* a group name or a numeric gid: cfg_engine's group fields */
};

struct enum_word {
	const char *word;
	int value;
};

struct key_def {
	const char *name;
	enum val_kind kind;
	size_t off;		       /* the field in its struct ... */
	size_t size;		       /* ... and its size */
	uint64_t min, max;	       /* numbers: the range, both included */
	const struct enum_word *words; /* VAL_ENUM: ends with a NULL word */
	const char *hint;	       /* VAL_ENUM: the words, for messages */
};

#define FIELD(type, f) offsetof(struct type, f), sizeof(((struct type *)0)->f)

static const struct enum_word type_words[] = {
	{ "metric", BE_TYPE_METRIC },
	{ "log", BE_TYPE_LOG },
	{ "process", BE_TYPE_PROCESS },
	{ "raw", BE_TYPE_RAW },
	{ NULL, 0 },
};

static const struct enum_word on_full_words[] = {
	{ "block", CFG_ON_FULL_BLOCK },
	{ "drop", CFG_ON_FULL_DROP },
	{ NULL, 0 },
};

static const struct enum_word sync_words[] = {
	{ "batch", CFG_SYNC_BATCH },
	{ "none", CFG_SYNC_NONE },
	{ NULL, 0 },
};

static const struct key_def engine_keys[] = {
	{ "instance", VAL_NAME, FIELD(cfg_engine, instance), 0, 0, NULL, NULL },
	{ "data_dir", VAL_PATH, FIELD(cfg_engine, data_dir), 0, 0, NULL, NULL },
	{ "max_workers", VAL_UINT, FIELD(cfg_engine, max_workers), 1, 256, NULL, NULL },
	{ "shutdown_flush_timeout", VAL_DURATION, FIELD(cfg_engine, shutdown_flush_timeout_ms), 0,
	  CFG_DURATION_MAX_MS, NULL, NULL },
	{ "batch_bytes", VAL_SIZE, FIELD(cfg_engine, batch_bytes), 64 * KiB, 64 * MiB, NULL, NULL },
	{ "ring_mode", VAL_MODE, FIELD(cfg_engine, ring_mode), 0, 0777, NULL, NULL },
	{ "group", VAL_GROUP, FIELD(cfg_engine, group), 0, 0, NULL, NULL },
};

/* Indices of the store keys finish_store() looks at. */
enum {
	SK_TYPE,
	SK_CAPACITY,
	SK_FLUSH_BYTES,
	SK_FLUSH_INTERVAL,
	SK_ON_FULL,
	SK_SYNC,
	SK_SEGMENT_BYTES,
	SK_RETAIN_BYTES,
	SK_RETAIN_AGE,
	SK_COUNT
};

static const struct key_def store_keys[SK_COUNT] = {
	[SK_TYPE] = { "type", VAL_ENUM, FIELD(cfg_store, type), 0, 0, type_words,
		      "metric, log, process or raw" },
	[SK_CAPACITY] = { "capacity", VAL_POW2, FIELD(cfg_store, capacity), RING_CAP_MIN,
			  RING_CAP_MAX, NULL, NULL },
	[SK_FLUSH_BYTES] = { "flush_bytes", VAL_SIZE, FIELD(cfg_store, flush_bytes), 1,
			     RING_CAP_MAX, NULL, NULL },
	[SK_FLUSH_INTERVAL] = { "flush_interval", VAL_DURATION, FIELD(cfg_store, flush_interval_ms),
				1, CFG_DURATION_MAX_MS, NULL, NULL },
	[SK_ON_FULL] = { "on_full", VAL_ENUM, FIELD(cfg_store, on_full), 0, 0, on_full_words,
			 "block or drop" },
	[SK_SYNC] = { "sync", VAL_ENUM, FIELD(cfg_store, sync), 0, 0, sync_words, "batch or none" },
	[SK_SEGMENT_BYTES] = { "segment_bytes", VAL_SIZE, FIELD(cfg_store, segment_bytes), 64 * KiB,
			       TiB, NULL, NULL },
	[SK_RETAIN_BYTES] = { "retain_bytes", VAL_SIZE, FIELD(cfg_store, retain_bytes), 0,
			      UINT64_MAX, NULL, NULL },
	[SK_RETAIN_AGE] = { "retain_age", VAL_DURATION, FIELD(cfg_store, retain_age_ms), 0,
			    CFG_RETAIN_AGE_MAX_MS, NULL, NULL },
};

#define KEYS_MAX 9
_Static_assert(ARRAY_SIZE(engine_keys) <= KEYS_MAX && ARRAY_SIZE(store_keys) <= KEYS_MAX,
	       "key_line[] holds every key of a section");

/* ---------------------------------------------------------------------------
 * The parser.
 */

enum cfg_section { SEC_NONE, SEC_ENGINE, SEC_STORE };

struct cfg_parser {
	struct config *cfg;
	const char *name;	 /* the file's name, for messages */
	const char *pos;	 /* the next line of the text */
	int lineno;		 /* lines handed to inih so far */
	enum cfg_section sec;	 /* the section of the current line */
	struct cfg_store *store; /* SEC_STORE: the store being read */
	int engine_line;	 /* line of [engine]; 0: none yet */
	int key_line[KEYS_MAX];	 /* line each key of the section was set on; 0: not set */
	bool pending;		 /* a key line went to inih and the handler has not run */
	bool failed;		 /* errbuf holds the first error */
	char *errbuf;
	size_t errlen;
};

/*
 * report() - record the first error as "NAME:LINE: " and the message; later
 * errors are dropped.  Always returns -EINVAL.
 */
static int report(struct cfg_parser *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int report(struct cfg_parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	char *nl;
	int n;

	if (p->failed)
		return -EINVAL;
	p->failed = true;
	if (!p->errbuf || !p->errlen)
		return -EINVAL;
	n = snprintf(p->errbuf, p->errlen, "%s:%d: ", p->name, line);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	/* One line, whatever the file name holds. */
	while ((nl = strchr(p->errbuf, '\n')))
		*nl = ' ';
	return -EINVAL;
}

/* Set a number field of 8 or 4 bytes. */
static void set_field(void *base, const struct key_def *k, uint64_t v)
{
	char *field = (char *)base + k->off;

	if (k->size == sizeof(uint64_t)) {
		memcpy(field, &v, sizeof(v));
	} else {
		uint32_t v32 = (uint32_t)v;

		memcpy(field, &v32, sizeof(v32));
	}
}

/* The largest gid chown accepts: (gid_t)-1 means "leave the group". */
#define CFG_GID_MAX (UINT64_C(0xffffffff) - 1)

/*
 * resolve_group() - a group's name, looked up with getgrnam_r (files, LDAP,
 * whatever nsswitch.conf says), or, when no group has that name and it is
 * all digits, a numeric gid (which needs no entry in /etc/group, as with
 * chgrp).  Returns 0 with *gid set, -ENOENT (no such group), -ERANGE (a
 * number above CFG_GID_MAX), -ENOMEM, or the lookup's -errno; *gid is left
 * alone on failure.
 */
static int resolve_group(const char *name, gid_t *gid)
{
	struct group gr, *res = NULL;
	size_t len = 1024;
	char *buf = NULL, *nbuf;
	uint64_t v;
	int ret;

	for (;;) {
		nbuf = realloc(buf, len);
		if (!nbuf) {
			free(buf);
			return -ENOMEM;
		}
		buf = nbuf;
		ret = getgrnam_r(name, &gr, buf, len, &res);
		if (ret != ERANGE || len >= (1u << 20))
			break;
		len *= 2;
	}
	if (ret == 0 && res) {
		*gid = res->gr_gid;
		free(buf);
		return 0;
	}
	free(buf);
	switch (parse_uint_r(name, &v)) {
	case 0:
		if (v > CFG_GID_MAX)
			return -ERANGE;
		*gid = (gid_t)v;
		return 0;
	case -ERANGE:
		return -ERANGE;
	}
	/* Not found: 0 with no result, or what some NSS modules say instead. */
	if (ret == 0 || ret == ENOENT || ret == ESRCH || ret == EBADF || ret == EPERM)
		return -ENOENT;
	return -ret;
}

/*
 * set_key() - parse value for key k (of the current line) into its field of
 * base.  Returns 0, or -EINVAL after report() with the field unchanged.
 */
static int set_key(struct cfg_parser *p, const struct key_def *k, const char *value, void *base)
{
	char lo[32], hi[32];
	const char *what;
	const struct enum_word *w;
	uint64_t v = 0;
	int ret;

	switch (k->kind) {
	case VAL_NAME:
		if (!ring_name_valid(value))
			return report(p, p->lineno,
				      "key '%s': '%s' is not a valid name "
				      "([A-Za-z0-9_-], 1 to %d characters)",
				      k->name, value, BE_NAME_MAX);
		snprintf((char *)base + k->off, k->size, "%s", value);
		return 0;
	case VAL_PATH:
		if (strlen(value) >= k->size)
			return report(p, p->lineno, "key '%s': longer than %zu bytes", k->name,
				      k->size - 1);
		snprintf((char *)base + k->off, k->size, "%s", value);
		return 0;
	case VAL_GROUP: {
		struct cfg_engine *en = base; /* only [engine] has a group */
		gid_t gid = 0;

		if (strlen(value) >= k->size)
			return report(p, p->lineno, "key '%s': longer than %zu bytes", k->name,
				      k->size - 1);
		ret = resolve_group(value, &gid);
		if (ret == -ENOENT)
			return report(p, p->lineno,
				      "key '%s': no group '%s' on this host (give a group name "
				      "or a numeric gid)",
				      k->name, value);
		if (ret == -ERANGE)
			return report(p, p->lineno, "key '%s': %s is out of range (0 .. %" PRIu64 ")",
				      k->name, value, CFG_GID_MAX);
		if (ret)
			return report(p, p->lineno, "key '%s': cannot look up group '%s': %s",
				      k->name, value, strerror(-ret));
		snprintf(en->group, sizeof(en->group), "%s", value);
		en->group_gid = gid;
		en->group_set = 1;
		return 0;
	}
	case VAL_ENUM:
		for (w = k->words; w->word; w++) {
			if (!strcmp(w->word, value)) {
				set_field(base, k, (uint64_t)w->value);
				return 0;
			}
		}
		return report(p, p->lineno, "key '%s': '%s' is not one of %s", k->name, value,
			      k->hint);
	case VAL_MODE:
		ret = parse_octal_r(value, &v);
		if (ret == -EINVAL)
			return report(p, p->lineno, "key '%s': '%s' is not an octal mode like 0660",
				      k->name, value);
		if (ret || v > k->max)
			return report(p, p->lineno, "key '%s': %s has bits beyond 0777", k->name,
				      value);
		if ((v & CFG_MODE_OWNER_RW) != CFG_MODE_OWNER_RW)
			return report(p, p->lineno,
				      "key '%s': %s must give the owner read "
				      "and write (0600)",
				      k->name, value);
		set_field(base, k, v);
		return 0;
	case VAL_UINT:
		ret = parse_uint_r(value, &v);
		what = "a number";
		snprintf(lo, sizeof(lo), "%" PRIu64, k->min);
		snprintf(hi, sizeof(hi), "%" PRIu64, k->max);
		break;
	case VAL_SIZE:
	case VAL_POW2:
		ret = parse_size_r(value, &v);
		what = "a size (a number with K, M or G)";
		fmt_size(lo, sizeof(lo), k->min);
		fmt_size(hi, sizeof(hi), k->max);
		break;
	case VAL_DURATION:
		ret = parse_duration_r(value, &v);
		what = "a duration (a number with ms, s or m)";
		fmt_duration(lo, sizeof(lo), k->min);
		fmt_duration(hi, sizeof(hi), k->max);
		break;
	default:
		return report(p, p->lineno, "key '%s': no parser for this key", k->name);
	}

	if (ret == -ERANGE)
		return report(p, p->lineno, "key '%s': '%s' is too large", k->name, value);
	if (ret)
		return report(p, p->lineno, "key '%s': '%s' is not %s", k->name, value, what);
	if (v < k->min || v > k->max)
		return report(p, p->lineno, "key '%s': %s is out of range (%s .. %s)", k->name,
			      value, lo, hi);
	if (k->kind == VAL_POW2 && (v & (v - 1)))
		return report(p, p->lineno, "key '%s': %s is not a power of two", k->name, value);
	set_field(base, k, v);
	return 0;
}

/*
 * finish_store() - the checks that need the whole [store] section: a type
 * was given, flush_bytes fits the capacity (whatever the order of the two
 * keys), and the flush_bytes default that depends on the capacity.
 * Returns 0 or -EINVAL after report().
 */
static int finish_store(struct cfg_parser *p)
{
	struct cfg_store *st = p->store;
	char a[32], b[32];

	if (!p->key_line[SK_TYPE])
		return report(p, st->line, "section 'store %s': no 'type' (%s)", st->name,
			      store_keys[SK_TYPE].hint);
	if (!p->key_line[SK_FLUSH_BYTES]) {
		st->flush_bytes = st->capacity / 2 < MiB ? st->capacity / 2 : MiB;
	} else if (st->flush_bytes > st->capacity) {
		return report(p, p->key_line[SK_FLUSH_BYTES],
			      "key 'flush_bytes': %s is larger "
			      "than the capacity (%s)",
			      fmt_size(a, sizeof(a), st->flush_bytes),
			      fmt_size(b, sizeof(b), st->capacity));
	}
	return 0;
}

/* Start a [store NAME] section; name is n bytes at s. */
static int start_store(struct cfg_parser *p, const char *s, size_t n)
{
	struct config *cfg = p->cfg;
	struct cfg_store *st;
	char name[BE_NAME_MAX + 1];
	unsigned i;

	if (!n)
		return report(p, p->lineno, "section 'store': a store needs a name: [store NAME]");
	if (n > BE_NAME_MAX)
		return report(p, p->lineno,
			      "section 'store %.*s': the name is longer than "
			      "%d characters",
			      (int)n, s, BE_NAME_MAX);
	memcpy(name, s, n);
	name[n] = '\0';
	if (!ring_name_valid(name))
		return report(p, p->lineno,
			      "section 'store %s': '%s' is not a valid store "
			      "name ([A-Za-z0-9_-])",
			      name, name);
	for (i = 0; i < cfg->nstores; i++) {
		if (!strcmp(cfg->stores[i].name, name))
			return report(p, p->lineno,
				      "section 'store %s': duplicate store (first "
				      "on line %d)",
				      name, cfg->stores[i].line);
	}
	if (cfg->nstores == CONFIG_MAX_STORES)
		return report(p, p->lineno, "section 'store %s': more than %d stores", name,
			      CONFIG_MAX_STORES);

	/* type stays 0 (required) and flush_bytes 0 until finish_store(). */
	st = &cfg->stores[cfg->nstores++];
	memset(st, 0, sizeof(*st));
	memcpy(st->name, name, n + 1);
	st->capacity = 64 * MiB;
	st->flush_interval_ms = 1000;
	st->on_full = CFG_ON_FULL_BLOCK;
	st->sync = CFG_SYNC_BATCH;
	st->segment_bytes = 64 * MiB;
	st->line = p->lineno;
	p->sec = SEC_STORE;
	p->store = st;
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * start_section() - a "[...]" line, s..e without the surrounding blanks:
 * end the previous section, then start the new one.  The header ends at
 * the first ']', as inih reads it; only a comment may follow.
 * Returns 0 or -EINVAL after report().
 */
static int start_section(struct cfg_parser *p, const char *s, const char *e)
{
	const char *q, *t, *te;

	if (p->sec == SEC_STORE && finish_store(p))
		return -EINVAL;
	p->sec = SEC_NONE;
	p->store = NULL;
	memset(p->key_line, 0, sizeof(p->key_line));

	for (q = s + 1; q < e && *q != ']'; q++)
		;
	if (q == e)
		return report(p, p->lineno, "section '%.*s': no closing ']'", (int)(e - s - 1),
			      s + 1);
	for (t = s + 1; t < q && is_blank(*t); t++)
		;
	for (te = q; te > t && is_blank(te[-1]); te--)
		;
	for (q++; q < e && is_blank(*q); q++)
		;
	if (q < e && *q != ';' && *q != '#')
		return report(p, p->lineno, "section '%.*s': text after ']'", (int)(te - t), t);

	if (te - t == 6 && !memcmp(t, "engine", 6)) {
		if (p->engine_line)
			return report(p, p->lineno,
				      "section 'engine': duplicate section "
				      "(first on line %d)",
				      p->engine_line);
		p->engine_line = p->lineno;
		p->sec = SEC_ENGINE;
		return 0;
	}
	if (te - t >= 5 && !memcmp(t, "store", 5) && (te - t == 5 || is_blank(t[5]))) {
		for (t += 5; t < te && is_blank(*t); t++)
			;
		return start_store(p, t, (size_t)(te - t));
	}
	return report(p, p->lineno,
		      "section '%.*s': unknown section (expected [engine] "
		      "or [store NAME])",
		      (int)(te - t), t);
}

static int syntax_error(struct cfg_parser *p, int line)
{
	return report(p, line, "expected 'key = value', '[section]' or a comment");
}

/*
 * cfg_reader() - inih's fgets: hand it the next line of the text, or NULL
 * at the end or once an error is recorded (which stops the parse).
 *
 * inih calls the handler for a line before it reads the next one, so
 * p->lineno is the handler's line.  A key line whose handler did not run
 * was refused by inih (no '=' or ':').  Section headers and comments reach
 * inih as blank lines: the sections are ours (inih would cut names at 49
 * characters and never report an empty section).
 */
static char *cfg_reader(char *buf, int num, void *stream)
{
	struct cfg_parser *p = stream;
	size_t room = num > 2 ? (size_t)num - 2 : 0; /* '\n' and NUL */
	const char *s, *e, *eol;

	if (p->pending)
		syntax_error(p, p->lineno);
	if (p->failed || !*p->pos)
		return NULL;

	s = p->pos;
	eol = strchr(s, '\n');
	e = eol ? eol : s + strlen(s);
	p->pos = eol ? eol + 1 : e;
	p->lineno++;

	if (p->lineno == 1 && e - s >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		s += 3; /* a UTF-8 byte order mark */
	while (s < e && is_blank(*s))
		s++;
	while (e > s && is_blank(e[-1]))
		e--;

	if (s < e && *s == '[') {
		if (start_section(p, s, e))
			return NULL;
		e = s;
	} else if (s < e && *s != ';' && *s != '#') {
		if ((size_t)(e - s) > room) {
			report(p, p->lineno, "line longer than %zu characters", room);
			return NULL;
		}
		p->pending = true;
	} else {
		e = s;
	}
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\n';
	buf[e - s + 1] = '\0';
	return buf;
}

/* cfg_handler() - inih's handler: one "key = value" of the current section. */
static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parser *p = user;
	const struct key_def *keys;
	size_t nkeys, i;
	void *base;

	(void)section; /* ours is p->sec: see cfg_reader() */
	p->pending = false;
	if (p->failed)
		return 0;

	switch (p->sec) {
	case SEC_ENGINE:
		keys = engine_keys;
		nkeys = ARRAY_SIZE(engine_keys);
		base = &p->cfg->engine;
		break;
	case SEC_STORE:
		keys = store_keys;
		nkeys = ARRAY_SIZE(store_keys);
		base = p->store;
		break;
	default:
		report(p, p->lineno, "key '%s': outside any section ([engine] or [store NAME])",
		       name);
		return 0;
	}

	for (i = 0; i < nkeys && strcmp(keys[i].name, name) != 0; i++)
		;
	if (i == nkeys) {
		if (p->sec == SEC_ENGINE)
			report(p, p->lineno, "key '%s': unknown key in [engine]", name);
		else
			report(p, p->lineno, "key '%s': unknown key in [store %s]", name,
			       p->store->name);
		return 0;
	}
	if (p->key_line[i]) {
		report(p, p->lineno, "key '%s': set twice (first on line %d)", name,
		       p->key_line[i]);
		return 0;
	}
	if (!value || !*value) {
		report(p, p->lineno, "key '%s': empty value", name);
		return 0;
	}
	if (set_key(p, &keys[i], value, base))
		return 0;
	p->key_line[i] = p->lineno;
	return 1;
}

static void config_defaults(struct config *cfg)
{
	struct cfg_engine *en = &cfg->engine;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(en->instance, sizeof(en->instance), "%s", ring_default_instance());
	en->data_dir[0] = '\0'; /* config_load_string(): from the instance unless given */
	en->max_workers = 4;
	en->shutdown_flush_timeout_ms = UINT64_C(30) * 1000;
	en->batch_bytes = 1 * MiB;
	en->ring_mode = 0660;
}

int config_load_string(const char *text, const char *name, struct config *cfg, char *errbuf,
		       size_t errlen)
{
	struct cfg_parser p = {
		.cfg = cfg,
		.name = name ? name : "<string>",
		.pos = text,
		.errbuf = errbuf,
		.errlen = errlen,
	};
	struct cfg_engine *en;
	int ret;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!text || !cfg)
		return -EINVAL;
	en = &cfg->engine;
	config_defaults(cfg);

	ret = ini_parse_stream(cfg_reader, &p, cfg_handler, &p);
	if (p.pending)
		syntax_error(&p, p.lineno); /* the last line */
	if (ret > 0)
		syntax_error(&p, ret); /* not reached: cfg_reader() catches what inih refuses */
	else if (ret < 0)
		report(&p, p.lineno, "inih failed (%d)", ret);
	if (!p.failed && p.sec == SEC_STORE)
		finish_store(&p);
	if (!p.failed && !cfg->nstores)
		report(&p, p.lineno ? p.lineno : 1,
		       "no [store NAME] section: configure at "
		       "least one store");
	if (p.failed) {
		memset(cfg, 0, sizeof(*cfg));
		return -EINVAL;
	}
	/* After the whole text, so that an instance given after the stores counts. */
	if (!en->data_dir[0])
		snprintf(en->data_dir, sizeof(en->data_dir), CFG_DATA_DIR_PREFIX "%s",
			 en->instance);
	return 0;
}

/*
 * read_text() - the whole file, NUL-terminated, in a malloc()ed buffer.
 * Returns 0, -EFBIG (over CFG_FILE_MAX bytes), -ENOMEM or -errno.
 */
static int read_text(const char *path, char **out, size_t *lenp)
{
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (len == cap) {
			if (cap > CFG_FILE_MAX) {
				ret = -EFBIG;
				goto err_free;
			}
			cap = cap ? cap * 2 : 4096;
			if (cap > CFG_FILE_MAX + 1)
				cap = CFG_FILE_MAX + 1;
			nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				ret = -ENOMEM;
				goto err_free;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto err_free;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*lenp = len;
	return 0;

err_free:
	free(buf);
	close(fd);
	return ret;
}

int config_load(const char *path, struct config *cfg, char *errbuf, size_t errlen)
{
	const char *nul;
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!path || !cfg)
		return -EINVAL;
	memset(cfg, 0, sizeof(*cfg));

	ret = read_text(path, &text, &len);
	if (ret < 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: %s", path,
				 ret == -EFBIG ? "larger than 1 MiB" : strerror(-ret));
		return ret;
	}

	/* read_text() returned 0: text is set (errno: see .clang-tidy). */
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker) */
	nul = memchr(text, '\0', len);
	if (nul) {
		struct cfg_parser p = { .name = path, .errbuf = errbuf, .errlen = errlen };
		const char *c;
		int line = 1;

		for (c = text; c < nul; c++)
			line += *c == '\n';
		ret = report(&p, line, "a NUL byte: not a text file");
	} else {
		ret = config_load_string(text, path, cfg, errbuf, errlen);
	}
	free(text);
	return ret;
}
