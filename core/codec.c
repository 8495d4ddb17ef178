/* codec.c - Borsh 0.10 (spec §2.1) for everything hashed, signed, stored or sent.
 *
 * Decoders read hostile input. Every count is checked against the hs_limits bound and
 * against the bytes left (each element has a minimum encoded size) before anything is
 * allocated, so a forged length costs nothing. Every failure latches rd->err and releases
 * what the decoder had built, leaving *out zeroed.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

/* Minimum encoded sizes, for the bytes-left check before allocating. */
#define MIN_SLOT 1u              /* Option<SignatureBytes>: None */
#define MIN_DATUM 4u             /* u32 len, no bytes */
#define MIN_PC 53u               /* spec §2.4 */
#define MIN_BLOCK (8u + 32u + MIN_PC + 32u + 4u)
#define MIN_APP_INSERT 8u        /* u32 klen || u32 vlen */
#define MIN_APP_DELETE 4u
#define VS_ENTRY (HS_KEY_LEN + 8u) /* key || u64 power */

/* ---- writer ---- */

void hs_buf_init(hs_buf *b) {
    memset(b, 0, sizeof *b);
}

void hs_buf_free(hs_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void hs_buf_reset(hs_buf *b) {
    b->len = 0;
}

/* Makes room for n more bytes; latches oom on failure. */
static bool buf_reserve(hs_buf *b, size_t n) {
    if (b->oom) return false;
    if (n <= b->cap - b->len) return true;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void hs_put_raw(hs_buf *b, const void *p, size_t n) {
    if (n == 0 || !buf_reserve(b, n)) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void hs_put_u8(hs_buf *b, uint8_t v) {
    hs_put_raw(b, &v, 1);
}

void hs_put_u32(hs_buf *b, uint32_t v) {
    uint8_t le[4];
    for (int i = 0; i < 4; i++) le[i] = (uint8_t)(v >> (8 * i));
    hs_put_raw(b, le, 4);
}

void hs_put_u64(hs_buf *b, uint64_t v) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    hs_put_raw(b, le, 8);
}

void hs_put_bytes(hs_buf *b, const hs_bytes *v) {
    hs_put_u32(b, v->len);
    hs_put_raw(b, v->p, v->len);
}

/* ---- reader ---- */

void hs_rd_init(hs_rd *r, const uint8_t *p, size_t len) {
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = false;
}

static size_t rd_left(const hs_rd *r) {
    return r->err ? 0 : r->len - r->off;
}

/* Fails the reader unless `count` elements of at least `min_each` bytes can still follow. */
static bool rd_need(hs_rd *r, uint64_t count, size_t min_each) {
    if (r->err) return false;
    if (min_each && count > rd_left(r) / min_each) r->err = true;
    return !r->err;
}

void hs_get_raw(hs_rd *r, void *out, size_t n) {
    if (r->err || n > r->len - r->off) {
        r->err = true;
        if (n) memset(out, 0, n);
        return;
    }
    if (n) memcpy(out, r->p + r->off, n);
    r->off += n;
}

uint8_t hs_get_u8(hs_rd *r) {
    uint8_t v;
    hs_get_raw(r, &v, 1);
    return v;
}

uint32_t hs_get_u32(hs_rd *r) {
    uint8_t le[4];
    hs_get_raw(r, le, 4);
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | le[i];
    return v;
}

uint64_t hs_get_u64(hs_rd *r) {
    uint8_t le[8];
    hs_get_raw(r, le, 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | le[i];
    return v;
}

bool hs_rd_done(const hs_rd *r) {
    return !r->err && r->off == r->len;
}

/* Reads a Borsh bool or Option tag: anything but 0/1 is malformed. */
static bool get_flag(hs_rd *r) {
    uint8_t v = hs_get_u8(r);
    if (v > 1) r->err = true;
    return v == 1;
}

static hs_phase get_phase(hs_rd *r) {
    uint8_t v = hs_get_u8(r);
    if (v >= HS_PHASE_COUNT) r->err = true;
    return r->err ? HS_PHASE_GENERIC : (hs_phase)v;
}

/* A length-prefixed byte string of at most `max` bytes. */
static void get_bytes(hs_rd *r, uint32_t max, hs_bytes *out) {
    out->p = NULL;
    out->len = 0;
    uint32_t n = hs_get_u32(r);
    if (n > max || !rd_need(r, n, 1)) {
        r->err = true;
        return;
    }
    if (hs_bytes_set(out, r->p + r->off, n) != HS_OK) {
        r->err = true; /* out of memory reads as undecodable: the caller drops the input */
        return;
    }
    r->off += n;
}

static const hs_limits *limits_or_default(const hs_limits *lim, hs_limits *tmp) {
    if (lim) return lim;
    *tmp = hs_limits_default();
    return tmp;
}

/* ---- certificates ---- */

void hs_enc_sigset(hs_buf *b, const hs_sigset *s) {
    hs_put_u32(b, s->n);
    for (uint32_t i = 0; i < s->n; i++) {
        hs_put_u8(b, s->slots[i].present);
        if (s->slots[i].present) hs_put_raw(b, s->slots[i].sig.b, HS_SIG_LEN);
    }
}

hs_status hs_dec_sigset(hs_rd *r, const hs_limits *lim, hs_sigset *out) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    uint32_t n = hs_get_u32(r);
    if (n > lim->max_validators) r->err = true;
    if (!rd_need(r, n, MIN_SLOT)) return HS_ERR_INVALID;
    if (hs_sigset_init(out, n) != HS_OK) {
        r->err = true;
        return HS_ERR_INVALID;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        out->slots[i].present = get_flag(r);
        if (out->slots[i].present) hs_get_raw(r, out->slots[i].sig.b, HS_SIG_LEN);
    }
    if (r->err) {
        hs_sigset_free(out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

void hs_enc_pc(hs_buf *b, const hs_pc *pc) {
    assert((unsigned)pc->phase < HS_PHASE_COUNT);
    hs_put_u64(b, pc->chain_id);
    hs_put_u64(b, pc->view);
    hs_put_raw(b, pc->block.b, HS_HASH_LEN);
    hs_put_u8(b, (uint8_t)pc->phase);
    hs_enc_sigset(b, &pc->sigs);
}

hs_status hs_dec_pc(hs_rd *r, const hs_limits *lim, hs_pc *out) {
    memset(out, 0, sizeof *out);
    out->chain_id = hs_get_u64(r);
    out->view = hs_get_u64(r);
    hs_get_raw(r, out->block.b, HS_HASH_LEN);
    out->phase = get_phase(r);
    if (r->err || hs_dec_sigset(r, lim, &out->sigs) != HS_OK) {
        r->err = true;
        memset(out, 0, sizeof *out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

void hs_enc_tc(hs_buf *b, const hs_tc *tc) {
    hs_put_u64(b, tc->chain_id);
    hs_put_u64(b, tc->view);
    hs_enc_sigset(b, &tc->sigs);
}

hs_status hs_dec_tc(hs_rd *r, const hs_limits *lim, hs_tc *out) {
    memset(out, 0, sizeof *out);
    out->chain_id = hs_get_u64(r);
    out->view = hs_get_u64(r);
    if (r->err || hs_dec_sigset(r, lim, &out->sigs) != HS_OK) {
        r->err = true;
        memset(out, 0, sizeof *out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

/* ---- blocks ---- */

void hs_enc_data(hs_buf *b, const hs_data *d) {
    hs_put_u32(b, d->n);
    for (uint32_t i = 0; i < d->n; i++) hs_put_bytes(b, &d->items[i]);
}

hs_status hs_dec_data(hs_rd *r, const hs_limits *lim, hs_data *out) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    uint32_t n = hs_get_u32(r);
    if (n > lim->max_datums) r->err = true;
    if (!rd_need(r, n, MIN_DATUM)) return HS_ERR_INVALID;
    if (n) {
        out->items = calloc(n, sizeof *out->items);
        if (!out->items) {
            r->err = true;
            return HS_ERR_INVALID;
        }
        out->n = n; /* calloc'd items are empty, so freeing all n is safe */
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        get_bytes(r, lim->max_datum_bytes, &out->items[i]);
        total += out->items[i].len;
        if (total > lim->max_block_bytes) r->err = true;
    }
    if (r->err) {
        hs_data_free(out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

void hs_enc_block(hs_buf *b, const hs_block *blk) {
    hs_put_u64(b, blk->height);
    hs_put_raw(b, blk->hash.b, HS_HASH_LEN);
    hs_enc_pc(b, &blk->justify);
    hs_put_raw(b, blk->data_hash.b, HS_HASH_LEN);
    hs_enc_data(b, &blk->data);
}

hs_status hs_dec_block(hs_rd *r, const hs_limits *lim, hs_block *out) {
    memset(out, 0, sizeof *out);
    out->height = hs_get_u64(r);
    hs_get_raw(r, out->hash.b, HS_HASH_LEN);
    if (r->err || hs_dec_pc(r, lim, &out->justify) != HS_OK) goto fail;
    hs_get_raw(r, out->data_hash.b, HS_HASH_LEN);
    if (r->err || hs_dec_data(r, lim, &out->data) != HS_OK) goto fail;
    return HS_OK;
fail:
    r->err = true;
    hs_block_free(out);
    return HS_ERR_INVALID;
}

/* ---- validator sets: ValidatorSetBytes (spec §6.2) ---- */

void hs_enc_vs(hs_buf *b, const hs_validator_set *vs) {
    hs_put_u32(b, vs->n);
    for (uint32_t i = 0; i < vs->n; i++) hs_put_raw(b, vs->v[i].key.b, HS_KEY_LEN);
    hs_put_u32(b, vs->n);
    for (uint32_t i = 0; i < vs->n; i++) {
        assert(i == 0 || memcmp(vs->v[i - 1].key.b, vs->v[i].key.b, HS_KEY_LEN) < 0);
        hs_put_raw(b, vs->v[i].key.b, HS_KEY_LEN);
        hs_put_u64(b, vs->v[i].power);
    }
}

/* Both the validators vector and the powers map are written strictly ascending by our
 * encoder (and by Borsh for the map), so anything else is rejected rather than repaired. */
hs_status hs_dec_vs(hs_rd *r, const hs_limits *lim, hs_validator_set *out) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    uint32_t n = hs_get_u32(r);
    if (n > lim->max_validators) r->err = true;
    /* The map repeats all n keys after the vector: n * (32 + 40) + 4 bytes at least. */
    if (!rd_need(r, n, HS_KEY_LEN + VS_ENTRY)) return HS_ERR_INVALID;
    if (n) {
        out->v = calloc(n, sizeof *out->v);
        if (!out->v) {
            r->err = true;
            return HS_ERR_INVALID;
        }
        out->n = n;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        hs_get_raw(r, out->v[i].key.b, HS_KEY_LEN);
        if (i && memcmp(out->v[i - 1].key.b, out->v[i].key.b, HS_KEY_LEN) >= 0) r->err = true;
    }
    if (hs_get_u32(r) != n) r->err = true;
    for (uint32_t i = 0; i < n && !r->err; i++) {
        hs_key k;
        hs_get_raw(r, k.b, HS_KEY_LEN);
        out->v[i].power = hs_get_u64(r);
        /* Same count, both strictly ascending: equal key sets iff equal position by position. */
        if (memcmp(k.b, out->v[i].key.b, HS_KEY_LEN) != 0) r->err = true;
    }
    if (r->err) {
        hs_vs_free(out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

/* ---- update sets (spec §2.7) ---- */

void hs_enc_app_updates(hs_buf *b, const hs_app_updates *u) {
    hs_put_u32(b, u->n_inserts);
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        hs_put_bytes(b, &u->insert_keys[i]);
        hs_put_bytes(b, &u->insert_values[i]);
    }
    hs_put_u32(b, u->n_deletes);
    for (uint32_t i = 0; i < u->n_deletes; i++) hs_put_bytes(b, &u->delete_keys[i]);
}

static bool bytes_less(const hs_bytes *a, const hs_bytes *b) {
    return hs_bytes_cmp(a->p, a->len, b->p, b->len) < 0;
}

/* True if key is among the n sorted strings of a. */
static bool bytes_sorted_contains(const hs_bytes *a, uint32_t n, const hs_bytes *key) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = hs_bytes_cmp(a[mid].p, a[mid].len, key->p, key->len);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

hs_status hs_dec_app_updates(hs_rd *r, const hs_limits *lim, hs_app_updates *out) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    uint32_t n = hs_get_u32(r);
    if (n > lim->max_update_entries) r->err = true;
    if (!rd_need(r, n, MIN_APP_INSERT)) return HS_ERR_INVALID;
    if (n) {
        out->insert_keys = calloc(n, sizeof(hs_bytes));
        out->insert_values = calloc(n, sizeof(hs_bytes));
        if (out->insert_keys && out->insert_values)
            out->n_inserts = n; /* calloc'd entries are empty, so freeing all n is safe */
        else
            r->err = true;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        get_bytes(r, lim->max_app_key_bytes, &out->insert_keys[i]);
        get_bytes(r, lim->max_app_value_bytes, &out->insert_values[i]);
        if (i && !bytes_less(&out->insert_keys[i - 1], &out->insert_keys[i])) r->err = true;
    }
    uint32_t m = hs_get_u32(r);
    if (m > lim->max_update_entries - n) r->err = true;
    if (rd_need(r, m, MIN_APP_DELETE) && m) {
        out->delete_keys = calloc(m, sizeof(hs_bytes));
        out->n_deletes = m;
        if (!out->delete_keys) out->n_deletes = 0, r->err = true;
    }
    for (uint32_t i = 0; i < m && !r->err; i++) {
        hs_bytes *k = &out->delete_keys[i];
        get_bytes(r, lim->max_app_key_bytes, k);
        if (i && !bytes_less(&out->delete_keys[i - 1], k)) r->err = true;
        if (bytes_sorted_contains(out->insert_keys, n, k)) r->err = true; /* never in both */
    }
    if (r->err) {
        hs_app_updates_free(out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

void hs_enc_vs_updates(hs_buf *b, const hs_vs_updates *u) {
    hs_put_u32(b, u->n_inserts);
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        hs_put_raw(b, u->inserts[i].key.b, HS_KEY_LEN);
        hs_put_u64(b, u->inserts[i].power);
    }
    hs_put_u32(b, u->n_deletes);
    for (uint32_t i = 0; i < u->n_deletes; i++) hs_put_raw(b, u->deletes[i].b, HS_KEY_LEN);
}

static bool inserts_contain(const hs_validator *v, uint32_t n, const hs_key *key) {
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = memcmp(v[mid].key.b, key->b, HS_KEY_LEN);
        if (c == 0) return true;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

hs_status hs_dec_vs_updates(hs_rd *r, const hs_limits *lim, hs_vs_updates *out) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    uint32_t n = hs_get_u32(r);
    if (n > lim->max_update_entries) r->err = true;
    if (rd_need(r, n, VS_ENTRY) && n) {
        out->inserts = malloc(n * sizeof *out->inserts);
        if (!out->inserts) r->err = true;
    }
    for (uint32_t i = 0; i < n && !r->err; i++) {
        hs_get_raw(r, out->inserts[i].key.b, HS_KEY_LEN);
        out->inserts[i].power = hs_get_u64(r);
        if (i && memcmp(out->inserts[i - 1].key.b, out->inserts[i].key.b, HS_KEY_LEN) >= 0)
            r->err = true;
    }
    out->n_inserts = n;
    uint32_t m = hs_get_u32(r);
    if (m > lim->max_update_entries - n) r->err = true;
    if (rd_need(r, m, HS_KEY_LEN) && m) {
        out->deletes = malloc(m * sizeof *out->deletes);
        if (!out->deletes) r->err = true;
    }
    for (uint32_t i = 0; i < m && !r->err; i++) {
        hs_get_raw(r, out->deletes[i].b, HS_KEY_LEN);
        if (i && memcmp(out->deletes[i - 1].b, out->deletes[i].b, HS_KEY_LEN) >= 0)
            r->err = true;
        if (inserts_contain(out->inserts, n, &out->deletes[i])) r->err = true;
    }
    out->n_deletes = m;
    if (r->err) {
        hs_vs_updates_free(out);
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

/* ---- hash lists (ChildrenList) ---- */

void hs_enc_hashes(hs_buf *b, const hs_hash *h, uint32_t n) {
    hs_put_u32(b, n);
    for (uint32_t i = 0; i < n; i++) hs_put_raw(b, h[i].b, HS_HASH_LEN);
}

hs_status hs_dec_hashes(hs_rd *r, uint32_t max, hs_hash **out, uint32_t *n) {
    *out = NULL;
    *n = 0;
    uint32_t k = hs_get_u32(r);
    if (k > max) r->err = true;
    if (!rd_need(r, k, HS_HASH_LEN)) return HS_ERR_INVALID;
    if (k == 0) return HS_OK;
    hs_hash *h = malloc(k * sizeof *h);
    if (!h) {
        r->err = true;
        return HS_ERR_INVALID;
    }
    _Static_assert(sizeof(hs_hash) == HS_HASH_LEN, "hs_hash must be unpadded");
    hs_get_raw(r, h, (size_t)k * HS_HASH_LEN);
    *out = h;
    *n = k;
    return HS_OK;
}

/* ---- messages (spec §2.8 tags, §2.9 fields) ---- */

enum { TAG_PROGRESS = 0, TAG_BLOCK_SYNC = 1 };
enum { TAG_HOTSTUFF = 0, TAG_PACEMAKER = 1, TAG_ADVERTISE = 2 };
enum { TAG_PROPOSAL = 0, TAG_NUDGE = 1, TAG_PHASE_VOTE = 2, TAG_NEW_VIEW = 3 };
enum { TAG_TIMEOUT_VOTE = 0, TAG_ADVANCE_VIEW = 1 };
enum { TAG_CERT_TC = 0, TAG_CERT_PC = 1 };
enum { TAG_ADVERTISE_BLOCK = 0, TAG_ADVERTISE_PC = 1 };
enum { TAG_SYNC_REQUEST = 0, TAG_SYNC_RESPONSE = 1 };

/* The (envelope, group, variant) tag path of each message type; -1 for "no group". */
static const struct {
    int8_t envelope, group, variant;
} msg_tags[HS_MSG_TYPE_COUNT] = {
    [HS_MSG_PROPOSAL] = {TAG_PROGRESS, TAG_HOTSTUFF, TAG_PROPOSAL},
    [HS_MSG_NUDGE] = {TAG_PROGRESS, TAG_HOTSTUFF, TAG_NUDGE},
    [HS_MSG_PHASE_VOTE] = {TAG_PROGRESS, TAG_HOTSTUFF, TAG_PHASE_VOTE},
    [HS_MSG_NEW_VIEW] = {TAG_PROGRESS, TAG_HOTSTUFF, TAG_NEW_VIEW},
    [HS_MSG_TIMEOUT_VOTE] = {TAG_PROGRESS, TAG_PACEMAKER, TAG_TIMEOUT_VOTE},
    [HS_MSG_ADVANCE_VIEW] = {TAG_PROGRESS, TAG_PACEMAKER, TAG_ADVANCE_VIEW},
    [HS_MSG_ADVERTISE_BLOCK] = {TAG_PROGRESS, TAG_ADVERTISE, TAG_ADVERTISE_BLOCK},
    [HS_MSG_ADVERTISE_PC] = {TAG_PROGRESS, TAG_ADVERTISE, TAG_ADVERTISE_PC},
    [HS_MSG_SYNC_REQUEST] = {TAG_BLOCK_SYNC, -1, TAG_SYNC_REQUEST},
    [HS_MSG_SYNC_RESPONSE] = {TAG_BLOCK_SYNC, -1, TAG_SYNC_RESPONSE},
};

static void enc_msg_body(hs_buf *b, const hs_msg *m) {
    switch (m->type) {
    case HS_MSG_PROPOSAL:
        hs_put_u64(b, m->u.proposal.chain_id);
        hs_put_u64(b, m->u.proposal.view);
        hs_enc_block(b, &m->u.proposal.block);
        break;
    case HS_MSG_NUDGE:
        hs_put_u64(b, m->u.nudge.chain_id);
        hs_put_u64(b, m->u.nudge.view);
        hs_enc_pc(b, &m->u.nudge.justify);
        break;
    case HS_MSG_PHASE_VOTE: {
        const hs_phase_vote *v = &m->u.phase_vote;
        assert((unsigned)v->phase < HS_PHASE_COUNT);
        hs_put_u64(b, v->chain_id);
        hs_put_u64(b, v->view);
        hs_put_raw(b, v->block.b, HS_HASH_LEN);
        hs_put_u8(b, (uint8_t)v->phase);
        hs_put_raw(b, v->sig.b, HS_SIG_LEN);
        break;
    }
    case HS_MSG_NEW_VIEW:
        hs_put_u64(b, m->u.new_view.chain_id);
        hs_put_u64(b, m->u.new_view.view);
        hs_enc_pc(b, &m->u.new_view.highest_pc);
        break;
    case HS_MSG_TIMEOUT_VOTE: {
        const hs_timeout_vote *v = &m->u.timeout_vote;
        hs_put_u64(b, v->chain_id);
        hs_put_u64(b, v->view);
        hs_put_raw(b, v->sig.b, HS_SIG_LEN);
        hs_put_u8(b, v->has_highest_tc);
        if (v->has_highest_tc) hs_enc_tc(b, &v->highest_tc);
        break;
    }
    case HS_MSG_ADVANCE_VIEW:
        if (m->u.advance_view.is_tc) {
            hs_put_u8(b, TAG_CERT_TC);
            hs_enc_tc(b, &m->u.advance_view.tc);
        } else {
            hs_put_u8(b, TAG_CERT_PC);
            hs_enc_pc(b, &m->u.advance_view.pc);
        }
        break;
    case HS_MSG_ADVERTISE_BLOCK:
        hs_put_u64(b, m->u.advertise_block.chain_id);
        hs_put_u64(b, m->u.advertise_block.height);
        hs_put_raw(b, m->u.advertise_block.sig.b, HS_SIG_LEN);
        break;
    case HS_MSG_ADVERTISE_PC:
        hs_enc_pc(b, &m->u.advertise_pc.highest_pc);
        break;
    case HS_MSG_SYNC_REQUEST:
        hs_put_u64(b, m->u.sync_request.chain_id);
        hs_put_u64(b, m->u.sync_request.start_height);
        hs_put_u32(b, m->u.sync_request.limit);
        break;
    case HS_MSG_SYNC_RESPONSE:
        hs_put_u32(b, m->u.sync_response.n_blocks);
        for (uint32_t i = 0; i < m->u.sync_response.n_blocks; i++)
            hs_enc_block(b, &m->u.sync_response.blocks[i]);
        hs_enc_pc(b, &m->u.sync_response.highest_pc);
        break;
    default:
        assert(!"hs_enc_msg: no such message type");
    }
}

void hs_enc_msg(hs_buf *b, const hs_msg *m) {
    assert(m->type > HS_MSG_NONE && m->type < HS_MSG_TYPE_COUNT);
    hs_put_u8(b, (uint8_t)msg_tags[m->type].envelope);
    if (msg_tags[m->type].group >= 0) hs_put_u8(b, (uint8_t)msg_tags[m->type].group);
    hs_put_u8(b, (uint8_t)msg_tags[m->type].variant);
    enc_msg_body(b, m);
}

/* Reads the tag path and maps it to a message type; HS_MSG_NONE if unknown. */
static hs_msg_type dec_msg_type(hs_rd *r) {
    int envelope = hs_get_u8(r);
    int group = envelope == TAG_PROGRESS ? hs_get_u8(r) : -1;
    int variant = hs_get_u8(r);
    if (r->err) return HS_MSG_NONE;
    for (int t = HS_MSG_NONE + 1; t < HS_MSG_TYPE_COUNT; t++) {
        if (msg_tags[t].envelope == envelope && msg_tags[t].group == group &&
            msg_tags[t].variant == variant)
            return (hs_msg_type)t;
    }
    return HS_MSG_NONE;
}

static hs_status dec_sync_response(hs_rd *r, const hs_limits *lim, hs_sync_response *s) {
    uint32_t n = hs_get_u32(r);
    if (n > lim->max_sync_blocks) r->err = true;
    if (!rd_need(r, n, MIN_BLOCK)) return HS_ERR_INVALID;
    if (n) {
        s->blocks = calloc(n, sizeof *s->blocks);
        if (!s->blocks) {
            r->err = true;
            return HS_ERR_INVALID;
        }
        s->n_blocks = n; /* calloc'd blocks are empty; the caller frees all n */
    }
    for (uint32_t i = 0; i < n && !r->err; i++) hs_dec_block(r, lim, &s->blocks[i]);
    if (!r->err) hs_dec_pc(r, lim, &s->highest_pc);
    return r->err ? HS_ERR_INVALID : HS_OK;
}

/* Decodes the fields of a message of known type into out->u; on failure the caller frees. */
static void dec_msg_body(hs_rd *r, const hs_limits *lim, hs_msg *out) {
    switch (out->type) {
    case HS_MSG_PROPOSAL:
        out->u.proposal.chain_id = hs_get_u64(r);
        out->u.proposal.view = hs_get_u64(r);
        if (!r->err) hs_dec_block(r, lim, &out->u.proposal.block);
        break;
    case HS_MSG_NUDGE:
        out->u.nudge.chain_id = hs_get_u64(r);
        out->u.nudge.view = hs_get_u64(r);
        if (!r->err) hs_dec_pc(r, lim, &out->u.nudge.justify);
        break;
    case HS_MSG_PHASE_VOTE: {
        hs_phase_vote *v = &out->u.phase_vote;
        v->chain_id = hs_get_u64(r);
        v->view = hs_get_u64(r);
        hs_get_raw(r, v->block.b, HS_HASH_LEN);
        v->phase = get_phase(r);
        hs_get_raw(r, v->sig.b, HS_SIG_LEN);
        break;
    }
    case HS_MSG_NEW_VIEW:
        out->u.new_view.chain_id = hs_get_u64(r);
        out->u.new_view.view = hs_get_u64(r);
        if (!r->err) hs_dec_pc(r, lim, &out->u.new_view.highest_pc);
        break;
    case HS_MSG_TIMEOUT_VOTE: {
        hs_timeout_vote *v = &out->u.timeout_vote;
        v->chain_id = hs_get_u64(r);
        v->view = hs_get_u64(r);
        hs_get_raw(r, v->sig.b, HS_SIG_LEN);
        bool has = get_flag(r);
        if (!r->err && has && hs_dec_tc(r, lim, &v->highest_tc) == HS_OK)
            v->has_highest_tc = true;
        break;
    }
    case HS_MSG_ADVANCE_VIEW: {
        uint8_t tag = hs_get_u8(r);
        if (r->err) break;
        if (tag == TAG_CERT_TC) {
            out->u.advance_view.is_tc = true;
            hs_dec_tc(r, lim, &out->u.advance_view.tc);
        } else if (tag == TAG_CERT_PC) {
            hs_dec_pc(r, lim, &out->u.advance_view.pc);
        } else {
            r->err = true;
        }
        break;
    }
    case HS_MSG_ADVERTISE_BLOCK:
        out->u.advertise_block.chain_id = hs_get_u64(r);
        out->u.advertise_block.height = hs_get_u64(r);
        hs_get_raw(r, out->u.advertise_block.sig.b, HS_SIG_LEN);
        break;
    case HS_MSG_ADVERTISE_PC:
        hs_dec_pc(r, lim, &out->u.advertise_pc.highest_pc);
        break;
    case HS_MSG_SYNC_REQUEST:
        out->u.sync_request.chain_id = hs_get_u64(r);
        out->u.sync_request.start_height = hs_get_u64(r);
        out->u.sync_request.limit = hs_get_u32(r);
        break;
    case HS_MSG_SYNC_RESPONSE:
        dec_sync_response(r, lim, &out->u.sync_response);
        break;
    default:
        r->err = true;
    }
}

hs_status hs_dec_msg(hs_rd *r, const hs_limits *lim, hs_msg *out) {
    hs_limits dl;
    lim = limits_or_default(lim, &dl);
    memset(out, 0, sizeof *out);
    out->type = dec_msg_type(r);
    if (out->type == HS_MSG_NONE) {
        r->err = true;
        return HS_ERR_INVALID;
    }
    dec_msg_body(r, lim, out);
    if (r->err) {
        hs_msg_free(out); /* every member is empty or fully owned at this point */
        return HS_ERR_INVALID;
    }
    return HS_OK;
}

/* ---- whole-buffer helpers ---- */

hs_status hs_decode_pc(const uint8_t *p, size_t len, const hs_limits *lim, hs_pc *out) {
    hs_rd r;
    hs_rd_init(&r, p, len);
    if (hs_dec_pc(&r, lim, out) != HS_OK) return HS_ERR_INVALID;
    if (hs_rd_done(&r)) return HS_OK;
    hs_pc_free(out);
    return HS_ERR_INVALID;
}

hs_status hs_decode_tc(const uint8_t *p, size_t len, const hs_limits *lim, hs_tc *out) {
    hs_rd r;
    hs_rd_init(&r, p, len);
    if (hs_dec_tc(&r, lim, out) != HS_OK) return HS_ERR_INVALID;
    if (hs_rd_done(&r)) return HS_OK;
    hs_tc_free(out);
    return HS_ERR_INVALID;
}

hs_status hs_decode_vs(const uint8_t *p, size_t len, const hs_limits *lim,
                       hs_validator_set *out) {
    hs_rd r;
    hs_rd_init(&r, p, len);
    if (hs_dec_vs(&r, lim, out) != HS_OK) return HS_ERR_INVALID;
    if (hs_rd_done(&r)) return HS_OK;
    hs_vs_free(out);
    return HS_ERR_INVALID;
}
