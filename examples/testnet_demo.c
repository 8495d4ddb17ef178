/* examples/testnet_demo.c - four in-process replicas committing NumberApp blocks.
 *
 *   testnet_demo [--blocks N] [--seconds S] [--delay-ms D]
 *
 * Starts 4 validators (memory stores, the in-process network, NumberApp) and prints one line per
 * committed block per replica:
 *
 *   replica 0 committed height 12 hash Id5u7f6 number=11
 *
 * An Increment is kept waiting in every replica's App, so most blocks carry one. Stops cleanly
 * on Ctrl-C, after S seconds, or once every replica committed N blocks. D is how long
 * produce_block takes (default 100 ms), which paces the chain for human eyes.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu.h" /* cu_now_ms, cu_sleep_ms */
#include "node.h"

#define REPLICAS 4

typedef struct replica_view {
    int idx;
    uint32_t number;             /* running total of committed Increments (event bus thread) */
    atomic_uint_fast64_t commits;
} replica_view;

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Runs on the replica's event bus thread, once per committed block, oldest first. */
static void on_commit(void *ctx, node *n, const hs_hash *hash) {
    replica_view *rv = ctx;
    hs_kv_store kv = node_kv(n);
    hs_kv_reader r;
    hs_block b;
    memset(&b, 0, sizeof b);
    if (kv.snapshot(kv.self, &r) != HS_OK) return;
    hs_status st = hs_bt_block(&r, hash, &b);
    kv.release_snapshot(kv.self, &r);
    char h64[8];
    hs_b64_short(hash->b, HS_HASH_LEN, h64);
    if (st != HS_OK) {
        fprintf(stderr, "replica %d: cannot read committed block %s: %s\n", rv->idx, h64,
                hs_status_str(st));
        return;
    }
    int64_t inc = napp_count_increments(&b.data);
    if (inc > 0) rv->number += (uint32_t)inc;
    printf("replica %d committed height %" PRIu64 " hash %s number=%u\n", rv->idx, b.height, h64,
           rv->number);
    fflush(stdout);
    hs_block_free(&b);
    atomic_fetch_add(&rv->commits, 1);
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return false;
    *out = v;
    return true;
}

static void usage(FILE *f) {
    fprintf(f, "usage: testnet_demo [--blocks N] [--seconds S] [--delay-ms D]\n"
               "  --blocks N    stop once every replica committed N blocks\n"
               "  --seconds S   stop after S seconds\n"
               "  --delay-ms D  produce_block takes D ms (default 100)\n"
               "Without limits it runs until Ctrl-C.\n");
}

int main(int argc, char **argv) {
    uint64_t blocks = 0, seconds = 0, delay = 100;
    for (int i = 1; i < argc; i++) {
        uint64_t *dst = NULL;
        if (!strcmp(argv[i], "--blocks")) dst = &blocks;
        else if (!strcmp(argv[i], "--seconds")) dst = &seconds;
        else if (!strcmp(argv[i], "--delay-ms")) dst = &delay;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
        if (!dst || i + 1 >= argc || !parse_u64(argv[i + 1], dst) ||
            (dst == &delay && delay > UINT_MAX)) {
            usage(stderr);
            return 2;
        }
        i++;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = 1;
    hs_keypair kp[REPLICAS];
    hs_key keys[REPLICAS];
    hs_validator_set vs0 = {0};
    node *nodes[REPLICAS] = {0};
    tn_hub *hub = NULL;
    replica_view views[REPLICAS];
    memset(views, 0, sizeof views);
    for (uint32_t i = 0; i < REPLICAS; i++) {
        node_test_keypair(i, &kp[i]);
        keys[i] = kp[i].public_key;
        if (hs_vs_put(&vs0, &keys[i], 1) != HS_OK) goto out;
    }
    hub = tn_hub_new(keys, REPLICAS);
    if (!hub) goto out;
    for (int i = 0; i < REPLICAS; i++) {
        char name[16];
        snprintf(name, sizeof name, "replica%d", i);
        node_opts o = {.name = name, .produce_delay_ms = (unsigned)delay};
        nodes[i] = node_new(hub, &kp[i], &vs0, &o);
        if (!nodes[i]) goto stop;
        views[i].idx = i;
        atomic_init(&views[i].commits, 0);
        node_set_commit_hook(nodes[i], on_commit, &views[i]);
    }
    for (int i = 0; i < REPLICAS; i++) {
        if (node_start(nodes[i]) != HS_OK) goto stop;
    }
    fprintf(stderr, "4 replicas running (view time %d ms, produce delay %" PRIu64 " ms)%s\n",
            NODE_MAX_VIEW_TIME_MS, delay, blocks || seconds ? "" : "; Ctrl-C to stop");

    uint64_t t0 = cu_now_ms();
    for (;;) {
        if (interrupted) break;
        if (seconds && cu_now_ms() - t0 >= seconds * 1000) break;
        if (blocks) {
            bool all = true;
            for (int i = 0; i < REPLICAS; i++)
                all = all && atomic_load(&views[i].commits) >= blocks;
            if (all) break;
        }
        /* Keep one Increment waiting in every App: whoever leads next puts it in its block. */
        for (int i = 0; i < REPLICAS; i++) {
            if (napp_queued(node_app(nodes[i])) == 0) napp_submit_increment(node_app(nodes[i]));
        }
        cu_sleep_ms(20);
    }
    rc = 0;
stop:
    for (int i = 0; i < REPLICAS; i++) {
        if (nodes[i]) node_stop(nodes[i]);
    }
    for (int i = 0; i < REPLICAS; i++) {
        if (!nodes[i]) continue;
        /* From the store: the last few CommitBlock events may not have been handled when the
         * event bus stopped. */
        fprintf(stderr, "replica %d: committed height %" PRId64 ", number=%u\n", i,
                node_committed_height(nodes[i]), node_number(nodes[i]));
        node_free(nodes[i]);
    }
    tn_hub_free(hub);
out:
    hs_vs_free(&vs0);
    return rc;
}
