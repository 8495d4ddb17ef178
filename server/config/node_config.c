/* server/config/node_config.c - config.json: listen addresses, peers, the consensus, limits,
 * network, app and admin sections, paths and the log level, with the defaults below
 * (documented in server/README.md). The shared readers are in json_read.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sodium.h>

#include "config/json_read.h"
#include "config/node_config.h"
#include <limits.h>

#include "hotstuff/replica.h"

/* No file of ours is anywhere near this; it bounds what a bad path can make us read. */
#define MAX_FILE_BYTES (16u << 20)
/* Integers in JSON numbers are exact up to 2^53; larger ones must be given as strings. */
#define MAX_EXACT_DOUBLE 9007199254740992.0

/* ---- defaults (documented in server/README.md) ---- */
#define DEF_LISTEN "0.0.0.0:26600"
#define DEF_KEY_FILE "key.json"
#define DEF_GENESIS_FILE "genesis.json"
#define DEF_DATA_DIR "data"
#define DEF_REQUEST_LIMIT 10
#define DEF_ADVERTISE_MS 5000
#define DEF_RESPONSE_TIMEOUT_MS 3000
#define DEF_BLACKLIST_MS 10000
#define DEF_TRIGGER_VIEW_DIFF 2
#define DEF_TRIGGER_TIMEOUT_MS 30000
#define DEF_BUFFER_BYTES (1u << 20)
#define DEF_EPOCH_LENGTH 50
#define DEF_MAX_VIEW_MS 2000
#define DEF_TRANSPORT_INBOX 8192
#define DEF_TRANSPORT_OUTBOX 1024
#define DEF_REPLICA_INBOX 8192
#define DEF_EVENT_QUEUE 65536
#define DEF_SYNC_QUEUE 256
/* The admin service: the same numbers as hs_admin_config_defaults (server/admin/admin.c). */
#define DEF_ADMIN_RECV (1u << 20)
#define DEF_ADMIN_SEND (64u << 20)
#define DEF_ADMIN_CALLS 256
#define DEF_ADMIN_STREAMS 100
#define DEF_ADMIN_SUBSCRIBERS 64
#define DEF_ADMIN_SUBSCRIBER_QUEUE 1024
#define DEF_ADMIN_READY_MS 10000
#define ONE_DAY_MS (24ull * 60 * 60 * 1000)

hs_log_level node_log_level_default(void) { return HS_LOG_INFO; }

/* ---- config.json ---- */

static const char *const config_fields[] = {
    "listen", "key_file", "genesis_file", "data_dir", "log_level", "sync_writes", "peers",
    "consensus", "limits", "network", "app", "admin", NULL};
static const char *const listen_fields[] = {"replica", "admin", NULL};
static const char *const peer_fields[] = {"key", "address", NULL};
static const char *const consensus_fields[] = {
    "block_sync_request_limit", "block_sync_server_advertise_time_ms",
    "block_sync_response_timeout_ms", "block_sync_blacklist_expiry_time_ms",
    "block_sync_trigger_min_view_difference", "block_sync_trigger_timeout_ms",
    "progress_msg_buffer_capacity", "epoch_length", "max_view_time_ms", "log_events",
    "leader_selection", "vote_routing", "view_deadlines", NULL};
/* The liveness choices (docs/liveness.md), indexed by their hs_config enum values. */
const char *const node_leader_selection_names[] = {"round_robin", "active", NULL};
const char *const node_vote_routing_names[] = {"next_leader", "all", NULL};
const char *const node_view_deadlines_names[] = {"epoch", "entry", NULL};
static const char *const limits_fields[] = {
    "max_message_bytes", "transport_inbox_capacity", "transport_outbox_capacity",
    "replica_inbox_capacity", "event_queue_capacity", "sync_request_queue_capacity",
    "mempool_max_txs", "mempool_max_bytes", "max_tx_bytes", "max_key_bytes", "max_block_txs",
    "max_block_bytes", "max_validators", NULL};
static const char *const app_fields[] = {"empty_block_wait_ms", NULL};
static const char *const admin_fields[] = {
    "max_recv_message_bytes", "max_send_message_bytes", "max_calls", "max_concurrent_streams",
    "max_subscribers", "subscriber_queue", "ready_max_commit_age_ms", NULL};
static const char *const network_fields[] = {"reconnect_initial_ms", "reconnect_max_ms",
                                             "keepalive_time_ms", "handshake_timeout_ms", NULL};

/* base_dir/rel, or rel itself when absolute. malloc'd. */
static char *resolve(const char *base_dir, const char *rel) {
    size_t need = strlen(base_dir) + strlen(rel) + 2;
    char *p = malloc(need);
    if (!p) return NULL;
    if (rel[0] == '/') snprintf(p, need, "%s", rel);
    else snprintf(p, need, "%s/%s", base_dir, rel);
    return p;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

void node_config_defaults(node_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->listen_replica, sizeof c->listen_replica, "%s", DEF_LISTEN);
    c->log_level = node_log_level_default();
    c->sync_writes = true;
    hs_config *k = &c->consensus;
    k->block_sync_request_limit = DEF_REQUEST_LIMIT;
    k->block_sync_server_advertise_time_ms = DEF_ADVERTISE_MS;
    k->block_sync_response_timeout_ms = DEF_RESPONSE_TIMEOUT_MS;
    k->block_sync_blacklist_expiry_time_ms = DEF_BLACKLIST_MS;
    k->block_sync_trigger_min_view_difference = DEF_TRIGGER_VIEW_DIFF;
    k->block_sync_trigger_timeout_ms = DEF_TRIGGER_TIMEOUT_MS;
    k->progress_msg_buffer_capacity = DEF_BUFFER_BYTES;
    k->epoch_length = DEF_EPOCH_LENGTH;
    k->max_view_time_ms = DEF_MAX_VIEW_MS;
    k->log_events = false;
    hs_config_default_liveness(k);
    k->inbox_capacity = DEF_REPLICA_INBOX;
    k->event_queue_capacity = DEF_EVENT_QUEUE;
    k->sync_request_queue_capacity = DEF_SYNC_QUEUE;
    c->app = kvapp_config_default();
    c->transport_inbox_capacity = DEF_TRANSPORT_INBOX;
    c->transport_outbox_capacity = DEF_TRANSPORT_OUTBOX;
    c->admin.max_recv_message_bytes = DEF_ADMIN_RECV;
    c->admin.max_send_message_bytes = DEF_ADMIN_SEND;
    c->admin.max_calls = DEF_ADMIN_CALLS;
    c->admin.max_concurrent_streams = DEF_ADMIN_STREAMS;
    c->admin.max_subscribers = DEF_ADMIN_SUBSCRIBERS;
    c->admin.subscriber_queue = DEF_ADMIN_SUBSCRIBER_QUEUE;
    c->admin.ready_max_commit_age_ms = DEF_ADMIN_READY_MS;
}

static hs_status config_listen(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *l;
    hs_status st = cfg_opt_object(c, doc, "listen", &l);
    if (st != HS_OK || !l) return st;
    st = cfg_check_members(c, l, "listen", listen_fields);
    const char *s = NULL;
    if (st == HS_OK) st = cfg_get_string(c, l, "listen", "replica", false, &s);
    if (st == HS_OK && s) {
        if (!node_parse_address(s, true))
            return cfg_bad(c, "listen.replica", "must be \"host:port\" (e.g. \"0.0.0.0:26600\")");
        snprintf(out->listen_replica, sizeof out->listen_replica, "%s", s);
    }
    s = NULL;
    if (st == HS_OK) st = cfg_get_string(c, l, "listen", "admin", false, &s);
    if (st == HS_OK && s) {
        if (!node_parse_address(s, true))
            return cfg_bad(c, "listen.admin", "must be \"host:port\" (e.g. \"127.0.0.1:26700\")");
        snprintf(out->listen_admin, sizeof out->listen_admin, "%s", s);
    }
    return st;
}

static hs_status config_peers(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *ps = cfg_member(doc, "peers");
    if (!ps) return HS_OK;
    if (!cJSON_IsArray(ps))
        return cfg_bad(c, "peers", "must be an array of {\"key\", \"address\"}");
    int n = cJSON_GetArraySize(ps);
    if (n == 0) return HS_OK;
    out->peers = calloc((size_t)n, sizeof *out->peers);
    if (!out->peers) return cfg_bad(c, "peers", "out of memory");
    int i = 0;
    for (const cJSON *p = ps->child; p; p = p->next, i++) {
        char path[64], field[96];
        snprintf(path, sizeof path, "peers[%d]", i);
        if (!cJSON_IsObject(p)) return cfg_bad(c, path, "must be an object {\"key\", \"address\"}");
        hs_transport_peer *peer = &out->peers[i];
        const char *addr = NULL;
        hs_status st = cfg_check_members(c, p, path, peer_fields);
        if (st == HS_OK) st = cfg_get_key(c, p, path, "key", &peer->key);
        if (st == HS_OK) st = cfg_get_string(c, p, path, "address", true, &addr);
        if (st != HS_OK) return st;
        cfg_member_path(field, sizeof field, path, "address");
        if (!node_parse_address(addr, false))
            return cfg_bad(c, field, "must be \"host:port\" with a port from 1 to 65535");
        snprintf(peer->address, sizeof peer->address, "%s", addr);
        for (int j = 0; j < i; j++) {
            if (memcmp(out->peers[j].key.b, peer->key.b, HS_KEY_LEN) == 0) {
                cfg_member_path(field, sizeof field, path, "key");
                return cfg_bad(c, field, "is also the key of peers[%d]", j);
            }
        }
        out->n_peers++;
    }
    return HS_OK;
}

static hs_status config_consensus(const jctx *c, const cJSON *doc, hs_config *k) {
    const cJSON *o;
    const char *p = "consensus";
    hs_status st = cfg_opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    st = cfg_check_members(c, o, p, consensus_fields);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "block_sync_request_limit", 1, 1024,
                         &k->block_sync_request_limit);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "block_sync_server_advertise_time_ms", 1, ONE_DAY_MS,
                         &k->block_sync_server_advertise_time_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "block_sync_response_timeout_ms", 1, ONE_DAY_MS,
                         &k->block_sync_response_timeout_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "block_sync_blacklist_expiry_time_ms", 0, ONE_DAY_MS,
                         &k->block_sync_blacklist_expiry_time_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "block_sync_trigger_min_view_difference", 0, UINT64_MAX,
                         &k->block_sync_trigger_min_view_difference);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "block_sync_trigger_timeout_ms", 1, ONE_DAY_MS,
                         &k->block_sync_trigger_timeout_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "progress_msg_buffer_capacity", 0, 1ull << 34,
                         &k->progress_msg_buffer_capacity);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "epoch_length", 1, UINT32_MAX, &k->epoch_length);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "max_view_time_ms", 1, ONE_DAY_MS, &k->max_view_time_ms);
    if (st == HS_OK) st = cfg_opt_bool(c, o, p, "log_events", &k->log_events);
    int v = (int)k->leader_selection;
    if (st == HS_OK)
        st = cfg_opt_choice(c, o, p, "leader_selection", node_leader_selection_names, &v);
    k->leader_selection = (hs_leader_selection)v;
    v = (int)k->vote_routing;
    if (st == HS_OK) st = cfg_opt_choice(c, o, p, "vote_routing", node_vote_routing_names, &v);
    k->vote_routing = (hs_vote_routing)v;
    v = (int)k->view_deadlines;
    if (st == HS_OK) st = cfg_opt_choice(c, o, p, "view_deadlines", node_view_deadlines_names, &v);
    k->view_deadlines = (hs_view_deadlines)v;
    return st;
}

static hs_status config_limits(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    const char *p = "limits";
    hs_status st = cfg_opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    kvapp_config *a = &out->app;
    hs_config *k = &out->consensus;
    st = cfg_check_members(c, o, p, limits_fields);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "max_message_bytes", 1, 1ull << 31, &out->max_message_bytes);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "transport_inbox_capacity", 1, 1u << 24,
                         &out->transport_inbox_capacity);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "transport_outbox_capacity", 1, 1u << 24,
                         &out->transport_outbox_capacity);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "replica_inbox_capacity", 1, 1u << 24, &k->inbox_capacity);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "event_queue_capacity", 1, 1u << 24, &k->event_queue_capacity);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "sync_request_queue_capacity", 1, 1u << 24,
                         &k->sync_request_queue_capacity);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "mempool_max_txs", 1, 1u << 24, &a->mempool_max_txs);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "mempool_max_bytes", 1, 1ull << 36, &a->mempool_max_bytes);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "max_tx_bytes", 16, 16u << 20, &a->max_tx_bytes);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "max_key_bytes", 1, 16u << 20, &a->max_key_bytes);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "max_block_txs", 1, 1u << 20, &a->max_block_txs);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "max_block_bytes", 16, 256u << 20, &a->max_block_bytes);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "max_validators", 1, 65536, &a->max_validators);
    if (st != HS_OK) return st;
    char why[200];
    if (kvapp_config_check(a, why, sizeof why) != HS_OK) {
        char field[64];
        const char *colon = strchr(why, ':');
        snprintf(field, sizeof field, "limits.%.*s", (int)(colon ? colon - why : 0), why);
        return cfg_bad(c, field, "%s", colon ? colon + 2 : why);
    }
    return HS_OK;
}

static hs_status config_network(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    const char *p = "network";
    hs_status st = cfg_opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    st = cfg_check_members(c, o, p, network_fields);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "reconnect_initial_ms", 1, ONE_DAY_MS,
                         &out->reconnect_initial_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "reconnect_max_ms", 1, ONE_DAY_MS, &out->reconnect_max_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "keepalive_time_ms", 1, ONE_DAY_MS, &out->keepalive_time_ms);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "handshake_timeout_ms", 1, ONE_DAY_MS,
                         &out->handshake_timeout_ms);
    if (st == HS_OK && out->reconnect_initial_ms && out->reconnect_max_ms &&
        out->reconnect_max_ms < out->reconnect_initial_ms)
        st = cfg_bad(c, "network.reconnect_max_ms", "must be at least reconnect_initial_ms");
    return st;
}

static hs_status config_app(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    hs_status st = cfg_opt_object(c, doc, "app", &o);
    if (st != HS_OK || !o) return st;
    st = cfg_check_members(c, o, "app", app_fields);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, "app", "empty_block_wait_ms", 0, ONE_DAY_MS,
                         &out->app.empty_block_wait_ms);
    return st;
}

/* Bounds: gRPC takes message sizes as int; the rest keep one misconfigured node from holding
 * unbounded memory for operators' calls. */
static hs_status config_admin(const jctx *c, const cJSON *doc, node_config *out) {
    const cJSON *o;
    const char *p = "admin";
    hs_status st = cfg_opt_object(c, doc, p, &o);
    if (st != HS_OK || !o) return st;
    st = cfg_check_members(c, o, p, admin_fields);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "max_recv_message_bytes", 1024, 1ull << 30,
                         &out->admin.max_recv_message_bytes);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "max_send_message_bytes", 1024, 1ull << 30,
                         &out->admin.max_send_message_bytes);
    if (st == HS_OK) st = cfg_opt_u32(c, o, p, "max_calls", 1, 65536, &out->admin.max_calls);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "max_concurrent_streams", 1, 65536,
                         &out->admin.max_concurrent_streams);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "max_subscribers", 1, 65536, &out->admin.max_subscribers);
    if (st == HS_OK)
        st = cfg_opt_u32(c, o, p, "subscriber_queue", 1, 1u << 20, &out->admin.subscriber_queue);
    if (st == HS_OK)
        st = cfg_opt_u64(c, o, p, "ready_max_commit_age_ms", 1, ONE_DAY_MS,
                         &out->admin.ready_max_commit_age_ms);
    return st;
}

static hs_status config_log_level(const jctx *c, const cJSON *doc, node_config *out) {
    const char *s = NULL;
    hs_status st = cfg_get_string(c, doc, "", "log_level", false, &s);
    if (st != HS_OK || !s) return st;
    static const struct { const char *name; hs_log_level level; } levels[] = {
        {"debug", HS_LOG_DEBUG}, {"info", HS_LOG_INFO}, {"warn", HS_LOG_WARN},
        {"error", HS_LOG_ERROR}};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, levels[i].name) == 0) {
            out->log_level = levels[i].level;
            return HS_OK;
        }
    }
    return cfg_bad(c, "log_level", "must be one of \"debug\", \"info\", \"warn\", \"error\"");
}

/* The paths config.json names, resolved against its directory. */
static hs_status config_paths(const jctx *c, const cJSON *doc, node_config *out) {
    const char *key = DEF_KEY_FILE, *genesis = DEF_GENESIS_FILE, *data = DEF_DATA_DIR;
    hs_status st = cfg_get_string(c, doc, "", "key_file", false, &key);
    if (st == HS_OK) st = cfg_get_string(c, doc, "", "genesis_file", false, &genesis);
    if (st == HS_OK) st = cfg_get_string(c, doc, "", "data_dir", false, &data);
    if (st != HS_OK) return st;
    char *dir = dir_of(out->config_path);
    if (dir) {
        out->key_path = resolve(dir, key);
        out->genesis_path = resolve(dir, genesis);
        out->data_dir = resolve(dir, data);
    }
    free(dir);
    if (!out->key_path || !out->genesis_path || !out->data_dir)
        return cfg_bad(c, "(paths)", "out of memory");
    return HS_OK;
}

static hs_status config_from_json(const jctx *c, const cJSON *doc, node_config *out) {
    hs_status st = cfg_check_members(c, doc, "", config_fields);
    if (st == HS_OK) st = config_paths(c, doc, out);
    if (st == HS_OK) st = config_listen(c, doc, out);
    if (st == HS_OK) st = config_log_level(c, doc, out);
    if (st == HS_OK) st = cfg_opt_bool(c, doc, "", "sync_writes", &out->sync_writes);
    if (st == HS_OK) st = config_peers(c, doc, out);
    if (st == HS_OK) st = config_consensus(c, doc, &out->consensus);
    if (st == HS_OK) st = config_limits(c, doc, out);
    if (st == HS_OK) st = config_network(c, doc, out);
    if (st == HS_OK) st = config_app(c, doc, out);
    if (st == HS_OK) st = config_admin(c, doc, out);
    return st;
}

uint64_t node_config_min_message_bytes(const node_config *c) {
    /* Per block: its transactions with their length prefixes and field tags, a phase
     * certificate with one 64-byte signature (plus framing) per validator, and fixed fields. */
    uint64_t pc = 256 + 80ull * c->app.max_validators;
    uint64_t block = c->app.max_block_bytes + 16ull * c->app.max_block_txs + pc + 256;
    return (uint64_t)c->consensus.block_sync_request_limit * block + pc + 4096;
}

/* Cross-file checks and the derived settings. */
static hs_status config_finish(const jctx *c, node_config *out) {
    for (size_t i = 0; i < out->n_peers; i++) {
        if (memcmp(out->peers[i].key.b, out->key.public_key.b, HS_KEY_LEN) == 0) {
            char field[64];
            snprintf(field, sizeof field, "peers[%zu].key", i);
            return cfg_bad(c, field, "is this node's own key (from %s)", out->key_path);
        }
    }
    /* Two servers cannot bind one port; say so here rather than as a bind failure later. A
     * port of 0 (kernel-chosen) may appear in both. */
    const char *ac = strrchr(out->listen_admin, ':');
    if (out->listen_admin[0] && strcmp(out->listen_admin, out->listen_replica) == 0 && ac &&
        strcmp(ac, ":0") != 0)
        return cfg_bad(c, "listen.admin", "is the same address as listen.replica");
    const node_genesis *g = &out->genesis;
    if (g->validators.n > out->app.max_validators)
        return cfg_bad(c, "limits.max_validators", "is %u but %s lists %u validators",
                       out->app.max_validators, out->genesis_path, g->validators.n);
    /* spec §7: 4 x network latency + produce + validate must fit in a view. */
    if (out->app.empty_block_wait_ms * 2 >= out->consensus.max_view_time_ms)
        return cfg_bad(c, "app.empty_block_wait_ms",
                       "is %llu but must be below half of consensus.max_view_time_ms (%llu)",
                   (unsigned long long)out->app.empty_block_wait_ms,
                   (unsigned long long)out->consensus.max_view_time_ms);
    out->app.chain_id = g->chain_id;
    out->app.has_admin = g->has_admin;
    out->app.admin_key = g->admin_key;

    hs_config *k = &out->consensus;
    k->me = out->key;
    k->chain_id = g->chain_id;
    k->limits = hs_limits_default();
    k->limits.max_validators = out->app.max_validators;
    k->limits.max_datums = out->app.max_block_txs;
    k->limits.max_datum_bytes = out->app.max_tx_bytes;
    k->limits.max_block_bytes = out->app.max_block_bytes;
    k->limits.max_sync_blocks = k->block_sync_request_limit;

    uint64_t min = node_config_min_message_bytes(out);
    if (out->max_message_bytes == 0) {
        out->max_message_bytes = (min + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
    } else if (out->max_message_bytes < min) {
        return cfg_bad(c, "limits.max_message_bytes",
                       "is %llu but must be at least %llu to carry a block sync response of "
                   "block_sync_request_limit full blocks (lower the block limits or the "
                   "request limit, or raise this)",
                   (unsigned long long)out->max_message_bytes, (unsigned long long)min);
    }
    char why[256];
    if (hs_config_validate(k, why, sizeof why) != HS_OK) return cfg_bad(c, "consensus", "%s", why);
    return HS_OK;
}

void node_config_free(node_config *c) {
    if (!c) return;
    free(c->config_path);
    free(c->key_path);
    free(c->genesis_path);
    free(c->data_dir);
    free(c->peers);
    node_genesis_free(&c->genesis);
    sodium_memzero(&c->key, sizeof c->key);
    sodium_memzero(&c->consensus.me, sizeof c->consensus.me);
    memset(c, 0, sizeof *c);
}

hs_status node_config_load(const char *path, node_config *out, char *err, size_t errlen) {
    jctx c = {path, err, errlen};
    if (err && errlen) err[0] = '\0';
    node_config_defaults(out);
    out->config_path = strdup(path);
    if (!out->config_path) return cfg_io_fail(&c, "out of memory");
    cJSON *doc = NULL;
    hs_status st = cfg_load_json(&c, path, &doc, NULL);
    if (st == HS_OK) st = config_from_json(&c, doc, out);
    cJSON_Delete(doc);
    if (st == HS_OK) st = node_key_load(out->key_path, &out->key, err, errlen);
    if (st == HS_OK) st = node_genesis_load(out->genesis_path, &out->genesis, err, errlen);
    if (st == HS_OK) st = config_finish(&c, out);
    if (st != HS_OK) node_config_free(out);
    return st;
}

