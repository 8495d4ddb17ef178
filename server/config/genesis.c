/* server/config/genesis.c - genesis.json: chain id, the initial validators, the initial app
 * state and the admin key, and the canonical hash that binds a store to them. See
 * node_config.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "config/json_read.h"
#include "config/node_config.h"
#include "hotstuff/crypto.h"

/* ---- genesis.json ---- */

static const char *const genesis_fields[] = {"chain_id", "validators", "admin_key", "app_state",
                                             NULL};
static const char *const validator_fields[] = {"key", "power", NULL};

void node_genesis_free(node_genesis *g) {
    hs_vs_free(&g->validators);
    hs_app_updates_free(&g->app_state);
    memset(g, 0, sizeof *g);
}

static hs_status genesis_validators(const jctx *c, const cJSON *doc, node_genesis *g) {
    const cJSON *vs = cfg_member(doc, "validators");
    hs_status st = cfg_need(c, vs, "validators");
    if (st != HS_OK) return st;
    if (!cJSON_IsArray(vs)) return cfg_bad(c, "validators", "must be an array");
    int n = cJSON_GetArraySize(vs);
    uint32_t max = hs_limits_default().max_validators;
    if (n < 1) return cfg_bad(c, "validators", "must list at least one validator");
    if ((uint32_t)n > max) return cfg_bad(c, "validators", "lists %d; the limit is %u", n, max);
    hs_u128 total = 0;
    int i = 0;
    for (const cJSON *v = vs->child; v; v = v->next, i++) {
        char path[64], field[96];
        snprintf(path, sizeof path, "validators[%d]", i);
        if (!cJSON_IsObject(v)) return cfg_bad(c, path, "must be an object {\"key\", \"power\"}");
        st = cfg_check_members(c, v, path, validator_fields);
        hs_key key;
        uint64_t power = 0;
        if (st == HS_OK) st = cfg_get_key(c, v, path, "key", &key);
        cfg_member_path(field, sizeof field, path, "power");
        if (st == HS_OK) st = cfg_need(c, cfg_member(v, "power"), field);
        if (st == HS_OK) st = cfg_as_u64(c, cfg_member(v, "power"), field, 1, UINT64_MAX, &power);
        if (st != HS_OK) return st;
        if (hs_vs_contains(&g->validators, &key)) {
            cfg_member_path(field, sizeof field, path, "key");
            return cfg_bad(c, field, "appears twice in validators");
        }
        if (hs_vs_put(&g->validators, &key, power) != HS_OK)
            return cfg_bad(c, path, "out of memory");
        total += power;
    }
    /* Leader selection takes the total as a u64 (spec §4.3). */
    if (total >= (hs_u128)1 << 63)
        return cfg_bad(c, "validators", "total power must be below 2^63");
    return HS_OK;
}

static hs_status genesis_app_state(const jctx *c, const cJSON *doc, node_genesis *g) {
    const cJSON *as = cfg_member(doc, "app_state");
    if (!as) return HS_OK;
    if (!cJSON_IsObject(as))
        return cfg_bad(c, "app_state", "must be an object of string keys to string values");
    for (const cJSON *m = as->child; m; m = m->next) {
        char field[300];
        snprintf(field, sizeof field, "app_state[\"%.200s\"]", m->string);
        if (!*m->string) return cfg_bad(c, "app_state", "a key must not be empty");
        if (!cJSON_IsString(m)) return cfg_bad(c, field, "must be a string");
        for (const cJSON *e = as->child; e != m; e = e->next) {
            if (strcmp(e->string, m->string) == 0) return cfg_bad(c, field, "appears twice");
        }
        if (hs_app_updates_insert(&g->app_state, (const uint8_t *)m->string, strlen(m->string),
                                  (const uint8_t *)m->valuestring,
                                  strlen(m->valuestring)) != HS_OK)
            return cfg_bad(c, field, "out of memory");
    }
    return HS_OK;
}

static hs_status genesis_from_json(const jctx *c, const cJSON *doc, node_genesis *g) {
    hs_status st = cfg_check_members(c, doc, "", genesis_fields);
    const cJSON *m = cfg_member(doc, "chain_id");
    if (st == HS_OK) st = cfg_need(c, m, "chain_id");
    if (st == HS_OK) st = cfg_as_u64(c, m, "chain_id", 0, UINT64_MAX, &g->chain_id);
    if (st == HS_OK) st = genesis_validators(c, doc, g);
    if (st != HS_OK) return st;
    /* admin_key is required, but may be null: no one can change the validator set. */
    if (!cJSON_GetObjectItemCaseSensitive(doc, "admin_key"))
        return cfg_bad(c, "admin_key", "is required (use null to disable validator-set updates)");
    if (cfg_member(doc, "admin_key")) {
        st = cfg_get_key(c, doc, "", "admin_key", &g->admin_key);
        g->has_admin = st == HS_OK;
    }
    if (st == HS_OK) st = genesis_app_state(c, doc, g);
    return st;
}

static void hash_u64(crypto_hash_sha256_state *s, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    crypto_hash_sha256_update(s, b, sizeof b);
}

static void hash_bytes(crypto_hash_sha256_state *s, const hs_bytes *b) {
    hash_u64(s, b->len);
    crypto_hash_sha256_update(s, b->p, b->len);
}

void node_genesis_hash(const node_genesis *g, hs_hash *out) {
    static const char domain[] = "hotstuffd genesis v1";
    crypto_hash_sha256_state s;
    crypto_hash_sha256_init(&s);
    crypto_hash_sha256_update(&s, (const uint8_t *)domain, sizeof domain);
    hash_u64(&s, g->chain_id);
    hash_u64(&s, g->validators.n); /* sorted by key: one encoding per set */
    for (uint32_t i = 0; i < g->validators.n; i++) {
        crypto_hash_sha256_update(&s, g->validators.v[i].key.b, HS_KEY_LEN);
        hash_u64(&s, g->validators.v[i].power);
    }
    uint8_t admin = g->has_admin;
    crypto_hash_sha256_update(&s, &admin, 1);
    if (g->has_admin) crypto_hash_sha256_update(&s, g->admin_key.b, HS_KEY_LEN);
    hash_u64(&s, g->app_state.n_inserts); /* sorted by key */
    for (uint32_t i = 0; i < g->app_state.n_inserts; i++) {
        hash_bytes(&s, &g->app_state.insert_keys[i]);
        hash_bytes(&s, &g->app_state.insert_values[i]);
    }
    crypto_hash_sha256_final(&s, out->b);
}

hs_status node_genesis_load(const char *path, node_genesis *out, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    memset(out, 0, sizeof *out);
    if (hs_crypto_init() != HS_OK) return cfg_io_fail(&c, "cannot initialise libsodium");
    cJSON *doc = NULL;
    hs_status st = cfg_load_json(&c, path, &doc, NULL);
    if (st != HS_OK) return st;
    st = genesis_from_json(&c, doc, out);
    cJSON_Delete(doc);
    if (st != HS_OK) {
        node_genesis_free(out);
        return st;
    }
    node_genesis_hash(out, &out->hash);
    return HS_OK;
}

