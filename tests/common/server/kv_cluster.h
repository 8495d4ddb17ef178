/* tests/common/server/kv_cluster.h - in-process replicas running the built-in key-value app
 * (server/app/) over the in-memory network (mem_network.h), for the tests of the app and of
 * the admin service. Each node has a memory store initialised with the same validator set
 * (the nodes' keys, power 1), and its app sees every CommitBlock (kvapp_on_commit) before the
 * test's own handler, if any, sees the event.
 *
 * Ownership: kv_cluster_up fills a caller-owned kv_cluster; kv_cluster_down stops and frees
 * everything in it.
 */
#ifndef HS_TESTS_KV_CLUSTER_H
#define HS_TESTS_KV_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "app/kvapp.h"
#include "hotstuff/hotstuff.h"
#include "hotstuff/store.h"
#include "mem_network.h"

#define KV_CLUSTER_MAX 8

typedef struct kv_node {
    int index;
    hs_keypair kp; /* seed filled with 0x10 + index */
    hs_mem_store *mem;
    hs_kv_store kv;
    kvapp *app;
    hs_app iface;
    hs_network net;
    hs_config cfg;
    hs_replica *replica;
} kv_node;

/* Every event of every node, after the app has seen CommitBlock. */
typedef void (*kv_event_fn)(kv_node *n, const hs_event *e, void *ctx);

typedef struct kv_cluster {
    int n;
    kv_node nodes[KV_CLUSTER_MAX];
    hs_key keys[KV_CLUSTER_MAX];
    tn_hub *hub;
    kv_event_fn on_event;
    void *ctx;
} kv_cluster;

/* A keypair from a seed of 32 bytes `fill`. */
void kv_keypair(uint8_t fill, hs_keypair *out);
/* Starts n replicas with app (its chain_id must be hs_config_test_values' 0) and 500 ms views. */
void kv_cluster_up(kv_cluster *c, int n, const kvapp_config *app, kv_event_fn on_event,
                   void *ctx);
void kv_cluster_down(kv_cluster *c);

/* Whether node n's committed state has k = want. */
bool kv_committed_value(kv_node *n, const char *k, const char *want);
/* Whether node n's committed validator set gives k the power want. */
bool kv_committed_power(kv_node *n, const hs_key *k, uint64_t want);
/* Node n's highest committed height, -1 with none, -2 when the store cannot say. */
int64_t kv_committed_height(kv_node *n);

#endif
