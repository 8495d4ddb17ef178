/* core/block_tree.c - the persistent block tree (spec §6).
 *
 *   - getters over an hs_kv_reader, one per key of the schema (spec §6.1-6.2, §6.7);
 *   - Block Sync's range read, blocks_from_height_to_newest (spec §5.1);
 *   - the App's speculative view (spec §6.6);
 *   - the writers: initialize (§6.5), insert (§6.3), update with commit and pruning (§3.5,
 *     §6.4) and the three single-key setters. Each writer builds ONE hs_write_batch.
 *
 * Stored bytes are treated as possibly damaged: a value that fails to decode is HS_ERR_CORRUPT
 * plus a log line naming the key kind, never a crash. Walks over justify links and children
 * lists use explicit arrays, not recursion: a Byzantine leader can build deep branches.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "codec.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "safety.h"

/* Bounds for decoding what this replica stored itself. The bytes were checked against the
 * configured limits when they arrived; applying the defaults again here would make a node
 * configured above them unable to read its own blocks. The decoders still never allocate more
 * than the stored value's length justifies. */
static hs_limits stored_limits(void) {
    hs_limits l = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX,
                   UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    return l;
}

#define MOD "block_tree"

/* ---- little-endian helpers ---- */

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t le32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static bool hash_eq(const hs_hash *a, const hs_hash *b) {
    return memcmp(a->b, b->b, HS_HASH_LEN) == 0;
}

/* ---- keys (spec §6.1-6.2); the longest is a datum key: 00 || hash || 04 || u32 ---- */

#define KEY_MAX (1 + HS_HASH_LEN + 1 + 4)

typedef struct bkey {
    uint8_t b[KEY_MAX];
    size_t len;
} bkey;

static bkey key_single(uint8_t prefix) {
    bkey k = {.len = 1};
    k.b[0] = prefix;
    return k;
}

/* prefix || hash: children list, pending app updates, VS-updates status. */
static bkey key_hash(uint8_t prefix, const hs_hash *h) {
    bkey k = {.len = 1 + HS_HASH_LEN};
    k.b[0] = prefix;
    memcpy(k.b + 1, h->b, HS_HASH_LEN);
    return k;
}

/* 00 || hash || field */
static bkey key_field(const hs_hash *h, uint8_t field) {
    bkey k = key_hash(HS_KEY_BLOCKS, h);
    k.b[k.len++] = field;
    return k;
}

/* 00 || hash || 04 || u32LE(i) */
static bkey key_datum(const hs_hash *h, uint32_t i) {
    bkey k = key_field(h, HS_BLOCK_FIELD_DATA);
    put_le32(k.b + k.len, i);
    k.len += 4;
    return k;
}

/* 01 || u64LE(height) */
static bkey key_height(uint64_t height) {
    bkey k = key_single(HS_KEY_BLOCK_AT_HEIGHT);
    put_le64(k.b + 1, height);
    k.len = 9;
    return k;
}

/* ---- raw reads and decoding ---- */

/* Logs a value that failed to decode, naming the key kind (and the block when there is one). */
static hs_status corrupt(const char *kind, const hs_hash *h) {
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
static hs_status kv_get(const hs_kv_reader *r, const uint8_t *key, size_t klen, uint8_t **val,
                        size_t *vlen) {
    *val = NULL;
    *vlen = 0;
    hs_status st = r->get(r->self, key, klen, val, vlen);
    if (st != HS_OK) *val = NULL;
    return st;
}

static hs_status get_key(const hs_kv_reader *r, const bkey *k, uint8_t **val, size_t *vlen) {
    return kv_get(r, k->b, k->len, val, vlen);
}

/* A value of exactly n bytes (hashes and integers). */
static hs_status get_fixed(const hs_kv_reader *r, const bkey *k, const char *kind,
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

static hs_status get_u64(const hs_kv_reader *r, const bkey *k, const char *kind,
                         const hs_hash *h, uint64_t *out) {
    uint8_t b[8];
    hs_status st = get_fixed(r, k, kind, h, b, sizeof b);
    if (st == HS_OK) *out = le64(b);
    return st;
}

/* Maps a decoder's HS_ERR_INVALID to corruption of the stored value. */
static hs_status decoded(hs_status st, const char *kind, const hs_hash *h) {
    return st == HS_ERR_INVALID ? corrupt(kind, h) : st;
}

static hs_status get_pc(const hs_kv_reader *r, const bkey *k, const char *kind, const hs_hash *h,
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

static hs_status get_vs(const hs_kv_reader *r, const bkey *k, const char *kind,
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
static hs_status get_bytes_value(const hs_kv_reader *r, const uint8_t *key, size_t klen,
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

/* ---- block getters (spec §6.2) ---- */

hs_status hs_bt_contains(const hs_kv_reader *r, const hs_hash *h, bool *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    *out = st == HS_OK;
    free(v);
    return st == HS_NOT_FOUND ? HS_OK : st;
}

hs_status hs_bt_block_height(const hs_kv_reader *r, const hs_hash *h, uint64_t *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    return get_u64(r, &k, "block height", h, out);
}

hs_status hs_bt_block_justify(const hs_kv_reader *r, const hs_hash *h, hs_pc *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_JUSTIFY);
    return get_pc(r, &k, "block justify", h, out);
}

hs_status hs_bt_block_data_hash(const hs_kv_reader *r, const hs_hash *h, hs_hash *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_DATA_HASH);
    return get_fixed(r, &k, "block data hash", h, out->b, HS_HASH_LEN);
}

hs_status hs_bt_block_data_len(const hs_kv_reader *r, const hs_hash *h, uint32_t *out) {
    bkey k = key_field(h, HS_BLOCK_FIELD_DATA_LEN);
    uint8_t b[4];
    hs_status st = get_fixed(r, &k, "block data length", h, b, sizeof b);
    if (st == HS_OK) *out = le32(b);
    return st;
}

hs_status hs_bt_block_datum(const hs_kv_reader *r, const hs_hash *h, uint32_t i, hs_bytes *out) {
    bkey k = key_datum(h, i);
    return get_bytes_value(r, k.b, k.len, "block datum", h, out);
}

/* All datums 0..len-1; every one must exist (spec §6.2, §14.3: the C port returns them all). */
hs_status hs_bt_block_data(const hs_kv_reader *r, const hs_hash *h, hs_data *out) {
    uint32_t n;
    hs_status st = hs_bt_block_data_len(r, h, &n);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    if (n > lim.max_datums) return corrupt("block data length", h);
    hs_data d = {0};
    if (n) {
        d.items = calloc(n, sizeof *d.items);
        if (!d.items) return HS_ERR_NOMEM;
        d.n = n;
    }
    for (uint32_t i = 0; i < n; i++) {
        st = hs_bt_block_datum(r, h, i, &d.items[i]);
        if (st == HS_NOT_FOUND) st = corrupt("block datum (missing)", h);
        if (st != HS_OK) {
            hs_data_free(&d);
            return st;
        }
    }
    *out = d;
    return HS_OK;
}

/* The whole block. Absent height key: HS_NOT_FOUND; a block with only some of its keys is
 * corrupt (insert and prune write and delete them together). */
hs_status hs_bt_block(const hs_kv_reader *r, const hs_hash *h, hs_block *out) {
    hs_block b = {0};
    b.hash = *h;
    hs_status st = hs_bt_block_height(r, h, &b.height);
    if (st != HS_OK) return st;
    st = hs_bt_block_justify(r, h, &b.justify);
    if (st == HS_NOT_FOUND) st = corrupt("block justify (missing)", h);
    if (st == HS_OK) {
        st = hs_bt_block_data_hash(r, h, &b.data_hash);
        if (st == HS_NOT_FOUND) st = corrupt("block data hash (missing)", h);
    }
    if (st == HS_OK) {
        st = hs_bt_block_data(r, h, &b.data);
        if (st == HS_NOT_FOUND) st = corrupt("block data length (missing)", h);
    }
    if (st != HS_OK) {
        hs_block_free(&b);
        return st;
    }
    *out = b;
    return HS_OK;
}

hs_status hs_bt_block_at_height(const hs_kv_reader *r, uint64_t height, hs_hash *out) {
    bkey k = key_height(height);
    return get_fixed(r, &k, "block at height", NULL, out->b, HS_HASH_LEN);
}

hs_status hs_bt_children(const hs_kv_reader *r, const hs_hash *h, hs_hash **out, uint32_t *n) {
    *out = NULL;
    *n = 0;
    bkey k = key_hash(HS_KEY_BLOCK_TO_CHILDREN, h);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st == HS_NOT_FOUND) return HS_OK; /* absent: no children */
    if (st != HS_OK) return st;
    hs_rd rd;
    hs_rd_init(&rd, v, vlen);
    /* The count cannot exceed what the value holds; the bound only stops a bogus allocation. */
    uint32_t max = vlen / HS_HASH_LEN > UINT32_MAX ? UINT32_MAX : (uint32_t)(vlen / HS_HASH_LEN);
    st = hs_dec_hashes(&rd, max, out, n);
    if (st == HS_OK && !hs_rd_done(&rd)) {
        free(*out);
        *out = NULL;
        *n = 0;
        st = HS_ERR_INVALID;
    }
    free(v);
    return decoded(st, "children list", h);
}

/* ---- app state, VS status, validator sets (spec §6.2) ---- */

/* 03 || key, in a caller-owned buffer. */
static hs_status app_state_key(hs_buf *kb, const uint8_t *key, size_t klen) {
    hs_buf_reset(kb);
    hs_put_u8(kb, HS_KEY_COMMITTED_APP_STATE);
    hs_put_raw(kb, key, klen);
    return kb->oom ? HS_ERR_NOMEM : HS_OK;
}

hs_status hs_bt_committed_app_state(const hs_kv_reader *r, const uint8_t *key, size_t klen,
                                    hs_bytes *out) {
    hs_buf kb;
    hs_buf_init(&kb);
    hs_status st = app_state_key(&kb, key, klen);
    if (st == HS_OK) st = get_bytes_value(r, kb.p, kb.len, "committed app state", NULL, out);
    hs_buf_free(&kb);
    return st;
}

hs_status hs_bt_pending_app_updates(const hs_kv_reader *r, const hs_hash *h, hs_app_updates *out) {
    bkey k = key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, h);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    hs_rd rd;
    hs_rd_init(&rd, v, vlen);
    st = hs_dec_app_updates(&rd, &lim, out);
    if (st == HS_OK && !hs_rd_done(&rd)) {
        hs_app_updates_free(out);
        st = HS_ERR_INVALID;
    }
    free(v);
    return decoded(st, "pending app state updates", h);
}

/* VS-updates status tags (spec §6.2). */
enum { VSU_TAG_NONE = 0, VSU_TAG_PENDING = 1, VSU_TAG_COMMITTED = 2 };

hs_status hs_bt_vsu_status(const hs_kv_reader *r, const hs_hash *h, hs_vsu_status *status,
                           hs_vs_updates *pending) {
    *status = HS_VSU_NONE;
    bkey k = key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, h);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st == HS_NOT_FOUND) return HS_OK; /* absent => None */
    if (st != HS_OK) return st;
    st = HS_ERR_INVALID;
    if (vlen == 1 && v[0] == VSU_TAG_NONE) {
        st = HS_OK;
    } else if (vlen == 1 && v[0] == VSU_TAG_COMMITTED) {
        *status = HS_VSU_COMMITTED;
        st = HS_OK;
    } else if (vlen >= 1 && v[0] == VSU_TAG_PENDING) {
        hs_limits lim = stored_limits();
        hs_vs_updates u = {0};
        hs_rd rd;
        hs_rd_init(&rd, v + 1, vlen - 1);
        st = hs_dec_vs_updates(&rd, &lim, &u);
        if (st == HS_OK && !hs_rd_done(&rd)) st = HS_ERR_INVALID;
        if (st == HS_OK) {
            *status = HS_VSU_PENDING;
            if (pending) {
                *pending = u;
                u = (hs_vs_updates){0};
            }
        }
        hs_vs_updates_free(&u);
    }
    free(v);
    return decoded(st, "validator set updates status", h);
}

hs_status hs_bt_committed_vs(const hs_kv_reader *r, hs_validator_set *out) {
    bkey k = key_single(HS_KEY_COMMITTED_VALIDATOR_SET);
    return get_vs(r, &k, "committed validator set", out);
}

hs_status hs_bt_previous_vs(const hs_kv_reader *r, hs_validator_set *out) {
    bkey k = key_single(HS_KEY_PREVIOUS_VALIDATOR_SET);
    return get_vs(r, &k, "previous validator set", out);
}

hs_status hs_bt_vs_update_height(const hs_kv_reader *r, uint64_t *out) {
    bkey k = key_single(HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT);
    return get_u64(r, &k, "validator set update block height", NULL, out);
}

hs_status hs_bt_vs_update_decided(const hs_kv_reader *r, bool *out) {
    bkey k = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    uint8_t b;
    hs_status st = get_fixed(r, &k, "validator set update decided", NULL, &b, 1);
    if (st != HS_OK) return st;
    if (b > 1) return corrupt("validator set update decided", NULL); /* Borsh bool */
    *out = b == 1;
    return HS_OK;
}

hs_status hs_bt_vss(const hs_kv_reader *r, hs_vss *out) {
    hs_vss s = {0};
    hs_status st = hs_bt_committed_vs(r, &s.committed);
    if (st == HS_OK) st = hs_bt_previous_vs(r, &s.previous);
    if (st == HS_OK) {
        st = hs_bt_vs_update_height(r, &s.update_height);
        s.has_update_height = st == HS_OK;
        if (st == HS_NOT_FOUND) st = HS_OK; /* absent => None */
    }
    if (st == HS_OK) st = hs_bt_vs_update_decided(r, &s.update_decided);
    if (st != HS_OK) {
        hs_vss_free(&s);
        return st;
    }
    *out = s;
    return HS_OK;
}

/* ---- the singletons (spec §6.2) ---- */

hs_status hs_bt_vs_update_commit_pc(const hs_kv_reader *r, const hs_hash *h, hs_pc *out) {
    bkey k = key_hash(HS_KEY_VS_UPDATE_COMMIT_PC, h);
    return get_pc(r, &k, "VS update commit PC", h, out);
}

hs_status hs_bt_locked_pc(const hs_kv_reader *r, hs_pc *out) {
    bkey k = key_single(HS_KEY_LOCKED_PC);
    return get_pc(r, &k, "locked PC", NULL, out);
}

hs_status hs_bt_highest_pc(const hs_kv_reader *r, hs_pc *out) {
    bkey k = key_single(HS_KEY_HIGHEST_PC);
    return get_pc(r, &k, "highest PC", NULL, out);
}

hs_status hs_bt_highest_tc(const hs_kv_reader *r, hs_tc *out) {
    bkey k = key_single(HS_KEY_HIGHEST_TC);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(r, &k, &v, &vlen);
    if (st != HS_OK) return st;
    hs_limits lim = stored_limits();
    st = hs_decode_tc(v, vlen, &lim, out);
    free(v);
    return decoded(st, "highest TC", NULL);
}

hs_status hs_bt_highest_view_entered(const hs_kv_reader *r, uint64_t *out) {
    bkey k = key_single(HS_KEY_HIGHEST_VIEW_ENTERED);
    return get_u64(r, &k, "highest view entered", NULL, out);
}

hs_status hs_bt_highest_view_phase_voted(const hs_kv_reader *r, uint64_t *out) {
    bkey k = key_single(HS_KEY_HIGHEST_VIEW_PHASE_VOTED);
    return get_u64(r, &k, "highest view phase voted", NULL, out);
}

hs_status hs_bt_highest_committed_block(const hs_kv_reader *r, hs_hash *out) {
    bkey k = key_single(HS_KEY_HIGHEST_COMMITTED_BLOCK);
    return get_fixed(r, &k, "highest committed block", NULL, out->b, HS_HASH_LEN);
}

hs_status hs_bt_newest_block(const hs_kv_reader *r, hs_hash *out) {
    bkey k = key_single(HS_KEY_NEWEST_BLOCK);
    return get_fixed(r, &k, "newest block", NULL, out->b, HS_HASH_LEN);
}

hs_status hs_bt_highest_committed_height(const hs_kv_reader *r, uint64_t *out) {
    hs_hash h;
    hs_status st = hs_bt_highest_committed_block(r, &h);
    if (st != HS_OK) return st;
    st = hs_bt_block_height(r, &h, out);
    /* A committed block is never pruned: its absence is damage, not "nothing committed". */
    if (st == HS_NOT_FOUND) st = corrupt("highest committed block (block missing)", &h);
    return st;
}

/* ---- growable arrays for the walks ---- */

typedef struct hash_vec {
    hs_hash *v;
    size_t n, cap;
} hash_vec;

static hs_status hash_vec_push(hash_vec *a, const hs_hash *h) {
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

static void hash_vec_free(hash_vec *a) {
    free(a->v);
    *a = (hash_vec){0};
}

typedef struct block_vec {
    hs_block *v;
    uint32_t n, cap;
} block_vec;

/* Appends b by moving it (b is left empty). */
static hs_status block_vec_push(block_vec *a, hs_block *b) {
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 8;
        hs_block *v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v) return HS_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *b;
    *b = (hs_block){0};
    return HS_OK;
}

static void block_vec_free(block_vec *a) {
    for (uint32_t i = 0; i < a->n; i++) hs_block_free(&a->v[i]);
    free(a->v);
    *a = (block_vec){0};
}

/* ---- Block Sync's read (spec §5.1) ---- */

/* Is h a committed block? (BLOCK_AT_HEIGHT at its height names it.) */
static hs_status is_committed(const hs_kv_reader *r, const hs_hash *h, bool *out) {
    *out = false;
    uint64_t height;
    hs_status st = hs_bt_block_height(r, h, &height);
    if (st != HS_OK) return st;
    hs_hash at;
    st = hs_bt_block_at_height(r, height, &at);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st == HS_OK) *out = hash_eq(&at, h);
    return st;
}

/* The speculative chain from the block of HIGHEST_PC back to (not including) the highest
 * committed block, newest first.
 *
 * The spec (§5.1) walks from NEWEST_BLOCK, the block inserted last, which may sit on an
 * abandoned fork (a Byzantine leader's block, a proposal that never got a PC): a lagging peer
 * then receives a branch it cannot build on while the chain everyone extends stays out of
 * reach (a stall the simulator found). The chain certified by the highest PC is the one the
 * response's highest_pc lets the peer continue from, so the port serves that one. It is left
 * empty when that block is committed, pruned, or on a branch that does not reach the highest
 * committed block (spec §14.25: the committed part is still served). */
static hs_status speculative_chain(const hs_kv_reader *r, hash_vec *out) {
    hs_pc hp = {0};
    hs_status st = hs_bt_highest_pc(r, &hp);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    bool hp_genesis = hs_pc_is_genesis(&hp);
    hs_hash cur = hp.block;
    hs_pc_free(&hp);
    if (hp_genesis) return HS_OK;
    bool known;
    st = hs_bt_contains(r, &cur, &known);
    if (st != HS_OK || !known) return st;
    hs_hash hcb;
    st = hs_bt_highest_committed_block(r, &hcb);
    bool has_hcb = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;

    bool canonical = false;
    for (;;) {
        bool committed = has_hcb && hash_eq(&cur, &hcb);
        if (!committed && has_hcb) {
            st = is_committed(r, &cur, &committed);
            if (st == HS_NOT_FOUND) break; /* pruned */
            if (st != HS_OK) return st;
        }
        if (committed) break; /* NEWEST_BLOCK itself committed, or a stray branch */
        hs_pc j = {0};
        st = hs_bt_block_justify(r, &cur, &j);
        if (st == HS_NOT_FOUND) break; /* pruned */
        if (st != HS_OK) return st;
        bool genesis = hs_pc_is_genesis(&j);
        hs_hash parent = j.block;
        hs_pc_free(&j);
        if ((st = hash_vec_push(out, &cur)) != HS_OK) return st;
        if (genesis) {
            canonical = !has_hcb; /* with a committed block, a root here is off the chain */
            break;
        }
        if (has_hcb && hash_eq(&parent, &hcb)) {
            canonical = true;
            break;
        }
        if (hash_eq(&parent, &cur)) return corrupt("block justify (self link)", &cur);
        cur = parent;
    }
    if (!canonical) out->n = 0;
    return HS_OK;
}

hs_status hs_bt_blocks_from_height_to_newest(const hs_kv_reader *r, uint64_t start,
                                             uint32_t limit, hs_block **out, uint32_t *n) {
    *out = NULL;
    *n = 0;
    block_vec res = {0};
    hash_vec spec = {0};
    hs_block b = {0};
    hs_status st = HS_OK;

    /* Committed part: BLOCK_AT_HEIGHT[start], [start + 1], ... */
    for (uint64_t h = start; res.n < limit; h++) {
        hs_hash bh;
        st = hs_bt_block_at_height(r, h, &bh);
        if (st == HS_NOT_FOUND) {
            st = HS_OK;
            break;
        }
        if (st == HS_OK) st = hs_bt_block(r, &bh, &b);
        if (st == HS_NOT_FOUND) st = corrupt("block at height (block missing)", &bh);
        if (st == HS_OK) st = block_vec_push(&res, &b);
        if (st != HS_OK) goto out;
        if (h == UINT64_MAX) break;
    }

    /* Speculative part, oldest first. Only hashes are gathered by the walk, so a long branch
     * costs 32 bytes a block; full blocks are read for the ones that fit under the limit. */
    if (res.n < limit) {
        st = speculative_chain(r, &spec);
        for (size_t i = spec.n; st == HS_OK && i-- > 0 && res.n < limit;) {
            /* Heights below `start` were asked not to be sent: a client that already holds
             * them asks from above them (sync_client.c). */
            uint64_t h;
            st = hs_bt_block_height(r, &spec.v[i], &h);
            if (st == HS_OK && h < start) continue;
            if (st == HS_OK) st = hs_bt_block(r, &spec.v[i], &b);
            if (st == HS_NOT_FOUND) st = corrupt("block (missing in its chain)", &spec.v[i]);
            if (st == HS_OK) st = block_vec_push(&res, &b);
        }
    }
out:
    hash_vec_free(&spec);
    if (st != HS_OK) {
        hs_block_free(&b);
        block_vec_free(&res);
        return st;
    }
    *out = res.v;
    *n = res.n;
    return HS_OK;
}

/* ---- the App's view (spec §6.6) ---- */

struct hs_app_view {
    const hs_kv_reader *r;
    uint32_t n;
    hs_app_updates *pending; /* parent's first, then its uncommitted ancestors', newest first */
};

void hs_app_view_close(hs_app_view *v) {
    if (!v) return;
    for (uint32_t i = 0; i < v->n; i++) hs_app_updates_free(&v->pending[i]);
    free(v->pending);
    free(v);
}

static hs_status view_push(hs_app_view *v, uint32_t *cap, hs_app_updates *u) {
    if (v->n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 4;
        hs_app_updates *p = realloc(v->pending, (size_t)c * sizeof *p);
        if (!p) return HS_ERR_NOMEM;
        v->pending = p;
        *cap = c;
    }
    v->pending[v->n++] = *u;
    *u = (hs_app_updates){0};
    return HS_OK;
}

/* Walks from parent over justify links while blocks are above the highest committed height
 * (and not the highest committed block itself), collecting their pending app updates. */
static hs_status view_collect(hs_app_view *v, const hs_hash *parent) {
    const hs_kv_reader *r = v->r;
    uint64_t hcb_height = 0;
    hs_hash hcb;
    hs_status st = hs_bt_highest_committed_block(r, &hcb);
    bool has_hcb = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;
    if (has_hcb && (st = hs_bt_highest_committed_height(r, &hcb_height)) != HS_OK) return st;

    uint32_t cap = 0;
    hs_hash cur = *parent;
    for (bool first = true;; first = false) {
        if (has_hcb && hash_eq(&cur, &hcb)) return HS_OK;
        uint64_t height;
        st = hs_bt_block_height(r, &cur, &height);
        if (st == HS_NOT_FOUND && !first) st = corrupt("block height (ancestor missing)", &cur);
        if (st != HS_OK) return st; /* HS_NOT_FOUND: the caller's parent is unknown */
        if (has_hcb && height <= hcb_height) return HS_OK;
        hs_app_updates u = {0};
        st = hs_bt_pending_app_updates(r, &cur, &u);
        if (st == HS_OK) st = view_push(v, &cap, &u);
        hs_app_updates_free(&u);
        if (st != HS_OK && st != HS_NOT_FOUND) return st;
        hs_pc j = {0};
        st = hs_bt_block_justify(r, &cur, &j);
        if (st == HS_NOT_FOUND) st = corrupt("block justify (missing)", &cur);
        if (st != HS_OK) return st;
        bool genesis = hs_pc_is_genesis(&j);
        hs_hash next = j.block;
        hs_pc_free(&j);
        if (genesis) return HS_OK;
        if (hash_eq(&next, &cur)) return corrupt("block justify (self link)", &cur);
        cur = next;
    }
}

hs_status hs_app_view_open(const hs_kv_reader *r, const hs_hash *parent, hs_app_view **out) {
    *out = NULL;
    hs_app_view *v = calloc(1, sizeof *v);
    if (!v) return HS_ERR_NOMEM;
    v->r = r;
    hs_status st = parent ? view_collect(v, parent) : HS_OK;
    if (st != HS_OK) {
        hs_app_view_close(v);
        return st;
    }
    *out = v;
    return HS_OK;
}

/* Binary search in a sorted key array (update sets are kept sorted, and the decoder checks). */
static int32_t find_key(const hs_bytes *keys, uint32_t n, const uint8_t *key, size_t klen) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = hs_bytes_cmp(keys[mid].p, keys[mid].len, key, klen);
        if (c == 0) return (int32_t)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

hs_status hs_app_view_state(const hs_app_view *v, const uint8_t *key, size_t klen, hs_bytes *out) {
    for (uint32_t i = 0; i < v->n; i++) {
        const hs_app_updates *u = &v->pending[i];
        if (find_key(u->delete_keys, u->n_deletes, key, klen) >= 0) return HS_NOT_FOUND;
        int32_t at = find_key(u->insert_keys, u->n_inserts, key, klen);
        if (at >= 0) return hs_bytes_copy(out, &u->insert_values[at]);
    }
    return hs_bt_committed_app_state(v->r, key, klen, out);
}

const hs_kv_reader *hs_app_view_reader(const hs_app_view *v) {
    return v->r;
}

hs_status hs_app_view_validator_set(const hs_app_view *v, hs_validator_set *out) {
    return hs_bt_committed_vs(v->r, out);
}

/* ---- batch helpers ---- */

static hs_status b_put(hs_write_batch *b, const bkey *k, const void *v, size_t n) {
    return hs_batch_put(b, k->b, k->len, v, n);
}

static hs_status b_del(hs_write_batch *b, const bkey *k) {
    return hs_batch_delete(b, k->b, k->len);
}

static hs_status b_put_u64(hs_write_batch *b, const bkey *k, uint64_t v) {
    uint8_t e[8];
    put_le64(e, v);
    return b_put(b, k, e, sizeof e);
}

static hs_status b_put_bool(hs_write_batch *b, const bkey *k, bool v) {
    uint8_t e = v ? 1 : 0;
    return b_put(b, k, &e, 1);
}

/* Puts the encoding that `buf` holds (an encoder may have latched oom). */
static hs_status b_put_buf(hs_write_batch *b, const bkey *k, const hs_buf *buf) {
    if (buf->oom) return HS_ERR_NOMEM;
    return b_put(b, k, buf->p, buf->len);
}

static hs_status b_put_pc(hs_write_batch *b, hs_buf *buf, const bkey *k, const hs_pc *pc) {
    hs_buf_reset(buf);
    hs_enc_pc(buf, pc);
    return b_put_buf(b, k, buf);
}

static hs_status b_put_vs(hs_write_batch *b, hs_buf *buf, const bkey *k,
                          const hs_validator_set *vs) {
    hs_buf_reset(buf);
    hs_enc_vs(buf, vs);
    return b_put_buf(b, k, buf);
}

static hs_status b_put_hashes(hs_write_batch *b, hs_buf *buf, const bkey *k, const hs_hash *h,
                              uint32_t n) {
    hs_buf_reset(buf);
    hs_enc_hashes(buf, h, n);
    return b_put_buf(b, k, buf);
}

/* Applies an app update set to committed app state: inserts set 03||k, deletes remove it. */
static hs_status b_apply_app_updates(hs_write_batch *b, hs_buf *kb, const hs_app_updates *u) {
    hs_status st = HS_OK;
    for (uint32_t i = 0; st == HS_OK && i < u->n_inserts; i++) {
        st = app_state_key(kb, u->insert_keys[i].p, u->insert_keys[i].len);
        if (st == HS_OK)
            st = hs_batch_put(b, kb->p, kb->len, u->insert_values[i].p, u->insert_values[i].len);
    }
    for (uint32_t i = 0; st == HS_OK && i < u->n_deletes; i++) {
        st = app_state_key(kb, u->delete_keys[i].p, u->delete_keys[i].len);
        if (st == HS_OK) st = hs_batch_delete(b, kb->p, kb->len);
    }
    return st;
}

static hs_status write_batch(const hs_kv_store *kv, const hs_write_batch *b) {
    if (hs_batch_count(b) == 0) return HS_OK;
    return kv->write(kv->self, b);
}

/* ---- initialize (spec §6.5) ---- */

hs_status hs_bt_initialize(const hs_kv_store *kv, const hs_app_updates *initial_app_state,
                           const hs_vss *vss) {
    hs_kv_reader r = hs_kv_store_reader(kv);
    bkey k = key_single(HS_KEY_HIGHEST_PC);
    uint8_t *v;
    size_t vlen;
    hs_status st = get_key(&r, &k, &v, &vlen);
    free(v);
    if (st == HS_OK) {
        hs_log(HS_LOG_ERROR, MOD, "initialize: the block tree is already initialised");
        return HS_ERR_STATE;
    }
    if (st != HS_NOT_FOUND) return st;

    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_buf buf;
    hs_buf_init(&buf);
    hs_pc genesis = {0};
    hs_pc_genesis(&genesis);

    st = initial_app_state ? b_apply_app_updates(b, &buf, initial_app_state) : HS_OK;
    bkey cvs = key_single(HS_KEY_COMMITTED_VALIDATOR_SET);
    bkey pvs = key_single(HS_KEY_PREVIOUS_VALIDATOR_SET);
    bkey uh = key_single(HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT);
    bkey dec = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    bkey lock = key_single(HS_KEY_LOCKED_PC);
    bkey hve = key_single(HS_KEY_HIGHEST_VIEW_ENTERED);
    if (st == HS_OK) st = b_put_vs(b, &buf, &cvs, &vss->committed);
    if (st == HS_OK) st = b_put_vs(b, &buf, &pvs, &vss->previous);
    if (st == HS_OK && vss->has_update_height) st = b_put_u64(b, &uh, vss->update_height);
    if (st == HS_OK) st = b_put_bool(b, &dec, vss->update_decided);
    if (st == HS_OK) st = b_put_pc(b, &buf, &lock, &genesis);
    if (st == HS_OK) st = b_put_u64(b, &hve, 0);
    if (st == HS_OK) st = b_put_pc(b, &buf, &k, &genesis);
    if (st == HS_OK) st = write_batch(kv, b);

    hs_pc_free(&genesis);
    hs_buf_free(&buf);
    hs_batch_free(b);
    return st;
}

/* ---- insert (spec §6.3) ---- */

/* A re-inserted block (same hash, data not hashed) may carry fewer datums than the stored copy:
 * delete the stored extra datum keys so no orphan survives pruning. */
static hs_status drop_stale_datums(const hs_kv_reader *r, hs_write_batch *b, const hs_block *blk) {
    uint32_t old;
    hs_status st = hs_bt_block_data_len(r, &blk->hash, &old);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    if (old > stored_limits().max_datums) return corrupt("block data length", &blk->hash);
    for (uint32_t i = blk->data.n; st == HS_OK && i < old; i++) {
        bkey k = key_datum(&blk->hash, i);
        st = b_del(b, &k);
    }
    return st;
}

/* children(parent) += child, read from the store (spec §6.3; duplicates allowed, §14.26). */
static hs_status append_child(const hs_kv_reader *r, hs_write_batch *b, hs_buf *buf,
                              const hs_hash *parent, const hs_hash *child) {
    hs_hash *kids;
    uint32_t n;
    hs_status st = hs_bt_children(r, parent, &kids, &n);
    if (st != HS_OK) return st;
    hs_hash *more = n == UINT32_MAX ? NULL : realloc(kids, ((size_t)n + 1) * sizeof *more);
    if (!more) {
        free(kids);
        return HS_ERR_NOMEM;
    }
    more[n] = *child;
    bkey k = key_hash(HS_KEY_BLOCK_TO_CHILDREN, parent);
    st = b_put_hashes(b, buf, &k, more, n + 1);
    free(more);
    return st;
}

static hs_status insert_into(const hs_kv_reader *r, hs_write_batch *b, hs_buf *buf,
                             const hs_block *blk, const hs_app_updates *asu,
                             const hs_vs_updates *vsu) {
    const hs_hash *h = &blk->hash;
    bkey k_height = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    bkey k_justify = key_field(h, HS_BLOCK_FIELD_JUSTIFY);
    bkey k_data_hash = key_field(h, HS_BLOCK_FIELD_DATA_HASH);
    bkey k_data_len = key_field(h, HS_BLOCK_FIELD_DATA_LEN);
    bkey k_newest = key_single(HS_KEY_NEWEST_BLOCK);
    uint8_t len[4];
    put_le32(len, blk->data.n);

    hs_status st = drop_stale_datums(r, b, blk);
    if (st == HS_OK) st = b_put_u64(b, &k_height, blk->height);
    if (st == HS_OK) st = b_put_pc(b, buf, &k_justify, &blk->justify);
    if (st == HS_OK) st = b_put(b, &k_data_hash, blk->data_hash.b, HS_HASH_LEN);
    if (st == HS_OK) st = b_put(b, &k_data_len, len, sizeof len);
    for (uint32_t i = 0; st == HS_OK && i < blk->data.n; i++) {
        bkey k = key_datum(h, i); /* raw datum bytes, no length prefix */
        st = b_put(b, &k, blk->data.items[i].p, blk->data.items[i].len);
    }
    if (st == HS_OK) st = b_put(b, &k_newest, h->b, HS_HASH_LEN);
    if (st == HS_OK && asu) {
        bkey k = key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, h);
        hs_buf_reset(buf);
        hs_enc_app_updates(buf, asu);
        st = b_put_buf(b, &k, buf);
    }
    if (st == HS_OK && vsu) { /* Some(empty) still makes a VS-updating block */
        bkey k = key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, h);
        hs_buf_reset(buf);
        hs_put_u8(buf, VSU_TAG_PENDING);
        hs_enc_vs_updates(buf, vsu);
        st = b_put_buf(b, &k, buf);
    }
    if (st == HS_OK) st = append_child(r, b, buf, &blk->justify.block, h);
    return st;
}

hs_status hs_bt_insert(const hs_kv_store *kv, const hs_block *blk, const hs_app_updates *asu,
                       const hs_vs_updates *vsu) {
    hs_kv_reader r = hs_kv_store_reader(kv);
    /* A block already in the tree is left as it is. The reference writes it again (spec
     * §6.3, §14.26), which after its commit turns its VS status from Committed back to Pending
     * and brings back pending app updates of a committed block: certificates for it are then
     * checked against the wrong validator set, and the transition to the new set can never be
     * decided (a permanent stall the simulator found, reached through a re-proposal). Same hash,
     * same content: there is nothing to write. */
    bool known = false;
    hs_status kst = hs_bt_contains(&r, &blk->hash, &known);
    if (kst != HS_OK) return kst;
    if (known) return HS_OK;
    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_buf buf;
    hs_buf_init(&buf);
    hs_status st = insert_into(&r, b, &buf, blk, asu, vsu);
    if (st == HS_OK) st = write_batch(kv, b);
    hs_buf_free(&buf);
    hs_batch_free(b);
    return st;
}

/* ---- update (spec §3.5) with commit and pruning (spec §6.4) ---- */

/* A reader of the tree as the store will hold it once the batch is written: the batch's own
 * last op on a key wins over the store. Commit steps that must see what earlier steps of the
 * same batch did (children lists rewritten, branches already pruned) read through this. */
typedef struct overlay {
    hs_kv_reader base;
    const hs_write_batch *b;
} overlay;

static hs_status overlay_get(void *self, const uint8_t *key, size_t klen, uint8_t **val,
                             size_t *vlen) {
    const overlay *o = self;
    hs_kv_op op;
    const uint8_t *p;
    size_t n;
    assert(o->b != NULL);
    hs_status st = hs_batch_lookup(o->b, key, klen, &op, &p, &n);
    if (st == HS_NOT_FOUND) return o->base.get(o->base.self, key, klen, val, vlen);
    if (st != HS_OK) return st;
    if (op == HS_KV_DELETE) return HS_NOT_FOUND;
    *val = malloc(n ? n : 1);
    if (!*val) return HS_ERR_NOMEM;
    if (n) memcpy(*val, p, n);
    *vlen = n;
    return HS_OK;
}

typedef struct upd {
    hs_kv_reader r;     /* the tree before the update: every decision reads this */
    overlay ov;
    hs_kv_reader after; /* the tree with the batch so far applied */
    hs_write_batch *b;
    hs_buf buf; /* scratch encoding buffer */
} upd;

/* Was this block's height key already deleted by this batch? (A children list may name a
 * block twice, spec §14.26; each branch is deleted once.) */
static bool pruned_in_batch(const upd *u, const hs_hash *h) {
    bkey k = key_field(h, HS_BLOCK_FIELD_HEIGHT);
    hs_kv_op op;
    const uint8_t *p;
    size_t n;
    return hs_batch_lookup(u->b, k.b, k.len, &op, &p, &n) == HS_OK && op == HS_KV_DELETE;
}

/* Deletes every key of block h (spec §6.4 step 2) and pushes its children onto the stack. */
static hs_status prune_one(upd *u, const hs_hash *h, hash_vec *stack) {
    hs_hash *kids;
    uint32_t nk;
    hs_status st = hs_bt_children(&u->after, h, &kids, &nk);
    if (st != HS_OK) return st;
    for (uint32_t i = 0; st == HS_OK && i < nk; i++) st = hash_vec_push(stack, &kids[i]);
    free(kids);
    if (st != HS_OK) return st;

    uint32_t len = 0;
    st = hs_bt_block_data_len(&u->after, h, &len);
    if (st == HS_NOT_FOUND) { /* only stray keys left: delete those */
        st = HS_OK;
        len = 0;
    }
    if (st != HS_OK) return st;
    if (len > stored_limits().max_datums) return corrupt("block data length", h);

    const bkey keys[] = {
        key_hash(HS_KEY_BLOCK_TO_CHILDREN, h),
        key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, h),
        key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, h),
        key_field(h, HS_BLOCK_FIELD_HEIGHT),
        key_field(h, HS_BLOCK_FIELD_JUSTIFY),
        key_field(h, HS_BLOCK_FIELD_DATA_HASH),
        key_field(h, HS_BLOCK_FIELD_DATA_LEN),
    };
    for (size_t i = 0; st == HS_OK && i < sizeof keys / sizeof keys[0]; i++)
        st = b_del(u->b, &keys[i]);
    for (uint32_t i = 0; st == HS_OK && i < len; i++) {
        bkey k = key_datum(h, i);
        st = b_del(u->b, &k);
    }
    return st;
}

/* Deletes the branches rooted at the blocks on the stack, depth-first, without recursion. */
static hs_status prune_branches(upd *u, hash_vec *stack) {
    hs_status st = HS_OK;
    while (st == HS_OK && stack->n > 0) {
        hs_hash h = stack->v[--stack->n];
        if (!pruned_in_batch(u, &h)) st = prune_one(u, &h, stack);
    }
    return st;
}

/* spec §6.4 step 2: prune x's siblings and their descendants; children(p) := [x]. */
static hs_status prune_siblings(upd *u, const hs_hash *p, const hs_hash *x) {
    assert(!hash_eq(p, x)); /* a block is never its own parent (hashes chain) */
    hs_hash *kids;
    uint32_t nk;
    hs_status st = hs_bt_children(&u->after, p, &kids, &nk);
    if (st != HS_OK) return st;
    hash_vec stack = {0};
    for (uint32_t i = 0; st == HS_OK && i < nk; i++)
        if (!hash_eq(&kids[i], x)) st = hash_vec_push(&stack, &kids[i]);
    free(kids);
    if (st == HS_OK) st = prune_branches(u, &stack);
    hash_vec_free(&stack);
    bkey k = key_hash(HS_KEY_BLOCK_TO_CHILDREN, p);
    if (st == HS_OK) st = b_put_hashes(u->b, &u->buf, &k, x, 1);
    return st;
}

/* spec §6.4 step 3: pending app updates become committed state. */
static hs_status commit_app_updates(upd *u, const hs_hash *x) {
    hs_app_updates au = {0};
    hs_status st = hs_bt_pending_app_updates(&u->after, x, &au);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    bkey k = key_hash(HS_KEY_PENDING_APP_STATE_UPDATES, x);
    st = b_apply_app_updates(u->b, &u->buf, &au);
    if (st == HS_OK) st = b_del(u->b, &k);
    hs_app_updates_free(&au);
    return st;
}

/* spec §6.4 step 4: a pending VS update becomes the committed set. The VS status Committed is
 * written under x itself (spec §14.4). The committed set is read through the batch, so it is
 * right even if two VS-updating blocks commit in one batch (the reference reads the store). */
static hs_status commit_vs_updates(upd *u, const hs_hash *x, uint64_t height,
                                   hs_bt_committed *rec) {
    hs_vsu_status status;
    hs_vs_updates vsu = {0};
    hs_status st = hs_bt_vsu_status(&u->after, x, &status, &vsu);
    if (st != HS_OK || status != HS_VSU_PENDING) return st;

    hs_validator_set old = {0}, next = {0};
    st = hs_bt_committed_vs(&u->after, &old);
    if (st == HS_NOT_FOUND) st = corrupt("committed validator set (missing)", NULL);
    if (st == HS_OK) st = hs_vs_copy(&next, &old);
    if (st == HS_OK) st = hs_vs_apply(&next, &vsu);
    bkey k_cvs = key_single(HS_KEY_COMMITTED_VALIDATOR_SET);
    bkey k_pvs = key_single(HS_KEY_PREVIOUS_VALIDATOR_SET);
    bkey k_uh = key_single(HS_KEY_VALIDATOR_SET_UPDATE_BLOCK_HEIGHT);
    bkey k_dec = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    bkey k_status = key_hash(HS_KEY_VALIDATOR_SET_UPDATES_STATUS, x);
    uint8_t committed = VSU_TAG_COMMITTED;
    if (st == HS_OK) st = b_put_vs(u->b, &u->buf, &k_cvs, &next);
    if (st == HS_OK) st = b_put_vs(u->b, &u->buf, &k_pvs, &old);
    if (st == HS_OK) st = b_put_u64(u->b, &k_uh, height);
    if (st == HS_OK) st = b_put_bool(u->b, &k_dec, false);
    if (st == HS_OK) st = b_put(u->b, &k_status, &committed, 1);
    if (st == HS_OK) {
        rec->has_vsu = true;
        rec->vsu = vsu;
        vsu = (hs_vs_updates){0};
    }
    hs_vs_updates_free(&vsu);
    hs_vs_free(&old);
    hs_vs_free(&next);
    return st;
}

/* spec §6.4 steps 1-5 for one block x. */
static hs_status commit_one(upd *u, const hs_hash *x, hs_bt_committed *rec) {
    uint64_t height;
    hs_pc j = {0};
    hs_status st = hs_bt_block_height(&u->r, x, &height);
    if (st == HS_OK) st = hs_bt_block_justify(&u->r, x, &j);
    if (st == HS_NOT_FOUND) st = corrupt("block (missing while committing)", x);
    if (st != HS_OK) return st;
    hs_hash parent = j.block; /* [0;32] for a genesis block: the genesis blocks' list */
    hs_pc_free(&j);

    rec->block = *x;
    bkey k_at = key_height(height);
    bkey k_hcb = key_single(HS_KEY_HIGHEST_COMMITTED_BLOCK);
    st = b_put(u->b, &k_at, x->b, HS_HASH_LEN);
    if (st == HS_OK) st = prune_siblings(u, &parent, x);
    if (st == HS_OK) st = commit_app_updates(u, x);
    if (st == HS_OK) st = commit_vs_updates(u, x, height, rec);
    if (st == HS_OK) st = b_put(u->b, &k_hcb, x->b, HS_HASH_LEN);
    return st;
}

/* The blocks commit(b) commits: b and its ancestors above the highest committed block, newest
 * first. The walk stops at the first block at or below the highest committed height (or at the
 * highest committed block itself), which equals filtering the whole chain by height since
 * committed heights form the chain below (spec §6.8), without walking to genesis each time. */
static hs_status uncommitted_chain(const upd *u, const hs_hash *b, hash_vec *out) {
    hs_hash hcb;
    uint64_t hcb_height = 0;
    hs_status st = hs_bt_highest_committed_block(&u->r, &hcb);
    bool has_hcb = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;
    if (has_hcb && (st = hs_bt_highest_committed_height(&u->r, &hcb_height)) != HS_OK) return st;

    hs_hash cur = *b;
    for (;;) {
        if (has_hcb && hash_eq(&cur, &hcb)) return HS_OK;
        uint64_t height;
        st = hs_bt_block_height(&u->r, &cur, &height);
        if (st == HS_NOT_FOUND) st = corrupt("block height (missing while committing)", &cur);
        if (st != HS_OK) return st;
        if (has_hcb && height <= hcb_height) return HS_OK;
        if ((st = hash_vec_push(out, &cur)) != HS_OK) return st;
        hs_pc j = {0};
        st = hs_bt_block_justify(&u->r, &cur, &j);
        if (st == HS_NOT_FOUND) st = corrupt("block justify (missing while committing)", &cur);
        if (st != HS_OK) return st;
        bool genesis = hs_pc_is_genesis(&j);
        hs_hash next = j.block;
        hs_pc_free(&j);
        if (genesis) return HS_OK;
        if (hash_eq(&next, &cur)) return corrupt("block justify (self link)", &cur);
        cur = next;
    }
}

/* spec §6.4 commit(b), oldest first, recording the committed blocks in res. */
static hs_status commit(upd *u, const hs_hash *b, hs_bt_update_result *res) {
    assert(res->n_committed == 0 && res->committed == NULL); /* one commit per update */
    hash_vec chain = {0};
    hs_status st = uncommitted_chain(u, b, &chain);
    if (st == HS_OK && chain.n > UINT32_MAX) st = HS_ERR_LIMIT;
    if (st == HS_OK && chain.n > 0) {
        res->committed = calloc(chain.n, sizeof *res->committed);
        if (!res->committed) st = HS_ERR_NOMEM;
    }
    for (size_t i = chain.n; st == HS_OK && i-- > 0;) {
        st = commit_one(u, &chain.v[i], &res->committed[res->n_committed]);
        res->n_committed++; /* counted even on failure, so the result frees what it holds */
    }
    hash_vec_free(&chain);
    if (st != HS_OK) return st;
    /* The update's return value: the newest committed block's VS updates (spec §3.5, §14.24). */
    for (uint32_t i = res->n_committed; i-- > 0;) {
        if (!res->committed[i].has_vsu) continue;
        st = hs_vs_updates_copy(&res->vsu, &res->committed[i].vsu);
        res->has_vsu = st == HS_OK;
        break;
    }
    return st;
}

/* Decisions whose inputs are missing blocks mean the caller broke the precondition (justify
 * passed the safety gate, so its block is stored). */
static hs_status precondition(hs_status st, const char *what) {
    if (st != HS_NOT_FOUND) return st;
    hs_log(HS_LOG_ERROR, MOD, "update: %s refers to a block not in the tree", what);
    return HS_ERR_INVALID;
}

static hs_status update_into(upd *u, const hs_pc *justify, hs_bt_update_result *res) {
    /* 1. HIGHEST_PC */
    hs_pc hpc = {0};
    hs_status st = hs_bt_highest_pc(&u->r, &hpc);
    if (st == HS_NOT_FOUND) {
        hs_log(HS_LOG_ERROR, MOD, "update: the block tree is not initialised");
        return HS_ERR_STATE;
    }
    if (st != HS_OK) return st;
    bool higher = justify->view > hpc.view;
    hs_pc_free(&hpc);
    bkey k_hpc = key_single(HS_KEY_HIGHEST_PC);
    if (higher && (st = b_put_pc(u->b, &u->buf, &k_hpc, justify)) != HS_OK) return st;
    res->highest_pc_updated = higher;

    /* 2. LOCKED_PC */
    bool has = false;
    st = precondition(hs_pc_to_lock(&u->r, justify, &has, &res->locked_pc), "pc_to_lock");
    if (st != HS_OK) return st;
    res->locked_pc_updated = has;
    bkey k_lock = key_single(HS_KEY_LOCKED_PC);
    if (has && (st = b_put_pc(u->b, &u->buf, &k_lock, &res->locked_pc)) != HS_OK) return st;

    /* 3. commit */
    hs_hash target;
    st = precondition(hs_block_to_commit(&u->r, justify, &has, &target), "block_to_commit");
    if (st == HS_OK && has) st = commit(u, &target, res);
    if (st != HS_OK) return st;

    /* The Commit PC of a VS-updating block it commits is kept for Block Sync: a peer that
     * missed it can commit the block only with it, since the next block's justify is a Decide
     * PC of the new set, which that peer cannot verify before the commit (sync_server.c). */
    if (justify->phase == HS_PHASE_COMMIT) {
        for (uint32_t i = 0; st == HS_OK && i < res->n_committed; i++) {
            if (!res->committed[i].has_vsu || !hash_eq(&res->committed[i].block, &justify->block))
                continue;
            bkey k_cpc = key_hash(HS_KEY_VS_UPDATE_COMMIT_PC, &justify->block);
            st = b_put_pc(u->b, &u->buf, &k_cpc, justify);
        }
        if (st != HS_OK) return st;
    }

    /* 4. a Decide PC ends the VS transition, overriding a false written by step 3 */
    bkey k_dec = key_single(HS_KEY_VALIDATOR_SET_UPDATE_DECIDED);
    if (justify->phase == HS_PHASE_DECIDE) st = b_put_bool(u->b, &k_dec, true);
    return st;
}

hs_status hs_bt_update(const hs_kv_store *kv, const hs_pc *justify, hs_bt_update_result *res) {
    assert(kv && justify && res);
    *res = (hs_bt_update_result){0};
    upd u = {.r = hs_kv_store_reader(kv)};
    u.ov = (overlay){.base = u.r};
    u.after = (hs_kv_reader){.self = &u.ov, .get = overlay_get};
    u.b = hs_batch_new();
    if (!u.b) return HS_ERR_NOMEM;
    u.ov.b = u.b;
    hs_buf_init(&u.buf);

    hs_status st = update_into(&u, justify, res);
    if (st == HS_OK) st = write_batch(kv, u.b);
    if (st != HS_OK) hs_bt_update_result_free(res);

    hs_buf_free(&u.buf);
    hs_batch_free(u.b);
    return st;
}

void hs_bt_update_result_free(hs_bt_update_result *r) {
    hs_pc_free(&r->locked_pc);
    for (uint32_t i = 0; i < r->n_committed; i++) hs_vs_updates_free(&r->committed[i].vsu);
    free(r->committed);
    hs_vs_updates_free(&r->vsu);
    *r = (hs_bt_update_result){0};
}

/* ---- the single-key writers (spec §6.9) ---- */

static hs_status write_one(const hs_kv_store *kv, const bkey *k, const void *v, size_t n) {
    hs_write_batch *b = hs_batch_new();
    if (!b) return HS_ERR_NOMEM;
    hs_status st = b_put(b, k, v, n);
    if (st == HS_OK) st = kv->write(kv->self, b);
    hs_batch_free(b);
    return st;
}

static hs_status write_u64(const hs_kv_store *kv, uint8_t prefix, uint64_t v) {
    bkey k = key_single(prefix);
    uint8_t e[8];
    put_le64(e, v);
    return write_one(kv, &k, e, sizeof e);
}

hs_status hs_bt_set_highest_view_entered(const hs_kv_store *kv, uint64_t view) {
    return write_u64(kv, HS_KEY_HIGHEST_VIEW_ENTERED, view);
}

hs_status hs_bt_set_highest_view_phase_voted(const hs_kv_store *kv, uint64_t view) {
    return write_u64(kv, HS_KEY_HIGHEST_VIEW_PHASE_VOTED, view);
}

hs_status hs_bt_set_highest_tc(const hs_kv_store *kv, const hs_tc *tc) {
    bkey k = key_single(HS_KEY_HIGHEST_TC);
    hs_buf buf;
    hs_buf_init(&buf);
    hs_enc_tc(&buf, tc);
    hs_status st = buf.oom ? HS_ERR_NOMEM : write_one(kv, &k, buf.p, buf.len);
    hs_buf_free(&buf);
    return st;
}
