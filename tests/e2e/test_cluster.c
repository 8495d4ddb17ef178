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
 * Powers are {2, 2, 2, 1} with node3 the one killed: pipelined HotStuff commits a block only
 * after four consecutive views with live leaders (three proposals and the collector of the
 * third certificate), which equal-power round robin over four never gives with one down.
 *   6. SIGTERM stops the rest with exit 0; every store, opened read-only afterwards, holds
 *      the same chain and the submitted values; a data directory refuses another genesis.
 * Conditions are awaited by polling the nodes' logs (debug level: one line per committed block
 * and per committed transaction) with timeouts; nothing sleeps for a fixed time.
 *
 * Children: each daemon runs with PR_SET_PDEATHSIG, and an atexit hook (also run from a
 * SIGTERM/SIGINT handler) kills whatever is left, so no hotstuffd outlives the test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "cu.h"
#include "hotstuff/hotstuff.h"
#include "kvapp.h"
#include "node_config.h"

#define VALIDATORS 4
#define LISTENERS 1
#define NODES (VALIDATORS + LISTENERS)
#define VIEW_MS 1000
/* Within an epoch every view has a fixed deadline, so views that end early bank time for a
 * later one whose leader is down (spec §4.2): short epochs bound that wait. */
#define EPOCH_LENGTH 10
#define WAIT_MS 90000 /* generous: sanitizer builds on a loaded machine */

static char bin_hotstuffd[512], bin_ctl[512];
static char dir[256];
static int base_port;
static pid_t pids[NODES];
static hs_key keys[NODES];

/* ---- processes ---- */

static void kill_children(void) {
    for (int i = 0; i < NODES; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
            pids[i] = 0;
        }
    }
}

static void on_fatal_signal(int sig) {
    for (int i = 0; i < NODES; i++)
        if (pids[i] > 0) kill(pids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static bool find_binary(const char *name, char *out, size_t cap) {
    const char *b = getenv("HS_BIN_DIR");
    const char *const dirs[] = {"%s/server/%s", "%s/%s"};
    for (size_t i = 0; b && i < 2; i++) {
        snprintf(out, cap, dirs[i], b, name);
        if (access(out, X_OK) == 0) return true;
    }
    return false;
}

static void path_of(int node, const char *file, char *out, size_t cap) {
    snprintf(out, cap, "%s/node%d/%s", dir, node, file);
}

/* Starts hotstuffd for node i, its output appended to nodeI/log. */
static pid_t start_node(int i) {
    char config[512], log[512];
    path_of(i, "config.json", config, sizeof config);
    path_of(i, "log", log, sizeof log);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execl(bin_hotstuffd, "hotstuffd", "--config", config, (char *)NULL);
        _exit(127);
    }
    pids[i] = pid;
    return pid;
}

/* Waits up to timeout_ms for pid; its exit code, or -1 (killed by a signal or still running,
 * in which case it is killed). */
static int wait_exit(pid_t pid, int timeout_ms) {
    uint64_t end = cu_now_ms() + (uint64_t)timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r < 0 || cu_now_ms() >= end) break;
        cu_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static int stop_node(int i, int sig) {
    if (pids[i] <= 0) return -1;
    kill(pids[i], sig);
    int rc = wait_exit(pids[i], 30000);
    pids[i] = 0;
    return rc;
}

/* Runs argv to completion (at most timeout_ms), capturing stdout and stderr into out. Returns
 * the exit code, or -1. */
static int run(const char *const *argv, char *out, size_t cap, int timeout_ms) {
    int p[2];
    if (pipe(p) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t k = 0;
    uint64_t end = cu_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct pollfd pfd = {p[0], POLLIN, 0};
        uint64_t now = cu_now_ms();
        if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0) break;
        char buf[512];
        ssize_t r = read(p[0], buf, sizeof buf);
        if (r <= 0) break;
        for (ssize_t j = 0; j < r && k + 1 < cap; j++) out[k++] = buf[j];
    }
    out[cap ? k : 0] = '\0';
    close(p[0]);
    uint64_t now = cu_now_ms();
    return wait_exit(pid, now < end ? (int)(end - now) : 1);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_dir(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- ports ---- */

static bool port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* NODES consecutive free ports, starting from one derived from the PID so parallel runs
 * rarely collide. */
static int pick_base_port(void) {
    int base = 20000 + (int)(getpid() * 13 % 20000);
    for (int attempt = 0; attempt < 200; attempt++, base += NODES) {
        if (base + NODES > 60000) base = 20000;
        bool all = true;
        for (int i = 0; i < NODES && all; i++) all = port_free(base + i);
        if (all) return base;
    }
    return -1;
}

/* ---- logs ---- */

/* The node's log, whole (NUL-terminated, malloc'd), or NULL. */
static char *read_log(int node) {
    char path[512];
    path_of(node, "log", path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, k = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (k + 4096 > cap) buf = realloc(buf, cap *= 2);
        size_t r = fread(buf + k, 1, cap - k - 1, f);
        if (r == 0) break;
        k += r;
    }
    buf[k] = '\0';
    fclose(f);
    return buf;
}

static bool log_has(int node, const char *needle) {
    char *log = read_log(node);
    bool found = log && strstr(log, needle);
    free(log);
    return found;
}

/* Highest committed height in the node's log; -1 if none yet. */
static int64_t log_height(int node) {
    char *log = read_log(node);
    int64_t best = -1;
    for (char *p = log; p && (p = strstr(p, "msg=\"committed height=")); p++) {
        int64_t h = strtoll(p + strlen("msg=\"committed height="), NULL, 10);
        if (h > best) best = h;
    }
    free(log);
    return best;
}

/* Blocks the node reports having received through Block Sync. */
static uint64_t synced_blocks(int node) {
    char *log = read_log(node);
    uint64_t total = 0;
    const char *tag = "ended blocks=";
    for (char *p = log; p && (p = strstr(p, tag)); p++)
        total += strtoull(p + strlen(tag), NULL, 10);
    free(log);
    return total;
}

static bool all_reach(const int *nodes, int n, int64_t height) {
    for (int i = 0; i < n; i++) {
        if (log_height(nodes[i]) < height) return false;
    }
    return true;
}

static void dump_tail(int node) {
    char *log = read_log(node);
    if (!log) return;
    size_t len = strlen(log);
    fprintf(stderr, "\n---- node%d log (tail) ----\n%s\n", node, log + (len > 3000 ? len - 3000 : 0));
    free(log);
}

/* ---- hotstuffctl ---- */

/* Submits; on success copies the transaction hash (hex) into hash. Returns the exit code. */
static int submit(int node, const char *const *op, char *hash, char *out, size_t cap) {
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", base_port + node);
    const char *argv[16] = {bin_ctl, "submit", "--addr", addr, "--timeout-ms", "10000"};
    int k = 6;
    for (int i = 0; op[i] && k < 15; i++) argv[k++] = op[i];
    argv[k] = NULL;
    int rc = run(argv, out, cap, 20000);
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
        if (!log_has(nodes[i], needle)) return false;
    }
    return true;
}

static void key_hex(const hs_key *k, char out[65]) {
    sodium_bin2hex(out, 65, k->b, HS_KEY_LEN);
}

/* Rewrites consensus.epoch_length in node i's config.json. */
static bool set_epoch_length(int i, int views) {
    char path[512];
    path_of(i, "config.json", path, sizeof path);
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
    CU_ASSERT_FATAL(find_binary("hotstuffd", bin_hotstuffd, sizeof bin_hotstuffd));
    CU_ASSERT_FATAL(find_binary("hotstuffctl", bin_ctl, sizeof bin_ctl));
    snprintf(dir, sizeof dir, "/tmp/hs-e2e-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    base_port = pick_base_port();
    CU_ASSERT_FATAL(base_port > 0);
    char port[16], view[16], out[4096];
    snprintf(port, sizeof port, "%d", base_port);
    snprintf(view, sizeof view, "%d", VIEW_MS);
    const char *argv[] = {bin_ctl, "testnet", "--validators", "4", "--listeners", "1", "--dir",
                          dir, "--base-port", port, "--max-view-time-ms", view, "--log-level",
                          "debug", "--powers", "2,2,2,1", NULL};
    int rc = run(argv, out, sizeof out, 30000);
    if (rc != 0) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(set_epoch_length(i, EPOCH_LENGTH));
    for (int i = 0; i < NODES; i++) {
        char path[512], err[512];
        hs_keypair kp;
        path_of(i, "key.json", path, sizeof path);
        CU_ASSERT_EQUAL_FATAL(node_key_load(path, &kp, err, sizeof err), HS_OK);
        keys[i] = kp.public_key;
    }
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(start_node(i) > 0);
    bool ok = CU_AWAIT(all_reach(everyone, NODES, 3), WAIT_MS);
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
    path_of(0, "key.json", keyfile, sizeof keyfile); /* not the admin key */
    char hex[65];
    key_hex(&keys[4], hex);
    snprintf(update, sizeof update, "%s:1", hex);
    bad_vs[2] = keyfile;
    bad_vs[5] = update;
    CU_ASSERT_EQUAL(submit(1, bad_vs, NULL, out, sizeof out), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "INVALID_ARGUMENT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "bad signature"));
    /* Nothing listens on base_port + NODES. */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", base_port + NODES);
    const char *down[] = {bin_ctl, "submit", "--addr", addr, "--timeout-ms", "2000", "put", "k",
                          "v", NULL};
    CU_ASSERT_EQUAL(run(down, out, sizeof out, 20000), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "UNAVAILABLE"));
}

static int64_t killed_at;

static void test_kill_validator(void) {
    CU_ASSERT_EQUAL(stop_node(3, SIGKILL), -1);
    int64_t h = log_height(0);
    killed_at = h;
    const int rest[] = {0, 1, 2, 4};
    bool ok = CU_AWAIT(all_reach(rest, 4, h + 5), WAIT_MS);
    if (!ok) dump_tail(0);
    CU_ASSERT(ok);
}

/* The committed chain of node i as logged: hash (hex) per height; NULL entries unknown. */
static char **logged_chain(int node, int64_t *n) {
    char *log = read_log(node);
    int64_t cap = 1024;
    char **chain = calloc((size_t)cap, sizeof *chain);
    *n = 0;
    const char *tag = "msg=\"committed height=";
    for (char *p = log; p && (p = strstr(p, tag)); p++) {
        char *end;
        int64_t h = strtoll(p + strlen(tag), &end, 10);
        char *hh = strstr(end, "hash=");
        if (h < 0 || !hh) continue;
        while (h >= cap) {
            chain = realloc(chain, (size_t)cap * 2 * sizeof *chain);
            memset(chain + cap, 0, (size_t)cap * sizeof *chain);
            cap *= 2;
        }
        free(chain[h]);
        chain[h] = strndup(hh + 5, 64);
        if (h + 1 > *n) *n = h + 1;
    }
    free(log);
    return chain;
}

static void free_chain(char **c, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(c[i]);
    free(c);
}

/* No two nodes logged different blocks at one height. */
static void check_agreement(void) {
    char **c[NODES];
    int64_t n[NODES];
    for (int i = 0; i < NODES; i++) c[i] = logged_chain(i, &n[i]);
    int64_t compared = 0;
    for (int i = 1; i < NODES; i++) {
        for (int64_t h = 0; h < n[0] && h < n[i]; h++) {
            if (!c[0][h] || !c[i][h]) continue;
            compared++;
            if (strcmp(c[0][h], c[i][h]) != 0) {
                fprintf(stderr, "\n  node0 and node%d differ at height %" PRId64 "\n", i, h);
                CU_FAIL("two nodes committed different blocks at one height");
                break;
            }
        }
    }
    CU_ASSERT(compared > 0);
    for (int i = 0; i < NODES; i++) free_chain(c[i], n[i]);
}

static void test_restart_catches_up(void) {
    int64_t target = log_height(0);
    CU_ASSERT_FATAL(start_node(3) > 0);
    bool ok = CU_AWAIT(log_height(3) >= target && log_has(3, "msg=\"running\""), WAIT_MS);
    if (!ok) dump_tail(3);
    CU_ASSERT(ok);
    CU_ASSERT(target > killed_at);
    CU_ASSERT(CU_AWAIT(synced_blocks(3) > 0, WAIT_MS)); /* through Block Sync */
    /* It keeps up afterwards too. */
    int64_t later = log_height(0) + 3;
    CU_ASSERT(CU_AWAIT(log_height(3) >= later, WAIT_MS));
    check_agreement();
}

static void test_validator_set_update(void) {
    /* Add the listener (node4) and remove node3. */
    char admin[512], genesis[512], add[100], del[100], out[4096], hash[65], hex[65];
    snprintf(admin, sizeof admin, "%s/admin_key.json", dir);
    path_of(0, "genesis.json", genesis, sizeof genesis);
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
                           log_has(0, "validator set updated") &&
                           log_has(4, "validator set updated"),
                       WAIT_MS);
    CU_ASSERT_FATAL(ok);
    /* A few more blocks: the update is decided (its Decide PC precedes any child). */
    int64_t h = log_height(0);
    CU_ASSERT_FATAL(CU_AWAIT(all_reach(everyone, NODES, h + 3), WAIT_MS));

    /* Down two of the old validators. Old set {0:2, 1:2, 2:2, 3:1}: 0 and 1 hold 4 of 7, short
     * of the quorum of 5. New set {0:2, 1:2, 2:2, 4:4}: 0, 1 and 4 hold 8 of 10, a quorum of
     * 7, and its leader order (two rounds of all four, then node4 twice) always has four live
     * leaders in a row, which pipelined commits need. So commits now prove the new set. */
    CU_ASSERT_EQUAL(stop_node(2, SIGKILL), -1);
    CU_ASSERT_EQUAL(stop_node(3, SIGKILL), -1);
    h = log_height(0);
    const int rest[] = {0, 1, 4};
    ok = CU_AWAIT(all_reach(rest, 3, h + 5), WAIT_MS);
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
    path_of(i, "data", data, sizeof data);
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
        if (pids[i] > 0) CU_ASSERT_EQUAL(stop_node(i, SIGTERM), 0);
    }
    CU_ASSERT(log_has(0, "msg=\"stopped\""));
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
    check_agreement();

    /* A data directory refuses a genesis other than its own: exit 2, with the reason. */
    char genesis[512], out[4096];
    path_of(0, "genesis.json", genesis, sizeof genesis);
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
    path_of(0, "config.json", config, sizeof config);
    const char *argv[] = {bin_hotstuffd, "--config", config, NULL};
    CU_ASSERT_EQUAL(run(argv, out, sizeof out, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "belongs to a different genesis"));

    /* A config error: exit 2, naming file, field and problem. */
    f = fopen(config, "w");
    fputs("{\"consensus\": {\"max_view_time_ms\": 0}}\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(run(argv, out, sizeof out, 30000), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "config.json: consensus.max_view_time_ms: must be a "
                                       "positive integer"));
}

int main(void) {
    atexit(kill_children);
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    hs_log_set_level(HS_LOG_ERROR);
    static const cu_test tests[] = {
        {"4 validators and a listener commit blocks", test_cluster_commits},
        {"submitted transactions commit on every node", test_transactions_everywhere},
        {"kill -9 of a validator: the others go on", test_kill_validator},
        {"the validator restarts and catches up", test_restart_catches_up},
        {"a validator-set update takes effect", test_validator_set_update},
        {"clean stop; stores agree; genesis and config errors", test_stop_and_stores},
        {NULL, NULL}};
    uint64_t t0 = cu_now_ms();
    int rc = cu_run("cluster", tests);
    kill_children();
    fprintf(stderr, "e2e cluster: %.1f s\n", (double)(cu_now_ms() - t0) / 1000.0);
    if (rc == 0 && dir[0]) remove_dir(dir);
    else if (dir[0]) fprintf(stderr, "logs kept in %s\n", dir);
    return rc;
}
