/* hotstuffd - the HotStuff replica daemon: a libhotstuff replica with a LevelDB store, the gRPC
 * transport (server/replica/transport.h) and the built-in key-value app (server/app/kvapp.h).
 *
 *   hotstuffd --config FILE [--check]
 *
 * Exit status: 0 after a clean stop (SIGTERM or SIGINT), 2 for a configuration problem
 * (config.json, key.json, genesis.json, or a data directory of another genesis), 1 for any
 * other failure, including the consensus thread halting on a fatal error.
 *
 * Shutdown: SIGTERM and SIGINT are blocked in every thread (the mask is set before the first
 * thread starts, and threads inherit it) and taken by sigtimedwait in the main thread, which
 * then stops, in order, the admin service (event forwarding first; its health turns
 * NOT_SERVING and its calls end, so operators see the node leave before its peers do), the
 * replica (joining its threads: the algorithm thread finishes the batch it is writing), the
 * transport, the app, and closes the store.
 *
 * Admin service (server/admin/admin.h), when config.json has listen.admin: it reads the block tree
 * through replica snapshots, stats from the replica and the transport, and submits to the app.
 * Every replica event is forwarded to it; the forwarder reads d->admin under admin_mu, so the
 * event thread never touches a stopped service.
 */
#define _GNU_SOURCE /* sigtimedwait */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <grpc/status.h>
#include <grpc/support/log.h>
#include <sodium.h>

#include "admin/admin.h"
#include "hotstuff/hotstuff.h"
#include "app/kvapp.h"
#include "config/node_config.h"
#include "replica/transport.h"

#define MODULE "hotstuffd"
#define EXIT_CONFIG 2
#define EXIT_FAILURE_RUN 1

typedef struct daemon {
    node_config cfg;
    hs_leveldb_store *db;
    hs_kv_store kv;
    kvapp *app;
    hs_transport *transport;
    hs_replica *replica;
    pthread_mutex_t admin_mu; /* guards admin against the replica's event thread */
    hs_admin *admin;
    hs_transport_peer_stats *peer_stats; /* n_peers entries; the admin CQ thread's scratch */
} daemon_t;

static void usage(FILE *f) {
    fprintf(f, "usage: hotstuffd --config FILE [--check]\n"
               "  --config FILE  config.json of this node (it names key.json, genesis.json and\n"
               "                 the data directory; see server/README.md)\n"
               "  --check        validate the three files and exit (0 = fine, 2 = not)\n");
}

static void hex(const uint8_t *p, size_t n, char *out, size_t cap) {
    sodium_bin2hex(out, cap, p, n);
}

/* ---- gRPC's own log lines, in our format ---- */

static void grpc_log_sink(gpr_log_func_args *a) {
    hs_log_level l = a->severity == GPR_LOG_SEVERITY_ERROR  ? HS_LOG_ERROR
                     : a->severity == GPR_LOG_SEVERITY_INFO ? HS_LOG_INFO
                                                            : HS_LOG_DEBUG;
    hs_log(l, "grpc", "%s (%s:%d)", a->message, a->file, a->line);
}

/* ---- transactions from the transport ---- */

static int verdict_code(kvapp_verdict v) {
    switch (v) {
    case KVAPP_ACCEPTED: return GRPC_STATUS_OK;
    case KVAPP_INVALID: return GRPC_STATUS_INVALID_ARGUMENT;
    case KVAPP_DUPLICATE: return GRPC_STATUS_ALREADY_EXISTS;
    case KVAPP_FULL: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case KVAPP_INTERNAL: return GRPC_STATUS_INTERNAL;
    }
    return GRPC_STATUS_INTERNAL;
}

/* On the transport's thread. Submissions (from == NULL) are gossiped once accepted; every
 * node dials every peer, so gossip is not relayed further. */
static int on_tx(void *ctx, const hs_key *from, const uint8_t *tx, size_t len,
                 char reason[256]) {
    daemon_t *d = ctx;
    hs_hash h;
    memset(&h, 0, sizeof h);
    kvapp_verdict v = kvapp_submit(d->app, tx, len, &h, reason, 256);
    char hh[65];
    kvtx_hex(&h, hh);
    if (!from) {
        if (v == KVAPP_ACCEPTED) {
            hs_transport_gossip_tx(d->transport, tx, len);
            hs_log(HS_LOG_DEBUG, MODULE, "accepted tx=%s bytes=%zu", hh, len);
        } else {
            hs_log(HS_LOG_DEBUG, MODULE, "refused submitted tx bytes=%zu: %s", len, reason);
        }
        return verdict_code(v);
    }
    if (v != KVAPP_ACCEPTED && v != KVAPP_DUPLICATE) {
        char peer[2 * HS_KEY_LEN + 1];
        hex(from->b, HS_KEY_LEN, peer, sizeof peer);
        hs_log(HS_LOG_DEBUG, MODULE, "refused gossiped tx from peer=%.16s: %s", peer, reason);
    }
    return 0;
}

/* ---- events ---- */

/* At debug level, one line per committed transaction (tests follow these). */
static void log_tx(void *ctx, const hs_hash *tx, uint64_t height) {
    (void)ctx;
    char hh[65];
    kvtx_hex(tx, hh);
    hs_log(HS_LOG_DEBUG, "commit", "committed tx=%s height=%llu", hh, (unsigned long long)height);
}

/* One line per committed block: the live view of scripts/testnet.sh follows these. */
static void on_commit(void *ctx, const hs_event *e) {
    daemon_t *d = ctx;
    uint64_t height = 0;
    uint32_t n = 0, waiting = 0;
    char hh[65];
    hex(e->u.commit_block.block.b, HS_HASH_LEN, hh, sizeof hh);
    hs_status st = kvapp_on_commit(d->app, &e->u.commit_block.block, &height, &n, log_tx, NULL);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "cannot read committed block hash=%s: %s", hh,
               hs_status_str(st));
        return;
    }
    kvapp_mempool_stats(d->app, &waiting, NULL);
    hs_log(HS_LOG_INFO, "commit", "committed height=%llu hash=%s txs=%u mempool=%u",
           (unsigned long long)height, hh, n, waiting);
}

static void on_update_validator_set(void *ctx, const hs_event *e) {
    (void)ctx;
    const hs_vs_updates *u = &e->u.update_validator_set.updates;
    char hh[65];
    hex(e->u.update_validator_set.cause_block.b, HS_HASH_LEN, hh, sizeof hh);
    hs_log(HS_LOG_INFO, "commit", "validator set updated by block hash=%s inserts=%u deletes=%u",
           hh, u->n_inserts, u->n_deletes);
    for (uint32_t i = 0; i < u->n_inserts; i++) {
        char k[65];
        hex(u->inserts[i].key.b, HS_KEY_LEN, k, sizeof k);
        hs_log(HS_LOG_INFO, "commit", "validator key=%s power=%llu", k,
               (unsigned long long)u->inserts[i].power);
    }
    for (uint32_t i = 0; i < u->n_deletes; i++) {
        char k[65];
        hex(u->deletes[i].b, HS_KEY_LEN, k, sizeof k);
        hs_log(HS_LOG_INFO, "commit", "validator key=%s removed", k);
    }
}

/* Block Sync is what a restarted or lagging node relies on: say when it runs. */
static void on_sync(void *ctx, const hs_event *e) {
    (void)ctx;
    char peer[2 * HS_KEY_LEN + 1];
    if (e->type == HS_EV_START_SYNC) {
        hex(e->u.start_sync.peer.b, HS_KEY_LEN, peer, sizeof peer);
        hs_log(HS_LOG_DEBUG, "sync", "block sync from peer=%.16s started", peer);
    } else {
        hex(e->u.end_sync.peer.b, HS_KEY_LEN, peer, sizeof peer);
        hs_log(e->u.end_sync.blocks_synced ? HS_LOG_INFO : HS_LOG_DEBUG, "sync",
               "block sync from peer=%.16s ended blocks=%llu", peer,
               (unsigned long long)e->u.end_sync.blocks_synced);
    }
}

/* Every event: the daemon's own handling for the few it logs, then the admin service's
 * subscribers. hs_spec_on keeps one handler per type, hence one dispatcher for all. */
static void on_event(void *ctx, const hs_event *e) {
    daemon_t *d = ctx;
    switch (e->type) {
    case HS_EV_COMMIT_BLOCK: on_commit(d, e); break;
    case HS_EV_UPDATE_VALIDATOR_SET: on_update_validator_set(d, e); break;
    case HS_EV_START_SYNC:
    case HS_EV_END_SYNC: on_sync(d, e); break;
    case HS_EV_PROPOSE: /* who leads which view: what an operator asks after a crash */
        hs_log(HS_LOG_DEBUG, "consensus", "proposed height=%llu view=%llu txs=%u",
               (unsigned long long)e->u.propose.proposal.block.height,
               (unsigned long long)e->u.propose.proposal.view,
               e->u.propose.proposal.block.data.n);
        break;
    default: break;
    }
    /* publish never blocks (it only queues), so holding the mutex is cheap. */
    pthread_mutex_lock(&d->admin_mu);
    if (d->admin) hs_admin_publish_event(d->admin, e);
    pthread_mutex_unlock(&d->admin_mu);
}

/* ---- what the admin service reads (on its CQ thread) ---- */

static hs_status adm_snapshot(void *ctx, hs_kv_reader *out) {
    daemon_t *d = ctx;
    return hs_replica_snapshot(d->replica, out);
}

static void adm_release(void *ctx, hs_kv_reader *snap) {
    daemon_t *d = ctx;
    hs_replica_release_snapshot(d->replica, snap);
}

static void adm_stats(void *ctx, hs_replica_stats *out) {
    daemon_t *d = ctx;
    hs_replica_get_stats(d->replica, out);
}

static uint32_t adm_connected_peers(void *ctx) {
    daemon_t *d = ctx;
    size_t n = hs_transport_get_peer_stats(d->transport, d->peer_stats, d->cfg.n_peers);
    uint32_t up = 0;
    for (size_t i = 0; i < n && i < d->cfg.n_peers; i++) up += d->peer_stats[i].connected;
    return up;
}

/* As a SubmitTransaction on the replica port: admitted, then gossiped once. */
static int adm_submit(void *ctx, const uint8_t *tx, size_t len, hs_hash *hash,
                      char reason[256]) {
    daemon_t *d = ctx;
    reason[0] = '\0';
    kvapp_verdict v = kvapp_submit(d->app, tx, len, hash, reason, 256);
    if (v == KVAPP_ACCEPTED) hs_transport_gossip_tx(d->transport, tx, len);
    return verdict_code(v);
}

static hs_status adm_read_state(void *ctx, const hs_kv_reader *r, const uint8_t *key,
                                size_t klen, hs_bytes *out) {
    (void)ctx;
    return kvapp_read(r, key, klen, out);
}

static hs_status adm_tx_height(void *ctx, const hs_kv_reader *r, const hs_hash *tx,
                               uint64_t *height) {
    (void)ctx;
    return kvapp_tx_height(r, tx, height);
}

/* ---- start-up ---- */

static int open_store(daemon_t *d) {
    const node_config *c = &d->cfg;
    if (node_make_dirs(c->data_dir, 0700) != 0) {
        hs_log(HS_LOG_ERROR, MODULE, "data_dir %s: cannot create: %s", c->data_dir,
               strerror(errno));
        return EXIT_FAILURE_RUN;
    }
    hs_leveldb_options o = hs_leveldb_options_default();
    o.create_if_missing = true;
    o.sync_writes = c->sync_writes;
    char err[512] = "";
    hs_status st = hs_leveldb_store_open(c->data_dir, &o, &d->db, err, sizeof err);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "data_dir %s: cannot open the store: %s (%s)", c->data_dir,
               err, hs_status_str(st));
        return EXIT_FAILURE_RUN;
    }
    d->kv = hs_leveldb_store_kv(d->db);
    bool fresh = false;
    st = node_store_bind_genesis(&d->kv, &c->genesis, c->data_dir, &fresh, err, sizeof err);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "%s", err);
        return st == HS_ERR_STATE ? EXIT_CONFIG : EXIT_FAILURE_RUN;
    }
    char gh[65];
    hex(c->genesis.hash.b, HS_HASH_LEN, gh, sizeof gh);
    hs_log(HS_LOG_INFO, MODULE, "%s store data_dir=%s genesis=%s",
           fresh ? "initialised a new" : "opened the", c->data_dir, gh);
    return 0;
}

static void transport_config(const node_config *c, hs_transport_config *tc) {
    memset(tc, 0, sizeof *tc);
    hs_transport_config_defaults(tc);
    tc->me = c->key;
    tc->chain_id = c->genesis.chain_id;
    snprintf(tc->listen_address, sizeof tc->listen_address, "%s", c->listen_replica);
    tc->peers = c->peers;
    tc->n_peers = c->n_peers;
    tc->max_message_bytes = (size_t)c->max_message_bytes;
    tc->inbox_capacity = c->transport_inbox_capacity;
    tc->outbox_capacity = c->transport_outbox_capacity;
    if (c->reconnect_initial_ms) tc->reconnect_initial_ms = c->reconnect_initial_ms;
    if (c->reconnect_max_ms) tc->reconnect_max_ms = c->reconnect_max_ms;
    if (c->keepalive_time_ms) tc->keepalive_time_ms = c->keepalive_time_ms;
    if (c->handshake_timeout_ms) tc->handshake_timeout_ms = c->handshake_timeout_ms;
    tc->limits = c->consensus.limits;
}

static int start_transport(daemon_t *d) {
    hs_transport_config tc;
    transport_config(&d->cfg, &tc);
    char err[512] = "";
    hs_status st = hs_transport_start(&tc, &d->transport, err, sizeof err);
    sodium_memzero(&tc.me, sizeof tc.me);
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "cannot start the transport on %s: %s",
               d->cfg.listen_replica, err);
        d->transport = NULL;
        return EXIT_FAILURE_RUN;
    }
    hs_transport_set_tx_handler(d->transport, on_tx, d);
    hs_log(HS_LOG_INFO, MODULE, "listening replica=%s port=%d peers=%zu", d->cfg.listen_replica,
           hs_transport_port(d->transport), d->cfg.n_peers);
    return 0;
}

static int start_replica(daemon_t *d, const hs_network *net) {
    hs_replica_spec_builder *b = hs_replica_spec_builder_new();
    if (!b) return EXIT_FAILURE_RUN;
    hs_app app = kvapp_app(d->app);
    hs_spec_app(b, &app);
    hs_spec_network(b, net);
    hs_spec_kv_store(b, &d->kv);
    hs_spec_configuration(b, &d->cfg.consensus);
    for (int t = 0; t < HS_EV_COUNT; t++) hs_spec_on(b, (hs_event_type)t, on_event, d);
    hs_replica_spec *spec = NULL;
    char err[256] = "";
    hs_status st = hs_spec_build(b, &spec, err, sizeof err);
    hs_replica_spec_builder_free(b);
    if (st == HS_OK) {
        st = hs_replica_start(spec, &d->replica);
        hs_replica_spec_free(spec);
        if (st != HS_OK) snprintf(err, sizeof err, "%s", hs_status_str(st));
    }
    if (st != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "cannot start the replica: %s", err);
        d->replica = NULL;
        return EXIT_FAILURE_RUN;
    }
    return 0;
}

static int start_admin(daemon_t *d) {
    const node_config *c = &d->cfg;
    if (!c->listen_admin[0]) {
        hs_log(HS_LOG_INFO, MODULE, "no listen.admin: the admin service is off");
        return 0;
    }
    d->peer_stats = calloc(c->n_peers ? c->n_peers : 1, sizeof *d->peer_stats);
    if (!d->peer_stats) return EXIT_FAILURE_RUN;
    hs_admin_config ac;
    hs_admin_config_defaults(&ac);
    snprintf(ac.listen_address, sizeof ac.listen_address, "%s", c->listen_admin);
    ac.chain_id = c->genesis.chain_id;
    ac.key = c->key.public_key;
    ac.max_recv_message_bytes = (size_t)c->admin.max_recv_message_bytes;
    ac.max_send_message_bytes = (size_t)c->admin.max_send_message_bytes;
    ac.max_calls = c->admin.max_calls;
    ac.max_concurrent_streams = c->admin.max_concurrent_streams;
    ac.max_subscribers = c->admin.max_subscribers;
    ac.subscriber_queue = c->admin.subscriber_queue;
    ac.ready_max_commit_age_ms = c->admin.ready_max_commit_age_ms;
    hs_admin_node nd = {d,           adm_snapshot, adm_release,    adm_stats,    adm_connected_peers,
                        adm_submit,  adm_read_state, adm_tx_height};
    hs_admin *a = NULL;
    char err[512] = "";
    if (hs_admin_start(&ac, &nd, &a, err, sizeof err) != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "cannot start the admin service on %s: %s",
               c->listen_admin, err);
        return EXIT_FAILURE_RUN;
    }
    /* The replica port's service, as the replica port itself reports it. */
    hs_health_set(hs_admin_health(a), "hotstuff.v1.Replica", HS_HEALTH_SERVING);
    pthread_mutex_lock(&d->admin_mu);
    d->admin = a;
    pthread_mutex_unlock(&d->admin_mu);
    hs_log(HS_LOG_INFO, MODULE, "listening admin=%s port=%d", c->listen_admin, hs_admin_port(a));
    return 0;
}

static void log_identity(const node_config *c) {
    char key[65];
    hex(c->key.public_key.b, HS_KEY_LEN, key, sizeof key);
    bool validator = hs_vs_contains(&c->genesis.validators, &c->key.public_key);
    hs_log(HS_LOG_INFO, MODULE,
           "starting key=%s chain_id=%llu genesis_validators=%u role_at_genesis=%s "
           "max_view_time_ms=%llu leader_selection=%s vote_routing=%s view_deadlines=%s",
           key, (unsigned long long)c->genesis.chain_id, c->genesis.validators.n,
           validator ? "validator" : "listener",
           (unsigned long long)c->consensus.max_view_time_ms,
           node_leader_selection_names[c->consensus.leader_selection],
           node_vote_routing_names[c->consensus.vote_routing],
           node_view_deadlines_names[c->consensus.view_deadlines]);
}

/* ---- running and stopping ---- */

/* Waits for SIGTERM/SIGINT, checking once a second that consensus is still running. Returns
 * the exit status. */
static int wait_for_stop(daemon_t *d, const sigset_t *set) {
    for (;;) {
        struct timespec one = {1, 0};
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &one);
        if (sig == SIGTERM || sig == SIGINT) {
            hs_log(HS_LOG_INFO, MODULE, "received %s; stopping",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return 0;
        }
        hs_replica_stats s;
        hs_replica_get_stats(d->replica, &s);
        if (s.halted) {
            hs_log(HS_LOG_ERROR, MODULE, "consensus halted: %s; exiting",
                   hs_status_str(s.halt_status));
            return EXIT_FAILURE_RUN;
        }
    }
}

static void shut_down(daemon_t *d) {
    /* Forwarding stops first: after this no event thread can reach the service. */
    pthread_mutex_lock(&d->admin_mu);
    hs_admin *a = d->admin;
    d->admin = NULL;
    pthread_mutex_unlock(&d->admin_mu);
    if (a) hs_admin_stop(a); /* health NOT_SERVING, calls ended, port closed */
    free(d->peer_stats);
    d->peer_stats = NULL;
    if (d->replica) hs_replica_stop(d->replica); /* joins its threads: no write in flight */
    d->replica = NULL;
    if (d->transport) hs_transport_stop(d->transport);
    d->transport = NULL;
    kvapp_free(d->app);
    d->app = NULL;
    if (d->db) hs_leveldb_store_close(d->db);
    d->db = NULL;
    node_config_free(&d->cfg);
}

static int run(daemon_t *d, const sigset_t *set) {
    int rc = open_store(d);
    if (rc) return rc;
    d->app = kvapp_new(&d->cfg.app, &d->kv);
    if (!d->app) {
        hs_log(HS_LOG_ERROR, MODULE, "cannot create the app: out of memory");
        return EXIT_FAILURE_RUN;
    }
    if ((rc = start_transport(d))) return rc;
    hs_network net = hs_transport_network(d->transport);
    if ((rc = start_replica(d, &net))) return rc;
    /* After the replica: the service reads through it. Events before this are not lost to
     * subscribers: commits are replayed from the store. */
    if ((rc = start_admin(d))) return rc;
    hs_log(HS_LOG_INFO, MODULE, "running");
    return wait_for_stop(d, set);
}

int main(int argc, char **argv) {
    const char *config = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc) config = argv[++i];
        else if (!strcmp(argv[i], "--check")) check = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return EXIT_CONFIG;
        }
    }
    if (!config) {
        usage(stderr);
        return EXIT_CONFIG;
    }

    /* Before any thread exists (LevelDB's, gRPC's, the replica's): they all inherit it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    daemon_t d;
    memset(&d, 0, sizeof d);
    pthread_mutex_init(&d.admin_mu, NULL);
    char err[1024] = "";
    if (node_config_load(config, &d.cfg, err, sizeof err) != HS_OK) {
        hs_log(HS_LOG_ERROR, MODULE, "%s", err);
        return EXIT_CONFIG;
    }
    hs_log_set_level(d.cfg.log_level);
    if (check) {
        hs_log(HS_LOG_INFO, MODULE, "configuration is valid: %s", config);
        node_config_free(&d.cfg);
        return 0;
    }
    gpr_set_log_function(grpc_log_sink);
    log_identity(&d.cfg);
    int rc = run(&d, &set);
    shut_down(&d);
    pthread_mutex_destroy(&d.admin_mu);
    hs_log(HS_LOG_INFO, MODULE, "stopped");
    return rc;
}
