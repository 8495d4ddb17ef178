/* tests/common/core_world.c - the core-level test harness (core_world.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "core_world.h"
#include "cu.h"
#include "hotstuff/log.h"
#include "samples.h"


hs_keypair kps[MAXN];
hs_validator_set vs1;

void keys_setup(void) {
    static bool done;
    if (done) return;
    sample_keys(kps, MAXN, 0xC0);
    for (int i = 0; i < 4; i++) CU_ASSERT_FATAL(hs_vs_put(&vs1, &kps[i].public_key, 1) == HS_OK);
    hs_log_set_level(HS_LOG_ERROR);
    done = true;
}

int key_index(const hs_key *k) {
    for (int i = 0; i < MAXN; i++)
        if (memcmp(kps[i].public_key.b, k->b, HS_KEY_LEN) == 0) return i;
    return -1;
}

int leader_of(const hs_validator_set *vs, uint64_t view) {
    hs_key k;
    CU_ASSERT_FATAL(hs_vs_leader(vs, view, &k) == HS_OK);
    return key_index(&k);
}

/* ---- certificates and blocks, signed with the real keys ---- */

/* Bit i of `who` selects the validator at position i of `vs` (sorted order). */
void make_pc(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase,
             const hs_validator_set *vs, unsigned who) {
    signed_pc(pc, CHAIN, view, block, phase, vs, who, kps, MAXN);
}

void make_tc(hs_tc *tc, uint64_t view, unsigned who) {
    *tc = (hs_tc){.chain_id = CHAIN, .view = view};
    uint8_t msg[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(CHAIN, view, msg);
    CU_ASSERT_FATAL(hs_sigset_init(&tc->sigs, vs1.n) == HS_OK);
    for (uint32_t i = 0; i < vs1.n; i++) {
        if (!(who & (1u << i))) continue;
        tc->sigs.slots[i].present = true;
        hs_sign(&kps[key_index(&vs1.v[i].key)], msg, sizeof msg, &tc->sigs.slots[i].sig);
    }
}

/* A NumberApp block: one datum, Borsh(Vec<Tx>) with `incs` Increments (distinct bodies on one
 * parent need distinct counts). */
void make_block(hs_block *b, uint64_t height, const hs_pc *justify, uint32_t incs) {
    *b = (hs_block){.height = height};
    CU_ASSERT_FATAL(hs_pc_copy(&b->justify, justify) == HS_OK);
    uint8_t body[64] = {0};
    CU_ASSERT_FATAL(incs <= sizeof body - 4);
    for (int i = 0; i < 4; i++) body[i] = (uint8_t)(incs >> (8 * i));
    b->data.items = calloc(1, sizeof *b->data.items);
    CU_ASSERT_FATAL(b->data.items != NULL);
    b->data.n = 1;
    CU_ASSERT_FATAL(hs_bytes_set(&b->data.items[0], body, 4 + incs) == HS_OK);
    hs_sha256(body, 4 + incs, &b->data_hash);
    CU_ASSERT_FATAL(hs_block_compute_hash(b, &b->hash) == HS_OK);
}

hs_msg timeout_vote_msg(uint64_t view, int signer) {
    hs_msg m = {.type = HS_MSG_TIMEOUT_VOTE};
    m.u.timeout_vote.chain_id = CHAIN;
    m.u.timeout_vote.view = view;
    uint8_t bytes[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(CHAIN, view, bytes);
    hs_sign(&kps[signer], bytes, sizeof bytes, &m.u.timeout_vote.sig);
    return m;
}

hs_msg advance_view_tc(uint64_t view) {
    hs_msg m = {.type = HS_MSG_ADVANCE_VIEW};
    m.u.advance_view.is_tc = true;
    make_tc(&m.u.advance_view.tc, view, 0x7); /* 3 of 4 */
    return m;
}

hs_msg advance_view_pc(uint64_t view, const hs_hash *block) {
    hs_msg m = {.type = HS_MSG_ADVANCE_VIEW};
    make_pc(&m.u.advance_view.pc, view, block, HS_PHASE_GENERIC, &vs1, 0xF);
    return m;
}

hs_msg proposal_msg(uint64_t view, const hs_block *b) {
    hs_msg m = {.type = HS_MSG_PROPOSAL};
    m.u.proposal.chain_id = CHAIN;
    m.u.proposal.view = view;
    CU_ASSERT_FATAL(hs_block_copy(&m.u.proposal.block, b) == HS_OK);
    return m;
}

/* ---- stores ---- */

void store_init(hs_kv_store *kv) {
    hs_vss vss = {.committed = vs1, .previous = vs1, .update_decided = true};
    CU_ASSERT_FATAL(hs_bt_initialize(kv, NULL, &vss) == HS_OK);
}

void store_apply(const hs_kv_store *kv, const hs_pc *pc) {
    hs_bt_update_result res = {0};
    CU_ASSERT_FATAL(hs_bt_update(kv, pc, &res) == HS_OK);
    hs_bt_update_result_free(&res);
}

/* What a replica that accepted b does: insert it, apply its justify. */
void store_add(const hs_kv_store *kv, const hs_block *b) {
    CU_ASSERT_FATAL(hs_bt_insert(kv, b, NULL, NULL) == HS_OK);
    store_apply(kv, &b->justify);
}

/* ---- the world ---- */





static uint64_t wall(void *ctx) { return 1700000000000ull + ((world *)ctx)->now; }

static void on_event(void *ctx, const hs_event *e) {
    node *n = ctx;
    switch (e->type) {
    case HS_EV_COMMIT_BLOCK: n->commits++; break;
    case HS_EV_UPDATE_VALIDATOR_SET:
        if (!n->vs_updated) n->vs_update_block = e->u.update_validator_set.cause_block;
        n->vs_updated = true;
        break;
    case HS_EV_UPDATE_LOCKED_PC:
        n->lock_updates++;
        if (hs_pc_is_genesis(&e->u.update_locked_pc.locked_pc)) n->lock_to_genesis++;
        break;
    case HS_EV_TIMEOUT_VOTE:
        n->timeout_votes++;
        n->last_timeout_vote_view = e->u.timeout_vote.timeout_vote.view;
        break;
    case HS_EV_VIEW_TIMEOUT: n->view_timeouts++; break;
    case HS_EV_PROPOSE: n->proposals++; break;
    case HS_EV_START_SYNC: n->start_syncs++; break;
    case HS_EV_END_SYNC: n->end_syncs++; break;
    default: break;
    }
}

static void q_push(world *w, int from, int to, bool bcast, const hs_msg *m) {
    if (w->len == w->cap) {
        if (w->head > 0) {
            memmove(w->q, w->q + w->head, (w->len - w->head) * sizeof *w->q);
            w->len -= w->head;
            w->head = 0;
        }
        if (w->len == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 256;
            w->q = realloc(w->q, w->cap * sizeof *w->q);
            CU_ASSERT_FATAL(w->q != NULL);
        }
    }
    qmsg *e = &w->q[w->len];
    *e = (qmsg){.t = w->now + LAT, .from = from, .to = to, .bcast = bcast};
    CU_ASSERT_FATAL(hs_msg_copy(&e->m, m) == HS_OK);
    w->len++;
}

static void net_broadcast(void *self, const hs_msg *m) {
    node *n = self;
    for (int i = 0; i < n->w->n; i++) q_push(n->w, n->id, i, true, m);
}

static void net_send(void *self, const hs_key *to, const hs_msg *m) {
    node *n = self;
    int i = key_index(to);
    if (i >= 0 && i < n->w->n) q_push(n->w, n->id, i, false, m);
}

static void net_update_vs(void *self, const hs_vs_updates *u) { (void)self, (void)u; }

void q_clear(world *w) {
    for (size_t i = w->head; i < w->len; i++) hs_msg_free(&w->q[i].m);
    w->head = w->len = 0;
}

/* Messages in flight from `from` to `to` (-1: anyone) of type `type`; *last (if not NULL) is the
 * last one found. */
int q_count(world *w, int from, int to, hs_msg_type type, const qmsg **last) {
    int k = 0;
    for (size_t i = w->head; i < w->len; i++) {
        const qmsg *e = &w->q[i];
        if ((from < 0 || e->from == from) && (to < 0 || e->to == to) && e->m.type == type) {
            k++;
            if (last) *last = e;
        }
    }
    return k;
}

void world_open(world *w, int n, uint32_t epoch_length) {
    keys_setup();
    memset(w, 0, sizeof *w);
    w->n = n;
    w->tmpl = hs_config_test_values(NULL);
    w->tmpl.chain_id = CHAIN;
    w->tmpl.epoch_length = epoch_length;
    w->tmpl.max_view_time_ms = T;
    for (int i = 0; i < n; i++) {
        node *nd = &w->nodes[i];
        nd->w = w;
        nd->id = i;
        nd->ms = hs_mem_store_new();
        CU_ASSERT_FATAL(nd->ms != NULL);
        nd->kv = hs_mem_store_kv(nd->ms);
        nd->app = napp_new();
        CU_ASSERT_FATAL(nd->app != NULL);
        store_init(&nd->kv);
        nd->env = (hs_core_env){
            .app = napp_app(nd->app),
            .net = {.self = nd, .update_validator_set = net_update_vs,
                    .broadcast = net_broadcast, .send = net_send},
            .kv = nd->kv,
            .emit = on_event,
            .emit_ctx = nd,
            .wall_clock_ms = wall,
            .clock_ctx = w,
            .rng_seed = (uint64_t)i + 1,
        };
    }
}

hs_config node_cfg(world *w, int i) {
    hs_config c = w->tmpl;
    c.me = kps[i];
    return c;
}

void start_core(world *w, int i) {
    node *n = &w->nodes[i];
    hs_config c = node_cfg(w, i);
    CU_ASSERT_FATAL(n->core == NULL);
    CU_ASSERT_FATAL(hs_core_new(&c, &n->env, w->now, &n->core) == HS_OK);
    n->last_view = hs_core_view(n->core);
}

void start_server(world *w, int i) {
    node *n = &w->nodes[i];
    hs_config c = node_cfg(w, i);
    CU_ASSERT_FATAL(hs_sync_server_new(&c, &n->env, w->now, &n->srv) == HS_OK);
}

/* A crash: the core's memory is gone, its store stays. */
void crash(world *w, int i) {
    hs_core_free(w->nodes[i].core);
    w->nodes[i].core = NULL;
}

void world_close(world *w) {
    q_clear(w);
    free(w->q);
    for (int i = 0; i < w->n; i++) {
        node *n = &w->nodes[i];
        hs_core_free(n->core);
        hs_sync_server_free(n->srv);
        napp_free(n->app);
        hs_mem_store_free(n->ms);
    }
}

static void after_step(node *n) {
    uint64_t v = hs_core_view(n->core);
    if (v < n->last_view) n->view_went_back = true;
    n->last_view = v;
}

void step(node *n, const hs_key *origin, hs_msg *m) {
    hs_status st = hs_core_step(n->core, n->w->now, origin, m);
    CU_ASSERT(st == HS_OK);
    after_step(n);
}

/* Hands a crafted message from validator `from` straight to node `to`'s core (consumed). */
void inject(world *w, int to, int from, hs_msg *m) {
    step(&w->nodes[to], &kps[from].public_key, m);
    hs_msg_free(m);
}

static void deliver(world *w, qmsg *e) {
    node *d = &w->nodes[e->to];
    bool cut = e->from != e->to && (d->cut || w->nodes[e->from].cut);
    const hs_key *origin = &kps[e->from].public_key;
    if (!cut && e->m.type == HS_MSG_SYNC_REQUEST && d->srv) {
        CU_ASSERT(hs_sync_server_handle(d->srv, w->now, origin, &e->m.u.sync_request) == HS_OK);
    } else if (!cut && e->m.type != HS_MSG_SYNC_REQUEST && d->core) {
        step(d, origin, &e->m);
    }
    hs_msg_free(&e->m);
}

/* Runs the next delivery or deadline if it is due by `limit`; false if none is. */
bool world_next(world *w, uint64_t limit) {
    uint64_t tm = w->head < w->len ? w->q[w->head].t : VMAX, td = VMAX;
    for (int i = 0; i < w->n; i++) {
        node *n = &w->nodes[i];
        if (n->core && hs_core_deadline(n->core) < td) td = hs_core_deadline(n->core);
        if (n->srv && hs_sync_server_deadline(n->srv) < td) td = hs_sync_server_deadline(n->srv);
    }
    uint64_t t = tm < td ? tm : td;
    if (t > limit) return false;
    if (t > w->now) w->now = t;
    if (tm <= td) {
        qmsg e = w->q[w->head++];
        if (w->head == w->len) w->head = w->len = 0;
        deliver(w, &e);
    } else {
        for (int i = 0; i < w->n; i++) {
            node *n = &w->nodes[i];
            if (n->core && hs_core_deadline(n->core) <= w->now) step(n, NULL, NULL);
            if (n->srv && hs_sync_server_deadline(n->srv) <= w->now) {
                CU_ASSERT(hs_sync_server_tick(n->srv, w->now) == HS_OK);
            }
        }
    }
    CU_ASSERT_FATAL(++w->events < MAX_EVENTS);
    return true;
}


/* Runs until pred holds (checked before every event) or virtual time reaches `limit`. */
bool run_until(world *w, uint64_t limit, pred_fn pred, void *ctx) {
    for (;;) {
        if (pred && pred(w, ctx)) return true;
        if (!world_next(w, limit)) {
            if (w->now < limit) w->now = limit;
            return pred ? pred(w, ctx) : true;
        }
    }
}

void run_for(world *w, uint64_t ms) { run_until(w, w->now + ms, NULL, NULL); }

/* ---- reading a node's store ---- */

hs_kv_reader rd(world *w, int i) { return hs_kv_store_reader(&w->nodes[i].kv); }

bool has_block(world *w, int i, const hs_hash *h) {
    hs_kv_reader r = rd(w, i);
    bool known = false;
    CU_ASSERT_FATAL(hs_bt_contains(&r, h, &known) == HS_OK);
    return known;
}

hs_pc stored_pc(world *w, int i, bool locked) {
    hs_kv_reader r = rd(w, i);
    hs_pc pc = {0};
    CU_ASSERT_FATAL((locked ? hs_bt_locked_pc(&r, &pc) : hs_bt_highest_pc(&r, &pc)) == HS_OK);
    return pc;
}

uint64_t highest_pc_view(world *w, int i) {
    hs_pc pc = stored_pc(w, i, false);
    uint64_t v = pc.view;
    hs_pc_free(&pc);
    return v;
}

hs_vsu_status vsu_status(world *w, int i, const hs_hash *h) {
    hs_kv_reader r = rd(w, i);
    hs_vsu_status st = HS_VSU_NONE;
    CU_ASSERT_FATAL(hs_bt_vsu_status(&r, h, &st, NULL) == HS_OK);
    return st;
}

hs_vss stored_vss(world *w, int i) {
    hs_kv_reader r = rd(w, i);
    hs_vss vss = {0};
    CU_ASSERT_FATAL(hs_bt_vss(&r, &vss) == HS_OK);
    return vss;
}

bool committed_height(world *w, int i, uint64_t *h) {
    hs_kv_reader r = rd(w, i);
    hs_status st = hs_bt_highest_committed_height(&r, h);
    CU_ASSERT_FATAL(st == HS_OK || st == HS_NOT_FOUND);
    return st == HS_OK;
}
