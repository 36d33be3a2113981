/*
 * test_config.c - server/config.c: defaults, every key, sizes and durations, every error
 * with its FILE:LINE, the built-in config, and config_load() from real files.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/config.h"

/* Big (struct config is ~40 KiB): one per test process, Check forks each test. */
static struct config cfg;
static char err[512];

static int load(const char *text)
{
	memset(err, 'x', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	return config_load_string(text, "t.ini", &cfg, err, sizeof(err));
}

static void load_ok(const char *text)
{
	int ret = load(text);

	ck_assert_msg(ret == 0, "config_load_string: %d, errbuf: %s", ret, err);
	ck_assert_str_eq(err, "");
}

/*
 * Assert text fails with -EINVAL, errbuf starting with prefix (file, line and
 * key or section), containing what, on one line; and cfg zeroed.
 */
static void load_err(const char *text, const char *prefix, const char *what)
{
	int ret = load(text);

	ck_assert_msg(ret == -EINVAL, "expected -EINVAL, got %d; errbuf: %s", ret, err);
	ck_assert_msg(!strncmp(err, prefix, strlen(prefix)), "errbuf '%s' does not start with '%s'",
		      err, prefix);
	ck_assert_msg(strstr(err, what), "errbuf '%s' does not say '%s'", err, what);
	ck_assert_msg(!strchr(err, '\n'), "errbuf has more than one line: '%s'", err);
	ck_assert_uint_eq(cfg.nstores, 0);
}

/* Defaults: what a config with one minimal store gives. */
START_TEST(test_defaults)
{
	const struct cfg_store *st;

	unsetenv("BE_INSTANCE");
	load_ok("[store s]\ntype = raw\n");
	ck_assert_str_eq(cfg.engine.instance, "default");
	ck_assert_str_eq(cfg.engine.data_dir, "/var/lib/bufferengine/default");
	ck_assert_uint_eq(cfg.engine.max_workers, 4);
	ck_assert_uint_eq(cfg.engine.shutdown_flush_timeout_ms, 30000);
	ck_assert_uint_eq(cfg.engine.batch_bytes, 1u << 20);
	ck_assert_uint_eq(cfg.engine.ring_mode, 0660);
	ck_assert_int_eq(cfg.engine.group_set, 0);
	ck_assert_str_eq(cfg.engine.group, "");

	ck_assert_uint_eq(cfg.nstores, 1);
	st = &cfg.stores[0];
	ck_assert_str_eq(st->name, "s");
	ck_assert_int_eq(st->type, BE_TYPE_RAW);
	ck_assert_uint_eq(st->capacity, 64u << 20);
	ck_assert_uint_eq(st->flush_bytes, 1u << 20);
	ck_assert_uint_eq(st->flush_interval_ms, 1000);
	ck_assert_int_eq(st->on_full, CFG_ON_FULL_BLOCK);
	ck_assert_int_eq(st->sync, CFG_SYNC_BATCH);
	ck_assert_uint_eq(st->segment_bytes, 64u << 20);
	ck_assert_uint_eq(st->retain_bytes, 0);
	ck_assert_int_eq(st->line, 1);
}
END_TEST

/* flush_bytes defaults to min(1M, capacity / 2), whatever the key order. */
START_TEST(test_flush_bytes_default)
{
	load_ok("[store a]\ncapacity = 4K\ntype = raw\n"
		"[store b]\ntype = log\ncapacity = 1M\n"
		"[store c]\ntype = log\ncapacity = 2M\n"
		"[store d]\ntype = log\ncapacity = 16G\n");
	ck_assert_uint_eq(cfg.nstores, 4);
	ck_assert_uint_eq(cfg.stores[0].flush_bytes, 2048);
	ck_assert_uint_eq(cfg.stores[1].flush_bytes, 512 * 1024);
	ck_assert_uint_eq(cfg.stores[2].flush_bytes, 1024 * 1024);
	ck_assert_uint_eq(cfg.stores[3].flush_bytes, 1024 * 1024);
}
END_TEST

START_TEST(test_engine_keys)
{
	load_ok("[engine]\n"
		"instance = prod-1\n"
		"data_dir = /srv/be\n"
		"max_workers = 256\n"
		"shutdown_flush_timeout = 2m\n"
		"batch_bytes = 64K\n"
		"ring_mode = 0600\n"
		"[store s]\ntype = raw\n");
	ck_assert_str_eq(cfg.engine.instance, "prod-1");
	ck_assert_str_eq(cfg.engine.data_dir, "/srv/be");
	ck_assert_uint_eq(cfg.engine.max_workers, 256);
	ck_assert_uint_eq(cfg.engine.shutdown_flush_timeout_ms, 120000);
	ck_assert_uint_eq(cfg.engine.batch_bytes, 65536);
	ck_assert_uint_eq(cfg.engine.ring_mode, 0600);

	load_ok("[engine]\nring_mode = 664\nmax_workers = 1\nbatch_bytes = 64M\n"
		"shutdown_flush_timeout = 0\n[store s]\ntype = raw\n");
	ck_assert_uint_eq(cfg.engine.ring_mode, 0664);
	ck_assert_uint_eq(cfg.engine.max_workers, 1);
	ck_assert_uint_eq(cfg.engine.batch_bytes, 64u << 20);
	ck_assert_uint_eq(cfg.engine.shutdown_flush_timeout_ms, 0);
}
END_TEST

/* group: a name (looked up), else a numeric gid, which needs no name. */
START_TEST(test_group)
{
	load_ok("[engine]\ngroup = root\n[store s]\ntype = raw\n");
	ck_assert_int_eq(cfg.engine.group_set, 1);
	ck_assert_uint_eq(cfg.engine.group_gid, 0);
	ck_assert_str_eq(cfg.engine.group, "root");

	load_ok("[engine]\ngroup = 0\n[store s]\ntype = raw\n");
	ck_assert_int_eq(cfg.engine.group_set, 1);
	ck_assert_uint_eq(cfg.engine.group_gid, 0);

	load_ok("[store s]\ntype = raw\n[engine]\ngroup = 54321\n");
	ck_assert_int_eq(cfg.engine.group_set, 1);
	ck_assert_uint_eq(cfg.engine.group_gid, 54321);
	ck_assert_str_eq(cfg.engine.group, "54321");

	load_ok("[engine]\ngroup = 4294967294\n[store s]\ntype = raw\n");
	ck_assert_uint_eq(cfg.engine.group_gid, 4294967294u);
}
END_TEST

START_TEST(test_store_keys)
{
	const struct cfg_store *st;

	load_ok("[store m]\n"
		"type = metric\n"
		"capacity = 16G\n"
		"flush_bytes = 3M\n"
		"flush_interval = 1m\n"
		"on_full = drop\n"
		"sync = none\n"
		"segment_bytes = 1024G\n"
		"retain_bytes = 10G\n"
		"[store l]\ntype = log\ncapacity = 4K\nflush_bytes = 4K\nflush_interval = 1\n"
		"on_full = block\nsync = batch\nsegment_bytes = 64K\n"
		"[store p]\ntype = process\n"
		"[store r]\ntype = raw\n");
	ck_assert_uint_eq(cfg.nstores, 4);
	st = &cfg.stores[0];
	ck_assert_str_eq(st->name, "m");
	ck_assert_int_eq(st->type, BE_TYPE_METRIC);
	ck_assert_uint_eq(st->capacity, UINT64_C(16) << 30);
	ck_assert_uint_eq(st->flush_bytes, 3u << 20);
	ck_assert_uint_eq(st->flush_interval_ms, 60000);
	ck_assert_int_eq(st->on_full, CFG_ON_FULL_DROP);
	ck_assert_int_eq(st->sync, CFG_SYNC_NONE);
	ck_assert_uint_eq(st->segment_bytes, UINT64_C(1) << 40);
	ck_assert_uint_eq(st->retain_bytes, UINT64_C(10) << 30);
	ck_assert_int_eq(st->line, 1);

	st = &cfg.stores[1];
	ck_assert_str_eq(st->name, "l");
	ck_assert_int_eq(st->type, BE_TYPE_LOG);
	ck_assert_uint_eq(st->capacity, 4096);
	ck_assert_uint_eq(st->flush_bytes, 4096);
	ck_assert_uint_eq(st->flush_interval_ms, 1);
	ck_assert_int_eq(st->on_full, CFG_ON_FULL_BLOCK);
	ck_assert_int_eq(st->sync, CFG_SYNC_BATCH);
	ck_assert_uint_eq(st->segment_bytes, 65536);
	ck_assert_int_eq(st->line, 10);

	ck_assert_int_eq(cfg.stores[2].type, BE_TYPE_PROCESS);
	ck_assert_int_eq(cfg.stores[2].line, 18);
	ck_assert_str_eq(cfg.stores[3].name, "r");
	ck_assert_int_eq(cfg.stores[3].type, BE_TYPE_RAW);
}
END_TEST

/* What inih and the reader accept around the keys. */
START_TEST(test_syntax_accepted)
{
	load_ok("\xef\xbb\xbf; a comment\r\n"
		"# another\r\n"
		"\r\n"
		"  [ store  spaced ]   ; comment after the header\r\n"
		"\ttype = metric   ; inline comment\r\n"
		"capacity: 8M\r\n"
		"[engine] # comment\n"
		"data_dir = /a;b   ; the first ';' has no blank before it\n");
	ck_assert_uint_eq(cfg.nstores, 1);
	ck_assert_str_eq(cfg.stores[0].name, "spaced");
	ck_assert_int_eq(cfg.stores[0].type, BE_TYPE_METRIC);
	ck_assert_uint_eq(cfg.stores[0].capacity, 8u << 20);
	ck_assert_int_eq(cfg.stores[0].line, 4);
	ck_assert_str_eq(cfg.engine.data_dir, "/a;b");

	/* No final newline. */
	load_ok("[store s]\ntype = raw");
	ck_assert_int_eq(cfg.stores[0].type, BE_TYPE_RAW);
}
END_TEST

/* The instance: $BE_INSTANCE when valid, the key wherever it is, data_dir from it. */
START_TEST(test_instance)
{
	setenv("BE_INSTANCE", "envinst", 1);
	load_ok("[store s]\ntype = raw\n");
	ck_assert_str_eq(cfg.engine.instance, "envinst");
	ck_assert_str_eq(cfg.engine.data_dir, "/var/lib/bufferengine/envinst");

	setenv("BE_INSTANCE", "bad/name", 1);
	load_ok("[store s]\ntype = raw\n");
	ck_assert_str_eq(cfg.engine.instance, "default");
	ck_assert_str_eq(cfg.engine.data_dir, "/var/lib/bufferengine/default");

	/* The key wins over the environment, even after the stores. */
	setenv("BE_INSTANCE", "envinst", 1);
	load_ok("[store s]\ntype = raw\n[engine]\ninstance = late\n");
	ck_assert_str_eq(cfg.engine.instance, "late");
	ck_assert_str_eq(cfg.engine.data_dir, "/var/lib/bufferengine/late");

	/* A data_dir given is kept as it is. */
	load_ok("[engine]\ndata_dir = /d\ninstance = x\n[store s]\ntype = raw\n");
	ck_assert_str_eq(cfg.engine.instance, "x");
	ck_assert_str_eq(cfg.engine.data_dir, "/d");
	unsetenv("BE_INSTANCE");
}
END_TEST

START_TEST(test_parse_size)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "007", 7 },
		{ "512B", 512 },
		{ "4K", 4096 },
		{ "4k", 4096 },
		{ "4KB", 4096 },
		{ "4kib", 4096 },
		{ "4KiB", 4096 },
		{ "64M", UINT64_C(64) << 20 },
		{ "64MiB", UINT64_C(64) << 20 },
		{ "3g", UINT64_C(3) << 30 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183G", ((UINT64_C(1) << 34) - 1) << 30 },
		{ "17592186044415M", ((UINT64_C(1) << 44) - 1) << 20 },
	};
	static const char *const bad[] = {
		"",
		" ",
		"K",
		"-1",
		"+1",
		" 1",
		"1 ",
		"1 K",
		"1X",
		"1KK",
		"1KBB",
		"1Ki",
		"1iB",
		"1.5M",
		"0x10",
		"1T",
		"1e3",
		"18446744073709551616",
		"99999999999999999999K",
		"17179869184G",
		"17592186044416M",
		"18014398509481984K",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_size(good[i].s, &v) == 0, "'%s' refused", good[i].s);
		ck_assert_msg(v == good[i].v, "'%s' gave %llu", good[i].s, (unsigned long long)v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_size(bad[i], &v) == -EINVAL, "'%s' accepted", bad[i]);
		ck_assert_msg(v == 12345, "'%s' changed *out", bad[i]);
	}
	ck_assert_int_eq(config_parse_size(NULL, &v), -EINVAL);
}
END_TEST

START_TEST(test_parse_duration)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "250", 250 },
		{ "250ms", 250 },
		{ "250MS", 250 },
		{ "2s", 2000 },
		{ "2S", 2000 },
		{ "3m", 180000 },
		{ "3M", 180000 },
		{ "18446744073709551615", UINT64_MAX },
		{ "18446744073709551615ms", UINT64_MAX },
		{ "18446744073709551s", UINT64_C(18446744073709551000) },
		{ "307445734561825m", UINT64_C(307445734561825) * 60000 },
		{ "2h", UINT64_C(7200000) },
		{ "7d", UINT64_C(7) * 86400000 },
		{ "3D", UINT64_C(3) * 86400000 },
	};
	static const char *const bad[] = {
		"",
		"s",
		"ms",
		"-5s",
		"+5s",
		" 5",
		"5 ",
		"5 s",
		"1hr",
		"1sec",
		"1.5s",
		"1mss",
		"1sm",
		"0x10",
		"18446744073709551616",
		"18446744073709552s",
		"307445734561826m",
		"99999999999999999999999ms",
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_duration_ms(good[i].s, &v) == 0, "'%s' refused",
			      good[i].s);
		ck_assert_msg(v == good[i].v, "'%s' gave %llu", good[i].s, (unsigned long long)v);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		ck_assert_msg(config_parse_duration_ms(bad[i], &v) == -EINVAL, "'%s' accepted",
			      bad[i]);
		ck_assert_msg(v == 12345, "'%s' changed *out", bad[i]);
	}
	ck_assert_int_eq(config_parse_duration_ms(NULL, &v), -EINVAL);
}
END_TEST

/* Every error: the text, the start of the message (file, line, key or section), a word of it. */
static const struct err_case {
	const char *text;
	const char *prefix;
	const char *what;
} err_cases[] = {
	/* sections */
	{ "[store a]\ntype = raw\n[bogus]\n", "t.ini:3: section 'bogus': ", "unknown section" },
	{ "[store a]\ntype = raw\n[Engine]\n", "t.ini:3: section 'Engine': ", "unknown section" },
	{ "[store a]\ntype = raw\n[stores x]\n", "t.ini:3: section 'stores x': ", "unknown" },
	{ "[engine]\n[store a]\ntype = raw\n[engine]\n",
	  "t.ini:4: section 'engine': ", "duplicate section (first on line 1)" },
	{ "[store a]\ntype = raw\n\n[store b]\ntype = raw\n[store a]\ntype = log\n",
	  "t.ini:6: section 'store a': ", "duplicate store (first on line 1)" },
	{ "[store a.b]\ntype = raw\n", "t.ini:1: section 'store a.b': ", "not a valid store name" },
	{ "[store a b]\ntype = raw\n", "t.ini:1: section 'store a b': ", "not a valid store name" },
	{ "[store]\ntype = raw\n", "t.ini:1: section 'store': ", "needs a name" },
	{ "[store   ]\ntype = raw\n", "t.ini:1: section 'store': ", "needs a name" },
	{ "[store a234567890123456789012345678901234567890123456789012345678901234]\n",
	  "t.ini:1: section 'store a2345678901", "longer than 63" },
	{ "[store a]\ntype = raw\n[store b\n", "t.ini:3: section 'store b': ", "no closing ']'" },
	{ "[store a] junk\ntype = raw\n", "t.ini:1: section 'store a': ", "text after ']'" },
	{ "; nothing\n[store a]\n\n", "t.ini:2: section 'store a': ", "no 'type'" },
	{ "[store a]\ncapacity = 4K\n[store b]\ntype = raw\n",
	  "t.ini:1: section 'store a': ", "no 'type'" },
	{ "[engine]\nmax_workers = 2\n", "t.ini:2: ", "no [store NAME] section" },
	{ "", "t.ini:1: ", "no [store NAME] section" },
	/* keys */
	{ "type = raw\n[store a]\ntype = raw\n", "t.ini:1: key 'type': ", "outside any section" },
	{ "[engine]\ncolour = blue\n[store a]\ntype = raw\n",
	  "t.ini:2: key 'colour': ", "unknown key in [engine]" },
	{ "[store a]\ntype = raw\n\ncolor = red\n",
	  "t.ini:4: key 'color': ", "unknown key in [store a]" },
	{ "[store a]\ntype = raw\ncapacity = 4K\ntype = raw\n",
	  "t.ini:4: key 'type': ", "set twice (first on line 2)" },
	{ "[engine]\nmax_workers = 1\nmax_workers = 1\n",
	  "t.ini:3: key 'max_workers': ", "set twice (first on line 2)" },
	{ "[store a]\ntype = raw\ncapacity =\n", "t.ini:3: key 'capacity': ", "empty value" },
	{ "[store a]\ntype = raw\ncapacity = ; only a comment\n",
	  "t.ini:3: key 'capacity': ", "empty value" },
	{ "[engine]\ndata_dir =\n", "t.ini:2: key 'data_dir': ", "empty value" },
	{ "[store a]\ntype = blob\n", "t.ini:2: key 'type': ", "'blob' is not one of" },
	{ "[store a]\ntype = RAW\n", "t.ini:2: key 'type': ", "'RAW' is not one of" },
	{ "[store a]\ntype = raw\non_full = wait\n", "t.ini:3: key 'on_full': ", "block or drop" },
	{ "[store a]\ntype = raw\nsync = always\n", "t.ini:3: key 'sync': ", "batch or none" },
	{ "[store a]\ntype = raw\ncapacity = 3K\n", "t.ini:3: key 'capacity': ", "out of range" },
	{ "[store a]\ntype = raw\ncapacity = 32G\n",
	  "t.ini:3: key 'capacity': ", "out of range (4K .. 16G)" },
	{ "[store a]\ntype = raw\ncapacity = 12K\n",
	  "t.ini:3: key 'capacity': ", "not a power of two" },
	{ "[store a]\ntype = raw\ncapacity = 12Q\n", "t.ini:3: key 'capacity': ", "not a size" },
	{ "[store a]\ntype = raw\ncapacity = -4K\n", "t.ini:3: key 'capacity': ", "not a size" },
	{ "[store a]\ntype = raw\ncapacity = 99999999999999999999\n",
	  "t.ini:3: key 'capacity': ", "too large" },
	{ "[store a]\ntype = raw\ncapacity = 17179869184G\n",
	  "t.ini:3: key 'capacity': ", "too large" },
	{ "[store a]\ntype = raw\nflush_bytes = 0\n",
	  "t.ini:3: key 'flush_bytes': ", "out of range" },
	{ "[store a]\ntype = raw\ncapacity = 1M\nflush_bytes = 2M\n",
	  "t.ini:4: key 'flush_bytes': ", "2M is larger than the capacity (1M)" },
	{ "[store a]\nflush_bytes = 128K\ntype = raw\ncapacity = 64K\n[store b]\ntype = raw\n",
	  "t.ini:2: key 'flush_bytes': ", "larger than the capacity (64K)" },
	{ "[store a]\ntype = raw\nflush_bytes = 65M\n",
	  "t.ini:3: key 'flush_bytes': ", "larger than the capacity (64M)" },
	{ "[store a]\ntype = raw\nflush_interval = 0\n",
	  "t.ini:3: key 'flush_interval': ", "out of range (1ms .. 60m)" },
	{ "[store a]\ntype = raw\nflush_interval = 61m\n",
	  "t.ini:3: key 'flush_interval': ", "out of range" },
	{ "[store a]\ntype = raw\nflush_interval = 2h\n",
	  "t.ini:3: key 'flush_interval': ", "out of range (1ms .. 60m)" },
	{ "[store a]\ntype = raw\nflush_interval = 1hr\n",
	  "t.ini:3: key 'flush_interval': ", "not a duration" },
	{ "[store a]\ntype = raw\nretain_age = 3651d\n",
	  "t.ini:3: key 'retain_age': ", "out of range" },
	{ "[store a]\ntype = raw\nflush_interval = 400000000000000000m\n",
	  "t.ini:3: key 'flush_interval': ", "too large" },
	{ "[store a]\ntype = raw\nsegment_bytes = 32K\n",
	  "t.ini:3: key 'segment_bytes': ", "out of range (64K .. 1024G)" },
	{ "[store a]\ntype = raw\nsegment_bytes = 1025G\n",
	  "t.ini:3: key 'segment_bytes': ", "out of range" },
	{ "[store a]\ntype = raw\nretain_bytes = lots\n",
	  "t.ini:3: key 'retain_bytes': ", "not a size" },
	{ "[engine]\nmax_workers = 0\n",
	  "t.ini:2: key 'max_workers': ", "out of range (1 .. 256)" },
	{ "[engine]\nmax_workers = 257\n", "t.ini:2: key 'max_workers': ", "out of range" },
	{ "[engine]\nmax_workers = 4K\n", "t.ini:2: key 'max_workers': ", "not a number" },
	{ "[engine]\nmax_workers = 4 workers\n", "t.ini:2: key 'max_workers': ", "not a number" },
	{ "[engine]\nshutdown_flush_timeout = 2h\n",
	  "t.ini:2: key 'shutdown_flush_timeout': ", "out of range (0ms .. 60m)" },
	{ "[engine]\nshutdown_flush_timeout = 61m\n",
	  "t.ini:2: key 'shutdown_flush_timeout': ", "out of range (0ms .. 60m)" },
	{ "[engine]\nbatch_bytes = 32K\n",
	  "t.ini:2: key 'batch_bytes': ", "out of range (64K .. 64M)" },
	{ "[engine]\nbatch_bytes = 65M\n", "t.ini:2: key 'batch_bytes': ", "out of range" },
	{ "[engine]\nring_mode = 0668\n", "t.ini:2: key 'ring_mode': ", "not an octal mode" },
	{ "[engine]\nring_mode = rw\n", "t.ini:2: key 'ring_mode': ", "not an octal mode" },
	{ "[engine]\nring_mode = 01660\n", "t.ini:2: key 'ring_mode': ", "beyond 0777" },
	{ "[engine]\nring_mode = 0440\n", "t.ini:2: key 'ring_mode': ", "owner read and write" },
	{ "[engine]\ngroup = no-such-group-be-test\n", "t.ini:2: key 'group': ",
	  "no group 'no-such-group-be-test' on this host" },
	{ "[engine]\nmax_workers = 2\ngroup = -1\n", "t.ini:3: key 'group': ", "no group '-1'" },
	{ "[engine]\ngroup = 4294967295\n", "t.ini:2: key 'group': ",
	  "out of range (0 .. 4294967294)" },
	{ "[engine]\ngroup = 99999999999999999999\n", "t.ini:2: key 'group': ", "out of range" },
	{ "[engine]\ngroup = root\ngroup = 0\n", "t.ini:3: key 'group': ", "set twice" },
	{ "[engine]\ngroup =\n", "t.ini:2: key 'group': ", "empty value" },
	{ "[store a]\ntype = raw\ngroup = root\n", "t.ini:3: key 'group': ",
	  "unknown key in [store a]" },
	{ "[engine]\ninstance = a/b\n", "t.ini:2: key 'instance': ", "not a valid name" },
	{ "[engine]\ninstance = a234567890123456789012345678901234567890123456789012345678901234\n",
	  "t.ini:2: key 'instance': ", "not a valid name" },
	/* lines */
	{ "[store a]\ntype raw\n", "t.ini:2: ", "expected 'key = value'" },
	{ "[store a]\ntype = raw\n  log\n", "t.ini:3: ", "expected 'key = value'" },
	{ "[store a]\ntype = raw\nnonsense", "t.ini:3: ", "expected 'key = value'" },
	/* The first error in the file wins, whatever kind it is. */
	{ "[store a]\nbroken\ntype = raw\ncapacity = 3\n[bogus]\n",
	  "t.ini:2: ", "expected 'key = value'" },
	{ "[store a]\ntype = raw\ncapacity = 3\nbroken\n",
	  "t.ini:3: key 'capacity': ", "out of range" },
	{ "[store a]\ncapacity = 4K\n[bogus]\n", "t.ini:1: section 'store a': ", "no 'type'" },
};

START_TEST(test_errors)
{
	const struct err_case *c = &err_cases[_i];

	load_err(c->text, c->prefix, c->what);
}
END_TEST

/*
 * A key line longer than inih's line buffer (200 bytes: 198 characters, '\n' and NUL) is
 * refused with its line, not cut; a long comment is fine.
 */
START_TEST(test_long_lines)
{
	char text[1024];
	char path[600];

	/* "data_dir = " and 187 characters: 198 in all. */
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	path[0] = '/';
	path[187] = '\0';
	snprintf(text, sizeof(text), "[store a]\ntype = raw\n[engine]\ndata_dir = %s\n", path);
	load_ok(text);
	ck_assert_str_eq(cfg.engine.data_dir, path);

	path[187] = 'p';
	path[188] = '\0';
	snprintf(text, sizeof(text), "[store a]\ntype = raw\n[engine]\ndata_dir = %s\n", path);
	load_err(text, "t.ini:4: ", "line longer than 198 characters");

	path[188] = 'p';
	snprintf(text, sizeof(text), "; %s\n[store a]\ntype = raw\n", path);
	load_ok(text);
	ck_assert_uint_eq(cfg.nstores, 1);

	/* A store name too long for inih's section buffer (49) is still read whole. */
	load_ok("[store a23456789012345678901234567890123456789012345678901234567890123]\n"
		"type = raw\n");
	ck_assert_str_eq(cfg.stores[0].name,
			 "a23456789012345678901234567890123456789012345678901234567890123");
}
END_TEST

/* CONFIG_MAX_STORES stores load; one more is an error on its header line. */
START_TEST(test_too_many_stores)
{
	size_t cap = (CONFIG_MAX_STORES + 1) * 40, len = 0;
	char *text = malloc(cap);
	int i;

	ck_assert_ptr_nonnull(text);
	text[0] = '\0';
	for (i = 0; i < CONFIG_MAX_STORES; i++)
		len += (size_t)snprintf(text + len, cap - len, "[store s%d]\ntype = raw\n", i);
	load_ok(text);
	ck_assert_uint_eq(cfg.nstores, CONFIG_MAX_STORES);
	ck_assert_str_eq(cfg.stores[CONFIG_MAX_STORES - 1].name, "s255");
	ck_assert_int_eq(cfg.stores[CONFIG_MAX_STORES - 1].line, 2 * CONFIG_MAX_STORES - 1);

	snprintf(text + len, cap - len, "[store extra]\ntype = raw\n");
	load_err(text, "t.ini:513: section 'store extra': ", "more than 256 stores");
	free(text);
}
END_TEST

START_TEST(test_builtin)
{
	static const struct {
		const char *name;
		int type;
		uint64_t capacity, flush_bytes, interval;
	} want[] = {
		{ "demo", BE_TYPE_RAW, 1u << 20, 64u << 10, 200 },
		{ "logs", BE_TYPE_LOG, 4u << 20, 1u << 20, 500 },
		{ "metrics", BE_TYPE_METRIC, 4u << 20, 1u << 20, 1000 },
		{ "processes", BE_TYPE_PROCESS, 8u << 20, 1u << 20, 2000 },
	};
	int ret;
	size_t i;

	setenv("BE_INSTANCE", "someinst", 1);
	ret = config_load_string(config_builtin, "<built-in>", &cfg, err, sizeof(err));
	ck_assert_msg(ret == 0, "built-in config: %d: %s", ret, err);
	ck_assert_str_eq(cfg.engine.instance, "someinst");
	ck_assert_str_eq(cfg.engine.data_dir, "./be-data");
	ck_assert_uint_eq(cfg.engine.max_workers, 4);
	ck_assert_uint_eq(cfg.engine.shutdown_flush_timeout_ms, 10000);
	ck_assert_uint_eq(cfg.nstores, 4);
	for (i = 0; i < 4; i++) {
		const struct cfg_store *st = &cfg.stores[i];

		ck_assert_str_eq(st->name, want[i].name);
		ck_assert_int_eq(st->type, want[i].type);
		ck_assert_uint_eq(st->capacity, want[i].capacity);
		ck_assert_uint_eq(st->flush_bytes, want[i].flush_bytes);
		ck_assert_uint_eq(st->flush_interval_ms, want[i].interval);
		ck_assert_int_eq(st->on_full, CFG_ON_FULL_BLOCK);
		ck_assert_int_eq(st->sync, CFG_SYNC_BATCH);
	}
	unsetenv("BE_INSTANCE");
}
END_TEST

/* Write text (len bytes) to a new temp file; its name into path. */
static void temp_file(char *path, size_t plen, const void *text, size_t len)
{
	int fd;

	snprintf(path, plen, "/tmp/be-test-config-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

START_TEST(test_load_file)
{
	static const char good[] = "[engine]\ndata_dir = /tmp/x\n[store f]\ntype = log\n";
	static const char bad[] = "[store f]\ntype = log\n\ncapacity = 5K\n";
	char path[64], want[128];
	int ret;

	temp_file(path, sizeof(path), good, sizeof(good) - 1);
	ret = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	ck_assert_msg(ret == 0, "config_load: %d: %s", ret, err);
	ck_assert_str_eq(cfg.engine.data_dir, "/tmp/x");
	ck_assert_uint_eq(cfg.nstores, 1);
	ck_assert_str_eq(cfg.stores[0].name, "f");
	ck_assert_int_eq(cfg.stores[0].type, BE_TYPE_LOG);

	/* Messages name the file. */
	temp_file(path, sizeof(path), bad, sizeof(bad) - 1);
	ret = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	ck_assert_int_eq(ret, -EINVAL);
	snprintf(want, sizeof(want), "%s:4: key 'capacity': ", path);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "errbuf '%s', want '%s'", err, want);
	ck_assert_uint_eq(cfg.nstores, 0);
}
END_TEST

START_TEST(test_load_missing)
{
	const char *path = "/nonexistent-dir/be-config.ini";
	int ret;

	cfg.nstores = 7;
	ret = config_load(path, &cfg, err, sizeof(err));
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_msg(!strncmp(err, path, strlen(path)), "errbuf '%s' does not name the file", err);
	ck_assert_uint_eq(cfg.nstores, 0);

	ck_assert_int_eq(config_load("/", &cfg, err, sizeof(err)), -EISDIR);
}
END_TEST

START_TEST(test_load_bad_files)
{
	static const char nul[] = "[store a]\ntype = raw\nca\0pacity = 4K\n";
	char path[64], want[96];
	size_t big = (1u << 20) + 1;
	char *text;
	int ret;

	temp_file(path, sizeof(path), nul, sizeof(nul) - 1);
	ret = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	ck_assert_int_eq(ret, -EINVAL);
	snprintf(want, sizeof(want), "%s:3: ", path);
	ck_assert_msg(!strncmp(err, want, strlen(want)) && strstr(err, "NUL"),
		      "errbuf '%s', want '%s' and NUL", err, want);

	text = malloc(big);
	ck_assert_ptr_nonnull(text);
	memset(text, '\n', big);
	temp_file(path, sizeof(path), text, big);
	free(text);
	ret = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	ck_assert_int_eq(ret, -EFBIG);
	ck_assert_ptr_nonnull(strstr(err, "larger than 1 MiB"));
}
END_TEST

/* errbuf may be NULL or small; bad arguments are -EINVAL. */
START_TEST(test_errbuf_and_args)
{
	char small[12];

	ck_assert_int_eq(config_load_string("[bogus]\n", "t.ini", &cfg, NULL, 0), -EINVAL);
	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(config_load_string("[bogus]\n", "t.ini", &cfg, small, sizeof(small)),
			 -EINVAL);
	ck_assert_str_eq(small, "t.ini:1: se");
	ck_assert_int_eq(config_load_string("[bogus]\n", NULL, &cfg, err, sizeof(err)), -EINVAL);
	ck_assert_msg(!strncmp(err, "<string>:1: ", 12), "errbuf '%s'", err);

	ck_assert_int_eq(config_load_string(NULL, "t.ini", &cfg, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(
		config_load_string("[store a]\ntype=raw\n", "t.ini", NULL, err, sizeof(err)),
		-EINVAL);
	ck_assert_int_eq(config_load(NULL, &cfg, err, sizeof(err)), -EINVAL);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_flush_bytes_default);
	tcase_add_test(tc, test_engine_keys);
	tcase_add_test(tc, test_group);
	tcase_add_test(tc, test_store_keys);
	tcase_add_test(tc, test_syntax_accepted);
	tcase_add_test(tc, test_instance);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_builtin);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof(err_cases) / sizeof(err_cases[0])));
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_too_many_stores);
	tcase_add_test(tc, test_errbuf_and_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_load_missing);
	tcase_add_test(tc, test_load_bad_files);
	suite_add_tcase(s, tc);

	return s;
}
