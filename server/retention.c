/*
 * retention.c - a store keeps at most retain_bytes of segments and none
 * older than retain_age: whole, closed segments are deleted oldest first,
 * never the one being written (nor any after it).  Each deletion is logged
 * and counted in the ring header.  Run after each rotation, at start, and
 * once a minute for the age limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/daemon.h"
#include "server/hooks.h"
#include "server/log.h"
#include "shm/atomics.h"
#include "shm/clock.h"
#include "shm/guard.h"

/* Count deletions in the ring header, which may be truncated under us. */
static void count_deleted(struct store *st, uint64_t n)
{
	struct guard_frame gf;

	if (!st->map.hdr || st->state == ST_STOPPED)
		return;
	GUARD_TRY(gf) {
		fetch_add_relaxed(&st->map.hdr->segments_deleted, n);
		GUARD_END(gf);
	}
}

void store_retain(struct store *st)
{
	uint64_t *seqs = NULL, total = 0, now = now_real_ns(), deleted = 0;
	uint64_t *sizes = NULL, *mtimes = NULL;
	int n, i;

	if (!st->cfg.retain_bytes && !st->cfg.retain_age_ms)
		return;
	n = seg_list(st->dirfd, &seqs);
	if (n <= 0)
		goto out;
	sizes = calloc((size_t)n, sizeof(*sizes));
	mtimes = calloc((size_t)n, sizeof(*mtimes));
	if (!sizes || !mtimes)
		goto out;
	for (i = 0; i < n; i++) {
		char name[SEG_NAME_LEN + 1];
		struct stat sb;

		seg_name(name, seqs[i]);
		if (fstatat(st->dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		sizes[i] = (uint64_t)sb.st_size;
		mtimes[i] = (uint64_t)sb.st_mtim.tv_sec * NSEC_PER_SEC + (uint64_t)sb.st_mtim.tv_nsec;
		total += sizes[i];
	}
	/* Oldest first; stop at the open segment, whatever the limits say. */
	for (i = 0; i < n; i++) {
		char name[SEG_NAME_LEN + 1];
		int too_big = st->cfg.retain_bytes && total > st->cfg.retain_bytes;
		int too_old = st->cfg.retain_age_ms &&
			      mtimes[i] + st->cfg.retain_age_ms * NSEC_PER_MSEC < now;

		if (st->segfd >= 0 && seqs[i] >= st->seg_first_seq)
			break;
		if (!too_big && !too_old)
			break;
		seg_name(name, seqs[i]);
		if (unlinkat(st->dirfd, name, 0) < 0) {
			log_msg(LL_ERR, st->cfg.name, "retention: cannot delete %s: %s", name,
				strerror(errno));
			break;
		}
		total -= sizes[i];
		deleted++;
		log_msg(LL_INFO, st->cfg.name, "retention: deleted %s (%llu bytes, %s)", name,
			(unsigned long long)sizes[i], too_big ? "over retain_bytes" : "over retain_age");
	}
	if (deleted) {
		if (!hook_no_fdatasync() && fsync(st->dirfd) < 0)
			log_msg(LL_WARN, st->cfg.name, "retention: directory sync failed: %s",
				strerror(errno));
		count_deleted(st, deleted);
	}
out:
	free(seqs);
	free(sizes);
	free(mtimes);
}
