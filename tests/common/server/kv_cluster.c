/* tests/common/server/kv_cluster.c - see kv_cluster.h. */
#include "kv_cluster.h"

#include <string.h>

#include "cu.h"
#include "hotstuff/block_tree.h"
#include "hotstuff/crypto.h"

void kv_keypair(uint8_t fill, hs_keypair *out) {
    uint8_t seed[32];
    memset(seed, fill, sizeof seed);
    CU_ASSERT_FATAL(hs_keypair_from_seed(seed, out) == HS_OK);
}

static void node_event(void *ctx, const hs_event *e) {
    kv_node *n = ctx;
    if (e->type == HS_EV_COMMIT_BLOCK)
        kvapp_on_commit(n->app, &e->u.commit_block.block, NULL, NULL, NULL, NULL);
    /* nodes[] sits in the cluster: its first element's address gives the cluster. */
    kv_cluster *c = (kv_cluster *)((char *)(n - n->index) - offsetof(kv_cluster, nodes));
    if (c->on_event) c->on_event(n, e, c->ctx);
}

static void node_up(kv_cluster *c, kv_node *n, const kvapp_config *app,
                    const hs_validator_set *vs0) {
    n->mem = hs_mem_store_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(n->mem);
    n->kv = hs_mem_store_kv(n->mem);
    hs_vss vss;
    memset(&vss, 0, sizeof vss);
    vss.committed = *vs0;
    vss.previous = *vs0;
    vss.update_decided = true;
    hs_app_updates empty = {0};
    CU_ASSERT_EQUAL_FATAL(hs_replica_initialize(&n->kv, &empty, &vss), HS_OK);
    n->app = kvapp_new(app, &n->kv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n->app);
    n->iface = kvapp_app(n->app);
    CU_ASSERT_FATAL(tn_endpoint(c->hub, &c->keys[n->index], &n->net));
    n->cfg = hs_config_test_values(&n->kp);
    n->cfg.max_view_time_ms = 500;
    /* Room for proposals that carry transactions when they arrive a view early (the test
     * values' 1 KiB drops them), and sync soon after a stall, as tests/common/node.c does. */
    n->cfg.progress_msg_buffer_capacity = 1u << 20;
    n->cfg.block_sync_trigger_timeout_ms = 3000;
    n->cfg.block_sync_server_advertise_time_ms = 1000;
    hs_replica_spec_builder *b = hs_replica_spec_builder_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    hs_spec_app(b, &n->iface);
    hs_spec_network(b, &n->net);
    hs_spec_kv_store(b, &n->kv);
    hs_spec_configuration(b, &n->cfg);
    for (int t = 0; t < HS_EV_COUNT; t++) hs_spec_on(b, (hs_event_type)t, node_event, n);
    hs_replica_spec *spec = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(hs_spec_build(b, &spec, err, sizeof err), HS_OK);
    hs_replica_spec_builder_free(b);
    CU_ASSERT_EQUAL_FATAL(hs_replica_start(spec, &n->replica), HS_OK);
    hs_replica_spec_free(spec);
}

void kv_cluster_up(kv_cluster *c, int n, const kvapp_config *app, kv_event_fn on_event,
                   void *ctx) {
    CU_ASSERT_FATAL(n > 0 && n <= KV_CLUSTER_MAX && app->chain_id == 0);
    memset(c, 0, sizeof *c);
    hs_crypto_init();
    c->n = n;
    c->on_event = on_event;
    c->ctx = ctx;
    hs_validator_set vs0 = {0};
    for (int i = 0; i < n; i++) {
        c->nodes[i].index = i;
        kv_keypair((uint8_t)(0x10 + i), &c->nodes[i].kp);
        c->keys[i] = c->nodes[i].kp.public_key;
        CU_ASSERT_FATAL(hs_vs_put(&vs0, &c->keys[i], 1) == HS_OK);
    }
    c->hub = tn_hub_new(c->keys, (size_t)n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->hub);
    for (int i = 0; i < n; i++) node_up(c, &c->nodes[i], app, &vs0);
    hs_vs_free(&vs0);
}

void kv_cluster_down(kv_cluster *c) {
    for (int i = 0; i < c->n; i++) hs_replica_stop(c->nodes[i].replica);
    tn_hub_free(c->hub);
    for (int i = 0; i < c->n; i++) {
        kvapp_free(c->nodes[i].app);
        hs_mem_store_free(c->nodes[i].mem);
    }
    memset(c, 0, sizeof *c);
}

bool kv_committed_value(kv_node *n, const char *k, const char *want) {
    hs_kv_reader snap;
    if (n->kv.snapshot(n->kv.self, &snap) != HS_OK) return false;
    hs_bytes v = {0};
    bool ok = kvapp_read(&snap, (const uint8_t *)k, strlen(k), &v) == HS_OK &&
              v.len == strlen(want) && !memcmp(v.p, want, v.len);
    hs_bytes_free(&v);
    n->kv.release_snapshot(n->kv.self, &snap);
    return ok;
}

bool kv_committed_power(kv_node *n, const hs_key *k, uint64_t want) {
    hs_kv_reader snap;
    if (n->kv.snapshot(n->kv.self, &snap) != HS_OK) return false;
    hs_validator_set vs = {0};
    bool ok = false;
    if (hs_bt_committed_vs(&snap, &vs) == HS_OK) {
        int64_t i = hs_vs_find(&vs, k);
        ok = i >= 0 && vs.v[i].power == want;
    }
    hs_vs_free(&vs);
    n->kv.release_snapshot(n->kv.self, &snap);
    return ok;
}

int64_t kv_committed_height(kv_node *n) {
    hs_kv_reader r;
    if (n->kv.snapshot(n->kv.self, &r) != HS_OK) return -2;
    uint64_t h;
    hs_status s = hs_bt_highest_committed_height(&r, &h);
    n->kv.release_snapshot(n->kv.self, &r);
    return s == HS_OK ? (int64_t)h : -1;
}
