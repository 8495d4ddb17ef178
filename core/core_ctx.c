/* core/core_ctx.c - the core context's small interface (algo.h, "core_ctx.c"): what the
 * subprotocols (hotstuff.c, pacemaker.c, sync_client.c) and the step machine (algorithm.c)
 * all need from hs_core - events, halting, the cached store state, the epoch arithmetic, and
 * update(justify) of spec §3.5 with its events.
 *
 * It calls no subprotocol: the one reaction update must trigger in HotStuff (a late PC for
 * the previous view lets an active leader propose, hs_hotstuff_on_highest_pc) goes through the
 * hook hs_core.on_highest_pc that algorithm.c sets at construction. So the dependencies run
 * one way: algorithm.c -> subprotocols -> core_ctx.c -> block tree.
 */
#include <assert.h>
#include <time.h>

#include "algo.h"
#include "bt.h"
#include "env.h"
#include "hotstuff/log.h"

uint64_t hs_env_wall_ms(const hs_core_env *env) {
    if (env->wall_clock_ms) return env->wall_clock_ms(env->clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hs_core_emit(hs_core *c, hs_event *e) {
    if (!c->env.emit) return;
    e->timestamp_ms = hs_env_wall_ms(&c->env);
    c->env.emit(c->env.emit_ctx, e);
}

hs_status hs_core_fail(hs_core *c, hs_status st, const char *what) {
    assert(st != HS_OK);
    if (c->halted == HS_OK) {
        hs_log(HS_LOG_ERROR, "core", "halting: %s failed: %s", what, hs_status_str(st));
        c->halted = st;
    }
    return st;
}

hs_status hs_core_refresh(hs_core *c) {
    hs_vss vss = {0};
    hs_pc hpc = {0};
    hs_status st = hs_bt_vss(&c->rd, &vss);
    if (st != HS_OK) return hs_core_fail(c, st == HS_NOT_FOUND ? HS_ERR_CORRUPT : st, "read vss");
    st = hs_bt_highest_pc(&c->rd, &hpc);
    if (st != HS_OK) {
        hs_vss_free(&vss);
        return hs_core_fail(c, st == HS_NOT_FOUND ? HS_ERR_CORRUPT : st, "read highest pc");
    }
    hs_vss_free(&c->vss);
    hs_pc_free(&c->highest_pc);
    c->vss = vss;
    c->highest_pc = hpc;
    return HS_OK;
}

hs_safety_ctx hs_core_safety(const hs_core *c) {
    hs_safety_ctx s = {&c->rd, c->cfg.chain_id, &c->vss, c->sig_cache};
    return s;
}

const hs_key *hs_core_me(const hs_core *c) { return &c->cfg.me.public_key; }

uint64_t hs_core_epoch(const hs_core *c, uint64_t view) {
    uint64_t n = c->cfg.epoch_length;
    return view / n + (view % n != 0);
}

bool hs_core_is_epoch_change_view(const hs_core *c, uint64_t view) {
    return view % c->cfg.epoch_length == 0;
}

/* spec §3.1 */
bool hs_core_is_validator(const hs_core *c, const hs_key *k) {
    return hs_vs_contains(&c->vss.committed, k) ||
           (!c->vss.update_decided && hs_vs_contains(&c->vss.previous, k));
}

hs_status hs_core_apply_update(hs_core *c, const hs_pc *justify, bool notify) {
    hs_bt_update_result res = {0};
    hs_status st = hs_bt_update(&c->env.kv, justify, &res);
    if (st != HS_OK) return hs_core_fail(c, st, "block tree update");
    st = hs_core_refresh(c);
    if (st != HS_OK) goto out;

    /* Events after the write, in the order of spec §3.5. */
    hs_event e;
    if (res.highest_pc_updated) {
        e = (hs_event){.type = HS_EV_UPDATE_HIGHEST_PC};
        e.u.update_highest_pc.highest_pc = *justify;
        hs_core_emit(c, &e);
    }
    if (res.locked_pc_updated) {
        e = (hs_event){.type = HS_EV_UPDATE_LOCKED_PC};
        e.u.update_locked_pc.locked_pc = res.locked_pc;
        hs_core_emit(c, &e);
    }
    for (uint32_t i = 0; i < res.n_committed; i++) {
        const hs_bt_committed *b = &res.committed[i];
        e = (hs_event){.type = HS_EV_PRUNE_BLOCK};
        e.u.prune_block.block = b->block;
        hs_core_emit(c, &e);
        e = (hs_event){.type = HS_EV_COMMIT_BLOCK};
        e.u.commit_block.block = b->block;
        hs_core_emit(c, &e);
        if (b->has_vsu) {
            e = (hs_event){.type = HS_EV_UPDATE_VALIDATOR_SET};
            e.u.update_validator_set.cause_block = b->block;
            e.u.update_validator_set.updates = b->vsu;
            hs_core_emit(c, &e);
        }
    }
    if (notify && res.has_vsu && c->env.net.update_validator_set)
        c->env.net.update_validator_set(c->env.net.self, &res.vsu);
    st = hs_phase_collectors_update(&c->phase_collectors, &c->vss);
    if (st != HS_OK) st = hs_core_fail(c, st, "update collectors");
    else if (res.highest_pc_updated && c->on_highest_pc) st = c->on_highest_pc(c);
out:
    hs_bt_update_result_free(&res);
    return st;
}
