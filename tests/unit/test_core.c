/* tests/unit/test_core.c - regression tests, at the level of the deterministic core
 * (hotstuff/core.h), for fixes the simulator motivated and that deviate from the spec on purpose:
 *
 *   3. block_tree.c hs_bt_insert (+ hotstuff.c on_proposal): a known block is not re-inserted, so
 *      a re-proposal of a committed VS-updating block leaves its status Committed;
 *   5. sync_client.c: (a) the request cursor past blocks that are all known; (b) syncing the
 *      winning branch while locked on a losing one;
 *   6. algorithm.c start_up_view;
 *   7. pacemaker.c hs_pacemaker_on_stale_timeout_vote;
 *   8. pacemaker.c: views stop at UINT64_MAX - 1.
 *   9. (a) sync_server.c stop_at_vs_update + sync_client.c on_response (the response's highest
 *      PC applied first): syncing across a committed validator-set update; (b) sync_client.c
 *      apply_advertised_pc; (c) sync_client.c on_advertise: an advertised PC for a missing
 *      block triggers a sync, and a replica's own AdvertiseBlock is ignored; (d) sync_client.c
 *      sync_now: any server when none is ahead; (e) safety.c hs_tc_is_correct, at core level.
 *
 * The harness is tests/common/core_world.h.
 *
 * Two more tests guard against what a first version of fixes 2b and 2c let through: the lock
 * moving back on a re-proposal (fixed by monotonic locking, safety.c hs_pc_to_lock) and a
 * Decide PC certified by the pending update's own new validator (2c was reverted).
 *
 * Longer than 800 lines on purpose: one regression scenario per fix, each a short story in
 * views; the list above is their index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "core_world.h"
#include "cu.h"
#include "hotstuff/log.h"
#include "safety.h"

/* ======================================================================================== */
/* 3. A re-proposal of a committed VS-updating block                                          */
/* ======================================================================================== */

static bool vs_update_committed_on_0(world *w, void *ctx) {
    (void)ctx;
    return w->nodes[0].vs_updated;
}

/* The scenario of fix 3. Four replicas commit a few blocks, then VS1 -> VS2 = VS1 + kps[4]
 * (power 1) through a block B of node 1's; kps[4] runs no replica, so VS2's quorum, 4 of 5, is
 * the four replicas. Stops the moment node 0 has committed B (applied its Commit PC) and not yet
 * its Decide PC. Node 0 is then cut off and moved by a TC to a fresh view X + 1, where a proposer
 * of X + 1 - a lagging leader whose highest PC was B's Precommit PC - may re-propose B.
 * Returns X + 1; *bh is B, *b a copy of it, *vss node 0's state. */
static uint64_t vs_update_then_isolate(world *w, hs_hash *bh, hs_block *b, hs_vss *vss) {
    world_open(w, 4, 4);
    for (int i = 0; i < 4; i++) start_core(w, i);
    run_for(w, 5000);
    CU_ASSERT_FATAL(w->nodes[0].commits >= 2);
    CU_ASSERT_FATAL(napp_submit_set_validator(w->nodes[1].app, &kps[4].public_key, 1));

    CU_ASSERT_FATAL(run_until(w, w->now + 30000, vs_update_committed_on_0, NULL));
    *bh = w->nodes[0].vs_update_block;
    CU_ASSERT_FATAL(vsu_status(w, 0, bh) == HS_VSU_COMMITTED);
    *vss = stored_vss(w, 0);
    CU_ASSERT_FATAL(!vss->update_decided); /* committed, not yet decided */
    CU_ASSERT_FATAL(vss->committed.n == 5 && hs_vs_contains(&vss->committed, &kps[4].public_key));
    hs_pc lock = stored_pc(w, 0, true);
    CU_ASSERT(memcmp(lock.block.b, bh->b, HS_HASH_LEN) == 0); /* locked on B */
    hs_pc_free(&lock);

    w->nodes[0].cut = true;
    q_clear(w);
    uint64_t x = hs_core_view(w->nodes[0].core);
    x += (4 - x % 4) % 4; /* the next epoch-change view */
    hs_msg m = advance_view_tc(x);
    inject(w, 0, 1, &m);
    CU_ASSERT_FATAL(hs_core_view(w->nodes[0].core) == x + 1);
    q_clear(w);
    hs_kv_reader r0 = rd(w, 0);
    CU_ASSERT_FATAL(hs_bt_block(&r0, bh, b) == HS_OK);
    return x + 1;
}

/* Guards fix 3 (core/block_tree.c hs_bt_insert: a known block is not written again; and the same
 * guard in core/hotstuff.c on_proposal, which no longer re-inserts a known block). The reference
 * re-inserts a re-proposed block, which after its commit turns its VS status from Committed back
 * to Pending: its phase certificates are then checked against the wrong validator set. Both
 * guards must be reverted to see this test fail (either alone suffices). It also relies on fix
 * 2b: without it node 0, locked on B, refuses the re-proposal outright. */
static void test_reproposal_of_committed_vs_block(void) {
    world w;
    hs_hash bh;
    hs_block b = {0};
    hs_vss vss = {0};
    uint64_t v = vs_update_then_isolate(&w, &bh, &b, &vss);
    hs_msg m = proposal_msg(v, &b);
    inject(&w, 0, leader_of(&vss.committed, v), &m);
    /* It was accepted: node 0 voted Prepare for B in view v. */
    const qmsg *vote = NULL;
    CU_ASSERT(q_count(&w, 0, -1, HS_MSG_PHASE_VOTE, &vote) == 1);
    if (vote) {
        CU_ASSERT(vote->m.u.phase_vote.view == v);
        CU_ASSERT(vote->m.u.phase_vote.phase == HS_PHASE_PREPARE);
        CU_ASSERT(memcmp(vote->m.u.phase_vote.block.b, bh.b, HS_HASH_LEN) == 0);
    }

    /* 1. B's status is still Committed. */
    CU_ASSERT(vsu_status(&w, 0, &bh) == HS_VSU_COMMITTED);
    hs_vss_free(&vss);
    vss = stored_vss(&w, 0);
    CU_ASSERT(vss.committed.n == 5 && vss.previous.n == 4 && !vss.update_decided);

    /* 2. B's Commit PC, signed by VS1, still verifies (it is checked against the previous set
     *    only while B's status is Committed). */
    hs_pc commit_pc;
    make_pc(&commit_pc, v - 2, &bh, HS_PHASE_COMMIT, &vs1, 0xF);
    hs_kv_reader r0 = rd(&w, 0);
    hs_safety_ctx sc = {.r = &r0, .chain_id = CHAIN, .vss = &vss};
    bool ok = false;
    CU_ASSERT(hs_pc_is_correct(&sc, &commit_pc, &ok) == HS_OK && ok);
    hs_pc_free(&commit_pc);

    /* 3. A Decide PC for B, signed by VS2 (the four replicas: 4 of 5), is accepted: it ends the
     *    transition. */
    int k4 = (int)hs_vs_find(&vss.committed, &kps[4].public_key);
    CU_ASSERT_FATAL(k4 >= 0);
    hs_msg nv = {.type = HS_MSG_NEW_VIEW};
    nv.u.new_view.chain_id = CHAIN;
    nv.u.new_view.view = v;
    make_pc(&nv.u.new_view.highest_pc, v, &bh, HS_PHASE_DECIDE, &vss.committed,
            0x1Fu & ~(1u << k4));
    inject(&w, 0, 2, &nv);
    hs_vss_free(&vss);
    vss = stored_vss(&w, 0);
    CU_ASSERT(vss.update_decided);
    CU_ASSERT(vsu_status(&w, 0, &bh) == HS_VSU_COMMITTED);
    CU_ASSERT(highest_pc_view(&w, 0) == v);

    hs_vss_free(&vss);
    hs_block_free(&b);
    world_close(&w);
}

/* Accepting the re-proposal of the locked block B (fix 2b) applies B's old justify,
 * PC(parent(B)), whose pc_to_lock is the PC of B's grandparent. Without monotonic locking the
 * lock moved BACK, off B, and a sibling of the committed B was then safe, inserted and voted
 * for. */
static void test_lock_never_moves_back_on_reproposal(void) {
    world w;
    hs_hash bh;
    hs_block b = {0};
    hs_vss vss = {0};
    uint64_t v = vs_update_then_isolate(&w, &bh, &b, &vss);
    hs_pc before = stored_pc(&w, 0, true);
    hs_msg m = proposal_msg(v, &b);
    inject(&w, 0, leader_of(&vss.committed, v), &m);
    hs_pc after = stored_pc(&w, 0, true);
    CU_ASSERT(after.view >= before.view);
    CU_ASSERT(memcmp(after.block.b, bh.b, HS_HASH_LEN) == 0);
    hs_pc_free(&before);
    hs_pc_free(&after);

    m = advance_view_tc(v + 3); /* to a fresh view v + 4 */
    inject(&w, 0, 1, &m);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == v + 4);
    q_clear(&w);
    hs_block sib;
    make_block(&sib, b.height, &b.justify, 7);
    m = proposal_msg(v + 4, &sib);
    inject(&w, 0, leader_of(&vss.committed, v + 4), &m);
    CU_ASSERT(!has_block(&w, 0, &sib.hash));
    CU_ASSERT(q_count(&w, 0, -1, HS_MSG_PHASE_VOTE, NULL) == 0);
    hs_block_free(&sib);
    hs_vss_free(&vss);
    hs_block_free(&b);
    world_close(&w);
}

/* Had a Decide PC for a Pending block been verified against the set the block's own update
 * produces (a relaxation of spec §2.10 tried once and reverted), a single Byzantine leader could
 * propose V with SetValidator(kps[4], 100), sign V's Decide PC with kps[4] alone (100 of 104: a
 * quorum of that set), and every honest replica that inserted V would commit it and hand the
 * validator set to kps[4] - with no Commit quorum of VS1 ever formed. */
static void test_self_certified_decide_pc(void) {
    world w;
    world_open(&w, 5, 4);
    start_core(&w, 0);
    hs_msg m = advance_view_tc(0);
    inject(&w, 0, 1, &m);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == 1);
    int byz = leader_of(&vs1, 1);
    hs_pc g = {0};
    hs_pc_genesis(&g);
    hs_block v = {.height = 0};
    CU_ASSERT_FATAL(hs_pc_copy(&v.justify, &g) == HS_OK);
    uint8_t body[4 + 1 + HS_KEY_LEN + 8] = {1, 0, 0, 0, NAPP_SET_VALIDATOR};
    memcpy(body + 5, kps[4].public_key.b, HS_KEY_LEN);
    body[5 + HS_KEY_LEN] = 100;
    v.data.items = calloc(1, sizeof *v.data.items);
    CU_ASSERT_FATAL(v.data.items != NULL);
    v.data.n = 1;
    CU_ASSERT_FATAL(hs_bytes_set(&v.data.items[0], body, sizeof body) == HS_OK);
    hs_sha256(body, sizeof body, &v.data_hash);
    CU_ASSERT_FATAL(hs_block_compute_hash(&v, &v.hash) == HS_OK);
    m = proposal_msg(1, &v);
    inject(&w, 0, byz, &m);
    CU_ASSERT_FATAL(vsu_status(&w, 0, &v.hash) == HS_VSU_PENDING);

    hs_validator_set next = {0};
    CU_ASSERT_FATAL(hs_vs_copy(&next, &vs1) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_put(&next, &kps[4].public_key, 100) == HS_OK);
    int k4 = (int)hs_vs_find(&next, &kps[4].public_key);
    hs_msg nv = {.type = HS_MSG_NEW_VIEW};
    nv.u.new_view.chain_id = CHAIN;
    nv.u.new_view.view = 1;
    make_pc(&nv.u.new_view.highest_pc, 1000, &v.hash, HS_PHASE_DECIDE, &next, 1u << k4);
    inject(&w, 0, byz, &nv);
    uint64_t h;
    CU_ASSERT(!committed_height(&w, 0, &h));
    CU_ASSERT(w.nodes[0].commits == 0);
    hs_vs_free(&next);
    hs_block_free(&v);
    hs_pc_free(&g);
    world_close(&w);
}

/* ======================================================================================== */
/* 5. Block Sync                                                                              */
/* ======================================================================================== */

/* A world of a core (node 0, the client) and a sync server with no core (node 1, a validator
 * that advertises every 500 ms). */
static void sync_world_open(world *w, uint32_t limit) {
    world_open(w, 2, 4);
    w->tmpl.block_sync_request_limit = limit;
    w->tmpl.block_sync_server_advertise_time_ms = 500;
    w->tmpl.block_sync_response_timeout_ms = 1000;
}

/* Guards fix 5a (core/sync_client.c hs_sync_client_on_response: the cursor). Node 0 holds
 * B0..B3, uncommitted, at least `limit` (3) of them; the server holds B0..B9, also uncommitted
 * (their PCs have non-consecutive views). Every request from the committed height returns B0..B2,
 * all known: the spec (§5.4 step 4) ends the sync there, every time, and node 0 never gets past
 * them. With the cursor it asks again from above them. */
static void test_sync_past_known_uncommitted_blocks(void) {
    world w;
    sync_world_open(&w, 3);
    enum { N = 10, K = 4 };
    hs_block b[N];
    hs_pc pc[N];
    hs_pc g = {0};
    hs_pc_genesis(&g);
    for (int i = 0; i < N; i++) {
        make_block(&b[i], (uint64_t)i, i ? &pc[i - 1] : &g, (uint32_t)i);
        make_pc(&pc[i], 2 * (uint64_t)i + 1, &b[i].hash, HS_PHASE_GENERIC, &vs1, 0xF);
        store_add(&w.nodes[1].kv, &b[i]);
        if (i < K) store_add(&w.nodes[0].kv, &b[i]);
    }
    store_apply(&w.nodes[1].kv, &pc[N - 1]);
    store_apply(&w.nodes[0].kv, &pc[K - 1]);
    uint64_t h;
    CU_ASSERT_FATAL(!committed_height(&w, 0, &h) && !committed_height(&w, 1, &h));

    start_core(&w, 0);
    start_server(&w, 1);
    run_for(&w, 10000);

    CU_ASSERT(w.nodes[0].start_syncs >= 1);
    for (int i = 0; i < N; i++) CU_ASSERT(has_block(&w, 0, &b[i].hash));
    CU_ASSERT(highest_pc_view(&w, 0) == pc[N - 1].view);
    CU_ASSERT(!hs_core_is_syncing(w.nodes[0].core));

    for (int i = 0; i < N; i++) {
        hs_block_free(&b[i]);
        hs_pc_free(&pc[i]);
    }
    world_close(&w);
}

/* Guards fix 5b (core/sync_client.c response_outranks_lock / sync_block, and
 * core/safety.c hs_safe_block_ignoring_lock). A real fork:
 *
 *   G0 ─ L1 ─ L2        PC(G0, 1), PC(L1, 2), PC(L2, 3): node 0 saw PC(L2, 3), so it is locked
 *    │                  on PC(L1, 2) (and committed G0);
 *    └── W1 ─ W2 ─ W3   PC(W1, 5), PC(W2, 6), PC(W3, 7): the others, locked on PC(G0, 1),
 *                       built the winning branch and committed W1.
 *
 * W1's justify, PC(G0, 1), neither extends node 0's lock nor has a higher view, so the spec's
 * safe_block refuses W1, node 0 blacklists the server and can never switch. With the fix, since
 * the response's highest PC (view 7) outranks the lock, W1 is inserted without applying its
 * justify, and the rest of the branch follows through the ordinary rules. */
static void test_sync_winning_branch_while_locked_on_losing_one(void) {
    world w;
    sync_world_open(&w, 10);
    hs_pc g = {0}, pg0, pl1, pl2, pw1, pw2, pw3;
    hs_pc_genesis(&g);
    hs_block g0, l1, l2, w1, w2, w3;
    make_block(&g0, 0, &g, 0);
    make_pc(&pg0, 1, &g0.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&l1, 1, &pg0, 1);
    make_pc(&pl1, 2, &l1.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&l2, 2, &pl1, 1);
    make_pc(&pl2, 3, &l2.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&w1, 1, &pg0, 2); /* a sibling of L1 */
    make_pc(&pw1, 5, &w1.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&w2, 2, &pw1, 2);
    make_pc(&pw2, 6, &w2.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&w3, 3, &pw2, 2);
    make_pc(&pw3, 7, &w3.hash, HS_PHASE_GENERIC, &vs1, 0xF);

    const hs_kv_store *c = &w.nodes[0].kv, *s = &w.nodes[1].kv;
    store_add(c, &g0);
    store_add(c, &l1);
    store_add(c, &l2);
    store_apply(c, &pl2);
    hs_pc lock = stored_pc(&w, 0, true);
    CU_ASSERT_FATAL(hs_pc_equal(&lock, &pl1));
    hs_pc_free(&lock);
    uint64_t h = 99;
    CU_ASSERT_FATAL(committed_height(&w, 0, &h) && h == 0);

    store_add(s, &g0);
    store_add(s, &l1);
    store_apply(s, &pl1);
    store_add(s, &w1);
    store_apply(s, &pw1);
    store_add(s, &w2);
    store_add(s, &w3);
    store_apply(s, &pw3); /* 5, 6, 7: W1 committed */
    CU_ASSERT_FATAL(committed_height(&w, 1, &h) && h == 1);

    start_core(&w, 0);
    start_server(&w, 1);
    run_for(&w, 10000);

    CU_ASSERT(w.nodes[0].start_syncs >= 1);
    CU_ASSERT(has_block(&w, 0, &w1.hash));
    CU_ASSERT(has_block(&w, 0, &w2.hash));
    CU_ASSERT(has_block(&w, 0, &w3.hash));
    CU_ASSERT(!has_block(&w, 0, &l1.hash)); /* pruned when W1 was committed */
    hs_kv_reader r0 = rd(&w, 0);
    hs_hash hcb;
    CU_ASSERT(hs_bt_highest_committed_block(&r0, &hcb) == HS_OK &&
              memcmp(hcb.b, w1.hash.b, HS_HASH_LEN) == 0);
    hs_pc hp = stored_pc(&w, 0, false);
    CU_ASSERT(hs_pc_equal(&hp, &pw3));
    hs_pc_free(&hp);
    lock = stored_pc(&w, 0, true);
    CU_ASSERT(hs_pc_equal(&lock, &pw2));
    hs_pc_free(&lock);
    /* W1's justify was not applied: that would have moved the lock back to the genesis PC. */
    CU_ASSERT(w.nodes[0].lock_to_genesis == 0);

    hs_block *blocks[] = {&g0, &l1, &l2, &w1, &w2, &w3};
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) hs_block_free(blocks[i]);
    hs_pc *pcs[] = {&pg0, &pl1, &pl2, &pw1, &pw2, &pw3};
    for (size_t i = 0; i < sizeof pcs / sizeof *pcs; i++) hs_pc_free(pcs[i]);
    world_close(&w);
}

/* ======================================================================================== */
/* 6. The start-up view                                                                       */
/* ======================================================================================== */

/* The core trusts the signatures it makes (its own votes skip re-verification), so it refuses
 * a key pair whose secret key does not sign for its public key. */
static void test_inconsistent_key_pair_refused(void) {
    world w;
    world_open(&w, 1, 4);
    node *n = &w.nodes[0];
    hs_config c = node_cfg(&w, 0);
    /* Another key's seed under this key's public half: the config check, which compares the
     * public key with the secret's second half, passes; only signing shows the mismatch. */
    memcpy(c.me.secret, kps[1].secret, 32);
    CU_ASSERT_EQUAL(hs_config_validate(&c, NULL, 0), HS_OK);
    hs_core *core = NULL;
    CU_ASSERT_EQUAL(hs_core_new(&c, &n->env, w.now, &core), HS_ERR_INVALID);
    CU_ASSERT_PTR_NULL(core);
    c = node_cfg(&w, 0);
    CU_ASSERT_EQUAL(hs_core_new(&c, &n->env, w.now, &core), HS_OK);
    hs_core_free(core);
    world_close(&w);
}

typedef struct startup_case {
    uint64_t hve;     /* HIGHEST_VIEW_ENTERED */
    int64_t tc_view;  /* HIGHEST_TC, -1: none */
    int64_t pc_view;  /* HIGHEST_PC's view (a block at height 0), -1: genesis */
    uint64_t expect;
    const char *why;
} startup_case;

/* Guards fix 6 (core/algorithm.c start_up_view). Epoch length 4. The first three rows fail
 * without the fix (the spec starts at E + 1 and at 0); the others are unchanged. */
static void test_start_up_view(void) {
    static const startup_case cases[] = {
        {4, -1, -1, 4, "parked in epoch-change view 4, no certificate for it: restart in 4"},
        {8, 4, 6, 8, "parked in 8 holding TC(4), PC(6): restart in 8"},
        {0, 0, -1, 1, "holding TC(0): start in 1, not 0"},
        {0, -1, -1, 0, "fresh: view 0"},
        {5, -1, -1, 6, "entered 5 (not an epoch change): 6"},
        {7, 4, -1, 8, "entered 7 holding TC(4): 8"},
        {4, 4, -1, 5, "entered 4 holding TC(4): after the certificate, 5"},
        {4, -1, 6, 7, "entered 4 holding PC(6): 7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const startup_case *k = &cases[i];
        world w;
        world_open(&w, 1, 4);
        const hs_kv_store *kv = &w.nodes[0].kv;
        CU_ASSERT_FATAL(hs_bt_set_highest_view_entered(kv, k->hve) == HS_OK);
        if (k->tc_view >= 0) {
            hs_tc tc;
            make_tc(&tc, (uint64_t)k->tc_view, 0x7);
            CU_ASSERT_FATAL(hs_bt_set_highest_tc(kv, &tc) == HS_OK);
            hs_tc_free(&tc);
        }
        if (k->pc_view >= 0) {
            hs_pc g = {0}, pc;
            hs_pc_genesis(&g);
            hs_block b;
            make_block(&b, 0, &g, 0);
            store_add(kv, &b);
            make_pc(&pc, (uint64_t)k->pc_view, &b.hash, HS_PHASE_GENERIC, &vs1, 0xF);
            store_apply(kv, &pc);
            hs_pc_free(&pc);
            hs_block_free(&b);
        }
        start_core(&w, 0);
        uint64_t v = hs_core_view(w.nodes[0].core);
        if (v != k->expect) printf("\n  %s: started in %llu\n", k->why, (unsigned long long)v);
        CU_ASSERT(v == k->expect);

        /* Parked in an epoch-change view, it times out and votes in THAT view. */
        if (k->expect % 4 == 0 && k->expect > 0) {
            run_for(&w, 2 * T);
            CU_ASSERT(w.nodes[0].timeout_votes >= 1);
            CU_ASSERT(w.nodes[0].last_timeout_vote_view == k->expect);
            CU_ASSERT(hs_core_view(w.nodes[0].core) == k->expect);
        }
        world_close(&w);
    }
}

typedef struct view_is {
    int node;
    uint64_t view;
} view_is;

static bool node_in_view(world *w, void *ctx) {
    const view_is *x = ctx;
    return w->nodes[x->node].core && hs_core_view(w->nodes[x->node].core) == x->view;
}

static bool all_past_view(world *w, void *ctx) {
    const view_is *x = ctx;
    for (int i = 0; i < w->n; i++)
        if (i != x->node && (!w->nodes[i].core || hs_core_view(w->nodes[i].core) <= x->view))
            return false;
    return true;
}

/* Guards fix 6 end to end. Three of four validators run (the one that leads epoch-change view 4
 * is down for good). Replica V crashes the moment it enters view 4; the other two park there
 * with two timeout votes out of the three needed. V restarts: in view 4 it completes TC(4) and
 * everyone moves on; in view 5 (the spec) it times out to view 8 and parks there, while the other
 * two stay parked in 4 - for ever. */
static void test_restart_parked_in_epoch_change_view(void) {
    world w;
    world_open(&w, 4, 4);
    const uint64_t e = 4;
    int down = leader_of(&vs1, e);
    int victim = leader_of(&vs1, e + 1);
    CU_ASSERT_FATAL(down != victim);
    for (int i = 0; i < 4; i++)
        if (i != down) start_core(&w, i);

    view_is at_e = {victim, e};
    CU_ASSERT_FATAL(run_until(&w, 30000, node_in_view, &at_e));
    crash(&w, victim);
    /* The other two reach view 4 and park there: no TC without V. */
    run_for(&w, 4 * T);
    for (int i = 0; i < 4; i++) {
        if (i == down || i == victim) continue;
        CU_ASSERT_FATAL(hs_core_view(w.nodes[i].core) == e);
    }
    hs_kv_reader rv = rd(&w, victim);
    hs_tc tc = {0};
    CU_ASSERT_FATAL(hs_bt_highest_tc(&rv, &tc) == HS_OK && tc.view < e); /* none for 4 */
    hs_tc_free(&tc);

    start_core(&w, victim);
    CU_ASSERT(hs_core_view(w.nodes[victim].core) == e);
    view_is past = {down, e + 4};
    CU_ASSERT(run_until(&w, w.now + 20 * T, all_past_view, &past));
    for (int i = 0; i < 4; i++) {
        if (i == down) continue;
        CU_ASSERT(highest_pc_view(&w, i) > e);
        CU_ASSERT(!w.nodes[i].view_went_back);
    }
    world_close(&w);
}

/* ======================================================================================== */
/* 7. Stale timeout votes                                                                     */
/* ======================================================================================== */

/* Checks that everything node 0 sent is AdvanceView unicasts to `to`, at most one carrying a
 * PC and one a TC, and that they are exactly the expected ones: pc_view / tc_view, or -1 for
 * "no such answer". */
static void expect_answers(world *w, int to, int64_t pc_view, int64_t tc_view) {
    int pcs = 0, tcs = 0;
    for (size_t i = w->head; i < w->len; i++) {
        const qmsg *e = &w->q[i];
        CU_ASSERT(e->from == 0 && e->to == to && !e->bcast); /* unicasts to the laggard */
        CU_ASSERT_FATAL(e->m.type == HS_MSG_ADVANCE_VIEW);
        const hs_advance_view *av = &e->m.u.advance_view;
        if (av->is_tc) {
            tcs++;
            CU_ASSERT((int64_t)av->tc.view == tc_view);
        } else {
            pcs++;
            CU_ASSERT((int64_t)av->pc.view == pc_view);
        }
    }
    CU_ASSERT(pcs == (pc_view >= 0));
    CU_ASSERT(tcs == (tc_view >= 0));
}

static void expect_silence(world *w, const char *what) {
    if (w->len != w->head) printf("\n  %s: %zu messages sent\n", what, w->len - w->head);
    CU_ASSERT(w->len == w->head);
}

/* Guards fix 7 (core/algorithm.c intake -> core/pacemaker.c
 * hs_pacemaker_on_stale_timeout_vote): without it a TimeoutVote of a past view is dropped, and a
 * replica parked in an epoch-change view everyone else has left is never told. Node 0 is the only
 * core; the other validators are the test. Epoch length 4. */
static void test_stale_timeout_vote_answered(void) {
    world w;
    world_open(&w, 5, 4);
    start_core(&w, 0);
    hs_msg m;

    /* TC(4) moves node 0 to view 5. Highest PC: genesis; highest TC: TC(4). */
    m = advance_view_tc(4);
    inject(&w, 0, 1, &m);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == 5);

    /* A stale vote for view 4 from validator 2: answered with TC(4), to validator 2 only. */
    q_clear(&w);
    m = timeout_vote_msg(4, 2);
    inject(&w, 0, 2, &m);
    expect_answers(&w, 2, -1, 4);
    CU_ASSERT(hs_core_view(w.nodes[0].core) == 5);

    /* A block G0 in view 5, PC(G0, 5) moves node 0 to 6, G1 in view 6 carries PC(G0, 5): now the
     * highest PC (view 5) outranks TC(4). */
    hs_pc g = {0}, pg0;
    hs_pc_genesis(&g);
    hs_block g0, g1;
    make_block(&g0, 0, &g, 0);
    make_pc(&pg0, 5, &g0.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&g1, 1, &pg0, 0);
    m = proposal_msg(5, &g0);
    inject(&w, 0, leader_of(&vs1, 5), &m);
    CU_ASSERT_FATAL(has_block(&w, 0, &g0.hash));
    m = advance_view_pc(5, &g0.hash);
    inject(&w, 0, 1, &m);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == 6);
    m = proposal_msg(6, &g1);
    inject(&w, 0, leader_of(&vs1, 6), &m);
    CU_ASSERT_FATAL(highest_pc_view(&w, 0) == 5);

    q_clear(&w);
    m = timeout_vote_msg(4, 3);
    inject(&w, 0, 3, &m);
    /* Both certificates reach view 4: both go (across a validator-set change the laggard may
     * verify only one of them). */
    expect_answers(&w, 3, 5, 4);
    for (size_t i = w.head; i < w.len; i++)
        if (!w.q[i].m.u.advance_view.is_tc)
            CU_ASSERT(memcmp(w.q[i].m.u.advance_view.pc.block.b, g0.hash.b, HS_HASH_LEN) == 0);

    /* TC(8) moves it to 9. A stale vote for 8: the PC (view 5) is below 8, so TC(8) only; for
     * 4, both. */
    m = advance_view_tc(8);
    inject(&w, 0, 1, &m);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == 9);
    q_clear(&w);
    m = timeout_vote_msg(8, 2);
    inject(&w, 0, 2, &m);
    expect_answers(&w, 2, -1, 8);
    q_clear(&w);
    m = timeout_vote_msg(4, 1);
    inject(&w, 0, 1, &m);
    expect_answers(&w, 1, 5, 8);

    /* Nothing for: a bad signature, a sender outside the validator set, a view that is not an
     * epoch change, its own vote. */
    q_clear(&w);
    m = timeout_vote_msg(4, 3); /* signed by 3, sent by 2 */
    inject(&w, 0, 2, &m);
    expect_silence(&w, "bad signature");
    m = timeout_vote_msg(4, 2);
    m.u.timeout_vote.sig.b[7] ^= 0x10;
    inject(&w, 0, 2, &m);
    expect_silence(&w, "corrupt signature");
    m = timeout_vote_msg(4, 4);
    inject(&w, 0, 4, &m);
    expect_silence(&w, "non-validator");
    m = timeout_vote_msg(6, 2);
    inject(&w, 0, 2, &m);
    expect_silence(&w, "not an epoch-change view");
    m = timeout_vote_msg(4, 0);
    inject(&w, 0, 0, &m);
    expect_silence(&w, "own vote");
    CU_ASSERT(hs_core_view(w.nodes[0].core) == 9);

    hs_pc_free(&g);
    hs_pc_free(&pg0);
    hs_block_free(&g0);
    hs_block_free(&g1);
    world_close(&w);
}

/* ======================================================================================== */
/* 8. The end of the view space                                                               */
/* ======================================================================================== */

static hs_hash some_hash(uint8_t tag) {
    hs_hash h;
    memset(h.b, tag, sizeof h.b);
    return h;
}

/* Guards fix 8 (core/pacemaker.c on_advance_view and on_timeout_vote: certificates for views
 * >= UINT64_MAX - 1 are not followed). Epoch length 2: UINT64_MAX - 1 is an epoch-change view,
 * so its TC is valid. The spec follows each of them into view UINT64_MAX. */
static void test_certificate_for_last_views_not_followed(void) {
    hs_hash unknown = some_hash(0xAB);
    for (int variant = 0; variant < 4; variant++) {
        world w;
        world_open(&w, 1, 2);
        start_core(&w, 0);
        hs_msg m;
        switch (variant) {
        case 0: m = advance_view_tc(VMAX - 1); break;
        case 1: m = advance_view_pc(VMAX - 1, &unknown); break;
        case 2: m = advance_view_pc(VMAX, &unknown); break;
        default: /* the fallback TC of a timeout vote for the current view */
            m = timeout_vote_msg(0, 1);
            m.u.timeout_vote.has_highest_tc = true;
            make_tc(&m.u.timeout_vote.highest_tc, VMAX - 1, 0x7);
            break;
        }
        inject(&w, 0, 1, &m);
        uint64_t v = hs_core_view(w.nodes[0].core);
        if (v != 0) printf("\n  variant %d: moved to view %llu\n", variant, (unsigned long long)v);
        CU_ASSERT(v == 0);
        if (variant == 0 || variant == 3) { /* the TC was stored all the same */
            hs_kv_reader r = rd(&w, 0);
            hs_tc tc = {0};
            CU_ASSERT(hs_bt_highest_tc(&r, &tc) == HS_OK && tc.view == VMAX - 1);
            hs_tc_free(&tc);
        }
        world_close(&w);
    }
}

/* Guards fix 8 (core/pacemaker.c hs_pacemaker_tick: the last view parks). Epoch length 3:
 * UINT64_MAX - 2 and UINT64_MAX - 1 are ordinary views, UINT64_MAX an epoch-change one. A replica
 * moved to UINT64_MAX - 2 times out into UINT64_MAX - 1 and parks there; the spec moves on into
 * UINT64_MAX. Epoch length 2: a replica parked in UINT64_MAX - 1 stays there whatever TC it
 * gets; the spec follows TC(UINT64_MAX - 1) into UINT64_MAX, an ordinary view, whose timeout
 * wraps the view to 0. */
static void test_views_stop_before_uint64_max(void) {
    hs_hash unknown = some_hash(0xCD);
    for (uint32_t el = 2; el <= 3; el++) {
        world w;
        world_open(&w, 1, el);
        start_core(&w, 0);
        hs_msg m = advance_view_pc(VMAX - 3, &unknown);
        inject(&w, 0, 1, &m);
        CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == VMAX - 2);
        run_for(&w, 3 * T);
        CU_ASSERT(hs_core_view(w.nodes[0].core) == VMAX - 1);
        m = advance_view_tc(VMAX - 1); /* valid only where VMAX - 1 is an epoch change */
        inject(&w, 0, 1, &m);
        run_for(&w, 10 * T);
        uint64_t v = hs_core_view(w.nodes[0].core);
        if (v != VMAX - 1)
            printf("\n  epoch length %u: in view %llu\n", el, (unsigned long long)v);
        CU_ASSERT(v == VMAX - 1);
        CU_ASSERT(!w.nodes[0].view_went_back);
        /* Still alive: it keeps voting to time out of its view. */
        uint32_t votes = w.nodes[0].timeout_votes;
        CU_ASSERT(votes >= 1 && w.nodes[0].last_timeout_vote_view == VMAX - 1);
        run_for(&w, 2 * T);
        CU_ASSERT(hs_core_view(w.nodes[0].core) == VMAX - 1);
        CU_ASSERT(w.nodes[0].timeout_votes > votes);
        world_close(&w);
    }
}

/* ======================================================================================== */
/* 9. Block Sync across a validator-set update; AdvertisePC; the choice of sync server        */
/* ======================================================================================== */

/* VS2 = VS1 + kps[4] (power 1): five validators, quorum 4. *who selects the four of VS1 in
 * VS2's order (make_pc), kps[4] - who runs no replica - left out. */
static void make_vs2(hs_validator_set *vs2, unsigned *who) {
    *vs2 = (hs_validator_set){0};
    CU_ASSERT_FATAL(hs_vs_copy(vs2, &vs1) == HS_OK);
    CU_ASSERT_FATAL(hs_vs_put(vs2, &kps[4].public_key, 1) == HS_OK);
    int64_t k4 = hs_vs_find(vs2, &kps[4].public_key);
    CU_ASSERT_FATAL(k4 >= 0);
    *who = 0x1Fu & ~(1u << k4);
}

/* A NumberApp block whose one transaction is SetValidator(kps[4], 1); *vsu gets the updates
 * NumberApp's validation derives from it (so a store can hold it as a replica that inserted it
 * would). */
static void make_vs_block(hs_block *b, uint64_t height, const hs_pc *justify, hs_vs_updates *vsu) {
    *b = (hs_block){.height = height};
    CU_ASSERT_FATAL(hs_pc_copy(&b->justify, justify) == HS_OK);
    uint8_t body[4 + 1 + HS_KEY_LEN + 8] = {1, 0, 0, 0, NAPP_SET_VALIDATOR};
    memcpy(body + 5, kps[4].public_key.b, HS_KEY_LEN);
    body[5 + HS_KEY_LEN] = 1;
    b->data.items = calloc(1, sizeof *b->data.items);
    CU_ASSERT_FATAL(b->data.items != NULL);
    b->data.n = 1;
    CU_ASSERT_FATAL(hs_bytes_set(&b->data.items[0], body, sizeof body) == HS_OK);
    hs_sha256(body, sizeof body, &b->data_hash);
    CU_ASSERT_FATAL(hs_block_compute_hash(b, &b->hash) == HS_OK);
    *vsu = (hs_vs_updates){0};
    CU_ASSERT_FATAL(hs_vs_updates_insert(vsu, &kps[4].public_key, 1) == HS_OK);
}

/* The chain of a committed validator-set update, every certificate real:
 *
 *   B0 ── B ─────────────────────────── C ──────── D ──────── E
 *   PC(B0,1)  Prepare(B,2) Precommit(B,3)   PC(C,6)    PC(D,7)    PC(E,8)
 *             Commit(B,4)  [VS1]            [VS2]      [VS2]      [VS2]
 *             Decide(B,5)  [VS2]
 *
 * B carries SetValidator(kps[4], 1): its Prepare, Precommit and Commit PCs are signed by VS1,
 * its Decide PC - C's justify - by VS2, as are the Generic PCs above it. */
typedef struct vs_chain {
    hs_validator_set vs2;
    unsigned who2;
    hs_vs_updates vsu;
    hs_block b0, b, c, d, e;
    hs_pc pb0, prep, precommit, commit, decide, pcc, pcd, pce;
} vs_chain;

static void vs_chain_make(vs_chain *x) {
    keys_setup();
    memset(x, 0, sizeof *x);
    make_vs2(&x->vs2, &x->who2);
    hs_pc g = {0};
    hs_pc_genesis(&g);
    make_block(&x->b0, 0, &g, 0);
    make_pc(&x->pb0, 1, &x->b0.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_vs_block(&x->b, 1, &x->pb0, &x->vsu);
    make_pc(&x->prep, 2, &x->b.hash, HS_PHASE_PREPARE, &vs1, 0xF);
    make_pc(&x->precommit, 3, &x->b.hash, HS_PHASE_PRECOMMIT, &vs1, 0xF);
    make_pc(&x->commit, 4, &x->b.hash, HS_PHASE_COMMIT, &vs1, 0xF);
    make_pc(&x->decide, 5, &x->b.hash, HS_PHASE_DECIDE, &x->vs2, x->who2);
    make_block(&x->c, 2, &x->decide, 1);
    make_pc(&x->pcc, 6, &x->c.hash, HS_PHASE_GENERIC, &x->vs2, x->who2);
    make_block(&x->d, 3, &x->pcc, 2);
    make_pc(&x->pcd, 7, &x->d.hash, HS_PHASE_GENERIC, &x->vs2, x->who2);
    make_block(&x->e, 4, &x->pcd, 3);
    make_pc(&x->pce, 8, &x->e.hash, HS_PHASE_GENERIC, &x->vs2, x->who2);
    hs_pc_free(&g);
}

static void vs_chain_free(vs_chain *x) {
    hs_vs_free(&x->vs2);
    hs_vs_updates_free(&x->vsu);
    hs_block *blocks[] = {&x->b0, &x->b, &x->c, &x->d, &x->e};
    for (size_t i = 0; i < sizeof blocks / sizeof *blocks; i++) hs_block_free(blocks[i]);
    hs_pc *pcs[] = {&x->pb0, &x->prep, &x->precommit, &x->commit,
                    &x->decide, &x->pcc, &x->pcd, &x->pce};
    for (size_t i = 0; i < sizeof pcs / sizeof *pcs; i++) hs_pc_free(pcs[i]);
}

/* B0, then B with its VS updates, as a replica that accepted them holds them (B Pending). */
static void vs_chain_store_to_b(const hs_kv_store *kv, const vs_chain *x) {
    store_add(kv, &x->b0);
    CU_ASSERT_FATAL(hs_bt_insert(kv, &x->b, NULL, &x->vsu) == HS_OK);
    store_apply(kv, &x->b.justify);
}

/* The whole chain, as a replica that saw every certificate holds it: B committed (through its
 * Commit PC, which the store keeps for Block Sync), the update decided, C committed. */
static void vs_chain_store_all(world *w, int i, const vs_chain *x) {
    const hs_kv_store *kv = &w->nodes[i].kv;
    vs_chain_store_to_b(kv, x);
    store_apply(kv, &x->prep);
    store_apply(kv, &x->precommit);
    store_apply(kv, &x->commit);
    store_add(kv, &x->c);
    store_add(kv, &x->d);
    store_add(kv, &x->e);
    store_apply(kv, &x->pce);
    CU_ASSERT_FATAL(vsu_status(w, i, &x->b.hash) == HS_VSU_COMMITTED);
    hs_vss vss = stored_vss(w, i);
    CU_ASSERT_FATAL(vss.update_decided && hs_vs_equal(&vss.committed, &x->vs2));
    hs_vss_free(&vss);
    uint64_t h;
    CU_ASSERT_FATAL(committed_height(w, i, &h) && h == 2);
}

/* Node `srv`'s sync server answers a request (start, limit 10) from node `from`; returns the
 * response in flight (the queue is cleared first, so it is the only message). */
static const hs_sync_response *ask_server(world *w, int srv, int from, uint64_t start) {
    q_clear(w);
    hs_sync_request req = {.chain_id = CHAIN, .start_height = start, .limit = 10};
    CU_ASSERT_FATAL(hs_sync_server_handle(w->nodes[srv].srv, w->now, &kps[from].public_key,
                                          &req) == HS_OK);
    const qmsg *r = NULL;
    CU_ASSERT_FATAL(q_count(w, srv, from, HS_MSG_SYNC_RESPONSE, &r) == 1 && r != NULL);
    return &r->m.u.sync_response;
}

/* Guards fix 9a (core/sync_server.c stop_at_vs_update, and core/sync_client.c
 * hs_sync_client_on_response applying the response's highest PC before looking at its blocks).
 * Node 1 (a sync server) holds the chain above, B committed; node 0 (a core) missed B's Commit
 * PC: it holds B Pending, locked on its Precommit PC (`has_b`), or nothing at all. C's justify
 * is B's Decide PC, signed by VS2, which node 0 checks against VS1 while B is Pending: C is
 * refused, node 0 blacklists the server, and it is stuck below C for ever.
 * With the fix the server's response to a request from height 0 ends at B and carries B's
 * Commit PC (signed by VS1): node 0 commits B, switches to VS2, asks again from height 2, and
 * C, D, E then pass. Without the server side, both variants fail. Without the client side (the
 * highest PC applied only after a new block), the `has_b` variant fails: B0 and B are known, so
 * the Commit PC is never applied. */
static void test_sync_across_vs_update(void) {
    for (int has_b = 1; has_b >= 0; has_b--) {
        world w;
        sync_world_open(&w, 10);
        w.tmpl.block_sync_trigger_timeout_ms = 1500;
        vs_chain x;
        vs_chain_make(&x);
        vs_chain_store_all(&w, 1, &x);
        if (has_b) {
            vs_chain_store_to_b(&w.nodes[0].kv, &x);
            store_apply(&w.nodes[0].kv, &x.prep);
            store_apply(&w.nodes[0].kv, &x.precommit);
            CU_ASSERT_FATAL(vsu_status(&w, 0, &x.b.hash) == HS_VSU_PENDING);
        }
        uint64_t h;
        CU_ASSERT_FATAL(!committed_height(&w, 0, &h));
        start_server(&w, 1);

        /* The server's side: from height 0, the response ends at B with B's Commit PC; from
         * height 2, it is the rest of the chain with the server's highest PC. */
        const hs_sync_response *r = ask_server(&w, 1, 0, 0);
        CU_ASSERT(r->n_blocks == 2);
        if (r->n_blocks == 2) {
            CU_ASSERT(memcmp(r->blocks[0].hash.b, x.b0.hash.b, HS_HASH_LEN) == 0);
            CU_ASSERT(memcmp(r->blocks[1].hash.b, x.b.hash.b, HS_HASH_LEN) == 0);
        }
        CU_ASSERT(hs_pc_equal(&r->highest_pc, &x.commit));
        r = ask_server(&w, 1, 0, 2);
        CU_ASSERT(r->n_blocks == 3);
        if (r->n_blocks == 3) CU_ASSERT(memcmp(r->blocks[0].hash.b, x.c.hash.b, HS_HASH_LEN) == 0);
        CU_ASSERT(hs_pc_equal(&r->highest_pc, &x.pce));
        q_clear(&w);

        start_core(&w, 0);
        run_for(&w, 8000);
        if (!has_block(&w, 0, &x.c.hash)) printf("\n  has_b %d: stuck before C\n", has_b);
        CU_ASSERT(w.nodes[0].start_syncs >= 1);
        CU_ASSERT(vsu_status(&w, 0, &x.b.hash) == HS_VSU_COMMITTED);
        CU_ASSERT(w.nodes[0].vs_updated);
        hs_vss vss = stored_vss(&w, 0);
        CU_ASSERT(hs_vs_equal(&vss.committed, &x.vs2));
        CU_ASSERT(hs_vs_equal(&vss.previous, &vs1));
        CU_ASSERT(vss.update_decided); /* C's justify, B's Decide PC, was applied */
        hs_vss_free(&vss);
        CU_ASSERT(has_block(&w, 0, &x.c.hash));
        CU_ASSERT(has_block(&w, 0, &x.d.hash));
        CU_ASSERT(has_block(&w, 0, &x.e.hash));
        CU_ASSERT(highest_pc_view(&w, 0) == x.pce.view);
        CU_ASSERT(committed_height(&w, 0, &h) && h == 2);
        CU_ASSERT(!hs_core_is_syncing(w.nodes[0].core));
        vs_chain_free(&x);
        world_close(&w);
    }
}

static hs_msg advertise_pc_msg(const hs_pc *pc) {
    hs_msg m = {.type = HS_MSG_ADVERTISE_PC};
    CU_ASSERT_FATAL(hs_pc_copy(&m.u.advertise_pc.highest_pc, pc) == HS_OK);
    return m;
}

/* Guards fix 9b (core/sync_client.c apply_advertised_pc). Node 0 committed B through its Commit
 * PC but missed its Decide PC: it is in VS2, undecided. The spec uses an AdvertisePC only as a
 * sync trigger, so a Decide PC its peers advertise is never applied, and node 0 stays undecided
 * (and, in the simulator, split from the decided replicas for good). With the fix a correct,
 * safe, higher PC is applied as a NewView's would be. */
static void test_advertised_pc_applied(void) {
    world w;
    world_open(&w, 2, 4);
    vs_chain x;
    vs_chain_make(&x);
    const hs_kv_store *kv = &w.nodes[0].kv;
    vs_chain_store_to_b(kv, &x);
    store_apply(kv, &x.prep);
    store_apply(kv, &x.precommit);
    store_apply(kv, &x.commit);
    hs_vss vss = stored_vss(&w, 0);
    CU_ASSERT_FATAL(!vss.update_decided && hs_vs_equal(&vss.committed, &x.vs2));
    hs_vss_free(&vss);
    start_core(&w, 0);

    /* Not applied: a Decide PC signed by the wrong set (VS1), and a lower PC than ours. */
    hs_pc bad;
    make_pc(&bad, 5, &x.b.hash, HS_PHASE_DECIDE, &vs1, 0xF);
    hs_msg m = advertise_pc_msg(&bad);
    inject(&w, 0, 1, &m);
    m = advertise_pc_msg(&x.precommit);
    inject(&w, 0, 1, &m);
    CU_ASSERT(highest_pc_view(&w, 0) == x.commit.view);
    vss = stored_vss(&w, 0);
    CU_ASSERT_FATAL(!vss.update_decided);
    hs_vss_free(&vss);

    /* Applied: B's Decide PC, signed by VS2. */
    m = advertise_pc_msg(&x.decide);
    inject(&w, 0, 1, &m);
    vss = stored_vss(&w, 0);
    if (!vss.update_decided) printf("\n  the advertised Decide PC was not applied\n");
    CU_ASSERT(vss.update_decided);
    CU_ASSERT(hs_vs_equal(&vss.committed, &x.vs2));
    hs_vss_free(&vss);
    hs_pc hp = stored_pc(&w, 0, false);
    CU_ASSERT(hs_pc_equal(&hp, &x.decide));
    hs_pc_free(&hp);

    hs_pc_free(&bad);
    vs_chain_free(&x);
    world_close(&w);
}

/* Guards fix 9c, first half (core/sync_client.c hs_sync_client_on_advertise, the AdvertisePC
 * branch: `missing`). Node 0 holds B0 and PC(B0, 1) and has entered view 6; the server (node 1)
 * holds B1 and PC(B1, 7). Node 0 keeps within one view of 7 (it times out into 7, then parks in
 * the epoch-change view 8), so the spec's trigger (block_sync_trigger_min_view_difference = 2
 * views ahead) never fires, and the no-progress timeout (60 s) has not come: without the fix
 * node 0 does not sync. With it, the advertised PC - correct, higher than node 0's highest PC,
 * for a block it lacks - starts a sync at once. */
static void test_advertised_pc_for_missing_block_triggers_sync(void) {
    world w;
    sync_world_open(&w, 10);
    CU_ASSERT_FATAL(w.tmpl.block_sync_trigger_timeout_ms >= 60000);
    CU_ASSERT_FATAL(w.tmpl.block_sync_trigger_min_view_difference == 2);
    hs_pc g = {0}, p0, p1;
    hs_pc_genesis(&g);
    hs_block b0, b1;
    make_block(&b0, 0, &g, 0);
    make_pc(&p0, 1, &b0.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&b1, 1, &p0, 1);
    make_pc(&p1, 7, &b1.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    store_add(&w.nodes[0].kv, &b0);
    store_apply(&w.nodes[0].kv, &p0);
    CU_ASSERT_FATAL(hs_bt_set_highest_view_entered(&w.nodes[0].kv, 5) == HS_OK);
    store_add(&w.nodes[1].kv, &b0);
    store_add(&w.nodes[1].kv, &b1);
    store_apply(&w.nodes[1].kv, &p1);

    start_core(&w, 0);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == 6);
    start_server(&w, 1);
    run_for(&w, 5000);
    CU_ASSERT(hs_core_view(w.nodes[0].core) + 1 >= p1.view); /* never 2 views behind */
    if (w.nodes[0].start_syncs == 0) printf("\n  no sync started\n");
    CU_ASSERT(w.nodes[0].start_syncs >= 1);
    CU_ASSERT(has_block(&w, 0, &b1.hash));
    CU_ASSERT(highest_pc_view(&w, 0) == p1.view);

    hs_block_free(&b0);
    hs_block_free(&b1);
    hs_pc_free(&g);
    hs_pc_free(&p0);
    hs_pc_free(&p1);
    world_close(&w);
}

/* Guards fix 9c, second half (core/sync_client.c hs_sync_client_on_advertise: a replica's own
 * AdvertiseBlock is ignored). Node 0 runs a core and a sync server, and no one else does; its
 * server's AdvertiseBlock reaches its own core (broadcast includes the sender). Had it registered
 * node 0 as a sync server, the no-progress trigger (1.5 s) would start a sync with itself. */
static void test_own_advertise_block_ignored(void) {
    world w;
    world_open(&w, 1, 4);
    w.tmpl.block_sync_server_advertise_time_ms = 500;
    w.tmpl.block_sync_trigger_timeout_ms = 1500;
    start_core(&w, 0);
    start_server(&w, 0);
    uint32_t requests = 0;
    while (w.now < 6000) {
        requests += (uint32_t)q_count(&w, 0, 0, HS_MSG_SYNC_REQUEST, NULL);
        if (!world_next(&w, 6000)) break;
    }
    if (w.nodes[0].start_syncs) printf("\n  synced with itself %u times\n", w.nodes[0].start_syncs);
    CU_ASSERT(w.nodes[0].start_syncs == 0);
    CU_ASSERT(requests == 0);
    world_close(&w);
}

/* Guards fix 9d (core/sync_client.c sync_now: any server when none is ahead). A fork above B2:
 *
 *   B0 ─ B1 ─ B2 ─ B3            node 0: PC(B3, 4) (only it saw it) commits B1: height 1;
 *                 └── B3' ─ B4'  node 1 (server): PC(B3', 5), PC(B4', 6), non-consecutive
 *                                views, so it committed only B0: it advertises height 0.
 *
 * The branch B3' ─ B4' extends B2, above node 0's commit, and is the one to follow (node 0's
 * lock, PC(B2, 3), allows it). The spec picks only servers not behind our committed height:
 * none here, so node 0 never syncs. With the fix it syncs from node 1 and gets B3', B4'. */
static void test_sync_from_server_behind_us(void) {
    world w;
    sync_world_open(&w, 10);
    w.tmpl.block_sync_trigger_timeout_ms = 1500;
    hs_pc g = {0}, p[4], p3a, p4a;
    hs_pc_genesis(&g);
    hs_block b[4], b3a, b4a;
    for (int i = 0; i < 4; i++) {
        make_block(&b[i], (uint64_t)i, i ? &p[i - 1] : &g, 0);
        make_pc(&p[i], (uint64_t)i + 1, &b[i].hash, HS_PHASE_GENERIC, &vs1, 0xF);
    }
    make_block(&b3a, 3, &p[2], 9);
    make_pc(&p3a, 5, &b3a.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&b4a, 4, &p3a, 9);
    make_pc(&p4a, 6, &b4a.hash, HS_PHASE_GENERIC, &vs1, 0xF);

    for (int i = 0; i < 4; i++) store_add(&w.nodes[0].kv, &b[i]);
    store_apply(&w.nodes[0].kv, &p[3]);
    for (int i = 0; i < 3; i++) store_add(&w.nodes[1].kv, &b[i]);
    store_add(&w.nodes[1].kv, &b3a);
    store_add(&w.nodes[1].kv, &b4a);
    store_apply(&w.nodes[1].kv, &p4a);
    uint64_t h0 = 0, h1 = 0;
    CU_ASSERT_FATAL(committed_height(&w, 0, &h0) && h0 == 1);
    CU_ASSERT_FATAL(committed_height(&w, 1, &h1) && h1 == 0);

    start_core(&w, 0);
    start_server(&w, 1);
    run_for(&w, 5000);
    if (w.nodes[0].start_syncs == 0) printf("\n  no sync started\n");
    CU_ASSERT(w.nodes[0].start_syncs >= 1);
    CU_ASSERT(has_block(&w, 0, &b3a.hash));
    CU_ASSERT(has_block(&w, 0, &b4a.hash));
    CU_ASSERT(highest_pc_view(&w, 0) == p4a.view);
    CU_ASSERT(committed_height(&w, 0, &h0) && h0 == 1);

    for (int i = 0; i < 4; i++) {
        hs_block_free(&b[i]);
        hs_pc_free(&p[i]);
    }
    hs_block_free(&b3a);
    hs_block_free(&b4a);
    hs_pc_free(&p3a);
    hs_pc_free(&p4a);
    hs_pc_free(&g);
    world_close(&w);
}

/* Guards fix 9e (core/safety.c hs_tc_is_correct: the previous set's TCs are accepted even once
 * the update is decided; also covered in test_safety.c). Node 0 committed and decided the update
 * VS1 -> VS2 and is parked in the epoch-change view 12. A TC(12) formed by VS1 (3 of 4) - one
 * the undecided replicas formed and still hand around - moves it to view 13. The spec accepts
 * the previous set's TCs only while undecided: node 0 would stay parked. */
static void test_decided_replica_follows_previous_set_tc(void) {
    world w;
    world_open(&w, 2, 4);
    vs_chain x;
    vs_chain_make(&x);
    vs_chain_store_all(&w, 0, &x);
    CU_ASSERT_FATAL(hs_bt_set_highest_view_entered(&w.nodes[0].kv, 12) == HS_OK);
    start_core(&w, 0);
    CU_ASSERT_FATAL(hs_core_view(w.nodes[0].core) == 12);
    hs_msg m = advance_view_tc(12); /* signed by VS1 */
    inject(&w, 0, 1, &m);
    uint64_t v = hs_core_view(w.nodes[0].core);
    if (v != 13) printf("\n  still in view %llu\n", (unsigned long long)v);
    CU_ASSERT(v == 13);
    vs_chain_free(&x);
    world_close(&w);
}

static const cu_test tests[] = {
    {"a key pair that does not sign for its public key is refused",
     test_inconsistent_key_pair_refused},
    {"3: a re-proposal of a committed VS-updating block keeps it Committed",
     test_reproposal_of_committed_vs_block},
    {"5a: sync past >= limit known uncommitted blocks", test_sync_past_known_uncommitted_blocks},
    {"5b: sync the winning branch while locked on a losing one",
     test_sync_winning_branch_while_locked_on_losing_one},
    {"6: start-up view", test_start_up_view},
    {"6: restart while parked in an epoch-change view", test_restart_parked_in_epoch_change_view},
    {"7: a stale timeout vote is answered with a certificate", test_stale_timeout_vote_answered},
    {"8: certificates for views >= UINT64_MAX - 1 are not followed",
     test_certificate_for_last_views_not_followed},
    {"8: views stop at UINT64_MAX - 1 and never wrap", test_views_stop_before_uint64_max},
    {"the lock never moves back on a re-proposal of the locked block",
     test_lock_never_moves_back_on_reproposal},
    {"a Decide PC signed by the pending update's own new validator is refused",
     test_self_certified_decide_pc},
    {"9a: sync across a committed VS update (the response ends at B with its Commit PC)",
     test_sync_across_vs_update},
    {"9b: a correct, safe, higher advertised PC is applied", test_advertised_pc_applied},
    {"9c: an advertised PC for a missing block triggers a sync",
     test_advertised_pc_for_missing_block_triggers_sync},
    {"9c: a replica's own AdvertiseBlock does not make it a sync server",
     test_own_advertise_block_ignored},
    {"9d: sync from a server behind us when none is ahead", test_sync_from_server_behind_us},
    {"9e: a decided replica follows a TC of the previous validator set",
     test_decided_replica_follows_previous_set_tc},
    {NULL, NULL}};

int main(void) { return cu_run("core", tests); }
