/* test_cluster.c - hotstuffd as separate processes over gRPC on loopback.
 *
 * One cluster for the whole suite, from `hotstuffctl testnet` in a mkdtemp directory: four
 * validators and one listener. The tests run in order, each building on the state the
 * previous one left:
 *   1. every node commits blocks;
 *   2. transactions submitted to a validator and to the listener commit on every node, and
 *      hotstuffctl reports refusals and an unreachable server;
 *   3. kill -9 of a validator: the others keep committing;
 *   4. the validator restarts and catches up (block sync) to the same chain;
 *   5. a validator-set update adds the listener and removes a validator; with two old
 *      validators then down, only the new set can still commit - and it does;
 * Powers are {2, 2, 2, 1} with node3 the one killed: unequal powers here; test_faults.c kills
 * every position of four equal validators (which the reference's round robin could not survive,
 * docs/liveness.md).
 *   6. SIGTERM stops the rest with exit 0; every store, opened read-only afterwards, holds
 *      the same chain and the submitted values; a data directory refuses another genesis.
 * Conditions are awaited by polling the nodes' logs (debug level: one line per committed block
 * and per committed transaction) with timeouts; nothing sleeps for a fixed time.
 *
 * Children (tests/common/e2e.h): each daemon runs with PR_SET_PDEATHSIG, and an atexit hook
 * (also run from a SIGTERM/SIGINT handler) kills whatever is left, so no hotstuffd outlives
 * the test.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "cu.h"
#include "e2e.h"
#include "hotstuff/hotstuff.h"
#include "app/kvapp.h"
#include "config/node_config.h"

#define VALIDATORS 4
#define LISTENERS 1
#define NODES (VALIDATORS + LISTENERS)
#define VIEW_MS 1000
/* Within an epoch every view has a fixed deadline, so views that end early bank time for a
 * later one whose leader is down (spec §4.2): short epochs bound that wait. */
#define EPOCH_LENGTH 10
#define WAIT_MS 90000 /* generous: sanitizer builds on a loaded machine */

static hs_key keys[NODES];

/* ---- logs ---- */


/* Blocks the node reports having received through Block Sync. */
static uint64_t synced_blocks(int node) {
    char *log = e2e_read_log(node);
    uint64_t total = 0;
    const char *tag = "ended blocks=";
    for (char *p = log; p && (p = strstr(p, tag)); p++)
        total += strtoull(p + strlen(tag), NULL, 10);
    free(log);
    return total;
}


static void dump_tail(int node) {
    e2e_dump_log_tail(node, 3000);
}

/* ---- hotstuffctl ---- */

/* Submits; on success copies the transaction hash (hex) into hash. Returns the exit code. */
static int submit(int node, const char *const *op, char *hash, char *out, size_t cap) {
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", e2e_base_port() + node);
    const char *argv[16] = {e2e_ctl(), "submit", "--addr", addr, "--timeout-ms", "10000"};
    int k = 6;
    for (int i = 0; op[i] && k < 15; i++) argv[k++] = op[i];
    argv[k] = NULL;
    int rc = e2e_run(argv, out, cap, 20000);
    const char *a = strstr(out, "accepted tx ");
    if (hash) {
        hash[0] = '\0';
        if (rc == 0 && a) snprintf(hash, 65, "%.64s", a + strlen("accepted tx "));
    }
    return rc;
}

static bool tx_committed_everywhere(const char *hash, const int *nodes, int n) {
    char needle[128];
    snprintf(needle, sizeof needle, "committed tx=%.64s", hash);
    for (int i = 0; i < n; i++) {
        if (!e2e_log_has(nodes[i], needle)) return false;
    }
    return true;
}

static void key_hex(const hs_key *k, char out[65]) {
    sodium_bin2hex(out, 65, k->b, HS_KEY_LEN);
}

/* Rewrites consensus.epoch_length in node i's config.json. */
static bool set_epoch_length(int i, int views) {
    char path[512];
    e2e_path(i, "config.json", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *doc = cJSON_Parse(text);
    cJSON *cons = cJSON_GetObjectItemCaseSensitive(doc, "consensus");
    cJSON *e = cJSON_GetObjectItemCaseSensitive(cons, "epoch_length");
    bool ok = e && cJSON_IsNumber(e);
    if (ok) cJSON_SetNumberValue(e, views);
    char *out = ok ? cJSON_Print(doc) : NULL;
    cJSON_Delete(doc);
    f = out ? fopen(path, "w") : NULL;
    ok = f && fputs(out, f) >= 0;
    if (f) ok = fclose(f) == 0 && ok;
    cJSON_free(out);
    return ok;
}

/* ---- the suite ---- */

static const int everyone[NODES] = {0, 1, 2, 3, 4};
static const char *const put_keys[3] = {"alpha", "beta", "gamma"};
static const char *const put_values[3] = {"1", "2", "3"};

static void test_cluster_commits(void) {
    e2e_require_programs();
    /* NODES consecutive free ports, from one derived from the PID. */
    e2e_prepare("/tmp/hs-e2e-XXXXXX", &(e2e_ports){20000, 13, 200, NODES, 0});
    char port[16], view[16], out[4096];
    snprintf(port, sizeof port, "%d", e2e_base_port());
    snprintf(view, sizeof view, "%d", VIEW_MS);
    const char *argv[] = {e2e_ctl(), "testnet", "--validators", "4", "--listeners", "1",
                          "--dir", e2e_dir(), "--base-port", port, "--max-view-time-ms", view,
                          "--log-level", "debug", "--powers", "2,2,2,1", NULL};
    int rc = e2e_run(argv, out, sizeof out, 30000);
    if (rc != 0) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(set_epoch_length(i, EPOCH_LENGTH));
    for (int i = 0; i < NODES; i++) {
        char path[512], err[512];
        hs_keypair kp;
        e2e_path(i, "key.json", path, sizeof path);
        CU_ASSERT_EQUAL_FATAL(node_key_load(path, &kp, err, sizeof err), HS_OK);
        keys[i] = kp.public_key;
    }
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(e2e_start_node(i) > 0);
    bool ok = CU_AWAIT(e2e_all_reach(everyone, NODES, 3), WAIT_MS);
    if (!ok)
        for (int i = 0; i < NODES; i++) dump_tail(i);
    CU_ASSERT_FATAL(ok);
}

static void test_transactions_everywhere(void) {
    char hash[3][65], out[4096];
    int via[3] = {0, 2, 4}; /* two validators and the listener */
    for (int k = 0; k < 3; k++) {
        const char *op[] = {"put", put_keys[k], put_values[k], NULL};
        int rc = submit(via[k], op, hash[k], out, sizeof out);
        if (rc != 0) fprintf(stderr, "\n%s\n", out);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(strlen(hash[k]), 64);
    }
    for (int k = 0; k < 3; k++) {
        bool ok = CU_AWAIT(tx_committed_everywhere(hash[k], everyone, NODES), WAIT_MS);
        if (!ok) fprintf(stderr, "\n  tx %s (via node%d) not committed everywhere\n", hash[k],
                         via[k]);
        CU_ASSERT(ok);
    }
    /* Refusals come back with their gRPC status and a non-zero exit. */
    const char *bad_vs[] = {"update-validators", "--admin-key", NULL, "--chain-id", "1",
                            NULL, NULL};
    char keyfile[512], update[128];
    e2e_path(0, "key.json", keyfile, sizeof keyfile); /* not the admin key */
    char hex[65];
    key_hex(&keys[4], hex);
    snprintf(update, sizeof update, "%s:1", hex);
    bad_vs[2] = keyfile;
    bad_vs[5] = update;
    CU_ASSERT_EQUAL(submit(1, bad_vs, NULL, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "INVALID_ARGUMENT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bad signature"));
    /* Nothing listens on the base port + NODES. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", e2e_base_port() + NODES);
    const char *down[] = {e2e_ctl(), "submit", "--addr", addr, "--timeout-ms", "2000", "put", "k",
                          "v", NULL};
    CU_ASSERT_EQUAL(e2e_run(down, out, sizeof out, 20000), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "UNAVAILABLE"));
}

static int64_t killed_at;

static void test_kill_validator(void) {
    CU_ASSERT_EQUAL(e2e_stop_node(3, SIGKILL, 30000), -1);
    int64_t h = e2e_log_height(0);
    killed_at = h;
    const int rest[] = {0, 1, 2, 4};
    bool ok = CU_AWAIT(e2e_all_reach(rest, 4, h + 5), WAIT_MS);
    if (!ok) dump_tail(0);
    CU_ASSERT(ok);
}




static void test_restart_catches_up(void) {
    int64_t target = e2e_log_height(0);
    CU_ASSERT_FATAL(e2e_start_node(3) > 0);
    bool ok = CU_AWAIT(e2e_log_height(3) >= target && e2e_log_has(3, "msg=\"running\""), WAIT_MS);
    if (!ok) dump_tail(3);
    CU_ASSERT(ok);
    CU_ASSERT(target > killed_at);
    CU_ASSERT(CU_AWAIT(synced_blocks(3) > 0, WAIT_MS)); /* through Block Sync */
    /* It keeps up afterwards too. */
    int64_t later = e2e_log_height(0) + 3;
    CU_ASSERT(CU_AWAIT(e2e_log_height(3) >= later, WAIT_MS));
    e2e_check_agreement(NODES);
}

static void test_validator_set_update(void) {
    /* Add the listener (node4) and remove node3. */
    char admin[512], genesis[512], add[100], del[100], out[4096], hash[65], hex[65];
    snprintf(admin, sizeof admin, "%s/admin_key.json", e2e_dir());
    e2e_path(0, "genesis.json", genesis, sizeof genesis);
    key_hex(&keys[4], hex);
    snprintf(add, sizeof add, "%s:4", hex);
    key_hex(&keys[3], hex);
    snprintf(del, sizeof del, "%s:0", hex);
    const char *op[] = {"update-validators", "--admin-key", admin, "--genesis", genesis, add, del,
                        NULL};
    int rc = submit(1, op, hash, out, sizeof out);
    if (rc != 0) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    bool ok = CU_AWAIT(tx_committed_everywhere(hash, everyone, NODES) &&
                           e2e_log_has(0, "validator set updated") &&
                           e2e_log_has(4, "validator set updated"),
                       WAIT_MS);
    CU_ASSERT_FATAL(ok);
    /* A few more blocks: the update is decided (its Decide PC precedes any child). */
    int64_t h = e2e_log_height(0);
    CU_ASSERT_FATAL(CU_AWAIT(e2e_all_reach(everyone, NODES, h + 3), WAIT_MS));

    /* Down two of the old validators. Old set {0:2, 1:2, 2:2, 3:1}: 0 and 1 hold 4 of 7, short
     * of the quorum of 5. New set {0:2, 1:2, 2:2, 4:4}: 0, 1 and 4 hold 8 of 10, a quorum of
     * 7, and its leader order (two rounds of all four, then node4 twice) always has four live
     * leaders in a row, which pipelined commits need. So commits now prove the new set. */
    CU_ASSERT_EQUAL(e2e_stop_node(2, SIGKILL, 30000), -1);
    CU_ASSERT_EQUAL(e2e_stop_node(3, SIGKILL, 30000), -1);
    h = e2e_log_height(0);
    const int rest[] = {0, 1, 4};
    ok = CU_AWAIT(e2e_all_reach(rest, 3, h + 5), WAIT_MS);
    if (!ok) {
        dump_tail(0);
        dump_tail(4);
    }
    CU_ASSERT(ok);
}

/* What a stopped node's store holds. */
typedef struct stored {
    bool opened;
    bool values_ok;      /* every put_keys[k] = put_values[k] */
    uint64_t committed;  /* highest committed height */
} stored;

static hs_status open_store(int i, hs_leveldb_store **db) {
    char data[512], err[512];
    e2e_path(i, "data", data, sizeof data);
    hs_leveldb_options o = hs_leveldb_options_default();
    o.create_if_missing = false;
    hs_status st = hs_leveldb_store_open(data, &o, db, err, sizeof err);
    if (st != HS_OK) fprintf(stderr, "\n  node%d: %s\n", i, err);
    return st;
}

static stored read_store(int i) {
    stored s = {0};
    hs_leveldb_store *db = NULL;
    if (open_store(i, &db) != HS_OK) return s;
    s.opened = true;
    hs_kv_store kv = hs_leveldb_store_kv(db);
    hs_kv_reader r = hs_kv_store_reader(&kv);
    s.values_ok = true;
    for (int k = 0; k < 3; k++) {
        hs_bytes v = {0};
        bool ok = kvapp_read(&r, (const uint8_t *)put_keys[k], strlen(put_keys[k]), &v) == HS_OK &&
                  v.len == strlen(put_values[k]) && !memcmp(v.p, put_values[k], v.len);
        hs_bytes_free(&v);
        if (!ok) fprintf(stderr, "\n  node%d lacks %s=%s\n", i, put_keys[k], put_values[k]);
        s.values_ok = s.values_ok && ok;
    }
    hs_bt_highest_committed_height(&r, &s.committed);
    hs_leveldb_store_close(db);
    return s;
}

/* The committed block at `height` in node i's store. */
static bool stored_block_at(int i, uint64_t height, hs_hash *out) {
    hs_leveldb_store *db = NULL;
    if (open_store(i, &db) != HS_OK) return false;
    hs_kv_store kv = hs_leveldb_store_kv(db);
    hs_kv_reader r = hs_kv_store_reader(&kv);
    bool ok = hs_bt_block_at_height(&r, height, out) == HS_OK;
    hs_leveldb_store_close(db);
    return ok;
}

static void test_stop_and_stores(void) {
    /* SIGTERM: a clean stop, exit 0 (for every node still running). */
    for (int i = 0; i < NODES; i++) {
        if (e2e_node_running(i)) CU_ASSERT_EQUAL(e2e_stop_node(i, SIGTERM, 30000), 0);
    }
    CU_ASSERT(e2e_log_has(0, "msg=\"stopped\""));
    /* Every store, the killed ones included, holds the values and the same chain. */
    stored s[NODES];
    uint64_t common = UINT64_MAX;
    for (int i = 0; i < NODES; i++) {
        s[i] = read_store(i);
        CU_ASSERT(s[i].opened && s[i].values_ok);
        if (s[i].committed < common) common = s[i].committed;
    }
    for (uint64_t h = 0; common != UINT64_MAX && h <= common; h += (common / 8) + 1) {
        hs_hash first, other;
        CU_ASSERT_FATAL(stored_block_at(0, h, &first));
        for (int i = 1; i < NODES; i++) {
            CU_ASSERT(stored_block_at(i, h, &other) && !memcmp(first.b, other.b, HS_HASH_LEN));
        }
    }
    e2e_check_agreement(NODES);

    /* A data directory refuses a genesis other than its own: exit 2, with the reason. */
    char genesis[512], out[4096];
    e2e_path(0, "genesis.json", genesis, sizeof genesis);
    FILE *f = fopen(genesis, "r+");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    char *c = strstr(text, "\"chain_id\":");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char *digit = c + strlen("\"chain_id\":");
    while (*digit == ' ' || *digit == '\t') digit++;
    *digit = *digit == '9' ? '8' : '9'; /* another chain */
    rewind(f);
    fwrite(text, 1, n, f);
    fclose(f);
    char config[512];
    e2e_path(0, "config.json", config, sizeof config);
    const char *argv[] = {e2e_hotstuffd(), "--config", config, NULL};
    CU_ASSERT_EQUAL(e2e_run(argv, out, sizeof out, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "belongs to a different genesis"));

    /* A config error: exit 2, naming file, field and problem. */
    f = fopen(config, "w");
    fputs("{\"consensus\": {\"max_view_time_ms\": 0}}\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(e2e_run(argv, out, sizeof out, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "config.json: consensus.max_view_time_ms: must be a "
                                       "positive integer"));
}

int main(void) {
    static const cu_test tests[] = {
        {"4 validators and a listener commit blocks", test_cluster_commits},
        {"submitted transactions commit on every node", test_transactions_everywhere},
        {"kill -9 of a validator: the others go on", test_kill_validator},
        {"the validator restarts and catches up", test_restart_catches_up},
        {"a validator-set update takes effect", test_validator_set_update},
        {"clean stop; stores agree; genesis and config errors", test_stop_and_stores},
        {NULL, NULL}};
    return e2e_run_suite("cluster", "cluster", tests);
}
