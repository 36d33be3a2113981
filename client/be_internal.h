/*
 * be_internal.h - what client/be.c lends the rest of the library (the typed
 * writes of client/typed.c), and nothing the public header shows.
 *
 * These names are global in libbufferengine.a but not exported from the
 * shared library: its version script exports be_* only, which is why they
 * are not called be_*.
 */
#ifndef BE_CLIENT_INTERNAL_H
#define BE_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "bufferengine.h"
#include "shm/ring.h"

/*
 * client_append() - append one encoded payload of a record type, as
 * be_write() does (the handle's write timeout, the cached pid, the
 * handle's last seq updated for be_flush), with ts_ns in the record's
 * header.  The caller has checked the store's type.  Returns 0 or the
 * errors of be_write().
 */
int client_append(be_store *s, uint16_t type, const void *payload, size_t len, uint64_t ts_ns);

/*
 * client_append_many() - the same for n records of one type under one lock
 * (ring_append_many()): returns the count appended, or -errno when none
 * was; the handle's last seq covers every record appended.
 */
int client_append_many(be_store *s, uint16_t type, const struct iovec *iov, size_t n,
			uint64_t ts_ns);

#endif /* BE_CLIENT_INTERNAL_H */
