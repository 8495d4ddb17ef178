/* core/algorithm.c - the step machine that stands in for the reference's algorithm thread
 * (spec §11.3), and the message intake with its view-aware buffer (spec §3.14).
 *
 * A step is: advance (Pacemaker tick, enter the Pacemaker's view if HotStuff is behind it,
 * deliver buffered messages of the current view), then the one input message, then the Block
 * Sync client's tick, then advance again so a view change caused by the input is acted on in
 * the same step rather than after the next wake-up.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algo.h"
#include "bt.h"
#include "env.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"

/* ---- construction ---- */

/* The start-up view. The reference (spec §4.8) starts at hvwp + 1, where hvwp is the highest
 * of the view entered and the views of the highest PC and TC, or at 0 when that is 0. Two
 * cases stall it, both found by the simulator, so the port starts as follows instead:
 *  - a replica that crashed while parked in an epoch-change view E, holding no certificate
 *    for E, restarts IN E (the reference skips to E + 1, where it can never join the others'
 *    timeout quorum for E);
 *  - a replica holding a certificate for view v starts after v even when v is 0 (the reference
 *    restarts a replica holding TC(0) in view 0).
 * Re-entering E is safe: no enter_view runs for the start-up view, phase votes are guarded by
 * HIGHEST_VIEW_PHASE_VOTED, and a timeout vote for E is the same vote again. */
static uint64_t start_up_view(const hs_core *c, uint64_t hve) {
    uint64_t after_cert = 0;
    if (!hs_pc_is_genesis(&c->highest_pc) && c->highest_pc.view < UINT64_MAX - 1)
        after_cert = c->highest_pc.view + 1;
    if (c->has_highest_tc && c->highest_tc.view < UINT64_MAX - 1 &&
        c->highest_tc.view + 1 > after_cert)
        after_cert = c->highest_tc.view + 1;
    uint64_t after_entered = 0;
    if (hve > 0)
        after_entered = (hs_core_is_epoch_change_view(c, hve) || hve >= UINT64_MAX - 1) ? hve
                                                                                       : hve + 1;
    return after_cert > after_entered ? after_cert : after_entered;
}

hs_status hs_core_new(const hs_config *cfg, const hs_core_env *env, uint64_t now_ms,
                      hs_core **out) {
    char err[256];
    *out = NULL;
    if (hs_config_validate(cfg, err, sizeof err) != HS_OK) {
        hs_log(HS_LOG_ERROR, "core", "%s", err);
        return HS_ERR_INVALID;
    }
    if (!env->kv.get || !env->kv.write || !env->net.broadcast || !env->net.send ||
        !env->app.produce_block || !env->app.validate_block || !env->app.validate_block_for_sync)
        return HS_ERR_INVALID;
    /* The core trusts its own signatures (sig_cache.h): the key pair must be one. */
    uint8_t probe[] = "hotstuff-c key pair check";
    hs_sig probe_sig;
    hs_sign(&cfg->me, probe, sizeof probe, &probe_sig);
    if (!hs_verify(&cfg->me.public_key, probe, sizeof probe, &probe_sig)) {
        hs_log(HS_LOG_ERROR, "core", "the configured key pair is inconsistent: its secret key "
                                     "does not sign for its public key");
        return HS_ERR_INVALID;
    }
    hs_core *c = calloc(1, sizeof *c);
    if (!c) return HS_ERR_NOMEM;
    c->cfg = *cfg;
    c->env = *env;
    c->rd = hs_kv_store_reader(&env->kv);
    c->now = now_ms;
    c->rng = env->rng_seed ? env->rng_seed : 0x9E3779B97F4A7C15ull;
    c->on_highest_pc = hs_hotstuff_on_highest_pc; /* the one hook core_ctx.c calls back */
    c->buffer = hs_msg_buffer_new(cfg->progress_msg_buffer_capacity);
    c->sig_cache = hs_sig_cache_new();
    if (!c->buffer || !c->sig_cache) {
        hs_msg_buffer_free(c->buffer);
        hs_sig_cache_free(c->sig_cache);
        free(c);
        return HS_ERR_NOMEM;
    }

    hs_status st = hs_core_refresh(c);
    if (st != HS_OK) goto fail;

    /* spec §4.8: the start-up view. */
    uint64_t hve = 0;
    st = hs_bt_highest_view_entered(&c->rd, &hve);
    if (st == HS_NOT_FOUND) hve = 0;
    else if (st != HS_OK) goto fail;
    st = hs_bt_highest_tc(&c->rd, &c->highest_tc);
    if (st == HS_OK) c->has_highest_tc = true;
    else if (st != HS_NOT_FOUND) goto fail;
    c->highest_view_entered = hve;
    uint64_t initial_view = start_up_view(c, hve);

    st = hs_pacemaker_init(c, initial_view);
    if (st != HS_OK) goto fail;
    st = hs_hotstuff_init(c, initial_view);
    if (st != HS_OK) goto fail;
    hs_sync_client_init(c);
    hs_log(HS_LOG_INFO, "core", "starting in view %llu", (unsigned long long)initial_view);
    *out = c;
    return HS_OK;
fail:
    hs_log(HS_LOG_ERROR, "core", "cannot start from the store: %s", hs_status_str(st));
    hs_core_free(c);
    return st == HS_NOT_FOUND ? HS_ERR_CORRUPT : st;
}

void hs_core_free(hs_core *c) {
    if (!c) return;
    hs_hotstuff_free(c);
    hs_pacemaker_free(c);
    hs_msg_buffer_free(c->buffer);
    hs_sig_cache_free(c->sig_cache);
    hs_vss_free(&c->vss);
    hs_pc_free(&c->highest_pc);
    hs_tc_free(&c->highest_tc);
    free(c);
}

/* ---- the loop body ---- */

static hs_status dispatch(hs_core *c, const hs_key *origin, const hs_msg *m) {
    if (hs_msg_is_hotstuff(m)) return hs_hotstuff_on_message(c, origin, m);
    if (hs_msg_is_pacemaker(m)) return hs_pacemaker_on_message(c, origin, m);
    if (hs_msg_is_advertise(m)) return hs_sync_client_on_advertise(c, origin, m);
    return HS_OK;
}

/* Tick, follow the Pacemaker into a new view, and deliver what was buffered for the current
 * view, one message per iteration as the reference's recv does (spec §3.14 steps 1-2). Ends
 * because every iteration either returns or pops a message, and ticks add nothing to the
 * buffer. */
static hs_status advance(hs_core *c) {
    for (;;) {
        hs_status st = hs_pacemaker_tick(c);
        if (st != HS_OK) return st;
        if (c->pm_view != c->hs_view) {
            st = hs_hotstuff_enter_view(c, c->pm_view);
            if (st != HS_OK) return st;
        }
        hs_msg_buffer_drop_below(c->buffer, c->pm_view);
        hs_key origin;
        hs_msg m = {0};
        if (!hs_msg_buffer_pop(c->buffer, c->pm_view, &origin, &m)) return HS_OK;
        st = dispatch(c, &origin, &m);
        hs_msg_free(&m);
        if (st != HS_OK) return st;
    }
}

/* spec §3.14 step 3 for one received message. Takes ownership of *m. */
static hs_status intake(hs_core *c, const hs_key *origin, hs_msg *m) {
    hs_status st = HS_OK;
    if (m->type == HS_MSG_SYNC_RESPONSE) {
        st = hs_sync_client_on_response(c, origin, &m->u.sync_response);
        if (st == HS_OK) st = hs_hotstuff_retry_parked(c);
        goto out;
    }
    if (m->type == HS_MSG_SYNC_REQUEST || m->type == HS_MSG_NONE) goto out; /* not ours */
    if (hs_msg_chain_id(m) != c->cfg.chain_id) goto out;
    if (hs_msg_is_advertise(m)) {
        st = dispatch(c, origin, m);
        goto out;
    }
    uint64_t view;
    if (!hs_msg_view(m, &view)) goto out;
    uint64_t cur = c->pm_view;
    bool hotstuff = hs_msg_is_hotstuff(m);
    if (view > cur) {
        /* Future HotStuff messages wait in the buffer. Future Pacemaker messages are handled
         * now AND buffered, so that they are seen again if the replica reaches that view. */
        if (hotstuff) {
            bool inserted = false;
            st = hs_msg_buffer_insert(c->buffer, origin, view, m, &inserted);
            goto out;
        }
        hs_msg copy = {0};
        if (hs_msg_copy(&copy, m) == HS_OK) {
            bool inserted = false;
            st = hs_msg_buffer_insert(c->buffer, origin, view, &copy, &inserted);
            if (!inserted) hs_msg_free(&copy);
            if (st != HS_OK) goto out;
        }
        st = dispatch(c, origin, m);
        goto out;
    }
    if (view == cur) st = dispatch(c, origin, m);
    else if (m->type == HS_MSG_TIMEOUT_VOTE) /* a laggard: see pacemaker.c */
        st = hs_pacemaker_on_stale_timeout_vote(c, origin, &m->u.timeout_vote);
    else if (m->type == HS_MSG_ADVANCE_VIEW) /* we left its view first: see pacemaker.c */
        st = hs_pacemaker_on_stale_advance_view(c, origin, &m->u.advance_view);
    /* Otherwise a past view's message is dropped. */
out:
    hs_msg_free(m);
    return st;
}

hs_status hs_core_step(hs_core *c, uint64_t now_ms, const hs_key *origin, hs_msg *in) {
    if (c->halted != HS_OK) {
        if (in) hs_msg_free(in);
        return c->halted;
    }
    /* The monotonic clock never goes back; a caller that passes an older time gets the last
     * one, so deadlines stay ordered. */
    if (now_ms > c->now) c->now = now_ms;
    hs_status st = advance(c);
    if (st == HS_OK && in) st = intake(c, origin, in);
    else if (in) hs_msg_free(in);
    if (st == HS_OK) st = hs_sync_client_tick(c);
    if (st == HS_OK) st = advance(c);
    if (st != HS_OK && c->halted == HS_OK) hs_core_fail(c, st, "step");
    return st;
}

uint64_t hs_core_deadline(const hs_core *c) {
    /* The view times out when now > deadline (strict, spec §4.4). */
    uint64_t d = c->pm_deadline == UINT64_MAX ? UINT64_MAX : c->pm_deadline + 1;
    uint64_t s = hs_sync_client_deadline(c);
    return s < d ? s : d;
}

uint64_t hs_core_view(const hs_core *c) { return c->pm_view; }
bool hs_core_is_syncing(const hs_core *c) { return c->syncing; }
uint64_t hs_core_buffer_bytes(const hs_core *c) { return hs_msg_buffer_bytes(c->buffer); }
