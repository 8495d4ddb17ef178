/* tests/integration/test_scenarios.c - the four in-process scenarios of spec §12.2-12.5.
 *
 * Each scenario runs real replicas (threads, memory stores) over the in-process network hub,
 * whose every message goes through the Borsh codec. Conditions are awaited with CU_AWAIT under
 * one overall deadline per scenario; the only fixed wait is in §12.3, which asserts that
 * something does NOT happen. Each scenario prints its wall time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cu.h"
#include "node.h"

#define SCENARIO_TIMEOUT_MS 90000
#define MAX_NODES 6

typedef struct cluster {
    const char *name;
    size_t n;
    hs_keypair kp[MAX_NODES];
    hs_key keys[MAX_NODES];
    node *nodes[MAX_NODES];
    tn_hub *hub;
    uint64_t t0, deadline;
} cluster;

/* n key pairs and a hub for all of them (replicas started later still get their mail). */
static bool cluster_init(cluster *c, const char *name, size_t n) {
    memset(c, 0, sizeof *c);
    c->name = name;
    c->n = n;
    for (size_t i = 0; i < n; i++) {
        node_test_keypair((uint32_t)i, &c->kp[i]);
        c->keys[i] = c->kp[i].public_key;
    }
    c->hub = tn_hub_new(c->keys, n);
    c->t0 = cu_now_ms();
    c->deadline = c->t0 + SCENARIO_TIMEOUT_MS;
    return c->hub != NULL;
}

/* Every node gets the same genesis: VS0 and an empty app state. */
static bool cluster_add_nodes(cluster *c, const hs_validator_set *vs0) {
    for (size_t i = 0; i < c->n; i++) {
        char name[24];
        snprintf(name, sizeof name, "n%zu", i);
        node_opts o = {.name = name};
        c->nodes[i] = node_new(c->hub, &c->kp[i], vs0, &o);
        if (!c->nodes[i]) return false;
    }
    return true;
}

static void cluster_dump(cluster *c, const char *why) {
    fprintf(stderr, "\n[%s] FAILED after %.1f s: %s\n", c->name,
            (double)(cu_now_ms() - c->t0) / 1000.0, why);
    for (size_t i = 0; i < c->n; i++) {
        if (c->nodes[i]) node_print_state(c->nodes[i], stderr);
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->nodes[i]) node_dump_trace(c->nodes[i], stderr);
    }
}

/* Stops every replica, then frees the nodes and the hub. Also checks what must hold at the end
 * of every scenario: the codec round-tripped every message and no replica halted. */
static void cluster_free(cluster *c) {
    for (size_t i = 0; i < c->n; i++) {
        if (!c->nodes[i]) continue;
        hs_replica_stats s;
        node_stats(c->nodes[i], &s);
        if (s.halted) {
            fprintf(stderr, "[%s] %s halted: %s\n", c->name, node_name(c->nodes[i]),
                    hs_status_str(s.halt_status));
        }
        CU_ASSERT(!s.halted);
    }
    for (size_t i = 0; i < c->n; i++) {
        if (c->nodes[i]) node_stop(c->nodes[i]);
    }
    if (c->hub) CU_ASSERT_EQUAL(tn_codec_errors(c->hub), 0);
    for (size_t i = 0; i < c->n; i++) node_free(c->nodes[i]);
    tn_hub_free(c->hub);
    printf("\n  scenario %s took %.1f s\n", c->name, (double)(cu_now_ms() - c->t0) / 1000.0);
}

/* Progress lines, so a slow step stands out in the log. */
static void milestone(const cluster *c, const char *what) {
    printf("\n  [%s +%.1f s] %s", c->name, (double)(cu_now_ms() - c->t0) / 1000.0, what);
    fflush(stdout);
}

static uint64_t left_ms(const cluster *c) {
    uint64_t now = cu_now_ms();
    return now < c->deadline ? c->deadline - now : 0;
}

/* Awaits cond within what is left of the scenario's time; on failure records it, prints every
 * node's state and jumps to `done` (cleanup). */
#define AWAIT(c, cond, what)                                                                  \
    do {                                                                                      \
        if (!CU_AWAIT((cond), left_ms(c))) {                                                  \
            cluster_dump((c), (what));                                                        \
            CU_FAIL(what);                                                                    \
            goto done;                                                                        \
        }                                                                                     \
        milestone((c), (what));                                                               \
    } while (0)

#define CHECK(c, cond, what)                                                                  \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            cluster_dump((c), (what));                                                        \
            CU_FAIL(what);                                                                    \
            goto done;                                                                        \
        }                                                                                     \
    } while (0)

/* ---- conditions ---- */

static bool all_number(cluster *c, size_t lo, size_t hi, uint32_t want) {
    for (size_t i = lo; i < hi; i++) {
        if (node_number(c->nodes[i]) != want) return false;
    }
    return true;
}

static bool all_vs_size(cluster *c, size_t lo, size_t hi, uint32_t want) {
    for (size_t i = lo; i < hi; i++) {
        if (node_vs_size(c->nodes[i]) != want) return false;
    }
    return true;
}

static bool all_decided(cluster *c, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) {
        if (!node_vs_decided(c->nodes[i])) return false;
    }
    return true;
}

static bool all_view_at_least(cluster *c, size_t lo, size_t hi, uint64_t v) {
    for (size_t i = lo; i < hi; i++) {
        uint64_t hve = node_highest_view_entered(c->nodes[i]);
        if (hve == UINT64_MAX || hve < v) return false;
    }
    return true;
}

/* Whether every node in [lo, hi) has exactly the committed validator set `want`. */
static bool all_vs_equal(cluster *c, size_t lo, size_t hi, const hs_validator_set *want) {
    for (size_t i = lo; i < hi; i++) {
        hs_validator_set vs;
        if (!node_committed_vs(c->nodes[i], &vs)) return false;
        bool eq = hs_vs_equal(&vs, want);
        hs_vs_free(&vs);
        if (!eq) return false;
    }
    return true;
}

/* A validator set of the cluster's keys from "index:power" pairs, e.g. "4:2 5:4". */
static bool make_vs(cluster *c, hs_validator_set *vs, const char *members) {
    memset(vs, 0, sizeof *vs);
    unsigned idx;
    unsigned long long power;
    int used;
    while (sscanf(members, " %u:%llu%n", &idx, &power, &used) == 2) {
        if (idx >= c->n || hs_vs_put(vs, &c->keys[idx], power) != HS_OK) {
            hs_vs_free(vs);
            return false;
        }
        members += used;
    }
    return vs->n > 0;
}

static bool start_all(cluster *c, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; i++) {
        if (node_start(c->nodes[i]) != HS_OK) return false;
    }
    return true;
}

/* ---- §12.2 progress_and_validator_set_update_test ---- */

static void test_progress_and_vs_update(void) {
    cluster c;
    hs_validator_set vs0 = {0}, vs1 = {0};
    CU_ASSERT_FATAL(cluster_init(&c, "progress_and_validator_set_update", 3));
    CU_ASSERT_FATAL(make_vs(&c, &vs0, "0:1"));
    CU_ASSERT_FATAL(make_vs(&c, &vs1, "0:1 1:1 2:1"));
    CHECK(&c, cluster_add_nodes(&c, &vs0), "create nodes");
    CHECK(&c, start_all(&c, 0, 3), "start nodes");

    /* VS0 = {n0:1}: n0 alone is a quorum; n1 and n2 are listeners. */
    CHECK(&c, napp_submit_increment(node_app(c.nodes[0])), "submit");
    AWAIT(&c, all_number(&c, 0, 3, 1), "number 1 on all three nodes");
    CHECK(&c, all_vs_size(&c, 0, 3, 1), "VS0 still in force before the update");

    /* Both in the same transaction batch; phased mode commits the update, new quorum 3. */
    napp_tx add[2] = {{.kind = NAPP_SET_VALIDATOR, .key = c.keys[1], .power = 1},
                      {.kind = NAPP_SET_VALIDATOR, .key = c.keys[2], .power = 1}};
    CHECK(&c, napp_submit(node_app(c.nodes[0]), add, 2), "submit");
    AWAIT(&c, all_vs_size(&c, 0, 3, 3), "committed VS of 3 members on every node");
    CHECK(&c, all_vs_equal(&c, 0, 3, &vs1), "committed VS is {n0:1, n1:1, n2:1}");
    /* Until the update is decided both n0 (old set) and the new set's leader may lead a view:
     * a Nudge and a Proposal can then split that view's votes (one vote per view) and the
     * view fails, taking the transactions of its proposal with it (NumberApp empties its queue
     * into every block it produces). So submit only once every node has decided. */
    AWAIT(&c, all_decided(&c, 0, 3), "the update is decided on every node");

    /* With quorum 3 every increment needs all three validators; each one's tx only enters a
     * block that node itself produces, so all three must lead. */
    for (size_t i = 0; i < 3; i++)
        CHECK(&c, napp_submit_increment(node_app(c.nodes[i])), "submit");
    AWAIT(&c, all_number(&c, 0, 3, 4), "number 4 on all three nodes");
done:
    cluster_free(&c);
    hs_vs_free(&vs0);
    hs_vs_free(&vs1);
}

/* ---- §12.3 pacemaker_initial_view_sync_test ---- */

static void test_pacemaker_initial_view_sync(void) {
    cluster c;
    hs_validator_set vs0 = {0};
    CU_ASSERT_FATAL(cluster_init(&c, "pacemaker_initial_view_sync", 2));
    CU_ASSERT_FATAL(make_vs(&c, &vs0, "0:1 1:1"));
    CHECK(&c, cluster_add_nodes(&c, &vs0), "create nodes");
    CHECK(&c, start_all(&c, 0, 1), "start node 1");

    /* Alone, node 1 times out in view 0 (an epoch-change view) and re-votes every view time,
     * but one of two equal validators cannot form TC(0): it must stay in view 0. This is the
     * one fixed wait - what is asserted is that nothing happens - and it spans six view
     * timeouts. */
    cu_sleep_ms(6 * NODE_MAX_VIEW_TIME_MS);
    node_counters k;
    node_get_counters(c.nodes[0], &k);
    CHECK(&c, k.view_timeouts >= 2 && k.timeout_votes >= 2,
          "node 1 timed out and sent timeout votes in view 0");
    CHECK(&c, node_highest_view_entered(c.nodes[0]) == 0, "node 1 alone stays in view 0");
    hs_replica_stats s;
    node_stats(c.nodes[0], &s);
    CHECK(&c, s.view == 0, "node 1's pacemaker is still in view 0");

    /* Node 2 joins: TC(0) forms, AdvanceView moves both to view 1. */
    CHECK(&c, start_all(&c, 1, 2), "start node 2");
    AWAIT(&c, all_view_at_least(&c, 0, 2, 1), "both nodes entered a view >= 1");

    CHECK(&c, napp_submit_increment(node_app(c.nodes[0])), "submit");
    AWAIT(&c, all_number(&c, 0, 2, 1), "number 1 on both nodes");
done:
    cluster_free(&c);
    hs_vs_free(&vs0);
}

/* ---- §12.4 multiple_validator_set_updates_test ---- */

static void test_multiple_vs_updates(void) {
    cluster c;
    hs_validator_set vs0 = {0}, vs_a = {0}, vs_b = {0}, vs_c = {0};
    CU_ASSERT_FATAL(cluster_init(&c, "multiple_validator_set_updates", 6));
    CU_ASSERT_FATAL(make_vs(&c, &vs0, "0:1 1:1"));
    CU_ASSERT_FATAL(make_vs(&c, &vs_a, "0:1 1:1 2:1"));
    CU_ASSERT_FATAL(make_vs(&c, &vs_b, "0:1 1:1 2:1 3:3"));
    CU_ASSERT_FATAL(make_vs(&c, &vs_c, "4:2 5:4"));
    CHECK(&c, cluster_add_nodes(&c, &vs0), "create nodes");
    CHECK(&c, start_all(&c, 0, 6), "start nodes");

    /* (a) */
    CHECK(&c, napp_submit_set_validator(node_app(c.nodes[0]), &c.keys[2], 1), "submit");
    AWAIT(&c, all_vs_size(&c, 0, 6, 3), "(a) VS of 3 on every node");
    CHECK(&c, all_vs_equal(&c, 0, 6, &vs_a), "(a) VS is {n0:1, n1:1, n2:1}");
    /* As in the first scenario, submit the next update only after this one is decided. */
    AWAIT(&c, all_decided(&c, 0, 6), "(a) decided on every node");

    /* (b) total power 6, quorum 5: n3 cannot decide alone, nor without n3. */
    CHECK(&c, napp_submit_set_validator(node_app(c.nodes[1]), &c.keys[3], 3), "submit");
    AWAIT(&c, all_vs_size(&c, 0, 6, 4), "(b) VS of 4 on every node");
    CHECK(&c, all_vs_equal(&c, 0, 6, &vs_b), "(b) VS is {n0:1, n1:1, n2:1, n3:3}");
    AWAIT(&c, all_decided(&c, 0, 6), "(b) decided on every node");

    /* (c) one block replaces the whole set with a disjoint one: the Decide PC must come from
     * n4 and n5. */
    napp_tx swap[6] = {
        {.kind = NAPP_SET_VALIDATOR, .key = c.keys[4], .power = 2},
        {.kind = NAPP_SET_VALIDATOR, .key = c.keys[5], .power = 4},
        {.kind = NAPP_DELETE_VALIDATOR, .key = c.keys[0]},
        {.kind = NAPP_DELETE_VALIDATOR, .key = c.keys[1]},
        {.kind = NAPP_DELETE_VALIDATOR, .key = c.keys[2]},
        {.kind = NAPP_DELETE_VALIDATOR, .key = c.keys[3]},
    };
    CHECK(&c, napp_submit(node_app(c.nodes[1]), swap, 6), "submit");
    AWAIT(&c, all_vs_size(&c, 0, 6, 2), "(c) VS of 2 on every node");
    CHECK(&c, all_vs_equal(&c, 0, 6, &vs_c), "(c) VS is {n4:2, n5:4}");
    AWAIT(&c, all_decided(&c, 0, 6), "(c) the swap is decided on every node");

    /* (d) VS2 alone makes progress: cut n0..n3 off the network (they could not help even as
     * listeners), then an increment submitted to n4 must commit on n4 and n5. */
    for (size_t i = 0; i < 4; i++) tn_set_disconnected(c.hub, &c.keys[i], true);
    CHECK(&c, napp_submit_increment(node_app(c.nodes[4])), "submit");
    AWAIT(&c, all_number(&c, 4, 6, 1), "(d) number 1 on n4 and n5 with n0..n3 cut off");
    CHECK(&c, all_number(&c, 0, 4, 0), "(d) the cut-off nodes did not see it");

    /* The old validators come back as listeners and catch up. */
    for (size_t i = 0; i < 4; i++) tn_set_disconnected(c.hub, &c.keys[i], false);
    AWAIT(&c, all_number(&c, 0, 6, 1), "(d) number 1 on every node after reconnecting");
done:
    cluster_free(&c);
    hs_vs_free(&vs0);
    hs_vs_free(&vs_a);
    hs_vs_free(&vs_b);
    hs_vs_free(&vs_c);
}

/* ---- §12.5 block_sync_test ---- */

/* Evidence that node i's blocks came through Block Sync: it started a sync, BlockSyncResponses
 * reached it, and it inserted blocks between StartSync and EndSync. */
static bool got_blocks_by_sync(cluster *c, size_t i) {
    node_counters k;
    node_get_counters(c->nodes[i], &k);
    tn_stats st;
    return tn_get_stats(c->hub, &c->keys[i], &st) && k.start_syncs > 0 &&
           st.received_by_type[HS_MSG_SYNC_RESPONSE] > 0 && k.inserts_while_syncing > 0;
}

static void test_block_sync(void) {
    cluster c;
    hs_validator_set vs0 = {0};
    CU_ASSERT_FATAL(cluster_init(&c, "block_sync", 4));
    CU_ASSERT_FATAL(make_vs(&c, &vs0, "0:1 1:1 2:1"));
    CHECK(&c, cluster_add_nodes(&c, &vs0), "create nodes");

    /* The hub would queue every message for the late node, which could then replay the whole
     * history from its inbox without ever syncing. A node that joins late has missed that
     * traffic, so keep it cut off until it starts. The proposals of the blocks carrying the
     * two increments were then never delivered to it: reaching number 2 proves Block Sync. */
    tn_set_disconnected(c.hub, &c.keys[3], true);
    CHECK(&c, start_all(&c, 0, 3), "start n0..n2");
    CHECK(&c, napp_submit_increment(node_app(c.nodes[0])), "submit");
    CHECK(&c, napp_submit_increment(node_app(c.nodes[1])), "submit");
    AWAIT(&c, all_number(&c, 0, 3, 2), "number 2 on n0..n2");

    tn_set_disconnected(c.hub, &c.keys[3], false);
    CHECK(&c, start_all(&c, 3, 4), "start the late listener n3");
    AWAIT(&c, all_number(&c, 3, 4, 2), "number 2 on the late node");
    AWAIT(&c, got_blocks_by_sync(&c, 3), "the late node got its blocks through Block Sync");

    /* The servers keep extending the chain while it syncs (no App delays: hundreds of blocks a
     * second), so the sync itself may run on for a while; what it synced so far: */
    node_counters k;
    node_get_counters(c.nodes[3], &k);
    tn_stats st;
    tn_get_stats(c.hub, &c.keys[3], &st);
    printf("\n  late node: %" PRIu64 " sync(s) started, %" PRIu64 " sync responses, %" PRIu64
           " blocks inserted while syncing",
           k.start_syncs, st.received_by_type[HS_MSG_SYNC_RESPONSE], k.inserts_while_syncing);
done:
    cluster_free(&c);
    hs_vs_free(&vs0);
}

static const cu_test tests[] = {
    {"progress_and_validator_set_update", test_progress_and_vs_update},
    {"pacemaker_initial_view_sync", test_pacemaker_initial_view_sync},
    {"multiple_validator_set_updates", test_multiple_vs_updates},
    {"block_sync", test_block_sync},
    {NULL, NULL},
};

int main(void) { return cu_run("scenarios", tests); }
