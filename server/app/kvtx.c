/* server/app/kvtx.c - see kvtx.h. */
#include "app/kvtx.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hotstuff/crypto.h"
#include "hotstuff/v1/kvapp.pb-c.h"

/* Domain separator of validator-update signatures (kvapp.proto), NUL included. */
static const char vs_domain[] = "hotstuff.v1.UpdateValidators";

void kvtx_free(kvtx *t) {
    if (!t) return;
    hs_bytes_free(&t->key);
    hs_bytes_free(&t->value);
    free(t->updates);
    memset(t, 0, sizeof *t);
}

void kvtx_hex(const hs_hash *h, char out[65]) {
    sodium_bin2hex(out, 65, h->b, HS_HASH_LEN);
}

static hs_status reject(char *reason, size_t rlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static hs_status reject(char *reason, size_t rlen, const char *fmt, ...) {
    if (reason && rlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, rlen, fmt, ap);
        va_end(ap);
    }
    return HS_ERR_INVALID;
}

/* ---- signing bytes ---- */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

hs_status kvtx_vs_signing_bytes(uint64_t chain_id, uint64_t nonce, const hs_validator *updates,
                                size_t n, uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    if (n > UINT32_MAX) return HS_ERR_INVALID;
    size_t total = sizeof vs_domain + 8 + 8 + 4 + n * (HS_KEY_LEN + 8);
    uint8_t *p = malloc(total);
    if (!p) return HS_ERR_NOMEM;
    size_t k = 0;
    memcpy(p, vs_domain, sizeof vs_domain);
    k += sizeof vs_domain;
    put_u64(p + k, chain_id);
    k += 8;
    put_u64(p + k, nonce);
    k += 8;
    put_u32(p + k, (uint32_t)n);
    k += 4;
    for (size_t i = 0; i < n; i++) {
        memcpy(p + k, updates[i].key.b, HS_KEY_LEN);
        k += HS_KEY_LEN;
        put_u64(p + k, updates[i].power);
        k += 8;
    }
    assert(k == total); /* the layout above is exactly what was sized */
    *out = p;
    *len = total;
    return HS_OK;
}

/* ---- encoding ---- */

static hs_status pack(const Hotstuff__V1__KvTransaction *m, uint8_t **out, size_t *len) {
    size_t n = hotstuff__v1__kv_transaction__get_packed_size(m);
    uint8_t *p = malloc(n ? n : 1);
    if (!p) return HS_ERR_NOMEM;
    size_t w = hotstuff__v1__kv_transaction__pack(m, p);
    assert(w == n); /* protobuf-c writes what it sized */
    (void)w;
    *out = p;
    *len = n;
    return HS_OK;
}

hs_status kvtx_encode_put(uint64_t nonce, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen, uint8_t **out, size_t *len) {
    Hotstuff__V1__KvTransaction tx = HOTSTUFF__V1__KV_TRANSACTION__INIT;
    Hotstuff__V1__KvTransaction__Put put = HOTSTUFF__V1__KV_TRANSACTION__PUT__INIT;
    put.key.data = (uint8_t *)key;
    put.key.len = klen;
    put.value.data = (uint8_t *)val;
    put.value.len = vlen;
    tx.nonce = nonce;
    tx.op_case = HOTSTUFF__V1__KV_TRANSACTION__OP_PUT;
    tx.put = &put;
    return pack(&tx, out, len);
}

hs_status kvtx_encode_delete(uint64_t nonce, const uint8_t *key, size_t klen, uint8_t **out,
                             size_t *len) {
    Hotstuff__V1__KvTransaction tx = HOTSTUFF__V1__KV_TRANSACTION__INIT;
    Hotstuff__V1__KvTransaction__Delete del = HOTSTUFF__V1__KV_TRANSACTION__DELETE__INIT;
    del.key.data = (uint8_t *)key;
    del.key.len = klen;
    tx.nonce = nonce;
    tx.op_case = HOTSTUFF__V1__KV_TRANSACTION__OP_DELETE;
    tx.delete_ = &del;
    return pack(&tx, out, len);
}

hs_status kvtx_encode_update_validators_raw(uint64_t nonce, const hs_validator *updates,
                                            size_t n, const hs_sig *sig, uint8_t **out,
                                            size_t *len) {
    Hotstuff__V1__KvTransaction tx = HOTSTUFF__V1__KV_TRANSACTION__INIT;
    Hotstuff__V1__KvTransaction__UpdateValidators uv =
        HOTSTUFF__V1__KV_TRANSACTION__UPDATE_VALIDATORS__INIT;
    Hotstuff__V1__KvTransaction__ValidatorUpdate *items = NULL, **ptrs = NULL;
    if (n) {
        items = calloc(n, sizeof *items);
        ptrs = calloc(n, sizeof *ptrs);
        if (!items || !ptrs) {
            free(items);
            free(ptrs);
            return HS_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        Hotstuff__V1__KvTransaction__ValidatorUpdate init =
            HOTSTUFF__V1__KV_TRANSACTION__VALIDATOR_UPDATE__INIT;
        items[i] = init;
        items[i].key.data = (uint8_t *)updates[i].key.b;
        items[i].key.len = HS_KEY_LEN;
        items[i].power = updates[i].power;
        ptrs[i] = &items[i];
    }
    uv.n_updates = n;
    uv.updates = ptrs;
    if (sig) {
        uv.signature.data = (uint8_t *)sig->b;
        uv.signature.len = HS_SIG_LEN;
    }
    tx.nonce = nonce;
    tx.op_case = HOTSTUFF__V1__KV_TRANSACTION__OP_UPDATE_VALIDATORS;
    tx.update_validators = &uv;
    hs_status st = pack(&tx, out, len);
    free(items);
    free(ptrs);
    return st;
}

hs_status kvtx_encode_update_validators(uint64_t chain_id, uint64_t nonce,
                                        const hs_validator *updates, size_t n,
                                        const hs_keypair *admin, uint8_t **out, size_t *len) {
    uint8_t *msg;
    size_t mlen;
    hs_status st = kvtx_vs_signing_bytes(chain_id, nonce, updates, n, &msg, &mlen);
    if (st != HS_OK) return st;
    hs_sig sig;
    hs_sign(admin, msg, mlen, &sig);
    free(msg);
    return kvtx_encode_update_validators_raw(nonce, updates, n, &sig, out, len);
}

/* ---- decoding ---- */

/* protobuf-c keeps fields it does not know and would re-encode them, so the canonical check
 * alone does not catch them. */
static bool has_unknown_fields(const Hotstuff__V1__KvTransaction *m) {
    if (m->base.n_unknown_fields) return true;
    switch (m->op_case) {
    case HOTSTUFF__V1__KV_TRANSACTION__OP_PUT: return m->put->base.n_unknown_fields != 0;
    case HOTSTUFF__V1__KV_TRANSACTION__OP_DELETE: return m->delete_->base.n_unknown_fields != 0;
    case HOTSTUFF__V1__KV_TRANSACTION__OP_UPDATE_VALIDATORS:
        if (m->update_validators->base.n_unknown_fields) return true;
        for (size_t i = 0; i < m->update_validators->n_updates; i++) {
            if (m->update_validators->updates[i]->base.n_unknown_fields) return true;
        }
        return false;
    default: return false;
    }
}

static bool is_canonical(const Hotstuff__V1__KvTransaction *m, const uint8_t *p, size_t len) {
    if (hotstuff__v1__kv_transaction__get_packed_size(m) != len) return false;
    uint8_t *again = malloc(len ? len : 1);
    if (!again) return false;
    hotstuff__v1__kv_transaction__pack(m, again);
    bool same = memcmp(again, p, len) == 0;
    free(again);
    return same;
}

static hs_status take_key(const kvtx_rules *rules, const char *op, const ProtobufCBinaryData *k,
                          hs_bytes *out, char *reason, size_t rlen) {
    if (k->len == 0) return reject(reason, rlen, "%s: key must not be empty", op);
    if (k->len > rules->max_key_bytes)
        return reject(reason, rlen, "%s: key is %zu bytes; the limit is %u", op, k->len,
                      rules->max_key_bytes);
    return hs_bytes_set(out, k->data, k->len);
}

static int key_cmp(const void *a, const void *b) {
    return memcmp(a, b, HS_KEY_LEN);
}

static hs_status check_updates(const kvtx_rules *rules, const kvtx *t, char *reason,
                               size_t rlen) {
    if (t->n_updates == 0) return reject(reason, rlen, "update_validators: no updates");
    hs_key *sorted = malloc(t->n_updates * sizeof *sorted);
    if (!sorted) return HS_ERR_NOMEM;
    for (uint32_t i = 0; i < t->n_updates; i++) sorted[i] = t->updates[i].key;
    qsort(sorted, t->n_updates, sizeof *sorted, key_cmp);
    bool dup = false;
    for (uint32_t i = 1; i < t->n_updates && !dup; i++)
        dup = memcmp(sorted[i - 1].b, sorted[i].b, HS_KEY_LEN) == 0;
    free(sorted);
    if (dup) return reject(reason, rlen, "update_validators: a key appears twice");
    return HS_OK;
}

static hs_status check_signature(const kvtx_rules *rules, const kvtx *t,
                                 const ProtobufCBinaryData *sig, char *reason, size_t rlen) {
    if (!rules->has_admin)
        return reject(reason, rlen,
                      "update_validators: refused: genesis names no admin key, so the "
                      "validator set cannot be changed");
    if (sig->len == 0) return reject(reason, rlen, "update_validators: not signed");
    if (sig->len != HS_SIG_LEN)
        return reject(reason, rlen, "update_validators: signature is %zu bytes; must be %d",
                      sig->len, HS_SIG_LEN);
    uint8_t *msg;
    size_t mlen;
    hs_status st = kvtx_vs_signing_bytes(rules->chain_id, t->nonce, t->updates, t->n_updates,
                                         &msg, &mlen);
    if (st != HS_OK) return st;
    hs_sig s;
    memcpy(s.b, sig->data, HS_SIG_LEN);
    bool ok = hs_verify(&rules->admin_key, msg, mlen, &s);
    free(msg);
    if (!ok)
        return reject(reason, rlen,
                      "update_validators: bad signature: not signed by the admin key for "
                      "chain %llu",
                      (unsigned long long)rules->chain_id);
    return HS_OK;
}

static hs_status take_updates(const kvtx_rules *rules,
                              const Hotstuff__V1__KvTransaction__UpdateValidators *uv, kvtx *t,
                              char *reason, size_t rlen) {
    if (uv->n_updates > rules->max_validators)
        return reject(reason, rlen, "update_validators: %zu updates; the limit is %u",
                      uv->n_updates, rules->max_validators);
    if (uv->n_updates) {
        t->updates = calloc(uv->n_updates, sizeof *t->updates);
        if (!t->updates) return HS_ERR_NOMEM;
    }
    t->n_updates = (uint32_t)uv->n_updates;
    for (size_t i = 0; i < uv->n_updates; i++) {
        const Hotstuff__V1__KvTransaction__ValidatorUpdate *u = uv->updates[i];
        if (u->key.len != HS_KEY_LEN)
            return reject(reason, rlen, "update_validators: updates[%zu].key: is %zu bytes; "
                          "must be %d", i, u->key.len, HS_KEY_LEN);
        /* The block tree skips keys that are not curve points when it reads a validator set
         * back (spec §6.2), so admitting one would make the stored set differ from the
         * agreed one. Removing such a key is harmless. */
        if (u->power > 0 && !crypto_core_ed25519_is_valid_point(u->key.data))
            return reject(reason, rlen, "update_validators: updates[%zu].key: not a valid "
                          "Ed25519 public key", i);
        memcpy(t->updates[i].key.b, u->key.data, HS_KEY_LEN);
        t->updates[i].power = u->power;
    }
    hs_status st = check_updates(rules, t, reason, rlen);
    if (st != HS_OK) return st;
    return check_signature(rules, t, &uv->signature, reason, rlen);
}

static hs_status take_op(const kvtx_rules *rules, const Hotstuff__V1__KvTransaction *m, kvtx *t,
                         char *reason, size_t rlen) {
    switch (m->op_case) {
    case HOTSTUFF__V1__KV_TRANSACTION__OP_PUT: {
        t->kind = KVTX_PUT;
        hs_status st = take_key(rules, "put", &m->put->key, &t->key, reason, rlen);
        if (st != HS_OK) return st;
        return hs_bytes_set(&t->value, m->put->value.data, m->put->value.len);
    }
    case HOTSTUFF__V1__KV_TRANSACTION__OP_DELETE:
        t->kind = KVTX_DELETE;
        return take_key(rules, "delete", &m->delete_->key, &t->key, reason, rlen);
    case HOTSTUFF__V1__KV_TRANSACTION__OP_UPDATE_VALIDATORS:
        t->kind = KVTX_UPDATE_VALIDATORS;
        return take_updates(rules, m->update_validators, t, reason, rlen);
    default: return reject(reason, rlen, "no operation set (put, delete or update_validators)");
    }
}

static hs_status decode(const kvtx_rules *rules, const uint8_t *p, size_t len, kvtx *out,
                        char *reason, size_t rlen) {
    memset(out, 0, sizeof *out);
    if (reason && rlen) reason[0] = '\0';
    if (len == 0) return reject(reason, rlen, "empty transaction");
    if (len > rules->max_tx_bytes)
        return reject(reason, rlen, "transaction is %zu bytes; the limit is %u", len,
                      rules->max_tx_bytes);
    Hotstuff__V1__KvTransaction *m = hotstuff__v1__kv_transaction__unpack(NULL, len, p);
    if (!m) return reject(reason, rlen, "not a valid hotstuff.v1.KvTransaction protobuf");
    hs_status st;
    if (has_unknown_fields(m))
        st = reject(reason, rlen, "has fields unknown to hotstuff.v1.KvTransaction");
    else if (!is_canonical(m, p, len))
        st = reject(reason, rlen, "not in canonical encoding (fields in number order, default "
                                  "values omitted, each field once)");
    else {
        out->nonce = m->nonce;
        st = take_op(rules, m, out, reason, rlen);
    }
    hotstuff__v1__kv_transaction__free_unpacked(m, NULL);
    if (st == HS_ERR_NOMEM && reason && rlen) snprintf(reason, rlen, "out of memory");
    if (st != HS_OK) kvtx_free(out);
    return st;
}

hs_status kvtx_decode(const kvtx_rules *rules, const uint8_t *p, size_t len, kvtx *out,
                      char *reason, size_t rlen) {
    hs_status st = decode(rules, p, len, out, reason, rlen);
    if (st == HS_OK) hs_sha256(p, len, &out->hash);
    return st;
}

hs_status kvtx_decode_hashed(const kvtx_rules *rules, const uint8_t *p, size_t len,
                             const hs_hash *hash, kvtx *out, char *reason, size_t rlen) {
    hs_status st = decode(rules, p, len, out, reason, rlen);
    if (st == HS_OK) out->hash = *hash;
    return st;
}
