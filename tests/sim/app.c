/* tests/sim/app.c - the App every simulated replica runs, and the validator sets it may
 * switch to.
 *
 * A block body is one datum of SIM_DATUM_LEN bytes: kind (0 plain, 1 switch validator set),
 * u32 config index, u64 nonce. data_hash = SHA-256(datum). Every valid block increments the
 * counter in app state key "c" (u64 LE), so every block has pending app updates until it is
 * committed, and the committed counter must equal the committed chain's length.
 *
 * A switch to config k carries ValidatorSetUpdates that insert every member of configs[k] with
 * its power and delete every other replica: the committed set after it is exactly configs[k]
 * whatever it was before. Validation accepts only known config indexes, so a Byzantine
 * proposer cannot push the Byzantine power to a third or more: every config is checked when it
 * is drawn.
 *
 * The App is deterministic: validation is a pure function of the block and the parent's view.
 * produce_block draws from the world's generator, which is fine: the simulation as a whole is
 * a function of the seed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotstuff/crypto.h"
#include "sim.h"

const uint8_t sim_counter_key[1] = {'c'};

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

void sim_app_datum(uint8_t out[SIM_DATUM_LEN], int kind, uint32_t config, uint64_t nonce) {
    out[0] = (uint8_t)kind;
    put_u32(out + 1, config);
    put_u64(out + 5, nonce);
}

/* ---- validator sets ---- */

bool sim_vs_byz_bound_ok(const sim_world *w, const hs_validator_set *vs) {
    hs_u128 byz = 0, total = hs_vs_total_power(vs);
    for (uint32_t i = 0; i < vs->n; i++) {
        int id = sim_node_by_key(w, &vs->v[i].key);
        if (id < 0 || w->nodes[id].byz) byz += vs->v[i].power;
    }
    return total > 0 && byz * 3 < total;
}

/* Honest power that keeps f Byzantine replicas of power 1 under a third, and at least 2 so
 * that honest leaders come in runs (see leader_run_ok). */
static uint64_t honest_power_for(uint32_t n, uint32_t f) {
    if (f == 0 || n == f) return 1;
    uint64_t p = (2 * (uint64_t)f) / (n - f) + 1;
    return p < 2 ? 2 : p;
}

/* Under the reference's liveness choices (--reference), pipelined HotStuff commits a block
 * only when four leaders in a row do their part: the leaders of views v, v+1, v+2 propose, and
 * the leader of v+3 collects the PC of v+2 (votes go to the next leader only). With round-robin
 * leaders, one silent replica in every four views stops all commits: the defect this port's
 * default choices remove (docs/liveness.md). So in that mode only, every validator set the
 * App allows has a run of at least five consecutive honest leaders in each rotation;
 * otherwise the liveness check would only measure that. */
static bool leader_run_ok(const sim_world *w, const hs_validator_set *vs) {
    uint64_t period = (uint64_t)hs_vs_total_power(vs), run = 0, best = 0;
    if (period == 0 || period > 4096) return false;
    for (uint64_t v = 0; v < 2 * period; v++) {
        hs_key k;
        if (hs_vs_leader(vs, v, &k) != HS_OK) return false;
        int id = sim_node_by_key(w, &k);
        run = id >= 0 && !w->nodes[id].byz ? run + 1 : 0;
        if (run > best) best = run;
    }
    return best >= 5 || best >= period; /* all-honest sets qualify however small */
}

void sim_make_configs(sim_world *w) {
    uint32_t n = w->n, f = w->o->f;
    uint64_t hp = honest_power_for(n, f);
    /* configs[0]: everybody, Byzantine replicas with power 1. */
    hs_validator_set *c0 = &w->configs[0];
    for (uint32_t i = 0; i < n; i++)
        if (hs_vs_put(c0, &w->nodes[i].kp.public_key, w->nodes[i].byz ? 1 : hp) != HS_OK) abort();
    w->n_configs = 1;
    /* Others: random members and powers, kept only if the Byzantine bound holds. Some drop an
     * honest replica (it becomes a listener), some re-add it, some change powers. */
    uint32_t want = 2 + (uint32_t)rng_below(&w->rng, SIM_MAX_CONFIGS - 2);
    for (int tries = 0; w->n_configs < want && tries < 200; tries++) {
        hs_validator_set vs = {0};
        for (uint32_t i = 0; i < n; i++) {
            const sim_node *nd = &w->nodes[i];
            uint64_t p;
            if (nd->byz) p = rng_chance(&w->rng, 300) ? 0 : 1;
            else p = rng_chance(&w->rng, 200) ? 0 : rng_range(&w->rng, 1, 4) * hp;
            if (p && hs_vs_put(&vs, &nd->kp.public_key, p) != HS_OK) abort();
        }
        if (sim_vs_byz_bound_ok(w, &vs) && (!w->o->reference || leader_run_ok(w, &vs)))
            w->configs[w->n_configs++] = vs;
        else hs_vs_free(&vs);
    }
    for (uint32_t k = 0; k < w->n_configs; k++) /* the simulator's own bugs */
        if (!sim_vs_byz_bound_ok(w, &w->configs[k]) ||
            (w->o->reference && k > 0 && !leader_run_ok(w, &w->configs[k])))
            abort();
    if (w->o->reference && !leader_run_ok(w, c0) && !w->o->quiet)
        fprintf(stderr, "sim: warning: the initial validator set has no run of 5 honest leaders\n");
}

static hs_status config_updates(const sim_world *w, uint32_t k, hs_vs_updates *u) {
    const hs_validator_set *vs = &w->configs[k];
    for (uint32_t i = 0; i < vs->n; i++) {
        hs_status st = hs_vs_updates_insert(u, &vs->v[i].key, vs->v[i].power);
        if (st != HS_OK) return st;
    }
    for (uint32_t i = 0; i < w->n; i++) {
        const hs_key *k2 = &w->nodes[i].kp.public_key;
        if (hs_vs_contains(vs, k2)) continue;
        hs_status st = hs_vs_updates_delete(u, k2);
        if (st != HS_OK) return st;
    }
    return HS_OK;
}

/* ---- the App interface ---- */

static hs_status parent_counter(const hs_app_view *tree, uint64_t *out) {
    *out = 0;
    if (!tree) return HS_OK;
    hs_bytes v = {0};
    hs_status st = hs_app_view_state(tree, sim_counter_key, sizeof sim_counter_key, &v);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    if (v.len == 8) *out = get_u64(v.p);
    else st = HS_ERR_CORRUPT;
    hs_bytes_free(&v);
    return st;
}

static hs_status produce(void *self, const hs_produce_block_request *req,
                         hs_produce_block_response *resp) {
    sim_app_ctx *ctx = self;
    sim_world *w = ctx->w;
    uint8_t d[SIM_DATUM_LEN];
    bool vs = w->n_configs > 1 && rng_chance(&w->rng, w->vs_change_pm);
    uint32_t k = vs ? (uint32_t)rng_below(&w->rng, w->n_configs) : 0;
    sim_app_datum(d, vs ? 1 : 0, k, req->cur_view << 8 | (uint64_t)ctx->id);
    resp->data.items = calloc(1, sizeof *resp->data.items);
    if (!resp->data.items) return HS_ERR_NOMEM;
    resp->data.n = 1;
    hs_status st = hs_bytes_set(&resp->data.items[0], d, sizeof d);
    if (st != HS_OK) return st;
    hs_sha256(d, sizeof d, &resp->data_hash);
    return HS_OK; /* the library ignores the producer's updates (spec §3.6) */
}

static hs_status validate(void *self, const hs_validate_block_request *req,
                          hs_validate_block_response *resp) {
    sim_app_ctx *ctx = self;
    const sim_world *w = ctx->w;
    const hs_block *b = req->proposed_block;
    resp->valid = false;
    if (b->data.n != 1 || b->data.items[0].len != SIM_DATUM_LEN) return HS_OK;
    const uint8_t *d = b->data.items[0].p;
    hs_hash h;
    hs_sha256(d, SIM_DATUM_LEN, &h);
    if (memcmp(h.b, b->data_hash.b, HS_HASH_LEN) != 0) return HS_OK;
    uint32_t k = get_u32(d + 1);
    if (d[0] > 1 || (d[0] == 0 && k != 0) || k >= w->n_configs) return HS_OK;

    uint64_t cnt;
    hs_status st = parent_counter(req->tree, &cnt);
    if (st != HS_OK) return st;
    uint8_t val[8];
    put_u64(val, cnt + 1);
    st = hs_app_updates_insert(&resp->app_state_updates, sim_counter_key, sizeof sim_counter_key,
                               val, sizeof val);
    if (st == HS_OK && d[0] == 1) {
        st = config_updates(w, k, &resp->validator_set_updates);
        resp->has_validator_set_updates = true;
    }
    if (st != HS_OK) return st; /* the library frees what was filled */
    resp->has_app_state_updates = true;
    resp->valid = true;
    return HS_OK;
}

hs_app sim_app(sim_app_ctx *ctx) {
    hs_app a = {.self = ctx,
                .produce_block = produce,
                .validate_block = validate,
                .validate_block_for_sync = validate};
    return a;
}
