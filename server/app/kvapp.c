/* server/app/kvapp.c - see kvapp.h.
 *
 * One function, execute(), turns a list of datums into app state and validator-set updates
 * and decides validity; validate_block calls it on the proposed block and produce_block on
 * the block it just assembled, which is what keeps the two in agreement.
 */
#include "app/kvapp.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "hotstuff/block_tree.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"
#include "app/mempool.h"

#define MODULE "kvapp"
/* Leader selection takes the total power as a u64 (spec §4.3); keep it well inside. */
#define MAX_TOTAL_POWER ((hs_u128)1 << 63)
/* Transactions copied out of the mempool per lock acquisition while packing a block. */
#define COLLECT_CHUNK 256

struct kvapp {
    kvapp_config cfg;
    kvtx_rules rules;
    mempool *pool;
    hs_kv_store kv;
};

kvapp_config kvapp_config_default(void) {
    kvapp_config c;
    memset(&c, 0, sizeof c);
    c.max_tx_bytes = 64u << 10;
    c.max_key_bytes = 1u << 10;
    c.max_block_txs = 2000;
    c.max_block_bytes = 1u << 20;
    c.mempool_max_txs = 10000;
    c.mempool_max_bytes = 64u << 20;
    c.max_validators = 1024;
    c.empty_block_wait_ms = 250;
    return c;
}

hs_status kvapp_config_check(const kvapp_config *c, char *err, size_t errlen) {
    const char *field = NULL, *why = NULL;
    if (c->max_tx_bytes < 16) field = "max_tx_bytes", why = "must be at least 16";
    else if (c->max_key_bytes < 1) field = "max_key_bytes", why = "must be at least 1";
    else if (c->max_key_bytes > c->max_tx_bytes)
        field = "max_key_bytes", why = "must not exceed max_tx_bytes";
    else if (c->max_block_txs < 1) field = "max_block_txs", why = "must be at least 1";
    else if (c->max_block_bytes < c->max_tx_bytes)
        field = "max_block_bytes", why = "must be at least max_tx_bytes";
    else if (c->mempool_max_txs < 1) field = "mempool_max_txs", why = "must be at least 1";
    else if (c->mempool_max_bytes < c->max_tx_bytes)
        field = "mempool_max_bytes", why = "must be at least max_tx_bytes";
    else if (c->max_validators < 1) field = "max_validators", why = "must be at least 1";
    if (!field) return HS_OK;
    if (err && errlen) snprintf(err, errlen, "%s: %s", field, why);
    return HS_ERR_INVALID;
}

kvapp *kvapp_new(const kvapp_config *c, const hs_kv_store *kv) {
    if (kvapp_config_check(c, NULL, 0) != HS_OK || !kv) return NULL;
    if (hs_crypto_init() != HS_OK) return NULL;
    kvapp *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *c;
    a->kv = *kv;
    a->rules.chain_id = c->chain_id;
    a->rules.has_admin = c->has_admin;
    a->rules.admin_key = c->admin_key;
    a->rules.max_tx_bytes = c->max_tx_bytes;
    a->rules.max_key_bytes = c->max_key_bytes;
    a->rules.max_validators = c->max_validators;
    a->pool = mempool_new(c->mempool_max_txs, c->mempool_max_bytes);
    if (!a->pool) {
        free(a);
        return NULL;
    }
    return a;
}

void kvapp_free(kvapp *a) {
    if (!a) return;
    mempool_free(a->pool);
    free(a);
}

void kvapp_mempool_stats(kvapp *a, uint32_t *n_txs, uint64_t *bytes) {
    mempool_stats(a->pool, n_txs, bytes);
}

/* ---- app state keys ---- */

/* prefix || body, malloc'd into *out. */
static hs_status prefixed(uint8_t prefix, const uint8_t *body, size_t len, hs_bytes *out) {
    out->p = malloc(len + 1);
    if (!out->p) return HS_ERR_NOMEM;
    out->p[0] = prefix;
    if (len) memcpy(out->p + 1, body, len);
    out->len = (uint32_t)(len + 1);
    return HS_OK;
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

hs_status kvapp_genesis_state(const hs_app_updates *user, hs_app_updates *out) {
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < user->n_inserts; i++) {
        hs_bytes k = {0};
        hs_status st = prefixed(KVAPP_PREFIX_USER, user->insert_keys[i].p,
                                user->insert_keys[i].len, &k);
        if (st == HS_OK)
            st = hs_app_updates_insert(out, k.p, k.len, user->insert_values[i].p,
                                       user->insert_values[i].len);
        hs_bytes_free(&k);
        if (st != HS_OK) {
            hs_app_updates_free(out);
            return st;
        }
    }
    return HS_OK;
}

hs_status kvapp_read(const hs_kv_reader *r, const uint8_t *key, size_t klen, hs_bytes *out) {
    hs_bytes k = {0};
    hs_status st = prefixed(KVAPP_PREFIX_USER, key, klen, &k);
    if (st != HS_OK) return st;
    st = hs_bt_committed_app_state(r, k.p, k.len, out);
    hs_bytes_free(&k);
    return st;
}

/* The marker of tx as bytes of a decoded height. */
static hs_status marker_height(const hs_bytes *v, uint64_t *height) {
    if (v->len != 8) return HS_ERR_CORRUPT;
    *height = get_u64(v->p);
    return HS_OK;
}

hs_status kvapp_tx_height(const hs_kv_reader *r, const hs_hash *tx, uint64_t *height) {
    hs_bytes k = {0}, v = {0};
    hs_status st = prefixed(KVAPP_PREFIX_TX, tx->b, HS_HASH_LEN, &k);
    if (st != HS_OK) return st;
    st = hs_bt_committed_app_state(r, k.p, k.len, &v);
    hs_bytes_free(&k);
    if (st == HS_OK) st = marker_height(&v, height);
    hs_bytes_free(&v);
    return st;
}

/* Whether tx is committed or pending in the ancestors the view covers. */
static hs_status view_has_tx(const hs_app_view *view, const hs_hash *tx, bool *out) {
    *out = false;
    if (!view) return HS_OK;
    hs_bytes k = {0}, v = {0};
    hs_status st = prefixed(KVAPP_PREFIX_TX, tx->b, HS_HASH_LEN, &k);
    if (st != HS_OK) return st;
    st = hs_app_view_state(view, k.p, k.len, &v);
    hs_bytes_free(&k);
    hs_bytes_free(&v);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st == HS_OK) *out = true;
    return st;
}

/* data_hash = SHA-256(u32le(n) || SHA-256(datum 0) || ... ): begun with the count. */
static void data_hash_begin(crypto_hash_sha256_state *s, uint32_t n) {
    uint8_t nb[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    crypto_hash_sha256_init(s);
    crypto_hash_sha256_update(s, nb, sizeof nb);
}

/* The data hash from the datums' own hashes, when they are already known. */
static void data_hash_of(uint32_t n, const hs_hash *h, hs_hash *out) {
    crypto_hash_sha256_state s;
    data_hash_begin(&s, n);
    for (uint32_t i = 0; i < n; i++) crypto_hash_sha256_update(&s, h[i].b, HS_HASH_LEN);
    crypto_hash_sha256_final(&s, out->b);
}

/* SHA-256 of every datum, once per block: the data hash, the duplicate check and the
 * transactions' identities all use them. malloc'd into *out (NULL when d is empty). */
static hs_status hash_items(const hs_data *d, hs_hash **out) {
    *out = NULL;
    if (d->n == 0) return HS_OK;
    hs_hash *h = malloc(d->n * sizeof *h);
    if (!h) return HS_ERR_NOMEM;
    for (uint32_t i = 0; i < d->n; i++) hs_sha256(d->items[i].p, d->items[i].len, &h[i]);
    *out = h;
    return HS_OK;
}

void kvapp_data_hash(const hs_data *d, hs_hash *out) {
    crypto_hash_sha256_state s;
    data_hash_begin(&s, d->n);
    for (uint32_t i = 0; i < d->n; i++) {
        hs_hash one;
        hs_sha256(d->items[i].p, d->items[i].len, &one);
        crypto_hash_sha256_update(&s, one.b, HS_HASH_LEN);
    }
    crypto_hash_sha256_final(&s, out->b);
}

/* ---- validator sets ---- */

/* Applies one transaction's updates to vs in order (power 0 removes). */
static hs_status vs_apply_tx(hs_validator_set *vs, const kvtx *t) {
    for (uint32_t i = 0; i < t->n_updates; i++) {
        if (t->updates[i].power == 0) {
            hs_vs_remove(vs, &t->updates[i].key);
        } else {
            hs_status st = hs_vs_put(vs, &t->updates[i].key, t->updates[i].power);
            if (st != HS_OK) return st;
        }
    }
    return HS_OK;
}

/* NULL if vs is a set the chain can run on, else why not. */
static const char *vs_problem(const kvapp *a, const hs_validator_set *vs) {
    hs_u128 total = hs_vs_total_power(vs);
    if (vs->n == 0 || total == 0) return "would leave the validator set without power";
    if (vs->n > a->cfg.max_validators) return "would make the validator set too large";
    if (total >= MAX_TOTAL_POWER) return "would make the total power reach 2^63";
    return NULL;
}

/* ---- execution ---- */

/* What executing a block's data produced. Owns the update sets. */
typedef struct exec_result {
    bool valid;
    char reason[256]; /* why not valid */
    bool has_vsu;
    hs_app_updates asu;
    hs_vs_updates vsu;
} exec_result;

static int hash_cmp(const void *a, const void *b) {
    return memcmp(a, b, HS_HASH_LEN);
}

/* Data-level rules that need no decoding: count, bytes, no transaction twice. */
static hs_status check_shape(const kvapp *a, const hs_data *d, const hs_hash *hashes,
                             exec_result *r) {
    if (d->n > a->cfg.max_block_txs) {
        snprintf(r->reason, sizeof r->reason, "%u transactions; the limit is %u", d->n,
                 a->cfg.max_block_txs);
        return HS_OK;
    }
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < d->n; i++) bytes += d->items[i].len;
    if (bytes > a->cfg.max_block_bytes) {
        snprintf(r->reason, sizeof r->reason, "%llu transaction bytes; the limit is %llu",
                 (unsigned long long)bytes, (unsigned long long)a->cfg.max_block_bytes);
        return HS_OK;
    }
    if (d->n > 1) {
        hs_hash *h = malloc(d->n * sizeof *h);
        if (!h) return HS_ERR_NOMEM;
        memcpy(h, hashes, d->n * sizeof *h);
        qsort(h, d->n, sizeof *h, hash_cmp);
        bool dup = false;
        for (uint32_t i = 1; i < d->n && !dup; i++) dup = hash_cmp(&h[i - 1], &h[i]) == 0;
        free(h);
        if (dup) {
            snprintf(r->reason, sizeof r->reason, "a transaction appears twice");
            return HS_OK;
        }
    }
    r->valid = true;
    return HS_OK;
}

/* Adds one valid transaction's effects to r. */
static hs_status apply_tx(const kvtx *t, uint64_t height, exec_result *r) {
    hs_bytes k = {0};
    hs_status st = HS_OK;
    switch (t->kind) {
    case KVTX_PUT:
        st = prefixed(KVAPP_PREFIX_USER, t->key.p, t->key.len, &k);
        if (st == HS_OK) st = hs_app_updates_insert(&r->asu, k.p, k.len, t->value.p, t->value.len);
        break;
    case KVTX_DELETE:
        st = prefixed(KVAPP_PREFIX_USER, t->key.p, t->key.len, &k);
        if (st == HS_OK) st = hs_app_updates_delete(&r->asu, k.p, k.len);
        break;
    case KVTX_UPDATE_VALIDATORS:
        r->has_vsu = true;
        for (uint32_t i = 0; i < t->n_updates && st == HS_OK; i++) {
            st = t->updates[i].power ? hs_vs_updates_insert(&r->vsu, &t->updates[i].key,
                                                            t->updates[i].power)
                                     : hs_vs_updates_delete(&r->vsu, &t->updates[i].key);
        }
        break;
    }
    hs_bytes_free(&k);
    if (st != HS_OK) return st;
    uint8_t h[8];
    put_u64(h, height);
    st = prefixed(KVAPP_PREFIX_TX, t->hash.b, HS_HASH_LEN, &k);
    if (st == HS_OK) st = hs_app_updates_insert(&r->asu, k.p, k.len, h, sizeof h);
    hs_bytes_free(&k);
    return st;
}

/* Executes data on top of view for a block at `height`; hashes[i] is the SHA-256 of datum i.
 * Returns a non-OK status only when it could not decide (no memory, store error); a verdict of
 * invalid is HS_OK with !r->valid. */
static hs_status execute(const kvapp *a, const hs_app_view *view, uint64_t height,
                         const hs_data *d, const hs_hash *hashes, exec_result *r) {
    memset(r, 0, sizeof *r);
    hs_status st = check_shape(a, d, hashes, r);
    if (st != HS_OK || !r->valid) return st;
    r->valid = false;
    hs_validator_set vs = {0};
    bool vs_read = false;
    for (uint32_t i = 0; i < d->n && st == HS_OK; i++) {
        kvtx t;
        char why[200];
        st = kvtx_decode_hashed(&a->rules, d->items[i].p, d->items[i].len, &hashes[i], &t, why,
                                sizeof why);
        if (st == HS_ERR_INVALID) { /* a verdict, not a failure */
            snprintf(r->reason, sizeof r->reason, "transaction %u: %s", i, why);
            st = HS_OK;
            goto out;
        }
        if (st != HS_OK) break;
        bool seen;
        st = view_has_tx(view, &t.hash, &seen);
        if (st == HS_OK && seen) {
            snprintf(r->reason, sizeof r->reason,
                     "transaction %u: already committed or pending in an ancestor", i);
            kvtx_free(&t);
            goto out;
        }
        if (st == HS_OK && t.kind == KVTX_UPDATE_VALIDATORS && !vs_read) {
            st = view ? hs_app_view_validator_set(view, &vs) : HS_OK;
            vs_read = true;
        }
        if (st == HS_OK && t.kind == KVTX_UPDATE_VALIDATORS) st = vs_apply_tx(&vs, &t);
        if (st == HS_OK) st = apply_tx(&t, height, r);
        kvtx_free(&t);
    }
    if (st != HS_OK) goto out;
    const char *problem = r->has_vsu ? vs_problem(a, &vs) : NULL;
    if (problem) {
        snprintf(r->reason, sizeof r->reason, "validator-set updates %s", problem);
        goto out;
    }
    r->valid = true;
out:
    hs_vs_free(&vs);
    if (st != HS_OK || !r->valid) {
        hs_app_updates_free(&r->asu);
        hs_vs_updates_free(&r->vsu);
        r->has_vsu = false;
    }
    return st;
}

/* ---- validate_block ---- */

static hs_status validate(void *self, const hs_validate_block_request *req,
                          hs_validate_block_response *resp) {
    kvapp *a = self;
    const hs_block *b = req->proposed_block;
    resp->valid = false;
    hs_hash *hashes = NULL, dh;
    hs_status st = hash_items(&b->data, &hashes);
    if (st != HS_OK) return st;
    data_hash_of(b->data.n, hashes, &dh);
    if (memcmp(dh.b, b->data_hash.b, HS_HASH_LEN) != 0) {
        hs_log(HS_LOG_WARN, MODULE, "invalid block height=%llu: data_hash does not match its data",
               (unsigned long long)b->height);
        free(hashes);
        return HS_OK;
    }
    exec_result r;
    st = execute(a, req->tree, b->height, &b->data, hashes, &r);
    free(hashes);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "cannot validate block height=%llu: %s",
               (unsigned long long)b->height, hs_status_str(st));
        return st;
    }
    if (!r.valid) {
        hs_log(HS_LOG_WARN, MODULE, "invalid block height=%llu: %s",
               (unsigned long long)b->height, r.reason);
        return HS_OK;
    }
    resp->valid = true;
    resp->has_app_state_updates = r.asu.n_inserts + r.asu.n_deletes > 0;
    resp->app_state_updates = r.asu;
    resp->has_validator_set_updates = r.has_vsu;
    resp->validator_set_updates = r.vsu;
    if (!resp->has_app_state_updates) hs_app_updates_free(&resp->app_state_updates);
    return HS_OK;
}

/* ---- produce_block ---- */

/* The block being assembled. */
typedef struct packer {
    const kvapp *a;
    const hs_app_view *view;
    hs_data data;         /* owns the chosen transactions */
    hs_hash *hashes;      /* hashes[i]: SHA-256 of data.items[i], from the mempool */
    uint64_t bytes;
    hs_validator_set vs;  /* committed set with the chosen updates applied */
    bool vs_read;
    uint64_t cursor;      /* mempool arrival number of the last transaction looked at */
    hs_hash *evict;       /* committed transactions still in the mempool */
    size_t n_evict, cap_evict;
} packer;

static void packer_evict(packer *p, const hs_hash *h) {
    if (p->n_evict == p->cap_evict) {
        size_t cap = p->cap_evict ? p->cap_evict * 2 : 16;
        hs_hash *e = realloc(p->evict, cap * sizeof *e);
        if (!e) return; /* it only stays in the mempool a little longer */
        p->evict = e;
        p->cap_evict = cap;
    }
    p->evict[p->n_evict++] = *h;
}

/* Whether tx already has a marker where the new block would go: if committed, it also goes on
 * the eviction list (its CommitBlock event may have been dropped). */
static hs_status packer_seen(packer *p, const hs_hash *tx, bool *seen) {
    hs_status st = view_has_tx(p->view, tx, seen);
    if (st != HS_OK || !*seen) return st;
    uint64_t h;
    if (kvapp_tx_height(hs_app_view_reader(p->view), tx, &h) == HS_OK) packer_evict(p, tx);
    return HS_OK;
}

/* A validator-set update is taken only if the set it leaves behind is still usable. */
static hs_status packer_vs_ok(packer *p, const kvtx *t, bool *ok) {
    *ok = false;
    if (!p->vs_read) {
        hs_status st = hs_app_view_validator_set(p->view, &p->vs);
        if (st != HS_OK) return st;
        p->vs_read = true;
    }
    hs_validator_set trial = {0};
    hs_status st = hs_vs_copy(&trial, &p->vs);
    if (st == HS_OK) st = vs_apply_tx(&trial, t);
    if (st == HS_OK && !vs_problem(p->a, &trial)) {
        hs_vs_free(&p->vs);
        p->vs = trial;
        *ok = true;
        return HS_OK;
    }
    hs_vs_free(&trial);
    return st;
}

/* Considers one waiting transaction; takes ownership of item->tx if it goes in the block. */
static hs_status packer_offer(packer *p, mempool_item *item) {
    const kvapp *a = p->a;
    if (p->bytes + item->tx.len > a->cfg.max_block_bytes) return HS_OK; /* a smaller one may fit */
    bool seen;
    hs_status st = packer_seen(p, &item->hash, &seen);
    if (st != HS_OK || seen) return st;
    kvtx t;
    char why[200];
    st = kvtx_decode_hashed(&a->rules, item->tx.p, item->tx.len, &item->hash, &t, why, sizeof why);
    if (st == HS_ERR_INVALID) { /* was valid when admitted: cannot happen, but never pack it */
        packer_evict(p, &item->hash);
        return HS_OK;
    }
    if (st != HS_OK) return st;
    bool ok = true;
    if (t.kind == KVTX_UPDATE_VALIDATORS) st = packer_vs_ok(p, &t, &ok);
    kvtx_free(&t);
    if (st != HS_OK || !ok) return st;
    assert(p->data.n < a->cfg.max_block_txs); /* packer_fill stops at the limit */
    p->hashes[p->data.n] = item->hash;
    p->data.items[p->data.n++] = item->tx;
    p->bytes += item->tx.len;
    assert(p->bytes <= a->cfg.max_block_bytes); /* checked on entry */
    memset(&item->tx, 0, sizeof item->tx);
    return HS_OK;
}

/* Fills p->data from the mempool, oldest first, up to the block limits, starting after the
 * transactions already looked at (p->cursor). */
static hs_status packer_fill(packer *p, mempool *pool) {
    const kvapp *a = p->a;
    if (!p->data.items) {
        p->data.items = calloc(a->cfg.max_block_txs, sizeof *p->data.items);
        if (!p->data.items) return HS_ERR_NOMEM;
    }
    if (!p->hashes) {
        p->hashes = malloc(a->cfg.max_block_txs * sizeof *p->hashes);
        if (!p->hashes) return HS_ERR_NOMEM;
    }
    mempool_item *items = calloc(COLLECT_CHUNK, sizeof *items);
    if (!items) return HS_ERR_NOMEM;
    hs_status st = HS_OK;
    while (st == HS_OK && p->data.n < a->cfg.max_block_txs) {
        size_t n = mempool_collect(pool, &p->cursor, COLLECT_CHUNK, a->cfg.max_block_bytes,
                                   items);
        if (n == 0) break;
        for (size_t i = 0; i < n; i++) {
            if (st == HS_OK && p->data.n < a->cfg.max_block_txs) st = packer_offer(p, &items[i]);
            hs_bytes_free(&items[i].tx);
        }
    }
    free(items);
    return st;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Fills the block; if it would be empty, waits up to empty_block_wait_ms for a transaction,
 * so an idle chain does not write a stream of empty blocks as fast as the network allows. */
static hs_status packer_fill_or_wait(packer *p, mempool *pool) {
    hs_status st = packer_fill(p, pool);
    uint64_t wait = p->a->cfg.empty_block_wait_ms;
    if (st != HS_OK || p->data.n > 0 || wait == 0) return st;
    uint64_t deadline = now_ms() + wait;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline || !mempool_wait_after(pool, p->cursor, deadline - now)) return st;
        st = packer_fill(p, pool);
        if (st != HS_OK || p->data.n > 0) return st;
    }
}

/* Bound on the walk below: a pipeline deeper than this is not idle anyway. */
#define PIPELINE_WALK_MAX 16

/* Whether a block between `parent` and the highest committed block (the pipeline) carries
 * transactions. Those commit only once blocks are built on top of them, so the wait for
 * transactions that keeps an idle chain quiet must not delay them: without this, each of the
 * three blocks needed to commit a lone transaction waited empty_block_wait_ms first. */
static hs_status pipeline_has_transactions(const hs_kv_reader *r, const hs_hash *parent,
                                           bool *out) {
    *out = false;
    uint64_t committed = 0;
    hs_status st = hs_bt_highest_committed_height(r, &committed);
    bool any_committed = st == HS_OK;
    if (st != HS_OK && st != HS_NOT_FOUND) return st;
    hs_hash h = *parent;
    for (int i = 0; i < PIPELINE_WALK_MAX; i++) {
        uint64_t height = 0;
        st = hs_bt_block_height(r, &h, &height);
        if (st != HS_OK) return st;
        if (any_committed && height <= committed) return HS_OK;
        uint32_t n = 0;
        st = hs_bt_block_data_len(r, &h, &n);
        if (st != HS_OK) return st;
        if (n > 0) {
            *out = true;
            return HS_OK;
        }
        hs_pc j = {0};
        st = hs_bt_block_justify(r, &h, &j);
        if (st != HS_OK) return st;
        bool genesis = hs_pc_is_genesis(&j);
        h = j.block;
        hs_pc_free(&j);
        if (genesis) return HS_OK;
    }
    *out = true; /* a long uncommitted pipeline: propose at once */
    return HS_OK;
}

static hs_status produce(void *self, const hs_produce_block_request *req,
                         hs_produce_block_response *resp) {
    kvapp *a = self;
    uint64_t height = 0;
    if (req->has_parent) {
        hs_status st = hs_bt_block_height(hs_app_view_reader(req->tree), &req->parent, &height);
        if (st != HS_OK) return st;
        height++;
    }
    packer p;
    memset(&p, 0, sizeof p);
    p.a = a;
    p.view = req->tree;
    bool busy = false;
    if (req->has_parent) {
        hs_status st = pipeline_has_transactions(hs_app_view_reader(req->tree), &req->parent,
                                                 &busy);
        if (st != HS_OK) return st;
    }
    hs_status st = busy ? packer_fill(&p, a->pool) : packer_fill_or_wait(&p, a->pool);
    for (size_t i = 0; i < p.n_evict; i++) mempool_remove(a->pool, &p.evict[i]);
    free(p.evict);
    hs_vs_free(&p.vs);
    exec_result r;
    if (st == HS_OK) st = execute(a, req->tree, height, &p.data, p.hashes, &r);
    if (st == HS_OK && !r.valid) {
        /* A bug if it happens: propose an empty block rather than one every replica rejects. */
        hs_log(HS_LOG_ERROR, MODULE, "produced an invalid block (%s); proposing it empty",
               r.reason);
        hs_data_free(&p.data);
        st = execute(a, req->tree, height, &p.data, p.hashes, &r);
    }
    if (st != HS_OK) {
        hs_data_free(&p.data);
        free(p.hashes);
        return st;
    }
    resp->data = p.data;
    data_hash_of(p.data.n, p.hashes, &resp->data_hash);
    free(p.hashes);
    resp->has_app_state_updates = r.asu.n_inserts + r.asu.n_deletes > 0;
    resp->app_state_updates = r.asu;
    resp->has_validator_set_updates = r.has_vsu;
    resp->validator_set_updates = r.vsu;
    return HS_OK;
}

hs_app kvapp_app(kvapp *a) {
    hs_app app = {.self = a,
                  .produce_block = produce,
                  .validate_block = validate,
                  .validate_block_for_sync = validate};
    return app;
}

/* ---- the mempool's doors ---- */

/* Would these updates leave the committed set usable? Advisory at admission: the block that
 * carries the transaction decides against the state of its time. */
static const char *vs_admission_problem(kvapp *a, const kvtx *t) {
    hs_kv_reader r = hs_kv_store_reader(&a->kv);
    hs_validator_set vs = {0};
    if (hs_bt_committed_vs(&r, &vs) != HS_OK) return NULL;
    const char *problem = vs_apply_tx(&vs, t) == HS_OK ? vs_problem(a, &vs) : NULL;
    hs_vs_free(&vs);
    return problem;
}

static kvapp_verdict say(kvapp_verdict v, char *reason, size_t rlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static kvapp_verdict say(kvapp_verdict v, char *reason, size_t rlen, const char *fmt, ...) {
    if (reason && rlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, rlen, fmt, ap);
        va_end(ap);
    }
    return v;
}

kvapp_verdict kvapp_submit(kvapp *a, const uint8_t *tx, size_t len, hs_hash *hash,
                           char *reason, size_t rlen) {
    if (reason && rlen) reason[0] = '\0';
    kvtx t;
    char why[200];
    hs_status st = kvtx_decode(&a->rules, tx, len, &t, why, sizeof why);
    if (st == HS_ERR_INVALID) return say(KVAPP_INVALID, reason, rlen, "%s", why);
    if (st != HS_OK) return say(KVAPP_INTERNAL, reason, rlen, "%s", hs_status_str(st));
    if (hash) *hash = t.hash;
    kvapp_verdict v = KVAPP_ACCEPTED;
    const char *problem;
    uint64_t height;
    hs_kv_reader r = hs_kv_store_reader(&a->kv);
    if (mempool_contains(a->pool, &t.hash)) {
        v = say(KVAPP_DUPLICATE, reason, rlen, "already in the mempool");
    } else if ((st = kvapp_tx_height(&r, &t.hash, &height)) == HS_OK) {
        v = say(KVAPP_DUPLICATE, reason, rlen, "already committed at height %llu",
                (unsigned long long)height);
    } else if (st != HS_NOT_FOUND) {
        v = say(KVAPP_INTERNAL, reason, rlen, "cannot read the store: %s", hs_status_str(st));
    } else if (t.kind == KVTX_UPDATE_VALIDATORS && (problem = vs_admission_problem(a, &t))) {
        v = say(KVAPP_INVALID, reason, rlen, "update_validators: %s", problem);
    } else {
        switch (mempool_add(a->pool, &t.hash, tx, len)) {
        case MEMPOOL_ADDED: break;
        case MEMPOOL_DUPLICATE: /* added by another thread since the check above */
            v = say(KVAPP_DUPLICATE, reason, rlen, "already in the mempool");
            break;
        case MEMPOOL_FULL: {
            uint32_t n;
            uint64_t bytes;
            mempool_stats(a->pool, &n, &bytes);
            v = say(KVAPP_FULL, reason, rlen,
                    "mempool full (%u of %u transactions, %llu of %llu bytes); retry later", n,
                    a->cfg.mempool_max_txs, (unsigned long long)bytes,
                    (unsigned long long)a->cfg.mempool_max_bytes);
            break;
        }
        case MEMPOOL_NOMEM: v = say(KVAPP_INTERNAL, reason, rlen, "out of memory"); break;
        }
    }
    kvtx_free(&t);
    return v;
}

hs_status kvapp_on_commit(kvapp *a, const hs_hash *block, uint64_t *height, uint32_t *n_txs,
                          kvapp_tx_fn each_tx, void *ctx) {
    hs_kv_reader r = hs_kv_store_reader(&a->kv);
    hs_block b;
    memset(&b, 0, sizeof b);
    hs_status st = hs_bt_block(&r, block, &b);
    if (st != HS_OK) return st;
    for (uint32_t i = 0; i < b.data.n; i++) {
        hs_hash h;
        hs_sha256(b.data.items[i].p, b.data.items[i].len, &h);
        mempool_remove(a->pool, &h);
        if (each_tx) each_tx(ctx, &h, b.height);
    }
    if (height) *height = b.height;
    if (n_txs) *n_txs = b.data.n;
    hs_block_free(&b);
    return HS_OK;
}
