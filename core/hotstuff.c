/* core/hotstuff.c - the HotStuff subprotocol (spec §3): entering views, proposing and nudging,
 * and handling Proposals, Nudges, PhaseVotes and NewViews.
 *
 * One deliberate difference from the reference's order (spec §3.8 step 4d): a PhaseVote's view
 * is persisted as HIGHEST_VIEW_PHASE_VOTED BEFORE the vote is sent, not after. A replica
 * killed between the two then at worst loses one vote; in the reference order it could restart,
 * not know it voted, and vote again in the same view for another block.
 */
#include <assert.h>
#include <string.h>

#include "algo.h"
#include "bt.h"
#include "hotstuff/crypto.h"
#include "hotstuff/log.h"

hs_status hs_hotstuff_init(hs_core *c, uint64_t initial_view) {
    /* spec §3.6: no enter_view for the initial view (nobody proposes in it). */
    c->hs_view = initial_view;
    c->proposal_status = HS_PS_WAITING;
    return hs_phase_collectors_init(&c->phase_collectors, c->cfg.chain_id, initial_view, &c->vss);
}

void hs_hotstuff_free(hs_core *c) {
    hs_phase_collectors_free(&c->phase_collectors);
    if (c->has_parked) hs_msg_free(&c->parked);
    c->has_parked = false;
}

/* spec §3.1 is_phase_voter */
static bool is_phase_voter(const hs_core *c, const hs_pc *justify) {
    const hs_key *me = hs_core_me(c);
    if (c->vss.update_decided || justify->phase == HS_PHASE_COMMIT)
        return hs_vs_contains(&c->vss.committed, me);
    return hs_vs_contains(&c->vss.previous, me);
}

static hs_status persist_entered_view(hs_core *c, uint64_t view) {
    hs_status st = hs_bt_set_highest_view_entered(&c->env.kv, view);
    if (st != HS_OK) return hs_core_fail(c, st, "persist highest view entered");
    c->highest_view_entered = view;
    return HS_OK;
}

/* Build the App's view at `parent` (NULL for height 0) for one App call. */
static hs_status open_app_view(hs_core *c, const hs_hash *parent, hs_app_view **v) {
    hs_status st = hs_app_view_open(&c->rd, parent, v);
    if (st != HS_OK) return hs_core_fail(c, st, "open app view");
    return HS_OK;
}

static void free_produce_response(hs_produce_block_response *r) {
    hs_data_free(&r->data);
    hs_app_updates_free(&r->app_state_updates);
    hs_vs_updates_free(&r->validator_set_updates);
}

static void free_validate_response(hs_validate_block_response *r) {
    hs_app_updates_free(&r->app_state_updates);
    hs_vs_updates_free(&r->validator_set_updates);
}

/* spec §3.6 step 4b, highest PC Generic or Decide: produce and broadcast a new block. */
static hs_status propose_new_block(hs_core *c, uint64_t view) {
    const hs_pc *hp = &c->highest_pc;
    bool genesis = hs_pc_is_genesis(hp);
    uint64_t height = 0;
    if (!genesis) {
        hs_status st = hs_bt_block_height(&c->rd, &hp->block, &height);
        if (st != HS_OK) /* highest_pc always certifies a stored block */
            return hs_core_fail(c, st == HS_NOT_FOUND ? HS_ERR_CORRUPT : st, "highest pc block");
        if (height >= UINT64_MAX - 1) { /* safe_block admits no block at UINT64_MAX */
            hs_log(HS_LOG_ERROR, "hotstuff", "block height space exhausted: not proposing");
            return HS_OK;
        }
        height++;
    }
    hs_app_view *av = NULL;
    hs_status st = open_app_view(c, genesis ? NULL : &hp->block, &av);
    if (st != HS_OK) return st;
    hs_produce_block_request req = {.cur_view = view, .has_parent = !genesis, .tree = av};
    if (!genesis) req.parent = hp->block;
    hs_produce_block_response resp = {0};
    hs_status ast = c->env.app.produce_block(c->env.app.self, &req, &resp);
    hs_app_view_close(av);
    if (ast != HS_OK) {
        hs_log(HS_LOG_WARN, "hotstuff", "App produce_block failed in view %llu: %s",
               (unsigned long long)view, hs_status_str(ast));
        free_produce_response(&resp);
        return HS_OK; /* no proposal this view; the view times out */
    }

    hs_msg m = {.type = HS_MSG_PROPOSAL};
    hs_proposal *p = &m.u.proposal;
    p->chain_id = c->cfg.chain_id;
    p->view = view;
    p->block.height = height;
    p->block.data_hash = resp.data_hash;
    p->block.data = resp.data; /* moved */
    resp.data = (hs_data){0};
    free_produce_response(&resp);
    st = hs_pc_copy(&p->block.justify, hp);
    if (st == HS_OK) st = hs_block_compute_hash(&p->block, &p->block.hash);
    if (st != HS_OK) {
        hs_msg_free(&m);
        return hs_core_fail(c, st, "build proposal");
    }
    c->env.net.broadcast(c->env.net.self, &m);
    hs_event e = {.type = HS_EV_PROPOSE};
    e.u.propose.proposal = *p;
    hs_core_emit(c, &e);
    hs_msg_free(&m);
    return HS_OK;
}

static hs_status propose_if_leader(hs_core *c, uint64_t view);

/* spec §3.6 */
hs_status hs_hotstuff_enter_view(hs_core *c, uint64_t view) {
    uint64_t old = c->hs_view;
    assert(view > old);

    /* 1. NewView to the next leader(s) of the view being left. */
    hs_msg nv = {.type = HS_MSG_NEW_VIEW};
    nv.u.new_view.chain_id = c->cfg.chain_id;
    nv.u.new_view.view = old;
    nv.u.new_view.highest_pc = c->highest_pc; /* borrowed: not freed below */
    hs_key to[2];
    uint32_t n_to = 0;
    hs_status st = hs_leader_new_view_recipients(c, old + 1, to, &n_to);
    if (st != HS_OK) return hs_core_fail(c, st, "new view recipients");
    for (uint32_t i = 0; i < n_to; i++) c->env.net.send(c->env.net.self, &to[i], &nv);
    hs_event e = {.type = HS_EV_NEW_VIEW};
    e.u.new_view.new_view = nv.u.new_view;
    hs_core_emit(c, &e);

    /* 2. */
    c->hs_view = view;
    c->proposal_status = HS_PS_WAITING;
    hs_phase_collectors_free(&c->phase_collectors);
    st = hs_phase_collectors_init(&c->phase_collectors, c->cfg.chain_id, view, &c->vss);
    if (st != HS_OK) return hs_core_fail(c, st, "phase collectors");

    /* 3. */
    st = persist_entered_view(c, view);
    if (st != HS_OK) return st;
    e = (hs_event){.type = HS_EV_START_VIEW};
    e.u.start_view.view = view;
    hs_core_emit(c, &e);

    /* 4. */
    c->proposed_in_view = false;
    return propose_if_leader(c, view);
}

/* spec §3.6 step 4. Whether this replica proposes is asked of the message it would send: its
 * basis is the re-proposed block's own justify, or the highest PC (leader.c). Under the
 * reference's round robin the basis is ignored, so the order of these steps does not matter. */
static hs_status propose_if_leader(hs_core *c, uint64_t view) {
    hs_event e;
    hs_status st;
    bool has = false;
    hs_hash rp;
    st = hs_repropose_block(&c->rd, view, &has, &rp);
    if (st != HS_OK) return hs_core_fail(c, st, "repropose_block");
    if (has) {
        hs_msg m = {.type = HS_MSG_PROPOSAL};
        m.u.proposal.chain_id = c->cfg.chain_id;
        m.u.proposal.view = view;
        st = hs_bt_block(&c->rd, &rp, &m.u.proposal.block);
        if (st != HS_OK)
            return hs_core_fail(c, st == HS_NOT_FOUND ? HS_ERR_CORRUPT : st, "re-proposed block");
        if (!hs_leader_is_proposer(c, hs_core_me(c), view, &m.u.proposal.block.justify)) {
            hs_msg_free(&m);
            return HS_OK;
        }
        c->proposed_in_view = true;
        c->env.net.broadcast(c->env.net.self, &m);
        e = (hs_event){.type = HS_EV_PROPOSE};
        e.u.propose.proposal = m.u.proposal;
        hs_core_emit(c, &e);
        hs_msg_free(&m);
        return HS_OK;
    }
    if (!hs_leader_is_proposer(c, hs_core_me(c), view, &c->highest_pc)) return HS_OK;
    c->proposed_in_view = true;
    if (hs_pc_is_block_justify(&c->highest_pc)) return propose_new_block(c, view);

    hs_msg m = {.type = HS_MSG_NUDGE};
    m.u.nudge.chain_id = c->cfg.chain_id;
    m.u.nudge.view = view;
    m.u.nudge.justify = c->highest_pc; /* borrowed */
    c->env.net.broadcast(c->env.net.self, &m);
    e = (hs_event){.type = HS_EV_NUDGE};
    e.u.nudge.nudge = m.u.nudge;
    hs_core_emit(c, &e);
    return HS_OK;
}

/* spec §3.7: every handled Proposal or Nudge advances the status. */
static void advance_status(hs_core *c, const hs_key *origin) {
    if (c->proposal_status == HS_PS_WAITING) {
        c->proposal_status = HS_PS_ONE_LEADER_PROPOSED;
        c->first_proposer = *origin;
    } else {
        c->proposal_status = HS_PS_ALL_LEADERS_PROPOSED;
    }
}

/* Sign, persist, send and announce a PhaseVote for `block` in the current view. */
static hs_status vote(hs_core *c, const hs_hash *block, hs_phase phase) {
    hs_msg m = {.type = HS_MSG_PHASE_VOTE};
    hs_phase_vote *v = &m.u.phase_vote;
    v->chain_id = c->cfg.chain_id;
    v->view = c->hs_view;
    v->block = *block;
    v->phase = phase;
    uint8_t bytes[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(v->chain_id, v->view, &v->block, v->phase, bytes);
    hs_sign(&c->cfg.me, bytes, sizeof bytes, &v->sig);
    hs_sig_cache_remember(c->sig_cache, hs_core_me(c), bytes, sizeof bytes, &v->sig);

    /* Votes go to the next leader (spec §3.1), or to everyone (HS_VOTES_TO_ALL), so that every
     * replica collects the PC itself and no single next leader's crash loses it. */
    bool to_all = c->cfg.vote_routing == HS_VOTES_TO_ALL;
    hs_key to;
    if (!to_all) {
        hs_status st = hs_leader_vote_recipient(c, v, &to);
        if (st == HS_ERR_STATE) return HS_OK; /* no leader: nobody to tell */
        if (st != HS_OK) return hs_core_fail(c, st, "phase vote recipient");
    }
    /* Persist first (see the file comment): never two votes in one view, even across a crash. */
    hs_status st = hs_bt_set_highest_view_phase_voted(&c->env.kv, v->view);
    if (st != HS_OK) return hs_core_fail(c, st, "persist highest view phase voted");
    if (to_all) c->env.net.broadcast(c->env.net.self, &m);
    else c->env.net.send(c->env.net.self, &to, &m);
    hs_event e = {.type = HS_EV_PHASE_VOTE};
    e.u.phase_vote.vote = *v;
    hs_core_emit(c, &e);
    return HS_OK;
}

static hs_status voted_in_current_view(hs_core *c, bool *voted) {
    uint64_t hv = 0;
    hs_status st = hs_bt_highest_view_phase_voted(&c->rd, &hv);
    if (st == HS_NOT_FOUND) {
        *voted = false;
        return HS_OK;
    }
    if (st != HS_OK) return hs_core_fail(c, st, "read highest view phase voted");
    *voted = hv >= c->hs_view;
    return HS_OK;
}

/* The App's verdict on a new block, and its insertion when valid (spec §3.8 steps 3-4a). */
static hs_status validate_and_insert(hs_core *c, const hs_block *b, bool *vs_updating,
                                     bool *valid) {
    *valid = false;
    bool genesis = hs_pc_is_genesis(&b->justify);
    hs_app_view *av = NULL;
    hs_status st = open_app_view(c, genesis ? NULL : &b->justify.block, &av);
    if (st != HS_OK) return st;
    hs_validate_block_request req = {.proposed_block = b, .tree = av};
    hs_validate_block_response resp = {0};
    hs_status ast = c->env.app.validate_block(c->env.app.self, &req, &resp);
    hs_app_view_close(av);
    if (ast != HS_OK || !resp.valid) {
        if (ast != HS_OK)
            hs_log(HS_LOG_WARN, "hotstuff", "App validate_block failed: %s", hs_status_str(ast));
        free_validate_response(&resp);
        return HS_OK;
    }
    st = hs_bt_insert(&c->env.kv, b, resp.has_app_state_updates ? &resp.app_state_updates : NULL,
                      resp.has_validator_set_updates ? &resp.validator_set_updates : NULL);
    *vs_updating = resp.has_validator_set_updates;
    free_validate_response(&resp);
    if (st != HS_OK) return hs_core_fail(c, st, "insert block");
    *valid = true;
    hs_event e = {.type = HS_EV_INSERT_BLOCK};
    e.u.insert_block.block = *b;
    hs_core_emit(c, &e);
    return HS_OK;
}

/* spec §3.8 */
static hs_status on_proposal(hs_core *c, const hs_key *origin, const hs_proposal *p) {
    hs_event e = {.type = HS_EV_RECEIVE_PROPOSAL};
    e.u.receive_proposal.origin = *origin;
    e.u.receive_proposal.proposal = *p;
    hs_core_emit(c, &e);

    const hs_block *b = &p->block;
    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_block_is_correct(&sc, b, &ok);
    if (st == HS_OK && ok) st = hs_safe_block(&sc, b, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check proposal");
    if (!ok) return HS_OK;

    /* A block already in the tree (a re-proposal, spec §3.4) was validated when it was
     * inserted; it is not inserted again (see hs_bt_insert), and whether it updates the
     * validator set is read from its stored status. */
    bool known = false, vs_updating = false;
    st = hs_bt_contains(&c->rd, &b->hash, &known);
    if (st != HS_OK) return hs_core_fail(c, st, "read block");
    if (known) {
        hs_vsu_status vst;
        st = hs_bt_vsu_status(&c->rd, &b->hash, &vst, NULL);
        if (st != HS_OK) return hs_core_fail(c, st, "read vs status");
        vs_updating = vst != HS_VSU_NONE;
    } else {
        st = validate_and_insert(c, b, &vs_updating, &ok);
        if (st != HS_OK) return st;
        if (!ok) return HS_OK; /* spec §3.8 step 5: nothing stored or sent */
    }

    st = hs_core_apply_update(c, &b->justify, true);
    if (st != HS_OK) return st;

    bool voted = false;
    st = voted_in_current_view(c, &voted);
    if (st != HS_OK) return st;
    if (is_phase_voter(c, &b->justify) && !voted)
        return vote(c, &b->hash, vs_updating ? HS_PHASE_PREPARE : HS_PHASE_GENERIC);
    return HS_OK;
}

/* spec §3.9 */
static hs_status on_nudge(hs_core *c, const hs_key *origin, const hs_nudge *n) {
    hs_event e = {.type = HS_EV_RECEIVE_NUDGE};
    e.u.receive_nudge.origin = *origin;
    e.u.receive_nudge.nudge = *n;
    hs_core_emit(c, &e);

    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_pc_is_correct(&sc, &n->justify, &ok);
    if (st == HS_OK && ok) st = hs_safe_nudge(&sc, n, c->hs_view, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check nudge");
    if (!ok) return HS_OK;

    st = hs_core_apply_update(c, &n->justify, true);
    if (st != HS_OK) return st;
    bool voted = false;
    st = voted_in_current_view(c, &voted);
    if (st != HS_OK) return st;
    if (is_phase_voter(c, &n->justify) && !voted) {
        /* safe_nudge admits only Prepare, Precommit and Commit; the vote is the next phase. */
        assert(hs_pc_is_nudge_justify(&n->justify));
        return vote(c, &n->justify.block, (hs_phase)(n->justify.phase + 1));
    }
    return HS_OK;
}

/* spec §3.10 */
static hs_status on_phase_vote(hs_core *c, const hs_key *origin, const hs_phase_vote *v) {
    hs_event e = {.type = HS_EV_RECEIVE_PHASE_VOTE};
    e.u.receive_phase_vote.origin = *origin;
    e.u.receive_phase_vote.vote = *v;
    hs_core_emit(c, &e);

    if ((unsigned)v->phase >= HS_PHASE_COUNT) return HS_OK;
    uint8_t bytes[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(v->chain_id, v->view, &v->block, v->phase, bytes);
    if (!hs_sig_cache_verify(c->sig_cache, origin, bytes, sizeof bytes, &v->sig)) return HS_OK;

    bool got = false;
    hs_pc pc = {0};
    hs_status st = hs_phase_collectors_collect(&c->phase_collectors, origin, v, &got, &pc);
    if (st != HS_OK) return hs_core_fail(c, st, "collect phase vote");
    if (!got) return HS_OK;
    e = (hs_event){.type = HS_EV_COLLECT_PC};
    e.u.collect_pc.pc = pc;
    hs_core_emit(c, &e);

    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    st = hs_pc_is_correct(&sc, &pc, &ok);
    if (st == HS_OK && ok) st = hs_safe_pc(&sc, &pc, &ok);
    if (st == HS_OK && ok) st = hs_core_apply_update(c, &pc, true);
    else if (st != HS_OK) st = hs_core_fail(c, st, "check collected pc");
    hs_pc_free(&pc);
    return st;
}

/* spec §3.11 */
static hs_status on_new_view(hs_core *c, const hs_key *origin, const hs_new_view *nv) {
    hs_event e = {.type = HS_EV_RECEIVE_NEW_VIEW};
    e.u.receive_new_view.origin = *origin;
    e.u.receive_new_view.new_view = *nv;
    hs_core_emit(c, &e);

    hs_safety_ctx sc = hs_core_safety(c);
    bool ok = false;
    hs_status st = hs_pc_is_correct(&sc, &nv->highest_pc, &ok);
    if (st == HS_OK && ok) st = hs_safe_pc(&sc, &nv->highest_pc, &ok);
    if (st != HS_OK) return hs_core_fail(c, st, "check new view");
    if (!ok) return HS_OK;
    return hs_core_apply_update(c, &nv->highest_pc, true);
}

/* The basis of a Proposal or Nudge of the current view certifies a block we lack: fetch it
 * from the sender (sync_client.c) and keep the message, so that it can still be voted for in
 * this view once the block is in. One message is kept; a newer one replaces it. */
static hs_status park_if_missing(hs_core *c, const hs_key *origin, const hs_msg *m,
                                 const hs_pc *basis, bool *parked) {
    *parked = false;
    if (hs_pc_is_genesis(basis) || !hs_core_is_validator(c, origin)) return HS_OK;
    bool known = true;
    hs_status st = hs_bt_contains(&c->rd, &basis->block, &known);
    if (st != HS_OK) return hs_core_fail(c, st, "read block");
    if (known) return HS_OK;
    bool started = false;
    st = hs_sync_client_fetch(c, origin, basis, true, &started);
    if (st != HS_OK || !started) return st;
    hs_msg copy = {0};
    if (hs_msg_copy(&copy, m) != HS_OK) return HS_OK; /* out of memory: the view may fail */
    if (c->has_parked) hs_msg_free(&c->parked);
    c->parked = copy;
    c->parked_origin = *origin;
    c->has_parked = true;
    *parked = true;
    return HS_OK;
}

/* Under active leader selection the leader of the current view v depends on the PC it builds
 * on. A replica that entered v without PC(v - 1) (its view timed out just before the PC
 * formed) took another for the leader, and the leader the PC names may be itself: when that
 * PC arrives, late, it proposes then. Only for PC(v - 1), the basis every replica that holds
 * it agrees on, and at most once per view. */
hs_status hs_hotstuff_on_highest_pc(hs_core *c) {
    if (c->cfg.leader_selection != HS_LEADER_ACTIVE || c->proposed_in_view) return HS_OK;
    if (c->hs_view != c->pm_view || c->highest_pc.view + 1 != c->hs_view) return HS_OK;
    return propose_if_leader(c, c->hs_view);
}

hs_status hs_hotstuff_retry_parked(hs_core *c) {
    if (!c->has_parked) return HS_OK;
    hs_msg m = c->parked;
    hs_key origin = c->parked_origin;
    c->has_parked = false;
    uint64_t view = 0;
    hs_status st = HS_OK;
    if (hs_msg_view(&m, &view) && view == c->hs_view) st = hs_hotstuff_on_message(c, &origin, &m);
    hs_msg_free(&m);
    return st;
}

/* spec §3.7 dispatch. */
hs_status hs_hotstuff_on_message(hs_core *c, const hs_key *origin, const hs_msg *m) {
    switch (m->type) {
    case HS_MSG_PROPOSAL:
    case HS_MSG_NUDGE: {
        const hs_pc *basis =
            m->type == HS_MSG_PROPOSAL ? &m->u.proposal.block.justify : &m->u.nudge.justify;
        bool parked = false;
        hs_status st = park_if_missing(c, origin, m, basis, &parked);
        if (st != HS_OK || parked) return st;
        if (!hs_leader_is_proposer(c, origin, c->hs_view, basis)) return HS_OK;
        if (c->proposal_status == HS_PS_ALL_LEADERS_PROPOSED) return HS_OK;
        if (c->proposal_status == HS_PS_ONE_LEADER_PROPOSED &&
            memcmp(c->first_proposer.b, origin->b, HS_KEY_LEN) == 0)
            return HS_OK;
        st = m->type == HS_MSG_PROPOSAL ? on_proposal(c, origin, &m->u.proposal)
                                        : on_nudge(c, origin, &m->u.nudge);
        advance_status(c, origin);
        return st;
    }
    case HS_MSG_PHASE_VOTE:
        return on_phase_vote(c, origin, &m->u.phase_vote);
    case HS_MSG_NEW_VIEW:
        return on_new_view(c, origin, &m->u.new_view);
    default:
        return HS_OK;
    }
}
