/* types.c - lifecycle and operations of the protocol's data types (spec §1-2).
 *
 * Sorted containers (validator sets, update sets) are plain arrays kept in order by binary
 * search and memmove: sets are small (≤ a few thousand members) and read far more than
 * written. Mutators allocate first and change contents last, so an HS_ERR_NOMEM leaves the
 * container as it was.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hotstuff/crypto.h"
#include "hotstuff/types.h"

/* ---- phases and limits ---- */

const char *hs_phase_name(hs_phase p) {
    static const char *const names[HS_PHASE_COUNT] = {"Generic", "Prepare", "Precommit",
                                                      "Commit", "Decide"};
    return (unsigned)p < HS_PHASE_COUNT ? names[p] : "?";
}

hs_limits hs_limits_default(void) {
    hs_limits l = {
        .max_validators = 1024,
        .max_datums = 65536,
        .max_datum_bytes = 16u << 20,
        .max_block_bytes = 64u << 20,
        .max_sync_blocks = 64,
        .max_update_entries = 1u << 20,
        .max_app_key_bytes = 1u << 20,
        .max_app_value_bytes = 16u << 20,
    };
    return l;
}

/* ---- byte strings ---- */

void hs_bytes_free(hs_bytes *b) {
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

hs_status hs_bytes_set(hs_bytes *dst, const void *p, size_t len) {
    if (len > UINT32_MAX) return HS_ERR_INVALID;
    /* Never malloc(0): a set string always has a pointer, an empty {0} one may not. */
    uint8_t *q = malloc(len ? len : 1);
    if (!q) return HS_ERR_NOMEM;
    if (len) memcpy(q, p, len);
    dst->p = q;
    dst->len = (uint32_t)len;
    return HS_OK;
}

hs_status hs_bytes_copy(hs_bytes *dst, const hs_bytes *src) {
    dst->p = NULL;
    dst->len = 0;
    if (!src->p) return HS_OK;
    return hs_bytes_set(dst, src->p, src->len);
}

/* Lexicographic byte order with a proper prefix first (spec §2.1, Rust's Vec<u8> order). */
int hs_bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen) {
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- signature sets and certificates ---- */

void hs_sigset_free(hs_sigset *s) {
    free(s->slots);
    s->slots = NULL;
    s->n = 0;
}

hs_status hs_sigset_init(hs_sigset *s, uint32_t n) {
    s->n = 0;
    s->slots = NULL;
    if (n == 0) return HS_OK;
    s->slots = calloc(n, sizeof *s->slots);
    if (!s->slots) return HS_ERR_NOMEM;
    s->n = n;
    return HS_OK;
}

hs_status hs_sigset_copy(hs_sigset *dst, const hs_sigset *src) {
    hs_status st = hs_sigset_init(dst, src->n);
    if (st != HS_OK) return st;
    if (src->n) memcpy(dst->slots, src->slots, src->n * sizeof *src->slots);
    return HS_OK;
}

uint32_t hs_sigset_count(const hs_sigset *s) {
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->n; i++) k += s->slots[i].present;
    return k;
}

/* Equal as Borsh values: an empty slot's stale signature bytes do not count. */
static bool sigset_equal(const hs_sigset *a, const hs_sigset *b) {
    if (a->n != b->n) return false;
    for (uint32_t i = 0; i < a->n; i++) {
        const hs_sig_slot *x = &a->slots[i], *y = &b->slots[i];
        if (x->present != y->present) return false;
        if (x->present && memcmp(x->sig.b, y->sig.b, HS_SIG_LEN) != 0) return false;
    }
    return true;
}

void hs_pc_free(hs_pc *pc) {
    hs_sigset_free(&pc->sigs);
    memset(pc, 0, sizeof *pc);
}

hs_status hs_pc_copy(hs_pc *dst, const hs_pc *src) {
    *dst = *src;
    hs_status st = hs_sigset_copy(&dst->sigs, &src->sigs);
    if (st != HS_OK) memset(dst, 0, sizeof *dst);
    return st;
}

bool hs_pc_equal(const hs_pc *a, const hs_pc *b) {
    return a->chain_id == b->chain_id && a->view == b->view && a->phase == b->phase &&
           memcmp(a->block.b, b->block.b, HS_HASH_LEN) == 0 && sigset_equal(&a->sigs, &b->sigs);
}

/* spec §2.4: chain 0, view 0, block [0;32], Generic, no signatures. */
void hs_pc_genesis(hs_pc *out) {
    memset(out, 0, sizeof *out);
    out->phase = HS_PHASE_GENERIC;
}

bool hs_pc_is_genesis(const hs_pc *pc) {
    static const hs_hash zero;
    return pc->chain_id == 0 && pc->view == 0 && pc->phase == HS_PHASE_GENERIC &&
           pc->sigs.n == 0 && memcmp(pc->block.b, zero.b, HS_HASH_LEN) == 0;
}

bool hs_pc_is_block_justify(const hs_pc *pc) {
    return pc->phase == HS_PHASE_GENERIC || pc->phase == HS_PHASE_DECIDE;
}

bool hs_pc_is_nudge_justify(const hs_pc *pc) {
    return pc->phase == HS_PHASE_PREPARE || pc->phase == HS_PHASE_PRECOMMIT ||
           pc->phase == HS_PHASE_COMMIT;
}

void hs_tc_free(hs_tc *tc) {
    hs_sigset_free(&tc->sigs);
    memset(tc, 0, sizeof *tc);
}

hs_status hs_tc_copy(hs_tc *dst, const hs_tc *src) {
    *dst = *src;
    hs_status st = hs_sigset_copy(&dst->sigs, &src->sigs);
    if (st != HS_OK) memset(dst, 0, sizeof *dst);
    return st;
}

/* ---- data and blocks ---- */

void hs_data_free(hs_data *d) {
    for (uint32_t i = 0; i < d->n; i++) hs_bytes_free(&d->items[i]);
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

hs_status hs_data_copy(hs_data *dst, const hs_data *src) {
    dst->n = 0;
    dst->items = NULL;
    if (src->n == 0) return HS_OK;
    dst->items = calloc(src->n, sizeof *dst->items);
    if (!dst->items) return HS_ERR_NOMEM;
    for (uint32_t i = 0; i < src->n; i++) {
        dst->n = i + 1; /* so hs_data_free releases exactly what was copied */
        if (hs_bytes_copy(&dst->items[i], &src->items[i]) != HS_OK) {
            hs_data_free(dst);
            return HS_ERR_NOMEM;
        }
    }
    return HS_OK;
}

void hs_block_free(hs_block *b) {
    hs_pc_free(&b->justify);
    hs_data_free(&b->data);
    memset(b, 0, sizeof *b);
}

hs_status hs_block_copy(hs_block *dst, const hs_block *src) {
    *dst = *src;
    dst->data.n = 0;
    dst->data.items = NULL;
    hs_status st = hs_pc_copy(&dst->justify, &src->justify);
    if (st == HS_OK) st = hs_data_copy(&dst->data, &src->data);
    if (st != HS_OK) hs_block_free(dst);
    return st;
}

/* spec §2.5: data itself is not hashed, only the App's data_hash. */
hs_status hs_block_compute_hash(const hs_block *b, hs_hash *out) {
    hs_buf buf;
    hs_buf_init(&buf);
    hs_put_u64(&buf, b->height);
    hs_enc_pc(&buf, &b->justify);
    hs_put_raw(&buf, b->data_hash.b, HS_HASH_LEN);
    if (buf.oom) {
        hs_buf_free(&buf);
        return HS_ERR_NOMEM;
    }
    hs_sha256(buf.p, buf.len, out);
    hs_buf_free(&buf);
    return HS_OK;
}

/* ---- validator sets (spec §1.7) ---- */

static int key_cmp(const hs_key *a, const hs_key *b) {
    return memcmp(a->b, b->b, HS_KEY_LEN);
}

/* Binary search over a key-sorted validator array: index of key, or -(insertion point) - 1. */
static int64_t validator_search(const hs_validator *v, uint32_t n, const hs_key *key) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(&v[mid].key, key);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(int64_t)lo - 1;
}

static int64_t key_search(const hs_key *k, uint32_t n, const hs_key *key) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(&k[mid], key);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(int64_t)lo - 1;
}

void hs_vs_free(hs_validator_set *vs) {
    free(vs->v);
    vs->v = NULL;
    vs->n = 0;
}

hs_status hs_vs_copy(hs_validator_set *dst, const hs_validator_set *src) {
    dst->n = 0;
    dst->v = NULL;
    if (src->n == 0) return HS_OK;
    dst->v = malloc(src->n * sizeof *dst->v);
    if (!dst->v) return HS_ERR_NOMEM;
    memcpy(dst->v, src->v, src->n * sizeof *dst->v);
    dst->n = src->n;
    return HS_OK;
}

bool hs_vs_equal(const hs_validator_set *a, const hs_validator_set *b) {
    if (a->n != b->n) return false;
    for (uint32_t i = 0; i < a->n; i++) {
        if (a->v[i].power != b->v[i].power || key_cmp(&a->v[i].key, &b->v[i].key) != 0)
            return false;
    }
    return true;
}

int64_t hs_vs_find(const hs_validator_set *vs, const hs_key *key) {
    int64_t i = validator_search(vs->v, vs->n, key);
    return i >= 0 ? i : -1;
}

bool hs_vs_contains(const hs_validator_set *vs, const hs_key *key) {
    return hs_vs_find(vs, key) >= 0;
}

hs_status hs_vs_put(hs_validator_set *vs, const hs_key *key, uint64_t power) {
    int64_t i = validator_search(vs->v, vs->n, key);
    if (i >= 0) {
        vs->v[i].power = power;
        return HS_OK;
    }
    if (vs->n == UINT32_MAX) return HS_ERR_LIMIT;
    uint32_t at = (uint32_t)(-i - 1);
    hs_validator *v = realloc(vs->v, ((size_t)vs->n + 1) * sizeof *v);
    if (!v) return HS_ERR_NOMEM;
    memmove(&v[at + 1], &v[at], (vs->n - at) * sizeof *v);
    v[at].key = *key;
    v[at].power = power;
    vs->v = v;
    vs->n++;
    return HS_OK;
}

void hs_vs_remove(hs_validator_set *vs, const hs_key *key) {
    int64_t i = validator_search(vs->v, vs->n, key);
    if (i < 0) return;
    memmove(&vs->v[i], &vs->v[i + 1], (vs->n - (uint32_t)i - 1) * sizeof *vs->v);
    if (--vs->n == 0) hs_vs_free(vs);
}

/* Applied to a copy and swapped in, so a failure leaves vs unchanged. */
hs_status hs_vs_apply(hs_validator_set *vs, const hs_vs_updates *u) {
    hs_validator_set tmp;
    hs_status st = hs_vs_copy(&tmp, vs);
    for (uint32_t i = 0; st == HS_OK && i < u->n_inserts; i++)
        st = hs_vs_put(&tmp, &u->inserts[i].key, u->inserts[i].power);
    if (st != HS_OK) {
        hs_vs_free(&tmp);
        return st;
    }
    for (uint32_t i = 0; i < u->n_deletes; i++) hs_vs_remove(&tmp, &u->deletes[i]);
    hs_vs_free(vs);
    *vs = tmp;
    return HS_OK;
}

hs_u128 hs_vs_total_power(const hs_validator_set *vs) {
    hs_u128 t = 0;
    for (uint32_t i = 0; i < vs->n; i++) t += vs->v[i].power;
    return t;
}

/* spec §1.7, §14.1: the code's formula, not the rustdoc's ceil(2P/3). */
hs_u128 hs_vs_quorum(const hs_validator_set *vs) {
    return hs_vs_total_power(vs) * 2 / 3 + 1;
}

/* Number of slots in rounds 1..t of the round robin of spec §4.3: Σ min(power, t). */
static hs_u128 slots_through_round(const hs_validator_set *vs, uint64_t t) {
    hs_u128 s = 0;
    for (uint32_t k = 0; k < vs->n; k++) s += vs->v[k].power < t ? vs->v[k].power : t;
    return s;
}

/* spec §4.3. The reference walks rounds t = 1..pmax, each listing (in key order) the
 * validators with power >= t, and picks slot idx = view mod P. Rounds 1..t hold
 * Σ min(power, t) slots, which grows with t, so the round holding idx is found by binary
 * search and only that round is walked: O(n log pmax) instead of O(n pmax). */
/* The slot view mod P and the round t >= 1 holding it (the smallest t with
 * slots_through_round(t) > slot), found by binary search; HS_ERR_STATE for a powerless set. */
static hs_status locate_slot(const hs_validator_set *vs, uint64_t view, uint64_t *p,
                             uint64_t *slot, uint64_t *round) {
    uint64_t pmax = 0;
    for (uint32_t k = 0; k < vs->n; k++)
        if (vs->v[k].power > pmax) pmax = vs->v[k].power;
    *p = (uint64_t)hs_vs_total_power(vs); /* the reference casts to u64 */
    if (*p == 0) return HS_ERR_STATE;
    uint64_t idx = view % *p;
    uint64_t lo = 1, hi = pmax;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (slots_through_round(vs, mid) > idx) hi = mid;
        else lo = mid + 1;
    }
    *slot = idx;
    *round = lo;
    return HS_OK;
}

hs_status hs_vs_leader(const hs_validator_set *vs, uint64_t view, hs_key *out) {
    uint64_t p, idx, lo;
    if (locate_slot(vs, view, &p, &idx, &lo) != HS_OK) return HS_ERR_STATE;
    hs_u128 before = slots_through_round(vs, lo - 1);
    assert(before <= idx);
    uint64_t rank = (uint64_t)(idx - before);
    for (uint32_t k = 0; k < vs->n; k++) {
        if (vs->v[k].power < lo) continue;
        if (rank-- == 0) {
            *out = vs->v[k].key;
            return HS_OK;
        }
    }
    return HS_ERR_STATE; /* unreachable: idx < P <= Σ power */
}

/* The first slot at or after idx = view mod P, cyclically, whose validator is marked in
 * `active`. A validator's next slot at or after idx lies in the round t0 that holds idx (if
 * its position there is at or after idx's), else in round t0 + 1 (if its power reaches it),
 * else in round 1 of the next cycle, where every validator with power has its key-order rank.
 * One pass computes each marked validator's distance: O(n log pmax) in all. */
hs_status hs_vs_leader_among(const hs_validator_set *vs, uint64_t view, const bool *active,
                             uint32_t *pos) {
    uint64_t p, idx, lo;
    if (locate_slot(vs, view, &p, &idx, &lo) != HS_OK) return HS_ERR_STATE;
    const uint64_t t0 = lo;
    const hs_u128 start0 = slots_through_round(vs, t0 - 1), start1 = slots_through_round(vs, t0);
    const hs_u128 j0 = idx - start0;
    hs_u128 best = 0;
    bool found = false;
    uint64_t rank0 = 0, rank1 = 0, rank_all = 0; /* positions in rounds t0, t0 + 1 and 1 */
    for (uint32_t k = 0; k < vs->n; k++) {
        uint64_t pw = vs->v[k].power;
        if (pw == 0) continue; /* no slot at all */
        if (active[k]) {
            hs_u128 d;
            if (pw >= t0 && rank0 >= j0) d = rank0 - j0;
            else if (pw > t0) d = start1 + rank1 - idx;
            else d = (hs_u128)p - idx + rank_all;
            if (!found || d < best) {
                best = d;
                *pos = k;
                found = true;
            }
        }
        if (pw >= t0) rank0++;
        if (pw > t0) rank1++;
        rank_all++;
    }
    return found ? HS_OK : HS_ERR_STATE;
}

/* ---- app state updates (spec §2.7) ---- */

/* Binary search over sorted byte strings: index, or -(insertion point) - 1. */
static int64_t bytes_search(const hs_bytes *a, uint32_t n, const uint8_t *key, size_t klen) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = hs_bytes_cmp(a[mid].p, a[mid].len, key, klen);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(int64_t)lo - 1;
}

/* Removes element i of an array of byte strings, releasing it. */
static void bytes_array_remove(hs_bytes *a, uint32_t *n, uint32_t i) {
    hs_bytes_free(&a[i]);
    memmove(&a[i], &a[i + 1], (*n - i - 1) * sizeof *a);
    (*n)--;
}

void hs_app_updates_free(hs_app_updates *u) {
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        hs_bytes_free(&u->insert_keys[i]);
        hs_bytes_free(&u->insert_values[i]);
    }
    for (uint32_t i = 0; i < u->n_deletes; i++) hs_bytes_free(&u->delete_keys[i]);
    free(u->insert_keys);
    free(u->insert_values);
    free(u->delete_keys);
    memset(u, 0, sizeof *u);
}

static void bytes_array_free(hs_bytes *a, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) hs_bytes_free(&a[i]);
    free(a);
}

static hs_status bytes_array_copy(hs_bytes **dst, const hs_bytes *src, uint32_t n) {
    *dst = NULL;
    if (n == 0) return HS_OK;
    hs_bytes *a = calloc(n, sizeof *a);
    if (!a) return HS_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (hs_bytes_copy(&a[i], &src[i]) != HS_OK) {
            bytes_array_free(a, i);
            return HS_ERR_NOMEM;
        }
    }
    *dst = a;
    return HS_OK;
}

hs_status hs_app_updates_copy(hs_app_updates *dst, const hs_app_updates *src) {
    hs_bytes *ik, *iv = NULL, *dk = NULL;
    memset(dst, 0, sizeof *dst);
    if (bytes_array_copy(&ik, src->insert_keys, src->n_inserts) != HS_OK) return HS_ERR_NOMEM;
    if (bytes_array_copy(&iv, src->insert_values, src->n_inserts) != HS_OK ||
        bytes_array_copy(&dk, src->delete_keys, src->n_deletes) != HS_OK) {
        bytes_array_free(ik, ik ? src->n_inserts : 0);
        bytes_array_free(iv, iv ? src->n_inserts : 0);
        return HS_ERR_NOMEM;
    }
    dst->n_inserts = src->n_inserts;
    dst->insert_keys = ik;
    dst->insert_values = iv;
    dst->n_deletes = src->n_deletes;
    dst->delete_keys = dk;
    return HS_OK;
}

hs_status hs_app_updates_insert(hs_app_updates *u, const uint8_t *key, size_t klen,
                                const uint8_t *val, size_t vlen) {
    hs_bytes k = {0}, v = {0};
    if (hs_bytes_set(&v, val, vlen) != HS_OK) return HS_ERR_NOMEM;
    int64_t i = bytes_search(u->insert_keys, u->n_inserts, key, klen);
    if (i < 0 && u->n_inserts == UINT32_MAX) {
        hs_bytes_free(&v);
        return HS_ERR_LIMIT;
    }
    if (i < 0) {
        /* Grow both parallel arrays before touching contents. */
        size_t n1 = (size_t)u->n_inserts + 1;
        hs_bytes *ks = NULL, *vs = NULL;
        if (hs_bytes_set(&k, key, klen) != HS_OK) goto oom;
        ks = realloc(u->insert_keys, n1 * sizeof *ks);
        if (!ks) goto oom;
        u->insert_keys = ks;
        vs = realloc(u->insert_values, n1 * sizeof *vs);
        if (!vs) goto oom;
        u->insert_values = vs;
    }
    int64_t d = bytes_search(u->delete_keys, u->n_deletes, key, klen);
    if (d >= 0) bytes_array_remove(u->delete_keys, &u->n_deletes, (uint32_t)d);
    if (i >= 0) {
        hs_bytes_free(&u->insert_values[i]);
        u->insert_values[i] = v;
        return HS_OK;
    }
    uint32_t at = (uint32_t)(-i - 1), tail = u->n_inserts - at;
    memmove(&u->insert_keys[at + 1], &u->insert_keys[at], tail * sizeof(hs_bytes));
    memmove(&u->insert_values[at + 1], &u->insert_values[at], tail * sizeof(hs_bytes));
    u->insert_keys[at] = k;
    u->insert_values[at] = v;
    u->n_inserts++;
    return HS_OK;
oom:
    hs_bytes_free(&k);
    hs_bytes_free(&v);
    return HS_ERR_NOMEM;
}

hs_status hs_app_updates_delete(hs_app_updates *u, const uint8_t *key, size_t klen) {
    int64_t d = bytes_search(u->delete_keys, u->n_deletes, key, klen);
    if (d < 0) {
        if (u->n_deletes == UINT32_MAX) return HS_ERR_LIMIT;
        hs_bytes k;
        if (hs_bytes_set(&k, key, klen) != HS_OK) return HS_ERR_NOMEM;
        hs_bytes *ks = realloc(u->delete_keys, ((size_t)u->n_deletes + 1) * sizeof *ks);
        if (!ks) {
            hs_bytes_free(&k);
            return HS_ERR_NOMEM;
        }
        u->delete_keys = ks;
        uint32_t at = (uint32_t)(-d - 1);
        memmove(&ks[at + 1], &ks[at], (u->n_deletes - at) * sizeof *ks);
        ks[at] = k;
        u->n_deletes++;
    }
    int64_t i = bytes_search(u->insert_keys, u->n_inserts, key, klen);
    if (i >= 0) {
        uint32_t n = u->n_inserts;
        bytes_array_remove(u->insert_values, &n, (uint32_t)i);
        bytes_array_remove(u->insert_keys, &u->n_inserts, (uint32_t)i);
    }
    return HS_OK;
}

/* ---- validator set updates (spec §2.7) ---- */

void hs_vs_updates_free(hs_vs_updates *u) {
    free(u->inserts);
    free(u->deletes);
    memset(u, 0, sizeof *u);
}

hs_status hs_vs_updates_copy(hs_vs_updates *dst, const hs_vs_updates *src) {
    memset(dst, 0, sizeof *dst);
    if (src->n_inserts) {
        dst->inserts = malloc(src->n_inserts * sizeof *dst->inserts);
        if (!dst->inserts) return HS_ERR_NOMEM;
        memcpy(dst->inserts, src->inserts, src->n_inserts * sizeof *dst->inserts);
        dst->n_inserts = src->n_inserts;
    }
    if (src->n_deletes) {
        dst->deletes = malloc(src->n_deletes * sizeof *dst->deletes);
        if (!dst->deletes) {
            hs_vs_updates_free(dst);
            return HS_ERR_NOMEM;
        }
        memcpy(dst->deletes, src->deletes, src->n_deletes * sizeof *dst->deletes);
        dst->n_deletes = src->n_deletes;
    }
    return HS_OK;
}

hs_status hs_vs_updates_insert(hs_vs_updates *u, const hs_key *key, uint64_t power) {
    int64_t i = validator_search(u->inserts, u->n_inserts, key);
    if (i < 0) {
        if (u->n_inserts == UINT32_MAX) return HS_ERR_LIMIT;
        hs_validator *v = realloc(u->inserts, ((size_t)u->n_inserts + 1) * sizeof *v);
        if (!v) return HS_ERR_NOMEM;
        u->inserts = v;
    }
    int64_t d = key_search(u->deletes, u->n_deletes, key);
    if (d >= 0) {
        memmove(&u->deletes[d], &u->deletes[d + 1],
                (u->n_deletes - (uint32_t)d - 1) * sizeof *u->deletes);
        u->n_deletes--;
    }
    if (i >= 0) {
        u->inserts[i].power = power;
        return HS_OK;
    }
    uint32_t at = (uint32_t)(-i - 1);
    memmove(&u->inserts[at + 1], &u->inserts[at], (u->n_inserts - at) * sizeof *u->inserts);
    u->inserts[at].key = *key;
    u->inserts[at].power = power;
    u->n_inserts++;
    return HS_OK;
}

hs_status hs_vs_updates_delete(hs_vs_updates *u, const hs_key *key) {
    int64_t d = key_search(u->deletes, u->n_deletes, key);
    if (d < 0) {
        if (u->n_deletes == UINT32_MAX) return HS_ERR_LIMIT;
        hs_key *k = realloc(u->deletes, ((size_t)u->n_deletes + 1) * sizeof *k);
        if (!k) return HS_ERR_NOMEM;
        u->deletes = k;
        uint32_t at = (uint32_t)(-d - 1);
        memmove(&k[at + 1], &k[at], (u->n_deletes - at) * sizeof *k);
        k[at] = *key;
        u->n_deletes++;
    }
    int64_t i = validator_search(u->inserts, u->n_inserts, key);
    if (i >= 0) {
        memmove(&u->inserts[i], &u->inserts[i + 1],
                (u->n_inserts - (uint32_t)i - 1) * sizeof *u->inserts);
        u->n_inserts--;
    }
    return HS_OK;
}

/* ---- validator set state (spec §1.8) ---- */

void hs_vss_free(hs_vss *s) {
    hs_vs_free(&s->committed);
    hs_vs_free(&s->previous);
    memset(s, 0, sizeof *s);
}

hs_status hs_vss_copy(hs_vss *dst, const hs_vss *src) {
    *dst = *src;
    hs_status st = hs_vs_copy(&dst->committed, &src->committed);
    if (st != HS_OK) {
        memset(dst, 0, sizeof *dst);
        return st;
    }
    st = hs_vs_copy(&dst->previous, &src->previous);
    if (st != HS_OK) hs_vss_free(dst);
    return st;
}
