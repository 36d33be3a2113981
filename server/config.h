/*
 * config.h - bufferengined's configuration: the INI file of DESIGN.md,
 * parsed with inih into plain structs, every value checked.
 *
 * Sizes take K/M/G (powers of 1024), durations ms/s/m/h/d (a bare number
 * is bytes or milliseconds).  An unknown key, a value out of range, a missing
 * required key or a duplicate store is an error that names the file, the
 * line and the key.
 */
#ifndef BE_CONFIG_H
#define BE_CONFIG_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "bufferengine.h"

#define CONFIG_MAX_STORES 256

enum cfg_sync { CFG_SYNC_BATCH = 0, CFG_SYNC_NONE = 1 };
enum cfg_on_full { CFG_ON_FULL_BLOCK = 0, CFG_ON_FULL_DROP = 1 };

struct cfg_store {
	char name[BE_NAME_MAX + 1];
	int type;                  /* enum be_type; required */
	uint64_t capacity;         /* power of two, 4 KiB .. 16 GiB; default 64M */
	uint64_t flush_bytes;      /* 1 .. capacity; default min(1M, capacity / 2) */
	uint64_t flush_interval_ms;/* 1 ms .. 1 h; default 1000 */
	int on_full;               /* enum cfg_on_full; default block */
	int sync;                  /* enum cfg_sync; default batch */
	uint64_t segment_bytes;    /* 64 KiB .. 1 TiB; default 64M */
	uint64_t retain_bytes;     /* 0: keep everything (default) */
	uint64_t retain_age_ms;    /* 0: keep everything (default); else closed
				      segments older than this are deleted */
	int line;                  /* line of the [store] section, for messages */
};

struct cfg_engine {
	char instance[BE_NAME_MAX + 1];  /* default "default" (or $BE_INSTANCE) */
	char data_dir[4096];             /* default /var/lib/bufferengine/<instance> */
	unsigned max_workers;            /* 1 .. 256; default 4 */
	uint64_t shutdown_flush_timeout_ms; /* default 30 s */
	uint64_t batch_bytes;            /* largest batch: 64 KiB .. 64 MiB; default 1M */
	uint32_t ring_mode;              /* octal, default 0660 */
	/* group = NAME or numeric gid: the group of the rings, the data
	 * directory and the store directories (resolved with getgrnam_r when
	 * the config is read; an unknown name is a config error).  Unset: the
	 * daemon's own group, and nothing is chowned. */
	char group[256];                 /* as written, for messages; "" when unset */
	int group_set;                   /* 1 when group was given */
	gid_t group_gid;                 /* the resolved gid (group_set only) */
};

struct config {
	struct cfg_engine engine;
	unsigned nstores;
	struct cfg_store stores[CONFIG_MAX_STORES];
};

/*
 * config_load() - parse a file into *cfg (defaults first).
 * @errbuf: receives one line "FILE:LINE: key 'K': what is wrong" on failure
 * Returns 0, or -EINVAL (a bad file: see errbuf), -errno opening it.
 */
int config_load(const char *path, struct config *cfg, char *errbuf, size_t errlen);

/* config_load_string() - the same over text in memory; `name` is used in messages. */
int config_load_string(const char *text, const char *name, struct config *cfg,
		       char *errbuf, size_t errlen);

/* The built-in config, used when bufferengined runs without -c: the demo's
 * stores with data_dir ./be-data (relative to the working directory). */
extern const char config_builtin[];

/* config_parse_size() / config_parse_duration_ms(): 0 or -EINVAL (also on overflow). */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration_ms(const char *s, uint64_t *out);

#endif /* BE_CONFIG_H */
