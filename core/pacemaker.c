/* core/pacemaker.c - view synchronisation (spec §4): view deadlines, timeout votes and
 * certificates in epoch-change views, and AdvanceView.
 *
 * Deadlines (HS_DEADLINES_EPOCH, spec §4.2) are laid out per epoch from the epoch's start, in
 * milliseconds (the reference truncates max_view_time to whole seconds, §14.12). On a chain
 * that runs ahead of its deadlines a crashed leader's view then waits until its pre-computed
 * deadline, up to epoch_length x max_view_time away. HS_DEADLINES_ENTRY (the default) gives
 * each view max_view_time from the moment it is entered, so a failed view costs one
 * max_view_time. Views left by timeout advance each replica on its own clock, so replicas that
 * make no progress drift apart, and only a certificate brings them together again. So after a
 * whole rotation of failed views in a row (as many as there are validators: crashed leaders,
 * once skipped, cannot cause it, see leader.c; a lost quorum or a partition can) a replica
 * goes straight to the next epoch-change view and parks there, sending TimeoutVotes every
 * max_view_time (spec §4.4): every replica that lost progress meets the others there, and a
 * timeout certificate forms as soon as a quorum is back. From then on each view's time doubles
 * with each further failure, up to BACKOFF_MAX_SHIFT doublings, in case max_view_time itself
 * is too short; a PC (a view that succeeded) resets the count, a TC does not.
 */
#include <assert.h>
#include <string.h>

#include "algo.h"
#include "bt.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b) {
    return (b != 0 && a > UINT64_MAX / b) ? UINT64_MAX : a * b;
}

/* spec §4.2: every view of the epoch of `start` gets base + T * (v - start + 1). */
static void lay_out_epoch(hs_core *c, uint64_t start) {
    c->epoch_start_view = start;
    c->epoch_base = c->now;
}

static uint64_t epoch_deadline(const hs_core *c, uint64_t view) {
    assert(view >= c->epoch_start_view);
    return sat_add(c->epoch_base,
                   sat_mul(c->cfg.max_view_time_ms, view - c->epoch_start_view + 1));
}

#define BACKOFF_MAX_SHIFT 3

static uint32_t rotation(const hs_core *c) {
    return c->vss.committed.n ? c->vss.committed.n : 1;
}

/* The time a view entered now gets under HS_DEADLINES_ENTRY. */
static uint64_t entry_view_time(const hs_core *c) {
    uint32_t shift = 0;
    if (c->timeouts_in_row >= rotation(c)) shift = c->timeouts_in_row - rotation(c) + 1;
    if (shift > BACKOFF_MAX_SHIFT) shift = BACKOFF_MAX_SHIFT;
    return c->cfg.max_view_time_ms << shift;
}

hs_status hs_pacemaker_init(hs_core *c, uint64_t initial_view) {
    c->pm_view = initial_view;
    lay_out_epoch(c, initial_view);
    c->pm_deadline = epoch_deadline(c, initial_view);
    c->has_last_advance_view = false;
    return hs_timeout_collectors_init(&c->timeout_collectors, c->cfg.chain_id, initial_view,
                                      &c->vss);
}

void hs_pacemaker_free(hs_core *c) { hs_timeout_collectors_free(&c->timeout_collectors); }

typedef enum moved_by { BY_TIMEOUT, BY_TC, BY_PC } moved_by;

/* spec §4.7, with the cause of the move (see the file comment). */
static hs_status update_view(hs_core *c, uint64_t next, moved_by why) {
    assert(next > c->pm_view);
    if (why == BY_TIMEOUT) {
        if (c->timeouts_in_row < UINT32_MAX) c->timeouts_in_row++;
    } else if (why == BY_PC) {
        c->timeouts_in_row = 0;
    }
    if (c->cfg.view_deadlines == HS_DEADLINES_ENTRY) {
        c->pm_view = next;
        c->pm_deadline = sat_add(c->now, entry_view_time(c));
    } else {
        if (hs_core_epoch(c, c->pm_view) != hs_core_epoch(c, next)) lay_out_epoch(c, next);
        c->pm_view = next;
        c->pm_deadline = epoch_deadline(c, next);
    }
    hs_timeout_collectors_free(&c->timeout_collectors);
    hs_status st =
        hs_timeout_collectors_init(&c->timeout_collectors, c->cfg.chain_id, next, &c->vss);
    if (st != HS_OK) return hs_core_fail(c, st, "timeout collectors");
    return HS_OK;
}

static bool may_advertise(const hs_core *c) {
    return hs_core_is_validator(c, hs_core_me(c)) &&
           (!c->has_last_advance_view || c->last_advance_view < c->pm_view);
}

static void broadcast_advance_view(hs_core *c, const hs_advance_view *av) {
    hs_msg m = {.type = HS_MSG_ADVANCE_VIEW};
    m.u.advance_view = *av; /* borrowed */
    c->env.net.broadcast(c->env.net.self, &m);
    hs_event e = {.type = HS_EV_ADVANCE_VIEW};
    e.u.advance_view.advance_view = *av;
    hs_core_emit(c, &e);
    c->has_last_advance_view = true;
    c->last_advance_view = c->pm_view;
}

static hs_status store_highest_tc(hs_core *c, const hs_tc *tc) {
    hs_status st = hs_bt_set_highest_tc(&c->env.kv, tc);
    if (st != HS_OK) return hs_core_fail(c, st, "persist highest tc");
    hs_tc copy = {0};
    st = hs_tc_copy(&copy, tc);
    if (st != HS_OK) return hs_core_fail(c, st, "copy tc");
    hs_tc_free(&c->highest_tc);
    c->highest_tc = copy;
    c->has_highest_tc = true;
    hs_event e = {.type = HS_EV_UPDATE_HIGHEST_TC};
    e.u.update_highest_tc.highest_tc = *tc;
    hs_core_emit(c, &e);
    return HS_OK;
}

static bool higher_than_stored_tc(const hs_core *c, const hs_tc *tc) {
    return !c->has_highest_tc || tc->view > c->highest_tc.view;
}

/* spec §4.4 */
hs_status hs_pacemaker_tick(hs_core *c) {
    if (c->now > c->pm_deadline) {
        uint64_t cur = c->pm_view;
        hs_event e = {.type = HS_EV_VIEW_TIMEOUT};
        e.u.view_timeout.view = cur;
        hs_core_emit(c, &e);
        /* The last view, UINT64_MAX, has no successor: it parks like an epoch-change view. */
        if (!hs_core_is_epoch_change_view(c, cur) && cur < UINT64_MAX - 1) {
            uint64_t next = cur + 1;
            if (c->cfg.view_deadlines == HS_DEADLINES_ENTRY &&
                c->timeouts_in_row + 1 >= rotation(c)) {
                /* A whole rotation failed: meet the others in the next epoch-change view. */
                uint64_t n = c->cfg.epoch_length, up = (n - next % n) % n;
                if (next <= UINT64_MAX - 1 - up) next += up;
            }
            return update_view(c, next, BY_TIMEOUT);
        }

        if (hs_core_is_validator(c, hs_core_me(c))) {
            hs_msg m = {.type = HS_MSG_TIMEOUT_VOTE};
            hs_timeout_vote *tv = &m.u.timeout_vote;
            tv->chain_id = c->cfg.chain_id;
            tv->view = cur;
            uint8_t bytes[HS_TIMEOUT_MSG_LEN];
            hs_timeout_vote_bytes(tv->chain_id, cur, bytes);
            hs_sign(&c->cfg.me, bytes, sizeof bytes, &tv->sig);
            hs_sig_cache_remember(c->sig_cache, hs_core_me(c), bytes, sizeof bytes, &tv->sig);
            if (c->has_highest_tc) {
                tv->has_highest_tc = true;
                tv->highest_tc = c->highest_tc; /* borrowed */
            }
            c->env.net.broadcast(c->env.net.self, &m);
            e = (hs_event){.type = HS_EV_TIMEOUT_VOTE};
            e.u.timeout_vote.timeout_vote = *tv;
            hs_core_emit(c, &e);
        }
        /* Park in the epoch-change view, voting again every T until a TC or PC moves us. */
        c->pm_deadline = sat_add(c->now, c->cfg.max_view_time_ms);
        return HS_OK;
    }

    hs_status st = hs_timeout_collectors_update(&c->timeout_collectors, &c->vss);
    if (st != HS_OK) return hs_core_fail(c, st, "update timeout collectors");

    const hs_pc *hp = &c->highest_pc;
    if (hp->view >= c->pm_view && !hs_pc_is_genesis(hp) && may_advertise(c)) {
        hs_advance_view av = {.is_tc = false, .pc = *hp};
        broadcast_advance_view(c, &av);
    }
    return HS_OK;
}

/* spec §4.5 */
static hs_status on_timeout_vote(hs_core *c, const hs_key *origin, const hs_timeout_vote *tv) {
    hs_event e = {.type = HS_EV_RECEIVE_TIMEOUT_VOTE};
    e.u.receive_timeout_vote.origin = *origin;
    e.u.receive_timeout_vote.timeout_vote = *tv;
    hs_core_emit(c, &e);

    if (!hs_core_is_validator(c, origin)) return HS_OK;
    uint8_t bytes[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(tv->chain_id, tv->view, bytes);
    if (!hs_sig_cache_verify(c->sig_cache, origin, bytes, sizeof bytes, &tv->sig)) return HS_OK;
    if (!hs_core_is_epoch_change_view(c, tv->view)) return HS_OK;

    hs_safety_ctx sc = hs_core_safety(c);
    bool fallback = false;
    if (tv->has_highest_tc) {
        hs_status st = hs_tc_is_correct(&sc, &tv->highest_tc, &fallback);
        if (st != HS_OK) return hs_core_fail(c, st, "check fallback tc");
    }

    bool got = false;
    hs_tc tc = {0};
    hs_status st = hs_timeout_collectors_collect(&c->timeout_collectors, origin, tv, &got, &tc);
    if (st != HS_OK) return hs_core_fail(c, st, "collect timeout vote");
    if (got) {
        e = (hs_event){.type = HS_EV_COLLECT_TC};
        e.u.collect_tc.tc = tc;
        hs_core_emit(c, &e);
        if (higher_than_stored_tc(c, &tc)) {
            st = store_highest_tc(c, &tc);
            /* The view is not changed here: the replica moves when its own AdvanceView comes
             * back (spec §4.5). Only validators advertise (the C port's reading, §14.9). */
            if (st == HS_OK && may_advertise(c)) {
                hs_advance_view av = {.is_tc = true, .tc = tc};
                broadcast_advance_view(c, &av);
            }
        }
        hs_tc_free(&tc);
        return st;
    }
    if (fallback && higher_than_stored_tc(c, &tv->highest_tc)) {
        st = store_highest_tc(c, &tv->highest_tc);
        if (st != HS_OK) return st;
        /* spec §14.10: store it, but move only forward. */
        if (tv->highest_tc.view < UINT64_MAX - 1 && tv->highest_tc.view + 1 > c->pm_view)
            return update_view(c, tv->highest_tc.view + 1, BY_TC);
    }
    return HS_OK;
}

/* Under active leader selection the proposer of a view depends on the PC it builds on
 * (leader.c), so a replica moved by an AdvanceView's PC must hold that PC too, or it would not
 * know who leads and could propose itself on an older one. The reference leaves the PC to
 * HotStuff (spec §4.6); applying a correct one through safe_pc is what a NewView carrying it
 * does (spec §3.11). A PC for a block we lack is fetched from the sender. `pc` is correct. */
static hs_status apply_certified_pc(hs_core *c, const hs_key *origin, const hs_pc *pc) {
    if (c->cfg.leader_selection != HS_LEADER_ACTIVE || pc->view <= c->highest_pc.view)
        return HS_OK;
    hs_safety_ctx sc = hs_core_safety(c);
    bool safe = false;
    hs_status st = hs_safe_pc(&sc, pc, &safe);
    if (st != HS_OK) return hs_core_fail(c, st, "check advance view pc");
    if (safe) return hs_core_apply_update(c, pc, true);
    bool started = false;
    return hs_sync_client_fetch(c, origin, pc, false, &started);
}

/* spec §4.6 */
static hs_status on_advance_view(hs_core *c, const hs_key *origin, const hs_advance_view *av) {
    hs_event e = {.type = HS_EV_RECEIVE_ADVANCE_VIEW};
    e.u.receive_advance_view.origin = *origin;
    e.u.receive_advance_view.advance_view = *av;
    hs_core_emit(c, &e);

    if (!hs_core_is_validator(c, origin)) return HS_OK;
    hs_safety_ctx sc = hs_core_safety(c);
    bool valid = false;
    hs_status st;
    uint64_t view;
    if (av->is_tc) {
        st = hs_tc_is_correct(&sc, &av->tc, &valid);
        valid = valid && hs_core_is_epoch_change_view(c, av->tc.view);
        view = av->tc.view;
    } else {
        st = hs_pc_is_correct(&sc, &av->pc, &valid);
        view = av->pc.view;
    }
    if (st != HS_OK) return hs_core_fail(c, st, "check advance view");
    if (!valid) return HS_OK;

    if (av->is_tc && higher_than_stored_tc(c, &av->tc)) {
        st = store_highest_tc(c, &av->tc);
        if (st != HS_OK) return st;
    }
    if (!av->is_tc) {
        st = apply_certified_pc(c, origin, &av->pc);
        if (st != HS_OK) return st;
    }
    if (may_advertise(c)) broadcast_advance_view(c, av);
    /* Delivered only when view >= the current view (spec §3.14), so this moves forward. Views
     * stop at UINT64_MAX - 1, so that a view always has a successor to time out into. */
    if (view >= UINT64_MAX - 1 || view + 1 <= c->pm_view) return HS_OK;
    return update_view(c, view + 1, av->is_tc ? BY_TC : BY_PC);
}

/* A TimeoutVote from a view below ours: its sender is parked in an epoch-change view we have
 * already left, so it missed the AdvanceView that moved us. Nothing in the spec brings it back:
 * its timeout votes are dropped by every replica that moved on, and AdvanceView is broadcast
 * once. Replicas can end up parked in different epoch-change views, none with a timeout quorum
 * (a permanent stall the simulator found). So a validator answers such a vote, from a
 * validator and correctly signed, by sending the sender its own certificates for a view at
 * least as high: the AdvanceView the sender missed. This adds at most two messages per stale
 * vote (senders re-vote once per max_view_time) and changes no rule of the protocol. */
hs_status hs_pacemaker_on_stale_timeout_vote(hs_core *c, const hs_key *origin,
                                             const hs_timeout_vote *tv) {
    if (tv->view >= c->pm_view || !hs_core_is_epoch_change_view(c, tv->view)) return HS_OK;
    if (!hs_core_is_validator(c, hs_core_me(c)) || !hs_core_is_validator(c, origin)) return HS_OK;
    if (memcmp(origin->b, hs_core_me(c)->b, HS_KEY_LEN) == 0) return HS_OK;
    uint8_t bytes[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(tv->chain_id, tv->view, bytes);
    if (!hs_sig_cache_verify(c->sig_cache, origin, bytes, sizeof bytes, &tv->sig)) return HS_OK;

    /* Both certificates when both qualify: across a validator-set change the laggard may be
     * able to verify only one of them (a TC of the new set means nothing to a replica that has
     * not committed the change yet, while the PC of the old set's Commit phase does). */
    const hs_pc *hp = &c->highest_pc;
    if (!hs_pc_is_genesis(hp) && hp->view >= tv->view) {
        hs_msg m = {.type = HS_MSG_ADVANCE_VIEW};
        m.u.advance_view.pc = *hp; /* borrowed */
        c->env.net.send(c->env.net.self, origin, &m);
    }
    if (c->has_highest_tc && c->highest_tc.view >= tv->view) {
        hs_msg m = {.type = HS_MSG_ADVANCE_VIEW};
        m.u.advance_view.is_tc = true;
        m.u.advance_view.tc = c->highest_tc; /* borrowed */
        c->env.net.send(c->env.net.self, origin, &m);
    }
    return HS_OK;
}

/* An AdvanceView of a view below ours: it cannot move us, but its PC may be one we lack.
 * A replica whose view timed out just before the PC of that view formed enters the next view
 * without it, and then disagrees with the others on who leads (leader.c). */
hs_status hs_pacemaker_on_stale_advance_view(hs_core *c, const hs_key *origin,
                                             const hs_advance_view *av) {
    if (av->is_tc || c->cfg.leader_selection != HS_LEADER_ACTIVE) return HS_OK;
    if (av->pc.view <= c->highest_pc.view || !hs_core_is_validator(c, origin)) return HS_OK;
    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_pc_is_correct(&sc, &av->pc, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check advance view pc");
    return ok ? apply_certified_pc(c, origin, &av->pc) : HS_OK;
}

hs_status hs_pacemaker_on_message(hs_core *c, const hs_key *origin, const hs_msg *m) {
    /* The intake delivers Pacemaker messages of views >= the current one (spec §3.14); a
     * buffered copy may come back after processing it moved us past its view. */
    uint64_t view;
    if (hs_msg_view(m, &view) && view < c->pm_view) return HS_OK;
    if (m->type == HS_MSG_TIMEOUT_VOTE) return on_timeout_vote(c, origin, &m->u.timeout_vote);
    if (m->type == HS_MSG_ADVANCE_VIEW) return on_advance_view(c, origin, &m->u.advance_view);
    return HS_OK;
}
