/* test_faults.c - four equal hotstuffd validators keep committing with one of them down.
 *
 * One cluster from `hotstuffctl testnet --validators 4` (equal powers, the default liveness
 * choices of docs/liveness.md, max_view_time 1000 ms). The tests run in order:
 *   1. the cluster commits; one transaction submitted to the idle chain commits fast;
 *   2. kill -9 of every position in turn - first the replica that has just proposed (the
 *      leader of the view in progress), then the others: every live replica commits a new
 *      height within 3 x max_view_time of the kill, and keeps committing (at least
 *      MIN_RATE_HEIGHTS in the next 10 s); the killed one restarts and catches up;
 *   3. two down (quorum lost): no replica commits past what was already certified; one of the
 *      two restarts: commits resume; the second restarts and catches up;
 *   4. every replica logged the same block at every height it committed.
 * Conditions are awaited by polling the logs; the only fixed-length wait is the window in
 * which commits must NOT happen (3 x max_view_time), which cannot be awaited.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h"
#include "e2e.h"

/* The latency bounds below are the product's claims, checked as stated in the plain build.
 * A sanitizer build runs the replicas' own work (signatures, hashing, encoding) two to three
 * times slower while the protocol's timeouts stay the same, so there the bounds get half as
 * much again: what those builds check is memory and thread safety, not speed. (CI saw a kill
 * resume after 3,012 ms under ASan: two view timeouts plus three slowed views.) */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SAN_STRETCH(ms) ((ms) * 3 / 2)
#else
#define SAN_STRETCH(ms) (ms)
#endif

#define NODES 4
#define VIEW_MS 1000
#define RESUME_MS SAN_STRETCH(3 * VIEW_MS)
#define MIN_RATE_HEIGHTS 8 /* in 10 s; an idle chain makes about 4 blocks a second */
#define WAIT_MS 90000      /* generous: sanitizer builds on a loaded machine */
#define IDLE_SUBMITS 5
#define IDLE_BOUND_MS SAN_STRETCH(400) /* the reference takes about 810 ms */

static int live_except(int a, int b, int *out) {
    int n = 0;
    for (int i = 0; i < NODES; i++)
        if (i != a && i != b) out[n++] = i;
    return n;
}

static int64_t max_height(const int *nodes, int n) {
    int64_t h = -1;
    for (int i = 0; i < n; i++) {
        int64_t x = e2e_log_height(nodes[i]);
        if (x > h) h = x;
    }
    return h;
}

static int count_lines(int node, const char *needle) {
    char *log = e2e_read_log(node);
    int k = 0;
    for (char *p = log; p && (p = strstr(p, needle)); p++) k++;
    free(log);
    return k;
}

static void dump_all(void) {
    for (int i = 0; i < NODES; i++) e2e_dump_log_tail(i, 2500);
}

static void test_cluster_up(void) {
    e2e_require_programs();
    e2e_prepare("/tmp/hs-faults-XXXXXX", &(e2e_ports){21000, 17, 200, NODES, 100});
    char port[16], view[16], out[4096];
    snprintf(port, sizeof port, "%d", e2e_base_port());
    snprintf(view, sizeof view, "%d", VIEW_MS);
    const char *argv[] = {e2e_ctl(), "testnet", "--validators", "4", "--dir", e2e_dir(),
                          "--base-port", port, "--max-view-time-ms", view, "--log-level",
                          "debug", NULL};
    int rc = e2e_run(argv, out, sizeof out, 30000);
    if (rc != 0) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(e2e_start_node(i) > 0);
    const int all[NODES] = {0, 1, 2, 3};
    bool ok = CU_AWAIT(e2e_all_reach(all, NODES, 3), WAIT_MS);
    if (!ok) dump_all();
    CU_ASSERT_FATAL(ok);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One transaction on an idle chain commits within a few round trips: no block behind it waits
 * for more transactions (kvapp.c). Today's figure is the benchmark's (bench/idle-latency.sh,
 * about 40 ms); the test asserts only a generous bound on the median of five, timed around
 * `hotstuffctl submit --wait` (process start included). The reference waited 250 ms before
 * each of the three blocks that commit it: about 810 ms. */
static void test_idle_submit_commits_fast(void) {
    char addr[64], key[16], out[4096];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", e2e_base_port() + 100);
    uint64_t took[IDLE_SUBMITS];
    for (int k = 0; k < IDLE_SUBMITS; k++) {
        snprintf(key, sizeof key, "idle%d", k);
        const char *argv[] = {e2e_ctl(), "--addr", addr, "--timeout-ms", "10000", "submit",
                              "--wait", "put", key, "v", NULL};
        uint64_t t0 = cu_now_ms();
        int rc = e2e_run(argv, out, sizeof out, 20000);
        took[k] = cu_now_ms() - t0;
        if (rc != 0) fprintf(stderr, "\n%s\n", out);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "committed at height"));
        /* Idle again: the pipeline behind the transaction commits and empties. */
        int64_t h = e2e_log_height(0);
        CU_AWAIT(e2e_log_height(0) >= h + 3, WAIT_MS);
    }
    qsort(took, IDLE_SUBMITS, sizeof took[0], cmp_u64);
    fprintf(stderr, "\n  idle submit --wait: median %llu ms (min %llu, max %llu)\n",
            (unsigned long long)took[IDLE_SUBMITS / 2], (unsigned long long)took[0],
            (unsigned long long)took[IDLE_SUBMITS - 1]);
    CU_ASSERT(took[IDLE_SUBMITS / 2] < IDLE_BOUND_MS);
}

/* The replica whose log shows the next proposal: the leader of the view now in progress. */
static int next_proposer(void) {
    int before[NODES];
    for (int i = 0; i < NODES; i++) before[i] = count_lines(i, "msg=\"proposed height=");
    int who = -1;
    CU_AWAIT(({
                 for (int i = 0; i < NODES && who < 0; i++)
                     if (count_lines(i, "msg=\"proposed height=") > before[i]) who = i;
                 who >= 0;
             }),
             WAIT_MS);
    return who;
}

static void kill_one(int victim) {
    int live[NODES];
    int n = live_except(victim, -1, live);
    int64_t h = max_height(live, n);
    uint64_t t0 = cu_now_ms();
    CU_ASSERT_EQUAL(e2e_stop_node(victim, SIGKILL, 30000), -1);
    bool ok = CU_AWAIT(e2e_all_reach(live, n, h + 1), WAIT_MS);
    uint64_t resumed = cu_now_ms() - t0;
    ok = ok && CU_AWAIT(e2e_all_reach(live, n, h + 3), WAIT_MS);
    uint64_t three = cu_now_ms() - t0;
    /* The figures the README quotes come from these lines. */
    fprintf(stderr, "\n  node%d killed at height %lld: every live replica committed a new height "
            "after %llu ms, three after %llu ms", victim, (long long)h,
            (unsigned long long)resumed, (unsigned long long)three);
    if (!ok) dump_all();
    CU_ASSERT_FATAL(ok);
    CU_ASSERT(resumed <= RESUME_MS);
    /* And it keeps committing. */
    int64_t from = max_height(live, n);
    uint64_t t1 = cu_now_ms();
    ok = CU_AWAIT(e2e_all_reach(live, n, from + MIN_RATE_HEIGHTS), 10000);
    fprintf(stderr, "; %d more heights took %llu ms", MIN_RATE_HEIGHTS,
            (unsigned long long)(cu_now_ms() - t1));
    CU_ASSERT(ok);
    /* It comes back and catches up: it commits the height the others are at (a target that
     * moves on until it keeps pace), so the next kill finds four live replicas. */
    CU_ASSERT_FATAL(e2e_start_node(victim) > 0);
    ok = CU_AWAIT(e2e_log_height(victim) >= max_height(live, n), WAIT_MS);
    if (!ok) e2e_dump_log_tail(victim, 3000);
    CU_ASSERT(ok);
}

static void test_kill_each_position(void) {
    int first = next_proposer();
    CU_ASSERT_FATAL(first >= 0);
    kill_one(first);
    for (int i = 0; i < NODES; i++)
        if (i != first) kill_one(i);
    fprintf(stderr, "\n");
}

static void test_quorum_lost_and_regained(void) {
    int live[NODES];
    int n = live_except(1, 2, live);
    CU_ASSERT_EQUAL(e2e_stop_node(1, SIGKILL, 30000), -1);
    CU_ASSERT_EQUAL(e2e_stop_node(2, SIGKILL, 30000), -1);
    int64_t h = max_height(live, n);
    /* Blocks already certified may still commit: at most the two of the pipeline. */
    cu_sleep_ms(RESUME_MS);
    int64_t stalled = max_height(live, n);
    CU_ASSERT(stalled <= h + 2);
    cu_sleep_ms(RESUME_MS); /* and nothing more in the next window */
    CU_ASSERT_EQUAL(max_height(live, n), stalled);
    CU_ASSERT_FATAL(e2e_start_node(2) > 0);
    n = live_except(1, -1, live);
    bool ok = CU_AWAIT(e2e_all_reach(live, n, stalled + 3), WAIT_MS);
    if (!ok) dump_all();
    CU_ASSERT(ok);
    CU_ASSERT_FATAL(e2e_start_node(1) > 0);
    const int all[NODES] = {0, 1, 2, 3};
    int64_t target = max_height(live, n) + 2;
    ok = CU_AWAIT(e2e_all_reach(all, NODES, target), WAIT_MS);
    if (!ok) dump_all();
    CU_ASSERT(ok);
}

static void test_agreement(void) {
    int64_t compared = e2e_check_agreement(NODES);
    fprintf(stderr, "\n  %lld (node, node, height) triples compared, all equal\n",
            (long long)compared);
    for (int i = 0; i < NODES; i++) CU_ASSERT_EQUAL(e2e_stop_node(i, SIGTERM, 30000), 0);
}

int main(void) {
    static const cu_test tests[] = {
        {"4 equal validators commit", test_cluster_up},
        {"one transaction on an idle chain commits fast", test_idle_submit_commits_fast},
        {"kill -9 of each position, the leader first: commits go on", test_kill_each_position},
        {"two down: commits stop; one back: they resume", test_quorum_lost_and_regained},
        {"every replica committed the same blocks", test_agreement},
        {NULL, NULL}};
    return e2e_run_suite("faults", "faults", tests);
}
