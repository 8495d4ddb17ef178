/* test_ctl.c - hotstuffctl's admin commands against a real testnet: four hotstuffd validators
 * as separate processes (from `hotstuffctl testnet`, in a mkdtemp directory), each with its
 * admin port. hotstuffctl runs as a subprocess; each test checks its output and exit code:
 *   status (text and --json), block by height and by hash, blocks, validators, get,
 *   submit --wait (then get sees the value; delete; a replica port still takes submit),
 *   watch (--json --types CommitBlock --count N, --from replay), health,
 *   error statuses (OUT_OF_RANGE, NOT_FOUND) and usage errors, and every command against a
 *   dead port (exit 1, "cannot reach ...").
 * Conditions are awaited by polling hotstuffctl itself; nothing sleeps for a fixed time.
 * Children (tests/common/e2e.h) run with PR_SET_PDEATHSIG and an atexit hook kills what is
 * left.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "cu.h"
#include "e2e.h"
#include "hotstuff/hotstuff.h"
#include "config/node_config.h"

#define NODES 4
#define ADMIN_OFFSET 100 /* hotstuffctl testnet: admin port of node i = P + 100 + i */
#define VIEW_MS 1000
#define WAIT_MS 90000
#define OUT_CAP (1 << 16)

static char admin_addr[64], dead_addr[64], replica_addr[64];
static char out[OUT_CAP];

/* Runs argv (stdout and stderr both into out) for at most timeout_ms; its exit code or -1. */
static int run(const char *const *argv, int timeout_ms) {
    return e2e_run(argv, out, sizeof out, timeout_ms);
}

/* hotstuffctl --addr ADDR ARGS... (NULL-terminated); its exit code, output in out. */
static int ctl_at(const char *addr, const char *a0, ...) {
    const char *argv[32] = {e2e_ctl(), "--addr", addr};
    int k = 3;
    va_list ap;
    va_start(ap, a0);
    for (const char *a = a0; a && k < 31; a = va_arg(ap, const char *)) argv[k++] = a;
    va_end(ap);
    argv[k] = NULL;
    return run(argv, 60000);
}
#define CTL(...) ctl_at(admin_addr, __VA_ARGS__, (const char *)NULL)

static void dump_log(int node) {
    e2e_dump_log_tail(node, 6000);
}

static void show_out_if(bool bad) {
    if (bad) fprintf(stderr, "\n---- hotstuffctl output ----\n%s\n", out);
}
#define CHECK_RC(call, want)                                                                  \
    do {                                                                                      \
        int rc_ = (call);                                                                     \
        show_out_if(rc_ != (want));                                                           \
        CU_ASSERT_EQUAL(rc_, want);                                                           \
    } while (0)
#define CHECK_OUT(needle)                                                                     \
    do {                                                                                      \
        bool has_ = strstr(out, needle) != NULL;                                              \
        if (!has_) fprintf(stderr, "\n  missing \"%s\" in:\n%s\n", needle, out);              \
        CU_ASSERT(has_);                                                                      \
    } while (0)

/* The committed height `status --json` reports; -1 on failure or none yet. */
static int64_t status_height(char hash_hex[65]) {
    if (CTL("status", "--json") != 0) return -1;
    cJSON *j = cJSON_Parse(out);
    cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "committed");
    cJSON *h = cJSON_GetObjectItemCaseSensitive(c, "height");
    cJSON *hh = cJSON_GetObjectItemCaseSensitive(c, "hash");
    int64_t r = cJSON_IsNumber(h) ? (int64_t)h->valuedouble : -1;
    if (hash_hex) snprintf(hash_hex, 65, "%s", cJSON_IsString(hh) ? hh->valuestring : "");
    cJSON_Delete(j);
    return r;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ---- the suite ---- */

static void test_testnet_up(void) {
    e2e_require_programs();
    /* Replica ports P..P+3, admin ports P+100..P+103 and the dead port P+104 all free. */
    e2e_prepare("/tmp/hs-ctl-XXXXXX", &(e2e_ports){21000, 17, 300, NODES + 1, ADMIN_OFFSET});
    const int base_port = e2e_base_port();
    snprintf(admin_addr, sizeof admin_addr, "127.0.0.1:%d", base_port + ADMIN_OFFSET);
    snprintf(dead_addr, sizeof dead_addr, "127.0.0.1:%d", base_port + ADMIN_OFFSET + NODES);
    snprintf(replica_addr, sizeof replica_addr, "127.0.0.1:%d", base_port + 1);
    char port[16], view[16];
    snprintf(port, sizeof port, "%d", base_port);
    snprintf(view, sizeof view, "%d", VIEW_MS);
    const char *argv[] = {e2e_ctl(), "testnet", "--validators", "4", "--dir", e2e_dir(),
                          "--base-port", port, "--max-view-time-ms", view, NULL};
    CHECK_RC(run(argv, 30000), 0);
    CHECK_OUT(admin_addr);
    /* config.json carries listen.admin. */
    char cfg[512], err[512];
    e2e_path(0, "config.json", cfg, sizeof cfg);
    node_config nc;
    CU_ASSERT_EQUAL_FATAL(node_config_load(cfg, &nc, err, sizeof err), HS_OK);
    CU_ASSERT_STRING_EQUAL(nc.listen_admin, admin_addr);
    node_config_free(&nc);
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(e2e_start_node(i) > 0);
    bool ok = CU_AWAIT(status_height(NULL) >= 3, WAIT_MS);
    if (!ok) {
        fprintf(stderr, "\n%s\n", out);
        for (int i = 0; i < NODES; i++) dump_log(i);
    }
    CU_ASSERT_FATAL(ok);
}

static void test_status(void) {
    CHECK_RC(CTL("status"), 0);
    CHECK_OUT("committed   height ");
    CHECK_OUT("(validator)");
    CHECK_OUT("peers       ");
    const char *h = strstr(out, "committed   height ");
    CU_ASSERT(h && strtoll(h + strlen("committed   height "), NULL, 10) > 0);
    CU_ASSERT(status_height(NULL) > 0);
    /* Options before the command work too. */
    const char *argv[] = {e2e_ctl(), "--addr", admin_addr, "--timeout", "3s", "status", NULL};
    CHECK_RC(run(argv, 30000), 0);
}

static void test_blocks(void) {
    char hash[65];
    int64_t tip = status_height(hash);
    CU_ASSERT_FATAL(tip >= 3);
    CHECK_RC(CTL("block", "1"), 0);
    CHECK_OUT("height     1\n");
    CHECK_OUT("justify    view ");
    /* By hash: the tip block. */
    CHECK_RC(CTL("block", hash), 0);
    char want[100];
    snprintf(want, sizeof want, "hash       %s", hash);
    CHECK_OUT(want);
    CHECK_RC(CTL("block", "2", "--json"), 0);
    cJSON *j = cJSON_Parse(out);
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "height")) &&
              cJSON_GetObjectItemCaseSensitive(j, "height")->valuedouble == 2);
    cJSON_Delete(j);
    /* A range: one line per block, in order. */
    CHECK_RC(CTL("blocks", "0", "3"), 0);
    CU_ASSERT_EQUAL(count_lines(out), 4);
    CU_ASSERT(!strncmp(out, "0 ", 2));
    CHECK_OUT("\n3 ");
    /* Up to the tip, across pages would need > 100 blocks; "tip" clips. */
    CHECK_RC(CTL("blocks", "1", "tip", "--json"), 0);
    CU_ASSERT(count_lines(out) >= (int)tip);
}

static void test_validators(void) {
    CHECK_RC(CTL("validators"), 0);
    CHECK_OUT("committed: 4 validators, total power 4");
    char path[512], err[512], hex[65];
    hs_keypair kp;
    e2e_path(2, "key.json", path, sizeof path);
    CU_ASSERT_EQUAL_FATAL(node_key_load(path, &kp, err, sizeof err), HS_OK);
    sodium_bin2hex(hex, sizeof hex, kp.public_key.b, HS_KEY_LEN);
    CHECK_OUT(hex);
    CHECK_RC(CTL("validators", "--json"), 0);
    cJSON *j = cJSON_Parse(out);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "committed")), 4);
    cJSON_Delete(j);
}

static void test_submit_and_get(void) {
    CHECK_RC(CTL("get", "ctl-key"), 1);
    CHECK_OUT("hotstuffctl: get ctl-key: NOT_FOUND: ");
    CHECK_RC(CTL("submit", "--wait", "put", "ctl-key", "ctl-value"), 0);
    CHECK_OUT("accepted tx ");
    CHECK_OUT("committed at height ");
    /* Committed before the reply: this node's state has it now. */
    CHECK_RC(CTL("get", "ctl-key"), 0);
    CU_ASSERT_STRING_EQUAL(out, "ctl-value\n");
    CHECK_RC(CTL("get", "ctl-key", "--json"), 0);
    CHECK_OUT("\"value\":\"ctl-value\"");
    /* The transaction is in the block the reply named. */
    const char *h = strstr(out, "tip_height");
    CU_ASSERT_PTR_NOT_NULL(h);
    /* Without --wait: accepted only; --json. */
    CHECK_RC(CTL("submit", "--json", "put", "ctl-key2", "v2"), 0);
    CHECK_OUT("\"tx_hash\":\"");
    CHECK_OUT("\"committed\":false");
    /* A replica port still takes a submission (through hotstuff.v1.Replica). */
    CHECK_RC(ctl_at(replica_addr, "submit", "put", "ctl-key3", "v3", (const char *)NULL), 0);
    CHECK_OUT("accepted tx ");
    /* ... but cannot wait for it. */
    CHECK_RC(ctl_at(replica_addr, "submit", "--wait", "put", "ctl-key3", "v3", (const char *)NULL),
             1);
    CHECK_OUT("UNIMPLEMENTED");
    /* Delete, waited for: then the key is gone. */
    CHECK_RC(CTL("submit", "--wait", "delete", "ctl-key"), 0);
    CHECK_OUT("committed at height ");
    CHECK_RC(CTL("get", "ctl-key"), 1);
    CHECK_OUT("NOT_FOUND");
    /* A refused transaction: its status, exit 1. */
    char keyfile[512], update[80], hex[65];
    e2e_path(0, "key.json", keyfile, sizeof keyfile); /* not the admin key */
    memset(hex, 'a', 64);
    hex[64] = '\0';
    snprintf(update, sizeof update, "%s:1", hex);
    CHECK_RC(CTL("submit", "update-validators", "--admin-key", keyfile, "--chain-id", "1", update),
             1);
    CHECK_OUT("INVALID_ARGUMENT");
}

static void test_watch(void) {
    CHECK_RC(CTL("watch", "--json", "--types", "CommitBlock", "--count", "3"), 0);
    CU_ASSERT_EQUAL(count_lines(out), 3);
    int64_t last = -1;
    int good = 0;
    for (char *line = out, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(line);
        cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
        cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "height");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, "CommitBlock") && cJSON_IsNumber(h) &&
            (int64_t)h->valuedouble > last) {
            good++;
            last = (int64_t)h->valuedouble;
        } else {
            fprintf(stderr, "\n  bad watch line: %s\n", line);
        }
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(good, 3);
    /* Replay from height 0: heights 0, 1, 2, ... marked replayed. */
    CHECK_RC(CTL("watch", "--types", "commit_block", "--from", "0", "--count", "4"), 0);
    CU_ASSERT_EQUAL(count_lines(out), 4);
    CHECK_OUT("CommitBlock        height 0 ");
    CHECK_OUT("CommitBlock        height 3 ");
    CHECK_OUT("(replayed)");
    /* Every type, human-readable. */
    CHECK_RC(CTL("watch", "--count", "5"), 0);
    CU_ASSERT_EQUAL(count_lines(out), 5);
    /* --duration ends a quiet watch with success. */
    CHECK_RC(CTL("watch", "--types", "ViewTimeout", "--duration", "300ms"), 0);
    /* Bad types are usage errors. */
    CHECK_RC(CTL("watch", "--types", "Nope"), 2);
    CHECK_OUT("unknown event type 'Nope'");
}

static void test_health(void) {
    CHECK_RC(CTL("health"), 0);
    CU_ASSERT_STRING_EQUAL(out, "SERVING\n");
    CHECK_RC(CTL("health", "hotstuff.v1.Admin"), 0);
    CHECK_RC(CTL("health", "ready"), 0);
    CHECK_RC(CTL("health", "no.such.Service"), 1);
    CHECK_OUT("hotstuffctl: health no.such.Service: NOT_FOUND");
}

static void test_error_statuses(void) {
    CHECK_RC(CTL("block", "99999999"), 1);
    CHECK_OUT("hotstuffctl: block 99999999: OUT_OF_RANGE: ");
    CHECK_OUT("above the committed tip");
    CHECK_RC(CTL("blocks", "99999999", "99999999"), 1);
    CHECK_OUT("OUT_OF_RANGE");
    char hash[65];
    memset(hash, '0', 64);
    hash[64] = '\0';
    CHECK_RC(CTL("block", hash), 1);
    CHECK_OUT("NOT_FOUND");
    /* Usage errors: exit 2. */
    CHECK_RC(CTL("block"), 2);
    CHECK_RC(CTL("block", "xyz"), 2);
    CHECK_RC(CTL("blocks", "5", "2"), 2);
    CHECK_RC(CTL("submit", "put", "k"), 2);
    CHECK_RC(CTL("frobnicate"), 2);
    CHECK_RC(CTL("status", "--timeout", "soon"), 2);
}

static void test_dead_port(void) {
    char want[200];
    snprintf(want, sizeof want,
             "hotstuffctl: cannot reach %s: connection refused (is hotstuffd running with an "
             "admin port?)",
             dead_addr);
    const char *cmds[][8] = {
        {"status", NULL},
        {"status", "--json", NULL},
        {"block", "1", NULL},
        {"blocks", "0", "3", NULL},
        {"validators", NULL},
        {"get", "k", NULL},
        {"submit", "put", "k", "v", NULL},
        {"submit", "--wait", "put", "k", "v", NULL},
        {"watch", NULL},
        {"watch", "--json", "--count", "1", NULL},
        {"health", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *argv[16] = {e2e_ctl(), "--addr", dead_addr, "--timeout", "3s"};
        int k = 5;
        for (int j = 0; cmds[i][j]; j++) argv[k++] = cmds[i][j];
        argv[k] = NULL;
        uint64_t t0 = cu_now_ms();
        int rc = run(argv, 30000);
        if (rc != 1 || !strstr(out, want))
            fprintf(stderr, "\n  %s %s: rc %d\n%s\n", cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
                    rc, out);
        CU_ASSERT_EQUAL(rc, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
        CU_ASSERT(cu_now_ms() - t0 < 10000); /* fails fast, within the deadline */
    }
}

static void test_stop(void) {
    for (int i = 0; i < NODES; i++) {
        if (!e2e_node_running(i)) continue;
        CU_ASSERT_EQUAL(e2e_stop_node(i, SIGTERM, 30000), 0);
    }
    /* A stopped node is a dead port too. */
    CHECK_RC(CTL("health"), 1);
    CHECK_OUT("cannot reach");
}

int main(void) {
    static const cu_test tests[] = {
        {"testnet with admin ports commits", test_testnet_up},
        {"status", test_status},
        {"block and blocks", test_blocks},
        {"validators", test_validators},
        {"submit --wait, get, delete", test_submit_and_get},
        {"watch", test_watch},
        {"health", test_health},
        {"error statuses and usage errors", test_error_statuses},
        {"every command against a dead port", test_dead_port},
        {"clean stop", test_stop},
        {NULL, NULL}};
    return e2e_run_suite("ctl", "ctl", tests);
}
