/* core/leader.c - who proposes a view, and where votes go (spec §3.1, §4.3, and this port's
 * "active" leader selection; the rule and its arguments are in docs/liveness.md).
 *
 * Reference (HS_LEADER_ROUND_ROBIN): leader(v) is the round robin of spec §4.3 over the
 * committed set (and the previous set too while an update is undecided), a function of v alone.
 * With round-robin leaders a pipelined 3-chain needs four live leaders in a row, so one crashed
 * validator in four stops every commit.
 *
 * Active (HS_LEADER_ACTIVE): the leader of view v depends on v and on the certificate J the
 * view's message is built on (its basis: a Proposal's block.justify, a Nudge's justify).
 * Let B = J.block and S = the signers of B.justify, the PC of B's parent that B carries. S is
 * fixed by B's hash, so every replica that holds B reads the same S, and a receiver checks a
 * Proposal or Nudge against the basis the message itself carries. leader(v | J) = the round
 * robin of §4.3 restricted to S, with the leaders of the views that produced no certificate
 * this basis builds on (after B.justify's view but for J's, up to v - 1) excluded in turn,
 * until S is exhausted and exclusion starts over. A validator that stopped signing leaves S as soon as
 * certificates formed without it are carried; a chosen leader that fails is skipped in the
 * next view. Who leads never touches safety: voting rules alone guarantee it.
 *
 * The round robin is used instead whenever S cannot be read against the committed set: the
 * genesis basis, a Commit or Decide basis, a validator-set update not yet decided, a block
 * whose justify was signed by the previous set, or a block this replica does not hold.
 */
#include <stdlib.h>
#include <string.h>

#include "algo.h"
#include "bt.h"

/* Bound on the views of failed leaders a basis is walked through: cost stays O(64 n log p)
 * however old the basis, and the walk is the same on every replica. */
#define MAX_EXCLUSION_WALK 64

/* The signer flags of the PC that basis->block carries, if they index the committed set, and
 * that PC's view. *ok false: use the round robin. `active` has vss.committed.n entries. */
static hs_status basis_signers(const hs_core *c, const hs_pc *basis, bool *active,
                               uint64_t *parent_view, bool *ok) {
    *ok = false;
    if (hs_pc_is_genesis(basis) || !c->vss.update_decided) return HS_OK;
    if (basis->phase != HS_PHASE_GENERIC && basis->phase != HS_PHASE_PREPARE &&
        basis->phase != HS_PHASE_PRECOMMIT)
        return HS_OK;
    uint64_t h = 0;
    hs_status st = hs_bt_block_height(&c->rd, &basis->block, &h);
    if (st == HS_NOT_FOUND) return HS_OK;
    if (st != HS_OK) return st;
    hs_pc j = {0};
    st = hs_bt_block_justify(&c->rd, &basis->block, &j);
    if (st != HS_OK) return st == HS_NOT_FOUND ? HS_OK : st;
    /* j certifies B's parent, at height h - 1. The committed set signed it iff the parent is
     * above the last update, or is that update's block and j its Decide PC (spec §2.10). */
    const hs_vss *s = &c->vss;
    bool by_cvs = !hs_pc_is_genesis(&j) &&
                  (!s->has_update_height || h - 1 > s->update_height ||
                   (h - 1 == s->update_height && j.phase == HS_PHASE_DECIDE));
    if (by_cvs && j.sigs.n == s->committed.n) {
        bool any = false;
        for (uint32_t i = 0; i < j.sigs.n; i++) {
            active[i] = j.sigs.slots[i].present && s->committed.v[i].power > 0;
            any = any || active[i];
        }
        *ok = any;
        *parent_view = j.view;
    }
    hs_pc_free(&j);
    return HS_OK;
}

/* leader(view | basis) in the committed set. */
static hs_status cvs_leader(const hs_core *c, uint64_t view, const hs_pc *basis, hs_key *out) {
    const hs_validator_set *cvs = &c->vss.committed;
    if (c->cfg.leader_selection != HS_LEADER_ACTIVE || cvs->n == 0)
        return hs_vs_leader(cvs, view, out);
    bool *active = calloc(2 * (size_t)cvs->n, sizeof *active);
    if (!active) return HS_ERR_NOMEM;
    bool *cand = active + cvs->n; /* active minus the leaders excluded so far */
    bool ok = false;
    uint64_t parent_view = 0;
    hs_status st = basis_signers(c, basis, active, &parent_view, &ok);
    if (st != HS_OK || !ok) {
        free(active);
        return st != HS_OK ? st : hs_vs_leader(cvs, view, out);
    }
    memcpy(cand, active, cvs->n * sizeof *cand);
    uint32_t left = 0;
    for (uint32_t i = 0; i < cvs->n; i++) left += cand[i];

    /* The failed views: those after the PC the basis block carries, but for the basis's own
     * view (its leader proposed the basis block). A view before the basis's is walked with
     * the basis's signers, not those its leader was chosen from: the same validator in the
     * usual case, and excluding a live one only hands the view to the next. */
    uint64_t from = parent_view + 1;
    if (view > from && view - from > MAX_EXCLUSION_WALK) from = view - MAX_EXCLUSION_WALK;
    uint32_t pos = 0;
    for (uint64_t u = from; u < view; u++) {
        if (u == basis->view) continue;
        st = hs_vs_leader_among(cvs, u, cand, &pos);
        if (st != HS_OK) break;
        cand[pos] = false;
        if (--left == 0) { /* every signer failed once: start over */
            memcpy(cand, active, cvs->n * sizeof *cand);
            for (uint32_t i = 0; i < cvs->n; i++) left += cand[i];
        }
    }
    if (st == HS_OK) st = hs_vs_leader_among(cvs, view, cand, &pos);
    if (st == HS_OK) *out = cvs->v[pos].key;
    free(active);
    return st;
}

static bool same_key(const hs_key *a, const hs_key *b) {
    return memcmp(a->b, b->b, HS_KEY_LEN) == 0;
}

bool hs_leader_is_proposer(const hs_core *c, const hs_key *k, uint64_t view, const hs_pc *basis) {
    hs_key l;
    /* An empty or powerless set has no leader (spec §1.7): nobody proposes. A store error is
     * not a verdict on k, but the caller cannot act on it either: it refuses the message, and
     * the next write's failure halts the core. */
    if (cvs_leader(c, view, basis, &l) == HS_OK && same_key(&l, k)) return true;
    return !c->vss.update_decided && hs_vs_leader(&c->vss.previous, view, &l) == HS_OK &&
           same_key(&l, k);
}

hs_status hs_leader_new_view_recipients(const hs_core *c, uint64_t view, hs_key out[2],
                                        uint32_t *n) {
    *n = 0;
    hs_status st = cvs_leader(c, view, &c->highest_pc, &out[0]);
    if (st == HS_OK) (*n)++;
    else if (st != HS_ERR_STATE) return st;
    if (!c->vss.update_decided && hs_vs_leader(&c->vss.previous, view, &out[*n]) == HS_OK)
        (*n)++;
    return HS_OK;
}

/* spec §3.1 phase_vote_recipient: the leader of the next view, which will build on a PC of
 * this vote's block and phase. */
hs_status hs_leader_vote_recipient(const hs_core *c, const hs_phase_vote *v, hs_key *out) {
    if (!c->vss.update_decided && v->phase != HS_PHASE_DECIDE)
        return hs_vs_leader(&c->vss.previous, v->view + 1, out);
    hs_pc basis = {.chain_id = v->chain_id, .view = v->view, .block = v->block, .phase = v->phase};
    return cvs_leader(c, v->view + 1, &basis, out);
}
