/* hotstuff/store.h - the KV backends shipped with the library (store/).
 *
 * Each open/new call returns an owned handle; the hs_kv_store it fills borrows that handle and
 * stays valid until the handle is closed. Close only after every replica using it stopped.
 */
#ifndef HOTSTUFF_STORE_H
#define HOTSTUFF_STORE_H

#include <stdbool.h>

#include "hotstuff/kv.h"

/* In-memory store: a persistent (path-copying) ordered tree, so a snapshot is O(1) and never
 * blocks the writer. For tests and simulation. */
typedef struct hs_mem_store hs_mem_store;
hs_mem_store *hs_mem_store_new(void);
void hs_mem_store_free(hs_mem_store *s);
hs_kv_store hs_mem_store_kv(hs_mem_store *s);
size_t hs_mem_store_count(hs_mem_store *s); /* number of keys (tests) */
/* Fault injection for tests: when fail_writes is set, write returns HS_ERR_IO and changes
 * nothing. */
void hs_mem_store_fail_writes(hs_mem_store *s, bool fail_writes);

/* LevelDB store: the durable default. Every batch is written with sync=true. */
typedef struct hs_leveldb_store hs_leveldb_store;
typedef struct hs_leveldb_options {
    bool create_if_missing;
    bool sync_writes;   /* true in production; tests may turn it off for speed */
    size_t cache_bytes; /* block cache; 0 = LevelDB's default */
    size_t write_buffer_bytes; /* memtable size; 0 = LevelDB's default (4 MiB) */
} hs_leveldb_options;
/* create, sync, 8 MiB cache, 16 MiB memtable. Compression is always off (see the .c). */
hs_leveldb_options hs_leveldb_options_default(void);
/* Returns HS_OK and sets *out, or an error status with *out NULL: HS_ERR_IO for lock and I/O
 * errors, HS_ERR_CORRUPT when LevelDB reports corruption (HS_ERR_INVALID for a bad argument,
 * HS_ERR_NOMEM). On failure writes LevelDB's message ("IO error: lock ...: already held by
 * process", "Corruption: ...") to err (truncated to errlen, always NUL-terminated). opt may be
 * NULL for hs_leveldb_options_default(). */
hs_status hs_leveldb_store_open(const char *path, const hs_leveldb_options *opt,
                                hs_leveldb_store **out, char *err, size_t errlen);
void hs_leveldb_store_close(hs_leveldb_store *s);
hs_kv_store hs_leveldb_store_kv(hs_leveldb_store *s);

#endif
