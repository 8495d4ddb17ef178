/* hotstuff/kv.h - the KVStore interface (spec §8.2) and its write batch.
 *
 * The library writes only through hs_kv_store.write with one batch per protocol step, and
 * relies on each batch being applied atomically and, for a durable backend, being on stable
 * storage when write returns: the protocol sends messages that depend on the batch right after.
 */
#ifndef HOTSTUFF_KV_H
#define HOTSTUFF_KV_H

#include <stddef.h>
#include <stdint.h>

#include "hotstuff/status.h"

/* ---- write batch: an ordered list of puts and deletes; the last op on a key wins ---- */
typedef struct hs_write_batch hs_write_batch;

typedef enum hs_kv_op { HS_KV_PUT = 0, HS_KV_DELETE = 1 } hs_kv_op;

/* Returns NULL on allocation failure. The caller owns the batch. */
hs_write_batch *hs_batch_new(void);
void hs_batch_free(hs_write_batch *b);
void hs_batch_clear(hs_write_batch *b);
/* Copies key and value. */
hs_status hs_batch_put(hs_write_batch *b, const uint8_t *key, size_t klen, const uint8_t *val,
                       size_t vlen);
hs_status hs_batch_delete(hs_write_batch *b, const uint8_t *key, size_t klen);
size_t hs_batch_count(const hs_write_batch *b);
/* Visits the ops in insertion order; stops at and returns the first non-OK status of fn. For a
 * delete, val is NULL and vlen 0. */
typedef hs_status (*hs_batch_visit_fn)(void *ctx, hs_kv_op op, const uint8_t *key, size_t klen,
                                       const uint8_t *val, size_t vlen);
hs_status hs_batch_iterate(const hs_write_batch *b, hs_batch_visit_fn fn, void *ctx);
/* Looks up the effective op of the batch for key (the last one): HS_OK with *op (and for a put
 * *val,*vlen pointing into the batch), or HS_NOT_FOUND if the batch does not touch key. */
hs_status hs_batch_lookup(const hs_write_batch *b, const uint8_t *key, size_t klen, hs_kv_op *op,
                          const uint8_t **val, size_t *vlen);

/* ---- readers ---- */

/* get: HS_OK with *val malloc'd (caller frees with free(); NULL allowed when *vlen == 0 only
 * if the backend says so - callers must free whatever is returned), HS_NOT_FOUND, or an error
 * (HS_ERR_IO, HS_ERR_CORRUPT) carrying the backend's failure. */
typedef hs_status (*hs_kv_get_fn)(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                                  size_t *vlen);

/* A read-only view: the live store, or a snapshot that never changes while held. */
typedef struct hs_kv_reader {
    void *self;
    hs_kv_get_fn get;
} hs_kv_reader;

/* The store. Thread-safe: one writer (the algorithm thread) and any number of readers. */
typedef struct hs_kv_store {
    void *self;
    hs_kv_get_fn get;
    /* Applies the whole batch atomically (all or nothing) and durably before returning. */
    hs_status (*write)(void *self, const hs_write_batch *b);
    /* Opens a consistent snapshot; release it with release_snapshot. */
    hs_status (*snapshot)(void *self, hs_kv_reader *out);
    void (*release_snapshot)(void *self, hs_kv_reader *snap);
} hs_kv_store;

/* The store's live state as a reader. */
static inline hs_kv_reader hs_kv_store_reader(const hs_kv_store *s) {
    hs_kv_reader r = {s->self, s->get};
    return r;
}

#endif
