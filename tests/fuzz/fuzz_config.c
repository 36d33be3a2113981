/*
 * fuzz_config.c - the daemon's config parser (server/config.c:
 * config_load_string) on arbitrary text.
 *
 * Input: the text (cut at the first NUL, as a C string is).  When the
 * first byte is 0xf0..0xff, its low four bits are the size of the error
 * buffer (0..15, in a buffer of exactly that size) and the text follows;
 * otherwise the error buffer is 256 bytes.
 *
 * Accepted: every value within its documented range (config.h), at least
 * one store, names valid and distinct, flush_bytes within the capacity,
 * data_dir set.  Refused: -EINVAL, a zeroed struct config, and one line
 * "<name>:LINE: ..." in the error buffer (cut to its size, NUL-terminated).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bufferengine.h"
#include "server/config.h"
#include "shm/layout.h"
#include "shm/ring.h"
#include "tests/fuzz/fuzz_util.h"

#define NAME "fuzz.conf"

static struct config cfg; /* tens of KiB: not on the stack */
static struct config zero;

static void check_valid(const struct config *c)
{
	const struct cfg_engine *e = &c->engine;

	FUZZ_ASSERT(memchr(e->instance, 0, sizeof(e->instance)) && ring_name_valid(e->instance));
	FUZZ_ASSERT(memchr(e->data_dir, 0, sizeof(e->data_dir)) && e->data_dir[0]);
	FUZZ_ASSERT(e->max_workers >= 1 && e->max_workers <= 256);
	FUZZ_ASSERT(e->shutdown_flush_timeout_ms <= UINT64_C(3600) * 1000);
	FUZZ_ASSERT(e->batch_bytes >= 64 * 1024 && e->batch_bytes <= 64 << 20);
	FUZZ_ASSERT((e->ring_mode & ~0777u) == 0 && (e->ring_mode & 0600) == 0600);
	FUZZ_ASSERT(c->nstores >= 1 && c->nstores <= CONFIG_MAX_STORES);
	for (unsigned i = 0; i < c->nstores; i++) {
		const struct cfg_store *s = &c->stores[i];

		FUZZ_ASSERT(memchr(s->name, 0, sizeof(s->name)) && ring_name_valid(s->name));
		for (unsigned j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(s->name, c->stores[j].name) != 0);
		FUZZ_ASSERT(s->type >= BE_TYPE_RAW && s->type <= BE_TYPE_PROCESS);
		FUZZ_ASSERT(s->capacity >= RING_CAP_MIN && s->capacity <= RING_CAP_MAX);
		FUZZ_ASSERT((s->capacity & (s->capacity - 1)) == 0);
		FUZZ_ASSERT(s->flush_bytes >= 1 && s->flush_bytes <= s->capacity);
		FUZZ_ASSERT(s->flush_interval_ms >= 1 &&
			    s->flush_interval_ms <= UINT64_C(3600) * 1000);
		FUZZ_ASSERT(s->on_full == CFG_ON_FULL_BLOCK || s->on_full == CFG_ON_FULL_DROP);
		FUZZ_ASSERT(s->sync == CFG_SYNC_BATCH || s->sync == CFG_SYNC_NONE);
		FUZZ_ASSERT(s->segment_bytes >= 64 * 1024 && s->segment_bytes <= UINT64_C(1) << 40);
		FUZZ_ASSERT(s->retain_age_ms <= UINT64_C(3650) * 86400 * 1000);
		FUZZ_ASSERT(s->line >= 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t errlen = 256, skip = 0;
	char *text, *err;
	int ret;

	if (size > (size_t)1 << 20)
		return 0;
	if (size && data[0] >= 0xf0) {
		errlen = data[0] & 0x0f;
		skip = 1;
	}
	text = fuzz_malloc(size - skip + 1);
	memcpy(text, data + skip, size - skip);
	text[size - skip] = 0;
	err = malloc(errlen);
	if (errlen) {
		FUZZ_ASSERT(err != NULL);
		memset(err, 'E', errlen);
	}

	memset(&cfg, 0x5a, sizeof(cfg));
	ret = config_load_string(text, NAME, &cfg, err, errlen);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0) {
		check_valid(&cfg);
		if (errlen)
			FUZZ_ASSERT(err[0] == 0);
	} else {
		FUZZ_ASSERT(memcmp(&cfg, &zero, sizeof(cfg)) == 0);
		if (errlen) {
			size_t n = strnlen(err, errlen);

			FUZZ_ASSERT(n < errlen); /* NUL-terminated within its size */
			FUZZ_ASSERT(!memchr(err, '\n', n));
			/* "fuzz.conf:LINE: ..." as far as the buffer goes. */
			FUZZ_ASSERT(strncmp(err, NAME ":", n < sizeof(NAME) ? n : sizeof(NAME)) ==
				    0);
			if (errlen == 256)
				FUZZ_ASSERT(n > sizeof(NAME));
		}
	}
	free(err);
	free(text);
	return 0;
}
