/* core/bt_store.h - the block tree's key schema and stored-record codecs (spec §6.1-6.2),
 * shared by the readers (block_tree.c) and the writers (bt_write.c). Internal to libhotstuff.
 * The helpers are static inline so that both files use one definition without exporting them
 * from the library. */
#ifndef HS_CORE_BT_STORE_H
#define HS_CORE_BT_STORE_H

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "codec.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"


/* Bounds for decoding what this replica stored itself. The bytes were checked against the
 * configured limits when they arrived; applying the defaults again here would make a node
 * configured above them unable to read its own blocks. The decoders still never allocate more
 * than the stored value's length justifies. */
static inline hs_limits stored_limits(void) {
    hs_limits l = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX,
                   UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    return l;
}

#define MOD "block_tree"

/* ---- little-endian helpers ---- */

static inline void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t le32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline bool hash_eq(const hs_hash *a, const hs_hash *b) {
    return memcmp(a->b, b->b, HS_HASH_LEN) == 0;
}

/* ---- keys (spec §6.1-6.2); the longest is a datum key: 00 || hash || 04 || u32 ---- */

#define KEY_MAX (1 + HS_HASH_LEN + 1 + 4)

typedef struct bkey {
    uint8_t b[KEY_MAX];
    size_t len;
} bkey;

static inline bkey key_single(uint8_t prefix) {
    bkey k = {.len = 1};
    k.b[0] = prefix;
    return k;
}

/* prefix || hash: children list, pending app updates, VS-updates status. */
static inline bkey key_hash(uint8_t prefix, const hs_hash *h) {
    bkey k = {.len = 1 + HS_HASH_LEN};
    k.b[0] = prefix;
    memcpy(k.b + 1, h->b, HS_HASH_LEN);
    return k;
}

/* 00 || hash || field */
static inline bkey key_field(const hs_hash *h, uint8_t field) {
    bkey k = key_hash(HS_KEY_BLOCKS, h);
    k.b[k.len++] = field;
    return k;
}

/* 00 || hash || 04 || u32LE(i) */
static inline bkey key_datum(const hs_hash *h, uint32_t i) {
    bkey k = key_field(h, HS_BLOCK_FIELD_DATA);
    put_le32(k.b + k.len, i);
    k.len += 4;
    return k;
}

/* 01 || u64LE(height) */
static inline bkey key_height(uint64_t height) {
    bkey k = key_single(HS_KEY_BLOCK_AT_HEIGHT);
    put_le64(k.b + 1, height);
    k.len = 9;
    return k;
}

/* ---- raw reads and decoding ---- */

/* Logs a value that failed to decode, naming the key kind (and the block when there is one). */
static inline hs_status corrupt(const char *kind, const hs_hash *h) {
    if (h) {
        char b64[8];
        hs_b64_short(h->b, HS_HASH_LEN, b64);
        hs_log(HS_LOG_ERROR, MOD, "corrupt %s of block %s in the store", kind, b64);
    } else {
        hs_log(HS_LOG_ERROR, MOD, "corrupt %s in the store", kind);
    }
    return HS_ERR_CORRUPT;
}

/* HS_OK with *val malloc'd (free it), HS_NOT_FOUND, or the reader's error. */
static inline hs_status kv_get(const hs_kv_reader *r, const uint8_t *key, size_t klen, uint8_t **val,
                        size_t *vlen) {
    *val = NULL;
    *vlen = 0;
    hs_status st = r->get(r->self, key, klen, val, vlen);
    if (st != HS_OK) *val = NULL;
    return st;
}

static inline hs_status get_key(const hs_kv_reader *r, const bkey *k, uint8_t **val, size_t *vlen) {
    return kv_get(r, k->b, k->len, val, vlen);
}

/* A value of exactly n bytes (hashes and integers). */
static inline hs_status get_fixed(const hs_kv_reader *r, const bkey *k, const char *kind,
                           const hs_hash *h, void *out, size_t n) {
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, k, &v, &vlen);
    if (st != HS_OK) return st;
    if (vlen != n) st = corrupt(kind, h);
    else memcpy(out, v, n);
    free(v);
    return st;
}

static inline hs_status get_u64(const hs_kv_reader *r, const bkey *k, const char *kind,
                         const hs_hash *h, uint64_t *out) {
    uint8_t b[8];
    hs_status st = get_fixed(r, k, kind, h, b, sizeof b);
    if (st == HS_OK) *out = le64(b);
    return st;
}

/* Maps a decoder's HS_ERR_INVALID to corruption of the stored value. */
static inline hs_status decoded(hs_status st, const char *kind, const hs_hash *h) {
    return st == HS_ERR_INVALID ? corrupt(kind, h) : st;
}

static inline hs_status get_pc(const hs_kv_reader *r, const bkey *k, const char *kind, const hs_hash *h,
                        hs_pc *out) {
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, k, &v, &vlen);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    st = hs_decode_pc(v, vlen, &lim, out);
    free(v);
    return decoded(st, kind, h);
}

static inline hs_status get_vs(const hs_kv_reader *r, const bkey *k, const char *kind,
                        hs_validator_set *out) {
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, k, &v, &vlen);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    st = hs_decode_vs(v, vlen, &lim, out);
    free(v);
    return decoded(st, kind, NULL);
}

/* A raw byte string value (datums, committed app state). */
static inline hs_status get_bytes_value(const hs_kv_reader *r, const uint8_t *key, size_t klen,
                                 const char *kind, const hs_hash *h, hs_bytes *out) {
    uint8_t *v;
    size_t vlen;
    hs_status st = kv_get(r, key, klen, &v, &vlen);
    if (st != HS_OK) return st;
    if (vlen > UINT32_MAX) {
        free(v);
        return corrupt(kind, h);
    }
    out->p = v;
    out->len = (uint32_t)vlen;
    return HS_OK;
}

/* 03 || key, in a caller-owned buffer. */
static inline hs_status app_state_key(hs_buf *kb, const uint8_t *key, size_t klen) {
    hs_buf_reset(kb);
    hs_put_u8(kb, HS_KEY_COMMITTED_APP_STATE);
    hs_put_raw(kb, key, klen);
    return kb->oom ? HS_ERR_NOMEM : HS_OK;
}

/* The VALIDATOR_SET_UPDATES_STATUS value's leading tag (spec §6.1). */
enum { VSU_TAG_NONE = 0, VSU_TAG_PENDING = 1, VSU_TAG_COMMITTED = 2 };

/* ---- growable array of hashes for the walks (explicit stacks, no recursion) ---- */

/* ---- growable arrays for the walks ---- */

typedef struct hash_vec {
    hs_hash *v;
    size_t n, cap;
} hash_vec;

static inline hs_status hash_vec_push(hash_vec *a, const hs_hash *h) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        hs_hash *v = realloc(a->v, cap * sizeof *v);
        if (!v) return HS_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *h;
    return HS_OK;
}

static inline void hash_vec_free(hash_vec *a) {
    free(a->v);
    *a = (hash_vec){0};
}

/* One step down the justify chain: *cur becomes the block its justify names, and *genesis
 * says the justify was the genesis PC (then *cur is left alone). `missing` names a lost justify
 * in the corruption log; a self link is corruption too (a walk would never end). */
static inline hs_status bt_step_down(const hs_kv_reader *r, hs_hash *cur, bool *genesis,
                                     const char *missing) {
    hs_pc j = {0};
    hs_status st = hs_bt_block_justify(r, cur, &j);
    if (st == HS_NOT_FOUND) st = corrupt(missing, cur);
    if (st != HS_OK) return st;
    *genesis = hs_pc_is_genesis(&j);
    hs_hash next = j.block;
    hs_pc_free(&j);
    if (*genesis) return HS_OK;
    if (hash_eq(&next, cur)) return corrupt("block justify (self link)", cur);
    *cur = next;
    return HS_OK;
}

#endif
