/* core/safety.c - certificate verification (spec §2.10) and the safety rules (spec §3.3-3.4).
 *
 * Every predicate is a pure read of the block tree. A non-OK status means the store could not
 * answer (read error, corrupt bytes) and is never a verdict; the bool is set on HS_OK only.
 */
#include <assert.h>
#include <string.h>

#include "hotstuff/crypto.h"
#include "safety.h"

static bool hash_eq(const hs_hash *a, const hs_hash *b) {
    return memcmp(a->b, b->b, HS_HASH_LEN) == 0;
}

/* ---- spec §2.10 ---- */

bool hs_is_correctly_signed(hs_sig_cache *cache, const hs_sigset *sigs,
                            const hs_validator_set *vs, const uint8_t *msg, size_t len) {
    if (sigs->n != vs->n) return false;
    assert(sigs->n == 0 || sigs->slots != NULL);
    hs_u128 tally = 0;
    for (uint32_t i = 0; i < sigs->n; i++) {
        if (!sigs->slots[i].present) continue;
        /* One bad signature rejects the whole certificate, whatever the others weigh. */
        if (!hs_sig_cache_verify(cache, &vs->v[i].key, msg, len, &sigs->slots[i].sig))
            return false;
        tally += vs->v[i].power;
    }
    return tally >= hs_vs_quorum(vs);
}

static bool pc_signed_by(const hs_safety_ctx *c, const hs_pc *pc, const hs_validator_set *vs) {
    uint8_t msg[HS_VOTE_MSG_LEN];
    hs_phase_vote_bytes(pc->chain_id, pc->view, &pc->block, pc->phase, msg);
    return hs_is_correctly_signed(c->sigs, &pc->sigs, vs, msg, sizeof msg);
}

/* h == U: the PC certifies a block at the height of the latest committed VS-updating block. Which
 * set signs it depends on the phase and on that block's VS-updates status (spec §2.10 step 5). */
static hs_status pc_at_update_height(const hs_safety_ctx *c, const hs_pc *pc, bool *out) {
    hs_vsu_status status;
    hs_vs_updates pending = {0};
    hs_status st = hs_bt_vsu_status(c->r, &pc->block, &status, &pending);
    if (st != HS_OK) return st;
    *out = false;
    switch (pc->phase) {
    case HS_PHASE_DECIDE:
        if (status == HS_VSU_COMMITTED) {
            *out = pc_signed_by(c, pc, &c->vss->committed);
        } else if (status == HS_VSU_PENDING) {
            /* Decided by the set the pending update produces. */
            hs_validator_set next = {0};
            st = hs_vs_copy(&next, &c->vss->committed);
            if (st == HS_OK) st = hs_vs_apply(&next, &pending);
            if (st == HS_OK) *out = pc_signed_by(c, pc, &next);
            hs_vs_free(&next);
        }
        break;
    case HS_PHASE_PREPARE:
    case HS_PHASE_PRECOMMIT:
    case HS_PHASE_COMMIT:
        if (status == HS_VSU_COMMITTED) *out = pc_signed_by(c, pc, &c->vss->previous);
        else if (status == HS_VSU_PENDING) *out = pc_signed_by(c, pc, &c->vss->committed);
        break;
    default: /* Generic (or an out-of-range phase): never valid at the update height */
        break;
    }
    hs_vs_updates_free(&pending);
    return st;
}

hs_status hs_pc_is_correct(const hs_safety_ctx *c, const hs_pc *pc, bool *out) {
    assert(c && c->r && c->vss);
    *out = false;
    if (hs_pc_is_genesis(pc)) {
        *out = true;
        return HS_OK;
    }
    uint64_t h;
    hs_status st = hs_bt_block_height(c->r, &pc->block, &h);
    if (st != HS_OK && st != HS_NOT_FOUND) return st;
    if (st == HS_NOT_FOUND) {
        *out = pc_signed_by(c, pc, &c->vss->committed);
        return HS_OK;
    }
    if (!c->vss->has_update_height) {
        *out = pc_signed_by(c, pc, &c->vss->committed);
        return HS_OK;
    }
    uint64_t u = c->vss->update_height;
    if (h < u) *out = pc_signed_by(c, pc, &c->vss->previous);
    else if (h > u) *out = pc_signed_by(c, pc, &c->vss->committed);
    else return pc_at_update_height(c, pc, out);
    return HS_OK;
}

hs_status hs_tc_is_correct(const hs_safety_ctx *c, const hs_tc *tc, bool *out) {
    uint8_t msg[HS_TIMEOUT_MSG_LEN];
    hs_timeout_vote_bytes(tc->chain_id, tc->view, msg);
    /* The spec accepts the previous set's TCs only while the latest update is undecided
     * (§2.10). But a TC formed by the previous set while undecided stays in HIGHEST_TC, and is
     * what replicas hand to a peer that missed it; if the peer has decided meanwhile, it can
     * never verify it, and replicas split between epoch-change views for good (a stall the
     * simulator found). TCs only move views, never lock or commit anything, so the port
     * accepts either of the two latest sets. */
    *out = hs_is_correctly_signed(c->sigs, &tc->sigs, &c->vss->committed, msg, sizeof msg) ||
           hs_is_correctly_signed(c->sigs, &tc->sigs, &c->vss->previous, msg, sizeof msg);
    return HS_OK;
}

hs_status hs_block_is_correct(const hs_safety_ctx *c, const hs_block *b, bool *out) {
    *out = false;
    hs_hash h;
    hs_status st = hs_block_compute_hash(b, &h);
    if (st != HS_OK) return st;
    if (!hash_eq(&h, &b->hash)) return HS_OK;
    return hs_pc_is_correct(c, &b->justify, out);
}

/* ---- spec §3.3 ---- */

/* parent(x) = justify.block of stored block x; *has = false when x is not stored. */
static hs_status parent_of(const hs_kv_reader *r, const hs_hash *x, bool *has, hs_hash *out) {
    hs_pc j = {0};
    hs_status st = hs_bt_block_justify(r, x, &j);
    *has = st == HS_OK;
    if (st == HS_OK) *out = j.block;
    hs_pc_free(&j);
    return st == HS_NOT_FOUND ? HS_OK : st;
}

/* pc.block is the locked block, its child or its grandchild (only 3 levels are checked). */
static hs_status extends(const hs_kv_reader *r, const hs_pc *pc, const hs_hash *locked,
                         bool *out) {
    *out = false;
    hs_hash cur = pc->block;
    for (int depth = 0; depth < 3; depth++) {
        if (hash_eq(&cur, locked)) {
            *out = true;
            return HS_OK;
        }
        if (depth == 2) break;
        bool has;
        hs_status st = parent_of(r, &cur, &has, &cur);
        if (st != HS_OK || !has) return st;
    }
    return HS_OK;
}

hs_status hs_extends_locked(const hs_safety_ctx *c, const hs_pc *pc, bool *out) {
    *out = false;
    hs_pc lock = {0};
    hs_status st = hs_bt_locked_pc(c->r, &lock);
    if (st == HS_OK) st = extends(c->r, pc, &lock.block, out);
    hs_pc_free(&lock);
    return st;
}

/* Rule 3: the lock's liveness clause (higher view) or safety clause (extends the lock). */
static hs_status respects_lock(const hs_safety_ctx *c, const hs_pc *pc, bool *out) {
    *out = false;
    hs_pc lock = {0};
    hs_status st = hs_bt_locked_pc(c->r, &lock);
    if (st != HS_OK) return st;
    if (pc->view > lock.view) *out = true;
    else st = extends(c->r, pc, &lock.block, out);
    hs_pc_free(&lock);
    return st;
}

/* safe_pc, with rule 3 skipped when the caller has already established it. */
static hs_status safe_pc_impl(const hs_safety_ctx *c, const hs_pc *pc, bool lock_ok, bool *out) {
    *out = false;
    bool genesis = hs_pc_is_genesis(pc);
    /* 1. chain id */
    if (!genesis && pc->chain_id != c->chain_id) return HS_OK;
    /* 2. the certified block is known */
    if (!genesis) {
        bool known;
        hs_status st = hs_bt_contains(c->r, &pc->block, &known);
        if (st != HS_OK || !known) return st;
    }
    /* 3. the lock */
    hs_status st;
    if (!lock_ok) {
        bool ok;
        st = respects_lock(c, pc, &ok);
        if (st != HS_OK || !ok) return st;
    }
    /* 4. phased-mode phases only on VS-updating blocks, Generic only on the others. The genesis
     *    PC's block [0;32] has no status, so it passes as Generic. */
    hs_vsu_status status;
    st = hs_bt_vsu_status(c->r, &pc->block, &status, NULL);
    if (st != HS_OK) return st;
    if (pc->phase == HS_PHASE_GENERIC) *out = status == HS_VSU_NONE;
    else *out = status == HS_VSU_PENDING || status == HS_VSU_COMMITTED;
    return HS_OK;
}

hs_status hs_safe_pc(const hs_safety_ctx *c, const hs_pc *pc, bool *out) {
    return safe_pc_impl(c, pc, false, out);
}

/* Hardening allowed by spec §14.19: a block is one above its parent (0 on the genesis PC), and
 * never at UINT64_MAX, past which no block could follow and none could be committed. Without
 * it a Byzantine leader could stop commits for good with a bogus height. */
static hs_status height_follows_parent(const hs_safety_ctx *c, const hs_block *b, bool *out) {
    *out = false;
    if (hs_pc_is_genesis(&b->justify)) {
        *out = b->height == 0;
        return HS_OK;
    }
    uint64_t ph;
    hs_status st = hs_bt_block_height(c->r, &b->justify.block, &ph);
    if (st == HS_NOT_FOUND) return HS_OK; /* unknown parent: safe_pc rule 2 says no anyway */
    if (st != HS_OK) return st;
    *out = ph < UINT64_MAX - 1 && b->height == ph + 1;
    return HS_OK;
}

hs_status hs_safe_block_ignoring_lock(const hs_safety_ctx *c, const hs_block *b, bool *out) {
    *out = false;
    if (!hs_pc_is_block_justify(&b->justify)) return HS_OK;
    bool ok;
    hs_status st = height_follows_parent(c, b, &ok);
    if (st != HS_OK || !ok) return st;
    return safe_pc_impl(c, &b->justify, true, out);
}

hs_status hs_safe_block(const hs_safety_ctx *c, const hs_block *b, bool *out) {
    *out = false;
    if (!hs_pc_is_block_justify(&b->justify)) return HS_OK;
    bool ok;
    hs_status st = height_follows_parent(c, b, &ok);
    if (st != HS_OK || !ok) return st;
    /* A re-proposal of the locked block itself respects the lock: voting for the block we are
     * locked on can conflict with nothing. The spec (§14.13) evaluates only the block's old
     * justify, which neither extends the lock nor has a higher view, so every locked replica
     * refuses the re-proposal and the phased chain can never restart (a permanent stall the
     * simulator found). A deliberate extension, see README. */
    hs_pc lock = {0}, hp = {0};
    st = hs_bt_locked_pc(c->r, &lock);
    if (st == HS_OK) st = hs_bt_highest_pc(c->r, &hp);
    if (st != HS_OK) {
        hs_pc_free(&lock);
        return st;
    }
    /* Likewise a re-proposal of a block that our highest PC certifies in a phase of the phased
     * chain at a higher view than the lock: that certificate outranks the lock (safe_pc's
     * liveness clause), exactly as a Nudge carrying it would; only the consecutive-views rule
     * of nudges, which guards commits, keeps the chain from continuing without re-proposal. */
    bool lock_ok = hash_eq(&lock.block, &b->hash) ||
                   (hash_eq(&hp.block, &b->hash) && hs_pc_is_nudge_justify(&hp) &&
                    hp.view > lock.view);
    hs_pc_free(&lock);
    hs_pc_free(&hp);
    return safe_pc_impl(c, &b->justify, lock_ok, out);
}

hs_status hs_safe_nudge(const hs_safety_ctx *c, const hs_nudge *n, uint64_t cur_view, bool *out) {
    *out = false;
    const hs_pc *j = &n->justify;
    if (!hs_pc_is_nudge_justify(j) || n->chain_id != c->chain_id) return HS_OK;
    /* Consecutive views, except for a Commit justify. At view 0 there is no previous view
     * (spec §3.3, §14.11: the reference underflows). */
    bool consecutive = cur_view > 0 && j->view == cur_view - 1;
    if (j->phase != HS_PHASE_COMMIT && !consecutive) return HS_OK;
    return hs_safe_pc(c, j, out);
}

/* ---- spec §3.4 ---- */

hs_status hs_pc_to_lock(const hs_kv_reader *r, const hs_pc *justify, bool *has, hs_pc *out) {
    *has = false;
    if (hs_pc_is_genesis(justify)) return HS_OK;
    hs_pc lock = {0}, cand = {0};
    hs_status st = hs_bt_locked_pc(r, &lock);
    if (st != HS_OK) return st;
    bool some = false;
    switch (justify->phase) {
    case HS_PHASE_GENERIC: /* lock on the 2-chain: the certified block's own justify */
        st = hs_bt_block_justify(r, &justify->block, &cand);
        some = st == HS_OK;
        break;
    case HS_PHASE_PRECOMMIT:
        st = hs_pc_copy(&cand, justify);
        some = st == HS_OK;
        break;
    case HS_PHASE_COMMIT:
    case HS_PHASE_DECIDE: /* Block Sync may only ever show us these (spec §13) */
        if (!hash_eq(&lock.block, &justify->block)) {
            st = hs_pc_copy(&cand, justify);
            some = st == HS_OK;
        }
        break;
    default: /* Prepare */
        break;
    }
    /* The lock only moves to a higher view. The spec has no such check (§3.4: only "not equal
     * to the current lock"), so a Generic PC of a higher view whose block's own justify is
     * older than the lock moves the lock BACK to that older PC; with the re-proposal rule of
     * hs_safe_block this let a replica vote for a sibling of a block it had committed (found by
     * the regression tests). Monotonic locking is chained HotStuff's own rule; the liveness
     * clause of safe_pc (a higher view than the lock) still lets a replica switch branches. */
    if (st == HS_OK && some && cand.view > lock.view) {
        *out = cand;
        cand = (hs_pc){0};
        *has = true;
    }
    hs_pc_free(&cand);
    hs_pc_free(&lock);
    return st;
}

/* Is the block at `height` above the highest committed one (or nothing committed yet)? */
static hs_status above_committed(const hs_kv_reader *r, uint64_t height, bool *out) {
    uint64_t hc;
    hs_status st = hs_bt_highest_committed_height(r, &hc);
    if (st == HS_NOT_FOUND) {
        *out = true;
        return HS_OK;
    }
    *out = st == HS_OK && height > hc;
    return st;
}

/* a == b + 1 without wrapping. */
static bool next_view(uint64_t a, uint64_t b) {
    return b < UINT64_MAX && a == b + 1;
}

/* Generic: commit the 3-chain head b0 when the three PCs have consecutive views. */
static hs_status generic_commit(const hs_kv_reader *r, const hs_pc *justify, bool *has,
                                hs_hash *out) {
    hs_pc p = {0}, g = {0};
    hs_status st = hs_bt_block_justify(r, &justify->block, &p);
    if (st != HS_OK || hs_pc_is_genesis(&p)) goto done;
    st = hs_bt_block_justify(r, &p.block, &g);
    if (st != HS_OK || hs_pc_is_genesis(&g)) goto done;
    if (!next_view(justify->view, p.view) || !next_view(p.view, g.view)) goto done;
    uint64_t height;
    st = hs_bt_block_height(r, &g.block, &height);
    bool above = false;
    if (st == HS_OK) st = above_committed(r, height, &above);
    if (st == HS_OK && above) {
        *out = g.block;
        *has = true;
    }
done:
    hs_pc_free(&p);
    hs_pc_free(&g);
    return st;
}

hs_status hs_block_to_commit(const hs_kv_reader *r, const hs_pc *justify, bool *has,
                             hs_hash *out) {
    *has = false;
    if (hs_pc_is_genesis(justify)) return HS_OK;
    switch (justify->phase) {
    case HS_PHASE_GENERIC:
        return generic_commit(r, justify, has, out);
    case HS_PHASE_COMMIT:
    case HS_PHASE_DECIDE: {
        uint64_t height;
        bool above = false;
        hs_status st = hs_bt_block_height(r, &justify->block, &height);
        if (st == HS_OK) st = above_committed(r, height, &above);
        if (st == HS_OK && above) {
            *out = justify->block;
            *has = true;
        }
        return st;
    }
    default: /* Prepare, Precommit */
        return HS_OK;
    }
}

hs_status hs_repropose_block(const hs_kv_reader *r, uint64_t cur_view, bool *has, hs_hash *out) {
    *has = false;
    hs_pc h = {0};
    hs_status st = hs_bt_highest_pc(r, &h);
    if (st != HS_OK) return st;
    /* An interrupted phased chain restarts from the VS-updating block (spec §3.4, §13). */
    bool phased = h.phase == HS_PHASE_PREPARE || h.phase == HS_PHASE_PRECOMMIT;
    if (phased && !next_view(cur_view, h.view)) {
        *out = h.block;
        *has = true;
    }
    hs_pc_free(&h);
    return st;
}
