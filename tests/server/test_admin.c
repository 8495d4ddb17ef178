/* test_admin.c - the Admin service, health and reflection (server/admin/admin.c, net/health.c,
 * net/reflection.c) against four in-process replicas running the key-value app over the
 * memory network, so blocks really commit. The admin service serves replica 0 on 127.0.0.1
 * with a kernel-chosen port and is stopped and started again while the replicas run (the
 * event forwarder reads the current admin pointer under a mutex, as hotstuffd must).
 *
 * The client is net/call.h's (one pluck CQ per call); the replicas are tests/common/server/
 * kv_cluster.h's. Every wait is a CU_AWAIT or a bounded pluck; nothing sleeps for a fixed time.
 * Longer than 800 lines on purpose: one suite per admin method against the one running
 * cluster, which takes seconds to start and is shared by every test.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "admin/admin.h"
#include "cu.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "net/call.h"
#include "net/health.h"
#include "net/rpc.h"
#include "net/reflection.h"
#include "hotstuff/hotstuff.h"
#include "hotstuff/store.h"
#include "hotstuff/v1/admin.pb-c.h"
#include "app/kvapp.h"
#include "app/kvtx.h"
#include "replica/transport.h"
#include "kv_cluster.h"
#include "mem_network.h"
#include "tsan_grpc.h"

HS_TSAN_GRPC_SUPPRESSIONS

#define N 4
#define TIMEOUT 30000

/* ------------------------------------------------------------------------------------------ */
/* The cluster.                                                                               */

static struct {
    bool up;
    kv_cluster cl;
    pthread_mutex_t mu; /* guards admin against the event forwarder */
    hs_admin *admin;
    atomic_bool blackhole; /* submissions are accepted and then lost (never commit) */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Every event of replica 0 goes to the admin service, as hotstuffd forwards them. */
static void on_event(kv_node *n, const hs_event *e, void *ctx) {
    if (n->index != 0) return;
    pthread_mutex_lock(&g.mu);
    if (g.admin) hs_admin_publish_event(g.admin, e);
    pthread_mutex_unlock(&g.mu);
}

static void cluster_up(void) {
    if (g.up) return;
    kvapp_config c = kvapp_config_default();
    c.chain_id = 0; /* hs_config_test_values' chain */
    c.empty_block_wait_ms = 20;
    kv_cluster_up(&g.cl, N, &c, on_event, NULL);
    g.up = true;
}

static void cluster_down(void) {
    if (!g.up) return;
    kv_cluster_down(&g.cl);
    g.up = false;
}

static int64_t committed_height(int i) {
    return kv_committed_height(&g.cl.nodes[i]);
}

/* ---- the node interface for replica 0 ---- */

static hs_status nd_snapshot(void *ctx, hs_kv_reader *out) {
    return g.cl.nodes[0].kv.snapshot(g.cl.nodes[0].kv.self, out);
}
static void nd_release(void *ctx, hs_kv_reader *r) {
    g.cl.nodes[0].kv.release_snapshot(g.cl.nodes[0].kv.self, r);
}
static void nd_stats(void *ctx, hs_replica_stats *out) {
    hs_replica_get_stats(g.cl.nodes[0].replica, out);
}
static uint32_t nd_peers(void *ctx) {
    return N - 1;
}
/* Admission at replica 0, then "gossip" to the others (no transport here). */
static int nd_submit(void *ctx, const uint8_t *tx, size_t len, hs_hash *hash, char reason[256]) {
    if (atomic_load(&g.blackhole)) return 0;
    kvapp_verdict v = kvapp_submit(g.cl.nodes[0].app, tx, len, hash, reason, 256);
    if (v == KVAPP_ACCEPTED)
        for (int i = 1; i < N; i++) (void)kvapp_submit(g.cl.nodes[i].app, tx, len, NULL, NULL, 0);
    switch (v) {
    case KVAPP_ACCEPTED: return GRPC_STATUS_OK;
    case KVAPP_INVALID: return GRPC_STATUS_INVALID_ARGUMENT;
    case KVAPP_DUPLICATE: return GRPC_STATUS_ALREADY_EXISTS;
    case KVAPP_FULL: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    default: return GRPC_STATUS_INTERNAL;
    }
}
static hs_status nd_read(void *ctx, const hs_kv_reader *r, const uint8_t *k, size_t klen,
                         hs_bytes *out) {
    return kvapp_read(r, k, klen, out);
}
static hs_status nd_tx_height(void *ctx, const hs_kv_reader *r, const hs_hash *tx,
                              uint64_t *h) {
    return kvapp_tx_height(r, tx, h);
}

static hs_admin_config admin_cfg(void) {
    cluster_up(); /* the keys */
    hs_admin_config c;
    hs_admin_config_defaults(&c);
    c.chain_id = 0;
    c.key = g.cl.keys[0];
    c.list_page = 10;
    c.ready_max_commit_age_ms = 1500;
    return c;
}

static int g_port;

static void admin_up_with(const hs_admin_config *c) {
    cluster_up();
    hs_admin_node nd = {NULL, nd_snapshot, nd_release, nd_stats, nd_peers,
                        nd_submit, nd_read, nd_tx_height};
    hs_admin *a = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(hs_admin_start(c, &nd, &a, err, sizeof err), HS_OK);
    g_port = hs_admin_port(a);
    pthread_mutex_lock(&g.mu);
    g.admin = a;
    pthread_mutex_unlock(&g.mu);
}

static void admin_up(void) {
    hs_admin_config c = admin_cfg();
    admin_up_with(&c);
}

static void admin_down(void) {
    pthread_mutex_lock(&g.mu);
    hs_admin *a = g.admin;
    g.admin = NULL;
    pthread_mutex_unlock(&g.mu);
    hs_admin_stop(a);
}

/* ------------------------------------------------------------------------------------------ */
/* The client.                                                                                */

/* One call of any shape: an hs_rpc_call (net/call.h) on a channel of its own. */
typedef struct cstream {
    grpc_channel *ch;
    hs_rpc_call *call;
    char msg[512];
} cstream;

static grpc_channel *channel(int port, bool tiny_window) {
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_arg args[] = {
        {GRPC_ARG_INTEGER, GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, {.integer = 64 << 20}},
        {GRPC_ARG_INTEGER, GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, {.integer = 1}},
        /* a tiny flow-control window, for slow-subscriber tests */
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_BDP_PROBE, {.integer = 0}},
        {GRPC_ARG_INTEGER, GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, {.integer = 1024}},
    };
    grpc_channel_args ca = {tiny_window ? 4 : 2, args};
    return hs_rpc_channel(target, &ca);
}

/* Opens a call; sends req (if any) and half-closes when close_send. */
static void cs_open(cstream *s, int port, bool tiny, const char *method,
                    const ProtobufCMessage *req, bool close_send, int64_t deadline_ms) {
    memset(s, 0, sizeof *s);
    grpc_init();
    s->ch = channel(port, tiny);
    s->call = hs_rpc_call_open(s->ch, method, req, close_send, deadline_ms);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s->call);
}

static void cs_send(cstream *s, const ProtobufCMessage *m) {
    CU_ASSERT(hs_rpc_call_send(s->call, m));
}

static void cs_close_send(cstream *s) {
    CU_ASSERT(hs_rpc_call_close_send(s->call));
}

/* The next message, or NULL at the end of the stream. */
static ProtobufCMessage *cs_recv(cstream *s, const ProtobufCMessageDescriptor *d) {
    return hs_rpc_call_recv(s->call, d);
}

/* Waits for the status (cancelling first when `cancel`), frees everything, returns it. */
static grpc_status_code cs_finish(cstream *s, bool cancel) {
    grpc_status_code code = hs_rpc_call_finish(s->call, cancel, s->msg, sizeof s->msg);
    grpc_channel_destroy(s->ch);
    grpc_shutdown();
    return code;
}

/* A unary call: status, the reply in *resp (NULL unless OK), the status message in msg. */
static grpc_status_code unary(const char *method, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp,
                              char msg[512], int64_t deadline_ms) {
    cstream s;
    cs_open(&s, g_port, false, method, req, true, deadline_ms);
    ProtobufCMessage *m = cs_recv(&s, rd);
    grpc_status_code code = cs_finish(&s, false);
    if (msg) snprintf(msg, 512, "%s", s.msg);
    if (code != GRPC_STATUS_OK && m) {
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    if (resp) *resp = m;
    else if (m) protobuf_c_message_free_unpacked(m, NULL);
    return code;
}

#define ADMIN(m) "/hotstuff.v1.Admin/" m

/* ---- typed wrappers ---- */

static grpc_status_code get_block_h(uint64_t h, Hotstuff__V1__GetBlockResponse **out,
                                    char msg[512]) {
    Hotstuff__V1__GetBlockRequest q = HOTSTUFF__V1__GET_BLOCK_REQUEST__INIT;
    q.selector_case = HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HEIGHT;
    q.height = h;
    return unary(ADMIN("GetBlock"), &q.base, &hotstuff__v1__get_block_response__descriptor,
                 (ProtobufCMessage **)out, msg, 5000);
}

static grpc_status_code get_block_hash(const uint8_t *p, size_t len,
                                       Hotstuff__V1__GetBlockResponse **out, char msg[512]) {
    Hotstuff__V1__GetBlockRequest q = HOTSTUFF__V1__GET_BLOCK_REQUEST__INIT;
    q.selector_case = HOTSTUFF__V1__GET_BLOCK_REQUEST__SELECTOR_HASH;
    q.hash.data = (uint8_t *)p;
    q.hash.len = len;
    return unary(ADMIN("GetBlock"), &q.base, &hotstuff__v1__get_block_response__descriptor,
                 (ProtobufCMessage **)out, msg, 5000);
}

static grpc_status_code submit(const uint8_t *tx, size_t len, bool wait, int64_t deadline_ms,
                               Hotstuff__V1__AdminSubmitTransactionResponse **out,
                               char msg[512]) {
    Hotstuff__V1__AdminSubmitTransactionRequest q =
        HOTSTUFF__V1__ADMIN_SUBMIT_TRANSACTION_REQUEST__INIT;
    q.transaction.data = (uint8_t *)tx;
    q.transaction.len = len;
    q.wait_for_commit = wait;
    return unary(ADMIN("SubmitTransaction"), &q.base,
                 &hotstuff__v1__admin_submit_transaction_response__descriptor,
                 (ProtobufCMessage **)out, msg, deadline_ms);
}

static grpc_status_code get_state(const char *key, Hotstuff__V1__GetStateResponse **out) {
    Hotstuff__V1__GetStateRequest q = HOTSTUFF__V1__GET_STATE_REQUEST__INIT;
    q.key.data = (uint8_t *)key;
    q.key.len = strlen(key);
    return unary(ADMIN("GetState"), &q.base, &hotstuff__v1__get_state_response__descriptor,
                 (ProtobufCMessage **)out, NULL, 5000);
}

static grpc_status_code health_check(const char *svc, int *status) {
    Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    q.service = (char *)svc;
    Grpc__Health__V1__HealthCheckResponse *r = NULL;
    grpc_status_code code =
        unary(HS_HEALTH_CHECK_METHOD, &q.base, &grpc__health__v1__health_check_response__descriptor,
              (ProtobufCMessage **)&r, NULL, 5000);
    *status = r ? (int)r->status : -1;
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    return code;
}

static void print_cluster(void) {
    for (int i = 0; i < N; i++) {
        hs_replica_stats st;
        hs_replica_get_stats(g.cl.nodes[i].replica, &st);
        uint32_t mp;
        kvapp_mempool_stats(g.cl.nodes[i].app, &mp, NULL);
        fprintf(stderr, "  n%d: height %lld view %llu syncing %d mempool %u\n", i,
                (long long)committed_height(i), (unsigned long long)st.view, st.syncing, mp);
    }
}

static bool wait_height(int64_t h) {
    bool ok = CU_AWAIT(committed_height(0) >= h, TIMEOUT);
    if (!ok) print_cluster();
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Tests.                                                                                     */

static void test_status(void) {
    admin_up();
    CU_ASSERT_FATAL(wait_height(2));
    Hotstuff__V1__GetStatusRequest q = HOTSTUFF__V1__GET_STATUS_REQUEST__INIT;
    Hotstuff__V1__GetStatusResponse *r = NULL;
    CU_ASSERT_EQUAL_FATAL(unary(ADMIN("GetStatus"), &q.base,
                                &hotstuff__v1__get_status_response__descriptor,
                                (ProtobufCMessage **)&r, NULL, 5000),
                          GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(r->chain_id, 0);
    CU_ASSERT(r->key.len == 32 && !memcmp(r->key.data, g.cl.keys[0].b, 32));
    CU_ASSERT_EQUAL(r->role, HOTSTUFF__V1__ROLE__ROLE_VALIDATOR);
    CU_ASSERT(r->has_committed);
    CU_ASSERT(r->committed_height >= 2);
    CU_ASSERT_EQUAL(r->committed_hash.len, 32);
    CU_ASSERT_PTR_NOT_NULL(r->highest_pc);
    CU_ASSERT_PTR_NOT_NULL(r->locked_pc);
    CU_ASSERT(r->current_view > 0);
    CU_ASSERT_EQUAL(r->connected_peers, N - 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* An unknown method of a known service, and of an unknown one. */
    CU_ASSERT_EQUAL(unary(ADMIN("Nope"), &q.base, &hotstuff__v1__get_status_response__descriptor,
                          NULL, NULL, 5000),
                    GRPC_STATUS_UNIMPLEMENTED);
    CU_ASSERT_EQUAL(unary("/x.Y/Z", &q.base, &hotstuff__v1__get_status_response__descriptor,
                          NULL, NULL, 5000),
                    GRPC_STATUS_UNIMPLEMENTED);
}

static void test_get_block(void) {
    CU_ASSERT_FATAL(wait_height(3));
    Hotstuff__V1__GetBlockResponse *r = NULL, *r2 = NULL;
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(get_block_h(1, &r, msg), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(r->block->height, 1);
    CU_ASSERT_EQUAL_FATAL(r->block->hash.len, 32);
    CU_ASSERT(r->tip_height >= 3);
    /* The same block by its hash. */
    CU_ASSERT_EQUAL_FATAL(get_block_hash(r->block->hash.data, 32, &r2, msg), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(r2->block->height, 1);
    CU_ASSERT(!memcmp(r2->block->hash.data, r->block->hash.data, 32));
    protobuf_c_message_free_unpacked(&r2->base, NULL);
    /* Malformed hash, unknown hash, above the tip, nothing selected. */
    CU_ASSERT_EQUAL(get_block_hash(r->block->hash.data, 3, NULL, msg),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "32 bytes"));
    uint8_t zero[32] = {0x42};
    CU_ASSERT_EQUAL(get_block_hash(zero, 32, NULL, msg), GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_EQUAL(get_block_h(1000000, NULL, msg), GRPC_STATUS_OUT_OF_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "committed tip"));
    Hotstuff__V1__GetBlockRequest q = HOTSTUFF__V1__GET_BLOCK_REQUEST__INIT;
    CU_ASSERT_EQUAL(unary(ADMIN("GetBlock"), &q.base,
                          &hotstuff__v1__get_block_response__descriptor, NULL, NULL, 5000),
                    GRPC_STATUS_INVALID_ARGUMENT);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* ListBlocks [start, end]: the heights received in order, the status. */
static grpc_status_code list_blocks(uint64_t start, uint64_t end, uint64_t *heights, size_t cap,
                                    size_t *n, char msg[512]) {
    Hotstuff__V1__ListBlocksRequest q = HOTSTUFF__V1__LIST_BLOCKS_REQUEST__INIT;
    q.start_height = start;
    q.end_height = end;
    cstream s;
    cs_open(&s, g_port, false, ADMIN("ListBlocks"), &q.base, true, 10000);
    *n = 0;
    Hotstuff__V1__ListBlocksResponse *m;
    while ((m = (Hotstuff__V1__ListBlocksResponse *)cs_recv(
                &s, &hotstuff__v1__list_blocks_response__descriptor))) {
        if (*n < cap) heights[(*n)++] = m->block->height;
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    grpc_status_code code = cs_finish(&s, false);
    snprintf(msg, 512, "%s", s.msg);
    return code;
}

static void test_list_blocks(void) {
    CU_ASSERT_FATAL(wait_height(12));
    uint64_t h[64];
    size_t n;
    char msg[512];
    CU_ASSERT_EQUAL(list_blocks(2, 5, h, 64, &n, msg), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    for (size_t i = 0; i < n; i++) CU_ASSERT_EQUAL(h[i], 2 + i);
    /* One page at most (list_page 10). */
    CU_ASSERT_EQUAL(list_blocks(0, 1000000, h, 64, &n, msg), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(n, 10);
    CU_ASSERT_EQUAL(h[9], 9);
    CU_ASSERT_EQUAL(list_blocks(5, 4, h, 64, &n, msg), GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(list_blocks(1000000, 1000001, h, 64, &n, msg), GRPC_STATUS_OUT_OF_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "committed tip"));
    CU_ASSERT_EQUAL(n, 0);
}

static void test_validator_set(void) {
    Hotstuff__V1__GetValidatorSetRequest q = HOTSTUFF__V1__GET_VALIDATOR_SET_REQUEST__INIT;
    Hotstuff__V1__GetValidatorSetResponse *r = NULL;
    CU_ASSERT_EQUAL_FATAL(unary(ADMIN("GetValidatorSet"), &q.base,
                                &hotstuff__v1__get_validator_set_response__descriptor,
                                (ProtobufCMessage **)&r, NULL, 5000),
                          GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(r->committed->n_validators, N);
    CU_ASSERT_EQUAL(r->previous->n_validators, N);
    CU_ASSERT(r->update_decided);
    CU_ASSERT(!r->has_update_height);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void test_submit_and_state(void) {
    uint8_t *tx;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_put(77, (const uint8_t *)"color", 5,
                                          (const uint8_t *)"blue", 4, &tx, &len),
                          HS_OK);
    Hotstuff__V1__AdminSubmitTransactionResponse *r = NULL;
    char msg[512];
    CU_ASSERT_EQUAL_FATAL(submit(tx, len, true, 20000, &r, msg), GRPC_STATUS_OK);
    hs_hash h;
    hs_sha256(tx, len, &h);
    CU_ASSERT(r->tx_hash.len == 32 && !memcmp(r->tx_hash.data, h.b, 32));
    CU_ASSERT(r->committed);
    uint64_t height = r->height;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Hotstuff__V1__GetStateResponse *s = NULL;
    CU_ASSERT_EQUAL_FATAL(get_state("color", &s), GRPC_STATUS_OK);
    CU_ASSERT(s->value.len == 4 && !memcmp(s->value.data, "blue", 4));
    CU_ASSERT(s->tip_height >= height);
    protobuf_c_message_free_unpacked(&s->base, NULL);
    CU_ASSERT_EQUAL(get_state("absent", NULL), GRPC_STATUS_NOT_FOUND);
    CU_ASSERT_EQUAL(get_state("", NULL), GRPC_STATUS_INVALID_ARGUMENT);
    /* Again: a duplicate without waiting; with waiting, the commit height at once. */
    CU_ASSERT_EQUAL(submit(tx, len, false, 5000, NULL, msg), GRPC_STATUS_ALREADY_EXISTS);
    CU_ASSERT_EQUAL_FATAL(submit(tx, len, true, 5000, &r, msg), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(r->height, height);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    free(tx);
    /* Garbage and empty transactions. */
    CU_ASSERT_EQUAL(submit((const uint8_t *)"\xff\xff", 2, false, 5000, NULL, msg),
                    GRPC_STATUS_INVALID_ARGUMENT);
    CU_ASSERT_EQUAL(submit((const uint8_t *)"", 0, false, 5000, NULL, msg),
                    GRPC_STATUS_INVALID_ARGUMENT);
    /* Accepted but never committed: the wait ends at the call's deadline. */
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_put(78, (const uint8_t *)"lost", 4,
                                          (const uint8_t *)"x", 1, &tx, &len),
                          HS_OK);
    atomic_store(&g.blackhole, true);
    CU_ASSERT_EQUAL(submit(tx, len, true, 600, NULL, msg), GRPC_STATUS_DEADLINE_EXCEEDED);
    atomic_store(&g.blackhole, false);
    free(tx);
    /* No deadline at all is bounded by max_wait_ms (see admin.h); not waited for here. */
}

static void test_submit_stream(void) {
    cstream s;
    cs_open(&s, g_port, false, ADMIN("SubmitTransactions"), NULL, false, 20000);
    for (int i = 0; i < 7; i++) {
        uint8_t *tx = NULL;
        size_t len = 0;
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        Hotstuff__V1__SubmitTransactionsRequest q = HOTSTUFF__V1__SUBMIT_TRANSACTIONS_REQUEST__INIT;
        if (i < 5) {
            CU_ASSERT_EQUAL_FATAL(kvtx_encode_put(1000 + (uint64_t)i, (const uint8_t *)key,
                                                  strlen(key), (const uint8_t *)"v", 1, &tx,
                                                  &len),
                                  HS_OK);
            q.transaction.data = tx;
            q.transaction.len = len;
        } else {
            q.transaction.data = (uint8_t *)"\x01\x02\x03";
            q.transaction.len = 3;
        }
        cs_send(&s, &q.base);
        free(tx);
    }
    /* A batch in `transactions` with `transaction` unset: each one counts on its own. */
    uint8_t *b0 = NULL, *b1 = NULL;
    size_t l0 = 0, l1 = 0;
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_put(2000, (const uint8_t *)"b0", 2, (const uint8_t *)"v",
                                          1, &b0, &l0),
                          HS_OK);
    CU_ASSERT_EQUAL_FATAL(kvtx_encode_put(2001, (const uint8_t *)"b1", 2, (const uint8_t *)"v",
                                          1, &b1, &l1),
                          HS_OK);
    ProtobufCBinaryData batch[3] = {{l0, b0}, {3, (uint8_t *)"\x01\x02\x03"}, {l1, b1}};
    Hotstuff__V1__SubmitTransactionsRequest bq = HOTSTUFF__V1__SUBMIT_TRANSACTIONS_REQUEST__INIT;
    bq.n_transactions = 3;
    bq.transactions = batch;
    cs_send(&s, &bq.base);
    free(b0);
    free(b1);
    cs_close_send(&s);
    Hotstuff__V1__SubmitTransactionsResponse *r = (Hotstuff__V1__SubmitTransactionsResponse *)
        cs_recv(&s, &hotstuff__v1__submit_transactions_response__descriptor);
    CU_ASSERT_EQUAL(cs_finish(&s, false), GRPC_STATUS_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->accepted, 7);
    CU_ASSERT_EQUAL(r->rejected, 3);
    CU_ASSERT(strlen(r->first_error) > 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    Hotstuff__V1__GetStateResponse *st = NULL;
    bool ok = CU_AWAIT(get_state("k4", &st) == GRPC_STATUS_OK, TIMEOUT);
    CU_ASSERT(ok);
    if (st) protobuf_c_message_free_unpacked(&st->base, NULL);
    st = NULL;
    bool ok_b = CU_AWAIT(get_state("b1", &st) == GRPC_STATUS_OK, TIMEOUT);
    CU_ASSERT(ok_b);
    if (!ok || !ok_b) print_cluster();
    if (st) protobuf_c_message_free_unpacked(&st->base, NULL);
}

/* ---- health ---- */

static int watch_next(cstream *s) {
    Grpc__Health__V1__HealthCheckResponse *r = (Grpc__Health__V1__HealthCheckResponse *)cs_recv(
        s, &grpc__health__v1__health_check_response__descriptor);
    int st = r ? (int)r->status : -1;
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    return st;
}

static void watch_open(cstream *s, const char *svc) {
    Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    q.service = (char *)svc;
    cs_open(s, g_port, false, HS_HEALTH_WATCH_METHOD, &q.base, true, 60000);
}

static void *stop_thread(void *a) {
    hs_admin_stop(a);
    return NULL;
}

static void test_health(void) {
    int st;
    CU_ASSERT_EQUAL(health_check("", &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(st, HS_HEALTH_SERVING);
    CU_ASSERT_EQUAL(health_check(HS_ADMIN_SERVICE, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(st, HS_HEALTH_SERVING);
    CU_ASSERT_EQUAL(health_check(HS_REFLECTION_V1_SERVICE, &st), GRPC_STATUS_OK);
    CU_ASSERT_EQUAL(health_check("nope", &st), GRPC_STATUS_NOT_FOUND);
    CU_ASSERT(CU_AWAIT(health_check(HS_ADMIN_READY_SERVICE, &st) == GRPC_STATUS_OK &&
                           st == HS_HEALTH_SERVING,
                       TIMEOUT));
    /* Watch: unknown service first, then readiness through a stall and a recovery. */
    cstream w;
    watch_open(&w, "nope");
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_SERVICE_UNKNOWN);
    CU_ASSERT_EQUAL(cs_finish(&w, true), GRPC_STATUS_CANCELLED);
    watch_open(&w, HS_ADMIN_READY_SERVICE);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_SERVING);
    /* Two of four replicas cut off: no quorum, no commits, not ready within the threshold. */
    tn_set_disconnected(g.cl.hub, &g.cl.keys[2], true);
    tn_set_disconnected(g.cl.hub, &g.cl.keys[3], true);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_NOT_SERVING);
    int64_t stalled = committed_height(0);
    tn_set_disconnected(g.cl.hub, &g.cl.keys[2], false);
    tn_set_disconnected(g.cl.hub, &g.cl.keys[3], false);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_SERVING);
    CU_ASSERT(committed_height(0) > stalled);
    CU_ASSERT_EQUAL(cs_finish(&w, true), GRPC_STATUS_CANCELLED);
    /* Shutting down: "" goes NOT_SERVING on an open Watch, then the stream ends. */
    watch_open(&w, "");
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_SERVING);
    pthread_mutex_lock(&g.mu);
    hs_admin *a = g.admin;
    g.admin = NULL;
    pthread_mutex_unlock(&g.mu);
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, stop_thread, a), 0);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_NOT_SERVING);
    CU_ASSERT_EQUAL(watch_next(&w), -1);
    grpc_status_code code = cs_finish(&w, false);
    CU_ASSERT(code == GRPC_STATUS_UNAVAILABLE || code == GRPC_STATUS_OK);
    pthread_join(t, NULL);
    admin_up();
}

/* The replica port serves health through the same code (net/services.h): its Watch also
 * hears NOT_SERVING when stop begins, and then the stream ends. */
static void *transport_stop_thread(void *t) {
    hs_transport_stop(t);
    return NULL;
}

static void test_replica_port_health(void) {
    hs_transport_config c;
    memset(&c, 0, sizeof c);
    hs_transport_config_defaults(&c);
    hs_keypair_generate(&c.me);
    c.chain_id = 7;
    snprintf(c.listen_address, sizeof c.listen_address, "127.0.0.1:0");
    hs_transport *t = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(hs_transport_start(&c, &t, err, sizeof err), HS_OK);
    cstream w;
    Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    q.service = "nope";
    cs_open(&w, hs_transport_port(t), false, HS_HEALTH_WATCH_METHOD, &q.base, true, 60000);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_SERVICE_UNKNOWN);
    CU_ASSERT_EQUAL(cs_finish(&w, true), GRPC_STATUS_CANCELLED);
    q.service = "hotstuff.v1.Replica";
    cs_open(&w, hs_transport_port(t), false, HS_HEALTH_WATCH_METHOD, &q.base, true, 60000);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_SERVING);
    pthread_t th;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, transport_stop_thread, t), 0);
    CU_ASSERT_EQUAL(watch_next(&w), HS_HEALTH_NOT_SERVING);
    CU_ASSERT_EQUAL(watch_next(&w), -1);
    /* The stream ends cleanly after that message, not by the stop's cancellation. */
    CU_ASSERT_EQUAL(cs_finish(&w, false), GRPC_STATUS_UNAVAILABLE);
    pthread_join(th, NULL);
}

/* ---- Subscribe ---- */

static void sub_open(cstream *s, bool tiny, const Hotstuff__V1__EventType *types, size_t n,
                     bool from, uint64_t from_h) {
    Hotstuff__V1__SubscribeRequest q = HOTSTUFF__V1__SUBSCRIBE_REQUEST__INIT;
    q.types = (Hotstuff__V1__EventType *)types;
    q.n_types = n;
    q.has_from_height = from;
    q.from_height = from_h;
    cs_open(s, g_port, tiny, ADMIN("Subscribe"), &q.base, true, 120000);
}

static Hotstuff__V1__SubscribeResponse *sub_next(cstream *s) {
    return (Hotstuff__V1__SubscribeResponse *)cs_recv(
        s, &hotstuff__v1__subscribe_response__descriptor);
}

/* Reads commits until `count` arrived; checks they are consecutive from `first`. Returns the
 * last height read, or UINT64_MAX on a failure. */
static uint64_t read_commits(cstream *s, uint64_t first, int count, int *replayed) {
    uint64_t want = first;
    for (int i = 0; i < count; i++) {
        Hotstuff__V1__SubscribeResponse *m = sub_next(s);
        CU_ASSERT_PTR_NOT_NULL(m);
        if (!m) return UINT64_MAX;
        CU_ASSERT_EQUAL(m->type, HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK);
        CU_ASSERT_EQUAL(m->height, want);
        CU_ASSERT_EQUAL(m->block_hash.len, 32);
        if (replayed && m->replayed) (*replayed)++;
        bool ok = m->height == want;
        protobuf_c_message_free_unpacked(&m->base, NULL);
        if (!ok) return UINT64_MAX;
        want++;
    }
    return want - 1;
}

static void test_subscribe_resume(void) {
    static const Hotstuff__V1__EventType commit[] = {
        HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK};
    CU_ASSERT_FATAL(wait_height(15));
    cstream s;
    sub_open(&s, false, commit, 1, true, 3);
    int replayed = 0;
    /* 3..14 are in the store: replayed; then live ones follow without a gap. */
    uint64_t last = read_commits(&s, 3, 20, &replayed);
    CU_ASSERT_FATAL(last != UINT64_MAX);
    CU_ASSERT(replayed >= 12);
    /* Restart the admin service under the open stream. */
    admin_down();
    Hotstuff__V1__SubscribeResponse *m;
    while ((m = sub_next(&s))) { /* whatever was in flight still counts */
        CU_ASSERT_EQUAL(m->height, last + 1);
        last = m->height;
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    CU_ASSERT_EQUAL(cs_finish(&s, false), GRPC_STATUS_UNAVAILABLE);
    admin_up();
    sub_open(&s, false, commit, 1, true, last + 1);
    CU_ASSERT(read_commits(&s, last + 1, 10, NULL) != UINT64_MAX);
    CU_ASSERT_EQUAL(cs_finish(&s, true), GRPC_STATUS_CANCELLED);

    /* All types: view events arrive too; commits still in order. */
    sub_open(&s, false, NULL, 0, false, 0);
    bool saw_view = false, saw_commit = false;
    uint64_t prev = 0;
    for (int i = 0; i < 200 && !(saw_view && saw_commit); i++) {
        m = sub_next(&s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_START_VIEW) saw_view = m->view > 0;
        if (m->type == HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK) {
            CU_ASSERT(!saw_commit || m->height == prev + 1);
            saw_commit = true;
            prev = m->height;
        }
        CU_ASSERT(strlen(m->text) > 0);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    CU_ASSERT(saw_view && saw_commit);
    CU_ASSERT_EQUAL(cs_finish(&s, true), GRPC_STATUS_CANCELLED);

    /* Malformed subscriptions. */
    static const Hotstuff__V1__EventType bad[] = {0};
    sub_open(&s, false, bad, 1, false, 0);
    CU_ASSERT_EQUAL(cs_finish(&s, false), GRPC_STATUS_INVALID_ARGUMENT);
    static const Hotstuff__V1__EventType view[] = {HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_START_VIEW};
    sub_open(&s, false, view, 1, true, 0);
    CU_ASSERT_EQUAL(cs_finish(&s, false), GRPC_STATUS_INVALID_ARGUMENT);
}

static uint32_t subscribers(void) {
    hs_admin_stats st;
    pthread_mutex_lock(&g.mu);
    hs_admin_get_stats(g.admin, &st);
    pthread_mutex_unlock(&g.mu);
    return st.subscribers;
}

static uint64_t cut_count(void) {
    hs_admin_stats st;
    pthread_mutex_lock(&g.mu);
    hs_admin_get_stats(g.admin, &st);
    pthread_mutex_unlock(&g.mu);
    return st.subscribers_cut;
}

static void test_slow_subscriber_and_cap(void) {
    admin_down();
    hs_admin_config c = admin_cfg();
    c.subscriber_queue = 8;
    c.max_subscribers = 2;
    admin_up_with(&c);

    /* The cap, first and on its own: two subscribers to an event type this cluster does not
     * produce (so neither can be cut for a full queue meanwhile), and a third is refused. */
    static const Hotstuff__V1__EventType rare[] = {
        HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_UPDATE_VALIDATOR_SET};
    cstream r1, r2, r3;
    sub_open(&r1, false, rare, 1, false, 0);
    sub_open(&r2, false, rare, 1, false, 0);
    CU_ASSERT(CU_AWAIT(subscribers() == 2, TIMEOUT));
    sub_open(&r3, false, rare, 1, false, 0);
    CU_ASSERT_EQUAL(cs_finish(&r3, false), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r3.msg, "too many subscribers"));
    CU_ASSERT_EQUAL(cs_finish(&r1, true), GRPC_STATUS_CANCELLED);
    CU_ASSERT_EQUAL(cs_finish(&r2, true), GRPC_STATUS_CANCELLED);
    CU_ASSERT(CU_AWAIT(subscribers() == 0, TIMEOUT));

    /* A reading subscriber, then one that never reads, on a connection with a tiny
     * flow-control window: the slow one is cut off; consensus and the other carry on. */
    cstream slow, s2;
    static const Hotstuff__V1__EventType commit[] = {
        HOTSTUFF__V1__EVENT_TYPE__EVENT_TYPE_COMMIT_BLOCK};
    sub_open(&s2, false, commit, 1, false, 0);
    CU_ASSERT(CU_AWAIT(subscribers() == 1, TIMEOUT));
    sub_open(&slow, true, NULL, 0, true, 0);
    CU_ASSERT(CU_AWAIT(cut_count() == 1, TIMEOUT));
    int64_t h = committed_height(0);
    /* The status follows whatever the connection had buffered: read that first. */
    Hotstuff__V1__SubscribeResponse *m;
    while ((m = sub_next(&slow))) protobuf_c_message_free_unpacked(&m->base, NULL);
    CU_ASSERT_EQUAL(cs_finish(&slow, false), GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(slow.msg, "subscriber queue full"));
    CU_ASSERT_PTR_NOT_NULL(strstr(slow.msg, "committed height"));
    CU_ASSERT(wait_height(h + 3));
    m = sub_next(&s2);
    CU_ASSERT_PTR_NOT_NULL(m);
    if (m) protobuf_c_message_free_unpacked(&m->base, NULL);
    CU_ASSERT_EQUAL(cs_finish(&s2, true), GRPC_STATUS_CANCELLED);
    CU_ASSERT(CU_AWAIT(subscribers() == 0, TIMEOUT));
    admin_down();
    admin_up();
}

/* Calls in progress are capped; oversized requests are refused by the library's limit. */
static void test_limits(void) {
    admin_down();
    hs_admin_config c = admin_cfg();
    c.max_calls = 2;
    c.max_recv_message_bytes = 4096;
    admin_up_with(&c);
    cstream w1, w2;
    watch_open(&w1, "");
    CU_ASSERT_EQUAL(watch_next(&w1), HS_HEALTH_SERVING);
    watch_open(&w2, "");
    CU_ASSERT_EQUAL(watch_next(&w2), HS_HEALTH_SERVING);
    char msg[512];
    Hotstuff__V1__GetStatusRequest q = HOTSTUFF__V1__GET_STATUS_REQUEST__INIT;
    CU_ASSERT_EQUAL(unary(ADMIN("GetStatus"), &q.base,
                          &hotstuff__v1__get_status_response__descriptor, NULL, msg, 5000),
                    GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "too many calls"));
    CU_ASSERT_EQUAL(cs_finish(&w1, true), GRPC_STATUS_CANCELLED);
    /* A slot is free again once the server has seen the cancel. */
    CU_ASSERT(CU_AWAIT(unary(ADMIN("GetStatus"), &q.base,
                             &hotstuff__v1__get_status_response__descriptor, NULL, NULL,
                             5000) == GRPC_STATUS_OK,
                       TIMEOUT));
    static uint8_t big[8192];
    CU_ASSERT_EQUAL(submit(big, sizeof big, false, 5000, NULL, msg),
                    GRPC_STATUS_RESOURCE_EXHAUSTED);
    CU_ASSERT_EQUAL(cs_finish(&w2, true), GRPC_STATUS_CANCELLED);
    admin_down();
    admin_up();
}

/* ---- reflection ---- */

static Grpc__Reflection__V1alpha__ServerReflectionResponse *refl_ask(
    cstream *s, const Grpc__Reflection__V1alpha__ServerReflectionRequest *q) {
    cs_send(s, &q->base);
    return (Grpc__Reflection__V1alpha__ServerReflectionResponse *)cs_recv(
        s, &grpc__reflection__v1alpha__server_reflection_response__descriptor);
}

static char *file_name(const ProtobufCBinaryData *d) {
    Google__Protobuf__FileDescriptorProto *f =
        google__protobuf__file_descriptor_proto__unpack(NULL, d->len, d->data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *n = strdup(f->name);
    google__protobuf__file_descriptor_proto__free_unpacked(f, NULL);
    return n;
}

static void reflection_over(const char *method) {
    cstream s;
    cs_open(&s, g_port, false, method, NULL, false, 20000);
    Grpc__Reflection__V1alpha__ServerReflectionRequest q =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    q.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    q.list_services = "*";
    Grpc__Reflection__V1alpha__ServerReflectionResponse *r = refl_ask(&s, &q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(r->message_response_case,
                          GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    bool admin = false, health = false, v1 = false, v1a = false;
    for (size_t i = 0; i < r->list_services_response->n_service; i++) {
        const char *n = r->list_services_response->service[i]->name;
        admin |= !strcmp(n, HS_ADMIN_SERVICE);
        health |= !strcmp(n, HS_HEALTH_SERVICE);
        v1 |= !strcmp(n, HS_REFLECTION_V1_SERVICE);
        v1a |= !strcmp(n, HS_REFLECTION_V1ALPHA_SERVICE);
    }
    CU_ASSERT(admin && health && v1 && v1a);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* A method symbol: admin.proto first, then its dependency types.proto. */
    q.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
    q.file_containing_symbol = "hotstuff.v1.Admin.Subscribe";
    r = refl_ask(&s, &q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(r->message_response_case,
                          GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    CU_ASSERT_EQUAL_FATAL(r->file_descriptor_response->n_file_descriptor_proto, 2);
    char *f0 = file_name(&r->file_descriptor_response->file_descriptor_proto[0]);
    char *f1 = file_name(&r->file_descriptor_response->file_descriptor_proto[1]);
    CU_ASSERT_STRING_EQUAL(f0, "hotstuff/v1/admin.proto");
    CU_ASSERT_STRING_EQUAL(f1, "hotstuff/v1/types.proto");
    free(f0);
    free(f1);
    CU_ASSERT_PTR_NOT_NULL(r->original_request);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* A nested enum value, whose file was sent already: only the answer itself again. */
    q.file_containing_symbol = "hotstuff.v1.PHASE_DECIDE";
    r = refl_ask(&s, &q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(r->file_descriptor_response->n_file_descriptor_proto, 1);
    f0 = file_name(&r->file_descriptor_response->file_descriptor_proto[0]);
    CU_ASSERT_STRING_EQUAL(f0, "hotstuff/v1/types.proto");
    free(f0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* Unknown symbol: NOT_FOUND in the stream, which stays open. */
    q.file_containing_symbol = "no.such.Thing";
    r = refl_ask(&s, &q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->message_response_case,
                    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    CU_ASSERT_EQUAL(r->error_response->error_code, GRPC_STATUS_NOT_FOUND);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    q.message_request_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
    q.file_by_filename = "grpc/health/v1/health.proto";
    r = refl_ask(&s, &q);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL_FATAL(r->message_response_case,
                          GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    f0 = file_name(&r->file_descriptor_response->file_descriptor_proto[0]);
    CU_ASSERT_STRING_EQUAL(f0, "grpc/health/v1/health.proto");
    free(f0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cs_close_send(&s);
    CU_ASSERT_PTR_NULL(cs_recv(&s, &grpc__reflection__v1alpha__server_reflection_response__descriptor));
    CU_ASSERT_EQUAL(cs_finish(&s, false), GRPC_STATUS_OK);
}

static void test_reflection(void) {
    reflection_over(HS_REFLECTION_V1_METHOD);
    reflection_over(HS_REFLECTION_V1ALPHA_METHOD);
}

static void test_teardown(void) {
    admin_down();
    cluster_down();
}

static const cu_test tests[] = {
    {"GetStatus and unknown methods", test_status},
    {"GetBlock by height and hash, and its errors", test_get_block},
    {"ListBlocks range, page and errors", test_list_blocks},
    {"GetValidatorSet", test_validator_set},
    {"SubmitTransaction (wait for commit) and GetState", test_submit_and_state},
    {"SubmitTransactions stream counts", test_submit_stream},
    {"health Check and Watch transitions", test_health},
    {"Subscribe resumes across a restart with no gap or duplicate", test_subscribe_resume},
    {"slow subscriber cut off; subscriber cap", test_slow_subscriber_and_cap},
    {"call cap and message size limit", test_limits},
    {"reflection v1 and v1alpha", test_reflection},
    {"the replica port's health Watch through stop", test_replica_port_health},
    {"teardown", test_teardown},
    {NULL, NULL}};

int main(void) {
    return cu_run("admin", tests);
}
