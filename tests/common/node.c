/* tests/common/node.c - see node.h. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "node.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
    char name[32];
    char *dir;              /* LevelDB directory, or NULL for a memory store */
    hs_mem_store *mem;
    hs_leveldb_store *ldb;
    hs_kv_store kv;
    hs_keypair kp;
    hs_network net;
    napp *app;
    hs_config cfg;
    hs_replica *replica;    /* NULL while stopped; touched by the test thread only */
    bool verbose;           /* HS_TEST_LOG: print every event */
    char **trace;           /* HS_TEST_TRACE: the first NODE_TRACE_MAX events, formatted */
    size_t n_trace;

    node_commit_fn commit_hook;
    void *commit_ctx;

    /* Written by the event bus thread, read by tests. */
    atomic_uint_fast64_t commits, inserts, inserts_while_syncing, votes, start_views,
        view_timeouts, timeout_votes, vs_updates, start_syncs, end_syncs, blocks_synced;
    atomic_bool syncing;
    pthread_mutex_t mu; /* guards vote_views and trace */
    uint64_t *vote_views;
    size_t n_votes, cap_votes;
};

void node_test_keypair(uint32_t i, hs_keypair *out) {
    uint8_t seed[32];
    hs_crypto_init();
    for (int b = 0; b < 32; b++) seed[b] = (uint8_t)(0xA5 ^ (i * 31 + (uint32_t)b));
    seed[0] = (uint8_t)i; /* distinct seeds for distinct i */
    seed[1] = (uint8_t)(i >> 8);
    hs_keypair_from_seed(seed, out);
}

/* ---- store ---- */

static hs_status open_store(node *n) {
    if (!n->dir) {
        if (!n->mem) n->mem = hs_mem_store_new();
        if (!n->mem) return HS_ERR_NOMEM;
        n->kv = hs_mem_store_kv(n->mem);
        return HS_OK;
    }
    /* Clean stops only in these tests, so fsync per batch buys nothing but minutes. */
    hs_leveldb_options o = hs_leveldb_options_default();
    o.create_if_missing = true;
    o.sync_writes = false;
    char err[256] = "";
    hs_status st = hs_leveldb_store_open(n->dir, &o, &n->ldb, err, sizeof err);
    if (st != HS_OK) {
        fprintf(stderr, "node %s: cannot open LevelDB at %s: %s (%s)\n", n->name, n->dir,
                hs_status_str(st), err);
        n->ldb = NULL;
        return st;
    }
    n->kv = hs_leveldb_store_kv(n->ldb);
    return HS_OK;
}

static void close_store(node *n) {
    if (n->ldb) hs_leveldb_store_close(n->ldb);
    n->ldb = NULL;
    if (n->mem) hs_mem_store_free(n->mem);
    n->mem = NULL;
    memset(&n->kv, 0, sizeof n->kv);
}

/* ---- configuration ---- */

/* Spec §10's test values with these deviations, all to make in-process tests fast:
 *  - max_view_time 500 ms (spec 2 s): the in-process network delivers in microseconds and the
 *    NumberApp delays default to 0, so §7's "4·EWNL + produce + validate < max_view_time" still
 *    holds by a wide margin. It shortens the wait in view 0 of a fresh network (it sits there
 *    until TC(0) forms) and the cost of every view whose leader is down.
 *  - block_sync_server_advertise_time 1 s (spec 10 s): a late node learns its sync servers
 *    within a second instead of ten.
 *  - block_sync_trigger_timeout 3 s (spec 60 s): a lagging listener that AdvanceView keeps in
 *    step never sees a view gap big enough for the AdvertisePC trigger, so it syncs on this
 *    no-progress timeout; a minute per test would be too long.
 * Everything else is §10's value: epoch_length 50, request limit 10, response timeout 3 s,
 * blacklist 10 s, trigger view difference 2, buffer 1024 bytes, chain id 0. */
static hs_config make_config(const node *n, const node_opts *o) {
    hs_config c = hs_config_test_values(&n->kp);
    c.max_view_time_ms = o && o->max_view_time_ms ? o->max_view_time_ms : NODE_MAX_VIEW_TIME_MS;
    c.block_sync_server_advertise_time_ms = NODE_ADVERTISE_TIME_MS;
    c.block_sync_trigger_timeout_ms = NODE_SYNC_TRIGGER_TIMEOUT_MS;
    c.log_events = o && o->log_events;
    return c;
}

/* ---- events ---- */

static void on_event(void *ctx, const hs_event *e) {
    node *n = ctx;
    switch (e->type) {
    case HS_EV_COMMIT_BLOCK: atomic_fetch_add(&n->commits, 1); break;
    case HS_EV_INSERT_BLOCK:
        atomic_fetch_add(&n->inserts, 1);
        if (atomic_load(&n->syncing)) atomic_fetch_add(&n->inserts_while_syncing, 1);
        break;
    case HS_EV_PHASE_VOTE:
        atomic_fetch_add(&n->votes, 1);
        pthread_mutex_lock(&n->mu);
        if (n->n_votes == n->cap_votes) {
            size_t cap = n->cap_votes ? n->cap_votes * 2 : 256;
            uint64_t *p = realloc(n->vote_views, cap * sizeof *p);
            if (p) {
                n->vote_views = p;
                n->cap_votes = cap;
            }
        }
        if (n->n_votes < n->cap_votes) n->vote_views[n->n_votes++] = e->u.phase_vote.vote.view;
        pthread_mutex_unlock(&n->mu);
        break;
    case HS_EV_START_VIEW: atomic_fetch_add(&n->start_views, 1); break;
    case HS_EV_VIEW_TIMEOUT: atomic_fetch_add(&n->view_timeouts, 1); break;
    case HS_EV_TIMEOUT_VOTE: atomic_fetch_add(&n->timeout_votes, 1); break;
    case HS_EV_UPDATE_VALIDATOR_SET: atomic_fetch_add(&n->vs_updates, 1); break;
    case HS_EV_START_SYNC:
        atomic_fetch_add(&n->start_syncs, 1);
        atomic_store(&n->syncing, true);
        break;
    case HS_EV_END_SYNC:
        atomic_fetch_add(&n->end_syncs, 1);
        atomic_fetch_add(&n->blocks_synced, e->u.end_sync.blocks_synced);
        atomic_store(&n->syncing, false);
        break;
    default: break;
    }
    if (n->verbose) {
        char line[512];
        hs_event_format(e, line, sizeof line);
        fprintf(stderr, "[%s] %s\n", n->name, line);
    }
    if (n->trace) {
        pthread_mutex_lock(&n->mu);
        if (n->n_trace < NODE_TRACE_MAX) {
            char line[512];
            hs_event_format(e, line, sizeof line);
            n->trace[n->n_trace] = strdup(line);
            if (n->trace[n->n_trace]) n->n_trace++;
        }
        pthread_mutex_unlock(&n->mu);
    }
    if (e->type == HS_EV_COMMIT_BLOCK && n->commit_hook)
        n->commit_hook(n->commit_ctx, n, &e->u.commit_block.block);
}

/* The events the counters need; with HS_TEST_LOG or HS_TEST_TRACE, all of them. */
static const hs_event_type counted[] = {
    HS_EV_COMMIT_BLOCK, HS_EV_INSERT_BLOCK, HS_EV_PHASE_VOTE,           HS_EV_START_VIEW,
    HS_EV_VIEW_TIMEOUT, HS_EV_TIMEOUT_VOTE, HS_EV_UPDATE_VALIDATOR_SET, HS_EV_START_SYNC,
    HS_EV_END_SYNC,
};

/* ---- lifecycle ---- */

node *node_new(tn_hub *hub, const hs_keypair *kp, const hs_validator_set *vs0,
               const node_opts *o) {
    node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    pthread_mutex_init(&n->mu, NULL);
    snprintf(n->name, sizeof n->name, "%s", o && o->name ? o->name : "node");
    n->kp = *kp;
    const char *env = getenv("HS_TEST_LOG");
    n->verbose = env && *env && strcmp(env, "0") != 0;
    env = getenv("HS_TEST_TRACE");
    if (env && *env && strcmp(env, "0") != 0) {
        n->trace = calloc(NODE_TRACE_MAX, sizeof *n->trace);
        if (!n->trace) goto fail;
    }
    if (!tn_endpoint(hub, &kp->public_key, &n->net)) {
        fprintf(stderr, "node %s: key not on the hub\n", n->name);
        goto fail;
    }
    if (o && o->leveldb_dir && !(n->dir = strdup(o->leveldb_dir))) goto fail;
    n->app = napp_new();
    if (!n->app) goto fail;
    napp_set_delays(n->app, o ? o->produce_delay_ms : 0, o ? o->validate_delay_ms : 0);
    n->cfg = make_config(n, o);
    char err[256] = "";
    if (hs_config_validate(&n->cfg, err, sizeof err) != HS_OK) {
        fprintf(stderr, "node %s: bad config: %s\n", n->name, err);
        goto fail;
    }
    if (open_store(n) != HS_OK) goto fail;

    bool init = false;
    hs_status st = hs_replica_is_initialized(&n->kv, &init);
    if (st == HS_OK && !init) {
        /* Tests start from (VS0, VS0, None, decided) and an empty app state (spec §12.1). */
        hs_vss vss;
        memset(&vss, 0, sizeof vss);
        vss.committed = *vs0;
        vss.previous = *vs0;
        vss.update_decided = true;
        hs_app_updates empty;
        memset(&empty, 0, sizeof empty);
        st = hs_replica_initialize(&n->kv, &empty, &vss);
    }
    if (st != HS_OK) {
        fprintf(stderr, "node %s: cannot initialise the store: %s\n", n->name,
                hs_status_str(st));
        goto fail;
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

void node_free(node *n) {
    if (!n) return;
    node_stop(n);
    close_store(n);
    napp_free(n->app);
    free(n->dir);
    free(n->vote_views);
    for (size_t i = 0; i < n->n_trace; i++) free(n->trace[i]);
    free(n->trace);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

hs_status node_start(node *n) {
    if (n->replica) return HS_ERR_STATE;
    hs_replica_spec_builder *b = hs_replica_spec_builder_new();
    if (!b) return HS_ERR_NOMEM;
    hs_app app = napp_app(n->app);
    hs_spec_app(b, &app);
    hs_spec_network(b, &n->net);
    hs_spec_kv_store(b, &n->kv);
    hs_spec_configuration(b, &n->cfg);
    if (n->verbose || n->trace) {
        for (int t = 0; t < HS_EV_COUNT; t++) hs_spec_on(b, (hs_event_type)t, on_event, n);
    } else {
        for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++)
            hs_spec_on(b, counted[i], on_event, n);
    }
    hs_replica_spec *spec = NULL;
    char err[256] = "";
    hs_status st = hs_spec_build(b, &spec, err, sizeof err);
    hs_replica_spec_builder_free(b);
    if (st != HS_OK) {
        fprintf(stderr, "node %s: spec: %s\n", n->name, err);
        return st;
    }
    atomic_store(&n->syncing, false); /* a sync cut short by a stop has no EndSync */
    st = hs_replica_start(spec, &n->replica);
    hs_replica_spec_free(spec);
    if (st != HS_OK) {
        fprintf(stderr, "node %s: start: %s\n", n->name, hs_status_str(st));
        n->replica = NULL;
    }
    return st;
}

void node_stop(node *n) {
    if (!n->replica) return;
    hs_replica_stop(n->replica);
    n->replica = NULL;
}

bool node_running(const node *n) { return n->replica != NULL; }

hs_status node_reopen_store(node *n) {
    if (n->replica || !n->dir) return HS_ERR_STATE;
    close_store(n);
    return open_store(n);
}

const char *node_name(const node *n) { return n->name; }
const hs_key *node_key(const node *n) { return &n->kp.public_key; }
napp *node_app(node *n) { return n->app; }
hs_kv_store node_kv(const node *n) { return n->kv; }

void node_stats(node *n, hs_replica_stats *out) {
    memset(out, 0, sizeof *out);
    if (n->replica) hs_replica_get_stats(n->replica, out);
}

/* ---- queries ---- */

static bool snap(node *n, hs_kv_reader *r) {
    hs_status st = n->kv.snapshot(n->kv.self, r);
    if (st != HS_OK) fprintf(stderr, "node %s: snapshot: %s\n", n->name, hs_status_str(st));
    return st == HS_OK;
}

static void unsnap(node *n, hs_kv_reader *r) { n->kv.release_snapshot(n->kv.self, r); }

static void report(const node *n, const char *what, hs_status st) {
    fprintf(stderr, "node %s: reading %s: %s\n", n->name, what, hs_status_str(st));
}

uint32_t node_number(node *n) {
    hs_kv_reader r;
    if (!snap(n, &r)) return UINT32_MAX;
    uint32_t v;
    hs_status st = napp_committed_number(&r, &v);
    unsnap(n, &r);
    if (st != HS_OK) report(n, "number", st);
    return st == HS_OK ? v : UINT32_MAX;
}

bool node_committed_vs(node *n, hs_validator_set *out) {
    memset(out, 0, sizeof *out);
    hs_kv_reader r;
    if (!snap(n, &r)) return false;
    hs_status st = hs_bt_committed_vs(&r, out);
    unsnap(n, &r);
    if (st != HS_OK) report(n, "committed validator set", st);
    return st == HS_OK;
}

uint32_t node_vs_size(node *n) {
    hs_validator_set vs;
    if (!node_committed_vs(n, &vs)) return UINT32_MAX;
    uint32_t size = vs.n;
    hs_vs_free(&vs);
    return size;
}

bool node_vs_decided(node *n) {
    hs_kv_reader r;
    if (!snap(n, &r)) return false;
    bool d = false;
    hs_status st = hs_bt_vs_update_decided(&r, &d);
    unsnap(n, &r);
    if (st != HS_OK) report(n, "decided flag", st);
    return st == HS_OK && d;
}

uint64_t node_highest_view_entered(node *n) {
    hs_kv_reader r;
    if (!snap(n, &r)) return UINT64_MAX;
    uint64_t v = 0;
    hs_status st = hs_bt_highest_view_entered(&r, &v);
    unsnap(n, &r);
    if (st != HS_OK) report(n, "highest view entered", st);
    return st == HS_OK ? v : UINT64_MAX;
}

int64_t node_committed_height(node *n) {
    hs_kv_reader r;
    if (!snap(n, &r)) return -2;
    uint64_t h = 0;
    hs_status st = hs_bt_highest_committed_height(&r, &h);
    unsnap(n, &r);
    if (st == HS_NOT_FOUND) return -1;
    if (st != HS_OK) report(n, "highest committed height", st);
    return st == HS_OK ? (int64_t)h : -2;
}

int64_t node_highest_view_phase_voted(node *n) {
    hs_kv_reader r;
    if (!snap(n, &r)) return -2;
    uint64_t v = 0;
    hs_status st = hs_bt_highest_view_phase_voted(&r, &v);
    unsnap(n, &r);
    if (st == HS_NOT_FOUND) return -1;
    if (st != HS_OK) report(n, "highest view phase-voted", st);
    return st == HS_OK ? (int64_t)v : -2;
}

uint64_t node_expected_initial_view(node *n) {
    hs_kv_reader r;
    if (!snap(n, &r)) return UINT64_MAX;
    uint64_t hve = 0, m;
    hs_pc pc;
    hs_tc tc;
    memset(&pc, 0, sizeof pc);
    memset(&tc, 0, sizeof tc);
    hs_status st = hs_bt_highest_view_entered(&r, &hve);
    if (st == HS_OK) st = hs_bt_highest_pc(&r, &pc);
    m = hve;
    if (st == HS_OK && pc.view > m) m = pc.view;
    if (st == HS_OK) {
        st = hs_bt_highest_tc(&r, &tc);
        if (st == HS_OK && tc.view > m) m = tc.view;
        if (st == HS_NOT_FOUND) st = HS_OK;
    }
    hs_pc_free(&pc);
    hs_tc_free(&tc);
    unsnap(n, &r);
    if (st != HS_OK) {
        report(n, "start-up view inputs", st);
        return UINT64_MAX;
    }
    return m == 0 ? 0 : m + 1;
}

/* ---- recorded events ---- */

void node_get_counters(node *n, node_counters *o) {
    o->commits = atomic_load(&n->commits);
    o->inserts = atomic_load(&n->inserts);
    o->inserts_while_syncing = atomic_load(&n->inserts_while_syncing);
    o->votes = atomic_load(&n->votes);
    o->start_views = atomic_load(&n->start_views);
    o->view_timeouts = atomic_load(&n->view_timeouts);
    o->timeout_votes = atomic_load(&n->timeout_votes);
    o->vs_updates = atomic_load(&n->vs_updates);
    o->start_syncs = atomic_load(&n->start_syncs);
    o->end_syncs = atomic_load(&n->end_syncs);
    o->blocks_synced = atomic_load(&n->blocks_synced);
}

size_t node_vote_views(node *n, uint64_t **out) {
    *out = NULL;
    pthread_mutex_lock(&n->mu);
    size_t k = n->n_votes;
    if (k) {
        *out = malloc(k * sizeof **out);
        if (*out) memcpy(*out, n->vote_views, k * sizeof **out);
        else k = 0;
    }
    pthread_mutex_unlock(&n->mu);
    return k;
}

void node_set_commit_hook(node *n, node_commit_fn fn, void *ctx) {
    n->commit_hook = fn;
    n->commit_ctx = ctx;
}

void node_print_state(node *n, FILE *f) {
    hs_replica_stats s;
    node_stats(n, &s);
    node_counters c;
    node_get_counters(n, &c);
    fprintf(f,
            "  %s: %s view=%llu hve=%llu number=%u committed_height=%lld vs_size=%u "
            "decided=%d commits=%llu inserts=%llu votes=%llu timeouts=%llu syncs=%llu/%llu "
            "synced_blocks=%llu halted=%d(%s) dropped(ev=%llu inbox=%llu)\n",
            n->name, n->replica ? "running" : "stopped", (unsigned long long)s.view,
            (unsigned long long)node_highest_view_entered(n), node_number(n),
            (long long)node_committed_height(n), node_vs_size(n), node_vs_decided(n),
            (unsigned long long)c.commits, (unsigned long long)c.inserts,
            (unsigned long long)c.votes, (unsigned long long)c.view_timeouts,
            (unsigned long long)c.start_syncs, (unsigned long long)c.end_syncs,
            (unsigned long long)c.blocks_synced, s.halted, hs_status_str(s.halt_status),
            (unsigned long long)s.events_dropped, (unsigned long long)s.inbox_dropped);
}

void node_dump_trace(node *n, FILE *f) {
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < n->n_trace; i++) fprintf(f, "[%s] %s\n", n->name, n->trace[i]);
    pthread_mutex_unlock(&n->mu);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

void node_remove_dir(const char *dir) {
    if (dir) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
