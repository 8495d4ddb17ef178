/* tests/unit/test_safety_ext.c - regression tests for the port's deliberate extensions of the
 * safety rules (core/safety.c), found by the deterministic simulator:
 *
 *   (a) hs_safe_block: a block's height is its parent's + 1 (0 on the genesis PC) and never
 *       UINT64_MAX (spec §14.19 hardening);
 *   (b) hs_safe_block: a re-proposal of the LOCKED block itself respects the lock, although its
 *       old justify neither extends the lock nor has a higher view (spec §14.13 stall);
 *   (c) hs_pc_is_correct: a Decide PC for a block whose VS-updates status is Pending, above the
 *       update height or with no update height, is checked against the committed set, as the
 *       spec says - NOT against the set the block's own update would produce. A relaxation to
 *       the latter was tried and reverted: it let a Byzantine leader certify its own block (see
 *       test_core.c). Replicas that missed the Commit PC get it from Block Sync instead
 *       (sync_server.c stop_at_vs_update).
 *
 * Real Ed25519 certificates over a tree in the in-memory store. */
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "cu.h"
#include "hotstuff/crypto.h"
#include "hotstuff/messages.h"
#include "hotstuff/store.h"
#include "safety.h"
#include "safety_fx.h"
#include "samples.h"

#define NKEYS 6
#define CHAIN 11

static hs_keypair kps[NKEYS];
static hs_validator_set vs1; /* kps[0..3], power 1: the committed set */
static hs_validator_set vs2; /* vs1 + kps[4] power 1: vs1 with V's pending update applied */

static void keys_setup(void) {
    static bool done;
    if (done) return;
    sample_keys(kps, NKEYS, 0x5A);
    for (int i = 0; i < 4; i++) CU_ASSERT_FATAL(hs_vs_put(&vs1, &kps[i].public_key, 1) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_copy(&vs2, &vs1) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_put(&vs2, &kps[4].public_key, 1) == HS_OK);
    done = true;
}

#define ALL 0xFFu

/* A PC over (CHAIN, view, block, phase) with the slots of `vs` whose bit is set in `who`. */
static void make_pc_by(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase,
                       const hs_validator_set *vs, unsigned who) {
    signed_pc(pc, CHAIN, view, block, phase, vs, who, kps, NKEYS);
}

static void make_pc(hs_pc *pc, uint64_t view, const hs_hash *block, hs_phase phase) {
    make_pc_by(pc, view, block, phase, &vs1, ALL);
}

static void make_block(hs_block *b, uint64_t height, const hs_pc *justify, uint8_t tag) {
    safety_fx_block(b, height, justify, tag);
}

/* The tree A0 - A1 - A2 (Generic PCs by VS1, views 1..3), V (VS-updating:
 * Pending(+kps[4] power 1), justify PC(A0, 1)) and F (plain sibling of V). Nothing is committed;
 * the lock is the genesis PC. The fixture itself is shared with test_safety.c (safety_fx.h). */
typedef safety_fx fx;

static void fx_open(fx *x) {
    keys_setup();
    safety_fx_open(x, &(safety_fx_params){.chain_id = CHAIN, .committed = &vs1, .n_a = 3,
                                          .vsu_key = &kps[4].public_key, .vsu_power = 1,
                                          .make_pc = make_pc});
}

static void fx_close(fx *x) { safety_fx_close(x); }

static bool safe_block(fx *x, const hs_block *b) {
    bool ok = true;
    CU_ASSERT_FATAL(hs_safe_block(&x->ctx, b, &ok) == HS_OK);
    return ok;
}

static bool safe_block_ignoring_lock(fx *x, const hs_block *b) {
    bool ok = true;
    CU_ASSERT_FATAL(hs_safe_block_ignoring_lock(&x->ctx, b, &ok) == HS_OK);
    return ok;
}

static bool pc_ok(fx *x, const hs_pc *pc) {
    bool ok = false;
    CU_ASSERT_FATAL(hs_pc_is_correct(&x->ctx, pc, &ok) == HS_OK);
    return ok;
}

/* Applies `pc` as update(pc) would after the safety gate. */
static void apply(fx *x, const hs_pc *pc) {
    hs_bt_update_result res = {0};
    CU_ASSERT_FATAL(hs_bt_update(&x->kv, pc, &res) == HS_OK);
    hs_bt_update_result_free(&res);
}

/* ---- (a) heights ---- */

/* Guards fix 2(a), core/safety.c height_follows_parent: without it hs_safe_block evaluates only
 * the justify, so every wrong height below passes. */
static void test_block_height_must_follow_parent(void) {
    fx x;
    fx_open(&x);
    hs_pc g = {0};
    hs_pc_genesis(&g);
    hs_block b;

    /* On the genesis PC: height 0 only. */
    for (uint64_t h = 0; h < 3; h++) {
        make_block(&b, h, &g, 0x70);
        CU_ASSERT(safe_block(&x, &b) == (h == 0));
        CU_ASSERT(safe_block_ignoring_lock(&x, &b) == (h == 0));
        hs_block_free(&b);
    }
    make_block(&b, UINT64_MAX, &g, 0x70);
    CU_ASSERT(!safe_block(&x, &b));
    hs_block_free(&b);

    /* On PC(A1) (A1 at height 1): height 2 only. */
    for (uint64_t h = 0; h < 5; h++) {
        make_block(&b, h, &x.pc[1], 0x71);
        CU_ASSERT(safe_block(&x, &b) == (h == 2));
        CU_ASSERT(safe_block_ignoring_lock(&x, &b) == (h == 2));
        hs_block_free(&b);
    }
    make_block(&b, UINT64_MAX, &x.pc[1], 0x71);
    CU_ASSERT(!safe_block(&x, &b));
    hs_block_free(&b);

    /* The end of the height space: a block may sit at UINT64_MAX - 1, none at UINT64_MAX
     * (nothing could follow it). The parents are stored as they are: insert checks nothing. */
    hs_block p2, p1;
    hs_pc pc2, pc1;
    make_block(&p2, UINT64_MAX - 2, &x.pc[2], 0x72);
    CU_ASSERT_FATAL(hs_bt_insert(&x.kv, &p2, NULL, NULL) == HS_OK);
    make_pc(&pc2, 10, &p2.hash, HS_PHASE_GENERIC);
    make_block(&p1, UINT64_MAX - 1, &pc2, 0x73);
    CU_ASSERT(safe_block(&x, &p1)); /* MAX - 2 -> MAX - 1: fine */
    CU_ASSERT(safe_block_ignoring_lock(&x, &p1));
    CU_ASSERT_FATAL(hs_bt_insert(&x.kv, &p1, NULL, NULL) == HS_OK);
    make_pc(&pc1, 11, &p1.hash, HS_PHASE_GENERIC);
    make_block(&b, UINT64_MAX, &pc1, 0x74);
    CU_ASSERT(!safe_block(&x, &b)); /* MAX - 1 -> MAX: refused */
    CU_ASSERT(!safe_block_ignoring_lock(&x, &b));
    hs_block_free(&b);
    make_block(&b, 0, &pc1, 0x75); /* the wrapped successor height: refused */
    CU_ASSERT(!safe_block(&x, &b));
    hs_block_free(&b);

    hs_pc_free(&pc1);
    hs_pc_free(&pc2);
    hs_block_free(&p1);
    hs_block_free(&p2);
    hs_pc_free(&g);
    fx_close(&x);
}

/* ---- (b) re-proposal of the locked block ---- */

/* Guards fix 2(b), core/safety.c hs_safe_block (is_locked_block): without it a replica locked on
 * V's Precommit PC refuses V's re-proposal, because V.justify = PC(A0, 1) neither extends V nor
 * has a view above the lock's (spec §14.13). */
static void test_reproposal_of_locked_block_respects_lock(void) {
    fx x;
    fx_open(&x);
    hs_pc prepare, precommit, commit, lock = {0};
    make_pc(&prepare, 6, &x.v.hash, HS_PHASE_PREPARE);
    make_pc(&precommit, 7, &x.v.hash, HS_PHASE_PRECOMMIT);
    make_pc(&commit, 8, &x.v.hash, HS_PHASE_COMMIT);

    /* Before any lock on V, its re-proposal is safe by the ordinary rule. */
    CU_ASSERT(safe_block(&x, &x.v));

    apply(&x, &prepare);
    apply(&x, &precommit); /* lock := Precommit PC(V, 7) */
    CU_ASSERT_FATAL(hs_bt_locked_pc(&x.r, &lock) == HS_OK);
    CU_ASSERT_FATAL(hs_pc_equal(&lock, &precommit));
    hs_pc_free(&lock);

    /* The lock's own rule refuses V.justify... */
    bool ok = true;
    CU_ASSERT(hs_safe_pc(&x.ctx, &x.v.justify, &ok) == HS_OK && !ok);
    /* ...but the re-proposal of the locked block V itself is safe. */
    CU_ASSERT(safe_block(&x, &x.v));
    /* A sibling with the very same justify is still refused: the lock still binds. */
    CU_ASSERT(!safe_block(&x, &x.f));
    /* So is a fresh block on A0 that is not the locked one. */
    hs_block other;
    make_block(&other, 1, &x.pc[0], 0x77);
    CU_ASSERT(!safe_block(&x, &other));
    hs_block_free(&other);
    /* And the chain A1 -> A2: A2's justify PC(A1, 2) neither extends V nor outranks the lock. */
    CU_ASSERT(!safe_block(&x, &x.a[2]));

    /* Locked on V's Commit PC (a replica that committed V and never saw the Precommit PC):
     * the re-proposal of V is still safe. */
    fx y;
    fx_open(&y);
    apply(&y, &commit); /* lock := Commit PC(V, 8), V committed */
    CU_ASSERT_FATAL(hs_bt_locked_pc(&y.r, &lock) == HS_OK);
    CU_ASSERT(hs_pc_equal(&lock, &commit));
    hs_pc_free(&lock);
    CU_ASSERT(safe_block(&y, &y.v));
    fx_close(&y);

    hs_pc_free(&prepare);
    hs_pc_free(&precommit);
    hs_pc_free(&commit);
    fx_close(&x);
}

/* ---- (c) Decide PCs of Pending blocks ---- */

/* A Decide PC for V, a block whose validator-set update is still Pending here, above the
 * update height, is checked against the committed set (spec §2.10), NOT against the set V's
 * own update would produce: V's proposer controls that update, and could otherwise certify V
 * with a key it adds itself (a relaxation tried once, reverted: see the regression test
 * test_self_certified_decide_pc in test_core.c). */
static void test_decide_pc_of_pending_block_uses_committed_set(void) {
    fx x;
    fx_open(&x);
    hs_pc pc;
    /* No update height (nothing ever committed), then above the update height. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            x.vss.has_update_height = true;
            x.vss.update_height = 0;
        }
        make_pc_by(&pc, 9, &x.v.hash, HS_PHASE_DECIDE, &vs2, ALL);
        CU_ASSERT(!pc_ok(&x, &pc)); /* the set V's update would produce does not count */
        hs_pc_free(&pc);
        make_pc_by(&pc, 9, &x.v.hash, HS_PHASE_DECIDE, &vs1, ALL);
        CU_ASSERT(pc_ok(&x, &pc)); /* the committed set does */
        hs_pc_free(&pc);
        for (hs_phase ph = HS_PHASE_PREPARE; ph <= HS_PHASE_COMMIT; ph++) {
            make_pc_by(&pc, 9, &x.v.hash, ph, &vs1, ALL);
            CU_ASSERT(pc_ok(&x, &pc));
            hs_pc_free(&pc);
        }
    }
    fx_close(&x);
}

/* (b') A re-proposal of a block that our highest PC certifies (Prepare) at a higher view than
 * the lock respects the lock, though the block's old justify neither extends the lock nor
 * outranks it (simulator seed 2313: replicas locked elsewhere refused every re-proposal of the
 * certified block, and the phased chain never restarted). */
static void test_reproposal_of_certified_block_respects_lock(void) {
    fx x;
    fx_open(&x);
    apply(&x, &x.pc[1]); /* certifies A1 */
    apply(&x, &x.pc[2]); /* certifies A2: lock := PC(A1, view 2) */
    hs_pc lock = {0};
    CU_ASSERT_FATAL(hs_bt_locked_pc(&x.r, &lock) == HS_OK);
    CU_ASSERT(lock.view == 2 && memcmp(lock.block.b, x.a[1].hash.b, 32) == 0);
    /* V hangs off A0 with PC(A0, view 1): refused by the lock. */
    CU_ASSERT(!safe_block(&x, &x.v));
    /* A Prepare PC for V at view 9 becomes our highest PC: V's re-proposal is now safe... */
    hs_pc prepare;
    make_pc(&prepare, 9, &x.v.hash, HS_PHASE_PREPARE);
    apply(&x, &prepare);
    CU_ASSERT(safe_block(&x, &x.v));
    /* ...but not its uncertified sibling with the same justify. */
    CU_ASSERT(!safe_block(&x, &x.f));
    hs_pc_free(&prepare);
    /* A certificate of a lower view than the lock does not count. */
    fx y;
    fx_open(&y);
    apply(&y, &y.pc[1]);
    apply(&y, &y.pc[2]);
    hs_pc low;
    make_pc(&low, 1, &y.v.hash, HS_PHASE_PREPARE);
    hs_bt_update_result res = {0};
    CU_ASSERT_FATAL(hs_bt_update(&y.kv, &low, &res) == HS_OK); /* not the highest PC: view 1 */
    hs_bt_update_result_free(&res);
    CU_ASSERT(!safe_block(&y, &y.v));
    hs_pc_free(&low);
    fx_close(&y);
    hs_pc_free(&lock);
    fx_close(&x);
}

static const cu_test tests[] = {
    {"2b': the re-proposal of a block our highest PC certifies above the lock is safe",
     test_reproposal_of_certified_block_respects_lock},
    {"2a: a block's height is its parent's + 1, never UINT64_MAX",
     test_block_height_must_follow_parent},
    {"2b: the re-proposal of the locked block respects the lock",
     test_reproposal_of_locked_block_respects_lock},
    {"2c: a Pending block's Decide PC is checked against the committed set",
     test_decide_pc_of_pending_block_uses_committed_set},
    {NULL, NULL}};

int main(void) { return cu_run("safety_ext", tests); }
