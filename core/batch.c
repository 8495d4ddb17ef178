/* batch.c - hs_write_batch: an ordered list of puts and deletes (spec §8.2).
 *
 * The ops are kept in insertion order for hs_batch_iterate. Next to them an open-addressing hash
 * index maps every distinct key to the LAST op on it, so hs_batch_lookup (which the block tree
 * uses to read its own pending writes) is O(1) expected even for the thousands of ops a pruning
 * step can produce.
 *
 * Invariants:
 *   - every op owns one allocation holding its key followed by its value;
 *   - slots[i] is 0 (empty) or 1 + the index of the last op on some key; no two slots name ops
 *     on equal keys; nkeys counts the used slots and stays <= nslots / 2;
 *   - nslots is 0 (no index yet) or a power of two.
 * The index never deletes slots (ops are never removed one by one), so probing needs no
 * tombstones.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/kv.h"

typedef struct batch_op {
    hs_kv_op kind;
    uint64_t hash; /* of the key: lets the index grow without rehashing the bytes */
    size_t klen, vlen;
    uint8_t *buf; /* key bytes, then value bytes; never NULL */
} batch_op;

struct hs_write_batch {
    batch_op *ops;
    size_t n, cap;
    size_t *slots; /* see the invariants above */
    size_t nslots, nkeys;
};

#define MIN_SLOTS 16

/* FNV-1a over the bytes, then a 64-bit finalizer so the low bits (used as the slot index) depend
 * on every input byte. Keys are produced by the library itself, not chosen by peers, so a fixed
 * unkeyed hash is adequate. */
static uint64_t key_hash(const uint8_t *k, size_t klen) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < klen; i++) {
        h ^= k[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static int op_has_key(const batch_op *op, uint64_t h, const uint8_t *k, size_t klen) {
    return op->hash == h && op->klen == klen && (klen == 0 || memcmp(op->buf, k, klen) == 0);
}

/* Returns the slot holding key, or the empty slot where it would go. Requires nslots > 0 and a
 * free slot somewhere (guaranteed by the load-factor invariant). */
static size_t find_slot(const hs_write_batch *b, uint64_t h, const uint8_t *k, size_t klen) {
    size_t mask = b->nslots - 1;
    size_t i = (size_t)h & mask;
    for (;;) {
        size_t s = b->slots[i];
        if (s == 0 || op_has_key(&b->ops[s - 1], h, k, klen)) return i;
        i = (i + 1) & mask; /* linear probing */
    }
}

/* Rebuilds the index with nslots entries from the ops' stored hashes. */
static hs_status index_resize(hs_write_batch *b, size_t nslots) {
    size_t *old = b->slots;
    size_t oldn = b->nslots;
    size_t *slots = calloc(nslots, sizeof *slots);
    if (!slots) return HS_ERR_NOMEM;
    b->slots = slots;
    b->nslots = nslots;
    for (size_t i = 0; i < oldn; i++) {
        size_t s = old[i];
        if (s == 0) continue;
        size_t mask = nslots - 1, j = (size_t)b->ops[s - 1].hash & mask;
        while (slots[j] != 0) j = (j + 1) & mask;
        slots[j] = s;
    }
    free(old);
    return HS_OK;
}

hs_write_batch *hs_batch_new(void) { return calloc(1, sizeof(hs_write_batch)); }

void hs_batch_clear(hs_write_batch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) free(b->ops[i].buf);
    b->n = 0;
    b->nkeys = 0;
    /* Keep the capacity: a batch is typically cleared and refilled for the next step. */
    if (b->nslots) memset(b->slots, 0, b->nslots * sizeof *b->slots);
}

void hs_batch_free(hs_write_batch *b) {
    if (!b) return;
    hs_batch_clear(b);
    free(b->ops);
    free(b->slots);
    free(b);
}

size_t hs_batch_count(const hs_write_batch *b) { return b ? b->n : 0; }

/* Appends one op; on any failure the batch is left exactly as it was. */
static hs_status batch_add(hs_write_batch *b, hs_kv_op kind, const uint8_t *key, size_t klen,
                           const uint8_t *val, size_t vlen) {
    if (!b || (!key && klen) || (!val && vlen)) return HS_ERR_INVALID;
    if (klen > SIZE_MAX / 2 || vlen > SIZE_MAX / 2 - klen) return HS_ERR_LIMIT;

    /* Reserve everything first so that nothing can fail after the batch starts changing. */
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof *b->ops) return HS_ERR_NOMEM;
        batch_op *ops = realloc(b->ops, cap * sizeof *ops);
        if (!ops) return HS_ERR_NOMEM;
        b->ops = ops;
        b->cap = cap;
    }
    if ((b->nkeys + 1) * 2 > b->nslots) {
        size_t n = b->nslots ? b->nslots * 2 : MIN_SLOTS;
        if (n > SIZE_MAX / sizeof *b->slots) return HS_ERR_NOMEM;
        hs_status st = index_resize(b, n);
        if (st != HS_OK) return st;
    }
    uint8_t *buf = malloc(klen + vlen ? klen + vlen : 1);
    if (!buf) return HS_ERR_NOMEM;
    if (klen) memcpy(buf, key, klen);
    if (vlen) memcpy(buf + klen, val, vlen);

    uint64_t h = key_hash(key, klen);
    size_t slot = find_slot(b, h, key, klen);
    if (b->slots[slot] == 0) b->nkeys++;
    b->slots[slot] = b->n + 1; /* this op is now the last one on key */
    b->ops[b->n++] = (batch_op){kind, h, klen, vlen, buf};
    assert(b->nkeys * 2 <= b->nslots);
    return HS_OK;
}

hs_status hs_batch_put(hs_write_batch *b, const uint8_t *key, size_t klen, const uint8_t *val,
                       size_t vlen) {
    return batch_add(b, HS_KV_PUT, key, klen, val, vlen);
}

hs_status hs_batch_delete(hs_write_batch *b, const uint8_t *key, size_t klen) {
    return batch_add(b, HS_KV_DELETE, key, klen, NULL, 0);
}

hs_status hs_batch_iterate(const hs_write_batch *b, hs_batch_visit_fn fn, void *ctx) {
    if (!b || !fn) return HS_ERR_INVALID;
    for (size_t i = 0; i < b->n; i++) {
        const batch_op *op = &b->ops[i];
        hs_status st;
        if (op->kind == HS_KV_PUT)
            st = fn(ctx, HS_KV_PUT, op->buf, op->klen, op->buf + op->klen, op->vlen);
        else
            st = fn(ctx, HS_KV_DELETE, op->buf, op->klen, NULL, 0);
        if (st != HS_OK) return st;
    }
    return HS_OK;
}

hs_status hs_batch_lookup(const hs_write_batch *b, const uint8_t *key, size_t klen, hs_kv_op *op,
                          const uint8_t **val, size_t *vlen) {
    if (!b || (!key && klen) || !op) return HS_ERR_INVALID;
    if (b->nkeys == 0) return HS_NOT_FOUND;
    size_t s = b->slots[find_slot(b, key_hash(key, klen), key, klen)];
    if (s == 0) return HS_NOT_FOUND;
    const batch_op *o = &b->ops[s - 1];
    *op = o->kind;
    if (val) *val = o->kind == HS_KV_PUT ? o->buf + o->klen : NULL;
    if (vlen) *vlen = o->kind == HS_KV_PUT ? o->vlen : 0;
    return HS_OK;
}
