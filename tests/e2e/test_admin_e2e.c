/* test_admin_e2e.c - hotstuffd's admin port and the operator services of its replica port,
 * driven from outside by grpcurl, as an operator would.
 *
 * One cluster for the suite: four validators (powers 2,2,2,1, so the other three commit while
 * node3 is down) from `hotstuffctl testnet`, each with listen.admin (taken from config.json
 * when testnet wrote one, else added here). The tests run in order:
 *   1. health Check "" is SERVING on both ports; `list` on the admin port shows
 *      hotstuff.v1.Admin, grpc.health.v1.Health and both reflection services, on the replica
 *      port hotstuff.v1.Replica, health and both reflection services; `describe` of the Admin
 *      service and of a message;
 *   2. GetStatus (JSON) reports the chain id of genesis.json and a committed height > 0;
 *   3. Subscribe (server streaming, bounded by -max-time) delivers COMMIT_BLOCK events;
 *   4. resume across a restart: Subscribe from height 1 on node3 records committed heights
 *      1..L; SIGTERM (health turns NOT_SERVING or the port goes away); restart; Subscribe from
 *      L+1: the first height is L+1 and the heights are consecutive - no gap, no duplicate.
 *
 * grpcurl: $HS_GRPCURL, else $HS_BIN_DIR/tools/grpcurl (scripts/install-grpcurl.sh installs
 * the pinned version there; scripts/test.sh runs it before ctest). Missing grpcurl is a
 * failure naming that script, not a skip.
 *
 * Conditions are awaited by polling with timeouts; nothing sleeps for a fixed time. Children
 * (tests/common/e2e.h) run with PR_SET_PDEATHSIG and an atexit hook (also run from
 * SIGTERM/SIGINT) kills them.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cu.h"
#include "e2e.h"
#include "hotstuff/hotstuff.h"

#define NODES 4
#define RESTARTED 3 /* power 1: the others keep committing without it */
#define CHAIN_ID "4242"
#define VIEW_MS 1000
#define WAIT_MS 90000 /* generous: sanitizer builds on a loaded machine */
#define OUT_CAP (1u << 20)

static char bin_grpcurl[512];
static char admin_addr[NODES][64], replica_addr[NODES][64];
static char *out; /* OUT_CAP bytes: the output of the last grpcurl run */

static bool find_grpcurl(void) {
    const char *e = getenv("HS_GRPCURL");
    const char *b = getenv("HS_BIN_DIR");
    if (e && e[0]) snprintf(bin_grpcurl, sizeof bin_grpcurl, "%s", e);
    else if (b) snprintf(bin_grpcurl, sizeof bin_grpcurl, "%s/tools/grpcurl", b);
    else return false;
    return access(bin_grpcurl, X_OK) == 0;
}

static void dump_tail(int node) {
    e2e_dump_log_tail(node, 3000);
}

/* ---- config.json: the admin address ---- */

static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return cJSON_Parse(text);
}

/* Uses listen.admin when testnet wrote it, else adds 127.0.0.1:<base + NODES + i>. Records
 * both addresses with 127.0.0.1 as the host to dial. */
static bool admin_address(int i) {
    char path[512];
    e2e_path(i, "config.json", path, sizeof path);
    cJSON *doc = read_json(path);
    cJSON *l = cJSON_GetObjectItemCaseSensitive(doc, "listen");
    if (!cJSON_IsObject(l)) {
        cJSON_Delete(doc);
        return false;
    }
    cJSON *a = cJSON_GetObjectItemCaseSensitive(l, "admin");
    cJSON *r = cJSON_GetObjectItemCaseSensitive(l, "replica");
    bool ok = cJSON_IsString(r);
    if (ok) {
        const char *colon = strrchr(r->valuestring, ':');
        snprintf(replica_addr[i], sizeof replica_addr[i], "127.0.0.1%s", colon ? colon : "");
    }
    char *text = NULL;
    if (ok && cJSON_IsString(a)) {
        const char *colon = strrchr(a->valuestring, ':');
        snprintf(admin_addr[i], sizeof admin_addr[i], "127.0.0.1%s", colon ? colon : "");
    } else if (ok) {
        snprintf(admin_addr[i], sizeof admin_addr[i], "127.0.0.1:%d",
                 e2e_base_port() + NODES + i);
        cJSON_AddStringToObject(l, "admin", admin_addr[i]);
        text = cJSON_Print(doc);
        FILE *f = text ? fopen(path, "w") : NULL;
        ok = f && fputs(text, f) >= 0;
        if (f) ok = fclose(f) == 0 && ok;
    }
    free(text);
    cJSON_Delete(doc);
    return ok;
}

/* ---- grpcurl ---- */

/* grpcurl -plaintext [-max-time S] [-d DATA] ADDR ARGS... into out; its exit code. */
static int grpcurl(const char *addr, int max_time_s, const char *data, const char *a1,
                   const char *a2) {
    const char *argv[16];
    int k = 0;
    char mt[16];
    argv[k++] = bin_grpcurl;
    argv[k++] = "-plaintext";
    if (max_time_s > 0) {
        snprintf(mt, sizeof mt, "%d", max_time_s);
        argv[k++] = "-max-time";
        argv[k++] = mt;
    }
    if (data) {
        argv[k++] = "-d";
        argv[k++] = data;
    }
    argv[k++] = addr;
    if (a1) argv[k++] = a1;
    if (a2) argv[k++] = a2;
    argv[k] = NULL;
    return e2e_run(argv, out, OUT_CAP, (max_time_s > 0 ? max_time_s : 10) * 1000 + 20000);
}

static bool health_is(const char *addr, const char *status) {
    char needle[64];
    snprintf(needle, sizeof needle, "\"status\": \"%s\"", status);
    int rc = grpcurl(addr, 5, "{\"service\": \"\"}", "grpc.health.v1.Health/Check", NULL);
    return rc == 0 && strstr(out, needle);
}

/* Not SERVING: NOT_SERVING, or the call fails (UNAVAILABLE, connection refused). */
static bool health_down(const char *addr) {
    int rc = grpcurl(addr, 5, "{\"service\": \"\"}", "grpc.health.v1.Health/Check", NULL);
    return rc != 0 || strstr(out, "NOT_SERVING");
}

/* The u64 JSON field (protobuf JSON writes 64-bit integers as strings); -1 when absent. */
static int64_t json_u64(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v)) return strtoll(v->valuestring, NULL, 10);
    if (cJSON_IsNumber(v)) return (int64_t)v->valuedouble;
    return -1;
}

/* Heights of the COMMIT_BLOCK events in the JSON objects grpcurl printed, in order. */
static size_t commit_heights(const char *text, int64_t *h, size_t cap) {
    size_t n = 0;
    const char *p = strchr(text, '{');
    while (p && n < cap) {
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithOpts(p, &end, false);
        if (!o) break; /* the trailing error text, or a truncated object */
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "EVENT_TYPE_COMMIT_BLOCK") == 0) {
            int64_t v = json_u64(o, "height");
            /* height 0 is the proto default and so omitted from JSON */
            h[n++] = v < 0 ? 0 : v;
        }
        cJSON_Delete(o);
        p = end ? strchr(end, '{') : NULL;
    }
    return n;
}

static int64_t committed_height(int i) {
    if (grpcurl(admin_addr[i], 5, NULL, "hotstuff.v1.Admin/GetStatus", NULL) != 0) return -1;
    cJSON *o = cJSON_Parse(out);
    int64_t h = json_u64(o, "committedHeight");
    cJSON_Delete(o);
    return h;
}

/* ---- tests ---- */

static void test_up_list_describe(void) {
    e2e_require_programs();
    if (!find_grpcurl())
        fprintf(stderr, "\ngrpcurl not found (HS_GRPCURL or $HS_BIN_DIR/tools/grpcurl): run "
                        "scripts/install-grpcurl.sh <build dir>\n");
    CU_ASSERT_FATAL(access(bin_grpcurl, X_OK) == 0);
    /* 2 * NODES consecutive free ports (replica ports, then admin ports). */
    e2e_prepare("/tmp/hs-admin-e2e-XXXXXX", &(e2e_ports){20000, 17, 200, 2 * NODES, 0});
    char port[16], view[16];
    snprintf(port, sizeof port, "%d", e2e_base_port());
    snprintf(view, sizeof view, "%d", VIEW_MS);
    const char *argv[] = {e2e_ctl(), "testnet", "--validators", "4", "--dir", e2e_dir(),
                          "--base-port", port, "--chain-id", CHAIN_ID, "--max-view-time-ms",
                          view, "--powers", "2,2,2,1", NULL};
    int rc = e2e_run(argv, out, OUT_CAP, 30000);
    if (rc != 0) fprintf(stderr, "\n%s\n", out);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(admin_address(i));
    for (int i = 0; i < NODES; i++) CU_ASSERT_FATAL(e2e_start_node(i) > 0);

    for (int i = 0; i < NODES; i++) {
        bool ok = CU_AWAIT(health_is(admin_addr[i], "SERVING"), WAIT_MS);
        if (!ok) dump_tail(i);
        CU_ASSERT_FATAL(ok);
        CU_ASSERT(health_is(replica_addr[i], "SERVING"));
    }

    CU_ASSERT_EQUAL(grpcurl(admin_addr[0], 10, NULL, "list", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hotstuff.v1.Admin\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "grpc.health.v1.Health\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "grpc.reflection.v1.ServerReflection\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "grpc.reflection.v1alpha.ServerReflection\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "hotstuff.v1.Replica\n"));

    CU_ASSERT_EQUAL(grpcurl(replica_addr[0], 10, NULL, "list", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hotstuff.v1.Replica\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "grpc.health.v1.Health\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "grpc.reflection.v1.ServerReflection\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "grpc.reflection.v1alpha.ServerReflection\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "hotstuff.v1.Admin\n"));

    CU_ASSERT_EQUAL(grpcurl(replica_addr[0], 10, "{\"service\": \"hotstuff.v1.Replica\"}",
                            "grpc.health.v1.Health/Check", NULL), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\"SERVING\""));
    CU_ASSERT_EQUAL(grpcurl(replica_addr[0], 10, NULL, "describe", "hotstuff.v1.Replica"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rpc SubmitTransaction"));

    CU_ASSERT_EQUAL(grpcurl(admin_addr[0], 10, NULL, "describe", "hotstuff.v1.Admin"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "hotstuff.v1.Admin is a service"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rpc GetStatus"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "rpc Subscribe"));
    CU_ASSERT_EQUAL(grpcurl(admin_addr[0], 10, NULL, "describe", "hotstuff.v1.SubscribeRequest"),
                    0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "is a message"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "from_height"));
}

static void test_get_status(void) {
    bool ok = CU_AWAIT(committed_height(0) > 0, WAIT_MS);
    if (!ok) dump_tail(0);
    CU_ASSERT_FATAL(ok);
    CU_ASSERT_EQUAL_FATAL(grpcurl(admin_addr[0], 10, NULL, "hotstuff.v1.Admin/GetStatus", NULL),
                          0);
    cJSON *o = cJSON_Parse(out);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(json_u64(o, "chainId"), strtoll(CHAIN_ID, NULL, 10));
    CU_ASSERT(json_u64(o, "committedHeight") > 0);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(o, "role");
    CU_ASSERT(cJSON_IsString(role) && strcmp(role->valuestring, "ROLE_VALIDATOR") == 0);
    CU_ASSERT(json_u64(o, "connectedPeers") >= 1);
    cJSON_Delete(o);
}

/* Live commits only (no from_height): the stream ends at -max-time with DeadlineExceeded. */
static void test_subscribe(void) {
    int64_t h[256];
    size_t n = 0;
    bool ok = CU_AWAIT(
        (grpcurl(admin_addr[0], 4, "{\"types\": [\"EVENT_TYPE_COMMIT_BLOCK\"]}",
                 "hotstuff.v1.Admin/Subscribe", NULL),
         (n = commit_heights(out, h, 256)) >= 2),
        WAIT_MS);
    if (!ok) fprintf(stderr, "\n%.2000s\n", out);
    CU_ASSERT_FATAL(ok);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "DeadlineExceeded"));
    for (size_t i = 1; i < n; i++) CU_ASSERT_EQUAL(h[i], h[i - 1] + 1);
    CU_ASSERT(h[0] > 0);
}

/* All committed heights from `from` on, streamed for max_s seconds. */
static size_t subscribe_from(int node, int64_t from, int max_s, int64_t *h, size_t cap) {
    char req[160];
    snprintf(req, sizeof req,
             "{\"types\": [\"EVENT_TYPE_COMMIT_BLOCK\"], \"has_from_height\": true, "
             "\"from_height\": \"%" PRId64 "\"}",
             from);
    grpcurl(admin_addr[node], max_s, req, "hotstuff.v1.Admin/Subscribe", NULL);
    return commit_heights(out, h, cap);
}

static void test_resume_across_restart(void) {
    enum { CAP = 100000 };
    int64_t *before = calloc(CAP, sizeof *before), *after = calloc(CAP, sizeof *after);
    CU_ASSERT_FATAL(before && after);
    const int r = RESTARTED;
    CU_ASSERT_FATAL(CU_AWAIT(committed_height(r) >= 2, WAIT_MS));
    size_t nb = subscribe_from(r, 1, 3, before, CAP);
    CU_ASSERT_FATAL(nb >= 2);
    for (size_t i = 0; i < nb; i++) CU_ASSERT_EQUAL_FATAL(before[i], (int64_t)i + 1);
    int64_t last = before[nb - 1];

    /* SIGTERM: the admin service stops first, so health stops saying SERVING at once. */
    CU_ASSERT_EQUAL_FATAL(e2e_signal_node(r, SIGTERM), 0);
    CU_ASSERT(CU_AWAIT(health_down(admin_addr[r]), 30000));
    CU_ASSERT_EQUAL(e2e_reap_node(r, 30000), 0);
    CU_ASSERT(health_down(admin_addr[r]));
    CU_ASSERT(health_down(replica_addr[r]));

    CU_ASSERT_FATAL(e2e_start_node(r) > 0);
    bool ok = CU_AWAIT(health_is(admin_addr[r], "SERVING"), WAIT_MS);
    if (!ok) dump_tail(r);
    CU_ASSERT_FATAL(ok);
    /* From last+1: replayed from the store, then live. Poll until it has moved on a bit. */
    size_t na = 0;
    ok = CU_AWAIT((na = subscribe_from(r, last + 1, 4, after, CAP)) >= 2, WAIT_MS);
    if (!ok) dump_tail(r);
    CU_ASSERT_FATAL(ok);
    CU_ASSERT_EQUAL(after[0], last + 1);
    for (size_t i = 1; i < na; i++) CU_ASSERT_EQUAL(after[i], after[i - 1] + 1);
    free(before);
    free(after);
}

int main(void) {
    out = malloc(OUT_CAP);
    if (!out) return 1;
    static const cu_test tests[] = {
        {"health, list and describe on both ports", test_up_list_describe},
        {"GetStatus: chain id and a committed height", test_get_status},
        {"Subscribe streams commits", test_subscribe},
        {"Subscribe resumes across a restart: no gap, no duplicate", test_resume_across_restart},
        {NULL, NULL}};
    int rc = e2e_run_suite("admin_e2e", "admin", tests);
    free(out);
    return rc;
}
