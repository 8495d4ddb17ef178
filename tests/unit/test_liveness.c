/* tests/unit/test_liveness.c - the liveness choices of docs/liveness.md at the level of the
 * deterministic core (harness: tests/common/core_world.h), each against the reference's
 * behaviour where the difference is the point:
 *   - view deadlines from view entry, the meeting in the next epoch-change view after a whole
 *     rotation of failed views, and the bounded back-off (pacemaker.c);
 *   - PhaseVotes to every replica (hotstuff.c vote);
 *   - active leader selection: a crashed validator stops leading, and commits go on (leader.c),
 *     where the reference's round robin stops committing for good;
 *   - a Proposal whose basis block is missing is fetched from its proposer and then voted for
 *     in the same view (sync_client.c hs_sync_client_fetch, hotstuff.c park_if_missing);
 *   - a replica that entered view v without PC(v - 1) proposes when the PC arrives late, if it
 *     names it the leader (hotstuff.c hs_hotstuff_on_highest_pc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt.h"
#include "core_world.h"
#include "cu.h"

static void robust(world *w) { hs_config_default_liveness(&w->tmpl); }

/* A lone replica moved by certificates: the deadline of the view it is moved to. */
static uint64_t deadline_after_jump(bool entry) {
    world w;
    world_open(&w, 4, 50);
    if (entry) robust(&w);
    start_core(&w, 0);
    hs_msg m = advance_view_tc(0);
    inject(&w, 0, 1, &m); /* view 1 at t = 0: the epoch's deadlines are laid out */
    w.now = 500;
    hs_hash b = {{7}};
    m = advance_view_pc(9, &b);
    inject(&w, 0, 1, &m); /* view 10 at t = 500 */
    CU_ASSERT_EQUAL(hs_core_view(w.nodes[0].core), 10);
    uint64_t d = hs_core_deadline(w.nodes[0].core);
    world_close(&w);
    return d;
}

static void test_deadline_from_view_entry(void) {
    /* The reference: view 10 of the epoch entered at view 1 has 10 x T from the epoch's start;
     * from entry: T from the moment view 10 was entered. (The core is stepped when now exceeds
     * the deadline, hence + 1.) */
    CU_ASSERT_EQUAL(deadline_after_jump(false), 10 * T + 1);
    CU_ASSERT_EQUAL(deadline_after_jump(true), 500 + T + 1);
}

/* A lone replica (nobody answers): each view times out after T. The rotation-th failure in a
 * row (4 validators) takes it straight to the next epoch-change view, where it parks and sends
 * TimeoutVotes every T; a TC moves it on with the view time doubled, a further failure takes it
 * to the next epoch-change view, and so on up to 8 x T; a PC resets it to T. */
static void expect_timeout(world *w, uint64_t view_time, uint64_t next_view) {
    node *n = &w->nodes[0];
    CU_ASSERT_EQUAL(hs_core_deadline(n->core), w->now + view_time + 1);
    w->now = hs_core_deadline(n->core);
    step(n, NULL, NULL);
    CU_ASSERT_EQUAL(hs_core_view(n->core), next_view);
    q_clear(w);
}

static void test_backoff_after_a_rotation_of_failed_views(void) {
    world w;
    world_open(&w, 4, 100);
    robust(&w);
    start_core(&w, 0);
    hs_msg m = advance_view_tc(0);
    inject(&w, 0, 1, &m); /* view 1 */
    expect_timeout(&w, T, 2);
    expect_timeout(&w, T, 3);
    expect_timeout(&w, T, 4);
    expect_timeout(&w, T, 100); /* the 4th failure in a row: the next epoch-change view */
    uint32_t votes = w.nodes[0].timeout_votes;
    expect_timeout(&w, 2 * T, 100); /* parked: a TimeoutVote, then one every T */
    expect_timeout(&w, T, 100);
    CU_ASSERT_EQUAL(w.nodes[0].timeout_votes, votes + 2);
    m = advance_view_tc(100);
    inject(&w, 0, 1, &m); /* a TC does not reset the count */
    CU_ASSERT_EQUAL(hs_core_view(w.nodes[0].core), 101);
    expect_timeout(&w, 2 * T, 200);
    m = advance_view_tc(200);
    inject(&w, 0, 1, &m);
    expect_timeout(&w, 4 * T, 300);
    m = advance_view_tc(300);
    inject(&w, 0, 1, &m);
    expect_timeout(&w, 8 * T, 400);
    m = advance_view_tc(400);
    inject(&w, 0, 1, &m);
    expect_timeout(&w, 8 * T, 500); /* at most 8 x T */
    hs_hash b = {{7}};
    m = advance_view_pc(500, &b); /* a view that succeeded */
    inject(&w, 0, 1, &m);
    CU_ASSERT_EQUAL(hs_core_view(w.nodes[0].core), 501);
    expect_timeout(&w, T, 502);
    world_close(&w);
}

/* A PhaseVote goes to every replica under HS_VOTES_TO_ALL, to the next leader alone in the
 * reference. */
static void count_votes(bool to_all, int *receivers) {
    world w;
    world_open(&w, 4, 50);
    if (to_all) w.tmpl.vote_routing = HS_VOTES_TO_ALL;
    for (int i = 0; i < 4; i++) start_core(&w, i);
    hs_msg m = advance_view_tc(0);
    for (int i = 0; i < 4; i++) {
        hs_msg c = {0};
        CU_ASSERT_FATAL(hs_msg_copy(&c, &m) == HS_OK);
        inject(&w, i, 1, &c); /* everyone in view 1; its leader proposes */
    }
    hs_msg_free(&m);
    /* Deliver the proposal (and nothing after the first vote is sent). */
    int voter = leader_of(&vs1, 1) == 0 ? 1 : 0;
    for (int k = 0; k < 1000 && q_count(&w, voter, -1, HS_MSG_PHASE_VOTE, NULL) == 0; k++)
        CU_ASSERT_FATAL(world_next(&w, 10 * T));
    *receivers = 0;
    for (int to = 0; to < 4; to++)
        *receivers += q_count(&w, voter, to, HS_MSG_PHASE_VOTE, NULL) > 0;
    world_close(&w);
}

static void test_votes_to_all(void) {
    int r;
    count_votes(false, &r);
    CU_ASSERT_EQUAL(r, 1);
    count_votes(true, &r);
    CU_ASSERT_EQUAL(r, 4);
}

static bool commits_reach(world *w, void *ctx) {
    uint32_t want = *(uint32_t *)ctx;
    for (int i = 0; i < w->n; i++)
        if (w->nodes[i].core && w->nodes[i].commits < want) return false;
    return true;
}

/* Four replicas, one crashes for good: the reference never commits again (three certified
 * blocks in consecutive views need four live round-robin leaders in a row); with the port's
 * choices commits go on, and once certificates without the crashed validator are carried it
 * leads no view: no view times out any more. */
static void crash_one(bool robust_mode, int victim, uint32_t *commits_after, uint32_t *timeouts) {
    world w;
    world_open(&w, 4, 10);
    if (robust_mode) robust(&w);
    for (int i = 0; i < 4; i++) start_core(&w, i);
    uint32_t want = 5;
    CU_ASSERT_FATAL(run_until(&w, 60000, commits_reach, &want));
    crash(&w, victim);
    int live = victim == 0 ? 1 : 0;
    uint32_t before = w.nodes[live].commits;
    run_for(&w, 10 * T); /* the transition */
    uint32_t mid = w.nodes[live].commits, tmo = w.nodes[live].view_timeouts;
    run_for(&w, 30 * T);
    *commits_after = w.nodes[live].commits - mid;
    *timeouts = w.nodes[live].view_timeouts - tmo;
    CU_ASSERT(mid >= before);
    world_close(&w);
}

static void test_crashed_validator_stops_leading(void) {
    for (int victim = 0; victim < 4; victim++) {
        uint32_t commits, timeouts;
        crash_one(false, victim, &commits, &timeouts);
        CU_ASSERT_EQUAL(commits, 0); /* the defect: no commit in 30 s */
        crash_one(true, victim, &commits, &timeouts);
        CU_ASSERT(commits > 100);
        CU_ASSERT_EQUAL(timeouts, 0);
    }
}

/* Node 0 lacks block a; the leader of view v proposes b on PC(a). Node 0 asks the proposer for
 * a, inserts what it returns, and votes for b in view v. */
static void test_missing_basis_block_fetched_from_proposer(void) {
    world w;
    world_open(&w, 4, 50);
    robust(&w);
    hs_pc g = {0};
    hs_pc_genesis(&g);
    hs_block a, b;
    make_block(&a, 0, &g, 1);
    hs_pc pa;
    make_pc(&pa, 1, &a.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    make_block(&b, 1, &pa, 2);
    /* a's basis is the genesis PC, so b's proposer is the round robin's leader of view 2. */
    int l = leader_of(&vs1, 2);
    int me = l == 0 ? 1 : 0;
    store_add(&w.nodes[l].kv, &a);
    store_apply(&w.nodes[l].kv, &pa); /* the proposer holds a and PC(a) */
    start_core(&w, me);
    start_server(&w, l);
    hs_msg m = advance_view_pc(1, &a.hash);
    inject(&w, me, l, &m); /* view 2; PC(a) for a block it lacks: fetched from the sender */
    CU_ASSERT_EQUAL(hs_core_view(w.nodes[me].core), 2);
    CU_ASSERT_EQUAL(q_count(&w, me, l, HS_MSG_SYNC_REQUEST, NULL), 1);
    CU_ASSERT_EQUAL(w.nodes[me].start_syncs, 1);
    m = proposal_msg(2, &b);
    inject(&w, me, l, &m); /* kept while the same sync runs */
    CU_ASSERT_EQUAL(q_count(&w, me, l, HS_MSG_SYNC_REQUEST, NULL), 1);
    CU_ASSERT_EQUAL(q_count(&w, me, -1, HS_MSG_PHASE_VOTE, NULL), 0);
    run_for(&w, T / 2); /* request, response, the kept proposal handled again, the vote */
    CU_ASSERT(has_block(&w, me, &a.hash));
    CU_ASSERT(has_block(&w, me, &b.hash));
    hs_kv_reader r = rd(&w, me);
    uint64_t voted = 0;
    CU_ASSERT_EQUAL(hs_bt_highest_view_phase_voted(&r, &voted), HS_OK);
    CU_ASSERT_EQUAL(voted, 2); /* it voted in view 2, for b (the only block of view 2) */
    CU_ASSERT_EQUAL(hs_core_view(w.nodes[me].core), 2);
    hs_block_free(&a);
    hs_block_free(&b);
    hs_pc_free(&pa);
    world_close(&w);
}

/* Node `me` enters view v by timeout with PC(a) as its highest PC, under which another leads v.
 * PC(b, v - 1) arrives afterwards, in an AdvanceView of view v - 1 (already left); under it
 * `me` leads v (b's justify lacks the signature of the round robin's leader of v, so the next
 * signer, `me`, leads), and proposes then. */
static void test_late_pc_makes_leader_propose(void) {
    keys_setup();
    uint64_t v = 0;
    int rr = -1, me = -1;
    uint32_t pos_rr = 0;
    for (v = 3; v < 40; v++) { /* a view whose round-robin leader's successor is kps[0..3] */
        rr = leader_of(&vs1, v);
        pos_rr = (uint32_t)hs_vs_find(&vs1, &kps[rr].public_key);
        me = key_index(&vs1.v[(pos_rr + 1) % 4].key);
        if (rr != 0 && me >= 0) break;
    }
    world w;
    world_open(&w, 4, 1000);
    robust(&w);
    hs_pc g = {0};
    hs_pc_genesis(&g);
    hs_block a, b;
    make_block(&a, 0, &g, 1);
    hs_pc pa, pb;
    make_pc(&pa, v - 2, &a.hash, HS_PHASE_GENERIC, &vs1, 0xF & ~(1u << pos_rr));
    make_block(&b, 1, &pa, 2);
    make_pc(&pb, v - 1, &b.hash, HS_PHASE_GENERIC, &vs1, 0xF);
    store_add(&w.nodes[me].kv, &a);
    CU_ASSERT_FATAL(hs_bt_insert(&w.nodes[me].kv, &b, NULL, NULL) == HS_OK);
    start_core(&w, me);
    hs_msg m = advance_view_pc(v - 2, &a.hash);
    inject(&w, me, rr, &m); /* view v - 1, highest PC(a) */
    w.now += T + 1;
    step(&w.nodes[me], NULL, NULL); /* timed out into view v */
    CU_ASSERT_EQUAL_FATAL(hs_core_view(w.nodes[me].core), v);
    CU_ASSERT_EQUAL(w.nodes[me].proposals, 0); /* under PC(a) the round robin's leader leads */
    q_clear(&w);
    m = (hs_msg){.type = HS_MSG_ADVANCE_VIEW};
    CU_ASSERT_FATAL(hs_pc_copy(&m.u.advance_view.pc, &pb) == HS_OK);
    inject(&w, me, rr, &m);
    CU_ASSERT_EQUAL(w.nodes[me].proposals, 1);
    const qmsg *p = NULL;
    CU_ASSERT(q_count(&w, me, -1, HS_MSG_PROPOSAL, &p) >= 1);
    if (p) {
        CU_ASSERT_EQUAL(p->m.u.proposal.view, v);
        CU_ASSERT(memcmp(p->m.u.proposal.block.justify.block.b, b.hash.b, HS_HASH_LEN) == 0);
    }
    /* Once only: a second copy of the PC changes nothing. */
    m = (hs_msg){.type = HS_MSG_ADVANCE_VIEW};
    CU_ASSERT_FATAL(hs_pc_copy(&m.u.advance_view.pc, &pb) == HS_OK);
    inject(&w, me, rr, &m);
    CU_ASSERT_EQUAL(w.nodes[me].proposals, 1);
    hs_block_free(&a);
    hs_block_free(&b);
    hs_pc_free(&pa);
    hs_pc_free(&pb);
    world_close(&w);
}

static const cu_test tests[] = {
    {"view deadlines from view entry", test_deadline_from_view_entry},
    {"back-off after a rotation of failed views", test_backoff_after_a_rotation_of_failed_views},
    {"votes to every replica", test_votes_to_all},
    {"a crashed validator stops leading; commits go on", test_crashed_validator_stops_leading},
    {"a missing basis block is fetched from the proposer",
     test_missing_basis_block_fetched_from_proposer},
    {"a late PC(v - 1) makes its leader propose", test_late_pc_makes_leader_propose},
    {NULL, NULL},
};

int main(void) { return cu_run("liveness", tests); }
