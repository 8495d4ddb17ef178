/* tests/common/number_app.c - see number_app.h. */
#include "number_app.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotstuff/block_tree.h"
#include "hotstuff/crypto.h"

struct napp {
    pthread_mutex_t mu; /* guards the queue */
    uint8_t *txs;       /* Borsh-encoded transactions, back to back */
    size_t len, cap;
    uint32_t count;
    atomic_uint produce_ms, validate_ms;
    atomic_uint_fast64_t produced;
};

static const uint8_t number_key[1] = {NAPP_NUMBER_KEY};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static void sleep_ms(unsigned ms) {
    if (!ms) return;
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

napp *napp_new(void) {
    napp *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    pthread_mutex_init(&a->mu, NULL);
    atomic_init(&a->produce_ms, 0);
    atomic_init(&a->validate_ms, 0);
    atomic_init(&a->produced, 0);
    return a;
}

void napp_free(napp *a) {
    if (!a) return;
    pthread_mutex_destroy(&a->mu);
    free(a->txs);
    free(a);
}

void napp_set_delays(napp *a, unsigned produce_ms, unsigned validate_ms) {
    atomic_store(&a->produce_ms, produce_ms);
    atomic_store(&a->validate_ms, validate_ms);
}

/* ---- transaction queue ---- */

static size_t tx_size(const napp_tx *t) {
    switch (t->kind) {
    case NAPP_INCREMENT: return 1;
    case NAPP_SET_VALIDATOR: return 1 + HS_KEY_LEN + 8;
    case NAPP_DELETE_VALIDATOR: return 1 + HS_KEY_LEN;
    }
    return 0;
}

bool napp_submit(napp *a, const napp_tx *txs, size_t n) {
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tx_size(&txs[i])) return false;
        need += tx_size(&txs[i]);
    }
    pthread_mutex_lock(&a->mu);
    if (a->len + need > a->cap) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap < a->len + need) cap *= 2;
        uint8_t *p = realloc(a->txs, cap);
        if (!p) {
            pthread_mutex_unlock(&a->mu);
            return false;
        }
        a->txs = p;
        a->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = a->txs + a->len;
        p[0] = (uint8_t)txs[i].kind;
        if (txs[i].kind != NAPP_INCREMENT) memcpy(p + 1, txs[i].key.b, HS_KEY_LEN);
        if (txs[i].kind == NAPP_SET_VALIDATOR) {
            for (int b = 0; b < 8; b++) p[1 + HS_KEY_LEN + b] = (uint8_t)(txs[i].power >> (8 * b));
        }
        a->len += tx_size(&txs[i]);
    }
    a->count += (uint32_t)n;
    pthread_mutex_unlock(&a->mu);
    return true;
}

bool napp_submit_increment(napp *a) {
    napp_tx t = {.kind = NAPP_INCREMENT};
    return napp_submit(a, &t, 1);
}

bool napp_submit_set_validator(napp *a, const hs_key *key, uint64_t power) {
    napp_tx t = {.kind = NAPP_SET_VALIDATOR, .key = *key, .power = power};
    return napp_submit(a, &t, 1);
}

bool napp_submit_delete_validator(napp *a, const hs_key *key) {
    napp_tx t = {.kind = NAPP_DELETE_VALIDATOR, .key = *key};
    return napp_submit(a, &t, 1);
}

size_t napp_queued(napp *a) {
    pthread_mutex_lock(&a->mu);
    size_t n = a->count;
    pthread_mutex_unlock(&a->mu);
    return n;
}

uint64_t napp_blocks_produced(napp *a) { return atomic_load(&a->produced); }

/* ---- execution ---- */

/* Walks a Borsh Vec<Tx>. For each tx calls fn (when not NULL); returns false if the bytes are
 * not exactly one well-formed Vec<Tx>. */
typedef bool (*tx_visit_fn)(void *ctx, const napp_tx *t);

static bool walk_datum(const hs_bytes *d, tx_visit_fn fn, void *ctx) {
    if (d->len < 4) return false;
    const uint8_t *p = d->p, *end = d->p + d->len;
    uint32_t n = get_u32(p);
    p += 4;
    for (uint32_t i = 0; i < n; i++) {
        if (p >= end) return false;
        napp_tx t;
        memset(&t, 0, sizeof t);
        switch (*p) {
        case NAPP_INCREMENT: t.kind = NAPP_INCREMENT; break;
        case NAPP_SET_VALIDATOR: t.kind = NAPP_SET_VALIDATOR; break;
        case NAPP_DELETE_VALIDATOR: t.kind = NAPP_DELETE_VALIDATOR; break;
        default: return false;
        }
        size_t sz = tx_size(&t);
        if ((size_t)(end - p) < sz) return false;
        if (t.kind != NAPP_INCREMENT) memcpy(t.key.b, p + 1, HS_KEY_LEN);
        if (t.kind == NAPP_SET_VALIDATOR) t.power = get_u64(p + 1 + HS_KEY_LEN);
        p += sz;
        if (fn && !fn(ctx, &t)) return false;
    }
    return p == end; /* Borsh rejects trailing bytes */
}

typedef struct exec_ctx {
    uint32_t number;
    bool any_vs_tx;
    hs_vs_updates *vsu;
    hs_status st;
} exec_ctx;

static bool exec_tx(void *ctx, const napp_tx *t) {
    exec_ctx *x = ctx;
    switch (t->kind) {
    case NAPP_INCREMENT: x->number++; return true;
    case NAPP_SET_VALIDATOR:
        x->any_vs_tx = true;
        x->st = hs_vs_updates_insert(x->vsu, &t->key, t->power);
        return x->st == HS_OK;
    case NAPP_DELETE_VALIDATOR:
        x->any_vs_tx = true;
        x->st = hs_vs_updates_delete(x->vsu, &t->key);
        return x->st == HS_OK;
    }
    return false;
}

/* The number as of `tree` (the parent block's view). */
static hs_status view_number(const hs_app_view *tree, uint32_t *out) {
    *out = 0;
    if (!tree) return HS_OK;
    hs_bytes v = {0};
    hs_status st = hs_app_view_state(tree, number_key, sizeof number_key, &v);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    if (v.len != 4) st = HS_ERR_CORRUPT;
    else *out = get_u32(v.p);
    hs_bytes_free(&v);
    return st;
}

/* Executes datum on top of the number in `tree`. Sets *valid false for a body that does not
 * decode; otherwise fills the updates (allocated here, owned by the caller). */
static hs_status execute(const hs_app_view *tree, const hs_bytes *datum, bool *valid,
                         bool *has_asu, hs_app_updates *asu, bool *has_vsu,
                         hs_vs_updates *vsu) {
    *valid = false;
    uint32_t before;
    hs_status st = view_number(tree, &before);
    if (st != HS_OK) return st;
    exec_ctx x = {.number = before, .vsu = vsu, .st = HS_OK};
    if (!walk_datum(datum, exec_tx, &x)) {
        hs_vs_updates_free(vsu);
        return x.st; /* HS_OK for a malformed body: that is a verdict, not a failure */
    }
    if (x.number != before) {
        uint8_t val[4];
        put_u32(val, x.number);
        st = hs_app_updates_insert(asu, number_key, sizeof number_key, val, sizeof val);
        if (st != HS_OK) {
            hs_vs_updates_free(vsu);
            return st;
        }
        *has_asu = true;
    }
    *has_vsu = x.any_vs_tx;
    *valid = true;
    return HS_OK;
}

static hs_status validate_common(const hs_validate_block_request *req,
                                 hs_validate_block_response *resp) {
    const hs_block *b = req->proposed_block;
    resp->valid = false;
    if (b->data.n != 1) return HS_OK;
    hs_hash h;
    hs_sha256(b->data.items[0].p, b->data.items[0].len, &h);
    if (memcmp(h.b, b->data_hash.b, HS_HASH_LEN) != 0) return HS_OK;
    bool valid;
    hs_status st = execute(req->tree, &b->data.items[0], &valid, &resp->has_app_state_updates,
                           &resp->app_state_updates, &resp->has_validator_set_updates,
                           &resp->validator_set_updates);
    if (st != HS_OK || !valid) {
        hs_app_updates_free(&resp->app_state_updates);
        hs_vs_updates_free(&resp->validator_set_updates);
        resp->has_app_state_updates = resp->has_validator_set_updates = false;
        return st;
    }
    resp->valid = true;
    return HS_OK;
}

static hs_status app_validate_for_sync(void *self, const hs_validate_block_request *req,
                                       hs_validate_block_response *resp) {
    return validate_common(req, resp);
}

static hs_status app_validate(void *self, const hs_validate_block_request *req,
                              hs_validate_block_response *resp) {
    napp *a = self;
    sleep_ms(atomic_load(&a->validate_ms));
    return validate_common(req, resp);
}

static hs_status app_produce(void *self, const hs_produce_block_request *req,
                             hs_produce_block_response *resp) {
    napp *a = self;
    sleep_ms(atomic_load(&a->produce_ms));

    /* Take the whole queue: the block's datum is Borsh(Vec<Tx>). */
    pthread_mutex_lock(&a->mu);
    size_t len = 4 + a->len;
    uint8_t *datum = malloc(len);
    if (!datum) {
        pthread_mutex_unlock(&a->mu);
        return HS_ERR_NOMEM;
    }
    put_u32(datum, a->count);
    if (a->len) memcpy(datum + 4, a->txs, a->len);
    a->len = 0;
    a->count = 0;
    pthread_mutex_unlock(&a->mu);

    hs_status st = HS_ERR_NOMEM;
    resp->data.items = calloc(1, sizeof *resp->data.items);
    if (!resp->data.items) goto out;
    resp->data.n = 1;
    st = hs_bytes_set(&resp->data.items[0], datum, len);
    if (st != HS_OK) goto out;
    hs_sha256(datum, len, &resp->data_hash);

    /* The library ignores the producer's updates (it validates its own proposal when the
     * broadcast loops back), but fill them as the reference does. */
    bool valid;
    st = execute(req->tree, &resp->data.items[0], &valid, &resp->has_app_state_updates,
                 &resp->app_state_updates, &resp->has_validator_set_updates,
                 &resp->validator_set_updates);
    if (st == HS_OK && !valid) st = HS_ERR_APP; /* we built it: cannot happen */
out:
    free(datum);
    if (st != HS_OK) {
        hs_data_free(&resp->data);
        hs_app_updates_free(&resp->app_state_updates);
        hs_vs_updates_free(&resp->validator_set_updates);
        resp->has_app_state_updates = resp->has_validator_set_updates = false;
        return st;
    }
    atomic_fetch_add(&a->produced, 1);
    return HS_OK;
}

hs_app napp_app(napp *a) {
    hs_app app = {
        .self = a,
        .produce_block = app_produce,
        .validate_block = app_validate,
        .validate_block_for_sync = app_validate_for_sync,
    };
    return app;
}

/* ---- helpers for tests and the demo ---- */

hs_status napp_committed_number(const hs_kv_reader *r, uint32_t *out) {
    *out = 0;
    hs_bytes v = {0};
    hs_status st = hs_bt_committed_app_state(r, number_key, sizeof number_key, &v);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    if (v.len != 4) st = HS_ERR_CORRUPT;
    else *out = get_u32(v.p);
    hs_bytes_free(&v);
    return st;
}

static bool count_inc(void *ctx, const napp_tx *t) {
    if (t->kind == NAPP_INCREMENT) ++*(int64_t *)ctx;
    return true;
}

int64_t napp_count_increments(const hs_data *data) {
    if (data->n != 1) return -1;
    int64_t n = 0;
    return walk_datum(&data->items[0], count_inc, &n) ? n : -1;
}
